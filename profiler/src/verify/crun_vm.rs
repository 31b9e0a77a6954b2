//! A bundle under crun in a guest with a pure cgroup v2 hierarchy (Debian's kernel under qemu,
//! [`super::runtime_calls::guest`]'s preamble): optionally recorded by profgen's eBPF recorder in
//! that kernel, then its suite run against it inside the guest.
//!
//! This shows the two things a cgroup v2 only node needs: the recorder loads and records on a
//! stock distribution kernel whose only hierarchy is cgroup v2, and a profile synthesized for
//! crun lets the container start and serve under crun. The bundle's `config.json` is
//! rewritten for the guest (its root's guest path, a cgroup below the recorded one, the
//! profile to enforce); the bundle's files are not changed.

use std::{
    ffi::OsString,
    net::SocketAddr,
    path::{Path, PathBuf},
};

use oci_spec::runtime::{LinuxSeccomp, Spec};

use super::{
    apparmor::{guest_quote, image::Image, tool, VmOptions},
    runtime_calls::{
        guest::{boot_pure_v2, preamble, GuestFacts, BUSYBOX, CRUN, DONE, INIT},
        MeasureError,
    },
};

const BUNDLE: &str = "/.profgen/bundle";
const PROFGEN: &str = "/usr/bin/profgen";
const SUITE: &str = "/.profgen/suite";
const RECORDING: &str = "/tmp/recording.json";
/// The cgroup the recorder watches; the container's is below it.
const RECORDED: &str = "profgen";
const CONTAINER: &str = "demo";

/// What to run.
#[derive(Clone, Debug)]
pub struct CrunVm {
    pub crun: PathBuf,
    /// A bundle directory: `config.json` and the root filesystem it names.
    pub bundle: PathBuf,
    /// Enforced instead of the bundle's own `linux.seccomp` (`None`: the bundle's, if any).
    pub seccomp: Option<LinuxSeccomp>,
    /// profgen, to record the container with (its eBPF recorder, in the guest's kernel).
    pub recorder: Option<PathBuf>,
    /// Where the workload listens; the suite starts once it does.
    pub wait_tcp: SocketAddr,
    /// An ELF program and its arguments, run in the guest.
    pub suite: Vec<OsString>,
    /// A probe in the container (`crun exec`'d after the suite) and the calls it makes, which
    /// the profile must refuse: profgen's probe (`verify::probe`).
    pub probe: Option<(String, Vec<String>)>,
    pub vm: VmOptions,
}

/// What the guest reported.
#[derive(Clone, Debug, Default)]
pub struct CrunVmReport {
    pub facts: GuestFacts,
    pub recorder_ready: Option<bool>,
    /// `crun run --detach`'s exit status.
    pub crun_rc: Option<i32>,
    /// The workload listened on `wait_tcp`.
    pub ready: bool,
    pub suite_rc: Option<i32>,
    /// The container was still running after the suite.
    pub alive: bool,
    /// `Seccomp:` of the container's process in `/proc/PID/status` (2: a filter).
    pub seccomp_mode: Option<u32>,
    /// Whether a filter was asked for (the report then requires mode 2).
    pub filter_expected: bool,
    /// The probe's exit status and output, when it ran.
    pub probe_rc: Option<i32>,
    pub probe_output: String,
    pub recorder_rc: Option<i32>,
    /// The recording's JSON, as the recorder wrote it in the guest.
    pub recording: Option<String>,
    /// Output of crun, the suite and the recorder (tails).
    pub lines: Vec<String>,
    pub console: String,
    pub boot_secs: f64,
    pub total_secs: f64,
}

impl CrunVmReport {
    /// What did not hold; empty when the container started, served its suite and stayed up
    /// (and the recorder, when asked for, was ready and wrote a recording).
    pub fn failures(&self) -> Vec<String> {
        let mut f = Vec::new();
        if !self.facts.is_pure_cgroup_v2() {
            f.push(format!("the guest is not pure cgroup v2: {:?}", self.facts));
        }
        if self.recorder_ready == Some(false) {
            f.push("the recorder did not start".into());
        }
        if self.crun_rc != Some(0) {
            f.push(format!("crun run exited {:?}", self.crun_rc));
        }
        if !self.ready {
            f.push("the workload never listened".into());
        }
        if self.suite_rc != Some(0) {
            f.push(format!("the suite exited {:?}", self.suite_rc));
        }
        if !self.alive {
            f.push("the container was not running after the suite".into());
        }
        if self.filter_expected && self.seccomp_mode != Some(2) {
            f.push(format!(
                "the container's process has seccomp mode {:?}, not 2 (a filter)",
                self.seccomp_mode
            ));
        }
        if self.recorder_ready.is_some() && self.recording.is_none() {
            f.push(format!(
                "the recorder wrote no recording (exit {:?})",
                self.recorder_rc
            ));
        }
        f
    }
}

