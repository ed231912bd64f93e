//! Oplocks ([MS-SMB2] 3.3.4.6 break notifications, 3.3.5.9 the grant at CREATE, 3.3.5.22.1
//! the acknowledgment; [MS-FSA] 2.1.4.12 when an oplock breaks).
//!
//! Each open file's [`FileState`] lists its opens with the oplock each holds. The rules, in
//! the terms of caching rights (batch = read+write+handle, exclusive = read+write, level II =
//! read), as Windows and Samba apply them:
//! - a CREATE that does not violate the share modes breaks the write right of others: batch
//!   and exclusive go to level II, or to none when the CREATE overwrites the file; level II
//!   goes to none only for an overwrite;
//! - a CREATE that would violate them breaks the handle right only: a batch holder may close
//!   its cached handle and so let the open through; an exclusive holder is left alone and the
//!   CREATE fails with STATUS_SHARING_VIOLATION;
//! - a stat open (read/write attributes and synchronize only) that does not overwrite
//!   breaks nothing;
//! - a break from batch or exclusive needs the holder's acknowledgment (or its close): the
//!   CREATE goes async (interim STATUS_PENDING) until then, or until
//!   `oplock_break_timeout` (35 s by default, as [MS-SMB2] 3.3.2.1) passes, after which the
//!   holder is treated as having acknowledged a break to none;
//! - a break to none from level II needs no acknowledgment;
//! - WRITE, a byte-range LOCK and a truncation through one open break the level II oplocks of
//!   every other open to none;
//! - the oplock granted: what was asked when no other open exists (stat opens without an
//!   oplock aside), else level II when every other holder is at level II or none;
//!   directories get none.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use smb_wire::header::{Header, HeaderId};
use smb_wire::msg::create_context::LeaseState;
use smb_wire::msg::oplock_break::{
    LeaseBreakAck, LeaseBreakNotification, OplockBreak, OplockBreakMessage,
};
use smb_wire::{AccessMask, Command, FileId, HeaderFlags, NtStatus, OplockLevel, SessionId};

use crate::conn::{Connection, Ctx};
use crate::error::ProtoResult;
use crate::objects::FileState;
use crate::session::lock;

const NONE: u8 = OplockLevel::NONE.0;
const II: u8 = OplockLevel::II.0;
const EXCLUSIVE: u8 = OplockLevel::EXCLUSIVE.0;
const BATCH: u8 = OplockLevel::BATCH.0;

/// Rights a stat open may hold: with any other right an open takes part in oplocks.
const STAT_RIGHTS: u32 = AccessMask::FILE_READ_ATTRIBUTES.0
    | AccessMask::FILE_WRITE_ATTRIBUTES.0
    | AccessMask::SYNCHRONIZE.0;

/// Whether an open with this granted access is a stat open ([MS-FSA] 2.1.5.1.2: it breaks no
/// oplock).
pub(crate) fn is_stat_open(access: u32) -> bool {
    access & !STAT_RIGHTS == 0
}

/// Rights a stat open may hold as leases see it: READ_CONTROL too (smbtorture
/// smb2.lease.statopen4, as Windows and Samba).
const LEASE_STAT_RIGHTS: u32 = STAT_RIGHTS | AccessMask::READ_CONTROL.0;

/// Whether an open with this granted access breaks no lease and does not count as another
/// open when a lease is granted.
pub(crate) fn is_lease_stat_open(access: u32) -> bool {
    access & !LEASE_STAT_RIGHTS == 0
}

/// How to reach the holder of an oplock.
#[derive(Clone)]
pub(crate) struct Holder {
    pub conn: Weak<Connection>,
    pub session_id: u64,
    pub file_id: FileId,
}

/// Opens registered with an oplock or a lease, server-wide (in every server of the process:
/// it only lets CREATE skip the break check when nothing anywhere could need a break).
static CACHING_OPENS: AtomicUsize = AtomicUsize::new(0);

/// Whether any open might hold an oplock or a lease now.
pub(crate) fn any_caching() -> bool {
    CACHING_OPENS.load(Ordering::Acquire) != 0
}

/// One open of a file as the oplock rules see it.
pub(crate) struct OpenEntry {
    pub uid: u64,
    pub stat: bool,
    /// A stat open by the leases' definition ([`is_lease_stat_open`]).
    pub lease_stat: bool,
    pub level: u8,
    /// A break was sent and awaits the acknowledgment: the level it breaks to.
    pub breaking_to: Option<u8>,
    pub holder: Holder,
    /// The lease this open belongs to (its oplock level is then none here).
    pub lease: Option<LeaseId>,
    /// Counted in [`CACHING_OPENS`].
    counted: bool,
    /// A durable open whose connection is gone ([`crate::durable`]): a break it would need
    /// closes it instead.
    pub detached: bool,
}

/// A lease is named by the client (its ClientGuid) and the key it chose ([MS-SMB2] 3.3.1.4).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) struct LeaseId {
    pub client: [u8; 16],
    pub key: [u8; 16],
}

