//! The `sessions` row's client, written on the wire: no smb crate, no sspi. Per session, on
//! one TCP connection: NEGOTIATE (as Windows 11 offers it), two SESSION_SETUPs (SPNEGO,
//! NTLMv2 with MIC and mechListMIC), a signed TREE_CONNECT; then the connection is held and
//! each "echo" sends one signed ECHO and checks the signed answer.
//!
//! Why not the smb crate: it spent about 230 µs of CPU per session (more than the servers it
//! measured), its transport had to hold every successful SESSION_SETUP answer back 2 ms (see
//! main.rs), and it cannot send ECHO. This client does what the row needs and nothing else.

mod crypto;
mod ntlm;
mod stream;

pub use stream::cmd_stream;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use crypto::{Signer, kdf128, preauth_step};

const HEADER: usize = 64;
const NEGOTIATE: u16 = 0x0000;
const SESSION_SETUP: u16 = 0x0001;
const TREE_CONNECT: u16 = 0x0003;
const ECHO: u16 = 0x000D;

const STATUS_SUCCESS: u32 = 0;
const STATUS_MORE_PROCESSING_REQUIRED: u32 = 0xC000_0016;
const FLAG_RESPONSE: u32 = 0x1;

const SMB202: u16 = 0x0202;
const SMB210: u16 = 0x0210;
const SMB300: u16 = 0x0300;
const SMB302: u16 = 0x0302;
const SMB311: u16 = 0x0311;
const DIALECTS: [u16; 5] = [SMB202, SMB210, SMB300, SMB302, SMB311];

/// Windows 11's NEGOTIATE capabilities: DFS, LEASING, LARGE_MTU, MULTI_CHANNEL,
/// PERSISTENT_HANDLES, DIRECTORY_LEASING, ENCRYPTION.
const CAPABILITIES: u32 = 0x7F;
const SIGNING_ENABLED: u16 = 0x1;

/// [MS-SMB2] 2.2.3.1: context types and the ids Windows 11 offers, in its order.
const CTX_PREAUTH: u16 = 0x0001;
const CTX_ENCRYPTION: u16 = 0x0002;
const CTX_SIGNING: u16 = 0x0008;
const SHA512: u16 = 0x0001;
/// AES-128-GCM, AES-128-CCM, AES-256-GCM, AES-256-CCM.
const CIPHERS: [u16; 4] = [0x0002, 0x0001, 0x0004, 0x0003];
const HMAC_SHA256: u16 = 0;
const AES_CMAC: u16 = 1;
const AES_GMAC: u16 = 2;
/// AES-GMAC, AES-CMAC, HMAC-SHA256.
const SIGNING_ALGOS: [u16; 3] = [AES_GMAC, AES_CMAC, HMAC_SHA256];

/// Messages larger than this are refused (nothing this client asks for comes near).
const RECEIVE_MAX: usize = 1 << 20;

/// How long one request may wait for its answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(120);

/// The settings every session shares; the NT response key is computed once.
pub struct Setup {
    pub addr: SocketAddr,
    pub user: String,
    pub domain: String,
    pub share_path: Vec<u8>,
    pub key_nt: [u8; 16],
}

impl Setup {
    pub fn new(addr: SocketAddr, host: &str, user: &str, password: &str, share: &str) -> Setup {
        // DOMAIN\user names a domain; otherwise none (the servers' own accounts).
        let (domain, user) = user.split_once('\\').unwrap_or(("", user));
        let share_path = format!("\\\\{host}\\{share}")
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        Setup {
            addr,
            user: user.to_string(),
            domain: domain.to_string(),
            share_path,
            key_nt: ntlm::response_key_nt(user, domain, password),
        }
    }
}

/// One held session: its connection, ids and signing key.
pub struct Session {
    stream: TcpStream,
    rbuf: Vec<u8>,
    message_id: u64,
    session_id: u64,
    tree_id: u32,
    dialect: u16,
    signer: Option<Signer>,
    /// Credits the server has granted and no request has spent yet ([MS-SMB2] 3.2.4.1.5).
    credits: u32,
    max_read: u32,
    max_write: u32,
    /// The cipher the server chose (3.1.1), 0 for none.
    cipher: u16,
    /// [MS-SMB2] 3.2.5.3.1: the keys to encrypt requests and to decrypt answers.
    cipher_keys: Option<([u8; 16], [u8; 16])>,
}

