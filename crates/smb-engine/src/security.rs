//! A security descriptor synthesized from POSIX ownership and mode bits, for QUERY_INFO with
//! InfoType SECURITY ([MS-SMB2] 3.3.5.20.3; layout [MS-DTYP] 2.4.6 self-relative
//! SECURITY_DESCRIPTOR, 2.4.2.2 SID, 2.4.5 ACL, 2.4.4.2 ACCESS_ALLOWED_ACE).
//!
//! lanshare stores no NT ACLs. Owner and group are the Unix ids in the `S-1-22-1-<uid>` /
//! `S-1-22-2-<gid>` form Samba uses, so a Windows client sees the same identities from both
//! servers; the DACL has one allow entry each for the owner, the group and Everyone, from
//! the user, group and other bits. It describes what the kernel enforces for local users;
//! SMB access is decided by the share's settings and the session's user.

use smb_wire::fscc::security::AceFlags;
use smb_wire::fscc::{Ace, Acl, SecurityDescriptor, Sid};
use smb_wire::{AccessMask, NtStatus};

/// SECURITY_INFORMATION bits ([MS-DTYP] 2.4.7).
pub(crate) const OWNER: u32 = 0x1;
pub(crate) const GROUP: u32 = 0x2;
pub(crate) const DACL: u32 = 0x4;
pub(crate) const SACL: u32 = 0x8;

/// The rights one set of `rwx` bits stands for.
fn rights(bits: u32, is_dir: bool) -> u32 {
    let mut m = 0;
    if bits & 4 != 0 {
        m |= AccessMask::FILE_GENERIC_READ.0;
    }
    if bits & 2 != 0 {
        m |= AccessMask::FILE_GENERIC_WRITE.0;
        if is_dir {
            m |= AccessMask::FILE_DELETE_CHILD.0;
        }
    }
    if bits & 1 != 0 {
        m |= AccessMask::FILE_GENERIC_EXECUTE.0;
    }
    m
}

/// The descriptor for an object with this owner, group and mode, holding the parts `info`
/// asks for (OWNER, GROUP, DACL; a SACL is never present), self-relative.
pub(crate) fn descriptor(uid: u32, gid: u32, mode: u32, is_dir: bool, info: u32) -> Vec<u8> {
    // The owner may always read and change the permissions (chmod) of what it owns.
    let owner_extra = AccessMask::READ_CONTROL.0
        | AccessMask::WRITE_DAC.0
        | AccessMask::WRITE_OWNER.0
        | AccessMask::DELETE.0;
    let aces = [
        (Sid::unix_user(uid), rights(mode >> 6, is_dir) | owner_extra),
        (Sid::unix_group(gid), rights(mode >> 3, is_dir)),
        (Sid::everyone(), rights(mode, is_dir)),
    ]
    .into_iter()
    .filter(|(_, m)| *m != 0)
    .map(|(sid, m)| Ace::allow(sid, AccessMask(m), AceFlags(0)))
    .collect();
    let sd = SecurityDescriptor {
        owner: (info & OWNER != 0).then(|| Sid::unix_user(uid)),
        group: (info & GROUP != 0).then(|| Sid::unix_group(gid)),
        sacl: None,
        dacl: (info & DACL != 0).then(|| Acl::new(aces)),
        ..Default::default()
    };
    let mut out = Vec::with_capacity(128);
    // Three SIDs and three ACEs cannot overflow a 32-bit offset.
    let _ = sd.encode(&mut out);
    out
}

/// Checks that a client-supplied self-relative descriptor is well formed.
/// STATUS_INVALID_SECURITY_DESCR otherwise.
pub(crate) fn validate(sd: &[u8]) -> Result<(), NtStatus> {
    SecurityDescriptor::parse(sd)
        .map(|_| ())
        .map_err(|_| NtStatus::INVALID_SECURITY_DESCR)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
    }

    #[test]
    fn owner_group_dacl_from_mode() {
        let sd = descriptor(1000, 100, 0o640, false, OWNER | GROUP | DACL);
        assert_eq!(sd[0], 1);
        let control = u16::from_le_bytes([sd[2], sd[3]]);
        assert_eq!(control, 0x8000 | 0x0004);
        let owner = u32_at(&sd, 4) as usize;
        // S-1-22-1-1000
        assert_eq!(&sd[owner..owner + 8], &[1, 2, 0, 0, 0, 0, 0, 22]);
        assert_eq!(u32_at(&sd, owner + 8), 1);
        assert_eq!(u32_at(&sd, owner + 12), 1000);
        let group = u32_at(&sd, 8) as usize;
        assert_eq!(u32_at(&sd, group + 8), 2);
        assert_eq!(u32_at(&sd, group + 12), 100);
        assert_eq!(u32_at(&sd, 12), 0, "no SACL");
        let dacl = u32_at(&sd, 16) as usize;
        assert_eq!(sd[dacl], 2);
        let acl_size = u16::from_le_bytes([sd[dacl + 2], sd[dacl + 3]]) as usize;
        assert_eq!(dacl + acl_size, sd.len());
        // Other has no bits: two ACEs.
        assert_eq!(u16::from_le_bytes([sd[dacl + 4], sd[dacl + 5]]), 2);
        let ace1 = dacl + 8;
        let mask1 = u32_at(&sd, ace1 + 4);
        assert_eq!(mask1 & 0x0012_0116, 0x0012_0116);
        assert_eq!(mask1 & 0x0004_0000, 0x0004_0000);
        let ace2 = ace1 + u16::from_le_bytes([sd[ace1 + 2], sd[ace1 + 3]]) as usize;
        assert_eq!(u32_at(&sd, ace2 + 4), 0x0012_0089);
        assert!(validate(&sd).is_ok());
    }

    #[test]
    fn only_the_parts_asked_for() {
        let sd = descriptor(0, 0, 0o755, true, 0);
        assert_eq!(sd.len(), 20);
        assert_eq!(u16::from_le_bytes([sd[2], sd[3]]), 0x8000);
        let sd = descriptor(0, 0, 0o755, true, GROUP);
        assert_eq!(u32_at(&sd, 4), 0);
        assert_eq!(u32_at(&sd, 8), 20);
        assert_eq!(sd.len(), 36);
    }

    #[test]
    fn validation() {
        assert!(validate(&[1; 10]).is_err());
        let mut sd = descriptor(1, 1, 0o600, false, OWNER);
        assert!(validate(&sd).is_ok());
        sd[4] = 200;
        assert!(validate(&sd).is_err());
        sd[4] = 20;
        sd[0] = 2;
        assert!(validate(&sd).is_err());
    }
}
