//! A small Prometheus registry: counters, gauges and histograms rendered in the text exposition
//! format (version 0.0.4) for `GET /metrics`.
//!
//! Metric names follow etcd's (`etcd_server_has_leader`, `etcd_disk_wal_fsync_duration_seconds`,
//! `process_resident_memory_bytes`, ...) so that dashboards and `etcdctl check datascale` (which
//! scrapes `process_resident_memory_bytes`) work unchanged. Updates are lock-free atomics; only
//! registration and labelled-series creation take a lock.
//!
//! ```
//! use keel_server::metrics::Registry;
//! let r = Registry::new();
//! let c = r.counter("demo_total", "Demo counter.");
//! c.inc();
//! assert!(r.render().contains("demo_total 1\n"));
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

/// A monotonically increasing counter.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Add one.
    pub fn inc(&self) {
        self.add(1);
    }
    /// Add `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down (stored as f64 bits).
#[derive(Debug, Default)]
pub struct Gauge(AtomicU64);

impl Gauge {
    /// Set the value.
    pub fn set(&self, v: f64) {
        self.0.store(v.to_bits(), Ordering::Relaxed);
    }
    /// Add `d` (may be negative).
    pub fn add(&self, d: f64) {
        let _ = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                Some((f64::from_bits(b) + d).to_bits())
            });
    }
    /// Add one.
    pub fn inc(&self) {
        self.add(1.0);
    }
    /// Subtract one.
    pub fn dec(&self) {
        self.add(-1.0);
    }
    /// The current value.
    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
}

/// A histogram with fixed bucket upper bounds (cumulative on rendering).
#[derive(Debug)]
pub struct Histogram {
    bounds: Vec<f64>,
    /// Non-cumulative counts per bucket; the last slot is the +Inf overflow.
    counts: Vec<AtomicU64>,
    sum_bits: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    /// A histogram with these (strictly increasing, finite) upper bounds.
    pub fn new(bounds: &[f64]) -> Histogram {
        assert!(
            bounds.windows(2).all(|w| w[0] < w[1]),
            "bucket bounds must increase"
        );
        Histogram {
            bounds: bounds.to_vec(),
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_bits: AtomicU64::new(0f64.to_bits()),
            count: AtomicU64::new(0),
        }
    }

    /// Record one observation.
    pub fn observe(&self, v: f64) {
        let i = self
            .bounds
            .iter()
            .position(|&b| v <= b)
            .unwrap_or(self.bounds.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        let _ = self
            .sum_bits
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                Some((f64::from_bits(b) + v).to_bits())
            });
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Record a duration in seconds.
    pub fn observe_duration(&self, d: std::time::Duration) {
        self.observe(d.as_secs_f64());
    }

    /// Number of observations.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Sum of observations.
    pub fn sum(&self) -> f64 {
        f64::from_bits(self.sum_bits.load(Ordering::Relaxed))
    }
}

/// `count` bucket bounds `start, start·factor, start·factor², ...` (Prometheus'
/// `ExponentialBuckets`).
pub fn exponential_buckets(start: f64, factor: f64, count: usize) -> Vec<f64> {
    (0..count).map(|i| start * factor.powi(i as i32)).collect()
}

/// Prometheus' `DefBuckets`, used by etcd's gRPC handling-time histograms.
pub const DEFAULT_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A value computed when `/metrics` is scraped (process statistics).
pub type GaugeFn = Box<dyn Fn() -> Option<f64> + Send + Sync>;

