/* Least privilege for a process that runs a VM: a user, no new privileges, a syscall filter. */
#include "cli/sandbox.h"

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/capability.h>

#include "cli/cli.h"
#include "vmm/vm.h"

/*
 * What the whole process may call once the VM is set up: memory, threads, time, signals,
 * files (snapshots, repositories, disks, the disk change log), sockets (the API, TCP and
 * TLS for migration and S3; libcurl resolves names), KVM's ioctls. Not there, among
 * others: execve, ptrace, process_vm_*, mount, bpf, perf_event_open, keyctl, unshare,
 * setns, setuid and friends (but see sandbox_setid), module and kexec calls, userfaultfd
 * (made before the filter).
 */
static const int sandbox_allowed[] = {
	SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(readv), SCMP_SYS(writev), SCMP_SYS(pread64),
	SCMP_SYS(pwrite64), SCMP_SYS(preadv), SCMP_SYS(pwritev), SCMP_SYS(preadv2),
	SCMP_SYS(pwritev2), SCMP_SYS(open), SCMP_SYS(openat), SCMP_SYS(close),
	SCMP_SYS(close_range), SCMP_SYS(fstat), SCMP_SYS(stat), SCMP_SYS(lstat),
	SCMP_SYS(newfstatat), SCMP_SYS(statx), SCMP_SYS(fstatfs), SCMP_SYS(statfs), SCMP_SYS(lseek),
	SCMP_SYS(mmap), SCMP_SYS(munmap), SCMP_SYS(mprotect), SCMP_SYS(mremap), SCMP_SYS(madvise),
	SCMP_SYS(mincore), SCMP_SYS(brk), SCMP_SYS(msync), SCMP_SYS(rt_sigaction),
	SCMP_SYS(rt_sigprocmask), SCMP_SYS(rt_sigreturn), SCMP_SYS(rt_sigtimedwait),
	SCMP_SYS(rt_sigpending), SCMP_SYS(sigaltstack), SCMP_SYS(restart_syscall), SCMP_SYS(ioctl),
	SCMP_SYS(poll), SCMP_SYS(ppoll), SCMP_SYS(select), SCMP_SYS(pselect6),
	SCMP_SYS(epoll_create1), SCMP_SYS(epoll_ctl), SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait),
	SCMP_SYS(eventfd2), SCMP_SYS(pipe), SCMP_SYS(pipe2), SCMP_SYS(dup), SCMP_SYS(dup2),
	SCMP_SYS(dup3), SCMP_SYS(fcntl), SCMP_SYS(flock), SCMP_SYS(fsync), SCMP_SYS(fdatasync),
	SCMP_SYS(sync_file_range), SCMP_SYS(ftruncate), SCMP_SYS(fallocate), SCMP_SYS(fadvise64),
	SCMP_SYS(getdents64), SCMP_SYS(getcwd), SCMP_SYS(rename), SCMP_SYS(renameat),
	SCMP_SYS(renameat2), SCMP_SYS(mkdir), SCMP_SYS(mkdirat), SCMP_SYS(rmdir), SCMP_SYS(unlink),
	SCMP_SYS(unlinkat), SCMP_SYS(link), SCMP_SYS(linkat), SCMP_SYS(readlink),
	SCMP_SYS(readlinkat), SCMP_SYS(access), SCMP_SYS(faccessat), SCMP_SYS(faccessat2),
	SCMP_SYS(fchmod), SCMP_SYS(chmod), SCMP_SYS(fchmodat), SCMP_SYS(chown),
	SCMP_SYS(fchownat), SCMP_SYS(umask), SCMP_SYS(utimensat), SCMP_SYS(copy_file_range),
	SCMP_SYS(socket), SCMP_SYS(socketpair), SCMP_SYS(connect), SCMP_SYS(accept),
	SCMP_SYS(accept4), SCMP_SYS(bind), SCMP_SYS(listen), SCMP_SYS(getsockname),
	SCMP_SYS(getpeername), SCMP_SYS(sendto), SCMP_SYS(recvfrom), SCMP_SYS(sendmsg),
	SCMP_SYS(recvmsg), SCMP_SYS(sendmmsg), SCMP_SYS(recvmmsg), SCMP_SYS(shutdown),
	SCMP_SYS(setsockopt), SCMP_SYS(getsockopt), SCMP_SYS(clone), SCMP_SYS(clone3),
	SCMP_SYS(exit), SCMP_SYS(exit_group), SCMP_SYS(futex), SCMP_SYS(set_robust_list),
	SCMP_SYS(get_robust_list), SCMP_SYS(rseq), SCMP_SYS(set_tid_address),
	SCMP_SYS(nanosleep), SCMP_SYS(clock_nanosleep), SCMP_SYS(clock_gettime),
	SCMP_SYS(clock_getres), SCMP_SYS(gettimeofday), SCMP_SYS(time), SCMP_SYS(getpid),
	SCMP_SYS(gettid), SCMP_SYS(getppid), SCMP_SYS(getuid), SCMP_SYS(geteuid), SCMP_SYS(getgid),
	SCMP_SYS(getegid), SCMP_SYS(getgroups), SCMP_SYS(getresuid), SCMP_SYS(getresgid),
	SCMP_SYS(tgkill), SCMP_SYS(tkill), SCMP_SYS(sched_yield), SCMP_SYS(sched_getaffinity),
	SCMP_SYS(prctl), SCMP_SYS(arch_prctl), SCMP_SYS(uname), SCMP_SYS(sysinfo),
	SCMP_SYS(getrandom), SCMP_SYS(prlimit64), SCMP_SYS(getrlimit), SCMP_SYS(getrusage),
	SCMP_SYS(times), SCMP_SYS(timerfd_create), SCMP_SYS(timerfd_settime),
	SCMP_SYS(timerfd_gettime), SCMP_SYS(membarrier), SCMP_SYS(seccomp),
};

