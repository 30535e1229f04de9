//! The cluster's membership: who the members are (id, name, peer and client URLs, voter or
//! learner), how a membership change is checked and applied, and how the table is stored.
//!
//! Raft decides *when* a change takes effect (thesis §4.1: one server at a time, effective when
//! its entry is applied); this table is what etcd calls the `RaftCluster`. Every member applies
//! the same entries in the same order to the same table, so the checks made at apply time
//! ([`Membership::apply_change`]) give the same verdict everywhere, and the Raft configuration
//! is always derived from the table ([`Membership::conf_state`]).
//!
//! The table is stored in mvcc's meta bucket ([`keel_mvcc::Request::SetMembership`]) in the
//! same commit as the consistent index, so after a crash the table and the applied index agree
//! and the Raft configuration at restart is the one in force at that index.
//!
//! A member joining an existing cluster starts from the table an existing member gives it
//! (which already contains the new member). Replaying the log from an older point over that
//! table is harmless: every change sets one member's state, changes that the table already
//! reflects are refused as no-ops on both the table and Raft, and the others replay in order.

use std::collections::{BTreeMap, BTreeSet};

use keel_consensus::{ConfChange, ConfChangeType, ConfState};
use keel_net::proto::etcdserverpb as pb;
use prost::Message;

use crate::config::InitialMember;
use crate::errors::EtcdError;

/// The majority of `voters` (Raft §5.2: more than half).
pub fn quorum(voters: usize) -> usize {
    voters / 2 + 1
}

/// etcd's `--max-learners` default.
pub const MAX_LEARNERS: usize = 1;

/// The membership table.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Membership {
    members: BTreeMap<u64, pb::Member>,
    /// Ids removed from the cluster: never reused (etcd's `removed` set).
    removed: BTreeSet<u64>,
}

/// The stored form of [`Membership`].
#[derive(Clone, PartialEq, Message)]
struct StoredMembership {
    #[prost(message, repeated, tag = "1")]
    members: Vec<pb::Member>,
    #[prost(uint64, repeated, tag = "2")]
    removed: Vec<u64>,
}

/// What the context of a configuration-change entry carries.
#[derive(Clone, PartialEq, Message)]
pub struct ChangeContext {
    /// The id of the client call waiting for the change (0 = none).
    #[prost(uint64, tag = "1")]
    pub request_id: u64,
    /// The member added or promoted, as it will be listed.
    #[prost(message, optional, tag = "2")]
    pub member: Option<pb::Member>,
}

impl ChangeContext {
    /// Decodes an entry's context; garbage decodes as "no waiter, no member" (and the change
    /// is then refused where it needs the member).
    pub fn decode_lenient(bytes: &[u8]) -> ChangeContext {
        ChangeContext::decode(bytes).unwrap_or_default()
    }
}

/// Which change an entry makes, in etcd's terms.
pub fn describe(cc: &ConfChange, table: &Membership) -> &'static str {
    match cc.change_type {
        ConfChangeType::AddNode if table.is_learner(cc.node_id) => "promote",
        ConfChangeType::AddNode => "add",
        ConfChangeType::AddLearner => "add learner",
        ConfChangeType::RemoveNode => "remove",
    }
}

impl Membership {
    /// The table of a brand-new cluster, from `--initial-cluster`.
    pub fn from_initial(members: &[InitialMember]) -> Membership {
        Membership {
            members: members
                .iter()
                .map(|m| {
                    (
                        m.id,
                        pb::Member {
                            id: m.id,
                            name: m.name.clone(),
                            peer_urls: m.peer_urls.iter().map(|u| u.to_string()).collect(),
                            client_urls: Vec::new(),
                            is_learner: false,
                        },
                    )
                })
                .collect(),
            removed: BTreeSet::new(),
        }
    }

    /// A table from a member list (what an existing member answers a joining one).
    pub fn from_list(list: &[pb::Member]) -> Membership {
        Membership {
            members: list.iter().map(|m| (m.id, m.clone())).collect(),
            removed: BTreeSet::new(),
        }
    }

    /// The stored bytes.
    pub fn encode(&self) -> Vec<u8> {
        StoredMembership {
            members: self.members.values().cloned().collect(),
            removed: self.removed.iter().copied().collect(),
        }
        .encode_to_vec()
    }