/// One lease on a file ([MS-SMB2] 3.3.1.12 Lease): shared by the opens that name it.
///
/// The break state follows Windows (and Samba, which copies it): while a break awaits its
/// acknowledgment (`breaking`), `break_to` is what the notification offered and `required`
/// what the opens waiting on the lease need; a conflicting open arriving meanwhile only lowers
/// `required`, sending nothing. When the acknowledgment leaves more than `required`, the
/// lease is broken again from there, one step at a time (to R first while the acknowledged
/// state holds more than R), without a new epoch.
pub(crate) struct LeaseEntry {
    pub id: LeaseId,
    /// R, H, W bits ([`LeaseState`]).
    pub state: u8,
    /// Lease.Breaking: a break was sent and awaits the acknowledgment.
    pub breaking: bool,
    /// Lease.BreakToLeaseState: what the last break notification offered.
    pub break_to: u8,
    /// At or below `break_to`: what the opens waiting on this lease need.
    pub required: u8,
    /// Lease.Epoch (version 2 leases).
    pub epoch: u16,
    pub v2: bool,
    /// Where the break notification goes: the newest open's connection.
    pub holder: Holder,
}

/// The oplocks and leases of one file.
#[derive(Default)]
pub(crate) struct Caching {
    pub opens: Vec<OpenEntry>,
    pub leases: Vec<LeaseEntry>,
    /// Detached durable opens a break needed: to be closed ([`crate::objects::Objects::purge_detached`]).
    pub purge: Vec<u64>,
}

/// What a CREATE is about to do, for the break decision.
pub(crate) struct Intent {
    pub stat: bool,
    /// A stat open for leases ([`is_lease_stat_open`]): breaks no lease.
    pub lease_stat: bool,
    pub overwrite: bool,
    pub sharing_violation: bool,
    /// The lease the CREATE names: that lease is never broken by its own opens.
    pub lease: Option<LeaseId>,
}

/// Outcome of checking a CREATE against the oplocks held.
pub(crate) enum Check {
    /// Nothing to wait for.
    Clear,
    /// Breaks are in progress (some sent just now): wait for their acknowledgments.
    Wait,
}

const R: u8 = LeaseState::READ_CACHING.0 as u8;
const H: u8 = LeaseState::HANDLE_CACHING.0 as u8;
const W: u8 = LeaseState::WRITE_CACHING.0 as u8;

/// The unsolicited OPLOCK_BREAK header ([MS-SMB2] 3.3.4.6, 3.3.4.7): MessageId all ones,
/// never signed (clients do not check signatures on it, 3.2.5.1.3); encrypted when the
/// session must be.
fn send_unsolicited(h: &Holder, header_session: u64, body: OplockBreakMessage) {
    let Some(conn) = h.conn.upgrade() else {
        return;
    };
    let mut pdu = vec![0u8; Header::SIZE];
    if body.encode(&mut pdu).is_err() {
        return;
    }
    Header {
        credit_charge: 0,
        status: NtStatus::SUCCESS,
        command: Command::OPLOCK_BREAK,
        credit: 0,
        flags: HeaderFlags::SERVER_TO_REDIR,
        next_command: 0,
        message_id: u64::MAX,
        id: HeaderId::Sync {
            process_id: 0,
            tree_id: smb_wire::TreeId(0),
        },
        session_id: SessionId(header_session),
        signature: [0; 16],
    }
    .write(&mut pdu[..Header::SIZE]);
    conn.send_unsolicited(pdu, h.session_id);
}

/// The oplock break notification (2.2.23.1).
fn send_break(h: &Holder, level: u8) {
    let body = OplockBreakMessage::Oplock(OplockBreak {
        oplock_level: OplockLevel(level),
        file_id: h.file_id,
    });
    send_unsolicited(h, h.session_id, body);
}

/// The lease break notification (2.2.23.2) from the lease's state to `to`.
fn notify_lease(l: &LeaseEntry, to: u8, ack: bool) {
    let body = OplockBreakMessage::LeaseNotification(LeaseBreakNotification {
        new_epoch: if l.v2 { l.epoch } else { 0 },
        flags: if ack {
            LeaseBreakNotification::FLAG_ACK_REQUIRED
        } else {
            0
        },
        lease_key: l.id.key,
        current_lease_state: LeaseState(u32::from(l.state)),
        new_lease_state: LeaseState(u32::from(to)),
        ..Default::default()
    });
    // Lease breaks name no session ([MS-SMB2] 3.3.4.7: SessionId 0).
    send_unsolicited(&l.holder, 0, body);
}

/// Breaks lease `l` to `to` ([MS-SMB2] 3.3.4.7). A lease already breaking gets no second
/// notification: `to` only lowers what its acknowledgment must reach. A break from R alone
/// needs no acknowledgment and takes effect at once (then `true`: waiters may go on);
/// any other starts the wait for the acknowledgment, with a new epoch (version 2).
fn break_lease(l: &mut LeaseEntry, to: u8) -> bool {
    let to = to & l.state;
    if l.breaking {
        l.required &= to;
        return false;
    }
    if to == l.state {
        return false;
    }
    if l.v2 {
        l.epoch = l.epoch.wrapping_add(1);
    }
    let ack = l.state & (W | H) != 0;
    notify_lease(l, to, ack);
    if ack {
        l.breaking = true;
        l.break_to = to;
        l.required = to;
        false
    } else {
        l.state = to;
        true
    }
}

/// What a lease request is granted.
pub(crate) struct LeaseGrant {
    pub state: u8,
    pub epoch: u16,
    pub breaking: bool,
    /// The lease's version (the first request decided it), which the response uses.
    pub v2: bool,
}

impl Caching {
    /// Leases all of whose opens are detached durable opens.
    fn detached_leases(&self) -> Vec<LeaseId> {
        self.leases
            .iter()
            .map(|l| l.id)
            .filter(|id| {
                let mut of = self
                    .opens
                    .iter()
                    .filter(|e| e.lease == Some(*id))
                    .peekable();
                of.peek().is_some() && of.all(|e| e.detached)
            })
            .collect()
    }
}

