//! One TCP connection: framing, the per-PDU pipeline and the response path.
//!
//! [MS-SMB2] 3.3.5.1 (receiving any message), 3.3.5.2 (receiving an SMB2 message),
//! 3.3.4.1 (sending any outgoing message).
//!
//! Pipeline for each frame: size-capped NetBIOS read with a deadline → SMB1 negotiate or SMB2 →
//! split the compound → for each PDU: header, message-id window and credit charge, session
//! lookup, signature check, tree lookup, handler → grant credits, fill the header, pad, sign →
//! one write. Frames that contain NEGOTIATE or SESSION_SETUP are processed in order on the
//! reader (the pre-auth hash depends on order); all others run concurrently as tasks, so a slow
//! read does not hold up the next request, except that requests on the same open keep their
//! arrival order where it matters ([`FileOrder`]). Related compounds: [MS-SMB2] 3.3.5.2.7.2.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use smb_wire::header::{Header, HeaderId};
use smb_wire::{AsyncId, Command, Dialect, FileId, HeaderFlags, NtStatus, SessionId, TreeId};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::credits::CreditWindow;
use crate::crypto::{self, PreauthHash, SigningAlgo};
use crate::error::{ProtoError, ProtoResult};
use crate::frames::{self, FrameError, FrameReader, Read, nonzero};
use crate::handlers;
use crate::outbox::{FileTail, OutMsg, Outbox};
use crate::server::ServerState;
use crate::session::{Session, Tree, lock};
use crate::splice;

static NEXT_CONN_ID: AtomicU64 = AtomicU64::new(1);

/// What NEGOTIATE settled ([MS-SMB2] 3.3.1.7 Connection).
#[derive(Debug, Default)]
pub(crate) struct NegState {
    /// `None` until NEGOTIATE completes (a 0x02FF wildcard answer does not complete it).
    pub dialect: Option<Dialect>,
    pub client_guid: [u8; 16],
    pub client_capabilities: u32,
    pub client_security_mode: u16,
    pub client_dialects: Vec<Dialect>,
    pub server_security_mode: u16,
    pub server_capabilities: u32,
    /// 3.1.1 SMB2_SIGNING_CAPABILITIES outcome; CMAC for 3.0/3.0.2, HMAC for 2.x.
    pub signing_algo: Option<SigningAlgo>,
    /// Connection.PreauthIntegrityHashValue (3.1.1 only).
    pub preauth: PreauthHash,
    /// Connection.CipherId: AES-128-CCM for 3.0/3.0.2 when both sides can encrypt; the
    /// client's first supported choice in 3.1.1. `None`: no encryption on this connection.
    pub cipher: Option<smb_wire::Cipher>,
}

pub(crate) struct Connection {
    pub id: u64,
    pub server: Arc<ServerState>,
    pub peer: SocketAddr,
    pub neg: Mutex<NegState>,
    pub credits: Mutex<CreditWindow>,
    /// Sessions set up on this connection, closed with it.
    pub sessions: Mutex<HashMap<u64, Arc<Session>>>,
    /// Where responses go (see `outbox`).
    pub(crate) out: Outbox,
    /// Requests answered with an interim STATUS_PENDING, by AsyncId ([MS-SMB2] 3.3.4.2).
    pending: Mutex<HashMap<u64, PendingOp>>,
    /// CANCELs (MessageId, SessionId) that found nothing pending: the request they name may
    /// still be on its way to going async, and is cancelled when it does. A few suffice.
    early_cancels: Mutex<std::collections::VecDeque<(u64, u64)>>,
    /// Server-clock seconds of the last frame received (idle timeout).
    last_active: AtomicU64,
    /// A macOS client negotiated READDIR_ATTR through the AAPL create context (`aapl.rs`).
    pub aapl_readdir: std::sync::atomic::AtomicBool,
    /// Per-open request order: what each open's next request must wait for (`order_frame`).
    order: Mutex<HashMap<FileId, FileOrder>>,
}

/// The requests in progress on one open, in arrival order ([MS-SMB2] 3.3.5.2: requests on
/// one open are processed in the order they arrive where it matters to the client).
///
/// READ and WRITE are "shared": they run concurrently with each other (a client's
/// pipelined I/O on one handle), after any earlier other request on the open. Every other
/// request is "exclusive": it waits for everything before it on the open (two CHANGE_NOTIFYs
/// on one handle are answered in order; a CLOSE waits for the QUERY_DIRECTORY before it).
/// A request that goes async (interim response) releases its place at that moment, so a
/// pending CHANGE_NOTIFY or blocking LOCK never holds up the open.
#[derive(Default)]
struct FileOrder {
    /// The last exclusive request (closed once it is done).
    exclusive: Option<Arc<tokio::sync::Semaphore>>,
    /// The shared requests since then; done ones are pruned now and then, not one by one.
    shared: Vec<Arc<tokio::sync::Semaphore>>,
    /// Frames placed and not yet done: the entry goes when this reaches 0, so a pipeline of
    /// READs costs O(1) per frame, not a scan of the ones in flight.
    live: usize,
}

/// A frame's place in the order of the opens it names. The gate is a semaphore with no
/// permits that is closed when the frame is done (or goes async): closing wakes every
/// waiter at once and costs nothing when nobody waits.
pub(crate) struct OrderTicket {
    released: std::sync::atomic::AtomicBool,
    conn: std::sync::Weak<Connection>,
    gate: Arc<tokio::sync::Semaphore>,
    waits: Vec<Arc<tokio::sync::Semaphore>>,
    keys: Vec<FileId>,
}

impl OrderTicket {
    /// Wait until every earlier request this frame must follow is done.
    async fn wait(&mut self) {
        // Popped only once passed, so that a dropped wait loses nothing.
        while let Some(g) = self.waits.last() {
            // Closed is the only way a wait ends: the earlier frame finished.
            let _ = g.acquire().await;
            self.waits.pop();
        }
    }

    /// Opens with requests in progress (test aid: the table empties when they end).
    #[cfg(test)]
    pub(crate) fn order_entries(&self) -> usize {
        self.conn.upgrade().map_or(0, |c| lock(&c.order).len())
    }

    /// Whether some earlier request this frame must follow is still in progress.
    #[cfg(test)]
    pub(crate) fn blocked(&self) -> bool {
        self.waits.iter().any(|g| !g.is_closed())
    }

    /// Let later requests on these opens proceed; idempotent.
    pub(crate) fn release(&self) {
        if self.released.swap(true, Ordering::AcqRel) {
            return;
        }
        self.gate.close();
        if let Some(conn) = self.conn.upgrade() {
            let mut order = lock(&conn.order);
            for k in &self.keys {
                if let Some(e) = order.get_mut(k) {
                    e.live = e.live.saturating_sub(1);
                    if e.live == 0 {
                        order.remove(k);
                    }
                }
            }
        }
    }
}

impl Drop for OrderTicket {
    fn drop(&mut self) {
        self.release();
    }
}

/// When a frame takes its place in the per-open order.
pub(crate) enum Turn {
    /// On arrival (plaintext frames: the FileIds can be read at once).
    Placed(Option<OrderTicket>),
    /// An encrypted frame, once decrypted (on its own task, so that decryption stays
    /// parallel), and only after the frame before it took its place.
    AfterDecrypt {
        prev: Option<oneshot::Receiver<()>>,
        placed: oneshot::Sender<()>,
    },
}

/// An operation that went async: how to find it (CANCEL by AsyncId or MessageId, CLOSE by
/// FileId, LOGOFF by session) and how to end it early.
pub(crate) struct PendingOp {
    pub message_id: u64,
    pub session_id: u64,
    pub file_id: Option<FileId>,
    finish: Option<oneshot::Sender<NtStatus>>,
}

static NEXT_ASYNC_ID: AtomicU64 = AtomicU64::new(1);

