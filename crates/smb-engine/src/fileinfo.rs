//! Storage metadata turned into the [MS-FSCC] structures QUERY_INFO and QUERY_DIRECTORY
//! return: file information classes (2.4), filesystem information classes (2.5) and
//! directory entries. The byte layouts are `smb_wire::fscc`'s; this module decides what goes
//! in them (attributes, sizes, names, ids) and how small a client buffer may be per class.
//!
//! Each answer comes with the minimum buffer a client must offer (the fixed part, per class,
//! as Windows checks it: smbtorture smb2.getinfo.*_buffercheck). The handlers apply
//! [MS-SMB2] 3.3.5.20.1's rules with it: smaller is STATUS_INFO_LENGTH_MISMATCH, smaller than
//! the whole answer is STATUS_BUFFER_OVERFLOW with the data cut to fit.

use lanshare_vfs::{FsStats, Metadata, to_filetime};
use smb_wire::fscc::{
    self, DirEntry, FileAllInformation, FileAttributeTagInformation, FileBasicInformation,
    FileCompressionInformation, FileFsAttributeInformation, FileFsDeviceInformation,
    FileFsFullSizeInformation, FileFsObjectIdInformation, FileFsSectorSizeInformation,
    FileFsSizeInformation, FileFsVolumeInformation, FileNetworkOpenInformation,
    FileStandardInformation, FsAttributes, StreamEntry,
};
use smb_wire::{AccessMask, FileAttributes, FileInfoClass, FsInfoClass, NtStatus};

use crate::names::short_name;

/// The attributes reported for an object: what storage keeps, REPARSE_POINT for a symlink
/// that could not be followed, NORMAL alone when nothing else is set.
pub(crate) fn attributes(m: &Metadata) -> u32 {
    let mut a = m.dos_attributes;
    if m.is_symlink {
        a |= FileAttributes::REPARSE_POINT.0;
    }
    let normal = FileAttributes::NORMAL.0;
    if a & !normal != 0 {
        a & !normal
    } else {
        normal
    }
}

/// Allocation size as SMB reports it: directories report 0 like NTFS, files what is on disk.
pub(crate) fn allocation(m: &Metadata) -> u64 {
    if m.is_dir { 0 } else { m.alloc_size }
}

/// End of file: 0 for directories.
pub(crate) fn end_of_file(m: &Metadata) -> u64 {
    if m.is_dir { 0 } else { m.size }
}

/// ChangeTime as reported: the last data change (mtime), as Samba reports it. POSIX ctime
/// cannot be set, and clients that set ChangeTime (smbtorture smb2.timestamps.*, backup
/// tools restoring all four times) expect to read back what they set; the write time is the
/// closest settable time.
pub(crate) fn change_time(m: &Metadata) -> u64 {
    to_filetime(m.modified)
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
    /// FileEaInformation.EaSize (computed by the caller for the classes that report it).
    pub ea_size: u32,
    /// The path from the share root, as the file's name is reported (`\dir\file`).
    pub name: &'a str,
    /// The last component (for the 8.3 name); empty for the share root.
    pub leaf: &'a str,
}

/// Bits of CreateOptions reported by FileModeInformation ([MS-FSCC] 2.4.31): write-through,
/// sequential-only, no-intermediate-buffering, the two synchronous-I/O bits, delete-on-close.
pub(crate) const MODE_BITS: u32 = 0x0000_0002 | 0x0000_0004 | 0x0000_0008 | 0x10 | 0x20 | 0x1000;

fn basic(m: &Metadata) -> FileBasicInformation {
    FileBasicInformation {
        creation_time: to_filetime(m.created),
        last_access_time: to_filetime(m.accessed),
        last_write_time: to_filetime(m.modified),
        change_time: change_time(m),
        file_attributes: FileAttributes(attributes(m)),
    }
}

fn standard(m: &Metadata, delete_pending: bool) -> FileStandardInformation {
    FileStandardInformation {
        allocation_size: allocation(m),
        end_of_file: end_of_file(m),
        number_of_links: m.nlink.min(u64::from(u32::MAX)) as u32,
        delete_pending,
        directory: m.is_dir,
    }
}

/// A wire error here means a name too long to encode: the name is invalid for SMB.
fn name_err(_: smb_wire::WireError) -> NtStatus {
    NtStatus::OBJECT_NAME_INVALID
}

