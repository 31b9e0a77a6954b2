//! The kernel side of recording: load profgen's eBPF object, attach the syscall-entry
//! program, tell it which cgroups to record, and read back what it aggregated.

use std::collections::BTreeMap;

use aya::{
    maps::{Array, HashMap, MapData, PerCpuArray},
    programs::{BtfTracePoint, RawTracePoint},
    Btf, Ebpf,
};
use profiler_common::{
    bitmap::{slot_owner, CgroupSyscalls},
    maps,
    stats::Stat,
};

use super::Error;

/// The eBPF object built by `build.rs`; empty when built without the eBPF toolchain.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/profiler"));

/// Which program goes on `sys_enter`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    /// Record syscalls per cgroup.
    Record,
    /// An empty program: the cost floor of any syscall-entry hook, for the benchmark.
    Empty,
}

/// Loaded and attached eBPF programs. Detached when dropped.
pub struct Kernel {
    ebpf: Ebpf,
    levels: Vec<u32>,
}

impl Kernel {
    /// Loads the object and attaches `hook` to `raw_syscalls:sys_enter`. Recording prefers
    /// the BTF tracepoint (registers read without a helper call) and falls back to the raw
    /// tracepoint on kernels without BTF.
    pub fn load(hook: Hook) -> Result<Self, Error> {
        if OBJECT.is_empty() {
            return Err(Error::NoEbpf);
        }
        if !nix::unistd::geteuid().is_root() {
            return Err(Error::Permission(
                "recording loads eBPF programs: run profgen as root (or with CAP_BPF and CAP_PERFMON)"
                    .into(),
            ));
        }
        raise_memlock();
        let mut ebpf = Ebpf::load(OBJECT).map_err(|e| classify_load_error(&e.to_string()))?;
        let attached = match hook {
            Hook::Record => match attach_btf(&mut ebpf) {
                Ok(()) => Ok(()),
                Err(btf_err) => attach_raw(&mut ebpf, maps::PROG_SYS_ENTER_RAW).map_err(|raw_err| {
                    log::debug!("BTF tracepoint refused: {btf_err}");
                    raw_err
                }),
            },
            Hook::Empty => attach_raw(&mut ebpf, maps::PROG_SYS_ENTER_EMPTY),
        };
        attached.map_err(|e| classify_load_error(&e))?;
        Ok(Self {
            ebpf,
            levels: Vec::new(),
        })
    }

    /// Records the cgroup `id` at `level` and every cgroup below it, including those created
    /// later.
    pub fn add_target(&mut self, id: u64, level: u32) -> Result<(), Error> {
        if level == 0 {
            return Err(Error::Target(
                "refusing to record the root cgroup (the whole machine); give a cgroup below it or use `profgen record -- CMD`".into(),
            ));
        }
        let mut roots: HashMap<&mut MapData, u64, u32> = self.map_mut(maps::TARGET_ROOTS)?;
        roots.insert(id, 0, 0).map_err(map_err)?;
        self.forget_non_targets()?;
        if !self.levels.contains(&level) {
            if self.levels.len() as u32 >= maps::MAX_TARGET_LEVELS {
                return Err(Error::Target(format!(
                    "targets at more than {} different cgroup depths",
                    maps::MAX_TARGET_LEVELS
                )));
            }
            let slot = self.levels.len() as u32;
            let mut levels: Array<&mut MapData, u32> = self.map_mut(maps::TARGET_LEVELS)?;
            levels.set(slot, level, 0).map_err(map_err)?;
            self.levels.push(level);
        }
        Ok(())
    }

    /// Slots remember cgroups that are not recorded; a new target may contain some of them.
    fn forget_non_targets(&mut self) -> Result<(), Error> {
        let mut slots: Array<&mut MapData, CgroupSyscalls> = self.map_mut(maps::SLOTS)?;
        for index in 0..slot_owner::SLOTS {
            let value = slots.get(&index, 0).map_err(map_err)?;
            if value.owner & slot_owner::NOT_TARGET != 0 {
                slots.set(index, CgroupSyscalls::ZERO, 0).map_err(map_err)?;
            }
        }
        Ok(())
    }

