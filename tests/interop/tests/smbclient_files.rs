//! Everyday file operations through three clients nobody here wrote, on every dialect:
//! smbclient (put, get, ls with wildcards, mkdir, rmdir, del, rename, allinfo, setmode, many
//! small files with checksums), the Rust `smb` crate (create, write, read, query, rename,
//! delete, mkdir) and Python smbprotocol's high-level `smbclient` module (the same basics).
//!
//! Proven against Samba: `LANSHARE_INTEROP_TARGET=samba cargo test -p lanshare-interop
//! --test smbclient_files`. A 1 GiB round trip is `#[ignore]`d (minutes in a debug build):
//! `cargo test --release -p lanshare-interop --test smbclient_files -- --ignored`.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use lanshare_interop::clients::{SMBCLIENT_DIALECTS, smbclient, tail};
use lanshare_interop::{ServerOptions, TestServer, process};
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

/// Runs `commands` and returns everything smbclient printed, success or not.
fn run(server: &TestServer, dialect: &str, commands: &str) -> String {
    smbclient(
        server,
        &["-m", dialect, "--client-protection=sign"],
        commands,
    )
    .expect("run smbclient")
    .combined()
}

/// The names an `ls` listing shows (first column), without `.` and `..`.
fn listed(listing: &str) -> BTreeSet<String> {
    listing
        .lines()
        .filter(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| *n != "." && *n != "..")
        .map(str::to_string)
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
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
        // A directory with a file in it is not removed.
        let out = run(&server, dialect, &format!("rmdir {dir}"));
        assert!(
            out.contains("NT_STATUS_DIRECTORY_NOT_EMPTY"),
            "{dialect}: rmdir of a full directory: {out}"
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
    let out = run(&server, "SMB3_11", "get nodir\\nofile /dev/null");
    assert!(
        out.contains("NT_STATUS_OBJECT_PATH_NOT_FOUND"),
        "a missing parent directory: {out}"
    );
    let out = run(&server, "SMB3_11", "ls nosuch*");
    assert!(
        out.contains("NT_STATUS_NO_SUCH_FILE"),
        "a pattern that matches nothing: {out}"
    );
}

/// `ls` with `*`, `?` and a literal name; names match case-insensitively, as on Windows.
#[test]
fn ls_wildcards() {
    let server = start();
    for name in ["a1.txt", "a2.txt", "b.dat", "Mixed.TXT", "abc"] {
        std::fs::write(server.share_dir().join(name), name).expect("seed file");
    }
    std::fs::create_dir(server.share_dir().join("sub")).expect("seed dir");
    for dialect in SMBCLIENT_DIALECTS {
        let cases: [(&str, &[&str]); 6] = [
            (
                "ls",
                &["a1.txt", "a2.txt", "b.dat", "Mixed.TXT", "abc", "sub"],
            ),
            ("ls *.txt", &["a1.txt", "a2.txt", "Mixed.TXT"]),
            ("ls a?.txt", &["a1.txt", "a2.txt"]),
            ("ls b*", &["b.dat"]),
            ("ls MIXED.txt", &["Mixed.TXT"]),
            ("ls s*", &["sub"]),
        ];
        for (cmd, want) in cases {
            let got = listed(&ok(&server, dialect, cmd));
            assert_eq!(got, set(want), "{dialect}: {cmd}");
        }
    }
}

/// rename (across folders too), allinfo, setmode +r/-r: a read-only file cannot be deleted.
#[test]
fn rename_allinfo_setmode() {
    let server = start();
    let local = tempfile::tempdir().expect("local dir");
    let src = local.path().join("f.txt");
    std::fs::write(&src, b"some data").expect("write local file");
    // Made through the server, so that Samba's unprivileged user may write into it.
    ok(&server, "SMB3_11", "mkdir other");
    for dialect in SMBCLIENT_DIALECTS {
        let a = format!("a-{dialect}.txt");
        let b = format!("b-{dialect}.txt");
        ok(&server, dialect, &format!("put {} {a}", src.display()));
        ok(&server, dialect, &format!("rename {a} {b}"));
        assert!(!server.share_dir().join(&a).exists(), "{dialect}: old name");
        assert!(server.share_dir().join(&b).exists(), "{dialect}: new name");
        // Onto an existing name: refused without replace.
        ok(&server, dialect, &format!("put {} {a}", src.display()));
        let out = run(&server, dialect, &format!("rename {a} {b}"));
        assert!(
            out.contains("NT_STATUS_OBJECT_NAME_COLLISION"),
            "{dialect}: rename onto an existing file: {out}"
        );
        // Into another folder.
        ok(&server, dialect, &format!("rename {a} other\\{a}"));
        assert!(server.share_dir().join("other").join(&a).exists());

        let info = ok(&server, dialect, &format!("allinfo {b}"));
        for want in [
            "create_time:",
            "write_time:",
            "attributes: A",
            "::$DATA], 9 bytes",
        ] {
            assert!(
                info.contains(want),
                "{dialect}: allinfo lacks {want:?}:\n{info}"
            );
        }
        ok(&server, dialect, &format!("setmode {b} +r"));
        let info = ok(&server, dialect, &format!("allinfo {b}"));
        assert!(info.contains("attributes: RA"), "{dialect}: +r:\n{info}");
        let out = run(&server, dialect, &format!("del {b}"));
        assert!(
            out.contains("NT_STATUS_CANNOT_DELETE"),
            "{dialect}: del of a read-only file: {out}"
        );
        assert!(server.share_dir().join(&b).exists());
        ok(&server, dialect, &format!("setmode {b} -r"));
        ok(&server, dialect, &format!("del {b}"));
        assert!(!server.share_dir().join(&b).exists(), "{dialect}: del");
    }
}

/// Two hundred small files up with mput and back with mget, bytes compared.
#[test]
fn many_small_files() {
    let server = start();
    let up = tempfile::tempdir().expect("local dir");
    let down = tempfile::tempdir().expect("local dir");
    let mut files = Vec::new();
    for i in 0..200u64 {
        let name = format!("small{i:03}.bin");
        let data = random_bytes(i, (i as usize * 37) % 5000 + 1);
        std::fs::write(up.path().join(&name), &data).expect("write local file");
        files.push((name, data));
    }
    ok(
        &server,
        "SMB3_11",
        &format!(
            "mkdir many; cd many; lcd {}; prompt off; mput small*",
            up.path().display()
        ),
    );
    let listing = ok(&server, "SMB3_11", "cd many; ls");
    assert_eq!(listed(&listing).len(), files.len(), "ls lists every file");
    ok(
        &server,
        "SMB2_10",
        &format!(
            "cd many; lcd {}; prompt off; mget small*",
            down.path().display()
        ),
    );
    for (name, data) in &files {
        let got = std::fs::read(down.path().join(name)).expect("fetched file");
        assert!(got == *data, "{name} differs after the round trip");
        let on_server = std::fs::read(server.share_dir().join("many").join(name)).expect("share");
        assert!(on_server == *data, "{name} differs on the server");
    }
}

/// A folder of 5,000 entries spans several QUERY_DIRECTORY responses (the server caps the
/// first ones and reads the next batch ahead while the client handles the last): every name is
/// listed exactly once, a second listing (warm caches) gives the same, and so does a pattern.
#[test]
fn a_large_folder_lists_every_name_once() {
    let server = start();
    let dir = server.share_dir().join("big");
    std::fs::create_dir(&dir).expect("mkdir in the share");
    let mut expected = BTreeSet::new();
    for i in 0..5000u32 {
        let name = format!("entry{i:05}.dat");
        std::fs::write(dir.join(&name), i.to_le_bytes()).expect("create a file in the share");
        expected.insert(name);
    }
    let names = |listing: &str| -> Vec<String> {
        listing
            .lines()
            .filter(|l| l.starts_with("  "))
            .filter_map(|l| l.split_whitespace().next())
            .filter(|n| *n != "." && *n != "..")
            .map(str::to_string)
            .collect()
    };
    for round in 0..2 {
        let got = names(&ok(&server, "SMB3_11", "cd big; ls"));
        assert_eq!(
            got.len(),
            expected.len(),
            "round {round}: one line per entry"
        );
        let unique: BTreeSet<String> = got.into_iter().collect();
        assert!(unique == expected, "round {round}: the listed names differ");
    }
    let got = names(&ok(&server, "SMB3_11", "cd big; ls entry01*"));
    let want: BTreeSet<String> = expected
        .iter()
        .filter(|n| n.starts_with("entry01"))
        .cloned()
        .collect();
    assert_eq!(want.len(), 1000);
    assert_eq!(got.len(), want.len(), "one line per matching entry");
    assert!(
        got.into_iter().collect::<BTreeSet<_>>() == want,
        "pattern listing differs"
    );
}

/// 1 GiB up and down, compared by hash. `--ignored`: minutes in a debug build.
#[test]
#[ignore]
fn one_gib_round_trip() {
    let server = start();
    let local = tempfile::tempdir().expect("local dir");
    let src = local.path().join("big.bin");
    let back = local.path().join("big.back");
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&src).expect("create"));
        let mut rng = StdRng::seed_from_u64(42);
        let mut block = vec![0u8; 1 << 20];
        for _ in 0..1024 {
            rng.fill(&mut block[..]);
            f.write_all(&block).expect("write");
        }
    }
    let sum = |p: &std::path::Path| {
        let out = Command::new("sha256sum")
            .arg(p)
            .output()
            .expect("sha256sum");
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string()
    };
    let want = sum(&src);
    let bin = process::find_tool("smbclient", "smbclient").expect("smbclient");
    for cmd in [
        format!("put {} big.bin", src.display()),
        format!("get big.bin {}", back.display()),
    ] {
        let mut c = Command::new(&bin);
        c.args(["-s", "/dev/null"])
            .arg(format!("//{}/{}", server.host(), server.share()))
            .args(["-p", &server.port().to_string()])
            .args(["-U", &server.credentials()])
            .args(["-m", "SMB3_11", "--client-protection=sign", "-c", &cmd]);
        let out = process::run(&mut c, Duration::from_secs(900)).expect("run smbclient");
        assert!(out.success(), "{cmd}: {}", out.describe());
    }
    assert_eq!(
        sum(&server.share_dir().join("big.bin")),
        want,
        "on the server"
    );
    assert_eq!(sum(&back), want, "fetched back");
}

