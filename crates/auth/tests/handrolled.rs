//! Hand-built tokens for the cases no well-behaved client produces: NTLMv1, anonymous,
//! foreign mechanisms, garbage. Plus property tests over arbitrary bytes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use lanshare_auth::{
    Acceptor, AuthError, AuthPolicy, Identity, MemoryUserDb, Step, UserFile, fuzz_step,
    negotiate_hint,
};
use proptest::prelude::*;

const CHALLENGE: [u8; 8] = [1, 2, 3, 4, 5, 6, 7, 8];
const NTLM_OID: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x02, 0x0a];
const KRB5_OID: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02];

fn acceptor(allow_anonymous: bool, allow_guest: bool) -> Acceptor {
    let db = MemoryUserDb::new().with_user("alice", "Secret-123");
    let policy = AuthPolicy {
        allow_anonymous,
        allow_guest,
        ..AuthPolicy::default()
    };
    Acceptor::new(Arc::new(db), Arc::new(policy)).with_challenge(CHALLENGE, 0)
}

/// NEGOTIATE_MESSAGE with UNICODE | NTLM | ESS | KEY_EXCH | 128 | SIGN.
fn negotiate() -> Vec<u8> {
    let mut m = b"NTLMSSP\0".to_vec();
    m.extend_from_slice(&1u32.to_le_bytes());
    m.extend_from_slice(&0x6008_0215u32.to_le_bytes());
    m.extend_from_slice(&[0u8; 16]);
    m
}

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// AUTHENTICATE_MESSAGE with the given fields, in the post-Vista layout (with Version and MIC).
fn authenticate(lm: &[u8], nt: &[u8], domain: &str, user: &str, key: &[u8], flags: u32) -> Vec<u8> {
    let fields = [
        lm.to_vec(),
        nt.to_vec(),
        utf16(domain),
        utf16(user),
        utf16("WS"),
        key.to_vec(),
    ];
    let mut header = b"NTLMSSP\0".to_vec();
    header.extend_from_slice(&3u32.to_le_bytes());
    let mut payload = Vec::new();
    let mut offset = 88u32;
    for f in &fields {
        let len = u16::try_from(f.len()).unwrap();
        header.extend_from_slice(&len.to_le_bytes());
        header.extend_from_slice(&len.to_le_bytes());
        header.extend_from_slice(&offset.to_le_bytes());
        offset += u32::from(len);
        payload.extend_from_slice(f);
    }
    header.extend_from_slice(&flags.to_le_bytes());
    header.extend_from_slice(&[0u8; 8]); // Version
    header.extend_from_slice(&[0u8; 16]); // MIC
    header.extend_from_slice(&payload);
    header
}

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    if content.len() < 0x80 {
        out.push(content.len() as u8);
    } else {
        out.push(0x82);
        out.extend_from_slice(&(content.len() as u16).to_be_bytes());
    }
    out.extend_from_slice(content);
    out
}

fn spnego_init(mechs: &[&[u8]], token: Option<&[u8]>) -> Vec<u8> {
    let list: Vec<u8> = mechs.iter().flat_map(|m| der(0x06, m)).collect();
    let mut body = der(0xa0, &der(0x30, &list));
    if let Some(t) = token {
        body.extend(der(0xa2, &der(0x04, t)));
    }
    let mut app = der(0x06, &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x02]);
    app.extend(der(0xa0, &der(0x30, &body)));
    der(0x60, &app)
}

fn spnego_resp(token: &[u8]) -> Vec<u8> {
    der(0xa1, &der(0x30, &der(0xa2, &der(0x04, token))))
}

const FLAGS: u32 = 0x6008_0215;

#[test]
fn ntlmv1_and_lm_only_are_refused() {
    // NTLMv1: 24-byte LM and NT responses.
    let mut a = acceptor(true, true);
    a.step(&negotiate()).unwrap();
    let v1 = authenticate(
        &[0x11; 24],
        &[0x22; 24],
        "WORKGROUP",
        "alice",
        &[0; 16],
        FLAGS,
    );
    assert_eq!(a.step(&v1), Err(AuthError::NtlmV1Refused));
    // LM only: no NT response at all.
    let mut a = acceptor(true, true);
    a.step(&negotiate()).unwrap();
    let lm = authenticate(&[0x11; 24], &[], "WORKGROUP", "alice", &[], FLAGS);
    assert_eq!(a.step(&lm), Err(AuthError::NtlmV1Refused));
    // Even for an unknown user with guest allowed: the response type is refused first.
    let mut a = acceptor(true, true);
    a.step(&negotiate()).unwrap();
    let v1 = authenticate(&[0x11; 24], &[0x22; 24], "", "nobody", &[], FLAGS);
    assert_eq!(a.step(&v1), Err(AuthError::NtlmV1Refused));
}