    /// Reads stored bytes back.
    pub fn decode(bytes: &[u8]) -> Result<Membership, String> {
        let s = StoredMembership::decode(bytes)
            .map_err(|e| format!("stored membership does not decode: {e}"))?;
        if s.members.iter().any(|m| m.id == 0) {
            return Err("stored membership lists member id 0".into());
        }
        Ok(Membership {
            members: s.members.into_iter().map(|m| (m.id, m)).collect(),
            removed: s.removed.into_iter().collect(),
        })
    }

    /// The Raft configuration this table describes.
    pub fn conf_state(&self) -> ConfState {
        let (learners, voters): (Vec<&pb::Member>, Vec<&pb::Member>) =
            self.members.values().partition(|m| m.is_learner);
        ConfState {
            voters: voters.iter().map(|m| m.id).collect(),
            learners: learners.iter().map(|m| m.id).collect(),
        }
    }

    /// Every member, by id.
    pub fn list(&self) -> Vec<pb::Member> {
        self.members.values().cloned().collect()
    }

    /// One member.
    pub fn get(&self, id: u64) -> Option<&pb::Member> {
        self.members.get(&id)
    }

    /// Whether `id` is a learner of the cluster.
    pub fn is_learner(&self, id: u64) -> bool {
        self.members.get(&id).is_some_and(|m| m.is_learner)
    }

    /// Whether `id` was removed.
    pub fn is_removed(&self, id: u64) -> bool {
        self.removed.contains(&id)
    }

    /// The member whose peer URLs include one of `urls`.
    pub fn find_by_peer_urls(&self, urls: &[String]) -> Option<&pb::Member> {
        self.members
            .values()
            .find(|m| m.peer_urls.iter().any(|u| urls.contains(u)))
    }

    /// A member published its name and client URLs. Returns whether the table changed.
    pub fn set_attributes(&mut self, a: &pb::Member) -> bool {
        match self.members.get_mut(&a.id) {
            Some(m) if m.name != a.name || m.client_urls != a.client_urls => {
                m.name = a.name.clone();
                m.client_urls = a.client_urls.clone();
                true
            }
            _ => false,
        }
    }

    /// Checks before proposing (and again when applying) a MemberAdd.
    pub fn check_add(&self, m: &pb::Member) -> Result<(), EtcdError> {
        if m.id == 0 || self.members.contains_key(&m.id) {
            return Err(EtcdError::MemberExist);
        }
        if self.removed.contains(&m.id) {
            return Err(EtcdError::MemberNotFound);
        }
        self.check_peer_urls(m.id, &m.peer_urls)?;
        if m.is_learner && self.members.values().filter(|x| x.is_learner).count() >= MAX_LEARNERS {
            return Err(EtcdError::TooManyLearners);
        }
        Ok(())
    }

    /// `urls` are valid and used by no member other than `id`.
    pub fn check_peer_urls(&self, id: u64, urls: &[String]) -> Result<(), EtcdError> {
        if urls.is_empty() || urls.iter().any(|u| crate::url::Url::parse(u).is_err()) {
            return Err(EtcdError::MemberBadUrls);
        }
        let taken = self
            .members
            .values()
            .filter(|m| m.id != id)
            .any(|m| m.peer_urls.iter().any(|u| urls.contains(u)));
        if taken {
            return Err(EtcdError::PeerUrlExist);
        }
        Ok(())
    }

    /// Checks a MemberRemove.
    pub fn check_remove(&self, id: u64) -> Result<(), EtcdError> {
        let Some(m) = self.members.get(&id) else {
            return Err(EtcdError::MemberNotFound);
        };
        if !m.is_learner && self.members.values().filter(|x| !x.is_learner).count() == 1 {
            // Raft cannot remove its last voter.
            return Err(EtcdError::MemberNotEnoughStarted);
        }
        Ok(())
    }

    /// Checks a MemberPromote.
    pub fn check_promote(&self, id: u64) -> Result<(), EtcdError> {
        match self.members.get(&id) {
            None => Err(EtcdError::MemberNotFound),
            Some(m) if !m.is_learner => Err(EtcdError::MemberNotLearner),
            Some(_) => Ok(()),
        }
    }

    /// etcd's `IsReadyToAddVotingMember` (strict reconfiguration check): adding a voter must
    /// not leave the cluster with fewer started voters than a quorum of the new size.
    pub fn ready_to_add_voter(&self) -> bool {
        let voters: Vec<&pb::Member> = self.members.values().filter(|m| !m.is_learner).collect();
        let started = voters.iter().filter(|m| !m.name.is_empty()).count();
        let after = voters.len() + 1;
        if started == 1 && after == 2 {
            return true; // a one-member cluster growing to two
        }
        started >= quorum(after)
    }

