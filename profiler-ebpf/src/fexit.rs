//! Syscall exits as `fexit` programs on the kernel's syscall handlers (`__x64_sys_<name>`,
//! whose one argument is the task's saved registers), where the kernel runs BPF trampolines:
//! called from the handler's return with the registers and the result, without the
//! `syscalls:sys_exit_*` tracepoint's record. The loader falls back to the tracepoint
//! (`events::exit_event_syscall_regs`) where they are refused.
//!
//! One program per syscall, named `fexit_<name>` (`profiler_common::event::nr::ALL`): the
//! number is a constant, so each keeps only its syscall's branch of `events::fill` and stays
//! small for the verifier. Every program builds its event with the tracepoint path's code.

use aya_ebpf::{macros::fexit, programs::FExitContext};
use profiler_common::event::nr;

use crate::events;

macro_rules! exits {
    ($($program:ident = $nr:ident,)*) => {$(
        #[fexit]
        pub fn $program(ctx: FExitContext) -> i32 {
            // `long __x64_sys_<name>(const struct pt_regs *regs)`: the result follows the
            // argument (read from the context on any kernel with trampolines; the
            // `bpf_get_func_ret` helper needs 5.17).
            events::exit_handler(nr::$nr, ctx.arg(0), ctx.arg(1));
            0
        }
    )*};
}

exits! {
    fexit_open = OPEN,
    fexit_mmap = MMAP,
    fexit_socket = SOCKET,
    fexit_connect = CONNECT,
    fexit_accept = ACCEPT,
    fexit_sendto = SENDTO,
    fexit_sendmsg = SENDMSG,
    fexit_bind = BIND,
    fexit_listen = LISTEN,
    fexit_execve = EXECVE,
    fexit_flock = FLOCK,
    fexit_truncate = TRUNCATE,
    fexit_rename = RENAME,
    fexit_mkdir = MKDIR,
    fexit_rmdir = RMDIR,
    fexit_creat = CREAT,
    fexit_link = LINK,
    fexit_unlink = UNLINK,
    fexit_symlink = SYMLINK,
    fexit_chmod = CHMOD,
    fexit_chown = CHOWN,
    fexit_lchown = LCHOWN,
    fexit_openat = OPENAT,
    fexit_mkdirat = MKDIRAT,
    fexit_fchownat = FCHOWNAT,
    fexit_unlinkat = UNLINKAT,
    fexit_renameat = RENAMEAT,
    fexit_linkat = LINKAT,
    fexit_symlinkat = SYMLINKAT,
    fexit_fchmodat = FCHMODAT,
    fexit_accept4 = ACCEPT4,
    fexit_renameat2 = RENAMEAT2,
    fexit_execveat = EXECVEAT,
    fexit_openat2 = OPENAT2,
}
