//! lanshare, the binary's library half: the command line, the `lanshare.toml` config file,
//! user management, and the wiring that starts the SMB engine.
//!
//! What it is not: no protocol code lives here. SMB is in `smb-engine` (over `smb-wire`),
//! authentication and the users-file format in `lanshare-auth`, storage in `lanshare-vfs`.
//! This crate turns a config file or a command line into an `smb_engine::EngineConfig` plus a
//! `UserDb`, binds the sockets, handles signals, serves the local control socket and the
//! optional metrics endpoint, and implements the administration commands that talk to it.
//!
//! Layout:
//! - [`cli`]: clap definitions, dispatch, exit codes (0 ok, 1 failure, 2 usage/config error).
//! - [`admin`]: `status`, `sessions`, `files`, `close-session`, `close-file`, `reload`: the
//!   client side of the control socket, and the tables they print.
//! - [`config`]: the TOML reference, parsing with file:line:col errors, semantic checks.
//! - [`names`]: share and server naming rules, "did you mean" suggestions.
//! - [`quick`]: `serve PATH…` without a config (generated user/password, connect hints).
//! - [`serve`]: config → engine config, binding, listening lines, SIGHUP reload, graceful
//!   shutdown on SIGINT/SIGTERM.
//! - [`users`]: `user add|del|list|passwd` on the users file.
//! - [`logging`]: tracing to stderr, filter from RUST_LOG / -v / config.
//! - [`control`]: the control socket (Unix, 0600, peer credentials checked, JSON lines).
//! - [`reload`]: what a reload changed and what waits for a restart.
//! - [`metrics`]: the optional Prometheus endpoint (`[metrics] listen`).
#![forbid(unsafe_code)]

pub mod admin;
pub mod cli;
pub mod config;
pub mod control;
pub mod logging;
pub mod metrics;
pub mod names;
pub mod quick;
pub mod reload;
pub mod serve;
pub mod users;
