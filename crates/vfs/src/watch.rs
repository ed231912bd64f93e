//! Change notification, protocol-neutral: a [`ChangeHub`] per share collects the changes made
//! through the server (by wrapping the back-end in [`Notifying`], so every front-end and every
//! session reports them without knowing about it) and, for a local directory, the changes
//! other programs make on the disk (inotify, see `inotify.rs`); [`Watch`]es registered on a
//! directory (optionally its whole tree) receive the ones their filter selects.
//!
//! The filter bits and actions are the Windows ones ([MS-FSCC] 2.7.1 FILE_NOTIFY_INFORMATION,
//! [MS-SMB2] 2.2.35 CompletionFilter) because they are the finest-grained vocabulary any of the
//! front-ends speaks; a front-end that needs less ignores the rest.
//!
//! A watch keeps the changes that arrive while nobody asks for them, up to a byte budget (what
//! the first request's buffer can hold, [MS-FSA] 2.1.5.10); beyond it the watch only remembers
//! that it overflowed, and the front-end tells its client to re-read the directory.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use crate::{
    DirStream, FsStats, Metadata, OpenOptions, OpenOutcome, SetTimes, Vfs, VfsError, VfsHandle,
    VfsPath,
};

/// What a change touched: the CompletionFilter bits ([MS-SMB2] 2.2.35).
pub mod filter {
    /// A file was added, removed or renamed.
    pub const FILE_NAME: u32 = 0x0000_0001;
    /// A directory was added, removed or renamed.
    pub const DIR_NAME: u32 = 0x0000_0002;
    /// Attributes changed.
    pub const ATTRIBUTES: u32 = 0x0000_0004;
    /// Size changed.
    pub const SIZE: u32 = 0x0000_0008;
    /// Last write time changed.
    pub const LAST_WRITE: u32 = 0x0000_0010;
    /// Last access time changed.
    pub const LAST_ACCESS: u32 = 0x0000_0020;
    /// Creation time changed.
    pub const CREATION: u32 = 0x0000_0040;
    /// Extended attributes changed.
    pub const EA: u32 = 0x0000_0080;
    /// Security descriptor changed.
    pub const SECURITY: u32 = 0x0000_0100;
    /// A named stream was added, removed or renamed.
    pub const STREAM_NAME: u32 = 0x0000_0200;
    /// A named stream's size changed.
    pub const STREAM_SIZE: u32 = 0x0000_0400;
    /// A named stream was written.
    pub const STREAM_WRITE: u32 = 0x0000_0800;
}

/// The kind of a change ([MS-FSCC] 2.7.1 Action; the values are the wire ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum ChangeAction {
    /// Created (or moved in from another directory).
    Added = 1,
    /// Deleted (or moved out).
    Removed = 2,
    /// Data, size, attributes or times changed.
    Modified = 3,
    /// The old name of a rename within one directory.
    RenamedOld = 4,
    /// The new name of a rename within one directory.
    RenamedNew = 5,
}

/// One change as a watch reports it: the name is relative to the watched directory, components
/// separated by `/` (more than one only for a recursive watch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// What happened.
    pub action: ChangeAction,
    /// Where, relative to the watched directory.
    pub name: String,
}

/// What a watch has to say when asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pending {
    /// Nothing happened since the last time.
    Nothing,
    /// These changes, oldest first.
    Changes(Vec<Change>),
    /// More changed than the budget could hold: the client must re-read the directory.
    Overflow,
    /// The watched directory itself was deleted.
    DirectoryRemoved,
}

/// Bytes a change costs in a FILE_NOTIFY_INFORMATION buffer (12-byte header, UTF-16 name,
/// 4-byte alignment): the budget is kept in the unit the client's buffer is measured in.
fn wire_cost(name: &str) -> usize {
    (12 + 2 * name.encode_utf16().count()).next_multiple_of(4)
}

