//! Installing a Raft snapshot into a running store, in place (etcd's `kv.Restore(newBackend)`
//! plus `watchableStore.Restore`).
//!
//! A follower that fell too far behind receives the leader's whole state machine: the byte
//! stream [`Store::snapshot_to`] wrote. Installing it must not stop the store's users (the
//! apply thread, the committer, maintenance calls and open watch streams all hold clones of
//! the handle), and must never leave a database file that is neither the old state nor the
//! new one. It happens in two steps:
//!
//! 1. **Prepare** ([`Store::prepare_snapshot`], no store lock taken: applies and reads go on).
//!    The stream is written to `<path>.installing`, fsynced, opened, integrity-checked by
//!    keel-btree, and the whole in-memory state (key index, leases, revisions) is rebuilt from
//!    it exactly as [`Store::open`] builds it. A stream that is not a complete keel database
//!    with a consistent index is refused here; the temporary file is removed and the live
//!    store never sees it.
//! 2. **Install** ([`Store::install_prepared`]). Holding `commit_lock`, `apply_lock` and the
//!    core write lock (the documented order: no commit is in flight, no batch applies, no
//!    reader runs), the temporary file is renamed over `path` and the directory fsynced; the
//!    old backend is closed and the new file opened in its place; the in-memory state is
//!    replaced by the prepared one, and everything that belonged to the old history (the
//!    queued writes and their values) is dropped. [`Store::durable_index`] becomes the
//!    snapshot's consistent index: the server re-applies its Raft log after it.
//!
//! Crash safety: until the rename the file at `path` is the old database, untouched; the
//! rename is atomic, and the new file was fsynced before it, so after it `path` is the complete
//! new database. A leftover `<path>.installing` from a crash is never opened by
//! [`Store::open_path`] and is overwritten by the next install.

use super::{load_state, Core, Store};
use crate::apply::{State, META_CONSISTENT_INDEX};
use crate::backend::{Backend, BackendRead, Bucket, WriteBatch};
use crate::btree_backend::{storage_err, BtreeBackend};
use crate::codec::decode_u64;
use crate::error::Error;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A snapshot restored into `<path>.installing`, verified, with its in-memory state rebuilt,
/// ready for [`Store::install_prepared`]. Dropping it without installing removes the file.
pub struct PreparedSnapshot {
    /// The temporary database file (`<path>.installing`).
    temp: PathBuf,
    /// The database file it will replace.
    path: PathBuf,
    /// The state rebuilt from it (taken by the install).
    state: Option<State>,
    /// The temporary file was renamed (so it must not be removed on drop).
    renamed: bool,
}

impl std::fmt::Debug for PreparedSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedSnapshot")
            .field("temp", &self.temp)
            .field("consistent_index", &self.consistent_index())
            .field("revision", &self.revision())
            .finish()
    }
}

impl PreparedSnapshot {
    fn state(&self) -> Option<&State> {
        self.state.as_ref()
    }

    /// The Raft index the snapshot's state machine is at (its consistent index). The server
    /// should refuse a snapshot whose index is below the Raft snapshot's metadata.
    pub fn consistent_index(&self) -> u64 {
        self.state().map_or(0, |s| s.consistent_index)
    }

    /// The snapshot's current revision.
    pub fn revision(&self) -> i64 {
        self.state().map_or(0, |s| s.current_rev)
    }

    /// The snapshot's compaction revision (-1: never compacted).
    pub fn compact_revision(&self) -> i64 {
        self.state().map_or(-1, |s| s.compact_rev)
    }

    /// The temporary file holding the verified database.
    pub fn temp_path(&self) -> &Path {
        &self.temp
    }
}

