//! SeaweedFS-style flag handling: `-name=value`, `--name=value` and `-name value`
//! are all accepted, and a bad flag is one clear sentence with exit status 2.

use clap::error::{ContextKind, ContextValue, ErrorKind};

/// The exit status for a command line we refuse.
pub const USAGE_EXIT: i32 = 2;

/// Rewrites single-dash long flags (`-master.peers=x`, `-h`) to clap's double-dash
/// form. Arguments after a bare `--` and values that do not look like flags are kept.
pub fn normalise(args: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut passthrough = false;
    for (i, arg) in args.into_iter().enumerate() {
        if i == 0 || passthrough {
            out.push(arg);
            continue;
        }
        if arg == "--" {
            passthrough = true;
            out.push(arg);
            continue;
        }
        let single_dash_flag = arg.starts_with('-')
            && !arg.starts_with("--")
            && arg[1..].starts_with(|c: char| c.is_ascii_alphabetic());
        if arg == "-h" || arg == "-help" {
            out.push("--help".to_string());
        } else if single_dash_flag {
            out.push(format!("-{arg}"));
        } else {
            out.push(arg);
        }
    }
    out
}

fn context_string(err: &clap::Error, kind: ContextKind) -> Option<String> {
    match err.get(kind)? {
        ContextValue::String(s) => Some(s.clone()),
        ContextValue::Strings(v) => Some(v.join(", ")),
        other => Some(other.to_string()),
    }
}

/// Shows a flag as the user most likely wrote it: `--port <PORT>` becomes `-port`.
fn flag_name(arg: &str) -> String {
    let name = arg.split([' ', '=']).next().unwrap_or(arg);
    match name.strip_prefix("--") {
        Some(rest) => format!("-{rest}"),
        None => name.to_string(),
    }
}

/// Turns a clap error into the one sentence we print, for the command `cmd`.
pub fn one_sentence(err: &clap::Error, cmd: &str) -> String {
    let help = format!("run 'kelp {cmd} -h' to list the flags");
    match err.kind() {
        ErrorKind::UnknownArgument => {
            let arg = context_string(err, ContextKind::InvalidArg).unwrap_or_default();
            format!("kelp {cmd}: unknown flag {}; {help}.", flag_name(&arg))
        }
        ErrorKind::InvalidValue | ErrorKind::ValueValidation => {
            let arg = context_string(err, ContextKind::InvalidArg).unwrap_or_default();
            let value = context_string(err, ContextKind::InvalidValue).unwrap_or_default();
            let why = err
                .source()
                .map(|s| format!(": {s}"))
                .or_else(|| {
                    context_string(err, ContextKind::ValidValue)
                        .map(|v| format!(": expected one of {v}"))
                })
                .unwrap_or_default();
            format!(
                "kelp {cmd}: bad value {value:?} for {}{why}.",
                flag_name(&arg)
            )
        }
        ErrorKind::InvalidSubcommand => {
            let sub = context_string(err, ContextKind::InvalidSubcommand).unwrap_or_default();
            format!("kelp: unknown command {sub:?}; run 'kelp -h' to list the commands.")
        }
        ErrorKind::MissingRequiredArgument => {
            let arg = context_string(err, ContextKind::InvalidArg).unwrap_or_default();
            format!("kelp {cmd}: missing {}; {help}.", flag_name(&arg))
        }
        ErrorKind::MissingSubcommand | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            "kelp: missing command; run 'kelp -h' to list the commands.".to_string()
        }
        _ => {
            let text = err.to_string();
            let first = text.lines().next().unwrap_or("bad command line");
            let first = first.trim_start_matches("error: ").trim_end_matches('.');
            format!("kelp {cmd}: {first}; {help}.")
        }
    }
}

use std::error::Error as _;

#[cfg(test)]
mod tests {
    use super::*;

    fn n(args: &[&str]) -> Vec<String> {
        normalise(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn single_dash_long_flags_become_double_dash() {
        assert_eq!(
            n(&[
                "kelp",
                "server",
                "-dir=./d",
                "-master.peers",
                "a:1,b:2",
                "--port=3",
                "-h"
            ]),
            [
                "kelp",
                "server",
                "--dir=./d",
                "--master.peers",
                "a:1,b:2",
                "--port=3",
                "--help"
            ]
        );
    }

    #[test]
    fn values_and_passthrough_are_kept() {
        assert_eq!(
            n(&["kelp", "benchmark", "-n", "-5"]),
            ["kelp", "benchmark", "--n", "-5"]
        );
        assert_eq!(
            n(&["kelp", "shell", "--", "-x"]),
            ["kelp", "shell", "--", "-x"]
        );
        assert_eq!(n(&["kelp", "-"]), ["kelp", "-"]);
    }
}
