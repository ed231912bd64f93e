//! `MemFs`: an in-memory back-end for tests (of this crate and of the front-ends).
//!
//! It follows the same semantics as [`crate::LocalFs`] on Linux (an open handle outlives the
//! removal of its name; rename replaces atomically), so the shared battery holds for both.
//! One mutex guards the whole tree: simple, and plenty for tests.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use crate::case::fold;
use crate::types::dos;
use crate::{
    Capabilities, CreateMode, DirEntry, DirMode, DirStream, FsStats, Metadata, OpenOptions,
    OpenOutcome, SetTimes, Vfs, VfsError, VfsHandle, VfsPath,
};

const ROOT_INO: u64 = 1;
const DEFAULT_MAX_FILE_SIZE: u64 = 1 << 30;

/// An in-memory share. Cheap to clone (shared state).
#[derive(Clone)]
pub struct MemFs {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    dev: u64,
    max_file_size: u64,
}

struct State {
    nodes: HashMap<u64, Node>,
    next_ino: u64,
    /// Case-insensitive, case-preserving lookup.
    ci: bool,
}

enum Kind {
    File(Vec<u8>),
    Dir(MemDir),
}

/// A directory: entries by exact name (sorted, for streaming listings) and by folded name
/// (for case-insensitive lookup without a scan).
#[derive(Default)]
struct MemDir {
    entries: BTreeMap<String, u64>,
    /// folded → spellings present, sorted.
    folded: HashMap<String, Vec<String>>,
}

impl MemDir {
    /// Exact name first, then (if `ci`) the smallest spelling that folds equal.
    fn find(&self, name: &str, ci: bool) -> Option<(String, u64)> {
        if let Some(&ino) = self.entries.get(name) {
            return Some((name.to_owned(), ino));
        }
        if !ci {
            return None;
        }
        let real = self.folded.get(&fold(name))?.first()?;
        Some((real.clone(), *self.entries.get(real)?))
    }

    fn insert(&mut self, name: &str, ino: u64) {
        self.entries.insert(name.to_owned(), ino);
        let spellings = self.folded.entry(fold(name)).or_default();
        if let Err(at) = spellings.binary_search_by(|n| n.as_str().cmp(name)) {
            spellings.insert(at, name.to_owned());
        }
    }

    fn remove(&mut self, name: &str) -> Option<u64> {
        let ino = self.entries.remove(name)?;
        let k = fold(name);
        if let Some(spellings) = self.folded.get_mut(&k) {
            spellings.retain(|n| n != name);
            if spellings.is_empty() {
                self.folded.remove(&k);
            }
        }
        Some(ino)
    }
}

struct Node {
    kind: Kind,
    /// Directory entries naming this node (the root counts one for itself).
    links: u64,
    /// Live handles; the node is dropped when both counts are zero.
    opens: u64,
    created: SystemTime,
    accessed: SystemTime,
    modified: SystemTime,
    changed: SystemTime,
    /// Stored [`dos::SETTABLE`] bits and [`dos::SPARSE_FILE`].
    attrs: u32,
    /// lanshare's attributes ([`VfsHandle::get_attr`]): streams, EAs, security descriptor.
    xattrs: BTreeMap<String, Vec<u8>>,
}

impl Node {
    fn new(kind: Kind) -> Node {
        let now = SystemTime::now();
        let attrs = match kind {
            Kind::File(_) => dos::ARCHIVE,
            Kind::Dir(_) => 0,
        };
        Node {
            kind,
            links: 1,
            opens: 0,
            created: now,
            accessed: now,
            modified: now,
            changed: now,
            attrs,
            xattrs: BTreeMap::new(),
        }
    }

    fn is_dir(&self) -> bool {
        matches!(self.kind, Kind::Dir(_))
    }