impl Drop for PreparedSnapshot {
    fn drop(&mut self) {
        if !self.renamed {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// `<path><suffix>`, next to `path` (so a rename over `path` stays in one file system).
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Makes a rename in `path`'s directory durable.
fn sync_dir(path: &Path) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)?.sync_all()
}

/// Step 1 of an install: writes the stream to `temp`, fsyncs it, opens and checks it, and
/// rebuilds the in-memory state from it.
fn restore_and_load(r: &mut dyn std::io::Read, temp: &Path) -> Result<State, Error> {
    let io = |what: &str, e: std::io::Error| {
        Error::Storage(format!(
            "installing a snapshot: {what} {}: {e}",
            temp.display()
        ))
    };
    // A leftover of an install interrupted by a crash.
    let _ = std::fs::remove_file(temp);
    let mut file = std::fs::File::create(temp).map_err(|e| io("cannot create", e))?;
    std::io::copy(r, &mut file).map_err(|e| io("cannot write the stream into", e))?;
    file.sync_all().map_err(|e| io("cannot fsync", e))?;
    drop(file);
    let options = keel_btree::Options {
        create: false,
        ..keel_btree::Options::default()
    };
    let db = keel_btree::Db::open(temp, options).map_err(storage_err)?;
    // Every page reachable once, checksums, key order: a torn or tampered stream stops here.
    db.check().map_err(storage_err)?;
    let backend = BtreeBackend::from_db(db)?;
    let reader = backend.read()?;
    let st = load_state(&*reader)?;
    // An empty file opens as a fresh database, and any keel-btree file passes the check: a
    // state machine snapshot always has applied something.
    if st.consistent_index == 0 {
        return Err(Error::Corrupt(
            "the snapshot has no consistent index (not a keel store snapshot)".into(),
        ));
    }
    Ok(st)
}

/// Stands in for the backend while the old one is closed and the new one opened (nobody can
/// see it: every user of the backend is locked out), and stays if opening the new one failed
/// (the store is then poisoned).
struct Detached;

impl Backend for Detached {
    fn read(&self) -> Result<Box<dyn BackendRead + '_>, Error> {
        Err(detached())
    }
    fn commit(&self, _batch: &WriteBatch) -> Result<(), Error> {
        Err(detached())
    }
    fn size(&self) -> (u64, u64) {
        (0, 0)
    }
    fn snapshot_to(&self, _w: &mut dyn std::io::Write) -> Result<u64, Error> {
        Err(detached())
    }
    fn defragment(&self) -> Result<(), Error> {
        Err(detached())
    }
}

fn detached() -> Error {
    Error::Storage("no backend: installing a snapshot failed after replacing the file".into())
}

impl Store {
    /// Restores a snapshot stream (the format [`Store::snapshot_to`] writes) into
    /// `<path>.installing`, fsyncs it, opens it, checks its integrity and rebuilds the
    /// in-memory state from it, without taking any lock of a live store (applies, commits and
    /// reads go on meanwhile). `path` is the database file of the store it will be installed
    /// into (the one given to [`Store::open_path`]).
    ///
    /// A stream that is not a complete, consistent keel database (garbage, truncated, torn, a
    /// failing reader, no consistent index) gives `Err` and the temporary file is removed.
    /// One install at a time per `path` (they share the temporary file name).
    pub fn prepare_snapshot(
        r: &mut dyn std::io::Read,
        path: impl AsRef<Path>,
    ) -> Result<PreparedSnapshot, Error> {
        let path = path.as_ref();
        // Built first so that its Drop removes the temporary file on every error below.
        let mut prepared = PreparedSnapshot {
            temp: sibling(path, ".installing"),
            path: path.to_path_buf(),
            state: None,
            renamed: false,
        };
        prepared.state = Some(restore_and_load(r, &prepared.temp)?);
        Ok(prepared)
    }

