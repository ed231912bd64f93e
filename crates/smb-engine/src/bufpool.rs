//! Large I/O buffers (READ responses) kept for the next request of the same size.
//!
//! A 1 MiB or 8 MiB buffer from the allocator is fresh memory each time: glibc maps buffers of
//! that size, or trims them back to the kernel when freed, so every READ paid page faults and
//! the kernel's zeroing of each page (`clear_page_erms` and `exc_page_fault` were 8 % of the
//! server's CPU in the signed multi-stream rows) before the file data was even copied in.
//! Clients read a file in requests of one size, so a buffer given back after its response
//! was sent fits the next request exactly.
//!
//! Bounded: at most [`MAX_BYTES`] are kept over the whole process, and a buffer unused for
//! [`MAX_AGE`] is freed at the next take or give. No connection holds one while idle.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Smaller buffers come from the allocator's own caches cheaply.
pub(crate) const MIN_CAPACITY: usize = 64 * 1024;
/// Enough for the steady state of several streams (each response sent gives back the buffer
/// the next request takes) and for two of smbclient's 8 MiB READs.
const MAX_BYTES: usize = 32 * 1024 * 1024;
const MAX_AGE: Duration = Duration::from_secs(10);

struct Pool {
    /// Most recently given last.
    free: Vec<(Vec<u8>, Instant)>,
    bytes: usize,
}

static POOL: Mutex<Pool> = Mutex::new(Pool {
    free: Vec::new(),
    bytes: 0,
});

impl Pool {
    fn expire(&mut self, now: Instant) {
        let before = self.free.len();
        self.free
            .retain(|(_, at)| now.saturating_duration_since(*at) < MAX_AGE);
        if self.free.len() != before {
            self.bytes = self.free.iter().map(|(b, _)| b.capacity()).sum();
        }
    }
}

fn pool() -> std::sync::MutexGuard<'static, Pool> {
    // The pool holds only spare buffers: one left by a panicking holder is still valid.
    POOL.lock().unwrap_or_else(|e| e.into_inner())
}

/// An empty buffer whose capacity is exactly `capacity` (the storage layer reads into all of
/// the spare capacity it is given), reused when one of that size was given back.
pub(crate) fn take(capacity: usize) -> Vec<u8> {
    if capacity >= MIN_CAPACITY {
        let mut p = pool();
        p.expire(Instant::now());
        if let Some(i) = p.free.iter().rposition(|(b, _)| b.capacity() == capacity) {
            let (buf, _) = p.free.swap_remove(i);
            p.bytes -= buf.capacity();
            return buf;
        }
    }
    Vec::with_capacity(capacity)
}

/// Gives a buffer back once its contents are no longer needed (a response written out).
/// Small buffers, and any beyond the bound, go back to the allocator.
pub(crate) fn give(mut buf: Vec<u8>) {
    let cap = buf.capacity();
    if !(MIN_CAPACITY..=MAX_BYTES).contains(&cap) {
        return;
    }
    buf.clear();
    let now = Instant::now();
    let mut p = pool();
    p.expire(now);
    // Make room by dropping the oldest: the newest are the likeliest to fit what comes next.
    while p.bytes + cap > MAX_BYTES && !p.free.is_empty() {
        let (old, _) = p.free.remove(0);
        p.bytes -= old.capacity();
    }
    p.bytes += cap;
    p.free.push((buf, now));
}

#[cfg(test)]
mod tests {
    use super::*;

    // One test owns the process-wide pool's behaviour end to end (tests run in parallel).
    #[test]
    fn reuses_exact_sizes_and_stays_bounded() {
        let cap = 3 * MIN_CAPACITY + 17;
        let mut a = take(cap);
        assert_eq!(a.capacity(), cap);
        a.extend_from_slice(&[1, 2, 3]);
        let addr = a.as_ptr();
        give(a);
        let b = take(cap);
        assert_eq!(b.as_ptr(), addr, "the same buffer comes back");
        assert!(b.is_empty(), "given back cleared");
        assert_eq!(b.capacity(), cap);
        let other = take(cap + 1);
        assert_eq!(other.capacity(), cap + 1, "only an exact size is reused");
        give(b);
        give(other);

        // Small buffers are not kept.
        let small = Vec::<u8>::with_capacity(MIN_CAPACITY - 1);
        let small_addr = small.as_ptr();
        give(small);
        assert!(pool().free.iter().all(|(b, _)| b.as_ptr() != small_addr));

        // Far more than the bound given back: the pool keeps at most MAX_BYTES.
        let big = 4 * 1024 * 1024 + 5;
        for _ in 0..(2 * MAX_BYTES / big + 2) {
            give(Vec::with_capacity(big));
            assert!(pool().bytes <= MAX_BYTES);
        }
        let p = pool();
        assert_eq!(
            p.bytes,
            p.free.iter().map(|(b, _)| b.capacity()).sum::<usize>()
        );
    }
}
