//! `keel-jepsen`: run one Jepsen-style register test against a keel cluster in network
//! namespaces (root needed) and print the verdict.
//!
//! ```text
//! keel-jepsen [--faults partition,kill,pause] [--duration 60] [--interval 5] [--nodes 3]
//!             [--clients 8] [--keys 4] [--seed N] [--dir DIR] [--keel PATH]
//! ```
//! Exit status: 0 linearizable with consistent watches, 1 not linearizable (or unreadable
//! answers, or a watch problem), 2 the checker gave up (time limit) or the harness failed.

use keel_jepsen::checker::Verdict;
use keel_jepsen::nemesis::Fault;
use keel_jepsen::runner::{run, TestConfig};
use std::path::PathBuf;
use std::time::Duration;

fn usage(why: &str) -> ! {
    eprintln!("keel-jepsen: {why}");
    eprintln!(
        "usage: keel-jepsen [--faults partition,kill,pause|none] [--duration SECS] [--interval SECS]\n\
         \x20                  [--nodes N] [--clients N] [--keys N] [--seed N] [--dir DIR] [--keel PATH]"
    );
    std::process::exit(2)
}

fn main() {
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.to_path_buf()))
        .unwrap_or_default();
    let mut faults = vec![Fault::Partition, Fault::Kill, Fault::Pause];
    let mut duration = 60u64;
    let mut interval = 5u64;
    let mut nodes = 3usize;
    let mut clients = 8usize;
    let mut keys = 4u64;
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    let mut dir = std::env::temp_dir().join(format!("keel-jepsen-{}", std::process::id()));
    let mut keel = exe_dir.join("keel");
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{flag} needs a value")))
        };
        let number = |v: String| -> u64 {
            v.parse()
                .unwrap_or_else(|_| usage(&format!("{flag}: {v:?} is not a number")))
        };
        match flag.as_str() {
            "--faults" => {
                let v = value();
                faults = if v == "none" {
                    Vec::new()
                } else {
                    v.split(',')
                        .map(|f| f.parse().unwrap_or_else(|e: String| usage(&e)))
                        .collect()
                };
            }
            "--duration" => duration = number(value()),
            "--interval" => interval = number(value()),
            "--nodes" => nodes = number(value()) as usize,
            "--clients" => clients = number(value()) as usize,
            "--keys" => keys = number(value()),
            "--seed" => seed = number(value()),
            "--dir" => dir = PathBuf::from(value()),
            "--keel" => keel = PathBuf::from(value()),
            "-h" | "--help" => usage("help"),
            other => usage(&format!("unknown flag {other}")),
        }
    }
    if !(1..=9).contains(&nodes) || clients == 0 || keys == 0 || interval == 0 {
        usage("--nodes must be 1..9; --clients, --keys and --interval more than 0");
    }
    if !keel.exists() {
        usage(&format!(
            "no keel binary at {} (give --keel)",
            keel.display()
        ));
    }
    let mut cfg = TestConfig::new(keel, dir, faults, Duration::from_secs(duration));
    cfg.nodes = nodes;
    cfg.clients = clients;
    cfg.keys = keys;
    cfg.seed = seed;
    cfg.fault_interval = Duration::from_secs(interval);
    match run(&cfg) {
        Ok(report) => {
            for line in &report.nemesis {
                println!("{line}");
            }
            println!("{}", report.summary());
            for g in &report.garbled {
                println!("garbled answer: {g}");
            }
            for p in &report.watch_problems {
                println!("watch: {p}");
            }
            if let Verdict::NotLinearizable(a) = &report.verdict {
                println!("{}", a.explanation);
            }
            let code = match report.verdict {
                Verdict::Linearizable
                    if report.garbled.is_empty() && report.watch_problems.is_empty() =>
                {
                    0
                }
                Verdict::Unknown => 2,
                _ => 1,
            };
            std::process::exit(code);
        }
        Err(e) => {
            eprintln!("keel-jepsen: {e}");
            std::process::exit(2);
        }
    }
}
