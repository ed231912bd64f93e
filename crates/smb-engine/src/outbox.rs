//! The response path of one connection: messages go to the socket from the task that built
//! them whenever nothing is ahead of them, and through a queue and a writer task otherwise.
//!
//! [MS-SMB2] 3.3.4.1 (sending any outgoing message), 2.1 (the Direct TCP frame).
//!
//! Handing every response to a writer task cost a cross-thread wake-up and a task switch per
//! reply, which dominated small-request profiles (smb2.bench.echo). Here the task that
//! finished a request writes it itself (non-blocking) when the socket is free: the common
//! case is one `writev` from where the reply was built. The socket has one owner at a time
//! (`Owner`), so messages never interleave: while a direct write or the writer task owns it,
//! new messages queue behind, and when a direct write cannot finish (the socket buffer is
//! full), its remainder goes first in the queue and the writer task takes over. Messages
//! from one task keep their order (an interim response before its final one): a message is
//! written directly only when the queue is empty and nobody owns the socket.
//!
//! A message may end with a range of a file ([`FileTail`]): READ data sent with
//! `sendfile`, without passing through user space.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::os::fd::AsFd;
use std::sync::{Arc, Mutex};

use lanshare_vfs::VfsHandle;
use tokio::io::Interest;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::Notify;

use crate::session::lock;

/// Messages queued before a sender waits (back-pressure on a client that stops reading).
const QUEUE_CAP: usize = 64;
/// Unsolicited messages (oplock breaks) are queued without waiting, up to this many.
const QUEUE_HARD_CAP: usize = 4 * QUEUE_CAP;
/// Messages the writer task takes from the queue for one vectored write.
const MAX_BATCH: usize = 32;
/// Slices handed to one writev (Linux refuses more than 1,024).
const MAX_IOVECS: usize = 512;

/// File data that follows a message's bytes on the wire.
pub(crate) struct FileTail {
    pub handle: Arc<dyn VfsHandle>,
    pub offset: u64,
    pub len: usize,
}

/// One NetBIOS session message ([MS-SMB2] 2.1) and how much of it is on the wire already.
pub(crate) struct OutMsg {
    nb: [u8; 4],
    parts: Vec<Vec<u8>>,
    file: Option<FileTail>,
    /// Bytes of `nb` + `parts` written.
    sent: usize,
    /// Bytes of `file` written.
    file_sent: usize,
}

impl OutMsg {
    pub(crate) fn new(parts: Vec<Vec<u8>>, file: Option<FileTail>) -> Self {
        let len = parts.iter().map(Vec::len).sum::<usize>() + file.as_ref().map_or(0, |f| f.len);
        let mut nb = [0u8; 4];
        smb_wire::netbios::write_frame_header(len, &mut nb);
        OutMsg {
            nb,
            parts,
            file,
            sent: 0,
            file_sent: 0,
        }
    }

    fn byte_len(&self) -> usize {
        4 + self.parts.iter().map(Vec::len).sum::<usize>()
    }

    fn file_left(&self) -> usize {
        self.file.as_ref().map_or(0, |f| f.len - self.file_sent)
    }

    /// The unwritten bytes (not the file tail), appended to `out`.
    fn slices<'a>(&'a self, out: &mut Vec<IoSlice<'a>>) {
        let mut skip = self.sent;
        let all = std::iter::once(&self.nb[..]).chain(self.parts.iter().map(Vec::as_slice));
        for p in all {
            if out.len() >= MAX_IOVECS {
                return;
            }
            if skip >= p.len() {
                skip -= p.len();
                continue;
            }
            out.push(IoSlice::new(&p[skip..]));
            skip = 0;
        }
    }

    /// Reads the rest of the file tail into the message (no socket-side file transfer:
    /// the channel sink of tests, or a store that cannot send).
    #[cfg(any(test, feature = "fuzzing"))]
    fn into_parts(mut self) -> Vec<Vec<u8>> {
        if let Some(f) = self.file.take() {
            let mut buf = Vec::with_capacity(f.len);
            let n = f.handle.read_append(&mut buf, f.len, f.offset).unwrap_or(0);
            // A file that shrank reads as zeros past its end, as on the socket path.
            buf.resize(f.len.max(n), 0);
            self.parts.push(buf);
        }
        std::mem::take(&mut self.parts)
    }
}

