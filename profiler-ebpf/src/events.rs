//! Rare events (files, execs, sockets, capabilities): built from a syscall's arguments and
//! result, deduplicated, and sent through the ring buffer once per fact.
//!
//! A syscall event is made at the syscall's exit (`syscalls:sys_exit_*`), where the result
//! is known. Where the kernel lets the program find the task's saved registers
//! (`bpf_task_pt_regs`, Linux 5.15+), the exit program reads the arguments there itself: the
//! entry program stages nothing but execs, whose arguments are gone once the new program
//! runs. Otherwise the entry program stages every event syscall in `PENDING` (see
//! `event::staging`). Where the kernel runs BPF trampolines, `fexit` programs on the syscall
//! handlers take the tracepoint's place (`fexit.rs`): the same events, built here.

use aya_ebpf::{
    bindings::task_struct,
    helpers::{
        bpf_get_current_pid_tgid, bpf_get_current_uid_gid, bpf_probe_read_user,
        bpf_probe_read_user_str_bytes, generated,
    },
    macros::tracepoint,
    programs::TracePointContext,
};
use core::ffi::c_void;
use profiler_common::{
    event::{kind, nr, status, Event, ADDR_LEN, PATH_LEN},
    maps::DIR_AGGREGATE_AFTER,
    stats::Stat,
};

use crate::{
    current_cgroup,
    maps::{count, DIRS, EVENTS, PENDING, SCRATCH, SENT},
    syscalls::{recorded, regs, task_phase, BtfRegs, Regs},
    tracepoint::field,
};

/// The syscall's first six arguments.
pub struct Args(pub [u64; 6]);

impl Args {
    #[inline(always)]
    pub fn read(regs: &impl Regs) -> Self {
        let read = |off| regs.read(off).unwrap_or(0);
        Self([
            read(regs::DI),
            read(regs::SI),
            read(regs::DX),
            read(regs::R10),
            read(regs::R8),
            read(regs::R9),
        ])
    }
}

const PROT_EXEC: u64 = 4;

/// Fills `ev` with the event of syscall `nr` made by a recorded `cgroup`, reading its paths
/// and addresses from user memory. `None` for calls that make no event: mappings that are
/// not executable file mappings, sends without an address.
#[inline(always)]
fn fill(ev: &mut Event, nr: u32, cgroup: u64, phase: u32, args: &Args) -> Option<()> {
    let a = &args.0;
    // Filter before touching memory.
    match nr {
        nr::MMAP if a[2] & PROT_EXEC == 0 || (a[4] as i64) < 0 => return None,
        nr::SENDTO if a[4] == 0 => return None,
        _ => {}
    }
    ev.kind = kind::SYSCALL;
    ev.nr = nr;
    ev.cgroup = cgroup;
    // Who made the call: set where it is known to be needed (see `send_once`).
    ev.pid_tgid = 0;
    ev.uid_gid = 0;
    ev.ret = 0;
    ev.args = [a[0], a[1], a[2], a[3]];
    ev.status = status::of_phase(phase);
    ev.path_len = 0;
    ev.path2_len = 0;
    ev.addr_len = 0;

    match nr {
        nr::OPEN
        | nr::CREAT
        | nr::TRUNCATE
        | nr::MKDIR
        | nr::RMDIR
        | nr::UNLINK
        | nr::CHMOD
        | nr::CHOWN
        | nr::LCHOWN
        | nr::EXECVE => read_path(ev, a[0], false),
        nr::OPENAT | nr::MKDIRAT | nr::FCHOWNAT | nr::UNLINKAT | nr::FCHMODAT | nr::EXECVEAT => {
            read_path(ev, a[1], false)
        }
        nr::OPENAT2 => {
            read_path(ev, a[1], false);
            // struct open_how { u64 flags; … }: keep the flags where openat has them.
            // SAFETY: user pointer, checked by the helper.
            ev.args[2] = unsafe { bpf_probe_read_user(a[2] as *const u64) }.unwrap_or(0);
        }
        nr::RENAME | nr::LINK | nr::SYMLINK => {
            read_path(ev, a[0], false);
            read_path(ev, a[1], true);
        }
        nr::RENAMEAT | nr::RENAMEAT2 | nr::LINKAT => {
            read_path(ev, a[1], false);
            read_path(ev, a[3], true);
        }
        nr::SYMLINKAT => {
            read_path(ev, a[0], false);
            read_path(ev, a[2], true);
        }
        // mmap(addr, len, prot, flags, fd, off): keep fd where the others keep theirs.
        nr::MMAP => ev.args[0] = a[4],
        nr::CONNECT | nr::BIND => read_addr(ev, a[1], a[2]),
        nr::SENDTO => read_addr(ev, a[4], a[5]),
        nr::SENDMSG => {
            // struct msghdr { void *msg_name; int msg_namelen; … }
            // SAFETY: user pointers, checked by the helper.
            let name = unsafe { bpf_probe_read_user(a[1] as *const u64) }.unwrap_or(0);
            if name == 0 {
                return None;
            }
            let len = unsafe { bpf_probe_read_user((a[1] + 8) as *const u32) }.unwrap_or(0);
            read_addr(ev, name, len as u64);
        }
        // accept: the peer address is written by the kernel; read at exit.
        _ => {}
    }
    Some(())
}

