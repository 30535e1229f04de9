//! `keel`: an etcd-compatible, Raft-replicated key-value store member.

fn main() {
    eprintln!(
        "keel {}: the server is not built yet.\n\
         Built so far: see the status table in README.md. \
         The member (flags, event loop, etcd v3 services) lands with issue 7.",
        env!("CARGO_PKG_VERSION")
    );
    std::process::exit(2);
}
