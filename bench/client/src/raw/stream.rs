//! `bench-client stream --client raw`: the multi-stream rows' client written on the wire.
//!
//! Each stream is one TCP connection with its own session (logon as in `mod.rs`), one CREATE
//! of the file, then its slice of the file moved with `--depth` READs or WRITEs of
//! min(1 MiB, MaxReadSize/MaxWriteSize) in flight, then a CLOSE. One task per connection sends
//! and receives: it keeps the pipe full while it has credits, then reads the next answer.
//!
//! Why not the smb crate (still the default of `stream`): it parses an encrypted answer one
//! byte at a time and allocates a fresh buffer per answer, so on 2 cores the multi-stream rows
//! measured it rather than the servers (bench/README.md). Here an answer is read into one
//! buffer per connection, reused, and checked or decrypted in place; a WRITE's data sits in
//! one buffer behind room for its header, so a plain or signed WRITE goes out in one write
//! without a copy, and an encrypted one is encrypted from that buffer into the send buffer.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aes_gcm::aead::inout::InOutBuf;
use aes_gcm::{AeadInOut, Aes128Gcm, KeyInit, Nonce, Tag};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::Barrier;

use super::crypto::Signer;
use super::{HEADER, Protection, SMB311, Session, Setup, rd16, rd32, rd64, status_name};

const CREATE: u16 = 0x0005;
const CLOSE: u16 = 0x0006;
const READ: u16 = 0x0008;
const WRITE: u16 = 0x0009;

const STATUS_SUCCESS: u32 = 0;
const STATUS_PENDING: u32 = 0x0000_0103;
const FLAG_RESPONSE: u32 = 0x1;
const FLAG_ASYNC: u32 = 0x2;

/// [MS-SMB2] 2.2.41: the TRANSFORM_HEADER's size.
const TRANSFORM: usize = 52;
const AES_128_GCM: u16 = 0x0002;

const MIB: u32 = 1 << 20;
/// A READ/WRITE request's body before the data ([MS-SMB2] 2.2.19, 2.2.21).
const RW_BODY: usize = 48;

/// How long one answer may be awaited before the row fails.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

/// One request in flight: its message id, offset and length (0 for CREATE and CLOSE).
struct Pending {
    mid: u64,
    pos: u64,
    len: u32,
}

/// One stream's connection after the logon.
struct Chan {
    io: BufReader<TcpStream>,
    prot: Protection,
    signer: Option<Signer>,
    /// Requests are encrypted with the first, answers decrypted with the second.
    ciphers: Option<(Aes128Gcm, Aes128Gcm)>,
    /// 4 random bytes, then a counter: a nonce is never used twice with one key.
    nonce_salt: [u8; 4],
    nonce_count: u64,
    session_id: u64,
    tree_id: u32,
    message_id: u64,
    credits: u32,
    /// Small requests: transport header, SMB2 header, body.
    sbuf: Vec<u8>,
    /// WRITEs: transport header, SMB2 header, WRITE body, then the data (filled once).
    wbuf: Vec<u8>,
    /// Encrypted requests: transport header, TRANSFORM_HEADER, ciphertext.
    ebuf: Vec<u8>,
    /// Answers, one at a time; never shrunk, never reallocated after the first.
    rbuf: Vec<u8>,
    /// The largest answer accepted.
    rmax: usize,
    /// Interim (STATUS_PENDING) answers seen.
    interims: u64,
}

/// The 16-byte file id from a CREATE answer.
type FileId = [u8; 16];

