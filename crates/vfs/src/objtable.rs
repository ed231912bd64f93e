//! The object table: per-file state shared by every open of every connection and protocol.
//!
//! An SMB open, a WebDAV PUT and an FTP RETR of one file all meet here, keyed by the file's
//! stable identity ([`FileIdentity`], device + inode), never by path: two names of one file
//! (hard links, a rename in flight) are one object. The table holds:
//! - the opens of each file with the access they were granted and the sharing they allow,
//!   checked on each new open as in [MS-FSA] 2.1.5.1.2 (the share-access check of
//!   `IoCheckShareAccess`), with protocol-neutral [`Access`] and [`ShareMode`] bits;
//! - delete-pending ([MS-FSA] 2.1.5.14.3 FileDispositionInformation): once set, new opens fail
//!   with [`VfsError::DeletePending`] and the last close deletes the file;
//! - delete-on-close per open ([MS-FSA] 2.1.5.4): when such an open closes, the file becomes
//!   delete-pending.
//!
//! It is a trait so that a cluster of nodes can later keep it in a consensus store; the
//! in-memory [`MemObjectTable`] serves one process. The table never touches storage: when
//! [`ReleaseOutcome::delete_now`] is true, the caller removes the file through its [`Vfs`].
//!
//! [`Vfs`]: crate::Vfs

use std::collections::HashMap;
use std::fmt;
use std::hash::BuildHasher;
use std::ops::{BitAnd, BitOr, BitOrAssign};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::{FileIdentity, VfsError};

