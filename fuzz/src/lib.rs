//! lanshare-fuzz: the bodies of the cargo-fuzz targets in `fuzz_targets/`.
//!
//! What it is: one function per target, each taking the fuzzer's bytes and checking what must
//! hold for any input: no panic, and where a decoder has an encoder, decode → encode → decode
//! gives the same value. The targets are one-line wrappers around these functions; a crash
//! replays with `cargo +nightly fuzz run <target> <input>`.
//!
//! What it is not: not part of the workspace (nightly only, see `scripts/fuzz`), and not the
//! place for fixes: a crash is fixed in the crate it comes from, with a regression test there.
//!
//! Layout: [`netbios_frame`], [`pdu_decode`], [`fscc`], [`transform`], [`smb1_negotiate`],
//! [`auth_step`], [`connection`], [`rpc_pipe`], [`wsd`]; shared helpers at the bottom.

#![forbid(unsafe_code)]

use smb_wire::fscc::{self, dir, notify, security};
use smb_wire::fsctl::{ValidateNegotiateInfoRequest, ValidateNegotiateInfoResponse};
use smb_wire::msg::create_context::{self as cc, CreateContext};
use smb_wire::msg::{Request, Response};
use smb_wire::netbios::{self, FrameHeader};
use smb_wire::transform::{CompressionTransformHeader, TransformHeader};
use smb_wire::{FileInfoClass, Header, header};

/// `netbios_frame`: the 4-byte direct-TCP header, then the compound splitter over the rest.
pub fn netbios_frame(data: &[u8]) {
    let Some((hdr, rest)) = data.split_first_chunk::<4>() else {
        return;
    };
    // The default cap and one taken from the input, so both sides of the size check run.
    for max in [netbios::MAX_FRAME, rest.len()] {
        match netbios::frame_len(*hdr, max) {
            Ok(FrameHeader::Message(len)) => {
                assert!(len <= max, "frame_len accepted {len} above the cap {max}");
                let mut again = [0u8; 4];
                netbios::write_frame_header(len, &mut again);
                assert_eq!(again, *hdr, "frame header does not re-encode");
            }
            Ok(FrameHeader::KeepAlive) => assert_eq!(*hdr, [0x85, 0, 0, 0]),
            Err(_) => {}
        }
    }
    check_split(rest);
}

/// The compound splitter yields consecutive, non-overlapping PDUs of at least a header each,
/// chained by their NextCommand, and stops at the first error.
fn check_split(frame: &[u8]) {
    let mut at = 0usize;
    let mut count = 0usize;
    let mut failed = false;
    for item in smb_wire::split_compound(frame) {
        assert!(!failed, "split_compound went on after an error");
        count += 1;
        assert!(count <= frame.len() / Header::SIZE + 1, "too many PDUs");
        match item {
            Ok(pdu) => {
                assert!(pdu.len() >= Header::SIZE, "PDU shorter than a header");
                assert_eq!(frame.get(at..at + pdu.len()), Some(pdu), "PDU not at {at}");
                let next = read_u32(pdu, 20);
                assert!(
                    next == 0 && at + pdu.len() == frame.len() || next as usize == pdu.len(),
                    "PDU length {} does not match NextCommand {next}",
                    pdu.len()
                );
                at += pdu.len();
            }
            Err(_) => failed = true,
        }
    }
    assert!(at <= frame.len());
}

/// `pdu_decode`: arbitrary bytes made into a PDU with a valid header (protocol id and header
/// StructureSize forced; everything else, the command included, left to the fuzzer), then
/// every PDU of the chain parsed as a request and as a response, each that parses re-encoded
/// and parsed again. The create contexts of a CREATE request go through their typed decoders.
pub fn pdu_decode(data: &[u8]) {
    let Some(first) = fix_header(data) else {
        return;
    };
    for pdu in smb_wire::split_compound(&first) {
        let Ok(pdu) = pdu else { break };
        let Some(pdu) = fix_header(pdu) else { break };
        request_round_trip(&pdu);
        response_round_trip(&pdu);
    }
}

