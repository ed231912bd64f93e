//! The one error type of this crate.

/// Why [`crate::Pipe::write`] did not take the bytes. Problems inside a PDU whose header was
/// sound are not errors: they are answered on the pipe (FAULT or BIND_NAK) and `write`
/// returns `Ok`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RpcError {
    /// The byte stream is not DCE/RPC: a broken common header, a fragment longer than
    /// negotiated, or a PDU type a client never sends. The pipe is dead from now on; the
    /// engine closes the handle.
    #[error("malformed DCE/RPC stream: {0}")]
    Malformed(String),
    /// An earlier write killed the pipe.
    #[error("the pipe was closed after a protocol error")]
    Closed,
    /// More than [`crate::MAX_PENDING_OUTPUT`] bytes of responses wait to be read; nothing of
    /// this write was consumed. The client must read first (the engine may answer
    /// STATUS_PIPE_BUSY, as Windows does for a transceive on a pipe with unread data).
    #[error("the pipe holds too much unread output")]
    Busy,
}
