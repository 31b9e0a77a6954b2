//! The guest's init script and the markers it prints on the serial console.
//!
//! Every fact leaves the guest as one line `PROFGEN <key> <value>`; kernel log lines that are
//! AppArmor denials come back verbatim as `PROFGEN-DENIED <phase> <line>`. Anything else on the
//! console (kernel boot messages) is ignored by the parser but kept for the report.

use std::net::IpAddr;

use super::{image::PRIVATE, workload::Workload};

/// Where profgen's things live in the guest, beside the bundle's root filesystem.
pub const INIT_PATH: &str = "/.profgen/init";
pub const BUSYBOX: &str = "/.profgen/bin/busybox";
pub const PROFILE_PATH: &str = "/.profgen/profile";
pub const APPARMOR_D: &str = "/.profgen/apparmor.d";
/// An empty parser config, so the parser does not look for the bundle's.
pub const PARSER_CONF: &str = "/.profgen/parser.conf";
/// The workload's stdout and stderr. A file, which AppArmor mediates (a container runtime
/// hands over pipes, which it does not): [`super::for_the_vm`] allows it.
pub const WORKLOAD_LOG: &str = "/.profgen/workload.log";
/// Written by the write probe; under `/usr`, which the profile must not allow.
pub const WRITE_PROBE_PATH: &str = "/usr/profgen-probe";
pub const SHADOW: &str = "/etc/shadow";

/// What the script runs, as guest command lines (already quoted where they take arguments).
pub struct Script<'a> {
    pub name: &'a str,
    pub workload: &'a Workload,
    /// Runs `apparmor_parser` / `aa-exec` (through profgen's loader).
    pub parser: &'a str,
    pub aa_exec: &'a str,
    /// Runs util-linux's `setpriv`; needed only when the process is not root.
    pub setpriv: Option<&'a str>,
    /// The suite's command line, when there is a suite.
    pub suite: Option<String>,
}

/// `s` as one word of a POSIX shell.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn words(items: &[String]) -> String {
    items.iter().map(|s| quote(s)).collect::<Vec<_>>().join(" ")
}

