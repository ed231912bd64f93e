//! The credit window ([MS-SMB2] 3.3.1.1 "Algorithm for the Granting of Credits",
//! 3.3.5.2.3 "Verifying the Sequence Number").
//!
//! The client may use message ids in `[low, low + width)`. Each request consumes
//! `CreditCharge` consecutive ids; the server widens the window by the credits it grants.
//! Ids used out of order stay inside the window (marked used) until `low` moves past them, so
//! the window never exceeds `max` and a replayed id is always caught.

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
    /// Bit `i` = id `low + i` already used. Length `max`, ring-indexed by `id % max`.
    used: Vec<bool>,
}

impl CreditWindow {
    /// A new connection may send exactly one request: NEGOTIATE with id 0.
    pub fn new(max: u16) -> Self {
        let max = u64::from(max.max(1));
        CreditWindow {
            low: 0,
            width: 1,
            max,
            used: vec![false; max as usize],
        }
    }

    /// Credits the client still holds (unused ids in the window).
    pub fn available(&self) -> u64 {
        let used = (0..self.width)
            .filter(|i| self.used[self.slot(self.low + i)])
            .count() as u64;
        self.width - used
    }

    #[cfg(test)]
    pub fn window(&self) -> (u64, u64) {
        (self.low, self.low + self.width)
    }

    fn slot(&self, id: u64) -> usize {
        (id % self.max) as usize
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
        if (mid..end).any(|id| self.used[self.slot(id)]) {
            return Err(CreditError::Replayed { mid });
        }
        for id in mid..end {
            let s = self.slot(id);
            self.used[s] = true;
        }
        while self.width > 0 && self.used[self.slot(self.low)] {
            let s = self.slot(self.low);
            self.used[s] = false;
            self.low += 1;
            self.width -= 1;
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
}
