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

use std::sync::{Arc, Weak};

use smb_wire::header::{Header, HeaderId};
use smb_wire::msg::oplock_break::{OplockBreak, OplockBreakMessage};
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

/// How to reach the holder of an oplock.
#[derive(Clone)]
pub(crate) struct Holder {
    pub conn: Weak<Connection>,
    pub session_id: u64,
    pub file_id: FileId,
}

/// One open of a file as the oplock rules see it.
pub(crate) struct OpenEntry {
    pub uid: u64,
    pub stat: bool,
    pub level: u8,
    /// A break was sent and awaits the acknowledgment: the level it breaks to.
    pub breaking_to: Option<u8>,
    pub holder: Holder,
}

/// What a CREATE is about to do, for the break decision.
pub(crate) struct Intent {
    pub stat: bool,
    pub overwrite: bool,
    pub sharing_violation: bool,
}

/// Outcome of checking a CREATE against the oplocks held.
pub(crate) enum Check {
    /// Nothing to wait for.
    Clear,
    /// Breaks are in progress (some sent just now): wait for their acknowledgments.
    Wait,
}

/// The oplock break notification for one holder ([MS-SMB2] 2.2.23.1, 3.3.4.6): MessageId
/// all ones, not signed (clients do not check signatures on it, 3.2.5.1.3), encrypted when
/// the session must be.
fn send_break(h: &Holder, level: u8) {
    let Some(conn) = h.conn.upgrade() else {
        return;
    };
    let mut pdu = vec![0u8; Header::SIZE];
    let body = OplockBreakMessage::Oplock(OplockBreak {
        oplock_level: OplockLevel(level),
        file_id: h.file_id,
    });
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
        session_id: SessionId(h.session_id),
        signature: [0; 16],
    }
    .write(&mut pdu[..Header::SIZE]);
    conn.send_unsolicited(pdu, h.session_id);
}

impl FileState {
    /// Registers a new open and returns the oplock it is granted (3.3.5.9: the grant).
    pub fn grant_oplock(&self, uid: u64, stat: bool, is_dir: bool, asked: u8, h: Holder) -> u8 {
        let mut opens = lock(&self.opens);
        let others: Vec<&OpenEntry> = opens
            .iter()
            .filter(|e| e.uid != uid && (!e.stat || e.level != NONE))
            .collect();
        let asked = match asked {
            II | EXCLUSIVE | BATCH => asked,
            _ => NONE,
        };
        let level = if is_dir || asked == NONE {
            NONE
        } else if others.is_empty() {
            asked
        } else if others
            .iter()
            .all(|e| e.level <= II && e.breaking_to.is_none_or(|t| t <= II))
        {
            II
        } else {
            NONE
        };
        opens.push(OpenEntry {
            uid,
            stat,
            level,
            breaking_to: None,
            holder: h,
        });
        level
    }

    /// Forgets a closed open; a CREATE waiting on its break goes on.
    pub fn release_oplock(&self, uid: u64) {
        let mut opens = lock(&self.opens);
        let before = opens.len();
        opens.retain(|e| e.uid != uid);
        let changed = opens.len() != before;
        drop(opens);
        if changed {
            self.oplock_changed.notify_waiters();
        }
    }

    /// Whether any open of this file holds an oplock.
    #[cfg(test)]
    pub fn any_oplock(&self) -> bool {
        lock(&self.opens).iter().any(|e| e.level != NONE)
    }

    /// Sends the breaks a CREATE needs and says whether it must wait.
    pub fn check_create(&self, intent: &Intent) -> Check {
        if intent.stat && !intent.overwrite {
            return Check::Clear;
        }
        let mut wait = false;
        let mut changed = false;
        let mut opens = lock(&self.opens);
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
                BATCH | EXCLUSIVE if intent.sharing_violation && e.level == EXCLUSIVE => continue,
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
        drop(opens);
        if changed {
            self.oplock_changed.notify_waiters();
        }
        if wait { Check::Wait } else { Check::Clear }
    }

