//! Reading NetBIOS session messages ([MS-SMB2] 2.1) off the connection's socket.
//!
//! One `recv` takes a small frame whole (header and body), and every frame a client has
//! pipelined behind it: they are cut out of a short-lived stack buffer, each into its own
//! exactly-sized `Vec`. Only what a read brought beyond the frame handed out is kept (in
//! `held`), and only until it is handed out too: an idle connection holds no buffer. A frame
//! that is not complete in hand is finished with reads straight into its own `Vec`, so a large
//! WRITE's body is copied once from the socket (only the bytes that came with the first read
//! are copied again).
//!
//! [`FrameReader::next`] is cancel-safe: every byte taken off the socket is in `self` before
//! any await, so the connection loop may drop the future for another event and call it again.

use std::future::{Future, poll_fn};
use std::mem::MaybeUninit;
use std::task::{Poll, ready};
use std::time::Duration;

use bytes::BufMut;
use smb_wire::Command;
use smb_wire::netbios::{FrameHeader, frame_len};
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};
use tokio::net::tcp::OwnedReadHalf;
use tokio::time::Instant;

/// Bytes asked for by a read when no frame is started: enough for many pipelined small
/// requests, small enough that the copy out of it is negligible for a large WRITE.
const CHUNK: usize = 8 * 1024;

/// How much of a large frame's message is in hand before its body is read: the SMB2 header
/// (64) and a WRITE request's fixed part (48), enough to tell a WRITE whose body could go from
/// the socket elsewhere without passing through a buffer.
pub(crate) const FRAME_HEAD: usize = 64 + 48;

/// Why reading a frame failed.
#[derive(Debug)]
pub(crate) enum FrameError {
    /// A frame started but did not complete within the read deadline.
    Deadline(Duration),
    Other(String),
}

/// A frame of which only a part has arrived.
#[derive(Debug)]
struct Started {
    /// Its message bytes so far; while `len` is `None`, the NetBIOS header's bytes so far.
    got: Vec<u8>,
    len: Option<usize>,
    /// When all of it must have arrived (a client that trickles bytes cannot hold a
    /// connection slot forever); `None`: no deadline.
    deadline: Option<Instant>,
}

/// What the next bytes in hand hold.
enum Cut {
    /// A keep-alive: 4 bytes, nothing to hand out.
    KeepAlive,
    /// A whole message of this length after its 4-byte header.
    Whole(usize),
    /// The start of a frame (possibly of its header only).
    Partial,
}

fn cut(bytes: &[u8], max: usize) -> Result<Cut, FrameError> {
    let Some(hdr) = bytes.first_chunk::<4>() else {
        return Ok(Cut::Partial);
    };
    match frame_len(*hdr, max).map_err(|e| FrameError::Other(format!("bad frame: {e}")))? {
        FrameHeader::KeepAlive => Ok(Cut::KeepAlive),
        FrameHeader::Message(len) if bytes.len() - 4 >= len => Ok(Cut::Whole(len)),
        FrameHeader::Message(_) => Ok(Cut::Partial),
    }
}

/// Where the rest of a large started frame's message goes, decided once its first
/// [`FRAME_HEAD`] bytes (or all of a shorter message) are in hand.
///
/// This is the one place for a large WRITE to take its body from the socket itself (socket →
/// pipe → file, `splice.rs`): the caller's `route` sees the message length and the bytes in
/// hand (at least the head), and the frame is handed over as [`Read::Head`] before any more
/// of it is read.
enum BodyRoute {
    /// Into the frame's own exactly-sized `Vec`.
    Buffer,
    /// Left on the socket for the caller.
    Socket,
}

/// What [`FrameReader::next_routed`] hands out.
pub(crate) enum Read {
    /// A whole message (without its NetBIOS header).
    Frame(Vec<u8>),
    /// The start of a message of `len` bytes that `route` chose to leave on the socket: `got`
    /// holds its first bytes (at least [`FRAME_HEAD`], maybe some of the body), the rest is
    /// due on the socket by `deadline` (`None`: no deadline).
    Head {
        got: Vec<u8>,
        len: usize,
        deadline: Option<Instant>,
    },
}

/// The frame reader of one connection.
pub(crate) struct FrameReader<R> {
    rd: R,
    /// A started frame must complete within this (zero: no deadline).
    timeout: Duration,
    /// Bytes a read brought beyond the frame it completed, not handed out yet; `at` is how
    /// many of them are. Empty (unallocated) whenever nothing is pipelined.
    held: Vec<u8>,
    at: usize,
    started: Option<Started>,
}

