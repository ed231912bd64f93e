//! The built binary, driven as a person or a script would: check-config on good and bad files,
//! and the users-file round trip (serve has its own file, tests/serve.rs).
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn lanshare() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lanshare"));
    // The tests read the process's own messages, not a developer's log settings.
    c.env_remove("RUST_LOG");
    c
}

fn run(args: &[&str]) -> Output {
    lanshare().args(args).stdin(Stdio::null()).output().unwrap()
}

fn run_with_stdin(args: &[&str], stdin: &str) -> Output {
    let mut child = lanshare()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A command that fails before reading its input closes the pipe: that is its answer,
    // not a test failure.
    match child.stdin.take().unwrap().write_all(stdin.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        other => other.unwrap(),
    }
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn write_config(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("lanshare.toml");
    std::fs::write(&path, body).unwrap();
    path
}

#[test]
fn check_config_accepts_a_good_file_and_summarises_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("docs")).unwrap();
    let cfg = write_config(
        dir.path(),
        "[server]\nname = \"testsrv\"\nlisten = [\"127.0.0.1:4445\"]\n\
         [security]\nsigning = \"enabled\"\n\
         [[share]]\nname = \"docs\"\npath = \"docs\"\ncomment = \"Team\"\nread_only = true\n",
    );
    let out = run(&["check-config", "--config", cfg.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("OK"), "{stdout}");
    assert!(stdout.contains("TESTSRV"), "{stdout}");
    assert!(stdout.contains("127.0.0.1:4445"), "{stdout}");
    assert!(stdout.contains("signing enabled"), "{stdout}");
    assert!(
        stdout.contains("docs") && stdout.contains("read-only"),
        "{stdout}"
    );
}

#[test]
fn check_config_errors_name_file_line_and_fix_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        "[server]\nname = \"A\"\n\n[security]\nsgning = \"required\"\n\n[[share]]\nname = \"x\"\npath = \".\"\n",
    );
    let label = cfg.to_str().unwrap();
    let out = run(&["check-config", "--config", label]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{label}:5:1: unknown key `sgning` in [security]; did you mean `signing`?"
        )),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn check_config_reports_every_semantic_problem() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        "[security]\nmin_protocol = \"SMB3_11\"\nmax_protocol = \"SMB2_02\"\n\
         [[share]]\nname = \"a\"\npath = \"nope\"\n\
         [[share]]\nname = \"A\"\npath = \".\"\n",
    );
    let label = cfg.to_str().unwrap();
    let out = run(&["check-config", "-c", label]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("{label}:2:16: min_protocol SMB3_11 is newer")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{label}:6:8: share `a`: path")),
        "{stderr}"
    );
    assert!(stderr.contains("mkdir -p"), "{stderr}");
    assert!(
        stderr.contains(&format!("{label}:8:8: duplicate share name `A`")),
        "{stderr}"
    );
    assert!(stderr.contains("3 problems"), "{stderr}");
}

#[test]
fn check_config_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.toml");
    let out = run(&["check-config", "--config", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("cannot open the config file"), "{stderr}");
    assert!(stderr.contains("--config"), "{stderr}");
}

#[test]
fn check_config_help_has_the_reference() {
    let out = run(&["check-config", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    for key in [
        "[server]",
        "signing",
        "handshake_timeout",
        "[[share]]",
        "browseable",
    ] {
        assert!(stdout.contains(key), "{key} missing from\n{stdout}");
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn user_add_list_passwd_del_round_trip() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    // A folder that does not exist yet: `user add` creates it.
    let users = dir.path().join("etc").join("users");
    let f = users.to_str().unwrap();

    let out = run_with_stdin(
        &[
            "user",
            "add",
            "alice",
            "--password-stdin",
            "--users-file",
            f,
        ],
        "s3cret pw\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let mode = std::fs::metadata(&users).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let content = std::fs::read_to_string(&users).unwrap();
    let hash = hex(&lanshare_auth::nt_hash("s3cret pw"));
    assert!(
        content
            .to_ascii_lowercase()
            .contains(&format!("alice:{hash}")),
        "{content}"
    );

    let out = run_with_stdin(
        &["user", "add", "bob", "--password-stdin", "--users-file", f],
        "pw2\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    let out = run_with_stdin(
        &[
            "user",
            "add",
            "ALICE",
            "--password-stdin",
            "--users-file",
            f,
        ],
        "x\n",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("already exists"),
        "{}",
        text(&out.stderr)
    );

    let out = run(&["user", "list", "--users-file", f]);
    assert_eq!(out.status.code(), Some(0));
    let names: Vec<String> = text(&out.stdout).lines().map(str::to_string).collect();
    assert_eq!(names, ["alice", "bob"]);

    let out = run_with_stdin(
        &[
            "user",
            "passwd",
            "alice",
            "--password-stdin",
            "--users-file",
            f,
        ],
        "new\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let content = std::fs::read_to_string(&users)
        .unwrap()
        .to_ascii_lowercase();
    assert!(content.contains(&format!("alice:{}", hex(&lanshare_auth::nt_hash("new")))));
    assert!(!content.contains(&hash));

    let out = run(&["user", "del", "alice", "--users-file", f]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = run(&["user", "list", "--users-file", f]);
    assert_eq!(text(&out.stdout).trim(), "bob");
    let mode = std::fs::metadata(&users).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    let out = run(&["user", "del", "carol", "--users-file", f]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn user_commands_refuse_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users");
    let f = users.to_str().unwrap();
    let out = run_with_stdin(
        &[
            "user",
            "add",
            "alice",
            "--password-stdin",
            "--users-file",
            f,
        ],
        "\n",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("empty"), "{}", text(&out.stderr));
    let out = run_with_stdin(
        &["user", "add", "a:b", "--password-stdin", "--users-file", f],
        "pw\n",
    );
    assert_ne!(out.status.code(), Some(0));
    assert!(!users.exists());
    let out = run(&["user", "list", "--users-file", f]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("lanshare user add"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn user_file_comes_from_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "[server]\nusers_file = \"my-users\"\n");
    let out = run_with_stdin(
        &[
            "user",
            "add",
            "carol",
            "--password-stdin",
            "--config",
            cfg.to_str().unwrap(),
        ],
        "pw\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(dir.path().join("my-users").exists());
}

#[test]
fn check_config_reports_the_users_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        "[server]\nusers_file = \"users\"\n[[share]]\nname = \"d\"\npath = \".\"\n",
    );
    let c = cfg.to_str().unwrap();
    let out = run(&["check-config", "-c", c]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text(&out.stdout).contains("users:         missing"),
        "{}",
        text(&out.stdout)
    );

    let users = dir.path().join("users");
    let out = run_with_stdin(
        &["user", "add", "alice", "--password-stdin", "--config", c],
        "pw\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = run(&["check-config", "-c", c]);
    assert!(
        text(&out.stdout).contains("users:         1 user(s)"),
        "{}",
        text(&out.stdout)
    );

    std::fs::write(&users, "alice:nothex\n").unwrap();
    let out = run(&["check-config", "-c", c]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains(":1:"), "{}", text(&out.stderr));
}
