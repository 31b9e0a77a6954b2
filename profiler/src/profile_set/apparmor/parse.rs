//! Profile text into a [`Profile`]: line by line, as profgen writes one rule a line.

use super::{
    glob::Glob,
    rules::{normalize_capability, FileRule, Letters, NetworkRule},
    Profile,
};

const SOCKET_TYPES: &[&str] = &["stream", "dgram", "seqpacket", "rdm", "raw", "packet"];

/// Where the text stops making sense, for a one-line error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

enum State {
    Preamble,
    Inside,
    Done,
}

/// Parses a file holding one profile.
pub fn parse(text: &str) -> Result<Profile, ParseError> {
    let mut profile = Profile::default();
    let mut state = State::Preamble;
    for (i, raw) in text.lines().enumerate() {
        let err = |message: String| ParseError {
            line: i + 1,
            message,
        };
        let line = strip_comment(raw).trim();
        if line.is_empty() {
            continue;
        }
        let include = include_target(line);
        match state {
            State::Preamble | State::Done if include.is_some() => {}
            State::Preamble | State::Done
                if line.starts_with("abi ") || line.starts_with("alias ") => {}
            State::Preamble | State::Done if line.starts_with("@{") => {}
            State::Preamble => {
                let Some(header) = line.strip_suffix('{') else {
                    return Err(err(format!("expected a profile header, found {line:?}")));
                };
                header_into(header.trim(), &mut profile).map_err(err)?;
                state = State::Inside;
            }
            State::Done => {
                return Err(err(
                    "a second profile: profgen reads files of one profile".into()
                ))
            }
            State::Inside if line == "}" => state = State::Done,
            State::Inside if line.ends_with('{') => {
                return Err(err("nested profiles and hats are not supported".into()))
            }
            State::Inside => match include {
                Some(target) => {
                    profile.includes.insert(target);
                }
                None => {
                    let Some(rule) = line.strip_suffix(',') else {
                        return Err(err(format!("a rule must end with `,`: {line:?}")));
                    };
                    rule_into(rule.trim(), &mut profile).map_err(err)?;
                }
            },
        }
    }
    match state {
        State::Done => Ok(profile),
        State::Preamble => Err(ParseError {
            line: text.lines().count(),
            message: "no profile in it".into(),
        }),
        State::Inside => Err(ParseError {
            line: text.lines().count(),
            message: "the profile has no closing `}`".into(),
        }),
    }
}

/// The line without its comment: `#` at the start (but `#include`) or after a blank,
/// outside quotes.
fn strip_comment(line: &str) -> &str {
    let t = line.trim_start();
    if t.starts_with("#include") {
        return line;
    }
    let bytes = line.as_bytes();
    let mut quoted = false;
    let mut escaped = false;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' => escaped = true,
            b'"' => quoted = !quoted,
            b'#' if !quoted && (i == 0 || bytes[i - 1].is_ascii_whitespace()) => return &line[..i],
            _ => {}
        }
    }
    line
}

/// `#include <x>`, `include <x>`, `include if exists "x"` → `x`.
fn include_target(line: &str) -> Option<String> {
    let rest = line
        .strip_prefix("#include")
        .or_else(|| line.strip_prefix("include"))?
        .trim_start();
    let rest = rest.strip_prefix("if exists").unwrap_or(rest).trim();
    let inner = rest
        .strip_prefix('<')
        .and_then(|r| r.strip_suffix('>'))
        .or_else(|| rest.strip_prefix('"').and_then(|r| r.strip_suffix('"')))?;
    Some(inner.to_owned())
}