/// Removes the pending entry however the operation ends.
pub(crate) struct PendingGuard {
    conn: Arc<Connection>,
    async_id: u64,
}

impl Drop for PendingGuard {
    fn drop(&mut self) {
        lock(&self.conn.pending).remove(&self.async_id);
    }
}

/// The context carried from one PDU of a related compound to the next ([MS-SMB2] 3.3.5.2.7.2).
#[derive(Default)]
struct Related {
    /// The session and tree of the previous request; 0 when its session was not valid, so
    /// that a related request after it fails.
    session_id: u64,
    tree_id: u32,
    /// The FileId the previous request named or CREATE generated; an unrelated request
    /// without one clears it.
    file_id: Option<FileId>,
    /// A failed CREATE: every related request after it fails with its status. Other
    /// failures do not carry over (a denied WRITE between two READs of one open leaves the
    /// second READ working: smbtorture smb2.compound.related6, as Windows and Samba do).
    status: Option<NtStatus>,
}

/// The FileId a request names, read at its fixed place in the request's body (the same
/// offsets the request parsers use), or `None` for commands that name none. Used to carry a
/// FileId along a related compound and to order requests on the same open.
pub(crate) fn request_file_id(cmd: Command, pdu: &[u8]) -> Option<FileId> {
    let at = Header::SIZE
        + match cmd {
            Command::CLOSE
            | Command::FLUSH
            | Command::LOCK
            | Command::IOCTL
            | Command::QUERY_DIRECTORY
            | Command::CHANGE_NOTIFY => 8,
            Command::READ | Command::WRITE | Command::SET_INFO => 16,
            Command::QUERY_INFO => 24,
            // An oplock break acknowledgment names a FileId; a lease break acknowledgment
            // (StructureSize 36) names a lease key instead.
            Command::OPLOCK_BREAK if pdu.get(Header::SIZE) == Some(&24) => 8,
            _ => return None,
        };
    let b = pdu.get(at..at + FileId::SIZE)?;
    let word = |i: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[i..i + 8]);
        u64::from_le_bytes(w)
    };
    Some(FileId::new(word(0), word(8)))
}

/// Everything a handler needs for one request.
pub(crate) struct Ctx<'a> {
    pub conn: &'a Arc<Connection>,
    pub hdr: &'a Header,
    /// The whole PDU, header first: every offset in a request is relative to its start.
    pub pdu: &'a [u8],
    /// The message `pdu` lies in, shared: a handler that hands request data to another task
    /// (WRITE to the blocking pool) takes [`Ctx::shared`] instead of a copy.
    pub frame: &'a Bytes,
    pub session: Option<Arc<Session>>,
    pub tree: Option<Arc<Tree>>,
    /// FileId of the previous request of a related compound.
    pub related_file_id: Option<FileId>,
    /// The response being built: the 64-byte header placeholder, then the body.
    pub out: Vec<u8>,
    /// Set by SESSION_SETUP (new session) and TREE_CONNECT (new tree).
    pub resp_session_id: u64,
    pub resp_tree_id: u32,
    /// Handlers set this to force a signature with a key (final SESSION_SETUP of 3.1.1).
    pub force_sign: Option<(SigningAlgo, [u8; 16])>,
    /// The request arrived encrypted under this session's keys: no signature check, and the
    /// response (interim ones too) is encrypted the same way ([MS-SMB2] 3.3.4.1.4).
    pub encrypted: Option<Encrypted>,
    /// Fed with the finished response ([MS-SMB2] 3.3.5.4, 3.3.5.5): NEGOTIATE, SESSION_SETUP.
    pub preauth_hook: PreauthHook,
    /// A FileId this response makes current for the rest of a related compound (CREATE).
    pub new_file_id: Option<FileId>,
    /// Set once the request went async: the final response carries this AsyncId.
    pub async_id: Option<u64>,
    /// The response may end with a range of a file that the kernel sends (READ): a lone
    /// request (no compound), neither signed nor encrypted, on a socket.
    pub zero_copy: bool,
    /// File data that follows `out` on the wire (only when `zero_copy`).
    pub file_tail: Option<FileTail>,
    /// A WRITE whose data is still on the socket (`splice.rs`): `pdu` ends after the fixed
    /// part, and the handler takes the data from here once its checks passed.
    pub body: Option<&'a crate::splice::SocketBody<'a>>,
    /// The frame's place in the per-open order, released when the request goes async.
    order: Option<&'a OrderTicket>,
    /// The responses to the earlier requests of this compound, not sent yet: when the last
    /// request goes async, they go out with its interim response, in one message.
    earlier: Vec<Response>,
}

pub(crate) enum PreauthHook {
    None,
    Connection,
    Session(Arc<Session>),
}

impl Ctx<'_> {
    /// Resolve a request's FileId, substituting the previous one in a related compound.
    ///
    /// A related request whose chain holds no FileId (the previous request had none, or the
    /// chain was broken by an unrelated one) names no open: STATUS_FILE_CLOSED, as Windows
    /// and Samba answer (smbtorture smb2.compound.invalid3, related5).
    pub fn file_id(&self, id: FileId) -> ProtoResult<FileId> {
        if id == FileId::ANY {
            if self.hdr.flags.contains(HeaderFlags::RELATED_OPERATIONS) {
                return self
                    .related_file_id
                    .ok_or(ProtoError::Status(NtStatus::FILE_CLOSED));
            }
            return Err(ProtoError::Status(NtStatus::FILE_CLOSED));
        }
        Ok(id)
    }

    pub fn dialect(&self) -> Dialect {
        lock(&self.conn.neg).dialect.unwrap_or(Dialect::SMB2_0_2)
    }

    /// An owned handle on part of the request (a slice of `pdu`), sharing the frame's memory.
    pub fn shared(&self, data: &[u8]) -> Bytes {
        let base = self.frame.as_ptr() as usize;
        let at = data.as_ptr() as usize;
        if data.is_empty() || at < base || at + data.len() > base + self.frame.len() {
            // Not from this frame (cannot happen for parsed request fields): copy.
            return Bytes::copy_from_slice(data);
        }
        self.frame.slice(at - base..at - base + data.len())
    }

    pub fn session(&self) -> ProtoResult<&Arc<Session>> {
        self.session
            .as_ref()
            .ok_or(ProtoError::Status(NtStatus::USER_SESSION_DELETED))
    }

    pub fn tree(&self) -> ProtoResult<&Arc<Tree>> {
        self.tree
            .as_ref()
            .ok_or(ProtoError::Status(NtStatus::NETWORK_NAME_DELETED))
    }

    /// Answer this request with an interim STATUS_PENDING now and finish it later
    /// ([MS-SMB2] 3.3.4.2). The receiver yields the status that ends it early (CANCEL →
    /// STATUS_CANCELLED, CLOSE/LOGOFF → the cleanup status); the guard unregisters it.
    ///
    /// Pending operations count against `max_async_per_connection`, never against the
    /// credits a client needs for its reads and writes.
    ///
    /// In a compound ([MS-SMB2] 3.3.5.2.7, and <a> the Windows behaviour its notes describe):
    /// the last request goes async like a lone one, its interim response chained after the
    /// responses to the requests before it (smbtorture smb2.compound.interim1). A request
    /// before the last cannot: a CREATE waiting for an oplock break waits in place (the rest
    /// of the compound follows it), anything else fails with STATUS_INTERNAL_ERROR, as
    /// Windows answers (smb2.compound.interim2).
    pub async fn go_async(
        &mut self,
        file_id: Option<FileId>,
    ) -> ProtoResult<(oneshot::Receiver<NtStatus>, PendingGuard)> {
        let mid_compound = self.hdr.next_command != 0;
        if mid_compound && self.hdr.command != Command::CREATE {
            return Err(NtStatus::INTERNAL_ERROR.into());
        }
        let conn = self.conn.clone();
        let async_id = NEXT_ASYNC_ID.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        {
            let mut pending = lock(&conn.pending);
            let limit = conn.server.config.max_async_per_connection;
            if limit != 0 && pending.len() >= limit as usize {
                conn.server
                    .counters
                    .refuse(crate::server::Refusal::MaxAsyncPerConnection);
                tracing::warn!(conn = conn.id, peer = %conn.peer, limit,
                    "async request refused: limits.max_async_per_connection reached");
                return Err(NtStatus::INSUFFICIENT_RESOURCES.into());
            }
            let mut op = PendingOp {
                message_id: self.hdr.message_id,
                session_id: self.resp_session_id,
                file_id,
                finish: Some(tx),
            };
            let key = (self.hdr.message_id, self.resp_session_id);
            let mut early = lock(&conn.early_cancels);
            if let Some(i) = early.iter().position(|k| *k == key) {
                early.remove(i);
                if let Some(tx) = op.finish.take() {
                    let _ = tx.send(NtStatus::CANCELLED);
                }
            }
            drop(early);
            pending.insert(async_id, op);
        }
        let guard = PendingGuard {
            conn: conn.clone(),
            async_id,
        };
        if mid_compound {
            // Registered (CANCEL by MessageId, CLOSE and LOGOFF still reach it), but
            // answered in place: no interim, no AsyncId.
            return Ok((rx, guard));
        }
        let granted = lock(&conn.credits).grant(self.hdr.credit.max(1));
        let mut interim = vec![0u8; Header::SIZE];
        let _ = smb_wire::msg::error::ErrorResponse::EMPTY.encode(&mut interim);
        Header {
            credit_charge: self.hdr.credit_charge,
            status: NtStatus::PENDING,
            command: self.hdr.command,
            credit: granted,
            flags: HeaderFlags(HeaderFlags::SERVER_TO_REDIR.0 | HeaderFlags::ASYNC_COMMAND.0),
            next_command: 0,
            message_id: self.hdr.message_id,
            id: HeaderId::Async(AsyncId(async_id)),
            session_id: SessionId(self.resp_session_id),
            signature: [0; 16],
        }
        .write(&mut interim[..Header::SIZE]);
        // Interim responses are never signed ([MS-SMB2] 3.3.4.1.1), but are encrypted like
        // the request was.
        let mut chain = std::mem::take(&mut self.earlier);
        chain.push(Response {
            pdu: interim,
            sign: None,
            file: None,
        });
        conn.send_responses(chain, self.encrypted.as_ref())
            .await
            .map_err(ProtoError::Drop)?;
        self.async_id = Some(async_id);
        // A pending request no longer holds up later requests on its open (a CLOSE must be
        // able to end a pending CHANGE_NOTIFY).
        if let Some(o) = self.order {
            o.release();
        }
        Ok((rx, guard))
    }
}

