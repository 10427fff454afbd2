//! `ShellError`: why a shell command (or a maintenance script) failed, and `Chain`, which
//! prints an error with its causes the way the shell always has (`what: why: why`).

use std::error::Error;
use std::fmt;

use kelp_proto::client::ClientError;

/// Why a shell command failed. Variants that add context (`Context`) keep the cause as
/// their `source`; print with [`ShellError::chain`] to see the whole story.
#[derive(Debug, thiserror::Error)]
pub enum ShellError {
    /// A malformed command line: a stray word, an unknown flag, a bad flag value.
    #[error("{0}")]
    BadFlags(String),
    /// A command name the shell does not know; `hint` says what would be known.
    #[error("unknown command {command:?} {hint}")]
    UnknownCommand { command: String, hint: String },
    /// A call through the typed clients of `kelp-proto` failed.
    #[error(transparent)]
    Cluster(#[from] ClientError),
    /// A master answered a plain HTTP request with an error status.
    #[error("{url} answered {status}")]
    Answered {
        url: String,
        status: reqwest::StatusCode,
    },
    /// A master could not be reached (or the request failed on the way).
    #[error("{url}: {message}")]
    Unreachable { url: String, message: String },
    /// A master's answer was not the JSON expected.
    #[error("decoding {url}")]
    Decode {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// No master address was given at all.
    #[error("no master given")]
    NoMaster,
    /// The cluster admin lock is held by someone else (the master's words, naming them).
    #[error("{0}")]
    Locked(String),
    /// A command could not do what it was asked (the sentence says why).
    #[error("{0}")]
    Failed(String),
    /// `source` happened while doing `doing`.
    #[error("{doing}")]
    Context {
        doing: String,
        #[source]
        source: Box<ShellError>,
    },
}

impl ShellError {
    /// Displays the error followed by each of its causes, separated by `: `.
    pub fn chain(&self) -> Chain<'_> {
        Chain(self)
    }
}

/// An error and its causes on one line: `what: why: why`.
#[derive(Debug, Clone, Copy)]
pub struct Chain<'a>(&'a (dyn Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(e) = cause {
            write!(f, ": {e}")?;
            cause = e.source();
        }
        Ok(())
    }
}

/// Adds what was being done to an error, as `anyhow::Context` would.
pub(crate) trait Doing<T> {
    fn doing(self, what: impl FnOnce() -> String) -> Result<T, ShellError>;
}

impl<T, E: Into<ShellError>> Doing<T> for Result<T, E> {
    fn doing(self, what: impl FnOnce() -> String) -> Result<T, ShellError> {
        self.map_err(|e| ShellError::Context {
            doing: what(),
            source: Box::new(e.into()),
        })
    }
}

/// `Err(ShellError::Failed(format!(...)))`.
macro_rules! fail {
    ($($arg:tt)*) => {
        return Err($crate::error::ShellError::Failed(format!($($arg)*)))
    };
}
pub(crate) use fail;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_prints_every_cause() {
        let e = ShellError::Context {
            doing: "in \"ec.encode x\"".into(),
            source: Box::new(ShellError::BadFlags("unexpected argument".into())),
        };
        assert_eq!(e.to_string(), "in \"ec.encode x\"");
        assert_eq!(
            e.chain().to_string(),
            "in \"ec.encode x\": unexpected argument"
        );
        let c: Result<(), ShellError> =
            Err(ClientError::NoMaster("m".into())).doing(|| "asking".into());
        assert_eq!(
            c.unwrap_err().chain().to_string(),
            "asking: no master answered (tried m)"
        );
    }
}