/// `profile NAME [ATTACHMENT] [flags=(…)]` or `/attach/path [flags=(…)]`.
fn header_into(header: &str, profile: &mut Profile) -> Result<(), String> {
    let (head, flags) = match header.find('(') {
        Some(open) => {
            let close = header[open..]
                .find(')')
                .map(|c| open + c)
                .ok_or("profile flags without `)`")?;
            (
                header[..open].trim().trim_end_matches("flags=").trim(),
                &header[open + 1..close],
            )
        }
        None => (header, ""),
    };
    profile.flags = flags
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|f| !f.is_empty())
        .map(str::to_owned)
        .collect();
    let tokens = tokens(head)?;
    let name = match tokens.as_slice() {
        [kw, name, ..] if kw == "profile" => name,
        [name, ..] if name != "profile" => name,
        _ => return Err(format!("a profile header without a name: {header:?}")),
    };
    profile.name = unquote(name).to_owned();
    Ok(())
}

fn unquote(s: &str) -> &str {
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s)
}

/// Whitespace-separated, a quoted string being one token.
fn tokens(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            cur.push(c);
            escaped = false;
            continue;
        }
        match c {
            '\\' => {
                cur.push(c);
                escaped = true;
            }
            '"' => {
                cur.push(c);
                quoted = !quoted;
            }
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if quoted {
        return Err(format!("unterminated quote in {s:?}"));
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    Ok(out)
}

fn is_path(token: &str) -> bool {
    token.starts_with('/')
        || token.starts_with("\"/")
        || token.starts_with('@')
        || token.starts_with("\"@")
}

fn rule_into(rule: &str, profile: &mut Profile) -> Result<(), String> {
    let toks = tokens(rule)?;
    let (mut deny, mut owner) = (false, false);
    let mut rest: &[String] = &toks;
    while let Some((first, tail)) = rest.split_first() {
        match first.as_str() {
            "audit" | "allow" => {}
            "deny" => deny = true,
            "owner" => owner = true,
            _ => break,
        }
        rest = tail;
    }
    let keep_text = |profile: &mut Profile| {
        profile.other.insert(toks.join(" "));
    };
    let Some((kind, args)) = rest.split_first() else {
        return Err(format!("an empty rule: {rule:?}"));
    };
    match kind.as_str() {
        "capability" if !owner => {
            let caps = if deny {
                &mut profile.denied_capabilities
            } else {
                &mut profile.capabilities
            };
            if args.is_empty() {
                caps.all = true;
            }
            caps.names
                .extend(args.iter().map(|a| normalize_capability(a)));
        }
        "network" if !owner && args.len() <= 2 => {
            let mut r = NetworkRule {
                family: None,
                kind: None,
            };
            for a in args {
                let a = a.to_ascii_lowercase();
                if SOCKET_TYPES.contains(&a.as_str()) {
                    r.kind = Some(a);
                } else if r.family.is_none() && r.kind.is_none() {
                    r.family = Some(a);
                } else {
                    keep_text(profile);
                    return Ok(());
                }
            }
            if deny {
                profile.denied_network.push(r);
            } else {
                profile.network.push(r);
            }
        }
        _ => {
            let file_args = if kind == "file" { args } else { rest };
            match file_rule(file_args, deny, owner)? {
                Some(r) => profile.files.push(r),
                None => keep_text(profile),
            }
        }
    }
    Ok(())
}

/// `PATH LETTERS [-> TARGET]` or `LETTERS PATH [-> TARGET]`; `None` when it is not a file
/// rule.
fn file_rule(args: &[String], deny: bool, owner: bool) -> Result<Option<FileRule>, String> {
    let (main, target) = match args.iter().position(|a| a == "->") {
        Some(i) => (&args[..i], args.get(i + 1..).map(|t| t.join(" "))),
        None => (args, None),
    };
    let (path, letters) = match main {
        [a, b] if is_path(a) => (a, b),
        [a, b] if is_path(b) => (b, a),
        _ => return Ok(None),
    };
    let path = Glob::parse(unquote(path)).map_err(|e| e.to_string())?;
    let mut letters = Letters::parse(letters)?;
    if let (Some(mode), Some(t)) = (&mut letters.exec, target) {
        mode.push_str(" -> ");
        mode.push_str(&t);
    }
    Ok(Some(FileRule {
        deny,
        owner,
        path,
        letters,
    }))
}