impl FileState {
    /// Registers a new open and returns the oplock it is granted (3.3.5.9: the grant).
    pub fn grant_oplock(
        &self,
        uid: u64,
        (stat, lease_stat): (bool, bool),
        is_dir: bool,
        asked: u8,
        h: Holder,
    ) -> u8 {
        let mut c = lock(&self.caching);
        let others = c
            .opens
            .iter()
            .filter(|e| e.uid != uid && (!e.stat || e.level != NONE || e.lease.is_some()))
            .count();
        let asked = match asked {
            II | EXCLUSIVE | BATCH => asked,
            _ => NONE,
        };
        // Beside a lease with handle or write caching no oplock is granted (smbtorture
        // smb2.lease.oplock: RH and RWH leave none, R and RW level II).
        let leased_w = c.leases.iter().any(|l| l.state & (W | H) != 0);
        let level = if is_dir || asked == NONE {
            NONE
        } else if others == 0 {
            asked
        } else if !leased_w
            && c.opens
                .iter()
                .filter(|e| e.uid != uid)
                .all(|e| e.level <= II && e.breaking_to.is_none_or(|t| t <= II))
        {
            II
        } else {
            NONE
        };
        let counted = level != NONE;
        if counted {
            CACHING_OPENS.fetch_add(1, Ordering::AcqRel);
        }
        c.opens.push(OpenEntry {
            uid,
            stat,
            lease_stat,
            level,
            breaking_to: None,
            holder: h,
            lease: None,
            counted,
            detached: false,
        });
        level
    }

    /// Registers a new open under lease `id` and returns what the lease now grants
    /// (3.3.5.9.8 / 3.3.5.9.11): R, RH, RW or RWH as asked, without W when other opens
    /// exist; states without R are granted as none. An existing lease of the same key is
    /// joined; it is upgraded to the state asked only when that is a strict superset of
    /// what it holds and can be held beside the other opens (no W then), never while it
    /// is breaking (smbtorture smb2.lease.upgrade2/3).
    pub fn grant_lease(
        &self,
        uid: u64,
        (stat, lease_stat): (bool, bool),
        id: LeaseId,
        asked: u8,
        v2_epoch: Option<u16>,
        h: Holder,
    ) -> LeaseGrant {
        let mut c = lock(&self.caching);
        let asked = if asked & R == 0 {
            0
        } else {
            asked & (R | H | W)
        };
        // Stat opens count when they hold a lease or an oplock (smb2.lease.statopen).
        let others = c.opens.iter().any(|e| {
            e.uid != uid
                && e.lease != Some(id)
                && (!e.lease_stat || e.level != NONE || e.lease.is_some())
        });
        let other_w = c.leases.iter().any(|l| l.id != id && l.state & W != 0);
        // Beside an oplock a lease gets read caching at most (smb2.lease.oplock).
        let other_oplock = c.opens.iter().any(|e| e.uid != uid && e.level != NONE);
        let contended = others || other_w || other_oplock;
        let allowed = if other_oplock {
            asked & R
        } else if contended {
            asked & !W
        } else {
            asked
        };
        let grant = match c.leases.iter_mut().find(|l| l.id == id) {
            Some(l) => {
                let superset = asked != l.state && asked & l.state == l.state;
                if !l.breaking && superset && (!contended || asked & W == 0) {
                    l.state = asked;
                    if l.v2 {
                        l.epoch = l.epoch.wrapping_add(1);
                    }
                }
                l.holder = h.clone();
                LeaseGrant {
                    state: l.state,
                    epoch: l.epoch,
                    breaking: l.breaking,
                    v2: l.v2,
                }
            }
            None => {
                let epoch = v2_epoch.map_or(0, |e| e.wrapping_add(1));
                c.leases.push(LeaseEntry {
                    id,
                    state: allowed,
                    breaking: false,
                    break_to: 0,
                    required: 0,
                    epoch,
                    v2: v2_epoch.is_some(),
                    holder: h.clone(),
                });
                LeaseGrant {
                    state: allowed,
                    epoch,
                    breaking: false,
                    v2: v2_epoch.is_some(),
                }
            }
        };
        CACHING_OPENS.fetch_add(1, Ordering::AcqRel);
        c.opens.push(OpenEntry {
            uid,
            stat,
            lease_stat,
            level: NONE,
            breaking_to: None,
            holder: h,
            lease: Some(id),
            counted: true,
            detached: false,
        });
        grant
    }

    /// Whether this file holds lease `id` (a key names one file only).
    pub fn has_lease(&self, id: LeaseId) -> bool {
        lock(&self.caching).leases.iter().any(|l| l.id == id)
    }

    /// Forgets a closed open (and its lease when it was the lease's last open); a CREATE
    /// waiting on its break goes on.
    pub fn release_oplock(&self, uid: u64) {
        let mut c = lock(&self.caching);
        let before = c.opens.len();
        c.opens.retain(|e| {
            if e.uid == uid && e.counted {
                CACHING_OPENS.fetch_sub(1, Ordering::AcqRel);
            }
            e.uid != uid
        });
        let changed = c.opens.len() != before;
        let Caching { opens, leases, .. } = &mut *c;
        leases.retain(|l| opens.iter().any(|e| e.lease == Some(l.id)));
        drop(c);
        if changed {
            self.oplock_changed.notify_waiters();
        }
    }

