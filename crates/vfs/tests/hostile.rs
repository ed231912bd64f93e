//! Hostile paths: nothing outside the share is read, written, listed or deleted.
//!
//! Layout of each fixture (a fresh one per name, so destructive attempts cannot hide later ones):
//! ```text
//! base/outside/             the sentinel tree, snapshotted before and compared after
//! base/share/               the share root, with symlinks planted by a hostile local user:
//!   link_root -> /              link_up -> ../outside        link_up2 -> ./../. (base)
//!   link_far -> ../.. (the temp dir's parent)
//!   link_abs_secret -> base/outside/sentinel-secret.txt      link_etc -> /etc
//!   link_ok -> sub (inside)     dangling -> nowhere          loop -> loop
//!   sub/link_dotdot -> .. (the root: inside)   sub/link_dotdot2 -> ../.. (out)
//! ```
//! Every name goes through parse (both syntaxes) and then stat, open for read, open-if for
//! write (and a write), directory create, listing, rename both ways, remove_file, remove_dir.
//! After each name: the sentinel tree is byte-for-byte unchanged, nothing new appeared beside
//! the share, no call returned the identity (dev, inode) of anything outside, no read returned
//! sentinel or /etc/passwd bytes, no listing showed a sentinel name.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashSet};
use std::os::unix::fs::{MetadataExt, symlink};
use std::path::{Path, PathBuf};

use lanshare_vfs::{
    CreateMode, FileIdentity, LocalFs, LocalFsOptions, OpenOptions, Vfs, VfsError, VfsHandle,
    VfsPath,
};

const MARKER: &[u8] = b"SENTINEL-7f3a-DO-NOT-LEAK";

struct Fixture {
    _tmp: tempfile::TempDir,
    base: PathBuf,
    share: PathBuf,
    outside: PathBuf,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().to_path_buf();
    let outside = base.join("outside");
    let share = base.join("share");
    std::fs::create_dir_all(outside.join("sentinel-dir/deeper")).unwrap();
    std::fs::write(outside.join("sentinel-secret.txt"), MARKER).unwrap();
    std::fs::write(outside.join("sentinel.txt"), MARKER).unwrap();
    std::fs::write(
        outside.join("sentinel-dir/deeper/sentinel-deep.txt"),
        MARKER,
    )
    .unwrap();
    std::fs::create_dir_all(share.join("sub")).unwrap();
    std::fs::write(share.join("sub/inner.txt"), b"inside").unwrap();
    std::fs::write(share.join("top.txt"), b"top").unwrap();
    symlink("/", share.join("link_root")).unwrap();
    symlink("../outside", share.join("link_up")).unwrap();
    symlink("./../.", share.join("link_up2")).unwrap();
    symlink("../..", share.join("link_far")).unwrap();
    symlink(
        outside.join("sentinel-secret.txt"),
        share.join("link_abs_secret"),
    )
    .unwrap();
    symlink("/etc", share.join("link_etc")).unwrap();
    symlink("sub", share.join("link_ok")).unwrap();
    symlink("nowhere", share.join("dangling")).unwrap();
    symlink("loop", share.join("loop")).unwrap();
    symlink("..", share.join("sub/link_dotdot")).unwrap();
    symlink("../..", share.join("sub/link_dotdot2")).unwrap();
    Fixture {
        _tmp: tmp,
        base,
        share,
        outside,
    }
}

/// Everything about the outside tree that an escape could change.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, (u32, u64, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let m = std::fs::symlink_metadata(e.path()).unwrap();
            let content = if m.is_file() {
                std::fs::read(e.path()).unwrap()
            } else {
                Vec::new()
            };
            if m.is_dir() {
                stack.push(e.path());
            }
            out.insert(e.path(), (m.mode(), m.len(), content));
        }
    }
    out
}

fn forbidden_identities(fx: &Fixture) -> HashSet<FileIdentity> {
    let mut ids = HashSet::new();
    let mut add = |p: &Path| {
        if let Ok(m) = std::fs::metadata(p) {
            ids.insert(FileIdentity {
                dev: m.dev(),
                ino: m.ino(),
            });
        }
    };
    add(&fx.base);
    add(&fx.outside);
    for p in snapshot(&fx.outside).keys() {
        add(p);
    }
    for p in ["/", "/etc", "/etc/passwd", "/tmp"] {
        add(Path::new(p));
    }
    ids
}

