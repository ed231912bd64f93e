//! Directory entries for QUERY_DIRECTORY ([MS-FSCC] 2.4: FileDirectoryInformation,
//! FileFullDirectoryInformation, FileIdFullDirectoryInformation, FileBothDirectoryInformation,
//! FileIdBothDirectoryInformation, FileNamesInformation, FileIdExtdDirectoryInformation,
//! FileId64ExtdDirectoryInformation, FileIdAllExtdDirectoryInformation).
//!
//! Entries are 8-byte aligned and chained by NextEntryOffset; the last one is not padded
//! ([MS-FSCC] 2.4, each class: "No padding is required following the last data element").

use crate::codec::{Writer, align_up, to_u32};
use crate::error::{Result, WireError};
use crate::types::{FileAttributes, FileInfoClass};
use crate::utf16;

/// What one directory entry can say; each class writes the fields it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DirEntry<'a> {
    /// FileIndex (0 on file systems without stable positions).
    pub file_index: u32,
    /// CreationTime.
    pub creation_time: u64,
    /// LastAccessTime.
    pub last_access_time: u64,
    /// LastWriteTime.
    pub last_write_time: u64,
    /// ChangeTime.
    pub change_time: u64,
    /// EndOfFile.
    pub end_of_file: u64,
    /// AllocationSize.
    pub allocation_size: u64,
    /// FileAttributes.
    pub file_attributes: FileAttributes,
    /// EaSize (for a reparse point, classes without a ReparsePointTag field carry the tag here;
    /// the caller decides).
    pub ea_size: u32,
    /// ReparsePointTag (Extd classes).
    pub reparse_tag: u32,
    /// 64-bit FileId (Id classes).
    pub file_id: u64,
    /// 128-bit FileId (IdExtd and IdAllExtd classes).
    pub file_id_128: [u8; 16],
    /// The 8.3 short name (Both classes); at most 12 characters, else sent empty.
    pub short_name: &'a str,
    /// The file name.
    pub name: &'a str,
}

/// Size of the fixed part of an entry of `class`, or an error for a class that is not a
/// directory class this codec writes (the engine answers STATUS_INVALID_INFO_CLASS).
pub fn fixed_len(class: FileInfoClass) -> Result<usize> {
    Ok(match class {
        FileInfoClass::DIRECTORY => 64,
        FileInfoClass::FULL_DIRECTORY => 68,
        FileInfoClass::ID_FULL_DIRECTORY => 80,
        FileInfoClass::BOTH_DIRECTORY => 94,
        FileInfoClass::ID_BOTH_DIRECTORY => 104,
        FileInfoClass::NAMES => 12,
        FileInfoClass::ID_EXTD_DIRECTORY => 88,
        FileInfoClass::ID64_EXTD_DIRECTORY => 80,
        FileInfoClass::ID_ALL_EXTD_DIRECTORY => 96,
        other => {
            return Err(WireError::BadValue {
                what: "directory information class",
                value: u64::from(other.0),
            });
        }
    })
}

/// Appends one entry of `class` with NextEntryOffset 0.
pub fn encode_entry(class: FileInfoClass, e: &DirEntry<'_>, out: &mut Vec<u8>) -> Result<()> {
    fixed_len(class)?;
    let name_len = to_u32(utf16::encoded_len(e.name), "FileNameLength")?;
    let mut w = Writer::new(out);
    w.u32(0); // NextEntryOffset, patched by DirWriter
    w.u32(e.file_index);
    if class == FileInfoClass::NAMES {
        w.u32(name_len);
        utf16::encode_into(e.name, out);
        return Ok(());
    }
    w.u64(e.creation_time);
    w.u64(e.last_access_time);
    w.u64(e.last_write_time);
    w.u64(e.change_time);
    w.u64(e.end_of_file);
    w.u64(e.allocation_size);
    w.u32(e.file_attributes.0);
    w.u32(name_len);
    match class {
        FileInfoClass::DIRECTORY => {}
        FileInfoClass::FULL_DIRECTORY => w.u32(e.ea_size),
        FileInfoClass::ID_FULL_DIRECTORY => {
            w.u32(e.ea_size);
            w.u32(0);
            w.u64(e.file_id);
        }
        FileInfoClass::BOTH_DIRECTORY | FileInfoClass::ID_BOTH_DIRECTORY => {
            w.u32(e.ea_size);
            let short = utf16::encode(e.short_name);
            let short = if short.len() <= 24 { short } else { Vec::new() };
            w.u8(short.len() as u8);
            w.u8(0);
            w.bytes(&short);
            w.zeros(24 - short.len());
            if class == FileInfoClass::ID_BOTH_DIRECTORY {
                w.u16(0);
                w.u64(e.file_id);
            }
        }
        FileInfoClass::ID_EXTD_DIRECTORY => {
            w.u32(e.ea_size);
            w.u32(e.reparse_tag);
            w.bytes(&e.file_id_128);
        }
        FileInfoClass::ID64_EXTD_DIRECTORY => {
            w.u32(e.ea_size);
            w.u32(e.reparse_tag);
            w.u64(e.file_id);
        }
        FileInfoClass::ID_ALL_EXTD_DIRECTORY => {
            w.u32(e.ea_size);
            w.u32(e.reparse_tag);
            w.u64(e.file_id);
            w.bytes(&e.file_id_128);
        }
        _ => {}
    }
    utf16::encode_into(e.name, out);
    Ok(())
}

