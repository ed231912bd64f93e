//! Full exchanges against an independent initiator: Python's pyspnego (`pip install pyspnego`),
//! driven through tests/pyspnego_client.py. These tests FAIL when python3 or spnego is missing:
//! interoperability is the point, so a silent skip would hide a broken acceptor.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;

use lanshare_auth::{Acceptor, AuthError, AuthPolicy, Identity, MemoryUserDb, Step};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pyspnego_client.py");

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

struct Client {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Client {
    fn spawn(mode: &str, user: &str, password: &str, env: &[(&str, &str)]) -> Client {
        let mut cmd = Command::new("python3");
        cmd.arg(SCRIPT)
            .args([mode, user, password])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .expect("python3 is required for the pyspnego interop tests (pip install pyspnego)");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Client {
            child,
            stdin,
            stdout,
        }
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        let line = line.trim_end().to_owned();
        assert!(
            !line.is_empty(),
            "pyspnego client ended without output (is the spnego package installed? \
             `python3 -c 'import spnego'`)"
        );
        assert!(!line.starts_with("ERROR"), "pyspnego client failed: {line}");
        line
    }

    fn send(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a successful exchange produced on both sides.
#[derive(Debug)]
struct Outcome {
    identity: Identity,
    our_key: Option<[u8; 16]>,
    their_key: Vec<u8>,
    /// The client received and verified a mechListMIC from us.
    mic_verified: bool,
    steps: usize,
    /// Every token the client sent, in order.
    tokens: Vec<Vec<u8>>,
}

fn run(
    mode: &str,
    user: &str,
    password: &str,
    env: &[(&str, &str)],
    mut acceptor: Acceptor,
) -> Result<Outcome, AuthError> {
    let mut client = Client::spawn(mode, user, password, env);
    let mut steps = 0;
    let mut tokens = Vec::new();
    loop {
        let line = client.line();
        let token = unhex(line.strip_prefix("TOKEN ").expect("a TOKEN line"));
        tokens.push(token.clone());
        steps += 1;
        match acceptor.step(&token) {
            Ok(Step::Continue(out)) => client.send(&format!("CONTINUE {}", hex(&out))),
            Ok(Step::Done {
                token,
                identity,
                session_key,
            }) => {
                client.send(&format!("DONE {}", hex(&token)));
                let done = client.line();
                let mut parts = done.split(' ');
                assert_eq!(parts.next(), Some("COMPLETE"), "{done}");
                let their_key = unhex(parts.next().unwrap());
                let mic_verified = parts.next() == Some("1");
                // A finished acceptor refuses more input.
                assert_eq!(acceptor.step(&token), Err(AuthError::Finished));
                return Ok(Outcome {
                    identity,
                    our_key: session_key,
                    their_key,
                    mic_verified,
                    steps,
                    tokens,
                });
            }
            Err(e) => {
                client.send("FAIL");
                assert!(acceptor.is_finished());
                return Err(e);
            }
        }
    }
}

fn acceptor(policy: AuthPolicy) -> Acceptor {
    let db = MemoryUserDb::new()
        .with_user("alice", "Secret-123")
        .with_user("Bj\u{f6}rn", "p\u{e4}ssw\u{f6}rd \u{20ac}")
        .with_disabled_user("mallory", "hunter2");
    Acceptor::new(Arc::new(db), Arc::new(policy))
}

fn default_acceptor() -> Acceptor {
    acceptor(AuthPolicy::default())
}

fn assert_user(out: &Outcome, name: &str) {
    assert_eq!(
        out.identity,
        Identity::User {
            name: name.into(),
            domain: "WORKGROUP".into()
        }
    );
    let key = out
        .our_key
        .expect("an authenticated user has a session key");
    assert_eq!(key.to_vec(), out.their_key, "session keys differ");
}

#[test]
fn python_spnego_is_installed() {
    let status = Command::new("python3")
        .args(["-c", "import spnego"])
        .status()
        .expect("python3 is required for the interop tests");
    assert!(status.success(), "pip install pyspnego");
}

#[test]
fn raw_ntlm_logon() {
    let out = run("ntlm", "alice", "Secret-123", &[], default_acceptor()).unwrap();
    assert_user(&out, "alice");
    assert_eq!(out.steps, 2);
    assert!(!out.mic_verified);
}

#[test]
fn spnego_logon_with_mech_list_mic() {
    let out = run("negotiate", "alice", "Secret-123", &[], default_acceptor()).unwrap();
    assert_user(&out, "alice");
    assert_eq!(out.steps, 2);
    assert!(
        out.mic_verified,
        "our mechListMIC must reach and satisfy pyspnego"
    );
}

#[test]
fn domain_prefix_case_and_unicode_passwords() {
    let out = run(
        "negotiate",
        "WORKGROUP\\ALICE",
        "Secret-123",
        &[],
        default_acceptor(),
    )
    .unwrap();
    assert_user(&out, "alice");
    let out = run(
        "ntlm",
        "SOMEPC\\alice",
        "Secret-123",
        &[],
        default_acceptor(),
    )
    .unwrap();
    assert_user(&out, "alice");
    let out = run(
        "negotiate",
        "bj\u{f6}rn",
        "p\u{e4}ssw\u{f6}rd \u{20ac}",
        &[],
        default_acceptor(),
    )
    .unwrap();
    assert_user(&out, "Bj\u{f6}rn");
}

#[test]
fn kerberos_first_selects_ntlm_and_requires_mic() {
    let out = run("krb-first", "alice", "Secret-123", &[], default_acceptor()).unwrap();
    assert_user(&out, "alice");
    assert_eq!(out.steps, 3);
    assert!(out.mic_verified);
}

#[test]
fn wrong_password_is_logon_failure_even_with_guest_allowed() {
    for mode in ["ntlm", "negotiate"] {
        let err = run(mode, "alice", "secret-123", &[], default_acceptor()).unwrap_err();
        assert!(
            matches!(err, AuthError::LogonFailure { .. }),
            "{mode}: {err:?}"
        );
        let guest_ok = acceptor(AuthPolicy {
            allow_guest: true,
            ..AuthPolicy::default()
        });
        let err = run(mode, "alice", "wrong", &[], guest_ok).unwrap_err();
        assert!(
            matches!(err, AuthError::LogonFailure { .. }),
            "{mode}: {err:?}"
        );
        assert_eq!(err.nt_status(), 0xC000_006D);
    }
}

#[test]
fn unknown_user_and_guest() {
    let err = run("negotiate", "nobody", "x", &[], default_acceptor()).unwrap_err();
    assert!(matches!(err, AuthError::LogonFailure { .. }), "{err:?}");
    let err = run("ntlm", "Guest", "", &[], default_acceptor()).unwrap_err();
    assert_eq!(err, AuthError::GuestRefused);

    let guest_ok = || {
        acceptor(AuthPolicy {
            allow_guest: true,
            ..AuthPolicy::default()
        })
    };
    for (mode, user) in [
        ("negotiate", "nobody"),
        ("ntlm", "guest"),
        ("negotiate", "GUEST"),
    ] {
        let out = run(mode, user, "anything", &[], guest_ok()).unwrap();
        assert_eq!(out.identity, Identity::Guest, "{mode} {user}");
        assert_eq!(out.our_key, None);
    }
}

#[test]
fn disabled_account() {
    let err = run("negotiate", "mallory", "hunter2", &[], default_acceptor()).unwrap_err();
    assert_eq!(
        err,
        AuthError::AccountDisabled {
            user: "mallory".into()
        }
    );
    // A wrong password does not reveal that the account is disabled.
    let err = run("negotiate", "mallory", "nope", &[], default_acceptor()).unwrap_err();
    assert!(matches!(err, AuthError::LogonFailure { .. }), "{err:?}");
}

#[test]
fn ntlmv1_and_lm_from_pyspnego_are_refused() {
    // pyspnego follows gss-ntlmssp: LM_COMPAT_LEVEL 0/1 send LM + NTLMv1 responses.
    for level in ["0", "1", "2"] {
        let err = run(
            "ntlm",
            "alice",
            "Secret-123",
            &[("LM_COMPAT_LEVEL", level)],
            default_acceptor(),
        )
        .unwrap_err();
        assert_eq!(err, AuthError::NtlmV1Refused, "LM_COMPAT_LEVEL={level}");
    }
}

#[test]
fn mech_list_mic_may_follow_the_acceptors() {
    let out = run(
        "krb-first-late-mic",
        "alice",
        "Secret-123",
        &[],
        default_acceptor(),
    )
    .unwrap();
    assert_user(&out, "alice");
    assert_eq!(out.steps, 4);
}

#[test]
fn wrong_mech_list_mic_is_refused() {
    let err = run(
        "krb-first-bad-mic",
        "alice",
        "Secret-123",
        &[],
        default_acceptor(),
    )
    .unwrap_err();
    assert_eq!(err, AuthError::MicMismatch);
}

const CHALLENGE: [u8; 8] = [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef];
const FILETIME: u64 = 0x01dc_0000_0000_0000;

fn fixed_acceptor() -> Acceptor {
    default_acceptor().with_challenge(CHALLENGE, FILETIME)
}

/// An acceptor that has already consumed `tokens` successfully.
fn advanced(tokens: &[Vec<u8>]) -> Acceptor {
    let mut a = fixed_acceptor();
    for t in tokens {
        assert!(matches!(a.step(t), Ok(Step::Continue(_))));
    }
    a
}

#[test]
fn recorded_exchanges_replay_deterministically() {
    for mode in ["ntlm", "negotiate", "krb-first"] {
        let out = run(mode, "alice", "Secret-123", &[], fixed_acceptor()).unwrap();
        let (last, before) = out.tokens.split_last().unwrap();
        let mut a = advanced(before);
        match a.step(last).unwrap() {
            Step::Done { session_key, .. } => {
                assert_eq!(session_key.unwrap().to_vec(), out.their_key, "{mode}")
            }
            other => panic!("{mode}: {other:?}"),
        }
    }
}

#[test]
fn every_truncation_of_every_client_token_fails_cleanly() {
    for mode in ["ntlm", "negotiate", "krb-first-late-mic"] {
        let out = run(mode, "alice", "Secret-123", &[], fixed_acceptor()).unwrap();
        for (i, token) in out.tokens.iter().enumerate() {
            for cut in 0..token.len() {
                let mut a = advanced(&out.tokens[..i]);
                let result = a.step(&token[..cut]);
                let raw_negotiate = mode == "ntlm" && i == 0;
                if raw_negotiate && cut >= 16 {
                    // NEGOTIATE carries nothing we need past its flags.
                    continue;
                }
                if i == 0 && cut == 0 {
                    // An empty first token asks for the NegTokenInit2 hint.
                    assert!(matches!(result, Ok(Step::Continue(_))), "{mode}");
                    continue;
                }
                assert!(
                    result.is_err(),
                    "{mode}: token {i} cut at {cut}: {result:?}"
                );
                assert!(a.is_finished());
            }
        }
    }
}

#[test]
fn every_flipped_byte_of_authenticate_is_caught() {
    // The AUTHENTICATE MIC covers the whole message, so no single-bit change may pass.
    let out = run("ntlm", "alice", "Secret-123", &[], fixed_acceptor()).unwrap();
    let auth = &out.tokens[1];
    for i in 0..auth.len() {
        for bit in [0x01u8, 0x80] {
            let mut bad = auth.clone();
            bad[i] ^= bit;
            let mut a = advanced(&out.tokens[..1]);
            let result = a.step(&bad);
            assert!(
                !matches!(result, Ok(Step::Done { .. })),
                "byte {i} ^ {bit:#x} accepted"
            );
        }
    }
}

#[test]
fn tampered_mic_fields_are_mic_mismatch() {
    let out = run("ntlm", "alice", "Secret-123", &[], fixed_acceptor()).unwrap();
    let mut bad = out.tokens[1].clone();
    bad[80] ^= 0xff; // inside the MIC field (bytes 72..88)
    let mut a = advanced(&out.tokens[..1]);
    assert_eq!(a.step(&bad), Err(AuthError::MicMismatch));
}

#[test]
fn throttle_locks_out_guessers_and_forgets_after_success() {
    use lanshare_auth::{LogonThrottle, ThrottleConfig};
    use std::net::{IpAddr, Ipv4Addr};
    use std::time::Duration;

    let throttle = Arc::new(LogonThrottle::new(ThrottleConfig {
        ip_max_failures: 3,
        user_max_failures: 2,
        window: Duration::from_secs(600),
        lockout: Duration::from_secs(600),
        max_tracked_addresses: 16,
    }));
    let a = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    let b = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
    let with = |ip| default_acceptor().with_throttle(Arc::clone(&throttle), ip);

    // One failure, then a success: the slate is clean again.
    assert!(run("ntlm", "alice", "nope", &[], with(a)).is_err());
    run("ntlm", "alice", "Secret-123", &[], with(a)).unwrap();
    // Two wrong passwords lock the account, from any address, even with the right password.
    assert!(run("ntlm", "alice", "nope", &[], with(a)).is_err());
    assert!(run("negotiate", "alice", "nope", &[], with(b)).is_err());
    let err = run("ntlm", "alice", "Secret-123", &[], with(b)).unwrap_err();
    assert!(matches!(err, AuthError::LockedOut { .. }), "{err:?}");
    assert_eq!(err.nt_status(), 0xC000_0234);
    // Unknown names count against the address only: failures 2 and 3 of address a.
    assert!(run("ntlm", "nobody", "x", &[], with(a)).is_err());
    assert!(run("ntlm", "nobody-else", "x", &[], with(a)).is_err());
    let err = run("ntlm", "someone", "x", &[], with(a)).unwrap_err();
    assert!(matches!(err, AuthError::LockedOut { .. }), "{err:?}");
    assert_eq!(throttle.locked_out(std::time::Instant::now()), (1, 1));
}
