//! Fields of a classic tracepoint's record, loaded directly: the verifier allows reads from
//! the record, where `TracePointContext::read_at` would call a helper for each field.

use aya_ebpf::{programs::TracePointContext, EbpfContext};
use core::ptr::read_volatile;

/// The field of type `T` at byte `offset` of the record (a multiple of its size, as the
/// kernel lays records out).
#[inline(always)]
pub fn field<T: Copy>(ctx: &TracePointContext, offset: usize) -> T {
    // SAFETY: the context is the record; the caller names a field's offset, checked against
    // the tracepoint's format where it is not a stable ABI, and the verifier bounds it.
    unsafe { read_volatile(ctx.as_ptr().cast::<u8>().add(offset).cast::<T>()) }
}
