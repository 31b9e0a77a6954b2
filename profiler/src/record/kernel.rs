//! The kernel side of recording: load profgen's eBPF object, attach the syscall-entry
//! program, tell it which cgroups to record, and read back what it aggregated.

use std::collections::BTreeMap;

use aya::{
    maps::{Array, HashMap, MapData, PerCpuArray, RingBuf},
    programs::{BtfTracePoint, FExit, RawTracePoint, TracePoint},
    Btf, Ebpf, EbpfLoader,
};
use profiler_common::{
    bitmap::{slot_owner, CgroupSyscalls},
    cgroup_id::{self, CgroupIdPath},
    event::{nr, staging, Event},
    maps,
    stats::Stat,
};

use super::Error;
use crate::model::EventExits;

/// The eBPF object built by `build.rs`; empty when built without the eBPF toolchain.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/profiler"));

/// Which program goes on `sys_enter`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    /// Record syscalls per cgroup, and files, execs, sockets and capabilities.
    Record,
    /// Record syscalls only: no exit tracepoints, so the rest of the machine pays only for
    /// the entry hook.
    SyscallsOnly,
    /// An empty program: the cost floor of any syscall-entry hook, for the benchmark.
    Empty,
    /// Empty programs on `sys_enter` and on the `syscalls:sys_exit_*` tracepoints of the
    /// event syscalls, where recording completes events when the kernel refuses `fexit`:
    /// the floor of both hooks, for the benchmark.
    EmptyWithExitTracepoints,
    /// Empty programs on `sys_enter` and `sys_exit`, for the benchmark.
    EmptyWithRawExit,
}

impl Hook {
    /// Empty programs only.
    fn is_floor(self) -> bool {
        matches!(
            self,
            Hook::Empty | Hook::EmptyWithExitTracepoints | Hook::EmptyWithRawExit
        )
    }
}

/// Recording loads eBPF programs and creates cgroups: checked before either, so the user gets
/// the one line that says what to do.
pub fn check_privilege() -> Result<(), Error> {
    if nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    Err(Error::Permission(
        "recording loads eBPF programs: run profgen as root (or with CAP_BPF and CAP_PERFMON)"
            .into(),
    ))
}

/// How the syscall-entry program learns the current cgroup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CgroupIdBy {
    /// Four loads at offsets from the running kernel's BTF (the cheapest).
    KernelTypes,
    /// `bpf_get_current_cgroup_id` (no usable BTF, or the verifier refused the loads).
    Helper,
}

/// Loaded and attached eBPF programs. Detached when dropped.
pub struct Kernel {
    /// How the entry program reads the cgroup id; for the benchmark and the tests.
    pub cgroup_id_by: CgroupIdBy,
    /// Whether each CPU remembers the cgroup of the task that last entered a syscall there
    /// (needs the hooks that tell it when to forget).
    pub remembers_cgroups: bool,
    /// Whether the entry program stages every event syscall for the exit program (kernels
    /// before 5.15, or `PROFGEN_EXITS=staged`) rather than only execs.
    pub stages_every_event: bool,
    /// The hook that completes events at syscall exit (`None`: this hook makes no events).
    pub event_exits: Option<EventExits>,
    ebpf: Ebpf,
    levels: Vec<u32>,
    events: Option<EventRing>,
    /// What the kernel cannot report, for the recording and the terminal.
    pub limits: Limits,
}

/// The ring buffer the exit programs write events to. It owns the map (and so its fd): the
/// events stay readable after the programs are detached.
pub struct EventRing(RingBuf<MapData>);

impl EventRing {
    /// Takes every event waiting.
    pub fn drain(&mut self) -> Vec<Event> {
        let mut out = Vec::new();
        while let Some(item) = self.0.next() {
            if item.len() >= std::mem::size_of::<Event>() {
                // SAFETY: the kernel side writes whole `Event`s; read unaligned.
                out.push(unsafe { std::ptr::read_unaligned(item.as_ptr().cast::<Event>()) });
            }
        }
        out
    }
}

