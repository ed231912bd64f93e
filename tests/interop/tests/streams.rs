//! Named streams, extended attributes and security descriptors through clients nobody here
//! wrote: Python smbprotocol writes and reads a stream and two EAs and sets and reads back a
//! security descriptor (`py/streams.py`), then smbclient's `allinfo` lists the stream, and
//! the stream's bytes are found where lanshare keeps them (an xattr of the file).

use lanshare_interop::clients::{smbclient, smbprotocol_script, tail};
use lanshare_interop::{ServerOptions, TestServer};

#[test]
fn stream_ea_and_security_descriptor_round_trip() {
    let server = TestServer::start(ServerOptions::default()).expect("start the server under test");
    let out = smbprotocol_script(&server, "streams.py", &[]).expect("run py/streams.py");
    let verdict = out.stdout.lines().last().unwrap_or_default().to_string();
    assert!(
        out.success() && verdict.starts_with("PASS"),
        "streams.py against {}:\n{}\n--- server ---\n{}",
        server.target().name(),
        out.describe(),
        tail(&server.diagnostics(), 30)
    );

    let out = smbclient(
        &server,
        &["--client-protection=sign"],
        "allinfo streams.txt",
    )
    .expect("run smbclient");
    let text = out.combined();
    assert!(
        out.success()
            && text.contains("stream: [::$DATA], 9 bytes")
            && text.contains("stream: [:lanshare-meta:$DATA], 1200 bytes"),
        "smbclient allinfo should list the unnamed and the named stream:\n{}",
        tail(&out.describe(), 30)
    );

    // lanshare keeps the stream in an xattr of the file (Samba's streams_xattr uses its own
    // name for it, so this part is lanshare's only).
    #[cfg(feature = "lanshare")]
    if server.target().name() == "lanshare" {
        let file = server.share_dir().join("streams.txt");
        let v = xattr_value(&file, "user.lanshare.stream.lanshare-meta");
        assert_eq!(v.len(), 1200, "stream xattr of {}", file.display());
        assert!(v.starts_with(b"stream data "));
    }
}

/// The value of one xattr, read with getfattr (attr package) to keep this crate free of a
/// binding just for this.
#[cfg(feature = "lanshare")]
fn xattr_value(path: &std::path::Path, name: &str) -> Vec<u8> {
    let out = std::process::Command::new("getfattr")
        .args(["--only-values", "-n", name])
        .arg(path)
        .output()
        .expect("run getfattr (Debian package `attr`)");
    assert!(
        out.status.success(),
        "getfattr -n {name} {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}
