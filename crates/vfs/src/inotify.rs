//! Changes made on the disk by other programs, for [`crate::ChangeHub`]: one inotify instance
//! per share, started by the first watch, with one kernel watch per watched directory (every
//! directory of the tree for a recursive watch), at most `max` of them. A thread reads the
//! events and reports them; it ends when the hub is gone.
//!
//! The kernel's vocabulary is coarser than Windows': a modification is reported as a size and
//! write-time change, a metadata change (mode, times, xattrs) as every metadata filter bit.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

use rustix::fs::inotify::{self, CreateFlags, ReadFlags, WatchFlags};

use crate::watch::{ChangeAction, ChangeHub, filter};
use crate::{VfsError, VfsPath};

const MASK: WatchFlags = WatchFlags::CREATE
    .union(WatchFlags::DELETE)
    .union(WatchFlags::MOVED_FROM)
    .union(WatchFlags::MOVED_TO)
    .union(WatchFlags::MODIFY)
    .union(WatchFlags::ATTRIB)
    .union(WatchFlags::DONT_FOLLOW)
    .union(WatchFlags::ONLYDIR)
    .union(WatchFlags::EXCL_UNLINK);

/// Metadata bits an IN_ATTRIB stands for (it does not say which changed).
const ATTRIB_BITS: u32 = filter::ATTRIBUTES
    | filter::LAST_WRITE
    | filter::LAST_ACCESS
    | filter::CREATION
    | filter::EA
    | filter::SECURITY;

struct Dirs {
    by_wd: HashMap<i32, VfsPath>,
    by_path: HashMap<VfsPath, i32>,
}

struct State {
    fd: OwnedFd,
    dirs: Mutex<Dirs>,
}

pub(crate) struct Kernel {
    root: PathBuf,
    max: usize,
    hub: Weak<ChangeHub>,
    /// Started by the first watch: a share nobody watches costs no inotify instance.
    state: Mutex<Option<Arc<State>>>,
    limit_logged: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Kernel {
    pub(crate) fn start(root: &Path, max: usize, hub: Weak<ChangeHub>) -> Result<Kernel, VfsError> {
        let root = root
            .canonicalize()
            .map_err(|e| VfsError::from_io(e, "resolve share root for change notification"))?;
        Ok(Kernel {
            root,
            max,
            hub,
            state: Mutex::new(None),
            limit_logged: AtomicBool::new(false),
        })
    }

    fn state(&self) -> Option<Arc<State>> {
        let mut s = lock(&self.state);
        if let Some(st) = &*s {
            return Some(st.clone());
        }
        let fd = match inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK) {
            Ok(fd) => fd,
            Err(e) => {
                tracing::warn!(root = %self.root.display(), error = %e,
                    "change notification: inotify unavailable (fs.inotify.max_user_instances?); changes made by other programs are not reported");
                return None;
            }
        };
        let st = Arc::new(State {
            fd,
            dirs: Mutex::new(Dirs {
                by_wd: HashMap::new(),
                by_path: HashMap::new(),
            }),
        });
        let hub = self.hub.clone();
        let thread_state = st.clone();
        let root = self.root.clone();
        let spawned = std::thread::Builder::new()
            .name("lanshare-inotify".into())
            .spawn(move || read_loop(&thread_state, &hub, &root));
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "change notification: cannot start the inotify thread");
            return None;
        }
        *s = Some(st.clone());
        Some(st)
    }

    pub(crate) fn count(&self) -> usize {
        lock(&self.state)
            .as_ref()
            .map_or(0, |s| lock(&s.dirs).by_wd.len())
    }

    /// Watches `dir`, and every directory beneath it when `recursive`.
    pub(crate) fn add_tree(&self, dir: &VfsPath, recursive: bool) {
        let Some(st) = self.state() else { return };
        let mut todo = vec![dir.clone()];
        while let Some(d) = todo.pop() {
            if !self.add_one(&st, &d) || !recursive {
                continue;
            }
            let abs = self.abs(&d);
            let Ok(entries) = std::fs::read_dir(&abs) else {
                continue;
            };
            for e in entries.flatten() {
                // Never through a symlink: its target may lie outside the share.
                if e.file_type().is_ok_and(|t| t.is_dir())
                    && let Some(name) = e.file_name().to_str()
                    && let Ok(child) = d.join(name)
                {
                    todo.push(child);
                }
            }
        }
    }

    fn abs(&self, p: &VfsPath) -> PathBuf {
        let mut abs = self.root.clone();
        for c in p.components() {
            abs.push(c);
        }
        abs
    }

    /// Adds one kernel watch; false when it could not (limit, gone, outside the share).
    fn add_one(&self, st: &State, dir: &VfsPath) -> bool {
        let mut dirs = lock(&st.dirs);
        if dirs.by_path.contains_key(dir) {
            return true;
        }
        if dirs.by_wd.len() >= self.max {
            if !self.limit_logged.swap(true, Ordering::Relaxed) {
                tracing::warn!(root = %self.root.display(), limit = self.max, dir = %dir,
                    "change notification: kernel watch limit reached (limits.max_kernel_watches); \
                     changes other programs make in further directories are not reported \
                     (changes made through lanshare still are)");
            }
            return false;
        }
        let abs = self.abs(dir);
        // The client names the directory case-insensitively and through symlinks LocalFs
        // resolved inside the share: watch only what really lies beneath the root.
        let Ok(real) = abs.canonicalize() else {
            return false;
        };
        if !real.starts_with(&self.root) {
            return false;
        }
        match inotify::add_watch(&st.fd, &real, MASK) {
            Ok(wd) => {
                // Two names of one directory (case variants) share the kernel's watch: keep the
                // first name for its events.
                dirs.by_wd.entry(wd).or_insert_with(|| dir.clone());
                dirs.by_path.insert(dir.clone(), wd);
                true
            }
            Err(e) => {
                if e == rustix::io::Errno::NOSPC && !self.limit_logged.swap(true, Ordering::Relaxed)
                {
                    tracing::warn!(root = %self.root.display(), dir = %dir,
                        "change notification: the system's inotify watch limit \
                         (fs.inotify.max_user_watches) is reached; changes other programs make \
                         there are not reported");
                }
                false
            }
        }
    }

    /// Drops the kernel watches no live watch needs any more.
    pub(crate) fn sweep(&self, hub: &ChangeHub) {
        let Some(st) = lock(&self.state).clone() else {
            return;
        };
        let mut dirs = lock(&st.dirs);
        let unneeded: Vec<(VfsPath, i32)> = dirs
            .by_path
            .iter()
            .filter(|(p, _)| !hub.covers(p))
            .map(|(p, wd)| (p.clone(), *wd))
            .collect();
        for (p, wd) in unneeded {
            dirs.by_path.remove(&p);
            if !dirs.by_path.values().any(|w| *w == wd) {
                dirs.by_wd.remove(&wd);
                let _ = inotify::remove_watch(&st.fd, wd);
            }
        }
    }
}