    /// What every recorded cgroup did so far, by cgroup id.
    pub fn cgroups(&self) -> Result<BTreeMap<u64, CgroupSyscalls>, Error> {
        let slots: Array<&MapData, CgroupSyscalls> =
            Array::try_from(self.ebpf.map(maps::SLOTS).ok_or_else(|| missing(maps::SLOTS))?)
                .map_err(map_err)?;
        let mut found = BTreeMap::new();
        for value in slots.iter() {
            let value = value.map_err(map_err)?;
            if value.owner != 0 && value.owner & slot_owner::NOT_TARGET == 0 {
                found.insert(value.owner, value);
            }
        }
        let overflow: HashMap<&MapData, u64, CgroupSyscalls> = HashMap::try_from(
            self.ebpf
                .map(maps::CGROUP_SYSCALLS)
                .ok_or_else(|| missing(maps::CGROUP_SYSCALLS))?,
        )
        .map_err(map_err)?;
        for entry in overflow.iter() {
            let (id, value) = entry.map_err(map_err)?;
            found.insert(id, value);
        }
        Ok(found)
    }

    /// The loss counters, summed over CPUs, by their recording name.
    pub fn events_lost(&self) -> Result<BTreeMap<String, u64>, Error> {
        let stats: PerCpuArray<&MapData, u64> = PerCpuArray::try_from(
            self.ebpf.map(maps::STATS).ok_or_else(|| missing(maps::STATS))?,
        )
        .map_err(map_err)?;
        Stat::ALL
            .iter()
            .map(|&stat| {
                let per_cpu = stats.get(&(stat as u32), 0).map_err(map_err)?;
                Ok((stat.name().to_owned(), per_cpu.iter().sum()))
            })
            .collect()
    }

    fn map_mut<'a, T>(&'a mut self, name: &str) -> Result<T, Error>
    where
        T: TryFrom<&'a mut aya::maps::Map, Error = aya::maps::MapError>,
    {
        T::try_from(self.ebpf.map_mut(name).ok_or_else(|| missing(name))?).map_err(map_err)
    }
}

fn attach_btf(ebpf: &mut Ebpf) -> Result<(), String> {
    let btf = Btf::from_sys_fs().map_err(|e| verbose(&e))?;
    let program: &mut BtfTracePoint = ebpf
        .program_mut(maps::PROG_SYS_ENTER_BTF)
        .ok_or("BTF program missing from the object")?
        .try_into()
        .map_err(|e: aya::programs::ProgramError| e.to_string())?;
    program.load(maps::TP_SYS_ENTER, &btf).map_err(|e| verbose(&e))?;
    program.attach().map_err(|e| verbose(&e))?;
    Ok(())
}

fn attach_raw(ebpf: &mut Ebpf, name: &str) -> Result<(), String> {
    let program: &mut RawTracePoint = ebpf
        .program_mut(name)
        .ok_or_else(|| format!("program {name} missing from the object"))?
        .try_into()
        .map_err(|e: aya::programs::ProgramError| e.to_string())?;
    program.load().map_err(|e| verbose(&e))?;
    program.attach(maps::TP_SYS_ENTER).map_err(|e| verbose(&e))?;
    Ok(())
}

fn missing(name: &str) -> Error {
    Error::Kernel(format!("map {name} missing from the object"))
}

fn map_err(e: aya::maps::MapError) -> Error {
    Error::Kernel(e.to_string())
}

/// Error text with its causes (aya keeps the verifier log in the source chain).
fn verbose(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Turns a load failure into what the user can do about it.
fn classify_load_error(text: &str) -> Error {
    let lower = text.to_lowercase();
    if lower.contains("operation not permitted") || lower.contains("permission denied") {
        Error::Permission(
            "the kernel refused to load eBPF programs: run as root with BPF available (kernel.unprivileged_bpf_disabled does not matter for root, a seccomp or LSM policy might)".into(),
        )
    } else if lower.contains("invalid argument")
        || lower.contains("unknown func")
        || lower.contains("verifier")
    {
        Error::OldKernel(format!(
            "{}: the kernel ({}) rejected profgen's eBPF program; profgen needs Linux 5.8 or newer with BPF raw tracepoints",
            first_line(text),
            kernel_release()
        ))
    } else {
        Error::Kernel(first_line(text).to_owned())
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}

pub fn kernel_release() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_else(|_| "unknown".into())
}

/// Kernels before 5.11 charge BPF maps to RLIMIT_MEMLOCK; lift it so they load.
fn raise_memlock() {
    let unlimited = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: plain syscall with a valid pointer. A failure surfaces later as a load error.
    unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &unlimited) };
}
