//! `keel`: an etcd-compatible, Raft-replicated key-value store member.
//!
//! Flags are etcd's (`keel --help`). The member itself is not wired yet: after validating its
//! configuration, `keel` exits with status 2 and says so.

use keel_server::config::{self, Command};
use keel_server::log;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match config::parse(&args, std::env::vars()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("keel: error verifying flags, {e}. See 'keel --help'.");
            std::process::exit(2);
        }
    };
    let (cfg, warnings) = match command {
        Command::Help => {
            print!("{}", config::help_text());
            return;
        }
        Command::Version => {
            print!("{}", config::version_text());
            return;
        }
        Command::Run(cfg, warnings) => (cfg, warnings),
    };
    log::set_level(cfg.log_level);
    for w in &warnings {
        keel_server::log_warn!("{w}");
    }
    keel_server::log_info!(
        "configuration ok: name={} data-dir={} member-id={:x} cluster-id={:x}",
        cfg.name,
        cfg.data_dir.display(),
        cfg.member_id(),
        cfg.cluster_id()
    );
    eprintln!(
        "keel {}: the member is not built yet (flags are parsed and checked; the event loop, \
         WAL, apply path and etcd v3 services are still being wired). See README.md.",
        env!("CARGO_PKG_VERSION")
    );
    std::process::exit(2);
}
