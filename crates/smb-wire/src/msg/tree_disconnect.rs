//! TREE_DISCONNECT ([MS-SMB2] 2.2.11, 2.2.12): a body of StructureSize 4 and two reserved bytes.

use crate::error::Result;
use crate::types::Command;

/// TREE_DISCONNECT request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TreeDisconnectRequest;

impl TreeDisconnectRequest {
    /// Parses the request PDU (header + body).
    pub fn parse(pdu: &[u8]) -> Result<Self> {
        super::parse_empty4(pdu, Command::TREE_DISCONNECT, "TREE_DISCONNECT request")?;
        Ok(TreeDisconnectRequest)
    }

    /// Appends the body.
    pub fn encode(&self, pdu: &mut Vec<u8>) -> Result<()> {
        super::encode_empty4(pdu)
    }
}

/// TREE_DISCONNECT response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TreeDisconnectResponse;

impl TreeDisconnectResponse {
    /// Parses the response PDU (header + body).
    pub fn parse(pdu: &[u8]) -> Result<Self> {
        super::parse_empty4(pdu, Command::TREE_DISCONNECT, "TREE_DISCONNECT response")?;
        Ok(TreeDisconnectResponse)
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
        let pdu = test_pdu(Command::TREE_DISCONNECT, false, |v| {
            TreeDisconnectRequest.encode(v)
        });
        assert_eq!(&pdu[64..], &[4, 0, 0, 0]);
        assert_eq!(
            TreeDisconnectRequest::parse(&pdu),
            Ok(TreeDisconnectRequest)
        );
        let mut bad = pdu.clone();
        bad[64] = 5;
        assert!(matches!(
            TreeDisconnectRequest::parse(&bad),
            Err(WireError::BadStructureSize { got: 5, .. })
        ));
        assert!(TreeDisconnectRequest::parse(&pdu[..66]).is_err());
        let other = test_pdu(Command(0x33), false, |v| TreeDisconnectRequest.encode(v));
        assert!(matches!(
            TreeDisconnectRequest::parse(&other),
            Err(WireError::WrongCommand { .. })
        ));
        let pdu = test_pdu(Command::TREE_DISCONNECT, true, |v| {
            TreeDisconnectResponse.encode(v)
        });
        assert_eq!(
            TreeDisconnectResponse::parse(&pdu),
            Ok(TreeDisconnectResponse)
        );
    }
}
