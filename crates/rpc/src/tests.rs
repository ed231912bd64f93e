//! Unit tests of the pipe state machine and the operations, with hand-built PDUs.

use proptest::prelude::*;

use crate::ndr::{NdrReader, NdrWriter};
use crate::pdu::{NDR20, NDR64, SyntaxId, fault, nak, pfc, ptype, result};
use crate::pipe::{MAX_PENDING_OUTPUT, MAX_REQUEST_STUB};
use crate::{
    Pipe, RpcContext, RpcError, ServerInfo, ShareInfo, ShareKind, open_pipe, srvsvc, wkssvc,
};

struct Ctx {
    shares: Vec<ShareInfo>,
}

fn share(name: &str, comment: &str, hidden: bool) -> ShareInfo {
    ShareInfo {
        name: name.into(),
        comment: comment.into(),
        kind: ShareKind::Disk,
        hidden_from_list: hidden,
        path: format!("C:\\{name}"),
        max_uses: u32::MAX,
        current_uses: 2,
    }
}

impl Ctx {
    fn new() -> Ctx {
        Ctx {
            shares: vec![
                share("docs", "Documents", false),
                share("secret$", "Hidden by name", true),
                share("unlisted", "browseable = false", true),
            ],
        }
    }
}

impl RpcContext for Ctx {
    fn shares(&self) -> Vec<ShareInfo> {
        self.shares.clone()
    }
    fn server(&self) -> ServerInfo {
        ServerInfo {
            name: "LANSHARE".into(),
            comment: "a lanshare server".into(),
            version_major: 10,
            version_minor: 0,
            domain: "WORKGROUP".into(),
        }
    }
}

fn btfn(bits: u8) -> SyntaxId {
    let mut s = SyntaxId::new(
        0x6cb7_1c2c,
        0x9812,
        0x4540,
        [bits, 0, 0, 0, 0, 0, 0, 0],
        1,
        0,
    );
    s.uuid[8] = bits;
    s
}

fn put_syntax(b: &mut Vec<u8>, s: &SyntaxId) {
    b.extend_from_slice(&s.uuid);
    b.extend_from_slice(&s.version.to_le_bytes());
}

fn pdu(ptype: u8, flags: u8, call_id: u32, body: &[u8]) -> Vec<u8> {
    let mut b = vec![5, 0, ptype, flags, 0x10, 0, 0, 0];
    b.extend_from_slice(&u16::try_from(16 + body.len()).unwrap().to_le_bytes());
    b.extend_from_slice(&0u16.to_le_bytes());
    b.extend_from_slice(&call_id.to_le_bytes());
    b.extend_from_slice(body);
    b
}

fn bind_body(xmit: u16, recv: u16, contexts: &[(u16, SyntaxId, &[SyntaxId])]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&xmit.to_le_bytes());
    b.extend_from_slice(&recv.to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(&[u8::try_from(contexts.len()).unwrap(), 0, 0, 0]);
    for (id, abs, ts) in contexts {
        b.extend_from_slice(&id.to_le_bytes());
        b.extend_from_slice(&[u8::try_from(ts.len()).unwrap(), 0]);
        put_syntax(&mut b, abs);
        for t in *ts {
            put_syntax(&mut b, t);
        }
    }
    b
}

fn bind(call_id: u32, contexts: &[(u16, SyntaxId, &[SyntaxId])]) -> Vec<u8> {
    pdu(ptype::BIND, 3, call_id, &bind_body(4280, 4280, contexts))
}

fn request(call_id: u32, flags: u8, ctx_id: u16, opnum: u16, stub: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&u32::try_from(stub.len()).unwrap().to_le_bytes());
    body.extend_from_slice(&ctx_id.to_le_bytes());
    body.extend_from_slice(&opnum.to_le_bytes());
    body.extend_from_slice(stub);
    pdu(ptype::REQUEST, flags, call_id, &body)
}

/// Every whole fragment waiting on the pipe.
fn drain(p: &mut Pipe) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let (b, more) = p.read(usize::MAX);
        assert!(!more);
        if b.is_empty() {
            return out;
        }
        out.push(b);
    }
}

fn one(p: &mut Pipe) -> Vec<u8> {
    let mut v = drain(p);
    assert_eq!(v.len(), 1, "expected exactly one PDU");
    v.remove(0)
}

fn u16_at(b: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([b[i], b[i + 1]])
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes(b[i..i + 4].try_into().unwrap())
}

/// (result, reason) of each context in a BIND_ACK / ALTER_CONTEXT_RESP.
fn ack_results(b: &[u8]) -> Vec<(u16, u16, SyntaxId)> {
    let sec_len = usize::from(u16_at(b, 24));
    let mut at = (26 + sec_len + 3) & !3;
    let n = b[at];
    at += 4;
    (0..n)
        .map(|i| {
            let r = at + usize::from(i) * 24;
            let mut s = SyntaxId::ZERO;
            s.uuid.copy_from_slice(&b[r + 4..r + 20]);
            s.version = u32_at(b, r + 20);
            (u16_at(b, r), u16_at(b, r + 2), s)
        })
        .collect()
}

/// (call_id, flags, status) of a FAULT.
fn fault_of(b: &[u8]) -> (u32, u8, u32) {
    assert_eq!(b[2], ptype::FAULT, "not a fault: {b:02x?}");
    assert_eq!(b.len(), 32);
    (u32_at(b, 12), b[3], u32_at(b, 24))
}

fn bound_srvsvc() -> Pipe {
    let mut p = open_pipe("srvsvc").unwrap();
    p.write(&bind(1, &[(0, srvsvc::SYNTAX, &[NDR20])]), &Ctx::new())
        .unwrap();
    let ack = one(&mut p);
    assert_eq!(ack[2], ptype::BIND_ACK);
    p
}

