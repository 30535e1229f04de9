//! The Cluster service's changes (MemberAdd, MemberRemove, MemberPromote, MemberUpdate) and
//! Maintenance.MoveLeader, on the member's loop.
//!
//! Membership changes are decided by the leader, as in etcd: a follower forwards the call to
//! the leader's client URL. The leader checks the request against the table (the same checks
//! run again when the entry is applied, see [`crate::membership`]), applies etcd's strict
//! reconfiguration checks (`--strict-reconfig-check`, on by default in etcd), and proposes a
//! Raft configuration change (thesis §4.1, one at a time) whose context names the waiting call.
//! The call is answered with the member list once the change is applied.

use std::time::Instant;

use keel_consensus::{ConfChange, ConfChangeType};
use keel_mvcc as mvcc;
use keel_net::grpc::CallId;
use keel_net::proto::etcdserverpb as pb;
use keel_net::proto::Rpc;
use prost::Message;

use super::{
    add_peer_of, decode, to_local_status, Member, MembershipEvent, PendingTransfer, Shared, Wake,
};
use crate::envelope::Request;
use crate::errors::{Code, EtcdError, Status};
use crate::membership::{ChangeContext, Membership};
use crate::{log_error, log_info, log_warn};

/// etcd's `readyPercent`: a learner may be promoted once its log reaches 90% of the leader's.
const LEARNER_READY_PERCENT: f64 = 0.9;

type Answer = Option<Result<Vec<u8>, Status>>;

/// The response of a membership call, built from the table once its change is applied.
fn membership_response(rpc: Rpc, node: u64, shared: &Shared, revision: i64) -> Vec<u8> {
    let header = Some(shared.header().header(revision));
    let table = shared.membership.lock();
    let members = table.list();
    match rpc {
        Rpc::MemberAdd => pb::MemberAddResponse {
            header,
            member: table.get(node).cloned(),
            members,
        }
        .encode_to_vec(),
        Rpc::MemberRemove => pb::MemberRemoveResponse { header, members }.encode_to_vec(),
        Rpc::MemberPromote => pb::MemberPromoteResponse { header, members }.encode_to_vec(),
        _ => pb::MemberUpdateResponse { header, members }.encode_to_vec(),
    }
}

/// Whether `table` shows the change a successful membership call made (`request` and
/// `response` are the call's encoded messages). Undecodable messages count as applied.
fn change_applied(table: &Membership, rpc: Rpc, request: &[u8], response: &[u8]) -> bool {
    match rpc {
        Rpc::MemberAdd => match pb::MemberAddResponse::decode(response) {
            Ok(r) => r
                .member
                .is_none_or(|m| table.get(m.id).is_some() || table.is_removed(m.id)),
            Err(_) => true,
        },
        Rpc::MemberRemove => match pb::MemberRemoveRequest::decode(request) {
            Ok(r) => table.get(r.id).is_none(),
            Err(_) => true,
        },
        Rpc::MemberPromote => match pb::MemberPromoteRequest::decode(request) {
            Ok(r) => table.get(r.id).is_none_or(|m| !m.is_learner),
            Err(_) => true,
        },
        _ => match pb::MemberUpdateRequest::decode(request) {
            Ok(r) => table.get(r.id).is_none_or(|m| m.peer_urls == r.peer_urls),
            Err(_) => true,
        },
    }
}

impl Member {
    /// MemberAdd / MemberRemove / MemberPromote / MemberUpdate.
    pub(super) fn membership_call(&mut self, call: CallId, rpc: Rpc, msg: &[u8]) -> Answer {
        let leader = self.core.leader();
        if leader == 0 {
            return Some(Err(EtcdError::NoLeader.status()));
        }
        if leader != self.id {
            return self.forward_membership_call(call, leader, rpc, msg.to_vec());
        }
        let checked = match rpc {
            Rpc::MemberAdd => self.check_member_add(msg),
            Rpc::MemberRemove => self.check_member_remove(msg),
            Rpc::MemberPromote => self.check_member_promote(msg),
            _ => {
                let r: pb::MemberUpdateRequest = match decode(msg) {
                    Ok(r) => r,
                    Err(s) => return Some(Err(s)),
                };
                if let Err(e) = self
                    .shared
                    .membership
                    .lock()
                    .clone()
                    .update_peer_urls(r.id, &r.peer_urls)
                {
                    return Some(Err(e.status()));
                }
                let node = r.id;
                let reply = self.membership_reply(call, rpc, node);
                return match self.propose_with(Request::MemberUpdate(r), reply) {
                    Ok(()) => None,
                    Err(s) => Some(Err(s)),
                };
            }
        };
        match checked {
            Ok((change_type, node, member)) => {
                self.propose_membership_change(call, rpc, change_type, node, member);
                None
            }
            Err(e) => Some(Err(e)),
        }
    }