/// How long a change made through the server suppresses the same change seen by inotify.
const ECHO_WINDOW: Duration = Duration::from_secs(3);
/// The most changes remembered for that purpose.
const ECHO_MAX: usize = 4096;
/// The most changes a watch buffers, whatever its byte budget.
const MAX_BUFFERED: usize = 16_384;

struct WatchInner {
    dir: VfsPath,
    /// `dir` folded, component by component, for case-insensitive matching.
    folded: Vec<String>,
    recursive: bool,
    filter: u32,
    budget: usize,
    state: Mutex<WatchState>,
    wake: Box<dyn Fn() + Send + Sync>,
    /// Set when its [`Watch`] is dropped (before the Arc itself goes).
    dead: std::sync::atomic::AtomicBool,
}

#[derive(Default)]
struct WatchState {
    changes: Vec<Change>,
    bytes: usize,
    overflowed: bool,
    removed: bool,
    /// A request is waiting: the change that arrives next completes it, alone with whatever
    /// came with it; later ones wait for the next request ([MS-FSA] 2.1.5.10: a pending
    /// request is completed as soon as a change is recorded).
    armed: bool,
    /// How many of `changes` the waiting request takes.
    cut: Option<usize>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A registered watch; dropping it unregisters it (and its kernel watches).
pub struct Watch {
    inner: Arc<WatchInner>,
    hub: Arc<ChangeHub>,
}

impl Watch {
    /// Takes what has accumulated since the last call.
    pub fn take(&self) -> Pending {
        let mut s = lock(&self.inner.state);
        if s.removed {
            return Pending::DirectoryRemoved;
        }
        if s.overflowed {
            s.overflowed = false;
            s.changes.clear();
            s.bytes = 0;
            return Pending::Overflow;
        }
        if s.changes.is_empty() {
            return Pending::Nothing;
        }
        s.armed = false;
        let n = s.cut.take().unwrap_or(s.changes.len()).min(s.changes.len());
        let taken: Vec<Change> = s.changes.drain(..n).collect();
        s.bytes = s.changes.iter().map(|c| wire_cost(&c.name)).sum();
        Pending::Changes(taken)
    }

    /// A request is about to wait for changes: the next one to arrive completes it.
    pub fn arm(&self) {
        let mut s = lock(&self.inner.state);
        s.armed = true;
    }

    /// The waiting request went away (cancelled): changes accumulate again.
    pub fn disarm(&self) {
        let mut s = lock(&self.inner.state);
        s.armed = false;
        s.cut = None;
    }

    /// The watched directory.
    pub fn dir(&self) -> &VfsPath {
        &self.inner.dir
    }

    /// The filter it was registered with.
    pub fn filter(&self) -> u32 {
        self.inner.filter
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.inner.dead.store(true, Ordering::Relaxed);
        self.hub.active.fetch_sub(1, Ordering::Relaxed);
        lock(&self.hub.watches).retain(|w| w.strong_count() > 0);
        if let Some(k) = &self.hub.kernel {
            k.sweep(&self.hub);
        }
    }
}

/// The changes of one share and the watches on it.
pub struct ChangeHub {
    watches: Mutex<Vec<Weak<WatchInner>>>,
    /// Live watches: a change nobody watches costs one atomic load.
    active: AtomicUsize,
    /// Changes made through the server, so that their inotify echo is not reported twice.
    echoes: Mutex<VecDeque<(Instant, String, ChangeAction)>>,
    kernel: Option<crate::inotify::Kernel>,
}

impl std::fmt::Debug for ChangeHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeHub")
            .field("active", &self.active.load(Ordering::Relaxed))
            .field("kernel", &self.kernel.is_some())
            .finish()
    }
}

fn fold_components(p: &VfsPath) -> Vec<String> {
    p.components().iter().map(|c| crate::fold_case(c)).collect()
}

fn echo_key(p: &VfsPath) -> String {
    fold_components(p).join("/")
}

impl ChangeHub {
    /// A hub that hears only about changes made through the server (MemFs, tests).
    pub fn new() -> Arc<ChangeHub> {
        Arc::new(ChangeHub {
            watches: Mutex::new(Vec::new()),
            active: AtomicUsize::new(0),
            echoes: Mutex::new(VecDeque::new()),
            kernel: None,
        })
    }

