//! `LocalFs`: a share backed by a local directory.
//!
//! Confinement: the root is opened once with ambient authority; every later path is resolved
//! relative to that descriptor by cap-std, which uses `openat2(RESOLVE_BENEATH)` when the
//! kernel has it and its own checked component walk otherwise. `..`, absolute paths and
//! symlinks that lead out are refused by the kernel (or that walk), not by string checks
//! (those in [`VfsPath`] are a second fence). The few raw `*at` calls made here (rename,
//! xattrs, statvfs) operate on descriptors cap-std opened, with single-component names.
//!
//! File data goes through `pread`/`pwrite` on the `std::fs::File` under each handle; copies
//! between two handles through `copy_file_range(2)`, holes through `fallocate(2)` and
//! `lseek(SEEK_DATA/SEEK_HOLE)`.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::{FileExt, MetadataExt as _, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cap_std::fs::{Dir, MetadataExt as _, OpenOptionsExt};
use rustix::fs::{FallocateFlags, OFlags, RenameFlags, SeekFrom, XattrFlags};
use rustix::io::Errno;

use crate::case::{Cached, CiCache, DirStamp, fold};
use crate::copy;
use crate::dosattr::{DosXattr, XATTR_NAME};
use crate::types::dos;
use crate::xcache::{Stamp, XattrCache};
use crate::{
    Capabilities, CreateMode, DirEntry, DirMode, DirStream, FsStats, Metadata, OpenOptions,
    OpenOutcome, SetTimes, Vfs, VfsError, VfsHandle, VfsPath, from_filetime, to_filetime,
};

/// Per-share settings of a [`LocalFs`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalFsOptions {
    /// Refuse every change with [`VfsError::ReadOnly`].
    pub read_only: bool,
    /// Keep DOS attributes and creation time in the `user.lanshare.dos` xattr when the
    /// filesystem supports user xattrs (detected at start).
    pub use_xattrs: bool,
    /// Case-insensitive, case-preserving lookup (Windows semantics): a name that misses
    /// exactly is matched against the directory's names ignoring case (see `case.rs`).
    pub case_insensitive: bool,
}

impl Default for LocalFsOptions {
    fn default() -> Self {
        LocalFsOptions {
            read_only: false,
            use_xattrs: true,
            case_insensitive: true,
        }
    }
}

/// A share rooted at a local directory. Cheap to clone (shared state).
#[derive(Clone)]
pub struct LocalFs {
    inner: Arc<Inner>,
}

struct Inner {
    root: Dir,
    xattrs: bool,
    opts: LocalFsOptions,
    cache: Mutex<CiCache>,
    /// The DOS xattrs of files read so far (listings read them once per change, see `xcache`).
    xcache: Mutex<XattrCache>,
    /// The root is on tmpfs ([`Vfs::in_memory`]).
    in_memory: bool,
}

/// Opens never block on FIFOs and never acquire a controlling terminal; special files are then
/// refused after `fstat`.
fn base_flags() -> i32 {
    (OFlags::NONBLOCK | OFlags::NOCTTY).bits() as i32
}

fn dir_flags() -> i32 {
    (OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::DIRECTORY).bits() as i32
}

/// The form directories take as cache keys and cap-std arguments: `.` for the root.
fn dir_key(p: &Path) -> PathBuf {
    if p.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        p.to_owned()
    }
}

/// Splits a resolved path into its directory and last name.
fn split_rel(p: &Path) -> (PathBuf, &str) {
    let parent = dir_key(p.parent().unwrap_or(Path::new("")));
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
    (parent, name)
}

fn rel_path(p: &VfsPath) -> PathBuf {
    if p.is_root() {
        PathBuf::from(".")
    } else {
        p.components().iter().collect()
    }
}

impl LocalFs {
    /// Opens `root` (which must be a directory) with default options.
    pub fn new(root: &Path) -> Result<LocalFs, VfsError> {
        Self::with_options(root, LocalFsOptions::default())
    }

    /// Opens `root` with the given options.
    pub fn with_options(root: &Path, opts: LocalFsOptions) -> Result<LocalFs, VfsError> {
        // The only use of ambient authority: everything else is relative to this descriptor.
        // A real (not O_PATH) descriptor, so that xattr probing and statvfs work on it.
        let file = File::open(root).map_err(|e| VfsError::from_io(e, "open share root"))?;
        let meta = file
            .metadata()
            .map_err(|e| VfsError::from_io(e, "stat share root"))?;
        if !meta.is_dir() {
            return Err(VfsError::NotADirectory);
        }
        let xattrs = opts.use_xattrs && probe_xattrs(&file);
        let in_memory = on_tmpfs(&file);
        Ok(LocalFs {
            inner: Arc::new(Inner {
                root: Dir::from_std_file(file),
                xattrs,
                opts,
                cache: Mutex::new(CiCache::default()),
                xcache: Mutex::new(XattrCache::default()),
                in_memory,
            }),
        })
    }
}

/// User xattrs are usable when reading a missing one says "no such attribute" rather than
/// "not supported".
fn probe_xattrs(fd: impl AsFd) -> bool {
    let mut buf = [0u8; 32];
    match rustix::fs::fgetxattr(fd, XATTR_NAME, &mut buf[..]) {
        Ok(_) => true,
        Err(e) => !matches!(e, Errno::NOTSUP | Errno::NOSYS),
    }
}

/// Where lanshare's attributes ([`VfsHandle::get_attr`]) live among a file's xattrs.
const ATTR_PREFIX: &str = "user.lanshare.";

/// The full xattr name; Linux caps names at 255 bytes (`XATTR_NAME_MAX`).
fn attr_name(name: &str) -> Result<String, VfsError> {
    if name.is_empty() || name.contains('\0') {
        return Err(VfsError::InvalidName);
    }
    let full = format!("{ATTR_PREFIX}{name}");
    if full.len() > 255 {
        return Err(VfsError::NameTooLong);
    }
    Ok(full)
}

/// `renameat2(RENAME_NOREPLACE)`; where the filesystem lacks it, a check then a rename
/// (racy, and only on such filesystems).
fn noreplace_rename(from_dir: &Dir, from: &str, to_dir: &Dir, to: &str) -> Result<(), Errno> {
    match rustix::fs::renameat_with(from_dir, from, to_dir, to, RenameFlags::NOREPLACE) {
        Err(Errno::INVAL | Errno::NOSYS) => {
            if to_dir.symlink_metadata(to).is_ok() {
                return Err(Errno::EXIST);
            }
            rustix::fs::renameat(from_dir, from, to_dir, to)
        }
        other => other,
    }
}

fn read_xattr(fd: impl AsFd) -> Option<DosXattr> {
    read_xattr_exact(fd).ok().flatten()
}

/// Our xattr of `fd`: `Ok(None)` when it has none (or one that is not ours), `Err` when that
/// could not be told.
fn read_xattr_exact(fd: impl AsFd) -> Result<Option<DosXattr>, Errno> {
    let mut buf = [0u8; 32];
    match rustix::fs::fgetxattr(fd, XATTR_NAME, &mut buf[..]) {
        Ok(n) => Ok(buf.get(..n).and_then(DosXattr::decode)),
        Err(Errno::NODATA) => Ok(None),
        Err(e) => Err(e),
    }
}

fn write_xattr(fd: impl AsFd, x: &DosXattr) -> Result<(), VfsError> {
    rustix::fs::fsetxattr(fd, XATTR_NAME, &x.encode(), XattrFlags::empty())
        .map_err(|e| VfsError::from_io(e.into(), "set xattr"))
}

/// The fields we need, from either std's or cap-std's metadata.
struct RawStat {
    dev: u64,
    ino: u64,
    size: u64,
    blocks: u64,
    mode: u32,
    nlink: u64,
    uid: u32,
    gid: u32,
    atime: SystemTime,
    mtime: SystemTime,
    ctime: SystemTime,
    btime: Option<SystemTime>,
}

fn unix_time(secs: i64, nsec: i64) -> SystemTime {
    let nsec = u32::try_from(nsec.clamp(0, 999_999_999)).unwrap_or(0);
    if secs >= 0 {
        UNIX_EPOCH + Duration::new(secs.unsigned_abs(), nsec)
    } else {
        (UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())) + Duration::new(0, nsec)
    }
}

impl RawStat {
    fn from_std(m: &std::fs::Metadata) -> RawStat {
        RawStat {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            blocks: m.blocks(),
            mode: m.mode(),
            nlink: m.nlink(),
            uid: m.uid(),
            gid: m.gid(),
            atime: unix_time(m.atime(), m.atime_nsec()),
            mtime: unix_time(m.mtime(), m.mtime_nsec()),
            ctime: unix_time(m.ctime(), m.ctime_nsec()),
            btime: m.created().ok(),
        }
    }

