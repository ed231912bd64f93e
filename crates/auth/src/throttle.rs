//! Failed-logon throttling per client address and per account (design guide §6).
//!
//! Password guessing over NTLM costs an attacker one round trip per guess; this caps the rate.
//! After `max_failures` failed logons inside `window`, an address (or an account, from any
//! address) is refused for `lockout`, even with the right password. Time is passed in, so the
//! behaviour is testable without sleeping.
//!
//! Memory is bounded: accounts are tracked only when they exist in the user database (names
//! that do not exist protect nothing and are attacker-chosen), and addresses up to
//! `max_tracked_addresses`, after which stale entries are purged and, if the table is still
//! full, new addresses go untracked until entries expire (locked entries are never evicted).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::userdb::fold_name;

/// Limits for [`LogonThrottle`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottleConfig {
    /// Failures from one address within `window` before it is locked out; 0 disables.
    pub ip_max_failures: u32,
    /// Failures for one existing account within `window` before it is locked out; 0 disables.
    pub user_max_failures: u32,
    pub window: Duration,
    pub lockout: Duration,
    pub max_tracked_addresses: usize,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        // Short lockouts: enough to make online guessing useless (about 10 guesses a minute
        // per address), short enough that locking out a real user is only a nuisance.
        ThrottleConfig {
            ip_max_failures: 10,
            user_max_failures: 20,
            window: Duration::from_secs(60),
            lockout: Duration::from_secs(60),
            max_tracked_addresses: 65_536,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    window_start: Instant,
    locked_until: Option<Instant>,
}

impl Entry {
    fn new(now: Instant) -> Self {
        Entry {
            failures: 0,
            window_start: now,
            locked_until: None,
        }
    }

    fn locked(&self, now: Instant) -> Option<Duration> {
        self.locked_until
            .and_then(|until| until.checked_duration_since(now))
            .filter(|d| !d.is_zero())
    }

    fn stale(&self, now: Instant, window: Duration) -> bool {
        self.locked(now).is_none() && now.saturating_duration_since(self.window_start) >= window
    }

    fn fail(&mut self, now: Instant, cfg: &ThrottleConfig, max: u32) {
        if now.saturating_duration_since(self.window_start) >= cfg.window {
            self.failures = 0;
            self.window_start = now;
        }
        self.failures = self.failures.saturating_add(1);
        if max > 0 && self.failures >= max {
            self.locked_until = now.checked_add(cfg.lockout);
            self.failures = 0;
            self.window_start = now;
        }
    }
}

#[derive(Debug, Default)]
struct State {
    ips: HashMap<IpAddr, Entry>,
    users: HashMap<String, Entry>,
}

/// Shared by every connection of a server.
#[derive(Debug)]
pub struct LogonThrottle {
    cfg: ThrottleConfig,
    state: Mutex<State>,
}

/// Why a logon attempt was turned away, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    pub retry_after: Duration,
}

impl LogonThrottle {
    pub fn new(cfg: ThrottleConfig) -> Self {
        LogonThrottle {
            cfg,
            state: Mutex::new(State::default()),
        }
    }

