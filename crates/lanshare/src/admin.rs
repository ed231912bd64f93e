//! The administration commands: `lanshare status`, `sessions`, `files`, `close-session`,
//! `close-file` and `reload`, which ask the running server over its control socket and print
//! the answer as tables (in the spirit of `net config server`, `net session`, `net file`) or,
//! with `--json`, as the raw JSON.
//!
//! The answers are read into this module's own view types with every field defaulted, so a
//! field the server adds or drops does not break the table of an older or newer `lanshare`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::cli::{CliError, ControlArgs};
use crate::config::{self, ControlSocket};
use crate::control::{self, ControlError, Request};
use crate::reload::ReloadReport;

/// Long enough for a reload that opens many share folders.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// Which socket to use: `--socket`, else the config's `server.control_socket` (`--config`, or
/// the default config file when it exists), else the default place for this user.
pub fn socket_for(args: &ControlArgs) -> Result<PathBuf, CliError> {
    if let Some(s) = &args.socket {
        return Ok(s.clone());
    }
    let from_config = |path: &Path| -> Result<PathBuf, CliError> {
        match config::control_socket_from(path)? {
            ControlSocket::Off => Err(CliError::Failed(format!(
                "{} sets server.control_socket = \"\": the server has no control socket",
                path.display()
            ))),
            ControlSocket::At(p) => Ok(p),
            ControlSocket::Default => Ok(control::default_socket_path().0),
        }
    };
    if let Some(c) = &args.config {
        return from_config(c);
    }
    let default_config = Path::new(config::DEFAULT_CONFIG_PATH);
    if default_config.exists() {
        return from_config(default_config);
    }
    Ok(control::default_socket_path().0)
}

fn ask(args: &ControlArgs, req: &Request) -> Result<serde_json::Value, CliError> {
    let socket = socket_for(args)?;
    control::request(&socket, req, ANSWER_TIMEOUT).map_err(|e| match e {
        ControlError::Refused(why) => CliError::Failed(why),
        other => CliError::Failed(other.to_string()),
    })
}

fn print_json(v: &serde_json::Value) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(v)
        .map_err(|e| CliError::Failed(format!("cannot print the answer: {e}")))?;
    println!("{text}");
    Ok(())
}

fn view<T: for<'de> Deserialize<'de>>(v: serde_json::Value) -> Result<T, CliError> {
    serde_json::from_value(v).map_err(|e| {
        CliError::Failed(format!(
            "the server's answer cannot be read ({e}); are `lanshare` and the server the same version? (--json prints it raw)"
        ))
    })
}

pub fn status(args: &ControlArgs) -> Result<(), CliError> {
    let v = ask(args, &Request::Status)?;
    if args.json {
        return print_json(&v);
    }
    print!("{}", format_status(&view(v)?));
    Ok(())
}

pub fn sessions(args: &ControlArgs) -> Result<(), CliError> {
    let v = ask(args, &Request::Sessions)?;
    if args.json {
        return print_json(&v);
    }
    print!("{}", format_sessions(&view::<Vec<SessionView>>(v)?));
    Ok(())
}

pub fn files(args: &ControlArgs) -> Result<(), CliError> {
    let v = ask(args, &Request::Files)?;
    if args.json {
        return print_json(&v);
    }
    print!("{}", format_files(&view::<Vec<FileView>>(v)?));
    Ok(())
}

pub fn close_session(args: &ControlArgs, id: u64) -> Result<(), CliError> {
    let v = ask(args, &Request::CloseSession { id })?;
    if args.json {
        return print_json(&v);
    }
    println!("session {id} closed");
    Ok(())
}

pub fn close_file(args: &ControlArgs, id: u64, session: Option<u64>) -> Result<(), CliError> {
    let v = ask(args, &Request::CloseFile { id, session })?;
    if args.json {
        return print_json(&v);
    }
    println!("file {id} closed");
    Ok(())
}

pub fn reload(args: &ControlArgs) -> Result<(), CliError> {
    let v = ask(args, &Request::Reload)?;
    let report: ReloadReport = view(v.clone())?;
    if args.json {
        print_json(&v)?;
    } else {
        print!("{}", report.to_text());
    }
    if report.applied {
        Ok(())
    } else {
        Err(CliError::Failed(format!("{} was not applied", report.file)))
    }
}

