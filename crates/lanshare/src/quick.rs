//! `lanshare serve [PATH…]` without a config file: share the folders under their own names
//! with a generated user and password, and tell the person how to connect.

use std::fmt::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use rand::Rng;

use crate::config::{Config, Share};
use crate::names;

/// The generated account's name.
pub const QUICK_USER: &str = "lanshare";

/// The folder shared when no PATH is given (created if missing).
pub const DEFAULT_SHARE_DIR: &str = "share";

/// No 0/O/o, 1/l/I/i: the password is read off a screen and typed on another machine.
pub const PASSWORD_ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";

pub const PASSWORD_LEN: usize = 16;

/// A password of [`PASSWORD_LEN`] characters from [`PASSWORD_ALPHABET`], from the OS-seeded
/// CSPRNG (about 92 bits).
pub fn generate_password() -> String {
    let mut rng = rand::thread_rng();
    (0..PASSWORD_LEN)
        .map(|_| {
            let i = rng.gen_range(0..PASSWORD_ALPHABET.len());
            char::from(PASSWORD_ALPHABET.get(i).copied().unwrap_or(b'x'))
        })
        .collect()
}

/// What `serve` without `--config` will run.
#[derive(Clone, Debug)]
pub struct QuickPlan {
    pub config: Config,
    pub user: String,
    pub password: String,
    /// The default folder, when this run had to create it.
    pub created: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum QuickError {
    #[error("{path}: no such folder; create it (`mkdir -p {path}`) or give another PATH")]
    Missing { path: String },
    #[error("{path} is not a folder; give the folder to share")]
    NotADirectory { path: String },
    #[error("cannot use {path}: {why}")]
    Io { path: String, why: String },
    #[error("--name {name:?} {why}")]
    BadServerName { name: String, why: String },
}

/// Builds the configuration for `serve PATH…`. `paths` empty means `./share` (created when
/// missing). Share names come from the folder names, sanitised and made unique.
pub fn plan(
    paths: &[PathBuf],
    server_name: Option<&str>,
    listen: &[SocketAddr],
) -> Result<QuickPlan, QuickError> {
    let name = match server_name {
        Some(n) => {
            let upper = n.to_ascii_uppercase();
            names::check_server_name(&upper).map_err(|why| QuickError::BadServerName {
                name: n.to_string(),
                why,
            })?;
            upper
        }
        None => names::server_name_from_hostname(&names::hostname().unwrap_or_default()),
    };
    let mut config = Config::defaults(name);
    if !listen.is_empty() {
        config.server.listen = listen.to_vec();
    }

    let mut created = None;
    let default_dir = [PathBuf::from(DEFAULT_SHARE_DIR)];
    let paths: &[PathBuf] = if paths.is_empty() {
        let dir = &default_dir[0];
        if !dir.exists() {
            std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
            created = Some(dir.clone());
        }
        &default_dir
    } else {
        paths
    };

    let mut taken: Vec<String> = Vec::new();
    for p in paths {
        let abs = checked_dir(p)?;
        let folder = abs
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let share_name = names::unique_share_name(&names::sanitize_share_name(&folder), &taken);
        taken.push(share_name.clone());
        config.shares.push(Share {
            name: share_name,
            path: abs,
            comment: String::new(),
            read_only: false,
            guest_ok: false,
            browseable: true,
            max_users: 0,
            encrypt: false,
        });
    }
    Ok(QuickPlan {
        config,
        user: QUICK_USER.to_string(),
        password: generate_password(),
        created,
    })
}

fn io_err(p: &Path, e: std::io::Error) -> QuickError {
    QuickError::Io {
        path: p.display().to_string(),
        why: e.to_string(),
    }
}

fn checked_dir(p: &Path) -> Result<PathBuf, QuickError> {
    match std::fs::metadata(p) {
        Ok(m) if m.is_dir() => std::fs::canonicalize(p).map_err(|e| io_err(p, e)),
        Ok(_) => Err(QuickError::NotADirectory {
            path: p.display().to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(QuickError::Missing {
            path: p.display().to_string(),
        }),
        Err(e) => Err(io_err(p, e)),
    }
}

/// The host name clients should use for a listener: its address when it is a specific one,
/// else this machine's host name (falling back to the loopback address).
pub fn connect_host(addr: &SocketAddr, hostname: Option<&str>) -> String {
    let ip = addr.ip();
    if ip.is_unspecified() {
        return match hostname {
            Some(h) if !h.is_empty() => h.to_string(),
            _ => "127.0.0.1".to_string(),
        };
    }
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// The addresses clients may use instead of the host name, for a listener bound to every
/// interface: non-loopback, non-link-local addresses of the listener's family, at most four
/// (a host with many bridges would otherwise bury the useful lines).
pub fn machine_addresses(ipv6: bool) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .filter(|i| !i.is_loopback() && !i.is_link_local() && i.ip().is_ipv6() == ipv6)
        .map(|i| i.ip())
        .collect();
    out.sort();
    out.dedup();
    out.truncate(4);
    out
}

/// The "how to connect" text printed by `serve` without a config file.
pub fn connect_instructions(
    host: &str,
    port: u16,
    shares: &[Share],
    user: &str,
    password: &str,
) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "user: {user}  password: {password}  (generated for this run; nothing is stored)"
    );
    let finder_host = if port == 445 {
        host.to_string()
    } else {
        format!("{host}:{port}")
    };
    for share in shares {
        let n = &share.name;
        // Names with spaces need quoting in a shell and in `net use`.
        let unc_unix = quote_if_needed(&format!("//{host}/{n}"));
        let unc_win = quote_if_needed(&format!("\\\\{host}\\{n}"));
        let _ = writeln!(s, "share {n}: {}", share.path.display());
        let _ = writeln!(
            s,
            "  smbclient:  smbclient {unc_unix} -p {port} -U {user}%{password}"
        );
        let _ = writeln!(
            s,
            "  Linux:      mount -t cifs {unc_unix} /mnt -o user={user},port={port}"
        );
        let _ = writeln!(
            s,
            "  Windows:    net use Z: {unc_win} /user:{user} {password}"
        );
        let _ = writeln!(
            s,
            "  macOS:      smb://{user}@{finder_host}/{}  (Finder: Go > Connect to Server)",
            n.replace(' ', "%20")
        );
    }
    if port != 445 {
        let _ = writeln!(
            s,
            "note: Windows always connects to port 445; use --listen 0.0.0.0:445 for Windows clients"
        );
    }
    s
}

fn quote_if_needed(s: &str) -> String {
    if s.contains(' ') {
        format!("\"{s}\"")
    } else {
        s.to_string()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn passwords_use_the_alphabet_and_differ() {
        let a = generate_password();
        let b = generate_password();
        assert_eq!(a.len(), PASSWORD_LEN);
        assert!(a.bytes().all(|c| PASSWORD_ALPHABET.contains(&c)));
        assert_ne!(a, b);
        for c in b"0O1lIio" {
            assert!(!PASSWORD_ALPHABET.contains(c));
        }
    }

    #[test]
    fn plan_names_shares_after_folders() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("Photos");
        let b = dir.path().join("x").join("photos");
        let c = dir.path().join("we:ird");
        for p in [&a, &b, &c] {
            std::fs::create_dir_all(p).unwrap();
        }
        let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let p = plan(&[a, b, c], Some("box"), &[listen]).unwrap();
        let names: Vec<&str> = p.config.shares.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["Photos", "photos-2", "we_ird"]);
        assert_eq!(p.config.server.name, "BOX");
        assert_eq!(p.config.server.listen, vec![listen]);
        assert_eq!(p.user, "lanshare");
        assert!(p.created.is_none());
        assert!(p.config.shares.iter().all(|s| s.path.is_absolute()));
    }