    fn from_cap(m: &cap_std::fs::Metadata) -> RawStat {
        RawStat {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            blocks: m.blocks(),
            mode: m.mode(),
            nlink: m.nlink(),
            uid: m.uid(),
            gid: m.gid(),
            atime: unix_time(m.atime(), m.atime_nsec()),
            mtime: unix_time(m.mtime(), m.mtime_nsec()),
            ctime: unix_time(m.ctime(), m.ctime_nsec()),
            btime: m.created().ok().map(cap_std::time::SystemTime::into_std),
        }
    }

    fn file_type(&self) -> u32 {
        self.mode & 0o170_000
    }

    fn is_dir(&self) -> bool {
        self.file_type() == 0o040_000
    }

    fn is_file(&self) -> bool {
        self.file_type() == 0o100_000
    }

    fn is_symlink(&self) -> bool {
        self.file_type() == 0o120_000
    }

    fn into_metadata(self, x: Option<DosXattr>) -> Metadata {
        let is_dir = self.is_dir();
        let x = x.unwrap_or_default();
        let created = x
            .created
            .map(from_filetime)
            .or(self.btime)
            // No birth time anywhere: the oldest time we have is the best guess.
            .unwrap_or_else(|| self.mtime.min(self.ctime));
        let stored = x.attrs.unwrap_or(if is_dir { 0 } else { dos::ARCHIVE });
        let mut attrs = stored & (dos::HIDDEN | dos::SYSTEM | dos::ARCHIVE);
        if !is_dir {
            attrs |= stored & dos::SPARSE_FILE;
        }
        if is_dir {
            // Mode bits of a directory govern who may create in it: READONLY stays in the xattr.
            attrs |= dos::DIRECTORY | (stored & dos::READONLY);
        } else if self.mode & 0o222 == 0 {
            attrs |= dos::READONLY;
        }
        if attrs == 0 {
            attrs = dos::NORMAL;
        }
        Metadata {
            file_id: self.ino,
            dev: self.dev,
            size: if is_dir { 0 } else { self.size },
            alloc_size: self.blocks.saturating_mul(512),
            is_dir,
            is_symlink: self.is_symlink(),
            nlink: self.nlink,
            mode: self.mode,
            uid: self.uid,
            gid: self.gid,
            created,
            accessed: self.atime,
            modified: self.mtime,
            changed: self.ctime,
            dos_attributes: attrs,
        }
    }
}

impl Inner {
    fn check_writable(&self) -> Result<(), VfsError> {
        if self.opts.read_only {
            Err(VfsError::ReadOnly)
        } else {
            Ok(())
        }
    }

    /// The share-relative path to hand to cap-std: the exact path when it exists or when
    /// lookup is case-sensitive; otherwise each missing component replaced by the existing
    /// name that matches it ignoring case, and the components from the first one that matches
    /// nothing kept as given (so that creates use the client's spelling).
    fn resolve(&self, path: &VfsPath) -> PathBuf {
        let exact = rel_path(path);
        if !self.opts.case_insensitive
            || path.is_root()
            || self.root.symlink_metadata(&exact).is_ok()
        {
            return exact;
        }
        let mut real = PathBuf::new();
        let comps = path.components();
        for (i, c) in comps.iter().enumerate() {
            let candidate = real.join(c);
            if self.root.symlink_metadata(&candidate).is_ok() {
                real = candidate;
                continue;
            }
            match self.ci_find(&real, c) {
                Some(found) => real.push(found),
                None => {
                    real.extend(comps.iter().skip(i));
                    break;
                }
            }
        }
        real
    }

    /// [`Self::resolve`] for a path whose exact spelling was just found missing (or is about
    /// to be created): the parent is looked at first, so that the common case — the parent
    /// exists as spelled and its cached listing has no case variant of the name — costs one
    /// `statx`, with no walk of the components. The flag says the parent of the returned
    /// path is known to exist as a directory (a miss of the last name is then NotFound).
    fn resolve_miss(&self, path: &VfsPath) -> (PathBuf, bool) {
        let exact = rel_path(path);
        if !self.opts.case_insensitive || path.is_root() {
            return (exact, false);
        }
        let parent = exact.parent().unwrap_or(Path::new("")).to_owned();
        let Some(name) = exact.file_name().and_then(|n| n.to_str()) else {
            return (self.resolve(path), false);
        };
        let key = dir_key(&parent);
        let Some(stamp) = self.dir_stamp(&key) else {
            // The parent is not there as spelled: walk the components.
            return (self.resolve(path), false);
        };
        match self.ci_find_stamped(key, stamp, name) {
            Some(found) if found != name => (parent.join(found), true),
            _ => (exact, true),
        }
    }

    fn cache(&self) -> MutexGuard<'_, CiCache> {
        // Plain data; a panic elsewhere while holding it leaves it usable.
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn xcache(&self) -> MutexGuard<'_, XattrCache> {
        // Plain data, as above.
        self.xcache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Our xattr of the file `st` describes, from the cache while it is current, else from
    /// `read` (which says `None` when it could not tell: nothing is remembered then).
    fn xattr_cached(
        &self,
        st: &RawStat,
        read: impl FnOnce() -> Option<Option<DosXattr>>,
    ) -> Option<DosXattr> {
        let stamp = Stamp {
            ctime: st.ctime,
            btime: st.btime,
        };
        if let Some(x) = self.xcache().get(st.dev, st.ino, stamp) {
            return x;
        }
        let x = read()?;
        self.xcache()
            .put(st.dev, st.ino, stamp, x, SystemTime::now());
        x
    }

    fn dir_stamp(&self, dir: &Path) -> Option<DirStamp> {
        let key = dir_key(dir);
        // Without following: one `statx` for a folder of the root (following costs an open, a
        // stat and a close); only a symlink needs the second look. The root is its descriptor.
        let m = if key.as_os_str() == "." {
            self.root.dir_metadata().ok()?
        } else {
            match self.root.symlink_metadata(&key) {
                Ok(m) if m.file_type().is_symlink() => self.root.metadata(&key).ok()?,
                Ok(m) => m,
                Err(_) => return None,
            }
        };
        m.is_dir().then(|| DirStamp {
            dev: m.dev(),
            ino: m.ino(),
            mtime: unix_time(m.mtime(), m.mtime_nsec()),
        })
    }

    /// The existing name in `dir` that equals `name` ignoring case, from the cache or from
    /// one scan of the directory.
    fn ci_find(&self, dir: &Path, name: &str) -> Option<String> {
        let key = dir_key(dir);
        let stamp = self.dir_stamp(&key)?;
        self.ci_find_stamped(key, stamp, name)
    }