/// FileStreamInformation ([MS-FSCC] 2.4.43) of a file with metadata `m` and the named
/// streams `named` (name, size): the unnamed data stream first, for files only (a directory
/// has none), then `:name:$DATA` for each named stream.
pub(crate) fn stream_info(
    m: &Metadata,
    named: &[(String, u64)],
) -> Result<(Vec<u8>, usize), NtStatus> {
    let mut entries = Vec::with_capacity(named.len() + 1);
    if !m.is_dir {
        entries.push(StreamEntry {
            name: "::$DATA".into(),
            size: m.size,
            allocation_size: m.alloc_size,
        });
    }
    entries.extend(named.iter().map(|(name, size)| StreamEntry {
        name: format!(":{name}:$DATA"),
        size: *size,
        allocation_size: size.div_ceil(4096) * 4096,
    }));
    let mut out = Vec::with_capacity(64 * entries.len());
    fscc::encode_streams(&entries, &mut out).map_err(name_err)?;
    Ok((out, 32))
}

/// [MS-FSCC] 2.4: one file information class. `Ok((bytes, minimum))`; classes lanshare does
/// not answer are STATUS_INVALID_INFO_CLASS, named-pipe classes on a disk open
/// STATUS_INVALID_PARAMETER. FileNormalizedNameInformation's 3.1.1 rule is the caller's.
pub(crate) fn file_info(
    class: FileInfoClass,
    o: &OpenView<'_>,
    m: &Metadata,
) -> Result<(Vec<u8>, usize), NtStatus> {
    let mut out = Vec::with_capacity(128);
    let min = match class {
        FileInfoClass::BASIC => {
            basic(m).encode(&mut out);
            FileBasicInformation::SIZE
        }
        FileInfoClass::STANDARD => {
            standard(m, o.delete_pending).encode(&mut out);
            FileStandardInformation::SIZE
        }
        FileInfoClass::INTERNAL => {
            fscc::encode_internal(m.file_id, &mut out);
            8
        }
        FileInfoClass::EA => {
            fscc::encode_ea(o.ea_size, &mut out);
            4
        }
        FileInfoClass::ACCESS => {
            fscc::encode_access(AccessMask(o.access), &mut out);
            4
        }
        FileInfoClass::POSITION => {
            fscc::encode_position(o.position, &mut out);
            8
        }
        FileInfoClass::MODE => {
            fscc::encode_mode(o.mode, &mut out);
            4
        }
        FileInfoClass::ALIGNMENT => {
            // FILE_BYTE_ALIGNMENT: buffers need no alignment.
            fscc::encode_alignment(0, &mut out);
            4
        }
        FileInfoClass::ALL => {
            FileAllInformation {
                basic: basic(m),
                standard: standard(m, o.delete_pending),
                index_number: m.file_id,
                ea_size: o.ea_size,
                access_flags: AccessMask(o.access),
                current_byte_offset: o.position,
                mode: o.mode,
                alignment_requirement: 0,
                name: o.name.to_string(),
            }
            .encode(&mut out)
            .map_err(name_err)?;
            // Windows wants room for the fixed part and the start of the name.
            FileAllInformation::FIXED_SIZE + 4
        }
        FileInfoClass::ALTERNATE_NAME => {
            let short = if o.leaf.is_empty() {
                String::new()
            } else {
                short_name(o.leaf)
            };
            fscc::encode_name(&short, &mut out).map_err(name_err)?;
            8
        }
        // Without the named streams (the caller lists them: `stream_info`).
        FileInfoClass::STREAM => return stream_info(m, &[]),
        FileInfoClass::COMPRESSION => {
            FileCompressionInformation {
                compressed_file_size: end_of_file(m),
                ..Default::default()
            }
            .encode(&mut out);
            FileCompressionInformation::SIZE
        }
        FileInfoClass::NETWORK_OPEN => {
            FileNetworkOpenInformation {
                creation_time: to_filetime(m.created),
                last_access_time: to_filetime(m.accessed),
                last_write_time: to_filetime(m.modified),
                change_time: change_time(m),
                allocation_size: allocation(m),
                end_of_file: end_of_file(m),
                file_attributes: FileAttributes(attributes(m)),
            }
            .encode(&mut out);
            FileNetworkOpenInformation::SIZE
        }
        FileInfoClass::ATTRIBUTE_TAG => {
            FileAttributeTagInformation {
                file_attributes: FileAttributes(attributes(m)),
                reparse_tag: 0,
            }
            .encode(&mut out);
            FileAttributeTagInformation::SIZE
        }
        // The caller answers with the file's EAs (`ea::query`).
        FileInfoClass::FULL_EA => 0,
        FileInfoClass::NORMALIZED_NAME => {
            fscc::encode_name(o.name.trim_start_matches('\\'), &mut out).map_err(name_err)?;
            8
        }
        // FileIdInformation ([MS-FSCC] 2.4.22): VolumeSerialNumber (8), then the 128-bit
        // FileId (the inode, widened). Not in smb_wire::fscc.
        FileInfoClass::ID => {
            out.extend_from_slice(&m.dev.to_le_bytes());
            out.extend_from_slice(&m.file_id.to_le_bytes());
            out.extend_from_slice(&0u64.to_le_bytes());
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
    /// FSCTL_SET_SPARSE can be kept (the store keeps DOS attributes).
    pub sparse: bool,
}

/// [MS-FSCC] 2.5: one filesystem information class. Minimum sizes are what Windows checks
/// (smbtorture smb2.getinfo.qfs_buffercheck).
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
            FileFsVolumeInformation {
                volume_creation_time: v.created,
                volume_serial_number: v.serial,
                supports_objects: false,
                volume_label: v.label.to_string(),
            }
            .encode(&mut out)
            .map_err(name_err)?;
            24
        }
        FsInfoClass::SIZE => {
            FileFsSizeInformation {
                total_allocation_units: s.total_blocks,
                available_allocation_units: s.avail_blocks,
                sectors_per_allocation_unit: sectors_per_unit,
                bytes_per_sector,
            }
            .encode(&mut out);
            FileFsSizeInformation::SIZE
        }
        FsInfoClass::DEVICE => {
            FileFsDeviceInformation {
                device_type: FileFsDeviceInformation::FILE_DEVICE_DISK,
                characteristics: 0,
            }
            .encode(&mut out);
            FileFsDeviceInformation::SIZE
        }
        FsInfoClass::ATTRIBUTE => {
            let mut attributes = FsAttributes::CASE_PRESERVED_NAMES | FsAttributes::UNICODE_ON_DISK;
            if v.case_sensitive {
                attributes |= FsAttributes::CASE_SENSITIVE_SEARCH;
            }
            // The SPARSE_FILE attribute is kept with the DOS attributes (FSCTL_SET_SPARSE).
            if v.sparse {
                attributes |= FsAttributes::SUPPORTS_SPARSE_FILES;
            }
            FileFsAttributeInformation {
                attributes,
                maximum_component_name_length: s.max_name_len.min(255),
                file_system_name: "NTFS".into(),
            }
            .encode(&mut out)
            .map_err(name_err)?;
            16
        }
        // FileFsControlInformation ([MS-FSCC] 2.5.2; not in smb_wire::fscc): quotas are
        // neither tracked nor enforced — no filtering thresholds, no default limits.
        FsInfoClass::CONTROL => {
            for v in [0u64, 0, 0, u64::MAX, u64::MAX] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            out.extend_from_slice(&[0u8; 8]);
            48
        }
        FsInfoClass::FULL_SIZE => {
            FileFsFullSizeInformation {
                total_allocation_units: s.total_blocks,
                caller_available_allocation_units: s.avail_blocks,
                actual_available_allocation_units: s.free_blocks,
                sectors_per_allocation_unit: sectors_per_unit,
                bytes_per_sector,
            }
            .encode(&mut out);
            FileFsFullSizeInformation::SIZE
        }
        FsInfoClass::OBJECT_ID => {
            FileFsObjectIdInformation {
                object_id: v.object_id,
                extended_info: [0; 48],
            }
            .encode(&mut out);
            FileFsObjectIdInformation::SIZE
        }
        FsInfoClass::SECTOR_SIZE => {
            FileFsSectorSizeInformation::uniform(bytes_per_sector).encode(&mut out);
            FileFsSectorSizeInformation::SIZE
        }
        _ => return Err(NtStatus::INVALID_INFO_CLASS),
    };
    Ok((out, min))
}

