//! CANCEL ([MS-SMB2] 2.2.30): a body of StructureSize 4 and two reserved bytes.

use crate::error::Result;
use crate::types::Command;

/// CANCEL request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CancelRequest;

impl CancelRequest {
    /// Parses the request PDU (header + body).
    pub fn parse(pdu: &[u8]) -> Result<Self> {
        super::parse_empty4(pdu, Command::CANCEL, "CANCEL request")?;
        Ok(CancelRequest)
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
        let pdu = test_pdu(Command::CANCEL, false, |v| CancelRequest.encode(v));
        assert_eq!(&pdu[64..], &[4, 0, 0, 0]);
        assert_eq!(CancelRequest::parse(&pdu), Ok(CancelRequest));
        let mut bad = pdu.clone();
        bad[64] = 5;
        assert!(matches!(
            CancelRequest::parse(&bad),
            Err(WireError::BadStructureSize { got: 5, .. })
        ));
        assert!(CancelRequest::parse(&pdu[..66]).is_err());
        let other = test_pdu(Command(0x33), false, |v| CancelRequest.encode(v));
        assert!(matches!(
            CancelRequest::parse(&other),
            Err(WireError::WrongCommand { .. })
        ));
    }
}
