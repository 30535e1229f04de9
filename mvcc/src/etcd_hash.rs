//! etcd's HashKV, byte for byte.
//!
//! `etcdctl endpoint hashkv` compares members by a CRC-32C of their history. etcd computes it
//! over its *own* storage bytes (bbolt bucket `key`), so to give the same number for the same
//! history keel re-creates those bytes on the fly from its own records:
//!
//! * the **revision key** as etcd stores it: 8 bytes big-endian main, `'_'`, 8 bytes big-endian
//!   sub, plus a trailing `'t'` for a tombstone (17 or 18 bytes; keel's own key uses a `'p'`/`'t'`
//!   marker and no separator, see [`crate::revision`]);
//! * the **value**: the protobuf encoding of `mvccpb.KeyValue` (field 1 `key`, 2
//!   `create_revision`, 3 `mod_revision`, 4 `version`, 5 `value`, 6 `lease`; proto3, so zero
//!   and empty fields are left out). A tombstone's value holds only the key.
//!
//! Which revisions are hashed (etcd 3.4 `store.HashByRev`, 3.5 `kvHasher.WriteKeyValue`): the
//! hash starts with the bucket name `"key"`, then every stored revision with main revision <=
//! the hash revision, in revision order; those at or below the compaction revision only if they
//! are in the key index's *keep set at the hash revision* ([`crate::key_index::TreeIndex::keep`])
//! — unless that set is empty, in which case none is skipped (an etcd quirk kept on purpose).

use crate::crc32c::Crc32c;
use crate::revision::Revision;
use crate::types::KeyValue;
use std::collections::HashSet;

/// Name of the history bucket in etcd's bbolt file, the first bytes hashed.
const KEY_BUCKET_NAME: &[u8] = b"key";

/// Length of etcd's revision key for a put (a tombstone has one more byte).
pub const ETCD_REV_LEN: usize = 17;

/// etcd's storage key for a revision: `main(8, BE) '_' sub(8, BE)` and `'t'` for a tombstone.
/// Returns the buffer and how many of its bytes are used (17 or 18).
pub fn etcd_revision_key(rev: Revision, tombstone: bool) -> ([u8; ETCD_REV_LEN + 1], usize) {
    let mut out = [0u8; ETCD_REV_LEN + 1];
    out[..8].copy_from_slice(&rev.main.to_be_bytes());
    out[8] = b'_';
    out[9..17].copy_from_slice(&rev.sub.to_be_bytes());
    if tombstone {
        out[17] = b't';
        (out, ETCD_REV_LEN + 1)
    } else {
        (out, ETCD_REV_LEN)
    }
}

/// Appends `v` as a protobuf base-128 varint (least significant group first).
fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Protobuf wire types used by `mvccpb.KeyValue`.
const WIRE_VARINT: u64 = 0;
const WIRE_LEN: u64 = 2;

/// Appends an `int64` field unless it is zero (proto3). Negative values are encoded as their
/// 64-bit two's complement, i.e. ten bytes, as protobuf's `int64` requires.
fn put_int64_field(out: &mut Vec<u8>, field: u64, v: i64) {
    if v != 0 {
        put_varint(out, field << 3 | WIRE_VARINT);
        put_varint(out, v as u64);
    }
}

/// Appends a `bytes` field unless it is empty (proto3).
fn put_bytes_field(out: &mut Vec<u8>, field: u64, v: &[u8]) {
    if !v.is_empty() {
        put_varint(out, field << 3 | WIRE_LEN);
        put_varint(out, v.len() as u64);
        out.extend_from_slice(v);
    }
}

/// Appends the protobuf encoding of `mvccpb.KeyValue` as etcd stores it for this history entry:
/// all six fields for a put, only the key for a tombstone (etcd writes `KeyValue{Key: key}`).
pub fn encode_etcd_kv(kv: &KeyValue, tombstone: bool, out: &mut Vec<u8>) {
    put_bytes_field(out, 1, &kv.key);
    if tombstone {
        return;
    }
    put_int64_field(out, 2, kv.create_revision);
    put_int64_field(out, 3, kv.mod_revision);
    put_int64_field(out, 4, kv.version);
    put_bytes_field(out, 5, &kv.value);
    put_int64_field(out, 6, kv.lease);
}

/// Feeds history entries, in revision order, into etcd's HashKV checksum.
#[derive(Debug)]
pub struct KvHasher {
    crc: Crc32c,
    compact_revision: i64,
    revision: i64,
    keep: HashSet<Revision>,
    scratch: Vec<u8>,
}

impl KvHasher {
    /// A hasher for the hash at `revision` of a store compacted at `compact_revision`, with
    /// `keep` = the key index's keep set at `revision`.
    pub fn new(compact_revision: i64, revision: i64, keep: HashSet<Revision>) -> KvHasher {
        let mut crc = Crc32c::new();
        crc.update(KEY_BUCKET_NAME);
        KvHasher {
            crc,
            compact_revision,
            revision,
            keep,
            scratch: Vec::new(),
        }
    }

    /// True if etcd would hash the entry at `rev`.
    pub fn includes(&self, rev: Revision) -> bool {
        if rev.main > self.revision {
            return false;
        }
        // At or below the compaction point only what the index keeps (etcd: "skip revisions
        // that are scheduled for deletion due to compacting; don't skip if there isn't one").
        rev.main > self.compact_revision || self.keep.is_empty() || self.keep.contains(&rev)
    }