/// Readable when events wait: the recorder drains them as soon as they arrive, while the
/// processes that made them still exist (relative paths and fds are resolved through
/// `/proc/<pid>`).
impl std::os::fd::AsRawFd for EventRing {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.0.as_raw_fd()
    }
}

/// Facts this kernel cannot give.
#[derive(Clone, Debug, Default)]
pub struct Limits {
    /// No `capability:cap_capable` tracepoint (before Linux 6.14) or an unexpected format.
    pub capabilities: Option<String>,
    /// Exit tracepoints that could not be attached: those syscalls' events are missing.
    pub missing_exits: Vec<String>,
    /// Why processes joining a cgroup late cannot be detected, if they cannot.
    pub late_joins: Option<String>,
}

impl Kernel {
    /// Loads the object and attaches `hook` to `raw_syscalls:sys_enter`. Recording prefers
    /// the BTF tracepoint (registers and cgroup id read without helper calls) and falls back
    /// to the raw tracepoint on kernels without BTF.
    pub fn load(hook: Hook) -> Result<Self, Error> {
        if OBJECT.is_empty() {
            return Err(Error::NoEbpf);
        }
        check_privilege()?;
        raise_memlock();
        if hook.is_floor() {
            return Self::load_floor(hook);
        }
        let (mut ebpf, attached, cgroup_id_by) = attach_enter()?;
        attached.map_err(|e| classify_load_error(&e))?;
        let mut limits = Limits::default();
        let mut events = None;
        let mut stages_every_event = false;
        let mut event_exits = None;
        ensure_tracefs();
        limits.late_joins = attach_joined(&mut ebpf).err();
        let remembers_cgroups = limits.late_joins.is_none() && remember_cgroups(&mut ebpf)?;
        if hook == Hook::Record {
            let (exits, absent) = attach_exits(&mut ebpf, forced_exits()?)?;
            let staged = match exits {
                EventExits::Staged => staging::ALL,
                EventExits::Fexit | EventExits::Tracepoint => staging::EXECS,
            };
            set_first(&mut ebpf, maps::EVENTS_ENABLED, staged)?;
            limits.missing_exits = absent;
            stages_every_event = staged == staging::ALL;
            event_exits = Some(exits);
            limits.capabilities = attach_capable(&mut ebpf).err();
            events = Some(EventRing(
                RingBuf::try_from(
                    ebpf.take_map(maps::EVENTS)
                        .ok_or_else(|| missing(maps::EVENTS))?,
                )
                .map_err(map_err)?,
            ));
        }
        Ok(Self {
            cgroup_id_by,
            remembers_cgroups,
            stages_every_event,
            event_exits,
            ebpf,
            levels: Vec::new(),
            events,
            limits,
        })
    }

    /// Empty programs on the hooks `hook` names, for the benchmark.
    fn load_floor(hook: Hook) -> Result<Self, Error> {
        let mut ebpf = load_object(&CgroupIdPath::HELPER)?;
        attach_raw(&mut ebpf, maps::PROG_SYS_ENTER_EMPTY, maps::TP_SYS_ENTER)
            .and_then(|()| match hook {
                Hook::EmptyWithExitTracepoints => attach_empty_exits(&mut ebpf),
                Hook::EmptyWithRawExit => {
                    attach_raw(&mut ebpf, maps::PROG_SYS_EXIT_EMPTY, maps::TP_SYS_EXIT)
                }
                _ => Ok(()),
            })
            .map_err(|e| classify_load_error(&e))?;
        Ok(Self {
            cgroup_id_by: CgroupIdBy::Helper,
            remembers_cgroups: false,
            stages_every_event: false,
            event_exits: None,
            ebpf,
            levels: Vec::new(),
            events: None,
            limits: Limits::default(),
        })
    }

