//! NTLMSSP messages and NTLMv2 cryptography ([MS-NLMP] 2.2, 3.3.2, 3.4).
//!
//! Only what an acceptor needs: parse NEGOTIATE and AUTHENTICATE, build CHALLENGE, compute and
//! check NTLMv2 responses, derive keys and compute the message MAC used for mechListMIC.

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use rc4::{KeyInit, Rc4, StreamCipher, consts::U16};

pub(crate) const SIGNATURE: &[u8; 8] = b"NTLMSSP\0";
pub(crate) const MSG_NEGOTIATE: u32 = 1;
pub(crate) const MSG_CHALLENGE: u32 = 2;
pub(crate) const MSG_AUTHENTICATE: u32 = 3;

/// NegotiateFlags bits, [MS-NLMP] 2.2.2.5.
pub(crate) mod flags {
    pub const UNICODE: u32 = 0x0000_0001;
    pub const OEM: u32 = 0x0000_0002;
    pub const REQUEST_TARGET: u32 = 0x0000_0004;
    pub const SIGN: u32 = 0x0000_0010;
    pub const SEAL: u32 = 0x0000_0020;
    pub const NTLM: u32 = 0x0000_0200;
    pub const ALWAYS_SIGN: u32 = 0x0000_8000;
    pub const TARGET_TYPE_SERVER: u32 = 0x0002_0000;
    pub const EXTENDED_SESSIONSECURITY: u32 = 0x0008_0000;
    pub const TARGET_INFO: u32 = 0x0080_0000;
    pub const VERSION: u32 = 0x0200_0000;
    pub const N128: u32 = 0x2000_0000;
    pub const KEY_EXCH: u32 = 0x4000_0000;
    pub const N56: u32 = 0x8000_0000;
}

/// AV_PAIR ids, [MS-NLMP] 2.2.2.1.
pub(crate) mod av {
    pub const EOL: u16 = 0;
    pub const NB_COMPUTER_NAME: u16 = 1;
    pub const NB_DOMAIN_NAME: u16 = 2;
    pub const DNS_COMPUTER_NAME: u16 = 3;
    pub const DNS_DOMAIN_NAME: u16 = 4;
    pub const FLAGS: u16 = 6;
    pub const TIMESTAMP: u16 = 7;
}

/// MsvAvFlags bit: the AUTHENTICATE message carries a MIC ([MS-NLMP] 2.2.2.1).
pub(crate) const AV_FLAG_MIC_PRESENT: u32 = 0x0000_0002;

/// Offset and end of the MIC field in AUTHENTICATE_MESSAGE ([MS-NLMP] 2.2.1.3).
pub(crate) const AUTH_MIC_OFFSET: usize = 72;
pub(crate) const AUTH_MIC_END: usize = 88;

/// Size of the fixed part of CHALLENGE_MESSAGE including Version ([MS-NLMP] 2.2.1.2).
const CHALLENGE_HEADER_LEN: usize = 56;

/// Length of the fixed NTLMv2_CLIENT_CHALLENGE header before its AV pairs ([MS-NLMP] 2.2.2.7).
const CLIENT_CHALLENGE_HEADER_LEN: usize = 28;

/// The flags we can honour; anything else the client asks for is dropped from CHALLENGE.
/// LM_KEY, DATAGRAM and IDENTIFY are deliberately absent.
pub(crate) const SUPPORTED_FLAGS: u32 = flags::UNICODE
    | flags::OEM
    | flags::REQUEST_TARGET
    | flags::SIGN
    | flags::SEAL
    | flags::NTLM
    | flags::ALWAYS_SIGN
    | flags::EXTENDED_SESSIONSECURITY
    | flags::TARGET_INFO
    | flags::VERSION
    | flags::N128
    | flags::KEY_EXCH
    | flags::N56;

/// Our VERSION structure ([MS-NLMP] 2.2.2.10): 10.0 build 20348, NTLMSSP_REVISION_W2K3.
const VERSION: [u8; 8] = [10, 0, 0x7c, 0x4f, 0, 0, 0, 0x0f];

/// A parse failure, turned into `AuthError::Malformed` by the acceptor.
pub(crate) type ParseResult<T> = Result<T, String>;

fn u16_at(b: &[u8], off: usize) -> ParseResult<u16> {
    b.get(off..off + 2)
        .and_then(|s| s.try_into().ok())
        .map(u16::from_le_bytes)
        .ok_or_else(|| format!("NTLM message truncated at offset {off}"))
}

