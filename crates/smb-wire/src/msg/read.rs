//! READ ([MS-SMB2] 2.2.19 request, 2.2.20 response).

use crate::codec::{Writer, slice_at, to_u16};
use crate::error::{Result, WireError};
use crate::types::{Command, FileId};

use super::{BODY, body, header_base, off16};

/// READ request ([MS-SMB2] 2.2.19).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReadRequest<'a> {
    /// Padding: the DataOffset the client would like in the response (0x50 usually).
    pub padding: u8,
    /// Flags (3.0.2+: READ_UNBUFFERED 1, 3.1.1: REQUEST_COMPRESSED 2).
    pub flags: u8,
    /// Length to read.
    pub length: u32,
    /// Offset in the file.
    pub offset: u64,
    /// The open.
    pub file_id: FileId,
    /// MinimumCount: fewer bytes than this is STATUS_END_OF_FILE.
    pub minimum_count: u32,
    /// Channel (RDMA; 0 on TCP).
    pub channel: u32,
    /// RemainingBytes (a hint).
    pub remaining_bytes: u32,
    /// ReadChannelInfo (RDMA descriptors), normally empty.
    pub channel_info: &'a [u8],
}

impl<'a> ReadRequest<'a> {
    /// StructureSize of the request.
    pub const STRUCTURE_SIZE: u16 = 49;
    /// SMB2_READFLAG_READ_UNBUFFERED.
    pub const FLAG_READ_UNBUFFERED: u8 = 0x01;
    /// SMB2_READFLAG_REQUEST_COMPRESSED.
    pub const FLAG_REQUEST_COMPRESSED: u8 = 0x02;

    /// Parses the request PDU. The one-byte Buffer the spec counts in StructureSize is not
    /// required: some clients end the PDU after the 48 fixed bytes.
    pub fn parse(pdu: &'a [u8]) -> Result<Self> {
        let mut r = body(pdu, Command::READ, Self::STRUCTURE_SIZE, "READ request")?;
        let padding = r.u8()?;
        let flags = r.u8()?;
        let length = r.u32()?;
        let offset = r.u64()?;
        let file_id = FileId::read(&mut r)?;
        let minimum_count = r.u32()?;
        let channel = r.u32()?;
        let remaining_bytes = r.u32()?;
        let ci_off = usize::from(r.u16()?);
        let ci_len = usize::from(r.u16()?);
        let channel_info = slice_at(pdu, ci_off, ci_len, r.pos(), "ReadChannelInfo")?;
        Ok(ReadRequest {
            padding,
            flags,
            length,
            offset,
            file_id,
            minimum_count,
            channel,
            remaining_bytes,
            channel_info,
        })
    }

    /// Appends the body (with the one Buffer byte when there is no channel info).
    pub fn encode(&self, pdu: &mut Vec<u8>) -> Result<()> {
        let base = header_base(pdu)?;
        let mut w = Writer::new(pdu);
        w.u16(Self::STRUCTURE_SIZE);
        w.u8(self.padding);
        w.u8(self.flags);
        w.u32(self.length);
        w.u64(self.offset);
        self.file_id.write(&mut w);
        w.u32(self.minimum_count);
        w.u32(self.channel);
        w.u32(self.remaining_bytes);
        let off_at = w.reserve_u16();
        w.u16(to_u16(self.channel_info.len(), "ReadChannelInfoLength")?);
        if self.channel_info.is_empty() {
            w.u8(0);
        } else {
            let off = off16(w.pos(), base, "ReadChannelInfoOffset")?;
            w.patch_u16(off_at, off);
            w.bytes(self.channel_info);
        }
        Ok(())
    }
}

/// READ response ([MS-SMB2] 2.2.20).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReadResponse<'a> {
    /// The data read.
    pub data: &'a [u8],
    /// DataRemaining (RDMA; 0 on TCP).
    pub data_remaining: u32,
    /// Flags (3.1.1: SMB2_READFLAG_RESPONSE_RDMA_TRANSFORM 1), else reserved.
    pub flags: u32,
}

impl<'a> ReadResponse<'a> {
    /// StructureSize of the response.
    pub const STRUCTURE_SIZE: u16 = 17;
    /// Bytes of the body before the data.
    pub const FIXED_LEN: usize = 16;
    /// DataOffset from the header start: the data follows the fixed part immediately.
    pub const DATA_OFFSET: u8 = (BODY + Self::FIXED_LEN) as u8;

