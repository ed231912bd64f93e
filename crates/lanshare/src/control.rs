//! The local control socket: how `lanshare status|sessions|files|close-session|close-file|
//! reload` reach a running server.
//!
//! A Unix stream socket, mode 0600 in a folder only its owner can enter, and a peer-credential
//! check (`SO_PEERCRED`) on every connection: only the user the server runs as, or root, is
//! served. The protocol is one JSON object per line each way: a request such as
//! `{"command":"close-session","id":1234}` is answered by `{"ok":true,"result":…}` or
//! `{"ok":false,"error":"…"}`. A connection may carry several requests.
//!
//! The server half ([`ControlListener`]) runs on tokio inside `lanshare serve`; the client half
//! ([`request`]) is plain blocking std I/O, so the status commands start no runtime.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;
use tracing::{debug, info, warn};

use crate::config::ControlSocket;

/// Where root's server listens when the config does not say.
pub const ROOT_SOCKET: &str = "/run/lanshare/control.sock";

/// Requests are a few dozen bytes; anything longer than this is not a lanshare client.
const MAX_REQUEST_LINE: u64 = 64 * 1024;
/// An answer can list every session and open file of a busy server (about 300 bytes each):
/// 64 MiB holds some 200,000 entries.
const MAX_RESPONSE_LINE: u64 = 64 * 1024 * 1024;
/// Control clients served at once; more wait in the listen backlog.
const MAX_CLIENTS: usize = 8;
/// A control client that sends nothing for this long is disconnected.
const IDLE_CLIENT: Duration = Duration::from_secs(60);
/// `sun_path` holds 108 bytes including the terminating NUL.
const MAX_SOCKET_PATH: usize = 107;

/// One request, as sent on the socket: `{"command":"status"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case")]
pub enum Request {
    /// `net config server`: the server, its limits with live counts, shares, counters.
    Status,
    /// `net session`.
    Sessions,
    /// `net file`.
    Files,
    /// `net session \\client /delete`: the session's files are closed, its next request fails.
    CloseSession { id: u64 },
    /// `net file ID /close`. File ids are unique per session; `session` picks one when two
    /// sessions have the same id.
    CloseFile {
        id: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session: Option<u64>,
    },
    /// Re-read the config file, as SIGHUP does; the answer says what changed and what needs a
    /// restart.
    Reload,
}

/// One answer line.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Response {
    pub fn ok(result: impl Serialize) -> Response {
        match serde_json::to_value(result) {
            Ok(v) => Response {
                ok: true,
                result: Some(v),
                error: None,
            },
            Err(e) => Response::error(format!("cannot encode the answer: {e}")),
        }
    }

    pub fn error(message: impl Into<String>) -> Response {
        Response {
            ok: false,
            result: None,
            error: Some(message.into()),
        }
    }
}

/// What can go wrong on either side of the socket.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error(
        "no lanshare server is listening on {}: start it with `lanshare serve`, or pass --socket{hint}",
        path.display()
    )]
    NotRunning { path: PathBuf, hint: String },
    #[error(
        "permission denied on {}: only the user the server runs as (or root) may use its control socket",
        path.display()
    )]
    PermissionDenied { path: PathBuf },
    #[error("{} exists and is not a socket; remove it or choose another server.control_socket", path.display())]
    NotASocket { path: PathBuf },
    #[error("another lanshare server is already listening on {}", path.display())]
    InUse { path: PathBuf },
    #[error("the control socket's folder {} {why}", dir.display())]
    UnsafeDir { dir: PathBuf, why: String },
    #[error(
        "control socket path {} is {len} bytes long; a Unix socket path can have at most {MAX_SOCKET_PATH}",
        path.display()
    )]
    PathTooLong { path: PathBuf, len: usize },
    #[error("control socket {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The server answered `ok: false`.
    #[error("{0}")]
    Refused(String),
    #[error(
        "the server's answer cannot be read ({0}); are `lanshare` and the server the same version?"
    )]
    BadAnswer(String),
    #[error("the server did not answer within {0:?}")]
    Timeout(Duration),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ControlError + '_ {
    move |source| ControlError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The effective user id of this process.