fn u32_at(b: &[u8], off: usize) -> ParseResult<u32> {
    b.get(off..off + 4)
        .and_then(|s| s.try_into().ok())
        .map(u32::from_le_bytes)
        .ok_or_else(|| format!("NTLM message truncated at offset {off}"))
}

/// A (Len, MaxLen, Offset) field descriptor, resolved to its bytes, bounds-checked.
/// Returns the slice and its offset (for locating the payload start).
fn field_at<'a>(msg: &'a [u8], desc: usize, what: &str) -> ParseResult<(&'a [u8], usize)> {
    let len = usize::from(u16_at(msg, desc)?);
    let off = usize::try_from(u32_at(msg, desc + 4)?).map_err(|_| format!("{what} offset"))?;
    if len == 0 {
        return Ok((&[], off));
    }
    let end = off
        .checked_add(len)
        .ok_or_else(|| format!("{what} offset overflows"))?;
    let bytes = msg
        .get(off..end)
        .ok_or_else(|| format!("{what} ({len} bytes at {off}) lies outside the message"))?;
    Ok((bytes, off))
}

/// Checks the 12-byte NTLMSSP header and message type.
pub(crate) fn check_header(msg: &[u8], msg_type: u32) -> ParseResult<()> {
    if msg.get(..8) != Some(&SIGNATURE[..]) {
        return Err("missing NTLMSSP signature".into());
    }
    let t = u32_at(msg, 8)?;
    if t != msg_type {
        return Err(format!(
            "NTLM message type {t} where {msg_type} was expected"
        ));
    }
    Ok(())
}

/// NEGOTIATE_MESSAGE ([MS-NLMP] 2.2.1.1): only the flags matter to us; the optional domain
/// and workstation are informational and not trusted.
pub(crate) fn parse_negotiate(msg: &[u8]) -> ParseResult<u32> {
    check_header(msg, MSG_NEGOTIATE)?;
    u32_at(msg, 12)
}

/// What the acceptor puts in CHALLENGE.
pub(crate) struct ChallengeParams<'a> {
    pub flags: u32,
    pub server_challenge: [u8; 8],
    pub target_name: &'a str,
    pub nb_domain: &'a str,
    pub nb_computer: &'a str,
    pub dns_domain: &'a str,
    pub dns_computer: &'a str,
    pub filetime: u64,
}

/// The flags we answer with, from the client's NEGOTIATE flags ([MS-NLMP] 3.2.5.1.1).
pub(crate) fn challenge_flags(client: u32) -> u32 {
    let mut f = client & SUPPORTED_FLAGS;
    // One character set only, Unicode when offered.
    if f & flags::UNICODE != 0 {
        f &= !flags::OEM;
    }
    if f & (flags::UNICODE | flags::OEM) == 0 {
        f |= flags::OEM;
    }
    f | flags::NTLM | flags::TARGET_INFO | flags::TARGET_TYPE_SERVER | flags::REQUEST_TARGET
}

#[cfg(test)]
fn utf16le(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

fn decode_str(b: &[u8], unicode: bool, what: &str) -> ParseResult<String> {
    if unicode {
        if !b.len().is_multiple_of(2) {
            return Err(format!("{what} has an odd byte length"));
        }
        let units = b.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]]));
        // Sized for the usual (ASCII) name, so it is not grown a character at a time.
        let mut out = String::with_capacity(b.len() / 2);
        for c in char::decode_utf16(units) {
            out.push(c.map_err(|_| format!("{what} is not valid UTF-16"))?);
        }
        Ok(out)
    } else {
        Ok(b.iter().map(|&c| char::from(c)).collect())
    }
}

/// Appends one AV_PAIR whose value is `s` in UTF-16LE, written straight into `out`.
fn push_av_str(out: &mut Vec<u8>, id: u16, s: &str) {
    out.extend_from_slice(&id.to_le_bytes());
    let len_at = out.len();
    out.extend_from_slice(&[0, 0]);
    let start = out.len();
    // AV values we emit are our own short names; clamp rather than wrap if a configured name
    // were absurdly long.
    for unit in s.encode_utf16() {
        if out.len() - start + 2 > usize::from(u16::MAX) {
            break;
        }
        out.extend_from_slice(&unit.to_le_bytes());
    }
    let len = u16::try_from(out.len() - start).unwrap_or(u16::MAX);
    out[len_at..len_at + 2].copy_from_slice(&len.to_le_bytes());
}