impl Drop for OutMsg {
    /// Written out (or abandoned with its connection): large parts, READ data, go back to
    /// the buffer pool for the next READ of the same size.
    fn drop(&mut self) {
        for part in self.parts.drain(..) {
            crate::bufpool::give(part);
        }
    }
}

/// Where responses go.
pub(crate) enum Outbox {
    Socket(Arc<SocketOut>),
    /// Tests and fuzzing: every message as its parts, without the NetBIOS header.
    #[cfg(any(test, feature = "fuzzing"))]
    Channel(tokio::sync::mpsc::Sender<Vec<Vec<u8>>>),
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Owner {
    None,
    /// A task writing its own message.
    Direct,
    /// The writer task, working through the queue.
    Writer,
}

struct State {
    owner: Owner,
    /// Never non-empty while `owner` is `None`.
    queue: VecDeque<OutMsg>,
    /// A write failed: the connection is going.
    failed: bool,
    /// The connection ended: the writer task finishes the queue and stops.
    closed: bool,
    /// The writer task, started the first time a message has to wait (most connections never
    /// fill their socket's buffer: a task per connection from the start cost a spawn and a
    /// first poll per connection set up, and its memory for every idle one).
    writer_started: bool,
    /// Its handle, until `close` hands it out to be waited for.
    writer: Option<tokio::task::JoinHandle<()>>,
}

pub(crate) struct SocketOut {
    sock: OwnedWriteHalf,
    /// Where the writer task is started (senders may run outside the runtime's threads).
    runtime: tokio::runtime::Handle,
    state: Mutex<State>,
    /// The writer task was handed the socket, or the connection closed.
    wake: Notify,
    /// The queue shrank.
    room: Notify,
}

const GONE: &str = "writer gone";

impl Outbox {
    /// An outbox on `sock` and its writer task (which ends after [`Outbox::close`]).
    /// Must be called within a tokio runtime, which then runs the writer task when one is
    /// needed.
    pub(crate) fn socket(sock: OwnedWriteHalf) -> Outbox {
        Outbox::Socket(Arc::new(SocketOut {
            sock,
            runtime: tokio::runtime::Handle::current(),
            state: Mutex::new(State {
                owner: Owner::None,
                queue: VecDeque::new(),
                failed: false,
                closed: false,
                writer_started: false,
                writer: None,
            }),
            wake: Notify::new(),
            room: Notify::new(),
        }))
    }

    /// Whether messages may carry a [`FileTail`] sent by the kernel.
    pub(crate) fn sends_files(&self) -> bool {
        matches!(self, Outbox::Socket(_))
    }

    /// Sends one message, waiting only while the queue is full.
    pub(crate) async fn send(&self, msg: OutMsg) -> Result<(), String> {
        match self {
            Outbox::Socket(s) => s.send(msg).await,
            #[cfg(any(test, feature = "fuzzing"))]
            Outbox::Channel(tx) => tx.send(msg.into_parts()).await.map_err(|_| GONE.into()),
        }
    }

    /// Sends one message without waiting (callers may hold locks): written now, or queued
    /// even beyond the usual bound; dropped only when a client has left hundreds unread.
    pub(crate) fn send_now(&self, msg: OutMsg) {
        match self {
            Outbox::Socket(s) => {
                if let Placed::Done(Err(e)) = s.place(msg, true) {
                    tracing::debug!("unsolicited message not sent: {e}");
                }
            }
            #[cfg(any(test, feature = "fuzzing"))]
            Outbox::Channel(tx) => {
                if let Err(tokio::sync::mpsc::error::TrySendError::Full(parts)) =
                    tx.try_send(msg.into_parts())
                {
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        let _ = tx.send(parts).await;
                    });
                }
            }
        }
    }

    /// The connection ended: the writer task, if there is one, sends what is queued, then
    /// stops; it is returned to be waited for. Nothing is sent after this.
    pub(crate) fn close(&self) -> Option<tokio::task::JoinHandle<()>> {
        match self {
            Outbox::Socket(s) => {
                let writer = {
                    let mut st = lock(&s.state);
                    st.closed = true;
                    st.writer.take()
                };
                s.wake.notify_one();
                writer
            }
            #[cfg(any(test, feature = "fuzzing"))]
            Outbox::Channel(_) => None,
        }
    }
}

