//! smbclient (Samba 4.17) against the server under test, on every dialect, with and without
//! signing: connect, authenticate, tree connect; wrong password; unknown share.
//! Issue 2, "Done when", bullet 2.

use lanshare_interop::clients::{SMBCLIENT_DIALECTS, smbclient, smbclient_to, tail};
use lanshare_interop::{ServerOptions, Signing, TestServer};

fn start(signing: Signing) -> TestServer {
    TestServer::start(ServerOptions::default().signing(signing))
        .expect("start the server under test")
}

/// `-m DIALECT -c exit` must succeed, negotiate exactly that dialect and connect the tree.
/// Debug level 4 is the lowest at which smbclient 4.17 names the dialect it negotiated.
fn connects(dialect: &str, client_signing: bool) {
    let server = start(if client_signing {
        Signing::Required
    } else {
        Signing::Enabled
    });
    let mut extra = vec!["-m", dialect, "-d", "4"];
    if client_signing {
        extra.push("--client-protection=sign");
    }
    let out = smbclient(&server, &extra, "exit").expect("run smbclient");
    let text = out.combined();
    let ctx = || {
        format!(
            "smbclient {extra:?} against {}:\n{}\n--- server ---\n{}",
            server.target().name(),
            tail(&out.describe(), 60),
            server.diagnostics()
        )
    };
    assert!(out.success(), "smbclient failed: {}", ctx());
    assert!(
        text.contains(&format!("negotiated dialect[{dialect}]")),
        "smbclient did not report negotiating {dialect}: {}",
        ctx()
    );
    assert!(
        text.contains("session setup ok"),
        "no session setup: {}",
        ctx()
    );
    assert!(text.contains("tconx ok"), "no tree connect: {}", ctx());
}

macro_rules! dialect_tests {
    ($($plain:ident, $signed:ident => $dialect:literal;)*) => {$(
        #[test]
        fn $plain() {
            connects($dialect, false);
        }
        #[test]
        fn $signed() {
            connects($dialect, true);
        }
    )*};
}

dialect_tests! {
    connect_smb2_02, connect_smb2_02_signed => "SMB2_02";
    connect_smb2_10, connect_smb2_10_signed => "SMB2_10";
    connect_smb3_00, connect_smb3_00_signed => "SMB3_00";
    connect_smb3_02, connect_smb3_02_signed => "SMB3_02";
    connect_smb3_11, connect_smb3_11_signed => "SMB3_11";
}

/// Fails with `status` on every dialect, signed and not, and exits non-zero.
fn fails_with(server: &TestServer, share: &str, credentials: &str, status: &str) {
    for dialect in SMBCLIENT_DIALECTS {
        for signed in [false, true] {
            let mut extra = vec!["-m", dialect];
            if signed {
                extra.push("--client-protection=sign");
            }
            let out =
                smbclient_to(server, share, credentials, &extra, "exit").expect("run smbclient");
            assert!(
                !out.success() && out.combined().contains(status),
                "smbclient {extra:?} //{}/{share} as {credentials}: expected {status}, got:\n{}\n--- server ---\n{}",
                server.host(),
                out.describe(),
                server.diagnostics()
            );
        }
    }
}

#[test]
fn wrong_password_is_logon_failure() {
    let server = start(Signing::Required);
    let creds = format!("{}%{}x", server.user(), server.password());
    fails_with(&server, server.share(), &creds, "NT_STATUS_LOGON_FAILURE");
}

#[test]
fn unknown_user_is_logon_failure() {
    let server = start(Signing::Required);
    let creds = format!("nosuchuser%{}", server.password());
    fails_with(&server, server.share(), &creds, "NT_STATUS_LOGON_FAILURE");
}

#[test]
fn unknown_share_is_bad_network_name() {
    let server = start(Signing::Required);
    let creds = server.credentials();
    fails_with(&server, "nosuchshare", &creds, "NT_STATUS_BAD_NETWORK_NAME");
}

/// Share names are case-insensitive ([MS-SMB2] 3.3.5.7: the share is looked up by name,
/// and Windows compares share names without regard to case).
#[test]
fn share_name_is_case_insensitive() {
    let server = start(Signing::Required);
    let creds = server.credentials();
    let upper = server.share().to_uppercase();
    let out =
        smbclient_to(&server, &upper, &creds, &["-m", "SMB3_11"], "exit").expect("run smbclient");
    assert!(
        out.success(),
        "//{}/{upper}: {}",
        server.host(),
        out.describe()
    );
}

/// IPC$ must connect (issue 2: "IPC$ must connect"); pipes come later.
#[test]
fn ipc_share_connects() {
    let server = start(Signing::Required);
    let creds = server.credentials();
    let out = smbclient_to(
        &server,
        "IPC$",
        &creds,
        &["-m", "SMB3_11", "-d", "4"],
        "exit",
    )
    .expect("run smbclient");
    assert!(
        out.success() && out.combined().contains("tconx ok"),
        "//{}/IPC$: {}",
        server.host(),
        tail(&out.describe(), 40)
    );
}
