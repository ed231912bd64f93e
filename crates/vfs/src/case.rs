//! Case-insensitive, case-preserving name lookup.
//!
//! Windows compares names by upcasing each UTF-16 unit through the volume's upcase table
//! ([MS-FSCC] 2.1.5.2 says names are case-insensitive; NTFS's table maps one unit to one unit).
//! [`fold`] does the same per `char`: the simple uppercase when it is a single char, the char
//! itself otherwise (so `ß` stays `ß`, as on Windows, rather than becoming `SS`).
//!
//! [`CiCache`] remembers, per directory, folded name → real name, so that a miss in a
//! 100,000-entry directory does not rescan it on every open. An entry is trusted while the
//! directory's identity and mtime are unchanged; our own creates, renames and removes update
//! it in place (and refresh its stamp) so that filling a large directory stays linear. Two
//! limits of mtime stamps, both bounded:
//! - a change made by another process within the same timestamp tick as our scan leaves the
//!   mtime equal: a directory modified less than [`SETTLE`] before its scan is "provisional" and
//!   rescanned when the entry is older than [`SETTLE`];
//! - the cache is bounded ([`MAX_DIRS`], [`MAX_NAMES`]); least recently used directories go.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// How long after a directory's last change its listing counts as settled.
pub(crate) const SETTLE: Duration = Duration::from_secs(1);
/// Most directories cached at once.
pub(crate) const MAX_DIRS: usize = 4096;
/// Most names cached at once, over all directories.
pub(crate) const MAX_NAMES: usize = 2_000_000;

/// The key two names are compared by.
pub fn fold(name: &str) -> String {
    if name.is_ascii() {
        return name.to_ascii_uppercase();
    }
    name.chars()
        .map(|c| {
            let mut up = c.to_uppercase();
            match (up.next(), up.next()) {
                (Some(u), None) => u,
                _ => c,
            }
        })
        .collect()
}

/// What must stay equal for a cached listing to be current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DirStamp {
    pub dev: u64,
    pub ino: u64,
    pub mtime: SystemTime,
}

struct CiDir {
    stamp: DirStamp,
    scanned: Instant,
    provisional: bool,
    /// folded → every real spelling, sorted (several only on a case-sensitive disk holding
    /// names that differ in case; the first one is the answer).
    names: HashMap<String, Vec<String>>,
    /// Number of names in `names`.
    count: usize,
    last_used: u64,
}

/// The per-share cache (the caller wraps it in a mutex).
#[derive(Default)]
pub(crate) struct CiCache {
    dirs: HashMap<PathBuf, CiDir>,
    total_names: usize,
    clock: u64,
    /// Full scans done: for tests and the benchmark.
    pub scans: u64,
}

/// Outcome of [`CiCache::lookup`].
pub(crate) enum Cached {
    /// Current listing: the real name, or `None` for a definite miss.
    Hit(Option<String>),
    /// No current listing: scan the directory and call [`CiCache::store`].
    Stale,
}

impl CiCache {
    pub(crate) fn lookup(&mut self, dir: &Path, stamp: DirStamp, folded: &str) -> Cached {
        self.clock += 1;
        let clock = self.clock;
        match self.dirs.get_mut(dir) {
            Some(d) if d.stamp == stamp && !(d.provisional && d.scanned.elapsed() > SETTLE) => {
                d.last_used = clock;
                Cached::Hit(d.names.get(folded).and_then(|v| v.first()).cloned())
            }
            _ => Cached::Stale,
        }
    }

    /// Stores a fresh listing. `stamp` must have been taken before the scan began, so that a
    /// change during the scan makes the entry stale at once.
    pub(crate) fn store(
        &mut self,
        dir: PathBuf,
        stamp: DirStamp,
        scan_began: SystemTime,
        names: impl IntoIterator<Item = String>,
    ) {
        self.scans += 1;
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        let mut count = 0;
        for n in names {
            count += 1;
            let spellings = map.entry(fold(&n)).or_default();
            if let Err(at) = spellings.binary_search(&n) {
                spellings.insert(at, n);
            }
        }
        let provisional = scan_began
            .duration_since(stamp.mtime)
            .map_or(true, |age| age < SETTLE);
        self.clock += 1;
        let entry = CiDir {
            stamp,
            scanned: Instant::now(),
            provisional,
            names: map,
            count,
            last_used: self.clock,
        };
        self.total_names += count;
        if let Some(old) = self.dirs.insert(dir, entry) {
            self.total_names -= old.count;
        }
        self.evict();
    }

    fn evict(&mut self) {
        while self.dirs.len() > MAX_DIRS || (self.total_names > MAX_NAMES && self.dirs.len() > 1) {
            let Some(victim) = self
                .dirs
                .iter()
                .min_by_key(|(_, d)| d.last_used)
                .map(|(k, _)| k.clone())
            else {
                return;
            };
            if let Some(d) = self.dirs.remove(&victim) {
                self.total_names -= d.count;
            }
        }
    }