pub fn effective_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// The default socket for a server run by `uid`, and whether its folder belongs to lanshare
/// alone (then it is created 0700 and must be owned by `uid`).
pub fn default_socket_path_for(uid: u32, xdg_runtime_dir: Option<&Path>) -> (PathBuf, bool) {
    if uid == 0 {
        return (PathBuf::from(ROOT_SOCKET), true);
    }
    match xdg_runtime_dir {
        // The XDG base-directory spec makes this folder the user's alone (0700), which is the
        // guarantee the socket needs.
        Some(d) if d.is_absolute() => (d.join("lanshare.sock"), false),
        _ => (
            std::env::temp_dir()
                .join(format!("lanshare-{uid}"))
                .join("control.sock"),
            true,
        ),
    }
}

/// The default socket of this process's user.
pub fn default_socket_path() -> (PathBuf, bool) {
    let xdg = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from);
    default_socket_path_for(effective_uid(), xdg.as_deref())
}

/// The socket a `server.control_socket` setting means, with the folder rule of
/// [`default_socket_path_for`]; `None` when it is turned off.
pub fn socket_path(setting: &ControlSocket) -> Option<(PathBuf, bool)> {
    match setting {
        ControlSocket::Off => None,
        ControlSocket::Default => Some(default_socket_path()),
        ControlSocket::At(p) => Some((p.clone(), false)),
    }
}

// ---------------------------------------------------------------------------------------------
// Server side.