    fn metadata(&self, ino: u64, dev: u64) -> Metadata {
        let (size, is_dir, nlink) = match &self.kind {
            Kind::File(d) => (d.len() as u64, false, self.links),
            Kind::Dir(_) => (0, true, 2),
        };
        let mut attrs = self.attrs & (dos::SETTABLE | dos::SPARSE_FILE);
        let mut mode = if is_dir { 0o040_755 } else { 0o100_644 };
        if is_dir {
            attrs |= dos::DIRECTORY;
        } else if attrs & dos::READONLY != 0 {
            mode &= !0o222;
        }
        if attrs == 0 {
            attrs = dos::NORMAL;
        }
        Metadata {
            file_id: ino,
            dev,
            size,
            alloc_size: size.div_ceil(4096) * 4096,
            is_dir,
            is_symlink: false,
            nlink,
            mode,
            uid: 0,
            gid: 0,
            created: self.created,
            accessed: self.accessed,
            modified: self.modified,
            changed: self.changed,
            dos_attributes: attrs,
        }
    }
}

impl State {
    fn node(&self, ino: u64) -> Result<&Node, VfsError> {
        self.nodes.get(&ino).ok_or(VfsError::NotFound)
    }

    fn node_mut(&mut self, ino: u64) -> Result<&mut Node, VfsError> {
        self.nodes.get_mut(&ino).ok_or(VfsError::NotFound)
    }

    fn entries(&self, dir: u64) -> Result<&MemDir, VfsError> {
        match &self.node(dir)?.kind {
            Kind::Dir(e) => Ok(e),
            Kind::File(_) => Err(VfsError::NotADirectory),
        }
    }

    fn entries_mut(&mut self, dir: u64) -> Result<&mut MemDir, VfsError> {
        match &mut self.node_mut(dir)?.kind {
            Kind::Dir(e) => Ok(e),
            Kind::File(_) => Err(VfsError::NotADirectory),
        }
    }

    /// The directory holding `path`'s last component; missing or non-directory ancestors are
    /// `PathNotFound`.
    fn parent_of(&self, path: &VfsPath) -> Result<u64, VfsError> {
        let mut cur = ROOT_INO;
        let comps = path.components();
        let middle = comps.split_last().map(|(_, m)| m).unwrap_or(&[]);
        for c in middle {
            cur = match self.entries(cur).ok().and_then(|e| e.find(c, self.ci)) {
                Some((_, ino)) if self.node(ino).is_ok_and(Node::is_dir) => ino,
                _ => return Err(VfsError::PathNotFound),
            };
        }
        Ok(cur)
    }

    fn lookup(&self, path: &VfsPath) -> Result<u64, VfsError> {
        let Some(name) = path.file_name() else {
            return Ok(ROOT_INO);
        };
        let parent = self.parent_of(path)?;
        self.find_in(parent, name)?
            .map(|(_, ino)| ino)
            .ok_or(VfsError::NotFound)
    }

    /// The real name and inode of `name` in `dir`.
    fn find_in(&self, dir: u64, name: &str) -> Result<Option<(String, u64)>, VfsError> {
        Ok(self.entries(dir)?.find(name, self.ci))
    }

    fn touch_dir(&mut self, dir: u64) {
        if let Ok(n) = self.node_mut(dir) {
            let now = SystemTime::now();
            n.modified = now;
            n.changed = now;
        }
    }

    fn insert(&mut self, parent: u64, name: &str, kind: Kind) -> Result<u64, VfsError> {
        let ino = self.next_ino;
        if self.find_in(parent, name)?.is_some() {
            return Err(VfsError::Exists);
        }
        self.entries_mut(parent)?.insert(name, ino);
        self.next_ino += 1;
        self.nodes.insert(ino, Node::new(kind));
        self.touch_dir(parent);
        Ok(ino)
    }

    /// Drops one link from `ino`, freeing it when nothing refers to it any more.
    fn unlink_node(&mut self, ino: u64) {
        if let Some(n) = self.nodes.get_mut(&ino) {
            n.links = n.links.saturating_sub(1);
            if n.links == 0 && n.opens == 0 {
                self.nodes.remove(&ino);
            }
        }
    }
}

impl Default for MemFs {
    fn default() -> Self {
        Self::new()
    }
}

impl MemFs {
    /// An empty, case-insensitive (case-preserving) share; files are capped at 1 GiB.
    pub fn new() -> MemFs {
        Self::with_options(true, DEFAULT_MAX_FILE_SIZE)
    }

