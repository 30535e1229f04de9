//! `keel-bench`: load generator for keel and etcd (see `src/bench/mod.rs` and
//! `src/bench/README.md`).

#[path = "../bench/mod.rs"]
mod bench;

use bench::args::{self, Mode};
use bench::{load, report, scrape, watch};
use std::process::ExitCode;

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.iter().any(|a| a == "-h" || a == "--help") {
        print!("{}", args::USAGE);
        return ExitCode::SUCCESS;
    }
    let o = match args::parse(&argv) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("keel-bench: {e}\n\n{}", args::USAGE);
            return ExitCode::from(2);
        }
    };
    let before: Vec<_> = if o.stage_metrics {
        o.endpoints.iter().map(|e| scrape::scrape(e)).collect()
    } else {
        Vec::new()
    };
    let mode = match o.mode {
        Mode::Put => "put",
        Mode::Range if o.serializable => "range-serializable",
        Mode::Range => "range-linearizable",
        Mode::Txn => "txn",
        Mode::WatchLatency => "watch-latency",
    };
    // watch-latency always runs its putter and watchers on threads.
    let driver = if o.mode == Mode::WatchLatency {
        "threads"
    } else {
        o.driver.name()
    };
    let tag = format!(
        "mode={mode} driver={driver} clients={} endpoints={} key_size={} val_size={}",
        o.clients,
        o.endpoints.len(),
        o.key_size,
        o.val_size
    );
    let failed = if o.mode == Mode::WatchLatency {
        let w = watch::run(&o);
        print!(
            "{}",
            report::summary("puts (watch-latency putter)", &w.puts)
        );
        print!(
            "{}",
            report::summary(
                &format!("put -> event delay over {} watchers", o.watchers),
                &w.events
            )
        );
        if o.result_line {
            println!(
                "{}",
                report::result_line(&format!("{tag} part=events"), &w.events)
            );
        }
        w.puts.latency_us.count() == 0
    } else {
        let out = load::run_closed_loop(&o);
        print!(
            "{}",
            report::summary(
                &format!(
                    "{mode}: {} clients over {} endpoint(s), key {} B, value {} B, driver {driver}",
                    o.clients,
                    o.endpoints.len(),
                    o.key_size,
                    o.val_size
                ),
                &out
            )
        );
        if o.result_line {
            println!("{}", report::result_line(&tag, &out));
        }
        out.latency_us.count() == 0
    };
    if o.stage_metrics {
        println!("stages (from /metrics, after - before):");
        for (e, b) in o.endpoints.iter().zip(before) {
            match (b, scrape::scrape(e)) {
                (Ok(b), Ok(a)) => {
                    println!(
                        "  {e}: {}",
                        scrape::StageFigures::between(&b, &a).describe()
                    )
                }
                (Err(x), _) | (_, Err(x)) => println!("  {e}: metrics unavailable: {x}"),
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