    /// Whether any open of this file holds an oplock.
    #[cfg(test)]
    pub fn any_oplock(&self) -> bool {
        lock(&self.caching).opens.iter().any(|e| e.level != NONE)
    }

    /// Sends the breaks a CREATE needs and says whether it must wait. `first`: the CREATE's
    /// first check, not a retry after a change.
    pub fn check_create(&self, intent: &Intent, first: bool) -> Check {
        if intent.stat && !intent.overwrite {
            return Check::Clear;
        }
        let mut wait = false;
        let mut changed = false;
        let mut c = lock(&self.caching);
        let detached_leases = c.detached_leases();
        let Caching {
            opens,
            leases,
            purge,
        } = &mut *c;
        for e in opens.iter_mut() {
            if e.breaking_to.is_some() {
                // A break already on its way: the CREATE waits for it like its sender does,
                // unless it could not matter (a sharing violation against an exclusive one).
                if e.level == BATCH || !intent.sharing_violation {
                    wait = true;
                }
                continue;
            }
            let target = match e.level {
                EXCLUSIVE if intent.sharing_violation => continue,
                BATCH | EXCLUSIVE => {
                    if intent.overwrite {
                        NONE
                    } else {
                        II
                    }
                }
                II if intent.overwrite => NONE,
                _ => continue,
            };
            if e.detached {
                purge.push(e.uid);
                wait = true;
                continue;
            }
            send_break(&e.holder, target);
            if e.level == II {
                // No acknowledgment for a break from level II.
                e.level = NONE;
                changed = true;
            } else {
                e.breaking_to = Some(target);
                wait = true;
            }
        }
        // Leases (3.3.4.7, as Windows and Samba): without a sharing violation the open
        // needs write caching gone, with one handle caching (its holder may close and so
        // let the open through), an overwrite everything. The open waits for the
        // acknowledgment only when the right it needs gone was held, or, on a retry, while
        // any break of the lease is still pending; a break that takes read or handle
        // caching from a lease the open does not contend with goes on without it
        // (smbtorture smb2.lease.breaking4). A stat open ([`is_lease_stat_open`]) breaks
        // no lease.
        let need_gone = if intent.sharing_violation { H } else { W };
        for l in leases.iter_mut() {
            if Some(l.id) == intent.lease || (intent.lease_stat && !intent.overwrite) {
                continue;
            }
            let held = l.state;
            let to = if intent.overwrite {
                0
            } else {
                held & !need_gone
            };
            if held & !to != 0 && detached_leases.contains(&l.id) {
                // Its holder is gone (a durable open): close it rather than break it.
                purge.extend(
                    opens
                        .iter()
                        .filter(|e| e.lease == Some(l.id))
                        .map(|e| e.uid),
                );
                wait = true;
                continue;
            }
            if held & !to == 0 {
                wait |= l.breaking;
                continue;
            }
            let was_breaking = l.breaking;
            changed |= break_lease(l, to);
            if held & need_gone != 0 || (was_breaking && !first) {
                wait = true;
            }
        }
        drop(c);
        if changed {
            self.oplock_changed.notify_waiters();
        }
        if wait { Check::Wait } else { Check::Clear }
    }

    /// A write, lock or size change through `uid` ([MS-FSA] 2.1.4.12): every level II oplock
    /// breaks to none (the writer's own too, as Windows does: it no longer may cache reads),
    /// another open's batch or exclusive oplock breaks to none with an acknowledgment, and
    /// other leases lose read caching (and so everything). Idempotent: says whether an
    /// oplock acknowledgment is still awaited (lease breaks are not waited for).
    pub fn break_for_write(&self, uid: u64) -> Check {
        let mut wait = false;
        let mut c = lock(&self.caching);
        let own_lease = c.opens.iter().find(|e| e.uid == uid).and_then(|e| e.lease);
        let detached_leases = c.detached_leases();
        let Caching {
            opens,
            leases,
            purge,
        } = &mut *c;
        for e in opens.iter_mut() {
            if e.breaking_to.is_some() {
                wait |= e.uid != uid;
                continue;
            }
            if e.detached
                && e.uid != uid
                && (e.level == II || e.level == EXCLUSIVE || e.level == BATCH)
            {
                purge.push(e.uid);
                wait = true;
                continue;
            }
            match e.level {
                II => {
                    send_break(&e.holder, NONE);
                    e.level = NONE;
                }
                EXCLUSIVE | BATCH if e.uid != uid => {
                    send_break(&e.holder, NONE);
                    e.breaking_to = Some(NONE);
                    wait = true;
                }
                _ => {}
            }
        }
        let mut changed = false;
        for l in leases.iter_mut() {
            if Some(l.id) != own_lease && l.state & R != 0 {
                if detached_leases.contains(&l.id) {
                    purge.extend(
                        opens
                            .iter()
                            .filter(|e| e.lease == Some(l.id))
                            .map(|e| e.uid),
                    );
                    wait = true;
                } else {
                    changed |= break_lease(l, 0);
                }
            }
        }
        drop(c);
        if changed {
            self.oplock_changed.notify_waiters();
        }
        if wait { Check::Wait } else { Check::Clear }
    }