    /// [`Self::ci_find`] in the directory `key` whose current stamp the caller just read.
    fn ci_find_stamped(&self, key: PathBuf, stamp: DirStamp, name: &str) -> Option<String> {
        let folded = fold(name);
        if let Cached::Hit(found) = self.cache().lookup(&key, stamp, &folded) {
            return found;
        }
        let began = SystemTime::now();
        let names: Vec<String> = self
            .root
            .open_dir(&key)
            .ok()?
            .entries()
            .ok()?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| VfsPath::validate_component(n).is_ok())
            .collect();
        let mut cache = self.cache();
        cache.store(key.clone(), stamp, began, names);
        match cache.lookup(&key, stamp, &folded) {
            Cached::Hit(found) => found,
            Cached::Stale => None,
        }
    }

    /// Keeps the cache current after our own change in `dir`.
    fn note_change(&self, dir: &Path, added: Option<&str>, removed: Option<&str>) {
        if !self.opts.case_insensitive {
            return;
        }
        let key = dir_key(dir);
        let stamp = self.dir_stamp(&key);
        self.cache().note_change(&key, added, removed, stamp);
    }

    fn forget_tree(&self, dir: &Path) {
        if self.opts.case_insensitive {
            self.cache().forget(&dir_key(dir));
        }
    }

    #[cfg(test)]
    fn scans(&self) -> u64 {
        self.cache().scans
    }

    /// Turns a lookup failure into NotFound vs PathNotFound vs NotADirectory by looking at the
    /// parent: Windows clients depend on the distinction ([MS-FSA] 2.1.5.1).
    fn classify_missing(&self, path: &VfsPath, e: io::Error, op: &'static str) -> VfsError {
        self.classify_err(path, VfsError::from_io(e, op))
    }

    /// [`Self::classify_missing`] of an error already mapped.
    fn classify_err(&self, path: &VfsPath, err: VfsError) -> VfsError {
        if !matches!(err, VfsError::NotFound | VfsError::PathNotFound) {
            return err;
        }
        let Some(parent) = path.parent() else {
            return err;
        };
        match self.root.metadata(self.resolve(&parent)) {
            Ok(m) if m.is_dir() => {
                if err == VfsError::PathNotFound {
                    // ENOTDIR with an existing parent: the target itself is the non-directory.
                    VfsError::NotADirectory
                } else {
                    VfsError::NotFound
                }
            }
            _ => VfsError::PathNotFound,
        }
    }

    fn open_flags(&self, read: bool, write: bool, custom: i32) -> cap_std::fs::OpenOptions {
        let mut o = cap_std::fs::OpenOptions::new();
        // Some access mode is needed for a descriptor; read is the harmless one.
        o.read(read || !write).write(write).custom_flags(custom);
        o
    }

    /// Opens an existing object. Directories are always opened read-only with O_DIRECTORY.
    fn open_existing(
        &self,
        path: &VfsPath,
        rel: &Path,
        want_write: bool,
        mode: DirMode,
        classify: bool,
    ) -> Result<(File, RawStat), VfsError> {
        let try_open = |write: bool, custom: i32| -> io::Result<File> {
            self.root
                .open_with(rel, &self.open_flags(true, write, custom))
                .map(cap_std::fs::File::into_std)
        };
        let file = match mode {
            DirMode::DirOnly => try_open(false, dir_flags()),
            _ => match try_open(want_write, base_flags()) {
                Err(e) if e.raw_os_error() == Some(Errno::ISDIR.raw_os_error()) => {
                    if mode == DirMode::FileOnly {
                        return Err(VfsError::IsADirectory);
                    }
                    try_open(false, dir_flags())
                }
                // A write-only file (mode 0200) may still be opened for writing.
                Err(e) if e.raw_os_error() == Some(Errno::ACCESS.raw_os_error()) && want_write => {
                    self.root
                        .open_with(rel, &self.open_flags(false, true, base_flags()))
                        .map(cap_std::fs::File::into_std)
                }
                other => other,
            },
        }
        .map_err(|e| {
            // Unclassified, a miss stays NotFound / PathNotFound as the errno says: the caller
            // looks for another spelling first, and classifies only if there is none.
            if classify {
                self.classify_missing(path, e, "open")
            } else {
                VfsError::from_io(e, "open")
            }
        })?;
        let st = RawStat::from_std(&file.metadata().map_err(|e| VfsError::from_io(e, "fstat"))?);
        if st.is_dir() {
            if mode == DirMode::FileOnly {
                return Err(VfsError::IsADirectory);
            }
        } else if !st.is_file() {
            // FIFOs, sockets, devices: never served.
            return Err(VfsError::NotSupported);
        } else if mode == DirMode::DirOnly {
            return Err(VfsError::NotADirectory);
        }
        Ok((file, st))
    }

    fn create_file(&self, rel: &Path) -> Result<File, VfsError> {
        let mut o = self.open_flags(true, true, base_flags());
        o.create_new(true).mode(0o666);
        self.root
            .open_with(rel, &o)
            .map(cap_std::fs::File::into_std)
            .map_err(|e| match VfsError::from_io(e, "create") {
                // The new name's parent is missing (or a file).
                VfsError::NotFound | VfsError::PathNotFound => VfsError::PathNotFound,
                other => other,
            })
    }

    fn create_dir(&self, rel: &Path) -> Result<(), VfsError> {
        self.root
            .create_dir(rel)
            .map_err(|e| match VfsError::from_io(e, "mkdir") {
                VfsError::NotFound | VfsError::PathNotFound => VfsError::PathNotFound,
                other => other,
            })
    }

    fn handle(self: &Arc<Self>, file: File, is_dir: bool, opts: &OpenOptions) -> LocalHandle {
        LocalHandle {
            file,
            is_dir,
            read: opts.read,
            write: opts.write,
            inner: Arc::clone(self),
            tmpfs: OnceLock::new(),
        }
    }

    /// Applies the DOS attributes a create or overwrite asked for.
    fn apply_initial_attrs(
        &self,
        h: &LocalHandle,
        attrs: u32,
        reset: bool,
    ) -> Result<(), VfsError> {
        let wanted = attrs & dos::SETTABLE;
        if wanted == 0 && !reset {
            return Ok(());
        }
        // Overwrite/supersede replace the old attributes; ARCHIVE is what a fresh file has.
        let wanted = if wanted == 0 { dos::ARCHIVE } else { wanted };
        h.set_dos_attributes(wanted)
    }

    fn open_impl(
        self: &Arc<Self>,
        path: &VfsPath,
        opts: &OpenOptions,
    ) -> Result<(Box<dyn VfsHandle>, OpenOutcome), VfsError> {
        // The exact name is tried first: clients almost always send it, and then the open is
        // the only lookup. The case-insensitive resolution (a stat of the exact name, then the
        // directory cache) runs when it misses, and before a create (which must not make a
        // second spelling of an existing name).
        let mut resolved = !self.opts.case_insensitive || opts.create == CreateMode::Create;
        let mut rel = if resolved {
            self.resolve_miss(path).0
        } else {
            rel_path(path)
        };
        let truncating = matches!(
            opts.create,
            CreateMode::Overwrite | CreateMode::OverwriteIf | CreateMode::Supersede
        );
        if self.opts.read_only && (opts.write || truncating || opts.create == CreateMode::Create) {
            return Err(VfsError::ReadOnly);
        }
        if opts.directory == DirMode::DirOnly && truncating {
            // [MS-FSA] 2.1.5.1: FILE_DIRECTORY_FILE with an overwriting disposition.
            return Err(VfsError::InvalidParameter);
        }
        let may_create = !matches!(opts.create, CreateMode::Open | CreateMode::Overwrite);
        if path.is_root() && opts.create == CreateMode::Create {
            return Err(VfsError::Exists);
        }
        // Bounded: each retry means another client created or removed the name between our
        // two syscalls.
        for _ in 0..8 {
            if opts.create != CreateMode::Create {
                let want_write = opts.write || truncating;
                let mut found =
                    self.open_existing(path, &rel, want_write, opts.directory, resolved);
                if !resolved
                    && let Err(miss @ (VfsError::NotFound | VfsError::PathNotFound)) = found
                {
                    resolved = true;
                    let (real, parent_is_dir) = self.resolve_miss(path);
                    found = if real != rel {
                        rel = real;
                        self.open_existing(path, &rel, want_write, opts.directory, true)
                    } else if parent_is_dir && miss == VfsError::NotFound {
                        Err(VfsError::NotFound)
                    } else {
                        Err(self.classify_err(path, miss))
                    };
                }
                match found {
                    Ok((file, st)) => {
                        if st.is_dir() && truncating {
                            return Err(VfsError::InvalidParameter);
                        }
                        let h = self.handle(file, st.is_dir(), opts);
                        let outcome = if truncating {
                            h.file
                                .set_len(0)
                                .map_err(|e| VfsError::from_io(e, "truncate"))?;
                            self.apply_initial_attrs(&h, opts.dos_attributes, true)?;
                            crate::streams::remove_all(&h)?;
                            if opts.create == CreateMode::Supersede {
                                OpenOutcome::Superseded
                            } else {
                                OpenOutcome::Overwritten
                            }
                        } else {
                            OpenOutcome::Opened
                        };
                        return Ok((Box::new(h), outcome));
                    }
                    Err(VfsError::NotFound) if may_create => {}
                    Err(VfsError::NotFound) if self.opts.read_only => {
                        return Err(VfsError::NotFound);
                    }
                    Err(e) => return Err(e),
                }
            }
            if self.opts.read_only {
                return Err(VfsError::ReadOnly);
            }
            let created = if opts.directory == DirMode::DirOnly {
                self.create_dir(&rel).and_then(|()| {
                    self.open_existing(path, &rel, false, DirMode::DirOnly, true)
                        .map(|(f, _)| (f, true))
                })
            } else {
                self.create_file(&rel).map(|f| (f, false))
            };
            match created {
                Ok((file, is_dir)) => {
                    let (dir, name) = split_rel(&rel);
                    self.note_change(&dir, Some(name), None);
                    let h = self.handle(file, is_dir, opts);
                    // A fresh file has no xattr, and no xattr reads as ARCHIVE: asking for
                    // exactly that changes nothing but the mode fix-up (a umask that took
                    // every write bit away).
                    if !is_dir && opts.dos_attributes & dos::SETTABLE == dos::ARCHIVE {
                        h.fix_write_bits(dos::ARCHIVE)?;
                    } else {
                        self.apply_initial_attrs(&h, opts.dos_attributes, false)?;
                    }
                    return Ok((Box::new(h), OpenOutcome::Created));
                }
                Err(VfsError::Exists) if opts.create != CreateMode::Create => continue,
                Err(e) => return Err(e),
            }
        }
        Err(VfsError::SharingViolation)
    }

    fn stat_impl(&self, path: &VfsPath) -> Result<Metadata, VfsError> {
        let (rel, m) = self.lookup(path)?;
        let st = RawStat::from_cap(&m);
        let x = if self.xattrs {
            self.xattr_at(&self.root, &rel, &st)
        } else {
            None
        };
        Ok(st.into_metadata(x))
    }

    /// The real path of `path` and what `stat` (following) says of it.
    fn lookup(&self, path: &VfsPath) -> Result<(PathBuf, cap_std::fs::Metadata), VfsError> {
        // The exact name first, as in `open_impl`: one lookup when it exists.
        let exact = rel_path(path);
        let (rel, m) = match self.root.metadata(&exact) {
            Ok(m) => (exact, m),
            Err(e) if self.opts.case_insensitive => {
                let (rel, parent_is_dir) = self.resolve_miss(path);
                if rel == exact {
                    // Nothing else matches: the miss stands (a new file's CREATE asks this).
                    let err = VfsError::from_io(e, "stat");
                    if parent_is_dir && err == VfsError::NotFound {
                        return Err(err);
                    }
                    return Err(self.classify_err(path, err));
                }
                let m = self
                    .root
                    .metadata(&rel)
                    .map_err(|e| self.classify_missing(path, e, "stat"))?;
                (rel, m)
            }
            Err(e) => return Err(self.classify_missing(path, e, "stat")),
        };
        Ok((rel, m))
    }

    /// Reads our xattr of a file or directory by opening it (xattrs on Linux need a real
    /// descriptor or an unconfined path); special files are never opened.
    fn xattr_at(&self, dir: &Dir, rel: &Path, st: &RawStat) -> Option<DosXattr> {
        self.xattr_cached(st, || self.xattr_at_exact(dir, rel, st))
    }

    /// As [`Self::xattr_at`], uncached; `None` when it could not be told.
    fn xattr_at_exact(&self, dir: &Dir, rel: &Path, st: &RawStat) -> Option<Option<DosXattr>> {
        let custom = if st.is_dir() {
            dir_flags()
        } else if st.is_file() {
            base_flags()
        } else {
            return Some(None);
        };
        let f = dir
            .open_with(rel, &self.open_flags(true, false, custom))
            .ok()?;
        read_xattr_exact(&f).ok()
    }

    fn rename_impl(&self, from: &VfsPath, to: &VfsPath, replace: bool) -> Result<(), VfsError> {
        self.check_writable()?;
        let (Some(_), Some(to_name)) = (from.file_name(), to.file_name()) else {
            return Err(VfsError::AccessDenied);
        };
        let from_rel = self.resolve(from);
        let to_parent_rel = dir_key(&self.resolve(&to.parent().unwrap_or_default()));
        if to_parent_rel.starts_with(&from_rel) || to.starts_with(from) && to != from {
            return Err(VfsError::InvalidParameter);
        }
        let (from_parent_rel, from_name) = split_rel(&from_rel);
        let open_parent = |rel: &Path| -> Result<Dir, VfsError> {
            self.root
                .open_dir(rel)
                .map_err(|e| match VfsError::from_io(e, "open parent") {
                    VfsError::NotFound | VfsError::PathNotFound | VfsError::NotADirectory => {
                        VfsError::PathNotFound
                    }
                    other => other,
                })
        };
        let from_dir = open_parent(&from_parent_rel)?;
        let to_dir = open_parent(&to_parent_rel)?;
        let src = from_dir
            .symlink_metadata(from_name)
            .map_err(|e| VfsError::from_io(e, "rename"))?;
        // The entry the new name lands on: exact spelling, else (case-insensitive) another.
        let existing = if to_dir.symlink_metadata(to_name).is_ok() {
            Some(to_name.to_owned())
        } else if self.opts.case_insensitive {
            self.ci_find(&to_parent_rel, to_name)
        } else {
            None
        };
        let map_rename = |e: Errno| match e {
            Errno::XDEV => VfsError::CrossDevice,
            e => VfsError::from_io(e.into(), "rename"),
        };
        let mut landed_on = to_name.to_owned();
        match existing {
            Some(name) => {
                let dst = to_dir
                    .symlink_metadata(&name)
                    .map_err(|e| VfsError::from_io(e, "rename"))?;
                let same = dst.dev() == src.dev() && dst.ino() == src.ino();
                if same && name == to_name {
                    // Onto itself (or another link of itself): nothing to do.
                    return if replace {
                        Ok(())
                    } else {
                        Err(VfsError::Exists)
                    };
                }
                if same {
                    // Only the case changes: the new spelling does not exist exactly.
                    noreplace_rename(&from_dir, from_name, &to_dir, to_name).map_err(map_rename)?;
                } else {
                    if !replace {
                        return Err(VfsError::Exists);
                    }
                    if dst.is_dir() || src.is_dir() {
                        // Windows never replaces a directory, nor a file by a directory.
                        return Err(VfsError::AccessDenied);
                    }
                    rustix::fs::renameat(&from_dir, from_name, &to_dir, &name)
                        .map_err(map_rename)?;
                    landed_on = name.clone();
                    if name != to_name {
                        // Then take the client's spelling; on failure the old one stays.
                        if noreplace_rename(&to_dir, &name, &to_dir, to_name).is_ok() {
                            landed_on = to_name.to_owned();
                        }
                    }
                    self.note_change(&to_parent_rel, None, Some(&name));
                }
            }
            None => {
                let r = if replace {
                    rustix::fs::renameat(&from_dir, from_name, &to_dir, to_name)
                } else {
                    noreplace_rename(&from_dir, from_name, &to_dir, to_name)
                };
                r.map_err(|e| match e {
                    Errno::EXIST => VfsError::Exists,
                    e => map_rename(e),
                })?;
            }
        }
        if src.is_dir() {
            self.forget_tree(&from_rel);
        }
        self.note_change(&from_parent_rel, None, Some(from_name));
        self.note_change(&to_parent_rel, Some(&landed_on), None);
        Ok(())
    }

    fn remove_file_impl(&self, path: &VfsPath) -> Result<(), VfsError> {
        self.check_writable()?;
        if path.is_root() {
            return Err(VfsError::IsADirectory);
        }
        // The exact name first, as in `open_impl`: when it exists, the unlink is the lookup.
        let exact = rel_path(path);
        let rel = match self.root.remove_file(&exact) {
            Ok(()) => exact,
            Err(e) if self.opts.case_insensitive && e.kind() == io::ErrorKind::NotFound => {
                let (rel, _) = self.resolve_miss(path);
                if rel == exact {
                    return Err(self.classify_missing(path, e, "unlink"));
                }
                self.root
                    .remove_file(&rel)
                    .map_err(|e| self.classify_missing(path, e, "unlink"))?;
                rel
            }
            Err(e) => return Err(self.classify_missing(path, e, "unlink")),
        };
        let (dir, name) = split_rel(&rel);
        self.note_change(&dir, None, Some(name));
        Ok(())
    }

    fn remove_dir_impl(&self, path: &VfsPath) -> Result<(), VfsError> {
        self.check_writable()?;
        if path.is_root() {
            return Err(VfsError::AccessDenied);
        }
        let rel = self.resolve(path);
        self.forget_tree(&rel);
        self.root.remove_dir(&rel).map_err(|e| {
            if e.raw_os_error() == Some(Errno::NOTDIR.raw_os_error()) {
                // ENOTDIR: the target is a file, or something on the way is.
                match self.root.symlink_metadata(&rel) {
                    Ok(_) => VfsError::NotADirectory,
                    Err(_) => VfsError::PathNotFound,
                }
            } else {
                self.classify_missing(path, e, "rmdir")
            }
        })?;
        let (dir, name) = split_rel(&rel);
        self.note_change(&dir, None, Some(name));
        Ok(())
    }

    fn statfs_impl(&self) -> Result<FsStats, VfsError> {
        let s =
            rustix::fs::fstatvfs(&self.root).map_err(|e| VfsError::from_io(e.into(), "statvfs"))?;
        let block_size = if s.f_frsize > 0 {
            s.f_frsize
        } else {
            s.f_bsize
        };
        Ok(FsStats {
            block_size,
            total_blocks: s.f_blocks,
            free_blocks: s.f_bfree,
            avail_blocks: s.f_bavail,
            total_files: s.f_files,
            free_files: s.f_ffree,
            max_name_len: u32::try_from(s.f_namemax).unwrap_or(255),
        })
    }
}

