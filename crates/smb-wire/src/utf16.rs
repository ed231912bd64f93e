//! UTF-16LE, the string encoding of every name on the SMB2 wire ([MS-SMB2] 2.2).

use crate::error::{Result, WireError};

/// Decodes UTF-16LE bytes. An odd byte count or an unpaired surrogate is an error: names that
/// cannot be represented faithfully must not be silently altered into other names.
pub fn decode(bytes: &[u8]) -> Result<String> {
    if !bytes.len().is_multiple_of(2) {
        return Err(WireError::BadUtf16);
    }
    let units = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]));
    char::decode_utf16(units)
        .collect::<core::result::Result<String, _>>()
        .map_err(|_| WireError::BadUtf16)
}

/// Like [`decode`], but drops trailing NUL code units, which some clients include.
pub fn decode_trim_nul(bytes: &[u8]) -> Result<String> {
    let mut s = decode(bytes)?;
    while s.ends_with('\0') {
        s.pop();
    }
    Ok(s)
}

/// Appends `s` as UTF-16LE to `out`.
pub fn encode_into(s: &str, out: &mut Vec<u8>) {
    out.reserve(s.len() * 2);
    for u in s.encode_utf16() {
        out.extend_from_slice(&u.to_le_bytes());
    }
}

/// `s` as UTF-16LE.
pub fn encode(s: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(s.len() * 2);
    encode_into(s, &mut v);
    v
}

/// The byte length of `s` in UTF-16LE.
pub fn encoded_len(s: &str) -> usize {
    s.encode_utf16().count() * 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_bmp_and_astral() {
        for s in ["", "share", "\\\\srv\\IPC$", "dür", "😀x"] {
            let b = encode(s);
            assert_eq!(b.len(), encoded_len(s));
            assert_eq!(decode(&b).unwrap(), s);
        }
        assert_eq!(encode("A"), [0x41, 0]);
    }

    #[test]
    fn rejects_odd_length_and_lone_surrogate() {
        assert_eq!(decode(&[0x41]), Err(WireError::BadUtf16));
        assert_eq!(decode(&[0x00, 0xD8, 0x41, 0x00]), Err(WireError::BadUtf16));
        assert_eq!(decode(&[0x00, 0xDC]), Err(WireError::BadUtf16));
    }

    #[test]
    fn trims_trailing_nuls() {
        assert_eq!(decode_trim_nul(&[0x41, 0, 0, 0]).unwrap(), "A");
    }
}
