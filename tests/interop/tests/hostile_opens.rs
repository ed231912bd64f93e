//! 10,000 CREATEs without a CLOSE on one session (py/hostile_session.py many_opens), against
//! a server with `limits.max_open_files = 1000`: the first 1,000 succeed, every later one is
//! STATUS_TOO_MANY_OPENED_FILES, the connection keeps answering, the server's memory stays
//! bounded (its peak RSS, read from /proc/self/status since it runs in this process, grows by
//! less than 64 MiB) and the opens are released when the client goes.
//!
//! Its own test binary so that no other test's server shares the process whose RSS is read.

use std::process::Command;
use std::time::{Duration, Instant};

use lanshare_interop::clients::Holder;
use lanshare_interop::process;
use lanshare_interop::{ServerOptions, Target, TestServer};

const LIMIT: u32 = 1000;
const OPENS: u32 = 10_000;

/// A field of /proc/self/status in KiB (VmRSS, VmHWM).
fn status_kib(field: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn ten_thousand_creates_without_close() {
    let opts = ServerOptions::default().lanshare(|cfg| cfg.limits.max_open_files = LIMIT);
    let server = TestServer::start(opts).expect("start the server under test");
    let mut holder = Holder::start(&server, "3.1.1").expect("open the held session");
    holder.echo_ok().expect("held session works before");
    let (hwm_before, fds_before) = (status_kib("VmHWM"), open_fds());

    let py = process::require_smbprotocol().expect("python with smbprotocol");
    let mut cmd = Command::new(py);
    cmd.arg(process::crate_dir().join("py").join("hostile_session.py"))
        .args(["--host", &server.host()])
        .args(["--port", &server.port().to_string()])
        .args(["--user", server.user()])
        .args(["--password", server.password()])
        .args(["--share", server.share()])
        .args(["--opens", &OPENS.to_string()])
        .arg("many_opens");
    let out = process::run(&mut cmd, Duration::from_secs(900)).expect("run the script");
    assert!(
        out.success(),
        "many_opens failed:\n{}\n{}",
        out.describe(),
        server.diagnostics()
    );
    let hwm_after = status_kib("VmHWM");
    holder
        .echo_ok()
        .expect("held session still served after the storm");

    let count = |status: &str| -> u32 {
        out.stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("COUNT many_opens {status} ")))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    };
    let (ok, too_many) = (count("0x00000000"), count("0xc000011f"));
    eprintln!(
        "{OPENS} CREATEs: {ok} opened, {too_many} STATUS_TOO_MANY_OPENED_FILES; peak RSS {} -> {} MiB",
        hwm_before / 1024,
        hwm_after / 1024
    );
    assert!(
        out.stdout
            .contains("RESULT many_opens echo-after STATUS 0x00000000"),
        "the connection stopped answering:\n{}",
        out.stdout
    );
    if server.target() == Target::Samba {
        // Samba has no max_open_files of the same meaning; only the survival above is checked.
        return;
    }
    assert_eq!(
        (ok, too_many),
        (LIMIT, OPENS - LIMIT),
        "want {LIMIT} opened and the rest refused:\n{}",
        out.stdout
    );
    let growth_mib = hwm_after.saturating_sub(hwm_before) / 1024;
    assert!(
        growth_mib < 64,
        "peak RSS grew by {growth_mib} MiB for {LIMIT} opens (bounded by max_open_files?)"
    );
    // The client is gone: its opens (and their descriptors) are released.
    let deadline = Instant::now() + Duration::from_secs(30);
    while open_fds() > fds_before + 20 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        open_fds() <= fds_before + 20,
        "{} descriptors open after the client left, {fds_before} before",
        open_fds()
    );
}