/// What became of a message handed to [`SocketOut::place`].
enum Placed {
    Done(Result<(), String>),
    /// The queue is full: wait for room and try again.
    Full(OutMsg),
}

impl SocketOut {
    async fn send(self: &Arc<Self>, mut msg: OutMsg) -> Result<(), String> {
        loop {
            let room = self.room.notified();
            let mut room = std::pin::pin!(room);
            // Registered before the state is looked at, so that no shrink is missed.
            room.as_mut().enable();
            match self.place(msg, false) {
                Placed::Done(r) => return r,
                Placed::Full(m) => msg = m,
            }
            room.await;
        }
    }

    /// Hands the socket to the writer task, starting it if this is the first time. Called
    /// with the state locked, so that it is started once. Started even after `close` (a
    /// direct write that `close` overtook left a rest): it sends the queue and stops.
    fn hand_to_writer(self: &Arc<Self>, st: &mut State) {
        st.owner = Owner::Writer;
        if !st.writer_started {
            st.writer_started = true;
            st.writer = Some(self.runtime.spawn(write_loop(self.clone())));
        }
    }

    /// Writes `msg` now when the socket is free, else queues it (`force`: even when the
    /// queue is full). Never waits.
    fn place(self: &Arc<Self>, mut msg: OutMsg, force: bool) -> Placed {
        {
            let mut st = lock(&self.state);
            if st.failed || st.closed {
                return Placed::Done(Err(GONE.into()));
            }
            if st.owner != Owner::None {
                if force && st.queue.len() >= QUEUE_HARD_CAP {
                    tracing::debug!("client left {QUEUE_HARD_CAP} messages unread: one dropped");
                    return Placed::Done(Ok(()));
                }
                if force || st.queue.len() < QUEUE_CAP {
                    st.queue.push_back(msg);
                    return Placed::Done(Ok(()));
                }
                return Placed::Full(msg);
            }
            st.owner = Owner::Direct;
        }
        // The socket is ours: write what it takes now.
        let r = push_some(&self.sock, std::slice::from_mut(&mut msg));
        let mut st = lock(&self.state);
        match r {
            Err(e) => {
                st.failed = true;
                drop(st);
                self.room.notify_waiters();
                self.wake.notify_one();
                Placed::Done(Err(format!("write error: {e}")))
            }
            Ok(done) => {
                if done == 0 {
                    // Its rest goes before everything queued since.
                    st.queue.push_front(msg);
                }
                let hand_over = !st.queue.is_empty();
                if hand_over {
                    self.hand_to_writer(&mut st);
                } else {
                    st.owner = Owner::None;
                }
                let closed = st.closed;
                drop(st);
                if hand_over || closed {
                    self.wake.notify_one();
                }
                Placed::Done(Ok(()))
            }
        }
    }
}

