/*
 * profgen's seccomp probe. For each syscall named on the command line it makes one call that
 * succeeds when no seccomp filter is in the way, and prints "NAME ok" or "NAME errno N".
 * Under an enforced profile a syscall outside the allow-list must report "errno 1" (EPERM).
 *
 * The calls are chosen to succeed without any capability and to change nothing that outlives
 * the probe.
 *
 * Freestanding: no libc, its own _start, raw syscalls. Built with `cc -static -nostdlib`, it
 * runs in any container whatever its root filesystem holds, and the only syscalls it makes
 * besides the probed ones are write(2), exit_group(2), getpid(2) (for the probes that name the
 * probe itself) and the execve that starts it: a profile missing what a libc does at startup
 * cannot make the probe itself fail.
 *
 * Argument probes (the names with an underscore) make an allowed syscall with arguments a
 * profile built from a workload's recorded values must refuse: another socket family, a new
 * user namespace, a terminal injection, an execution domain that makes reads executable.
 *
 * Exit status: 0 when every name was probed (whatever the results), 2 for an unknown name.
 */
#include <asm/unistd.h>
#include <stddef.h>

#if !defined(__x86_64__) && !defined(__aarch64__)
#error "profgen's probe knows the syscall convention of x86_64 and aarch64 only"
#endif

static long sys6(long n, long a, long b, long c, long d, long e, long f) {
#if defined(__x86_64__)
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    long ret;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
#else
    register long x8 __asm__("x8") = n;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    register long x3 __asm__("x3") = d;
    register long x4 __asm__("x4") = e;
    register long x5 __asm__("x5") = f;
    __asm__ volatile("svc 0"
                     : "+r"(x0)
                     : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
                     : "memory");
    return x0;
#endif
}

#define sys(n, a, b, c) sys6((n), (long)(a), (long)(b), (long)(c), 0, 0, 0)

/* The compiler may call these for array initialisers even in a freestanding build. */
void *memset(void *dst, int c, size_t n) {
    unsigned char *d = dst;
    while (n--)
        *d++ = (unsigned char)c;
    return dst;
}
void *memcpy(void *dst, const void *src, size_t n) {
    unsigned char *d = dst;
    const unsigned char *s = src;
    while (n--)
        *d++ = *s++;
    return dst;
}

