//! The HPACK encoder (RFC 7541 §6): static-table references, an optional dynamic table filled by
//! "literal with incremental indexing", and dynamic table size updates; no Huffman coding.
//!
//! Two flavours, one type:
//!
//! * [`Encoder::new`] never inserts into the peer's table (size 0): every block is independent of
//!   the others, so blocks may be sent in any order. It announces size 0 at the start of its first
//!   block and after every change of the peer's SETTINGS_HEADER_TABLE_SIZE.
//! * [`Encoder::with_table_size`] keeps a dynamic table of up to `min(limit, peer's
//!   SETTINGS_HEADER_TABLE_SIZE)` bytes, mirroring the peer decoder's table. A field it judges
//!   worth remembering is sent once as a literal with incremental indexing (§6.2.1); later it is
//!   a one-byte indexed field (§6.1). Because each block changes the table, **blocks must reach the
//!   peer in the order they were encoded** (the HTTP/2 connection encodes a block only when it
//!   writes it to the transport).
//!
//! Table size rules (§4.2, §6.3): after the peer changes SETTINGS_HEADER_TABLE_SIZE the next
//! block starts with a size update; if the setting went down and up again in between, the
//! smallest value is announced first and then the final one (at most two updates).

use super::static_table::STATIC_TABLE;
use super::{encode_integer, HeaderField};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};

/// HTTP/2's initial SETTINGS_HEADER_TABLE_SIZE (RFC 9113 §6.5.2).
pub const DEFAULT_TABLE_SIZE: usize = 4096;

/// Table states are numbered from one counter shared by all encoders, so a [`BlockCache`] filled
/// by one encoder can never be mistaken as valid by another.
static NEXT_TABLE_STATE: AtomicU64 = AtomicU64::new(1);

fn new_table_state() -> u64 {
    NEXT_TABLE_STATE.fetch_add(1, Ordering::Relaxed)
}

/// Encodes header blocks of one connection, in order.
#[derive(Debug)]
pub struct Encoder {
    /// The most we use of the peer's table (0: never index).
    limit: usize,
    /// The peer's current SETTINGS_HEADER_TABLE_SIZE.
    peer_max: usize,
    /// Smallest peer setting seen since the last block (for the two-update rule of §4.2).
    pending_min: usize,
    /// A size update must start the next block.
    update_pending: bool,
    /// Our copy of the peer decoder's dynamic table: newest first.
    entries: VecDeque<(Vec<u8>, Vec<u8>)>,
    /// Sum of `name + value + 32` over `entries`.
    size: usize,
    /// The table's maximum size as last announced to (or assumed by) the peer's decoder.
    max_size: usize,
    /// Changes whenever the table (entries or maximum size) changes.
    state: u64,
}

impl Default for Encoder {
    fn default() -> Self {
        Encoder::new()
    }
}

impl Encoder {
    /// An encoder that never indexes: each block stands alone (its first block announces a
    /// table size of 0).
    pub fn new() -> Self {
        Encoder::with_table_size(0)
    }

    /// An encoder that keeps a dynamic table of up to `limit` bytes (bounded further by the
    /// peer's SETTINGS_HEADER_TABLE_SIZE, 4096 until [`Encoder::set_peer_max_table_size`] says
    /// otherwise). `limit` 0 is [`Encoder::new`].
    pub fn with_table_size(limit: usize) -> Self {
        let mut e = Encoder {
            limit,
            peer_max: DEFAULT_TABLE_SIZE,
            pending_min: DEFAULT_TABLE_SIZE,
            update_pending: false,
            entries: VecDeque::new(),
            size: 0,
            // Both ends start from the protocol default (§4.2, RFC 9113 §6.5.2).
            max_size: DEFAULT_TABLE_SIZE,
            state: new_table_state(),
        };
        // A limit below the default must be announced before the first field.
        e.update_pending = e.target_size() != e.max_size;
        e
    }

    /// The table size we want: our limit within the peer's.
    fn target_size(&self) -> usize {
        self.limit.min(self.peer_max)
    }

