//! [MS-SMB2] 3.3.5.14 Receiving an SMB2 LOCK Request, with the byte-range rules of
//! [MS-FSA] 2.1.5.7 (lock) and 2.1.5.8 (unlock).
//!
//! MUSTs enforced here:
//! - LockCount 0 is STATUS_INVALID_PARAMETER;
//! - elements are processed in order: when the first one unlocks, every element must be
//!   exactly UNLOCK; otherwise each must be SHARED or EXCLUSIVE, optionally with
//!   FAIL_IMMEDIATELY, and with more than one element every one must carry FAIL_IMMEDIATELY —
//!   the first that does not is STATUS_INVALID_PARAMETER (unlocks before it stay done);
//! - a range whose end wraps past 2^64 is STATUS_INVALID_LOCK_RANGE; a zero-length lock
//!   contends with a range that holds its offset past the first byte;
//! - elements are applied in order; when one cannot be granted, the locks this request took
//!   are released again (3.3.5.14.2) and the request fails: STATUS_LOCK_NOT_GRANTED with
//!   FAIL_IMMEDIATELY;
//! - an unlock of a range this open does not hold exactly is STATUS_RANGE_NOT_LOCKED;
//! - a single lock without FAIL_IMMEDIATELY waits: the request goes async (interim
//!   STATUS_PENDING) until the range is free, CANCEL ends it with STATUS_CANCELLED, and
//!   closing the handle with STATUS_RANGE_NOT_LOCKED;
//! - locks are released when their open closes (`Open::close`);
//! - lock sequence replay (3.3.5.14, 3.x, durable opens): a request whose LockSequenceIndex
//!   (1..=64) and LockSequenceNumber match the last successful one on that index is answered
//!   with success and not applied again; any other request on that index forgets the entry
//!   first and records it once it succeeds.
//!
//! READ and WRITE check these locks (STATUS_FILE_LOCK_CONFLICT) in `file.rs`.

use std::time::Duration;

use smb_wire::NtStatus;
use smb_wire::msg::lock::{LockFlags, LockRequest, LockResponse};

use crate::conn::Ctx;
use crate::error::ProtoResult;
use crate::objects::{ByteLock, LockError};

use super::file::find_open;

const SHARED: u32 = LockFlags::SHARED_LOCK.0;
const EXCLUSIVE: u32 = LockFlags::EXCLUSIVE_LOCK.0;
const UNLOCK: u32 = LockFlags::UNLOCK.0;
const FAIL_IMMEDIATELY: u32 = LockFlags::FAIL_IMMEDIATELY.0;

fn lock_status(e: LockError) -> NtStatus {
    match e {
        LockError::Conflict => NtStatus::LOCK_NOT_GRANTED,
        LockError::InvalidRange => NtStatus::INVALID_LOCK_RANGE,
        LockError::NotLocked => NtStatus::RANGE_NOT_LOCKED,
    }
}