/// Writes as much of `msgs`, in order, as the socket takes without waiting; returns how many
/// messages are complete (the next one may be partly written). A file tail that ends early (the
/// file shrank after the length was promised) is completed with zeros: the frame length is on
/// the wire already.
fn push_some(sock: &OwnedWriteHalf, msgs: &mut [OutMsg]) -> io::Result<usize> {
    let mut done = 0;
    while done < msgs.len() {
        let m = &mut msgs[done];
        if m.sent == m.byte_len() {
            let left = m.file_left();
            if left == 0 {
                done += 1;
                continue;
            }
            let Some(f) = m.file.as_ref() else {
                done += 1;
                continue;
            };
            let at = f.offset + m.file_sent as u64;
            let handle = f.handle.clone();
            let r = sock.as_ref().try_io(Interest::WRITABLE, || {
                match handle.send_to(sock.as_ref().as_fd(), at, left) {
                    Some(Ok(n)) => Ok(n),
                    Some(Err(e)) => Err(e),
                    None => Ok(0),
                }
            });
            match r {
                Ok(0) => {
                    // End of file before the promised length (or no kernel transfer): the
                    // rest as zeros.
                    tracing::debug!(left, "file ended before the READ length sent: zero-filled");
                    m.file = None;
                    m.parts.push(vec![0u8; left]);
                }
                Ok(n) => m.file_sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(done),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
            continue;
        }
        // The bytes of this message and of the ones after it, up to the first with a file.
        let mut n = {
            let view: &[OutMsg] = &msgs[done..];
            let mut iov: Vec<IoSlice<'_>> = Vec::new();
            for m in view {
                m.slices(&mut iov);
                if m.file.is_some() || iov.len() >= MAX_IOVECS {
                    break;
                }
            }
            match sock.try_write_vectored(&iov) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(done),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => 0,
                Err(e) => return Err(e),
            }
        };
        for m in &mut msgs[done..] {
            let rest = m.byte_len() - m.sent;
            if n < rest {
                m.sent += n;
                break;
            }
            m.sent += rest;
            n -= rest;
            if m.file_left() > 0 {
                break;
            }
            done += 1;
            if n == 0 {
                break;
            }
        }
    }
    Ok(done)
}

