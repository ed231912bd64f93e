//! WRITE ([MS-SMB2] 2.2.21 request, 2.2.22 response).

use crate::codec::{Writer, slice_at, to_u16, to_u32};
use crate::error::Result;
use crate::types::{Command, FileId};

use super::{body, header_base, off16};

/// WRITE request ([MS-SMB2] 2.2.21).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriteRequest<'a> {
    /// Offset in the file.
    pub offset: u64,
    /// The open.
    pub file_id: FileId,
    /// Channel (RDMA; 0 on TCP).
    pub channel: u32,
    /// RemainingBytes (a hint).
    pub remaining_bytes: u32,
    /// Flags (WRITE_THROUGH 1, WRITE_UNBUFFERED 2).
    pub flags: u32,
    /// The data, borrowed from the frame.
    pub data: &'a [u8],
    /// WriteChannelInfo (RDMA descriptors), normally empty.
    pub channel_info: &'a [u8],
}

impl<'a> WriteRequest<'a> {
    /// StructureSize of the request.
    pub const STRUCTURE_SIZE: u16 = 49;
    /// SMB2_WRITEFLAG_WRITE_THROUGH.
    pub const FLAG_WRITE_THROUGH: u32 = 0x0000_0001;
    /// SMB2_WRITEFLAG_WRITE_UNBUFFERED.
    pub const FLAG_WRITE_UNBUFFERED: u32 = 0x0000_0002;

    /// Parses the request PDU.
    pub fn parse(pdu: &'a [u8]) -> Result<Self> {
        Self::parse_inner(pdu, true).map(|(w, _)| w)
    }

    /// Parses a request whose data is not in `pdu` (a server taking it straight from the
    /// socket): `data` comes back empty, with the Length field beside it. The caller checks
    /// DataOffset and Length against what it reads.
    pub fn parse_without_data(pdu: &'a [u8]) -> Result<(Self, u32)> {
        Self::parse_inner(pdu, false)
    }

    fn parse_inner(pdu: &'a [u8], with_data: bool) -> Result<(Self, u32)> {
        let mut r = body(pdu, Command::WRITE, Self::STRUCTURE_SIZE, "WRITE request")?;
        let data_off = usize::from(r.u16()?);
        let length_field = r.u32()?;
        let length = if with_data { length_field as usize } else { 0 };
        let offset = r.u64()?;
        let file_id = FileId::read(&mut r)?;
        let channel = r.u32()?;
        let remaining_bytes = r.u32()?;
        let ci_off = usize::from(r.u16()?);
        let ci_len = usize::from(r.u16()?);
        let flags = r.u32()?;
        let fixed = r.pos();
        let data = slice_at(pdu, data_off, length, fixed, "WRITE data")?;
        let channel_info = slice_at(pdu, ci_off, ci_len, fixed, "WriteChannelInfo")?;
        Ok((
            WriteRequest {
                offset,
                file_id,
                channel,
                remaining_bytes,
                flags,
                data,
                channel_info,
            },
            length_field,
        ))
    }

    /// Appends the body (channel info, if any, after the data).
    pub fn encode(&self, pdu: &mut Vec<u8>) -> Result<()> {
        let base = header_base(pdu)?;
        let mut w = Writer::new(pdu);
        w.u16(Self::STRUCTURE_SIZE);
        let data_off_at = w.reserve_u16();
        w.u32(to_u32(self.data.len(), "WRITE Length")?);
        w.u64(self.offset);
        self.file_id.write(&mut w);
        w.u32(self.channel);
        w.u32(self.remaining_bytes);
        let ci_off_at = w.reserve_u16();
        w.u16(to_u16(self.channel_info.len(), "WriteChannelInfoLength")?);
        w.u32(self.flags);
        let off = off16(w.pos(), base, "DataOffset")?;
        w.patch_u16(data_off_at, off);
        w.bytes(self.data);
        if !self.channel_info.is_empty() {
            let off = off16(w.pos(), base, "WriteChannelInfoOffset")?;
            w.patch_u16(ci_off_at, off);
            w.bytes(self.channel_info);
        }
        Ok(())
    }
}

/// WRITE response ([MS-SMB2] 2.2.22).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriteResponse {
    /// Count of bytes written.
    pub count: u32,
    /// Remaining (reserved, 0).
    pub remaining: u32,
}

impl WriteResponse {
    /// StructureSize of the response.
    pub const STRUCTURE_SIZE: u16 = 17;

    /// Appends the body.
    pub fn encode(&self, pdu: &mut Vec<u8>) -> Result<()> {
        header_base(pdu)?;
        let mut w = Writer::new(pdu);
        w.u16(Self::STRUCTURE_SIZE);
        w.u16(0);
        w.u32(self.count);
        w.u32(self.remaining);
        w.u16(0);
        w.u16(0);
        Ok(())
    }

    /// Parses a response PDU.
    pub fn parse(pdu: &[u8]) -> Result<Self> {
        let mut r = body(pdu, Command::WRITE, Self::STRUCTURE_SIZE, "WRITE response")?;
        r.u16()?;
        Ok(WriteResponse {
            count: r.u32()?,
            remaining: r.u32()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::WireError;
    use crate::msg::test_pdu;

    #[test]
    fn request_round_trip_and_layout() {
        let req = WriteRequest {
            offset: 4096,
            file_id: FileId::new(5, 6),
            channel: 0,
            remaining_bytes: 0,
            flags: WriteRequest::FLAG_WRITE_THROUGH,
            data: b"payload",
            channel_info: &[],
        };
        let pdu = test_pdu(Command::WRITE, false, |v| req.encode(v));
        assert_eq!(&pdu[66..68], &[112, 0]);
        assert_eq!(&pdu[112..], b"payload");
        assert_eq!(WriteRequest::parse(&pdu).unwrap(), req);
        let mut bad = pdu.clone();
        bad[68] = 8; // Length past the end
        assert!(matches!(
            WriteRequest::parse(&bad),
            Err(WireError::BadOffset { .. })
        ));
        let with_ci = WriteRequest {
            channel_info: &[9; 16],
            ..req
        };
        let pdu = test_pdu(Command::WRITE, false, |v| with_ci.encode(v));
        assert_eq!(WriteRequest::parse(&pdu).unwrap(), with_ci);
    }

    #[test]
    fn response_round_trip() {
        let resp = WriteResponse {
            count: 7,
            remaining: 0,
        };
        let pdu = test_pdu(Command::WRITE, true, |v| resp.encode(v));
        assert_eq!(pdu.len(), 64 + 16);
        assert_eq!(WriteResponse::parse(&pdu).unwrap(), resp);
    }
}
