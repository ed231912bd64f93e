//! `[metrics] listen = "IP:PORT"`: the server's live counts in the Prometheus text format
//! (version 0.0.4) at `GET /metrics`.
//!
//! The HTTP side is hand-written and minimal on purpose: one request per connection, a request
//! head of at most 8 KiB that must arrive within 5 s, a few scrapers at once, `Connection:
//! close`. It serves numbers only, no authentication: keep it on loopback or a management
//! network.
//!
//! Not exported: bytes read/written and request latency, which the engine does not count yet.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use smb_engine::{Server, ServerStatus};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tracing::{debug, warn};

const MAX_HEAD: usize = 8 * 1024;
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_SCRAPERS: usize = 4;

/// Serves `/metrics` until the task is dropped.
pub async fn serve(listener: TcpListener, server: Server) {
    let slots = Arc::new(Semaphore::new(MAX_SCRAPERS));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, "metrics: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // A scraper beyond the few allowed is closed at once rather than queued: scrapes are
        // periodic, the next one will do.
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            debug!(%peer, "metrics: too many scrapers at once; closed");
            continue;
        };
        let server = server.clone();
        tokio::spawn(async move {
            if let Err(e) = answer(stream, &server).await {
                debug!(%peer, error = %e, "metrics: request failed");
            }
            drop(slot);
        });
    }
}

/// What the request head asks for.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Metrics { head_only: bool },
    NotFound,
    MethodNotAllowed,
    BadRequest,
}

fn route(head: &[u8]) -> Route {
    let Some(line) = head.split(|&b| b == b'\n').next() else {
        return Route::BadRequest;
    };
    let line = String::from_utf8_lossy(line);
    let mut parts = line.trim_end_matches('\r').split(' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Route::BadRequest;
    };
    if parts.next().is_some() || !version.starts_with("HTTP/1.") {
        return Route::BadRequest;
    }
    let path = target.split('?').next().unwrap_or(target);
    match (method, path) {
        ("GET", "/metrics") => Route::Metrics { head_only: false },
        ("HEAD", "/metrics") => Route::Metrics { head_only: true },
        ("GET" | "HEAD", _) => Route::NotFound,
        _ => Route::MethodNotAllowed,
    }
}

async fn read_head(stream: &mut TcpStream) -> std::io::Result<Option<Vec<u8>>> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(None);
        }
        head.extend_from_slice(buf.get(..n).unwrap_or_default());
        if head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n") {
            return Ok(Some(head));
        }
        if head.len() > MAX_HEAD {
            return Ok(Some(Vec::new()));
        }
    }
}

