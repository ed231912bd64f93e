//! FILE_NOTIFY_INFORMATION ([MS-FSCC] 2.7.1), the entries of a CHANGE_NOTIFY response.

use crate::codec::{Writer, align_up, to_u32};
use crate::error::{Result, WireError};
use crate::utf16;

wire_enum! {
    /// FILE_NOTIFY_INFORMATION Action ([MS-FSCC] 2.7.1).
    pub struct NotifyAction(u32);
    prefix = "FILE_ACTION_";
    ADDED = 0x0000_0001,
    REMOVED = 0x0000_0002,
    MODIFIED = 0x0000_0003,
    RENAMED_OLD_NAME = 0x0000_0004,
    RENAMED_NEW_NAME = 0x0000_0005,
    ADDED_STREAM = 0x0000_0006,
    REMOVED_STREAM = 0x0000_0007,
    MODIFIED_STREAM = 0x0000_0008,
    REMOVED_BY_DELETE = 0x0000_0009,
    ID_NOT_TUNNELLED = 0x0000_000A,
    TUNNELLED_ID_COLLISION = 0x0000_000B,
}

/// Fixed part of an entry: NextEntryOffset, Action, FileNameLength.
const FIXED: usize = 12;
/// Entries are 4-byte aligned.
const ALIGN: usize = 4;

/// Appends FILE_NOTIFY_INFORMATION entries without exceeding `max_len` bytes (the request's
/// OutputBufferLength). Returns `Ok(false)` and leaves `out` unchanged if they do not all fit:
/// the caller then answers STATUS_NOTIFY_ENUM_DIR, as [MS-SMB2] 3.3.4.4 prescribes.
pub fn encode_notify(
    changes: &[(NotifyAction, &str)],
    max_len: usize,
    out: &mut Vec<u8>,
) -> Result<bool> {
    let mut total = 0usize;
    for (i, (_, name)) in changes.iter().enumerate() {
        if i > 0 {
            total = align_up(total, ALIGN);
        }
        total += FIXED + utf16::encoded_len(name);
    }
    if total > max_len {
        return Ok(false);
    }
    let start = out.len();
    let mut prev: Option<usize> = None;
    for (action, name) in changes {
        let mut w = Writer::new(out);
        if prev.is_some() {
            w.align_from(start, ALIGN);
        }
        let at = w.pos();
        if let Some(p) = prev {
            w.patch_u32(p, to_u32(at - p, "NextEntryOffset")?);
        }
        w.u32(0);
        w.u32(action.0);
        w.u32(to_u32(utf16::encoded_len(name), "FileNameLength")?);
        utf16::encode_into(name, out);
        prev = Some(at);
    }
    Ok(true)
}

/// Decodes FILE_NOTIFY_INFORMATION entries.
pub fn parse_notify(buf: &[u8]) -> Result<Vec<(NotifyAction, String)>> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos < buf.len() {
        let mut r = crate::codec::Reader::at(buf, pos, "FILE_NOTIFY_INFORMATION")?;
        let next = r.u32()? as usize;
        let action = NotifyAction(r.u32()?);
        let len = r.u32()? as usize;
        out.push((action, utf16::decode(r.bytes(len)?)?));
        if next == 0 {
            break;
        }
        pos = pos.checked_add(next).ok_or(WireError::BadOffset {
            what: "NextEntryOffset",
        })?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_alignment_and_limit() {
        let changes = [
            (NotifyAction::RENAMED_OLD_NAME, "a"),
            (NotifyAction::RENAMED_NEW_NAME, "bcd"),
        ];
        let mut v = Vec::new();
        // 12 + 2 = 14 -> 16; 16 + 12 + 6 = 34
        assert!(!encode_notify(&changes, 33, &mut v).unwrap());
        assert!(v.is_empty());
        assert!(encode_notify(&changes, 34, &mut v).unwrap());
        assert_eq!(v.len(), 34);
        assert_eq!(&v[0..4], &[16, 0, 0, 0]);
        assert_eq!(&v[4..8], &[4, 0, 0, 0]);
        let parsed = parse_notify(&v).unwrap();
        assert_eq!(
            parsed,
            vec![
                (NotifyAction::RENAMED_OLD_NAME, "a".into()),
                (NotifyAction::RENAMED_NEW_NAME, "bcd".into())
            ]
        );
    }
}
