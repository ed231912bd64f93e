//! Durable handles ([MS-SMB2] 3.3.5.9.6 and 3.3.5.9.10 the grant, 3.3.5.9.7 and 3.3.5.9.12
//! the reconnect, 3.3.7.1 the loss of a connection, 3.3.2.x the durable open scavenger).
//!
//! The life of a durable open:
//! - CREATE grants it (a batch oplock or a lease with handle caching, a file, durable handles
//!   enabled) and registers it here, attached to its session;
//! - when its connection drops, or a reconnecting client names its session as
//!   PreviousSessionId, the open leaves the session but stays open — share mode, byte-range
//!   locks, oplock or lease — *detached*, for its timeout (v2: the granted one; v1:
//!   `limits.durable_handle_timeout`); LOGOFF, TREE_DISCONNECT and CLOSE still close it;
//! - a CREATE with DHnC / DH2C from the same user (and, for v2 or a lease, the same client)
//!   takes it back into its new session and tree with the same FileId;
//! - another client's open that needs the detached open's oplock or lease broken closes it
//!   (nobody could acknowledge the break), and so does the timeout (the scavenger task
//!   started at the detach).
//!
//! Persistent handles are not offered (no continuously available shares).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lanshare_auth::Identity;

use crate::open::Open;
use crate::oplock::LeaseId;
use crate::session::lock;

/// What a v1 handle, or a v2 request naming no timeout, is kept for (Windows' default),
/// unless `limits.durable_handle_timeout` is lower.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// An unused slot of Open.LockSequenceArray.
pub(crate) const NO_LOCK_SEQUENCE: u8 = 0xFF;

/// What the grant recorded, checked at the reconnect.
#[derive(Clone, Debug)]
pub(crate) struct Durable {
    /// Granted through DH2Q (else DHnQ).
    pub v2: bool,
    /// Open.CreateGuid (v2).
    pub create_guid: [u8; 16],
    /// Open.ClientGuid.
    pub client_guid: [u8; 16],
    /// How long the open is kept once detached.
    pub timeout: Duration,
    /// Open.DurableOwner: only this user may reconnect.
    pub owner: Identity,
    pub lease: Option<LeaseId>,
    /// The share's back-end (`objects::vfs_key`): a reconnect must come through the same
    /// share.
    pub share: usize,
    pub share_name: String,
}

struct Entry {
    open: Arc<Open>,
    detached: Option<Detached>,
}

/// A detached open: who had it, until when it is kept.
#[derive(Clone)]
pub(crate) struct Detached {
    pub until: Instant,
    /// Tells a scavenger task whether the open it waits for was reconnected (and maybe
    /// detached again) meanwhile.
    generation: u64,
    pub user: String,
    pub client: String,
}

/// The durable opens of a server, by FileId.Persistent.
#[derive(Default)]
pub(crate) struct DurableTable {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    by_id: HashMap<u64, Entry>,
    next_generation: u64,
}

/// Why a reconnect failed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ReconnectError {
    /// No such durable open (STATUS_OBJECT_NAME_NOT_FOUND).
    NotFound,
    /// Still held by a live session (STATUS_OBJECT_NAME_NOT_FOUND, unless its connection
    /// is about to be seen gone).
    Attached,
    /// A check refused it: the status to answer.
    Refused(smb_wire::NtStatus),
}

impl DurableTable {
    /// A CREATE granted `open` a durable handle.
    pub fn register(&self, open: Arc<Open>) {
        lock(&self.inner).by_id.insert(
            open.file_id.persistent,
            Entry {
                open,
                detached: None,
            },
        );
    }

    /// The open closed (`Open::close`).
    pub fn forget(&self, persistent: u64, uid: u64) {
        let mut inner = lock(&self.inner);
        if inner
            .by_id
            .get(&persistent)
            .is_some_and(|e| e.open.uid == uid)
        {
            inner.by_id.remove(&persistent);
        }
    }