    /// etcd's `IsReadyToRemoveVotingMember`: the started voters left must still form a quorum.
    pub fn ready_to_remove_voter(&self, id: u64) -> bool {
        let voters: Vec<&pb::Member> = self.members.values().filter(|m| !m.is_learner).collect();
        let after = voters.len().saturating_sub(1);
        let started_after = voters
            .iter()
            .filter(|m| m.id != id && !m.name.is_empty())
            .count();
        after > 0 && started_after >= quorum(after)
    }

    /// Applies a committed configuration change (checked again: the verdict is the same on
    /// every member). On `Err` neither the table nor Raft's configuration may change.
    pub fn apply_change(&mut self, cc: &ConfChange, ctx: &ChangeContext) -> Result<(), EtcdError> {
        let id = cc.node_id;
        match cc.change_type {
            ConfChangeType::AddNode if self.is_learner(id) => {
                if let Some(m) = self.members.get_mut(&id) {
                    m.is_learner = false;
                }
            }
            ConfChangeType::AddNode | ConfChangeType::AddLearner => {
                let Some(mut m) = ctx.member.clone() else {
                    return Err(EtcdError::MemberBadUrls);
                };
                if m.id != id {
                    return Err(EtcdError::MemberNotFound);
                }
                m.is_learner = cc.change_type == ConfChangeType::AddLearner;
                self.check_add(&m)?;
                self.members.insert(id, m);
            }
            ConfChangeType::RemoveNode => {
                self.check_remove(id)?;
                self.members.remove(&id);
                self.removed.insert(id);
            }
        }
        Ok(())
    }

    /// MemberUpdate: new peer URLs for `id`.
    pub fn update_peer_urls(&mut self, id: u64, urls: &[String]) -> Result<(), EtcdError> {
        if !self.members.contains_key(&id) {
            return Err(EtcdError::MemberNotFound);
        }
        self.check_peer_urls(id, urls)?;
        if let Some(m) = self.members.get_mut(&id) {
            m.peer_urls = urls.to_vec();
        }
        Ok(())
    }
}

