//! The `keel` binary's command line: --help, --version and clear errors for bad flags.

use std::process::{Command, Output};

fn keel(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_keel"));
    c.args(args);
    // Hermetic: no ETCD_* from the developer's shell.
    for (k, _) in std::env::vars() {
        if k.starts_with("ETCD_") {
            c.env_remove(k);
        }
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run keel")
}

#[test]
fn version_and_help_exit_zero() {
    let out = keel(&["--version"], &[]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("keel Version:") && text.contains("3.5.0"),
        "{text}"
    );

    let out = keel(&["--help"], &[]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--name",
        "--data-dir",
        "--initial-cluster",
        "--heartbeat-interval",
        "--log-level",
    ] {
        assert!(text.contains(flag), "help lacks {flag}");
    }
}

#[test]
fn bad_flags_fail_with_a_message_naming_them() {
    for (args, env, needle) in [
        (&["--no-such-flag"][..], &[][..], "no-such-flag"),
        (
            &["--heartbeat-interval", "soon"],
            &[],
            "--heartbeat-interval",
        ),
        (
            &["--initial-cluster-state", "maybe"],
            &[],
            "--initial-cluster-state",
        ),
        (
            &["--listen-client-urls", "localhost:2379"],
            &[],
            "--listen-client-urls",
        ),
        (&[], &[("ETCD_MAX_TXN_OPS", "many")], "ETCD_MAX_TXN_OPS"),
        (&["positional"], &[], "'positional'"),
    ] {
        let out = keel(args, env);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(err.contains("keel --help"), "{err}");
    }
}
