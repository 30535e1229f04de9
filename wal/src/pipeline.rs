//! The segment pipeline: a helper thread that keeps the next segment file ready.
//!
//! Zero-filling a segment takes a while (it writes `segment_size` bytes and fsyncs them). If the
//! writer thread did it when the current segment fills up, every producer would wait for it.
//! Instead, like etcd's `filePipeline`, this thread prepares `N.tmp` in advance; the writer takes
//! it, writes the segment's header records, fsyncs, and renames it to its final name.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex};

use crate::error::WalError;
use crate::segment::{Disk, TMP_EXT};

type Prepared = Result<(PathBuf, File), WalError>;

struct State {
    ready: Option<Prepared>,
    shutdown: bool,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    /// Set on drop, so that a long zero-fill stops early.
    cancel: AtomicBool,
}

/// Handle to the preparing thread. Dropping it stops the thread and deletes an unused file.
pub(crate) struct Pipeline {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Pipeline {
    pub(crate) fn start(dir: &Path, segment_size: u64, disk: Disk) -> Pipeline {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                ready: None,
                shutdown: false,
            }),
            changed: Condvar::new(),
            cancel: AtomicBool::new(false),
        });
        let s = shared.clone();
        let dir = dir.to_path_buf();
        let thread = std::thread::Builder::new()
            .name("wal-prealloc".into())
            .spawn(move || {
                let mut counter = 0u64;
                loop {
                    {
                        let mut st = s.state.lock();
                        while st.ready.is_some() && !st.shutdown {
                            s.changed.wait(&mut st);
                        }
                        if st.shutdown {
                            return;
                        }
                    }
                    let path = dir.join(format!("{counter}.{TMP_EXT}"));
                    counter += 1;
                    let _ = std::fs::remove_file(&path);
                    // The tmp name is never read by recovery (only the rename publishes it),
                    // but the directory is fsynced after every create all the same.
                    let prepared = disk
                        .create_preallocated(&path, segment_size, &s.cancel)
                        .and_then(|f| disk.sync_dir(&dir).map(|()| (path.clone(), f)));
                    if s.cancel.load(Ordering::Relaxed) {
                        let _ = std::fs::remove_file(&path);
                        return;
                    }
                    let mut st = s.state.lock();
                    st.ready = Some(prepared);
                    s.changed.notify_all();
                }
            })
            .expect("spawn wal-prealloc thread");
        Pipeline {
            shared,
            thread: Some(thread),
        }
    }

    /// Take the prepared file (waiting for it if necessary); the thread starts on the next one.
    pub(crate) fn take(&self) -> Prepared {
        let mut st = self.shared.state.lock();
        while st.ready.is_none() {
            self.shared.changed.wait(&mut st);
        }
        let r = st.ready.take().expect("checked above");
        self.shared.changed.notify_all();
        r
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        self.shared.cancel.store(true, Ordering::Relaxed);
        self.shared.state.lock().shutdown = true;
        self.shared.changed.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Some(Ok((path, _))) = self.shared.state.lock().ready.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}