    /// Forwards a membership call to the leader and answers it once this member applied the
    /// change too. In etcd a follower proposes the change itself and answers after its own
    /// apply, so a client that asks it for the member list next sees the change; forwarding
    /// must keep that. A helper thread:
    /// 1. waits until this member applied the leader's client URLs (just after an election or
    ///    a start it may know who leads before that);
    /// 2. makes the call on the leader (as [`Member::forward_unary`] does);
    /// 3. on success, waits until the local table shows the change ([`change_applied`]).
    ///
    /// Everything within the request timeout; past it the leader's answer is relayed as is.
    fn forward_membership_call(
        &self,
        call: CallId,
        leader: u64,
        rpc: Rpc,
        request: Vec<u8>,
    ) -> Answer {
        use keel_net::client::{Client, ClientConfig, ClientError};
        let shared = self.shared.clone();
        let waker = self.waker.clone();
        let timeout = self.cfg.request_timeout();
        let spawned = std::thread::Builder::new()
            .name("keel-forward".into())
            .spawn(move || {
                let deadline = Instant::now() + timeout;
                let poll = std::time::Duration::from_millis(5);
                let endpoint = loop {
                    let url = shared
                        .membership
                        .lock()
                        .get(leader)
                        .and_then(|m| m.client_urls.first().cloned());
                    if let Some(url) = url {
                        break Some(
                            url.trim_start_matches("http://")
                                .trim_end_matches('/')
                                .to_string(),
                        );
                    }
                    if Instant::now() >= deadline {
                        break None;
                    }
                    std::thread::sleep(poll);
                };
                let result = match endpoint {
                    None => Err(EtcdError::NoLeader.status()),
                    Some(endpoint) => {
                        let left = deadline.saturating_duration_since(Instant::now());
                        Client::connect(&[endpoint.as_str()], ClientConfig::default())
                            .and_then(|mut c| c.unary_with(rpc.path(), &request, &[], left))
                            .map_err(|e| match e {
                                ClientError::Status(s) => to_local_status(&s),
                                other => {
                                    log_warn!(
                                        "{} forwarded to {endpoint} failed: {other}",
                                        rpc.path()
                                    );
                                    EtcdError::NoLeader.status()
                                }
                            })
                    }
                };
                if let Ok(response) = &result {
                    while !change_applied(&shared.membership.lock(), rpc, &request, response)
                        && Instant::now() < deadline
                    {
                        std::thread::sleep(poll);
                    }
                }
                let _ = waker.wake(Wake::Reply(call, result));
            });
        match spawned {
            Ok(_) => None,
            Err(_) => Some(Err(EtcdError::NoLeader.status())),
        }
    }

    /// The reply callback of a membership call: the member list after the change.
    fn membership_reply(
        &self,
        call: CallId,
        rpc: Rpc,
        node: u64,
    ) -> crate::wait::Reply<mvcc::Response> {
        let waker = self.waker.clone();
        let shared = self.shared.clone();
        let store = self.store.clone();
        Box::new(move |r: Result<mvcc::Response, Status>| {
            let bytes =
                r.map(|_| membership_response(rpc, node, &shared, store.current_revision()));
            let _ = waker.wake(Wake::Reply(call, bytes));
        })
    }

    fn check_member_add(
        &self,
        msg: &[u8],
    ) -> Result<(ConfChangeType, u64, Option<pb::Member>), Status> {
        let r: pb::MemberAddRequest = decode(msg)?;
        // etcd's types.NewURLs: every URL valid, blanks trimmed, the list sorted; the member is
        // stored (and its URLs compared with the others') in that form.
        let mut peer_urls: Vec<String> = r.peer_urls.iter().map(|u| u.trim().to_string()).collect();
        peer_urls.sort();
        let parsed: Vec<crate::url::Url> = peer_urls
            .iter()
            .map(|u| crate::url::Url::parse(u))
            .collect::<Result<_, _>>()
            .map_err(|_| EtcdError::MemberBadUrls.status())?;
        if parsed.is_empty() {
            return Err(EtcdError::MemberBadUrls.status());
        }
        // etcd: NewMember("", urls, "", now): the id hashes the peer URLs and the time.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let id = crate::config::member_id(&parsed, "", Some(now));
        let member = pb::Member {
            id,
            name: String::new(),
            peer_urls,
            client_urls: Vec::new(),
            is_learner: r.is_learner,
        };
        let table = self.shared.membership.lock();
        // etcd's mayAddMember (strict reconfiguration check, unless --strict-reconfig-check=
        // false) comes before the table's checks: enough started voters for a new voter, and
        // every voter connected.
        let strict = self.cfg.strict_reconfig_check;
        if strict && !r.is_learner && !table.ready_to_add_voter() {
            return Err(EtcdError::MemberNotEnoughStarted.status());
        }
        if let Some((transport, _)) = self.peers.as_ref().filter(|_| strict) {
            let disconnected = table
                .conf_state()
                .voters
                .into_iter()
                .filter(|&v| v != self.id)
                .any(|v| !transport.peer_stats(v).is_some_and(|s| s.connected));
            if disconnected {
                return Err(EtcdError::Unhealthy.status());
            }
        }
        table.check_add(&member).map_err(|e| e.status())?;
        let change_type = if r.is_learner {
            ConfChangeType::AddLearner
        } else {
            ConfChangeType::AddNode
        };
        Ok((change_type, id, Some(member)))
    }

