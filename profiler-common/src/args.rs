//! Argument values of a few syscalls, recorded per cgroup so the seccomp profile can allow a
//! syscall only with the values the workload used (`socket` of the families it opened, `clone`
//! without namespace flags, the `ioctl` requests it made).
//!
//! Only arguments that are flags or enumerations are watched: their values repeat, so a small
//! set holds them all. Each watched argument keeps up to [`VALUES`] distinct values; a value
//! that does not fit sets the argument's bit in [`ArgValues::overflowed`], and the profile
//! then does not filter that argument. Like the syscall bitmaps, values are tested before
//! they are written, so a workload's steady state only reads.
//!
//! x86_64 only: the numbers below are x86_64's, and calls of the i386 and x32 ABIs are not
//! watched (the profile leaves a name unfiltered when another ABI makes it).

/// Distinct values kept per watched argument.
pub const VALUES: usize = 8;

/// `SOCK_NONBLOCK | SOCK_CLOEXEC`: or-ed into `socket`'s type by callers that want them; they
/// only set the new fd's flags.
pub const SOCK_TYPE_FLAGS: u64 = 0o4000 | 0o2000000;

/// What is kept of `socket`'s type: its 32 bits (the kernel takes an `int`) without
/// [`SOCK_TYPE_FLAGS`]. The profile's check masks the same bits, so a recorded type matches
/// whatever fd flags come with it; the mask also fits the int64 fields of Kubernetes objects.
pub const SOCK_TYPE_MASK: u64 = 0xFFFF_FFFF & !SOCK_TYPE_FLAGS;

/// What one watched argument is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Watched {
    /// x86_64 syscall number.
    pub nr: u32,
    /// Its name, as recordings spell it.
    pub name: &'static str,
    /// Argument index (0-based), as seccomp's `args[].index`.
    pub index: u8,
    /// Bits kept of the value (the rest are masked off before it is recorded).
    pub mask: u64,
    /// What the argument is, for people.
    pub what: &'static str,
}

const ALL_BITS: u64 = u64::MAX;

const fn watched(nr: u32, name: &'static str, index: u8, what: &'static str) -> Watched {
    Watched {
        nr,
        name,
        index,
        mask: ALL_BITS,
        what,
    }
}

/// Indexes into [`WATCHED`] and [`ArgValues`]' arrays; the kernel side writes by these.
pub mod slot {
    pub const SOCKET_DOMAIN: usize = 0;
    pub const SOCKET_TYPE: usize = 1;
    pub const CLONE_FLAGS: usize = 2;
    pub const CLONE3_FLAGS: usize = 3;
    pub const UNSHARE_FLAGS: usize = 4;
    pub const SETNS_NSTYPE: usize = 5;
    pub const IOCTL_REQUEST: usize = 6;
    pub const PRCTL_OPTION: usize = 7;
    pub const PERSONALITY: usize = 8;
    pub const FCNTL_CMD: usize = 9;
    pub const SETSOCKOPT_LEVEL: usize = 10;
    pub const SETSOCKOPT_OPTNAME: usize = 11;
    pub const BPF_CMD: usize = 12;
    pub const PTRACE_REQUEST: usize = 13;
    /// Watched arguments in all.
    pub const COUNT: usize = 14;
}

/// x86_64 syscall numbers of the watched syscalls.
pub mod nr {
    pub const IOCTL: u32 = 16;
    pub const SOCKET: u32 = 41;
    pub const SETSOCKOPT: u32 = 54;
    pub const CLONE: u32 = 56;
    pub const FCNTL: u32 = 72;
    pub const PTRACE: u32 = 101;
    pub const PERSONALITY: u32 = 135;
    pub const PRCTL: u32 = 157;
    pub const UNSHARE: u32 = 272;
    pub const SETNS: u32 = 308;
    pub const BPF: u32 = 321;
    pub const CLONE3: u32 = 435;
}

