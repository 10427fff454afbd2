//! Names that become parts of file names on some server (collections): the one check
//! every role applies before a name reaches a path, so that no request can create,
//! open or delete a file outside a server's directories.

/// The longest collection name (it is a prefix of every volume file name).
pub const MAX_COLLECTION_LEN: usize = 128;

/// Why a name cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("collection {0:?} is not allowed: use letters, digits, '.', '-' and '_' (not first)")]
    BadCollection(String),
    #[error("collection name is {0} bytes long; the limit is {MAX_COLLECTION_LEN}")]
    CollectionTooLong(usize),
    #[error("a collection must be named here (the default collection \"\" is not allowed)")]
    EmptyCollection,
}

/// Checks a collection name; `""` (the default collection) is allowed. Only ASCII
/// letters, digits, `.`, `-` and `_` are, and the first character is a letter, digit or
/// `_`: so no `/`, `\`, `..`, NUL or leading dot ever reaches a file name.
pub fn check_collection(name: &str) -> Result<(), NameError> {
    if name.len() > MAX_COLLECTION_LEN {
        return Err(NameError::CollectionTooLong(name.len()));
    }
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return Ok(());
    };
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
    if !(first.is_ascii_alphanumeric() || first == '_') || !chars.all(ok) {
        return Err(NameError::BadCollection(name.to_string()));
    }
    Ok(())
}

/// [`check_collection`] for calls that act on a whole named collection (deletes): the
/// default collection must not be reachable by leaving the name out.
pub fn check_named_collection(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::EmptyCollection);
    }
    check_collection(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collections() {
        for good in ["", "pics", "a.b-c_d", "_x", "2024", "benchmark"] {
            check_collection(good).unwrap();
        }
        for bad in [
            "..",
            "../x",
            "a/b",
            "a\\b",
            ".hidden",
            "-x",
            "a b",
            "nul\0",
            "ünï",
            "../../../../tmp/evil",
        ] {
            assert!(check_collection(bad).is_err(), "{bad:?} accepted");
        }
        assert!(check_collection(&"a".repeat(129)).is_err());
        assert_eq!(check_named_collection(""), Err(NameError::EmptyCollection));
        check_named_collection("x").unwrap();
    }
}
