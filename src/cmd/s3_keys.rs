//! `kelp s3.keys`: lists, creates and rotates the master keys in the S3 gateway's key
//! file (SSE-S3 and SSE-KMS). A running gateway re-reads the file within a second.

use std::path::PathBuf;

use anyhow::Context;
use kelp_s3::sse::kms::KeyFile;

/// Flags of `kelp s3.keys`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The key file (the gateway's -s3.keyFile; `kelp server` keeps it at
    /// <dir>/filer/s3-keys.json). Created with fresh keys if missing.
    #[arg(long = "file")]
    pub file: PathBuf,
    /// Add a key of this name (for SSE-KMS requests naming it).
    #[arg(long = "create", value_name = "NAME")]
    pub create: Option<String>,
    /// Add a new version of this key: new objects use it, old versions stay to read
    /// the objects they sealed.
    #[arg(long = "rotate", value_name = "NAME")]
    pub rotate: Option<String>,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let mut f = if a.file.exists() {
        KeyFile::read(&a.file)?
    } else {
        println!("creating {}", a.file.display());
        KeyFile::fresh()
    };
    if let Some(name) = &a.create {
        f.create(name)?;
        println!("created key {name}");
    }
    if let Some(name) = &a.rotate {
        let v = f.rotate(name)?;
        println!("key {name} is now at version {v}");
    }
    f.write(&a.file)
        .with_context(|| format!("saving {}", a.file.display()))?;
    for (name, versions, created) in f.list() {
        let when = kelp_proto::civil::rfc3339(i64::try_from(created).unwrap_or(0));
        println!("{name}\tversions={versions}\tnewest={when}");
    }
    Ok(())
}
