//! profgen's eBPF programs. Built by `profiler/build.rs` (nightly, bpf-linker) and embedded
//! into the `profgen` binary.
#![no_std]
#![no_main]
// `atomic_or` without a fetch: the BPF target has no atomic read-modify-write in `core`.
#![feature(core_intrinsics)]
#![expect(
    internal_features,
    reason = "atomic_or is the only atomic bit-set on BPF"
)]

mod arg_values;
mod current_cgroup;
mod events;
mod fexit;
mod maps;
mod syscalls;
mod tracepoint;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

/// GPL: `bpf_probe_read_kernel` is a GPL-only helper.
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
