//! One shell workload recorded by profgen once per exit hook (`PROFGEN_EXITS`) in Debian's
//! kernel under qemu ([`super::runtime_calls::guest`]'s preamble): where the host refuses BPF
//! trampolines, this is where the `fexit` programs run, and the facts each hook gives can be
//! compared.
//!
//! The guest prints, per hook, the recorder's exit status, the tails of its output and of the
//! kernel log (what the verifier or the trampoline code said), and the recording.

use std::path::PathBuf;

use super::{
    apparmor::{guest_quote, image::Image, tool, VmOptions},
    runtime_calls::{
        guest::{boot_pure_v2, preamble, GuestFacts, BUSYBOX, DONE, INIT},
        MeasureError,
    },
};
use crate::model::EventExits;

const PROFGEN: &str = "/usr/bin/profgen";
const REC: &str = "PROFGEN-REC-";

/// What to run.
#[derive(Clone, Debug)]
pub struct ExitsVm {
    /// profgen, whose recorder runs in the guest's kernel.
    pub recorder: PathBuf,
    /// A busybox `sh` script run before each recording, not recorded (what the workload
    /// finds in place).
    pub setup: String,
    /// A busybox `sh` script, recorded with `profgen record -- sh -c SCRIPT`.
    pub script: String,
    /// The hooks to record it with, in order (each forced with `PROFGEN_EXITS`).
    pub exits: Vec<EventExits>,
    pub vm: VmOptions,
}

/// One recording of the script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExitsRun {
    pub exits: EventExits,
    /// `profgen record`'s exit status.
    pub rc: Option<i32>,
    /// The recording's JSON, as the recorder wrote it in the guest.
    pub recording: Option<String>,
    /// The recorder's output and the kernel log during the run (tails).
    pub lines: Vec<String>,
}

/// What the guest reported.
#[derive(Clone, Debug, Default)]
pub struct ExitsVmReport {
    pub facts: GuestFacts,
    /// `net.core.bpf_jit_enable` (trampolines are JIT-compiled code).
    pub jit: Option<String>,
    /// Whether the kernel exposes its BTF (`/sys/kernel/btf/vmlinux`).
    pub btf: bool,
    pub runs: Vec<ExitsRun>,
    pub console: String,
    pub boot_secs: f64,
    pub total_secs: f64,
}

impl ExitsVmReport {
    pub fn run(&self, exits: EventExits) -> Option<&ExitsRun> {
        self.runs.iter().find(|r| r.exits == exits)
    }
}

/// The init script after the preamble.
fn script(setup: &str, script: &str, exits: &[EventExits]) -> String {
    let names: Vec<&str> = exits.iter().map(|e| e.as_str()).collect();
    format!(
        r#"echo "PROFGEN jit $(cat /proc/sys/net/core/bpf_jit_enable 2>/dev/null)"
echo "PROFGEN btf $(test -e /sys/kernel/btf/vmlinux && echo 1 || echo 0)"
for exits in {names}; do
  dmesg -c > /dev/null 2>&1
  {BUSYBOX} sh -c {setup}
  PROFGEN_EXITS=$exits PROFGEN_DEBUG=1 {PROFGEN} record -o /tmp/rec-$exits.json -- {BUSYBOX} sh -c {quoted} > /tmp/rec.log 2>&1
  echo "PROFGEN rc $exits $?"
  tail -n 20 /tmp/rec.log | cut -c 1-400 | sed "s/^/PROFGEN line $exits profgen: /"
  dmesg 2>/dev/null | tail -n 20 | sed "s/^/PROFGEN line $exits kernel: /"
  test -s /tmp/rec-$exits.json && sed "s/^/{REC}$exits /" /tmp/rec-$exits.json
done
echo "{DONE}"
poweroff -f
"#,
        names = names.join(" "),
        quoted = guest_quote(script),
        setup = guest_quote(setup),
    )
}

