//! The engine's file handlers driven by smbclient over TCP, for what the interop harness cannot
//! set up: a read-only share next to a writable one, and a 100,000-entry folder.
//!
//! Needs `smbclient` (Debian package `smbclient`); a missing binary fails the test with that
//! hint rather than skipping it.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use smb_engine::{EngineConfig, Server, ShareConfig};

const USER: &str = "alice";
const PASSWORD: &str = "Secret.123";

struct Running {
    addr: SocketAddr,
    server: Server,
    _rt: std::thread::JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.server.shutdown();
    }
}

/// Serves `rw` as `share` and `ro` as the read-only share `ro` on a free loopback port.
fn serve(rw: &Path, ro: &Path) -> Running {
    let mut ro_share = ShareConfig::new("ro", ro);
    ro_share.read_only = true;
    let cfg = EngineConfig::new("TEST")
        .with_share(ShareConfig::new("share", rw))
        .with_share(ro_share);
    let users = Arc::new(lanshare_auth::MemoryUserDb::new().with_user(USER, PASSWORD));
    let server = Server::new(cfg, users).expect("server");
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    std_listener.set_nonblocking(true).expect("nonblocking");
    let addr = std_listener.local_addr().expect("addr");
    let s = server.clone();
    let rt = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(std_listener).expect("listener");
            let _ = s.serve(listener).await;
        });
    });
    Running {
        addr,
        server,
        _rt: rt,
    }
}

/// smbclient's combined output and whether it exited 0 (signed).
fn smbclient(r: &Running, share: &str, dialect: &str, commands: &str) -> (bool, String) {
    smbclient_with(r, share, dialect, "sign", commands)
}

/// smbclient with `--client-protection=PROTECTION` (off, sign, encrypt).
fn smbclient_with(
    r: &Running,
    share: &str,
    dialect: &str,
    protection: &str,
    commands: &str,
) -> (bool, String) {
    let out = Command::new("smbclient")
        .args(["-s", "/dev/null"])
        .arg(format!("//127.0.0.1/{share}"))
        .args(["-p", &r.addr.port().to_string()])
        .args(["-U", &format!("{USER}%{PASSWORD}")])
        .args(["-m", dialect])
        .arg(format!("--client-protection={protection}"))
        .args(["-t", "120"])
        .args(["-c", commands])
        .output()
        .expect("smbclient not found: install the Debian package `smbclient`");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success() && !text.contains("NT_STATUS_"), text)
}

#[test]
fn read_only_share_refuses_every_change() {
    let rw = tempfile::tempdir().expect("dir");
    let ro = tempfile::tempdir().expect("dir");
    std::fs::write(ro.path().join("keep.txt"), b"keep me").expect("seed");
    std::fs::create_dir(ro.path().join("sub")).expect("seed");
    let local = tempfile::tempdir().expect("dir");
    let src = local.path().join("up.txt");
    std::fs::write(&src, b"data").expect("local");
    let back = local.path().join("back.txt");
    let r = serve(rw.path(), ro.path());
    for dialect in ["SMB2_02", "SMB2_10", "SMB3_00", "SMB3_02", "SMB3_11"] {
        // Reading works.
        let (ok, out) = smbclient(
            &r,
            "ro",
            dialect,
            &format!("ls; get keep.txt {}", back.display()),
        );
        assert!(ok, "{dialect}: reading a read-only share: {out}");
        assert!(out.contains("keep.txt") && out.contains("sub"), "{out}");
        assert_eq!(std::fs::read(&back).expect("fetched"), b"keep me");
        // Every change is STATUS_ACCESS_DENIED, and nothing changes on disk.
        for cmd in [
            format!("put {} new.txt", src.display()),
            format!("put {} keep.txt", src.display()),
            "mkdir newdir".to_string(),
            "del keep.txt".to_string(),
            "rmdir sub".to_string(),
            "rename keep.txt other.txt".to_string(),
            "setmode keep.txt +r".to_string(),
        ] {
            let (ok, out) = smbclient(&r, "ro", dialect, &cmd);
            assert!(
                !ok && out.contains("NT_STATUS_ACCESS_DENIED"),
                "{dialect}: `{cmd}` on a read-only share: {out}"
            );
        }
        assert_eq!(
            std::fs::read(ro.path().join("keep.txt")).expect("still there"),
            b"keep me"
        );
        assert!(!ro.path().join("new.txt").exists());
        assert!(!ro.path().join("newdir").exists());
        assert!(!ro.path().join("other.txt").exists());
        assert!(ro.path().join("sub").is_dir());
        // The writable share next to it takes the same changes.
        let (ok, out) = smbclient(
            &r,
            "share",
            dialect,
            &format!("put {} new-{dialect}.txt; mkdir d-{dialect}", src.display()),
        );
        assert!(ok, "{dialect}: writable share: {out}");
    }
}

