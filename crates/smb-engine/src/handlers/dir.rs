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
//! background ([`read_ahead`]), in short chunks read with the directory stream lent out of the
//! cursor (not under its lock), and the next query takes what is ready
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
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

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
/// background read-ahead stops after its current chunk when one does).
#[derive(Default)]
pub(crate) struct DirSlot {
    cursor: Mutex<Option<DirCursor>>,
    queries: AtomicU32,
    /// Signalled when the read-ahead hands the stream back ([`DirCursor::lent`]).
    returned: Condvar,
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
    /// Tells this enumeration from the one a restart puts in its place, so that a read-ahead
    /// chunk that comes back after a restart or CLOSE is dropped.
    id: u64,
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
    /// The read-ahead has the stream and reads a chunk without holding the cursor: queries
    /// meanwhile answer from what is ready, or wait on [`DirSlot::returned`] for more.
    lent: bool,
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
        static IDS: AtomicU64 = AtomicU64::new(0);
        DirCursor {
            id: IDS.fetch_add(1, Ordering::Relaxed),
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
            lent: false,
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
        // The read-ahead has the stream: never open a second one in its place (queries wait
        // for it to come back before reading).
        if self.lent {
            return Err(NtStatus::INTERNAL_ERROR);
        }
        if self.stream.is_none() {
            self.stream = Some(open.handle.read_dir().map_err(|e| vfs_status(&e))?);
        }
        let Some(stream) = self.stream.as_mut() else {
            return Ok(None);
        };
        next_match(stream.as_mut(), &self.pattern, self.short_names)
    }

    /// Lends the stream to the read-ahead for a chunk of up to `chunk` entries, within the
    /// window and the server-wide budget. `None` when there is nothing to read ahead, or
    /// when the chunk has to be read under the lock (`.` and `..` not yet given, no stream).
    fn lend(&mut self, open: &Open, chunk: usize) -> Option<Loan> {
        if self.dots < 2 || self.stream.is_none() || self.lent {
            return None;
        }
        let room = self.window.min(MAX_AHEAD).saturating_sub(self.ahead.len());
        let want = room.min(chunk);
        if want == 0 || self.ended || open.closed.load(Ordering::Acquire) {
            return None;
        }
        let granted = reserve_ahead(want);
        if granted == 0 {
            return None;
        }
        let stream = self.stream.take()?;
        self.lent = true;
        Some(Loan {
            id: self.id,
            stream,
            pattern: self.pattern.clone(),
            short_names: self.short_names,
            class: self.encoded_class,
            want,
            granted,
        })
    }

    /// Takes the stream back with the entries read on it; says whether to read on.
    fn give_back(
        &mut self,
        open: &Open,
        loan: Loan,
        got: Vec<Result<Entry, NtStatus>>,
        end: bool,
    ) -> bool {
        self.stream = Some(loan.stream);
        self.lent = false;
        let read = got.len();
        for mut e in got {
            // Encoded in a class a query has moved away from meanwhile: encoded per query.
            if loan.class != self.encoded_class
                && let Ok(e) = e.as_mut()
            {
                e.encoded = None;
            }
            self.ahead.push_back(e);
        }
        self.held += read;
        release_ahead(loan.granted - read);
        self.ended |= end;
        read == loan.want && !self.ended && !open.closed.load(Ordering::Acquire)
    }
}

/// The stream of an enumeration, lent to the read-ahead for one chunk, and what reading it
/// needs.
struct Loan {
    id: u64,
    stream: Box<dyn DirStream>,
    pattern: Pattern,
    short_names: bool,
    class: Option<FileInfoClass>,
    want: usize,
    granted: usize,
}

