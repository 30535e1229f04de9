//! Framing: how records become bytes in a segment, and how a segment's bytes become records.
//!
//! ```text
//!  0       4         8       12     13      14        16              16+len   (8-aligned)
//!  +-------+---------+-------+------+-------+---------+------------------+---------+
//!  | crc   | prevcrc | len   | type | flags | 0 0     | payload          | 0 pad   |
//!  +-------+---------+-------+------+-------+---------+------------------+---------+
//! ```
//!
//! * `crc = CRC32(seed = prevcrc, bytes 8 .. 16+len)`: the checksum covers length, type, flags
//!   and payload, and is *seeded with the previous record's CRC*. That is the chain: `prevcrc`
//!   must equal the `crc` of the record before it (or the running CRC carried into a new
//!   segment), so a stale record from reused space or an older segment never fits.
//! * Because each record also stores its own seed, a record can be checked in isolation. The
//!   recovery rule uses that to look for intact records *after* a damaged one.
//! * `flags` bit 0 marks the first record of a write group (one `write` + one `fdatasync`);
//!   bit 1 marks the last record of a segment's header group (see [`crate::recovery`]).
//! * Frames are padded with zeros to a multiple of 8 bytes, so headers never straddle a 512-byte
//!   sector, and an all-zero header (type 0 does not exist) means "end of data": preallocated
//!   space is zero-filled.

use crate::record::{Entry, PayloadError, Record, TYPE_ENTRY};

/// Size of the frame header in bytes.
pub const HEADER_LEN: usize = 16;
/// Frames start at multiples of this.
pub const ALIGN: usize = 8;
/// Largest payload a record may carry (a guard against absurd lengths in damaged headers).
pub const MAX_PAYLOAD: usize = 64 << 20;
/// `flags` bit: first record of a write group.
pub const FLAG_GROUP_START: u8 = 1;
/// `flags` bit: last record of the header group a segment starts with.
pub const FLAG_HEADER_END: u8 = 2;

/// Total frame size of a record with a payload of `payload_len` bytes.
pub fn frame_len(payload_len: usize) -> usize {
    (HEADER_LEN + payload_len).div_ceil(ALIGN) * ALIGN
}

fn chained_crc(seed: u32, covered: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new_with_initial(seed);
    h.update(covered);
    h.finalize()
}

/// Turns records into frames, carrying the running CRC from one record to the next.
#[derive(Debug, Clone)]
pub struct Encoder {
    crc: u32,
}

impl Encoder {
    /// Start a chain whose next record continues `prev_crc`.
    pub fn new(prev_crc: u32) -> Encoder {
        Encoder { crc: prev_crc }
    }

    /// The CRC of the last encoded record (the seed of the next one).
    pub fn crc(&self) -> u32 {
        self.crc
    }

    /// Append the frame of `record` to `out`, with `flags` ([`FLAG_GROUP_START`],
    /// [`FLAG_HEADER_END`]).
    pub fn encode(&mut self, record: &Record, flags: u8, out: &mut Vec<u8>) {
        self.frame(record.type_byte(), flags, record.payload_len(), out, |o| {
            record.encode_payload(o)
        });
    }

    /// Same as `encode(&Record::Entry(entry.clone()), ..)` without copying the entry first.
    pub fn encode_entry(&mut self, entry: &Entry, flags: u8, out: &mut Vec<u8>) {
        self.frame(TYPE_ENTRY, flags, 16 + entry.data.len(), out, |o| {
            o.extend_from_slice(&entry.index.to_le_bytes());
            o.extend_from_slice(&entry.term.to_le_bytes());
            o.extend_from_slice(&entry.data);
        });
    }

