//! A tiny DER reader and writer for the SPNEGO subset ([MS-SPNG] 2.2, RFC 4178 4.2, X.690).
//!
//! Why not a crate: SPNEGO needs five tag kinds, single-byte tags and definite lengths only.
//! A hand-written reader over `&[u8]` never allocates while parsing, so a hostile token cannot
//! make us allocate more than its own size, and every structure we decode has a fixed shape,
//! so the nesting depth is bounded by the code itself (there is no recursive descent over
//! arbitrary input).

use std::fmt;

/// Universal and context tags used by SPNEGO.
pub(crate) const TAG_OCTET_STRING: u8 = 0x04;
pub(crate) const TAG_OID: u8 = 0x06;
pub(crate) const TAG_ENUMERATED: u8 = 0x0a;
pub(crate) const TAG_GENERAL_STRING: u8 = 0x1b;
pub(crate) const TAG_SEQUENCE: u8 = 0x30;
/// `[APPLICATION 0]` constructed: the GSS-API InitialContextToken framing (RFC 2743 3.1).
pub(crate) const TAG_APPLICATION_0: u8 = 0x60;

/// Constructed context-specific tag `[n]`.
pub(crate) const fn ctx(n: u8) -> u8 {
    0xa0 | n
}

/// Why a DER element could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DerError {
    Truncated,
    HighTagNumber,
    IndefiniteLength,
    LengthTooLong,
    UnexpectedTag { expected: u8, found: u8 },
    TrailingData,
}

impl fmt::Display for DerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DerError::Truncated => write!(f, "DER element truncated"),
            DerError::HighTagNumber => write!(f, "DER multi-byte tag not supported"),
            DerError::IndefiniteLength => write!(f, "DER indefinite length not allowed"),
            DerError::LengthTooLong => write!(f, "DER length field too long"),
            DerError::UnexpectedTag { expected, found } => {
                write!(
                    f,
                    "DER tag 0x{found:02x} where 0x{expected:02x} was expected"
                )
            }
            DerError::TrailingData => write!(f, "trailing bytes after DER element"),
        }
    }
}

/// One element: its tag, its content, and the complete encoding (tag + length + content).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tlv<'a> {
    pub tag: u8,
    pub content: &'a [u8],
    pub raw: &'a [u8],
}

/// Reads consecutive elements from a buffer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The bytes not read yet.
    pub fn rest(&self) -> &'a [u8] {
        self.buf
    }

    pub fn peek_tag(&self) -> Option<u8> {
        self.buf.first().copied()
    }

    /// Reads the next element, whatever its tag.
    pub fn read_any(&mut self) -> Result<Tlv<'a>, DerError> {
        let buf = self.buf;
        let (&tag, after_tag) = buf.split_first().ok_or(DerError::Truncated)?;
        if tag & 0x1f == 0x1f {
            return Err(DerError::HighTagNumber);
        }
        let (&first, after_len0) = after_tag.split_first().ok_or(DerError::Truncated)?;
        let (len, after_len) = if first < 0x80 {
            (usize::from(first), after_len0)
        } else if first == 0x80 {
            return Err(DerError::IndefiniteLength);
        } else {
            // Long form. Four length octets already allow 4 GiB, far beyond any token we accept;
            // more would only be a way to overflow. Non-minimal encodings are tolerated because
            // some initiators emit them and rejecting them buys nothing.
            let n = usize::from(first & 0x7f);
            if n > 4 {
                return Err(DerError::LengthTooLong);
            }
            let octets = after_len0.get(..n).ok_or(DerError::Truncated)?;
            let len = octets
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            (len, after_len0.get(n..).ok_or(DerError::Truncated)?)
        };
        let content = after_len.get(..len).ok_or(DerError::Truncated)?;
        let header = buf.len() - after_len.len();
        let total = header.checked_add(len).ok_or(DerError::Truncated)?;
        let raw = buf.get(..total).ok_or(DerError::Truncated)?;
        self.buf = buf.get(total..).ok_or(DerError::Truncated)?;
        Ok(Tlv { tag, content, raw })
    }

    /// Reads the next element and checks its tag.
    pub fn read(&mut self, expected: u8) -> Result<Tlv<'a>, DerError> {
        let tlv = self.read_any()?;
        if tlv.tag != expected {
            return Err(DerError::UnexpectedTag {
                expected,
                found: tlv.tag,
            });
        }
        Ok(tlv)
    }

    /// Reads an element only if the next tag is `tag`.
    pub fn read_optional(&mut self, tag: u8) -> Result<Option<Tlv<'a>>, DerError> {
        if self.peek_tag() == Some(tag) {
            self.read(tag).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Fails unless every byte was consumed.
    pub fn finish(&self) -> Result<(), DerError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DerError::TrailingData)
        }
    }
}

