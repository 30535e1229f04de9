//! Command-line parsing in the manner of etcdctl's cobra/pflag: flags may appear before or after
//! the command and between positional arguments; `--flag=value`, `--flag value`, `-w json`,
//! `-wjson`; boolean flags take no separate value (`--prefix`, `--prefix=false`); `--` ends
//! flags. The error texts are pflag's, so scripts see the same messages.

use super::error::CtlError;
use std::collections::HashMap;
use std::time::Duration;

/// Whether a flag takes a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `--flag` alone means true; `--flag=false` is accepted.
    Bool,
    /// `--flag value` or `--flag=value`.
    Value,
}

/// One flag a command accepts.
#[derive(Clone, Copy, Debug)]
pub struct FlagSpec {
    /// Long name without dashes.
    pub long: &'static str,
    /// One-letter shorthand, if any.
    pub short: Option<char>,
    /// Bool or value.
    pub kind: Kind,
}

const fn b(long: &'static str) -> FlagSpec {
    FlagSpec {
        long,
        short: None,
        kind: Kind::Bool,
    }
}
const fn v(long: &'static str) -> FlagSpec {
    FlagSpec {
        long,
        short: None,
        kind: Kind::Value,
    }
}
const fn bs(long: &'static str, short: char) -> FlagSpec {
    FlagSpec {
        long,
        short: Some(short),
        kind: Kind::Bool,
    }
}
const fn vs(long: &'static str, short: char) -> FlagSpec {
    FlagSpec {
        long,
        short: Some(short),
        kind: Kind::Value,
    }
}

/// Flags every command accepts (etcdctl's global flags; the TLS/auth/discovery ones are parsed
/// and rejected later if set, since keelctl speaks plain HTTP/2 only).
pub const GLOBAL_FLAGS: &[FlagSpec] = &[
    v("endpoints"),
    v("dial-timeout"),
    v("command-timeout"),
    v("keepalive-time"),
    v("keepalive-timeout"),
    vs("write-out", 'w'),
    b("hex"),
    b("debug"),
    b("insecure-transport"),
    b("insecure-skip-tls-verify"),
    b("insecure-discovery"),
    v("cacert"),
    v("cert"),
    v("key"),
    v("user"),
    v("password"),
    vs("discovery-srv", 'd'),
    v("discovery-srv-name"),
    bs("help", 'h'),
];

/// A command: its words (`["lease", "grant"]`) and its own flags.
#[derive(Debug)]
pub struct CommandSpec {
    /// The command words.
    pub path: &'static [&'static str],
    /// Flags besides the global ones.
    pub flags: &'static [FlagSpec],
}

/// Flags of `get` (also used for `get` lines inside `txn`).
pub const GET_FLAGS: &[FlagSpec] = &[
    v("consistency"),
    b("from-key"),
    b("keys-only"),
    b("count-only"),
    v("limit"),
    v("order"),
    b("prefix"),
    b("print-value-only"),
    v("rev"),
    v("sort-by"),
];
/// Flags of `put`.
pub const PUT_FLAGS: &[FlagSpec] = &[
    b("prev-kv"),
    v("lease"),
    b("ignore-value"),
    b("ignore-lease"),
];
/// Flags of `del`.
pub const DEL_FLAGS: &[FlagSpec] = &[b("prefix"), b("from-key"), b("prev-kv")];

