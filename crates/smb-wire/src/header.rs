//! The 64-byte SMB2 packet header ([MS-SMB2] 2.2.1), sync and async forms.

use core::ops::Range;

use crate::codec::Reader;
use crate::error::{Result, WireError};
use crate::types::{AsyncId, Command, HeaderFlags, NtStatus, SessionId, TreeId};

/// `0xFE 'S' 'M' 'B'`.
pub const PROTOCOL_ID: [u8; 4] = [0xFE, b'S', b'M', b'B'];

/// The header field that differs between the sync and async forms ([MS-SMB2] 2.2.1.1/2.2.1.2),
/// selected by [`HeaderFlags::ASYNC_COMMAND`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HeaderId {
    /// Sync header: Reserved (a process id, echoed by servers) and TreeId.
    Sync {
        /// The client's process id (the spec's Reserved field); servers echo it.
        process_id: u32,
        /// The tree connect the request is for.
        tree_id: TreeId,
    },
    /// Async header: the AsyncId of a pending operation.
    Async(AsyncId),
}

impl Default for HeaderId {
    fn default() -> Self {
        HeaderId::Sync {
            process_id: 0,
            tree_id: TreeId(0),
        }
    }
}

/// An SMB2 packet header ([MS-SMB2] 2.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Header {
    /// CreditCharge: credits this request consumes (multi-credit READ/WRITE/IOCTL...).
    pub credit_charge: u16,
    /// Status in responses. In requests (3.x) this carries ChannelSequence in the low 16 bits
    /// and Reserved in the high 16 bits; see [`Header::channel_sequence`].
    pub status: NtStatus,
    /// The command.
    pub command: Command,
    /// CreditRequest in requests, CreditResponse (granted) in responses.
    pub credit: u16,
    /// Flags.
    pub flags: HeaderFlags,
    /// Offset from this header to the next PDU of a compound, or 0.
    pub next_command: u32,
    /// MessageId.
    pub message_id: u64,
    /// Sync (process id + tree id) or async (async id), according to `flags`.
    pub id: HeaderId,
    /// SessionId.
    pub session_id: SessionId,
    /// Signature (zero when unsigned).
    pub signature: [u8; 16],
}

impl Header {
    /// Size of the header on the wire; also its StructureSize.
    pub const SIZE: usize = 64;
    /// Where the signature lives in the header.
    pub const SIGNATURE_RANGE: Range<usize> = 48..64;
    /// Where the Flags field lives (signers set SIGNED before computing).
    pub const FLAGS_RANGE: Range<usize> = 16..20;
    /// Where the NextCommand field lives (compound builders patch it).
    pub const NEXT_COMMAND_RANGE: Range<usize> = 20..24;
    /// Where the Status field lives.
    pub const STATUS_RANGE: Range<usize> = 8..12;

    /// Parses the header at the start of `pdu` (which may be longer than 64 bytes).
    pub fn parse(pdu: &[u8]) -> Result<Header> {
        let mut r = Reader::new(pdu, "SMB2 header");
        let proto: [u8; 4] = r.array()?;
        if proto != PROTOCOL_ID {
            return Err(WireError::BadProtocolId(proto));
        }
        if pdu.len() < Self::SIZE {
            return Err(WireError::Truncated {
                what: "SMB2 header",
                need: Self::SIZE,
                have: pdu.len(),
            });
        }
        let structure_size = r.u16()?;
        let credit_charge = r.u16()?;
        let status = NtStatus(r.u32()?);
        let command = Command(r.u16()?);
        if structure_size != 64 {
            return Err(WireError::BadStructureSize {
                command,
                expected: 64,
                got: structure_size,
            });
        }
        let credit = r.u16()?;
        let flags = HeaderFlags(r.u32()?);
        let next_command = r.u32()?;
        let message_id = r.u64()?;
        let id = if flags.contains(HeaderFlags::ASYNC_COMMAND) {
            HeaderId::Async(AsyncId(r.u64()?))
        } else {
            HeaderId::Sync {
                process_id: r.u32()?,
                tree_id: TreeId(r.u32()?),
            }
        };
        let session_id = SessionId(r.u64()?);
        let signature = r.array()?;
        Ok(Header {
            credit_charge,
            status,
            command,
            credit,
            flags,
            next_command,
            message_id,
            id,
            session_id,
            signature,
        })
    }

