//! The database handle: open/create, transactions, stats, snapshots, defragmentation, checks.

use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use parking_lot::{Condvar, Mutex};

use crate::check::{self, Report};
use crate::error::{Error, PageId, Result};
use crate::freelist::FreeList;
use crate::mapping::{Mapping, PageSource};
use crate::meta::{Meta, MetaError};
use crate::page::{Kind, HEADER};
use crate::storage::{FileStorage, MemStorage, Storage};
use crate::txn::{ReadTxn, WriteTxn};

/// Default page size (4 KiB).
pub const DEFAULT_PAGE_SIZE: u32 = 4096;

/// The file grows by doubling, but by at most this many bytes at a time.
const GROWTH_CAP: u64 = 16 << 20;

/// A page size is a power of two between 1 KiB and 64 KiB.
pub fn valid_page_size(ps: u32) -> bool {
    ps.is_power_of_two() && (1024..=65536).contains(&ps)
}

/// How a commit makes itself durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CommitMode {
    /// Write the pages, `fdatasync`, write the meta, `fdatasync` (bbolt's and LMDB's protocol).
    /// A meta can only reach the disk after every page it names.
    #[default]
    TwoFsyncs,
    /// Write the pages, a *commit record* listing every page run with its checksum, and the meta,
    /// then one `fdatasync` (redb's "1PC+C"). The disk may persist the meta before the pages, so
    /// open verifies every run of the newest commit against its record and falls back to the
    /// previous commit if any is missing or torn. Same durability when `commit` returns, one
    /// fsync instead of two.
    OneFsync,
}

/// How to open a database.
#[derive(Debug, Clone)]
pub struct Options {
    /// Page size for a *new* file (an existing file keeps its own). Default 4096.
    pub page_size: u32,
    /// Create the file if it does not exist. Default true.
    pub create: bool,
    /// `fdatasync` at every commit (the crash-safety guarantee). Default true. Turning it off is
    /// only for tests and bulk loads that would rebuild the file after a crash.
    pub sync: bool,
    /// Two fsyncs per commit (default) or one fsync with a verified commit record.
    pub commit_mode: CommitMode,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            page_size: DEFAULT_PAGE_SIZE,
            create: true,
            sync: true,
            commit_mode: CommitMode::TwoFsyncs,
        }
    }
}

/// Sizes and counters of a database (etcd reports `dbSize` = `file_size` and `dbSizeInUse` =
/// `size_in_use`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    /// Bytes of the file on disk (including room grown ahead of need).
    pub file_size: u64,
    /// Bytes of pages holding live data: `(page_count - free_pages - pending_pages) * page_size`.
    pub size_in_use: u64,
    /// Page size of the file.
    pub page_size: u32,
    /// High-water mark: pages below it are in use or free.
    pub page_count: u64,
    /// Pages free for reuse now.
    pub free_pages: u64,
    /// Pages freed but still visible to an open reader (or to the last commit's predecessor).
    pub pending_pages: u64,
    /// Id of the last committed transaction.
    pub txid: u64,
    /// Read transactions currently open.
    pub open_read_txns: usize,
}

pub(crate) struct State {
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) meta: Meta,
    pub(crate) mapping: Arc<Mapping>,
    /// Snapshot txid -> number of open readers on it.
    pub(crate) readers: BTreeMap<u64, usize>,
    pub(crate) poisoned: bool,
    pub(crate) file_len: u64,
    pub(crate) free_pages: u64,
    pub(crate) pending_pages: u64,
}

pub(crate) struct WriterSlot {
    /// `Some` while no write transaction is open; the open one owns it.
    freelist: Option<FreeList>,
}

pub(crate) struct Shared {
    pub(crate) page_size: usize,
    pub(crate) sync: bool,
    pub(crate) commit_mode: CommitMode,
    pub(crate) state: Mutex<State>,
    writer: Mutex<WriterSlot>,
    writer_cv: Condvar,
    registered: Option<PathBuf>,
}

fn registry() -> &'static Mutex<HashSet<PathBuf>> {
    static R: OnceLock<Mutex<HashSet<PathBuf>>> = OnceLock::new();
    R.get_or_init(|| Mutex::new(HashSet::new()))
}

impl Drop for Shared {
    fn drop(&mut self) {
        if let Some(p) = &self.registered {
            registry().lock().remove(p);
        }
    }
}