/// What a member joining an existing cluster records before it creates its WAL: its identity
/// and the table it was given, so that a restart before it applied anything starts the same way.
#[derive(Clone, PartialEq, Message)]
pub struct JoinRecord {
    /// This member's id, assigned by MemberAdd.
    #[prost(uint64, tag = "1")]
    pub member_id: u64,
    /// The cluster's id.
    #[prost(uint64, tag = "2")]
    pub cluster_id: u64,
    /// The stored form of the membership at join time.
    #[prost(bytes = "vec", tag = "3")]
    pub membership: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: u64, name: &str, port: u16, learner: bool) -> pb::Member {
        pb::Member {
            id,
            name: name.into(),
            peer_urls: vec![format!("http://127.0.0.1:{port}")],
            client_urls: vec![],
            is_learner: learner,
        }
    }

    fn three() -> Membership {
        Membership::from_list(&[
            member(1, "a", 1001, false),
            member(2, "b", 1002, false),
            member(3, "c", 1003, false),
        ])
    }

    fn cc(t: ConfChangeType, id: u64) -> ConfChange {
        ConfChange {
            change_type: t,
            node_id: id,
            context: Vec::new(),
        }
    }

    fn ctx(m: pb::Member) -> ChangeContext {
        ChangeContext {
            request_id: 7,
            member: Some(m),
        }
    }

    #[test]
    fn learner_add_promote_remove_and_conf_state_follow_the_table() {
        let mut t = three();
        let new = member(4, "", 1004, true);
        t.apply_change(&cc(ConfChangeType::AddLearner, 4), &ctx(new))
            .unwrap();
        assert_eq!(t.conf_state().learners, vec![4]);
        assert_eq!(t.conf_state().voters, vec![1, 2, 3]);
        // A second learner is refused (etcd's --max-learners 1).
        assert_eq!(
            t.check_add(&member(5, "", 1005, true)),
            Err(EtcdError::TooManyLearners)
        );
        assert_eq!(t.check_promote(1), Err(EtcdError::MemberNotLearner));
        t.apply_change(&cc(ConfChangeType::AddNode, 4), &ChangeContext::default())
            .unwrap();
        assert_eq!(t.conf_state().voters, vec![1, 2, 3, 4]);
        assert!(t.conf_state().learners.is_empty());
        t.apply_change(
            &cc(ConfChangeType::RemoveNode, 2),
            &ChangeContext::default(),
        )
        .unwrap();
        assert_eq!(t.conf_state().voters, vec![1, 3, 4]);
        assert!(t.is_removed(2));
        // Removed ids are never reused.
        assert_eq!(
            t.check_add(&member(2, "", 1009, false)),
            Err(EtcdError::MemberNotFound)
        );
        let back = Membership::decode(&t.encode()).unwrap();
        assert_eq!(back, t);
    }

    #[test]
    fn invalid_changes_leave_the_table_unchanged() {
        let mut t = three();
        let before = t.clone();
        let dup_url = member(4, "", 1001, false);
        assert_eq!(
            t.apply_change(&cc(ConfChangeType::AddNode, 4), &ctx(dup_url)),
            Err(EtcdError::PeerUrlExist)
        );
        let bad_url = pb::Member {
            peer_urls: vec!["not a url".into()],
            ..member(4, "", 0, false)
        };
        assert_eq!(
            t.apply_change(&cc(ConfChangeType::AddNode, 4), &ctx(bad_url)),
            Err(EtcdError::MemberBadUrls)
        );
        assert_eq!(
            t.apply_change(
                &cc(ConfChangeType::AddNode, 1),
                &ctx(member(1, "", 1010, false))
            ),
            Err(EtcdError::MemberExist)
        );
        assert_eq!(
            t.apply_change(
                &cc(ConfChangeType::RemoveNode, 9),
                &ChangeContext::default()
            ),
            Err(EtcdError::MemberNotFound)
        );
        assert_eq!(t, before);
        let mut one = Membership::from_list(&[member(1, "a", 1001, false)]);
        assert_eq!(
            one.apply_change(
                &cc(ConfChangeType::RemoveNode, 1),
                &ChangeContext::default()
            ),
            Err(EtcdError::MemberNotEnoughStarted)
        );
    }

    #[test]
    fn replaying_older_changes_over_a_newer_table_converges() {
        // The history: add learner 4, promote it, add learner 5, remove 2.
        let history = vec![
            (
                cc(ConfChangeType::AddLearner, 4),
                ctx(member(4, "", 1004, true)),
            ),
            (cc(ConfChangeType::AddNode, 4), ChangeContext::default()),
            (
                cc(ConfChangeType::AddLearner, 5),
                ctx(member(5, "", 1005, true)),
            ),
            (cc(ConfChangeType::RemoveNode, 2), ChangeContext::default()),
        ];
        let mut truth = three();
        let mut states = vec![truth.clone()];
        for (c, x) in &history {
            truth.apply_change(c, x).unwrap();
            states.push(truth.clone());
        }
        // A joiner handed the table after change k replays the whole history from the start.
        for (k, given) in states.iter().enumerate() {
            let mut t = given.clone();
            for (c, x) in &history {
                let _ = t.apply_change(c, x);
            }
            assert_eq!(
                t.conf_state(),
                truth.conf_state(),
                "joined after change {k}"
            );
        }
    }

    #[test]
    fn strict_reconfiguration_checks_count_started_voters() {
        let mut t = three();
        assert!(t.ready_to_add_voter());
        assert!(t.ready_to_remove_voter(3));
        // Two of four voters unstarted: adding a fifth would need 3 started.
        t.apply_change(
            &cc(ConfChangeType::AddNode, 4),
            &ctx(member(4, "", 1004, false)),
        )
        .unwrap();
        assert!(t.ready_to_add_voter());
        t.apply_change(
            &cc(ConfChangeType::AddNode, 5),
            &ctx(member(5, "", 1005, false)),
        )
        .unwrap();
        // 5 voters, 3 started: a sixth needs 4.
        assert!(!t.ready_to_add_voter());
        // Removing a started voter leaves 2 started of 4: not a quorum.
        assert!(!t.ready_to_remove_voter(1));
        assert!(t.ready_to_remove_voter(5));
        let single = Membership::from_list(&[member(1, "a", 1001, false)]);
        assert!(single.ready_to_add_voter());
    }

    #[test]
    fn garbage_is_a_typed_error() {
        assert!(Membership::decode(&[0xff, 0xff, 0xff]).is_err());
        assert_eq!(
            ChangeContext::decode_lenient(&[0xff, 0x01]),
            ChangeContext::default()
        );
    }
}
