//! keelctl vs etcdctl on `put`, `get`, `del`, `txn` and `compaction`: the same commands against
//! two identical fresh servers must print the same bytes and exit with the same codes.

mod keelctl_support;
use keelctl_support::*;

#[test]
fn put_get_del_print_like_etcdctl() {
    if !available() {
        return;
    }
    let p = Pair::start();
    p.same(&["put", "foo", "bar"]);
    p.same(&["put", "foo2", "b z", "--prev-kv"]);
    p.same(&["put", "foo2", "x", "--prev-kv"]);
    p.same(&["put", "foo2", "y", "--prev-kv", "-w", "json"]);
    p.same(&["put", "foo3", "<&>\"é"]);
    p.same(&["put", "other", "o"]);
    p.same(&["put", "-w", "protobuf", "bin", "\u{1}\u{2}"]);
    p.same_stdin(&["put", "from-stdin"], Some("piped value"));
    p.same(&["put", "foo", "--ignore-value"]);
    p.same(&["put", "nokey", "--ignore-value"]);
    p.same(&["put", "k", "v", "--lease=zz"]);
    p.same(&["put", "k", "v", "--lease=123"]);
    for args in [
        &["get", "foo"][..],
        &["get", "foo", "--prefix"],
        &["get", "foo", "foo3"],
        &["get", "", "--prefix"],
        &["get", "", "--from-key"],
        &["get", "foo2", "--from-key", "--limit=2"],
        &["get", "foo", "--prefix", "--keys-only"],
        &["get", "foo", "--prefix", "--print-value-only"],
        &["get", "foo", "--prefix", "--hex"],
        &["get", "foo", "--prefix", "--rev=3"],
        &["get", "foo", "--prefix", "--consistency=s"],
        &[
            "get",
            "foo",
            "--prefix",
            "--sort-by=VALUE",
            "--order=DESCEND",
        ],
        &[
            "get",
            "foo",
            "--prefix",
            "--sort-by=create",
            "--order=descend",
        ],
        &["get", "foo", "--prefix", "--sort-by=MODIFY"],
        &[
            "get",
            "foo",
            "--prefix",
            "--sort-by=VERSION",
            "--order=ASCEND",
        ],
        &[
            "get",
            "foo",
            "--prefix",
            "--sort-by=KEY",
            "--order=DESCEND",
            "--limit=2",
        ],
        &["get", "foo", "-w", "json"],
        &["get", "foo", "--prefix", "-w", "json", "--limit=1"],
        &["get", "foo3", "-w", "json"],
        &["get", "missing", "-w", "json"],
        &["get", "foo", "--prefix", "-w", "protobuf"],
        &["get", "from-stdin", "--hex", "--print-value-only"],
        &["get", "foo", "-w", "table"],
        &["get", "foo", "--prefix", "-w", "fields"],
        &["get", "foo", "-w", "fields", "--hex"],
        &["get", "foo3", "-w", "fields"],
        &["get", "foo", "-w", "bogus"],
        &["get", "foo", "--sort-by=XX"],
        &["get", "foo", "--order=X"],
        &["get", "foo", "--consistency=x"],
        &["get", "foo", "--prefix", "--from-key"],
        &["get", "foo", "zoo", "--prefix"],
        &["get"],
        &["get", "foo", "--rev=100"],
    ] {
        p.same(args);
    }
    p.same(&["put", "foo", "z", "--prev-kv", "-w", "fields"]);
    p.same(&["del", "foo3", "--prev-kv", "-w", "fields"]);
    p.same(&["del", "foo2", "--prev-kv"]);
    p.same(&["del", "nothing"]);
    p.same(&["del", "foo", "--prefix", "--prev-kv", "-w", "json"]);
    p.same(&["del", "a", "z"]);
    p.same(&["del", "", "--from-key"]);
    p.same(&["del"]);
    p.same(&["del", "a", "--prefix", "--from-key"]);
    p.same(&["get", "", "--prefix"]);
}