fn enum_stub(level: u32, resume: bool) -> Vec<u8> {
    let mut w = NdrWriter::new();
    w.pointer(true);
    w.wstring("\\\\192.0.2.1");
    w.u32(level);
    w.u32(level);
    if matches!(level, 0 | 1 | 2 | 501 | 502 | 503) {
        w.pointer(true);
        w.u32(0);
        w.pointer(false);
    }
    w.u32(u32::MAX);
    w.pointer(resume);
    if resume {
        w.u32(0);
    }
    w.into_bytes()
}

fn getinfo_stub(name: &str, level: u32) -> Vec<u8> {
    let mut w = NdrWriter::new();
    w.pointer(false);
    w.wstring(name);
    w.u32(level);
    w.into_bytes()
}

fn server_stub(opnum_level: u32) -> Vec<u8> {
    let mut w = NdrWriter::new();
    w.pointer(true);
    w.wstring("LANSHARE");
    w.u32(opnum_level);
    w.into_bytes()
}

/// Reassembles the stub of the RESPONSE fragments.
fn response_stub(frags: &[Vec<u8>]) -> Vec<u8> {
    let mut stub = Vec::new();
    for (i, f) in frags.iter().enumerate() {
        assert_eq!(f[2], ptype::RESPONSE, "not a response: {f:02x?}");
        assert_eq!(f[3] & pfc::FIRST_FRAG != 0, i == 0);
        assert_eq!(f[3] & pfc::LAST_FRAG != 0, i + 1 == frags.len());
        stub.extend_from_slice(&f[24..]);
    }
    stub
}

fn call(p: &mut Pipe, ctx: &Ctx, opnum: u16, stub: &[u8]) -> Vec<u8> {
    p.write(&request(9, 3, 0, opnum, stub), ctx).unwrap();
    response_stub(&drain(p))
}

/// A decoded NetrShareEnum answer: (level, [(name, type, remark)], total, status).
fn decode_enum(stub: &[u8]) -> (u32, Vec<(String, u32, String)>, u32, u32) {
    let mut r = NdrReader::new(stub);
    let level = r.u32().unwrap();
    assert_eq!(r.u32().unwrap(), level);
    let mut entries = Vec::new();
    let has_arm = matches!(level, 0 | 1 | 2 | 501 | 502 | 503);
    if has_arm && r.pointer().unwrap() {
        let n = r.u32().unwrap();
        if r.pointer().unwrap() {
            assert_eq!(r.u32().unwrap(), n);
            let mut fixed = Vec::new();
            for _ in 0..n {
                assert!(r.pointer().unwrap());
                let ty = r.u32().unwrap();
                assert!(r.pointer().unwrap());
                if level == 2 {
                    for _ in 0..3 {
                        r.u32().unwrap();
                    }
                    assert!(r.pointer().unwrap());
                    assert!(r.pointer().unwrap());
                }
                fixed.push(ty);
            }
            for ty in fixed {
                let name = r.wstring().unwrap();
                let remark = r.wstring().unwrap();
                if level == 2 {
                    r.wstring().unwrap();
                    assert_eq!(r.wstring().unwrap(), "");
                }
                entries.push((name, ty, remark));
            }
        }
    }
    let total = r.u32().unwrap();
    if r.pointer().unwrap() {
        assert_eq!(r.u32().unwrap(), 0, "resume handle");
    }
    let status = r.u32().unwrap();
    (level, entries, total, status)
}

#[test]
fn pipe_can_live_in_an_async_engine() {
    fn check<T: Send + Sync + 'static>() {}
    check::<Pipe>();
    check::<RpcError>();
}

#[test]
fn pipe_names() {
    for ok in [
        "srvsvc",
        "SRVSVC",
        "\\srvsvc",
        "\\PIPE\\srvsvc",
        "pipe\\SrvSvc",
        "\\\\pipe\\\\srvsvc",
    ] {
        assert_eq!(
            open_pipe(ok).map(|p| p.name().to_string()).as_deref(),
            Some("srvsvc"),
            "{ok}"
        );
    }
    assert_eq!(open_pipe("\\PIPE\\wkssvc").unwrap().name(), "wkssvc");
    for bad in [
        "",
        "\\",
        "PIPE\\",
        "lsarpc",
        "srvsvc2",
        "srvsvc\\",
        "pipe\\pipe\\srvsvc",
        "ipe\\srvsvc",
    ] {
        assert!(open_pipe(bad).is_none(), "{bad}");
    }
}

#[test]
fn bind_negotiates_fragment_sizes() {
    for ((xmit, recv), want) in [
        ((4280, 4280), 4280),
        ((1024, 1024), 2048),
        ((65535, 65535), 5840),
        ((5000, 4281), 4280),
        ((0, 0), 2048),
    ] {
        let mut p = open_pipe("srvsvc").unwrap();
        let b = pdu(
            ptype::BIND,
            3,
            1,
            &bind_body(xmit, recv, &[(0, srvsvc::SYNTAX, &[NDR20])]),
        );
        p.write(&b, &Ctx::new()).unwrap();
        let ack = one(&mut p);
        assert_eq!((u16_at(&ack, 16), u16_at(&ack, 18)), (want, want));
        assert_ne!(u32_at(&ack, 20), 0, "assoc group");
        // The secondary address names the pipe.
        assert_eq!(&ack[26..39], b"\\pipe\\srvsvc\0");
    }
}

