//! One module per SMB2 command: its request and response, each with `parse` and `encode`.
//!
//! Conventions shared by every message:
//! - `parse(pdu)` takes the whole PDU starting at the 64-byte header, because every offset in
//!   SMB2 counts from the header start. It checks the header's command and the body's
//!   StructureSize, and bounds-checks every offset and length. Variable data is borrowed.
//! - `encode(&self, pdu)` appends the body to a vec whose last 64 bytes before the body are the
//!   header (normally the vec holds exactly the header; compound builders may have earlier
//!   PDUs in front, and offsets are then still counted from this PDU's header).
//! - Encoders return `Result` because a few length fields are 16 bits wide and a caller could
//!   hand in more than fits; nothing is ever truncated silently.

use crate::codec::{Reader, Writer, to_u16, to_u32};
use crate::error::{Result, WireError};
use crate::header::Header;
use crate::types::Command;

pub mod cancel;
pub mod change_notify;
pub mod close;
pub mod create;
pub mod create_context;
pub mod dispatch;
pub mod echo;
pub mod error;
pub mod flush;
pub mod ioctl;
pub mod lock;
pub mod logoff;
pub mod negotiate;
pub mod oplock_break;
pub mod query_directory;
pub mod query_info;
pub mod read;
pub mod session_setup;
pub mod set_info;
pub mod tree_connect;
pub mod tree_disconnect;
pub mod write;

pub use cancel::CancelRequest;
pub use change_notify::{ChangeNotifyRequest, ChangeNotifyResponse};
pub use close::{CloseRequest, CloseResponse};
pub use create::{CreateRequest, CreateResponse};
pub use create_context::CreateContext;
pub use dispatch::{Request, Response};
pub use echo::{EchoRequest, EchoResponse};
pub use error::ErrorResponse;
pub use flush::{FlushRequest, FlushResponse};
pub use ioctl::{IoctlRequest, IoctlResponse};
pub use lock::{LockRequest, LockResponse};
pub use logoff::{LogoffRequest, LogoffResponse};
pub use negotiate::{NegotiateContext, NegotiateRequest, NegotiateResponse};
pub use oplock_break::OplockBreakMessage;
pub use query_directory::{QueryDirectoryRequest, QueryDirectoryResponse};
pub use query_info::{QueryInfoRequest, QueryInfoResponse};
pub use read::{ReadRequest, ReadResponse};
pub use session_setup::{SessionSetupRequest, SessionSetupResponse};
pub use set_info::{SetInfoRequest, SetInfoResponse};
pub use tree_connect::{TreeConnectRequest, TreeConnectResponse};
pub use tree_disconnect::{TreeDisconnectRequest, TreeDisconnectResponse};
pub use write::{WriteRequest, WriteResponse};

/// Offset of the body in a PDU.
pub const BODY: usize = Header::SIZE;

/// Checks the header's command and the body's StructureSize; returns a reader over the whole
/// PDU positioned just after StructureSize.
pub(crate) fn body<'a>(
    pdu: &'a [u8],
    command: Command,
    structure_size: u16,
    what: &'static str,
) -> Result<Reader<'a>> {
    let (got, r) = body_any(pdu, command, what)?;
    if got != structure_size {
        return Err(WireError::BadStructureSize {
            command,
            expected: structure_size,
            got,
        });
    }
    Ok(r)
}

/// Like [`body`] but returns the StructureSize for messages that have several forms.
pub(crate) fn body_any<'a>(
    pdu: &'a [u8],
    command: Command,
    what: &'static str,
) -> Result<(u16, Reader<'a>)> {
    let h = Header::parse(pdu)?;
    if h.command != command {
        return Err(WireError::WrongCommand {
            expected: command,
            got: h.command,
        });
    }
    let mut r = Reader::at(pdu, BODY, what)?;
    let size = r.u16()?;
    Ok((size, r))
}

/// Start of an encoded body: returns the index of this PDU's header in `pdu`, from which
/// offsets are counted, and fails if the vec does not yet hold a header.
pub(crate) fn header_base(pdu: &[u8]) -> Result<usize> {
    pdu.len()
        .checked_sub(Header::SIZE)
        .ok_or(WireError::Truncated {
            what: "PDU vec must already hold the 64-byte header",
            need: Header::SIZE,
            have: pdu.len(),
        })
}

/// Writes a u16 offset/length pair for a buffer at `pos` (absolute index), relative to `base`.
pub(crate) fn off16(pos: usize, base: usize, what: &'static str) -> Result<u16> {
    to_u16(pos - base, what)
}

/// Writes a u32 offset relative to `base`.
pub(crate) fn off32(pos: usize, base: usize, what: &'static str) -> Result<u32> {
    to_u32(pos - base, what)
}

/// Helper for the many 4-byte bodies (StructureSize 4 + Reserved).
pub(crate) fn parse_empty4(pdu: &[u8], command: Command, what: &'static str) -> Result<()> {
    let mut r = body(pdu, command, 4, what)?;
    r.u16()?; // Reserved: ignored on receipt
    Ok(())
}

pub(crate) fn encode_empty4(pdu: &mut Vec<u8>) -> Result<()> {
    header_base(pdu)?;
    let mut w = Writer::new(pdu);
    w.u16(4);
    w.u16(0);
    Ok(())
}

/// Builds a PDU for tests: a header for `command` followed by whatever `f` appends.
#[cfg(test)]
pub(crate) fn test_pdu(
    command: Command,
    response: bool,
    f: impl FnOnce(&mut Vec<u8>) -> Result<()>,
) -> Vec<u8> {
    use crate::types::HeaderFlags;
    let mut h = Header {
        command,
        message_id: 5,
        ..Header::default()
    };
    if response {
        h.flags = HeaderFlags::SERVER_TO_REDIR;
    }
    let mut v = Vec::new();
    h.encode(&mut v);
    f(&mut v).expect("encode");
    v
}
