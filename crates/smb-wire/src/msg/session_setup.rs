//! SESSION_SETUP ([MS-SMB2] 2.2.5 request, 2.2.6 response).

use crate::codec::{Writer, slice_at, to_u16};
use crate::error::Result;
use crate::types::{
    Capabilities, Command, SecurityMode, SessionFlags, SessionId, SessionSetupFlags,
};

use super::{body, header_base, off16};

/// SESSION_SETUP request ([MS-SMB2] 2.2.5).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionSetupRequest<'a> {
    /// Flags (BINDING binds this connection to an existing session, 3.x).
    pub flags: SessionSetupFlags,
    /// SecurityMode (one byte on the wire).
    pub security_mode: SecurityMode,
    /// Capabilities.
    pub capabilities: Capabilities,
    /// Channel (reserved, must be 0).
    pub channel: u32,
    /// PreviousSessionId (for reconnect: the server logs that session off).
    pub previous_session_id: SessionId,
    /// The GSS/SPNEGO (or raw NTLMSSP) token.
    pub security_buffer: &'a [u8],
}

impl<'a> SessionSetupRequest<'a> {
    /// StructureSize of the request.
    pub const STRUCTURE_SIZE: u16 = 25;

    /// Parses the request PDU.
    pub fn parse(pdu: &'a [u8]) -> Result<Self> {
        let mut r = body(
            pdu,
            Command::SESSION_SETUP,
            Self::STRUCTURE_SIZE,
            "SESSION_SETUP request",
        )?;
        let flags = SessionSetupFlags(r.u8()?);
        let security_mode = SecurityMode(u16::from(r.u8()?));
        let capabilities = Capabilities(r.u32()?);
        let channel = r.u32()?;
        let off = usize::from(r.u16()?);
        let len = usize::from(r.u16()?);
        let previous_session_id = SessionId(r.u64()?);
        let security_buffer = slice_at(pdu, off, len, r.pos(), "SESSION_SETUP SecurityBuffer")?;
        Ok(SessionSetupRequest {
            flags,
            security_mode,
            capabilities,
            channel,
            previous_session_id,
            security_buffer,
        })
    }

    /// Appends the body.
    pub fn encode(&self, pdu: &mut Vec<u8>) -> Result<()> {
        let base = header_base(pdu)?;
        let mut w = Writer::new(pdu);
        w.u16(Self::STRUCTURE_SIZE);
        w.u8(self.flags.0);
        w.u8(self.security_mode.0 as u8);
        w.u32(self.capabilities.0);
        w.u32(self.channel);
        let off_at = w.reserve_u16();
        w.u16(to_u16(self.security_buffer.len(), "SecurityBufferLength")?);
        w.u64(self.previous_session_id.0);
        let off = off16(w.pos(), base, "SecurityBufferOffset")?;
        w.patch_u16(off_at, off);
        w.bytes(self.security_buffer);
        Ok(())
    }
}

/// SESSION_SETUP response ([MS-SMB2] 2.2.6).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionSetupResponse<'a> {
    /// SessionFlags.
    pub session_flags: SessionFlags,
    /// The GSS/SPNEGO token (may be empty on the final leg).
    pub security_buffer: &'a [u8],
}

impl<'a> SessionSetupResponse<'a> {
    /// StructureSize of the response.
    pub const STRUCTURE_SIZE: u16 = 9;

    /// Appends the body.
    pub fn encode(&self, pdu: &mut Vec<u8>) -> Result<()> {
        let base = header_base(pdu)?;
        let mut w = Writer::new(pdu);
        w.u16(Self::STRUCTURE_SIZE);
        w.u16(self.session_flags.0);
        let off_at = w.reserve_u16();
        w.u16(to_u16(self.security_buffer.len(), "SecurityBufferLength")?);
        let off = off16(w.pos(), base, "SecurityBufferOffset")?;
        w.patch_u16(off_at, off);
        w.bytes(self.security_buffer);
        Ok(())
    }

    /// Parses a response PDU.
    pub fn parse(pdu: &'a [u8]) -> Result<Self> {
        let mut r = body(
            pdu,
            Command::SESSION_SETUP,
            Self::STRUCTURE_SIZE,
            "SESSION_SETUP response",
        )?;
        let session_flags = SessionFlags(r.u16()?);
        let off = usize::from(r.u16()?);
        let len = usize::from(r.u16()?);
        let security_buffer = slice_at(pdu, off, len, r.pos(), "SESSION_SETUP SecurityBuffer")?;
        Ok(SessionSetupResponse {
            session_flags,
            security_buffer,
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
        let req = SessionSetupRequest {
            flags: SessionSetupFlags::BINDING,
            security_mode: SecurityMode::SIGNING_REQUIRED,
            capabilities: Capabilities::DFS,
            channel: 0,
            previous_session_id: SessionId(0x77),
            security_buffer: b"\x60\x48token",
        };
        let pdu = test_pdu(Command::SESSION_SETUP, false, |v| req.encode(v));
        assert_eq!(&pdu[64..68], &[25, 0, 1, 2]);
        assert_eq!(&pdu[76..78], &[88, 0]);
        assert_eq!(SessionSetupRequest::parse(&pdu).unwrap(), req);
        // buffer pointing into the fixed part is refused
        let mut bad = pdu.clone();
        bad[76] = 70;
        assert!(matches!(
            SessionSetupRequest::parse(&bad),
            Err(WireError::BadOffset { .. })
        ));
        // buffer longer than the PDU
        let mut bad = pdu.clone();
        bad[78] = 200;
        assert!(matches!(
            SessionSetupRequest::parse(&bad),
            Err(WireError::BadOffset { .. })
        ));
    }

    #[test]
    fn response_round_trip() {
        for buf in [&b""[..], b"\xa1\x07mic"] {
            let resp = SessionSetupResponse {
                session_flags: SessionFlags::IS_GUEST,
                security_buffer: buf,
            };
            let pdu = test_pdu(Command::SESSION_SETUP, true, |v| resp.encode(v));
            assert_eq!(&pdu[68..70], &[72, 0]);
            assert_eq!(SessionSetupResponse::parse(&pdu).unwrap(), resp);
        }
    }
}