    /// A hub that also watches the local directory `root` (the share root) with inotify, with
    /// at most `max_kernel_watches` kernel watches (one per directory watched). If inotify
    /// cannot be set up, the hub works without it and the reason is returned beside it.
    pub fn with_kernel(
        root: &std::path::Path,
        max_kernel_watches: usize,
    ) -> (Arc<ChangeHub>, Option<VfsError>) {
        let mut err = None;
        let hub = Arc::new_cyclic(|weak: &Weak<ChangeHub>| {
            let kernel = match crate::inotify::Kernel::start(root, max_kernel_watches, weak.clone())
            {
                Ok(k) => Some(k),
                Err(e) => {
                    err = Some(e);
                    None
                }
            };
            ChangeHub {
                watches: Mutex::new(Vec::new()),
                active: AtomicUsize::new(0),
                echoes: Mutex::new(VecDeque::new()),
                kernel,
            }
        });
        (hub, err)
    }

    /// Registers a watch on `dir` (and everything beneath it when `recursive`) for the changes
    /// `filter` selects; `budget` bytes of changes are kept between two [`Watch::take`]s;
    /// `wake` is called (from any thread) whenever something arrives.
    pub fn watch(
        self: &Arc<Self>,
        dir: &VfsPath,
        recursive: bool,
        filter: u32,
        budget: usize,
        wake: Box<dyn Fn() + Send + Sync>,
    ) -> Watch {
        let inner = Arc::new(WatchInner {
            dir: dir.clone(),
            folded: fold_components(dir),
            recursive,
            filter,
            budget,
            state: Mutex::new(WatchState::default()),
            wake,
            dead: std::sync::atomic::AtomicBool::new(false),
        });
        lock(&self.watches).push(Arc::downgrade(&inner));
        self.active.fetch_add(1, Ordering::Relaxed);
        if let Some(k) = &self.kernel {
            k.add_tree(dir, recursive);
        }
        Watch {
            inner,
            hub: self.clone(),
        }
    }