#[test]
fn bind_context_results() {
    let mut p = open_pipe("srvsvc").unwrap();
    let wrong_major = SyntaxId {
        version: 2,
        ..srvsvc::SYNTAX
    };
    let newer_minor = SyntaxId {
        version: 3 | (1 << 16),
        ..srvsvc::SYNTAX
    };
    p.write(
        &bind(
            1,
            &[
                (0, srvsvc::SYNTAX, &[NDR64, NDR20]),
                (1, srvsvc::SYNTAX, &[NDR64]),
                (2, srvsvc::SYNTAX, &[btfn(0xff)]),
                (3, srvsvc::SYNTAX, &[btfn(0x02)]),
                (4, wkssvc::SYNTAX, &[NDR20]),
                (5, wrong_major, &[NDR20]),
                (6, newer_minor, &[NDR20]),
                (7, srvsvc::SYNTAX, &[]),
            ],
        ),
        &Ctx::new(),
    )
    .unwrap();
    let ack = one(&mut p);
    let r: Vec<(u16, u16)> = ack_results(&ack).iter().map(|(a, b, _)| (*a, *b)).collect();
    assert_eq!(
        r,
        [
            (result::ACCEPTANCE, 0),
            // NDR64 alone is accepted (NDR 2.0 is preferred when both are offered).
            (result::ACCEPTANCE, 0),
            (result::NEGOTIATE_ACK, 0x03),
            // Only the first feature negotiation element counts.
            (
                result::PROVIDER_REJECTION,
                result::TRANSFER_SYNTAXES_NOT_SUPPORTED
            ),
            (
                result::PROVIDER_REJECTION,
                result::ABSTRACT_SYNTAX_NOT_SUPPORTED
            ),
            (
                result::PROVIDER_REJECTION,
                result::ABSTRACT_SYNTAX_NOT_SUPPORTED
            ),
            (
                result::PROVIDER_REJECTION,
                result::ABSTRACT_SYNTAX_NOT_SUPPORTED
            ),
            (
                result::PROVIDER_REJECTION,
                result::TRANSFER_SYNTAXES_NOT_SUPPORTED
            ),
        ]
    );
    assert_eq!(ack_results(&ack)[0].2, NDR20);
    assert_eq!(ack_results(&ack)[1].2, NDR64);
    // Context 7 was refused: nca_unk_if.
    p.write(&request(2, 3, 7, 21, &server_stub(100)), &Ctx::new())
        .unwrap();
    assert_eq!(fault_of(&one(&mut p)), (2, 0x23, fault::UNK_IF));
    p.write(&request(3, 3, 0, 21, &server_stub(100)), &Ctx::new())
        .unwrap();
    assert_eq!(one(&mut p)[2], ptype::RESPONSE);
}

/// NetrServerGetInfo level 100 over an NDR64 context ([MS-RPCE] 2.2.5.3): 8-byte referent
/// ids (all 0x20000, as Windows writes unique pointers) and string counts, each aligned to 8;
/// u32 fields as in NDR 2.0.
#[test]
fn ndr64_server_get_info_layout() {
    let ctx = Ctx::new();
    let mut p = open_pipe("srvsvc").unwrap();
    p.write(&bind(1, &[(0, srvsvc::SYNTAX, &[NDR64])]), &ctx)
        .unwrap();
    let ack = one(&mut p);
    assert_eq!(ack_results(&ack)[0], (result::ACCEPTANCE, 0, NDR64));
    // ServerName: a NULL unique pointer (8 bytes); Level: 100.
    let mut req = vec![0u8; 8];
    req.extend_from_slice(&100u32.to_le_bytes());
    p.write(&request(2, 3, 0, 21, &req), &ctx).unwrap();
    let stub = response_stub(&drain(&mut p));

    let mut want = Vec::new();
    want.extend_from_slice(&100u32.to_le_bytes()); // union discriminant
    want.extend_from_slice(&[0; 4]); // padding to the 8-byte pointer
    want.extend_from_slice(&0x0002_0000u64.to_le_bytes()); // SERVER_INFO_100*
    want.extend_from_slice(&500u32.to_le_bytes()); // sv100_platform_id
    want.extend_from_slice(&[0; 4]);
    want.extend_from_slice(&0x0002_0000u64.to_le_bytes()); // sv100_name: the same id
    let name: Vec<u16> = "LANSHARE\0".encode_utf16().collect();
    let n = name.len() as u64;
    for count in [n, 0, n] {
        want.extend_from_slice(&count.to_le_bytes()); // max count, offset, actual count
    }
    for u in name {
        want.extend_from_slice(&u.to_le_bytes());
    }
    want.extend_from_slice(&[0; 2]); // 18 bytes of string: pad to 4
    want.extend_from_slice(&0u32.to_le_bytes()); // NERR_Success
    assert_eq!(stub, want);
}

/// NetrShareEnum level 1 over NDR64 reads back with the NDR64 reader: the listing is the
/// NDR 2.0 one.
#[test]
fn ndr64_share_enum_round_trip() {
    let ctx = Ctx::new();
    let mut p = open_pipe("srvsvc").unwrap();
    p.write(&bind(1, &[(0, srvsvc::SYNTAX, &[NDR64])]), &ctx)
        .unwrap();
    one(&mut p);
    // ServerName NULL; InfoStruct { Level 1, the union aligned to 8: switch 1,
    // container* -> { 0, NULL } }; PreferedMaximumLength; ResumeHandle NULL.
    let mut req = vec![0u8; 8];
    req.extend_from_slice(&1u32.to_le_bytes());
    req.extend_from_slice(&[0; 4]);
    req.extend_from_slice(&1u32.to_le_bytes());
    req.extend_from_slice(&[0; 4]);
    req.extend_from_slice(&0x0002_0000u64.to_le_bytes());
    req.extend_from_slice(&0u32.to_le_bytes());
    req.extend_from_slice(&[0; 4]);
    req.extend_from_slice(&0u64.to_le_bytes());
    req.extend_from_slice(&u32::MAX.to_le_bytes());
    req.extend_from_slice(&[0; 4]);
    req.extend_from_slice(&0u64.to_le_bytes());
    p.write(&request(2, 3, 0, 15, &req), &ctx).unwrap();
    let stub = response_stub(&drain(&mut p));
    let mut r = NdrReader::with_syntax(&stub, true);
    assert_eq!(
        &stub[..16],
        &[1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]
    );
    assert_eq!(r.u32().unwrap(), 1); // Level
    r.align_pointer().unwrap();
    assert_eq!(r.u32().unwrap(), 1); // switch
    assert!(r.pointer().unwrap()); // container
    let n = r.u32().unwrap();
    assert!(r.pointer().unwrap()); // Buffer
    assert_eq!(r.size_for_tests().unwrap(), n);
    let mut types = Vec::new();
    for _ in 0..n {
        assert!(r.pointer().unwrap());
        types.push(r.u32().unwrap());
        assert!(r.pointer().unwrap());
    }
    let mut listed = Vec::new();
    for t in types {
        listed.push((r.wstring().unwrap(), t, r.wstring().unwrap()));
    }
    assert_eq!(
        listed,
        [
            ("docs".to_string(), 0, "Documents".to_string()),
            ("IPC$".to_string(), 0x8000_0003, "Remote IPC".to_string()),
        ]
    );
    assert_eq!(r.u32().unwrap(), n); // TotalEntries
    assert!(!r.pointer().unwrap()); // ResumeHandle
    assert_eq!(r.u32().unwrap(), 0);
    assert_eq!(r.remaining_for_tests(), 0);
}