impl Shared {
    pub(crate) fn unregister_reader(&self, txid: u64) {
        let mut st = self.state.lock();
        if let Some(n) = st.readers.get_mut(&txid) {
            *n -= 1;
            if *n == 0 {
                st.readers.remove(&txid);
            }
        }
    }

    pub(crate) fn end_write(&self, fl: FreeList) {
        let mut w = self.writer.lock();
        w.freelist = Some(fl);
        self.writer_cv.notify_one();
    }

    fn storage(&self) -> Arc<dyn Storage> {
        self.state.lock().storage.clone()
    }

    /// Steps (1) and (2) of the commit: grow, write pages (coalesced, sorted), sync (the sync is
    /// left to the meta step in [`CommitMode::OneFsync`]).
    pub(crate) fn write_pages(
        &self,
        writes: &mut [(PageId, Vec<u8>)],
        page_count: u64,
    ) -> Result<()> {
        let storage = self.storage();
        let ps = self.page_size as u64;
        let needed = page_count * ps;
        let file_len = self.state.lock().file_len;
        if needed > file_len {
            // Grow ahead of need (double, capped at 16 MiB steps): remaps stay rare while the
            // unused tail of the file stays small (etcd reports the file size as dbSize).
            let step = file_len.clamp(ps * 16, GROWTH_CAP);
            let new_len = needed.max(file_len + step).div_ceil(ps) * ps;
            storage.set_len(new_len)?;
            self.state.lock().file_len = new_len;
        }
        writes.sort_unstable_by_key(|w| w.0);
        let mut i = 0;
        let mut buf: Vec<u8> = Vec::new();
        while i < writes.len() {
            let start = writes[i].0;
            let mut next = start + (writes[i].1.len() as u64) / ps;
            let mut j = i + 1;
            while j < writes.len() && writes[j].0 == next && buf.len() < (8 << 20) {
                next += (writes[j].1.len() as u64) / ps;
                j += 1;
            }
            if j == i + 1 {
                storage.write_at(&writes[i].1, start * ps)?;
            } else {
                buf.clear();
                for w in &writes[i..j] {
                    buf.extend_from_slice(&w.1);
                }
                storage.write_at(&buf, start * ps)?;
            }
            i = j;
        }
        if self.sync && self.commit_mode == CommitMode::TwoFsyncs {
            storage.sync_data()?;
        }
        Ok(())
    }

    /// Steps (3) and (4): write the meta into slot `txid % 2`, sync. Poisons on failure.
    pub(crate) fn write_meta(&self, meta: &Meta) -> Result<()> {
        let storage = self.storage();
        let slot = meta.txid % 2;
        let r = storage
            .write_at(&meta.encode(slot), slot * self.page_size as u64)
            .and_then(|_| {
                if self.sync {
                    storage.sync_data()
                } else {
                    Ok(())
                }
            });
        if let Err(e) = r {
            self.state.lock().poisoned = true;
            return Err(e.into());
        }
        Ok(())
    }

    /// Make a durable commit visible to new readers.
    pub(crate) fn publish(
        &self,
        meta: Meta,
        written: &[(PageId, u64)],
        fl: &FreeList,
    ) -> Result<()> {
        let mut st = self.state.lock();
        // Pages rewritten by this commit must be re-verified by whoever reads them next.
        for &(p, _) in written {
            st.mapping.unverify(p);
        }
        let needed = (meta.page_count as usize) * self.page_size;
        if !st.storage.map_tracks_writes() || st.mapping.len() < needed {
            match st.storage.map() {
                Ok(m) => st.mapping = Arc::new(Mapping::new(m, self.page_size)),
                Err(e) => {
                    st.poisoned = true;
                    return Err(e.into());
                }
            }
        }
        st.meta = meta;
        st.free_pages = fl.free_pages();
        st.pending_pages = fl.pending_pages();
        Ok(())
    }

    fn begin_read(self: &Arc<Self>) -> ReadTxn {
        let mut st = self.state.lock();
        let meta = st.meta;
        *st.readers.entry(meta.txid).or_insert(0) += 1;
        ReadTxn {
            shared: self.clone(),
            mapping: st.mapping.clone(),
            meta,
        }
    }

