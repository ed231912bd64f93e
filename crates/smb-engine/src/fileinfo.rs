//! [MS-FSCC] encoders for what QUERY_INFO and QUERY_DIRECTORY return: file information
//! classes (2.4), filesystem information classes (2.5) and directory entries (2.4.8 ff.).
//!
//! Each encoder appends the full structure and says how many bytes a client buffer must at
//! least hold (the fixed part, per class). The handlers apply [MS-SMB2] 3.3.5.20.1's buffer
//! rules with it: smaller than the fixed part is STATUS_INFO_LENGTH_MISMATCH, smaller than the
//! whole is STATUS_BUFFER_OVERFLOW with the data cut to fit.
//!
//! They stay here until `smb_wire::fscc` carries them; then this module shrinks to the
//! mapping from storage metadata to those types.

use lanshare_vfs::{FsStats, Metadata, to_filetime};
use smb_wire::{FileInfoClass, FsInfoClass, NtStatus};

use crate::names::short_name;

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

fn u16le(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn u32le(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn u64le(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn times(out: &mut Vec<u8>, m: &Metadata) {
    for t in [m.created, m.accessed, m.modified, m.changed] {
        u64le(out, to_filetime(t));
    }
}

/// The attributes reported for an object: what storage keeps, REPARSE_POINT for a symlink
/// that could not be followed, NORMAL alone when nothing else is set.
pub(crate) fn attributes(m: &Metadata) -> u32 {
    let mut a = m.dos_attributes;
    if m.is_symlink {
        a |= 0x400;
    }
    if a & !0x80 != 0 { a & !0x80 } else { 0x80 }
}

/// Allocation size as SMB reports it: directories report 0 like NTFS, files what is on disk.
pub(crate) fn allocation(m: &Metadata) -> u64 {
    if m.is_dir { 0 } else { m.alloc_size }
}

fn nlink(m: &Metadata) -> u32 {
    m.nlink.min(u64::from(u32::MAX)) as u32
}

/// What the file classes need besides the metadata.
pub(crate) struct OpenView<'a> {
    /// Open.GrantedAccess.
    pub access: u32,
    /// FilePositionInformation.CurrentByteOffset.
    pub position: u64,
    /// FileModeInformation: the create options that persist on the open.
    pub mode: u32,
    pub delete_pending: bool,
    /// The path from the share root, as the file's name is reported (`\dir\file`).
    pub name: &'a str,
    /// The last component (for the 8.3 name); empty for the share root.
    pub leaf: &'a str,
}

/// Bits of CreateOptions reported by FileModeInformation ([MS-FSCC] 2.4.31).
pub(crate) const MODE_BITS: u32 = 0x0000_0002 | 0x0000_0004 | 0x0000_0008 | 0x10 | 0x20 | 0x1000;

fn basic(out: &mut Vec<u8>, m: &Metadata) {
    times(out, m);
    u32le(out, attributes(m));
    u32le(out, 0);
}

fn standard(out: &mut Vec<u8>, m: &Metadata, delete_pending: bool) {
    u64le(out, allocation(m));
    u64le(out, if m.is_dir { 0 } else { m.size });
    u32le(out, nlink(m));
    out.push(u8::from(delete_pending));
    out.push(u8::from(m.is_dir));
    u16le(out, 0);
}

/// [MS-FSCC] 2.4: one file information class. `Ok((bytes, minimum))`; classes lanshare does
/// not answer are STATUS_INVALID_INFO_CLASS (named pipe classes are STATUS_NOT_SUPPORTED the
/// way Windows answers them on a disk share; FileNormalizedNameInformation's 3.1.1 rule is
/// the caller's).
pub(crate) fn file_info(
    class: FileInfoClass,
    o: &OpenView<'_>,
    m: &Metadata,
) -> Result<(Vec<u8>, usize), NtStatus> {
    let mut out = Vec::with_capacity(128);
    let min = match class {
        FileInfoClass::BASIC => {
            basic(&mut out, m);
            40
        }
        FileInfoClass::STANDARD => {
            standard(&mut out, m, o.delete_pending);
            24
        }
        FileInfoClass::INTERNAL => {
            u64le(&mut out, m.file_id);
            8
        }
        FileInfoClass::EA => {
            u32le(&mut out, 0);
            4
        }
        FileInfoClass::ACCESS => {
            u32le(&mut out, o.access);
            4
        }
        FileInfoClass::POSITION => {
            u64le(&mut out, o.position);
            8
        }
        FileInfoClass::MODE => {
            u32le(&mut out, o.mode);
            4
        }
        FileInfoClass::ALIGNMENT => {
            // FILE_BYTE_ALIGNMENT: buffers need no alignment.
            u32le(&mut out, 0);
            4
        }
        // Basic, Standard, Internal, Ea, Access, Position, Mode, Alignment, Name.
        FileInfoClass::ALL => {
            basic(&mut out, m);
            standard(&mut out, m, o.delete_pending);
            u64le(&mut out, m.file_id);
            u32le(&mut out, 0);
            u32le(&mut out, o.access);
            u64le(&mut out, o.position);
            u32le(&mut out, o.mode);
            u32le(&mut out, 0);
            let name = utf16(o.name);
            u32le(&mut out, name.len() as u32);
            out.extend_from_slice(&name);
            104
        }
        FileInfoClass::ALTERNATE_NAME => {
            let name = if o.leaf.is_empty() {
                Vec::new()
            } else {
                utf16(&short_name(o.leaf))
            };
            u32le(&mut out, name.len() as u32);
            out.extend_from_slice(&name);
            8
        }
        // One entry, the unnamed data stream, for files; directories have no data stream.
        FileInfoClass::STREAM => {
            if !m.is_dir {
                let name = utf16("::$DATA");
                u32le(&mut out, 0);
                u32le(&mut out, name.len() as u32);
                u64le(&mut out, m.size);
                u64le(&mut out, m.alloc_size);
                out.extend_from_slice(&name);
            }
            32
        }
        FileInfoClass::COMPRESSION => {
            u64le(&mut out, if m.is_dir { 0 } else { m.size });
            u16le(&mut out, 0); // COMPRESSION_FORMAT_NONE
            out.extend_from_slice(&[0, 0, 0]); // unit, chunk, cluster shifts
            out.extend_from_slice(&[0, 0, 0]);
            16
        }
        FileInfoClass::NETWORK_OPEN => {
            times(&mut out, m);
            u64le(&mut out, allocation(m));
            u64le(&mut out, if m.is_dir { 0 } else { m.size });
            u32le(&mut out, attributes(m));
            u32le(&mut out, 0);
            56
        }
        FileInfoClass::ATTRIBUTE_TAG => {
            u32le(&mut out, attributes(m));
            u32le(&mut out, 0);
            8
        }
        // Extended attributes are not stored: the list is empty.
        FileInfoClass::FULL_EA => 0,
        FileInfoClass::NORMALIZED_NAME => {
            let name = utf16(o.name.trim_start_matches('\\'));
            u32le(&mut out, name.len() as u32);
            out.extend_from_slice(&name);
            8
        }
        // FileIdInformation: VolumeSerialNumber, then a 128-bit id (the inode, widened).
        FileInfoClass::ID => {
            u64le(&mut out, m.dev);
            u64le(&mut out, m.file_id);
            u64le(&mut out, 0);
            24
        }
        FileInfoClass::PIPE | FileInfoClass::PIPE_LOCAL | FileInfoClass::PIPE_REMOTE => {
            return Err(NtStatus::INVALID_PARAMETER);
        }
        _ => return Err(NtStatus::INVALID_INFO_CLASS),
    };
    Ok((out, min))
}

/// What the filesystem classes need.
pub(crate) struct VolumeView<'a> {
    pub stats: &'a FsStats,
    /// Reported as the volume label (the share name, as Samba does).
    pub label: &'a str,
    /// VolumeSerialNumber.
    pub serial: u32,
    /// VolumeCreationTime (FILETIME).
    pub created: u64,
    /// For FileFsObjectIdInformation.
    pub object_id: [u8; 16],
    pub case_sensitive: bool,
}

/// [MS-FSCC] 2.5: one filesystem information class.
pub(crate) fn fs_info(
    class: FsInfoClass,
    v: &VolumeView<'_>,
) -> Result<(Vec<u8>, usize), NtStatus> {
    let s = v.stats;
    let mut out = Vec::with_capacity(64);
    let bytes_per_sector: u32 = 512;
    let sectors_per_unit =
        (s.block_size / u64::from(bytes_per_sector)).clamp(1, u64::from(u32::MAX)) as u32;
    let min = match class {
        FsInfoClass::VOLUME => {
            let label = utf16(v.label);
            u64le(&mut out, v.created);
            u32le(&mut out, v.serial);
            u32le(&mut out, label.len() as u32);
            out.push(0); // SupportsObjects
            out.push(0);
            out.extend_from_slice(&label);
            24
        }
        FsInfoClass::SIZE => {
            u64le(&mut out, s.total_blocks);
            u64le(&mut out, s.avail_blocks);
            u32le(&mut out, sectors_per_unit);
            u32le(&mut out, bytes_per_sector);
            24
        }
        // FILE_DEVICE_DISK, no characteristics.
        FsInfoClass::DEVICE => {
            u32le(&mut out, 7);
            u32le(&mut out, 0);
            8
        }
        FsInfoClass::ATTRIBUTE => {
            // FILE_CASE_PRESERVED_NAMES | FILE_UNICODE_ON_DISK, and
            // FILE_CASE_SENSITIVE_SEARCH when the share compares names exactly.
            let mut flags = 0x2 | 0x4;
            if v.case_sensitive {
                flags |= 0x1;
            }
            let name = utf16("NTFS");
            u32le(&mut out, flags);
            u32le(&mut out, s.max_name_len.min(255));
            u32le(&mut out, name.len() as u32);
            out.extend_from_slice(&name);
            16
        }
        // FileFsControlInformation: quotas are neither tracked nor enforced.
        FsInfoClass::CONTROL => {
            u64le(&mut out, 0);
            u64le(&mut out, 0);
            u64le(&mut out, 0);
            u64le(&mut out, u64::MAX);
            u64le(&mut out, u64::MAX);
            u32le(&mut out, 0);
            u32le(&mut out, 0);
            48
        }
        FsInfoClass::FULL_SIZE => {
            u64le(&mut out, s.total_blocks);
            u64le(&mut out, s.avail_blocks);
            u64le(&mut out, s.free_blocks);
            u32le(&mut out, sectors_per_unit);
            u32le(&mut out, bytes_per_sector);
            32
        }
        FsInfoClass::OBJECT_ID => {
            out.extend_from_slice(&v.object_id);
            out.extend_from_slice(&[0u8; 48]);
            64
        }
        FsInfoClass::SECTOR_SIZE => {
            for _ in 0..4 {
                u32le(&mut out, bytes_per_sector);
            }
            // SSINFO_FLAGS_ALIGNED_DEVICE | SSINFO_FLAGS_PARTITION_ALIGNED_ON_DEVICE
            u32le(&mut out, 0x1 | 0x2);
            u32le(&mut out, 0);
            u32le(&mut out, 0);
            28
        }
        _ => return Err(NtStatus::INVALID_INFO_CLASS),
    };
    Ok((out, min))
}

/// The directory-listing classes QUERY_DIRECTORY answers.
pub(crate) fn dir_class_supported(class: FileInfoClass) -> bool {
    matches!(
        class,
        FileInfoClass::DIRECTORY
            | FileInfoClass::FULL_DIRECTORY
            | FileInfoClass::BOTH_DIRECTORY
            | FileInfoClass::NAMES
            | FileInfoClass::ID_BOTH_DIRECTORY
            | FileInfoClass::ID_FULL_DIRECTORY
            | FileInfoClass::ID_EXTD_DIRECTORY
            | FileInfoClass::ID_EXTD_BOTH_DIRECTORY
    )
}

fn short_name_field(out: &mut Vec<u8>, name: &str) {
    let short = if name == "." || name == ".." {
        Vec::new()
    } else {
        utf16(&short_name(name))
    };
    // 12 characters at most by construction; the field holds 24 bytes.
    let len = short.len().min(24);
    out.push(len as u8);
    out.push(0);
    out.extend_from_slice(short.get(..len).unwrap_or_default());
    out.resize(out.len() + (24 - len), 0);
}

/// Appends one directory entry of `class` with NextEntryOffset 0 (the caller chains them):
/// [MS-FSCC] 2.4.10 FileDirectoryInformation, 2.4.14 FileFullDirectoryInformation,
/// 2.4.8 FileBothDirectoryInformation, 2.4.28 FileNamesInformation,
/// 2.4.17 FileIdBothDirectoryInformation, 2.4.18 FileIdFullDirectoryInformation,
/// 2.4.19 FileIdExtdDirectoryInformation, 2.4.20 FileIdExtdBothDirectoryInformation.
pub(crate) fn dir_entry(class: FileInfoClass, name: &str, m: &Metadata, out: &mut Vec<u8>) {
    let name16 = utf16(name);
    u32le(out, 0); // NextEntryOffset
    u32le(out, 0); // FileIndex: NTFS has none worth reporting
    if class == FileInfoClass::NAMES {
        u32le(out, name16.len() as u32);
        out.extend_from_slice(&name16);
        return;
    }
    times(out, m);
    u64le(out, if m.is_dir { 0 } else { m.size });
    u64le(out, allocation(m));
    u32le(out, attributes(m));
    u32le(out, name16.len() as u32);
    match class {
        FileInfoClass::DIRECTORY => {}
        FileInfoClass::FULL_DIRECTORY => u32le(out, 0),
        FileInfoClass::ID_FULL_DIRECTORY => {
            u32le(out, 0);
            u32le(out, 0);
            u64le(out, m.file_id);
        }
        FileInfoClass::BOTH_DIRECTORY => {
            u32le(out, 0);
            short_name_field(out, name);
        }
        FileInfoClass::ID_BOTH_DIRECTORY => {
            u32le(out, 0);
            short_name_field(out, name);
            u16le(out, 0);
            u64le(out, m.file_id);
        }
        FileInfoClass::ID_EXTD_DIRECTORY | FileInfoClass::ID_EXTD_BOTH_DIRECTORY => {
            u32le(out, 0); // EaSize
            u32le(out, 0); // ReparsePointTag
            u64le(out, m.file_id);
            u64le(out, 0);
            if class == FileInfoClass::ID_EXTD_BOTH_DIRECTORY {
                short_name_field(out, name);
            }
        }
        _ => {}
    }
    out.extend_from_slice(&name16);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn meta(is_dir: bool) -> Metadata {
        let t = UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        Metadata {
            file_id: 77,
            dev: 3,
            size: 1234,
            alloc_size: 4096,
            is_dir,
            is_symlink: false,
            nlink: 1,
            mode: 0o100644,
            uid: 0,
            gid: 0,
            created: t,
            accessed: t,
            modified: t,
            changed: t,
            dos_attributes: if is_dir { 0x10 } else { 0x20 },
        }
    }

    fn view() -> OpenView<'static> {
        OpenView {
            access: 0x1F01FF,
            position: 9,
            mode: 0,
            delete_pending: false,
            name: "\\dir\\file.txt",
            leaf: "file.txt",
        }
    }

    #[test]
    fn fixed_sizes_match_fscc() {
        let m = meta(false);
        for (class, len) in [
            (FileInfoClass::BASIC, 40),
            (FileInfoClass::STANDARD, 24),
            (FileInfoClass::INTERNAL, 8),
            (FileInfoClass::EA, 4),
            (FileInfoClass::ACCESS, 4),
            (FileInfoClass::POSITION, 8),
            (FileInfoClass::MODE, 4),
            (FileInfoClass::ALIGNMENT, 4),
            (FileInfoClass::COMPRESSION, 16),
            (FileInfoClass::NETWORK_OPEN, 56),
            (FileInfoClass::ATTRIBUTE_TAG, 8),
            (FileInfoClass::ID, 24),
        ] {
            let (b, min) = file_info(class, &view(), &m).unwrap();
            assert_eq!(b.len(), len, "{class:?}");
            assert!(min <= b.len(), "{class:?}");
        }
        let (all, _) = file_info(FileInfoClass::ALL, &view(), &m).unwrap();
        assert_eq!(all.len(), 100 + 2 * "\\dir\\file.txt".len());
        assert_eq!(
            u64::from_le_bytes(all[80..88].try_into().unwrap()),
            9,
            "position"
        );
        let (s, _) = file_info(FileInfoClass::STREAM, &view(), &m).unwrap();
        assert_eq!(s.len(), 24 + 14);
        let (s, _) = file_info(FileInfoClass::STREAM, &view(), &meta(true)).unwrap();
        assert!(s.is_empty());
        assert_eq!(
            file_info(FileInfoClass(200), &view(), &m).unwrap_err(),
            NtStatus::INVALID_INFO_CLASS
        );
    }

    #[test]
    fn attributes_normal_only_alone() {
        let mut m = meta(false);
        m.dos_attributes = 0x80;
        assert_eq!(attributes(&m), 0x80);
        m.dos_attributes = 0x81;
        assert_eq!(attributes(&m), 0x01);
        m.dos_attributes = 0;
        assert_eq!(attributes(&m), 0x80);
    }

    #[test]
    fn directory_entries_have_the_fscc_layouts() {
        let m = meta(false);
        for (class, fixed) in [
            (FileInfoClass::DIRECTORY, 64),
            (FileInfoClass::FULL_DIRECTORY, 68),
            (FileInfoClass::ID_FULL_DIRECTORY, 80),
            (FileInfoClass::BOTH_DIRECTORY, 94),
            (FileInfoClass::ID_BOTH_DIRECTORY, 104),
            (FileInfoClass::NAMES, 12),
            (FileInfoClass::ID_EXTD_DIRECTORY, 88),
            (FileInfoClass::ID_EXTD_BOTH_DIRECTORY, 114),
        ] {
            let mut out = Vec::new();
            dir_entry(class, "ab", &m, &mut out);
            assert_eq!(out.len(), fixed + 4, "{class:?}");
            assert_eq!(&out[fixed..], &[b'a', 0, b'b', 0], "{class:?}");
            let name_len_at = if class == FileInfoClass::NAMES { 8 } else { 60 };
            assert_eq!(
                u32::from_le_bytes(out[name_len_at..name_len_at + 4].try_into().unwrap()),
                4
            );
        }
        let mut out = Vec::new();
        dir_entry(FileInfoClass::ID_BOTH_DIRECTORY, "ab", &m, &mut out);
        assert_eq!(u64::from_le_bytes(out[96..104].try_into().unwrap()), 77);
        assert_eq!(out[68], 4, "short name length");
        assert_eq!(&out[70..74], &[b'A', 0, b'B', 0]);
    }

    #[test]
    fn fs_classes() {
        let stats = FsStats {
            block_size: 4096,
            total_blocks: 100,
            free_blocks: 50,
            avail_blocks: 40,
            total_files: 0,
            free_files: 0,
            max_name_len: 255,
        };
        let v = VolumeView {
            stats: &stats,
            label: "share",
            serial: 1,
            created: 0,
            object_id: [0; 16],
            case_sensitive: false,
        };
        for (class, len) in [
            (FsInfoClass::VOLUME, 18 + 10),
            (FsInfoClass::SIZE, 24),
            (FsInfoClass::DEVICE, 8),
            (FsInfoClass::ATTRIBUTE, 12 + 8),
            (FsInfoClass::CONTROL, 48),
            (FsInfoClass::FULL_SIZE, 32),
            (FsInfoClass::OBJECT_ID, 64),
            (FsInfoClass::SECTOR_SIZE, 28),
        ] {
            let (b, min) = fs_info(class, &v).unwrap();
            assert_eq!(b.len(), len, "{class:?}");
            assert!(min <= len);
        }
        let (b, _) = fs_info(FsInfoClass::SIZE, &v).unwrap();
        assert_eq!(u32::from_le_bytes(b[16..20].try_into().unwrap()), 8);
        assert!(fs_info(FsInfoClass::LABEL, &v).is_err());
    }
}
