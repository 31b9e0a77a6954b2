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
            stderr: reasons(&String::from_utf8_lossy(&out.stderr)),
        })
    }
}

/// The parser's error lines, on one line: its warnings (a missing cache interface, a feature
/// the kernel lacks) are dropped, so the reason is not hidden behind them. All of stderr when
/// every line is a warning.
fn reasons(stderr: &str) -> String {
    let is_warning = |l: &str| {
        l.starts_with("Cache read/write disabled")
            || l.starts_with("Warning")
            || l.contains("Warning from")
            || l.trim().is_empty()
    };
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| !is_warning(l))
        .map(str::trim)
        .collect();
    if errors.is_empty() {
        stderr
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; ")
    } else {
        errors.join("; ")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_reason_comes_before_the_warnings() {
        let stderr = "Cache read/write disabled: interface file missing. (Kernel needs AppArmor 2.4 compatibility patch.)\n\
            Warning: unable to find a suitable fs in /proc/mounts, is it mounted?\n\
            AppArmor parser error for /tmp/x in profile /tmp/x at line 9: Exceeded maximum number of states\n";
        assert_eq!(
            super::reasons(stderr),
            "AppArmor parser error for /tmp/x in profile /tmp/x at line 9: Exceeded maximum number of states"
        );
        assert_eq!(super::reasons("Warning: only this\n"), "Warning: only this");
    }
}