macro_rules! bits {
    ($(#[$m:meta])* $name:ident { $($(#[$cm:meta])* $c:ident = $v:expr),* $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub struct $name(pub u8);
        impl $name {
            /// No bits.
            pub const NONE: $name = $name(0);
            $($(#[$cm])* pub const $c: $name = $name($v);)*
            /// All bits.
            pub const ALL: $name = $name(0 $(| $v)*);
            /// True when every bit of `other` is set in `self`.
            pub fn contains(self, other: $name) -> bool {
                self.0 & other.0 == other.0
            }
            /// True when any bit of `other` is set in `self`.
            pub fn intersects(self, other: $name) -> bool {
                self.0 & other.0 != 0
            }
            /// True when no bit is set.
            pub fn is_empty(self) -> bool {
                self.0 == 0
            }
        }
        impl BitOr for $name {
            type Output = $name;
            fn bitor(self, o: $name) -> $name {
                $name(self.0 | o.0)
            }
        }
        impl BitOrAssign for $name {
            fn bitor_assign(&mut self, o: $name) {
                self.0 |= o.0;
            }
        }
        impl BitAnd for $name {
            type Output = $name;
            fn bitand(self, o: $name) -> $name {
                $name(self.0 & o.0)
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut first = true;
                write!(f, "{}(", stringify!($name))?;
                $(if self.0 & $v != 0 {
                    if !first { f.write_str("|")?; }
                    first = false;
                    f.write_str(stringify!($c))?;
                })*
                if first { f.write_str("NONE")?; }
                f.write_str(")")
            }
        }
    };
}

bits! {
    /// What an open may do with the data, as far as sharing is concerned. SMB maps
    /// FILE_READ_DATA|FILE_EXECUTE → READ, FILE_WRITE_DATA|FILE_APPEND_DATA → WRITE, DELETE →
    /// DELETE ([MS-FSA] 2.1.5.1.2); attribute-only opens have no bits and never conflict.
    Access {
        /// Reads data.
        READ = 1,
        /// Writes or appends data.
        WRITE = 2,
        /// Deletes or renames.
        DELETE = 4,
    }
}

bits! {
    /// What an open lets others do meanwhile ([MS-SMB2] 2.2.13 ShareAccess).
    ShareMode {
        /// Others may read.
        READ = 1,
        /// Others may write.
        WRITE = 2,
        /// Others may delete or rename.
        DELETE = 4,
    }
}

/// Proof of one open in a table; give it back to [`ObjectTable::release`]. Not `Clone`: each
/// open is released exactly once. Dropping it without releasing leaks the open (and its share
/// mode) until the table is dropped, so callers release on every path.
#[derive(Debug, PartialEq, Eq, Hash)]
#[must_use = "an open must be released"]
pub struct OpenToken {
    identity: FileIdentity,
    open_id: u64,
}

impl OpenToken {
    /// The file this open is of.
    pub fn identity(&self) -> FileIdentity {
        self.identity
    }

    /// A number unique among the opens of this table (for logs and `lanshare files`).
    pub fn open_id(&self) -> u64 {
        self.open_id
    }
}

/// What closing an open means for the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReleaseOutcome {
    /// This was the last open of a delete-pending file: remove it now.
    pub delete_now: bool,
    /// Opens of the file that remain.
    pub remaining_opens: usize,
}

/// One open as the table sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenRecord {
    /// [`OpenToken::open_id`].
    pub open_id: u64,
    /// Granted access.
    pub access: Access,
    /// Allowed sharing.
    pub share: ShareMode,
    /// Whether this open's close will make the file delete-pending.
    pub delete_on_close: bool,
    /// Stands for an open of one of the file's named streams ([`ObjectTable::acquire_stream_anchor`]).
    pub stream_anchor: bool,
}

/// Per-file state shared by all opens. Object-safe, thread-safe.
pub trait ObjectTable: Send + Sync + 'static {
    /// Registers an open of `id` if the share modes allow it: [`VfsError::SharingViolation`]
    /// when they do not, [`VfsError::DeletePending`] when the file is being deleted.
    fn acquire(
        &self,
        id: FileIdentity,
        access: Access,
        share: ShareMode,
    ) -> Result<OpenToken, VfsError>;

    /// Sets or clears the file's delete-pending state (SMB SET_INFO FileDispositionInformation).
    /// The caller checks beforehand that the open has DELETE access and that a directory is
    /// empty.
    fn set_delete_pending(&self, token: &OpenToken, pending: bool) -> Result<(), VfsError>;

    /// Marks this open delete-on-close (SMB `FILE_DELETE_ON_CLOSE`): its close makes the file
    /// delete-pending.
    fn set_delete_on_close(&self, token: &OpenToken, on: bool) -> Result<(), VfsError>;

    /// Whether the file is delete-pending (for FileStandardInformation.DeletePending).
    fn is_delete_pending(&self, id: FileIdentity) -> bool;

    /// Registers, on the file `id`, an open of one of its named streams (whose own share modes
    /// are kept under the stream's identity). It conflicts only with DELETE: a DELETE open of
    /// the file, or marking it for deletion, needs every open stream to share delete
    /// ([MS-FSA] 2.1.5.1.2); it fails with [`VfsError::DeletePending`] once the file is being
    /// deleted, and it keeps a delete-pending file until it is released (the release that
    /// says [`ReleaseOutcome::delete_now`] removes the file).
    fn acquire_stream_anchor(
        &self,
        id: FileIdentity,
        share: ShareMode,
    ) -> Result<OpenToken, VfsError>;

    /// Ends an open.
    fn release(&self, token: OpenToken) -> ReleaseOutcome;

    /// The opens of `id` (empty when none).
    fn opens(&self, id: FileIdentity) -> Vec<OpenRecord>;

    /// Number of files with at least one open.
    fn file_count(&self) -> usize;
}

#[derive(Default)]
struct FileState {
    opens: Vec<OpenRecord>,
    delete_pending: bool,
}

/// [MS-FSA] 2.1.5.1.2 share-access check: each side's access must be allowed by the other
/// side's sharing. Opens without data access take no part, in either direction.
pub fn compatible(existing: &OpenRecord, access: Access, share: ShareMode) -> bool {
    if existing.stream_anchor {
        return !access.contains(Access::DELETE) || existing.share.contains(ShareMode::DELETE);
    }
    if existing.access.is_empty() || access.is_empty() {
        return true;
    }
    let pairs = [
        (Access::READ, ShareMode::READ),
        (Access::WRITE, ShareMode::WRITE),
        (Access::DELETE, ShareMode::DELETE),
    ];
    pairs.iter().all(|&(a, s)| {
        (!existing.access.contains(a) || share.contains(s))
            && (!access.contains(a) || existing.share.contains(s))
    })
}

const SHARDS: usize = 16;

/// The in-process [`ObjectTable`]: a map per shard, each behind its own mutex, so opens of
/// unrelated files rarely contend.
pub struct MemObjectTable {
    shards: [Mutex<HashMap<FileIdentity, FileState>>; SHARDS],
    next_open: AtomicU64,
    hasher: std::collections::hash_map::RandomState,
}

impl Default for MemObjectTable {
    fn default() -> Self {
        Self::new()
    }
}

