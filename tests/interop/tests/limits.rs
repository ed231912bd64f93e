//! Issue 4's limits, each shown with real clients against the in-process engine configured
//! through `ServerOptions::lanshare`: what the refused newcomer sees (smbclient's own words),
//! that the clients already in keep working, and that `Server::status()` counted it.
//!
//! - `max_sessions`: the 4th of 3 gets NT_STATUS_REQUEST_NOT_ACCEPTED; after a logoff one fits.
//! - `share.max_users`: the same at TREE_CONNECT.
//! - `max_connections_per_ip`, `max_connections`: the socket is closed; others untouched; a
//!   second loopback address (127.0.0.2) tells the per-address limit from the global one.
//! - `idle_timeout` = 2 s: an idle session goes, one holding a file stays.
//! - `handshake_timeout` / `frame_read_timeout` = 2 s: a silent client and a trickling one are
//!   dropped.
//! - 50 pending CHANGE_NOTIFY on one connection leave its credits and its reads and writes
//!   alone; `max_async_per_connection` refuses the excess with STATUS_INSUFFICIENT_RESOURCES.
//! - `max_open_files_per_session`: STATUS_TOO_MANY_OPENED_FILES.
//!
//! Python clients are `py/limits_client.py` (smbprotocol), driven line by line.
#![cfg(feature = "lanshare")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use lanshare_interop::clients::{smbclient, tail};
use lanshare_interop::process::{self, crate_dir};
use lanshare_interop::raw::{self, RawConn};
use lanshare_interop::{ServerOptions, TestServer};
use smb_engine::{EngineConfig, LimitStatus, ServerStatus};

const STATUS_INSUFFICIENT_RESOURCES: &str = "0xc000009a";
const STATUS_TOO_MANY_OPENED_FILES: &str = "0xc000011f";

fn start(tweak: impl Fn(&mut EngineConfig) + Send + Sync + 'static) -> TestServer {
    TestServer::start_lanshare(ServerOptions::default().lanshare(tweak))
        .expect("in-process lanshare starts")
}

fn status(ts: &TestServer) -> ServerStatus {
    ts.lanshare_server().expect("lanshare target").status()
}

fn limit<'a>(st: &'a ServerStatus, setting: &str) -> &'a LimitStatus {
    st.limits
        .iter()
        .find(|l| l.setting == setting)
        .unwrap_or_else(|| panic!("status has no limit {setting}: {:?}", st.limits))
}

/// Polls `cond` every 50 ms until it holds, or panics after `within` naming `what`.
fn wait_until(what: &str, within: Duration, mut cond: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < within, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    start.elapsed()
}

/// `py/limits_client.py`: one smbprotocol connection + session + tree, driven line by line.
struct Driven {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    name: String,
}

