//! Just enough SMB1 to read the multi-protocol SMB_COM_NEGOTIATE ([MS-SMB] 2.2.4.5.1,
//! [MS-CIFS] 2.2.4.52.1) that Windows and smbclient send first. The engine answers it with an
//! SMB2 NEGOTIATE response ([MS-SMB2] 3.3.5.3.1); nothing else of SMB1 is supported.

use crate::codec::Reader;
use crate::compound::SMB1_PROTOCOL_ID;
use crate::error::{Result, WireError};

/// SMB_COM_NEGOTIATE.
pub const COM_NEGOTIATE: u8 = 0x72;
/// Size of the SMB1 header.
pub const HEADER_SIZE: usize = 32;
/// Dialect strings accepted before giving up (real clients send about a dozen).
const MAX_DIALECTS: usize = 64;

/// The dialect string that means "SMB 2.0.2" ([MS-SMB2] 3.3.5.3.1).
pub const DIALECT_SMB2_002: &[u8] = b"SMB 2.002";
/// The dialect string that means "SMB 2.1 or later" ([MS-SMB2] 3.3.5.3.1).
pub const DIALECT_SMB2_WILDCARD: &[u8] = b"SMB 2.???";

/// A parsed SMB1 NEGOTIATE request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Smb1NegotiateRequest<'a> {
    /// Flags2 of the SMB1 header (unicode, extended security...).
    pub flags2: u16,
    /// MID of the SMB1 header.
    pub mid: u16,
    /// The dialect strings, without the 0x02 buffer-format byte or the NUL.
    pub dialects: Vec<&'a [u8]>,
}

impl<'a> Smb1NegotiateRequest<'a> {
    /// Parses an SMB1 NEGOTIATE frame (starting at `0xFF 'SMB'`).
    pub fn parse(frame: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(frame, "SMB1 NEGOTIATE");
        let proto: [u8; 4] = r.array()?;
        if proto != SMB1_PROTOCOL_ID {
            return Err(WireError::BadProtocolId(proto));
        }
        let command = r.u8()?;
        if command != COM_NEGOTIATE {
            return Err(WireError::BadValue {
                what: "SMB1 command",
                value: u64::from(command),
            });
        }
        r.skip(4 + 1)?; // Status, Flags
        let flags2 = r.u16()?;
        r.skip(2 + 8 + 2 + 2 + 2 + 2)?; // PIDHigh, SecurityFeatures, Reserved, TID, PIDLow, UID
        let mid = r.u16()?;
        let word_count = usize::from(r.u8()?);
        r.skip(word_count * 2)?;
        let byte_count = usize::from(r.u16()?);
        // Some clients pad the frame after the dialects, so the byte count bounds the list; a
        // byte count that claims more than the frame holds is malformed.
        let mut bytes = r.sub(byte_count, "SMB1 NEGOTIATE dialects")?;
        let mut dialects = Vec::new();
        while !bytes.is_empty() {
            let format = bytes.u8()?;
            if format != 0x02 {
                return Err(WireError::BadValue {
                    what: "SMB1 dialect buffer format",
                    value: u64::from(format),
                });
            }
            let rest = bytes.rest();
            let Some(nul) = rest.iter().position(|&b| b == 0) else {
                return Err(WireError::Truncated {
                    what: "SMB1 dialect string",
                    need: bytes.pos() + rest.len() + 1,
                    have: bytes.pos() + rest.len(),
                });
            };
            if dialects.len() == MAX_DIALECTS {
                return Err(WireError::TooMany {
                    what: "SMB1 dialects",
                    count: MAX_DIALECTS + 1,
                    max: MAX_DIALECTS,
                });
            }
            dialects.push(bytes.bytes(nul)?);
            bytes.skip(1)?;
        }
        Ok(Smb1NegotiateRequest {
            flags2,
            mid,
            dialects,
        })
    }

    /// True if the client offers "SMB 2.002".
    pub fn offers_smb2_002(&self) -> bool {
        self.dialects.contains(&DIALECT_SMB2_002)
    }

    /// True if the client offers "SMB 2.???" (2.1 or later).
    pub fn offers_smb2_wildcard(&self) -> bool {
        self.dialects.contains(&DIALECT_SMB2_WILDCARD)
    }
}

/// The dialect strings of an SMB1 NEGOTIATE frame.
pub fn parse_negotiate(frame: &[u8]) -> Result<Vec<&[u8]>> {
    Smb1NegotiateRequest::parse(frame).map(|n| n.dialects)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn negotiate(dialects: &[&[u8]]) -> Vec<u8> {
        let mut v = vec![0xFF, b'S', b'M', b'B', COM_NEGOTIATE];
        v.extend([0; 4]); // status
        v.push(0x18); // flags
        v.extend(0xC853u16.to_le_bytes()); // flags2
        v.extend([0; 2 + 8 + 2 + 2 + 2 + 2]);
        v.extend(7u16.to_le_bytes()); // mid
        v.push(0); // word count
        let mut bytes = Vec::new();
        for d in dialects {
            bytes.push(2);
            bytes.extend_from_slice(d);
            bytes.push(0);
        }
        v.extend((bytes.len() as u16).to_le_bytes());
        v.extend(bytes);
        v
    }

    #[test]
    fn parses_windows_style_list() {
        let f = negotiate(&[b"NT LM 0.12", b"SMB 2.002", b"SMB 2.???"]);
        let n = Smb1NegotiateRequest::parse(&f).unwrap();
        assert_eq!(
            n.dialects,
            [b"NT LM 0.12".as_slice(), b"SMB 2.002", b"SMB 2.???"]
        );
        assert_eq!(n.mid, 7);
        assert_eq!(n.flags2, 0xC853);
        assert!(n.offers_smb2_002() && n.offers_smb2_wildcard());
        assert_eq!(parse_negotiate(&f).unwrap().len(), 3);
    }

    #[test]
    fn rejects_garbage() {
        let f = negotiate(&[b"NT LM 0.12"]);
        let mut bad = f.clone();
        bad[4] = 0x73;
        assert!(Smb1NegotiateRequest::parse(&bad).is_err());
        // missing NUL terminator
        let mut bad = f.clone();
        bad.pop();
        let len = bad.len();
        bad[33] = (len - 35) as u8;
        assert!(Smb1NegotiateRequest::parse(&bad).is_err());
        let mut bad = f.clone();
        bad[35] = 0x03;
        assert!(Smb1NegotiateRequest::parse(&bad).is_err());
        assert!(Smb1NegotiateRequest::parse(&f[..20]).is_err());
    }
}
