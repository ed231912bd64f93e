//! Development aid: serve one folder on a loopback port with one user.
//! `cargo run -p smb-engine --example quick -- DIR PORT` (user `alice`, password `Secret.123`).
use std::sync::Arc;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "debug".into()))
        .init();
    let mut args = std::env::args().skip(1);
    let dir = args.next().unwrap_or_else(|| ".".into());
    let port = args.next().unwrap_or_else(|| "4445".into());
    let cfg = smb_engine::EngineConfig::new("LANSHARE")
        .with_share(smb_engine::ShareConfig::new("share", dir));
    let users = Arc::new(lanshare_auth::MemoryUserDb::new().with_user("alice", "Secret.123"));
    let server = smb_engine::Server::new(cfg, users).map_err(std::io::Error::other)?;
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    server.serve(listener).await
}