/// Which session's keys protected an encrypted request.
#[derive(Clone)]
pub(crate) struct Encrypted {
    pub session_id: u64,
    pub crypto: Arc<crate::cipher::SessionCrypto>,
}

/// What the PDUs of one frame share.
#[derive(Clone, Copy)]
struct Whole<'f> {
    frame: &'f Bytes,
    encrypted: Option<&'f Encrypted>,
    order: Option<&'f OrderTicket>,
    body: Option<&'f crate::splice::SocketBody<'f>>,
}

/// A response PDU ready for padding and signing.
struct Response {
    pdu: Vec<u8>,
    sign: Option<(SigningAlgo, [u8; 16])>,
    /// File data after `pdu` (a zero-copy READ).
    file: Option<FileTail>,
}

/// Drop guard: whatever ends the connection (EOF, error, panic), its sessions go with it;
/// their durable opens are kept for a reconnect ([MS-SMB2] 3.3.7.1).
struct Cleanup(Arc<Connection>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let sessions: Vec<Arc<Session>> = lock(&self.0.sessions).drain().map(|(_, s)| s).collect();
        for s in sessions {
            s.disconnect_opens();
            self.0.server.sessions.remove(s.id);
        }
    }
}

pub(crate) async fn run(server: Arc<ServerState>, stream: TcpStream, peer: SocketAddr) {
    let (rd, wr) = stream.into_split();
    let out = Outbox::socket(wr);
    let conn = Arc::new(Connection {
        id: NEXT_CONN_ID.fetch_add(1, Ordering::Relaxed),
        server: server.clone(),
        peer,
        neg: Mutex::new(NegState::default()),
        credits: Mutex::new(CreditWindow::new(server.config.max_credits)),
        sessions: Mutex::new(HashMap::new()),
        out,
        pending: Mutex::new(HashMap::new()),
        early_cancels: Mutex::new(std::collections::VecDeque::new()),
        last_active: AtomicU64::new(server.now_secs()),
        aapl_readdir: Default::default(),
        order: Mutex::new(HashMap::new()),
    });
    let _cleanup = Cleanup(conn.clone());
    debug!(conn = conn.id, %peer, "connection accepted");

    // Frames are read in this task: a socket wake-up reaches the loop that handles the frame
    // directly, with no hand-over from a reader task (that switch was a large part of
    // small-request profiles). The reader is cancel-safe, so the select below may drop its
    // future for another event and call it again.
    let authenticated_max = server.config.max_io_size as usize + 1024 * 1024;
    let mut reader = FrameReader::new(frames::Socket::new(rd), server.config.frame_read_timeout);
    // The seam for spliced WRITEs: a large frame whose head shows such a WRITE, on an open
    // that can take it, is left on the socket for `process_spliced_write`.
    let route_conn = conn.clone();
    let route = move |len: usize, got: &[u8]| -> bool {
        len >= splice::HEAD_LEN + splice::MIN_BODY
            && got.first_chunk::<{ splice::HEAD_LEN }>().is_some_and(|h| {
                splice::is_plain_large_write(h, len) && route_conn.splice_eligible(h)
            })
    };

    let mut tasks: JoinSet<Result<(), String>> = JoinSet::new();
    let mut shutdown = server.shutdown.clone();
    // One future for the whole connection: made anew in each turn of the loop, it registered
    // with and left the watch's waiter list (a lock each way) once per request.
    let shutdown = async move {
        let _ = shutdown.wait_for(|s| *s).await;
    };
    tokio::pin!(shutdown);
    // A zero limit is no limit: the sleep is then never polled, so it never takes a place in
    // the timer wheel (a lock and an entry per connection for nothing).
    let handshake_limit = !server.config.handshake_timeout.is_zero();
    let handshake = tokio::time::sleep(nonzero(server.config.handshake_timeout));
    tokio::pin!(handshake);
    // limits.idle_timeout: one timer that fires when the connection could first be idle for
    // the limit (its last frame + the limit) and is then moved on, instead of a per-connection
    // interval: with the default 15 minutes an interval woke every connection every 5 s, 2,000
    // wake-ups a second for 10,000 idle sessions. As with the handshake sleep, a zero limit
    // leaves it unpolled, so it never takes a place in the timer wheel.
    let idle_timeout = server.limits().idle_timeout;
    let idle_limit = !idle_timeout.is_zero();
    let idle_deadline = tokio::time::sleep(nonzero(idle_timeout));
    tokio::pin!(idle_deadline);
    let counters = &server.counters;
    // The last encrypted frame whose place in the per-open order is not taken yet.
    let mut unplaced: Option<oneshot::Receiver<()>> = None;
    let end: String = loop {
        let authenticated = conn.has_valid_session();
        // The frame size limit, applied as each frame's header is read: small until a session
        // of the connection is authenticated, then large enough for max_io_size READ/WRITE.
        let max = if authenticated {
            authenticated_max
        } else {
            PRE_AUTH_MAX_FRAME.min(authenticated_max)
        };
        tokio::select! {
            f = reader.next_routed(max, &route) => match f {
                Ok(Some(Read::Head { got, len, deadline })) => {
                    conn.touch();
                    let Ok(permit) = server.inflight.clone().acquire_owned().await else {
                        break "server shutting down".into();
                    };
                    // Its place in the per-open order comes after an encrypted frame's before
                    // it (decrypted on its own task, which needs nothing from this loop).
                    if let Some(rx) = unplaced.take() {
                        let _ = rx.await;
                    }
                    let (head, prefix) = got.split_at(got.len().min(splice::HEAD_LEN));
                    let ticket = conn.order_frame(head);
                    let deadline = deadline.unwrap_or_else(|| {
                        tokio::time::Instant::now() + Duration::from_secs(365 * 24 * 3600)
                    });
                    let body = splice::SocketBody::new(
                        reader.inner().as_ref(),
                        &server.pipes,
                        len - head.len(),
                        prefix,
                        deadline,
                    );
                    // On this task: the socket is the WRITE's until its data is in the file,
                    // and so the next frame is read after it, in order by construction.
                    let r = Box::pin(conn.process_spliced_write(head, &body, ticket)).await;
                    drop(permit);
                    if let Err(why) = r {
                        counters.protocol_drops.fetch_add(1, Ordering::Relaxed);
                        break why;
                    }
                }
                Ok(Some(Read::Frame(frame))) => {
                    conn.touch();
                    // limits.max_inflight: waiting here stops this connection's reads, which is
                    // the back-pressure: TCP windows fill, clients slow down, nothing fails.
                    let Ok(permit) = server.inflight.clone().acquire_owned().await else {
                        break "server shutting down".into();
                    };
                    if frame_is_ordered(&frame) {
                        // Boxed: inline, the pipeline's future would make every idle
                        // connection's task as large as its largest request.
                        let r = Box::pin(conn.process_frame(frame)).await;
                        drop(permit);
                        if let Err(why) = r {
                            counters.protocol_drops.fetch_add(1, Ordering::Relaxed);
                            break why;
                        }
                    } else {
                        // Requests beyond the credits granted were refused already; this
                        // bound only keeps a misbehaving client from piling up tasks.
                        while tasks.len() >= usize::from(server.config.max_credits) {
                            if let Some(Ok(Err(why))) = tasks.join_next().await {
                                warn!(conn = conn.id, %peer, "{why}");
                            }
                        }
                        // Its place among the requests on the same opens is taken here, in
                        // arrival order, before any task runs.
                        let turn = conn.turn_for(&frame, &mut unplaced);
                        let small = frame.len() <= INLINE_FIRST_POLL_MAX;
                        let c = conn.clone();
                        let mut request = Box::pin(async move {
                            let r = c.process_frame_in_turn(frame, turn).await;
                            drop(permit);
                            r
                        });
                        // A small request is polled once here first: most (ECHO, a CLOSE, a
                        // lock, any answer from memory) finish in that poll and then cost no
                        // task spawn and no wake-up on another thread (profiles of
                        // smb2.bench.echo were dominated by those switches). One that waits
                        // (storage on the blocking pool, an oplock break, a pending NOTIFY)
                        // goes on in its own task, which polls it again and so takes over its
                        // wake-ups. Large frames (WRITE data, to decrypt or verify) go straight
                        // to a task, where that work runs beside this loop's next read.
                        let first = if small {
                            std::future::poll_fn(|cx| Poll::Ready(request.as_mut().poll(cx))).await
                        } else {
                            Poll::Pending
                        };
                        match first {
                            Poll::Ready(Ok(())) => {}
                            Poll::Ready(Err(why)) => {
                                counters.protocol_drops.fetch_add(1, Ordering::Relaxed);
                                break why;
                            }
                            Poll::Pending => {
                                tasks.spawn(request);
                            }
                        }
                    }
                }
                Err(FrameError::Deadline(d)) => {
                    counters.read_deadline_drops.fetch_add(1, Ordering::Relaxed);
                    break format!("frame not completed within {d:?} (read deadline; slow or stalled client)");
                }
                Err(FrameError::Other(why)) => {
                    counters.protocol_drops.fetch_add(1, Ordering::Relaxed);
                    break why;
                }
                Ok(None) => break "client closed the connection".into(),
            },
            Some(done) = tasks.join_next(), if !tasks.is_empty() => match done {
                Ok(Ok(())) => {}
                Ok(Err(why)) => {
                    counters.protocol_drops.fetch_add(1, Ordering::Relaxed);
                    break why;
                }
                Err(e) if e.is_panic() => break "a request handler panicked (bug): connection closed".into(),
                Err(_) => {}
            },
            _ = &mut handshake, if handshake_limit && !authenticated => {
                counters.handshake_timeouts.fetch_add(1, Ordering::Relaxed);
                break format!("no session set up within {:?} (limits.handshake_timeout)", server.config.handshake_timeout);
            }
            () = &mut idle_deadline, if idle_limit => {
                let idle = conn.idle_secs();
                let busy = !tasks.is_empty() || conn.has_pending();
                if idle >= idle_timeout.as_secs() && !busy && conn.only_durable_opens() {
                    counters.idle_closed.fetch_add(1, Ordering::Relaxed);
                    break format!("idle for {idle} s with no open files but durable ones (limits.idle_timeout = {idle_timeout:?})");
                }
                let next = if let Some(left) = idle_timeout.as_secs().checked_sub(idle).filter(|l| *l > 0) {
                    // A frame came in since the timer was set: idle from that frame on.
                    Duration::from_secs(left)
                } else if busy {
                    // An operation that ends without a request (a CHANGE_NOTIFY answered, a
                    // lease break timed out) may leave the connection idle at any moment.
                    (idle_timeout / 4).clamp(Duration::from_millis(250), Duration::from_secs(5))
                } else {
                    // Only open files keep it: closing one is a request, which restarts the
                    // count, so it cannot be idle for the limit before a whole limit from now.
                    idle_timeout
                };
                idle_deadline.as_mut().reset(tokio::time::Instant::now() + next);
            }
            () = &mut shutdown => break "server shutting down".into(),
        }
    };
    if end.starts_with("client closed") || end.starts_with("server shutting") {
        debug!(conn = conn.id, %peer, "connection closed: {end}");
    } else {
        info!(conn = conn.id, %peer, "connection closed: {end}");
    }
    drop(reader);
    tasks.abort_all();
    let writer = conn.out.close();
    drop(_cleanup);
    drop(conn);
    if let Some(writer) = writer {
        let _ = writer.await;
    }
}