    pub fn config(&self) -> &ThrottleConfig {
        &self.cfg
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Every update leaves the maps consistent, so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `ip` (and the account `user`, if given) may try to log on now.
    pub fn check(&self, ip: IpAddr, user: Option<&str>, now: Instant) -> Result<(), Throttled> {
        let state = self.lock();
        let ip_wait = state.ips.get(&ip).and_then(|e| e.locked(now));
        // With no account on record (the usual case) there is no name to fold.
        let user_wait = user
            .filter(|_| !state.users.is_empty())
            .and_then(|u| state.users.get(&fold_name(u)))
            .and_then(|e| e.locked(now));
        match ip_wait.max(user_wait) {
            Some(retry_after) => Err(Throttled { retry_after }),
            None => Ok(()),
        }
    }

    /// Counts a failed logon. `existing_user` is the account name only when it exists.
    pub fn record_failure(&self, ip: IpAddr, existing_user: Option<&str>, now: Instant) {
        let cfg = &self.cfg;
        let mut state = self.lock();
        if cfg.ip_max_failures > 0 {
            if !state.ips.contains_key(&ip) && state.ips.len() >= cfg.max_tracked_addresses {
                state.ips.retain(|_, e| !e.stale(now, cfg.window));
            }
            if state.ips.contains_key(&ip) || state.ips.len() < cfg.max_tracked_addresses {
                state.ips.entry(ip).or_insert_with(|| Entry::new(now)).fail(
                    now,
                    cfg,
                    cfg.ip_max_failures,
                );
            }
        }
        if let Some(user) = existing_user.filter(|_| cfg.user_max_failures > 0) {
            state
                .users
                .entry(fold_name(user))
                .or_insert_with(|| Entry::new(now))
                .fail(now, cfg, cfg.user_max_failures);
        }
    }

    /// A successful logon forgets the earlier failures of this address and account.
    pub fn record_success(&self, ip: IpAddr, user: &str) {
        let mut state = self.lock();
        state.ips.remove(&ip);
        if !state.users.is_empty() {
            state.users.remove(&fold_name(user));
        }
    }

    /// How many addresses and accounts are locked out now, for status displays.
    pub fn locked_out(&self, now: Instant) -> (usize, usize) {
        let state = self.lock();
        let count =
            |m: &mut dyn Iterator<Item = &Entry>| m.filter(|e| e.locked(now).is_some()).count();
        (
            count(&mut state.ips.values()),
            count(&mut state.users.values()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn ip(n: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, n))
    }

    fn cfg() -> ThrottleConfig {
        ThrottleConfig {
            ip_max_failures: 3,
            user_max_failures: 5,
            window: Duration::from_secs(10),
            lockout: Duration::from_secs(30),
            max_tracked_addresses: 4,
        }
    }

    #[test]
    fn address_is_locked_after_max_failures_then_released() {
        let t = LogonThrottle::new(cfg());
        let t0 = Instant::now();
        for i in 0..2 {
            t.record_failure(ip(1), None, t0 + Duration::from_secs(i));
            assert!(t.check(ip(1), None, t0 + Duration::from_secs(i)).is_ok());
        }
        let t2 = t0 + Duration::from_secs(2);
        t.record_failure(ip(1), None, t2);
        assert_eq!(
            t.check(ip(1), Some("alice"), t2),
            Err(Throttled {
                retry_after: Duration::from_secs(30)
            })
        );
        assert!(t.check(ip(2), Some("alice"), t2).is_ok());
        assert_eq!(t.locked_out(t2), (1, 0));
        assert!(t.check(ip(1), None, t2 + Duration::from_secs(30)).is_ok());
    }

    #[test]
    fn failures_outside_the_window_do_not_add_up() {
        let t = LogonThrottle::new(cfg());
        let t0 = Instant::now();
        for i in 0..10 {
            t.record_failure(ip(1), None, t0 + Duration::from_secs(6 * i));
        }
        assert!(t.check(ip(1), None, t0 + Duration::from_secs(60)).is_ok());
    }

    #[test]
    fn account_is_locked_from_every_address() {
        let t = LogonThrottle::new(cfg());
        let now = Instant::now();
        for n in 0..5 {
            t.record_failure(ip(10 + n), Some("Alice"), now);
        }
        assert!(t.check(ip(99), Some("ALICE"), now).is_err());
        assert!(t.check(ip(99), Some("bob"), now).is_ok());
        assert!(t.check(ip(99), None, now).is_ok());
    }

    #[test]
    fn success_clears_failures() {
        let t = LogonThrottle::new(cfg());
        let now = Instant::now();
        t.record_failure(ip(1), Some("alice"), now);
        t.record_failure(ip(1), Some("alice"), now);
        t.record_success(ip(1), "alice");
        t.record_failure(ip(1), Some("alice"), now);
        t.record_failure(ip(1), Some("alice"), now);
        assert!(t.check(ip(1), Some("alice"), now).is_ok());
    }

    #[test]
    fn address_table_is_bounded_and_keeps_locked_entries() {
        let t = LogonThrottle::new(cfg());
        let now = Instant::now();
        for _ in 0..3 {
            t.record_failure(ip(1), None, now);
        }
        for n in 2..50 {
            t.record_failure(ip(n), None, now);
        }
        assert!(t.lock().ips.len() <= 4);
        assert!(t.check(ip(1), None, now).is_err());
        // Once the window has passed, stale entries make room again.
        let later = now + Duration::from_secs(11);
        for _ in 0..3 {
            t.record_failure(ip(200), None, later);
        }
        assert!(t.check(ip(200), None, later).is_err());
    }

    #[test]
    fn zero_disables() {
        let t = LogonThrottle::new(ThrottleConfig {
            ip_max_failures: 0,
            user_max_failures: 0,
            ..cfg()
        });
        let now = Instant::now();
        for _ in 0..100 {
            t.record_failure(ip(1), Some("alice"), now);
        }
        assert!(t.check(ip(1), Some("alice"), now).is_ok());
    }
}
