//! Reading and writing recordings. The schema version is checked before the rest of the
//! document, so a recording from another profgen gets a version message rather than a
//! confusing "unknown field".

use std::{io::Write, path::Path};

use serde::Deserialize;

use super::{ModelError, Recording, SCHEMA_VERSION};
use crate::output::write_atomic_with;

/// Just enough of a recording to learn its version, whatever else it holds.
#[derive(Deserialize)]
#[serde(expecting = "a profgen recording (a JSON object)")]
struct VersionProbe {
    schema_version: Option<serde_json::Value>,
}

impl Recording {
    /// Reads and checks a recording written by `profgen record` (or [`Recording::save`]).
    pub fn load(path: impl AsRef<Path>) -> Result<Recording, ModelError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => ModelError::Missing { path: path.into() },
            _ => ModelError::Read {
                path: path.into(),
                source,
            },
        })?;
        Recording::from_json(path, &text)
    }

    /// Parses a recording; `path` only names it in errors.
    pub fn from_json(path: &Path, text: &str) -> Result<Recording, ModelError> {
        // The document is parsed once when it is a recording; only one that is not is read
        // again for its version, so a recording from another profgen gets a version message
        // rather than a confusing "unknown field" (a second pass over a recording of a
        // million files costs a good part of loading it).
        let parsed: Result<Recording, _> = serde_json::from_str(text);
        let version = match &parsed {
            Ok(rec) => serde_json::Value::from(rec.schema_version),
            Err(_) => {
                let probe: VersionProbe =
                    serde_json::from_str(text).map_err(|e| corrupt(path, &e))?;
                probe
                    .schema_version
                    .ok_or_else(|| ModelError::NoVersion { path: path.into() })?
            }
        };
        if version.as_u64() != Some(SCHEMA_VERSION.into()) {
            return Err(ModelError::UnsupportedVersion {
                path: path.into(),
                found: version.to_string(),
            });
        }
        parsed.map_err(|e| corrupt(path, &e))
    }

    /// The recording as written to disk: pretty JSON, cgroups sorted by path then id (maps
    /// and sets are sorted by construction), ending in a newline. Equal recordings give
    /// equal bytes.
    pub fn to_json(&self) -> Result<Vec<u8>, ModelError> {
        let mut bytes = Vec::new();
        self.write_json(&mut bytes).map_err(ModelError::Serialize)?;
        Ok(bytes)
    }

    /// Writes [`Recording::to_json`]'s bytes to `w` as they are made: the JSON of a recording
    /// of a million files is hundreds of megabytes, more than the recording in memory.
    pub fn write_json(&self, mut w: impl Write) -> Result<(), serde_json::Error> {
        let mut sorted;
        let rec = if self.cgroups_sorted() {
            self
        } else {
            sorted = self.clone();
            sorted.sort_cgroups();
            &sorted
        };
        serde_json::to_writer_pretty(&mut w, rec)?;
        w.write_all(b"\n").map_err(serde_json::Error::io)
    }

    /// Writes the recording atomically: a reader sees the old file or the new one, never
    /// half of one.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), ModelError> {
        write_atomic_with(path.as_ref(), |w| {
            self.write_json(w).map_err(std::io::Error::from)
        })?;
        Ok(())
    }

    fn cgroups_sorted(&self) -> bool {
        self.cgroups
            .windows(2)
            .all(|w| (&w[0].path, w[0].id) <= (&w[1].path, w[1].id))
    }

    pub(super) fn sort_cgroups(&mut self) {
        self.cgroups
            .sort_by(|a, b| (&a.path, a.id).cmp(&(&b.path, b.id)));
    }
}

fn corrupt(path: &Path, err: &serde_json::Error) -> ModelError {
    use serde_json::error::Category;
    let what = match err.classify() {
        Category::Eof => "ends early (truncated?)",
        Category::Syntax => "not valid JSON",
        Category::Data => "not a valid recording",
        Category::Io => "cannot read",
    };
    // serde_json appends " at line L column C"; the error carries them separately.
    let message = err.to_string();
    let message = match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message,
    };
    ModelError::Corrupt {
        path: path.into(),
        what,
        line: err.line(),
        column: err.column(),
        message,
    }
}
