//! ECHO ([MS-SMB2] 2.2.28, 2.2.29): a body of StructureSize 4 and two reserved bytes.

use crate::error::Result;
use crate::types::Command;

/// ECHO request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EchoRequest;

impl EchoRequest {
    /// Parses the request PDU (header + body).
    pub fn parse(pdu: &[u8]) -> Result<Self> {
        super::parse_empty4(pdu, Command::ECHO, "ECHO request")?;
        Ok(EchoRequest)
    }

    /// Appends the body.
    pub fn encode(&self, pdu: &mut Vec<u8>) -> Result<()> {
        super::encode_empty4(pdu)
    }
}

/// ECHO response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EchoResponse;

impl EchoResponse {
    /// Parses the response PDU (header + body).
    pub fn parse(pdu: &[u8]) -> Result<Self> {
        super::parse_empty4(pdu, Command::ECHO, "ECHO response")?;
        Ok(EchoResponse)
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
        let pdu = test_pdu(Command::ECHO, false, |v| EchoRequest.encode(v));
        assert_eq!(&pdu[64..], &[4, 0, 0, 0]);
        assert_eq!(EchoRequest::parse(&pdu), Ok(EchoRequest));
        let mut bad = pdu.clone();
        bad[64] = 5;
        assert!(matches!(
            EchoRequest::parse(&bad),
            Err(WireError::BadStructureSize { got: 5, .. })
        ));
        assert!(EchoRequest::parse(&pdu[..66]).is_err());
        let other = test_pdu(Command(0x33), false, |v| EchoRequest.encode(v));
        assert!(matches!(
            EchoRequest::parse(&other),
            Err(WireError::WrongCommand { .. })
        ));
        let pdu = test_pdu(Command::ECHO, true, |v| EchoResponse.encode(v));
        assert_eq!(EchoResponse::parse(&pdu), Ok(EchoResponse));
    }
}
