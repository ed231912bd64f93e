//! Splitting a frame into the PDUs of a compound chain ([MS-SMB2] 3.2.4.1.4, 3.3.5.2.7) and
//! recognising what kind of message a frame holds by its protocol id.

use crate::error::WireError;
use crate::header::Header;

/// `0xFD 'S' 'M' 'B'`: an encrypted message ([MS-SMB2] 2.2.41).
pub const TRANSFORM_PROTOCOL_ID: [u8; 4] = [0xFD, b'S', b'M', b'B'];
/// `0xFC 'S' 'M' 'B'`: a compressed message ([MS-SMB2] 2.2.42).
pub const COMPRESSION_PROTOCOL_ID: [u8; 4] = [0xFC, b'S', b'M', b'B'];
/// `0xFF 'S' 'M' 'B'`: an SMB1 message ([MS-SMB] 2.2.3.1).
pub const SMB1_PROTOCOL_ID: [u8; 4] = [0xFF, b'S', b'M', b'B'];

fn starts_with(frame: &[u8], id: &[u8; 4]) -> bool {
    frame.get(..4) == Some(id.as_slice())
}

/// True for an SMB2 TRANSFORM_HEADER (encrypted) frame.
pub fn is_transform(frame: &[u8]) -> bool {
    starts_with(frame, &TRANSFORM_PROTOCOL_ID)
}

/// True for an SMB2 COMPRESSION_TRANSFORM_HEADER frame.
pub fn is_compression_transform(frame: &[u8]) -> bool {
    starts_with(frame, &COMPRESSION_PROTOCOL_ID)
}

/// True for an SMB1 frame (the multi-protocol NEGOTIATE that Windows and smbclient send first).
pub fn is_smb1(frame: &[u8]) -> bool {
    starts_with(frame, &SMB1_PROTOCOL_ID)
}

/// True for a plain SMB2 frame.
pub fn is_smb2(frame: &[u8]) -> bool {
    starts_with(frame, &crate::header::PROTOCOL_ID)
}

/// Iterates over the PDUs of a (possibly compound) SMB2 frame.
///
/// Each item is one PDU: its header and body, up to its NextCommand or the end of the frame
/// for the last. NextCommand must be 0 or at least 64, a multiple of 8, and leave at least one
/// byte for the next PDU; a bad one yields one `Err` and ends the iteration, so the PDUs before
/// it can still be answered.
pub fn split_compound(frame: &[u8]) -> CompoundIter<'_> {
    CompoundIter {
        frame,
        pos: 0,
        done: frame.is_empty(),
    }
}

/// Iterator returned by [`split_compound`].
#[derive(Debug, Clone)]
pub struct CompoundIter<'a> {
    frame: &'a [u8],
    pos: usize,
    done: bool,
}

impl<'a> CompoundIter<'a> {
    /// Offset in the frame of the PDU the next call will yield.
    pub fn position(&self) -> usize {
        self.pos
    }
}

impl<'a> Iterator for CompoundIter<'a> {
    type Item = Result<&'a [u8], WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let at = self.pos;
        let rest = self.frame.get(at..).unwrap_or(&[]);
        if rest.len() < Header::SIZE {
            self.done = true;
            return Some(Err(WireError::Truncated {
                what: "compound PDU",
                need: Header::SIZE,
                have: rest.len(),
            }));
        }
        let next = rest
            .get(Header::NEXT_COMMAND_RANGE)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
            .unwrap_or(0);
        if next == 0 {
            self.done = true;
            return Some(Ok(rest));
        }
        let n = next as usize;
        if n < Header::SIZE || !n.is_multiple_of(8) || n >= rest.len() {
            self.done = true;
            return Some(Err(WireError::BadNextCommand { at, next }));
        }
        self.pos = at + n;
        rest.get(..n).map(Ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::Header;
    use crate::types::Command;

    fn pdu(cmd: Command, body: usize, next: u32) -> Vec<u8> {
        let h = Header {
            command: cmd,
            next_command: next,
            ..Header::default()
        };
        let mut v = Vec::new();
        h.encode(&mut v);
        v.resize(64 + body, 0xEE);
        v
    }

    #[test]
    fn single_and_chained() {
        let one = pdu(Command::ECHO, 4, 0);
        let items: Vec<_> = split_compound(&one).collect();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].as_ref().unwrap().len(), 68);

        let mut f = pdu(Command::CREATE, 8, 72);
        f.extend(pdu(Command::READ, 16, 80));
        f.extend(pdu(Command::CLOSE, 5, 0));
        let items: Vec<_> = split_compound(&f).map(|r| r.unwrap()).collect();
        assert_eq!(
            items.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [72, 80, 69]
        );
        let cmds: Vec<_> = items
            .iter()
            .map(|p| Header::parse(p).unwrap().command)
            .collect();
        assert_eq!(cmds, [Command::CREATE, Command::READ, Command::CLOSE]);
    }

    #[test]
    fn bad_next_command_ends_iteration_after_an_error() {
        for bad in [8u32, 70, 1000, 72 + 69] {
            let mut f = pdu(Command::CREATE, 8, bad);
            f.extend(pdu(Command::CLOSE, 5, 0));
            let items: Vec<_> = split_compound(&f).collect();
            assert_eq!(items.len(), 1, "next={bad}");
            assert!(matches!(
                items[0],
                Err(WireError::BadNextCommand { at: 0, .. })
            ));
        }
        // the good first PDU survives a bad second one
        let mut f = pdu(Command::CREATE, 8, 72);
        f.extend(pdu(Command::CLOSE, 8, 3));
        let items: Vec<_> = split_compound(&f).collect();
        assert_eq!(items.len(), 2);
        assert!(items[0].is_ok());
        assert!(matches!(
            items[1],
            Err(WireError::BadNextCommand { at: 72, next: 3 })
        ));
    }

    #[test]
    fn short_tail_is_an_error() {
        let mut f = pdu(Command::CREATE, 8, 72);
        f.extend([0xFE, b'S', b'M', b'B']);
        // NextCommand points inside the frame but the rest is not a header
        let items: Vec<_> = split_compound(&f).collect();
        assert_eq!(items.len(), 2);
        assert!(matches!(items[1], Err(WireError::Truncated { .. })));
        assert_eq!(split_compound(&[]).count(), 0);
    }

    #[test]
    fn protocol_ids() {
        assert!(is_transform(b"\xFDSMBxxxx"));
        assert!(is_compression_transform(b"\xFCSMB"));
        assert!(is_smb1(b"\xFFSMBr"));
        assert!(is_smb2(b"\xFESMB"));
        assert!(!is_smb1(b"\xFFSM"));
    }
}
