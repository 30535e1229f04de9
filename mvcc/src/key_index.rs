//! The in-memory key index: for every key, the revisions at which it changed, grouped into
//! *generations* (one per life of the key, from creation to delete).
//!
//! This is etcd's `keyIndex`/`treeIndex`. The values live in the backend, keyed by revision; the
//! index only answers "which revision of key K is visible at revision R?", so a read is an index
//! lookup plus one backend get per key. It is rebuilt from the history bucket on open.
//!
//! ```text
//! key "foo": generations [ {created 2, revs [2, 5, 7(tombstone)]}, {created 9, revs [9]} ]
//!   at 4 -> rev 2 (version 1); at 6 -> rev 5 (version 2); at 8 -> deleted; at 9 -> rev 9 (v 1)
//! ```
//! The last generation is the open one; after a delete it is empty until the key is put again.
//!
//! # Memory layout
//!
//! Most keys are written once, or a few times between compactions, so the representation is
//! chosen for those cases (figures: `tests/key_index_memory.rs`, mvcc/README.md):
//! * a key put once and never deleted is [`KeyIndex`]'s `Once(rev)` form, one revision stored
//!   inline in the ordered map's slot: no heap block besides the key itself;
//! * a key put two or more times, never deleted and not compacted, is `Puts(revs)`: only its
//!   revision vector (its creation revision is the first, its version the count);
//! * otherwise the key holds a boxed slice of generations, and a generation with exactly one
//!   revision keeps it inline (`Revs::One`), so only generations with two or more revisions
//!   pay for a revision vector; a deleted key's empty open generation is not stored but
//!   implied by the form (`Deleted`), so a key put once and deleted holds one generation;
//! * keys are [`IndexKey`]s: 16 bytes in the map slot (not `Vec`'s 24), holding a key of up to
//!   15 bytes inline and a longer one in a heap block of exactly its length.
//!
//! The map stores keys and values inline in its nodes, so every byte of `KeyIndex` is paid
//! by every key (times the nodes' fill factor): `KeyIndex` is 24 bytes, the same as one `Vec`.
//! The forms are interchangeable: every method answers exactly as the plain form (a vector
//! of generations, each a vector of revisions) did; a proptest below checks it.

use crate::revision::Revision;
use std::collections::{BTreeMap, HashSet};
use std::ops::Bound;
use std::ptr::NonNull;

/// Appends to a revision vector, growing it by half its length when full (2, 3, 4, 6, 9...
/// slots) instead of doubling: a key put three times holds three slots, not four.
fn push_growing(v: &mut Vec<Revision>, rev: Revision) {
    if v.len() == v.capacity() {
        v.reserve_exact((v.len() / 2).max(1));
    }
    v.push(rev);
}

/// The revisions of one generation, ascending.
#[derive(Debug, Clone)]
enum Revs {
    /// Exactly one revision, inline (no heap block).
    One(Revision),
    /// Two and more (empty only in [`Generation::empty`], the listed form of a deleted key's
    /// implied open generation).
    Many(Vec<Revision>),
}

impl Revs {
    fn as_slice(&self) -> &[Revision] {
        match self {
            Revs::One(r) => std::slice::from_ref(r),
            Revs::Many(v) => v,
        }
    }

    /// Appends a revision (a vector starts at two slots, see [`push_growing`]).
    fn push(&mut self, rev: Revision) {
        match self {
            Revs::One(first) => {
                // `vec!` allocates exactly two slots
                *self = Revs::Many(vec![*first, rev]);
            }
            Revs::Many(v) if v.is_empty() => *self = Revs::One(rev),
            Revs::Many(v) => push_growing(v, rev),
        }
    }

    /// Drops the first `n` revisions; one left goes back inline, and a vector is shrunk to fit.
    fn drop_first(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        let Revs::Many(v) = self else {
            unreachable!("dropping {n} of one revision leaves none, callers keep one");
        };
        v.drain(..n);
        if v.len() == 1 {
            *self = Revs::One(v[0]);
        } else {
            v.shrink_to_fit();
        }
    }
}

/// One life of a key: from its creation to its delete (tombstone, the last rev) if any.
#[derive(Debug, Clone)]
struct Generation {
    /// Version of the key at the last revision in `revs` (counting the tombstone).
    version: i64,
    /// Revision that created the key in this generation.
    created: Revision,
    /// Revisions of the changes, ascending; for a closed generation the last is the tombstone.
    revs: Revs,
}

impl Generation {
    /// The open generation a delete leaves (never stored: see `Repr::Deleted`).
    fn empty() -> Generation {
        Generation {
            version: 0,
            created: Revision::default(),
            revs: Revs::Many(Vec::new()),
        }
    }

    fn revs(&self) -> &[Revision] {
        self.revs.as_slice()
    }
}

/// The forms of a key's revisions (see the module doc).
///
/// In the two general forms every stored generation has at least one revision; the empty open
/// generation a delete leaves is not stored but implied by `Deleted`.
#[derive(Debug, Clone)]
enum Repr {
    /// A key put once and never deleted: exactly the one generation `{version 1, created
    /// rev, revs [rev]}`.
    Once(Revision),
    /// A key put two or more times since its creation, never deleted, nothing compacted: the
    /// one generation `{version revs.len(), created revs[0], revs}`.
    Puts(Vec<Revision>),
    /// Generations whose last one is open (none at all for a new, empty `KeyIndex`). A boxed
    /// slice (16 bytes, not a vector's 24) keeps this enum at 24 bytes; generations are added
    /// one at a time, so it is resized exactly then.
    Generations(Box<[Generation]>),
    /// Closed generations only (the key is deleted): these, then the implied empty open one.
    Deleted(Box<[Generation]>),
}

/// The revisions of one key.
///
/// Equality compares the generations (versions, creation and change revisions), not the
/// in-memory form that holds them.
#[derive(Debug, Clone)]
pub struct KeyIndex {
    repr: Repr,
}

impl Default for KeyIndex {
    fn default() -> KeyIndex {
        KeyIndex {
            repr: Repr::Generations(Box::default()),
        }
    }
}

impl PartialEq for KeyIndex {
    fn eq(&self, other: &KeyIndex) -> bool {
        let a = self.generation_list();
        let b = other.generation_list();
        a.len() == b.len()
            && a.iter().zip(b.iter()).all(|(x, y)| {
                x.version == y.version && x.created == y.created && x.revs() == y.revs()
            })
    }
}

impl Eq for KeyIndex {}

/// What the index knows about a key at a revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    /// Revision of the visible change (its mod revision).
    pub modified: Revision,
    /// Creation revision of the generation.
    pub created: Revision,
    /// Version at that revision.
    pub version: i64,
}

/// Appends a generation to a boxed slice of them (exactly one more slot).
fn push_generation(generations: &mut Box<[Generation]>, g: Generation) {
    let mut v = std::mem::take(generations).into_vec();
    v.reserve_exact(1);
    v.push(g);
    *generations = v.into_boxed_slice();
}

