//! The vocabulary of Raft: log entries, the persistent hard state, messages, snapshots and
//! cluster configurations.
//!
//! These are plain data. Their wire format lives in [`crate::codec`].

/// Identifies a member of the cluster. `0` ([`NONE`]) means "nobody".
pub type NodeId = u64;

/// "No node": used for an unknown leader or an unset vote.
pub const NONE: NodeId = 0;

/// What a log entry carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// Application data (opaque to Raft). A leader's first entry in its term is an empty
    /// `Normal` entry (thesis §6.4: a leader commits an entry of its own term on election).
    Normal,
    /// An encoded [`ConfChange`]: a membership change, applied when the entry is applied.
    ConfChange,
}

/// One record of the replicated log.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Entry {
    /// The term of the leader that created the entry (§5.3).
    pub term: u64,
    /// The entry's position in the log, starting at 1 (§5.3).
    pub index: u64,
    /// Application data or a membership change.
    pub kind: EntryKind,
    /// The payload; for [`EntryKind::ConfChange`] an encoded [`ConfChange`].
    pub data: Vec<u8>,
}

impl Entry {
    /// A normal entry with the given payload.
    pub fn normal(term: u64, index: u64, data: Vec<u8>) -> Entry {
        Entry {
            term,
            index,
            kind: EntryKind::Normal,
            data,
        }
    }

    /// The number of payload bytes, the unit of the size limits in [`crate::Config`].
    pub fn payload_size(&self) -> u64 {
        self.data.len() as u64
    }
}

/// The state every member must persist before it answers any message (§5.1, Figure 2
/// "Persistent state on all servers"; `commit` is persisted too so a restart can re-apply).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct HardState {
    /// The latest term this member has seen.
    pub term: u64,
    /// The candidate this member voted for in `term`, or [`NONE`].
    pub vote: NodeId,
    /// The highest log index known to be committed.
    pub commit: u64,
}

/// The voting configuration of the cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ConfState {
    /// Members whose votes and acknowledgements count towards majorities (sorted).
    pub voters: Vec<NodeId>,
    /// Members that receive the log but do not vote (thesis §4.2.1), sorted.
    pub learners: Vec<NodeId>,
}

impl ConfState {
    /// A configuration with the given voters and no learners.
    pub fn with_voters(voters: &[NodeId]) -> ConfState {
        let mut v = voters.to_vec();
        v.sort_unstable();
        v.dedup();
        ConfState {
            voters: v,
            learners: Vec::new(),
        }
    }
}

/// The kind of a membership change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConfChangeType {
    /// Add a voter, or promote an existing learner to voter.
    AddNode,
    /// Add a learner (a non-voting member that catches up first, thesis §4.2.1).
    AddLearner,
    /// Remove a voter or learner.
    RemoveNode,
}

/// One membership change: one member at a time, as etcd does (thesis §4.1).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ConfChange {
    /// What to do.
    pub change_type: ConfChangeType,
    /// To whom.
    pub node_id: NodeId,
    /// Opaque application data (etcd puts the member's URLs here).
    pub context: Vec<u8>,
}

/// What a snapshot covers: the log up to `index` (whose term is `term`) and the configuration
/// in force at that point (§7).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct SnapshotMeta {
    /// The last log index the snapshot replaces.
    pub index: u64,
    /// The term of that entry.
    pub term: u64,
    /// The configuration as of `index`.
    pub conf_state: ConfState,
}

/// A snapshot: metadata plus the application's opaque state-machine image.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Snapshot {
    /// What the snapshot covers.
    pub meta: SnapshotMeta,
    /// The state machine's serialized state.
    pub data: Vec<u8>,
}