    /// Keeps a durable open whose session is gone. Returns the generation to expire it
    /// with, or `None` when it is not registered (or not keepable): the caller closes it.
    pub fn detach(
        &self,
        open: &Arc<Open>,
        user: String,
        client: String,
    ) -> Option<(u64, Duration)> {
        let timeout = lock(&open.durable).as_ref()?.timeout;
        if timeout.is_zero() || !open.file.detach_caching(open.uid) {
            return None;
        }
        let mut inner = lock(&self.inner);
        inner.next_generation += 1;
        let generation = inner.next_generation;
        let e = inner.by_id.get_mut(&open.file_id.persistent)?;
        if e.open.uid != open.uid {
            return None;
        }
        e.detached = Some(Detached {
            until: Instant::now() + timeout,
            generation,
            user,
            client,
        });
        Some((generation, timeout))
    }

    /// The scavenger's turn: the open detached as `generation`, still detached, leaves the
    /// table (the caller closes it).
    pub fn expire(&self, persistent: u64, generation: u64) -> Option<Arc<Open>> {
        let mut inner = lock(&self.inner);
        let e = inner.by_id.get(&persistent)?;
        if e.detached.as_ref()?.generation != generation {
            return None;
        }
        inner.by_id.remove(&persistent).map(|e| e.open)
    }

    /// Takes a detached open back for a reconnect, after `check` accepted it.
    pub fn reconnect(
        &self,
        persistent: u64,
        check: impl FnOnce(&Open, &Durable) -> Result<(), smb_wire::NtStatus>,
    ) -> Result<Arc<Open>, ReconnectError> {
        let mut inner = lock(&self.inner);
        let e = inner
            .by_id
            .get_mut(&persistent)
            .ok_or(ReconnectError::NotFound)?;
        let durable = lock(&e.open.durable).clone();
        let Some(durable) = durable else {
            return Err(ReconnectError::NotFound);
        };
        check(&e.open, &durable).map_err(ReconnectError::Refused)?;
        // Still held by a live session: nothing to reconnect (as Windows and Samba).
        if e.detached.is_none() {
            return Err(ReconnectError::Attached);
        }
        e.detached = None;
        Ok(e.open.clone())
    }

    /// A detached open a break needs closed: it leaves the table.
    pub fn take_detached(&self, uid: u64) -> Option<Arc<Open>> {
        let mut inner = lock(&self.inner);
        let key = inner
            .by_id
            .iter()
            .find(|(_, e)| e.open.uid == uid && e.detached.is_some())
            .map(|(k, _)| *k)?;
        inner.by_id.remove(&key).map(|e| e.open)
    }

    /// A detached open by its FileId (`lanshare close-file`): it leaves the table.
    pub fn take_detached_by_id(&self, volatile: u64) -> Option<Arc<Open>> {
        let mut inner = lock(&self.inner);
        let key = inner
            .by_id
            .iter()
            .find(|(_, e)| e.open.file_id.volatile == volatile && e.detached.is_some())
            .map(|(k, _)| *k)?;
        inner.by_id.remove(&key).map(|e| e.open)
    }

    /// The open a v2 CREATE with this CreateGuid made ([MS-SMB2] 3.3.5.9.10: replay).
    pub fn by_create_guid(
        &self,
        client_guid: [u8; 16],
        create_guid: [u8; 16],
    ) -> Option<Arc<Open>> {
        lock(&self.inner)
            .by_id
            .values()
            .find(|e| {
                lock(&e.open.durable).as_ref().is_some_and(|d| {
                    d.v2 && d.create_guid == create_guid && d.client_guid == client_guid
                })
            })
            .map(|e| e.open.clone())
    }

    /// Detached opens (`lanshare files`).
    pub fn detached(&self) -> Vec<(Arc<Open>, Detached)> {
        lock(&self.inner)
            .by_id
            .values()
            .filter_map(|e| Some((e.open.clone(), e.detached.clone()?)))
            .collect()
    }
}

