//! Windows naming rules the engine applies on top of `VfsPath`: search-pattern matching
//! ([MS-FSA] 2.1.4.4, with the DOS wildcards of [MS-FSCC] 2.1.4.3), 8.3 short names
//! ([MS-FSCC] 2.1.5.2.1) and the default-data-stream suffix of [MS-FSCC] 2.1.5.1.
//!
//! Matching is case-insensitive, with the same per-character upper-casing the storage layer
//! uses for lookups (`lanshare_vfs::fold_case`), so what a pattern finds is what an open by
//! that name opens.

use std::sync::Arc;

use lanshare_vfs::{StreamView, Vfs, fold_case};
use smb_wire::NtStatus;

/// `DOS_STAR` (`<`): zero or more characters up to (not including) the last `.` of the name.
const DOS_STAR: char = '<';
/// `DOS_QM` (`>`): any one character; at a `.` or at the end of the name, nothing.
const DOS_QM: char = '>';
/// `DOS_DOT` (`"`): a `.`, or nothing at the end of the name.
const DOS_DOT: char = '"';

/// Longest search pattern accepted, in characters. A component is at most 255 bytes, so a
/// longer pattern could only match through wildcards, and bounding it bounds the work a
/// hostile pattern can cause (the matcher is O(pattern × name)).
pub(crate) const MAX_PATTERN_CHARS: usize = 1024;

/// A compiled, case-folded search pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pattern {
    chars: Vec<char>,
    /// `*` alone: everything matches, no per-name work.
    all: bool,
    has_wildcards: bool,
}

impl Pattern {
    /// An empty pattern means "everything", as a client sending no FileName expects.
    pub fn new(pattern: &str) -> Pattern {
        let chars: Vec<char> = fold_case(pattern).chars().collect();
        let all = chars.is_empty() || chars == ['*'];
        let has_wildcards = chars
            .iter()
            .any(|c| matches!(*c, '*' | '?' | DOS_STAR | DOS_QM | DOS_DOT));
        Pattern {
            chars,
            all,
            has_wildcards,
        }
    }

    /// [MS-FSA] 2.1.4.4: is `name` in the expression?
    pub fn matches(&self, name: &str) -> bool {
        if self.all {
            return true;
        }
        let name: Vec<char> = fold_case(name).chars().collect();
        if !self.has_wildcards {
            return name == self.chars;
        }
        let mut m = Matcher {
            p: &self.chars,
            n: &name,
            last_dot: name.iter().rposition(|c| *c == '.'),
            memo: vec![0u8; (self.chars.len() + 1) * (name.len() + 1)],
        };
        m.at(0, 0)
    }
}

/// Memoised recursion over (pattern index, name index): each state is computed once, so the
/// cost is bounded by the product of the lengths whatever wildcards the pattern holds.
struct Matcher<'a> {
    p: &'a [char],
    n: &'a [char],
    last_dot: Option<usize>,
    /// 0 = unknown, 1 = no, 2 = yes.
    memo: Vec<u8>,
}

impl Matcher<'_> {
    fn at(&mut self, i: usize, j: usize) -> bool {
        let key = i * (self.n.len() + 1) + j;
        match self.memo.get(key) {
            Some(1) => return false,
            Some(2) => return true,
            _ => {}
        }
        let r = self.compute(i, j);
        if let Some(slot) = self.memo.get_mut(key) {
            *slot = if r { 2 } else { 1 };
        }
        r
    }

    fn compute(&mut self, i: usize, j: usize) -> bool {
        let Some(&pc) = self.p.get(i) else {
            return j == self.n.len();
        };
        let nc = self.n.get(j).copied();
        match pc {
            '*' => self.at(i + 1, j) || (nc.is_some() && self.at(i, j + 1)),
            '?' => nc.is_some() && self.at(i + 1, j + 1),
            DOS_STAR => {
                // May consume any character except the name's last dot.
                let can_eat = nc.is_some() && Some(j) != self.last_dot;
                self.at(i + 1, j) || (can_eat && self.at(i, j + 1))
            }
            DOS_QM => match nc {
                None | Some('.') => self.at(i + 1, j),
                Some(_) => self.at(i + 1, j + 1),
            },
            DOS_DOT => match nc {
                Some('.') => self.at(i + 1, j + 1),
                None => self.at(i + 1, j),
                Some(_) => false,
            },
            c => nc == Some(c) && self.at(i + 1, j + 1),
        }
    }
}

/// What a CREATE (or rename) name asks for once the stream syntax is looked at
/// ([MS-FSCC] 2.1.5.1: `file:stream:type`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StreamName<'a> {
    /// The file itself. `data` when the unnamed data stream was named explicitly (`::$DATA`):
    /// then the object must be a file (a directory has no data stream).
    Default { base: &'a str, data: bool },
    /// A named data stream of `base` (which may be a directory, or empty for the share root).
    Named { base: &'a str, stream: &'a str },
}