#[test]
fn bind_refusals() {
    let ctx = Ctx::new();
    let ok = bind(1, &[(0, srvsvc::SYNTAX, &[NDR20])]);
    let naks = |b: &[u8]| {
        let mut p = open_pipe("srvsvc").unwrap();
        p.write(b, &ctx).unwrap();
        let nak = one(&mut p);
        assert_eq!(nak[2], ptype::BIND_NAK);
        assert_eq!(&nak[18..21], &[1, 5, 0], "offers version 5.0");
        assert!(!p.is_closed());
        u16_at(&nak, 16)
    };
    let mut v4 = ok.clone();
    v4[0] = 4;
    assert_eq!(naks(&v4), nak::PROTOCOL_VERSION_NOT_SUPPORTED);
    let mut minor2 = ok.clone();
    minor2[1] = 2;
    assert_eq!(naks(&minor2), nak::PROTOCOL_VERSION_NOT_SUPPORTED);
    let mut ebcdic = ok.clone();
    ebcdic[4] = 0x11;
    assert_eq!(naks(&ebcdic), nak::REASON_NOT_SPECIFIED);
    // Authentication: auth_length within the fragment, but we serve no auth.
    let mut auth = ok.clone();
    auth[10] = 8;
    assert_eq!(naks(&auth), nak::AUTHENTICATION_TYPE_NOT_RECOGNIZED);
    // No contexts, and a truncated context list.
    assert_eq!(naks(&bind(1, &[])), nak::PROTOCOL_VERSION_NOT_SUPPORTED);
    let mut short = ok[..ok.len() - 4].to_vec();
    short[8] = u8::try_from(short.len()).unwrap();
    assert_eq!(naks(&short), nak::PROTOCOL_VERSION_NOT_SUPPORTED);
}

#[test]
fn big_endian_bind_is_refused_and_skipped() {
    let ctx = Ctx::new();
    let mut be = bind(7, &[(0, srvsvc::SYNTAX, &[NDR20])]);
    be[4] = 0x00;
    let len = u16::try_from(be.len()).unwrap();
    be[8..10].copy_from_slice(&len.to_be_bytes());
    be[12..16].copy_from_slice(&7u32.to_be_bytes());
    let mut p = open_pipe("srvsvc").unwrap();
    // The refused PDU is skipped by its big-endian length: the bind after it works.
    let mut both = be.clone();
    both.extend_from_slice(&bind(8, &[(0, srvsvc::SYNTAX, &[NDR20])]));
    p.write(&both, &ctx).unwrap();
    let out = drain(&mut p);
    assert_eq!(out.len(), 2);
    assert_eq!((out[0][2], u32_at(&out[0], 12)), (ptype::BIND_NAK, 7));
    assert_eq!((out[1][2], u32_at(&out[1], 12)), (ptype::BIND_ACK, 8));
}

#[test]
fn second_bind_is_refused_and_first_binding_stays() {
    let ctx = Ctx::new();
    let mut p = bound_srvsvc();
    p.write(&bind(2, &[(5, srvsvc::SYNTAX, &[NDR20])]), &ctx)
        .unwrap();
    assert_eq!(one(&mut p)[2], ptype::BIND_NAK);
    p.write(&request(3, 3, 0, 21, &server_stub(100)), &ctx)
        .unwrap();
    assert_eq!(one(&mut p)[2], ptype::RESPONSE);
}

#[test]
fn alter_context_adds_contexts_up_to_the_limit() {
    let ctx = Ctx::new();
    let mut p = open_pipe("srvsvc").unwrap();
    let alter = |call, ids: std::ops::Range<u16>| {
        let ctxs: Vec<(u16, SyntaxId, &[SyntaxId])> =
            ids.map(|i| (i, srvsvc::SYNTAX, &[NDR20][..])).collect();
        pdu(ptype::ALTER_CONTEXT, 3, call, &bind_body(4280, 4280, &ctxs))
    };
    // Before a bind it is a protocol error.
    p.write(&alter(1, 1..2), &ctx).unwrap();
    assert_eq!(fault_of(&one(&mut p)), (1, 0x23, fault::PROTO_ERROR));
    p.write(&bind(2, &[(0, srvsvc::SYNTAX, &[NDR20])]), &ctx)
        .unwrap();
    let ack = one(&mut p);
    let assoc = u32_at(&ack, 20);
    p.write(&alter(3, 1..20), &ctx).unwrap();
    let resp = one(&mut p);
    assert_eq!(resp[2], ptype::ALTER_CONTEXT_RESP);
    assert_eq!(u16_at(&resp, 24), 0, "no secondary address");
    assert_eq!(u32_at(&resp, 20), assoc);
    let r = ack_results(&resp);
    assert_eq!(r.len(), 19);
    // 16 contexts at most: 0 plus 1..=15.
    for (i, (res, reason, _)) in r.iter().enumerate() {
        if i < 15 {
            assert_eq!(
                (*res, *reason),
                (result::ACCEPTANCE, 0),
                "context {}",
                i + 1
            );
        } else {
            assert_eq!(
                (*res, *reason),
                (result::PROVIDER_REJECTION, result::LOCAL_LIMIT_EXCEEDED)
            );
        }
    }
    p.write(&request(4, 3, 15, 21, &server_stub(100)), &ctx)
        .unwrap();
    assert_eq!(one(&mut p)[2], ptype::RESPONSE);
    p.write(&request(5, 3, 16, 21, &server_stub(100)), &ctx)
        .unwrap();
    assert_eq!(fault_of(&one(&mut p)).2, fault::UNK_IF);
}

