//! The Raft log as one member sees it: the durable part in [`Storage`] followed by an
//! in-memory `Unstable` tail (entries and possibly a snapshot the application has not
//! persisted yet), plus the commit and apply cursors.
//!
//! ```text
//!   snapshot | storage entries ........ | unstable entries ......
//!            ^first_index               ^unstable.offset        ^last_index
//!   applied <= committed <= last_index
//! ```

use crate::errors::StorageError;
use crate::storage::{limit_size, Storage};
use crate::types::{Entry, Snapshot};

/// Entries and a snapshot not yet handed to, or not yet persisted by, the application.
#[derive(Debug, Default)]
struct Unstable {
    /// A snapshot received from the leader, waiting to be persisted.
    snapshot: Option<Snapshot>,
    /// Entries waiting to be persisted; `entries[i]` has index `offset + i`.
    entries: Vec<Entry>,
    offset: u64,
}

impl Unstable {
    fn maybe_first_index(&self) -> Option<u64> {
        self.snapshot.as_ref().map(|s| s.meta.index + 1)
    }

    fn maybe_last_index(&self) -> Option<u64> {
        if !self.entries.is_empty() {
            return Some(self.offset + self.entries.len() as u64 - 1);
        }
        self.snapshot.as_ref().map(|s| s.meta.index)
    }

    fn maybe_term(&self, index: u64) -> Option<u64> {
        if index < self.offset {
            let snap = self.snapshot.as_ref()?;
            return (snap.meta.index == index).then_some(snap.meta.term);
        }
        let last = self.maybe_last_index()?;
        if index > last {
            return None;
        }
        if let Some(e) = self.entries.get((index - self.offset) as usize) {
            return Some(e.term);
        }
        // index == offset - 0 with no entries only happens for the snapshot index.
        self.snapshot
            .as_ref()
            .filter(|s| s.meta.index == index)
            .map(|s| s.meta.term)
    }

    /// The application persisted entries up to `index` (with term `term`): drop them.
    fn stable_to(&mut self, index: u64, term: u64) {
        if index < self.offset {
            return;
        }
        // Only if the entry is still the one that was persisted (it may have been replaced by a
        // newer leader's entry meanwhile, which must then still be persisted).
        if self.maybe_term(index) == Some(term) && index < self.offset + self.entries.len() as u64 {
            self.entries.drain(..=(index - self.offset) as usize);
            self.offset = index + 1;
        }
    }

    fn stable_snap_to(&mut self, index: u64) {
        if self
            .snapshot
            .as_ref()
            .is_some_and(|s| s.meta.index == index)
        {
            self.snapshot = None;
        }
    }

    fn restore(&mut self, snap: Snapshot) {
        self.offset = snap.meta.index + 1;
        self.entries.clear();
        self.snapshot = Some(snap);
    }

    fn truncate_and_append(&mut self, ents: Vec<Entry>) {
        let after = ents[0].index;
        if after == self.offset + self.entries.len() as u64 {
            // Directly after the current tail.
        } else if after <= self.offset {
            // Replaces everything unstable (and the caller's storage suffix from `after`).
            self.offset = after;
            self.entries.clear();
        } else {
            self.entries.truncate((after - self.offset) as usize);
        }
        self.entries.extend(ents);
    }
}

/// One member's view of the replicated log.
#[derive(Debug)]
pub struct RaftLog<S: Storage> {
    /// The durable part.
    pub store: S,
    unstable: Unstable,
    /// The highest index known to be committed (§5.3).
    pub committed: u64,
    /// The highest index handed to the application for applying.
    pub applying: u64,
    /// The highest index the application reported as applied.
    pub applied: u64,
}

fn must<T>(r: Result<T, StorageError>, what: &str) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("storage failed while reading {what}: {e}"),
    }
}

