//! ReadIndex bookkeeping (thesis §6.4): read requests waiting for the leader to confirm,
//! with one round of heartbeats, that it was still the leader when the request arrived.

use std::collections::{BTreeSet, HashMap, VecDeque};

use crate::types::{Message, NodeId};

/// A read request waiting for its heartbeat round.
#[derive(Clone, Debug)]
pub struct ReadIndexStatus {
    /// The original request (`from` is who asked; `context` identifies it).
    pub req: Message,
    /// The leader's commit index when the request arrived: the read index.
    pub index: u64,
    /// Members that acknowledged a heartbeat carrying this request's context.
    pub acks: BTreeSet<NodeId>,
}

/// Pending read requests, in arrival order.
#[derive(Clone, Debug, Default)]
pub struct ReadOnly {
    pending: HashMap<Vec<u8>, ReadIndexStatus>,
    queue: VecDeque<Vec<u8>>,
}

impl ReadOnly {
    /// Registers a request with its read index (ignored if the context is already pending).
    pub fn add_request(&mut self, index: u64, req: Message) {
        let ctx = req.context.clone();
        if self.pending.contains_key(&ctx) {
            return;
        }
        self.pending.insert(
            ctx.clone(),
            ReadIndexStatus {
                req,
                index,
                acks: BTreeSet::new(),
            },
        );
        self.queue.push_back(ctx);
    }

    /// Records that `from` answered the heartbeat for `ctx`; returns the acks so far.
    pub fn recv_ack(&mut self, from: NodeId, ctx: &[u8]) -> Option<&BTreeSet<NodeId>> {
        let st = self.pending.get_mut(ctx)?;
        st.acks.insert(from);
        Some(&st.acks)
    }

    /// Releases the request `ctx` and every request queued before it: a heartbeat round that
    /// confirms leadership after a later request also covers the earlier ones.
    pub fn advance(&mut self, ctx: &[u8]) -> Vec<ReadIndexStatus> {
        let Some(pos) = self.queue.iter().position(|c| c == ctx) else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(pos + 1);
        for c in self.queue.drain(..=pos) {
            if let Some(st) = self.pending.remove(&c) {
                out.push(st);
            }
        }
        out
    }

    /// The context of the newest pending request, sent with heartbeats.
    pub fn last_pending_request_ctx(&self) -> Option<Vec<u8>> {
        self.queue.back().cloned()
    }

    /// Number of pending requests.
    pub fn pending_count(&self) -> usize {
        self.queue.len()
    }
}
