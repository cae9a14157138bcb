/*
 * godwit backup and godwit images prune end to end: a running test guest is backed up
 * into a local or S3 repository (moto with SigV4 checks, or the fault-injecting server,
 * started per test on loopback), restored in a new process, pruned by policy, and two
 * backups of one VM race; failures are one clear line and lose nothing.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "s3_helpers.h"
#include "tests/common/gw_test.h"
#include "transport/s3.h"

#define BOOT_MS 60000
#define CMD_MS 180000
#define BUCKET "godwit-test"
/* Put in the guest's RAM through its command line (tag=). */
#define LEAK_TAG "gwleak-7f3a9c21e5b04d68"

static struct gw_proc VM, CMD, CMD2, RST;
static char WORK[128], REPO[256], KEY[256], MNT[256];
static struct test_server srv;
static struct s3_client *cli;
static const char *skip_why;

static void setup(void)
{
	gw_proc_init(&VM);
	gw_proc_init(&CMD);
	gw_proc_init(&CMD2);
	gw_proc_init(&RST);
	memset(&srv, 0, sizeof(srv));
	cli = NULL;
	skip_why = NULL;
	MNT[0] = '\0';
	snprintf(WORK, sizeof(WORK), "/tmp/gwbackup.XXXXXX");
	cr_assert_not_null(mkdtemp(WORK));
	snprintf(REPO, sizeof(REPO), "%s/repo", WORK);
	snprintf(KEY, sizeof(KEY), "%s/repo.key", WORK);
	/* Host-local backup locks of this test only. */
	setenv("GODWIT_LOCK_DIR", WORK, 1);
	setenv("TZ", "UTC", 1);
}

static void teardown(void)
{
	gw_proc_cleanup(&RST);
	gw_proc_cleanup(&CMD2);
	gw_proc_cleanup(&CMD);
	gw_proc_cleanup(&VM);
	s3_client_destroy(cli);
	server_stop(&srv);
	if (MNT[0])
		umount2(MNT, MNT_DETACH);
	gw_rm_rf(WORK);
}

TestSuite(backup, .init = setup, .fini = teardown, .timeout = 900);

/* ---- Running godwit ------------------------------------------------------------------- */

/*
 * Every repository here is encrypted, the default: a command naming a repository gets
 * --key-file KEY ('repo init' writes KEY the first time and reuses it after).
 */
static int run(struct gw_proc *p, const char *const *argv)
{
	const char *args[40];
	bool repo = false, key = false;
	unsigned n = 0;

	for (; argv[n]; n++) {
		cr_assert_lt(n, 37);
		args[n] = argv[n];
		repo |= strcmp(argv[n], "--repo") == 0;
		key |= strcmp(argv[n], "--key-file") == 0;
	}
	if (repo && !key) {
		args[n++] = "--key-file";
		args[n++] = KEY;
	}
	args[n] = NULL;
	return gw_run(p, args, CMD_MS);
}

static int godwit(const char *const *argv)
{
	return run(&CMD, argv);
}

static char *out_of(struct gw_proc *p)
{
	char *s = gw_read_file(p->out);

	return s ? s : strdup("");
}

static char *err_of(struct gw_proc *p)
{
	char *s = gw_read_file(p->err);

	return s ? s : strdup("");
}

static void repo_init(const char *repo)
{
	cr_assert_eq(godwit((const char *const[]){ "repo", "init", "--repo", repo, NULL }), 0,
		     "%s", err_of(&CMD));
}

/* Boot the VM (cmdline, mem); with user, as that user under the filter (--user user). */
static void boot_as(const char *cmdline, const char *mem, const char *user)
{
	const char *argv[] = { "run", "--kernel", TEST_GUEST_ELF, "--mem", mem, "--cpus", "1",
			       "--cmdline", cmdline, "--console", VM.console, "--api", VM.api,
			       user ? "--user" : NULL, user, NULL };

	gw_spawn(&VM, argv);
	cr_assert(gw_wait_line(&VM, VM.console, "HB ", 3, NULL, 0, BOOT_MS),
		  "guest did not boot: %s", gw_read_file(VM.err));
}

static void boot(const char *cmdline, const char *mem)
{
	boot_as(cmdline, mem, NULL);
}

struct bk {
	char id[64];
	struct gw_hb hb;
	uint64_t bytes_new_stored;
	uint64_t snapshots_removed;
};

/* godwit backup --json with extra options; returns its status; fills b when 0. */
static int backup(const char *repo, const char *const *extra, struct bk *b)
{
	const char *argv[32] = { "backup", "--api", VM.api, "--repo", repo, "--name", "vm1",
				 "--json" };
	unsigned n = 8;
	int rc;

	for (unsigned i = 0; extra && extra[i]; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	if (b)
		gw_last_hb(&VM, &b->hb);
	rc = godwit(argv);
	if (rc == 0 && b) {
		char *out = out_of(&CMD);

		gw_json_str(out, "id", b->id, sizeof(b->id));
		b->bytes_new_stored = gw_json_u64(out, "bytes_new_stored");
		b->snapshots_removed = gw_json_u64(out, "snapshots_removed");
		free(out);
	}
	return rc;
}

/* p runs as uid 65534 (nobody), under the syscall filter, without capabilities. */
static void expect_unprivileged(const struct gw_proc *p)
{
	char path[64], *st;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)p->pid);
	st = gw_read_file(path);
	cr_assert_not_null(st);
	cr_assert(strstr(st, "\nUid:\t65534\t65534\t65534\t65534\n"), "%s", st);
	cr_assert(strstr(st, "\nSeccomp:\t2\n"), "%s", st);
	cr_assert(strstr(st, "\nNoNewPrivs:\t1\n"), "%s", st);
	cr_assert(strstr(st, "\nCapEff:\t0000000000000000\n"), "%s", st);
	free(st);
}