    /// The event ring buffer, for whoever drains it (the kernel handle keeps none once
    /// taken); `None` when this hook makes no events, or once taken.
    pub fn take_events(&mut self) -> Option<EventRing> {
        self.events.take()
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
        let slots: Array<&MapData, CgroupSyscalls> = Array::try_from(
            self.ebpf
                .map(maps::SLOTS)
                .ok_or_else(|| missing(maps::SLOTS))?,
        )
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
            self.ebpf
                .map(maps::STATS)
                .ok_or_else(|| missing(maps::STATS))?,
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

fn load_object(cgroup_id: &CgroupIdPath) -> Result<Ebpf, Error> {
    EbpfLoader::new()
        .override_global(cgroup_id::GLOBAL, cgroup_id, true)
        .load(OBJECT)
        // With its causes: "failed to create map" alone hides the errno that says why.
        .map_err(|e| classify_load_error(&verbose(&e)))
}

/// Loads the object and attaches the recording program to `sys_enter`, the cheapest way the
/// kernel accepts: the BTF tracepoint reading the cgroup id through the kernel's types, then
/// the BTF tracepoint with the helper, then the raw tracepoint.
fn attach_enter() -> Result<(Ebpf, Result<(), String>, CgroupIdBy), Error> {
    let path = super::btf::running_kernel_cgroup_id_path().unwrap_or_else(|why| {
        log::debug!("cgroup id through the helper: {why}");
        CgroupIdPath::HELPER
    });
    let mut ebpf = load_object(&path)?;
    let by = if path.known() {
        CgroupIdBy::KernelTypes
    } else {
        CgroupIdBy::Helper
    };
    let Err(first) = attach_btf(&mut ebpf) else {
        return Ok((ebpf, Ok(()), by));
    };
    log::debug!("BTF tracepoint refused ({path:?}): {first}");
    if path.known() {
        ebpf = load_object(&CgroupIdPath::HELPER)?;
        if attach_btf(&mut ebpf).is_ok() {
            return Ok((ebpf, Ok(()), CgroupIdBy::Helper));
        }
    }
    let attached = attach_raw(&mut ebpf, maps::PROG_SYS_ENTER_RAW, maps::TP_SYS_ENTER);
    Ok((ebpf, attached, CgroupIdBy::Helper))
}

fn attach_btf(ebpf: &mut Ebpf) -> Result<(), String> {
    let btf = Btf::from_sys_fs().map_err(|e| verbose(&e))?;
    let program: &mut BtfTracePoint = ebpf
        .program_mut(maps::PROG_SYS_ENTER_BTF)
        .ok_or("BTF program missing from the object")?
        .try_into()
        .map_err(|e: aya::programs::ProgramError| e.to_string())?;
    program
        .load(maps::TP_SYS_ENTER, &btf)
        .map_err(|e| verbose(&e))?;
    program.attach().map_err(|e| verbose(&e))?;
    Ok(())
}

/// Classic tracepoints need tracefs; mount it where the kernel documents it if nothing is
/// there.
fn ensure_tracefs() {
    let base = std::path::Path::new("/sys/kernel/tracing");
    if base.join("events").exists()
        || std::path::Path::new("/sys/kernel/debug/tracing/events").exists()
    {
        return;
    }
    let _ = nix::mount::mount(
        Some("tracefs"),
        base,
        Some("tracefs"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    );
}

/// The exit hook `PROFGEN_EXITS` forces (`fexit`, `tracepoint` or `staged`), if any.
fn forced_exits() -> Result<Option<EventExits>, Error> {
    parse_exits(std::env::var("PROFGEN_EXITS").ok().as_deref()).map_err(Error::Target)
}

fn parse_exits(value: Option<&str>) -> Result<Option<EventExits>, String> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => EventExits::ALL
            .into_iter()
            .find(|e| e.as_str() == v)
            .map(Some)
            .ok_or_else(|| {
                format!("PROFGEN_EXITS={v}: expected fexit, tracepoint or staged (or unset it to let profgen choose)")
            }),
    }
}

/// Attaches what completes events at syscall exit, the cheapest way the kernel accepts
/// unless `forced`: `fexit` programs on the syscall handlers (BPF trampolines), else the
/// tracepoint program reading the arguments from the task's saved registers, else the one
/// completing what the entry program staged. Returns the hook used and the exits the kernel
/// does not have.
fn attach_exits(
    ebpf: &mut Ebpf,
    forced: Option<EventExits>,
) -> Result<(EventExits, Vec<String>), Error> {
    if matches!(forced, None | Some(EventExits::Fexit)) {
        match attach_fexits(ebpf) {
            Ok(()) => return Ok((EventExits::Fexit, Vec::new())),
            Err(why) if forced.is_some() => {
                return Err(Error::OldKernel(format!(
                    "PROFGEN_EXITS=fexit: the kernel ({}) refused fexit programs on the syscall handlers ({why}); unset PROFGEN_EXITS to use the tracepoints",
                    kernel_release()
                )))
            }
            Err(why) => eprintln!("profgen: syscall exits through tracepoints: fexit refused ({why})"),
        }
    }
    let regs = if forced == Some(EventExits::Staged) {
        Err("PROFGEN_EXITS=staged".to_owned())
    } else {
        load_tracepoint(ebpf, maps::PROG_SYS_EXIT_EVENT_REGS)
            .map_err(|why| refusal(&why).to_owned())
    };
    let (name, exits) = match regs {
        Ok(()) => (maps::PROG_SYS_EXIT_EVENT_REGS, EventExits::Tracepoint),
        Err(why) if forced == Some(EventExits::Tracepoint) => {
            return Err(Error::OldKernel(format!(
                "PROFGEN_EXITS=tracepoint: the kernel ({}) refused {}: {why}",
                kernel_release(),
                maps::PROG_SYS_EXIT_EVENT_REGS
            )))
        }
        Err(why) => {
            // Silent, this fallback reads paths at entry, before the kernel faulted them
            // in: a program grown past the verifier's limit shows only as paths recorded
            // as the working directory.
            log::debug!("{}: {why}", maps::PROG_SYS_EXIT_EVENT_REGS);
            load_tracepoint(ebpf, maps::PROG_SYS_EXIT_EVENT)
                .map_err(|why| classify_load_error(&why))?;
            (maps::PROG_SYS_EXIT_EVENT, EventExits::Staged)
        }
    };
    let program = tracepoint_program(ebpf, name).map_err(Error::Kernel)?;
    let mut missing = Vec::new();
    for (_, name) in nr::ALL {
        let tracepoint = format!("sys_exit_{name}");
        if program.attach("syscalls", &tracepoint).is_err() {
            missing.push(tracepoint);
        }
    }
    if missing.len() == nr::ALL.len() {
        return Err(Error::Kernel(
            "no syscalls:sys_exit_* tracepoint could be attached (is tracefs mounted at /sys/kernel/tracing?)".into(),
        ));
    }
    Ok((exits, missing))
}

/// Why the kernel refused a program, in one line: the verifier's reason when it gave one,
/// else the error without aya's empty verifier log.
fn refusal(text: &str) -> &str {
    verifier_reason(text).unwrap_or_else(|| {
        let line = first_line(text);
        line.split(". Verifier output:").next().unwrap_or(line)
    })
}

/// The `fexit` program of event syscall `name`, and the kernel function it goes on.
fn fexit_names(name: &str) -> (String, String) {
    (format!("fexit_{name}"), format!("__x64_sys_{name}"))
}

/// Loads and attaches the `fexit` program of every event syscall, or none: on the first
/// refusal (no BTF, no trampolines, a handler missing, the verifier) what was attached is
/// detached and unloaded, and the refusal returned.
fn attach_fexits(ebpf: &mut Ebpf) -> Result<(), String> {
    let btf = Btf::from_sys_fs().map_err(|e| format!("no kernel BTF: {e}"))?;
    let mut loaded = Vec::new();
    let attached = nr::ALL.iter().try_for_each(|(_, name)| {
        let (program, function) = fexit_names(name);
        let fexit: &mut FExit = ebpf
            .program_mut(&program)
            .ok_or_else(|| format!("program {program} missing from the object"))?
            .try_into()
            .map_err(|e: aya::programs::ProgramError| e.to_string())?;
        fexit
            .load(&function, &btf)
            .map_err(|e| format!("{function}: {}", refusal(&verbose(&e))))?;
        loaded.push(program);
        fexit
            .attach()
            .map(drop)
            .map_err(|e| format!("{function}: {}", refusal(&verbose(&e))))
    });
    if attached.is_err() {
        for program in &loaded {
            let fexit: Option<&mut FExit> =
                ebpf.program_mut(program).and_then(|p| p.try_into().ok());
            if let Some(fexit) = fexit {
                // Detaches its link too.
                let _ = fexit.unload();
            }
        }
    }
    attached
}

fn tracepoint_program<'a>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut TracePoint, String> {
    ebpf.program_mut(name)
        .ok_or_else(|| format!("program {name} missing from the object"))?
        .try_into()
        .map_err(|e: aya::programs::ProgramError| e.to_string())
}

