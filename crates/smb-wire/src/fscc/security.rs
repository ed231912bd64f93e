//! Security descriptors in self-relative form ([MS-DTYP] 2.4.6), with SIDs (2.4.2.2), ACLs
//! (2.4.5) and ACEs (2.4.4): what QUERY_INFO/SET_INFO with SMB2_0_INFO_SECURITY and the SecD
//! create context carry.

use core::fmt;

use crate::codec::{Reader, Writer, to_u16};
use crate::error::{Result, WireError};
use crate::types::AccessMask;

/// SID sub-authorities allowed ([MS-DTYP] 2.4.2.2: at most 15).
const MAX_SUB_AUTHORITIES: usize = 15;
/// ACEs accepted in one ACL before allocating.
const MAX_ACES: usize = 1024;

/// A security identifier ([MS-DTYP] 2.4.2.2).
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Sid {
    /// IdentifierAuthority (48 bits).
    pub authority: u64,
    /// SubAuthority values.
    pub sub_authorities: Vec<u32>,
}

impl Sid {
    /// A SID from its authority and sub-authorities.
    pub fn new(authority: u64, sub_authorities: &[u32]) -> Self {
        Sid {
            authority,
            sub_authorities: sub_authorities.to_vec(),
        }
    }

    /// S-1-1-0, Everyone.
    pub fn everyone() -> Self {
        Sid::new(1, &[0])
    }

    /// S-1-3-0, Creator Owner.
    pub fn creator_owner() -> Self {
        Sid::new(3, &[0])
    }

    /// S-1-5-7, Anonymous.
    pub fn anonymous() -> Self {
        Sid::new(5, &[7])
    }

    /// S-1-5-11, Authenticated Users.
    pub fn authenticated_users() -> Self {
        Sid::new(5, &[11])
    }

    /// S-1-5-18, Local System.
    pub fn local_system() -> Self {
        Sid::new(5, &[18])
    }

    /// S-1-5-32-544, BUILTIN\Administrators.
    pub fn builtin_administrators() -> Self {
        Sid::new(5, &[32, 544])
    }

    /// S-1-5-32-545, BUILTIN\Users.
    pub fn builtin_users() -> Self {
        Sid::new(5, &[32, 545])
    }

    /// S-1-22-1-uid: the Unix user SID space Samba uses for local uids.
    pub fn unix_user(uid: u32) -> Self {
        Sid::new(22, &[1, uid])
    }

    /// S-1-22-2-gid: the Unix group SID space Samba uses for local gids.
    pub fn unix_group(gid: u32) -> Self {
        Sid::new(22, &[2, gid])
    }

    /// Bytes on the wire.
    pub fn encoded_len(&self) -> usize {
        8 + 4 * self.sub_authorities.len()
    }

    /// Appends the binary SID. More than 15 sub-authorities is an error.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<()> {
        if self.sub_authorities.len() > MAX_SUB_AUTHORITIES {
            return Err(WireError::TooMany {
                what: "SID sub-authorities",
                count: self.sub_authorities.len(),
                max: MAX_SUB_AUTHORITIES,
            });
        }
        let mut w = Writer::new(out);
        w.u8(1);
        w.u8(self.sub_authorities.len() as u8);
        // IdentifierAuthority is big-endian, 6 bytes.
        w.bytes(&self.authority.to_be_bytes()[2..8]);
        for s in &self.sub_authorities {
            w.u32(*s);
        }
        Ok(())
    }

    /// Reads a binary SID.
    pub fn read(r: &mut Reader<'_>) -> Result<Self> {
        let revision = r.u8()?;
        if revision != 1 {
            return Err(WireError::BadValue {
                what: "SID revision",
                value: u64::from(revision),
            });
        }
        let count = usize::from(r.u8()?);
        if count > MAX_SUB_AUTHORITIES {
            return Err(WireError::TooMany {
                what: "SID sub-authorities",
                count,
                max: MAX_SUB_AUTHORITIES,
            });
        }
        let auth: [u8; 6] = r.array()?;
        let mut be = [0u8; 8];
        be[2..].copy_from_slice(&auth);
        let mut sub_authorities = Vec::with_capacity(count);
        for _ in 0..count {
            sub_authorities.push(r.u32()?);
        }
        Ok(Sid {
            authority: u64::from_be_bytes(be),
            sub_authorities,
        })
    }

    /// Parses the `S-1-5-21-...` text form.
    pub fn parse_str(s: &str) -> Result<Self> {
        let bad = || WireError::BadValue {
            what: "SID string",
            value: 0,
        };
        let mut parts = s.strip_prefix("S-1-").ok_or_else(bad)?.split('-');
        let authority: u64 = parts.next().ok_or_else(bad)?.parse().map_err(|_| bad())?;
        if authority >= 1 << 48 {
            return Err(bad());
        }
        let sub_authorities = parts
            .map(|p| p.parse::<u32>().map_err(|_| bad()))
            .collect::<Result<Vec<_>>>()?;
        if sub_authorities.len() > MAX_SUB_AUTHORITIES {
            return Err(bad());
        }
        Ok(Sid {
            authority,
            sub_authorities,
        })
    }
}

