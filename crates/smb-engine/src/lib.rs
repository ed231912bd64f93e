//! smb-engine (being written): the SMB2/3 server engine.
#![forbid(unsafe_code)]
pub mod config;
pub use config::{AnonymousPolicy, EngineConfig, ShareConfig, SigningPolicy};