/// The directory-listing classes QUERY_DIRECTORY answers (those `smb_wire::fscc::dir`
/// writes), with the size of their fixed part.
pub(crate) fn dir_fixed_len(class: FileInfoClass) -> Option<usize> {
    fscc::dir::fixed_len(class).ok()
}

/// Classes whose entries carry an 8.3 name.
pub(crate) fn dir_has_short_name(class: FileInfoClass) -> bool {
    matches!(
        class,
        FileInfoClass::BOTH_DIRECTORY | FileInfoClass::ID_BOTH_DIRECTORY
    )
}

/// One directory entry for `name` with metadata `m`; `short` is its 8.3 name (Both classes).
pub(crate) fn dir_entry<'a>(name: &'a str, short: &'a str, m: &Metadata) -> DirEntry<'a> {
    let mut id128 = [0u8; 16];
    id128[..8].copy_from_slice(&m.file_id.to_le_bytes());
    DirEntry {
        file_index: 0,
        creation_time: to_filetime(m.created),
        last_access_time: to_filetime(m.accessed),
        last_write_time: to_filetime(m.modified),
        change_time: change_time(m),
        end_of_file: end_of_file(m),
        allocation_size: allocation(m),
        file_attributes: FileAttributes(attributes(m)),
        ea_size: 0,
        reparse_tag: 0,
        file_id: m.file_id,
        file_id_128: id128,
        short_name: short,
        name,
    }
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
            ea_size: 0,
            name: "\\dir\\file.txt",
            leaf: "file.txt",
        }
    }

    #[test]
    fn sizes_and_minimums_match_windows() {
        let m = meta(false);
        // (class, full size for this file, minimum buffer): the minimums are the ones
        // smbtorture's smb2.getinfo.qfile_buffercheck expects from Windows.
        for (class, len, min) in [
            (FileInfoClass::BASIC, 40, 40),
            (FileInfoClass::STANDARD, 24, 24),
            (FileInfoClass::INTERNAL, 8, 8),
            (FileInfoClass::EA, 4, 4),
            (FileInfoClass::ACCESS, 4, 4),
            (FileInfoClass::POSITION, 8, 8),
            (FileInfoClass::MODE, 4, 4),
            (FileInfoClass::ALIGNMENT, 4, 4),
            (FileInfoClass::ALL, 100 + 26, 104),
            (FileInfoClass::ALTERNATE_NAME, 4 + 16, 8),
            (FileInfoClass::STREAM, 24 + 14, 32),
            (FileInfoClass::COMPRESSION, 16, 16),
            (FileInfoClass::NETWORK_OPEN, 56, 56),
            (FileInfoClass::ATTRIBUTE_TAG, 8, 8),
            (FileInfoClass::ID, 24, 24),
        ] {
            let (b, got_min) = file_info(class, &view(), &m).unwrap();
            assert_eq!((b.len(), got_min), (len, min), "{class:?}");
        }
        let (all, _) = file_info(FileInfoClass::ALL, &view(), &m).unwrap();
        assert_eq!(
            u64::from_le_bytes(all[80..88].try_into().unwrap()),
            9,
            "position"
        );
        assert_eq!(u32::from_le_bytes(all[96..100].try_into().unwrap()), 26);
        let (s, _) = file_info(FileInfoClass::STREAM, &view(), &meta(true)).unwrap();
        assert!(s.is_empty(), "a directory has no data stream");
        let (alt, _) = file_info(FileInfoClass::ALTERNATE_NAME, &view(), &m).unwrap();
        assert_eq!(&alt[4..6], &[b'F', 0]);
        assert_eq!(
            file_info(FileInfoClass(200), &view(), &m).unwrap_err(),
            NtStatus::INVALID_INFO_CLASS
        );
        assert_eq!(
            file_info(FileInfoClass::PIPE, &view(), &m).unwrap_err(),
            NtStatus::INVALID_PARAMETER
        );
    }

    #[test]
    fn directories_report_no_size() {
        let (b, _) = file_info(FileInfoClass::STANDARD, &view(), &meta(true)).unwrap();
        assert_eq!(&b[..16], &[0u8; 16], "allocation and end of file");
        assert_eq!(b[21], 1, "Directory");
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
        m.is_symlink = true;
        assert_eq!(attributes(&m), 0x400);
    }

    #[test]
    fn directory_entries() {
        let m = meta(false);
        assert_eq!(dir_fixed_len(FileInfoClass::ID_BOTH_DIRECTORY), Some(104));
        assert_eq!(dir_fixed_len(FileInfoClass::BASIC), None);
        let mut out = Vec::new();
        fscc::dir::encode_entry(
            FileInfoClass::ID_BOTH_DIRECTORY,
            &dir_entry("ab", "AB", &m),
            &mut out,
        )
        .unwrap();
        assert_eq!(out.len(), 104 + 4);
        assert_eq!(u64::from_le_bytes(out[96..104].try_into().unwrap()), 77);
        assert_eq!(u64::from_le_bytes(out[40..48].try_into().unwrap()), 1234);
        assert_eq!(out[68], 4, "short name length");
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
            sparse: true,
        };
        // Minimums from smbtorture's smb2.getinfo.qfs_buffercheck.
        for (class, len, min) in [
            (FsInfoClass::VOLUME, 18 + 10, 24),
            (FsInfoClass::SIZE, 24, 24),
            (FsInfoClass::DEVICE, 8, 8),
            (FsInfoClass::ATTRIBUTE, 12 + 8, 16),
            (FsInfoClass::CONTROL, 48, 48),
            (FsInfoClass::FULL_SIZE, 32, 32),
            (FsInfoClass::OBJECT_ID, 64, 64),
            (FsInfoClass::SECTOR_SIZE, 28, 28),
        ] {
            let (b, got_min) = fs_info(class, &v).unwrap();
            assert_eq!((b.len(), got_min), (len, min), "{class:?}");
        }
        let (b, _) = fs_info(FsInfoClass::SIZE, &v).unwrap();
        assert_eq!(u32::from_le_bytes(b[16..20].try_into().unwrap()), 8);
        assert_eq!(
            fs_info(FsInfoClass::LABEL, &v).unwrap_err(),
            NtStatus::INVALID_INFO_CLASS
        );
    }
}