impl fmt::Display for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "S-1-{}", self.authority)?;
        for s in &self.sub_authorities {
            write!(f, "-{s}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

wire_enum! {
    /// ACE types ([MS-DTYP] 2.4.4.1 AceType). Object ACE types are recognised by name but
    /// not decoded.
    pub struct AceType(u8);
    prefix = "";
    ACCESS_ALLOWED = 0x00,
    ACCESS_DENIED = 0x01,
    SYSTEM_AUDIT = 0x02,
    SYSTEM_ALARM = 0x03,
    ACCESS_ALLOWED_COMPOUND = 0x04,
    ACCESS_ALLOWED_OBJECT = 0x05,
    ACCESS_DENIED_OBJECT = 0x06,
    SYSTEM_AUDIT_OBJECT = 0x07,
    SYSTEM_ALARM_OBJECT = 0x08,
    ACCESS_ALLOWED_CALLBACK = 0x09,
    ACCESS_DENIED_CALLBACK = 0x0A,
    ACCESS_ALLOWED_CALLBACK_OBJECT = 0x0B,
    ACCESS_DENIED_CALLBACK_OBJECT = 0x0C,
    SYSTEM_AUDIT_CALLBACK = 0x0D,
    SYSTEM_ALARM_CALLBACK = 0x0E,
    SYSTEM_AUDIT_CALLBACK_OBJECT = 0x0F,
    SYSTEM_ALARM_CALLBACK_OBJECT = 0x10,
    SYSTEM_MANDATORY_LABEL = 0x11,
    SYSTEM_RESOURCE_ATTRIBUTE = 0x12,
    SYSTEM_SCOPED_POLICY_ID = 0x13,
}

wire_flags! {
    /// ACE flags ([MS-DTYP] 2.4.4.1 AceFlags).
    pub struct AceFlags(u8);
    OBJECT_INHERIT = 0x01,
    CONTAINER_INHERIT = 0x02,
    NO_PROPAGATE_INHERIT = 0x04,
    INHERIT_ONLY = 0x08,
    INHERITED = 0x10,
    SUCCESSFUL_ACCESS = 0x40,
    FAILED_ACCESS = 0x80,
}

/// An ACE of the "mask + SID" family ([MS-DTYP] 2.4.4.2 ACCESS_ALLOWED_ACE and its siblings
/// DENIED, AUDIT, ALARM, MANDATORY_LABEL, the callback forms and SCOPED_POLICY_ID, which only
/// add trailing application data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ace {
    /// AceType.
    pub ace_type: AceType,
    /// AceFlags.
    pub flags: AceFlags,
    /// Mask.
    pub mask: AccessMask,
    /// Sid.
    pub sid: Sid,
    /// Bytes after the SID within AceSize (callback ACEs' ApplicationData), kept verbatim.
    pub application_data: Vec<u8>,
}

impl Ace {
    /// An allowing ACE.
    pub fn allow(sid: Sid, mask: AccessMask, flags: AceFlags) -> Self {
        Ace {
            ace_type: AceType::ACCESS_ALLOWED,
            flags,
            mask,
            sid,
            application_data: Vec::new(),
        }
    }

    /// A denying ACE.
    pub fn deny(sid: Sid, mask: AccessMask, flags: AceFlags) -> Self {
        Ace {
            ace_type: AceType::ACCESS_DENIED,
            flags,
            mask,
            sid,
            application_data: Vec::new(),
        }
    }

    fn is_mask_sid_form(t: AceType) -> bool {
        matches!(t.0, 0x00..=0x03 | 0x09 | 0x0A | 0x0D | 0x0E | 0x11 | 0x13)
    }

    /// Bytes on the wire (4-byte aligned as AceSize requires).
    pub fn encoded_len(&self) -> usize {
        crate::codec::align_up(8 + self.sid.encoded_len() + self.application_data.len(), 4)
    }

    /// Appends the ACE.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<()> {
        let size = to_u16(self.encoded_len(), "AceSize")?;
        let start = out.len();
        let mut w = Writer::new(out);
        w.u8(self.ace_type.0);
        w.u8(self.flags.0);
        w.u16(size);
        w.u32(self.mask.0);
        self.sid.encode(out)?;
        out.extend_from_slice(&self.application_data);
        out.resize(start + usize::from(size), 0);
        Ok(())
    }

    /// Reads one ACE.
    pub fn read(r: &mut Reader<'_>) -> Result<Self> {
        let ace_type = AceType(r.u8()?);
        let flags = AceFlags(r.u8()?);
        let size = usize::from(r.u16()?);
        if size < 8 + 8 || !size.is_multiple_of(4) {
            return Err(WireError::BadValue {
                what: "AceSize",
                value: size as u64,
            });
        }
        if !Self::is_mask_sid_form(ace_type) {
            return Err(WireError::BadValue {
                what: "ACE type (object ACEs are not supported)",
                value: u64::from(ace_type.0),
            });
        }
        let mut body = r.sub(size - 4, "ACE")?;
        let mask = AccessMask(body.u32()?);
        let sid = Sid::read(&mut body)?;
        Ok(Ace {
            ace_type,
            flags,
            mask,
            sid,
            application_data: body.rest().to_vec(),
        })
    }
}

