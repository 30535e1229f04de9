//! keelctl's argument errors against etcdctl's: same `Error:` text (apart from the program
//! name), same exit code. No server is needed: these fail before connecting.

mod keelctl_support;
use keelctl_support::*;

fn both(args: &[&str]) -> (Out, Out) {
    let mut full = vec!["--endpoints=127.0.0.1:1", "--dial-timeout=200ms"];
    full.extend_from_slice(args);
    (
        run_opt(Tool::Etcdctl, None, &full, None),
        run_opt(Tool::Keelctl, None, &full, None),
    )
}

#[test]
fn argument_errors_match_etcdctl() {
    if !std::path::Path::new(ETCDCTL).exists() {
        return;
    }
    let mut mismatches: Vec<String> = Vec::new();
    for args in [
        &["--bogus", "get"][..],
        &["get", "k", "--limit"],
        &["get", "k", "--limit=abc"],
        &["get", "k", "--prefix=maybe"],
        &["get", "k", "-x"],
        &["get"],
        &["get", "a", "--sort-by=XX"],
        &["get", "a", "--order=X"],
        &["get", "a", "--consistency=x"],
        &["get", "a", "--prefix", "--from-key"],
        &["get", "a", "b", "--prefix"],
        &["get", "a", "-w", "xyz"],
        &["put"],
        &["put", "k", "v", "--lease=zz"],
        &["put", "k", "--ignore-value", "v"],
        &["put", "k", "v", "--keys-only"],
        &["del"],
        &["del", "a", "--prefix", "--from-key"],
        &["lease", "grant"],
        &["lease", "grant", "xx"],
        &["lease", "grant", "-5"],
        &["lease", "revoke", "zz"],
        &["lease", "revoke"],
        &["lease", "timetolive"],
        &["member", "remove"],
        &["member", "remove", "zz"],
        &["member", "add"],
        &["member", "add", "n"],
        &["member", "update", "1"],
        &["compaction"],
        &["snapshot", "save"],
        &["move-leader"],
        &["move-leader", "zz"],
        &["watch"],
        &["watch", "a", "b", "--prefix"],
        &["lock"],
        &["elect"],
        &["elect", "a", "b", "c"],
    ] {
        let (e, k) = both(args);
        if k.error_lines() != e.error_lines() || k.code != e.code || k.error_lines().is_empty() {
            mismatches.push(format!("{args:?}:\n  etcdctl {e:?}\n  keelctl {k:?}"));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn unknown_command_exits_1_with_a_clear_error() {
    if !std::path::Path::new(ETCDCTL).exists() {
        return;
    }
    let (e, k) = both(&["nosuch"]);
    assert_eq!(k.code, e.code);
    assert_eq!(
        k.error_lines(),
        vec!["Error: unknown command \"nosuch\" for \"keelctl\""]
    );
}

#[test]
fn unreachable_endpoint_is_deadline_exceeded() {
    let (_, k) = both(&["get", "k"]);
    assert_eq!(k.error_lines(), vec!["Error: context deadline exceeded"]);
    assert_eq!(k.code, 1);
}

#[test]
fn version_names_keelctl() {
    let k = run_opt(Tool::Keelctl, None, &["version"], None);
    assert_eq!(k.code, 0);
    assert!(k.stdout.starts_with("keelctl version: "), "{k:?}");
    assert!(k.stdout.ends_with("\nAPI version: 3.4\n"), "{k:?}");
}