    /// A write, lock or size change through `uid` ([MS-FSA] 2.1.4.12): every level II oplock
    /// breaks to none (the writer's own too, as Windows does: it no longer may cache reads),
    /// and another open's batch or exclusive oplock breaks to none with an acknowledgment.
    /// Idempotent: says whether such a break is still awaited.
    pub fn break_for_write(&self, uid: u64) -> Check {
        let mut wait = false;
        let mut opens = lock(&self.opens);
        for e in opens.iter_mut() {
            if e.breaking_to.is_some() {
                wait |= e.uid != uid;
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
        if wait { Check::Wait } else { Check::Clear }
    }

    /// Breaks that outlived the timeout count as acknowledged to none.
    fn expire_breaks(&self) {
        let mut opens = lock(&self.opens);
        for e in opens.iter_mut() {
            if e.breaking_to.take().is_some() {
                e.level = NONE;
            }
        }
    }

    /// The holder's acknowledgment (3.3.5.22.1): the level it now holds.
    pub fn ack_oplock(&self, uid: u64, level: u8) -> Result<u8, NtStatus> {
        let mut opens = lock(&self.opens);
        let e = opens
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
        drop(opens);
        self.oplock_changed.notify_waiters();
        r
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
    match file.break_for_write(uid) {
        Check::Clear => Ok(()),
        Check::Wait => {
            let f = file.clone();
            wait_for_breaks(ctx, &file, move || f.break_for_write(uid)).await
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
        // No leases are granted yet: no lease can be breaking.
        OplockBreakMessage::LeaseAck(_) => Err(NtStatus::OBJECT_NAME_NOT_FOUND.into()),
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
            overwrite,
            sharing_violation,
        }
    }

    #[test]
    fn grants_follow_other_opens() {
        let f = FileState::for_tests();
        assert_eq!(f.grant_oplock(1, false, false, BATCH, holder()), BATCH);
        // A stat open neither gets nor prevents an oplock.
        assert_eq!(f.grant_oplock(2, true, false, BATCH, holder()), NONE);
        assert!(matches!(f.check_create(&intent(false, false)), Check::Wait));
        assert_eq!(f.ack_oplock(1, II), Ok(II));
        assert!(matches!(
            f.check_create(&intent(false, false)),
            Check::Clear
        ));
        assert_eq!(f.grant_oplock(3, false, false, BATCH, holder()), II);
        assert_eq!(f.grant_oplock(4, false, false, NONE, holder()), NONE);
        // A write through 4 breaks 1 and 3 to none without waiting.
        assert!(matches!(f.break_for_write(4), Check::Clear));
        assert!(!f.any_oplock());
        f.release_oplock(1);
        f.release_oplock(3);
        f.release_oplock(4);
        assert_eq!(
            f.grant_oplock(5, false, false, EXCLUSIVE, holder()),
            EXCLUSIVE
        );
        assert_eq!(f.grant_oplock(6, false, true, BATCH, holder()), NONE);
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
        assert_eq!(f.grant_oplock(1, true, false, BATCH, holder()), BATCH);
        let stat_only = Intent {
            stat: true,
            overwrite: false,
            sharing_violation: false,
        };
        assert!(matches!(f.check_create(&stat_only), Check::Clear));
        assert!(matches!(f.check_create(&intent(false, false)), Check::Wait));
        assert_eq!(f.ack_oplock(1, II), Ok(II));
        assert_eq!(f.grant_oplock(2, false, false, BATCH, holder()), II);
    }

    #[test]
    fn sharing_violations_break_only_batch() {
        let f = FileState::for_tests();
        f.grant_oplock(1, false, false, EXCLUSIVE, holder());
        assert!(matches!(f.check_create(&intent(false, true)), Check::Clear));
        f.release_oplock(1);
        f.grant_oplock(2, false, false, BATCH, holder());
        assert!(matches!(f.check_create(&intent(true, true)), Check::Wait));
        // The break was to none: an ack of level II is refused and leaves none.
        assert_eq!(f.ack_oplock(2, II), Err(NtStatus::INVALID_OPLOCK_PROTOCOL));
        assert_eq!(
            f.ack_oplock(2, NONE),
            Err(NtStatus::INVALID_OPLOCK_PROTOCOL)
        );
        assert!(!f.any_oplock());
    }

    #[test]
    fn unanswered_breaks_expire_to_none() {
        let f = FileState::for_tests();
        f.grant_oplock(1, false, false, BATCH, holder());
        assert!(matches!(f.check_create(&intent(false, false)), Check::Wait));
        f.expire_breaks();
        assert!(matches!(
            f.check_create(&intent(false, false)),
            Check::Clear
        ));
        assert!(!f.any_oplock());
    }
}
