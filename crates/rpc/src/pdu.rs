//! Connection-oriented DCE/RPC PDUs ([C706] 12.6, [MS-RPCE] 2.2.2): the common header, the
//! BIND/ALTER_CONTEXT bodies we read, and the BIND_ACK, BIND_NAK, ALTER_CONTEXT_RESP,
//! RESPONSE and FAULT PDUs we write. Parsing is bounds-checked; nothing here keeps state.

use std::fmt;

/// Size of the common header ([C706] 12.6.3.1).
pub(crate) const HEADER_LEN: usize = 16;
/// Header plus `alloc_hint`, `p_cont_id` and `opnum`/`cancel_count` ([C706] 12.6.4.9/10).
pub(crate) const REQUEST_HEADER_LEN: usize = 24;

/// PDU types ([C706] 12.6.4, [MS-RPCE] 2.2.2.x).
pub(crate) mod ptype {
    pub(crate) const REQUEST: u8 = 0;
    pub(crate) const RESPONSE: u8 = 2;
    pub(crate) const FAULT: u8 = 3;
    pub(crate) const BIND: u8 = 11;
    pub(crate) const BIND_ACK: u8 = 12;
    pub(crate) const BIND_NAK: u8 = 13;
    pub(crate) const ALTER_CONTEXT: u8 = 14;
    pub(crate) const ALTER_CONTEXT_RESP: u8 = 15;
    pub(crate) const AUTH3: u8 = 16;
    pub(crate) const CO_CANCEL: u8 = 18;
    pub(crate) const ORPHANED: u8 = 19;
}

/// `pfc_flags` bits ([C706] 12.6.3.1).
pub(crate) mod pfc {
    pub(crate) const FIRST_FRAG: u8 = 0x01;
    pub(crate) const LAST_FRAG: u8 = 0x02;
    pub(crate) const DID_NOT_EXECUTE: u8 = 0x20;
    pub(crate) const OBJECT_UUID: u8 = 0x80;
}

/// Fault status codes ([C706] appendix E, [MS-RPCE] 2.2.2.11, [MS-ERREF]).
pub(crate) mod fault {
    /// `nca_s_fault_access_denied`: authentication was offered, which we do not support.
    pub(crate) const ACCESS_DENIED: u32 = 0x0000_0005;
    /// `nca_s_fault_ndr` (RPC_X_BAD_STUB_DATA): the stub could not be unmarshalled.
    pub(crate) const NDR: u32 = 0x0000_06f7;
    /// `nca_s_op_rng_error`: the interface has no such operation.
    pub(crate) const OP_RNG_ERROR: u32 = 0x1c01_0002;
    /// `nca_s_unk_if`: the presentation context is not bound.
    pub(crate) const UNK_IF: u32 = 0x1c01_0003;
    /// `nca_s_proto_error`: the PDU sequence broke the protocol.
    pub(crate) const PROTO_ERROR: u32 = 0x1c01_000b;
    /// `nca_s_fault_remote_no_memory`: a request larger than we reassemble.
    pub(crate) const REMOTE_NO_MEMORY: u32 = 0x1c00_001b;
}

/// `p_reject_reason_t` of a BIND_NAK ([C706] 12.6.3.1, [MS-RPCE] 2.2.2.5).
pub(crate) mod nak {
    pub(crate) const REASON_NOT_SPECIFIED: u16 = 0;
    /// [MS-RPCE] 2.2.2.5 gives this value the meaning "protocol error in a bind".
    pub(crate) const PROTOCOL_VERSION_NOT_SUPPORTED: u16 = 4;
    pub(crate) const AUTHENTICATION_TYPE_NOT_RECOGNIZED: u16 = 8;
}

/// `p_cont_def_result_t` and `p_provider_reason_t` of a bind result ([C706] 12.6.3.1,
/// [MS-RPCE] 2.2.2.4 adds `negotiate_ack`).
pub(crate) mod result {
    pub(crate) const ACCEPTANCE: u16 = 0;
    pub(crate) const PROVIDER_REJECTION: u16 = 2;
    pub(crate) const NEGOTIATE_ACK: u16 = 3;

    pub(crate) const REASON_NOT_SPECIFIED: u16 = 0;
    pub(crate) const ABSTRACT_SYNTAX_NOT_SUPPORTED: u16 = 1;
    pub(crate) const TRANSFER_SYNTAXES_NOT_SUPPORTED: u16 = 2;
    pub(crate) const LOCAL_LIMIT_EXCEEDED: u16 = 3;
}

