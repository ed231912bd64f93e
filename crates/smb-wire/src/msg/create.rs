//! CREATE ([MS-SMB2] 2.2.13 request, 2.2.14 response). Contexts: [`super::create_context`].

use crate::codec::{Writer, slice_at, to_u16, to_u32};
use crate::error::Result;
use crate::types::{
    AccessMask, Command, CreateDisposition, CreateOptions, FileAttributes, FileId,
    ImpersonationLevel, OplockLevel, ShareAccess,
};
use crate::utf16;

use super::create_context::CreateContext;
use super::{body, header_base, off16, off32};

/// CREATE request ([MS-SMB2] 2.2.13).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CreateRequest<'a> {
    /// SecurityFlags (reserved, 0).
    pub security_flags: u8,
    /// RequestedOplockLevel.
    pub requested_oplock_level: OplockLevel,
    /// ImpersonationLevel.
    pub impersonation_level: ImpersonationLevel,
    /// SmbCreateFlags (reserved, 0).
    pub smb_create_flags: u64,
    /// DesiredAccess.
    pub desired_access: AccessMask,
    /// FileAttributes for a new file.
    pub file_attributes: FileAttributes,
    /// ShareAccess.
    pub share_access: ShareAccess,
    /// CreateDisposition.
    pub create_disposition: CreateDisposition,
    /// CreateOptions.
    pub create_options: CreateOptions,
    /// The path relative to the share root (no leading backslash; empty for the root),
    /// decoded from UTF-16LE.
    pub name: String,
    /// Create contexts, in order.
    pub contexts: Vec<CreateContext<'a>>,
}

impl<'a> CreateRequest<'a> {
    /// StructureSize of the request.
    pub const STRUCTURE_SIZE: u16 = 57;

    /// Parses the request PDU. A name that is not valid UTF-16 is [`crate::WireError::BadUtf16`]
    /// (the engine answers STATUS_OBJECT_NAME_INVALID).
    pub fn parse(pdu: &'a [u8]) -> Result<Self> {
        let mut r = body(pdu, Command::CREATE, Self::STRUCTURE_SIZE, "CREATE request")?;
        let security_flags = r.u8()?;
        let requested_oplock_level = OplockLevel(r.u8()?);
        let impersonation_level = ImpersonationLevel(r.u32()?);
        let smb_create_flags = r.u64()?;
        r.u64()?; // Reserved
        let desired_access = AccessMask(r.u32()?);
        let file_attributes = FileAttributes(r.u32()?);
        let share_access = ShareAccess(r.u32()?);
        let create_disposition = CreateDisposition(r.u32()?);
        let create_options = CreateOptions(r.u32()?);
        let name_off = usize::from(r.u16()?);
        let name_len = usize::from(r.u16()?);
        let ctx_off = r.u32()? as usize;
        let ctx_len = r.u32()? as usize;
        let fixed = r.pos();
        let name = utf16::decode(slice_at(pdu, name_off, name_len, fixed, "CREATE name")?)?;
        let ctx_buf = slice_at(pdu, ctx_off, ctx_len, fixed, "CREATE contexts")?;
        let contexts = CreateContext::parse_list(ctx_buf)?;
        Ok(CreateRequest {
            security_flags,
            requested_oplock_level,
            impersonation_level,
            smb_create_flags,
            desired_access,
            file_attributes,
            share_access,
            create_disposition,
            create_options,
            name,
            contexts,
        })
    }

    /// Appends the body. An empty name still gets one zero byte of Buffer, and the contexts
    /// start on an 8-byte boundary.
    pub fn encode(&self, pdu: &mut Vec<u8>) -> Result<()> {
        let base = header_base(pdu)?;
        let name = utf16::encode(&self.name);
        let mut w = Writer::new(pdu);
        w.u16(Self::STRUCTURE_SIZE);
        w.u8(self.security_flags);
        w.u8(self.requested_oplock_level.0);
        w.u32(self.impersonation_level.0);
        w.u64(self.smb_create_flags);
        w.u64(0);
        w.u32(self.desired_access.0);
        w.u32(self.file_attributes.0);
        w.u32(self.share_access.0);
        w.u32(self.create_disposition.0);
        w.u32(self.create_options.0);
        let name_off_at = w.reserve_u16();
        w.u16(to_u16(name.len(), "NameLength")?);
        let ctx_off_at = w.reserve_u32();
        let ctx_len_at = w.reserve_u32();
        let off = off16(w.pos(), base, "NameOffset")?;
        w.patch_u16(name_off_at, off);
        w.bytes(&name);
        if name.is_empty() && self.contexts.is_empty() {
            w.u8(0);
        }
        if !self.contexts.is_empty() {
            w.align(8);
            let off = off32(w.pos(), base, "CreateContextsOffset")?;
            w.patch_u32(ctx_off_at, off);
            let n = CreateContext::encode_list(&self.contexts, pdu)?;
            Writer::new(pdu).patch_u32(ctx_len_at, to_u32(n, "CreateContextsLength")?);
        }
        Ok(())
    }
}

