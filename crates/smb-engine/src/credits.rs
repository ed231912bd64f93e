//! The credit window ([MS-SMB2] 3.3.1.1 "Algorithm for the Granting of Credits",
//! 3.3.5.2.3 "Verifying the Sequence Number").
//!
//! The client may use message ids in `[low, low + width)`. Each request consumes
//! `CreditCharge` consecutive ids; the server widens the window by the credits it grants.
//! Ids used out of order stay inside the window (marked used) until `low` moves past them, so
//! the window never exceeds `max` and a replayed id is always caught.

use std::collections::VecDeque;

/// Why a message id was refused. Per 3.3.5.2.3 the connection is then dropped.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum CreditError {
    #[error("message id {mid} (charge {charge}) is outside the window [{low}, {high})")]
    OutOfWindow {
        mid: u64,
        charge: u16,
        low: u64,
        high: u64,
    },
    #[error("message id {mid} was already used")]
    Replayed { mid: u64 },
}

#[derive(Debug)]
pub struct CreditWindow {
    low: u64,
    width: u64,
    max: u64,
    /// Ids above `low` used out of order: bit `i` of word `w` stands for id
    /// `base + 64 * w + i`. Empty while the client uses its ids in order (the usual case), so
    /// that an idle connection holds no allocation for its window; at most `max / 64 + 2`
    /// words (about 1 KiB at 8,192 credits) otherwise.
    base: u64,
    used: VecDeque<u64>,
}

/// Words kept allocated once the out-of-order set empties again; beyond this the set is
/// given back (a burst of reordered large I/O should not pin memory on an idle connection).
const KEEP_WORDS: usize = 4;

impl CreditWindow {
    /// A new connection may send exactly one request: NEGOTIATE with id 0.
    pub fn new(max: u16) -> Self {
        CreditWindow {
            low: 0,
            width: 1,
            max: u64::from(max.max(1)),
            base: 0,
            used: VecDeque::new(),
        }
    }

    /// Credits the client still holds (unused ids in the window). Every marked bit lies
    /// inside the window (bits are cleared as `low` passes them).
    pub fn available(&self) -> u64 {
        let used: u64 = self.used.iter().map(|w| u64::from(w.count_ones())).sum();
        self.width - used
    }

    #[cfg(test)]
    pub fn window(&self) -> (u64, u64) {
        (self.low, self.low + self.width)
    }

    fn is_used(&self, id: u64) -> bool {
        if id < self.base {
            return false;
        }
        let word = ((id - self.base) / 64) as usize;
        self.used
            .get(word)
            .is_some_and(|w| w & (1 << (id % 64)) != 0)
    }

    fn set(&mut self, id: u64, on: bool) {
        if self.used.is_empty() {
            self.base = self.low - self.low % 64;
        }
        // Callers pass ids in [low, low + width) and base <= low: in range, bounded by max.
        let word = ((id - self.base) / 64) as usize;
        while self.used.len() <= word {
            self.used.push_back(0);
        }
        if let Some(w) = self.used.get_mut(word) {
            if on {
                *w |= 1 << (id % 64);
            } else {
                *w &= !(1 << (id % 64));
            }
        }
    }