impl<S: Storage> RaftLog<S> {
    /// Opens the log over `store`; committed and applied start at the snapshot index.
    pub fn new(store: S) -> RaftLog<S> {
        let first = must(store.first_index(), "first index");
        let last = must(store.last_index(), "last index");
        RaftLog {
            store,
            unstable: Unstable {
                snapshot: None,
                entries: Vec::new(),
                offset: last + 1,
            },
            committed: first - 1,
            applying: first - 1,
            applied: first - 1,
        }
    }

    /// The first index still in the log.
    pub fn first_index(&self) -> u64 {
        match self.unstable.maybe_first_index() {
            Some(i) => i,
            None => must(self.store.first_index(), "first index"),
        }
    }

    /// The last index in the log (persisted or not).
    pub fn last_index(&self) -> u64 {
        match self.unstable.maybe_last_index() {
            Some(i) => i,
            None => must(self.store.last_index(), "last index"),
        }
    }

    /// The last index that is durable in storage (meaningful when no snapshot is pending,
    /// which is always the case on a leader).
    pub fn persisted_index(&self) -> u64 {
        self.unstable.offset - 1
    }

    /// The term of entry `index`: `Compacted` before the snapshot, `Unavailable` after the end.
    pub fn term(&self, index: u64) -> Result<u64, StorageError> {
        let dummy = self.first_index() - 1;
        if index < dummy {
            return Err(StorageError::Compacted);
        }
        if index > self.last_index() {
            return Err(StorageError::Unavailable);
        }
        if let Some(t) = self.unstable.maybe_term(index) {
            return Ok(t);
        }
        self.store.term(index)
    }

    /// The term of the last entry.
    pub fn last_term(&self) -> u64 {
        must(self.term(self.last_index()), "last term")
    }

    /// True if the log holds an entry at `index` with `term` (the consistency check, §5.3).
    pub fn match_term(&self, index: u64, term: u64) -> bool {
        self.term(index).is_ok_and(|t| t == term)
    }

    /// §5.4.1: a candidate's log is "at least as up-to-date" as ours if its last term is
    /// higher, or the same and its log is at least as long.
    pub fn is_up_to_date(&self, last_index: u64, last_term: u64) -> bool {
        let my_term = self.last_term();
        last_term > my_term || (last_term == my_term && last_index >= self.last_index())
    }

    /// The follower side of AppendEntries (§5.3): if our log has an entry at `index` with
    /// `log_term`, append `ents` (deleting a conflicting suffix), advance the commit index to
    /// `min(leader_commit, index of last new entry)`, and return that last new index.
    pub fn maybe_append(
        &mut self,
        index: u64,
        log_term: u64,
        leader_commit: u64,
        mut ents: Vec<Entry>,
    ) -> Option<u64> {
        if !self.match_term(index, log_term) {
            return None;
        }
        let last_new = index + ents.len() as u64;
        let conflict = self.find_conflict(&ents);
        if conflict != 0 {
            assert!(
                conflict > self.committed,
                "entry {conflict} conflicts with committed entry [committed({})]",
                self.committed
            );
            let start = (conflict - (index + 1)) as usize;
            ents.drain(..start);
            self.append(ents);
        }
        // §5.3: "If leaderCommit > commitIndex, set commitIndex = min(leaderCommit, index of
        // last new entry)".
        self.commit_to(leader_commit.min(last_new));
        Some(last_new)
    }

    /// Appends entries at the end (they may overwrite an uncommitted suffix).
    pub fn append(&mut self, ents: Vec<Entry>) -> u64 {
        if ents.is_empty() {
            return self.last_index();
        }
        assert!(
            ents[0].index > self.committed,
            "append at {} would overwrite committed index {}",
            ents[0].index,
            self.committed
        );
        self.unstable.truncate_and_append(ents);
        self.last_index()
    }

    /// §5.3: "If an existing entry conflicts with a new one (same index but different terms),
    /// delete the existing entry and all that follow it". Returns the first index of `ents`
    /// that is either new or conflicting, or 0 if all are already present.
    fn find_conflict(&self, ents: &[Entry]) -> u64 {
        for e in ents {
            if !self.match_term(e.index, e.term) {
                return e.index;
            }
        }
        0
    }