/*
 * Restore id from repo in a new process and check the guest goes on (repo, b); with user,
 * the restored VM runs as that user (user: NULL or "nobody").
 */
static void restore_and_check_as(const char *repo, const struct bk *b, const char *user)
{
	const char *argv[] = { "restore", "--repo", repo, "--key-file", KEY, "--snapshot", b->id,
			       "--console", RST.console, "--api", RST.api,
			       user ? "--user" : NULL, user, NULL };
	char line[256], reply[256], cmd[300];
	struct gw_hb hb;

	gw_proc_cleanup(&RST);
	gw_proc_init(&RST);
	if (user) {
		snprintf(cmd, sizeof(cmd), "chown %s '%s'", user, RST.dir);
		cr_assert_eq(system(cmd), 0, "%s", cmd);
	}
	gw_spawn(&RST, argv);
	cr_assert(gw_wait_line(&RST, RST.console, "HB ", 3, line, sizeof(line), BOOT_MS),
		  "restored guest does not run: %s", gw_read_file(RST.err));
	cr_assert(gw_parse_hb(line, &hb));
	cr_assert_str_eq(hb.id, b->hb.id, "restored guest has another boot id: %s", line);
	cr_assert_geq(hb.counter, b->hb.counter, "counter went back: %s", line);
	cr_assert_eq(hb.errors, 0, "restored guest found corrupted pages: %s", line);
	cr_assert_eq(gw_count_lines(RST.console, "GUEST boot"), 0, "the guest rebooted");
	if (user)
		expect_unprivileged(&RST);
	cr_assert(gw_api(RST.api, "{\"cmd\":\"quit\"}", reply, sizeof(reply)));
	cr_assert(gw_wait_exit(&RST, 20000));
	cr_assert(WIFEXITED(RST.status) && WEXITSTATUS(RST.status) == 0, "status %d: %s",
		  RST.status, gw_read_file(RST.err));
}

static void restore_and_check(const char *repo, const struct bk *b)
{
	restore_and_check_as(repo, b, NULL);
}

static void verify_ok(const char *repo)
{
	cr_assert_eq(godwit((const char *const[]){ "images", "verify", "--repo", repo,
						   "--read-data", NULL }), 0,
		     "verify: %s", err_of(&CMD));
}

/* How many snapshots 'images list' shows. */
static unsigned listed(const char *repo)
{
	cr_assert_eq(godwit((const char *const[]){ "images", "list", "--repo", repo, NULL }), 0,
		     "%s", err_of(&CMD));
	return gw_count_lines(CMD.out, "2"); /* ids start with the year */
}

static void quit_vm(void)
{
	gw_quit(&VM);
}

/* ---- Local repositories ------------------------------------------------------------------- */

Test(backup, is_silent_on_success_and_restores_in_another_process)
{
	struct bk b;
	char *out, *err;

	require_kvm();
	repo_init(REPO);
	boot("mb=16 rate=4 verify=1", "64M");
	cr_assert_eq(godwit((const char *const[]){ "backup", "--api", VM.api, "--repo", REPO,
						   "--name", "vm1", NULL }), 0,
		     "%s", err_of(&CMD));
	out = out_of(&CMD);
	err = err_of(&CMD);
	cr_assert_str_empty(out, "stdout on success: %s", out);
	cr_assert_str_empty(err, "stderr on success: %s", err);
	free(out);
	free(err);
	cr_assert_eq(backup(REPO, NULL, &b), 0, "%s", err_of(&CMD));
	quit_vm();
	restore_and_check(REPO, &b);
	verify_ok(REPO);
	/* No lock is left behind. */
	{
		char locks[300];

		snprintf(locks, sizeof(locks), "find '%s/locks' -type f | grep -q .", REPO);
		cr_assert_neq(system(locks), 0, "a lock object was left in %s/locks", REPO);
	}
	/* Bad input: usage and a missing repository. */
	cr_assert_eq(godwit((const char *const[]){ "backup", "--repo", REPO, NULL }), 2);
	cr_assert_eq(godwit((const char *const[]){ "backup", "--api", VM.api, "--repo",
						   "/nonexistent/repo", NULL }), 1);
	gw_expect_one_error(&CMD, "does not exist");
}

/* Start a backup in p without waiting (repo, extra). */
static void backup_start(struct gw_proc *p, const char *repo, const char *wait)
{
	const char *argv[] = { "backup", "--api", VM.api, "--repo", repo, "--key-file", KEY,
			       "--name", "vm1", "--lock-wait", wait, NULL };

	gw_proc_cleanup(p);
	gw_proc_init(p);
	gw_spawn(p, argv);
}

