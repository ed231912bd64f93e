//! Large WRITE data moved from the socket into the file by the kernel (`splice` through a
//! pipe), without a user-space buffer: one copy (pipe pages into the file's pages) instead of
//! two (socket into a buffer, buffer into the file), and no 1 MiB allocation per request.
//!
//! Only for a WRITE that is alone in its frame, neither signed nor encrypted, whose data
//! directly follows its fixed part, to a file whose store takes it without waiting for a
//! disk (tmpfs: [`lanshare_vfs::VfsHandle::splice_target`]). The connection reads the frame's
//! first [`HEAD_LEN`] bytes, and the WRITE handler then takes the data from the socket
//! ([`SocketBody`]) after every check it makes on a buffered WRITE; whatever is not taken is
//! read and discarded before the response, so the connection's framing holds.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::BufMut;
use lanshare_vfs::{VfsError, VfsHandle};
use rustix::pipe::{PipeFlags, SpliceFlags};
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::session::lock;

/// The SMB2 header and the WRITE request's fixed part: what is read before deciding.
pub(crate) const HEAD_LEN: usize = 64 + 48;

/// Smallest WRITE data spliced: below it the two extra syscalls per request cost more than
/// the copy they save.
pub(crate) const MIN_BODY: usize = 64 * 1024;

/// A pipe takes a whole 1 MiB WRITE where the system allows (`fs.pipe-max-size`).
const PIPE_SIZE: usize = 1024 * 1024;

/// Idle pipes kept for the next spliced WRITE; more are closed when returned. A pipe holds
/// no data pages while empty, so the kept ones cost a few KiB each.
const MAX_IDLE_PIPES: usize = 4;

/// Whether the first [`HEAD_LEN`] bytes of a frame of `frame_len` bytes are a WRITE that may
/// take its data from the socket: SMB2, WRITE, not signed, not a response, not related or
/// async,
/// alone (NextCommand 0), no channel info, DataOffset right after the fixed part and Length
/// the rest of the frame, at least [`MIN_BODY`]. Every other check is the handler's.
pub(crate) fn is_plain_large_write(head: &[u8; HEAD_LEN], frame_len: usize) -> bool {
    let u16_at = |i: usize| u16::from_le_bytes([head[i], head[i + 1]]);
    let u32_at = |i: usize| u32::from_le_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
    let flags = u32_at(16);
    let plain = smb_wire::HeaderFlags::SIGNED.0
        | smb_wire::HeaderFlags::SERVER_TO_REDIR.0
        | smb_wire::HeaderFlags::RELATED_OPERATIONS.0
        | smb_wire::HeaderFlags::ASYNC_COMMAND.0;
    let Some(body) = frame_len.checked_sub(HEAD_LEN) else {
        return false;
    };
    head[..4] == [0xFE, b'S', b'M', b'B']
        && u16_at(12) == smb_wire::Command::WRITE.0
        && flags & plain == 0
        && u32_at(20) == 0
        && u16_at(64) == smb_wire::msg::write::WriteRequest::STRUCTURE_SIZE
        && usize::from(u16_at(66)) == HEAD_LEN
        && u32_at(68) as usize == body
        && u16_at(64 + 42) == 0
        && body >= MIN_BODY
}

struct Pipe {
    rd: OwnedFd,
    wr: OwnedFd,
    cap: usize,
}

impl Pipe {
    fn new() -> std::io::Result<Pipe> {
        let (rd, wr) = rustix::pipe::pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK)?;
        let cap = match rustix::pipe::fcntl_setpipe_size(&wr, PIPE_SIZE) {
            Ok(n) => n,
            // Above fs.pipe-max-size for an unprivileged server: keep what it has.
            Err(_) => rustix::pipe::fcntl_getpipe_size(&wr)?,
        };
        Ok(Pipe { rd, wr, cap })
    }
}

/// Pipes shared by the whole server: a connection holds one only while it splices a WRITE,
/// so an idle connection holds none.
#[derive(Default)]
pub(crate) struct PipePool {
    idle: Mutex<Vec<Pipe>>,
}

impl PipePool {
    fn take(&self) -> Option<PooledPipe<'_>> {
        let pipe = lock(&self.idle).pop();
        let pipe = match pipe {
            Some(p) => p,
            None => Pipe::new().ok()?,
        };
        Some(PooledPipe {
            pool: self,
            pipe: Some(pipe),
            empty: true,
        })
    }
}

/// A pipe on loan; back to the pool when dropped, unless it may still hold data.
struct PooledPipe<'p> {
    pool: &'p PipePool,
    pipe: Option<Pipe>,
    empty: bool,
}

impl Drop for PooledPipe<'_> {
    fn drop(&mut self) {
        if let Some(p) = self.pipe.take()
            && self.empty
        {
            let mut idle = lock(&self.pool.idle);
            if idle.len() < MAX_IDLE_PIPES {
                idle.push(p);
            }
        }
    }
}

/// Why taking a WRITE's data from the socket failed.
pub(crate) enum BodyError {
    /// The connection cannot go on (socket error, end of stream, read deadline).
    Socket(String),
    /// The store refused the data; the rest of it is still on the socket (see
    /// [`SocketBody::drain`]).
    Store(VfsError),
}