fn load_tracepoint(ebpf: &mut Ebpf, name: &str) -> Result<(), String> {
    tracepoint_program(ebpf, name)?
        .load()
        .map_err(|e| verbose(&e))
}

/// The text of a classic tracepoint's `format` file.
fn tracepoint_format(category: &str, name: &str) -> Option<String> {
    ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
        .iter()
        .find_map(|base| {
            std::fs::read_to_string(format!("{base}/events/{category}/{name}/format")).ok()
        })
}

/// Whether `format` declares `decl` (e.g. `int cap`) at byte `offset`: the programs read
/// fields at fixed offsets, so a kernel laying them out otherwise is refused.
fn has_field(format: &str, decl: &str, offset: u32) -> bool {
    format
        .lines()
        .any(|l| l.contains(&format!("field:{decl};")) && l.contains(&format!("offset:{offset};")))
}

fn attach_tracepoint(
    ebpf: &mut Ebpf,
    program: &str,
    category: &str,
    name: &str,
) -> Result<(), String> {
    load_tracepoint(ebpf, program)?;
    tracepoint_program(ebpf, program)?
        .attach(category, name)
        .map_err(|e| verbose(&e))?;
    Ok(())
}

/// `capability:cap_capable` exists from Linux 6.14; the program reads `cap` at offset 32 and
/// `ret` at 36, so the format is checked before attaching.
fn attach_capable(ebpf: &mut Ebpf) -> Result<(), String> {
    let format = tracepoint_format("capability", "cap_capable").ok_or_else(|| {
        format!(
            "the kernel ({}) has no capability:cap_capable tracepoint (Linux 6.14+): capabilities were not recorded",
            kernel_release()
        )
    })?;
    if !(has_field(&format, "int cap", 32) && has_field(&format, "int ret", 36)) {
        return Err(
            "capability:cap_capable has an unexpected format: capabilities were not recorded"
                .into(),
        );
    }
    attach_tracepoint(ebpf, maps::PROG_CAP_CAPABLE, "capability", "cap_capable")
}