    /// Our own change to `dir`: `added` / `removed` names, `stamp` the directory's stamp after
    /// the change (`None` when it could not be read: the entry is dropped).
    pub(crate) fn note_change(
        &mut self,
        dir: &Path,
        added: Option<&str>,
        removed: Option<&str>,
        stamp: Option<DirStamp>,
    ) {
        let Some(stamp) = stamp else {
            self.forget(dir);
            return;
        };
        let Some(d) = self.dirs.get_mut(dir) else {
            return;
        };
        if let Some(r) = removed {
            let k = fold(r);
            if let Some(spellings) = d.names.get_mut(&k)
                && let Ok(at) = spellings.binary_search_by(|n| n.as_str().cmp(r))
            {
                spellings.remove(at);
                d.count -= 1;
                self.total_names -= 1;
                if spellings.is_empty() {
                    d.names.remove(&k);
                }
            }
        }
        if let Some(a) = added {
            let spellings = d.names.entry(fold(a)).or_default();
            if let Err(at) = spellings.binary_search_by(|n| n.as_str().cmp(a)) {
                spellings.insert(at, a.to_owned());
                d.count += 1;
                self.total_names += 1;
            }
        }
        d.stamp = stamp;
    }

    /// Drops `dir` and everything cached beneath it (a directory renamed or removed).
    pub(crate) fn forget(&mut self, dir: &Path) {
        let doomed: Vec<PathBuf> = self
            .dirs
            .keys()
            .filter(|k| k.starts_with(dir))
            .cloned()
            .collect();
        for k in doomed {
            if let Some(d) = self.dirs.remove(&k) {
                self.total_names -= d.count;
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn folding() {
        assert_eq!(fold("ReadMe.txt"), fold("README.TXT"));
        assert_eq!(fold("émile"), fold("ÉMILE"));
        assert_ne!(fold("a"), fold("b"));
        // One-to-one only: ß has no single-char uppercase and stays itself.
        assert_eq!(fold("straße"), "STRAßE");
        assert_ne!(fold("straße"), fold("STRASSE"));
        assert_eq!(fold("ǅ"), fold("ǆ"));
    }

    fn stamp(m: u64) -> DirStamp {
        DirStamp {
            dev: 1,
            ino: 2,
            mtime: SystemTime::UNIX_EPOCH + Duration::from_secs(m),
        }
    }

    #[test]
    fn hit_miss_and_staleness() {
        let mut c = CiCache::default();
        let d = Path::new("d");
        assert!(matches!(c.lookup(d, stamp(10), "A"), Cached::Stale));
        let began = SystemTime::UNIX_EPOCH + Duration::from_secs(100);
        c.store(d.into(), stamp(10), began, ["a".to_string(), "B".into()]);
        assert!(matches!(c.lookup(d, stamp(10), "A"), Cached::Hit(Some(n)) if n == "a"));
        assert!(matches!(c.lookup(d, stamp(10), "C"), Cached::Hit(None)));
        // The directory changed behind our back.
        assert!(matches!(c.lookup(d, stamp(11), "A"), Cached::Stale));
        // Our own create keeps it current.
        c.note_change(d, Some("c"), None, Some(stamp(12)));
        assert!(matches!(c.lookup(d, stamp(12), "C"), Cached::Hit(Some(n)) if n == "c"));
        c.note_change(d, None, Some("c"), Some(stamp(13)));
        assert!(matches!(c.lookup(d, stamp(13), "C"), Cached::Hit(None)));
        // Two spellings: removing the preferred one reveals the other.
        c.note_change(d, Some("b"), None, Some(stamp(14)));
        assert!(matches!(c.lookup(d, stamp(14), "B"), Cached::Hit(Some(n)) if n == "B"));
        c.note_change(d, None, Some("B"), Some(stamp(15)));
        assert!(matches!(c.lookup(d, stamp(15), "B"), Cached::Hit(Some(n)) if n == "b"));
        assert_eq!(c.scans, 1);
        c.forget(Path::new("d"));
        assert!(matches!(c.lookup(d, stamp(10), "A"), Cached::Stale));
        assert_eq!(c.total_names, 0);
    }

    #[test]
    fn recently_changed_dirs_are_provisional() {
        let mut c = CiCache::default();
        let d = Path::new("d");
        // Scanned in the same second as the last change: trusted only for SETTLE.
        c.store(
            d.into(),
            stamp(10),
            SystemTime::UNIX_EPOCH + Duration::from_secs(10),
            ["x".to_string()],
        );
        assert!(matches!(c.lookup(d, stamp(10), "X"), Cached::Hit(Some(_))));
        if let Some(e) = c.dirs.get_mut(d) {
            e.scanned -= SETTLE * 2;
        }
        assert!(matches!(c.lookup(d, stamp(10), "X"), Cached::Stale));
    }

    #[test]
    fn smallest_spelling_wins_and_eviction_bounds() {
        let mut c = CiCache::default();
        let began = SystemTime::now();
        c.store("d".into(), stamp(1), began, ["b".to_string(), "B".into()]);
        assert!(
            matches!(c.lookup(Path::new("d"), stamp(1), "B"), Cached::Hit(Some(n)) if n == "B")
        );
        for i in 0..(MAX_DIRS + 10) {
            c.store(
                PathBuf::from(format!("x{i}")),
                stamp(1),
                began,
                ["n".to_string()],
            );
        }
        assert!(c.dirs.len() <= MAX_DIRS);
        assert_eq!(
            c.total_names,
            c.dirs.values().map(|d| d.count).sum::<usize>()
        );
    }
}