/// What a stream session protects its messages with after the logon.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Protection {
    Off,
    Sign,
    Encrypt,
}

fn rd16(b: &[u8], o: usize) -> Option<u16> {
    b.get(o..o + 2).map(|s| u16::from_le_bytes([s[0], s[1]]))
}

fn rd32(b: &[u8], o: usize) -> Option<u32> {
    b.get(o..o + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn rd64(b: &[u8], o: usize) -> Option<u64> {
    b.get(o..o + 8).map(|s| {
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        u64::from_le_bytes(a)
    })
}

fn random<const N: usize>() -> Result<[u8; N], String> {
    let mut b = [0u8; N];
    getrandom::getrandom(&mut b).map_err(|e| format!("random: {e}"))?;
    Ok(b)
}

/// A response: the whole SMB2 message, with its status.
struct Answer {
    msg: Vec<u8>,
    status: u32,
}

impl Answer {
    fn body(&self) -> &[u8] {
        &self.msg[HEADER..]
    }
}

impl Session {
    /// A request's message: 4 zero bytes for the transport header (filled in by `send`),
    /// the SMB2 header, then `body`.
    fn request(&self, command: u16, body: &[u8]) -> Vec<u8> {
        let mut m = Vec::with_capacity(4 + HEADER + body.len());
        m.extend_from_slice(&[0, 0, 0, 0]);
        m.extend_from_slice(b"\xfeSMB");
        m.extend_from_slice(&64u16.to_le_bytes());
        // CreditCharge: 1 from 2.1 on; NEGOTIATE goes before a dialect is known.
        let charge = u16::from(command != NEGOTIATE && self.dialect > SMB202);
        m.extend_from_slice(&charge.to_le_bytes());
        m.extend_from_slice(&0u32.to_le_bytes());
        m.extend_from_slice(&command.to_le_bytes());
        m.extend_from_slice(&8u16.to_le_bytes()); // credits asked for
        m.extend_from_slice(&0u32.to_le_bytes()); // flags
        m.extend_from_slice(&0u32.to_le_bytes()); // next command
        m.extend_from_slice(&self.message_id.to_le_bytes());
        m.extend_from_slice(&0xFEFFu32.to_le_bytes()); // process id, as Windows sends it
        m.extend_from_slice(&self.tree_id.to_le_bytes());
        m.extend_from_slice(&self.session_id.to_le_bytes());
        m.extend_from_slice(&[0u8; 16]);
        m.extend_from_slice(body);
        m
    }

    /// Sends `m` (from `request`) in one write, signed with `signer` when given, and returns
    /// the answer to it (interim STATUS_PENDING answers are skipped).
    async fn exchange(&mut self, mut m: Vec<u8>, sign: bool, step: &str) -> Result<Answer, String> {
        let n = u32::try_from(m.len() - 4).map_err(|_| format!("{step}: request too long"))?;
        m[..4].copy_from_slice(&n.to_be_bytes());
        if sign && let Some(s) = &self.signer {
            s.sign(&mut m[4..]);
        }
        let id = self.message_id;
        self.message_id += 1;
        // Every request spends a credit, NEGOTIATE included (the connection starts with one).
        self.credits = self
            .credits
            .checked_sub(1)
            .ok_or_else(|| format!("{step}: no credit left to send it"))?;
        self.stream
            .write_all(&m)
            .await
            .map_err(|e| format!("{step}: send: {e}"))?;
        loop {
            let msg = tokio::time::timeout(ANSWER_TIMEOUT, self.receive(step))
                .await
                .map_err(|_| format!("{step}: no answer in {}s", ANSWER_TIMEOUT.as_secs()))??;
            if msg.len() < HEADER || msg[..4] != *b"\xfeSMB" {
                return Err(format!("{step}: not an SMB2 answer"));
            }
            let status = rd32(&msg, 8).unwrap_or(u32::MAX);
            let flags = rd32(&msg, 16).unwrap_or(0);
            let mid = rd64(&msg, 24).unwrap_or(u64::MAX);
            // An interim answer carries credits too ([MS-SMB2] 3.3.4.2).
            self.credits = self
                .credits
                .saturating_add(u32::from(rd16(&msg, 14).unwrap_or(0)));
            if flags & FLAG_RESPONSE == 0 || mid != id {
                return Err(format!("{step}: answer to message {mid}, sent {id}"));
            }
            // STATUS_PENDING with the async flag: the real answer follows.
            if status == 0x0000_0103 && flags & 0x2 != 0 {
                continue;
            }
            return Ok(Answer { msg, status });
        }
    }

    /// The next message off the connection, without its transport header.
    async fn receive(&mut self, step: &str) -> Result<Vec<u8>, String> {
        loop {
            if self.rbuf.len() >= 4 {
                let n = u32::from_be_bytes([self.rbuf[0], self.rbuf[1], self.rbuf[2], self.rbuf[3]])
                    as usize;
                if n > RECEIVE_MAX {
                    return Err(format!("{step}: a {n}-byte answer"));
                }
                if self.rbuf.len() >= 4 + n {
                    let msg = self.rbuf[4..4 + n].to_vec();
                    self.rbuf.drain(..4 + n);
                    return Ok(msg);
                }
                self.rbuf.reserve(4 + n - self.rbuf.len());
            } else {
                self.rbuf.reserve(512);
            }
            let got = self
                .stream
                .read_buf(&mut self.rbuf)
                .await
                .map_err(|e| format!("{step}: receive: {e}"))?;
            if got == 0 {
                return Err(format!("{step}: the server closed the connection"));
            }
        }
    }

    /// Checks a signed answer's status and signature.
    fn check(&self, a: &mut Answer, step: &str, want: u32) -> Result<(), String> {
        if a.status != want {
            return Err(format!("{step}: {}", status_name(a.status)));
        }
        let s = self
            .signer
            .as_ref()
            .ok_or_else(|| format!("{step}: no signing key"))?;
        if !Signer::is_signed(&a.msg) {
            return Err(format!("{step}: answer not signed"));
        }
        if !s.verify(&mut a.msg) {
            return Err(format!(
                "{step}: wrong {} signature on the answer",
                s.name()
            ));
        }
        Ok(())
    }

    /// NEGOTIATE, SESSION_SETUP x2, TREE_CONNECT (signed).
    pub async fn connect(set: &Setup) -> Result<Session, String> {
        Session::connect_with(set, Protection::Sign).await
    }

    /// NEGOTIATE, SESSION_SETUP x2, TREE_CONNECT: signed unless `prot` is `Off`; with
    /// `Encrypt`, the cipher keys are derived too (the TREE_CONNECT is still only signed).
    pub async fn connect_with(set: &Setup, prot: Protection) -> Result<Session, String> {
        let stream = tokio::time::timeout(ANSWER_TIMEOUT, TcpStream::connect(set.addr))
            .await
            .map_err(|_| format!("connect {}: timed out", set.addr))?
            .map_err(|e| format!("connect {}: {e}", set.addr))?;
        stream
            .set_nodelay(true)
            .map_err(|e| format!("TCP_NODELAY: {e}"))?;
        let mut s = Session {
            stream,
            rbuf: Vec::new(),
            message_id: 0,
            session_id: 0,
            tree_id: 0,
            dialect: 0,
            signer: None,
            credits: 1,
            max_read: 0,
            max_write: 0,
            cipher: 0,
            cipher_keys: None,
        };
        // Random inputs of one session: client GUID, preauth salt, NTLM client challenge,
        // exported session key. One call.
        let rnd: [u8; 72] = random()?;

        // NEGOTIATE, [MS-SMB2] 2.2.3.
        let req = s.request(NEGOTIATE, &negotiate_body(&rnd[..16], &rnd[16..48]));
        let a = s.exchange(req.clone(), false, "negotiate").await?;
        if a.status != STATUS_SUCCESS {
            return Err(format!("negotiate: {}", status_name(a.status)));
        }
        let neg = parse_negotiate(a.body(), &a.msg)?;
        s.dialect = neg.dialect;
        (s.max_read, s.max_write, s.cipher) = (neg.max_read, neg.max_write, neg.cipher);
        let mut preauth = [0u8; 64];
        if neg.dialect == SMB311 {
            preauth = preauth_step(&preauth_step(&preauth, &req[4..]), &a.msg);
        }

        // SESSION_SETUP 1: SPNEGO NegTokenInit with NTLM NEGOTIATE.
        let ntlm_neg = ntlm::negotiate_message();
        let req = s.request(
            SESSION_SETUP,
            &session_setup_body(&ntlm::spnego_init(&ntlm_neg)),
        );
        let a = s.exchange(req.clone(), false, "session setup 1").await?;
        if a.status != STATUS_MORE_PROCESSING_REQUIRED {
            return Err(format!("session setup 1: {}", status_name(a.status)));
        }
        if neg.dialect == SMB311 {
            preauth = preauth_step(&preauth_step(&preauth, &req[4..]), &a.msg);
        }
        s.session_id = rd64(&a.msg, 40).unwrap_or(0);
        let token = security_buffer(&a.msg, "session setup 1")?;
        let (state, challenge) = ntlm::parse_spnego_resp(token)?;
        if state == Some(2) {
            return Err("session setup 1: SPNEGO reject".into());
        }
        let challenge = challenge.ok_or("session setup 1: no NTLM CHALLENGE in the answer")?;
        let nonces = ntlm::Nonces {
            client_challenge: rnd[48..56].try_into().map_err(|_| "random")?,
            exported_key: rnd[56..72].try_into().map_err(|_| "random")?,
        };
        let auth = ntlm::authenticate(
            &ntlm_neg,
            challenge,
            &set.user,
            &set.domain,
            &set.key_nt,
            &nonces,
        )?;

        // SESSION_SETUP 2: NegTokenResp with AUTHENTICATE and mechListMIC.
        let req = s.request(
            SESSION_SETUP,
            &session_setup_body(&ntlm::spnego_resp(&auth.message, &auth.mech_list_mic)),
        );
        if neg.dialect == SMB311 {
            preauth = preauth_step(&preauth, &req[4..]);
        }
        // [MS-SMB2] 3.2.5.3.1: the signing key.
        let key = auth.session_key;
        s.signer = Some(match neg.dialect {
            SMB311 => {
                let k = kdf128(&key, b"SMBSigningKey\0", &preauth);
                match neg.signing {
                    Some(AES_GMAC) => Signer::gmac(&k),
                    Some(HMAC_SHA256) => Signer::hmac_sha256(k),
                    _ => Signer::cmac(&k),
                }
            }
            SMB300 | SMB302 => Signer::cmac(&kdf128(&key, b"SMB2AESCMAC\0", b"SmbSign\0")),
            _ => Signer::hmac_sha256(key),
        });
        if prot == Protection::Encrypt {
            s.cipher_keys = Some(match neg.dialect {
                SMB311 => (
                    kdf128(&key, b"SMBC2SCipherKey\0", &preauth),
                    kdf128(&key, b"SMBS2CCipherKey\0", &preauth),
                ),
                SMB300 | SMB302 => (
                    kdf128(&key, b"SMB2AESCCM\0", b"ServerIn \0"),
                    kdf128(&key, b"SMB2AESCCM\0", b"ServerOut\0"),
                ),
                _ => return Err("session setup 2: no encryption before SMB 3.0".into()),
            });
        }
        let mut a = s.exchange(req, false, "session setup 2").await?;
        // [MS-SMB2] 3.3.5.5.3: on 3.1.1 the final answer is always signed with the new key
        // (a refused AUTHENTICATE is not); before 3.1.1 only when signing is required, which
        // this client (signing enabled, as Windows) does not ask for. Every later answer must
        // be signed: this client signs every request.
        if neg.dialect == SMB311 || Signer::is_signed(&a.msg) {
            s.check(&mut a, "session setup 2", STATUS_SUCCESS)?;
        } else if a.status != STATUS_SUCCESS {
            return Err(format!("session setup 2: {}", status_name(a.status)));
        }
        let flags = rd16(&a.msg, HEADER + 2).unwrap_or(0);
        if flags & 0x3 != 0 {
            return Err(format!(
                "session setup 2: logged on as guest or anonymous (flags {flags:#x})"
            ));
        }
        if flags & 0x4 != 0 && prot != Protection::Encrypt {
            return Err("session setup 2: the server asks for encryption".into());
        }

        // TREE_CONNECT, [MS-SMB2] 2.2.9, signed.
        let mut body = Vec::with_capacity(8 + set.share_path.len());
        body.extend_from_slice(&9u16.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(&((HEADER + 8) as u16).to_le_bytes());
        body.extend_from_slice(&(set.share_path.len() as u16).to_le_bytes());
        body.extend_from_slice(&set.share_path);
        let req = s.request(TREE_CONNECT, &body);
        // [MS-SMB2] 3.2.4.1.1: on 3.1.1 a TREE_CONNECT is signed even in a session that is
        // not (Samba refuses an unsigned one: STATUS_ACCESS_DENIED).
        let signed = prot != Protection::Off || s.dialect == SMB311;
        let mut a = s.exchange(req, signed, "tree connect").await?;
        if signed {
            s.check(&mut a, "tree connect", STATUS_SUCCESS)?;
        } else if a.status != STATUS_SUCCESS {
            return Err(format!("tree connect: {}", status_name(a.status)));
        } else if Signer::is_signed(&a.msg) {
            return Err("tree connect: a signed answer to an unsigned request".into());
        }
        s.tree_id = rd32(&a.msg, 36).unwrap_or(0);
        Ok(s)
    }

    /// The dialect and signing algorithm in use, e.g. "3.1.1 AES-GMAC".
    pub fn negotiated(&self) -> String {
        let d = match self.dialect {
            SMB202 => "2.0.2",
            SMB210 => "2.1",
            SMB300 => "3.0",
            SMB302 => "3.0.2",
            _ => "3.1.1",
        };
        let sig = self.signer.as_ref().map_or("unsigned", Signer::name);
        format!("{d} {sig}")
    }

    /// [MS-SMB2] 2.2.28: one signed ECHO; Ok when its answer is a validly signed success.
    pub async fn echo(&mut self) -> Result<(), String> {
        let req = self.request(ECHO, &[4, 0, 0, 0]);
        let mut a = self.exchange(req, true, "echo").await?;
        self.check(&mut a, "echo", STATUS_SUCCESS)?;
        if rd16(&a.msg, HEADER) != Some(4) {
            return Err("echo: not an ECHO answer".into());
        }
        Ok(())
    }
}

/// [MS-SMB2] 2.2.3: dialects, then (3.1.1) the three contexts, each 8-byte aligned.
fn negotiate_body(client_guid: &[u8], salt: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(200);
    b.extend_from_slice(&36u16.to_le_bytes());
    b.extend_from_slice(&(DIALECTS.len() as u16).to_le_bytes());
    b.extend_from_slice(&SIGNING_ENABLED.to_le_bytes());
    b.extend_from_slice(&0u16.to_le_bytes());
    b.extend_from_slice(&CAPABILITIES.to_le_bytes());
    b.extend_from_slice(client_guid);
    let ctx_offset_at = b.len();
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(&3u16.to_le_bytes());
    b.extend_from_slice(&0u16.to_le_bytes());
    for d in DIALECTS {
        b.extend_from_slice(&d.to_le_bytes());
    }
    let ctx = |b: &mut Vec<u8>, kind: u16, data: &[u8]| {
        while !(HEADER + b.len()).is_multiple_of(8) {
            b.push(0);
        }
        b.extend_from_slice(&kind.to_le_bytes());
        b.extend_from_slice(&(data.len() as u16).to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(data);
    };
    let first = (HEADER + b.len()).next_multiple_of(8) as u32;
    b[ctx_offset_at..ctx_offset_at + 4].copy_from_slice(&first.to_le_bytes());
    let mut pre = Vec::with_capacity(38);
    pre.extend_from_slice(&1u16.to_le_bytes());
    pre.extend_from_slice(&(salt.len() as u16).to_le_bytes());
    pre.extend_from_slice(&SHA512.to_le_bytes());
    pre.extend_from_slice(salt);
    ctx(&mut b, CTX_PREAUTH, &pre);
    let list = |ids: &[u16]| -> Vec<u8> {
        let mut v = (ids.len() as u16).to_le_bytes().to_vec();
        for i in ids {
            v.extend_from_slice(&i.to_le_bytes());
        }
        v
    };
    ctx(&mut b, CTX_ENCRYPTION, &list(&CIPHERS));
    ctx(&mut b, CTX_SIGNING, &list(&SIGNING_ALGOS));
    b
}

struct Negotiated {
    dialect: u16,
    signing: Option<u16>,
    max_read: u32,
    max_write: u32,
    cipher: u16,
}

/// [MS-SMB2] 2.2.4: the dialect, and for 3.1.1 the signing algorithm the server chose.
fn parse_negotiate(body: &[u8], msg: &[u8]) -> Result<Negotiated, String> {
    let e = || "negotiate: truncated answer".to_string();
    let dialect = rd16(body, 4).ok_or_else(e)?;
    if !DIALECTS.contains(&dialect) {
        return Err(format!(
            "negotiate: the server chose dialect {dialect:#06x}"
        ));
    }
    let mut signing = None;
    let mut cipher = 0;
    let max_read = rd32(body, 32).ok_or_else(e)?;
    let max_write = rd32(body, 36).ok_or_else(e)?;
    if dialect == SMB311 {
        let count = rd16(body, 6).ok_or_else(e)? as usize;
        let mut off = rd32(body, 60).ok_or_else(e)? as usize;
        for _ in 0..count {
            off = off.next_multiple_of(8);
            let kind = rd16(msg, off).ok_or_else(e)?;
            let len = rd16(msg, off + 2).ok_or_else(e)? as usize;
            let data = msg.get(off + 8..off + 8 + len).ok_or_else(e)?;
            if kind == CTX_SIGNING {
                if rd16(data, 0) != Some(1) {
                    return Err("negotiate: the server chose no single signing algorithm".into());
                }
                signing = Some(rd16(data, 2).ok_or_else(e)?);
            }
            if kind == CTX_ENCRYPTION {
                if rd16(data, 0) != Some(1) {
                    return Err("negotiate: the server chose no single cipher".into());
                }
                cipher = rd16(data, 2).ok_or_else(e)?;
            }
            off += 8 + len;
        }
    }
    Ok(Negotiated {
        dialect,
        signing,
        max_read,
        max_write,
        cipher,
    })
}

/// [MS-SMB2] 2.2.5: SESSION_SETUP request body with the security token.
fn session_setup_body(token: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(24 + token.len());
    b.extend_from_slice(&25u16.to_le_bytes());
    b.push(0); // flags
    b.push(SIGNING_ENABLED as u8);
    b.extend_from_slice(&1u32.to_le_bytes()); // capabilities: DFS
    b.extend_from_slice(&0u32.to_le_bytes()); // channel
    b.extend_from_slice(&((HEADER + 24) as u16).to_le_bytes());
    b.extend_from_slice(&(token.len() as u16).to_le_bytes());
    b.extend_from_slice(&0u64.to_le_bytes()); // previous session
    b.extend_from_slice(token);
    b
}

/// [MS-SMB2] 2.2.6: the security buffer of a SESSION_SETUP answer.
fn security_buffer<'a>(msg: &'a [u8], step: &str) -> Result<&'a [u8], String> {
    let off = rd16(msg, HEADER + 4).ok_or_else(|| format!("{step}: truncated answer"))? as usize;
    let len = rd16(msg, HEADER + 6).ok_or_else(|| format!("{step}: truncated answer"))? as usize;
    msg.get(off..off + len)
        .ok_or_else(|| format!("{step}: security buffer out of the message"))
}

fn status_name(s: u32) -> String {
    let name = match s {
        0xC000_006D => "STATUS_LOGON_FAILURE",
        0xC000_0022 => "STATUS_ACCESS_DENIED",
        0xC000_000D => "STATUS_INVALID_PARAMETER",
        0xC000_00CC => "STATUS_BAD_NETWORK_NAME",
        0xC000_0016 => "STATUS_MORE_PROCESSING_REQUIRED",
        0xC000_0203 => "STATUS_USER_SESSION_DELETED",
        0xC000_009A => "STATUS_INSUFFICIENT_RESOURCES",
        0xC000_00BB => "STATUS_NOT_SUPPORTED",
        0xC000_0001 => "STATUS_UNSUCCESSFUL",
        0xC000_0234 => "STATUS_ACCOUNT_LOCKED_OUT",
        0xC000_0072 => "STATUS_ACCOUNT_DISABLED",
        0xC000_0064 => "STATUS_NO_SUCH_USER",
        0xC000_0011 => "STATUS_END_OF_FILE",
        0xC000_0034 => "STATUS_OBJECT_NAME_NOT_FOUND",
        0xC000_0043 => "STATUS_SHARING_VIOLATION",
        0xC000_007F => "STATUS_DISK_FULL",
        0xC000_0128 => "STATUS_FILE_CLOSED",
        0xC000_00C9 => "STATUS_NETWORK_NAME_DELETED",
        0x0000_0103 => "STATUS_PENDING",
        0 => "STATUS_SUCCESS",
        _ => return format!("status {s:#010x}"),
    };
    format!("{name} ({s:#010x})")
}

/// The sessions row (see main.rs for the protocol with the harness).
pub async fn cmd_sessions(a: crate::Args, addr: SocketAddr) {
    let set = Arc::new(Setup::new(addr, &a.host, &a.user, &a.password, &a.share));
    println!("STARTED");
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    match lines.next_line().await {
        Ok(Some(l)) if l.trim() == "go" => {}
        _ => return,
    }
    let permits = Arc::new(Semaphore::new(a.concurrency));
    let cpu0 = crate::cpu_secs();
    let t0 = Instant::now();
    let deadline = (a.deadline > 0.0).then(|| t0 + Duration::from_secs_f64(a.deadline));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..a.count {
        let (set, permits) = (set.clone(), permits.clone());
        tasks.spawn(async move {
            let _p = permits.acquire_owned().await.ok()?;
            // A time budget keeps a slow server (Samba forks one process per connection)
            // from holding up the whole run: the harness reports how many were set up.
            if deadline.is_some_and(|d| Instant::now() > d) {
                return None;
            }
            Some(Session::connect(&set).await)
        });
    }
    let mut held = Vec::with_capacity(a.count);
    let (failed, error) = collect(&mut tasks, |s| held.push(s)).await;
    let secs = t0.elapsed().as_secs_f64();
    let cpu = crate::cpu_secs() - cpu0;
    let negotiated = held.first().map(Session::negotiated).unwrap_or_default();
    println!(
        "{{\"ready\": {}, \"failed\": {failed}, \"retries\": 0, \"seconds\": {secs:.4}, \"cpu\": {cpu:.3}, \"client\": \"raw\", \"negotiated\": {}, \"error\": {}}}",
        held.len(),
        crate::json_str(&negotiated),
        crate::json_str(&error)
    );
    while let Ok(Some(line)) = lines.next_line().await {
        if line.trim() != "echo" {
            continue;
        }
        let n = held.len();
        let mut tasks = tokio::task::JoinSet::new();
        for mut s in held.drain(..) {
            let permits = permits.clone();
            tasks.spawn(async move {
                let _p = permits.acquire_owned().await.ok()?;
                Some(s.echo().await.map(|()| s))
            });
        }
        let cpu0 = crate::cpu_secs();
        let (failed, err) = collect(&mut tasks, |s| held.push(s)).await;
        let cpu = crate::cpu_secs() - cpu0;
        println!(
            "{{\"echo_ok\": {}, \"echo_failed\": {}, \"cpu\": {cpu:.3}, \"error\": {}}}",
            n - failed,
            failed,
            crate::json_str(&err)
        );
    }
}

/// Gathers the sessions the tasks return; (how many failed, the first error).
async fn collect(
    tasks: &mut tokio::task::JoinSet<Option<Result<Session, String>>>,
    mut keep: impl FnMut(Session),
) -> (usize, String) {
    let (mut failed, mut error) = (0usize, String::new());
    while let Some(r) = tasks.join_next().await {
        let e = match r {
            Ok(Some(Ok(s))) => {
                keep(s);
                continue;
            }
            Ok(None) => continue,
            Ok(Some(Err(e))) => e,
            Err(e) => format!("task: {e}"),
        };
        failed += 1;
        if error.is_empty() {
            error = e;
        }
    }
    (failed, error)
}
