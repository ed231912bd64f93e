//! Keys and signatures: [MS-SMB2] 3.1.4.1 (signing), 3.1.4.2 (key derivation),
//! 3.3.5.4 / 3.3.5.5 (pre-authentication integrity).
//!
//! Pure functions over byte slices, so the handshake can be tested with the spec's vectors and
//! without a socket.

use aes::Aes128;
use cmac::Cmac;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

type HmacSha256 = Hmac<Sha256>;

/// Where a signature lives in the SMB2 header ([MS-SMB2] 2.2.1).
pub const SIGNATURE: std::ops::Range<usize> = 48..64;
const FLAGS: std::ops::Range<usize> = 16..20;
const FLAG_SIGNED: u32 = 0x0000_0008;
const FLAG_SERVER_TO_REDIR: u32 = 0x0000_0001;

/// SP800-108 counter-mode KDF with HMAC-SHA256, r = 32, one block ([MS-SMB2] 3.1.4.2).
///
/// `label` and `context` are passed exactly as the spec spells them, trailing NUL included;
/// the KDF adds its own 0x00 separator between them, so the input holds two NULs there.
pub fn kdf(key: &[u8], label: &[u8], context: &[u8], out: &mut [u8]) {
    debug_assert!(out.len() == 16 || out.len() == 32);
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(&1u32.to_be_bytes());
    mac.update(label);
    mac.update(&[0]);
    mac.update(context);
    mac.update(&((out.len() as u32) * 8).to_be_bytes());
    let block = mac.finalize().into_bytes();
    out.copy_from_slice(&block[..out.len()]);
}

/// The algorithm a session signs with, fixed by the dialect and the 3.1.1 signing context.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SigningAlgo {
    /// SMB 2.0.2 and 2.1: HMAC-SHA256 truncated to 16 bytes, keyed by the session key.
    HmacSha256,
    /// SMB 3.x default.
    AesCmac,
    /// SMB 3.1.1 when both sides list AES-GMAC in SMB2_SIGNING_CAPABILITIES.
    AesGmac,
}

/// Derive the session signing key ([MS-SMB2] 3.3.5.5.3).
///
/// `preauth` is the session's pre-authentication hash (3.1.1 only).
pub fn signing_key(dialect: u16, session_key: &[u8; 16], preauth: Option<&[u8; 64]>) -> [u8; 16] {
    let mut key = [0u8; 16];
    match (dialect, preauth) {
        (0x0311, Some(hash)) => kdf(session_key, b"SMBSigningKey\0", hash, &mut key),
        (d, _) if d >= 0x0300 => kdf(session_key, b"SMB2AESCMAC\0", b"SmbSign\0", &mut key),
        _ => key = *session_key,
    }
    key
}

/// Compute the signature of one PDU (padding included) whose signature field is zero.
fn compute(
    algo: SigningAlgo,
    key: &[u8; 16],
    pdu: &[u8],
    message_id: u64,
    is_cancel: bool,
) -> [u8; 16] {
    let mut sig = [0u8; 16];
    match algo {
        SigningAlgo::HmacSha256 => {
            let mut mac =
                <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC accepts any key length");
            mac.update(pdu);
            sig.copy_from_slice(&mac.finalize().into_bytes()[..16]);
        }
        SigningAlgo::AesCmac => {
            let mut mac = <Cmac<Aes128> as Mac>::new_from_slice(key).expect("16-byte AES key");
            mac.update(pdu);
            sig.copy_from_slice(&mac.finalize().into_bytes());
        }
        SigningAlgo::AesGmac => {
            let flags = u32::from_le_bytes([pdu[16], pdu[17], pdu[18], pdu[19]]);
            let nonce = gmac_nonce(flags, message_id, is_cancel);
            // GMAC is GCM over an empty plaintext with the message as associated data.
            // AWS-LC hashes associated data with its bulk (aggregated, carry-less multiply)
            // GHASH: one pass over the message, 0.16 CPU-s per GiB here, where `ring`, which
            // takes associated data one block per call, needed a two-pass trick through its
            // encryption path at 0.46.
            with_gmac_key(key, |key| {
                let tag = key
                    .seal_in_place_separate_tag(
                        aws_lc_rs::aead::Nonce::assume_unique_for_key(nonce),
                        aws_lc_rs::aead::Aad::from(pdu),
                        &mut [],
                    )
                    .expect("GCM cannot fail on an empty plaintext");
                sig.copy_from_slice(tag.as_ref());
            });
        }
    }
    sig
}

/// GMAC keys this thread expanded last, most recent first.
const GMAC_KEYS_KEPT: usize = 4;