    /// Installs a prepared snapshot in place of the store's whole state (etcd's
    /// `kv.Restore`), and returns the new consistent index (= [`Store::durable_index`]).
    ///
    /// Holding `commit_lock`, `apply_lock` and the core write lock (so a commit in flight
    /// finishes first, and no apply, read or watcher round sees a mix of old and new), it
    /// renames the prepared file over `path`, fsyncs the directory, closes the old backend and
    /// opens the new file as [`Store::open_path`] does, and replaces everything in memory:
    /// * **state**: key index, revisions, compaction point and leases are the snapshot's;
    ///   writes applied and not committed (deferred batches) belonged to the old history and
    ///   are dropped; `durable_index` = `consistent_index` = the snapshot's. The caller
    ///   re-applies its Raft log after that index (earlier entries give
    ///   [`Error::AlreadyApplied`]).
    /// * **watchers** (etcd's `watchableStore.Restore`): every watcher becomes unsynced and
    ///   catches up from the new history at its next revision on the following
    ///   [`Store::sync_watchers`] rounds; one whose next revision is below the snapshot's
    ///   compaction revision is cancelled there with `compact_revision`. A watcher positioned
    ///   beyond the snapshot's head (its member had a longer history) is moved back to the
    ///   head + 1, as etcd's next sync round does. Streams keep working.
    /// * **lease deadlines** (leader-local): deadlines of leases that no longer exist are
    ///   forgotten; if this member is primary, leases new to it get a deadline of the last
    ///   clock reading + their TTL (as a grant would). A follower keeps none, as before.
    /// * **poison**: a successful install clears it. Poison means memory and backend may
    ///   disagree, or the backend failed; both are replaced wholesale here by a verified file
    ///   and the state rebuilt from it, exactly what reopening the store would give.
    ///
    /// Errors: if the rename fails, the store is untouched (the prepared file is removed). If
    /// anything fails after the rename (the directory fsync, opening the new file), `path`
    /// holds the new database but this handle cannot follow it: the store is poisoned and must
    /// be reopened.
    pub fn install_prepared(&self, mut prepared: PreparedSnapshot) -> Result<u64, Error> {
        let Some(st) = prepared.state.take() else {
            return Err(Error::Storage("snapshot already installed".into()));
        };
        let _committing = self.inner.commit_lock.lock(); // no commit in flight
        let _applying = self.inner.apply_lock.lock(); // no batch applying, no catch-up round
        let mut core = self.inner.core.write(); // no reader
        if let Err(e) = std::fs::rename(&prepared.temp, &prepared.path) {
            return Err(Error::Storage(format!(
                "installing a snapshot: cannot rename {} over {}: {e}",
                prepared.temp.display(),
                prepared.path.display()
            )));
        }
        prepared.renamed = true;
        // From here on the file at `path` is the snapshot: memory follows it, or the store is
        // poisoned.
        let swapped = sync_dir(&prepared.path)
            .map_err(|e| {
                Error::Storage(format!(
                    "installing a snapshot: cannot fsync the directory of {}: {e}",
                    prepared.path.display()
                ))
            })
            .and_then(|()| self.swap_backend(&prepared.path, st.consistent_index));
        if let Err(e) = swapped {
            core.poisoned = Some(e.to_string());
            return Err(e);
        }
        let consistent_index = st.consistent_index;
        let current = st.current_rev;
        *core = Core::new(st);
        {
            let mut clock = self.inner.lease_clock.lock();
            let leases = &core.st.leases.leases;
            clock.deadlines.retain(|id, _| leases.contains_key(id));
            if clock.primary {
                let now = clock.last_now_ms;
                for (id, l) in leases {
                    let ttl_ms = (l.refresh_ttl().max(0) as u64).saturating_mul(1000);
                    clock
                        .deadlines
                        .entry(*id)
                        .or_insert(now.saturating_add(ttl_ms));
                }
            }
        }
        self.inner.hub.lock().restore(current);
        Ok(consistent_index)
    }

    /// [`Store::prepare_snapshot`] then [`Store::install_prepared`]: installs the snapshot
    /// stream `r` as this store's database at `path` (the file the store runs on) and its
    /// whole state, in place, while the store stays open. Returns the new consistent index.
    /// A bad stream gives `Err` and leaves the store untouched and serving. To check the
    /// snapshot (e.g. its consistent index) before replacing anything, call the two steps.
    pub fn install_snapshot(
        &self,
        r: &mut dyn std::io::Read,
        path: impl AsRef<Path>,
    ) -> Result<u64, Error> {
        let prepared = Store::prepare_snapshot(r, path)?;
        self.install_prepared(prepared)
    }

    /// Closes the old backend and opens the file at `path` (all store locks held by the
    /// caller, so no one holds the old backend: keel-btree refuses a second handle on a path).
    fn swap_backend(&self, path: &Path, consistent_index: u64) -> Result<(), Error> {
        let mut slot = self.inner.backend.write();
        *slot = Arc::new(Detached); // drops (closes) the old backend
        let backend = BtreeBackend::open(path)?;
        let stored = match backend.read()?.get(Bucket::Meta, META_CONSISTENT_INDEX)? {
            Some(v) => decode_u64(&v)?,
            None => 0,
        };
        if stored != consistent_index {
            return Err(Error::Corrupt(format!(
                "installed snapshot reopened at consistent index {stored}, prepared at {consistent_index}"
            )));
        }
        *slot = Arc::new(backend);
        Ok(())
    }
}
