//! Running external clients with a deadline, and finding them.
//!
//! A hung client must fail its test, not hang the whole suite: every run has a timeout, after
//! which the client's whole process group is killed (smbtorture, for one, may ignore SIGTERM
//! while blocked).

use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::Error;

/// What a finished (or killed) client printed.
#[derive(Debug, Clone)]
pub struct Output {
    /// The exit code, or 128 + the signal number when a signal ended it.
    pub code: Option<i32>,
    /// The deadline passed and the client was killed.
    pub timed_out: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        !self.timed_out && self.code == Some(0)
    }

    /// stdout then stderr: clients disagree on where their errors go.
    pub fn combined(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// A multi-line account for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "exit code {:?}{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code,
            if self.timed_out {
                " (timed out, killed)"
            } else {
                ""
            },
            self.stdout.trim_end(),
            self.stderr.trim_end()
        )
    }
}

/// Runs `cmd` with stdin closed, capturing its output, killing it after `timeout`.
pub fn run(cmd: &mut Command, timeout: Duration) -> Result<Output, Error> {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| Error::io(format!("starting {what}"), e))?;
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let (status, timed_out) = wait_deadline(&mut child, timeout)
        .map_err(|e| Error::io(format!("waiting for {what}"), e))?;
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    Ok(Output {
        code: status.code().or_else(|| status.signal().map(|n| 128 + n)),
        timed_out,
        stdout,
        stderr,
    })
}

fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut buf);
        }
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// Waits for `child` until `timeout`; past it, kills its process group and reaps it.
pub fn wait_deadline(
    child: &mut Child,
    timeout: Duration,
) -> std::io::Result<(std::process::ExitStatus, bool)> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok((status, false));
        }
        if Instant::now() >= deadline {
            kill_group(child.id());
            let _ = child.kill();
            let status = child.wait()?;
            return Ok((status, true));
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// SIGKILL to the process group led by `pgid` (children are started with `process_group(0)`).
/// Goes through kill(1) because this crate forbids `unsafe`, so no libc::kill.
pub fn kill_group(pgid: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pgid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Finds `tool` on PATH or in the sbin directories (smbd lives in /usr/sbin, which a
/// non-root PATH may lack). `package` names what to install when it is missing.
pub fn find_tool(tool: &str, package: &str) -> Result<PathBuf, Error> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let extra = ["/usr/sbin", "/sbin", "/usr/local/sbin", "/usr/bin", "/bin"];
    std::env::split_paths(&path)
        .chain(extra.iter().map(PathBuf::from))
        .map(|dir| dir.join(tool))
        .find(|p| p.is_file())
        .ok_or_else(|| Error::MissingTool {
            tool: tool.to_string(),
            package: package.to_string(),
        })
}

/// The Python interpreter to use: `$LANSHARE_INTEROP_PYTHON`, else `python3`.
pub fn python() -> Result<PathBuf, Error> {
    if let Some(p) = std::env::var_os("LANSHARE_INTEROP_PYTHON") {
        return Ok(PathBuf::from(p));
    }
    find_tool("python3", "python3 (apt-get install python3 python3-pip)")
}

/// Checks that `python3` can import the `smbprotocol` and `spnego` modules.
pub fn require_smbprotocol() -> Result<PathBuf, Error> {
    let py = python()?;
    let out = run(
        Command::new(&py).args(["-c", "import smbprotocol, spnego"]),
        Duration::from_secs(60),
    )?;
    if out.success() {
        Ok(py)
    } else {
        Err(Error::MissingTool {
            tool: format!("{} module smbprotocol", py.display()),
            package: format!(
                "the Python packages (python3 -m pip install smbprotocol pyspnego): {}",
                out.stderr.trim()
            ),
        })
    }
}

/// The directory of this crate, where `py/` lives.
pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The repository root (two levels above this crate).
pub fn repo_root() -> PathBuf {
    crate_dir().join("..").join("..")
}