/// Stages the event of syscall `nr` at its entry, for its exit.
#[inline(always)]
pub fn stage(nr: u32, cgroup: u64, phase: u32, args: &Args) -> Option<()> {
    let ev = SCRATCH.get_ptr_mut(0)?;
    // SAFETY: per-CPU scratch; tracepoint programs run with preemption disabled.
    let ev = unsafe { &mut *ev };
    fill(ev, nr, cgroup, phase, args)?;
    identify(ev);
    if PENDING.insert(ev.pid_tgid, &*ev, 0).is_err() {
        count(Stat::PendingFull);
    }
    Some(())
}

/// Completes events at `syscalls:sys_exit_*` from what the entry program staged.
#[tracepoint]
pub fn exit_event_syscall(ctx: TracePointContext) -> u32 {
    let (exit_nr, ret) = exit_record(&ctx);
    let _ = complete_staged(exit_nr, ret);
    0
}

/// Completes events at `syscalls:sys_exit_*` from the task's saved registers; execs from
/// what the entry program staged.
#[tracepoint]
pub fn exit_event_syscall_regs(ctx: TracePointContext) -> u32 {
    let (exit_nr, ret) = exit_record(&ctx);
    let _ = if nr::is_exec(exit_nr as u64) {
        complete_staged(exit_nr, ret)
    } else {
        complete_from_regs(exit_nr as u32, ret)
    };
    0
}

/// An empty program on the `syscalls:sys_exit_*` tracepoints the exit programs use: the
/// floor of that hook. Only the benchmark attaches it.
#[tracepoint]
pub fn exit_event_syscall_empty(_ctx: TracePointContext) -> u32 {
    0
}

/// `syscalls:sys_exit_*` format: `int __syscall_nr` at 8, `long ret` at 16.
const EXIT_NR: usize = 8;
const EXIT_RET: usize = 16;

#[inline(always)]
fn exit_record(ctx: &TracePointContext) -> (i32, i64) {
    (field(ctx, EXIT_NR), field(ctx, EXIT_RET))
}

#[inline(always)]
fn complete_staged(exit_nr: i32, ret: i64) -> Option<()> {
    let pid_tgid = bpf_get_current_pid_tgid();
    let ev = PENDING.get_ptr_mut(pid_tgid)?;
    // SAFETY: map value owned by this task until removed below.
    let ev = unsafe { &mut *ev };
    if ev.nr as i32 == exit_nr {
        finish(ev, ret);
    }
    let _ = PENDING.remove(pid_tgid);
    Some(())
}

/// Completes the event of syscall `nr` at the return of its handler (`fexit` on
/// `__x64_sys_<name>`, see `fexit.rs`), from the saved registers the handler was given;
/// execs from what the entry program staged, as at the tracepoint.
#[inline(always)]
pub fn exit_handler(nr: u32, regs: *const u8, ret: i64) {
    let _ = if nr::is_exec(nr as u64) {
        complete_staged(nr as i32, ret)
    } else {
        complete_from(nr, ret, |_| regs)
    };
}

