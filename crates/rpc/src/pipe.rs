//! One open named pipe: the connection-oriented DCE/RPC server state machine (\[C706\] 12,
//! [MS-RPCE] 3.3.1) behind an SMB2 file handle.
//!
//! Input arrives as arbitrary pieces of the byte stream (an SMB2 WRITE may carry part of a
//! fragment, or several). It is cut into fragments by the common header's `frag_length`, each
//! checked against the negotiated maximum before a byte of it is buffered. Output is a queue
//! of whole fragments; since a named pipe used for RPC is in message mode, one READ returns
//! at most the rest of one fragment ([MS-SMB2] 3.3.5.12: a message larger than the read gets
//! STATUS_BUFFER_OVERFLOW, the remainder comes with the next READ).
//!
//! Error policy: while the common header is sound, every problem is answered on the pipe
//! (BIND_NAK for a bind, FAULT for anything else that has a call id) and the pipe lives on.
//! Only a stream that is not DCE/RPC at all kills it ([`RpcError::Malformed`]).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::error::RpcError;
use crate::ndr::{NdrError, NdrReader};
use crate::pdu::{
    self, BindBody, ContextElem, ContextResult, HEADER_LEN, Header, NDR20, NDR64, RequestHead,
    SUPPORTED_BIND_FEATURES, SyntaxId, fault, nak, pfc, ptype, result,
};
use crate::{RpcContext, srvsvc, wkssvc};

/// The largest request stub we reassemble from fragments. srvsvc and wkssvc requests are a
/// few hundred bytes; the cap only has to be far above that and far below memory trouble.
pub const MAX_REQUEST_STUB: usize = 4 * 1024 * 1024;

/// Output bytes that may wait unread before [`Pipe::write`] refuses more input with
/// [`RpcError::Busy`]. A client that never reads cannot grow a pipe beyond this plus one
/// response.
pub const MAX_PENDING_OUTPUT: usize = 16 * 1024 * 1024;

/// Our largest fragment, both directions (the value Windows Server and Samba use).
const MAX_FRAG: u16 = 5840;
/// The floor for negotiated fragments: Windows answers at least this whatever the client
/// proposes, and [C706] 12.6.3.1 requires every implementation to take 1432.
const MIN_FRAG: u16 = 2048;
/// Presentation contexts one pipe keeps. Clients bind one; the cap stops ALTER_CONTEXT loops.
const MAX_CONTEXTS: usize = 16;

/// The interfaces served, one per pipe name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Interface {
    Srvsvc,
    Wkssvc,
}

impl Interface {
    fn pipe_name(self) -> &'static str {
        match self {
            Interface::Srvsvc => "srvsvc",
            Interface::Wkssvc => "wkssvc",
        }
    }

    fn syntax(self) -> SyntaxId {
        match self {
            Interface::Srvsvc => srvsvc::SYNTAX,
            Interface::Wkssvc => wkssvc::SYNTAX,
        }
    }

    /// [C706] 12.6.3.1: compatible when the major versions match and ours is at least as new
    /// in the minor version.
    fn accepts(self, abstract_syntax: &SyntaxId) -> bool {
        let ours = self.syntax();
        abstract_syntax.uuid == ours.uuid
            && abstract_syntax.major() == ours.major()
            && abstract_syntax.minor() <= ours.minor()
    }

    fn call(
        self,
        opnum: u16,
        stub: &[u8],
        ndr64: bool,
        ctx: &dyn RpcContext,
    ) -> Result<Vec<u8>, CallError> {
        let r = NdrReader::with_syntax(stub, ndr64);
        match self {
            Interface::Srvsvc => srvsvc::call(opnum, r, ctx),
            Interface::Wkssvc => wkssvc::call(opnum, r, ctx),
        }
    }
}

/// Why an operation produced no response stub.
#[derive(Debug)]
pub(crate) enum CallError {
    /// No such operation on this interface (`nca_s_op_rng_error`).
    OpRange,
    /// The request stub did not unmarshal (`nca_s_fault_ndr`).
    Ndr,
}

