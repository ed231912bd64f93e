//! OPLOCK_BREAK: oplock and lease break notifications (server to client, [MS-SMB2] 2.2.23),
//! acknowledgments (client to server, 2.2.24) and responses (2.2.25). They share the command
//! and are told apart by StructureSize: 24 oplock, 36 lease ack/response, 44 lease
//! notification.

use crate::codec::Writer;
use crate::error::{Result, WireError};
use crate::types::{AccessMask, Command, FileId, OplockLevel, ShareAccess};

use super::create_context::{LeaseFlags, LeaseState};
use super::{body_any, header_base};

/// Oplock break notification, acknowledgment or response: they have the same layout
/// ([MS-SMB2] 2.2.23.1, 2.2.24.1, 2.2.25.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OplockBreak {
    /// OplockLevel (new level in a notification, accepted level in an ack).
    pub oplock_level: OplockLevel,
    /// The open.
    pub file_id: FileId,
}

impl OplockBreak {
    /// StructureSize.
    pub const STRUCTURE_SIZE: u16 = 24;
}

/// Lease break notification ([MS-SMB2] 2.2.23.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LeaseBreakNotification {
    /// NewEpoch (v2 leases).
    pub new_epoch: u16,
    /// Flags (SMB2_NOTIFY_BREAK_LEASE_FLAG_ACK_REQUIRED 1).
    pub flags: u32,
    /// LeaseKey.
    pub lease_key: [u8; 16],
    /// CurrentLeaseState.
    pub current_lease_state: LeaseState,
    /// NewLeaseState.
    pub new_lease_state: LeaseState,
    /// BreakReason (reserved, 0).
    pub break_reason: u32,
    /// AccessMaskHint (reserved, 0).
    pub access_mask_hint: AccessMask,
    /// ShareMaskHint (reserved, 0).
    pub share_mask_hint: ShareAccess,
}

impl LeaseBreakNotification {
    /// StructureSize.
    pub const STRUCTURE_SIZE: u16 = 44;
    /// SMB2_NOTIFY_BREAK_LEASE_FLAG_ACK_REQUIRED.
    pub const FLAG_ACK_REQUIRED: u32 = 0x01;
}

/// Lease break acknowledgment or response ([MS-SMB2] 2.2.24.2, 2.2.25.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LeaseBreakAck {
    /// Flags (reserved, 0).
    pub flags: LeaseFlags,
    /// LeaseKey.
    pub lease_key: [u8; 16],
    /// LeaseState.
    pub lease_state: LeaseState,
    /// LeaseDuration (reserved, 0).
    pub lease_duration: u64,
}

impl LeaseBreakAck {
    /// StructureSize.
    pub const STRUCTURE_SIZE: u16 = 36;
}

/// Any OPLOCK_BREAK body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OplockBreakMessage {
    /// StructureSize 24: oplock notification, ack or response.
    Oplock(OplockBreak),
    /// StructureSize 36: lease ack or response.
    LeaseAck(LeaseBreakAck),
    /// StructureSize 44: lease break notification.
    LeaseNotification(LeaseBreakNotification),
}

/// What a client sends: an oplock ack (24) or a lease ack (36).
pub type OplockBreakRequest = OplockBreakMessage;
/// What a server sends: a notification (24/44) or a response to an ack (24/36).
pub type OplockBreakResponse = OplockBreakMessage;

