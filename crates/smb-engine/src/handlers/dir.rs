//! [MS-SMB2] 3.3.5.18 Receiving an SMB2 QUERY_DIRECTORY Request, with the enumeration rules
//! of [MS-FSA] 2.1.5.6.3 (Directory Information Queries) and 2.1.4.4 (name matching).
//!
//! MUSTs enforced here:
//! - the open must be a directory, else STATUS_INVALID_PARAMETER; it needs
//!   FILE_LIST_DIRECTORY access, else STATUS_ACCESS_DENIED;
//! - OutputBufferLength above MaxTransactSize is STATUS_INVALID_PARAMETER, and so is a
//!   CreditCharge below ceil(OutputBufferLength / 64 KiB) on dialects above 2.0.2;
//! - an information class that is not a directory class is STATUS_INVALID_INFO_CLASS;
//! - a buffer smaller than the class's fixed part is STATUS_INFO_LENGTH_MISMATCH; a first
//!   entry whose name does not fit is returned cut, with STATUS_BUFFER_OVERFLOW;
//! - entries are 8-byte aligned and chained by NextEntryOffset (0 in the last); never more
//!   than OutputBufferLength bytes; RETURN_SINGLE_ENTRY returns one;
//! - the search pattern is taken on the first query, on RESTART_SCANS and on REOPEN (which
//!   also restarts); an empty pattern is `*`; `*`, `?`, `<`, `>`, `"` are wildcards, names
//!   compare case-insensitively; a pattern with `~` also matches generated 8.3 names;
//! - `.` and `..` come first (when they match), then the directory's entries;
//! - no match on the first query after a (re)start is STATUS_NO_SUCH_FILE, the end of the
//!   enumeration afterwards STATUS_NO_MORE_FILES;
//! - INDEX_SPECIFIED is accepted and the enumeration continues where it was (NTFS keeps no
//!   resumable FileIndex either).
//!
//! - after a macOS client negotiated READDIR_ATTR (the AAPL create context), entries of
//!   FileIdBothDirectoryInformation carry its fields (`readdir_attr`).
//!
//! Speed: the first response of an enumeration is kept small and each next one may be twice
//! the last ([`response_cap`]). After each response the server goes on reading entries in the
//! background ([`read_ahead`]), in short locked chunks, and the next query takes what is ready
//! (at least as many entries as the first response held) instead of waiting for a full
//! response: a client that asks for one batch at a time handles entries while the server
//! stats the next ones, and as the server reads faster than such a client handles entries,
//! the client hardly ever waits.
//!
//! Memory: the open keeps a streaming cursor ([`lanshare_vfs::DirStream`]) and the entries read
//! ahead for the next response (about what it can carry, at most [`MAX_AHEAD`] per open, at
//! most [`AHEAD_BUDGET`] over every open of the process), so listing a 100,000-entry directory
//! never holds it whole and many listings left half-way cannot pile up entries. An entry read
//! ahead keeps its name, its metadata and its encoded bytes: about 340 bytes for a 12-character
//! name in FileIdBothDirectoryInformation.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use lanshare_vfs::{DirStream, Metadata};
use smb_wire::fscc::{DirWriter, dir::encode_entry};
use smb_wire::msg::query_directory::{
    QueryDirectoryFlags, QueryDirectoryRequest, QueryDirectoryResponse,
};
use smb_wire::{AccessMask, FileInfoClass, NtStatus};

use crate::conn::Ctx;
use crate::error::ProtoResult;
use crate::fileinfo::{dir_entry, dir_fixed_len, dir_has_short_name};
use crate::names::{MAX_PATTERN_CHARS, Pattern};
use crate::names::{is_8dot3, short_name};
use crate::open::{Open, vfs_status};
use crate::session::lock;

use super::file::{blocking, check_credit_charge, find_open};

/// One entry ready to be encoded.
struct Entry {
    name: String,
    meta: Metadata,
    /// The entry encoded ahead in [`DirCursor::encoded_class`] (by the read-ahead, so that a
    /// query finds its response all but built).
    encoded: Option<Box<[u8]>>,
}

/// A directory open's enumeration: the cursor, and how many queries wait for it (the
/// background read-ahead lets go of the cursor at its next chunk when one does).
#[derive(Default)]
pub(crate) struct DirSlot {
    cursor: Mutex<Option<DirCursor>>,
    queries: AtomicU32,
}