fn request_round_trip(pdu: &[u8]) {
    let Ok((h, req)) = Request::parse(pdu) else {
        return;
    };
    if let Request::Create(c) = &req {
        for ctx in &c.contexts {
            context_data(ctx);
        }
    }
    let mut again = header_bytes(&h);
    if let Err(e) = req.encode(&mut again) {
        panic!("request parsed but does not encode: {e}\n{req:?}");
    }
    match Request::parse(&again) {
        Ok((h2, req2)) => {
            assert_eq!(h2, h, "header changed in a round trip");
            assert_eq!(req2, req, "request changed in a round trip");
        }
        Err(e) => panic!("re-encoded request does not parse: {e}\n{req:?}"),
    }
}

fn response_round_trip(pdu: &[u8]) {
    let Ok((h, resp)) = Response::parse(pdu) else {
        return;
    };
    let mut again = header_bytes(&h);
    if let Err(e) = resp.encode(&mut again) {
        panic!("response parsed but does not encode: {e}\n{resp:?}");
    }
    match Response::parse(&again) {
        Ok((h2, resp2)) => {
            assert_eq!(h2, h, "header changed in a round trip");
            assert_eq!(resp2, resp, "response changed in a round trip");
        }
        Err(e) => panic!("re-encoded response does not parse: {e}\n{resp:?}"),
    }
}

/// The typed views of create-context data: whatever parses re-encodes to the same value.
fn context_data(ctx: &CreateContext<'_>) {
    let d = ctx.data;
    round_trip(d, cc::MaximalAccessRequest::parse, |v, o| v.encode(o));
    round_trip(d, cc::MaximalAccessResponse::parse, |v, o| v.encode(o));
    round_trip(d, cc::QueryOnDiskIdResponse::parse, |v, o| v.encode(o));
    round_trip(d, cc::DurableHandleReconnect::parse, |v, o| v.encode(o));
    round_trip(d, cc::DurableHandleRequestV2::parse, |v, o| v.encode(o));
    round_trip(d, cc::DurableHandleResponseV2::parse, |v, o| v.encode(o));
    round_trip(d, cc::DurableHandleReconnectV2::parse, |v, o| v.encode(o));
    round_trip(d, cc::Lease::parse, |v, o| v.encode(o));
    let _ = cc::parse_timewarp(d);
    let _ = cc::parse_allocation_size(d);
    if ctx.name == cc::names::EXT_A {
        full_ea(d);
    }
    if ctx.name == cc::names::SEC_D {
        security_descriptor(d);
    }
}

/// Decoders the `fscc` target selects by its first byte.
const FSCC_DECODERS: u8 = 17;

/// `fscc`: the [MS-FSCC] decoders. An input that starts like an SMB2 PDU is parsed as one
/// (so captured SET_INFO, QUERY_INFO, QUERY_DIRECTORY, CHANGE_NOTIFY, CREATE and IOCTL
/// messages seed it) and every buffer it carries goes through every decoder; any other input
/// is a selector byte and the buffer for that one decoder.
pub fn fscc(data: &[u8]) {
    if data.starts_with(&header::PROTOCOL_ID) {
        for pdu in smb_wire::split_compound(data) {
            let Ok(pdu) = pdu else { break };
            for buf in carried_buffers(pdu) {
                for which in 0..FSCC_DECODERS {
                    fscc_one(which, buf);
                }
            }
        }
        return;
    }
    if let Some((&which, buf)) = data.split_first() {
        fscc_one(which % FSCC_DECODERS, buf);
    }
}