static int finish(struct gw_proc *p)
{
	cr_assert(gw_wait_exit(p, CMD_MS));
	cr_assert(WIFEXITED(p->status));
	return WEXITSTATUS(p->status);
}

/* Two backups of vm1 at once, through repo (repo, separate_hosts). */
static void race(const char *repo, bool separate_hosts)
{
	char d1[200], d2[200];
	int a, b;

	snprintf(d1, sizeof(d1), "%s/host1", WORK);
	snprintf(d2, sizeof(d2), "%s/host2", WORK);
	mkdir(d1, 0755);
	mkdir(d2, 0755);
	/* With separate lock directories the flock cannot decide: the lock object must. */
	setenv("GODWIT_LOCK_DIR", d1, 1);
	backup_start(&CMD, repo, "0");
	if (separate_hosts)
		setenv("GODWIT_LOCK_DIR", d2, 1);
	backup_start(&CMD2, repo, "0");
	setenv("GODWIT_LOCK_DIR", WORK, 1);
	a = finish(&CMD);
	b = finish(&CMD2);
	cr_assert((a == 0 && b == 4) || (a == 4 && b == 0) || (a == 0 && b == 0),
		  "exits %d and %d: %s %s", a, b, err_of(&CMD), err_of(&CMD2));
	if (a == 4)
		gw_expect_one_error(&CMD, "another backup of VM 'vm1'");
	if (b == 4)
		gw_expect_one_error(&CMD2, "another backup of VM 'vm1'");
	/* The VM's API runs one snapshot at a time: with --lock-wait both get through. */
	backup_start(&CMD, repo, "120");
	backup_start(&CMD2, repo, "120");
	cr_assert_eq(finish(&CMD), 0, "%s", err_of(&CMD));
	cr_assert_eq(finish(&CMD2), 0, "%s", err_of(&CMD2));
}

Test(backup, two_backups_of_one_vm_never_overlap_and_a_dead_holder_is_recovered)
{
	char path[512], body[600], host[256], boot_id[64];
	FILE *f;
	pid_t child;
	int fd, n;

	require_kvm();
	repo_init(REPO);
	boot("mb=24 rate=8", "64M");
	race(REPO, false);
	race(REPO, true);
	verify_ok(REPO);

	/* A lock left by a backup that died on this host is noted and taken over. */
	child = fork();
	if (child == 0)
		_exit(0);
	waitpid(child, NULL, 0);
	gethostname(host, sizeof(host));
	f = fopen("/proc/sys/kernel/random/boot_id", "r");
	cr_assert(f && fgets(boot_id, sizeof(boot_id), f));
	fclose(f);
	boot_id[strcspn(boot_id, "\n")] = '\0';
	/* The tag does not matter for staleness: any lock object is judged. */
	snprintf(path, sizeof(path), "%s/locks/prune-0123456789abcdef-00000000", REPO);
	n = snprintf(body, sizeof(body), "godwit-lock 1\nkind prune\nvm-tag -\nvm -\nhost %s\n"
		     "boot-id %s\npid %d\npid-start 1\nstarted-ns 1\nheartbeat-ns %" PRIu64 "\n",
		     host, boot_id, (int)child, (uint64_t)time(NULL) * UINT64_C(1000000000));
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, body, (size_t)n), n);
	close(fd);
	cr_assert_eq(backup(REPO, NULL, NULL), 0, "%s", err_of(&CMD));
	{
		char *e = err_of(&CMD);

		cr_assert(strstr(e, "note: removed a stale lock"), "%s", e);
		free(e);
	}
	quit_vm();
}

Test(backup, retention_keeps_what_the_policy_says_and_the_rest_restores)
{
	struct bk b[5];

	require_kvm();
	repo_init(REPO);
	boot("mb=16 rate=8 verify=1", "64M");
	for (int i = 0; i < 5; i++) {
		cr_assert_eq(backup(REPO, (const char *const[]){ "--keep-last", "3", NULL }, &b[i]),
			     0, "%s", err_of(&CMD));
		usleep(300000);
	}
	cr_assert_eq(b[4].snapshots_removed, 1);
	cr_assert_eq(listed(REPO), 3);
	/* A second VM name in the same repository is not touched by vm1's policy. */
	cr_assert_eq(godwit((const char *const[]){ "backup", "--api", VM.api, "--repo", REPO,
						   "--name", "other", NULL }), 0, "%s",
		     err_of(&CMD));
	quit_vm();
	cr_assert_eq(godwit((const char *const[]){ "images", "prune", "--repo", REPO, "--name",
						   "vm1", "--keep-last", "1", "--dry-run", NULL }),
		     0, "%s", err_of(&CMD));
	cr_assert_eq(listed(REPO), 4, "a dry run deleted something");
	cr_assert_eq(godwit((const char *const[]){ "images", "prune", "--repo", REPO, "--name",
						   "vm1", "--keep-last", "1", NULL }), 0, "%s",
		     err_of(&CMD));
	{
		char *out = out_of(&CMD);

		cr_assert(strstr(out, "forgot 2 snapshots, kept 1"), "%s", out);
		free(out);
	}
	cr_assert_eq(listed(REPO), 2);
	verify_ok(REPO);
	restore_and_check(REPO, &b[4]);
	cr_assert_eq(godwit((const char *const[]){ "images", "prune", "--repo", REPO, NULL }), 2);
	gw_expect_one_error(&CMD, "pass a policy");
}

