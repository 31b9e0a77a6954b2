use std::collections::{BTreeMap, BTreeSet};

use super::*;

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

/// Every name any group can add.
fn every_name() -> impl Iterator<Item = &'static str> {
    GROUPS
        .iter()
        .flat_map(|g| g.members.iter().chain(g.weaker))
        .copied()
}

/// Whatever is recorded, on whatever ABI, no group adds a call of another class of authority.
#[test]
fn never_added() {
    for name in every_name() {
        assert!(!NEVER_ADDED.contains(&name), "{name} is in a group");
    }
    // By behaviour too: record every name any group knows, and everything each ABI has.
    for abi in Abi::ALL {
        let everything: BTreeSet<String> = every_name().map(str::to_owned).collect();
        let whole_abi: BTreeSet<String> = syscalls::table(abi)
            .iter()
            .map(|&(_, n)| n.to_owned())
            .filter(|n| !NEVER_ADDED.contains(&n.as_str()))
            .collect();
        for recorded in [everything, whole_abi] {
            let added: BTreeSet<String> = added(abi, &recorded).into_values().flatten().collect();
            for never in NEVER_ADDED {
                assert!(!added.contains(*never), "{abi}: {never} added");
            }
        }
        // Each never-added call, recorded alone, adds nothing.
        for never in NEVER_ADDED {
            assert!(added(abi, &set(&[never])).is_empty(), "{abi}: {never}");
        }
    }
}

#[test]
fn the_brief_s_forbidden_calls_are_never_added() {
    for name in [
        "unshare",
        "ptrace",
        "personality",
        "open_by_handle_at",
        "setns",
    ] {
        assert!(NEVER_ADDED.contains(&name), "{name}");
    }
}

#[test]
fn members_are_disjoint_and_weaker_ones_are_not_members() {
    let mut owner: BTreeMap<&str, &str> = BTreeMap::new();
    for g in GROUPS {
        for m in g.members {
            if let Some(other) = owner.insert(m, g.label) {
                panic!("{m} is a member of {other} and {}", g.label);
            }
        }
        for w in g.weaker {
            assert!(!g.members.contains(w), "{}: {w} twice", g.label);
        }
    }
}

#[test]
fn every_name_is_a_syscall_and_every_group_can_add_something() {
    for g in GROUPS {
        for name in g.members.iter().chain(g.weaker) {
            assert!(
                Abi::ALL.iter().any(|abi| syscalls::is_known(*abi, name)),
                "{}: {name} is no syscall of any ABI",
                g.label
            );
        }
        let useful = Abi::ALL.iter().any(|abi| {
            g.members
                .iter()
                .chain(g.weaker)
                .filter(|n| syscalls::is_known(*abi, n))
                .count()
                >= 2
        });
        assert!(useful, "{}: no ABI has two of its calls", g.label);
    }
}

#[test]
fn labels_and_justifications_are_one_line_each() {
    let mut labels = BTreeSet::new();
    for g in GROUPS {
        assert!(labels.insert(g.label), "label {} twice", g.label);
        for text in [g.label, g.why, g.authority] {
            assert!(!text.trim().is_empty(), "{}: empty text", g.label);
            assert!(!text.contains('\n') && !text.contains('|'), "{}", g.label);
        }
    }
}

/// What a few recordings add, per ABI: only names the ABI has.
#[test]
fn additions_per_abi() {
    type Case<'a> = (Abi, &'a [&'a str], &'a [(&'a str, &'a [&'a str])]);
    let cases: Vec<Case> = vec![
        (
            Abi::X86_64,
            &["epoll_wait"],
            &[("epoll wait", &["epoll_pwait", "epoll_pwait2"])],
        ),
        (
            Abi::X86_64,
            &["epoll_pwait", "openat"],
            &[
                ("epoll wait", &["epoll_pwait2", "epoll_wait"]),
                ("open", &["creat", "open", "openat2"]),
            ],
        ),
        // i386 has no newfstatat and no plain accept.
        (
            Abi::I386,
            &["statx", "accept4"],
            &[(
                "stat",
                &[
                    "fstat",
                    "fstat64",
                    "fstatat64",
                    "lstat",
                    "lstat64",
                    "stat",
                    "stat64",
                ],
            )],
        ),
        (
            Abi::X86_64,
            &["accept4", "newfstatat"],
            &[
                ("stat", &["fstat", "lstat", "stat", "statx"]),
                ("accept", &["accept"]),
            ],
        ),
        // x86_64 has no _time64 calls, i386 has both forms.
        (Abi::X86_64, &["futex"], &[]),
        (Abi::I386, &["futex"], &[("futex", &["futex_time64"])]),
        (Abi::I386, &["mmap2"], &[("mmap", &["mmap"])]),
        (Abi::X86_64, &["mmap"], &[]),
        (
            Abi::I386,
            &["getuid32", "setgroups32"],
            &[("getuid", &["getuid"]), ("setgroups", &["setgroups"])],
        ),
        (Abi::X86_64, &["getuid"], &[]),
        (Abi::X86_64, &["vfork"], &[("fork", &["fork"])]),
        (Abi::X86_64, &["recvfrom", "sendto"], &[]),
        (
            Abi::X86_64,
            &["recvmsg", "sendmmsg"],
            &[("recvmsg", &["recvmmsg"]), ("sendmsg", &["sendmsg"])],
        ),
        (
            Abi::X86_64,
            &["unlink"],
            &[("unlink", &["rmdir", "unlinkat"])],
        ),
        (
            Abi::X86_64,
            &["fchmodat"],
            &[("chmod", &["chmod", "fchmod", "fchmodat2"])],
        ),
    ];
    for (abi, recorded, expected) in cases {
        let expected: BTreeMap<&str, BTreeSet<String>> =
            expected.iter().map(|(g, n)| (*g, set(n))).collect();
        assert_eq!(added(abi, &set(recorded)), expected, "{abi} {recorded:?}");
    }
}

/// An added name triggers nothing further, and a name two groups could add is credited once.
#[test]
fn additions_do_not_chain_and_are_credited_once() {
    // clone adds fork and vfork; they must not be credited again to the fork group.
    let got = added(Abi::X86_64, &set(&["clone", "vfork"]));
    assert_eq!(
        got,
        BTreeMap::from([("clone", set(&["clone3", "fork"]))]),
        "vfork was recorded; fork is credited to clone only"
    );
    // prlimit64 adds getrlimit; on i386 the getrlimit group would add ugetrlimit, but
    // prlimit already credits it.
    let got = added(Abi::I386, &set(&["prlimit64"]));
    assert_eq!(
        got,
        BTreeMap::from([("prlimit", set(&["getrlimit", "setrlimit", "ugetrlimit"]))])
    );
}
