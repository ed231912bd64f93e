//! QUERY_DIRECTORY ([MS-SMB2] 2.2.33 request, 2.2.34 response). Entry encoders are in
//! [`crate::fscc`].

use crate::codec::{Writer, slice_at, to_u16, to_u32};
use crate::error::Result;
use crate::types::{Command, FileId, FileInfoClass};
use crate::utf16;

use super::{body, header_base, off16};

wire_flags! {
    /// QUERY_DIRECTORY flags ([MS-SMB2] 2.2.33 Flags).
    pub struct QueryDirectoryFlags(u8);
    RESTART_SCANS = 0x01,
    RETURN_SINGLE_ENTRY = 0x02,
    INDEX_SPECIFIED = 0x04,
    REOPEN = 0x10,
}

/// QUERY_DIRECTORY request ([MS-SMB2] 2.2.33).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueryDirectoryRequest {
    /// FileInformationClass of the entries wanted.
    pub file_information_class: FileInfoClass,
    /// Flags.
    pub flags: QueryDirectoryFlags,
    /// FileIndex (with INDEX_SPECIFIED).
    pub file_index: u32,
    /// The directory open.
    pub file_id: FileId,
    /// The search pattern (`*`, `?`, `<`, `>`, `"` wildcards), decoded from UTF-16LE.
    pub file_name: String,
    /// OutputBufferLength: the most the response may carry.
    pub output_buffer_length: u32,
}

impl QueryDirectoryRequest {
    /// StructureSize of the request.
    pub const STRUCTURE_SIZE: u16 = 33;

    /// Parses the request PDU.
    pub fn parse(pdu: &[u8]) -> Result<Self> {
        let mut r = body(
            pdu,
            Command::QUERY_DIRECTORY,
            Self::STRUCTURE_SIZE,
            "QUERY_DIRECTORY request",
        )?;
        let file_information_class = FileInfoClass(r.u8()?);
        let flags = QueryDirectoryFlags(r.u8()?);
        let file_index = r.u32()?;
        let file_id = FileId::read(&mut r)?;
        let name_off = usize::from(r.u16()?);
        let name_len = usize::from(r.u16()?);
        let output_buffer_length = r.u32()?;
        let name = slice_at(pdu, name_off, name_len, r.pos(), "QUERY_DIRECTORY FileName")?;
        Ok(QueryDirectoryRequest {
            file_information_class,
            flags,
            file_index,
            file_id,
            file_name: utf16::decode(name)?,
            output_buffer_length,
        })
    }

    /// Appends the body.
    pub fn encode(&self, pdu: &mut Vec<u8>) -> Result<()> {
        let base = header_base(pdu)?;
        let name = utf16::encode(&self.file_name);
        let mut w = Writer::new(pdu);
        w.u16(Self::STRUCTURE_SIZE);
        w.u8(self.file_information_class.0);
        w.u8(self.flags.0);
        w.u32(self.file_index);
        self.file_id.write(&mut w);
        let off_at = w.reserve_u16();
        w.u16(to_u16(name.len(), "FileNameLength")?);
        w.u32(self.output_buffer_length);
        let off = off16(w.pos(), base, "FileNameOffset")?;
        w.patch_u16(off_at, off);
        w.bytes(&name);
        if name.is_empty() {
            w.u8(0);
        }
        Ok(())
    }
}

/// QUERY_DIRECTORY response ([MS-SMB2] 2.2.34).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueryDirectoryResponse<'a> {
    /// The chained directory entries.
    pub buffer: &'a [u8],
}

impl<'a> QueryDirectoryResponse<'a> {
    /// StructureSize of the response.
    pub const STRUCTURE_SIZE: u16 = 9;

    /// Appends the body.
    pub fn encode(&self, pdu: &mut Vec<u8>) -> Result<()> {
        encode_buffer9(pdu, self.buffer)
    }

    /// Parses a response PDU.
    pub fn parse(pdu: &'a [u8]) -> Result<Self> {
        Ok(QueryDirectoryResponse {
            buffer: parse_buffer9(pdu, Command::QUERY_DIRECTORY, "QUERY_DIRECTORY response")?,
        })
    }
}

/// Appends the common "StructureSize 9, OutputBufferOffset u16, OutputBufferLength u32,
/// Buffer" body shared by QUERY_DIRECTORY, CHANGE_NOTIFY and QUERY_INFO responses.
pub(crate) fn encode_buffer9(pdu: &mut Vec<u8>, buffer: &[u8]) -> Result<()> {
    let base = header_base(pdu)?;
    let mut w = Writer::new(pdu);
    w.u16(9);
    let off_at = w.reserve_u16();
    w.u32(to_u32(buffer.len(), "OutputBufferLength")?);
    let off = off16(w.pos(), base, "OutputBufferOffset")?;
    w.patch_u16(off_at, off);
    if buffer.is_empty() {
        w.u8(0);
    } else {
        w.bytes(buffer);
    }
    Ok(())
}

pub(crate) fn parse_buffer9<'a>(
    pdu: &'a [u8],
    command: Command,
    what: &'static str,
) -> Result<&'a [u8]> {
    let mut r = body(pdu, command, 9, what)?;
    let off = usize::from(r.u16()?);
    let len = r.u32()? as usize;
    slice_at(pdu, off, len, r.pos(), what)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::test_pdu;

    #[test]
    fn round_trips() {
        let req = QueryDirectoryRequest {
            file_information_class: FileInfoClass::ID_BOTH_DIRECTORY,
            flags: QueryDirectoryFlags::RESTART_SCANS,
            file_index: 0,
            file_id: FileId::new(1, 2),
            file_name: "*".into(),
            output_buffer_length: 65536,
        };
        let pdu = test_pdu(Command::QUERY_DIRECTORY, false, |v| req.encode(v));
        assert_eq!(&pdu[64 + 24..64 + 26], &[96, 0]);
        assert_eq!(QueryDirectoryRequest::parse(&pdu).unwrap(), req);

        let resp = QueryDirectoryResponse {
            buffer: &[1, 2, 3, 4, 5, 6, 7, 8],
        };
        let pdu = test_pdu(Command::QUERY_DIRECTORY, true, |v| resp.encode(v));
        assert_eq!(&pdu[66..68], &[72, 0]);
        assert_eq!(QueryDirectoryResponse::parse(&pdu).unwrap(), resp);
        let mut bad = pdu.clone();
        bad[68] = 9;
        assert!(QueryDirectoryResponse::parse(&bad).is_err());
    }
}