impl Chan {
    fn new(s: Session, prot: Protection, chunk: u32, put: bool) -> Result<Chan, String> {
        if !s.rbuf.is_empty() {
            return Err("logon: bytes left over after the TREE_CONNECT answer".into());
        }
        let ciphers = match (prot, s.cipher_keys) {
            (Protection::Encrypt, Some((c2s, s2c))) => {
                if s.dialect != SMB311 || s.cipher != AES_128_GCM {
                    return Err(format!(
                        "negotiate: the server chose cipher {:#06x} (dialect {:#06x}); this client does AES-128-GCM only",
                        s.cipher, s.dialect
                    ));
                }
                let k = |key: &[u8; 16]| {
                    Aes128Gcm::new_from_slice(key).map_err(|_| "cipher key".to_string())
                };
                Some((k(&c2s)?, k(&s2c)?))
            }
            (Protection::Encrypt, None) => return Err("logon: no cipher keys".into()),
            _ => None,
        };
        let data = if put { chunk as usize } else { 0 };
        let mut wbuf = vec![0u8; 4 + HEADER + RW_BODY + data];
        // The data every WRITE sends (a pattern, as the crate client writes).
        for (i, b) in wbuf[4 + HEADER + RW_BODY..].iter_mut().enumerate() {
            *b = (i * 7 + 1) as u8;
        }
        let rmax = TRANSFORM + HEADER + 16 + if put { 0 } else { chunk as usize } + 4096;
        Ok(Chan {
            io: BufReader::with_capacity(64 << 10, s.stream),
            prot,
            signer: s.signer,
            ciphers,
            nonce_salt: super::random()?,
            nonce_count: 0,
            session_id: s.session_id,
            tree_id: s.tree_id,
            message_id: s.message_id,
            credits: s.credits,
            sbuf: Vec::with_capacity(512),
            ebuf: if prot == Protection::Encrypt {
                vec![0u8; 4 + TRANSFORM + HEADER + RW_BODY + data + 512]
            } else {
                Vec::new()
            },
            wbuf,
            rbuf: vec![0u8; rmax],
            rmax,
            interims: 0,
        })
    }

    /// Writes the SMB2 header of a request into `h` (64 bytes) and spends its credits;
    /// returns its message id.
    fn header(&mut self, h: &mut [u8], command: u16, charge: u16, ask: u16) -> u64 {
        let mid = self.message_id;
        // [MS-SMB2] 3.2.4.1.5: a request of charge C takes C consecutive message ids.
        self.message_id += u64::from(charge);
        self.credits -= u32::from(charge);
        h.fill(0);
        h[..4].copy_from_slice(b"\xfeSMB");
        h[4..6].copy_from_slice(&64u16.to_le_bytes());
        h[6..8].copy_from_slice(&charge.to_le_bytes());
        h[12..14].copy_from_slice(&command.to_le_bytes());
        h[14..16].copy_from_slice(&ask.to_le_bytes());
        h[24..32].copy_from_slice(&mid.to_le_bytes());
        h[32..36].copy_from_slice(&0xFEFFu32.to_le_bytes());
        h[36..40].copy_from_slice(&self.tree_id.to_le_bytes());
        h[40..48].copy_from_slice(&self.session_id.to_le_bytes());
        mid
    }

    /// Sends the message in `sbuf` (`write` false) or the first `len` bytes after the
    /// transport header of `wbuf`, signed or encrypted as the session says.
    async fn transmit(&mut self, write: bool, len: usize) -> Result<(), String> {
        let buf = if write {
            &mut self.wbuf
        } else {
            &mut self.sbuf
        };
        let msg = &mut buf[4..4 + len];
        let out: &[u8] = match self.prot {
            Protection::Off | Protection::Sign => {
                if self.prot == Protection::Sign {
                    let s = self.signer.as_ref().ok_or("send: no signing key")?;
                    s.sign(msg);
                }
                let n = u32::try_from(len).map_err(|_| "send: message too long")?;
                buf[..4].copy_from_slice(&n.to_be_bytes());
                &buf[..4 + len]
            }
            Protection::Encrypt => {
                let (enc, _) = self.ciphers.as_ref().ok_or("send: no cipher")?;
                let total = TRANSFORM + len;
                if self.ebuf.len() < 4 + total {
                    self.ebuf.resize(4 + total, 0);
                }
                let n = u32::try_from(total).map_err(|_| "send: message too long")?;
                self.ebuf[..4].copy_from_slice(&n.to_be_bytes());
                self.nonce_count += 1;
                let mut nonce = [0u8; 12];
                nonce[..8].copy_from_slice(&self.nonce_count.to_le_bytes());
                nonce[8..].copy_from_slice(&self.nonce_salt);
                seal(
                    enc,
                    &nonce,
                    self.session_id,
                    msg,
                    &mut self.ebuf[4..4 + total],
                )?;
                &self.ebuf[..4 + total]
            }
        };
        self.io
            .write_all(out)
            .await
            .map_err(|e| format!("send: {e}"))
    }

