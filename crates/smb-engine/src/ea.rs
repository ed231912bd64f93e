//! Extended attributes ([MS-FSCC] 2.4.15 FILE_FULL_EA_INFORMATION, 2.4.15.1
//! FILE_GET_EA_INFORMATION; [MS-FSA] 2.1.5.12.x / 2.1.5.14.x FileFullEaInformation): kept as
//! lanshare attributes of the file (`user.lanshare.ea.<NAME>` xattrs on LocalFs), the value
//! prefixed with the EA's flags byte.
//!
//! Names are ASCII, at most 255 bytes, without the characters Windows refuses in EA names;
//! NTFS upper-cases them, and so do we (names are matched ignoring case). An EA set with an
//! empty value is removed. The whole list of a file is capped at 64 KiB, the largest list the
//! protocol can carry back (EaValueLength is 16-bit and Windows caps the list there too).

use lanshare_vfs::{VfsError, VfsHandle};
use smb_wire::NtStatus;
use smb_wire::fscc::{FullEa, encode_full_ea, parse_full_ea};

const PREFIX: &str = "ea.";
/// FILE_NEED_EA: the only flag an EA may carry.
const NEED_EA: u8 = 0x80;
/// Largest total of one file's EA list, encoded.
const MAX_LIST: usize = 65_535;

/// One stored EA: upper-cased name, flags, value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ea {
    pub name: String,
    pub flags: u8,
    pub value: Vec<u8>,
}

/// Characters an EA name may not hold ([MS-FSCC] 2.4.15: as for file names, plus control
/// characters; Windows answers STATUS_INVALID_EA_NAME).
fn valid_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name
            .iter()
            .all(|&c| c > 0x1F && c < 0x7F && !b"\"*/:<>?\\|+,;=[]".contains(&c))
}