#[test]
fn request_faults() {
    let ctx = Ctx::new();
    // Before a bind.
    let mut p = open_pipe("srvsvc").unwrap();
    p.write(&request(1, 3, 0, 21, &server_stub(100)), &ctx)
        .unwrap();
    assert_eq!(fault_of(&one(&mut p)), (1, 0x23, fault::PROTO_ERROR));

    let mut p = bound_srvsvc();
    p.write(&request(2, 3, 0, 200, &[]), &ctx).unwrap();
    assert_eq!(fault_of(&one(&mut p)), (2, 0x23, fault::OP_RNG_ERROR));
    p.write(&request(3, 3, 0, 15, &[0; 4]), &ctx).unwrap();
    assert_eq!(fault_of(&one(&mut p)), (3, 0x03, fault::NDR));
    // A stub whose string claims more than is there.
    let mut stub = server_stub(101);
    stub[4] = 0xff;
    stub[12] = 0xff;
    p.write(&request(4, 3, 0, 21, &stub), &ctx).unwrap();
    assert_eq!(fault_of(&one(&mut p)).2, fault::NDR);
    // Authentication on a request.
    let mut auth = request(5, 3, 0, 21, &server_stub(100));
    auth[10] = 4;
    p.write(&auth, &ctx).unwrap();
    assert_eq!(fault_of(&one(&mut p)), (5, 0x23, fault::ACCESS_DENIED));
    // A request too short for its own header.
    p.write(&pdu(ptype::REQUEST, 3, 6, &[0; 4]), &ctx).unwrap();
    assert_eq!(fault_of(&one(&mut p)).2, fault::PROTO_ERROR);
    // The pipe still serves.
    // level, pointer, platform, name pointer, "LANSHARE" (12 + 18 bytes, 2 of padding), status.
    assert_eq!(call(&mut p, &ctx, 21, &server_stub(100)).len(), 16 + 32 + 4);
}

#[test]
fn fatal_stream_errors_close_the_pipe() {
    let ctx = Ctx::new();
    let cases: Vec<Vec<u8>> = vec![
        // A server-to-client PDU type.
        pdu(ptype::RESPONSE, 3, 1, &[0; 8]),
        pdu(ptype::BIND_ACK, 3, 1, &[0; 8]),
        // Fragment length below the header size.
        {
            let mut b = request(1, 3, 0, 21, &[]);
            b[8] = 8;
            b
        },
        // Fragment length above the negotiated maximum (4280).
        {
            let mut b = request(1, 3, 0, 21, &[]);
            b[8..10].copy_from_slice(&4288u16.to_le_bytes());
            b
        },
        // Authentication longer than the fragment.
        {
            let mut b = request(1, 3, 0, 21, &[]);
            b[10] = 200;
            b
        },
        // Not version 5.
        {
            let mut b = request(1, 3, 0, 21, &[]);
            b[0] = 4;
            b
        },
    ];
    for bad in cases {
        let mut p = bound_srvsvc();
        assert!(
            matches!(p.write(&bad, &ctx), Err(RpcError::Malformed(_))),
            "{bad:02x?}"
        );
        assert!(p.is_closed());
        assert_eq!(p.write(&bind(1, &[]), &ctx), Err(RpcError::Closed));
    }
}

#[test]
fn input_in_any_pieces_gives_the_same_output() {
    let ctx = Ctx::new();
    let mut stream = bind(1, &[(0, srvsvc::SYNTAX, &[NDR20])]);
    stream.extend_from_slice(&request(2, 3, 0, 15, &enum_stub(1, true)));
    stream.extend_from_slice(&request(3, 3, 0, 16, &getinfo_stub("DOCS", 2)));
    let mut whole = open_pipe("srvsvc").unwrap();
    whole.write(&stream, &ctx).unwrap();
    let expected = drain(&mut whole);
    assert_eq!(expected.len(), 3);
    for piece in [1, 3, 16, 17, 100] {
        let mut p = open_pipe("srvsvc").unwrap();
        for c in stream.chunks(piece) {
            p.write(c, &ctx).unwrap();
        }
        let mut got = drain(&mut p);
        // The association group id differs between pipes.
        got[0][20..24].copy_from_slice(&expected[0][20..24]);
        assert_eq!(got, expected, "pieces of {piece}");
    }
}

#[test]
fn fragmented_request_is_reassembled() {
    let ctx = Ctx::new();
    let stub = enum_stub(2, true);
    let mut p = bound_srvsvc();
    let single = call(&mut p, &ctx, 15, &stub);
    // Split at unaligned points into three fragments.
    let (a, rest) = stub.split_at(5);
    let (b, c) = rest.split_at(rest.len() - 3);
    p.write(&request(10, pfc::FIRST_FRAG, 0, 15, a), &ctx)
        .unwrap();
    p.write(&request(10, 0, 0, 15, b), &ctx).unwrap();
    assert!(!p.has_output());
    p.write(&request(10, pfc::LAST_FRAG, 0, 15, c), &ctx)
        .unwrap();
    let frags = drain(&mut p);
    assert_eq!(u32_at(&frags[0], 12), 10);
    assert_eq!(response_stub(&frags), single);
}