fn sentinel_names(fx: &Fixture) -> HashSet<String> {
    let mut names: HashSet<String> = snapshot(&fx.outside)
        .keys()
        .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
        .collect();
    names.insert("outside".into());
    names.insert("passwd".into());
    names
}

struct Checker {
    forbidden: HashSet<FileIdentity>,
    sentinel_names: HashSet<String>,
    passwd_head: Vec<u8>,
}

impl Checker {
    fn identity(&self, what: &str, id: FileIdentity) {
        assert!(
            !self.forbidden.contains(&id),
            "{what}: reached an outside object {id:?}"
        );
    }

    fn data(&self, what: &str, data: &[u8]) {
        assert!(
            !data.windows(MARKER.len()).any(|w| w == MARKER),
            "{what}: read sentinel bytes"
        );
        if self.passwd_head.len() >= 8 {
            assert!(
                !data
                    .windows(self.passwd_head.len())
                    .any(|w| w == self.passwd_head.as_slice()),
                "{what}: read /etc/passwd"
            );
        }
    }

    fn handle(&self, what: &str, h: &dyn VfsHandle) {
        if let Ok(m) = h.metadata() {
            self.identity(what, m.identity());
        }
        let mut buf = vec![0u8; 4096];
        if let Ok(n) = h.read_at(&mut buf, 0) {
            self.data(what, &buf[..n]);
        }
        if let Ok(mut s) = h.read_dir() {
            let mut n = 0;
            while let Some(Ok(e)) = s.next_entry() {
                assert!(
                    !self.sentinel_names.contains(&e.name),
                    "{what}: listed outside entry {}",
                    e.name
                );
                self.identity(what, e.metadata.identity());
                n += 1;
                if n > 10_000 {
                    break;
                }
            }
        }
    }
}

/// Every operation on one parsed hostile path.
fn attack(fs: &dyn Vfs, c: &Checker, name: &str, path: &VfsPath) {
    let what = |op: &str| format!("{name:?} {op}");
    if let Ok(m) = fs.stat(path) {
        c.identity(&what("stat"), m.identity());
    }
    if let Ok((h, _)) = fs.open(path, &OpenOptions::read()) {
        c.handle(&what("open"), &*h);
    }
    if let Ok((h, _)) = fs.open(path, &OpenOptions::read_write(CreateMode::OpenIf)) {
        c.handle(&what("open-if rw"), &*h);
        let _ = h.write_at(b"PWNED", 0);
        let _ = h.set_len(1);
    }
    if let Ok((h, _)) = fs.open(path, &OpenOptions::read_write(CreateMode::Supersede)) {
        c.handle(&what("supersede"), &*h);
    }
    if let Ok((h, _)) = fs.open(path, &OpenOptions::directory(CreateMode::OpenIf)) {
        c.handle(&what("dir open-if"), &*h);
        let _ = h.set_dos_attributes(2);
        let _ = h.set_times(lanshare_vfs::SetTimes {
            modified: Some(std::time::UNIX_EPOCH),
            ..Default::default()
        });
    }
    let benign = VfsPath::parse("benign.txt").unwrap();
    let _ = fs.open(&benign, &OpenOptions::read_write(CreateMode::OverwriteIf));
    let _ = fs.rename(&benign, path, true);
    let _ = fs.rename(path, &VfsPath::parse("moved-here").unwrap(), true);
    let _ = fs.remove_file(path);
    let _ = fs.remove_dir(path);
    // Whatever was moved in, the share's own listing shows nothing from outside.
    if let Ok((root, _)) = fs.open(&VfsPath::root(), &OpenOptions::read()) {
        c.handle(&what("root listing"), &*root);
    }
    if let Ok((h, _)) = fs.open(&VfsPath::parse("moved-here").unwrap(), &OpenOptions::read()) {
        c.handle(&what("moved"), &*h);
    }
}