fn push_av(out: &mut Vec<u8>, id: u16, value: &[u8]) {
    out.extend_from_slice(&id.to_le_bytes());
    let len = u16::try_from(value.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(value.get(..usize::from(len)).unwrap_or(value));
}

/// Builds CHALLENGE_MESSAGE ([MS-NLMP] 2.2.1.2), in one buffer: one is built per logon, and
/// the names are encoded straight into it.
pub(crate) fn build_challenge(p: &ChallengeParams<'_>) -> Vec<u8> {
    let unicode = p.flags & flags::UNICODE != 0;
    let names = p.target_name.len()
        + p.nb_domain.len()
        + p.nb_computer.len()
        + p.dns_domain.len()
        + p.dns_computer.len();
    // UTF-16 takes at most 2 bytes per UTF-8 byte; 5 AV headers, the timestamp and EOL.
    let mut m = Vec::with_capacity(CHALLENGE_HEADER_LEN + 2 * names + 6 * 4 + 8);
    m.extend_from_slice(SIGNATURE);
    m.extend_from_slice(&MSG_CHALLENGE.to_le_bytes());
    m.extend_from_slice(&[0u8; 8]); // TargetNameFields, filled in below
    m.extend_from_slice(&p.flags.to_le_bytes());
    m.extend_from_slice(&p.server_challenge);
    m.extend_from_slice(&[0u8; 8]);
    m.extend_from_slice(&[0u8; 8]); // TargetInfoFields, filled in below
    if p.flags & flags::VERSION != 0 {
        m.extend_from_slice(&VERSION);
    } else {
        m.extend_from_slice(&[0u8; 8]);
    }
    debug_assert_eq!(m.len(), CHALLENGE_HEADER_LEN);

    let name_off = m.len();
    if unicode {
        for unit in p.target_name.encode_utf16() {
            if m.len() - name_off + 2 > 0xfff0 {
                break;
            }
            m.extend_from_slice(&unit.to_le_bytes());
        }
    } else {
        // OEM is taken as Latin-1 with '?' for what does not fit: no modern client negotiates
        // OEM, so a code-page table is not worth it.
        m.extend(
            p.target_name
                .chars()
                .take(0xfff0)
                .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?')),
        );
    }
    let name_len = m.len() - name_off;

    let info_off = m.len();
    push_av_str(&mut m, av::NB_DOMAIN_NAME, p.nb_domain);
    push_av_str(&mut m, av::NB_COMPUTER_NAME, p.nb_computer);
    push_av_str(&mut m, av::DNS_DOMAIN_NAME, p.dns_domain);
    push_av_str(&mut m, av::DNS_COMPUTER_NAME, p.dns_computer);
    push_av(&mut m, av::TIMESTAMP, &p.filetime.to_le_bytes());
    push_av(&mut m, av::EOL, &[]);
    m.truncate(info_off + 0xfff0);
    let info_len = m.len() - info_off;

    set_field(&mut m, 12, name_len, name_off);
    set_field(&mut m, 40, info_len, info_off);
    m
}

/// Fills in a (Len, MaxLen, Offset) field descriptor at `at`.
fn set_field(m: &mut [u8], at: usize, len: usize, off: usize) {
    // Both are bounded by the truncations in build_challenge.
    let len = u16::try_from(len).unwrap_or(0).to_le_bytes();
    let off = u32::try_from(off).unwrap_or(0).to_le_bytes();
    if let Some(d) = m.get_mut(at..at + 8) {
        d[..2].copy_from_slice(&len);
        d[2..4].copy_from_slice(&len);
        d[4..].copy_from_slice(&off);
    }
}

/// A parsed AUTHENTICATE_MESSAGE ([MS-NLMP] 2.2.1.3), borrowing from the token.
#[derive(Debug)]
pub(crate) struct Authenticate<'a> {
    pub lm_response: &'a [u8],
    pub nt_response: &'a [u8],
    pub domain: String,
    pub user: String,
    pub workstation: String,
    pub encrypted_session_key: &'a [u8],
    pub flags: u32,
    /// The MIC field, when the fixed part is long enough to hold one (payload starts at or
    /// after byte 88).
    pub mic: Option<[u8; 16]>,
}

