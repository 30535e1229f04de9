//! keelctl vs etcdctl on `lease grant|timetolive|list|keep-alive|revoke` and keys attached to
//! leases. Lease IDs differ between the two servers (etcd makes them from the clock), so each
//! tool gets the ID its own server granted, and the outputs are compared with IDs normalized.

mod keelctl_support;
use keelctl_support::*;

/// The lease ID (hex) from `lease grant` output.
fn granted_id(o: &Out) -> String {
    o.stdout
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("no lease id in {o:?}"))
        .to_string()
}

/// The remaining TTL may tick differently on the two servers: make `remaining(99s)` and
/// `"ttl":99` comparable when within a few seconds of the granted TTL (busy machines).
/// etcd lists a lease's keys in Go map order, so sort them too.
fn settle_ttl(s: &str) -> String {
    let mut s = s.to_string();
    for left in 95..100 {
        s = s
            .replace(&format!("remaining({left}s)"), "remaining(100s)")
            .replace(&format!("\"ttl\":{left},"), "\"ttl\":100,");
    }
    sort_between(
        &sort_between(&s, "attached keys([", "])", " "),
        "\"keys\":[",
        "]",
        ",",
    )
}

fn sort_between(s: &str, open: &str, close: &str, sep: &str) -> String {
    let Some(a) = s.find(open) else {
        return s.to_string();
    };
    let start = a + open.len();
    let Some(len) = s[start..].find(close) else {
        return s.to_string();
    };
    let mut items: Vec<&str> = s[start..start + len].split(sep).collect();
    items.sort();
    format!("{}{}{}", &s[..start], items.join(sep), &s[start + len..])
}

#[test]
fn lease_commands_print_like_etcdctl() {
    if !available() {
        return;
    }
    let p = Pair::start();
    let e = run(
        Tool::Etcdctl,
        &p.etcd_side,
        &["lease", "grant", "100"],
        None,
    );
    let k = run(
        Tool::Keelctl,
        &p.keel_side,
        &["lease", "grant", "100"],
        None,
    );
    assert_same(
        &["lease", "grant", "100"],
        &normalize(&e, &p.etcd_side),
        &normalize(&k, &p.keel_side),
    );
    let (eid, kid) = (granted_id(&e), granted_id(&k));
    assert_eq!(kid.len(), 16, "{k:?}");

    p.same(&["lease", "grant", "50", "-w", "json"]);
    p.same(&["lease", "grant", "60", "-w", "fields"]);
    p.same2(
        &["put", "lk", "lv", &format!("--lease={eid}")],
        &["put", "lk", "lv", &format!("--lease={kid}")],
    );
    p.same2(
        &["put", "lk2", "lv2", &format!("--lease={eid}")],
        &["put", "lk2", "lv2", &format!("--lease={kid}")],
    );
    p.same(&["get", "lk", "-w", "json"]);
    p.same(&["put", "lk", "new", "--ignore-lease", "--prev-kv"]);
    p.same(&[
        "put",
        "lk",
        "--ignore-value",
        "--ignore-lease",
        "-w",
        "json",
    ]);
    for extra in [
        &[][..],
        &["--keys"],
        &["--keys", "-w", "json"],
        &["-w", "json"],
    ] {
        let mut ea = vec!["lease", "timetolive", eid.as_str()];
        let mut ka = vec!["lease", "timetolive", kid.as_str()];
        ea.extend_from_slice(extra);
        ka.extend_from_slice(extra);
        let (mut e, mut k) = p.run2(&ea, &ka, None);
        e.stdout = settle_ttl(&e.stdout);
        k.stdout = settle_ttl(&k.stdout);
        assert_same(&ka, &e, &k);
    }
    p.same(&["lease", "list"]);
    p.same(&["lease", "list", "-w", "json"]);
    p.same2(
        &["lease", "keep-alive", "--once", &eid],
        &["lease", "keep-alive", "--once", &kid],
    );
    p.same2(
        &["lease", "keep-alive", "--once", "-w", "json", &eid],
        &["lease", "keep-alive", "--once", "-w", "json", &kid],
    );
    p.same2(&["lease", "revoke", &eid], &["lease", "revoke", &kid]);
    p.same(&["get", "lk", "--prefix"]);
    p.same2(&["lease", "revoke", &eid], &["lease", "revoke", &kid]);
    p.same2(
        &["lease", "timetolive", &eid],
        &["lease", "timetolive", &kid],
    );
    p.same2(
        &["lease", "timetolive", "-w", "json", "--keys", &eid],
        &["lease", "timetolive", "-w", "json", "--keys", &kid],
    );
    p.same2(
        &["lease", "keep-alive", "--once", &eid],
        &["lease", "keep-alive", "--once", &kid],
    );
    p.same(&["lease", "revoke", "1234"]);
    p.same(&["lease", "grant", "0"]);
    p.same(&["lease", "list"]);
}

#[test]
fn keep_alive_renews_until_revoked() {
    if !available() {
        return;
    }
    let s = Server::start();
    let g = run(Tool::Keelctl, &s, &["lease", "grant", "3"], None);
    let id = granted_id(&g);
    let lines = run_lines(
        Tool::Keelctl,
        &s,
        &["lease", "keep-alive", &id],
        2,
        std::time::Duration::from_secs(10),
    );
    assert_eq!(
        lines,
        vec![format!("lease {id} keepalived with TTL(3)"); 2],
        "two renewals about a second apart"
    );
}
