//! A tiny raw SMB2 client for hostile traffic: it writes exactly the bytes a test asks for and
//! classifies what the server did about them ([`Outcome`]).
//!
//! Frames are built by hand here rather than with `smb-wire`, so the tests keep an oracle that
//! does not share the server's codec. Layouts: [MS-SMB2] 2.1 (Direct TCP transport: a zero
//! byte and a 24-bit big-endian length), 2.2.1.2 (the sync header), 2.2.3 (NEGOTIATE request),
//! 2.2.4 (NEGOTIATE response), 2.2.28 (ECHO request); [MS-CIFS] 2.2.3.1 (the SMB1 header) and
//! 2.2.4.52 (SMB_COM_NEGOTIATE).

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

pub const SMB2_MAGIC: [u8; 4] = [0xFE, b'S', b'M', b'B'];
pub const SMB1_MAGIC: [u8; 4] = [0xFF, b'S', b'M', b'B'];
pub const HEADER_LEN: usize = 64;

pub const CMD_NEGOTIATE: u16 = 0x0000;
pub const CMD_SESSION_SETUP: u16 = 0x0001;
pub const CMD_ECHO: u16 = 0x000D;

pub const DIALECT_202: u16 = 0x0202;
pub const DIALECT_210: u16 = 0x0210;
pub const DIALECT_300: u16 = 0x0300;
pub const DIALECT_302: u16 = 0x0302;
pub const DIALECT_311: u16 = 0x0311;
/// The wildcard answer to an SMB1 negotiate that offers "SMB 2.???".
pub const DIALECT_WILDCARD: u16 = 0x02FF;

pub const STATUS_SUCCESS: u32 = 0;
pub const STATUS_PENDING: u32 = 0x0000_0103;
pub const STATUS_MORE_PROCESSING_REQUIRED: u32 = 0xC000_0016;

/// Largest frame this client will read back; anything bigger is treated as garbage.
const MAX_REPLY: usize = 16 * 1024 * 1024;

/// What the server did after a hostile send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The connection was closed or reset (a write failing counts too).
    Closed,
    /// A well-formed SMB2 (or SMB1) reply with a failure status.
    Error { command: u16, status: u32 },
    /// A well-formed reply with a success (or informational) status.
    Success { command: u16, status: u32 },
    /// Bytes that are not an SMB reply.
    Garbage(Vec<u8>),
    /// Nothing within the wait, and the connection is still open.
    NoAnswer,
}

impl Outcome {
    /// "The server closed that connection or answered an error."
    pub fn is_rejection(&self) -> bool {
        matches!(self, Outcome::Closed | Outcome::Error { .. })
    }
}

/// A parsed SMB2 reply header (the fields the tests look at).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyHeader {
    pub command: u16,
    pub status: u32,
    pub flags: u32,
    pub next_command: u32,
    pub message_id: u64,
    pub session_id: u64,
}

pub fn parse_header(frame: &[u8]) -> Option<ReplyHeader> {
    if frame.len() < HEADER_LEN || frame[..4] != SMB2_MAGIC {
        return None;
    }
    Some(ReplyHeader {
        status: le32(frame, 8)?,
        command: le16(frame, 12)?,
        flags: le32(frame, 16)?,
        next_command: le32(frame, 20)?,
        message_id: le64(frame, 24)?,
        session_id: le64(frame, 40)?,
    })
}

/// The DialectRevision of a NEGOTIATE response, [MS-SMB2] 2.2.4.
pub fn negotiated_dialect(frame: &[u8]) -> Option<u16> {
    let h = parse_header(frame)?;
    if h.command != CMD_NEGOTIATE || h.status != STATUS_SUCCESS || le16(frame, HEADER_LEN)? != 65 {
        return None;
    }
    le16(frame, HEADER_LEN + 4)
}

pub fn le16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}
pub fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
pub fn le64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Prefixes `payload` with the Direct TCP header. Panics on payloads over 2^24-1 bytes,
/// which no test builds.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let len = payload.len();
    assert!(len < 1 << 24, "payload too large for a Direct TCP frame");
    let mut v = Vec::with_capacity(4 + len);
    v.push(0);
    v.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
    v.extend_from_slice(payload);
    v
}

