//! FSCTL/IOCTL control codes ([MS-SMB2] 2.2.31, [MS-FSCC] 2.3) and the FSCTL payloads the SMB
//! layer itself answers.

use crate::codec::{Reader, Writer};
use crate::error::{Result, WireError};
use crate::types::{Capabilities, Dialect, SecurityMode};

wire_enum! {
    /// An IOCTL/FSCTL control code ([MS-SMB2] 2.2.31 CtlCode, [MS-FSCC] 2.3).
    pub struct CtlCode(u32);
    prefix = "FSCTL_";
    DFS_GET_REFERRALS = 0x0006_0194,
    DFS_GET_REFERRALS_EX = 0x0006_01B0,
    IS_PATHNAME_VALID = 0x0009_002C,
    GET_COMPRESSION = 0x0009_003C,
    FILESYSTEM_GET_STATISTICS = 0x0009_0060,
    GET_NTFS_VOLUME_DATA = 0x0009_0064,
    GET_RETRIEVAL_POINTERS = 0x0009_0073,
    IS_VOLUME_DIRTY = 0x0009_0078,
    FIND_FILES_BY_SID = 0x0009_008F,
    SET_OBJECT_ID = 0x0009_0098,
    GET_OBJECT_ID = 0x0009_009C,
    DELETE_OBJECT_ID = 0x0009_00A0,
    SET_REPARSE_POINT = 0x0009_00A4,
    GET_REPARSE_POINT = 0x0009_00A8,
    DELETE_REPARSE_POINT = 0x0009_00AC,
    SET_OBJECT_ID_EXTENDED = 0x0009_00BC,
    CREATE_OR_GET_OBJECT_ID = 0x0009_00C0,
    SET_SPARSE = 0x0009_00C4,
    READ_FILE_USN_DATA = 0x0009_00EB,
    WRITE_USN_CLOSE_RECORD = 0x0009_00EF,
    MARK_HANDLE = 0x0009_00FC,
    QUERY_SPARING_INFO = 0x0009_0138,
    QUERY_ON_DISK_VOLUME_INFO = 0x0009_013C,
    SET_ZERO_ON_DEALLOCATION = 0x0009_0194,
    SET_SHORT_NAME_BEHAVIOR = 0x0009_01B4,
    GET_INTEGRITY_INFORMATION = 0x0009_027C,
    QUERY_FILE_REGIONS = 0x0009_0284,
    QUERY_SHARED_VIRTUAL_DISK_SUPPORT = 0x0009_0300,
    SVHDX_SYNC_TUNNEL_REQUEST = 0x0009_0304,
    STORAGE_QOS_CONTROL = 0x0009_0350,
    QUERY_ALLOCATED_RANGES = 0x0009_40CF,
    OFFLOAD_READ = 0x0009_4264,
    SET_ZERO_DATA = 0x0009_80C8,
    FILE_LEVEL_TRIM = 0x0009_8208,
    OFFLOAD_WRITE = 0x0009_8268,
    DUPLICATE_EXTENTS_TO_FILE = 0x0009_8344,
    DUPLICATE_EXTENTS_TO_FILE_EX = 0x0009_83E8,
    SET_COMPRESSION = 0x0009_C040,
    SET_INTEGRITY_INFORMATION = 0x0009_C280,
    PIPE_PEEK = 0x0011_400C,
    PIPE_WAIT = 0x0011_0018,
    PIPE_TRANSCEIVE = 0x0011_C017,
    SRV_ENUMERATE_SNAPSHOTS = 0x0014_4064,
    SRV_REQUEST_RESUME_KEY = 0x0014_0078,
    LMR_REQUEST_RESILIENCY = 0x0014_01D4,
    QUERY_NETWORK_INTERFACE_INFO = 0x0014_01FC,
    VALIDATE_NEGOTIATE_INFO = 0x0014_0204,
    SRV_COPYCHUNK = 0x0014_40F2,
    SRV_READ_HASH = 0x0014_41BB,
    SRV_COPYCHUNK_WRITE = 0x0014_80F2,
}

/// Dialects accepted in a VALIDATE_NEGOTIATE_INFO request before allocating.
const MAX_VALIDATE_DIALECTS: usize = 64;

/// FSCTL_VALIDATE_NEGOTIATE_INFO input ([MS-SMB2] 2.2.31.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidateNegotiateInfoRequest {
    /// The client's Capabilities from its NEGOTIATE.
    pub capabilities: Capabilities,
    /// The client's ClientGuid.
    pub guid: [u8; 16],
    /// The client's SecurityMode.
    pub security_mode: SecurityMode,
    /// The client's dialect list.
    pub dialects: Vec<Dialect>,
}

