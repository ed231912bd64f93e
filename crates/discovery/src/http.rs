//! The HTTP side of WS-Discovery: the metadata endpoint named in our XAddrs
//! (`http://IP:5357/<uuid>`), where Windows POSTs a WS-Transfer Get ([DPWS 2006/02] 5.1) after
//! a ProbeMatch or Hello.
//!
//! A deliberately small HTTP/1.1 server: one request per connection (`Connection: close`), no
//! chunked bodies (Windows sends Content-Length), request head and body size-capped before
//! anything is allocated for them, one deadline for the whole exchange, and a cap on
//! concurrent connections beyond which new ones are closed at once.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

use crate::soap::MAX_SOAP_LEN;
use crate::wsd::{self, GetError, Identity};

/// Request line plus headers. Windows' Get request head is about 250 bytes.
const MAX_HEAD_LEN: usize = 8 * 1024;
/// The whole exchange (read request, write response) must fit in this.
const EXCHANGE_DEADLINE: Duration = Duration::from_secs(10);
/// Concurrent metadata connections; a LAN's clients ask once each after a Hello.
const MAX_CONNECTIONS: usize = 32;

/// After an error response, discard at most this much of what the client still sends, for at
/// most this long between reads.
const DRAIN_LIMIT: usize = 64 * 1024;
const DRAIN_WAIT: Duration = Duration::from_secs(1);

const SOAP_CONTENT_TYPE: &str = "application/soap+xml; charset=utf-8";

/// One response, before serialisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub reason: &'static str,
    pub content_type: &'static str,
    pub body: String,
    /// An `Allow` header for 405.
    pub allow: Option<&'static str>,
}

impl Response {
    fn plain(status: u16, reason: &'static str) -> Response {
        Response {
            status,
            reason,
            content_type: "text/plain; charset=utf-8",
            body: format!("{status} {reason}\n"),
            allow: None,
        }
    }

    fn soap(body: String) -> Response {
        Response {
            status: 200,
            reason: "OK",
            content_type: SOAP_CONTENT_TYPE,
            body,
            allow: None,
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.status,
            self.reason,
            self.content_type,
            self.body.len()
        );
        if let Some(allow) = self.allow {
            head.push_str("Allow: ");
            head.push_str(allow);
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        out.extend_from_slice(self.body.as_bytes());
        out
    }
}

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub method: String,
    pub target: String,
    pub content_length: usize,
    pub expect_continue: bool,
}

/// Why a request head was refused; each maps to the status sent back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadError {
    Malformed,
    BodyTooLarge,
    ChunkedNotSupported,
    VersionNotSupported,
}

impl HeadError {
    fn response(self) -> Response {
        match self {
            HeadError::Malformed => Response::plain(400, "Bad Request"),
            HeadError::BodyTooLarge => Response::plain(413, "Content Too Large"),
            HeadError::ChunkedNotSupported => Response::plain(411, "Length Required"),
            HeadError::VersionNotSupported => Response::plain(505, "HTTP Version Not Supported"),
        }
    }
}

/// Parses the request line and headers (everything before the blank line).
pub fn parse_head(head: &[u8]) -> Result<Head, HeadError> {
    let text = std::str::from_utf8(head).map_err(|_| HeadError::Malformed)?;
    let mut lines = text.split("\r\n");
    let request_line = lines.next().ok_or(HeadError::Malformed)?;
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HeadError::Malformed);
    };
    if method.is_empty() || target.is_empty() {
        return Err(HeadError::Malformed);
    }
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(HeadError::VersionNotSupported);
    }
    let mut content_length: Option<usize> = None;
    let mut expect_continue = false;
    for line in lines {
        if line.is_empty() {
            continue;
        }
        let (name, value) = line.split_once(':').ok_or(HeadError::Malformed)?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            // Digits only, and a repeated header must agree (RFC 9112 6.3: anything else is
            // a framing error, the root of request smuggling).
            if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                return Err(HeadError::Malformed);
            }
            let n: usize = if value.len() > 9 {
                usize::MAX
            } else {
                value.parse().map_err(|_| HeadError::Malformed)?
            };
            if content_length.is_some_and(|c| c != n) {
                return Err(HeadError::Malformed);
            }
            content_length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(HeadError::ChunkedNotSupported);
        } else if name.eq_ignore_ascii_case("expect") {
            expect_continue = value.eq_ignore_ascii_case("100-continue");
        }
    }
    let content_length = content_length.unwrap_or(0);
    if content_length > MAX_SOAP_LEN {
        return Err(HeadError::BodyTooLarge);
    }
    Ok(Head {
        method: method.to_owned(),
        target: target.to_owned(),
        content_length,
        expect_continue,
    })
}

