//! Where the shared real-world captures live, for tests. They are read in place, never copied
//! into the repository. Missing captures skip a test with a printed reason, except under
//! `CI=true`, where a skip would hide a regression.

use std::path::PathBuf;

/// `$PROFGEN_FIXTURES`, else `<workspace>/../shared/fixtures`, else the workplace's
/// `/work/shared/fixtures` (a clone elsewhere, as CI makes, still finds them).
pub fn dir() -> Option<PathBuf> {
    let candidates: Vec<PathBuf> = match std::env::var_os("PROFGEN_FIXTURES") {
        Some(dir) => vec![PathBuf::from(dir)],
        None => vec![
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures"),
            PathBuf::from("/work/shared/fixtures"),
        ],
    };
    if let Some(dir) = candidates.iter().find(|d| d.is_dir()) {
        return Some(dir.clone());
    }
    let dir = &candidates[0];
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
