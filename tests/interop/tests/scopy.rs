//! Server-side copy with smbclient's `scopy` (FSCTL_SRV_REQUEST_RESUME_KEY then
//! FSCTL_SRV_COPYCHUNK_WRITE, 16 MiB per request): the copy is identical to its source
//! (SHA-256 of both files on disk) and its data never crossed the connection. smbclient
//! talks to the server through a counting TCP relay; every byte either way is counted, and
//! the total must be a tiny fraction of the file.
//!
//! The size comes from `LANSHARE_SCOPY_BYTES` (default 256 MiB, what CI runs); the issue's
//! 1 GiB: `LANSHARE_SCOPY_BYTES=1073741824 cargo test -p lanshare-interop --test scopy`.
//! Proven against Samba: `LANSHARE_INTEROP_TARGET=samba cargo test -p lanshare-interop
//! --test scopy`.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use lanshare_interop::clients::tail;
use lanshare_interop::process::{self, find_tool};
use lanshare_interop::{ServerOptions, TestServer};

const DEFAULT_BYTES: u64 = 256 << 20;

/// Forwards every connection made to the returned address to `target`, counting the bytes
/// relayed in both directions.
fn counting_relay(target: SocketAddr) -> (SocketAddr, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the relay");
    let addr = listener.local_addr().expect("relay address");
    let count = Arc::new(AtomicU64::new(0));
    let total = count.clone();
    thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { break };
            let Ok(server) = TcpStream::connect(target) else {
                continue;
            };
            for (mut from, mut to) in [
                (
                    client.try_clone().expect("clone"),
                    server.try_clone().expect("clone"),
                ),
                (server, client),
            ] {
                let total = total.clone();
                thread::spawn(move || {
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        match from.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                total.fetch_add(n as u64, Ordering::Relaxed);
                                if to.write_all(&buf[..n]).is_err() {
                                    break;
                                }
                            }
                        }
                    }
                    let _ = to.shutdown(Shutdown::Write);
                });
            }
        }
    });
    (addr, count)
}

/// Writes `len` bytes of a pattern no two MiB of which are equal (a random MiB with the
/// block number stamped into it), straight into the share directory.
fn make_source(path: &Path, len: u64) {
    use rand::{RngCore, SeedableRng, rngs::StdRng};
    let mut block = vec![0u8; 1 << 20];
    StdRng::seed_from_u64(7).fill_bytes(&mut block);
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("create source"));
    let mut left = len;
    let mut n = 0u64;
    while left > 0 {
        block[..8].copy_from_slice(&n.to_le_bytes());
        let take = left.min(block.len() as u64) as usize;
        f.write_all(&block[..take]).expect("write source");
        left -= take as u64;
        n += 1;
    }
    f.flush().expect("flush source");
}

fn sha256(path: &Path) -> String {
    let bin = find_tool("sha256sum", "the Debian package `coreutils`").expect("sha256sum");
    let out =
        process::run(Command::new(bin).arg(path), Duration::from_secs(600)).expect("run sha256sum");
    assert!(
        out.success(),
        "sha256sum {}: {}",
        path.display(),
        out.describe()
    );
    out.stdout
        .split_whitespace()
        .next()
        .expect("a digest")
        .to_string()
}

#[test]
fn scopy_copies_on_the_server_without_the_data_crossing_the_wire() {
    let len: u64 = std::env::var("LANSHARE_SCOPY_BYTES")
        .ok()
        .map(|v| v.parse().expect("LANSHARE_SCOPY_BYTES is a byte count"))
        .unwrap_or(DEFAULT_BYTES);
    let server = TestServer::start(ServerOptions::default()).expect("start the server");
    let src = server.share_dir().join("source.bin");
    let dst = server.share_dir().join("copy.bin");
    make_source(&src, len);

    let (relay, wire) = counting_relay(server.addr());
    let bin = find_tool("smbclient", "the Debian package `smbclient`").expect("smbclient");
    let mut cmd = Command::new(bin);
    cmd.args(["-s", "/dev/null"])
        .arg(format!("//127.0.0.1/{}", server.share()))
        .args(["-p", &relay.port().to_string()])
        .args(["-U", &server.credentials()])
        .args(["-m", "SMB3_11", "--client-protection=sign"])
        .args(["-c", "scopy source.bin copy.bin"]);
    let started = Instant::now();
    // Generous: a debug build on 2 busy cores; the copy itself takes seconds.
    let out = process::run(&mut cmd, Duration::from_secs(600)).expect("run smbclient");
    let took = started.elapsed();
    assert!(
        out.success() && !out.combined().contains("NT_STATUS_"),
        "smbclient scopy against {}:\n{}\n--- server ---\n{}",
        server.target().name(),
        tail(&out.describe(), 40),
        server.diagnostics()
    );
    let on_wire = wire.load(Ordering::Relaxed);
    let copied = std::fs::metadata(&dst).expect("the copy exists").len();
    assert_eq!(copied, len, "size of the copy");
    assert_eq!(
        sha256(&src),
        sha256(&dst),
        "the copy differs from its source"
    );
    eprintln!(
        "scopy of {len} bytes against {}: {:.2} s, {on_wire} bytes on the connection",
        server.target().name(),
        took.as_secs_f64()
    );
    // Requests and responses only: about 6 KiB per 16 MiB request of 256 chunk
    // descriptors, plus the session set-up. Moving the data would be `len` twice.
    assert!(
        on_wire < 64 * 1024 + len / 1000,
        "{on_wire} bytes crossed the connection for a {len}-byte server-side copy"
    );
}