/* ---- S3 ------------------------------------------------------------------------------- */

static void s3_client_for(const struct test_server *s)
{
	char e[256];

	cr_assert_eq(s3_test_client(&cli, s, BUCKET, e, sizeof(e)), 0, "%s", e);
}

/* Start moto and point this process's (and so every child's) AWS environment at it. */
static void require_moto(void)
{
	require_kvm();
	if (!moto_start(&srv, &skip_why))
		cr_skip_test("%s", skip_why);
	s3_test_env(&srv);
	s3_client_for(&srv);
}

static int sum_size(void *arg, const char *key, uint64_t size)
{
	(void)key;
	*(uint64_t *)arg += size;
	return 0;
}

/* Bytes stored under prefix, as the server holds them. */
static uint64_t bucket_bytes(const char *prefix)
{
	uint64_t n = 0;

	cr_assert_eq(s3_list(cli, prefix, sum_size, &n), 0);
	return n;
}

struct leak_scan {
	const char *needle;
	unsigned objects, found;
};

static int scan_object(void *arg, const char *key, uint64_t size)
{
	struct leak_scan *ls = arg;
	size_t len, nl = strlen(ls->needle);
	void *data;

	(void)size;
	cr_assert_eq(s3_get(cli, key, (size_t)256 << 20, &data, &len), 0, "get %s", key);
	ls->objects++;
	for (size_t i = 0; i + nl <= len; i++) {
		if (memcmp((char *)data + i, ls->needle, nl) == 0) {
			ls->found++;
			fprintf(stderr, "'%s' in plaintext in %s\n", ls->needle, key);
			break;
		}
	}
	free(data);
	return 0;
}

/*
 * How many objects under prefix hold needle in the clear. The guest's command line, in
 * its RAM, holds LEAK_TAG once, and zstd keeps such a literal as it is: a plaintext
 * repository shows it in a pack.
 */
static unsigned objects_holding(const char *prefix, const char *needle)
{
	struct leak_scan ls = { .needle = needle };

	cr_assert_eq(s3_list(cli, prefix, scan_object, &ls), 0);
	cr_assert_gt(ls.objects, 0);
	return ls.found;
}

struct keys {
	char *all;
	size_t len;
};

static int key_cat(void *arg, const char *key, uint64_t size)
{
	struct keys *k = arg;
	char line[400];
	int n = snprintf(line, sizeof(line), "%s %" PRIu64 "\n", key, size);

	k->all = realloc(k->all, k->len + (size_t)n + 1);
	memcpy(k->all + k->len, line, (size_t)n + 1);
	k->len += (size_t)n;
	return 0;
}

static char *bucket_listing(void)
{
	struct keys k = { strdup(""), 0 };

	cr_assert_eq(s3_list(cli, "", key_cat, &k), 0);
	return k.all;
}

Test(backup, on_s3_increments_upload_only_what_changed_and_restore_elsewhere)
{
	const char *repo = "s3://" BUCKET "/backups";
	struct bk b[4];
	uint64_t before, after;

	require_moto();
	repo_init(repo);
	boot("mb=32 rate=2 verify=1 tag=" LEAK_TAG, "128M");
	before = bucket_bytes("backups/");
	cr_assert_eq(backup(repo, NULL, &b[0]), 0, "%s", err_of(&CMD));
	after = bucket_bytes("backups/");
	cr_assert_gt(after - before, b[0].bytes_new_stored);
	fprintf(stderr, "full: %" PRIu64 " bytes uploaded, %" PRIu64 " new stored\n",
		after - before, b[0].bytes_new_stored);
	for (int i = 1; i < 4; i++) {
		sleep(1);
		before = after;
		cr_assert_eq(backup(repo, NULL, &b[i]), 0, "%s", err_of(&CMD));
		after = bucket_bytes("backups/");
		fprintf(stderr, "increment %d: %" PRIu64 " bytes uploaded, %" PRIu64
			" new stored\n", i, after - before, b[i].bytes_new_stored);
		/* The new blobs, plus a manifest and an index file: nothing else. */
		cr_assert_leq(after - before, b[i].bytes_new_stored * 11 / 10 + (256u << 10),
			      "increment %d uploaded %" PRIu64 " for %" PRIu64 " new", i,
			      after - before, b[i].bytes_new_stored);
		cr_assert_lt(b[i].bytes_new_stored, b[0].bytes_new_stored / 2);
	}
	quit_vm();
	/* Encrypted before it left the host: no object shows the guest's RAM. */
	cr_assert_eq(objects_holding("backups/", LEAK_TAG), 0);
	restore_and_check(repo, &b[3]);
	restore_and_check(repo, &b[1]);
	verify_ok(repo);
	/* --endpoint instead of the environment. */
	unsetenv("AWS_ENDPOINT_URL");
	cr_assert_eq(godwit((const char *const[]){ "images", "verify", "--repo", repo,
						   "--endpoint", srv.endpoint, NULL }), 0,
		     "%s", err_of(&CMD));
}

