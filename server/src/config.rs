//! The `keel` command line: etcd's flag names, meanings and defaults, parsed by hand.
//!
//! # Syntax (as Go's `flag` package, which etcd uses)
//! * `--flag value`, `--flag=value`, and the same with a single dash (`-flag value`).
//! * Boolean flags take no separate value: `--pre-vote` or `--pre-vote=false`.
//! * Every flag can also come from the environment as `ETCD_<FLAG>` with the name upper-cased
//!   and `-` replaced by `_` (`ETCD_NAME`, `ETCD_DATA_DIR`, `ETCD_INITIAL_CLUSTER`, ...). A flag
//!   given on the command line wins over its environment variable (etcd logs the conflict; so do
//!   we, as a warning). Unknown `ETCD_*` variables produce a warning, as in etcd.
//! * An unknown flag, a missing value, a stray positional argument or a bad value is an error
//!   that names the flag and the value.
//!
//! # Defaults (`etcd --help` of 3.4/3.5, except the data directory)
//! With no flags at all, one member named `default` serves clients on `http://localhost:2379`
//! (bound to 127.0.0.1:2379) and peers on `http://localhost:2380`, with its data in
//! `./default.keel` (etcd uses `<name>.etcd`; keel uses `<name>.keel` so that the two never
//! share a directory by accident).
//!
//! # Member and cluster IDs
//! Computed exactly as etcd 3.x computes them for a new cluster (`membership.NewMember`,
//! `RaftCluster.genID`):
//! * member ID = first 8 bytes, big-endian, of SHA-1(sorted peer URLs joined with "" ++ cluster
//!   token [++ decimal Unix seconds, for members added at run time]);
//! * cluster ID = first 8 bytes, big-endian, of SHA-1(the sorted member IDs, each as 8 bytes
//!   big-endian).
//!
//! so the same flags give the same IDs as a real etcd (checked in the tests against IDs printed
//! by etcd 3.4.23).

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::log::Level;
use crate::url::{self, Url, UrlError};

/// The etcd version keel emulates on the wire (see `version.rs` for why 3.5.0).
pub use crate::version::EMULATED_ETCD_VERSION;

/// etcd's `DefaultMaxRequestBytes` (1.5 MiB).
pub const DEFAULT_MAX_REQUEST_BYTES: u32 = 1024 * 1024 * 3 / 2;
/// etcd's `DefaultQuotaBytes` (2 GiB), used when `--quota-backend-bytes` is 0.
pub const DEFAULT_QUOTA_BYTES: u64 = 2 * 1024 * 1024 * 1024;
/// etcd's `MaxQuotaBytes` (8 GiB): above it etcd (and keel) log a warning.
pub const MAX_QUOTA_BYTES: u64 = 8 * 1024 * 1024 * 1024;
/// etcd's `maxElectionMs`.
pub const MAX_ELECTION_MS: u64 = 50_000;

/// Whether a flag takes a value or is a switch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Value,
    Bool,
}

/// One accepted flag: its etcd name, default (as `--help` shows it) and help text.
struct FlagSpec {
    name: &'static str,
    default: &'static str,
    kind: Kind,
    section: &'static str,
    help: &'static str,
}

const fn value(
    name: &'static str,
    default: &'static str,
    section: &'static str,
    help: &'static str,
) -> FlagSpec {
    FlagSpec {
        name,
        default,
        kind: Kind::Value,
        section,
        help,
    }
}

const fn switch(
    name: &'static str,
    default: &'static str,
    section: &'static str,
    help: &'static str,
) -> FlagSpec {
    FlagSpec {
        name,
        default,
        kind: Kind::Bool,
        section,
        help,
    }
}

/// Every flag keel accepts, in `--help` order.
const FLAGS: &[FlagSpec] = &[
    value("name", "default", "Member", "Human-readable name for this member."),
    value("data-dir", "${name}.keel", "Member", "Path to the data directory."),
    value("snapshot-count", "100000", "Member", "Number of committed transactions to trigger a snapshot to disk."),
    value("heartbeat-interval", "100", "Member", "Time (in milliseconds) of a heartbeat interval."),
    value("election-timeout", "1000", "Member", "Time (in milliseconds) for an election to timeout."),
    value("listen-peer-urls", "http://localhost:2380", "Member", "List of URLs to listen on for peer traffic."),
    value("listen-client-urls", "http://localhost:2379", "Member", "List of URLs to listen on for client traffic."),
    value("quota-backend-bytes", "0", "Member", "Raise alarms when backend size exceeds the given quota (0 defaults to low space quota)."),
    value("max-txn-ops", "128", "Member", "Maximum number of operations permitted in a transaction."),
    value("max-request-bytes", "1572864", "Member", "Maximum client request size in bytes the server will accept."),
    value("initial-advertise-peer-urls", "http://localhost:2380", "Clustering", "List of this member's peer URLs to advertise to the rest of the cluster."),
    value("initial-cluster", "default=http://localhost:2380", "Clustering", "Initial cluster configuration for bootstrapping."),
    value("initial-cluster-state", "new", "Clustering", "Initial cluster state ('new' or 'existing')."),
    value("initial-cluster-token", "etcd-cluster", "Clustering", "Initial cluster token for the etcd cluster during bootstrap."),
    value("advertise-client-urls", "http://localhost:2379", "Clustering", "List of this member's client URLs to advertise to the public."),
    switch("strict-reconfig-check", "true", "Clustering", "Reject reconfiguration requests that would cause quorum loss."),
    switch("pre-vote", "true", "Clustering", "Enable to run an additional Raft election phase (thesis §9.6)."),
    value("max-learners", "1", "Clustering", "Sets the maximum number of learners that can be available in the cluster membership."),
    value("auto-compaction-retention", "0", "Clustering", "Auto compaction retention length. 0 means disable auto compaction."),
    value("auto-compaction-mode", "periodic", "Clustering", "Interpret 'auto-compaction-retention' one of: periodic|revision. 'periodic' for duration based retention, defaulting to hours if no time unit is provided (e.g. '5m'). 'revision' for revision number based retention."),
    value("logger", "zap", "Logging", "Accepted for compatibility with etcd scripts ('zap' or 'capnslog'); keel has one logger."),
    value("log-outputs", "default", "Logging", "Accepted for compatibility ('default', 'stderr', 'stdout'); keel logs to stderr."),
    value("log-level", "info", "Logging", "Configures log level. Only supports debug, info, warn, error, panic, or fatal."),
];