/// The Rust `smb` crate: create, write, read back, query, rename, delete, mkdir, rmdir.
mod rust_smb {
    use super::*;
    use smb::{
        Client, ClientConfig, ConnectionConfig, CreateOptions, FileAccessMask, FileAttributes,
        FileCreateArgs, FileDispositionInformation, FileRenameInformation, FileStandardInformation,
        UncPath,
    };

    fn client(server: &TestServer, dialect: smb::Dialect) -> Client {
        let mut connection = ConnectionConfig {
            port: Some(server.port()),
            timeout: Some(Duration::from_secs(20)),
            min_dialect: Some(dialect),
            max_dialect: Some(dialect),
            encryption_mode: smb::connection::EncryptionMode::Disabled,
            ..Default::default()
        };
        connection.auth_methods.kerberos = false;
        connection.auth_methods.ntlm = true;
        Client::new(ClientConfig {
            connection,
            dfs: false,
            ..Default::default()
        })
    }

    async fn basics(dialect: smb::Dialect) {
        let server = start();
        let c = client(&server, dialect);
        let share = UncPath::new(&server.host())
            .and_then(|u| u.with_share(server.share()))
            .expect("UNC");
        c.share_connect(&share, server.user(), server.password().to_string())
            .await
            .expect("share_connect");
        let data = random_bytes(7, 300_000);

        let f = c
            .create_file(
                &share.clone().with_path("r.bin"),
                &FileCreateArgs::make_overwrite(FileAttributes::new(), CreateOptions::new()),
            )
            .await
            .expect("create")
            .unwrap_file();
        let mut off = 0;
        for chunk in data.chunks(65536) {
            let n = f.write_block(chunk, off, None).await.expect("write");
            assert_eq!(n, chunk.len());
            off += n as u64;
        }
        f.close().await.expect("close");
        assert!(std::fs::read(server.share_dir().join("r.bin")).expect("on disk") == data);

        // The crate caches EOF from CREATE: reopen to read.
        let f = c
            .create_file(
                &share.clone().with_path("r.bin"),
                &FileCreateArgs::make_open_existing(FileAccessMask::new().with_generic_read(true)),
            )
            .await
            .expect("open")
            .unwrap_file();
        let std_info: FileStandardInformation = f.query_info().await.expect("query standard");
        assert_eq!(std_info.end_of_file, data.len() as u64);
        let mut back = vec![0u8; data.len()];
        let mut off = 0;
        while off < back.len() {
            let end = (off + 65536).min(back.len());
            let n = f
                .read_block(&mut back[off..end], off as u64, None, false)
                .await
                .expect("read");
            assert!(n > 0);
            off += n;
        }
        assert!(back == data, "{dialect:?}: read back differs");
        f.close().await.expect("close");

        // Rename, then delete by disposition.
        let f = c
            .create_file(
                &share.clone().with_path("r.bin"),
                &FileCreateArgs::make_open_existing(FileAccessMask::new().with_generic_all(true)),
            )
            .await
            .expect("open for rename")
            .unwrap_file();
        f.set_info(FileRenameInformation {
            replace_if_exists: false.into(),
            root_directory: 0,
            file_name: "s.bin".into(),
        })
        .await
        .expect("rename");
        f.set_info(FileDispositionInformation::default())
            .await
            .expect("delete");
        f.close().await.expect("close");
        assert!(!server.share_dir().join("r.bin").exists());
        assert!(!server.share_dir().join("s.bin").exists());

        // mkdir and rmdir.
        let d = c
            .create_file(
                &share.clone().with_path("newdir"),
                &FileCreateArgs::make_create_new(
                    FileAttributes::new(),
                    CreateOptions::new().with_directory_file(true),
                ),
            )
            .await
            .expect("mkdir")
            .unwrap_dir();
        assert!(server.share_dir().join("newdir").is_dir());
        d.set_info(FileDispositionInformation::default())
            .await
            .expect("rmdir");
        d.close().await.expect("close");
        assert!(!server.share_dir().join("newdir").exists());
        c.close().await.expect("close client");
    }

