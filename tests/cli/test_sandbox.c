/* End-to-end: a running VM's process is filtered, unprivileged, and a forbidden call is named. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/common/gw_test.h"

#define BOOT_MS 60000
#define NOBODY 65534

static struct gw_proc P, CMD, DST, RST;

static void setup(void)
{
	gw_proc_init(&P);
	gw_proc_init(&CMD);
	gw_proc_init(&DST);
	gw_proc_init(&RST);
}

static void teardown(void)
{
	gw_proc_cleanup(&RST);
	gw_proc_cleanup(&DST);
	gw_proc_cleanup(&CMD);
	gw_proc_cleanup(&P);
	unsetenv("GODWIT_TEST_FORBIDDEN_SYSCALL");
}

TestSuite(sandbox, .init = setup, .fini = teardown, .timeout = 240);

static void boot(const char *const *extra)
{
	const char *argv[32] = { "run", "--kernel", TEST_GUEST_ELF, "--mem", "64M", "--cpus", "2",
				 "--cmdline", "mb=4 rate=16", "--console", P.console, "--api",
				 P.api };
	unsigned n = 13;

	require_kvm();
	for (; extra && *extra && n < 30; extra++)
		argv[n++] = *extra;
	argv[n] = NULL;
	gw_spawn(&P, argv);
}

static void wait_hb(unsigned n)
{
	cr_assert(gw_wait_line(&P, P.console, "HB ", n, NULL, 0, BOOT_MS),
		  "no heartbeat %u; stderr: %s", n, gw_read_file(P.err));
}

/* The value after "key:" in /proc/PID[/task/TID]/status, whitespace squeezed out. */
static void proc_field(const char *status_path, const char *key, char *out, size_t len)
{
	char *text = gw_read_file(status_path), *p, *e;
	size_t klen = strlen(key), o = 0;

	cr_assert_not_null(text, "%s", status_path);
	for (p = text; p && strncmp(p, key, klen) != 0; p = strchr(p, '\n') ? strchr(p, '\n') + 1
									     : NULL)
		;
	cr_assert_not_null(p, "no %s in %s", key, status_path);
	p += klen;
	e = strchr(p, '\n');
	for (; p < e && o + 1 < len; p++) {
		if (*p == '\t' || *p == ' ') {
			if (o && out[o - 1] != ' ')
				out[o++] = ' ';
			continue;
		}
		out[o++] = *p;
	}
	while (o && out[o - 1] == ' ')
		o--;
	out[o] = '\0';
	free(text);
}

/* Seccomp_filters of the thread named name in process pid (asserts there is one). */
static unsigned thread_filters(pid_t pid, const char *name)
{
	char dir[64], path[384], comm[64];
	struct dirent *de;
	DIR *d;

	snprintf(dir, sizeof(dir), "/proc/%d/task", (int)pid);
	d = opendir(dir);
	cr_assert_not_null(d);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s/status", dir, de->d_name);
		proc_field(path, "Name:", comm, sizeof(comm));
		if (strcmp(comm, name) == 0) {
			proc_field(path, "Seccomp_filters:", comm, sizeof(comm));
			closedir(d);
			return (unsigned)strtoul(comm, NULL, 10);
		}
	}
	closedir(d);
	cr_assert_fail("no thread %s in %d", name, (int)pid);
	return 0;
}