/*
 * What a vCPU thread may not call on top of that: it runs the guest and emulates its
 * devices (KVM_RUN, port and MMIO exits, disk I/O on open descriptors), and never opens,
 * creates or connects anything, nor starts threads or processes.
 */
static const int sandbox_vcpu_denied[] = {
	SCMP_SYS(open), SCMP_SYS(openat), SCMP_SYS(socket), SCMP_SYS(socketpair),
	SCMP_SYS(connect), SCMP_SYS(accept), SCMP_SYS(accept4), SCMP_SYS(bind), SCMP_SYS(listen),
	SCMP_SYS(clone), SCMP_SYS(clone3), SCMP_SYS(rename), SCMP_SYS(renameat),
	SCMP_SYS(renameat2), SCMP_SYS(mkdir), SCMP_SYS(mkdirat), SCMP_SYS(unlink),
	SCMP_SYS(unlinkat), SCMP_SYS(link), SCMP_SYS(linkat), SCMP_SYS(fchmod),
	SCMP_SYS(sendmsg), SCMP_SYS(recvmsg), SCMP_SYS(sendto), SCMP_SYS(recvfrom),
};

/*
 * The syscall names the SIGSYS handler prints, made before the filter goes on (a signal
 * handler may not allocate). The one mutable static here: a signal handler has no other
 * way to its data. Written once by sandbox_enter before any filter exists, read-only after.
 */
#define SANDBOX_MAX_NR 512
static char *sandbox_names[SANDBOX_MAX_NR];

static size_t str_append(char *buf, size_t at, size_t cap, const char *s)
{
	while (*s && at + 1 < cap)
		buf[at++] = *s++;
	buf[at] = '\0';
	return at;
}

