//! `keel-bench`, a load generator for etcd-compatible servers, in the shape of etcd's
//! `tools/benchmark`: `--clients` threads, each with its own blocking gRPC connection
//! ([`keel_net::client::Client`]) to one of `--endpoints`, issue puts, ranges or txns back to
//! back for a duration or a total count; the tool prints throughput, latency percentiles from a
//! log-linear histogram, and failures grouped by message. Because it drives keel and etcd with the
//! same client code, the ratio of the two is a fair comparison on one machine.
//!
//! Files: `args` (flags), `histogram` (percentile math), `load` (the closed-loop clients),
//! `watch` (put → watch-event delay), `scrape` (`/metrics` deltas: entries per fsync and per
//! backend commit), `report` (printing). `compare.sh` runs keel and etcd side by side; the figures
//! are in `README.md` next to this file.

pub mod args;
pub mod histogram;
pub mod load;
pub mod report;
pub mod scrape;
pub mod watch;
