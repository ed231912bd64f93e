//! Micro benchmark of case-insensitive lookup in a 100,000-entry directory. Prints timings;
//! asserts only correctness, never speed. Run with
//! `cargo test -p lanshare-vfs --release --test ci_bench -- --ignored --nocapture`.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use lanshare_vfs::{CreateMode, LocalFs, LocalFsOptions, OpenOptions, OpenOutcome, Vfs, VfsPath};

const N: usize = 100_000;
const PROBES: usize = 2_000;

fn per_op(d: Duration, n: usize) -> String {
    format!("{:>9.2} µs/op", d.as_secs_f64() * 1e6 / n as f64)
}

fn time<F: FnMut(usize)>(label: &str, n: usize, mut f: F) {
    let t = Instant::now();
    for i in 0..n {
        f(i);
    }
    println!("{label:<58}{}", per_op(t.elapsed(), n));
}

#[test]
#[ignore = "benchmark: prints timings"]
fn ci_lookup_100k() {
    let base = if std::path::Path::new("/dev/shm").is_dir() {
        tempfile::tempdir_in("/dev/shm").unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    let dir = base.path().join("big");
    std::fs::create_dir(&dir).unwrap();
    let t = Instant::now();
    for i in 0..N {
        std::fs::File::create(dir.join(format!("Document-{i:06}.txt"))).unwrap();
    }
    println!("setup: {N} files in {:?}", t.elapsed());

    let ci = LocalFs::new(base.path()).unwrap();
    let cs = LocalFs::with_options(
        base.path(),
        LocalFsOptions {
            case_insensitive: false,
            ..Default::default()
        },
    )
    .unwrap();
    let path = |s: String| VfsPath::parse(&format!("big\\{s}")).unwrap();
    let stride = N / PROBES;

    time("case-sensitive: stat, exact name", PROBES, |i| {
        cs.stat(&path(format!("Document-{:06}.txt", i * stride)))
            .unwrap();
    });
    time("case-insensitive: stat, exact name", PROBES, |i| {
        ci.stat(&path(format!("Document-{:06}.txt", i * stride)))
            .unwrap();
    });
    let t = Instant::now();
    ci.stat(&path("DOCUMENT-000001.TXT".into())).unwrap();
    println!(
        "{:<58}{:>9.2} ms",
        "case-insensitive: first other-case stat (one scan)",
        t.elapsed().as_secs_f64() * 1e3
    );
    time("case-insensitive: stat, other case (cached)", PROBES, |i| {
        ci.stat(&path(format!("DOCUMENT-{:06}.TXT", i * stride)))
            .unwrap();
    });
    time(
        "case-insensitive: stat, missing name (cached miss)",
        PROBES,
        |i| {
            assert!(ci.stat(&path(format!("missing-{i}"))).is_err());
        },
    );
    time(
        "case-insensitive: create new file (miss + create)",
        PROBES,
        |i| {
            let (_, o) = ci
                .open(
                    &path(format!("New-{i}")),
                    &OpenOptions::read_write(CreateMode::Create),
                )
                .unwrap();
            assert_eq!(o, OpenOutcome::Created);
        },
    );
    time("case-sensitive: create new file", PROBES, |i| {
        cs.open(
            &path(format!("Other-{i}")),
            &OpenOptions::read_write(CreateMode::Create),
        )
        .unwrap();
    });
    // Someone else changes the directory: the next miss rescans once.
    std::fs::File::create(dir.join("External")).unwrap();
    let t = Instant::now();
    ci.stat(&path("EXTERNAL".into())).unwrap();
    println!(
        "{:<58}{:>9.2} ms",
        "case-insensitive: first lookup after an outside change",
        t.elapsed().as_secs_f64() * 1e3
    );

    let (h, _) = ci
        .open(
            &VfsPath::parse("big").unwrap(),
            &OpenOptions::directory(CreateMode::Open),
        )
        .unwrap();
    let t = Instant::now();
    let mut s = h.read_dir().unwrap();
    let mut n = 0;
    while let Some(e) = s.next_entry() {
        e.unwrap();
        n += 1;
    }
    println!(
        "{:<58}{:>9.2} ms ({n} entries)",
        "streaming listing with metadata and xattrs",
        t.elapsed().as_secs_f64() * 1e3
    );
    assert_eq!(n, N + 2 * PROBES + 1);
}
