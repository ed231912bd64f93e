//! A security descriptor synthesized from POSIX ownership and mode bits, for QUERY_INFO with
//! InfoType SECURITY ([MS-SMB2] 3.3.5.20.3; layout [MS-DTYP] 2.4.6 self-relative
//! SECURITY_DESCRIPTOR, 2.4.2.2 SID, 2.4.5 ACL, 2.4.4.2 ACCESS_ALLOWED_ACE).
//!
//! A descriptor a client sets (SET_INFO, [MS-SMB2] 3.3.5.21.3) is kept whole in the file's
//! `sd` attribute (`user.lanshare.sd` on LocalFs), merged part by part with what was there,
//! and returned as set. It is recorded, not enforced: SMB access is decided by the share's
//! settings and the session's user, as the README says. Where none was stored, the
//! descriptor is derived from the POSIX ownership and mode:
//! owner and group are the Unix ids in the `S-1-22-1-<uid>` /
//! `S-1-22-2-<gid>` form Samba uses, so a Windows client sees the same identities from both
//! servers; the DACL has one allow entry each for the owner, the group and Everyone, from
//! the user, group and other bits. It describes what the kernel enforces for local users;
//! SMB access is decided by the share's settings and the session's user.

use lanshare_vfs::{Metadata, VfsError, VfsHandle};
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

/// Where a stored descriptor lives among the file's attributes.
const SD_ATTR: &str = "sd";

/// The mode-based descriptor with every part, parsed.
fn derived(m: &Metadata) -> Option<SecurityDescriptor> {
    SecurityDescriptor::parse(&descriptor(
        m.uid,
        m.gid,
        m.mode,
        m.is_dir,
        OWNER | GROUP | DACL,
    ))
    .ok()
}

/// The file's stored descriptor, if a valid one is there.
fn stored(h: &dyn VfsHandle) -> Option<SecurityDescriptor> {
    let raw = h.get_attr(SD_ATTR).ok()??;
    SecurityDescriptor::parse(&raw).ok()
}

/// QUERY_INFO security ([MS-SMB2] 3.3.5.20.3): the parts `info` asks for of the stored
/// descriptor, or of the one derived from the mode when none was stored.
pub(crate) fn query(h: &dyn VfsHandle, m: &Metadata, info: u32) -> Vec<u8> {
    let Some(sd) = stored(h) else {
        return descriptor(m.uid, m.gid, m.mode, m.is_dir, info);
    };
    let out = SecurityDescriptor {
        control: if info & DACL != 0 {
            sd.control
        } else {
            Default::default()
        },
        owner: if info & OWNER != 0 { sd.owner } else { None },
        group: if info & GROUP != 0 { sd.group } else { None },
        sacl: None,
        dacl: if info & DACL != 0 { sd.dacl } else { None },
    };
    let mut buf = Vec::with_capacity(256);
    match out.encode(&mut buf) {
        Ok(()) => buf,
        Err(_) => descriptor(m.uid, m.gid, m.mode, m.is_dir, info),
    }
}

/// SET_INFO security ([MS-SMB2] 3.3.5.21.3, [MS-FSA] 2.1.5.16): replaces the parts `info`
/// names (owner, group, DACL) of the file's descriptor with those of `new` and stores the
/// result. The caller has checked access and refused the SACL.
pub(crate) fn store(h: &dyn VfsHandle, info: u32, new: &[u8]) -> Result<(), NtStatus> {
    let new = SecurityDescriptor::parse(new).map_err(|_| NtStatus::INVALID_SECURITY_DESCR)?;
    let m = h.metadata().map_err(|e| crate::open::vfs_status(&e))?;
    let mut sd = stored(h)
        .or_else(|| derived(&m))
        .ok_or(NtStatus::INTERNAL_ERROR)?;
    if info & OWNER != 0 {
        // [MS-DTYP] 2.4.6: an owner must be given when it is being set.
        sd.owner = Some(new.owner.ok_or(NtStatus::INVALID_OWNER)?);
    }
    if info & GROUP != 0 {
        sd.group = Some(new.group.ok_or(NtStatus::INVALID_PRIMARY_GROUP)?);
    }
    if info & DACL != 0 {
        sd.dacl = new.dacl;
        sd.control = new.control;
    }
    sd.sacl = None;
    let mut buf = Vec::with_capacity(256);
    sd.encode(&mut buf)
        .map_err(|_| NtStatus::INVALID_SECURITY_DESCR)?;
    h.set_attr(SD_ATTR, &buf).map_err(|e| match e {
        VfsError::NotSupported => {
            tracing::warn!(
                "security descriptor not stored: the share's filesystem keeps no user xattrs"
            );
            NtStatus::NOT_SUPPORTED
        }
        e => crate::open::vfs_status(&e),
    })
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
    fn stored_descriptor_round_trips() {
        use lanshare_vfs::{CreateMode, MemFs, OpenOptions, Vfs, VfsPath};
        let fs = MemFs::new();
        let (h, _) = fs
            .open(
                &VfsPath::parse("f").unwrap(),
                &OpenOptions::read_write(CreateMode::Create),
            )
            .unwrap();
        let m = h.metadata().unwrap();
        let all = OWNER | GROUP | DACL;
        assert_eq!(
            query(&*h, &m, all),
            descriptor(m.uid, m.gid, m.mode, m.is_dir, all),
            "without a stored descriptor, the mode speaks"
        );
        let dacl = Acl::new(vec![Ace::allow(
            Sid::everyone(),
            AccessMask(0x001F_01FF),
            AceFlags(0),
        )]);
        let set = SecurityDescriptor {
            owner: Some(Sid::unix_user(42)),
            group: Some(Sid::unix_group(43)),
            dacl: Some(dacl.clone()),
            ..Default::default()
        };
        let mut buf = Vec::new();
        set.encode(&mut buf).unwrap();
        store(&*h, DACL, &buf).unwrap();
        let q = SecurityDescriptor::parse(&query(&*h, &m, all)).unwrap();
        assert_eq!(q.dacl, Some(dacl.clone()));
        assert_eq!(
            q.owner,
            Some(Sid::unix_user(m.uid)),
            "owner not asked to change"
        );
        store(&*h, OWNER | GROUP, &buf).unwrap();
        let q = SecurityDescriptor::parse(&query(&*h, &m, all)).unwrap();
        assert_eq!(q.owner, Some(Sid::unix_user(42)));
        assert_eq!(q.group, Some(Sid::unix_group(43)));
        assert_eq!(q.dacl, Some(dacl));
        let q = SecurityDescriptor::parse(&query(&*h, &m, GROUP)).unwrap();
        assert!(q.owner.is_none() && q.dacl.is_none());
        // Setting the owner without giving one is refused.
        let mut empty = Vec::new();
        SecurityDescriptor::default().encode(&mut empty).unwrap();
        assert_eq!(store(&*h, OWNER, &empty), Err(NtStatus::INVALID_OWNER));
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