    /// Hashes one history entry if etcd would (see [`KvHasher::includes`]).
    pub fn write(&mut self, rev: Revision, tombstone: bool, kv: &KeyValue) {
        if !self.includes(rev) {
            return;
        }
        let (key, len) = etcd_revision_key(rev, tombstone);
        self.crc.update(&key[..len]);
        self.scratch.clear();
        encode_etcd_kv(kv, tombstone, &mut self.scratch);
        self.crc.update(&self.scratch);
    }

    /// The checksum of everything written so far.
    pub fn finish(&self) -> u32 {
        self.crc.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn kv(key: &[u8], value: &[u8], c: i64, m: i64, v: i64, lease: i64) -> KeyValue {
        KeyValue {
            key: key.to_vec(),
            create_revision: c,
            mod_revision: m,
            version: v,
            value: value.to_vec(),
            lease,
        }
    }

    #[test]
    fn revision_keys_match_etcd_layout() {
        let (k, n) = etcd_revision_key(Revision::new(0x0102, 3), false);
        assert_eq!(&k[..n], b"\0\0\0\0\0\0\x01\x02_\0\0\0\0\0\0\0\x03");
        let (k, n) = etcd_revision_key(Revision::new(5, 0), true);
        assert_eq!(&k[..n], b"\0\0\0\0\0\0\0\x05_\0\0\0\0\0\0\0\0t");
    }

    #[test]
    fn key_value_protobuf_bytes() {
        // KeyValue{key "foo", create 2, mod 4, version 2, value "baz"} as gogo/protobuf writes it.
        let mut out = Vec::new();
        encode_etcd_kv(&kv(b"foo", b"baz", 2, 4, 2, 0), false, &mut out);
        assert_eq!(
            out,
            b"\x0a\x03foo\x10\x02\x18\x04\x20\x02\x2a\x03baz".to_vec()
        );
        // Empty value and zero fields are omitted; 300 takes two varint bytes; a lease too.
        out.clear();
        encode_etcd_kv(&kv(b"b", b"", 300, 300, 1, 1), false, &mut out);
        assert_eq!(
            out,
            b"\x0a\x01b\x10\xac\x02\x18\xac\x02\x20\x01\x30\x01".to_vec()
        );
        // A tombstone carries only the key, whatever else keel recorded.
        out.clear();
        encode_etcd_kv(&kv(b"foo2", b"", 0, 5, 0, 0), true, &mut out);
        assert_eq!(out, b"\x0a\x04foo2".to_vec());
    }

    #[test]
    fn negative_int64_is_ten_bytes() {
        let mut out = Vec::new();
        put_int64_field(&mut out, 6, -1);
        assert_eq!(
            out,
            b"\x30\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01".to_vec()
        );
    }

    #[test]
    fn long_key_length_prefix() {
        let key = vec![b'k'; 200];
        let mut out = Vec::new();
        encode_etcd_kv(&kv(&key, b"", 0, 0, 0, 0), true, &mut out);
        assert_eq!(&out[..3], b"\x0a\xc8\x01");
        assert_eq!(out.len(), 3 + 200);
    }

    #[test]
    fn fresh_store_hash_is_etcds() {
        // etcd 3.4.23 `etcdctl endpoint hashkv` on a fresh member: CRC-32C of "key" only.
        assert_eq!(KvHasher::new(-1, 1, HashSet::new()).finish(), 1084519789);
    }

    /// Decodes a varint, the inverse of `put_varint`.
    fn read_varint(b: &[u8]) -> (u64, usize) {
        let mut v = 0u64;
        for (i, byte) in b.iter().enumerate() {
            v |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return (v, i + 1);
            }
        }
        panic!("unterminated varint");
    }

    proptest! {
        #[test]
        fn varints_roundtrip(v in any::<u64>()) {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            prop_assert!(out.len() <= 10);
            prop_assert_eq!(read_varint(&out), (v, out.len()));
        }

        #[test]
        fn encoding_decodes_field_by_field(
            key in proptest::collection::vec(any::<u8>(), 1..300),
            value in proptest::collection::vec(any::<u8>(), 0..300),
            ints in proptest::array::uniform4(any::<i64>()),
        ) {
            let x = kv(&key, &value, ints[0], ints[1], ints[2], ints[3]);
            let mut out = Vec::new();
            encode_etcd_kv(&x, false, &mut out);
            // Walk the fields back: ascending field numbers, each present iff non-zero.
            let mut fields = Vec::new();
            let mut b = &out[..];
            while !b.is_empty() {
                let (tag, n) = read_varint(b);
                b = &b[n..];
                let (v, n) = read_varint(b);
                b = &b[n..];
                if tag & 7 == WIRE_LEN {
                    fields.push((tag >> 3, b[..v as usize].to_vec(), 0));
                    b = &b[v as usize..];
                } else {
                    prop_assert_eq!(tag & 7, WIRE_VARINT);
                    fields.push((tag >> 3, Vec::new(), v as i64));
                }
            }
            let mut expected = vec![(1, key.clone(), 0)];
            for (f, v) in [(2, ints[0]), (3, ints[1]), (4, ints[2])] {
                if v != 0 { expected.push((f, Vec::new(), v)); }
            }
            if !value.is_empty() { expected.push((5, value.clone(), 0)); }
            if ints[3] != 0 { expected.push((6, Vec::new(), ints[3])); }
            prop_assert_eq!(fields, expected);
        }
    }
}