/// Splits `base[:stream[:type]]`. The type, when present, must be `$DATA` (any case); an
/// empty stream name with it (`::$DATA`) or a stream name of `$DATA` alone is the unnamed
/// stream. Anything else with a colon (`file:`, `file:s:`, `file:s:$FOO`, a fourth part, a
/// name the storage cannot keep) is STATUS_OBJECT_NAME_INVALID, as Windows answers.
pub(crate) fn split_stream(name: &str) -> Result<StreamName<'_>, NtStatus> {
    let Some((base, rest)) = name.split_once(':') else {
        return Ok(StreamName::Default {
            base: name,
            data: false,
        });
    };
    let (stream, kind) = match rest.split_once(':') {
        Some((s, k)) => (s, Some(k)),
        None => (rest, None),
    };
    match kind {
        Some(k) if !k.eq_ignore_ascii_case("$DATA") => return Err(NtStatus::OBJECT_NAME_INVALID),
        _ => {}
    }
    if stream.is_empty() {
        return match kind {
            Some(_) => Ok(StreamName::Default { base, data: true }),
            None => Err(NtStatus::OBJECT_NAME_INVALID),
        };
    }
    if kind.is_none() && stream.eq_ignore_ascii_case("$DATA") {
        return Ok(StreamName::Default { base, data: true });
    }
    if !lanshare_vfs::streams::valid_name(stream) {
        return Err(NtStatus::OBJECT_NAME_INVALID);
    }
    Ok(StreamName::Named { base, stream })
}

/// What CREATE opens for a name: the path part, the storage to run the open on (a
/// [`StreamView`] for a named stream) and whether the object must be a file (`::$DATA`).
/// A stream asked for as a directory is STATUS_NOT_A_DIRECTORY ([MS-FSA] 2.1.5.1: streams
/// are never directories).
pub(crate) fn create_target<'a>(
    name: &'a str,
    vfs: &Arc<dyn Vfs>,
    want_dir: bool,
) -> Result<(&'a str, Arc<dyn Vfs>, bool), NtStatus> {
    match split_stream(name)? {
        StreamName::Default { base, data: false } => Ok((base, vfs.clone(), false)),
        StreamName::Default { .. } | StreamName::Named { .. } if want_dir => {
            Err(NtStatus::NOT_A_DIRECTORY)
        }
        StreamName::Default { base, data: true } => Ok((base, vfs.clone(), true)),
        StreamName::Named { base, stream } => {
            Ok((base, Arc::new(StreamView::new(vfs.clone(), stream)), false))
        }
    }
}

/// Characters allowed in an 8.3 name besides letters and digits ([MS-FSCC] 2.1.5.2.1).
fn is_83_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'()-@^_`{}~".contains(c)
}

/// True when `name` is already a valid 8.3 name (so it is its own short name).
pub(crate) fn is_8dot3(name: &str) -> bool {
    if name == "." || name == ".." {
        return true;
    }
    let (base, ext) = match name.rsplit_once('.') {
        Some((b, e)) => (b, Some(e)),
        None => (name, None),
    };
    let base_ok = (1..=8).contains(&base.len()) && base.chars().all(is_83_char);
    let ext_ok = ext.is_none_or(|e| (1..=3).contains(&e.len()) && e.chars().all(is_83_char));
    base_ok && ext_ok
}

