//! An independent etcd client library: the Rust `etcd-client` crate (tonic over hyper's `h2`,
//! a fourth HTTP/2 and gRPC implementation besides Go's in etcdctl, gRPC C-core in Python's
//! grpcio and nghttp2 in curl) runs the same session against a 3-member keel cluster and a
//! 3-member etcd, connected to all three members at once. The transcripts (values, revisions,
//! counts, event kinds, error codes and messages, HashKV) must be identical.
//!
//! Test-only dependencies: `etcd-client` and the `tokio` runtime it needs (see README.md).

use etcd_client::{
    Client, Compare, CompareOp, DeleteOptions, EventType, GetOptions, LeaseGrantOptions,
    LeaseTimeToLiveOptions, PutOptions, SortOrder, SortTarget, Txn, TxnOp, TxnOpResponse,
    WatchOptions,
};
use keel_tests::{Cluster, ClusterOptions, Flavor};
use std::time::Duration;

#[test]
fn etcd_client_crate_sees_keel_as_etcd() {
    let etcd = transcript(Flavor::Etcd);
    let keel = transcript(Flavor::Keel);
    if std::env::var_os("KEEL_TESTS_PRINT").is_some() {
        eprintln!("{}", keel.join("\n"));
    }
    for (i, (e, k)) in etcd.iter().zip(&keel).enumerate() {
        assert_eq!(e, k, "line {i} differs (etcd, keel)");
    }
    assert_eq!(etcd.len(), keel.len(), "transcript lengths differ");
}

fn transcript(flavor: Flavor) -> Vec<String> {
    let mut cluster = Cluster::start(flavor, 3, ClusterOptions::default());
    let endpoints: Vec<String> = cluster
        .running_endpoints()
        .into_iter()
        .map(|e| {
            if e.starts_with("http") {
                e
            } else {
                format!("http://{e}")
            }
        })
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let lines = runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(60), session(&endpoints))
            .await
            .expect("the session finished within 60 s")
    });
    match lines {
        Ok(lines) => lines,
        Err(e) => panic!("{flavor:?}: a call that must succeed failed: {e}"),
    }
}

/// An error as a client matches on it: the gRPC code and message.
fn status(e: etcd_client::Error) -> String {
    match e {
        etcd_client::Error::GRpcStatus(s) => format!("error {:?}: {}", s.code(), s.message()),
        other => format!("client error: {other}"),
    }
}

fn kv_line(kv: &etcd_client::KeyValue) -> String {
    format!(
        "{}={} create={} mod={} version={} lease={}",
        String::from_utf8_lossy(kv.key()),
        String::from_utf8_lossy(kv.value()),
        kv.create_revision(),
        kv.mod_revision(),
        kv.version(),
        kv.lease() != 0
    )
}

