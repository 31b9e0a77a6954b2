//! The rules of an AppArmor profile, as profgen writes them (and the common hand edits):
//! file rules with their letters, `capability`, `network`, includes; anything else is kept as
//! text.

use std::{collections::BTreeSet, fmt};

use super::glob::Glob;
use crate::model::FileOp;

/// File permission letters. `exec` holds the exec mode (`ix`, `px`, `Cx -> child`, …).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Letters {
    pub read: bool,
    pub write: bool,
    pub append: bool,
    pub link: bool,
    pub lock: bool,
    pub mmap: bool,
    pub exec: Option<String>,
}

impl Letters {
    /// Parses `rwk`, `mr`, `ix`, `Px`, … Unknown letters are an error.
    pub fn parse(text: &str) -> Result<Letters, String> {
        let mut l = Letters::default();
        let mut mode = String::new();
        for c in text.chars() {
            match c {
                'r' => l.read = true,
                'w' => l.write = true,
                'a' => l.append = true,
                'l' => l.link = true,
                'k' => l.lock = true,
                'm' => l.mmap = true,
                'i' | 'p' | 'u' | 'c' | 'P' | 'U' | 'C' => mode.push(c),
                'x' => {
                    mode.push('x');
                    l.exec = Some(std::mem::take(&mut mode));
                }
                _ => return Err(format!("unknown permission letter {c:?} in {text:?}")),
            }
        }
        if !mode.is_empty() {
            return Err(format!("exec mode without `x` in {text:?}"));
        }
        if l == Letters::default() {
            return Err("no permission letters".into());
        }
        Ok(l)
    }

    /// What the recorded operations need, with the synthesizer's own mapping (`ix` for an
    /// exec: any exec mode grants it).
    pub fn needed_by<'a>(ops: impl IntoIterator<Item = &'a FileOp>) -> Letters {
        let p = crate::synth::apparmor::rules::Perms::from_ops(ops);
        Letters {
            read: p.read,
            write: p.write,
            append: p.append,
            link: p.link,
            lock: p.lock,
            mmap: p.mmap,
            exec: p.exec.then(|| "ix".to_owned()),
        }
    }

    pub fn union(&self, o: &Letters) -> Letters {
        Letters {
            read: self.read || o.read,
            write: self.write || o.write,
            append: self.append || o.append,
            link: self.link || o.link,
            lock: self.lock || o.lock,
            mmap: self.mmap || o.mmap,
            exec: self.exec.clone().or_else(|| o.exec.clone()),
        }
    }

    /// Whether these letters grant everything `need` asks for. `w` grants `a`; an exec is
    /// granted only by the same exec mode (`ix` is not `ux`).
    pub fn grants(&self, need: &Letters) -> bool {
        self.missing(need, true).is_empty()
    }

    /// The letters of `need` these do not grant. `exact_exec`: an exec mode must match
    /// (comparing rules); otherwise any exec mode grants an exec (checking an access).
    pub fn missing(&self, need: &Letters, exact_exec: bool) -> String {
        let mut out = String::new();
        for (want, have, c) in [
            (need.read, self.read, 'r'),
            (need.write, self.write, 'w'),
            (need.append, self.append || self.write, 'a'),
            (need.link, self.link, 'l'),
            (need.lock, self.lock, 'k'),
            (need.mmap, self.mmap, 'm'),
        ] {
            if want && !have {
                out.push(c);
            }
        }
        if let Some(mode) = &need.exec {
            let ok = match &self.exec {
                None => false,
                Some(have) => !exact_exec || have == mode,
            };
            if !ok {
                out.push_str(mode);
            }
        }
        out
    }

    /// Removes what a `deny` rule's letters take away.
    pub fn without(&self, deny: &Letters) -> Letters {
        Letters {
            read: self.read && !deny.read,
            write: self.write && !deny.write,
            append: self.append && !deny.append && !deny.write,
            link: self.link && !deny.link,
            lock: self.lock && !deny.lock,
            mmap: self.mmap && !deny.mmap,
            exec: if deny.exec.is_some() {
                None
            } else {
                self.exec.clone()
            },
        }
    }
}

impl fmt::Display for Letters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (on, c) in [
            (self.read, 'r'),
            (self.write, 'w'),
            (self.append, 'a'),
            (self.link, 'l'),
            (self.lock, 'k'),
            (self.mmap, 'm'),
        ] {
            if on {
                write!(f, "{c}")?;
            }
        }
        if let Some(x) = &self.exec {
            f.write_str(x)?;
        }
        Ok(())
    }
}

/// `[audit] [deny] [owner] PATH LETTERS [-> TARGET],`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileRule {
    pub deny: bool,
    pub owner: bool,
    pub path: Glob,
    pub letters: Letters,
}

impl fmt::Display for FileRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.deny {
            f.write_str("deny ")?;
        }
        if self.owner {
            f.write_str("owner ")?;
        }
        write!(f, "{} {}", self.path, self.letters)
    }
}

/// `network [FAMILY] [TYPE],`; `None` is "any".
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct NetworkRule {
    pub family: Option<String>,
    pub kind: Option<String>,
}

impl NetworkRule {
    pub fn covers(&self, o: &NetworkRule) -> bool {
        let part = |a: &Option<String>, b: &Option<String>| a.is_none() || a == b;
        part(&self.family, &o.family) && part(&self.kind, &o.kind)
    }
}

impl fmt::Display for NetworkRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("network")?;
        for part in [&self.family, &self.kind].into_iter().flatten() {
            write!(f, " {part}")?;
        }
        Ok(())
    }
}

/// `capability,` (every one) or a set of names, lower case without `cap_`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Capabilities {
    pub all: bool,
    pub names: BTreeSet<String>,
}

impl Capabilities {
    pub fn allows(&self, name: &str) -> bool {
        self.all || self.names.contains(&normalize_capability(name))
    }
}

/// `CAP_NET_ADMIN`, `NET_ADMIN`, `net_admin` → `net_admin`.
pub fn normalize_capability(name: &str) -> String {
    let n = name.trim().to_ascii_lowercase();
    n.strip_prefix("cap_").unwrap_or(&n).to_owned()
}