pub(crate) fn parse_authenticate(
    msg: &[u8],
    negotiated_flags: u32,
) -> ParseResult<Authenticate<'_>> {
    check_header(msg, MSG_AUTHENTICATE)?;
    let flags = u32_at(msg, 60)?;
    // Strings follow the character set that was agreed in CHALLENGE; a client that changes
    // its mind in AUTHENTICATE is followed only if it still says Unicode.
    let unicode = (if flags == 0 { negotiated_flags } else { flags }) & flags::UNICODE != 0;
    let (lm, lm_off) = field_at(msg, 12, "LmChallengeResponse")?;
    let (nt, nt_off) = field_at(msg, 20, "NtChallengeResponse")?;
    let (dom, dom_off) = field_at(msg, 28, "DomainName")?;
    let (user, user_off) = field_at(msg, 36, "UserName")?;
    let (ws, ws_off) = field_at(msg, 44, "Workstation")?;
    let (key, key_off) = field_at(msg, 52, "EncryptedRandomSessionKey")?;

    // The payload begins at the lowest offset of a non-empty field; the MIC exists only if the
    // fixed part reaches past it.
    let payload_start = [
        (lm, lm_off),
        (nt, nt_off),
        (dom, dom_off),
        (user, user_off),
        (ws, ws_off),
        (key, key_off),
    ]
    .iter()
    .filter(|(b, _)| !b.is_empty())
    .map(|&(_, off)| off)
    .min()
    .unwrap_or(msg.len());
    let mic = if payload_start >= AUTH_MIC_END {
        msg.get(AUTH_MIC_OFFSET..AUTH_MIC_END)
            .and_then(|s| <[u8; 16]>::try_from(s).ok())
    } else {
        None
    };
    Ok(Authenticate {
        lm_response: lm,
        nt_response: nt,
        domain: decode_str(dom, unicode, "DomainName")?,
        user: decode_str(user, unicode, "UserName")?,
        workstation: decode_str(ws, unicode, "Workstation")?,
        encrypted_session_key: key,
        flags,
        mic,
    })
}

/// The parts of an NTLMv2 response ([MS-NLMP] 2.2.2.8) we use.
pub(crate) struct NtlmV2Response<'a> {
    pub nt_proof: &'a [u8],
    /// The NTLMv2_CLIENT_CHALLENGE ("temp" in 3.3.2), covered by NTProofStr.
    pub blob: &'a [u8],
    /// MsvAvFlags from the client's AV pairs, 0 when absent.
    pub av_flags: u32,
}

/// Splits and sanity-checks an NTLMv2 response. The AV pairs are walked to find MsvAvFlags;
/// a list that runs past its buffer is malformed.
pub(crate) fn parse_ntlmv2_response(nt: &[u8]) -> ParseResult<NtlmV2Response<'_>> {
    let (nt_proof, blob) = nt.split_at_checked(16).ok_or("NTLMv2 response too short")?;
    if blob.len() < CLIENT_CHALLENGE_HEADER_LEN {
        return Err("NTLMv2 client challenge too short".into());
    }
    if blob.first() != Some(&1) || blob.get(1) != Some(&1) {
        return Err("NTLMv2 client challenge has an unknown RespType".into());
    }
    let mut av_flags = 0;
    let mut pos = CLIENT_CHALLENGE_HEADER_LEN;
    loop {
        // Some clients end the list at the buffer end without an EOL pair; accept that.
        if pos == blob.len() {
            break;
        }
        let id = u16_at(blob, pos)?;
        let len = usize::from(u16_at(blob, pos + 2)?);
        let start = pos + 4;
        let value = blob
            .get(start..start + len)
            .ok_or("NTLMv2 AV pair runs past the response")?;
        if id == av::EOL {
            break;
        }
        if id == av::FLAGS {
            av_flags = u32_at(value, 0)?;
        }
        pos = start + len;
    }
    Ok(NtlmV2Response {
        nt_proof,
        blob,
        av_flags,
    })
}

type HmacMd5 = Hmac<Md5>;

pub(crate) fn hmac_md5(key: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match <HmacMd5 as Mac>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return [0; 16],
    };
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