#[inline(always)]
fn complete_from_regs(nr: u32, ret: i64) -> Option<()> {
    // SAFETY: the current task, as `complete_from` got it; the result is typed by BTF.
    complete_from(nr, ret, |task| unsafe { generated::bpf_task_pt_regs(task) }
        as *const u8)
}

/// Fills, completes and sends the event of syscall `nr` of the current task, if its cgroup
/// is recorded, reading the arguments from the saved registers `regs` gives.
#[inline(always)]
fn complete_from(
    nr: u32,
    ret: i64,
    regs: impl FnOnce(*mut task_struct) -> *const u8,
) -> Option<()> {
    // SAFETY: helper without preconditions.
    let task = unsafe { generated::bpf_get_current_task_btf() };
    // Every process's event syscalls come here: the registers are asked for only once the
    // caller is known to be recorded.
    let cgroup = current_cgroup::of_current_task(task as *const u8);
    let entry = recorded(cgroup)?;
    // SAFETY: map value of a recorded cgroup.
    let (phase, _) = task_phase(unsafe { &*entry });
    let regs = regs(task);
    let ev = SCRATCH.get_ptr_mut(0)?;
    // SAFETY: per-CPU scratch; tracepoint programs run with preemption disabled. `fexit`
    // programs only with migration disabled: on a fully preemptible kernel (CONFIG_PREEMPT)
    // another event syscall's exit on this CPU could overwrite the event while this one is
    // preempted (a wrong fact, never a fault); kernels with voluntary preemption (Debian's,
    // Ubuntu's generic, RHEL's) do not preempt a running program.
    let ev = unsafe { &mut *ev };
    fill(ev, nr, cgroup, phase, &Args::read(&BtfRegs(regs)))?;
    if per_process(nr) {
        identify(ev);
    }
    finish(ev, ret);
    Some(())
}

/// Adds the result and what only exists after the call, and sends the event unless the
/// same fact was sent before.
#[inline(always)]
fn finish(ev: &mut Event, ret: i64) {
    ev.ret = ret;
    if (ev.nr == nr::ACCEPT || ev.nr == nr::ACCEPT4) && ret >= 0 && ev.args[1] != 0 {
        // SAFETY: user pointer, checked by the helper.
        let len = unsafe { bpf_probe_read_user(ev.args[2] as *const u32) }.unwrap_or(0);
        read_addr(ev, ev.args[1], len as u64);
    }
    if nr::is_exec(ev.nr as u64) {
        // Credentials after exec: a setuid binary changes them.
        ev.args[3] = bpf_get_current_uid_gid();
    }
    let hash = fact_hash(ev);
    if aggregates(ev) {
        aggregate(ev, hash);
    } else {
        send_once(ev, hash);
    }
}

/// Sends a new name of a directory while the directory has had at most
/// `DIR_AGGREGATE_AFTER` of them for this operation, then the directory fact once, then
/// nothing: a flood of names in one directory costs the ring buffer 65 events, not one per
/// name. Counted only once sent, so a full ring buffer loses nothing it does not report.
/// The count is read and written without a lock: two CPUs racing may send a name or the
/// directory fact twice, which userspace deduplicates.
#[inline(always)]
fn aggregate(ev: &mut Event, hash: u64) {
    // SAFETY: the value is not read.
    if unsafe { SENT.get(hash) }.is_some() {
        return;
    }
    if ev.pid_tgid == 0 {
        identify(ev);
    }
    let key = dir_key(ev);
    // SAFETY: copied out at once.
    let sent = unsafe { DIRS.get(key) }.copied().unwrap_or(0);
    if sent > DIR_AGGREGATE_AFTER {
        return;
    }
    if sent == DIR_AGGREGATE_AFTER {
        ev.status |= status::DIR_AGGREGATED;
    }
    if EVENTS.output::<Event>(ev, 0).is_err() {
        count(Stat::RingBufFull);
        return;
    }
    let _ = DIRS.insert(key, sent + 1, 0);
    let _ = SENT.insert(hash, 1u8, 0);
}