/// A generation holding one revision: what a put (or a restored put) starts.
fn first_put(version: i64, created: Revision, rev: Revision) -> Generation {
    Generation {
        version,
        created,
        revs: Revs::One(rev),
    }
}

/// The stored generations of a general form and whether the empty open generation of a
/// deleted key follows them: the shape the algorithms below walk.
#[derive(Clone, Copy)]
struct General<'a> {
    stored: &'a [Generation],
    deleted: bool,
}

impl General<'_> {
    /// Number of generations, the implied empty one included.
    fn len(&self) -> usize {
        self.stored.len() + usize::from(self.deleted)
    }

    /// Index of the first generation that is open or whose tombstone is after `at` (the last
    /// generation if every closed one ended at or before `at`; 0 if there are none).
    fn first_relevant(&self, at: i64) -> usize {
        let last = self.len().saturating_sub(1);
        let mut gi = 0;
        // generations before `last` are closed and stored: their last rev is the tombstone
        while gi < last {
            let tomb = self.stored[gi]
                .revs()
                .last()
                .expect("closed generation non-empty");
            if tomb.main > at {
                break;
            }
            gi += 1;
        }
        gi
    }
}

impl KeyIndex {
    /// The general form's generations, or None for `Once` / `Puts`.
    fn general(&self) -> Option<General<'_>> {
        match &self.repr {
            Repr::Once(_) | Repr::Puts(_) => None,
            Repr::Generations(stored) => Some(General {
                stored,
                deleted: false,
            }),
            Repr::Deleted(stored) => Some(General {
                stored,
                deleted: true,
            }),
        }
    }

    /// The change visible at `at` (main revision), or None if the key did not exist then.
    pub fn get(&self, at: i64) -> Option<Found> {
        let general = match &self.repr {
            Repr::Once(rev) => {
                return (rev.main <= at).then_some(Found {
                    modified: *rev,
                    created: *rev,
                    version: 1,
                });
            }
            Repr::Puts(revs) => {
                let n = revs.partition_point(|r| r.main <= at);
                return (n > 0).then(|| Found {
                    modified: revs[n - 1],
                    created: revs[0],
                    version: n as i64,
                });
            }
            _ => self.general().expect("general form"),
        };
        // the implied empty generation holds nothing: walk the stored ones, newest first
        let last = general.len().checked_sub(1)?;
        for (gi, g) in general.stored.iter().enumerate().rev() {
            let revs = g.revs();
            let first = revs.first().expect("stored generations are non-empty");
            if gi != last {
                // closed generation: its last rev is the tombstone
                let tomb = revs.last().expect("non-empty");
                if tomb.main <= at {
                    return None;
                }
            }
            if first.main <= at {
                let n = revs.partition_point(|r| r.main <= at) - 1;
                return Some(Found {
                    modified: revs[n],
                    created: g.created,
                    version: g.version - (revs.len() - n - 1) as i64,
                });
            }
        }
        None
    }

    /// True if the key is live at the newest revision.
    pub fn is_live(&self) -> bool {
        match &self.repr {
            Repr::Once(_) | Repr::Puts(_) => true,
            Repr::Generations(stored) => !stored.is_empty(),
            Repr::Deleted(_) => false,
        }
    }

    /// The general form, converting `Once` or `Puts` into it (one open generation) if needed.
    /// Not for `Deleted` (whose open generation is implied): callers handle it first.
    fn open_generations_mut(&mut self) -> &mut Box<[Generation]> {
        let single = match &mut self.repr {
            Repr::Generations(_) => None,
            Repr::Deleted(_) => unreachable!("callers handle a deleted key first"),
            Repr::Once(rev) => Some(first_put(1, *rev, *rev)),
            Repr::Puts(revs) => Some(Generation {
                version: revs.len() as i64,
                created: revs[0],
                revs: Revs::Many(std::mem::take(revs)),
            }),
        };
        if let Some(single) = single {
            self.repr = Repr::Generations(Box::new([single]));
        }
        match &mut self.repr {
            Repr::Generations(generations) => generations,
            _ => unreachable!("converted above"),
        }
    }

    /// The generations as a list (`Once` and `Puts` as their one generation, `Deleted` with
    /// its empty open generation).
    fn generation_list(&self) -> std::borrow::Cow<'_, [Generation]> {
        use std::borrow::Cow;
        match &self.repr {
            Repr::Once(rev) => Cow::Owned(vec![first_put(1, *rev, *rev)]),
            Repr::Puts(revs) => Cow::Owned(vec![Generation {
                version: revs.len() as i64,
                created: revs[0],
                revs: Revs::Many(revs.clone()),
            }]),
            Repr::Generations(generations) => Cow::Borrowed(generations),
            Repr::Deleted(generations) => {
                let mut list = generations.to_vec();
                list.push(Generation::empty());
                Cow::Owned(list)
            }
        }
    }

    /// Goes back to the `Once` form if the generations are exactly its one generation.
    fn collapse_to_once(&mut self) {
        if let Repr::Generations(generations) = &self.repr {
            if let [Generation {
                version: 1,
                created,
                revs: Revs::One(rev),
            }] = &generations[..]
            {
                if created == rev {
                    self.repr = Repr::Once(*rev);
                }
            }
        }
    }

    /// Starts a new open generation with `g` after the closed ones of a deleted key.
    fn reopen(&mut self, g: Generation) {
        if let Repr::Deleted(closed) = &mut self.repr {
            let mut generations = std::mem::take(closed);
            push_generation(&mut generations, g);
            self.repr = Repr::Generations(generations);
            self.collapse_to_once();
        }
    }

    /// Records a put at `rev`. Returns (create revision, version) of the new value.
    pub fn put(&mut self, rev: Revision) -> (i64, i64) {
        match &mut self.repr {
            Repr::Generations(g) if g.is_empty() => {
                self.repr = Repr::Once(rev);
                return (rev.main, 1);
            }
            Repr::Once(first) => {
                let created = first.main;
                self.repr = Repr::Puts(vec![*first, rev]); // exactly two slots
                return (created, 2);
            }
            Repr::Puts(revs) => {
                push_growing(revs, rev);
                return (revs[0].main, revs.len() as i64);
            }
            Repr::Deleted(_) => {
                self.reopen(first_put(1, rev, rev));
                return (rev.main, 1);
            }
            Repr::Generations(_) => {}
        }
        let g = self.open_generations_mut().last_mut().expect("non-empty");
        g.revs.push(rev);
        g.version += 1;
        (g.created.main, g.version)
    }

    /// Re-inserts a put found in the backend on open (history may start mid-generation after a
    /// compaction, so the creation revision and version come from the stored value).
    pub fn restore_put(&mut self, rev: Revision, created: i64, version: i64) {
        // A put that continues the history exactly as `put` would have recorded it keeps the
        // compact forms; anything else (a history starting mid-generation, a creation at a
        // sub-revision other than 0) takes the general form.
        let created = Revision::new(created, 0);
        match &mut self.repr {
            Repr::Generations(g) if g.is_empty() => {
                if created == rev && version == 1 {
                    self.repr = Repr::Once(rev);
                } else {
                    self.repr = Repr::Generations(Box::new([first_put(version, created, rev)]));
                }
                return;
            }
            Repr::Once(first) if version == 2 => {
                self.repr = Repr::Puts(vec![*first, rev]); // exactly two slots
                return;
            }
            Repr::Puts(revs) if version == revs.len() as i64 + 1 => {
                push_growing(revs, rev);
                return;
            }
            Repr::Deleted(_) => {
                self.reopen(first_put(version, created, rev));
                return;
            }
            _ => {}
        }
        let g = self.open_generations_mut().last_mut().expect("non-empty");
        g.revs.push(rev);
        g.version = version;
    }

    /// Records a delete at `rev`; the caller has checked the key is live.
    pub fn tombstone(&mut self, rev: Revision) {
        if let Repr::Deleted(closed) = &mut self.repr {
            // Not live: as the plain form did, the tombstone becomes the only revision of the
            // empty open generation (created 0), which closes, and a new empty one follows.
            push_generation(closed, first_put(1, Revision::default(), rev));
            return;
        }
        let generations = self.open_generations_mut();
        let g = generations.last_mut().expect("tombstone on a live key");
        g.revs.push(rev);
        g.version += 1;
        let closed = std::mem::take(generations);
        self.repr = Repr::Deleted(closed);
    }

    /// Compacts at `at`: keeps, per generation still relevant, the newest revision <= `at` and
    /// everything after; drops whole generations that ended (tombstone) at or before `at`.
    /// Adds the kept revisions <= `at` to `keep`. Returns true if the key has nothing left.
    ///
    /// This is etcd's `keyIndex.compact`: a tombstone at or below `at` disappears together with
    /// its generation, so history at `at` and later reads exactly as before.
    pub fn compact(&mut self, at: i64, keep: &mut HashSet<Revision>) -> bool {
        match &self.repr {
            Repr::Once(rev) => {
                if rev.main <= at {
                    keep.insert(*rev);
                }
                return false;
            }
            Repr::Puts(revs) => {
                let n = revs.partition_point(|r| r.main <= at);
                if n <= 1 {
                    // nothing to drop: the form stays
                    if n == 1 {
                        keep.insert(revs[0]);
                    }
                    return false;
                }
                // revisions before the kept one go: `created` is no longer the first one
                self.open_generations_mut();
            }
            Repr::Generations(_) | Repr::Deleted(_) => {}
        }
        let gi = self.general().expect("general form").first_relevant(at);
        let stored = match &mut self.repr {
            Repr::Generations(stored) | Repr::Deleted(stored) => stored,
            _ => unreachable!("general form"),
        };
        if gi > 0 {
            let mut v = std::mem::take(stored).into_vec();
            v.drain(..gi);
            *stored = v.into_boxed_slice();
        }
        // the first relevant generation, unless it is the implied empty one
        if let Some(g) = stored.first_mut() {
            let n = g.revs().partition_point(|r| r.main <= at);
            if n > 0 {
                keep.insert(g.revs()[n - 1]);
                g.revs.drop_first(n - 1);
            }
        }
        // stored generations are never empty, the implied one always is
        let nothing_left = stored.is_empty();
        self.collapse_to_once();
        nothing_left
    }

    /// Adds to `keep` the revision a compaction at `at` would keep for this key, without
    /// compacting: the newest revision <= `at` of the first generation that is open or ends
    /// (tombstone) after `at`. This is etcd's `keyIndex.keep`, used by HashKV.
    pub fn keep(&self, at: i64, keep: &mut HashSet<Revision>) {
        let general = match &self.repr {
            Repr::Once(rev) => {
                if rev.main <= at {
                    keep.insert(*rev);
                }
                return;
            }
            Repr::Puts(revs) => {
                let n = revs.partition_point(|r| r.main <= at);
                if n > 0 {
                    keep.insert(revs[n - 1]);
                }
                return;
            }
            _ => self.general().expect("general form"),
        };
        let last = general.len().saturating_sub(1);
        let gi = general.first_relevant(at);
        // the implied empty generation (or none at all) keeps nothing
        let Some(g) = general.stored.get(gi) else {
            return;
        };
        let revs = g.revs();
        let n = revs.partition_point(|r| r.main <= at);
        // etcd drops the kept revision again if it is the generation's tombstone; with the
        // generation chosen above that cannot happen, but the rule is kept as etcd states it.
        if n > 0 && !(n == revs.len() && gi != last) {
            keep.insert(revs[n - 1]);
        }
    }

    /// Number of revisions held (for statistics).
    pub fn revision_count(&self) -> usize {
        match &self.repr {
            Repr::Once(_) => 1,
            Repr::Puts(revs) => revs.len(),
            Repr::Generations(stored) | Repr::Deleted(stored) => {
                stored.iter().map(|g| g.revs().len()).sum()
            }
        }
    }
}

