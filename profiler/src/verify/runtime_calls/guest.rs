//! Measuring crun in a guest with a pure cgroup v2 hierarchy: Debian's kernel under qemu,
//! booted with `cgroup_no_v1=all`, whose init mounts only `cgroup2` at `/sys/fs/cgroup`.
//!
//! The guest's `/` is profgen's own initramfs: crun with its libraries at the system's paths
//! (crun re-executes itself, which a loader in front of it would break), busybox, and the
//! measuring container's root filesystem and bundles. The root filesystem lives in the
//! initramfs, which cannot be `pivot_root`ed: crun runs with `--no-pivot` (a move mount and a
//! chroot instead, before the filter; what follows the filter is the same).

use std::path::Path;

use super::{
    super::apparmor::{image::Image, qemu, tool, VmOptions},
    bundle::{self, Variant, VARIANTS},
    io, kmsg, MeasureError, Run,
};

pub(crate) const INIT: &str = "/.profgen/init";
pub(crate) const BUSYBOX: &str = "/.profgen/bin/busybox";
const ROOTFS: &str = "/.profgen/rootfs";
const BUNDLES: &str = "/.profgen/bundles";
pub(crate) const CRUN: &str = "/usr/bin/crun";
/// The guest's last console line: every guest script ends with it.
pub const DONE: &str = "PROFGEN done";

/// The kernel command line's part that makes the hierarchy pure cgroup v2.
pub const CGROUP_V2_ONLY: &str = "cgroup_no_v1=all";

/// What the guest showed besides the runs.
#[derive(Clone, Debug, Default)]
pub struct GuestFacts {
    /// `uname -r`.
    pub kernel: String,
    /// `/proc/self/cgroup` of the guest's init, one entry a line.
    pub self_cgroup: Vec<String>,
    /// The `cgroup`/`cgroup2` lines of `/proc/mounts`.
    pub cgroup_mounts: Vec<String>,
    /// `crun --version`, first line.
    pub runtime_version: String,
}

impl GuestFacts {
    /// Takes the console fact `key value` when it is one of these; false otherwise.
    pub(crate) fn add(&mut self, key: &str, value: &str) -> bool {
        match key {
            "kernel" => self.kernel = value.to_owned(),
            "self-cgroup" => self.self_cgroup.push(value.to_owned()),
            "cgroup-mount" => self.cgroup_mounts.push(value.to_owned()),
            "runtime-version" => self.runtime_version = value.to_owned(),
            _ => return false,
        }
        true
    }

    /// Only the unified hierarchy: `/proc/self/cgroup` is `0::/…` alone and nothing but
    /// `cgroup2` is mounted.
    pub fn is_pure_cgroup_v2(&self) -> bool {
        !self.self_cgroup.is_empty()
            && self.self_cgroup.iter().all(|l| l.starts_with("0::/"))
            && !self.cgroup_mounts.is_empty()
            && self
                .cgroup_mounts
                .iter()
                .all(|m| m.split_whitespace().nth(2) == Some("cgroup2"))
    }
}

/// The start of a guest's init: busybox's tools, the kernel's filesystems, a pure cgroup v2
/// hierarchy (only `cgroup2` at `/sys/fs/cgroup`), no printk rate limit, and the facts
/// [`GuestFacts`] reads.
pub(crate) fn preamble() -> String {
    format!(
        r#"#!{BUSYBOX} sh
{BUSYBOX} --install -s /.profgen/bin
export PATH=/usr/bin:/.profgen/bin
mkdir -p /proc /sys /dev /run /tmp
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
ln -s /proc/self/fd /dev/fd
ip link set lo up 2>/dev/null || ifconfig lo 127.0.0.1 up
# Without auditd, audit records reach the kernel log through printk's rate limit.
echo 0 > /proc/sys/kernel/printk_ratelimit
echo "PROFGEN booted $(cut -d' ' -f1 /proc/uptime)"
echo "PROFGEN kernel $(uname -r)"
sed 's/^/PROFGEN self-cgroup /' /proc/self/cgroup
grep cgroup /proc/mounts | sed 's/^/PROFGEN cgroup-mount /'
{CRUN} --version 2>&1 | head -n 1 | sed 's/^/PROFGEN runtime-version /'
"#
    )
}