/// An ACL ([MS-DTYP] 2.4.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acl {
    /// AclRevision: 2 (ACL_REVISION) or 4 (ACL_REVISION_DS).
    pub revision: u8,
    /// The ACEs, in order.
    pub aces: Vec<Ace>,
}

impl Default for Acl {
    fn default() -> Self {
        Acl {
            revision: 2,
            aces: Vec::new(),
        }
    }
}

impl Acl {
    /// An ACL of revision 2.
    pub fn new(aces: Vec<Ace>) -> Self {
        Acl { revision: 2, aces }
    }

    /// Bytes on the wire.
    pub fn encoded_len(&self) -> usize {
        8 + self.aces.iter().map(Ace::encoded_len).sum::<usize>()
    }

    /// Appends the ACL.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<()> {
        let size = to_u16(self.encoded_len(), "AclSize")?;
        let mut w = Writer::new(out);
        w.u8(self.revision);
        w.u8(0);
        w.u16(size);
        w.u16(to_u16(self.aces.len(), "AceCount")?);
        w.u16(0);
        for a in &self.aces {
            a.encode(out)?;
        }
        Ok(())
    }

    /// Reads an ACL, bounded by its AclSize.
    pub fn read(r: &mut Reader<'_>) -> Result<Self> {
        let revision = r.u8()?;
        r.u8()?;
        let size = usize::from(r.u16()?);
        let count = usize::from(r.u16()?);
        r.u16()?;
        if size < 8 {
            return Err(WireError::BadValue {
                what: "AclSize",
                value: size as u64,
            });
        }
        if count > MAX_ACES {
            return Err(WireError::TooMany {
                what: "ACEs",
                count,
                max: MAX_ACES,
            });
        }
        let mut body = r.sub(size - 8, "ACL")?;
        let mut aces = Vec::with_capacity(count.min(body.remaining() / 16));
        for _ in 0..count {
            aces.push(Ace::read(&mut body)?);
        }
        Ok(Acl { revision, aces })
    }
}