fn parse(console: &str) -> ExitsVmReport {
    let mut r = ExitsVmReport::default();
    let mut recordings: Vec<(EventExits, String)> = Vec::new();
    let run = |runs: &mut Vec<ExitsRun>, exits: EventExits| -> usize {
        match runs.iter().position(|r| r.exits == exits) {
            Some(i) => i,
            None => {
                runs.push(ExitsRun {
                    exits,
                    rc: None,
                    recording: None,
                    lines: Vec::new(),
                });
                runs.len() - 1
            }
        }
    };
    let exits_named = |name: &str| EventExits::ALL.into_iter().find(|e| e.as_str() == name);
    for raw in console.lines() {
        let line = raw.trim_end_matches('\r');
        if let Some(at) = line.find(REC) {
            let rest = &line[at + REC.len()..];
            let (name, text) = rest.split_once(' ').unwrap_or((rest, ""));
            if let Some(exits) = exits_named(name) {
                let i = recordings
                    .iter()
                    .position(|(e, _)| *e == exits)
                    .unwrap_or_else(|| {
                        recordings.push((exits, String::new()));
                        recordings.len() - 1
                    });
                recordings[i].1.push_str(text);
                recordings[i].1.push('\n');
            }
            continue;
        }
        let Some(at) = line.find("PROFGEN ") else {
            continue;
        };
        let rest = &line[at + "PROFGEN ".len()..];
        let (key, value) = rest.split_once(' ').unwrap_or((rest, ""));
        if r.facts.add(key, value) {
            continue;
        }
        match key {
            "jit" => r.jit = Some(value.trim().to_owned()),
            "btf" => r.btf = value.trim() == "1",
            "rc" | "line" => {
                let (name, value) = value.split_once(' ').unwrap_or((value, ""));
                let Some(exits) = exits_named(name) else {
                    continue;
                };
                let i = run(&mut r.runs, exits);
                if key == "rc" {
                    r.runs[i].rc = value.trim().parse().ok();
                } else {
                    r.runs[i].lines.push(value.to_owned());
                }
            }
            _ => {}
        }
    }
    for (exits, json) in recordings {
        let i = run(&mut r.runs, exits);
        r.runs[i].recording = Some(json);
    }
    r
}

/// Boots the guest and records the script once per hook. Errors only when the guest could
/// not be built or did not finish; each run's outcome is in the report.
pub fn run(c: &ExitsVm) -> Result<ExitsVmReport, MeasureError> {
    let busybox = tool("busybox", "busybox-static")?;
    let mut img = Image::default();
    img.copy_to(&busybox, BUSYBOX, 0o755)?;
    img.system_program(&c.recorder, PROFGEN)?;
    let init = format!("{}{}", preamble(), script(&c.setup, &c.script, &c.exits));
    img.write(INIT, 0o755, init.as_bytes());
    let boot = boot_pure_v2(img, &c.vm)?;
    let mut report = parse(&boot.console);
    report.console = boot.console;
    report.boot_secs = boot.boot_secs;
    report.total_secs = boot.total_secs;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_forces_each_hook_in_turn() {
        let s = script(
            "mkdir -p /tmp/w",
            "mkdir /tmp/w/d",
            &[EventExits::Fexit, EventExits::Tracepoint],
        );
        assert!(s.contains("for exits in fexit tracepoint; do"), "{s}");
        assert!(s.contains(
            "PROFGEN_EXITS=$exits PROFGEN_DEBUG=1 /usr/bin/profgen record -o /tmp/rec-$exits.json -- /.profgen/bin/busybox sh -c 'mkdir /tmp/w/d'"
        ), "{s}");
        assert!(s.contains("PROFGEN-REC-$exits "), "{s}");
        let setup = s.find("sh -c 'mkdir -p /tmp/w'").expect("the setup");
        assert!(setup < s.find("record -o").unwrap(), "{s}");
    }

    #[test]
    fn parses_each_run() {
        let console = "PROFGEN booted 2\r\nPROFGEN jit 1\r\nPROFGEN btf 1\r\nPROFGEN rc fexit 0\r\nPROFGEN line fexit profgen: profgen: no events lost\r\nPROFGEN-REC-fexit {\r\nPROFGEN-REC-fexit   \"a\": 1\r\nPROFGEN-REC-fexit }\r\nPROFGEN rc tracepoint 1\r\nPROFGEN line tracepoint kernel: oops\r\nPROFGEN done\r\n";
        let r = parse(console);
        assert_eq!((r.jit.as_deref(), r.btf), (Some("1"), true));
        let fexit = r.run(EventExits::Fexit).unwrap();
        assert_eq!(fexit.rc, Some(0));
        assert_eq!(fexit.recording.as_deref(), Some("{\n  \"a\": 1\n}\n"));
        assert_eq!(fexit.lines, ["profgen: profgen: no events lost"]);
        let tp = r.run(EventExits::Tracepoint).unwrap();
        assert_eq!((tp.rc, tp.recording.as_deref()), (Some(1), None));
        assert_eq!(tp.lines, ["kernel: oops"]);
        assert_eq!(r.run(EventExits::Staged), None);
    }
}
