//! The client side of NTLMv2 inside SPNEGO: [MS-NLMP] 2.2.1 (messages), 3.1.5.1.2 and 3.3.2
//! (NTLMv2 response), 3.4.4.2 (message signature, for the mechListMIC), 3.1.5.1.2 (MIC);
//! [MS-SPNG] / RFC 4178 for the wrapping.

use super::crypto::{Rc4, hmac_md5, md5};

const SIGNATURE: &[u8; 8] = b"NTLMSSP\0";

pub const NEGOTIATE_UNICODE: u32 = 0x0000_0001;
const REQUEST_TARGET: u32 = 0x0000_0004;
pub const NEGOTIATE_SIGN: u32 = 0x0000_0010;
const NEGOTIATE_SEAL: u32 = 0x0000_0020;
const NEGOTIATE_NTLM: u32 = 0x0000_0200;
const ALWAYS_SIGN: u32 = 0x0000_8000;
pub const EXTENDED_SESSIONSECURITY: u32 = 0x0008_0000;
const TARGET_INFO: u32 = 0x0080_0000;
const NEGOTIATE_VERSION: u32 = 0x0200_0000;
const NEGOTIATE_128: u32 = 0x2000_0000;
const KEY_EXCH: u32 = 0x4000_0000;
const NEGOTIATE_56: u32 = 0x8000_0000;

/// What Windows 11 asks for in its NEGOTIATE_MESSAGE.
pub const CLIENT_FLAGS: u32 = NEGOTIATE_UNICODE
    | REQUEST_TARGET
    | NEGOTIATE_SIGN
    | NEGOTIATE_SEAL
    | NEGOTIATE_NTLM
    | ALWAYS_SIGN
    | EXTENDED_SESSIONSECURITY
    | TARGET_INFO
    | NEGOTIATE_VERSION
    | NEGOTIATE_128
    | KEY_EXCH
    | NEGOTIATE_56;

/// [MS-NLMP] 2.2.2.10: Windows 11 (10.0, build 26100), NTLM revision 15.
const VERSION: [u8; 8] = [10, 0, 0x74, 0x65, 0, 0, 0, 15];

const AV_EOL: u16 = 0;
const AV_FLAGS: u16 = 6;
const AV_TIMESTAMP: u16 = 7;
const AV_FLAG_MIC: u32 = 0x2;

/// The NTLMSSP OID, 1.3.6.1.4.1.311.2.2.10, and the DER MechTypeList the client sends (the
/// mechListMIC covers exactly these bytes).
const NTLMSSP_OID: &[u8] = &[
    0x06, 0x0a, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x02, 0x0a,
];
const SPNEGO_OID: &[u8] = &[0x06, 0x06, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x02];

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// NTOWFv2's key for a user: HMAC-MD5(MD4(password), UPPER(user) || domain), all UTF-16LE.
/// The same for every session, so computed once.
pub fn response_key_nt(user: &str, domain: &str, password: &str) -> [u8; 16] {
    use md4::Digest as _;
    let nt_hash: [u8; 16] = md4::Md4::digest(utf16(password)).into();
    let ud = utf16(&(user.to_uppercase() + domain));
    hmac_md5(&nt_hash, &[&ud])
}

pub fn negotiate_message() -> Vec<u8> {
    let mut m = Vec::with_capacity(40);
    m.extend_from_slice(SIGNATURE);
    m.extend_from_slice(&1u32.to_le_bytes());
    m.extend_from_slice(&CLIENT_FLAGS.to_le_bytes());
    // Domain and workstation: empty, offset at the end of the fixed part.
    for _ in 0..2 {
        m.extend_from_slice(&[0, 0, 0, 0]);
        m.extend_from_slice(&40u32.to_le_bytes());
    }
    m.extend_from_slice(&VERSION);
    m
}

fn der_len(out: &mut Vec<u8>, n: usize) {
    if n < 0x80 {
        out.push(n as u8);
    } else if n < 0x100 {
        out.extend_from_slice(&[0x81, n as u8]);
    } else {
        out.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]);
    }
}