    fn check_member_remove(
        &self,
        msg: &[u8],
    ) -> Result<(ConfChangeType, u64, Option<pb::Member>), Status> {
        let r: pb::MemberRemoveRequest = decode(msg)?;
        let table = self.shared.membership.lock();
        table.check_remove(r.id).map_err(|e| e.status())?;
        // etcd's mayRemoveMember: a voter's removal is checked unless
        // --strict-reconfig-check=false.
        if self.cfg.strict_reconfig_check && !table.is_learner(r.id) {
            if !table.ready_to_remove_voter(r.id) {
                return Err(EtcdError::MemberNotEnoughStarted.status());
            }
            // etcd's mayRemoveMember: the voters that stay must still be a connected quorum.
            let status = self.core.status();
            let staying: Vec<u64> = table
                .conf_state()
                .voters
                .into_iter()
                .filter(|&v| v != r.id)
                .collect();
            let active = staying
                .iter()
                .filter(|&&v| {
                    v == self.id || status.progress.get(&v).is_some_and(|p| p.recent_active)
                })
                .count();
            if active < crate::membership::quorum(staying.len()) {
                return Err(EtcdError::Unhealthy.status());
            }
        }
        Ok((ConfChangeType::RemoveNode, r.id, None))
    }

    fn check_member_promote(
        &self,
        msg: &[u8],
    ) -> Result<(ConfChangeType, u64, Option<pb::Member>), Status> {
        let r: pb::MemberPromoteRequest = decode(msg)?;
        let table = self.shared.membership.lock();
        table.check_promote(r.id).map_err(|e| e.status())?;
        // etcd's isLearnerReady: the learner's log within 90% of the leader's.
        let status = self.core.status();
        let leader_match = status
            .progress
            .get(&self.id)
            .map(|p| p.matched)
            .unwrap_or(status.last_index);
        match status.progress.get(&r.id) {
            Some(p) if p.matched as f64 >= leader_match as f64 * LEARNER_READY_PERCENT => {}
            Some(_) => return Err(EtcdError::LearnerNotReady.status()),
            None => return Err(EtcdError::MemberNotFound.status()),
        }
        // etcd's mayPromoteMember: the learner's readiness always, the started voters only
        // with the strict reconfiguration check.
        if self.cfg.strict_reconfig_check && !table.ready_to_add_voter() {
            return Err(EtcdError::MemberNotEnoughStarted.status());
        }
        Ok((ConfChangeType::AddNode, r.id, None))
    }

    /// Propose a configuration change for `node`; `call` is answered when it is applied.
    fn propose_membership_change(
        &mut self,
        call: CallId,
        rpc: Rpc,
        change_type: ConfChangeType,
        node: u64,
        member: Option<pb::Member>,
    ) {
        let request_id = self.ids.next();
        let cc = ConfChange {
            change_type,
            node_id: node,
            context: ChangeContext { request_id, member }.encode_to_vec(),
        };
        let reply = self.membership_reply(call, rpc, node);
        let deadline = Instant::now() + self.cfg.request_timeout();
        self.waiters.register(request_id, deadline, reply);
        log_info!("proposing membership change: {change_type:?} {node:x}");
        if let Err(e) = self.core.propose_conf_change(&cc) {
            self.metrics.proposals_failed.inc();
            let status = match e {
                // Another change is not applied yet (one at a time, thesis §4.1): etcd's
                // "unhealthy cluster" is the error clients retry on.
                keel_consensus::Error::ProposalDropped(_) => EtcdError::Unhealthy.status(),
                keel_consensus::Error::NotLeader { .. } => EtcdError::NoLeader.status(),
                other => Status::new(Code::FailedPrecondition, other.to_string()),
            };
            self.waiters.trigger(request_id, Err(status));
        }
        self.pump();
    }

