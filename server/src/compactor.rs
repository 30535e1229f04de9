//! Automatic compaction (`--auto-compaction-mode` / `--auto-compaction-retention`), as a pure
//! state machine: the member asks it on every tick, with the time and the current revision,
//! whether to propose a compaction now, and at which revision.
//!
//! The rules are etcd's (`server/etcdserver/api/v3compactor`):
//! * **revision** mode, retention N: every 5 minutes, compact at `current − N` (if positive and
//!   not the revision compacted last time);
//! * **periodic** mode, retention D: the compaction period is D, or one hour if D is longer; the
//!   revision is sampled every period/10; at every period, compact at the newest sample that is
//!   at least D old, i.e. keep D of history.
//!
//! Only the leader runs it (compaction is a replicated request).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::config::AutoCompaction;

/// etcd's revision-mode check interval.
pub const REVISION_INTERVAL: Duration = Duration::from_secs(300);

/// The auto-compaction state machine.
#[derive(Debug)]
pub struct AutoCompactor {
    mode: AutoCompaction,
    /// Periodic mode: (time, revision) samples, oldest first.
    samples: VecDeque<(Instant, i64)>,
    last_sample: Option<Instant>,
    last_run: Instant,
    last_target: i64,
}

impl AutoCompactor {
    /// A compactor starting its clock at `now`.
    pub fn new(mode: AutoCompaction, now: Instant) -> AutoCompactor {
        AutoCompactor {
            mode,
            samples: VecDeque::new(),
            last_sample: None,
            last_run: now,
            last_target: 0,
        }
    }

    fn period(d: Duration) -> Duration {
        d.min(Duration::from_secs(3600))
            .max(Duration::from_millis(10))
    }

    /// Called on every tick; returns the revision to compact at, if it is time.
    pub fn poll(&mut self, now: Instant, current_rev: i64) -> Option<i64> {
        match self.mode {
            AutoCompaction::Off => None,
            AutoCompaction::Revision(n) => {
                if now.duration_since(self.last_run) < REVISION_INTERVAL {
                    return None;
                }
                self.last_run = now;
                let target = current_rev - n as i64;
                if target <= 0 || target == self.last_target {
                    return None;
                }
                self.last_target = target;
                Some(target)
            }
            AutoCompaction::Periodic(retention) => {
                let period = Self::period(retention);
                if self
                    .last_sample
                    .is_none_or(|t| now.duration_since(t) >= period / 10)
                {
                    self.samples.push_back((now, current_rev));
                    self.last_sample = Some(now);
                }
                if now.duration_since(self.last_run) < period {
                    return None;
                }
                self.last_run = now;
                // The newest sample that is at least `retention` old.
                let cutoff = now.checked_sub(retention)?;
                let target = self
                    .samples
                    .iter()
                    .rev()
                    .find(|(t, _)| *t <= cutoff)
                    .map(|(_, r)| *r)?;
                // Older samples are no longer needed.
                while self.samples.len() > 1 && self.samples[1].0 <= cutoff {
                    self.samples.pop_front();
                }
                if target <= 0 || target <= self.last_target {
                    return None;
                }
                self.last_target = target;
                Some(target)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_never_compacts() {
        let t0 = Instant::now();
        let mut c = AutoCompactor::new(AutoCompaction::Off, t0);
        assert_eq!(c.poll(t0 + Duration::from_secs(100_000), 1000), None);
    }

    #[test]
    fn revision_mode_every_five_minutes_keeps_n_revisions() {
        let t0 = Instant::now();
        let mut c = AutoCompactor::new(AutoCompaction::Revision(100), t0);
        assert_eq!(
            c.poll(t0 + Duration::from_secs(299), 1000),
            None,
            "not yet 5 minutes"
        );
        assert_eq!(c.poll(t0 + Duration::from_secs(300), 1000), Some(900));
        assert_eq!(
            c.poll(t0 + Duration::from_secs(400), 2000),
            None,
            "next run 5 minutes later"
        );
        assert_eq!(
            c.poll(t0 + Duration::from_secs(600), 1000),
            None,
            "same target as last time"
        );
        assert_eq!(c.poll(t0 + Duration::from_secs(900), 1500), Some(1400));
        let mut young = AutoCompactor::new(AutoCompaction::Revision(100), t0);
        assert_eq!(
            young.poll(t0 + Duration::from_secs(300), 50),
            None,
            "nothing below 0"
        );
    }

    #[test]
    fn periodic_mode_keeps_the_retention_window() {
        let t0 = Instant::now();
        let d = Duration::from_secs(10);
        let mut c = AutoCompactor::new(AutoCompaction::Periodic(d), t0);
        // Revision grows by 10 per second; tick every 100 ms.
        let mut got = Vec::new();
        for ms in (0..=35_000u64).step_by(100) {
            let now = t0 + Duration::from_millis(ms);
            if let Some(rev) = c.poll(now, 1 + (ms / 100) as i64) {
                got.push((ms, rev));
            }
        }
        // Every 10 s, compact at the revision of ~10 s earlier (sampled every second).
        assert_eq!(got, vec![(10_000, 1), (20_000, 101), (30_000, 201)]);
    }

    #[test]
    fn periodic_mode_with_long_retention_runs_hourly() {
        let t0 = Instant::now();
        let mut c = AutoCompactor::new(AutoCompaction::Periodic(Duration::from_secs(5 * 3600)), t0);
        let mut runs = Vec::new();
        for min in 0..=(7 * 60u64) {
            let now = t0 + Duration::from_secs(min * 60);
            if let Some(rev) = c.poll(now, 1 + min as i64) {
                runs.push((min, rev));
            }
        }
        // Nothing is 5 h old before hour 5; then hourly, keeping 5 h (samples every 6 min).
        assert_eq!(runs, vec![(300, 1), (360, 61), (420, 121)]);
    }
}