/// The guest's init: `preamble`, then crun `runs` times per variant, clearing the kernel log
/// before each run and printing it after.
pub fn init_script(runs: usize) -> String {
    let variants: Vec<&str> = VARIANTS.iter().map(Variant::label).collect();
    format!(
        r#"{preamble}for v in {variants}; do
  i=1
  while [ $i -le {runs} ]; do
    dmesg -c > /dev/null
    case $v in
      *-create)
        {CRUN} --root /run/crun create --no-pivot --bundle {BUNDLES}/$v m-$v-$i < /dev/null > /tmp/run.log 2>&1 &&
        {CRUN} --root /run/crun start m-$v-$i >> /tmp/run.log 2>&1
        rc=$?
        for w in $(seq 1 100); do
          {CRUN} --root /run/crun state m-$v-$i 2>/dev/null | grep -q '"stopped"' && break
          sleep 0.1
        done
        {CRUN} --root /run/crun delete --force m-$v-$i >> /tmp/run.log 2>&1
        ;;
      *)
        {CRUN} --root /run/crun run --no-pivot --bundle {BUNDLES}/$v m-$v-$i < /dev/null > /tmp/run.log 2>&1
        rc=$?
        ;;
    esac
    echo "PROFGEN run $v $i $rc"
    sed "s/^/PROFGEN run-line $v $i /" /tmp/run.log
    sleep 0.3
    dmesg | sed "s/^/PROFGEN-KMSG $v $i /"
    i=$((i+1))
  done
done
echo "{DONE}"
poweroff -f
"#,
        preamble = preamble(),
        variants = variants.join(" "),
    )
}

/// One run as the console showed it.
#[derive(Debug, Default)]
struct ConsoleRun {
    rc: Option<i32>,
    output: Vec<String>,
    kmsg: String,
}

/// The facts and the runs (in the order the guest made them) of a console.
/// Each run by (variant, index), in the order the guest made them.
type ConsoleRuns = Vec<((Variant, usize), ConsoleRun)>;

fn parse_console(console: &str) -> (GuestFacts, ConsoleRuns) {
    let mut facts = GuestFacts::default();
    let mut runs: ConsoleRuns = Vec::new();
    let mut entry = |v: &str, i: &str| -> Option<usize> {
        let key = (Variant::from_label(v)?, i.parse().ok()?);
        Some(match runs.iter().position(|(k, _)| *k == key) {
            Some(at) => at,
            None => {
                runs.push((key, ConsoleRun::default()));
                runs.len() - 1
            }
        })
    };
    let mut updates: Vec<(usize, &str, String)> = Vec::new();
    for raw in console.lines() {
        let line = raw.trim_end_matches('\r');
        if let Some(at) = line.find("PROFGEN-KMSG ") {
            let mut w = line[at + "PROFGEN-KMSG ".len()..].splitn(3, ' ');
            if let (Some(v), Some(i), Some(rest)) = (w.next(), w.next(), w.next()) {
                if let Some(e) = entry(v, i) {
                    updates.push((e, "kmsg", rest.to_owned()));
                }
            }
            continue;
        }
        let Some(at) = line.find("PROFGEN ") else {
            continue;
        };
        let (key, value) = line[at + "PROFGEN ".len()..]
            .split_once(' ')
            .unwrap_or((&line[at + "PROFGEN ".len()..], ""));
        if facts.add(key, value) {
            continue;
        }
        match key {
            "run" | "run-line" => {
                let mut w = value.splitn(3, ' ');
                if let (Some(v), Some(i), Some(rest)) = (w.next(), w.next(), w.next()) {
                    if let Some(e) = entry(v, i) {
                        let kind = if key == "run" { "rc" } else { "output" };
                        updates.push((e, kind, rest.to_owned()));
                    }
                }
            }
            _ => {}
        }
    }
    for (e, kind, text) in updates {
        let r = &mut runs[e].1;
        match kind {
            "rc" => r.rc = text.trim().parse().ok(),
            "output" => r.output.push(text),
            _ => {
                r.kmsg.push_str(&text);
                r.kmsg.push('\n');
            }
        }
    }
    (facts, runs)
}