    /// The apply thread applied a membership change: Raft's configuration and the transport
    /// follow the table.
    pub(super) fn on_membership_event(&mut self, ev: MembershipEvent) {
        let transport = self.peers.as_ref().map(|(t, _)| t.clone());
        match ev {
            MembershipEvent::ConfChange(cc) => {
                if let Err(e) = self.core.apply_conf_change(&cc) {
                    log_error!(
                        "raft refused the applied membership change for {:x}: {e}",
                        cc.node_id
                    );
                }
                let id = cc.node_id;
                match cc.change_type {
                    ConfChangeType::RemoveNode if id == self.id => {
                        log_warn!(
                            "this member ({id:x}) was removed from the cluster; stopping in a second"
                        );
                        // Answer what is in flight first (e.g. the MemberRemove call itself).
                        let _ = std::thread::Builder::new()
                            .name("keel-removed".into())
                            .spawn(|| {
                                std::thread::sleep(std::time::Duration::from_secs(1));
                                std::process::exit(0);
                            });
                    }
                    ConfChangeType::RemoveNode => {
                        if let Some(t) = transport {
                            let _ = t.remove_peer(id);
                        }
                    }
                    ConfChangeType::AddNode | ConfChangeType::AddLearner if id != self.id => {
                        let member = self.shared.membership.lock().get(id).cloned();
                        if let (Some(t), Some(m)) = (transport, member) {
                            if !t.peers().contains(&id) {
                                add_peer_of(&t, &m);
                            }
                        }
                    }
                    _ => {}
                }
                self.pump();
            }
            MembershipEvent::SyncConf => {
                let (conf, listed) = {
                    let table = self.shared.membership.lock();
                    (table.conf_state(), table.get(self.id).is_some())
                };
                if !listed {
                    crate::log::fatal(format_args!(
                        "the installed snapshot's membership no longer lists this member ({:x})",
                        self.id
                    ));
                }
                if self.core.conf_state() != conf {
                    log_info!(
                        "raft configuration set from the installed membership: voters {:x?}, learners {:x?}",
                        conf.voters,
                        conf.learners
                    );
                    self.core.restore_conf_state(&conf);
                }
                self.sync_peers_with_table();
                self.pump();
            }
            MembershipEvent::PeerUrls(id, _) => {
                let member = self.shared.membership.lock().get(id).cloned();
                if let (Some(t), Some(m), true) = (transport, member, id != self.id) {
                    add_peer_of(&t, &m);
                }
            }
        }
    }

    /// Maintenance.MoveLeader: the leader hands leadership to a voter (thesis §3.10) and
    /// answers once that member leads.
    pub(super) fn move_leader(&mut self, call: CallId, msg: &[u8]) -> Answer {
        let r: pb::MoveLeaderRequest = match decode(msg) {
            Ok(r) => r,
            Err(s) => return Some(Err(s)),
        };
        if self.core.leader() != self.id {
            return Some(Err(EtcdError::NotLeader.status()));
        }
        let voter = self
            .shared
            .membership
            .lock()
            .get(r.target_id)
            .is_some_and(|m| !m.is_learner);
        if !voter {
            return Some(Err(EtcdError::BadLeaderTransferee.status()));
        }
        if r.target_id == self.id {
            return Some(Ok(self.move_leader_response()));
        }
        if let Err(e) = self.core.transfer_leader(r.target_id) {
            log_warn!("leader transfer to {:x} refused: {e}", r.target_id);
            return Some(Err(EtcdError::BadLeaderTransferee.status()));
        }
        log_info!("transferring leadership to {:x}", r.target_id);
        if let Some(old) = self.transfer.take() {
            let _ = self.waker.wake(Wake::Reply(
                old.call,
                Err(EtcdError::TimeoutLeaderTransfer.status()),
            ));
        }
        self.transfer = Some(PendingTransfer {
            call,
            target: r.target_id,
            deadline: Instant::now() + self.cfg.request_timeout(),
        });
        self.pump();
        None
    }

    fn move_leader_response(&self) -> Vec<u8> {
        pb::MoveLeaderResponse {
            header: Some(self.shared.header().header(self.store.current_revision())),
        }
        .encode_to_vec()
    }

    /// Answers a MoveLeader call once its target leads, or with etcd's timeout error.
    pub(super) fn check_transfer(&mut self) {
        let Some(t) = &self.transfer else {
            return;
        };
        let result = if self.core.leader() == t.target {
            Ok(self.move_leader_response())
        } else if Instant::now() >= t.deadline {
            Err(EtcdError::TimeoutLeaderTransfer.status())
        } else {
            return;
        };
        let call = t.call;
        self.transfer = None;
        let _ = self.waker.wake(Wake::Reply(call, result));
    }
}
