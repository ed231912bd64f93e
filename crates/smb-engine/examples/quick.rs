//! Development aid: serve one folder on a loopback port with one user.
//! `cargo run -p smb-engine --example quick -- DIR PORT` (user `alice`, password `Secret.123`).
//! Limits for manual tests come from the environment: MAX_SESSIONS, IDLE_SECS.
use std::sync::Arc;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "debug".into());
    tracing_subscriber::fmt().with_env_filter(filter).init();
    let mut args = std::env::args().skip(1);
    let dir = args.next().unwrap_or_else(|| ".".into());
    let port = args.next().unwrap_or_else(|| "4445".into());
    let share = smb_engine::ShareConfig::new("share", dir);
    let mut cfg = smb_engine::EngineConfig::new("LANSHARE").with_share(share);
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u32>().ok());
    if let Some(n) = env("MAX_SESSIONS") {
        cfg.limits.max_sessions = n;
    }
    if let Some(n) = env("IDLE_SECS") {
        cfg.limits.idle_timeout = std::time::Duration::from_secs(n.into());
    }
    let users = Arc::new(lanshare_auth::MemoryUserDb::new().with_user("alice", "Secret.123"));
    let server = smb_engine::Server::new(cfg, users).map_err(std::io::Error::other)?;
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    server.serve(listener).await
}