fn read_loop(st: &State, hub: &Weak<ChangeHub>, root: &Path) {
    let mut buf = vec![std::mem::MaybeUninit::<u8>::uninit(); 64 * 1024];
    let timeout = rustix::event::Timespec {
        tv_sec: 1,
        tv_nsec: 0,
    };
    loop {
        if hub.strong_count() == 0 {
            return;
        }
        let mut fds = [rustix::event::PollFd::new(
            &st.fd,
            rustix::event::PollFlags::IN,
        )];
        match rustix::event::poll(&mut fds, Some(&timeout)) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => {
                tracing::warn!(root = %root.display(), error = %e, "change notification: inotify poll failed; stopped");
                return;
            }
        }
        // Collect the batch first: a rename is a MOVED_FROM / MOVED_TO pair with one cookie.
        let mut batch: Vec<(i32, ReadFlags, u32, Option<String>)> = Vec::new();
        let mut reader = inotify::Reader::new(st.fd.as_fd(), &mut buf);
        // The descriptor is non-blocking: an empty queue ends the batch with EAGAIN.
        while let Ok(ev) = reader.next() {
            let name = ev.file_name().map(|n| {
                OsStr::from_bytes(n.to_bytes())
                    .to_string_lossy()
                    .into_owned()
            });
            batch.push((ev.wd(), ev.events(), ev.cookie(), name));
            if reader.is_buffer_empty() {
                break;
            }
        }
        let Some(hub) = hub.upgrade() else { return };
        deliver(st, &hub, &batch);
    }
}

fn deliver(st: &State, hub: &Arc<ChangeHub>, batch: &[(i32, ReadFlags, u32, Option<String>)]) {
    for (wd, ev, cookie, name) in batch {
        if ev.contains(ReadFlags::QUEUE_OVERFLOW) {
            hub.overflow_all();
            continue;
        }
        if ev.contains(ReadFlags::IGNORED) {
            let mut dirs = lock(&st.dirs);
            dirs.by_wd.remove(wd);
            dirs.by_path.retain(|_, w| w != wd);
            continue;
        }
        let dir = lock(&st.dirs).by_wd.get(wd).cloned();
        let (Some(dir), Some(name)) = (dir, name) else {
            continue;
        };
        let Ok(path) = dir.join(name) else { continue };
        let is_dir = ev.contains(ReadFlags::ISDIR);
        let what = if is_dir {
            filter::DIR_NAME
        } else {
            filter::FILE_NAME
        };
        let paired = |want: ReadFlags| {
            batch
                .iter()
                .any(|(w, e, c, _)| w == wd && c == cookie && e.contains(want))
        };
        if ev.contains(ReadFlags::CREATE) {
            hub.report_external(&path, ChangeAction::Added, what);
            if is_dir && hub.covers(&path) {
                hub.kernel_add_tree(&path);
            }
        } else if ev.contains(ReadFlags::DELETE) {
            hub.report_external(&path, ChangeAction::Removed, what);
        } else if ev.contains(ReadFlags::MOVED_FROM) {
            let a = if paired(ReadFlags::MOVED_TO) {
                ChangeAction::RenamedOld
            } else {
                ChangeAction::Removed
            };
            hub.report_external(&path, a, what);
        } else if ev.contains(ReadFlags::MOVED_TO) {
            let a = if paired(ReadFlags::MOVED_FROM) {
                ChangeAction::RenamedNew
            } else {
                ChangeAction::Added
            };
            hub.report_external(&path, a, what);
            if is_dir && hub.covers(&path) {
                hub.kernel_add_tree(&path);
            }
        } else if ev.contains(ReadFlags::MODIFY) {
            hub.report_external(
                &path,
                ChangeAction::Modified,
                filter::SIZE | filter::LAST_WRITE,
            );
        } else if ev.contains(ReadFlags::ATTRIB) {
            hub.report_external(&path, ChangeAction::Modified, ATTRIB_BITS);
        }
    }
}