/// The bundle's config for the guest.
fn guest_config(c: &CrunVm) -> Result<String, MeasureError> {
    let path = c.bundle.join("config.json");
    let mut spec = Spec::load(&path).map_err(|e| MeasureError::Io {
        what: format!("reading {}", path.display()),
        source: std::io::Error::other(e.to_string()),
    })?;
    let mut root = spec.root().clone().unwrap_or_default();
    root.set_path(PathBuf::from(format!("{BUNDLE}/rootfs")));
    spec.set_root(Some(root));
    let mut linux = spec.linux().clone().unwrap_or_default();
    linux.set_cgroups_path(Some(PathBuf::from(format!("/{RECORDED}/{CONTAINER}"))));
    if let Some(s) = &c.seccomp {
        linux.set_seccomp(Some(s.clone()));
    }
    spec.set_linux(Some(linux));
    Ok(serde_json::to_string_pretty(&spec).expect("a spec serializes"))
}

/// The init script after the preamble.
fn script(record: bool, port: u16, suite: &str, probe: Option<&str>) -> String {
    let probe = match probe {
        None => String::new(),
        Some(argv) => format!(
            r#"{CRUN} --root /run/crun exec {CONTAINER} {argv} < /dev/null > /tmp/probe.log 2>&1
echo "PROFGEN probe-rc $?"
sed 's/^/PROFGEN-PROBE /' /tmp/probe.log
"#
        ),
    };
    let (start_recorder, stop_recorder) = match record {
        false => (String::new(), String::new()),
        true => (
            format!(
                r#"PROFGEN_DEBUG=1 {PROFGEN} record --cgroup /sys/fs/cgroup/{RECORDED} -o {RECORDING} --ready-file /tmp/rec.ready > /tmp/rec.log 2>&1 &
rec=$!
r=0
for i in $(seq 1 600); do
  if [ -e /tmp/rec.ready ]; then r=1; break; fi
  kill -0 $rec 2>/dev/null || break
  sleep 0.5
done
echo "PROFGEN recorder-ready $r"
"#
            ),
            format!(
                r#"kill -INT $rec 2>/dev/null
wait $rec
echo "PROFGEN recorder-rc $?"
tail -n 40 /tmp/rec.log | sed 's/^/PROFGEN line recorder: /'
test -s {RECORDING} && sed 's/^/PROFGEN-REC /' {RECORDING}
"#
            ),
        ),
    };
    format!(
        r#"mkdir -p /sys/fs/cgroup/{RECORDED}
{start_recorder}{CRUN} --root /run/crun run --detach --no-pivot --bundle {BUNDLE} {CONTAINER} < /dev/null > /tmp/crun.log 2>&1
echo "PROFGEN crun-rc $?"
ready=0
for i in $(seq 1 600); do
  if cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk '$2 ~ /:{port:04X}$/ && $4 == "0A" {{f=1}} END {{exit !f}}'; then ready=1; break; fi
  sleep 0.5
done
echo "PROFGEN ready $ready"
{suite} < /dev/null > /tmp/suite.log 2>&1
echo "PROFGEN suite-rc $?"
tail -n 20 /tmp/suite.log | sed 's/^/PROFGEN line suite: /'
echo "PROFGEN alive $({CRUN} --root /run/crun state {CONTAINER} 2>/dev/null | grep -c '"running"')"
pid=$({CRUN} --root /run/crun state {CONTAINER} 2>/dev/null | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p')
echo "PROFGEN seccomp-mode $(awk '/^Seccomp:/ {{print $2}}' /proc/$pid/status 2>/dev/null)"
{probe}{CRUN} --root /run/crun kill {CONTAINER} TERM
sleep 2
{CRUN} --root /run/crun delete --force {CONTAINER}
tail -n 20 /tmp/crun.log | sed 's/^/PROFGEN line crun: /'
{stop_recorder}echo "{DONE}"
poweroff -f
"#
    )
}

fn parse(console: &str) -> CrunVmReport {
    let mut r = CrunVmReport::default();
    let mut recording = String::new();
    for raw in console.lines() {
        let line = raw.trim_end_matches('\r');
        if let Some(at) = line.find("PROFGEN-PROBE ") {
            r.probe_output
                .push_str(&line[at + "PROFGEN-PROBE ".len()..]);
            r.probe_output.push('\n');
            continue;
        }
        if let Some(at) = line.find("PROFGEN-REC ") {
            recording.push_str(&line[at + "PROFGEN-REC ".len()..]);
            recording.push('\n');
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
        let flag = value.trim() == "1";
        let rc = value.trim().parse().ok();
        match key {
            "recorder-ready" => r.recorder_ready = Some(flag),
            "crun-rc" => r.crun_rc = rc,
            "ready" => r.ready = flag,
            "suite-rc" => r.suite_rc = rc,
            "alive" => r.alive = flag,
            "seccomp-mode" => r.seccomp_mode = value.trim().parse().ok(),
            "probe-rc" => r.probe_rc = rc,
            "recorder-rc" => r.recorder_rc = rc,
            "line" => r.lines.push(value.to_owned()),
            _ => {}
        }
    }
    r.recording = (!recording.is_empty()).then_some(recording);
    r
}

/// Boots the guest and runs the bundle under crun. Errors only when the guest could not be
/// built or did not finish; what failed in it is in [`CrunVmReport::failures`].
pub fn run(c: &CrunVm) -> Result<CrunVmReport, MeasureError> {
    let busybox = tool("busybox", "busybox-static")?;
    let Some((suite_program, suite_args)) = c.suite.split_first() else {
        return Err(MeasureError::Guest("a suite".into(), String::new()));
    };
    let mut img = Image::default();
    img.copy_to(&busybox, BUSYBOX, 0o755)?;
    img.system_program(&c.crun, CRUN)?;
    if let Some(profgen) = &c.recorder {
        img.system_program(profgen, PROFGEN)?;
    }
    let file = Path::new(suite_program)
        .file_name()
        .map_or("suite".into(), |n| n.to_string_lossy().into_owned());
    let mut suite = img.private_program(Path::new(suite_program), &format!("{SUITE}/{file}"))?;
    for a in suite_args {
        suite.push(' ');
        suite.push_str(&guest_quote(&a.to_string_lossy()));
    }
    img.tree_at(&c.bundle.join("rootfs"), &format!("{BUNDLE}/rootfs"))?;
    img.write(
        &format!("{BUNDLE}/config.json"),
        0o644,
        guest_config(c)?.as_bytes(),
    );
    let probe = c.probe.as_ref().map(|(path, calls)| {
        std::iter::once(path)
            .chain(calls)
            .map(|w| guest_quote(w))
            .collect::<Vec<_>>()
            .join(" ")
    });
    let init = format!(
        "{}{}",
        preamble(),
        script(
            c.recorder.is_some(),
            c.wait_tcp.port(),
            &suite,
            probe.as_deref()
        )
    );
    img.write(INIT, 0o755, init.as_bytes());
    let boot = boot_pure_v2(img, &c.vm)?;
    let mut report = parse(&boot.console);
    report.filter_expected = c.seccomp.is_some();
    report.console = boot.console;
    report.boot_secs = boot.boot_secs;
    report.total_secs = boot.total_secs;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_records_the_container_s_parent_cgroup() {
        let s = script(true, 8080, "S --url 'x'", Some("'/probe' 'unshare'"));
        assert!(s.contains("PROFGEN_DEBUG=1 /usr/bin/profgen record --cgroup /sys/fs/cgroup/profgen -o /tmp/recording.json"));
        assert!(s.contains("run --detach --no-pivot --bundle /.profgen/bundle demo"));
        assert!(s.contains("/:1F90$/"), "port 8080: {s}");
        assert!(s.contains("S --url 'x' < /dev/null"));
        assert!(
            s.contains("/usr/bin/crun --root /run/crun exec demo '/probe' 'unshare' < /dev/null")
        );
        let plain = script(false, 80, "S", None);
        assert!(!plain.contains("record") && !plain.contains("PROFGEN-REC"));
        assert!(!plain.contains(" exec "));
    }

    #[test]
    fn parses_the_report() {
        let console = "PROFGEN booted 2\r\nPROFGEN self-cgroup 0::/\r\nPROFGEN cgroup-mount cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\r\nPROFGEN recorder-ready 1\r\nPROFGEN crun-rc 0\r\nPROFGEN ready 1\r\nPROFGEN suite-rc 0\r\nPROFGEN line suite: 12 passed\r\nPROFGEN alive 1\r\nPROFGEN seccomp-mode 2\r\nPROFGEN probe-rc 0\r\nPROFGEN-PROBE unshare errno 1\r\nPROFGEN recorder-rc 0\r\nPROFGEN-REC {\r\nPROFGEN-REC   \"a\": 1\r\nPROFGEN-REC }\r\nPROFGEN done\r\n";
        let mut r = parse(console);
        r.filter_expected = true;
        assert!(r.failures().is_empty(), "{:?}", r.failures());
        assert_eq!((r.seccomp_mode, r.probe_rc), (Some(2), Some(0)));
        assert_eq!(r.probe_output, "unshare errno 1\n");
        r.seccomp_mode = Some(0);
        assert_eq!(r.failures().len(), 1, "{:?}", r.failures());
        assert_eq!(r.recording.as_deref(), Some("{\n  \"a\": 1\n}\n"));
        assert_eq!(r.lines, ["suite: 12 passed"]);
        let bad = parse(
            &console
                .replace("suite-rc 0", "suite-rc 1")
                .replace("alive 1", "alive 0"),
        );
        assert_eq!(bad.failures().len(), 2, "{:?}", bad.failures());
    }
}