#[test]
fn count_only_prints_the_count() {
    // etcdctl 3.4 has no --count-only (3.5 does); check keelctl against the 3.5 behaviour.
    if !available() {
        return;
    }
    let s = Server::start();
    for k in ["c1", "c2", "c3"] {
        assert_eq!(run(Tool::Keelctl, &s, &["put", k, "v"], None).code, 0);
    }
    let o = run(
        Tool::Keelctl,
        &s,
        &["get", "c", "--prefix", "--count-only"],
        None,
    );
    assert_eq!((o.stdout.as_str(), o.code), ("3\n", 0));
    let o = run(
        Tool::Keelctl,
        &s,
        &["get", "c", "--prefix", "--count-only", "-w", "json"],
        None,
    );
    assert!(
        o.stdout.contains("\"count\":3") && !o.stdout.contains("\"kvs\""),
        "{o:?}"
    );
}

#[test]
fn txn_reads_etcdctl_stdin_format() {
    if !available() {
        return;
    }
    let p = Pair::start();
    p.same(&["put", "k1", "v1"]);
    p.same(&["put", "k2", "old", "--lease=0"]);
    let cases: &[(&[&str], &str)] = &[
        (
            &["txn"],
            "value(\"k1\") = \"v1\"\nmod(\"k1\") > \"0\"\n\nput k2 v2 --prev-kv\nget k --prefix\ndel k9\n\nput k3 v3\n\n",
        ),
        (&["txn", "-w", "json"], "val(\"k1\") = \"v1\"\n\nput k2 v2\nget k1\n\n\n"),
        (&["txn"], "version(\"k1\") = \"9\"\n\n\nget k1 --keys-only\ndel k2 --prev-kv\n\n"),
        (&["txn"], "c(\"k1\") != \"0\"\nver(\"k1\") < \"5\"\n\nput \"k 4\" \"x y\"\n\n\n"),
        (&["txn", "-i"], "m(\"k1\") = \"2\"\n\nget k --prefix --limit=1\n\nput k5 v5\n\n"),
        (&["txn"], "\n\nput a b\n"),
        (&["txn"], "bad\n"),
        (&["txn"], "\nfrob x\n\n\n"),
        (&["txn"], "nope(\"k1\") = \"1\"\n\n\n\n"),
        (&["txn"], "ver(\"k1\") = \"x\"\n\n\n\n"),
        (&["txn", "-w", "protobuf"], "\n\nput p q\n\n\n"),
        (&["txn", "-w", "fields"], "val(\"k1\") = \"v1\"\n\nput k2 v9 --prev-kv\nget k1\ndel nope\n\n\n"),
    ];
    for (args, input) in cases {
        p.same_stdin(args, Some(input));
    }
    p.same(&["get", "", "--prefix", "-w", "json"]);
}

#[test]
fn compaction_and_compacted_reads() {
    if !available() {
        return;
    }
    let p = Pair::start();
    for v in ["a", "b", "c", "d"] {
        p.same(&["put", "key", v]);
    }
    p.same(&["compaction", "3"]);
    p.same(&["compaction", "2"]);
    p.same(&["get", "key", "--rev=2"]);
    p.same(&["get", "key", "--rev=3", "-w", "json"]);
    p.same(&["compaction", "4", "--physical"]);
    p.same(&["compaction", "100"]);
    p.same(&["compaction", "x"]);
    p.same(&["compaction"]);
}

#[test]
fn endpoints_fail_over_and_come_from_the_environment() {
    if !available() {
        return;
    }
    let s = Server::start();
    let eps = format!("--endpoints=127.0.0.1:1,http://{}", s.endpoint());
    let o = run_opt(Tool::Keelctl, None, &[&eps, "put", "fo", "v"], None);
    assert_eq!((o.stdout.as_str(), o.code), ("OK\n", 0), "{o:?}");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_keelctl"))
        .env("ETCDCTL_ENDPOINTS", s.endpoint())
        .args(["get", "fo", "--print-value-only"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), "v\n");
    assert!(o.status.success());
}
