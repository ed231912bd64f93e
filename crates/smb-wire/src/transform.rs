//! The SMB2 TRANSFORM_HEADER of encrypted messages ([MS-SMB2] 2.2.41) and, just enough to
//! recognise and refuse it, the COMPRESSION_TRANSFORM_HEADER ([MS-SMB2] 2.2.42).
//!
//! The cipher itself lives in the engine; this module gives it the fields and the byte range
//! that is authenticated as additional data.

use core::ops::Range;

use crate::codec::Reader;
use crate::compound::{COMPRESSION_PROTOCOL_ID, TRANSFORM_PROTOCOL_ID};
use crate::error::{Result, WireError};
use crate::types::{CompressionAlgorithm, SessionId};

/// An SMB2 TRANSFORM_HEADER ([MS-SMB2] 2.2.41).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TransformHeader {
    /// Signature: the AEAD tag over the header's AAD range and the ciphertext.
    pub signature: [u8; 16],
    /// Nonce: 11 bytes used for CCM, 12 for GCM, the rest zero.
    pub nonce: [u8; 16],
    /// OriginalMessageSize: the plaintext length.
    pub original_message_size: u32,
    /// Flags (3.1.1, 1 = Encrypted) or EncryptionAlgorithm (3.0.x, 1 = AES-128-CCM).
    pub flags: u16,
    /// SessionId whose keys encrypt the message.
    pub session_id: SessionId,
}

impl TransformHeader {
    /// Size on the wire.
    pub const SIZE: usize = 52;
    /// Where the signature lives.
    pub const SIGNATURE_RANGE: Range<usize> = 4..20;
    /// The bytes authenticated as AAD: Nonce through SessionId ([MS-SMB2] 3.1.4.3).
    pub const AAD_RANGE: Range<usize> = 20..52;
    /// Flags value "Encrypted" (and the 3.0 EncryptionAlgorithm AES-128-CCM, same value).
    pub const FLAG_ENCRYPTED: u16 = 0x0001;

    /// Parses the header at the start of `frame`.
    pub fn parse(frame: &[u8]) -> Result<Self> {
        let mut r = Reader::new(frame, "TRANSFORM_HEADER");
        let proto: [u8; 4] = r.array()?;
        if proto != TRANSFORM_PROTOCOL_ID {
            return Err(WireError::BadProtocolId(proto));
        }
        let signature = r.array()?;
        let nonce = r.array()?;
        let original_message_size = r.u32()?;
        r.u16()?; // Reserved
        let flags = r.u16()?;
        let session_id = SessionId(r.u64()?);
        Ok(TransformHeader {
            signature,
            nonce,
            original_message_size,
            flags,
            session_id,
        })
    }

    /// The encrypted payload after the header.
    pub fn payload(frame: &[u8]) -> Result<&[u8]> {
        frame.get(Self::SIZE..).ok_or(WireError::Truncated {
            what: "TRANSFORM_HEADER",
            need: Self::SIZE,
            have: frame.len(),
        })
    }

    /// Writes the 52 bytes into the start of `out`. A shorter slice is left untouched.
    pub fn write(&self, out: &mut [u8]) {
        let Some(out) = out.get_mut(..Self::SIZE) else {
            debug_assert!(false, "TransformHeader::write needs 52 bytes");
            return;
        };
        out[0..4].copy_from_slice(&TRANSFORM_PROTOCOL_ID);
        out[4..20].copy_from_slice(&self.signature);
        out[20..36].copy_from_slice(&self.nonce);
        out[36..40].copy_from_slice(&self.original_message_size.to_le_bytes());
        out[40..42].copy_from_slice(&[0, 0]);
        out[42..44].copy_from_slice(&self.flags.to_le_bytes());
        out[44..52].copy_from_slice(&self.session_id.0.to_le_bytes());
    }

    /// Appends the 52 bytes to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let at = out.len();
        out.resize(at + Self::SIZE, 0);
        if let Some(s) = out.get_mut(at..) {
            self.write(s);
        }
    }
}

/// The fields of a COMPRESSION_TRANSFORM_HEADER ([MS-SMB2] 2.2.42) common to the chained and
/// unchained forms; parsed only so the engine can log and refuse it (compression is not
/// negotiated by lanshare).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompressionTransformHeader {
    /// OriginalCompressedSegmentSize.
    pub original_size: u32,
    /// CompressionAlgorithm (unchained) or the first payload header's algorithm field.
    pub algorithm: CompressionAlgorithm,
    /// Flags (1 = chained).
    pub flags: u16,
    /// Offset (unchained) or Length (chained).
    pub offset_or_length: u32,
}

impl CompressionTransformHeader {
    /// Size of the unchained header.
    pub const SIZE: usize = 16;

    /// Parses the first 16 bytes.
    pub fn parse(frame: &[u8]) -> Result<Self> {
        let mut r = Reader::new(frame, "COMPRESSION_TRANSFORM_HEADER");
        let proto: [u8; 4] = r.array()?;
        if proto != COMPRESSION_PROTOCOL_ID {
            return Err(WireError::BadProtocolId(proto));
        }
        Ok(CompressionTransformHeader {
            original_size: r.u32()?,
            algorithm: CompressionAlgorithm(r.u16()?),
            flags: r.u16()?,
            offset_or_length: r.u32()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transform_round_trip_and_layout() {
        let t = TransformHeader {
            signature: [1; 16],
            nonce: [2; 16],
            original_message_size: 0x1234,
            flags: TransformHeader::FLAG_ENCRYPTED,
            session_id: SessionId(0xAABB),
        };
        let mut v = Vec::new();
        t.encode(&mut v);
        v.extend_from_slice(b"cipher");
        assert_eq!(v.len(), 58);
        assert_eq!(&v[..4], b"\xFDSMB");
        assert_eq!(&v[36..40], &[0x34, 0x12, 0, 0]);
        assert_eq!(&v[42..44], &[1, 0]);
        assert_eq!(TransformHeader::parse(&v).unwrap(), t);
        assert_eq!(TransformHeader::payload(&v).unwrap(), b"cipher");
        assert!(TransformHeader::parse(&v[..51]).is_err());
        assert!(TransformHeader::parse(b"\xFESMB").is_err());
    }

    #[test]
    fn compression_header_parses() {
        let mut v = b"\xFCSMB".to_vec();
        v.extend(100u32.to_le_bytes());
        v.extend(2u16.to_le_bytes());
        v.extend(0u16.to_le_bytes());
        v.extend(0u32.to_le_bytes());
        let c = CompressionTransformHeader::parse(&v).unwrap();
        assert_eq!(c.algorithm, CompressionAlgorithm::LZ77);
        assert_eq!(c.original_size, 100);
        assert!(CompressionTransformHeader::parse(&v[..10]).is_err());
    }
}