    /// Appends the 64 header bytes to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.resize(start + Self::SIZE, 0);
        if let Some(slot) = out.get_mut(start..) {
            self.write(slot);
        }
    }

    /// Writes the header into the first 64 bytes of `out`. A shorter slice is left untouched
    /// (callers size it; this never panics).
    pub fn write(&self, out: &mut [u8]) {
        let Some(out) = out.get_mut(..Self::SIZE) else {
            debug_assert!(false, "Header::write needs 64 bytes");
            return;
        };
        // The async form is chosen by the id, and the flag made to agree, so a header built
        // with HeaderId::Async is never sent with a sync flag.
        let mut flags = self.flags;
        match self.id {
            HeaderId::Async(_) => flags.insert(HeaderFlags::ASYNC_COMMAND),
            HeaderId::Sync { .. } => flags.remove(HeaderFlags::ASYNC_COMMAND),
        }
        out[0..4].copy_from_slice(&PROTOCOL_ID);
        out[4..6].copy_from_slice(&64u16.to_le_bytes());
        out[6..8].copy_from_slice(&self.credit_charge.to_le_bytes());
        out[8..12].copy_from_slice(&self.status.0.to_le_bytes());
        out[12..14].copy_from_slice(&self.command.0.to_le_bytes());
        out[14..16].copy_from_slice(&self.credit.to_le_bytes());
        out[16..20].copy_from_slice(&flags.0.to_le_bytes());
        out[20..24].copy_from_slice(&self.next_command.to_le_bytes());
        out[24..32].copy_from_slice(&self.message_id.to_le_bytes());
        match self.id {
            HeaderId::Async(a) => out[32..40].copy_from_slice(&a.0.to_le_bytes()),
            HeaderId::Sync {
                process_id,
                tree_id,
            } => {
                out[32..36].copy_from_slice(&process_id.to_le_bytes());
                out[36..40].copy_from_slice(&tree_id.0.to_le_bytes());
            }
        }
        out[40..48].copy_from_slice(&self.session_id.0.to_le_bytes());
        out[48..64].copy_from_slice(&self.signature);
    }

    /// True when SERVER_TO_REDIR is set.
    pub fn is_response(&self) -> bool {
        self.flags.contains(HeaderFlags::SERVER_TO_REDIR)
    }

    /// True for the async form.
    pub fn is_async(&self) -> bool {
        matches!(self.id, HeaderId::Async(_))
    }

    /// True when RELATED_OPERATIONS is set (a related compound member).
    pub fn is_related(&self) -> bool {
        self.flags.contains(HeaderFlags::RELATED_OPERATIONS)
    }

    /// True when SIGNED is set.
    pub fn is_signed(&self) -> bool {
        self.flags.contains(HeaderFlags::SIGNED)
    }

    /// The TreeId of a sync header.
    pub fn tree_id(&self) -> Option<TreeId> {
        match self.id {
            HeaderId::Sync { tree_id, .. } => Some(tree_id),
            HeaderId::Async(_) => None,
        }
    }

    /// The AsyncId of an async header.
    pub fn async_id(&self) -> Option<AsyncId> {
        match self.id {
            HeaderId::Async(a) => Some(a),
            HeaderId::Sync { .. } => None,
        }
    }

    /// ChannelSequence of a 3.x request (the low 16 bits of Status, [MS-SMB2] 2.2.1.2).
    pub fn channel_sequence(&self) -> u16 {
        (self.status.0 & 0xFFFF) as u16
    }

    /// The 3.1.1 priority value (Flags bits 4..6).
    pub fn priority(&self) -> u8 {
        ((self.flags.0 & HeaderFlags::PRIORITY_MASK.0) >> 4) as u8
    }

    /// A response header for this request: same command, message id, session and ids, with
    /// SERVER_TO_REDIR set, the status given, no signature, credits to be filled in.
    pub fn response(&self, status: NtStatus) -> Header {
        let keep = HeaderFlags::RELATED_OPERATIONS
            | HeaderFlags::PRIORITY_MASK
            | HeaderFlags::ASYNC_COMMAND;
        Header {
            credit_charge: self.credit_charge,
            status,
            command: self.command,
            credit: 0,
            flags: (self.flags & keep) | HeaderFlags::SERVER_TO_REDIR,
            next_command: 0,
            message_id: self.message_id,
            id: self.id,
            session_id: self.session_id,
            signature: [0; 16],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Header {
        Header {
            credit_charge: 1,
            status: NtStatus::SUCCESS,
            command: Command::CREATE,
            credit: 31,
            flags: HeaderFlags::SIGNED,
            next_command: 0,
            message_id: 0x0102030405060708,
            id: HeaderId::Sync {
                process_id: 0xFEFF,
                tree_id: TreeId(0x55),
            },
            session_id: SessionId(0x1122334455667788),
            signature: [0xAB; 16],
        }
    }

    #[test]
    fn encodes_known_bytes() {
        let mut v = Vec::new();
        sample().encode(&mut v);
        assert_eq!(v.len(), 64);
        assert_eq!(&v[0..4], b"\xFESMB");
        assert_eq!(&v[4..6], &[64, 0]);
        assert_eq!(&v[12..14], &[5, 0]);
        assert_eq!(&v[14..16], &[31, 0]);
        assert_eq!(&v[16..20], &[8, 0, 0, 0]);
        assert_eq!(&v[24..32], &[8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(&v[32..36], &[0xFF, 0xFE, 0, 0]);
        assert_eq!(&v[36..40], &[0x55, 0, 0, 0]);
        assert_eq!(&v[Header::SIGNATURE_RANGE], &[0xAB; 16]);
        assert_eq!(Header::parse(&v).unwrap(), sample());
    }

    #[test]
    fn async_form_round_trips_and_sets_flag() {
        let mut h = sample();
        h.id = HeaderId::Async(AsyncId(99));
        let mut v = Vec::new();
        h.encode(&mut v);
        let p = Header::parse(&v).unwrap();
        assert_eq!(p.id, HeaderId::Async(AsyncId(99)));
        assert!(p.flags.contains(HeaderFlags::ASYNC_COMMAND));
        assert_eq!(p.async_id(), Some(AsyncId(99)));
        assert_eq!(p.tree_id(), None);
    }

    #[test]
    fn rejects_bad_input() {
        let mut v = Vec::new();
        sample().encode(&mut v);
        assert!(matches!(
            Header::parse(&v[..63]),
            Err(WireError::Truncated { .. })
        ));
        let mut bad = v.clone();
        bad[0] = 0xFD;
        assert!(matches!(
            Header::parse(&bad),
            Err(WireError::BadProtocolId(_))
        ));
        let mut bad = v.clone();
        bad[4] = 65;
        assert!(matches!(
            Header::parse(&bad),
            Err(WireError::BadStructureSize {
                expected: 64,
                got: 65,
                ..
            })
        ));
        assert!(Header::parse(&[]).is_err());
    }

    #[test]
    fn response_header_from_request() {
        let r = sample().response(NtStatus::ACCESS_DENIED);
        assert!(r.is_response());
        assert!(!r.is_signed());
        assert_eq!(r.message_id, sample().message_id);
        assert_eq!(r.status, NtStatus::ACCESS_DENIED);
    }
}