/*
 * The whole flow as an unprivileged user: a VM run as nobody under the filter backs up
 * to S3 (its S3 client, locks and key reads all as that user), and the backups are
 * restored, lazily from S3, as nobody again.
 */
Test(backup, on_s3_a_vm_run_as_nobody_backs_up_and_is_restored_as_nobody)
{
	const char *repo = "s3://" BUCKET "/nobody";
	struct bk b[2];
	char cmd[300];

	require_moto();
	repo_init(repo);
	/* The user's own: its key, its lock directory, the directory of its API socket. */
	snprintf(cmd, sizeof(cmd), "chown -R nobody '%s' '%s'", WORK, VM.dir);
	cr_assert_eq(system(cmd), 0, "%s", cmd);
	boot_as("mb=32 rate=4 verify=1 tag=" LEAK_TAG, "128M", "nobody");
	expect_unprivileged(&VM);
	cr_assert_eq(backup(repo, NULL, &b[0]), 0, "%s / VM: %s", err_of(&CMD),
		     gw_read_file(VM.err));
	cr_assert(gw_wait_line(&VM, VM.console, "HB ", gw_count_lines(VM.console, "HB ") + 2,
			       NULL, 0, BOOT_MS), "%s", gw_read_file(VM.err));
	cr_assert_eq(backup(repo, NULL, &b[1]), 0, "%s / VM: %s", err_of(&CMD),
		     gw_read_file(VM.err));
	cr_assert_lt(b[1].bytes_new_stored, b[0].bytes_new_stored, "the second was not "
		     "incremental");
	expect_unprivileged(&VM);
	quit_vm();
	cr_assert(WIFEXITED(VM.status) && WEXITSTATUS(VM.status) == 0, "status %d: %s",
		  VM.status, gw_read_file(VM.err));
	cr_assert_eq(objects_holding("nobody/", LEAK_TAG), 0);
	restore_and_check_as(repo, &b[1], "nobody");
	restore_and_check_as(repo, &b[0], "nobody");
	verify_ok(repo);
}

Test(backup, on_s3_prune_keeps_the_policy_and_two_backups_race_safely)
{
	const char *repo = "s3://" BUCKET "/backups";
	struct bk b[4];

	require_moto();
	repo_init(repo);
	boot("mb=16 rate=8 verify=1", "64M");
	for (int i = 0; i < 4; i++)
		cr_assert_eq(backup(repo, (const char *const[]){ "--keep-last", "2", NULL }, &b[i]),
			     0, "%s", err_of(&CMD));
	cr_assert_eq(listed(repo), 2);
	race(repo, true);
	cr_assert_eq(godwit((const char *const[]){ "images", "prune", "--repo", repo,
						   "--keep-last", "2", "--json", NULL }), 0,
		     "%s", err_of(&CMD));
	cr_assert_eq(listed(repo), 2);
	verify_ok(repo);
	quit_vm();
	/* The race's backups came later: the newest is what is left to restore. */
	snprintf(b[3].id, sizeof(b[3].id), "latest");
	restore_and_check(repo, &b[3]);
}

Test(backup, on_s3_wrong_credentials_and_a_missing_bucket_are_one_line_and_change_nothing)
{
	const char *repo = "s3://" BUCKET "/backups";
	char *before, *after;
	struct bk b;

	require_moto();
	repo_init(repo);
	boot("mb=8 rate=2", "64M");
	cr_assert_eq(backup(repo, NULL, &b), 0, "%s", err_of(&CMD));
	before = bucket_listing();
	setenv("AWS_SECRET_ACCESS_KEY", "wrong", 1);
	cr_assert_eq(backup(repo, NULL, NULL), 1);
	gw_expect_one_error(&CMD, "S3 refused the credentials");
	s3_test_env(&srv);
	cr_assert_eq(backup("s3://no-such-bucket/backups", NULL, NULL), 1);
	gw_expect_one_error(&CMD, "bucket no-such-bucket does not exist");
	cr_assert_eq(backup(repo, (const char *const[]){ "--endpoint", "http://127.0.0.1:1", NULL },
			    NULL), 1);
	gw_expect_one_error(&CMD, "cannot reach the S3 endpoint");
	after = bucket_listing();
	cr_assert_str_eq(before, after, "a failed backup changed the bucket");
	free(before);
	free(after);
	/* The VM ran on: the next backup works. */
	cr_assert_eq(backup(repo, NULL, &b), 0, "%s", err_of(&CMD));
	quit_vm();
	restore_and_check(repo, &b);
}

static void arm(const char *rule)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "curl -fsS -X POST --data '%s' %s/_fault/rules", rule,
		 srv.endpoint);
	cr_assert_eq(system(cmd), 0, "%s", cmd);
}