    /// Reads the next message into `rbuf`, decrypts or checks it; returns the SMB2 message's
    /// range in `rbuf`.
    async fn receive(&mut self) -> Result<std::ops::Range<usize>, String> {
        let mut len = [0u8; 4];
        let read = async {
            self.io.read_exact(&mut len).await?;
            let n = u32::from_be_bytes(len) as usize;
            if n > self.rmax {
                return Ok(n);
            }
            self.io.read_exact(&mut self.rbuf[..n]).await?;
            Ok::<usize, std::io::Error>(n)
        };
        let n = tokio::time::timeout(ANSWER_TIMEOUT, read)
            .await
            .map_err(|_| format!("no answer in {}s", ANSWER_TIMEOUT.as_secs()))?
            .map_err(|e| format!("receive: {e}"))?;
        if n > self.rmax {
            return Err(format!("receive: a {n}-byte message"));
        }
        let m = &mut self.rbuf[..n];
        if let Some((_, dec)) = &self.ciphers {
            open(dec, self.session_id, m)?;
            return Ok(TRANSFORM..n);
        }
        Ok(0..n)
    }

    /// Waits for the final answer to one of `pending`; returns its index there and the
    /// message's range in `rbuf`. Grants of every answer, interim ones included, are counted.
    async fn answer(
        &mut self,
        pending: &[Pending],
    ) -> Result<(usize, std::ops::Range<usize>), String> {
        loop {
            let r = self.receive().await?;
            let m = &mut self.rbuf[r.clone()];
            if m.len() < HEADER || m[..4] != *b"\xfeSMB" {
                return Err("receive: not an SMB2 answer".into());
            }
            let status = rd32(m, 8).unwrap_or(u32::MAX);
            let flags = rd32(m, 16).unwrap_or(0);
            let mid = rd64(m, 24).unwrap_or(u64::MAX);
            if flags & FLAG_RESPONSE == 0 || rd32(m, 20) != Some(0) {
                return Err(format!("answer to message {mid}: not a single response"));
            }
            let Some(i) = pending.iter().position(|p| p.mid == mid) else {
                return Err(format!(
                    "an answer to message {mid}, which is not in flight"
                ));
            };
            self.credits = self
                .credits
                .saturating_add(u32::from(rd16(m, 14).unwrap_or(0)));
            let interim = status == STATUS_PENDING && flags & FLAG_ASYNC != 0;
            let signed = Signer::is_signed(m);
            match self.prot {
                // An interim answer may come unsigned ([MS-SMB2] 3.3.4.2); it carries no data.
                Protection::Sign if interim && !signed => {}
                Protection::Sign => {
                    let s = self.signer.as_ref().ok_or("no signing key")?;
                    if !signed {
                        return Err(format!(
                            "answer to message {mid}: not signed ({})",
                            status_name(status)
                        ));
                    }
                    if !s.verify(m) {
                        return Err(format!(
                            "answer to message {mid}: wrong {} signature",
                            s.name()
                        ));
                    }
                }
                Protection::Off if signed => {
                    return Err(format!(
                        "answer to message {mid}: signed, in a session that is not"
                    ));
                }
                _ => {}
            }
            if !interim {
                return Ok((i, r));
            }
            self.interims += 1;
        }
    }

    /// Sends a small request (`body` after the header) and waits for its answer.
    async fn call(
        &mut self,
        command: u16,
        body: &[u8],
        step: &str,
    ) -> Result<std::ops::Range<usize>, String> {
        if self.credits == 0 {
            return Err(format!("{step}: no credits"));
        }
        let mut h = [0u8; HEADER];
        let mid = self.header(&mut h, command, 1, 64);
        self.sbuf.clear();
        self.sbuf.extend_from_slice(&[0; 4]);
        self.sbuf.extend_from_slice(&h);
        self.sbuf.extend_from_slice(body);
        let len = self.sbuf.len() - 4;
        self.transmit(false, len)
            .await
            .map_err(|e| format!("{step}: {e}"))?;
        let (_, r) = self
            .answer(&[Pending {
                mid,
                pos: 0,
                len: 0,
            }])
            .await
            .map_err(|e| format!("{step}: {e}"))?;
        let status = rd32(&self.rbuf[r.clone()], 8).unwrap_or(u32::MAX);
        if status != STATUS_SUCCESS {
            return Err(format!("{step}: {}", status_name(status)));
        }
        Ok(r)
    }