    /// Whether a WRITE by open `uid` might have to wait for, or send, a break: another open
    /// holds an oplock, a lease caches, or a break is in flight. Conservative (no state
    /// changes): a spliced WRITE, which runs on the connection's own task, is taken only
    /// when this is false, so it never waits there for an acknowledgment that could come on
    /// the same connection.
    pub fn others_cache(&self, uid: u64) -> bool {
        let c = lock(&self.caching);
        let own_lease = c.opens.iter().find(|e| e.uid == uid).and_then(|e| e.lease);
        c.opens
            .iter()
            .any(|e| e.breaking_to.is_some() || (e.uid != uid && (e.level != NONE || e.detached)))
            || c.leases
                .iter()
                .any(|l| Some(l.id) != own_lease && (l.state != 0 || l.breaking))
    }

    /// The detached opens a break needed since the last call.
    pub fn take_purge(&self) -> Vec<u64> {
        std::mem::take(&mut lock(&self.caching).purge)
    }

    /// The open's connection went away and it is kept as a durable open. `false` when it
    /// cannot be kept: a break of its oplock or lease awaits an acknowledgment nobody can
    /// send now (the caller closes it).
    pub fn detach_caching(&self, uid: u64) -> bool {
        let mut c = lock(&self.caching);
        let Some(e) = c.opens.iter_mut().find(|e| e.uid == uid) else {
            return true;
        };
        let lease = e.lease;
        if e.breaking_to.is_some() {
            return false;
        }
        e.detached = true;
        !c.leases.iter().any(|l| Some(l.id) == lease && l.breaking)
    }

    /// A detached durable open is back ([MS-SMB2] 3.3.5.9.7): breaks go to its new
    /// connection and session. Returns its oplock level and, with a lease, the lease's
    /// state, epoch and version.
    pub fn reattach_caching(&self, uid: u64, h: Holder) -> (u8, Option<(u8, u16, bool)>) {
        let mut c = lock(&self.caching);
        let Caching { opens, leases, .. } = &mut *c;
        let Some(e) = opens.iter_mut().find(|e| e.uid == uid) else {
            return (NONE, None);
        };
        e.detached = false;
        e.holder = h.clone();
        let level = e.level;
        let lease = e
            .lease
            .and_then(|id| leases.iter_mut().find(|l| l.id == id))
            .map(|l| {
                l.holder = h;
                (l.state, l.epoch, l.v2)
            });
        drop(c);
        // A CREATE waiting to purge this open checks again and sends a break instead.
        self.oplock_changed.notify_waiters();
        (level, lease)
    }

    /// A rename through `uid` ([MS-SMB2] 3.3.5.21.1, [MS-FSA] 2.1.5.14.11): every other
    /// lease of the file loses handle caching (its holder may have to close cached handles
    /// for the rename to be right). Says whether the rename must still wait: while any
    /// other lease holds handle caching, its break is unacknowledged.
    pub fn break_for_rename(&self, uid: u64) -> Check {
        let mut c = lock(&self.caching);
        let own = c.opens.iter().find(|e| e.uid == uid).and_then(|e| e.lease);
        let mut wait = false;
        let mut changed = false;
        for l in c.leases.iter_mut() {
            if Some(l.id) == own || l.state & H == 0 {
                continue;
            }
            changed |= break_lease(l, l.state & !H);
            wait |= l.state & H != 0;
        }
        drop(c);
        if changed {
            self.oplock_changed.notify_waiters();
        }
        if wait { Check::Wait } else { Check::Clear }
    }

    /// Breaks that outlived the timeout count as acknowledged to none (oplocks and leases
    /// alike: smbtorture smb2.lease.timeout finds the lease at none afterwards).
    fn expire_breaks(&self) {
        let mut c = lock(&self.caching);
        for e in c.opens.iter_mut() {
            if e.breaking_to.take().is_some() {
                e.level = NONE;
            }
        }
        for l in c.leases.iter_mut() {
            if l.breaking {
                l.breaking = false;
                l.state = 0;
                l.break_to = 0;
                l.required = 0;
            }
        }
    }

    /// The holder's acknowledgment (3.3.5.22.1): the level it now holds.
    pub fn ack_oplock(&self, uid: u64, level: u8) -> Result<u8, NtStatus> {
        let mut c = lock(&self.caching);
        let e = c
            .opens
            .iter_mut()
            .find(|e| e.uid == uid)
            .ok_or(NtStatus::INVALID_OPLOCK_PROTOCOL)?;
        let Some(target) = e.breaking_to else {
            return Err(NtStatus::INVALID_OPLOCK_PROTOCOL);
        };
        let r = match level {
            NONE => Ok(NONE),
            II if target == II => Ok(II),
            // Acknowledging level II to a break to none: the open ends up with none.
            II => Err(NtStatus::INVALID_OPLOCK_PROTOCOL),
            _ => Err(NtStatus::INVALID_PARAMETER),
        };
        e.breaking_to = None;
        e.level = *r.as_ref().unwrap_or(&NONE);
        drop(c);
        self.oplock_changed.notify_waiters();
        r
    }

    /// A lease break acknowledgment (3.3.5.22.2): the state must be within the one the
    /// break offered (else STATUS_REQUEST_NOT_ACCEPTED); a lease not breaking is
    /// STATUS_UNSUCCESSFUL. When opens that arrived during the break need less than the
    /// acknowledged state, the next break is sent at once ([`LeaseEntry`]).
    pub fn ack_lease(&self, id: LeaseId, state: u8) -> Result<u8, NtStatus> {
        let mut c = lock(&self.caching);
        let l = c
            .leases
            .iter_mut()
            .find(|l| l.id == id)
            .ok_or(NtStatus::OBJECT_NAME_NOT_FOUND)?;
        if !l.breaking {
            return Err(NtStatus::UNSUCCESSFUL);
        }
        if state & !l.break_to != 0 {
            return Err(NtStatus::REQUEST_NOT_ACCEPTED);
        }
        l.state = state;
        l.breaking = false;
        if state & !l.required != 0 {
            // Windows breaks in steps: to R first while more than R is held.
            let step = if state & !R != 0 { R } else { 0 };
            let next = (l.required | step) & state;
            let ack = state & (W | H) != 0;
            notify_lease(l, next, ack);
            if ack {
                l.breaking = true;
                l.break_to = next;
            } else {
                l.state = next;
            }
        }
        drop(c);
        self.oplock_changed.notify_waiters();
        Ok(state)
    }
}

