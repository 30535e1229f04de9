//! Transactions: [`ReadTxn`] (a stable snapshot, many at once) and [`WriteTxn`] (one at a time).
//!
//! The commit protocol lives in [`WriteTxn::commit`]; the crate docs explain why it is crash-safe.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::bucket::{Bucket, BucketMut};
use crate::check::{self, Report};
use crate::db::{CommitMode, Shared};
use crate::error::{Error, PageId, Result};
use crate::freelist::{Allocator, FreeList};
use crate::mapping::{Mapping, PageSource};
use crate::meta::Meta;
use crate::node::{self, RootRef};
use crate::page::{self, Kind};
use crate::tree::{self, Ctx, Spill, Tree};

/// Encoded catalog record of a bucket: root page and key count.
pub(crate) fn encode_record(root: PageId, count: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(16);
    v.extend_from_slice(&root.to_le_bytes());
    v.extend_from_slice(&count.to_le_bytes());
    v
}

/// Decode a catalog record.
pub(crate) fn decode_record(b: &[u8]) -> Result<(PageId, u64)> {
    if b.len() != 16 {
        return Err(Error::corrupt(
            0,
            format!("bucket record of {} bytes, expected 16", b.len()),
        ));
    }
    Ok((
        page::rd_u64(b, 0).unwrap_or(0),
        page::rd_u64(b, 8).unwrap_or(0),
    ))
}

fn lookup_bucket<'a>(
    src: &PageSource<'a>,
    catalog_root: PageId,
    name: &[u8],
) -> Result<Option<(PageId, u64)>> {
    match node::get(RootRef::of_page(catalog_root), src, name)? {
        None => Ok(None),
        Some(rec) => decode_record(rec).map(Some),
    }
}

/// Read view of the bucket `name` as the committed catalog at `catalog_root` records it.
fn committed_bucket<'a>(
    src: PageSource<'a>,
    catalog_root: PageId,
    name: &[u8],
) -> Result<Bucket<'a>> {
    match lookup_bucket(&src, catalog_root, name)? {
        None => Err(Error::BucketNotFound(name.to_vec())),
        Some((root, count)) => Ok(Bucket {
            src,
            root: RootRef::of_page(root),
            count,
        }),
    }
}

fn list_buckets(src: &PageSource<'_>, catalog_root: PageId) -> Result<Vec<Vec<u8>>> {
    let b = Bucket {
        src: *src,
        root: RootRef::of_page(catalog_root),
        count: 0,
    };
    b.iter().map(|r| r.map(|(k, _)| k.to_vec())).collect()
}

/// A read-only snapshot of the database as of the last commit before it began.
///
/// It owns its resources (`'static`, `Send`), so it can move to another thread. While it is open
/// the pages of its snapshot are not reused; drop it promptly to let the file stay small.
pub struct ReadTxn {
    pub(crate) shared: Arc<Shared>,
    pub(crate) mapping: Arc<Mapping>,
    pub(crate) meta: Meta,
}

impl ReadTxn {
    pub(crate) fn src(&self) -> PageSource<'_> {
        PageSource::new(&self.mapping, self.meta.page_count)
    }

    /// The id of the transaction whose commit this snapshot shows.
    pub fn txid(&self) -> u64 {
        self.meta.txid
    }

    /// Read view of the bucket `name`, or [`Error::BucketNotFound`].
    pub fn bucket(&self, name: &[u8]) -> Result<Bucket<'_>> {
        committed_bucket(self.src(), self.meta.catalog_root, name)
    }

    /// Names of all buckets, sorted.
    pub fn bucket_names(&self) -> Result<Vec<Vec<u8>>> {
        list_buckets(&self.src(), self.meta.catalog_root)
    }

    /// Stream this snapshot as a database file to `w` (see [`crate::Db::snapshot_to`]); returns
    /// the bytes written. Writers may keep committing meanwhile.
    pub fn snapshot_to<W: std::io::Write + ?Sized>(&self, w: &mut W) -> Result<u64> {
        crate::snapshot::write_snapshot(self, w)
    }

    /// Integrity check of this snapshot (see [`crate::Db::check`]).
    pub fn check(&self) -> Result<Report> {
        check::check_snapshot(&self.src(), &self.meta, None)
    }
}

impl Drop for ReadTxn {
    fn drop(&mut self) {
        self.shared.unregister_reader(self.meta.txid);
    }
}

/// The one open write transaction. Changes are visible only through it until [`WriteTxn::commit`];
/// dropping it (or [`WriteTxn::rollback`]) discards them.
pub struct WriteTxn {
    pub(crate) shared: Arc<Shared>,
    pub(crate) mapping: Arc<Mapping>,
    pub(crate) base: Meta,
    pub(crate) freelist: Option<FreeList>,
    /// Buckets touched by this transaction; `None` = deleted in this transaction.
    pub(crate) buckets: BTreeMap<Vec<u8>, Option<Tree>>,
    /// Pages this transaction made unreachable (freed at commit, reusable later).
    pub(crate) freed: Vec<(PageId, u64)>,
}