    fn start_write(self: &Arc<Self>, mut fl: FreeList) -> WriteTxn {
        let (meta, mapping, oldest) = {
            let st = self.state.lock();
            (
                st.meta,
                st.mapping.clone(),
                st.readers.keys().next().copied(),
            )
        };
        fl.release(oldest);
        WriteTxn {
            shared: self.clone(),
            mapping,
            base: meta,
            freelist: Some(fl),
            buckets: BTreeMap::new(),
            freed: Vec::new(),
        }
    }

    fn take_writer(&self, block: bool) -> Result<FreeList> {
        if self.state.lock().poisoned {
            return Err(Error::Poisoned);
        }
        let mut w = self.writer.lock();
        loop {
            if let Some(fl) = w.freelist.take() {
                return Ok(fl);
            }
            if !block {
                return Err(Error::WriteTxnActive);
            }
            self.writer_cv.wait(&mut w);
        }
    }
}

/// A keel B+tree database: one file, many concurrent readers, one writer at a time.
///
/// `Db` is a cheap handle (`Clone`, `Send`, `Sync`); clones share the same open file.
#[derive(Clone)]
pub struct Db {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("path", &self.shared.registered)
            .field("stats", &self.stats())
            .finish()
    }
}

/// Read both metas; returns the valid ones, newest first.
fn read_metas(storage: &dyn Storage, opts: &Options) -> Result<Vec<Meta>> {
    let len = storage.len()?;
    let mut first = vec![0u8; (len.min(4096)) as usize];
    storage.read_at(&mut first, 0)?;
    // The page size: from meta 0 if its magic is intact, else probe for meta 1.
    let mut candidates: Vec<u32> = Vec::new();
    if let Some(ps) = Meta::peek_page_size(&first) {
        if valid_page_size(ps) {
            candidates.push(ps);
        }
    }
    for ps in [opts.page_size, 1024, 2048, 4096, 8192, 16384, 32768, 65536] {
        if valid_page_size(ps) && !candidates.contains(&ps) {
            candidates.push(ps);
        }
    }
    let mut errors: Vec<(MetaError, MetaError)> = Vec::new();
    for ps in candidates {
        let ps64 = ps as u64;
        let read = |slot: u64| -> std::result::Result<Meta, MetaError> {
            let off = slot * ps64;
            if off + (HEADER + crate::meta::META_LEN) as u64 > len {
                return Err(MetaError::TooShort);
            }
            let mut buf = vec![0u8; HEADER + crate::meta::META_LEN];
            storage
                .read_at(&mut buf, off)
                .map_err(|e| MetaError::Invalid(format!("read failed: {e}")))?;
            let m = Meta::decode(&buf, slot)?;
            if m.page_size != ps {
                return Err(MetaError::Invalid(format!(
                    "page size {} in a {ps}-byte layout",
                    m.page_size
                )));
            }
            Ok(m)
        };
        let (m0, m1) = (read(0), read(1));
        let found = match (m0, m1) {
            (Ok(a), Ok(b)) if b.txid > a.txid => vec![b, a],
            (Ok(a), Ok(b)) => vec![a, b],
            (Ok(a), Err(_)) | (Err(_), Ok(a)) => vec![a],
            (Err(a), Err(b)) => {
                errors.push((a, b));
                Vec::new()
            }
        };
        if !found.is_empty() {
            return Ok(found);
        }
    }
    // No valid meta at any page size. Report the first (most likely) layout's reasons.
    let (a, b) = errors
        .into_iter()
        .next()
        .expect("at least one candidate page size");
    if a == MetaError::TooShort || (b == MetaError::TooShort && a != MetaError::BadMagic) {
        let ps = Meta::peek_page_size(&first)
            .filter(|p| valid_page_size(*p))
            .unwrap_or(opts.page_size);
        return Err(Error::Truncated {
            expected: 2 * ps as u64,
            actual: len,
        });
    }
    if a == MetaError::BadMagic && (b == MetaError::BadMagic || len < 2 * 1024) {
        if len < (HEADER + crate::meta::META_LEN) as u64 {
            return Err(Error::Truncated {
                expected: (HEADER + crate::meta::META_LEN) as u64,
                actual: len,
            });
        }
        return Err(Error::NotADatabase);
    }
    for e in [&a, &b] {
        if let MetaError::Version(v) = e {
            return Err(Error::UnsupportedVersion(*v));
        }
    }
    Err(Error::BothMetasCorrupt {
        meta0: a.to_string(),
        meta1: b.to_string(),
    })
}

