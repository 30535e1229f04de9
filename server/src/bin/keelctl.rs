//! `keelctl`: keel's command-line client in etcdctl v3's shape (see `server/src/ctl/`).

#[path = "../ctl/mod.rs"]
mod ctl;

fn main() {
    let code = ctl::run(std::env::args().skip(1).collect());
    std::process::exit(code);
}