/// A socket the reader can take a chunk from.
pub(crate) trait FrameSource: AsyncRead + Unpin {
    /// Reads what has arrived into `buf`. Unlike `poll_read` on a tokio socket, a read that
    /// fills less than `buf` need not take the socket for drained: the next call may try
    /// again and wait for readiness only when the kernel says there is nothing. A client with
    /// requests in flight has often sent the next by the time the last is answered, and
    /// taking it then costs one `recv` instead of a trip through the I/O driver ([`Socket`]
    /// decides per client).
    fn poll_read_some(
        &mut self,
        cx: &mut std::task::Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>>;
}

/// Short reads in a row that are taken for "drained" once trying again after them has found
/// nothing twice running.
const DRAINED_RUN: u8 = 32;

/// The read half of a connection's socket, with what the last reads taught about its client.
///
/// Trying the socket again after a short read pays off for a client that pipelines; for one
/// that sends a request only once it has the last answer (smb2.bench.echo, most interactive
/// clients) the second `recv` fails every time, one wasted system call per request. So after
/// two such failures in a row, a short read is taken to mean the kernel has nothing more
/// (the I/O driver is told, and waits for the next readiness event), for the next
/// [`DRAINED_RUN`] short reads; then the socket is tried again, and the client's pattern
/// decides anew.
pub(crate) struct Socket {
    rd: OwnedReadHalf,
    /// The last read was short and the socket was left marked readable: the next read tries
    /// it speculatively.
    kept: bool,
    /// Speculative tries in a row that found nothing.
    misses: u8,
    /// Short reads still to be taken for "drained".
    drained_run: u8,
    /// The last read brought a setup request alone (no staying awake for the next, see
    /// [`Awake`]).
    after_setup: bool,
}

/// How long a connection's task, finding its socket empty, stays awake for the next request
/// before it lets its worker sleep.
const SPIN_FOR: std::time::Duration = std::time::Duration::from_micros(15);

/// Idle spells that ended with a request while the worker stayed awake add one credit, spells
/// that ran out of [`SPIN_FOR`] take two; at zero the worker's next [`SPIN_REST`] spells
/// sleep at once.
const SPIN_CREDIT_MAX: u8 = 8;
const SPIN_REST: u16 = 256;

/// Staying awake for clients that answer within a few microseconds.
///
/// A worker that finds no work sleeps in `epoll_wait`, and the client's next request must
/// wake it: on this machine (a VM, two cores) that sleep and wake-up cost more CPU than a
/// small request itself, on both sides (the client's `send` pays for waking the server's
/// thread). smb2.bench.echo (one client thread, four connections) cost the server 0.4
/// context switches and a blocking `epoll_wait` per echo. So for
/// [`SPIN_FOR`] after its worker ran out of requests, a task that finds its socket empty
/// yields instead of waiting: the runtime then polls the I/O driver without sleeping
/// (`epoll_wait` with no timeout) and polls the task again. The worker stays awake, and every
/// socket it serves is still watched: the spell is the worker's, not the connection's (with
/// several connections to one client, the next request is often another connection's).
/// With clients answering in time, that polling costs less than the sleep and the wake-up it
/// replaces (shielded runs: server CPU per echo 16.4-17.1 -> 13.3-14.9 µs, the client's
/// 18.7-19.4 -> 13.6-15.3 µs, 52k -> 63-71k echoes/s). When they do not (an interactive
/// client, or one starved of CPU on a busy machine) each spell burns [`SPIN_FOR`] for
/// nothing, and the worker's credit makes it stop trying for a while. A setup request read
/// alone never starts one: its client computes its next leg first.
#[derive(Clone, Copy)]
struct Awake {
    /// When the worker's idle spell began (a task found its socket empty after a request);
    /// `None` while it serves requests.
    idle_since: Option<std::time::Instant>,
    /// The current spell keeps the worker awake (decided when it began).
    on: bool,
    credit: u8,
    /// Spells still to sleep at once after the credit ran out.
    rest: u16,
}

thread_local! {
    static AWAKE: std::cell::Cell<Awake> = const { std::cell::Cell::new(Awake::START) };
}

impl Awake {
    const START: Awake = Awake {
        idle_since: None,
        on: false,
        credit: 2,
        rest: 0,
    };

    /// A task found its socket empty at `now`: whether it should yield (keep the worker
    /// awake).
    fn empty_at(&mut self, now: std::time::Instant) -> bool {
        match self.idle_since {
            None => {
                self.idle_since = Some(now);
                self.on = if self.rest > 0 {
                    self.rest -= 1;
                    false
                } else {
                    self.credit > 0
                };
            }
            Some(since) if self.on && now.duration_since(since) >= SPIN_FOR => {
                self.on = false;
                self.credit = self.credit.saturating_sub(2);
                if self.credit == 0 {
                    self.rest = SPIN_REST;
                    // After the rest, one more try (one miss ends it).
                    self.credit = 1;
                }
            }
            Some(_) => {}
        }
        self.on
    }

    /// A request arrived on a socket of this worker: its idle spell, if any, is over.
    fn busy(&mut self) {
        if self.idle_since.take().is_some() && self.on {
            self.credit = (self.credit + 1).min(SPIN_CREDIT_MAX);
        }
        self.on = false;
    }

    /// [`Awake::empty_at`] for this thread's worker.
    fn empty() -> bool {
        AWAKE.with(|cell| {
            let mut a = cell.get();
            let on = a.empty_at(std::time::Instant::now());
            cell.set(a);
            on
        })
    }

    /// [`Awake::busy`] for this thread's worker.
    fn request() {
        AWAKE.with(|cell| {
            let mut a = cell.get();
            a.busy();
            cell.set(a);
        });
    }
}

impl Socket {
    pub(crate) fn new(rd: OwnedReadHalf) -> Self {
        Socket {
            rd,
            kept: false,
            misses: 0,
            drained_run: 0,
            after_setup: false,
        }
    }
}

impl AsRef<tokio::net::TcpStream> for Socket {
    fn as_ref(&self) -> &tokio::net::TcpStream {
        self.rd.as_ref()
    }
}

impl AsyncRead for Socket {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.rd).poll_read(cx, buf)
    }
}

