//! The file underneath the tree, behind a small trait.
//!
//! The B+tree never touches `std::fs` directly. It talks to a [`Storage`]: positioned writes
//! (`pwrite`), `fdatasync`, growing the file, and a read-only mapping of the whole file for the
//! readers. Two implementations exist:
//!
//! * [`FileStorage`]: a real file; writes with `FileExt::write_at`, reads through a read-only
//!   `memmap2::Mmap` (`PROT_READ`, `MAP_SHARED`).
//! * [`MemStorage`]: an in-memory file that remembers which writes were made durable by
//!   `sync_data` and can be told to fail at the N-th write or sync. Crash tests take the image a
//!   power failure would leave ([`CrashMode`]) and open a fresh database on it. No disk needed.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

/// A read-only view of the whole file at the moment it was mapped.
///
/// # Safety
///
/// An implementor guarantees that `as_ptr()` points to `len()` readable bytes that stay mapped
/// (valid to read) for as long as the object lives, and that those bytes change only through
/// [`Storage::write_at`] on the storage that created the map. The database upholds the other half
/// of the contract: it never writes a page that a live reader can reach (see the crate docs).
pub unsafe trait PageMap: Send + Sync {
    /// Start of the mapped bytes.
    fn as_ptr(&self) -> *const u8;
    /// Number of mapped bytes.
    fn len(&self) -> usize;
    /// True when nothing is mapped.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Positioned file I/O plus a read-only mapping: everything the tree needs from a file.
pub trait Storage: Send + Sync + 'static {
    /// Current length of the file in bytes.
    fn len(&self) -> io::Result<u64>;
    /// True if the file has no bytes.
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }
    /// Grow (never shrink) the file to `len` bytes; new bytes read as zero.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Read exactly `buf.len()` bytes at `offset` (an error if the file is shorter).
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// Write all of `buf` at `offset` (`pwrite`). Not durable until [`Storage::sync_data`].
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// Make every earlier write durable (`fdatasync`).
    fn sync_data(&self) -> io::Result<()>;
    /// Map the whole current file read-only.
    fn map(&self) -> io::Result<Arc<dyn PageMap>>;
    /// True if writes made after [`Storage::map`] become visible through the existing map (true
    /// for a shared `mmap` of a real file). When false the database maps again after every commit.
    fn map_tracks_writes(&self) -> bool;
    /// The file's path, if it is a real file (needed by `defragment`).
    fn path(&self) -> Option<&Path> {
        None
    }
}

/// A real file: `pwrite` for writes, a read-only shared `mmap` for reads.
#[derive(Debug)]
pub struct FileStorage {
    file: File,
    path: PathBuf,
}

impl FileStorage {
    /// Open (creating if `create`) the file at `path` for reading and writing.
    pub fn open(path: &Path, create: bool) -> io::Result<FileStorage> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .truncate(false)
            .open(path)?;
        Ok(FileStorage {
            file,
            path: path.to_path_buf(),
        })
    }
}

struct FileMap(memmap2::Mmap);

// SAFETY: a `memmap2::Mmap` stays mapped until dropped, so `as_ptr()..+len()` is readable for the
// object's lifetime. The file is only modified through `FileStorage::write_at` (the database keeps
// a process-wide registry so one process opens a file once, and documents that other processes must
// not write it), and it is never shrunk below a mapped length (`set_len` only grows).
unsafe impl PageMap for FileMap {
    fn as_ptr(&self) -> *const u8 {
        self.0.as_ptr()
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}

impl Storage for FileStorage {
    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        if len > self.len()? {
            self.file.set_len(len)?;
        }
        Ok(())
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.file.write_all_at(buf, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data()
    }
    fn map(&self) -> io::Result<Arc<dyn PageMap>> {
        let len = self.len()?;
        if len == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot map an empty file",
            ));
        }
        // SAFETY: mapping a file is only unsound if the bytes change under a live `&[u8]`. The map
        // is read-only (PROT_READ); the database only hands out slices of pages that are reachable
        // from a live reader's snapshot, and copy-on-write plus deferred page reuse guarantee those
        // pages are not written while that reader lives. The file is never truncated (set_len only
        // grows), so no access can hit a page beyond end-of-file (SIGBUS).
        let map = unsafe {
            memmap2::MmapOptions::new()
                .len(len as usize)
                .map(&self.file)?
        };
        Ok(Arc::new(FileMap(map)))
    }
    fn map_tracks_writes(&self) -> bool {
        true
    }
    fn path(&self) -> Option<&Path> {
        Some(&self.path)
    }
}