Test(sandbox, a_vm_run_as_a_user_is_filtered_without_privilege_and_still_snapshots)
{
	const char *extra[] = { "--user", "nobody", NULL };
	char path[64], v[128], repo[256], key[256], cmd[600];

	snprintf(repo, sizeof(repo), "%s/repo", P.dir);
	snprintf(key, sizeof(key), "%s/repo.key", P.dir);
	/* The user's own: the directory (for the socket) and the repository it writes. */
	cr_assert_eq(gw_run(&CMD, (const char *const[]){ "repo", "init", "--repo", repo,
							 "--key-file", key, NULL }, 30000), 0,
		     "%s", gw_read_file(CMD.err));
	snprintf(cmd, sizeof(cmd), "chown -R %d '%s'", NOBODY, P.dir);
	cr_assert_eq(system(cmd), 0);
	boot(extra);
	wait_hb(3);
	snprintf(path, sizeof(path), "/proc/%d/status", (int)P.pid);
	proc_field(path, "Uid:", v, sizeof(v));
	cr_assert_str_eq(v, "65534 65534 65534 65534");
	proc_field(path, "Gid:", v, sizeof(v));
	cr_assert_str_eq(v, "65534 65534 65534 65534");
	proc_field(path, "Seccomp:", v, sizeof(v));
	cr_assert_str_eq(v, "2", "Seccomp: %s", v);
	proc_field(path, "NoNewPrivs:", v, sizeof(v));
	cr_assert_str_eq(v, "1");
	proc_field(path, "CapEff:", v, sizeof(v));
	cr_assert_str_eq(v, "0000000000000000");
	proc_field(path, "CapPrm:", v, sizeof(v));
	cr_assert_str_eq(v, "0000000000000000");
	proc_field(path, "CapBnd:", v, sizeof(v));
	cr_assert_str_eq(v, "0000000000000000");
	/* vCPU threads carry one filter more than the rest. */
	cr_assert_eq(thread_filters(P.pid, "vcpu0"), thread_filters(P.pid, "api") + 1);
	cr_assert_eq(thread_filters(P.pid, "vcpu1"), thread_filters(P.pid, "api") + 1);
	/* The unprivileged, filtered VMM still snapshots into its repository. */
	cr_assert_eq(gw_run(&CMD, (const char *const[]){ "snapshot", "--api", P.api, "--repo",
							 repo, "--key-file", key, NULL }, 120000),
		     0, "snapshot: %s / VM: %s", gw_read_file(CMD.err), gw_read_file(P.err));
	wait_hb(gw_count_lines(P.console, "HB ") + 2);
	gw_quit(&P);
	cr_assert(WIFEXITED(P.status) && WEXITSTATUS(P.status) == 0, "status %d: %s", P.status,
		  gw_read_file(P.err));
	cr_assert_neq(access(P.api, F_OK), 0, "API socket left behind");
}

Test(sandbox, the_filter_is_on_by_default_and_off_on_request)
{
	const char *off[] = { "--seccomp", "off", NULL };
	char path[64], v[64];

	boot(NULL);
	wait_hb(2);
	snprintf(path, sizeof(path), "/proc/%d/status", (int)P.pid);
	proc_field(path, "Seccomp:", v, sizeof(v));
	cr_assert_str_eq(v, "2");
	proc_field(path, "NoNewPrivs:", v, sizeof(v));
	cr_assert_str_eq(v, "1");
	gw_quit(&P);
	gw_proc_cleanup(&P);
	gw_proc_init(&P);
	boot(off);
	wait_hb(2);
	snprintf(path, sizeof(path), "/proc/%d/status", (int)P.pid);
	proc_field(path, "Seccomp:", v, sizeof(v));
	cr_assert_str_eq(v, "0");
	/* No new privileges either way, not only as a side effect of the filter. */
	proc_field(path, "NoNewPrivs:", v, sizeof(v));
	cr_assert_str_eq(v, "1");
	gw_quit(&P);
}

static void expect_killed_naming(const char *where, const char *call, const char *thread)
{
	char needle[128];
	char *err;

	setenv("GODWIT_TEST_FORBIDDEN_SYSCALL", where, 1);
	boot(NULL);
	unsetenv("GODWIT_TEST_FORBIDDEN_SYSCALL");
	cr_assert(gw_wait_exit(&P, 60000), "the VM survived a forbidden %s", call);
	cr_assert(WIFEXITED(P.status) && WEXITSTATUS(P.status) == 1, "status %d", P.status);
	err = gw_read_file(P.err);
	snprintf(needle, sizeof(needle), "godwit: seccomp: thread %s", thread);
	cr_assert(strstr(err, needle), "%s", err);
	snprintf(needle, sizeof(needle), "made a forbidden system call, %s (", call);
	cr_assert(strstr(err, needle), "%s", err);
	free(err);
}

Test(sandbox, a_forbidden_call_on_a_vcpu_thread_ends_the_vm_naming_call_and_thread)
{
	/* socket() is allowed to the process, not to a vCPU thread. */
	expect_killed_naming("vcpu", "socket", "vcpu");
}

Test(sandbox, a_forbidden_call_on_the_main_thread_ends_the_vm_naming_call_and_thread)
{
	expect_killed_naming("main", "ptrace", "godwit");
}