/// A WRITE's data, still on the socket: `len` bytes right after the request's fixed part,
/// of which the reader may already have taken the first few (`prefix`, which came in the
/// read that brought the head).
pub(crate) struct SocketBody<'s> {
    sock: &'s TcpStream,
    pipes: &'s PipePool,
    len: usize,
    prefix: &'s [u8],
    /// Bytes not yet taken off the socket.
    left: AtomicUsize,
    /// The frame's read deadline (slow-loris guard), as for a buffered frame.
    deadline: Instant,
}

impl<'s> SocketBody<'s> {
    pub(crate) fn new(
        sock: &'s TcpStream,
        pipes: &'s PipePool,
        len: usize,
        prefix: &'s [u8],
        deadline: Instant,
    ) -> Self {
        let prefix = prefix.get(..len).unwrap_or(prefix);
        SocketBody {
            sock,
            pipes,
            len,
            prefix,
            left: AtomicUsize::new(len - prefix.len()),
            deadline,
        }
    }

    /// The data's length (the request's Length field, checked against the frame).
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    fn deadline_error(&self) -> String {
        "frame not completed within the read deadline (slow or stalled client)".into()
    }

    /// Moves all of the data into `handle` at `offset`; returns how many bytes were written.
    /// Only once: the data is gone from the socket afterwards.
    pub(crate) async fn splice_into(
        &self,
        handle: &dyn VfsHandle,
        offset: u64,
    ) -> Result<usize, BodyError> {
        match tokio::time::timeout_at(self.deadline, self.splice_inner(handle, offset)).await {
            Ok(r) => r,
            Err(_) => Err(BodyError::Socket(self.deadline_error())),
        }
    }