impl Driven {
    fn start(ts: &TestServer, name: &str) -> Driven {
        let py = process::require_smbprotocol().expect("python3 with smbprotocol");
        let mut child = Command::new(py)
            .arg(crate_dir().join("py").join("limits_client.py"))
            .args(["--host", &ts.host()])
            .args(["--port", &ts.port().to_string()])
            .args(["--user", ts.user()])
            .args(["--password", ts.password()])
            .args(["--share", ts.share()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start limits_client.py");
        let stdin = child.stdin.take();
        let out = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut d = Driven {
            child,
            stdin,
            lines,
            name: name.to_string(),
        };
        let first = d.next_line(Duration::from_secs(60));
        assert!(
            first.starts_with("READY"),
            "{name} did not get ready: {first}; server: {}",
            ts.diagnostics()
        );
        d
    }

    fn next_line(&mut self, wait: Duration) -> String {
        self.lines
            .recv_timeout(wait)
            .unwrap_or_else(|e| panic!("{} said nothing within {wait:?}: {e}", self.name))
    }

    fn command(&mut self, cmd: &str) -> String {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{cmd}").expect("write to limits_client.py");
        stdin.flush().expect("flush");
        self.next_line(Duration::from_secs(120))
    }

    fn expect(&mut self, cmd: &str, prefix: &str) -> String {
        let answer = self.command(cmd);
        assert!(
            answer.starts_with(prefix),
            "{}: `{cmd}` answered {answer:?}, expected {prefix}…",
            self.name
        );
        answer
    }

    fn credits(&mut self) -> u64 {
        let a = self.expect("credits", "CREDITS ");
        a["CREDITS ".len()..].trim().parse().expect("credit count")
    }

    /// `rw N SIZE` → (operations done, seconds, credits after).
    fn rw(&mut self, n: u32, size: u32) -> (u32, f64, u64) {
        let a = self.expect(&format!("rw {n} {size}"), "RW ");
        let w: Vec<&str> = a.split_whitespace().collect();
        (
            w[1].parse().expect("ops"),
            w[2].parse().expect("secs"),
            w[4].parse().expect("credits"),
        )
    }
}

impl Drop for Driven {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = process::wait_deadline(&mut self.child, Duration::from_secs(10));
    }
}

fn assert_refused_by_smbclient(ts: &TestServer, expected: &str) {
    let out = smbclient(ts, &[], "ls").expect("smbclient runs");
    assert!(
        !out.success() && out.combined().contains(expected),
        "smbclient should print {expected}:\n{}",
        out.describe()
    );
}

fn assert_smbclient_works(ts: &TestServer) {
    let out = smbclient(ts, &[], "ls").expect("smbclient runs");
    assert!(
        out.success(),
        "smbclient ls failed:\n{}\nserver: {}",
        out.describe(),
        ts.diagnostics()
    );
}

#[test]
fn max_sessions_refuses_the_fourth_and_admits_after_a_logoff() {
    let ts = start(|c| c.limits.max_sessions = 3);
    let mut held: Vec<Driven> = (0..3)
        .map(|i| Driven::start(&ts, &format!("client {i}")))
        .collect();
    assert_refused_by_smbclient(&ts, "NT_STATUS_REQUEST_NOT_ACCEPTED");
    for h in &mut held {
        h.expect("echo", "OK");
    }
    let st = status(&ts);
    let l = limit(&st, "limits.max_sessions");
    assert_eq!(
        (l.limit, l.current, l.refused),
        (3, Some(3), 1),
        "status: {st:?}"
    );

    held[0].expect("logoff", "OK");
    let srv = ts.lanshare_server().expect("lanshare");
    wait_until(
        "the logged-off session is gone",
        Duration::from_secs(10),
        || srv.session_count() == 2,
    );
    assert_smbclient_works(&ts);
    for h in held.iter_mut().skip(1) {
        h.expect("echo", "OK");
    }
    assert_eq!(limit(&status(&ts), "limits.max_sessions").refused, 1);
}

#[test]
fn share_max_users_refuses_at_tree_connect() {
    let ts = start(|c| c.shares[0].max_users = 2);
    let mut held: Vec<Driven> = (0..2)
        .map(|i| Driven::start(&ts, &format!("client {i}")))
        .collect();
    let out = smbclient(&ts, &[], "ls").expect("smbclient runs");
    assert!(
        !out.success() && out.combined().contains("NT_STATUS_REQUEST_NOT_ACCEPTED"),
        "{}",
        out.describe()
    );
    for h in &mut held {
        h.expect("echo", "OK");
    }
    let st = status(&ts);
    assert_eq!((st.shares[0].users, st.shares[0].max_users), (2, 2));
    assert_eq!(limit(&st, "share.max_users").refused, 1, "{st:?}");
    // The refusal was at TREE_CONNECT: the session limit saw nothing.
    assert_eq!(limit(&st, "limits.max_sessions").refused, 0);

    held[0].expect("logoff", "OK");
    wait_until(
        "the share's user count drops",
        Duration::from_secs(10),
        || status(&ts).shares[0].users == 1,
    );
    assert_smbclient_works(&ts);
    held[1].expect("echo", "OK");
}

/// A TCP connection from `source` (any 127/8 address) that negotiates; `None` when the server
/// closed it instead.
fn negotiate_from(source: &str, server: SocketAddr) -> Option<TcpStream> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let stream = rt
        .block_on(async {
            let s = tokio::net::TcpSocket::new_v4()?;
            s.bind(format!("{source}:0").parse().expect("addr"))?;
            s.connect(server).await?.into_std()
        })
        .expect("connect");
    stream.set_nonblocking(false).expect("blocking");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut s = stream;
    let req = raw::frame(&raw::negotiate(&[raw::DIALECT_302], 0));
    if s.write_all(&req).is_err() {
        return None;
    }
    let mut len = [0u8; 4];
    if s.read_exact(&mut len).is_err() {
        return None;
    }
    let n = u32::from_be_bytes(len) as usize & 0xFF_FFFF;
    let mut body = vec![0u8; n];
    s.read_exact(&mut body).ok()?;
    assert_eq!(raw::negotiated_dialect(&body), Some(raw::DIALECT_302));
    Some(s)
}

