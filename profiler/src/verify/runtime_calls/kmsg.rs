//! The kernel's seccomp log records (`audit: type=1326`), as `dmesg` or `/dev/kmsg` shows
//! them, turned into the calls a runtime made between installing the filter and exec'ing the
//! entrypoint.
//!
//! A filter whose default action is `SCMP_ACT_LOG` lets every call through and has the
//! kernel log each one as it enters the filter: the thread group (`pid=`), its `comm=` and
//! `exe=`, the architecture and the syscall number. The runtime's own calls are the ones of
//! the container's process up to and including its first `execve`: the kernel checks the
//! filter on the way into a call, so `execve` is still logged under the runtime's name and
//! every later record belongs to the entrypoint.

use std::collections::BTreeSet;

use crate::{model::Abi, syscalls};

/// `SECCOMP_RET_LOG`: the action of the records kept.
const RET_LOG: &str = "0x7ffc0000";
/// `AUDIT_ARCH_X86_64`.
const ARCH_X86_64: &str = "c000003e";
const EXECVE: &[&str] = &["execve", "execveat"];

/// Kernel messages that say audit records were dropped: a run that shows one is incomplete.
const LOST: &[&str] = &[
    "audit: printk limit exceeded",
    "audit: backlog limit exceeded",
    "audit: kauditd hold queue overflow",
    "audit: audit_lost=",
];

/// One `type=1326` record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The event's serial number, `audit(TIME:SERIAL)`.
    pub serial: u64,
    pub pid: u32,
    pub comm: String,
    pub exe: String,
    pub arch: String,
    pub syscall: u32,
    /// The filter's action, e.g. `0x7ffc0000` for `SECCOMP_RET_LOG`.
    pub code: String,
}

/// The calls of one process between the filter and its exec, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessCalls {
    pub pid: u32,
    /// The runtime's name for the process (`runc:[2:INIT]`, `crun`…).
    pub comm: String,
    /// x86_64 names; a number the tables do not know is kept as `#NR`.
    pub calls: Vec<String>,
    /// Whether the process exec'd (the last call is `execve`); a process that did not is the
    /// runtime's own helper, all of whose calls count.
    pub execed: bool,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum LogError {
    #[error("the kernel dropped audit records ({0:?}): set kernel.printk_ratelimit to 0 (no auditd may be running) and measure again")]
    Lost(String),
    #[error("audit serial numbers {0} to {1} are missing from the kernel log: records were dropped; measure again with kernel.printk_ratelimit 0")]
    Gap(u64, u64),
    #[error("no process exec'd its entrypoint under the logging filter (no execve among {0} seccomp log records): is kernel.seccomp.actions_logged missing `log`, or did the container fail to start?")]
    NoExec(usize),
}

/// `key=value` of one record; values may be quoted.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let needle = format!(" {key}=");
    let at = line.find(&needle)? + needle.len();
    let rest = &line[at..];
    match rest.strip_prefix('"') {
        Some(q) => q.split('"').next(),
        None => rest.split_whitespace().next(),
    }
}

fn serial(line: &str) -> Option<u64> {
    let at = line.find("audit(")? + "audit(".len();
    let inside = line[at..].split(')').next()?;
    inside.split_once(':')?.1.parse().ok()
}

/// A `type=1326` record from one kernel log line (any prefix: `[ 1.2] `, `6,12,34,-;`,
/// a console marker), or `None` for any other line.
pub fn parse_record(line: &str) -> Option<Record> {
    let at = line.find("type=1326 ")?;
    let line = &line[at..];
    Some(Record {
        serial: serial(line)?,
        pid: field(line, "pid")?.parse().ok()?,
        comm: field(line, "comm")?.to_owned(),
        exe: field(line, "exe")?.to_owned(),
        arch: field(line, "arch")?.to_owned(),
        syscall: field(line, "syscall")?.parse().ok()?,
        code: field(line, "code")?.to_owned(),
    })
}

/// Every audit serial number in the log, of any record type.
fn serials(log: &str) -> BTreeSet<u64> {
    log.lines()
        .filter(|l| l.contains("audit: type="))
        .filter_map(serial)
        .collect()
}

/// The runtime's calls in one run's kernel log: per process that logged under the filter,
/// its calls up to and including its first exec. Errors when records were dropped (a
/// message says so, or serial numbers are missing) or no process exec'd.
pub fn runtime_calls(log: &str) -> Result<Vec<ProcessCalls>, LogError> {
    if let Some(lost) = log.lines().find(|l| LOST.iter().any(|m| l.contains(m))) {
        return Err(LogError::Lost(lost.trim().to_owned()));
    }
    let records: Vec<Record> = log
        .lines()
        .filter_map(parse_record)
        .filter(|r| r.code == RET_LOG && r.arch == ARCH_X86_64)
        .collect();
    if let (Some(first), Some(last)) = (
        records.iter().map(|r| r.serial).min(),
        records.iter().map(|r| r.serial).max(),
    ) {
        let seen = serials(log);
        let mut missing = (first..=last).filter(|s| !seen.contains(s));
        if let Some(from) = missing.next() {
            let to = missing.next_back().unwrap_or(from);
            return Err(LogError::Gap(from, to));
        }
    }
    let mut out: Vec<ProcessCalls> = Vec::new();
    let mut done: BTreeSet<u32> = BTreeSet::new();
    for r in &records {
        if done.contains(&r.pid) {
            continue;
        }
        let name = syscalls::name(Abi::X86_64, r.syscall)
            .map_or_else(|| format!("#{}", r.syscall), str::to_owned);
        let execed = EXECVE.contains(&name.as_str());
        let p = match out.iter_mut().position(|p| p.pid == r.pid) {
            Some(i) => &mut out[i],
            None => {
                out.push(ProcessCalls {
                    pid: r.pid,
                    comm: r.comm.clone(),
                    calls: Vec::new(),
                    execed: false,
                });
                out.last_mut().expect("just pushed")
            }
        };
        p.calls.push(name);
        if execed {
            p.execed = true;
            done.insert(r.pid);
        }
    }
    if !out.iter().any(|p| p.execed) {
        return Err(LogError::NoExec(records.len()));
    }
    Ok(out)
}

