//! Log setup: `tracing` to stderr, filtered by `RUST_LOG` (default `info`, without
//! s3s's dump of malformed XML bodies, which writes a whole request body, megabytes of
//! it, into one line; the error itself is still logged by `s3s::ops`). Every field
//! value is cut at [`MAX_FIELD`] bytes, so no request (a long path, a body echoed in an
//! error) can make one log line huge.

use std::fmt::Write as _;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::MakeExt;

/// The filter when `RUST_LOG` is not set.
const DEFAULT_FILTER: &str = "info,s3s::http::de=off";

/// The longest a logged field value may be, in bytes.
const MAX_FIELD: usize = 2048;

pub fn init() {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let fields = tracing_subscriber::fmt::format::debug_fn(|w, field, value| {
        let mut text = String::new();
        let _ = write!(text, "{value:?}");
        let text = cut(&text);
        if field.name() == "message" {
            w.write_str(&text)
        } else {
            write!(w, "{}={text}", field.name())
        }
    })
    .delimited(" ");
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .fmt_fields(fields)
        .with_writer(std::io::stderr)
        .with_target(true)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// `text`, or its first [`MAX_FIELD`] bytes (on a character boundary) and a note of
/// how much was cut.
fn cut(text: &str) -> std::borrow::Cow<'_, str> {
    if text.len() <= MAX_FIELD {
        return text.into();
    }
    let end = text.floor_char_boundary(MAX_FIELD);
    format!("{}… ({} more bytes)", &text[..end], text.len() - end).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_cut_on_a_character_boundary() {
        assert_eq!(cut("short"), "short");
        let long = "é".repeat(MAX_FIELD);
        let c = cut(&long);
        assert!(c.len() < MAX_FIELD + 40, "{}", c.len());
        assert!(c.ends_with(&format!("… ({} more bytes)", long.len() - MAX_FIELD)));
    }
}