/* SIGSYS from SECCOMP_RET_TRAP: name the call and the thread, then end the process. */
static void sandbox_sigsys(int sig, siginfo_t *si, void *uctx)
{
	char line[400], thread[17] = "?", num[16];
	int nr = si->si_syscall, n = 0;
	size_t at = 0;
	unsigned u = nr < 0 ? 0 : (unsigned)nr;

	(void)sig;
	(void)uctx;
	prctl(PR_GET_NAME, thread, 0, 0, 0);
	do {
		num[sizeof(num) - 2 - n++] = (char)('0' + u % 10);
		u /= 10;
	} while (u && n < 10);
	num[sizeof(num) - 1] = '\0';
	at = str_append(line, at, sizeof(line), "godwit: seccomp: thread ");
	at = str_append(line, at, sizeof(line), thread);
	at = str_append(line, at, sizeof(line), " made a forbidden system call, ");
	at = str_append(line, at, sizeof(line),
			nr >= 0 && nr < SANDBOX_MAX_NR && sandbox_names[nr] ? sandbox_names[nr]
									     : "unknown");
	at = str_append(line, at, sizeof(line), " (");
	at = str_append(line, at, sizeof(line), num + sizeof(num) - 1 - n);
	at = str_append(line, at, sizeof(line) - 1, "): the VM is stopped; this is a godwit "
			"bug (--seccomp off runs without the filter)");
	line[at++] = '\n';
	if (write(STDERR_FILENO, line, at) < 0)
		_exit(CLI_EXIT_ERROR);
	_exit(CLI_EXIT_ERROR);
}

int sandbox_user(struct sandbox *sb, const char *name, char *err, size_t errlen)
{
	char buf[16384];
	struct passwd pw, *res = NULL;

	if (getpwnam_r(name, &pw, buf, sizeof(buf), &res) != 0 || !res) {
		char *end;
		unsigned long n = strtoul(name, &end, 10);

		if (name[0] < '0' || name[0] > '9' || *end || n >= UINT_MAX ||
		    getpwuid_r((uid_t)n, &pw, buf, sizeof(buf), &res) != 0 || !res) {
			snprintf(err, errlen, "--user '%s' is not a user on this host: name one from "
				 "/etc/passwd (e.g. a user in the kvm group)", name);
			return -ENOENT;
		}
	}
	if (res->pw_uid == 0) {
		snprintf(err, errlen, "--user '%s' is root: name an unprivileged user", name);
		return -EINVAL;
	}
	sb->has_user = true;
	sb->uid = res->pw_uid;
	sb->gid = res->pw_gid;
	snprintf(sb->user, sizeof(sb->user), "%s", res->pw_name);
	return 0;
}

/* Become sb's user with no capabilities left anywhere (sb, api_path). */
static int sandbox_drop_user(const struct sandbox *sb, const char *api_path, char *err,
			     size_t errlen)
{
	if (api_path && chown(api_path, sb->uid, (gid_t)-1) < 0) {
		snprintf(err, errlen, "--user %s: cannot give the API socket %s to it: %s",
			 sb->user, api_path, strerror(errno));
		return -errno;
	}
	/* The bounding set too: nothing can come back through a file's capabilities. */
	for (int cap = 0; cap <= CAP_LAST_CAP; cap++)
		prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	if (initgroups(sb->user, sb->gid) < 0 || setresgid(sb->gid, sb->gid, sb->gid) < 0 ||
	    setresuid(sb->uid, sb->uid, sb->uid) < 0) {
		int rc = -errno;

		snprintf(err, errlen, "--user %s: cannot become it: %s (run godwit as root to "
			 "use --user)", sb->user, strerror(-rc));
		return rc;
	}
	/* setresuid from root to another user cleared the permitted and effective sets. */
	return 0;
}

/*
 * What becoming --user takes, when the filter goes on before it (godwit receive): once the
 * user has no capabilities, these can only shuffle its own ids.
 */
static const int sandbox_setid[] = {
	SCMP_SYS(setgroups), SCMP_SYS(setresuid), SCMP_SYS(setresgid),
};

/*
 * A filter (deflt, rule action) of syscalls on this thread, or with tsync on all; with
 * setid (an allowlist), sandbox_setid too.
 */
static int sandbox_load(uint32_t deflt, uint32_t action, const int *nrs, size_t n, bool tsync,
			bool setid)
{
	scmp_filter_ctx ctx = seccomp_init(deflt);
	int rc = ctx ? 0 : -ENOMEM;

	if (rc == 0 && tsync)
		rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = seccomp_rule_add(ctx, action, nrs[i], 0);
	for (size_t i = 0; rc == 0 && setid && i < sizeof(sandbox_setid) / sizeof(sandbox_setid[0]);
	     i++)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, sandbox_setid[i], 0);
	/* The allowlist: kill(pid, 0) only, which asks whether a lock's holder lives. */
	if (rc == 0 && action == SCMP_ACT_ALLOW)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(kill), 1,
				      SCMP_A1(SCMP_CMP_EQ, 0));
	if (rc == 0)
		rc = seccomp_load(ctx);
	if (ctx)
		seccomp_release(ctx);
	return rc;
}

