//! Jepsen-style tests in CI: a 3-member keel cluster in network namespaces, eight clients doing
//! reads, writes, compare-and-sets and deletes on rotating registers, while the nemesis
//! partitions the network (every partition kind) or kills and pauses members. The history must
//! be linearizable, every answer readable, and the watchers (one per member, following every
//! register) must agree, in order, with nothing skipped and every acknowledged write seen.
//!
//! Needs root (network namespaces). Without it the tests say so and pass, unless
//! `KEEL_REQUIRE_TOOLS` is set (as `scripts/test` does), when they fail. Longer runs:
//! `keel-jepsen --duration 300` (see README.md).

use keel_jepsen::checker::Verdict;
use keel_jepsen::nemesis::Fault;
use keel_jepsen::runner::{run, Report, TestConfig};
use keel_tests::temp::TempDir;
use std::time::Duration;

fn can_make_namespaces(tag: &str) -> bool {
    let name = format!("kjprobe-{tag}-{}", std::process::id());
    let made = std::process::Command::new("ip")
        .args(["netns", "add", &name])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if made {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &name])
            .status();
    }
    made
}

/// Runs a 24-second test; `None` if namespaces cannot be made here (and that is allowed).
fn run_test(
    tag: &str,
    subnet: u8,
    faults: Vec<Fault>,
    seed: u64,
    adjust: impl FnOnce(&mut TestConfig),
) -> Option<Report> {
    if !can_make_namespaces(tag) {
        assert!(
            std::env::var_os("KEEL_REQUIRE_TOOLS").is_none(),
            "cannot make network namespaces (root and iproute2 needed)"
        );
        eprintln!("skipped: cannot make network namespaces (root and iproute2 needed)");
        return None;
    }
    let dir = TempDir::new(&format!("jepsen-{tag}"));
    let mut cfg = TestConfig::new(
        keel_tests::binary::keel(),
        dir.path().to_path_buf(),
        faults,
        Duration::from_secs(24),
    );
    cfg.tag = format!("{tag}{}", std::process::id() % 100);
    cfg.subnet = subnet;
    cfg.seed = seed;
    adjust(&mut cfg);
    let report = run(&cfg).unwrap_or_else(|e| panic!("the harness failed: {e}"));
    eprintln!("{}\n{}", report.nemesis.join("\n"), report.summary());
    assert!(
        report.garbled.is_empty(),
        "unreadable answers: {:?}",
        report.garbled
    );
    assert!(
        report.ok > 500,
        "too few operations succeeded to say anything: {}",
        report.summary()
    );
    // At least two faults, each injected and undone, then the final recovery.
    assert!(
        report.nemesis.len() >= 5,
        "the nemesis did too little: {:?}",
        report.nemesis
    );
    Some(report)
}

fn assert_linearizable(report: Option<Report>) {
    if let Some(report) = report {
        if report.verdict != Verdict::Linearizable {
            panic!("{}\n{:?}", report.summary(), report.verdict);
        }
    }
}

#[test]
fn registers_stay_linearizable_under_partitions() {
    assert_linearizable(run_test(
        "p",
        61,
        vec![Fault::Partition],
        0x5eed_0001,
        |_| {},
    ));
}

#[test]
fn registers_stay_linearizable_under_kills_and_pauses() {
    assert_linearizable(run_test(
        "k",
        62,
        vec![Fault::Kill, Fault::Pause],
        0x5eed_0002,
        |_| {},
    ));
}

/// The harness can fail: serializable reads are served from a member's local state (etcd
/// documents them as possibly stale) — a follower applies a little after the leader answered
/// the write, and a partitioned member keeps serving while the majority moves on. The checker
/// must find a stale read in such a history.
#[test]
fn stale_serializable_reads_under_partitions_are_caught() {
    let report = run_test("s", 63, vec![Fault::Partition], 0x5eed_0003, |cfg| {
        cfg.serializable_reads = true;
        // Longer faults: more time for a cut-off member to fall behind the majority.
        cfg.fault_interval = Duration::from_secs(4);
    });
    if let Some(report) = report {
        match &report.verdict {
            Verdict::NotLinearizable(anomaly) => {
                eprintln!("caught, as expected: {anomaly:?}");
            }
            other => panic!(
                "stale reads went unnoticed: {}\n{other:?}",
                report.summary()
            ),
        }
    }
}
