//! Giving freed heap memory back to the operating system.
//!
//! glibc's allocator keeps memory freed by a thread in that thread's arena, and returns it to
//! the kernel only from the top of the main heap. After a burst of large batches (the apply
//! thread's overlay of uncommitted values, Raft entries waiting for the WAL) a member can hold
//! hundreds of MiB that nothing uses. [`release_free_memory`] asks glibc to hand every arena's
//! free pages back (`malloc_trim(0)`); the member calls it from its backend commit thread every
//! [`TRIM_INTERVAL`].

/// How often the member trims the heap.
pub const TRIM_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

#[cfg(all(target_os = "linux", target_env = "gnu"))]
extern "C" {
    /// glibc: `int malloc_trim(size_t pad)`.
    fn malloc_trim(pad: usize) -> i32;
}

/// Return free heap pages to the kernel. Returns true if any memory was released.
pub fn release_free_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim takes no pointers and only walks glibc's own arenas under their
        // locks; it is safe to call from any thread at any time (glibc documents it as MT-Safe).
        unsafe { malloc_trim(0) != 0 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freed_memory_goes_back_to_the_kernel() {
        // Allocate and touch 64 MiB in small blocks, free it, trim: RSS must drop well below the
        // peak (small blocks are not mmapped, so only a trim returns them).
        let rss = || crate::metrics::process_rss_bytes().unwrap_or(0);
        let blocks: Vec<Vec<u8>> = (0..64 * 1024).map(|i| vec![i as u8; 1000]).collect();
        let peak = rss();
        drop(blocks);
        release_free_memory();
        let after = rss();
        assert!(
            after + 32 * 1024 * 1024 < peak,
            "rss after trim {after} vs peak {peak}"
        );
    }
}