/// Removes the socket file when the server stops, unless another server has replaced it.
pub struct SocketFile {
    path: PathBuf,
    dev_ino: (u64, u64),
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        if let Ok(m) = std::fs::symlink_metadata(&self.path)
            && (m.dev(), m.ino()) == self.dev_ino
        {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A bound control socket, not yet serving.
pub struct ControlListener {
    listener: UnixListener,
    path: PathBuf,
    owner: u32,
}

/// Answers one request; runs on the blocking pool (a reload reads files).
pub type Handler = Arc<dyn Fn(Request) -> Response + Send + Sync>;

impl ControlListener {
    /// Binds `path` (inside a tokio runtime). `dedicated_dir`: the folder is lanshare's own, so
    /// it is created or tightened to 0700; otherwise it is created 0700 when missing and
    /// checked when present. A stale socket left by a killed server is replaced; a live one is
    /// [`ControlError::InUse`].
    pub fn bind(
        path: &Path,
        dedicated_dir: bool,
    ) -> Result<(ControlListener, SocketFile), ControlError> {
        let len = path.as_os_str().len();
        if len > MAX_SOCKET_PATH {
            return Err(ControlError::PathTooLong {
                path: path.to_path_buf(),
                len,
            });
        }
        let owner = effective_uid();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            prepare_dir(dir, dedicated_dir, owner)?;
        }
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_socket() => {
                match std::os::unix::net::UnixStream::connect(path) {
                    Ok(_) => {
                        return Err(ControlError::InUse {
                            path: path.to_path_buf(),
                        });
                    }
                    // Nobody accepts: a server that died without cleaning up.
                    Err(_) => {
                        info!(path = %path.display(), "removing a stale control socket");
                        std::fs::remove_file(path).map_err(io_err(path))?;
                    }
                }
            }
            Ok(_) => {
                return Err(ControlError::NotASocket {
                    path: path.to_path_buf(),
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(path)(e)),
        }
        let listener = UnixListener::bind(path).map_err(io_err(path))?;
        // The folder already keeps others out; the mode says so on the socket itself too, and
        // the peer-credential check below is the last word.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(io_err(path))?;
        let m = std::fs::symlink_metadata(path).map_err(io_err(path))?;
        let file = SocketFile {
            path: path.to_path_buf(),
            dev_ino: (m.dev(), m.ino()),
        };
        Ok((
            ControlListener {
                listener,
                path: path.to_path_buf(),
                owner,
            },
            file,
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Serves control clients until the task is dropped.
    pub async fn run(self, handler: Handler) {
        let slots = Arc::new(Semaphore::new(MAX_CLIENTS));
        loop {
            let (stream, _) = match self.listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    warn!(error = %e, "control socket: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            let handler = handler.clone();
            let owner = self.owner;
            tokio::spawn(async move {
                serve_client(stream, owner, handler).await;
                drop(slot);
            });
        }
    }
}

fn prepare_dir(dir: &Path, dedicated: bool, owner: u32) -> Result<(), ControlError> {
    let unsafe_dir = |why: String| ControlError::UnsafeDir {
        dir: dir.to_path_buf(),
        why,
    };
    let meta = if dedicated {
        std::fs::symlink_metadata(dir)
    } else {
        std::fs::metadata(dir)
    };
    match meta {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(io_err(dir))?;
            // The umask cannot widen 0700, but an odd one could narrow it to nothing.
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(io_err(dir))
        }
        Err(e) => Err(io_err(dir)(e)),
        Ok(m) if !m.is_dir() => Err(unsafe_dir(
            "is not a folder (a symbolic link is not accepted for lanshare's own folder)".into(),
        )),
        Ok(m) if dedicated => {
            // Someone else could have created it to watch or replace the socket.
            if m.uid() != owner {
                return Err(unsafe_dir(format!(
                    "belongs to uid {}, not to the server's user (uid {owner}); remove it",
                    m.uid()
                )));
            }
            if m.mode() & 0o077 != 0 {
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                    .map_err(io_err(dir))?;
            }
            Ok(())
        }
        Ok(m) => {
            if m.uid() != owner && m.uid() != 0 {
                return Err(unsafe_dir(format!(
                    "belongs to uid {}; use a folder of the server's user (uid {owner}) or root",
                    m.uid()
                )));
            }
            let sticky = m.mode() & 0o1000 != 0;
            if m.mode() & 0o022 != 0 && !sticky {
                return Err(unsafe_dir(
                    "can be written by other users, who could replace the socket; use a private folder"
                        .into(),
                ));
            }
            Ok(())
        }
    }
}

async fn serve_client(stream: UnixStream, owner: u32, handler: Handler) {
    let cred = match stream.peer_cred() {
        Ok(c) => c,
        Err(e) => {
            warn!(error = %e, "control socket: cannot read the client's credentials; closed");
            return;
        }
    };
    let (rd, mut wr) = stream.into_split();
    let mut rd = tokio::io::BufReader::new(rd.take(MAX_REQUEST_LINE));
    if cred.uid() != owner && cred.uid() != 0 {
        warn!(
            uid = cred.uid(),
            pid = cred.pid(),
            "control socket: connection from another user refused"
        );
        // Take the request first (briefly): closing on a client that is still writing would
        // give it EPIPE instead of this answer.
        let mut ignored = Vec::new();
        let _ =
            tokio::time::timeout(Duration::from_secs(2), rd.read_until(b'\n', &mut ignored)).await;
        let answer = Response::error(format!(
            "permission denied: uid {} may not control this server (only uid {owner} and root may)",
            cred.uid()
        ));
        let _ = write_line(&mut wr, &answer).await;
        return;
    }
    let mut line = Vec::new();
    loop {
        line.clear();
        // Re-arm the bound for every line, so one connection may send many requests.
        rd.get_mut().set_limit(MAX_REQUEST_LINE);
        let n = match tokio::time::timeout(IDLE_CLIENT, rd.read_until(b'\n', &mut line)).await {
            Err(_) => return,
            Ok(Err(e)) => {
                debug!(error = %e, "control socket: read failed");
                return;
            }
            Ok(Ok(n)) => n,
        };
        if n == 0 {
            return;
        }
        if line.last() != Some(&b'\n') {
            let _ = write_line(
                &mut wr,
                &Response::error(format!(
                    "request longer than {MAX_REQUEST_LINE} bytes or not ended by a newline"
                )),
            )
            .await;
            return;
        }
        let answer = match serde_json::from_slice::<Request>(&line) {
            Ok(req) => {
                debug!(uid = cred.uid(), ?req, "control request");
                let h = handler.clone();
                match tokio::task::spawn_blocking(move || h(req)).await {
                    Ok(r) => r,
                    Err(e) => Response::error(format!("the request failed inside the server: {e}")),
                }
            }
            Err(e) => Response::error(format!(
                "not a request ({e}); expected e.g. {{\"command\":\"status\"}}"
            )),
        };
        if write_line(&mut wr, &answer).await.is_err() {
            return;
        }
    }
}

async fn write_line(
    wr: &mut tokio::net::unix::OwnedWriteHalf,
    r: &Response,
) -> std::io::Result<()> {
    let mut text = serde_json::to_vec(r).map_err(std::io::Error::other)?;
    text.push(b'\n');
    wr.write_all(&text).await?;
    wr.flush().await
}

// ---------------------------------------------------------------------------------------------
// Client side.

/// Sends one request and returns the `result` of a successful answer.
pub fn request(
    path: &Path,
    req: &Request,
    timeout: Duration,
) -> Result<serde_json::Value, ControlError> {
    use std::io::ErrorKind;
    let mut stream = std::os::unix::net::UnixStream::connect(path).map_err(|e| match e.kind() {
        ErrorKind::NotFound | ErrorKind::ConnectionRefused => ControlError::NotRunning {
            path: path.to_path_buf(),
            hint: not_running_hint(path),
        },
        ErrorKind::PermissionDenied => ControlError::PermissionDenied {
            path: path.to_path_buf(),
        },
        _ => io_err(path)(e),
    })?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(io_err(path))?;
    let mut text = serde_json::to_vec(req).map_err(|e| ControlError::BadAnswer(e.to_string()))?;
    text.push(b'\n');
    // A server that refuses the caller may answer and close before the request is written:
    // its answer is still worth reading.
    let written = stream.write_all(&text);
    let mut line = Vec::new();
    let read = BufReader::new((&stream).take(MAX_RESPONSE_LINE)).read_until(b'\n', &mut line);
    match read {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            return Err(ControlError::Timeout(timeout));
        }
        Err(e) => return Err(io_err(path)(written.err().unwrap_or(e))),
        Ok(0) => {
            if let Err(e) = written {
                return Err(io_err(path)(e));
            }
            return Err(ControlError::BadAnswer(
                "the server closed the connection without answering".into(),
            ));
        }
        Ok(_) => {}
    }
    let answer: Response =
        serde_json::from_slice(&line).map_err(|e| ControlError::BadAnswer(e.to_string()))?;
    if answer.ok {
        Ok(answer.result.unwrap_or(serde_json::Value::Null))
    } else {
        Err(ControlError::Refused(answer.error.unwrap_or_else(|| {
            "the server refused without saying why".into()
        })))
    }
}

/// A user running `lanshare status` without sudo looks in their own default place; a server
/// started by root listens elsewhere.
fn not_running_hint(path: &Path) -> String {
    let root = Path::new(ROOT_SOCKET);
    if path != root && effective_uid() != 0 && root.exists() {
        format!(" (a server run by root listens on {ROOT_SOCKET}: use sudo)")
    } else {
        String::new()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn requests_on_the_wire() {
        let cases = [
            (Request::Status, r#"{"command":"status"}"#),
            (Request::Sessions, r#"{"command":"sessions"}"#),
            (Request::Files, r#"{"command":"files"}"#),
            (
                Request::CloseSession { id: 7 },
                r#"{"command":"close-session","id":7}"#,
            ),
            (
                Request::CloseFile {
                    id: 3,
                    session: None,
                },
                r#"{"command":"close-file","id":3}"#,
            ),
            (
                Request::CloseFile {
                    id: 3,
                    session: Some(9),
                },
                r#"{"command":"close-file","id":3,"session":9}"#,
            ),
            (Request::Reload, r#"{"command":"reload"}"#),
        ];
        for (req, text) in cases {
            assert_eq!(serde_json::to_string(&req).unwrap(), text);
            assert_eq!(serde_json::from_str::<Request>(text).unwrap(), req);
        }
        assert!(serde_json::from_str::<Request>(r#"{"command":"format-disk"}"#).is_err());
        assert!(serde_json::from_str::<Request>(r#"{"command":"close-session"}"#).is_err());
    }

    #[test]
    fn default_paths() {
        assert_eq!(
            default_socket_path_for(0, Some(Path::new("/run/user/0"))),
            (PathBuf::from(ROOT_SOCKET), true)
        );
        assert_eq!(
            default_socket_path_for(1000, Some(Path::new("/run/user/1000"))),
            (PathBuf::from("/run/user/1000/lanshare.sock"), false)
        );
        let (p, dedicated) = default_socket_path_for(1000, None);
        assert!(p.ends_with("lanshare-1000/control.sock"), "{p:?}");
        assert!(dedicated);
        // A relative XDG_RUNTIME_DIR is invalid by the spec: ignored.
        assert!(default_socket_path_for(1000, Some(Path::new("rel"))).1);
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    fn echo_handler() -> Handler {
        Arc::new(|req| match req {
            Request::CloseSession { id } if id == 1 => {
                Response::ok(serde_json::json!({"closed": id}))
            }
            Request::CloseSession { id } => Response::error(format!("no session {id}")),
            other => Response::ok(format!("{other:?}")),
        })
    }

    #[test]
    fn serves_requests_with_private_modes_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("control.sock");
        let rt = runtime();
        let (listener, file) = rt
            .block_on(async { ControlListener::bind(&path, false) })
            .unwrap();
        let task = rt.spawn(listener.run(echo_handler()));
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);

        // The blocking client runs beside the runtime's own thread.
        let (p2, t) = (path.clone(), Duration::from_secs(10));
        let client = std::thread::spawn(move || {
            let status = request(&p2, &Request::Status, t).unwrap();
            let closed = request(&p2, &Request::CloseSession { id: 1 }, t).unwrap();
            let refused = request(&p2, &Request::CloseSession { id: 2 }, t).unwrap_err();
            (status, closed, refused)
        });
        let (status, closed, refused) = rt.block_on(async {
            loop {
                if client.is_finished() {
                    break client.join().unwrap();
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        assert_eq!(status, serde_json::json!("Status"));
        assert_eq!(closed, serde_json::json!({"closed": 1}));
        assert!(
            matches!(&refused, ControlError::Refused(m) if m == "no session 2"),
            "{refused:?}"
        );

        // A second server on the same path is refused while the first one serves.
        let again = rt.block_on(async { ControlListener::bind(&path, false) });
        assert!(
            matches!(again, Err(ControlError::InUse { .. })),
            "{:?}",
            again.err()
        );

        task.abort();
        drop(rt);
        drop(file);
        assert!(!path.exists(), "the socket file must be removed");
        let err = request(&path, &Request::Status, Duration::from_secs(1)).unwrap_err();
        assert!(matches!(err, ControlError::NotRunning { .. }), "{err:?}");
        assert!(
            err.to_string().starts_with(&format!(
                "no lanshare server is listening on {}",
                path.display()
            )),
            "{err}"
        );
    }

    #[test]
    fn stale_socket_is_replaced_but_other_files_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.sock");
        // A socket nobody listens on, as a killed server leaves it.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let rt = runtime();
        let bound = rt.block_on(async { ControlListener::bind(&path, false) });
        assert!(bound.is_ok(), "{:?}", bound.err());
        drop(bound);

        let plain = dir.path().join("plain");
        std::fs::write(&plain, "keep me").unwrap();
        let r = rt.block_on(async { ControlListener::bind(&plain, false) });
        assert!(
            matches!(r, Err(ControlError::NotASocket { .. })),
            "{:?}",
            r.err()
        );
        assert_eq!(std::fs::read_to_string(&plain).unwrap(), "keep me");
    }

    #[test]
    fn folders_others_can_write_are_refused_and_own_folders_tightened() {
        let dir = tempfile::tempdir().unwrap();
        let open = dir.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let rt = runtime();
        let r = rt.block_on(async { ControlListener::bind(&open.join("s"), false) });
        assert!(
            matches!(r, Err(ControlError::UnsafeDir { .. })),
            "{:?}",
            r.err()
        );
        // lanshare's own folder is made private instead.
        let r = rt.block_on(async { ControlListener::bind(&open.join("s"), true) });
        assert!(r.is_ok(), "{:?}", r.err());
        let mode = std::fs::metadata(&open).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);

        let long = dir.path().join("x".repeat(120));
        let r = rt.block_on(async { ControlListener::bind(&long, false) });
        assert!(
            matches!(r, Err(ControlError::PathTooLong { .. })),
            "{:?}",
            r.err()
        );
    }

    #[test]
    fn garbage_and_oversized_requests_get_an_error_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.sock");
        let rt = runtime();
        let (listener, _file) = rt
            .block_on(async { ControlListener::bind(&path, false) })
            .unwrap();
        rt.spawn(listener.run(echo_handler()));
        let p = path.clone();
        let client = std::thread::spawn(move || {
            let mut s = std::os::unix::net::UnixStream::connect(&p).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            s.write_all(b"hello\n").unwrap();
            r.read_line(&mut line).unwrap();
            let first: Response = serde_json::from_str(&line).unwrap();
            // The connection survives a bad line; a good one still works.
            s.write_all(b"{\"command\":\"files\"}\n").unwrap();
            line.clear();
            r.read_line(&mut line).unwrap();
            let second: Response = serde_json::from_str(&line).unwrap();
            let big = vec![b'a'; (MAX_REQUEST_LINE + 10) as usize];
            let _ = s.write_all(&big);
            line.clear();
            let _ = r.read_line(&mut line);
            (first, second, line)
        });
        let (first, second, third) = rt.block_on(async {
            loop {
                if client.is_finished() {
                    break client.join().unwrap();
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        assert!(!first.ok && first.error.unwrap().contains("not a request"));
        assert!(second.ok);
        assert!(third.contains("longer than"), "{third}");
    }
}