/// The buffers of a PDU that hold FSCC structures.
fn carried_buffers(pdu: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    if let Ok((_, req)) = Request::parse(pdu) {
        match req {
            Request::SetInfo(m) => out.push(m.buffer),
            Request::QueryInfo(m) => out.push(m.input),
            Request::Ioctl(m) => out.extend([m.input, m.output]),
            Request::Create(m) => out.extend(m.contexts.iter().map(|c| c.data)),
            _ => {}
        }
    }
    if let Ok((_, resp)) = Response::parse(pdu) {
        match resp {
            Response::QueryInfo(m) => out.push(m.buffer),
            Response::QueryDirectory(m) => out.push(m.buffer),
            Response::ChangeNotify(m) => out.push(m.buffer),
            Response::Ioctl(m) => out.extend([m.input, m.output]),
            Response::Create(m) => out.extend(m.contexts.iter().map(|c| c.data)),
            _ => {}
        }
    }
    out
}

fn fscc_one(which: u8, buf: &[u8]) {
    match which {
        0 => round_trip(buf, fscc::FileBasicInformation::parse, |v, o| v.encode(o)),
        1 => round_trip(buf, fscc::FileStandardInformation::parse, |v, o| {
            v.encode(o)
        }),
        2 => round_trip(buf, fscc::FileAllInformation::parse, |v, o| {
            v.encode(o).expect("encode a parsed FileAllInformation")
        }),
        3 => round_trip(buf, fscc::FileNetworkOpenInformation::parse, |v, o| {
            v.encode(o)
        }),
        4 => round_trip(buf, fscc::parse_streams, |v, o| {
            fscc::encode_streams(v, o).expect("encode parsed streams")
        }),
        5 => round_trip(buf, fscc::FileRenameInformation::parse, |v, o| {
            v.encode(o).expect("encode a parsed FileRenameInformation")
        }),
        6 => {
            let _ = fscc::parse_disposition(buf);
            let _ = fscc::parse_disposition_ex(buf);
            let _ = fscc::parse_end_of_file(buf);
            let _ = fscc::parse_allocation(buf);
            let _ = fscc::parse_valid_data_length(buf);
            round_trip(buf, fscc::parse_position, |v, o| {
                fscc::encode_position(*v, o)
            });
            round_trip(buf, fscc::parse_mode, |v, o| fscc::encode_mode(*v, o));
        }
        7 => full_ea(buf),
        8 => round_trip(buf, fscc::FileFsVolumeInformation::parse, |v, o| {
            v.encode(o)
                .expect("encode a parsed FileFsVolumeInformation")
        }),
        9 => round_trip(buf, fscc::FileFsSizeInformation::parse, |v, o| v.encode(o)),
        10 => round_trip(buf, fscc::FileFsFullSizeInformation::parse, |v, o| {
            v.encode(o)
        }),
        11 => round_trip(buf, fscc::FileFsAttributeInformation::parse, |v, o| {
            v.encode(o)
                .expect("encode a parsed FileFsAttributeInformation")
        }),
        12 => security_descriptor(buf),
        13 => notify_entries(buf),
        14 => {
            // The directory classes the codec knows, picked by the first byte.
            if let Some((&class, rest)) = buf.split_first() {
                let _ = dir::parse_entries(FileInfoClass(class % 82), rest);
            }
        }
        15 => {
            round_trip(buf, ValidateNegotiateInfoRequest::parse, |v, o| {
                v.encode(o)
                    .expect("encode a parsed VALIDATE_NEGOTIATE_INFO request")
            });
            round_trip(buf, ValidateNegotiateInfoResponse::parse, |v, o| {
                v.encode(o)
            });
        }
        _ => sid_text(buf),
    }
}

/// EA lists borrow from their buffer, so they cannot go through [`round_trip`].
fn full_ea(buf: &[u8]) {
    let Ok(eas) = fscc::parse_full_ea(buf) else {
        return;
    };
    let mut out = Vec::new();
    fscc::encode_full_ea(&eas, &mut out).expect("encode a parsed EA list");
    match fscc::parse_full_ea(&out) {
        Ok(again) => assert_eq!(again, eas, "EA list changed in a round trip"),
        Err(e) => panic!("re-encoded EA list does not parse: {e}\n{eas:?}"),
    }
}