    /// Number of live watches.
    pub fn watch_count(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    /// Kernel watches in use (0 without inotify).
    pub fn kernel_watch_count(&self) -> usize {
        self.kernel.as_ref().map_or(0, |k| k.count())
    }

    /// Announces a change the server is about to make, before making it: inotify may see the
    /// change before [`ChangeHub::report`] runs, and must then recognise it as ours.
    pub fn expect(&self, path: &VfsPath, action: ChangeAction) {
        if self.kernel.is_none() || self.active.load(Ordering::Relaxed) == 0 {
            return;
        }
        let key = echo_key(path);
        let now = Instant::now();
        let mut echoes = lock(&self.echoes);
        while echoes
            .front()
            .is_some_and(|(t, _, _)| now.duration_since(*t) > ECHO_WINDOW)
            || echoes.len() >= ECHO_MAX
        {
            echoes.pop_front();
        }
        // A stream of writes to one file is one entry, kept fresh.
        if let Some(last) = echoes.back_mut()
            && last.2 == action
            && last.1 == key
        {
            last.0 = now;
            return;
        }
        echoes.push_back((now, key, action));
    }

    /// The announced change did not happen after all.
    pub fn unexpect(&self, path: &VfsPath, action: ChangeAction) {
        if self.kernel.is_none() {
            return;
        }
        let key = echo_key(path);
        let mut echoes = lock(&self.echoes);
        if let Some(i) = echoes
            .iter()
            .rposition(|(_, k, a)| *a == action && *k == key)
        {
            echoes.remove(i);
        }
    }

    /// Reports a change made through the server (announced with [`ChangeHub::expect`] when
    /// inotify may see it too).
    pub fn report(&self, path: &VfsPath, action: ChangeAction, what: u32) {
        if self.active.load(Ordering::Relaxed) == 0 {
            return;
        }
        self.deliver(path, action, what);
    }

    /// Reports a change seen on the disk, unless it is the echo of one made through the server.
    pub(crate) fn report_external(&self, path: &VfsPath, action: ChangeAction, what: u32) {
        if self.active.load(Ordering::Relaxed) == 0 {
            return;
        }
        {
            let key = echo_key(path);
            let now = Instant::now();
            let mut echoes = lock(&self.echoes);
            let hit = echoes.iter().position(|(t, k, a)| {
                now.duration_since(*t) <= ECHO_WINDOW
                    && *k == key
                    // Any change of ours to a file explains the metadata changes inotify sees.
                    && (action == ChangeAction::Modified || *a == action)
            });
            if let Some(i) = hit {
                // The echo of a create (or delete, rename) is consumed for that action, but
                // still explains the metadata changes that follow it (the DOS attributes
                // written right after a create): inotify may deliver those before the server
                // has reported the create, and a client must never see Modified before Added
                // (smbtorture smb2.notify.valid-req).
                if let Some(e) = echoes.get_mut(i) {
                    e.2 = ChangeAction::Modified;
                }
                return;
            }
        }
        self.deliver(path, action, what);
    }

    /// A watched directory is going away (deleted, or delete-pending while other opens
    /// remain): watches on it complete with that news.
    pub fn directory_deleted(&self, dir: &VfsPath) {
        let folded = fold_components(dir);
        for w in self.live() {
            if w.folded == folded {
                lock(&w.state).removed = true;
                (w.wake)();
            }
        }
    }

    /// Every watch overflowed (the kernel dropped events).
    pub(crate) fn overflow_all(&self) {
        for w in self.live() {
            lock(&w.state).overflowed = true;
            (w.wake)();
        }
    }

    fn live(&self) -> Vec<Arc<WatchInner>> {
        lock(&self.watches)
            .iter()
            .filter_map(Weak::upgrade)
            .filter(|w| !w.dead.load(Ordering::Relaxed))
            .collect()
    }

    /// True when some live watch covers directory `dir` (for the kernel side).
    pub(crate) fn covers(&self, dir: &VfsPath) -> bool {
        let folded = fold_components(dir);
        self.live()
            .iter()
            .any(|w| folded == w.folded || (w.recursive && folded.starts_with(&w.folded)))
    }

    /// A directory appeared inside a recursively watched tree: watch it too.
    pub(crate) fn kernel_add_tree(&self, dir: &VfsPath) {
        if let Some(k) = &self.kernel {
            k.add_tree(dir, true);
        }
    }

    fn deliver(&self, path: &VfsPath, action: ChangeAction, what: u32) {
        let folded = fold_components(path);
        for w in self.live() {
            if action == ChangeAction::Removed && folded == w.folded {
                lock(&w.state).removed = true;
                (w.wake)();
                continue;
            }
            if folded.len() <= w.folded.len() || !folded.starts_with(&w.folded) {
                continue;
            }
            if !w.recursive && folded.len() != w.folded.len() + 1 {
                continue;
            }
            if w.filter & what == 0 {
                continue;
            }
            let name = path.components()[w.folded.len()..].join("/");
            {
                let mut s = lock(&w.state);
                if s.overflowed || s.removed {
                    continue;
                }
                // A burst of writes to one file is one modification to whoever watches.
                if action == ChangeAction::Modified
                    && s.changes
                        .last()
                        .is_some_and(|c| c.action == action && c.name == name)
                {
                    continue;
                }
                let cost = wire_cost(&name);
                if s.bytes + cost > w.budget || s.changes.len() >= MAX_BUFFERED {
                    s.overflowed = true;
                    s.changes.clear();
                    s.bytes = 0;
                } else {
                    s.bytes += cost;
                    s.changes.push(Change { action, name });
                    if s.armed {
                        s.armed = false;
                        s.cut = Some(s.changes.len());
                    }
                }
            }
            (w.wake)();
        }
    }
}

/// A back-end that reports every change made through it to a [`ChangeHub`].
pub struct Notifying {
    inner: Arc<dyn Vfs>,
    hub: Arc<ChangeHub>,
}

impl Notifying {
    /// Wraps `inner`; changes go to `hub`.
    pub fn new(inner: Arc<dyn Vfs>, hub: Arc<ChangeHub>) -> Notifying {
        Notifying { inner, hub }
    }