/// `--initial-cluster-state`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClusterState {
    /// Bootstrap a new cluster with the members of `--initial-cluster`.
    New,
    /// Join a cluster that exists (the member was added with MemberAdd first).
    Existing,
}

/// `--auto-compaction-mode` and `--auto-compaction-retention`, interpreted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AutoCompaction {
    /// Retention 0: no automatic compaction.
    Off,
    /// `periodic`: keep this much history (plain numbers are hours, as in etcd).
    Periodic(Duration),
    /// `revision`: keep this many revisions (compacts every 5 minutes at latest − N).
    Revision(u64),
}

/// A member of the initial cluster, with the ID etcd would give it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitialMember {
    /// `--name` of that member.
    pub name: String,
    /// Its peer URLs, sorted.
    pub peer_urls: Vec<Url>,
    /// Its member ID (see the module doc).
    pub id: u64,
}

/// The complete, validated configuration of one member.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// `--name`.
    pub name: String,
    /// `--data-dir` (default `<name>.keel`).
    pub data_dir: PathBuf,
    /// `--listen-client-urls`.
    pub listen_client_urls: Vec<Url>,
    /// `--advertise-client-urls`.
    pub advertise_client_urls: Vec<Url>,
    /// `--listen-peer-urls`.
    pub listen_peer_urls: Vec<Url>,
    /// `--initial-advertise-peer-urls`.
    pub initial_advertise_peer_urls: Vec<Url>,
    /// `--initial-cluster`: member name → peer URLs.
    pub initial_cluster: BTreeMap<String, Vec<Url>>,
    /// `--initial-cluster-state`.
    pub initial_cluster_state: ClusterState,
    /// `--initial-cluster-token`.
    pub initial_cluster_token: String,
    /// `--heartbeat-interval` (one Raft tick).
    pub heartbeat_interval: Duration,
    /// `--election-timeout`.
    pub election_timeout: Duration,
    /// `--snapshot-count`.
    pub snapshot_count: u64,
    /// `--quota-backend-bytes` as given (0 = default 2 GiB, negative = no quota).
    pub quota_backend_bytes: i64,
    /// `--max-request-bytes`.
    pub max_request_bytes: u32,
    /// `--max-txn-ops`.
    pub max_txn_ops: u32,
    /// `--max-learners`.
    pub max_learners: u32,
    /// `--strict-reconfig-check`.
    pub strict_reconfig_check: bool,
    /// `--pre-vote`.
    pub pre_vote: bool,
    /// `--auto-compaction-mode` + `--auto-compaction-retention`.
    pub auto_compaction: AutoCompaction,
    /// `--log-level`.
    pub log_level: Level,
}

/// What the command line asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Run a member with this configuration; the strings are warnings to log at start-up.
    Run(Box<Config>, Vec<String>),
    /// `--help` / `-h`: print [`help_text`] and exit 0.
    Help,
    /// `--version`: print [`version_text`] and exit 0.
    Version,
}

/// A command-line or environment error. The message always names the flag or argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// A flag keel does not know.
    UnknownFlag(String),
    /// A value flag given last without a value.
    MissingValue(String),
    /// A positional argument (etcd takes none).
    NotAFlag(String),
    /// Malformed flag syntax such as `---x` or `-=x`.
    BadSyntax(String),
    /// A flag's value is malformed or out of range.
    BadValue {
        /// Flag name without dashes.
        flag: String,
        /// The offending value.
        value: String,
        /// What is wrong with it.
        reason: String,
        /// Whether it came from `ETCD_*` rather than the command line.
        from_env: bool,
    },
    /// The flags are individually fine but inconsistent with each other.
    Inconsistent(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::UnknownFlag(name) => write!(f, "flag provided but not defined: -{name}"),
            ConfigError::MissingValue(name) => write!(f, "flag needs an argument: -{name}"),
            ConfigError::NotAFlag(arg) => write!(f, "'{arg}' is not a valid flag"),
            ConfigError::BadSyntax(arg) => write!(f, "bad flag syntax: {arg}"),
            ConfigError::BadValue {
                flag,
                value,
                reason,
                from_env,
            } => {
                if *from_env {
                    let var = env_name(flag);
                    write!(f, "invalid value {value:?} for environment variable {var} (flag --{flag}): {reason}")
                } else {
                    write!(f, "invalid value {value:?} for flag --{flag}: {reason}")
                }
            }
            ConfigError::Inconsistent(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for ConfigError {}

/// `ETCD_DATA_DIR` for `data-dir`.
pub fn env_name(flag: &str) -> String {
    format!("ETCD_{}", flag.to_ascii_uppercase().replace('-', "_"))
}

fn spec(name: &str) -> Option<&'static FlagSpec> {
    FLAGS.iter().find(|s| s.name == name)
}

/// Parse Go-style booleans (`strconv.ParseBool`).
fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// Where a raw flag value came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    CommandLine,
    Env,
}

