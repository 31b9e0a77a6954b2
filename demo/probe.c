/*
 * profgen's seccomp probe. For each syscall named on the command line it makes one call that
 * succeeds when no seccomp filter is in the way, and prints "NAME ok" or "NAME errno N".
 * Under an enforced profile a syscall outside the allow-list must report "errno 1" (EPERM).
 *
 * The calls are chosen to succeed without any capability and to change nothing that outlives
 * the probe. Everything goes through syscall(2) so that glibc wrappers cannot substitute a
 * different syscall, and output uses write(2) only: the probe's own syscalls stay a subset of
 * what any dynamically linked glibc program makes at startup.
 *
 * Argument probes (the names with an underscore) make an allowed syscall with arguments a
 * profile built from a workload's recorded values must refuse: another socket family, a new
 * user namespace, a terminal injection, an execution domain that makes reads executable.
 *
 * Exit status: 0 when every name was probed (whatever the results), 2 for an unknown name.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/sched.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/personality.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timex.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static void put(const char *s) {
    size_t len = strlen(s);
    while (len > 0) {
        ssize_t n = write(1, s, len);
        if (n <= 0)
            return;
        s += n;
        len -= (size_t)n;
    }
}

static void put_long(long v) {
    char buf[24];
    char *p = buf + sizeof buf - 1;
    int neg = v < 0;
    unsigned long u = neg ? -(unsigned long)v : (unsigned long)v;
    *p = '\0';
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (neg)
        *--p = '-';
    put(p);
}

/* Each returns the raw syscall result: -1 with errno set on failure. */
static long probe_unshare(void) { return syscall(SYS_unshare, 0); }
/* 0xffffffff queries the persona without changing it. */
static long probe_personality(void) { return syscall(SYS_personality, 0xffffffffUL); }
/* The probe's parent becomes its tracer; nothing is traced because the probe exits next. */
static long probe_ptrace(void) { return syscall(SYS_ptrace, 0 /* PTRACE_TRACEME */, 0, 0, 0); }
static long probe_getcpu(void) {
    unsigned cpu, node;
    return syscall(SYS_getcpu, &cpu, &node, NULL);
}
static long probe_sysinfo(void) {
    char info[256]; /* struct sysinfo is 112 bytes on 64-bit */
    return syscall(SYS_sysinfo, info);
}
static long probe_memfd_create(void) {
    long fd = syscall(SYS_memfd_create, "profgen-probe", 0);
    if (fd >= 0)
        close((int)fd);
    return fd;
}
static long probe_pidfd_open(void) {
    long fd = syscall(SYS_pidfd_open, (long)getpid(), 0);
    if (fd >= 0)
        close((int)fd);
    return fd;
}
static long probe_process_vm_readv(void) {
    char src[8] = "profgen", dst[8];
    struct iovec local = {dst, sizeof dst}, remote = {src, sizeof src};
    return syscall(SYS_process_vm_readv, (long)getpid(), &local, 1UL, &remote, 1UL, 0UL);
}
/* modes = 0 reads the clock's state without adjusting it. */
static long probe_clock_adjtime(void) {
    struct timex tx;
    memset(&tx, 0, sizeof tx);
    return syscall(SYS_clock_adjtime, CLOCK_REALTIME, &tx);
}
static long probe_kcmp(void) {
    long pid = getpid();
    return syscall(SYS_kcmp, pid, pid, 0 /* KCMP_FILE */, 1L, 1L);
}

/* Needs CAP_NET_RAW as well: without it the kernel refuses with EPERM too, so
 * socket_netlink is the probe that tells a filter on socket's family apart. */
static long probe_socket_packet(void) {
    long fd = syscall(SYS_socket, AF_PACKET, SOCK_RAW, 0);
    if (fd >= 0)
        close((int)fd);
    return fd;
}
/* NETLINK_ROUTE needs no capability. */
static long probe_socket_netlink(void) {
    long fd = syscall(SYS_socket, AF_NETLINK, SOCK_RAW, 0);
    if (fd >= 0)
        close((int)fd);
    return fd;
}
/* A child in a new user namespace (no capability needed), which exits at once. */
static long probe_clone_newuser(void) {
    long pid = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0L, 0L, 0L, 0L);
    if (pid == 0)
        syscall(SYS_exit_group, 0);
    if (pid > 0)
        syscall(SYS_wait4, pid, 0L, 0L, 0L);
    return pid;
}
/* On no fd at all: without a filter the kernel answers EBADF, so nothing is ever injected
 * into a terminal; a filter on the request answers first. */
static long probe_ioctl_tiocsti(void) {
    char c = 0;
    return syscall(SYS_ioctl, -1, TIOCSTI, &c);
}
/* The probe's own persona, restored at once. */
static long probe_personality_read_implies_exec(void) {
    long old = syscall(SYS_personality, (unsigned long)(PER_LINUX | READ_IMPLIES_EXEC));
    if (old >= 0)
        syscall(SYS_personality, (unsigned long)old);
    return old;
}

static const struct {
    const char *name;
    long (*call)(void);
} probes[] = {
    {"unshare", probe_unshare},
    {"personality", probe_personality},
    {"ptrace", probe_ptrace},
    {"getcpu", probe_getcpu},
    {"sysinfo", probe_sysinfo},
    {"memfd_create", probe_memfd_create},
    {"pidfd_open", probe_pidfd_open},
    {"process_vm_readv", probe_process_vm_readv},
    {"clock_adjtime", probe_clock_adjtime},
    {"kcmp", probe_kcmp},
    {"socket_packet", probe_socket_packet},
    {"socket_netlink", probe_socket_netlink},
    {"clone_newuser", probe_clone_newuser},
    {"ioctl_tiocsti", probe_ioctl_tiocsti},
    {"personality_read_implies_exec", probe_personality_read_implies_exec},
};

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        long (*call)(void) = NULL;
        for (size_t j = 0; j < sizeof probes / sizeof probes[0]; j++)
            if (strcmp(argv[i], probes[j].name) == 0)
                call = probes[j].call;
        put(argv[i]);
        if (call == NULL) {
            put(" unknown\n");
            return 2;
        }
        errno = 0;
        if (call() < 0) {
            int err = errno;
            put(" errno ");
            put_long(err);
            put("\n");
        } else {
            put(" ok\n");
        }
    }
    return 0;
}