/* A vCPU thread, before its next KVM_RUN: add the tighter filter. */
static void sandbox_vcpu_thread(void *ctx, unsigned vcpu)
{
	int rc = sandbox_load(SCMP_ACT_ALLOW, SCMP_ACT_TRAP, sandbox_vcpu_denied,
			      sizeof(sandbox_vcpu_denied) / sizeof(sandbox_vcpu_denied[0]), false,
			      false);
	const char *probe = ctx;

	if (rc < 0)
		cli_error("seccomp: vCPU %u: cannot add its filter: %s; it runs with the "
			  "process-wide one", vcpu, strerror(-rc));
	/* The test hook (GODWIT_TEST_FORBIDDEN_SYSCALL=vcpu): a call the filter must stop. */
	if (probe && strcmp(probe, "vcpu") == 0) {
		int fd = (int)syscall(SYS_socket, 2 /* AF_INET */, 1 /* SOCK_STREAM */, 0);

		if (fd >= 0)
			close(fd);
	}
}

/* The SIGSYS reporter and the process-wide allowlist on every thread. */
static int sandbox_allowlist(bool setid, char *err, size_t errlen)
{
	struct sigaction sa = { .sa_sigaction = sandbox_sigsys, .sa_flags = SA_SIGINFO };
	int rc;

	for (int nr = 0; nr < SANDBOX_MAX_NR; nr++)
		if (!sandbox_names[nr])
			sandbox_names[nr] = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) < 0) {
		rc = -errno;
		snprintf(err, errlen, "seccomp: SIGSYS handler: %s", strerror(-rc));
		return rc;
	}
	rc = sandbox_load(SCMP_ACT_TRAP, SCMP_ACT_ALLOW, sandbox_allowed,
			  sizeof(sandbox_allowed) / sizeof(sandbox_allowed[0]), true, setid);
	if (rc < 0)
		snprintf(err, errlen, "seccomp: cannot install the syscall filter: %s (--seccomp "
			 "off runs without it)", strerror(-rc));
	return rc;
}

int sandbox_filter(struct sandbox *sb, char *err, size_t errlen)
{
	int rc;

	if (sb->seccomp_off)
		return 0;
	rc = sandbox_allowlist(sb->has_user, err, errlen);
	if (rc == 0)
		sb->filtered = true;
	return rc;
}

int sandbox_enter(const struct sandbox *sb, struct vm *vm, const char *api_path, char *err,
		  size_t errlen)
{
	const char *probe = getenv("GODWIT_TEST_FORBIDDEN_SYSCALL");
	int rc;

	/*
	 * A vCPU that ran before this ran the guest with privilege and without the filter.
	 * (Stopped: a VM whose start was called off, say by a failed lazy restore, never ran.)
	 */
	if (vm_state(vm) == VM_STATE_RUNNING || vm_state(vm) == VM_STATE_PAUSED) {
		snprintf(err, errlen, "the sandbox must be entered before the first vCPU runs, and "
			 "this VM is %s already: this is a godwit bug", vm_state_name(vm_state(vm)));
		return -EBUSY;
	}
	if (sb->has_user) {
		rc = sandbox_drop_user(sb, api_path, err, errlen);
		if (rc < 0)
			return rc;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		rc = -errno;
		snprintf(err, errlen, "PR_SET_NO_NEW_PRIVS: %s", strerror(-rc));
		return rc;
	}
	if (sb->seccomp_off)
		return 0;
	if (!sb->filtered) {
		rc = sandbox_allowlist(false, err, errlen);
		if (rc < 0)
			return rc;
	}
	vm_set_vcpu_thread_init(vm, sandbox_vcpu_thread, (void *)probe);
	/* The test hook (GODWIT_TEST_FORBIDDEN_SYSCALL=main): a call no thread may make. */
	if (probe && strcmp(probe, "main") == 0)
		syscall(SYS_ptrace, 0, 0, 0, 0);
	return 0;
}
