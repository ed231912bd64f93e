//! The conformance battery: one set of tests that every [`Vfs`] back-end must pass.
//!
//! Each public function takes a fresh, empty back-end and panics on failure. Use
//! [`crate::vfs_battery!`] to turn them all into `#[test]`s for a back-end:
//!
//! ```ignore
//! lanshare_vfs::vfs_battery!(memfs, (lanshare_vfs::MemFs::new(), ()));
//! ```
//! The expression yields `(impl Vfs, guard)`; the guard (a temp dir, say) lives for the test.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::{
    CreateMode, DirMode, OpenOptions, OpenOutcome, SetTimes, Vfs, VfsError, VfsHandle, VfsPath, dos,
};

/// Generates one `#[test]` per battery case inside `mod $name`.
#[macro_export]
macro_rules! vfs_battery {
    ($name:ident, $make:expr) => {
        $crate::vfs_battery!(@cases $name, $make;
            open_missing, create_new, open_if, overwrite, overwrite_if, supersede,
            positioned_read_write, eof_reads, extend_and_truncate, access_enforced,
            directories, dir_dispositions, rename_no_replace, rename_replace,
            rename_errors, rename_directory, remove, metadata_identity, set_times,
            dos_attributes, create_with_attributes, handle_outlives_unlink, root,
            statfs, readdir_small, readdir_10000, readdir_rewind, case_insensitivity,
            copy_between_files, copy_within_one_file, sparse_and_zero_data);
    };
    (@cases $name:ident, $make:expr; $($case:ident),* $(,)?) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[test]
                fn $case() {
                    let (fs, _guard) = $make;
                    $crate::battery::$case(&fs);
                }
            )*
        }
    };
}

fn p(s: &str) -> VfsPath {
    VfsPath::parse(s).expect("valid test path")
}

fn open(fs: &dyn Vfs, path: &str, opts: OpenOptions) -> (Box<dyn VfsHandle>, OpenOutcome) {
    fs.open(&p(path), &opts)
        .unwrap_or_else(|e| panic!("open {path}: {e}"))
}

fn open_err(fs: &dyn Vfs, path: &str, opts: OpenOptions) -> VfsError {
    match fs.open(&p(path), &opts) {
        Ok((_, o)) => panic!("open {path} should fail, got {o:?}"),
        Err(e) => e,
    }
}

fn rw(create: CreateMode) -> OpenOptions {
    OpenOptions::read_write(create)
}

fn put(fs: &dyn Vfs, path: &str, data: &[u8]) {
    let (h, _) = open(fs, path, rw(CreateMode::OverwriteIf));
    assert_eq!(h.write_at(data, 0).unwrap(), data.len());
}

fn read_all(h: &dyn VfsHandle) -> Vec<u8> {
    let len = h.metadata().unwrap().size as usize;
    let mut buf = vec![0u8; len + 10];
    let n = h.read_at(&mut buf, 0).unwrap();
    buf.truncate(n);
    buf
}

fn get(fs: &dyn Vfs, path: &str) -> Vec<u8> {
    let (h, _) = open(fs, path, OpenOptions::read());
    read_all(&*h)
}

fn mkdir(fs: &dyn Vfs, path: &str) {
    let (_, o) = open(fs, path, OpenOptions::directory(CreateMode::Create));
    assert_eq!(o, OpenOutcome::Created);
}

/// Open/Overwrite of a missing name: NotFound; with a missing parent: PathNotFound.
pub fn open_missing(fs: &dyn Vfs) {
    for mode in [CreateMode::Open, CreateMode::Overwrite] {
        assert_eq!(open_err(fs, "nope", rw(mode)), VfsError::NotFound);
        assert_eq!(
            open_err(fs, r"nodir\nope", rw(mode)),
            VfsError::PathNotFound
        );
    }
    for mode in [
        CreateMode::Create,
        CreateMode::OpenIf,
        CreateMode::OverwriteIf,
        CreateMode::Supersede,
    ] {
        assert_eq!(open_err(fs, r"nodir\x", rw(mode)), VfsError::PathNotFound);
    }
    put(fs, "file", b"x");
    // A file used as a directory on the way.
    assert_eq!(
        open_err(fs, r"file\x", OpenOptions::read()),
        VfsError::PathNotFound
    );
    assert_eq!(fs.stat(&p("nope")), Err(VfsError::NotFound));
    assert_eq!(fs.stat(&p(r"nodir\nope")), Err(VfsError::PathNotFound));
}

/// Create makes a new empty file, then refuses with Exists.
pub fn create_new(fs: &dyn Vfs) {
    let (h, o) = open(fs, "a.txt", rw(CreateMode::Create));
    assert_eq!(o, OpenOutcome::Created);
    assert_eq!(h.metadata().unwrap().size, 0);
    h.write_at(b"hello", 0).unwrap();
    drop(h);
    assert_eq!(
        open_err(fs, "a.txt", rw(CreateMode::Create)),
        VfsError::Exists
    );
    assert_eq!(get(fs, "a.txt"), b"hello");
}

/// OpenIf creates once, then opens without touching the contents.
pub fn open_if(fs: &dyn Vfs) {
    let (h, o) = open(fs, "f", rw(CreateMode::OpenIf));
    assert_eq!(o, OpenOutcome::Created);
    h.write_at(b"keep", 0).unwrap();
    drop(h);
    let (h, o) = open(fs, "f", rw(CreateMode::OpenIf));
    assert_eq!(o, OpenOutcome::Opened);
    assert_eq!(read_all(&*h), b"keep");
}

