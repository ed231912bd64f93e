//! Replays real client traffic captured against Samba 4.17 (tests/vectors/*.txt, made by
//! tests/capture/capture_samba.py) through our pipes, and compares our answers with Samba's
//! byte for byte.
//!
//! The server state the captures came from (tests/capture/capture_samba.py's smb.conf) is
//! rebuilt as an [`RpcContext`]. Where lanshare answers differently from Samba on purpose,
//! the difference is listed in [`ALLOWED`] and nowhere else:
//! - the association group id of a BIND_ACK or ALTER_CONTEXT_RESP is chosen by each server;
//! - a disk share whose name ends in `$` gets STYPE_SPECIAL (Samba sets it for IPC$ only);
//! - NetrShareGetInfo of an unknown name answers NERR_NetNameNotFound (2310), as Windows does,
//!   where Samba answers ERROR_INVALID_NAME (123);
//! - sv101_type announces no print server, no Unix and no DFS (0x9003 instead of 0x809a03);
//! - a context offering NDR64 alone is accepted (Samba 4.17 refuses it).

// Test helpers may unwrap: a panic is a test failure here.
#![allow(clippy::unwrap_used)]

use lanshare_rpc::{RpcContext, ServerInfo, ShareInfo, ShareKind, open_pipe};

/// (what Samba sent, what we send) for a little-endian u32 at a 4-byte aligned offset.
const ALLOWED: &[(u32, u32)] = &[
    (0x0000_0000, 0x8000_0000), // STYPE_DISKTREE vs STYPE_DISKTREE|STYPE_SPECIAL for `hidden$`
    (123, 2310),                // ERROR_INVALID_NAME vs NERR_NetNameNotFound
    (0x0080_9a03, 0x0000_9003), // sv101_type
];

struct SambaTest {
    many: usize,
}

const SHARE_PATH: &str = r"C:\tmp\rpc-capture-samba\share";
const LONG_COMMENT: &str =
    "A fairly long comment to fill fragments A fairly long comment to fill fragments ";

impl RpcContext for SambaTest {
    fn shares(&self) -> Vec<ShareInfo> {
        let disk = |name: &str, comment: &str, hidden: bool| ShareInfo {
            name: name.into(),
            comment: comment.into(),
            kind: ShareKind::Disk,
            hidden_from_list: hidden,
            path: SHARE_PATH.into(),
            max_uses: u32::MAX,
            current_uses: 0,
        };
        let mut v = vec![
            disk("share", "The test share", false),
            // Samba lists `$` shares; lanshare's configuration decides with hidden_from_list.
            disk("hidden$", "Hidden by its dollar", false),
            disk("unlisted", "Not browseable", true),
        ];
        for i in 0..self.many {
            v.push(disk(
                &format!("many{i:03}"),
                &format!("{LONG_COMMENT}{i}"),
                false,
            ));
        }
        v.push(ShareInfo {
            name: "IPC$".into(),
            comment: "IPC Service (Samba test server)".into(),
            kind: ShareKind::Ipc,
            hidden_from_list: false,
            path: r"C:\tmp".into(),
            max_uses: u32::MAX,
            // rpcclient's own tree connect.
            current_uses: 1,
        });
        v
    }

    fn server(&self) -> ServerInfo {
        ServerInfo {
            name: "SAMBATEST".into(),
            comment: "Samba test server".into(),
            version_major: 6,
            version_minor: 1,
            domain: "WORKGROUP".into(),
        }
    }
}

struct Line {
    pipe: String,
    c2s: bool,
    bytes: Vec<u8>,
}

fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn load(name: &str) -> Vec<Line> {
    let path = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let mut parts = l.split_whitespace();
            let pipe = parts.next().unwrap().to_string();
            let dir = parts.next().unwrap();
            let bytes = hex(parts.next().unwrap());
            Line {
                pipe,
                c2s: dir == "c2s",
                bytes,
            }
        })
        .collect()
}

/// Compares one PDU; returns how many allowed substitutions were needed.
fn compare(file: &str, idx: usize, samba: &[u8], ours: &[u8], extra: &[(u32, u32)]) -> usize {
    assert_eq!(
        samba.len(),
        ours.len(),
        "{file} #{idx}: length differs\n samba {}\n ours  {}",
        hexs(samba),
        hexs(ours)
    );
    let mut allowed = 0;
    for (off, (s, o)) in samba.chunks(4).zip(ours.chunks(4)).enumerate() {
        if s == o {
            continue;
        }
        let at = off * 4;
        // The assoc_group_id of a BIND_ACK or ALTER_CONTEXT_RESP.
        if matches!(samba[2], 12 | 15) && at == 20 {
            continue;
        }
        let pair = (
            u32::from_le_bytes(s.try_into().unwrap()),
            u32::from_le_bytes(o.try_into().unwrap()),
        );
        assert!(
            s.len() == 4 && (ALLOWED.contains(&pair) || extra.contains(&pair)),
            "{file} #{idx}: differs at byte {at}: samba {:08x} ours {:08x}\n samba {}\n ours  {}",
            pair.0,
            pair.1,
            hexs(samba),
            hexs(ours)
        );
        eprintln!(
            "{file} #{idx}: allowed {:08x} -> {:08x} at {at}",
            pair.0, pair.1
        );
        allowed += 1;
    }
    allowed
}