/// An interface or transfer syntax id: a UUID in NDR (little-endian fields) order and a
/// version whose low 16 bits are the major and high 16 bits the minor version.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct SyntaxId {
    pub(crate) uuid: [u8; 16],
    pub(crate) version: u32,
}

impl SyntaxId {
    pub(crate) const ZERO: SyntaxId = SyntaxId {
        uuid: [0; 16],
        version: 0,
    };

    /// Builds the wire form of `d1-d2-d3-d4[0..2]-d4[2..8]`, version `major.minor`.
    pub(crate) const fn new(
        d1: u32,
        d2: u16,
        d3: u16,
        d4: [u8; 8],
        major: u16,
        minor: u16,
    ) -> Self {
        let a = d1.to_le_bytes();
        let b = d2.to_le_bytes();
        let c = d3.to_le_bytes();
        SyntaxId {
            uuid: [
                a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d4[0], d4[1], d4[2], d4[3], d4[4],
                d4[5], d4[6], d4[7],
            ],
            version: (major as u32) | ((minor as u32) << 16),
        }
    }

    pub(crate) fn major(&self) -> u16 {
        (self.version & 0xffff) as u16
    }

    pub(crate) fn minor(&self) -> u16 {
        (self.version >> 16) as u16
    }

    fn parse(b: &[u8]) -> Option<Self> {
        let uuid: [u8; 16] = b.get(..16)?.try_into().ok()?;
        let v = b.get(16..20)?;
        Some(SyntaxId {
            uuid,
            version: u32::from_le_bytes([v[0], v[1], v[2], v[3]]),
        })
    }

    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.uuid);
        out.extend_from_slice(&self.version.to_le_bytes());
    }
}

impl fmt::Debug for SyntaxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let u = &self.uuid;
        write!(
            f,
            "{:08x}-{:04x}-{:04x}-{:02x}{:02x}-",
            u32::from_le_bytes([u[0], u[1], u[2], u[3]]),
            u16::from_le_bytes([u[4], u[5]]),
            u16::from_le_bytes([u[6], u[7]]),
            u[8],
            u[9]
        )?;
        for b in &u[10..] {
            write!(f, "{b:02x}")?;
        }
        write!(f, " v{}.{}", self.major(), self.minor())
    }
}

/// NDR 2.0 ([C706] 14, [MS-RPCE] 2.2.4.12): preferred whenever offered.
pub(crate) const NDR20: SyntaxId = SyntaxId::new(
    0x8a88_5d04,
    0x1ceb,
    0x11c9,
    [0x9f, 0xe8, 0x08, 0x00, 0x2b, 0x10, 0x48, 0x60],
    2,
    0,
);

/// NDR64 ([MS-RPCE] 2.2.4.12, 2.2.5.3): accepted only when NDR 2.0 is not offered, since some
/// clients (the Rust `smb` crate) offer nothing else.
pub(crate) const NDR64: SyntaxId = SyntaxId::new(
    0x7171_0533,
    0xbeba,
    0x4937,
    [0x83, 0x19, 0xb5, 0xdb, 0xef, 0x9c, 0xcc, 0x36],
    1,
    0,
);

/// The first eight bytes of a bind-time feature negotiation "transfer syntax"; the other
/// eight are the BindTimeFeatureNegotiationBitmask ([MS-RPCE] 2.2.2.14, 3.3.1.5.3).
const BIND_TIME_FEATURE_PREFIX: [u8; 8] = [0x2c, 0x1c, 0xb7, 0x6c, 0x12, 0x98, 0x40, 0x45];

/// Bind-time features we acknowledge: security context multiplexing (trivially: we never
/// have a security context) and keeping the connection on an orphaned PDU (we ignore those).
pub(crate) const SUPPORTED_BIND_FEATURES: u8 = 0x01 | 0x02;

impl SyntaxId {
    /// The feature bitmask when this is a bind-time feature negotiation syntax, version 1.0.
    pub(crate) fn bind_time_features(&self) -> Option<u8> {
        (self.uuid[..8] == BIND_TIME_FEATURE_PREFIX && self.version == 1).then_some(self.uuid[8])
    }
}

/// The common header. `frag_length`, `auth_length` and `call_id` are decoded in the byte
/// order the sender declared, so that even a PDU we refuse can be skipped and answered.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Header {
    pub(crate) rpc_vers: u8,
    pub(crate) rpc_vers_minor: u8,
    pub(crate) ptype: u8,
    pub(crate) flags: u8,
    pub(crate) drep: [u8; 4],
    pub(crate) frag_length: u16,
    pub(crate) auth_length: u16,
    pub(crate) call_id: u32,
}