#[test]
fn oversized_request_is_faulted_and_its_fragments_dropped() {
    let ctx = Ctx::new();
    let mut p = bound_srvsvc();
    let chunk = vec![0u8; 4096];
    p.write(&request(20, pfc::FIRST_FRAG, 0, 15, &chunk), &ctx)
        .unwrap();
    let mut sent = chunk.len();
    while sent <= MAX_REQUEST_STUB {
        p.write(&request(20, 0, 0, 15, &chunk), &ctx).unwrap();
        sent += chunk.len();
    }
    assert_eq!(fault_of(&one(&mut p)), (20, 0x23, fault::REMOTE_NO_MEMORY));
    // Later fragments of that call vanish, the last one included.
    p.write(&request(20, 0, 0, 15, &chunk), &ctx).unwrap();
    p.write(&request(20, pfc::LAST_FRAG, 0, 15, &chunk), &ctx)
        .unwrap();
    assert!(!p.has_output());
    assert_eq!(
        call(&mut p, &ctx, 21, &server_stub(100))[..4],
        100u32.to_le_bytes()
    );
}

#[test]
fn interleaved_and_stray_fragments() {
    let ctx = Ctx::new();
    let stub = server_stub(100);
    let mut p = bound_srvsvc();
    // A stray middle fragment.
    p.write(&request(30, 0, 0, 21, &stub), &ctx).unwrap();
    assert_eq!(fault_of(&one(&mut p)), (30, 0x23, fault::PROTO_ERROR));
    // Call 31 is abandoned by a new first fragment of call 32: 31 is faulted, 32 answered.
    p.write(&request(31, pfc::FIRST_FRAG, 0, 21, &stub[..4]), &ctx)
        .unwrap();
    p.write(&request(32, 3, 0, 21, &stub), &ctx).unwrap();
    let out = drain(&mut p);
    assert_eq!(fault_of(&out[0]), (31, 0x23, fault::PROTO_ERROR));
    assert_eq!((out[1][2], u32_at(&out[1], 12)), (ptype::RESPONSE, 32));
    // An orphaned PDU drops the call being received: its last fragment is then stray.
    p.write(&request(33, pfc::FIRST_FRAG, 0, 21, &stub[..4]), &ctx)
        .unwrap();
    p.write(&pdu(ptype::ORPHANED, 3, 33, &[]), &ctx).unwrap();
    assert!(!p.has_output());
    p.write(&request(33, pfc::LAST_FRAG, 0, 21, &stub[4..]), &ctx)
        .unwrap();
    assert_eq!(fault_of(&one(&mut p)).2, fault::PROTO_ERROR);
    // AUTH3 and CO_CANCEL get no answer.
    p.write(&pdu(ptype::AUTH3, 3, 34, &[0; 4]), &ctx).unwrap();
    p.write(&pdu(ptype::CO_CANCEL, 3, 34, &[]), &ctx).unwrap();
    assert!(!p.has_output());
}

#[test]
fn object_uuid_is_skipped() {
    let ctx = Ctx::new();
    let mut p = bound_srvsvc();
    let plain = call(&mut p, &ctx, 21, &server_stub(101));
    let mut body = Vec::new();
    body.extend_from_slice(&0u32.to_le_bytes());
    body.extend_from_slice(&0u16.to_le_bytes());
    body.extend_from_slice(&21u16.to_le_bytes());
    body.extend_from_slice(&[0xab; 16]);
    body.extend_from_slice(&server_stub(101));
    p.write(&pdu(ptype::REQUEST, 3 | pfc::OBJECT_UUID, 40, &body), &ctx)
        .unwrap();
    assert_eq!(response_stub(&drain(&mut p)), plain);
}

#[test]
fn read_returns_at_most_one_fragment_and_flags_truncation() {
    let ctx = Ctx {
        shares: (0..200)
            .map(|i| share(&format!("share{i}"), &"x".repeat(60), false))
            .collect(),
    };
    let mut p = bound_srvsvc();
    p.write(&request(2, 3, 0, 15, &enum_stub(1, false)), &ctx)
        .unwrap();
    let total = p.pending_output();
    // The first fragment, in pieces of 1000.
    let (a, more) = p.read(1000);
    assert_eq!((a.len(), more), (1000, true));
    let (b, more) = p.read(100_000);
    assert!(!more);
    assert_eq!(a.len() + b.len(), 4280, "a whole first fragment, not more");
    let mut frag = a.clone();
    frag.extend_from_slice(&b);
    assert_eq!(u16_at(&frag, 8), 4280);
    assert_eq!(frag[3], pfc::FIRST_FRAG);
    let rest = drain(&mut p);
    assert!(rest.len() >= 2);
    assert_eq!(rest.iter().map(Vec::len).sum::<usize>() + 4280, total);
    assert_eq!(p.read(10), (Vec::new(), false));
    let mut all = vec![frag];
    all.extend(rest);
    let (_, entries, total_entries, status) = decode_enum(&response_stub(&all));
    assert_eq!((entries.len(), total_entries, status), (201, 201, 0));
}

#[test]
fn unread_output_makes_the_pipe_busy() {
    let ctx = Ctx {
        shares: (0..2000)
            .map(|i| share(&format!("share{i}"), &"c".repeat(500), false))
            .collect(),
    };
    let mut p = bound_srvsvc();
    let req = request(2, 3, 0, 15, &enum_stub(1, false));
    let mut writes = 0;
    loop {
        match p.write(&req, &ctx) {
            Ok(()) => writes += 1,
            Err(RpcError::Busy) => break,
            Err(e) => panic!("{e}"),
        }
        assert!(writes < 100, "never became busy");
    }
    assert!(p.pending_output() > MAX_PENDING_OUTPUT);
    assert!(p.pending_output() < MAX_PENDING_OUTPUT + 4 * 1024 * 1024);
    // Reading makes room again, and the pipe is not dead.
    drain(&mut p);
    p.write(&req, &ctx).unwrap();
}