/// Parse the command line (`args` excludes the program name) and the environment.
///
/// `env` is passed in rather than read so that tests are hermetic; the binary passes
/// `std::env::vars()`.
pub fn parse<I, S>(args: &[S], env: I) -> Result<Command, ConfigError>
where
    S: AsRef<str>,
    I: IntoIterator<Item = (String, String)>,
{
    let mut raw: BTreeMap<&'static str, (String, Source)> = BTreeMap::new();
    let mut warnings = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_ref();
        i += 1;
        if arg == "--" {
            if let Some(next) = args.get(i) {
                return Err(ConfigError::NotAFlag(next.as_ref().to_string()));
            }
            break;
        }
        let Some(body) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
            return Err(ConfigError::NotAFlag(arg.to_string()));
        };
        if body.is_empty() || body.starts_with('-') || body.starts_with('=') {
            return Err(ConfigError::BadSyntax(arg.to_string()));
        }
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        match name {
            "h" | "help" => return Ok(Command::Help),
            "version" => {
                let on = match inline {
                    None => true,
                    Some(v) => parse_bool(v).ok_or_else(|| ConfigError::BadValue {
                        flag: "version".into(),
                        value: v.into(),
                        reason: "must be a boolean".into(),
                        from_env: false,
                    })?,
                };
                if on {
                    return Ok(Command::Version);
                }
                continue;
            }
            _ => {}
        }
        let spec = spec(name).ok_or_else(|| ConfigError::UnknownFlag(name.to_string()))?;
        let value = match (spec.kind, inline) {
            (_, Some(v)) => v.to_string(),
            (Kind::Bool, None) => "true".to_string(),
            (Kind::Value, None) => {
                let Some(v) = args.get(i) else {
                    return Err(ConfigError::MissingValue(name.to_string()));
                };
                i += 1;
                v.as_ref().to_string()
            }
        };
        raw.insert(spec.name, (value, Source::CommandLine));
    }

    // Environment: ETCD_<FLAG>, lower priority than the command line.
    let mut env: Vec<(String, String)> = env.into_iter().collect();
    env.sort();
    for (key, val) in env {
        let Some(rest) = key.strip_prefix("ETCD_") else {
            continue;
        };
        let flag = rest.to_ascii_lowercase().replace('_', "-");
        let Some(spec) = spec(&flag) else {
            // etcd: "unrecognized environment variable"; a few are read elsewhere by etcd.
            if !matches!(rest, "UNSUPPORTED_ARCH" | "VERSION") {
                warnings.push(format!("unrecognized environment variable {key}={val}"));
            }
            continue;
        };
        if val.is_empty() {
            continue;
        }
        if raw.contains_key(spec.name) {
            warnings.push(format!(
                "conflicting environment variable {key} is shadowed by corresponding command-line flag --{}",
                spec.name
            ));
            continue;
        }
        raw.insert(spec.name, (val, Source::Env));
    }

    let config = build(&raw, &mut warnings)?;
    Ok(Command::Run(Box::new(config), warnings))
}

/// Typed access to the raw values, turning conversion failures into [`ConfigError::BadValue`].
struct Raw<'a> {
    raw: &'a BTreeMap<&'static str, (String, Source)>,
}

impl Raw<'_> {
    fn get(&self, name: &'static str) -> (String, bool) {
        match self.raw.get(name) {
            Some((v, src)) => (v.clone(), *src == Source::Env),
            None => (spec(name).expect("known flag").default.to_string(), false),
        }
    }

    fn is_set(&self, name: &str) -> bool {
        self.raw.contains_key(name)
    }

    fn bad(&self, name: &str, value: &str, reason: impl Into<String>) -> ConfigError {
        let from_env = matches!(self.raw.get(name), Some((_, Source::Env)));
        ConfigError::BadValue {
            flag: name.to_string(),
            value: value.to_string(),
            reason: reason.into(),
            from_env,
        }
    }

    fn string(&self, name: &'static str) -> String {
        self.get(name).0
    }

    fn uint(&self, name: &'static str, max: u64) -> Result<u64, ConfigError> {
        let (v, _) = self.get(name);
        let n: u64 = v
            .trim()
            .parse()
            .map_err(|_| self.bad(name, &v, "must be a non-negative integer"))?;
        if n > max {
            return Err(self.bad(name, &v, format!("must be at most {max}")));
        }
        Ok(n)
    }

    fn int(&self, name: &'static str) -> Result<i64, ConfigError> {
        let (v, _) = self.get(name);
        v.trim()
            .parse()
            .map_err(|_| self.bad(name, &v, "must be an integer"))
    }

    fn boolean(&self, name: &'static str) -> Result<bool, ConfigError> {
        let (v, _) = self.get(name);
        parse_bool(v.trim()).ok_or_else(|| self.bad(name, &v, "must be true or false"))
    }

    fn urls(&self, name: &'static str) -> Result<Vec<Url>, ConfigError> {
        let (v, _) = self.get(name);
        Url::parse_list(&v).map_err(|UrlError(reason)| self.bad(name, &v, reason))
    }
}