wire_flags! {
    /// SECURITY_DESCRIPTOR Control ([MS-DTYP] 2.4.6).
    pub struct SdControl(u16);
    OWNER_DEFAULTED = 0x0001,
    GROUP_DEFAULTED = 0x0002,
    DACL_PRESENT = 0x0004,
    DACL_DEFAULTED = 0x0008,
    SACL_PRESENT = 0x0010,
    SACL_DEFAULTED = 0x0020,
    DACL_TRUSTED = 0x0040,
    SERVER_SECURITY = 0x0080,
    DACL_AUTO_INHERIT_REQ = 0x0100,
    SACL_AUTO_INHERIT_REQ = 0x0200,
    DACL_AUTO_INHERITED = 0x0400,
    SACL_AUTO_INHERITED = 0x0800,
    DACL_PROTECTED = 0x1000,
    SACL_PROTECTED = 0x2000,
    RM_CONTROL_VALID = 0x4000,
    SELF_RELATIVE = 0x8000,
}

/// A security descriptor ([MS-DTYP] 2.4.6), encoded in self-relative form.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SecurityDescriptor {
    /// Control flags other than SELF_RELATIVE/DACL_PRESENT/SACL_PRESENT, which the encoder
    /// sets from the fields.
    pub control: SdControl,
    /// OwnerSid.
    pub owner: Option<Sid>,
    /// GroupSid.
    pub group: Option<Sid>,
    /// Sacl.
    pub sacl: Option<Acl>,
    /// Dacl (`None`: no DACL, everyone has full access; `Some(empty)`: nobody has access).
    pub dacl: Option<Acl>,
}

impl SecurityDescriptor {
    /// Size of the header.
    pub const HEADER_SIZE: usize = 20;

