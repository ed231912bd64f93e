//! [MS-SMB2] 3.3.5.15 Receiving an SMB2 IOCTL Request.
//!
//! MUSTs enforced here:
//! - Flags must be SMB2_0_IOCTL_IS_FSCTL, else STATUS_NOT_SUPPORTED (3.3.5.15);
//! - MaxInputResponse/MaxOutputResponse above the negotiated MaxTransactSize are
//!   STATUS_INVALID_PARAMETER;
//! - FSCTL_VALIDATE_NEGOTIATE_INFO (3.3.5.15.12) is answered, signed, for 3.0/3.0.2;
//! - DFS referrals: we are not a DFS server → STATUS_NOT_FOUND, as Windows without DFS;
//! - server-side copy (3.3.5.15.5 resume key, 3.3.5.15.6 copy chunk): see [`copychunk`];
//! - sparse files ([MS-FSA] 2.1.5.10.35 SET_SPARSE, 2.1.5.10.39 SET_ZERO_DATA,
//!   2.1.5.10.22 QUERY_ALLOCATED_RANGES), reparse points and compression as an NTFS volume
//!   without them answers;
//! - FSCTL_QUERY_NETWORK_INTERFACE_INFO (3.3.5.15.11): the listeners' interfaces;
//! - anything we do not implement → STATUS_INVALID_DEVICE_REQUEST, never a dropped connection.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, Weak};

use smb_wire::msg::ioctl::{IoctlRequest, IoctlResponse};
use smb_wire::{AccessMask, CtlCode, FileId, IoctlFlags, NtStatus};

use crate::conn::Ctx;
use crate::error::ProtoResult;
use crate::open::{Open, vfs_status};
use crate::session::lock;

use super::file::{blocking, find_open};

const READ_DATA: u32 = AccessMask::FILE_READ_DATA.0;
const WRITE_DATA: u32 = AccessMask::FILE_WRITE_DATA.0;
const APPEND_DATA: u32 = AccessMask::FILE_APPEND_DATA.0;
const EXECUTE: u32 = AccessMask::FILE_EXECUTE.0;
const WRITE_ATTRIBUTES: u32 = AccessMask::FILE_WRITE_ATTRIBUTES.0;

/// Offsets on the object store are signed 64-bit ([MS-FSA] 2.1.5.10.x).
const MAX_OFFSET: u64 = i64::MAX as u64;

