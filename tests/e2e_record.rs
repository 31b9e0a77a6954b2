//! `profgen record` on the real kernel, without a container runtime: what a process tree and
//! a cgroup subtree do is caught from the first syscall, wherever in the tree it happens.
//!
//! The workload is a tiny C program (`sysprobe`, compiled with the host's `cc`) that makes
//! one syscall a shell never makes, optionally in a forked child or right after moving itself
//! into a cgroup. Each positive check has a control run that makes everything but that
//! syscall, so a recorder that saw nothing (or everything) fails.

#[path = "support/mod.rs"]
mod support;

use std::{
    ffi::OsStr,
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use profgen::model::{activity::FileOp, EventExits, Recording, Target};
use support::*;

/// `sysprobe [fork] SYSCALL [join CGROUP_PROCS]`
///
/// * `SYSCALL`: `personality` (a query: 0xffffffff changes nothing), `getcpu`, `ioprio_get`,
///   or `none`. None of them is made by dash or by glibc's start-up.
/// * `fork`: make the syscall in a forked child only; the parent just waits for it.
/// * `join PATH`: first write our pid to `PATH` (a `cgroup.procs`), so that the distinctive
///   syscall is the very first one the process makes in its new cgroup.
const SYSPROBE_C: &str = r#"
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/personality.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static void make(const char *name) {
    unsigned cpu, node;
    if (strcmp(name, "personality") == 0) personality(0xffffffff);
    else if (strcmp(name, "getcpu") == 0) syscall(SYS_getcpu, &cpu, &node, NULL);
    else if (strcmp(name, "ioprio_get") == 0) syscall(SYS_ioprio_get, 1, 0);
    else if (strcmp(name, "none") != 0) { fprintf(stderr, "unknown %s\n", name); exit(2); }
}

int main(int argc, char **argv) {
    int i = 1, forked = 0;
    if (i < argc && strcmp(argv[i], "fork") == 0) { forked = 1; i++; }
    if (i >= argc) { fprintf(stderr, "usage\n"); return 2; }
    const char *name = argv[i++];
    if (i + 1 < argc && strcmp(argv[i], "join") == 0) {
        char pid[32];
        int n = snprintf(pid, sizeof pid, "%d", getpid());
        int fd = open(argv[i + 1], O_WRONLY);
        if (fd < 0 || write(fd, pid, n) != n) { perror(argv[i + 1]); return 3; }
        /* No close() in between: the next syscall is the first in the new cgroup. */
        make(name);
        close(fd);
        return 0;
    }
    if (!forked) { make(name); return 0; }
    pid_t child = fork();
    if (child < 0) { perror("fork"); return 4; }
    if (child == 0) { make(name); _exit(0); }
    int status;
    if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return 5;
    return 0;
}
"#;

fn setup(test: &str) -> Option<(PathBuf, tempfile::TempDir, PathBuf)> {
    if !is_root() {
        skip(&format!("{test}: recording with eBPF needs root"));
        return None;
    }
    let profgen = profgen_binary();
    let dir = tempfile::tempdir().unwrap();
    let sysprobe = compile_c(dir.path(), "sysprobe", SYSPROBE_C);
    Some((profgen, dir, sysprobe))
}

/// `profgen record --out OUT -- sh -c SCRIPT` to completion; the recording it wrote.
fn record_shell(profgen: &Path, out: &Path, script: &str) -> Recording {
    record_shell_with(profgen, out, script, &[])
}

/// The same with `env` set for profgen.
fn record_shell_with(profgen: &Path, out: &Path, script: &str, env: &[(&str, &str)]) -> Recording {
    let got = output(
        Command::new(profgen)
            .envs(env.iter().copied())
            .arg("record")
            .arg("--out")
            .arg(out)
            .args(["--", "sh", "-c", script]),
    );
    assert_success(&format!("profgen record -- sh -c {script:?}"), &got);
    eprintln!(
        "--- profgen record -- sh -c {script:?}\n{}",
        text(&got.stderr)
    );
    Recording::load(out).unwrap_or_else(|e| panic!("loading {}: {e}", out.display()))
}

#[test]
fn syscall_made_only_in_a_grandchild_is_recorded() {
    let Some((profgen, dir, sysprobe)) = setup("grandchild syscall") else {
        return;
    };
    let t0 = Instant::now();
    // `; true` keeps dash from exec'ing sysprobe in place: sh forks sysprobe, which forks the
    // child that makes the call, two generations below the recorded command.
    let probe = sysprobe.display();
    let with = record_shell(
        &profgen,
        &dir.path().join("with.json"),
        &format!("{probe} fork personality; true"),
    );
    let without = record_shell(
        &profgen,
        &dir.path().join("without.json"),
        &format!("{probe} fork none; true"),
    );

    for rec in [&with, &without] {
        assert_no_events_lost(rec);
        let Target::Command { argv, cgroup } = &rec.target else {
            panic!("target should be the command, is {:?}", rec.target);
        };
        assert_eq!(argv[0], "sh", "target argv");
        // The fresh cgroup is profgen's own: gone once the recording is written.
        let cg2 = profgen::cgroup::cgroup2_mount().unwrap();
        let fresh = cg2.join(cgroup.trim_start_matches('/'));
        assert!(!fresh.exists(), "{} left behind", fresh.display());
        // Every recorded cgroup is the command's fresh cgroup or below it: nothing else on
        // the host (this test process included) leaks in.
        for cg in &rec.cgroups {
            let path = cg.path.as_deref().unwrap_or("<unnamed>");
            assert!(
                path == cgroup || path.starts_with(&format!("{cgroup}/")),
                "cgroup {path} is outside the command's cgroup {cgroup}"
            );
        }
        let all = all_syscalls(rec);
        // The shell and sysprobe were seen at all: exec, the forks and the waits.
        for expected in ["execve", "wait4", "exit_group"] {
            assert!(all.contains(expected), "{expected} missing: {all:?}");
        }
        assert!(
            all.contains("clone") || all.contains("clone3") || all.contains("fork"),
            "no fork of any kind recorded: {all:?}"
        );
    }
    assert!(
        all_syscalls(&with).contains("personality"),
        "personality, made only by the grandchild, is missing: {:?}",
        all_syscalls(&with)
    );
    assert!(
        !all_syscalls(&without).contains("personality"),
        "personality recorded although no process made it: the control run is not a control"
    );
    eprintln!("took {:?}", t0.elapsed());
}

#[test]
fn cgroups_created_below_the_target_after_start_are_recorded_from_their_first_syscall() {
    let Some((profgen, dir, sysprobe)) = setup("cgroups created later") else {
        return;
    };
    let t0 = Instant::now();
    let parent = CgroupDir::create("profgen-e2e-late");
    let out = dir.path().join("late.json");
    let recorder = Recorder::start(
        &profgen,
        &[OsStr::new("--cgroup"), parent.path.as_os_str()],
        &out,
    );

    // 1. A child cgroup created now; a shell moves itself in, then execs sysprobe.
    let (exec_dir, exec_rel) = parent.child("exec");
    let script = format!(
        "echo $$ > {}/cgroup.procs && exec {} getcpu",
        exec_dir.display(),
        sysprobe.display()
    );
    assert_success(
        "sh moving itself into the new cgroup, then exec",
        &output(Command::new("sh").args(["-c", &script])),
    );

    // 2. Two levels created now; sysprobe moves itself in and its very next syscall is the
    // distinctive one (nothing earlier in that cgroup could have announced it).
    let (nested_dir, nested_rel) = parent.child("nested");
    let (_, first_rel) = parent.child("nested/first");
    assert_success(
        "sysprobe joining a new nested cgroup",
        &output(
            Command::new(&sysprobe)
                .arg("personality")
                .arg("join")
                .arg(nested_dir.join("first/cgroup.procs")),
        ),
    );

    // 3. Outside the target (this test's own cgroup): must not be recorded.
    assert_success(
        "sysprobe outside the target",
        &output(Command::new(&sysprobe).arg("ioprio_get")),
    );

    let rec = recorder.stop();
    assert_no_events_lost(&rec);
    assert_eq!(
        rec.target,
        Target::Cgroup {
            cgroup: parent.rel.clone()
        },
        "target"
    );

    let exec = cgroup_at(&rec, &exec_rel);
    let exec_calls = syscalls(exec);
    for expected in ["execve", "getcpu"] {
        assert!(
            exec_calls.contains(&expected),
            "{expected} missing from {exec_rel}: {exec_calls:?}"
        );
    }
    let first = cgroup_at(&rec, &first_rel);
    assert!(
        syscalls(first).contains(&"personality"),
        "the first syscall in {first_rel} (personality) is missing: {:?}",
        syscalls(first)
    );
    // Controls: the getcpu and personality calls are attributed to the cgroup that made them,
    // not smeared over the subtree; and nothing outside the target is recorded.
    assert!(
        !syscalls(first).contains(&"getcpu") && !exec_calls.contains(&"personality"),
        "syscalls attributed to the wrong cgroup: {exec_rel}: {exec_calls:?}, {first_rel}: {:?}",
        syscalls(first)
    );
    assert!(
        !all_syscalls(&rec).contains("ioprio_get"),
        "ioprio_get, made outside the target, was recorded"
    );
    for cg in &rec.cgroups {
        let path = cg.path.as_deref().unwrap_or("<unnamed>");
        assert!(
            path.starts_with(&format!("{}/", parent.rel)) || path == parent.rel,
            "cgroup {path} is outside the target {}",
            parent.rel
        );
        // `nested` itself never held a process.
        assert_ne!(path, nested_rel, "an empty cgroup was recorded as active");
    }
    eprintln!("took {:?}", t0.elapsed());
}

/// On a kernel with BTF the entry program reads the cgroup id through the kernel's types,
/// not the helper (the helper costs about a third of the hook), and each CPU remembers it
/// for the task that ran last; the recordings above (forks, processes moving between
/// cgroups right before the syscall that matters) prove the ids it uses are the cgroups'
/// own.
#[test]
fn the_entry_program_reads_the_cgroup_id_through_the_kernels_types() {
    use profgen::record::kernel::{CgroupIdBy, Hook, Kernel};
    if !is_root() {
        skip("needs root (eBPF)");
        return;
    }
    if !std::path::Path::new("/sys/kernel/btf/vmlinux").exists() {
        skip("the kernel has no BTF");
        return;
    }
    let kernel = Kernel::load(Hook::SyscallsOnly).expect("loading the recording programs");
    assert_eq!(kernel.cgroup_id_by, CgroupIdBy::KernelTypes);
    assert!(
        kernel.remembers_cgroups,
        "each CPU should remember the last task's cgroup (the fork and cgroup-move hooks attach here)"
    );
}

/// File facts are made at each syscall's exit from the task's saved registers; on kernels
/// before 5.15 the exit program completes what the entry program staged instead
/// (`PROFGEN_EXITS=staged` forces that here). Both ways must give the same facts for the
/// same work, and the facts must be the work's.
#[test]
fn file_facts_from_saved_registers_match_those_from_staging() {
    use profgen::record::kernel::{Hook, Kernel};
    let Some((profgen, dir, _)) = setup("file facts, two ways") else {
        return;
    };
    let kernel = Kernel::load(Hook::Record).expect("loading the recording programs");
    assert!(
        !kernel.stages_every_event,
        "the exit program should read the saved registers on this kernel ({})",
        profgen::record::kernel::kernel_release()
    );
    drop(kernel);

    let work = dir.path().join("files");
    let w = work.display();
    let script = format!(
        "mkdir {w} && echo x > {w}/a && mv {w}/a {w}/b && ln {w}/b {w}/c && chmod 600 {w}/c \\
         && cat {w}/c > /dev/null && rm {w}/b {w}/c && rmdir {w}; cat {w}/missing 2> /dev/null; true"
    );
    let facts = |env: &[(&str, &str)], name: &str| {
        let rec = record_shell_with(&profgen, &dir.path().join(name), &script, env);
        assert_no_events_lost(&rec);
        file_facts(&rec, &w.to_string())
    };
    let from_registers = facts(&[("PROFGEN_EXITS", "tracepoint")], "registers.json");
    let from_staging = facts(&[("PROFGEN_EXITS", "staged")], "staged.json");
    assert_eq!(
        from_registers, from_staging,
        "the two ways of making events disagree"
    );
    let ops = |path: &str, failed: bool| {
        from_registers
            .iter()
            .find(|(p, _, f)| p == &format!("{w}{path}") && *f == failed)
            .map(|(_, ops, _)| ops.clone())
            .unwrap_or_else(|| {
                panic!("no fact for {w}{path} (failed: {failed}): {from_registers:#?}")
            })
    };
    // A directory is named with its trailing slash, even once removed.
    assert!(ops("/", false).contains(&FileOp::Mkdir) && ops("/", false).contains(&FileOp::Rmdir));
    let a = ops("/a", false);
    assert!(
        a.contains(&FileOp::Create) && a.contains(&FileOp::Rename),
        "{w}/a: {a:?}"
    );
    let b = ops("/b", false);
    assert!(
        b.contains(&FileOp::Rename) && b.contains(&FileOp::Unlink),
        "{w}/b: {b:?}"
    );
    let c = ops("/c", false);
    for op in [FileOp::Link, FileOp::Chmod, FileOp::Read, FileOp::Unlink] {
        assert!(c.contains(&op), "{w}/c lacks {op:?}: {c:?}");
    }
    assert!(ops("/missing", true).contains(&FileOp::Read));
}

/// Where the kernel refuses BPF trampolines (this host's does), the recorder falls back to the
/// exit tracepoints, says so in the recording, and records the same facts; forcing `fexit`
/// there is a one-line error. Where the kernel accepts them, the recording says `fexit` and
/// the guest test (`fexit_vm.rs`) compares the two.
#[test]
fn without_trampolines_events_come_from_the_exit_tracepoints() {
    let Some((profgen, dir, _)) = setup("fexit fallback") else {
        return;
    };
    let work = dir.path().join("files");
    std::fs::create_dir(&work).unwrap();
    let w = work.display();
    let script = format!(
        "echo x > {w}/a && mv {w}/a {w}/b && chmod 600 {w}/b && cat {w}/b > /dev/null \\
         && rm {w}/b; cat {w}/missing 2> /dev/null; true"
    );
    let forced = output(
        Command::new(&profgen)
            .env("PROFGEN_EXITS", "fexit")
            .arg("record")
            .arg("--out")
            .arg(dir.path().join("forced.json"))
            .args(["--", "true"]),
    );
    let fexit_refused = !forced.status.success();
    let rec = record_shell(&profgen, &dir.path().join("default.json"), &script);
    assert_no_events_lost(&rec);
    let facts = file_facts(&rec, &w.to_string());
    assert!(
        facts.iter().any(|(p, ops, failed)| p == &format!("{w}/b")
            && !failed
            && ops.contains(&FileOp::Unlink))
            && facts
                .iter()
                .any(|(p, _, failed)| p == &format!("{w}/missing") && *failed),
        "{facts:#?}"
    );
    if !fexit_refused {
        assert_eq!(rec.host.event_exits, Some(EventExits::Fexit));
        return eprintln!(
            "this kernel ({}) accepts fexit: no fallback to test",
            rec.host.kernel_release
        );
    }
    assert_error(
        "PROFGEN_EXITS=fexit on a kernel refusing trampolines",
        &forced,
        EXIT_NO_PERMISSION,
        &[
            "PROFGEN_EXITS=fexit",
            "refused fexit",
            "unset PROFGEN_EXITS",
        ],
    );
    assert_eq!(
        rec.host.event_exits,
        Some(EventExits::Tracepoint),
        "fexit refused: the recorder should have fallen back to the tracepoints reading the saved registers"
    );
    let tracepoint = record_shell_with(
        &profgen,
        &dir.path().join("tracepoint.json"),
        &script,
        &[("PROFGEN_EXITS", "tracepoint")],
    );
    assert_eq!(tracepoint.host.event_exits, Some(EventExits::Tracepoint));
    assert_eq!(file_facts(&tracepoint, &w.to_string()), facts);
}

/// A process that exits right after a burst of relative names (PostgreSQL's startup process
/// opens every file of its data directory as `./base/…` after a crash, then exits) leaves
/// events the recorder resolves after the process is gone: they must still name their
/// files, through the cwd the recorder saw when it drained the process's first events.
#[test]
fn relative_names_of_a_process_that_has_exited_are_resolved() {
    let Some((profgen, dir, _)) = setup("relative names after exit") else {
        return;
    };
    let work = dir.path().join("data");
    let (dirs, per_dir) = (60, 40);
    for d in 0..dirs {
        let sub = work.join(format!("d{d}"));
        std::fs::create_dir_all(&sub).unwrap();
        for f in 0..per_dir {
            std::fs::write(sub.join(format!("f{f}")), b"x").unwrap();
        }
    }
    let w = work.display().to_string();
    let w = w.as_str();
    // cat opens each file by the name the glob made (`d0/f0`): relative to its cwd.
    let rec = record_shell(
        &profgen,
        &dir.path().join("rec.json"),
        &format!("cd {w} && cat d*/f* > /dev/null"),
    );
    assert_no_events_lost(&rec);
    let read: std::collections::BTreeSet<String> = rec
        .cgroups
        .iter()
        .flat_map(|cg| &cg.activity.files)
        .filter(|f| !f.failed && f.ops.contains(&FileOp::Read))
        .filter_map(|f| f.path.to_str().map(str::to_owned))
        .filter(|p| p.starts_with(&format!("{w}/d")))
        .collect();
    let missing: Vec<String> = (0..dirs)
        .flat_map(|d| (0..per_dir).map(move |f| format!("{w}/d{d}/f{f}")))
        .filter(|p| !read.contains(p))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} files read by cat are missing from the recording, e.g. {:?}",
        missing.len(),
        dirs * per_dir,
        &missing[..missing.len().min(3)]
    );
}
