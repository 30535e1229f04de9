//! Cross-thread wake-ups: other threads push payloads and wake the loop.

use parking_lot::Mutex;
use std::sync::Arc;

/// A cloneable, `Send` handle that delivers payloads of type `W` to the loop's handler
/// (`Handler::on_wake`), in order. Wakes coalesce: one eventfd write per batch.
pub struct LoopWaker<W> {
    pub(crate) queue: Arc<Mutex<Vec<W>>>,
    pub(crate) waker: Arc<mio::Waker>,
}

impl<W> Clone for LoopWaker<W> {
    fn clone(&self) -> Self {
        LoopWaker {
            queue: self.queue.clone(),
            waker: self.waker.clone(),
        }
    }
}

impl<W> std::fmt::Debug for LoopWaker<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LoopWaker")
    }
}

impl<W> LoopWaker<W> {
    /// Queues `payload` for the loop thread and wakes it. Fails only if the loop's poll
    /// instance is gone.
    pub fn wake(&self, payload: W) -> std::io::Result<()> {
        let was_empty = {
            let mut q = self.queue.lock();
            let e = q.is_empty();
            q.push(payload);
            e
        };
        if was_empty {
            self.waker.wake()?;
        }
        Ok(())
    }
}