/// An SMB2 sync request header ([MS-SMB2] 2.2.1.2) with one credit requested.
pub fn header(command: u16, message_id: u64, session_id: u64) -> Vec<u8> {
    let mut h = Vec::with_capacity(HEADER_LEN);
    h.extend_from_slice(&SMB2_MAGIC);
    h.extend_from_slice(&64u16.to_le_bytes()); // StructureSize
    h.extend_from_slice(&0u16.to_le_bytes()); // CreditCharge
    h.extend_from_slice(&0u32.to_le_bytes()); // ChannelSequence/Reserved
    h.extend_from_slice(&command.to_le_bytes());
    h.extend_from_slice(&1u16.to_le_bytes()); // CreditRequest
    h.extend_from_slice(&0u32.to_le_bytes()); // Flags
    h.extend_from_slice(&0u32.to_le_bytes()); // NextCommand
    h.extend_from_slice(&message_id.to_le_bytes());
    h.extend_from_slice(&0xFEFFu32.to_le_bytes()); // Reserved (ProcessId)
    h.extend_from_slice(&0u32.to_le_bytes()); // TreeId
    h.extend_from_slice(&session_id.to_le_bytes());
    h.extend_from_slice(&[0u8; 16]); // Signature
    h
}

/// Overwrites a little-endian field of a built message (tests corrupt fields with this).
pub fn put16(msg: &mut [u8], at: usize, v: u16) {
    msg[at..at + 2].copy_from_slice(&v.to_le_bytes());
}
pub fn put32(msg: &mut [u8], at: usize, v: u32) {
    msg[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// A NEGOTIATE request ([MS-SMB2] 2.2.3) offering `dialects`, signing enabled. When 3.1.1 is
/// offered it carries the mandatory PREAUTH_INTEGRITY_CAPABILITIES context (SHA-512).
pub fn negotiate(dialects: &[u16], message_id: u64) -> Vec<u8> {
    let mut m = header(CMD_NEGOTIATE, message_id, 0);
    let body_at = m.len();
    m.extend_from_slice(&36u16.to_le_bytes()); // StructureSize
    m.extend_from_slice(&(dialects.len() as u16).to_le_bytes());
    m.extend_from_slice(&1u16.to_le_bytes()); // SecurityMode: SIGNING_ENABLED
    m.extend_from_slice(&0u16.to_le_bytes()); // Reserved
    m.extend_from_slice(&0x7Fu32.to_le_bytes()); // Capabilities: every 3.x capability bit
    m.extend_from_slice(&rand::random::<[u8; 16]>()); // ClientGuid
    let ctx_field = m.len();
    m.extend_from_slice(&[0u8; 8]); // NegotiateContextOffset/Count/Reserved2 (or ClientStartTime)
    for d in dialects {
        m.extend_from_slice(&d.to_le_bytes());
    }
    if dialects.contains(&DIALECT_311) {
        while !m.len().is_multiple_of(8) {
            m.push(0);
        }
        let offset = m.len() as u32; // offsets count from the start of the SMB2 header
        put32(&mut m, ctx_field, offset);
        put16(&mut m, ctx_field + 4, 1);
        let salt = rand::random::<[u8; 32]>();
        m.extend_from_slice(&1u16.to_le_bytes()); // SMB2_PREAUTH_INTEGRITY_CAPABILITIES
        m.extend_from_slice(&(4u16 + 2 + 32).to_le_bytes()); // DataLength
        m.extend_from_slice(&0u32.to_le_bytes()); // Reserved
        m.extend_from_slice(&1u16.to_le_bytes()); // HashAlgorithmCount
        m.extend_from_slice(&32u16.to_le_bytes()); // SaltLength
        m.extend_from_slice(&1u16.to_le_bytes()); // SHA-512
        m.extend_from_slice(&salt);
    }
    debug_assert_eq!(body_at, HEADER_LEN);
    m
}

/// An ECHO request ([MS-SMB2] 2.2.28).
pub fn echo(message_id: u64, session_id: u64) -> Vec<u8> {
    let mut m = header(CMD_ECHO, message_id, session_id);
    m.extend_from_slice(&4u16.to_le_bytes());
    m.extend_from_slice(&0u16.to_le_bytes());
    m
}

/// A SESSION_SETUP request ([MS-SMB2] 2.2.5) carrying `token` as its security buffer.
pub fn session_setup(message_id: u64, token: &[u8]) -> Vec<u8> {
    let mut m = header(CMD_SESSION_SETUP, message_id, 0);
    m.extend_from_slice(&25u16.to_le_bytes()); // StructureSize
    m.push(0); // Flags
    m.push(1); // SecurityMode: SIGNING_ENABLED
    m.extend_from_slice(&0u32.to_le_bytes()); // Capabilities
    m.extend_from_slice(&0u32.to_le_bytes()); // Channel
    m.extend_from_slice(&((HEADER_LEN + 24) as u16).to_le_bytes()); // SecurityBufferOffset
    m.extend_from_slice(&(token.len() as u16).to_le_bytes()); // SecurityBufferLength
    m.extend_from_slice(&0u64.to_le_bytes()); // PreviousSessionId
    m.extend_from_slice(token);
    m
}

/// The multi-protocol SMB1 NEGOTIATE that Windows and smbclient send first ([MS-CIFS]
/// 2.2.4.52.1), offering "NT LM 0.12", "SMB 2.002" and "SMB 2.???".
pub fn smb1_negotiate() -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&SMB1_MAGIC);
    m.push(0x72); // SMB_COM_NEGOTIATE
    m.extend_from_slice(&0u32.to_le_bytes()); // Status
    m.push(0x18); // Flags: case-insensitive, canonicalized paths
    m.extend_from_slice(&0xC853u16.to_le_bytes()); // Flags2: unicode, NT status, ext. security…
    m.extend_from_slice(&[0u8; 12]); // PIDHigh, SecurityFeatures, Reserved
    m.extend_from_slice(&0xFFFFu16.to_le_bytes()); // TID
    m.extend_from_slice(&0xFEFFu16.to_le_bytes()); // PIDLow
    m.extend_from_slice(&0u16.to_le_bytes()); // UID
    m.extend_from_slice(&0u16.to_le_bytes()); // MID
    m.push(0); // WordCount
    let mut bytes = Vec::new();
    for d in ["NT LM 0.12", "SMB 2.002", "SMB 2.???"] {
        bytes.push(0x02);
        bytes.extend_from_slice(d.as_bytes());
        bytes.push(0);
    }
    m.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
    m.extend_from_slice(&bytes);
    m
}