/// Keys of at most this many bytes are stored inside the [`IndexKey`] itself.
const INLINE_KEY_MAX: usize = 15;
/// Set in byte 0 of an inline [`IndexKey`] (with the length in the low bits); clear in byte
/// 0 of a heap one, the most significant byte of its big-endian length (lengths are < 2^56).
const INLINE_TAG: u8 = 0x80;

/// A heap key: its length (big-endian, so that byte 0 of the key is its most significant
/// byte, 0 for any length a machine can allocate) and a block of exactly that many bytes,
/// allocated as a `Box<[u8]>` and owned by the key.
#[derive(Clone, Copy)]
#[repr(C)]
struct HeapKey {
    len_be: [u8; 8],
    ptr: NonNull<u8>,
}

/// The two layouts of an [`IndexKey`]; byte 0 tells which one is written.
#[repr(C)]
union KeyBytes {
    /// Byte 0: `INLINE_TAG | len`; bytes 1..=len: the key; the rest: zero.
    inline: [u8; 16],
    heap: HeapKey,
}

/// A key of the index: 16 bytes, the key itself if it has at most 15 bytes (no heap block:
/// an 8-byte key costs no allocation), else a pointer to an exact-size heap block (as a
/// `Box<[u8]>` would be). Compares, hashes and borrows as the byte string it holds, so the
/// map is searched with plain `&[u8]`.
pub struct IndexKey(KeyBytes);

// SAFETY: an IndexKey owns its heap block exclusively (like a Box<[u8]>): it is never shared
// or aliased mutably, and only read through `&self`, so it can move to and be read from other
// threads exactly like a Box<[u8]>.
unsafe impl Send for IndexKey {}
// SAFETY: as above; `&IndexKey` only gives shared reads of immutable bytes.
unsafe impl Sync for IndexKey {}

