//! keelctl vs etcdctl on `member`, `endpoint`, `alarm`, `defrag`, `move-leader` and
//! `snapshot save`.

mod keelctl_support;
use keelctl_support::*;

/// The new member's ID (hex) from `member add` output: "Member <id> added ...".
fn added_id(o: &Out) -> String {
    o.stdout
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("no member id in {o:?}"))
        .to_string()
}

#[test]
fn member_commands_print_like_etcdctl() {
    if !available() {
        return;
    }
    let p = Pair::start();
    for w in ["simple", "json", "table", "fields"] {
        p.same(&["member", "list", "-w", w]);
    }
    // A learner does not count towards the quorum, so the one-member cluster keeps working.
    let args = [
        "member",
        "add",
        "newbie",
        "--learner",
        "--peer-urls=http://127.0.0.1:2390,http://127.0.0.1:2391",
    ];
    let e = run(Tool::Etcdctl, &p.etcd_side, &args, None);
    let k = run(Tool::Keelctl, &p.keel_side, &args, None);
    let (eid, kid) = (added_id(&e), added_id(&k));
    // The new member's ID is random: normalize it like the other IDs.
    let strip = |o: &Out, id: &str, s: &Server| {
        let mut n = normalize(o, s);
        n.stdout = n.stdout.replace(id, "NEWID");
        n
    };
    assert_same(
        &args,
        &strip(&e, &eid, &p.etcd_side),
        &strip(&k, &kid, &p.keel_side),
    );
    assert!(
        k.stdout.contains("ETCD_INITIAL_CLUSTER_STATE=\"existing\""),
        "{k:?}"
    );

    for w in ["simple", "json", "table"] {
        let (e, k) = p.run(&["member", "list", "-w", w], None);
        assert_same(
            &["member", "list", "-w", w],
            &Out {
                stdout: sort_lines(&e.stdout.replace(&eid, "NEWID")),
                ..e.clone()
            },
            &Out {
                stdout: sort_lines(&k.stdout.replace(&kid, "NEWID")),
                ..k.clone()
            },
        );
    }
    let (e, k) = p.run2(
        &[
            "member",
            "update",
            &eid,
            "--peer-urls=http://127.0.0.1:2392",
        ],
        &[
            "member",
            "update",
            &kid,
            "--peer-urls=http://127.0.0.1:2392",
        ],
        None,
    );
    let fix = |o: &Out, id: &str| Out {
        stdout: o.stdout.replace(id, "NEWID"),
        ..o.clone()
    };
    assert_same(&["member", "update"], &fix(&e, &eid), &fix(&k, &kid));
    // Promoting a learner that never started fails the same way.
    let (e, k) = p.run2(
        &["member", "promote", &eid],
        &["member", "promote", &kid],
        None,
    );
    assert_same(&["member", "promote"], &fix(&e, &eid), &fix(&k, &kid));
    let (e, k) = p.run2(
        &["member", "remove", &eid, "-w", "json"],
        &["member", "remove", &kid, "-w", "json"],
        None,
    );
    assert_same(&["member", "remove"], &fix(&e, &eid), &fix(&k, &kid));
    p.same(&["member", "remove", "1234"]);
    p.same(&["member", "list"]);
}

/// Table rows (and JSON members) of a two-member list come in server order; sort the lines so
/// the comparison does not depend on it.
fn sort_lines(s: &str) -> String {
    let mut v: Vec<&str> = s.lines().collect();
    v.sort();
    v.join("\n")
}