/// Overwrite truncates an existing file and fails on a missing one.
pub fn overwrite(fs: &dyn Vfs) {
    put(fs, "f", b"0123456789");
    let (h, o) = open(fs, "f", rw(CreateMode::Overwrite));
    assert_eq!(o, OpenOutcome::Overwritten);
    assert_eq!(h.metadata().unwrap().size, 0);
    drop(h);
    assert_eq!(get(fs, "f"), b"");
    // Even a read-only request truncates: the disposition says so.
    put(fs, "g", b"abc");
    let mut ro = OpenOptions::read();
    ro.create = CreateMode::Overwrite;
    let (h, o) = open(fs, "g", ro);
    assert_eq!(o, OpenOutcome::Overwritten);
    assert_eq!(h.metadata().unwrap().size, 0);
}

/// OverwriteIf creates, then truncates.
pub fn overwrite_if(fs: &dyn Vfs) {
    let (h, o) = open(fs, "f", rw(CreateMode::OverwriteIf));
    assert_eq!(o, OpenOutcome::Created);
    h.write_at(b"data", 0).unwrap();
    drop(h);
    let (h, o) = open(fs, "f", rw(CreateMode::OverwriteIf));
    assert_eq!(o, OpenOutcome::Overwritten);
    assert_eq!(h.metadata().unwrap().size, 0);
}

/// Supersede creates, then replaces contents and attributes.
pub fn supersede(fs: &dyn Vfs) {
    let (h, o) = open(fs, "f", rw(CreateMode::Supersede));
    assert_eq!(o, OpenOutcome::Created);
    h.write_at(b"data", 0).unwrap();
    h.set_dos_attributes(dos::HIDDEN | dos::ARCHIVE).unwrap();
    drop(h);
    let (h, o) = open(fs, "f", rw(CreateMode::Supersede));
    assert_eq!(o, OpenOutcome::Superseded);
    let m = h.metadata().unwrap();
    assert_eq!(m.size, 0);
    assert_eq!(
        m.dos_attributes & dos::HIDDEN,
        0,
        "supersede resets attributes"
    );
}

/// Writes at offsets, gaps read as zeros, reads at offsets.
pub fn positioned_read_write(fs: &dyn Vfs) {
    let (h, _) = open(fs, "f", rw(CreateMode::Create));
    assert_eq!(h.write_at(b"world", 6).unwrap(), 5);
    assert_eq!(h.write_at(b"hello", 0).unwrap(), 5);
    assert_eq!(h.metadata().unwrap().size, 11);
    let mut buf = [0xffu8; 11];
    assert_eq!(h.read_at(&mut buf, 0).unwrap(), 11);
    assert_eq!(&buf, b"hello\0world");
    let mut buf = [0u8; 3];
    assert_eq!(h.read_at(&mut buf, 4).unwrap(), 3);
    assert_eq!(&buf, b"o\0w");
    // Overwrite in the middle keeps the size.
    h.write_at(b"__", 2).unwrap();
    assert_eq!(read_all(&*h), b"he__o\0world");
    assert_eq!(h.write_at(b"", 100).unwrap(), 0);
    // A second handle sees the data.
    let (h2, _) = open(fs, "f", OpenOptions::read());
    assert_eq!(read_all(&*h2), b"he__o\0world");
    // A larger write, crossing page boundaries.
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    h.write_at(&big, 4093).unwrap();
    let mut back = vec![0u8; big.len()];
    assert_eq!(h2.read_at(&mut back, 4093).unwrap(), big.len());
    assert_eq!(back, big);
    h.sync().unwrap();
}

/// Reads at and past EOF return 0; straddling reads are short.
pub fn eof_reads(fs: &dyn Vfs) {
    put(fs, "f", b"abcdef");
    let (h, _) = open(fs, "f", OpenOptions::read());
    let mut buf = [0u8; 10];
    assert_eq!(h.read_at(&mut buf, 6).unwrap(), 0);
    assert_eq!(h.read_at(&mut buf, 1000).unwrap(), 0);
    assert_eq!(h.read_at(&mut buf, u64::MAX).unwrap(), 0);
    assert_eq!(h.read_at(&mut buf, 4).unwrap(), 2);
    assert_eq!(&buf[..2], b"ef");
    assert_eq!(h.read_at(&mut [], 0).unwrap(), 0);
    put(fs, "empty", b"");
    let (h, _) = open(fs, "empty", OpenOptions::read());
    assert_eq!(h.read_at(&mut buf, 0).unwrap(), 0);
    // read_append keeps what the buffer held and adds at most `len` bytes, with an exact
    // spare capacity (the zero-copy path), a larger one, and none.
    let (h, _) = open(fs, "f", OpenOptions::read());
    for cap in [2 + 3, 2 + 100, 0] {
        let mut v = Vec::with_capacity(cap);
        v.extend_from_slice(b"HH");
        assert_eq!(h.read_append(&mut v, 3, 1).unwrap(), 3);
        assert_eq!(v, b"HHbcd");
        assert_eq!(h.read_append(&mut v, 10, 4).unwrap(), 2);
        assert_eq!(v, b"HHbcdef");
        assert_eq!(h.read_append(&mut v, 10, 6).unwrap(), 0);
        assert_eq!(h.read_append(&mut v, 10, u64::MAX).unwrap(), 0);
        assert_eq!(v, b"HHbcdef");
    }
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    put(fs, "big", &big);
    let (h, _) = open(fs, "big", OpenOptions::read());
    let mut v = Vec::with_capacity(64 + big.len());
    v.resize(64, 7);
    assert_eq!(h.read_append(&mut v, big.len(), 0).unwrap(), big.len());
    assert_eq!(&v[..64], &[7u8; 64][..]);
    assert_eq!(&v[64..], &big[..]);
}

