//! CHANGE_NOTIFY ([MS-SMB2] 2.2.35 request, 2.2.36 response). FILE_NOTIFY_INFORMATION
//! entries are built with [`crate::fscc`].

use crate::codec::Writer;
use crate::error::Result;
use crate::types::{Command, FileId};

use super::query_directory::{encode_buffer9, parse_buffer9};
use super::{body, header_base};

wire_flags! {
    /// CHANGE_NOTIFY request flags ([MS-SMB2] 2.2.35 Flags).
    pub struct ChangeNotifyFlags(u16);
    WATCH_TREE = 0x0001,
}

wire_flags! {
    /// CompletionFilter ([MS-SMB2] 2.2.35).
    pub struct CompletionFilter(u32);
    FILE_NAME = 0x0000_0001,
    DIR_NAME = 0x0000_0002,
    ATTRIBUTES = 0x0000_0004,
    SIZE = 0x0000_0008,
    LAST_WRITE = 0x0000_0010,
    LAST_ACCESS = 0x0000_0020,
    CREATION = 0x0000_0040,
    EA = 0x0000_0080,
    SECURITY = 0x0000_0100,
    STREAM_NAME = 0x0000_0200,
    STREAM_SIZE = 0x0000_0400,
    STREAM_WRITE = 0x0000_0800,
}

/// CHANGE_NOTIFY request ([MS-SMB2] 2.2.35).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChangeNotifyRequest {
    /// Flags (WATCH_TREE).
    pub flags: ChangeNotifyFlags,
    /// OutputBufferLength.
    pub output_buffer_length: u32,
    /// The directory open.
    pub file_id: FileId,
    /// CompletionFilter.
    pub completion_filter: CompletionFilter,
}

impl ChangeNotifyRequest {
    /// StructureSize of the request.
    pub const STRUCTURE_SIZE: u16 = 32;

    /// Parses the request PDU.
    pub fn parse(pdu: &[u8]) -> Result<Self> {
        let mut r = body(
            pdu,
            Command::CHANGE_NOTIFY,
            Self::STRUCTURE_SIZE,
            "CHANGE_NOTIFY request",
        )?;
        let flags = ChangeNotifyFlags(r.u16()?);
        let output_buffer_length = r.u32()?;
        let file_id = FileId::read(&mut r)?;
        let completion_filter = CompletionFilter(r.u32()?);
        r.u32()?; // Reserved
        Ok(ChangeNotifyRequest {
            flags,
            output_buffer_length,
            file_id,
            completion_filter,
        })
    }

    /// Appends the body.
    pub fn encode(&self, pdu: &mut Vec<u8>) -> Result<()> {
        header_base(pdu)?;
        let mut w = Writer::new(pdu);
        w.u16(Self::STRUCTURE_SIZE);
        w.u16(self.flags.0);
        w.u32(self.output_buffer_length);
        self.file_id.write(&mut w);
        w.u32(self.completion_filter.0);
        w.u32(0);
        Ok(())
    }
}

/// CHANGE_NOTIFY response ([MS-SMB2] 2.2.36).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChangeNotifyResponse<'a> {
    /// The chained FILE_NOTIFY_INFORMATION entries ([MS-FSCC] 2.7.1).
    pub buffer: &'a [u8],
}

impl<'a> ChangeNotifyResponse<'a> {
    /// StructureSize of the response.
    pub const STRUCTURE_SIZE: u16 = 9;

    /// Appends the body.
    pub fn encode(&self, pdu: &mut Vec<u8>) -> Result<()> {
        encode_buffer9(pdu, self.buffer)
    }

    /// Parses a response PDU.
    pub fn parse(pdu: &'a [u8]) -> Result<Self> {
        Ok(ChangeNotifyResponse {
            buffer: parse_buffer9(pdu, Command::CHANGE_NOTIFY, "CHANGE_NOTIFY response")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::test_pdu;

    #[test]
    fn round_trips() {
        let req = ChangeNotifyRequest {
            flags: ChangeNotifyFlags::WATCH_TREE,
            output_buffer_length: 4096,
            file_id: FileId::new(3, 4),
            completion_filter: CompletionFilter::FILE_NAME | CompletionFilter::DIR_NAME,
        };
        let pdu = test_pdu(Command::CHANGE_NOTIFY, false, |v| req.encode(v));
        assert_eq!(pdu.len(), 64 + 32);
        assert_eq!(ChangeNotifyRequest::parse(&pdu).unwrap(), req);
        let resp = ChangeNotifyResponse { buffer: &[0; 16] };
        let pdu = test_pdu(Command::CHANGE_NOTIFY, true, |v| resp.encode(v));
        assert_eq!(ChangeNotifyResponse::parse(&pdu).unwrap(), resp);
    }
}