    /// Writes the fixed part into `out[..16]` for data that the caller has already placed
    /// (or will place) right after it, so file data can be read straight into the response
    /// buffer without a copy. A slice shorter than 16 bytes is left untouched.
    pub fn write_fixed(out: &mut [u8], data_length: u32, data_remaining: u32) {
        let Some(out) = out.get_mut(..Self::FIXED_LEN) else {
            debug_assert!(false, "ReadResponse::write_fixed needs 16 bytes");
            return;
        };
        out[0..2].copy_from_slice(&Self::STRUCTURE_SIZE.to_le_bytes());
        out[2] = Self::DATA_OFFSET;
        out[3] = 0;
        out[4..8].copy_from_slice(&data_length.to_le_bytes());
        out[8..12].copy_from_slice(&data_remaining.to_le_bytes());
        out[12..16].copy_from_slice(&0u32.to_le_bytes());
    }

    /// Appends the fixed part for `data_length` bytes of data that the caller appends next.
    /// The vec must hold exactly this PDU's header before the body (DataOffset is fixed at 80).
    pub fn encode_header(data_length: u32, data_remaining: u32, pdu: &mut Vec<u8>) -> Result<()> {
        header_base(pdu)?;
        let at = pdu.len();
        pdu.resize(at + Self::FIXED_LEN, 0);
        if let Some(s) = pdu.get_mut(at..) {
            Self::write_fixed(s, data_length, data_remaining);
        }
        Ok(())
    }

    /// Appends the body with the data.
    pub fn encode(&self, pdu: &mut Vec<u8>) -> Result<()> {
        let len = u32::try_from(self.data.len()).map_err(|_| WireError::TooLarge {
            what: "DataLength",
            value: self.data.len(),
        })?;
        Self::encode_header(len, self.data_remaining, pdu)?;
        let flags_at = pdu.len() - 4;
        Writer::new(pdu).patch_u32(flags_at, self.flags);
        pdu.extend_from_slice(self.data);
        Ok(())
    }

    /// Parses a response PDU.
    pub fn parse(pdu: &'a [u8]) -> Result<Self> {
        let mut r = body(pdu, Command::READ, Self::STRUCTURE_SIZE, "READ response")?;
        let off = usize::from(r.u8()?);
        r.u8()?;
        let len = r.u32()? as usize;
        let data_remaining = r.u32()?;
        let flags = r.u32()?;
        let data = slice_at(pdu, off, len, r.pos(), "READ data")?;
        Ok(ReadResponse {
            data,
            data_remaining,
            flags,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::test_pdu;

    #[test]
    fn request_round_trip() {
        let req = ReadRequest {
            padding: 0x50,
            flags: 0,
            length: 65536,
            offset: 1 << 40,
            file_id: FileId::new(1, 2),
            minimum_count: 1,
            channel: 0,
            remaining_bytes: 0,
            channel_info: &[],
        };
        let pdu = test_pdu(Command::READ, false, |v| req.encode(v));
        assert_eq!(pdu.len(), 64 + 49);
        assert_eq!(ReadRequest::parse(&pdu).unwrap(), req);
        // without the trailing buffer byte it still parses
        assert_eq!(ReadRequest::parse(&pdu[..112]).unwrap(), req);
        let with_ci = ReadRequest {
            channel_info: &[1, 2, 3, 4],
            ..req
        };
        let pdu = test_pdu(Command::READ, false, |v| with_ci.encode(v));
        assert_eq!(ReadRequest::parse(&pdu).unwrap(), with_ci);
    }

    #[test]
    fn response_in_place_and_round_trip() {
        let mut pdu = test_pdu(Command::READ, true, |_| Ok(()));
        ReadResponse::encode_header(3, 0, &mut pdu).unwrap();
        pdu.extend_from_slice(b"abc");
        assert_eq!(&pdu[64..68], &[17, 0, 80, 0]);
        let parsed = ReadResponse::parse(&pdu).unwrap();
        assert_eq!(parsed.data, b"abc");

        let resp = ReadResponse {
            data: b"hello",
            data_remaining: 0,
            flags: 0,
        };
        let pdu = test_pdu(Command::READ, true, |v| resp.encode(v));
        assert_eq!(ReadResponse::parse(&pdu).unwrap(), resp);
        let mut bad = pdu.clone();
        bad[68] = 6; // DataLength past the end
        assert!(ReadResponse::parse(&bad).is_err());
    }
}
