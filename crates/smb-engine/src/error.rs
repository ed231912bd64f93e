//! The engine's error types: start-up errors, and the per-request outcome that separates
//! "answer with this status" from "drop the connection".

use std::path::PathBuf;

use smb_wire::NtStatus;

/// Errors creating the server.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("share `{share}`: cannot open {path}: {source}")]
    ShareRoot {
        share: String,
        path: PathBuf,
        source: lanshare_vfs::VfsError,
    },
}

/// Why a request failed.
#[derive(Debug)]
pub enum ProtoError {
    /// Answer the request with this status and keep the connection.
    Status(NtStatus),
    /// The client broke the protocol in a way the spec says ends the connection.
    Drop(String),
}

impl From<NtStatus> for ProtoError {
    fn from(s: NtStatus) -> Self {
        ProtoError::Status(s)
    }
}

impl From<smb_wire::WireError> for ProtoError {
    /// A request whose body does not parse is answered with STATUS_INVALID_PARAMETER
    /// ([MS-SMB2] 3.3.5.2.6: a wrong StructureSize or an offset/length outside the message).
    fn from(_: smb_wire::WireError) -> Self {
        ProtoError::Status(NtStatus::INVALID_PARAMETER)
    }
}

pub type ProtoResult<T> = Result<T, ProtoError>;
