//! `apparmor_parser -Q -K`: compile a profile with the real parser without loading it (no
//! AppArmor kernel needed) and without touching the cache.

use std::{io::Write as _, path::Path, process::Command};

#[derive(Debug, thiserror::Error)]
pub enum ParserError {
    /// The parser is not installed: the caller decides whether that skips or fails.
    #[error("apparmor_parser not found ({0}); install Debian's `apparmor` package")]
    Absent(String),
    #[error("apparmor_parser rejected the profile: {stderr}")]
    Rejected { stderr: String },
    #[error("cannot run apparmor_parser: {0}")]
    Io(#[from] std::io::Error),
}

pub const PARSER: &str = "/usr/sbin/apparmor_parser";

/// The parser binary, from `PATH` or Debian's location.
pub fn parser_path() -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("apparmor_parser"))
        .chain([Path::new(PARSER).to_path_buf()])
        .find(|p| p.is_file())
}

/// Compiles `text` with `apparmor_parser -Q -K`, resolving includes from `/etc/apparmor.d`.
pub fn check(text: &str) -> Result<(), ParserError> {
    let parser = parser_path().ok_or_else(|| ParserError::Absent("not on PATH".into()))?;
    let mut file = tempfile::NamedTempFile::new()?;
    file.write_all(text.as_bytes())?;
    file.flush()?;
    let out = Command::new(parser)
        .args(["-Q", "-K", "--quiet"])
        .arg(file.path())
        .output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(ParserError::Rejected {
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}
