//! Syscall names and numbers for the ABIs of an x86_64 kernel.
//!
//! The kernel side records numbers; profiles are written with names (libseccomp resolves
//! them again per architecture). A number the tables do not know is kept as a number and
//! reported, never dropped or guessed.

use std::collections::BTreeSet;

use profiler_common::bitmap::{iter_set, Bitmap, X32_SYSCALL_BIT};

use crate::model::Abi;

#[cfg(test)]
mod libseccomp_tests;
mod table;

/// The newest kernel whose syscalls the tables know.
pub const KERNEL_VERSION: &str = "6.18";

/// `(number, name)` of every syscall of `abi`, ascending by number. x32 numbers are
/// without `__X32_SYSCALL_BIT`, as the recorder stores them.
pub fn table(abi: Abi) -> &'static [(u32, &'static str)] {
    match abi {
        Abi::X86_64 => table::X86_64,
        Abi::I386 => table::I386,
        Abi::X32 => table::X32,
    }
}

/// The name of syscall `nr` of `abi`. For x32, `nr` may carry `__X32_SYSCALL_BIT` or not.
pub fn name(abi: Abi, nr: u32) -> Option<&'static str> {
    let nr = match abi {
        Abi::X32 => nr & !(X32_SYSCALL_BIT as u32),
        Abi::X86_64 | Abi::I386 => nr,
    };
    let table = table(abi);
    table
        .binary_search_by_key(&nr, |&(n, _)| n)
        .ok()
        .map(|i| table[i].1)
}

/// The number of syscall `name` of `abi` (x32: without `__X32_SYSCALL_BIT`).
pub fn number(abi: Abi, name: &str) -> Option<u32> {
    // A linear scan of ~460 entries: only used on the cold path (validating profiles).
    table(abi)
        .iter()
        .find_map(|&(n, known)| (known == name).then_some(n))
}

/// Whether `name` is a syscall of `abi`.
pub fn is_known(abi: Abi, name: &str) -> bool {
    number(abi, name).is_some()
}

/// Splits one ABI's bitmap into the names the tables know and the numbers they do not.
pub fn decode(abi: Abi, bitmap: &Bitmap) -> (BTreeSet<String>, BTreeSet<u32>) {
    let mut known = BTreeSet::new();
    let mut unknown = BTreeSet::new();
    for nr in iter_set(bitmap) {
        match name(abi, nr) {
            Some(name) => {
                known.insert(name.to_owned());
            }
            None => {
                unknown.insert(nr);
            }
        }
    }
    (known, unknown)
}

#[cfg(test)]
mod tests {
    use profiler_common::bitmap::{slot, WORDS};

    use super::*;

    const ABIS: [Abi; 3] = [Abi::X86_64, Abi::I386, Abi::X32];

    fn bitmap(nrs: &[u32]) -> Bitmap {
        let mut b: Bitmap = [0; WORDS];
        for &nr in nrs {
            let (w, m) = slot(nr.into()).unwrap();
            b[w] |= m;
        }
        b
    }

    #[test]
    fn tables_are_sorted_and_unique() {
        for abi in ABIS {
            let t = table(abi);
            assert!(
                t.windows(2).all(|w| w[0].0 < w[1].0),
                "{abi:?}: numbers not strictly ascending"
            );
            let names: BTreeSet<&str> = t.iter().map(|&(_, n)| n).collect();
            assert_eq!(names.len(), t.len(), "{abi:?}: a name appears twice");
            assert!(
                t.iter()
                    .all(|&(nr, _)| (nr as usize) < profiler_common::bitmap::SYSCALL_SLOTS),
                "{abi:?}: a number does not fit the recorder's bitmap"
            );
        }
    }

    #[test]
    fn knows_linux_6_18() {
        for (nr, n) in [
            (462, "mseal"),
            (465, "listxattrat"),
            (466, "removexattrat"),
            (467, "open_tree_attr"),
            (468, "file_getattr"),
            (469, "file_setattr"),
        ] {
            for abi in ABIS {
                assert_eq!(name(abi, nr), Some(n), "{abi:?} {nr}");
                assert_eq!(number(abi, n), Some(nr), "{abi:?} {n}");
            }
        }
        // Linux 6.19's listns is beyond the tables: it must come back as a number.
        assert_eq!(name(Abi::X86_64, 470), None);
    }

    #[test]
    fn abis_differ_where_the_kernel_says() {
        assert_eq!(name(Abi::X86_64, 0), Some("read"));
        assert_eq!(name(Abi::I386, 3), Some("read"));
        assert_eq!(name(Abi::I386, 102), Some("socketcall"));
        assert_eq!(number(Abi::X86_64, "socketcall"), None);
        // x32 has its own numbers for calls whose arguments differ; the 64-bit rows are
        // not x32 calls.
        assert_eq!(name(Abi::X32, 13), None);
        assert_eq!(name(Abi::X32, 512), Some("rt_sigaction"));
        assert_eq!(
            name(Abi::X32, X32_SYSCALL_BIT as u32 | 512),
            Some("rt_sigaction")
        );
        assert_eq!(number(Abi::X32, "rt_sigaction"), Some(512));
        assert_eq!(number(Abi::X86_64, "rt_sigaction"), Some(13));
        assert_eq!(name(Abi::X86_64, 512), None);
        // uretprobe/uprobe are x86_64 (and x32) only.
        assert_eq!(number(Abi::X86_64, "uprobe"), Some(336));
        assert_eq!(number(Abi::I386, "uprobe"), None);
    }

    #[test]
    fn x32_shares_the_common_rows() {
        for &(nr, n) in table(Abi::X32) {
            if nr < 512 {
                assert_eq!(name(Abi::X86_64, nr), Some(n), "x32 {nr}");
            } else {
                assert!(nr <= 547, "x32 {nr}: past the legacy x32 range");
            }
        }
    }

    #[test]
    fn decode_splits_known_and_unknown() {
        let (known, unknown) = decode(Abi::X86_64, &bitmap(&[0, 1, 257, 337, 1023]));
        assert_eq!(
            known.into_iter().collect::<Vec<_>>(),
            ["openat", "read", "write"]
        );
        assert_eq!(unknown.into_iter().collect::<Vec<_>>(), [337, 1023]);

        let (known, unknown) = decode(Abi::X32, &bitmap(&[13, 512]));
        assert_eq!(known.into_iter().collect::<Vec<_>>(), ["rt_sigaction"]);
        assert_eq!(unknown.into_iter().collect::<Vec<_>>(), [13]);

        let (known, unknown) = decode(Abi::I386, &bitmap(&[]));
        assert!(known.is_empty() && unknown.is_empty());
    }
}
