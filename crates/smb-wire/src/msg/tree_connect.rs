//! TREE_CONNECT ([MS-SMB2] 2.2.9 request, 2.2.9.1 request extension, 2.2.10 response).

use crate::codec::{Reader, Writer, slice_at, to_u16};
use crate::error::{Result, WireError};
use crate::types::{AccessMask, Command, ShareCaps, ShareFlags, ShareType, TreeConnectFlags};
use crate::utf16;

use super::{BODY, body, header_base, off16, off32};

/// Size of the fixed part of the request extension before PathName ([MS-SMB2] 2.2.9.1).
const EXTENSION_FIXED: usize = 16;

/// TREE_CONNECT request ([MS-SMB2] 2.2.9).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TreeConnectRequest<'a> {
    /// Flags (3.1.1; reserved before).
    pub flags: TreeConnectFlags,
    /// The share path, `\\server\share`, decoded from UTF-16LE.
    pub path: String,
    /// With EXTENSION_PRESENT: the count and raw bytes of the tree connect contexts
    /// ([MS-SMB2] 2.2.9.2), from TreeConnectContextOffset to the end of the PDU.
    pub contexts: Option<(u16, &'a [u8])>,
}

impl<'a> TreeConnectRequest<'a> {
    /// StructureSize of the request.
    pub const STRUCTURE_SIZE: u16 = 9;

    /// Parses the request PDU.
    ///
    /// With EXTENSION_PRESENT the buffer starts with the extension and PathName lives inside
    /// it. Windows places PathOffset relative to the header like every other offset, but the
    /// spec text is ambiguous, so an offset relative to the extension start is accepted too.
    pub fn parse(pdu: &'a [u8]) -> Result<Self> {
        let mut r = body(
            pdu,
            Command::TREE_CONNECT,
            Self::STRUCTURE_SIZE,
            "TREE_CONNECT request",
        )?;
        let flags = TreeConnectFlags(r.u16()?);
        let path_off = usize::from(r.u16()?);
        let path_len = usize::from(r.u16()?);
        let fixed_end = r.pos();
        let mut contexts = None;
        let path_bytes = if flags.contains(TreeConnectFlags::EXTENSION_PRESENT) {
            let ext_start = fixed_end;
            let mut e = Reader::at(pdu, ext_start, "TREE_CONNECT request extension")?;
            let ctx_off = e.u32()? as usize;
            let ctx_count = e.u16()?;
            e.skip(10)?;
            let path_min = ext_start + EXTENSION_FIXED;
            let path = slice_at(pdu, path_off, path_len, path_min, "TREE_CONNECT PathName")
                .or_else(|_| {
                    slice_at(
                        pdu,
                        ext_start + path_off,
                        path_len,
                        path_min,
                        "TREE_CONNECT PathName",
                    )
                })?;
            if ctx_count > 0 {
                let ctx = pdu.get(ctx_off..).filter(|_| ctx_off >= path_min);
                let ctx = ctx.ok_or(WireError::BadOffset {
                    what: "TreeConnectContextOffset",
                })?;
                contexts = Some((ctx_count, ctx));
            } else {
                contexts = Some((0, &[][..]));
            }
            path
        } else {
            slice_at(pdu, path_off, path_len, fixed_end, "TREE_CONNECT Path")?
        };
        let path = utf16::decode(path_bytes)?;
        Ok(TreeConnectRequest {
            flags,
            path,
            contexts,
        })
    }

    /// Appends the body. With EXTENSION_PRESENT in `flags` an extension is written with the
    /// path inside it (offsets relative to the header) and the contexts after it, 8-aligned.
    pub fn encode(&self, pdu: &mut Vec<u8>) -> Result<()> {
        let base = header_base(pdu)?;
        let path = utf16::encode(&self.path);
        let mut w = Writer::new(pdu);
        w.u16(Self::STRUCTURE_SIZE);
        w.u16(self.flags.0);
        let off_at = w.reserve_u16();
        w.u16(to_u16(path.len(), "PathLength")?);
        if self.flags.contains(TreeConnectFlags::EXTENSION_PRESENT) {
            let ctx_off_at = w.reserve_u32();
            let (count, raw) = self.contexts.unwrap_or((0, &[]));
            w.u16(count);
            w.zeros(10);
            let off = off16(w.pos(), base, "PathOffset")?;
            w.patch_u16(off_at, off);
            w.bytes(&path);
            if count > 0 {
                w.align(8);
                let off = off32(w.pos(), base, "TreeConnectContextOffset")?;
                w.patch_u32(ctx_off_at, off);
                w.bytes(raw);
            }
        } else {
            let off = off16(w.pos(), base, "PathOffset")?;
            w.patch_u16(off_at, off);
            w.bytes(&path);
        }
        Ok(())
    }
}