    /// Fast backtracking (§5.3, last paragraphs): the largest index `<= index` whose term is
    /// `<= term`, with that term (0 if unknown). Entries after it cannot match a log whose entry
    /// at `index` has term `term`, so a whole term's worth of entries is skipped per round trip.
    pub fn find_conflict_by_term(&self, mut index: u64, term: u64) -> (u64, u64) {
        loop {
            match self.term(index) {
                Ok(t) if t > term && index > 0 => index -= 1,
                Ok(t) => return (index, t),
                Err(_) => return (index, 0),
            }
        }
    }

    /// Entries from `lo` to the end, up to `max_size` payload bytes.
    pub fn entries(&self, lo: u64, max_size: u64) -> Result<Vec<Entry>, StorageError> {
        let last = self.last_index();
        if lo > last {
            return Ok(Vec::new());
        }
        self.slice(lo, last + 1, max_size)
    }

    /// Entries in `lo..hi`, up to `max_size` payload bytes (at least one).
    pub fn slice(&self, lo: u64, hi: u64, max_size: u64) -> Result<Vec<Entry>, StorageError> {
        if lo >= hi {
            return Ok(Vec::new());
        }
        if lo < self.first_index() {
            return Err(StorageError::Compacted);
        }
        assert!(
            hi <= self.last_index() + 1,
            "slice [{lo}, {hi}) out of bound [{}, {}]",
            self.first_index(),
            self.last_index()
        );
        let uoff = self.unstable.offset;
        let mut out = Vec::new();
        if lo < uoff {
            out = self.store.entries(lo, hi.min(uoff), max_size)?;
            if (out.len() as u64) < hi.min(uoff) - lo {
                return Ok(out); // stopped by the size limit
            }
        }
        if hi > uoff {
            let from = lo.max(uoff);
            let u = &self.unstable.entries[(from - uoff) as usize..(hi - uoff) as usize];
            if out.is_empty() {
                out.extend_from_slice(limit_size(u, max_size));
            } else {
                let mut size: u64 = out.iter().map(Entry::payload_size).sum();
                for e in u {
                    size += e.payload_size();
                    if size > max_size {
                        break;
                    }
                    out.push(e.clone());
                }
            }
        }
        Ok(out)
    }

    /// Entries not yet handed to the application for persisting.
    pub fn unstable_entries(&self) -> &[Entry] {
        &self.unstable.entries
    }

    /// A snapshot waiting to be persisted.
    pub fn unstable_snapshot(&self) -> Option<&Snapshot> {
        self.unstable.snapshot.as_ref()
    }

    /// The application persisted entries up to (`index`, `term`).
    pub fn stable_to(&mut self, index: u64, term: u64) {
        self.unstable.stable_to(index, term);
    }

    /// The application persisted the snapshot at `index`.
    pub fn stable_snap_to(&mut self, index: u64) {
        self.unstable.stable_snap_to(index);
    }

    /// True if there are committed entries not yet handed out for applying.
    pub fn has_next_committed_entries(&self) -> bool {
        self.unstable.snapshot.is_none() && self.committed > self.applying
    }

    /// The committed entries to apply next (up to `max_size` bytes).
    pub fn next_committed_entries(&self, max_size: u64) -> Vec<Entry> {
        if !self.has_next_committed_entries() {
            return Vec::new();
        }
        let lo = (self.applying + 1).max(self.first_index());
        match self.slice(lo, self.committed + 1, max_size) {
            Ok(v) => v,
            Err(e) => panic!(
                "committed entries [{lo}, {}] unreadable: {e}",
                self.committed
            ),
        }
    }

    /// Raises the commit index. It never decreases (§5.3: committed entries are durable).
    pub fn commit_to(&mut self, index: u64) {
        if index > self.committed {
            assert!(
                index <= self.last_index(),
                "tocommit({index}) is out of range [lastIndex({})]. Was the raft log corrupted, truncated, or lost?",
                self.last_index()
            );
            self.committed = index;
        }
    }