impl IndexKey {
    /// Copies `key`.
    pub fn new(key: &[u8]) -> IndexKey {
        if key.len() <= INLINE_KEY_MAX {
            let mut inline = [0u8; 16];
            inline[0] = INLINE_TAG | key.len() as u8;
            inline[1..=key.len()].copy_from_slice(key);
            return IndexKey(KeyBytes { inline });
        }
        let len = key.len() as u64;
        assert!(len < 1 << 56, "no key can be 2^56 bytes long");
        let block: Box<[u8]> = key.into();
        let ptr = NonNull::new(Box::into_raw(block).cast::<u8>()).expect("a Box is non-null");
        IndexKey(KeyBytes {
            heap: HeapKey {
                len_be: len.to_be_bytes(),
                ptr,
            },
        })
    }

    /// Byte 0: the inline tag and length, or the heap length's most significant byte.
    fn tag(&self) -> u8 {
        // SAFETY: byte 0 of the union is initialized in both layouts (`inline[0]` or
        // `heap.len_be[0]`, both at offset 0 of a #[repr(C)] union), and a u8 is valid for
        // any value; only that one byte is read.
        unsafe { std::ptr::addr_of!(self.0).cast::<u8>().read() }
    }

    /// The heap layout, if this key uses it.
    fn heap(&self) -> Option<HeapKey> {
        if self.tag() & INLINE_TAG != 0 {
            return None;
        }
        // SAFETY: a clear tag bit means `new` wrote the `heap` layout (an inline key always
        // sets it), so both fields are initialized.
        Some(unsafe { self.0.heap })
    }

    /// For an inline key, a number that orders as its bytes do: the 15 key bytes (zero after
    /// the key) big-endian in the high 120 bits, the length in the low 8. Zero padding sorts
    /// a key before any longer key it is a prefix of, and when two keys differ only by
    /// trailing zero bytes the length decides, so comparing these numbers is comparing the
    /// byte strings (one integer comparison instead of a `memcmp` call).
    fn inline_order(&self) -> Option<u128> {
        if self.tag() & INLINE_TAG == 0 {
            return None;
        }
        // SAFETY: a set tag bit means `new` wrote the `inline` layout: all 16 bytes are
        // initialized (the key, then zeros).
        let bytes = unsafe { self.0.inline };
        let len = u128::from(bytes[0] & !INLINE_TAG);
        Some((u128::from_be_bytes(bytes) << 8) | len)
    }

    /// The key's bytes.
    pub fn as_slice(&self) -> &[u8] {
        match self.heap() {
            None => {
                let len = usize::from(self.tag() & !INLINE_TAG);
                // SAFETY: the tag says `new` wrote the `inline` layout: all 16 bytes are
                // initialized, and len <= 15 keeps 1..=len inside the array.
                unsafe { &self.0.inline[1..=len] }
            }
            Some(heap) => {
                let len = u64::from_be_bytes(heap.len_be) as usize;
                // SAFETY: `ptr` and `len` come from `Box::<[u8]>::into_raw` of a block of
                // exactly `len` initialized bytes, owned by this key and freed only in `drop`,
                // so it is valid for reads for as long as `&self` lives and nobody writes it.
                unsafe { std::slice::from_raw_parts(heap.ptr.as_ptr(), len) }
            }
        }
    }
}

impl Drop for IndexKey {
    fn drop(&mut self) {
        if let Some(heap) = self.heap() {
            let len = u64::from_be_bytes(heap.len_be) as usize;
            let block = std::ptr::slice_from_raw_parts_mut(heap.ptr.as_ptr(), len);
            // SAFETY: `block` is exactly the pointer and length `Box::into_raw` returned in
            // `new`; this key owns it and is being dropped, so it is freed once and never
            // read again.
            drop(unsafe { Box::from_raw(block) });
        }
    }
}

impl std::ops::Deref for IndexKey {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl std::borrow::Borrow<[u8]> for IndexKey {
    fn borrow(&self) -> &[u8] {
        self.as_slice()
    }
}

impl PartialEq for IndexKey {
    fn eq(&self, other: &IndexKey) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for IndexKey {}

impl PartialOrd for IndexKey {
    fn partial_cmp(&self, other: &IndexKey) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for IndexKey {
    fn cmp(&self, other: &IndexKey) -> std::cmp::Ordering {
        match (self.inline_order(), other.inline_order()) {
            (Some(a), Some(b)) => a.cmp(&b),
            _ => self.as_slice().cmp(other.as_slice()),
        }
    }
}

impl std::hash::Hash for IndexKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state)
    }
}

impl std::fmt::Debug for IndexKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.as_slice())
    }
}

/// The index of all keys, ordered by key for range reads.
#[derive(Debug, Default)]
pub struct TreeIndex {
    keys: BTreeMap<IndexKey, KeyIndex>,
    live: u64,
}

/// Converts etcd's `range_end` convention into a key bound: empty = the key only; `[0]` =
/// unbounded; otherwise exclusive end.
pub fn range_bounds<'a>(key: &'a [u8], range_end: &'a [u8]) -> (Bound<&'a [u8]>, Bound<&'a [u8]>) {
    if range_end.is_empty() {
        (Bound::Included(key), Bound::Included(key))
    } else if range_end == [0] {
        (Bound::Included(key), Bound::Unbounded)
    } else {
        (Bound::Included(key), Bound::Excluded(range_end))
    }
}

/// True if `k` is inside the etcd range `[key, range_end)` (same conventions as above).
pub fn in_range(k: &[u8], key: &[u8], range_end: &[u8]) -> bool {
    if range_end.is_empty() {
        k == key
    } else if range_end == [0] {
        k >= key
    } else {
        k >= key && k < range_end
    }
}

/// True if the range is empty by construction (end not after start).
pub fn is_empty_range(key: &[u8], range_end: &[u8]) -> bool {
    !range_end.is_empty() && range_end != [0] && range_end <= key
}

impl TreeIndex {
    /// An empty index.
    pub fn new() -> TreeIndex {
        TreeIndex::default()
    }

    /// The index entry of a key.
    pub fn key(&self, key: &[u8]) -> Option<&KeyIndex> {
        self.keys.get(key)
    }

    /// The change of `key` visible at `at`.
    pub fn get(&self, key: &[u8], at: i64) -> Option<Found> {
        self.keys.get(key)?.get(at)
    }

    /// Calls `f(key, found)` for each key of the range visible at `at`, in key order, until `f`
    /// returns false.
    pub fn range(
        &self,
        key: &[u8],
        range_end: &[u8],
        at: i64,
        mut f: impl FnMut(&[u8], Found) -> bool,
    ) {
        if is_empty_range(key, range_end) {
            return;
        }
        for (k, ki) in self.keys.range::<[u8], _>(range_bounds(key, range_end)) {
            if let Some(found) = ki.get(at) {
                if !f(k.as_slice(), found) {
                    return;
                }
            }
        }
    }