/// A busybox shell script run as PID 1. It never exits on its own (PID 1 exiting panics the
/// kernel); it powers off, and the host's timeout covers a hang.
pub fn init_script(s: &Script<'_>) -> String {
    let name = s.name;
    let w = s.workload;
    let mut mounts = String::new();
    for (dest, options) in &w.tmpfs {
        let opts = if options.is_empty() {
            String::new()
        } else {
            format!("-o {} ", quote(&options.join(",")))
        };
        mounts.push_str(&format!(
            "mkdir -p {d} && mount -t tmpfs {opts}tmpfs {d}\n",
            d = quote(dest)
        ));
    }
    let (address, ready) = match w.wait_tcp {
        None => (
            String::new(),
            "sleep 2\necho \"PROFGEN ready 1\"\n".to_owned(),
        ),
        Some(addr) => {
            let address = match addr.ip() {
                ip if ip.is_loopback() || ip.is_unspecified() => String::new(),
                IpAddr::V4(ip) => format!("ip addr add {ip}/32 dev lo\n"),
                IpAddr::V6(ip) => format!("ip -6 addr add {ip}/128 dev lo nodad\n"),
            };
            // A socket in LISTEN (0A) on the port, in /proc/net/tcp{,6}: no connection made.
            let ready = format!(
                r#"ready=0
for i in $(seq 1 300); do
  if cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk '$2 ~ /:{port:04X}$/ && $4 == "0A" {{f=1}} END {{exit !f}}'; then ready=1; break; fi
  kill -0 $wl 2>/dev/null || break
  sleep 0.2
done
echo "PROFGEN ready $ready"
"#,
                port = addr.port()
            );
            (address, ready)
        }
    };
    // The user switch comes before aa-exec, so the profile applies to the workload alone.
    let user = match s.setpriv {
        Some(setpriv) if (w.uid, w.gid) != (0, 0) || !w.additional_gids.is_empty() => {
            let groups = match w.additional_gids.is_empty() {
                true => "--clear-groups".to_owned(),
                false => format!(
                    "--groups={}",
                    w.additional_gids
                        .iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join(",")
                ),
            };
            format!("{setpriv} --reuid={} --regid={} {groups} ", w.uid, w.gid)
        }
        _ => String::new(),
    };
    let suite = match &s.suite {
        Some(cmd) => format!(
            "timeout {secs} {cmd} < /dev/null > {PRIVATE}/suite.log 2>&1\n\
             echo \"PROFGEN suite-rc $?\"\n\
             tail -n 40 {PRIVATE}/suite.log | sed 's/^/PROFGEN suite-line /'\n",
            secs = w.suite_timeout.as_secs().max(1),
        ),
        None => String::new(),
    };
    format!(
        r#"#!{BUSYBOX} sh
{BUSYBOX} --install -s {PRIVATE}/bin
export PATH={PRIVATE}/bin
mkdir -p /proc /sys /dev
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# What a container runtime gives every container; devtmpfs alone has no /dev/std*.
ln -s /proc/self/fd /dev/fd
ln -s /proc/self/fd/0 /dev/stdin
ln -s /proc/self/fd/1 /dev/stdout
ln -s /proc/self/fd/2 /dev/stderr
mount -t securityfs securityfs /sys/kernel/security
# Without auditd, denials reach the kernel log through printk's rate limit (10 per 5 s): a
# suite with many DENIED lines would hide the probes' own.
echo 0 > /proc/sys/kernel/printk_ratelimit
# The container's tmpfs mounts.
{mounts}ip link set lo up 2>/dev/null || ifconfig lo 127.0.0.1 up
{address}echo "PROFGEN booted $(cut -d' ' -f1 /proc/uptime)"
echo "PROFGEN apparmor-enabled $(cat /sys/module/apparmor/parameters/enabled 2>/dev/null)"
echo "PROFGEN lsm $(cat /sys/kernel/security/lsm 2>/dev/null)"
{parser} --config-file {PARSER_CONF} -r -K --base {APPARMOR_D} -I {APPARMOR_D} {PROFILE_PATH} > {PRIVATE}/parser.log 2>&1
echo "PROFGEN load-rc $?"
sed 's/^/PROFGEN parser-line /' {PRIVATE}/parser.log
echo "PROFGEN loaded $(grep -c '^{name} ' /sys/kernel/security/apparmor/profiles 2>/dev/null)"
dmesg -c > /dev/null

# The workload, confined, started as the container's process: its cwd, environment and user.
(cd {cwd} && exec env -i {env} {user}{aa_exec} -p {name} -- {args}) < /dev/null > {WORKLOAD_LOG} 2>&1 &
wl=$!
{ready}echo "PROFGEN label $(cat /proc/$wl/attr/current 2>/dev/null)"
{suite}echo "PROFGEN alive $(kill -0 $wl 2>/dev/null && echo 1 || echo 0)"
kill $wl 2>/dev/null
sleep 1
kill -9 $wl 2>/dev/null
tail -n 40 {WORKLOAD_LOG} | sed 's/^/PROFGEN workload-line /'
dmesg | grep 'apparmor="DENIED"' | sed 's/^/PROFGEN-DENIED workload /'
dmesg -c > /dev/null

# Probes outside the profile, confined by it.
{aa_exec} -p {name} -- {BUSYBOX} cat {SHADOW} > /dev/null 2>&1
echo "PROFGEN probe-rc read-shadow $?"
dmesg | grep 'apparmor="DENIED"' | sed 's/^/PROFGEN-DENIED read-shadow /'
dmesg -c > /dev/null
{aa_exec} -p {name} -- {BUSYBOX} touch {WRITE_PROBE_PATH} > /dev/null 2>&1
echo "PROFGEN probe-rc write-usr $?"
dmesg | grep 'apparmor="DENIED"' | sed 's/^/PROFGEN-DENIED write-usr /'
echo "PROFGEN write-usr-exists $(test -e {WRITE_PROBE_PATH} && echo 1 || echo 0)"
echo "PROFGEN done"
poweroff -f
"#,
        parser = s.parser,
        aa_exec = s.aa_exec,
        cwd = quote(&w.cwd),
        env = words(&w.env),
        args = words(&w.args),
    )
}

/// One DENIED line, by the phase that produced it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denied {
    pub phase: String,
    pub line: String,
}