/// Every watched argument, in [`slot`] order.
///
/// `clone3` passes its flags in a `struct clone_args` whose first field they are: its entry
/// records `clone_args.flags` read from the caller's memory, not the pointer in argument 0.
/// seccomp cannot look into that struct, so the profile answers `clone3` with ENOSYS (libcs
/// then call `clone` with the same flags) and filters `clone` by these values too.
pub const WATCHED: [Watched; slot::COUNT] = [
    watched(nr::SOCKET, "socket", 0, "address family"),
    Watched {
        mask: SOCK_TYPE_MASK,
        ..watched(nr::SOCKET, "socket", 1, "type")
    },
    watched(nr::CLONE, "clone", 0, "flags"),
    watched(nr::CLONE3, "clone3", 0, "clone_args.flags"),
    watched(nr::UNSHARE, "unshare", 0, "flags"),
    watched(nr::SETNS, "setns", 1, "namespace type"),
    watched(nr::IOCTL, "ioctl", 1, "request"),
    watched(nr::PRCTL, "prctl", 0, "option"),
    watched(nr::PERSONALITY, "personality", 0, "persona"),
    watched(nr::FCNTL, "fcntl", 1, "command"),
    watched(nr::SETSOCKOPT, "setsockopt", 1, "level"),
    watched(nr::SETSOCKOPT, "setsockopt", 2, "option name"),
    watched(nr::BPF, "bpf", 0, "command"),
    watched(nr::PTRACE, "ptrace", 0, "request"),
];

/// Bit set of watched syscall numbers, as wide as the syscall bitmaps (see
/// `event::nr::MASK`).
pub const fn mask() -> [u64; 16] {
    let mut m = [0u64; 16];
    let mut i = 0;
    while i < WATCHED.len() {
        let n = WATCHED[i].nr;
        m[(n / 64) as usize] |= 1 << (n % 64);
        i += 1;
    }
    m
}
pub const MASK: [u64; 16] = mask();

/// Syscalls the entry program does more than set a bit for: event syscalls and watched ones.
/// One test of this set is all the other syscalls pay.
pub const fn mask_interesting() -> [u64; 16] {
    let mut m = crate::event::nr::MASK;
    let mut i = 0;
    while i < 16 {
        m[i] |= MASK[i];
        i += 1;
    }
    m
}
pub const INTERESTING: [u64; 16] = mask_interesting();

#[inline(always)]
pub const fn is_watched(nr: u64) -> bool {
    nr < 1024 && MASK[((nr >> 6) & 15) as usize] & (1 << (nr & 63)) != 0
}

#[inline(always)]
pub const fn is_interesting(nr: u64) -> bool {
    nr < 1024 && INTERESTING[((nr >> 6) & 15) as usize] & (1 << (nr & 63)) != 0
}

/// The watched arguments' values of one cgroup: part of `bitmap::CgroupSyscalls`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ArgValues {
    /// Bit `i`: watched argument `i` had more distinct values than fit, or could not be read.
    pub overflowed: u64,
    /// Per watched argument, [`VALUES`] slots (see [`keep`]): 0 while free, else
    /// [`stored`] of the value kept there. (u64 words: the BPF target has 64-bit atomics
    /// only.)
    pub values: [[u64; VALUES]; slot::COUNT],
}

impl ArgValues {
    pub const ZERO: Self = Self {
        overflowed: 0,
        values: [[0; VALUES]; slot::COUNT],
    };

    /// The distinct values recorded for watched argument `slot`, and whether it overflowed.
    pub fn get(&self, slot: usize) -> (impl Iterator<Item = u64> + '_, bool) {
        (
            self.values[slot]
                .iter()
                .take_while(|&&word| word != 0)
                .map(|&word| !word),
            self.overflowed & (1 << slot) != 0,
        )
    }
}

/// How a value is held in its slot: its complement, so that 0, a free slot, is no value
/// but `u64::MAX` (which [`keep`] reports as not kept).
#[inline(always)]
pub const fn stored(value: u64) -> u64 {
    !value
}

/// One watched argument's slots as the eBPF side shares them between CPUs.
pub trait Slots {
    /// Slot `i` (`i < VALUES`).
    fn load(&self, i: usize) -> u64;
    /// Writes `word` to slot `i` if it is still free (compare-and-exchange with 0); whether
    /// it did.
    fn claim(&self, i: usize, word: u64) -> bool;
}

