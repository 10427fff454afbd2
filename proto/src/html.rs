//! The HTML of the status pages and the filer browser: escaping, one shared page frame
//! with its stylesheet (embedded, no scripts, nothing fetched from elsewhere) and a few
//! table helpers. The pages read the same data as the JSON APIs.

/// `s` with the characters that mean something in HTML replaced.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A name escaped, or `(default)` when empty (the default collection, data center…).
pub fn or_default(name: &str) -> String {
    if name.is_empty() {
        "(default)".to_string()
    } else {
        esc(name)
    }
}

/// A path percent-encoded for an `href` (slashes kept).
pub fn href(p: &str) -> String {
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'/')
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(p, KEEP).to_string()
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:1.5em 2em;color:#1b2b34}\
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.6em}\
table{border-collapse:collapse}td,th{padding:3px 12px;text-align:left;border-bottom:1px solid #dde}\
th{background:#eef3f6}.n{text-align:right;font-variant-numeric:tabular-nums}\
.muted{color:#778}nav a{margin-right:.2em}form.inline{display:inline}\
.bar{display:flex;gap:2em;margin:1em 0;flex-wrap:wrap}\
.tree ul{list-style:none;padding-left:1.2em}.tree li{margin:.2em 0}\
input,button{font:inherit}";

/// A whole page: `title` in the head and as the heading, then `body`.
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\"><title>{t}</title>\
         <style>{STYLE}</style></head><body><h1>{t}</h1>\n{body}</body></html>\n",
        t = esc(title)
    )
}

/// A table with a header row; cells are HTML already (escape text with [`esc`]).
pub fn table(head: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = String::from("<table><tr>");
    for h in head {
        out.push_str(&format!("<th>{}</th>", esc(h)));
    }
    out.push_str("</tr>\n");
    for r in rows {
        out.push_str("<tr>");
        for c in r {
            out.push_str(&format!("<td>{c}</td>"));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
    out
}

/// A right-aligned number cell.
pub fn num(n: impl std::fmt::Display) -> String {
    format!("<span class=\"n\">{n}</span>")
}

/// Bytes in binary units (`1.5 MiB`).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_sizes() {
        assert_eq!(
            esc("<a href=\"x\">&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(href("/a b/c%d/é"), "/a%20b/c%25d/%C3%A9");
        assert_eq!(bytes(10), "10 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 << 30), "3.0 GiB");
    }
}