impl Header {
    pub(crate) fn parse(b: &[u8; HEADER_LEN]) -> Header {
        let drep = [b[4], b[5], b[6], b[7]];
        let little = drep[0] & 0xf0 == 0x10;
        let u16_at = |i: usize| {
            let v = [b[i], b[i + 1]];
            if little {
                u16::from_le_bytes(v)
            } else {
                u16::from_be_bytes(v)
            }
        };
        let c = [b[12], b[13], b[14], b[15]];
        Header {
            rpc_vers: b[0],
            rpc_vers_minor: b[1],
            ptype: b[2],
            flags: b[3],
            drep,
            frag_length: u16_at(8),
            auth_length: u16_at(10),
            call_id: if little {
                u32::from_le_bytes(c)
            } else {
                u32::from_be_bytes(c)
            },
        }
    }

    /// Version 5.0 or 5.1 ([C706] 12.6.3.1: minor 0 and 1 interoperate).
    pub(crate) fn version_ok(&self) -> bool {
        self.rpc_vers == 5 && self.rpc_vers_minor <= 1
    }

    /// Little-endian integers, ASCII characters, IEEE floats: the only data representation
    /// we marshal ([C706] 14.1). Bytes 2 and 3 are reserved.
    pub(crate) fn drep_native(&self) -> bool {
        self.drep[0] == 0x10 && self.drep[1] == 0
    }
}

/// One `p_cont_elem_t` of a BIND or ALTER_CONTEXT.
#[derive(Debug, Clone)]
pub(crate) struct ContextElem {
    pub(crate) id: u16,
    pub(crate) abstract_syntax: SyntaxId,
    pub(crate) transfer_syntaxes: Vec<SyntaxId>,
}

/// The body of a BIND or ALTER_CONTEXT ([C706] 12.6.4.3 and 12.6.4.1).
#[derive(Debug, Clone)]
pub(crate) struct BindBody {
    pub(crate) max_xmit_frag: u16,
    pub(crate) max_recv_frag: u16,
    pub(crate) assoc_group_id: u32,
    pub(crate) contexts: Vec<ContextElem>,
}

impl BindBody {
    /// `body` is the PDU after the common header, cut at `frag_length`. Each count is a `u8`,
    /// so the vectors are bounded by 255 entries before anything is read.
    pub(crate) fn parse(body: &[u8]) -> Option<BindBody> {
        let mut pos = 0usize;
        let mut take = |n: usize| -> Option<&[u8]> {
            let s = body.get(pos..pos.checked_add(n)?)?;
            pos += n;
            Some(s)
        };
        let fixed = take(12)?;
        let max_xmit_frag = u16::from_le_bytes([fixed[0], fixed[1]]);
        let max_recv_frag = u16::from_le_bytes([fixed[2], fixed[3]]);
        let assoc_group_id = u32::from_le_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]);
        let n_contexts = fixed[8];
        let mut contexts = Vec::with_capacity(usize::from(n_contexts));
        for _ in 0..n_contexts {
            let head = take(4)?;
            let id = u16::from_le_bytes([head[0], head[1]]);
            let n_transfer = head[2];
            let abstract_syntax = SyntaxId::parse(take(20)?)?;
            let mut transfer_syntaxes = Vec::with_capacity(usize::from(n_transfer));
            for _ in 0..n_transfer {
                transfer_syntaxes.push(SyntaxId::parse(take(20)?)?);
            }
            contexts.push(ContextElem {
                id,
                abstract_syntax,
                transfer_syntaxes,
            });
        }
        Some(BindBody {
            max_xmit_frag,
            max_recv_frag,
            assoc_group_id,
            contexts,
        })
    }
}

/// The fixed part of a REQUEST after the common header ([C706] 12.6.4.9).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestHead {
    pub(crate) context_id: u16,
    pub(crate) opnum: u16,
}

