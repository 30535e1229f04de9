//! More membership scenarios, each run against a real etcd first and then against keel:
//!
//! - [`refused_changes`]: the exact gRPC code and message of every refused membership call
//!   (unknown ids, promoting a voter, used or malformed peer URLs, a second learner), asked of
//!   the leader and of a follower (keel forwards to the leader; the answer must not change);
//! - [`grow_update_remove_restart`]: grow a one-member cluster to three voters under writes,
//!   move a founding member to a new peer port with MemberUpdate (asked of a follower) and
//!   restart it there, remove the leader while writes continue, then kill -9 and restart every
//!   remaining member: same ids, same member list, every acknowledged write everywhere.

use super::wait_hashes_agree;
use super::writers::{assert_all_present, Writers};
use crate::grpc::{self, CallError};
use crate::ports::free_port;
use crate::Cluster;
use keel_net::client::ClientError;
use keel_net::proto::etcdserverpb as pb;
use keel_net::proto::Message;
use std::time::{Duration, Instant};

const ADD: &str = "/etcdserverpb.Cluster/MemberAdd";
const REMOVE: &str = "/etcdserverpb.Cluster/MemberRemove";
const PROMOTE: &str = "/etcdserverpb.Cluster/MemberPromote";
const UPDATE: &str = "/etcdserverpb.Cluster/MemberUpdate";
const MOVE_LEADER: &str = "/etcdserverpb.Maintenance/MoveLeader";

/// One membership call to `endpoint`; a refusal as `"<code> <message>"`.
fn call<Req: Message, Resp: Message + Default>(
    endpoint: &str,
    path: &str,
    req: &Req,
) -> Result<Resp, String> {
    let mut c = grpc::connect(&[endpoint.to_string()], Duration::from_secs(15))
        .map_err(|e| format!("connect {endpoint}: {e}"))?;
    grpc::call(&mut c, path, req).map_err(|e| match e {
        CallError::Client(ClientError::Status(s)) => format!("{:?} {}", s.code, s.message),
        other => format!("transport: {other}"),
    })
}

/// Like [`call`], but retries for 20 s while the answer is etcd's "unhealthy cluster" (its
/// strict reconfiguration check wants the members connected for 5 s first).
fn reconfigure<Req: Message, Resp: Message + Default>(
    endpoint: &str,
    path: &str,
    req: &Req,
) -> Result<Resp, String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match call(endpoint, path, req) {
            Err(e) if e.ends_with("etcdserver: unhealthy cluster") && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(250));
            }
            other => return other,
        }
    }
}

fn members_of(endpoint: &str) -> Vec<pb::Member> {
    let mut m = grpc::member_list(endpoint)
        .unwrap_or_else(|e| panic!("member list from {endpoint}: {e}"))
        .members;
    m.sort_by_key(|m| m.id);
    m
}

fn add_req(url: &str, learner: bool) -> pb::MemberAddRequest {
    pb::MemberAddRequest {
        peer_urls: vec![url.to_string()],
        is_learner: learner,
    }
}

/// Asks the same refused call of the leader and of a follower; both must answer `want`. A
/// call that times out ("request timed out", Unavailable) is asked again, as clients retry
/// Unavailable: the real etcd, run as the reference while other clusters load the machine,
/// sometimes times out a follower's forwarded call (a refusal changes nothing, so asking
/// again is safe).
fn refused<Req: Message, Resp: Message + Default + std::fmt::Debug>(
    leader: &str,
    follower: &str,
    what: &str,
    path: &str,
    req: &Req,
    want: &str,
) {
    for (who, ep) in [("leader", leader), ("follower", follower)] {
        let deadline = Instant::now() + Duration::from_secs(20);
        let got = loop {
            let got = reconfigure::<Req, Resp>(ep, path, req);
            match &got {
                Err(e)
                    if e.ends_with("etcdserver: request timed out")
                        && Instant::now() < deadline => {}
                _ => break got,
            }
        };
        assert_eq!(
            got.as_ref().err().map(String::as_str),
            Some(want),
            "{what} asked of the {who} ({ep}): {got:?}"
        );
    }
}