impl Vfs for LocalFs {
    fn open(
        &self,
        path: &VfsPath,
        opts: &OpenOptions,
    ) -> Result<(Box<dyn VfsHandle>, OpenOutcome), VfsError> {
        self.inner.open_impl(path, opts)
    }

    fn stat(&self, path: &VfsPath) -> Result<Metadata, VfsError> {
        self.inner.stat_impl(path)
    }

    fn identity(&self, path: &VfsPath) -> Result<crate::FileIdentity, VfsError> {
        let (_, m) = self.inner.lookup(path)?;
        Ok(crate::FileIdentity {
            dev: m.dev(),
            ino: m.ino(),
        })
    }

    fn rename(&self, from: &VfsPath, to: &VfsPath, replace: bool) -> Result<(), VfsError> {
        self.inner.rename_impl(from, to, replace)
    }

    fn remove_file(&self, path: &VfsPath) -> Result<(), VfsError> {
        self.inner.remove_file_impl(path)
    }

    fn remove_dir(&self, path: &VfsPath) -> Result<(), VfsError> {
        self.inner.remove_dir_impl(path)
    }

    fn statfs(&self) -> Result<FsStats, VfsError> {
        self.inner.statfs_impl()
    }

    fn in_memory(&self) -> bool {
        self.inner.in_memory
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            case_sensitive: !self.inner.opts.case_insensitive,
            case_preserving: true,
            persistent_dos_attributes: self.inner.xattrs,
            settable_creation_time: self.inner.xattrs,
            hard_links: true,
            max_name_len: 255,
        }
    }
}

