//! Test-only: which paths a rendered profile allows, read back from its text by the profile
//! reader of `profile_set` (AppArmor's globbing: `*`, `**`, `?`, `[…]`, `{a,b}`, `@{pid}`),
//! independent of the code that wrote the globs. Only the profile's own rules count, not
//! what `abstractions/base` adds.

use crate::profile_set::apparmor::{parse, Letters};

/// Whether some rule of the profile `text` grants `letter` on `path` (`w` grants `a` too).
pub(super) fn allows(text: &str, path: &str, letter: char) -> bool {
    let profile = parse(text).unwrap_or_else(|e| panic!("the profile does not parse: {e}\n{text}"));
    profile
        .files
        .iter()
        .filter(|r| !r.deny && r.path.matches(path.as_bytes()))
        .any(|r| grants(&r.letters, letter))
}

fn grants(l: &Letters, letter: char) -> bool {
    match letter {
        'r' => l.read,
        'w' => l.write,
        'a' => l.append || l.write,
        'l' => l.link,
        'k' => l.lock,
        'm' => l.mmap,
        'x' => l.exec.is_some(),
        other => panic!("unknown letter {other:?}"),
    }
}