/// The 8.3 name reported for `name` (FileAlternateNameInformation, ShortName in directory
/// listings). Names that already fit are reported upper-cased; others get a generated name:
/// up to four characters of the base, `~`, three characters of a hash of the whole name, and
/// up to three characters of the extension. The hash makes it stable across listings and
/// restarts (it is derived, never stored), and unlikely to collide within a folder.
pub(crate) fn short_name(name: &str) -> String {
    if is_8dot3(name) {
        return name.to_ascii_uppercase();
    }
    let (base, ext) = match name.rsplit_once('.') {
        Some((b, e)) if !b.is_empty() => (b, e),
        _ => (name, ""),
    };
    let clean = |s: &str, max: usize| -> String {
        s.chars()
            .filter(|c| is_83_char(*c))
            .map(|c| c.to_ascii_uppercase())
            .take(max)
            .collect()
    };
    let mut prefix = clean(base, 4);
    if prefix.is_empty() {
        prefix.push('_');
    }
    // FNV-1a: small, deterministic, good enough to spread names over 36^3 suffixes.
    let mut h: u32 = 0x811C_9DC5;
    for b in name.bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    const DIGITS: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut suffix = String::with_capacity(3);
    for _ in 0..3 {
        suffix.push(char::from(DIGITS[(h % 36) as usize]));
        h /= 36;
    }
    let ext = clean(ext, 3);
    if ext.is_empty() {
        format!("{prefix}~{suffix}")
    } else {
        format!("{prefix}~{suffix}.{ext}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, n: &str) -> bool {
        Pattern::new(p).matches(n)
    }

    #[test]
    fn star_and_question_mark() {
        assert!(m("*", "anything.txt"));
        assert!(m("", "anything"));
        assert!(m("*.txt", "a.txt"));
        assert!(m("*.txt", "A.TXT"), "case-insensitive");
        assert!(!m("*.txt", "a.txt.bak"));
        assert!(m("a*b*c", "aXXbYYc"));
        assert!(!m("a*b*c", "aXXbYY"));
        assert!(m("?.t?t", "a.txt"));
        assert!(!m("?.txt", "ab.txt"));
        assert!(m("file", "FILE"));
        assert!(!m("file", "file2"));
        assert!(m("*.*", "a.b"));
        assert!(!m("*.*", "ab"), "without DOS wildcards *.* needs a dot");
    }

    #[test]
    fn dos_wildcards() {
        // DOS_STAR stops before the last dot.
        assert!(m("<.txt", "a.b.txt"));
        assert!(m("<", "noext"));
        assert!(!m("<", "has.ext"));
        assert!(m("<.<", "has.ext"));
        // DOS_QM matches one char, or nothing at a dot / the end.
        assert!(m("a>>>.txt", "a.txt"));
        assert!(m("a>>>.txt", "abc.txt"));
        assert!(!m("a>.txt", "abc.txt"));
        assert!(m("ab>", "ab"));
        // DOS_DOT is a dot, or nothing at the end.
        assert!(m("abc\"", "abc"));
        assert!(m("abc\"txt", "abc.txt"));
        assert!(!m("abc\"txt", "abcxtxt"));
        // What Windows clients send for "*.*" and "*.": DOS_STAR DOS_DOT DOS_STAR.
        assert!(m("<\"*", "a.b"));
        assert!(m("<\"*", "ab"));
    }

    #[test]
    fn non_ascii_case_folding() {
        assert!(m("ÄBC*", "äbcdef"));
        assert!(m("*σ", "ΟΣ"));
    }

    #[test]
    fn pathological_patterns_stay_cheap() {
        let p = "*a".repeat(200);
        let n = "a".repeat(199) + "b";
        let t = std::time::Instant::now();
        assert!(!m(&p, &n));
        assert!(t.elapsed().as_secs() < 2);
    }

    #[test]
    fn stream_suffixes() {
        let d = |base, data| Ok(StreamName::Default { base, data });
        let n = |base, stream| Ok(StreamName::Named { base, stream });
        assert_eq!(split_stream("a.txt"), d("a.txt", false));
        assert_eq!(split_stream("a.txt::$DATA"), d("a.txt", true));
        assert_eq!(split_stream("a.txt::$dAtA"), d("a.txt", true));
        assert_eq!(split_stream("a.txt:$DATA"), d("a.txt", true));
        assert_eq!(split_stream("a.txt:s"), n("a.txt", "s"));
        assert_eq!(split_stream("a.txt:s:$DaTa"), n("a.txt", "s"));
        assert_eq!(split_stream(":s"), n("", "s"));
        assert_eq!(split_stream("d\\f:?S*"), n("d\\f", "?S*"));
        let invalid = Err(NtStatus::OBJECT_NAME_INVALID);
        assert_eq!(split_stream("a.txt:"), invalid);
        assert_eq!(split_stream("a.txt:s:"), invalid);
        assert_eq!(split_stream("a.txt:s:$FOO"), invalid);
        assert_eq!(split_stream("a.txt:s:?D*a"), invalid);
        assert_eq!(split_stream("a.txt:s:$DATA:x"), invalid);
        assert_eq!(split_stream("a.txt:a/b"), invalid);
    }

    #[test]
    fn short_names() {
        assert!(is_8dot3("FILE.TXT"));
        assert!(is_8dot3("file.txt"));
        assert!(!is_8dot3("longfilename.txt"));
        assert!(!is_8dot3("a.b.c"));
        assert!(!is_8dot3("a b.txt"));
        assert_eq!(short_name("bufsize.txt"), "BUFSIZE.TXT");
        let s = short_name("A long file name.text");
        assert!(is_8dot3(&s), "{s}");
        assert!(s.starts_with("ALON~") && s.ends_with(".TEX"), "{s}");
        assert_eq!(s, short_name("A long file name.text"), "stable");
        assert_ne!(s, short_name("A long file name2.text"));
        assert!(is_8dot3(&short_name(".bashrc")));
        assert!(is_8dot3(&short_name("ümlaut-ñame")));
    }
}