/// Moves the signature of each signed PDU of a received (unencrypted) frame out of the frame,
/// zeroing its field in place, and returns them with their PDUs' offsets: signatures are then
/// checked over the frame as it lies, with no copy of a signed WRITE's payload. NEGOTIATE and
/// SESSION_SETUP are left as received (the pre-authentication hash covers them as sent; they
/// are checked with [`crypto::verify`]). A malformed chain is left to the compound parser.
fn take_signatures(frame: &mut [u8]) -> Vec<(usize, [u8; 16])> {
    let mut sigs = Vec::new();
    let mut at = 0usize;
    while let Some(hdr) = frame.get_mut(at..).filter(|h| h.len() >= Header::SIZE) {
        let flags = u32::from_le_bytes([hdr[16], hdr[17], hdr[18], hdr[19]]);
        let cmd = u16::from_le_bytes([hdr[12], hdr[13]]);
        let next = u32::from_le_bytes([hdr[20], hdr[21], hdr[22], hdr[23]]) as usize;
        if hdr[..4] == [0xFE, b'S', b'M', b'B']
            && flags & HeaderFlags::SIGNED.0 != 0
            && cmd != Command::NEGOTIATE.0
            && cmd != Command::SESSION_SETUP.0
        {
            let mut sig = [0u8; 16];
            sig.copy_from_slice(&hdr[crypto::SIGNATURE]);
            hdr[crypto::SIGNATURE].fill(0);
            sigs.push((at, sig));
        }
        if next == 0 {
            break;
        }
        at = match at.checked_add(next) {
            Some(a) => a,
            None => break,
        };
    }
    sigs
}