fn build(
    raw: &BTreeMap<&'static str, (String, Source)>,
    warnings: &mut Vec<String>,
) -> Result<Config, ConfigError> {
    let r = Raw { raw };
    let name = r.string("name");
    let data_dir = if r.is_set("data-dir") && !r.string("data-dir").is_empty() {
        PathBuf::from(r.string("data-dir"))
    } else {
        PathBuf::from(format!("{name}.keel"))
    };
    let listen_client_urls = r.urls("listen-client-urls")?;
    let advertise_client_urls = r.urls("advertise-client-urls")?;
    let listen_peer_urls = r.urls("listen-peer-urls")?;
    let initial_advertise_peer_urls = r.urls("initial-advertise-peer-urls")?;
    for (flag, urls) in [
        ("listen-client-urls", &listen_client_urls),
        ("listen-peer-urls", &listen_peer_urls),
    ] {
        for u in urls.iter() {
            // Validate now so that "cannot resolve" is a start-up error naming the flag.
            u.socket_addrs()
                .map_err(|UrlError(reason)| r.bad(flag, &u.to_string(), reason))?;
        }
    }

    // --initial-cluster: when not given, the member alone with its advertised peer URLs. (etcd
    // uses "<name>=http://localhost:2380"; using the advertised URLs is the same for the default
    // and saves single-member users from repeating their peer URL.)
    let initial_cluster = if r.is_set("initial-cluster") {
        let text = r.string("initial-cluster");
        parse_initial_cluster(&text).map_err(|reason| r.bad("initial-cluster", &text, reason))?
    } else {
        BTreeMap::from([(name.clone(), initial_advertise_peer_urls.clone())])
    };

    let initial_cluster_state = match r.string("initial-cluster-state").as_str() {
        "new" => ClusterState::New,
        "existing" => ClusterState::Existing,
        other => {
            return Err(r.bad(
                "initial-cluster-state",
                other,
                "valid values are \"new\", \"existing\"",
            ))
        }
    };
    let initial_cluster_token = r.string("initial-cluster-token");

    let heartbeat_ms = r.uint("heartbeat-interval", u32::MAX as u64)?;
    let election_ms = r.uint("election-timeout", u32::MAX as u64)?;
    if heartbeat_ms == 0 {
        return Err(r.bad("heartbeat-interval", "0", "must be at least 1 millisecond"));
    }
    if 5 * heartbeat_ms > election_ms {
        return Err(ConfigError::Inconsistent(format!(
            "--election-timeout[{election_ms}ms] should be at least as 5 times as --heartbeat-interval[{heartbeat_ms}ms]"
        )));
    }
    if election_ms > MAX_ELECTION_MS {
        return Err(ConfigError::Inconsistent(format!(
            "--election-timeout[{election_ms}ms] is too long, and should be set less than {MAX_ELECTION_MS}ms"
        )));
    }

    let snapshot_count = r.uint("snapshot-count", u64::MAX)?;
    let quota_backend_bytes = r.int("quota-backend-bytes")?;
    if quota_backend_bytes > MAX_QUOTA_BYTES as i64 {
        warnings.push(format!(
            "quota-backend-bytes {quota_backend_bytes} exceeds the maximum recommended {MAX_QUOTA_BYTES} bytes"
        ));
    }
    let max_request_bytes = r.uint("max-request-bytes", u32::MAX as u64)? as u32;
    if max_request_bytes == 0 {
        return Err(r.bad("max-request-bytes", "0", "must be positive"));
    }
    let max_txn_ops = r.uint("max-txn-ops", u32::MAX as u64)? as u32;
    let max_learners = r.uint("max-learners", u32::MAX as u64)? as u32;
    let strict_reconfig_check = r.boolean("strict-reconfig-check")?;
    let pre_vote = r.boolean("pre-vote")?;

    let retention = r.string("auto-compaction-retention");
    let auto_compaction = match r.string("auto-compaction-mode").as_str() {
        "periodic" => match parse_periodic_retention(&retention) {
            Ok(d) if d.is_zero() => AutoCompaction::Off,
            Ok(d) => AutoCompaction::Periodic(d),
            Err(reason) => return Err(r.bad("auto-compaction-retention", &retention, reason)),
        },
        "revision" => match retention.trim().parse::<u64>() {
            Ok(0) => AutoCompaction::Off,
            Ok(n) => AutoCompaction::Revision(n),
            Err(_) => {
                return Err(r.bad(
                    "auto-compaction-retention",
                    &retention,
                    "must be a revision count (non-negative integer) in revision mode",
                ))
            }
        },
        other => {
            return Err(r.bad(
                "auto-compaction-mode",
                other,
                "valid values are \"periodic\", \"revision\"",
            ))
        }
    };

    let level_text = r.string("log-level");
    let log_level = Level::parse(&level_text).ok_or_else(|| {
        r.bad(
            "log-level",
            &level_text,
            "only supports debug, info, warn, error, panic, or fatal",
        )
    })?;
    let logger = r.string("logger");
    if !matches!(logger.as_str(), "zap" | "capnslog") {
        return Err(r.bad("logger", &logger, "valid values are \"zap\", \"capnslog\""));
    }

    let config = Config {
        name,
        data_dir,
        listen_client_urls,
        advertise_client_urls,
        listen_peer_urls,
        initial_advertise_peer_urls,
        initial_cluster,
        initial_cluster_state,
        initial_cluster_token,
        heartbeat_interval: Duration::from_millis(heartbeat_ms),
        election_timeout: Duration::from_millis(election_ms),
        snapshot_count,
        quota_backend_bytes,
        max_request_bytes,
        max_txn_ops,
        max_learners,
        strict_reconfig_check,
        pre_vote,
        auto_compaction,
        log_level,
    };
    // etcd verifies the bootstrap flags only for a member that has no data yet: a restarted
    // member takes its identity from its data directory (and may have new peer URLs by now).
    if !has_wal(&config.data_dir) {
        config.check_cluster()?;
    }
    Ok(config)
}

/// Whether `data_dir` already holds a member's WAL.
pub fn has_wal(data_dir: &std::path::Path) -> bool {
    let dir = data_dir.join("member").join("wal");
    dir.is_dir() && keel_wal::segment::list_segments(&dir).is_ok_and(|s| !s.is_empty())
}

/// Parse `name1=http://a:2380,name1=http://b:2380,name2=http://c:2380`. A name may repeat to give
/// a member several peer URLs.
pub fn parse_initial_cluster(text: &str) -> Result<BTreeMap<String, Vec<Url>>, String> {
    let mut cluster: BTreeMap<String, Vec<Url>> = BTreeMap::new();
    if text.trim().is_empty() {
        return Err("the initial cluster is empty".into());
    }
    for entry in text.split(',') {
        let Some((name, u)) = entry.split_once('=') else {
            return Err(format!(
                "entry {entry:?} is not of the form name=http://host:port"
            ));
        };
        // An empty name is a member that was added but has not started yet: `etcdctl member
        // add` prints such entries in ETCD_INITIAL_CLUSTER, and etcd accepts them.
        let name = name.trim();
        let u = Url::parse(u).map_err(|e| e.0)?;
        cluster.entry(name.to_string()).or_default().push(u);
    }
    let mut seen: BTreeMap<&Url, &str> = BTreeMap::new();
    for (name, urls) in &cluster {
        for u in urls {
            if let Some(other) = seen.insert(u, name) {
                if other != name {
                    return Err(format!(
                        "peer URL {u} is given for both {other:?} and {name:?}"
                    ));
                }
                return Err(format!("peer URL {u} is given twice for {name:?}"));
            }
        }
    }
    Ok(cluster)
}