Test(backup, on_s3_a_20_s_outage_mid_backup_and_mid_restore_is_waited_out, .timeout = 1200)
{
	const char *repo = "s3://" BUCKET "/backups";
	struct bk b1, b2;
	char *err;

	require_kvm();
	if (!fault_python())
		cr_skip_test("no python3 for fault_server.py");
	cr_assert(fault_start(&srv, NULL, 0, NULL));
	s3_test_env(&srv);
	s3_client_for(&srv);
	repo_init(repo);
	boot("mb=32 rate=16 verify=1", "128M");
	cr_assert_eq(backup(repo, NULL, &b1), 0, "%s", err_of(&CMD));
	/* The next pack upload takes the server down for 20 s: the backup waits it out. */
	arm("method=PUT,match=/data/,action=outage:20");
	gw_last_hb(&VM, &b2.hb);
	cr_assert_eq(godwit((const char *const[]){ "backup", "--api", VM.api, "--repo", repo,
						   "--name", "vm1", "--verbose", NULL }), 0,
		     "%s", err_of(&CMD));
	err = err_of(&CMD);
	cr_assert(strstr(err, "the VM's S3 client retried") && strstr(err, "; retry 1 in "),
		  "the retries were not named under --verbose: %s", err);
	free(err);
	{
		char *out = out_of(&CMD), *p = strstr(out, "snapshot ");

		cr_assert_not_null(p, "%s", out);
		sscanf(p, "snapshot %63s", b2.id);
		free(out);
	}
	verify_ok(repo);
	/* A budget shorter than an outage fails the backup cleanly; nothing is lost. */
	arm("method=PUT,match=/data/,action=outage:10");
	cr_assert_eq(backup(repo, (const char *const[]){ "--s3-retry", "2", NULL }, NULL), 1,
		     "a backup went through an outage longer than its budget");
	gw_expect_one_error(&CMD, "not stored");
	sleep(10);
	verify_ok(repo);
	cr_assert_eq(listed(repo), 2);
	quit_vm();
	/* The restore's first pack read takes the server down for 20 s: it waits too. */
	arm("method=GET,match=/data/,action=outage:20");
	restore_and_check(repo, &b2);
	verify_ok(repo);
}

static int count_key(void *arg, const char *key, uint64_t size)
{
	(void)key;
	(void)size;
	++*(unsigned *)arg;
	return 0;
}

/*
 * A snapshot stalled on S3 runs off the API's thread: status answers meanwhile, and SIGTERM
 * cancels it (its uploads abort) and ends the VM cleanly within seconds instead of after
 * the S3 client's retry budget: exit 0, the disk's change log saved (its sidecar CLEAN),
 * nothing published, no lock left, the repository whole.
 */
