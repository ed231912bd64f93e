//! smbtorture (Samba 4.17's `samba-testsuite`) against the server under test: every test
//! listed in `scripts/smbtorture-ci.txt` must pass, each against a fresh server and bounded at
//! 60 s unless its line says `timeout=SECONDS`. The list is the contract; tests are added as features land.

use std::time::Duration;

use lanshare_interop::clients::{smbtorture_within, tail};
use lanshare_interop::process::repo_root;
use lanshare_interop::{ServerOptions, TestServer};

/// Active entries of the list: the first word of each line that is not blank or a comment,
/// with the time bound a `timeout=SECONDS` word after it gives (60 s when absent).
fn listed_tests() -> Vec<(String, Duration)> {
    let path = repo_root().join("scripts").join("smbtorture-ci.txt");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    text.lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim())
        .filter(|l| !l.is_empty())
        .map(|l| {
            let mut words = l.split_whitespace();
            let name = words.next().unwrap_or_default().to_string();
            let mut limit = DEFAULT_LIMIT;
            for w in words {
                match w.strip_prefix("timeout=").map(str::parse::<u64>) {
                    Some(Ok(secs)) => limit = Duration::from_secs(secs),
                    _ => panic!("scripts/smbtorture-ci.txt: `{l}`: unknown word `{w}` (only timeout=SECONDS may follow a name)"),
                }
            }
            (name, limit)
        })
        .collect()
}

const DEFAULT_LIMIT: Duration = Duration::from_secs(60);

/// smbtorture reports `success: NAME`, `failure: NAME [...]`, `skip: NAME [...]` or
/// `error: NAME [...]` for the last component of the test's name; only success with exit 0
/// counts (a skip means the server lacks something the test needs).
fn passed(test: &str, out: &lanshare_interop::process::Output) -> bool {
    let leaf = test.rsplit('.').next().unwrap_or(test);
    let stdout = &out.stdout;
    out.success()
        && stdout
            .lines()
            .any(|l| l.trim() == format!("success: {leaf}"))
        && !stdout
            .lines()
            .any(|l| l.starts_with("failure:") || l.starts_with("error:") || l.starts_with("skip:"))
}

#[test]
fn listed_smbtorture_tests_pass() {
    let tests = listed_tests();
    assert!(!tests.is_empty(), "scripts/smbtorture-ci.txt lists no test");
    let mut failures = Vec::new();
    for (test, limit) in &tests {
        let server = TestServer::start(options()).expect("start the server under test");
        let out = smbtorture_within(&server, test, *limit).expect("run smbtorture");
        if passed(test, &out) {
            eprintln!("smbtorture {test}: ok");
        } else {
            eprintln!("smbtorture {test}: FAILED");
            failures.push(format!(
                "==== {test} against {} ====\n{}\n--- server ---\n{}",
                server.target().name(),
                tail(&out.describe(), 30),
                tail(&server.diagnostics(), 30)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} listed smbtorture tests failed:\n{}",
        failures.len(),
        tests.len(),
        failures.join("\n")
    );
}

/// smbtorture's secleak (and others) make hundreds of failed logons on purpose; lanshare's
/// failed-logon throttle (on by default, tested in throttle.rs) would lock them out, as
/// Windows' account lockout would. Samba has no such throttle, so it is turned off here to
/// compare like with like.
fn options() -> ServerOptions {
    #[cfg(feature = "lanshare")]
    {
        ServerOptions::default().lanshare(|cfg| {
            cfg.logon_throttle.ip_max_failures = 0;
            cfg.logon_throttle.user_max_failures = 0;
            cfg.logon_failure_delay = std::time::Duration::ZERO;
        })
    }
    #[cfg(not(feature = "lanshare"))]
    {
        ServerOptions::default()
    }
}