/// Reads exactly one element of tag `expected` filling all of `buf`.
pub(crate) fn read_single(buf: &[u8], expected: u8) -> Result<Tlv<'_>, DerError> {
    let mut r = Reader::new(buf);
    let tlv = r.read(expected)?;
    r.finish()?;
    Ok(tlv)
}

/// Appends a DER length.
fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        // Truncation is impossible: len < 0x80.
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        let significant = bytes.get(skip..).unwrap_or(&[]);
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }
}

/// Bytes the length field of a `len`-byte content takes (what [`push_len`] writes).
fn len_len(len: usize) -> usize {
    if len < 0x80 {
        1
    } else {
        1 + (usize::BITS - len.leading_zeros()).div_ceil(8) as usize
    }
}

/// Bytes an element with `content_len` bytes of content takes, tag and length included.
pub(crate) fn encoded_len(content_len: usize) -> usize {
    1 + len_len(content_len) + content_len
}

/// Appends the tag and length of an element whose `content_len` bytes of content follow.
pub(crate) fn push_header(out: &mut Vec<u8>, tag: u8, content_len: usize) {
    out.push(tag);
    push_len(out, content_len);
}

/// Appends `tag`, the length of `content`, and `content`.
pub(crate) fn push_tlv(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
    out.push(tag);
    push_len(out, content.len());
    out.extend_from_slice(content);
}

/// Encodes one element into a new vector.
pub(crate) fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    push_tlv(&mut out, tag, content);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_len_counts_what_push_tlv_writes() {
        for len in [
            0usize,
            1,
            0x7f,
            0x80,
            0xff,
            0x100,
            0xffff,
            0x10000,
            0x1_000_000,
        ] {
            let content = vec![0u8; len];
            assert_eq!(
                encoded_len(len),
                tlv(TAG_OCTET_STRING, &content).len(),
                "{len}"
            );
        }
    }

    #[test]
    fn lengths_round_trip() {
        for len in [0usize, 1, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000] {
            let content = vec![0xabu8; len];
            let enc = tlv(TAG_OCTET_STRING, &content);
            let got = read_single(&enc, TAG_OCTET_STRING).unwrap();
            assert_eq!(got.content.len(), len);
            assert_eq!(got.raw.len(), enc.len());
        }
    }

    #[test]
    fn short_and_long_forms_encode_as_der() {
        assert_eq!(tlv(0x04, &[1, 2]), vec![0x04, 0x02, 1, 2]);
        let enc = tlv(0x04, &[0u8; 200]);
        assert_eq!(&enc[..3], &[0x04, 0x81, 200]);
        let enc = tlv(0x04, &[0u8; 300]);
        assert_eq!(&enc[..4], &[0x04, 0x82, 0x01, 0x2c]);
    }

    #[test]
    fn rejects_bad_encodings() {
        assert_eq!(
            Reader::new(&[]).read_any().unwrap_err(),
            DerError::Truncated
        );
        assert_eq!(
            Reader::new(&[0x04]).read_any().unwrap_err(),
            DerError::Truncated
        );
        assert_eq!(
            Reader::new(&[0x04, 0x80, 0, 0]).read_any().unwrap_err(),
            DerError::IndefiniteLength
        );
        assert_eq!(
            Reader::new(&[0x1f, 0x01, 0x00]).read_any().unwrap_err(),
            DerError::HighTagNumber
        );
        assert_eq!(
            Reader::new(&[0x04, 0x85, 1, 1, 1, 1, 1])
                .read_any()
                .unwrap_err(),
            DerError::LengthTooLong
        );
        assert_eq!(
            Reader::new(&[0x04, 0x84, 0xff, 0xff, 0xff, 0xff])
                .read_any()
                .unwrap_err(),
            DerError::Truncated
        );
        assert_eq!(
            Reader::new(&[0x04, 0x03, 1, 2]).read_any().unwrap_err(),
            DerError::Truncated
        );
        assert_eq!(
            read_single(&[0x04, 0x01, 1, 0], 0x04).unwrap_err(),
            DerError::TrailingData
        );
        assert_eq!(
            read_single(&[0x02, 0x01, 1], 0x04).unwrap_err(),
            DerError::UnexpectedTag {
                expected: 0x04,
                found: 0x02
            }
        );
    }
}