    #[test]
    fn plan_rejects_missing_and_files() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("file");
        std::fs::write(&f, b"").unwrap();
        assert!(matches!(
            plan(&[dir.path().join("nope")], None, &[]),
            Err(QuickError::Missing { .. })
        ));
        assert!(matches!(
            plan(&[f], None, &[]),
            Err(QuickError::NotADirectory { .. })
        ));
        assert!(matches!(
            plan(&[dir.path().to_path_buf()], Some("bad.name"), &[]),
            Err(QuickError::BadServerName { .. })
        ));
    }

    #[test]
    fn instructions_mention_every_client() {
        let share = Share {
            name: "My Docs".into(),
            path: "/srv/d".into(),
            comment: String::new(),
            read_only: false,
            guest_ok: false,
            browseable: true,
            max_users: 0,
            encrypt: false,
        };
        let t = connect_instructions("box", 4445, std::slice::from_ref(&share), "lanshare", "PW");
        assert!(t.contains("smbclient \"//box/My Docs\" -p 4445 -U lanshare%PW"));
        assert!(t.contains("net use Z: \"\\\\box\\My Docs\" /user:lanshare PW"));
        assert!(t.contains("smb://lanshare@box:4445/My%20Docs"));
        assert!(t.contains("mount -t cifs \"//box/My Docs\" /mnt -o user=lanshare,port=4445"));
        assert!(t.contains("Windows always connects to port 445"));
        let t = connect_instructions("box", 445, &[share], "lanshare", "PW");
        assert!(t.contains("smb://lanshare@box/My%20Docs"));
        assert!(!t.contains("Windows always"));
    }

    #[test]
    fn host_choice() {
        let any: SocketAddr = "0.0.0.0:445".parse().unwrap();
        let one: SocketAddr = "192.168.1.5:445".parse().unwrap();
        let v6: SocketAddr = "[fe80::1]:445".parse().unwrap();
        assert_eq!(connect_host(&any, Some("box")), "box");
        assert_eq!(connect_host(&any, None), "127.0.0.1");
        assert_eq!(connect_host(&one, Some("box")), "192.168.1.5");
        assert_eq!(connect_host(&v6, Some("box")), "[fe80::1]");
    }
}