    /// Consume `charge` ids starting at `mid` (a charge of 0 counts as 1, as 2.0.2 sends).
    pub fn consume(&mut self, mid: u64, charge: u16) -> Result<(), CreditError> {
        let n = u64::from(charge.max(1));
        let high = self.low + self.width;
        let end = mid.checked_add(n).ok_or(CreditError::OutOfWindow {
            mid,
            charge,
            low: self.low,
            high,
        })?;
        if mid < self.low || end > high {
            return Err(CreditError::OutOfWindow {
                mid,
                charge,
                low: self.low,
                high,
            });
        }
        if !self.used.is_empty() && (mid..end).any(|id| self.is_used(id)) {
            return Err(CreditError::Replayed { mid });
        }
        if mid != self.low {
            for id in mid..end {
                self.set(id, true);
            }
            return Ok(());
        }
        self.width -= end - self.low;
        self.low = end;
        while self.width > 0 && self.is_used(self.low) {
            let low = self.low;
            self.set(low, false);
            self.low += 1;
            self.width -= 1;
        }
        while self.base + 64 <= self.low && !self.used.is_empty() {
            self.used.pop_front();
            self.base += 64;
        }
        if self.used.iter().all(|w| *w == 0) {
            if self.used.capacity() > KEEP_WORDS {
                self.used = VecDeque::new();
            } else {
                self.used.clear();
            }
        }
        Ok(())
    }
    /// Grant up to `requested` credits, never letting the window exceed `max`, and never
    /// leaving a client with no credit at all (it could not send another request).
    pub fn grant(&mut self, requested: u16) -> u16 {
        let room = self.max - self.width;
        let mut g = u64::from(requested).min(room);
        if g == 0 && self.available() == 0 && room > 0 {
            g = 1;
        }
        self.width += g;
        g as u16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiate_then_grants() {
        let mut w = CreditWindow::new(8192);
        assert_eq!(
            w.consume(1, 1),
            Err(CreditError::OutOfWindow {
                mid: 1,
                charge: 1,
                low: 0,
                high: 1
            })
        );
        w.consume(0, 1).unwrap();
        assert_eq!(w.available(), 0);
        assert_eq!(w.grant(0), 1, "a client is never left with no credit");
        assert_eq!(w.grant(10), 10);
        assert_eq!(w.available(), 11);
        assert_eq!(w.window(), (1, 12));
    }

    #[test]
    fn replay_and_out_of_order() {
        let mut w = CreditWindow::new(100);
        w.consume(0, 1).unwrap();
        w.grant(10);
        w.consume(5, 2).unwrap();
        assert_eq!(w.consume(6, 1), Err(CreditError::Replayed { mid: 6 }));
        w.consume(1, 4).unwrap();
        assert_eq!(w.window(), (7, 11));
        assert_eq!(
            w.consume(3, 1),
            Err(CreditError::OutOfWindow {
                mid: 3,
                charge: 1,
                low: 7,
                high: 11
            })
        );
        assert_eq!(
            w.consume(u64::MAX, 2),
            Err(CreditError::OutOfWindow {
                mid: u64::MAX,
                charge: 2,
                low: 7,
                high: 11
            })
        );
    }

    #[test]
    fn never_beyond_max() {
        let mut w = CreditWindow::new(16);
        w.consume(0, 1).unwrap();
        assert_eq!(w.grant(1000), 16);
        assert_eq!(w.grant(1000), 0);
        w.consume(1, 8).unwrap();
        assert_eq!(w.grant(1000), 8);
        assert_eq!(w.available(), 16);
    }

    /// Against a plain model (a set of used ids): random grants and consumes, in and out of
    /// order, replays and out-of-window ids.
    #[test]
    fn matches_a_model() {
        use rand::{Rng, SeedableRng};
        use std::collections::BTreeSet;
        for seed in 0..20u64 {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let max = rng.gen_range(1..300u16);
            let mut w = CreditWindow::new(max);
            let (mut low, mut width) = (0u64, 1u64);
            let mut used = BTreeSet::new();
            for _ in 0..5000 {
                if rng.gen_bool(0.3) {
                    let req = rng.gen_range(0..40u16);
                    let room = u64::from(max) - width;
                    let mut g = u64::from(req).min(room);
                    if g == 0 && width == used.len() as u64 && room > 0 {
                        g = 1;
                    }
                    assert_eq!(u64::from(w.grant(req)), g);
                    width += g;
                } else {
                    let mid = low.saturating_sub(2) + rng.gen_range(0..width + 4);
                    let charge = rng.gen_range(0..4u16);
                    let n = u64::from(charge.max(1));
                    let expect = if mid < low || mid + n > low + width {
                        Err(CreditError::OutOfWindow {
                            mid,
                            charge,
                            low,
                            high: low + width,
                        })
                    } else if (mid..mid + n).any(|id| used.contains(&id)) {
                        Err(CreditError::Replayed { mid })
                    } else {
                        used.extend(mid..mid + n);
                        while used.remove(&low) {
                            low += 1;
                            width -= 1;
                        }
                        Ok(())
                    };
                    assert_eq!(w.consume(mid, charge), expect, "seed {seed}");
                }
                assert_eq!(w.window(), (low, low + width));
                assert_eq!(w.available(), width - used.len() as u64);
                assert!(w.used.len() as u64 <= u64::from(max) / 64 + 2);
            }
        }
    }
}