fn hostile_names() -> Vec<String> {
    let mut v: Vec<String> = [
        r"..\..\etc\passwd",
        r"..",
        r".",
        r"\..\outside\sentinel.txt",
        r"..\outside",
        "/etc/passwd",
        r"\\?\C:\x",
        r"\\.\pipe\x",
        r"\\?\UNC\server\share",
        r"C:\Windows\win.ini",
        r"C:..\outside",
        "foo::$DATA",
        "foo:bar",
        r"sub\inner.txt::$DATA",
        "CON",
        "NUL",
        "COM1.txt",
        "a\0b",
        "\0",
        r"...",
        r"....\....",
        r"sub\..\..\outside",
        r"sub\.\inner.txt",
        r"link_root\etc\passwd",
        r"link_root",
        r"link_root\tmp",
        r"link_up\sentinel.txt",
        r"link_up",
        r"link_up\sentinel-dir\deeper\sentinel-deep.txt",
        r"link_up2\outside\sentinel.txt",
        r"link_up2",
        r"link_far",
        r"link_abs_secret",
        r"link_etc\passwd",
        r"link_etc",
        r"sub\link_dotdot2\outside\sentinel.txt",
        r"sub\link_dotdot2",
        r"sub\link_dotdot\link_up\sentinel.txt",
        r"LINK_UP\SENTINEL.TXT",
        r"Link_Root\ETC\PASSWD",
        r"dangling",
        r"loop",
        r"loop\x",
        r"%2e%2e\outside",
        r"..%5c..%5coutside",
        "a/../../outside",
        r"sub\",
        " ..",
        ".. ",
        "\u{2215}etc\u{2215}passwd",
        "\u{FF0E}\u{FF0E}",
        "x\r\ny",
        "foo\u{7f}",
        "*",
        "sub\\*",
        "a\"b",
        "<>",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push("a".repeat(300));
    v.push(format!("{}\\x", "b".repeat(255)));
    v.push(vec!["d"; 17_000].join("\\"));
    v
}

fn run_suite(opts: LocalFsOptions) {
    let names = hostile_names();
    assert!(names.len() >= 30);
    let passwd_head: Vec<u8> = std::fs::read("/etc/passwd")
        .map(|d| d.into_iter().take(16).collect())
        .unwrap_or_default();
    let mut parsed = 0;
    for name in &names {
        let fx = fixture();
        let before = snapshot(&fx.outside);
        let checker = Checker {
            forbidden: forbidden_identities(&fx),
            sentinel_names: sentinel_names(&fx),
            passwd_head: passwd_head.clone(),
        };
        let fs = LocalFs::with_options(&fx.share, opts.clone()).unwrap();
        for p in [VfsPath::parse(name), VfsPath::parse_slash(name)]
            .into_iter()
            .flatten()
        {
            parsed += 1;
            attack(&fs, &checker, name, &p);
        }
        assert_eq!(
            snapshot(&fx.outside),
            before,
            "{name:?}: sentinel tree changed"
        );
        let beside: Vec<_> = std::fs::read_dir(&fx.base)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            beside.len(),
            2,
            "{name:?}: something appeared beside the share"
        );
    }
    // The suite is not vacuous: many names parse and reach storage.
    assert!(parsed > 25, "{parsed}");
}

#[test]
fn hostile_names_case_insensitive() {
    run_suite(LocalFsOptions::default());
}

#[test]
fn hostile_names_case_sensitive() {
    run_suite(LocalFsOptions {
        case_insensitive: false,
        ..Default::default()
    });
}

/// The parse layer refuses the classic escapes outright, before any storage call.
#[test]
fn classic_escapes_do_not_parse() {
    for s in [
        r"..\..\etc\passwd",
        "..",
        ".",
        r"\\?\C:\x",
        r"sub\..\..\outside",
        "a\0b",
    ] {
        assert_eq!(VfsPath::parse(s), Err(VfsError::InvalidName), "{s:?}");
    }
    assert_eq!(VfsPath::parse("/etc/passwd"), Err(VfsError::InvalidName));
    assert_eq!(VfsPath::parse_slash("/../etc"), Err(VfsError::InvalidName));
    assert_eq!(
        VfsPath::parse("foo::$DATA"),
        Err(VfsError::StreamNotSupported)
    );
    assert_eq!(VfsPath::parse(&"a".repeat(300)), Err(VfsError::NameTooLong));
}