/// Parse a periodic retention: a plain number is hours (etcd's rule); otherwise a Go duration
/// such as `30m`, `1h30m`, `1.5h`, `90s`.
pub fn parse_periodic_retention(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(hours) = text.parse::<u64>() {
        return hours
            .checked_mul(3600)
            .map(Duration::from_secs)
            .ok_or_else(|| "retention is too large".to_string());
    }
    parse_go_duration(text)
}

/// Parse a Go `time.ParseDuration` string (non-negative): a sequence of decimal numbers with
/// units `ns`, `us`/`µs`, `ms`, `s`, `m`, `h`.
pub fn parse_go_duration(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!("{text:?} is not a duration (examples: 90s, 5m, 1h30m; plain numbers are hours)")
    };
    if text.is_empty() || text.starts_with('-') {
        return Err(bad());
    }
    let text_body = text.strip_prefix('+').unwrap_or(text);
    if text_body == "0" {
        return Ok(Duration::ZERO);
    }
    let mut rest = text_body;
    let mut total_nanos: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return Err(bad());
        }
        let number: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total_nanos += number * scale;
    }
    if !total_nanos.is_finite() || total_nanos > u64::MAX as f64 {
        return Err(bad());
    }
    Ok(Duration::from_nanos(total_nanos.round() as u64))
}

/// etcd's member ID: SHA-1 over the sorted peer URLs joined with "", then the cluster token, then
/// (for members added at run time) the Unix time in seconds; the first 8 bytes big-endian.
pub fn member_id(peer_urls: &[Url], cluster_token: &str, added_at_unix_secs: Option<u64>) -> u64 {
    let mut urls: Vec<String> = peer_urls.iter().map(|u| u.to_string()).collect();
    urls.sort();
    let mut bytes = urls.concat().into_bytes();
    bytes.extend_from_slice(cluster_token.as_bytes());
    if let Some(secs) = added_at_unix_secs {
        bytes.extend_from_slice(secs.to_string().as_bytes());
    }
    let hash = crate::sha1::digest(&bytes);
    u64::from_be_bytes(hash[..8].try_into().expect("8 bytes"))
}

/// etcd's cluster ID: SHA-1 over the sorted member IDs (8 bytes big-endian each); the first 8
/// bytes big-endian.
pub fn cluster_id(member_ids: &[u64]) -> u64 {
    let mut ids = member_ids.to_vec();
    ids.sort_unstable();
    let bytes: Vec<u8> = ids.iter().flat_map(|id| id.to_be_bytes()).collect();
    let hash = crate::sha1::digest(&bytes);
    u64::from_be_bytes(hash[..8].try_into().expect("8 bytes"))
}

impl Config {
    /// The configuration `keel` runs with when given no flags and no `ETCD_*` variables.
    pub fn default_member() -> Config {
        match parse::<_, &str>(&[], []) {
            Ok(Command::Run(c, _)) => *c,
            other => unreachable!("defaults must parse: {other:?}"),
        }
    }

    /// The initial cluster's members with their IDs, sorted by ID.
    pub fn initial_members(&self) -> Vec<InitialMember> {
        let mut members: Vec<InitialMember> = self
            .initial_cluster
            .iter()
            .map(|(name, urls)| {
                let mut peer_urls = urls.clone();
                peer_urls.sort();
                InitialMember {
                    name: name.clone(),
                    id: member_id(&peer_urls, &self.initial_cluster_token, None),
                    peer_urls,
                }
            })
            .collect();
        members.sort_by_key(|m| m.id);
        members
    }

    /// This member's ID.
    pub fn member_id(&self) -> u64 {
        member_id(
            &self.initial_advertise_peer_urls,
            &self.initial_cluster_token,
            None,
        )
    }

    /// The cluster ID of a new cluster bootstrapped from `--initial-cluster`.
    pub fn cluster_id(&self) -> u64 {
        let ids: Vec<u64> = self.initial_members().iter().map(|m| m.id).collect();
        cluster_id(&ids)
    }

    /// `--quota-backend-bytes` interpreted: `None` when negative (quota disabled), the 2 GiB
    /// default when 0.
    pub fn quota_bytes(&self) -> Option<u64> {
        match self.quota_backend_bytes {
            q if q < 0 => None,
            0 => Some(DEFAULT_QUOTA_BYTES),
            q => Some(q as u64),
        }
    }

    /// Election timeout in heartbeat ticks (etcd: `ElectionMs / TickMs`, `HeartbeatTick = 1`).
    pub fn election_ticks(&self) -> u64 {
        (self.election_timeout.as_millis() / self.heartbeat_interval.as_millis()) as u64
    }

    /// etcd's request timeout: 5 s + 2 × election timeout.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(5) + 2 * self.election_timeout
    }

    /// etcd's minimum lease TTL in seconds: ceil(1.5 × election timeout).
    pub fn min_lease_ttl_secs(&self) -> i64 {
        let ms = self.election_timeout.as_millis() as i64 * 3 / 2;
        (ms + 999) / 1000
    }

    /// Cross-flag checks done by etcd at bootstrap (`VerifyBootstrap`).
    fn check_cluster(&self) -> Result<(), ConfigError> {
        let Some(urls) = self.initial_cluster.get(&self.name) else {
            return Err(ConfigError::Inconsistent(format!(
                "couldn't find local name {:?} in the initial cluster configuration (--initial-cluster={})",
                self.name,
                render_initial_cluster(&self.initial_cluster)
            )));
        };
        let mut a = urls.clone();
        let mut b = self.initial_advertise_peer_urls.clone();
        a.sort();
        a.dedup();
        b.sort();
        b.dedup();
        if a != b {
            return Err(ConfigError::Inconsistent(format!(
                "--initial-cluster has {}={} but --initial-advertise-peer-urls is {}; they must list the same URLs",
                self.name,
                url::join(&a),
                url::join(&b)
            )));
        }
        Ok(())
    }
}

/// Render an initial-cluster map back to flag syntax.
pub fn render_initial_cluster(cluster: &BTreeMap<String, Vec<Url>>) -> String {
    cluster
        .iter()
        .flat_map(|(n, urls)| urls.iter().map(move |u| format!("{n}={u}")))
        .collect::<Vec<_>>()
        .join(",")
}

