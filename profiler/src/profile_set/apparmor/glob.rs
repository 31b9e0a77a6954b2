//! AppArmor path globs: matching a path, and deciding whether one glob matches every path
//! another can match.
//!
//! Semantics (apparmor.d(5) and the parser's `parse_regex.cc`):
//! * `*` matches any bytes but `/`; `**` any bytes, `/` included.
//! * A `*` or `**` that is a whole path component (`/dir/*`, `/dir/**`, `/*/x`) matches at
//!   least one byte, the first not `/`: `/dir/*` and `/dir/**` do not match `/dir/`.
//! * `?` one byte but `/`; `[abc]`, `[a-z]`, `[^…]` one byte of (not of) the class.
//! * `{a,b}` alternation (nestable, alternatives may be empty).
//! * `@{pid}` / `@{tid}`: a number without a leading zero (tunables/kernelvars);
//!   `@{PROC}` and `@{sys}` are `/proc/` and `/sys/`. Other variables are not expanded: a
//!   glob holding one matches nothing, so nothing is granted on a guess.
//! * `\xHH`, `\NNN` (octal), `\c`: the literal byte (an escaped glob character is literal).

/// Most alternatives an inclusion check expands a glob into; past it the answer is "not
/// covered", which is the safe answer.
const MAX_EXPANSIONS: usize = 256;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    Lit(u8),
    /// `*` (`cross` false) or `**`. `component`: the whole path component, so at least one
    /// byte that is not `/`.
    Star {
        cross: bool,
        component: bool,
    },
    /// `?`
    Any,
    /// `[…]`, as the set of bytes it matches.
    Class(Box<[bool; 256]>),
    Alt(Vec<Vec<Tok>>),
    /// `@{pid}`, `@{tid}`.
    Pid,
    /// A variable this matcher does not expand.
    Unknown,
}

/// A parsed AppArmor path glob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Glob {
    text: String,
    toks: Vec<Tok>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("glob {glob:?}: {message}")]
pub struct GlobError {
    pub glob: String,
    pub message: String,
}

impl Glob {
    /// Parses a rule's path as written in the profile, without its quotes.
    pub fn parse(text: &str) -> Result<Glob, GlobError> {
        let err = |message: &str| GlobError {
            glob: text.to_owned(),
            message: message.to_owned(),
        };
        let mut p = Parser {
            s: text.as_bytes(),
            i: 0,
        };
        let toks = p.seq(false).map_err(err)?;
        if p.i != p.s.len() {
            return Err(err("unbalanced `}`"));
        }
        Ok(Glob {
            text: text.to_owned(),
            toks,
        })
    }

    /// The glob as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The bytes, when the glob is a plain path.
    pub fn literal(&self) -> Option<Vec<u8>> {
        self.toks
            .iter()
            .map(|t| match t {
                Tok::Lit(b) => Some(*b),
                _ => None,
            })
            .collect()
    }

    /// Whether the glob matches `path`.
    pub fn matches(&self, path: &[u8]) -> bool {
        matches(&self.toks, path)
    }

    /// Whether every path `narrower` matches is matched by `self`. Conservative: `false` when
    /// it cannot tell.
    pub fn covers(&self, narrower: &Glob) -> bool {
        if self.text == narrower.text && !self.toks.contains(&Tok::Unknown) {
            return true;
        }
        if let Some(lit) = narrower.literal() {
            return self.matches(&lit);
        }
        let Some(alternatives) = expand(&narrower.toks) else {
            return false;
        };
        alternatives.iter().all(|q| {
            if let Some(lit) = literal(q) {
                self.matches(&lit)
            } else {
                includes(&self.toks, q)
            }
        })
    }
}