    /// The hub changes go to.
    pub fn hub(&self) -> &Arc<ChangeHub> {
        &self.hub
    }
}

fn name_filter(is_dir: bool) -> u32 {
    if is_dir {
        filter::DIR_NAME
    } else {
        filter::FILE_NAME
    }
}

impl Vfs for Notifying {
    fn open(
        &self,
        path: &VfsPath,
        opts: &OpenOptions,
    ) -> Result<(Box<dyn VfsHandle>, OpenOutcome), VfsError> {
        let may_create = opts.create != crate::CreateMode::Open;
        let may_change = matches!(
            opts.create,
            crate::CreateMode::Overwrite
                | crate::CreateMode::OverwriteIf
                | crate::CreateMode::Supersede
        );
        if may_create {
            self.hub.expect(path, ChangeAction::Added);
        }
        if may_change {
            self.hub.expect(path, ChangeAction::Modified);
        }
        let r = self.inner.open(path, opts);
        if may_create && !matches!(r, Ok((_, OpenOutcome::Created))) {
            self.hub.unexpect(path, ChangeAction::Added);
        }
        let (handle, outcome) = r?;
        match outcome {
            OpenOutcome::Opened => {}
            OpenOutcome::Created => {
                let is_dir = opts.directory == crate::DirMode::DirOnly;
                self.hub
                    .report(path, ChangeAction::Added, name_filter(is_dir));
            }
            OpenOutcome::Overwritten | OpenOutcome::Superseded => self.hub.report(
                path,
                ChangeAction::Modified,
                filter::SIZE | filter::LAST_WRITE | filter::ATTRIBUTES,
            ),
        }
        let handle = NotifyingHandle {
            inner: handle,
            path: path.clone(),
            hub: self.hub.clone(),
        };
        Ok((Box::new(handle), outcome))
    }

    fn stat(&self, path: &VfsPath) -> Result<Metadata, VfsError> {
        self.inner.stat(path)
    }

    fn identity(&self, path: &VfsPath) -> Result<crate::FileIdentity, VfsError> {
        self.inner.identity(path)
    }

    fn rename(&self, from: &VfsPath, to: &VfsPath, replace: bool) -> Result<(), VfsError> {
        let is_dir = self.hub.watch_count() > 0 && self.inner.stat(from).is_ok_and(|m| m.is_dir);
        // [MS-FSA] 2.1.5.14.11: a rename within a directory is old name / new name; a move is
        // a removal from one directory and an addition to the other.
        let (old, new) = if from.parent() == to.parent() {
            (ChangeAction::RenamedOld, ChangeAction::RenamedNew)
        } else {
            (ChangeAction::Removed, ChangeAction::Added)
        };
        self.hub.expect(from, old);
        self.hub.expect(to, new);
        if let Err(e) = self.inner.rename(from, to, replace) {
            self.hub.unexpect(from, old);
            self.hub.unexpect(to, new);
            return Err(e);
        }
        let what = name_filter(is_dir);
        self.hub.report(from, old, what);
        self.hub.report(to, new, what);
        Ok(())
    }

    fn remove_file(&self, path: &VfsPath) -> Result<(), VfsError> {
        self.hub.expect(path, ChangeAction::Removed);
        if let Err(e) = self.inner.remove_file(path) {
            self.hub.unexpect(path, ChangeAction::Removed);
            return Err(e);
        }
        self.hub
            .report(path, ChangeAction::Removed, filter::FILE_NAME);
        Ok(())
    }