/// All messages Raft members exchange (and the two a follower forwards to its leader).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// Client proposal forwarded by a follower to the leader (`entries` carries the data).
    Propose,
    /// AppendEntries RPC (§5.3): `index`/`log_term` identify the entry preceding `entries`.
    Append,
    /// Reply to `Append` (and to `Snapshot`): `index` is the follower's new last matching index,
    /// or on `reject` the rejected `index` with `reject_hint`/`log_term` for fast backtracking.
    AppendResponse,
    /// RequestVote RPC (§5.2): `index`/`log_term` describe the candidate's last entry.
    RequestVote,
    /// Reply to `RequestVote`.
    RequestVoteResponse,
    /// Pre-vote (thesis §9.6): "would you vote for me at `term`?" without changing anyone's term.
    RequestPreVote,
    /// Reply to `RequestPreVote`.
    RequestPreVoteResponse,
    /// Leader heartbeat (an empty AppendEntries, §5.2): carries `commit` and a ReadIndex `context`.
    Heartbeat,
    /// Reply to `Heartbeat`, echoing its `context`.
    HeartbeatResponse,
    /// InstallSnapshot RPC (§7): `snapshot` carries the snapshot.
    Snapshot,
    /// ReadIndex request forwarded by a follower to the leader (thesis §6.4).
    ReadIndex,
    /// Reply to `ReadIndex`: `index` is the read index, `context` the request's context.
    ReadIndexResponse,
    /// Leadership transfer (thesis §3.10): "start an election now, skipping pre-vote".
    TimeoutNow,
}

impl MessageType {
    /// True for responses that promise something about the sender's durable state: they are
    /// released only after the Ready that produced them is persisted.
    pub fn needs_persistence(self) -> bool {
        matches!(
            self,
            MessageType::AppendResponse
                | MessageType::RequestVoteResponse
                | MessageType::RequestPreVoteResponse
        )
    }

    /// True for the two message kinds that travel without a term (forwarded client requests).
    pub fn is_termless(self) -> bool {
        matches!(self, MessageType::Propose | MessageType::ReadIndex)
    }
}

/// A Raft message. Fields not used by a message type are zero / empty.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Message {
    /// The kind of message.
    pub msg_type: MessageType,
    /// Sender.
    pub from: NodeId,
    /// Recipient.
    pub to: NodeId,
    /// The sender's term (0 only for `Propose` and `ReadIndex`).
    pub term: u64,
    /// A log term: of the entry at `index` (Append, votes) or a backtracking hint (rejections).
    pub log_term: u64,
    /// A log index; meaning depends on `msg_type`.
    pub index: u64,
    /// Entries to append (Append) or to propose (Propose).
    pub entries: Vec<Entry>,
    /// The leader's commit index (Append, Heartbeat).
    pub commit: u64,
    /// True if the request was refused.
    pub reject: bool,
    /// For a rejected Append: the follower's suggestion where to retry (fast backtracking).
    pub reject_hint: u64,
    /// Opaque context (ReadIndex request ids; [`CAMPAIGN_TRANSFER`] on transfer votes).
    pub context: Vec<u8>,
    /// The snapshot of an InstallSnapshot message.
    pub snapshot: Option<Snapshot>,
}

/// Context attached to vote requests of an election started by leadership transfer: such
/// requests bypass the "leader lease" check (thesis §4.2.3, §3.10).
pub const CAMPAIGN_TRANSFER: &[u8] = b"CampaignTransfer";

impl Message {
    /// An empty message of the given type.
    pub fn new(msg_type: MessageType, from: NodeId, to: NodeId) -> Message {
        Message {
            msg_type,
            from,
            to,
            term: 0,
            log_term: 0,
            index: 0,
            entries: Vec::new(),
            commit: 0,
            reject: false,
            reject_hint: 0,
            context: Vec::new(),
            snapshot: None,
        }
    }
}

/// A confirmed linearizable read point (thesis §6.4): once the application has applied up to
/// `index`, it may answer the read identified by `context`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ReadState {
    /// The commit index at the time the read was confirmed.
    pub index: u64,
    /// The context passed to `read_index`.
    pub context: Vec<u8>,
}

/// The role a member plays (§5.1 Figure 4, plus the pre-candidate of thesis §9.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Passive: answers leaders and candidates.
    Follower,
    /// Asking for pre-votes before starting a real election (thesis §9.6).
    PreCandidate,
    /// Asking for votes (§5.2).
    Candidate,
    /// Handles proposals and replicates the log (§5.3).
    Leader,
}

/// Volatile state worth reporting: who leads, and what this member is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SoftState {
    /// The known leader, or [`NONE`].
    pub leader_id: NodeId,
    /// This member's role.
    pub role: Role,
}