impl WriteTxn {
    fn src(&self) -> PageSource<'_> {
        PageSource::new(&self.mapping, self.base.page_count)
    }

    /// The id this transaction will commit as.
    pub fn txid(&self) -> u64 {
        self.base.txid + 1
    }

    fn load(&mut self, name: &[u8]) -> Result<bool> {
        if let Some(t) = self.buckets.get(name) {
            return Ok(t.is_some());
        }
        let src = PageSource::new(&self.mapping, self.base.page_count);
        match lookup_bucket(&src, self.base.catalog_root, name)? {
            None => Ok(false),
            Some((root, count)) => {
                self.buckets
                    .insert(name.to_vec(), Some(Tree::from_root(root, count)));
                Ok(true)
            }
        }
    }

    /// Create an empty bucket; [`Error::BucketExists`] if it exists.
    pub fn create_bucket(&mut self, name: &[u8]) -> Result<()> {
        if self.load(name)? {
            return Err(Error::BucketExists(name.to_vec()));
        }
        if name.len() > crate::MAX_KEY_LEN {
            return Err(Error::KeyTooLarge {
                len: name.len(),
                max: crate::MAX_KEY_LEN,
            });
        }
        self.buckets.insert(
            name.to_vec(),
            Some(Tree {
                root: None,
                count: 0,
                dirty: true,
            }),
        );
        Ok(())
    }

    /// Create the bucket unless it exists. Returns true if it was created.
    pub fn create_bucket_if_missing(&mut self, name: &[u8]) -> Result<bool> {
        if self.load(name)? {
            return Ok(false);
        }
        self.create_bucket(name)?;
        Ok(true)
    }

    /// Delete a bucket and all its keys; [`Error::BucketNotFound`] if it does not exist.
    pub fn delete_bucket(&mut self, name: &[u8]) -> Result<()> {
        if !self.load(name)? {
            return Err(Error::BucketNotFound(name.to_vec()));
        }
        let t = self
            .buckets
            .get_mut(name)
            .and_then(|t| t.take())
            .expect("loaded");
        if let Some(root) = &t.root {
            let mut ctx = Ctx {
                src: PageSource::new(&self.mapping, self.base.page_count),
                freed: &mut self.freed,
            };
            tree::free_subtree(root, &mut ctx, 0)?;
        }
        Ok(())
    }

    /// Read view of a bucket including this transaction's changes.
    pub fn bucket(&self, name: &[u8]) -> Result<Bucket<'_>> {
        let src = self.src();
        match self.buckets.get(name) {
            Some(None) => Err(Error::BucketNotFound(name.to_vec())),
            Some(Some(t)) => Ok(Bucket {
                src,
                root: RootRef::of_child(t.root.as_ref()),
                count: t.count,
            }),
            None => committed_bucket(src, self.base.catalog_root, name),
        }
    }

    /// Read-write access to a bucket; [`Error::BucketNotFound`] if it does not exist.
    pub fn bucket_mut(&mut self, name: &[u8]) -> Result<BucketMut<'_>> {
        if !self.load(name)? {
            return Err(Error::BucketNotFound(name.to_vec()));
        }
        let tree = self
            .buckets
            .get_mut(name)
            .and_then(|t| t.as_mut())
            .expect("loaded");
        Ok(BucketMut {
            tree,
            src: PageSource::new(&self.mapping, self.base.page_count),
            freed: &mut self.freed,
        })
    }

    /// Names of all buckets (including ones created in this transaction), sorted.
    pub fn bucket_names(&self) -> Result<Vec<Vec<u8>>> {
        let mut names: std::collections::BTreeSet<Vec<u8>> =
            list_buckets(&self.src(), self.base.catalog_root)?
                .into_iter()
                .collect();
        for (n, t) in &self.buckets {
            if t.is_some() {
                names.insert(n.clone());
            } else {
                names.remove(n);
            }
        }
        Ok(names.into_iter().collect())
    }

    /// Discard every change (same as dropping the transaction).
    pub fn rollback(self) {}

    /// Make every change durable and visible to transactions that begin afterwards.
    ///
    /// Protocol: (1) write every changed node, value and the new freelist into pages that no
    /// committed meta reaches (`pwrite`), growing the file first if needed; (2) `fdatasync`;
    /// (3) write the new meta into slot `txid % 2`; (4) `fdatasync`. A crash before (3) completes
    /// leaves the previous meta the newest valid one; after (4) the new state is durable.
    /// With [`crate::CommitMode::OneFsync`], step (2) is skipped and step (1) also writes a
    /// commit record that `open` checks before trusting the new meta.
    ///
    /// A transaction that changed nothing writes nothing (no fsync).
    ///
    /// On an error before step (3) nothing changed on disk that matters and the database stays
    /// usable. On an error at or after step (3) the handle is poisoned ([`Error::Poisoned`] for
    /// later writes): whether the commit survived is known only after reopening.
    pub fn commit(mut self) -> Result<()> {
        let mut freelist = self.freelist.take().expect("write txn owns the freelist");
        let result = self.commit_inner(&mut freelist);
        self.freelist = Some(freelist);
        result
    }

    fn commit_inner(&mut self, freelist: &mut FreeList) -> Result<()> {
        let changed = self
            .buckets
            .values()
            .any(|t| t.as_ref().is_none_or(|t| t.dirty));
        if !changed && self.freed.is_empty() {
            // Nothing to write: no new meta, no fsync.
            return Ok(());
        }
        let shared = self.shared.clone();
        let ps = shared.page_size;
        let txid = self.txid();
        let src = PageSource::new(&self.mapping, self.base.page_count);
        let mut freed = std::mem::take(&mut self.freed);
        let mut catalog = Tree::from_root(self.base.catalog_root, 0);
        let mut sp = Spill {
            ctx: Ctx {
                src,
                freed: &mut freed,
            },
            alloc: Allocator::new(freelist, self.base.page_count),
            writes: Vec::new(),
            txid,
        };
        let spilled = (|| -> Result<PageId> {
            let buckets = std::mem::take(&mut self.buckets);
            for (name, t) in buckets {
                match t {
                    None => {
                        if lookup_bucket(&src, self.base.catalog_root, &name)?.is_some() {
                            tree::delete(&mut catalog, &name, &mut sp.ctx)?;
                        }
                    }
                    Some(mut t) if t.dirty => {
                        let root = tree::spill_tree(&mut t, &mut sp)?;
                        tree::put(
                            &mut catalog,
                            &name,
                            encode_record(root, t.count),
                            &mut sp.ctx,
                        )?;
                    }
                    Some(_) => {}
                }
            }
            if !catalog.dirty {
                return Ok(self.base.catalog_root);
            }
            tree::spill_tree(&mut catalog, &mut sp)
        })();
        let catalog_root = match spilled {
            Ok(r) => r,
            Err(e) => {
                sp.alloc.undo();
                return Err(e);
            }
        };
        let Spill {
            alloc: mut allocator,
            mut writes,
            ..
        } = sp;
        // The old freelist run (and commit record) are garbage after this commit.
        for (old, kind) in [
            (self.base.freelist, Kind::Freelist),
            (self.base.commit_record, Kind::CommitRecord),
        ] {
            if old == 0 {
                continue;
            }
            match src.page(old, &[kind]) {
                Ok(p) => freed.push((old, (p.data.len() / ps) as u64)),
                Err(e) => {
                    allocator.undo();
                    return Err(e);
                }
            }
        }
        // The new freelist: free + pending + freed-now. Allocating its own run (and the commit
        // record's) can only shrink it, so the estimate is an upper bound.
        let estimate = allocator.freelist.all_extents(&freed).len();
        let freelist_pages = if estimate == 0 {
            0
        } else {
            page::pages_for(page::freelist_bytes(estimate), ps)
        };
        let freelist_page = if freelist_pages == 0 {
            0
        } else {
            allocator.alloc(freelist_pages)
        };
        let one_fsync = shared.commit_mode == CommitMode::OneFsync;
        let record = if one_fsync {
            let n = page::pages_for(page::freelist_bytes(writes.len() + 1), ps);
            Some((allocator.alloc(n), n))
        } else {
            None
        };
        if freelist_page != 0 {
            let extents = allocator.freelist.all_extents(&freed);
            debug_assert!(extents.len() <= estimate);
            writes.push((
                freelist_page,
                page::encode_freelist(freelist_page, txid, ps, freelist_pages, &extents),
            ));
        }
        let commit_record = match record {
            None => 0,
            Some((pid, n)) => {
                let runs: Vec<(PageId, u32, u32)> = writes
                    .iter()
                    .map(|(p, b)| (*p, (b.len() / ps) as u32, page::rd_u32(b, 0).unwrap_or(0)))
                    .collect();
                writes.push((pid, page::encode_commit_record(pid, txid, ps, n, &runs)));
                pid
            }
        };
        let page_count = allocator.page_count;
        let meta = Meta {
            page_size: ps as u32,
            txid,
            catalog_root,
            freelist: freelist_page,
            page_count,
            commit_record,
        };
        if let Err(e) = shared.write_pages(&mut writes, page_count) {
            allocator.undo();
            return Err(e);
        }
        drop(allocator);
        // Steps (3) and (4): from here on a failure poisons the handle.
        shared.write_meta(&meta)?;
        freelist.add_pending(txid, freed);
        let written: Vec<(PageId, u64)> = writes
            .iter()
            .map(|(p, b)| (*p, (b.len() / ps) as u64))
            .collect();
        shared.publish(meta, &written, freelist)
    }
}

impl Drop for WriteTxn {
    fn drop(&mut self) {
        if let Some(fl) = self.freelist.take() {
            self.shared.end_write(fl);
        }
    }
}