/// Write a fresh, empty database (two metas) to `storage`.
fn init_storage(storage: &dyn Storage, page_size: u32, txid: u64, sync: bool) -> Result<()> {
    let ps = page_size as u64;
    storage.set_len(2 * ps)?;
    for t in [txid, txid + 1] {
        let m = Meta {
            page_size,
            txid: t,
            catalog_root: 0,
            freelist: 0,
            page_count: 2,
            commit_record: 0,
        };
        storage.write_at(&m.encode(t % 2), (t % 2) * ps)?;
    }
    if sync {
        storage.sync_data()?;
    }
    Ok(())
}

/// Choose the newest meta whose commit is complete on disk.
///
/// A meta without a commit record (two-fsync commit) was written after its pages were durable,
/// so it is complete if the file is long enough. A meta with a commit record (one-fsync commit)
/// is complete if every run the record lists is present with the recorded checksum and txid.
fn choose_meta(storage: &dyn Storage, mapping: &Mapping, metas: Vec<Meta>) -> Result<Meta> {
    let len = storage.len()?;
    let mut last_err = None;
    for m in metas {
        let need = m.page_count * m.page_size as u64;
        let r = if need > len {
            Err(Error::Truncated {
                expected: need,
                actual: len,
            })
        } else {
            verify_commit(mapping, &m)
        };
        match r {
            Ok(()) => return Ok(m),
            // A two-fsync meta whose pages are missing means the file was damaged, not a crash.
            Err(e) if m.commit_record == 0 => return Err(e),
            Err(e) => last_err = Some(e),
        }
    }
    Err(last_err.expect("read_metas returns at least one meta"))
}

/// Check every run of a one-fsync commit against its commit record.
fn verify_commit(mapping: &Mapping, meta: &Meta) -> Result<()> {
    if meta.commit_record == 0 {
        return Ok(());
    }
    let src = PageSource::new(mapping, meta.page_count);
    let rec = src.page(meta.commit_record, &[Kind::CommitRecord])?;
    if rec.txid() != meta.txid {
        return Err(Error::corrupt(
            meta.commit_record,
            format!(
                "commit record of txid {}, meta is txid {}",
                rec.txid(),
                meta.txid
            ),
        ));
    }
    let ps = meta.page_size as usize;
    for (p, n, c) in rec.commit_record_runs()? {
        let pg = src.page(
            p,
            &[Kind::Branch, Kind::Leaf, Kind::Overflow, Kind::Freelist],
        )?;
        if pg.txid() != meta.txid || pg.stored_checksum() != c || pg.data.len() != n as usize * ps {
            return Err(Error::corrupt(
                p,
                format!("run does not match the commit record of txid {}", meta.txid),
            ));
        }
    }
    Ok(())
}

fn load_freelist(mapping: &Mapping, meta: &Meta) -> Result<FreeList> {
    if meta.freelist == 0 {
        return Ok(FreeList::default());
    }
    let src = PageSource::new(mapping, meta.page_count);
    let p = src.page(meta.freelist, &[Kind::Freelist])?;
    let ext = p.freelist_extents()?;
    for &(s, n) in &ext {
        if s < 2 || s.checked_add(n).is_none_or(|e| e > meta.page_count) {
            return Err(Error::corrupt(
                meta.freelist,
                format!("free extent {s}+{n} out of range"),
            ));
        }
    }
    Ok(FreeList::from_extents(&ext))
}

fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

impl Db {
    /// Open the database file at `path`, creating it if `opts.create` and it does not exist.
    ///
    /// Errors: [`Error::NotADatabase`], [`Error::Truncated`], [`Error::BothMetasCorrupt`],
    /// [`Error::UnsupportedVersion`], [`Error::AlreadyOpen`], [`Error::Io`].
    pub fn open(path: impl AsRef<Path>, opts: Options) -> Result<Db> {
        let path = path.as_ref();
        if !valid_page_size(opts.page_size) {
            return Err(Error::InvalidOptions(format!(
                "page size {} is not a power of two in 1024..=65536",
                opts.page_size
            )));
        }
        let existed = path.exists();
        let storage = FileStorage::open(path, opts.create)?;
        let canon = std::fs::canonicalize(path)?;
        if !registry().lock().insert(canon.clone()) {
            return Err(Error::AlreadyOpen(canon));
        }
        let r = Db::open_storage_inner(Arc::new(storage), opts, Some(canon.clone()), 0);
        if r.is_err() {
            registry().lock().remove(&canon);
        } else if !existed {
            sync_dir(path);
        }
        r
    }