#[test]
fn endpoint_alarm_defrag_move_leader_print_like_etcdctl() {
    if !available() {
        return;
    }
    let p = Pair::start();
    // Status shows the db size and raft index, which depend on when etcd's background
    // commits ran: compare both tools on one server.
    for w in ["simple", "json", "table", "fields"] {
        p.same_on_one_server(&["endpoint", "status", "-w", w]);
    }
    // Health prints a duration: normalized to DURATION; in the table the column width follows
    // it, so the table is compared with runs of padding collapsed.
    p.same(&["endpoint", "health"]);
    p.same(&["endpoint", "health", "-w", "json"]);
    let (e, k) = p.run(&["endpoint", "health", "-w", "table"], None);
    let squash = |o: &Out| Out {
        stdout: o
            .stdout
            .split('\n')
            .map(|l| {
                let mut out = String::new();
                for c in l.chars() {
                    if (c == ' ' || c == '-') && out.ends_with(c) {
                        continue;
                    }
                    out.push(c);
                }
                out
            })
            .collect::<Vec<_>>()
            .join("\n"),
        ..o.clone()
    };
    assert_same(
        &["endpoint", "health", "-w", "table"],
        &squash(&e),
        &squash(&k),
    );
    assert!(
        k.stdout.contains("| HEALTH |") && k.stdout.contains("|   true |"),
        "{k:?}"
    );

    for w in ["simple", "json", "table"] {
        p.same_on_one_server(&["endpoint", "hashkv", "-w", w]);
    }
    p.same_on_one_server(&["endpoint", "hashkv", "--rev=1"]);
    p.same(&["alarm", "list"]);
    p.same(&["alarm", "list", "-w", "json"]);
    p.same(&["alarm", "disarm"]);
    p.same(&["alarm", "disarm", "-w", "json"]);
    p.same(&["defrag"]);
    p.same(&["move-leader", "1234"]);
    p.same_on_one_server(&["endpoint", "status"]);
}

#[test]
fn unreachable_endpoints_are_reported_like_etcdctl() {
    if !available() {
        return;
    }
    let dead = [
        "--endpoints=127.0.0.1:1",
        "--dial-timeout=300ms",
        "--command-timeout=1s",
    ];
    for cmd in [
        &["endpoint", "status"][..],
        &["endpoint", "health"],
        &["defrag"],
    ] {
        let mut args = dead.to_vec();
        args.extend_from_slice(cmd);
        let e = run_opt(Tool::Etcdctl, None, &args, None);
        let k = run_opt(Tool::Keelctl, None, &args, None);
        assert_same(&args, &e, &k);
    }
}

#[test]
fn snapshot_save_writes_a_verified_etcd_snapshot() {
    if !available() {
        return;
    }
    let p = Pair::start();
    for i in 0..50 {
        p.same(&["put", &format!("snap/{i:03}"), &"x".repeat(100)]);
    }
    let dir = p.keel_side.dir.join("snaps");
    std::fs::create_dir_all(&dir).unwrap();
    let kfile = dir.join("k.db");
    let efile = dir.join("e.db");
    let k = run(
        Tool::Keelctl,
        &p.keel_side,
        &["snapshot", "save", kfile.to_str().unwrap()],
        None,
    );
    let e = run(
        Tool::Etcdctl,
        &p.etcd_side,
        &["snapshot", "save", efile.to_str().unwrap()],
        None,
    );
    assert_eq!(k.code, 0, "{k:?}");
    assert_eq!(k.stdout, format!("Snapshot saved at {}\n", kfile.display()));
    assert_eq!(e.stdout, format!("Snapshot saved at {}\n", efile.display()));
    let data = std::fs::read(&kfile).unwrap();
    assert!(
        snapshot_digest_ok(&data),
        "keelctl's file must end with the sha256 of the db"
    );
    assert!(!dir.join("k.db.part").exists());
    // etcd's own tool reads keelctl's file: same revision and key count as etcdctl's file.
    // (keel's snapshot is its own B+tree file, not bbolt: only etcd's can be read this way.)
    if target_is_keel() {
        return;
    }
    let status = |f: &std::path::Path| {
        let o = run_opt(
            Tool::Etcdctl,
            None,
            &["snapshot", "status", f.to_str().unwrap(), "-w", "json"],
            None,
        );
        assert_eq!(o.code, 0, "{o:?}");
        let v = o.stdout;
        let field = |name: &str| {
            let at = v
                .find(&format!("\"{name}\":"))
                .unwrap_or_else(|| panic!("{v}"));
            v[at..].split([',', '}']).next().unwrap().to_string()
        };
        (field("revision"), field("totalKey"))
    };
    assert_eq!(status(&kfile), status(&efile));
    // Wrong usage matches etcdctl.
    p.same(&["snapshot", "save"]);
    let two = format!(
        "--endpoints={},{}",
        p.keel_side.endpoint(),
        p.keel_side.endpoint()
    );
    let k = run_opt(
        Tool::Keelctl,
        None,
        &[&two, "snapshot", "save", "x.db"],
        None,
    );
    assert_eq!(k.code, 128, "{k:?}");
}
