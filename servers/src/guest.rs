//! The rest of a run inside an AppArmor VM, where the suite runs beside the confined server
//! and no container runtime restarts it: kill -9 every process the profile confines (as the
//! end of a container's pid namespace does), start the server again from its recipe under the
//! same profile on what the kill left behind, run the suite, stop it gracefully.

use std::{
    fs,
    io::{self, Write},
    net::{SocketAddr, TcpStream},
    os::unix::process::CommandExt,
    path::Path,
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use crate::{oci, Ending, Server};

const GONE_TIMEOUT: Duration = Duration::from_secs(20);

/// `/proc/PID/attr/current` names `profile` (`heldout-redis (enforce)`).
pub fn is_confined_by(label: &str, profile: &str) -> bool {
    label
        .trim_end()
        .strip_prefix(profile)
        .is_some_and(|rest| rest.starts_with(" ("))
}

/// Live processes confined by `profile`.
pub fn confined(profile: &str) -> Vec<i32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            fs::read_to_string(format!("/proc/{pid}/attr/current"))
                .is_ok_and(|l| is_confined_by(&l, profile))
                && !is_zombie(*pid)
        })
        .collect()
}

fn is_zombie(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| {
        s.rsplit_once(") ")
            .and_then(|(_, rest)| rest.chars().next())
            .is_some_and(|state| state == 'Z' || state == 'X')
    })
}

/// SIGKILL to every process `profile` confines, then waits until none is left.
pub fn kill_all(profile: &str) -> Result<usize, String> {
    let pids = confined(profile);
    if pids.is_empty() {
        return Err(format!("no process is confined by {profile}"));
    }
    for pid in &pids {
        // SAFETY: kill(2) with a pid read from /proc; a pid gone since is ESRCH, harmless.
        unsafe { libc::kill(*pid, libc::SIGKILL) };
    }
    let deadline = Instant::now() + GONE_TIMEOUT;
    while !confined(profile).is_empty() {
        if Instant::now() > deadline {
            return Err(format!(
                "still running after SIGKILL: {:?}",
                confined(profile)
            ));
        }
        thread::sleep(Duration::from_millis(50));
    }
    Ok(pids.len())
}

/// Starts the server as its container would (args, environment, user, cwd `/`), confined by
/// `profile` from its exec on, its output appended to `log`.
pub fn launch(server: Server, port: u16, profile: &str, log: &Path) -> io::Result<Child> {
    let recipe = server.recipe(port);
    let spec = oci::spec(&oci::ContainerConfig {
        process: recipe.process,
        ..Default::default()
    });
    let process = spec.process().clone().expect("the spec has a process");
    let args = process.args().clone().unwrap_or_default();
    let (program, rest) = args
        .split_first()
        .ok_or_else(|| io::Error::other("the recipe has no args"))?;
    let out = fs::OpenOptions::new().append(true).create(true).open(log)?;
    let mut cmd = Command::new(program);
    cmd.args(rest)
        .env_clear()
        .envs(
            process
                .env()
                .iter()
                .flatten()
                .filter_map(|kv| kv.split_once('=')),
        )
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .uid(process.user().uid())
        .gid(process.user().gid());
    let onexec = format!("exec {profile}");
    // SAFETY: runs in the child between fork and exec; it only writes a procfs file, as
    // aa-exec does (aa_change_onexec), so the exec lands in the profile.
    unsafe {
        cmd.pre_exec(move || {
            let mut attr = fs::OpenOptions::new()
                .write(true)
                .open("/proc/self/attr/exec")?;
            attr.write_all(onexec.as_bytes())
        });
    }
    cmd.spawn()
}

/// Waits until something accepts connections on `addr`, failing early when `child` exits.
pub fn wait_tcp(child: &mut Child, addr: SocketAddr, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("the server exited ({status}) before listening"));
        }
        if Instant::now() > deadline {
            return Err(format!("nothing listened on {addr} within {timeout:?}"));
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// The server's stop signal, then its exit.
pub fn stop(server: Server, child: &mut Child, timeout: Duration) -> Result<(), String> {
    let sig = signal_number(server.stop_signal())
        .ok_or_else(|| format!("unknown signal {}", server.stop_signal()))?;
    // SAFETY: kill(2) on our own child, not yet reaped.
    unsafe { libc::kill(child.id() as i32, sig) };
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            return Ok(());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return Err(format!(
                "still running {timeout:?} after SIG{}",
                server.stop_signal()
            ));
        }
        thread::sleep(Duration::from_millis(50));
    }
}

pub fn signal_number(name: &str) -> Option<i32> {
    Some(match name {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "TERM" => libc::SIGTERM,
        "USR1" => libc::SIGUSR1,
        "USR2" => libc::SIGUSR2,
        "KILL" => libc::SIGKILL,
        _ => return None,
    })
}

/// Suite runs whose data is still there after a kill, given those before it.
pub fn after_kill(server: Server, persisted: u32) -> u32 {
    if server.keeps_data(Ending::Killed) {
        persisted
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_apparmor_labels() {
        assert!(is_confined_by("heldout-redis (enforce)\n", "heldout-redis"));
        assert!(is_confined_by("heldout-redis (complain)", "heldout-redis"));
        assert!(!is_confined_by("heldout-redis2 (enforce)", "heldout-redis"));
        assert!(!is_confined_by("unconfined\n", "heldout-redis"));
    }

    #[test]
    fn we_are_not_a_zombie_and_nothing_is_confined_by_a_made_up_profile() {
        assert!(!is_zombie(std::process::id() as i32));
        assert!(confined("profgen-no-such-profile").is_empty());
        assert!(kill_all("profgen-no-such-profile").is_err());
    }

    #[test]
    fn names_signals() {
        for s in Server::ALL {
            assert!(signal_number(s.stop_signal()).is_some(), "{s}");
        }
        assert_eq!(signal_number("BOGUS"), None);
    }
}
