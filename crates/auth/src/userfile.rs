//! The user file that `lanshare user add|del|list` edits and the server reads.
//!
//! Format, one entry per line:
//! ```text
//! # comment
//! name:0123456789ABCDEF0123456789ABCDEF
//! name:0123456789ABCDEF0123456789ABCDEF:disabled
//! ```
//! The second field is the 32-hex-digit NT hash ([`crate::nt_hash`]). The optional third field
//! is a comma-separated flag list; the only flag is `disabled`. Blank lines and `#` comments are
//! kept when the file is rewritten, so an administrator's notes survive `lanshare user add`.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::userdb::{UserDb, UserRecord, fold_name, names_match, nt_hash};

/// Longest account name accepted, in characters.
pub const MAX_NAME_CHARS: usize = 64;

/// The user file is small; anything bigger than this is not one.
const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Characters Windows refuses in account names, plus ':' which separates our fields.
const FORBIDDEN_NAME_CHARS: &[char] = &[
    '"', '/', '\\', '[', ']', ':', ';', '|', '=', ',', '+', '*', '?', '<', '>',
];

/// What went wrong with the user file.
#[derive(Debug, thiserror::Error)]
pub enum UserFileError {
    #[error("user file {} does not exist", path.display())]
    NotFound { path: PathBuf },
    #[error("user file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("user file {} is larger than {MAX_FILE_BYTES} bytes", path.display())]
    TooLarge { path: PathBuf },
    #[error("{}:{line}: {message}", path.display())]
    Parse {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("invalid user name {name:?}: {reason}")]
    InvalidName { name: String, reason: String },
    #[error("user {name:?} already exists")]
    AlreadyExists { name: String },
    #[error("no such user {name:?}")]
    NoSuchUser { name: String },
}

impl UserFileError {
    /// The closest `io::ErrorKind`, so callers can treat "no file yet" specially.
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            UserFileError::NotFound { .. } | UserFileError::NoSuchUser { .. } => {
                io::ErrorKind::NotFound
            }
            UserFileError::Io { source, .. } => source.kind(),
            UserFileError::AlreadyExists { .. } => io::ErrorKind::AlreadyExists,
            UserFileError::TooLarge { .. }
            | UserFileError::Parse { .. }
            | UserFileError::InvalidName { .. } => io::ErrorKind::InvalidData,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    /// A blank or comment line, kept verbatim.
    Text(String),
    User(UserRecord),
}

/// The parsed user file. Lookups are linear: the file holds tens of accounts, not millions,
/// and a logon does one lookup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserFile {
    entries: Vec<Entry>,
}

/// Checks an account name: 1..=64 characters, no control characters, none of the characters
/// Windows forbids in account names (which include ':'), no leading or trailing blank, and not
/// made only of dots.
pub fn validate_user_name(name: &str) -> Result<(), UserFileError> {
    let bad = |reason: &str| {
        Err(UserFileError::InvalidName {
            name: name.to_owned(),
            reason: reason.to_owned(),
        })
    };
    let chars = name.chars().count();
    if chars == 0 {
        return bad("it is empty");
    }
    if chars > MAX_NAME_CHARS {
        return bad("it is longer than 64 characters");
    }
    if name.chars().any(char::is_control) {
        return bad("it contains a control character");
    }
    if let Some(c) = name.chars().find(|c| FORBIDDEN_NAME_CHARS.contains(c)) {
        return bad(&format!("it contains {c:?}"));
    }
    if name.starts_with(char::is_whitespace) || name.ends_with(char::is_whitespace) {
        return bad("it starts or ends with white space");
    }
    if name.chars().all(|c| c == '.') {
        return bad("it consists only of dots");
    }
    Ok(())
}

fn parse_hash(text: &str) -> Option<[u8; 16]> {
    // from_str_radix alone would also take a sign ("+f"), so check the digits first.
    if text.len() != 32 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        let pair = text.get(2 * i..2 * i + 2)?;
        *byte = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(out)
}

