//! The combined static + dynamic table used by the decoder (RFC 7541 §2.3).

use super::static_table::STATIC_TABLE;
use super::HpackError;
use std::collections::VecDeque;

/// The dynamic table: newest entry first, with size accounting (§4.1) and eviction (§4.4).
#[derive(Debug)]
pub(crate) struct DynamicTable {
    entries: VecDeque<(Vec<u8>, Vec<u8>)>,
    size: usize,
    max_size: usize,
}

impl DynamicTable {
    pub(crate) fn new(max_size: usize) -> Self {
        DynamicTable {
            entries: VecDeque::new(),
            size: 0,
            max_size,
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
                Some((n, v)) => self.size -= n.len() + v.len() + 32,
                None => break,
            }
        }
    }

    /// Inserts an entry (§4.4): evicts until it fits; an entry larger than the table empties it.
    pub(crate) fn insert(&mut self, name: Vec<u8>, value: Vec<u8>) {
        let entry_size = name.len() + value.len() + 32;
        if entry_size > self.max_size {
            self.entries.clear();
            self.size = 0;
            return;
        }
        self.evict_to(self.max_size - entry_size);
        self.size += entry_size;
        self.entries.push_front((name, value));
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
