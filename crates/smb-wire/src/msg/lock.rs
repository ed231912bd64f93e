//! LOCK ([MS-SMB2] 2.2.26 request, 2.2.26.1 elements, 2.2.27 response).

use crate::codec::{Writer, to_u16};
use crate::error::{Result, WireError};
use crate::types::{Command, FileId};

use super::{body, header_base};

wire_flags! {
    /// SMB2_LOCK_ELEMENT flags ([MS-SMB2] 2.2.26.1).
    pub struct LockFlags(u32);
    SHARED_LOCK = 0x0000_0001,
    EXCLUSIVE_LOCK = 0x0000_0002,
    UNLOCK = 0x0000_0004,
    FAIL_IMMEDIATELY = 0x0000_0010,
}

/// One byte range to lock or unlock ([MS-SMB2] 2.2.26.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LockElement {
    /// Offset of the range.
    pub offset: u64,
    /// Length of the range.
    pub length: u64,
    /// Flags.
    pub flags: LockFlags,
}

/// Size of one lock element.
const ELEMENT_SIZE: usize = 24;

/// LOCK request ([MS-SMB2] 2.2.26).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LockRequest {
    /// LockSequenceNumber (low 4 bits) and LockSequenceIndex (high 28 bits), raw.
    pub lock_sequence: u32,
    /// The open.
    pub file_id: FileId,
    /// The ranges. May be empty if LockCount was 0 (the engine answers
    /// STATUS_INVALID_PARAMETER, [MS-SMB2] 3.3.5.14).
    pub locks: Vec<LockElement>,
}

impl LockRequest {
    /// StructureSize of the request (the fixed part plus one element).
    pub const STRUCTURE_SIZE: u16 = 48;

    /// LockSequenceNumber (3.x resilient/persistent handles).
    pub fn lock_sequence_number(&self) -> u8 {
        (self.lock_sequence & 0xF) as u8
    }

    /// LockSequenceIndex (3.x resilient/persistent handles).
    pub fn lock_sequence_index(&self) -> u32 {
        self.lock_sequence >> 4
    }

    /// Parses the request PDU. LockCount is bounded by the PDU length before allocating.
    pub fn parse(pdu: &[u8]) -> Result<Self> {
        let mut r = body(pdu, Command::LOCK, Self::STRUCTURE_SIZE, "LOCK request")?;
        let count = usize::from(r.u16()?);
        let lock_sequence = r.u32()?;
        let file_id = FileId::read(&mut r)?;
        if count.saturating_mul(ELEMENT_SIZE) > r.remaining() {
            return Err(WireError::Truncated {
                what: "LOCK elements",
                need: r.pos() + count * ELEMENT_SIZE,
                have: pdu.len(),
            });
        }
        let mut locks = Vec::with_capacity(count);
        for _ in 0..count {
            let offset = r.u64()?;
            let length = r.u64()?;
            let flags = LockFlags(r.u32()?);
            r.u32()?; // Reserved
            locks.push(LockElement {
                offset,
                length,
                flags,
            });
        }
        Ok(LockRequest {
            lock_sequence,
            file_id,
            locks,
        })
    }

    /// Appends the body.
    pub fn encode(&self, pdu: &mut Vec<u8>) -> Result<()> {
        header_base(pdu)?;
        let mut w = Writer::new(pdu);
        w.u16(Self::STRUCTURE_SIZE);
        w.u16(to_u16(self.locks.len(), "LockCount")?);
        w.u32(self.lock_sequence);
        self.file_id.write(&mut w);
        for l in &self.locks {
            w.u64(l.offset);
            w.u64(l.length);
            w.u32(l.flags.0);
            w.u32(0);
        }
        if self.locks.is_empty() {
            w.zeros(ELEMENT_SIZE);
        }
        Ok(())
    }
}

/// LOCK response ([MS-SMB2] 2.2.27).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LockResponse;

impl LockResponse {
    /// Appends the body.
    pub fn encode(&self, pdu: &mut Vec<u8>) -> Result<()> {
        super::encode_empty4(pdu)
    }

    /// Parses a response PDU.
    pub fn parse(pdu: &[u8]) -> Result<Self> {
        super::parse_empty4(pdu, Command::LOCK, "LOCK response")?;
        Ok(LockResponse)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::test_pdu;

    #[test]
    fn round_trip_and_bounds() {
        let req = LockRequest {
            lock_sequence: (5 << 4) | 3,
            file_id: FileId::new(1, 2),
            locks: vec![
                LockElement {
                    offset: 0,
                    length: 10,
                    flags: LockFlags::EXCLUSIVE_LOCK | LockFlags::FAIL_IMMEDIATELY,
                },
                LockElement {
                    offset: 100,
                    length: 1,
                    flags: LockFlags::UNLOCK,
                },
            ],
        };
        let pdu = test_pdu(Command::LOCK, false, |v| req.encode(v));
        assert_eq!(pdu.len(), 64 + 24 + 48);
        let p = LockRequest::parse(&pdu).unwrap();
        assert_eq!(p, req);
        assert_eq!((p.lock_sequence_number(), p.lock_sequence_index()), (3, 5));
        let mut bad = pdu.clone();
        bad[66] = 3;
        assert!(LockRequest::parse(&bad).is_err());
        let mut huge = pdu.clone();
        huge[66..68].copy_from_slice(&[0xFF, 0xFF]);
        assert!(LockRequest::parse(&huge).is_err());
        let pdu = test_pdu(Command::LOCK, true, |v| LockResponse.encode(v));
        assert_eq!(LockResponse::parse(&pdu).unwrap(), LockResponse);
    }
}