enum Series {
    Counter(Arc<Counter>),
    Gauge(Arc<Gauge>),
    Histogram(Arc<Histogram>),
    GaugeFn(GaugeFn),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

struct Family {
    name: String,
    help: String,
    kind: Kind,
    label_names: Vec<String>,
    buckets: Vec<f64>,
    /// Label values → series.
    series: Mutex<BTreeMap<Vec<String>, Series>>,
}

/// A labelled family of counters (`grpc_server_handled_total{grpc_method=..,grpc_code=..}`).
pub struct CounterVec(Arc<Family>);

impl CounterVec {
    /// The counter for these label values (created on first use).
    pub fn with(&self, values: &[&str]) -> Arc<Counter> {
        assert_eq!(
            values.len(),
            self.0.label_names.len(),
            "label count for {}",
            self.0.name
        );
        let key: Vec<String> = values.iter().map(|s| s.to_string()).collect();
        let mut series = self.0.series.lock();
        match series
            .entry(key)
            .or_insert_with(|| Series::Counter(Arc::default()))
        {
            Series::Counter(c) => c.clone(),
            _ => unreachable!("counter family holds counters"),
        }
    }
}

/// A labelled family of gauges.
pub struct GaugeVec(Arc<Family>);

impl GaugeVec {
    /// The gauge for these label values (created on first use).
    pub fn with(&self, values: &[&str]) -> Arc<Gauge> {
        assert_eq!(
            values.len(),
            self.0.label_names.len(),
            "label count for {}",
            self.0.name
        );
        let key: Vec<String> = values.iter().map(|s| s.to_string()).collect();
        let mut series = self.0.series.lock();
        match series
            .entry(key)
            .or_insert_with(|| Series::Gauge(Arc::default()))
        {
            Series::Gauge(g) => g.clone(),
            _ => unreachable!("gauge family holds gauges"),
        }
    }
}

/// The set of metrics one member exposes.
#[derive(Default)]
pub struct Registry {
    families: Mutex<Vec<Arc<Family>>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("families", &self.families.lock().len())
            .finish()
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }

    fn family(
        &self,
        name: &str,
        help: &str,
        kind: Kind,
        labels: &[&str],
        buckets: &[f64],
    ) -> Arc<Family> {
        assert!(valid_name(name), "invalid metric name {name:?}");
        let mut families = self.families.lock();
        assert!(
            families.iter().all(|f| f.name != name),
            "metric {name} registered twice"
        );
        let f = Arc::new(Family {
            name: name.to_string(),
            help: help.to_string(),
            kind,
            label_names: labels.iter().map(|s| s.to_string()).collect(),
            buckets: buckets.to_vec(),
            series: Mutex::new(BTreeMap::new()),
        });
        families.push(f.clone());
        f
    }

    /// Register an unlabelled counter.
    pub fn counter(&self, name: &str, help: &str) -> Arc<Counter> {
        let f = self.family(name, help, Kind::Counter, &[], &[]);
        let c = Arc::new(Counter::default());
        f.series.lock().insert(vec![], Series::Counter(c.clone()));
        c
    }

    /// Register a labelled counter family.
    pub fn counter_vec(&self, name: &str, help: &str, labels: &[&str]) -> CounterVec {
        CounterVec(self.family(name, help, Kind::Counter, labels, &[]))
    }

    /// Register an unlabelled gauge.
    pub fn gauge(&self, name: &str, help: &str) -> Arc<Gauge> {
        let f = self.family(name, help, Kind::Gauge, &[], &[]);
        let g = Arc::new(Gauge::default());
        f.series.lock().insert(vec![], Series::Gauge(g.clone()));
        g
    }

    /// Register a labelled gauge family.
    pub fn gauge_vec(&self, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
        GaugeVec(self.family(name, help, Kind::Gauge, labels, &[]))
    }

    /// Register a gauge whose value is computed at scrape time (`None` omits the sample).
    pub fn gauge_fn(&self, name: &str, help: &str, f: GaugeFn) {
        let fam = self.family(name, help, Kind::Gauge, &[], &[]);
        fam.series.lock().insert(vec![], Series::GaugeFn(f));
    }

    /// Register an unlabelled histogram.
    pub fn histogram(&self, name: &str, help: &str, buckets: &[f64]) -> Arc<Histogram> {
        let f = self.family(name, help, Kind::Histogram, &[], buckets);
        let h = Arc::new(Histogram::new(buckets));
        f.series.lock().insert(vec![], Series::Histogram(h.clone()));
        h
    }