impl OplockBreakMessage {
    /// Parses a PDU of either direction.
    pub fn parse(pdu: &[u8]) -> Result<Self> {
        let (size, mut r) = body_any(pdu, Command::OPLOCK_BREAK, "OPLOCK_BREAK")?;
        match size {
            OplockBreak::STRUCTURE_SIZE => {
                let oplock_level = OplockLevel(r.u8()?);
                r.skip(1 + 4)?; // Reserved, Reserved2
                Ok(OplockBreakMessage::Oplock(OplockBreak {
                    oplock_level,
                    file_id: FileId::read(&mut r)?,
                }))
            }
            LeaseBreakAck::STRUCTURE_SIZE => {
                r.u16()?; // Reserved
                let flags = LeaseFlags(r.u32()?);
                let lease_key = r.guid()?;
                let lease_state = LeaseState(r.u32()?);
                let lease_duration = r.u64()?;
                Ok(OplockBreakMessage::LeaseAck(LeaseBreakAck {
                    flags,
                    lease_key,
                    lease_state,
                    lease_duration,
                }))
            }
            LeaseBreakNotification::STRUCTURE_SIZE => {
                let new_epoch = r.u16()?;
                let flags = r.u32()?;
                let lease_key = r.guid()?;
                Ok(OplockBreakMessage::LeaseNotification(
                    LeaseBreakNotification {
                        new_epoch,
                        flags,
                        lease_key,
                        current_lease_state: LeaseState(r.u32()?),
                        new_lease_state: LeaseState(r.u32()?),
                        break_reason: r.u32()?,
                        access_mask_hint: AccessMask(r.u32()?),
                        share_mask_hint: ShareAccess(r.u32()?),
                    },
                ))
            }
            got => Err(WireError::BadStructureSize {
                command: Command::OPLOCK_BREAK,
                expected: 24,
                got,
            }),
        }
    }

    /// Appends the body.
    pub fn encode(&self, pdu: &mut Vec<u8>) -> Result<()> {
        header_base(pdu)?;
        let mut w = Writer::new(pdu);
        match self {
            OplockBreakMessage::Oplock(o) => {
                w.u16(OplockBreak::STRUCTURE_SIZE);
                w.u8(o.oplock_level.0);
                w.u8(0);
                w.u32(0);
                o.file_id.write(&mut w);
            }
            OplockBreakMessage::LeaseAck(a) => {
                w.u16(LeaseBreakAck::STRUCTURE_SIZE);
                w.u16(0);
                w.u32(a.flags.0);
                w.bytes(&a.lease_key);
                w.u32(a.lease_state.0);
                w.u64(a.lease_duration);
            }
            OplockBreakMessage::LeaseNotification(n) => {
                w.u16(LeaseBreakNotification::STRUCTURE_SIZE);
                w.u16(n.new_epoch);
                w.u32(n.flags);
                w.bytes(&n.lease_key);
                w.u32(n.current_lease_state.0);
                w.u32(n.new_lease_state.0);
                w.u32(n.break_reason);
                w.u32(n.access_mask_hint.0);
                w.u32(n.share_mask_hint.0);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::test_pdu;

    #[test]
    fn all_three_forms_round_trip() {
        let msgs = [
            OplockBreakMessage::Oplock(OplockBreak {
                oplock_level: OplockLevel::II,
                file_id: FileId::new(1, 2),
            }),
            OplockBreakMessage::LeaseAck(LeaseBreakAck {
                lease_key: [4; 16],
                lease_state: LeaseState::READ_CACHING,
                ..Default::default()
            }),
            OplockBreakMessage::LeaseNotification(LeaseBreakNotification {
                new_epoch: 2,
                flags: LeaseBreakNotification::FLAG_ACK_REQUIRED,
                lease_key: [5; 16],
                current_lease_state: LeaseState::READ_CACHING | LeaseState::WRITE_CACHING,
                new_lease_state: LeaseState::READ_CACHING,
                ..Default::default()
            }),
        ];
        for (m, size) in msgs.iter().zip([24usize, 36, 44]) {
            let pdu = test_pdu(Command::OPLOCK_BREAK, true, |v| m.encode(v));
            assert_eq!(pdu.len(), 64 + size);
            assert_eq!(OplockBreakMessage::parse(&pdu).unwrap(), *m);
        }
        let mut bad = test_pdu(Command::OPLOCK_BREAK, true, |v| msgs[0].encode(v));
        bad[64] = 30;
        assert!(OplockBreakMessage::parse(&bad).is_err());
    }
}
