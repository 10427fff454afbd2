//! Filer paths: validation ([`normalize`]) and the small helpers every module uses to
//! take normalized paths apart ([`parent`], [`name`]) and put them together ([`join`]).
//!
//! A normalized path is absolute, has no trailing `/` (the root is `/`), and its
//! components are non-empty, never `.` or `..`, never contain NUL, and are at most
//! [`MAX_NAME_LEN`] bytes; the whole path is at most [`MAX_PATH_LEN`] bytes. Nothing is
//! collapsed silently: a path that would need rewriting (other than dropping one trailing
//! `/`) is refused, so two different strings never name the same entry.

/// The longest a path component (an entry name) may be, in bytes.
pub const MAX_NAME_LEN: usize = 255;
/// The longest a whole normalized path may be, in bytes.
pub const MAX_PATH_LEN: usize = 4096;

/// Why a string is not an acceptable filer path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the path is empty")]
    Empty,
    #[error("path {0:?} is not absolute: it must start with '/'")]
    NotAbsolute(String),
    #[error("path {0:?} has a '.' or '..' component, which is not allowed")]
    DotComponent(String),
    #[error("path {0:?} has an empty component ('//'), which is not allowed")]
    EmptyComponent(String),
    #[error("the path contains a NUL byte, which is not allowed")]
    Nul,
    #[error("a path component is {len} bytes long; the limit is {MAX_NAME_LEN}")]
    NameTooLong { len: usize },
    #[error("the path is {len} bytes long; the limit is {MAX_PATH_LEN}")]
    TooLong { len: usize },
}

/// Checks `p` and returns its normalized form: `p` itself, without one trailing `/`.
pub fn normalize(p: &str) -> Result<String, PathError> {
    if p.is_empty() {
        return Err(PathError::Empty);
    }
    if p.len() > MAX_PATH_LEN + 1 {
        return Err(PathError::TooLong { len: p.len() });
    }
    if p.contains('\0') {
        return Err(PathError::Nul);
    }
    if !p.starts_with('/') {
        return Err(PathError::NotAbsolute(p.to_string()));
    }
    if p == "/" {
        return Ok("/".to_string());
    }
    let body = p.strip_suffix('/').unwrap_or(p);
    if body.len() > MAX_PATH_LEN {
        return Err(PathError::TooLong { len: body.len() });
    }
    for comp in body[1..].split('/') {
        match comp {
            "" => return Err(PathError::EmptyComponent(p.to_string())),
            "." | ".." => return Err(PathError::DotComponent(p.to_string())),
            c if c.len() > MAX_NAME_LEN => return Err(PathError::NameTooLong { len: c.len() }),
            _ => {}
        }
    }
    Ok(body.to_string())
}

/// True if `p` is already normalized (`normalize(p) == Ok(p)`), without allocating.
pub fn is_normalized(p: &str) -> bool {
    if p == "/" {
        return true;
    }
    if p.len() > MAX_PATH_LEN || !p.starts_with('/') || p.ends_with('/') || p.contains('\0') {
        return false;
    }
    p[1..]
        .split('/')
        .all(|c| !c.is_empty() && c != "." && c != ".." && c.len() <= MAX_NAME_LEN)
}

/// The directory holding the normalized path `p`: `/` for `/a`, `/a` for `/a/b`, `None`
/// for the root.
pub fn parent(p: &str) -> Option<&str> {
    if p == "/" {
        return None;
    }
    match p.rfind('/') {
        Some(0) => Some("/"),
        Some(i) => Some(&p[..i]),
        None => None,
    }
}

/// The last component of the normalized path `p` (`""` for the root).
pub fn name(p: &str) -> &str {
    match p.rfind('/') {
        Some(i) => &p[i + 1..],
        None => p,
    }
}

/// The path of the entry `name` inside the directory `dir` (both already valid).
pub fn join(dir: &str, name: &str) -> String {
    // Sized once, not grown through `format!`: listings join a path per entry.
    let mut p = String::with_capacity(dir.len() + 1 + name.len());
    if dir != "/" {
        p.push_str(dir);
    }
    p.push('/');
    p.push_str(name);
    p
}