/// 3.3.7.1: the session of `open` is gone without a LOGOFF. A durable open is kept detached
/// for its timeout, then closed by a scavenger task; any other open is closed now.
pub(crate) fn detach_or_close(open: Arc<Open>, user: &str, client: &str) {
    let table = open.objects_durable();
    let Some((generation, timeout)) = table.detach(&open, user.to_string(), client.to_string())
    else {
        open.close();
        return;
    };
    tracing::info!(path = %open.current_path(), ?timeout, "durable open kept for a reconnect");
    let persistent = open.file_id.persistent;
    drop(open);
    match tokio::runtime::Handle::try_current() {
        Ok(rt) => {
            rt.spawn(async move {
                tokio::time::sleep(timeout).await;
                if let Some(open) = table.expire(persistent, generation) {
                    tracing::info!(path = %open.current_path(), "durable open not reconnected in time: closed");
                    let _ = tokio::task::spawn_blocking(move || open.close()).await;
                }
            });
        }
        // No runtime (a unit test): nothing would ever expire it.
        Err(_) => {
            if let Some(open) = table.expire(persistent, generation) {
                open.close();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Weak;
    use std::sync::atomic::Ordering;

    use lanshare_vfs::{Access, CreateMode, MemFs, OpenOptions, ShareMode, Vfs, VfsPath};
    use smb_wire::{FileId, NtStatus, OplockLevel};

    use super::*;
    use crate::objects::ByteLock;
    use crate::open::{NewOpen, OpenSlot};
    use crate::oplock::{Check, Holder, Intent};
    use crate::server::ServerState;

    fn server() -> Arc<ServerState> {
        let cfg = crate::EngineConfig::new("TEST");
        let users = Arc::new(lanshare_auth::MemoryUserDb::new());
        crate::Server::new(cfg, users).unwrap().state
    }

    fn holder() -> Holder {
        Holder {
            conn: Weak::new(),
            session_id: 1,
            file_id: FileId::default(),
        }
    }

    fn alice() -> Identity {
        Identity::User {
            name: "alice".into(),
            domain: "TEST".into(),
        }
    }

    /// A file open with a batch oplock and a byte-range lock, durable when `durable`.
    fn open(state: &Arc<ServerState>, vfs: &Arc<dyn Vfs>, id: u64, durable: bool) -> Arc<Open> {
        let path = VfsPath::parse("doc.txt").unwrap();
        let (h, _) = vfs
            .open(&path, &OpenOptions::read_write(CreateMode::OpenIf))
            .unwrap();
        let identity = h.metadata().unwrap().identity();
        let token = state
            .objects
            .table
            .acquire(identity, Access::READ, ShareMode(7))
            .unwrap();
        let o = Arc::new(Open::new(
            NewOpen {
                file_id: FileId {
                    persistent: id,
                    volatile: id,
                },
                tree_id: 1,
                path: path.clone(),
                handle: Arc::from(h),
                vfs: vfs.clone(),
                is_dir: false,
                access: 0x0012_019F,
                create_options: 0,
                delete_on_close: false,
                identity,
                token,
                anchor: None,
                file: state.objects.file(vfs, identity, &path),
                objects: state.objects.clone(),
            },
            OpenSlot::take(state, 0).unwrap(),
        ));
        o.file
            .grant_oplock(o.uid, (false, false), false, OplockLevel::BATCH.0, holder());
        o.file
            .try_lock(ByteLock {
                owner: o.uid,
                offset: 0,
                length: 10,
                exclusive: true,
            })
            .unwrap();
        if durable {
            *lock(&o.durable) = Some(Durable {
                v2: true,
                create_guid: [7; 16],
                client_guid: [1; 16],
                timeout: Duration::from_secs(60),
                owner: alice(),
                lease: None,
                share: 0,
                share_name: "share".into(),
            });
            state.objects.durable.register(o.clone());
        }
        o
    }

    fn detach(o: &Arc<Open>) -> Option<u64> {
        o.objects_durable()
            .detach(o, "alice".into(), "peer".into())
            .map(|(g, _)| g)
    }

    fn other_open() -> Intent {
        Intent {
            stat: false,
            lease_stat: false,
            overwrite: false,
            sharing_violation: false,
            lease: None,
        }
    }

    #[test]
    fn detach_reconnect_then_expire() {
        let state = server();
        let vfs: Arc<dyn Vfs> = Arc::new(MemFs::new());
        let o = open(&state, &vfs, 11, true);
        let table = state.objects.durable.clone();
        // Attached: nothing to reconnect.
        assert_eq!(
            table.reconnect(11, |_, _| Ok(())).err(),
            Some(ReconnectError::Attached)
        );
        let first = detach(&o).expect("a durable open is kept");
        assert_eq!(table.detached().len(), 1);
        assert_eq!(state.counters.open_files.load(Ordering::Relaxed), 1);
        // A refused check leaves it detached; an unknown id is not found.
        assert_eq!(
            table
                .reconnect(11, |_, _| Err(NtStatus::ACCESS_DENIED))
                .err(),
            Some(ReconnectError::Refused(NtStatus::ACCESS_DENIED))
        );
        assert_eq!(
            table.reconnect(12, |_, _| Ok(())).err(),
            Some(ReconnectError::NotFound)
        );
        let back = table
            .reconnect(11, |_, d| {
                assert_eq!(d.create_guid, [7; 16]);
                Ok(())
            })
            .unwrap();
        assert!(Arc::ptr_eq(&back, &o));
        assert!(table.detached().is_empty());
        // The scavenger of the first detach finds it reconnected and leaves it alone.
        assert!(table.expire(11, first).is_none());
        let second = detach(&o).unwrap();
        assert!(table.expire(11, first).is_none(), "a stale generation");
        let gone = table.expire(11, second).expect("expired");
        gone.close();
        assert_eq!(state.counters.open_files.load(Ordering::Relaxed), 0);
        assert_eq!(o.file.lock_count(), 0, "its locks went with it");
        assert!(table.reconnect(11, |_, _| Ok(())).is_err());
    }

    #[test]
    fn a_detached_open_keeps_its_lock_until_a_break_purges_it() {
        let state = server();
        let vfs: Arc<dyn Vfs> = Arc::new(MemFs::new());
        let o = open(&state, &vfs, 21, true);
        detach(&o).unwrap();
        assert_eq!(o.file.lock_count(), 1);
        // Another open needs the batch oplock broken: nobody can acknowledge it, so the
        // detached open is closed and the CREATE goes on.
        assert!(matches!(
            o.file.check_create(&other_open(), true),
            Check::Wait
        ));
        assert!(state.objects.purge_detached(&o.file));
        assert!(o.closed.load(Ordering::Acquire));
        assert_eq!(o.file.lock_count(), 0);
        assert!(matches!(
            o.file.check_create(&other_open(), true),
            Check::Clear
        ));
        assert!(state.objects.durable.detached().is_empty());
    }

    #[test]
    fn reattached_opens_get_breaks_again() {
        let state = server();
        let vfs: Arc<dyn Vfs> = Arc::new(MemFs::new());
        let o = open(&state, &vfs, 31, true);
        detach(&o).unwrap();
        state.objects.durable.reconnect(31, |_, _| Ok(())).unwrap();
        let (level, lease) = o.file.reattach_caching(o.uid, holder());
        assert_eq!((level, lease), (OplockLevel::BATCH.0, None));
        // Now a break is sent (and awaited), nothing purged.
        assert!(matches!(
            o.file.check_create(&other_open(), true),
            Check::Wait
        ));
        assert!(!state.objects.purge_detached(&o.file));
        // A break in flight cannot be answered once the connection is gone: not kept.
        assert!(detach(&o).is_none());
    }

    #[test]
    fn plain_opens_are_not_kept() {
        let state = server();
        let vfs: Arc<dyn Vfs> = Arc::new(MemFs::new());
        let o = open(&state, &vfs, 41, false);
        assert!(detach(&o).is_none());
        detach_or_close(o.clone(), "alice", "peer");
        assert!(o.closed.load(Ordering::Acquire));
        assert_eq!(state.counters.open_files.load(Ordering::Relaxed), 0);
    }
}