#[test]
fn share_enum_lists_what_is_browseable() {
    let mut ctx = Ctx::new();
    ctx.shares.push(ShareInfo {
        name: "IPC$".into(),
        comment: "Remote IPC".into(),
        kind: ShareKind::Ipc,
        hidden_from_list: true,
        path: String::new(),
        max_uses: u32::MAX,
        current_uses: 1,
    });
    ctx.shares
        .push(share("public$", "listed although named $", false));
    let mut p = bound_srvsvc();
    for level in [0, 1, 2, 501, 502] {
        let stub = call(&mut p, &ctx, 15, &enum_stub(level, true));
        let mut r = NdrReader::new(&stub);
        assert_eq!(r.u32().unwrap(), level);
        if level == 1 || level == 2 {
            let (_, entries, total, status) = decode_enum(&stub);
            assert_eq!(status, 0);
            assert_eq!(total, 3);
            assert_eq!(
                entries,
                [
                    ("docs".into(), 0, "Documents".into()),
                    ("IPC$".into(), 0x8000_0003, "Remote IPC".into()),
                    (
                        "public$".into(),
                        0x8000_0000,
                        "listed although named $".into()
                    ),
                ]
            );
        }
        // TotalEntries, the resume handle (present, 0) and the status close every answer.
        let n = stub.len();
        assert_eq!(u32_at(&stub, n - 16), 3);
        assert_ne!(u32_at(&stub, n - 12), 0);
        assert_eq!(u32_at(&stub, n - 8), 0);
        assert_eq!(u32_at(&stub, n - 4), 0);
    }
    // The sticky enumeration leaves out IPC$ and `$` names.
    let stub = call(&mut p, &ctx, 36, &enum_stub(1, false));
    let (_, entries, total, _) = decode_enum(&stub);
    assert_eq!((entries.len(), total), (1, 1));
    assert_eq!(entries[0].0, "docs");
    // An unsupported level: no container, ERROR_INVALID_LEVEL.
    for level in [503, 7] {
        let stub = call(&mut p, &ctx, 15, &enum_stub(level, false));
        let (l, entries, total, status) = decode_enum(&stub);
        assert_eq!((l, entries.len(), total, status), (level, 0, 0, 124));
    }
}

#[test]
fn ipc_share_is_added_when_missing() {
    let ctx = Ctx::new();
    let mut p = bound_srvsvc();
    let (_, entries, _, _) = decode_enum(&call(&mut p, &ctx, 15, &enum_stub(1, false)));
    assert_eq!(
        entries,
        [
            ("docs".into(), 0, "Documents".into()),
            ("IPC$".into(), 0x8000_0003, "Remote IPC".into()),
        ]
    );
}

#[test]
fn share_get_info_levels() {
    let ctx = Ctx::new();
    let mut p = bound_srvsvc();
    // Hidden shares are answered, names match in any case.
    let stub = call(&mut p, &ctx, 16, &getinfo_stub("SECRET$", 2));
    let mut r = NdrReader::new(&stub);
    assert_eq!(r.u32().unwrap(), 2);
    assert!(r.pointer().unwrap());
    assert!(r.pointer().unwrap());
    assert_eq!(r.u32().unwrap(), 0x8000_0000);
    assert!(r.pointer().unwrap());
    assert_eq!(r.u32().unwrap(), 0);
    assert_eq!(r.u32().unwrap(), u32::MAX);
    assert_eq!(r.u32().unwrap(), 2);
    assert!(r.pointer().unwrap());
    assert!(r.pointer().unwrap());
    assert_eq!(r.wstring().unwrap(), "secret$");
    assert_eq!(r.wstring().unwrap(), "Hidden by name");
    assert_eq!(r.wstring().unwrap(), "C:\\secret$");
    assert_eq!(r.wstring().unwrap(), "");
    assert_eq!(r.u32().unwrap(), 0);
    assert!(r.u32().is_err(), "nothing after the status");

    let stub = call(&mut p, &ctx, 16, &getinfo_stub("docs", 1005));
    assert_eq!(stub.len(), 16);
    assert_eq!(u32_at(&stub, 0), 1005);
    assert_eq!(u32_at(&stub, 8), 0, "flags");
    assert_eq!(u32_at(&stub, 12), 0);

    for level in [0, 1, 501, 502] {
        let stub = call(&mut p, &ctx, 16, &getinfo_stub("docs", level));
        assert_eq!(u32_at(&stub, stub.len() - 4), 0, "level {level}");
    }
    // Unknown share: level, NULL, NERR_NetNameNotFound.
    let stub = call(&mut p, &ctx, 16, &getinfo_stub("nosuch", 1));
    assert_eq!(stub, [1, 0, 0, 0, 0, 0, 0, 0, 0x06, 0x09, 0, 0]);
    // Unknown levels: with an arm, a NULL; without, nothing.
    let stub = call(&mut p, &ctx, 16, &getinfo_stub("docs", 1006));
    assert_eq!(stub, [0xee, 0x03, 0, 0, 0, 0, 0, 0, 124, 0, 0, 0]);
    let stub = call(&mut p, &ctx, 16, &getinfo_stub("docs", 3));
    assert_eq!(stub, [3, 0, 0, 0, 124, 0, 0, 0]);
}

#[test]
fn server_get_info_levels() {
    let ctx = Ctx::new();
    let mut p = bound_srvsvc();
    let stub = call(&mut p, &ctx, 21, &server_stub(102));
    let mut r = NdrReader::new(&stub);
    assert_eq!(r.u32().unwrap(), 102);
    assert!(r.pointer().unwrap());
    assert_eq!(r.u32().unwrap(), 500);
    assert!(r.pointer().unwrap());
    assert_eq!((r.u32().unwrap(), r.u32().unwrap()), (10, 0));
    assert_eq!(r.u32().unwrap(), 0x9003);
    assert!(r.pointer().unwrap());
    for _ in 0..6 {
        r.u32().unwrap();
    }
    assert!(r.pointer().unwrap());
    assert_eq!(r.wstring().unwrap(), "LANSHARE");
    assert_eq!(r.wstring().unwrap(), "a lanshare server");
    assert_eq!(r.wstring().unwrap(), "C:\\");
    assert_eq!(r.u32().unwrap(), 0);
    assert!(r.u32().is_err());

    let stub = call(&mut p, &ctx, 21, &server_stub(100));
    let mut r = NdrReader::new(&stub);
    assert_eq!(r.u32().unwrap(), 100);
    assert!(r.pointer().unwrap());
    assert_eq!(r.u32().unwrap(), 500);
    assert!(r.pointer().unwrap());
    assert_eq!(r.wstring().unwrap(), "LANSHARE");
    assert_eq!(r.u32().unwrap(), 0);

    let stub = call(&mut p, &ctx, 21, &server_stub(503));
    assert_eq!(stub, [0xf7, 0x01, 0, 0, 0, 0, 0, 0, 124, 0, 0, 0]);
    // A NULL server name is fine.
    let mut w = NdrWriter::new();
    w.pointer(false);
    w.u32(100);
    let stub = call(&mut p, &ctx, 21, &w.into_bytes());
    assert_eq!(u32_at(&stub, stub.len() - 4), 0);
}

