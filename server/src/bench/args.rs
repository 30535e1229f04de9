//! Command-line flags of `keel-bench`, named after etcd's `tools/benchmark` where one exists.

use std::fmt;
use std::time::Duration;

/// What load to generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `Put` of K-byte keys and V-byte values.
    Put,
    /// `Range` of single keys (linearizable or serializable).
    Range,
    /// `Txn` of `--txn-ops` puts guarded by one compare.
    Txn,
    /// Put → watch-event delay seen by `--watchers` watch streams.
    WatchLatency,
}

/// How the closed-loop clients are run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Driver {
    /// All connections multiplexed on `--loop-threads` mio event loops (the default).
    Loop,
    /// One OS thread with a blocking connection per client.
    Threads,
}

impl Driver {
    /// The flag value naming this driver.
    pub fn name(self) -> &'static str {
        match self {
            Driver::Loop => "loop",
            Driver::Threads => "threads",
        }
    }
}

/// Everything the flags say.
#[derive(Clone, Debug)]
pub struct Options {
    /// The load.
    pub mode: Mode,
    /// `host:port` of each member; client `i` talks to `endpoints[i % len]`.
    pub endpoints: Vec<String>,
    /// Concurrent clients (one TCP connection each; one thread each with `--driver threads`).
    pub clients: usize,
    /// How the clients of `put`, `range` and `txn` are run.
    pub driver: Driver,
    /// `--driver loop`: event-loop threads the connections are split over.
    pub loop_threads: usize,
    /// Stop after this many operations (all clients together)…
    pub total: Option<u64>,
    /// …or after this long (both may be given; whichever comes first).
    pub duration: Option<Duration>,
    /// Key length in bytes.
    pub key_size: usize,
    /// Value length in bytes.
    pub val_size: usize,
    /// Keys `0, 1, 2, …` instead of random keys.
    pub sequential_keys: bool,
    /// Random keys are drawn from `[0, key_space_size)`; sequential keys wrap at it.
    pub key_space_size: u64,
    /// `range`: serializable (`s`) instead of linearizable (`l`) reads.
    pub serializable: bool,
    /// `txn`: puts per transaction.
    pub txn_ops: usize,
    /// `watch-latency`: number of watch streams.
    pub watchers: usize,
    /// `watch-latency`: puts per second.
    pub put_rate: u64,
    /// Per-call deadline.
    pub call_timeout: Duration,
    /// Scrape each endpoint's `/metrics` before and after and print batching figures.
    pub stage_metrics: bool,
    /// Print one machine-readable `RESULT` line at the end.
    pub result_line: bool,
    /// Key prefix (distinguishes runs sharing a cluster).
    pub prefix: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            mode: Mode::Put,
            endpoints: vec!["127.0.0.1:2379".into()],
            clients: 1,
            driver: Driver::Loop,
            loop_threads: 1,
            total: None,
            duration: None,
            key_size: 8,
            val_size: 8,
            sequential_keys: false,
            key_space_size: 1_000_000,
            serializable: false,
            txn_ops: 1,
            watchers: 10,
            put_rate: 100,
            call_timeout: Duration::from_secs(10),
            stage_metrics: false,
            result_line: false,
            prefix: String::new(),
        }
    }
}

/// A flag the tool could not accept.
#[derive(Debug, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Usage text.
pub const USAGE: &str = "\
keel-bench: load generator for etcd-compatible servers (keel, etcd)