    /// Appends the self-relative form: header, owner, group, SACL, DACL.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<()> {
        let start = out.len();
        let mut control = self
            .control
            .without(SdControl::DACL_PRESENT | SdControl::SACL_PRESENT)
            | SdControl::SELF_RELATIVE;
        control.set(SdControl::DACL_PRESENT, self.dacl.is_some());
        control.set(SdControl::SACL_PRESENT, self.sacl.is_some());
        let mut w = Writer::new(out);
        w.u8(1);
        w.u8(0);
        w.u16(control.0);
        let owner_at = w.reserve_u32();
        let group_at = w.reserve_u32();
        let sacl_at = w.reserve_u32();
        let dacl_at = w.reserve_u32();
        let rel =
            |out: &Vec<u8>| crate::codec::to_u32(out.len() - start, "security descriptor offset");
        if let Some(s) = &self.owner {
            let off = rel(out)?;
            Writer::new(out).patch_u32(owner_at, off);
            s.encode(out)?;
        }
        if let Some(s) = &self.group {
            let off = rel(out)?;
            Writer::new(out).patch_u32(group_at, off);
            s.encode(out)?;
        }
        if let Some(a) = &self.sacl {
            let off = rel(out)?;
            Writer::new(out).patch_u32(sacl_at, off);
            a.encode(out)?;
        }
        if let Some(a) = &self.dacl {
            let off = rel(out)?;
            Writer::new(out).patch_u32(dacl_at, off);
            a.encode(out)?;
        }
        Ok(())
    }

    /// Parses a self-relative descriptor (SET_INFO security, the SecD create context).
    pub fn parse(buf: &[u8]) -> Result<Self> {
        let mut r = Reader::new(buf, "security descriptor");
        let revision = r.u8()?;
        if revision != 1 {
            return Err(WireError::BadValue {
                what: "security descriptor revision",
                value: u64::from(revision),
            });
        }
        r.u8()?;
        let control = SdControl(r.u16()?);
        if !control.contains(SdControl::SELF_RELATIVE) {
            return Err(WireError::BadValue {
                what: "security descriptor control (not self-relative)",
                value: u64::from(control.0),
            });
        }
        let owner_off = r.u32()? as usize;
        let group_off = r.u32()? as usize;
        let sacl_off = r.u32()? as usize;
        let dacl_off = r.u32()? as usize;
        let at = |off: usize, what| -> Result<Option<Reader<'_>>> {
            if off == 0 {
                return Ok(None);
            }
            if off < Self::HEADER_SIZE {
                return Err(WireError::BadOffset { what });
            }
            Reader::at(buf, off, what).map(Some)
        };
        let owner = at(owner_off, "OffsetOwner")?
            .map(|mut r| Sid::read(&mut r))
            .transpose()?;
        let group = at(group_off, "OffsetGroup")?
            .map(|mut r| Sid::read(&mut r))
            .transpose()?;
        let sacl = if control.contains(SdControl::SACL_PRESENT) {
            at(sacl_off, "OffsetSacl")?
                .map(|mut r| Acl::read(&mut r))
                .transpose()?
        } else {
            None
        };
        let dacl = if control.contains(SdControl::DACL_PRESENT) {
            at(dacl_off, "OffsetDacl")?
                .map(|mut r| Acl::read(&mut r))
                .transpose()?
        } else {
            None
        };
        Ok(SecurityDescriptor {
            control: control.without(
                SdControl::SELF_RELATIVE | SdControl::DACL_PRESENT | SdControl::SACL_PRESENT,
            ),
            owner,
            group,
            sacl,
            dacl,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sid_binary_and_text() {
        let s = Sid::parse_str("S-1-5-21-1-2-3-1001").unwrap();
        assert_eq!(s.to_string(), "S-1-5-21-1-2-3-1001");
        let mut v = Vec::new();
        s.encode(&mut v).unwrap();
        assert_eq!(&v[..8], &[1, 5, 0, 0, 0, 0, 0, 5]);
        assert_eq!(&v[8..12], &[21, 0, 0, 0]);
        assert_eq!(v.len(), s.encoded_len());
        assert_eq!(Sid::read(&mut Reader::new(&v, "t")).unwrap(), s);
        let mut v = Vec::new();
        Sid::everyone().encode(&mut v).unwrap();
        assert_eq!(v, [1, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]);
        assert!(Sid::parse_str("S-1-x").is_err());
        assert!(Sid::parse_str("X-1-5").is_err());
        let mut bad = v.clone();
        bad[1] = 16;
        assert!(Sid::read(&mut Reader::new(&bad, "t")).is_err());
    }

    #[test]
    fn descriptor_round_trip_and_layout() {
        let sd = SecurityDescriptor {
            control: SdControl::DACL_AUTO_INHERITED,
            owner: Some(Sid::unix_user(1000)),
            group: Some(Sid::unix_group(1000)),
            sacl: None,
            dacl: Some(Acl::new(vec![
                Ace::allow(
                    Sid::unix_user(1000),
                    AccessMask::FILE_ALL_ACCESS,
                    AceFlags::empty(),
                ),
                Ace::allow(
                    Sid::everyone(),
                    AccessMask::FILE_GENERIC_READ,
                    AceFlags::OBJECT_INHERIT | AceFlags::CONTAINER_INHERIT,
                ),
            ])),
        };
        let mut v = Vec::new();
        sd.encode(&mut v).unwrap();
        assert_eq!(&v[0..4], &[1, 0, 0x04, 0x84]);
        assert_eq!(&v[4..8], &[20, 0, 0, 0]);
        assert_eq!(&v[12..16], &[0, 0, 0, 0]); // no SACL
        // owner 16 + group 16 -> DACL at 52
        assert_eq!(&v[16..20], &[52, 0, 0, 0]);
        assert_eq!(v.len(), 52 + 8 + 24 + 20);
        assert_eq!(SecurityDescriptor::parse(&v).unwrap(), sd);
    }

    #[test]
    fn descriptor_rejects_bad_input() {
        let sd = SecurityDescriptor {
            dacl: Some(Acl::new(vec![Ace::deny(
                Sid::anonymous(),
                AccessMask::DELETE,
                AceFlags::empty(),
            )])),
            ..Default::default()
        };
        let mut v = Vec::new();
        sd.encode(&mut v).unwrap();
        assert_eq!(SecurityDescriptor::parse(&v).unwrap(), sd);
        let mut bad = v.clone();
        bad[16] = 200; // DACL offset past the end
        assert!(SecurityDescriptor::parse(&bad).is_err());
        let mut bad = v.clone();
        bad[22] = 0xFF; // AclSize larger than the buffer
        assert!(SecurityDescriptor::parse(&bad).is_err());
        let mut bad = v.clone();
        bad[3] = 0; // not self-relative
        assert!(SecurityDescriptor::parse(&bad).is_err());
        let mut bad = v.clone();
        bad[30] = 22; // AceSize not a multiple of 4
        assert!(SecurityDescriptor::parse(&bad).is_err());
        assert!(SecurityDescriptor::parse(&v[..10]).is_err());
    }
}