async fn session(endpoints: &[String]) -> Result<Vec<String>, etcd_client::Error> {
    let mut out = Vec::new();
    let mut c = Client::connect(endpoints, None).await?;

    // KV: puts, prev_kv, ranges with options.
    for (k, v) in [
        ("a/1", "one"),
        ("a/2", "two"),
        ("a/3", "three"),
        ("b", "bee"),
    ] {
        let r = c.put(k, v, None).await?;
        out.push(format!("put {k}: rev {}", r.header().unwrap().revision()));
    }
    let r = c
        .put("a/2", "TWO", Some(PutOptions::new().with_prev_key()))
        .await?;
    out.push(format!("put a/2 prev: {:?}", r.prev_key().map(kv_line)));
    let r = c.get("a/", Some(GetOptions::new().with_prefix())).await?;
    out.push(format!("prefix a/: count {} more {}", r.count(), r.more()));
    out.extend(r.kvs().iter().map(kv_line));
    let opts = GetOptions::new()
        .with_prefix()
        .with_limit(2)
        .with_sort(SortTarget::Value, SortOrder::Descend);
    let r = c.get("a/", Some(opts)).await?;
    out.push(format!(
        "limit 2 by value desc: count {} more {}",
        r.count(),
        r.more()
    ));
    out.extend(r.kvs().iter().map(kv_line));
    let r = c
        .get(
            "a/",
            Some(GetOptions::new().with_from_key().with_keys_only()),
        )
        .await?;
    out.push(format!("from a/ keys only: {:?}", keys(r.kvs())));
    let r = c
        .get("a/2", Some(GetOptions::new().with_revision(3)))
        .await?;
    out.push(format!(
        "a/2 at rev 3: {:?}",
        r.kvs().iter().map(kv_line).collect::<Vec<_>>()
    ));
    let r = c
        .get(
            "a/",
            Some(GetOptions::new().with_prefix().with_count_only()),
        )
        .await?;
    out.push(format!("count only: {} kvs {}", r.count(), r.kvs().len()));

    // Txn: compare on value and version, both branches, nested reads.
    let txn = Txn::new()
        .when([
            Compare::value("a/1", CompareOp::Equal, "one"),
            Compare::version("a/2", CompareOp::Greater, 1),
        ])
        .and_then([
            TxnOp::put("t", "then", None),
            TxnOp::get("a/2", None),
            TxnOp::delete("b", Some(DeleteOptions::new().with_prev_key())),
        ])
        .or_else([TxnOp::put("t", "else", None)]);
    let r = c.txn(txn).await?;
    out.push(format!("txn 1 succeeded {}", r.succeeded()));
    for op in r.op_responses() {
        out.push(match op {
            TxnOpResponse::Put(p) => format!("  put rev {}", p.header().unwrap().revision()),
            TxnOpResponse::Get(g) => format!(
                "  get {:?}",
                g.kvs().iter().map(kv_line).collect::<Vec<_>>()
            ),
            TxnOpResponse::Delete(d) => format!(
                "  delete {} prev {:?}",
                d.deleted(),
                d.prev_kvs().iter().map(kv_line).collect::<Vec<_>>()
            ),
            TxnOpResponse::Txn(_) => "  nested txn".to_string(),
        });
    }
    let txn = Txn::new()
        .when([Compare::create_revision("missing", CompareOp::Greater, 0)])
        .and_then([TxnOp::put("t", "then", None)])
        .or_else([TxnOp::put("t", "else", None)]);
    let r = c.txn(txn).await?;
    out.push(format!("txn 2 succeeded {}", r.succeeded()));
    let r = c.get("t", None).await?;
    out.push(format!(
        "t: {:?}",
        r.kvs().iter().map(kv_line).collect::<Vec<_>>()
    ));

    // Watch: history from revision 2 with prev_kv, then a live event.
    let (mut watcher, mut events) = c
        .watch(
            "a/",
            Some(
                WatchOptions::new()
                    .with_prefix()
                    .with_prev_key()
                    .with_start_revision(2),
            ),
        )
        .await?;
    let mut seen = Vec::new();
    while seen.len() < 4 {
        let Some(m) = events.message().await? else {
            break;
        };
        for e in m.events() {
            let kv = e.kv().unwrap();
            seen.push(format!(
                "  {:?} {} mod {} prev {:?}",
                e.event_type(),
                kv_line(kv),
                kv.mod_revision(),
                e.prev_kv()
                    .map(|p| String::from_utf8_lossy(p.value()).into_owned())
            ));
        }
    }
    c.delete("a/3", None).await?;
    while seen.len() < 5 {
        let Some(m) = events.message().await? else {
            break;
        };
        for e in m.events() {
            seen.push(format!(
                "  {:?} {} deleted {}",
                e.event_type(),
                String::from_utf8_lossy(e.kv().unwrap().key()),
                e.event_type() == EventType::Delete
            ));
        }
    }
    watcher.cancel().await?;
    out.push("watch a/ from rev 2:".to_string());
    out.extend(seen);

    // Leases: grant, attach, keep alive once, time to live with keys, list, revoke. Every lease
    // that reaches a key has a fixed ID: IDs are the members' own choice otherwise, and the
    // HashKV at the end covers the keys' lease fields.
    let lease = c
        .lease_grant(30, Some(LeaseGrantOptions::new().with_id(0x1001)))
        .await?;
    out.push(format!("lease granted ttl {}", lease.ttl()));
    c.put(
        "leased",
        "x",
        Some(PutOptions::new().with_lease(lease.id())),
    )
    .await?;
    let (mut keeper, mut answers) = c.lease_keep_alive(lease.id()).await?;
    keeper.keep_alive().await?;
    let a = answers.message().await?.expect("a keep-alive answer");
    out.push(format!(
        "keep-alive ttl {} same id {}",
        a.ttl(),
        a.id() == lease.id()
    ));
    let t = c
        .lease_time_to_live(lease.id(), Some(LeaseTimeToLiveOptions::new().with_keys()))
        .await?;
    out.push(format!(
        "time to live granted {} remaining>0 {} keys {:?}",
        t.granted_ttl(),
        t.ttl() > 0,
        t.keys()
            .iter()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .collect::<Vec<_>>()
    ));
    let l = c.leases().await?;
    out.push(format!(
        "lease list has it: {}",
        l.leases().iter().any(|x| x.id() == lease.id())
    ));
    c.lease_revoke(lease.id()).await?;
    let r = c.get("leased", None).await?;
    out.push(format!("after revoke leased has {} kvs", r.kvs().len()));
    let fixed = c
        .lease_grant(60, Some(LeaseGrantOptions::new().with_id(0x4242)))
        .await?;
    out.push(format!(
        "lease with id: {:x} ttl {}",
        fixed.id(),
        fixed.ttl()
    ));
    out.push(format!(
        "same id again: {}",
        c.lease_grant(60, Some(LeaseGrantOptions::new().with_id(0x4242)))
            .await
            .map(|_| "granted".to_string())
            .unwrap_or_else(status)
    ));

    // Errors a client matches on: code and message.
    let head = c.get("t", None).await?.header().unwrap().revision();
    let errors = [
        (
            "future revision",
            c.get("t", Some(GetOptions::new().with_revision(head + 100)))
                .await
                .map(|_| ()),
        ),
        (
            "unknown lease",
            c.put("k", "v", Some(PutOptions::new().with_lease(0x7777)))
                .await
                .map(|_| ()),
        ),
        ("empty key", c.put("", "v", None).await.map(|_| ())),
        ("revoke unknown", c.lease_revoke(0x7778).await.map(|_| ())),
        (
            "too many ops",
            c.txn(
                Txn::new().and_then(
                    (0..129)
                        .map(|i| TxnOp::put(format!("m{i}"), "v", None))
                        .collect::<Vec<_>>(),
                ),
            )
            .await
            .map(|_| ()),
        ),
        (
            "duplicate key",
            c.txn(Txn::new().and_then([TxnOp::put("d", "1", None), TxnOp::put("d", "2", None)]))
                .await
                .map(|_| ()),
        ),
        (
            "too large",
            c.put("big", vec![b'x'; 1024 * 1024 + 600 * 1024], None)
                .await
                .map(|_| ()),
        ),
        (
            "over grpc max",
            c.put("big", vec![b'x'; 2 * 1024 * 1024], None)
                .await
                .map(|_| ()),
        ),
    ];
    for (what, r) in errors {
        out.push(format!(
            "{what}: {}",
            r.map(|_| "ok".to_string()).unwrap_or_else(status)
        ));
    }

    // Compaction, then reads and watches below it.
    c.compact(4, None).await?;
    out.push(format!(
        "read at compacted rev 3: {}",
        c.get("a/1", Some(GetOptions::new().with_revision(3)))
            .await
            .map(|_| "ok".to_string())
            .unwrap_or_else(status)
    ));
    out.push(format!(
        "compact again at 3: {}",
        c.compact(3, None)
            .await
            .map(|_| "ok".to_string())
            .unwrap_or_else(status)
    ));
    let (_w, mut compacted) = c
        .watch(
            "a/",
            Some(WatchOptions::new().with_prefix().with_start_revision(2)),
        )
        .await?;
    let m = compacted.message().await?.expect("a watch answer");
    out.push(format!(
        "watch from compacted rev 2: canceled {} compact_revision {}",
        m.canceled(),
        m.compact_revision()
    ));

    // Lock and election services.
    let lease = c
        .lease_grant(30, Some(LeaseGrantOptions::new().with_id(0x1002)))
        .await?;
    let lock = c
        .lock(
            "mutex",
            Some(etcd_client::LockOptions::new().with_lease(lease.id())),
        )
        .await?;
    out.push(format!("lock key: {}", String::from_utf8_lossy(lock.key())));
    c.unlock(lock.key()).await?;
    let lease = c
        .lease_grant(30, Some(LeaseGrantOptions::new().with_id(0x1003)))
        .await?;
    let campaign = c.campaign("office", "alice", lease.id()).await?;
    let leader_key = campaign.leader().expect("a leader key").clone();
    out.push(format!(
        "leader key: {}",
        String::from_utf8_lossy(leader_key.key())
    ));
    let r = c.leader("office").await?;
    out.push(format!(
        "leader: {:?}",
        r.kv()
            .map(|kv| String::from_utf8_lossy(kv.value()).into_owned())
    ));
    c.proclaim(
        "bob",
        Some(etcd_client::ProclaimOptions::new().with_leader(leader_key.clone())),
    )
    .await?;
    let r = c.leader("office").await?;
    out.push(format!(
        "after proclaim: {:?}",
        r.kv()
            .map(|kv| String::from_utf8_lossy(kv.value()).into_owned())
    ));
    c.resign(Some(
        etcd_client::ResignOptions::new().with_leader(leader_key),
    ))
    .await?;
    out.push(format!(
        "after resign: {}",
        c.leader("office")
            .await
            .map(|_| "a leader".to_string())
            .unwrap_or_else(status)
    ));

    // Cluster and maintenance.
    let members = c.member_list().await?;
    out.push(format!(
        "members {} learners {}",
        members.members().len(),
        members.members().iter().filter(|m| m.is_learner()).count()
    ));
    let s = c.status().await?;
    out.push(format!(
        "status: leader known {} db size > 0 {} term > 0 {}",
        s.leader() != 0,
        s.db_size() > 0,
        s.raft_term() > 0
    ));
    let h = c.hash_kv(0).await?;
    out.push(format!(
        "hash_kv {} compact rev {}",
        h.hash(),
        h.compact_version()
    ));
    let alarms = c
        .alarm(
            etcd_client::AlarmAction::Get,
            etcd_client::AlarmType::None,
            None,
        )
        .await?;
    out.push(format!("alarms {}", alarms.alarms().len()));
    Ok(out)
}

fn keys(kvs: &[etcd_client::KeyValue]) -> Vec<String> {
    kvs.iter()
        .map(|kv| String::from_utf8_lossy(kv.key()).into_owned())
        .collect()
}