    /// Records a put; returns (create revision, version).
    pub fn put(&mut self, key: &[u8], rev: Revision) -> (i64, i64) {
        // An inline key costs no allocation to build and compares fast: one search. A long
        // one is searched by bytes first, so an existing key does not allocate a heap copy.
        let ki = if key.len() <= INLINE_KEY_MAX {
            self.keys.entry(IndexKey::new(key)).or_default()
        } else {
            match self.keys.get_mut(key) {
                Some(ki) => ki,
                None => self.keys.entry(IndexKey::new(key)).or_default(),
            }
        };
        if !ki.is_live() {
            self.live += 1;
        }
        ki.put(rev)
    }

    /// Restores a put on open.
    pub fn restore_put(&mut self, key: &[u8], rev: Revision, created: i64, version: i64) {
        // An inline key costs no allocation to build and compares fast: one search. A long
        // one is searched by bytes first, so an existing key does not allocate a heap copy.
        let ki = if key.len() <= INLINE_KEY_MAX {
            self.keys.entry(IndexKey::new(key)).or_default()
        } else {
            match self.keys.get_mut(key) {
                Some(ki) => ki,
                None => self.keys.entry(IndexKey::new(key)).or_default(),
            }
        };
        if !ki.is_live() {
            self.live += 1;
        }
        ki.restore_put(rev, created, version);
    }

    /// Records a delete of a live key. Returns false (and does nothing) if it is not live.
    pub fn tombstone(&mut self, key: &[u8], rev: Revision) -> bool {
        match self.keys.get_mut(key) {
            Some(ki) if ki.is_live() => {
                ki.tombstone(rev);
                self.live -= 1;
                true
            }
            _ => false,
        }
    }

    /// Compacts every key at `at`; returns the revisions <= `at` that must be kept.
    pub fn compact(&mut self, at: i64) -> HashSet<Revision> {
        let mut keep = HashSet::new();
        self.keys.retain(|_, ki| !ki.compact(at, &mut keep));
        keep
    }

    /// The revisions a compaction at `at` would keep (etcd's `treeIndex.Keep`), without
    /// compacting. HashKV at `at` hashes, of the revisions <= the compaction point, only these.
    pub fn keep(&self, at: i64) -> HashSet<Revision> {
        let mut keep = HashSet::new();
        for ki in self.keys.values() {
            ki.keep(at, &mut keep);
        }
        keep
    }

    /// Number of keys live at the newest revision.
    pub fn live_keys(&self) -> u64 {
        self.live
    }