thread_local! {
    /// Expanding an AES-GCM key (round keys and GHASH's table of powers) cost more than
    /// signing a small message with it, and one session signs and verifies with the same key
    /// several times in a row (a session set up: the last SESSION_SETUP answer, the
    /// TREE_CONNECT and its answer). Kept per thread rather than per session, so an idle
    /// session holds no expanded key.
    static GMAC_KEYS: std::cell::RefCell<Vec<([u8; 16], aws_lc_rs::aead::LessSafeKey)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` with `key` expanded for AES-128-GCM, from this thread's recent keys when it is one.
fn with_gmac_key<R>(key: &[u8; 16], f: impl FnOnce(&aws_lc_rs::aead::LessSafeKey) -> R) -> R {
    GMAC_KEYS.with(|keys| {
        let Ok(mut keys) = keys.try_borrow_mut() else {
            // Only reachable if `f` signed again on this thread; nothing to reuse then.
            return f(&expand_gmac_key(key));
        };
        // Every entry is compared, each in constant time: which keys are kept shows in no
        // timing.
        let mut found = None;
        for (i, (k, _)) in keys.iter().enumerate() {
            if constant_time_eq(k, key) && found.is_none() {
                found = Some(i);
            }
        }
        let at = match found {
            Some(at) => at,
            None => {
                if keys.len() >= GMAC_KEYS_KEPT {
                    keys.pop();
                }
                keys.insert(0, (*key, expand_gmac_key(key)));
                0
            }
        };
        f(&keys[at].1)
    })
}

fn expand_gmac_key(key: &[u8; 16]) -> aws_lc_rs::aead::LessSafeKey {
    aws_lc_rs::aead::LessSafeKey::new(
        aws_lc_rs::aead::UnboundKey::new(&aws_lc_rs::aead::AES_128_GCM, key)
            .expect("16-byte AES key"),
    )
}

/// Sign a PDU in place: set SMB2_FLAGS_SIGNED, zero the field, compute, store.
///
/// `pdu` must be at least a header long; the engine only calls it on PDUs it built.
pub fn sign(algo: SigningAlgo, key: &[u8; 16], pdu: &mut [u8]) {
    let flags = u32::from_le_bytes([pdu[16], pdu[17], pdu[18], pdu[19]]) | FLAG_SIGNED;
    pdu[FLAGS].copy_from_slice(&flags.to_le_bytes());
    pdu[SIGNATURE].fill(0);
    let message_id = u64::from_le_bytes(pdu[24..32].try_into().expect("8 bytes"));
    let is_cancel = u16::from_le_bytes([pdu[12], pdu[13]]) == 0x000C;
    let sig = compute(algo, key, pdu, message_id, is_cancel);
    pdu[SIGNATURE].copy_from_slice(&sig);
}

/// [MS-SMB2] 3.1.4.1: nonce = MessageId || 4 bytes whose bit 0 says "sent by the server" and
/// bit 1 "this is a CANCEL request".
fn gmac_nonce(flags: u32, message_id: u64, is_cancel: bool) -> [u8; 12] {
    let mut nonce = [0u8; 12];
    nonce[..8].copy_from_slice(&message_id.to_le_bytes());
    let mut role = 0u32;
    if flags & FLAG_SERVER_TO_REDIR != 0 {
        role |= 1;
    }
    if is_cancel {
        role |= 2;
    }
    nonce[8..].copy_from_slice(&role.to_le_bytes());
    nonce
}

/// Verify the signature of a received PDU ([MS-SMB2] 3.1.5.1) without modifying it.
///
/// Returns false for a PDU shorter than a header.
pub fn verify(algo: SigningAlgo, key: &[u8; 16], pdu: &[u8]) -> bool {
    if pdu.len() < 64 {
        return false;
    }
    let mut got = [0u8; 16];
    got.copy_from_slice(&pdu[SIGNATURE]);
    let message_id = u64::from_le_bytes(pdu[24..32].try_into().expect("8 bytes"));
    let is_cancel = u16::from_le_bytes([pdu[12], pdu[13]]) == 0x000C;
    // The signature is computed with its own field zeroed, and the received buffer is
    // shared: HMAC and CMAC take the PDU in three pieces (no copy of a signed WRITE's data);
    // GMAC's associated data is one slice, so it works on a copy.
    let want = match algo {
        SigningAlgo::HmacSha256 => {
            let mut mac =
                <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC accepts any key length");
            mac.update(&pdu[..SIGNATURE.start]);
            mac.update(&[0u8; 16]);
            mac.update(&pdu[SIGNATURE.end..]);
            let mut sig = [0u8; 16];
            sig.copy_from_slice(&mac.finalize().into_bytes()[..16]);
            sig
        }
        SigningAlgo::AesCmac => {
            let mut mac = <Cmac<Aes128> as Mac>::new_from_slice(key).expect("16-byte AES key");
            mac.update(&pdu[..SIGNATURE.start]);
            mac.update(&[0u8; 16]);
            mac.update(&pdu[SIGNATURE.end..]);
            let mut sig = [0u8; 16];
            sig.copy_from_slice(&mac.finalize().into_bytes());
            sig
        }
        SigningAlgo::AesGmac => {
            let mut copy = pdu.to_vec();
            copy[SIGNATURE].fill(0);
            compute(algo, key, &copy, message_id, is_cancel)
        }
    };
    constant_time_eq(&want, &got)
}

/// Verify a received PDU whose signature field the caller already zeroed in place, `sig` being
/// what the field held: every algorithm then runs over the PDU as one slice, with no copy
/// (GMAC's associated data cannot be given in pieces).
pub fn verify_zeroed(algo: SigningAlgo, key: &[u8; 16], pdu: &[u8], sig: &[u8; 16]) -> bool {
    if pdu.len() < 64 || pdu[SIGNATURE].iter().any(|b| *b != 0) {
        return false;
    }
    let message_id = u64::from_le_bytes(pdu[24..32].try_into().expect("8 bytes"));
    let is_cancel = u16::from_le_bytes([pdu[12], pdu[13]]) == 0x000C;
    constant_time_eq(&compute(algo, key, pdu, message_id, is_cancel), sig)
}

fn constant_time_eq(a: &[u8; 16], b: &[u8; 16]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The running SHA-512 of [MS-SMB2] 3.3.5.4 / 3.3.5.5: H(i) = SHA-512(H(i-1) || message).
#[derive(Clone, Copy)]
pub struct PreauthHash(pub [u8; 64]);

impl Default for PreauthHash {
    fn default() -> Self {
        PreauthHash::ZERO
    }
}

impl PreauthHash {
    pub const ZERO: PreauthHash = PreauthHash([0u8; 64]);

    pub fn update(&mut self, message: &[u8]) {
        let mut h = Sha512::new();
        h.update(self.0);
        h.update(message);
        self.0.copy_from_slice(&h.finalize());
    }
}

impl std::fmt::Debug for PreauthHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PreauthHash({:02x}{:02x}{:02x}{:02x}…)",
            self.0[0], self.0[1], self.0[2], self.0[3]
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn kdf_matches_sp800_108_layout() {
        // Recompute by hand: HMAC-SHA256(key, 00000001 || label || 00 || context || 00000080).
        let key = [0x11u8; 16];
        let mut input = vec![0, 0, 0, 1];
        input.extend_from_slice(b"SMB2AESCMAC\0");
        input.push(0);
        input.extend_from_slice(b"SmbSign\0");
        input.extend_from_slice(&[0, 0, 0, 0x80]);
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&key).unwrap();
        mac.update(&input);
        let expect = mac.finalize().into_bytes();
        assert_eq!(signing_key(0x0300, &key, None), expect[..16]);
        assert_eq!(
            signing_key(0x0210, &key, None),
            key,
            "2.x signs with the session key itself"
        );
    }

    #[test]
    fn smb311_signing_key_known_answer() {
        // [MS-SMB2] 4.x-style known answer computed independently with Python's hmac module:
        // python3 -c "import hmac,hashlib; k=bytes(range(16)); h=bytes(range(64));
        //   print(hmac.new(k,b'\0\0\0\1SMBSigningKey\0\0'+h+b'\0\0\0\x80',hashlib.sha256).hexdigest()[:32])"
        let key: [u8; 16] = core::array::from_fn(|i| i as u8);
        let hash: [u8; 64] = core::array::from_fn(|i| i as u8);
        let got = signing_key(0x0311, &key, Some(&hash));
        assert_eq!(got.to_vec(), hex("f7e5401ecc6e79ef9eab401b05004e4f"));
    }

    #[test]
    fn sign_then_verify_each_algorithm_and_detect_tampering() {
        for algo in [
            SigningAlgo::HmacSha256,
            SigningAlgo::AesCmac,
            SigningAlgo::AesGmac,
        ] {
            let key = [7u8; 16];
            let mut pdu = vec![0u8; 100];
            pdu[..4].copy_from_slice(b"\xfeSMB");
            pdu[24] = 5;
            sign(algo, &key, &mut pdu);
            assert!(verify(algo, &key, &pdu), "{algo:?}");
            let mut bad = pdu.clone();
            bad[80] ^= 1;
            assert!(!verify(algo, &key, &bad), "{algo:?} tamper");
            assert!(!verify(algo, &[8u8; 16], &pdu), "{algo:?} wrong key");
        }
    }

    /// Keys kept expanded per thread: more keys than are kept, used in turns and repeated,
    /// each signature still the one its own key gives.
    #[test]
    fn gmac_with_many_keys_in_turn_signs_with_each_ones_key() {
        use aes_gcm::aead::AeadInPlace;
        use aes_gcm::{Aes128Gcm, KeyInit, Nonce};
        let keys: Vec<[u8; 16]> = (0..GMAC_KEYS_KEPT as u8 + 3)
            .map(|i| [i * 17 + 1; 16])
            .collect();
        let order = [0, 1, 0, 2, 3, 4, 5, 0, 6, 6, 1, 3, 2, 5, 4, 0, 0, 6];
        for (n, &k) in order.iter().enumerate() {
            let key = keys[k];
            let mut pdu: Vec<u8> = (0..200u32).map(|i| (i * 3 + n as u32) as u8).collect();
            pdu[..4].copy_from_slice(b"\xfeSMB");
            pdu[16] = 1; // from the server
            sign(SigningAlgo::AesGmac, &key, &mut pdu);
            let mut zeroed = pdu.clone();
            zeroed[SIGNATURE].fill(0);
            let mut nonce = [0u8; 12];
            nonce[..8].copy_from_slice(&pdu[24..32]);
            nonce[8] = 1;
            let want = Aes128Gcm::new_from_slice(&key)
                .unwrap()
                .encrypt_in_place_detached(Nonce::from_slice(&nonce), &zeroed, &mut [])
                .unwrap();
            assert_eq!(pdu[SIGNATURE], want[..], "use {n} (key {k})");
            let sig: [u8; 16] = want.into();
            for (other, okey) in keys.iter().enumerate() {
                assert_eq!(
                    verify_zeroed(SigningAlgo::AesGmac, okey, &zeroed, &sig),
                    other == k,
                    "use {n}: key {other} against key {k}'s signature"
                );
            }
        }
    }

    /// GMAC through AWS-LC against RustCrypto's AES-GCM (an independent implementation), at
    /// lengths that do and do not fill the last GHASH block, up to a 1 MiB WRITE;
    /// verification of a long PDU for each algorithm.
    #[test]
    fn gmac_matches_rustcrypto_and_long_pdus_verify() {
        use aes_gcm::aead::AeadInPlace;
        use aes_gcm::{Aes128Gcm, KeyInit, Nonce};
        let key = [0x5au8; 16];
        for len in [64, 4095, 4096, 4097, 70_001, (1 << 20) + 112] {
            let mut pdu: Vec<u8> = (0..len as u32).map(|i| (i * 7) as u8).collect();
            pdu[..4].copy_from_slice(b"\xfeSMB");
            pdu[12..14].copy_from_slice(&[0x0C, 0]); // CANCEL: bit 1 of the nonce's role field
            sign(SigningAlgo::AesGmac, &key, &mut pdu);
            let mut zeroed = pdu.clone();
            zeroed[SIGNATURE].fill(0);
            let mut nonce = [0u8; 12];
            nonce[..8].copy_from_slice(&pdu[24..32]);
            nonce[8] = 2 | u8::from(pdu[16] & 1 != 0);
            let want = Aes128Gcm::new_from_slice(&key)
                .unwrap()
                .encrypt_in_place_detached(Nonce::from_slice(&nonce), &zeroed, &mut [])
                .unwrap();
            assert_eq!(pdu[SIGNATURE], want[..], "length {len}");
            let sig: [u8; 16] = want.into();
            assert!(
                verify_zeroed(SigningAlgo::AesGmac, &key, &zeroed, &sig),
                "length {len}"
            );
        }
        let mut pdu: Vec<u8> = (0..70_001u32).map(|i| (i * 7) as u8).collect();
        pdu[..4].copy_from_slice(b"\xfeSMB");
        let mut zeroed = pdu.clone();
        zeroed[SIGNATURE].fill(0);
        for algo in [
            SigningAlgo::HmacSha256,
            SigningAlgo::AesCmac,
            SigningAlgo::AesGmac,
        ] {
            let mut pdu = zeroed.clone();
            sign(algo, &key, &mut pdu);
            assert!(verify(algo, &key, &pdu), "{algo:?}");
            for i in [0, 47, 64, 70_000] {
                let mut bad = pdu.clone();
                bad[i] ^= 0x10;
                assert!(!verify(algo, &key, &bad), "{algo:?} byte {i}");
            }
        }
    }

    #[test]
    fn preauth_hash_chains() {
        let mut h = PreauthHash::ZERO;
        h.update(b"abc");
        let mut expect = Sha512::new();
        expect.update([0u8; 64]);
        expect.update(b"abc");
        assert_eq!(h.0[..], expect.finalize()[..]);
    }
}