/// Breaks the oplocks a write, lock or size change through `open` contends with, waiting
/// (async) for acknowledgments when a batch or exclusive holder must answer.
pub(crate) async fn break_for_write(
    ctx: &mut Ctx<'_>,
    open: &crate::open::Open,
) -> ProtoResult<()> {
    let file = open.file.clone();
    let uid = open.uid;
    let objects = ctx.conn.server.objects.clone();
    let check = move |f: &FileState| match f.break_for_write(uid) {
        Check::Wait if objects.purge_detached(f) => f.break_for_write(uid),
        c => c,
    };
    match check(&file) {
        Check::Clear => Ok(()),
        Check::Wait => {
            let f = file.clone();
            wait_for_breaks(ctx, &file, move || check(&f)).await
        }
    }
}

/// Holds a CREATE until the breaks it caused are acknowledged (or time out): interim
/// STATUS_PENDING first ([MS-SMB2] 3.3.4.2), then the CREATE goes on.
/// `recheck` runs each time something changed and says whether waiting is still needed.
pub(crate) async fn wait_for_breaks(
    ctx: &mut Ctx<'_>,
    file: &Arc<FileState>,
    mut recheck: impl FnMut() -> Check,
) -> ProtoResult<()> {
    let timeout = ctx.conn.server.config.oplock_break_timeout;
    let deadline = tokio::time::Instant::now() + timeout;
    let (mut ended, _guard) = if ctx.async_id.is_none() {
        let (rx, g) = ctx.go_async(None).await?;
        (Some(rx), Some(g))
    } else {
        (None, None)
    };
    loop {
        let changed = file.oplock_changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        if matches!(recheck(), Check::Clear) {
            return Ok(());
        }
        tokio::select! {
            _ = &mut changed => {}
            _ = tokio::time::sleep_until(deadline) => {
                tracing::debug!("oplock break not acknowledged within {timeout:?}");
                file.expire_breaks();
                file.oplock_changed.notify_waiters();
            }
            r = async { match ended.as_mut() { Some(rx) => rx.await, None => std::future::pending().await } } => {
                let s = match r {
                    Ok(s) => s,
                    Err(_) => NtStatus::CANCELLED,
                };
                return Err(s.into());
            }
        }
    }
}

