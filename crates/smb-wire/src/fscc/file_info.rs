//! File information classes ([MS-FSCC] 2.4) used by QUERY_INFO and SET_INFO.

use crate::codec::{Reader, Writer, align_up, to_u32};
use crate::error::{Result, WireError};
use crate::types::{AccessMask, FileAttributes};
use crate::utf16;

fn reader<'a>(buf: &'a [u8], size: usize, what: &'static str) -> Result<Reader<'a>> {
    if buf.len() < size {
        // SET_INFO with a short buffer is STATUS_INFO_LENGTH_MISMATCH in the engine.
        return Err(WireError::Truncated {
            what,
            need: size,
            have: buf.len(),
        });
    }
    Ok(Reader::new(buf, what))
}

/// FileBasicInformation ([MS-FSCC] 2.4.7), 40 bytes; queried and set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileBasicInformation {
    /// CreationTime.
    pub creation_time: u64,
    /// LastAccessTime.
    pub last_access_time: u64,
    /// LastWriteTime.
    pub last_write_time: u64,
    /// ChangeTime.
    pub change_time: u64,
    /// FileAttributes (0 in a set: leave unchanged).
    pub file_attributes: FileAttributes,
}

impl FileBasicInformation {
    /// Wire size.
    pub const SIZE: usize = 40;

    /// Appends the 40 bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut w = Writer::new(out);
        w.u64(self.creation_time);
        w.u64(self.last_access_time);
        w.u64(self.last_write_time);
        w.u64(self.change_time);
        w.u32(self.file_attributes.0);
        w.u32(0);
    }

    /// Decodes a SET_INFO buffer (at least 36 bytes: Windows clients sometimes omit Reserved).
    pub fn parse(buf: &[u8]) -> Result<Self> {
        let mut r = reader(buf, 36, "FileBasicInformation")?;
        Ok(FileBasicInformation {
            creation_time: r.u64()?,
            last_access_time: r.u64()?,
            last_write_time: r.u64()?,
            change_time: r.u64()?,
            file_attributes: FileAttributes(r.u32()?),
        })
    }
}

/// FileStandardInformation ([MS-FSCC] 2.4.41), 24 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileStandardInformation {
    /// AllocationSize.
    pub allocation_size: u64,
    /// EndOfFile.
    pub end_of_file: u64,
    /// NumberOfLinks.
    pub number_of_links: u32,
    /// DeletePending.
    pub delete_pending: bool,
    /// Directory.
    pub directory: bool,
}

impl FileStandardInformation {
    /// Wire size.
    pub const SIZE: usize = 24;

    /// Appends the 24 bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut w = Writer::new(out);
        w.u64(self.allocation_size);
        w.u64(self.end_of_file);
        w.u32(self.number_of_links);
        w.u8(u8::from(self.delete_pending));
        w.u8(u8::from(self.directory));
        w.u16(0);
    }

    /// Decodes the 24 bytes.
    pub fn parse(buf: &[u8]) -> Result<Self> {
        let mut r = reader(buf, 22, "FileStandardInformation")?;
        Ok(FileStandardInformation {
            allocation_size: r.u64()?,
            end_of_file: r.u64()?,
            number_of_links: r.u32()?,
            delete_pending: r.u8()? != 0,
            directory: r.u8()? != 0,
        })
    }
}

/// FileInternalInformation ([MS-FSCC] 2.4.22): IndexNumber, 8 bytes.
pub fn encode_internal(index_number: u64, out: &mut Vec<u8>) {
    Writer::new(out).u64(index_number);
}

/// FileEaInformation ([MS-FSCC] 2.4.13): EaSize, 4 bytes.
pub fn encode_ea(ea_size: u32, out: &mut Vec<u8>) {
    Writer::new(out).u32(ea_size);
}

/// FileAccessInformation ([MS-FSCC] 2.4.1): AccessFlags (the open's granted access), 4 bytes.
pub fn encode_access(access: AccessMask, out: &mut Vec<u8>) {
    Writer::new(out).u32(access.0);
}

/// FilePositionInformation ([MS-FSCC] 2.4.35): CurrentByteOffset, 8 bytes (query and set).
pub fn encode_position(offset: u64, out: &mut Vec<u8>) {
    Writer::new(out).u64(offset);
}

/// Decodes FilePositionInformation.
pub fn parse_position(buf: &[u8]) -> Result<u64> {
    reader(buf, 8, "FilePositionInformation")?.u64()
}

/// FileModeInformation ([MS-FSCC] 2.4.26): Mode, 4 bytes (query and set).
pub fn encode_mode(mode: u32, out: &mut Vec<u8>) {
    Writer::new(out).u32(mode);
}

