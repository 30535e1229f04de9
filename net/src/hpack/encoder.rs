//! A simple, always-valid HPACK encoder: no dynamic table, no Huffman.

use super::static_table::STATIC_TABLE;
use super::{encode_integer, HeaderField};

/// Encodes header blocks without ever inserting into the peer's dynamic table.
///
/// Because nothing is indexed, the only table obligation is §4.2: after the peer lowers
/// SETTINGS_HEADER_TABLE_SIZE, the next block must start with a size update. We always announce
/// size 0 at the start of the first block and after every HEADER_TABLE_SIZE setting.
#[derive(Debug, Default)]
pub struct Encoder {
    size_update_pending: bool,
    started: bool,
}

impl Encoder {
    /// A new encoder.
    pub fn new() -> Self {
        Encoder {
            size_update_pending: true,
            started: false,
        }
    }

    /// Call when the peer's SETTINGS_HEADER_TABLE_SIZE changes.
    pub fn peer_table_size_changed(&mut self) {
        self.size_update_pending = true;
    }

    /// Appends the encoding of `fields` to `out`.
    pub fn encode<'a>(
        &mut self,
        fields: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
        out: &mut Vec<u8>,
    ) {
        if self.size_update_pending || !self.started {
            encode_integer(0, 5, 0x20, out);
            self.size_update_pending = false;
            self.started = true;
        }
        for (name, value) in fields {
            encode_field(name, value, out);
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
}

fn encode_field(name: &[u8], value: &[u8], out: &mut Vec<u8>) {
    let mut name_index = 0;
    for (i, (n, v)) in STATIC_TABLE.iter().enumerate() {
        if *n == name {
            if *v == value {
                // §6.1 Indexed header field.
                encode_integer(i + 1, 7, 0x80, out);
                return;
            }
            if name_index == 0 {
                name_index = i + 1;
            }
        }
    }
    // §6.2.2 Literal header field without indexing.
    encode_integer(name_index, 4, 0x00, out);
    if name_index == 0 {
        encode_integer(name.len(), 7, 0x00, out);
        out.extend_from_slice(name);
    }
    encode_integer(value.len(), 7, 0x00, out);
    out.extend_from_slice(value);
}
