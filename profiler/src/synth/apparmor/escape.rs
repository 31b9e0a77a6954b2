//! Writing a path so that `apparmor_parser` reads back exactly those bytes.
//!
//! The parser (3.0, `processunquoted` + `strn_escseq`) decodes `\xHH` in a path to the byte
//! `HH`, and keeps `* ? [ ] { } ^ , \` escaped for its regex backend, where an escaped glob
//! character is literal. So every byte outside a small safe set is written as `\xHH` inside
//! double quotes: spaces, quotes, newlines, non-UTF-8 bytes and glob characters all survive,
//! and the profile text stays printable ASCII. `@` stays literal because `{` after it is
//! always escaped, so `@{` in a file name never turns into a variable.

/// Bytes written as themselves. Everything else becomes `\xHH`.
fn is_plain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"/._-+~:=%@".contains(&b)
}

/// Why a recorded path cannot become a rule.
pub(crate) fn unexpressible(path: &[u8]) -> Option<&'static str> {
    if path.is_empty() {
        Some("empty path")
    } else if !path.starts_with(b"/") {
        Some("not absolute (AppArmor mediates absolute paths only)")
    } else if path.contains(&0) {
        Some("contains a NUL byte")
    } else {
        None
    }
}

/// The literal bytes of a path, escaped; `needs_quotes` tells the caller to wrap the whole
/// rule path in double quotes.
pub(crate) fn literal(bytes: &[u8], needs_quotes: &mut bool) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if is_plain(b) {
            out.push(b as char);
        } else {
            *needs_quotes = true;
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// A path for a comment: the same escaping, so a newline in a file name cannot end the
/// comment and smuggle in a rule.
pub(crate) fn for_comment(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if (0x20..0x7f).contains(&b) && b != b'\\' {
            out.push(b as char);
        } else {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let cases: &[(&[u8], &str, bool)] = &[
            (b"/etc/nginx/nginx.conf", "/etc/nginx/nginx.conf", false),
            (b"/srv/my site/a b", "/srv/my\\x20site/a\\x20b", true),
            (b"/x/\"q\"", "/x/\\x22q\\x22", true),
            (b"/x/new\nline", "/x/new\\x0aline", true),
            (b"/x/caf\xe9", "/x/caf\\xe9", true),
            (
                b"/x/*?[]{}^,\\",
                "/x/\\x2a\\x3f\\x5b\\x5d\\x7b\\x7d\\x5e\\x2c\\x5c",
                true,
            ),
            (b"/x/@{HOME}", "/x/@\\x7bHOME\\x7d", true),
            (b"/x/#not-a-comment", "/x/\\x23not-a-comment", true),
        ];
        for (input, want, quoted) in cases {
            let mut q = false;
            assert_eq!(literal(input, &mut q), *want, "{input:?}");
            assert_eq!(q, *quoted, "{input:?}");
        }
    }

    #[test]
    fn unexpressible_paths() {
        assert!(unexpressible(b"").is_some());
        assert!(unexpressible(b"relative/x").is_some());
        assert!(unexpressible(b"/a\0b").is_some());
        assert!(unexpressible(b"/ok").is_none());
    }
}
