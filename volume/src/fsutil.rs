//! Small durable-file helpers: atomic replace (temp + fsync + rename), directory fsync,
//! a positioned vectored write, and [`ReceivedFile`], a file being received from
//! another server.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;

use crate::error::{IoContext, Result};

/// Makes renames and creations inside `dir` durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .ctx(|| format!("fsync of directory {}", dir.display()))
}

/// Writes `parts` one after another at `at`, with `pwritev` (retried where the kernel
/// took only part): a record assembled from pieces without copying them into one.
pub fn write_all_vectored_at(file: &File, parts: &[&[u8]], at: u64) -> std::io::Result<()> {
    let mut slices: Vec<std::io::IoSlice<'_>> = parts
        .iter()
        .filter(|p| !p.is_empty())
        .map(|p| std::io::IoSlice::new(p))
        .collect();
    let mut rest = &mut slices[..];
    let mut pos = at;
    while !rest.is_empty() {
        let n = match rustix::io::pwritev(file, rest, pos) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        };
        pos += n as u64;
        std::io::IoSlice::advance_slices(&mut rest, n);
    }
    Ok(())
}

/// Replaces `path` with `bytes` so that a crash leaves either the old or the new content:
/// write `<path>.tmp`, fsync it, rename over `path`, fsync the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = Path::new(&tmp);
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(tmp)
        .ctx(|| format!("creating {}", tmp.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .ctx(|| format!("writing {}", tmp.display()))?;
    drop(f);
    fs::rename(tmp, path).ctx(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    sync_dir(parent(path))
}

/// The directory holding `path` (`.` for a bare file name).
pub fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Removes a file, treating "already gone" as success.
pub fn remove_if_exists(path: &Path) -> Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).ctx(|| format!("removing {}", path.display())),
    }
}

/// A file being received from another server (a copied volume or EC file): written as
/// the bytes arrive, counted, and fsynced when complete. Where it ends up is the
/// caller's business.
#[derive(Debug)]
pub struct ReceivedFile {
    file: tokio::fs::File,
    path: std::path::PathBuf,
    len: u64,
}

impl ReceivedFile {
    /// Creates (or empties) `path`.
    pub async fn create(path: std::path::PathBuf) -> Result<ReceivedFile> {
        let file = tokio::fs::File::create(&path)
            .await
            .ctx(|| format!("creating {}", path.display()))?;
        Ok(ReceivedFile { file, path, len: 0 })
    }

    pub async fn write(&mut self, chunk: &[u8]) -> Result<()> {
        use tokio::io::AsyncWriteExt;
        self.file
            .write_all(chunk)
            .await
            .ctx(|| format!("writing {}", self.path.display()))?;
        self.len += chunk.len() as u64;
        Ok(())
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Flushes and fsyncs the file; returns its path and length.
    pub async fn finish(mut self) -> Result<(std::path::PathBuf, u64)> {
        use tokio::io::AsyncWriteExt;
        self.file
            .flush()
            .await
            .and(self.file.sync_all().await)
            .ctx(|| format!("fsync of {}", self.path.display()))?;
        Ok((self.path, self.len))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::os::unix::fs::FileExt;

    use super::*;

    #[test]
    fn vectored_writes_land_in_order_at_their_offset() {
        let dir = tempfile::tempdir().unwrap();
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.path().join("f"))
            .unwrap();
        f.write_all_at(b"0123456789", 0).unwrap();
        let big = vec![b'x'; 3 << 20];
        write_all_vectored_at(&f, &[b"ab", b"", &big, b"cd"], 4).unwrap();
        let mut got = vec![0u8; 4 + 2 + big.len() + 2];
        f.read_exact_at(&mut got, 0).unwrap();
        assert_eq!(&got[..6], b"0123ab");
        assert!(got[6..6 + big.len()].iter().all(|&b| b == b'x'));
        assert_eq!(&got[6 + big.len()..], b"cd");
        write_all_vectored_at(&f, &[], 0).unwrap();
    }
}