/// True if `p` is `dir` itself or lies anywhere under it (normalized paths).
pub fn is_within(p: &str, dir: &str) -> bool {
    if dir == "/" {
        return true;
    }
    p == dir || (p.len() > dir.len() && p.starts_with(dir) && p.as_bytes()[dir.len()] == b'/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_paths() {
        assert_eq!(normalize("/").unwrap(), "/");
        assert_eq!(normalize("/a").unwrap(), "/a");
        assert_eq!(normalize("/a/").unwrap(), "/a");
        assert_eq!(normalize("/a/b c/d%20e/é/😀").unwrap(), "/a/b c/d%20e/é/😀");
        assert_eq!(
            normalize("/.hidden/..dots/a.b/...").unwrap(),
            "/.hidden/..dots/a.b/..."
        );
        assert_eq!(normalize("/a\\b").unwrap(), "/a\\b");
    }

    #[test]
    fn refuses_traversal() {
        for p in [
            "/..",
            "/../etc/passwd",
            "/a/../b",
            "/a/..",
            "/a/../",
            "/a/./b",
            "/.",
            "/./",
            "/a/.",
        ] {
            assert!(
                matches!(normalize(p), Err(PathError::DotComponent(_))),
                "{p}: {:?}",
                normalize(p)
            );
        }
    }

    #[test]
    fn refuses_empty_components_and_relative_paths() {
        for p in ["//", "//a", "/a//b", "/a//", "/a/b//"] {
            assert!(
                matches!(normalize(p), Err(PathError::EmptyComponent(_))),
                "{p}"
            );
        }
        for p in ["a", "a/b", "./a", "../a", " /a"] {
            assert!(
                matches!(normalize(p), Err(PathError::NotAbsolute(_))),
                "{p}"
            );
        }
        assert_eq!(normalize(""), Err(PathError::Empty));
        assert_eq!(normalize("/a\0b"), Err(PathError::Nul));
        assert_eq!(normalize("/a/\0"), Err(PathError::Nul));
    }

    #[test]
    fn enforces_lengths() {
        let ok = format!("/{}", "n".repeat(255));
        assert_eq!(normalize(&ok).unwrap(), ok);
        let long = format!("/{}", "n".repeat(256));
        assert_eq!(normalize(&long), Err(PathError::NameTooLong { len: 256 }));
        // 255 bytes of multi-byte characters is the limit too (bytes, not chars).
        let utf8 = format!("/{}", "é".repeat(128));
        assert_eq!(normalize(&utf8), Err(PathError::NameTooLong { len: 256 }));

        let comp = "x".repeat(200);
        let mut p = String::new();
        while p.len() + 201 <= MAX_PATH_LEN {
            p.push('/');
            p.push_str(&comp);
        }
        let pad = MAX_PATH_LEN - p.len() - 1;
        p.push('/');
        p.push_str(&"y".repeat(pad));
        assert_eq!(p.len(), MAX_PATH_LEN);
        assert_eq!(normalize(&p).unwrap(), p);
        assert_eq!(normalize(&format!("{p}/")).unwrap(), p);
        let over = format!("{p}z");
        assert_eq!(
            normalize(&over),
            Err(PathError::TooLong {
                len: MAX_PATH_LEN + 1
            })
        );
        let way_over = "/a".repeat(10_000);
        assert!(matches!(
            normalize(&way_over),
            Err(PathError::TooLong { .. })
        ));
    }

    #[test]
    fn errors_explain_themselves() {
        let msg = normalize("/a/../b").unwrap_err().to_string();
        assert!(msg.contains("/a/../b") && msg.contains(".."), "{msg}");
        let msg = normalize("a").unwrap_err().to_string();
        assert!(msg.contains("absolute"), "{msg}");
    }

    #[test]
    fn is_normalized_agrees_with_normalize() {
        for p in [
            "/", "/a", "/a/", "/a/b", "//", "/a//b", "/..", "/a/.", "a", "", "/a\0", "/.x",
        ] {
            assert_eq!(is_normalized(p), normalize(p).as_deref() == Ok(p), "{p:?}");
        }
        assert!(!is_normalized(&format!("/{}", "n".repeat(256))));
    }

    #[test]
    fn parent_name_join() {
        assert_eq!(parent("/"), None);
        assert_eq!(parent("/a"), Some("/"));
        assert_eq!(parent("/a/b"), Some("/a"));
        assert_eq!(parent("/a/b/c"), Some("/a/b"));
        assert_eq!(name("/"), "");
        assert_eq!(name("/a"), "a");
        assert_eq!(name("/a/b c"), "b c");
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("/a", "b"), "/a/b");
        for p in ["/a", "/a/b", "/x/y/z é"] {
            assert_eq!(join(parent(p).unwrap(), name(p)), p);
        }
    }

    #[test]
    fn within() {
        assert!(is_within("/a", "/"));
        assert!(is_within("/a", "/a"));
        assert!(is_within("/a/b", "/a"));
        assert!(!is_within("/ab", "/a"));
        assert!(!is_within("/a.b", "/a"));
        assert!(!is_within("/", "/a"));
    }
}