/// What a simulated power failure leaves on the "disk" of a [`MemStorage`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashMode {
    /// Every write issued before the crash reached the disk (the process died, the OS survived).
    KeepAll,
    /// Every write after the last successful `sync_data` is lost (power cut, nothing flushed).
    LoseUnsynced,
    /// Each write after the last sync independently survives, is lost, keeps only a prefix of
    /// arbitrary length, or keeps a random subset of its 512-byte sectors, chosen by a
    /// pseudo-random sequence from this seed.
    Torn(u64),
}

#[derive(Default)]
struct MemState {
    live: Vec<u8>,
    durable: Vec<u8>,
    /// Writes (and growths, as `(offset, empty)` with a new length) since the last sync.
    unsynced: Vec<Unsynced>,
    ops: u64,
    fail_at: Option<u64>,
    failed: bool,
    syncs: u64,
    bytes_written: u64,
}

enum Unsynced {
    Write(u64, Vec<u8>),
    SetLen(u64),
}

/// An in-memory file with fault injection, for crash-consistency tests.
///
/// Every `write_at`, `sync_data` and `set_len` is one *operation*. With
/// [`MemStorage::fail_at_op`] the N-th operation (0-based) fails and so does every later one, as
/// if the machine stopped there. [`MemStorage::crash_image`] then returns the bytes a disk would
/// hold under a [`CrashMode`].
#[derive(Clone, Default)]
pub struct MemStorage {
    state: Arc<Mutex<MemState>>,
}

impl std::fmt::Debug for MemStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.state.lock();
        f.debug_struct("MemStorage")
            .field("len", &s.live.len())
            .field("ops", &s.ops)
            .field("failed", &s.failed)
            .finish()
    }
}

