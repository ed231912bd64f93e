//! The ERROR response ([MS-SMB2] 2.2.2): the body of any response whose status is an error
//! (and of interim STATUS_PENDING responses).

use crate::codec::{Writer, slice_at, to_u32};
use crate::error::Result;

use super::{BODY, body_any, header_base};

/// SMB2 ERROR response body ([MS-SMB2] 2.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ErrorResponse<'a> {
    /// ErrorContextCount (3.1.1 error contexts, [MS-SMB2] 2.2.2.1); 0 otherwise.
    pub error_context_count: u8,
    /// ErrorData: error contexts (3.1.1) or one structure such as the symbolic link error
    /// response ([MS-SMB2] 2.2.2.2). Empty for most errors.
    pub error_data: &'a [u8],
}

impl<'a> ErrorResponse<'a> {
    /// StructureSize of the error body.
    pub const STRUCTURE_SIZE: u16 = 9;
    /// The common empty error body.
    pub const EMPTY: ErrorResponse<'static> = ErrorResponse {
        error_context_count: 0,
        error_data: &[],
    };

    /// Appends the body. With no ErrorData, ByteCount is 0 but one zero byte still follows:
    /// StructureSize 9 counts it, and clients check the body is at least 9 bytes.
    pub fn encode(&self, pdu: &mut Vec<u8>) -> Result<()> {
        header_base(pdu)?;
        let mut w = Writer::new(pdu);
        w.u16(Self::STRUCTURE_SIZE);
        w.u8(self.error_context_count);
        w.u8(0);
        w.u32(to_u32(self.error_data.len(), "ByteCount")?);
        if self.error_data.is_empty() {
            w.u8(0);
        } else {
            w.bytes(self.error_data);
        }
        Ok(())
    }

    /// Parses an error body from a response PDU of any command.
    pub fn parse(pdu: &'a [u8]) -> Result<Self> {
        let command = crate::header::Header::parse(pdu)?.command;
        let (size, mut r) = body_any(pdu, command, "ERROR response")?;
        if size != Self::STRUCTURE_SIZE {
            return Err(crate::error::WireError::BadStructureSize {
                command,
                expected: Self::STRUCTURE_SIZE,
                got: size,
            });
        }
        let error_context_count = r.u8()?;
        r.u8()?;
        let len = r.u32()? as usize;
        let error_data = slice_at(pdu, BODY + 8, len, BODY + 8, "ErrorData")?;
        Ok(ErrorResponse {
            error_context_count,
            error_data,
        })
    }

    /// Appends an empty error body (the usual case).
    pub fn encode_empty(pdu: &mut Vec<u8>) -> Result<()> {
        ErrorResponse::EMPTY.encode(pdu)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::test_pdu;
    use crate::types::Command;

    #[test]
    fn empty_error_has_one_pad_byte() {
        let pdu = test_pdu(Command::CREATE, true, ErrorResponse::encode_empty);
        assert_eq!(&pdu[64..], &[9, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(ErrorResponse::parse(&pdu).unwrap(), ErrorResponse::EMPTY);
    }

    #[test]
    fn error_data_round_trip() {
        let e = ErrorResponse {
            error_context_count: 1,
            error_data: &[1, 2, 3, 4, 5, 6, 7, 8],
        };
        let pdu = test_pdu(Command::TREE_CONNECT, true, |v| e.encode(v));
        assert_eq!(pdu.len(), 64 + 8 + 8);
        assert_eq!(ErrorResponse::parse(&pdu).unwrap(), e);
        assert!(ErrorResponse::parse(&pdu[..75]).is_err());
    }
}