impl DirSlot {
    /// Ends the enumeration (CLOSE), releasing what it held ahead.
    pub(crate) fn clear(&self) {
        lock(&self.cursor).take();
    }
}

/// Counts a query in [`DirSlot::queries`] until it holds the cursor (or never runs).
struct Waiting<'a>(&'a AtomicU32);

impl<'a> Waiting<'a> {
    fn new(n: &'a AtomicU32) -> Self {
        n.fetch_add(1, Ordering::AcqRel);
        Waiting(n)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The state of a directory enumeration, kept on the open between queries.
pub(crate) struct DirCursor {
    pattern: Pattern,
    /// The pattern names an 8.3 name (`~`): match short names too ([MS-FSA] 2.1.5.6.3).
    /// Other patterns match long names only, as on a volume without 8.3 names, so `*.txt`
    /// does not find `a.txtx` through its short name.
    short_names: bool,
    stream: Option<Box<dyn DirStream>>,
    /// `.` and `..` emitted so far (0, 1, 2).
    dots: u8,
    /// Entries taken from the stream ahead of the responses that will carry them: one that
    /// did not fit in the last response, and those [`DirCursor::read_ahead`] prepared.
    ahead: VecDeque<Result<Entry, NtStatus>>,
    /// Something was returned since the last (re)start.
    returned_any: bool,
    /// Responses filled since the last (re)start.
    responses: u32,
    /// Entries of `ahead` counted in [`AHEAD`] (never more than `ahead.len()`).
    held: usize,
    /// How many entries the background read-ahead may hold in `ahead` (about what the next
    /// response can carry); 0 stops it.
    window: usize,
    /// A background read-ahead task works on this cursor.
    reading: bool,
    /// The stream has ended (or failed): nothing more to read ahead.
    ended: bool,
    /// Entries the first response held: a later query answers with what is ready once it
    /// has at least this many, rather than wait for the stream to fill its whole cap.
    first_count: usize,
    /// The class the read-ahead encodes entries in (the last query's; none for READDIR_ATTR,
    /// whose fields are patched in per query).
    encoded_class: Option<FileInfoClass>,
}

impl Drop for DirCursor {
    fn drop(&mut self) {
        release_ahead(self.held);
    }
}

impl DirCursor {
    fn new(pattern: &str) -> DirCursor {
        DirCursor {
            pattern: Pattern::new(pattern),
            short_names: pattern.contains('~'),
            stream: None,
            dots: 0,
            ahead: VecDeque::new(),
            returned_any: false,
            responses: 0,
            held: 0,
            window: 0,
            reading: false,
            ended: false,
            first_count: 0,
            encoded_class: None,
        }
    }

    /// The next entry that matches the pattern, `None` at the end.
    fn next(&mut self, open: &Open) -> Result<Option<Entry>, NtStatus> {
        match self.ahead.pop_front() {
            Some(e) => {
                if self.held > self.ahead.len() {
                    release_ahead(self.held - self.ahead.len());
                    self.held = self.ahead.len();
                }
                e.map(Some)
            }
            None => self.read(open),
        }
    }

    /// Reads up to `chunk` entries ahead, within the window (fewer at the end of the
    /// directory, after an error, which is kept in its place, or when the server-wide budget
    /// [`AHEAD`] is spent), so that the next query finds them ready. Says whether there is
    /// more to read ahead.
    fn read_ahead(&mut self, open: &Open, chunk: usize) -> bool {
        let room = self.window.min(MAX_AHEAD).saturating_sub(self.ahead.len());
        let want = room.min(chunk);
        if want == 0 || self.ended {
            return false;
        }
        let granted = reserve_ahead(want);
        let mut read = 0;
        // A CLOSE waits for this to let go of the cursor: stop as soon as it began.
        while read < granted && !open.closed.load(Ordering::Acquire) {
            match self.read(open) {
                Ok(Some(mut e)) => {
                    if let Some(class) = self.encoded_class {
                        e.encoded = encode(class, &e);
                    }
                    self.ahead.push_back(Ok(e));
                }
                Ok(None) => {
                    self.ended = true;
                    break;
                }
                Err(s) => {
                    self.ahead.push_back(Err(s));
                    self.ended = true;
                    read += 1;
                    break;
                }
            }
            read += 1;
        }
        self.held += read;
        release_ahead(granted - read);
        read == want && !self.ended && !open.closed.load(Ordering::Acquire)
    }

    /// The next matching entry from `.`, `..` and the stream.
    fn read(&mut self, open: &Open) -> Result<Option<Entry>, NtStatus> {
        while self.dots < 2 {
            self.dots += 1;
            let name = if self.dots == 1 { "." } else { ".." };
            if !self.pattern.matches(name) {
                continue;
            }
            let meta = if self.dots == 1 {
                open.handle.metadata()
            } else {
                let here = open.current_path();
                open.vfs.stat(&here.parent().unwrap_or(here))
            };
            match meta {
                Ok(meta) => {
                    return Ok(Some(Entry {
                        name: name.into(),
                        meta,
                        encoded: None,
                    }));
                }
                // `..` may be gone or unreadable; the listing goes on without it.
                Err(_) => continue,
            }
        }
        if self.stream.is_none() {
            self.stream = Some(open.handle.read_dir().map_err(|e| vfs_status(&e))?);
        }
        let Some(stream) = self.stream.as_mut() else {
            return Ok(None);
        };
        loop {
            match stream.next_entry() {
                None => return Ok(None),
                Some(Err(e)) => return Err(vfs_status(&e)),
                Some(Ok(e))
                    if self.pattern.matches(&e.name)
                        || (self.short_names
                            && !is_8dot3(&e.name)
                            && self.pattern.matches(&short_name(&e.name))) =>
                {
                    return Ok(Some(Entry {
                        name: e.name,
                        meta: e.metadata,
                        encoded: None,
                    }));
                }
                Some(Ok(_)) => {}
            }
        }
    }
}

/// The short name an entry of `class` carries: none for `.` and `..`, nor in classes without
/// one.
fn short_for(class: FileInfoClass, name: &str) -> String {
    if dir_has_short_name(class) && name != "." && name != ".." {
        short_name(name)
    } else {
        String::new()
    }
}

/// `e` encoded in `class` (`None` if the class has no encoding: it is then encoded per query).
fn encode(class: FileInfoClass, e: &Entry) -> Option<Box<[u8]>> {
    let short = short_for(class, &e.name);
    let mut out = Vec::with_capacity(dir_fixed_len(class)? + 2 * e.name.len());
    encode_entry(class, &dir_entry(&e.name, &short, &e.meta), &mut out).ok()?;
    Some(out.into_boxed_slice())
}

/// Where FileNameLength sits in an entry of `class`.
fn name_length_at(class: FileInfoClass) -> usize {
    if class == FileInfoClass::NAMES { 8 } else { 60 }
}

/// Fills one response: whole entries while they fit; a first entry that does not fit at all
/// is returned with its name cut (STATUS_BUFFER_OVERFLOW, [MS-FSA] 2.1.5.6.3). At most
/// `max` bytes; with `from_memory`, only entries already read ahead.
fn fill(
    cursor: &mut DirCursor,
    open: &Open,
    q: &Query,
    max: usize,
    from_memory: bool,
) -> Result<(Vec<u8>, NtStatus, usize), NtStatus> {
    let (class, fixed, single) = (q.class, q.fixed, q.single);
    let mut out: Vec<u8> = Vec::new();
    let mut count = 0usize;
    // READDIR_ATTR for macOS: per entry, what goes in place of EaSize and the short name.
    let aapl = q.aapl.filter(|_| class == FileInfoClass::ID_BOTH_DIRECTORY);
    // Entries the read-ahead encoded go in as they are when they are in this class.
    let ready = aapl.is_none() && cursor.encoded_class == Some(class);
    let mut mac: Vec<[u8; 32]> = Vec::new();
    let wire = |_: smb_wire::WireError| NtStatus::INTERNAL_ERROR;
    let mut w = DirWriter::new(&mut out, class, max).map_err(wire)?;
    // After the first response, what is ready goes out once there is enough of it.
    let enough = if cursor.responses > 1 {
        cursor.first_count.max(1)
    } else {
        usize::MAX
    };
    loop {
        if cursor.ahead.is_empty() && (count >= enough || from_memory) {
            break;
        }
        let Some(e) = cursor.next(open)? else {
            cursor.ended = true;
            break;
        };
        if let Some(bytes) = e.encoded.as_deref().filter(|_| ready) {
            if w.push_encoded(bytes).map_err(wire)? {
                cursor.returned_any = true;
                count += 1;
                if single {
                    break;
                }
                continue;
            }
            if !w.is_empty() {
                cursor.ahead.push_front(Ok(e));
                break;
            }
            // Not even the first entry fits: cut below, from its metadata.
        }
        let short = short_for(class, &e.name);
        let entry = dir_entry(&e.name, &short, &e.meta);
        if !w.push(&entry).map_err(wire)? {
            if w.is_empty() {
                // Not even the first entry fits: as much of its name as there is room for.
                encode_entry(class, &entry, &mut out).map_err(wire)?;
                let name_bytes = max.saturating_sub(fixed) & !1;
                out.truncate(fixed + name_bytes);
                let at = name_length_at(class);
                if let Some(f) = out.get_mut(at..at + 4) {
                    f.copy_from_slice(&(name_bytes as u32).to_le_bytes());
                }
                cursor.returned_any = true;
                return Ok((out, NtStatus::BUFFER_OVERFLOW, 1));
            }
            cursor.ahead.push_front(Ok(e));
            break;
        }
        cursor.returned_any = true;
        count += 1;
        if let Some(tree_max) = aapl {
            mac.push(readdir_attr(open, &e, tree_max));
        }
        if single {
            break;
        }
    }
    let empty = w.is_empty();
    patch_readdir_attr(&mut out, &mac);
    if empty {
        return Err(if cursor.returned_any {
            NtStatus::NO_MORE_FILES
        } else {
            NtStatus::NO_SUCH_FILE
        });
    }
    Ok((out, NtStatus::SUCCESS, count))
}

/// The READDIR_ATTR fields of one entry ([`crate::aapl`]): EaSize = the maximal access,
/// ShortNameLength 0, ShortName = resource fork size (u64) and 16 bytes of FinderInfo,
/// Reserved2 = the Unix mode's low 16 bits.
fn readdir_attr(open: &Open, e: &Entry, tree_max: u32) -> [u8; 32] {
    let mut f = [0u8; 32];
    let max = super::file::maximal_access(tree_max, &e.meta);
    f[0..4].copy_from_slice(&max.to_le_bytes());
    if e.name != "." && e.name != ".." {
        let handle = open
            .current_path()
            .join(&e.name)
            .ok()
            .and_then(|p| open.vfs.open(&p, &lanshare_vfs::OpenOptions::read()).ok());
        if let Some((h, _)) = handle {
            let (rfork, finder) = crate::aapl::finder_data(&*h);
            f[6..14].copy_from_slice(&rfork.to_le_bytes());
            f[14..30].copy_from_slice(&finder);
        }
    }
    f[30..32].copy_from_slice(&((e.meta.mode & 0xFFFF) as u16).to_le_bytes());
    f
}

/// Writes each entry's READDIR_ATTR fields over bytes 64..96 of the FileIdBothDirectory
/// entries of `out`, in order.
fn patch_readdir_attr(out: &mut [u8], mac: &[[u8; 32]]) {
    let mut at = 0usize;
    for m in mac {
        if let Some(dst) = out.get_mut(at + 64..at + 96) {
            dst.copy_from_slice(m);
        }
        let next = out
            .get(at..at + 4)
            .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize);
        if next == 0 {
            break;
        }
        at += next;
    }
}

/// 3.3.5.18.
pub(crate) async fn query_directory(ctx: &mut Ctx<'_>) -> ProtoResult<NtStatus> {
    let req = QueryDirectoryRequest::parse(ctx.pdu)?;
    let open = find_open(ctx, req.file_id)?;
    if !open.is_dir {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    if req.output_buffer_length > ctx.conn.server.config.max_io_size {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    check_credit_charge(ctx, req.output_buffer_length)?;
    if !open.has_access(AccessMask::FILE_LIST_DIRECTORY.0) {
        return Err(NtStatus::ACCESS_DENIED.into());
    }
    let class = req.file_information_class;
    let Some(fixed) = dir_fixed_len(class) else {
        return Err(NtStatus::INVALID_INFO_CLASS.into());
    };
    let max = req.output_buffer_length as usize;
    if max < fixed {
        return Err(NtStatus::INFO_LENGTH_MISMATCH.into());
    }
    if req.file_name.chars().count() > MAX_PATTERN_CHARS {
        return Err(NtStatus::OBJECT_NAME_INVALID.into());
    }
    let flags = req.flags;
    let restart = flags.contains(QueryDirectoryFlags::RESTART_SCANS)
        || flags.contains(QueryDirectoryFlags::REOPEN);
    let single = flags.contains(QueryDirectoryFlags::RETURN_SINGLE_ENTRY);
    let pattern = req.file_name;
    let aapl = ctx
        .conn
        .aapl_readdir
        .load(std::sync::atomic::Ordering::Relaxed)
        .then(|| ctx.tree().map(|t| t.maximal_access))
        .transpose()?;
    let q = Query {
        restart,
        pattern,
        class,
        fixed,
        max,
        single,
        aapl,
    };
    // Entries the read-ahead prepared are answered here, without a trip to the blocking pool
    // (two thread hand-offs per response); anything that may touch storage goes there.
    let ready = match open.dir.cursor.try_lock() {
        Ok(mut guard) => answer(&open, &mut guard, &q, true),
        Err(std::sync::TryLockError::Poisoned(p)) => answer(&open, &mut p.into_inner(), &q, true),
        Err(std::sync::TryLockError::WouldBlock) => None,
    };
    let (buf, status, spawn) = match ready {
        Some(r) => r?,
        None => {
            let o = open.clone();
            blocking(move || {
                let waiting = Waiting::new(&o.dir.queries);
                let mut guard = lock(&o.dir.cursor);
                drop(waiting);
                answer(&o, &mut guard, &q, false).unwrap_or(Err(NtStatus::INTERNAL_ERROR))
            })
            .await??
        }
    };
    if spawn {
        read_ahead(open);
    }
    QueryDirectoryResponse { buffer: &buf }.encode(&mut ctx.out)?;
    Ok(status)
}

/// A response's buffer and status, and whether to start the read-ahead.
type Answer = (Vec<u8>, NtStatus, bool);

/// What a query asks, checked.
struct Query {
    restart: bool,
    pattern: String,
    class: FileInfoClass,
    fixed: usize,
    max: usize,
    single: bool,
    aapl: Option<u32>,
}

/// Fills the response to `q` from the enumeration in `slot`: the buffer, the status, and
/// whether the caller is to start the background read-ahead. With `from_memory`, only from
/// entries already read ahead and encoded in the class asked, and `None` when there are not
/// enough of those (the caller then asks again on the blocking pool).
fn answer(
    o: &Open,
    slot: &mut Option<DirCursor>,
    q: &Query,
    from_memory: bool,
) -> Option<Result<Answer, NtStatus>> {
    let cursor = match slot {
        Some(c) if !q.restart => c,
        _ if from_memory => return None,
        _ => slot.insert(DirCursor::new(&q.pattern)),
    };
    if from_memory
        && (q.single
            || q.aapl.is_some()
            || cursor.responses == 0
            || cursor.encoded_class != Some(q.class)
            || !(cursor.ahead.len() >= cursor.first_count.max(1)
                || (cursor.ended && !cursor.ahead.is_empty())))
    {
        return None;
    }
    let this = response_cap(cursor.responses, q.max);
    let next = response_cap(cursor.responses.saturating_add(1), q.max);
    cursor.responses = cursor.responses.saturating_add(1);
    let filled = fill(cursor, o, q, this, from_memory);
    let (buf, status, n) = match filled {
        Ok(f) => f,
        Err(e) => {
            cursor.window = 0;
            return Some(Err(e));
        }
    };
    if cursor.responses == 1 {
        cursor.first_count = n;
    }
    // Read ahead about what the next response can carry: this one's count scaled by size.
    cursor.window = if status == NtStatus::SUCCESS && !q.single {
        n.saturating_mul(next) / buf.len().max(1)
    } else {
        0
    };
    let encoded_class = q.aapl.is_none().then_some(q.class);
    if cursor.encoded_class != encoded_class {
        // Entries encoded in another class are encoded again, per query, from metadata.
        for e in cursor.ahead.iter_mut().flatten() {
            e.encoded = None;
        }
        cursor.encoded_class = encoded_class;
    }
    let spawn = cursor.window > cursor.ahead.len() && !cursor.ended && !cursor.reading;
    cursor.reading |= spawn;
    Some(Ok((buf, status, spawn)))
}

/// The first response of an enumeration carries at most this many bytes, and each next one at
/// most twice the last, up to the client's OutputBufferLength. A client that lists in lockstep
/// (smbclient asks for the next batch only after handling the last) handles the first entries
/// while the server reads the next ones ([`read_ahead`]) instead of waiting for the whole
/// folder in one response; doubling keeps the number of responses small (smbclient's cost per
/// response grows with the entries it already holds).
const FIRST_RESPONSE: usize = 32 * 1024;

/// Most entries read ahead of a query: about what an 8 MiB response holds, at roughly 2.7 times
/// its size in memory while they wait (name, metadata and encoded entry: about 22 MB).
const MAX_AHEAD: usize = 65536;

/// Most entries read ahead and not yet answered, over every open of the process: about
/// 90 MB. Each open may hold up to [`MAX_AHEAD`], so without a common bound a client that
/// keeps many large folders open mid-listing could make the server hold far more than any
/// response needs; past it, queries are answered as before read-ahead, from the folder.
const AHEAD_BUDGET: usize = 262_144;

/// Entries currently held ahead, over every open ([`AHEAD_BUDGET`]).
static AHEAD: Budget = Budget::new(AHEAD_BUDGET);

fn reserve_ahead(want: usize) -> usize {
    AHEAD.reserve(want)
}

fn release_ahead(n: usize) {
    AHEAD.release(n);
}

/// A count of units held, never above `cap`.
struct Budget {
    held: AtomicUsize,
    cap: usize,
}

impl Budget {
    const fn new(cap: usize) -> Budget {
        Budget {
            held: AtomicUsize::new(0),
            cap,
        }
    }

    /// Takes up to `want` units; returns how many were granted (0 when all are held).
    fn reserve(&self, want: usize) -> usize {
        let mut granted = 0;
        let _ = self
            .held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                granted = want.min(self.cap.saturating_sub(held));
                Some(held + granted)
            });
        granted
    }

    fn release(&self, n: usize) {
        if n > 0 {
            self.held.fetch_sub(n, Ordering::AcqRel);
        }
    }
}

/// The byte limit of response `k` (0 = the first since the last (re)start) when the client
/// allows `max`.
fn response_cap(k: u32, max: usize) -> usize {
    FIRST_RESPONSE
        .checked_shl(k.min(16))
        .unwrap_or(usize::MAX)
        .min(max)
}

/// Entries the background read-ahead reads per hold of the cursor: a query that arrives
/// meanwhile waits for at most this many.
const CHUNK: usize = 32;

/// Prepares the next responses' entries (readdir, stat, DOS attributes) while this one
/// travels and the client reads it, a chunk at a time: clients that list in lockstep
/// (smbclient asks for the next batch only when it has handled the last) then find them
/// ready. Stops when the window is full, at the end, at CLOSE, and whenever a query waits for
/// the cursor (which starts it again when it is done).
fn read_ahead(open: Arc<Open>) {
    drop(tokio::task::spawn_blocking(move || {
        loop {
            let mut guard = lock(&open.dir.cursor);
            let Some(cursor) = guard.as_mut() else {
                return;
            };
            // A restart replaced the cursor, or this task was told to stop.
            if !cursor.reading {
                return;
            }
            if open.dir.queries.load(Ordering::Acquire) > 0 || !cursor.read_ahead(&open, CHUNK) {
                cursor.reading = false;
                return;
            }
        }
    }));
}

#[cfg(test)]
mod tests {
    use super::Budget;

    #[test]
    fn the_read_ahead_budget_grants_what_is_left_and_takes_back_what_is_released() {
        let b = Budget::new(100);
        assert_eq!(b.reserve(60), 60);
        assert_eq!(b.reserve(60), 40, "only what is left");
        assert_eq!(b.reserve(1), 0, "all held");
        b.release(30);
        assert_eq!(b.reserve(usize::MAX), 30);
        b.release(100);
        assert_eq!(b.reserve(0), 0);
        assert_eq!(b.reserve(100), 100, "everything released comes back");
    }
}