    /// An empty case-sensitive share.
    pub fn case_sensitive() -> MemFs {
        Self::with_options(false, DEFAULT_MAX_FILE_SIZE)
    }

    /// An empty share whose files may not grow past `max` bytes ([`VfsError::NoSpace`]).
    pub fn with_max_file_size(max: u64) -> MemFs {
        Self::with_options(true, max)
    }

    /// Both knobs.
    pub fn with_options(case_insensitive: bool, max_file_size: u64) -> MemFs {
        let max = max_file_size;
        let mut nodes = HashMap::new();
        nodes.insert(ROOT_INO, Node::new(Kind::Dir(MemDir::default())));
        MemFs {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    nodes,
                    next_ino: ROOT_INO + 1,
                    ci: case_insensitive,
                }),
                dev: 0x6d656d,
                max_file_size: max,
            }),
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the tree consistent enough for tests.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Vfs for MemFs {
    fn open(
        &self,
        path: &VfsPath,
        opts: &OpenOptions,
    ) -> Result<(Box<dyn VfsHandle>, OpenOutcome), VfsError> {
        let truncating = matches!(
            opts.create,
            CreateMode::Overwrite | CreateMode::OverwriteIf | CreateMode::Supersede
        );
        if opts.directory == DirMode::DirOnly && truncating {
            return Err(VfsError::InvalidParameter);
        }
        let mut st = self.shared.lock();
        let parent = if path.is_root() {
            None
        } else {
            Some(st.parent_of(path)?)
        };
        let existing = match (parent, path.file_name()) {
            (Some(p), Some(name)) => st.find_in(p, name)?.map(|(_, ino)| ino),
            _ => Some(ROOT_INO),
        };
        let (ino, outcome) = match existing {
            Some(ino) => {
                let is_dir = st.node(ino)?.is_dir();
                if opts.create == CreateMode::Create {
                    return Err(VfsError::Exists);
                }
                match opts.directory {
                    DirMode::FileOnly if is_dir => return Err(VfsError::IsADirectory),
                    DirMode::DirOnly if !is_dir => return Err(VfsError::NotADirectory),
                    _ => {}
                }
                if is_dir && truncating {
                    return Err(VfsError::InvalidParameter);
                }
                let outcome = match opts.create {
                    CreateMode::Supersede => OpenOutcome::Superseded,
                    CreateMode::Overwrite | CreateMode::OverwriteIf => OpenOutcome::Overwritten,
                    _ => OpenOutcome::Opened,
                };
                if truncating {
                    let n = st.node_mut(ino)?;
                    if let Kind::File(d) = &mut n.kind {
                        d.clear();
                        d.shrink_to_fit();
                    }
                    // Overwriting a file replaces all of its data, named streams included.
                    n.xattrs
                        .retain(|k, _| !k.starts_with(crate::streams::STREAM_ATTR_PREFIX));
                    let wanted = opts.dos_attributes & dos::SETTABLE;
                    n.attrs = if wanted == 0 { dos::ARCHIVE } else { wanted };
                    let now = SystemTime::now();
                    n.modified = now;
                    n.changed = now;
                }
                (ino, outcome)
            }
            None => {
                if matches!(opts.create, CreateMode::Open | CreateMode::Overwrite) {
                    return Err(VfsError::NotFound);
                }
                let (Some(p), Some(name)) = (parent, path.file_name()) else {
                    return Err(VfsError::AccessDenied);
                };
                let kind = if opts.directory == DirMode::DirOnly {
                    Kind::Dir(MemDir::default())
                } else {
                    Kind::File(Vec::new())
                };
                let ino = st.insert(p, name, kind)?;
                let wanted = opts.dos_attributes & dos::SETTABLE;
                if wanted != 0 {
                    st.node_mut(ino)?.attrs = wanted;
                }
                (ino, OpenOutcome::Created)
            }
        };
        let node = st.node_mut(ino)?;
        node.opens += 1;
        let is_dir = node.is_dir();
        drop(st);
        let h = MemHandle {
            shared: Arc::clone(&self.shared),
            ino,
            is_dir,
            read: opts.read,
            write: opts.write,
        };
        Ok((Box::new(h), outcome))
    }

    fn stat(&self, path: &VfsPath) -> Result<Metadata, VfsError> {
        let st = self.shared.lock();
        let ino = st.lookup(path)?;
        Ok(st.node(ino)?.metadata(ino, self.shared.dev))
    }

    fn rename(&self, from: &VfsPath, to: &VfsPath, replace: bool) -> Result<(), VfsError> {
        let (Some(from_name), Some(to_name)) = (from.file_name(), to.file_name()) else {
            return Err(VfsError::AccessDenied);
        };
        if to.starts_with(from) && to != from {
            return Err(VfsError::InvalidParameter);
        }
        let mut st = self.shared.lock();
        let from_dir = st.parent_of(from)?;
        let to_dir = st.parent_of(to)?;
        let (from_real, src) = st.find_in(from_dir, from_name)?.ok_or(VfsError::NotFound)?;
        if let Some((dst_real, dst)) = st.find_in(to_dir, to_name)? {
            if dst == src {
                if from_dir == to_dir && from_real == to_name {
                    // Onto itself.
                    return if replace {
                        Ok(())
                    } else {
                        Err(VfsError::Exists)
                    };
                }
                // A change of case only: falls through to a plain move below.
            } else {
                if !replace {
                    return Err(VfsError::Exists);
                }
                if st.node(dst)?.is_dir() || st.node(src)?.is_dir() {
                    return Err(VfsError::AccessDenied);
                }
                st.entries_mut(to_dir)?.remove(&dst_real);
                st.unlink_node(dst);
            }
        }
        st.entries_mut(from_dir)?.remove(&from_real);
        st.entries_mut(to_dir)?.insert(to_name, src);
        st.touch_dir(from_dir);
        st.touch_dir(to_dir);
        if let Ok(n) = st.node_mut(src) {
            n.changed = SystemTime::now();
        }
        Ok(())
    }

    fn remove_file(&self, path: &VfsPath) -> Result<(), VfsError> {
        let Some(name) = path.file_name() else {
            return Err(VfsError::IsADirectory);
        };
        let mut st = self.shared.lock();
        let parent = st.parent_of(path)?;
        let (real, ino) = st.find_in(parent, name)?.ok_or(VfsError::NotFound)?;
        if st.node(ino)?.is_dir() {
            return Err(VfsError::IsADirectory);
        }
        st.entries_mut(parent)?.remove(&real);
        st.unlink_node(ino);
        st.touch_dir(parent);
        Ok(())
    }

    fn remove_dir(&self, path: &VfsPath) -> Result<(), VfsError> {
        let Some(name) = path.file_name() else {
            return Err(VfsError::AccessDenied);
        };
        let mut st = self.shared.lock();
        let parent = st.parent_of(path)?;
        let (real, ino) = st.find_in(parent, name)?.ok_or(VfsError::NotFound)?;
        match &st.node(ino)?.kind {
            Kind::File(_) => return Err(VfsError::NotADirectory),
            Kind::Dir(e) if !e.entries.is_empty() => return Err(VfsError::NotEmpty),
            Kind::Dir(_) => {}
        }
        st.entries_mut(parent)?.remove(&real);
        st.unlink_node(ino);
        st.touch_dir(parent);
        Ok(())
    }

    fn statfs(&self) -> Result<FsStats, VfsError> {
        let st = self.shared.lock();
        let used: u64 = st
            .nodes
            .values()
            .map(|n| match &n.kind {
                Kind::File(d) => (d.len() as u64).div_ceil(4096),
                Kind::Dir(_) => 1,
            })
            .sum();
        let total = (self.shared.max_file_size / 4096)
            .max(used)
            .saturating_mul(16);
        Ok(FsStats {
            block_size: 4096,
            total_blocks: total,
            free_blocks: total - used,
            avail_blocks: total - used,
            total_files: 1 << 20,
            free_files: (1u64 << 20).saturating_sub(st.nodes.len() as u64),
            max_name_len: 255,
        })
    }

    fn in_memory(&self) -> bool {
        true
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            case_sensitive: !self.shared.lock().ci,
            case_preserving: true,
            persistent_dos_attributes: true,
            settable_creation_time: true,
            hard_links: false,
            max_name_len: 255,
        }
    }
}