/// `ID` arguments: decimal, or hexadecimal with 0x (the server's logs print session ids so).
pub fn parse_id(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let r = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => t.parse(),
    };
    r.map_err(|_| {
        format!("`{s}` is not an id: give the number `lanshare sessions` or `lanshare files` shows")
    })
}

// ---------------------------------------------------------------------------------------------
// Views of the server's answers.

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LimitView {
    pub setting: String,
    pub limit: u64,
    pub current: Option<u64>,
    pub refused: u64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ShareView {
    pub name: String,
    pub path: String,
    pub comment: String,
    pub read_only: bool,
    pub guest_ok: bool,
    pub browseable: bool,
    pub encrypt: bool,
    pub users: u64,
    pub max_users: u64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct StatusView {
    pub server_name: String,
    pub version: String,
    pub pid: u32,
    pub config_file: Option<String>,
    pub control_socket: Option<String>,
    pub metrics: Option<String>,
    pub listeners: Vec<String>,
    pub uptime_secs: u64,
    pub connections: u64,
    pub sessions: u64,
    pub open_files: u64,
    pub inflight_limit: u64,
    pub inflight_now: u64,
    pub idle_timeout_secs: u64,
    pub handshake_timeout_secs: u64,
    pub frame_read_timeout_ms: Option<u64>,
    pub keepalive: Option<bool>,
    pub max_credits: u64,
    pub signing: String,
    pub encryption_policy: Option<String>,
    pub anonymous: String,
    pub guest: bool,
    pub limits: Vec<LimitView>,
    pub shares: Vec<ShareView>,
    pub idle_closed: u64,
    pub handshake_timeouts: u64,
    pub read_deadline_drops: u64,
    pub protocol_drops: u64,
    pub logons: u64,
    pub logon_failures: u64,
    pub locked_out_addresses: u64,
    pub locked_out_accounts: u64,
    pub accepted_connections: u64,
    /// Absent from servers older than discovery.
    pub discovery: Option<DiscoveryView>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DiscoveryView {
    pub wsd: bool,
    pub mdns: bool,
    pub workgroup: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SessionView {
    pub id: u64,
    pub user: String,
    pub client: String,
    pub dialect: String,
    pub signing: bool,
    pub encryption: bool,
    pub guest: bool,
    pub anonymous: bool,
    pub trees: u64,
    pub opens: u64,
    pub idle_secs: u64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct FileView {
    pub id: u64,
    pub session: u64,
    pub user: String,
    pub client: String,
    pub share: String,
    pub path: String,
    pub directory: bool,
    pub access_text: String,
    pub durable: bool,
    pub detached_secs_left: Option<u64>,
}

// ---------------------------------------------------------------------------------------------
// Formatting.

/// `4s`, `2m 05s`, `3h 02m`, `5d 04h`.
pub fn human_duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d {h:02}h")
    } else if h > 0 {
        format!("{h}h {m:02}m")
    } else if m > 0 {
        format!("{m}m {s:02}s")
    } else {
        format!("{s}s")
    }
}

fn timeout_text(secs: u64) -> String {
    if secs == 0 {
        "off".into()
    } else {
        config::format_duration(Duration::from_secs(secs))
    }
}

fn limit_text(n: u64) -> String {
    if n == 0 {
        "unlimited".into()
    } else {
        n.to_string()
    }
}

/// A person's name for each limit (the setting is printed next to it).
fn limit_label(setting: &str) -> &str {
    match setting {
        "limits.max_sessions" => "sessions",
        "limits.max_connections" => "connections",
        "limits.max_connections_per_ip" => "connections per address",
        "limits.max_open_files" => "open files",
        "limits.max_open_files_per_session" => "open files per session",
        "share.max_users" => "users per share",
        "limits.max_async_per_connection" => "pending async per connection",
        other => other,
    }
}

/// Left-aligned columns, two spaces apart, no trailing blanks.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, cell) in r.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i > 0 {
                s.push_str("  ");
            }
            s.push_str(c);
            let w = widths.get(i).copied().unwrap_or(0);
            if i + 1 < cells.len() {
                s.push_str(&" ".repeat(w.saturating_sub(c.chars().count())));
            }
        }
        s.push('\n');
        s
    };
    let mut out = line(header.to_vec());
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

