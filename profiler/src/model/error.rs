//! Errors reading, writing and merging recordings. Each message is one line that names the
//! file and says what to do.

use std::path::PathBuf;

use crate::output::OutputError;

use super::SCHEMA_VERSION;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{}: no such file (write one with `profgen record`)", path.display())]
    Missing { path: PathBuf },

    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{}: line {line}, column {column}: {what}: {message}", path.display())]
    Corrupt {
        path: PathBuf,
        /// What kind of damage: "not valid JSON", "not a valid recording", "ends early".
        what: &'static str,
        line: usize,
        column: usize,
        message: String,
    },

    #[error("{}: no schema_version; not a profgen recording", path.display())]
    NoVersion { path: PathBuf },

    #[error(
        "{}: schema_version {found} is not supported (this profgen reads {SCHEMA_VERSION}); re-record or upgrade profgen",
        path.display()
    )]
    UnsupportedVersion { path: PathBuf, found: String },

    #[error(transparent)]
    Write(#[from] OutputError),

    #[error("cannot serialize the recording: {0}")]
    Serialize(#[source] serde_json::Error),

    #[error("nothing to merge: no recordings given")]
    MergeNothing,

    #[error(
        "cannot merge recordings of different machines ({first} and {other}): syscall names differ per architecture"
    )]
    MergeMachines { first: String, other: String },
}
