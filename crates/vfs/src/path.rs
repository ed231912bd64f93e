//! `VfsPath`: a validated, share-relative path.
//!
//! Every front-end turns the name a client sent into a `VfsPath` before touching storage, so the
//! rules below are the single place where a hostile name is refused. They follow the Windows
//! naming rules of [MS-FSCC] 2.1.5 (pathname) and 2.1.5.2 (filename), narrowed by what a Linux
//! filesystem can store:
//!
//! - separators: `\` in [`VfsPath::parse`] (SMB), `/` in [`VfsPath::parse_slash`] (WebDAV, FTP);
//!   the other separator is an invalid character, so a name can never contain either;
//! - one leading separator is ignored (`\a\b` = `a\b`), one trailing separator is ignored
//!   (`a\b\` = `a\b`: Windows clients send it when opening directories); an empty path, or a
//!   lone separator, is the share root;
//! - an empty component (`a\\b`, or `\\server\…`) is [`VfsError::InvalidName`];
//! - `.` and `..` as components are [`VfsError::InvalidName`]: we never interpret them, so they
//!   cannot climb out of the share even before the kernel's own confinement;
//! - NUL, control characters (U+0001–U+001F) and `"*/<>?\|` (the one that is not the separator
//!   aside) are [`VfsError::InvalidName`];
//! - `:` is [`VfsError::StreamNotSupported`]: it introduces an alternate data stream
//!   (`file:stream:$DATA`, [MS-FSCC] 2.1.5.1), which this crate does not store;
//! - a component longer than 255 bytes of UTF-8 (Linux `NAME_MAX`) is [`VfsError::NameTooLong`],
//!   and so is a whole path longer than 32,767 UTF-16 code units (the Windows maximum);
//! - trailing dots and spaces are kept verbatim, as Samba does: stripping them is a Win32
//!   client-side convention ([MS-FSCC] 2.1.5.2 only forbids them in some Win32 APIs), and the
//!   client has already applied it before the name reaches the wire;
//! - DOS device names (`CON`, `NUL`, `COM1`, …) are ordinary names here: on a Linux disk they are
//!   plain files inside the share, and refusing them would hide files a Linux user created.
//!
//! Case is preserved exactly; case-insensitive matching is the back-end's business.

use std::fmt;

use crate::error::VfsError;

/// Longest component, in bytes of UTF-8 (Linux `NAME_MAX`).
pub const MAX_COMPONENT_BYTES: usize = 255;
/// Longest path, in UTF-16 code units ([MS-FSCC] 2.1.5: 32,767 characters).
pub const MAX_PATH_UTF16: usize = 32_767;

/// A validated path relative to a share root. The root itself has no components.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct VfsPath {
    components: Vec<String>,
}

impl VfsPath {
    /// The share root.
    pub fn root() -> Self {
        VfsPath::default()
    }

    /// Parses a Windows-style path (`a\b\c.txt`), as SMB sends it.
    pub fn parse(path: &str) -> Result<Self, VfsError> {
        Self::parse_with(path, '\\')
    }

    /// Parses a `/`-separated path, as WebDAV and FTP send it (after their own percent- or
    /// quote-decoding). `\` is then an invalid character.
    pub fn parse_slash(path: &str) -> Result<Self, VfsError> {
        Self::parse_with(path, '/')
    }

    fn parse_with(path: &str, sep: char) -> Result<Self, VfsError> {
        // Checked first so that a huge hostile path is refused before it is split.
        if path.encode_utf16().count() > MAX_PATH_UTF16 {
            return Err(VfsError::NameTooLong);
        }
        let body = path.strip_prefix(sep).unwrap_or(path);
        let body = body.strip_suffix(sep).unwrap_or(body);
        if body.is_empty() {
            return Ok(VfsPath::root());
        }
        let components = body
            .split(sep)
            .map(|c| validate_component(c).map(|()| c.to_owned()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(VfsPath { components })
    }

    /// Builds a path from components, each validated as by [`VfsPath::validate_component`].
    pub fn from_components<I, S>(components: I) -> Result<Self, VfsError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut p = VfsPath::root();
        for c in components {
            p = p.join(&c.into())?;
        }
        Ok(p)
    }

    /// Checks one name (no separators allowed) against the rules in the module docs.
    pub fn validate_component(name: &str) -> Result<(), VfsError> {
        validate_component(name)
    }

    /// The components, outermost first; empty for the root.
    pub fn components(&self) -> &[String] {
        &self.components
    }

    /// True for the share root.
    pub fn is_root(&self) -> bool {
        self.components.is_empty()
    }

    /// The last component, `None` for the root.
    pub fn file_name(&self) -> Option<&str> {
        self.components.last().map(String::as_str)
    }

    /// The containing directory, `None` for the root.
    pub fn parent(&self) -> Option<VfsPath> {
        let (_, rest) = self.components.split_last()?;
        Some(VfsPath {
            components: rest.to_vec(),
        })
    }

    /// Appends one validated component.
    pub fn join(&self, name: &str) -> Result<VfsPath, VfsError> {
        validate_component(name)?;
        let mut components = self.components.clone();
        components.push(name.to_owned());
        let p = VfsPath { components };
        if p.utf16_len() > MAX_PATH_UTF16 {
            return Err(VfsError::NameTooLong);
        }
        Ok(p)
    }

    /// True when `self` is `other` or lies beneath it.
    pub fn starts_with(&self, other: &VfsPath) -> bool {
        self.components.starts_with(&other.components)
    }

    /// Windows form, without a leading separator (`a\b\c.txt`; the root is empty).
    pub fn to_windows_string(&self) -> String {
        self.components.join("\\")
    }

    fn utf16_len(&self) -> usize {
        let seps = self.components.len().saturating_sub(1);
        self.components
            .iter()
            .map(|c| c.encode_utf16().count())
            .sum::<usize>()
            + seps
    }
}

fn validate_component(name: &str) -> Result<(), VfsError> {
    if name.is_empty() || name == "." || name == ".." {
        return Err(VfsError::InvalidName);
    }
    if name.len() > MAX_COMPONENT_BYTES {
        return Err(VfsError::NameTooLong);
    }
    // Invalid characters win over ':' so that `a:b*` is reported as invalid, not as a stream.
    if name
        .chars()
        .any(|ch| ch < ' ' || matches!(ch, '"' | '*' | '/' | '<' | '>' | '?' | '\\' | '|'))
    {
        return Err(VfsError::InvalidName);
    }
    if name.contains(':') {
        return Err(VfsError::StreamNotSupported);
    }
    Ok(())
}

/// `/`-separated, without a leading `/`; the root displays as the empty string.
impl fmt::Display for VfsPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, c) in self.components.iter().enumerate() {
            if i > 0 {
                f.write_str("/")?;
            }
            f.write_str(c)?;
        }
        Ok(())
    }
}