/// Decodes FileModeInformation.
pub fn parse_mode(buf: &[u8]) -> Result<u32> {
    reader(buf, 4, "FileModeInformation")?.u32()
}

/// FileAlignmentInformation ([MS-FSCC] 2.4.3): AlignmentRequirement (0 = byte), 4 bytes.
pub fn encode_alignment(requirement: u32, out: &mut Vec<u8>) {
    Writer::new(out).u32(requirement);
}

/// FileNameInformation / FileNormalizedNameInformation / FileAlternateNameInformation
/// ([MS-FSCC] 2.4.28, 2.4.30, 2.4.5): FileNameLength and the UTF-16LE name.
pub fn encode_name(name: &str, out: &mut Vec<u8>) -> Result<()> {
    let len = utf16::encoded_len(name);
    Writer::new(out).u32(to_u32(len, "FileNameLength")?);
    utf16::encode_into(name, out);
    Ok(())
}

/// FileAllInformation ([MS-FSCC] 2.4.2): Basic, Standard, Internal, Ea, Access, Position,
/// Mode, Alignment and Name information back to back.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FileAllInformation {
    /// BasicInformation.
    pub basic: FileBasicInformation,
    /// StandardInformation.
    pub standard: FileStandardInformation,
    /// InternalInformation.IndexNumber.
    pub index_number: u64,
    /// EaInformation.EaSize.
    pub ea_size: u32,
    /// AccessInformation.AccessFlags.
    pub access_flags: AccessMask,
    /// PositionInformation.CurrentByteOffset.
    pub current_byte_offset: u64,
    /// ModeInformation.Mode.
    pub mode: u32,
    /// AlignmentInformation.AlignmentRequirement.
    pub alignment_requirement: u32,
    /// NameInformation.FileName (Windows returns the path from the share root, with a
    /// leading backslash).
    pub name: String,
}

impl FileAllInformation {
    /// Size without the name.
    pub const FIXED_SIZE: usize = 100;

    /// Appends the structure.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<()> {
        self.basic.encode(out);
        self.standard.encode(out);
        encode_internal(self.index_number, out);
        encode_ea(self.ea_size, out);
        encode_access(self.access_flags, out);
        encode_position(self.current_byte_offset, out);
        encode_mode(self.mode, out);
        encode_alignment(self.alignment_requirement, out);
        encode_name(&self.name, out)
    }

    /// Decodes the structure.
    pub fn parse(buf: &[u8]) -> Result<Self> {
        let basic = FileBasicInformation::parse(buf.get(..40).unwrap_or(buf))?;
        let standard = FileStandardInformation::parse(buf.get(40..64).unwrap_or(&[]))?;
        let mut r = reader(buf, Self::FIXED_SIZE, "FileAllInformation")?;
        r.seek(64)?;
        let index_number = r.u64()?;
        let ea_size = r.u32()?;
        let access_flags = AccessMask(r.u32()?);
        let current_byte_offset = r.u64()?;
        let mode = r.u32()?;
        let alignment_requirement = r.u32()?;
        let len = r.u32()? as usize;
        let name = utf16::decode(r.bytes(len)?)?;
        Ok(FileAllInformation {
            basic,
            standard,
            index_number,
            ea_size,
            access_flags,
            current_byte_offset,
            mode,
            alignment_requirement,
            name,
        })
    }
}

/// FileNetworkOpenInformation ([MS-FSCC] 2.4.29), 56 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileNetworkOpenInformation {
    /// CreationTime.
    pub creation_time: u64,
    /// LastAccessTime.
    pub last_access_time: u64,
    /// LastWriteTime.
    pub last_write_time: u64,
    /// ChangeTime.
    pub change_time: u64,
    /// AllocationSize.
    pub allocation_size: u64,
    /// EndOfFile.
    pub end_of_file: u64,
    /// FileAttributes.
    pub file_attributes: FileAttributes,
}

impl FileNetworkOpenInformation {
    /// Wire size.
    pub const SIZE: usize = 56;

    /// Appends the 56 bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut w = Writer::new(out);
        w.u64(self.creation_time);
        w.u64(self.last_access_time);
        w.u64(self.last_write_time);
        w.u64(self.change_time);
        w.u64(self.allocation_size);
        w.u64(self.end_of_file);
        w.u32(self.file_attributes.0);
        w.u32(0);
    }

    /// Decodes the 56 bytes.
    pub fn parse(buf: &[u8]) -> Result<Self> {
        let mut r = reader(buf, 52, "FileNetworkOpenInformation")?;
        Ok(FileNetworkOpenInformation {
            creation_time: r.u64()?,
            last_access_time: r.u64()?,
            last_write_time: r.u64()?,
            change_time: r.u64()?,
            allocation_size: r.u64()?,
            end_of_file: r.u64()?,
            file_attributes: FileAttributes(r.u32()?),
        })
    }
}

