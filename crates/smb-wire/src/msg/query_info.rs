//! QUERY_INFO ([MS-SMB2] 2.2.37 request, 2.2.38 response). Info-class payloads are in
//! [`crate::fscc`].

use crate::codec::{Writer, slice_at, to_u32};
use crate::error::Result;
use crate::types::{Command, FileId, FileInfoClass, FsInfoClass, InfoType};

use super::query_directory::{encode_buffer9, parse_buffer9};
use super::{body, header_base, off16};

wire_flags! {
    /// AdditionalInformation for security queries and sets ([MS-SMB2] 2.2.37, [MS-DTYP] 2.4.7).
    pub struct SecurityInformation(u32);
    OWNER = 0x0000_0001,
    GROUP = 0x0000_0002,
    DACL = 0x0000_0004,
    SACL = 0x0000_0008,
    LABEL = 0x0000_0010,
    ATTRIBUTE = 0x0000_0020,
    SCOPE = 0x0000_0040,
    BACKUP = 0x0001_0000,
}

/// QUERY_INFO request ([MS-SMB2] 2.2.37).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueryInfoRequest<'a> {
    /// InfoType.
    pub info_type: InfoType,
    /// FileInfoClass, raw: its meaning depends on `info_type` (see [`Self::file_class`] and
    /// [`Self::fs_class`]; 0 for security and quota).
    pub file_info_class: u8,
    /// OutputBufferLength: the most the response may carry.
    pub output_buffer_length: u32,
    /// Input buffer (quota SIDs, FileFullEaInformation EA name list).
    pub input: &'a [u8],
    /// AdditionalInformation (a [`SecurityInformation`] for security queries; for EA queries
    /// the EA index).
    pub additional_information: u32,
    /// Flags (SL_RESTART_SCAN 1, SL_RETURN_SINGLE_ENTRY 2, SL_INDEX_SPECIFIED 4).
    pub flags: u32,
    /// The open.
    pub file_id: FileId,
}

impl<'a> QueryInfoRequest<'a> {
    /// StructureSize of the request.
    pub const STRUCTURE_SIZE: u16 = 41;
    /// SL_RESTART_SCAN.
    pub const SL_RESTART_SCAN: u32 = 0x1;
    /// SL_RETURN_SINGLE_ENTRY.
    pub const SL_RETURN_SINGLE_ENTRY: u32 = 0x2;
    /// SL_INDEX_SPECIFIED.
    pub const SL_INDEX_SPECIFIED: u32 = 0x4;

    /// The class as a file information class.
    pub fn file_class(&self) -> FileInfoClass {
        FileInfoClass(self.file_info_class)
    }

    /// The class as a file system information class.
    pub fn fs_class(&self) -> FsInfoClass {
        FsInfoClass(self.file_info_class)
    }

    /// AdditionalInformation as security information flags.
    pub fn security_information(&self) -> SecurityInformation {
        SecurityInformation(self.additional_information)
    }

    /// Parses the request PDU.
    pub fn parse(pdu: &'a [u8]) -> Result<Self> {
        let mut r = body(
            pdu,
            Command::QUERY_INFO,
            Self::STRUCTURE_SIZE,
            "QUERY_INFO request",
        )?;
        let info_type = InfoType(r.u8()?);
        let file_info_class = r.u8()?;
        let output_buffer_length = r.u32()?;
        let in_off = usize::from(r.u16()?);
        r.u16()?; // Reserved
        let in_len = r.u32()? as usize;
        let additional_information = r.u32()?;
        let flags = r.u32()?;
        let file_id = FileId::read(&mut r)?;
        let input = slice_at(pdu, in_off, in_len, r.pos(), "QUERY_INFO input")?;
        Ok(QueryInfoRequest {
            info_type,
            file_info_class,
            output_buffer_length,
            input,
            additional_information,
            flags,
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
        w.u32(self.output_buffer_length);
        let off_at = w.reserve_u16();
        w.u16(0);
        w.u32(to_u32(self.input.len(), "InputBufferLength")?);
        w.u32(self.additional_information);
        w.u32(self.flags);
        self.file_id.write(&mut w);
        if self.input.is_empty() {
            w.u8(0);
        } else {
            let off = off16(w.pos(), base, "InputBufferOffset")?;
            w.patch_u16(off_at, off);
            w.bytes(self.input);
        }
        Ok(())
    }
}

/// QUERY_INFO response ([MS-SMB2] 2.2.38).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueryInfoResponse<'a> {
    /// The information, encoded per its class.
    pub buffer: &'a [u8],
}

impl<'a> QueryInfoResponse<'a> {
    /// StructureSize of the response.
    pub const STRUCTURE_SIZE: u16 = 9;

    /// Appends the body.
    pub fn encode(&self, pdu: &mut Vec<u8>) -> Result<()> {
        encode_buffer9(pdu, self.buffer)
    }

    /// Parses a response PDU.
    pub fn parse(pdu: &'a [u8]) -> Result<Self> {
        Ok(QueryInfoResponse {
            buffer: parse_buffer9(pdu, Command::QUERY_INFO, "QUERY_INFO response")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::test_pdu;

    #[test]
    fn round_trips() {
        let req = QueryInfoRequest {
            info_type: InfoType::SECURITY,
            file_info_class: 0,
            output_buffer_length: 4096,
            input: &[],
            additional_information: (SecurityInformation::OWNER | SecurityInformation::DACL).0,
            flags: 0,
            file_id: FileId::new(9, 9),
        };
        let pdu = test_pdu(Command::QUERY_INFO, false, |v| req.encode(v));
        assert_eq!(pdu.len(), 64 + 41);
        assert_eq!(QueryInfoRequest::parse(&pdu).unwrap(), req);
        assert!(
            req.security_information()
                .contains(SecurityInformation::DACL)
        );
        let with_input = QueryInfoRequest {
            input: b"\x00\x00\x00\x00\x04\x00ABCD\x00",
            ..req
        };
        let pdu = test_pdu(Command::QUERY_INFO, false, |v| with_input.encode(v));
        assert_eq!(&pdu[64 + 8..64 + 10], &[104, 0]);
        assert_eq!(QueryInfoRequest::parse(&pdu).unwrap(), with_input);

        let resp = QueryInfoResponse { buffer: &[7; 40] };
        let pdu = test_pdu(Command::QUERY_INFO, true, |v| resp.encode(v));
        assert_eq!(QueryInfoResponse::parse(&pdu).unwrap(), resp);
    }
}