impl From<NdrError> for CallError {
    fn from(_: NdrError) -> Self {
        CallError::Ndr
    }
}

/// A request being put together from fragments ([C706] 12.4.1.2).
#[derive(Debug)]
enum Reassembly {
    Idle,
    Collecting {
        call_id: u32,
        head: RequestHead,
        stub: Vec<u8>,
    },
    /// A call already answered with a fault whose remaining fragments are dropped.
    Discarding {
        call_id: u32,
    },
}

/// Opens the pipe `name` when it is one we serve: `srvsvc` or `wkssvc`, in any case, with or
/// without a leading `\` or `PIPE\` (`\PIPE\srvsvc`). Anything else is `None`, which the
/// engine answers with STATUS_OBJECT_NAME_NOT_FOUND.
pub fn open_pipe(name: &str) -> Option<Pipe> {
    let mut n = name.trim_start_matches('\\');
    if n.len() > 5 && n.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("pipe\\")) {
        n = n.get(5..)?.trim_start_matches('\\');
    }
    let iface = if n.eq_ignore_ascii_case("srvsvc") {
        Interface::Srvsvc
    } else if n.eq_ignore_ascii_case("wkssvc") {
        Interface::Wkssvc
    } else {
        return None;
    };
    Some(Pipe {
        iface,
        bound: false,
        dead: false,
        max_xmit: MAX_FRAG,
        max_recv: MAX_FRAG,
        assoc_group_id: 0,
        contexts: Vec::new(),
        inbuf: Vec::new(),
        reassembly: Reassembly::Idle,
        out: VecDeque::new(),
        out_pos: 0,
        out_len: 0,
    })
}

/// A fresh association group id for a client that did not name one. Only needs to be
/// non-zero; unique within the process is a courtesy to clients that compare them.
fn next_assoc_group_id() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(0x0001_53f0);
    loop {
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        if id != 0 {
            return id;
        }
    }
}

/// One open pipe handle: bind state, fragment reassembly, and output waiting to be read.
#[derive(Debug)]
pub struct Pipe {
    iface: Interface,
    bound: bool,
    dead: bool,
    /// Largest fragment we send (the client's receive size, negotiated).
    max_xmit: u16,
    /// Largest fragment we accept.
    max_recv: u16,
    assoc_group_id: u32,
    /// Bound presentation context ids, all naming this pipe's interface, each with whether
    /// its transfer syntax is NDR64 (else NDR 2.0).
    contexts: Vec<(u16, bool)>,
    /// The fragment being received, never longer than its `frag_length`.
    inbuf: Vec<u8>,
    reassembly: Reassembly,
    out: VecDeque<Vec<u8>>,
    /// Bytes of `out.front()` already read.
    out_pos: usize,
    /// Unread output bytes in total.
    out_len: usize,
}

impl Pipe {
    /// The pipe's canonical name: `srvsvc` or `wkssvc`.
    pub fn name(&self) -> &str {
        self.iface.pipe_name()
    }

