//! Full exchanges against Samba's own NTLMSSP/SPNEGO client code, through `ntlm_auth`
//! (Debian package `winbind`): the same gensec code smbclient uses. These tests FAIL when
//! ntlm_auth is missing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;

use lanshare_auth::{Acceptor, AuthError, AuthPolicy, Identity, MemoryUserDb, Step};

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn b64_encode(data: &[u8]) -> String {
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk.len();
        let v = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= n {
                out.push(B64[((v >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn b64_decode(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes().filter(|&c| c != b'=') {
        let v = B64.iter().position(|&b| b == c).expect("base64") as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

struct NtlmAuth {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    _conf: tempfile::NamedTempFile,
}

impl NtlmAuth {
    fn spawn(protocol: &str, user: &str, domain: &str, password: &str) -> NtlmAuth {
        let conf = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(conf.path(), "[global]\n").unwrap();
        let mut child = Command::new("ntlm_auth")
            .arg(format!("--helper-protocol={protocol}"))
            .arg(format!("--username={user}"))
            .arg(format!("--domain={domain}"))
            .arg(format!("--password={password}"))
            .arg(format!("--configfile={}", conf.path().display()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("ntlm_auth (Debian package winbind) is required for the Samba interop tests");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        NtlmAuth {
            child,
            stdin,
            stdout,
            _conf: conf,
        }
    }

    /// Sends one request line and returns the reply's code and payload.
    fn call(&mut self, line: &str) -> (String, String) {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
        let mut reply = String::new();
        self.stdout.read_line(&mut reply).unwrap();
        let reply = reply.trim_end();
        let (code, rest) = reply.split_once(' ').unwrap_or((reply, ""));
        (code.to_owned(), rest.to_owned())
    }
}

impl Drop for NtlmAuth {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn acceptor() -> Acceptor {
    let db = MemoryUserDb::new().with_user("alice", "Secret-123");
    Acceptor::new(Arc::new(db), Arc::new(AuthPolicy::default()))
}

fn alice() -> Identity {
    Identity::User {
        name: "alice".into(),
        domain: "WORKGROUP".into(),
    }
}

/// Raw NTLMSSP with Samba's client; returns our result and Samba's session key.
fn raw_exchange(password: &str) -> (Result<Step, AuthError>, Option<Vec<u8>>) {
    let mut client = NtlmAuth::spawn("ntlmssp-client-1", "alice", "WORKGROUP", password);
    let mut a = acceptor();
    let (code, negotiate) = client.call("YR");
    assert_eq!(code, "YR", "ntlm_auth did not start: {negotiate}");
    let challenge = match a.step(&b64_decode(&negotiate)).unwrap() {
        Step::Continue(c) => c,
        other => panic!("{other:?}"),
    };
    let (code, auth) = client.call(&format!("TT {}", b64_encode(&challenge)));
    assert!(code == "KK" || code == "AF", "{code} {auth}");
    let result = a.step(&b64_decode(&auth));
    let (code, key) = client.call("GK");
    let key = (code == "GK").then(|| b64_decode(&key));
    (result, key)
}

#[test]
fn samba_raw_ntlmssp_logon() {
    let (result, their_key) = raw_exchange("Secret-123");
    match result.unwrap() {
        Step::Done {
            identity,
            session_key,
            token,
        } => {
            assert_eq!(identity, alice());
            assert!(token.is_empty());
            assert_eq!(session_key.unwrap().to_vec(), their_key.unwrap());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn samba_raw_ntlmssp_wrong_password() {
    let (result, _) = raw_exchange("secret-123");
    assert!(
        matches!(result, Err(AuthError::LogonFailure { .. })),
        "{result:?}"
    );
}

/// ntlm_auth does not ask for signing, so Samba's client takes the pre-MIC path: no MIC in
/// AUTHENTICATE, no mechListMIC, and our final token must be a bare accept-completed.
#[test]
fn samba_spnego_logon() {
    let mut client = NtlmAuth::spawn("gss-spnego-client", "alice", "WORKGROUP", "Secret-123");
    let mut a = acceptor();
    let (code, mut token) = client.call("YR");
    assert_eq!(code, "YR", "ntlm_auth did not start: {token}");
    for _ in 0..4 {
        match a.step(&b64_decode(&token)).unwrap() {
            Step::Continue(reply) => {
                let (code, next) = client.call(&format!("TT {}", b64_encode(&reply)));
                assert_eq!(code, "KK", "samba refused our token: {next}");
                token = next;
            }
            Step::Done {
                token: last,
                identity,
                session_key,
            } => {
                assert_eq!(identity, alice());
                assert!(session_key.is_some());
                assert_eq!(last, [0xa1, 0x07, 0x30, 0x05, 0xa0, 0x03, 0x0a, 0x01, 0x00]);
                let (code, rest) = client.call(&format!("TT {}", b64_encode(&last)));
                assert_eq!(code, "AF", "samba rejected our final token: {rest}");
                return;
            }
        }
    }
    panic!("exchange did not finish");
}
