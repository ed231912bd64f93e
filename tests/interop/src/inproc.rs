//! lanshare's SMB engine in this process, on a multi-thread tokio runtime of its own in a
//! background thread: the test thread is free to block on external clients
//! (`std::process::Command`) without starving the server.
//!
//! Stopping calls `Server::shutdown` and then drops the runtime, which cancels whatever
//! connection task has not ended by itself.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::oneshot;

use crate::{Error, ServerOptions, Signing};

pub(crate) struct InProcess {
    server: smb_engine::Server,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl InProcess {
    pub(crate) fn start(
        share_dir: &Path,
        opts: &ServerOptions,
    ) -> Result<(InProcess, SocketAddr), Error> {
        init_tracing();
        let mut cfg = smb_engine::EngineConfig::new("LANSHARE")
            .with_share(smb_engine::ShareConfig::new(opts.share.clone(), share_dir));
        cfg.signing = match opts.signing {
            Signing::Enabled => smb_engine::SigningPolicy::Enabled,
            Signing::Required => smb_engine::SigningPolicy::Required,
        };
        if let Some(tweak) = &opts.lanshare {
            tweak(&mut cfg);
        }
        let users =
            Arc::new(lanshare_auth::MemoryUserDb::new().with_user(&opts.user, &opts.password));
        let server = smb_engine::Server::new(cfg, users)
            .map_err(|e| Error::Setup(format!("lanshare Server::new: {e}")))?;
        let serving = server.clone();

        let (addr_tx, addr_rx) = mpsc::channel::<Result<SocketAddr, String>>();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("lanshare-server".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("lanshare-worker")
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = addr_tx.send(Err(format!("building the tokio runtime: {e}")));
                        return;
                    }
                };
                rt.block_on(async move {
                    let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
                        Ok(l) => l,
                        Err(e) => {
                            let _ = addr_tx.send(Err(format!("binding 127.0.0.1:0: {e}")));
                            return;
                        }
                    };
                    match listener.local_addr() {
                        Ok(a) => {
                            let _ = addr_tx.send(Ok(a));
                        }
                        Err(e) => {
                            let _ = addr_tx.send(Err(format!("local_addr: {e}")));
                            return;
                        }
                    }
                    tokio::select! {
                        outcome = serving.serve(listener) => {
                            eprintln!("lanshare-interop: the server's accept loop ended: {outcome:?}");
                        }
                        _ = stop_rx => serving.shutdown(),
                    }
                });
                rt.shutdown_timeout(Duration::from_secs(2));
            })
            .map_err(|e| Error::io("spawning the server thread", e))?;

        let addr = addr_rx
            .recv_timeout(Duration::from_secs(30))
            .map_err(|e| Error::Setup(format!("lanshare did not start: {e}")))?
            .map_err(|e| Error::Setup(format!("lanshare did not start: {e}")))?;
        Ok((
            InProcess {
                server,
                stop: Some(stop_tx),
                thread: Some(thread),
            },
            addr,
        ))
    }
}

impl InProcess {
    /// Live counters, for failure messages.
    pub(crate) fn status(&self) -> String {
        format!(
            "lanshare in-process: {} connections, {} sessions open (set RUST_LOG=debug for its logs)",
            self.server.connection_count(),
            self.server.session_count()
        )
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `RUST_LOG=…` shows the engine's logs in test output; once per process.
fn init_tracing() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("RUST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
                .with_test_writer()
                .try_init();
        }
    });
}

impl crate::TestServer {
    /// The in-process lanshare engine, for tests that read its live status (`Server::status()`,
    /// `sessions()`) next to what a client saw; `None` against Samba.
    pub fn lanshare_server(&self) -> Option<&smb_engine::Server> {
        match &self.backend {
            crate::Backend::Lanshare(p) => Some(&p.server),
            crate::Backend::Samba(_) => None,
        }
    }
}