/// `cgroup:cgroup_attach_task`: the program reads `dst_root` at 8 and `dst_id` at 16.
fn attach_joined(ebpf: &mut Ebpf) -> Result<(), String> {
    const UNDETECTED: &str =
        "processes joining a container after its start (runc exec) are not detected";
    let format = tracepoint_format("cgroup", "cgroup_attach_task")
        .ok_or_else(|| format!("no cgroup:cgroup_attach_task tracepoint: {UNDETECTED}"))?;
    if !(has_field(&format, "int dst_root", 8) && has_field(&format, "u64 dst_id", 16)) {
        return Err(format!(
            "cgroup:cgroup_attach_task has an unexpected format: {UNDETECTED}"
        ));
    }
    attach_tracepoint(
        ebpf,
        maps::PROG_CGROUP_ATTACH,
        "cgroup",
        "cgroup_attach_task",
    )
}

/// Lets each CPU remember the cgroup of the task that last entered a syscall there, once
/// forks (after which a kernel stack may belong to another task) bump the generation as
/// cgroup moves do. Without the fork hook the cgroup is read on every syscall.
fn remember_cgroups(ebpf: &mut Ebpf) -> Result<bool, Error> {
    if let Err(why) = attach_tracepoint(ebpf, maps::PROG_TASK_FORKED, "sched", "sched_process_fork")
    {
        log::debug!("the cgroup is read on every syscall: {why}");
        return Ok(false);
    }
    set_first(ebpf, maps::CGROUP_GENERATION, 1u64)?;
    Ok(true)
}

