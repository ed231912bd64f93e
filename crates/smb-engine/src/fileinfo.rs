//! QUERY_INFO answers built from storage metadata ([MS-FSCC] 2.4 file classes, 2.5 filesystem
//! classes). Only the classes the protocol core needs; the rest arrive with the file-operations
//! work, as `smb_wire::fscc` encoders.

use lanshare_vfs::{FsStats, Metadata, to_filetime};
use smb_wire::NtStatus;

use crate::config::EngineConfig;
use crate::error::ProtoResult;
use crate::open::Open;

fn basic(out: &mut Vec<u8>, m: &Metadata) {
    for t in [m.created, m.accessed, m.modified, m.changed] {
        out.extend_from_slice(&to_filetime(t).to_le_bytes());
    }
    out.extend_from_slice(&m.dos_attributes.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
}

fn standard(out: &mut Vec<u8>, m: &Metadata, delete_pending: bool) {
    out.extend_from_slice(&m.alloc_size.to_le_bytes());
    out.extend_from_slice(&m.size.to_le_bytes());
    out.extend_from_slice(&(m.nlink.min(u64::from(u32::MAX)) as u32).to_le_bytes());
    out.push(u8::from(delete_pending));
    out.push(u8::from(m.is_dir));
    out.extend_from_slice(&[0, 0]);
}

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// [MS-FSCC] 2.4: file information classes.
pub(crate) fn file_info(class: u8, open: &Open, m: &Metadata) -> ProtoResult<Vec<u8>> {
    let delete_pending = open
        .delete_on_close
        .load(std::sync::atomic::Ordering::Relaxed);
    let mut out = Vec::with_capacity(128);
    match class {
        4 => basic(&mut out, m),
        5 => standard(&mut out, m, delete_pending),
        6 => out.extend_from_slice(&m.file_id.to_le_bytes()),
        7 => out.extend_from_slice(&0u32.to_le_bytes()),
        8 => out.extend_from_slice(&open.access.to_le_bytes()),
        14 => out.extend_from_slice(&0u64.to_le_bytes()),
        16 => out.extend_from_slice(&0u32.to_le_bytes()),
        17 => out.extend_from_slice(&0u32.to_le_bytes()),
        // FileAllInformation: Basic, Standard, Internal, Ea, Access, Position, Mode, Alignment, Name.
        18 => {
            basic(&mut out, m);
            standard(&mut out, m, delete_pending);
            out.extend_from_slice(&m.file_id.to_le_bytes());
            out.extend_from_slice(&0u32.to_le_bytes());
            out.extend_from_slice(&open.access.to_le_bytes());
            out.extend_from_slice(&0u64.to_le_bytes());
            out.extend_from_slice(&0u32.to_le_bytes());
            out.extend_from_slice(&0u32.to_le_bytes());
            let name = utf16(&format!("\\{}", open.path.to_windows_string()));
            out.extend_from_slice(&(name.len() as u32).to_le_bytes());
            out.extend_from_slice(&name);
        }
        // FileNetworkOpenInformation.
        34 => {
            for t in [m.created, m.accessed, m.modified, m.changed] {
                out.extend_from_slice(&to_filetime(t).to_le_bytes());
            }
            out.extend_from_slice(&m.alloc_size.to_le_bytes());
            out.extend_from_slice(&m.size.to_le_bytes());
            out.extend_from_slice(&m.dos_attributes.to_le_bytes());
            out.extend_from_slice(&0u32.to_le_bytes());
        }
        // FileAttributeTagInformation.
        35 => {
            out.extend_from_slice(&m.dos_attributes.to_le_bytes());
            out.extend_from_slice(&0u32.to_le_bytes());
        }
        _ => return Err(NtStatus::INVALID_INFO_CLASS.into()),
    }
    Ok(out)
}

/// [MS-FSCC] 2.5: filesystem information classes.
pub(crate) fn fs_info(
    class: u8,
    _open: &Open,
    s: &FsStats,
    cfg: &EngineConfig,
) -> ProtoResult<Vec<u8>> {
    let mut out = Vec::with_capacity(64);
    let bytes_per_sector: u32 = 512;
    let sectors_per_unit = (s.block_size / u64::from(bytes_per_sector)).max(1) as u32;
    match class {
        // FileFsVolumeInformation: label = server name; the serial is derived from the GUID.
        1 => {
            let label = utf16(&cfg.server_name);
            out.extend_from_slice(&0u64.to_le_bytes());
            out.extend_from_slice(&cfg.server_guid[..4]);
            out.extend_from_slice(&(label.len() as u32).to_le_bytes());
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(&label);
        }
        // FileFsSizeInformation.
        3 => {
            out.extend_from_slice(&s.total_blocks.to_le_bytes());
            out.extend_from_slice(&s.avail_blocks.to_le_bytes());
            out.extend_from_slice(&sectors_per_unit.to_le_bytes());
            out.extend_from_slice(&bytes_per_sector.to_le_bytes());
        }
        // FileFsDeviceInformation: FILE_DEVICE_DISK, no characteristics.
        4 => {
            out.extend_from_slice(&7u32.to_le_bytes());
            out.extend_from_slice(&0u32.to_le_bytes());
        }
        // FileFsAttributeInformation: case-preserving, unicode names, persistent ACLs not claimed.
        5 => {
            let name = utf16("NTFS");
            out.extend_from_slice(&(0x0000_0002u32 | 0x0000_0004).to_le_bytes());
            out.extend_from_slice(&s.max_name_len.to_le_bytes());
            out.extend_from_slice(&(name.len() as u32).to_le_bytes());
            out.extend_from_slice(&name);
        }
        // FileFsFullSizeInformation.
        7 => {
            out.extend_from_slice(&s.total_blocks.to_le_bytes());
            out.extend_from_slice(&s.avail_blocks.to_le_bytes());
            out.extend_from_slice(&s.free_blocks.to_le_bytes());
            out.extend_from_slice(&sectors_per_unit.to_le_bytes());
            out.extend_from_slice(&bytes_per_sector.to_le_bytes());
        }
        _ => return Err(NtStatus::INVALID_INFO_CLASS.into()),
    }
    Ok(out)
}
