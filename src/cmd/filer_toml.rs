//! `filer.toml`: the filer's store settings in a file, with the same keys as the flags
//! (`store`, `postgres.url`, `postgres.schema`). Flags given on the command line win.

use std::path::{Path, PathBuf};

use anyhow::Context;

/// The settings a `filer.toml` may hold.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilerToml {
    /// `redb` or `postgres`.
    pub store: Option<String>,
    #[serde(default)]
    pub postgres: PostgresToml,
}

/// The `[postgres]` table.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresToml {
    pub url: Option<String>,
    pub schema: Option<String>,
}

/// Where a `filer.toml` is looked for when `-config` names none, first found wins.
pub fn default_paths() -> Vec<PathBuf> {
    let mut out = vec![PathBuf::from("filer.toml")];
    if let Some(home) = std::env::var_os("HOME") {
        out.push(Path::new(&home).join(".kelp").join("filer.toml"));
    }
    out.push(PathBuf::from("/etc/kelp/filer.toml"));
    out
}

/// The file `-config` names (which must exist), else the first default path that
/// exists, else nothing; with the path it came from.
pub fn load(flag: Option<&Path>) -> anyhow::Result<(FilerToml, Option<PathBuf>)> {
    let path = match flag {
        Some(p) => Some(p.to_path_buf()),
        None => default_paths().into_iter().find(|p| p.is_file()),
    };
    let Some(path) = path else {
        return Ok((FilerToml::default(), None));
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let parsed: FilerToml = toml::from_str(&text)
        .with_context(|| format!("{} is not a valid filer.toml", path.display()))?;
    if let Some(s) = &parsed.store
        && s != "redb"
        && s != "postgres"
    {
        anyhow::bail!(
            "{}: store = {s:?}: use \"redb\" or \"postgres\"",
            path.display()
        );
    }
    Ok((parsed, Some(path)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn reads_the_keys_and_refuses_unknown_ones() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("filer.toml");
        std::fs::write(
            &f,
            "store = \"postgres\"\n[postgres]\nurl = \"postgres://u@h/db\"\nschema = \"ns\"\n",
        )
        .unwrap();
        let (t, from) = load(Some(&f)).unwrap();
        assert_eq!(from.as_deref(), Some(f.as_path()));
        assert_eq!(t.store.as_deref(), Some("postgres"));
        assert_eq!(t.postgres.url.as_deref(), Some("postgres://u@h/db"));
        assert_eq!(t.postgres.schema.as_deref(), Some("ns"));
        std::fs::write(&f, "[postgres]\nurll = \"x\"\n").unwrap();
        let err = format!("{:#}", load(Some(&f)).unwrap_err());
        assert!(err.contains("urll"), "{err}");
        std::fs::write(&f, "store = \"mysql\"\n").unwrap();
        assert!(load(Some(&f)).is_err());
        assert!(load(Some(&dir.path().join("missing.toml"))).is_err());
    }
}