/// The path of a request target, whether origin-form (`/x`) or absolute-form (`http://h/x`).
fn target_path(target: &str) -> &str {
    let rest = target
        .strip_prefix("http://")
        .or_else(|| target.strip_prefix("https://"));
    let path = match rest {
        Some(r) => r.find('/').and_then(|i| r.get(i..)).unwrap_or("/"),
        None => target,
    };
    path.split(['?', '#']).next().unwrap_or(path)
}

/// Answers one complete request. No I/O.
pub fn respond(id: &Identity, head: &Head, body: &[u8]) -> Response {
    if !target_path(&head.target).eq_ignore_ascii_case(&id.http_path()) {
        return Response::plain(404, "Not Found");
    }
    match head.method.as_str() {
        "POST" => match wsd::answer_get(id, body) {
            Ok(xml) => Response::soap(xml),
            Err(GetError::WrongEndpoint) => Response::plain(404, "Not Found"),
            Err(GetError::Invalid(_) | GetError::NotGet) => Response::plain(400, "Bad Request"),
        },
        // Not part of DPWS; lets a person or a test look at the metadata with a browser.
        "GET" => Response::soap(wsd::metadata_response(id, None)),
        _ => Response {
            allow: Some("GET, POST"),
            ..Response::plain(405, "Method Not Allowed")
        },
    }
}

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n")
}

/// Sends an error response while the client may still be sending. Closing a socket with unread
/// input makes the kernel reset the connection, and the client would lose the response; so
/// shut down our side, then read and discard (bounded) until the client closes.
async fn refuse(stream: &mut TcpStream, resp: &Response) -> std::io::Result<()> {
    stream.write_all(&resp.to_bytes()).await?;
    stream.shutdown().await?;
    let mut sink = [0u8; 4096];
    let mut left = DRAIN_LIMIT;
    while left > 0 {
        match tokio::time::timeout(DRAIN_WAIT, stream.read(&mut sink)).await {
            Ok(Ok(n)) if n > 0 => left = left.saturating_sub(n),
            _ => break,
        }
    }
    Ok(())
}

/// Reads one request and writes its response. The caller bounds it in time.
async fn exchange(stream: &mut TcpStream, id: &Identity) -> std::io::Result<()> {
    let mut buf = vec![0u8; MAX_HEAD_LEN];
    let mut filled = 0;
    let head_end = loop {
        if let Some(end) = find_head_end(buf.get(..filled).unwrap_or_default()) {
            break end;
        }
        let Some(space) = buf.get_mut(filled..).filter(|s| !s.is_empty()) else {
            let resp = Response::plain(431, "Request Header Fields Too Large");
            return refuse(stream, &resp).await;
        };
        let n = stream.read(space).await?;
        if n == 0 {
            return Ok(());
        }
        filled += n;
    };
    let head = match parse_head(buf.get(..head_end).unwrap_or_default()) {
        Ok(h) => h,
        Err(e) => return refuse(stream, &e.response()).await,
    };
    // Whatever followed the head in the first reads is the start of the body.
    let already = buf.get(head_end + 4..filled).unwrap_or_default();
    let mut body = Vec::with_capacity(head.content_length);
    body.extend_from_slice(
        already
            .get(..head.content_length.min(already.len()))
            .unwrap_or_default(),
    );
    if body.len() < head.content_length && head.expect_continue {
        stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
    }
    while body.len() < head.content_length {
        let mut chunk = [0u8; 4096];
        let want = (head.content_length - body.len()).min(chunk.len());
        let n = stream
            .read(chunk.get_mut(..want).unwrap_or_default())
            .await?;
        if n == 0 {
            return Ok(());
        }
        body.extend_from_slice(chunk.get(..n).unwrap_or_default());
    }
    let resp = respond(id, &head, &body);
    tracing::debug!(method = %head.method, status = resp.status, "WSD metadata request");
    stream.write_all(&resp.to_bytes()).await?;
    stream.shutdown().await
}