#[test]
fn max_connections_per_ip_closes_the_extra_socket_only() {
    let ts = start(|c| c.limits.max_connections_per_ip = 2);
    let mut held: Vec<Driven> = (0..2)
        .map(|i| Driven::start(&ts, &format!("client {i}")))
        .collect();
    let out = smbclient(&ts, &[], "ls").expect("smbclient runs");
    assert!(!out.success(), "{}", out.describe());
    eprintln!(
        "smbclient refused by max_connections_per_ip: {}",
        tail(&out.combined(), 3)
    );
    let mut extra = RawConn::connect(ts.addr()).expect("TCP connect is accepted first");
    assert!(
        extra.closed_within(Duration::from_secs(5)),
        "the third connection from 127.0.0.1 must be closed"
    );
    // Another address has its own count.
    let other = negotiate_from("127.0.0.2", ts.addr());
    assert!(other.is_some(), "127.0.0.2 must not be refused");
    for h in &mut held {
        h.expect("echo", "OK");
    }
    let st = status(&ts);
    let l = limit(&st, "limits.max_connections_per_ip");
    assert!(l.refused >= 2, "smbclient and the raw socket: {st:?}");
    assert_eq!(limit(&st, "limits.max_connections").refused, 0);
    assert_eq!(st.connections, 3, "{st:?}");
}

#[test]
fn max_connections_closes_newcomers_from_any_address() {
    let ts = start(|c| c.limits.max_connections = 2);
    let mut held: Vec<Driven> = (0..2)
        .map(|i| Driven::start(&ts, &format!("client {i}")))
        .collect();
    assert!(
        negotiate_from("127.0.0.2", ts.addr()).is_none(),
        "a third connection, from any address, must be closed"
    );
    let out = smbclient(&ts, &[], "ls").expect("smbclient runs");
    assert!(!out.success(), "{}", out.describe());
    for h in &mut held {
        h.expect("echo", "OK");
    }
    let st = status(&ts);
    assert!(limit(&st, "limits.max_connections").refused >= 2, "{st:?}");
    assert_eq!(limit(&st, "limits.max_connections_per_ip").refused, 0);
    assert_eq!(st.connections, 2);
    drop(held.pop());
    wait_until("a slot frees up", Duration::from_secs(10), || {
        status(&ts).connections == 1
    });
    assert_smbclient_works(&ts);
}

#[test]
fn idle_timeout_closes_idle_sessions_but_not_ones_with_open_files() {
    let ts = start(|c| c.limits.idle_timeout = Duration::from_secs(2));
    let mut idle = Driven::start(&ts, "idle client");
    let idle_since = Instant::now();
    let mut busy = Driven::start(&ts, "client with an open file");
    busy.expect("open held.txt", "OK");
    let srv = ts.lanshare_server().expect("lanshare");
    let took = wait_until(
        "the idle session is closed",
        Duration::from_secs(10),
        || srv.status().idle_closed >= 1 && srv.session_count() == 1,
    );
    let idle_for = idle_since.elapsed();
    eprintln!(
        "idle session closed {idle_for:?} after its last request (idle_timeout 2 s; {took:?} after the other client's open)"
    );
    // The engine keeps idle times in whole seconds, so a 2 s timeout may fire after 1.x s.
    assert!(
        idle_for >= Duration::from_secs(1),
        "closed after only {idle_for:?} of idleness"
    );
    // Well past the timeout the one with a file is still there.
    std::thread::sleep(Duration::from_secs(3));
    busy.expect("echo", "OK");
    let sessions = srv.sessions();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert_eq!(sessions[0].opens, 1);
    let answer = idle.command("echo");
    assert!(answer.starts_with("FAIL"), "idle client's echo: {answer}");
    assert_eq!(srv.status().idle_closed, 1);
    // Once its file is closed, the other one is idle from that request on: the server's
    // timer, set a whole limit ahead while the file was open, must still see it.
    busy.expect("close held.txt", "OK");
    let closed_at = Instant::now();
    wait_until(
        "the session whose file was closed is closed",
        Duration::from_secs(10),
        || srv.status().idle_closed >= 2 && srv.session_count() == 0,
    );
    let after = closed_at.elapsed();
    eprintln!("closed {after:?} after its CLOSE (idle_timeout 2 s)");
    assert!(
        after >= Duration::from_secs(1),
        "closed after only {after:?} of idleness"
    );
}

#[test]
fn a_silent_client_is_dropped_at_the_handshake_deadline() {
    let ts = start(|c| {
        c.handshake_timeout = Duration::from_secs(2);
        c.frame_read_timeout = Duration::from_secs(60);
    });
    let start = Instant::now();
    let mut silent = RawConn::connect(ts.addr()).expect("connect");
    assert!(
        silent.closed_within(Duration::from_secs(10)),
        "never closed"
    );
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(1500),
        "closed after {took:?}, before the deadline"
    );
    let st = status(&ts);
    assert_eq!(st.handshake_timeouts, 1, "{st:?}");
    assert_eq!(st.read_deadline_drops, 0);
}