/// FileAttributeTagInformation ([MS-FSCC] 2.4.6), 8 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileAttributeTagInformation {
    /// FileAttributes.
    pub file_attributes: FileAttributes,
    /// ReparseTag (0 when not a reparse point).
    pub reparse_tag: u32,
}

impl FileAttributeTagInformation {
    /// Wire size.
    pub const SIZE: usize = 8;

    /// Appends the 8 bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut w = Writer::new(out);
        w.u32(self.file_attributes.0);
        w.u32(self.reparse_tag);
    }
}

/// FileCompressionInformation ([MS-FSCC] 2.4.9), 16 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileCompressionInformation {
    /// CompressedFileSize.
    pub compressed_file_size: u64,
    /// CompressionFormat (0 = COMPRESSION_FORMAT_NONE).
    pub compression_format: u16,
    /// CompressionUnitShift.
    pub compression_unit_shift: u8,
    /// ChunkShift.
    pub chunk_shift: u8,
    /// ClusterShift.
    pub cluster_shift: u8,
}

impl FileCompressionInformation {
    /// Wire size.
    pub const SIZE: usize = 16;

    /// Appends the 16 bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut w = Writer::new(out);
        w.u64(self.compressed_file_size);
        w.u16(self.compression_format);
        w.u8(self.compression_unit_shift);
        w.u8(self.chunk_shift);
        w.u8(self.cluster_shift);
        w.zeros(3);
    }
}

/// One stream of FileStreamInformation ([MS-FSCC] 2.4.43).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StreamEntry {
    /// The stream name, e.g. `::$DATA` for the unnamed data stream, `:name:$DATA` otherwise.
    pub name: String,
    /// StreamSize.
    pub size: u64,
    /// StreamAllocationSize.
    pub allocation_size: u64,
}

/// Appends FileStreamInformation entries (8-byte aligned, NextEntryOffset-chained, no padding
/// after the last).
pub fn encode_streams(streams: &[StreamEntry], out: &mut Vec<u8>) -> Result<()> {
    let start = out.len();
    let mut prev: Option<usize> = None;
    for s in streams {
        let mut w = Writer::new(out);
        if prev.is_some() {
            w.align_from(start, 8);
        }
        let at = w.pos();
        if let Some(p) = prev {
            w.patch_u32(p, to_u32(at - p, "NextEntryOffset")?);
        }
        w.u32(0);
        w.u32(to_u32(utf16::encoded_len(&s.name), "StreamNameLength")?);
        w.u64(s.size);
        w.u64(s.allocation_size);
        utf16::encode_into(&s.name, w.vec());
        prev = Some(at);
    }
    Ok(())
}

/// Decodes FileStreamInformation entries.
pub fn parse_streams(buf: &[u8]) -> Result<Vec<StreamEntry>> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos < buf.len() {
        let mut r = Reader::at(buf, pos, "FileStreamInformation")?;
        let next = r.u32()? as usize;
        let len = r.u32()? as usize;
        let size = r.u64()?;
        let allocation_size = r.u64()?;
        let name = utf16::decode(r.bytes(len)?)?;
        out.push(StreamEntry {
            name,
            size,
            allocation_size,
        });
        if next == 0 {
            break;
        }
        pos = pos.checked_add(next).ok_or(WireError::BadOffset {
            what: "NextEntryOffset",
        })?;
    }
    Ok(out)
}

/// FileRenameInformation / FileLinkInformation, SMB2 form ([MS-FSCC] 2.4.37.2, 2.4.27.2):
/// what SET_INFO carries for a rename or a hard link.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FileRenameInformation {
    /// ReplaceIfExists.
    pub replace_if_exists: bool,
    /// RootDirectory (must be 0 over SMB2).
    pub root_directory: u64,
    /// The new name, a path from the share root (a leading backslash is allowed), or a
    /// stream name starting with `:`.
    pub file_name: String,
}

impl FileRenameInformation {
    /// Size before the name.
    pub const FIXED_SIZE: usize = 20;

