//! The HPACK decoder (RFC 7541 §6).

use super::table::DynamicTable;
use super::{decode_integer, huffman_decode, HeaderField, HpackError};

/// Decodes header blocks of one connection, in order, keeping the dynamic table between them.
#[derive(Debug)]
pub struct Decoder {
    table: DynamicTable,
    /// The most the peer may set the table to: our advertised SETTINGS_HEADER_TABLE_SIZE.
    max_allowed_table_size: usize,
    /// Limit on the decoded list (sum of `name + value + 32`), RFC 9113 §6.5.2.
    max_header_list_size: usize,
    /// Scratch space for literal names and values.
    name_buf: Vec<u8>,
    value_buf: Vec<u8>,
}

impl Decoder {
    /// A decoder whose table may grow to `max_allowed_table_size` (4096 is HTTP/2's default).
    pub fn new(max_allowed_table_size: usize) -> Self {
        Decoder {
            table: DynamicTable::new(max_allowed_table_size),
            max_allowed_table_size,
            max_header_list_size: usize::MAX,
            name_buf: Vec::new(),
            value_buf: Vec::new(),
        }
    }

    /// Changes the most the peer may set the table to (our SETTINGS_HEADER_TABLE_SIZE, once the
    /// peer has acknowledged a new value). The current table is not touched: the peer's next
    /// size update shrinks it.
    pub fn set_max_allowed_table_size(&mut self, size: usize) {
        self.max_allowed_table_size = size;
    }

    /// The table's current maximum size (as last set by a size update).
    pub fn max_table_size(&self) -> usize {
        self.table.max_size()
    }

    /// Limits the decoded header list size; larger lists are [`HpackError::HeaderListTooLarge`].
    pub fn set_max_header_list_size(&mut self, limit: usize) {
        self.max_header_list_size = limit;
    }

    /// The dynamic table's current size (for tests and diagnostics).
    pub fn table_size(&self) -> usize {
        self.table.size()
    }

    /// Number of entries in the dynamic table.
    pub fn table_len(&self) -> usize {
        self.table.len()
    }

    /// Decodes one complete header block, appending the fields to `out`.
    ///
    /// After an error other than [`HpackError::HeaderListTooLarge`] the decoder's state is
    /// undefined: the connection must be closed with COMPRESSION_ERROR, as HTTP/2 requires.
    /// `HeaderListTooLarge` leaves the table consistent (the whole block was processed), so only
    /// the one stream needs to be rejected.
    pub fn decode(&mut self, block: &[u8], out: &mut Vec<HeaderField>) -> Result<(), HpackError> {
        self.decode_with(block, &mut |name: &[u8], value: &[u8]| {
            out.push(HeaderField {
                name: name.to_vec(),
                value: value.to_vec(),
            })
        })
    }

    /// Decodes one complete header block, handing each field to `sink` as borrowed bytes (no
    /// allocation per field). Same errors and state rules as [`Decoder::decode`]; past the header
    /// list limit, fields are no longer handed over.
    pub fn decode_with(
        &mut self,
        block: &[u8],
        sink: &mut impl FnMut(&[u8], &[u8]),
    ) -> Result<(), HpackError> {
        let mut pos = 0;
        let mut seen_field = false;
        let mut list_size = 0usize;
        // Past the list limit we keep decoding (so the dynamic table stays in sync with the
        // peer's encoder) but stop collecting fields, and report the error at the end.
        let mut over_limit = false;
        // Literal names and values are decoded into these (reused across fields and blocks).
        let mut name_buf = std::mem::take(&mut self.name_buf);
        let mut value_buf = std::mem::take(&mut self.value_buf);
        let result = (|| -> Result<(), HpackError> {
            while pos < block.len() {
                let b = block[pos];
                let rest = &block[pos..];
                if b & 0x80 != 0 {
                    // §6.1 Indexed header field.
                    let (index, n) = decode_integer(rest, 7)?;
                    pos += n;
                    let (name, value) = self.table.get(index)?;
                    list_size += name.len() + value.len() + 32;
                    over_limit |= list_size > self.max_header_list_size;
                    if !over_limit {
                        sink(name, value);
                    }
                    seen_field = true;
                } else if b & 0xe0 == 0x20 {
                    // §6.3 Dynamic table size update.
                    if seen_field {
                        return Err(HpackError::TableSizeUpdateNotAtStart);
                    }
                    let (size, n) = decode_integer(rest, 5)?;
                    pos += n;
                    if size > self.max_allowed_table_size {
                        return Err(HpackError::TableSizeTooLarge {
                            requested: size,
                            allowed: self.max_allowed_table_size,
                        });
                    }
                    self.table.set_max_size(size);
                } else {
                    // §6.2 Literal: with incremental indexing (01xxxxxx, 6-bit index),
                    // without indexing (0000xxxx) or never indexed (0001xxxx), 4-bit index.
                    let (index_bits, add_to_table) = if b & 0xc0 == 0x40 {
                        (6, true)
                    } else {
                        (4, false)
                    };
                    let (index, n) = decode_integer(rest, index_bits)?;
                    pos += n;
                    name_buf.clear();
                    if index == 0 {
                        pos += decode_string(&block[pos..], &mut name_buf)?;
                    } else {
                        name_buf.extend_from_slice(self.table.get(index)?.0);
                    }
                    value_buf.clear();
                    pos += decode_string(&block[pos..], &mut value_buf)?;
                    list_size += name_buf.len() + value_buf.len() + 32;
                    over_limit |= list_size > self.max_header_list_size;
                    if !over_limit {
                        sink(&name_buf, &value_buf);
                    }
                    if add_to_table {
                        self.table.insert(&name_buf, &value_buf);
                    }
                    seen_field = true;
                }
            }
            Ok(())
        })();
        self.name_buf = name_buf;
        self.value_buf = value_buf;
        result?;
        if over_limit {
            return Err(HpackError::HeaderListTooLarge {
                limit: self.max_header_list_size,
            });
        }
        Ok(())
    }
}

/// Decodes a string literal (§5.2), appending it to `out`; returns the bytes consumed.
fn decode_string(buf: &[u8], out: &mut Vec<u8>) -> Result<usize, HpackError> {
    let first = *buf.first().ok_or(HpackError::Truncated)?;
    let huffman = first & 0x80 != 0;
    let (len, n) = decode_integer(buf, 7)?;
    let end = n.checked_add(len).ok_or(HpackError::Truncated)?;
    let raw = buf.get(n..end).ok_or(HpackError::Truncated)?;
    if huffman {
        out.reserve(len * 8 / 5);
        huffman_decode(raw, out)?;
    } else {
        out.extend_from_slice(raw);
    }
    Ok(end)
}