fn security_descriptor(buf: &[u8]) {
    round_trip(buf, security::SecurityDescriptor::parse, |v, o| {
        v.encode(o).expect("encode a parsed security descriptor")
    });
}

fn notify_entries(buf: &[u8]) {
    let Ok(entries) = notify::parse_notify(buf) else {
        return;
    };
    let changes: Vec<_> = entries.iter().map(|(a, n)| (*a, n.as_str())).collect();
    let mut out = Vec::new();
    let fitted = notify::encode_notify(&changes, usize::MAX, &mut out)
        .expect("encode parsed FILE_NOTIFY_INFORMATION");
    assert!(fitted);
    assert_eq!(
        notify::parse_notify(&out).expect("re-encoded notify entries parse"),
        entries
    );
}

/// A SID's string form: whatever parses prints back to a string that parses to the same SID.
fn sid_text(buf: &[u8]) {
    let Ok(text) = std::str::from_utf8(buf) else {
        return;
    };
    if let Ok(sid) = security::Sid::parse_str(text) {
        let printed = sid.to_string();
        assert_eq!(security::Sid::parse_str(&printed), Ok(sid), "{printed}");
    }
}

/// `transform`: the encryption and compression transform headers.
pub fn transform(data: &[u8]) {
    if let Ok(t) = TransformHeader::parse(data) {
        let payload = TransformHeader::payload(data).expect("payload of a parsed header");
        assert_eq!(payload.len(), data.len() - TransformHeader::SIZE);
        let mut again = Vec::new();
        t.encode(&mut again);
        assert_eq!(again.len(), TransformHeader::SIZE);
        assert_eq!(TransformHeader::parse(&again), Ok(t));
        // Reserved is not kept, so only the fields around it must match the input.
        assert_eq!(again.get(..40), data.get(..40));
        assert_eq!(again.get(42..52), data.get(42..52));
    } else {
        // A frame too short for the header has no payload either, whatever its first bytes.
        if data.len() < TransformHeader::SIZE {
            assert!(TransformHeader::payload(data).is_err());
        }
    }
    let _ = CompressionTransformHeader::parse(data);
}

/// `smb1_negotiate`: the SMB1 multi-protocol NEGOTIATE the engine answers.
pub fn smb1_negotiate(data: &[u8]) {
    let full = smb_wire::smb1::Smb1NegotiateRequest::parse(data);
    let dialects = smb_wire::smb1::parse_negotiate(data);
    match (full, dialects) {
        (Ok(n), Ok(d)) => {
            assert_eq!(n.dialects, d);
            for s in d {
                assert!(!s.contains(&0), "a dialect string holds its NUL");
                assert!(within(data, s), "a dialect string outside the frame");
            }
            let _ = (n.offers_smb2_002(), n.offers_smb2_wildcard());
        }
        (Err(a), Err(b)) => assert_eq!(a, b),
        (a, b) => panic!("parse and parse_negotiate disagree: {a:?} vs {b:?}"),
    }
}

/// `auth_step`: the SPNEGO/NTLM acceptor over a token sequence.
pub fn auth_step(data: &[u8]) {
    lanshare_auth::fuzz_step(data);
}

/// `connection`: a whole SMB connection after a scripted NEGOTIATE.
pub fn connection(data: &[u8]) {
    smb_engine::fuzzing::feed(data);
}

/// `rpc_pipe`: DCE/RPC on a srvsvc or wkssvc pipe (the first byte picks the pipe and how the
/// rest is cut into WRITEs).
pub fn rpc_pipe(data: &[u8]) {
    lanshare_rpc::fuzz_pipe(data);
}

/// `wsd`: one WS-Discovery datagram (SOAP over UDP) and the metadata HTTP head parser.
pub fn wsd(data: &[u8]) {
    lanshare_discovery::fuzz_wsd(data);
}

// ---- helpers ----