Test(backup, on_s3_a_stalled_snapshot_blocks_neither_status_nor_sigterm, .timeout = 600)
{
	const char *repo = "s3://" BUCKET "/stall";
	char log[300], reply[2048], disk[300], sidecar[320], *err;
	unsigned char head[12];
	unsigned locks = 0;
	uint64_t t0;
	int fd;

	require_kvm();
	if (!fault_python())
		cr_skip_test("no python3 for fault_server.py");
	snprintf(log, sizeof(log), "%s/s3.log", WORK);
	cr_assert(fault_start(&srv, NULL, 0, log));
	s3_test_env(&srv);
	s3_client_for(&srv);
	repo_init(repo);
	snprintf(disk, sizeof(disk), "%s/disk.img", WORK);
	snprintf(sidecar, sizeof(sidecar), "%s.gwlog", disk);
	fd = open(disk, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	cr_assert(fd >= 0 && close(fd) == 0 && truncate(disk, 16 << 20) == 0, "%s", disk);
	gw_spawn(&VM, (const char *const[]){ "run", "--kernel", TEST_GUEST_ELF, "--mem", "64M",
					     "--cmdline", "mb=16 rate=16", "--disk", disk,
					     "--console", VM.console, "--api", VM.api, NULL });
	cr_assert(gw_wait_line(&VM, VM.console, "HB ", 3, NULL, 0, BOOT_MS),
		  "guest did not boot: %s", gw_read_file(VM.err));
	/* Every data upload hangs for 10 minutes. */
	arm("method=PUT,match=/data/,count=0,action=delay:600");
	gw_proc_cleanup(&CMD);
	gw_proc_init(&CMD);
	gw_spawn(&CMD, (const char *const[]){ "backup", "--api", VM.api, "--repo", repo,
					      "--key-file", KEY, "--name", "vm1", NULL });
	/* Mid-way for sure: the server holds a data upload. */
	for (int i = 0; i < 600 && !file_count_lines(log, "delaying"); i++)
		usleep(100000);
	cr_assert(file_count_lines(log, "delaying") > 0, "the snapshot never reached its "
		  "upload: %s / %s / %s", gw_read_file(VM.err), err_of(&CMD), gw_read_file(log));
	cr_assert(!gw_wait_exit(&CMD, 0), "the backup ended: %s", err_of(&CMD));
	cr_assert(gw_api(VM.api, "{\"cmd\":\"status\"}", reply, sizeof(reply)),
		  "status did not answer during the stalled snapshot");
	cr_assert(strstr(reply, "\"state\":\"running\""), "%s", reply);
	/* The backup holds the repository's lock meanwhile. */
	cr_assert_eq(s3_list(cli, "stall/locks/", count_key, &locks), 0);
	cr_assert_gt(locks, 0, "no lock during the backup: %s", bucket_listing());
	locks = 0;
	t0 = (uint64_t)time(NULL);
	cr_assert_eq(kill(VM.pid, SIGTERM), 0);
	cr_assert(gw_wait_exit(&VM, 30000), "the VM did not end within 30 s of SIGTERM");
	cr_assert_lt((uint64_t)time(NULL) - t0, 30);
	err = gw_read_file(VM.err);
	cr_assert(WIFEXITED(VM.status) && WEXITSTATUS(VM.status) == 0, "status %d: %s",
		  VM.status, err);
	cr_assert_null(strstr(err, "snapshot was still running"), "not cancelled: %s", err);
	free(err);
	/* vm_destroy ran: the change log was saved by a clean close. */
	fd = open(sidecar, O_RDONLY);
	cr_assert_geq(fd, 0, "no change log beside the disk");
	cr_assert_eq(read(fd, head, sizeof(head)), (ssize_t)sizeof(head));
	close(fd);
	cr_assert_eq(memcmp(head, "GWDL", 4), 0);
	cr_assert_eq(head[8] & 1, 1, "the change log was not saved by a clean close");
	/* The backup failed, naming why; it published nothing and left no lock. */
	cr_assert(gw_wait_exit(&CMD, 30000), "the backup outlived its VM");
	cr_assert(WIFEXITED(CMD.status) && WEXITSTATUS(CMD.status) != 0, "status %d: %s",
		  CMD.status, err_of(&CMD));
	cr_assert_eq(s3_list(cli, "stall/locks/", count_key, &locks), 0);
	cr_assert_eq(locks, 0, "a lock was left: %s", bucket_listing());
	cr_assert_eq(listed(repo), 0);
	verify_ok(repo);
}

/* ---- Lost and damaged data -------------------------------------------------------------- */

/* Run a shell command and return its first line of output (cmd, out, len). */
static void shell_line(const char *cmd, char *out, size_t len)
{
	FILE *p = popen(cmd, "r");

	cr_assert_not_null(p, "%s", cmd);
	cr_assert_not_null(fgets(out, (int)len, p), "no output from %s", cmd);
	out[strcspn(out, "\n")] = '\0';
	pclose(p);
}

/* The path of the largest pack of the local repository repo (repo, out, len). */
static void largest_pack(const char *repo, char *out, size_t len)
{
	char cmd[400];

	snprintf(cmd, sizeof(cmd), "find '%s/data' -type f -printf '%%s %%p\\n' | sort -n | "
		 "tail -1 | cut -d' ' -f2-", repo);
	shell_line(cmd, out, len);
}

/* XOR one byte of path at off with 0x5a (path, off). */
static void flip_byte(const char *path, off_t off)
{
	unsigned char c;
	int fd = open(path, O_RDWR);

	cr_assert_geq(fd, 0, "%s", path);
	cr_assert_eq(pread(fd, &c, 1, off), 1);
	c ^= 0x5a;
	cr_assert_eq(pwrite(fd, &c, 1, off), 1);
	close(fd);
}

static off_t size_of(const char *path)
{
	struct stat st;

	cr_assert_eq(stat(path, &st), 0, "%s", path);
	return st.st_size;
}

static void expect_in(const char *what, char *text, const char *needle)
{
	cr_assert(strstr(text, needle), "'%s' not in %s: %s", needle, what, text);
	free(text);
}

Test(backup, a_lost_pack_is_stored_again_and_no_backup_is_built_on_it)
{
	const char *keep1[] = { "--keep-last", "1", NULL };
	char pack[512];
	struct bk b[4];

	require_kvm();
	repo_init(REPO);
	boot("mb=16 rate=2 verify=1", "64M");
	cr_assert_eq(backup(REPO, keep1, &b[0]), 0, "%s", err_of(&CMD));
	/* The pack of most of the guest's memory is lost (deleted by hand, a disk fault). */
	largest_pack(REPO, pack, sizeof(pack));
	cr_assert_eq(unlink(pack), 0);
	for (int i = 1; i < 4; i++) {
		sleep(1);
		cr_assert_eq(backup(REPO, keep1, &b[i]), 0, "%s", err_of(&CMD));
	}
	cr_assert_eq(godwit((const char *const[]){ "images", "prune", "--repo", REPO,
						   "--keep-last", "1", NULL }), 0, "%s",
		     err_of(&CMD));
	/* Every blob the kept snapshot needs is in a pack that exists and reads back. */
	verify_ok(REPO);
	quit_vm();
	restore_and_check(REPO, &b[3]);
}

Test(backup, a_blob_verify_finds_damaged_is_stored_again_by_the_next_backup)
{
	char pack[512];
	struct bk b0, b1;

	require_kvm();
	repo_init(REPO);
	/* A slow writer: most chunks of the first backup are still the same at the next. */
	boot("mb=16 rate=1 verify=1", "64M");
	cr_assert_eq(backup(REPO, NULL, &b0), 0, "%s", err_of(&CMD));
	largest_pack(REPO, pack, sizeof(pack));
	flip_byte(pack, size_of(pack) / 3);
	cr_assert_eq(godwit((const char *const[]){ "images", "verify", "--repo", REPO,
						   "--read-data", NULL }), 1);
	expect_in("verify's notes", err_of(&CMD), "damaged blobs marked");
	/* Verify marked the blob: the next backup stores it again instead of naming it. */
	cr_assert_eq(backup(REPO, (const char *const[]){ "--keep-last", "1", NULL }, &b1), 0,
		     "%s", err_of(&CMD));
	verify_ok(REPO);
	quit_vm();
	restore_and_check(REPO, &b1);
}

/* The names of the objects under repo/sub, one line (repo, sub): to compare before and after. */
static char *object_names(const char *repo, const char *sub)
{
	char cmd[400];
	FILE *p;
	char *all = NULL;
	size_t cap = 0;
	ssize_t n;

	snprintf(cmd, sizeof(cmd), "find '%s/%s' -type f | sort | tr '\\n' ' '", repo, sub);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	n = getline(&all, &cap, p);
	pclose(p);
	if (n < 0) {
		free(all);
		return strdup("");
	}
	return all;
}

Test(backup, repair_rebuilds_damaged_indexes_and_names_snapshots_no_pack_completes)
{
	char cmd[400], pack[512], *before, *after;
	struct bk b0, b1, b2;

	require_kvm();
	repo_init(REPO);
	boot("mb=16 rate=2 verify=1", "64M");
	cr_assert_eq(backup(REPO, NULL, &b0), 0, "%s", err_of(&CMD));
	sleep(1);
	cr_assert_eq(backup(REPO, NULL, &b1), 0, "%s", err_of(&CMD));
	/* Every index file damaged: the packs are intact, and they describe themselves. */
	snprintf(cmd, sizeof(cmd), "for f in '%s'/index/*; do printf '\\x5a' | dd of=\"$f\" bs=1 "
		 "seek=40 conv=notrunc status=none; done", REPO);
	cr_assert_eq(system(cmd), 0);
	cr_assert_eq(godwit((const char *const[]){ "images", "verify", "--repo", REPO, NULL }), 1);
	before = object_names(REPO, "index");
	cr_assert_eq(godwit((const char *const[]){ "images", "repair", "--repo", REPO, "--dry-run",
						   NULL }), 0, "%s", err_of(&CMD));
	expect_in("repair --dry-run's output", out_of(&CMD), "would write index");
	after = object_names(REPO, "index");
	cr_assert_str_eq(before, after, "a dry run changed the index");
	free(before);
	free(after);
	cr_assert_eq(godwit((const char *const[]){ "images", "repair", "--repo", REPO, NULL }), 0,
		     "%s", err_of(&CMD));
	verify_ok(REPO);
	restore_and_check(REPO, &b1);

	/* A lost pack: repair says which snapshots it leaves incomplete. */
	largest_pack(REPO, pack, sizeof(pack));
	cr_assert_eq(unlink(pack), 0);
	cr_assert_eq(godwit((const char *const[]){ "images", "repair", "--repo", REPO, NULL }), 0,
		     "%s", err_of(&CMD));
	expect_in("repair's report", out_of(&CMD), b1.id);
	/* The VM still runs: its next backup stores what was lost again. */
	cr_assert_eq(backup(REPO, (const char *const[]){ "--keep-last", "1", NULL }, &b2), 0,
		     "%s", err_of(&CMD));
	verify_ok(REPO);
	quit_vm();
	restore_and_check(REPO, &b2);
}

static uint64_t free_bytes(const char *path)
{
	struct statvfs v;

	cr_assert_eq(statvfs(path, &v), 0, "%s", path);
	return (uint64_t)v.f_bavail * v.f_frsize;
}

Test(backup, a_backup_that_fills_the_disk_fails_and_gives_the_space_back)
{
	char repo[300], cmd[600];
	uint64_t before, after;

	require_kvm();
	/* A disk of 24 MiB: one 16 MiB pack of the guest's 40 MiB fits, the next does not. */
	snprintf(MNT, sizeof(MNT), "%s/small", WORK);
	cr_assert_eq(mkdir(MNT, 0700), 0);
	if (mount("godwit-test", MNT, "tmpfs", MS_NOSUID | MS_NODEV, "size=24m") < 0) {
		MNT[0] = '\0';
		cr_skip_test("cannot mount a small tmpfs (%s): needs root", strerror(errno));
	}
	snprintf(repo, sizeof(repo), "%s/repo", MNT);
	repo_init(repo);
	boot("mb=40 rate=4 verify=1", "64M");
	before = free_bytes(MNT);
	cr_assert_eq(backup(repo, NULL, NULL), 1, "the backup fit in 24 MiB");
	gw_expect_one_error(&CMD, "No space left on device");
	after = free_bytes(MNT);
	/* Every pack the failed snapshot wrote is gone, and no half-written file is left. */
	cr_assert_geq(after + (64u << 10), before, "%llu bytes free before, %llu after",
		      (unsigned long long)before, (unsigned long long)after);
	snprintf(cmd, sizeof(cmd), "find '%s' -type f \\( -path '*/data/*' -o -name '*.partial' "
		 "\\) | grep -q .", repo);
	cr_assert_neq(system(cmd), 0, "a pack or a partial file was left in %s", repo);
	cr_assert_eq(listed(repo), 0);
	verify_ok(repo);
	quit_vm();
}
