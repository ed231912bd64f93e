//! What a reload (SIGHUP or `lanshare reload`) changes: the settings applied at once, and the
//! ones that differ from the running server's but wait for a restart.
//!
//! Applied live (the engine's `Server::reload`): the shares and the counting limits
//! (`max_sessions`, `max_connections[_per_ip]`, `max_open_files[_per_session]`,
//! `idle_timeout`). Everything else is fixed when the server starts, `[discovery]` included:
//! its announcements carry the server name, which cannot change either.

use std::fmt::Display;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{Config, ControlSocket, Share, format_duration};

/// The answer to `lanshare reload`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadReport {
    /// The file that was read.
    pub file: String,
    /// The new settings are in force (false: the file was refused and nothing changed).
    pub applied: bool,
    /// Settings now in force that differ from before, e.g. `limits.max_sessions: 0 -> 3`.
    #[serde(default)]
    pub changed: Vec<String>,
    /// Settings in the file that differ from the running server's and need a restart.
    #[serde(default)]
    pub restart_needed: Vec<String>,
    /// Why the file was refused, one problem per entry.
    #[serde(default)]
    pub errors: Vec<String>,
    #[serde(default)]
    pub warnings: Vec<String>,
}

fn count(n: u32) -> String {
    if n == 0 {
        "unlimited".into()
    } else {
        n.to_string()
    }
}

fn dur(d: Duration) -> String {
    if d.is_zero() {
        "off".into()
    } else {
        format_duration(d)
    }
}

fn diff<T: PartialEq + Display>(out: &mut Vec<String>, key: &str, old: T, new: T) {
    if old != new {
        out.push(format!("{key}: {old} -> {new}"));
    }
}

/// Live settings that differ between the configuration in force and the new one.
pub fn live_changes(old: &Config, new: &Config) -> Vec<String> {
    let mut out = Vec::new();
    let (a, b) = (&old.limits, &new.limits);
    for (key, x, y) in [
        ("limits.max_sessions", a.max_sessions, b.max_sessions),
        (
            "limits.max_connections",
            a.max_connections,
            b.max_connections,
        ),
        (
            "limits.max_connections_per_ip",
            a.max_connections_per_ip,
            b.max_connections_per_ip,
        ),
        ("limits.max_open_files", a.max_open_files, b.max_open_files),
        (
            "limits.max_open_files_per_session",
            a.max_open_files_per_session,
            b.max_open_files_per_session,
        ),
    ] {
        diff(&mut out, key, count(x), count(y));
    }
    if a.idle_timeout != b.idle_timeout {
        out.push(format!(
            "limits.idle_timeout: {} -> {} (for connections made from now on)",
            dur(a.idle_timeout),
            dur(b.idle_timeout)
        ));
    }
    for s in &new.shares {
        match old
            .shares
            .iter()
            .find(|o| o.name.eq_ignore_ascii_case(&s.name))
        {
            None => out.push(format!("share `{}` added ({})", s.name, s.path.display())),
            Some(o) => {
                let fields = share_changes(o, s);
                if !fields.is_empty() {
                    out.push(format!("share `{}`: {}", s.name, fields.join(", ")));
                }
            }
        }
    }
    for o in &old.shares {
        if !new
            .shares
            .iter()
            .any(|s| s.name.eq_ignore_ascii_case(&o.name))
        {
            out.push(format!(
                "share `{}` removed (connected clients keep it until they disconnect)",
                o.name
            ));
        }
    }
    out
}

fn share_changes(o: &Share, s: &Share) -> Vec<String> {
    let mut f = Vec::new();
    if o.name != s.name {
        f.push(format!("name {} -> {}", o.name, s.name));
    }
    if o.path != s.path {
        f.push(format!("path {} -> {}", o.path.display(), s.path.display()));
    }
    let mut field = |key: &str, a: String, b: String| {
        if a != b {
            f.push(format!("{key} {a} -> {b}"));
        }
    };
    field(
        "comment",
        format!("{:?}", o.comment),
        format!("{:?}", s.comment),
    );
    field(
        "read_only",
        o.read_only.to_string(),
        s.read_only.to_string(),
    );
    field("guest_ok", o.guest_ok.to_string(), s.guest_ok.to_string());
    field(
        "browseable",
        o.browseable.to_string(),
        s.browseable.to_string(),
    );
    field("max_users", count(o.max_users), count(s.max_users));
    field("encrypt", o.encrypt.to_string(), s.encrypt.to_string());
    f
}

fn socket_text(c: &ControlSocket) -> String {
    match c {
        ControlSocket::Default => "(default)".into(),
        ControlSocket::Off => "(off)".into(),
        ControlSocket::At(p) => p.display().to_string(),
    }
}