static size_t len(const char *s) {
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

static int same(const char *a, const char *b) {
    while (*a && *a == *b)
        a++, b++;
    return *a == *b;
}

static void put(const char *s) {
    size_t left = len(s);
    while (left > 0) {
        long n = sys(__NR_write, 1, s, left);
        if (n <= 0)
            return;
        s += n;
        left -= (size_t)n;
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

/* Each returns the raw syscall result: a negative errno on failure. */
static long probe_unshare(void) { return sys(__NR_unshare, 0, 0, 0); }
/* 0xffffffff queries the persona without changing it. */
static long probe_personality(void) { return sys(__NR_personality, 0xffffffffUL, 0, 0); }
/* The probe's parent becomes its tracer; nothing is traced because the probe exits next. */
static long probe_ptrace(void) { return sys6(__NR_ptrace, 0 /* PTRACE_TRACEME */, 0, 0, 0, 0, 0); }
static long probe_getcpu(void) {
    unsigned cpu, node;
    return sys(__NR_getcpu, &cpu, &node, 0);
}
static long probe_sysinfo(void) {
    long info[32]; /* struct sysinfo is 112 bytes on 64-bit */
    return sys(__NR_sysinfo, info, 0, 0);
}
static long close_after(long fd) {
    if (fd >= 0)
        sys(__NR_close, fd, 0, 0);
    return fd;
}
static long probe_memfd_create(void) {
    return close_after(sys(__NR_memfd_create, "profgen-probe", 0, 0));
}
static long probe_pidfd_open(void) {
    return close_after(sys(__NR_pidfd_open, sys(__NR_getpid, 0, 0, 0), 0, 0));
}
static long probe_process_vm_readv(void) {
    char src[8] = "profgen", dst[8];
    struct {
        void *base;
        size_t len;
    } local = {dst, sizeof dst}, remote = {src, sizeof src};
    return sys6(__NR_process_vm_readv, sys(__NR_getpid, 0, 0, 0), (long)&local, 1, (long)&remote,
                1, 0);
}
/* modes = 0 reads the clock's state without adjusting it (struct timex is 208 bytes). */
static long probe_clock_adjtime(void) {
    long tx[26] = {0};
    return sys(__NR_clock_adjtime, 0 /* CLOCK_REALTIME */, tx, 0);
}
static long probe_kcmp(void) {
    long pid = sys(__NR_getpid, 0, 0, 0);
    return sys6(__NR_kcmp, pid, pid, 0 /* KCMP_FILE */, 1, 1, 0);
}

/* Constants of the kernel's uapi, spelled out: the probe includes no libc header. */
#define PROBE_AF_NETLINK 16
#define PROBE_AF_PACKET 17
#define PROBE_SOCK_RAW 3
#define PROBE_CLONE_NEWUSER 0x10000000L
#define PROBE_SIGCHLD 17
#define PROBE_TIOCSTI 0x5412
#define PROBE_READ_IMPLIES_EXEC 0x0400000UL

/* Needs CAP_NET_RAW as well: without it the kernel refuses with EPERM too, so
 * socket_netlink is the probe that tells a filter on socket's family apart. */
static long probe_socket_packet(void) {
    return close_after(sys(__NR_socket, PROBE_AF_PACKET, PROBE_SOCK_RAW, 0));
}
/* NETLINK_ROUTE (protocol 0) needs no capability. */
static long probe_socket_netlink(void) {
    return close_after(sys(__NR_socket, PROBE_AF_NETLINK, PROBE_SOCK_RAW, 0));
}
/* A child in a new user namespace (no capability needed) that exits at once. Without a stack
 * argument the child runs on a copy of the parent's stack, like fork. */
static long probe_clone_newuser(void) {
    long pid = sys6(__NR_clone, PROBE_CLONE_NEWUSER | PROBE_SIGCHLD, 0, 0, 0, 0, 0);
    if (pid == 0)
        sys(__NR_exit_group, 0, 0, 0);
    if (pid > 0)
        sys6(__NR_wait4, pid, 0, 0, 0, 0, 0);
    return pid;
}
/* On no fd at all: without a filter the kernel answers EBADF, so nothing is ever injected
 * into a terminal; a filter on the request answers first. */
static long probe_ioctl_tiocsti(void) {
    char c = 0;
    return sys(__NR_ioctl, -1, PROBE_TIOCSTI, &c);
}
/* The probe's own persona, restored at once (PER_LINUX is 0). */
static long probe_personality_read_implies_exec(void) {
    long old = sys(__NR_personality, PROBE_READ_IMPLIES_EXEC, 0, 0);
    if (old >= 0)
        sys(__NR_personality, old, 0, 0);
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

static int run(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        long (*call)(void) = 0;
        for (size_t j = 0; j < sizeof probes / sizeof probes[0]; j++)
            if (same(argv[i], probes[j].name))
                call = probes[j].call;
        put(argv[i]);
        if (call == 0) {
            put(" unknown\n");
            return 2;
        }
        long ret = call();
        if (ret < 0 && ret > -4096) {
            put(" errno ");
            put_long(-ret);
            put("\n");
        } else {
            put(" ok\n");
        }
    }
    return 0;
}

/* The kernel leaves argc at the stack pointer, argv right above it. */
__attribute__((used)) static void start_c(long *sp) {
    int argc = (int)sp[0];
    char **argv = (char **)(sp + 1);
    sys(__NR_exit_group, run(argc, argv), 0, 0);
    for (;;) {
    }
}

#if defined(__x86_64__)
__asm__(".text\n.global _start\n_start:\n"
        "  xor %rbp, %rbp\n  mov %rsp, %rdi\n  and $-16, %rsp\n  call start_c\n  hlt\n");
#else
__asm__(".text\n.global _start\n_start:\n"
        "  mov x29, #0\n  mov x30, #0\n  mov x0, sp\n  and sp, x0, #-16\n  bl start_c\n");
#endif