    /// Open a database on any [`Storage`] (for example a [`MemStorage`] in tests). An empty
    /// storage is initialized as a new database.
    pub fn open_storage(storage: Arc<dyn Storage>, opts: Options) -> Result<Db> {
        Db::open_storage_inner(storage, opts, None, 0)
    }

    /// A new, empty in-memory database (nothing is persisted).
    pub fn in_memory() -> Result<Db> {
        Db::open_storage(Arc::new(MemStorage::new()), Options::default())
    }

    fn open_storage_inner(
        storage: Arc<dyn Storage>,
        opts: Options,
        registered: Option<PathBuf>,
        first_txid: u64,
    ) -> Result<Db> {
        if !valid_page_size(opts.page_size) {
            return Err(Error::InvalidOptions(format!(
                "invalid page size {}",
                opts.page_size
            )));
        }
        if storage.len()? == 0 {
            init_storage(&*storage, opts.page_size, first_txid, opts.sync)?;
        }
        let metas = read_metas(&*storage, &opts)?;
        let ps = metas[0].page_size as usize;
        let mapping = Mapping::new(storage.map()?, ps);
        let meta = choose_meta(&*storage, &mapping, metas)?;
        let freelist = load_freelist(&mapping, &meta)?;
        let file_len = storage.len()?;
        let shared = Shared {
            page_size: ps,
            sync: opts.sync,
            commit_mode: opts.commit_mode,
            state: Mutex::new(State {
                storage,
                meta,
                mapping: Arc::new(mapping),
                readers: BTreeMap::new(),
                poisoned: false,
                file_len,
                free_pages: freelist.free_pages(),
                pending_pages: 0,
            }),
            writer: Mutex::new(WriterSlot {
                freelist: Some(freelist),
            }),
            writer_cv: Condvar::new(),
            registered,
        };
        Ok(Db {
            shared: Arc::new(shared),
        })
    }

    /// Begin a read transaction: a stable snapshot of the last commit. Never blocks on writers.
    pub fn begin_read(&self) -> ReadTxn {
        self.shared.begin_read()
    }

    /// Begin the write transaction, waiting while another one is open.
    /// Fails with [`Error::Poisoned`] after a failed commit.
    ///
    /// Waiting is unbounded: a thread that already holds a [`WriteTxn`] and calls this (or
    /// [`Db::check`] or [`Db::defragment`], which also wait for the writer) deadlocks. Use
    /// [`Db::try_begin_write`] where that can happen.
    pub fn begin_write(&self) -> Result<WriteTxn> {
        let fl = self.shared.take_writer(true)?;
        Ok(self.shared.start_write(fl))
    }

    /// Begin the write transaction, or fail with [`Error::WriteTxnActive`] if one is open.
    pub fn try_begin_write(&self) -> Result<WriteTxn> {
        let fl = self.shared.take_writer(false)?;
        Ok(self.shared.start_write(fl))
    }

    /// Sizes and counters.
    pub fn stats(&self) -> Stats {
        let st = self.shared.state.lock();
        let ps = self.shared.page_size as u64;
        let used = st
            .meta
            .page_count
            .saturating_sub(st.free_pages + st.pending_pages);
        Stats {
            file_size: st.storage.len().unwrap_or(st.file_len),
            size_in_use: used * ps,
            page_size: ps as u32,
            page_count: st.meta.page_count,
            free_pages: st.free_pages,
            pending_pages: st.pending_pages,
            txid: st.meta.txid,
            open_read_txns: st.readers.values().sum(),
        }
    }

    /// The file path, for a file-backed database.
    pub fn path(&self) -> Option<PathBuf> {
        self.shared
            .state
            .lock()
            .storage
            .path()
            .map(Path::to_path_buf)
    }

