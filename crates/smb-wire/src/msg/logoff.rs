//! LOGOFF ([MS-SMB2] 2.2.7, 2.2.8): a body of StructureSize 4 and two reserved bytes.

use crate::error::Result;
use crate::types::Command;

/// LOGOFF request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogoffRequest;

impl LogoffRequest {
    /// Parses the request PDU (header + body).
    pub fn parse(pdu: &[u8]) -> Result<Self> {
        super::parse_empty4(pdu, Command::LOGOFF, "LOGOFF request")?;
        Ok(LogoffRequest)
    }

    /// Appends the body.
    pub fn encode(&self, pdu: &mut Vec<u8>) -> Result<()> {
        super::encode_empty4(pdu)
    }
}

/// LOGOFF response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogoffResponse;

impl LogoffResponse {
    /// Parses the response PDU (header + body).
    pub fn parse(pdu: &[u8]) -> Result<Self> {
        super::parse_empty4(pdu, Command::LOGOFF, "LOGOFF response")?;
        Ok(LogoffResponse)
    }

    /// Appends the body.
    pub fn encode(&self, pdu: &mut Vec<u8>) -> Result<()> {
        super::encode_empty4(pdu)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::WireError;
    use crate::msg::test_pdu;

    #[test]
    fn round_trip_and_checks() {
        let pdu = test_pdu(Command::LOGOFF, false, |v| LogoffRequest.encode(v));
        assert_eq!(&pdu[64..], &[4, 0, 0, 0]);
        assert_eq!(LogoffRequest::parse(&pdu), Ok(LogoffRequest));
        let mut bad = pdu.clone();
        bad[64] = 5;
        assert!(matches!(
            LogoffRequest::parse(&bad),
            Err(WireError::BadStructureSize { got: 5, .. })
        ));
        assert!(LogoffRequest::parse(&pdu[..66]).is_err());
        let other = test_pdu(Command(0x33), false, |v| LogoffRequest.encode(v));
        assert!(matches!(
            LogoffRequest::parse(&other),
            Err(WireError::WrongCommand { .. })
        ));
        let pdu = test_pdu(Command::LOGOFF, true, |v| LogoffResponse.encode(v));
        assert_eq!(LogoffResponse::parse(&pdu), Ok(LogoffResponse));
    }
}
