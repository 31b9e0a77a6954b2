//! Test-only: which paths a rendered profile allows, read back from its text with AppArmor's
//! globbing (`*`, `**`, `?`, `[…]`, `{a,b}`, `@{pid}`, `\xHH`), independent of the code that
//! wrote the globs.

#[derive(Clone, Debug)]
enum Tok {
    Lit(u8),
    Star,
    StarStar,
    Any,
    Class(Vec<(u8, u8)>),
    Alt(Vec<Vec<Tok>>),
    /// `@{pid}`, `@{tid}`: tunables/kernelvars, 1 to 7 digits without a leading zero.
    Pid,
}

/// One file rule of the profile text.
struct TextRule {
    toks: Vec<Tok>,
    letters: String,
}

fn parse(p: &[u8]) -> Vec<Tok> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            b'\\' if p.get(i + 1) == Some(&b'x') => {
                let hex = std::str::from_utf8(&p[i + 2..i + 4]).unwrap();
                out.push(Tok::Lit(u8::from_str_radix(hex, 16).unwrap()));
                i += 4;
            }
            b'\\' => {
                out.push(Tok::Lit(p[i + 1]));
                i += 2;
            }
            b'*' if p.get(i + 1) == Some(&b'*') => {
                out.push(Tok::StarStar);
                i += 2;
            }
            b'*' => {
                out.push(Tok::Star);
                i += 1;
            }
            b'?' => {
                out.push(Tok::Any);
                i += 1;
            }
            b'[' => {
                let close = i + p[i..].iter().position(|&b| b == b']').unwrap();
                let class = &p[i + 1..close];
                let mut ranges = Vec::new();
                let mut j = 0;
                while j < class.len() {
                    if class.get(j + 1) == Some(&b'-') && j + 2 < class.len() {
                        ranges.push((class[j], class[j + 2]));
                        j += 3;
                    } else {
                        ranges.push((class[j], class[j]));
                        j += 1;
                    }
                }
                out.push(Tok::Class(ranges));
                i = close + 1;
            }
            b'@' if p[i..].starts_with(b"@{pid}") || p[i..].starts_with(b"@{tid}") => {
                out.push(Tok::Pid);
                i += 6;
            }
            b'{' => {
                let mut depth = 0;
                let mut close = i;
                for (k, &b) in p.iter().enumerate().skip(i) {
                    depth += i32::from(b == b'{') - i32::from(b == b'}');
                    if depth == 0 {
                        close = k;
                        break;
                    }
                }
                let alts = p[i + 1..close].split(|&b| b == b',').map(parse).collect();
                out.push(Tok::Alt(alts));
                i = close + 1;
            }
            b => {
                out.push(Tok::Lit(b));
                i += 1;
            }
        }
    }
    out
}

fn matches(toks: &[Tok], t: &[u8]) -> bool {
    let Some((first, rest)) = toks.split_first() else {
        return t.is_empty();
    };
    match first {
        Tok::Lit(c) => t.first() == Some(c) && matches(rest, &t[1..]),
        Tok::Any => t.first().is_some_and(|&b| b != b'/') && matches(rest, &t[1..]),
        Tok::Class(r) => {
            t.first()
                .is_some_and(|&b| b != b'/' && r.iter().any(|&(lo, hi)| (lo..=hi).contains(&b)))
                && matches(rest, &t[1..])
        }
        Tok::Star => {
            let max = t.iter().position(|&b| b == b'/').unwrap_or(t.len());
            (0..=max).any(|n| matches(rest, &t[n..]))
        }
        Tok::StarStar => (0..=t.len()).any(|n| matches(rest, &t[n..])),
        Tok::Pid => {
            let digits = t.iter().take_while(|b| b.is_ascii_digit()).count().min(7);
            t.first().is_some_and(|&b| b != b'0') && (1..=digits).any(|n| matches(rest, &t[n..]))
        }
        Tok::Alt(alts) => alts.iter().any(|a| {
            let mut joined = a.clone();
            joined.extend_from_slice(rest);
            matches(&joined, t)
        }),
    }
}

/// The file rules of a profile: `[owner ]PATH LETTERS,` lines, comments dropped.
fn file_rules(text: &str) -> Vec<TextRule> {
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        let line = line.strip_prefix("owner ").unwrap_or(line);
        let (path, rest) = if let Some(q) = line.strip_prefix('"') {
            let end = q.find('"').expect("closing quote");
            (&q[..end], &q[end + 1..])
        } else if line.starts_with('/') {
            line.split_at(line.find(' ').expect("letters"))
        } else {
            continue;
        };
        let letters = rest.trim_start().split(',').next().unwrap().to_string();
        out.push(TextRule {
            toks: parse(path.as_bytes()),
            letters,
        });
    }
    out
}

/// Whether some rule of `text` grants `letter` on `path` (`w` grants `a` too).
pub(super) fn allows(text: &str, path: &str, letter: char) -> bool {
    file_rules(text).iter().any(|r| {
        let grants = r.letters.contains(letter) || (letter == 'a' && r.letters.contains('w'));
        grants && matches(&r.toks, path.as_bytes())
    })
}

#[test]
fn the_matcher_itself() {
    let text = "  /a/b-[0-9]*.x rw,  # n\n  owner \"/s p\\x2a/@{pid}/{c,d}?\" r,\n  /t/** r,\n";
    let cases: &[(&str, char, bool)] = &[
        ("/a/b-1.x", 'w', true),
        ("/a/b-1.x", 'a', true),
        ("/a/b-.x", 'w', false),
        ("/a/b-1/.x", 'w', false),
        ("/a/b-1.x", 'k', false),
        ("/s p*/42/cZ", 'r', true),
        ("/s pX/42/cZ", 'r', false),
        ("/s p*/042/cZ", 'r', false),
        ("/s p*/42/eZ", 'r', false),
        ("/t/u/v/w", 'r', true),
        ("/t/u/v/w", 'w', false),
    ];
    for (path, letter, want) in cases {
        assert_eq!(allows(text, path, *letter), *want, "{path} {letter}");
    }
}
