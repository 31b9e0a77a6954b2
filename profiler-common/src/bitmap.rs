//! Per-cgroup syscall bitmaps: one bit per syscall number, one bitmap per ABI.
//!
//! The kernel side tests a bit before setting it, so once a workload has made each of its
//! syscalls once, recording is read-only.

/// Syscall numbers recorded per ABI. x86_64 numbers end below 512, x32 below 548 (after
/// masking [`X32_SYSCALL_BIT`]), i386 below 500.
pub const SYSCALL_SLOTS: usize = 1024;
/// `u64` words in one ABI's bitmap.
pub const WORDS: usize = SYSCALL_SLOTS / 64;
/// Set in the syscall number of an x32 call (`__X32_SYSCALL_BIT`).
pub const X32_SYSCALL_BIT: u64 = 0x4000_0000;
/// `__USER32_CS`: the code segment of a task running 32-bit code (the i386 ABI).
pub const USER32_CS: u64 = 0x23;

/// The syscall ABIs of an x86_64 kernel.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Abi {
    X86_64 = 0,
    I386 = 1,
    X32 = 2,
}

impl Abi {
    pub const ALL: [Abi; 3] = [Abi::X86_64, Abi::I386, Abi::X32];
    pub const COUNT: usize = Self::ALL.len();

    /// Classifies a raw `sys_enter` syscall id made with code segment `cs`; returns the ABI
    /// and the syscall number within it.
    #[inline(always)]
    pub const fn classify(id: u64, cs: u64) -> (Abi, u64) {
        if cs == USER32_CS {
            (Abi::I386, id)
        } else if id & X32_SYSCALL_BIT != 0 {
            (Abi::X32, id & !X32_SYSCALL_BIT)
        } else {
            (Abi::X86_64, id)
        }
    }
}

/// One ABI's bitmap.
pub type Bitmap = [u64; WORDS];

/// Where syscall `nr` lives in a [`Bitmap`]: word index and bit mask, or `None` when out of
/// range.
#[inline(always)]
pub const fn slot(nr: u64) -> Option<(usize, u64)> {
    if nr >= SYSCALL_SLOTS as u64 {
        return None;
    }
    Some(((nr / 64) as usize, 1u64 << (nr % 64)))
}

/// Iterates the syscall numbers set in `bitmap`, ascending.
pub fn iter_set(bitmap: &Bitmap) -> impl Iterator<Item = u32> + '_ {
    bitmap.iter().enumerate().flat_map(|(w, &word)| {
        (0..64u32).filter_map(move |b| (word & (1u64 << b) != 0).then_some(w as u32 * 64 + b))
    })
}

/// What one cgroup did: a value of the `SLOTS` array and of the `CGROUP_SYSCALLS` overflow
/// map.
///
/// A container runtime loads the container's seccomp filter part-way through its own setup,
/// then executes the container's entrypoint. `phase` (see [`phase`]) follows those two
/// moments; syscalls go to `before` until the filter and to `after` from then on.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct CgroupSyscalls {
    /// In `SLOTS`: who owns the slot (see [`slot_owner`]). In `CGROUP_SYSCALLS`: the cgroup id.
    pub owner: u64,
    /// One of [`phase`]'s values.
    pub phase: u32,
    /// Non-zero when a process moved into the cgroup after its phase left [`phase::SETUP`]
    /// (`runc exec`, `kubectl exec`) could not be given a phase of its own (the
    /// `LATE_TASKS` map was full): its set-up then counts as the workload's.
    pub joined_late: u32,
    /// Processes that joined late and have not yet executed their program: while non-zero,
    /// the cgroup's tasks look up their own phase in `LATE_TASKS`.
    pub late_pending: u32,
    pub _pad: u32,
    pub before: [Bitmap; Abi::COUNT],
    pub after: [Bitmap; Abi::COUNT],
    /// Values of the watched arguments (see [`crate::args`]) of calls made after the filter
    /// (phases `FILTERED` and `WORKLOAD`), x86_64 only.
    pub args: crate::args::ArgValues,
}

impl CgroupSyscalls {
    pub const ZERO: Self = Self {
        owner: 0,
        phase: 0,
        joined_late: 0,
        late_pending: 0,
        _pad: 0,
        before: [[0; WORDS]; Abi::COUNT],
        after: [[0; WORDS]; Abi::COUNT],
        args: crate::args::ArgValues::ZERO,
    };
}

#[cfg(feature = "user")]
// SAFETY: repr(C), only integers, no implicit padding.
unsafe impl aya::Pod for CgroupSyscalls {}

/// The `SLOTS` array is a direct-mapped cache indexed by the low bits of the cgroup id, so the
/// hot path is one inlined array access instead of a hash lookup. A slot's `owner` is 0 when
/// empty, the cgroup id when a recorded cgroup owns it, and the id with [`NOT_TARGET`] set
/// when it remembers a cgroup that is not recorded (so other workloads skip the ancestry
/// check). Recorded cgroups that collide with an owned slot go to the hash map.
pub mod slot_owner {
    /// Number of slots; a power of two.
    pub const SLOTS: u32 = 4096;
    /// Marks a remembered cgroup that is not recorded. cgroup ids stay below 2^63.
    pub const NOT_TARGET: u64 = 1 << 63;

    /// The slot of cgroup `id`.
    #[inline(always)]
    pub const fn index(id: u64) -> u32 {
        (id & (SLOTS as u64 - 1)) as u32
    }
}