impl std::fmt::Display for Glob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    /// A sequence, up to the end, or to `,`/`}` inside an alternation.
    fn seq(&mut self, in_alt: bool) -> Result<Vec<Tok>, &'static str> {
        let mut out = Vec::new();
        while let Some(c) = self.peek() {
            match c {
                b',' | b'}' if in_alt => break,
                b'}' => return Err("unbalanced `}`"),
                b'*' => {
                    let mut n = 0;
                    while self.peek() == Some(b'*') {
                        n += 1;
                        self.i += 1;
                    }
                    out.push(Tok::Star {
                        cross: n > 1,
                        component: false,
                    });
                }
                b'?' => {
                    self.i += 1;
                    out.push(Tok::Any);
                }
                b'[' => {
                    self.i += 1;
                    out.push(self.class()?);
                }
                b'{' => {
                    self.i += 1;
                    let mut alts = vec![self.seq(true)?];
                    loop {
                        match self.peek() {
                            Some(b',') => {
                                self.i += 1;
                                alts.push(self.seq(true)?);
                            }
                            Some(b'}') => {
                                self.i += 1;
                                break;
                            }
                            _ => return Err("unbalanced `{`"),
                        }
                    }
                    out.push(Tok::Alt(alts));
                }
                b'@' if self.s.get(self.i + 1) == Some(&b'{') => {
                    let rest = &self.s[self.i + 2..];
                    let end = rest
                        .iter()
                        .position(|&b| b == b'}')
                        .ok_or("unterminated variable")?;
                    let name = &rest[..end];
                    self.i += end + 3;
                    match name {
                        b"pid" | b"tid" => out.push(Tok::Pid),
                        b"PROC" => out.extend(b"/proc/".iter().map(|&b| Tok::Lit(b))),
                        b"sys" => out.extend(b"/sys/".iter().map(|&b| Tok::Lit(b))),
                        _ => out.push(Tok::Unknown),
                    }
                }
                b'\\' => {
                    self.i += 1;
                    let b = self.escape()?;
                    out.push(Tok::Lit(b));
                }
                _ => {
                    self.i += 1;
                    out.push(Tok::Lit(c));
                }
            }
        }
        if in_alt && self.peek().is_none() {
            return Err("unbalanced `{`");
        }
        Ok(mark_components(collapse_slashes(out), !in_alt))
    }

    fn escape(&mut self) -> Result<u8, &'static str> {
        let c = self.peek().ok_or("trailing `\\`")?;
        let hex = |b: &[u8]| {
            std::str::from_utf8(b)
                .ok()
                .and_then(|s| u8::from_str_radix(s, 16).ok())
        };
        let oct = |b: &[u8]| {
            std::str::from_utf8(b)
                .ok()
                .and_then(|s| u8::from_str_radix(s, 8).ok())
        };
        match c {
            b'x' => {
                let v = self
                    .s
                    .get(self.i + 1..self.i + 3)
                    .and_then(hex)
                    .ok_or("bad `\\x` escape")?;
                self.i += 3;
                Ok(v)
            }
            b'0'..=b'7' => {
                let v = self
                    .s
                    .get(self.i..self.i + 3)
                    .and_then(oct)
                    .ok_or("bad octal escape")?;
                self.i += 3;
                Ok(v)
            }
            b'n' => {
                self.i += 1;
                Ok(b'\n')
            }
            b't' => {
                self.i += 1;
                Ok(b'\t')
            }
            b'r' => {
                self.i += 1;
                Ok(b'\r')
            }
            _ => {
                self.i += 1;
                Ok(c)
            }
        }
    }

    /// After `[`: the class up to `]`.
    fn class(&mut self) -> Result<Tok, &'static str> {
        let mut set = Box::new([false; 256]);
        let negated = self.peek() == Some(b'^');
        if negated {
            self.i += 1;
        }
        let mut first = true;
        loop {
            let c = self.peek().ok_or("unterminated `[`")?;
            if c == b']' && !first {
                self.i += 1;
                break;
            }
            first = false;
            self.i += 1;
            let lo = if c == b'\\' { self.escape()? } else { c };
            let hi = if self.peek() == Some(b'-') && self.s.get(self.i + 1) != Some(&b']') {
                self.i += 1;
                let c = self.peek().ok_or("unterminated `[`")?;
                self.i += 1;
                if c == b'\\' {
                    self.escape()?
                } else {
                    c
                }
            } else {
                lo
            };
            if hi < lo {
                return Err("reversed range in `[…]`");
            }
            for b in lo..=hi {
                set[usize::from(b)] = true;
            }
        }
        if negated {
            for v in set.iter_mut() {
                *v = !*v;
            }
        }
        Ok(Tok::Class(set))
    }
}

/// The parser turns `//` into `/`; so does this, within one sequence.
fn collapse_slashes(toks: Vec<Tok>) -> Vec<Tok> {
    let mut out: Vec<Tok> = Vec::with_capacity(toks.len());
    for t in toks {
        if t == Tok::Lit(b'/') && out.last() == Some(&Tok::Lit(b'/')) {
            continue;
        }
        out.push(t);
    }
    out
}

/// Marks the stars that are a whole path component, as the parser decides it from the
/// source text: right after `/` and right before `/` or the end of the glob (the start or
/// end of an alternative does not count).
fn mark_components(mut toks: Vec<Tok>, end_counts: bool) -> Vec<Tok> {
    for i in 0..toks.len() {
        let before = i > 0 && toks[i - 1] == Tok::Lit(b'/');
        let after = match toks.get(i + 1) {
            None => end_counts,
            Some(t) => *t == Tok::Lit(b'/'),
        };
        if let Tok::Star { component, .. } = &mut toks[i] {
            *component = before && after;
        }
    }
    toks
}

fn never_slash(t: &Tok) -> bool {
    match t {
        Tok::Lit(b) => *b != b'/',
        Tok::Any | Tok::Pid => true,
        Tok::Class(set) => !set[usize::from(b'/')],
        Tok::Star { cross, .. } => !cross,
        Tok::Alt(_) | Tok::Unknown => false,
    }
}