/// The next entry of `stream` that matches `pattern` (or, with `short_names`, whose generated
/// 8.3 name does), `None` at the end.
fn next_match(
    stream: &mut dyn DirStream,
    pattern: &Pattern,
    short_names: bool,
) -> Result<Option<Entry>, NtStatus> {
    loop {
        match stream.next_entry() {
            None => return Ok(None),
            Some(Err(e)) => return Err(vfs_status(&e)),
            Some(Ok(e))
                if pattern.matches(&e.name)
                    || (short_names
                        && !is_8dot3(&e.name)
                        && pattern.matches(&short_name(&e.name))) =>
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
    // Room for the whole response at once: growing by doubling copied a large response about
    // twice over and touched fresh pages each time (memmove was 5 % of a listing's samples).
    // The cap is at most the client's OutputBufferLength, which is at most max_io_size.
    let mut out: Vec<u8> = Vec::with_capacity(if single { max.min(4096) } else { max });
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
                let guard = wait_returned(&o, lock(&o.dir.cursor));
                drop(waiting);
                let mut guard = guard;
                answer(&o, &mut guard, &q, false).unwrap_or(Err(NtStatus::INTERNAL_ERROR))
            })
            .await??
        }
    };
    if spawn {
        read_ahead(open);
    }
    // One allocation for the response, not a doubling series ending in a copy of `buf`.
    ctx.out.reserve(buf.len() + 16);
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

/// Waits (on the blocking pool) until the read-ahead has handed the stream back, so that a
/// query that needs more than is ready reads on from where the read-ahead stopped. A chunk
/// is at most [`CHUNK`] entries, and the read-ahead stops after it once a query waits.
fn wait_returned<'a>(
    o: &'a Open,
    mut guard: MutexGuard<'a, Option<DirCursor>>,
) -> MutexGuard<'a, Option<DirCursor>> {
    while guard.as_ref().is_some_and(|c| c.lent) {
        guard = o
            .dir
            .returned
            .wait(guard)
            .unwrap_or_else(PoisonError::into_inner);
    }
    guard
}

/// Prepares the next responses' entries (readdir, stat, DOS attributes) while this one
/// travels and the client reads it, a chunk at a time: clients that list in lockstep
/// (smbclient asks for the next batch only when it has handled the last) then find them
/// ready. Each chunk is read with the stream lent out of the cursor ([`DirCursor::lend`]),
/// not under its lock: a query that arrives meanwhile takes what is ready on the
/// connection's task at once, instead of going to the blocking pool to wait for the chunk
/// (two thread hand-offs, and on a busy machine a wait for this thread to be scheduled
/// again). Stops when the window is full, at the end, at CLOSE, and whenever a query waits
/// for the stream (which starts it again when it is done).
fn read_ahead(open: Arc<Open>) {
    drop(tokio::task::spawn_blocking(move || {
        loop {
            let loan = {
                let mut guard = lock(&open.dir.cursor);
                let Some(cursor) = guard.as_mut() else {
                    return;
                };
                // A restart replaced the cursor, or this task was told to stop.
                if !cursor.reading {
                    return;
                }
                if open.dir.queries.load(Ordering::Acquire) > 0 {
                    cursor.reading = false;
                    return;
                }
                match cursor.lend(&open, CHUNK) {
                    Some(loan) => loan,
                    None => {
                        if !cursor.read_ahead(&open, CHUNK) {
                            cursor.reading = false;
                            return;
                        }
                        continue;
                    }
                }
            };
            let mut back = Returner {
                open: &open,
                loan: Some(loan),
                got: Vec::with_capacity(CHUNK),
                end: false,
            };
            back.read();
            if !back.finish() {
                return;
            }
        }
    }));
}

/// A chunk being read on a lent stream. Dropped without [`Returner::finish`] (a panic while
/// reading), it still hands the stream and what was read back, and wakes waiting queries.
struct Returner<'a> {
    open: &'a Open,
    loan: Option<Loan>,
    got: Vec<Result<Entry, NtStatus>>,
    end: bool,
}