/// The distinct calls of every process in `runs`.
pub fn distinct(runs: &[ProcessCalls]) -> BTreeSet<String> {
    runs.iter().flat_map(|p| p.calls.iter().cloned()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(serial: u64, pid: u32, comm: &str, nr: u32) -> String {
        format!(
            "[ 11.5] audit: type=1326 audit(1795997796.810:{serial}): auid=4294967295 uid=0 gid=0 ses=4294967295 pid={pid} comm=\"{comm}\" exe=\"/\" sig=0 arch=c000003e syscall={nr} compat=0 ip=0x40828e code=0x7ffc0000"
        )
    }

    #[test]
    fn parses_a_record_with_any_prefix() {
        let dmesg = rec(7, 16033, "runc:[2:INIT]", 59);
        let kmsg = format!("5,812,11587616514,-;{}", &dmesg[8..]);
        let console = format!("PROFGEN-LOG nnp-root 1 {dmesg}");
        for line in [&dmesg, &kmsg, &console] {
            assert_eq!(
                parse_record(line),
                Some(Record {
                    serial: 7,
                    pid: 16033,
                    comm: "runc:[2:INIT]".into(),
                    exe: "/".into(),
                    arch: "c000003e".into(),
                    syscall: 59,
                    code: "0x7ffc0000".into(),
                }),
                "{line}"
            );
        }
        assert_eq!(
            parse_record("[ 1.0] audit: type=1400 apparmor=\"DENIED\""),
            None
        );
        assert_eq!(parse_record("random line"), None);
    }

    #[test]
    fn keeps_each_process_s_calls_until_its_exec() {
        let log = [
            rec(2, 10, "runc:[2:INIT]", 3),
            rec(3, 10, "runc:[2:INIT]", 257),
            "[ 11.6] some other kernel line".to_owned(),
            rec(4, 11, "crun", 61),
            rec(5, 10, "runc:[2:INIT]", 59),
            // The entrypoint: same pid, after the exec.
            rec(6, 10, "true", 12),
            rec(7, 10, "true", 231),
            // An i386 call and another action are not the runtime's calls under this filter.
            rec(8, 10, "runc:[2:INIT]", 5).replace("c000003e", "40000003"),
            rec(9, 12, "x", 1).replace("0x7ffc0000", "0x7fff0000"),
            rec(10, 10, "runc:[2:INIT]", 999),
        ]
        .join("\n");
        let got = runtime_calls(&log).unwrap();
        assert_eq!(
            got,
            vec![
                ProcessCalls {
                    pid: 10,
                    comm: "runc:[2:INIT]".into(),
                    calls: vec!["close".into(), "openat".into(), "execve".into()],
                    execed: true,
                },
                ProcessCalls {
                    pid: 11,
                    comm: "crun".into(),
                    calls: vec!["wait4".into()],
                    execed: false,
                },
            ]
        );
        assert_eq!(
            distinct(&got),
            BTreeSet::from(["close", "openat", "execve", "wait4"].map(String::from))
        );
    }

    #[test]
    fn an_unknown_number_is_kept_as_a_number() {
        let log = [rec(1, 5, "crun", 4000), rec(2, 5, "crun", 59)].join("\n");
        assert_eq!(runtime_calls(&log).unwrap()[0].calls, ["#4000", "execve"]);
    }

    #[test]
    fn dropped_records_and_a_run_without_exec_are_errors() {
        let gap = [rec(2, 10, "c", 3), rec(5, 10, "c", 59)].join("\n");
        assert_eq!(runtime_calls(&gap), Err(LogError::Gap(3, 4)));
        // Another record type fills the gap: nothing was dropped.
        let filled = [
            rec(2, 10, "c", 3),
            "[ 1.0] audit: type=1400 audit(1.2:3): apparmor=\"DENIED\"".to_owned(),
            rec(4, 10, "c", 59),
        ]
        .join("\n");
        assert!(runtime_calls(&filled).is_ok());
        let lost = [
            rec(2, 10, "c", 3),
            "[ 2.0] audit: printk limit exceeded".to_owned(),
        ]
        .join("\n");
        assert!(matches!(runtime_calls(&lost), Err(LogError::Lost(_))));
        assert_eq!(runtime_calls(&rec(2, 10, "c", 3)), Err(LogError::NoExec(1)));
        assert_eq!(runtime_calls(""), Err(LogError::NoExec(0)));
        for e in [LogError::Gap(1, 2), LogError::NoExec(0)] {
            assert!(!e.to_string().contains('\n'));
        }
    }
}