impl FrameSource for Socket {
    fn poll_read_some(
        &mut self,
        cx: &mut std::task::Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        use std::io::ErrorKind::WouldBlock;
        loop {
            match self.rd.as_ref().poll_read_ready(cx) {
                Poll::Ready(r) => r?,
                Poll::Pending => {
                    if !self.after_setup && Awake::empty() {
                        // Polled once, the yield asks the worker to poll this task again
                        // after a look at the I/O driver that does not sleep.
                        let _ = std::pin::pin!(tokio::task::yield_now()).poll(cx);
                    }
                    return Poll::Pending;
                }
            }
            let speculative = std::mem::take(&mut self.kept);
            let take_short_as_drained = self.drained_run > 0;
            let room = buf.remaining();
            let mut short = false;
            let mut setup = false;
            let rd = &self.rd;
            // A read that the closure reports as WouldBlock makes tokio clear the socket's
            // readiness (unless an event came in meanwhile), so the task waits for the next
            // event instead of trying `recv` once more; the bytes read stay in `buf`.
            let r = rd.as_ref().try_io(tokio::io::Interest::READABLE, || {
                let before = buf.filled().len();
                rd.try_read_buf(buf)?;
                let n = buf.filled().len() - before;
                // A short read is the kernel's queue emptied. Besides this client's pattern, a
                // setup request read alone is one its client waits on before anything more.
                if n > 0 && n < room {
                    setup = awaits_answer(&buf.filled()[before..]);
                    if take_short_as_drained || setup {
                        short = true;
                        return Err(WouldBlock.into());
                    }
                }
                Ok(n)
            });
            self.after_setup = setup;
            if short || matches!(r, Ok(n) if n > 0) {
                Awake::request();
            }
            match r {
                Ok(n) => {
                    if speculative {
                        self.misses = 0;
                    }
                    self.kept = n > 0 && n < room;
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == WouldBlock && short => {
                    self.drained_run = self.drained_run.saturating_sub(1);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == WouldBlock => {
                    if speculative {
                        self.misses += 1;
                        if self.misses >= 2 {
                            self.misses = 0;
                            self.drained_run = DRAINED_RUN;
                        }
                    }
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

/// Whether `bytes` (what one read brought, NetBIOS headers included) are exactly one whole
/// request that a client sends alone and then waits on: an SMB1 or SMB2 NEGOTIATE, a
/// SESSION_SETUP leg or a TREE_CONNECT, not in a compound. Each answer carries what the
/// client's next request needs (the dialect, the challenge, the session id, the tree id), so
/// when a read brings one such frame and no more, the next bytes cannot be on their way yet,
/// and trying another `recv` before waiting for readiness only costs a system call (2-3 per
/// session set up). Wrong guesses cost nothing but that: a read that ends short has emptied
/// the socket, and whatever arrives later is reported by the I/O driver.
fn awaits_answer(bytes: &[u8]) -> bool {
    let Some((hdr, msg)) = bytes.split_first_chunk::<4>() else {
        return false;
    };
    let len = usize::from(hdr[1]) << 16 | usize::from(hdr[2]) << 8 | usize::from(hdr[3]);
    if hdr[0] != 0 || len != msg.len() {
        return false;
    }
    match msg {
        [0xFE, b'S', b'M', b'B', rest @ ..] => rest.first_chunk::<20>().is_some_and(|h| {
            let cmd = u16::from_le_bytes([h[8], h[9]]);
            let next_command = u32::from_le_bytes([h[16], h[17], h[18], h[19]]);
            next_command == 0
                && [
                    Command::NEGOTIATE,
                    Command::SESSION_SETUP,
                    Command::TREE_CONNECT,
                ]
                .iter()
                .any(|c| c.0 == cmd)
        }),
        // SMB_COM_NEGOTIATE ([MS-SMB2] 3.3.5.3).
        [0xFF, b'S', b'M', b'B', 0x72, ..] => true,
        _ => false,
    }
}

impl<R: FrameSource> FrameReader<R> {
    pub(crate) fn new(rd: R, timeout: Duration) -> Self {
        FrameReader {
            rd,
            timeout,
            held: Vec::new(),
            at: 0,
            started: None,
        }
    }

    /// The next message (without its NetBIOS header); `Ok(None)` at a clean end of stream.
    /// `max` is the largest length accepted, checked as each frame's header is read, before
    /// anything is allocated for it.
    #[cfg(test)]
    pub(crate) async fn next(&mut self, max: usize) -> Result<Option<Vec<u8>>, FrameError> {
        loop {
            match self.next_routed(max, &|_, _| false).await? {
                Some(Read::Frame(f)) => return Ok(Some(f)),
                // `route` never leaves a body on the socket.
                Some(Read::Head { .. }) => continue,
                None => return Ok(None),
            }
        }
    }

    /// The socket, for a body [`Read::Head`] left on it.
    pub(crate) fn inner(&self) -> &R {
        &self.rd
    }

    /// Like [`FrameReader::next`], but a large frame for which `route(len, bytes in hand)`
    /// says so is handed out as [`Read::Head`], its body left on the socket.
    pub(crate) async fn next_routed(
        &mut self,
        max: usize,
        route: &(dyn Fn(usize, &[u8]) -> bool + Send + Sync),
    ) -> Result<Option<Read>, FrameError> {
        loop {
            if self.started.is_some() {
                // Boxed: this path (a frame split across reads, a large frame's body) holds a
                // deadline timer and a read; inline, every idle connection's task would carry
                // their space while it waits on the one-read path.
                if let Some(read) = Box::pin(self.finish_started(max, route)).await? {
                    return Ok(Some(read));
                }
                continue;
            }
            if self.at < self.held.len() {
                if let Some(frame) = self.cut_held(max)? {
                    return Ok(Some(Read::Frame(frame)));
                }
                continue;
            }
            match poll_fn(|cx| self.poll_chunk(cx, max)).await? {
                Chunk::Frame(frame) => return Ok(Some(Read::Frame(frame))),
                Chunk::More => {}
                Chunk::Eof => return Ok(None),
            }
        }
    }

    /// One read into a stack buffer (never part of a future's state, so an idle connection's
    /// task does not carry it), and the first frame cut out of it.
    fn poll_chunk(
        &mut self,
        cx: &mut std::task::Context<'_>,
        max: usize,
    ) -> Poll<Result<Chunk, FrameError>> {
        let mut space = [MaybeUninit::<u8>::uninit(); CHUNK];
        let mut buf = ReadBuf::uninit(&mut space);
        if let Err(e) = ready!(self.rd.poll_read_some(cx, &mut buf)) {
            return Poll::Ready(Err(FrameError::Other(format!("read error: {e}"))));
        }
        let mut bytes = buf.filled();
        if bytes.is_empty() {
            return Poll::Ready(Ok(Chunk::Eof));
        }
        loop {
            match cut(bytes, max)? {
                Cut::KeepAlive => bytes = &bytes[4..],
                Cut::Whole(len) => {
                    let frame = bytes[4..4 + len].to_vec();
                    let rest = &bytes[4 + len..];
                    if !rest.is_empty() {
                        self.held = rest.to_vec();
                        self.at = 0;
                    }
                    return Poll::Ready(Ok(Chunk::Frame(frame)));
                }
                Cut::Partial => {
                    if !bytes.is_empty() {
                        self.start(bytes, max)?;
                    }
                    return Poll::Ready(Ok(Chunk::More));
                }
            }
        }
    }

    /// The next frame of `held`, if whole; a partial one becomes the started frame.
    fn cut_held(&mut self, max: usize) -> Result<Option<Vec<u8>>, FrameError> {
        let held = std::mem::take(&mut self.held);
        let bytes = &held[self.at..];
        let out = match cut(bytes, max)? {
            Cut::KeepAlive => {
                self.at += 4;
                None
            }
            Cut::Whole(len) => {
                self.at += 4 + len;
                Some(bytes[4..4 + len].to_vec())
            }
            Cut::Partial => {
                self.start(bytes, max)?;
                self.at = held.len();
                None
            }
        };
        if self.at < held.len() {
            self.held = held;
        } else {
            self.at = 0;
        }
        Ok(out)
    }

    /// Keeps the bytes in hand of a frame that has not fully arrived.
    fn start(&mut self, bytes: &[u8], max: usize) -> Result<(), FrameError> {
        let deadline = (!self.timeout.is_zero())
            .then(|| Instant::now().checked_add(self.timeout))
            .flatten();
        let started = match bytes.first_chunk::<4>() {
            None => Started {
                got: bytes.to_vec(),
                len: None,
                deadline,
            },
            Some(hdr) => {
                let FrameHeader::Message(len) = frame_len(*hdr, max)
                    .map_err(|e| FrameError::Other(format!("bad frame: {e}")))?
                else {
                    // cut() handed keep-alives out whole.
                    return Err(FrameError::Other("bad frame: keep-alive cut short".into()));
                };
                let body = &bytes[4..];
                // A small frame gets its exact size now; a large one only its head until
                // body_route has seen it (`len` is capped by frame_len; the capacity is only
                // virtual until the bytes arrive).
                let mut got = Vec::with_capacity(if len <= CHUNK {
                    len
                } else {
                    body.len().max(FRAME_HEAD)
                });
                got.extend_from_slice(body);
                Started {
                    got,
                    len: Some(len),
                    deadline,
                }
            }
        };
        self.started = Some(started);
        Ok(())
    }

    /// Completes the started frame within its deadline; `None` if it was a keep-alive.
    async fn finish_started(
        &mut self,
        max: usize,
        route: &(dyn Fn(usize, &[u8]) -> bool + Send + Sync),
    ) -> Result<Option<Read>, FrameError> {
        let Some(deadline) = self.started.as_ref().and_then(|s| s.deadline) else {
            return self.read_started(max, route).await;
        };
        match tokio::time::timeout_at(deadline, self.read_started(max, route)).await {
            Ok(r) => r,
            Err(_) => Err(FrameError::Deadline(self.timeout)),
        }
    }

    async fn read_started(
        &mut self,
        max: usize,
        route: &(dyn Fn(usize, &[u8]) -> bool + Send + Sync),
    ) -> Result<Option<Read>, FrameError> {
        loop {
            let Some(st) = self.started.as_mut() else {
                return Ok(None);
            };
            let Some(len) = st.len else {
                let want = 4 - st.got.len();
                let n = self
                    .rd
                    .read_buf(&mut (&mut st.got).limit(want))
                    .await
                    .map_err(|e| FrameError::Other(format!("truncated frame header: {e}")))?;
                if n == 0 {
                    return Err(FrameError::Other(
                        "truncated frame header: end of stream".into(),
                    ));
                }
                if let Some(hdr) = st.got.first_chunk::<4>() {
                    match frame_len(*hdr, max)
                        .map_err(|e| FrameError::Other(format!("bad frame: {e}")))?
                    {
                        FrameHeader::KeepAlive => {
                            self.started = None;
                            return Ok(None);
                        }
                        FrameHeader::Message(len) => {
                            st.len = Some(len);
                            st.got = Vec::with_capacity(len.min(CHUNK));
                        }
                    }
                }
                continue;
            };
            if st.got.len() >= len {
                let frame = std::mem::take(&mut st.got);
                self.started = None;
                return Ok(Some(Read::Frame(frame)));
            }
            if st.got.capacity() < len && st.got.len() >= len.min(FRAME_HEAD) {
                let r = if route(len, &st.got) {
                    BodyRoute::Socket
                } else {
                    BodyRoute::Buffer
                };
                match r {
                    BodyRoute::Buffer => st.got.reserve_exact(len - st.got.len()),
                    BodyRoute::Socket => {
                        // A started frame means nothing is held beyond it: the socket's next
                        // byte is the body's next.
                        let got = std::mem::take(&mut st.got);
                        let deadline = st.deadline;
                        self.started = None;
                        return Ok(Some(Read::Head { got, len, deadline }));
                    }
                }
            }
            // Before the route is decided, only up to the head is read.
            let want = if st.got.capacity() < len {
                FRAME_HEAD - st.got.len()
            } else {
                len - st.got.len()
            };
            let n = self
                .rd
                .read_buf(&mut (&mut st.got).limit(want))
                .await
                .map_err(|e| FrameError::Other(format!("truncated frame: {e}")))?;
            if n == 0 {
                return Err(FrameError::Other(format!(
                    "truncated frame: end of stream {} bytes before its end",
                    len - st.got.len()
                )));
            }
        }
    }
}

enum Chunk {
    Frame(Vec<u8>),
    /// Bytes arrived, but no whole frame yet.
    More,
    Eof,
}

/// A zero duration means "no limit".
pub(crate) fn nonzero(d: Duration) -> Duration {
    if d.is_zero() {
        Duration::from_secs(u64::from(u32::MAX))
    } else {
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::io;
    use std::pin::Pin;
    use std::task::{Context, Waker};

    /// A scripted socket: each read takes from the front piece (up to what the reader asks
    /// for); `Pending` is one not-ready poll, `Stall` never becomes ready; the end is EOF.
    enum Step {
        Data(Vec<u8>),
        Pending,
        Stall,
    }

    struct Script {
        steps: VecDeque<Step>,
        reads: usize,
    }

    impl Script {
        fn new(steps: impl IntoIterator<Item = Step>) -> Self {
            Script {
                steps: steps.into_iter().collect(),
                reads: 0,
            }
        }
        fn pieces(bytes: &[u8], cuts: &[usize]) -> Self {
            let mut steps = Vec::new();
            let mut from = 0;
            for &c in cuts.iter().chain([bytes.len()].iter()) {
                if c > from {
                    steps.push(Step::Data(bytes[from..c].to_vec()));
                    from = c;
                }
            }
            Script::new(steps)
        }
    }

    impl AsyncRead for Script {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let me = self.get_mut();
            match me.steps.front_mut() {
                None => Poll::Ready(Ok(())),
                Some(Step::Pending) => {
                    me.steps.pop_front();
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
                Some(Step::Stall) => Poll::Pending,
                Some(Step::Data(d)) => {
                    me.reads += 1;
                    let n = d.len().min(buf.remaining());
                    buf.put_slice(&d[..n]);
                    d.drain(..n);
                    if d.is_empty() {
                        me.steps.pop_front();
                    }
                    Poll::Ready(Ok(()))
                }
            }
        }
    }

    impl FrameSource for Script {
        fn poll_read_some(
            &mut self,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Pin::new(self).poll_read(cx, buf)
        }
    }

    const KEEPALIVE: [u8; 4] = [0x85, 0, 0, 0];
    const MAX: usize = 2 * 1024 * 1024;

    fn body(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31) ^ seed)
            .collect()
    }

    /// A connected loopback pair: the client's stream and the server side's two halves.
    async fn loopback() -> (
        tokio::net::TcpStream,
        tokio::net::tcp::OwnedReadHalf,
        tokio::net::tcp::OwnedWriteHalf,
    ) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let (rd, wr) = server.into_split();
        (client, rd, wr)
    }

    fn framed(b: &[u8]) -> Vec<u8> {
        let l = b.len();
        let mut v = vec![0, (l >> 16) as u8, (l >> 8) as u8, l as u8];
        v.extend_from_slice(b);
        v
    }

    /// Small, medium, empty and larger-than-a-read frames with keep-alives between.
    fn stream() -> (Vec<u8>, Vec<Vec<u8>>) {
        let frames = vec![
            body(68, 1),
            body(300, 2),
            Vec::new(),
            body(CHUNK + 200, 3),
            body(FRAME_HEAD + 1, 4),
        ];
        let mut bytes = KEEPALIVE.to_vec();
        for f in &frames {
            bytes.extend(framed(f));
            bytes.extend(KEEPALIVE);
        }
        (bytes, frames)
    }

    /// Reads to the end, dropping the future at every not-ready poll (the connection loop
    /// may do so), and checks the reader holds nothing afterwards.
    fn read_all(rd: Script, max: usize) -> (Result<Vec<Vec<u8>>, FrameError>, usize) {
        let mut r = FrameReader::new(rd, Duration::ZERO);
        let mut cx = Context::from_waker(Waker::noop());
        let mut out = Vec::new();
        loop {
            let polled = {
                let mut fut = std::pin::pin!(r.next(max));
                fut.as_mut().poll(&mut cx)
            };
            match polled {
                Poll::Pending => continue,
                Poll::Ready(Ok(Some(f))) => {
                    assert_eq!(f.capacity(), f.len(), "a frame gets exactly its size");
                    out.push(f)
                }
                Poll::Ready(Ok(None)) => break,
                Poll::Ready(Err(e)) => return (Err(e), r.rd.reads),
            }
        }
        assert!(
            r.held.capacity() == 0 && r.started.is_none(),
            "nothing held at the end"
        );
        (Ok(out), r.rd.reads)
    }

    fn err_text(r: Result<Vec<Vec<u8>>, FrameError>) -> String {
        match r {
            Err(FrameError::Other(s)) => s,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn frames_split_at_every_byte_boundary() {
        let (bytes, frames) = stream();
        for cut in 0..=bytes.len() {
            let (got, _) = read_all(Script::pieces(&bytes, &[cut]), MAX);
            assert_eq!(got.unwrap(), frames, "split at {cut}");
        }
        // And every byte in its own read, with not-ready polls between.
        let steps = bytes
            .iter()
            .flat_map(|&b| [Step::Data(vec![b]), Step::Pending]);
        let (got, _) = read_all(Script::new(steps), MAX);
        assert_eq!(got.unwrap(), frames);
    }

    #[test]
    fn pipelined_small_frames_take_one_read() {
        let frames: Vec<Vec<u8>> = (0..20).map(|i| body(68 + i, i as u8)).collect();
        let mut bytes = Vec::new();
        for f in &frames {
            bytes.extend(framed(f));
            bytes.extend(KEEPALIVE);
        }
        assert!(bytes.len() <= CHUNK);
        let (got, reads) = read_all(Script::pieces(&bytes, &[]), MAX);
        assert_eq!(got.unwrap(), frames);
        assert_eq!(reads, 1, "all twenty came with one read");
    }

    #[test]
    fn a_large_frame_is_read_into_its_own_buffer() {
        let big = body(1024 * 1024, 9);
        let small = body(70, 5);
        let mut bytes = framed(&small);
        bytes.extend(framed(&big));
        bytes.extend(framed(&small));
        // As a socket delivers it: 64 KiB at a time.
        let cuts: Vec<usize> = (1..bytes.len() / 65536 + 1).map(|i| i * 65536).collect();
        let (got, reads) = read_all(Script::pieces(&bytes, &cuts), MAX);
        assert_eq!(got.unwrap(), vec![small.clone(), big, small]);
        // The first read takes one chunk; the rest of the body comes in the socket's pieces
        // (the head read, the rest of the first piece, then one read per piece).
        assert!(reads <= cuts.len() + 4, "{reads} reads");
    }

    #[test]
    fn a_large_frame_waits_for_its_head_before_its_body() {
        // Only the header came with the first read: the next read asks for the head only.
        let big = body(100_000, 7);
        let bytes = framed(&big);
        let mut r = FrameReader::new(Script::pieces(&bytes, &[4, 50]), Duration::ZERO);
        let mut cx = Context::from_waker(Waker::noop());
        let mut steps = 0;
        let frame = loop {
            steps += 1;
            let mut fut = std::pin::pin!(r.next(MAX));
            if let Poll::Ready(f) = fut.as_mut().poll(&mut cx) {
                break f.unwrap().unwrap();
            }
        };
        assert_eq!(frame, big);
        assert_eq!(steps, 1);
        // header, 46 bytes, the head's remaining 66, then the body in one read.
        assert_eq!(r.rd.reads, 4);
    }

    #[test]
    fn a_routed_frame_leaves_its_body_on_the_socket() {
        // A small frame, then a large one whose head arrives with a few body bytes: the
        // route sees the length and the bytes in hand, and the body's rest stays unread.
        let small = body(40, 1);
        let big = body(100_000, 7);
        let mut bytes = framed(&small);
        let first_big = bytes.len();
        bytes.extend_from_slice(&framed(&big));
        let cut = first_big + 4 + FRAME_HEAD + 20;
        let mut r = FrameReader::new(Script::pieces(&bytes, &[cut]), Duration::ZERO);
        let mut cx = Context::from_waker(Waker::noop());
        let seen = std::sync::Mutex::new(Vec::new());
        let route = |len: usize, got: &[u8]| {
            seen.lock().unwrap().push((len, got.len()));
            true
        };
        let mut next = || loop {
            let mut fut = std::pin::pin!(r.next_routed(MAX, &route));
            if let Poll::Ready(f) = fut.as_mut().poll(&mut cx) {
                break f.unwrap().unwrap();
            }
        };
        match next() {
            Read::Frame(f) => assert_eq!(f, small),
            Read::Head { .. } => panic!("a small frame is never routed"),
        }
        match next() {
            Read::Head { got, len, .. } => {
                assert_eq!(len, big.len());
                assert_eq!(got, big[..FRAME_HEAD + 20]);
            }
            Read::Frame(_) => panic!("the routed frame was read whole"),
        }
        assert_eq!(*seen.lock().unwrap(), [(big.len(), FRAME_HEAD + 20)]);
        assert!(
            r.started.is_none() && r.held.is_empty(),
            "nothing kept of it"
        );
        // Exactly the body's rest is left on the socket.
        let rest: usize =
            r.rd.steps
                .iter()
                .map(|s| match s {
                    Step::Data(d) => d.len(),
                    _ => 0,
                })
                .sum();
        assert_eq!(rest, big.len() - FRAME_HEAD - 20);
    }

    #[test]
    fn end_of_stream_clean_or_mid_frame() {
        let (got, _) = read_all(Script::new([]), MAX);
        assert!(got.unwrap().is_empty());
        let (got, _) = read_all(Script::pieces(&KEEPALIVE, &[]), MAX);
        assert!(got.unwrap().is_empty());

        let f = framed(&body(100, 1));
        let e = err_text(read_all(Script::pieces(&f[..2], &[]), MAX).0);
        assert!(e.starts_with("truncated frame header"), "{e}");
        let e = err_text(read_all(Script::pieces(&f[..60], &[]), MAX).0);
        assert_eq!(e, "truncated frame: end of stream 44 bytes before its end");
        let big = framed(&body(50_000, 1));
        let e = err_text(read_all(Script::pieces(&big[..20_000], &[10]), MAX).0);
        assert_eq!(
            e,
            "truncated frame: end of stream 30004 bytes before its end"
        );
    }

    #[test]
    fn lengths_over_the_cap_and_bad_types_are_refused() {
        let f = framed(&body(5000, 1));
        let e = err_text(read_all(Script::pieces(&f, &[]), 4096).0);
        assert!(e.starts_with("bad frame:"), "{e}");
        // The cap is the one given when that frame's header is read.
        let (got, _) = read_all(Script::pieces(&f, &[]), 5000);
        assert_eq!(got.unwrap().len(), 1);
        let e = err_text(read_all(Script::pieces(&[0x81, 0, 0, 0], &[]), MAX).0);
        assert!(e.starts_with("bad frame:"), "{e}");
        let e = err_text(read_all(Script::pieces(&[0x85, 0, 0, 1], &[2]), MAX).0);
        assert!(e.starts_with("bad frame:"), "{e}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_started_frame_must_finish_by_its_deadline() {
        let timeout = Duration::from_secs(2);
        let f = framed(&body(100, 1));
        for cut in [1, 4, 50] {
            let rd = Script::new([Step::Data(f[..cut].to_vec()), Step::Stall]);
            let mut r = FrameReader::new(rd, timeout);
            let t0 = Instant::now();
            match r.next(MAX).await {
                Err(FrameError::Deadline(d)) => assert_eq!(d, timeout),
                other => panic!("{other:?}"),
            }
            assert!(t0.elapsed() >= timeout);
        }
        // A connection with no frame started waits as long as it likes.
        let mut r = FrameReader::new(Script::new([Step::Stall]), timeout);
        let idle = tokio::time::timeout(timeout * 100, r.next(MAX)).await;
        assert!(idle.is_err(), "an idle connection has no read deadline");
        // The deadline runs from the frame's start, across calls that were dropped.
        let rd = Script::new([Step::Data(f[..10].to_vec()), Step::Stall]);
        let mut r = FrameReader::new(rd, timeout);
        assert!(
            tokio::time::timeout(timeout / 2, r.next(MAX))
                .await
                .is_err()
        );
        let t0 = Instant::now();
        assert!(matches!(r.next(MAX).await, Err(FrameError::Deadline(_))));
        assert!(t0.elapsed() <= timeout / 2 + Duration::from_millis(10));
    }

    /// An SMB2 request of `cmd` (64-byte header and a few body bytes), chained when
    /// `next_command` is not 0.
    fn smb2(cmd: Command, next_command: u32) -> Vec<u8> {
        let mut m = vec![0u8; 72];
        m[..4].copy_from_slice(b"\xfeSMB");
        m[4] = 64;
        m[12..14].copy_from_slice(&cmd.0.to_le_bytes());
        m[20..24].copy_from_slice(&next_command.to_le_bytes());
        m
    }

    #[test]
    fn setup_requests_alone_await_their_answer() {
        for cmd in [
            Command::NEGOTIATE,
            Command::SESSION_SETUP,
            Command::TREE_CONNECT,
        ] {
            let f = framed(&smb2(cmd, 0));
            assert!(awaits_answer(&f), "{cmd:?}");
            // Not when more came with it, when it is cut short, or when it is chained.
            let mut two = f.clone();
            two.extend(framed(&smb2(Command::ECHO, 0)));
            assert!(!awaits_answer(&two), "{cmd:?} and another");
            assert!(!awaits_answer(&f[..f.len() - 1]), "{cmd:?} in part");
            assert!(!awaits_answer(&framed(&smb2(cmd, 72))), "{cmd:?} chained");
        }
        for cmd in [
            Command::ECHO,
            Command::READ,
            Command::WRITE,
            Command::CREATE,
            Command::LOGOFF,
        ] {
            assert!(!awaits_answer(&framed(&smb2(cmd, 0))), "{cmd:?}");
        }
        let mut smb1 = b"\xffSMB\x72".to_vec();
        smb1.resize(40, 0);
        assert!(awaits_answer(&framed(&smb1)));
        assert!(!awaits_answer(&KEEPALIVE));
        assert!(!awaits_answer(&[]));
        assert!(
            !awaits_answer(&framed(b"\xfeSMB")),
            "a header too short to read"
        );
    }

    /// On a real socket: after a setup request read alone, the socket is taken for drained
    /// (no further `recv` until the I/O driver reports more), and what the client sends next
    /// is still read; after any other request the reader tries the socket again first.
    #[tokio::test]
    async fn a_setup_request_read_alone_drains_the_socket() {
        let (mut client, rd, _wr) = loopback().await;
        let mut reader = FrameReader::new(Socket::new(rd), Duration::ZERO);
        let limit = Duration::from_secs(60);
        let ready_now = |rd: &Socket| {
            let mut cx = Context::from_waker(Waker::noop());
            rd.as_ref().poll_read_ready(&mut cx).is_ready()
        };
        for (cmd, drained) in [
            (Command::NEGOTIATE, true),
            (Command::ECHO, false),
            (Command::SESSION_SETUP, true),
            (Command::READ, false),
            (Command::TREE_CONNECT, true),
        ] {
            use tokio::io::AsyncWriteExt;
            let frame = smb2(cmd, 0);
            client.write_all(&framed(&frame)).await.unwrap();
            let got = tokio::time::timeout(limit, reader.next(MAX))
                .await
                .expect("the next request is read")
                .unwrap()
                .unwrap();
            assert_eq!(got, frame);
            assert_eq!(ready_now(reader.inner()), !drained, "{cmd:?}");
        }
    }

    /// A client that sends each request only after the last was taken (as smb2.bench.echo
    /// does): once trying again after a short read has found nothing twice, short reads count
    /// as "drained", and frames still arrive, one at a time and pipelined, none lost.
    #[tokio::test]
    async fn a_lockstep_client_makes_short_reads_count_as_drained() {
        use tokio::io::AsyncWriteExt;
        let (mut client, rd, _wr) = loopback().await;
        let mut r = FrameReader::new(Socket::new(rd), Duration::from_secs(60));
        let long = Duration::from_secs(60);
        let mut sent = 0u8;
        let mut next = async |r: &mut FrameReader<Socket>, client: &mut tokio::net::TcpStream| {
            sent += 1;
            let b = body(60 + usize::from(sent), sent);
            client.write_all(&framed(&b)).await.unwrap();
            let got = tokio::time::timeout(long, r.next(MAX)).await;
            assert_eq!(got.unwrap().unwrap().unwrap(), b);
        };
        for _ in 0..2 {
            assert_eq!(r.inner().drained_run, 0);
            next(&mut r, &mut client).await;
            assert!(
                r.inner().kept,
                "a short read leaves the socket to be tried again"
            );
            // Nothing sent yet: the try finds nothing (a miss), and the read waits.
            let idle = tokio::time::timeout(Duration::from_millis(5), r.next(MAX)).await;
            assert!(idle.is_err());
        }
        assert!(r.inner().drained_run > 0, "two misses in a row");
        for _ in 0..3 {
            next(&mut r, &mut client).await;
            assert!(!r.inner().kept, "a short read now counts as drained");
        }
        // Several frames in one write, then one more: every one is read, in order.
        let bodies: Vec<Vec<u8>> = (0..4).map(|i| body(200 + i, i as u8)).collect();
        let mut burst = Vec::new();
        for b in &bodies[..3] {
            burst.extend(framed(b));
        }
        client.write_all(&burst).await.unwrap();
        for b in &bodies[..3] {
            let got = tokio::time::timeout(long, r.next(MAX)).await;
            assert_eq!(&got.unwrap().unwrap().unwrap(), b);
        }
        client.write_all(&framed(&bodies[3])).await.unwrap();
        let got = tokio::time::timeout(long, r.next(MAX)).await;
        assert_eq!(got.unwrap().unwrap().unwrap(), bodies[3]);
        // The run ends, and the client's pattern is tried anew.
        for _ in 0..DRAINED_RUN {
            next(&mut r, &mut client).await;
        }
        assert_eq!(r.inner().drained_run, 0);
        drop(client);
        let end = tokio::time::timeout(long, r.next(MAX)).await;
        assert!(end.unwrap().unwrap().is_none());
    }

    /// A worker stays awake through idle spells that end with a request within [`SPIN_FOR`];
    /// spells that run out cost credit, and once it is gone the next [`SPIN_REST`] spells
    /// sleep at once before one more try.
    #[test]
    fn a_worker_stays_awake_only_while_requests_come_in_time() {
        let us = Duration::from_micros;
        let mut t = std::time::Instant::now();
        let mut a = Awake::START;
        // Requests that come within the spell: awake each time, the credit grows to its cap.
        for _ in 0..20 {
            assert!(a.empty_at(t));
            assert!(a.empty_at(t + SPIN_FOR / 2), "still within the spell");
            a.busy();
            t += us(100);
        }
        assert_eq!(a.credit, SPIN_CREDIT_MAX);
        // Spells that run out: each costs two credits; awake until none is left.
        let mut misses = 0;
        while a.rest == 0 {
            assert!(a.empty_at(t), "spell {misses} starts awake");
            assert!(!a.empty_at(t + SPIN_FOR), "and runs out");
            assert!(!a.empty_at(t + SPIN_FOR * 2), "for the rest of the spell");
            a.busy();
            misses += 1;
            t += us(1000);
        }
        assert_eq!(misses, SPIN_CREDIT_MAX / 2);
        // Resting: every spell sleeps at once, whatever comes.
        for _ in 0..SPIN_REST {
            assert!(!a.empty_at(t));
            a.busy();
            t += us(100);
        }
        // Then one try: a miss rests again...
        assert!(a.empty_at(t));
        assert!(!a.empty_at(t + SPIN_FOR));
        a.busy();
        assert_eq!(a.rest, SPIN_REST);
        for _ in 0..SPIN_REST {
            assert!(!a.empty_at(t));
            a.busy();
        }
        // ...and a request in time earns the credit back.
        assert!(a.empty_at(t));
        a.busy();
        assert!(a.empty_at(t));
        assert!(a.empty_at(t + SPIN_FOR - us(1)));
        a.busy();
        assert_eq!(a.credit, 3);
    }

    /// With the worker kept awake between requests, every frame of a client that answers at
    /// once still arrives in order, and a request that comes long after the spell ran out is
    /// read too (the wait fell back to the I/O driver's wake-up).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn frames_arrive_while_the_worker_stays_awake_and_after() {
        use tokio::io::AsyncWriteExt;
        let (mut client, rd, _wr) = loopback().await;
        let mut r = FrameReader::new(Socket::new(rd), Duration::from_secs(60));
        let long = Duration::from_secs(60);
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(1);
        let sender = tokio::spawn(async move {
            for i in 0..300u16 {
                let b = body(60 + usize::from(i % 200), i as u8);
                client.write_all(&framed(&b)).await.unwrap();
                // The next request once this one was taken (lockstep), or later.
                if rx.recv().await.is_none() {
                    break;
                }
                if i % 100 == 99 {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            client
        });
        for i in 0..300u16 {
            let got = tokio::time::timeout(long, r.next(MAX)).await;
            let b = body(60 + usize::from(i % 200), i as u8);
            assert_eq!(got.unwrap().unwrap().unwrap(), b, "frame {i}");
            tx.send(Vec::new()).await.unwrap();
        }
        let client = tokio::time::timeout(long, sender).await.unwrap().unwrap();
        drop(client);
        let end = tokio::time::timeout(long, r.next(MAX)).await;
        assert!(end.unwrap().unwrap().is_none());
    }
}
