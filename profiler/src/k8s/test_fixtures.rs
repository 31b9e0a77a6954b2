//! Where the shared real-world captures live, for tests. They are read in place, never copied
//! into the repository. Missing captures skip a test with a printed reason, except under
//! `CI=true`, where a skip would hide a regression.

use std::path::PathBuf;

/// `$PROFGEN_FIXTURES`, else `<workspace>/../shared/fixtures`.
pub fn dir() -> Option<PathBuf> {
    let dir = std::env::var_os("PROFGEN_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures"));
    if dir.is_dir() {
        return Some(dir);
    }
    let reason = format!(
        "fixtures not found at {} (set PROFGEN_FIXTURES)",
        dir.display()
    );
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{reason}; CI=true, so this is a failure, not a skip");
    }
    eprintln!("skipped: {reason}");
    None
}

/// One fixture file's text, or `None` (skip) as [`dir`] decides.
pub fn read(rel: &str) -> Option<String> {
    let path = dir()?.join(rel);
    match std::fs::read_to_string(&path) {
        Ok(text) => Some(text),
        Err(e) => {
            let reason = format!("fixture {}: {e}", path.display());
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("{reason}");
            }
            eprintln!("skipped: {reason}");
            None
        }
    }
}