/// Every command keelctl knows.
pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        path: &["get"],
        flags: GET_FLAGS,
    },
    CommandSpec {
        path: &["put"],
        flags: PUT_FLAGS,
    },
    CommandSpec {
        path: &["del"],
        flags: DEL_FLAGS,
    },
    CommandSpec {
        path: &["txn"],
        flags: &[bs("interactive", 'i')],
    },
    CommandSpec {
        path: &["watch"],
        flags: &[
            b("prefix"),
            v("rev"),
            b("prev-kv"),
            bs("interactive", 'i'),
            b("progress-notify"),
        ],
    },
    CommandSpec {
        path: &["compaction"],
        flags: &[b("physical")],
    },
    CommandSpec {
        path: &["defrag"],
        flags: &[b("cluster")],
    },
    CommandSpec {
        path: &["lease", "grant"],
        flags: &[],
    },
    CommandSpec {
        path: &["lease", "revoke"],
        flags: &[],
    },
    CommandSpec {
        path: &["lease", "timetolive"],
        flags: &[b("keys")],
    },
    CommandSpec {
        path: &["lease", "list"],
        flags: &[],
    },
    CommandSpec {
        path: &["lease", "keep-alive"],
        flags: &[b("once")],
    },
    CommandSpec {
        path: &["member", "list"],
        flags: &[],
    },
    CommandSpec {
        path: &["member", "add"],
        flags: &[v("peer-urls"), b("learner")],
    },
    CommandSpec {
        path: &["member", "remove"],
        flags: &[],
    },
    CommandSpec {
        path: &["member", "update"],
        flags: &[v("peer-urls")],
    },
    CommandSpec {
        path: &["member", "promote"],
        flags: &[],
    },
    CommandSpec {
        path: &["endpoint", "status"],
        flags: &[b("cluster")],
    },
    CommandSpec {
        path: &["endpoint", "health"],
        flags: &[b("cluster")],
    },
    CommandSpec {
        path: &["endpoint", "hashkv"],
        flags: &[b("cluster"), v("rev")],
    },
    CommandSpec {
        path: &["snapshot", "save"],
        flags: &[],
    },
    CommandSpec {
        path: &["alarm", "list"],
        flags: &[],
    },
    CommandSpec {
        path: &["alarm", "disarm"],
        flags: &[],
    },
    CommandSpec {
        path: &["move-leader"],
        flags: &[],
    },
    CommandSpec {
        path: &["lock"],
        flags: &[v("ttl")],
    },
    CommandSpec {
        path: &["elect"],
        flags: &[bs("listen", 'l'), v("ttl")],
    },
    CommandSpec {
        path: &["version"],
        flags: &[],
    },
];

/// A parsed command line.
#[derive(Debug, Default)]
pub struct Invocation {
    /// The command words, e.g. `["lease", "grant"]` (empty: no command given).
    pub command: Vec<&'static str>,
    /// Flag values by long name (bools are "true"/"false").
    pub flags: HashMap<&'static str, String>,
    /// Positional arguments after the command words.
    pub args: Vec<String>,
}

impl Invocation {
    /// A flag's value, if it was given.
    pub fn get(&self, long: &str) -> Option<&str> {
        self.flags.get(long).map(|s| s.as_str())
    }
    /// A string flag with a default.
    pub fn string(&self, long: &str, default: &str) -> String {
        self.get(long).unwrap_or(default).to_string()
    }
    /// A boolean flag (false if absent).
    pub fn bool(&self, long: &str) -> bool {
        self.get(long) == Some("true")
    }
    /// An integer flag (pflag's message on a bad value, exit 1).
    pub fn int(&self, long: &str, default: i64) -> Result<i64, CtlError> {
        match self.get(long) {
            None => Ok(default),
            Some(s) => s.parse::<i64>().map_err(|_| {
                CtlError::error(format!(
                    "invalid argument \"{s}\" for \"--{long}\" flag: {}",
                    parse_int_error("ParseInt", s, 10)
                ))
            }),
        }
    }
    /// A duration flag in Go syntax (`5s`, `300ms`, `1m30s`).
    pub fn duration(&self, long: &str, default: Duration) -> Result<Duration, CtlError> {
        match self.get(long) {
            None => Ok(default),
            Some(s) => parse_go_duration(s).ok_or_else(|| {
                CtlError::error(format!(
                    "invalid argument \"{s}\" for \"--{long}\" flag: time: invalid duration \"{s}\""
                ))
            }),
        }
    }
}

/// Go's `strconv.ParseInt: parsing "x": invalid syntax` text (or `value out of range`).
pub fn parse_int_error(func: &str, s: &str, radix: u32) -> String {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    let why = if !digits.is_empty() && digits.chars().all(|c| c.is_digit(radix)) {
        "value out of range"
    } else {
        "invalid syntax"
    };
    format!("strconv.{func}: parsing {}: {why}", go_quote(s))
}

/// Go's `%q` of a string (enough for error messages: escapes quotes, backslashes, controls).
pub fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Parses a Go duration string: a sequence of decimal numbers with units ns, us, µs, ms, s, m, h.
pub fn parse_go_duration(s: &str) -> Option<Duration> {
    if s == "0" {
        return Some(Duration::ZERO);
    }
    let mut rest = s;
    let mut total = 0f64;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let n: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += n * scale;
    }
    Some(Duration::from_secs_f64(total))
}

fn find_flag<'a>(specs: &[&'a [FlagSpec]], long: &str) -> Option<&'a FlagSpec> {
    specs.iter().flat_map(|s| s.iter()).find(|f| f.long == long)
}

fn find_short<'a>(specs: &[&'a [FlagSpec]], short: char) -> Option<&'a FlagSpec> {
    specs
        .iter()
        .flat_map(|s| s.iter())
        .find(|f| f.short == Some(short))
}