    /// Render every metric in the Prometheus text format.
    pub fn render(&self) -> String {
        let families: Vec<Arc<Family>> = self.families.lock().clone();
        let mut out = String::new();
        for f in families {
            let series = f.series.lock();
            if series.is_empty() {
                continue;
            }
            let _ = writeln!(out, "# HELP {} {}", f.name, escape_help(&f.help));
            let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind.name());
            for (values, s) in series.iter() {
                let labels = render_labels(&f.label_names, values, None);
                match s {
                    Series::Counter(c) => {
                        let _ = writeln!(out, "{}{} {}", f.name, labels, c.get());
                    }
                    Series::Gauge(g) => {
                        let _ = writeln!(out, "{}{} {}", f.name, labels, format_value(g.get()));
                    }
                    Series::GaugeFn(func) => {
                        if let Some(v) = func() {
                            let _ = writeln!(out, "{}{} {}", f.name, labels, format_value(v));
                        }
                    }
                    Series::Histogram(h) => {
                        let mut cumulative = 0;
                        for (i, bound) in f
                            .buckets
                            .iter()
                            .map(|b| format_value(*b))
                            .chain(["+Inf".to_string()])
                            .enumerate()
                        {
                            cumulative += h.counts[i].load(Ordering::Relaxed);
                            let l = render_labels(&f.label_names, values, Some(&bound));
                            let _ = writeln!(out, "{}_bucket{} {}", f.name, l, cumulative);
                        }
                        let _ = writeln!(out, "{}_sum{} {}", f.name, labels, format_value(h.sum()));
                        let _ = writeln!(out, "{}_count{} {}", f.name, labels, h.count());
                    }
                }
            }
        }
        out
    }
}

fn escape_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