    /// Takes bytes the client wrote (SMB2 WRITE on the pipe, or the input of
    /// FSCTL_PIPE_TRANSCEIVE) and queues the answers to every PDU they complete.
    ///
    /// `Ok` also covers PDUs answered with a FAULT or BIND_NAK. [`RpcError::Malformed`]
    /// means the pipe is dead (the engine closes it); [`RpcError::Busy`] means nothing was
    /// consumed because too much output is unread.
    pub fn write(&mut self, data: &[u8], ctx: &dyn RpcContext) -> Result<(), RpcError> {
        if self.dead {
            return Err(RpcError::Closed);
        }
        if self.out_len > MAX_PENDING_OUTPUT {
            return Err(RpcError::Busy);
        }
        match self.consume(data, ctx) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.dead = true;
                self.inbuf = Vec::new();
                self.reassembly = Reassembly::Idle;
                Err(e)
            }
        }
    }

    /// Up to `max` bytes of pending output (SMB2 READ, or the output of TRANSCEIVE), never
    /// more than the rest of one fragment. An empty `Vec` when nothing is pending. `more` is
    /// true when the current fragment was cut short by `max`: the engine then answers
    /// STATUS_BUFFER_OVERFLOW and the client reads the rest ([MS-SMB2] 3.3.5.12,
    /// 3.3.5.15.8). Further whole fragments may still be queued with `more` false
    /// ([`Pipe::has_output`]); clients read them because the fragment just returned lacked
    /// PFC_LAST_FRAG.
    pub fn read(&mut self, max: usize) -> (Vec<u8>, bool) {
        let Some(front) = self.out.front() else {
            return (Vec::new(), false);
        };
        let rest = front.get(self.out_pos..).unwrap_or_default();
        let n = rest.len().min(max);
        let chunk = rest.get(..n).unwrap_or_default().to_vec();
        self.out_pos += n;
        self.out_len -= n;
        if self.out_pos >= front.len() {
            self.out.pop_front();
            self.out_pos = 0;
            (chunk, false)
        } else {
            (chunk, true)
        }
    }

    /// Whether output is waiting to be read.
    pub fn has_output(&self) -> bool {
        !self.out.is_empty()
    }

    /// Unread output bytes in total.
    pub fn pending_output(&self) -> usize {
        self.out_len
    }

    /// Whether a malformed stream killed the pipe.
    pub fn is_closed(&self) -> bool {
        self.dead
    }

    /// (bytes of the fragment being received, bytes of the request being reassembled), for
    /// the bounds checks of the tests.
    #[cfg(test)]
    pub(crate) fn buffered(&self) -> (usize, usize) {
        let stub = match &self.reassembly {
            Reassembly::Collecting { stub, .. } => stub.len(),
            _ => 0,
        };
        (self.inbuf.len(), stub)
    }

    fn queue(&mut self, pdu: Vec<u8>) {
        self.out_len += pdu.len();
        self.out.push_back(pdu);
    }

    /// Cuts the input into fragments, buffering at most one fragment's worth.
    fn consume(&mut self, mut data: &[u8], ctx: &dyn RpcContext) -> Result<(), RpcError> {
        while !data.is_empty() {
            if self.inbuf.len() < HEADER_LEN {
                let n = (HEADER_LEN - self.inbuf.len()).min(data.len());
                let (head, rest) = data.split_at(n);
                self.inbuf.extend_from_slice(head);
                data = rest;
                if self.inbuf.len() < HEADER_LEN {
                    return Ok(());
                }
            }
            let hdr = self.header()?;
            self.check_header(&hdr)?;
            let want = usize::from(hdr.frag_length);
            let n = (want - self.inbuf.len()).min(data.len());
            let (body, rest) = data.split_at(n);
            self.inbuf.extend_from_slice(body);
            data = rest;
            if self.inbuf.len() == want {
                let pdu = std::mem::take(&mut self.inbuf);
                let res = self.handle(&hdr, &pdu, ctx);
                // Keep the allocation for the next fragment.
                self.inbuf = pdu;
                self.inbuf.clear();
                res?;
            }
        }
        Ok(())
    }

    fn header(&self) -> Result<Header, RpcError> {
        let b: &[u8; HEADER_LEN] = self
            .inbuf
            .get(..HEADER_LEN)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| RpcError::Malformed("short header".into()))?;
        Ok(Header::parse(b))
    }

    /// The checks that decide whether the stream is DCE/RPC at all. They run as soon as the
    /// header is in, before the rest of the fragment is buffered.
    fn check_header(&self, hdr: &Header) -> Result<(), RpcError> {
        if hdr.rpc_vers != 5 && hdr.ptype != ptype::BIND {
            return Err(RpcError::Malformed(format!(
                "RPC version {}.{}",
                hdr.rpc_vers, hdr.rpc_vers_minor
            )));
        }
        match hdr.ptype {
            ptype::REQUEST
            | ptype::BIND
            | ptype::ALTER_CONTEXT
            | ptype::AUTH3
            | ptype::CO_CANCEL
            | ptype::ORPHANED => {}
            other => {
                return Err(RpcError::Malformed(format!(
                    "PDU type {other} is not sent by clients"
                )));
            }
        }
        let limit = if self.bound { self.max_recv } else { MAX_FRAG };
        if usize::from(hdr.frag_length) < HEADER_LEN || hdr.frag_length > limit {
            return Err(RpcError::Malformed(format!(
                "fragment length {} outside {HEADER_LEN}..={limit}",
                hdr.frag_length
            )));
        }
        if usize::from(hdr.auth_length) > usize::from(hdr.frag_length) - HEADER_LEN {
            return Err(RpcError::Malformed(format!(
                "auth length {} beyond fragment length {}",
                hdr.auth_length, hdr.frag_length
            )));
        }
        Ok(())
    }

    /// One whole fragment, `pdu.len() == hdr.frag_length`.
    fn handle(&mut self, hdr: &Header, pdu: &[u8], ctx: &dyn RpcContext) -> Result<(), RpcError> {
        match hdr.ptype {
            ptype::BIND => {
                self.on_bind(hdr, pdu);
                Ok(())
            }
            _ if !hdr.version_ok() => Err(RpcError::Malformed(format!(
                "RPC version {}.{}",
                hdr.rpc_vers, hdr.rpc_vers_minor
            ))),
            ptype::ALTER_CONTEXT => {
                self.on_alter_context(hdr, pdu);
                Ok(())
            }
            ptype::REQUEST => {
                self.on_request(hdr, pdu, ctx);
                Ok(())
            }
            ptype::ORPHANED | ptype::CO_CANCEL => {
                // The client gave up on the call: drop what was collected for it. Calls run
                // to completion inside write(), so nothing else can be in progress.
                if let Reassembly::Collecting { call_id, .. } | Reassembly::Discarding { call_id } =
                    self.reassembly
                    && call_id == hdr.call_id
                {
                    self.reassembly = Reassembly::Idle;
                }
                Ok(())
            }
            // AUTH3 only completes an authenticated bind, which we never accept, and it is a
            // one-way PDU: there is no reply to send.
            _ => Ok(()),
        }
    }

    fn on_bind(&mut self, hdr: &Header, pdu: &[u8]) {
        let refuse = |reason| pdu::bind_nak(hdr.call_id, reason);
        let nak = if !hdr.version_ok() {
            Some(nak::PROTOCOL_VERSION_NOT_SUPPORTED)
        } else if !hdr.drep_native() {
            Some(nak::REASON_NOT_SPECIFIED)
        } else if hdr.auth_length != 0 {
            Some(nak::AUTHENTICATION_TYPE_NOT_RECOGNIZED)
        } else if self.bound {
            // [C706] 12.4.2: one BIND per association; ALTER_CONTEXT adds contexts.
            Some(nak::REASON_NOT_SPECIFIED)
        } else {
            None
        };
        if let Some(reason) = nak {
            self.queue(refuse(reason));
            return;
        }
        let body = match pdu.get(HEADER_LEN..).and_then(BindBody::parse) {
            Some(b) if !b.contexts.is_empty() => b,
            // [MS-RPCE] 2.2.2.5: reason 4 also stands for a protocol error in a bind.
            _ => {
                self.queue(refuse(nak::PROTOCOL_VERSION_NOT_SUPPORTED));
                return;
            }
        };
        // Both directions get the same size: the smaller of the client's two, raised to
        // the floor, capped at ours, and cut to a multiple of 8, as Windows answers.
        let proposed = body.max_xmit_frag.min(body.max_recv_frag);
        let size = proposed.clamp(MIN_FRAG, MAX_FRAG) & !7;
        self.max_xmit = size;
        self.max_recv = size;
        self.assoc_group_id = if body.assoc_group_id != 0 {
            body.assoc_group_id
        } else {
            next_assoc_group_id()
        };
        let results = self.negotiate(&body.contexts, true);
        self.bound = true;
        let sec_addr = format!("\\pipe\\{}", self.iface.pipe_name());
        let ack = pdu::bind_ack(
            ptype::BIND_ACK,
            hdr.call_id,
            self.max_xmit,
            self.max_recv,
            self.assoc_group_id,
            Some(&sec_addr),
            &results,
        );
        self.queue(ack);
    }

    fn on_alter_context(&mut self, hdr: &Header, pdu: &[u8]) {
        let status = if !self.bound {
            Some(fault::PROTO_ERROR)
        } else if !hdr.drep_native() {
            Some(fault::NDR)
        } else if hdr.auth_length != 0 {
            Some(fault::ACCESS_DENIED)
        } else {
            None
        };
        let body = match (status, pdu.get(HEADER_LEN..).and_then(BindBody::parse)) {
            (None, Some(b)) => b,
            (status, _) => {
                let status = status.unwrap_or(fault::PROTO_ERROR);
                self.queue(pdu::fault(hdr.call_id, 0, status, true));
                return;
            }
        };
        let results = self.negotiate(&body.contexts, false);
        let resp = pdu::bind_ack(
            ptype::ALTER_CONTEXT_RESP,
            hdr.call_id,
            self.max_xmit,
            self.max_recv,
            self.assoc_group_id,
            None,
            &results,
        );
        self.queue(resp);
    }

    /// One result per offered context ([C706] 12.6.4.4, [MS-RPCE] 3.3.1.5.3).
    fn negotiate(&mut self, offered: &[ContextElem], in_bind: bool) -> Vec<ContextResult> {
        let mut features_seen = false;
        offered
            .iter()
            .map(|c| {
                let reject = |reason| ContextResult {
                    result: result::PROVIDER_REJECTION,
                    reason,
                    transfer_syntax: SyntaxId::ZERO,
                };
                if in_bind
                    && !features_seen
                    && let [only] = c.transfer_syntaxes.as_slice()
                    && let Some(bits) = only.bind_time_features()
                {
                    features_seen = true;
                    return ContextResult {
                        result: result::NEGOTIATE_ACK,
                        reason: u16::from(bits & SUPPORTED_BIND_FEATURES),
                        transfer_syntax: SyntaxId::ZERO,
                    };
                }
                if !self.iface.accepts(&c.abstract_syntax) {
                    return reject(result::ABSTRACT_SYNTAX_NOT_SUPPORTED);
                }
                let ndr64 = if c.transfer_syntaxes.contains(&NDR20) {
                    false
                } else if c.transfer_syntaxes.contains(&NDR64) {
                    true
                } else {
                    return reject(result::TRANSFER_SYNTAXES_NOT_SUPPORTED);
                };
                match self.contexts.iter_mut().find(|(id, _)| *id == c.id) {
                    Some(known) => known.1 = ndr64,
                    None => {
                        if self.contexts.len() >= MAX_CONTEXTS {
                            return reject(result::LOCAL_LIMIT_EXCEEDED);
                        }
                        self.contexts.push((c.id, ndr64));
                    }
                }
                ContextResult {
                    result: result::ACCEPTANCE,
                    reason: result::REASON_NOT_SPECIFIED,
                    transfer_syntax: if ndr64 { NDR64 } else { NDR20 },
                }
            })
            .collect()
    }

    fn on_request(&mut self, hdr: &Header, pdu: &[u8], ctx: &dyn RpcContext) {
        let call_id = hdr.call_id;
        let early = if !self.bound {
            Some(fault::PROTO_ERROR)
        } else if !hdr.drep_native() {
            Some(fault::NDR)
        } else if hdr.auth_length != 0 {
            Some(fault::ACCESS_DENIED)
        } else {
            None
        };
        let parsed = RequestHead::parse(hdr, pdu);
        let (head, stub) = match (early, parsed) {
            (None, Some((head, start))) => (head, pdu.get(start..).unwrap_or_default()),
            (status, _) => {
                self.drop_call(
                    call_id,
                    hdr.flags & pfc::FIRST_FRAG != 0,
                    hdr.flags & pfc::LAST_FRAG != 0,
                );
                self.queue(pdu::fault(
                    call_id,
                    0,
                    status.unwrap_or(fault::PROTO_ERROR),
                    true,
                ));
                return;
            }
        };
        let first = hdr.flags & pfc::FIRST_FRAG != 0;
        let last = hdr.flags & pfc::LAST_FRAG != 0;
        if first {
            // A new call while another is half received: the old one is abandoned.
            if let Reassembly::Collecting {
                call_id: old,
                head: old_head,
                ..
            } = std::mem::replace(&mut self.reassembly, Reassembly::Idle)
                && old != call_id
            {
                self.queue(pdu::fault(
                    old,
                    old_head.context_id,
                    fault::PROTO_ERROR,
                    true,
                ));
            }
            if last {
                self.dispatch(call_id, head, stub, ctx);
            } else if stub.len() > MAX_REQUEST_STUB {
                self.queue(pdu::fault(call_id, 0, fault::REMOTE_NO_MEMORY, true));
                self.reassembly = Reassembly::Discarding { call_id };
            } else {
                self.reassembly = Reassembly::Collecting {
                    call_id,
                    head,
                    stub: stub.to_vec(),
                };
            }
            return;
        }
        match &mut self.reassembly {
            Reassembly::Collecting {
                call_id: id,
                stub: collected,
                ..
            } if *id == call_id => {
                if collected.len().saturating_add(stub.len()) > MAX_REQUEST_STUB {
                    self.queue(pdu::fault(call_id, 0, fault::REMOTE_NO_MEMORY, true));
                    self.reassembly = if last {
                        Reassembly::Idle
                    } else {
                        Reassembly::Discarding { call_id }
                    };
                    return;
                }
                collected.extend_from_slice(stub);
                if last
                    && let Reassembly::Collecting { head, stub, .. } =
                        std::mem::replace(&mut self.reassembly, Reassembly::Idle)
                {
                    self.dispatch(call_id, head, &stub, ctx);
                }
            }
            Reassembly::Discarding { call_id: id } if *id == call_id => {
                if last {
                    self.reassembly = Reassembly::Idle;
                }
            }
            // A middle or last fragment of a call we know nothing about.
            _ => self.queue(pdu::fault(call_id, 0, fault::PROTO_ERROR, true)),
        }
    }

    /// Forgets the call after it was answered with a fault: its remaining fragments, if
    /// any, are dropped silently rather than answered again.
    fn drop_call(&mut self, call_id: u32, first: bool, last: bool) {
        let ours = matches!(
            self.reassembly,
            Reassembly::Collecting { call_id: id, .. } | Reassembly::Discarding { call_id: id }
                if id == call_id
        );
        if ours || first {
            self.reassembly = if last {
                Reassembly::Idle
            } else {
                Reassembly::Discarding { call_id }
            };
        }
    }

    fn dispatch(&mut self, call_id: u32, head: RequestHead, stub: &[u8], ctx: &dyn RpcContext) {
        let Some(&(_, ndr64)) = self.contexts.iter().find(|(id, _)| *id == head.context_id) else {
            self.queue(pdu::fault(call_id, 0, fault::UNK_IF, true));
            return;
        };
        match self.iface.call(head.opnum, stub, ndr64, ctx) {
            Ok(out) => {
                for frag in pdu::responses(call_id, head.context_id, &out, self.max_xmit) {
                    self.queue(frag);
                }
            }
            Err(CallError::OpRange) => self.queue(pdu::fault(
                call_id,
                head.context_id,
                fault::OP_RNG_ERROR,
                true,
            )),
            Err(CallError::Ndr) => {
                self.queue(pdu::fault(call_id, head.context_id, fault::NDR, false))
            }
        }
    }
}