/// Path-based file operations on one name that succeeded: what a directory of many names
/// is made of. Two-name calls (rename, link, symlink), execs and failures stay per name.
#[inline(always)]
fn aggregates(ev: &Event) -> bool {
    let one_path = matches!(
        ev.nr,
        nr::OPEN
            | nr::OPENAT
            | nr::OPENAT2
            | nr::CREAT
            | nr::TRUNCATE
            | nr::MKDIR
            | nr::MKDIRAT
            | nr::RMDIR
            | nr::UNLINK
            | nr::UNLINKAT
            | nr::CHMOD
            | nr::FCHMODAT
            | nr::CHOWN
            | nr::LCHOWN
            | nr::FCHOWNAT
    );
    let readable = ev.status & (status::PATH_TRUNCATED | status::UNREADABLE) == 0;
    one_path && readable && ev.ret >= 0 && ev.path_len > 0
}

/// What makes names the same directory and operation: the cgroup, the phase, the syscall
/// and the flags that decide what it does (open's access mode and O_CREAT, unlinkat's
/// AT_REMOVEDIR), and the path up to its last `/`. A relative path also keys on its
/// directory fd and the process: another process's cwd or fd 5 is another directory.
#[inline(always)]
fn dir_key(ev: &Event) -> u64 {
    let a = &ev.args;
    let (dirfd, flags) = match ev.nr {
        nr::OPEN => (u64::MAX, a[1]),
        nr::OPENAT | nr::OPENAT2 | nr::UNLINKAT => (a[0] as u32 as u64, a[2]),
        nr::MKDIRAT | nr::FCHMODAT | nr::FCHOWNAT => (a[0] as u32 as u64, 0),
        _ => (u64::MAX, 0),
    };
    let mut h = mix(FNV_OFFSET, DIR_SALT);
    h = mix(h, ev.cgroup);
    h = mix(
        h,
        ev.nr as u64 | ((ev.status & (status::AFTER_FILTER | status::WORKLOAD)) as u64) << 32,
    );
    h = mix(h, flags);
    if ev.path[0] != b'/' {
        h = mix(h, dirfd);
        h = mix(h, ev.pid_tgid >> 32);
    }
    hash_bytes(h, &ev.path, dir_len(ev))
}

/// Keeps directory keys apart from fact hashes of the same bytes.
const DIR_SALT: u64 = 0x6469_7273;

/// The length of the path's directory part, its last `/` included (0 for a bare name).
/// A word at a time and without branches on the bytes: a branch per byte would give the
/// verifier a state per position of the last `/` so far (a million instructions).
#[inline(always)]
fn dir_len(ev: &Event) -> u32 {
    const SLASHES: u64 = 0x2f2f_2f2f_2f2f_2f2f;
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let len = ev.path_len as u64;
    let words = ev.path.as_ptr().cast::<u64>();
    let mut end: u64 = 0;
    let mut i = 0;
    while i < PATH_LEN / 8 {
        let start = (i * 8) as u64;
        if start >= len {
            break;
        }
        // SAFETY: word `i` of the array, 8-byte aligned (see `hash_bytes`).
        let mut word = unsafe { words.add(i).read() };
        let left = len - start;
        if left < 8 {
            word &= (1u64 << (left * 8)) - 1;
        }
        // 0x80 in each byte that is '/' (the exact zero-byte test of `word ^ SLASHES`); the
        // bytes past the length were zeroed above, so they are not.
        let x = word ^ SLASHES;
        let m = !(((x & LOW7) + LOW7) | x | LOW7);
        // The last '/' is byte k where bit 8k+7 is m's highest: `top` is 8k+8, 0 if none.
        let top = 64 - m.leading_zeros() as u64;
        let found = (top | top.wrapping_neg()) >> 63;
        // `start + top / 8` is past every earlier '/', so this never goes below `end`.
        end += found * (start + top / 8 - end);
        i += 1;
    }
    end as u32
}

/// `capability:cap_capable` format: `int cap` at 32, `int ret` at 36.
const CAP_CAP: usize = 32;
const CAP_RET: usize = 36;

