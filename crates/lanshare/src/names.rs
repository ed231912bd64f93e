//! Naming rules shared by the config file and `lanshare serve PATH…`: share names, the server's
//! NetBIOS-style name, and "did you mean" suggestions for misspelt keys and values.

/// Longest share name Windows accepts (`NetShareAdd`, [MS-SRVS] 2.2.4.23 `shi2_netname`, and
/// Explorer refuses longer ones).
pub const MAX_SHARE_NAME: usize = 80;

/// Longest NetBIOS computer name (16 bytes with the suffix byte, [MS-NBTE]).
pub const MAX_SERVER_NAME: usize = 15;

/// Characters Windows refuses in a share name.
pub const SHARE_NAME_FORBIDDEN: &str = "\"/\\[]:|<>+=;,*?";

/// Checks a share name against the Windows rules. The error text completes the sentence
/// "share name `X` …".
pub fn check_share_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("is empty".into());
    }
    let chars = name.chars().count();
    if chars > MAX_SHARE_NAME {
        return Err(format!(
            "is {chars} characters long; Windows allows at most {MAX_SHARE_NAME}"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| SHARE_NAME_FORBIDDEN.contains(*c) || c.is_control())
    {
        return Err(format!(
            "contains {}; share names may not contain any of {SHARE_NAME_FORBIDDEN} or control characters",
            describe_char(c)
        ));
    }
    if name.eq_ignore_ascii_case("IPC$") {
        return Err("is reserved: IPC$ is the server's own pipe share".into());
    }
    Ok(())
}

fn describe_char(c: char) -> String {
    if c.is_control() {
        format!("the control character U+{:04X}", u32::from(c))
    } else {
        format!("`{c}`")
    }
}

/// Turns a folder name into a valid share name: forbidden characters become `_`, the result is
/// cut to [`MAX_SHARE_NAME`] characters, and an empty or reserved result becomes `share`.
pub fn sanitize_share_name(folder: &str) -> String {
    let mut out: String = folder
        .chars()
        .map(|c| {
            if SHARE_NAME_FORBIDDEN.contains(c) || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .take(MAX_SHARE_NAME)
        .collect();
    // A share called "." or ".." would confuse every client's path handling.
    if out.trim_matches('.').trim().is_empty() || out.eq_ignore_ascii_case("IPC$") {
        out = "share".into();
    }
    out
}

/// Makes `name` unique (case-insensitively) among `taken` by appending `-2`, `-3`, … while
/// staying within [`MAX_SHARE_NAME`].
pub fn unique_share_name(name: &str, taken: &[String]) -> String {
    let clash = |n: &str| taken.iter().any(|t| t.eq_ignore_ascii_case(n));
    if !clash(name) {
        return name.to_string();
    }
    let mut k = 2usize;
    loop {
        let suffix = format!("-{k}");
        let keep = MAX_SHARE_NAME.saturating_sub(suffix.len());
        let candidate: String = name.chars().take(keep).chain(suffix.chars()).collect();
        if !clash(&candidate) {
            return candidate;
        }
        k += 1;
    }
}

/// Checks a configured server name. Letters, digits, `-` and `_` only: these survive NetBIOS,
/// DNS-ish tools and every client's UNC parsing.
pub fn check_server_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("is empty".into());
    }
    let chars = name.chars().count();
    if chars > MAX_SERVER_NAME {
        return Err(format!(
            "is {chars} characters long; NetBIOS names have at most {MAX_SERVER_NAME}"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(format!(
            "contains {}; use letters, digits, `-` and `_` only",
            describe_char(c)
        ));
    }
    Ok(())
}

/// The default server name: the host name's first label, upper-cased, reduced to the allowed
/// characters and cut to 15; `LANSHARE` when nothing usable is left.
pub fn server_name_from_hostname(hostname: &str) -> String {
    let label = hostname.split('.').next().unwrap_or_default();
    let name: String = label
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .map(|c| c.to_ascii_uppercase())
        .take(MAX_SERVER_NAME)
        .collect();
    if name.is_empty() {
        "LANSHARE".into()
    } else {
        name
    }
}

/// This machine's host name, if the OS gives a usable one.
pub fn hostname() -> Option<String> {
    let h = gethostname::gethostname().into_string().ok()?;
    let h = h.trim().to_string();
    (!h.is_empty()).then_some(h)
}

/// The closest candidate to `word` when it is plausibly a typo (edit distance at most 2, and at
/// most a third of the word), compared case-insensitively.
pub fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let w = word.to_ascii_lowercase();
    let limit = (w.chars().count() / 3).clamp(1, 2);
    candidates
        .iter()
        .map(|c| (levenshtein(&w, &c.to_ascii_lowercase()), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0usize; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn share_names() {
        assert!(check_share_name("docs").is_ok());
        assert!(check_share_name("Team Documents$").is_ok());
        assert!(check_share_name("").is_err());
        assert!(check_share_name("a:b").unwrap_err().contains("`:`"));
        assert!(check_share_name("ipc$").unwrap_err().contains("reserved"));
        assert!(check_share_name(&"x".repeat(80)).is_ok());
        assert!(check_share_name(&"x".repeat(81)).is_err());
        assert!(check_share_name("a\tb").unwrap_err().contains("U+0009"));
    }

    #[test]
    fn sanitize_and_unique() {
        assert_eq!(sanitize_share_name("my:files?"), "my_files_");
        assert_eq!(sanitize_share_name(".."), "share");
        assert_eq!(sanitize_share_name("IPC$"), "share");
        assert_eq!(sanitize_share_name(&"é".repeat(100)).chars().count(), 80);
        let taken = vec!["Docs".to_string(), "docs-2".to_string()];
        assert_eq!(unique_share_name("docs", &taken), "docs-3");
        assert_eq!(unique_share_name("other", &taken), "other");
        let long = "y".repeat(80);
        let u = unique_share_name(&long, std::slice::from_ref(&long));
        assert_eq!(u.chars().count(), 80);
        assert!(u.ends_with("-2"));
        assert!(check_share_name(&u).is_ok());
    }

    #[test]
    fn server_names() {
        assert_eq!(
            server_name_from_hostname("build-box.example.org"),
            "BUILD-BOX"
        );
        assert_eq!(
            server_name_from_hostname("averyveryverylonghostname"),
            "AVERYVERYVERYLO"
        );
        assert_eq!(server_name_from_hostname("..."), "LANSHARE");
        assert!(check_server_name("FILESRV").is_ok());
        assert!(check_server_name("FILE.SRV").is_err());
        assert!(check_server_name("SIXTEENCHARSLONG").is_err());
    }

    #[test]
    fn suggestions() {
        let keys = [
            "signing",
            "anonymous",
            "guest",
            "min_protocol",
            "max_protocol",
        ];
        assert_eq!(did_you_mean("sgning", &keys), Some("signing"));
        assert_eq!(did_you_mean("anonymus", &keys), Some("anonymous"));
        assert_eq!(did_you_mean("min_protcol", &keys), Some("min_protocol"));
        assert_eq!(did_you_mean("colour", &keys), None);
        assert_eq!(levenshtein("kitten", "sitting"), 3);
    }
}
