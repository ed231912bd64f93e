//! IOCTL ([MS-SMB2] 2.2.31 request, 2.2.32 response). FSCTL payloads are in [`crate::fsctl`].

use crate::codec::{Writer, slice_at, to_u32};
use crate::error::Result;
use crate::fsctl::CtlCode;
use crate::types::{Command, FileId, IoctlFlags};

use super::{BODY, body, header_base, off32};

/// IOCTL request ([MS-SMB2] 2.2.31).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IoctlRequest<'a> {
    /// CtlCode.
    pub ctl_code: CtlCode,
    /// FileId (all ones for FSCTLs that are not about a file, e.g. VALIDATE_NEGOTIATE_INFO).
    pub file_id: FileId,
    /// The input buffer.
    pub input: &'a [u8],
    /// MaxInputResponse.
    pub max_input_response: u32,
    /// The output buffer sent by the client (normally empty).
    pub output: &'a [u8],
    /// MaxOutputResponse.
    pub max_output_response: u32,
    /// Flags (IS_FSCTL).
    pub flags: IoctlFlags,
}

impl<'a> IoctlRequest<'a> {
    /// StructureSize of the request.
    pub const STRUCTURE_SIZE: u16 = 57;

    /// Parses the request PDU.
    pub fn parse(pdu: &'a [u8]) -> Result<Self> {
        let mut r = body(pdu, Command::IOCTL, Self::STRUCTURE_SIZE, "IOCTL request")?;
        r.u16()?; // Reserved
        let ctl_code = CtlCode(r.u32()?);
        let file_id = FileId::read(&mut r)?;
        let in_off = r.u32()? as usize;
        let in_len = r.u32()? as usize;
        let max_input_response = r.u32()?;
        let out_off = r.u32()? as usize;
        let out_len = r.u32()? as usize;
        let max_output_response = r.u32()?;
        let flags = IoctlFlags(r.u32()?);
        r.u32()?; // Reserved2
        let fixed = r.pos();
        let input = slice_at(pdu, in_off, in_len, fixed, "IOCTL input")?;
        let output = slice_at(pdu, out_off, out_len, fixed, "IOCTL output")?;
        Ok(IoctlRequest {
            ctl_code,
            file_id,
            input,
            max_input_response,
            output,
            max_output_response,
            flags,
        })
    }

    /// Appends the body.
    pub fn encode(&self, pdu: &mut Vec<u8>) -> Result<()> {
        let base = header_base(pdu)?;
        let mut w = Writer::new(pdu);
        w.u16(Self::STRUCTURE_SIZE);
        w.u16(0);
        w.u32(self.ctl_code.0);
        self.file_id.write(&mut w);
        let in_off_at = w.reserve_u32();
        w.u32(to_u32(self.input.len(), "InputCount")?);
        w.u32(self.max_input_response);
        let out_off_at = w.reserve_u32();
        w.u32(to_u32(self.output.len(), "OutputCount")?);
        w.u32(self.max_output_response);
        w.u32(self.flags.0);
        w.u32(0);
        // Like smbclient: an empty input has offset 0, an empty output repeats InputOffset,
        // and a request with no buffers still carries the one byte StructureSize 57 counts.
        let in_off = if self.input.is_empty() {
            0
        } else {
            off32(w.pos(), base, "InputOffset")?
        };
        w.patch_u32(in_off_at, in_off);
        w.bytes(self.input);
        if self.output.is_empty() {
            w.patch_u32(out_off_at, in_off);
            if self.input.is_empty() {
                w.u8(0);
            }
        } else {
            w.align(8);
            let out_off = off32(w.pos(), base, "OutputOffset")?;
            w.patch_u32(out_off_at, out_off);
            w.bytes(self.output);
        }
        Ok(())
    }
}

/// IOCTL response ([MS-SMB2] 2.2.32).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IoctlResponse<'a> {
    /// CtlCode, echoed.
    pub ctl_code: CtlCode,
    /// FileId, echoed.
    pub file_id: FileId,
    /// Input buffer (normally empty in responses).
    pub input: &'a [u8],
    /// Output buffer.
    pub output: &'a [u8],
    /// Flags (reserved, 0).
    pub flags: IoctlFlags,
}