/// Boots the guest with `crun` (a host binary, copied with its libraries) and measures it
/// `runs` times per variant.
pub fn measure(
    crun: &Path,
    runs: usize,
    vm: &VmOptions,
) -> Result<(GuestFacts, Vec<Run>), MeasureError> {
    let busybox = tool("busybox", "busybox-static")?;
    let mut img = Image::default();
    img.copy_to(&busybox, BUSYBOX, 0o755)?;
    img.system_program(crun, CRUN)?;
    img.copy_to(&busybox, &format!("{ROOTFS}{}", bundle::BUSYBOX), 0o755)?;
    // The entrypoint: busybox again (an initramfs has symlinks, but a copy needs no target).
    img.copy_to(&busybox, &format!("{ROOTFS}{}", bundle::ENTRYPOINT), 0o755)?;
    for (path, text) in bundle::ROOTFS_FILES {
        img.write(&format!("{ROOTFS}{path}"), 0o644, text.as_bytes());
    }
    for v in VARIANTS {
        img.write(
            &format!("{BUNDLES}/{}/config.json", v.label()),
            0o644,
            bundle::config_json(v, ROOTFS).as_bytes(),
        );
    }
    img.write(INIT, 0o755, init_script(runs).as_bytes());
    let boot = boot_pure_v2(img, vm)?;
    runs_of(&boot.console, runs)
}

/// Boots Debian's kernel with `img` as its initramfs (its init at [`INIT`]) on a pure
/// cgroup v2 hierarchy, with room for the image in memory, and waits for the guest's last
/// line ([`DONE`]): the boot, or the console's last lines when the guest did not finish.
/// The guests that run crun or profgen's recorder (`crun_vm`, `exits_vm`) share it.
pub(crate) fn boot_pure_v2(img: Image, vm: &VmOptions) -> Result<qemu::Boot, MeasureError> {
    let (kernel, qemu_bin) = qemu::kernel_and_qemu(vm)?;
    let size_mb = img.size() / (1 << 20);
    let dir = tempfile::tempdir().map_err(io("creating a temp dir"))?;
    let initrd = dir.path().join("initramfs.cpio.gz");
    let mut f = std::fs::File::create(&initrd).map_err(io("creating the initramfs"))?;
    img.finish(&mut f).map_err(io("writing the initramfs"))?;
    drop(f);
    let append = format!(
        "console=ttyS0 quiet panic=-1 rdinit={INIT} {CGROUP_V2_ONLY} {}",
        vm.extra_kernel_args
    );
    let boot = qemu::boot(&qemu::BootArgs {
        qemu: &qemu_bin,
        kernel: &kernel,
        initrd: &initrd,
        memory_mb: vm.memory_mb.max(512 + 3 * size_mb as u32),
        append: &append,
        timeout: vm.timeout,
        first_marker: "PROFGEN booted",
    })?;
    if !boot.console.contains(DONE) {
        let lines: Vec<&str> = boot.console.lines().collect();
        return Err(MeasureError::Guest(
            DONE.into(),
            lines[lines.len().saturating_sub(40)..].join("\n"),
        ));
    }
    Ok(boot)
}