impl fmt::Debug for VfsPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VfsPath({:?})", self.to_string())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_windows_paths() {
        let p = VfsPath::parse(r"\a\b\c.txt").unwrap();
        assert_eq!(p.components(), ["a", "b", "c.txt"]);
        assert_eq!(p.to_string(), "a/b/c.txt");
        assert_eq!(p.to_windows_string(), r"a\b\c.txt");
        assert_eq!(p.file_name(), Some("c.txt"));
        assert_eq!(p.parent().unwrap().to_string(), "a/b");
        assert!(!p.is_root());
        assert_eq!(VfsPath::parse(r"a\b\").unwrap().components(), ["a", "b"]);
    }

    #[test]
    fn root_forms() {
        for s in ["", "\\"] {
            let p = VfsPath::parse(s).unwrap();
            assert!(p.is_root(), "{s:?}");
            assert_eq!(p.parent(), None);
            assert_eq!(p.file_name(), None);
            assert_eq!(p.to_string(), "");
        }
        assert!(VfsPath::parse_slash("/").unwrap().is_root());
    }

    #[test]
    fn join_and_parent_round_trip() {
        let p = VfsPath::root().join("x").unwrap().join("y").unwrap();
        assert_eq!(p, VfsPath::parse("x\\y").unwrap());
        assert_eq!(p.parent().unwrap().parent().unwrap(), VfsPath::root());
        assert!(p.starts_with(&VfsPath::parse("x").unwrap()));
        assert!(!p.starts_with(&VfsPath::parse("y").unwrap()));
        assert_eq!(p.join("a\\b"), Err(VfsError::InvalidName));
        assert_eq!(
            VfsPath::from_components(["x", "y"]).unwrap(),
            VfsPath::parse("x\\y").unwrap()
        );
    }

    #[test]
    fn rejects_bad_names() {
        let invalid = [
            r"a\\b",
            r"\\server\share",
            r"..\x",
            r"a\..\b",
            r".",
            r"a\.",
            "a\0b",
            "a\x01b",
            "a\x1fb",
            "a*",
            "a?",
            "a<",
            "a>",
            "a|b",
            "a\"b",
            "a/b",
            r"\\?\C:\x",
            "x:y*",
        ];
        for s in invalid {
            assert_eq!(VfsPath::parse(s), Err(VfsError::InvalidName), "{s:?}");
        }
        assert_eq!(VfsPath::parse_slash("a\\b"), Err(VfsError::InvalidName));
        assert_eq!(VfsPath::parse_slash("/../etc"), Err(VfsError::InvalidName));
    }

    #[test]
    fn streams_are_distinct() {
        for s in ["foo::$DATA", "foo:bar", "C:", "a\\b:c:$DATA"] {
            assert_eq!(
                VfsPath::parse(s),
                Err(VfsError::StreamNotSupported),
                "{s:?}"
            );
        }
    }

    #[test]
    fn length_limits() {
        let ok = "a".repeat(255);
        assert!(VfsPath::parse(&ok).is_ok());
        assert_eq!(VfsPath::parse(&"a".repeat(256)), Err(VfsError::NameTooLong));
        // 255 bytes limit is in UTF-8 bytes: 128 two-byte chars are 256 bytes.
        assert_eq!(VfsPath::parse(&"é".repeat(128)), Err(VfsError::NameTooLong));
        let long: Vec<String> = (0..200).map(|_| "b".repeat(200)).collect();
        assert_eq!(VfsPath::parse(&long.join("\\")), Err(VfsError::NameTooLong));
        let mut p = VfsPath::root();
        let mut failed = false;
        for _ in 0..200 {
            match p.join(&"c".repeat(200)) {
                Ok(q) => p = q,
                Err(e) => {
                    assert_eq!(e, VfsError::NameTooLong);
                    failed = true;
                    break;
                }
            }
        }
        assert!(failed);
    }

    #[test]
    fn keeps_trailing_dots_spaces_and_device_names() {
        for s in ["a.", "a ", "CON", "nul.txt", "...", " x"] {
            assert_eq!(VfsPath::parse(s).unwrap().file_name(), Some(s));
        }
    }
}