    fn frame(
        &mut self,
        ty: u8,
        flags: u8,
        payload_len: usize,
        out: &mut Vec<u8>,
        payload: impl FnOnce(&mut Vec<u8>),
    ) {
        let start = out.len();
        assert!(
            payload_len <= MAX_PAYLOAD,
            "payload length checked at submit"
        );
        out.reserve(frame_len(payload_len));
        out.extend_from_slice(&[0u8; 8]); // crc + prevcrc, filled below
        out.extend_from_slice(&(payload_len as u32).to_le_bytes());
        out.push(ty);
        out.push(flags);
        out.extend_from_slice(&[0, 0]);
        payload(out);
        assert_eq!(
            out.len() - start,
            HEADER_LEN + payload_len,
            "payload length"
        );
        out.resize(start + frame_len(payload_len), 0);
        let crc = chained_crc(self.crc, &out[start + 8..start + HEADER_LEN + payload_len]);
        out[start..start + 4].copy_from_slice(&crc.to_le_bytes());
        out[start + 4..start + 8].copy_from_slice(&self.crc.to_le_bytes());
        self.crc = crc;
    }
}

/// One record found by [`scan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedRecord {
    /// Offset of the frame in the segment.
    pub offset: u64,
    /// Size of the frame (header + payload + padding).
    pub frame_len: u64,
    /// First record of a write group?
    pub group_start: bool,
    /// Last record of the segment's header group?
    pub header_end: bool,
    /// The record's CRC.
    pub crc: u32,
    /// The record.
    pub record: Record,
}

/// How a segment's readable records ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tail {
    /// The records end exactly at the end of the data; everything after is zeros.
    Clean,
    /// Non-zero bytes that are not a valid continuation of the chain start at `offset`.
    Damaged {
        /// Offset of the first byte that is not a valid record.
        offset: u64,
        /// Why the bytes at `offset` are not a valid record.
        reason: String,
        /// One past the last non-zero byte of the segment.
        nonzero_end: u64,
        /// Offset of an intact record that starts a write group, found after `offset`. If there
        /// is one, the damage was already durable when a later group was written: corruption.
        later_group_start: Option<u64>,
    },
    /// A frame with a correct CRC whose payload is malformed: never a torn write.
    BadPayload {
        /// Offset of the frame.
        offset: u64,
        /// What was wrong with it.
        reason: String,
    },
}

/// The result of reading one segment.
#[derive(Debug, Clone)]
pub struct Scan {
    /// The valid records, in order.
    pub records: Vec<DecodedRecord>,
    /// Offset just after the last valid record.
    pub valid_end: u64,
    /// CRC of the last valid record (or the expected seed if there is none).
    pub end_crc: u32,
    /// How the valid records ended.
    pub tail: Tail,
}

struct Frame {
    crc: u32,
    prev_crc: u32,
    ty: u8,
    flags: u8,
    payload: std::ops::Range<usize>,
    len: usize,
}

fn read_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Check the frame at `pos` on its own (length, padding, CRC against its stored seed).
fn check_frame(bytes: &[u8], pos: usize) -> Result<Frame, String> {
    let rest = bytes.len() - pos;
    if rest < HEADER_LEN {
        return Err(format!("partial header ({rest} bytes)"));
    }
    let h = &bytes[pos..pos + HEADER_LEN];
    let payload_len = read_u32(h, 8) as usize;
    if payload_len > MAX_PAYLOAD {
        return Err(format!("record length {payload_len} exceeds the limit"));
    }
    let len = frame_len(payload_len);
    if len > rest {
        return Err(format!(
            "record of {len} bytes runs past the end of the file ({rest} bytes left)"
        ));
    }
    let payload = pos + HEADER_LEN..pos + HEADER_LEN + payload_len;
    if bytes[payload.end..pos + len].iter().any(|&b| b != 0) {
        return Err("non-zero padding".to_string());
    }
    let crc = read_u32(h, 0);
    let prev_crc = read_u32(h, 4);
    let computed = chained_crc(prev_crc, &bytes[pos + 8..payload.end]);
    if computed != crc {
        return Err(format!(
            "CRC mismatch (stored {crc:#010x}, computed {computed:#010x})"
        ));
    }
    Ok(Frame {
        crc,
        prev_crc,
        ty: h[12],
        flags: h[13],
        payload,
        len,
    })
}

/// Find the first intact frame at or after `from` (8-aligned) that starts a write group.
fn find_group_start(bytes: &[u8], from: usize) -> Option<u64> {
    let mut p = from.div_ceil(ALIGN) * ALIGN;
    while p + HEADER_LEN <= bytes.len() {
        let h = &bytes[p..p + HEADER_LEN];
        if h[13] & FLAG_GROUP_START != 0 && h[12] != 0 && check_frame(bytes, p).is_ok() {
            return Some(p as u64);
        }
        p += ALIGN;
    }
    None
}