/// set_len extends with zeros and truncates.
pub fn extend_and_truncate(fs: &dyn Vfs) {
    let (h, _) = open(fs, "f", rw(CreateMode::Create));
    h.write_at(b"abc", 0).unwrap();
    h.set_len(6).unwrap();
    assert_eq!(h.metadata().unwrap().size, 6);
    assert_eq!(read_all(&*h), b"abc\0\0\0");
    h.set_len(1).unwrap();
    assert_eq!(read_all(&*h), b"a");
    h.set_len(0).unwrap();
    assert_eq!(h.metadata().unwrap().size, 0);
    // Extend far: the size changes, the data reads as zeros.
    h.set_len(10 << 20).unwrap();
    assert_eq!(h.metadata().unwrap().size, 10 << 20);
    let mut buf = [1u8; 4];
    assert_eq!(h.read_at(&mut buf, (10 << 20) - 4).unwrap(), 4);
    assert_eq!(buf, [0; 4]);
    assert!(h.write_at(b"x", u64::MAX - 1).is_err());
}

/// A handle does only what it was opened for.
pub fn access_enforced(fs: &dyn Vfs) {
    put(fs, "f", b"abc");
    let (h, _) = open(fs, "f", OpenOptions::read());
    assert_eq!(h.write_at(b"x", 0), Err(VfsError::AccessDenied));
    assert_eq!(h.set_len(0), Err(VfsError::AccessDenied));
    let mut wo = rw(CreateMode::Open);
    wo.read = false;
    let (h, _) = open(fs, "f", wo);
    let mut buf = [0u8; 3];
    assert_eq!(h.read_at(&mut buf, 0), Err(VfsError::AccessDenied));
    h.write_at(b"X", 0).unwrap();
    assert_eq!(get(fs, "f"), b"Xbc");
}

/// Directory creation and the file/directory constraints.
pub fn directories(fs: &dyn Vfs) {
    mkdir(fs, "d");
    assert_eq!(
        open_err(fs, "d", OpenOptions::directory(CreateMode::Create)),
        VfsError::Exists
    );
    let (h, o) = open(fs, "d", OpenOptions::directory(CreateMode::OpenIf));
    assert_eq!(o, OpenOutcome::Opened);
    assert!(h.metadata().unwrap().is_dir);
    let mut buf = [0u8; 4];
    assert_eq!(h.read_at(&mut buf, 0), Err(VfsError::IsADirectory));
    assert_eq!(h.set_len(0), Err(VfsError::IsADirectory));
    assert_eq!(h.write_at(b"x", 0), Err(VfsError::IsADirectory));
    let (_, o) = open(fs, r"d\sub", OpenOptions::directory(CreateMode::OpenIf));
    assert_eq!(o, OpenOutcome::Created);
    put(fs, r"d\sub\f", b"1");
    assert_eq!(get(fs, r"d\sub\f"), b"1");
    // FileOnly on a directory, DirOnly on a file.
    assert_eq!(
        open_err(fs, "d", OpenOptions::read().dir_mode(DirMode::FileOnly)),
        VfsError::IsADirectory
    );
    assert_eq!(
        open_err(fs, "d", rw(CreateMode::Open).dir_mode(DirMode::FileOnly)),
        VfsError::IsADirectory
    );
    assert_eq!(
        open_err(
            fs,
            r"d\sub\f",
            OpenOptions::read().dir_mode(DirMode::DirOnly)
        ),
        VfsError::NotADirectory
    );
    // Any opens a directory, even when write access is asked for.
    let (h, o) = open(fs, "d", rw(CreateMode::Open));
    assert_eq!(o, OpenOutcome::Opened);
    assert!(h.metadata().unwrap().is_dir);
    let (h, o) = open(fs, "d", rw(CreateMode::OpenIf));
    assert_eq!(o, OpenOutcome::Opened);
    assert!(h.metadata().unwrap().is_dir);
    // read_dir of a file.
    let (f, _) = open(fs, r"d\sub\f", OpenOptions::read());
    assert!(matches!(f.read_dir(), Err(VfsError::NotADirectory)));
    // Creating inside a missing directory.
    assert_eq!(
        open_err(fs, r"nodir\x", OpenOptions::directory(CreateMode::Create)),
        VfsError::PathNotFound
    );
    assert_eq!(
        open_err(fs, "d", rw(CreateMode::Create)),
        VfsError::Exists,
        "Create of an existing directory name"
    );
}

/// Overwriting dispositions never apply to directories.
pub fn dir_dispositions(fs: &dyn Vfs) {
    mkdir(fs, "d");
    put(fs, r"d\f", b"x");
    for mode in [
        CreateMode::Overwrite,
        CreateMode::OverwriteIf,
        CreateMode::Supersede,
    ] {
        assert_eq!(
            open_err(fs, "d", OpenOptions::directory(mode)),
            VfsError::InvalidParameter
        );
        assert_eq!(
            open_err(fs, "newdir", OpenOptions::directory(mode)),
            VfsError::InvalidParameter
        );
        assert_eq!(open_err(fs, "d", rw(mode)), VfsError::InvalidParameter);
    }
    assert_eq!(get(fs, r"d\f"), b"x");
}