fn parse_bool(flag: &str, value: &str) -> Result<String, CtlError> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok("true".into()),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok("false".into()),
        _ => Err(CtlError::error(format!(
            "invalid argument \"{value}\" for \"--{flag}\" flag: strconv.ParseBool: parsing {}: invalid syntax",
            go_quote(value)
        ))),
    }
}

/// Parses arguments for a fixed flag set (used for the op lines inside `txn`): every token that
/// is not a flag is positional.
pub fn parse_flags(tokens: &[String], flags: &'static [FlagSpec]) -> Result<Invocation, CtlError> {
    parse_with(tokens, &[flags], false)
}

/// Parses a full keelctl command line (without the program name).
pub fn parse(tokens: &[String]) -> Result<Invocation, CtlError> {
    parse_with(tokens, &[GLOBAL_FLAGS], true)
}

fn parse_with(
    tokens: &[String],
    base: &[&'static [FlagSpec]],
    find_command: bool,
) -> Result<Invocation, CtlError> {
    let mut inv = Invocation::default();
    let mut specs: Vec<&'static [FlagSpec]> = base.to_vec();
    let mut positional: Vec<String> = Vec::new();
    let mut command_done = !find_command;
    let mut i = 0;
    let mut only_positional = false;
    while i < tokens.len() {
        let tok = &tokens[i];
        i += 1;
        if only_positional || tok == "-" || !tok.starts_with('-') {
            if !command_done {
                // Extend the command path while the words name a command (or a group).
                let mut candidate: Vec<&str> = inv.command.clone();
                candidate.push(tok.as_str());
                let exact = COMMANDS.iter().find(|c| c.path == candidate.as_slice());
                let prefix = COMMANDS
                    .iter()
                    .any(|c| c.path.len() > candidate.len() && c.path.starts_with(&candidate));
                if let Some(c) = exact {
                    inv.command = c.path.to_vec();
                    specs.push(c.flags);
                    command_done = true;
                    continue;
                }
                if prefix {
                    let group = COMMANDS
                        .iter()
                        .find(|c| c.path.starts_with(&candidate))
                        .expect("prefix exists");
                    inv.command = group.path[..candidate.len()].to_vec();
                    continue;
                }
                if inv.command.is_empty() {
                    return Err(CtlError::error(format!(
                        "unknown command {} for \"keelctl\"",
                        go_quote(tok)
                    )));
                }
                // A group followed by an unknown word: cobra treats it as an argument to the
                // group, which has no Run; report it like cobra's help output would.
                return Err(CtlError::error(format!(
                    "unknown command {} for \"keelctl {}\"",
                    go_quote(tok),
                    inv.command.join(" ")
                )));
            }
            positional.push(tok.clone());
            continue;
        }
        if tok == "--" {
            only_positional = true;
            if !command_done {
                command_done = true;
            }
            continue;
        }
        if let Some(body) = tok.strip_prefix("--") {
            let (name, inline) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (body, None),
            };
            let spec = find_flag(&specs, name)
                .ok_or_else(|| CtlError::error(format!("unknown flag: --{name}")))?;
            let value = match (spec.kind, inline) {
                (Kind::Bool, None) => "true".to_string(),
                (Kind::Bool, Some(v)) => parse_bool(spec.long, &v)?,
                (Kind::Value, Some(v)) => v,
                (Kind::Value, None) => {
                    if i >= tokens.len() {
                        return Err(CtlError::error(format!("flag needs an argument: --{name}")));
                    }
                    i += 1;
                    tokens[i - 1].clone()
                }
            };
            inv.flags.insert(spec.long, value);
            continue;
        }
        // Shorthand cluster: -w json, -wjson, -w=json, -il.
        let body = &tok[1..];
        let chars: Vec<char> = body.chars().collect();
        let mut j = 0;
        while j < chars.len() {
            let c = chars[j];
            let spec = find_short(&specs, c).ok_or_else(|| {
                CtlError::error(format!("unknown shorthand flag: '{c}' in {tok}"))
            })?;
            match spec.kind {
                Kind::Bool => {
                    if chars.get(j + 1) == Some(&'=') {
                        let v: String = chars[j + 2..].iter().collect();
                        inv.flags.insert(spec.long, parse_bool(spec.long, &v)?);
                        j = chars.len();
                    } else {
                        inv.flags.insert(spec.long, "true".into());
                        j += 1;
                    }
                }
                Kind::Value => {
                    let mut rest: String = chars[j + 1..].iter().collect();
                    if let Some(r) = rest.strip_prefix('=') {
                        rest = r.to_string();
                    }
                    let value = if !rest.is_empty() {
                        rest
                    } else if i < tokens.len() {
                        i += 1;
                        tokens[i - 1].clone()
                    } else {
                        return Err(CtlError::error(format!(
                            "flag needs an argument: '{c}' in -{c}"
                        )));
                    };
                    inv.flags.insert(spec.long, value);
                    j = chars.len();
                }
            }
        }
    }
    if find_command && !command_done && !inv.command.is_empty() {
        // A bare group such as `keelctl lease`: cobra prints the group's help.
        return Err(CtlError::error(format!(
            "\"keelctl {}\" needs a subcommand",
            inv.command.join(" ")
        )));
    }
    inv.args = positional;
    Ok(inv)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &[&str]) -> Result<Invocation, CtlError> {
        parse(&s.iter().map(|x| x.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn flags_anywhere_and_both_value_syntaxes() {
        let inv = p(&[
            "--endpoints",
            "a:1,b:2",
            "get",
            "k",
            "--prefix",
            "-w",
            "json",
            "--limit=3",
        ])
        .unwrap();
        assert_eq!(inv.command, vec!["get"]);
        assert_eq!(inv.args, vec!["k"]);
        assert_eq!(inv.get("endpoints"), Some("a:1,b:2"));
        assert!(inv.bool("prefix"));
        assert_eq!(inv.get("write-out"), Some("json"));
        assert_eq!(inv.int("limit", 0).unwrap(), 3);
    }

    #[test]
    fn subcommands_and_shorthand_clusters() {
        let inv = p(&["lease", "timetolive", "abc", "--keys"]).unwrap();
        assert_eq!(inv.command, vec!["lease", "timetolive"]);
        assert_eq!(inv.args, vec!["abc"]);
        let inv = p(&["-wjson", "elect", "-l", "n"]).unwrap();
        assert_eq!(inv.get("write-out"), Some("json"));
        assert!(inv.bool("listen"));
        assert_eq!(inv.args, vec!["n"]);
    }

    #[test]
    fn double_dash_ends_flags() {
        let inv = p(&["put", "--", "-k", "--v"]).unwrap();
        assert_eq!(inv.args, vec!["-k", "--v"]);
    }

    #[test]
    fn bool_flag_values() {
        assert!(!p(&["get", "k", "--prefix=false"]).unwrap().bool("prefix"));
        let e = p(&["get", "k", "--prefix=maybe"]).unwrap_err();
        assert_eq!(e.code, 1);
        assert!(e
            .message
            .contains("invalid argument \"maybe\" for \"--prefix\""));
    }

    #[test]
    fn bad_flags_give_pflag_errors_and_exit_1() {
        let e = p(&["--bogus", "get"]).unwrap_err();
        assert_eq!((e.code, e.message.as_str()), (1, "unknown flag: --bogus"));
        let e = p(&["get", "k", "-x"]).unwrap_err();
        assert_eq!(e.message, "unknown shorthand flag: 'x' in -x");
        let e = p(&["get", "k", "--limit"]).unwrap_err();
        assert_eq!(e.message, "flag needs an argument: --limit");
        // A flag of another command is unknown here.
        let e = p(&["put", "k", "v", "--keys-only"]).unwrap_err();
        assert_eq!(e.message, "unknown flag: --keys-only");
        let inv = p(&["get", "k", "--limit=abc"]).unwrap();
        let e = inv.int("limit", 0).unwrap_err();
        assert_eq!(
            e.message,
            "invalid argument \"abc\" for \"--limit\" flag: strconv.ParseInt: parsing \"abc\": invalid syntax"
        );
    }

    #[test]
    fn unknown_command() {
        let e = p(&["nosuch"]).unwrap_err();
        assert_eq!(e.code, 1);
        assert_eq!(e.message, "unknown command \"nosuch\" for \"keelctl\"");
        assert!(p(&["lease", "nosuch"]).is_err());
        assert!(p(&["lease"]).is_err());
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_go_duration("300ms"), Some(Duration::from_millis(300)));
        assert_eq!(parse_go_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_go_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_go_duration("5"), None);
        assert_eq!(parse_go_duration("s"), None);
        assert_eq!(parse_go_duration(""), None);
        let inv = p(&["--dial-timeout=zz", "get", "k"]).unwrap();
        assert!(inv.duration("dial-timeout", Duration::ZERO).is_err());
    }
}