    /// Decodes a SET_INFO buffer.
    pub fn parse(buf: &[u8]) -> Result<Self> {
        let mut r = reader(buf, Self::FIXED_SIZE, "FileRenameInformation")?;
        let replace_if_exists = r.u8()? != 0;
        r.skip(7)?;
        let root_directory = r.u64()?;
        let len = r.u32()? as usize;
        let file_name = utf16::decode(r.bytes(len)?)?;
        Ok(FileRenameInformation {
            replace_if_exists,
            root_directory,
            file_name,
        })
    }

    /// Appends the structure.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<()> {
        let mut w = Writer::new(out);
        w.u8(u8::from(self.replace_if_exists));
        w.zeros(7);
        w.u64(self.root_directory);
        w.u32(to_u32(
            utf16::encoded_len(&self.file_name),
            "FileNameLength",
        )?);
        utf16::encode_into(&self.file_name, out);
        Ok(())
    }
}

/// FileLinkInformation has the layout of [`FileRenameInformation`].
pub type FileLinkInformation = FileRenameInformation;

/// FileDispositionInformation ([MS-FSCC] 2.4.11): DeletePending.
pub fn parse_disposition(buf: &[u8]) -> Result<bool> {
    Ok(reader(buf, 1, "FileDispositionInformation")?.u8()? != 0)
}

wire_flags! {
    /// FileDispositionInformationEx flags ([MS-FSCC] 2.4.12).
    pub struct DispositionFlags(u32);
    DELETE = 0x0000_0001,
    POSIX_SEMANTICS = 0x0000_0002,
    FORCE_IMAGE_SECTION_CHECK = 0x0000_0004,
    ON_CLOSE = 0x0000_0008,
    IGNORE_READONLY_ATTRIBUTE = 0x0000_0010,
}

/// FileDispositionInformationEx ([MS-FSCC] 2.4.12): Flags.
pub fn parse_disposition_ex(buf: &[u8]) -> Result<DispositionFlags> {
    Ok(DispositionFlags(
        reader(buf, 4, "FileDispositionInformationEx")?.u32()?,
    ))
}

/// FileEndOfFileInformation ([MS-FSCC] 2.4.14): EndOfFile.
pub fn parse_end_of_file(buf: &[u8]) -> Result<u64> {
    reader(buf, 8, "FileEndOfFileInformation")?.u64()
}

/// FileAllocationInformation ([MS-FSCC] 2.4.4): AllocationSize.
pub fn parse_allocation(buf: &[u8]) -> Result<u64> {
    reader(buf, 8, "FileAllocationInformation")?.u64()
}

/// FileValidDataLengthInformation ([MS-FSCC] 2.4.49): ValidDataLength.
pub fn parse_valid_data_length(buf: &[u8]) -> Result<u64> {
    reader(buf, 8, "FileValidDataLengthInformation")?.u64()
}

/// One FILE_FULL_EA_INFORMATION entry ([MS-FSCC] 2.4.15).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FullEa<'a> {
    /// Flags (FILE_NEED_EA 0x80).
    pub flags: u8,
    /// EaName (ASCII, without the terminating NUL).
    pub name: &'a [u8],
    /// EaValue.
    pub value: &'a [u8],
}

/// Decodes a FILE_FULL_EA_INFORMATION chain (SET_INFO FileFullEaInformation, the ExtA create
/// context).
pub fn parse_full_ea(buf: &[u8]) -> Result<Vec<FullEa<'_>>> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos < buf.len() {
        let mut r = Reader::at(buf, pos, "FILE_FULL_EA_INFORMATION")?;
        let next = r.u32()? as usize;
        let flags = r.u8()?;
        let name_len = usize::from(r.u8()?);
        let value_len = usize::from(r.u16()?);
        let name = r.bytes(name_len)?;
        r.skip(1)?; // NUL
        let value = r.bytes(value_len)?;
        out.push(FullEa { flags, name, value });
        if next == 0 {
            break;
        }
        if !next.is_multiple_of(4) || next < 9 {
            return Err(WireError::BadOffset {
                what: "FILE_FULL_EA_INFORMATION NextEntryOffset",
            });
        }
        pos = pos.checked_add(next).ok_or(WireError::BadOffset {
            what: "NextEntryOffset",
        })?;
    }
    Ok(out)
}