/// 3.3.5.14.
pub(crate) async fn lock(ctx: &mut Ctx<'_>) -> ProtoResult<NtStatus> {
    let req = LockRequest::parse(ctx.pdu)?;
    let open = find_open(ctx, req.file_id)?;
    let Some(first) = req.locks.first() else {
        return Err(NtStatus::INVALID_PARAMETER.into());
    };
    let sequence = (ctx.dialect().0 >= smb_wire::Dialect::SMB3_0.0 && open.is_durable())
        .then(|| (req.lock_sequence_index(), req.lock_sequence_number()))
        .filter(|(i, _)| (1..=64).contains(i))
        .map(|(i, n)| (i as usize - 1, n));
    if let Some((i, n)) = sequence {
        let mut seen = crate::session::lock(&open.lock_sequences);
        if seen[i] == n {
            drop(seen);
            LockResponse.encode(&mut ctx.out)?;
            return Ok(NtStatus::SUCCESS);
        }
        seen[i] = crate::durable::NO_LOCK_SEQUENCE;
    }
    let remember = || {
        if let Some((i, n)) = sequence {
            crate::session::lock(&open.lock_sequences)[i] = n;
        }
    };
    // 3.3.5.14.1 / 14.2: elements are processed in order and validated as they come, so an
    // unlock before an invalid element stays done, and locks taken before a failure are
    // released again.
    if first.flags.0 & UNLOCK != 0 {
        for l in &req.locks {
            if l.flags.0 != UNLOCK {
                return Err(NtStatus::INVALID_PARAMETER.into());
            }
            open.file
                .unlock(open.uid, l.offset, l.length)
                .map_err(lock_status)?;
        }
        remember();
        LockResponse.encode(&mut ctx.out)?;
        return Ok(NtStatus::SUCCESS);
    }
    // [MS-FSA] 2.1.5.7: a byte-range lock breaks level II oplocks of other opens.
    crate::oplock::break_for_write(ctx, &open).await?;
    let many = req.locks.len() > 1;
    let mut taken: Vec<ByteLock> = Vec::with_capacity(req.locks.len());
    let rollback = |taken: &[ByteLock]| {
        for l in taken.iter().rev() {
            open.file.remove(l);
        }
    };
    for l in &req.locks {
        let f = l.flags.0;
        let valid = matches!(f & !FAIL_IMMEDIATELY, SHARED | EXCLUSIVE)
            && (!many || f & FAIL_IMMEDIATELY != 0);
        if !valid {
            rollback(&taken);
            return Err(NtStatus::INVALID_PARAMETER.into());
        }
        let wanted = ByteLock {
            owner: open.uid,
            offset: l.offset,
            length: l.length,
            exclusive: f & EXCLUSIVE != 0,
        };
        match open.file.try_lock(wanted) {
            Ok(()) => taken.push(wanted),
            // Only a lone element may wait (the validation above guarantees it).
            Err(LockError::Conflict) if f & FAIL_IMMEDIATELY == 0 => {
                wait_for_lock(ctx, &open, wanted).await?;
                taken.push(wanted);
            }
            Err(e) => {
                rollback(&taken);
                return Err(lock_status(e).into());
            }
        }
    }
    remember();
    LockResponse.encode(&mut ctx.out)?;
    Ok(NtStatus::SUCCESS)
}

/// A blocking lock: answered with STATUS_PENDING now, completed when the range frees up.
async fn wait_for_lock(
    ctx: &mut Ctx<'_>,
    open: &std::sync::Arc<crate::open::Open>,
    wanted: ByteLock,
) -> ProtoResult<()> {
    let (mut ended, _guard) = ctx.go_async(Some(open.file_id)).await?;
    loop {
        let freed = open.file.unlocked.notified();
        tokio::pin!(freed);
        // Registered before the attempt, so a release between the two is not missed.
        freed.as_mut().enable();
        match open.file.try_lock(wanted) {
            Ok(()) => return Ok(()),
            Err(LockError::Conflict) => {}
            Err(e) => return Err(lock_status(e).into()),
        }
        tokio::select! {
            _ = &mut freed => {}
            r = &mut ended => {
                // CANCEL gives STATUS_CANCELLED; the handle closing ends the wait as
                // Windows does for a lock that can no longer be granted.
                let s = match r {
                    Ok(NtStatus::CANCELLED) => NtStatus::CANCELLED,
                    _ => NtStatus::RANGE_NOT_LOCKED,
                };
                return Err(s.into());
            }
            // A safety net: locks are also released by paths that do not notify (none
            // today), and a closed handle must not keep a waiter forever.
            _ = tokio::time::sleep(Duration::from_secs(1)) => {
                if open.closed.load(std::sync::atomic::Ordering::Acquire) {
                    return Err(NtStatus::RANGE_NOT_LOCKED.into());
                }
            }
        }
    }
}
