//! Streaming a consistent copy of the database, restoring from one, and compact copies for
//! defragmentation.
//!
//! A snapshot is taken from a read transaction, so it shows exactly one committed state while
//! writers go on. The stream is a valid database file: both meta slots hold the snapshot's meta,
//! pages the snapshot reaches are copied byte for byte from the map (they cannot change while the
//! read transaction lives), and pages the snapshot's freelist names are written as zeros (a
//! concurrent writer may be reusing them, so their bytes are not read at all).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::db::{Db, Options};
use crate::error::{Error, Result};
use crate::page::Kind;
use crate::storage::{FileStorage, Storage};
use crate::txn::ReadTxn;

/// Write the snapshot of `rtx` to `w`; returns bytes written.
pub(crate) fn write_snapshot<W: Write + ?Sized>(rtx: &ReadTxn, w: &mut W) -> Result<u64> {
    let meta = rtx.meta;
    let ps = meta.page_size as u64;
    let src = rtx.src();
    let mut free: Vec<(u64, u64)> = if meta.freelist == 0 {
        Vec::new()
    } else {
        src.page(meta.freelist, &[Kind::Freelist])?
            .freelist_extents()?
    };
    free.sort_unstable();
    w.write_all(&meta.encode(0))?;
    w.write_all(&meta.encode(1))?;
    let zeros = vec![0u8; 256 * ps as usize];
    let mut written = 2 * ps;
    let mut page = 2u64;
    let mut fi = 0;
    const CHUNK: u64 = 256;
    while page < meta.page_count {
        // Skip extents that end before `page`.
        while fi < free.len() && free[fi].0 + free[fi].1 <= page {
            fi += 1;
        }
        let (is_free, until) = match free.get(fi) {
            Some(&(s, n)) if s <= page => (true, s + n),
            Some(&(s, _)) => (false, s),
            None => (false, meta.page_count),
        };
        let until = until.min(meta.page_count).min(page + CHUNK);
        let n = until - page;
        if is_free {
            w.write_all(&zeros[..(n * ps) as usize])?;
        } else {
            let bytes = rtx
                .mapping
                .raw_pages(page, n)
                .ok_or_else(|| Error::corrupt(page, "page beyond the mapped file"))?;
            w.write_all(bytes)?;
        }
        written += n * ps;
        page = until;
    }
    w.flush()?;
    Ok(written)
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.to_path_buf().into_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

/// Restore a snapshot stream into `path` and open it.
pub(crate) fn restore<R: Read + ?Sized>(r: &mut R, path: &Path, opts: Options) -> Result<Db> {
    let tmp = sibling(path, ".restore");
    let res = (|| -> Result<()> {
        let _ = std::fs::remove_file(&tmp);
        let mut f = std::fs::File::create(&tmp)?;
        std::io::copy(r, &mut f)?;
        f.sync_all()?;
        drop(f);
        let storage: Arc<dyn Storage> = Arc::new(FileStorage::open(&tmp, false)?);
        let db = Db::open_storage(
            storage,
            Options {
                create: false,
                ..opts.clone()
            },
        )?;
        db.check()?;
        drop(db);
        std::fs::rename(&tmp, path)?;
        Ok(())
    })();
    if let Err(e) = res {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Db::open(path, opts)
}

/// Copy every bucket of `rtx` into the (empty) database `dst`, in key order, in batches.
pub(crate) fn copy_live(rtx: &ReadTxn, dst: &Db) -> Result<()> {
    const BATCH_BYTES: usize = 16 << 20;
    for name in rtx.bucket_names()? {
        let b = rtx.bucket(&name)?;
        let mut wtx = dst.begin_write()?;
        wtx.create_bucket(&name)?;
        let mut bytes = 0usize;
        for e in b.iter() {
            let (k, v) = e?;
            wtx.bucket_mut(&name)?.put(k, v)?;
            bytes += k.len() + v.len() + 32;
            if bytes >= BATCH_BYTES {
                wtx.commit()?;
                wtx = dst.begin_write()?;
                bytes = 0;
            }
        }
        wtx.commit()?;
    }
    Ok(())
}