/// Appends NextEntryOffset-chained entries to a buffer without ever exceeding `max_len`
/// bytes (the request's OutputBufferLength), so the buffer can go into the response as is.
#[derive(Debug)]
pub struct DirWriter<'v> {
    out: &'v mut Vec<u8>,
    class: FileInfoClass,
    start: usize,
    max_len: usize,
    last: Option<usize>,
    count: usize,
    align: usize,
}

impl<'v> DirWriter<'v> {
    /// A writer appending to `out` (entries aligned relative to `out.len()` now) for `class`,
    /// limited to `max_len` bytes. Fails for a class [`fixed_len`] does not know.
    pub fn new(out: &'v mut Vec<u8>, class: FileInfoClass, max_len: usize) -> Result<Self> {
        fixed_len(class)?;
        let start = out.len();
        Ok(DirWriter {
            out,
            class,
            start,
            max_len,
            last: None,
            count: 0,
            align: 8,
        })
    }

    /// Appends an entry if it fits entirely (with the padding before it) within the limit.
    /// Returns `Ok(false)` and leaves the buffer unchanged when it does not.
    pub fn push(&mut self, e: &DirEntry<'_>) -> Result<bool> {
        let entry_len = fixed_len(self.class)? + utf16::encoded_len(e.name);
        if !self.place(entry_len)? {
            return Ok(false);
        }
        encode_entry(self.class, e, self.out)?;
        self.count += 1;
        Ok(true)
    }

    /// As [`DirWriter::push`], for an entry [`encode_entry`] already encoded in this writer's
    /// class (a server may encode entries ahead of the query that returns them).
    pub fn push_encoded(&mut self, entry: &[u8]) -> Result<bool> {
        if entry.len() < fixed_len(self.class)? {
            return Err(WireError::BadValue {
                what: "pre-encoded directory entry length",
                value: entry.len() as u64,
            });
        }
        if !self.place(entry.len())? {
            return Ok(false);
        }
        self.out.extend_from_slice(entry);
        self.count += 1;
        Ok(true)
    }

    /// Pads to where an entry of `entry_len` bytes goes and links the last entry to it; false
    /// (the buffer unchanged) when it would not fit.
    fn place(&mut self, entry_len: usize) -> Result<bool> {
        let used = self.out.len() - self.start;
        let entry_rel = if self.last.is_some() {
            align_up(used, self.align)
        } else {
            used
        };
        if entry_rel.saturating_add(entry_len) > self.max_len {
            return Ok(false);
        }
        let at = self.start + entry_rel;
        self.out.resize(at, 0);
        if let Some(prev) = self.last {
            Writer::new(self.out).patch_u32(prev, to_u32(at - prev, "NextEntryOffset")?);
        }
        self.last = Some(at);
        Ok(true)
    }

    /// Entries written.
    pub fn count(&self) -> usize {
        self.count
    }

    /// True when no entry has been written.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.out.len() - self.start
    }
}

/// One decoded entry (names and the common fields), for tests and clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedDirEntry {
    /// FileIndex.
    pub file_index: u32,
    /// The file name.
    pub name: String,
    /// The entry bytes before the name (fixed part), for class-specific checks.
    pub fixed: Vec<u8>,
}

