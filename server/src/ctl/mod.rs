//! keelctl: keel's command-line client, in the shape of etcdctl v3.
//!
//! keelctl speaks etcd's v3 gRPC API (through `keel_net::client`, a blocking HTTP/2 client), so
//! it works against keel and against etcd alike. Its command line, its output formats and its
//! error texts and exit codes copy etcdctl 3.4's, so scripts written for one work with the other;
//! the integration tests (`server/tests/keelctl_*.rs`) run both tools against a real etcd and
//! compare their output byte for byte.
//!
//! Layout, one file per concept:
//! - [`args`]: the command table and a pflag-style parser;
//! - [`session`]: connecting and typed unary/stream calls;
//! - [`display`], [`json`], [`table`]: the `simple`, `json`, `table` and `protobuf` printers;
//! - [`kv`], [`watch`], [`lease`], [`cluster`], [`maintenance`], [`concurrency`]: the commands;
//! - [`error`]: the error type and etcdctl's exit codes; snapshot checks use the server crate's `sha256`.

pub mod args;
pub mod cluster;
pub mod concurrency;
pub mod display;
pub mod error;
pub mod json;
pub mod kv;
pub mod lease;
pub mod maintenance;
pub mod session;
pub mod table;
pub mod watch;

use args::Invocation;
use display::{Format, Printer};
use error::{exit, CtlError};
use session::{Dial, Session};
use std::time::Duration;

/// What every command needs: how to connect and how to print.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// Endpoints and timeouts.
    pub dial: Dial,
    /// The output printer.
    pub printer: Printer,
}

impl Ctx {
    /// Opens a connection to the first reachable endpoint.
    pub fn connect(&self) -> Result<Session, CtlError> {
        Session::connect(&self.dial)
    }
}

/// Fills unset global flags from `ETCDCTL_<FLAG>` environment variables, as etcdctl does.
fn apply_env(inv: &mut Invocation) {
    for spec in args::GLOBAL_FLAGS {
        if inv.flags.contains_key(spec.long) {
            continue;
        }
        let var = format!("ETCDCTL_{}", spec.long.to_uppercase().replace('-', "_"));
        if let Ok(v) = std::env::var(&var) {
            inv.flags.insert(spec.long, v);
        }
    }
}

fn context(inv: &Invocation) -> Result<Ctx, CtlError> {
    for unsupported in ["cacert", "cert", "key", "user", "password", "discovery-srv"] {
        if inv.get(unsupported).is_some_and(|v| !v.is_empty()) {
            return Err(CtlError::bad_feature(format!(
                "--{unsupported} is not supported by keelctl (plain HTTP/2 only, no auth)"
            )));
        }
    }
    let endpoints: Vec<String> = inv
        .string("endpoints", "127.0.0.1:2379")
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.to_string())
        .collect();
    let dial = Dial {
        endpoints,
        dial_timeout: inv.duration("dial-timeout", Duration::from_secs(2))?,
        command_timeout: inv.duration("command-timeout", Duration::from_secs(5))?,
    };
    let printer = Printer {
        format: Format::parse(&inv.string("write-out", "simple"))?,
        hex: inv.bool("hex"),
        value_only: false,
    };
    Ok(Ctx { dial, printer })
}

const USAGE: &str = "NAME:
\tkeelctl - a command line client for keel (and etcd), in etcdctl v3's shape.

USAGE:
\tkeelctl [global flags] <command> [flags] [args]

COMMANDS:
\talarm disarm|list
\tcompaction <rev> [--physical]
\tdefrag [--cluster]
\tdel <key> [range_end] [--prefix|--from-key] [--prev-kv]
\telect <name> <proposal> | elect -l <name>   [--ttl]
\tendpoint health|status|hashkv [--cluster] [--rev]
\tget <key> [range_end] [--prefix|--from-key] [--limit] [--rev] [--sort-by] [--order]
\t    [--keys-only] [--count-only] [--print-value-only] [--consistency=l|s]
\tlease grant <ttl> | revoke <id> | timetolive <id> [--keys] | list | keep-alive <id> [--once]
\tlock <name> [command args...] [--ttl]
\tmember list | add <name> --peer-urls=.. [--learner] | remove <id> | update <id> --peer-urls=..
\t       | promote <id>
\tmove-leader <member id>
\tput <key> [value] [--prev-kv] [--lease=<hex id>] [--ignore-value] [--ignore-lease]
\tsnapshot save <file>
\ttxn [-i]   (stdin: compares, blank line, success ops, blank line, failure ops, blank line)
\tversion
\twatch <key> [range_end] [--prefix] [--rev] [--prev-kv]

GLOBAL FLAGS:
\t--endpoints=127.0.0.1:2379   --dial-timeout=2s   --command-timeout=5s
\t-w, --write-out=simple|json|table|fields|protobuf   --hex
";

/// Runs one keelctl command line (without the program name) and returns the exit code.
pub fn run(argv: Vec<String>) -> i32 {
    match run_inner(argv) {
        Ok(()) => exit::SUCCESS,
        Err(e) => {
            if !e.message.is_empty() {
                eprintln!("Error: {}", e.message);
            }
            e.code
        }
    }
}

fn run_inner(argv: Vec<String>) -> Result<(), CtlError> {
    let mut inv = args::parse(&argv)?;
    if inv.bool("help") || inv.command.is_empty() {
        print!("{USAGE}");
        return Ok(());
    }
    apply_env(&mut inv);
    let ctx = context(&inv)?;
    let cmd: Vec<&str> = inv.command.clone();
    match cmd.as_slice() {
        ["get"] => kv::get(&ctx, &inv),
        ["put"] => kv::put(&ctx, &inv),
        ["del"] => kv::del(&ctx, &inv),
        ["txn"] => kv::txn(&ctx, &inv),
        ["watch"] => watch::watch(&ctx, &inv),
        ["compaction"] => maintenance::compaction(&ctx, &inv),
        ["defrag"] => maintenance::defrag(&ctx, &inv),
        ["lease", "grant"] => lease::grant(&ctx, &inv),
        ["lease", "revoke"] => lease::revoke(&ctx, &inv),
        ["lease", "timetolive"] => lease::time_to_live(&ctx, &inv),
        ["lease", "list"] => lease::list(&ctx, &inv),
        ["lease", "keep-alive"] => lease::keep_alive(&ctx, &inv),
        ["member", "list"] => cluster::list(&ctx, &inv),
        ["member", "add"] => cluster::add(&ctx, &inv),
        ["member", "remove"] => cluster::remove(&ctx, &inv),
        ["member", "update"] => cluster::update(&ctx, &inv),
        ["member", "promote"] => cluster::promote(&ctx, &inv),
        ["endpoint", "status"] => maintenance::status(&ctx, &inv),
        ["endpoint", "health"] => maintenance::health(&ctx, &inv),
        ["endpoint", "hashkv"] => maintenance::hash_kv(&ctx, &inv),
        ["snapshot", "save"] => maintenance::snapshot_save(&ctx, &inv),
        ["alarm", "list"] => maintenance::alarm_list(&ctx, &inv),
        ["alarm", "disarm"] => maintenance::alarm_disarm(&ctx, &inv),
        ["move-leader"] => maintenance::move_leader(&ctx, &inv),
        ["lock"] => concurrency::lock(&ctx, &inv),
        ["elect"] => concurrency::elect(&ctx, &inv),
        ["version"] => maintenance::version(&ctx, &inv),
        other => Err(CtlError::bad_feature(format!(
            "command \"{}\" is not implemented by keelctl",
            other.join(" ")
        ))),
    }
}