fn md5(parts: &[&[u8]]) -> [u8; 16] {
    let mut h = Md5::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// NTOWFv2 ([MS-NLMP] 3.3.2): HMAC-MD5(NT hash, UTF-16LE(Uppercase(user) || domain)).
/// The domain is not upper-cased: the client hashes it as it typed it.
pub(crate) fn ntowfv2(nt_hash: &[u8; 16], user: &str, domain: &str) -> [u8; 16] {
    let mut ident = Vec::with_capacity(2 * (user.len() + domain.len()));
    let mut units = [0u16; 2];
    for c in user.chars().map(crate::userdb::upper_char) {
        for u in c.encode_utf16(&mut units) {
            ident.extend_from_slice(&u.to_le_bytes());
        }
    }
    for u in domain.encode_utf16() {
        ident.extend_from_slice(&u.to_le_bytes());
    }
    hmac_md5(nt_hash, &[&ident])
}

/// NTProofStr = HMAC-MD5(NTOWFv2, ServerChallenge || temp) ([MS-NLMP] 3.3.2).
pub(crate) fn nt_proof_str(ntowf: &[u8; 16], server_challenge: &[u8; 8], blob: &[u8]) -> [u8; 16] {
    hmac_md5(ntowf, &[server_challenge, blob])
}

/// SessionBaseKey = HMAC-MD5(NTOWFv2, NTProofStr) ([MS-NLMP] 3.3.2); for NTLMv2 it is also the
/// KeyExchangeKey (3.4.5.1).
pub(crate) fn session_base_key(ntowf: &[u8; 16], nt_proof: &[u8]) -> [u8; 16] {
    hmac_md5(ntowf, &[nt_proof])
}

/// RC4 over a copy of `data` with a 16-byte key.
pub(crate) fn rc4(key: &[u8; 16], data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    let mut cipher = Rc4::<U16>::new(key.into());
    cipher.apply_keystream(&mut out);
    out
}

/// Constant-time equality for secrets of equal public length.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Which way a key protects traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    ClientToServer,
    ServerToClient,
}

/// SIGNKEY ([MS-NLMP] 3.4.5.2), for extended session security.
pub(crate) fn sign_key(exported: &[u8; 16], dir: Direction) -> [u8; 16] {
    let magic: &[u8] = match dir {
        Direction::ClientToServer => {
            b"session key to client-to-server signing key magic constant\0"
        }
        Direction::ServerToClient => {
            b"session key to server-to-client signing key magic constant\0"
        }
    };
    md5(&[exported, magic])
}

/// SEALKEY ([MS-NLMP] 3.4.5.3) with extended session security: the exported key, cut to
/// 16, 7 or 5 bytes by NEGOTIATE_128 / NEGOTIATE_56, hashed with the direction's constant.
pub(crate) fn seal_key(exported: &[u8; 16], flags_: u32, dir: Direction) -> [u8; 16] {
    let magic: &[u8] = match dir {
        Direction::ClientToServer => {
            b"session key to client-to-server sealing key magic constant\0"
        }
        Direction::ServerToClient => {
            b"session key to server-to-client sealing key magic constant\0"
        }
    };
    let n = if flags_ & flags::N128 != 0 {
        16
    } else if flags_ & flags::N56 != 0 {
        7
    } else {
        5
    };
    md5(&[exported.get(..n).unwrap_or(exported), magic])
}