/// Every `PROFGEN key value` pair in order, and the DENIED lines.
pub fn parse(console: &str) -> (Vec<(String, String)>, Vec<Denied>) {
    let mut facts = Vec::new();
    let mut denied = Vec::new();
    for raw in console.lines() {
        let line = raw.trim_end_matches('\r');
        // Kernel messages can interleave; markers always start a line of their own output.
        let Some(at) = line.find("PROFGEN") else {
            continue;
        };
        let line = &line[at..];
        if let Some(rest) = line.strip_prefix("PROFGEN-DENIED ") {
            let (phase, l) = rest.split_once(' ').unwrap_or((rest, ""));
            denied.push(Denied {
                phase: phase.into(),
                line: l.into(),
            });
        } else if let Some(rest) = line.strip_prefix("PROFGEN ") {
            let (k, v) = rest.split_once(' ').unwrap_or((rest, ""));
            facts.push((k.to_string(), v.to_string()));
        }
    }
    (facts, denied)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn parses_markers() {
        let log = "[    1.0] random kernel line\r\nPROFGEN load-rc 0\r\nPROFGEN-DENIED workload [ 2.1] audit: type=1400 apparmor=\"DENIED\" operation=\"open\"\nPROFGEN probe-rc read-shadow 1\n";
        let (facts, denied) = parse(log);
        assert_eq!(facts[0], ("load-rc".into(), "0".into()));
        assert_eq!(facts[1], ("probe-rc".into(), "read-shadow 1".into()));
        assert_eq!(denied.len(), 1);
        assert_eq!(denied[0].phase, "workload");
        assert!(denied[0].line.contains("operation=\"open\""));
    }

    fn workload() -> Workload {
        Workload {
            rootfs: "/b/rootfs".into(),
            args: vec!["/usr/bin/redis-server".into(), "--save".into(), "".into()],
            env: vec!["PATH=/usr/bin:/bin".into(), "GREETING=it's".into()],
            cwd: "/data".into(),
            uid: 0,
            gid: 0,
            additional_gids: Vec::new(),
            tmpfs: vec![("/run".into(), vec!["mode=755".into()])],
            capabilities: Vec::new(),
            wait_tcp: Some("198.51.100.2:6390".parse().unwrap()),
            suite: Vec::new(),
            suite_timeout: Duration::from_secs(60),
        }
    }

    #[test]
    fn the_script_runs_the_bundle_s_process_confined() {
        let w = workload();
        let s = init_script(&Script {
            name: "redis",
            workload: &w,
            parser: "P",
            aa_exec: "A",
            setpriv: None,
            suite: Some("S '-q'".into()),
        });
        assert!(
            s.contains("(cd '/data' && exec env -i 'PATH=/usr/bin:/bin' 'GREETING=it'\\''s' A -p redis -- '/usr/bin/redis-server' '--save' '') < /dev/null > /.profgen/workload.log 2>&1 &"),
            "{s}"
        );
        assert!(
            s.contains("P --config-file /.profgen/parser.conf -r -K --base /.profgen/apparmor.d"),
            "{s}"
        );
        assert!(s.contains("mkdir -p '/run' && mount -t tmpfs -o 'mode=755' tmpfs '/run'"));
        // The pod's address on loopback, and port 6390 (0x18F6) in LISTEN.
        assert!(s.contains("ip addr add 198.51.100.2/32 dev lo"));
        assert!(s.contains("/:18F6$/ && $4 == \"0A\""), "{s}");
        assert!(s.contains("timeout 60 S '-q' < /dev/null"));
        assert!(s.contains("A -p redis -- /.profgen/bin/busybox cat /etc/shadow"));
        assert!(!s.contains("--reuid"));
    }

    #[test]
    fn a_non_root_process_switches_user_before_the_profile_applies() {
        let mut w = workload();
        (w.uid, w.gid) = (999, 998);
        w.wait_tcp = Some("127.0.0.1:80".parse().unwrap());
        let script = |w: &Workload| {
            init_script(&Script {
                name: "redis",
                workload: w,
                parser: "P",
                aa_exec: "A",
                setpriv: Some("U"),
                suite: None,
            })
        };
        let s = script(&w);
        assert!(
            s.contains("U --reuid=999 --regid=998 --clear-groups A -p redis --"),
            "{s}"
        );
        w.additional_gids = vec![4, 27];
        assert!(script(&w).contains("U --reuid=999 --regid=998 --groups=4,27 A -p"));
        assert!(!s.contains("ip addr add"), "loopback needs no address: {s}");
        assert!(!s.contains("suite-rc"));
    }
}