/// Symlinks that lead out are refused with AccessDenied (not followed), while links that stay
/// inside work.
#[test]
fn escaping_symlinks_denied_inside_links_work() {
    let fx = fixture();
    let fs = LocalFs::new(&fx.share).unwrap();
    let p = |s: &str| VfsPath::parse(s).unwrap();
    for s in [
        r"link_up\sentinel.txt",
        "link_abs_secret",
        r"link_root\etc\passwd",
        r"sub\link_dotdot2\outside\sentinel.txt",
    ] {
        let e = fs.open(&p(s), &OpenOptions::read()).err();
        assert_eq!(e, Some(VfsError::AccessDenied), "{s}");
        assert_eq!(fs.stat(&p(s)).err(), Some(VfsError::AccessDenied), "{s}");
    }
    let (h, _) = fs
        .open(&p(r"link_ok\inner.txt"), &OpenOptions::read())
        .unwrap();
    let mut buf = [0u8; 6];
    assert_eq!(h.read_at(&mut buf, 0).unwrap(), 6);
    assert_eq!(&buf, b"inside");
    let (h, _) = fs
        .open(&p(r"sub\link_dotdot\top.txt"), &OpenOptions::read())
        .unwrap();
    assert_eq!(h.read_at(&mut buf, 0).unwrap(), 3);
    // Removing an escaping link removes the link, never its target.
    fs.remove_file(&p("link_abs_secret")).unwrap();
    assert!(fx.outside.join("sentinel-secret.txt").exists());
    // Listing shows escaping links as unresolved symlinks, with their own (inside) identity.
    let (root, _) = fs.open(&VfsPath::root(), &OpenOptions::read()).unwrap();
    let mut s = root.read_dir().unwrap();
    let mut seen = BTreeMap::new();
    while let Some(e) = s.next_entry() {
        let e = e.unwrap();
        seen.insert(e.name, e.metadata);
    }
    assert!(seen["link_up"].is_symlink);
    assert!(seen["link_root"].is_symlink);
    assert!(!seen["link_ok"].is_symlink && seen["link_ok"].is_dir);
}

/// A local user swaps a directory for a symlink to the outside after the server has looked at
/// it (and cached its listing): the next open through it still cannot leave the share.
#[test]
fn directory_swapped_for_symlink_after_lookup() {
    let fx = fixture();
    let fs = LocalFs::new(&fx.share).unwrap();
    let p = |s: &str| VfsPath::parse(s).unwrap();
    std::fs::create_dir(fx.share.join("victim")).unwrap();
    std::fs::write(fx.share.join("victim/sentinel.txt"), b"harmless").unwrap();
    // Warm every path: exact, case-insensitive (fills the cache), a listing.
    assert!(fs.stat(&p(r"victim\sentinel.txt")).is_ok());
    assert!(fs.stat(&p(r"VICTIM\SENTINEL.TXT")).is_ok());
    let (h, _) = fs.open(&p("victim"), &OpenOptions::read()).unwrap();
    drop(h);
    std::fs::remove_file(fx.share.join("victim/sentinel.txt")).unwrap();
    std::fs::remove_dir(fx.share.join("victim")).unwrap();
    symlink(&fx.outside, fx.share.join("victim")).unwrap();
    let before = snapshot(&fx.outside);
    for s in [
        r"victim\sentinel.txt",
        r"VICTIM\SENTINEL.TXT",
        r"Victim\sentinel.TXT",
    ] {
        assert_eq!(
            fs.open(&p(s), &OpenOptions::read()).err(),
            Some(VfsError::AccessDenied),
            "{s}"
        );
        assert!(
            fs.open(&p(s), &OpenOptions::read_write(CreateMode::OverwriteIf))
                .is_err()
        );
        assert!(fs.remove_file(&p(s)).is_err());
        assert!(fs.rename(&p(s), &p("stolen"), true).is_err());
    }
    assert_eq!(snapshot(&fx.outside), before);
}

/// A deliberately unconfined back-end (paths joined onto the root, symlinks followed by the
/// ambient filesystem), to prove that the checks above do catch an escape.
struct NaiveFs(PathBuf);