    /// The leader's commit rule. §5.3: an entry is committed once replicated on a majority;
    /// §5.4.2: but a leader only commits entries *of its current term* by counting replicas —
    /// earlier entries become committed indirectly, through the Log Matching Property.
    /// `count_old_terms` is the deliberately broken rule used by the mutation tests.
    pub fn maybe_commit(&mut self, quorum_index: u64, term: u64, count_old_terms: bool) -> bool {
        if quorum_index > self.committed
            && (count_old_terms || self.term(quorum_index).is_ok_and(|t| t == term))
        {
            self.commit_to(quorum_index);
            return true;
        }
        false
    }

    /// The application applied entries up to `index`.
    pub fn applied_to(&mut self, index: u64) {
        if index == 0 {
            return;
        }
        assert!(
            index <= self.committed,
            "applied({index}) is out of range [committed({})]",
            self.committed
        );
        self.applied = self.applied.max(index);
        self.applying = self.applying.max(index);
    }

    /// Replaces the log by a snapshot received from the leader (§7 "discard the entire log").
    pub fn restore(&mut self, snap: Snapshot) {
        self.committed = snap.meta.index;
        self.applying = self.applying.max(snap.meta.index);
        self.unstable.restore(snap);
    }

    /// The newest snapshot: a pending one, or the one in storage.
    pub fn snapshot(&self) -> Result<Snapshot, StorageError> {
        if let Some(s) = &self.unstable.snapshot {
            return Ok(s.clone());
        }
        self.store.snapshot()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemStorage;

    fn ents(terms: &[u64], start: u64) -> Vec<Entry> {
        terms
            .iter()
            .enumerate()
            .map(|(i, &t)| Entry::normal(t, start + i as u64, Vec::new()))
            .collect()
    }

    #[test]
    fn maybe_append_truncates_conflict_and_limits_commit() {
        let mut log = RaftLog::new(MemStorage::default());
        log.append(ents(&[1, 1, 2, 2], 1));
        // Leader at term 3 says: after (2, 1) come [3@3]; commit 10.
        assert_eq!(log.maybe_append(2, 1, 10, ents(&[3], 3)), Some(3));
        assert_eq!(log.last_index(), 3);
        assert_eq!(log.term(3), Ok(3));
        assert_eq!(log.committed, 3, "commit limited to last new entry");
        assert_eq!(
            log.maybe_append(3, 2, 3, Vec::new()),
            None,
            "consistency check"
        );
    }

    #[test]
    fn find_conflict_by_term_skips_terms() {
        let mut log = RaftLog::new(MemStorage::default());
        log.append(ents(&[1, 1, 4, 4, 4, 5], 1));
        assert_eq!(log.find_conflict_by_term(6, 3), (2, 1));
        assert_eq!(log.find_conflict_by_term(6, 4), (5, 4));
        assert_eq!(log.find_conflict_by_term(6, 9), (6, 5));
    }

    #[test]
    fn maybe_commit_only_current_term() {
        let mut log = RaftLog::new(MemStorage::default());
        log.append(ents(&[1, 2], 1));
        assert!(
            !log.maybe_commit(2, 3, false),
            "term-2 entry not committed in term 3"
        );
        assert!(log.maybe_commit(2, 3, true), "mutation counts old terms");
    }

    #[test]
    fn stable_to_ignores_replaced_entries() {
        let mut log = RaftLog::new(MemStorage::default());
        log.append(ents(&[1, 1], 1));
        log.append(ents(&[2], 2));
        log.stable_to(2, 1); // the persisted (2, 1) was replaced by (2, 2): stays unstable
        assert_eq!(log.unstable_entries().len(), 2);
        log.stable_to(2, 2);
        assert!(log.unstable_entries().is_empty());
    }
}