fn hexs(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Replays a capture; returns (PDUs compared, allowed substitutions). `extra` are allowed
/// differences particular to this capture.
fn replay(file: &str, ctx: &SambaTest, extra: &[(u32, u32)]) -> (usize, usize) {
    let lines = load(file);
    let mut pipe = None;
    let mut expected: Vec<&[u8]> = Vec::new();
    let mut ours: Vec<Vec<u8>> = Vec::new();
    let mut compared = 0;
    let mut allowed = 0;
    let mut check = |expected: &mut Vec<&[u8]>, ours: &mut Vec<Vec<u8>>, compared: &mut usize| {
        assert_eq!(
            expected.len(),
            ours.len(),
            "{file}: Samba sent {} PDUs, we {}",
            expected.len(),
            ours.len()
        );
        for (s, o) in expected.iter().zip(ours.iter()) {
            allowed += compare(file, *compared, s, o, extra);
            *compared += 1;
        }
        expected.clear();
        ours.clear();
    };
    for line in &lines {
        if line.c2s {
            check(&mut expected, &mut ours, &mut compared);
            // A BIND starts a new pipe handle in these captures.
            if line.bytes[2] == 11 {
                pipe = Some(open_pipe(&line.pipe).expect("pipe is served"));
            }
            let p = pipe.as_mut().expect("a BIND comes first");
            p.write(&line.bytes, ctx).unwrap();
            loop {
                let (out, more) = p.read(65536);
                assert!(!more, "a whole fragment fits in 64 KiB");
                if out.is_empty() {
                    break;
                }
                ours.push(out);
            }
        } else {
            expected.push(&line.bytes);
        }
    }
    check(&mut expected, &mut ours, &mut compared);
    (compared, allowed)
}

#[test]
fn smbclient_list_shares() {
    let (n, allowed) = replay("smbclient-L-smb2.txt", &SambaTest { many: 0 }, &[]);
    assert_eq!(n, 2);
    assert_eq!(allowed, 1, "hidden$ type");
}

#[test]
fn smbclient_list_shares_fragmented_response() {
    let (n, allowed) = replay("smbclient-L-many-shares.txt", &SambaTest { many: 60 }, &[]);
    assert_eq!(n, 5, "bind_ack and four response fragments");
    assert_eq!(allowed, 1, "hidden$ type");
}

#[test]
fn rpcclient_srvsvc_commands() {
    let (n, allowed) = replay(
        "rpcclient-srvsvc.txt",
        &SambaTest { many: 0 },
        // Samba's NetrShareGetInfo counts rpcclient's IPC$ connection as a use of `share`
        // (its NetrShareEnum does not); our context reports no use.
        &[(1, 0)],
    );
    assert_eq!(n, 15);
    // hidden$ in the two NetrShareEnum lists (the sticky ones leave it out), Samba's use
    // count in NetrShareGetInfo level 502, the unknown share, sv101_type.
    assert_eq!(allowed, 5);
}

#[test]
fn rpcclient_wkssvc() {
    let (n, allowed) = replay("rpcclient-wkssvc.txt", &SambaTest { many: 0 }, &[]);
    assert_eq!((n, allowed), (2, 0));
}

#[test]
fn windows_style_binds_faults_and_alter_context() {
    // The second context offers NDR64 alone: Samba 4.17 refuses it (provider rejection,
    // proposed transfer syntaxes not supported, a zero syntax); we accept it and name NDR64,
    // for clients such as the Rust `smb` crate that offer nothing else. Those six words of
    // the BIND_ACK (and of the ALTER_CONTEXT_RESP that offers the same) are the only
    // difference.
    let ndr64_accepted: &[(u32, u32)] = &[
        (0x0002_0002, 0x0000_0000), // result, reason
        (0, 0x7171_0533),           // the NDR64 uuid…
        (0, 0x4937_beba),
        (0, 0xdbb5_1983),
        (0, 0x36cc_9cef),
        (0, 1), // …and its version
    ];
    let (n, allowed) = replay("impacket-binds.txt", &SambaTest { many: 0 }, ndr64_accepted);
    assert_eq!((n, allowed), (7, 12));
}
