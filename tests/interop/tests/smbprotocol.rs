//! Python `smbprotocol` (low-level API: Connection, Session, TreeConnect) against the server
//! under test: every dialect with signing required, SPNEGO and raw NTLMSSP, the 3.1.1 signing
//! algorithms, wrong password and unknown share. The checks live in `py/connect.py`; this file
//! runs it and checks its verdict.

use lanshare_interop::clients::{smbprotocol_connect, smbprotocol_script, tail};
use lanshare_interop::{ServerOptions, TestServer};

const DIALECTS: [&str; 5] = ["2.0.2", "2.1", "3.0", "3.0.2", "3.1.1"];

fn start() -> TestServer {
    TestServer::start(ServerOptions::default()).expect("start the server under test")
}

/// Runs connect.py and requires exit 0 with a PASS verdict (and `expect_in_stdout`).
fn passes(server: &TestServer, args: &[&str], expect_in_stdout: &str) {
    let out = smbprotocol_connect(server, args).expect("run py/connect.py");
    let verdict = out.stdout.lines().last().unwrap_or_default().to_string();
    assert!(
        out.success() && verdict.starts_with("PASS") && out.stdout.contains(expect_in_stdout),
        "connect.py {args:?} against {}: expected PASS with {expect_in_stdout:?}\n{}\n--- server ---\n{}",
        server.target().name(),
        out.describe(),
        server.diagnostics()
    );
}

fn dialect_code(d: &str) -> &'static str {
    match d {
        "2.0.2" => "dialect=0x0202",
        "2.1" => "dialect=0x0210",
        "3.0" => "dialect=0x0300",
        "3.0.2" => "dialect=0x0302",
        "3.1.1" => "dialect=0x0311",
        _ => unreachable!("unknown dialect {d}"),
    }
}

macro_rules! dialect_tests {
    ($($name:ident => $dialect:literal;)*) => {$(
        #[test]
        fn $name() {
            let server = start();
            passes(&server, &["--dialect", $dialect], dialect_code($dialect));
        }
    )*};
}

dialect_tests! {
    signed_tree_connect_2_0_2 => "2.0.2";
    signed_tree_connect_2_1 => "2.1";
    signed_tree_connect_3_0 => "3.0";
    signed_tree_connect_3_0_2 => "3.0.2";
    signed_tree_connect_3_1_1 => "3.1.1";
}

/// Raw NTLMSSP tokens (no SPNEGO wrapping) in SESSION_SETUP, oldest and newest dialect.
#[test]
fn raw_ntlmssp_authenticates() {
    let server = start();
    for d in ["2.0.2", "3.1.1"] {
        passes(
            &server,
            &["--dialect", d, "--auth", "ntlm"],
            dialect_code(d),
        );
    }
}

/// 3.1.1 with only AES-CMAC, then only AES-GMAC, offered in SIGNING_CAPABILITIES
/// ([MS-SMB2] 2.2.3.1.7): the server must pick the one offered and sign with it.
#[test]
fn signing_algorithms_3_1_1() {
    let server = start();
    for algo in ["aes-cmac", "aes-gmac"] {
        passes(
            &server,
            &["--dialect", "3.1.1", "--signing-algo", algo],
            "dialect=0x0311",
        );
    }
}

#[test]
fn wrong_password_is_logon_failure() {
    let server = start();
    let bad = format!("{}x", server.password());
    for d in DIALECTS {
        for auth in ["negotiate", "ntlm"] {
            passes(
                &server,
                &[
                    "--dialect",
                    d,
                    "--auth",
                    auth,
                    "--password",
                    &bad,
                    "--expect",
                    "logon-failure",
                ],
                "STATUS_LOGON_FAILURE",
            );
        }
    }
}

#[test]
fn unknown_share_is_bad_network_name() {
    let server = start();
    for d in DIALECTS {
        passes(
            &server,
            &[
                "--dialect",
                d,
                "--share",
                "nosuchshare",
                "--expect",
                "bad-network-name",
            ],
            "STATUS_BAD_NETWORK_NAME",
        );
    }
}

/// One enumeration of a 3,000-entry folder whose information class changes between queries
/// (`py/listing.py`): the server prepares entries ahead in the last query's class, and a query
/// in another class must still get every name once, each entry well formed in its class.
#[test]
fn an_enumeration_that_changes_class_lists_every_name_once() {
    let server = start();
    let dir = server.share_dir().join("big");
    std::fs::create_dir(&dir).expect("mkdir in the share");
    for i in 0..3000u32 {
        std::fs::write(dir.join(format!("entry{i:05}.dat")), i.to_le_bytes())
            .expect("create a file in the share");
    }
    let out = smbprotocol_script(&server, "listing.py", &["--dir", "big", "--count", "3000"])
        .expect("run py/listing.py");
    let verdict = out.stdout.lines().last().unwrap_or_default().to_string();
    assert!(
        out.success() && verdict.starts_with("PASS"),
        "listing.py against {}:\n{}\n--- server ---\n{}",
        server.target().name(),
        out.describe(),
        tail(&server.diagnostics(), 30)
    );
}
