//! FLUSH ([MS-SMB2] 2.2.17 request, 2.2.18 response).

use crate::codec::Writer;
use crate::error::Result;
use crate::types::{Command, FileId};

use super::{body, header_base};

/// FLUSH request ([MS-SMB2] 2.2.17).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FlushRequest {
    /// The open to flush.
    pub file_id: FileId,
}

impl FlushRequest {
    /// StructureSize of the request.
    pub const STRUCTURE_SIZE: u16 = 24;

    /// Parses the request PDU.
    pub fn parse(pdu: &[u8]) -> Result<Self> {
        let mut r = body(pdu, Command::FLUSH, Self::STRUCTURE_SIZE, "FLUSH request")?;
        r.skip(2 + 4)?; // Reserved1, Reserved2
        Ok(FlushRequest {
            file_id: FileId::read(&mut r)?,
        })
    }

    /// Appends the body.
    pub fn encode(&self, pdu: &mut Vec<u8>) -> Result<()> {
        header_base(pdu)?;
        let mut w = Writer::new(pdu);
        w.u16(Self::STRUCTURE_SIZE);
        w.u16(0);
        w.u32(0);
        self.file_id.write(&mut w);
        Ok(())
    }
}

/// FLUSH response ([MS-SMB2] 2.2.18).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FlushResponse;

impl FlushResponse {
    /// Appends the body.
    pub fn encode(&self, pdu: &mut Vec<u8>) -> Result<()> {
        super::encode_empty4(pdu)
    }

    /// Parses a response PDU.
    pub fn parse(pdu: &[u8]) -> Result<Self> {
        super::parse_empty4(pdu, Command::FLUSH, "FLUSH response")?;
        Ok(FlushResponse)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::test_pdu;

    #[test]
    fn round_trips() {
        let req = FlushRequest {
            file_id: FileId::new(7, 8),
        };
        let pdu = test_pdu(Command::FLUSH, false, |v| req.encode(v));
        assert_eq!(FlushRequest::parse(&pdu).unwrap(), req);
        let pdu = test_pdu(Command::FLUSH, true, |v| FlushResponse.encode(v));
        assert_eq!(FlushResponse::parse(&pdu).unwrap(), FlushResponse);
    }
}
