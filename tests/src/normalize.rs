//! Making etcdctl output comparable between keel and a real etcd.
//!
//! What legitimately differs between two clusters running the same session, and how it is
//! replaced:
//! - `127.0.0.1:<port>` of a known member → `<client:NAME>` / `<peer:NAME>` (ports are random);
//! - IDs (member, cluster, lease: hex or decimal tokens of 12+ digits) → `<id1>`, `<id2>`, ... in
//!   order of first appearance over the whole session, so "the same lease as before" still has to
//!   be the same;
//! - `took = 1.2ms` → `took = <t>`; `remaining(59s)` → `remaining(<r>s)` (checked ≤ the TTL
//!   by the caller's comparison of the granted TTL);
//! - `"raft_term":N` / `"RaftTerm" : N` → `<term>` (etcd's log also holds configuration entries);
//! - the cluster's temporary directory → `<dir>`;
//! - client-side log lines on stderr (`{"level":...}` JSON from etcdctl's gRPC retry logger,
//!   which carry timestamps) are dropped.

use std::collections::HashMap;

/// Normalises text; keeps the ID mapping across calls (see module docs).
#[derive(Debug, Default)]
pub struct Normalizer {
    ports: HashMap<u16, String>,
    ids: HashMap<String, String>,
    dir: Option<String>,
}

impl Normalizer {
    /// A normaliser that knows the members' ports (`(client, peer, name)`) and the temp dir.
    pub fn new(members: &[(u16, u16, String)], dir: &str) -> Normalizer {
        let mut ports = HashMap::new();
        for (c, p, name) in members {
            ports.insert(*c, format!("<client:{name}>"));
            ports.insert(*p, format!("<peer:{name}>"));
        }
        Normalizer {
            ports,
            ids: HashMap::new(),
            dir: Some(dir.to_string()),
        }
    }

    /// Names an ID in advance (member and cluster IDs, so their placeholders do not depend on
    /// which member happened to answer first): its `%x`, `%016x` and decimal forms all become
    /// `placeholder`.
    pub fn name_id(&mut self, id: u64, placeholder: &str) {
        for form in [format!("{id:x}"), format!("{id:016x}"), id.to_string()] {
            self.ids.insert(form, placeholder.to_string());
        }
    }

    /// Normalises one piece of output.
    pub fn apply(&mut self, text: &str) -> String {
        let mut s = text.to_string();
        if let Some(d) = &self.dir {
            s = s.replace(d.as_str(), "<dir>");
        }
        s = self.replace_endpoints(&s);
        s = self.replace_ids(&s);
        s = replace_after(&s, "took = ", |c| c != ',' && !c.is_whitespace(), "<t>");
        s = collapse_table_padding(&s);
        s = replace_after(&s, "\"took\":\"", |c| c != '"', "<t>");
        s = replace_after(&s, "remaining(", |c| c.is_ascii_digit(), "<r>");
        s = replace_after(&s, "\"raft_term\":", |c| c.is_ascii_digit(), "<term>");
        s = replace_after(&s, "\"RaftTerm\" : ", |c| c.is_ascii_digit(), "<term>");
        s
    }

    /// Normalises stderr: drops client log lines, then [`Normalizer::apply`].
    pub fn apply_stderr(&mut self, text: &str) -> String {
        let kept: Vec<&str> = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("{\"level\":"))
            .collect();
        self.apply(&kept.join("\n"))
    }

    fn replace_endpoints(&self, s: &str) -> String {
        let pat = "127.0.0.1:";
        let mut out = String::new();
        let mut rest = s;
        while let Some(pos) = rest.find(pat) {
            out.push_str(&rest[..pos]);
            let after = &rest[pos + pat.len()..];
            let digits: String = after.chars().take_while(|c| c.is_ascii_digit()).collect();
            match digits.parse::<u16>().ok().and_then(|p| self.ports.get(&p)) {
                Some(name) => out.push_str(name),
                None => {
                    out.push_str(pat);
                    out.push_str(&digits);
                }
            }
            rest = &after[digits.len()..];
        }
        out.push_str(rest);
        out
    }

    fn replace_ids(&mut self, s: &str) -> String {
        let mut out = String::new();
        let mut token = String::new();
        for c in s.chars().chain(std::iter::once('\u{0}')) {
            if c.is_ascii_alphanumeric() {
                token.push(c);
                continue;
            }
            if !token.is_empty() {
                if token.len() >= 12 && token.chars().all(|t| t.is_ascii_hexdigit()) {
                    let n = self.ids.values().filter(|v| v.starts_with("<id")).count() + 1;
                    let id = self
                        .ids
                        .entry(token.clone())
                        .or_insert_with(|| format!("<id{n}>"));
                    out.push_str(id);
                } else {
                    out.push_str(&token);
                }
                token.clear();
            }
            if c != '\u{0}' {
                out.push(c);
            }
        }
        out
    }
}

/// Table output pads columns to the widest cell, so an ID one digit shorter changes every
/// border: runs of `-` in border lines and of spaces in row lines become one.
fn collapse_table_padding(s: &str) -> String {
    let mut out = String::new();
    for (n, line) in s.split('\n').enumerate() {
        if n > 0 {
            out.push('\n');
        }
        let pad = if line.starts_with("+-") {
            Some('-')
        } else if line.starts_with('|') {
            Some(' ')
        } else {
            None
        };
        match pad {
            None => out.push_str(line),
            Some(p) => {
                let mut prev = None;
                for c in line.chars() {
                    if !(c == p && prev == Some(p)) {
                        out.push(c);
                    }
                    prev = Some(c);
                }
            }
        }
    }
    out
}

/// Replaces the run of characters matching `keep` that follows each `marker` with `with`.
fn replace_after(s: &str, marker: &str, keep: impl Fn(char) -> bool, with: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(pos) = rest.find(marker) {
        out.push_str(&rest[..pos + marker.len()]);
        let after = &rest[pos + marker.len()..];
        let n: usize = after
            .chars()
            .take_while(|&c| keep(c))
            .map(char::len_utf8)
            .sum();
        out.push_str(with);
        rest = &after[n..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_ports_and_timings() {
        let mut n = Normalizer::new(&[(2379, 2380, "m1".into())], "/tmp/x");
        let a = n.apply("lease 694d7a1b2c3d4e5f granted, 127.0.0.1:2379 took = 1.5ms, /tmp/x/s");
        assert_eq!(a, "lease <id1> granted, <client:m1> took = <t>, <dir>/s");
        // Same ID again keeps its number; a new one gets the next; unknown ports stay.
        let b = n.apply("694d7a1b2c3d4e5f 8e9e05c52164694d 127.0.0.1:23791 rev 12");
        assert_eq!(b, "<id1> <id2> 127.0.0.1:23791 rev 12");
        assert_eq!(
            n.apply("{\"raft_term\":7,\"x\":1} remaining(59s)"),
            "{\"raft_term\":<term>,\"x\":1} remaining(<r>s)"
        );
        assert_eq!(n.apply_stderr("{\"level\":\"warn\"}\nError: x"), "Error: x");
        assert_eq!(
            n.apply("+----+--+\n|  a | b  |\nx  y"),
            "+-+-+\n| a | b |\nx  y"
        );
    }
}
