//! Running a host command with a deadline and capturing what it printed.
//!
//! Output goes to anonymous temporary files rather than pipes: a command that prints more than
//! a pipe buffer holds cannot block on us, and we need no reader threads.

use std::{
    fs::File,
    io::{self, Read, Seek},
    os::unix::process::{CommandExt, ExitStatusExt},
    process::{Command, ExitStatus, Stdio},
    thread,
    time::{Duration, Instant},
};

/// What a finished (or killed) command left behind.
#[derive(Clone, Debug)]
pub struct Captured {
    /// `None` when the deadline passed and the command was killed.
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

impl Captured {
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// "exit 3", "signal 9", or "timed out".
    pub fn describe(&self) -> String {
        self.status.map_or_else(|| "timed out".into(), describe)
    }
}

/// "exit 3" or "signal 9".
pub fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit {code}"),
        (None, Some(sig)) => format!("signal {sig}"),
        (None, None) => status.to_string(),
    }
}

/// Runs `cmd` with stdin closed, killing its whole process group once `timeout` has passed.
/// Errors only when the command cannot be started or its output cannot be read back.
pub fn run(cmd: &mut Command, timeout: Duration) -> io::Result<Captured> {
    let mut out = tempfile::tempfile()?;
    let mut err = tempfile::tempfile()?;
    // A group of its own, so a timeout also reaches whatever the command started.
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(err.try_clone()?)
        .process_group(0)
        .spawn()?;
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if Instant::now() >= deadline {
            // The group id is the child's pid (process_group(0) above).
            let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
            child.wait()?;
            break None;
        }
        thread::sleep(Duration::from_millis(20));
    };
    Ok(Captured {
        status,
        stdout: read_back(&mut out)?,
        stderr: read_back(&mut err)?,
    })
}

fn read_back(file: &mut File) -> io::Result<String> {
    file.rewind()?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The last `max` bytes of `text` (on a character boundary), for error messages.
pub fn tail(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// Like [`tail`], but starting at a line boundary, with `…` marking the cut.
pub fn tail_lines(text: &str, max: usize) -> String {
    let end = tail(text, max);
    if end.len() == text.len() {
        return text.to_owned();
    }
    match end.split_once('\n') {
        Some((_, rest)) => format!("…\n{rest}"),
        None => format!("…{end}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_output_and_status() {
        let got = run(
            Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]),
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(got.stdout, "out\n");
        assert_eq!(got.stderr, "err\n");
        assert_eq!(got.describe(), "exit 3");
        assert!(!got.success());
    }

    #[test]
    fn kills_after_the_deadline() {
        let started = Instant::now();
        let got = run(Command::new("sleep").arg("30"), Duration::from_millis(200)).unwrap();
        assert!(got.status.is_none());
        assert_eq!(got.describe(), "timed out");
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn tail_keeps_the_end_on_a_char_boundary() {
        assert_eq!(tail("abcdef", 3), "def");
        assert_eq!(tail("ab", 3), "ab");
        assert_eq!(tail("aé", 1), "");
    }

    #[test]
    fn tail_lines_starts_on_a_new_line() {
        assert_eq!(tail_lines("one\ntwo\nthree", 8), "…\nthree");
        assert_eq!(tail_lines("short", 8), "short");
        assert_eq!(tail_lines("averylongline", 4), "…line");
    }
}