    /// Full integrity check of the last committed state: every page reachable exactly once or
    /// free, checksums, node kinds, key order within and across nodes, equal leaf depth, bucket key
    /// counts, and the in-memory freelist equal to the one on disk. Waits for an open write
    /// transaction to finish. `Err(Error::CheckFailed)` lists the problems found.
    pub fn check(&self) -> Result<Report> {
        let fl = self.shared.take_writer(true).or_else(|e| match e {
            // A poisoned handle can still be checked (read-only).
            Error::Poisoned => {
                let mut w = self.shared.writer.lock();
                loop {
                    if let Some(fl) = w.freelist.take() {
                        break Ok(fl);
                    }
                    self.shared.writer_cv.wait(&mut w);
                }
            }
            e => Err(e),
        })?;
        let rtx = self.begin_read();
        let r = check::check_snapshot(&rtx.src(), &rtx.meta, Some(&fl));
        drop(rtx);
        self.shared.end_write(fl);
        r
    }

    /// Stream a consistent copy of the last committed state to `w` while writes go on; returns
    /// the bytes written. The copy is itself a database file (open it with [`Db::open`] or
    /// [`Db::restore`]). Free pages are written as zeros.
    pub fn snapshot_to<W: Write + ?Sized>(&self, w: &mut W) -> Result<u64> {
        let rtx = self.begin_read();
        crate::snapshot::write_snapshot(&rtx, w)
    }

    /// Write a snapshot stream from `r` to a new file at `path` (via a temporary file and an
    /// atomic rename), verify it with the integrity check, and open it.
    pub fn restore<R: Read + ?Sized>(
        r: &mut R,
        path: impl AsRef<Path>,
        opts: Options,
    ) -> Result<Db> {
        crate::snapshot::restore(r, path.as_ref(), opts)
    }

    /// Copy the live data into a fresh compact file and atomically replace the database file
    /// with it. Blocks writers while it runs; readers that are open keep their old snapshot (the
    /// old file stays alive until they finish). Only for file-backed databases.
    pub fn defragment(&self) -> Result<()> {
        let fl = self.shared.take_writer(true)?;
        let r = self.defragment_locked(fl);
        match r {
            Ok(fl) => {
                self.shared.end_write(fl);
                Ok(())
            }
            Err((fl, e)) => {
                self.shared.end_write(fl);
                Err(e)
            }
        }
    }

    fn defragment_locked(&self, fl: FreeList) -> std::result::Result<FreeList, (FreeList, Error)> {
        let Some(path) = self.path() else {
            return Err((
                fl,
                Error::Unsupported("defragment needs a file-backed database"),
            ));
        };
        let rtx = self.begin_read();
        let tmp = {
            let mut s = path.clone().into_os_string();
            s.push(".defrag");
            PathBuf::from(s)
        };
        let built = (|| -> Result<(Arc<dyn Storage>, Meta)> {
            let _ = std::fs::remove_file(&tmp);
            let storage: Arc<dyn Storage> = Arc::new(FileStorage::open(&tmp, true)?);
            let opts = Options {
                page_size: self.shared.page_size as u32,
                create: true,
                sync: self.shared.sync,
                commit_mode: self.shared.commit_mode,
            };
            // The new file continues the txid sequence so snapshots stay ordered.
            let new_db = Db::open_storage_inner(storage.clone(), opts, None, rtx.meta.txid + 1)?;
            crate::snapshot::copy_live(&rtx, &new_db)?;
            drop(new_db);
            storage.sync_data()?;
            std::fs::rename(&tmp, &path)?;
            sync_dir(&path);
            let storage: Arc<dyn Storage> = Arc::new(FileStorage::open(&path, false)?);
            let metas = read_metas(&*storage, &Options::default())?;
            let probe = Mapping::new(storage.map()?, self.shared.page_size);
            let meta = choose_meta(&*storage, &probe, metas)?;
            Ok((storage, meta))
        })();
        drop(rtx);
        let (storage, meta) = match built {
            Ok(x) => x,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err((fl, e));
            }
        };
        let swap = (|| -> Result<FreeList> {
            let mapping = Mapping::new(storage.map()?, self.shared.page_size);
            let new_fl = load_freelist(&mapping, &meta)?;
            let mut st = self.shared.state.lock();
            st.file_len = storage.len()?;
            st.storage = storage;
            st.mapping = Arc::new(mapping);
            st.meta = meta;
            st.free_pages = new_fl.free_pages();
            st.pending_pages = 0;
            Ok(new_fl)
        })();
        match swap {
            Ok(new_fl) => Ok(new_fl),
            Err(e) => {
                // The file on disk is already the new one; this handle cannot follow it.
                self.shared.state.lock().poisoned = true;
                Err((fl, e))
            }
        }
    }
}