usage: keel-bench <put|range|txn|watch-latency> [flags]

  --endpoints a,b,c      members (host:port); clients are spread round-robin [127.0.0.1:2379]
  --clients N            concurrent clients, each its own connection [1]
  --driver loop|threads  put/range/txn: run the clients as connections on mio event loops
                         (loop), or as one OS thread with a blocking connection each
                         (threads) [loop]; watch-latency always uses threads
  --loop-threads N       driver loop: event-loop threads, connections split evenly [1]
  --conns N              accepted for etcd's benchmark; must equal --clients if given
  --total N              stop after N operations in all
  --duration D           stop after D (e.g. 20s, 500ms, 1m); default 10s if --total is absent
  --key-size K           key bytes [8]
  --val-size V           value bytes [8]
  --sequential-keys      keys 0,1,2,... (wrapping at --key-space-size) instead of random
  --key-space-size N     range of key numbers [1000000]
  --consistency l|s      range: linearizable or serializable [l]
  --txn-ops N            txn: puts per transaction [1]
  --watchers N           watch-latency: watch streams [10]
  --put-rate R           watch-latency: puts per second [100]
  --call-timeout D       per-call deadline [10s]
  --prefix P             key prefix
  --stage-metrics        scrape /metrics of each endpoint before/after and print batching figures
  --result-line          also print one machine-readable RESULT line
";

/// Parses `1.5s`, `200ms`, `2m`, or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, UsageError> {
    let bad = || UsageError(format!("invalid duration {s:?} (examples: 20s, 500ms, 1m)"));
    let (num, unit) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num.parse().map_err(|_| bad())?;
    if !v.is_finite() || v <= 0.0 {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(v * unit))
}

fn number<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, UsageError> {
    v.parse()
        .map_err(|_| UsageError(format!("invalid value {v:?} for --{flag}")))
}