/// NTLMSSP_MESSAGE_SIGNATURE with extended session security ([MS-NLMP] 3.4.4.2) for the
/// first message of a direction (a fresh RC4 handle), as SPNEGO's mechListMIC needs.
pub(crate) fn mac(
    exported: &[u8; 16],
    flags_: u32,
    dir: Direction,
    seq: u32,
    msg: &[u8],
) -> [u8; 16] {
    let digest = hmac_md5(&sign_key(exported, dir), &[&seq.to_le_bytes(), msg]);
    let mut checksum = [0u8; 8];
    checksum.copy_from_slice(digest.get(..8).unwrap_or(&[0; 8]));
    if flags_ & flags::KEY_EXCH != 0 {
        let sealed = rc4(&seal_key(exported, flags_, dir), &checksum);
        checksum.copy_from_slice(sealed.get(..8).unwrap_or(&[0; 8]));
    }
    let mut out = [0u8; 16];
    out[..4].copy_from_slice(&1u32.to_le_bytes());
    out[4..12].copy_from_slice(&checksum);
    out[12..].copy_from_slice(&seq.to_le_bytes());
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    // [MS-NLMP] 4.2.4: NTLMv2 authentication test vectors.
    const SERVER_CHALLENGE: [u8; 8] = [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef];
    const CLIENT_CHALLENGE: [u8; 8] = [0xaa; 8];
    const RANDOM_SESSION_KEY: [u8; 16] = [0x55; 16];

    /// The "temp" blob of 4.2.4.1.3 built from the spec's AV pairs (NbDomainName "Domain",
    /// NbComputerName "Server", time 0).
    fn spec_temp() -> Vec<u8> {
        let mut t = vec![1, 1, 0, 0, 0, 0, 0, 0];
        t.extend_from_slice(&[0u8; 8]); // Time
        t.extend_from_slice(&CLIENT_CHALLENGE);
        t.extend_from_slice(&[0u8; 4]);
        push_av(&mut t, av::NB_DOMAIN_NAME, &utf16le("Domain"));
        push_av(&mut t, av::NB_COMPUTER_NAME, &utf16le("Server"));
        push_av(&mut t, av::EOL, &[]);
        t.extend_from_slice(&[0u8; 4]);
        t
    }

    #[test]
    fn ms_nlmp_4_2_4_ntlmv2_vectors() {
        let nt = crate::nt_hash("Password");
        let owf = ntowfv2(&nt, "User", "Domain");
        assert_eq!(
            owf.to_vec(),
            hex("0c 86 8a 40 3b fd 7a 93 a3 00 1e f2 2e f0 2e 3f")
        );
        let temp = spec_temp();
        let proof = nt_proof_str(&owf, &SERVER_CHALLENGE, &temp);
        assert_eq!(
            proof.to_vec(),
            hex("68 cd 0a b8 51 e5 1c 96 aa bc 92 7b eb ef 6a 1c")
        );
        let base = session_base_key(&owf, &proof);
        assert_eq!(
            base.to_vec(),
            hex("8d e4 0c ca db c1 4a 82 f1 5c b0 ad 0d e9 5c a3")
        );
        // 4.2.4.2.3: EncryptedRandomSessionKey = RC4(KeyExchangeKey = SessionBaseKey, 0x55 * 16).
        let enc = rc4(&base, &RANDOM_SESSION_KEY);
        assert_eq!(enc, hex("c5 da d2 54 4f c9 79 90 94 ce 1c e9 0b c9 d0 3e"));
        assert_eq!(rc4(&base, &enc), RANDOM_SESSION_KEY.to_vec());
        // 4.2.4.2.2 LMv2 response, to be sure our HMAC plumbing matches a second output.
        let lmv2 = hmac_md5(&owf, &[&SERVER_CHALLENGE, &CLIENT_CHALLENGE]);
        assert_eq!(
            lmv2.to_vec(),
            hex("86 c3 50 97 ac 9c ec 10 25 54 76 4a 57 cc cc 19")
        );
    }

    #[test]
    fn ms_nlmp_4_2_4_4_keys_and_signature_pieces() {
        // 4.2.4.4: ExportedSessionKey = RandomSessionKey (KEY_EXCH), seq 0, "Plaintext" UTF-16.
        let key = RANDOM_SESSION_KEY;
        let flags_ = 0xe28a_8233;
        let sk = sign_key(&key, Direction::ClientToServer);
        assert_eq!(
            sk.to_vec(),
            hex("47 88 dc 86 1b 47 82 f3 5d 43 fd 98 fe 1a 2d 39")
        );
        let seal = seal_key(&key, flags_, Direction::ClientToServer);
        assert_eq!(
            seal.to_vec(),
            hex("59 f6 00 97 3c c4 96 0a 25 48 0a 7c 19 6e 4c 58")
        );
        let plaintext = utf16le("Plaintext");
        let checksum = hmac_md5(&sk, &[&0u32.to_le_bytes(), &plaintext]);
        assert_eq!(checksum[..8].to_vec(), hex("70 35 28 51 f2 56 43 09"));
        // One RC4 handle seals the data, then the checksum.
        let mut stream = plaintext.clone();
        stream.extend_from_slice(&checksum[..8]);
        let out = rc4(&seal, &stream);
        assert_eq!(
            out[..18].to_vec(),
            hex("54 e5 01 65 bf 19 36 dc 99 60 20 c1 81 1b 0f 06 fb 5f")
        );
        assert_eq!(out[18..].to_vec(), hex("7f b3 8e c5 c5 5d 49 76"));
        // Our mac() is the same construction on a fresh handle: version 1, RC4'd checksum, seq.
        let m = mac(&key, flags_, Direction::ClientToServer, 0, &plaintext);
        assert_eq!(m[..4], [1, 0, 0, 0]);
        assert_eq!(m[4..12].to_vec(), rc4(&seal, &checksum[..8]));
        assert_eq!(m[12..], [0, 0, 0, 0]);
        // Without KEY_EXCH the checksum is not sealed.
        let m = mac(
            &key,
            flags_ & !flags::KEY_EXCH,
            Direction::ClientToServer,
            0,
            &plaintext,
        );
        assert_eq!(m[4..12], checksum[..8]);
        assert_ne!(
            sign_key(&key, Direction::ServerToClient),
            sign_key(&key, Direction::ClientToServer)
        );
    }

    #[test]
    fn challenge_layout() {
        let p = ChallengeParams {
            flags: challenge_flags(0xe2088297),
            server_challenge: SERVER_CHALLENGE,
            target_name: "SERVER",
            nb_domain: "WORKGROUP",
            nb_computer: "SERVER",
            dns_domain: "",
            dns_computer: "server",
            filetime: 0x01d0_0000_0000_0000,
        };
        let m = build_challenge(&p);
        check_header(&m, MSG_CHALLENGE).unwrap();
        assert_eq!(&m[24..32], &SERVER_CHALLENGE);
        let (name, _) = field_at(&m, 12, "t").unwrap();
        assert_eq!(decode_str(name, true, "t").unwrap(), "SERVER");
        let f = u32_at(&m, 20).unwrap();
        assert_ne!(f & flags::TARGET_INFO, 0);
        assert_ne!(f & flags::KEY_EXCH, 0);
        assert_eq!(f & 0x80, 0, "LM_KEY must never be offered");
        assert_eq!(&m[48..56], &VERSION);
        let (info, _) = field_at(&m, 40, "i").unwrap();
        // Timestamp pair is present with our value.
        let ts = 0x01d0_0000_0000_0000u64.to_le_bytes();
        assert!(
            info.windows(12)
                .any(|w| w[..4] == [7, 0, 8, 0] && w[4..] == ts)
        );
        assert!(info.ends_with(&[0, 0, 0, 0]));
    }

    #[test]
    fn challenge_carries_every_name_whole() {
        for unicode in [true, false] {
            let flags = if unicode {
                challenge_flags(flags::UNICODE)
            } else {
                challenge_flags(0)
            };
            let p = ChallengeParams {
                flags,
                server_challenge: SERVER_CHALLENGE,
                target_name: "SRV-Ä",
                nb_domain: "WORKGRÜPPE",
                nb_computer: "SRV-Ä",
                dns_domain: "",
                dns_computer: "srv-ä.example",
                filetime: 7,
            };
            let m = build_challenge(&p);
            let (name, off) = field_at(&m, 12, "t").unwrap();
            assert_eq!(off, CHALLENGE_HEADER_LEN);
            let expect_name: Vec<u8> = if unicode {
                utf16le("SRV-Ä")
            } else {
                b"SRV-\xc4".to_vec()
            };
            assert_eq!(name, expect_name.as_slice());
            let (mut info, info_off) = field_at(&m, 40, "i").unwrap();
            assert_eq!(info_off, off + name.len());
            assert_eq!(info_off + info.len(), m.len());
            let mut pairs = Vec::new();
            while info.len() >= 4 {
                let id = u16::from_le_bytes([info[0], info[1]]);
                let len = usize::from(u16::from_le_bytes([info[2], info[3]]));
                pairs.push((id, info[4..4 + len].to_vec()));
                info = &info[4 + len..];
            }
            assert!(info.is_empty());
            assert_eq!(
                pairs,
                vec![
                    (av::NB_DOMAIN_NAME, utf16le("WORKGRÜPPE")),
                    (av::NB_COMPUTER_NAME, utf16le("SRV-Ä")),
                    (av::DNS_DOMAIN_NAME, Vec::new()),
                    (av::DNS_COMPUTER_NAME, utf16le("srv-ä.example")),
                    (av::TIMESTAMP, 7u64.to_le_bytes().to_vec()),
                    (av::EOL, Vec::new()),
                ]
            );
        }
    }

    #[test]
    fn challenge_flags_pick_one_charset() {
        assert_eq!(challenge_flags(flags::UNICODE | flags::OEM) & flags::OEM, 0);
        assert_ne!(challenge_flags(0) & flags::OEM, 0);
        assert_eq!(challenge_flags(0x0000_0080) & 0x80, 0);
    }
}
