//! Tunables of a Raft member.

use crate::errors::Error;
use crate::types::NodeId;

/// Configuration of one Raft member. Times are in ticks (the caller decides how long a tick is).
#[derive(Clone, Debug)]
pub struct Config {
    /// This member's id (non-zero).
    pub id: NodeId,
    /// Base election timeout in ticks; the actual timeout is drawn from
    /// `[election_tick, 2 * election_tick)` (§5.2 randomized election timeouts).
    /// Must be greater than `heartbeat_tick` (etcd suggests 10×).
    pub election_tick: usize,
    /// A leader sends heartbeats every `heartbeat_tick` ticks (§5.2).
    pub heartbeat_tick: usize,
    /// The last index the application applied before a restart (0: the snapshot index).
    /// Entries up to it are not handed out again, so membership changes among them are not
    /// re-applied either: [`crate::Storage::initial_state`] must then return the configuration
    /// as of `applied` (thesis §4.1: the configuration is that of the applied log prefix).
    pub applied: u64,
    /// Upper bound of entry payload bytes per append message (batching, flow control).
    pub max_size_per_msg: u64,
    /// Upper bound of committed entry payload bytes per Ready.
    pub max_committed_size_per_ready: u64,
    /// Proposals are dropped once the leader's uncommitted entries exceed this many payload
    /// bytes (0: unbounded). Protects against unbounded log growth without a quorum.
    pub max_uncommitted_entries_size: u64,
    /// At most this many append messages in flight per follower (Replicate state).
    pub max_inflight_msgs: usize,
    /// At most this many payload bytes in flight per follower (0: unbounded).
    pub max_inflight_bytes: u64,
    /// Leader steps down if it has not heard from a majority within an election timeout, and
    /// followers ignore vote requests while they hear from a leader (thesis §6.2, §4.2.3).
    pub check_quorum: bool,
    /// Run a pre-vote phase before incrementing the term (thesis §9.6).
    pub pre_vote: bool,
    /// Deliberate rule violations for the simulator's mutation tests. Never set in production.
    #[doc(hidden)]
    pub mutations: Mutations,
}

/// Switches that each break one Raft rule, so tests can prove the simulator detects it.
/// All off by default.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mutations {
    /// Commit an entry of an earlier term by counting replicas (violates §5.4.2).
    pub commit_previous_term_by_counting: bool,
    /// Grant votes without the "at least as up-to-date" log check (violates §5.4.1).
    pub vote_without_log_check: bool,
    /// Answer ReadIndex requests without the confirming heartbeat round (violates thesis §6.4).
    pub read_index_without_heartbeat: bool,
}

impl Config {
    /// Sensible defaults for member `id` (election 10 ticks, heartbeat 1 tick, pre-vote and
    /// check-quorum on, as etcd 3.5+ runs).
    pub fn new(id: NodeId) -> Config {
        Config {
            id,
            election_tick: 10,
            heartbeat_tick: 1,
            applied: 0,
            max_size_per_msg: 1024 * 1024,
            max_committed_size_per_ready: u64::MAX,
            max_uncommitted_entries_size: 0,
            max_inflight_msgs: 256,
            max_inflight_bytes: 0,
            check_quorum: true,
            pre_vote: true,
            mutations: Mutations::default(),
        }
    }

    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), Error> {
        if self.id == 0 {
            return Err(Error::ConfigInvalid("id must not be 0".into()));
        }
        if self.heartbeat_tick == 0 {
            return Err(Error::ConfigInvalid("heartbeat_tick must be > 0".into()));
        }
        if self.election_tick <= self.heartbeat_tick {
            return Err(Error::ConfigInvalid(
                "election_tick must be greater than heartbeat_tick".into(),
            ));
        }
        if self.max_inflight_msgs == 0 {
            return Err(Error::ConfigInvalid("max_inflight_msgs must be > 0".into()));
        }
        Ok(())
    }
}
