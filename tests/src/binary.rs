//! Where the executables under test are.
//!
//! The tests never build `keel` themselves (`scripts/test` builds every binary first). The
//! `keel` binary is found, in order, at:
//! 1. `$KEEL_BIN`;
//! 2. `$CARGO_TARGET_DIR/release/keel`;
//! 3. `<target>/release/keel`, where `<target>` is the target directory this test executable was
//!    built into (`<target>/release/deps/<test>-<hash>`);
//! 4. `<workspace>/target/release/keel`.
//!
//! If none exists the test fails with a message saying how to build it.

use std::path::{Path, PathBuf};

/// The stock etcd client the tests drive keel with (Debian package `etcd-client`).
pub const ETCDCTL: &str = "/usr/bin/etcdctl";
/// The real etcd the tests compare keel with (Debian package `etcd-server`, 3.4.23).
pub const ETCD: &str = "/usr/bin/etcd";

fn candidates() -> Vec<PathBuf> {
    let mut c = Vec::new();
    if let Some(p) = std::env::var_os("KEEL_BIN") {
        c.push(PathBuf::from(p));
    }
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        c.push(PathBuf::from(t).join("release").join("keel"));
    }
    if let Ok(exe) = std::env::current_exe() {
        // <target>/<profile>/deps/<name>-<hash>
        if let Some(target) = exe.parent().and_then(Path::parent).and_then(Path::parent) {
            c.push(target.join("release").join("keel"));
        }
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent");
    c.push(workspace.join("target").join("release").join("keel"));
    c
}

/// The `keel` binary to test. Panics with instructions if it is not built.
pub fn keel() -> PathBuf {
    let c = candidates();
    if let Some(p) = c.iter().find(|p| p.is_file()) {
        return p.clone();
    }
    panic!(
        "keel binary not found; looked at {c:?}. Build it first, e.g. \
         `CARGO_TARGET_DIR=<dir> cargo build --release -p keel-server --bin keel`, \
         or set KEEL_BIN=/path/to/keel"
    );
}

/// The `etcdctl` binary. Panics with instructions if it is missing.
pub fn etcdctl() -> PathBuf {
    require(ETCDCTL, "etcd-client")
}

/// The real `etcd` binary. Panics with instructions if it is missing.
pub fn etcd() -> PathBuf {
    require(ETCD, "etcd-server")
}

fn require(path: &str, package: &str) -> PathBuf {
    let p = PathBuf::from(path);
    assert!(
        p.is_file(),
        "{path} is missing: install the Debian package {package} (scripts/test does)"
    );
    p
}
