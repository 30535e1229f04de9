//! [`CommitBuffer`]: the writes of one future backend commit, and the values they put, readable
//! until the backend has them.
//!
//! Deferred applies (`Store::apply_batch_deferred`) queue their writes into one buffer until
//! `Store::commit_pending` hands it to the backend; meanwhile reads must still see the new
//! values. The buffer keeps each history record **once**: encoded in its [`WriteBatch`] (what
//! the backend will copy into its pages), with a sorted list of (put revision, where its record
//! is) on the side. A read of a revision that is not committed yet decodes the record from
//! there (it would otherwise decode it from the backend: same bytes, same cost).
//!
//! The store has at most two buffers with contents: the one filling up and the one a commit in
//! flight is writing (shared with the commit thread, immutable). When a commit is done its
//! buffer is dropped as a whole (no per-revision removal) or, cleared, kept for reuse: in
//! steady state a put allocates nothing here.
//!
//! A compaction does not remove the doomed revisions from the buffers: the key index no longer
//! names them, so nothing looks them up, and they leave with their buffer.

use crate::backend::{Bucket, WriteBatch};
use crate::codec::{encode_kv_into, encoded_kv_len, KvRef};
use crate::revision::Revision;
use std::ops::Range;

/// A buffer whose capacity is above these after a commit is dropped instead of reused (so a
/// burst of big values does not keep its memory forever).
pub(crate) const MAX_REUSED_BYTES: usize = 16 << 20;
pub(crate) const MAX_REUSED_OPS: usize = 256 << 10;

/// Writes queued for one backend commit and the values they put (see the module doc).
#[derive(Debug, Default)]
pub(crate) struct CommitBuffer {
    /// The ops, in apply order.
    pub batch: WriteBatch,
    /// The put revisions (not tombstones) with the range of their encoded record in `batch`,
    /// in the order applied.
    values: Vec<(Revision, Range<usize>)>,
    /// Some revision was pushed below an earlier one (revisions only grow, so never in
    /// practice): lookups then scan instead of bisecting.
    unsorted: bool,
}

impl CommitBuffer {
    /// Queues the history write of a put at `rev` and keeps its value readable.
    pub fn put_kv(&mut self, rev: Revision, kv: KvRef<'_>) {
        let key = rev.to_key(false);
        let len = encoded_kv_len(kv.key.len(), kv.value.len());
        let record = self
            .batch
            .put_with(Bucket::Key, &key, len, |out| encode_kv_into(kv, out));
        if self.values.last().is_some_and(|(last, _)| *last >= rev) {
            self.unsorted = true;
        }
        self.values.push((rev, record));
    }

    /// Queues the history write of a delete (tombstone) of `key` at `rev`.
    pub fn put_tombstone(&mut self, rev: Revision, key: &[u8]) {
        let tombstone = KvRef {
            key,
            value: &[],
            create_revision: 0,
            mod_revision: rev.main,
            version: 0,
            lease: 0,
        };
        self.batch.put_with(
            Bucket::Key,
            &rev.to_key(true),
            encoded_kv_len(key.len(), 0),
            |out| encode_kv_into(tombstone, out),
        );
    }

    /// The encoded record of the put at `rev`, if this buffer holds it.
    pub fn get(&self, rev: Revision) -> Option<&[u8]> {
        let found = if self.unsorted {
            self.values.iter().rposition(|(r, _)| *r == rev)
        } else {
            self.values.binary_search_by(|(r, _)| r.cmp(&rev)).ok()
        };
        found.map(|i| self.batch.bytes(self.values[i].1.clone()))
    }

    /// Number of put revisions readable from the buffer.
    #[cfg(test)]
    pub fn values(&self) -> usize {
        self.values.len()
    }

    /// Empties the buffer for reuse, or replaces it with a new one if it grew too big to keep.
    pub fn clear(&mut self) {
        if self.batch.byte_capacity() > MAX_REUSED_BYTES
            || self.batch.op_capacity() > MAX_REUSED_OPS
            || self.values.capacity() > MAX_REUSED_OPS
        {
            *self = CommitBuffer::default();
        } else {
            self.batch.clear();
            self.values.clear();
            self.unsorted = false;
        }
    }
}

/// Empties a list of history keys (`Unwritten::written`, `InFlight::written`) for reuse, or
/// frees it if it grew past [`MAX_REUSED_OPS`] keys, as [`CommitBuffer::clear`] does with a
/// buffer: a burst of writes between two commits does not keep its memory once committed.
pub(crate) fn clear_written(list: &mut Vec<[u8; crate::revision::REV_KEY_LEN]>) {
    if list.capacity() > MAX_REUSED_OPS {
        *list = Vec::new();
    } else {
        list.clear();
    }
}

/// The uncommitted values a read can find: those of the queued buffer and those of the
/// commit in flight, if any (a revision is in at most one of them).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pending<'a> {
    pub queued: &'a CommitBuffer,
    pub in_flight: Option<&'a CommitBuffer>,
}