struct MemHandle {
    shared: Arc<Shared>,
    ino: u64,
    is_dir: bool,
    read: bool,
    write: bool,
}

impl Drop for MemHandle {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        if let Some(n) = st.nodes.get_mut(&self.ino) {
            n.opens = n.opens.saturating_sub(1);
            if n.links == 0 && n.opens == 0 {
                st.nodes.remove(&self.ino);
            }
        }
    }
}

impl MemHandle {
    fn need_write(&self) -> Result<(), VfsError> {
        if self.is_dir {
            Err(VfsError::IsADirectory)
        } else if !self.write {
            Err(VfsError::AccessDenied)
        } else {
            Ok(())
        }
    }

    fn with_data<T>(&self, f: impl FnOnce(&mut Vec<u8>) -> T) -> Result<T, VfsError> {
        let mut st = self.shared.lock();
        let n = st.node_mut(self.ino)?;
        match &mut n.kind {
            Kind::File(d) => {
                let out = f(d);
                Ok(out)
            }
            Kind::Dir(_) => Err(VfsError::IsADirectory),
        }
    }

    fn grow_to(&self, d: &mut Vec<u8>, len: u64) -> Result<(), VfsError> {
        if len > self.shared.max_file_size {
            return Err(VfsError::NoSpace);
        }
        let len = usize::try_from(len).map_err(|_| VfsError::NoSpace)?;
        if len > d.len() {
            d.resize(len, 0);
        }
        Ok(())
    }

