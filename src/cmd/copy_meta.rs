//! `kelp filer.copy.meta`: copies a filer namespace (entries, chunk lists, manifest
//! markers; not the chunk data, which stays on the volume servers) from one store to
//! another, e.g. from the embedded redb store to PostgreSQL.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use kelp_filer::store::walk::Walk;
use kelp_filer::store::{FilerStore, ListOptions, Mutation, PostgresStore, RedbStore};

use super::common;

/// Flags of `kelp filer.copy.meta`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The store to read: redb:DIR (the filer's -dir; that filer must be stopped) or
    /// postgres:URL (postgres: alone reads the URL from KELP_POSTGRES_URL).
    #[arg(long)]
    pub from: String,
    /// The store to write, in the same form. It must hold no entries unless -force.
    #[arg(long)]
    pub to: String,
    /// Schema of a postgres: source.
    #[arg(long = "from.schema", default_value = "kelp")]
    pub from_schema: String,
    /// Schema of a postgres: target.
    #[arg(long = "to.schema", default_value = "kelp")]
    pub to_schema: String,
    /// Copy into a target that already holds entries (same paths are overwritten).
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1,
          require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    pub force: bool,
}

/// An opened store, and the lock on its directory (embedded stores) held as long.
pub(crate) type Opened = (Arc<dyn FilerStore>, Option<std::fs::File>);

pub(crate) async fn open(spec: &str, schema: &str) -> anyhow::Result<Opened> {
    if let Some(dir) = spec.strip_prefix("redb:") {
        let dir = PathBuf::from(dir);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let lock = common::lock_dir(&dir)?;
        let shown = dir.display().to_string();
        let store = tokio::task::spawn_blocking(move || RedbStore::open(&dir))
            .await?
            .with_context(|| format!("cannot open the redb store in {shown}"))?;
        return Ok((Arc::new(store), Some(lock)));
    }
    if let Some(url) = spec.strip_prefix("postgres:") {
        let url = match url {
            "" => std::env::var("KELP_POSTGRES_URL").unwrap_or_default(),
            u => u.to_string(),
        };
        let store = PostgresStore::open(&url, schema)
            .await
            .context("cannot open the PostgreSQL store")?;
        return Ok((Arc::new(store), None));
    }
    anyhow::bail!("{spec:?} names no store: write redb:DIR or postgres:URL")
}

/// What a copy wrote.
#[derive(Debug, Default)]
struct Copied {
    dirs: u64,
    files: u64,
    chunks: u64,
}

async fn copy(from: &dyn FilerStore, to: &dyn FilerStore) -> anyhow::Result<Copied> {
    let mut done = Copied::default();
    let mut walk = Walk::new(from, "/");
    while let Some(page) = walk.next_page().await? {
        let mut batch = Vec::with_capacity(page.len());
        for e in page {
            if e.is_directory {
                done.dirs += 1;
            } else {
                done.files += 1;
            }
            done.chunks += e.chunks.len() as u64;
            for c in e.chunks.iter().filter(|c| c.is_manifest) {
                batch.push(Mutation::KvPut(
                    kelp_filer::manifest::marker(&c.fid),
                    Vec::new(),
                ));
            }
            batch.push(Mutation::Put(e));
        }
        to.apply(batch).await?;
    }
    Ok(done)
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let rt = common::runtime()?;
    rt.block_on(async {
        let (from, _from_lock) = open(&args.from, &args.from_schema).await.context("-from")?;
        let (to, _to_lock) = open(&args.to, &args.to_schema).await.context("-to")?;
        if !args.force && !to.list("/", &ListOptions::first(1)).await?.is_empty() {
            anyhow::bail!("-to already holds entries: pass -force to copy over them");
        }
        let done = copy(from.as_ref(), to.as_ref()).await?;
        println!(
            "copied {} directories and {} files ({} chunk references) from {} to {}",
            done.dirs,
            done.files,
            done.chunks,
            from.name(),
            to.name()
        );
        Ok(())
    })
}