    /// Call when the peer's SETTINGS_HEADER_TABLE_SIZE is (re)set to `size` (including to the
    /// same value): the next block starts with a dynamic table size update.
    pub fn set_peer_max_table_size(&mut self, size: usize) {
        self.pending_min = if self.update_pending {
            self.pending_min.min(size)
        } else {
            size
        };
        self.peer_max = size;
        self.update_pending = true;
    }

    /// Call when the peer's SETTINGS_HEADER_TABLE_SIZE changes without knowing the value: the
    /// size is re-announced (kept for callers of the first version of this encoder).
    pub fn peer_table_size_changed(&mut self) {
        let size = self.peer_max;
        self.set_peer_max_table_size(size);
    }

    /// Current size of the dynamic table (HPACK units) — equal to the peer decoder's.
    pub fn table_size(&self) -> usize {
        self.size
    }

    /// Number of entries in the dynamic table.
    pub fn table_len(&self) -> usize {
        self.entries.len()
    }

    /// The table's maximum size as the peer's decoder knows it (after the next block's size
    /// update, if one is pending).
    pub fn max_table_size(&self) -> usize {
        if self.update_pending {
            self.target_size()
        } else {
            self.max_size
        }
    }

    /// Appends the encoding of `fields` to `out`.
    pub fn encode<'a>(
        &mut self,
        fields: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
        out: &mut Vec<u8>,
    ) {
        self.start_block(out);
        for (name, value) in fields {
            self.encode_field(name, value, out);
        }
    }

    /// Convenience wrapper over [`Encoder::encode`] for owned fields.
    pub fn encode_fields(&mut self, fields: &[HeaderField], out: &mut Vec<u8>) {
        self.encode(
            fields
                .iter()
                .map(|f| (f.name.as_slice(), f.value.as_slice())),
            out,
        )
    }

    /// Like [`Encoder::encode`], but reuses the bytes of the last identical block from `cache`
    /// while the table has not changed since (then the encoding would be the same, byte for
    /// byte). A block that inserted into the table, or started with a size update, is not
    /// reusable and is not cached; the next one (pure references) is.
    pub fn encode_cached(
        &mut self,
        cache: &mut BlockCache,
        fields: &[(&[u8], &[u8])],
        out: &mut Vec<u8>,
    ) {
        if !self.update_pending && cache.state == self.state && cache.same_fields(fields) {
            out.extend_from_slice(&cache.block);
            return;
        }
        let state_before = self.state;
        let update_before = self.update_pending;
        let start = out.len();
        self.encode(fields.iter().copied(), out);
        if !update_before && self.state == state_before {
            cache.fill(self.state, fields, &out[start..]);
        } else {
            cache.state = 0;
        }
    }

    /// Emits the pending size update(s), if any (§6.3; at most two, §4.2).
    fn start_block(&mut self, out: &mut Vec<u8>) {
        if !self.update_pending {
            return;
        }
        self.update_pending = false;
        let target = self.target_size();
        if self.pending_min < target {
            self.resize(self.pending_min);
            encode_integer(self.pending_min, 5, 0x20, out);
        }
        self.resize(target);
        encode_integer(target, 5, 0x20, out);
    }

    fn resize(&mut self, max: usize) {
        self.max_size = max;
        self.evict_to(max);
        self.state = new_table_state();
    }

    fn evict_to(&mut self, limit: usize) {
        while self.size > limit {
            match self.entries.pop_back() {
                Some((n, v)) => self.size -= n.len() + v.len() + 32,
                None => break,
            }
        }
    }

    fn encode_field(&mut self, name: &[u8], value: &[u8], out: &mut Vec<u8>) {
        let mut name_index = 0;
        for (i, (n, v)) in STATIC_TABLE.iter().enumerate() {
            if *n == name {
                if *v == value {
                    // §6.1 Indexed header field (static).
                    encode_integer(i + 1, 7, 0x80, out);
                    return;
                }
                if name_index == 0 {
                    name_index = i + 1;
                }
            }
        }
        for (i, (n, v)) in self.entries.iter().enumerate() {
            if n.as_slice() == name {
                if v.as_slice() == value {
                    // §6.1 Indexed header field (dynamic: indices follow the static table).
                    encode_integer(STATIC_TABLE.len() + 1 + i, 7, 0x80, out);
                    return;
                }
                if name_index == 0 {
                    name_index = STATIC_TABLE.len() + 1 + i;
                }
            }
        }
        let entry_size = name.len() + value.len() + 32;
        if worth_indexing(name, entry_size, self.max_size) {
            // §6.2.1 Literal with incremental indexing; the peer inserts it as we do (§4.4).
            encode_integer(name_index, 6, 0x40, out);
            write_literal(name_index, name, value, out);
            self.evict_to(self.max_size - entry_size);
            self.size += entry_size;
            self.entries.push_front((name.to_vec(), value.to_vec()));
            self.state = new_table_state();
        } else {
            // §6.2.2 Literal without indexing.
            encode_integer(name_index, 4, 0x00, out);
            write_literal(name_index, name, value, out);
        }
    }
}

