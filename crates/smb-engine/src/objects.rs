//! Server-wide per-file state: the vfs [`ObjectTable`] (share modes, delete-pending) and what
//! the engine keeps next to it for each open file — its current name (renames move it for
//! every open) and its byte-range locks ([MS-FSA] 2.1.5.7, 2.1.4.10).
//!
//! Keyed by the file's identity (device, inode) and the share's storage back-end, never by
//! path: two names of one file are one object, and a rename does not lose the state.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use lanshare_vfs::{FileIdentity, MemObjectTable, ObjectTable, Vfs, VfsPath};

use crate::session::lock;

/// One byte-range lock ([MS-SMB2] 2.2.26.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ByteLock {
    /// `Open::uid` of the owner.
    pub owner: u64,
    pub offset: u64,
    pub length: u64,
    pub exclusive: bool,
}

impl ByteLock {
    /// Whether this lock's range and an I/O range share a byte. Zero-length ranges share
    /// none: a zero-byte read or write never conflicts, and a zero-byte lock blocks no I/O.
    fn overlaps(&self, offset: u64, length: u64) -> bool {
        if self.length == 0 || length == 0 {
            return false;
        }
        let a_end = self.offset.saturating_add(self.length - 1);
        let b_end = offset.saturating_add(length - 1);
        self.offset <= b_end && offset <= a_end
    }

    /// Whether two lock ranges contend ([MS-FSA] 2.1.5.7, as Windows behaves: smbtorture
    /// smb2.lock.zerobytelength). Two zero-length locks never do; a zero-length lock at X
    /// contends with a range that holds X past its first byte; other ranges when they
    /// share a byte.
    fn contends(&self, other: &ByteLock) -> bool {
        let inside = |x: u64, r: &ByteLock| r.offset < x && x - r.offset < r.length;
        match (self.length, other.length) {
            (0, 0) => false,
            (0, _) => inside(self.offset, other),
            (_, 0) => inside(other.offset, self),
            _ => self.overlaps(other.offset, other.length),
        }
    }
}

/// Why a lock or an I/O was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LockError {
    /// Another lock covers the range.
    Conflict,
    /// offset + length wraps past 2^64 ([MS-FSA] 2.1.5.7: STATUS_INVALID_LOCK_RANGE).
    InvalidRange,
    /// UNLOCK of a range this open does not hold exactly (STATUS_RANGE_NOT_LOCKED).
    NotLocked,
}

/// The engine's state of one open file, shared by all its opens.
pub(crate) struct FileState {
    /// Where the file is now, relative to its share root.
    path: Mutex<VfsPath>,
    locks: Mutex<Vec<ByteLock>>,
    /// Woken whenever a lock is released, for blocking LOCK requests.
    pub unlocked: tokio::sync::Notify,
    /// The opens of this file with their oplocks, and its leases ([`crate::oplock`]).
    pub(crate) caching: Mutex<crate::oplock::Caching>,
    /// Woken when an oplock is acknowledged, expires or goes with its open.
    pub oplock_changed: tokio::sync::Notify,
}

impl FileState {
    fn new(path: VfsPath) -> FileState {
        FileState {
            path: Mutex::new(path),
            locks: Mutex::new(Vec::new()),
            unlocked: tokio::sync::Notify::new(),
            caching: Mutex::new(crate::oplock::Caching::default()),
            oplock_changed: tokio::sync::Notify::new(),
        }
    }

    #[cfg(test)]
    pub fn for_tests() -> FileState {
        FileState::new(VfsPath::root())
    }

    pub fn path(&self) -> VfsPath {
        lock(&self.path).clone()
    }

    pub fn set_path(&self, p: VfsPath) {
        *lock(&self.path) = p;
    }

    /// Takes `l` unless it conflicts ([MS-FSA] 2.1.5.7): an exclusive lock conflicts with every
    /// overlapping lock; a shared one only with exclusive locks of other opens.
    pub fn try_lock(&self, l: ByteLock) -> Result<(), LockError> {
        if l.length > 0 && l.offset.checked_add(l.length - 1).is_none() {
            return Err(LockError::InvalidRange);
        }
        let mut locks = lock(&self.locks);
        let conflict = locks
            .iter()
            .any(|h| h.contends(&l) && (l.exclusive || (h.exclusive && h.owner != l.owner)));
        if conflict {
            return Err(LockError::Conflict);
        }
        locks.push(l);
        Ok(())
    }