fn escape_label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn render_labels(names: &[String], values: &[String], le: Option<&str>) -> String {
    let mut parts: Vec<String> = names
        .iter()
        .zip(values)
        .map(|(n, v)| format!("{n}=\"{}\"", escape_label(v)))
        .collect();
    if let Some(le) = le {
        parts.push(format!("le=\"{le}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

/// Prometheus float syntax: integers without a fraction, `+Inf`, `-Inf`, `NaN`.
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

/// One parsed sample line.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// Metric name (with `_bucket`/`_sum`/`_count` suffixes for histograms).
    pub name: String,
    /// Label pairs in order.
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: f64,
}

/// Parse the text format back into samples (comments skipped). Used by tests and by keelctl.
pub fn parse_text(text: &str) -> Result<Vec<Sample>, String> {
    let mut samples = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let err = |what: &str| format!("line {}: {what}: {line:?}", n + 1);
        let name_end = line.find(['{', ' ']).ok_or_else(|| err("no value"))?;
        let name = &line[..name_end];
        if !valid_name(name) {
            return Err(err("bad metric name"));
        }
        let mut rest = &line[name_end..];
        let mut labels = Vec::new();
        if let Some(r) = rest.strip_prefix('{') {
            rest = r;
            loop {
                rest = rest.trim_start_matches(',');
                if let Some(r) = rest.strip_prefix('}') {
                    rest = r;
                    break;
                }
                let eq = rest.find('=').ok_or_else(|| err("label without ="))?;
                let lname = rest[..eq].to_string();
                rest = rest[eq + 1..]
                    .strip_prefix('"')
                    .ok_or_else(|| err("unquoted label value"))?;
                let mut value = String::new();
                let mut chars = rest.char_indices();
                let end = loop {
                    match chars.next() {
                        None => return Err(err("unterminated label value")),
                        Some((i, '"')) => break i,
                        Some((_, '\\')) => match chars.next() {
                            Some((_, 'n')) => value.push('\n'),
                            Some((_, c)) => value.push(c),
                            None => return Err(err("bad escape")),
                        },
                        Some((_, c)) => value.push(c),
                    }
                };
                rest = &rest[end + 1..];
                labels.push((lname, value));
            }
        }
        let mut fields = rest.split_whitespace();
        let v = fields.next().ok_or_else(|| err("no value"))?;
        let value = match v {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            _ => v.parse().map_err(|_| err("bad value"))?,
        };
        samples.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    Ok(samples)
}

/// Resident set size of this process in bytes: `VmRSS` from `/proc/self/status` (reported in
/// kB, so no page-size assumption), falling back to `/proc/self/statm` × 4096.
pub fn process_rss_bytes() -> Option<u64> {
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        for line in status.lines() {
            if let Some(rest) = line.strip_prefix("VmRSS:") {
                let kb: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
                return Some(kb * 1024);
            }
        }
    }
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Virtual memory size of this process in bytes (`VmSize` from `/proc/self/status`).
pub fn process_virtual_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmSize:"))?;
    let kb: u64 = line["VmSize:".len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// Number of open file descriptors (entries of `/proc/self/fd`).
pub fn process_open_fds() -> Option<u64> {
    Some(std::fs::read_dir("/proc/self/fd").ok()?.count() as u64)
}

/// The metrics a keel member exposes, with etcd's names.
pub struct ServerMetrics {
    /// The registry to render.
    pub registry: Registry,
    /// `etcd_server_has_leader`: 1 if a leader is known.
    pub has_leader: Arc<Gauge>,
    /// `etcd_server_is_leader`: 1 if this member leads.
    pub is_leader: Arc<Gauge>,
    /// `etcd_server_leader_changes_seen_total`.
    pub leader_changes: Arc<Counter>,
    /// `etcd_server_proposals_committed_total` (a gauge in etcd: the commit index).
    pub proposals_committed: Arc<Gauge>,
    /// `etcd_server_proposals_applied_total` (a gauge in etcd: the applied index).
    pub proposals_applied: Arc<Gauge>,
    /// `etcd_server_proposals_pending`.
    pub proposals_pending: Arc<Gauge>,
    /// `etcd_server_proposals_failed_total`.
    pub proposals_failed: Arc<Counter>,
    /// `keel_server_proposal_appends_total`: Raft appends this member proposed (each carries
    /// every request that arrived in one batch of events).
    pub proposal_appends: Arc<Counter>,
    /// `keel_server_proposals_total`: requests this member proposed.
    pub proposals: Arc<Counter>,
    /// `etcd_disk_wal_fsync_duration_seconds`.
    pub wal_fsync: Arc<Histogram>,
    /// `etcd_disk_backend_commit_duration_seconds`.
    pub backend_commit: Arc<Histogram>,
    /// `etcd_mvcc_db_total_size_in_bytes`.
    pub db_total_size: Arc<Gauge>,
    /// `etcd_mvcc_put_total`.
    pub puts: Arc<Counter>,
    /// `etcd_mvcc_delete_total`.
    pub deletes: Arc<Counter>,
    /// `etcd_mvcc_range_total`.
    pub ranges: Arc<Counter>,
    /// `etcd_mvcc_txn_total`.
    pub txns: Arc<Counter>,
    /// `grpc_server_handled_total{grpc_type,grpc_service,grpc_method,grpc_code}`.
    pub grpc_handled: CounterVec,
}

impl ServerMetrics {
    /// Register every metric (including process statistics and the version gauges).
    pub fn new() -> ServerMetrics {
        let r = Registry::new();
        let ms = exponential_buckets(0.001, 2.0, 14);
        let m = ServerMetrics {
            has_leader: r.gauge(
                "etcd_server_has_leader",
                "Whether or not a leader exists. 1 is existence, 0 is not.",
            ),
            is_leader: r.gauge(
                "etcd_server_is_leader",
                "Whether or not this member is a leader. 1 if is, 0 otherwise.",
            ),
            leader_changes: r.counter(
                "etcd_server_leader_changes_seen_total",
                "The number of leader changes seen.",
            ),
            proposals_committed: r.gauge(
                "etcd_server_proposals_committed_total",
                "The total number of consensus proposals committed.",
            ),
            proposals_applied: r.gauge(
                "etcd_server_proposals_applied_total",
                "The total number of consensus proposals applied.",
            ),
            proposals_pending: r.gauge(
                "etcd_server_proposals_pending",
                "The current number of pending proposals to commit.",
            ),
            proposals_failed: r.counter(
                "etcd_server_proposals_failed_total",
                "The total number of failed proposals seen.",
            ),
            wal_fsync: r.histogram(
                "etcd_disk_wal_fsync_duration_seconds",
                "The latency distributions of fsync called by WAL.",
                &ms,
            ),
            proposal_appends: r.counter(
                "keel_server_proposal_appends_total",
                "Raft appends this member proposed (requests are batched per append).",
            ),
            proposals: r.counter(
                "keel_server_proposals_total",
                "Requests this member proposed.",
            ),
            backend_commit: r.histogram(
                "etcd_disk_backend_commit_duration_seconds",
                "The latency distributions of commit called by backend.",
                &ms,
            ),
            db_total_size: r.gauge(
                "etcd_mvcc_db_total_size_in_bytes",
                "Total size of the underlying database physically allocated in bytes.",
            ),
            puts: r.counter(
                "etcd_mvcc_put_total",
                "Total number of puts seen by this member.",
            ),
            deletes: r.counter(
                "etcd_mvcc_delete_total",
                "Total number of deletes seen by this member.",
            ),
            ranges: r.counter(
                "etcd_mvcc_range_total",
                "Total number of ranges seen by this member.",
            ),
            txns: r.counter(
                "etcd_mvcc_txn_total",
                "Total number of txns seen by this member.",
            ),
            grpc_handled: r.counter_vec(
                "grpc_server_handled_total",
                "Total number of RPCs completed on the server, regardless of success or failure.",
                &["grpc_type", "grpc_service", "grpc_method", "grpc_code"],
            ),
            registry: r,
        };
        let version = m.registry.gauge_vec(
            "etcd_server_version",
            "Which version is running. 1 for 'server_version' label with current version.",
            &["server_version"],
        );
        version
            .with(&[crate::version::EMULATED_ETCD_VERSION])
            .set(1.0);
        let cluster = m.registry.gauge_vec(
            "etcd_cluster_version",
            "Which version is running. 1 for 'cluster_version' label with current cluster version",
            &["cluster_version"],
        );
        cluster
            .with(&[crate::version::EMULATED_CLUSTER_VERSION])
            .set(1.0);
        m.registry.gauge_fn(
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            Box::new(|| process_rss_bytes().map(|b| b as f64)),
        );
        m.registry.gauge_fn(
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
            Box::new(|| process_virtual_bytes().map(|b| b as f64)),
        );
        m.registry.gauge_fn(
            "process_open_fds",
            "Number of open file descriptors.",
            Box::new(|| process_open_fds().map(|n| n as f64)),
        );
        m
    }

    /// The `/metrics` body.
    pub fn render(&self) -> String {
        self.registry.render()
    }
}

impl Default for ServerMetrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find<'a>(samples: &'a [Sample], name: &str, labels: &[(&str, &str)]) -> Option<&'a Sample> {
        samples.iter().find(|s| {
            s.name == name
                && s.labels.len() == labels.len()
                && s.labels
                    .iter()
                    .zip(labels)
                    .all(|((a, b), (c, d))| a == c && b == d)
        })
    }

    #[test]
    fn counters_gauges_render_and_parse_back() {
        let r = Registry::new();
        let c = r.counter("a_total", "A counter.");
        let g = r.gauge("b", "A gauge.\nwith newline");
        c.add(41);
        c.inc();
        g.set(2.5);
        g.dec();
        let v = r.counter_vec("req_total", "Requests.", &["method", "code"]);
        v.with(&["Put", "OK"]).add(3);
        v.with(&["Range", "Unavailable"]).inc();
        v.with(&["Put", "OK"]).inc();
        let text = r.render();
        assert!(text.contains("# TYPE a_total counter\n"), "{text}");
        assert!(
            text.contains("# HELP b A gauge.\\nwith newline\n"),
            "{text}"
        );
        let s = parse_text(&text).unwrap();
        assert_eq!(find(&s, "a_total", &[]).unwrap().value, 42.0);
        assert_eq!(find(&s, "b", &[]).unwrap().value, 1.5);
        assert_eq!(
            find(&s, "req_total", &[("method", "Put"), ("code", "OK")])
                .unwrap()
                .value,
            4.0
        );
        assert_eq!(
            find(
                &s,
                "req_total",
                &[("method", "Range"), ("code", "Unavailable")]
            )
            .unwrap()
            .value,
            1.0
        );
        assert_eq!(s.len(), 4);
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        let r = Registry::new();
        let h = r.histogram(
            "lat_seconds",
            "Latency.",
            &exponential_buckets(0.001, 2.0, 3),
        );
        for v in [0.0005, 0.001, 0.0015, 0.003, 0.5] {
            h.observe(v);
        }
        let s = parse_text(&r.render()).unwrap();
        let bucket = |le: &str| find(&s, "lat_seconds_bucket", &[("le", le)]).unwrap().value;
        assert_eq!(bucket("0.001"), 2.0);
        assert_eq!(bucket("0.002"), 3.0);
        assert_eq!(bucket("0.004"), 4.0);
        assert_eq!(bucket("+Inf"), 5.0);
        assert_eq!(find(&s, "lat_seconds_count", &[]).unwrap().value, 5.0);
        let sum = find(&s, "lat_seconds_sum", &[]).unwrap().value;
        assert!((sum - 0.506).abs() < 1e-9, "{sum}");
    }

    #[test]
    fn label_values_are_escaped() {
        let r = Registry::new();
        r.gauge_vec("g", "G.", &["l"])
            .with(&["a\"b\\c\nd"])
            .set(1.0);
        let text = r.render();
        assert!(text.contains(r#"g{l="a\"b\\c\nd"} 1"#), "{text}");
        let s = parse_text(&text).unwrap();
        assert_eq!(s[0].labels[0].1, "a\"b\\c\nd");
    }

    #[test]
    fn parser_rejects_garbage() {
        for bad in ["x{", "x{a=1} 2", "x{a=\"1} 2", "1x 2", "x abc", "x"] {
            assert!(parse_text(bad).is_err(), "{bad}");
        }
        assert!(parse_text("# only a comment\n\n").unwrap().is_empty());
    }

    #[test]
    fn server_metrics_include_process_rss() {
        let m = ServerMetrics::new();
        m.has_leader.set(1.0);
        m.wal_fsync.observe(0.002);
        let s = parse_text(&m.render()).unwrap();
        let rss = find(&s, "process_resident_memory_bytes", &[])
            .expect("rss")
            .value;
        // A running test binary has at least 1 MiB resident and less than 64 GiB.
        assert!(rss > 1e6 && rss < 64e9, "{rss}");
        assert_eq!(find(&s, "etcd_server_has_leader", &[]).unwrap().value, 1.0);
        assert_eq!(
            find(&s, "etcd_server_version", &[("server_version", "3.5.0")])
                .unwrap()
                .value,
            1.0
        );
        assert_eq!(
            find(
                &s,
                "etcd_disk_wal_fsync_duration_seconds_bucket",
                &[("le", "0.002")]
            )
            .unwrap()
            .value,
            1.0
        );
        assert!(find(
            &s,
            "etcd_disk_wal_fsync_duration_seconds_bucket",
            &[("le", "8.192")]
        )
        .is_some());
        assert!(find(&s, "process_open_fds", &[]).unwrap().value >= 3.0);
    }

    #[test]
    fn rss_grows_when_memory_is_touched() {
        let before = process_rss_bytes().unwrap();
        let mut v = vec![0u8; 64 << 20];
        for i in (0..v.len()).step_by(4096) {
            v[i] = 1;
        }
        let after = process_rss_bytes().unwrap();
        assert!(std::hint::black_box(&v)[4096] == 1);
        assert!(
            after >= before + (48 << 20),
            "before {before} after {after}"
        );
    }

    #[test]
    #[should_panic(expected = "registered twice")]
    fn duplicate_names_are_refused() {
        let r = Registry::new();
        r.counter("x", "x");
        r.gauge("x", "x");
    }
}