    /// Number of revisions held by the index.
    pub fn revision_count(&self) -> u64 {
        self.keys.values().map(|k| k.revision_count() as u64).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(m: i64) -> Revision {
        Revision::new(m, 0)
    }

    #[test]
    fn generations_and_versions() {
        let mut ki = KeyIndex::default();
        ki.put(r(2));
        ki.put(r(5));
        ki.tombstone(r(7));
        assert_eq!(ki.put(r(9)), (9, 1));
        assert_eq!(ki.get(1), None);
        assert_eq!(ki.get(4).unwrap().version, 1);
        let f = ki.get(6).unwrap();
        assert_eq!((f.modified, f.created, f.version), (r(5), r(2), 2));
        assert_eq!(ki.get(7), None);
        assert_eq!(ki.get(8), None);
        assert_eq!(ki.get(100).unwrap().created, r(9));
    }

    #[test]
    fn compaction_keeps_reads_at_and_after_the_point() {
        let mut ki = KeyIndex::default();
        ki.put(r(2));
        ki.put(r(5));
        ki.tombstone(r(7));
        ki.put(r(9));
        ki.put(r(11));
        let before: Vec<_> = (6..13).map(|at| ki.get(at)).collect();
        let mut keep = HashSet::new();
        assert!(!ki.compact(6, &mut keep));
        assert_eq!(keep, HashSet::from([r(5)]));
        let after: Vec<_> = (6..13).map(|at| ki.get(at)).collect();
        assert_eq!(before, after);
        // compacting past the tombstone drops the first generation entirely
        let mut keep = HashSet::new();
        ki.compact(10, &mut keep);
        assert_eq!(keep, HashSet::from([r(9)]));
        assert_eq!(ki.get(10).unwrap().version, 1);
        assert_eq!(ki.get(11).unwrap().version, 2);
    }

    #[test]
    fn keep_is_what_compaction_would_keep() {
        // foo: put 2, tombstone 5 (etcd's HashKV example: after `del foo2` the key has no
        // revision to keep at 5 or later, but keeps 3 at 3 and 4).
        let mut ki = KeyIndex::default();
        ki.put(r(3));
        ki.tombstone(r(5));
        let keep_at = |ki: &KeyIndex, at| {
            let mut keep = HashSet::new();
            ki.keep(at, &mut keep);
            keep
        };
        assert!(keep_at(&ki, 2).is_empty());
        assert_eq!(keep_at(&ki, 4), HashSet::from([r(3)]));
        assert!(keep_at(&ki, 5).is_empty());
        ki.put(r(8));
        assert!(keep_at(&ki, 7).is_empty());
        assert_eq!(keep_at(&ki, 9), HashSet::from([r(8)]));
        // and `keep` is exactly the set a compaction at the same point returns
        for at in 0..10 {
            let mut compacted = ki.clone();
            let mut keep = HashSet::new();
            compacted.compact(at, &mut keep);
            assert_eq!(keep_at(&ki, at), keep, "at {at}");
        }
    }

    #[test]
    fn compaction_at_tombstone_removes_key() {
        let mut ki = KeyIndex::default();
        ki.put(r(2));
        ki.tombstone(r(3));
        let mut keep = HashSet::new();
        assert!(ki.compact(3, &mut keep));
        assert!(keep.is_empty());
    }

    fn is_once(ki: &KeyIndex) -> bool {
        matches!(ki.repr, Repr::Once(_))
    }

    fn is_puts(ki: &KeyIndex) -> bool {
        matches!(ki.repr, Repr::Puts(_))
    }

    /// The revisions vectors' forms, generation by generation: Some(len) for a vector, None for
    /// an inline revision.
    fn forms(ki: &KeyIndex) -> Vec<Option<usize>> {
        match &ki.repr {
            Repr::Once(_) => vec![None],
            Repr::Puts(v) => vec![Some(v.len())],
            Repr::Generations(gs) | Repr::Deleted(gs) => {
                let mut forms: Vec<_> = gs
                    .iter()
                    .map(|g| match &g.revs {
                        Revs::One(_) => None,
                        Revs::Many(v) => Some(v.len()),
                    })
                    .collect();
                if matches!(ki.repr, Repr::Deleted(_)) {
                    // the implied empty open generation
                    forms.push(Some(0));
                }
                forms
            }
        }
    }

    fn is_deleted(ki: &KeyIndex) -> bool {
        matches!(ki.repr, Repr::Deleted(_))
    }

    #[test]
    fn the_forms_fit_the_map_slot() {
        assert_eq!(std::mem::size_of::<KeyIndex>(), 24);
        assert_eq!(std::mem::size_of::<Revs>(), 24);
        assert_eq!(std::mem::size_of::<Generation>(), 48);
    }

    #[test]
    fn one_put_is_inline_then_a_second_put_makes_a_vector() {
        let mut ki = KeyIndex::default();
        assert_eq!(ki.put(r(4)), (4, 1));
        assert!(is_once(&ki));
        assert!(ki.is_live());
        assert_eq!(ki.revision_count(), 1);
        assert_eq!(ki.get(3), None);
        let f = ki.get(4).unwrap();
        assert_eq!((f.modified, f.created, f.version), (r(4), r(4), 1));
        assert_eq!(ki.put(r(6)), (4, 2));
        assert!(is_puts(&ki));
        assert_eq!(forms(&ki), vec![Some(2)]);
        assert_eq!(ki.put(r(9)), (4, 3));
        assert_eq!(forms(&ki), vec![Some(3)]);
        assert_eq!(ki.revision_count(), 3);
        let f = ki.get(7).unwrap();
        assert_eq!((f.modified, f.created, f.version), (r(6), r(4), 2));
        assert_eq!(ki.get(100).unwrap().version, 3);
        // the puts-only form; the vector grows by half its length: three slots for three puts
        let Repr::Puts(v) = &ki.repr else {
            panic!("not the puts-only form: {ki:?}")
        };
        assert_eq!(v.capacity(), 3);
    }

    #[test]
    fn restore_put_is_inline_only_for_a_creating_put() {
        let mut ki = KeyIndex::default();
        ki.restore_put(r(5), 5, 1);
        assert!(is_once(&ki));
        assert_eq!(ki.get(5).unwrap().created, r(5));
        // a history starting mid-generation (after a compaction) keeps created and version
        let mut ki = KeyIndex::default();
        ki.restore_put(r(5), 2, 4);
        assert!(!is_once(&ki));
        assert_eq!(forms(&ki), vec![None]);
        let f = ki.get(5).unwrap();
        assert_eq!((f.modified, f.created, f.version), (r(5), r(2), 4));
        // a sub-revision 1 put is not created at (main, 0): not the inline form
        let mut ki = KeyIndex::default();
        ki.restore_put(Revision::new(5, 1), 5, 1);
        assert!(!is_once(&ki));
        assert_eq!(ki.get(5).unwrap().created, r(5));
        assert_eq!(ki.get(5).unwrap().modified, Revision::new(5, 1));
        // a restored second put leaves the inline form and takes the stored version
        let mut ki = KeyIndex::default();
        ki.restore_put(r(5), 5, 1);
        ki.restore_put(r(8), 5, 2);
        assert!(is_puts(&ki));
        assert_eq!(forms(&ki), vec![Some(2)]);
        assert_eq!(ki.get(8).unwrap().version, 2);
        assert_eq!(ki.get(7).unwrap().version, 1);
        ki.restore_put(r(9), 5, 3);
        assert!(is_puts(&ki));
        // a stored version that does not count on by one is kept as stored: general form
        ki.restore_put(r(11), 5, 7);
        assert!(!is_puts(&ki));
        assert_eq!(forms(&ki), vec![Some(4)]);
        assert_eq!(ki.get(11).unwrap().version, 7);
        assert_eq!(ki.get(10).unwrap().version, 6);
        assert_eq!(ki.get(11).unwrap().created, r(5));
    }

    #[test]
    fn tombstone_opens_a_new_generation() {
        let mut ki = KeyIndex::default();
        ki.put(r(2));
        assert!(is_once(&ki));
        ki.tombstone(r(3));
        assert!(is_deleted(&ki));
        assert!(!ki.is_live());
        assert_eq!(forms(&ki), vec![Some(2), Some(0)]);
        assert_eq!(ki.revision_count(), 2);
        assert_eq!(ki.get(2).unwrap().version, 1);
        assert_eq!(ki.get(3), None);
        assert_eq!(ki.put(r(5)), (5, 1));
        assert!(ki.is_live() && !is_deleted(&ki));
        assert_eq!(forms(&ki), vec![Some(2), None]);
        // the implied empty generation is part of the history: equal to the plain form
        let mut deleted = KeyIndex::default();
        deleted.put(r(2));
        deleted.tombstone(r(3));
        let plain = KeyIndex {
            repr: Repr::Generations(Box::new([
                Generation {
                    version: 2,
                    created: r(2),
                    revs: Revs::Many(vec![r(2), r(3)]),
                },
                Generation::empty(),
            ])),
        };
        assert_eq!(deleted, plain);
        assert_ne!(deleted, KeyIndex::default());
        assert_eq!(ki.get(4), None);
        let f = ki.get(5).unwrap();
        assert_eq!((f.modified, f.created, f.version), (r(5), r(5), 1));
        assert_eq!(ki.put(r(6)), (5, 2));
        assert_eq!(forms(&ki), vec![Some(2), Some(2)]);

        // from the puts-only form
        let mut ki = KeyIndex::default();
        ki.put(r(2));
        ki.put(r(3));
        assert!(is_puts(&ki));
        ki.tombstone(r(4));
        assert!(is_deleted(&ki) && !ki.is_live());
        assert_eq!(forms(&ki), vec![Some(3), Some(0)]);
        let f = ki.get(3).unwrap();
        assert_eq!((f.modified, f.created, f.version), (r(3), r(2), 2));
        assert_eq!(ki.get(4), None);
        let mut keep = HashSet::new();
        ki.keep(4, &mut keep);
        assert!(keep.is_empty());
        ki.keep(3, &mut keep);
        assert_eq!(keep, HashSet::from([r(3)]));
    }

    #[test]
    fn compaction_shrinks_a_vector_to_one_inline_revision() {
        let mut ki = KeyIndex::default();
        ki.put(r(2));
        ki.put(r(5));
        ki.put(r(8));
        let mut keep = HashSet::new();
        assert!(!ki.compact(8, &mut keep));
        assert_eq!(keep, HashSet::from([r(8)]));
        // one revision left, but created 2 / version 3: inline revision, not the Once form
        assert_eq!(forms(&ki), vec![None]);
        assert!(!is_once(&ki));
        let f = ki.get(8).unwrap();
        assert_eq!((f.modified, f.created, f.version), (r(8), r(2), 3));
        assert_eq!(ki.revision_count(), 1);
        // a later put makes a vector again, counting on from version 3
        assert_eq!(ki.put(r(9)), (2, 4));
        assert_eq!(forms(&ki), vec![Some(2)]);

        // put, delete, put again; compacting past the delete leaves exactly a key put once
        let mut ki = KeyIndex::default();
        ki.put(r(2));
        ki.tombstone(r(3));
        ki.put(r(4));
        let mut keep = HashSet::new();
        assert!(!ki.compact(4, &mut keep));
        assert_eq!(keep, HashSet::from([r(4)]));
        assert!(is_once(&ki));
        assert_eq!(ki.get(4).unwrap().version, 1);
        assert_eq!(ki.get(3), None);

        // compacting a key put once keeps it, in the inline form
        let mut ki = KeyIndex::default();
        ki.put(r(2));
        let mut keep = HashSet::new();
        assert!(!ki.compact(1, &mut keep));
        assert!(keep.is_empty());
        assert!(!ki.compact(2, &mut keep));
        assert_eq!(keep, HashSet::from([r(2)]));
        assert!(is_once(&ki));
    }

    #[test]
    fn keep_is_the_same_in_every_form() {
        // the same one-put history in both forms
        let mut once = KeyIndex::default();
        once.put(r(4));
        let general = KeyIndex {
            repr: Repr::Generations(Box::new([Generation {
                version: 1,
                created: r(4),
                revs: Revs::One(r(4)),
            }])),
        };
        assert!(is_once(&once));
        assert_eq!(once, general);
        // and a three-put history whose compaction leaves one inline revision
        let mut three = KeyIndex::default();
        for m in [2, 5, 8] {
            three.put(r(m));
        }
        let mut compacted = three.clone();
        compacted.compact(6, &mut HashSet::new());
        assert_eq!(forms(&compacted), vec![Some(2)]);
        for at in 0..12 {
            let keep_of = |ki: &KeyIndex| {
                let mut keep = HashSet::new();
                ki.keep(at, &mut keep);
                keep
            };
            assert_eq!(keep_of(&once), keep_of(&general), "at {at}");
            assert_eq!(keep_of(&once).contains(&r(4)), at >= 4, "at {at}");
            if at >= 6 {
                assert_eq!(keep_of(&three), keep_of(&compacted), "at {at}");
            }
            assert_eq!(once.get(at), general.get(at), "at {at}");
        }
    }

    /// The index as it was before the compact forms: plain vectors, one per generation. The
    /// proptest below checks that every method of `KeyIndex` answers exactly as this does.
    #[derive(Debug, Clone, Default)]
    struct Reference {
        generations: Vec<(i64, Revision, Vec<Revision>)>,
    }

    impl Reference {
        fn get(&self, at: i64) -> Option<Found> {
            let last = self.generations.len().checked_sub(1)?;
            for (gi, (version, created, revs)) in self.generations.iter().enumerate().rev() {
                let Some(first) = revs.first() else { continue };
                if gi != last && revs.last().unwrap().main <= at {
                    return None;
                }
                if first.main <= at {
                    let n = revs.partition_point(|r| r.main <= at) - 1;
                    return Some(Found {
                        modified: revs[n],
                        created: *created,
                        version: version - (revs.len() - n - 1) as i64,
                    });
                }
            }
            None
        }
        fn is_live(&self) -> bool {
            self.generations.last().is_some_and(|g| !g.2.is_empty())
        }
        fn put(&mut self, rev: Revision) -> (i64, i64) {
            if self.generations.is_empty() {
                self.generations.push(Default::default());
            }
            let g = self.generations.last_mut().unwrap();
            if g.2.is_empty() {
                g.1 = rev;
            }
            g.2.push(rev);
            g.0 += 1;
            (g.1.main, g.0)
        }
        fn restore_put(&mut self, rev: Revision, created: i64, version: i64) {
            if self.generations.is_empty() {
                self.generations.push(Default::default());
            }
            let g = self.generations.last_mut().unwrap();
            if g.2.is_empty() {
                g.1 = Revision::new(created, 0);
            }
            g.2.push(rev);
            g.0 = version;
        }
        fn tombstone(&mut self, rev: Revision) {
            let g = self.generations.last_mut().unwrap();
            g.2.push(rev);
            g.0 += 1;
            self.generations.push(Default::default());
        }
        fn compact(&mut self, at: i64, keep: &mut HashSet<Revision>) -> bool {
            let last = self.generations.len().saturating_sub(1);
            let mut gi = 0;
            while gi < last && self.generations[gi].2.last().unwrap().main <= at {
                gi += 1;
            }
            self.generations.drain(..gi);
            if let Some(g) = self.generations.first_mut() {
                let n = g.2.partition_point(|r| r.main <= at);
                if n > 0 {
                    keep.insert(g.2[n - 1]);
                    g.2.drain(..n - 1);
                }
            }
            self.generations.iter().all(|g| g.2.is_empty())
        }
        fn keep(&self, at: i64, keep: &mut HashSet<Revision>) {
            let last = self.generations.len().saturating_sub(1);
            let mut gi = 0;
            while gi < last {
                match self.generations[gi].2.last() {
                    Some(tomb) if tomb.main > at => break,
                    _ => gi += 1,
                }
            }
            let Some(g) = self.generations.get(gi) else {
                return;
            };
            let n = g.2.partition_point(|r| r.main <= at);
            if n > 0 && !(n == g.2.len() && gi != last) {
                keep.insert(g.2[n - 1]);
            }
        }
        fn revision_count(&self) -> usize {
            self.generations.iter().map(|g| g.2.len()).sum()
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Put {
            sub: i64,
        },
        Restore {
            sub: i64,
            created_back: i64,
            version: i64,
        },
        Delete,
        Compact {
            back: i64,
        },
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            4 => (0i64..2).prop_map(|sub| Op::Put { sub }),
            2 => (0i64..2, 0i64..3, 1i64..4).prop_map(|(sub, created_back, version)| {
                Op::Restore { sub, created_back, version }
            }),
            2 => Just(Op::Delete),
            2 => (0i64..4).prop_map(|back| Op::Compact { back }),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]
        #[test]
        fn every_form_answers_as_plain_vectors(ops in proptest::collection::vec(op(), 0..24)) {
            use proptest::prelude::*;
            let mut ki = KeyIndex::default();
            let mut reference = Reference::default();
            let mut main = 1i64;
            let mut compacted_at = 0i64;
            for op in ops {
                match op {
                    Op::Put { sub } => {
                        main += 1;
                        let rev = Revision::new(main, sub);
                        prop_assert_eq!(ki.put(rev), reference.put(rev));
                    }
                    Op::Restore { sub, created_back, version } => {
                        main += 1;
                        let rev = Revision::new(main, sub);
                        let created = main - created_back;
                        ki.restore_put(rev, created, version);
                        reference.restore_put(rev, created, version);
                    }
                    Op::Delete => {
                        // also on a deleted key (TreeIndex never does that, but the form
                        // must answer as the plain vectors did); not on a key with no
                        // generation, where both panic
                        if !reference.generations.is_empty() {
                            main += 1;
                            ki.tombstone(Revision::new(main, 0));
                            reference.tombstone(Revision::new(main, 0));
                        }
                    }
                    Op::Compact { back } => {
                        let at = (main - back).max(compacted_at);
                        compacted_at = at;
                        let (mut k1, mut k2) = (HashSet::new(), HashSet::new());
                        prop_assert_eq!(ki.compact(at, &mut k1), reference.compact(at, &mut k2));
                        prop_assert_eq!(k1, k2);
                    }
                }
                // the whole history, generation by generation, in every form
                let list = ki.generation_list();
                let got: Vec<_> = list.iter().map(|g| (g.version, g.created, g.revs().to_vec())).collect();
                prop_assert_eq!(&got, &reference.generations);
                prop_assert_eq!(ki.is_live(), reference.is_live());
                prop_assert_eq!(ki.revision_count(), reference.revision_count());
                for at in compacted_at..=main + 1 {
                    prop_assert_eq!(ki.get(at), reference.get(at), "get at {}", at);
                    let (mut k1, mut k2) = (HashSet::new(), HashSet::new());
                    ki.keep(at, &mut k1);
                    reference.keep(at, &mut k2);
                    prop_assert_eq!(k1, k2, "keep at {}", at);
                }
            }
        }
    }

    #[test]
    fn index_keys_are_16_bytes_inline_up_to_15() {
        assert_eq!(std::mem::size_of::<IndexKey>(), 16);
        for len in 0..40usize {
            let bytes: Vec<u8> = (0..len).map(|i| 0xF0u8.wrapping_add(i as u8)).collect();
            let key = IndexKey::new(&bytes);
            assert_eq!(key.as_slice(), &bytes[..], "len {len}");
            assert_eq!(key.heap().is_none(), len <= INLINE_KEY_MAX, "len {len}");
        }
        // bytes with the tag bit set everywhere, and all zeros, at the boundary lengths
        for len in [14, 15, 16, 17] {
            for fill in [0x00u8, 0x80, 0xFF] {
                let bytes = vec![fill; len];
                assert_eq!(IndexKey::new(&bytes).as_slice(), &bytes[..]);
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn index_keys_hold_compare_and_hash_as_their_bytes(
            a in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40),
            b in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40),
        ) {
            use std::hash::{BuildHasher, RandomState};
            let (ka, kb) = (IndexKey::new(&a), IndexKey::new(&b));
            proptest::prop_assert_eq!(ka.as_slice(), &a[..]);
            proptest::prop_assert_eq!(kb.as_slice(), &b[..]);
            proptest::prop_assert_eq!(ka.cmp(&kb), a.cmp(&b));
            proptest::prop_assert_eq!(ka == kb, a == b);
            proptest::prop_assert_eq!(ka.partial_cmp(&kb), Some(a.cmp(&b)));
            let hasher = RandomState::new();
            let key_hash = hasher.hash_one(&ka);
            let bytes_hash = hasher.hash_one(&a[..]);
            proptest::prop_assert_eq!(key_hash, bytes_hash);
        }
    }

    proptest::proptest! {
        /// The inline comparison (one integer per key) against byte-string order where it is
        /// easiest to get wrong: few distinct bytes (zeros, which the padding also uses, and
        /// 0xff), keys that are prefixes of each other, lengths around the 15-byte limit.
        #[test]
        fn inline_key_order_is_byte_order(
            a in proptest::collection::vec(proptest::sample::select(vec![0u8, 1, 0x80, 0xff]), 0..18),
            b in proptest::collection::vec(proptest::sample::select(vec![0u8, 1, 0x80, 0xff]), 0..18),
            cut in 0usize..18,
        ) {
            // b2: a prefix of a (or a itself), or a with zeros appended
            let b2: Vec<u8> = if cut <= a.len() {
                a[..cut].to_vec()
            } else {
                a.iter().copied().chain(std::iter::repeat_n(0, cut - a.len())).collect()
            };
            for (x, y) in [(&a, &b), (&a, &b2), (&b2, &a)] {
                let (kx, ky) = (IndexKey::new(x), IndexKey::new(y));
                proptest::prop_assert_eq!(kx.cmp(&ky), x.cmp(y), "{:?} vs {:?}", x, y);
                proptest::prop_assert_eq!(kx == ky, x == y);
            }
        }
    }

    #[test]
    fn inline_order_known_cases() {
        let order = [
            &b""[..],
            b"\0",
            b"\0\0",
            b"\0\x01",
            b"a",
            b"a\0",
            b"a\0\0\0\0\0\0\0\0\0\0\0\0\0",   // 15 bytes: inline
            b"a\0\0\0\0\0\0\0\0\0\0\0\0\0\0", // 16 bytes: heap
            b"a\x01",
            b"ab",
            b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
            b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
        ];
        for (i, x) in order.iter().enumerate() {
            for (j, y) in order.iter().enumerate() {
                assert_eq!(
                    IndexKey::new(x).cmp(&IndexKey::new(y)),
                    i.cmp(&j),
                    "{x:?} vs {y:?}"
                );
            }
        }
        // and the map finds them all by bytes
        let mut ix = TreeIndex::new();
        for (i, k) in order.iter().enumerate() {
            ix.put(k, r(2 + i as i64));
        }
        for (i, k) in order.iter().enumerate() {
            assert_eq!(ix.get(k, 100).unwrap().modified, r(2 + i as i64), "{k:?}");
        }
        assert_eq!(ix.live_keys(), order.len() as u64);
    }

    #[test]
    fn tree_index_ranges_over_inline_and_heap_keys() {
        let mut ix = TreeIndex::new();
        let keys: Vec<Vec<u8>> = [
            &b"a"[..],
            b"abcdefghijklmno",  // 15: inline
            b"abcdefghijklmnop", // 16: heap
            b"abcdefghijklmnopq",
            b"b",
        ]
        .iter()
        .map(|k| k.to_vec())
        .collect();
        for (i, k) in keys.iter().enumerate().rev() {
            ix.put(k, r(2 + i as i64));
        }
        let mut seen = Vec::new();
        ix.range(b"a", b"b", 100, |k, f| {
            seen.push((k.to_vec(), f.modified));
            true
        });
        let want: Vec<_> = keys[..4]
            .iter()
            .enumerate()
            .map(|(i, k)| (k.clone(), r(2 + i as i64)))
            .collect();
        assert_eq!(seen, want);
        assert!(ix.tombstone(b"abcdefghijklmnop", r(20)));
        assert_eq!(ix.get(b"abcdefghijklmnop", 21), None);
        assert_eq!(ix.get(b"abcdefghijklmno", 21).unwrap().modified, r(3));
        assert_eq!(ix.live_keys(), 4);
    }
}
