//! Named data streams (`file:name:$DATA`, [MS-FSCC] 2.1.4, [MS-FSA] 2.1.5.1), kept as
//! lanshare attributes of their file ([`VfsHandle::get_attr`]: on [`crate::LocalFs`] the user
//! xattr `user.lanshare.stream.<name>`, on [`crate::MemFs`] a map in the node).
//!
//! Why xattrs: a stream then belongs to the inode, so it follows the file through renames and
//! hard links and goes when the file goes, with nothing beside the file to keep in step. The
//! price is size: one xattr value holds at most [`MAX_STREAM_SIZE`] bytes (64 KiB, Linux's
//! `XATTR_SIZE_MAX`), and ext4 without `ea_inode` keeps all of a file's xattrs in about one
//! block. A write past what the filesystem takes is [`VfsError::FileTooLarge`] (the SMB engine
//! answers STATUS_DISK_FULL) and logged with the reason. That covers what clients put in
//! streams in practice (Zone.Identifier, macOS Finder info and small resource forks).
//!
//! Names keep the case they were created with and are matched ignoring case, as NTFS does.
//! [`StreamView`] presents one stream name of a share as a [`Vfs`], so that a front-end can
//! run its usual open logic (dispositions, share modes keyed by identity) on a stream: its
//! identity differs from the file's (the device number carries a tag derived from the stream
//! name), so share modes and byte-range locks are per stream, while `file_id` stays the file's.

use std::sync::{Arc, Mutex, MutexGuard};

use crate::case::fold;
use crate::{
    Capabilities, CreateMode, DirMode, DirStream, FsStats, Metadata, OpenOptions, OpenOutcome,
    SetTimes, Vfs, VfsError, VfsHandle, VfsPath, dos,
};

/// Prefix of a stream's attribute name.
pub const STREAM_ATTR_PREFIX: &str = "stream.";
/// Largest stream: one attribute value.
pub const MAX_STREAM_SIZE: u64 = crate::MAX_ATTR_SIZE as u64;
/// Longest stream name in bytes: what an xattr name (255 bytes) leaves after
/// `user.lanshare.stream.`.
pub const MAX_STREAM_NAME_BYTES: usize = 255 - "user.lanshare.".len() - STREAM_ATTR_PREFIX.len();

/// Stream values are read, changed and written back whole: one lock for the process keeps
/// two writers of one stream from losing each other's bytes (streams are small and rare).
static VALUE_LOCK: Mutex<()> = Mutex::new(());

fn value_lock() -> MutexGuard<'static, ()> {
    VALUE_LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

fn key(name: &str) -> String {
    format!("{STREAM_ATTR_PREFIX}{name}")
}

/// A stream name a back-end can store: not empty, no NUL, `\`, `/` or `:`, short enough.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_STREAM_NAME_BYTES
        && !name.contains(['\0', '\\', '/', ':'])
}