/// Appends a FILE_FULL_EA_INFORMATION chain (4-byte aligned entries).
pub fn encode_full_ea(eas: &[FullEa<'_>], out: &mut Vec<u8>) -> Result<()> {
    let start = out.len();
    let mut prev: Option<usize> = None;
    for ea in eas {
        let mut w = Writer::new(out);
        if prev.is_some() {
            w.align_from(start, 4);
        }
        let at = w.pos();
        if let Some(p) = prev {
            w.patch_u32(p, to_u32(at - p, "NextEntryOffset")?);
        }
        w.u32(0);
        w.u8(ea.flags);
        w.u8(
            u8::try_from(ea.name.len()).map_err(|_| WireError::TooLarge {
                what: "EaNameLength",
                value: ea.name.len(),
            })?,
        );
        w.u16(crate::codec::to_u16(ea.value.len(), "EaValueLength")?);
        w.bytes(ea.name);
        w.u8(0);
        w.bytes(ea.value);
        prev = Some(at);
    }
    Ok(())
}

/// Rounds a length to the 8-byte entry alignment used by directory and stream lists.
pub const fn entry_align(n: usize) -> usize {
    align_up(n, 8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_and_standard_layouts() {
        let b = FileBasicInformation {
            creation_time: 1,
            last_access_time: 2,
            last_write_time: 3,
            change_time: 4,
            file_attributes: FileAttributes::ARCHIVE,
        };
        let mut v = Vec::new();
        b.encode(&mut v);
        assert_eq!(v.len(), 40);
        assert_eq!(v[32], 0x20);
        assert_eq!(FileBasicInformation::parse(&v).unwrap(), b);
        assert!(FileBasicInformation::parse(&v[..35]).is_err());
        let s = FileStandardInformation {
            allocation_size: 4096,
            end_of_file: 5,
            number_of_links: 1,
            delete_pending: true,
            directory: false,
        };
        let mut v = Vec::new();
        s.encode(&mut v);
        assert_eq!(v.len(), 24);
        assert_eq!(&v[16..24], &[1, 0, 0, 0, 1, 0, 0, 0]);
        assert_eq!(FileStandardInformation::parse(&v).unwrap(), s);
    }

    #[test]
    fn all_information_round_trip() {
        let a = FileAllInformation {
            basic: FileBasicInformation {
                creation_time: 9,
                ..Default::default()
            },
            standard: FileStandardInformation {
                end_of_file: 3,
                ..Default::default()
            },
            index_number: 77,
            access_flags: AccessMask::FILE_ALL_ACCESS,
            name: "\\dir\\f.txt".into(),
            ..Default::default()
        };
        let mut v = Vec::new();
        a.encode(&mut v).unwrap();
        assert_eq!(v.len(), FileAllInformation::FIXED_SIZE + 20);
        assert_eq!(FileAllInformation::parse(&v).unwrap(), a);
    }

    #[test]
    fn streams_chain() {
        let s = vec![
            StreamEntry {
                name: "::$DATA".into(),
                size: 10,
                allocation_size: 4096,
            },
            StreamEntry {
                name: ":x:$DATA".into(),
                size: 1,
                allocation_size: 8,
            },
        ];
        let mut v = Vec::new();
        encode_streams(&s, &mut v).unwrap();
        // first entry: 24 + 14 = 38 -> next at 40
        assert_eq!(&v[0..4], &[40, 0, 0, 0]);
        assert_eq!(v.len(), 40 + 24 + 16);
        assert_eq!(parse_streams(&v).unwrap(), s);
    }

    #[test]
    fn rename_and_small_sets() {
        let r = FileRenameInformation {
            replace_if_exists: true,
            root_directory: 0,
            file_name: "new\\name".into(),
        };
        let mut v = Vec::new();
        r.encode(&mut v).unwrap();
        assert_eq!(v.len(), 20 + 16);
        assert_eq!(FileRenameInformation::parse(&v).unwrap(), r);
        v[16] = 200;
        assert!(FileRenameInformation::parse(&v).is_err());
        assert!(parse_disposition(&[1]).unwrap());
        assert!(!parse_disposition(&[0]).unwrap());
        assert!(parse_disposition(&[]).is_err());
        assert_eq!(
            parse_disposition_ex(&[9, 0, 0, 0]).unwrap(),
            DispositionFlags::DELETE | DispositionFlags::ON_CLOSE
        );
        assert_eq!(parse_end_of_file(&7u64.to_le_bytes()).unwrap(), 7);
        assert!(parse_allocation(&[0; 7]).is_err());
    }

    #[test]
    fn full_ea_round_trip() {
        let eas = [
            FullEa {
                flags: 0,
                name: b"user.a",
                value: b"xyz",
            },
            FullEa {
                flags: 0x80,
                name: b"B",
                value: b"",
            },
        ];
        let mut v = Vec::new();
        encode_full_ea(&eas, &mut v).unwrap();
        assert_eq!(&v[0..4], &[20, 0, 0, 0]); // 8 + 6 + 1 + 3 = 18 -> 20
        assert_eq!(parse_full_ea(&v).unwrap(), eas);
    }
}
