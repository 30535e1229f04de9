//! HPACK, the header compression of HTTP/2 (RFC 7541), written by hand.
//!
//! * [`Decoder`] is complete: prefix integers (§5.1), string literals with Huffman decoding (§5.2,
//!   Appendix B) including the padding and EOS checks, the static table (Appendix A), the dynamic
//!   table with size accounting and eviction (§4), and dynamic table size updates (§6.3) with the
//!   rule that they may only appear at the start of a header block and may not exceed the limit we
//!   advertised in `SETTINGS_HEADER_TABLE_SIZE`.
//! * [`Encoder`] emits indexed fields for exact matches in the static table (and in its dynamic
//!   table), otherwise literals with a name index when one exists; no Huffman. Built with
//!   [`Encoder::new`] it never inserts into the peer's table (every block stands alone); built
//!   with [`Encoder::with_table_size`] it mirrors the peer decoder's dynamic table, sends a
//!   repeated field once as "literal with incremental indexing" and then as one byte, and emits
//!   the dynamic table size updates the peer's SETTINGS_HEADER_TABLE_SIZE requires (§4.2, §6.3).
//!   [`BlockCache`] reuses the bytes of an identical block while the table is unchanged.
//!
//! Every malformed input is an [`HpackError`]; the decoder never panics (proptested).

#![warn(missing_docs)]

mod decoder;
mod encoder;
mod huffman;
mod huffman_table;
mod static_table;
mod table;

pub use decoder::Decoder;
pub use encoder::{BlockCache, Encoder, DEFAULT_TABLE_SIZE};
pub use huffman::{huffman_decode, huffman_encode};

use std::fmt;

/// One header field: a name and a value, both raw bytes.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct HeaderField {
    /// Field name (lower case in HTTP/2).
    pub name: Vec<u8>,
    /// Field value.
    pub value: Vec<u8>,
}

impl HeaderField {
    /// Builds a field from anything byte-like.
    pub fn new(name: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Self {
        HeaderField {
            name: name.into(),
            value: value.into(),
        }
    }

    /// The size the field occupies in a dynamic table: `len(name) + len(value) + 32` (§4.1).
    pub fn table_size(&self) -> usize {
        self.name.len() + self.value.len() + 32
    }
}

/// Why a header block could not be decoded. Each of these is a connection error of type
/// COMPRESSION_ERROR in HTTP/2 (RFC 9113 §4.3).
#[derive(Clone, PartialEq, Eq, Debug)]
#[allow(missing_docs)] // variant fields are named as in RFC 9113 / RFC 7541
pub enum HpackError {
    /// The block ended in the middle of a representation.
    Truncated,
    /// A prefix integer does not fit in 32 bits.
    IntegerOverflow,
    /// Index 0, or an index beyond the static plus dynamic table.
    InvalidIndex(usize),
    /// Huffman data contained the EOS symbol.
    HuffmanEos,
    /// Huffman padding longer than 7 bits or not all ones.
    HuffmanPadding,
    /// A dynamic table size update larger than the limit we advertised.
    TableSizeTooLarge { requested: usize, allowed: usize },
    /// A dynamic table size update after the first field representation of a block.
    TableSizeUpdateNotAtStart,
    /// The decoded header list exceeds the configured maximum list size.
    HeaderListTooLarge { limit: usize },
}

impl fmt::Display for HpackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HpackError::Truncated => write!(f, "hpack: header block truncated"),
            HpackError::IntegerOverflow => write!(f, "hpack: integer overflow"),
            HpackError::InvalidIndex(i) => write!(f, "hpack: invalid table index {i}"),
            HpackError::HuffmanEos => write!(f, "hpack: Huffman string contains EOS"),
            HpackError::HuffmanPadding => write!(f, "hpack: invalid Huffman padding"),
            HpackError::TableSizeTooLarge { requested, allowed } => write!(
                f,
                "hpack: table size update {requested} exceeds the advertised limit {allowed}"
            ),
            HpackError::TableSizeUpdateNotAtStart => {
                write!(f, "hpack: table size update after a header field")
            }
            HpackError::HeaderListTooLarge { limit } => {
                write!(f, "hpack: header list larger than {limit} bytes")
            }
        }
    }
}

impl std::error::Error for HpackError {}

/// Decodes a prefix integer (§5.1) whose first byte's low `prefix_bits` bits start the value.
/// Returns the value and the number of bytes consumed.
pub(crate) fn decode_integer(buf: &[u8], prefix_bits: u8) -> Result<(usize, usize), HpackError> {
    let first = *buf.first().ok_or(HpackError::Truncated)?;
    let max_prefix = (1usize << prefix_bits) - 1;
    let mut value = (first as usize) & max_prefix;
    if value < max_prefix {
        return Ok((value, 1));
    }
    let mut shift = 0u32;
    let mut pos = 1;
    loop {
        let b = *buf.get(pos).ok_or(HpackError::Truncated)?;
        pos += 1;
        if shift > 28 {
            return Err(HpackError::IntegerOverflow);
        }
        value = value
            .checked_add(((b & 0x7f) as usize) << shift)
            .ok_or(HpackError::IntegerOverflow)?;
        if value > u32::MAX as usize {
            return Err(HpackError::IntegerOverflow);
        }
        shift += 7;
        if b & 0x80 == 0 {
            return Ok((value, pos));
        }
    }
}

/// Encodes `value` as a prefix integer; `flags` are OR-ed into the first byte's high bits.
pub(crate) fn encode_integer(value: usize, prefix_bits: u8, flags: u8, out: &mut Vec<u8>) {
    let max_prefix = (1usize << prefix_bits) - 1;
    if value < max_prefix {
        out.push(flags | value as u8);
        return;
    }
    out.push(flags | max_prefix as u8);
    let mut rest = value - max_prefix;
    while rest >= 128 {
        out.push((rest % 128) as u8 | 0x80);
        rest /= 128;
    }
    out.push(rest as u8);
}

#[cfg(test)]
mod tests;