/// The stored spelling of stream `name` of the object behind `h`, if it has one.
pub fn find(h: &dyn VfsHandle, name: &str) -> Result<Option<String>, VfsError> {
    let want = fold(name);
    let names = match h.list_attrs() {
        Ok(n) => n,
        Err(VfsError::NotSupported) => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(names
        .into_iter()
        .filter_map(|a| a.strip_prefix(STREAM_ATTR_PREFIX).map(str::to_owned))
        .find(|s| *s == name || fold(s) == want))
}

/// The named streams of the object behind `h`, with their sizes, sorted by name. Empty when
/// the back-end keeps no attributes.
pub fn list(h: &dyn VfsHandle) -> Result<Vec<(String, u64)>, VfsError> {
    let names = match h.list_attrs() {
        Ok(n) => n,
        Err(VfsError::NotSupported) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for a in names {
        let Some(s) = a.strip_prefix(STREAM_ATTR_PREFIX) else {
            continue;
        };
        // Removed since the listing: not listed.
        if let Some(v) = h.get_attr(&a)? {
            out.push((s.to_owned(), v.len() as u64));
        }
    }
    out.sort();
    Ok(out)
}

/// Removes every named stream of the object behind `h`: an overwritten or superseded file
/// loses them ([MS-FSA] 2.1.5.1.2.1: the new file has only the data it is given).
pub fn remove_all(h: &dyn VfsHandle) -> Result<(), VfsError> {
    let names = match h.list_attrs() {
        Ok(n) => n,
        Err(VfsError::NotSupported) => return Ok(()),
        Err(e) => return Err(e),
    };
    let _g = value_lock();
    for a in names.iter().filter(|a| a.starts_with(STREAM_ATTR_PREFIX)) {
        match h.remove_attr(a) {
            Ok(()) | Err(VfsError::NotFound) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Whether this back-end can keep streams at all (probed on an open handle).
pub fn supported(h: &dyn VfsHandle) -> bool {
    !matches!(h.list_attrs(), Err(VfsError::NotSupported))
}

/// The device number a stream's identity carries: the file's, mixed with a hash of the folded
/// stream name, with the top bit set (real device numbers never have it).
fn tagged_dev(dev: u64, name: &str) -> u64 {
    // FNV-1a over the folded name: stable, cheap, and collisions only merge the share-mode
    // bookkeeping of two streams of one file.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in fold(name).bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3);
    }
    (1 << 63) | ((dev ^ h) & !(1 << 63))
}

/// One stream name of a share, presented as a [`Vfs`]: `stat` and `open` of a path address
/// that stream of the file (or directory) at the path. Opening creates the file when the
/// disposition creates ([MS-FSA] 2.1.5.1: creating `new.txt:s` makes `new.txt`). Streams are
/// never directories.
pub struct StreamView {
    base: Arc<dyn Vfs>,
    name: String,
}

impl StreamView {
    /// A view of stream `name` (already validated with [`valid_name`]) of the files of `base`.
    pub fn new(base: Arc<dyn Vfs>, name: &str) -> StreamView {
        StreamView {
            base,
            name: name.to_owned(),
        }
    }
}

impl Vfs for StreamView {
    fn open(
        &self,
        path: &VfsPath,
        opts: &OpenOptions,
    ) -> Result<(Box<dyn VfsHandle>, OpenOutcome), VfsError> {
        if opts.directory == DirMode::DirOnly {
            return Err(VfsError::NotADirectory);
        }
        let base_mode = match opts.create {
            CreateMode::Open | CreateMode::Overwrite => CreateMode::Open,
            _ => CreateMode::OpenIf,
        };
        let base_opts = OpenOptions {
            read: true,
            write: false,
            create: base_mode,
            directory: DirMode::Any,
            dos_attributes: opts.dos_attributes,
        };
        let (base, base_outcome) = self.base.open(path, &base_opts)?;
        if !supported(&*base) {
            if base_outcome == OpenOutcome::Created {
                drop(base);
                let _ = self.base.remove_file(path);
            }
            return Err(VfsError::StreamNotSupported);
        }
        let _g = value_lock();
        let found = find(&*base, &self.name)?;
        let (stored, outcome) = match (found, opts.create) {
            (Some(_), CreateMode::Create) => return Err(VfsError::Exists),
            (None, CreateMode::Open | CreateMode::Overwrite) => return Err(VfsError::NotFound),
            (None, _) => {
                base.set_attr(&key(&self.name), &[])?;
                (self.name.clone(), OpenOutcome::Created)
            }
            (Some(s), CreateMode::Overwrite | CreateMode::OverwriteIf) => {
                base.set_attr(&key(&s), &[])?;
                (s, OpenOutcome::Overwritten)
            }
            (Some(s), CreateMode::Supersede) => {
                base.set_attr(&key(&s), &[])?;
                (s, OpenOutcome::Superseded)
            }
            (Some(s), _) => (s, OpenOutcome::Opened),
        };
        Ok((
            Box::new(StreamHandle {
                base,
                name: Mutex::new(stored),
                tag_name: self.name.clone(),
                read: opts.read,
                write: opts.write,
            }),
            outcome,
        ))
    }

    fn stat(&self, path: &VfsPath) -> Result<Metadata, VfsError> {
        let (base, _) = self.base.open(path, &OpenOptions::read())?;
        let Some(stored) = find(&*base, &self.name)? else {
            return Err(VfsError::NotFound);
        };
        stream_metadata(&*base, &stored, &self.name)
    }

    fn rename(&self, _from: &VfsPath, _to: &VfsPath, _replace: bool) -> Result<(), VfsError> {
        Err(VfsError::NotSupported)
    }

    fn remove_file(&self, path: &VfsPath) -> Result<(), VfsError> {
        let (base, _) = self.base.open(path, &OpenOptions::read())?;
        let _g = value_lock();
        match find(&*base, &self.name)? {
            Some(stored) => base.remove_attr(&key(&stored)),
            None => Err(VfsError::NotFound),
        }
    }

    fn remove_dir(&self, _path: &VfsPath) -> Result<(), VfsError> {
        Err(VfsError::NotADirectory)
    }

    fn statfs(&self) -> Result<FsStats, VfsError> {
        self.base.statfs()
    }

    fn capabilities(&self) -> Capabilities {
        self.base.capabilities()
    }
}

/// The file's metadata with the stream's size and identity.
fn stream_metadata(
    base: &dyn VfsHandle,
    stored: &str,
    tag_name: &str,
) -> Result<Metadata, VfsError> {
    let mut m = base.metadata()?;
    let len = base
        .get_attr(&key(stored))?
        .map(|v| v.len() as u64)
        .ok_or(VfsError::NotFound)?;
    m.size = len;
    m.alloc_size = len.div_ceil(4096) * 4096;
    m.dev = tagged_dev(m.dev, tag_name);
    if m.is_dir {
        m.is_dir = false;
        m.dos_attributes &= !dos::DIRECTORY;
        if m.dos_attributes == 0 {
            m.dos_attributes = dos::NORMAL;
        }
    }
    Ok(m)
}

/// An open named stream: positioned I/O on the attribute value; times, DOS attributes and
/// the other attributes are the file's.
pub struct StreamHandle {
    base: Box<dyn VfsHandle>,
    /// The stored spelling (a rename changes it).
    name: Mutex<String>,
    /// The name the identity was derived from at open (kept: the identity must not change
    /// while the open lives).
    tag_name: String,
    read: bool,
    write: bool,
}

impl StreamHandle {
    fn stored(&self) -> String {
        self.name.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn need_write(&self) -> Result<(), VfsError> {
        if self.write {
            Ok(())
        } else {
            Err(VfsError::AccessDenied)
        }
    }

    fn value(&self) -> Result<Vec<u8>, VfsError> {
        // A stream removed by name while this open lives reads as empty.
        Ok(self
            .base
            .get_attr(&key(&self.stored()))?
            .unwrap_or_default())
    }

    fn store(&self, v: &[u8]) -> Result<(), VfsError> {
        let name = self.stored();
        self.base.set_attr(&key(&name), v).inspect_err(|e| {
            if matches!(e, VfsError::FileTooLarge | VfsError::NoSpace) {
                tracing::warn!(
                    stream = %name,
                    size = v.len(),
                    limit = MAX_STREAM_SIZE,
                    "named stream not stored: streams live in xattrs, and this filesystem \
                     refused a value of this size (64 KiB is the most Linux allows; ext4 \
                     without ea_inode holds about one block per file)"
                );
            }
        })
    }

    /// The stream's name as stored.
    pub fn name(&self) -> String {
        self.stored()
    }

    /// Removes the stream from its file (delete-on-close, delete by name).
    pub fn remove(&self) -> Result<(), VfsError> {
        let _g = value_lock();
        self.base.remove_attr(&key(&self.stored()))
    }

    /// Renames the stream within its file ([MS-FSA] 2.1.5.14.11: the target is a stream name
    /// of the same file). An existing target other than this stream is
    /// [`VfsError::Exists`] unless `replace`.
    pub fn rename(&self, to: &str, replace: bool) -> Result<(), VfsError> {
        if !valid_name(to) {
            return Err(VfsError::InvalidName);
        }
        let _g = value_lock();
        let from = self.stored();
        if let Some(existing) = find(&*self.base, to)?
            && fold(&existing) != fold(&from)
        {
            if !replace {
                return Err(VfsError::Exists);
            }
            self.base.remove_attr(&key(&existing))?;
        }
        let v = self.base.get_attr(&key(&from))?.ok_or(VfsError::NotFound)?;
        self.base.set_attr(&key(to), &v)?;
        if from != to {
            self.base.remove_attr(&key(&from))?;
        }
        *self.name.lock().unwrap_or_else(|p| p.into_inner()) = to.to_owned();
        Ok(())
    }

    /// The file's handle (for what belongs to the file, not the stream: its EAs, its other
    /// streams).
    pub fn file(&self) -> &dyn VfsHandle {
        &*self.base
    }
}

impl VfsHandle for StreamHandle {
    fn metadata(&self) -> Result<Metadata, VfsError> {
        let mut m = stream_metadata(&*self.base, &self.stored(), &self.tag_name);
        if matches!(m, Err(VfsError::NotFound)) {
            // Removed by name meanwhile: the open still works, on nothing.
            m = self.base.metadata().map(|mut m| {
                m.size = 0;
                m.alloc_size = 0;
                m.dev = tagged_dev(m.dev, &self.tag_name);
                m.is_dir = false;
                m
            });
        }
        m
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize, VfsError> {
        if !self.read {
            return Err(VfsError::AccessDenied);
        }
        let v = self.value()?;
        let Ok(start) = usize::try_from(offset) else {
            return Ok(0);
        };
        let Some(src) = v.get(start..) else {
            return Ok(0);
        };
        let n = src.len().min(buf.len());
        if let (Some(d), Some(s)) = (buf.get_mut(..n), src.get(..n)) {
            d.copy_from_slice(s);
        }
        Ok(n)
    }

    fn write_at(&self, data: &[u8], offset: u64) -> Result<usize, VfsError> {
        self.need_write()?;
        let end = offset
            .checked_add(data.len() as u64)
            .ok_or(VfsError::FileTooLarge)?;
        if end > MAX_STREAM_SIZE {
            tracing::warn!(
                stream = %self.stored(),
                end,
                limit = MAX_STREAM_SIZE,
                "write past the largest named stream lanshare keeps (one xattr value)"
            );
            return Err(VfsError::FileTooLarge);
        }
        let _g = value_lock();
        let mut v = self.value()?;
        let (start, end) = (offset as usize, end as usize);
        if v.len() < end {
            v.resize(end, 0);
        }
        if let Some(d) = v.get_mut(start..end) {
            d.copy_from_slice(data);
        }
        self.store(&v)?;
        Ok(data.len())
    }

    fn set_len(&self, len: u64) -> Result<(), VfsError> {
        self.need_write()?;
        if len > MAX_STREAM_SIZE {
            tracing::warn!(
                stream = %self.stored(),
                len,
                limit = MAX_STREAM_SIZE,
                "size past the largest named stream lanshare keeps (one xattr value)"
            );
            return Err(VfsError::FileTooLarge);
        }
        let _g = value_lock();
        let mut v = self.value()?;
        v.resize(len as usize, 0);
        self.store(&v)
    }

    fn sync(&self) -> Result<(), VfsError> {
        self.base.sync()
    }

    fn set_times(&self, times: SetTimes) -> Result<(), VfsError> {
        self.base.set_times(times)
    }

    fn set_dos_attributes(&self, attrs: u32) -> Result<(), VfsError> {
        self.base.set_dos_attributes(attrs)
    }

    fn read_dir(&self) -> Result<Box<dyn DirStream>, VfsError> {
        Err(VfsError::NotADirectory)
    }

    fn get_attr(&self, name: &str) -> Result<Option<Vec<u8>>, VfsError> {
        self.base.get_attr(name)
    }

    fn set_attr(&self, name: &str, value: &[u8]) -> Result<(), VfsError> {
        self.base.set_attr(name, value)
    }

    fn remove_attr(&self, name: &str) -> Result<(), VfsError> {
        self.base.remove_attr(name)
    }

    fn list_attrs(&self) -> Result<Vec<String>, VfsError> {
        self.base.list_attrs()
    }

    fn as_stream(&self) -> Option<&StreamHandle> {
        Some(self)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{LocalFs, MemFs};

    fn p(s: &str) -> VfsPath {
        VfsPath::parse(s).unwrap()
    }

    fn exercise(fs: Arc<dyn Vfs>) {
        let view: Arc<dyn Vfs> = Arc::new(StreamView::new(fs.clone(), "Zone.Identifier"));
        // Creating a stream of a missing file creates the file.
        let (h, out) = view
            .open(&p("a.txt"), &OpenOptions::read_write(CreateMode::Create))
            .unwrap();
        assert_eq!(out, OpenOutcome::Created);
        assert!(fs.stat(&p("a.txt")).is_ok());
        assert_eq!(h.write_at(b"hello", 0).unwrap(), 5);
        assert_eq!(h.write_at(b"J", 0).unwrap(), 1);
        let mut buf = [0u8; 16];
        assert_eq!(h.read_at(&mut buf, 0).unwrap(), 5);
        assert_eq!(&buf[..5], b"Jello");
        assert_eq!(h.read_at(&mut buf, 9).unwrap(), 0);
        let m = h.metadata().unwrap();
        assert_eq!(m.size, 5);
        let fm = fs.stat(&p("a.txt")).unwrap();
        assert_eq!(m.file_id, fm.file_id, "a stream has its file's id");
        assert_ne!(m.identity(), fm.identity(), "but its own identity");
        assert_eq!(fm.size, 0, "the file's own data is untouched");
        // Case-insensitive names, stored spelling kept.
        let other: Arc<dyn Vfs> = Arc::new(StreamView::new(fs.clone(), "zone.identifier"));
        assert_eq!(other.stat(&p("a.txt")).unwrap().identity(), m.identity());
        assert!(matches!(
            other.open(&p("a.txt"), &OpenOptions::read_write(CreateMode::Create)),
            Err(VfsError::Exists)
        ));
        let (fh, _) = fs.open(&p("a.txt"), &OpenOptions::read()).unwrap();
        assert_eq!(list(&*fh).unwrap(), vec![("Zone.Identifier".into(), 5)]);
        // Size limit.
        assert!(matches!(
            h.write_at(b"x", MAX_STREAM_SIZE),
            Err(VfsError::FileTooLarge)
        ));
        h.set_len(2).unwrap();
        assert_eq!(h.metadata().unwrap().size, 2);
        // Rename within the file.
        h.as_stream().unwrap().rename("other", false).unwrap();
        assert_eq!(list(&*fh).unwrap(), vec![("other".into(), 2)]);
        assert!(matches!(view.stat(&p("a.txt")), Err(VfsError::NotFound)));
        // Overwrite empties; Open of a missing stream fails.
        let ov: Arc<dyn Vfs> = Arc::new(StreamView::new(fs.clone(), "OTHER"));
        let (h2, out) = ov
            .open(
                &p("a.txt"),
                &OpenOptions::read_write(CreateMode::OverwriteIf),
            )
            .unwrap();
        assert_eq!(out, OpenOutcome::Overwritten);
        assert_eq!(h2.metadata().unwrap().size, 0);
        assert!(matches!(
            view.open(&p("a.txt"), &OpenOptions::read()),
            Err(VfsError::NotFound)
        ));
        assert!(matches!(
            view.open(&p("missing"), &OpenOptions::read()),
            Err(VfsError::NotFound)
        ));
        // Removal.
        ov.remove_file(&p("a.txt")).unwrap();
        assert!(list(&*fh).unwrap().is_empty());
        // Directories have streams too, and they are never directories themselves.
        let dv: Arc<dyn Vfs> = Arc::new(StreamView::new(fs.clone(), "s"));
        fs.open(&p("d"), &OpenOptions::directory(CreateMode::Create))
            .unwrap();
        let (dh, _) = dv
            .open(&p("d"), &OpenOptions::read_write(CreateMode::Create))
            .unwrap();
        dh.write_at(b"x", 0).unwrap();
        assert!(!dh.metadata().unwrap().is_dir);
        assert!(matches!(
            dv.open(
                &p("d"),
                &OpenOptions::read_write(CreateMode::OpenIf).dir_mode(DirMode::DirOnly)
            ),
            Err(VfsError::NotADirectory)
        ));
        // Read-only access is enforced by the stream handle.
        let (ro, _) = dv.open(&p("d"), &OpenOptions::read()).unwrap();
        assert!(matches!(ro.write_at(b"y", 0), Err(VfsError::AccessDenied)));
        // Overwriting the file takes its streams.
        let (_, _) = dv
            .open(&p("a.txt"), &OpenOptions::read_write(CreateMode::OpenIf))
            .unwrap();
        drop(
            fs.open(&p("a.txt"), &OpenOptions::read_write(CreateMode::Overwrite))
                .unwrap(),
        );
        assert!(
            list(&*fh).unwrap().is_empty(),
            "overwrite removes named streams"
        );
        // Deleting the file takes its streams.
        drop((h, h2, fh));
        fs.remove_file(&p("a.txt")).unwrap();
        let (h3, out) = ov
            .open(&p("a.txt"), &OpenOptions::read_write(CreateMode::OpenIf))
            .unwrap();
        assert_eq!(out, OpenOutcome::Created);
        assert_eq!(h3.metadata().unwrap().size, 0);
    }

    #[test]
    fn memfs_streams() {
        exercise(Arc::new(MemFs::new()));
    }

    #[test]
    fn localfs_streams() {
        // tmpfs (Linux 6.6+) and ext4 both take user xattrs; the test needs them.
        let dir = tempfile::tempdir().unwrap();
        let fs = LocalFs::new(dir.path()).unwrap();
        exercise(Arc::new(fs));
    }

    #[test]
    fn names() {
        assert!(valid_name("Zone.Identifier"));
        assert!(valid_name("\u{5}Stream\n One"));
        assert!(valid_name("?Stream*"));
        assert!(!valid_name(""));
        assert!(!valid_name("a:b"));
        assert!(!valid_name("a\\b"));
        assert!(!valid_name(&"x".repeat(MAX_STREAM_NAME_BYTES + 1)));
    }
}