/// The `--help` text, in `etcd --help`'s layout.
pub fn help_text() -> String {
    let mut out = String::new();
    out.push_str(
        "Usage:\n\n  keel [flags]\n    Start a keel member (an etcd-compatible key-value store).\n\n  \
         keel --version\n    Show the version of keel.\n\n  keel -h | --help\n    Show this help.\n",
    );
    let mut section = "";
    for f in FLAGS {
        if f.section != section {
            section = f.section;
            out.push_str(&format!("\n{section}:\n"));
        }
        out.push_str(&format!("  --{} '{}'\n    {}\n", f.name, f.default, f.help));
    }
    out.push_str(
        "\nEvery flag can also be set by the environment variable ETCD_<FLAG> (upper case, '-' as \
         '_'),\ne.g. ETCD_NAME, ETCD_DATA_DIR; a flag on the command line wins.\n",
    );
    out
}

/// The `--version` text, in `etcd --version`'s layout.
pub fn version_text() -> String {
    format!(
        "keel Version: {}\netcd API Version: {}\nRust: edition 2021\nOS/Arch: {}/{}\n",
        env!("CARGO_PKG_VERSION"),
        EMULATED_ETCD_VERSION,
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Config, ConfigError> {
        run_env(args, &[])
    }

    fn run_env(args: &[&str], env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        match parse(args, env)? {
            Command::Run(c, _) => Ok(*c),
            other => panic!("expected Run, got {other:?}"),
        }
    }

    fn warnings(args: &[&str], env: &[(&str, &str)]) -> Vec<String> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        match parse(args, env).unwrap() {
            Command::Run(_, w) => w,
            other => panic!("expected Run, got {other:?}"),
        }
    }

    #[test]
    fn defaults_match_etcd_except_data_dir() {
        let c = run(&[]).unwrap();
        assert_eq!(c.name, "default");
        assert_eq!(c.data_dir, PathBuf::from("default.keel"));
        assert_eq!(url::join(&c.listen_client_urls), "http://localhost:2379");
        assert_eq!(url::join(&c.advertise_client_urls), "http://localhost:2379");
        assert_eq!(url::join(&c.listen_peer_urls), "http://localhost:2380");
        assert_eq!(
            url::join(&c.initial_advertise_peer_urls),
            "http://localhost:2380"
        );
        assert_eq!(
            render_initial_cluster(&c.initial_cluster),
            "default=http://localhost:2380"
        );
        assert_eq!(c.initial_cluster_state, ClusterState::New);
        assert_eq!(c.initial_cluster_token, "etcd-cluster");
        assert_eq!(c.heartbeat_interval, Duration::from_millis(100));
        assert_eq!(c.election_timeout, Duration::from_millis(1000));
        assert_eq!(c.election_ticks(), 10);
        assert_eq!(c.snapshot_count, 100_000);
        assert_eq!(c.quota_backend_bytes, 0);
        assert_eq!(c.quota_bytes(), Some(2 << 30));
        assert_eq!(c.max_request_bytes, 1_572_864);
        assert_eq!(c.max_txn_ops, 128);
        assert_eq!(c.max_learners, 1);
        assert!(c.strict_reconfig_check);
        assert!(c.pre_vote);
        assert_eq!(c.auto_compaction, AutoCompaction::Off);
        assert_eq!(c.log_level, Level::Info);
        let addr = c.listen_client_urls[0].listen_addr().unwrap();
        assert_eq!(addr.to_string(), "127.0.0.1:2379");
        assert_eq!(c.request_timeout(), Duration::from_secs(7));
        assert_eq!(c.min_lease_ttl_secs(), 2);
        assert_eq!(Config::default_member(), c);
    }

    #[test]
    fn both_value_syntaxes_and_single_dash() {
        let a = run(&[
            "--name",
            "n1",
            "--data-dir=/tmp/x",
            "-heartbeat-interval",
            "50",
            "-election-timeout=500",
        ])
        .unwrap();
        assert_eq!(a.name, "n1");
        assert_eq!(a.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(a.heartbeat_interval, Duration::from_millis(50));
        assert_eq!(a.election_timeout, Duration::from_millis(500));
        // --name alone moves the default data dir and initial cluster with it.
        let b = run(&["--name=infra0"]).unwrap();
        assert_eq!(b.data_dir, PathBuf::from("infra0.keel"));
        assert_eq!(
            render_initial_cluster(&b.initial_cluster),
            "infra0=http://localhost:2380"
        );
        // The last occurrence wins, as with Go's flag package.
        assert_eq!(run(&["--name", "a", "--name", "b"]).unwrap().name, "b");
        // An empty inline value is a value.
        assert_eq!(
            run(&["--initial-cluster-token="])
                .unwrap()
                .initial_cluster_token,
            ""
        );
    }

    #[test]
    fn every_flag_from_the_issue_is_accepted() {
        let c = run(&[
            "--name", "infra1",
            "--data-dir", "d",
            "--listen-client-urls", "http://127.0.0.1:12379,http://127.0.0.1:22379",
            "--advertise-client-urls", "http://127.0.0.1:12379",
            "--listen-peer-urls", "http://127.0.0.1:12380",
            "--initial-advertise-peer-urls", "http://127.0.0.1:12380",
            "--initial-cluster", "infra1=http://127.0.0.1:12380,infra2=http://127.0.0.1:22380,infra3=http://127.0.0.1:32380",
            "--initial-cluster-state", "existing",
            "--initial-cluster-token", "tok",
            "--heartbeat-interval", "10",
            "--election-timeout", "100",
            "--snapshot-count", "1000",
            "--quota-backend-bytes", "1048576",
            "--max-request-bytes", "4096",
            "--max-txn-ops", "16",
            "--auto-compaction-mode", "revision",
            "--auto-compaction-retention", "1000",
            "--log-level", "debug",
            "--logger", "zap",
            "--pre-vote=false",
            "--strict-reconfig-check",
        ])
        .unwrap();
        assert_eq!(c.listen_client_urls.len(), 2);
        assert_eq!(c.initial_cluster.len(), 3);
        assert_eq!(
            url::join(&c.initial_cluster["infra2"]),
            "http://127.0.0.1:22380"
        );
        assert_eq!(c.initial_cluster_state, ClusterState::Existing);
        assert_eq!(c.initial_cluster_token, "tok");
        assert_eq!(c.snapshot_count, 1000);
        assert_eq!(c.quota_bytes(), Some(1 << 20));
        assert_eq!(c.max_request_bytes, 4096);
        assert_eq!(c.max_txn_ops, 16);
        assert_eq!(c.auto_compaction, AutoCompaction::Revision(1000));
        assert_eq!(c.log_level, Level::Debug);
        assert!(!c.pre_vote);
        assert!(c.strict_reconfig_check);
        assert_eq!(c.election_ticks(), 10);
    }

    #[test]
    fn environment_variables_and_precedence() {
        let c = run_env(
            &["--name", "cli"],
            &[
                ("ETCD_NAME", "env"),
                ("ETCD_DATA_DIR", "/var/lib/k"),
                ("ETCD_INITIAL_CLUSTER", "cli=http://localhost:2380"),
                ("ETCD_HEARTBEAT_INTERVAL", "20"),
                ("ETCD_ELECTION_TIMEOUT", "200"),
                ("ETCD_PRE_VOTE", "false"),
                ("ETCDCTL_API", "3"),
                ("PATH", "/bin"),
            ],
        )
        .unwrap();
        assert_eq!(c.name, "cli", "the command line wins");
        assert_eq!(c.data_dir, PathBuf::from("/var/lib/k"));
        assert_eq!(c.heartbeat_interval, Duration::from_millis(20));
        assert_eq!(c.election_timeout, Duration::from_millis(200));
        assert!(!c.pre_vote);
        let w = warnings(
            &["--name", "cli"],
            &[
                ("ETCD_NAME", "env"),
                ("ETCD_NOPE", "1"),
                ("ETCD_INITIAL_CLUSTER", "cli=http://localhost:2380"),
            ],
        );
        assert!(
            w.iter()
                .any(|w| w.contains("ETCD_NAME") && w.contains("shadowed")),
            "{w:?}"
        );
        assert!(
            w.iter()
                .any(|w| w.contains("unrecognized environment variable ETCD_NOPE")),
            "{w:?}"
        );
        // A bad value from the environment names the variable.
        let e = run_env(&[], &[("ETCD_MAX_TXN_OPS", "lots")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("ETCD_MAX_TXN_OPS") && e.contains("lots"), "{e}");
        assert_eq!(
            env_name("initial-advertise-peer-urls"),
            "ETCD_INITIAL_ADVERTISE_PEER_URLS"
        );
    }

    #[test]
    fn errors_name_the_flag_and_value() {
        let cases: &[(&[&str], &[&str])] = &[
            (&["--nmae", "x"], &["-nmae", "not defined"]),
            (&["--name"], &["needs an argument", "-name"]),
            (&["stray"], &["'stray'", "not a valid flag"]),
            (&["---x"], &["bad flag syntax"]),
            (
                &["--heartbeat-interval", "fast"],
                &["--heartbeat-interval", "\"fast\""],
            ),
            (&["--heartbeat-interval", "-5"], &["--heartbeat-interval"]),
            (
                &["--heartbeat-interval", "0"],
                &["--heartbeat-interval", "at least"],
            ),
            (&["--max-txn-ops", "1.5"], &["--max-txn-ops", "1.5"]),
            (
                &["--max-request-bytes", "99999999999"],
                &["--max-request-bytes"],
            ),
            (
                &["--initial-cluster-state", "old"],
                &["--initial-cluster-state", "\"old\"", "existing"],
            ),
            (
                &["--listen-client-urls", "127.0.0.1:2379"],
                &["--listen-client-urls", "scheme"],
            ),
            (
                &["--listen-client-urls", "http://127.0.0.1"],
                &["--listen-client-urls", "host:port"],
            ),
            (
                &["--advertise-client-urls", "https://a:1"],
                &["--advertise-client-urls", "not supported"],
            ),
            (
                &["--initial-cluster", "default"],
                &["--initial-cluster", "name=http"],
            ),
            (
                &[
                    "--initial-cluster",
                    "default=http://localhost:2380,b=http://localhost:2380",
                ],
                &["--initial-cluster", "both"],
            ),
            (
                &["--auto-compaction-mode", "sometimes"],
                &["--auto-compaction-mode", "periodic"],
            ),
            (
                &["--auto-compaction-retention", "5 minutes"],
                &["--auto-compaction-retention"],
            ),
            (
                &[
                    "--auto-compaction-mode",
                    "revision",
                    "--auto-compaction-retention",
                    "1h",
                ],
                &["--auto-compaction-retention", "revision"],
            ),
            (
                &["--log-level", "verbose"],
                &["--log-level", "debug, info, warn, error, panic, or fatal"],
            ),
            (&["--pre-vote=maybe"], &["--pre-vote", "maybe"]),
            (
                &["--quota-backend-bytes", "2GB"],
                &["--quota-backend-bytes", "2GB"],
            ),
            (&["--snapshot-count", ""], &["--snapshot-count"]),
            (&["--version=perhaps"], &["--version"]),
            (&["--logger", "glog"], &["--logger"]),
            (&["--", "x"], &["'x'"]),
        ];
        for (args, needles) in cases {
            let err = run(args)
                .expect_err(&format!("{args:?} must fail"))
                .to_string();
            for n in *needles {
                assert!(err.contains(n), "{args:?}: error {err:?} lacks {n:?}");
            }
        }
    }

    #[test]
    fn cross_flag_checks() {
        let e = run(&["--heartbeat-interval", "300"])
            .unwrap_err()
            .to_string();
        assert_eq!(e, "--election-timeout[1000ms] should be at least as 5 times as --heartbeat-interval[300ms]");
        let e = run(&["--election-timeout", "60000"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("too long") && e.contains("50000ms"), "{e}");
        let e = run(&[
            "--name",
            "x",
            "--initial-cluster",
            "y=http://localhost:2380",
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("couldn't find local name \"x\""), "{e}");
        let e = run(&[
            "--initial-advertise-peer-urls",
            "http://127.0.0.1:9",
            "--initial-cluster",
            "default=http://127.0.0.1:8",
        ])
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("http://127.0.0.1:8") && e.contains("http://127.0.0.1:9"),
            "{e}"
        );
        // A member that already has a WAL is not checked against its bootstrap flags (etcd:
        // VerifyBootstrap runs only for a new member): after MemberUpdate its old
        // --initial-cluster names peer URLs it no longer advertises.
        let dir = std::env::temp_dir().join(format!("keel-config-haswal-{}", std::process::id()));
        let wal_dir = dir.join("member").join("wal");
        let w = keel_wal::Wal::create(
            &wal_dir,
            keel_wal::Metadata {
                member_id: 1,
                cluster_id: 2,
            },
        )
        .unwrap();
        w.close().unwrap();
        let restarted = run(&[
            "--data-dir",
            dir.to_str().unwrap(),
            "--initial-advertise-peer-urls",
            "http://127.0.0.1:9",
            "--initial-cluster",
            "default=http://127.0.0.1:8",
        ]);
        assert!(restarted.is_ok(), "{restarted:?}");
        std::fs::remove_dir_all(&dir).unwrap();
        // An unstarted member (empty name, as `etcdctl member add` prints it) is accepted.
        let c = run(&[
            "--initial-cluster",
            "default=http://localhost:2380,=http://127.0.0.1:7",
        ])
        .unwrap();
        assert_eq!(c.initial_members().len(), 2);
        // Without --initial-cluster, the member's own advertised URLs make the cluster.
        let c = run(&["--initial-advertise-peer-urls", "http://127.0.0.1:9"]).unwrap();
        assert_eq!(
            render_initial_cluster(&c.initial_cluster),
            "default=http://127.0.0.1:9"
        );
    }

    #[test]
    fn help_and_version() {
        assert_eq!(parse::<_, &str>(&["--help"], []).unwrap(), Command::Help);
        assert_eq!(parse::<_, &str>(&["-h"], []).unwrap(), Command::Help);
        assert_eq!(
            parse::<_, &str>(&["--name", "x", "--version"], []).unwrap(),
            Command::Version
        );
        assert!(matches!(
            parse::<_, &str>(&["--version=false"], []).unwrap(),
            Command::Run(..)
        ));
        let h = help_text();
        for f in FLAGS {
            assert!(
                h.contains(&format!("--{} '", f.name)),
                "help lacks {}",
                f.name
            );
        }
        assert!(h.contains("--data-dir '${name}.keel'"));
        assert!(version_text().contains(EMULATED_ETCD_VERSION));
    }

    #[test]
    fn periodic_retention_units() {
        assert_eq!(
            parse_periodic_retention("1").unwrap(),
            Duration::from_secs(3600)
        );
        assert_eq!(parse_periodic_retention("0").unwrap(), Duration::ZERO);
        assert_eq!(
            parse_periodic_retention("5m").unwrap(),
            Duration::from_secs(300)
        );
        assert_eq!(
            parse_periodic_retention("1h30m").unwrap(),
            Duration::from_secs(5400)
        );
        assert_eq!(
            parse_periodic_retention("1.5h").unwrap(),
            Duration::from_secs(5400)
        );
        assert_eq!(
            parse_periodic_retention("250ms").unwrap(),
            Duration::from_millis(250)
        );
        for bad in ["", "-1h", "5x", "h", "1h5", "m5"] {
            assert!(parse_periodic_retention(bad).is_err(), "{bad}");
        }
        let c = run(&["--auto-compaction-retention", "30m"]).unwrap();
        assert_eq!(
            c.auto_compaction,
            AutoCompaction::Periodic(Duration::from_secs(1800))
        );
    }

    #[test]
    fn ids_match_etcd() {
        // Member and cluster IDs printed by etcd 3.4.23 (`etcdctl member list -w json`) for
        // `etcd-reference.sh start 3 24100`: ref1=http://127.0.0.1:24111, ..., token etcd-cluster.
        let c = run(&[
            "--name",
            "ref1",
            "--initial-advertise-peer-urls",
            "http://127.0.0.1:24111",
            "--initial-cluster",
            "ref1=http://127.0.0.1:24111,ref2=http://127.0.0.1:24121,ref3=http://127.0.0.1:24131",
        ])
        .unwrap();
        let members = c.initial_members();
        let by_name = |n: &str| members.iter().find(|m| m.name == n).unwrap().id;
        assert_eq!(c.member_id(), by_name("ref1"));
        assert_eq!(format!("{:x}", by_name("ref1")), REF1_ID);
        assert_eq!(format!("{:x}", by_name("ref2")), REF2_ID);
        assert_eq!(format!("{:x}", by_name("ref3")), REF3_ID);
        assert_eq!(format!("{:x}", c.cluster_id()), REF_CLUSTER_ID);
        // The single default member: etcd's well-known 8e9e05c52164694d / cdf818194e3a8c32.
        let d = run(&[]).unwrap();
        assert_eq!(format!("{:x}", d.member_id()), "8e9e05c52164694d");
        assert_eq!(format!("{:x}", d.cluster_id()), "cdf818194e3a8c32");
        // The token changes the IDs; runtime-added members include the time.
        let other = member_id(&d.initial_advertise_peer_urls, "other", None);
        assert_ne!(other, d.member_id());
        assert_ne!(
            member_id(&d.initial_advertise_peer_urls, "etcd-cluster", Some(1)),
            d.member_id()
        );
    }

    const REF1_ID: &str = "8e9aaedab51d4dd8";
    const REF2_ID: &str = "f99e3fdd0d103716";
    const REF3_ID: &str = "ef5ef1a4b1f11225";
    const REF_CLUSTER_ID: &str = "eb7067b8f3cf66b5";
}