/// Runs the refusals on a running 3-member `cluster` (which it leaves with 3 voters).
pub fn refused_changes(cluster: &mut Cluster) {
    let all: Vec<usize> = (0..cluster.members.len()).collect();
    let leader = cluster.wait_leader(&all, Duration::from_secs(10));
    let follower = all.iter().copied().find(|&i| i != leader).unwrap();
    let l = cluster.members[leader].endpoint();
    let f = cluster.members[follower].endpoint();
    let voter_id = cluster.member_id(follower);
    let unknown = 0x1234_5678_9abc_def0u64;
    const NOT_FOUND: &str = "NotFound etcdserver: member not found";
    const BAD_URLS: &str = "InvalidArgument etcdserver: given member URLs are invalid";
    const URL_EXISTS: &str = "FailedPrecondition etcdserver: Peer URLs already exists";

    refused::<_, pb::MemberRemoveResponse>(
        &l,
        &f,
        "MemberRemove of an unknown id",
        REMOVE,
        &pb::MemberRemoveRequest { id: unknown },
        NOT_FOUND,
    );
    refused::<_, pb::MemberPromoteResponse>(
        &l,
        &f,
        "MemberPromote of a voter",
        PROMOTE,
        &pb::MemberPromoteRequest { id: voter_id },
        "FailedPrecondition etcdserver: can only promote a learner member",
    );
    refused::<_, pb::MemberPromoteResponse>(
        &l,
        &f,
        "MemberPromote of an unknown id",
        PROMOTE,
        &pb::MemberPromoteRequest { id: unknown },
        NOT_FOUND,
    );
    let used = cluster.members[follower].peer_url();
    for learner in [false, true] {
        refused::<_, pb::MemberAddResponse>(
            &l,
            &f,
            &format!("MemberAdd (learner: {learner}) of a used peer URL"),
            ADD,
            &add_req(&used, learner),
            URL_EXISTS,
        );
    }
    for bad in [
        "not a url",
        "http://127.0.0.1",
        "ftp://127.0.0.1:2380",
        "http://127.0.0.1:2380/path",
    ] {
        refused::<_, pb::MemberAddResponse>(
            &l,
            &f,
            &format!("MemberAdd of {bad:?}"),
            ADD,
            &add_req(bad, true),
            BAD_URLS,
        );
    }
    refused::<_, pb::MemberAddResponse>(
        &l,
        &f,
        "MemberAdd without peer URLs",
        ADD,
        &pb::MemberAddRequest::default(),
        BAD_URLS,
    );
    refused::<_, pb::MemberUpdateResponse>(
        &l,
        &f,
        "MemberUpdate of an unknown id",
        UPDATE,
        &pb::MemberUpdateRequest {
            id: unknown,
            peer_urls: vec![format!("http://127.0.0.1:{}", free_port())],
        },
        NOT_FOUND,
    );
    for urls in [vec!["not a url".to_string()], vec![]] {
        // The id is checked before the URLs.
        refused::<_, pb::MemberUpdateResponse>(
            &l,
            &f,
            &format!("MemberUpdate of an unknown id to {urls:?}"),
            UPDATE,
            &pb::MemberUpdateRequest {
                id: unknown,
                peer_urls: urls.clone(),
            },
            NOT_FOUND,
        );
        // (Not checked: etcd 3.4 does not validate MemberUpdate's URLs; a known member
        // updated to "not a url" makes its peers crash on the unparsable URL.)
    }
    refused::<_, pb::MemberUpdateResponse>(
        &l,
        &f,
        "MemberUpdate to another member's peer URL",
        UPDATE,
        &pb::MemberUpdateRequest {
            id: voter_id,
            peer_urls: vec![cluster.members[leader].peer_url()],
        },
        URL_EXISTS,
    );

    // One learner is allowed (not started: it stays unstarted with an empty name) ...
    let learner_url = format!("http://127.0.0.1:{}", free_port());
    let added: pb::MemberAddResponse =
        reconfigure(&f, ADD, &add_req(&learner_url, true)).expect("add a learner via a follower");
    let learner = added.member.expect("MemberAddResponse.member");
    assert!(learner.is_learner && learner.name.is_empty(), "{learner:?}");
    assert_eq!(learner.peer_urls, vec![learner_url.clone()]);
    assert_eq!(added.members.len(), 4, "{:?}", added.members);
    // The member that was asked answered after applying the change itself (etcd's follower
    // proposes and waits for its own apply): its member list has the learner at once.
    let listed = members_of(&f);
    assert!(
        listed.iter().any(|m| m.id == learner.id),
        "the follower answered MemberAdd but does not list the learner: {listed:?}"
    );
    // ... a second one is not (etcd's --max-learners 1). (Re-adding the learner's URL is not
    // checked: within the same second the new id equals the learner's, "member ID already exist".)
    refused::<_, pb::MemberAddResponse>(
        &l,
        &f,
        "a second learner",
        ADD,
        &add_req(&format!("http://127.0.0.1:{}", free_port()), true),
        "FailedPrecondition etcdserver: too many learner members in cluster",
    );
    // MoveLeader: only the leader moves leadership, and only to a voter.
    let bad_transferee = "FailedPrecondition etcdserver: bad leader transferee";
    for (target, want) in [(unknown, bad_transferee), (learner.id, bad_transferee)] {
        let got = call::<_, pb::MoveLeaderResponse>(
            &l,
            MOVE_LEADER,
            &pb::MoveLeaderRequest { target_id: target },
        );
        assert_eq!(
            got.as_ref().err().map(String::as_str),
            Some(want),
            "MoveLeader to {target:x}: {got:?}"
        );
    }
    let got = call::<_, pb::MoveLeaderResponse>(
        &f,
        MOVE_LEADER,
        &pb::MoveLeaderRequest {
            target_id: voter_id,
        },
    );
    assert_eq!(
        got.as_ref().err().map(String::as_str),
        Some("FailedPrecondition etcdserver: not leader"),
        "MoveLeader asked of a follower: {got:?}"
    );
    // A learner that never started is not in sync.
    refused::<_, pb::MemberPromoteResponse>(
        &l,
        &f,
        "MemberPromote of an unstarted learner",
        PROMOTE,
        &pb::MemberPromoteRequest { id: learner.id },
        "FailedPrecondition etcdserver: can only promote a learner member which is in sync with leader",
    );
    // Removing it (asked of the follower), then removing it again.
    let r: pb::MemberRemoveResponse =
        reconfigure(&f, REMOVE, &pb::MemberRemoveRequest { id: learner.id })
            .expect("remove the learner via a follower");
    assert_eq!(r.members.len(), 3, "{:?}", r.members);
    let listed = members_of(&f);
    assert!(
        listed.iter().all(|m| m.id != learner.id),
        "the follower answered MemberRemove but still lists the learner: {listed:?}"
    );
    // The same a few more times (the window a forwarding member could miss is short).
    for round in 0..5 {
        let url = format!("http://127.0.0.1:{}", free_port());
        let added: pb::MemberAddResponse =
            reconfigure(&f, ADD, &add_req(&url, true)).expect("add a learner via a follower");
        let id = added.member.expect("member").id;
        let listed = members_of(&f);
        assert!(
            listed.iter().any(|m| m.id == id),
            "round {round}: the follower answered MemberAdd but does not list the learner"
        );
        let _: pb::MemberRemoveResponse = reconfigure(&f, REMOVE, &pb::MemberRemoveRequest { id })
            .expect("remove the learner via a follower");
        let listed = members_of(&f);
        assert!(
            listed.iter().all(|m| m.id != id),
            "round {round}: the follower answered MemberRemove but still lists the learner"
        );
    }
    refused::<_, pb::MemberRemoveResponse>(
        &l,
        &f,
        "MemberRemove of a removed id",
        REMOVE,
        &pb::MemberRemoveRequest { id: learner.id },
        NOT_FOUND,
    );
    refused::<_, pb::MemberUpdateResponse>(
        &l,
        &f,
        "MemberUpdate of a removed id",
        UPDATE,
        &pb::MemberUpdateRequest {
            id: learner.id,
            peer_urls: vec![format!("http://127.0.0.1:{}", free_port())],
        },
        NOT_FOUND,
    );
    // Peer URLs are trimmed and sorted (etcd's types.NewURLs) before they are stored and
    // compared: the learner is listed with the normalised URLs, and a URL it has, written
    // without the blanks, is taken.
    let mut urls = [free_port(), free_port()].map(|p| format!("http://127.0.0.1:{p}"));
    urls.sort();
    let [lo_url, hi_url] = urls;
    let added: pb::MemberAddResponse = reconfigure(
        &l,
        ADD,
        &pb::MemberAddRequest {
            peer_urls: vec![format!(" {hi_url} "), format!("\t{lo_url}")],
            is_learner: true,
        },
    )
    .expect("add a learner with unsorted, padded URLs");
    let learner = added.member.expect("MemberAddResponse.member");
    assert_eq!(learner.peer_urls, vec![lo_url.clone(), hi_url.clone()]);
    let listed = members_of(&l);
    let listed = listed.iter().find(|m| m.id == learner.id).expect("listed");
    assert_eq!(listed.peer_urls, vec![lo_url.clone(), hi_url.clone()]);
    refused::<_, pb::MemberAddResponse>(
        &l,
        &f,
        "MemberAdd of a URL the learner has (written without blanks)",
        ADD,
        &add_req(&hi_url, false),
        URL_EXISTS,
    );
    let _: pb::MemberRemoveResponse =
        reconfigure(&l, REMOVE, &pb::MemberRemoveRequest { id: learner.id })
            .expect("remove the second learner");

    // Nothing above changed the cluster (once every member applied the last removal).
    for &i in &all {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let list = members_of(&cluster.members[i].endpoint());
            if list.len() == 3 && list.iter().all(|m| !m.is_learner && !m.name.is_empty()) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{}: {list:?}",
                cluster.members[i].name
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    // Strict reconfiguration check: no member is added (not even a learner) while a voter is
    // disconnected (etcd's mayAddMember: "unhealthy cluster").
    let other = all
        .iter()
        .copied()
        .find(|&i| i != leader && i != follower)
        .unwrap();
    cluster.kill(other);
    std::thread::sleep(Duration::from_millis(1500));
    for learner in [true, false] {
        let got = call::<_, pb::MemberAddResponse>(
            &l,
            ADD,
            &add_req(&format!("http://127.0.0.1:{}", free_port()), learner),
        );
        assert_eq!(
            got.as_ref().err().map(String::as_str),
            Some("Unavailable etcdserver: unhealthy cluster"),
            "MemberAdd (learner: {learner}) with a voter down: {got:?}"
        );
    }
    // Removing a live voter would leave one connected voter of two: refused the same way
    // (etcd's mayRemoveMember).
    let got =
        call::<_, pb::MemberRemoveResponse>(&l, REMOVE, &pb::MemberRemoveRequest { id: voter_id });
    assert_eq!(
        got.as_ref().err().map(String::as_str),
        Some("Unavailable etcdserver: unhealthy cluster"),
        "MemberRemove of a live voter with another voter down: {got:?}"
    );
    cluster.restart(other);
    let list = members_of(&cluster.members[other].endpoint());
    assert_eq!(list.len(), 3, "{list:?}");
}

/// Adds a voter for the (not yet started) member slot `new`, asked of `endpoint`, starts it
/// with `--initial-cluster-state existing` and waits until it is healthy. Returns its id.
fn add_and_start_voter(cluster: &mut Cluster, endpoint: &str, new: usize) -> u64 {
    let url = cluster.members[new].peer_url();
    let added: pb::MemberAddResponse = reconfigure(endpoint, ADD, &add_req(&url, false))
        .unwrap_or_else(|e| panic!("add {}: {e}", cluster.members[new].name));
    let m = added.member.expect("MemberAddResponse.member");
    assert!(!m.is_learner && m.name.is_empty(), "{m:?}");
    assert_eq!(m.peer_urls, vec![url]);
    // As `etcdctl member add` prints ETCD_INITIAL_CLUSTER: one `name=url` per peer URL, the
    // name empty for members that have not started yet.
    let mut ic: Vec<String> = added
        .members
        .iter()
        .filter(|x| x.id != m.id)
        .flat_map(|x| x.peer_urls.iter().map(move |u| format!("{}={u}", x.name)))
        .collect();
    ic.push(format!("{}={}", cluster.members[new].name, m.peer_urls[0]));
    cluster.members[new].initial_cluster = ic.join(",");
    cluster.members[new].initial_state = "existing".into();
    cluster.restart(new);
    let got = cluster.member_id(new);
    assert_eq!(
        got, m.id,
        "{} started with another id",
        cluster.members[new].name
    );
    m.id
}

/// What `members` should look like in a member list: (id, name, peer URLs), sorted by id.
fn listed(cluster: &Cluster, members: &[usize]) -> Vec<(u64, String, Vec<String>)> {
    let mut want: Vec<(u64, String, Vec<String>)> = members
        .iter()
        .map(|&i| {
            (
                cluster.member_id(i),
                cluster.members[i].name.clone(),
                vec![cluster.members[i].peer_url()],
            )
        })
        .collect();
    want.sort();
    want
}

/// Polls until every member in `among` lists exactly `want` (ids, names, peer URLs, learner).
fn wait_member_list(cluster: &Cluster, among: &[usize], want: &[(u64, String, Vec<String>)]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let lists: Vec<Vec<(u64, String, Vec<String>)>> = among
            .iter()
            .map(|&i| {
                members_of(&cluster.members[i].endpoint())
                    .into_iter()
                    .map(|m| {
                        // A learner never matches `want` (voters only): a member that has not
                        // applied the latest change yet is polled again, not failed.
                        let name = if m.is_learner {
                            format!("{} (learner)", m.name)
                        } else {
                            m.name
                        };
                        (m.id, name, m.peer_urls)
                    })
                    .collect()
            })
            .collect();
        if lists.iter().all(|l| l.as_slice() == want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "member lists differ from {want:?}: {lists:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs the growth scenario on a running 1-member `cluster`. `edit_initial_cluster`: whether m1
/// is restarted (after its MemberUpdate) with its `--initial-cluster` flag edited to its new
/// URL too; etcd ignores that flag on a restart either way.
pub fn grow_update_remove_restart(cluster: &mut Cluster, edit_initial_cluster: bool) {
    assert_eq!(cluster.members.len(), 1);
    let m2 = cluster.new_member_slot("m2");
    let m3 = cluster.new_member_slot("m3");
    let three = [0, m2, m3];
    // The writers know every endpoint from the start (the client moves on when one fails).
    let w = Writers::start(cluster.endpoints_of(&three), "grow/", 2, 1_000_000);
    w.wait_acked(50, Duration::from_secs(20));

    // 1 -> 2 -> 3 voters; the third is added through the second.
    let ep = cluster.members[0].endpoint();
    add_and_start_voter(cluster, &ep, m2);
    let acked = w.acked();
    w.wait_acked(acked + 50, Duration::from_secs(20));
    let ep = cluster.members[m2].endpoint();
    add_and_start_voter(cluster, &ep, m3);
    let acked = w.acked();
    w.wait_acked(acked + 50, Duration::from_secs(20));
    let ids: Vec<u64> = three.iter().map(|&i| cluster.member_id(i)).collect();
    let mut want = listed(cluster, &three);
    wait_member_list(cluster, &three, &want);

    // MemberUpdate: m1 (a founding member) moves to a new peer port; asked of a follower.
    let leader = cluster.wait_leader(&three, Duration::from_secs(10));
    let asked = three
        .iter()
        .copied()
        .find(|&i| i != leader && i != 0)
        .unwrap();
    let new_port = free_port();
    let new_url = format!("http://127.0.0.1:{new_port}");
    let r: pb::MemberUpdateResponse = reconfigure(
        &cluster.members[asked].endpoint(),
        UPDATE,
        &pb::MemberUpdateRequest {
            id: ids[0],
            peer_urls: vec![new_url.clone()],
        },
    )
    .expect("MemberUpdate of m1");
    assert!(
        r.members
            .iter()
            .any(|m| m.id == ids[0] && m.peer_urls == vec![new_url.clone()]),
        "MemberUpdate answered {:?}",
        r.members
    );
    // m1 restarts listening on (and advertising) the new URL. A restarting member takes its
    // identity from its data, not from its flags: the new URL hashes to another id.
    cluster.kill(0);
    let old_url = cluster.members[0].peer_url();
    cluster.members[0].peer_port = new_port;
    if edit_initial_cluster {
        cluster.members[0].initial_cluster = cluster.members[0]
            .initial_cluster
            .replace(&old_url, &new_url);
    }
    cluster.restart(0);
    assert_eq!(cluster.member_id(0), ids[0], "m1 came back with another id");
    for e in want.iter_mut() {
        if e.0 == ids[0] {
            e.2 = vec![new_url.clone()];
        }
    }
    wait_member_list(cluster, &three, &want);
    let acked = w.acked();
    w.wait_acked(acked + 50, Duration::from_secs(20));
    // m1 takes part in replication on its new URL: it gets a write made after its restart.
    let mut c =
        grpc::connect(&cluster.endpoints_of(&three), Duration::from_secs(10)).expect("connect");
    let rev = grpc::put(&mut c, b"after-update", b"v")
        .expect("put after the update")
        .header
        .expect("header")
        .revision;
    wait_hashes_agree(cluster, &three, rev, Duration::from_secs(20));

    // Remove the current leader while writes continue (asked of a member that stays).
    let leader = cluster.wait_leader(&three, Duration::from_secs(10));
    let rest: Vec<usize> = three.iter().copied().filter(|&i| i != leader).collect();
    let leader_id = cluster.member_id(leader);
    let r: pb::MemberRemoveResponse = reconfigure(
        &cluster.members[rest[0]].endpoint(),
        REMOVE,
        &pb::MemberRemoveRequest { id: leader_id },
    )
    .expect("remove the leader");
    assert_eq!(r.members.len(), 2, "{:?}", r.members);
    assert!(r.members.iter().all(|m| m.id != leader_id));
    let new_leader = cluster.wait_leader(&rest, Duration::from_secs(15));
    assert!(rest.contains(&new_leader));
    let acked = w.acked();
    w.wait_acked(acked + 100, Duration::from_secs(30));
    w.stop();
    let writes = w.join();
    cluster.kill(leader);
    want.retain(|e| e.0 != leader_id);
    wait_member_list(cluster, &rest, &want);

    // The removed member, started again from its data, learns it was removed and stops; the
    // cluster is unaffected.
    cluster.spawn(leader);
    let deadline = Instant::now() + Duration::from_secs(20);
    while cluster.members[leader].is_running() {
        assert!(
            Instant::now() < deadline,
            "the removed member {} still runs 20 s after its restart",
            cluster.members[leader].name
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    cluster.kill(leader);
    wait_member_list(cluster, &rest, &want);

    let last_rev = writes.acked.values().map(|a| a.revision).max().unwrap_or(0);
    let hash = wait_hashes_agree(cluster, &rest, last_rev, Duration::from_secs(30));
    for &i in &rest {
        assert_all_present(&cluster.members[i].endpoint(), b"grow/", &writes);
    }

    // kill -9 and restart every remaining member: same ids, same list, same data.
    let before: Vec<u64> = rest.iter().map(|&i| cluster.member_id(i)).collect();
    for &i in &rest {
        cluster.kill(i);
    }
    for &i in &rest {
        cluster.spawn(i);
    }
    for &i in &rest {
        cluster.wait_healthy(i);
    }
    let after: Vec<u64> = rest.iter().map(|&i| cluster.member_id(i)).collect();
    assert_eq!(after, before, "ids changed across the restart");
    wait_member_list(cluster, &rest, &want);
    assert_eq!(
        wait_hashes_agree(cluster, &rest, last_rev, Duration::from_secs(30)),
        hash,
        "the data changed across the restart"
    );
    for &i in &rest {
        assert_all_present(&cluster.members[i].endpoint(), b"grow/", &writes);
    }
    // And the cluster still takes writes.
    let mut c = grpc::connect(&cluster.endpoints_of(&rest), Duration::from_secs(10))
        .expect("connect after restart");
    let deadline = Instant::now() + Duration::from_secs(20);
    while let Err(e) = grpc::put(&mut c, b"after-restart", b"v") {
        assert!(Instant::now() < deadline, "no write after the restart: {e}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// On a running 3-member `cluster`: a learner is added but never started (an unstarted voter
/// would make etcd refuse further additions: "unhealthy cluster"); a fifth member is then
/// added and started with the `--initial-cluster` etcdctl prints for it, which names the
/// unstarted member with an empty name (`=http://...`). It joins; the unstarted one is removed.
pub fn join_beside_an_unstarted_member(cluster: &mut Cluster) {
    let all: Vec<usize> = (0..cluster.members.len()).collect();
    let ep = cluster.members[0].endpoint();
    let ghost = cluster.new_member_slot("m4");
    let ghost_url = cluster.members[ghost].peer_url();
    let added: pb::MemberAddResponse =
        reconfigure(&ep, ADD, &add_req(&ghost_url, true)).expect("add m4 as a learner");
    let ghost_id = added.member.expect("member").id;
    let m5 = cluster.new_member_slot("m5");
    add_and_start_voter(cluster, &ep, m5);
    assert!(
        cluster.members[m5]
            .initial_cluster
            .contains(&format!("={ghost_url}")),
        "{}",
        cluster.members[m5].initial_cluster
    );
    let _: pb::MemberRemoveResponse =
        reconfigure(&ep, REMOVE, &pb::MemberRemoveRequest { id: ghost_id }).expect("remove m4");
    let mut members: Vec<usize> = all.clone();
    members.push(m5);
    let want = listed(cluster, &members);
    wait_member_list(cluster, &members, &want);
}

/// On a running 3-member `cluster`, while writes continue: a follower is removed, its data
/// directory deleted, and it is added back as a new member with the same name and peer URL
/// (replacing a failed machine). It gets a new id, catches up, and the three agree.
pub fn replace_member(cluster: &mut Cluster) {
    let all: Vec<usize> = (0..cluster.members.len()).collect();
    let w = Writers::start(cluster.endpoints_of(&all), "replace/", 2, 1_000_000);
    w.wait_acked(50, Duration::from_secs(20));
    let leader = cluster.wait_leader(&all, Duration::from_secs(10));
    let gone = all.iter().copied().find(|&i| i != leader).unwrap();
    let stay: Vec<usize> = all.iter().copied().filter(|&i| i != gone).collect();
    let old_id = cluster.member_id(gone);
    let ep = cluster.members[stay[0]].endpoint();
    let _: pb::MemberRemoveResponse =
        reconfigure(&ep, REMOVE, &pb::MemberRemoveRequest { id: old_id })
            .expect("remove the follower");
    cluster.kill(gone);
    std::fs::remove_dir_all(&cluster.members[gone].data_dir).expect("wipe the data directory");
    let acked = w.acked();
    w.wait_acked(acked + 50, Duration::from_secs(20));

    let new_id = add_and_start_voter(cluster, &ep, gone);
    assert_ne!(new_id, old_id, "the replacement reuses the removed id");
    let acked = w.acked();
    w.wait_acked(acked + 100, Duration::from_secs(30));
    w.stop();
    let writes = w.join();
    let last_rev = writes.acked.values().map(|a| a.revision).max().unwrap_or(0);
    wait_hashes_agree(cluster, &all, last_rev, Duration::from_secs(30));
    for &i in &all {
        assert_all_present(&cluster.members[i].endpoint(), b"replace/", &writes);
    }
    let want = listed(cluster, &all);
    wait_member_list(cluster, &all, &want);
}

/// On a running 3-member `cluster`: a follower is killed, then removed while it is down (it
/// never applies its own removal); started again from its data, it must learn from the others
/// that it was removed and stop. The two others keep working.
pub fn restart_member_removed_while_down(cluster: &mut Cluster) {
    let all: Vec<usize> = (0..cluster.members.len()).collect();
    let leader = cluster.wait_leader(&all, Duration::from_secs(10));
    let gone = all.iter().copied().find(|&i| i != leader).unwrap();
    let stay: Vec<usize> = all.iter().copied().filter(|&i| i != gone).collect();
    let id = cluster.member_id(gone);
    cluster.kill(gone);
    let ep = cluster.members[leader].endpoint();
    let r: pb::MemberRemoveResponse =
        reconfigure(&ep, REMOVE, &pb::MemberRemoveRequest { id }).expect("remove the down member");
    assert_eq!(r.members.len(), 2, "{:?}", r.members);
    cluster.spawn(gone);
    let deadline = Instant::now() + Duration::from_secs(20);
    while cluster.members[gone].is_running() {
        assert!(
            Instant::now() < deadline,
            "{}, removed while down, still runs 20 s after its restart",
            cluster.members[gone].name
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    cluster.kill(gone);
    let mut c =
        grpc::connect(&cluster.endpoints_of(&stay), Duration::from_secs(10)).expect("connect");
    grpc::put(&mut c, b"after-removal", b"v").expect("a write after the removal");
}

/// On a running 3-member `cluster`: a learner is added through a follower and started, killed
/// with -9 and restarted (still a learner, same id), then promoted through the follower (once
/// in sync); the follower lists it as a voter, its own Status says so, and it takes a put.
pub fn learner_restart_promote_via_follower(cluster: &mut Cluster) {
    let all: Vec<usize> = (0..cluster.members.len()).collect();
    let leader = cluster.wait_leader(&all, Duration::from_secs(10));
    let follower = all.iter().copied().find(|&i| i != leader).unwrap();
    let f = cluster.members[follower].endpoint();
    let new = cluster.new_member_slot("m4");
    let url = cluster.members[new].peer_url();
    let added: pb::MemberAddResponse =
        reconfigure(&f, ADD, &add_req(&url, true)).expect("add a learner via a follower");
    let m = added.member.expect("member");
    let mut ic: Vec<String> = added
        .members
        .iter()
        .flat_map(|x| {
            let name = if x.id == m.id { "m4" } else { x.name.as_str() };
            x.peer_urls.iter().map(move |u| format!("{name}={u}"))
        })
        .collect();
    ic.sort();
    cluster.members[new].initial_cluster = ic.join(",");
    cluster.members[new].initial_state = "existing".into();
    cluster.restart(new);
    let s = grpc::status(&cluster.members[new].endpoint()).expect("status");
    assert!(s.is_learner, "m4 should be a learner: {s:?}");
    cluster.kill(new);
    cluster.restart(new);
    let s = grpc::status(&cluster.members[new].endpoint()).expect("status");
    assert!(
        s.is_learner,
        "m4 should still be a learner after its restart"
    );
    assert_eq!(s.header.map(|h| h.member_id), Some(m.id), "m4's id changed");

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match reconfigure::<_, pb::MemberPromoteResponse>(
            &f,
            PROMOTE,
            &pb::MemberPromoteRequest { id: m.id },
        ) {
            Ok(r) => {
                assert!(r.members.iter().any(|x| x.id == m.id && !x.is_learner));
                break;
            }
            Err(e) => {
                assert!(
                    e.ends_with("can only promote a learner member which is in sync with leader")
                        && Instant::now() < deadline,
                    "promote via a follower: {e}"
                );
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
    // (etcd's follower relays the leader's answer to a promote without waiting for its own
    // apply, unlike the other changes: the follower's list shows it eventually.)
    let deadline = Instant::now() + Duration::from_secs(10);
    while !members_of(&f)
        .iter()
        .any(|x| x.id == m.id && !x.is_learner && x.name == "m4")
    {
        assert!(
            Instant::now() < deadline,
            "the follower never lists m4 as a voter"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while grpc::status(&cluster.members[new].endpoint())
        .map(|s| s.is_learner)
        .unwrap_or(true)
    {
        assert!(Instant::now() < deadline, "m4 never learnt it was promoted");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut c = grpc::connect(&[cluster.members[new].endpoint()], Duration::from_secs(10))
        .expect("connect m4");
    grpc::put(&mut c, b"promoted", b"v").expect("a put on the promoted member");
}