/// The signature a received PDU carried (its field now zeroed), and for a lone AES-GMAC
/// signed PDU, the key it was already checked with and the outcome.
#[derive(Clone, Copy)]
struct ReceivedSig {
    sig: [u8; 16],
    gmac_checked: Option<([u8; 16], bool)>,
}

/// Largest frame whose request is first polled by the connection's own task (see `run`).
const INLINE_FIRST_POLL_MAX: usize = 16 * 1024;

/// NEGOTIATE and SESSION_SETUP frames (and SMB1) must be handled in arrival order.
fn frame_is_ordered(frame: &[u8]) -> bool {
    if frame.len() < 16 || frame[0] != 0xFE {
        return true;
    }
    let cmd = u16::from_le_bytes([frame[12], frame[13]]);
    cmd == Command::NEGOTIATE.0 || cmd == Command::SESSION_SETUP.0
}

/// A response's buffer, its header zeroed: room for the usual small body from the start (a
/// NEGOTIATE or SESSION_SETUP answer is 150-350 bytes; from 64 it grew two or three times).
fn response_buffer() -> Vec<u8> {
    const SMALL_RESPONSE: usize = 512;
    let mut out = Vec::with_capacity(SMALL_RESPONSE);
    out.resize(Header::SIZE, 0);
    out
}

/// Largest frame accepted while the connection has no authenticated session. NEGOTIATE and
/// SESSION_SETUP are all an unauthenticated client may send, and the largest of those is a
/// SESSION_SETUP carrying a Kerberos ticket (Windows' MaxTokenSize is at most 64 KiB); without
/// this cap anyone who can reach the port could make the server allocate max_io_size + 1 MiB
/// per connection before proving who they are.
const PRE_AUTH_MAX_FRAME: usize = 128 * 1024;

impl Connection {
    /// Note activity for the idle timer.
    fn touch(&self) {
        self.last_active
            .store(self.server.now_secs(), Ordering::Relaxed);
    }

    pub fn idle_secs(&self) -> u64 {
        self.server
            .now_secs()
            .saturating_sub(self.last_active.load(Ordering::Relaxed))
    }

    /// An asynchronous operation (CHANGE_NOTIFY, a blocked lock, ...) is still to be answered.
    fn has_pending(&self) -> bool {
        !lock(&self.pending).is_empty()
    }

    /// No open file but durable ones: those outlive the connection for their timeout, and
    /// the client reclaims them when it comes back. (A connection with another open file is
    /// never idle.)
    fn only_durable_opens(&self) -> bool {
        lock(&self.sessions)
            .values()
            .all(|s| lock(&s.opens).values().all(|o| o.is_durable()))
    }

    /// End pending operations that match, with `status` (CANCEL, CLOSE, LOGOFF, disconnect).
    pub fn finish_pending(&self, status: NtStatus, matches: impl Fn(u64, &PendingOp) -> bool) {
        let mut pending = lock(&self.pending);
        for (id, op) in pending.iter_mut() {
            if matches(*id, op)
                && let Some(tx) = op.finish.take()
            {
                let _ = tx.send(status);
            }
        }
    }

    /// A sync CANCEL ([MS-SMB2] 3.3.5.16): ends the pending request with that MessageId, or,
    /// when it has not gone async yet, remembers it so that it is cancelled when it does.
    pub fn cancel_by_message_id(&self, message_id: u64, session_id: u64) {
        // Under `pending`, so that go_async cannot register in between.
        let mut pending = lock(&self.pending);
        let mut found = false;
        for op in pending.values_mut() {
            if op.message_id == message_id && op.session_id == session_id {
                found = true;
                if let Some(tx) = op.finish.take() {
                    let _ = tx.send(NtStatus::CANCELLED);
                }
            }
        }
        if found {
            return;
        }
        let mut early = lock(&self.early_cancels);
        if early.len() >= 16 {
            early.pop_front();
        }
        early.push_back((message_id, session_id));
    }

    pub fn has_valid_session(&self) -> bool {
        lock(&self.sessions).values().any(|s| s.auth().is_some())
    }

    pub fn dialect(&self) -> Option<Dialect> {
        lock(&self.neg).dialect
    }

    async fn send(&self, parts: Vec<Vec<u8>>) -> Result<(), String> {
        self.out.send(OutMsg::new(parts, None)).await
    }

    /// Sends a message the client did not ask for (an oplock break), encrypted when its
    /// session must be ([MS-SMB2] 3.3.4.1.4). Queued without waiting: the caller may hold
    /// locks, and a connection that stopped reading only loses its own notifications.
    pub(crate) fn send_unsolicited(self: &Arc<Self>, pdu: Vec<u8>, session_id: u64) {
        let auth = lock(&self.sessions).get(&session_id).and_then(|s| s.auth());
        let pdu = match auth {
            Some(a) if a.encrypt_data => match a.crypto.as_ref() {
                Some(c) => match c.encrypt(session_id, pdu) {
                    Some(sealed) => sealed,
                    None => return,
                },
                None => pdu,
            },
            _ => pdu,
        };
        self.out.send_now(OutMsg::new(vec![pdu], None));
    }

    /// Take a frame's place in the order of the opens its requests name (see
    /// [`FileOrder`]). `None`: it names none (CREATE, or a related chain on the FileId its
    /// CREATE makes), so it waits for nothing and nothing waits for it.
    pub(crate) fn order_frame(self: &Arc<Self>, frame: &[u8]) -> Option<OrderTicket> {
        let mut named: Vec<(FileId, bool)> = Vec::new();
        for pdu in smb_wire::split_compound(frame) {
            // A malformed frame is refused by the pipeline; it needs no place.
            let Ok(pdu) = pdu else { break };
            let Some(&[lo, hi]) = pdu.get(12..14) else {
                break;
            };
            let cmd = Command(u16::from_le_bytes([lo, hi]));
            let Some(id) = request_file_id(cmd, pdu).filter(|f| !f.is_any()) else {
                continue;
            };
            let exclusive = !matches!(cmd, Command::READ | Command::WRITE);
            match named.iter_mut().find(|(f, _)| *f == id) {
                Some(e) => e.1 |= exclusive,
                None => named.push((id, exclusive)),
            }
        }
        if named.is_empty() {
            return None;
        }
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let mut waits = Vec::new();
        let mut order = lock(&self.order);
        for (id, exclusive) in &named {
            let e = order.entry(*id).or_default();
            e.live += 1;
            if let Some(x) = e.exclusive.as_ref().filter(|g| !g.is_closed()) {
                waits.push(x.clone());
            }
            if *exclusive {
                waits.extend(e.shared.drain(..).filter(|g| !g.is_closed()));
                e.exclusive = Some(gate.clone());
            } else {
                // Amortised: pruned only once done ones could be most of it.
                if e.shared.len() >= 16 && e.shared.len() >= 2 * e.live {
                    e.shared.retain(|g| !g.is_closed());
                }
                e.shared.push(gate.clone());
            }
        }
        drop(order);
        Some(OrderTicket {
            released: Default::default(),
            conn: Arc::downgrade(self),
            gate,
            waits,
            keys: named.into_iter().map(|(f, _)| f).collect(),
        })
    }

    /// The turn of a frame that just arrived; `unplaced` is the connection loop's record of
    /// the last encrypted frame not yet placed.
    pub(crate) fn turn_for(
        self: &Arc<Self>,
        frame: &[u8],
        unplaced: &mut Option<oneshot::Receiver<()>>,
    ) -> Turn {
        if let Some(rx) = unplaced
            && !matches!(rx.try_recv(), Err(oneshot::error::TryRecvError::Empty))
        {
            *unplaced = None;
        }
        if unplaced.is_none() && !smb_wire::is_transform(frame) {
            return Turn::Placed(self.order_frame(frame));
        }
        let (placed, rx) = oneshot::channel();
        Turn::AfterDecrypt {
            prev: unplaced.replace(rx),
            placed,
        }
    }