pub(crate) async fn handle(ctx: &mut Ctx<'_>) -> ProtoResult<NtStatus> {
    let req = IoctlRequest::parse(ctx.pdu)?;
    if !req.flags.contains(IoctlFlags::IS_FSCTL) {
        return Err(NtStatus::NOT_SUPPORTED.into());
    }
    let max = ctx.conn.server.config.max_io_size;
    if req.max_input_response > max || req.max_output_response > max {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    let is_ipc = ctx.tree.as_ref().is_some_and(|t| t.share.is_ipc);
    if req.ctl_code == CtlCode::PIPE_TRANSCEIVE {
        if !is_ipc {
            return Err(NtStatus::INVALID_DEVICE_REQUEST.into());
        }
        return super::pipe::transceive(
            ctx,
            req.file_id,
            req.input,
            req.max_output_response,
            req.ctl_code,
        );
    }
    let file_fsctl = matches!(
        req.ctl_code,
        CtlCode::SRV_REQUEST_RESUME_KEY
            | CtlCode::SRV_COPYCHUNK
            | CtlCode::SRV_COPYCHUNK_WRITE
            | CtlCode::SET_SPARSE
            | CtlCode::SET_ZERO_DATA
            | CtlCode::QUERY_ALLOCATED_RANGES
            | CtlCode::GET_REPARSE_POINT
            | CtlCode::GET_COMPRESSION
            | CtlCode::SET_COMPRESSION
            | CtlCode::CREATE_OR_GET_OBJECT_ID
    );
    if file_fsctl && is_ipc {
        return Err(NtStatus::INVALID_DEVICE_REQUEST.into());
    }
    let (output, status) = match req.ctl_code {
        CtlCode::VALIDATE_NEGOTIATE_INFO => (
            super::negotiate::validate_negotiate_info(ctx, req.input)?,
            NtStatus::SUCCESS,
        ),
        CtlCode::DFS_GET_REFERRALS | CtlCode::DFS_GET_REFERRALS_EX => {
            return Err(NtStatus::NOT_FOUND.into());
        }
        CtlCode::QUERY_NETWORK_INTERFACE_INFO => (interface_info(ctx), NtStatus::SUCCESS),
        CtlCode::SRV_REQUEST_RESUME_KEY => (resume_key(ctx, &req)?, NtStatus::SUCCESS),
        CtlCode::SRV_COPYCHUNK | CtlCode::SRV_COPYCHUNK_WRITE => copychunk(ctx, &req).await?,
        CtlCode::SET_SPARSE => (set_sparse(ctx, &req).await?, NtStatus::SUCCESS),
        CtlCode::SET_ZERO_DATA => (zero_data(ctx, &req).await?, NtStatus::SUCCESS),
        CtlCode::QUERY_ALLOCATED_RANGES => allocated_ranges(ctx, &req).await?,
        CtlCode::GET_REPARSE_POINT => {
            // Symlinks are followed inside the share and never shown as reparse points.
            find_open(ctx, req.file_id)?;
            return Err(NtStatus::NOT_A_REPARSE_POINT.into());
        }
        CtlCode::GET_COMPRESSION => {
            // [MS-FSCC] 2.3.19: COMPRESSION_FORMAT_NONE, as Windows answers for a volume
            // without compression.
            find_open(ctx, req.file_id)?;
            (vec![0, 0], NtStatus::SUCCESS)
        }
        CtlCode::SET_COMPRESSION => {
            // [MS-FSCC] 2.3.67: only "not compressed" can be honoured.
            find_open(ctx, req.file_id)?;
            match req.input {
                [0, 0, ..] => (Vec::new(), NtStatus::SUCCESS),
                [_, _, ..] => return Err(NtStatus::NOT_SUPPORTED.into()),
                _ => return Err(NtStatus::INVALID_PARAMETER.into()),
            }
        }
        CtlCode::CREATE_OR_GET_OBJECT_ID => (object_id(ctx, &req).await?, NtStatus::SUCCESS),
        _ => return Err(NtStatus::INVALID_DEVICE_REQUEST.into()),
    };
    if output.len() > req.max_output_response as usize {
        return Err(NtStatus::BUFFER_TOO_SMALL.into());
    }
    IoctlResponse {
        ctl_code: req.ctl_code,
        file_id: if req.file_id == FileId::ANY {
            FileId::ANY
        } else {
            req.file_id
        },
        input: &[],
        output: &output,
        flags: IoctlFlags(0),
    }
    .encode(&mut ctx.out)?;
    Ok(status)
}

/// Server.GlobalOpenTable as far as server-side copy needs it: resume key → open. Keys are
/// 24 random bytes, valid on any connection, session and share of this server while the
/// open lives; a closed open's key is dead, a forged one is not found.
#[derive(Default)]
pub(crate) struct ResumeKeys {
    map: Mutex<HashMap<[u8; 24], Weak<Open>>>,
}

/// Above this many keys, dead ones are swept at the next insertion.
const SWEEP_AT: usize = 1024;

impl ResumeKeys {
    fn insert(&self, open: &Arc<Open>) -> [u8; 24] {
        let key: [u8; 24] = rand::random();
        let mut map = lock(&self.map);
        if map.len() >= SWEEP_AT {
            map.retain(|_, w| {
                w.upgrade()
                    .is_some_and(|o| !o.closed.load(std::sync::atomic::Ordering::Relaxed))
            });
        }
        map.insert(key, Arc::downgrade(open));
        key
    }

    fn get(&self, key: &[u8]) -> Option<Arc<Open>> {
        let key: &[u8; 24] = key.try_into().ok()?;
        let open = lock(&self.map).get(key)?.upgrade()?;
        (!open.closed.load(std::sync::atomic::Ordering::Relaxed)).then_some(open)
    }
}

/// 3.3.5.15.5 Handling a Resume Key Request: SRV_REQUEST_RESUME_KEY response ([MS-SMB2]
/// 2.2.32.3): the key, ContextLength 0, and the 4 zero bytes of Context Windows sends.
fn resume_key(ctx: &mut Ctx<'_>, req: &IoctlRequest<'_>) -> ProtoResult<Vec<u8>> {
    let open = find_open(ctx, req.file_id)?;
    if open.is_dir {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    let key = ctx.conn.server.resume_keys.insert(&open);
    let mut out = Vec::with_capacity(32);
    out.extend_from_slice(&key);
    out.extend_from_slice(&[0u8; 8]);
    Ok(out)
}

/// ServerSideCopyMaxNumberofChunks, ServerSideCopyMaxChunkSize, ServerSideCopyMaxDataSize
/// ([MS-SMB2] 3.3.3; the values Windows uses).
pub(crate) const MAX_CHUNKS: u32 = 256;
pub(crate) const MAX_CHUNK_SIZE: u32 = 1 << 20;
pub(crate) const MAX_DATA_SIZE: u32 = 16 << 20;

/// SRV_COPYCHUNK_RESPONSE ([MS-SMB2] 2.2.32.1).
fn copychunk_response(chunks: u32, chunk_bytes: u32, total: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(12);
    out.extend_from_slice(&chunks.to_le_bytes());
    out.extend_from_slice(&chunk_bytes.to_le_bytes());
    out.extend_from_slice(&total.to_le_bytes());
    out
}

/// One SRV_COPYCHUNK entry ([MS-SMB2] 2.2.31.1.1).
#[derive(Debug, Clone, Copy)]
struct Chunk {
    source: u64,
    target: u64,
    len: u32,
}

fn le_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn le_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// SRV_COPYCHUNK_COPY ([MS-SMB2] 2.2.31.1): SourceKey, ChunkCount, Reserved, Chunks.
/// `None` when the buffer is shorter than it says; the count is checked against the
/// limits by the caller before anything is allocated for it.
fn parse_chunks(input: &[u8]) -> Option<(&[u8], u32, &[u8])> {
    let key = input.get(..24)?;
    let count = le_u32(input, 24)?;
    let table = input.get(32..)?;
    let need = (count as usize).checked_mul(24)?;
    Some((key, count, table.get(..need)?))
}

/// 3.3.5.15.6 Handling a Server-Side Data Copy Request. The data moves inside the store
/// ([`lanshare_vfs::VfsHandle::copy_from`]: `copy_file_range`), never through this
/// connection. Errors found after the request was accepted carry the response body
/// (chunks written so far) as Windows and Samba send it; the limits error carries the
/// limits (2.2.32.1).
async fn copychunk(ctx: &mut Ctx<'_>, req: &IoctlRequest<'_>) -> ProtoResult<(Vec<u8>, NtStatus)> {
    let dest = find_open(ctx, req.file_id)?;
    if (req.max_output_response as usize) < 12 {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    let Some((key, count, table)) = parse_chunks(req.input) else {
        return Err(NtStatus::INVALID_PARAMETER.into());
    };
    let limits = || {
        Ok((
            copychunk_response(MAX_CHUNKS, MAX_CHUNK_SIZE, MAX_DATA_SIZE),
            NtStatus::INVALID_PARAMETER,
        ))
    };
    if count > MAX_CHUNKS {
        return limits();
    }
    let mut chunks = Vec::with_capacity(count as usize);
    let mut total = 0u64;
    for e in table.chunks_exact(24) {
        let (Some(source), Some(target), Some(len)) = (le_u64(e, 0), le_u64(e, 8), le_u32(e, 16))
        else {
            return Err(NtStatus::INVALID_PARAMETER.into());
        };
        if len == 0 || len > MAX_CHUNK_SIZE {
            return limits();
        }
        total += u64::from(len);
        chunks.push(Chunk {
            source,
            target,
            len,
        });
    }
    if total > u64::from(MAX_DATA_SIZE) {
        return limits();
    }
    let failed = |status: NtStatus, done: u32, written: u64| -> ProtoResult<(Vec<u8>, NtStatus)> {
        Ok((copychunk_response(done, 0, written as u32), status))
    };
    // FSCTL_SRV_COPYCHUNK is sent on a handle with read and write access, COPYCHUNK_WRITE
    // on one that may only write (2.2.31).
    let need_read = req.ctl_code == CtlCode::SRV_COPYCHUNK;
    if dest.is_dir || !dest.has_access(WRITE_DATA) || (need_read && !dest.has_access(READ_DATA)) {
        return failed(NtStatus::ACCESS_DENIED, 0, 0);
    }
    let Some(source) = ctx.conn.server.resume_keys.get(key) else {
        return failed(NtStatus::OBJECT_NAME_NOT_FOUND, 0, 0);
    };
    if source.is_dir || !source.has_access(READ_DATA | EXECUTE) {
        return failed(NtStatus::ACCESS_DENIED, 0, 0);
    }
    if chunks.is_empty() {
        return Ok((copychunk_response(0, 0, 0), NtStatus::SUCCESS));
    }
    // As for a WRITE: other holders lose their caching before the data changes.
    crate::oplock::break_for_write(ctx, &dest).await?;
    let (done, written, result) = blocking(move || copy_chunks(&source, &dest, &chunks)).await?;
    match result {
        Ok(()) => Ok((copychunk_response(done, 0, written), NtStatus::SUCCESS)),
        Err(status) => failed(status, done, u64::from(written)),
    }
}

/// Copies the chunks in order; stops at the first failure. Returns the chunks completed,
/// the bytes they moved, and how it ended.
fn copy_chunks(source: &Open, dest: &Open, chunks: &[Chunk]) -> (u32, u32, Result<(), NtStatus>) {
    let mut done = 0u32;
    let mut written = 0u32;
    for c in chunks {
        let len = u64::from(c.len);
        let r = (|| {
            match (c.source.checked_add(len), c.target.checked_add(len)) {
                (Some(s), Some(t)) if s <= MAX_OFFSET && t <= MAX_OFFSET => {}
                _ => return Err(NtStatus::INVALID_PARAMETER),
            }
            // A range beyond the source's end: Windows answers STATUS_INVALID_VIEW_SIZE
            // where the spec suggests STATUS_END_OF_FILE (3.3.5.15.6, <footnote>).
            let size = source.handle.metadata().map_err(|e| vfs_status(&e))?.size;
            if c.source + len > size {
                return Err(NtStatus::INVALID_VIEW_SIZE);
            }
            // [MS-FSA] 2.1.4.10: the source is read through its open, the destination
            // written through its own: each against the others' byte-range locks.
            if !source.file.can_read(source.uid, c.source, len)
                || !dest.file.can_write(dest.uid, c.target, len)
            {
                return Err(NtStatus::FILE_LOCK_CONFLICT);
            }
            let n = dest
                .handle
                .copy_from(&*source.handle, c.source, c.target, len)
                .map_err(|e| vfs_status(&e))?;
            if n < len {
                // The source shrank meanwhile.
                return Err(NtStatus::INVALID_VIEW_SIZE);
            }
            Ok(())
        })();
        if let Err(s) = r {
            return (done, written, Err(s));
        }
        done += 1;
        written += c.len;
    }
    (done, written, Ok(()))
}

/// [MS-FSA] 2.1.5.10.35 FSCTL_SET_SPARSE. The optional FILE_SET_SPARSE_BUFFER's first byte
/// says set (nonzero) or clear; without one the file is made sparse. A longer buffer is
/// accepted as Windows does.
async fn set_sparse(ctx: &mut Ctx<'_>, req: &IoctlRequest<'_>) -> ProtoResult<Vec<u8>> {
    let open = find_open(ctx, req.file_id)?;
    if open.is_dir {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    if !open.has_access(WRITE_DATA | APPEND_DATA | WRITE_ATTRIBUTES) {
        return Err(NtStatus::ACCESS_DENIED.into());
    }
    let sparse = req.input.first().is_none_or(|b| *b != 0);
    let o = open.clone();
    blocking(move || o.handle.set_sparse(sparse))
        .await?
        .map_err(|e| vfs_status(&e))?;
    Ok(Vec::new())
}

/// [MS-FSA] 2.1.5.10.39 FSCTL_SET_ZERO_DATA: FILE_ZERO_DATA_INFORMATION (FileOffset,
/// BeyondFinalZero). A sparse file gets a hole (PUNCH_HOLE), another file written zeros;
/// the size never changes.
async fn zero_data(ctx: &mut Ctx<'_>, req: &IoctlRequest<'_>) -> ProtoResult<Vec<u8>> {
    let open = find_open(ctx, req.file_id)?;
    let (Some(from), Some(beyond)) = (le_u64(req.input, 0), le_u64(req.input, 8)) else {
        return Err(NtStatus::INVALID_PARAMETER.into());
    };
    if from > MAX_OFFSET || beyond > MAX_OFFSET || from > beyond {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    if open.is_dir {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    if !open.has_access(WRITE_DATA) {
        return Err(NtStatus::ACCESS_DENIED.into());
    }
    let len = beyond - from;
    if len == 0 {
        return Ok(Vec::new());
    }
    if !open.file.can_write(open.uid, from, len) {
        return Err(NtStatus::FILE_LOCK_CONFLICT.into());
    }
    crate::oplock::break_for_write(ctx, &open).await?;
    let o = open.clone();
    blocking(move || -> Result<(), lanshare_vfs::VfsError> {
        let sparse = o.handle.metadata()?.dos_attributes & lanshare_vfs::dos::SPARSE_FILE != 0;
        o.handle.zero_range(from, len, sparse)
    })
    .await?
    .map_err(|e| vfs_status(&e))?;
    Ok(Vec::new())
}

/// [MS-FSA] 2.1.5.10.22 FSCTL_QUERY_ALLOCATED_RANGES: FILE_ALLOCATED_RANGE_BUFFER in, as
/// many as fit out. A file that is not sparse is allocated throughout (as on NTFS); a
/// sparse one reports its data extents. Too many for the output: as many as fit with
/// STATUS_BUFFER_OVERFLOW; none fits: STATUS_BUFFER_TOO_SMALL.
async fn allocated_ranges(
    ctx: &mut Ctx<'_>,
    req: &IoctlRequest<'_>,
) -> ProtoResult<(Vec<u8>, NtStatus)> {
    let open = find_open(ctx, req.file_id)?;
    let (Some(offset), Some(len)) = (le_u64(req.input, 0), le_u64(req.input, 8)) else {
        return Err(NtStatus::INVALID_PARAMETER.into());
    };
    // Both are signed on the wire; their sum must not pass MAXLONGLONG.
    match offset.checked_add(len) {
        Some(end) if offset <= MAX_OFFSET && len <= MAX_OFFSET && end <= MAX_OFFSET => {}
        _ => return Err(NtStatus::INVALID_PARAMETER.into()),
    }
    if open.is_dir {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    if !open.has_access(READ_DATA) {
        return Err(NtStatus::ACCESS_DENIED.into());
    }
    let fit = req.max_output_response as usize / 16;
    let o = open.clone();
    let ranges = blocking(move || -> Result<Vec<(u64, u64)>, lanshare_vfs::VfsError> {
        let m = o.handle.metadata()?;
        if m.dos_attributes & lanshare_vfs::dos::SPARSE_FILE == 0 {
            let end = offset.saturating_add(len).min(m.size);
            return Ok(if end > offset {
                vec![(offset, end - offset)]
            } else {
                Vec::new()
            });
        }
        // One more than fits tells whether the answer was cut.
        o.handle.allocated_ranges(offset, len, fit + 1)
    })
    .await?
    .map_err(|e| vfs_status(&e))?;
    if !ranges.is_empty() && fit == 0 {
        return Err(NtStatus::BUFFER_TOO_SMALL.into());
    }
    let status = if ranges.len() > fit {
        NtStatus::BUFFER_OVERFLOW
    } else {
        NtStatus::SUCCESS
    };
    let mut out = Vec::with_capacity(ranges.len().min(fit) * 16);
    for (o, l) in ranges.into_iter().take(fit) {
        out.extend_from_slice(&o.to_le_bytes());
        out.extend_from_slice(&l.to_le_bytes());
    }
    Ok((out, status))
}

/// [MS-FSA] 2.1.5.10.3 FSCTL_CREATE_OR_GET_OBJECT_ID: FILE_OBJECTID_BUFFER ([MS-FSCC]
/// 2.1.3). Nothing is stored: the id is derived from the file's identity (device and inode)
/// folded into the server GUID, so it is stable for the file and distinct between files;
/// the birth ids are the same, the domain id zero. On a stream, its file's id.
async fn object_id(ctx: &mut Ctx<'_>, req: &IoctlRequest<'_>) -> ProtoResult<Vec<u8>> {
    let open = find_open(ctx, req.file_id)?;
    let o = open.clone();
    let m = blocking(move || o.handle.metadata())
        .await?
        .map_err(|e| vfs_status(&e))?;
    let guid = ctx.conn.server.config.server_guid;
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&m.file_id.to_le_bytes());
    id[8..].copy_from_slice(&m.dev.to_le_bytes());
    let mut volume = guid;
    for (v, d) in volume.iter_mut().zip(m.dev.to_le_bytes()) {
        *v ^= d;
    }
    for (i, g) in id.iter_mut().zip(guid) {
        *i ^= g;
    }
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&id);
    out.extend_from_slice(&volume);
    out.extend_from_slice(&id);
    out.extend_from_slice(&[0u8; 16]);
    Ok(out)
}

/// Link speed reported when the kernel does not say (virtual and loopback interfaces):
/// 1 Gbit/s, as Samba reports by default.
const DEFAULT_LINK_SPEED: u64 = 1_000_000_000;

/// Size of one NETWORK_INTERFACE_INFO entry ([MS-SMB2] 2.2.32.5).
const IFACE_ENTRY: usize = 152;

/// 3.3.5.15.11 FSCTL_QUERY_NETWORK_INTERFACE_INFO: one NETWORK_INTERFACE_INFO per address
/// the server listens on (every address of the family for a wildcard listener, loopback
/// left out unless there is nothing else), with the link speed from
/// /sys/class/net/IF/speed. No RSS or RDMA capability is claimed.
fn interface_info(ctx: &Ctx<'_>) -> Vec<u8> {
    let listeners = ctx.conn.server.listener_addrs();
    let ifaces = if_addrs::get_if_addrs().unwrap_or_default();
    let mut found: Vec<(u32, u64, IpAddr)> = Vec::new();
    let mut add = |index: u32, speed: u64, ip: IpAddr| {
        if !found.iter().any(|f| f.2 == ip) {
            found.push((index, speed, ip));
        }
    };
    let speed_of = |name: &str| {
        std::fs::read_to_string(format!("/sys/class/net/{name}/speed"))
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .filter(|mbit| *mbit > 0)
            .map_or(DEFAULT_LINK_SPEED, |mbit| mbit as u64 * 1_000_000)
    };
    for l in &listeners {
        let ip = l.ip();
        let matching: Vec<&if_addrs::Interface> = if ip.is_unspecified() {
            let same_family = |i: &&if_addrs::Interface| i.ip().is_ipv4() == ip.is_ipv4();
            let outside: Vec<_> = ifaces
                .iter()
                .filter(same_family)
                .filter(|i| !i.is_loopback())
                .collect();
            if outside.is_empty() {
                ifaces.iter().filter(same_family).collect()
            } else {
                outside
            }
        } else {
            ifaces.iter().filter(|i| i.ip() == ip).collect()
        };
        if matching.is_empty() && !ip.is_unspecified() {
            add(0, DEFAULT_LINK_SPEED, ip);
        }
        for i in matching {
            add(i.index.unwrap_or(0), speed_of(&i.name), i.ip());
        }
    }
    encode_interfaces(&found)
}

/// NETWORK_INTERFACE_INFO entries ([MS-SMB2] 2.2.32.5) for (IfIndex, LinkSpeed, address).
fn encode_interfaces(found: &[(u32, u64, IpAddr)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(found.len() * IFACE_ENTRY);
    let n = found.len();
    for (k, &(index, speed, ip)) in found.iter().enumerate() {
        let next = if k + 1 == n { 0 } else { IFACE_ENTRY as u32 };
        out.extend_from_slice(&next.to_le_bytes());
        out.extend_from_slice(&index.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes()); // Capability: neither RSS nor RDMA
        out.extend_from_slice(&0u32.to_le_bytes()); // Reserved
        out.extend_from_slice(&speed.to_le_bytes());
        let mut sa = [0u8; 128];
        match ip {
            IpAddr::V4(v4) => {
                sa[0..2].copy_from_slice(&2u16.to_le_bytes()); // AF_INET (InterNetwork)
                sa[4..8].copy_from_slice(&v4.octets());
            }
            IpAddr::V6(v6) => {
                sa[0..2].copy_from_slice(&23u16.to_le_bytes()); // InterNetworkV6
                sa[8..24].copy_from_slice(&v6.octets());
            }
        }
        out.extend_from_slice(&sa);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn chunk_table_is_bounds_checked() {
        let mut b = vec![0u8; 32];
        b[24] = 2;
        assert!(parse_chunks(&b).is_none());
        b.extend_from_slice(&[0u8; 48]);
        let (key, count, table) = parse_chunks(&b).unwrap();
        assert_eq!((key.len(), count, table.len()), (24, 2, 48));
        b[24..28].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(parse_chunks(&b).is_none());
        assert!(parse_chunks(&[0u8; 31]).is_none());
    }

    #[test]
    fn interface_entries_layout() {
        let v4: IpAddr = "192.168.1.20".parse().unwrap();
        let v6: IpAddr = "fe80::1".parse().unwrap();
        let out = encode_interfaces(&[(3, 10_000_000_000, v4), (4, DEFAULT_LINK_SPEED, v6)]);
        assert_eq!(out.len(), 2 * IFACE_ENTRY);
        let (a, b) = out.split_at(IFACE_ENTRY);
        assert_eq!(le_u32(a, 0), Some(IFACE_ENTRY as u32)); // Next
        assert_eq!(le_u32(a, 4), Some(3)); // IfIndex
        assert_eq!(le_u32(a, 8), Some(0)); // Capability
        assert_eq!(le_u64(a, 16), Some(10_000_000_000));
        assert_eq!(&a[24..26], &2u16.to_le_bytes()); // InterNetwork
        assert_eq!(&a[28..32], &[192, 168, 1, 20]);
        assert_eq!(le_u32(b, 0), Some(0)); // last entry
        assert_eq!(&b[24..26], &23u16.to_le_bytes()); // InterNetworkV6
        assert_eq!(
            &b[32..48],
            &"fe80::1".parse::<std::net::Ipv6Addr>().unwrap().octets()
        );
        assert!(encode_interfaces(&[]).is_empty());
    }

    #[test]
    fn copychunk_response_layout() {
        assert_eq!(
            copychunk_response(256, 1 << 20, 16 << 20),
            [0, 1, 0, 0, 0, 0, 16, 0, 0, 0, 0, 1]
        );
    }
}