fn hex_upper(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(32), |mut s, b| {
        let _ = write!(s, "{b:02X}");
        s
    })
}

impl UserFile {
    /// An empty user file (nothing is written until [`UserFile::save`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads and parses the file. A missing file is [`UserFileError::NotFound`].
    pub fn load(path: &Path) -> Result<UserFile, UserFileError> {
        let io_err = |source: io::Error| {
            if source.kind() == io::ErrorKind::NotFound {
                UserFileError::NotFound {
                    path: path.to_owned(),
                }
            } else {
                UserFileError::Io {
                    path: path.to_owned(),
                    source,
                }
            }
        };
        let meta = fs::metadata(path).map_err(io_err)?;
        if meta.len() > MAX_FILE_BYTES {
            return Err(UserFileError::TooLarge {
                path: path.to_owned(),
            });
        }
        let text = fs::read_to_string(path).map_err(io_err)?;
        Self::parse(&text, path)
    }

    /// Like [`UserFile::load`], but a missing file is an empty one.
    pub fn load_or_empty(path: &Path) -> Result<UserFile, UserFileError> {
        match Self::load(path) {
            Err(UserFileError::NotFound { .. }) => Ok(UserFile::new()),
            other => other,
        }
    }

    /// Parses file contents; `path` only names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<UserFile, UserFileError> {
        let mut entries = Vec::new();
        // (folded name, line) of every account so far, to report duplicates with both lines.
        let mut seen: Vec<(String, usize)> = Vec::new();
        for (idx, raw_line) in text.lines().enumerate() {
            let line_no = idx + 1;
            let err = |message: String| UserFileError::Parse {
                path: path.to_owned(),
                line: line_no,
                message,
            };
            let line = raw_line.strip_suffix('\r').unwrap_or(raw_line);
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                entries.push(Entry::Text(line.to_owned()));
                continue;
            }
            let mut fields = line.split(':');
            let name = fields.next().unwrap_or_default();
            let Some(hash_text) = fields.next() else {
                return Err(err(format!(
                    "expected name:NT-HASH[:flags], found no ':' in {line:?}"
                )));
            };
            let flags_text = fields.next();
            if fields.next().is_some() {
                return Err(err("too many ':'-separated fields".to_owned()));
            }
            if let Err(UserFileError::InvalidName { reason, .. }) = validate_user_name(name) {
                return Err(err(format!("invalid user name {name:?}: {reason}")));
            }
            let nt_hash = parse_hash(hash_text.trim()).ok_or_else(|| {
                err(format!(
                    "NT hash of {name:?} must be 32 hexadecimal digits, found {:?}",
                    hash_text.trim()
                ))
            })?;
            let mut disabled = false;
            if let Some(flags) = flags_text {
                for flag in flags.split(',').map(str::trim).filter(|f| !f.is_empty()) {
                    match flag {
                        "disabled" => disabled = true,
                        other => {
                            return Err(err(format!(
                                "unknown flag {other:?} for {name:?} (known: disabled)"
                            )));
                        }
                    }
                }
            }
            let folded = fold_name(name);
            if let Some((_, first)) = seen.iter().find(|(n, _)| *n == folded) {
                return Err(err(format!(
                    "user {name:?} is already defined on line {first} (names are case-insensitive)"
                )));
            }
            seen.push((folded, line_no));
            entries.push(Entry::User(UserRecord {
                name: name.to_owned(),
                nt_hash,
                disabled,
            }));
        }
        Ok(UserFile { entries })
    }

    /// The file contents as [`UserFile::save`] writes them.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for entry in &self.entries {
            match entry {
                Entry::Text(t) => out.push_str(t),
                Entry::User(u) => {
                    out.push_str(&u.name);
                    out.push(':');
                    out.push_str(&hex_upper(&u.nt_hash));
                    if u.disabled {
                        out.push_str(":disabled");
                    }
                }
            }
            out.push('\n');
        }
        out
    }

    /// Writes the file atomically: a temporary file beside it (created with mode 0600, so the
    /// hashes are never readable by others, not even briefly), flushed to disk, then renamed
    /// over the old one.
    pub fn save(&self, path: &Path) -> Result<(), UserFileError> {
        let io_err = |source: io::Error| UserFileError::Io {
            path: path.to_owned(),
            source,
        };
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        let file_name = path
            .file_name()
            .ok_or_else(|| io_err(io::Error::other("path has no file name")))?;
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(file_name);
        tmp_name.push(format!(".tmp{}", std::process::id()));
        let tmp = dir.join(tmp_name);

        let result = (|| -> io::Result<()> {
            let mut opts = fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            let mut f = opts.open(&tmp)?;
            f.write_all(self.to_text().as_bytes())?;
            f.sync_all()?;
            drop(f);
            fs::rename(&tmp, path)?;
            // Make the rename itself durable; failure here is not worth failing the save.
            if let Ok(d) = fs::File::open(&dir) {
                let _ = d.sync_all();
            }
            Ok(())
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result.map_err(io_err)
    }

    fn position(&self, name: &str) -> Option<usize> {
        // Compared character by character: a key folded per entry was an allocation per
        // account per logon.
        self.entries
            .iter()
            .position(|e| matches!(e, Entry::User(u) if names_match(&u.name, name)))
    }

    /// Adds an account; an existing one (in any case) is [`UserFileError::AlreadyExists`].
    pub fn add(&mut self, name: &str, password: &str) -> Result<(), UserFileError> {
        validate_user_name(name)?;
        if self.position(name).is_some() {
            return Err(UserFileError::AlreadyExists {
                name: name.to_owned(),
            });
        }
        self.entries.push(Entry::User(UserRecord {
            name: name.to_owned(),
            nt_hash: nt_hash(password),
            disabled: false,
        }));
        Ok(())
    }

    /// Replaces the password of an existing account.
    pub fn set_password(&mut self, name: &str, password: &str) -> Result<(), UserFileError> {
        let rec = self.record_mut(name)?;
        rec.nt_hash = nt_hash(password);
        Ok(())
    }

    /// Enables or disables an existing account.
    pub fn set_disabled(&mut self, name: &str, disabled: bool) -> Result<(), UserFileError> {
        self.record_mut(name)?.disabled = disabled;
        Ok(())
    }

    /// Removes an account.
    pub fn remove(&mut self, name: &str) -> Result<(), UserFileError> {
        let idx = self
            .position(name)
            .ok_or_else(|| UserFileError::NoSuchUser {
                name: name.to_owned(),
            })?;
        self.entries.remove(idx);
        Ok(())
    }

    /// The accounts, in file order.
    pub fn users(&self) -> impl Iterator<Item = &UserRecord> {
        self.entries.iter().filter_map(|e| match e {
            Entry::User(u) => Some(u),
            Entry::Text(_) => None,
        })
    }

    fn record_mut(&mut self, name: &str) -> Result<&mut UserRecord, UserFileError> {
        let idx = self
            .position(name)
            .ok_or_else(|| UserFileError::NoSuchUser {
                name: name.to_owned(),
            })?;
        match self.entries.get_mut(idx) {
            Some(Entry::User(u)) => Ok(u),
            _ => Err(UserFileError::NoSuchUser {
                name: name.to_owned(),
            }),
        }
    }
}

impl UserDb for UserFile {
    fn lookup(&self, user: &str) -> Option<UserRecord> {
        self.position(user)
            .and_then(|i| self.entries.get(i))
            .and_then(|e| match e {
                Entry::User(u) => Some(u.clone()),
                Entry::Text(_) => None,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<UserFile, UserFileError> {
        UserFile::parse(text, Path::new("/etc/lanshare/users"))
    }

    #[test]
    fn round_trip_through_disk_keeps_comments_and_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users");
        let mut f = parse("# lanshare users\n\nalice:A4F49C406510BDCAB6824EE7C30FD852\n").unwrap();
        f.add("bob", "hunter2").unwrap();
        f.set_disabled("BOB", true).unwrap();
        f.save(&path).unwrap();
        let back = UserFile::load(&path).unwrap();
        assert_eq!(back, f);
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# lanshare users\n\nalice:A4F49C40"));
        assert!(text.contains(":disabled\n"));
        let alice = back.lookup("ALICE").unwrap();
        assert_eq!(alice.nt_hash, nt_hash("Password"));
        assert!(back.lookup("bob").unwrap().disabled);
        assert_eq!(back.users().count(), 2);
    }

    #[cfg(unix)]
    #[test]
    fn saved_file_is_mode_0600_even_over_a_readable_one() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users");
        fs::write(&path, "").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let mut f = UserFile::load(&path).unwrap();
        f.add("alice", "x").unwrap();
        f.save(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // No temporary file left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn missing_file_is_not_found_or_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope");
        let err = UserFile::load(&path).unwrap_err();
        assert!(matches!(err, UserFileError::NotFound { .. }));
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert_eq!(UserFile::load_or_empty(&path).unwrap().users().count(), 0);
    }

    #[test]
    fn bad_lines_name_file_and_line() {
        let cases = [
            ("ok:A4F49C406510BDCAB6824EE7C30FD852\nbroken\n", 2, "no ':'"),
            ("\n\nx:1234\n", 3, "32 hexadecimal"),
            ("x:A4F49C406510BDCAB6824EE7C30FD85G\n", 1, "32 hexadecimal"),
            ("x:+4F49C406510BDCAB6824EE7C30FD852\n", 1, "32 hexadecimal"),
            (
                "x:A4F49C406510BDCAB6824EE7C30FD852:frozen\n",
                1,
                "unknown flag",
            ),
            (
                "x:A4F49C406510BDCAB6824EE7C30FD852:disabled:more\n",
                1,
                "too many",
            ),
            (":A4F49C406510BDCAB6824EE7C30FD852\n", 1, "empty"),
            (
                "Al:A4F49C406510BDCAB6824EE7C30FD852\n#\naL:A4F49C406510BDCAB6824EE7C30FD852\n",
                3,
                "line 1",
            ),
        ];
        for (text, line, needle) in cases {
            let err = parse(text).unwrap_err();
            let msg = err.to_string();
            assert!(
                msg.starts_with(&format!("/etc/lanshare/users:{line}: ")),
                "{msg}"
            );
            assert!(msg.contains(needle), "{msg} lacks {needle}");
        }
    }

    #[test]
    fn names_are_validated() {
        for bad in [
            "",
            "a:b",
            "a\tb",
            "a\u{7f}",
            " a",
            "a ",
            "a\\b",
            "..",
            &"x".repeat(65),
        ] {
            assert!(
                matches!(
                    validate_user_name(bad),
                    Err(UserFileError::InvalidName { .. })
                ),
                "{bad:?}"
            );
            assert!(UserFile::new().add(bad, "p").is_err());
        }
        for good in [
            "alice",
            "Jean-Luc",
            "ünïcødé",
            "a.b",
            "svc_backup",
            &"x".repeat(64),
        ] {
            validate_user_name(good).unwrap();
        }
    }

    #[test]
    fn add_remove_set_password() {
        let mut f = UserFile::new();
        f.add("alice", "one").unwrap();
        assert!(matches!(
            f.add("ALICE", "two"),
            Err(UserFileError::AlreadyExists { .. })
        ));
        f.set_password("Alice", "two").unwrap();
        assert_eq!(f.lookup("alice").unwrap().nt_hash, nt_hash("two"));
        assert!(matches!(
            f.set_password("bob", "x"),
            Err(UserFileError::NoSuchUser { .. })
        ));
        f.remove("ALICE").unwrap();
        assert!(f.lookup("alice").is_none());
        assert!(matches!(
            f.remove("alice"),
            Err(UserFileError::NoSuchUser { .. })
        ));
    }
}