/// Sends each capability a recorded cgroup used, once.
#[inline(always)]
pub fn capable(ctx: &TracePointContext, cgroup: u64, phase: u32) -> Option<()> {
    // Offsets checked against the tracepoint's format at load time.
    let cap: i32 = field(ctx, CAP_CAP);
    let ret: i32 = field(ctx, CAP_RET);
    let ev = SCRATCH.get_ptr_mut(0)?;
    // SAFETY: per-CPU scratch.
    let ev = unsafe { &mut *ev };
    ev.kind = kind::CAPABILITY;
    ev.nr = 0;
    ev.cgroup = cgroup;
    ev.pid_tgid = bpf_get_current_pid_tgid();
    ev.uid_gid = bpf_get_current_uid_gid();
    ev.ret = ret as i64;
    ev.args = [cap as u64, 0, 0, 0];
    ev.status = status::of_phase(phase);
    ev.path_len = 0;
    ev.path2_len = 0;
    ev.addr_len = 0;
    // Each phase's checks are different facts: a capability runc's init checked during
    // set-up must not hide the same check by the workload later.
    let hash = mix(
        mix(mix(FNV_OFFSET, cgroup), cap as u64 | 1 << 40),
        (ret == 0) as u64 | (phase as u64) << 1,
    );
    send_once(ev, hash);
    Some(())
}

#[inline(always)]
fn send_once(ev: &mut Event, hash: u64) {
    // SAFETY: the value is not read.
    if unsafe { SENT.get(hash) }.is_some() {
        return;
    }
    if ev.pid_tgid == 0 {
        identify(ev);
    }
    if EVENTS.output::<Event>(ev, 0).is_err() {
        count(Stat::RingBufFull);
        return;
    }
    let _ = SENT.insert(hash, 1u8, 0);
}

/// The process that made the call, and its credentials. Two helper calls, so made only
/// where needed: for staging (the key), for facts that are per process (before hashing),
/// and for the facts actually sent.
#[inline(always)]
fn identify(ev: &mut Event) {
    ev.pid_tgid = bpf_get_current_pid_tgid();
    ev.uid_gid = bpf_get_current_uid_gid();
}