fn matches(toks: &[Tok], text: &[u8]) -> bool {
    let Some((first, rest)) = toks.split_first() else {
        return text.is_empty();
    };
    match first {
        Tok::Lit(b) => text.first() == Some(b) && matches(rest, &text[1..]),
        Tok::Any => text.first().is_some_and(|&b| b != b'/') && matches(rest, &text[1..]),
        Tok::Class(set) => {
            text.first().is_some_and(|&b| set[usize::from(b)]) && matches(rest, &text[1..])
        }
        Tok::Star { cross, component } => {
            let max = if *cross {
                text.len()
            } else {
                text.iter().position(|&b| b == b'/').unwrap_or(text.len())
            };
            let min = usize::from(*component);
            if *component && text.first().is_none_or(|&b| b == b'/') {
                return false;
            }
            (min..=max).any(|n| matches(rest, &text[n..]))
        }
        Tok::Pid => {
            if text.first().is_none_or(|b| !(b'1'..=b'9').contains(b)) {
                return false;
            }
            let digits = text
                .iter()
                .take(10)
                .take_while(|b| b.is_ascii_digit())
                .count();
            (1..=digits).any(|n| matches(rest, &text[n..]))
        }
        Tok::Alt(alts) => alts.iter().any(|alt| {
            let mut joined = alt.clone();
            joined.extend_from_slice(rest);
            matches(&joined, text)
        }),
        Tok::Unknown => false,
    }
}

/// The alternation-free sequences a glob stands for, or `None` past [`MAX_EXPANSIONS`].
fn expand(toks: &[Tok]) -> Option<Vec<Vec<Tok>>> {
    let mut out: Vec<Vec<Tok>> = vec![Vec::new()];
    for t in toks {
        match t {
            Tok::Alt(alts) => {
                let mut options = Vec::new();
                for alt in alts {
                    options.extend(expand(alt)?);
                }
                let mut next = Vec::new();
                for prefix in &out {
                    for o in &options {
                        let mut s = prefix.clone();
                        s.extend(o.iter().cloned());
                        next.push(s);
                    }
                }
                if next.len() > MAX_EXPANSIONS {
                    return None;
                }
                out = next;
            }
            other => out.iter_mut().for_each(|s| s.push(other.clone())),
        }
    }
    // Joining alternatives can put two `/` side by side; stars keep the meaning the parser
    // gave them in the source.
    Some(out.into_iter().map(collapse_slashes).collect())
}

fn literal(toks: &[Tok]) -> Option<Vec<u8>> {
    toks.iter()
        .map(|t| match t {
            Tok::Lit(b) => Some(*b),
            _ => None,
        })
        .collect()
}

/// Whether the glob `q` can produce no string, or only strings starting with a byte that is
/// not `/` and at least one byte long.
fn nonempty_without_leading_slash(q: &[Tok]) -> bool {
    for t in q {
        match t {
            Tok::Star {
                cross: false,
                component: false,
            } => continue, // may be empty: the next token decides
            Tok::Star {
                component: true, ..
            } => return true,
            t => return never_slash(t) && !matches!(t, Tok::Star { .. }),
        }
    }
    false
}

/// Whether every string of the alternation-free `q` is matched by `p` (conservative).
fn includes(p: &[Tok], q: &[Tok]) -> bool {
    let Some((first, rest)) = p.split_first() else {
        return q.is_empty();
    };
    match first {
        Tok::Lit(b) => q.first() == Some(&Tok::Lit(*b)) && includes(rest, &q[1..]),
        Tok::Any => {
            q.first().is_some_and(|t| {
                matches!(t, Tok::Lit(_) | Tok::Any | Tok::Class(_)) && never_slash(t)
            }) && includes(rest, &q[1..])
        }
        Tok::Class(set) => {
            let ok = match q.first() {
                Some(Tok::Lit(b)) => set[usize::from(*b)],
                Some(Tok::Class(sub)) => (0..256).all(|i| !sub[i] || set[i]),
                _ => false,
            };
            ok && includes(rest, &q[1..])
        }
        Tok::Pid => match q.first() {
            Some(Tok::Pid) => includes(rest, &q[1..]),
            _ => {
                let digits = q
                    .iter()
                    .take(10)
                    .take_while(|t| matches!(t, Tok::Lit(b) if b.is_ascii_digit()))
                    .count();
                q.first() != Some(&Tok::Lit(b'0')) && (1..=digits).any(|n| includes(rest, &q[n..]))
            }
        },
        Tok::Star { cross, component } => {
            // The star absorbs a prefix of q; every string that prefix makes must be one the
            // star matches.
            let max = if *cross {
                q.len()
            } else {
                q.iter().take_while(|t| never_slash(t)).count()
            };
            (0..=max).any(|n| {
                (!*component || nonempty_without_leading_slash(&q[..n])) && includes(rest, &q[n..])
            })
        }
        Tok::Alt(alts) => alts.iter().any(|alt| {
            let mut joined = alt.clone();
            joined.extend_from_slice(rest);
            includes(&joined, q)
        }),
        Tok::Unknown => false,
    }
}

#[cfg(test)]
#[path = "glob_tests.rs"]
mod tests;