    fn remove_dir(&self, path: &VfsPath) -> Result<(), VfsError> {
        self.hub.expect(path, ChangeAction::Removed);
        if let Err(e) = self.inner.remove_dir(path) {
            self.hub.unexpect(path, ChangeAction::Removed);
            return Err(e);
        }
        self.hub
            .report(path, ChangeAction::Removed, filter::DIR_NAME);
        Ok(())
    }

    fn statfs(&self) -> Result<FsStats, VfsError> {
        self.inner.statfs()
    }

    fn capabilities(&self) -> crate::Capabilities {
        self.inner.capabilities()
    }

    fn in_memory(&self) -> bool {
        self.inner.in_memory()
    }
}

/// A handle whose changes are reported under the name it was opened with (a rename through
/// another open after that is not followed).
struct NotifyingHandle {
    inner: Box<dyn VfsHandle>,
    path: VfsPath,
    hub: Arc<ChangeHub>,
}

impl NotifyingHandle {
    fn expect(&self) {
        self.hub.expect(&self.path, ChangeAction::Modified);
    }

    fn modified(&self, what: u32) {
        self.hub.report(&self.path, ChangeAction::Modified, what);
    }
}

impl VfsHandle for NotifyingHandle {
    fn metadata(&self) -> Result<Metadata, VfsError> {
        self.inner.metadata()
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize, VfsError> {
        self.inner.read_at(buf, offset)
    }

    // Forwarded, not left to the trait's default: the default zero-fills the buffer first,
    // which showed in large READ profiles (LocalFs reads into the spare capacity).
    fn read_append(&self, buf: &mut Vec<u8>, len: usize, offset: u64) -> Result<usize, VfsError> {
        self.inner.read_append(buf, len, offset)
    }

    // Forwarded too: the defaults would turn zero-copy READs off for every watched share.
    fn in_memory_len(&self, offset: u64, len: usize) -> Option<usize> {
        self.inner.in_memory_len(offset, len)
    }

    fn send_to(
        &self,
        out: std::os::fd::BorrowedFd<'_>,
        offset: u64,
        len: usize,
    ) -> Option<std::io::Result<usize>> {
        self.inner.send_to(out, offset, len)
    }

    fn splice_target(&self) -> bool {
        self.inner.splice_target()
    }

    fn in_memory(&self) -> bool {
        self.inner.in_memory()
    }

    fn splice_from(
        &self,
        pipe: std::os::fd::BorrowedFd<'_>,
        offset: u64,
        len: usize,
    ) -> Option<Result<usize, VfsError>> {
        self.expect();
        let r = self.inner.splice_from(pipe, offset, len)?;
        if r.is_ok() {
            self.modified(filter::LAST_WRITE | filter::SIZE);
        }
        Some(r)
    }

    fn write_at(&self, data: &[u8], offset: u64) -> Result<usize, VfsError> {
        self.expect();
        let n = self.inner.write_at(data, offset)?;
        self.modified(filter::LAST_WRITE | filter::SIZE);
        Ok(n)
    }

    fn set_len(&self, len: u64) -> Result<(), VfsError> {
        self.expect();
        self.inner.set_len(len)?;
        self.modified(filter::SIZE | filter::LAST_WRITE);
        Ok(())
    }

    fn sync(&self) -> Result<(), VfsError> {
        self.inner.sync()
    }

    fn set_times(&self, times: SetTimes) -> Result<(), VfsError> {
        let mut what = 0;
        if times.created.is_some() {
            what |= filter::CREATION;
        }
        if times.accessed.is_some() {
            what |= filter::LAST_ACCESS;
        }
        if times.modified.is_some() {
            what |= filter::LAST_WRITE;
        }
        self.expect();
        self.inner.set_times(times)?;
        if what != 0 {
            self.modified(what);
        }
        Ok(())
    }

    fn set_dos_attributes(&self, attrs: u32) -> Result<(), VfsError> {
        self.expect();
        self.inner.set_dos_attributes(attrs)?;
        self.modified(filter::ATTRIBUTES);
        Ok(())
    }

    fn read_dir(&self) -> Result<Box<dyn DirStream>, VfsError> {
        self.inner.read_dir()
    }

    fn get_attr(&self, name: &str) -> Result<Option<Vec<u8>>, VfsError> {
        self.inner.get_attr(name)
    }

    fn set_attr(&self, name: &str, value: &[u8]) -> Result<(), VfsError> {
        self.expect();
        self.inner.set_attr(name, value)?;
        self.modified(ATTR_BITS);
        Ok(())
    }

    fn remove_attr(&self, name: &str) -> Result<(), VfsError> {
        self.expect();
        self.inner.remove_attr(name)?;
        self.modified(ATTR_BITS);
        Ok(())
    }

    fn list_attrs(&self) -> Result<Vec<String>, VfsError> {
        self.inner.list_attrs()
    }

    fn as_stream(&self) -> Option<&crate::StreamHandle> {
        self.inner.as_stream()
    }

    fn readable_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.inner.readable_fd()
    }

