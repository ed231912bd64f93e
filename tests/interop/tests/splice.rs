//! Large unsigned WRITEs to a share on tmpfs, whose data lanshare takes from the socket
//! straight into the file (`splice`): smbclient put/get round trips with the bytes checked;
//! signed and encrypted puts still correct and not taken that way; refused WRITEs (read-only
//! open, a range locked by another open, a DataOffset that lies) answered with their status while
//! the connection goes on (`py/splice.py`, smbprotocol). `Server::status().socket_writes`
//! tells which path the WRITEs took.
#![cfg(feature = "lanshare")]

use std::path::{Path, PathBuf};

use lanshare_interop::clients::{smbclient, smbprotocol_script, tail};
use lanshare_interop::{ServerOptions, Signing, TestServer};
use rand::{Rng, SeedableRng, rngs::StdRng};

/// A server (signing allowed, not required) whose share lives on tmpfs (`/dev/shm`).
fn start_on_tmpfs() -> (TestServer, tempfile::TempDir) {
    let shm = tempfile::Builder::new()
        .prefix("lanshare-splice-")
        .tempdir_in("/dev/shm")
        .expect("a directory on /dev/shm (tmpfs)");
    let path: PathBuf = shm.path().to_path_buf();
    let opts = ServerOptions {
        signing: Signing::Enabled,
        ..ServerOptions::default()
    }
    .lanshare(move |cfg| {
        for s in &mut cfg.shares {
            s.path = path.clone();
        }
    });
    let server = TestServer::start_lanshare(opts).expect("in-process lanshare starts");
    (server, shm)
}

fn socket_writes(server: &TestServer) -> u64 {
    server
        .lanshare_server()
        .expect("lanshare target")
        .status()
        .socket_writes
}

fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..len).map(|_| rng.r#gen()).collect()
}

/// `put` then `get` with `--client-protection=PROTECTION`, the bytes checked on the share and
/// back; returns how many WRITEs took the socket path meanwhile.
fn round_trip(server: &TestServer, share: &Path, protection: &str, seed: u64) -> u64 {
    let local = tempfile::tempdir().expect("local dir");
    let data = random_bytes(seed, 6 * 1024 * 1024 + 12_345);
    let name = format!("big-{protection}.bin");
    let src = local.path().join(&name);
    let back = local.path().join(format!("{name}.back"));
    std::fs::write(&src, &data).expect("write local file");
    let before = socket_writes(server);
    let cmds = format!(
        "put {} {name}; get {name} {}",
        src.display(),
        back.display()
    );
    let out = smbclient(
        server,
        &[
            "-m",
            "SMB3_11",
            &format!("--client-protection={protection}"),
        ],
        &cmds,
    )
    .expect("run smbclient");
    assert!(
        out.success() && !out.combined().contains("NT_STATUS_"),
        "smbclient {protection} put/get:\n{}",
        tail(&out.describe(), 40)
    );
    let after = socket_writes(server);
    let on_share = std::fs::read(share.join(&name)).expect("the file on the share");
    assert!(
        on_share == data,
        "{protection}: the file on the share differs ({} bytes, {} sent)",
        on_share.len(),
        data.len()
    );
    let got = std::fs::read(&back).expect("the file fetched back");
    assert!(got == data, "{protection}: get returned other bytes");
    after - before
}

#[test]
fn unsigned_put_is_spliced_and_round_trips() {
    let (server, shm) = start_on_tmpfs();
    let n = round_trip(&server, shm.path(), "off", 1);
    // smbclient writes up to the server's max_io_size (8 MiB) at once: one WRITE at least.
    assert!(
        n >= 1,
        "only {n} of the unsigned put's WRITEs took their data from the socket"
    );
}

#[test]
fn signed_and_encrypted_puts_are_not_spliced() {
    let (server, shm) = start_on_tmpfs();
    for (i, protection) in ["sign", "encrypt"].into_iter().enumerate() {
        let n = round_trip(&server, shm.path(), protection, 10 + i as u64);
        assert_eq!(
            n, 0,
            "{protection}: {n} WRITEs skipped the signature or the cipher"
        );
    }
}

#[test]
fn refused_writes_keep_the_connection() {
    let (server, _shm) = start_on_tmpfs();
    let before = socket_writes(&server);
    let out = smbprotocol_script(&server, "splice.py", &[]).expect("run py/splice.py");
    let verdict = out.stdout.lines().last().unwrap_or_default().to_string();
    assert!(
        out.success() && verdict == "PASS",
        "py/splice.py:\n{}\n--- server ---\n{}",
        out.describe(),
        server.diagnostics()
    );
    // The round trip's 3 WRITEs, the 2 refused ones and the one beside the lock.
    let n = socket_writes(&server) - before;
    assert!(
        n >= 6,
        "only {n} WRITEs took the socket path:\n{}",
        out.stdout
    );
}
