//! [MS-SMB2] 3.3.5.19 Receiving an SMB2 CHANGE_NOTIFY Request; [MS-FSA] 2.1.5.10 (server
//! requests change notifications for a directory); [MS-FSCC] 2.7.1 FILE_NOTIFY_INFORMATION.
//!
//! MUSTs enforced here:
//! - the open must be a directory, else STATUS_INVALID_PARAMETER, opened with
//!   FILE_LIST_DIRECTORY, else STATUS_ACCESS_DENIED;
//! - the first request on an open sets up its watch (directory, WATCH_TREE, CompletionFilter,
//!   and a buffer the size of that request's OutputBufferLength, [MS-FSA] 2.1.5.10); changes
//!   that occur while no request is pending are kept there for the next one;
//! - changes already buffered answer the request at once; otherwise it goes async (interim
//!   STATUS_PENDING), counted against `max_async_per_connection`, not against credits;
//! - more changes than the buffer holds, or than this request's OutputBufferLength can carry:
//!   STATUS_NOTIFY_ENUM_DIR, the client re-reads the directory;
//! - the watched directory deleted: STATUS_DELETE_PENDING;
//! - several requests pending on one open are answered in the order they came (the
//!   connection hands them over in order, `conn.rs` FileOrder; the oldest takes the changes);
//! - CANCEL completes it with STATUS_CANCELLED (buffered changes stay for the next request);
//!   CLOSE of the directory, TREE_DISCONNECT and LOGOFF with STATUS_NOTIFY_CLEANUP.
//!
//! Where the changes come from: `lanshare_vfs::ChangeHub` (every change made through the
//! share's storage, by any session or protocol, and inotify for other programs).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use lanshare_vfs::{Pending, Watch};
use smb_wire::fscc::notify::{NotifyAction, encode_notify};
use smb_wire::msg::change_notify::{ChangeNotifyFlags, ChangeNotifyRequest, ChangeNotifyResponse};
use smb_wire::{AccessMask, NtStatus};
use tokio::sync::Notify;

use crate::conn::Ctx;
use crate::error::{ProtoError, ProtoResult};
use crate::session::lock;

/// An open's watch and the signal that something arrived.
pub(crate) struct DirWatch {
    watch: Watch,
    wake: Arc<Notify>,
    /// Requests waiting on this open, oldest first: changes go to the oldest
    /// (smbtorture smb2.notify.double: two requests on one handle answered in order).
    queue: std::sync::Mutex<VecDeque<u64>>,
}

static NEXT_WAITER: AtomicU64 = AtomicU64::new(1);

/// A request's place in its watch's queue, left however the request ends.
struct Waiting<'a> {
    w: &'a DirWatch,
    id: u64,
}

impl Waiting<'_> {
    fn first(&self) -> bool {
        lock(&self.w.queue).front() == Some(&self.id)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let mut q = lock(&self.w.queue);
        q.retain(|i| *i != self.id);
        let others = !q.is_empty();
        drop(q);
        if others {
            // The next one may have changes waiting for it.
            self.w.wake.notify_waiters();
        }
    }
}

pub(crate) async fn change_notify(ctx: &mut Ctx<'_>) -> ProtoResult<NtStatus> {
    let req = ChangeNotifyRequest::parse(ctx.pdu)?;
    let open = super::file::find_open(ctx, req.file_id)?;
    if !open.is_dir {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    if !open.has_access(AccessMask::FILE_LIST_DIRECTORY.0) {
        return Err(NtStatus::ACCESS_DENIED.into());
    }
    if req.output_buffer_length > ctx.conn.server.config.max_io_size {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    let existing = lock(&open.notify).clone();
    let w = match existing {
        Some(w) => w,
        None => {
            let hub = ctx.tree()?.share.changes.clone();
            let wake = Arc::new(Notify::new());
            let waker = wake.clone();
            let dir = open.current_path();
            let recursive = req.flags.contains(ChangeNotifyFlags::WATCH_TREE);
            let filter = req.completion_filter.0;
            let budget = req.output_buffer_length as usize;
            // A tree watch walks the directory tree to set up kernel watches: blocking work.
            // A watch of one directory of a share in memory is set up here, in the request's
            // first poll on the connection's task: it is then in place before the
            // connection's next request runs (a CREATE in the watched directory, itself made
            // on the task on such a share, would otherwise go unseen).
            let inline = !recursive
                && ctx
                    .tree()?
                    .share
                    .vfs
                    .as_ref()
                    .is_some_and(|v| v.in_memory());
            let setup = move || {
                hub.watch(
                    &dir,
                    recursive,
                    filter,
                    budget,
                    Box::new(move || waker.notify_waiters()),
                )
            };
            let watch = if inline {
                setup()
            } else {
                tokio::task::spawn_blocking(setup)
                    .await
                    .map_err(|_| ProtoError::Status(NtStatus::INTERNAL_ERROR))?
            };
            let w = Arc::new(DirWatch {
                watch,
                wake,
                queue: Default::default(),
            });
            let mut slot = lock(&open.notify);
            match &*slot {
                // Two first requests raced: keep the one that won.
                Some(other) => other.clone(),
                None => {
                    *slot = Some(w.clone());
                    w
                }
            }
        }
    };
    let max = req.output_buffer_length as usize;
    // Buffered changes answer at once, unless an older request is waiting for them.
    if lock(&w.queue).is_empty()
        && let Some(r) = answer(ctx, &w, max)
    {
        return r;
    }
    let (done, _guard) = ctx.go_async(Some(open.file_id)).await?;
    let me = Waiting {
        w: &w,
        id: NEXT_WAITER.fetch_add(1, Ordering::Relaxed),
    };
    lock(&w.queue).push_back(me.id);
    tokio::pin!(done);
    loop {
        let arrived = w.wake.notified();
        tokio::pin!(arrived);
        arrived.as_mut().enable();
        w.watch.arm();
        if me.first()
            && let Some(r) = answer(ctx, &w, max)
        {
            return r;
        }
        tokio::select! {
            s = &mut done => {
                w.watch.disarm();
                return Err(s.unwrap_or(NtStatus::NOTIFY_CLEANUP).into());
            }
            () = &mut arrived => {}
        }
    }
}

/// The response for what the watch holds, `None` when it holds nothing.
fn answer(ctx: &mut Ctx<'_>, w: &DirWatch, max: usize) -> Option<ProtoResult<NtStatus>> {
    let changes = match w.watch.take() {
        Pending::Nothing => return None,
        Pending::Overflow => return Some(Err(NtStatus::NOTIFY_ENUM_DIR.into())),
        Pending::DirectoryRemoved => return Some(Err(NtStatus::DELETE_PENDING.into())),
        Pending::Changes(c) => c,
    };
    let names: Vec<(NotifyAction, String)> = changes
        .into_iter()
        .map(|c| (NotifyAction(c.action as u32), c.name.replace('/', "\\")))
        .collect();
    let refs: Vec<(NotifyAction, &str)> = names.iter().map(|(a, n)| (*a, n.as_str())).collect();
    let mut buf = Vec::new();
    match encode_notify(&refs, max, &mut buf) {
        Ok(true) => {}
        // [MS-SMB2] 3.3.4.4 (via [MS-FSA] 2.1.5.10): what does not fit is not truncated.
        Ok(false) | Err(_) => return Some(Err(NtStatus::NOTIFY_ENUM_DIR.into())),
    }
    Some(
        ChangeNotifyResponse { buffer: &buf }
            .encode(&mut ctx.out)
            .map(|()| NtStatus::SUCCESS)
            .map_err(ProtoError::from),
    )
}