impl MemObjectTable {
    /// An empty table.
    pub fn new() -> Self {
        MemObjectTable {
            shards: std::array::from_fn(|_| Mutex::new(HashMap::new())),
            next_open: AtomicU64::new(1),
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }

    fn shard(&self, id: FileIdentity) -> MutexGuard<'_, HashMap<FileIdentity, FileState>> {
        let i = (self.hasher.hash_one(id) % SHARDS as u64) as usize;
        // `i < SHARDS` by construction; the fallback is never taken.
        let m = self.shards.get(i).unwrap_or(&self.shards[0]);
        // The state is plain data; a panic elsewhere while holding the lock leaves it usable.
        m.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn with_open<T>(
        &self,
        token: &OpenToken,
        f: impl FnOnce(&mut FileState, usize) -> T,
    ) -> Result<T, VfsError> {
        let mut shard = self.shard(token.identity);
        let state = shard
            .get_mut(&token.identity)
            .ok_or(VfsError::InvalidParameter)?;
        let idx = state
            .opens
            .iter()
            .position(|o| o.open_id == token.open_id)
            .ok_or(VfsError::InvalidParameter)?;
        Ok(f(state, idx))
    }
}

impl MemObjectTable {
    fn push(
        &self,
        id: FileIdentity,
        access: Access,
        share: ShareMode,
        stream_anchor: bool,
    ) -> Result<OpenToken, VfsError> {
        let mut shard = self.shard(id);
        let state = shard.entry(id).or_default();
        if state.delete_pending {
            return Err(VfsError::DeletePending);
        }
        if !state.opens.iter().all(|o| compatible(o, access, share)) {
            if state.opens.is_empty() {
                shard.remove(&id);
            }
            return Err(VfsError::SharingViolation);
        }
        let open_id = self.next_open.fetch_add(1, Ordering::Relaxed);
        state.opens.push(OpenRecord {
            open_id,
            access,
            share,
            delete_on_close: false,
            stream_anchor,
        });
        Ok(OpenToken {
            identity: id,
            open_id,
        })
    }
}

/// Marking a file for deletion needs its open streams to share delete ([MS-FSA] 2.1.5.1.2).
fn streams_share_delete(state: &FileState) -> Result<(), VfsError> {
    if state
        .opens
        .iter()
        .any(|o| o.stream_anchor && !o.share.contains(ShareMode::DELETE))
    {
        return Err(VfsError::SharingViolation);
    }
    Ok(())
}

impl ObjectTable for MemObjectTable {
    fn acquire(
        &self,
        id: FileIdentity,
        access: Access,
        share: ShareMode,
    ) -> Result<OpenToken, VfsError> {
        self.push(id, access, share, false)
    }

    fn acquire_stream_anchor(
        &self,
        id: FileIdentity,
        share: ShareMode,
    ) -> Result<OpenToken, VfsError> {
        self.push(id, Access::NONE, share, true)
    }

    fn set_delete_pending(&self, token: &OpenToken, pending: bool) -> Result<(), VfsError> {
        self.with_open(token, |state, _| {
            if pending {
                streams_share_delete(state)?;
            }
            state.delete_pending = pending;
            Ok(())
        })?
    }

    fn set_delete_on_close(&self, token: &OpenToken, on: bool) -> Result<(), VfsError> {
        self.with_open(token, |state, idx| {
            if on {
                streams_share_delete(state)?;
            }
            if let Some(o) = state.opens.get_mut(idx) {
                o.delete_on_close = on;
            }
            Ok(())
        })?
    }

    fn is_delete_pending(&self, id: FileIdentity) -> bool {
        self.shard(id).get(&id).is_some_and(|s| s.delete_pending)
    }

    fn release(&self, token: OpenToken) -> ReleaseOutcome {
        let mut shard = self.shard(token.identity);
        let Some(state) = shard.get_mut(&token.identity) else {
            return ReleaseOutcome {
                delete_now: false,
                remaining_opens: 0,
            };
        };
        if let Some(idx) = state.opens.iter().position(|o| o.open_id == token.open_id) {
            let rec = state.opens.swap_remove(idx);
            if rec.delete_on_close {
                state.delete_pending = true;
            }
        }
        let remaining = state.opens.len();
        let delete_now = remaining == 0 && state.delete_pending;
        if remaining == 0 {
            // The file's state dies with its last open: a later open of the same inode (even a
            // recycled one) starts clean.
            shard.remove(&token.identity);
        }
        ReleaseOutcome {
            delete_now,
            remaining_opens: remaining,
        }
    }

