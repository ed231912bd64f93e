//! Our pipes against an independent DCE/RPC client: Impacket's runtime and its srvsvc/wkssvc
//! stubs (tests/impacket_client.py) encode the requests and decode the answers.
//!
//! This test FAILS when `python3` or Impacket is missing (`pip install impacket`): it is the
//! check that our NDR is right by someone else's reading, not an optional extra.

// Test helpers may unwrap: a panic is a test failure here.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use lanshare_rpc::{Pipe, RpcContext, ServerInfo, ShareInfo, ShareKind, open_pipe};

struct Fixture;

fn disk(name: &str, comment: &str, hidden: bool, uses: u32) -> ShareInfo {
    ShareInfo {
        name: name.into(),
        comment: comment.into(),
        kind: ShareKind::Disk,
        hidden_from_list: hidden,
        path: format!("C:\\{name}"),
        max_uses: u32::MAX,
        current_uses: uses,
    }
}

impl RpcContext for Fixture {
    fn shares(&self) -> Vec<ShareInfo> {
        // Kept in step with EXPECTED_LISTED in tests/impacket_client.py.
        let mut v = vec![
            disk("docs", "Documents", false, 0),
            disk("Ümlaut 日本 😀", "Unicode: Grüße 😀", false, 1),
        ];
        for i in 0..150 {
            v.push(disk(
                &format!("bulk{i:03}"),
                &format!("bulk share number {i} with a longer comment"),
                false,
                0,
            ));
        }
        v.push(disk("secret$", "hidden, still served", true, 3));
        v.push(disk("unlisted", "browseable = false", true, 0));
        v
    }

    fn server(&self) -> ServerInfo {
        ServerInfo {
            name: "LANSHARE".into(),
            comment: "A lanshare server".into(),
            version_major: 10,
            version_minor: 0,
            domain: "WORKGROUP".into(),
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn impacket_decodes_our_answers() {
    let probe = Command::new("python3")
        .args(["-c", "import impacket.dcerpc.v5.srvs"])
        .output();
    match probe {
        Err(e) => panic!("python3 is needed for this test and could not run: {e}"),
        Ok(out) if !out.status.success() => panic!(
            "Impacket is needed for this test (pip install impacket): {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Ok(_) => {}
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/impacket_client.py");
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut to_py = child.stdin.take().unwrap();
    let from_py = BufReader::new(child.stdout.take().unwrap());
    let ctx = Fixture;
    let mut pipe: Option<Pipe> = None;
    let mut done = None;
    let mut writes = 0;
    for line in from_py.lines() {
        let line = line.unwrap();
        let (verb, arg) = line.split_once(' ').unwrap_or((&line, ""));
        let reply = match verb {
            "OPEN" => {
                pipe = open_pipe(arg);
                if pipe.is_some() {
                    "ok".to_string()
                } else {
                    "err no such pipe".to_string()
                }
            }
            "W" => {
                writes += 1;
                match pipe.as_mut().unwrap().write(&unhex(arg), &ctx) {
                    Ok(()) => "ok".to_string(),
                    Err(e) => format!("err {e}"),
                }
            }
            "R" => {
                let (b, more) = pipe.as_mut().unwrap().read(arg.parse().unwrap());
                format!("{} {}", hex(&b), u8::from(more))
            }
            "DONE" => {
                done = Some(arg.parse::<usize>().unwrap());
                break;
            }
            "FAIL" => panic!("the Impacket client failed: {}", arg.replace(" | ", "\n")),
            other => panic!("unexpected line from the client: {other}"),
        };
        writeln!(to_py, "{reply}").unwrap();
        to_py.flush().unwrap();
    }
    let status = child.wait().unwrap();
    let checks = done.expect("the client ended without DONE");
    assert!(status.success());
    // Enumerations at five levels of 153 shares, and the rest: a count well above what a
    // client that stopped early would reach.
    assert!(checks > 1500, "only {checks} checks ran");
    assert!(writes > 20, "only {writes} writes");
}