/// [MS-SMB2] 3.3.5.22 Receiving an SMB2 OPLOCK_BREAK Acknowledgment: 3.3.5.22.1 for
/// oplocks. An open not breaking is STATUS_INVALID_OPLOCK_PROTOCOL (as Samba; the spec says
/// STATUS_INVALID_DEVICE_STATE), a level above the one offered STATUS_INVALID_PARAMETER, a
/// level II answer to a break to none STATUS_INVALID_OPLOCK_PROTOCOL (the open keeps none).
pub(crate) async fn acknowledge(ctx: &mut Ctx<'_>) -> ProtoResult<NtStatus> {
    match OplockBreakMessage::parse(ctx.pdu)? {
        OplockBreakMessage::Oplock(ack) => {
            let open = crate::handlers::file::find_open(ctx, ack.file_id)?;
            let level = open.file.ack_oplock(open.uid, ack.oplock_level.0)?;
            OplockBreakMessage::Oplock(OplockBreak {
                oplock_level: OplockLevel(level),
                file_id: open.file_id,
            })
            .encode(&mut ctx.out)?;
            Ok(NtStatus::SUCCESS)
        }
        OplockBreakMessage::LeaseAck(ack) => {
            let id = LeaseId {
                client: lock(&ctx.conn.neg).client_guid,
                key: ack.lease_key,
            };
            let file = ctx
                .conn
                .server
                .objects
                .lease_file(id)
                .ok_or(NtStatus::OBJECT_NAME_NOT_FOUND)?;
            let state = file.ack_lease(id, (ack.lease_state.0 & 7) as u8)?;
            OplockBreakMessage::LeaseAck(LeaseBreakAck {
                lease_key: ack.lease_key,
                lease_state: LeaseState(u32::from(state)),
                ..Default::default()
            })
            .encode(&mut ctx.out)?;
            Ok(NtStatus::SUCCESS)
        }
        OplockBreakMessage::LeaseNotification(_) => Err(NtStatus::INVALID_PARAMETER.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder() -> Holder {
        Holder {
            conn: Weak::new(),
            session_id: 1,
            file_id: FileId::default(),
        }
    }

    fn intent(overwrite: bool, sharing_violation: bool) -> Intent {
        Intent {
            stat: false,
            lease_stat: false,
            overwrite,
            sharing_violation,
            lease: None,
        }
    }

    #[test]
    fn grants_follow_other_opens() {
        let f = FileState::for_tests();
        assert_eq!(
            f.grant_oplock(1, (false, false), false, BATCH, holder()),
            BATCH
        );
        // A stat open neither gets nor prevents an oplock.
        assert_eq!(
            f.grant_oplock(2, (true, true), false, BATCH, holder()),
            NONE
        );
        assert!(matches!(
            f.check_create(&intent(false, false), true),
            Check::Wait
        ));
        assert_eq!(f.ack_oplock(1, II), Ok(II));
        assert!(matches!(
            f.check_create(&intent(false, false), true),
            Check::Clear
        ));
        assert_eq!(
            f.grant_oplock(3, (false, false), false, BATCH, holder()),
            II
        );
        assert_eq!(
            f.grant_oplock(4, (false, false), false, NONE, holder()),
            NONE
        );
        // A write through 4 breaks 1 and 3 to none without waiting.
        assert!(matches!(f.break_for_write(4), Check::Clear));
        assert!(!f.any_oplock());
        f.release_oplock(1);
        f.release_oplock(3);
        f.release_oplock(4);
        assert_eq!(
            f.grant_oplock(5, (false, false), false, EXCLUSIVE, holder()),
            EXCLUSIVE
        );
        assert_eq!(
            f.grant_oplock(6, (false, false), true, BATCH, holder()),
            NONE
        );
    }

    #[test]
    fn stat_opens() {
        assert!(is_stat_open(
            AccessMask::FILE_READ_ATTRIBUTES.0 | AccessMask::SYNCHRONIZE.0
        ));
        assert!(!is_stat_open(AccessMask::FILE_READ_EA.0));
        assert!(!is_stat_open(AccessMask::READ_CONTROL.0));
        // A stat open alone gets what it asks; a later open counts it while it holds one.
        let f = FileState::for_tests();
        assert_eq!(
            f.grant_oplock(1, (true, true), false, BATCH, holder()),
            BATCH
        );
        let stat_only = Intent {
            stat: true,
            lease_stat: true,
            overwrite: false,
            sharing_violation: false,
            lease: None,
        };
        assert!(matches!(f.check_create(&stat_only, true), Check::Clear));
        assert!(matches!(
            f.check_create(&intent(false, false), true),
            Check::Wait
        ));
        assert_eq!(f.ack_oplock(1, II), Ok(II));
        assert_eq!(
            f.grant_oplock(2, (false, false), false, BATCH, holder()),
            II
        );
    }

    #[test]
    fn sharing_violations_break_only_batch() {
        let f = FileState::for_tests();
        f.grant_oplock(1, (false, false), false, EXCLUSIVE, holder());
        assert!(matches!(
            f.check_create(&intent(false, true), true),
            Check::Clear
        ));
        f.release_oplock(1);
        f.grant_oplock(2, (false, false), false, BATCH, holder());
        assert!(matches!(
            f.check_create(&intent(true, true), true),
            Check::Wait
        ));
        // The break was to none: an ack of level II is refused and leaves none.
        assert_eq!(f.ack_oplock(2, II), Err(NtStatus::INVALID_OPLOCK_PROTOCOL));
        assert_eq!(
            f.ack_oplock(2, NONE),
            Err(NtStatus::INVALID_OPLOCK_PROTOCOL)
        );
        assert!(!f.any_oplock());
    }

    fn lid(client: u8, key: u8) -> LeaseId {
        LeaseId {
            client: [client; 16],
            key: [key; 16],
        }
    }

    #[test]
    fn leases_grant_share_and_break() {
        let f = FileState::for_tests();
        let a = lid(1, 1);
        let g = f.grant_lease(1, (false, false), a, R | H | W, None, holder());
        assert_eq!(g.state, R | H | W);
        // States without R are granted as none.
        let f2 = FileState::for_tests();
        assert_eq!(
            f2.grant_lease(1, (false, false), a, H | W, None, holder())
                .state,
            0
        );
        // The same key never breaks itself and joins the lease.
        let own = Intent {
            lease: Some(a),
            ..intent(false, false)
        };
        assert!(matches!(f.check_create(&own, true), Check::Clear));
        assert_eq!(
            f.grant_lease(2, (false, false), a, R, None, holder()).state,
            R | H | W
        );
        // Another key breaks write caching and waits for the ack.
        let b = lid(1, 2);
        let other = Intent {
            lease: Some(b),
            ..intent(false, false)
        };
        assert!(matches!(f.check_create(&other, true), Check::Wait));
        assert_eq!(
            f.ack_lease(a, R | H | W),
            Err(NtStatus::REQUEST_NOT_ACCEPTED)
        );
        assert_eq!(f.ack_lease(a, R | H), Ok(R | H));
        assert_eq!(f.ack_lease(a, R), Err(NtStatus::UNSUCCESSFUL));
        assert!(matches!(f.check_create(&other, true), Check::Clear));
        // Other opens exist: no write caching for the newcomer.
        let g = f.grant_lease(3, (false, false), b, R | H | W, Some(4), holder());
        assert_eq!((g.state, g.epoch), (R | H, 5));
        // A write through b's open takes read caching from a: R|H needs an ack.
        assert!(matches!(f.break_for_write(3), Check::Clear));
        assert_eq!(f.ack_lease(a, 0), Ok(0));
        // Leases go with their last open.
        f.release_oplock(1);
        assert!(f.has_lease(a));
        f.release_oplock(2);
        assert!(!f.has_lease(a));
    }

    #[test]
    fn unanswered_breaks_expire_to_none() {
        let f = FileState::for_tests();
        f.grant_oplock(1, (false, false), false, BATCH, holder());
        assert!(matches!(
            f.check_create(&intent(false, false), true),
            Check::Wait
        ));
        f.expire_breaks();
        assert!(matches!(
            f.check_create(&intent(false, false), true),
            Check::Clear
        ));
        assert!(!f.any_oplock());
    }

    fn plain(overwrite: bool) -> Intent {
        intent(overwrite, false)
    }

    #[test]
    fn a_second_conflict_during_a_break_lowers_its_target() {
        // smbtorture smb2.lease.breaking3: RWH breaking to RH, then an overwrite arrives.
        let f = FileState::for_tests();
        let a = lid(1, 1);
        f.grant_lease(1, (false, false), a, R | H | W, Some(0x11), holder());
        assert!(matches!(f.check_create(&plain(false), true), Check::Wait));
        // No second notification, but the overwrite waits too.
        assert!(matches!(f.check_create(&plain(true), true), Check::Wait));
        let epoch = lock(&f.caching).leases[0].epoch;
        // The same key still joins, and sees the break in progress.
        let g = f.grant_lease(2, (false, false), a, R | H | W, Some(0x11), holder());
        assert!(g.breaking);
        assert_eq!(g.state, R | H | W);
        f.release_oplock(2);
        // The ack to RH brings a break to R (a step at a time), same epoch.
        assert_eq!(f.ack_lease(a, R | H), Ok(R | H));
        {
            let c = lock(&f.caching);
            let l = &c.leases[0];
            assert!(l.breaking);
            assert_eq!((l.state, l.break_to, l.epoch), (R | H, R, epoch));
        }
        assert!(matches!(f.check_create(&plain(false), false), Check::Wait));
        assert_eq!(f.ack_lease(a, R | H), Err(NtStatus::REQUEST_NOT_ACCEPTED));
        // The ack to R ends in none at once (no ack needed from R): both opens go on.
        assert_eq!(f.ack_lease(a, R), Ok(R));
        {
            let c = lock(&f.caching);
            assert_eq!((c.leases[0].state, c.leases[0].breaking), (0, false));
        }
        assert!(matches!(f.check_create(&plain(false), false), Check::Clear));
        assert!(matches!(f.check_create(&plain(true), false), Check::Clear));
        assert_eq!(f.ack_lease(a, 0), Err(NtStatus::UNSUCCESSFUL));
    }

    #[test]
    fn breaks_of_read_or_handle_alone_are_not_waited_for() {
        // smbtorture smb2.lease.breaking4: RH and an overwrite without a sharing violation.
        let f = FileState::for_tests();
        let a = lid(1, 1);
        f.grant_lease(1, (false, false), a, R | H, None, holder());
        assert!(matches!(f.check_create(&plain(true), true), Check::Clear));
        assert!(lock(&f.caching).leases[0].breaking);
        // Again while it is breaking: still no wait on a first attempt.
        assert!(matches!(f.check_create(&plain(true), true), Check::Clear));
        // With a sharing violation handle caching is what matters: wait.
        assert!(matches!(
            f.check_create(&intent(false, true), true),
            Check::Wait
        ));
        assert_eq!(f.ack_lease(a, 0), Ok(0));
    }

    #[test]
    fn stat_opens_for_leases_include_read_control() {
        assert!(is_lease_stat_open(AccessMask::READ_CONTROL.0));
        assert!(!is_stat_open(AccessMask::READ_CONTROL.0));
        assert!(!is_lease_stat_open(AccessMask::DELETE.0));
        let f = FileState::for_tests();
        let a = lid(1, 1);
        f.grant_lease(1, (false, false), a, R | H | W, None, holder());
        let rc = Intent {
            lease_stat: true,
            ..plain(false)
        };
        assert!(matches!(f.check_create(&rc, true), Check::Clear));
        f.grant_oplock(2, (false, true), false, NONE, holder());
        // The stat open does not count: the same key keeps W.
        let g = f.grant_lease(3, (false, false), a, R | H | W, None, holder());
        assert_eq!(g.state, R | H | W);
    }

    #[test]
    fn unanswered_lease_breaks_expire_to_none() {
        let f = FileState::for_tests();
        let a = lid(1, 1);
        f.grant_lease(1, (false, false), a, R | H | W, None, holder());
        assert!(matches!(f.check_create(&plain(false), true), Check::Wait));
        f.expire_breaks();
        assert!(matches!(f.check_create(&plain(false), false), Check::Clear));
        assert_eq!(lock(&f.caching).leases[0].state, 0);
        assert_eq!(f.ack_lease(a, R | H), Err(NtStatus::UNSUCCESSFUL));
    }

    #[test]
    fn renames_take_handle_caching_from_other_leases() {
        let f = FileState::for_tests();
        let (a, b) = (lid(1, 1), lid(1, 2));
        f.grant_lease(1, (false, false), a, R | H, None, holder());
        f.grant_lease(2, (false, false), b, R | H, None, holder());
        // Renaming through a's open: only b breaks, and the rename waits for it.
        assert!(matches!(f.break_for_rename(1), Check::Wait));
        assert_eq!(f.ack_lease(a, R), Err(NtStatus::UNSUCCESSFUL));
        assert!(matches!(f.break_for_rename(1), Check::Wait));
        assert_eq!(f.ack_lease(b, R), Ok(R));
        assert!(matches!(f.break_for_rename(1), Check::Clear));
        // A lease without handle caching is left alone.
        assert!(matches!(f.break_for_rename(2), Check::Wait));
        assert_eq!(f.ack_lease(a, R), Ok(R));
        assert!(matches!(f.break_for_rename(2), Check::Clear));
    }
}