    /// A frame holding one signed PDU (a signed WRITE, typically) on an AES-GMAC session is
    /// checked here, once, over the frame as received (its signature field already zeroed by
    /// [`take_signatures`]), before its PDU is cut out and shared. The key is returned with
    /// the outcome so that the pipeline uses it only if the session still signs with that key.
    fn verify_gmac_early(
        &self,
        frame: &[u8],
        sigs: &[(usize, [u8; 16])],
    ) -> Option<([u8; 16], bool)> {
        let [(0, sig)] = sigs else { return None };
        let next = frame.get(20..24)?;
        if next != [0, 0, 0, 0] {
            return None;
        }
        let sid = u64::from_le_bytes(frame.get(40..48)?.try_into().ok()?);
        let session = lock(&self.sessions).get(&sid).cloned()?;
        let (algo, key) = session.auth()?.signing?;
        if algo != SigningAlgo::AesGmac {
            return None;
        }
        Some((
            key,
            crypto::verify_zeroed(SigningAlgo::AesGmac, &key, frame, sig),
        ))
    }

    /// Whether a large plain WRITE (its head read, its data still on the socket) is to be
    /// spliced: its session neither signs nor encrypts, its tree does not encrypt, it names
    /// an open of that session and tree whose store takes spliced data without waiting for
    /// a disk, no other open of the file caches (the WRITE would send a break and might
    /// wait for an acknowledgment, which could come only on this connection), and no
    /// earlier request on the open is still in progress that it must follow. Otherwise the
    /// frame is read whole and takes the ordinary path; the handler repeats every check.
    fn splice_eligible(&self, head: &[u8; splice::HEAD_LEN]) -> bool {
        let sid = u64::from_le_bytes([
            head[40], head[41], head[42], head[43], head[44], head[45], head[46], head[47],
        ]);
        let tid = u32::from_le_bytes([head[36], head[37], head[38], head[39]]);
        let Some(session) = lock(&self.sessions).get(&sid).cloned() else {
            return false;
        };
        let Some(auth) = session.auth() else {
            return false;
        };
        if auth.encrypt_data || auth.signing_required {
            return false;
        }
        let Some(tree) = session.tree(tid).filter(|t| !t.encrypt) else {
            return false;
        };
        let Some(id) = request_file_id(Command::WRITE, head) else {
            return false;
        };
        let open = lock(&session.opens).get(&id.volatile).cloned();
        let Some(open) = open.filter(|o| o.file_id == id && o.tree_id() == tree.id) else {
            return false;
        };
        if crate::oplock::any_caching() && open.file.others_cache(open.uid) {
            return false;
        }
        if lock(&self.order)
            .get(&id)
            .and_then(|e| e.exclusive.as_ref())
            .is_some_and(|g| !g.is_closed())
        {
            return false;
        }
        open.handle.splice_target()
    }

    /// One WRITE whose data is still on the socket: the ordinary pipeline on its head, the
    /// handler taking the data from `body`; what it did not take is read and discarded
    /// before the response goes out.
    async fn process_spliced_write(
        self: &Arc<Self>,
        head: &[u8],
        body: &splice::SocketBody<'_>,
        mut ticket: Option<OrderTicket>,
    ) -> Result<(), String> {
        let frame = Bytes::copy_from_slice(head);
        self.server
            .counters
            .socket_writes
            .fetch_add(1, Ordering::Relaxed);
        if let Some(t) = ticket.as_mut() {
            t.wait().await;
        }
        let mut responses: Vec<Response> = Vec::new();
        let mut related = Related::default();
        let whole = Whole {
            frame: &frame,
            encrypted: None,
            order: ticket.as_ref(),
            body: Some(body),
        };
        let r = self
            .process_pdu(&frame, &whole, &mut related, true, &mut responses, None)
            .await?;
        body.drain().await?;
        if let Some(r) = r {
            responses.push(r);
        }
        self.send_responses(responses, None).await
    }

    /// Handle one frame outside the per-open order (tests, fuzzing, ordered frames).
    pub(crate) async fn process_frame(self: &Arc<Self>, frame: Vec<u8>) -> Result<(), String> {
        self.process_frame_in_turn(frame, Turn::Placed(None)).await
    }

    /// Handle one frame; `Err` ends the connection with that reason.
    pub(crate) async fn process_frame_in_turn(
        self: &Arc<Self>,
        frame: Vec<u8>,
        turn: Turn,
    ) -> Result<(), String> {
        if smb_wire::is_smb1(&frame) {
            let resp = handlers::negotiate::smb1_negotiate(self, &frame)?;
            return self.send(vec![resp]).await;
        }
        let mut encrypted: Option<Encrypted> = None;
        let mut received_sigs: Vec<(usize, [u8; 16])> = Vec::new();
        let mut gmac_checked: Option<([u8; 16], bool)> = None;
        let frame = if smb_wire::is_transform(&frame) {
            // [MS-SMB2] 3.3.5.2.1.1: a message that does not decrypt ends the connection.
            let th = smb_wire::transform::TransformHeader::parse(&frame)
                .map_err(|e| format!("malformed transform header: {e}"))?;
            let sid = th.session_id.0;
            let session = lock(&self.sessions)
                .get(&sid)
                .cloned()
                .ok_or_else(|| format!("encrypted message for unknown session {sid:#x}"))?;
            let crypto = session
                .auth()
                .and_then(|a| a.crypto.clone())
                .ok_or_else(|| {
                    format!("encrypted message on session {sid:#x}, which has no encryption keys")
                })?;
            let mut frame = frame;
            if !crypto.decrypt_in_place(&mut frame) {
                return Err(
                    "encrypted message failed to decrypt (wrong key or nonce, or tampered)".into(),
                );
            }
            // The plaintext stays where it was decrypted, after the transform header.
            let plain = Bytes::from(frame).slice(smb_wire::transform::TransformHeader::SIZE..);
            if !smb_wire::is_smb2(&plain) {
                return Err("decrypted message is not SMB2".into());
            }
            encrypted = Some(Encrypted {
                session_id: sid,
                crypto,
            });
            plain
        } else {
            let mut frame = frame;
            received_sigs = take_signatures(&mut frame);
            gmac_checked = self.verify_gmac_early(&frame, &received_sigs);
            Bytes::from(frame)
        };
        if smb_wire::is_compression_transform(&frame) {
            return Err("compressed message, but compression was not negotiated".into());
        }
        let mut ticket = match turn {
            Turn::Placed(t) => t,
            Turn::AfterDecrypt { prev, placed } => {
                if let Some(p) = prev {
                    let _ = p.await;
                }
                let t = self.order_frame(&frame);
                drop(placed);
                t
            }
        };
        if let Some(t) = ticket.as_mut() {
            t.wait().await;
        }
        let mut responses: Vec<Response> = Vec::new();
        let mut related = Related::default();
        let mut first = true;
        let mut pdus = smb_wire::split_compound(&frame);
        let mut at = pdus.position();
        while let Some(item) = pdus.next() {
            let pdu = item.map_err(|e| format!("malformed compound: {e}"))?;
            let sig = received_sigs
                .iter()
                .find(|(p, _)| *p == at)
                .map(|(_, s)| ReceivedSig {
                    sig: *s,
                    gmac_checked: gmac_checked.filter(|_| at == 0),
                });
            let whole = Whole {
                frame: &frame,
                encrypted: encrypted.as_ref(),
                order: ticket.as_ref(),
                body: None,
            };
            if let Some(r) = self
                .process_pdu(pdu, &whole, &mut related, first, &mut responses, sig)
                .await?
            {
                responses.push(r);
            }
            first = false;
            at = pdus.position();
        }
        self.send_responses(responses, encrypted.as_ref()).await
    }

