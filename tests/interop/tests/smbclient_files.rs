//! smbclient file operations: put, ls, get, mkdir, rmdir, del, on every dialect.
//! Gated by the crate feature `files` (off by default) until lanshare's file handlers land:
//! `cargo test -p lanshare-interop --features files --test smbclient_files`.
#![cfg(feature = "files")]

use lanshare_interop::clients::{SMBCLIENT_DIALECTS, smbclient, tail};
use lanshare_interop::{ServerOptions, TestServer};
use rand::{Rng, SeedableRng, rngs::StdRng};

fn start() -> TestServer {
    TestServer::start(ServerOptions::default()).expect("start the server under test")
}

fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..len).map(|_| rng.r#gen()).collect()
}

/// Runs `commands` with `-m dialect` and signing, and requires success.
fn ok(server: &TestServer, dialect: &str, commands: &str) -> String {
    let out = smbclient(
        server,
        &["-m", dialect, "--client-protection=sign"],
        commands,
    )
    .expect("run smbclient");
    assert!(
        out.success() && !out.combined().contains("NT_STATUS_"),
        "smbclient -m {dialect} -c {commands:?} against {}:\n{}\n--- server ---\n{}",
        server.target().name(),
        tail(&out.describe(), 40),
        server.diagnostics()
    );
    out.stdout
}

/// put then get round-trips the bytes, the file lands in the share directory, and ls lists
/// it with its size. A small file and one larger than a single 1 MiB read/write.
#[test]
fn put_ls_get_round_trip() {
    let server = start();
    let local = tempfile::tempdir().expect("local dir");
    for (i, dialect) in SMBCLIENT_DIALECTS.iter().enumerate() {
        for (size, label) in [(100 * 1024, "small"), (5 * 1024 * 1024 + 123, "large")] {
            let data = random_bytes(i as u64 * 10 + size as u64, size);
            let name = format!("{label}-{dialect}.bin");
            let src = local.path().join(&name);
            let back = local.path().join(format!("{name}.back"));
            std::fs::write(&src, &data).expect("write local file");

            ok(&server, dialect, &format!("put {} {name}", src.display()));
            let on_server =
                std::fs::read(server.share_dir().join(&name)).expect("file in the share dir");
            assert!(
                on_server == data,
                "{dialect}: server-side bytes of {name} differ"
            );

            let listing = ok(&server, dialect, "ls");
            let line = listing
                .lines()
                .find(|l| l.split_whitespace().next() == Some(name.as_str()))
                .unwrap_or_else(|| panic!("{dialect}: ls does not list {name}:\n{listing}"));
            assert!(
                line.split_whitespace().any(|w| w == size.to_string()),
                "{dialect}: ls shows the wrong size for {name}: {line}"
            );

            ok(&server, dialect, &format!("get {name} {}", back.display()));
            let got = std::fs::read(&back).expect("read fetched file");
            assert!(
                got == data,
                "{dialect}: get returned different bytes for {name}"
            );
        }
    }
}

#[test]
fn mkdir_rmdir_del() {
    let server = start();
    let local = tempfile::tempdir().expect("local dir");
    let src = local.path().join("f.txt");
    std::fs::write(&src, b"hello").expect("write local file");
    for dialect in SMBCLIENT_DIALECTS {
        let dir = format!("dir-{dialect}");
        ok(&server, dialect, &format!("mkdir {dir}"));
        assert!(
            server.share_dir().join(&dir).is_dir(),
            "{dialect}: mkdir made no directory"
        );
        ok(
            &server,
            dialect,
            &format!("put {} {dir}\\f.txt", src.display()),
        );
        assert_eq!(
            std::fs::read(server.share_dir().join(&dir).join("f.txt")).expect("file in subdir"),
            b"hello"
        );
        ok(&server, dialect, &format!("del {dir}\\f.txt"));
        assert!(
            !server.share_dir().join(&dir).join("f.txt").exists(),
            "{dialect}: del left the file"
        );
        ok(&server, dialect, &format!("rmdir {dir}"));
        assert!(
            !server.share_dir().join(&dir).exists(),
            "{dialect}: rmdir left the directory"
        );
    }
}

/// Operations on things that are not there fail with the expected status.
#[test]
fn missing_objects() {
    let server = start();
    let local = tempfile::tempdir().expect("local dir");
    let dest = local.path().join("x");
    let out = smbclient(
        &server,
        &["-m", "SMB3_11"],
        &format!("get nosuchfile {}", dest.display()),
    )
    .expect("run");
    assert!(
        out.combined().contains("NT_STATUS_OBJECT_NAME_NOT_FOUND"),
        "get of a missing file: {}",
        out.describe()
    );
    let out = smbclient(&server, &["-m", "SMB3_11"], "cd nosuchdir").expect("run");
    assert!(
        out.combined().contains("NT_STATUS_OBJECT_NAME_NOT_FOUND")
            || out.combined().contains("NT_STATUS_OBJECT_PATH_NOT_FOUND"),
        "cd to a missing directory: {}",
        out.describe()
    );
}
