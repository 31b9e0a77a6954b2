//! The real-world captures the tests read: `tests/fixtures/` of this repository (Kubernetes API
//! replies and container cgroup paths from public repositories; provenance and licences in
//! `tests/fixtures/SOURCES.md`).

use std::path::PathBuf;

/// `<workspace>/tests/fixtures`.
pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

/// One fixture file's text. A missing fixture is a broken checkout, so it fails the test.
pub fn read(rel: &str) -> String {
    let path = dir().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "fixture {}: {e} (a checkout of the whole repository has it)",
            path.display()
        )
    })
}