fn der(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut o = Vec::with_capacity(body.len() + 4);
    o.push(tag);
    der_len(&mut o, body.len());
    o.extend_from_slice(body);
    o
}

fn mech_type_list() -> Vec<u8> {
    der(0x30, NTLMSSP_OID)
}

/// [MS-SPNG] 2.2.1: the initial token, NegTokenInit offering NTLMSSP with its NEGOTIATE.
pub fn spnego_init(ntlm_negotiate: &[u8]) -> Vec<u8> {
    let mut seq = der(0xa0, &mech_type_list());
    seq.extend_from_slice(&der(0xa2, &der(0x04, ntlm_negotiate)));
    let mut inner = SPNEGO_OID.to_vec();
    inner.extend_from_slice(&der(0xa0, &der(0x30, &seq)));
    der(0x60, &inner)
}

/// A NegTokenResp carrying the AUTHENTICATE and the mechListMIC.
pub fn spnego_resp(ntlm_authenticate: &[u8], mech_list_mic: &[u8]) -> Vec<u8> {
    let mut seq = der(0xa2, &der(0x04, ntlm_authenticate));
    seq.extend_from_slice(&der(0xa3, &der(0x04, mech_list_mic)));
    der(0xa1, &der(0x30, &seq))
}

/// One DER element: (tag, body, rest).
fn der_next(b: &[u8]) -> Result<(u8, &[u8], &[u8]), String> {
    let (&tag, b) = b.split_first().ok_or("SPNEGO: truncated tag")?;
    let (&l0, b) = b.split_first().ok_or("SPNEGO: truncated length")?;
    let (len, b) = if l0 < 0x80 {
        (l0 as usize, b)
    } else {
        let n = (l0 & 0x7f) as usize;
        if n == 0 || n > 3 || b.len() < n {
            return Err("SPNEGO: bad length".into());
        }
        (
            b[..n].iter().fold(0usize, |a, &x| a << 8 | x as usize),
            &b[n..],
        )
    };
    if b.len() < len {
        return Err("SPNEGO: element longer than the token".into());
    }
    Ok((tag, &b[..len], &b[len..]))
}

/// A server's NegTokenResp: (negState if present, responseToken if present).
pub fn parse_spnego_resp(token: &[u8]) -> Result<(Option<u8>, Option<&[u8]>), String> {
    let (tag, body, _) = der_next(token)?;
    if tag != 0xa1 {
        return Err(format!("SPNEGO: expected NegTokenResp, got tag {tag:#x}"));
    }
    let (tag, mut seq, _) = der_next(body)?;
    if tag != 0x30 {
        return Err("SPNEGO: NegTokenResp is not a SEQUENCE".into());
    }
    let (mut state, mut resp) = (None, None);
    while !seq.is_empty() {
        let (tag, field, rest) = der_next(seq)?;
        seq = rest;
        match tag {
            0xa0 => {
                let (t, v, _) = der_next(field)?;
                if t != 0x0a || v.len() != 1 {
                    return Err("SPNEGO: bad negState".into());
                }
                state = Some(v[0]);
            }
            0xa2 => {
                let (t, v, _) = der_next(field)?;
                if t != 0x04 {
                    return Err("SPNEGO: responseToken is not an OCTET STRING".into());
                }
                resp = Some(v);
            }
            _ => {}
        }
    }
    Ok((state, resp))
}

fn u16_at(b: &[u8], o: usize) -> Result<u16, String> {
    b.get(o..o + 2)
        .map(|s| u16::from_le_bytes([s[0], s[1]]))
        .ok_or_else(|| "CHALLENGE: truncated".to_string())
}