/// The name (when not indexed) and value of a literal representation, raw (no Huffman).
fn write_literal(name_index: usize, name: &[u8], value: &[u8], out: &mut Vec<u8>) {
    if name_index == 0 {
        encode_integer(name.len(), 7, 0x00, out);
        out.extend_from_slice(name);
    }
    encode_integer(value.len(), 7, 0x00, out);
    out.extend_from_slice(value);
}

/// Whether a field goes into the table: it must fit in an eighth of it (so a few large values
/// cannot flush the small repeated ones), and its name must not be one whose values change
/// from message to message (indexing those would only evict useful entries) or that carries
/// credentials (kept out of the table, as RFC 7541 §7.1 advises).
fn worth_indexing(name: &[u8], entry_size: usize, max_size: usize) -> bool {
    if entry_size > max_size / 8 {
        return false;
    }
    !matches!(
        name,
        b"grpc-timeout"
            | b"grpc-message"
            | b"content-length"
            | b"date"
            | b"authorization"
            | b"proxy-authorization"
            | b"cookie"
            | b"set-cookie"
            | b"token"
    ) && !name.ends_with(b"-bin")
}

/// The last encoding of one header list, reusable while the encoder's table is unchanged (see
/// [`Encoder::encode_cached`]). One per header list a connection sends often, e.g. the gRPC
/// response headers and the OK trailers.
#[derive(Debug, Default, Clone)]
pub struct BlockCache {
    /// The table state the block was encoded in (0: empty cache).
    state: u64,
    /// The fields it encodes: `name_len, value_len` (u32 LE each), name, value, repeated.
    fields: Vec<u8>,
    /// The encoded block.
    block: Vec<u8>,
}

impl BlockCache {
    /// An empty cache.
    pub fn new() -> Self {
        BlockCache::default()
    }

    fn same_fields(&self, fields: &[(&[u8], &[u8])]) -> bool {
        let mut rest = self.fields.as_slice();
        for (name, value) in fields {
            let Some((head, tail)) = rest.split_first_chunk::<8>() else {
                return false;
            };
            let nlen = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
            let vlen = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
            if nlen != name.len() || vlen != value.len() || tail.len() < nlen + vlen {
                return false;
            }
            if &tail[..nlen] != *name || &tail[nlen..nlen + vlen] != *value {
                return false;
            }
            rest = &tail[nlen + vlen..];
        }
        rest.is_empty()
    }

    fn fill(&mut self, state: u64, fields: &[(&[u8], &[u8])], block: &[u8]) {
        self.state = state;
        self.fields.clear();
        for (name, value) in fields {
            self.fields
                .extend_from_slice(&(name.len() as u32).to_le_bytes());
            self.fields
                .extend_from_slice(&(value.len() as u32).to_le_bytes());
            self.fields.extend_from_slice(name);
            self.fields.extend_from_slice(value);
        }
        self.block.clear();
        self.block.extend_from_slice(block);
    }
}