/// CREATE response ([MS-SMB2] 2.2.14).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CreateResponse<'a> {
    /// OplockLevel granted.
    pub oplock_level: OplockLevel,
    /// Flags (3.x: SMB2_CREATE_FLAG_REPARSEPOINT 1), else reserved.
    pub flags: u8,
    /// CreateAction: one of the `ACTION_*` constants.
    pub create_action: u32,
    /// CreationTime (FILETIME).
    pub creation_time: u64,
    /// LastAccessTime (FILETIME).
    pub last_access_time: u64,
    /// LastWriteTime (FILETIME).
    pub last_write_time: u64,
    /// ChangeTime (FILETIME).
    pub change_time: u64,
    /// AllocationSize.
    pub allocation_size: u64,
    /// EndofFile.
    pub end_of_file: u64,
    /// FileAttributes.
    pub file_attributes: FileAttributes,
    /// FileId of the new open.
    pub file_id: FileId,
    /// Response contexts (MxAc, QFid, RqLs, DH2Q...).
    pub contexts: Vec<CreateContext<'a>>,
}

impl<'a> CreateResponse<'a> {
    /// StructureSize of the response.
    pub const STRUCTURE_SIZE: u16 = 89;
    /// FILE_SUPERSEDED.
    pub const ACTION_SUPERSEDED: u32 = 0;
    /// FILE_OPENED.
    pub const ACTION_OPENED: u32 = 1;
    /// FILE_CREATED.
    pub const ACTION_CREATED: u32 = 2;
    /// FILE_OVERWRITTEN.
    pub const ACTION_OVERWRITTEN: u32 = 3;
    /// SMB2_CREATE_FLAG_REPARSEPOINT.
    pub const FLAG_REPARSEPOINT: u8 = 0x01;

    /// Appends the body; contexts start 8-aligned right after the fixed part.
    pub fn encode(&self, pdu: &mut Vec<u8>) -> Result<()> {
        let base = header_base(pdu)?;
        let mut w = Writer::new(pdu);
        w.u16(Self::STRUCTURE_SIZE);
        w.u8(self.oplock_level.0);
        w.u8(self.flags);
        w.u32(self.create_action);
        w.u64(self.creation_time);
        w.u64(self.last_access_time);
        w.u64(self.last_write_time);
        w.u64(self.change_time);
        w.u64(self.allocation_size);
        w.u64(self.end_of_file);
        w.u32(self.file_attributes.0);
        w.u32(0);
        self.file_id.write(&mut w);
        let ctx_off_at = w.reserve_u32();
        let ctx_len_at = w.reserve_u32();
        // Like Samba (and unlike the ERROR body), no pad byte is sent when there are no
        // contexts, although StructureSize 89 counts one.
        if !self.contexts.is_empty() {
            w.align(8);
            let off = off32(w.pos(), base, "CreateContextsOffset")?;
            w.patch_u32(ctx_off_at, off);
            let n = CreateContext::encode_list(&self.contexts, pdu)?;
            Writer::new(pdu).patch_u32(ctx_len_at, to_u32(n, "CreateContextsLength")?);
        }
        Ok(())
    }