    macro_rules! dialect_tests {
        ($($name:ident => $dialect:expr;)*) => {$(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                basics($dialect).await;
            }
        )*};
    }

    dialect_tests! {
        files_smb2_0_2 => smb::Dialect::Smb0202;
        files_smb2_1 => smb::Dialect::Smb021;
        files_smb3_0 => smb::Dialect::Smb030;
        files_smb3_0_2 => smb::Dialect::Smb0302;
        files_smb3_1_1 => smb::Dialect::Smb0311;
    }
}

/// Python smbprotocol's high-level `smbclient` module: write, read, listdir, stat, rename,
/// remove, mkdir, rmdir.
#[test]
fn smbprotocol_basics() {
    let server = start();
    let py = process::require_smbprotocol().expect("python with smbprotocol");
    let script = r#"
import sys, smbclient
host, port, user, pw, share = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
smbclient.register_session(host, username=user, password=pw, port=port, require_signing=True)
root = rf"\\{host}\{share}"
kw = dict(port=port)
smbclient.mkdir(rf"{root}\pydir", **kw)
data = bytes(range(256)) * 4000
with smbclient.open_file(rf"{root}\pydir\f.bin", mode="wb", **kw) as f:
    f.write(data)
with smbclient.open_file(rf"{root}\pydir\f.bin", mode="rb", **kw) as f:
    assert f.read() == data, "read back differs"
assert smbclient.listdir(rf"{root}\pydir", **kw) == ["f.bin"], smbclient.listdir(rf"{root}\pydir", **kw)
assert smbclient.stat(rf"{root}\pydir\f.bin", **kw).st_size == len(data)
smbclient.rename(rf"{root}\pydir\f.bin", rf"{root}\pydir\g.bin", **kw)
assert smbclient.listdir(rf"{root}\pydir", **kw) == ["g.bin"]
smbclient.remove(rf"{root}\pydir\g.bin", **kw)
smbclient.rmdir(rf"{root}\pydir", **kw)
print("PASS")
"#;
    let mut cmd = Command::new(py);
    cmd.arg("-c")
        .arg(script)
        .arg(server.host())
        .arg(server.port().to_string())
        .arg(server.user())
        .arg(server.password())
        .arg(server.share());
    let out = process::run(&mut cmd, Duration::from_secs(120)).expect("run python");
    assert!(
        out.success() && out.stdout.contains("PASS"),
        "smbprotocol file basics against {}:\n{}\n--- server ---\n{}",
        server.target().name(),
        tail(&out.describe(), 40),
        server.diagnostics()
    );
    assert!(!server.share_dir().join("pydir").exists());
}