struct LocalHandle {
    file: File,
    is_dir: bool,
    read: bool,
    write: bool,
    inner: Arc<Inner>,
    /// Whether the file is on tmpfs, asked of the kernel the first time it matters (a share
    /// may hold other mounts, so the root's answer does not settle it).
    tmpfs: OnceLock<bool>,
}

impl LocalHandle {
    fn on_tmpfs(&self) -> bool {
        *self.tmpfs.get_or_init(|| on_tmpfs(&self.file))
    }

    fn need_file(&self) -> Result<(), VfsError> {
        if self.is_dir {
            Err(VfsError::IsADirectory)
        } else {
            Ok(())
        }
    }

    fn need_write(&self) -> Result<(), VfsError> {
        self.need_file()?;
        if self.inner.opts.read_only {
            return Err(VfsError::ReadOnly);
        }
        if self.write {
            Ok(())
        } else {
            Err(VfsError::AccessDenied)
        }
    }

    fn need_xattrs(&self) -> Result<(), VfsError> {
        if self.inner.xattrs {
            Ok(())
        } else {
            Err(VfsError::NotSupported)
        }
    }

    /// READONLY is the mode's write bits, so local users and every protocol agree: sets or
    /// clears them as `attrs` says.
    fn fix_write_bits(&self, attrs: u32) -> Result<(), VfsError> {
        let m = self
            .file
            .metadata()
            .map_err(|e| VfsError::from_io(e, "fstat"))?;
        let mode = m.permissions().mode() & 0o7777;
        let new_mode = if attrs & dos::READONLY != 0 {
            mode & !0o222
        } else if mode & 0o222 == 0 {
            mode | 0o200
        } else {
            mode
        };
        if new_mode != mode {
            self.file
                .set_permissions(std::fs::Permissions::from_mode(new_mode))
                .map_err(|e| VfsError::from_io(e, "chmod"))?;
        }
        Ok(())
    }

    fn xattr(&self) -> Option<DosXattr> {
        if self.inner.xattrs {
            read_xattr(&self.file)
        } else {
            None
        }
    }
}

/// Largest offset + length we accept: files are addressed with `off_t`.
const MAX_FILE_END: u64 = i64::MAX as u64;

/// `statfs` f_type of tmpfs (linux/magic.h): its pages are in memory, so `sendfile` from it
/// never waits for a disk.
const TMPFS_MAGIC: u64 = 0x0102_1994;

fn on_tmpfs(fd: impl AsFd) -> bool {
    rustix::fs::fstatfs(fd).is_ok_and(|fs| fs.f_type as u64 == TMPFS_MAGIC)
}

impl VfsHandle for LocalHandle {
    fn metadata(&self) -> Result<Metadata, VfsError> {
        let m = self
            .file
            .metadata()
            .map_err(|e| VfsError::from_io(e, "fstat"))?;
        let st = RawStat::from_std(&m);
        let x = if self.inner.xattrs {
            self.inner
                .xattr_cached(&st, || read_xattr_exact(&self.file).ok())
        } else {
            None
        };
        Ok(st.into_metadata(x))
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize, VfsError> {
        self.need_file()?;
        if !self.read {
            return Err(VfsError::AccessDenied);
        }
        if offset >= MAX_FILE_END {
            return Ok(0);
        }
        let mut done = 0;
        while done < buf.len() {
            let Some(rest) = buf.get_mut(done..) else {
                break;
            };
            match self.file.read_at(rest, offset + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(VfsError::from_io(e, "read")),
            }
        }
        Ok(done)
    }

    fn read_append(&self, buf: &mut Vec<u8>, len: usize, offset: u64) -> Result<usize, VfsError> {
        self.need_file()?;
        if !self.read {
            return Err(VfsError::AccessDenied);
        }
        if offset >= MAX_FILE_END {
            return Ok(0);
        }
        let start = buf.len();
        if buf.capacity() - start != len {
            // rustix fills all of the spare capacity: make it exactly `len`.
            let mut exact = Vec::with_capacity(start + len);
            exact.extend_from_slice(buf);
            *buf = exact;
        }
        // pread straight into the uninitialised spare capacity: no zero-fill of a buffer the
        // kernel is about to overwrite (it showed at the top of READ profiles).
        while buf.len() < start + len {
            let at = offset + (buf.len() - start) as u64;
            match rustix::io::pread(&self.file, rustix::buffer::spare_capacity(buf), at) {
                Ok(0) => break,
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => {
                    buf.truncate(start);
                    return Err(VfsError::from_io(e.into(), "read"));
                }
            }
        }
        Ok(buf.len() - start)
    }

    fn in_memory_len(&self, offset: u64, len: usize) -> Option<usize> {
        if self.is_dir || !self.read {
            return None;
        }
        // Decided on the file itself (a share may hold other mounts): an `fstat` per call
        // (and an `fstatfs` once per handle), against a copy of up to 8 MiB saved.
        if !self.on_tmpfs() {
            return None;
        }
        let st = rustix::fs::fstat(&self.file).ok()?;
        let size = u64::try_from(st.st_size).ok()?;
        let avail = size
            .saturating_sub(offset)
            .min(MAX_FILE_END.saturating_sub(offset));
        Some(usize::try_from(avail).map_or(len, |a| a.min(len)))
    }

    fn send_to(&self, out: BorrowedFd<'_>, offset: u64, len: usize) -> Option<io::Result<usize>> {
        if self.is_dir || !self.read {
            return Some(Err(io::ErrorKind::PermissionDenied.into()));
        }
        let mut at = offset;
        Some(rustix::fs::sendfile(out, &self.file, Some(&mut at), len).map_err(io::Error::from))
    }

    fn splice_target(&self) -> bool {
        // Not the access: a WRITE the handle may not make is refused by its caller's checks,
        // and by `splice_from` itself.
        !self.is_dir && self.on_tmpfs()
    }

    fn in_memory(&self) -> bool {
        self.on_tmpfs()
    }

    fn splice_from(
        &self,
        pipe: BorrowedFd<'_>,
        offset: u64,
        len: usize,
    ) -> Option<Result<usize, VfsError>> {
        if let Err(e) = self.need_write() {
            return Some(Err(e));
        }
        match offset.checked_add(len as u64) {
            Some(end) if end <= MAX_FILE_END => {}
            _ => return Some(Err(VfsError::FileTooLarge)),
        }
        let mut at = offset;
        // Non-blocking on the pipe: the caller filled it, so an empty pipe is its bug, not
        // a reason to hang a network thread.
        let r = loop {
            match rustix::pipe::splice(
                pipe,
                None,
                &self.file,
                Some(&mut at),
                len,
                rustix::pipe::SpliceFlags::NONBLOCK,
            ) {
                Err(Errno::INTR) => {}
                r => break r,
            }
        };
        Some(r.map_err(|e| VfsError::from_io(e.into(), "write")))
    }

    fn write_at(&self, data: &[u8], offset: u64) -> Result<usize, VfsError> {
        self.need_write()?;
        match offset.checked_add(data.len() as u64) {
            Some(end) if end <= MAX_FILE_END => {}
            _ => return Err(VfsError::FileTooLarge),
        }
        self.file
            .write_all_at(data, offset)
            .map_err(|e| VfsError::from_io(e, "write"))?;
        Ok(data.len())
    }

    fn set_len(&self, len: u64) -> Result<(), VfsError> {
        self.need_write()?;
        if len > MAX_FILE_END {
            return Err(VfsError::FileTooLarge);
        }
        self.file
            .set_len(len)
            .map_err(|e| VfsError::from_io(e, "truncate"))
    }

    fn sync(&self) -> Result<(), VfsError> {
        self.file
            .sync_all()
            .map_err(|e| VfsError::from_io(e, "fsync"))
    }

    fn set_times(&self, times: SetTimes) -> Result<(), VfsError> {
        if self.inner.opts.read_only {
            return Err(VfsError::ReadOnly);
        }
        let mut ft = std::fs::FileTimes::new();
        let mut any = false;
        if let Some(a) = times.accessed {
            ft = ft.set_accessed(a);
            any = true;
        }
        if let Some(m) = times.modified {
            ft = ft.set_modified(m);
            any = true;
        }
        if any {
            self.file
                .set_times(ft)
                .map_err(|e| VfsError::from_io(e, "set times"))?;
        }
        if let Some(c) = times.created
            && self.inner.xattrs
        {
            let mut x = self.xattr().unwrap_or_default();
            x.created = Some(to_filetime(c));
            write_xattr(&self.file, &x)?;
        }
        Ok(())
    }

    fn set_dos_attributes(&self, attrs: u32) -> Result<(), VfsError> {
        if self.inner.opts.read_only {
            return Err(VfsError::ReadOnly);
        }
        let attrs = attrs & dos::SETTABLE;
        if !self.is_dir {
            self.fix_write_bits(attrs)?;
        }
        if self.inner.xattrs {
            let old = self.xattr();
            let mut x = old.unwrap_or_default();
            let keep = if self.is_dir {
                attrs
            } else {
                attrs & !dos::READONLY
            };
            // SPARSE_FILE changes only through set_sparse (FSCTL_SET_SPARSE).
            let sparse = x.attrs.unwrap_or(0) & dos::SPARSE_FILE;
            x.attrs = Some(keep | sparse);
            // Written only when it changes what is read back: the same value, or a file's
            // bare ARCHIVE where there is no xattr (which reads as ARCHIVE), is left alone.
            let unchanged =
                old == Some(x) || (old.is_none() && !self.is_dir && x.attrs == Some(dos::ARCHIVE));
            if !unchanged {
                write_xattr(&self.file, &x)?;
            }
        }
        Ok(())
    }

    fn readable_fd(&self) -> Option<BorrowedFd<'_>> {
        (self.read && !self.is_dir).then(|| self.file.as_fd())
    }