pub fn format_status(st: &StatusView) -> String {
    let mut out = String::new();
    let mut kv = |k: &str, v: String| out.push_str(&format!("{k:<26}{v}\n"));
    kv("Server name", st.server_name.clone());
    kv("Version", format!("lanshare {}", st.version));
    if st.pid != 0 {
        kv("Process", st.pid.to_string());
    }
    kv(
        "Listening on",
        if st.listeners.is_empty() {
            "(nothing)".into()
        } else {
            st.listeners.join(", ")
        },
    );
    kv("Uptime", human_duration(st.uptime_secs));
    if let Some(c) = &st.config_file {
        kv("Config file", c.clone());
    }
    if let Some(c) = &st.control_socket {
        kv("Control socket", c.clone());
    }
    if let Some(m) = &st.metrics {
        kv("Metrics", m.clone());
    }
    let encryption = st.encryption_policy.clone().unwrap_or_else(|| "?".into());
    kv(
        "Security",
        format!(
            "signing {}, encryption {}, anonymous {}, guest {}",
            st.signing,
            encryption,
            st.anonymous,
            if st.guest { "on" } else { "off" }
        ),
    );
    if let Some(d) = &st.discovery {
        let on = |b: bool| if b { "on" } else { "off" };
        let mut v = format!("WS-Discovery {}, mDNS {}", on(d.wsd), on(d.mdns));
        if d.wsd {
            v.push_str(&format!(" (workgroup {})", d.workgroup));
        }
        kv("Announced", v);
    }

    out.push_str("\nLimits                          now / limit       refused\n");
    let mut limit_rows = Vec::new();
    for l in &st.limits {
        let now = l.current.map_or("-".to_string(), |c| c.to_string());
        let limit = if l.setting == "share.max_users" && l.limit == 0 {
            "per share".to_string()
        } else {
            limit_text(l.limit)
        };
        limit_rows.push((
            limit_label(&l.setting).to_string(),
            format!("{now:>6} / {limit:<11}"),
            format!("refused {}", l.refused),
            l.setting.clone(),
        ));
    }
    limit_rows.push((
        "requests in progress".into(),
        format!(
            "{:>6} / {:<11}",
            st.inflight_now,
            limit_text(st.inflight_limit)
        ),
        "back-pressure".into(),
        "limits.max_inflight".into(),
    ));
    for (label, value, refused, setting) in limit_rows {
        out.push_str(&format!("  {label:<28}{value} {refused:<14}({setting})\n"));
    }
    let mut fixed = vec![
        (
            "credits per connection",
            st.max_credits.to_string(),
            "limits.max_credits",
        ),
        (
            "idle timeout",
            timeout_text(st.idle_timeout_secs),
            "limits.idle_timeout",
        ),
        (
            "handshake timeout",
            timeout_text(st.handshake_timeout_secs),
            "limits.handshake_timeout",
        ),
    ];
    if let Some(ms) = st.frame_read_timeout_ms {
        let t = if ms == 0 {
            "off".to_string()
        } else {
            config::format_duration(Duration::from_millis(ms))
        };
        fixed.push(("frame read timeout", t, "limits.frame_read_timeout"));
    }
    if let Some(k) = st.keepalive {
        fixed.push((
            "TCP keepalive",
            if k { "on" } else { "off" }.to_string(),
            "limits.keepalive",
        ));
    }
    for (label, value, setting) in fixed {
        // Values under the "now" column, settings under the limit rows' settings.
        out.push_str(&format!("  {label:<28}{value:>6}{:29}({setting})\n", ""));
    }

    out.push_str(&format!("\nShares ({})\n", st.shares.len()));
    let rows: Vec<Vec<String>> = st
        .shares
        .iter()
        .map(|s| {
            let mut flags = vec![if s.read_only {
                "read-only"
            } else {
                "read-write"
            }];
            if s.guest_ok {
                flags.push("guest ok");
            }
            if !s.browseable {
                flags.push("hidden");
            }
            if s.encrypt {
                flags.push("encrypted");
            }
            vec![
                format!("  {}", s.name),
                format!("{} / {}", s.users, limit_text(s.max_users)),
                flags.join(", "),
                s.path.clone(),
            ]
        })
        .collect();
    if !rows.is_empty() {
        out.push_str(&table(&["  Name", "Users", "Access", "Path"], &rows));
    }

    out.push_str("\nSince start\n");
    for (k, v) in [
        ("connections accepted", st.accepted_connections.to_string()),
        ("logons", st.logons.to_string()),
        ("logon failures", st.logon_failures.to_string()),
        ("idle-closed", st.idle_closed.to_string()),
        ("handshake timeouts", st.handshake_timeouts.to_string()),
        ("read-deadline drops", st.read_deadline_drops.to_string()),
        ("protocol drops", st.protocol_drops.to_string()),
        (
            "locked out now",
            format!(
                "{} address(es), {} account(s)",
                st.locked_out_addresses, st.locked_out_accounts
            ),
        ),
    ] {
        out.push_str(&format!("  {k:<28}{v}\n"));
    }
    out
}