impl Returner<'_> {
    fn read(&mut self) {
        let Some(loan) = self.loan.as_mut() else {
            return;
        };
        // A CLOSE does not wait for the chunk: stop as soon as it began.
        while self.got.len() < loan.granted && !self.open.closed.load(Ordering::Acquire) {
            match next_match(loan.stream.as_mut(), &loan.pattern, loan.short_names) {
                Ok(Some(mut e)) => {
                    if let Some(class) = loan.class {
                        e.encoded = encode(class, &e);
                    }
                    self.got.push(Ok(e));
                }
                Ok(None) => {
                    self.end = true;
                    break;
                }
                Err(s) => {
                    self.got.push(Err(s));
                    self.end = true;
                    break;
                }
            }
        }
    }

    /// Hands the stream and the chunk back; says whether to read on.
    fn finish(mut self) -> bool {
        self.hand_back()
    }

    fn hand_back(&mut self) -> bool {
        let Some(loan) = self.loan.take() else {
            return false;
        };
        let got = std::mem::take(&mut self.got);
        let mut guard = lock(&self.open.dir.cursor);
        let more = match guard.as_mut() {
            Some(cursor) if cursor.id == loan.id => {
                let more = cursor.give_back(self.open, loan, got, self.end);
                if !more {
                    cursor.reading = false;
                }
                more
            }
            // Closed or restarted meanwhile: the chunk is not this enumeration's any more.
            _ => {
                release_ahead(loan.granted);
                false
            }
        };
        drop(guard);
        // Only a query that counted itself in `queries` before taking the lock waits.
        if self.open.dir.queries.load(Ordering::Acquire) > 0 {
            self.open.dir.returned.notify_all();
        }
        more
    }
}