fn u32_at(b: &[u8], o: usize) -> Result<u32, String> {
    b.get(o..o + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or_else(|| "CHALLENGE: truncated".to_string())
}

/// A field of (length, max length, offset) at `o`, as a slice of the message.
fn field(b: &[u8], o: usize) -> Result<&[u8], String> {
    let len = u16_at(b, o)? as usize;
    let off = u32_at(b, o + 4)? as usize;
    b.get(off..off.saturating_add(len))
        .ok_or_else(|| "CHALLENGE: field out of the message".to_string())
}

/// What the client needs to answer, and what it exports for SMB2.
pub struct Authenticated {
    pub message: Vec<u8>,
    pub mech_list_mic: [u8; 16],
    pub session_key: [u8; 16],
}

/// Random inputs the caller draws (8-byte client challenge, 16-byte exported session key).
pub struct Nonces {
    pub client_challenge: [u8; 8],
    pub exported_key: [u8; 16],
}

/// [MS-NLMP] 3.1.5.1.2: the AUTHENTICATE_MESSAGE answering `challenge`.
pub fn authenticate(
    negotiate: &[u8],
    challenge: &[u8],
    user: &str,
    domain: &str,
    key_nt: &[u8; 16],
    r: &Nonces,
) -> Result<Authenticated, String> {
    if challenge.len() < 48 || &challenge[..8] != SIGNATURE || u32_at(challenge, 8)? != 2 {
        return Err("CHALLENGE: not an NTLMSSP CHALLENGE_MESSAGE".into());
    }
    let server_flags = u32_at(challenge, 20)?;
    let flags = server_flags & CLIENT_FLAGS;
    if flags & EXTENDED_SESSIONSECURITY == 0 || flags & NEGOTIATE_UNICODE == 0 {
        return Err(format!(
            "CHALLENGE: the server's flags {server_flags:#x} lack ESS or UNICODE"
        ));
    }
    let server_challenge = challenge.get(24..32).ok_or("CHALLENGE: truncated")?;
    let target_info = if server_flags & TARGET_INFO != 0 {
        field(challenge, 40)?
    } else {
        &[]
    };
    // The server's AV pairs, with MsvAvFlags "MIC present" added; its timestamp if any.
    let mut av = Vec::with_capacity(target_info.len() + 16);
    let mut timestamp = None;
    let mut av_flags = AV_FLAG_MIC;
    let mut p = target_info;
    loop {
        let id = u16_at(p, 0).map_err(|_| "CHALLENGE: truncated target info")?;
        let len = u16_at(p, 2).map_err(|_| "CHALLENGE: truncated target info")? as usize;
        let value = p
            .get(4..4 + len)
            .ok_or("CHALLENGE: target info pair out of bounds")?;
        match id {
            AV_EOL => break,
            AV_FLAGS if len == 4 => av_flags |= u32_at(value, 0)?,
            _ => {
                if id == AV_TIMESTAMP && len == 8 {
                    timestamp = Some(<[u8; 8]>::try_from(value).map_err(|_| "timestamp")?);
                }
                av.extend_from_slice(&p[..4 + len]);
            }
        }
        p = &p[4 + len..];
    }
    av.extend_from_slice(&AV_FLAGS.to_le_bytes());
    av.extend_from_slice(&4u16.to_le_bytes());
    av.extend_from_slice(&av_flags.to_le_bytes());
    av.extend_from_slice(&[0, 0, 0, 0]);

    let time = timestamp.unwrap_or_else(filetime_now);
    // [MS-NLMP] 2.2.2.7: NTLMv2_CLIENT_CHALLENGE.
    let mut temp = Vec::with_capacity(32 + av.len());
    temp.extend_from_slice(&[1, 1, 0, 0, 0, 0, 0, 0]);
    temp.extend_from_slice(&time);
    temp.extend_from_slice(&r.client_challenge);
    temp.extend_from_slice(&[0, 0, 0, 0]);
    temp.extend_from_slice(&av);
    temp.extend_from_slice(&[0, 0, 0, 0]);
    let nt_proof = hmac_md5(key_nt, &[server_challenge, &temp]);
    let mut nt_response = nt_proof.to_vec();
    nt_response.extend_from_slice(&temp);
    // With a server timestamp the LM response is Z(24); without, LMv2.
    let lm_response = if timestamp.is_some() {
        vec![0u8; 24]
    } else {
        let mut lm = hmac_md5(key_nt, &[server_challenge, &r.client_challenge]).to_vec();
        lm.extend_from_slice(&r.client_challenge);
        lm
    };
    let key_exchange_key = hmac_md5(key_nt, &[&nt_proof]);
    let (session_key, encrypted_key) = if flags & KEY_EXCH != 0 {
        let mut enc = r.exported_key;
        Rc4::new(&key_exchange_key).apply(&mut enc);
        (r.exported_key, enc.to_vec())
    } else {
        (key_exchange_key, Vec::new())
    };

    let (domain16, user16, ws16) = (utf16(domain), utf16(user), utf16("BENCH"));
    let payload: [&[u8]; 6] = [
        &lm_response,
        &nt_response,
        &domain16,
        &user16,
        &ws16,
        &encrypted_key,
    ];
    const FIXED: usize = 88;
    let mut m = Vec::with_capacity(FIXED + payload.iter().map(|p| p.len()).sum::<usize>());
    m.extend_from_slice(SIGNATURE);
    m.extend_from_slice(&3u32.to_le_bytes());
    // [MS-NLMP] 2.2.1.3: the six fields' (length, length, offset) in the header's order, the
    // payload in the same order right after the fixed part.
    let mut off = FIXED;
    for p in payload {
        let n = u16::try_from(p.len()).map_err(|_| "AUTHENTICATE: field too long")?;
        m.extend_from_slice(&n.to_le_bytes());
        m.extend_from_slice(&n.to_le_bytes());
        m.extend_from_slice(&(off as u32).to_le_bytes());
        off += p.len();
    }
    m.extend_from_slice(&flags.to_le_bytes());
    m.extend_from_slice(&VERSION);
    let mic_at = m.len();
    m.extend_from_slice(&[0u8; 16]);
    for p in payload {
        m.extend_from_slice(p);
    }
    let mic = hmac_md5(&session_key, &[negotiate, challenge, &m]);
    m[mic_at..mic_at + 16].copy_from_slice(&mic);

    // [MS-NLMP] 3.4.4.2: the mechListMIC is the NTLM signature (sequence number 0) of the
    // MechTypeList, with the client-to-server signing and sealing keys.
    let sign_key = md5(&[
        &session_key,
        b"session key to client-to-server signing key magic constant\0",
    ]);
    let seal_len = if flags & NEGOTIATE_128 != 0 {
        16
    } else if flags & NEGOTIATE_56 != 0 {
        7
    } else {
        5
    };
    let seal_key = md5(&[
        &session_key[..seal_len],
        b"session key to client-to-server sealing key magic constant\0",
    ]);
    let seq = 0u32.to_le_bytes();
    let mac = hmac_md5(&sign_key, &[&seq, &mech_type_list()]);
    let mut checksum = [0u8; 8];
    checksum.copy_from_slice(&mac[..8]);
    if flags & KEY_EXCH != 0 {
        Rc4::new(&seal_key).apply(&mut checksum);
    }
    let mut mech_list_mic = [0u8; 16];
    mech_list_mic[..4].copy_from_slice(&1u32.to_le_bytes());
    mech_list_mic[4..12].copy_from_slice(&checksum);
    mech_list_mic[12..].copy_from_slice(&seq);
    Ok(Authenticated {
        message: m,
        mech_list_mic,
        session_key,
    })
}

/// Now as a FILETIME (100 ns since 1601), little-endian.
fn filetime_now() -> [u8; 8] {
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let t = (unix.as_nanos() / 100) as u64 + 116_444_736_000_000_000;
    t.to_le_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ntowfv2_matches_the_spec_example() {
        // [MS-NLMP] 4.2.4.1.1: User "User", domain "Domain", password "Password".
        let k = response_key_nt("User", "Domain", "Password");
        assert_eq!(
            k,
            [
                0x0c, 0x86, 0x8a, 0x40, 0x3b, 0xfd, 0x7a, 0x93, 0xa3, 0x00, 0x1e, 0xf2, 0x2e, 0xf0,
                0x2e, 0x3f
            ]
        );
    }

    #[test]
    fn spnego_response_token_is_found() {
        let tok = spnego_resp(b"auth", b"0123456789abcdef");
        let (state, resp) = parse_spnego_resp(&tok).unwrap();
        assert_eq!((state, resp), (None, Some(&b"auth"[..])));
        assert!(parse_spnego_resp(&tok[..tok.len() - 1]).is_err());
    }
}