    fn copy_from(
        &self,
        src: &dyn VfsHandle,
        src_offset: u64,
        offset: u64,
        len: u64,
    ) -> Result<u64, VfsError> {
        self.need_write()?;
        match offset.checked_add(len) {
            Some(end) if end <= MAX_FILE_END => {}
            _ => return Err(VfsError::FileTooLarge),
        }
        let Some(fd) = src.readable_fd() else {
            return copy::buffered(src, self, src_offset, offset, len);
        };
        let (mut from, mut to, mut done) = (src_offset, offset, 0u64);
        while done < len {
            // The kernel caps one call near 2 GiB anyway; stay well inside usize and ssize_t.
            let want = (len - done).min(1 << 30) as usize;
            match rustix::fs::copy_file_range(fd, Some(&mut from), &self.file, Some(&mut to), want)
            {
                Ok(0) => break,
                Ok(n) => done += n as u64,
                Err(Errno::INTR) => {}
                // Another filesystem (before Linux 5.19), no such call, a filesystem that
                // cannot, or overlapping ranges of one file: the portable copy does it.
                Err(Errno::XDEV | Errno::NOSYS | Errno::INVAL | Errno::OPNOTSUPP) => {
                    let rest =
                        copy::buffered(src, self, src_offset + done, offset + done, len - done)?;
                    return Ok(done + rest);
                }
                Err(e) => return Err(VfsError::from_io(e.into(), "copy_file_range")),
            }
        }
        Ok(done)
    }

    fn set_sparse(&self, sparse: bool) -> Result<(), VfsError> {
        self.need_file()?;
        if self.inner.opts.read_only {
            return Err(VfsError::ReadOnly);
        }
        self.need_xattrs()?;
        let mut x = self.xattr().unwrap_or_default();
        let cur = x.attrs.unwrap_or(dos::ARCHIVE);
        x.attrs = Some(if sparse {
            cur | dos::SPARSE_FILE
        } else {
            cur & !dos::SPARSE_FILE
        });
        write_xattr(&self.file, &x)
    }

    fn zero_range(&self, offset: u64, len: u64, deallocate: bool) -> Result<(), VfsError> {
        self.need_write()?;
        let size = self
            .file
            .metadata()
            .map_err(|e| VfsError::from_io(e, "fstat"))?
            .len();
        let end = offset.saturating_add(len).min(size);
        if end <= offset {
            return Ok(());
        }
        if !deallocate {
            // The blocks must stay allocated (a file that is not sparse, as on NTFS); a
            // punched and re-fallocated range would read as a hole through SEEK_DATA on tmpfs.
            return copy::write_zeros(self, offset, end - offset);
        }
        let flags = FallocateFlags::KEEP_SIZE | FallocateFlags::PUNCH_HOLE;
        match rustix::fs::fallocate(&self.file, flags, offset, end - offset) {
            Ok(()) => Ok(()),
            Err(Errno::OPNOTSUPP | Errno::NOSYS | Errno::INVAL) => {
                copy::write_zeros(self, offset, end - offset)
            }
            Err(e) => Err(VfsError::from_io(e.into(), "fallocate")),
        }
    }

    fn allocated_ranges(
        &self,
        offset: u64,
        len: u64,
        max: usize,
    ) -> Result<Vec<(u64, u64)>, VfsError> {
        self.need_file()?;
        let size = self
            .file
            .metadata()
            .map_err(|e| VfsError::from_io(e, "fstat"))?
            .len();
        let end = offset.saturating_add(len).min(size);
        let mut out = Vec::new();
        let mut pos = offset;
        while pos < end && out.len() < max {
            // The seeks move this descriptor's file position, which nothing here uses
            // (all I/O is positioned).
            let data = match rustix::fs::seek(&self.file, SeekFrom::Data(pos)) {
                Ok(d) => d,
                // No data at or after pos.
                Err(Errno::NXIO) => break,
                Err(Errno::INVAL | Errno::OPNOTSUPP) if out.is_empty() => {
                    return copy::whole_range(self, offset, len, max);
                }
                Err(e) => return Err(VfsError::from_io(e.into(), "lseek")),
            };
            if data >= end {
                break;
            }
            let hole = match rustix::fs::seek(&self.file, SeekFrom::Hole(data)) {
                Ok(h) => h.min(end),
                Err(e) => return Err(VfsError::from_io(e.into(), "lseek")),
            };
            if hole <= data {
                break;
            }
            out.push((data, hole - data));
            pos = hole;
        }
        Ok(out)
    }

    fn get_attr(&self, name: &str) -> Result<Option<Vec<u8>>, VfsError> {
        self.need_xattrs()?;
        let full = attr_name(name)?;
        let mut buf = vec![0u8; 256];
        // The value may grow between the size query and the read: retry a few times.
        for _ in 0..4 {
            match rustix::fs::fgetxattr(&self.file, full.as_str(), &mut buf[..]) {
                Ok(n) => {
                    buf.truncate(n);
                    return Ok(Some(buf));
                }
                Err(Errno::NODATA) => return Ok(None),
                Err(Errno::RANGE) => {
                    let n = rustix::fs::fgetxattr_query(&self.file, full.as_str())
                        .map_err(|e| VfsError::from_io(e.into(), "get xattr"))?;
                    buf = vec![0u8; n.clamp(1, crate::MAX_ATTR_SIZE)];
                }
                Err(e) => return Err(VfsError::from_io(e.into(), "get xattr")),
            }
        }
        Err(VfsError::Io {
            op: "get xattr",
            source: io::Error::other("xattr keeps changing size"),
        })
    }

    fn set_attr(&self, name: &str, value: &[u8]) -> Result<(), VfsError> {
        self.need_xattrs()?;
        if self.inner.opts.read_only {
            return Err(VfsError::ReadOnly);
        }
        if value.len() > crate::MAX_ATTR_SIZE {
            return Err(VfsError::FileTooLarge);
        }
        let full = attr_name(name)?;
        rustix::fs::fsetxattr(&self.file, full.as_str(), value, XattrFlags::empty()).map_err(|e| {
            match e {
                // E2BIG: larger than this filesystem takes for one value (ext4 without
                // ea_inode: about one block for all of a file's xattrs).
                Errno::TOOBIG => VfsError::FileTooLarge,
                Errno::RANGE => VfsError::NameTooLong,
                e => VfsError::from_io(e.into(), "set xattr"),
            }
        })
    }

    fn remove_attr(&self, name: &str) -> Result<(), VfsError> {
        self.need_xattrs()?;
        if self.inner.opts.read_only {
            return Err(VfsError::ReadOnly);
        }
        let full = attr_name(name)?;
        rustix::fs::fremovexattr(&self.file, full.as_str()).map_err(|e| match e {
            Errno::NODATA => VfsError::NotFound,
            e => VfsError::from_io(e.into(), "remove xattr"),
        })
    }

    fn list_attrs(&self) -> Result<Vec<String>, VfsError> {
        self.need_xattrs()?;
        let mut buf = vec![0u8; 1024];
        let n = loop {
            match rustix::fs::flistxattr(&self.file, &mut buf[..]) {
                Ok(n) => break n,
                Err(Errno::RANGE) if buf.len() < (1 << 20) => {
                    let n = rustix::fs::flistxattr_query(&self.file)
                        .map_err(|e| VfsError::from_io(e.into(), "list xattrs"))?;
                    buf = vec![0u8; n.clamp(buf.len() * 2, 1 << 20)];
                }
                Err(e) => return Err(VfsError::from_io(e.into(), "list xattrs")),
            }
        };
        Ok(buf
            .get(..n)
            .unwrap_or_default()
            .split(|b| *b == 0)
            .filter_map(|raw| std::str::from_utf8(raw).ok())
            .filter_map(|s| s.strip_prefix(ATTR_PREFIX))
            .map(str::to_owned)
            .collect())
    }