/// The facts and runs of a finished guest's console; every run must have exec'd.
fn runs_of(console: &str, expected: usize) -> Result<(GuestFacts, Vec<Run>), MeasureError> {
    let tail = || {
        let lines: Vec<&str> = console.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    };
    if !console.contains(DONE) {
        return Err(MeasureError::Guest(DONE.into(), tail()));
    }
    let (facts, console_runs) = parse_console(console);
    if console_runs.len() != expected * VARIANTS.len() {
        return Err(MeasureError::Guest(
            format!("{} runs", expected * VARIANTS.len()),
            tail(),
        ));
    }
    let mut out = Vec::new();
    for ((variant, index), r) in console_runs {
        if r.rc != Some(0) {
            return Err(MeasureError::RunFailed {
                runtime: "crun".into(),
                variant: variant.label(),
                index,
                detail: format!("exit {:?}: {}", r.rc, r.output.join(" | ")),
            });
        }
        let processes = kmsg::runtime_calls(&r.kmsg).map_err(|source| MeasureError::Log {
            variant: variant.label(),
            index,
            source,
        })?;
        out.push(Run {
            variant,
            index,
            processes,
        });
    }
    Ok((facts, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_init_mounts_only_cgroup2_and_runs_every_variant() {
        let s = init_script(3);
        assert!(s.contains("mount -t cgroup2 cgroup2 /sys/fs/cgroup\n"));
        assert!(!s.contains("-t cgroup "));
        assert!(s.contains(
            "for v in nnp-root-run privs-root-run nnp-nobody-run privs-nobody-run nnp-root-create "
        ));
        assert!(s.contains("while [ $i -le 3 ]"));
        assert!(s.contains(
            "/usr/bin/crun --root /run/crun run --no-pivot --bundle /.profgen/bundles/$v"
        ));
        assert!(s.contains("/usr/bin/crun --root /run/crun create --no-pivot --bundle /.profgen/bundles/$v m-$v-$i"));
        assert!(s.contains("/usr/bin/crun --root /run/crun start m-$v-$i"));
        assert!(s.contains("echo 0 > /proc/sys/kernel/printk_ratelimit"));
    }

    const REC: &str = "[   30.1] audit: type=1326 audit(1.5:SERIAL): auid=4294967295 uid=0 gid=0 ses=4294967295 pid=90 comm=\"3\" exe=\"/usr/bin/crun\" sig=0 arch=c000003e syscall=NR compat=0 ip=0x7f code=0x7ffc0000";

    fn rec(serial: u32, nr: u32) -> String {
        REC.replace("SERIAL", &serial.to_string())
            .replace("NR", &nr.to_string())
    }

    fn console(rc: i32) -> String {
        let mut c = String::from("[ 0.0] Linux version\r\nPROFGEN booted 3.1\r\nPROFGEN kernel 6.1.0-57-amd64\r\nPROFGEN self-cgroup 0::/\r\nPROFGEN cgroup-mount cgroup2 /sys/fs/cgroup cgroup2 rw,relatime 0 0\r\nPROFGEN runtime-version crun version 1.8.1\r\n");
        for v in VARIANTS {
            c.push_str(&format!("PROFGEN run {} 1 {rc}\r\n", v.label()));
            if rc != 0 {
                c.push_str(&format!("PROFGEN run-line {} 1 oops\r\n", v.label()));
            }
            for (s, nr) in [(2, 3), (3, 59), (4, 60)] {
                c.push_str(&format!("PROFGEN-KMSG {} 1 {}\r\n", v.label(), rec(s, nr)));
            }
        }
        c.push_str("PROFGEN done\r\n");
        c
    }

    #[test]
    fn reads_facts_and_runs_from_the_console() {
        let (facts, runs) = runs_of(&console(0), 1).unwrap();
        assert_eq!(facts.kernel, "6.1.0-57-amd64");
        assert_eq!(facts.runtime_version, "crun version 1.8.1");
        assert!(facts.is_pure_cgroup_v2());
        assert_eq!(runs.len(), VARIANTS.len());
        assert_eq!(runs[1].variant.label(), "privs-root-run");
        assert_eq!(runs[1].processes[0].calls, ["close", "execve"]);

        let mut hybrid = facts.clone();
        hybrid.self_cgroup.push("4:memory:/".into());
        assert!(!hybrid.is_pure_cgroup_v2());
        let mut v1_mounted = facts;
        v1_mounted
            .cgroup_mounts
            .push("cgroup /sys/fs/cgroup/pids cgroup rw 0 0".into());
        assert!(!v1_mounted.is_pure_cgroup_v2());
    }

    #[test]
    fn a_failed_run_or_an_unfinished_guest_is_an_error() {
        let err = runs_of(&console(1), 1).unwrap_err().to_string();
        assert!(
            err.contains("nnp-root-run, run 1") && err.contains("oops"),
            "{err}"
        );
        let cut = console(0).replace("PROFGEN done", "");
        assert!(matches!(runs_of(&cut, 1), Err(MeasureError::Guest(..))));
        assert!(matches!(
            runs_of(&console(0), 2),
            Err(MeasureError::Guest(..))
        ));
    }
}