/// Rename without replace refuses an existing target and leaves both intact.
pub fn rename_no_replace(fs: &dyn Vfs) {
    put(fs, "a", b"A");
    put(fs, "b", b"B");
    assert_eq!(fs.rename(&p("a"), &p("b"), false), Err(VfsError::Exists));
    assert_eq!(get(fs, "a"), b"A");
    assert_eq!(get(fs, "b"), b"B");
    fs.rename(&p("a"), &p("c"), false).unwrap();
    assert_eq!(fs.stat(&p("a")), Err(VfsError::NotFound));
    assert_eq!(get(fs, "c"), b"A");
    assert_eq!(fs.rename(&p("c"), &p("c"), false), Err(VfsError::Exists));
}

/// Rename with replace swaps the file in; the file identity moves with the name.
pub fn rename_replace(fs: &dyn Vfs) {
    put(fs, "a", b"A");
    put(fs, "b", b"B");
    let id = fs.stat(&p("a")).unwrap().file_id;
    fs.rename(&p("a"), &p("b"), true).unwrap();
    assert_eq!(get(fs, "b"), b"A");
    assert_eq!(fs.stat(&p("b")).unwrap().file_id, id);
    assert_eq!(fs.stat(&p("a")), Err(VfsError::NotFound));
    // Across directories.
    mkdir(fs, "d");
    fs.rename(&p("b"), &p(r"d\moved"), true).unwrap();
    assert_eq!(get(fs, r"d\moved"), b"A");
    // Onto itself: a no-op.
    fs.rename(&p(r"d\moved"), &p(r"d\moved"), true).unwrap();
    assert_eq!(get(fs, r"d\moved"), b"A");
    // Replace never removes a directory.
    mkdir(fs, "e");
    assert_eq!(
        fs.rename(&p(r"d\moved"), &p("e"), true),
        Err(VfsError::AccessDenied)
    );
}

/// Rename of missing sources and into missing directories; renaming the root.
pub fn rename_errors(fs: &dyn Vfs) {
    assert_eq!(fs.rename(&p("x"), &p("y"), false), Err(VfsError::NotFound));
    assert_eq!(
        fs.rename(&p(r"nodir\x"), &p("y"), false),
        Err(VfsError::PathNotFound)
    );
    put(fs, "a", b"A");
    assert_eq!(
        fs.rename(&p("a"), &p(r"nodir\a"), false),
        Err(VfsError::PathNotFound)
    );
    assert_eq!(
        fs.rename(&VfsPath::root(), &p("x"), false),
        Err(VfsError::AccessDenied)
    );
    assert_eq!(get(fs, "a"), b"A");
}

/// Directories rename with their contents, but not into themselves.
pub fn rename_directory(fs: &dyn Vfs) {
    mkdir(fs, "d");
    put(fs, r"d\f", b"F");
    fs.rename(&p("d"), &p("d2"), false).unwrap();
    assert_eq!(get(fs, r"d2\f"), b"F");
    assert_eq!(fs.stat(&p("d")), Err(VfsError::NotFound));
    mkdir(fs, r"d2\inner");
    assert_eq!(
        fs.rename(&p("d2"), &p(r"d2\inner\d3"), false),
        Err(VfsError::InvalidParameter)
    );
    // An open directory handle keeps working after a rename.
    let (h, _) = open(fs, "d2", OpenOptions::directory(CreateMode::Open));
    fs.rename(&p("d2"), &p("d4"), false).unwrap();
    assert!(h.metadata().unwrap().is_dir);
    let names: Vec<String> = collect(&*h).into_iter().collect();
    assert_eq!(names, ["f", "inner"]);
}

/// remove_file / remove_dir and their refusals.
pub fn remove(fs: &dyn Vfs) {
    mkdir(fs, "d");
    put(fs, r"d\f", b"x");
    assert_eq!(fs.remove_dir(&p("d")), Err(VfsError::NotEmpty));
    assert_eq!(fs.remove_file(&p("d")), Err(VfsError::IsADirectory));
    assert_eq!(fs.remove_dir(&p(r"d\f")), Err(VfsError::NotADirectory));
    assert_eq!(fs.remove_file(&p(r"d\nope")), Err(VfsError::NotFound));
    assert_eq!(fs.remove_file(&p(r"nodir\f")), Err(VfsError::PathNotFound));
    assert_eq!(fs.remove_dir(&p("nodir")), Err(VfsError::NotFound));
    assert_eq!(fs.remove_dir(&VfsPath::root()), Err(VfsError::AccessDenied));
    fs.remove_file(&p(r"d\f")).unwrap();
    assert_eq!(fs.stat(&p(r"d\f")), Err(VfsError::NotFound));
    fs.remove_dir(&p("d")).unwrap();
    assert_eq!(fs.stat(&p("d")), Err(VfsError::NotFound));
}

