//! Change notification with a client nobody here wrote: the Rust `smb` crate's
//! `Directory::watch` (CHANGE_NOTIFY) sees a file created through another connection, then one
//! created directly on the disk by another program, while the watching connection keeps
//! writing and reading a file the whole time (a pending watch must not hold up its
//! connection: it holds no credits and blocks no request).
//!
//! Each change is repeated until the watch reports it, so a CHANGE_NOTIFY that reaches the
//! server after the first attempt cannot make the test fail; the test fails when no change is
//! reported within 60 s, or when the I/O loop made no progress while the watch was pending.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use lanshare_interop::{ServerOptions, TestServer};
use smb::{
    Client, ClientConfig, ConnectionConfig, CreateOptions, FileAccessMask, FileAttributes,
    FileCreateArgs, NotifyFilter, UncPath,
};

fn client(server: &TestServer) -> Client {
    let mut connection = ConnectionConfig {
        port: Some(server.port()),
        timeout: Some(Duration::from_secs(60)),
        encryption_mode: smb::connection::EncryptionMode::Disabled,
        ..Default::default()
    };
    connection.auth_methods.kerberos = false;
    connection.auth_methods.ntlm = true;
    Client::new(ClientConfig {
        connection,
        dfs: false,
        ..Default::default()
    })
}

fn unc(server: &TestServer, path: &str) -> UncPath {
    let u = UncPath::new(&server.host())
        .and_then(|u| u.with_share(server.share()))
        .expect("UNC path");
    if path.is_empty() {
        u
    } else {
        u.with_path(path)
    }
}

async fn connect(server: &TestServer) -> Client {
    let c = client(server);
    c.share_connect(
        &unc(server, ""),
        server.user(),
        server.password().to_string(),
    )
    .await
    .unwrap_or_else(|e| panic!("share_connect: {e:?}\n{}", server.diagnostics()));
    c
}

/// Writes 1 MiB blocks to `busy.bin` and reads each back through a second handle (the crate
/// caches the end of file per handle), counting completed round trips.
async fn keep_busy(
    c: Arc<Client>,
    server_unc: UncPath,
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
) {
    let args = FileCreateArgs::make_overwrite(FileAttributes::new(), CreateOptions::new());
    let w = c
        .create_file(&server_unc, &args)
        .await
        .expect("create busy.bin")
        .unwrap_file();
    let block: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251) as u8).collect();
    let mut buf = vec![0u8; block.len()];
    let mut pos = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let n = w.write_block(&block, pos, None).await.expect("write");
        assert_eq!(n, block.len(), "short write");
        let r = c
            .create_file(
                &server_unc,
                &FileCreateArgs::make_open_existing(FileAccessMask::new().with_generic_read(true)),
            )
            .await
            .expect("reopen busy.bin")
            .unwrap_file();
        let got = r
            .read_block(&mut buf, pos, None, false)
            .await
            .expect("read");
        assert_eq!(got, block.len(), "short read");
        assert!(buf == block, "read back what was written");
        r.close().await.expect("close reader");
        pos = (pos + block.len() as u64) % (16 * 1024 * 1024);
        done.fetch_add(1, Ordering::Relaxed);
    }
    w.close().await.expect("close writer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_sees_other_connection_and_disk_while_busy() {
    let server = TestServer::start(ServerOptions::default()).expect("start server");
    std::fs::create_dir(server.share_dir().join("watched")).expect("mkdir watched");

    let a = Arc::new(connect(&server).await);
    let b = connect(&server).await;

    let dir_args = FileCreateArgs {
        options: CreateOptions::new().with_directory_file(true),
        ..FileCreateArgs::make_open_existing(
            FileAccessMask::new()
                .with_generic_read(true)
                .with_file_read_data(true),
        )
    };
    let dir = Arc::new(
        a.create_file(&unc(&server, "watched"), &dir_args)
            .await
            .unwrap_or_else(|e| panic!("open watched: {e:?}\n{}", server.diagnostics()))
            .unwrap_dir(),
    );

    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let busy = tokio::spawn(keep_busy(
        a.clone(),
        unc(&server, "busy.bin"),
        stop.clone(),
        done.clone(),
    ));

    let filter = NotifyFilter::new().with_file_name(true);
    for (round, how) in ["another connection", "the disk"].into_iter().enumerate() {
        let d = dir.clone();
        let mut watch = tokio::spawn(async move {
            d.watch_timeout(filter, false, Duration::from_secs(60))
                .await
        });
        // The watch is pending (nothing changed yet): the same connection must go on writing
        // and reading meanwhile.
        let before = done.load(Ordering::Relaxed);
        let waited = Instant::now();
        while done.load(Ordering::Relaxed) < before + 2 {
            assert!(
                waited.elapsed() < Duration::from_secs(60),
                "the watching connection made no I/O progress while its watch was pending"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let during = done.load(Ordering::Relaxed) - before;
        let started = Instant::now();
        let prefix = format!("change{round}-");
        let mut i = 0;
        let changes = loop {
            let name = format!("{prefix}{i}.txt");
            i += 1;
            if round == 0 {
                let f = b
                    .create_file(
                        &unc(&server, &format!("watched\\{name}")),
                        &FileCreateArgs::make_create_new(
                            FileAttributes::new(),
                            CreateOptions::new(),
                        ),
                    )
                    .await
                    .unwrap_or_else(|e| panic!("create {name} through B: {e:?}"));
                f.unwrap_file().close().await.expect("close");
            } else {
                std::fs::write(server.share_dir().join("watched").join(&name), b"x")
                    .expect("write on disk");
            }
            match tokio::time::timeout(Duration::from_millis(500), &mut watch).await {
                Ok(r) => {
                    break r.expect("watch task").unwrap_or_else(|e| {
                        panic!("watch failed ({how}): {e:?}\n{}", server.diagnostics())
                    });
                }
                Err(_) if started.elapsed() < Duration::from_secs(60) => continue,
                Err(_) => panic!(
                    "no change reported within 60 s ({how})\n{}",
                    server.diagnostics()
                ),
            }
        };
        let names: Vec<String> = changes.iter().map(|c| c.file_name.to_string()).collect();
        assert!(
            !names.is_empty(),
            "a completed watch carries changes ({how})"
        );
        assert!(
            names.iter().all(|n| n.starts_with(&prefix)),
            "changes made through {how} reported: {names:?}"
        );
        assert!(
            changes
                .iter()
                .all(|c| matches!(c.action, smb::NotifyAction::Added)),
            "reported as additions ({how}): {:?}",
            changes.iter().map(|c| &c.action).collect::<Vec<_>>()
        );
        eprintln!(
            "watch saw {names:?} from {how} {:?} after the change; {during} MiB written and read \
             back while it was pending",
            started.elapsed()
        );
    }
    stop.store(true, Ordering::Relaxed);
    busy.await.expect("I/O loop");
}
