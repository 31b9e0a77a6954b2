//! Types and constants shared by the eBPF programs (`profiler-ebpf`) and userspace
//! (`profiler`). Everything here is `#[repr(C)]` with explicit padding so both sides agree
//! byte for byte, and the pure helpers are tested on the host.
#![no_std]

pub mod args;
pub mod bitmap;
pub mod cgroup_id;
pub mod event;
pub mod maps;
pub mod stats;