/// Parses the arguments after the program name.
pub fn parse(args: &[String]) -> Result<Options, UsageError> {
    let mut o = Options::default();
    let mut it = args.iter();
    let mode = it
        .next()
        .ok_or_else(|| UsageError("missing mode (put, range, txn, watch-latency)".into()))?;
    o.mode = match mode.as_str() {
        "put" => Mode::Put,
        "range" => Mode::Range,
        "txn" | "txn-put" => Mode::Txn,
        "watch-latency" => Mode::WatchLatency,
        other => return Err(UsageError(format!("unknown mode {other:?}"))),
    };
    let mut conns = None;
    while let Some(arg) = it.next() {
        let Some(flag) = arg.strip_prefix("--") else {
            return Err(UsageError(format!("unexpected argument {arg:?}")));
        };
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (flag, None),
        };
        let boolean = matches!(name, "sequential-keys" | "stage-metrics" | "result-line");
        let value = if boolean {
            match inline.as_deref() {
                None | Some("true") => String::from("true"),
                Some("false") => String::from("false"),
                Some(v) => return Err(UsageError(format!("invalid boolean {v:?} for --{name}"))),
            }
        } else {
            match inline {
                Some(v) => v,
                None => it
                    .next()
                    .cloned()
                    .ok_or_else(|| UsageError(format!("flag --{name} needs a value")))?,
            }
        };
        match name {
            "endpoints" => {
                o.endpoints = value
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(|s| s.trim_start_matches("http://").to_string())
                    .collect();
                if o.endpoints.is_empty() {
                    return Err(UsageError("--endpoints is empty".into()));
                }
            }
            "clients" => o.clients = number(name, &value)?,
            "driver" => {
                o.driver = match value.as_str() {
                    "loop" => Driver::Loop,
                    "threads" => Driver::Threads,
                    v => {
                        return Err(UsageError(format!(
                            "--driver must be loop or threads, not {v:?}"
                        )))
                    }
                }
            }
            "loop-threads" => o.loop_threads = number(name, &value)?,
            "conns" => conns = Some(number::<usize>(name, &value)?),
            "total" => o.total = Some(number(name, &value)?),
            "duration" => o.duration = Some(parse_duration(&value)?),
            "key-size" => o.key_size = number(name, &value)?,
            "val-size" => o.val_size = number(name, &value)?,
            "sequential-keys" => o.sequential_keys = value == "true",
            "key-space-size" => o.key_space_size = number(name, &value)?,
            "consistency" => {
                o.serializable = match value.as_str() {
                    "l" => false,
                    "s" => true,
                    v => {
                        return Err(UsageError(format!(
                            "--consistency must be l or s, not {v:?}"
                        )))
                    }
                }
            }
            "txn-ops" => o.txn_ops = number(name, &value)?,
            "watchers" => o.watchers = number(name, &value)?,
            "put-rate" => o.put_rate = number(name, &value)?,
            "call-timeout" => o.call_timeout = parse_duration(&value)?,
            "prefix" => o.prefix = value,
            "stage-metrics" => o.stage_metrics = value == "true",
            "result-line" => o.result_line = value == "true",
            _ => return Err(UsageError(format!("unknown flag --{name}"))),
        }
    }
    if o.clients == 0 {
        return Err(UsageError("--clients must be at least 1".into()));
    }
    if o.loop_threads == 0 {
        return Err(UsageError("--loop-threads must be at least 1".into()));
    }
    if let Some(c) = conns {
        if c != o.clients {
            return Err(UsageError(format!(
                "--conns {c} differs from --clients {}: every client has its own connection here",
                o.clients
            )));
        }
    }
    if o.key_size == 0 {
        return Err(UsageError("--key-size must be at least 1".into()));
    }
    if o.key_space_size == 0 {
        return Err(UsageError("--key-space-size must be at least 1".into()));
    }
    if o.txn_ops == 0 {
        return Err(UsageError("--txn-ops must be at least 1".into()));
    }
    if o.mode == Mode::WatchLatency && (o.watchers == 0 || o.put_rate == 0) {
        return Err(UsageError(
            "--watchers and --put-rate must be at least 1".into(),
        ));
    }
    if o.total.is_none() && o.duration.is_none() {
        o.duration = Some(Duration::from_secs(10));
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Options, UsageError> {
        parse(&s.split_whitespace().map(String::from).collect::<Vec<_>>())
    }

    #[test]
    fn etcd_benchmark_style_command_line() {
        let o = p(
            "put --endpoints http://127.0.0.1:1,127.0.0.1:2 --conns 4 --clients=4 \
                   --key-size 8 --sequential-keys --total 100000 --val-size 256",
        )
        .unwrap();
        assert_eq!(o.mode, Mode::Put);
        assert_eq!(o.endpoints, vec!["127.0.0.1:1", "127.0.0.1:2"]);
        assert_eq!(o.clients, 4);
        assert_eq!(o.total, Some(100_000));
        assert_eq!(o.duration, None);
        assert!(o.sequential_keys);
        assert_eq!((o.key_size, o.val_size), (8, 256));
    }

    #[test]
    fn defaults_and_errors() {
        let o = p("range --consistency s").unwrap();
        assert!(o.serializable);
        assert_eq!(o.duration, Some(Duration::from_secs(10)));
        assert!(p("").is_err());
        assert!(p("get").is_err());
        assert!(p("put --clients 0").is_err());
        assert!(p("put --clients 2 --conns 1").is_err());
        assert!(p("put --bogus 1").is_err());
        assert!(p("put --total").is_err());
        assert!(p("range --consistency x").is_err());
        assert!(p("put --sequential-keys=maybe").is_err());
        assert!(p("put --driver fibers").is_err());
        assert!(p("put --loop-threads 0").is_err());
    }

    #[test]
    fn driver_flags() {
        let o = p("put --clients 8").unwrap();
        assert_eq!((o.driver, o.loop_threads), (Driver::Loop, 1));
        let o = p("put --driver threads").unwrap();
        assert_eq!(o.driver, Driver::Threads);
        let o = p("txn --driver=loop --loop-threads 3").unwrap();
        assert_eq!((o.driver, o.loop_threads), (Driver::Loop, 3));
        assert_eq!(Driver::Threads.name(), "threads");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("20s").unwrap(), Duration::from_secs(20));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("abc").is_err());
    }
}