    fn read_dir(&self) -> Result<Box<dyn DirStream>, VfsError> {
        if !self.is_dir {
            return Err(VfsError::NotADirectory);
        }
        let dir = Dir::from_std_file(
            self.file
                .try_clone()
                .map_err(|e| VfsError::from_io(e, "dup"))?,
        );
        // `entries` reopens "." so the listing has its own position, independent of others.
        let iter = dir.entries().map_err(|e| VfsError::from_io(e, "opendir"))?;
        Ok(Box::new(LocalDirStream {
            dir,
            iter,
            inner: Arc::clone(&self.inner),
            proc_fd: proc_self_fd_works(),
        }))
    }
}

struct LocalDirStream {
    dir: Dir,
    iter: cap_std::fs::ReadDir,
    inner: Arc<Inner>,
    /// Entry xattrs can be read by path through /proc/self/fd.
    proc_fd: bool,
}

impl LocalDirStream {
    /// Metadata of one entry, or `None` to skip it (vanished, special file).
    fn entry_metadata(&self, name: &str, lst: RawStat) -> Option<Metadata> {
        let link = lst.is_symlink();
        let st = if link {
            // Follow it only inside the share; otherwise show the link itself.
            match self.dir.metadata(name) {
                Ok(m) => RawStat::from_cap(&m),
                Err(_) => return Some(lst.into_metadata(None)),
            }
        } else {
            lst
        };
        if !st.is_dir() && !st.is_file() {
            return None;
        }
        let x = if !self.inner.xattrs {
            None
        } else if link {
            self.inner.xattr_at(&self.dir, Path::new(name), &st)
        } else {
            self.inner.xattr_cached(&st, || self.entry_xattr(name, &st))
        };
        Some(st.into_metadata(x))
    }

    /// The xattr of a (non-symlink) entry of this directory with one `lgetxattr` through
    /// `/proc/self/fd/DIRFD/NAME`, instead of open + fgetxattr + close (which dominated the
    /// listing profile). `name` is one validated component and `l` does not follow a final
    /// symlink, so a swapped-in link cannot lead outside the share. Without /proc, falls back
    /// to opening the entry. `None` when it could not be told.
    fn entry_xattr(&self, name: &str, st: &RawStat) -> Option<Option<DosXattr>> {
        use std::os::fd::AsRawFd;
        if self.proc_fd {
            let path = format!("/proc/self/fd/{}/{name}", self.dir.as_fd().as_raw_fd());
            let mut buf = [0u8; 32];
            match rustix::fs::lgetxattr(path.as_str(), XATTR_NAME, &mut buf[..]) {
                Ok(n) => return Some(buf.get(..n).and_then(DosXattr::decode)),
                Err(Errno::NODATA) => return Some(None),
                // The entry vanished since readdir: as if it had no xattr (not remembered).
                Err(Errno::NOENT) if proc_self_fd_works() => return None,
                Err(_) => {}
            }
        }
        self.inner.xattr_at_exact(&self.dir, Path::new(name), st)
    }
}

/// /proc is mounted and shows this process's descriptors (checked once).
fn proc_self_fd_works() -> bool {
    static WORKS: OnceLock<bool> = OnceLock::new();
    *WORKS.get_or_init(|| Path::new("/proc/self/fd").is_dir())
}

impl DirStream for LocalDirStream {
    fn next_entry(&mut self) -> Option<Result<DirEntry, VfsError>> {
        loop {
            let ent = match self.iter.next()? {
                Ok(e) => e,
                Err(e) => return Some(Err(VfsError::from_io(e, "readdir"))),
            };
            let os_name = ent.file_name();
            // Names that no client could send back (non-UTF-8, `:`, `\`, `*`…) are not shown.
            let Some(name) = os_name.to_str() else {
                continue;
            };
            if VfsPath::validate_component(name).is_err() {
                continue;
            }
            let lst = match ent.metadata() {
                Ok(m) => RawStat::from_cap(&m),
                // Removed since readdir saw it.
                Err(_) => continue,
            };
            if let Some(metadata) = self.entry_metadata(name, lst) {
                return Some(Ok(DirEntry {
                    name: name.to_owned(),
                    metadata,
                }));
            }
        }
    }

