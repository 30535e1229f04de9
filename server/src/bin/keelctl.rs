//! `keelctl`: a command-line client in etcdctl's shape.

fn main() {
    eprintln!(
        "keelctl {}: not built yet (it needs the server; see README.md). Use etcdctl meanwhile.",
        env!("CARGO_PKG_VERSION")
    );
    std::process::exit(2);
}
