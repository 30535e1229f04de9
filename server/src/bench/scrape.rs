//! Reads a member's Prometheus `/metrics` (plain HTTP/1.0 on the client port, which both etcd
//! and keel serve) and turns the before/after difference into batching figures: how many Raft
//! entries each WAL fsync and each backend (btree/bbolt) commit covered.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Metric name → value, labels summed away.
pub type Samples = BTreeMap<String, f64>;

/// Parses Prometheus text exposition, summing samples that differ only by labels.
pub fn parse_metrics(text: &str) -> Samples {
    let mut out = Samples::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, rest) = match line.find('{') {
            Some(i) => match line[i..].find('}') {
                Some(j) => (&line[..i], &line[i + j + 1..]),
                None => continue,
            },
            None => match line.split_once(' ') {
                Some((n, r)) => (n, r),
                None => continue,
            },
        };
        let Some(v) = rest
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok())
        else {
            continue;
        };
        *out.entry(name.to_string()).or_default() += v;
    }
    out
}

/// Fetches and parses `http://endpoint/metrics`.
pub fn scrape(endpoint: &str) -> Result<Samples, String> {
    let mut s = TcpStream::connect(endpoint).map_err(|e| format!("{endpoint}: {e}"))?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    write!(s, "GET /metrics HTTP/1.0\r\nHost: {endpoint}\r\n\r\n").map_err(|e| e.to_string())?;
    let mut body = Vec::new();
    s.read_to_end(&mut body)
        .map_err(|e| format!("{endpoint}: {e}"))?;
    let text = String::from_utf8_lossy(&body);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return Err(format!("{endpoint}: no HTTP header end"));
    };
    if !head.starts_with("HTTP/1.") || head.split_whitespace().nth(1).is_none_or(|c| c != "200") {
        return Err(format!(
            "{endpoint}: {}",
            head.lines().next().unwrap_or_default()
        ));
    }
    Ok(parse_metrics(body))
}

/// Batching figures between two scrapes of one member.
#[derive(Debug, PartialEq)]
pub struct StageFigures {
    /// Raft entries committed meanwhile.
    pub entries: f64,
    /// WAL fsyncs meanwhile, and their mean duration in ms.
    pub fsyncs: f64,
    /// Mean fsync duration (ms).
    pub fsync_ms: f64,
    /// Backend commits meanwhile.
    pub commits: f64,
    /// Mean backend commit duration (ms).
    pub commit_ms: f64,
    /// Resident memory at the second scrape (MiB), if exported.
    pub rss_mib: Option<f64>,
}

fn delta(a: &Samples, b: &Samples, name: &str) -> f64 {
    b.get(name).copied().unwrap_or(0.0) - a.get(name).copied().unwrap_or(0.0)
}

impl StageFigures {
    /// The difference `after − before`.
    pub fn between(before: &Samples, after: &Samples) -> StageFigures {
        let fsyncs = delta(before, after, "etcd_disk_wal_fsync_duration_seconds_count");
        let fsync_s = delta(before, after, "etcd_disk_wal_fsync_duration_seconds_sum");
        let commits = delta(
            before,
            after,
            "etcd_disk_backend_commit_duration_seconds_count",
        );
        let commit_s = delta(
            before,
            after,
            "etcd_disk_backend_commit_duration_seconds_sum",
        );
        let per = |s: f64, n: f64| if n > 0.0 { 1000.0 * s / n } else { 0.0 };
        StageFigures {
            entries: delta(before, after, "etcd_server_proposals_committed_total"),
            fsyncs,
            fsync_ms: per(fsync_s, fsyncs),
            commits,
            commit_ms: per(commit_s, commits),
            rss_mib: after
                .get("process_resident_memory_bytes")
                .map(|b| b / (1024.0 * 1024.0)),
        }
    }

    /// One human-readable line.
    pub fn describe(&self) -> String {
        let ratio = |n: f64| if n > 0.0 { self.entries / n } else { 0.0 };
        format!(
            "entries committed {:.0}; WAL fsyncs {:.0} (mean {:.2} ms, {:.1} entries/fsync); \
             backend commits {:.0} (mean {:.2} ms, {:.1} entries/commit){}",
            self.entries,
            self.fsyncs,
            self.fsync_ms,
            ratio(self.fsyncs),
            self.commits,
            self.commit_ms,
            ratio(self.commits),
            self.rss_mib
                .map(|m| format!("; RSS {m:.1} MiB"))
                .unwrap_or_default()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str = "# HELP x y\n# TYPE x counter\n\
        etcd_disk_wal_fsync_duration_seconds_count 10\n\
        etcd_disk_wal_fsync_duration_seconds_sum 0.02\n\
        etcd_disk_backend_commit_duration_seconds_count 5\n\
        etcd_disk_backend_commit_duration_seconds_sum 0.01\n\
        etcd_server_proposals_committed_total 100\n\
        etcd_mvcc_put_total{a=\"1\"} 2\netcd_mvcc_put_total{a=\"2\"} 3\n";
    const AFTER: &str = "etcd_disk_wal_fsync_duration_seconds_count 20\n\
        etcd_disk_wal_fsync_duration_seconds_sum 0.04\n\
        etcd_disk_backend_commit_duration_seconds_count 7\n\
        etcd_disk_backend_commit_duration_seconds_sum 0.03\n\
        etcd_server_proposals_committed_total 600\n\
        process_resident_memory_bytes 1.048576e+07\n";

    #[test]
    fn parses_and_sums_labelled_samples() {
        let s = parse_metrics(BEFORE);
        assert_eq!(s["etcd_mvcc_put_total"], 5.0);
        assert_eq!(s["etcd_server_proposals_committed_total"], 100.0);
        assert!(!s.contains_key("x"));
    }

    #[test]
    fn stage_figures_are_deltas() {
        let f = StageFigures::between(&parse_metrics(BEFORE), &parse_metrics(AFTER));
        assert_eq!(f.entries, 500.0);
        assert_eq!(f.fsyncs, 10.0);
        assert!((f.fsync_ms - 2.0).abs() < 1e-9);
        assert_eq!(f.commits, 2.0);
        assert!((f.commit_ms - 10.0).abs() < 1e-9);
        assert_eq!(f.rss_mib, Some(10.0));
        assert!(f.describe().contains("50.0 entries/fsync"));
        assert!(f.describe().contains("250.0 entries/commit"));
    }
}
