//! A security descriptor synthesized from POSIX ownership and mode bits, for QUERY_INFO with
//! InfoType SECURITY ([MS-SMB2] 3.3.5.20.3; layout [MS-DTYP] 2.4.6 self-relative
//! SECURITY_DESCRIPTOR, 2.4.2.2 SID, 2.4.5 ACL, 2.4.4.2 ACCESS_ALLOWED_ACE).
//!
//! lanshare stores no NT ACLs. Owner and group are the Unix ids in the `S-1-22-1-<uid>` /
//! `S-1-22-2-<gid>` form Samba uses, so a Windows client sees the same identities from both
//! servers; the DACL has one allow entry each for the owner, the group and Everyone, from
//! the user, group and other bits. It describes what the kernel enforces for local users;
//! SMB access is decided by the share's settings and the session's user.

use smb_wire::NtStatus;

/// SECURITY_INFORMATION bits ([MS-DTYP] 2.4.7).
pub(crate) const OWNER: u32 = 0x1;
pub(crate) const GROUP: u32 = 0x2;
pub(crate) const DACL: u32 = 0x4;
pub(crate) const SACL: u32 = 0x8;

const SE_DACL_PRESENT: u16 = 0x0004;
const SE_SELF_RELATIVE: u16 = 0x8000;
const ACCESS_ALLOWED_ACE_TYPE: u8 = 0;

const FILE_GENERIC_READ: u32 = 0x0012_0089;
const FILE_GENERIC_WRITE: u32 = 0x0012_0116;
const FILE_GENERIC_EXECUTE: u32 = 0x0012_00A0;
const FILE_DELETE_CHILD: u32 = 0x0000_0040;
const DELETE: u32 = 0x0001_0000;
const READ_CONTROL: u32 = 0x0002_0000;
const WRITE_DAC: u32 = 0x0004_0000;
const WRITE_OWNER: u32 = 0x0008_0000;

/// A SID as (identifier authority, sub-authorities).
struct Sid {
    authority: u64,
    sub: Vec<u32>,
}

impl Sid {
    fn unix_user(uid: u32) -> Sid {
        Sid {
            authority: 22,
            sub: vec![1, uid],
        }
    }
    fn unix_group(gid: u32) -> Sid {
        Sid {
            authority: 22,
            sub: vec![2, gid],
        }
    }
    fn everyone() -> Sid {
        Sid {
            authority: 1,
            sub: vec![0],
        }
    }

    fn len(&self) -> usize {
        8 + 4 * self.sub.len()
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.push(1);
        out.push(self.sub.len() as u8);
        // IdentifierAuthority is 48-bit big-endian.
        out.extend_from_slice(&self.authority.to_be_bytes()[2..]);
        for s in &self.sub {
            out.extend_from_slice(&s.to_le_bytes());
        }
    }
}

/// The rights one set of `rwx` bits stands for.
fn rights(bits: u32, is_dir: bool) -> u32 {
    let mut m = 0;
    if bits & 4 != 0 {
        m |= FILE_GENERIC_READ;
    }
    if bits & 2 != 0 {
        m |= FILE_GENERIC_WRITE;
        if is_dir {
            m |= FILE_DELETE_CHILD;
        }
    }
    if bits & 1 != 0 {
        m |= FILE_GENERIC_EXECUTE;
    }
    m
}

/// The descriptor for an object with this owner, group and mode, holding the parts `info`
/// asks for (OWNER, GROUP, DACL; a SACL is never present).
pub(crate) fn descriptor(uid: u32, gid: u32, mode: u32, is_dir: bool, info: u32) -> Vec<u8> {
    let owner = Sid::unix_user(uid);
    let group = Sid::unix_group(gid);
    // The owner may always read and change the permissions (chmod) of what it owns.
    let aces = [
        (
            Sid::unix_user(uid),
            rights(mode >> 6, is_dir) | READ_CONTROL | WRITE_DAC | WRITE_OWNER | DELETE,
        ),
        (Sid::unix_group(gid), rights(mode >> 3, is_dir)),
        (Sid::everyone(), rights(mode, is_dir)),
    ];
    let mut out = vec![0u8; 20];
    let mut control = SE_SELF_RELATIVE;
    let (mut off_owner, mut off_group, mut off_dacl) = (0u32, 0u32, 0u32);
    if info & OWNER != 0 {
        off_owner = out.len() as u32;
        owner.encode(&mut out);
    }
    if info & GROUP != 0 {
        off_group = out.len() as u32;
        group.encode(&mut out);
    }
    if info & DACL != 0 {
        control |= SE_DACL_PRESENT;
        off_dacl = out.len() as u32;
        let present: Vec<&(Sid, u32)> = aces.iter().filter(|(_, m)| *m != 0).collect();
        let size: usize = 8 + present.iter().map(|(s, _)| 8 + s.len()).sum::<usize>();
        out.push(2); // AclRevision
        out.push(0);
        out.extend_from_slice(&(size as u16).to_le_bytes());
        out.extend_from_slice(&(present.len() as u16).to_le_bytes());
        out.extend_from_slice(&[0, 0]);
        for (sid, mask) in present {
            out.push(ACCESS_ALLOWED_ACE_TYPE);
            out.push(0);
            out.extend_from_slice(&((8 + sid.len()) as u16).to_le_bytes());
            out.extend_from_slice(&mask.to_le_bytes());
            sid.encode(&mut out);
        }
    }
    out[0] = 1;
    out[2..4].copy_from_slice(&control.to_le_bytes());
    out[4..8].copy_from_slice(&off_owner.to_le_bytes());
    out[8..12].copy_from_slice(&off_group.to_le_bytes());
    out[16..20].copy_from_slice(&off_dacl.to_le_bytes());
    out
}

/// Checks that a client-supplied self-relative descriptor is well formed: revision 1, and
/// every part it points at inside the buffer. STATUS_INVALID_SECURITY_DESCR otherwise.
pub(crate) fn validate(sd: &[u8]) -> Result<(), NtStatus> {
    let bad = NtStatus::INVALID_SECURITY_DESCR;
    let header = sd.get(..20).ok_or(bad)?;
    if header[0] != 1 {
        return Err(bad);
    }
    for at in [4usize, 8, 12, 16] {
        let off = u32::from_le_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
            as usize;
        if off != 0 && (off < 20 || off >= sd.len()) {
            return Err(bad);
        }
    }
    Ok(())
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
        assert_eq!(control, SE_SELF_RELATIVE | SE_DACL_PRESENT);
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
        assert_eq!(mask1 & FILE_GENERIC_WRITE, FILE_GENERIC_WRITE);
        assert_eq!(mask1 & WRITE_DAC, WRITE_DAC);
        let ace2 = ace1 + u16::from_le_bytes([sd[ace1 + 2], sd[ace1 + 3]]) as usize;
        assert_eq!(u32_at(&sd, ace2 + 4), FILE_GENERIC_READ);
        assert!(validate(&sd).is_ok());
    }

    #[test]
    fn only_the_parts_asked_for() {
        let sd = descriptor(0, 0, 0o755, true, 0);
        assert_eq!(sd.len(), 20);
        assert_eq!(u16::from_le_bytes([sd[2], sd[3]]), SE_SELF_RELATIVE);
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
