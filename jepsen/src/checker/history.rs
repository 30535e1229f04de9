//! What a test run records: one [`Event`] per client call, with the times it was invoked and
//! returned and what came back.
//!
//! This is the input of [`check`](super::check). Times are monotonic nanoseconds from one
//! clock shared by every client (the harness's), so that "A returned before B was invoked" means
//! the same thing for every pair of events.

use std::fmt;

/// What a client asked for on one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// Read the key's current value.
    Read,
    /// Set the key to this value (etcd `Put`).
    Write(u64),
    /// Set the key to `new` if and only if its value is currently `expect` (an etcd `Txn`
    /// comparing the value). Answers whether it swapped.
    Cas {
        /// The value the key must hold for the swap to happen.
        expect: u64,
        /// The value the key takes if it swaps.
        new: u64,
    },
    /// Remove the key (etcd `DeleteRange` of that one key). Succeeds whether or not it existed.
    Delete,
}

/// What a successful call returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OkValue {
    /// A [`Op::Read`] saw this value (`None`: the key was absent).
    Read(Option<u64>),
    /// A [`Op::Write`] was applied.
    Written,
    /// A [`Op::Cas`] swapped (`true`) or found another value and changed nothing (`false`).
    Cas(bool),
    /// A [`Op::Delete`] was applied.
    Deleted,
}

/// What came back from a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The call succeeded: for Read, the value seen (None = key absent); for Cas, whether it
    /// swapped.
    Ok(OkValue),
    /// The call definitely did not take effect (e.g. an error returned before the request could
    /// be applied, like etcd's "request too large"). Such ops are dropped from the history.
    Failed,
    /// Unknown: timeout, connection lost, leader changed. The op may or may not have taken
    /// effect, at any point after its invocation (it never returns: its return time is treated
    /// as +infinity).
    Indeterminate,
}

/// One client call on one key: what was asked, when, and what came back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Event {
    /// Which client made the call (only used to describe anomalies).
    pub client: u64,
    /// The key the call touched. Keys are checked independently of each other.
    pub key: u64,
    /// What the client asked for.
    pub op: Op,
    /// When the call was sent, in monotonic nanoseconds.
    pub invoked: u64,
    /// When the answer arrived, in monotonic nanoseconds; ignored for
    /// [`Outcome::Indeterminate`]. Must not be before `invoked`.
    pub returned: u64,
    /// What came back.
    pub outcome: Outcome,
}

/// Why a history cannot be checked at all: an event no real run could have recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistoryError {
    /// A determinate event's `returned` is earlier than its `invoked`.
    ReturnedBeforeInvoked {
        /// Position of the event in the history.
        index: usize,
        /// The event.
        event: Event,
    },
    /// A successful event's answer is of the wrong kind for its request (for example a
    /// `Read` answered with `Written`).
    OutcomeDoesNotMatchOp {
        /// Position of the event in the history.
        index: usize,
        /// The event.
        event: Event,
    },
}

impl fmt::Display for HistoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HistoryError::ReturnedBeforeInvoked { index, event } => write!(
                f,
                "event #{index} (client {} on key {}) returned at {} ns, before it was invoked at {} ns",
                event.client, event.key, event.returned, event.invoked
            ),
            HistoryError::OutcomeDoesNotMatchOp { index, event } => write!(
                f,
                "event #{index} (client {} on key {}): {} cannot answer {}",
                event.client,
                event.key,
                describe_outcome(&event.outcome),
                describe_op(&event.op)
            ),
        }
    }
}

impl std::error::Error for HistoryError {}

/// Checks that every event could have been recorded by a real run: determinate events return
/// no earlier than they are invoked, and successful answers match their request.
///
/// [`check`](super::check) runs this first and reports the first bad event as an anomaly;
/// call it yourself to tell a broken harness from a broken store.
pub fn validate(history: &[Event]) -> Result<(), HistoryError> {
    for (index, event) in history.iter().enumerate() {
        let event = *event;
        match event.outcome {
            Outcome::Indeterminate => {}
            Outcome::Failed | Outcome::Ok(_) if event.returned < event.invoked => {
                return Err(HistoryError::ReturnedBeforeInvoked { index, event });
            }
            Outcome::Failed => {}
            Outcome::Ok(value) => {
                let matches = matches!(
                    (event.op, value),
                    (Op::Read, OkValue::Read(_))
                        | (Op::Write(_), OkValue::Written)
                        | (Op::Cas { .. }, OkValue::Cas(_))
                        | (Op::Delete, OkValue::Deleted)
                );
                if !matches {
                    return Err(HistoryError::OutcomeDoesNotMatchOp { index, event });
                }
            }
        }
    }
    Ok(())
}

/// A short human description of a request: `Read`, `Write(5)`, `Cas(5 -> 6)`, `Delete`.
pub(crate) fn describe_op(op: &Op) -> String {
    match op {
        Op::Read => "Read".to_string(),
        Op::Write(v) => format!("Write({v})"),
        Op::Cas { expect, new } => format!("Cas({expect} -> {new})"),
        Op::Delete => "Delete".to_string(),
    }
}

/// A short human description of an outcome: `-> Some(5)`, `ok`, `-> swapped`, `failed`, ...
pub(crate) fn describe_outcome(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Ok(OkValue::Read(Some(v))) => format!("-> {v}"),
        Outcome::Ok(OkValue::Read(None)) => "-> absent".to_string(),
        Outcome::Ok(OkValue::Written) | Outcome::Ok(OkValue::Deleted) => "ok".to_string(),
        Outcome::Ok(OkValue::Cas(true)) => "-> swapped".to_string(),
        Outcome::Ok(OkValue::Cas(false)) => "-> not swapped".to_string(),
        Outcome::Failed => "failed".to_string(),
        Outcome::Indeterminate => "indeterminate".to_string(),
    }
}
