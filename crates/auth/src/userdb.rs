//! Accounts: the [`UserDb`] lookup trait, an in-memory database for tests and the NT hash.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use md4::{Digest, Md4};

/// One local account. The password itself is never stored, only its NT hash.
#[derive(Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// The account name as the administrator spelled it.
    pub name: String,
    /// `MD4(UTF-16LE(password))`, see [`nt_hash`].
    pub nt_hash: [u8; 16],
    /// A disabled account cannot log on ([`crate::AuthError::AccountDisabled`]).
    pub disabled: bool,
}

impl fmt::Debug for UserRecord {
    // The hash is password-equivalent for NTLM, so it stays out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserRecord")
            .field("name", &self.name)
            .field("nt_hash", &"<redacted>")
            .field("disabled", &self.disabled)
            .finish()
    }
}

/// Where the acceptor finds accounts.
pub trait UserDb: Send + Sync + 'static {
    /// Case-insensitive lookup by account name (the domain is ignored for local accounts).
    /// May answer from a recent read of the accounts' source.
    fn lookup(&self, user: &str) -> Option<UserRecord>;

    /// Reads the accounts' source again now if it changed since the last read; true when
    /// something new was loaded. The acceptor calls this when the accounts in force refuse a
    /// logon and, on true, tries once more, so a recent read cannot refuse an account just
    /// added or a password just changed. Databases that never go stale keep the default.
    fn reload_if_changed(&self) -> bool {
        false
    }
}

impl<T: UserDb + ?Sized> UserDb for Arc<T> {
    fn lookup(&self, user: &str) -> Option<UserRecord> {
        (**self).lookup(user)
    }

    fn reload_if_changed(&self) -> bool {
        (**self).reload_if_changed()
    }
}

impl<T: UserDb + ?Sized> UserDb for Box<T> {
    fn lookup(&self, user: &str) -> Option<UserRecord> {
        (**self).lookup(user)
    }

    fn reload_if_changed(&self) -> bool {
        (**self).reload_if_changed()
    }
}

/// The key under which names compare equal. Windows compares account names case-insensitively
/// with a one-to-one upper-case table, so characters whose upper case is several characters
/// (such as `ß`) are kept as they are instead of growing the name.
pub(crate) fn fold_name(name: &str) -> String {
    name.chars().map(upper_char).collect()
}

/// Whether two names are equal under [`fold_name`], without building either key.
pub(crate) fn names_match(a: &str, b: &str) -> bool {
    a.chars().map(upper_char).eq(b.chars().map(upper_char))
}

/// Upper-cases one character when that maps to exactly one character.
pub(crate) fn upper_char(c: char) -> char {
    let mut up = c.to_uppercase();
    match (up.next(), up.next()) {
        (Some(u), None) => u,
        _ => c,
    }
}

/// The NT one-way function of a password: `MD4(UTF-16LE(password))` ([MS-NLMP] 3.3.1 NTOWFv1,
/// which NTOWFv2 in 3.3.2 keys its HMAC with).
pub fn nt_hash(password: &str) -> [u8; 16] {
    let mut md4 = Md4::new();
    for unit in password.encode_utf16() {
        md4.update(unit.to_le_bytes());
    }
    md4.finalize().into()
}

/// A user database kept in a `HashMap`, for tests and embedding.
#[derive(Debug, Clone, Default)]
pub struct MemoryUserDb {
    users: HashMap<String, UserRecord>,
}

impl MemoryUserDb {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) an enabled account with this password.
    #[must_use]
    pub fn with_user(mut self, name: &str, password: &str) -> Self {
        self.insert(UserRecord {
            name: name.to_owned(),
            nt_hash: nt_hash(password),
            disabled: false,
        });
        self
    }

    /// Adds (or replaces) a disabled account with this password.
    #[must_use]
    pub fn with_disabled_user(mut self, name: &str, password: &str) -> Self {
        self.insert(UserRecord {
            name: name.to_owned(),
            nt_hash: nt_hash(password),
            disabled: true,
        });
        self
    }

    /// Adds or replaces a record, keyed case-insensitively by its name.
    pub fn insert(&mut self, record: UserRecord) {
        self.users.insert(fold_name(&record.name), record);
    }

    /// Removes an account; true if it existed.
    pub fn remove(&mut self, name: &str) -> bool {
        self.users.remove(&fold_name(name)).is_some()
    }
}

impl UserDb for MemoryUserDb {
    fn lookup(&self, user: &str) -> Option<UserRecord> {
        self.users.get(&fold_name(user)).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_agrees_with_fold_name() {
        let names = [
            "alice", "ALICE", "Alice", "alicé", "ALICÉ", "alic", "alicee", "", "straße", "STRASSE",
            "STRAßE", "ǅ", "ǆ", "Ǆ",
        ];
        for a in names {
            for b in names {
                assert_eq!(
                    names_match(a, b),
                    fold_name(a) == fold_name(b),
                    "{a:?} {b:?}"
                );
            }
        }
        assert!(names_match("alice", "ALICE"));
        assert!(!names_match("alice", "alic"));
    }

    #[test]
    fn nt_hash_of_password_matches_ms_nlmp_4_2_1() {
        // [MS-NLMP] 4.2.2.1.2 NTOWFv1("Password").
        assert_eq!(
            nt_hash("Password"),
            [
                0xa4, 0xf4, 0x9c, 0x40, 0x65, 0x10, 0xbd, 0xca, 0xb6, 0x82, 0x4e, 0xe7, 0xc3, 0x0f,
                0xd8, 0x52
            ]
        );
        assert_ne!(nt_hash("password"), nt_hash("Password"));
    }

    #[test]
    fn lookup_is_case_insensitive_and_keeps_spelling() {
        let db = MemoryUserDb::new()
            .with_user("Alice", "secret")
            .with_disabled_user("bob", "x");
        let rec = db.lookup("ALICE").unwrap();
        assert_eq!(rec.name, "Alice");
        assert_eq!(rec.nt_hash, nt_hash("secret"));
        assert!(!rec.disabled);
        assert!(db.lookup("Bob").unwrap().disabled);
        assert!(db.lookup("carol").is_none());
        let shared: Arc<dyn UserDb> = Arc::new(db);
        assert!(shared.lookup("alice").is_some());
    }

    #[test]
    fn debug_hides_the_hash() {
        let rec = MemoryUserDb::new().with_user("a", "b").lookup("a").unwrap();
        let text = format!("{rec:?}");
        assert!(text.contains("redacted"));
        assert!(!text.contains('['), "{text}");
    }
}