/// Read the records of one segment.
///
/// `seed` is the CRC the first record must continue (`None`: accept whatever it stores, for the
/// first segment that is left). Reading stops at the first position that is not a valid
/// continuation of the chain; [`Tail`] says what was found there. Never panics, whatever `bytes`
/// hold.
pub fn scan(bytes: &[u8], seed: Option<u32>) -> Scan {
    let mut records = Vec::new();
    let mut pos = 0usize;
    let mut expected = seed;
    let mut end_crc = seed.unwrap_or(0);
    let tail = loop {
        if pos == bytes.len() {
            break Tail::Clean;
        }
        let header_end = (pos + HEADER_LEN).min(bytes.len());
        let zero_header = bytes[pos..header_end].iter().all(|&b| b == 0);
        let failure = if zero_header {
            "end-of-data marker (zero header)".to_string()
        } else {
            match check_frame(bytes, pos) {
                Err(reason) => reason,
                Ok(f) if expected.is_some_and(|e| e != f.prev_crc) => format!(
                    "CRC chain broken: record continues {:#010x}, previous record ended with {:#010x}",
                    f.prev_crc,
                    expected.unwrap_or(0)
                ),
                Ok(f) => match Record::decode_payload(f.ty, &bytes[f.payload.clone()]) {
                    Err(PayloadError(reason)) => {
                        break Tail::BadPayload {
                            offset: pos as u64,
                            reason,
                        }
                    }
                    Ok(record) => {
                        records.push(DecodedRecord {
                            offset: pos as u64,
                            frame_len: f.len as u64,
                            group_start: f.flags & FLAG_GROUP_START != 0,
                            header_end: f.flags & FLAG_HEADER_END != 0,
                            crc: f.crc,
                            record,
                        });
                        expected = Some(f.crc);
                        end_crc = f.crc;
                        pos += f.len;
                        continue;
                    }
                },
            }
        };
        let nonzero_end = match bytes[pos..].iter().rposition(|&b| b != 0) {
            None => break Tail::Clean,
            Some(i) => (pos + i + 1) as u64,
        };
        break Tail::Damaged {
            offset: pos as u64,
            reason: failure,
            nonzero_end,
            later_group_start: find_group_start(bytes, pos + 1),
        };
    };
    Scan {
        records,
        valid_end: pos as u64,
        end_crc,
        tail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::HardState;
    use proptest::prelude::*;

    fn entry(i: u64, n: usize) -> Record {
        Record::Entry(Entry {
            index: i,
            term: 1,
            data: vec![0xAB; n],
        })
    }

    #[test]
    fn roundtrip_and_alignment() {
        let mut enc = Encoder::new(0x1234);
        let mut buf = Vec::new();
        for n in 0..20 {
            enc.encode(
                &entry(n as u64 + 1, n),
                if n % 5 == 0 { FLAG_GROUP_START } else { 0 },
                &mut buf,
            );
            assert_eq!(buf.len() % ALIGN, 0);
        }
        let s = scan(&buf, Some(0x1234));
        assert_eq!(s.tail, Tail::Clean);
        assert_eq!(s.records.len(), 20);
        assert_eq!(s.end_crc, enc.crc());
        assert_eq!(s.valid_end, buf.len() as u64);
        for (n, r) in s.records.iter().enumerate() {
            assert_eq!(r.record, entry(n as u64 + 1, n));
            assert_eq!(r.group_start, n % 5 == 0);
        }
    }

    #[test]
    fn encode_entry_equals_encode_of_the_record() {
        let e = Entry {
            index: 9,
            term: 2,
            data: b"abcdefghijk".to_vec(),
        };
        let (mut a, mut b) = (Encoder::new(5), Encoder::new(5));
        let (mut ba, mut bb) = (Vec::new(), Vec::new());
        a.encode(&Record::Entry(e.clone()), FLAG_GROUP_START, &mut ba);
        b.encode_entry(&e, FLAG_GROUP_START, &mut bb);
        assert_eq!(ba, bb);
        assert_eq!(a.crc(), b.crc());
    }

    #[test]
    fn wrong_seed_is_a_chain_break() {
        let mut enc = Encoder::new(7);
        let mut buf = Vec::new();
        enc.encode(
            &Record::HardState(HardState::default()),
            FLAG_GROUP_START,
            &mut buf,
        );
        let s = scan(&buf, Some(8));
        assert!(s.records.is_empty());
        match s.tail {
            Tail::Damaged { offset, reason, .. } => {
                assert_eq!(offset, 0);
                assert!(reason.contains("chain"), "{reason}");
            }
            other => panic!("expected damage, got {other:?}"),
        }
    }

    #[test]
    fn zero_tail_is_clean_and_garbage_tail_is_damaged() {
        let mut enc = Encoder::new(0);
        let mut buf = Vec::new();
        enc.encode(&entry(1, 10), FLAG_GROUP_START, &mut buf);
        let end = buf.len();
        buf.resize(end + 100, 0);
        let s = scan(&buf, None);
        assert_eq!((s.records.len(), s.tail.clone()), (1, Tail::Clean));
        buf[end + 50] = 1;
        match scan(&buf, None).tail {
            Tail::Damaged {
                offset,
                nonzero_end,
                later_group_start,
                ..
            } => {
                assert_eq!(offset, end as u64);
                assert_eq!(nonzero_end, end as u64 + 51);
                assert_eq!(later_group_start, None);
            }
            other => panic!("expected damage, got {other:?}"),
        }
    }

    #[test]
    fn damage_followed_by_a_later_group_is_reported() {
        let mut enc = Encoder::new(0);
        let mut buf = Vec::new();
        enc.encode(&entry(1, 10), FLAG_GROUP_START, &mut buf);
        let second = buf.len();
        enc.encode(&entry(2, 10), FLAG_GROUP_START, &mut buf);
        buf[20] ^= 0x40;
        match scan(&buf, None).tail {
            Tail::Damaged {
                offset,
                later_group_start,
                ..
            } => {
                assert_eq!(offset, 0);
                assert_eq!(later_group_start, Some(second as u64));
            }
            other => panic!("expected damage, got {other:?}"),
        }
    }

    #[test]
    fn valid_crc_with_bad_payload_is_bad_payload() {
        // Hand-build a frame with an unknown type but a correct CRC.
        let mut buf = vec![0u8; 16];
        buf[12] = 77;
        let crc = chained_crc(0, &buf[8..16]);
        buf[0..4].copy_from_slice(&crc.to_le_bytes());
        assert!(matches!(
            scan(&buf, None).tail,
            Tail::BadPayload { offset: 0, .. }
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        /// Random byte soups never panic the decoder, and whatever it accepts re-encodes to the
        /// same bytes.
        #[test]
        fn byte_soup_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600),
                                  seed in proptest::option::of(any::<u32>())) {
            let s = scan(&bytes, seed);
            prop_assert!(s.valid_end as usize <= bytes.len());
            let mut enc = Encoder::new(s.records.first().map(|r| {
                u32::from_le_bytes(bytes[r.offset as usize + 4..r.offset as usize + 8].try_into().unwrap())
            }).unwrap_or(0));
            let mut re = Vec::new();
            for r in &s.records {
                let flags = bytes[r.offset as usize + 13];
                enc.encode(&r.record, flags, &mut re);
            }
            prop_assert_eq!(&re[..], &bytes[..s.valid_end as usize]);
        }

        /// Valid frames with random bytes spliced in: still no panic, and the valid prefix before
        /// the splice point is always recovered.
        #[test]
        fn spliced_garbage(n in 1usize..8, cut in 0usize..400, junk in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut enc = Encoder::new(0);
            let mut buf = Vec::new();
            for i in 0..n { enc.encode(&entry(i as u64 + 1, i * 7), FLAG_GROUP_START, &mut buf); }
            let cut = cut.min(buf.len());
            let mut bad = buf[..cut].to_vec();
            bad.extend_from_slice(&junk);
            let s = scan(&bad, Some(0));
            let intact = scan(&buf, Some(0)).records.into_iter()
                .filter(|r| r.offset + r.frame_len <= cut as u64).count();
            prop_assert!(s.records.len() >= intact);
        }
    }
}
