//! lanshare-rpc: DCE/RPC over SMB named pipes, serving the two interfaces that clients use to
//! browse a file server: srvsvc (share lists, server information, [MS-SRVS]) and wkssvc
//! (workstation information, [MS-WKST]).
//!
//! What it is: pure request → response logic. The SMB engine opens a [`Pipe`] per CREATE of
//! `srvsvc` or `wkssvc` on IPC$ ([`open_pipe`]), feeds it the bytes of every WRITE or
//! FSCTL_PIPE_TRANSCEIVE ([`Pipe::write`]) and hands back what [`Pipe::read`] returns for READ
//! and TRANSCEIVE. Inside, a connection-oriented DCE/RPC state machine (\[C706\] chapter 12,
//! [MS-RPCE] 2.2.2, 3.3.1) negotiates the presentation context and fragment sizes, reassembles
//! fragmented requests, splits responses into fragments, and answers faults; an NDR
//! marshaller of its own reads the requests and writes the responses, in NDR 2.0, or in NDR64
//! for a context that offered only that (the Rust `smb` crate does).
//!
//! What it is not: no I/O, no sockets, no async runtime, no SMB types, no authentication
//! (a PDU carrying authentication is refused) and no access policy: the engine decides who
//! may open the pipe, and the [`RpcContext`] it passes decides which shares there are.
//!
//! Wiring, per SMB2 command on an open of IPC$ ([MS-SMB2] 3.3.5.9, 3.3.5.12, 3.3.5.13,
//! 3.3.5.15.8):
//! - CREATE `srvsvc`/`wkssvc`: [`open_pipe`]; `None` → STATUS_OBJECT_NAME_NOT_FOUND.
//! - WRITE: [`Pipe::write`] with the data; `Ok` → success with the whole length written.
//! - READ: [`Pipe::read`] with the READ's length; `more` → STATUS_BUFFER_OVERFLOW with the
//!   data, else success.
//! - IOCTL FSCTL_PIPE_TRANSCEIVE: `write(input)`, then `read(MaxOutputResponse)`, with the
//!   same status rule as READ.
//! - [`RpcError::Malformed`] / [`RpcError::Closed`]: the pipe is dead, close the open;
//!   [`RpcError::Busy`]: nothing was taken (Windows answers STATUS_PIPE_BUSY).
//!
//! Defensive by design (this is where other servers shipped buffer overflows): every length
//! and count from the wire is checked against the bytes present before it is used, fragments
//! are capped at the negotiated size, a reassembled request at [`MAX_REQUEST_STUB`], and the
//! output waiting to be read at [`MAX_PENDING_OUTPUT`].
//!
//! Layout:
//! - [`pipe`]: [`Pipe`], the per-handle state machine (bind, reassembly, dispatch, output).
//! - `pdu`: the common header and the PDUs read and written (\[C706\] 12.6).
//! - `ndr`: the bounded NDR reader and the writer (\[C706\] 14).
//! - `srvsvc`, `wkssvc`: the operations served.
//! - [`error`] holds [`RpcError`].

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod error;
mod ndr;
mod pdu;
pub mod pipe;
mod srvsvc;
#[cfg(test)]
mod tests;
mod wkssvc;

pub use error::RpcError;
pub use pipe::{MAX_PENDING_OUTPUT, MAX_REQUEST_STUB, Pipe, open_pipe};

/// What kind of resource a share is, for the `shi*_type` field ([MS-SRVS] 2.2.2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShareKind {
    /// A folder (`STYPE_DISKTREE`).
    Disk,
    /// The interprocess-communication share IPC$ (`STYPE_IPC`).
    Ipc,
}

/// One share as srvsvc describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareInfo {
    /// The share name clients connect to, e.g. `docs` or `IPC$`.
    pub name: String,
    /// The remark shown next to the name in listings.
    pub comment: String,
    /// Disk or IPC.
    pub kind: ShareKind,
    /// Left out of NetrShareEnum (the `browseable = false` setting, hidden `$` shares); still
    /// answered by NetrShareGetInfo. IPC$ is listed whatever this says, as Windows does.
    pub hidden_from_list: bool,
    /// The local path shown at levels 2 and 502, as the server wants it seen (Windows shows
    /// `C:\…`; Samba shows `C:` followed by the Unix path with `\` separators).
    pub path: String,
    /// The user limit; `u32::MAX` means unlimited (`SHI_USES_UNLIMITED`).
    pub max_uses: u32,
    /// Tree connects to the share right now.
    pub current_uses: u32,
}

/// What NetrServerGetInfo and NetrWkstaGetInfo report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerInfo {
    /// The NetBIOS-style computer name, e.g. `FILESERVER`.
    pub name: String,
    /// The server comment (Windows: the computer description).
    pub comment: String,
    /// The OS version to report: Windows 10 and 11 report 10.0, Samba reports 6.1.
    pub version_major: u32,
    /// See [`ServerInfo::version_major`].
    pub version_minor: u32,
    /// The workgroup or domain name (wkssvc's "LAN group").
    pub domain: String,
}

/// The server's view that the RPC interfaces report. Called once per request, so the answers
/// follow configuration reloads and connection counts.
pub trait RpcContext: Send + Sync {
    /// Every share, hidden ones included. When no [`ShareKind::Ipc`] share is among them, an
    /// `IPC$` ("Remote IPC") is added, since every SMB server has one.
    fn shares(&self) -> Vec<ShareInfo>;
    /// The server's name, comment, version and domain.
    fn server(&self) -> ServerInfo;
}

/// Feeds arbitrary bytes to a fresh `srvsvc` pipe, in pieces, reading output in between: the
/// entry point of the cargo-fuzz target. It must never panic; the fuzzer checks that.
pub fn fuzz_pipe(data: &[u8]) {
    struct Fixed;
    impl RpcContext for Fixed {
        fn shares(&self) -> Vec<ShareInfo> {
            vec![ShareInfo {
                name: "share".into(),
                comment: "fuzz".into(),
                kind: ShareKind::Disk,
                hidden_from_list: false,
                path: "C:\\share".into(),
                max_uses: u32::MAX,
                current_uses: 0,
            }]
        }
        fn server(&self) -> ServerInfo {
            ServerInfo {
                name: "FUZZ".into(),
                comment: String::new(),
                version_major: 10,
                version_minor: 0,
                domain: "WORKGROUP".into(),
            }
        }
    }
    // The first byte picks the pipe and the piece size, so that splits across writes and
    // both interfaces get exercised.
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let name = if first & 1 == 0 { "srvsvc" } else { "wkssvc" };
    let Some(mut pipe) = open_pipe(name) else {
        return;
    };
    let piece = usize::from(first >> 1).max(1) * 8;
    for chunk in rest.chunks(piece) {
        if pipe.write(chunk, &Fixed).is_err() {
            break;
        }
        loop {
            let (out, _more) = pipe.read(1024);
            if out.is_empty() {
                break;
            }
        }
    }
}