    /// Parses a response PDU.
    pub fn parse(pdu: &'a [u8]) -> Result<Self> {
        let mut r = body(
            pdu,
            Command::CREATE,
            Self::STRUCTURE_SIZE,
            "CREATE response",
        )?;
        let oplock_level = OplockLevel(r.u8()?);
        let flags = r.u8()?;
        let create_action = r.u32()?;
        let creation_time = r.u64()?;
        let last_access_time = r.u64()?;
        let last_write_time = r.u64()?;
        let change_time = r.u64()?;
        let allocation_size = r.u64()?;
        let end_of_file = r.u64()?;
        let file_attributes = FileAttributes(r.u32()?);
        r.u32()?;
        let file_id = FileId::read(&mut r)?;
        let ctx_off = r.u32()? as usize;
        let ctx_len = r.u32()? as usize;
        let ctx_buf = slice_at(pdu, ctx_off, ctx_len, r.pos(), "CREATE contexts")?;
        Ok(CreateResponse {
            oplock_level,
            flags,
            create_action,
            creation_time,
            last_access_time,
            last_write_time,
            change_time,
            allocation_size,
            end_of_file,
            file_attributes,
            file_id,
            contexts: CreateContext::parse_list(ctx_buf)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::WireError;
    use crate::msg::create_context::names;
    use crate::msg::test_pdu;

    fn req() -> CreateRequest<'static> {
        CreateRequest {
            security_flags: 0,
            requested_oplock_level: OplockLevel::LEASE,
            impersonation_level: ImpersonationLevel::IMPERSONATION,
            smb_create_flags: 0,
            desired_access: AccessMask::GENERIC_READ,
            file_attributes: FileAttributes::NORMAL,
            share_access: ShareAccess::READ | ShareAccess::WRITE,
            create_disposition: CreateDisposition::OPEN_IF,
            create_options: CreateOptions::NON_DIRECTORY_FILE,
            name: "dir\\file.txt".into(),
            contexts: vec![
                CreateContext::new(names::MX_AC, &[]),
                CreateContext::new(names::QFID, &[]),
            ],
        }
    }

    #[test]
    fn request_round_trip_and_layout() {
        let r = req();
        let pdu = test_pdu(Command::CREATE, false, |v| r.encode(v));
        assert_eq!(&pdu[64 + 44..64 + 46], &[120, 0]);
        let ctx_off = u32::from_le_bytes(pdu[64 + 48..64 + 52].try_into().unwrap());
        assert_eq!(ctx_off % 8, 0);
        assert_eq!(CreateRequest::parse(&pdu).unwrap(), r);
        let root = CreateRequest {
            name: String::new(),
            contexts: vec![],
            ..req()
        };
        let pdu = test_pdu(Command::CREATE, false, |v| root.encode(v));
        assert_eq!(pdu.len(), 64 + 57);
        assert_eq!(CreateRequest::parse(&pdu).unwrap(), root);
    }

    #[test]
    fn request_rejects_bad_name_and_contexts() {
        let pdu = test_pdu(Command::CREATE, false, |v| req().encode(v));
        let mut bad = pdu.clone();
        bad[120..122].copy_from_slice(&[0x00, 0xDC]); // lone low surrogate
        assert_eq!(CreateRequest::parse(&bad), Err(WireError::BadUtf16));
        let mut bad = pdu.clone();
        bad[64 + 52] = 0xFF; // CreateContextsLength past the end
        assert!(CreateRequest::parse(&bad).is_err());
        let mut bad = pdu.clone();
        bad[64 + 44] = 64; // name inside the fixed part
        assert!(matches!(
            CreateRequest::parse(&bad),
            Err(WireError::BadOffset { .. })
        ));
    }

    #[test]
    fn response_round_trip() {
        let mut mxac = Vec::new();
        super::super::create_context::MaximalAccessResponse::default().encode(&mut mxac);
        let resp = CreateResponse {
            oplock_level: OplockLevel::NONE,
            create_action: CreateResponse::ACTION_CREATED,
            end_of_file: 5,
            file_id: FileId::new(1, 1),
            contexts: vec![CreateContext::new(names::MX_AC, &mxac)],
            ..Default::default()
        };
        let pdu = test_pdu(Command::CREATE, true, |v| resp.encode(v));
        assert_eq!(&pdu[64 + 80..64 + 84], &[152, 0, 0, 0]);
        assert_eq!(CreateResponse::parse(&pdu).unwrap(), resp);
        let plain = CreateResponse {
            contexts: vec![],
            ..resp
        };
        let pdu = test_pdu(Command::CREATE, true, |v| plain.encode(v));
        assert_eq!(pdu.len(), 64 + 88);
        assert_eq!(CreateResponse::parse(&pdu).unwrap(), plain);
    }
}