impl ValidateNegotiateInfoRequest {
    /// Parses the IOCTL input buffer.
    pub fn parse(input: &[u8]) -> Result<Self> {
        let mut r = Reader::new(input, "VALIDATE_NEGOTIATE_INFO request");
        let capabilities = Capabilities(r.u32()?);
        let guid = r.guid()?;
        let security_mode = SecurityMode(r.u16()?);
        let count = usize::from(r.u16()?);
        let dialects = r
            .u16_vec(count, MAX_VALIDATE_DIALECTS)?
            .into_iter()
            .map(Dialect)
            .collect();
        Ok(ValidateNegotiateInfoRequest {
            capabilities,
            guid,
            security_mode,
            dialects,
        })
    }

    /// Appends the input buffer to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<()> {
        let count = u16::try_from(self.dialects.len()).map_err(|_| WireError::TooLarge {
            what: "dialect count",
            value: self.dialects.len(),
        })?;
        let mut w = Writer::new(out);
        w.u32(self.capabilities.0);
        w.bytes(&self.guid);
        w.u16(self.security_mode.0);
        w.u16(count);
        for d in &self.dialects {
            w.u16(d.0);
        }
        Ok(())
    }
}

/// FSCTL_VALIDATE_NEGOTIATE_INFO output ([MS-SMB2] 2.2.32.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidateNegotiateInfoResponse {
    /// The server's Capabilities as sent in its NEGOTIATE response.
    pub capabilities: Capabilities,
    /// The ServerGuid.
    pub guid: [u8; 16],
    /// The server's SecurityMode.
    pub security_mode: SecurityMode,
    /// The negotiated dialect.
    pub dialect: Dialect,
}

impl ValidateNegotiateInfoResponse {
    /// Wire size.
    pub const SIZE: usize = 24;

    /// Appends the output buffer to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut w = Writer::new(out);
        w.u32(self.capabilities.0);
        w.bytes(&self.guid);
        w.u16(self.security_mode.0);
        w.u16(self.dialect.0);
    }

    /// Parses an output buffer.
    pub fn parse(output: &[u8]) -> Result<Self> {
        let mut r = Reader::new(output, "VALIDATE_NEGOTIATE_INFO response");
        Ok(ValidateNegotiateInfoResponse {
            capabilities: Capabilities(r.u32()?),
            guid: r.guid()?,
            security_mode: SecurityMode(r.u16()?),
            dialect: Dialect(r.u16()?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctl_code_values() {
        assert_eq!(CtlCode::VALIDATE_NEGOTIATE_INFO.0, 0x0014_0204);
        assert_eq!(CtlCode::PIPE_TRANSCEIVE.0, 0x0011_C017);
        assert_eq!(
            CtlCode::VALIDATE_NEGOTIATE_INFO.to_string(),
            "FSCTL_VALIDATE_NEGOTIATE_INFO"
        );
    }

    #[test]
    fn validate_negotiate_round_trip_and_bytes() {
        let req = ValidateNegotiateInfoRequest {
            capabilities: Capabilities::LARGE_MTU,
            guid: [7; 16],
            security_mode: SecurityMode::SIGNING_ENABLED,
            dialects: vec![Dialect::SMB2_0_2, Dialect::SMB3_0_2],
        };
        let mut v = Vec::new();
        req.encode(&mut v).unwrap();
        assert_eq!(v.len(), 4 + 16 + 2 + 2 + 4);
        assert_eq!(&v[22..28], &[2, 0, 0x02, 0x02, 0x02, 0x03]);
        assert_eq!(ValidateNegotiateInfoRequest::parse(&v).unwrap(), req);
        // a count larger than the buffer is a truncation, not a panic
        v[22] = 9;
        assert!(ValidateNegotiateInfoRequest::parse(&v).is_err());

        let resp = ValidateNegotiateInfoResponse {
            capabilities: Capabilities::DFS,
            guid: [1; 16],
            security_mode: SecurityMode::SIGNING_REQUIRED,
            dialect: Dialect::SMB3_0,
        };
        let mut o = Vec::new();
        resp.encode(&mut o);
        assert_eq!(o.len(), ValidateNegotiateInfoResponse::SIZE);
        assert_eq!(ValidateNegotiateInfoResponse::parse(&o).unwrap(), resp);
    }
}
