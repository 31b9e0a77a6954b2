//! runc's error output as one line: its own message, without the logger's fields or a Go
//! panic's goroutine dump.

/// The message of runc's stderr: the `msg="…"` of its last `level=error` (or `fatal`) log
/// line, else a panic's first line, else the last non-empty line.
pub fn message(stderr: &str) -> String {
    let logged = stderr.lines().rev().find_map(|line| {
        let level = field(line, "level")?;
        matches!(level.as_str(), "error" | "fatal").then(|| field(line, "msg"))?
    });
    if let Some(msg) = logged {
        return msg;
    }
    if let Some(panic) = stderr
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("panic: "))
    {
        return format!("panic: {}", panic.trim());
    }
    stderr
        .lines()
        .map(str::trim)
        .rev()
        .find(|l| !l.is_empty() && !is_go_noise(l))
        .unwrap_or("")
        .to_owned()
}

/// Stack-trace lines: `goroutine 1 [running]:`, `main.main()`, `\t/path/file.go:12 +0x1d`.
fn is_go_noise(line: &str) -> bool {
    line.starts_with("goroutine ")
        || line.contains(".go:")
        || (line.ends_with(')') && line.contains('(') && !line.contains(' '))
        || line.starts_with("[signal ")
        || line.starts_with("exit status ")
        // Section headers of `Container::logs`, and its mark of a cut.
        || line.starts_with("--- ")
        || line == "…"
}

/// `key=value` or `key="quoted \"value\""` in a logrus text line.
fn field(line: &str, key: &str) -> Option<String> {
    let mut rest = line;
    loop {
        let at = rest.find(&format!("{key}="))?;
        let preceded_by_space = at == 0 || rest[..at].ends_with(' ');
        rest = &rest[at + key.len() + 1..];
        if preceded_by_space {
            break;
        }
    }
    if let Some(quoted) = rest.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = quoted.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => out.push(' '),
                    Some('t') => out.push(' '),
                    Some(other) => out.push(other),
                    None => break,
                },
                '"' => return Some(out),
                c => out.push(c),
            }
        }
        return Some(out);
    }
    Some(rest.split_whitespace().next().unwrap_or("").to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_from_each_kind_of_output() {
        let cases = [
            (
                // runc 1.1 exec of a program the root filesystem lacks.
                "time=\"2026-11-29T21:34:38Z\" level=error msg=\"exec failed: unable to start container process: exec: \\\"/probe\\\": stat /probe: no such file or directory\"\n",
                "exec failed: unable to start container process: exec: \"/probe\": stat /probe: no such file or directory",
            ),
            (
                "time=\"x\" level=warning msg=\"cgroup v1 is deprecated\"\ntime=\"x\" level=fatal msg=\"no such container\"\n",
                "no such container",
            ),
            (
                "panic: unable to start container process: open /dev/null: permission denied\n\ngoroutine 1 [running]:\nmain.init.0()\n\t/build/runc/init.go:48 +0x1d\nexit status 2\n",
                "panic: unable to start container process: open /dev/null: permission denied",
            ),
            ("ERRO[0000] something\nplain last line\n", "plain last line"),
            ("--- stderr\nnginx: [emerg] bind() failed\n--- runc log\n", "nginx: [emerg] bind() failed"),
            ("", ""),
        ];
        for (stderr, want) in cases {
            assert_eq!(message(stderr), want, "{stderr}");
        }
    }

    #[test]
    fn a_field_name_inside_another_is_not_it() {
        assert_eq!(field("submsg=x msg=\"y z\"", "msg").as_deref(), Some("y z"));
        assert_eq!(field("level=error", "level").as_deref(), Some("error"));
        assert_eq!(field("nothing here", "msg"), None);
    }
}
