//! The same writes on one keel member and one etcd member give the same `etcdctl endpoint
//! hashkv` value: empty store, after a put, after overwrite + delete, after a compaction.

use keel_tests::{Cluster, ClusterOptions, Etcdctl, Flavor};

fn hashes(flavor: Flavor) -> Vec<String> {
    let mut c = Cluster::start(flavor, 1, ClusterOptions::default());
    let ctl = Etcdctl::new(c.running_endpoints());
    let hash = |ctl: &Etcdctl| {
        let out = ctl.ok(&["endpoint", "hashkv"]);
        out.trim().rsplit(", ").next().unwrap().to_string()
    };
    let mut h = vec![hash(&ctl)];
    ctl.ok(&["put", "foo", "bar"]);
    h.push(hash(&ctl));
    ctl.ok(&["put", "foo2", "bar"]);
    ctl.ok(&["put", "foo", "baz"]);
    ctl.ok(&["del", "foo2"]);
    h.push(hash(&ctl));
    ctl.ok(&["compaction", "3"]);
    h.push(hash(&ctl));
    h
}

#[test]
fn hashkv_matches_etcd() {
    assert_eq!(hashes(Flavor::Keel), hashes(Flavor::Etcd));
}