/// fd-based facts: an fd means nothing outside its process.
#[inline(always)]
fn per_process(nr: u32) -> bool {
    matches!(
        nr,
        nr::MMAP
            | nr::FLOCK
            | nr::SOCKET
            | nr::BIND
            | nr::LISTEN
            | nr::ACCEPT
            | nr::ACCEPT4
            | nr::CONNECT
            | nr::SENDTO
            | nr::SENDMSG
    )
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

#[inline(always)]
fn mix(h: u64, v: u64) -> u64 {
    (h ^ v).wrapping_mul(FNV_PRIME)
}

/// What makes two events the same fact. File events: cgroup, syscall, flags, success, the
/// paths (and the dirfd for relative ones). fd-based events (mmap, flock, socket, bind,
/// listen, accept) also key on the process, since an fd means nothing outside it. Peer
/// ports of accepted connections are ephemeral and left out.
#[inline(always)]
fn fact_hash(ev: &Event) -> u64 {
    let mut h = mix(FNV_OFFSET, ev.cgroup);
    h = mix(
        h,
        ev.nr as u64 | ((ev.status & (status::AFTER_FILTER | status::WORKLOAD)) as u64) << 32,
    );
    h = mix(h, (ev.ret >= 0) as u64);
    if per_process(ev.nr) {
        h = mix(h, ev.pid_tgid >> 32);
    }
    match ev.nr {
        nr::SOCKET => {
            h = mix(h, ev.args[0]);
            h = mix(h, ev.args[1]);
            h = mix(h, ev.ret as u64);
        }
        nr::MMAP
        | nr::FLOCK
        | nr::LISTEN
        | nr::BIND
        | nr::CONNECT
        | nr::SENDTO
        | nr::SENDMSG
        | nr::ACCEPT
        | nr::ACCEPT4 => h = mix(h, ev.args[0]),
        // Relative paths depend on the directory fd; open flags on the access mode.
        _ => {
            h = mix(h, ev.args[0]);
            h = mix(h, ev.args[2]);
        }
    }
    h = hash_bytes(h, &ev.path, ev.path_len);
    h = hash_bytes(h, &ev.path2, ev.path2_len);
    // A word at a time, like the paths: a loop per byte costs the verifier 128 iterations on
    // every path through the program, and with the directory aggregation that was past its
    // million instructions (the program reading arguments at exit was refused).
    let accepted = ev.nr == nr::ACCEPT || ev.nr == nr::ACCEPT4;
    // sockaddr_in / sockaddr_in6 keep the port at bytes 2..4 (of the first word).
    let first_word = if accepted { !0xffff_0000u64 } else { u64::MAX };
    hash_addr(h, &ev.addr, ev.addr_len, first_word)
}

/// `hash_bytes` of an address, its first word masked with `first_word`.
#[inline(always)]
fn hash_addr(mut h: u64, addr: &[u8; ADDR_LEN], len: u32, first_word: u64) -> u64 {
    h = mix(h, len as u64);
    let words = addr.as_ptr().cast::<u64>();
    let mut mask = first_word;
    let mut i = 0;
    while i < ADDR_LEN / 8 {
        let start = (i * 8) as u32;
        if start >= len {
            break;
        }
        // SAFETY: word `i` of the array; `Event` keeps `addr` 8-byte aligned.
        let mut word = unsafe { words.add(i).read() } & mask;
        let left = len - start;
        if left < 8 {
            word &= (1u64 << (left * 8)) - 1;
        }
        h = mix(h, word);
        mask = u64::MAX;
        i += 1;
    }
    h
}

/// Hashes the first `len` bytes a word at a time (the bytes past `len` are left over from
/// earlier events and are masked off).
#[inline(always)]
fn hash_bytes(mut h: u64, bytes: &[u8; PATH_LEN], len: u32) -> u64 {
    h = mix(h, len as u64);
    let words = bytes.as_ptr().cast::<u64>();
    let mut i = 0;
    while i < PATH_LEN / 8 {
        let start = (i * 8) as u32;
        if start >= len {
            break;
        }
        // SAFETY: word `i` of the array; `Event` keeps its paths 8-byte aligned (checked by
        // profiler-common's layout test).
        let mut word = unsafe { words.add(i).read() };
        let left = len - start;
        if left < 8 {
            word &= (1u64 << (left * 8)) - 1;
        }
        h = mix(h, word);
        i += 1;
    }
    h
}

#[inline(always)]
fn read_path(ev: &mut Event, ptr: u64, second: bool) {
    let (buf, truncated) = if second {
        (&mut ev.path2, status::PATH2_TRUNCATED)
    } else {
        (&mut ev.path, status::PATH_TRUNCATED)
    };
    // SAFETY: user pointer, checked by the helper.
    let len = match unsafe { bpf_probe_read_user_str_bytes(ptr as *const u8, buf) } {
        Ok(s) => s.len() as u32,
        Err(_) => {
            ev.status |= status::UNREADABLE;
            0
        }
    };
    if len as usize >= PATH_LEN - 1 {
        ev.status |= truncated;
    }
    if second {
        ev.path2_len = len;
    } else {
        ev.path_len = len;
    }
}

// `read_addr` masks a length with `ADDR_LEN - 1`.
const _: () = assert!(ADDR_LEN.is_power_of_two());

#[inline(always)]
fn read_addr(ev: &mut Event, ptr: u64, len: u64) {
    if ptr == 0 {
        return;
    }
    let mut n = len as usize;
    if n > ADDR_LEN {
        n = ADDR_LEN;
    }
    if n == 0 {
        return;
    }
    // The size the helper gets must carry its bound in the register itself: the compiler
    // compares a copy reloaded from the stack, which the verifier of kernels before 6.8 does
    // not tie to the register passed (Debian 12's 6.1 refuses the program: "R2 min value is
    // negative"). The whole buffer is a constant size; a shorter one is masked after an
    // opaque copy, so the compiler cannot drop the mask as redundant.
    let size = match n >= ADDR_LEN {
        true => ADDR_LEN as u32,
        false => core::hint::black_box(n as u32) & (ADDR_LEN as u32 - 1),
    };
    // SAFETY: user pointer, checked by the helper; `size` is bounded by the buffer.
    let rc = unsafe {
        generated::bpf_probe_read_user(
            ev.addr.as_mut_ptr() as *mut c_void,
            size,
            ptr as *const c_void,
        )
    };
    if rc == 0 {
        ev.addr_len = n as u32;
    } else {
        ev.status |= status::UNREADABLE;
    }
}
