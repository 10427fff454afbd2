//! `kelp scaffold`: prints a commented configuration template.

/// Flags of `kelp scaffold`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Which template: security or filer.
    #[arg(long, default_value = "security")]
    pub config: String,
}

/// The security file template, with every key explained.
pub const SECURITY_TEMPLATE: &str = include_str!("templates/security.toml");

/// The filer.toml template.
pub const FILER_TEMPLATE: &str = include_str!("templates/filer.toml");

pub fn run(args: Args) -> anyhow::Result<()> {
    match args.config.as_str() {
        "security" => {
            print!("{SECURITY_TEMPLATE}");
            Ok(())
        }
        "filer" => {
            print!("{FILER_TEMPLATE}");
            Ok(())
        }
        other => anyhow::bail!("no template named {other:?}; there are: security, filer"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filer_template_is_a_valid_filer_toml() {
        #![allow(clippy::unwrap_used)]
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("filer.toml");
        std::fs::write(&f, FILER_TEMPLATE).unwrap();
        let (t, _) = crate::cmd::filer_toml::load(Some(&f)).unwrap();
        assert_eq!(t.store.as_deref(), Some("redb"));
        assert_eq!(t.postgres.schema.as_deref(), Some("kelp"));
    }

    #[test]
    fn the_template_parses_once_a_key_is_filled_in() {
        let dir = std::path::Path::new(".");
        // As printed, with an empty key, it is refused with a reason.
        let e = kelp_proto::security::Security::parse(SECURITY_TEMPLATE, dir).unwrap_err();
        assert!(e.contains("admin credential"), "{e}");
        let filled = SECURITY_TEMPLATE.replacen("key = \"\"", "key = \"s3cr3t\"", 1);
        let s = kelp_proto::security::Security::parse(&filled, dir).unwrap();
        assert!(s.write.is_some() && s.read.is_none() && s.https.is_none());
    }
}
