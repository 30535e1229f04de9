//! Free loopback ports: bind port 0, read the port the kernel chose, release it.
//!
//! There is a small window in which another process could take the port before the member binds
//! it; ports are chosen per test and never fixed, so parallel tests do not collide with each other.

use std::collections::HashSet;
use std::net::TcpListener;
use std::sync::Mutex;

/// Ports already handed out by this process, so two members never get the same one even if the
/// kernel reuses a just-released port.
static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A loopback TCP port that was free a moment ago and was not handed out before in this process.
pub fn free_port() -> u16 {
    let mut guard = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    let used = guard.get_or_insert_with(HashSet::new);
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .expect("bind 127.0.0.1:0")
            .local_addr()
            .expect("local_addr")
            .port();
        if used.insert(port) {
            return port;
        }
    }
}
