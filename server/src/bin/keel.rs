//! `keel`: an etcd-compatible, Raft-replicated key-value store member.
//!
//! Flags are etcd's (`keel --help`). A bad flag exits with status 2 and a message naming it;
//! a member that cannot start exits with status 1.

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
    if let Err(e) = keel_server::member::run(*cfg) {
        keel_server::log_error!("{e}");
        eprintln!("keel: {e}");
        std::process::exit(1);
    }
}