/// Works through the queue whenever a direct write hands the socket over.
async fn write_loop(out: Arc<SocketOut>) {
    let mut batch: VecDeque<OutMsg> = VecDeque::new();
    loop {
        // Wait to be handed the socket.
        loop {
            let woken = out.wake.notified();
            let mut woken = std::pin::pin!(woken);
            woken.as_mut().enable();
            {
                let st = lock(&out.state);
                if st.failed {
                    return;
                }
                if st.owner == Owner::Writer {
                    break;
                }
                if st.closed && st.owner == Owner::None {
                    return;
                }
            }
            woken.await;
        }
        loop {
            {
                let mut st = lock(&out.state);
                if st.queue.is_empty() {
                    st.owner = Owner::None;
                    break;
                }
                let take = st.queue.len().min(MAX_BATCH);
                batch.extend(st.queue.drain(..take));
            }
            out.room.notify_waiters();
            while !batch.is_empty() {
                match push_some(&out.sock, batch.make_contiguous()) {
                    Ok(k) => {
                        batch.drain(..k);
                    }
                    Err(e) => {
                        tracing::debug!("write error: {e}");
                        lock(&out.state).failed = true;
                        out.room.notify_waiters();
                        return;
                    }
                }
                if !batch.is_empty() && out.sock.writable().await.is_err() {
                    lock(&out.state).failed = true;
                    out.room.notify_waiters();
                    return;
                }
            }
            if batch.capacity() > MAX_BATCH {
                batch = VecDeque::new();
            }
        }
        out.room.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lanshare_vfs::{LocalFs, OpenOptions, Vfs, VfsPath};
    use tokio::io::AsyncReadExt;
    use tokio::net::{TcpListener, TcpStream};

    /// A connected pair with a small send buffer, so that writes are short and block often.
    /// (A tiny receive window as well would make loopback TCP crawl on delayed ACKs.)
    async fn pair() -> (OwnedWriteHalf, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (s, _) = l.accept().await.unwrap();
        socket2::SockRef::from(&s)
            .set_send_buffer_size(16 * 1024)
            .unwrap();
        let (_, w) = s.into_split();
        (w, c)
    }

    fn file(dir: &std::path::Path, data: &[u8]) -> Arc<dyn VfsHandle> {
        std::fs::write(dir.join("f"), data).unwrap();
        let fs = LocalFs::new(dir).unwrap();
        let (h, _) = fs
            .open(&VfsPath::parse("f").unwrap(), &OpenOptions::read())
            .unwrap();
        Arc::from(h)
    }

    async fn read_frame(c: &mut TcpStream) -> Vec<u8> {
        let mut nb = [0u8; 4];
        c.read_exact(&mut nb).await.unwrap();
        assert_eq!(nb[0], 0);
        let len = u32::from_be_bytes([0, nb[1], nb[2], nb[3]]) as usize;
        let mut buf = vec![0u8; len];
        c.read_exact(&mut buf).await.unwrap();
        buf
    }

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    /// Many tasks sending at once through a socket that takes a few KiB at a time: every
    /// message arrives whole, each task's in its order, and file tails carry the file.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn short_sends_keep_messages_whole_and_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let content = data(300_000);
        let h = file(dir.path(), &content);
        let (w, mut c) = pair().await;
        let out = Outbox::socket(w);
        let out = Arc::new(out);
        const TASKS: u8 = 6;
        const EACH: u16 = 40;
        let mut senders = Vec::new();
        for t in 0..TASKS {
            let out = out.clone();
            let h = h.clone();
            senders.push(tokio::spawn(async move {
                for seq in 0..EACH {
                    let head = vec![t, (seq >> 8) as u8, seq as u8];
                    let msg = if seq % 10 == 3 {
                        // Header bytes, then 100,000 bytes of the file from an odd offset.
                        OutMsg::new(
                            vec![head, vec![0xAB; 61]],
                            Some(FileTail {
                                handle: h.clone(),
                                offset: 12_345,
                                len: 100_000,
                            }),
                        )
                    } else {
                        // Several parts, one of them empty, some large.
                        let big = vec![t; usize::from(seq) * 997];
                        OutMsg::new(vec![head, Vec::new(), big], None)
                    };
                    out.send(msg).await.unwrap();
                }
            }));
        }
        let mut next = [0u16; TASKS as usize];
        for _ in 0..u32::from(TASKS) * u32::from(EACH) {
            let f = read_frame(&mut c).await;
            let (t, seq) = (f[0], u16::from_be_bytes([f[1], f[2]]));
            assert_eq!(seq, next[usize::from(t)], "task {t}: out of order");
            next[usize::from(t)] += 1;
            if seq % 10 == 3 {
                assert_eq!(f.len(), 3 + 61 + 100_000);
                assert!(f[3..64].iter().all(|b| *b == 0xAB));
                assert!(f[64..] == content[12_345..112_345], "file tail differs");
            } else {
                assert_eq!(f.len(), 3 + usize::from(seq) * 997);
                assert!(f[3..].iter().all(|b| *b == t));
            }
        }
        for s in senders {
            s.await.unwrap();
        }
        let writer = out.close().expect("short sends needed the writer task");
        tokio::time::timeout(std::time::Duration::from_secs(60), writer)
            .await
            .unwrap()
            .unwrap();
    }

    /// A file that is shorter than the length already announced: the rest goes out as zeros
    /// and the next message follows intact.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shrunk_file_is_completed_with_zeros() {
        let dir = tempfile::tempdir().unwrap();
        let content = data(70_000);
        let h = file(dir.path(), &content);
        let (w, mut c) = pair().await;
        let out = Outbox::socket(w);
        let reader = tokio::spawn(async move {
            let a = read_frame(&mut c).await;
            let b = read_frame(&mut c).await;
            (a, b)
        });
        out.send(OutMsg::new(
            vec![vec![1, 2, 3]],
            Some(FileTail {
                handle: h,
                offset: 1_000,
                len: 150_000,
            }),
        ))
        .await
        .unwrap();
        out.send(OutMsg::new(vec![vec![9; 10]], None))
            .await
            .unwrap();
        let (a, b) = tokio::time::timeout(std::time::Duration::from_secs(60), reader)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(a.len(), 3 + 150_000);
        assert_eq!(a[..3], [1, 2, 3]);
        assert!(a[3..3 + 69_000] == content[1_000..], "file part differs");
        assert!(a[3 + 69_000..].iter().all(|b| *b == 0), "not zero-filled");
        assert_eq!(b, vec![9; 10]);
        if let Some(writer) = out.close() {
            writer.await.unwrap();
        }
    }

    /// A connection whose replies always fit the socket never starts a writer task.
    #[tokio::test]
    async fn no_writer_task_until_a_message_waits() {
        let (w, mut c) = pair().await;
        let out = Outbox::socket(w);
        for i in 0..20u8 {
            out.send(OutMsg::new(vec![vec![i; 100]], None))
                .await
                .unwrap();
            assert_eq!(read_frame(&mut c).await, vec![i; 100]);
        }
        assert!(out.close().is_none(), "a writer task was started");
    }
}
