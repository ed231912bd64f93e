//! lanshare, the binary's library half: CLI, config file, user management and wiring.
#![forbid(unsafe_code)]

pub mod config;
pub mod names;
