//! Compares the tables with libseccomp's resolver (`scmp_sys_resolver`, Debian package
//! `seccomp`), the same resolver runc uses for profile names. libseccomp may be older than
//! the tables, so names it does not know are skipped; every name it knows must resolve to
//! our number, and every number it can name must carry our name.

use std::{process::Command, thread};

use super::*;

const RESOLVER: &str = "scmp_sys_resolver";

/// libseccomp's name for the architecture of `abi`.
fn arch(abi: Abi) -> &'static str {
    match abi {
        Abi::X86_64 => "x86_64",
        Abi::I386 => "x86",
        Abi::X32 => "x32",
    }
}

fn resolve(abi: Abi, query: &str) -> String {
    let out = Command::new(RESOLVER)
        .args(["-a", arch(abi), query])
        .output()
        .expect("running scmp_sys_resolver");
    assert!(
        out.status.success(),
        "{RESOLVER} -a {} {query} failed",
        arch(abi)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Problems found for one ABI, and how many of our names libseccomp does not know.
fn compare(abi: Abi) -> (Vec<String>, usize) {
    let mut problems = Vec::new();
    let mut unknown_to_libseccomp = 0;
    for &(nr, ours) in table(abi) {
        let answer = resolve(abi, ours);
        let theirs: i64 = answer
            .parse()
            .unwrap_or_else(|_| panic!("{RESOLVER} answered {answer:?} for {ours}"));
        // Negative: not a syscall of this arch for libseccomp (too new, or a pseudo number).
        if theirs < 0 {
            unknown_to_libseccomp += 1;
            continue;
        }
        let theirs = (theirs as u64 & !X32_SYSCALL_BIT) as u32;
        if theirs != nr {
            problems.push(format!("{abi:?} {ours}: ours {nr}, libseccomp {theirs}"));
        }
    }
    for nr in 0..profiler_common::bitmap::SYSCALL_SLOTS as u32 {
        let theirs = resolve(abi, &nr.to_string());
        if theirs != "UNKNOWN" && name(abi, nr) != Some(theirs.as_str()) {
            problems.push(format!(
                "{abi:?} {nr}: ours {:?}, libseccomp {theirs}",
                name(abi, nr)
            ));
        }
    }
    (problems, unknown_to_libseccomp)
}

#[test]
fn tables_agree_with_libseccomp() {
    if Command::new(RESOLVER).arg("-h").output().is_err() {
        let reason = format!("{RESOLVER} not found (apt-get install -y seccomp)");
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI must compare the syscall tables: {reason}"
        );
        eprintln!("skipped: {reason}");
        return;
    }
    // One thread per ABI: about 1,500 resolver runs each.
    let results: Vec<(Abi, (Vec<String>, usize))> = thread::scope(|s| {
        let handles: Vec<_> = [Abi::X86_64, Abi::I386, Abi::X32]
            .map(|abi| s.spawn(move || (abi, compare(abi))))
            .into_iter()
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut problems = Vec::new();
    for (abi, (p, unknown)) in results {
        eprintln!(
            "{abi:?}: {} names, {unknown} unknown to this libseccomp",
            table(abi).len()
        );
        problems.extend(p);
    }
    assert!(
        problems.is_empty(),
        "tables disagree with libseccomp:\n{}",
        problems.join("\n")
    );
}