/// Accepts metadata connections until `shutdown` turns true.
pub async fn serve(listener: TcpListener, id: Arc<Identity>, mut shutdown: watch::Receiver<bool>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        let (mut stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // Out of descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "WSD HTTP accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::debug!(%peer, "WSD HTTP connection refused: too many open");
            continue;
        };
        let id = Arc::clone(&id);
        tokio::spawn(async move {
            let _permit = permit;
            match tokio::time::timeout(EXCHANGE_DEADLINE, exchange(&mut stream, &id)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "WSD HTTP exchange failed"),
                Err(_) => tracing::debug!(%peer, "WSD HTTP exchange timed out"),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> Identity {
        Identity::new("NAS", "WORKGROUP", 1)
    }

    fn head(method: &str, target: &str) -> Head {
        Head {
            method: method.into(),
            target: target.into(),
            content_length: 0,
            expect_continue: false,
        }
    }

    #[test]
    fn head_parsing() {
        let h = parse_head(
            b"POST /abc HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\nExpect: 100-continue",
        )
        .unwrap();
        assert_eq!(h.method, "POST");
        assert_eq!(h.target, "/abc");
        assert_eq!(h.content_length, 12);
        assert!(h.expect_continue);
        assert_eq!(
            parse_head(b"GET / HTTP/2.0"),
            Err(HeadError::VersionNotSupported)
        );
        assert_eq!(parse_head(b"GET /"), Err(HeadError::Malformed));
        assert_eq!(
            parse_head(b"GET / HTTP/1.1\r\nbroken"),
            Err(HeadError::Malformed)
        );
        assert_eq!(
            parse_head(b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999"),
            Err(HeadError::BodyTooLarge)
        );
        assert_eq!(
            parse_head(b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2"),
            Err(HeadError::Malformed)
        );
        assert_eq!(
            parse_head(b"POST / HTTP/1.1\r\nContent-Length: -1"),
            Err(HeadError::Malformed)
        );
        assert_eq!(
            parse_head(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked"),
            Err(HeadError::ChunkedNotSupported)
        );
    }

    #[test]
    fn routing() {
        let id = id();
        let path = id.http_path();
        assert_eq!(respond(&id, &head("GET", "/other"), b"").status, 404);
        let get = respond(&id, &head("GET", &path), b"");
        assert_eq!(get.status, 200);
        assert!(
            get.body
                .contains("<pub:Computer>NAS/Workgroup:WORKGROUP</pub:Computer>")
        );
        let abs = format!("http://192.0.2.1:5357{}", path.to_uppercase());
        assert_eq!(respond(&id, &head("GET", &abs), b"").status, 200);
        let del = respond(&id, &head("DELETE", &path), b"");
        assert_eq!(del.status, 405);
        assert!(
            String::from_utf8(del.to_bytes())
                .unwrap()
                .contains("Allow: GET, POST\r\n")
        );
        assert_eq!(respond(&id, &head("POST", &path), b"junk").status, 400);
    }

    #[test]
    fn response_framing() {
        let r = Response::soap("<x/>".into());
        let s = String::from_utf8(r.to_bytes()).unwrap();
        assert!(s.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(s.contains("Content-Length: 4\r\n"));
        assert!(s.ends_with("\r\n\r\n<x/>"));
    }
}