/// One TCP connection to the server under test.
pub struct RawConn {
    stream: TcpStream,
    write_failed: bool,
}

impl RawConn {
    pub fn connect(addr: SocketAddr) -> io::Result<RawConn> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_nodelay(true)?;
        stream.set_write_timeout(Some(Duration::from_secs(5)))?;
        Ok(RawConn {
            stream,
            write_failed: false,
        })
    }

    /// Writes raw bytes. A failed write means the server already hung up; it is remembered
    /// and reported as [`Outcome::Closed`] rather than as an error.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        if self.stream.write_all(bytes).is_err() {
            self.write_failed = true;
        }
    }

    /// Writes `payload` inside a Direct TCP frame.
    pub fn send_frame(&mut self, payload: &[u8]) {
        self.send_raw(&frame(payload));
    }

    /// Half-closes the sending side: the server sees end-of-file.
    pub fn finish_sending(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }

    /// Reads one frame, waiting at most `wait`. `Ok(None)`: connection closed.
    pub fn recv_frame(&mut self, wait: Duration) -> io::Result<Option<Vec<u8>>> {
        let deadline = Instant::now() + wait;
        let mut hdr = [0u8; 4];
        if !self.read_exact_by(&mut hdr, deadline)? {
            return Ok(None);
        }
        let len = usize::from(hdr[1]) << 16 | usize::from(hdr[2]) << 8 | usize::from(hdr[3]);
        if hdr[0] != 0 || len > MAX_REPLY {
            return Err(io::Error::new(
                ErrorKind::InvalidData,
                format!("not a Direct TCP frame header: {hdr:02x?}"),
            ));
        }
        let mut body = vec![0u8; len];
        if !self.read_exact_by(&mut body, deadline)? {
            return Ok(None);
        }
        Ok(Some(body))
    }

    /// `Ok(false)`: end of file or reset. A timeout is `Err(TimedOut)`.
    fn read_exact_by(&mut self, buf: &mut [u8], deadline: Instant) -> io::Result<bool> {
        let mut got = 0;
        while got < buf.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(ErrorKind::TimedOut, "no answer in time"));
            }
            self.stream.set_read_timeout(Some(left))?;
            match self.stream.read(&mut buf[got..]) {
                Ok(0) => return Ok(false),
                Ok(n) => got += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Err(io::Error::new(ErrorKind::TimedOut, "no answer in time"));
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::ConnectionReset
                            | ErrorKind::ConnectionAborted
                            | ErrorKind::BrokenPipe
                    ) =>
                {
                    return Ok(false);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// What the server did within `wait`: its first reply, or the connection closing.
    pub fn outcome(&mut self, wait: Duration) -> Outcome {
        if self.write_failed {
            return Outcome::Closed;
        }
        match self.recv_frame(wait) {
            Ok(None) => Outcome::Closed,
            Ok(Some(f)) => classify(&f),
            Err(e) if e.kind() == ErrorKind::TimedOut => Outcome::NoAnswer,
            Err(e) if e.kind() == ErrorKind::InvalidData => {
                Outcome::Garbage(e.to_string().into_bytes())
            }
            Err(_) => Outcome::Closed,
        }
    }

    /// After a rejection: true when the server has closed the connection within `wait`
    /// (everything it still sends is read and dropped).
    pub fn closed_within(&mut self, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        let mut buf = [0u8; 4096];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.stream.set_read_timeout(Some(left)).is_err() {
                return false;
            }
            match self.stream.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return false;
                }
                Err(_) => return true,
            }
        }
    }

    /// Sends a NEGOTIATE for `dialects` and returns the server's dialect choice.
    pub fn negotiate(&mut self, dialects: &[u16], wait: Duration) -> io::Result<u16> {
        self.send_frame(&negotiate(dialects, 0));
        let reply = self.recv_frame(wait)?.ok_or_else(|| {
            io::Error::new(
                ErrorKind::UnexpectedEof,
                "closed instead of answering NEGOTIATE",
            )
        })?;
        negotiated_dialect(&reply).ok_or_else(|| {
            io::Error::new(
                ErrorKind::InvalidData,
                format!(
                    "not a successful NEGOTIATE response: {:?}",
                    parse_header(&reply)
                ),
            )
        })
    }
}