    fn copy_from(
        &self,
        src: &dyn VfsHandle,
        src_offset: u64,
        offset: u64,
        len: u64,
    ) -> Result<u64, VfsError> {
        self.expect();
        let n = self.inner.copy_from(src, src_offset, offset, len)?;
        self.modified(filter::LAST_WRITE | filter::SIZE);
        Ok(n)
    }

    fn set_sparse(&self, sparse: bool) -> Result<(), VfsError> {
        self.expect();
        self.inner.set_sparse(sparse)?;
        self.modified(filter::ATTRIBUTES);
        Ok(())
    }

    fn zero_range(&self, offset: u64, len: u64, deallocate: bool) -> Result<(), VfsError> {
        self.expect();
        self.inner.zero_range(offset, len, deallocate)?;
        self.modified(filter::LAST_WRITE);
        Ok(())
    }

    fn allocated_ranges(
        &self,
        offset: u64,
        len: u64,
        max: usize,
    ) -> Result<Vec<(u64, u64)>, VfsError> {
        self.inner.allocated_ranges(offset, len, max)
    }
}

/// What a change to one of lanshare's attributes (named streams, EAs, the security
/// descriptor) may stand for.
const ATTR_BITS: u32 = filter::EA
    | filter::SECURITY
    | filter::STREAM_NAME
    | filter::STREAM_SIZE
    | filter::STREAM_WRITE;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{CreateMode, MemFs, OpenOptions};

    /// Server-side copy, hole punching and the sparse flag are reported like the writes and
    /// attribute changes they are; reading allocated ranges is not a change.
    #[test]
    fn copies_and_sparse_changes_are_reported() {
        let hub = ChangeHub::new();
        let fs = Notifying::new(Arc::new(MemFs::new()), hub.clone());
        let p = |s: &str| VfsPath::parse(s).unwrap();
        let (src, _) = fs
            .open(&p("src"), &OpenOptions::read_write(CreateMode::Create))
            .unwrap();
        src.write_at(&[7u8; 4096], 0).unwrap();
        let (dst, _) = fs
            .open(&p("dst"), &OpenOptions::read_write(CreateMode::Create))
            .unwrap();
        let all = filter::FILE_NAME | filter::LAST_WRITE | filter::SIZE | filter::ATTRIBUTES;
        let w = hub.watch(&VfsPath::root(), false, all, 4096, Box::new(|| {}));
        let modified_dst = |w: &Watch| match w.take() {
            Pending::Changes(c) => c
                .iter()
                .any(|c| c.name == "dst" && c.action == ChangeAction::Modified),
            _ => false,
        };
        assert_eq!(dst.copy_from(&*src, 0, 0, 4096).unwrap(), 4096);
        assert!(modified_dst(&w));
        dst.set_sparse(true).unwrap();
        assert!(modified_dst(&w));
        dst.zero_range(0, 1024, true).unwrap();
        assert!(modified_dst(&w));
        dst.allocated_ranges(0, 4096, 8).unwrap();
        assert_eq!(w.take(), Pending::Nothing);
    }
}
