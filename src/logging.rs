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

/// One JSON object per line: `ts` (RFC 3339, UTC), `level`, `target`, `message`, the
/// fields of the spans it is in (`request_id`) and the event's other fields, every
/// value cut as in the text format.
struct JsonLines;

/// Collects an event's fields as JSON values.
#[derive(Default)]
struct JsonFields(serde_json::Map<String, serde_json::Value>);

impl tracing::field::Visit for JsonFields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        let mut text = String::new();
        let _ = write!(text, "{value:?}");
        self.0
            .insert(field.name().to_string(), cut(&text).into_owned().into());
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0
            .insert(field.name().to_string(), cut(value).into_owned().into());
    }

    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        self.0.insert(field.name().to_string(), value.into());
    }

    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.0.insert(field.name().to_string(), value.into());
    }

    fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
        self.0.insert(field.name().to_string(), value.into());
    }
}

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for JsonLines
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let mut fields = JsonFields::default();
        event.record(&mut fields);
        let meta = event.metadata();
        let mut line = serde_json::Map::new();
        line.insert("ts".into(), now_rfc3339().into());
        line.insert("level".into(), meta.level().as_str().into());
        line.insert("target".into(), meta.target().into());
        // The request id of the filer's or the S3 gateway's request span the event is
        // in, from the `key=value` text the default field formatter wrote (other
        // crates' spans are left out: their values are not so simple).
        if let Some(scope) = ctx.event_scope() {
            for span in scope
                .from_root()
                .filter(|s| matches!(s.name(), "filer" | "s3"))
            {
                let ext = span.extensions();
                let Some(f) = ext.get::<tracing_subscriber::fmt::FormattedFields<N>>() else {
                    continue;
                };
                for pair in f.fields.split(' ') {
                    if let Some((k, v)) = pair.split_once('=') {
                        line.insert(k.to_string(), cut(v).into_owned().into());
                    }
                }
            }
        }
        line.extend(fields.0);
        writeln!(writer, "{}", serde_json::Value::Object(line))
    }
}

/// Now as RFC 3339 in UTC with milliseconds.
fn now_rfc3339() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let (y, mo, day, h, mi, s) = kelp_proto::civil::utc(d.as_secs() as i64);
    format!(
        "{y:04}-{mo:02}-{day:02}T{h:02}:{mi:02}:{s:02}.{:03}Z",
        d.subsec_millis()
    )
}

/// Sets up logging; `json`: one JSON object per line (`-logFormat=json`).
pub fn init(json: bool) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    if json {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(false)
            .event_format(JsonLines)
            .with_writer(std::io::stderr)
            .try_init();
        return;
    }
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
    fn timestamps_are_rfc3339() {
        let t = now_rfc3339();
        assert_eq!(t.len(), 24, "{t}");
        assert!(
            t.starts_with("20") && t.ends_with('Z') && t.as_bytes()[10] == b'T',
            "{t}"
        );
    }

    #[test]
    fn long_values_are_cut_on_a_character_boundary() {
        assert_eq!(cut("short"), "short");
        let long = "é".repeat(MAX_FIELD);
        let c = cut(&long);
        assert!(c.len() < MAX_FIELD + 40, "{}", c.len());
        assert!(c.ends_with(&format!("… ({} more bytes)", long.len() - MAX_FIELD)));
    }
}
