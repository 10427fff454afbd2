//! `fs.meta.save` and `fs.meta.load`: a filer's metadata (entries and chunk lists, not
//! the chunk data) to a checked export file and back, through the filer's
//! `?op=meta.export` / `?op=meta.import` (format: `kelp_proto::meta_export`).

use std::io::Write;
use std::path::{Path, PathBuf};

use kelp_proto::client::base_url;
use kelp_proto::meta_export;
use kelp_proto::security::Authorize;

use crate::error::ShellError;
use crate::flags::Flags;
use crate::{Shell, say};

/// The filer a command talks to (`-filer`, default 127.0.0.1:8888).
pub(crate) fn filer(flags: &Flags) -> String {
    base_url(flags.get("filer").unwrap_or("127.0.0.1:8888"))
}

/// Sends `req` (to `url`); a request that got no answer is `Unreachable`.
pub(crate) async fn send(
    req: reqwest::RequestBuilder,
    url: &str,
) -> Result<reqwest::Response, ShellError> {
    req.send().await.map_err(|e| ShellError::Unreachable {
        url: url.to_string(),
        message: e.to_string(),
    })
}

fn failed(what: impl std::fmt::Display) -> ShellError {
    ShellError::Failed(what.to_string())
}

/// `fs.meta.save -o=FILE [-path=/dir] [-filer=host:port]`: streams the export into a
/// temporary file beside FILE, checks it whole, fsyncs it and renames it to FILE.
pub(crate) async fn save(shell: &Shell, flags: &Flags) -> Result<(), ShellError> {
    let out = PathBuf::from(
        flags
            .get("o")
            .ok_or_else(|| ShellError::BadFlags("fs.meta.save needs -o=FILE".into()))?,
    );
    let dir = flags.get("path").unwrap_or("/");
    let mut url = reqwest::Url::parse(&filer(flags))
        .map_err(|e| ShellError::BadFlags(format!("-filer: {e}")))?;
    url.set_path(dir);
    url.set_query(Some("op=meta.export"));
    let resp = send(shell.http.get(url.clone()).filer(false), url.as_str()).await?;
    if !resp.status().is_success() {
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        return Err(failed(format!("{url} answered {status}: {}", text.trim())));
    }
    let tmp = temp_beside(&out);
    let mut file = std::fs::File::create(&tmp)
        .map_err(|e| failed(format!("cannot create {}: {e}", tmp.display())))?;
    let mut resp = resp;
    let mut written = 0u64;
    let saving = crate::progress::Progress::bytes("fs.meta.save");
    loop {
        let piece = match resp.chunk().await {
            Ok(Some(p)) => p,
            Ok(None) => break,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(failed(format!("the export from {url} broke off: {e}")));
            }
        };
        if let Err(e) = file.write_all(&piece) {
            let _ = std::fs::remove_file(&tmp);
            return Err(failed(format!("writing {}: {e}", tmp.display())));
        }
        written += piece.len() as u64;
        saving.at(written as usize);
    }
    drop(saving);
    let checked = std::fs::read(&tmp)
        .map_err(|e| failed(format!("reading back {}: {e}", tmp.display())))
        .and_then(|b| {
            meta_export::read(&b)
                .map(|r| r.len())
                .map_err(|e| failed(format!("the export from {url} is unusable: {e}")))
        });
    let records = match checked {
        Ok(n) => n,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    file.sync_all()
        .and_then(|()| std::fs::rename(&tmp, &out))
        .map_err(|e| failed(format!("saving {}: {e}", out.display())))?;
    say(format!(
        "saved {records} records of {dir} ({written} bytes) to {}",
        out.display()
    ));
    Ok(())
}

fn temp_beside(p: &Path) -> PathBuf {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "meta".into());
    p.with_file_name(format!(".{name}.tmp{}", std::process::id()))
}

/// `fs.meta.load FILE [-filer=host:port]` (or `-i=FILE`): checks the whole file, then
/// has the filer put its entries. Loading the same file twice changes nothing more.
pub(crate) async fn load(shell: &Shell, file: &str, flags: &Flags) -> Result<(), ShellError> {
    let bytes = std::fs::read(file).map_err(|e| failed(format!("cannot read {file}: {e}")))?;
    let records = meta_export::read(&bytes)
        .map_err(|e| failed(format!("{file}: {e}; nothing was loaded")))?
        .len();
    let url = format!("{}/?op=meta.import", filer(flags));
    let loading = crate::progress::Progress::spinner("fs.meta.load");
    let resp = send(shell.http.post(&url).filer(true).body(bytes), &url).await?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    drop(loading);
    if !status.is_success() {
        return Err(failed(format!("{url} answered {status}: {}", text.trim())));
    }
    say(format!(
        "loaded {records} records from {file}: {}",
        text.trim()
    ));
    Ok(())
}
