//! Leveled logging: one line per operator-relevant event, to stderr.
//!
//! A line looks like
//! ```text
//! 2026-11-25T18:40:24.123Z info  became leader term=2 id=8e9e05c52164694d
//! ```
//! UTC timestamp with milliseconds, level (padded to 5), message. The level threshold comes
//! from `--log-level` and accepts etcd's names: `debug`, `info`, `warn`, `error`, `panic`,
//! `fatal`. Lines are written with a single `write_all` under a lock so that threads never
//! interleave within a line. `panic` and `fatal` events are always written, whatever the
//! threshold; [`panic`] then panics and [`fatal`] exits with status 1, as zap does.
//!
//! Use the macros: `log_info!("listening for clients on {addr}")`.

use std::fmt;
use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

/// A log level, in increasing severity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Internal detail for developers.
    Debug = 0,
    /// Normal operator-relevant events (start, leader changes, snapshots).
    Info = 1,
    /// Something unexpected that keel handled.
    Warn = 2,
    /// A failed operation.
    Error = 3,
    /// An invariant violation: logged, then the thread panics.
    Panic = 4,
    /// A fatal condition: logged, then the process exits with status 1.
    Fatal = 5,
}

impl Level {
    /// Parse etcd's `--log-level` names.
    pub fn parse(text: &str) -> Option<Level> {
        Some(match text {
            "debug" => Level::Debug,
            "info" => Level::Info,
            "warn" => Level::Warn,
            "error" => Level::Error,
            "panic" | "dpanic" => Level::Panic,
            "fatal" => Level::Fatal,
            _ => return None,
        })
    }

    /// The name as written in log lines.
    pub fn name(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
            Level::Panic => "panic",
            Level::Fatal => "fatal",
        }
    }

    fn from_u8(v: u8) -> Level {
        match v {
            0 => Level::Debug,
            1 => Level::Info,
            2 => Level::Warn,
            3 => Level::Error,
            4 => Level::Panic,
            _ => Level::Fatal,
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

static THRESHOLD: AtomicU8 = AtomicU8::new(Level::Info as u8);

type Sink = Box<dyn Write + Send>;
static SINK: Mutex<Option<Sink>> = Mutex::new(None);

/// Set the threshold (from `--log-level`).
pub fn set_level(level: Level) {
    THRESHOLD.store(level as u8, Ordering::Relaxed);
}

/// The current threshold.
pub fn level() -> Level {
    Level::from_u8(THRESHOLD.load(Ordering::Relaxed))
}

/// Whether an event at `level` would be written.
pub fn enabled(level: Level) -> bool {
    level >= Level::Panic || level as u8 >= THRESHOLD.load(Ordering::Relaxed)
}

/// Send log lines to `sink` instead of stderr (`None` restores stderr). For tests and embedding.
pub fn set_sink(sink: Option<Sink>) {
    *SINK.lock() = sink;
}

/// Format one line (without writing it).
pub fn format_line(now: SystemTime, level: Level, message: fmt::Arguments<'_>) -> String {
    let mut line = format!("{} {:<5} {}", utc_timestamp(now), level.name(), message);
    // One event, one line: escape embedded newlines.
    if line.contains('\n') {
        line = line.replace('\n', "\\n");
    }
    line.push('\n');
    line
}

/// Write an event if `level` passes the threshold.
pub fn log(level: Level, message: fmt::Arguments<'_>) {
    if !enabled(level) {
        return;
    }
    let line = format_line(SystemTime::now(), level, message);
    let mut sink = SINK.lock();
    match sink.as_mut() {
        Some(w) => {
            let _ = w.write_all(line.as_bytes());
            let _ = w.flush();
        }
        None => {
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
        }
    }
}

/// Log at `panic` level, then panic with the same message.
pub fn panic(message: fmt::Arguments<'_>) -> ! {
    let text = message.to_string();
    log(Level::Panic, format_args!("{text}"));
    panic!("{text}");
}

/// Log at `fatal` level, then exit the process with status 1.
pub fn fatal(message: fmt::Arguments<'_>) -> ! {
    log(Level::Fatal, message);
    std::process::exit(1);
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` in UTC, computed by hand (civil-from-days, H. Hinnant).
pub fn utc_timestamp(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let millis = d.subsec_millis();
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, day) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        sod / 3600,
        (sod % 3600) / 60,
        sod % 60
    )
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Log at debug level: `log_debug!("...", args)`.
#[macro_export]
macro_rules! log_debug {
    ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Debug, format_args!($($arg)*)) };
}

/// Log at info level.
#[macro_export]
macro_rules! log_info {
    ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Info, format_args!($($arg)*)) };
}

/// Log at warn level.
#[macro_export]
macro_rules! log_warn {
    ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Warn, format_args!($($arg)*)) };
}

/// Log at error level.
#[macro_export]
macro_rules! log_error {
    ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Error, format_args!($($arg)*)) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    /// A sink tests can read back.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn timestamps_are_utc_calendar_dates() {
        let t = |s: u64, ms: u64| UNIX_EPOCH + Duration::from_secs(s) + Duration::from_millis(ms);
        assert_eq!(utc_timestamp(t(0, 0)), "1970-01-01T00:00:00.000Z");
        assert_eq!(utc_timestamp(t(951_782_400, 7)), "2000-02-29T00:00:00.007Z");
        assert_eq!(
            utc_timestamp(t(1_795_636_824, 123)),
            "2026-11-25T20:00:24.123Z"
        );
        assert_eq!(
            utc_timestamp(t(4_102_444_799, 999)),
            "2099-12-31T23:59:59.999Z"
        );
    }

    #[test]
    fn levels_parse_like_etcd() {
        for (s, l) in [
            ("debug", Level::Debug),
            ("info", Level::Info),
            ("warn", Level::Warn),
            ("error", Level::Error),
            ("panic", Level::Panic),
            ("fatal", Level::Fatal),
        ] {
            assert_eq!(Level::parse(s), Some(l));
            assert_eq!(Level::parse(l.name()), Some(l));
        }
        assert_eq!(Level::parse("WARN"), None);
        assert_eq!(Level::parse("warning"), None);
    }

    #[test]
    fn one_line_per_event_and_threshold_filters() {
        // The only test in this crate that touches the global logger (tests run in threads).
        let sink = Shared::default();
        set_sink(Some(Box::new(sink.clone())));
        set_level(Level::Warn);
        crate::log_info!("hidden {}", 1);
        crate::log_warn!("shown {}", 2);
        crate::log_error!("multi\nline");
        set_level(Level::Debug);
        crate::log_debug!("now visible");
        set_level(Level::Info);
        set_sink(None);
        let text = String::from_utf8(sink.0.lock().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].ends_with(" warn  shown 2"), "{}", lines[0]);
        assert!(lines[1].ends_with(" error multi\\nline"), "{}", lines[1]);
        assert!(lines[2].ends_with(" debug now visible"), "{}", lines[2]);
        assert!(lines.iter().all(|l| l.len() > 24 && &l[23..24] == "Z"));
    }

    #[test]
    fn panic_and_fatal_always_pass_the_threshold() {
        assert!(enabled(Level::Panic));
        assert!(enabled(Level::Fatal));
        let line = format_line(UNIX_EPOCH, Level::Panic, format_args!("x"));
        assert_eq!(line, "1970-01-01T00:00:00.000Z panic x\n");
    }
}
