//! `keel-bench`, a load generator for etcd-compatible servers, in the shape of etcd's
//! `tools/benchmark`: `--clients` clients, each with its own gRPC connection to one of
//! `--endpoints`, issue puts, ranges or txns back to back for a duration or a total count (by
//! default all connections run on one mio event loop; `--driver threads` gives each client an
//! OS thread and a blocking [`keel_net::client::Client`]); the tool prints throughput, latency percentiles from a
//! log-linear histogram, and failures grouped by message. Because it drives keel and etcd with the
//! same client code, the ratio of the two is a fair comparison on one machine.
//!
//! Files: `args` (flags), `histogram` (percentile math), `load` (the closed-loop load and its
//! `threads` driver), `loop_driver` + `unary_conn` (the default `loop` driver: connections on
//! mio event loops), `watch` (put → watch-event delay), `scrape` (`/metrics` deltas: entries per fsync and per
//! backend commit), `report` (printing). `compare.sh` runs keel and etcd side by side; the figures
//! are in `README.md` next to this file.

pub mod args;
pub mod histogram;
pub mod load;
pub mod loop_driver;
pub mod report;
pub mod scrape;
pub mod unary_conn;
pub mod watch;