/// The EAs of a file, sorted by name. None when the back-end keeps no attributes.
pub(crate) fn read_all(h: &dyn VfsHandle) -> Result<Vec<Ea>, VfsError> {
    let names = match h.list_attrs() {
        Ok(n) => n,
        Err(VfsError::NotSupported) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for a in names {
        let Some(name) = a.strip_prefix(PREFIX) else {
            continue;
        };
        if let Some(v) = h.get_attr(&a)?
            && let Some((&flags, value)) = v.split_first()
        {
            out.push(Ea {
                name: name.to_owned(),
                flags,
                value: value.to_vec(),
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn encode(eas: &[Ea]) -> Result<Vec<u8>, NtStatus> {
    let list: Vec<FullEa<'_>> = eas
        .iter()
        .map(|e| FullEa {
            flags: e.flags,
            name: e.name.as_bytes(),
            value: &e.value,
        })
        .collect();
    let mut out = Vec::new();
    encode_full_ea(&list, &mut out).map_err(|_| NtStatus::EA_TOO_LARGE)?;
    Ok(out)
}

/// FileEaInformation.EaSize ([MS-FSCC] 2.4.13): the size of the file's EA list as
/// FILE_FULL_EA_INFORMATION; 0 without EAs.
pub(crate) fn ea_size(h: &dyn VfsHandle) -> u32 {
    match read_all(h) {
        Ok(eas) if !eas.is_empty() => encode(&eas).map(|v| v.len() as u32).unwrap_or(0),
        _ => 0,
    }
}

/// Checks a FILE_FULL_EA_INFORMATION list from a client (SET_INFO or the ExtA context).
pub(crate) fn parse(buf: &[u8]) -> Result<Vec<Ea>, NtStatus> {
    let list = parse_full_ea(buf).map_err(|_| NtStatus::EA_LIST_INCONSISTENT)?;
    let mut out = Vec::with_capacity(list.len());
    for e in list {
        if !valid_name(e.name) {
            return Err(NtStatus::INVALID_EA_NAME);
        }
        if e.flags & !NEED_EA != 0 {
            return Err(NtStatus::INVALID_PARAMETER);
        }
        out.push(Ea {
            name: String::from_utf8_lossy(e.name).to_ascii_uppercase(),
            flags: e.flags,
            value: e.value.to_vec(),
        });
    }
    Ok(out)
}

/// [MS-FSA] 2.1.5.14 FileFullEaInformation: sets (or, with an empty value, removes) each EA.
/// The result may not exceed the list limit (STATUS_EA_TOO_LARGE); a back-end without
/// attribute storage is STATUS_EAS_NOT_SUPPORTED.
pub(crate) fn apply(h: &dyn VfsHandle, set: &[Ea]) -> Result<(), NtStatus> {
    let status = |e: VfsError| match e {
        VfsError::NotSupported => NtStatus::EAS_NOT_SUPPORTED,
        VfsError::FileTooLarge | VfsError::NoSpace => {
            tracing::warn!(
                "extended attributes not stored: the filesystem refused the xattr (ext4 \
                 without ea_inode holds about one block of xattrs per file)"
            );
            NtStatus::EA_TOO_LARGE
        }
        e => crate::open::vfs_status(&e),
    };
    let mut all = read_all(h).map_err(status)?;
    for e in set {
        all.retain(|x| x.name != e.name);
        if !e.value.is_empty() {
            all.push(e.clone());
        }
    }
    if encode(&all)?.len() > MAX_LIST {
        return Err(NtStatus::EA_TOO_LARGE);
    }
    for e in set {
        let key = format!("{PREFIX}{}", e.name);
        if e.value.is_empty() {
            match h.remove_attr(&key) {
                Ok(()) | Err(VfsError::NotFound) => {}
                Err(err) => return Err(status(err)),
            }
        } else {
            let mut v = Vec::with_capacity(e.value.len() + 1);
            v.push(e.flags);
            v.extend_from_slice(&e.value);
            h.set_attr(&key, &v).map_err(status)?;
        }
    }
    Ok(())
}

/// FILE_GET_EA_INFORMATION ([MS-FSCC] 2.4.15.1): NextEntryOffset, EaNameLength, EaName, NUL.
fn parse_get_list(buf: &[u8]) -> Result<Vec<String>, NtStatus> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos < buf.len() {
        let head = buf
            .get(pos..pos + 5)
            .ok_or(NtStatus::EA_LIST_INCONSISTENT)?;
        let next = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let len = usize::from(head[4]);
        let name = buf
            .get(pos + 5..pos + 5 + len)
            .ok_or(NtStatus::EA_LIST_INCONSISTENT)?;
        if !valid_name(name) {
            return Err(NtStatus::INVALID_EA_NAME);
        }
        out.push(String::from_utf8_lossy(name).to_ascii_uppercase());
        if next == 0 {
            break;
        }
        pos = pos
            .checked_add(next)
            .ok_or(NtStatus::EA_LIST_INCONSISTENT)?;
    }
    Ok(out)
}

/// QUERY_INFO FileFullEaInformation ([MS-SMB2] 3.3.5.20.1, [MS-FSA] 2.1.5.12.x): the EAs
/// named in `input` (an absent one comes back with an empty value), or all of them; as many
/// whole entries as fit in `max` (STATUS_BUFFER_OVERFLOW when some are left out,
/// STATUS_BUFFER_TOO_SMALL when none fits), STATUS_NO_EAS_ON_FILE when the file has none.
pub(crate) fn query(
    h: &dyn VfsHandle,
    input: &[u8],
    single: bool,
    max: usize,
) -> Result<(Vec<u8>, NtStatus), NtStatus> {
    let all = read_all(h).map_err(|e| crate::open::vfs_status(&e))?;
    let mut chosen = if input.is_empty() {
        if all.is_empty() {
            return Err(NtStatus::NO_EAS_ON_FILE);
        }
        all
    } else {
        parse_get_list(input)?
            .into_iter()
            .map(|name| {
                all.iter().find(|e| e.name == name).cloned().unwrap_or(Ea {
                    name,
                    flags: 0,
                    value: Vec::new(),
                })
            })
            .collect()
    };
    if single {
        chosen.truncate(1);
    }
    let full = encode(&chosen)?;
    if full.len() <= max {
        return Ok((full, NtStatus::SUCCESS));
    }
    for n in (1..chosen.len()).rev() {
        let part = encode(&chosen[..n])?;
        if part.len() <= max {
            return Ok((part, NtStatus::BUFFER_OVERFLOW));
        }
    }
    Err(NtStatus::BUFFER_TOO_SMALL)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lanshare_vfs::{CreateMode, MemFs, OpenOptions, Vfs, VfsPath};

    fn handle() -> Box<dyn VfsHandle> {
        let fs = MemFs::new();
        let (h, _) = fs
            .open(
                &VfsPath::parse("f").unwrap(),
                &OpenOptions::read_write(CreateMode::Create),
            )
            .unwrap();
        h
    }

    fn list(eas: &[(&str, &[u8])]) -> Vec<u8> {
        let l: Vec<FullEa<'_>> = eas
            .iter()
            .map(|(n, v)| FullEa {
                flags: 0,
                name: n.as_bytes(),
                value: v,
            })
            .collect();
        let mut out = Vec::new();
        encode_full_ea(&l, &mut out).unwrap();
        out
    }

    #[test]
    fn set_query_remove() {
        let h = handle();
        assert_eq!(ea_size(&*h), 0);
        assert_eq!(
            query(&*h, &[], false, 4096).unwrap_err(),
            NtStatus::NO_EAS_ON_FILE
        );
        let set = parse(&list(&[("user.one", b"1"), ("Two", b"second")])).unwrap();
        apply(&*h, &set).unwrap();
        let all = read_all(&*h).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].name, "TWO");
        assert_eq!(all[1].name, "USER.ONE");
        let (buf, st) = query(&*h, &[], false, 4096).unwrap();
        assert_eq!(st, NtStatus::SUCCESS);
        assert_eq!(buf.len() as u32, ea_size(&*h));
        let back = parse_full_ea(&buf).unwrap();
        assert_eq!(back[0].name, b"TWO");
        assert_eq!(back[0].value, b"second");
        // A buffer for one entry only.
        let (part, st) = query(&*h, &[], false, 20).unwrap();
        assert_eq!(st, NtStatus::BUFFER_OVERFLOW);
        assert_eq!(parse_full_ea(&part).unwrap().len(), 1);
        assert_eq!(
            query(&*h, &[], false, 4).unwrap_err(),
            NtStatus::BUFFER_TOO_SMALL
        );
        // By name, ignoring case; a missing one comes back empty.
        let mut get = Vec::new();
        get.extend_from_slice(&12u32.to_le_bytes());
        get.push(3);
        get.extend_from_slice(b"two\0");
        get.extend_from_slice(&[0, 0, 0]);
        get.extend_from_slice(&0u32.to_le_bytes());
        get.push(4);
        get.extend_from_slice(b"nope\0");
        let (buf, _) = query(&*h, &get, false, 4096).unwrap();
        let back = parse_full_ea(&buf).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[0].value, b"second");
        assert_eq!(back[1].name, b"NOPE");
        assert!(back[1].value.is_empty());
        // An empty value removes.
        apply(&*h, &parse(&list(&[("TWO", b"")])).unwrap()).unwrap();
        assert_eq!(read_all(&*h).unwrap().len(), 1);
    }

    #[test]
    fn bad_names_and_sizes() {
        assert_eq!(
            parse(&list(&[("a*b", b"1")])).unwrap_err(),
            NtStatus::INVALID_EA_NAME
        );
        assert_eq!(
            parse(&list(&[("", b"1")])).unwrap_err(),
            NtStatus::INVALID_EA_NAME
        );
        assert!(parse(&[1, 2, 3]).is_err());
        let h = handle();
        let big = vec![7u8; 40_000];
        apply(&*h, &parse(&list(&[("A", &big)])).unwrap()).unwrap();
        assert_eq!(
            apply(&*h, &parse(&list(&[("B", &big)])).unwrap()).unwrap_err(),
            NtStatus::EA_TOO_LARGE
        );
    }
}
