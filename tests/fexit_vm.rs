//! `fexit` exits and the tracepoint exits give the same facts: Debian's kernel under qemu
//! (where BPF trampolines run, unlike on hosts that refuse them) records one file workload
//! with `PROFGEN_EXITS=fexit`, then `tracepoint`, then `staged`, and each recording must say
//! it used the hook asked for. Correctness only: timings under software emulation mean
//! nothing.
//!
//! Needs qemu-system-x86_64, /boot/vmlinuz-* and busybox (static); not root. Skips with a
//! reason when one is absent, unless CI=true. `PROFGEN_BIN` names the profgen to record with
//! (default: this build's).

#[path = "support/mod.rs"]
mod support;

use std::time::Duration;

use profgen::{
    model::{activity::FileOp, EventExits, Recording},
    verify::{
        apparmor::{find_kernel, VmOptions},
        exits_vm::{run, ExitsRun, ExitsVm},
    },
};

use support::{stripped_profgen, which};

const WORK: &str = "/tmp/w";

/// The run's recording, which must say it was made with `exits`.
fn recording(run: &ExitsRun, exits: EventExits, console: &str) -> Recording {
    let context = || format!("{}\n--- console ---\n{console}", run.lines.join("\n"));
    assert_eq!(
        run.rc,
        Some(0),
        "profgen record with PROFGEN_EXITS={exits} failed: {}",
        context()
    );
    let json = run
        .recording
        .as_deref()
        .unwrap_or_else(|| panic!("no recording with PROFGEN_EXITS={exits}: {}", context()));
    let rec: Recording = serde_json::from_str(json)
        .unwrap_or_else(|e| panic!("the recording with PROFGEN_EXITS={exits}: {e}\n{json}"));
    assert_eq!(
        rec.host.event_exits,
        Some(exits),
        "the recorder did not use {exits}: {}",
        context()
    );
    assert_eq!(rec.events_lost_total(), 0, "{:?}", rec.events_lost);
    rec
}

#[test]
fn fexit_and_tracepoint_exits_record_the_same_file_facts_on_debian() {
    let (Some(_), Some(_), Some(_)) =
        (which("qemu-system-x86_64"), find_kernel(), which("busybox"))
    else {
        return support::skip("qemu-system-x86_64, busybox or /boot/vmlinuz-* is missing");
    };
    let dir = tempfile::tempdir().unwrap();
    let w = WORK;
    let vm = ExitsVm {
        recorder: stripped_profgen(dir.path()),
        // The directory removed was there before: its only fact is the removal.
        setup: format!("rm -rf {w} && mkdir -p {w}/gone"),
        script: format!(
            "mkdir {w}/new && echo x > {w}/a && mv {w}/a {w}/b && ln {w}/b {w}/c && chmod 600 {w}/c \
             && cat {w}/c > /dev/null && rm {w}/b {w}/c && rmdir {w}/gone; cat {w}/missing 2> /dev/null; true"
        ),
        exits: vec![EventExits::Fexit, EventExits::Tracepoint, EventExits::Staged],
        vm: VmOptions {
            timeout: Duration::from_secs(900),
            memory_mb: 1024,
            ..VmOptions::default()
        },
    };
    let report = run(&vm).expect("the guest ran");
    println!(
        "guest kernel {}, bpf_jit_enable {:?}, BTF {}: booted in {:.0} s, {:.0} s in all",
        report.facts.kernel, report.jit, report.btf, report.boot_secs, report.total_secs
    );
    for run in &report.runs {
        for l in &run.lines {
            println!("  {}: {l}", run.exits);
        }
    }
    let facts = |exits| {
        let run = report
            .run(exits)
            .unwrap_or_else(|| panic!("no run with {exits}:\n{}", report.console));
        support::file_facts(&recording(run, exits, &report.console), w)
    };
    let by_fexit = facts(EventExits::Fexit);
    let by_tracepoint = facts(EventExits::Tracepoint);
    println!("{} file facts by fexit: {by_fexit:#?}", by_fexit.len());
    assert_eq!(by_fexit, by_tracepoint, "fexit and the tracepoint disagree");
    assert_eq!(
        by_fexit,
        facts(EventExits::Staged),
        "fexit and the staged tracepoint disagree"
    );

    let ops = |path: &str, failed: bool| {
        by_fexit
            .iter()
            .find(|(p, _, f)| p == &format!("{w}{path}") && *f == failed)
            .map(|(_, ops, _)| ops.clone())
            .unwrap_or_else(|| panic!("no fact for {w}{path} (failed: {failed}): {by_fexit:#?}"))
    };
    assert!(ops("/new/", false).contains(&FileOp::Mkdir));
    assert!(ops("/gone/", false).contains(&FileOp::Rmdir));
    let a = ops("/a", false);
    assert!(
        a.contains(&FileOp::Create) && a.contains(&FileOp::Rename),
        "{w}/a: {a:?}"
    );
    let c = ops("/c", false);
    for op in [FileOp::Link, FileOp::Chmod, FileOp::Read, FileOp::Unlink] {
        assert!(c.contains(&op), "{w}/c lacks {op:?}: {c:?}");
    }
    assert!(ops("/missing", true).contains(&FileOp::Read));
}