/// Keeps `value` unless it is kept already; `false` when it cannot be (no free slot, or
/// `u64::MAX`), for the caller to mark the argument overflowed.
///
/// Slots fill in order and a slot, once written, never changes, so the first free slot
/// ends the search. A slot is claimed with its value in one compare-and-exchange: another
/// CPU that loses the race for it sees the winner's value at once, and goes on to the next
/// slot if that is not its own. No value is lost, none kept twice, and a race costs at most
/// a retry per slot (a loop of `VALUES` steps, as the verifier needs).
#[inline(always)]
pub fn keep(slots: &impl Slots, value: u64) -> bool {
    let word = stored(value);
    if word == 0 {
        return false;
    }
    let mut i = 0;
    while i < VALUES {
        let held = slots.load(i);
        if held == word {
            return true;
        }
        if held == 0 && (slots.claim(i, word) || slots.load(i) == word) {
            return true;
        }
        i += 1;
    }
    false
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use core::sync::atomic::{AtomicU64, Ordering};
    use std::{vec, vec::Vec};

    #[test]
    fn slots_name_their_syscall_and_argument() {
        let cases = [
            (slot::SOCKET_DOMAIN, "socket", 0),
            (slot::SOCKET_TYPE, "socket", 1),
            (slot::CLONE_FLAGS, "clone", 0),
            (slot::CLONE3_FLAGS, "clone3", 0),
            (slot::UNSHARE_FLAGS, "unshare", 0),
            (slot::SETNS_NSTYPE, "setns", 1),
            (slot::IOCTL_REQUEST, "ioctl", 1),
            (slot::PRCTL_OPTION, "prctl", 0),
            (slot::PERSONALITY, "personality", 0),
            (slot::FCNTL_CMD, "fcntl", 1),
            (slot::SETSOCKOPT_LEVEL, "setsockopt", 1),
            (slot::SETSOCKOPT_OPTNAME, "setsockopt", 2),
            (slot::BPF_CMD, "bpf", 0),
            (slot::PTRACE_REQUEST, "ptrace", 0),
        ];
        assert_eq!(cases.len(), slot::COUNT);
        for (slot, name, index) in cases {
            assert_eq!((WATCHED[slot].name, WATCHED[slot].index), (name, index));
        }
    }

    #[test]
    fn masks_select_watched_and_event_syscalls() {
        for w in WATCHED {
            assert!(is_watched(w.nr as u64), "{}", w.name);
            assert!(is_interesting(w.nr as u64), "{}", w.name);
        }
        for (n, _) in crate::event::nr::ALL {
            assert!(is_interesting(n as u64), "{n}");
        }
        // getppid, read, futex: the common calls pay one test and nothing else.
        for n in [110u64, 0, 202] {
            assert!(!is_interesting(n) && !is_watched(n), "{n}");
        }
        assert!(!is_watched(1023) && !is_watched(1024) && !is_watched(u64::MAX));
        assert!(!is_watched(crate::event::nr::OPENAT as u64));
    }

    #[test]
    fn socket_type_mask_drops_only_the_fd_flags() {
        let t = WATCHED[slot::SOCKET_TYPE].mask;
        assert_eq!(t, SOCK_TYPE_MASK);
        // SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC
        assert_eq!(0x80801 & t, 1);
        assert_eq!(3 & t, 3); // SOCK_RAW
                              // Bits the kernel ignores (it takes an int) are not kept.
        assert_eq!(0xffff_ffff_0000_0001 & t, 1);
        assert_eq!(WATCHED[slot::SOCKET_DOMAIN].mask, u64::MAX);
    }

    #[test]
    fn get_stops_at_the_first_free_slot_and_reports_overflow() {
        let mut v = ArgValues::ZERO;
        v.values[slot::IOCTL_REQUEST][..2].copy_from_slice(&[stored(0x5401), stored(0)]);
        v.values[slot::IOCTL_REQUEST][3] = stored(7);
        v.overflowed = 1 << slot::SOCKET_DOMAIN;
        let (values, overflowed) = v.get(slot::IOCTL_REQUEST);
        assert_eq!(
            (values.collect::<Vec<_>>(), overflowed),
            (vec![0x5401, 0], false)
        );
        let (values, overflowed) = v.get(slot::SOCKET_DOMAIN);
        assert_eq!((values.count(), overflowed), (0, true));
    }

    /// Slots shared by threads, as the eBPF side's are by CPUs.
    struct Shared([AtomicU64; VALUES]);

    impl Shared {
        fn new() -> Self {
            Self(core::array::from_fn(|_| AtomicU64::new(0)))
        }

        fn kept(&self) -> Vec<u64> {
            let words = self.0.each_ref().map(|w| w.load(Ordering::Relaxed));
            let mut v = ArgValues::ZERO;
            v.values[0] = words;
            let kept = v.get(0).0.collect();
            kept
        }
    }

    impl Slots for Shared {
        fn load(&self, i: usize) -> u64 {
            self.0[i].load(Ordering::Relaxed)
        }

        fn claim(&self, i: usize, word: u64) -> bool {
            self.0[i]
                .compare_exchange(0, word, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        }
    }

    #[test]
    fn keep_takes_each_value_once_until_full() {
        let slots = Shared::new();
        for v in [0, 5, 0, 5, 1, 2, 3, 4, 6] {
            assert!(keep(&slots, v), "{v}");
        }
        assert_eq!(slots.kept(), [0, 5, 1, 2, 3, 4, 6]);
        assert!(!keep(&slots, u64::MAX), "the one value a slot cannot hold");
        assert!(keep(&slots, 7), "the eighth value fits");
        assert!(!keep(&slots, 8), "a ninth does not");
        assert!(keep(&slots, 0), "kept values are still found when full");
    }

    /// Two threads keeping distinct values at the same instant race for the same slots: a
    /// lost race must move on, not give up (the argument would be left unfiltered).
    #[test]
    fn racing_threads_keep_every_value_without_overflow() {
        use core::sync::atomic::AtomicUsize;
        use std::sync::Arc;
        const ROUNDS: usize = 500;
        let mut lost = 0;
        for _ in 0..ROUNDS {
            let slots = Arc::new(Shared::new());
            // Spun on rather than slept on, so that both threads start in the same instant.
            let ready = Arc::new(AtomicUsize::new(0));
            let threads: Vec<_> = [[1, 3, 5, 7], [2, 4, 6, 8]]
                .into_iter()
                .map(|values| {
                    let (slots, ready) = (slots.clone(), ready.clone());
                    std::thread::spawn(move || {
                        ready.fetch_add(1, Ordering::SeqCst);
                        while ready.load(Ordering::SeqCst) < 2 {
                            core::hint::spin_loop();
                        }
                        values.iter().filter(|&&v| !keep(&*slots, v)).count()
                    })
                })
                .collect();
            for t in threads {
                lost += t.join().unwrap();
            }
            let mut kept = slots.kept();
            kept.sort_unstable();
            assert_eq!(kept, [1, 2, 3, 4, 5, 6, 7, 8]);
        }
        assert_eq!(lost, 0, "values reported as not kept");
    }

    /// Slots where another CPU claims slot `i` with `rivals[i]` just before this one tries
    /// to: a race lost at a chosen moment.
    struct Raced {
        slots: Shared,
        rivals: core::cell::RefCell<[Option<u64>; VALUES]>,
    }

    impl Slots for Raced {
        fn load(&self, i: usize) -> u64 {
            self.slots.load(i)
        }

        fn claim(&self, i: usize, word: u64) -> bool {
            if let Some(rival) = self.rivals.borrow_mut()[i].take() {
                assert!(self.slots.claim(i, stored(rival)));
            }
            self.slots.claim(i, word)
        }
    }

    #[test]
    fn a_lost_claim_moves_on_to_the_next_slot_or_finds_its_value() {
        /// Another CPU's claim of a slot, just before ours.
        type Rival = (usize, u64);
        // (rivals, value kept, kept afterwards)
        let cases: [(&[Rival], u64, &[u64]); 4] = [
            (&[(0, 4)], 3, &[4, 3]),
            (&[(0, 4), (1, 5)], 3, &[4, 5, 3]),
            // The rival kept the same value: kept once.
            (&[(0, 3)], 3, &[3]),
            (&[(0, 0)], 0, &[0]),
        ];
        for (rivals, value, want) in cases {
            let raced = Raced {
                slots: Shared::new(),
                rivals: Default::default(),
            };
            for &(i, r) in rivals {
                raced.rivals.borrow_mut()[i] = Some(r);
            }
            assert!(keep(&raced, value), "{rivals:?} {value}");
            assert_eq!(raced.slots.kept(), want, "{rivals:?} {value}");
        }
        // Every slot lost: the argument overflows, after one try per slot.
        let raced = Raced {
            slots: Shared::new(),
            rivals: core::cell::RefCell::new(core::array::from_fn(|i| Some(100 + i as u64))),
        };
        assert!(!keep(&raced, 3));
        assert_eq!(raced.slots.kept().len(), VALUES);
    }

    #[test]
    fn value_has_no_implicit_padding() {
        assert_eq!(
            core::mem::size_of::<ArgValues>(),
            8 + slot::COUNT * VALUES * 8
        );
        assert_eq!(core::mem::offset_of!(ArgValues, values) % 8, 0);
    }
}