/// Decodes a chain of entries of `class`.
pub fn parse_entries(class: FileInfoClass, buf: &[u8]) -> Result<Vec<ParsedDirEntry>> {
    let fixed = fixed_len(class)?;
    // FileNameLength sits just before the class-specific tail: at 8 for Names, at 60 otherwise.
    let name_len_at = if class == FileInfoClass::NAMES { 8 } else { 60 };
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos < buf.len() {
        let mut r = crate::codec::Reader::at(buf, pos, "directory entry")?;
        let next = r.u32()? as usize;
        let file_index = r.u32()?;
        let fixed_bytes = crate::codec::Reader::at(buf, pos, "directory entry")?.bytes(fixed)?;
        r.seek(pos + name_len_at)?;
        let name_len = r.u32()? as usize;
        r.seek(pos + fixed)?;
        let name = utf16::decode(r.bytes(name_len)?)?;
        out.push(ParsedDirEntry {
            file_index,
            name,
            fixed: fixed_bytes.to_vec(),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str) -> DirEntry<'_> {
        DirEntry {
            name,
            short_name: "SHORT~1.TXT",
            file_id: 42,
            end_of_file: 3,
            ..Default::default()
        }
    }

    #[test]
    fn fixed_lengths_match_layout() {
        for class in [
            FileInfoClass::DIRECTORY,
            FileInfoClass::FULL_DIRECTORY,
            FileInfoClass::ID_FULL_DIRECTORY,
            FileInfoClass::BOTH_DIRECTORY,
            FileInfoClass::ID_BOTH_DIRECTORY,
            FileInfoClass::NAMES,
            FileInfoClass::ID_EXTD_DIRECTORY,
            FileInfoClass::ID64_EXTD_DIRECTORY,
            FileInfoClass::ID_ALL_EXTD_DIRECTORY,
        ] {
            let mut v = Vec::new();
            encode_entry(class, &entry(""), &mut v).unwrap();
            assert_eq!(v.len(), fixed_len(class).unwrap(), "{class}");
            let mut v = Vec::new();
            encode_entry(class, &entry("ab"), &mut v).unwrap();
            let parsed = parse_entries(class, &v).unwrap();
            assert_eq!(parsed[0].name, "ab", "{class}");
        }
        assert!(fixed_len(FileInfoClass::BASIC).is_err());
    }

    #[test]
    fn id_both_fields() {
        let mut v = Vec::new();
        encode_entry(FileInfoClass::ID_BOTH_DIRECTORY, &entry("x"), &mut v).unwrap();
        assert_eq!(v[68], 22); // ShortNameLength: "SHORT~1.TXT" is 11 chars
        assert_eq!(&v[70..72], b"S\0");
        assert_eq!(&v[96..104], &42u64.to_le_bytes());
        assert_eq!(&v[104..106], b"x\0");
    }

    #[test]
    fn writer_honours_limit_exactly_and_chains() {
        let names = ["a", "bb", "ccc"];
        // sizes: 104+2=106 -> next at 112; 112+104+4 = 220 -> next at 224; 224+104+6 = 334
        let mut v = Vec::new();
        let mut w = DirWriter::new(&mut v, FileInfoClass::ID_BOTH_DIRECTORY, 334).unwrap();
        for n in names {
            assert!(w.push(&entry(n)).unwrap(), "{n}");
        }
        assert_eq!(w.len(), 334);
        assert_eq!(w.count(), 3);
        assert!(!w.push(&entry("d")).unwrap());
        assert_eq!(v.len(), 334);
        assert_eq!(&v[0..4], &[112, 0, 0, 0]);
        assert_eq!(&v[112..116], &[112, 0, 0, 0]);
        assert_eq!(&v[224..228], &[0, 0, 0, 0]);
        let parsed = parse_entries(FileInfoClass::ID_BOTH_DIRECTORY, &v).unwrap();
        assert_eq!(
            parsed.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
            names
        );

        let mut v = Vec::new();
        let mut w = DirWriter::new(&mut v, FileInfoClass::ID_BOTH_DIRECTORY, 333).unwrap();
        assert!(w.push(&entry("a")).unwrap());
        assert!(w.push(&entry("bb")).unwrap());
        assert!(!w.push(&entry("ccc")).unwrap());
        assert_eq!(w.len(), 220);
        let mut v = Vec::new();
        let mut w = DirWriter::new(&mut v, FileInfoClass::NAMES, 5).unwrap();
        assert!(!w.push(&entry("a")).unwrap());
        assert!(w.is_empty());
    }

    #[test]
    fn pre_encoded_entries_chain_and_fit_as_encoded_ones_do() {
        let class = FileInfoClass::ID_BOTH_DIRECTORY;
        let names = ["a", "bb", "ccc"];
        let mut direct = Vec::new();
        let mut w = DirWriter::new(&mut direct, class, 333).unwrap();
        for n in names {
            w.push(&entry(n)).unwrap();
        }
        let mut mixed = Vec::new();
        let mut w = DirWriter::new(&mut mixed, class, 333).unwrap();
        let mut first = Vec::new();
        encode_entry(class, &entry("a"), &mut first).unwrap();
        assert!(w.push_encoded(&first).unwrap());
        assert!(w.push(&entry("bb")).unwrap());
        let mut third = Vec::new();
        encode_entry(class, &entry("ccc"), &mut third).unwrap();
        assert!(
            !w.push_encoded(&third).unwrap(),
            "334 bytes do not fit in 333"
        );
        assert_eq!((w.count(), w.len()), (2, 220));
        assert!(
            w.push_encoded(&third[..50]).is_err(),
            "shorter than the class"
        );
        assert_eq!(mixed, direct[..220], "the same bytes either way");
    }
}