/// Identity is stable across opens and paths and distinct between files; basic fields.
pub fn metadata_identity(fs: &dyn Vfs) {
    put(fs, "a", b"12345");
    put(fs, "b", b"");
    mkdir(fs, "d");
    let a = fs.stat(&p("a")).unwrap();
    let (h, _) = open(fs, "a", OpenOptions::read());
    let ha = h.metadata().unwrap();
    assert_eq!(a.identity(), ha.identity());
    assert_eq!(a.size, 5);
    assert!(!a.is_dir);
    assert!(a.nlink >= 1);
    assert_ne!(a.file_id, fs.stat(&p("b")).unwrap().file_id);
    let d = fs.stat(&p("d")).unwrap();
    assert!(d.is_dir);
    assert_ne!(d.dos_attributes & dos::DIRECTORY, 0);
    assert_eq!(a.dos_attributes & dos::DIRECTORY, 0);
    assert_ne!(a.dos_attributes, 0);
    // Times are plausible: not in the future by more than a minute, not before 2000.
    let now = SystemTime::now();
    let y2000 = UNIX_EPOCH + Duration::from_secs(946_684_800);
    for t in [a.created, a.accessed, a.modified, a.changed] {
        assert!(t > y2000 && t < now + Duration::from_secs(60), "{t:?}");
    }
    // A write moves mtime forward (or at least not back) and changes the size.
    let (w, _) = open(fs, "a", rw(CreateMode::Open));
    w.write_at(b"678", 5).unwrap();
    let a2 = w.metadata().unwrap();
    assert_eq!(a2.size, 8);
    assert!(a2.modified >= a.modified);
    assert_eq!(a2.identity(), a.identity());
}

/// set_times round-trips accessed, modified and created (where settable).
pub fn set_times(fs: &dyn Vfs) {
    put(fs, "f", b"x");
    let (h, _) = open(fs, "f", rw(CreateMode::Open));
    let t_a = UNIX_EPOCH + Duration::new(1_500_000_000, 123_456_700);
    let t_m = UNIX_EPOCH + Duration::new(1_400_000_000, 700);
    let t_c = UNIX_EPOCH + Duration::new(1_300_000_000, 0);
    h.set_times(SetTimes {
        created: Some(t_c),
        accessed: Some(t_a),
        modified: Some(t_m),
    })
    .unwrap();
    let m = fs.stat(&p("f")).unwrap();
    assert_eq!(m.accessed, t_a);
    assert_eq!(m.modified, t_m);
    if fs.capabilities().settable_creation_time {
        assert_eq!(m.created, t_c);
    }
    // None leaves a time alone.
    h.set_times(SetTimes {
        modified: Some(t_a),
        ..SetTimes::default()
    })
    .unwrap();
    let m = h.metadata().unwrap();
    assert_eq!(m.accessed, t_a);
    assert_eq!(m.modified, t_a);
    // Directories too.
    mkdir(fs, "d");
    let (d, _) = open(fs, "d", OpenOptions::directory(CreateMode::Open));
    d.set_times(SetTimes {
        modified: Some(t_m),
        ..SetTimes::default()
    })
    .unwrap();
    assert_eq!(fs.stat(&p("d")).unwrap().modified, t_m);
}

/// DOS attributes: READONLY always sticks; the others where the back-end says so.
pub fn dos_attributes(fs: &dyn Vfs) {
    put(fs, "f", b"x");
    let (h, _) = open(fs, "f", rw(CreateMode::Open));
    let fresh = h.metadata().unwrap().dos_attributes;
    assert_eq!(fresh & (dos::HIDDEN | dos::SYSTEM | dos::READONLY), 0);
    h.set_dos_attributes(dos::READONLY).unwrap();
    let m = fs.stat(&p("f")).unwrap();
    assert_ne!(m.dos_attributes & dos::READONLY, 0);
    // The handle keeps its write access (Windows semantics: checked at open).
    h.write_at(b"y", 0).unwrap();
    h.set_dos_attributes(dos::HIDDEN | dos::SYSTEM | dos::ARCHIVE)
        .unwrap();
    let m = fs.stat(&p("f")).unwrap();
    assert_eq!(m.dos_attributes & dos::READONLY, 0);
    if fs.capabilities().persistent_dos_attributes {
        assert_eq!(
            m.dos_attributes,
            dos::HIDDEN | dos::SYSTEM | dos::ARCHIVE,
            "{:#x}",
            m.dos_attributes
        );
        // A listing reads them too (LocalFs takes another path there than stat).
        let (root, _) = open(fs, "", OpenOptions::directory(CreateMode::Open));
        let mut s = root.read_dir().unwrap();
        let mut seen = None;
        while let Some(e) = s.next_entry() {
            let e = e.unwrap();
            if e.name == "f" {
                seen = Some(e.metadata.dos_attributes);
            }
        }
        assert_eq!(seen, Some(dos::HIDDEN | dos::SYSTEM | dos::ARCHIVE));
    }
    h.set_dos_attributes(0).unwrap();
    let m = fs.stat(&p("f")).unwrap();
    if fs.capabilities().persistent_dos_attributes {
        assert_eq!(m.dos_attributes, dos::NORMAL);
    }
    // DIRECTORY cannot be set on a file nor cleared on a directory.
    h.set_dos_attributes(dos::DIRECTORY).unwrap();
    assert_eq!(fs.stat(&p("f")).unwrap().dos_attributes & dos::DIRECTORY, 0);
    mkdir(fs, "d");
    let (d, _) = open(fs, "d", OpenOptions::directory(CreateMode::Open));
    d.set_dos_attributes(dos::HIDDEN).unwrap();
    let m = fs.stat(&p("d")).unwrap();
    assert_ne!(m.dos_attributes & dos::DIRECTORY, 0);
    if fs.capabilities().persistent_dos_attributes {
        assert_eq!(m.dos_attributes, dos::DIRECTORY | dos::HIDDEN);
    }
    // A read-only file can still be opened for reading and deleted.
    h.set_dos_attributes(dos::READONLY).unwrap();
    drop(h);
    assert_eq!(get(fs, "f"), b"y");
    fs.remove_file(&p("f")).unwrap();
}