Test(sandbox, refuses_an_unknown_user_and_root)
{
	const char *a[] = { "run", "--kernel", TEST_GUEST_ELF, "--user", "no-such-user-i15", NULL };
	const char *b[] = { "run", "--kernel", TEST_GUEST_ELF, "--user", "root", NULL };
	const char *c[] = { "run", "--kernel", TEST_GUEST_ELF, "--seccomp", "maybe", NULL };

	cr_assert_eq(gw_run(&CMD, a, 30000), 1);
	gw_expect_one_error(&CMD, "--user 'no-such-user-i15' is not a user");
	cr_assert_eq(gw_run(&CMD, b, 30000), 1);
	gw_expect_one_error(&CMD, "is root");
	cr_assert_eq(gw_run(&CMD, c, 30000), 1);
	gw_expect_one_error(&CMD, "--seccomp 'maybe' is not on or off");
}

/* p runs as nobody, filtered, without capabilities; its vCPUs under the tighter filter. */
static void expect_sandboxed(const struct gw_proc *p)
{
	char path[64], v[128];

	snprintf(path, sizeof(path), "/proc/%d/status", (int)p->pid);
	proc_field(path, "Uid:", v, sizeof(v));
	cr_assert_str_eq(v, "65534 65534 65534 65534");
	proc_field(path, "Seccomp:", v, sizeof(v));
	cr_assert_str_eq(v, "2");
	proc_field(path, "NoNewPrivs:", v, sizeof(v));
	cr_assert_str_eq(v, "1");
	proc_field(path, "CapEff:", v, sizeof(v));
	cr_assert_str_eq(v, "0000000000000000");
	cr_assert_eq(thread_filters(p->pid, "vcpu0"), thread_filters(p->pid, "api") + 1);
	cr_assert_eq(thread_filters(p->pid, "vcpu1"), thread_filters(p->pid, "api") + 1);
}

/* The newest heartbeat of p is from the boot of before, and later. */
static void expect_continues(struct gw_proc *p, const struct gw_hb *before)
{
	char line[256];
	struct gw_hb hb;

	cr_assert(gw_wait_line(p, p->console, "HB ", 3, line, sizeof(line), BOOT_MS),
		  "no heartbeats: %s", gw_read_file(p->err));
	cr_assert(gw_parse_hb(line, &hb));
	cr_assert_str_eq(hb.id, before->id, "the guest rebooted: %s", line);
	cr_assert_gt(hb.counter, before->counter, "%s", line);
	cr_assert_eq(hb.errors, 0, "%s", line);
}

Test(sandbox, as_a_user_a_vm_snapshots_migrates_over_tls_and_is_restored)
{
	const char *extra[] = { "--user", "nobody", NULL };
	char repo[256], key[256], psk[256], to[64], id[80], cmd[600], *out;
	struct gw_hb before;
	FILE *f;

	snprintf(repo, sizeof(repo), "%s/repo", P.dir);
	snprintf(key, sizeof(key), "%s/repo.key", P.dir);
	snprintf(psk, sizeof(psk), "%s/psk", P.dir);
	snprintf(to, sizeof(to), "127.0.0.1:%u", 20000 + (unsigned)getpid() % 20000);
	cr_assert_eq(gw_run(&CMD, (const char *const[]){ "repo", "init", "--repo", repo,
							 "--key-file", key, NULL }, 30000), 0);
	f = fopen(psk, "w");
	cr_assert_not_null(f);
	fputs("5e2b9c0d7a4f1e8b3c6d9a2f5e8b1c4d7a0f3e6b9c2d5a8f1e4b7c0d3a6f9e2b\n", f);
	fclose(f);
	cr_assert_eq(chmod(psk, 0600), 0);
	snprintf(cmd, sizeof(cmd), "chown -R %d '%s' '%s' '%s'", NOBODY, P.dir, DST.dir, RST.dir);
	cr_assert_eq(system(cmd), 0);
	boot(extra);
	wait_hb(3);
	expect_sandboxed(&P);
	/* Snapshot, as the user, into its repository. */
	cr_assert_eq(gw_run(&CMD, (const char *const[]){ "snapshot", "--api", P.api, "--repo",
							 repo, "--key-file", key, NULL }, 120000),
		     0, "snapshot: %s / VM: %s", gw_read_file(CMD.err), gw_read_file(P.err));
	out = gw_read_file(CMD.out);
	snprintf(id, sizeof(id), "%s", out);
	id[strcspn(id, "\n")] = '\0';
	free(out);
	/* Migrate over TLS to a receiver that drops to the user too. */
	gw_spawn(&DST, (const char *const[]){ "receive", "--listen", to, "--psk-file", psk,
					      "--user", "nobody", "--console", DST.console, "--api",
					      DST.api, NULL });
	cr_assert(gw_wait_line(&DST, DST.err, "godwit: waiting for a VM", 1, NULL, 0, 10000),
		  "%s", gw_read_file(DST.err));
	gw_last_hb(&P, &before);
	cr_assert_eq(gw_run(&CMD, (const char *const[]){ "migrate", "--api", P.api, "--to", to,
							 "--psk-file", psk, NULL }, 120000), 0,
		     "migrate: %s / source: %s / receive: %s", gw_read_file(CMD.err),
		     gw_read_file(P.err), gw_read_file(DST.err));
	expect_continues(&DST, &before);
	expect_sandboxed(&DST);
	cr_assert(gw_wait_exit(&P, 30000), "the source stayed after the migration");
	gw_quit(&DST);
	/* Restore the snapshot, as the user again. */
	gw_spawn(&RST, (const char *const[]){ "restore", "--repo", repo, "--key-file", key,
					      "--snapshot", id, "--user", "nobody", "--console",
					      RST.console, "--api", RST.api, NULL });
	cr_assert(gw_wait_line(&RST, RST.console, "HB ", 2, NULL, 0, BOOT_MS), "%s",
		  gw_read_file(RST.err));
	expect_sandboxed(&RST);
	gw_quit(&RST);
	cr_assert(WIFEXITED(RST.status) && WEXITSTATUS(RST.status) == 0, "%s",
		  gw_read_file(RST.err));
}

