//! Sessions, tree connects and the server-wide session table ([MS-SMB2] 3.3.1.8, 3.3.1.9).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use lanshare_auth::{Acceptor, Identity};

use std::net::SocketAddr;
use std::time::SystemTime;

use smb_wire::{Dialect, FileId};

use crate::crypto::{PreauthHash, SigningAlgo};
use crate::open::Open;
use crate::server::Share;

/// Lock a mutex, recovering the data if a panicking handler poisoned it: the panic already
/// ended that request's connection, and the state it guards is consistent between calls.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What a finished authentication gives a session.
#[derive(Debug)]
pub(crate) struct SessionAuth {
    pub identity: Identity,
    /// `None` for guest and anonymous sessions: they are never signed.
    pub signing: Option<(SigningAlgo, [u8; 16])>,
    /// Session.SigningRequired: unsigned requests are refused.
    pub signing_required: bool,
    /// Keys for SMB3 encryption, when a cipher was negotiated and the session has a key.
    pub crypto: Option<Arc<crate::cipher::SessionCrypto>>,
    /// Session.EncryptData: every request must arrive encrypted.
    pub encrypt_data: bool,
}

impl SessionAuth {
    pub fn is_guest(&self) -> bool {
        matches!(self.identity, Identity::Guest)
    }
    pub fn is_anonymous(&self) -> bool {
        matches!(self.identity, Identity::Anonymous)
    }
    pub fn user_name(&self) -> &str {
        match &self.identity {
            Identity::User { name, .. } => name,
            Identity::Guest => "guest",
            Identity::Anonymous => "(anonymous)",
        }
    }
}

pub(crate) enum SessionState {
    InProgress {
        acceptor: Box<Acceptor>,
        preauth: PreauthHash,
        /// During re-authentication the session stays usable with its previous state
        /// ([MS-SMB2] 3.3.5.5.2), and keeps its keys.
        previous: Option<Arc<SessionAuth>>,
    },
    Valid(Arc<SessionAuth>),
}

static NEXT_VOLATILE: AtomicU64 = AtomicU64::new(1);

pub(crate) struct Session {
    pub id: u64,
    pub state: Mutex<SessionState>,
    pub trees: Mutex<HashMap<u32, Arc<Tree>>>,
    next_tree_id: AtomicU32,
    pub opens: Mutex<HashMap<u64, Arc<Open>>>,
    /// Named pipes opened on IPC$ (srvsvc, wkssvc); FileIds share the volatile counter.
    pub pipes: Mutex<HashMap<u64, crate::handlers::pipe::PipeHandle>>,
    /// Set by LOGOFF or a reconnect that replaced the session: every later request on it
    /// gets STATUS_USER_SESSION_DELETED, even on another connection.
    expired: AtomicBool,
    /// For `lanshare sessions`.
    pub peer: SocketAddr,
    pub dialect: Dialect,
    pub created: SystemTime,
    /// Server-clock seconds (ServerState::now_secs) of the last request on this session.
    pub last_active: AtomicU64,
}

impl Session {
    pub fn new(
        id: u64,
        acceptor: Acceptor,
        preauth: PreauthHash,
        peer: SocketAddr,
        dialect: Dialect,
        now: u64,
    ) -> Self {
        Session {
            id,
            peer,
            dialect,
            created: SystemTime::now(),
            last_active: AtomicU64::new(now),
            state: Mutex::new(SessionState::InProgress {
                acceptor: Box::new(acceptor),
                preauth,
                previous: None,
            }),
            trees: Mutex::new(HashMap::new()),
            next_tree_id: AtomicU32::new(1),
            opens: Mutex::new(HashMap::new()),
            pipes: Mutex::new(HashMap::new()),
            expired: AtomicBool::new(false),
        }
    }

    pub fn expire(&self) {
        self.expired.store(true, Ordering::Relaxed);
    }

    /// The authenticated state, or `None` while SESSION_SETUP is still in progress or after
    /// the session was logged off.
    pub fn auth(&self) -> Option<Arc<SessionAuth>> {
        if self.expired.load(Ordering::Relaxed) {
            return None;
        }
        match &*lock(&self.state) {
            SessionState::Valid(a) => Some(a.clone()),
            SessionState::InProgress { previous, .. } => previous.clone(),
        }
    }