/// Attributes given at create time are applied.
pub fn create_with_attributes(fs: &dyn Vfs) {
    let mut o = rw(CreateMode::Create);
    o.dos_attributes = dos::HIDDEN | dos::ARCHIVE;
    let (h, _) = open(fs, "h", o);
    if fs.capabilities().persistent_dos_attributes {
        assert_eq!(
            h.metadata().unwrap().dos_attributes,
            dos::HIDDEN | dos::ARCHIVE
        );
    }
    h.write_at(b"still writable", 0).unwrap();
    let mut o = rw(CreateMode::Create);
    o.dos_attributes = dos::READONLY;
    let (h, _) = open(fs, "r", o);
    assert_ne!(h.metadata().unwrap().dos_attributes & dos::READONLY, 0);
    h.write_at(b"creator may write", 0).unwrap();
}

/// A handle keeps working after its name is removed (POSIX semantics; delete-on-close is the
/// object table's business).
pub fn handle_outlives_unlink(fs: &dyn Vfs) {
    put(fs, "f", b"data");
    let (h, _) = open(fs, "f", rw(CreateMode::Open));
    fs.remove_file(&p("f")).unwrap();
    assert_eq!(fs.stat(&p("f")), Err(VfsError::NotFound));
    assert_eq!(read_all(&*h), b"data");
    h.write_at(b"!", 4).unwrap();
    assert_eq!(read_all(&*h), b"data!");
    // The name is free again.
    let (_, o) = open(fs, "f", rw(CreateMode::Create));
    assert_eq!(o, OpenOutcome::Created);
}

/// The root opens as a directory and cannot be created, removed or renamed.
pub fn root(fs: &dyn Vfs) {
    let (h, o) = open(fs, "", OpenOptions::read());
    assert_eq!(o, OpenOutcome::Opened);
    assert!(h.metadata().unwrap().is_dir);
    let (h, _) = open(fs, "\\", OpenOptions::directory(CreateMode::OpenIf));
    assert!(h.metadata().unwrap().is_dir);
    assert_eq!(
        open_err(fs, "", OpenOptions::directory(CreateMode::Create)),
        VfsError::Exists
    );
    assert_eq!(
        open_err(fs, "", OpenOptions::read().dir_mode(DirMode::FileOnly)),
        VfsError::IsADirectory
    );
    assert!(fs.stat(&VfsPath::root()).unwrap().is_dir);
    assert_eq!(
        fs.remove_file(&VfsPath::root()),
        Err(VfsError::IsADirectory)
    );
}

/// statfs gives sane numbers.
pub fn statfs(fs: &dyn Vfs) {
    let s = fs.statfs().unwrap();
    assert!(s.block_size > 0);
    assert!(s.total_blocks > 0);
    assert!(s.free_blocks <= s.total_blocks);
    assert!(s.avail_blocks <= s.free_blocks);
    assert!(s.max_name_len >= 255);
}

fn collect(h: &dyn VfsHandle) -> Vec<String> {
    let mut s = h.read_dir().unwrap();
    let mut names = Vec::new();
    while let Some(e) = s.next_entry() {
        names.push(e.unwrap().name);
    }
    names.sort();
    names
}

/// A listing shows files and directories with their metadata, never `.` or `..`.
pub fn readdir_small(fs: &dyn Vfs) {
    mkdir(fs, "d");
    put(fs, r"d\one", b"1");
    put(fs, r"d\two", b"22");
    mkdir(fs, r"d\sub");
    let (h, _) = open(fs, "d", OpenOptions::directory(CreateMode::Open));
    let mut s = h.read_dir().unwrap();
    let mut seen = Vec::new();
    while let Some(e) = s.next_entry() {
        let e = e.unwrap();
        let want = fs.stat(&p(&format!(r"d\{}", e.name))).unwrap();
        assert_eq!(e.metadata.identity(), want.identity(), "{}", e.name);
        assert_eq!(e.metadata.size, want.size);
        assert_eq!(e.metadata.is_dir, want.is_dir);
        seen.push(e.name);
    }
    seen.sort();
    assert_eq!(seen, ["one", "sub", "two"]);
    let (e, _) = open(fs, r"d\sub", OpenOptions::directory(CreateMode::Open));
    assert!(collect(&*e).is_empty());
}

/// 10,000 entries, each seen exactly once, streamed.
pub fn readdir_10000(fs: &dyn Vfs) {
    mkdir(fs, "big");
    for i in 0..10_000 {
        let (_, o) = open(fs, &format!(r"big\file{i:05}"), rw(CreateMode::Create));
        assert_eq!(o, OpenOutcome::Created);
    }
    let (h, _) = open(fs, "big", OpenOptions::directory(CreateMode::Open));
    let mut s = h.read_dir().unwrap();
    let mut seen = HashSet::new();
    let mut count = 0;
    while let Some(e) = s.next_entry() {
        let e = e.unwrap();
        assert_eq!(e.metadata.size, 0);
        assert!(seen.insert(e.name), "duplicate entry");
        count += 1;
    }
    assert_eq!(count, 10_000);
    for i in 0..10_000 {
        assert!(seen.contains(&format!("file{i:05}")));
    }
}