/// A copy of `data` with a valid SMB2 header: protocol id and StructureSize forced, the rest
/// as given. `None` when there are not enough bytes for a header.
fn fix_header(data: &[u8]) -> Option<Vec<u8>> {
    if data.len() < Header::SIZE {
        return None;
    }
    let mut pdu = data.to_vec();
    pdu.get_mut(0..4)?.copy_from_slice(&header::PROTOCOL_ID);
    pdu.get_mut(4..6)?.copy_from_slice(&64u16.to_le_bytes());
    Some(pdu)
}

fn header_bytes(h: &Header) -> Vec<u8> {
    let mut v = Vec::with_capacity(Header::SIZE);
    h.encode(&mut v);
    v
}

fn read_u32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map(u32::from_le_bytes)
        .unwrap_or(0)
}

/// True if `inner` is a sub-slice of `outer` (by address).
fn within(outer: &[u8], inner: &[u8]) -> bool {
    let o = outer.as_ptr() as usize;
    let i = inner.as_ptr() as usize;
    i >= o && i + inner.len() <= o + outer.len()
}

/// Parses `buf`; if that works, encodes the value and parses the encoding, which must give
/// the same value.
fn round_trip<T, E>(
    buf: &[u8],
    parse: impl Fn(&[u8]) -> Result<T, E>,
    encode: impl Fn(&T, &mut Vec<u8>),
) where
    T: PartialEq + std::fmt::Debug,
    E: std::fmt::Debug,
{
    let Ok(value) = parse(buf) else {
        return;
    };
    let mut out = Vec::new();
    encode(&value, &mut out);
    match parse(&out) {
        Ok(again) => assert_eq!(again, value, "value changed in a round trip"),
        Err(e) => panic!("re-encoded value does not parse: {e:?}\n{value:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct Two(u8, u8);

    fn parse_two(b: &[u8]) -> Result<Two, ()> {
        match b {
            [a, c, ..] => Ok(Two(*a, *c)),
            _ => Err(()),
        }
    }

    #[test]
    fn round_trip_accepts_a_faithful_encoder() {
        round_trip(&[1, 2], parse_two, |v, o| o.extend([v.0, v.1]));
    }

    #[test]
    #[should_panic(expected = "value changed in a round trip")]
    fn round_trip_catches_a_lossy_encoder() {
        round_trip(&[1, 2], parse_two, |v, o| o.extend([v.0, 0]));
    }

    #[test]
    #[should_panic(expected = "re-encoded value does not parse")]
    fn round_trip_catches_an_encoder_the_parser_refuses() {
        round_trip(&[1, 2], parse_two, |v, o| o.push(v.0));
    }

    fn pdu(command: smb_wire::Command, next: u32, body: usize) -> Vec<u8> {
        let mut v = header_bytes(&Header {
            command,
            next_command: next,
            ..Header::default()
        });
        v.resize(Header::SIZE + body, 0);
        v
    }

    #[test]
    fn split_check_follows_a_chain() {
        let mut frame = pdu(smb_wire::Command::CREATE, 72, 8);
        frame.extend(pdu(smb_wire::Command::CLOSE, 0, 24));
        check_split(&frame);
        let mut framed = (frame.len() as u32).to_be_bytes().to_vec();
        framed.extend(&frame);
        netbios_frame(&framed);
    }

    #[test]
    fn fix_header_makes_any_64_bytes_a_header() {
        assert!(fix_header(&[0xAA; 63]).is_none());
        let pdu = fix_header(&[0xAA; 64]).unwrap();
        let h = Header::parse(&pdu).unwrap();
        assert_eq!(h.command, smb_wire::Command(0xAAAA));
    }

    #[test]
    fn every_target_survives_empty_and_tiny_inputs() {
        for data in [&[][..], &[0], &[0xFE, b'S', b'M', b'B'], &[0xFF; 70]] {
            netbios_frame(data);
            pdu_decode(data);
            fscc(data);
            transform(data);
            smb1_negotiate(data);
            auth_step(data);
            rpc_pipe(data);
            wsd(data);
        }
    }
}
