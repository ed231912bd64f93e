//! A user file that follows its changes on disk, so `lanshare user add|del` takes effect in a
//! running server without a restart or a signal.
//!
//! Lookups trust a check of the file made within the last [`RECHECK_AFTER`], so a burst of
//! logons costs one `stat` a second instead of one each (a `statx` was 2 % of the server's CPU
//! per session set up). A logon that the accounts in force refuse checks the file again at once
//! ([`UserDb::reload_if_changed`]): an account just added, a new password or a re-enabled
//! account work at the next logon, and only a removed or disabled account, or an old password,
//! can still log on, for at most [`RECHECK_AFTER`] after the change.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use crate::userdb::{UserDb, UserRecord};
use crate::userfile::{UserFile, UserFileError};

/// What identifies one version of the file. [`UserFile::save`] renames a new file into place,
/// so the inode changes even when two saves fall within one mtime tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let meta = fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0;
    Some(Stamp {
        modified: meta.modified().ok(),
        len: meta.len(),
        inode,
    })
}

/// How long a check of the file is trusted by lookups.
pub const RECHECK_AFTER: Duration = Duration::from_secs(1);

#[derive(Debug)]
struct Snapshot {
    stamp: Option<Stamp>,
    /// When `stamp` was last compared with the file.
    checked: Instant,
    file: Arc<UserFile>,
    last_error: Option<String>,
}

/// A [`UserDb`] over a user file that is re-read whenever it changes. A lookup `stat`s the file
/// when the last check is older than [`RECHECK_AFTER`]; a refused logon checks it at once (see
/// the module documentation). A missing file means no accounts. When a new
/// version does not parse, the previous accounts stay in force and
/// [`WatchedUserFile::last_error`] says why, so a botched hand edit cannot lock everyone out.
#[derive(Debug)]
pub struct WatchedUserFile {
    path: PathBuf,
    state: RwLock<Snapshot>,
}

impl WatchedUserFile {
    /// Loads the file now; a missing file is an empty one, a bad file is an error.
    pub fn open(path: &Path) -> Result<WatchedUserFile, UserFileError> {
        let stamp = stamp(path);
        let file = UserFile::load_or_empty(path)?;
        Ok(WatchedUserFile {
            path: path.to_owned(),
            state: RwLock::new(Snapshot {
                stamp,
                checked: Instant::now(),
                file: Arc::new(file),
                last_error: None,
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Re-reads the file if it changed (checked now, however recently it was checked before).
    /// `Ok(true)` when a new version was loaded.
    pub fn refresh(&self) -> Result<bool, UserFileError> {
        let checked = Instant::now();
        let now = stamp(&self.path);
        if self.read().stamp == now {
            self.write().checked = checked;
            return Ok(false);
        }
        let loaded = UserFile::load_or_empty(&self.path);
        let mut state = self.write();
        state.checked = checked;
        match loaded {
            Ok(file) => {
                state.stamp = now;
                state.file = Arc::new(file);
                state.last_error = None;
                Ok(true)
            }
            Err(e) => {
                // Remember the stamp so a broken file is parsed once, not on every logon.
                state.stamp = now;
                state.last_error = Some(e.to_string());
                Err(e)
            }
        }
    }

    /// The accounts in force, from a check of the file at most [`RECHECK_AFTER`] old.
    pub fn current(&self) -> Arc<UserFile> {
        {
            let state = self.read();
            if state.checked.elapsed() < RECHECK_AFTER {
                return Arc::clone(&state.file);
            }
        }
        let _ = self.refresh();
        Arc::clone(&self.read().file)
    }

    /// Why the newest version on disk was not loaded, if it was not.
    pub fn last_error(&self) -> Option<String> {
        self.read().last_error.clone()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Snapshot> {
        // A panic while holding the lock cannot leave a half-written snapshot (fields are
        // replaced whole), so a poisoned lock is still good to read.
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Snapshot> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }
}

impl UserDb for WatchedUserFile {
    fn lookup(&self, user: &str) -> Option<UserRecord> {
        self.current().lookup(user)
    }

    fn reload_if_changed(&self) -> bool {
        self.refresh().unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nt_hash;

    #[test]
    fn follows_saves_and_survives_bad_edits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users");
        let db = WatchedUserFile::open(&path).unwrap();
        assert!(db.lookup("alice").is_none());

        let mut f = UserFile::new();
        f.add("alice", "one").unwrap();
        f.save(&path).unwrap();
        assert!(db.reload_if_changed());
        assert_eq!(db.lookup("ALICE").unwrap().nt_hash, nt_hash("one"));

        // Two saves in quick succession: the rename gives a new inode each time.
        f.set_password("alice", "two").unwrap();
        f.save(&path).unwrap();
        assert!(db.reload_if_changed());
        assert!(!db.reload_if_changed(), "nothing new the second time");
        assert_eq!(db.lookup("alice").unwrap().nt_hash, nt_hash("two"));

        fs::write(&path, "this is not a user line\n").unwrap();
        assert!(db.refresh().is_err());
        assert!(db.last_error().unwrap().contains(":1:"));
        assert_eq!(db.lookup("alice").unwrap().nt_hash, nt_hash("two"));

        fs::remove_file(&path).unwrap();
        assert!(db.reload_if_changed());
        assert!(db.lookup("alice").is_none());
        assert!(db.last_error().is_none());
    }

    #[test]
    fn lookups_check_the_file_at_most_once_per_interval() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users");
        let mut f = UserFile::new();
        f.add("alice", "one").unwrap();
        f.save(&path).unwrap();
        let db = WatchedUserFile::open(&path).unwrap();
        let opened = Instant::now();
        f.set_password("alice", "two").unwrap();
        f.save(&path).unwrap();
        let seen = db.lookup("alice").unwrap().nt_hash;
        // Within the interval the lookup answers from the check made at open; a test machine
        // may have stalled past it, in which case it rightly sees the new file.
        if opened.elapsed() < RECHECK_AFTER {
            assert_eq!(seen, nt_hash("one"));
        }
        let deadline = Instant::now() + 20 * RECHECK_AFTER;
        while db.lookup("alice").unwrap().nt_hash != nt_hash("two") {
            assert!(Instant::now() < deadline, "the change was never picked up");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    #[test]
    fn open_fails_on_a_bad_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users");
        fs::write(&path, "bad\n").unwrap();
        assert!(matches!(
            WatchedUserFile::open(&path),
            Err(UserFileError::Parse { line: 1, .. })
        ));
    }
}