/// Classifies a reply frame's payload.
pub fn classify(frame: &[u8]) -> Outcome {
    if let Some(h) = parse_header(frame) {
        return if is_failure(h.status) {
            Outcome::Error {
                command: h.command,
                status: h.status,
            }
        } else {
            Outcome::Success {
                command: h.command,
                status: h.status,
            }
        };
    }
    // An SMB1 reply: status at offset 5, command at 4 ([MS-CIFS] 2.2.3.1).
    if frame.len() >= 32 && frame[..4] == SMB1_MAGIC {
        let status = le32(frame, 5).unwrap_or(0);
        let command = u16::from(frame[4]);
        return if is_failure(status) {
            Outcome::Error { command, status }
        } else {
            Outcome::Success { command, status }
        };
    }
    Outcome::Garbage(frame.iter().take(64).copied().collect())
}

/// NTSTATUS severity bits 11 = error, 10 = warning ([MS-ERREF] 2.3).
fn is_failure(status: u32) -> bool {
    status >> 30 >= 2
}

/// One fresh connection, one NEGOTIATE for 2.0.2–3.0.2: the server's dialect choice.
/// The liveness probe the hostile tests run between and during their attacks.
pub fn probe_negotiate(addr: SocketAddr) -> io::Result<u16> {
    let mut c = RawConn::connect(addr)?;
    c.negotiate(
        &[DIALECT_202, DIALECT_210, DIALECT_300, DIALECT_302],
        Duration::from_secs(5),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_prefix_is_zero_and_24_bit_big_endian_length() {
        assert_eq!(frame(&[1, 2, 3]), vec![0, 0, 0, 3, 1, 2, 3]);
        assert_eq!(&frame(&vec![0u8; 0x012345])[..4], &[0, 0x01, 0x23, 0x45]);
    }

    #[test]
    fn negotiate_layout() {
        let m = negotiate(&[DIALECT_202, DIALECT_302], 7);
        assert_eq!(&m[..4], &SMB2_MAGIC);
        assert_eq!(le16(&m, 4), Some(64));
        assert_eq!(le16(&m, 12), Some(CMD_NEGOTIATE));
        assert_eq!(le64(&m, 24), Some(7));
        assert_eq!(le16(&m, HEADER_LEN), Some(36));
        assert_eq!(le16(&m, HEADER_LEN + 2), Some(2));
        assert_eq!(le16(&m, HEADER_LEN + 36), Some(DIALECT_202));
        assert_eq!(le16(&m, HEADER_LEN + 38), Some(DIALECT_302));
        assert_eq!(m.len(), HEADER_LEN + 36 + 4);
        assert_eq!(
            le32(&m, HEADER_LEN + 28),
            Some(0),
            "no contexts without 3.1.1"
        );
    }

    #[test]
    fn negotiate_311_context_is_aligned_and_in_the_message() {
        let m = negotiate(&[DIALECT_202, DIALECT_311], 0);
        let off = le32(&m, HEADER_LEN + 28).unwrap() as usize;
        assert_eq!(off % 8, 0);
        assert_eq!(le16(&m, HEADER_LEN + 32), Some(1));
        assert_eq!(le16(&m, off), Some(1), "PREAUTH_INTEGRITY_CAPABILITIES");
        let data_len = usize::from(le16(&m, off + 2).unwrap());
        assert_eq!(off + 8 + data_len, m.len());
        assert_eq!(le16(&m, off + 12), Some(1), "SHA-512");
    }

    #[test]
    fn classify_replies() {
        let mut ok = header(CMD_NEGOTIATE, 0, 0);
        ok[16] = 1; // SERVER_TO_REDIR
        assert_eq!(
            classify(&ok),
            Outcome::Success {
                command: 0,
                status: 0
            }
        );
        let mut err = header(CMD_ECHO, 1, 0);
        put32(&mut err, 8, 0xC000_0022);
        assert_eq!(
            classify(&err),
            Outcome::Error {
                command: CMD_ECHO,
                status: 0xC000_0022
            }
        );
        assert!(classify(&err).is_rejection());
        let mut smb1 = smb1_negotiate();
        put32(&mut smb1, 5, 0xC000_0002);
        assert_eq!(
            classify(&smb1),
            Outcome::Error {
                command: 0x72,
                status: 0xC000_0002
            }
        );
        assert!(matches!(classify(b"HTTP/1.1 400"), Outcome::Garbage(_)));
        assert!(!Outcome::NoAnswer.is_rejection());
    }

    #[test]
    fn negotiated_dialect_needs_a_successful_negotiate_response() {
        let mut r = header(CMD_NEGOTIATE, 0, 0);
        r.extend_from_slice(&65u16.to_le_bytes());
        r.extend_from_slice(&1u16.to_le_bytes());
        r.extend_from_slice(&DIALECT_302.to_le_bytes());
        assert_eq!(negotiated_dialect(&r), Some(DIALECT_302));
        put32(&mut r, 8, 0xC000_000D);
        assert_eq!(negotiated_dialect(&r), None);
        assert_eq!(negotiated_dialect(&r[..40]), None);
    }
}