    /// Releases the lock of `owner` with exactly this range ([MS-FSA] 2.1.5.8); of a stacked
    /// exclusive and shared pair, the exclusive one goes first.
    pub fn unlock(&self, owner: u64, offset: u64, length: u64) -> Result<(), LockError> {
        let mut locks = lock(&self.locks);
        let same = |h: &ByteLock| h.owner == owner && h.offset == offset && h.length == length;
        let i = locks
            .iter()
            .position(|h| same(h) && h.exclusive)
            .or_else(|| locks.iter().position(same))
            .ok_or(LockError::NotLocked)?;
        locks.remove(i);
        drop(locks);
        self.unlocked.notify_waiters();
        Ok(())
    }

    /// Takes back one lock taken by [`FileState::try_lock`] (a request that failed half-way).
    pub fn remove(&self, l: &ByteLock) {
        let mut locks = lock(&self.locks);
        if let Some(i) = locks.iter().rposition(|h| h == l) {
            locks.remove(i);
        }
        drop(locks);
        self.unlocked.notify_waiters();
    }

    /// Drops every lock of `owner` (its close).
    pub fn unlock_all(&self, owner: u64) {
        let mut locks = lock(&self.locks);
        let before = locks.len();
        locks.retain(|h| h.owner != owner);
        let changed = locks.len() != before;
        drop(locks);
        if changed {
            self.unlocked.notify_waiters();
        }
    }

    /// [MS-FSA] 2.1.4.10: a read conflicts with exclusive locks of other opens.
    pub fn can_read(&self, owner: u64, offset: u64, length: u64) -> bool {
        !lock(&self.locks)
            .iter()
            .any(|h| h.overlaps(offset, length) && h.exclusive && h.owner != owner)
    }

    /// [MS-FSA] 2.1.4.10: a write conflicts with exclusive locks of other opens and with
    /// shared locks of anyone, the writer included.
    pub fn can_write(&self, owner: u64, offset: u64, length: u64) -> bool {
        !lock(&self.locks)
            .iter()
            .any(|h| h.overlaps(offset, length) && (!h.exclusive || h.owner != owner))
    }

    /// Byte-range locks held (for tests and `lanshare files`).
    #[cfg(test)]
    pub fn lock_count(&self) -> usize {
        lock(&self.locks).len()
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    /// The share's back-end (its address): paths are relative to it.
    vfs: usize,
    id: FileIdentity,
}

/// Everything per-file, server-wide.
pub(crate) struct Objects {
    pub table: Arc<dyn ObjectTable>,
    files: Mutex<FileMap>,
    /// Which file each lease is on ([MS-SMB2] 3.3.1.4 LeaseTable): a key names one file.
    leases: Mutex<HashMap<crate::oplock::LeaseId, Weak<FileState>>>,
    /// Durable opens, attached or kept for a reconnect ([MS-SMB2] 3.3.1.5 GlobalOpenTable).
    pub durable: Arc<crate::durable::DurableTable>,
}

struct FileMap {
    map: HashMap<Key, Weak<FileState>>,
    /// Size after the last sweep of dead entries: sweeping again when the map has doubled
    /// keeps the cost amortised O(1) per open.
    swept_at: usize,
}

impl Default for Objects {
    fn default() -> Self {
        Objects {
            table: Arc::new(MemObjectTable::new()),
            files: Mutex::new(FileMap {
                map: HashMap::new(),
                swept_at: 64,
            }),
            leases: Mutex::new(HashMap::new()),
            durable: Arc::default(),
        }
    }
}

/// `p` lies beneath `dir`, comparing names case-insensitively: a client may have opened the
/// child under another spelling than the one the rename names.
fn is_strictly_below(p: &VfsPath, dir: &VfsPath) -> bool {
    let (p, d) = (p.components(), dir.components());
    p.len() > d.len()
        && p.iter()
            .zip(d)
            .all(|(a, b)| a == b || lanshare_vfs::fold_case(a) == lanshare_vfs::fold_case(b))
}

pub(crate) fn vfs_key(vfs: &Arc<dyn Vfs>) -> usize {
    Arc::as_ptr(vfs).cast::<()>() as usize
}

impl Objects {
    /// The shared state of a file being opened; `path` is where it was found (used only when
    /// the file has no other open).
    pub fn file(&self, vfs: &Arc<dyn Vfs>, id: FileIdentity, path: &VfsPath) -> Arc<FileState> {
        let key = Key {
            vfs: vfs_key(vfs),
            id,
        };
        let mut files = lock(&self.files);
        if let Some(f) = files.map.get(&key).and_then(Weak::upgrade) {
            return f;
        }
        let f = Arc::new(FileState::new(path.clone()));
        files.map.insert(key, Arc::downgrade(&f));
        if files.map.len() > files.swept_at.saturating_mul(2) {
            files.map.retain(|_, w| w.strong_count() > 0);
            files.swept_at = files.map.len().max(64);
        }
        f
    }