    fn rewind(&mut self) -> Result<(), VfsError> {
        self.iter = self
            .dir
            .entries()
            .map_err(|e| VfsError::from_io(e, "opendir"))?;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn p(s: &str) -> VfsPath {
        VfsPath::parse(s).unwrap()
    }

    fn tmpfs_or_tmp() -> tempfile::TempDir {
        if Path::new("/dev/shm").is_dir() {
            tempfile::tempdir_in("/dev/shm").unwrap()
        } else {
            tempfile::tempdir().unwrap()
        }
    }

    #[test]
    fn filling_a_directory_by_case_insensitive_misses_scans_rarely() {
        let dir = tmpfs_or_tmp();
        let fs = LocalFs::new(dir.path()).unwrap();
        let start = std::time::Instant::now();
        for i in 0..3000 {
            let path = p(&format!("File{i}"));
            let (_, o) = fs
                .open(&path, &OpenOptions::read_write(CreateMode::Create))
                .unwrap();
            assert_eq!(o, OpenOutcome::Created);
        }
        let secs = start.elapsed().as_secs();
        // One scan to start, and at most one per SETTLE period while the directory is hot.
        let scans = fs.inner.scans();
        assert!(scans <= 2 + secs, "{scans} scans in {secs} s");
        // Every name is found by another spelling, from the cache.
        for i in (0..3000).step_by(97) {
            assert!(fs.stat(&p(&format!("FILE{i}"))).is_ok());
        }
        assert!(fs.inner.scans() <= 3 + secs);
    }

    #[test]
    fn sees_names_created_behind_its_back() {
        let dir = tmpfs_or_tmp();
        let fs = LocalFs::new(dir.path()).unwrap();
        assert_eq!(fs.stat(&p("readme")), Err(VfsError::NotFound));
        // Make sure the directory's mtime moves past the scan's stamp.
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(dir.path().join("README"), b"x").unwrap();
        assert_eq!(fs.stat(&p("readme")).unwrap().size, 1);
        std::fs::remove_file(dir.path().join("README")).unwrap();
        assert_eq!(fs.stat(&p("readme")), Err(VfsError::NotFound));
        // Directory renamed behind our back: the old cached listing is not used for the new
        // directory at that name.
        std::fs::create_dir(dir.path().join("D")).unwrap();
        std::fs::write(dir.path().join("D/Alpha"), b"a").unwrap();
        assert!(fs.stat(&p(r"d\alpha")).is_ok());
        std::fs::rename(dir.path().join("D"), dir.path().join("E")).unwrap();
        std::fs::create_dir(dir.path().join("D")).unwrap();
        std::fs::write(dir.path().join("D/Beta"), b"b").unwrap();
        assert_eq!(fs.stat(&p(r"d\alpha")), Err(VfsError::NotFound));
        assert!(fs.stat(&p(r"d\BETA")).is_ok());
        assert!(fs.stat(&p(r"e\ALPHA")).is_ok());
    }

    #[test]
    fn tells_which_objects_live_in_memory() {
        // /dev/shm is tmpfs here and on the CI machines.
        let dir = tempfile::tempdir_in("/dev/shm").unwrap();
        let fs = LocalFs::new(dir.path()).unwrap();
        assert!(fs.in_memory());
        let (h, _) = fs
            .open(&p("f"), &OpenOptions::read_write(CreateMode::Create))
            .unwrap();
        assert!(h.in_memory());
        let wrapped = crate::Notifying::new(Arc::new(fs.clone()), crate::ChangeHub::new());
        assert!(wrapped.in_memory());
        let (h, _) = wrapped.open(&p("f"), &OpenOptions::read()).unwrap();
        assert!(h.in_memory());
        // The source tree (on a disk here): the share and its files answer as its filesystem
        // is.
        let src = Path::new(env!("CARGO_MANIFEST_DIR"));
        let disk = !on_tmpfs(File::open(src).unwrap());
        let fs = LocalFs::new(src).unwrap();
        assert_eq!(fs.in_memory(), !disk);
        let (h, _) = fs.open(&p("Cargo.toml"), &OpenOptions::read()).unwrap();
        assert_eq!(h.in_memory(), !disk);
    }

    #[test]
    fn punched_holes_are_reported_on_tmpfs() {
        // tmpfs has PUNCH_HOLE and SEEK_DATA/SEEK_HOLE (the CI machines serve from it).
        let dir = tempfile::tempdir_in("/dev/shm").unwrap();
        let fs = LocalFs::new(dir.path()).unwrap();
        let (h, _) = fs
            .open(&p("f"), &OpenOptions::read_write(CreateMode::Create))
            .unwrap();
        h.write_at(&vec![1u8; 1 << 20], 0).unwrap();
        assert_eq!(
            h.allocated_ranges(0, 1 << 20, 10).unwrap(),
            vec![(0, 1 << 20)]
        );
        h.zero_range(256 * 1024, 512 * 1024, true).unwrap();
        assert_eq!(
            h.allocated_ranges(0, 1 << 20, 10).unwrap(),
            vec![(0, 256 * 1024), (768 * 1024, 256 * 1024)]
        );
        assert_eq!(
            h.allocated_ranges(0, 1 << 20, 1).unwrap(),
            vec![(0, 256 * 1024)]
        );
        assert_eq!(
            h.allocated_ranges(100_000, 800_000, 10).unwrap(),
            vec![
                (100_000, 256 * 1024 - 100_000),
                (768 * 1024, 900_000 - 768 * 1024)
            ]
        );
        // Without deallocation the blocks stay: one range.
        h.zero_range(0, 4096, false).unwrap();
        assert_eq!(h.allocated_ranges(0, 8192, 10).unwrap(), vec![(0, 8192)]);
        assert_eq!(h.metadata().unwrap().size, 1 << 20);
    }

    #[test]
    fn special_files_are_not_served() {
        let dir = tmpfs_or_tmp();
        let fifo = dir.path().join("fifo");
        let status = std::process::Command::new("mkfifo").arg(&fifo).status();
        if !status.is_ok_and(|s| s.success()) {
            return; // no mkfifo here: nothing to test
        }
        let fs = LocalFs::new(dir.path()).unwrap();
        // Would block forever without O_NONBLOCK; must be refused, not served.
        assert_eq!(
            fs.open(&p("fifo"), &OpenOptions::read()).err(),
            Some(VfsError::NotSupported)
        );
        let (h, _) = fs.open(&VfsPath::root(), &OpenOptions::read()).unwrap();
        let mut s = h.read_dir().unwrap();
        assert!(s.next_entry().is_none(), "FIFO hidden from listings");
    }

    #[test]
    fn read_only_share_refuses_changes() {
        let dir = tmpfs_or_tmp();
        std::fs::write(dir.path().join("f"), b"data").unwrap();
        let fs = LocalFs::with_options(
            dir.path(),
            LocalFsOptions {
                read_only: true,
                ..Default::default()
            },
        )
        .unwrap();
        let (h, o) = fs.open(&p("F"), &OpenOptions::read()).unwrap();
        assert_eq!(o, OpenOutcome::Opened);
        let mut buf = [0u8; 4];
        assert_eq!(h.read_at(&mut buf, 0).unwrap(), 4);
        for mode in [
            CreateMode::Create,
            CreateMode::Overwrite,
            CreateMode::OverwriteIf,
            CreateMode::Supersede,
        ] {
            let mut o = OpenOptions::read();
            o.create = mode;
            assert_eq!(fs.open(&p("f"), &o).err(), Some(VfsError::ReadOnly));
        }
        assert_eq!(
            fs.open(&p("f"), &OpenOptions::read_write(CreateMode::Open))
                .err(),
            Some(VfsError::ReadOnly)
        );
        let mut o = OpenOptions::read();
        o.create = CreateMode::OpenIf;
        assert_eq!(fs.open(&p("new"), &o).err(), Some(VfsError::ReadOnly));
        assert_eq!(fs.remove_file(&p("f")), Err(VfsError::ReadOnly));
        assert_eq!(fs.rename(&p("f"), &p("g"), true), Err(VfsError::ReadOnly));
        assert_eq!(h.set_dos_attributes(dos::HIDDEN), Err(VfsError::ReadOnly));
        assert_eq!(std::fs::read(dir.path().join("f")).unwrap(), b"data");
    }

    #[test]
    fn a_new_file_gets_no_xattr_for_plain_archive_and_identity_skips_it() {
        let dir = tmpfs_or_tmp();
        let fs = LocalFs::new(dir.path()).unwrap();
        if !fs.capabilities().persistent_dos_attributes {
            return;
        }
        let create = |name: &str, attrs: u32| {
            let opts = OpenOptions {
                write: true,
                create: CreateMode::Create,
                dos_attributes: attrs,
                ..OpenOptions::read()
            };
            fs.open(&p(name), &opts).unwrap().0
        };
        let on_disk = |name: &str| {
            let f = File::open(dir.path().join(name)).unwrap();
            read_xattr_exact(&f).unwrap()
        };
        let plain = create("plain.txt", dos::ARCHIVE);
        assert_eq!(on_disk("plain.txt"), None);
        assert_eq!(plain.metadata().unwrap().dos_attributes, dos::ARCHIVE);
        let hidden = create("hidden.txt", dos::ARCHIVE | dos::HIDDEN);
        assert_eq!(
            on_disk("hidden.txt").and_then(|x| x.attrs),
            Some(dos::ARCHIVE | dos::HIDDEN)
        );
        assert_eq!(
            hidden.metadata().unwrap().dos_attributes,
            dos::ARCHIVE | dos::HIDDEN
        );
        // Setting what is already read back writes nothing; a real change is written.
        plain.set_dos_attributes(dos::ARCHIVE).unwrap();
        assert_eq!(on_disk("plain.txt"), None);
        plain.set_dos_attributes(0).unwrap();
        assert_eq!(on_disk("plain.txt").and_then(|x| x.attrs), Some(0));
        assert_eq!(plain.metadata().unwrap().dos_attributes, dos::NORMAL);
        // identity() agrees with stat(), under any spelling, and misses alike.
        let want = fs.stat(&p("hidden.txt")).unwrap().identity();
        assert_eq!(fs.identity(&p("HIDDEN.TXT")).unwrap(), want);
        assert_eq!(fs.identity(&p("nope.txt")), Err(VfsError::NotFound));
        assert_eq!(fs.identity(&p("nope\\x.txt")), Err(VfsError::PathNotFound));
    }

    #[test]
    fn listing_again_reads_no_xattrs_until_something_changes() {
        let dir = tmpfs_or_tmp();
        let fs = LocalFs::new(dir.path()).unwrap();
        if !fs.capabilities().persistent_dos_attributes {
            return;
        }
        for i in 0..20 {
            std::fs::write(dir.path().join(format!("f{i}")), b"").unwrap();
        }
        // Only files changed over a second ago are remembered.
        std::thread::sleep(Duration::from_millis(1200));
        let list = |fs: &LocalFs| -> Vec<(String, u32)> {
            let (h, _) = fs
                .open(&p(""), &OpenOptions::directory(CreateMode::Open))
                .unwrap();
            let mut s = h.read_dir().unwrap();
            let mut out = Vec::new();
            while let Some(e) = s.next_entry() {
                let e = e.unwrap();
                out.push((e.name, e.metadata.dos_attributes));
            }
            out.sort();
            out
        };
        let misses = || fs.inner.xcache().misses;
        let first = list(&fs);
        assert_eq!(first.len(), 20);
        let after_first = misses();
        assert!(after_first >= 20);
        assert_eq!(list(&fs), first);
        assert_eq!(
            misses(),
            after_first,
            "the second listing read xattrs again"
        );
        // Another program hides one: its change time moves, so it is read again.
        let f = File::open(dir.path().join("f3")).unwrap();
        let hidden = DosXattr {
            attrs: Some(dos::HIDDEN),
            created: None,
        };
        write_xattr(&f, &hidden).unwrap();
        let third = list(&fs);
        assert_eq!(misses(), after_first + 1);
        let f3 = third.iter().find(|(n, _)| n == "f3").unwrap();
        assert_eq!(f3.1, dos::HIDDEN);
    }

    #[test]
    fn xattrs_detected_where_supported() {
        let dir = tmpfs_or_tmp();
        let fs = LocalFs::new(dir.path()).unwrap();
        let probe = File::open(dir.path()).unwrap();
        let supported =
            rustix::fs::fsetxattr(&probe, "user.lanshare.probe", b"1", XattrFlags::empty()).is_ok();
        assert_eq!(fs.capabilities().persistent_dos_attributes, supported);
        if supported {
            std::fs::write(dir.path().join("f"), b"").unwrap();
            let (h, _) = fs
                .open(&p("f"), &OpenOptions::read_write(CreateMode::Open))
                .unwrap();
            h.set_dos_attributes(dos::HIDDEN | dos::SYSTEM).unwrap();
            drop(h);
            // A fresh LocalFs (a server restart) still sees them.
            let fs2 = LocalFs::new(dir.path()).unwrap();
            assert_eq!(
                fs2.stat(&p("f")).unwrap().dos_attributes,
                dos::HIDDEN | dos::SYSTEM
            );
            // Junk in the xattr (a local user's doing) is ignored, not trusted.
            let f = File::open(dir.path().join("f")).unwrap();
            rustix::fs::fsetxattr(&f, XATTR_NAME, b"junk", XattrFlags::empty()).unwrap();
            assert_eq!(fs2.stat(&p("f")).unwrap().dos_attributes, dos::ARCHIVE);
        }
    }
}
