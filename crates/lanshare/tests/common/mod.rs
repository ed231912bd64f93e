//! What the binary's end-to-end tests share: the `lanshare` command and a spawned server whose
//! stdout and stderr are read line by line, killed if a test fails half-way.
#![allow(dead_code, clippy::unwrap_used)]

use std::cell::RefCell;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// `lanshare` with the developer's log settings removed: the tests read the process's own
/// messages.
pub fn lanshare() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lanshare"));
    c.env_remove("RUST_LOG");
    c
}

pub struct Server {
    pub child: Child,
    stdout: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
    /// Every stderr line read so far, for log checks and failure messages.
    log: RefCell<Vec<String>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lines_of(r: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

impl Server {
    /// Spawns `cmd` with stdin closed and both outputs captured.
    pub fn spawn(mut cmd: Command) -> Server {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Server {
            stdout: lines_of(child.stdout.take().unwrap()),
            stderr: lines_of(child.stderr.take().unwrap()),
            child,
            log: RefCell::new(Vec::new()),
        }
    }

    /// `lanshare serve --config CONFIG`.
    pub fn serve_config(config: &std::path::Path) -> Server {
        let mut cmd = lanshare();
        cmd.args(["serve", "--config"]).arg(config);
        Server::spawn(cmd)
    }

    /// Stdout lines until `pred` matches one (returned last); panics after 60 s.
    pub fn read_until(&self, pred: impl Fn(&str) -> bool) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(line) => {
                    let done = pred(&line);
                    seen.push(line);
                    if done {
                        return seen;
                    }
                }
                Err(_) => panic!(
                    "server printed {seen:?} and then nothing matching; stderr: {:#?}",
                    self.stderr_so_far()
                ),
            }
        }
    }

    /// The first stdout line matching `pred`.
    pub fn line(&self, pred: impl Fn(&str) -> bool) -> String {
        self.read_until(pred).pop().unwrap_or_default()
    }

    /// The rest of the first stdout line starting with `prefix`.
    pub fn announced(&self, prefix: &str) -> String {
        self.line(|l| l.starts_with(prefix))[prefix.len()..].to_string()
    }

    /// The SMB address of the first `lanshare listening on` line.
    pub fn listening(&self) -> SocketAddr {
        self.announced("lanshare listening on ").parse().unwrap()
    }

    /// The stdout lines printed since the last read.
    pub fn stdout_so_far(&self) -> Vec<String> {
        self.stdout.try_iter().collect()
    }

    /// Every stderr line so far.
    pub fn stderr_so_far(&self) -> Vec<String> {
        let mut log = self.log.borrow_mut();
        log.extend(self.stderr.try_iter());
        log.clone()
    }

    /// The first stderr line containing `needle`, waiting up to `wait` for it.
    pub fn log_within(&self, needle: &str, wait: Duration) -> Option<String> {
        let mut log = self.log.borrow_mut();
        if let Some(l) = log.iter().find(|l| l.contains(needle)) {
            return Some(l.clone());
        }
        let deadline = Instant::now() + wait;
        while let Ok(l) = self
            .stderr
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            log.push(l.clone());
            if l.contains(needle) {
                return Some(l);
            }
        }
        None
    }

    /// The first stderr line containing `needle`; panics after 30 s.
    pub fn log_line(&self, needle: &str) -> String {
        self.log_within(needle, Duration::from_secs(30))
            .unwrap_or_else(|| {
                panic!(
                    "no log line with {needle:?}; stderr: {:#?}",
                    self.stderr_so_far()
                )
            })
    }

    /// Whether the process still runs. Read from /proc rather than by waiting on the child: a
    /// process that died is a zombie until Drop reaps it, and it must count as dead.
    pub fn child_alive(&self) -> bool {
        let pid = self.child.id().to_string();
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        !state.is_empty() && !state.contains(") Z ")
    }

    /// SIGTERM, then the exit status; panics if the server is still running after `wait`.
    pub fn terminate(&mut self, wait: Duration) -> ExitStatus {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let deadline = Instant::now() + wait;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "server ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