/// `SMB3_1_1` (the engine's spelling) as people write it, `3.1.1`; anything else unchanged.
pub fn dialect_text(d: &str) -> String {
    match d.strip_prefix("SMB") {
        Some(rest) if !rest.is_empty() && rest.chars().all(|c| c.is_ascii_digit() || c == '_') => {
            rest.replace('_', ".")
        }
        _ => d.to_string(),
    }
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_string()
}

pub fn format_sessions(list: &[SessionView]) -> String {
    if list.is_empty() {
        return "no sessions\n".into();
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|s| {
            let user = if s.anonymous {
                "(anonymous)".to_string()
            } else if s.guest {
                format!("{} (guest)", s.user)
            } else {
                s.user.clone()
            };
            vec![
                s.id.to_string(),
                user,
                s.client.clone(),
                dialect_text(&s.dialect),
                yes_no(s.signing),
                yes_no(s.encryption),
                s.trees.to_string(),
                s.opens.to_string(),
                human_duration(s.idle_secs),
            ]
        })
        .collect();
    let mut out = table(
        &[
            "ID",
            "User",
            "Client",
            "Dialect",
            "Signed",
            "Encrypted",
            "Shares",
            "Opens",
            "Idle",
        ],
        &rows,
    );
    out.push_str(&format!(
        "{} session(s); `lanshare close-session ID` ends one\n",
        list.len()
    ));
    out
}