impl Drop for Returner<'_> {
    fn drop(&mut self) {
        self.hand_back();
    }
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod loan_tests {
    use std::collections::BTreeSet;

    use lanshare_vfs::{Access, CreateMode, MemFs, OpenOptions, ShareMode, Vfs, VfsPath};
    use smb_wire::FileId;

    use super::*;
    use crate::open::{NewOpen, OpenSlot};

    /// A directory `d` with `n` files, opened for listing.
    fn dir_open(n: usize) -> Arc<Open> {
        let cfg = crate::EngineConfig::new("TEST");
        let users = Arc::new(lanshare_auth::MemoryUserDb::new());
        let state = crate::Server::new(cfg, users).unwrap().state;
        let vfs: Arc<dyn Vfs> = Arc::new(MemFs::new());
        let path = VfsPath::parse("d").unwrap();
        vfs.open(&path, &OpenOptions::directory(CreateMode::Create))
            .unwrap();
        for i in 0..n {
            let f = VfsPath::parse(&format!("d\\f{i:04}")).unwrap();
            vfs.open(&f, &OpenOptions::read_write(CreateMode::Create))
                .unwrap();
        }
        let (h, _) = vfs
            .open(&path, &OpenOptions::directory(CreateMode::Open))
            .unwrap();
        let identity = h.metadata().unwrap().identity();
        let token = state
            .objects
            .table
            .acquire(identity, Access::READ, ShareMode(7))
            .unwrap();
        Arc::new(Open::new(
            NewOpen {
                file_id: FileId {
                    persistent: 1,
                    volatile: 1,
                },
                tree_id: 1,
                path: path.clone(),
                handle: Arc::from(h),
                vfs: vfs.clone(),
                is_dir: true,
                access: AccessMask::FILE_LIST_DIRECTORY.0,
                create_options: 0,
                delete_on_close: false,
                identity,
                token,
                anchor: None,
                file: state.objects.file(&vfs, identity, &path),
                objects: state.objects.clone(),
            },
            OpenSlot::take(&state, 0).unwrap(),
        ))
    }

    /// FileNamesInformation queries of at most `max` bytes.
    fn query(restart: bool, max: usize) -> Query {
        Query {
            restart,
            pattern: "*".into(),
            class: FileInfoClass::NAMES,
            fixed: dir_fixed_len(FileInfoClass::NAMES).unwrap(),
            max,
            single: false,
            aapl: None,
        }
    }

    /// The names in a FileNamesInformation buffer.
    fn names(buf: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        let mut at = 0;
        loop {
            let u32_at = |i: usize| u32::from_le_bytes(buf[i..i + 4].try_into().unwrap()) as usize;
            let len = u32_at(at + 8);
            let units: Vec<u16> = buf[at + 12..at + 12 + len]
                .chunks(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect();
            out.push(String::from_utf16(&units).unwrap());
            match u32_at(at) {
                0 => return out,
                next => at += next,
            }
        }
    }

    /// Reads one chunk on a lent stream, as the read-ahead task does; says whether to go on.
    fn read_chunk(o: &Open, loan: Loan) -> bool {
        let mut r = Returner {
            open: o,
            loan: Some(loan),
            got: Vec::new(),
            end: false,
        };
        r.read();
        r.finish()
    }

    fn expected(n: usize) -> Vec<String> {
        let mut all = vec![".".to_string(), "..".to_string()];
        all.extend((0..n).map(|i| format!("f{i:04}")));
        all
    }

    #[test]
    fn a_query_answers_from_what_is_ready_while_a_chunk_is_read_and_every_name_comes_once() {
        let n = 10_000;
        let o = dir_open(n);
        let mut listed = Vec::new();
        let mut while_lent = 0;
        loop {
            // Read ahead until a query can answer from memory, then lend the stream for one
            // more chunk and answer meanwhile.
            let mut slot = lock(&o.dir.cursor);
            while let Some(c) = slot.as_mut() {
                if c.ahead.len() >= c.first_count.max(1) {
                    break;
                }
                let Some(loan) = c.lend(&o, CHUNK) else {
                    break;
                };
                drop(slot);
                read_chunk(&o, loan);
                slot = lock(&o.dir.cursor);
            }
            let loan = slot.as_mut().and_then(|c| c.lend(&o, CHUNK));
            let answered = match loan {
                Some(_) => answer(&o, &mut slot, &query(false, 1 << 20), true),
                None => None,
            };
            drop(slot);
            if answered.is_some() {
                while_lent += 1;
            }
            if let Some(loan) = loan {
                read_chunk(&o, loan);
            }
            let answered = match answered {
                Some(a) => a,
                // Not enough ready: as on the blocking pool, once the stream is back.
                None => {
                    answer(&o, &mut lock(&o.dir.cursor), &query(false, 1 << 20), false).unwrap()
                }
            };
            match answered {
                Ok((buf, status, _)) => {
                    assert_eq!(status, NtStatus::SUCCESS);
                    listed.extend(names(&buf));
                }
                Err(NtStatus::NO_MORE_FILES) => break,
                Err(e) => panic!("{e:?}"),
            }
        }
        assert!(
            while_lent > 3,
            "answered while a chunk was out {while_lent} times"
        );
        let unique: BTreeSet<_> = listed.iter().collect();
        assert_eq!(unique.len(), listed.len(), "a name came twice");
        let mut sorted = listed.clone();
        sorted.sort();
        assert_eq!(sorted, expected(n));
    }

    #[test]
    fn a_chunk_that_comes_back_after_a_restart_is_dropped() {
        let n = 300;
        let o = dir_open(n);
        let mut slot = lock(&o.dir.cursor);
        let first = answer(&o, &mut slot, &query(false, 1024), false);
        assert!(matches!(first, Some(Ok(_))));
        let loan = slot.as_mut().and_then(|c| c.lend(&o, CHUNK)).unwrap();
        // RESTART_SCANS while the chunk is out (the blocking pool waits for it; a CLOSE
        // does not).
        slot.take();
        let mut listed = Vec::new();
        let restarted = answer(&o, &mut slot, &query(true, 64 * 1024), false);
        let Some(Ok((buf, _, _))) = restarted else {
            panic!("restart failed");
        };
        listed.extend(names(&buf));
        drop(slot);
        assert!(!read_chunk(&o, loan), "the old read-ahead stops");
        let slot = lock(&o.dir.cursor);
        let c = slot.as_ref().unwrap();
        assert!(
            !c.lent && c.stream.is_some(),
            "the new enumeration keeps its own stream"
        );
        assert!(c.ahead.is_empty(), "nothing of the old chunk landed");
        drop(slot);
        loop {
            match answer(
                &o,
                &mut lock(&o.dir.cursor),
                &query(false, 64 * 1024),
                false,
            ) {
                Some(Ok((buf, _, _))) => listed.extend(names(&buf)),
                Some(Err(NtStatus::NO_MORE_FILES)) => break,
                other => panic!("{:?}", other.map(|r| r.map(|a| a.1))),
            }
        }
        listed.sort();
        assert_eq!(listed, expected(n));
    }
}