#[test]
fn a_client_trickling_one_byte_a_second_is_dropped_at_the_read_deadline() {
    let ts = start(|c| {
        c.handshake_timeout = Duration::from_secs(60);
        c.frame_read_timeout = Duration::from_secs(2);
    });
    let mut s = TcpStream::connect(ts.addr()).expect("connect");
    s.set_read_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    let start = Instant::now();
    // A frame header announcing 200 bytes, then the bytes one a second.
    s.write_all(&[0, 0, 0, 200]).expect("header");
    let mut closed_after = None;
    for _ in 0..15 {
        let mut b = [0u8; 1];
        match s.read(&mut b) {
            Ok(0) => {
                closed_after = Some(start.elapsed());
                break;
            }
            Ok(_) => panic!("the server answered a frame that never completed"),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => {
                closed_after = Some(start.elapsed());
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(950));
        if s.write_all(&[0xFE]).is_err() {
            closed_after = Some(start.elapsed());
            break;
        }
    }
    let took = closed_after.expect("the trickling client was never dropped");
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(8),
        "dropped after {took:?} (frame_read_timeout 2 s)"
    );
    let st = status(&ts);
    assert_eq!(st.read_deadline_drops, 1, "{st:?}");
    assert_eq!(st.handshake_timeouts, 0);
}

#[test]
fn fifty_pending_change_notifies_leave_credits_and_io_alone() {
    let ts = start(|_| {});
    let mut c = Driven::start(&ts, "watcher");
    let (n, base_secs, _) = c.rw(50, 64 * 1024);
    assert_eq!(n, 50);
    let before = c.credits();
    let pending = c.expect("notify 50", "PENDING ");
    assert!(pending.starts_with("PENDING 50 FAILED 0"), "{pending}");
    let during = c.credits();
    assert!(
        during >= before,
        "credits fell from {before} to {during} with 50 CHANGE_NOTIFY pending"
    );
    let (n, secs, after) = c.rw(200, 64 * 1024);
    assert_eq!(n, 200);
    assert!(after >= before, "credits {before} before, {after} after");
    // "Full speed", with room for a loaded 2-core machine: the same work may not take more
    // than three times as long per operation as it did with nothing pending.
    let per_op_base = base_secs / 50.0;
    let per_op = secs / 200.0;
    eprintln!(
        "credits {before} → {during} with 50 pending; {:.2} ms/op before, {:.2} ms/op with 50 pending",
        per_op_base * 1e3,
        per_op * 1e3
    );
    assert!(
        per_op <= per_op_base * 3.0 + 0.002,
        "reads and writes slowed from {per_op_base:.4} to {per_op:.4} s/op"
    );
    c.expect("notified", "NOTIFIED 0");
    c.expect("echo", "OK");
    let st = status(&ts);
    assert_eq!(limit(&st, "limits.max_async_per_connection").refused, 0);
    c.expect("cancel", "OK");
}

#[test]
fn max_async_per_connection_refuses_the_excess_with_insufficient_resources() {
    let ts = start(|c| c.max_async_per_connection = 10);
    let mut c = Driven::start(&ts, "watcher");
    let before = c.credits();
    let answer = c.expect("notify 12", "PENDING ");
    assert_eq!(
        answer,
        format!("PENDING 10 FAILED 2 STATUS {STATUS_INSUFFICIENT_RESOURCES}")
    );
    assert!(c.credits() >= before);
    let (n, _, _) = c.rw(20, 4096);
    assert_eq!(n, 20);
    let st = status(&ts);
    assert_eq!(limit(&st, "limits.max_async_per_connection").refused, 2);
    c.expect("cancel", "OK");
}

#[test]
fn max_open_files_per_session_answers_too_many_opened_files() {
    let ts = start(|c| c.limits.max_open_files_per_session = 2);
    let mut c = Driven::start(&ts, "opener");
    c.expect("open a.txt", "OK");
    c.expect("open b.txt", "OK");
    let third = c.command("open c.txt");
    assert_eq!(third, format!("FAIL status {STATUS_TOO_MANY_OPENED_FILES}"));
    c.expect("close a.txt", "OK");
    c.expect("open c.txt", "OK");
    let st = status(&ts);
    assert_eq!(limit(&st, "limits.max_open_files_per_session").refused, 1);
    assert_eq!(st.open_files, 2);
}