async fn answer(mut stream: TcpStream, server: &Server) -> std::io::Result<()> {
    let head = match tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut stream)).await {
        Err(_) => return Ok(()),
        Ok(r) => match r? {
            Some(h) => h,
            None => return Ok(()),
        },
    };
    let (status, body, head_only, extra) = match route(&head) {
        Route::Metrics { head_only } => ("200 OK", render(&server.status()), head_only, ""),
        Route::NotFound => (
            "404 Not Found",
            "lanshare serves /metrics only\n".to_string(),
            false,
            "",
        ),
        Route::MethodNotAllowed => (
            "405 Method Not Allowed",
            "use GET\n".to_string(),
            false,
            "Allow: GET, HEAD\r\n",
        ),
        Route::BadRequest => ("400 Bad Request", "bad request\n".to_string(), false, ""),
    };
    let content_type = if status.starts_with("200") {
        "text/plain; version=0.0.4; charset=utf-8"
    } else {
        "text/plain; charset=utf-8"
    };
    let mut response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n",
        body.len()
    );
    if !head_only {
        response.push_str(&body);
    }
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// A label value in the exposition format: backslash, double quote and newline escaped.
fn label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// The whole exposition for one status snapshot.
pub fn render(st: &ServerStatus) -> String {
    let mut out = String::with_capacity(4096);
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(String, f64)]| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (labels, v) in samples {
            if labels.is_empty() {
                let _ = writeln!(out, "{name} {v}");
            } else {
                let _ = writeln!(out, "{name}{{{labels}}} {v}");
            }
        }
    };
    let one = |v: u64| vec![(String::new(), v as f64)];
    metric(
        "lanshare_info",
        "gauge",
        "The server's name and version (always 1).",
        &[(
            format!(
                "server_name=\"{}\",version=\"{}\"",
                label(&st.server_name),
                label(st.version)
            ),
            1.0,
        )],
    );
    metric(
        "lanshare_uptime_seconds",
        "gauge",
        "Seconds since the server started.",
        &one(st.uptime_secs),
    );
    metric(
        "lanshare_connections",
        "gauge",
        "TCP connections open now.",
        &one(st.connections),
    );
    metric(
        "lanshare_sessions",
        "gauge",
        "Sessions established or being set up now.",
        &one(st.sessions),
    );
    metric(
        "lanshare_open_files",
        "gauge",
        "Files and folders open now.",
        &one(st.open_files),
    );
    metric(
        "lanshare_inflight_requests",
        "gauge",
        "Requests being processed now (limits.max_inflight bounds them).",
        &one(u64::from(st.inflight_now)),
    );
    // share.max_users is per share: lanshare_share_max_users carries it.
    let limits: Vec<(String, f64)> = st
        .limits
        .iter()
        .filter(|l| l.setting != "share.max_users")
        .map(|l| (format!("limit=\"{}\"", label(l.setting)), l.limit as f64))
        .chain(std::iter::once((
            "limit=\"limits.max_inflight\"".to_string(),
            f64::from(st.inflight_limit),
        )))
        .collect();
    metric(
        "lanshare_limit",
        "gauge",
        "Each limit's setting (0 = unlimited).",
        &limits,
    );
    let refusals: Vec<(String, f64)> = st
        .limits
        .iter()
        .map(|l| (format!("limit=\"{}\"", label(l.setting)), l.refused as f64))
        .collect();
    metric(
        "lanshare_refusals_total",
        "counter",
        "Newcomers refused by each limit since start.",
        &refusals,
    );
    let shares: Vec<(String, f64)> = st
        .shares
        .iter()
        .map(|s| (format!("share=\"{}\"", label(&s.name)), f64::from(s.users)))
        .collect();
    metric(
        "lanshare_share_users",
        "gauge",
        "Tree connects to each share now (share.max_users bounds them).",
        &shares,
    );
    let max_users: Vec<(String, f64)> = st
        .shares
        .iter()
        .map(|s| {
            (
                format!("share=\"{}\"", label(&s.name)),
                f64::from(s.max_users),
            )
        })
        .collect();
    metric(
        "lanshare_share_max_users",
        "gauge",
        "Each share's max_users (0 = unlimited).",
        &max_users,
    );
    for (name, help, v) in [
        (
            "lanshare_connections_accepted_total",
            "Connections admitted since start.",
            st.accepted_connections,
        ),
        (
            "lanshare_logons_total",
            "Successful logons since start.",
            st.logons,
        ),
        (
            "lanshare_logon_failures_total",
            "Failed logons since start.",
            st.logon_failures,
        ),
        (
            "lanshare_idle_closed_total",
            "Connections closed by limits.idle_timeout since start.",
            st.idle_closed,
        ),
        (
            "lanshare_handshake_timeouts_total",
            "Connections closed by limits.handshake_timeout since start.",
            st.handshake_timeouts,
        ),
        (
            "lanshare_read_deadline_drops_total",
            "Connections closed because a message did not arrive in time since start.",
            st.read_deadline_drops,
        ),
        (
            "lanshare_protocol_drops_total",
            "Connections closed for protocol violations since start.",
            st.protocol_drops,
        ),
    ] {
        metric(name, "counter", help, &one(v));
    }
    metric(
        "lanshare_locked_out_addresses",
        "gauge",
        "Client addresses locked out by the failed-logon throttle now.",
        &one(st.locked_out_addresses as u64),
    );
    metric(
        "lanshare_locked_out_accounts",
        "gauge",
        "Accounts locked out by the failed-logon throttle now.",
        &one(st.locked_out_accounts as u64),
    );
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(
            route(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Route::Metrics { head_only: false }
        );
        assert_eq!(
            route(b"HEAD /metrics?x=1 HTTP/1.0\r\n\r\n"),
            Route::Metrics { head_only: true }
        );
        assert_eq!(route(b"GET / HTTP/1.1\r\n\r\n"), Route::NotFound);
        assert_eq!(
            route(b"POST /metrics HTTP/1.1\r\n\r\n"),
            Route::MethodNotAllowed
        );
        assert_eq!(route(b"GET /metrics\r\n\r\n"), Route::BadRequest);
        assert_eq!(route(b""), Route::BadRequest);
        assert_eq!(route(b"\x16\x03\x01 garbage"), Route::BadRequest);
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(label("x\ny"), "x\\ny");
    }

    fn server(dir: &std::path::Path) -> Server {
        let mut cfg = smb_engine::EngineConfig::new("BOX").with_share({
            let mut s = smb_engine::ShareConfig::new("docs\"x", dir);
            s.max_users = 3;
            s
        });
        cfg.limits.max_sessions = 7;
        Server::new(cfg, Arc::new(lanshare_auth::MemoryUserDb::new())).unwrap()
    }

    #[test]
    fn exposition_has_every_family_once_and_parses() {
        let dir = tempfile::tempdir().unwrap();
        let text = render(&server(dir.path()).status());
        assert!(
            text.contains("lanshare_limit{limit=\"limits.max_sessions\"} 7\n"),
            "{text}"
        );
        assert!(text.contains("lanshare_refusals_total{limit=\"limits.max_sessions\"} 0\n"));
        assert!(
            text.contains("lanshare_share_users{share=\"docs\\\"x\"} 0\n"),
            "{text}"
        );
        assert!(text.contains("lanshare_sessions 0\n"));
        assert!(
            text.contains("lanshare_share_max_users{share=\"docs\\\"x\"} 3\n"),
            "{text}"
        );
        assert!(!text.contains("lanshare_limit{limit=\"share.max_users\"}"));
        assert!(text.contains("lanshare_info{server_name=\"BOX\",version=\""));
        // Every sample line is `name{labels} value` with a known family and a numeric value.
        let mut families = std::collections::HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let name = rest.split(' ').next().unwrap();
                assert!(families.insert(name.to_string()), "{name} declared twice");
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').unwrap();
            value.parse::<f64>().unwrap();
            let name = series.split('{').next().unwrap();
            assert!(families.contains(name), "{name} has no TYPE line");
            assert!(name.starts_with("lanshare_"));
        }
    }

    #[tokio::test]
    async fn http_get_head_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(serve(listener, server(dir.path())));
        let fetch = |req: &'static str| async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(req.as_bytes()).await.unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).await.unwrap();
            out
        };
        let ok = fetch("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        let (head, body) = ok.split_once("\r\n\r\n").unwrap();
        assert!(head.contains("text/plain; version=0.0.4"));
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
        assert!(body.contains("lanshare_connections "));
        let head_only = fetch("HEAD /metrics HTTP/1.1\r\n\r\n").await;
        assert!(head_only.ends_with("\r\n\r\n"), "{head_only}");
        assert!(
            fetch("GET /x HTTP/1.1\r\n\r\n")
                .await
                .starts_with("HTTP/1.1 404")
        );
        assert!(
            fetch("DELETE /metrics HTTP/1.1\r\n\r\n")
                .await
                .starts_with("HTTP/1.1 405")
        );
        // A head that never ends is cut off at the size bound, not buffered forever.
        let mut s = TcpStream::connect(addr).await.unwrap();
        let _ = s.write_all(&vec![b'a'; MAX_HEAD + 2048]).await;
        let mut out = String::new();
        let _ = s.read_to_string(&mut out).await;
        assert!(out.starts_with("HTTP/1.1 400"), "{out}");
        task.abort();
    }
}