impl<'a> Pending<'a> {
    /// The encoded record of the put at `rev`, if it is not committed yet.
    pub fn get(&self, rev: Revision) -> Option<&'a [u8]> {
        self.queued
            .get(rev)
            .or_else(|| self.in_flight.and_then(|b| b.get(rev)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::WriteOp;
    use crate::codec::decode_kv;
    use crate::types::KeyValue;

    fn kv(key: &[u8], value: &[u8], rev: Revision, version: i64) -> KeyValue {
        KeyValue {
            key: key.to_vec(),
            value: value.to_vec(),
            create_revision: rev.main - version + 1,
            mod_revision: rev.main,
            version,
            lease: 7,
        }
    }

    #[test]
    fn puts_read_back_and_tombstones_are_not_values() {
        let mut b = CommitBuffer::default();
        let mut want = Vec::new();
        for main in 2..50i64 {
            for sub in 0..3 {
                let rev = Revision::new(main, sub);
                if sub == 1 {
                    b.put_tombstone(rev, b"gone");
                    continue;
                }
                let kv = kv(
                    format!("k{main}/{sub}").as_bytes(),
                    &[main as u8; 40],
                    rev,
                    1,
                );
                b.put_kv(rev, KvRef::from(&kv));
                want.push((rev, kv));
            }
        }
        assert_eq!(b.values(), want.len());
        assert_eq!(b.batch.len(), 48 * 3);
        for (rev, kv) in &want {
            assert_eq!(&decode_kv(b.get(*rev).expect("queued value")).unwrap(), kv);
        }
        // tombstones and revisions never put are not found
        assert_eq!(b.get(Revision::new(10, 1)), None);
        assert_eq!(b.get(Revision::new(1, 0)), None);
        assert_eq!(b.get(Revision::new(50, 0)), None);
        // the ops are what the backend must write: history keys and records, in order
        match b.batch.get(1) {
            Some(WriteOp::Put(Bucket::Key, k, v)) => {
                assert_eq!(k, Revision::new(2, 1).to_key(true));
                let t = decode_kv(v).unwrap();
                assert_eq!(
                    (t.key.as_slice(), t.mod_revision, t.version),
                    (&b"gone"[..], 2, 0)
                );
            }
            other => panic!("unexpected op {other:?}"),
        }
        match b.batch.get(0) {
            Some(WriteOp::Put(Bucket::Key, k, v)) => {
                assert_eq!(k, Revision::new(2, 0).to_key(false));
                assert_eq!(decode_kv(v).unwrap(), want[0].1);
            }
            other => panic!("unexpected op {other:?}"),
        }
    }

    #[test]
    fn out_of_order_revisions_are_still_found() {
        let mut b = CommitBuffer::default();
        let revs = [5, 3, 9, 1, 4].map(|m| Revision::new(m, 0));
        for (i, rev) in revs.iter().enumerate() {
            b.put_kv(*rev, KvRef::from(&kv(b"k", &[i as u8], *rev, 1)));
        }
        for (i, rev) in revs.iter().enumerate() {
            assert_eq!(
                decode_kv(b.get(*rev).unwrap()).unwrap().value,
                vec![i as u8]
            );
        }
        assert_eq!(b.get(Revision::new(2, 0)), None);
        b.clear();
        assert_eq!((b.values(), b.batch.len()), (0, 0));
        assert_eq!(b.get(revs[0]), None);
    }

    #[test]
    fn pending_reads_both_buffers_and_clear_drops_big_ones() {
        let mut in_flight = CommitBuffer::default();
        let mut queued = CommitBuffer::default();
        let (r1, r2) = (Revision::new(2, 0), Revision::new(3, 0));
        in_flight.put_kv(r1, KvRef::from(&kv(b"a", b"1", r1, 1)));
        queued.put_kv(r2, KvRef::from(&kv(b"a", b"2", r2, 2)));
        let both = Pending {
            queued: &queued,
            in_flight: Some(&in_flight),
        };
        assert_eq!(decode_kv(both.get(r1).unwrap()).unwrap().value, b"1");
        assert_eq!(decode_kv(both.get(r2).unwrap()).unwrap().value, b"2");
        let queued_only = Pending {
            queued: &queued,
            in_flight: None,
        };
        assert_eq!(queued_only.get(r1), None);

        // a buffer of normal size keeps its capacity when cleared, a huge one does not
        let cap = queued.batch.byte_capacity();
        queued.clear();
        assert_eq!(queued.batch.byte_capacity(), cap);
        let big = vec![0u8; MAX_REUSED_BYTES];
        queued.put_kv(r2, KvRef::from(&kv(b"a", &big, r2, 2)));
        queued.clear();
        assert_eq!(queued.batch.byte_capacity(), 0);
    }
}