    /// Pad, chain, sign and (when the request was) encrypt responses, and queue them as one
    /// message.
    async fn send_responses(
        &self,
        responses: Vec<Response>,
        encrypted: Option<&Encrypted>,
    ) -> Result<(), String> {
        if responses.is_empty() {
            return Ok(());
        }
        // [MS-SMB2] 3.3.4.1.3: each response of a compound is padded to 8 bytes, and each but
        // the last points at the next. The last is padded too, as Windows and Samba do
        // (smbtorture smb2.compound.compound-padding checks it); a lone response is not.
        // Signatures cover the padding, so sign last.
        let n = responses.len();
        let mut parts = Vec::with_capacity(n);
        let mut tail = None;
        for (i, mut r) in responses.into_iter().enumerate() {
            if let Some(f) = r.file.take() {
                if n == 1 && r.sign.is_none() && encrypted.is_none() && self.out.sends_files() {
                    tail = Some(f);
                } else {
                    // Handlers attach file data only where `Ctx::zero_copy` allowed it: this
                    // is a bug, answered correctly anyway (tmpfs: no disk wait).
                    debug_assert!(false, "file tail on a response that cannot carry one");
                    let want = f.len;
                    let got = f
                        .handle
                        .read_append(&mut r.pdu, want, f.offset)
                        .unwrap_or(0);
                    r.pdu.resize(r.pdu.len() + want - got.min(want), 0);
                }
            }
            if n > 1 {
                let padded = r.pdu.len().next_multiple_of(8);
                r.pdu.resize(padded, 0);
                if i + 1 < n {
                    r.pdu[20..24].copy_from_slice(&(padded as u32).to_le_bytes());
                }
            }
            if let Some((algo, key)) = r.sign {
                crypto::sign(algo, &key, &mut r.pdu);
            }
            parts.push(r.pdu);
        }
        if let Some(e) = encrypted {
            let sealed = e
                .crypto
                .seal_parts(e.session_id, parts)
                .ok_or("encrypting the response failed")?;
            return self.send(sealed.into()).await;
        }
        self.out.send(OutMsg::new(parts, tail)).await
    }

    /// The per-PDU pipeline. `Ok(None)`: no response (CANCEL). `Err`: drop the connection.
    async fn process_pdu(
        self: &Arc<Self>,
        pdu: &[u8],
        whole: &Whole<'_>,
        related: &mut Related,
        first: bool,
        earlier: &mut Vec<Response>,
        received_sig: Option<ReceivedSig>,
    ) -> Result<Option<Response>, String> {
        let Whole {
            frame,
            encrypted,
            order,
            body,
        } = *whole;
        let hdr = Header::parse(pdu).map_err(|e| format!("malformed SMB2 header: {e}"))?;
        if hdr.flags.contains(HeaderFlags::SERVER_TO_REDIR) {
            return Err("client sent a message flagged as a server response".into());
        }
        let cmd = hdr.command;
        let dialect = self.dialect();

        // [MS-SMB2] 3.3.5.2.3: the message id must lie in the granted window; otherwise the
        // server terminates the connection. CANCEL carries the id of what it cancels.
        if cmd != Command::CANCEL {
            let charge = match dialect {
                Some(d) if d != Dialect::SMB2_0_2 => hdr.credit_charge,
                _ => 1,
            };
            lock(&self.credits)
                .consume(hdr.message_id, charge)
                .map_err(|e| format!("credit violation: {e}"))?;
        }
        match (dialect, cmd) {
            (None, Command::NEGOTIATE) => {}
            (None, _) => return Err(format!("{cmd:?} before NEGOTIATE")),
            (Some(_), Command::NEGOTIATE) => {
                return Err("second NEGOTIATE on a negotiated connection".into());
            }
            _ => {}
        }

        let is_related = hdr.flags.contains(HeaderFlags::RELATED_OPERATIONS);
        let (mut session_id, mut tree_id) = (hdr.session_id.0, hdr.tree_id().map_or(0, |t| t.0));
        let mut early: Option<NtStatus> = None;
        if is_related {
            // The first request of a chain has nothing to be related to: its session is
            // "none", which fails it with STATUS_INVALID_PARAMETER below, and so every related
            // request after it (smbtorture smb2.compound.invalid1, related9).
            if first {
                *related = Related::default();
            }
            session_id = related.session_id;
            tree_id = related.tree_id;
            early = related.status;
        } else {
            *related = Related::default();
        }
        let related_file_id = related.file_id;

        let mut ctx = Ctx {
            conn: self,
            hdr: &hdr,
            pdu,
            frame,
            session: None,
            tree: None,
            related_file_id,
            out: response_buffer(),
            resp_session_id: session_id,
            resp_tree_id: tree_id,
            force_sign: None,
            encrypted: encrypted.cloned(),
            preauth_hook: PreauthHook::None,
            new_file_id: None,
            async_id: None,
            zero_copy: false,
            file_tail: None,
            body,
            order,
            earlier: std::mem::take(earlier),
        };

        let mut sign: Option<(SigningAlgo, [u8; 16])> = None;
        // The session is checked even when the compound already decided the status, so that
        // the error is signed like any response on a signed session (clients that require
        // signing otherwise see STATUS_ACCESS_DENIED instead of the real status).
        let mut checked =
            self.check_session(&mut ctx, session_id, tree_id, received_sig, &mut sign);
        let session_ok = !matches!(
            checked,
            Err(ProtoError::Status(NtStatus::USER_SESSION_DELETED))
        );
        if is_related && !session_ok {
            // [MS-SMB2] 3.3.5.2.7.2: a related request uses the previous one's session; when
            // there is none, the request is invalid (smbtorture smb2.compound.invalid2).
            checked = Err(NtStatus::INVALID_PARAMETER.into());
            // The response names the session the request named, as Samba does: a client
            // finds the key to check it with by that id.
            ctx.resp_session_id = hdr.session_id.0;
        }
        let result: ProtoResult<NtStatus> = match (early, checked) {
            (_, Err(ProtoError::Drop(why))) => Err(ProtoError::Drop(why)),
            (Some(s), _) => Err(ProtoError::Status(s)),
            (None, Err(e)) => Err(e),
            (None, Ok(())) => {
                ctx.zero_copy = first
                    && hdr.next_command == 0
                    && sign.is_none()
                    && encrypted.is_none()
                    && self.out.sends_files();
                handlers::dispatch(&mut ctx).await
            }
        };
        // Handed back whether or not an interim response took them.
        *earlier = std::mem::take(&mut ctx.earlier);
        let status = match result {
            Ok(s) => s,
            Err(ProtoError::Status(s)) => {
                ctx.file_tail = None;
                ctx.out.truncate(Header::SIZE);
                // An empty error body cannot fail to encode.
                let _ = smb_wire::msg::error::ErrorResponse::EMPTY.encode(&mut ctx.out);
                s
            }
            Err(ProtoError::Drop(why)) => return Err(why),
        };
        if cmd == Command::CANCEL {
            return Ok(None);
        }
        if status.is_error() && !matches!(cmd, Command::SESSION_SETUP) {
            debug!(conn = self.id, ?cmd, %status, "request failed");
        }

        // Credits: grant what was asked (at least one), within limits.credits.
        // Credits were granted with the interim response of an async operation; the final one
        // grants none ([MS-SMB2] 3.3.4.2).
        let granted = if ctx.async_id.is_some() {
            0
        } else {
            lock(&self.credits).grant(hdr.credit.max(1))
        };
        let resp_hdr = Header {
            credit_charge: hdr.credit_charge,
            status,
            command: cmd,
            credit: granted,
            flags: HeaderFlags(
                HeaderFlags::SERVER_TO_REDIR.0
                    | (hdr.flags.0 & HeaderFlags::RELATED_OPERATIONS.0)
                    | if ctx.async_id.is_some() {
                        HeaderFlags::ASYNC_COMMAND.0
                    } else {
                        0
                    },
            ),
            next_command: 0,
            message_id: hdr.message_id,
            id: match (ctx.async_id, hdr.id) {
                (Some(a), _) => HeaderId::Async(AsyncId(a)),
                (None, HeaderId::Sync { process_id, .. }) => HeaderId::Sync {
                    process_id,
                    tree_id: TreeId(ctx.resp_tree_id),
                },
                (None, HeaderId::Async(a)) => HeaderId::Async(a),
            },
            session_id: SessionId(ctx.resp_session_id),
            signature: [0; 16],
        };
        resp_hdr.write(&mut ctx.out[..Header::SIZE]);

        match std::mem::replace(&mut ctx.preauth_hook, PreauthHook::None) {
            PreauthHook::None => {}
            PreauthHook::Connection => lock(&self.neg).preauth.update(&ctx.out),
            PreauthHook::Session(s) => handlers::session_setup::hash_response(&s, &ctx.out),
        }

        related.session_id = if session_ok { ctx.resp_session_id } else { 0 };
        related.tree_id = ctx.resp_tree_id;
        if let Some(f) = ctx.new_file_id {
            related.file_id = Some(f);
        } else if let Some(f) = request_file_id(cmd, pdu).filter(|f| !f.is_any()) {
            related.file_id = Some(f);
        }
        if cmd == Command::CREATE && status.is_error() {
            related.status = Some(status);
        }
        if ctx.force_sign.is_some() {
            sign = ctx.force_sign;
        }
        if ctx.encrypted.is_some() {
            // Encrypted messages are never also signed ([MS-SMB2] 3.3.4.1.1).
            return Ok(Some(Response {
                pdu: ctx.out,
                sign: None,
                file: ctx.file_tail.take(),
            }));
        }
        // A related request refused for want of a session (first of a chain, or after a
        // request whose session was invalid) has no key to sign with either.
        let unsignable = status == NtStatus::USER_SESSION_DELETED
            || cmd == Command::SESSION_SETUP
            || (is_related && !session_ok);
        if sign.is_none()
            && hdr.flags.contains(HeaderFlags::SIGNED)
            && status.is_error()
            && unsignable
        {
            // An error decided before the session's key was known (unknown session, failed
            // logon) cannot be signed. Keep SMB2_FLAGS_SIGNED with an all-zero signature, as
            // Windows and Samba do: a client that insists on signed responses then accepts
            // the status instead of reporting STATUS_ACCESS_DENIED.
            let flags = u32::from_le_bytes([ctx.out[16], ctx.out[17], ctx.out[18], ctx.out[19]])
                | HeaderFlags::SIGNED.0;
            ctx.out[16..20].copy_from_slice(&flags.to_le_bytes());
        }
        Ok(Some(Response {
            pdu: ctx.out,
            sign,
            file: ctx.file_tail.take(),
        }))
    }

