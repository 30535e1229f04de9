//! Running the stock `etcdctl` (ETCDCTL_API=3) against a set of endpoints.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// What one etcdctl run produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CtlOutput {
    /// Exit status: `true` if it exited 0. A command stopped by [`Etcdctl::run_until`] is
    /// reported as successful if the expected output arrived.
    pub success: bool,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// An etcdctl bound to endpoints.
#[derive(Clone, Debug)]
pub struct Etcdctl {
    /// `--endpoints`, `host:port` each.
    pub endpoints: Vec<String>,
    /// Working directory of the command (relative snapshot paths land here).
    pub cwd: Option<std::path::PathBuf>,
    /// The etcdctl executable: Debian's 3.4.23 unless made with [`Etcdctl::v35`].
    pub binary: std::path::PathBuf,
}

impl Etcdctl {
    /// etcdctl talking to `endpoints`.
    pub fn new(endpoints: Vec<String>) -> Etcdctl {
        Etcdctl {
            endpoints,
            cwd: None,
            binary: crate::binary::etcdctl(),
        }
    }

    /// etcdctl 3.5.1 (see [`crate::binary::etcdctl35`]) talking to `endpoints`.
    pub fn v35(endpoints: Vec<String>) -> Etcdctl {
        Etcdctl {
            endpoints,
            cwd: None,
            binary: crate::binary::etcdctl35(),
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.binary);
        for (k, _) in std::env::vars() {
            if k.starts_with("ETCDCTL_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", self.endpoints.join(",")))
            .arg("--dial-timeout=3s")
            .arg("--command-timeout=15s")
            .args(args);
        if let Some(d) = &self.cwd {
            cmd.current_dir(d);
        }
        cmd
    }

    /// Runs `etcdctl <args>` to completion.
    pub fn run(&self, args: &[&str]) -> CtlOutput {
        self.run_stdin(args, None)
    }

    /// Runs `etcdctl <args>` with `stdin` fed to it.
    pub fn run_stdin(&self, args: &[&str], stdin: Option<&str>) -> CtlOutput {
        let mut cmd = self.command(args);
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn etcdctl");
        if let Some(input) = stdin {
            let mut w = child.stdin.take().expect("stdin");
            w.write_all(input.as_bytes()).expect("write etcdctl stdin");
        }
        let out = child.wait_with_output().expect("wait etcdctl");
        CtlOutput {
            success: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs `etcdctl <args>` and asserts it succeeded; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.success,
            "etcdctl {args:?} failed:\nstdout: {}\nstderr: {}",
            o.stdout, o.stderr
        );
        o.stdout
    }

    /// Starts a long-running `etcdctl <args>` (watch, elect, lock without a command) and collects
    /// its stdout until `done(stdout so far)` is true or `timeout` passes, then SIGKILLs it.
    /// `during` runs once the process is started (e.g. to make the writes being watched).
    /// `success` is whether `done` became true.
    pub fn run_until(
        &self,
        args: &[&str],
        timeout: Duration,
        during: impl FnOnce(),
        done: impl Fn(&str) -> bool,
    ) -> CtlOutput {
        let mut cmd = self.command(args);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn etcdctl");
        let mut out = child.stdout.take().expect("stdout");
        let mut err = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel::<Vec<u8>>();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        let err_reader = std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = err.read_to_end(&mut s);
            s
        });
        during();
        let deadline = Instant::now() + timeout;
        let mut stdout = Vec::new();
        let mut finished = false;
        while Instant::now() < deadline {
            if done(&String::from_utf8_lossy(&stdout)) {
                finished = true;
                break;
            }
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(chunk) => stdout.extend_from_slice(&chunk),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    finished = done(&String::from_utf8_lossy(&stdout));
                    break;
                }
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        let _ = reader.join();
        let stderr = err_reader.join().unwrap_or_default();
        CtlOutput {
            success: finished,
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
    }
}