impl<'a> IoctlResponse<'a> {
    /// StructureSize of the response.
    pub const STRUCTURE_SIZE: u16 = 49;
    /// Where the buffers start: header + 48 fixed bytes.
    pub const BUFFER_OFFSET: usize = BODY + 48;

    /// Appends the body. InputOffset points at the buffer start even when the input is
    /// empty, and OutputOffset at the next 8-byte boundary after the input, like Windows.
    pub fn encode(&self, pdu: &mut Vec<u8>) -> Result<()> {
        let base = header_base(pdu)?;
        let mut w = Writer::new(pdu);
        w.u16(Self::STRUCTURE_SIZE);
        w.u16(0);
        w.u32(self.ctl_code.0);
        self.file_id.write(&mut w);
        let in_off_at = w.reserve_u32();
        w.u32(to_u32(self.input.len(), "InputCount")?);
        let out_off_at = w.reserve_u32();
        w.u32(to_u32(self.output.len(), "OutputCount")?);
        w.u32(self.flags.0);
        w.u32(0);
        let in_off = off32(w.pos(), base, "InputOffset")?;
        w.patch_u32(in_off_at, in_off);
        w.bytes(self.input);
        if !self.input.is_empty() {
            w.align(8);
        }
        let out_off = off32(w.pos(), base, "OutputOffset")?;
        w.patch_u32(out_off_at, out_off);
        w.bytes(self.output);
        Ok(())
    }

    /// Parses a response PDU.
    pub fn parse(pdu: &'a [u8]) -> Result<Self> {
        let mut r = body(pdu, Command::IOCTL, Self::STRUCTURE_SIZE, "IOCTL response")?;
        r.u16()?;
        let ctl_code = CtlCode(r.u32()?);
        let file_id = FileId::read(&mut r)?;
        let in_off = r.u32()? as usize;
        let in_len = r.u32()? as usize;
        let out_off = r.u32()? as usize;
        let out_len = r.u32()? as usize;
        let flags = IoctlFlags(r.u32()?);
        r.u32()?;
        let fixed = r.pos();
        let input = slice_at(pdu, in_off, in_len, fixed, "IOCTL input")?;
        let output = slice_at(pdu, out_off, out_len, fixed, "IOCTL output")?;
        Ok(IoctlResponse {
            ctl_code,
            file_id,
            input,
            output,
            flags,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::WireError;
    use crate::msg::test_pdu;

    #[test]
    fn request_round_trip() {
        let req = IoctlRequest {
            ctl_code: CtlCode::VALIDATE_NEGOTIATE_INFO,
            file_id: FileId::ANY,
            input: &[1, 2, 3, 4, 5],
            max_input_response: 0,
            output: &[9, 9],
            max_output_response: 24,
            flags: IoctlFlags::IS_FSCTL,
        };
        let pdu = test_pdu(Command::IOCTL, false, |v| req.encode(v));
        assert_eq!(&pdu[64 + 24..64 + 28], &[120, 0, 0, 0]);
        assert_eq!(IoctlRequest::parse(&pdu).unwrap(), req);
        let mut bad = pdu.clone();
        bad[64 + 28] = 0xFF; // InputCount past the end
        assert!(matches!(
            IoctlRequest::parse(&bad),
            Err(WireError::BadOffset { .. })
        ));
    }

    #[test]
    fn response_round_trip() {
        let resp = IoctlResponse {
            ctl_code: CtlCode::PIPE_TRANSCEIVE,
            file_id: FileId::new(1, 2),
            input: &[],
            output: b"dcerpc-bind-ack",
            flags: IoctlFlags::empty(),
        };
        let pdu = test_pdu(Command::IOCTL, true, |v| resp.encode(v));
        assert_eq!(&pdu[64 + 24..64 + 28], &[112, 0, 0, 0]);
        assert_eq!(&pdu[64 + 32..64 + 36], &[112, 0, 0, 0]);
        assert_eq!(IoctlResponse::parse(&pdu).unwrap(), resp);
        let resp2 = IoctlResponse {
            input: &[1, 2, 3],
            ..resp.clone()
        };
        let pdu = test_pdu(Command::IOCTL, true, |v| resp2.encode(v));
        assert_eq!(&pdu[64 + 32..64 + 36], &[120, 0, 0, 0]);
        assert_eq!(IoctlResponse::parse(&pdu).unwrap(), resp2);
    }
}