    /// Connect a tree, unless the share is at its `max_users` (then `None`).
    pub fn add_tree(
        &self,
        share: Arc<Share>,
        maximal_access: u32,
        encrypt: bool,
    ) -> Option<Arc<Tree>> {
        let limit = share.config.max_users;
        let admitted = share
            .users
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (limit == 0 || n < limit).then_some(n + 1)
            });
        if admitted.is_err() {
            return None;
        }
        // Tree ids are per session; 0 and 0xFFFFFFFF have special meaning on the wire.
        let mut id = self.next_tree_id.fetch_add(1, Ordering::Relaxed);
        if id == 0 || id == u32::MAX {
            id = self.next_tree_id.fetch_add(2, Ordering::Relaxed);
        }
        let tree = Arc::new(Tree {
            id,
            share,
            maximal_access,
            encrypt,
        });
        lock(&self.trees).insert(id, tree.clone());
        Some(tree)
    }

    pub fn tree(&self, id: u32) -> Option<Arc<Tree>> {
        lock(&self.trees).get(&id).cloned()
    }

    /// FileIds are unique in the process, not only in the session: a durable open keeps its
    /// FileId when it is reconnected into another session ([MS-SMB2] 3.3.5.9.7).
    pub fn next_volatile_id(&self) -> u64 {
        NEXT_VOLATILE.fetch_add(1, Ordering::Relaxed)
    }

    /// The session ends without a LOGOFF (its connection dropped, or a reconnecting client
    /// replaced it): durable opens are kept for a reconnect, the others closed
    /// ([MS-SMB2] 3.3.7.1).
    pub fn disconnect_opens(&self) {
        let victims: Vec<Arc<Open>> = lock(&self.opens).drain().map(|(_, o)| o).collect();
        if victims.is_empty() {
            return;
        }
        let user = self
            .auth()
            .map(|a| a.user_name().to_string())
            .unwrap_or_default();
        let client = self.peer.to_string();
        for open in victims {
            crate::durable::detach_or_close(open, &user, &client);
        }
    }

    /// Close every open of this session (logoff); or of one tree.
    pub fn close_opens(&self, tree_id: Option<u32>) -> Vec<FileId> {
        let victims: Vec<Arc<Open>> = {
            let mut opens = lock(&self.opens);
            let ids: Vec<u64> = opens
                .iter()
                .filter(|(_, o)| tree_id.is_none_or(|t| o.tree_id() == t))
                .map(|(k, _)| *k)
                .collect();
            ids.into_iter().filter_map(|k| opens.remove(&k)).collect()
        };
        victims
            .into_iter()
            .map(|open| {
                open.close();
                open.file_id
            })
            .collect()
    }
}

pub(crate) struct Tree {
    pub id: u32,
    pub share: Arc<Share>,
    pub maximal_access: u32,
    /// TreeConnect.EncryptData: requests on this tree must be encrypted.
    pub encrypt: bool,
}

impl Drop for Tree {
    /// The share's user count (`max_users`) follows the life of its trees, however they end:
    /// TREE_DISCONNECT, LOGOFF, a dropped connection.
    fn drop(&mut self) {
        self.share.users.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Every session of the server, by id: PreviousSessionId reconnects and `status` need it.
#[derive(Default)]
pub(crate) struct SessionTable {
    map: Mutex<HashMap<u64, Arc<Session>>>,
}

impl SessionTable {
    /// Insert unless `limit` (0 = none) sessions exist already; `Err(current count)` then.
    pub fn insert_within(&self, s: Arc<Session>, limit: u32) -> Result<(), usize> {
        let mut map = lock(&self.map);
        if limit != 0 && map.len() >= limit as usize {
            return Err(map.len());
        }
        map.insert(s.id, s);
        Ok(())
    }

    pub fn all(&self) -> Vec<Arc<Session>> {
        lock(&self.map).values().cloned().collect()
    }
    pub fn get(&self, id: u64) -> Option<Arc<Session>> {
        lock(&self.map).get(&id).cloned()
    }
    pub fn remove(&self, id: u64) -> Option<Arc<Session>> {
        lock(&self.map).remove(&id)
    }
    pub fn len(&self) -> usize {
        lock(&self.map).len()
    }
}