    /// The file lease `id` is on, while it is held.
    pub fn lease_file(&self, id: crate::oplock::LeaseId) -> Option<Arc<FileState>> {
        let mut leases = lock(&self.leases);
        match leases.get(&id).and_then(Weak::upgrade) {
            Some(f) if f.has_lease(id) => Some(f),
            Some(_) | None => {
                leases.remove(&id);
                None
            }
        }
    }

    /// Records that lease `id` is on `file`, unless it is held on another file: then
    /// `false` ([MS-SMB2] 3.3.5.9.8: STATUS_INVALID_PARAMETER).
    pub fn bind_lease(&self, id: crate::oplock::LeaseId, file: &Arc<FileState>) -> bool {
        let mut leases = lock(&self.leases);
        if let Some(f) = leases.get(&id).and_then(Weak::upgrade)
            && !Arc::ptr_eq(&f, file)
            && f.has_lease(id)
        {
            return false;
        }
        if leases.len() > 4096 {
            leases.retain(|_, w| w.strong_count() > 0);
        }
        leases.insert(id, Arc::downgrade(file));
        true
    }

    /// Closes the detached durable opens whose oplock or lease a break just needed
    /// ([MS-SMB2] 3.3.4.6, 3.3.4.7: nobody can acknowledge it). Whether any was closed.
    /// Blocking only for a delete-on-close.
    pub fn purge_detached(&self, file: &FileState) -> bool {
        let mut any = false;
        for uid in file.take_purge() {
            if let Some(open) = self.durable.take_detached(uid) {
                tracing::info!(path = %open.current_path(), "detached durable open closed: another open needed its oplock or lease broken");
                open.close();
                any = true;
            }
        }
        any
    }

    /// The state of a file that is open now, if it is.
    pub fn existing(&self, vfs: &Arc<dyn Vfs>, id: FileIdentity) -> Option<Arc<FileState>> {
        let key = Key {
            vfs: vfs_key(vfs),
            id,
        };
        lock(&self.files).map.get(&key).and_then(Weak::upgrade)
    }