/* A snapshot of a booted VM in a fresh repository under P.dir; its id into id. */
static void snapshot_into(const char *repo, const char *key, char *id, size_t len)
{
	char *out;

	cr_assert_eq(gw_run(&CMD, (const char *const[]){ "repo", "init", "--repo", repo,
							 "--key-file", key, NULL }, 30000), 0);
	boot(NULL);
	wait_hb(3);
	cr_assert_eq(gw_run(&CMD, (const char *const[]){ "snapshot", "--api", P.api, "--repo",
							 repo, "--key-file", key, NULL }, 120000),
		     0, "snapshot: %s / VM: %s", gw_read_file(CMD.err), gw_read_file(P.err));
	out = gw_read_file(CMD.out);
	snprintf(id, len, "%s", out);
	id[strcspn(id, "\n")] = '\0';
	free(out);
	gw_quit(&P);
}

/*
 * The vCPUs of a restored VM, lazy or eager, run under the vCPU filter from their first
 * KVM_RUN: the hook's socket() on a vCPU thread ends the VM before the guest says anything.
 */
Test(sandbox, a_forbidden_call_on_a_restored_vcpu_ends_it_naming_call_and_thread)
{
	char repo[256], key[256], id[80], *err;

	snprintf(repo, sizeof(repo), "%s/repo", P.dir);
	snprintf(key, sizeof(key), "%s/repo.key", P.dir);
	snapshot_into(repo, key, id, sizeof(id));
	for (int eager = 0; eager < 2; eager++) {
		struct gw_proc *r = eager ? &DST : &RST;

		setenv("GODWIT_TEST_FORBIDDEN_SYSCALL", "vcpu", 1);
		gw_spawn(r, (const char *const[]){ "restore", "--repo", repo, "--key-file", key,
						   "--snapshot", id, "--console", r->console,
						   eager ? "--eager" : "--verbose", NULL });
		unsetenv("GODWIT_TEST_FORBIDDEN_SYSCALL");
		cr_assert(gw_wait_exit(r, 60000), "the restored VM survived a forbidden socket()");
		err = gw_read_file(r->err);
		cr_assert(WIFEXITED(r->status) && WEXITSTATUS(r->status) == 1, "status %d: %s",
			  r->status, err);
		cr_assert(strstr(err, "godwit: seccomp: thread vcpu"), "%s", err);
		cr_assert(strstr(err, "made a forbidden system call, socket ("), "%s", err);
		free(err);
		cr_assert_eq(gw_count_lines(r->console, "HB "), 0, "the guest ran unfiltered");
	}
}