impl RequestHead {
    /// Splits a REQUEST PDU (whole fragment) into its head and stub, skipping the object UUID
    /// when `PFC_OBJECT_UUID` says one is present.
    pub(crate) fn parse(hdr: &Header, pdu: &[u8]) -> Option<(RequestHead, usize)> {
        let b = pdu.get(HEADER_LEN..REQUEST_HEADER_LEN)?;
        let head = RequestHead {
            context_id: u16::from_le_bytes([b[4], b[5]]),
            opnum: u16::from_le_bytes([b[6], b[7]]),
        };
        let stub_start = if hdr.flags & pfc::OBJECT_UUID != 0 {
            REQUEST_HEADER_LEN + 16
        } else {
            REQUEST_HEADER_LEN
        };
        (stub_start <= pdu.len()).then_some((head, stub_start))
    }
}

/// One `p_result_t` of a BIND_ACK or ALTER_CONTEXT_RESP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ContextResult {
    pub(crate) result: u16,
    pub(crate) reason: u16,
    pub(crate) transfer_syntax: SyntaxId,
}

/// Appends a common header with a placeholder fragment length.
fn start(out: &mut Vec<u8>, ptype: u8, flags: u8, call_id: u32) {
    out.extend_from_slice(&[5, 0, ptype, flags, 0x10, 0, 0, 0, 0, 0, 0, 0]);
    out.extend_from_slice(&call_id.to_le_bytes());
}

/// Writes the fragment length. Every PDU we build is bounded by the negotiated fragment size
/// (at most 5840) or by a handful of results, so it always fits in a `u16`.
fn finish(mut out: Vec<u8>) -> Vec<u8> {
    let len = u16::try_from(out.len()).unwrap_or(u16::MAX);
    out[8..10].copy_from_slice(&len.to_le_bytes());
    out
}

fn align4(out: &mut Vec<u8>) {
    let pad = out.len().wrapping_neg() & 3;
    out.resize(out.len() + pad, 0);
}