#[test]
fn wkssvc_get_info() {
    let ctx = Ctx::new();
    let mut p = open_pipe("wkssvc").unwrap();
    // srvsvc cannot be bound on the wkssvc pipe.
    p.write(
        &bind(
            1,
            &[(0, srvsvc::SYNTAX, &[NDR20]), (1, wkssvc::SYNTAX, &[NDR20])],
        ),
        &ctx,
    )
    .unwrap();
    let ack = one(&mut p);
    assert_eq!(&ack[26..39], b"\\pipe\\wkssvc\0");
    let r: Vec<u16> = ack_results(&ack).iter().map(|x| x.0).collect();
    assert_eq!(r, [result::PROVIDER_REJECTION, result::ACCEPTANCE]);
    p.write(&request(2, 3, 1, 0, &server_stub(100)), &ctx)
        .unwrap();
    let stub = response_stub(&drain(&mut p));
    let mut r = NdrReader::new(&stub);
    assert_eq!(r.u32().unwrap(), 100);
    assert!(r.pointer().unwrap());
    assert_eq!(r.u32().unwrap(), 500);
    assert!(r.pointer().unwrap());
    assert!(r.pointer().unwrap());
    assert_eq!((r.u32().unwrap(), r.u32().unwrap()), (10, 0));
    assert_eq!(r.wstring().unwrap(), "LANSHARE");
    assert_eq!(r.wstring().unwrap(), "WORKGROUP");
    assert_eq!(r.u32().unwrap(), 0);
    p.write(&request(3, 3, 1, 0, &server_stub(102)), &ctx)
        .unwrap();
    let stub = response_stub(&drain(&mut p));
    assert_eq!(stub, [102, 0, 0, 0, 0, 0, 0, 0, 124, 0, 0, 0]);
    p.write(&request(4, 3, 1, 2, &server_stub(100)), &ctx)
        .unwrap();
    assert_eq!(fault_of(&one(&mut p)).2, fault::OP_RNG_ERROR);
}

/// What must hold after every write, whatever came in.
fn assert_bounded(p: &Pipe) {
    let (inbuf, stub) = p.buffered();
    assert!(inbuf <= 5840, "input buffer {inbuf}");
    assert!(stub <= MAX_REQUEST_STUB, "reassembly {stub}");
    assert!(p.pending_output() <= MAX_PENDING_OUTPUT + 1024 * 1024);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..8)) {
        let ctx = Ctx::new();
        let mut p = open_pipe("srvsvc").unwrap();
        for c in &chunks {
            let _ = p.write(c, &ctx);
            assert_bounded(&p);
            let _ = p.read(100);
        }
        let mut flat = Vec::new();
        chunks.iter().for_each(|c| flat.extend_from_slice(c));
        crate::fuzz_pipe(&flat);
    }

    /// Mutations of a valid exchange reach deeper than random bytes: past the header
    /// checks into bind parsing, reassembly and the stub decoders.
    #[test]
    fn mutated_exchanges_never_panic(
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        opnum in prop::sample::select(vec![0u16, 15, 16, 21, 36]),
        level in prop::sample::select(vec![0u32, 1, 2, 100, 101, 102, 501, 502, 1005, 7]),
        cut in any::<prop::sample::Index>(),
    ) {
        let ctx = Ctx::new();
        let mut stream = bind(1, &[(0, srvsvc::SYNTAX, &[NDR20]), (1, srvsvc::SYNTAX, &[btfn(3)])]);
        let stub = match opnum {
            15 | 36 => enum_stub(level, true),
            16 => getinfo_stub("docs", level),
            _ => server_stub(level),
        };
        let split = cut.index(stub.len() + 1);
        stream.extend_from_slice(&request(2, pfc::FIRST_FRAG, 0, opnum, &stub[..split]));
        stream.extend_from_slice(&request(2, pfc::LAST_FRAG, 0, opnum, &stub[split..]));
        for (i, v) in flips {
            let at = i.index(stream.len());
            stream[at] = v;
        }
        let mut p = open_pipe("srvsvc").unwrap();
        let _ = p.write(&stream, &ctx);
        assert_bounded(&p);
        while !p.read(usize::MAX).0.is_empty() {}
    }

    /// Any stub after a good bind: the operation decoders see every byte pattern, in both
    /// transfer syntaxes.
    #[test]
    fn arbitrary_stubs_are_answered(
        opnum in 0u16..40,
        stub in prop::collection::vec(any::<u8>(), 0..200),
        ndr64 in any::<bool>(),
        wkssvc in any::<bool>(),
    ) {
        let ctx = Ctx::new();
        let (name, syntax) = if wkssvc { ("wkssvc", wkssvc::SYNTAX) } else { ("srvsvc", srvsvc::SYNTAX) };
        let mut p = open_pipe(name).unwrap();
        let transfer = if ndr64 { NDR64 } else { NDR20 };
        p.write(&bind(1, &[(0, syntax, &[transfer])]), &ctx).unwrap();
        prop_assert_eq!(one(&mut p)[2], ptype::BIND_ACK);
        p.write(&request(2, 3, 0, opnum, &stub), &ctx).unwrap();
        let out = drain(&mut p);
        prop_assert!(!out.is_empty());
        prop_assert!(matches!(out[0][2], ptype::RESPONSE | ptype::FAULT));
    }
}