#[test]
fn anonymous_allowed_and_refused() {
    for lm in [&[][..], &[0u8][..]] {
        let mut a = acceptor(true, false);
        a.step(&negotiate()).unwrap();
        let anon = authenticate(lm, &[], "", "", &[], FLAGS | 0x800);
        assert_eq!(
            a.step(&anon),
            Ok(Step::Done {
                token: vec![],
                identity: Identity::Anonymous,
                session_key: None
            })
        );

        let mut a = acceptor(false, true);
        a.step(&negotiate()).unwrap();
        assert_eq!(a.step(&anon), Err(AuthError::AnonymousRefused));
    }
}

#[test]
fn anonymous_over_spnego_completes_without_mic() {
    let mut a = acceptor(true, false);
    let Step::Continue(reply) = a
        .step(&spnego_init(&[NTLM_OID], Some(&negotiate())))
        .unwrap()
    else {
        panic!()
    };
    // accept-incomplete, supportedMech NTLMSSP, a CHALLENGE inside.
    assert_eq!(&reply[..2], &[0xa1, reply[1]]);
    assert!(reply.windows(NTLM_OID.len()).any(|w| w == NTLM_OID));
    assert!(reply.windows(8).any(|w| w == b"NTLMSSP\0"));
    let anon = authenticate(&[0], &[], "", "", &[], FLAGS);
    match a.step(&spnego_resp(&anon)).unwrap() {
        Step::Done {
            token,
            identity,
            session_key,
        } => {
            assert_eq!(identity, Identity::Anonymous);
            assert_eq!(session_key, None);
            // NegTokenResp { negState accept-completed } and nothing else.
            assert_eq!(
                token,
                vec![0xa1, 0x07, 0x30, 0x05, 0xa0, 0x03, 0x0a, 0x01, 0x00]
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn unknown_user_without_guest_is_logon_failure() {
    let mut a = acceptor(false, false);
    a.step(&negotiate()).unwrap();
    let mut nt = vec![0x33; 16];
    nt.extend_from_slice(&[1, 1, 0, 0, 0, 0, 0, 0]);
    nt.extend_from_slice(&[0; 20]);
    nt.extend_from_slice(&[0; 4]);
    let auth = authenticate(&[0; 24], &nt, "", "nobody", &[0; 16], FLAGS);
    assert!(matches!(a.step(&auth), Err(AuthError::LogonFailure { .. })));
    assert_eq!(a.step(&auth), Err(AuthError::Finished));
}

/// A database read a moment ago: lookups answer from that read until `reload_if_changed`
/// finds the newer version (`changed`).
struct StaleDb {
    changed: bool,
    reloads: std::sync::atomic::AtomicUsize,
    lookups: std::sync::atomic::AtomicUsize,
}

impl lanshare_auth::UserDb for StaleDb {
    fn lookup(&self, _user: &str) -> Option<lanshare_auth::UserRecord> {
        self.lookups
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        None
    }

    fn reload_if_changed(&self) -> bool {
        self.reloads
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.changed
    }
}

#[test]
fn a_refused_logon_rereads_a_changed_user_db_and_tries_again() {
    use std::sync::atomic::Ordering::SeqCst;
    for changed in [false, true] {
        let db = Arc::new(StaleDb {
            changed,
            reloads: Default::default(),
            lookups: Default::default(),
        });
        let mut a =
            Acceptor::new(db.clone(), Arc::new(AuthPolicy::default())).with_challenge(CHALLENGE, 0);
        a.step(&negotiate()).unwrap();
        let mut nt = vec![0x33; 16];
        nt.extend_from_slice(&[1, 1, 0, 0, 0, 0, 0, 0]);
        nt.extend_from_slice(&[0; 20]);
        nt.extend_from_slice(&[0; 4]);
        let auth = authenticate(&[0; 24], &nt, "", "nobody", &[0; 16], FLAGS);
        assert!(matches!(a.step(&auth), Err(AuthError::LogonFailure { .. })));
        assert_eq!(db.reloads.load(SeqCst), 1, "changed {changed}");
        // A second lookup only when a newer version was loaded.
        assert_eq!(db.lookups.load(SeqCst), if changed { 2 } else { 1 });
    }
}

#[test]
fn kerberos_only_is_mech_not_supported() {
    let mut a = acceptor(true, true);
    assert_eq!(
        a.step(&spnego_init(&[KRB5_OID], Some(b"ticket"))),
        Err(AuthError::MechNotSupported)
    );
    // A bare Kerberos GSS token (no SPNEGO) too.
    let mut app = der(0x06, KRB5_OID);
    app.extend_from_slice(&[0x01, 0x00]);
    let mut a = acceptor(true, true);
    assert_eq!(a.step(&der(0x60, &app)), Err(AuthError::MechNotSupported));
}

#[test]
fn kerberos_first_gets_supported_mech_without_token() {
    let mut a = acceptor(true, true);
    let Step::Continue(reply) = a
        .step(&spnego_init(
            &[KRB5_OID, NTLM_OID],
            Some(b"optimistic krb5 token"),
        ))
        .unwrap()
    else {
        panic!()
    };
    let mut expected_body = der(0xa0, &der(0x0a, &[1]));
    expected_body.extend(der(0xa1, &der(0x06, NTLM_OID)));
    assert_eq!(reply, der(0xa1, &der(0x30, &expected_body)));
    // Next comes the NEGOTIATE in a NegTokenResp; the reply carries CHALLENGE and no mech.
    let Step::Continue(reply) = a.step(&spnego_resp(&negotiate())).unwrap() else {
        panic!()
    };
    assert!(reply.windows(8).any(|w| w == b"NTLMSSP\0"));
    assert!(!reply.windows(NTLM_OID.len()).any(|w| w == NTLM_OID));
}

#[test]
fn empty_first_token_gets_the_hint_once() {
    let mut a = acceptor(false, false);
    assert_eq!(a.step(&[]), Ok(Step::Continue(negotiate_hint())));
    assert!(matches!(a.step(&[]), Err(AuthError::Malformed(_))));
}

#[test]
fn garbage_is_malformed() {
    for token in [
        &b"\x00"[..],
        b"NTLMSSP\0",
        b"NTLMSSP\0\x03\0\0\0",
        b"\x60\x80",
        b"\xa0\x02\x30\x00",
        b"\xa1\x00",
    ] {
        let mut a = acceptor(true, true);
        assert!(
            matches!(a.step(token), Err(AuthError::Malformed(_))),
            "{token:?}"
        );
    }
    let mut a = acceptor(true, true);
    assert!(matches!(
        a.step(&vec![0x60; 70_000]),
        Err(AuthError::Malformed(_))
    ));
}

#[test]
fn error_codes_map_to_nt_status() {
    assert_eq!(AuthError::NtlmV1Refused.nt_status(), 0xC000_006D);
    assert_eq!(AuthError::GuestRefused.nt_status(), 0xC000_006D);
    assert_eq!(
        AuthError::AccountDisabled { user: "x".into() }.nt_status(),
        0xC000_0072
    );
    assert_eq!(AuthError::Malformed(String::new()).nt_status(), 0xC000_000D);
}

proptest! {
    #[test]
    fn any_first_token_is_handled(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut a = acceptor(true, true);
        let _ = a.step(&data);
    }

    #[test]
    fn any_authenticate_is_handled(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut a = acceptor(true, true);
        a.step(&negotiate()).unwrap();
        let mut token = b"NTLMSSP\0\x03\0\0\0".to_vec();
        token.extend_from_slice(&data);
        let _ = a.step(&token);
    }

    #[test]
    fn any_spnego_followup_is_handled(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut a = acceptor(true, true);
        a.step(&spnego_init(&[NTLM_OID], Some(&negotiate()))).unwrap();
        let _ = a.step(&data);
        // The same bytes inside a well-formed outer [1] header reach the inner parsers.
        let mut a = acceptor(true, true);
        a.step(&spnego_init(&[NTLM_OID], Some(&negotiate()))).unwrap();
        let mut token = vec![0xa1, 0x82];
        token.extend_from_slice(&(data.len() as u16).to_be_bytes());
        token.extend_from_slice(&data);
        let _ = a.step(&token);
    }

    #[test]
    fn fuzz_step_never_panics(data in proptest::collection::vec(any::<u8>(), 0..1024)) {
        fuzz_step(&data);
    }

    #[test]
    fn user_file_parse_never_panics(text in "\\PC{0,300}") {
        let _ = UserFile::parse(&text, std::path::Path::new("users"));
    }
}

#[test]
fn acceptor_moves_between_threads() {
    // The engine keeps an Acceptor in a session across await points on a multi-thread runtime.
    fn send_static<T: Send + 'static>() {}
    send_static::<Acceptor>();
    send_static::<Step>();
    send_static::<AuthError>();
    fn sync<T: Send + Sync>() {}
    sync::<lanshare_auth::WatchedUserFile>();
    sync::<UserFile>();
}
