//! Bench-only: one share on a local folder, one user, served by the `smb-server` crate, so that
//! `bench/run` can compare lanshare with another Rust server on the same clients and share.
//!
//! Usage: `peer-smb-server --listen 127.0.0.1:0 --root DIR --share NAME --user U --password P
//! [--require-signing]`. Prints `peer listening on ADDR` once bound, serves until killed.
//! Its limits are set as high as the crate accepts, as lanshare's are in the bench (unlimited).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use smb_server::{Access, LocalFsBackend, Share, SmbServer};

struct Args {
    listen: SocketAddr,
    root: String,
    share: String,
    user: String,
    password: String,
    require_signing: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut listen = "127.0.0.1:0".to_string();
    let (mut root, mut share, mut user, mut password) = (None, None, None, None);
    let mut require_signing = false;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--listen" => listen = val()?,
            "--root" => root = Some(val()?),
            "--share" => share = Some(val()?),
            "--user" => user = Some(val()?),
            "--password" => password = Some(val()?),
            "--require-signing" => require_signing = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Args {
        listen: listen
            .parse()
            .map_err(|e| format!("--listen {listen}: {e}"))?,
        root: root.ok_or("--root is required")?,
        share: share.ok_or("--share is required")?,
        user: user.ok_or("--user is required")?,
        password: password.ok_or("--password is required")?,
        require_signing,
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("peer-smb-server: {e}");
            return ExitCode::from(2);
        }
    };
    let backend = match LocalFsBackend::new(&args.root) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("peer-smb-server: share root {}: {e}", args.root);
            return ExitCode::FAILURE;
        }
    };
    let day = Duration::from_secs(86_400);
    let server = SmbServer::builder()
        .listen(args.listen)
        .user(args.user.clone(), args.password)
        .share(Share::new(args.share, backend).user(args.user, Access::ReadWrite))
        .require_signing(args.require_signing)
        // The crate's default caps 1,024 connections; the session rows need 10,000+.
        .max_connections(1_000_000)
        // Idle sessions are what the session row measures: they must not be reaped meanwhile.
        .idle_timeout(day)
        .build();
    let server = match server {
        Ok(s) => s,
        Err(e) => {
            eprintln!("peer-smb-server: {e}");
            return ExitCode::FAILURE;
        }
    };
    let addr = match server.bind().await {
        Ok(a) => a,
        Err(e) => {
            eprintln!("peer-smb-server: bind {}: {e}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    println!("peer listening on {addr}");
    match server.serve().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("peer-smb-server: {e}");
            ExitCode::FAILURE
        }
    }
}