    /// [MS-SMB2] 2.2.13: CREATE `name`, read+write with `put` (OPEN_IF), read only (OPEN)
    /// otherwise, sharing read, write and delete with the other streams.
    async fn create(&mut self, name: &str, put: bool) -> Result<FileId, String> {
        let name: Vec<u8> = name.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let mut b = Vec::with_capacity(56 + name.len().max(1));
        b.extend_from_slice(&57u16.to_le_bytes());
        b.push(0); // security flags
        b.push(0); // oplock: none
        b.extend_from_slice(&2u32.to_le_bytes()); // impersonation
        b.extend_from_slice(&[0; 16]); // create flags, reserved
        let access: u32 = if put { 0xC000_0000 } else { 0x8000_0000 };
        b.extend_from_slice(&access.to_le_bytes());
        b.extend_from_slice(&0x80u32.to_le_bytes()); // FILE_ATTRIBUTE_NORMAL
        b.extend_from_slice(&7u32.to_le_bytes()); // share read, write, delete
        b.extend_from_slice(&(if put { 3u32 } else { 1 }).to_le_bytes());
        b.extend_from_slice(&0x40u32.to_le_bytes()); // FILE_NON_DIRECTORY_FILE
        b.extend_from_slice(&((HEADER + 56) as u16).to_le_bytes());
        b.extend_from_slice(&(name.len() as u16).to_le_bytes());
        b.extend_from_slice(&[0; 8]); // no create contexts
        b.extend_from_slice(&name);
        if name.is_empty() {
            b.push(0);
        }
        let r = self.call(CREATE, &b, "create").await?;
        let m = &self.rbuf[r];
        let mut id = [0u8; 16];
        id.copy_from_slice(
            m.get(HEADER + 64..HEADER + 80)
                .ok_or("create: truncated answer")?,
        );
        Ok(id)
    }

    /// [MS-SMB2] 2.2.15.
    async fn close(&mut self, id: &FileId) -> Result<(), String> {
        let mut b = [0u8; 24];
        b[..2].copy_from_slice(&24u16.to_le_bytes());
        b[8..].copy_from_slice(id);
        self.call(CLOSE, &b, "close").await.map(|_| ())
    }