    /// [MS-SMB2] 3.3.5.2.9 (session), 3.3.5.2.4 (signature), 3.3.5.2.11 (tree).
    /// On success `sign` says whether and how the response is to be signed.
    fn check_session(
        &self,
        ctx: &mut Ctx<'_>,
        session_id: u64,
        tree_id: u32,
        received_sig: Option<ReceivedSig>,
        sign: &mut Option<(SigningAlgo, [u8; 16])>,
    ) -> ProtoResult<()> {
        let cmd = ctx.hdr.command;
        if matches!(cmd, Command::NEGOTIATE | Command::SESSION_SETUP) {
            return Ok(());
        }
        let found = if session_id == 0 {
            None
        } else {
            lock(&self.sessions).get(&session_id).cloned()
        };
        let Some(session) = found else {
            // ECHO and CANCEL with SessionId 0 are answered without a session (smbtorture's
            // keepalive after logoff); an unknown non-zero id is refused like for any command.
            if session_id == 0 && matches!(cmd, Command::ECHO | Command::CANCEL) {
                return Ok(());
            }
            return Err(NtStatus::USER_SESSION_DELETED.into());
        };
        let Some(auth) = session.auth() else {
            return Err(NtStatus::USER_SESSION_DELETED.into());
        };
        session
            .last_active
            .store(self.server.now_secs(), Ordering::Relaxed);
        let signed = ctx.hdr.flags.contains(HeaderFlags::SIGNED);
        let was_encrypted = ctx.encrypted.is_some();
        if auth.encrypt_data && !was_encrypted {
            // [MS-SMB2] 3.3.5.2.9: Session.EncryptData and an unencrypted request.
            warn!(conn = self.id, peer = %self.peer, user = auth.user_name(), ?cmd,
                  "unencrypted request on a session that must encrypt (security.encryption): refused");
            return Err(NtStatus::ACCESS_DENIED.into());
        }
        if let Some((algo, key)) = auth.signing.filter(|_| !was_encrypted) {
            if signed {
                let ok = match &received_sig {
                    Some(ReceivedSig {
                        gmac_checked: Some((k, ok)),
                        ..
                    }) if algo == SigningAlgo::AesGmac && *k == key => *ok,
                    Some(r) => crypto::verify_zeroed(algo, &key, ctx.pdu, &r.sig),
                    None => crypto::verify(algo, &key, ctx.pdu),
                };
                if !ok {
                    warn!(conn = self.id, peer = %self.peer, user = auth.user_name(), ?cmd, "bad signature: request refused");
                    return Err(NtStatus::ACCESS_DENIED.into());
                }
                *sign = Some((algo, key));
            } else if auth.signing_required && cmd != Command::CANCEL {
                warn!(conn = self.id, peer = %self.peer, user = auth.user_name(), ?cmd, "unsigned request on a session that requires signing");
                return Err(NtStatus::ACCESS_DENIED.into());
            } else if auth.signing_required {
                *sign = Some((algo, key));
            }
        }
        let tree_scoped = !matches!(
            cmd,
            Command::LOGOFF | Command::TREE_CONNECT | Command::ECHO | Command::CANCEL
        );
        ctx.session = Some(session.clone());
        if tree_scoped {
            match session.tree(tree_id) {
                Some(t) if t.encrypt && !was_encrypted => {
                    warn!(conn = self.id, peer = %self.peer, user = auth.user_name(), share = %t.share.config.name, ?cmd,
                          "unencrypted request to a share with encrypt = true: refused");
                    return Err(NtStatus::ACCESS_DENIED.into());
                }
                Some(t) => ctx.tree = Some(t),
                None => return Err(NtStatus::NETWORK_NAME_DELETED.into()),
            }
        }
        Ok(())
    }
}

#[cfg(any(test, feature = "fuzzing"))]
pub(crate) mod testing {
    //! A connection without a socket: feed frames, collect response frames.
    use super::*;
    use tokio::sync::mpsc;

    pub(crate) fn connection(
        server: Arc<ServerState>,
    ) -> (Arc<Connection>, mpsc::Receiver<Vec<Vec<u8>>>) {
        let (tx, rx) = mpsc::channel(64);
        let conn = Arc::new(Connection {
            id: NEXT_CONN_ID.fetch_add(1, Ordering::Relaxed),
            peer: "127.0.0.1:1".parse().expect("addr"),
            neg: Mutex::new(NegState::default()),
            credits: Mutex::new(CreditWindow::new(server.config.max_credits)),
            sessions: Mutex::new(HashMap::new()),
            server,
            out: Outbox::Channel(tx),
            pending: Mutex::new(HashMap::new()),
            early_cancels: Mutex::new(std::collections::VecDeque::new()),
            last_active: AtomicU64::new(0),
            aapl_readdir: Default::default(),
            order: Mutex::new(HashMap::new()),
        });
        (conn, rx)
    }
}