/// Sets entry 0 of the `Array` map `name` (the one-entry switches the programs read).
fn set_first<V: aya::Pod>(ebpf: &mut Ebpf, name: &str, value: V) -> Result<(), Error> {
    let mut array: Array<&mut MapData, V> =
        Array::try_from(ebpf.map_mut(name).ok_or_else(|| missing(name))?).map_err(map_err)?;
    array.set(0, value, 0).map_err(map_err)
}

/// The empty program on every `syscalls:sys_exit_*` tracepoint recording would use.
fn attach_empty_exits(ebpf: &mut Ebpf) -> Result<(), String> {
    ensure_tracefs();
    load_tracepoint(ebpf, maps::PROG_SYS_EXIT_EVENT_EMPTY)?;
    let program = tracepoint_program(ebpf, maps::PROG_SYS_EXIT_EVENT_EMPTY)?;
    for (_, name) in nr::ALL {
        // Those this kernel lacks are missing for recording too.
        let _ = program.attach("syscalls", &format!("sys_exit_{name}"));
    }
    Ok(())
}

fn attach_raw(ebpf: &mut Ebpf, name: &str, tracepoint: &str) -> Result<(), String> {
    let program: &mut RawTracePoint = ebpf
        .program_mut(name)
        .ok_or_else(|| format!("program {name} missing from the object"))?
        .try_into()
        .map_err(|e: aya::programs::ProgramError| e.to_string())?;
    program.load().map_err(|e| verbose(&e))?;
    program.attach(tracepoint).map_err(|e| verbose(&e))?;
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
    if std::env::var_os("PROFGEN_DEBUG").is_some() {
        eprintln!("profgen: debug: {text}");
    }
    let lower = text.to_lowercase();
    // The verifier answers EACCES too: its log, not the errno, says what happened.
    if let Some(reason) = verifier_reason(text) {
        return Error::OldKernel(format!(
            "the eBPF verifier of this kernel ({}) rejected profgen's program: {reason}; profgen's programs are verified on Linux 6.18 (set PROFGEN_DEBUG=1 for the whole log)",
            kernel_release()
        ));
    }
    if lower.contains("operation not permitted") || lower.contains("permission denied") {
        let cause = first_line(text).rsplit(": ").next().unwrap_or(text);
        Error::Permission(format!(
            "the kernel refused to load eBPF programs ({cause}): profgen needs root, or CAP_BPF and CAP_PERFMON, and bpf(2) and perf_event_open(2) allowed by the seccomp profile and LSM policy it runs under (kernel.unprivileged_bpf_disabled does not matter for root)"
        ))
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

/// The verifier's reason for refusing a program: the line before its statistics
/// (`verification time …` / `processed N insns …`), when the text holds a verifier log.
fn verifier_reason(text: &str) -> Option<&str> {
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let stats = lines.iter().position(|l| {
        l.starts_with("verification time") || (l.starts_with("processed ") && l.contains(" insns"))
    })?;
    lines[..stats]
        .iter()
        .rev()
        .find(|l| {
            !l.is_empty() && !l.starts_with(';') && !l.starts_with(|c: char| c.is_ascii_digit())
        })
        .copied()
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

#[cfg(test)]
mod load_error_tests {
    use super::*;

    #[test]
    fn profgen_exits_names_a_hook_or_is_refused_in_one_line() {
        let cases = [
            (None, Ok(None)),
            (Some(""), Ok(None)),
            (Some("fexit"), Ok(Some(EventExits::Fexit))),
            (Some("tracepoint"), Ok(Some(EventExits::Tracepoint))),
            (Some(" staged "), Ok(Some(EventExits::Staged))),
        ];
        for (value, want) in cases {
            assert_eq!(parse_exits(value), want, "{value:?}");
        }
        let err = parse_exits(Some("kprobe")).unwrap_err();
        assert!(
            err.contains("PROFGEN_EXITS=kprobe") && err.contains("fexit, tracepoint or staged"),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
    }

    #[test]
    fn a_refusal_is_one_line() {
        assert_eq!(
            refusal("the BPF_PROG_LOAD syscall returned Operation not permitted (os error 1). Verifier output: : Operation not permitted (os error 1)"),
            "the BPF_PROG_LOAD syscall returned Operation not permitted (os error 1)"
        );
        assert_eq!(
            refusal("the BPF_PROG_LOAD syscall failed. Verifier output: 0: (bf) r6 = r1\nR2 min value is negative\nprocessed 10 insns (limit 1000000)\n: Permission denied (os error 13)"),
            "R2 min value is negative"
        );
        assert_eq!(
            refusal("attach failed: unknown error 524"),
            "attach failed: unknown error 524"
        );
    }

    #[test]
    fn every_event_syscall_has_its_fexit_program_on_its_handler() {
        assert_eq!(
            fexit_names("renameat2"),
            (
                "fexit_renameat2".to_owned(),
                "__x64_sys_renameat2".to_owned()
            )
        );
        if OBJECT.is_empty() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but profgen was built without its eBPF programs"
            );
            return;
        }
        // The object's symbol names, NUL-terminated: a program missing from the list in
        // `profiler-ebpf/src/fexit.rs` would only show as a fallback to the tracepoints.
        for (_, name) in nr::ALL {
            let symbol = format!("{}\0", fexit_names(name).0);
            assert!(
                OBJECT.windows(symbol.len()).any(|w| w == symbol.as_bytes()),
                "no program {symbol:?} in the eBPF object"
            );
        }
    }

    #[test]
    fn a_verifier_log_is_not_a_permission_problem() {
        let log = "the BPF_PROG_LOAD syscall failed. Verifier output: 0: (bf) r6 = r1\n; fun(dst, size, unsafe_ptr)\n1008: (85) call bpf_probe_read_user#112\nR2 min value is negative, either use unsigned or 'var &= const'\nverification time 407263 usec\nstack depth 80+0\nprocessed 8814 insns (limit 1000000) max_states_per_insn 7\n: Permission denied (os error 13)";
        assert_eq!(
            verifier_reason(log),
            Some("R2 min value is negative, either use unsigned or 'var &= const'")
        );
        let e = classify_load_error(log).to_string();
        assert!(
            e.contains("verifier") && e.contains("R2 min value is negative"),
            "{e}"
        );
        assert!(!e.contains("run as root"), "{e}");
        assert_eq!(
            verifier_reason("Operation not permitted (os error 1)"),
            None
        );
        assert!(classify_load_error("Operation not permitted (os error 1)").is_permission());
    }

    #[test]
    fn a_refused_map_names_the_errno_and_what_to_allow() {
        let err = classify_load_error(
            "map error: failed to create map `PENDING`: Operation not permitted (os error 1)",
        );
        assert!(err.is_permission());
        let text = err.to_string();
        assert!(
            text.contains("(Operation not permitted (os error 1))"),
            "{text}"
        );
        for needs in ["CAP_BPF", "bpf(2)", "seccomp"] {
            assert!(text.contains(needs), "{text}");
        }
    }
}
