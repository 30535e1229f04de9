//! v3election `Leader` is a linearizable read, as etcd's is (`Election.Leader` runs a
//! linearizable Get): a member that has just restarted and not yet caught up must not answer
//! from its old state. 3 members; a follower is killed; through the leader: a campaign and
//! 3,000 puts (so that the follower has much to catch up on); the follower is started again
//! and asked `Leader` as soon as its port answers, repeatedly until the first success. Every
//! answer must show the campaign's value; keel answered from the follower's local store
//! before catching up ("election: no leader"). Run against keel and etcd 3.4.23; the
//! observations must be equal.

use keel_net::client::ClientError;
use keel_net::proto::etcdserverpb::{LeaseGrantRequest, LeaseGrantResponse};
use keel_net::proto::v3electionpb::{
    CampaignRequest, CampaignResponse, LeaderRequest, LeaderResponse,
};
use keel_tests::grpc::{self, call, CallError};
use keel_tests::{Cluster, ClusterOptions, Flavor};
use std::time::{Duration, Instant};

fn scenario(flavor: Flavor) -> Vec<String> {
    let mut c = Cluster::start(flavor, 3, ClusterOptions::default());
    // The member to lag behind is a follower (killing the leader would make the next requests
    // wait for an election).
    let leader = c.wait_leader(&[0, 1, 2], Duration::from_secs(10));
    let lagging = (leader + 1) % 3;
    c.kill(lagging);
    let mut cl =
        grpc::connect(&c.endpoints_of(&[leader]), Duration::from_secs(10)).expect("connect");
    let lease: LeaseGrantResponse = call(
        &mut cl,
        "/etcdserverpb.Lease/LeaseGrant",
        &LeaseGrantRequest { ttl: 60, id: 0 },
    )
    .expect("lease grant");
    let _: CampaignResponse = call(
        &mut cl,
        "/v3electionpb.Election/Campaign",
        &CampaignRequest {
            name: b"e".to_vec(),
            lease: lease.id,
            value: b"alice".to_vec(),
        },
    )
    .expect("campaign");
    for i in 0..3000 {
        grpc::put(&mut cl, format!("fill/{i:05}").as_bytes(), &[b'x'; 100]).expect("put");
    }
    c.spawn(lagging);
    let ep = vec![c.members[lagging].endpoint()];
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(
            Instant::now() < deadline,
            "the follower never answered Leader: {seen:?}"
        );
        let Ok(mut follower) = grpc::connect(&ep, Duration::from_secs(10)) else {
            std::thread::sleep(Duration::from_millis(2));
            continue;
        };
        let r: Result<LeaderResponse, CallError> = call(
            &mut follower,
            "/v3electionpb.Election/Leader",
            &LeaderRequest {
                name: b"e".to_vec(),
            },
        );
        match r {
            Ok(r) => {
                let v =
                    r.kv.map(|kv| String::from_utf8_lossy(&kv.value).into_owned());
                seen.push(format!("leader value {v:?}"));
                break;
            }
            Err(CallError::Client(ClientError::Status(s))) if s.message.contains("no leader") => {
                // A stale answer (or no Raft leader known yet): recorded once.
                let line = format!("error {:?}", s.message);
                if !seen.contains(&line) {
                    seen.push(line);
                }
            }
            Err(_) => {}
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    seen
}

#[test]
fn election_leader_is_linearizable_like_etcd() {
    let (keel, etcd) = std::thread::scope(|s| {
        let etcd = s.spawn(|| scenario(Flavor::Etcd));
        let keel = scenario(Flavor::Keel);
        (keel, etcd.join().expect("etcd scenario"))
    });
    assert_eq!(etcd, vec!["leader value Some(\"alice\")".to_string()]);
    assert_eq!(keel, etcd);
}
