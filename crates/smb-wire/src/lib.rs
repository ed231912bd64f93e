//! smb-wire: the SMB2/SMB3 wire codec of lanshare.
//!
//! What it is: pure functions and plain data types that turn bytes into SMB2 messages and back
//! ([MS-SMB2], with [MS-FSCC], [MS-ERREF] and [MS-DTYP] for the payloads): direct-TCP framing,
//! the 64-byte header, compound splitting, every request and response, negotiate and create
//! contexts, FSCTL payloads, the transform header, FSCC information classes, and the NTSTATUS
//! table. Decoders borrow from the input (`&'a [u8]`) and bounds-check every offset and length
//! that came off the network; nothing here panics on hostile input.
//!
//! What it is not: no I/O, no sockets, no async runtime, no clock, no crypto (signing and
//! encryption live in the engine; this crate only exposes the byte ranges they cover), and no
//! protocol state (credits, sessions, opens belong to `smb-engine`).
//!
//! Layout:
//! - [`codec`]: the bounded [`codec::Reader`] and the back-patching [`codec::Writer`] every
//!   decoder and encoder uses; [`utf16`]: UTF-16LE names.
//! - [`types`]: open newtypes for wire values (one macro table each) and id newtypes;
//!   [`status`]: [`NtStatus`]; [`fsctl`]: [`CtlCode`] and FSCTL payloads.
//! - [`netbios`]: the 4-byte frame header; [`header`]: the SMB2 header; [`compound`]:
//!   splitting a frame into PDUs and recognising transform/SMB1 frames; [`smb1`]: the SMB1
//!   multi-protocol NEGOTIATE; [`transform`]: the encryption (and compression) transform headers.
//! - [`msg`]: one module per command (`XxxRequest::parse(pdu)`, `XxxResponse::encode(pdu)`,
//!   and the reverse directions for tests and clients).
//! - [`fscc`]: file and file-system information classes, directory and change-notify entries,
//!   security descriptors.
//! - [`error`]: the one error type, [`WireError`].

#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[macro_use]
mod macros;

pub mod codec;
pub mod compound;
pub mod error;
pub mod fscc;
pub mod fsctl;
pub mod header;
pub mod msg;
pub mod netbios;
pub mod smb1;
pub mod status;
pub mod transform;
pub mod types;
pub mod utf16;

pub use compound::{
    CompoundIter, is_compression_transform, is_smb1, is_smb2, is_transform, split_compound,
};
pub use error::WireError;
pub use fsctl::CtlCode;
pub use header::{Header, HeaderId};
pub use status::NtStatus;
pub use types::*;