/// Settings that differ between the server as started and the new file and that only a
/// restart applies.
pub fn restart_changes(started: &Config, new: &Config) -> Vec<String> {
    let mut out = Vec::new();
    let (a, b) = (started, new);
    diff(&mut out, "server.name", &a.server.name, &b.server.name);
    if a.server.listen != b.server.listen {
        let list = |v: &[std::net::SocketAddr]| {
            v.iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        out.push(format!(
            "server.listen: {} -> {}",
            list(&a.server.listen),
            list(&b.server.listen)
        ));
    }
    if a.server.users_file != b.server.users_file {
        out.push(format!(
            "server.users_file: {} -> {}",
            a.server.users_file.display(),
            b.server.users_file.display()
        ));
    }
    diff(&mut out, "server.log", &a.server.log, &b.server.log);
    diff(
        &mut out,
        "server.control_socket",
        socket_text(&a.server.control_socket),
        socket_text(&b.server.control_socket),
    );
    let (x, y) = (&a.security, &b.security);
    diff(&mut out, "security.signing", x.signing, y.signing);
    diff(&mut out, "security.encryption", x.encryption, y.encryption);
    diff(&mut out, "security.anonymous", x.anonymous, y.anonymous);
    diff(&mut out, "security.guest", x.guest, y.guest);
    diff(
        &mut out,
        "security.min_protocol",
        x.min_protocol,
        y.min_protocol,
    );
    diff(
        &mut out,
        "security.max_protocol",
        x.max_protocol,
        y.max_protocol,
    );
    let (x, y) = (&a.limits, &b.limits);
    diff(&mut out, "limits.max_credits", x.max_credits, y.max_credits);
    diff(
        &mut out,
        "limits.max_async_per_connection",
        count(x.max_async_per_connection),
        count(y.max_async_per_connection),
    );
    let inflight = |n: u32| {
        if n == 0 {
            "auto".to_string()
        } else {
            n.to_string()
        }
    };
    diff(
        &mut out,
        "limits.max_inflight",
        inflight(x.max_inflight),
        inflight(y.max_inflight),
    );
    diff(&mut out, "limits.keepalive", x.keepalive, y.keepalive);
    diff(
        &mut out,
        "limits.handshake_timeout",
        dur(x.handshake_timeout),
        dur(y.handshake_timeout),
    );
    diff(
        &mut out,
        "limits.frame_read_timeout",
        dur(x.frame_read_timeout),
        dur(y.frame_read_timeout),
    );
    diff(
        &mut out,
        "limits.oplock_break_timeout",
        dur(x.oplock_break_timeout),
        dur(y.oplock_break_timeout),
    );
    let m = |v: Option<std::net::SocketAddr>| v.map_or("off".to_string(), |a| a.to_string());
    diff(
        &mut out,
        "metrics.listen",
        m(a.metrics.listen),
        m(b.metrics.listen),
    );
    let auto = |v: Option<bool>| v.map_or("automatic".to_string(), |b| b.to_string());
    let (x, y) = (&a.discovery, &b.discovery);
    diff(&mut out, "discovery.wsd", auto(x.wsd), auto(y.wsd));
    diff(&mut out, "discovery.mdns", auto(x.mdns), auto(y.mdns));
    diff(&mut out, "discovery.workgroup", &x.workgroup, &y.workgroup);
    out
}

impl ReloadReport {
    /// Lines for a person: what changed, what waits for a restart, or why nothing changed.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        if !self.applied {
            s.push_str(&format!(
                "reload refused: {} problem(s) in {}; the running configuration stays\n",
                self.errors.len(),
                self.file
            ));
            for e in &self.errors {
                s.push_str(&format!("  {e}\n"));
            }
            return s;
        }
        if self.changed.is_empty() {
            s.push_str(&format!("reloaded {}: nothing changed\n", self.file));
        } else {
            s.push_str(&format!("reloaded {}; now in force:\n", self.file));
            for c in &self.changed {
                s.push_str(&format!("  {c}\n"));
            }
        }
        if !self.restart_needed.is_empty() {
            s.push_str("these take effect after a restart:\n");
            for c in &self.restart_needed {
                s.push_str(&format!("  {c}\n"));
            }
        }
        for w in &self.warnings {
            s.push_str(&format!("warning: {w}\n"));
        }
        s
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::{Encryption, Signing};

    fn share(name: &str) -> Share {
        Share {
            name: name.into(),
            path: format!("/srv/{name}").into(),
            comment: String::new(),
            read_only: false,
            guest_ok: false,
            browseable: true,
            max_users: 0,
            encrypt: false,
        }
    }

    #[test]
    fn live_and_restart_changes_are_told_apart() {
        let mut old = Config::defaults("BOX");
        old.shares = vec![share("a"), share("b")];
        let mut new = old.clone();
        assert!(live_changes(&old, &new).is_empty());
        assert!(restart_changes(&old, &new).is_empty());

        new.limits.max_sessions = 3;
        new.limits.idle_timeout = Duration::from_secs(2);
        new.shares[0].max_users = 2;
        new.shares[0].encrypt = true;
        new.shares.remove(1);
        new.shares.push(share("c"));
        new.security.signing = Signing::Enabled;
        new.security.encryption = Encryption::Required;
        new.limits.frame_read_timeout = Duration::from_secs(2);
        let live = live_changes(&old, &new);
        assert_eq!(
            live,
            [
                "limits.max_sessions: unlimited -> 3",
                "limits.idle_timeout: 15m -> 2s (for connections made from now on)",
                "share `a`: max_users unlimited -> 2, encrypt false -> true",
                "share `c` added (/srv/c)",
                "share `b` removed (connected clients keep it until they disconnect)",
            ]
        );
        let restart = restart_changes(&old, &new);
        assert_eq!(
            restart,
            [
                "security.signing: required -> enabled",
                "security.encryption: enabled -> required",
                "limits.frame_read_timeout: 30s -> 2s",
            ]
        );
    }

    #[test]
    fn report_text() {
        let r = ReloadReport {
            file: "/etc/lanshare/lanshare.toml".into(),
            applied: true,
            changed: vec!["limits.max_sessions: unlimited -> 3".into()],
            restart_needed: vec!["security.signing: required -> enabled".into()],
            ..Default::default()
        };
        let t = r.to_text();
        assert!(t.contains("now in force:\n  limits.max_sessions"), "{t}");
        assert!(t.contains("after a restart:\n  security.signing"), "{t}");
        let refused = ReloadReport {
            file: "f".into(),
            errors: vec!["f:3:1: unknown key".into()],
            ..Default::default()
        };
        assert!(
            refused
                .to_text()
                .starts_with("reload refused: 1 problem(s) in f")
        );
    }
}