    async fn splice_inner(&self, handle: &dyn VfsHandle, offset: u64) -> Result<usize, BodyError> {
        let Some(mut pipe) = self.pipes.take() else {
            // No pipe to be had (descriptors exhausted): the buffered way, in this task (the
            // store is in memory).
            let data = self.read_inner().await.map_err(BodyError::Socket)?;
            return handle.write_at(&data, offset).map_err(BodyError::Store);
        };
        // What came with the head goes in first, from memory (at most a few KiB).
        if !self.prefix.is_empty() {
            handle
                .write_at(self.prefix, offset)
                .map_err(BodyError::Store)?;
        }
        let offset = offset + self.prefix.len() as u64;
        let total = self.left.load(Ordering::Acquire);
        let Some(p) = pipe.pipe.as_ref() else {
            return Err(BodyError::Socket(
                "spliced write without a pipe (bug)".into(),
            ));
        };
        let (cap, rd, wr) = (p.cap, p.rd.as_fd(), p.wr.as_fd());
        let flags = SpliceFlags::NONBLOCK | SpliceFlags::MOVE;
        let mut in_pipe = 0usize;
        let mut written = 0usize;
        let mut taken = 0usize;
        while written < total {
            if taken < total && in_pipe < cap {
                let want = (total - taken).min(cap - in_pipe);
                let fill = || -> std::io::Result<usize> {
                    Ok(rustix::pipe::splice(
                        self.sock.as_fd(),
                        None,
                        wr,
                        None,
                        want,
                        flags,
                    )?)
                };
                // With the pipe empty, EAGAIN can only mean the socket is: then (only) the
                // socket's readiness is cleared. With data in the pipe it may mean the pipe
                // has no free slot; the pipe is emptied into the file below, and the socket
                // tried again.
                let r = if in_pipe == 0 {
                    self.sock.try_io(Interest::READABLE, fill)
                } else {
                    fill()
                };
                match r {
                    Ok(0) => {
                        pipe.empty = in_pipe == 0;
                        return Err(BodyError::Socket(format!(
                            "truncated frame: end of stream {} bytes before its end",
                            total - taken
                        )));
                    }
                    Ok(n) => {
                        taken += n;
                        in_pipe += n;
                        self.left.fetch_sub(n, Ordering::AcqRel);
                        if taken < total && in_pipe < cap {
                            continue;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && in_pipe == 0 => {
                        self.sock
                            .readable()
                            .await
                            .map_err(|e| BodyError::Socket(format!("read error: {e}")))?;
                        continue;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        pipe.empty = in_pipe == 0;
                        return Err(BodyError::Socket(format!("read error: {e}")));
                    }
                }
            }
            // Empty the pipe into the file.
            while in_pipe > 0 {
                let at = offset + written as u64;
                match handle.splice_from(rd, at, in_pipe) {
                    Some(Ok(n)) if n > 0 => {
                        in_pipe -= n;
                        written += n;
                    }
                    Some(Ok(_)) => {
                        pipe.empty = false;
                        return Err(BodyError::Store(VfsError::Io {
                            op: "splice into the file",
                            source: std::io::ErrorKind::WriteZero.into(),
                        }));
                    }
                    Some(Err(e)) => {
                        pipe.empty = false;
                        return Err(BodyError::Store(e));
                    }
                    None => {
                        // The store cannot splice after all: copy what the pipe holds.
                        let mut buf = vec![0u8; in_pipe];
                        let n = rustix::io::read(rd, &mut buf)
                            .map_err(|e| BodyError::Socket(format!("pipe read: {e}")))?;
                        let got = buf.get(..n).unwrap_or_default();
                        handle.write_at(got, at).map_err(BodyError::Store)?;
                        in_pipe -= n;
                        written += n;
                    }
                }
            }
        }
        Ok(self.prefix.len() + written)
    }

    /// Reads the rest of the data into a buffer (a store that cannot splice).
    pub(crate) async fn read_all(&self) -> Result<Vec<u8>, String> {
        match tokio::time::timeout_at(self.deadline, self.read_inner()).await {
            Ok(r) => r,
            Err(_) => Err(self.deadline_error()),
        }
    }

    async fn read_inner(&self) -> Result<Vec<u8>, String> {
        let want = self.len;
        let mut buf = Vec::with_capacity(want);
        buf.extend_from_slice(self.prefix);
        while buf.len() < want {
            let need = want - buf.len();
            // `try_read_buf` fills the spare capacity: no zeroing of a buffer about to be
            // overwritten.
            self.read_step(|sock| sock.try_read_buf(&mut (&mut buf).limit(need)))
                .await?;
        }
        Ok(buf)
    }

    /// Reads and discards whatever of the data is still on the socket (a refused WRITE), so
    /// that the next frame starts where it should.
    pub(crate) async fn drain(&self) -> Result<(), String> {
        if self.left.load(Ordering::Acquire) == 0 {
            return Ok(());
        }
        let run = async {
            let mut scratch = vec![0u8; 64 * 1024];
            loop {
                let left = self.left.load(Ordering::Acquire);
                let n = left.min(scratch.len());
                let Some(chunk) = scratch.get_mut(..n).filter(|c| !c.is_empty()) else {
                    return Ok(());
                };
                self.read_step(|sock| sock.try_read(chunk)).await?;
            }
        };
        match tokio::time::timeout_at(self.deadline, run).await {
            Ok(r) => r,
            Err(_) => Err(self.deadline_error()),
        }
    }

    /// One successful read of the data still on the socket: `read` tries the socket once
    /// (into wherever the caller keeps the bytes); this waits for readiness, retries on EINTR,
    /// counts what was taken and turns an early end of stream into the truncated-frame error.
    async fn read_step(
        &self,
        mut read: impl FnMut(&TcpStream) -> std::io::Result<usize>,
    ) -> Result<usize, String> {
        loop {
            match read(self.sock) {
                Ok(0) => {
                    let left = self.left.load(Ordering::Acquire);
                    return Err(format!(
                        "truncated frame: end of stream {left} bytes before its end"
                    ));
                }
                Ok(n) => {
                    self.left.fetch_sub(n, Ordering::AcqRel);
                    return Ok(n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    self.sock
                        .readable()
                        .await
                        .map_err(|e| format!("read error: {e}"))?;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("read error: {e}")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(len: u32) -> [u8; HEAD_LEN] {
        let mut h = [0u8; HEAD_LEN];
        h[..4].copy_from_slice(&[0xFE, b'S', b'M', b'B']);
        h[4..6].copy_from_slice(&64u16.to_le_bytes());
        h[12..14].copy_from_slice(&smb_wire::Command::WRITE.0.to_le_bytes());
        h[64..66].copy_from_slice(&49u16.to_le_bytes());
        h[66..68].copy_from_slice(&(HEAD_LEN as u16).to_le_bytes());
        h[68..72].copy_from_slice(&len.to_le_bytes());
        h
    }

    #[test]
    fn only_plain_large_lone_writes_qualify() {
        let body = 1 << 20;
        let frame = HEAD_LEN + body;
        assert!(is_plain_large_write(&head(body as u32), frame));
        // Length that lies about the frame, either way.
        assert!(!is_plain_large_write(&head(body as u32 + 1), frame));
        assert!(!is_plain_large_write(&head(body as u32 - 1), frame));
        // Too small, or a frame shorter than the head.
        assert!(!is_plain_large_write(&head(1024), HEAD_LEN + 1024));
        assert!(!is_plain_large_write(&head(0), 10));
        let with = |f: &dyn Fn(&mut [u8; HEAD_LEN])| {
            let mut h = head(body as u32);
            f(&mut h);
            is_plain_large_write(&h, frame)
        };
        assert!(!with(&|h| h[16] |= 0x08)); // signed
        assert!(!with(&|h| h[16] |= 0x04)); // related
        assert!(!with(&|h| h[16] |= 0x01)); // a response
        assert!(!with(&|h| h[20] = 8)); // not alone
        assert!(!with(&|h| h[12] = 8)); // READ
        assert!(!with(&|h| h[66] = 0x78)); // data elsewhere
        assert!(!with(&|h| h[64 + 42] = 16)); // channel info
        assert!(!with(&|h| h[0] = 0xFD)); // transform
        assert!(!with(&|h| h[64] = 48)); // structure size
    }
}