    fn opens(&self, id: FileIdentity) -> Vec<OpenRecord> {
        self.shard(id)
            .get(&id)
            .map(|s| s.opens.clone())
            .unwrap_or_default()
    }

    fn file_count(&self) -> usize {
        self.shards
            .iter()
            .map(|m| m.lock().unwrap_or_else(|p| p.into_inner()).len())
            .sum()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const F: FileIdentity = FileIdentity { dev: 1, ino: 42 };
    const G: FileIdentity = FileIdentity { dev: 1, ino: 43 };

    fn all_access() -> Vec<Access> {
        (0..8).map(Access).collect()
    }
    fn all_share() -> Vec<ShareMode> {
        (0..8).map(ShareMode).collect()
    }

    /// Independent statement of the rule, bit by bit, to check the table against.
    fn expected(a1: Access, s1: ShareMode, a2: Access, s2: ShareMode) -> bool {
        if a1.is_empty() || a2.is_empty() {
            return true;
        }
        for bit in 0..3 {
            let m = 1u8 << bit;
            if a1.0 & m != 0 && s2.0 & m == 0 {
                return false;
            }
            if a2.0 & m != 0 && s1.0 & m == 0 {
                return false;
            }
        }
        true
    }

    #[test]
    fn conflict_matrix() {
        let mut conflicts = 0;
        for a1 in all_access() {
            for s1 in all_share() {
                for a2 in all_access() {
                    for s2 in all_share() {
                        let t = MemObjectTable::new();
                        let first = t.acquire(F, a1, s1).unwrap();
                        let second = t.acquire(F, a2, s2);
                        let want = expected(a1, s1, a2, s2);
                        assert_eq!(second.is_ok(), want, "{a1:?} {s1:?} then {a2:?} {s2:?}");
                        if !want {
                            conflicts += 1;
                            assert_eq!(second.unwrap_err(), VfsError::SharingViolation);
                        } else {
                            t.release(second.unwrap());
                        }
                        t.release(first);
                        assert_eq!(t.file_count(), 0);
                    }
                }
            }
        }
        // The matrix is not trivially all-pass or all-fail.
        assert!(conflicts > 1000 && conflicts < 4096 - 1000, "{conflicts}");
    }

    #[test]
    fn classic_cases() {
        let t = MemObjectTable::new();
        let r = t.acquire(F, Access::READ, ShareMode::READ).unwrap();
        // Another reader sharing read: fine. A writer: refused (first open forbids writes).
        let r2 = t
            .acquire(F, Access::READ, ShareMode::READ | ShareMode::WRITE)
            .unwrap();
        assert_eq!(
            t.acquire(F, Access::WRITE, ShareMode::ALL),
            Err(VfsError::SharingViolation)
        );
        // Attribute-only opens ignore share modes.
        let attr = t.acquire(F, Access::NONE, ShareMode::NONE).unwrap();
        // A reader that shares nothing conflicts with the existing readers.
        assert_eq!(
            t.acquire(F, Access::READ, ShareMode::NONE),
            Err(VfsError::SharingViolation)
        );
        // Other files are unaffected.
        let g = t.acquire(G, Access::ALL, ShareMode::NONE).unwrap();
        assert_eq!(t.opens(F).len(), 3);
        assert_eq!(t.release(r).remaining_opens, 2);
        assert_eq!(t.release(r2).remaining_opens, 1);
        let w = t.acquire(F, Access::WRITE, ShareMode::ALL).unwrap();
        t.release(w);
        t.release(attr);
        t.release(g);
        assert_eq!(t.file_count(), 0);
    }

    #[test]
    fn delete_pending_blocks_new_opens_and_last_close_deletes() {
        let t = MemObjectTable::new();
        let a = t.acquire(F, Access::DELETE, ShareMode::ALL).unwrap();
        let b = t.acquire(F, Access::READ, ShareMode::ALL).unwrap();
        t.set_delete_pending(&a, true).unwrap();
        assert!(t.is_delete_pending(F));
        assert_eq!(
            t.acquire(F, Access::READ, ShareMode::ALL),
            Err(VfsError::DeletePending)
        );
        assert_eq!(
            t.release(a),
            ReleaseOutcome {
                delete_now: false,
                remaining_opens: 1
            }
        );
        assert_eq!(
            t.release(b),
            ReleaseOutcome {
                delete_now: true,
                remaining_opens: 0
            }
        );
        assert!(!t.is_delete_pending(F));
        // Clearing delete-pending before the last close cancels the delete.
        let a = t.acquire(F, Access::DELETE, ShareMode::ALL).unwrap();
        t.set_delete_pending(&a, true).unwrap();
        t.set_delete_pending(&a, false).unwrap();
        assert!(!t.release(a).delete_now);
    }

    #[test]
    fn delete_on_close_applies_at_that_opens_close() {
        let t = MemObjectTable::new();
        let doc = t.acquire(F, Access::DELETE, ShareMode::ALL).unwrap();
        let other = t.acquire(F, Access::READ, ShareMode::ALL).unwrap();
        t.set_delete_on_close(&doc, true).unwrap();
        // Not pending yet: new opens still succeed.
        assert!(!t.is_delete_pending(F));
        let third = t.acquire(F, Access::READ, ShareMode::ALL).unwrap();
        assert!(t.opens(F).iter().any(|o| o.delete_on_close));
        assert!(!t.release(doc).delete_now);
        assert!(t.is_delete_pending(F));
        assert!(!t.release(other).delete_now);
        assert!(t.release(third).delete_now);
    }

    #[test]
    fn open_streams_guard_their_file_against_delete() {
        let t = MemObjectTable::new();
        // A stream open without delete sharing: no DELETE open of the file.
        let s = t.acquire_stream_anchor(F, ShareMode::READ).unwrap();
        let r = t.acquire(F, Access::READ | Access::WRITE, ShareMode::NONE);
        let r = r.unwrap();
        assert_eq!(
            t.acquire(F, Access::DELETE, ShareMode::ALL),
            Err(VfsError::SharingViolation)
        );
        assert_eq!(
            t.set_delete_pending(&r, true),
            Err(VfsError::SharingViolation)
        );
        assert_eq!(
            t.set_delete_on_close(&r, true),
            Err(VfsError::SharingViolation)
        );
        t.release(r);
        t.release(s);
        // With delete sharing the file can be deleted; it goes with the last stream.
        let s = t.acquire_stream_anchor(F, ShareMode::ALL).unwrap();
        let d = t.acquire(F, Access::DELETE, ShareMode::ALL).unwrap();
        t.set_delete_on_close(&d, true).unwrap();
        assert!(!t.release(d).delete_now);
        assert!(t.is_delete_pending(F));
        assert_eq!(
            t.acquire_stream_anchor(F, ShareMode::ALL),
            Err(VfsError::DeletePending)
        );
        assert!(t.release(s).delete_now);
    }

    #[test]
    fn stale_tokens_are_rejected() {
        let t = MemObjectTable::new();
        let a = t.acquire(F, Access::READ, ShareMode::ALL).unwrap();
        let fake = OpenToken {
            identity: F,
            open_id: a.open_id() + 1000,
        };
        assert_eq!(
            t.set_delete_pending(&fake, true),
            Err(VfsError::InvalidParameter)
        );
        assert_eq!(t.release(fake).remaining_opens, 1);
        t.release(a);
    }

    #[test]
    fn concurrent_exclusive_opens_admit_one_at_a_time() {
        let t = Arc::new(MemObjectTable::new());
        let holders = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let t = Arc::clone(&t);
                let holders = Arc::clone(&holders);
                std::thread::spawn(move || {
                    let mut got = 0;
                    for _ in 0..2000 {
                        if let Ok(tok) = t.acquire(F, Access::ALL, ShareMode::NONE) {
                            assert_eq!(holders.fetch_add(1, Ordering::SeqCst), 0);
                            got += 1;
                            holders.fetch_sub(1, Ordering::SeqCst);
                            t.release(tok);
                        }
                    }
                    got
                })
            })
            .collect();
        let total: u32 = threads.into_iter().map(|h| h.join().unwrap()).sum();
        assert!(total > 0);
        assert_eq!(t.file_count(), 0);
    }

    #[test]
    fn debug_names_bits() {
        assert_eq!(
            format!("{:?}", Access::READ | Access::DELETE),
            "Access(READ|DELETE)"
        );
        assert_eq!(format!("{:?}", ShareMode::NONE), "ShareMode(NONE)");
    }
}