/// rewind starts over; two listings of one handle are independent.
pub fn readdir_rewind(fs: &dyn Vfs) {
    mkdir(fs, "d");
    for i in 0..50 {
        put(fs, &format!(r"d\f{i}"), b"");
    }
    let (h, _) = open(fs, "d", OpenOptions::directory(CreateMode::Open));
    let mut s = h.read_dir().unwrap();
    for _ in 0..20 {
        s.next_entry().unwrap().unwrap();
    }
    let mut other = h.read_dir().unwrap();
    let mut n_other = 0;
    while let Some(e) = other.next_entry() {
        e.unwrap();
        n_other += 1;
    }
    assert_eq!(n_other, 50);
    let mut rest = 0;
    while let Some(e) = s.next_entry() {
        e.unwrap();
        rest += 1;
    }
    assert_eq!(rest, 30);
    s.rewind().unwrap();
    let mut again = 0;
    while let Some(e) = s.next_entry() {
        e.unwrap();
        again += 1;
    }
    assert_eq!(again, 50);
}

fn names_in(fs: &dyn Vfs, dir: &str) -> Vec<String> {
    let (h, _) = open(fs, dir, OpenOptions::directory(CreateMode::Open));
    collect(&*h)
}

/// Case-insensitive, case-preserving lookup where the back-end says so; distinct names
/// otherwise.
pub fn case_insensitivity(fs: &dyn Vfs) {
    put(fs, "Readme.TXT", b"r");
    mkdir(fs, "SubDir");
    put(fs, r"SubDir\Inner.bin", b"i");
    if fs.capabilities().case_sensitive {
        assert_eq!(fs.stat(&p("readme.txt")), Err(VfsError::NotFound));
        assert_eq!(
            open_err(fs, r"subdir\Inner.bin", OpenOptions::read()),
            VfsError::PathNotFound
        );
        let (_, o) = open(fs, "README.TXT", rw(CreateMode::Create));
        assert_eq!(o, OpenOutcome::Created);
        assert_eq!(names_in(fs, ""), ["README.TXT", "Readme.TXT", "SubDir"]);
        return;
    }
    assert_eq!(get(fs, "readme.txt"), b"r");
    assert_eq!(get(fs, r"subdir\INNER.BIN"), b"i");
    assert_eq!(
        fs.stat(&p("README.TXT")).unwrap().identity(),
        fs.stat(&p("Readme.TXT")).unwrap().identity()
    );
    assert_eq!(
        open_err(fs, "README.txt", rw(CreateMode::Create)),
        VfsError::Exists
    );
    let (_, o) = open(fs, "readme.TXT", rw(CreateMode::OpenIf));
    assert_eq!(o, OpenOutcome::Opened);
    let (_, o) = open(fs, "SUBDIR", OpenOptions::directory(CreateMode::OpenIf));
    assert_eq!(o, OpenOutcome::Opened);
    assert_eq!(names_in(fs, ""), ["Readme.TXT", "SubDir"]);
    // A change of case only.
    fs.rename(&p("readme.txt"), &p("README.txt"), false)
        .unwrap();
    assert_eq!(names_in(fs, ""), ["README.txt", "SubDir"]);
    assert_eq!(get(fs, "readme.txt"), b"r");
    // Onto another file that matches ignoring case.
    put(fs, "other", b"o");
    assert_eq!(
        fs.rename(&p("other"), &p("readme.TXT"), false),
        Err(VfsError::Exists)
    );
    fs.rename(&p("OTHER"), &p("readme.TXT"), true).unwrap();
    assert_eq!(names_in(fs, ""), ["SubDir", "readme.TXT"]);
    assert_eq!(get(fs, "README.TXT"), b"o");
    // Into a directory named with another case; the new leaf keeps the client's spelling.
    fs.rename(&p("readme.txt"), &p(r"subdir\Moved"), false)
        .unwrap();
    assert_eq!(names_in(fs, "SubDir"), ["Inner.bin", "Moved"]);
    put(fs, r"SUBDIR\NewFile", b"n");
    assert_eq!(names_in(fs, "subdir"), ["Inner.bin", "Moved", "NewFile"]);
    assert_eq!(
        open_err(fs, r"NOPE\x", OpenOptions::read()),
        VfsError::PathNotFound
    );
    assert_eq!(
        open_err(fs, r"subdir\nope", OpenOptions::read()),
        VfsError::NotFound
    );
    // Removal by another spelling.
    fs.remove_file(&p(r"SUBDIR\inner.BIN")).unwrap();
    fs.remove_file(&p(r"SUBDIR\moved")).unwrap();
    fs.remove_file(&p(r"SUBDIR\newfile")).unwrap();
    fs.remove_dir(&p("subdir")).unwrap();
    assert!(names_in(fs, "").is_empty());
    // A name freed by a removal can be created again, in a new spelling.
    let (_, o) = open(fs, "SUBDIR", OpenOptions::directory(CreateMode::Create));
    assert_eq!(o, OpenOutcome::Created);
    assert_eq!(names_in(fs, ""), ["SUBDIR"]);
}