/// 100,000 entries list completely, in pages, through the streaming cursor.
#[test]
fn hundred_thousand_entries_list_completely() {
    let rw = tempfile::tempdir().expect("dir");
    let ro = tempfile::tempdir().expect("dir");
    let big = rw.path().join("big");
    std::fs::create_dir(&big).expect("dir");
    for i in 0..100_000 {
        std::fs::File::create(big.join(format!("entry-{i:06}.dat"))).expect("create entry");
    }
    let r = serve(rw.path(), ro.path());
    let start = std::time::Instant::now();
    let (ok, out) = smbclient(&r, "share", "SMB3_11", "cd big; ls");
    assert!(ok, "ls of 100,000 entries: {}", &out[..out.len().min(2000)]);
    let names: std::collections::HashSet<&str> = out
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with("entry-"))
        .collect();
    assert_eq!(names.len(), 100_000, "every entry listed exactly once");
    // A pattern narrows the same listing server-side.
    let (ok, out) = smbclient(&r, "share", "SMB3_11", "cd big; ls entry-09999?.dat");
    assert!(ok, "{out}");
    let n = out.lines().filter(|l| l.contains("entry-09999")).count();
    assert_eq!(n, 10, "{out}");
    assert!(
        start.elapsed() < Duration::from_secs(300),
        "listing took {:?}",
        start.elapsed()
    );
}

/// Files on tmpfs are read with sendfile when the READ is neither signed nor encrypted (the
/// data goes from the page cache to the socket after the response header), and through a
/// buffer otherwise: every way gives the file's bytes, for sizes around the 64 KiB threshold
/// and READs that end at end of file.
#[test]
fn tmpfs_reads_give_the_file_signed_or_not() {
    let rw = tempfile::Builder::new()
        .prefix("lanshare-sendfile-")
        .tempdir_in("/dev/shm")
        .expect("a directory on /dev/shm (tmpfs)");
    let ro = tempfile::tempdir().expect("dir");
    let local = tempfile::tempdir().expect("dir");
    let sizes = [
        0usize,
        1,
        65_535,
        65_536,
        65_537,
        1_048_576 + 3,
        9 * 1_048_576 + 12_345,
    ];
    let mut files = Vec::new();
    for (i, n) in sizes.iter().enumerate() {
        let data: Vec<u8> = (0..*n).map(|k| (k * 31 + k / 4093 + i) as u8).collect();
        let name = format!("f{i}.bin");
        std::fs::write(rw.path().join(&name), &data).expect("seed");
        files.push((name, data));
    }
    let r = serve(rw.path(), ro.path());
    for (dialect, protection) in [
        ("SMB3_11", "off"),
        ("SMB2_02", "off"),
        ("SMB3_11", "sign"),
        ("SMB3_11", "encrypt"),
    ] {
        let cmds: Vec<String> = files
            .iter()
            .map(|(name, _)| {
                let back = local.path().join(format!("{dialect}-{protection}-{name}"));
                format!("get {name} {}", back.display())
            })
            .collect();
        let (ok, out) = smbclient_with(&r, "share", dialect, protection, &cmds.join("; "));
        assert!(ok, "{dialect} {protection}: {out}");
        for (name, data) in &files {
            let back = local.path().join(format!("{dialect}-{protection}-{name}"));
            let got = std::fs::read(&back).expect("fetched");
            assert!(
                got == *data,
                "{dialect} {protection}: {name}: {} bytes back for {}, or different bytes",
                got.len(),
                data.len()
            );
        }
    }
}