struct NaiveHandle(std::fs::File);

fn ident(m: &std::fs::Metadata) -> lanshare_vfs::Metadata {
    let t = std::time::UNIX_EPOCH;
    lanshare_vfs::Metadata {
        file_id: m.ino(),
        dev: m.dev(),
        size: m.len(),
        alloc_size: 0,
        is_dir: m.is_dir(),
        is_symlink: false,
        nlink: m.nlink(),
        mode: m.mode(),
        uid: 0,
        gid: 0,
        created: t,
        accessed: t,
        modified: t,
        changed: t,
        dos_attributes: 0,
    }
}

impl Vfs for NaiveFs {
    fn open(
        &self,
        path: &VfsPath,
        _opts: &OpenOptions,
    ) -> Result<(Box<dyn VfsHandle>, lanshare_vfs::OpenOutcome), VfsError> {
        let f = std::fs::File::open(self.0.join(path.to_string()))
            .map_err(|e| VfsError::from_io(e, "open"))?;
        Ok((Box::new(NaiveHandle(f)), lanshare_vfs::OpenOutcome::Opened))
    }
    fn stat(&self, path: &VfsPath) -> Result<lanshare_vfs::Metadata, VfsError> {
        let m = std::fs::metadata(self.0.join(path.to_string()))
            .map_err(|e| VfsError::from_io(e, "stat"))?;
        Ok(ident(&m))
    }
    fn rename(&self, _: &VfsPath, _: &VfsPath, _: bool) -> Result<(), VfsError> {
        Err(VfsError::NotSupported)
    }
    fn remove_file(&self, _: &VfsPath) -> Result<(), VfsError> {
        Err(VfsError::NotSupported)
    }
    fn remove_dir(&self, _: &VfsPath) -> Result<(), VfsError> {
        Err(VfsError::NotSupported)
    }
    fn statfs(&self) -> Result<lanshare_vfs::FsStats, VfsError> {
        Err(VfsError::NotSupported)
    }
    fn capabilities(&self) -> lanshare_vfs::Capabilities {
        lanshare_vfs::Capabilities {
            case_sensitive: true,
            case_preserving: true,
            persistent_dos_attributes: false,
            settable_creation_time: false,
            hard_links: true,
            max_name_len: 255,
        }
    }
}

impl VfsHandle for NaiveHandle {
    fn metadata(&self) -> Result<lanshare_vfs::Metadata, VfsError> {
        Ok(ident(&self.0.metadata().unwrap()))
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize, VfsError> {
        use std::os::unix::fs::FileExt;
        self.0
            .read_at(buf, offset)
            .map_err(|e| VfsError::from_io(e, "read"))
    }
    fn write_at(&self, _: &[u8], _: u64) -> Result<usize, VfsError> {
        Err(VfsError::NotSupported)
    }
    fn set_len(&self, _: u64) -> Result<(), VfsError> {
        Err(VfsError::NotSupported)
    }
    fn sync(&self) -> Result<(), VfsError> {
        Ok(())
    }
    fn set_times(&self, _: lanshare_vfs::SetTimes) -> Result<(), VfsError> {
        Err(VfsError::NotSupported)
    }
    fn set_dos_attributes(&self, _: u32) -> Result<(), VfsError> {
        Err(VfsError::NotSupported)
    }
    fn read_dir(&self) -> Result<Box<dyn lanshare_vfs::DirStream>, VfsError> {
        Err(VfsError::NotSupported)
    }
}

#[test]
fn the_checks_catch_an_unconfined_backend() {
    let fx = fixture();
    let checker = Checker {
        forbidden: forbidden_identities(&fx),
        sentinel_names: sentinel_names(&fx),
        passwd_head: Vec::new(),
    };
    let naive = NaiveFs(fx.share.clone());
    for s in [
        r"link_up\sentinel.txt",
        "link_abs_secret",
        r"link_up2\outside",
        "link_far",
    ] {
        let p = VfsPath::parse(s).unwrap();
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            attack(&naive, &checker, s, &p);
        }));
        assert!(caught.is_err(), "{s}: the naive back-end escaped unnoticed");
    }
}
