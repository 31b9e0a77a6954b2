//! A rule's path: literal bytes and the globs the generalisation rules put in, and whether a
//! path matches it (so a rule can be kept from covering what failed while recording).

use super::escape;

pub(crate) const UUID_GLOB: &str =
    "[0-9a-fA-F]*-[0-9a-fA-F]*-[0-9a-fA-F]*-[0-9a-fA-F]*-[0-9a-fA-F]*";
pub(crate) const HEX_GLOB: &str = "[0-9a-fA-F]*";
pub(crate) const NUM_GLOB: &str = "[0-9]*";
/// `mkstemp`'s six random characters. `?` is one character other than `/`.
pub(crate) const MKSTEMP_GLOB: &str = "??????";

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Piece {
    Lit(Vec<u8>),
    Glob(&'static str),
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Pattern(pub Vec<Piece>);

impl Pattern {
    pub fn literal(bytes: &[u8]) -> Self {
        Pattern(vec![Piece::Lit(bytes.to_vec())])
    }

    /// The path for matching against `abstractions/base`: literal, or with only `@{pid}` /
    /// `@{tid}` globs (which base's matcher understands).
    pub fn base_text(&self) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        for p in &self.0 {
            match p {
                Piece::Lit(b) => out.extend_from_slice(b),
                Piece::Glob(g @ ("@{pid}" | "@{tid}")) => out.extend_from_slice(g.as_bytes()),
                Piece::Glob(_) => return None,
            }
        }
        Some(out)
    }

    /// The literal bytes with each glob as written: where a rule is, for checks on its
    /// directories.
    pub fn shape(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for p in &self.0 {
            match p {
                Piece::Lit(b) => out.extend_from_slice(b),
                Piece::Glob(g) => out.extend_from_slice(g.as_bytes()),
            }
        }
        out
    }

    /// Joins literal pieces that follow each other (`push_lit` never leaves any; a pattern
    /// built piece by piece may): a literal pattern is then one piece.
    pub fn join_literals(&mut self) {
        if !self
            .0
            .windows(2)
            .any(|w| matches!(w, [Piece::Lit(_), Piece::Lit(_)]))
        {
            return;
        }
        for piece in std::mem::take(&mut self.0) {
            match piece {
                Piece::Lit(b) => self.push_lit(&b),
                glob => self.0.push(glob),
            }
        }
    }

    /// Gives back what building the pattern piece by piece reserved (room for four pieces,
    /// twice a literal's length): the rule per file of a million-file recording keeps it.
    pub fn shrink_to_fit(&mut self) {
        self.0.shrink_to_fit();
        for piece in &mut self.0 {
            if let Piece::Lit(b) = piece {
                b.shrink_to_fit();
            }
        }
    }

    pub fn push_lit(&mut self, b: &[u8]) {
        if let Some(Piece::Lit(last)) = self.0.last_mut() {
            last.extend_from_slice(b);
        } else {
            self.0.push(Piece::Lit(b.to_vec()));
        }
    }

    pub fn render(&self) -> String {
        let mut quote = false;
        let mut s = String::new();
        for p in &self.0 {
            match p {
                Piece::Lit(b) => s.push_str(&escape::literal(b, &mut quote)),
                Piece::Glob(g) => s.push_str(g),
            }
        }
        if quote {
            format!("\"{s}\"")
        } else {
            s
        }
    }

    /// Whether AppArmor would apply this rule to `path`.
    pub fn matches(&self, path: &[u8]) -> bool {
        pieces_match(&self.0, path)
    }
}

fn pieces_match(pieces: &[Piece], text: &[u8]) -> bool {
    match pieces.split_first() {
        None => text.is_empty(),
        Some((Piece::Lit(l), rest)) => text.starts_with(l) && pieces_match(rest, &text[l.len()..]),
        Some((Piece::Glob(g), rest)) => (0..=text.len())
            .any(|n| glob_match(g.as_bytes(), &text[..n]) && pieces_match(rest, &text[n..])),
    }
}

/// AppArmor's globbing, for the globs this module writes: `*` (not `/`), `**` (anything),
/// `?` (one character, not `/`), `[a-z…]` (one character of the class), and `@{pid}` /
/// `@{tid}` (tunables/kernelvars: 1 to 7 digits, no leading zero).
fn glob_match(g: &[u8], text: &[u8]) -> bool {
    if let Some(rest) = g
        .strip_prefix(b"@{pid}")
        .or_else(|| g.strip_prefix(b"@{tid}"))
    {
        let digits = text
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count()
            .min(7);
        return text.first().is_some_and(|&b| b != b'0')
            && (1..=digits).any(|n| glob_match(rest, &text[n..]));
    }
    match g.first() {
        None => text.is_empty(),
        Some(b'*') if g.get(1) == Some(&b'*') => {
            (0..=text.len()).any(|n| glob_match(&g[2..], &text[n..]))
        }
        Some(b'*') => {
            let max = text.iter().position(|&b| b == b'/').unwrap_or(text.len());
            (0..=max).any(|n| glob_match(&g[1..], &text[n..]))
        }
        Some(b'?') => text.first().is_some_and(|&b| b != b'/') && glob_match(&g[1..], &text[1..]),
        Some(b'[') => {
            let Some(close) = g.iter().position(|&b| b == b']') else {
                return false;
            };
            let class = &g[1..close];
            let Some(&c) = text.first() else {
                return false;
            };
            let mut i = 0;
            let mut hit = false;
            while i < class.len() {
                if class.get(i + 1) == Some(&b'-') && i + 2 < class.len() {
                    hit |= (class[i]..=class[i + 2]).contains(&c);
                    i += 3;
                } else {
                    hit |= class[i] == c;
                    i += 1;
                }
            }
            hit && c != b'/' && glob_match(&g[close + 1..], &text[1..])
        }
        Some(&c) => text.first() == Some(&c) && glob_match(&g[1..], &text[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pat(pieces: &[&str]) -> Pattern {
        // A piece starting with `=` is literal text.
        Pattern(
            pieces
                .iter()
                .map(|p| match p.strip_prefix('=') {
                    Some(lit) => Piece::Lit(lit.as_bytes().to_vec()),
                    None => Piece::Glob(match *p {
                        "num" => NUM_GLOB,
                        "hex" => HEX_GLOB,
                        "uuid" => UUID_GLOB,
                        "mkstemp" => MKSTEMP_GLOB,
                        "pid" => "@{pid}",
                        "/*" => "/*",
                        "/**" => "/**",
                        other => panic!("{other}"),
                    }),
                })
                .collect(),
        )
    }

    #[test]
    fn matching() {
        let temp = pat(&["=/var/lib/redis/temp-", "num", "=.rdb"]);
        let stem = pat(&["=/tmp/x/sed", "mkstemp"]);
        let pid = pat(&["=/run/app/", "pid", "=/lock"]);
        let deep = pat(&["=/srv/site", "/**"]);
        let flat = pat(&["=/srv/site", "/*"]);
        let lit = pat(&["=/srv/a*b"]);
        let cases: &[(&Pattern, &str, bool)] = &[
            (&temp, "/var/lib/redis/temp-57.rdb", true),
            (&temp, "/var/lib/redis/temp-5x.rdb", true), // `*` after the digit: AppArmor's meaning
            (&temp, "/var/lib/redis/temp-.rdb", false),
            (&temp, "/var/lib/redis/temp-57.sh", false),
            (&temp, "/var/lib/redis/temp-5/../../x.rdb", false),
            (&stem, "/tmp/x/sedAb3De9", true),
            (&stem, "/tmp/x/sedAb3De", false),
            (&stem, "/tmp/x/sedAb/De9", false),
            (&pid, "/run/app/4242/lock", true),
            (&pid, "/run/app/0/lock", false),
            (&pid, "/run/app/12345678/lock", false),
            (&deep, "/srv/site/a/b/c", true),
            (&flat, "/srv/site/a/b", false),
            (&flat, "/srv/site/a", true),
            (&lit, "/srv/a*b", true),
            (&lit, "/srv/axb", false),
            (&pat(&["=/x/", "hex", "=.json"]), "/x/0f8c.json", true),
            (&pat(&["=/x/", "hex", "=.json"]), "/x/zz.json", false),
            (&pat(&["=/x/", "uuid"]), "/x/0f8c-1-2-3-4", true),
        ];
        for (p, path, want) in cases {
            assert_eq!(p.matches(path.as_bytes()), *want, "{} {path}", p.render());
        }
    }
}