    /// Open files of one share whose current path lies strictly beneath `dir`
    /// ([MS-FSA] 2.1.5.14.11: a directory with open children cannot be renamed).
    pub fn has_open_below(&self, vfs: &Arc<dyn Vfs>, dir: &VfsPath) -> bool {
        let k = vfs_key(vfs);
        let files = lock(&self.files);
        files.map.iter().any(|(key, w)| {
            key.vfs == k
                && w.upgrade()
                    .is_some_and(|f| is_strictly_below(&f.path(), dir))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(owner: u64, offset: u64, length: u64, exclusive: bool) -> ByteLock {
        ByteLock {
            owner,
            offset,
            length,
            exclusive,
        }
    }

    fn state() -> FileState {
        FileState::for_tests()
    }

    #[test]
    fn lock_conflicts() {
        let f = state();
        f.try_lock(l(1, 0, 10, true)).unwrap();
        // Anyone's overlapping lock conflicts with an exclusive one, the owner's exclusive too.
        assert_eq!(f.try_lock(l(2, 5, 10, false)), Err(LockError::Conflict));
        assert_eq!(f.try_lock(l(1, 9, 1, true)), Err(LockError::Conflict));
        // The owner may stack a shared lock inside its exclusive one.
        f.try_lock(l(1, 2, 2, false)).unwrap();
        // Adjacent ranges do not overlap.
        f.try_lock(l(2, 10, 5, true)).unwrap();
        // Shared locks coexist.
        f.try_lock(l(3, 100, 10, false)).unwrap();
        f.try_lock(l(4, 105, 10, false)).unwrap();
        assert_eq!(f.try_lock(l(4, 100, 1, true)), Err(LockError::Conflict));
        // A zero-length lock contends only with a range holding its offset past the start.
        assert_eq!(f.try_lock(l(5, 5, 0, true)), Err(LockError::Conflict));
        f.try_lock(l(5, 0, 0, true)).unwrap();
        f.try_lock(l(5, 10, 0, true)).unwrap();
        assert_eq!(f.lock_count(), 7);
        // Wrapping ranges are refused; one ending exactly at 2^64-1 is fine.
        assert_eq!(
            f.try_lock(l(6, u64::MAX, 2, true)),
            Err(LockError::InvalidRange)
        );
        f.try_lock(l(6, u64::MAX, 1, true)).unwrap();
    }

    #[test]
    fn zero_byte_locks_as_windows() {
        // smbtorture smb2.lock.zerobytelength: a 0-byte lock at 10, then a second lock.
        for (off, len, ok) in [
            (10, 0, true),
            (9, 1, true),
            (10, 1, true),
            (11, 1, true),
            (9, 2, false),
            (10, 2, true),
            (9, 3, false),
        ] {
            for (first, second) in [((10, 0), (off, len)), ((off, len), (10, 0))] {
                let f = state();
                f.try_lock(l(1, first.0, first.1, true)).unwrap();
                let r = f.try_lock(l(2, second.0, second.1, true));
                assert_eq!(r.is_ok(), ok, "{first:?} then {second:?}");
            }
        }
    }

    #[test]
    fn unlock_takes_exclusive_before_shared() {
        let f = state();
        f.try_lock(l(1, 10, 0, true)).unwrap();
        f.try_lock(l(1, 10, 0, false)).unwrap();
        f.unlock(1, 10, 0).unwrap();
        // What is left is the shared lock: another open's shared lock on it is fine now.
        f.try_lock(l(2, 5, 10, false)).unwrap();
        f.remove(&l(2, 5, 10, false));
        f.unlock(1, 10, 0).unwrap();
        assert_eq!(f.lock_count(), 0);
    }

    #[test]
    fn unlock_needs_the_exact_range_and_owner() {
        let f = state();
        f.try_lock(l(1, 0, 10, true)).unwrap();
        assert_eq!(f.unlock(1, 0, 5), Err(LockError::NotLocked));
        assert_eq!(f.unlock(2, 0, 10), Err(LockError::NotLocked));
        f.unlock(1, 0, 10).unwrap();
        assert_eq!(f.unlock(1, 0, 10), Err(LockError::NotLocked));
        f.try_lock(l(2, 0, 10, true)).unwrap();
        f.unlock_all(2);
        assert_eq!(f.lock_count(), 0);
    }

    #[test]
    fn io_checks() {
        let f = state();
        f.try_lock(l(1, 0, 10, true)).unwrap();
        f.try_lock(l(1, 20, 10, false)).unwrap();
        assert!(f.can_read(1, 0, 100));
        assert!(!f.can_read(2, 5, 1));
        assert!(f.can_read(2, 10, 10), "between the locks");
        assert!(f.can_read(2, 20, 5), "shared locks allow reads");
        assert!(
            f.can_write(1, 0, 10),
            "the owner writes under its exclusive lock"
        );
        assert!(!f.can_write(1, 25, 1), "nobody writes under a shared lock");
        assert!(!f.can_write(2, 9, 2));
        assert!(f.can_write(2, 5, 0), "zero-length I/O never conflicts");
    }

    #[test]
    fn files_are_shared_and_forgotten() {
        let objects = Objects::default();
        let dir = tempfile::tempdir().unwrap();
        let vfs: Arc<dyn Vfs> = Arc::new(lanshare_vfs::LocalFs::new(dir.path()).unwrap());
        let id = FileIdentity { dev: 1, ino: 2 };
        let p = VfsPath::parse("a\\b").unwrap();
        let a = objects.file(&vfs, id, &p);
        let b = objects.file(&vfs, id, &VfsPath::parse("other").unwrap());
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(b.path(), p);
        assert!(objects.has_open_below(&vfs, &VfsPath::parse("A").unwrap()));
        assert!(objects.has_open_below(&vfs, &VfsPath::parse("a").unwrap()));
        assert!(!objects.has_open_below(&vfs, &VfsPath::parse("b").unwrap()));
        assert!(
            !objects.has_open_below(&vfs, &p),
            "the file itself is not below itself"
        );
        drop(a);
        drop(b);
        let c = objects.file(&vfs, id, &VfsPath::parse("c").unwrap());
        assert_eq!(c.path(), VfsPath::parse("c").unwrap(), "a fresh state");
    }
}
