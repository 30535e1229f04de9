//! The combined static + dynamic table used by the decoder (RFC 7541 §2.3).

use super::static_table::STATIC_TABLE;
use super::HpackError;
use std::collections::VecDeque;

/// Evicted entries kept to be refilled by later insertions (a client that indexes a new
/// `grpc-timeout` on every call evicts one entry per insertion once the table is full).
const SPARE_ENTRIES: usize = 16;

/// The dynamic table: newest entry first, with size accounting (§4.1) and eviction (§4.4).
#[derive(Debug)]
pub(crate) struct DynamicTable {
    entries: VecDeque<(Vec<u8>, Vec<u8>)>,
    size: usize,
    max_size: usize,
    /// Evicted entries whose buffers are reused by `insert`.
    spare: Vec<(Vec<u8>, Vec<u8>)>,
}

impl DynamicTable {
    pub(crate) fn new(max_size: usize) -> Self {
        DynamicTable {
            entries: VecDeque::new(),
            size: 0,
            max_size,
            spare: Vec::new(),
        }
    }

    /// Current size in HPACK units.
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// Maximum size (from the last size update, or the initial one).
    pub(crate) fn max_size(&self) -> usize {
        self.max_size
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Changes the maximum size, evicting entries as needed (§4.3).
    pub(crate) fn set_max_size(&mut self, max: usize) {
        self.max_size = max;
        self.evict_to(max);
    }

    fn evict_to(&mut self, limit: usize) {
        while self.size > limit {
            match self.entries.pop_back() {
                Some(entry) => {
                    self.size -= entry.0.len() + entry.1.len() + 32;
                    if self.spare.len() < SPARE_ENTRIES {
                        self.spare.push(entry);
                    }
                }
                None => break,
            }
        }
    }

    /// Inserts an entry (§4.4): evicts until it fits; an entry larger than the table empties it.
    pub(crate) fn insert(&mut self, name: &[u8], value: &[u8]) {
        let entry_size = name.len() + value.len() + 32;
        if entry_size > self.max_size {
            self.evict_to(0);
            return;
        }
        self.evict_to(self.max_size - entry_size);
        self.size += entry_size;
        let (mut n, mut v) = self.spare.pop().unwrap_or_default();
        n.clear();
        n.extend_from_slice(name);
        v.clear();
        v.extend_from_slice(value);
        self.entries.push_front((n, v));
    }

    /// Looks up a 1-based index in the combined index space (static 1..=61, then dynamic).
    pub(crate) fn get(&self, index: usize) -> Result<(&[u8], &[u8]), HpackError> {
        if index == 0 {
            return Err(HpackError::InvalidIndex(0));
        }
        if index <= STATIC_TABLE.len() {
            let (n, v) = STATIC_TABLE[index - 1];
            return Ok((n, v));
        }
        self.entries
            .get(index - STATIC_TABLE.len() - 1)
            .map(|(n, v)| (n.as_slice(), v.as_slice()))
            .ok_or(HpackError::InvalidIndex(index))
    }
}