    /// Moves [start, end) of the file in requests of `chunk` bytes, `depth` in flight.
    async fn transfer(
        &mut self,
        id: &FileId,
        put: bool,
        (start, end): (u64, u64),
        chunk: u32,
        depth: usize,
    ) -> Result<u64, String> {
        let full = chunk.div_ceil(65536).max(1);
        // Enough credits for `depth` full requests in flight, and a few to spare.
        let target = full * depth as u32 + 8;
        let mut pending: Vec<Pending> = Vec::with_capacity(depth);
        let (mut pos, mut moved) = (start, 0u64);
        let op = if put { "write" } else { "read" };
        loop {
            while pending.len() < depth && pos < end {
                let len = u64::from(chunk).min(end - pos) as u32;
                // [MS-SMB2] 3.1.5.2: CreditCharge = ceil(payload / 64 KiB).
                let charge = len.div_ceil(65536).max(1);
                if self.credits < charge {
                    if pending.is_empty() {
                        return Err(format!(
                            "{op} at {pos}: {} credits, {charge} needed, none coming",
                            self.credits
                        ));
                    }
                    break;
                }
                // What the server holds for this client once this request is sent: credits
                // not spent yet and those of the requests in flight (which their answers
                // grant back). Ask for the deficit on top of this request's own charge.
                let held = self.credits.saturating_add(
                    pending
                        .iter()
                        .map(|p| p.len.div_ceil(65536).max(1))
                        .sum::<u32>(),
                );
                let ask = (charge + target.saturating_sub(held)).min(u32::from(u16::MAX)) as u16;
                let mut h = [0u8; HEADER];
                let mid = self.header(&mut h, if put { WRITE } else { READ }, charge as u16, ask);
                let mut b = [0u8; RW_BODY + 1];
                if put {
                    // [MS-SMB2] 2.2.21: data right after the 48-byte body.
                    b[..2].copy_from_slice(&49u16.to_le_bytes());
                    b[2..4].copy_from_slice(&((HEADER + RW_BODY) as u16).to_le_bytes());
                    b[4..8].copy_from_slice(&len.to_le_bytes());
                    b[8..16].copy_from_slice(&pos.to_le_bytes());
                    b[16..32].copy_from_slice(id);
                    self.wbuf[4..4 + HEADER].copy_from_slice(&h);
                    self.wbuf[4 + HEADER..4 + HEADER + RW_BODY].copy_from_slice(&b[..RW_BODY]);
                    self.transmit(true, HEADER + RW_BODY + len as usize)
                        .await
                        .map_err(|e| format!("{op} at {pos}: {e}"))?;
                } else {
                    // [MS-SMB2] 2.2.19: 49 bytes with one of buffer.
                    b[..2].copy_from_slice(&49u16.to_le_bytes());
                    b[2] = 0x50; // padding: data at 80
                    b[4..8].copy_from_slice(&len.to_le_bytes());
                    b[8..16].copy_from_slice(&pos.to_le_bytes());
                    b[16..32].copy_from_slice(id);
                    b[32..36].copy_from_slice(&len.to_le_bytes()); // minimum count
                    self.sbuf.clear();
                    self.sbuf.extend_from_slice(&[0; 4]);
                    self.sbuf.extend_from_slice(&h);
                    self.sbuf.extend_from_slice(&b);
                    self.transmit(false, HEADER + RW_BODY + 1)
                        .await
                        .map_err(|e| format!("{op} at {pos}: {e}"))?;
                }
                pending.push(Pending { mid, pos, len });
                pos += u64::from(len);
            }
            if pending.is_empty() {
                return Ok(moved);
            }
            let (i, r) = self
                .answer(&pending)
                .await
                .map_err(|e| format!("{op}: {e}"))?;
            let p = pending.swap_remove(i);
            let m = &self.rbuf[r];
            let status = rd32(m, 8).unwrap_or(u32::MAX);
            if status != STATUS_SUCCESS {
                return Err(format!("{op} at {}: {}", p.pos, status_name(status)));
            }
            let got = if put {
                // [MS-SMB2] 2.2.22: Count at 4.
                rd32(m, HEADER + 4).ok_or(format!("{op} at {}: truncated answer", p.pos))?
            } else {
                // [MS-SMB2] 2.2.20: DataOffset (from the header) at 2, DataLength at 4.
                let off = m.get(HEADER + 2).copied().unwrap_or(0) as usize;
                let n = rd32(m, HEADER + 4).unwrap_or(0);
                if m.get(off..off + n as usize).is_none() || off < HEADER + 16 {
                    return Err(format!("{op} at {}: data outside the answer", p.pos));
                }
                n
            };
            if got != p.len {
                return Err(format!("{op} at {}: {got} bytes of {}", p.pos, p.len));
            }
            moved += u64::from(got);
        }
    }
}

/// [MS-SMB2] 3.1.4.3: encrypts the SMB2 message `msg` into `out` (TRANSFORM_HEADER, then
/// the ciphertext; `out` is exactly that long).
fn seal(
    enc: &Aes128Gcm,
    nonce: &[u8; 12],
    session_id: u64,
    msg: &[u8],
    out: &mut [u8],
) -> Result<(), String> {
    let orig = u32::try_from(msg.len()).map_err(|_| "send: message too long")?;
    let (t, body) = out.split_at_mut(TRANSFORM);
    // [MS-SMB2] 2.2.41: ProtocolId, Signature (the tag), Nonce (11 or 12 bytes, the rest
    // zero), OriginalMessageSize, Reserved, Flags = Encrypted, SessionId.
    t.fill(0);
    t[..4].copy_from_slice(b"\xfdSMB");
    t[20..32].copy_from_slice(nonce);
    t[36..40].copy_from_slice(&orig.to_le_bytes());
    t[42..44].copy_from_slice(&1u16.to_le_bytes());
    t[44..52].copy_from_slice(&session_id.to_le_bytes());
    let inout = InOutBuf::new(msg, body).map_err(|_| "send: buffer sizes")?;
    // The AAD is the TRANSFORM_HEADER from the Nonce on.
    let tag = enc
        .encrypt_inout_detached(&Nonce::from(*nonce), &t[20..TRANSFORM], inout)
        .map_err(|_| "send: encryption failed")?;
    t[4..20].copy_from_slice(&tag);
    Ok(())
}