pub fn format_files(list: &[FileView]) -> String {
    if list.is_empty() {
        return "no open files\n".into();
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|f| {
            let mut path = if f.directory {
                format!("{}\\ (folder)", f.path.trim_end_matches('\\'))
            } else {
                f.path.clone()
            };
            // Durable opens outlive their connection; a detached one waits for its client.
            match f.detached_secs_left {
                Some(left) => path.push_str(&format!(
                    " (durable, disconnected: kept {} more)",
                    human_duration(left)
                )),
                None if f.durable => path.push_str(" (durable)"),
                None => {}
            }
            vec![
                f.id.to_string(),
                f.session.to_string(),
                f.user.clone(),
                f.share.clone(),
                f.access_text.clone(),
                path,
            ]
        })
        .collect();
    let mut out = table(&["ID", "Session", "User", "Share", "Access", "Path"], &rows);
    out.push_str(&format!(
        "{} open file(s); `lanshare close-file ID [--session S]` closes one\n",
        list.len()
    ));
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn ids_in_decimal_and_hex() {
        assert_eq!(parse_id("1234").unwrap(), 1234);
        assert_eq!(parse_id("0x4d2").unwrap(), 1234);
        assert_eq!(parse_id(" 0X4D2 ").unwrap(), 1234);
        assert!(parse_id("abc").unwrap_err().contains("lanshare sessions"));
        assert!(parse_id("-1").is_err());
    }

    #[test]
    fn dialects_for_people() {
        assert_eq!(dialect_text("SMB3_1_1"), "3.1.1");
        assert_eq!(dialect_text("SMB2_1"), "2.1");
        assert_eq!(dialect_text("3.0.2"), "3.0.2");
        assert_eq!(dialect_text("0x0400"), "0x0400");
        assert_eq!(dialect_text("SMB"), "SMB");
    }

    #[test]
    fn durations_for_people() {
        assert_eq!(human_duration(0), "0s");
        assert_eq!(human_duration(59), "59s");
        assert_eq!(human_duration(125), "2m 05s");
        assert_eq!(human_duration(3 * 3600 + 120), "3h 02m");
        assert_eq!(human_duration(5 * 86_400 + 4 * 3600), "5d 04h");
    }

    #[test]
    fn tables_align() {
        let t = table(
            &["ID", "User"],
            &[
                vec!["1".into(), "alice".into()],
                vec!["12345".into(), "b".into()],
            ],
        );
        assert_eq!(t, "ID     User\n1      alice\n12345  b\n");
    }

    /// The engine's real status, serialised as the server sends it, must fill the view: a field
    /// renamed in the engine shows up here rather than as an empty column.
    #[test]
    fn the_engines_status_fills_the_view() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = smb_engine::EngineConfig::new("BOX").with_share({
            let mut s = smb_engine::ShareConfig::new("docs", dir.path());
            s.max_users = 4;
            s
        });
        cfg.limits.max_sessions = 3;
        cfg.limits.idle_timeout = Duration::from_secs(120);
        let server =
            smb_engine::Server::new(cfg, Arc::new(lanshare_auth::MemoryUserDb::new())).unwrap();
        let json = serde_json::to_value(server.status()).unwrap();
        let st: StatusView = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(st.server_name, "BOX");
        assert!(!st.version.is_empty());
        assert_eq!(st.idle_timeout_secs, 120);
        assert_eq!(st.max_credits, 8192);
        let sessions = st
            .limits
            .iter()
            .find(|l| l.setting == "limits.max_sessions")
            .unwrap();
        assert_eq!(
            (sessions.limit, sessions.current, sessions.refused),
            (3, Some(0), 0)
        );
        assert_eq!(st.shares[0].name, "docs");
        assert_eq!(st.shares[0].max_users, 4);
        let text = format_status(&st);
        assert!(
            text.lines().any(|l| l.starts_with("  sessions ")
                && l.contains("0 / 3 ")
                && l.contains("refused 0")
                && l.ends_with("(limits.max_sessions)")),
            "{text}"
        );
        assert!(text.contains("idle timeout"), "{text}");
        assert!(text.contains("2m "), "{text}");
        assert!(text.contains("0 / 4"), "{text}");
        for field in [
            "sessions",
            "connections",
            "open_files",
            "idle_closed",
            "handshake_timeouts",
            "read_deadline_drops",
            "protocol_drops",
            "logons",
            "logon_failures",
        ] {
            assert!(json.get(field).is_some(), "engine status lacks {field}");
        }
        assert_eq!(server.sessions().len(), 0);
        assert_eq!(format_sessions(&[]), "no sessions\n");
        assert_eq!(format_files(&[]), "no open files\n");
    }

    #[test]
    fn session_and_file_tables() {
        let s = format_sessions(&[SessionView {
            id: 77,
            user: "alice".into(),
            client: "10.0.0.5:50000".into(),
            dialect: "3.1.1".into(),
            signing: true,
            opens: 2,
            idle_secs: 65,
            ..Default::default()
        }]);
        let mut lines = s.lines();
        let header = lines.next().unwrap();
        assert!(header.starts_with("ID  User   Client"), "{s}");
        let row = lines.next().unwrap();
        assert!(row.starts_with("77  alice  10.0.0.5:50000  3.1.1"), "{s}");
        assert!(row.contains("yes") && row.ends_with("1m 05s"), "{s}");
        let f = format_files(&[FileView {
            id: 5,
            session: 77,
            user: "alice".into(),
            share: "docs".into(),
            path: "a\\b.txt".into(),
            access_text: "RW".into(),
            ..Default::default()
        }]);
        assert!(
            f.lines().nth(1).unwrap().ends_with("RW      a\\b.txt"),
            "{f}"
        );
        let f = format_files(&[FileView {
            id: 6,
            path: "c.doc".into(),
            access_text: "RW".into(),
            durable: true,
            detached_secs_left: Some(42),
            ..Default::default()
        }]);
        assert!(
            f.contains("c.doc (durable, disconnected: kept 42s more)"),
            "{f}"
        );
    }
}
