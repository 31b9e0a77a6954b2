//! The guest's `/init` and the markers it prints on the serial console.
//!
//! Every fact leaves the guest as one line `PROFGEN <key> <value>`; kernel log lines that are
//! AppArmor denials come back verbatim as `PROFGEN-DENIED <phase> <line>`. Anything else on the
//! console (kernel boot messages) is ignored by the parser but kept for the report.

/// Where things live in the guest.
pub const PROFILE_PATH: &str = "/profgen/profile";
pub const SUITE_PATH: &str = "/profgen/demo-suite";
pub const NGINX_LOG: &str = "/var/log/nginx/console.log";
/// Written by the write probe; under `/usr`, which the profile must not allow.
pub const WRITE_PROBE_PATH: &str = "/usr/profgen-probe";
pub const SHADOW: &str = "/etc/shadow";

pub struct Script<'a> {
    pub name: &'a str,
    pub port: u16,
    pub urls: &'a [String],
    pub suite: bool,
}

/// A busybox shell script run as PID 1. It never exits on its own (PID 1 exiting panics the
/// kernel); it powers off, and the host's timeout covers a hang.
pub fn init_script(s: &Script<'_>) -> String {
    let name = s.name;
    let port = s.port;
    let mut urls = String::new();
    for u in s.urls {
        urls.push_str(&format!(
            "if wget -q -O /dev/null 'http://127.0.0.1:{port}{u}'; then ok=$((ok+1)); else echo \"PROFGEN url-failed {u}\"; fi\n"
        ));
    }
    let suite = if s.suite {
        format!(
            "{SUITE_PATH} --url http://127.0.0.1:{port} > /tmp/suite.log 2>&1\n\
             echo \"PROFGEN suite-rc $?\"\n\
             sed 's/^/PROFGEN suite-line /' /tmp/suite.log\n"
        )
    } else {
        String::new()
    };
    format!(
        r#"#!/bin/busybox sh
/bin/busybox mkdir -p /bin /sbin /usr/bin /usr/sbin /proc /sys /dev /tmp /run
/bin/busybox --install -s /bin
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# What a container runtime gives every container; devtmpfs alone has no /dev/std*.
ln -s /proc/self/fd /dev/fd
ln -s /proc/self/fd/0 /dev/stdin
ln -s /proc/self/fd/1 /dev/stdout
ln -s /proc/self/fd/2 /dev/stderr
mount -t securityfs securityfs /sys/kernel/security
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
ip link set lo up 2>/dev/null || ifconfig lo 127.0.0.1 up
echo "PROFGEN booted $(cut -d' ' -f1 /proc/uptime)"
echo "PROFGEN apparmor-enabled $(cat /sys/module/apparmor/parameters/enabled 2>/dev/null)"
echo "PROFGEN lsm $(cat /sys/kernel/security/lsm 2>/dev/null)"
apparmor_parser -r -K {PROFILE_PATH} > /tmp/parser.log 2>&1
echo "PROFGEN load-rc $?"
sed 's/^/PROFGEN parser-line /' /tmp/parser.log
echo "PROFGEN loaded $(grep -c '^{name} ' /sys/kernel/security/apparmor/profiles 2>/dev/null)"
dmesg -c > /dev/null

# The workload, confined.
aa-exec -p {name} -- /usr/sbin/nginx -c /etc/nginx/nginx.conf < /dev/null > {NGINX_LOG} 2>&1 &
nginx_pid=$!
ready=0
for i in $(seq 1 100); do
  if wget -q -O /dev/null http://127.0.0.1:{port}/; then ready=1; break; fi
  sleep 0.2
done
echo "PROFGEN ready $ready"
echo "PROFGEN label $(cat /proc/$nginx_pid/attr/current 2>/dev/null)"
ok=0
{urls}echo "PROFGEN urls-ok $ok"
{suite}echo "PROFGEN nginx-alive $(kill -0 $nginx_pid 2>/dev/null && echo 1 || echo 0)"
kill $nginx_pid 2>/dev/null
sleep 0.5
sed 's/^/PROFGEN nginx-line /' {NGINX_LOG}
dmesg | grep 'apparmor="DENIED"' | sed 's/^/PROFGEN-DENIED workload /'
echo "PROFGEN workload-denied $(dmesg | grep -c 'apparmor="DENIED"')"
dmesg -c > /dev/null

# Probes outside the profile, confined by it.
aa-exec -p {name} -- /bin/busybox cat {SHADOW} > /dev/null 2>&1
echo "PROFGEN probe-rc read-shadow $?"
dmesg | grep 'apparmor="DENIED"' | sed 's/^/PROFGEN-DENIED read-shadow /'
dmesg -c > /dev/null
aa-exec -p {name} -- /bin/busybox touch {WRITE_PROBE_PATH} > /dev/null 2>&1
echo "PROFGEN probe-rc write-usr $?"
dmesg | grep 'apparmor="DENIED"' | sed 's/^/PROFGEN-DENIED write-usr /'
echo "PROFGEN write-usr-exists $(test -e {WRITE_PROBE_PATH} && echo 1 || echo 0)"
echo "PROFGEN done"
poweroff -f
"#
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

    #[test]
    fn script_mentions_the_profile() {
        let s = init_script(&Script {
            name: "demo-nginx",
            port: 8080,
            urls: &["/".into()],
            suite: true,
        });
        assert!(s.contains("aa-exec -p demo-nginx -- /usr/sbin/nginx"));
        assert!(s.contains("apparmor_parser -r -K /profgen/profile"));
        assert!(s.contains("/profgen/demo-suite --url http://127.0.0.1:8080"));
    }
}