/// [MS-SMB2] 3.2.5.1.1: checks the TRANSFORM_HEADER of a received message `m` and decrypts
/// it in place; the SMB2 message is then `m[TRANSFORM..]`.
fn open(dec: &Aes128Gcm, session_id: u64, m: &mut [u8]) -> Result<(), String> {
    let n = m.len();
    if n < TRANSFORM || m[..4] != *b"\xfdSMB" {
        return Err("receive: an answer that is not encrypted".into());
    }
    let orig = rd32(m, 36).unwrap_or(0) as usize;
    if orig != n - TRANSFORM || rd16(m, 42) != Some(1) || rd64(m, 44) != Some(session_id) {
        return Err("receive: a malformed TRANSFORM_HEADER".into());
    }
    let (head, body) = m.split_at_mut(TRANSFORM);
    let mut nonce = [0u8; 12];
    nonce.copy_from_slice(&head[20..32]);
    let mut tag = [0u8; 16];
    tag.copy_from_slice(&head[4..20]);
    dec.decrypt_inout_detached(
        &Nonce::from(nonce),
        &head[20..TRANSFORM],
        body.into(),
        &Tag::from(tag),
    )
    .map_err(|_| "receive: an answer that does not decrypt (wrong key or tag)".to_string())
}

/// The multi-stream row (see main.rs for the flags and the JSON line).
pub async fn cmd_stream(a: crate::Args, addr: SocketAddr) {
    let put = match a.mode.as_str() {
        "put" => true,
        "get" => false,
        m => crate::fail(format!("unknown --mode {m}")),
    };
    let prot = match a.protection.as_str() {
        "off" => Protection::Off,
        "sign" => Protection::Sign,
        "encrypt" => Protection::Encrypt,
        p => crate::fail(format!("unknown --protection {p}")),
    };
    let set = Arc::new(Setup::new(addr, &a.host, &a.user, &a.password, &a.share));
    let a = Arc::new(a);
    let barrier = Arc::new(Barrier::new(a.streams + 1));
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..a.streams as u64 {
        let (a, set, barrier) = (a.clone(), set.clone(), barrier.clone());
        tasks.spawn(async move {
            let setup = async {
                let s = Session::connect_with(&set, prot).await?;
                let negotiated = match prot {
                    Protection::Encrypt => format!("{} AES-128-GCM", s.negotiated()),
                    Protection::Off => s.negotiated().replace(
                        s.signer.as_ref().map_or("unsigned", Signer::name),
                        "unsigned",
                    ),
                    Protection::Sign => s.negotiated(),
                };
                let max = if put { s.max_write } else { s.max_read };
                let chunk = MIB.min(max).max(1);
                let mut c = Chan::new(s, prot, chunk, put)?;
                let id = c.create(&a.file, put).await?;
                Ok::<_, String>((c, id, chunk, negotiated))
            };
            let r = setup.await;
            // Every stream reaches the barrier, failed or not, so that none waits forever.
            barrier.wait().await;
            let (mut c, id, chunk, negotiated) = r?;
            let (start, end) = crate::stream_slice_bounds(index, a.streams, a.bytes);
            let moved = c.transfer(&id, put, (start, end), chunk, a.depth).await?;
            c.close(&id).await?;
            Ok::<(u64, String, u64), String>((moved, negotiated, c.interims))
        });
    }
    barrier.wait().await;
    let cpu0 = crate::cpu_secs();
    let t0 = Instant::now();
    let mut moved = 0;
    let mut negotiated = String::new();
    let mut interims = 0;
    while let Some(r) = tasks.join_next().await {
        match r {
            Ok(Ok((m, n, i))) => {
                moved += m;
                negotiated = n;
                interims += i;
            }
            Ok(Err(e)) => crate::fail(e),
            Err(e) => crate::fail(format!("task: {e}")),
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let cpu = crate::cpu_secs() - cpu0;
    if moved != a.bytes {
        crate::fail(format!("{}: {moved} bytes moved of {}", a.mode, a.bytes));
    }
    println!(
        "{{\"seconds\": {secs:.4}, \"bytes\": {moved}, \"client_cpu\": {:.4}, \"client\": \"raw\", \"interims\": {interims}, \"negotiated\": {}}}",
        cpu / secs,
        crate::json_str(&negotiated)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server that answers each READ first with an interim STATUS_PENDING granting one
    /// credit, then with the data granting none: a client that counted only final answers'
    /// credits would run dry after its first two requests.
    async fn interim_server(mut srv: TcpStream, requests: usize) {
        for _ in 0..requests {
            let mut len = [0u8; 4];
            srv.read_exact(&mut len).await.unwrap();
            let mut m = vec![0u8; u32::from_be_bytes(len) as usize];
            srv.read_exact(&mut m).await.unwrap();
            assert_eq!(rd16(&m, 12), Some(READ));
            let want = rd32(&m, HEADER + 4).unwrap() as usize;
            let answer = |status: u32, credits: u16, body: &[u8]| {
                let mut a = vec![0u8; 4 + HEADER];
                a[4..8].copy_from_slice(b"\xfeSMB");
                a[8..10].copy_from_slice(&64u16.to_le_bytes());
                a[12..16].copy_from_slice(&status.to_le_bytes());
                a[16..18].copy_from_slice(&READ.to_le_bytes());
                a[18..20].copy_from_slice(&credits.to_le_bytes());
                a[20..24].copy_from_slice(&(FLAG_RESPONSE | FLAG_ASYNC).to_le_bytes());
                a[28..36].copy_from_slice(&m[24..32]);
                a[36..44].copy_from_slice(&[7; 8]);
                a.extend_from_slice(body);
                let n = (a.len() - 4) as u32;
                a[..4].copy_from_slice(&n.to_be_bytes());
                a
            };
            srv.write_all(&answer(STATUS_PENDING, 1, &[9, 0, 0, 0, 0, 0, 0, 0, 0]))
                .await
                .unwrap();
            let mut body = vec![0u8; 16 + want];
            body[..2].copy_from_slice(&17u16.to_le_bytes());
            body[2] = (HEADER + 16) as u8;
            body[4..8].copy_from_slice(&(want as u32).to_le_bytes());
            srv.write_all(&answer(STATUS_SUCCESS, 0, &body))
                .await
                .unwrap();
        }
    }

    #[tokio::test]
    async fn interim_answers_grant_their_credits_and_the_final_answer_completes() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (srv, _) = l.accept().await.unwrap();
        let server = tokio::spawn(interim_server(srv, 4));
        let s = Session {
            stream: client,
            rbuf: Vec::new(),
            message_id: 5,
            session_id: 9,
            tree_id: 3,
            dialect: SMB311,
            signer: None,
            credits: 2,
            max_read: MIB,
            max_write: MIB,
            cipher: 0,
            cipher_keys: None,
        };
        let mut c = Chan::new(s, Protection::Off, 65536, false).unwrap();
        let moved = c
            .transfer(&[1; 16], false, (0, 4 * 65536), 65536, 2)
            .await
            .unwrap();
        assert_eq!(moved, 4 * 65536);
        assert_eq!(c.interims, 4);
        server.await.unwrap();
    }

    #[test]
    fn sealed_messages_open_with_the_key_only() {
        let key = |b: u8| Aes128Gcm::new_from_slice(&[b; 16]).unwrap();
        let msg: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
        let mut out = vec![0u8; TRANSFORM + msg.len()];
        seal(&key(1), &[3; 12], 77, &msg, &mut out).unwrap();
        assert_ne!(out[TRANSFORM..], msg[..]);

        let mut m = out.clone();
        open(&key(1), 77, &mut m).unwrap();
        assert_eq!(m[TRANSFORM..], msg[..]);

        let mut m = out.clone();
        assert!(open(&key(2), 77, &mut m).is_err(), "wrong key");
        let mut m = out.clone();
        m[TRANSFORM + 10] ^= 1;
        assert!(open(&key(1), 77, &mut m).is_err(), "changed byte");
        let mut m = out.clone();
        m[30] ^= 1;
        assert!(open(&key(1), 77, &mut m).is_err(), "changed nonce");
        let mut m = out.clone();
        assert!(open(&key(1), 78, &mut m).is_err(), "other session");
    }
}