impl MemStorage {
    /// An empty in-memory file.
    pub fn new() -> MemStorage {
        MemStorage::default()
    }
    /// An in-memory file whose durable contents are `bytes` (for example a crash image).
    pub fn from_bytes(bytes: Vec<u8>) -> MemStorage {
        let s = MemStorage::new();
        {
            let mut st = s.state.lock();
            st.durable = bytes.clone();
            st.live = bytes;
        }
        s
    }
    /// Make the operation whose 0-based number (as counted by [`MemStorage::ops`]) is `op`, and
    /// every later one, fail (like a full disk or a dead device). `None` disables fault
    /// injection and lets operations succeed again.
    pub fn fail_at_op(&self, op: Option<u64>) {
        let mut st = self.state.lock();
        st.fail_at = op;
        if op.is_none() {
            // The "disk" works again (e.g. space was freed after a full disk).
            st.failed = false;
        }
    }
    /// How many write/sync/set_len operations were issued so far (failed ones included).
    pub fn ops(&self) -> u64 {
        self.state.lock().ops
    }
    /// Bytes passed to successful `write_at` calls so far.
    pub fn bytes_written(&self) -> u64 {
        self.state.lock().bytes_written
    }
    /// How many syncs succeeded so far.
    pub fn syncs(&self) -> u64 {
        self.state.lock().syncs
    }
    /// True once an injected fault has fired.
    pub fn has_failed(&self) -> bool {
        self.state.lock().failed
    }
    /// The current contents as the running process sees them.
    pub fn live_bytes(&self) -> Vec<u8> {
        self.state.lock().live.clone()
    }
    /// The bytes that would be on disk after a power failure right now.
    pub fn crash_image(&self, mode: CrashMode) -> Vec<u8> {
        let st = self.state.lock();
        match mode {
            CrashMode::KeepAll => st.live.clone(),
            CrashMode::LoseUnsynced => st.durable.clone(),
            CrashMode::Torn(seed) => {
                let mut rng = seed | 1;
                let mut next = move || {
                    // xorshift64: deterministic, dependency-free.
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    rng
                };
                let mut img = st.durable.clone();
                for u in &st.unsynced {
                    match u {
                        Unsynced::SetLen(len) => {
                            if img.len() < *len as usize {
                                img.resize(*len as usize, 0);
                            }
                        }
                        Unsynced::Write(off, data) => {
                            let end = *off as usize + data.len();
                            if img.len() < end {
                                img.resize(end, 0);
                            }
                            match next() % 4 {
                                // Lost entirely.
                                0 => {}
                                // Reached the disk entirely.
                                1 => img[*off as usize..end].copy_from_slice(data),
                                // Torn mid-sector: only a prefix of arbitrary length made it
                                // (no sector-atomicity assumed).
                                2 => {
                                    let cut = (next() as usize) % data.len().max(1);
                                    img[*off as usize..*off as usize + cut]
                                        .copy_from_slice(&data[..cut]);
                                }
                                // Torn: each 512-byte sector independently made it or not.
                                _ => {
                                    for (i, chunk) in data.chunks(512).enumerate() {
                                        if next() % 2 == 0 {
                                            let o = *off as usize + i * 512;
                                            img[o..o + chunk.len()].copy_from_slice(chunk);
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                img
            }
        }
    }

    fn begin_op(st: &mut MemState) -> io::Result<()> {
        let op = st.ops;
        st.ops += 1;
        if st.failed || st.fail_at.is_some_and(|f| op >= f) {
            st.failed = true;
            return Err(io::Error::other(format!(
                "injected fault at storage operation {op}"
            )));
        }
        Ok(())
    }
}

struct MemMap(Vec<u8>);

// SAFETY: the vector is owned by the map and never mutated after construction, so its buffer is
// valid and unchanging for the object's whole lifetime.
unsafe impl PageMap for MemMap {
    fn as_ptr(&self) -> *const u8 {
        self.0.as_ptr()
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}

impl Storage for MemStorage {
    fn len(&self) -> io::Result<u64> {
        Ok(self.state.lock().live.len() as u64)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut st = self.state.lock();
        MemStorage::begin_op(&mut st)?;
        if len as usize > st.live.len() {
            st.live.resize(len as usize, 0);
            st.unsynced.push(Unsynced::SetLen(len));
        }
        Ok(())
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let st = self.state.lock();
        let start = offset as usize;
        let end = start
            .checked_add(buf.len())
            .filter(|&e| e <= st.live.len())
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "read past end of file"))?;
        buf.copy_from_slice(&st.live[start..end]);
        Ok(())
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let mut st = self.state.lock();
        MemStorage::begin_op(&mut st)?;
        let start = offset as usize;
        let end = start + buf.len();
        if st.live.len() < end {
            st.live.resize(end, 0);
        }
        st.live[start..end].copy_from_slice(buf);
        st.bytes_written += buf.len() as u64;
        st.unsynced.push(Unsynced::Write(offset, buf.to_vec()));
        Ok(())
    }
    fn sync_data(&self) -> io::Result<()> {
        let mut st = self.state.lock();
        MemStorage::begin_op(&mut st)?;
        let pending = std::mem::take(&mut st.unsynced);
        for u in pending {
            match u {
                Unsynced::SetLen(len) => {
                    if st.durable.len() < len as usize {
                        st.durable.resize(len as usize, 0);
                    }
                }
                Unsynced::Write(off, data) => {
                    let end = off as usize + data.len();
                    if st.durable.len() < end {
                        st.durable.resize(end, 0);
                    }
                    st.durable[off as usize..end].copy_from_slice(&data);
                }
            }
        }
        st.syncs += 1;
        Ok(())
    }
    fn map(&self) -> io::Result<Arc<dyn PageMap>> {
        Ok(Arc::new(MemMap(self.state.lock().live.clone())))
    }
    fn map_tracks_writes(&self) -> bool {
        false
    }
}
