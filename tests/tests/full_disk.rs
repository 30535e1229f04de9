//! A full disk loses nothing: a member whose data directory fills up (a 160 MiB tmpfs) stops
//! with a log line naming the cause — as etcd does, which exits when bbolt or its WAL cannot
//! write — and, once there is room again, restarts with every write it acknowledged.
//!
//! Needs root (to mount the tmpfs). Without it the test says so and passes, unless
//! `KEEL_REQUIRE_TOOLS` is set (as `scripts/test` does), when it fails.

use keel_tests::binary;
use keel_tests::grpc::{self, CallError};
use keel_tests::ports::free_port;
use keel_tests::temp::TempDir;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A tmpfs mounted on a directory, unmounted on drop.
struct SmallDisk {
    mount_point: PathBuf,
}

impl SmallDisk {
    fn mount(mount_point: &Path, size_mib: u64) -> Result<SmallDisk, String> {
        std::fs::create_dir_all(mount_point).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_mib}m"), "tmpfs"])
            .arg(mount_point)
            .output()
            .map_err(|e| format!("mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(SmallDisk {
            mount_point: mount_point.to_path_buf(),
        })
    }

    fn grow(&self, size_mib: u64) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size_mib}m")])
            .arg(&self.mount_point)
            .status()
            .unwrap();
        assert!(status.success(), "remount with {size_mib} MiB");
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(&self.mount_point)
            .status();
    }
}

fn start_member(data_dir: &Path, log: &Path, client: u16, peer: u16) -> Child {
    let client_url = format!("http://127.0.0.1:{client}");
    let peer_url = format!("http://127.0.0.1:{peer}");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    Command::new(binary::keel())
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--listen-client-urls", &client_url])
        .args(["--advertise-client-urls", &client_url])
        .args(["--listen-peer-urls", &peer_url])
        .args(["--initial-advertise-peer-urls", &peer_url])
        .args(["--initial-cluster", &format!("default={peer_url}")])
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start keel")
}

fn wait_serving(endpoint: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while grpc::status(endpoint).is_err() {
        assert!(
            Instant::now() < deadline,
            "{endpoint} did not start serving"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn value_of(i: u32) -> Vec<u8> {
    // 60 KB, different per key, so a wrong or torn value cannot pass for the right one.
    (0..60_000u32)
        .map(|j| (j.wrapping_mul(31).wrapping_add(i * 7) % 251) as u8)
        .collect()
}

#[test]
fn a_full_disk_stops_the_member_and_loses_no_acknowledged_write() {
    let dir = TempDir::new("full-disk");
    let disk = match SmallDisk::mount(&dir.path().join("disk"), 160) {
        Ok(d) => d,
        Err(e) => {
            assert!(
                std::env::var_os("KEEL_REQUIRE_TOOLS").is_none(),
                "cannot mount a tmpfs (root needed): {e}"
            );
            eprintln!("skipped: cannot mount a tmpfs (root needed): {e}");
            return;
        }
    };
    let data_dir = disk.mount_point.join("member");
    let log = dir.path().join("keel.log");
    let (client, peer) = (free_port(), free_port());
    let endpoint = format!("127.0.0.1:{client}");
    let mut member = start_member(&data_dir, &log, client, peer);
    wait_serving(&endpoint);

    // Write 60 KB values until the member stops answering. 160 MiB holds well under 2,700.
    let mut c = grpc::connect(std::slice::from_ref(&endpoint), Duration::from_secs(5)).unwrap();
    let mut acknowledged = 0u32;
    let mut failure: Option<CallError> = None;
    for i in 0..2_700u32 {
        match grpc::put(&mut c, format!("k{i:05}").as_bytes(), &value_of(i)) {
            Ok(_) => acknowledged = i + 1,
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let failure = failure.expect("the disk filled up before 2,700 writes of 60 KB");
    assert!(
        acknowledged > 100,
        "only {acknowledged} writes before: {failure}"
    );
    eprintln!("{acknowledged} writes acknowledged, then: {failure}");

    // The member stops, saying why.
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = member.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = member.kill();
            panic!("the member kept running on a full disk (last error: {failure})");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success(), "exit status {status}");
    let said = std::fs::read_to_string(&log).unwrap();
    let fatal = said
        .lines()
        .find(|l| l.contains("fatal"))
        .unwrap_or_else(|| panic!("no fatal line in the log:\n{said}"));
    eprintln!("the member said: {fatal}");
    // Whichever wrote first names it: the WAL ("no space left on device") or the btree's commit
    // (the OS error, "No space left on device").
    assert!(
        fatal.to_lowercase().contains("no space left on device"),
        "{fatal}"
    );

    // Room again: it restarts with every acknowledged write, values whole, and takes new ones.
    disk.grow(400);
    let mut member = start_member(&data_dir, &log, client, peer);
    wait_serving(&endpoint);
    let mut c = grpc::connect(std::slice::from_ref(&endpoint), Duration::from_secs(5)).unwrap();
    for i in 0..acknowledged {
        let key = format!("k{i:05}");
        let r = grpc::range(&mut c, key.as_bytes(), b"", false).unwrap();
        assert_eq!(r.kvs.len(), 1, "{key} was acknowledged and is gone");
        assert!(r.kvs[0].value == value_of(i), "{key} has a different value");
    }
    grpc::put(&mut c, b"after", b"restart").unwrap();
    let _ = member.kill();
    let _ = member.wait();
}