/// BIND_ACK ([C706] 12.6.4.4) or ALTER_CONTEXT_RESP ([C706] 12.6.4.2; its secondary address
/// is empty, [MS-RPCE] 3.3.1.5.6). `sec_addr` excludes the terminating NUL.
pub(crate) fn bind_ack(
    ptype: u8,
    call_id: u32,
    max_xmit_frag: u16,
    max_recv_frag: u16,
    assoc_group_id: u32,
    sec_addr: Option<&str>,
    results: &[ContextResult],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + results.len() * 24);
    start(&mut out, ptype, pfc::FIRST_FRAG | pfc::LAST_FRAG, call_id);
    out.extend_from_slice(&max_xmit_frag.to_le_bytes());
    out.extend_from_slice(&max_recv_frag.to_le_bytes());
    out.extend_from_slice(&assoc_group_id.to_le_bytes());
    match sec_addr {
        Some(addr) => {
            let len = u16::try_from(addr.len() + 1).unwrap_or(0);
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(addr.as_bytes());
            out.push(0);
        }
        None => out.extend_from_slice(&0u16.to_le_bytes()),
    }
    align4(&mut out);
    // At most 255 results: a BIND carries at most 255 contexts.
    out.push(u8::try_from(results.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(&[0, 0, 0]);
    for r in results.iter().take(usize::from(u8::MAX)) {
        out.extend_from_slice(&r.result.to_le_bytes());
        out.extend_from_slice(&r.reason.to_le_bytes());
        r.transfer_syntax.put(&mut out);
    }
    finish(out)
}

/// BIND_NAK ([C706] 12.6.4.5) offering version 5.0 as the one we support.
pub(crate) fn bind_nak(call_id: u32, reason: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(24);
    start(
        &mut out,
        ptype::BIND_NAK,
        pfc::FIRST_FRAG | pfc::LAST_FRAG,
        call_id,
    );
    out.extend_from_slice(&reason.to_le_bytes());
    out.extend_from_slice(&[1, 5, 0]);
    align4(&mut out);
    finish(out)
}

/// FAULT ([C706] 12.6.4.7). `alloc_hint` is 24 as Samba sends it, and `did_not_execute`
/// tells the client the call never reached the server routine.
pub(crate) fn fault(call_id: u32, context_id: u16, status: u32, did_not_execute: bool) -> Vec<u8> {
    let mut flags = pfc::FIRST_FRAG | pfc::LAST_FRAG;
    if did_not_execute {
        flags |= pfc::DID_NOT_EXECUTE;
    }
    let mut out = Vec::with_capacity(32);
    start(&mut out, ptype::FAULT, flags, call_id);
    out.extend_from_slice(&24u32.to_le_bytes());
    out.extend_from_slice(&context_id.to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&status.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    finish(out)
}

/// Splits a response stub into RESPONSE fragments of at most `max_xmit_frag` bytes
/// ([C706] 12.6.4.10). Each fragment but the last carries a multiple of 16 stub bytes, as
/// Samba does, so a later addition of sealing needs no change in the split.
pub(crate) fn responses(
    call_id: u32,
    context_id: u16,
    stub: &[u8],
    max_xmit_frag: u16,
) -> Vec<Vec<u8>> {
    let room = usize::from(max_xmit_frag).saturating_sub(REQUEST_HEADER_LEN) & !15;
    // The negotiated size is at least 2048, so `room` is never 0; the max() only guards it.
    let chunk = room.max(16);
    let mut frags = Vec::with_capacity(stub.len() / chunk + 1);
    let mut rest = stub;
    let mut first = true;
    loop {
        let (this, after) = rest.split_at(rest.len().min(chunk));
        let mut flags = 0;
        if first {
            flags |= pfc::FIRST_FRAG;
        }
        if after.is_empty() {
            flags |= pfc::LAST_FRAG;
        }
        let mut out = Vec::with_capacity(REQUEST_HEADER_LEN + this.len());
        start(&mut out, ptype::RESPONSE, flags, call_id);
        // alloc_hint: the stub bytes still to come, this fragment's included.
        let hint = u32::try_from(rest.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&hint.to_le_bytes());
        out.extend_from_slice(&context_id.to_le_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(this);
        frags.push(finish(out));
        if after.is_empty() {
            return frags;
        }
        rest = after;
        first = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ndr20_wire_bytes() {
        let mut v = Vec::new();
        NDR20.put(&mut v);
        assert_eq!(
            v,
            [
                0x04, 0x5d, 0x88, 0x8a, 0xeb, 0x1c, 0xc9, 0x11, 0x9f, 0xe8, 0x08, 0x00, 0x2b, 0x10,
                0x48, 0x60, 2, 0, 0, 0
            ]
        );
        assert_eq!(
            format!("{NDR20:?}"),
            "8a885d04-1ceb-11c9-9fe8-08002b104860 v2.0"
        );
    }

    #[test]
    fn header_decodes_big_endian_lengths() {
        let mut b = [5, 0, 0, 3, 0x00, 0, 0, 0, 0, 24, 0, 0, 0, 0, 0, 9];
        let h = Header::parse(&b);
        assert_eq!((h.frag_length, h.call_id), (24, 9));
        assert!(!h.drep_native());
        b[4] = 0x10;
        b[8] = 24;
        b[9] = 0;
        let h = Header::parse(&b);
        assert_eq!(h.frag_length, 24);
        assert!(h.drep_native());
    }

    #[test]
    fn responses_split_and_hint() {
        let stub: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let frags = responses(7, 1, &stub, 4280);
        assert_eq!(frags.len(), 3);
        let mut joined = Vec::new();
        let mut left = stub.len();
        for (i, f) in frags.iter().enumerate() {
            assert!(f.len() <= 4280);
            let flen = u16::from_le_bytes([f[8], f[9]]) as usize;
            assert_eq!(flen, f.len());
            assert_eq!(f[3] & pfc::FIRST_FRAG != 0, i == 0);
            assert_eq!(f[3] & pfc::LAST_FRAG != 0, i == frags.len() - 1);
            assert_eq!(
                u32::from_le_bytes(f[16..20].try_into().unwrap()) as usize,
                left
            );
            let s = &f[24..];
            if i + 1 < frags.len() {
                assert_eq!(s.len() % 16, 0);
            }
            left -= s.len();
            joined.extend_from_slice(s);
        }
        assert_eq!(joined, stub);
        // An empty stub still gets one fragment with both flags.
        let frags = responses(1, 0, &[], 4280);
        assert_eq!(frags.len(), 1);
        assert_eq!(frags[0][3], 3);
    }

    #[test]
    fn bind_body_truncated_is_none() {
        let mut b = vec![0xb8, 0x10, 0xb8, 0x10, 0, 0, 0, 0, 1, 0, 0, 0];
        assert!(BindBody::parse(&b).is_none());
        b.extend_from_slice(&[0, 0, 1, 0]);
        b.extend_from_slice(&[0; 20]);
        assert!(BindBody::parse(&b).is_none());
        b.extend_from_slice(&[0; 20]);
        let body = BindBody::parse(&b).unwrap();
        assert_eq!(body.contexts.len(), 1);
        assert_eq!(body.contexts[0].transfer_syntaxes.len(), 1);
    }
}