    fn touch_modified(&self) {
        let mut st = self.shared.lock();
        if let Ok(n) = st.node_mut(self.ino) {
            let now = SystemTime::now();
            n.modified = now;
            n.changed = now;
        }
    }
}

impl VfsHandle for MemHandle {
    fn in_memory(&self) -> bool {
        true
    }

    fn metadata(&self) -> Result<Metadata, VfsError> {
        let st = self.shared.lock();
        Ok(st.node(self.ino)?.metadata(self.ino, self.shared.dev))
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize, VfsError> {
        if self.is_dir {
            return Err(VfsError::IsADirectory);
        }
        if !self.read {
            return Err(VfsError::AccessDenied);
        }
        self.with_data(|d| {
            let Ok(start) = usize::try_from(offset) else {
                return 0;
            };
            let Some(src) = d.get(start..) else {
                return 0;
            };
            let n = src.len().min(buf.len());
            if let (Some(dst), Some(src)) = (buf.get_mut(..n), src.get(..n)) {
                dst.copy_from_slice(src);
            }
            n
        })
    }

    fn write_at(&self, data: &[u8], offset: u64) -> Result<usize, VfsError> {
        self.need_write()?;
        if data.is_empty() {
            // Like pwrite: writing nothing never extends the file.
            return Ok(0);
        }
        let end = offset
            .checked_add(data.len() as u64)
            .ok_or(VfsError::FileTooLarge)?;
        self.with_data(|d| -> Result<(), VfsError> {
            self.grow_to(d, end)?;
            let start = usize::try_from(offset).map_err(|_| VfsError::NoSpace)?;
            if let Some(dst) = d.get_mut(start..start + data.len()) {
                dst.copy_from_slice(data);
            }
            Ok(())
        })??;
        self.touch_modified();
        Ok(data.len())
    }

    fn set_len(&self, len: u64) -> Result<(), VfsError> {
        self.need_write()?;
        self.with_data(|d| -> Result<(), VfsError> {
            self.grow_to(d, len)?;
            let len = usize::try_from(len).map_err(|_| VfsError::NoSpace)?;
            d.truncate(len);
            Ok(())
        })??;
        self.touch_modified();
        Ok(())
    }

    fn sync(&self) -> Result<(), VfsError> {
        Ok(())
    }

    fn set_times(&self, times: SetTimes) -> Result<(), VfsError> {
        let mut st = self.shared.lock();
        let n = st.node_mut(self.ino)?;
        if let Some(c) = times.created {
            n.created = c;
        }
        if let Some(a) = times.accessed {
            n.accessed = a;
        }
        if let Some(m) = times.modified {
            n.modified = m;
        }
        n.changed = SystemTime::now();
        Ok(())
    }

    fn set_dos_attributes(&self, attrs: u32) -> Result<(), VfsError> {
        let mut st = self.shared.lock();
        let n = st.node_mut(self.ino)?;
        n.attrs = attrs & dos::SETTABLE | n.attrs & dos::SPARSE_FILE;
        n.changed = SystemTime::now();
        Ok(())
    }

    fn set_sparse(&self, sparse: bool) -> Result<(), VfsError> {
        if self.is_dir {
            return Err(VfsError::IsADirectory);
        }
        let mut st = self.shared.lock();
        let n = st.node_mut(self.ino)?;
        if sparse {
            n.attrs |= dos::SPARSE_FILE;
        } else {
            n.attrs &= !dos::SPARSE_FILE;
        }
        n.changed = SystemTime::now();
        Ok(())
    }

    fn zero_range(&self, offset: u64, len: u64, _deallocate: bool) -> Result<(), VfsError> {
        // Memory has no holes: the bytes are zeroed in place, the size kept.
        self.need_write()?;
        self.with_data(|d| {
            let size = d.len() as u64;
            let end = offset.saturating_add(len).min(size);
            if end > offset
                && let (Ok(a), Ok(b)) = (usize::try_from(offset), usize::try_from(end))
                && let Some(r) = d.get_mut(a..b)
            {
                r.fill(0);
            }
        })?;
        self.touch_modified();
        Ok(())
    }

    fn get_attr(&self, name: &str) -> Result<Option<Vec<u8>>, VfsError> {
        let st = self.shared.lock();
        Ok(st.node(self.ino)?.xattrs.get(name).cloned())
    }

    fn set_attr(&self, name: &str, value: &[u8]) -> Result<(), VfsError> {
        if value.len() > crate::MAX_ATTR_SIZE {
            return Err(VfsError::FileTooLarge);
        }
        let mut st = self.shared.lock();
        let n = st.node_mut(self.ino)?;
        n.xattrs.insert(name.to_owned(), value.to_vec());
        n.changed = SystemTime::now();
        Ok(())
    }

    fn remove_attr(&self, name: &str) -> Result<(), VfsError> {
        let mut st = self.shared.lock();
        let n = st.node_mut(self.ino)?;
        n.xattrs.remove(name).ok_or(VfsError::NotFound)?;
        n.changed = SystemTime::now();
        Ok(())
    }

    fn list_attrs(&self) -> Result<Vec<String>, VfsError> {
        let st = self.shared.lock();
        Ok(st.node(self.ino)?.xattrs.keys().cloned().collect())
    }

    fn read_dir(&self) -> Result<Box<dyn DirStream>, VfsError> {
        if !self.is_dir {
            return Err(VfsError::NotADirectory);
        }
        Ok(Box::new(MemDirStream {
            shared: Arc::clone(&self.shared),
            dir: self.ino,
            after: None,
        }))
    }
}

/// Walks the directory's sorted map by name, holding the lock only per entry: memory use is
/// one name, and entries added or removed meanwhile are simply seen or not.
struct MemDirStream {
    shared: Arc<Shared>,
    dir: u64,
    after: Option<String>,
}

impl DirStream for MemDirStream {
    fn next_entry(&mut self) -> Option<Result<DirEntry, VfsError>> {
        let st = self.shared.lock();
        let entries = match st.entries(self.dir) {
            Ok(e) => e,
            // The directory was removed while listed: nothing more to list.
            Err(_) => return None,
        };
        let lower = match &self.after {
            Some(a) => Bound::Excluded(a.as_str()),
            None => Bound::Unbounded,
        };
        let (name, &ino) = entries
            .entries
            .range::<str, _>((lower, Bound::Unbounded))
            .next()?;
        let name = name.clone();
        let metadata = match st.node(ino) {
            Ok(n) => n.metadata(ino, self.shared.dev),
            Err(e) => return Some(Err(e)),
        };
        drop(st);
        self.after = Some(name.clone());
        Some(Ok(DirEntry { name, metadata }))
    }

    fn rewind(&mut self) -> Result<(), VfsError> {
        self.after = None;
        Ok(())
    }
}
