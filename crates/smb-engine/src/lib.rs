//! smb-engine: the SMB2/3 server engine of lanshare.
//!
//! What it is: connection handling (framing, credits, compounds, signing), sessions and tree
//! connects, and one handler module per SMB2 command, over the protocol-neutral storage of
//! `lanshare-vfs` and the authentication of `lanshare-auth`. What it is not: a codec (that is
//! `smb-wire`, which does no I/O), a config parser or a CLI (that is the `lanshare` binary).
//!
//! Layout:
//! - [`server`]: server-wide state, the accept loop, shutdown;
//! - `conn`: one connection — reading frames, the per-PDU pipeline, the response path;
//! - `session`: sessions, tree connects, the server-wide session table;
//! - `handlers`: one module per command (group), each opening with the spec section it implements;
//! - `crypto`: key derivation, signing, the pre-auth integrity hash;
//! - `credits`: the message-id window; `bufpool`: large READ buffers kept for reuse;
//! - `open`, `fileinfo`: per-open state, VFS error mapping, FSCC encoders;
//! - `objects`: server-wide per-file state (share modes, current name, byte-range locks);
//! - `names`: search patterns, 8.3 names, stream suffixes; `security`: synthesized descriptors.
#![forbid(unsafe_code)]

mod aapl;
mod bufpool;
mod cipher;
pub mod config;
mod conn;
mod credits;
mod crypto;
mod durable;
mod ea;
mod error;
mod fileinfo;
mod frames;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod handlers;
mod names;
mod objects;
mod open;
mod oplock;
mod outbox;
mod security;
pub mod server;
mod session;
mod splice;
pub mod status;
#[cfg(test)]
mod tests;

pub use config::Limits;
pub use config::{AnonymousPolicy, EncryptionPolicy, EngineConfig, ShareConfig, SigningPolicy};
pub use error::EngineError;
pub use server::{Refusal, Server};
pub use smb_wire::Dialect;
pub use status::{LimitStatus, OpenFileInfo, ServerStatus, SessionInfo, ShareStatus};