/// TREE_CONNECT response ([MS-SMB2] 2.2.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TreeConnectResponse {
    /// ShareType.
    pub share_type: ShareType,
    /// ShareFlags.
    pub share_flags: ShareFlags,
    /// Capabilities.
    pub capabilities: ShareCaps,
    /// MaximalAccess of the user on the share.
    pub maximal_access: AccessMask,
}

impl TreeConnectResponse {
    /// StructureSize of the response.
    pub const STRUCTURE_SIZE: u16 = 16;

    /// Appends the body.
    pub fn encode(&self, pdu: &mut Vec<u8>) -> Result<()> {
        header_base(pdu)?;
        let mut w = Writer::new(pdu);
        w.u16(Self::STRUCTURE_SIZE);
        w.u8(self.share_type.0);
        w.u8(0);
        w.u32(self.share_flags.0);
        w.u32(self.capabilities.0);
        w.u32(self.maximal_access.0);
        Ok(())
    }

    /// Parses a response PDU.
    pub fn parse(pdu: &[u8]) -> Result<Self> {
        let mut r = body(
            pdu,
            Command::TREE_CONNECT,
            Self::STRUCTURE_SIZE,
            "TREE_CONNECT response",
        )?;
        let share_type = ShareType(r.u8()?);
        r.u8()?;
        Ok(TreeConnectResponse {
            share_type,
            share_flags: ShareFlags(r.u32()?),
            capabilities: ShareCaps(r.u32()?),
            maximal_access: AccessMask(r.u32()?),
        })
    }
}

/// Offset of the path in a plain request: header + 8 fixed bytes.
pub const PLAIN_PATH_OFFSET: usize = BODY + 8;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::test_pdu;

    #[test]
    fn request_round_trip_plain() {
        let req = TreeConnectRequest {
            flags: TreeConnectFlags::empty(),
            path: "\\\\127.0.0.1\\IPC$".into(),
            contexts: None,
        };
        let pdu = test_pdu(Command::TREE_CONNECT, false, |v| req.encode(v));
        assert_eq!(&pdu[64..70], &[9, 0, 0, 0, 72, 0]);
        assert_eq!(TreeConnectRequest::parse(&pdu).unwrap(), req);
    }

    #[test]
    fn request_with_extension_both_offset_styles() {
        let req = TreeConnectRequest {
            flags: TreeConnectFlags::EXTENSION_PRESENT,
            path: "\\\\srv\\share".into(),
            contexts: Some((1, &[1, 0, 4, 0, 0, 0, 0, 0, 1, 2, 3, 4])),
        };
        let pdu = test_pdu(Command::TREE_CONNECT, false, |v| req.encode(v));
        assert_eq!(&pdu[68..70], &[88, 0]);
        assert_eq!(TreeConnectRequest::parse(&pdu).unwrap(), req);
        // PathOffset relative to the extension start (72): 88 - 72 = 16
        let mut alt = pdu.clone();
        alt[68] = 16;
        assert_eq!(
            TreeConnectRequest::parse(&alt).unwrap().path,
            "\\\\srv\\share"
        );
    }

    #[test]
    fn request_rejects_bad_path() {
        let req = TreeConnectRequest {
            flags: TreeConnectFlags::empty(),
            path: "\\\\a\\b".into(),
            contexts: None,
        };
        let pdu = test_pdu(Command::TREE_CONNECT, false, |v| req.encode(v));
        let mut odd = pdu.clone();
        odd[70] = 7;
        assert_eq!(TreeConnectRequest::parse(&odd), Err(WireError::BadUtf16));
        let mut lone = pdu.clone();
        lone[72..74].copy_from_slice(&[0x00, 0xD8]);
        assert_eq!(TreeConnectRequest::parse(&lone), Err(WireError::BadUtf16));
        let mut past = pdu.clone();
        past[70] = 100;
        assert!(matches!(
            TreeConnectRequest::parse(&past),
            Err(WireError::BadOffset { .. })
        ));
    }

    #[test]
    fn response_round_trip_and_bytes() {
        let resp = TreeConnectResponse {
            share_type: ShareType::DISK,
            share_flags: ShareFlags::ENCRYPT_DATA,
            capabilities: ShareCaps::empty(),
            maximal_access: AccessMask::FILE_ALL_ACCESS,
        };
        let pdu = test_pdu(Command::TREE_CONNECT, true, |v| resp.encode(v));
        assert_eq!(
            &pdu[64..],
            &[16, 0, 1, 0, 0, 0x80, 0, 0, 0, 0, 0, 0, 0xFF, 0x01, 0x1F, 0]
        );
        assert_eq!(TreeConnectResponse::parse(&pdu).unwrap(), resp);
    }
}
