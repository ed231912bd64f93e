//! What each file's DOS xattr said, remembered per share so that listing a directory again
//! does not read every entry's xattr again: in a profile of listing 100,000 files those reads
//! were about two thirds of the server's time, twice the `statx` of the same entries.
//!
//! An entry is trusted only while the file's change time and birth time are what they were
//! when the xattr was read: every setxattr or removexattr, ours or another program's, sets the
//! change time to the current time, and a reused inode number has a new birth and change time.
//! Only files whose change time was at least [`SETTLE`] in the past when read are recorded, so
//! that a later change lands on a different change time even on filesystems whose timestamps
//! advance once per clock tick (a change in the same tick as the read would otherwise look
//! like no change). A clock set back by more than that could let a stale entry through; the
//! rest of the share's logic (the case-insensitive cache) has the same limit.
//!
//! Bounded: at [`MAX_ENTRIES`] it starts over (about 80 bytes an entry).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::time::{Duration, SystemTime};

use crate::dosattr::DosXattr;

/// How old a change time must be for its xattr to be remembered.
pub(crate) const SETTLE: Duration = Duration::from_secs(1);
/// Most files remembered at once, over the whole share.
pub(crate) const MAX_ENTRIES: usize = 262_144;

/// When a file was last changed and born, as `stat` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub ctime: SystemTime,
    pub btime: Option<SystemTime>,
}

/// Hashes a (device, inode) key so that nearby inode numbers land in nearby buckets: files
/// made one after another get consecutive numbers and a listing meets them in about that
/// order, so the table is walked nearly in sequence instead of at random (a random probe per
/// entry, a cache miss each, was a sixth of a warm listing's server time; SipHash before that
/// a quarter). Within each aligned block of 128 inodes the low bits are a permutation of the
/// block; the folded-in higher bits keep keys that share their low bits (numbers with a
/// stride) apart. The top 7 bits, which the table uses to tell keys of one group apart, are
/// mixed from all of it. Inode numbers are the filesystem's, not chosen by clients, so
/// flooding resistance buys nothing here.
#[derive(Default)]
struct InodeHasher(u64);

impl Hasher for InodeHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }

    fn write_u64(&mut self, v: u64) {
        // The device (written first) moves a share's files together; the inode keeps its low
        // bits.
        self.0 = self.0.wrapping_mul(0x517C_C1B7_2722_0A95) ^ v;
    }

    fn finish(&self) -> u64 {
        let x = self.0;
        let folded = x ^ (x >> 7) ^ (x >> 14) ^ (x >> 21) ^ (x >> 28) ^ (x >> 35) ^ (x >> 42);
        const LOW: u64 = (1 << 57) - 1;
        (folded & LOW) | (folded.wrapping_mul(0x9E37_79B9_7F4A_7C15) & !LOW)
    }
}

type InodeMap<V> = HashMap<(u64, u64), V, BuildHasherDefault<InodeHasher>>;

#[derive(Default)]
pub(crate) struct XattrCache {
    map: InodeMap<(Stamp, Option<DosXattr>)>,
    /// Lookups that found nothing current: for tests.
    pub misses: u64,
}

impl XattrCache {
    /// The xattr of file `(dev, ino)` as last read, while `stamp` is unchanged; `None` when
    /// unknown (then read it and [`put`](Self::put) it).
    pub(crate) fn get(&mut self, dev: u64, ino: u64, stamp: Stamp) -> Option<Option<DosXattr>> {
        match self.map.get(&(dev, ino)) {
            Some((s, x)) if *s == stamp => Some(*x),
            _ => {
                self.misses += 1;
                None
            }
        }
    }

    /// Records what was read for `(dev, ino)` at `stamp`, unless the file changed too recently
    /// before `now` to be told apart from its next change.
    pub(crate) fn put(
        &mut self,
        dev: u64,
        ino: u64,
        stamp: Stamp,
        x: Option<DosXattr>,
        now: SystemTime,
    ) {
        let settled = now
            .duration_since(stamp.ctime)
            .is_ok_and(|age| age >= SETTLE);
        if !settled {
            self.map.remove(&(dev, ino));
            return;
        }
        if self.map.len() >= MAX_ENTRIES && !self.map.contains_key(&(dev, ino)) {
            self.map = InodeMap::default();
        }
        self.map.insert((dev, ino), (stamp, x));
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn t(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn stamp(c: u64) -> Stamp {
        Stamp {
            ctime: t(c),
            btime: Some(t(1)),
        }
    }

    const HIDDEN: Option<DosXattr> = Some(DosXattr {
        attrs: Some(2),
        created: None,
    });

    #[test]
    fn remembered_while_the_change_time_holds() {
        let mut c = XattrCache::default();
        c.put(1, 7, stamp(100), HIDDEN, t(200));
        assert_eq!(c.get(1, 7, stamp(100)), Some(HIDDEN));
        // Changed since (an xattr write moves the change time): unknown again.
        assert_eq!(c.get(1, 7, stamp(150)), None);
        // Another device, another file.
        assert_eq!(c.get(2, 7, stamp(100)), None);
        // A reused inode number is born later.
        let reborn = Stamp {
            ctime: t(100),
            btime: Some(t(99)),
        };
        assert_eq!(c.get(1, 7, reborn), None);
        // "No xattr" is remembered too.
        c.put(1, 8, stamp(100), None, t(200));
        assert_eq!(c.get(1, 8, stamp(100)), Some(None));
    }

    #[test]
    fn recent_changes_are_not_remembered() {
        let mut c = XattrCache::default();
        c.put(1, 7, stamp(100), HIDDEN, t(100));
        assert_eq!(c.get(1, 7, stamp(100)), None);
        // A change time in the future (clock skew) neither.
        c.put(1, 7, stamp(300), HIDDEN, t(200));
        assert_eq!(c.get(1, 7, stamp(300)), None);
        // And a recent read forgets an older entry of the same file.
        c.put(1, 9, stamp(100), HIDDEN, t(200));
        c.put(1, 9, stamp(199), None, t(199));
        assert_eq!(c.get(1, 9, stamp(100)), None);
    }

    #[test]
    fn bounded() {
        let mut c = XattrCache::default();
        for i in 0..(MAX_ENTRIES as u64 + 10) {
            c.put(1, i, stamp(100), None, t(200));
        }
        assert!(c.len() <= MAX_ENTRIES);
        assert!(c.len() >= 10);
    }
}