/// Where a cgroup is in its runtime's hand-over, in [`CgroupSyscalls::phase`]. Only moves
/// forward.
///
/// * seccomp needs what runs after the filter is installed (`FILTERED` and `WORKLOAD`): the
///   runtime's last steps run under the filter too.
/// * AppArmor, capabilities and the rest of the activity need what the entrypoint does
///   (`WORKLOAD`): the runtime applies the AppArmor profile and the capability sets at that
///   exec, and its own steps before it are not the container's.
pub mod phase {
    /// The runtime sets the container up; no filter yet.
    pub const SETUP: u32 = 0;
    /// A task of the cgroup installed a seccomp filter.
    pub const FILTERED: u32 = 1;
    /// After the filter, a task executed a program: the runtime's init became the entrypoint.
    pub const WORKLOAD: u32 = 2;

    /// The phase after syscall `nr` (of `abi`) is entered in phase `now`, given whether the
    /// call installs a seccomp filter.
    #[inline(always)]
    pub const fn next(now: u32, abi: super::Abi, nr: u64, installs_filter: bool) -> u32 {
        match now {
            SETUP if installs_filter => FILTERED,
            FILTERED if super::is_exec(abi, nr) => WORKLOAD,
            _ => now,
        }
    }
}

/// `execve` or `execveat` of `abi`.
#[inline(always)]
pub const fn is_exec(abi: Abi, nr: u64) -> bool {
    match abi {
        Abi::X86_64 => nr == 59 || nr == 322,
        Abi::I386 => nr == 11 || nr == 358,
        // x32 has its own execve/execveat entry points (520, 545).
        Abi::X32 => nr == 520 || nr == 545,
    }
}

/// Syscall numbers that install a seccomp filter, per ABI, with the argument that says so.
pub mod seccomp_install {
    /// x86_64 `seccomp(2)`; the x32 number is the same with the x32 bit.
    pub const X86_64_SECCOMP: u64 = 317;
    /// x86_64 `prctl(2)`.
    pub const X86_64_PRCTL: u64 = 157;
    /// i386 `seccomp(2)`.
    pub const I386_SECCOMP: u64 = 354;
    /// i386 `prctl(2)`.
    pub const I386_PRCTL: u64 = 172;
    /// `SECCOMP_SET_MODE_FILTER`, first argument of `seccomp(2)`.
    pub const SECCOMP_SET_MODE_FILTER: u64 = 1;
    /// `PR_SET_SECCOMP`, first argument of `prctl(2)`.
    pub const PR_SET_SECCOMP: u64 = 22;
    /// `SECCOMP_MODE_FILTER`, second argument of `prctl(PR_SET_SECCOMP, …)`.
    pub const SECCOMP_MODE_FILTER: u64 = 2;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_by_abi() {
        assert_eq!(Abi::classify(39, 0x33), (Abi::X86_64, 39));
        assert_eq!(Abi::classify(20, USER32_CS), (Abi::I386, 20));
        assert_eq!(Abi::classify(X32_SYSCALL_BIT | 39, 0x33), (Abi::X32, 39));
    }

    #[test]
    fn phases_follow_the_runtime() {
        use phase::*;
        let cases = [
            // (now, abi, nr, installs filter) -> next
            (SETUP, Abi::X86_64, 59, false, SETUP), // runc's own execs before the filter
            (SETUP, Abi::X86_64, 317, true, FILTERED),
            (FILTERED, Abi::X86_64, 217, false, FILTERED), // getdents64 on /proc/self/fd
            (FILTERED, Abi::X86_64, 59, false, WORKLOAD),
            (FILTERED, Abi::X86_64, 322, false, WORKLOAD),
            (FILTERED, Abi::I386, 11, false, WORKLOAD),
            (FILTERED, Abi::X32, 520, false, WORKLOAD),
            (FILTERED, Abi::X32, 59, false, FILTERED), // x32's 59 is not execve
            (FILTERED, Abi::X86_64, 317, true, FILTERED),
            (WORKLOAD, Abi::X86_64, 317, true, WORKLOAD),
            (WORKLOAD, Abi::X86_64, 59, false, WORKLOAD),
        ];
        for (now, abi, nr, installs, want) in cases {
            assert_eq!(next(now, abi, nr, installs), want, "{now} {abi:?} {nr}");
        }
    }

    #[test]
    fn slot_bounds() {
        assert_eq!(slot(0), Some((0, 1)));
        assert_eq!(slot(63), Some((0, 1 << 63)));
        assert_eq!(slot(64), Some((1, 1)));
        assert_eq!(slot(SYSCALL_SLOTS as u64 - 1), Some((WORDS - 1, 1 << 63)));
        assert_eq!(slot(SYSCALL_SLOTS as u64), None);
        assert_eq!(slot(u64::MAX), None);
    }

    #[test]
    fn iter_set_round_trips() {
        let mut b: Bitmap = [0; WORDS];
        let nrs = [0u32, 1, 63, 64, 317, 1023];
        for nr in nrs {
            let (w, m) = slot(nr as u64).unwrap();
            b[w] |= m;
        }
        let got: [u32; 6] = {
            let mut it = iter_set(&b);
            core::array::from_fn(|_| it.next().unwrap())
        };
        assert_eq!(got, nrs);
        assert_eq!(iter_set(&b).count(), nrs.len());
    }

    #[test]
    fn value_has_no_implicit_padding() {
        // owner (8), phase, joined_late, late_pending, _pad (4 each), the bitmaps, the
        // argument values.
        assert_eq!(
            core::mem::size_of::<CgroupSyscalls>(),
            8 + 4 * 4 + 2 * Abi::COUNT * WORDS * 8 + core::mem::size_of::<crate::args::ArgValues>()
        );
    }
}