/// [`VfsHandle::copy_from`]: whole and partial copies, extension of the destination, a
/// short copy at the end of the source, access enforced on both ends.
pub fn copy_between_files(fs: &dyn Vfs) {
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    put(fs, "src", &data);
    let (src, _) = open(fs, "src", OpenOptions::read());
    let (dst, _) = open(fs, "dst", rw(CreateMode::Create));
    assert_eq!(
        dst.copy_from(&*src, 0, 0, data.len() as u64).unwrap(),
        300_000
    );
    assert_eq!(read_all(&*dst), data);
    // Into the middle, past the end (the gap reads as zeros), and short at the source's end.
    assert_eq!(dst.copy_from(&*src, 10, 5, 20).unwrap(), 20);
    assert_eq!(dst.copy_from(&*src, 299_990, 400_000, 100).unwrap(), 10);
    let got = read_all(&*dst);
    assert_eq!(got.len(), 400_010);
    assert_eq!(&got[5..25], &data[10..30]);
    assert_eq!(&got[..5], &data[..5]);
    assert!(got[300_000..400_000].iter().all(|&b| b == 0));
    assert_eq!(&got[400_000..], &data[299_990..]);
    assert_eq!(dst.copy_from(&*src, 500_000, 0, 10).unwrap(), 0);
    assert_eq!(dst.copy_from(&*src, 0, 0, 0).unwrap(), 0);
    // No write access on the destination, no read access on the source.
    let (ro, _) = open(fs, "dst", OpenOptions::read());
    assert_eq!(ro.copy_from(&*src, 0, 0, 10), Err(VfsError::AccessDenied));
    let wo = OpenOptions {
        read: false,
        ..rw(CreateMode::Open)
    };
    let (src_wo, _) = open(fs, "src", wo);
    assert_eq!(
        dst.copy_from(&*src_wo, 0, 0, 10),
        Err(VfsError::AccessDenied)
    );
}

/// [`VfsHandle::copy_from`] with one file as source and destination: overlapping ranges in
/// both directions behave like memmove.
pub fn copy_within_one_file(fs: &dyn Vfs) {
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
    put(fs, "f", &data);
    let (h, _) = open(fs, "f", rw(CreateMode::Open));
    // Forward overlap, longer than one internal block.
    assert_eq!(h.copy_from(&*h, 0, 1000, 2_500_000).unwrap(), 2_500_000);
    let mut want = data.clone();
    want.copy_within(0..2_500_000, 1000);
    assert_eq!(read_all(&*h), want);
    // Backward overlap.
    assert_eq!(h.copy_from(&*h, 4096, 0, 1_000_000).unwrap(), 1_000_000);
    want.copy_within(4096..1_004_096, 0);
    assert_eq!(read_all(&*h), want);
    // Disjoint ranges of one file.
    assert_eq!(h.copy_from(&*h, 0, 2_000_000, 4096).unwrap(), 4096);
    want.copy_within(0..4096, 2_000_000);
    assert_eq!(read_all(&*h), want);
}

/// [`VfsHandle::set_sparse`], [`VfsHandle::zero_range`], [`VfsHandle::allocated_ranges`].
pub fn sparse_and_zero_data(fs: &dyn Vfs) {
    let data = vec![0xabu8; 1 << 20];
    put(fs, "s", &data);
    let (h, _) = open(fs, "s", rw(CreateMode::Open));
    if fs.capabilities().persistent_dos_attributes {
        assert_eq!(h.metadata().unwrap().dos_attributes & dos::SPARSE_FILE, 0);
        h.set_sparse(true).unwrap();
        assert_ne!(h.metadata().unwrap().dos_attributes & dos::SPARSE_FILE, 0);
        // A plain attribute change keeps it; only set_sparse clears it.
        h.set_dos_attributes(dos::HIDDEN).unwrap();
        let attrs = fs.stat(&p("s")).unwrap().dos_attributes;
        assert_eq!(
            attrs & (dos::SPARSE_FILE | dos::HIDDEN),
            dos::SPARSE_FILE | dos::HIDDEN
        );
        h.set_sparse(false).unwrap();
        assert_eq!(h.metadata().unwrap().dos_attributes & dos::SPARSE_FILE, 0);
        h.set_sparse(true).unwrap();
    }
    // Zero a middle part (beyond-EOF part ignored: the size stays).
    h.zero_range(256 * 1024, 512 * 1024, true).unwrap();
    h.zero_range((1 << 20) - 10, 1 << 30, true).unwrap();
    let got = read_all(&*h);
    assert_eq!(got.len(), 1 << 20);
    let mut want = data.clone();
    want[256 * 1024..768 * 1024].fill(0);
    want[(1 << 20) - 10..].fill(0);
    assert_eq!(got, want);
    // Every byte holding data is inside a reported range; ranges are ordered, disjoint and
    // inside the asked window clipped to the file.
    let ranges = h.allocated_ranges(0, u64::MAX / 2, 100).unwrap();
    assert!(!ranges.is_empty());
    let mut last_end = 0;
    for &(off, len) in &ranges {
        assert!(
            off >= last_end && len > 0 && off + len <= 1 << 20,
            "{ranges:?}"
        );
        last_end = off + len;
    }
    let covered = |at: u64| ranges.iter().any(|&(o, l)| at >= o && at < o + l);
    assert!(covered(0) && covered(256 * 1024 - 1) && covered(768 * 1024));
    // A window beyond the end of file has nothing; `max` caps the answer.
    assert!(h.allocated_ranges(2 << 20, 4096, 100).unwrap().is_empty());
    assert!(h.allocated_ranges(0, 1 << 20, 0).unwrap().is_empty());
    let (ro, _) = open(fs, "s", OpenOptions::read());
    assert_eq!(ro.zero_range(0, 10, false), Err(VfsError::AccessDenied));
}
