//! Giving freed memory back to the system between phases of a large synthesis.

/// Returns the heap's free pages to the system. A synthesis of a million-file recording frees
/// hundreds of megabytes of small allocations that the allocator would otherwise keep, and
/// what comes next (the recording's JSON, a buffer of its own) would be counted on top of
/// them. A no-op where the C library has no `malloc_trim`.
pub fn release_freed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists; it takes no pointer.
    unsafe {
        libc::malloc_trim(0);
    }
}
