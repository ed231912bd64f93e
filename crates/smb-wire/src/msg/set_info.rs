//! SET_INFO ([MS-SMB2] 2.2.39 request, 2.2.40 response). Decoders for the info-class
//! payloads are in [`crate::fscc`].

use crate::codec::{Writer, slice_at, to_u32};
use crate::error::Result;
use crate::types::{Command, FileId, FileInfoClass, FsInfoClass, InfoType};

use super::{body, header_base, off16};

/// SET_INFO request ([MS-SMB2] 2.2.39).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SetInfoRequest<'a> {
    /// InfoType.
    pub info_type: InfoType,
    /// FileInfoClass, raw (meaning depends on `info_type`).
    pub file_info_class: u8,
    /// The information to set.
    pub buffer: &'a [u8],
    /// AdditionalInformation (security information flags for security sets).
    pub additional_information: u32,
    /// The open.
    pub file_id: FileId,
}

impl<'a> SetInfoRequest<'a> {
    /// StructureSize of the request.
    pub const STRUCTURE_SIZE: u16 = 33;

    /// The class as a file information class.
    pub fn file_class(&self) -> FileInfoClass {
        FileInfoClass(self.file_info_class)
    }

    /// The class as a file system information class.
    pub fn fs_class(&self) -> FsInfoClass {
        FsInfoClass(self.file_info_class)
    }

    /// Parses the request PDU.
    pub fn parse(pdu: &'a [u8]) -> Result<Self> {
        let mut r = body(
            pdu,
            Command::SET_INFO,
            Self::STRUCTURE_SIZE,
            "SET_INFO request",
        )?;
        let info_type = InfoType(r.u8()?);
        let file_info_class = r.u8()?;
        let len = r.u32()? as usize;
        let off = usize::from(r.u16()?);
        r.u16()?; // Reserved
        let additional_information = r.u32()?;
        let file_id = FileId::read(&mut r)?;
        let buffer = slice_at(pdu, off, len, r.pos(), "SET_INFO buffer")?;
        Ok(SetInfoRequest {
            info_type,
            file_info_class,
            buffer,
            additional_information,
            file_id,
        })
    }

    /// Appends the body.
    pub fn encode(&self, pdu: &mut Vec<u8>) -> Result<()> {
        let base = header_base(pdu)?;
        let mut w = Writer::new(pdu);
        w.u16(Self::STRUCTURE_SIZE);
        w.u8(self.info_type.0);
        w.u8(self.file_info_class);
        w.u32(to_u32(self.buffer.len(), "BufferLength")?);
        let off_at = w.reserve_u16();
        w.u16(0);
        w.u32(self.additional_information);
        self.file_id.write(&mut w);
        let off = off16(w.pos(), base, "BufferOffset")?;
        w.patch_u16(off_at, off);
        if self.buffer.is_empty() {
            w.u8(0);
        } else {
            w.bytes(self.buffer);
        }
        Ok(())
    }
}

/// SET_INFO response ([MS-SMB2] 2.2.40): StructureSize 2 and nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SetInfoResponse;

impl SetInfoResponse {
    /// StructureSize of the response.
    pub const STRUCTURE_SIZE: u16 = 2;

    /// Appends the body.
    pub fn encode(&self, pdu: &mut Vec<u8>) -> Result<()> {
        header_base(pdu)?;
        Writer::new(pdu).u16(Self::STRUCTURE_SIZE);
        Ok(())
    }

    /// Parses a response PDU.
    pub fn parse(pdu: &[u8]) -> Result<Self> {
        body(
            pdu,
            Command::SET_INFO,
            Self::STRUCTURE_SIZE,
            "SET_INFO response",
        )?;
        Ok(SetInfoResponse)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::test_pdu;

    #[test]
    fn round_trips() {
        let req = SetInfoRequest {
            info_type: InfoType::FILE,
            file_info_class: FileInfoClass::DISPOSITION.0,
            buffer: &[1],
            additional_information: 0,
            file_id: FileId::new(1, 2),
        };
        let pdu = test_pdu(Command::SET_INFO, false, |v| req.encode(v));
        assert_eq!(&pdu[64 + 8..64 + 10], &[96, 0]);
        assert_eq!(SetInfoRequest::parse(&pdu).unwrap(), req);
        assert_eq!(req.file_class(), FileInfoClass::DISPOSITION);
        let mut bad = pdu.clone();
        bad[64 + 4] = 2;
        assert!(SetInfoRequest::parse(&bad).is_err());
        let pdu = test_pdu(Command::SET_INFO, true, |v| SetInfoResponse.encode(v));
        assert_eq!(pdu.len(), 66);
        assert_eq!(SetInfoResponse::parse(&pdu).unwrap(), SetInfoResponse);
    }
}
