//! The flags of one shell command line (`-name=value`, `--name=value`, `-name value`,
//! `-flag`) and durations written the SeaweedFS way (`90s`, `15m`, `1h`).

use std::collections::HashMap;

use crate::error::ShellError;

/// Parsed flags of one command line: `-name=value`, `--name=value`, `-name value`, `-flag`.
#[derive(Debug, Default)]
pub(crate) struct Flags(HashMap<String, String>);

impl Flags {
    pub(crate) fn parse(words: &[&str]) -> Result<Flags, ShellError> {
        let mut out = HashMap::new();
        let mut i = 0;
        while i < words.len() {
            let w = words[i];
            let Some(name) = w.strip_prefix("--").or_else(|| w.strip_prefix('-')) else {
                return Err(ShellError::BadFlags(format!(
                    "unexpected argument {w:?} (flags look like -name=value)"
                )));
            };
            if let Some((k, v)) = name.split_once('=') {
                out.insert(k.to_string(), v.to_string());
            } else if let Some(next) = words.get(i + 1).filter(|n| !n.starts_with('-')) {
                out.insert(name.to_string(), next.to_string());
                i += 1;
            } else {
                out.insert(name.to_string(), "true".to_string());
            }
            i += 1;
        }
        Ok(Flags(out))
    }

    /// The value of `-k`, `None` when absent or empty.
    pub(crate) fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str).filter(|v| !v.is_empty())
    }

    /// The value of `-k` even when empty (`-collection=` names the default collection).
    pub(crate) fn raw(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str)
    }

    pub(crate) fn num<T: std::str::FromStr>(&self, k: &str) -> Result<Option<T>, ShellError> {
        self.get(k)
            .map(|v| {
                v.parse::<T>()
                    .map_err(|_| ShellError::BadFlags(format!("-{k}={v} is not a valid number")))
            })
            .transpose()
    }

    /// A switch: `-k` or `-k=true` (any value but `false`).
    pub(crate) fn on(&self, k: &str) -> bool {
        self.0.get(k).is_some_and(|v| v != "false")
    }

    pub(crate) fn check_known(&self, known: &[&str]) -> Result<(), ShellError> {
        for k in self.0.keys() {
            if !known.contains(&k.as_str()) {
                return Err(ShellError::BadFlags(format!(
                    "unknown flag -{k} (known: {})",
                    known.join(" ")
                )));
            }
        }
        Ok(())
    }
}

/// `90s`, `15m`, `1h`, `2d` or plain seconds.
pub fn parse_duration(s: &str) -> Result<u64, ShellError> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last() {
        Some((i, 's')) => (&s[..i], 1),
        Some((i, 'm')) => (&s[..i], 60),
        Some((i, 'h')) => (&s[..i], 3600),
        Some((i, 'd')) => (&s[..i], 86400),
        _ => (s, 1),
    };
    match num.parse::<u64>() {
        Ok(n) => Ok(n * mult),
        Err(_) => Err(ShellError::BadFlags(format!(
            "{s:?} is not a duration (like 90s, 15m, 1h)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_in_every_style() {
        let f = Flags::parse(&["-volumeId=3", "--collection", "pics", "-force"]).unwrap();
        assert_eq!(f.get("volumeId"), Some("3"));
        assert_eq!(f.get("collection"), Some("pics"));
        assert_eq!(f.get("force"), Some("true"));
        assert_eq!(f.num::<u32>("volumeId").unwrap(), Some(3));
        assert!(f.num::<u32>("collection").is_err());
        assert!(Flags::parse(&["stray"]).is_err());
        assert!(f.check_known(&["volumeId"]).is_err());
        let empty = Flags::parse(&["-collection="]).unwrap();
        assert_eq!(empty.get("collection"), None);
        assert_eq!(empty.raw("collection"), Some(""));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1h").unwrap(), 3600);
        assert_eq!(parse_duration("90s").unwrap(), 90);
        assert_eq!(parse_duration("2m").unwrap(), 120);
        assert_eq!(parse_duration("0").unwrap(), 0);
        assert!(parse_duration("x").is_err());
    }
}
