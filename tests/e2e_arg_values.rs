//! Watched argument values on the real kernel: two threads making distinct values of one
//! call at the same instant race for the same slots, and every value must be kept without
//! marking the argument overflowed (which would leave it unfiltered in the profile).
//!
//! The recording programs are loaded through the library and read back directly: a
//! recording of a command without a runtime reports no argument values (it has no seccomp
//! hand-over), and this test needs none.

#[path = "support/mod.rs"]
mod support;

use std::{collections::BTreeSet, process::Command};

use profgen::{
    cgroup::Cgroup,
    record::kernel::{Hook, Kernel},
};
use profiler_common::args::slot;
use support::*;

/// `argrace CGROUP_PROCS`: joins the cgroup, installs an allow-all seccomp filter (argument
/// values count from a filter on), then two threads spinning on one flag make four distinct
/// `prctl` queries each, and the main thread `fcntl(F_DUPFD)` (command 0).
const ARGRACE_C: &str = r#"
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static volatile int ready;
static const int options[2][4] = {{3, 7, 30, 39}, {42, 27, 34, 13}};

static void *run(void *arg) {
    const int *mine = options[(long)arg];
    __atomic_add_fetch(&ready, 1, __ATOMIC_SEQ_CST);
    while (__atomic_load_n(&ready, __ATOMIC_SEQ_CST) < 2) {}
    for (int i = 0; i < 4; i++) prctl(mine[i], 0, 0, 0, 0);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage\n"); return 2; }
    int fd = open(argv[1], O_WRONLY);
    if (fd < 0 || write(fd, "0", 1) != 1) { perror(argv[1]); return 3; }
    close(fd);
    struct sock_filter allow = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    struct sock_fprog prog = {1, &allow};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog)) {
        perror("seccomp");
        return 4;
    }
    pthread_t threads[2];
    for (long t = 0; t < 2; t++) pthread_create(&threads[t], NULL, run, (void *)t);
    for (int t = 0; t < 2; t++) pthread_join(threads[t], NULL);
    int dup = fcntl(0, F_DUPFD, 10);
    if (dup >= 0) close(dup);
    return 0;
}
"#;

/// Runs: each in a fresh cgroup, whose slots start empty, so that every run races again.
/// A claim that gave up on a lost race overflowed a few runs in 200 on a 2-core machine.
const RUNS: usize = 200;

#[test]
fn racing_threads_keep_every_argument_value() {
    if !is_root() {
        skip("argument values: loading eBPF programs needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let argrace = compile_c(dir.path(), "argrace", ARGRACE_C);
    let parent = Cgroup::root()
        .and_then(|root| root.create_child(&format!("profgen-e2e-args-{}", std::process::id())))
        .expect("creating a cgroup");
    let mut kernel = Kernel::load(Hook::SyscallsOnly).expect("loading the recording programs");
    kernel
        .add_target(parent.id().unwrap(), parent.level())
        .expect("recording the cgroup");
    let mut ids = Vec::new();
    for run in 0..RUNS {
        let cgroup = parent.create_child(&format!("run{run}")).unwrap();
        let got = output(Command::new(&argrace).arg(cgroup.path().join("cgroup.procs")));
        assert_success("argrace", &got);
        ids.push(cgroup.id().unwrap());
    }
    let recorded = kernel.cgroups().expect("reading the recorded cgroups");
    drop(kernel);
    let _ = parent.remove_tree();

    let want: BTreeSet<u64> = [3, 7, 13, 27, 30, 34, 39, 42].into();
    let mut wrong = Vec::new();
    for (run, id) in ids.iter().enumerate() {
        let args = &recorded
            .get(id)
            .unwrap_or_else(|| panic!("run {run}: cgroup {id} not recorded"))
            .args;
        let (values, overflowed) = args.get(slot::PRCTL_OPTION);
        let values: BTreeSet<u64> = values.collect();
        if (&values, overflowed) != (&want, false) {
            wrong.push(format!("run {run}: {values:?}, overflowed: {overflowed}"));
        }
        let (fcntl, overflowed) = args.get(slot::FCNTL_CMD);
        assert_eq!(
            (fcntl.collect::<Vec<_>>(), overflowed),
            (vec![0], false),
            "run {run}: fcntl F_DUPFD is command 0"
        );
    }
    assert!(
        wrong.is_empty(),
        "{} of {RUNS} runs did not keep exactly the prctl options {want:?}: {wrong:#?}",
        wrong.len()
    );
}
