//! CLOSE ([MS-SMB2] 2.2.15 request, 2.2.16 response).

use crate::codec::Writer;
use crate::error::Result;
use crate::types::{Command, FileAttributes, FileId};

use super::{body, header_base};

/// CLOSE request ([MS-SMB2] 2.2.15).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CloseRequest {
    /// Flags ([`CloseRequest::FLAG_POSTQUERY_ATTRIB`]).
    pub flags: u16,
    /// The open to close.
    pub file_id: FileId,
}

impl CloseRequest {
    /// StructureSize of the request.
    pub const STRUCTURE_SIZE: u16 = 24;
    /// SMB2_CLOSE_FLAG_POSTQUERY_ATTRIB: return the attributes in the response.
    pub const FLAG_POSTQUERY_ATTRIB: u16 = 0x0001;

    /// True when the client asks for the attributes after close.
    pub fn postquery_attrib(&self) -> bool {
        self.flags & Self::FLAG_POSTQUERY_ATTRIB != 0
    }

    /// Parses the request PDU.
    pub fn parse(pdu: &[u8]) -> Result<Self> {
        let mut r = body(pdu, Command::CLOSE, Self::STRUCTURE_SIZE, "CLOSE request")?;
        let flags = r.u16()?;
        r.u32()?; // Reserved
        Ok(CloseRequest {
            flags,
            file_id: FileId::read(&mut r)?,
        })
    }

    /// Appends the body.
    pub fn encode(&self, pdu: &mut Vec<u8>) -> Result<()> {
        header_base(pdu)?;
        let mut w = Writer::new(pdu);
        w.u16(Self::STRUCTURE_SIZE);
        w.u16(self.flags);
        w.u32(0);
        self.file_id.write(&mut w);
        Ok(())
    }
}

/// CLOSE response ([MS-SMB2] 2.2.16). Without POSTQUERY_ATTRIB every field but `flags` is 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CloseResponse {
    /// Flags: FLAG_POSTQUERY_ATTRIB when the attribute fields are valid.
    pub flags: u16,
    /// CreationTime (FILETIME).
    pub creation_time: u64,
    /// LastAccessTime (FILETIME).
    pub last_access_time: u64,
    /// LastWriteTime (FILETIME).
    pub last_write_time: u64,
    /// ChangeTime (FILETIME).
    pub change_time: u64,
    /// AllocationSize.
    pub allocation_size: u64,
    /// EndofFile.
    pub end_of_file: u64,
    /// FileAttributes.
    pub file_attributes: FileAttributes,
}

impl CloseResponse {
    /// StructureSize of the response.
    pub const STRUCTURE_SIZE: u16 = 60;

    /// Appends the body.
    pub fn encode(&self, pdu: &mut Vec<u8>) -> Result<()> {
        header_base(pdu)?;
        let mut w = Writer::new(pdu);
        w.u16(Self::STRUCTURE_SIZE);
        w.u16(self.flags);
        w.u32(0);
        w.u64(self.creation_time);
        w.u64(self.last_access_time);
        w.u64(self.last_write_time);
        w.u64(self.change_time);
        w.u64(self.allocation_size);
        w.u64(self.end_of_file);
        w.u32(self.file_attributes.0);
        Ok(())
    }

    /// Parses a response PDU.
    pub fn parse(pdu: &[u8]) -> Result<Self> {
        let mut r = body(pdu, Command::CLOSE, Self::STRUCTURE_SIZE, "CLOSE response")?;
        let flags = r.u16()?;
        r.u32()?;
        Ok(CloseResponse {
            flags,
            creation_time: r.u64()?,
            last_access_time: r.u64()?,
            last_write_time: r.u64()?,
            change_time: r.u64()?,
            allocation_size: r.u64()?,
            end_of_file: r.u64()?,
            file_attributes: FileAttributes(r.u32()?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::test_pdu;

    #[test]
    fn round_trips() {
        let req = CloseRequest {
            flags: CloseRequest::FLAG_POSTQUERY_ATTRIB,
            file_id: FileId::new(3, 4),
        };
        let pdu = test_pdu(Command::CLOSE, false, |v| req.encode(v));
        assert_eq!(pdu.len(), 64 + 24);
        assert_eq!(CloseRequest::parse(&pdu).unwrap(), req);
        assert!(req.postquery_attrib());
        assert!(CloseRequest::parse(&pdu[..80]).is_err());

        let resp = CloseResponse {
            flags: 1,
            end_of_file: 10,
            file_attributes: FileAttributes::ARCHIVE,
            ..Default::default()
        };
        let pdu = test_pdu(Command::CLOSE, true, |v| resp.encode(v));
        assert_eq!(pdu.len(), 64 + 60);
        assert_eq!(CloseResponse::parse(&pdu).unwrap(), resp);
    }
}
