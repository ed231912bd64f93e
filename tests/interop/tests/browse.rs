//! Share listing over IPC$ and srvsvc (issue 5): `smbclient -L` lists every browseable share
//! with its comment on SMB2_02 and SMB3_11; a share with `browseable = false` is absent from the
//! list and still connectable; the anonymous form `-N` follows `security.anonymous`.
//! Impacket's srvsvc client (`py/srvsvc.py`: NetrShareEnum levels 1 and 2, NetrShareGetInfo,
//! NetrServerGetInfo 101) and the Rust `smb` crate's share listing agree with the config.

use lanshare_interop::clients::{smbclient_to, tail};
use lanshare_interop::{ServerOptions, TestServer};

const SERVER_NAME: &str = "BROWSEBOX";

fn server(anonymous: smb_engine::AnonymousPolicy) -> (TestServer, tempfile::TempDir) {
    let extra = tempfile::tempdir().expect("tempdir");
    let (docs, hidden) = (extra.path().join("docs"), extra.path().join("hidden"));
    std::fs::create_dir(&docs).expect("mkdir");
    std::fs::create_dir(&hidden).expect("mkdir");
    let admin = extra.path().join("admin");
    std::fs::create_dir(&admin).expect("mkdir");
    let opts = ServerOptions::default().lanshare(move |cfg| {
        cfg.server_name = SERVER_NAME.into();
        cfg.anonymous = anonymous;
        let mut d = smb_engine::ShareConfig::new("Docs", &docs);
        d.comment = "Team documents".into();
        cfg.shares.push(d);
        let mut h = smb_engine::ShareConfig::new("Backstage", &hidden);
        h.browseable = false;
        cfg.shares.push(h);
        let mut a = smb_engine::ShareConfig::new("Admin$", &admin);
        a.comment = "dollar share".into();
        cfg.shares.push(a);
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
            ("Admin$", "Disk", "dollar share"),
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

// ---------------------------------------------------------------------------------------------
// Impacket's srvsvc client and the Rust `smb` crate.

/// [MS-SRVS] 2.2.2.4 share types.
const STYPE_DISKTREE: u64 = 0;
const STYPE_IPC: u64 = 3;
const STYPE_SPECIAL: u64 = 0x8000_0000;

/// What the config says NetrShareEnum lists: name, type, comment. Every browseable share, `$`
/// ones flagged STYPE_SPECIAL (as Samba and Windows list them; Explorer hides them), and IPC$.
/// `browseable = false` leaves a share out of the list; it stays reachable by name.
fn expected_listing(server: &TestServer) -> Vec<(String, u64, String)> {
    let mut v = vec![
        (server.share().to_string(), STYPE_DISKTREE, String::new()),
        ("Docs".into(), STYPE_DISKTREE, "Team documents".into()),
        (
            "Admin$".into(),
            STYPE_DISKTREE | STYPE_SPECIAL,
            "dollar share".into(),
        ),
        (
            "IPC$".into(),
            STYPE_IPC | STYPE_SPECIAL,
            "IPC Service".into(),
        ),
    ];
    v.sort();
    v
}

fn srvsvc_py(server: &TestServer, creds: Option<(&str, &str)>, dialect: &str) -> serde_json::Value {
    let (user, password) = creds.unwrap_or(("", ""));
    let mut args: Vec<String> = [
        "--host",
        &server.host(),
        "--port",
        &server.port().to_string(),
        "--user",
        user,
        "--password",
        password,
        "--dialect",
        dialect,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for share in ["Docs", "Backstage", "Admin$", "IPC$", "NoSuchShare"] {
        args.extend(["--get-share".to_string(), share.to_string()]);
    }
    let out =
        lanshare_interop::clients::python_script("srvsvc.py", &args).expect("run py/srvsvc.py");
    let verdict = out.stdout.lines().last().unwrap_or_default().to_string();
    assert!(
        out.success() && verdict.starts_with("PASS"),
        "srvsvc.py ({dialect}) failed:\n{}\n{}",
        out.describe(),
        server.diagnostics()
    );
    let json = out
        .stdout
        .lines()
        .find(|l| l.starts_with('{'))
        .expect("a JSON line");
    serde_json::from_str(json).expect("srvsvc.py JSON")
}

fn str_of(v: &serde_json::Value) -> String {
    v.as_str().expect("a string").to_string()
}

fn u64_of(v: &serde_json::Value) -> u64 {
    v.as_u64().expect("a number")
}

fn check_impacket_answers(server: &TestServer, got: &serde_json::Value, what: &str) {
    let want = expected_listing(server);
    let mut level1: Vec<(String, u64, String)> = got["enum1"]
        .as_array()
        .expect("enum1")
        .iter()
        .map(|e| (str_of(&e[0]), u64_of(&e[1]), str_of(&e[2])))
        .collect();
    level1.sort();
    assert_eq!(level1, want, "{what}: NetrShareEnum level 1\n{got}");

    let mut level2: Vec<(String, u64, String)> = Vec::new();
    for e in got["enum2"].as_array().expect("enum2") {
        let name = str_of(&e[0]);
        let path = str_of(&e[3]);
        if name == "IPC$" {
            assert_eq!(path, "", "{what}: IPC$ has no path");
        } else {
            assert_eq!(
                path,
                format!("C:\\{name}"),
                "{what}: level 2 path of {name}"
            );
        }
        assert_eq!(
            u64_of(&e[4]),
            u64::from(u32::MAX),
            "{what}: max_uses of {name}"
        );
        level2.push((name, u64_of(&e[1]), str_of(&e[2])));
    }
    level2.sort();
    assert_eq!(level2, want, "{what}: NetrShareEnum level 2\n{got}");

    // Not listed is not gone: every share answers NetrShareGetInfo by name.
    let get = &got["get"];
    assert_eq!(
        get["Docs"],
        serde_json::json!([STYPE_DISKTREE, "Team documents", "C:\\Docs"]),
        "{what}"
    );
    assert_eq!(
        get["Backstage"],
        serde_json::json!([STYPE_DISKTREE, "", "C:\\Backstage"]),
        "{what}"
    );
    assert_eq!(
        get["Admin$"],
        serde_json::json!([STYPE_DISKTREE | STYPE_SPECIAL, "dollar share", "C:\\Admin$"]),
        "{what}"
    );
    assert_eq!(get["IPC$"][0], STYPE_IPC | STYPE_SPECIAL, "{what}");
    let missing = str_of(&get["NoSuchShare"]);
    assert!(
        missing.contains("NERR_NetNameNotFound")
            || missing.contains("2310")
            || missing.contains("0x906"),
        "{what}: NetrShareGetInfo of a missing share: {missing}"
    );

    let s = &got["server101"];
    assert_eq!(str_of(&s["name"]), SERVER_NAME, "{what}: {s}");
    assert_eq!(u64_of(&s["platform_id"]), 500, "{what}: PLATFORM_ID_NT");
    assert_eq!(u64_of(&s["version_major"]), 10, "{what}: {s}");
    // SV_TYPE_WORKSTATION | SV_TYPE_SERVER at least.
    assert_eq!(u64_of(&s["type"]) & 0x3, 0x3, "{what}: {s}");
}

#[test]
fn impacket_srvsvc_agrees_with_the_config() {
    let (server, _keep) = server(smb_engine::AnonymousPolicy::IpcOnly);
    for dialect in ["2.0.2", "3.0"] {
        let got = srvsvc_py(&server, Some((server.user(), server.password())), dialect);
        check_impacket_answers(&server, &got, &format!("user, SMB {dialect}"));
    }
    // The anonymous session ipc-only allows sees the same list.
    let got = srvsvc_py(&server, None, "3.0");
    check_impacket_answers(&server, &got, "anonymous, SMB 3.0");
}

/// The Rust `smb` crate's `Client::list_shares` (NetrShareEnum level 1 over \\srvsvc). It
/// offers NDR64 only, so this is also the check that NDR64 works with a client other than
/// Impacket (strings come back with their terminating NUL, which is stripped).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_smb_crate_lists_the_shares() {
    use smb::{Client, ClientConfig, ConnectionConfig};
    let (server, _keep) = server(smb_engine::AnonymousPolicy::Deny);
    let mut connection = ConnectionConfig {
        port: Some(server.port()),
        timeout: Some(std::time::Duration::from_secs(20)),
        encryption_mode: smb::connection::EncryptionMode::Disabled,
        ..Default::default()
    };
    connection.auth_methods.kerberos = false;
    connection.auth_methods.ntlm = true;
    let client = Client::new(ClientConfig {
        connection,
        dfs: false,
        ..Default::default()
    });
    let host = server.host();
    client
        .ipc_connect(&host, server.user(), server.password().to_string())
        .await
        .unwrap_or_else(|e| panic!("IPC$ connect: {e:?}\n{}", server.diagnostics()));
    let shares = client
        .list_shares(&host)
        .await
        .unwrap_or_else(|e| panic!("list_shares: {e:?}\n{}", server.diagnostics()));
    let mut got: Vec<(String, u64, String)> = shares
        .iter()
        .map(|s| {
            let name = s
                .netname
                .as_ref()
                .map(|n| n.to_string().trim_end_matches('\0').to_string())
                .unwrap_or_default();
            let remark = s
                .remark
                .as_ref()
                .map(|n| n.to_string().trim_end_matches('\0').to_string())
                .unwrap_or_default();
            let t = &*s.share_type;
            let kind = t.kind() as u64;
            let special = if t.special() { STYPE_SPECIAL } else { 0 };
            (name, kind | special, remark)
        })
        .collect();
    got.sort();
    assert_eq!(got, expected_listing(&server));
    client.close().await.ok();
}
