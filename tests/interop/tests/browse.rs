//! Share listing over IPC$ and srvsvc (issue 5): `smbclient -L` lists every browseable share
//! with its comment on SMB2_02 and SMB3_11; a share with `browseable = false` is absent from the
//! list and still connectable; the anonymous form `-N` follows `security.anonymous`.

use lanshare_interop::clients::{smbclient_to, tail};
use lanshare_interop::{ServerOptions, TestServer};

fn server(anonymous: smb_engine::AnonymousPolicy) -> (TestServer, tempfile::TempDir) {
    let extra = tempfile::tempdir().expect("tempdir");
    let (docs, hidden) = (extra.path().join("docs"), extra.path().join("hidden"));
    std::fs::create_dir(&docs).expect("mkdir");
    std::fs::create_dir(&hidden).expect("mkdir");
    let opts = ServerOptions::default().lanshare(move |cfg| {
        cfg.anonymous = anonymous;
        let mut d = smb_engine::ShareConfig::new("Docs", &docs);
        d.comment = "Team documents".into();
        cfg.shares.push(d);
        let mut h = smb_engine::ShareConfig::new("Backstage", &hidden);
        h.browseable = false;
        cfg.shares.push(h);
    });
    (
        TestServer::start_lanshare(opts).expect("start lanshare"),
        extra,
    )
}

fn list(
    server: &TestServer,
    creds: Option<&str>,
    dialect: &str,
) -> lanshare_interop::process::Output {
    let port = server.port().to_string();
    let mut args = vec![
        "-L".to_string(),
        format!("//{}", server.host()),
        "-p".into(),
        port,
        "-m".into(),
        dialect.into(),
    ];
    match creds {
        Some(c) => args.extend(["-U".to_string(), c.to_string()]),
        None => args.push("-N".into()),
    }
    let mut cmd = std::process::Command::new("smbclient");
    cmd.args(["-s", "/dev/null"]).args(&args);
    lanshare_interop::process::run(&mut cmd, std::time::Duration::from_secs(60))
        .expect("run smbclient -L")
}

#[test]
fn list_shares_with_comments_on_smb2_02_and_smb3_11() {
    let (server, _keep) = server(smb_engine::AnonymousPolicy::Deny);
    for dialect in ["SMB2_02", "SMB3_11"] {
        let out = list(&server, Some(&server.credentials()), dialect);
        let text = out.combined();
        assert!(
            out.success(),
            "smbclient -L ({dialect}) failed:\n{}\n{}",
            tail(&out.describe(), 30),
            server.diagnostics()
        );
        for (name, kind, comment) in [
            ("share", "Disk", ""),
            ("Docs", "Disk", "Team documents"),
            ("IPC$", "IPC", "IPC Service"),
        ] {
            let line = text
                .lines()
                .find(|l| l.split_whitespace().next() == Some(name));
            let line =
                line.unwrap_or_else(|| panic!("{dialect}: {name} missing from the list:\n{text}"));
            assert!(
                line.contains(kind) && line.contains(comment),
                "{dialect}: bad line for {name}: {line:?}"
            );
        }
        assert!(
            !text.contains("Backstage"),
            "{dialect}: a browseable = false share was listed:\n{text}"
        );
    }
    // Hidden from the list, not from access.
    let out = smbclient_to(&server, "Backstage", &server.credentials(), &[], "ls")
        .expect("run smbclient");
    assert!(
        out.success(),
        "the unlisted share is not connectable:\n{}",
        tail(&out.describe(), 20)
    );
}

#[test]
fn anonymous_listing_follows_the_policy() {
    let (denied, _a) = server(smb_engine::AnonymousPolicy::Deny);
    let out = list(&denied, None, "SMB3_11");
    assert!(
        !out.success(),
        "anonymous = deny, yet smbclient -L -N listed shares:\n{}",
        out.combined()
    );
    let (ipc_only, _b) = server(smb_engine::AnonymousPolicy::IpcOnly);
    let out = list(&ipc_only, None, "SMB3_11");
    assert!(
        out.success() && out.combined().contains("Docs"),
        "anonymous = ipc-only, yet smbclient -L -N failed:\n{}\n{}",
        tail(&out.describe(), 30),
        ipc_only.diagnostics()
    );
    // ipc-only: the anonymous session cannot reach a disk share.
    let out = smbclient_to(&ipc_only, "Docs", "", &["-N"], "ls").expect("run smbclient");
    assert!(
        !out.success(),
        "an anonymous session reached a disk share under ipc-only:\n{}",
        out.combined()
    );
}
