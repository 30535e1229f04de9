//! Printing a run's figures.

use super::load::Outcome;
use std::fmt::Write;

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// The human-readable summary: totals, throughput, latency percentiles, errors by message.
pub fn summary(title: &str, o: &Outcome) -> String {
    let h = &o.latency_us;
    let mut s = String::new();
    let _ = writeln!(s, "{title}");
    let _ = writeln!(
        s,
        "  total ops   {} ok, {} failed, in {:.2} s",
        h.count(),
        o.error_count(),
        o.elapsed.as_secs_f64()
    );
    let _ = writeln!(s, "  throughput  {:.1} ops/s", o.ops_per_sec());
    let _ = writeln!(
        s,
        "  latency ms  min {:.3}  mean {:.3}  p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
        ms(h.min()),
        h.mean() / 1000.0,
        ms(h.quantile(0.5)),
        ms(h.quantile(0.9)),
        ms(h.quantile(0.99)),
        ms(h.quantile(0.999)),
        ms(h.max())
    );
    if !o.errors.is_empty() {
        let _ = writeln!(s, "  errors:");
        for (m, c) in &o.errors {
            let _ = writeln!(s, "    {c:>8}  {m}");
        }
    }
    s
}

/// One `key=value` line for scripts.
pub fn result_line(tag: &str, o: &Outcome) -> String {
    let h = &o.latency_us;
    format!(
        "RESULT {tag} ok={} errors={} secs={:.3} ops_per_sec={:.1} p50_ms={:.3} p90_ms={:.3} \
         p99_ms={:.3} p999_ms={:.3} max_ms={:.3}",
        h.count(),
        o.error_count(),
        o.elapsed.as_secs_f64(),
        o.ops_per_sec(),
        ms(h.quantile(0.5)),
        ms(h.quantile(0.9)),
        ms(h.quantile(0.99)),
        ms(h.quantile(0.999)),
        ms(h.max())
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn figures_appear_in_both_formats() {
        let mut o = Outcome::default();
        for v in [10, 20, 30, 40] {
            // below 64 µs every value has its own bucket: exact percentiles
            o.latency_us.record(v);
        }
        o.errors
            .insert("ResourceExhausted: too many requests".into(), 2);
        o.elapsed = Duration::from_secs(2);
        let s = summary("put", &o);
        assert!(s.contains("4 ok, 2 failed"), "{s}");
        assert!(s.contains("throughput  2.0 ops/s"), "{s}");
        assert!(s.contains("p50 0.020"), "{s}");
        assert!(s.contains("max 0.040"), "{s}");
        assert!(
            s.contains("       2  ResourceExhausted: too many requests"),
            "{s}"
        );
        let r = result_line("mode=put", &o);
        assert!(
            r.starts_with("RESULT mode=put ok=4 errors=2 secs=2.000 ops_per_sec=2.0"),
            "{r}"
        );
        assert!(r.contains("p99_ms=0.040"), "{r}");
    }
}
