//! Failed-logon throttling (issue 6): a client guessing passwords from one address is slowed
//! (every failure is answered late) and then locked out (STATUS_ACCOUNT_LOCKED_OUT), while a
//! legitimate user logging on from another address is not affected.

use lanshare_interop::clients::{python_script, tail};
use lanshare_interop::{ServerOptions, TestServer};

#[test]
fn guessing_is_slowed_then_locked_out_while_others_log_on() {
    let server = TestServer::start_lanshare(ServerOptions::default()).expect("start lanshare");
    let args: Vec<String> = [
        "--host",
        &server.host(),
        "--port",
        &server.port().to_string(),
        "--user",
        server.user(),
        "--tries",
        "12",
        "--source",
        "127.0.0.2",
        "--then-user",
        server.user(),
        "--then-password",
        server.password(),
        "--legit-source",
        "127.0.0.1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let out = python_script("guess.py", &args).expect("run py/guess.py");
    let text = out.combined();
    assert!(
        out.success(),
        "guess.py failed:\n{}",
        tail(&out.describe(), 30)
    );
    let tries: Vec<(String, f64)> = text
        .lines()
        .filter_map(|l| l.strip_prefix("TRY "))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[1].to_string(), f[2].parse().unwrap_or(0.0))
        })
        .collect();
    assert_eq!(tries.len(), 12, "{text}");
    // The default policy: 10 failures from one address within a minute lock it out.
    for (i, (status, secs)) in tries.iter().enumerate() {
        if i < 10 {
            assert_eq!(
                status,
                "0xc000006d",
                "try {}: expected STATUS_LOGON_FAILURE\n{text}",
                i + 1
            );
            assert!(
                *secs >= 0.25,
                "try {}: a failed logon was answered in {secs} s, not slowed\n{text}",
                i + 1
            );
        } else {
            assert_eq!(
                status,
                "0xc0000234",
                "try {}: expected STATUS_ACCOUNT_LOCKED_OUT\n{text}",
                i + 1
            );
        }
    }
    assert!(
        text.contains("LEGIT OK"),
        "the legitimate user from another address was refused:\n{text}\n{}",
        server.diagnostics()
    );
}
