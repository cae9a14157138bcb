/*
 * Snapshot and restore end to end: a running test guest is snapshotted (full, then
 * incremental) into a local repository and each snapshot, restored in a new process,
 * continues the guest; damaged repositories and bad input are refused clearly.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/clock.h"

#include "tests/common/gw_test.h"

#define BOOT_MS 60000
#define SNAP_MS 120000

static struct gw_proc VM, CMD, RST;
static char WORK[128], REPO[256], KEY[256];
static bool ENCRYPTED; /* REPO was made with the key in KEY */

static void setup(void)
{
	gw_proc_init(&VM);
	gw_proc_init(&CMD);
	gw_proc_init(&RST);
	/* The repository and disks outlive the processes that come and go in a test. */
	snprintf(WORK, sizeof(WORK), "/tmp/gwsnap.XXXXXX");
	cr_assert_not_null(mkdtemp(WORK));
	snprintf(REPO, sizeof(REPO), "%s/repo", WORK);
	snprintf(KEY, sizeof(KEY), "%s/repo.key", WORK);
	ENCRYPTED = false;
}

static void teardown(void)
{
	gw_proc_cleanup(&RST);
	gw_proc_cleanup(&CMD);
	gw_proc_cleanup(&VM);
	gw_rm_rf(WORK);
}

TestSuite(snapshot, .init = setup, .fini = teardown, .timeout = 600);

/* Run a godwit command to completion; returns its exit status, output in CMD. */
static int godwit(const char *const *argv)
{
	return gw_run(&CMD, argv, SNAP_MS);
}

/* An encrypted repository, the default: its key goes to KEY, outside the repository. */
static void repo_init(void)
{
	cr_assert_eq(godwit((const char *const[]){ "repo", "init", "--repo", REPO, "--key-file", KEY,
						   NULL }), 0, "%s", gw_read_file(CMD.err));
	ENCRYPTED = true;
}

/*
 * A plaintext repository, asked for by name: for the tests that restore, since `godwit
 * restore` does not take --key-file yet.
 */
static void repo_init_plain(void)
{
	cr_assert_eq(godwit((const char *const[]){ "repo", "init", "--repo", REPO,
						   "--insecure-no-encryption", NULL }), 0,
		     "%s", gw_read_file(CMD.err));
}

static void make_disk(const char *path, unsigned mib)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);

	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, (off_t)mib << 20), 0);
	close(fd);
}

static uint64_t tree_total;

static int tree_add(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)path;
	(void)f;
	if (flag == FTW_F)
		tree_total += (uint64_t)st->st_size;
	return 0;
}

/* Bytes in the files under dir (a repository growing as a snapshot writes). */
static uint64_t tree_bytes(const char *dir)
{
	tree_total = 0;
	nftw(dir, tree_add, 16, FTW_PHYS);
	return tree_total;
}

static void boot(const char *disk, const char *cmdline)
{
	const char *argv[20] = { "run", "--kernel", TEST_GUEST_ELF, "--mem", "256M", "--cpus", "2",
				 "--cmdline", cmdline, "--console", VM.console, "--api", VM.api };
	unsigned n = 13;

	if (disk) {
		argv[n++] = "--disk";
		argv[n++] = disk;
	}
	argv[n] = NULL;
	gw_spawn(&VM, argv);
	cr_assert(gw_wait_line(&VM, VM.console, "HB ", 3, NULL, 0, BOOT_MS),
		  "guest did not boot: %s", gw_read_file(VM.err));
}

struct snap {
	char id[64];
	struct gw_hb hb; /* the last heartbeat printed before the snapshot was taken */
	uint64_t bytes_new;
	uint64_t pause_ms;
	uint64_t disk_blocks; /* 64 KiB disk blocks read for this snapshot */
	char disk_mode[16];
};

static void take(struct snap *s)
{
	char line[256];
	char *out;
	unsigned n = gw_count_lines(VM.console, "HB ");

	cr_assert(gw_wait_line(&VM, VM.console, "HB ", n, line, sizeof(line), 1000));
	cr_assert(gw_parse_hb(line, &s->hb));
	if (ENCRYPTED)
		cr_assert_eq(godwit((const char *const[]){ "snapshot", "--api", VM.api, "--repo", REPO,
							   "--key-file", KEY, "--json", NULL }), 0,
			     "snapshot failed: %s", gw_read_file(CMD.err));
	else
		cr_assert_eq(godwit((const char *const[]){ "snapshot", "--api", VM.api, "--repo", REPO,
							   "--json", NULL }), 0,
			     "snapshot failed: %s", gw_read_file(CMD.err));
	out = gw_read_file(CMD.out);
	gw_json_str(out, "id", s->id, sizeof(s->id));
	s->bytes_new = gw_json_u64(out, "bytes_new");
	s->pause_ms = gw_json_u64(out, "pause_ms");
	s->disk_blocks = gw_json_u64(out, "disk_blocks_copied");
	gw_json_str(out, "disk_mode", s->disk_mode, sizeof(s->disk_mode));
	free(out);
}

/* Restore s in a new process and check the guest goes on where it was. */
static void restore_and_check(const struct snap *s, const char *disk)
{
	const char *argv[16] = { "restore", "--repo", REPO, "--snapshot", s->id, "--console",
				 RST.console, "--api", RST.api };
	unsigned n = 9;
	char line[256], reply[256];
	struct gw_hb hb;

	if (disk) {
		argv[n++] = "--disk";
		argv[n++] = disk;
	}
	argv[n] = NULL;
	gw_proc_cleanup(&RST);
	gw_proc_init(&RST);
	gw_spawn(&RST, argv);
	cr_assert(gw_wait_line(&RST, RST.console, "HB ", 3, line, sizeof(line), BOOT_MS),
		  "restored guest does not run: %s", gw_read_file(RST.err));
	cr_assert(gw_parse_hb(line, &hb));
	cr_assert_str_eq(hb.id, s->hb.id, "restored guest has another boot id: %s", line);
	cr_assert_geq(hb.counter, s->hb.counter, "counter went back: %s", line);
	cr_assert_eq(hb.errors, 0, "restored guest found corrupted pages: %s", line);
	cr_assert_eq(gw_count_lines(RST.console, "GUEST boot"), 0, "the guest rebooted");
	cr_assert(gw_api(RST.api, "{\"cmd\":\"quit\"}", reply, sizeof(reply)));
	cr_assert(gw_wait_exit(&RST, 20000));
}

static void quit_vm(void)
{
	gw_quit(&VM);
}

Test(snapshot, full_and_three_incrementals_each_restore_on_their_own)
{
	struct snap s[4];

	require_kvm();
	repo_init_plain();
	boot(NULL, "mb=32 rate=16 verify=1");
	for (int i = 0; i < 4; i++) {
		take(&s[i]);
		if (i > 0)
			cr_assert_lt(s[i].pause_ms, 1000, "pause of %" PRIu64 " ms", s[i].pause_ms);
		usleep(500000);
	}
	quit_vm();
	for (int i = 3; i >= 0; i--)
		restore_and_check(&s[i], NULL);
	cr_assert_eq(godwit((const char *const[]){ "images", "verify", "--repo", REPO,
						   "--read-data", NULL }), 0,
		     "verify: %s", gw_read_file(CMD.err));
	cr_assert_eq(godwit((const char *const[]){ "images", "list", "--repo", REPO, NULL }), 0);
	{
		char *list = gw_read_file(CMD.out);

		for (int i = 0; i < 4; i++)
			cr_assert(strstr(list, s[i].id), "%s not listed:\n%s", s[i].id, list);
		free(list);
	}
}

Test(snapshot, an_incrementals_size_follows_what_the_guest_dirtied)
{
	struct snap quiet[2], busy[2];

	require_kvm();
	repo_init();
	/* A guest that writes nothing after boot: the increment is a few pages. */
	boot(NULL, "mb=64 rate=0");
	take(&quiet[0]);
	sleep(1);
	take(&quiet[1]);
	quit_vm();
	cr_assert_lt(quiet[1].bytes_new, 2u << 20, "idle guest's increment is %" PRIu64 " bytes",
		     quiet[1].bytes_new);
	/* One that rewrites 16 MiB/s: about 16 MiB per second between snapshots. */
	gw_proc_cleanup(&VM);
	gw_proc_init(&VM);
	boot(NULL, "mb=64 rate=16");
	take(&busy[0]);
	/* 20 heartbeats are 200 ticks of guest time: 32 MiB rewritten, whatever the load. */
	cr_assert(gw_wait_line(&VM, VM.console, "HB ", gw_count_lines(VM.console, "HB ") + 20,
			       NULL, 0, BOOT_MS), "the guest stopped running");
	take(&busy[1]);
	quit_vm();
	cr_assert_gt(busy[1].bytes_new, 16u << 20, "busy guest's increment is only %" PRIu64,
		     busy[1].bytes_new);
	cr_assert_lt(busy[1].bytes_new, busy[0].bytes_new + (64u << 20),
		     "increment %" PRIu64 " larger than the whole guest", busy[1].bytes_new);
}

static void write_pattern(const char *path, uint64_t sector, unsigned count, uint64_t seed)
{
	uint8_t buf[512];
	int fd = open(path, O_RDWR);

	cr_assert_geq(fd, 0);
	for (unsigned s = 0; s < count; s++) {
		gw_pattern_sector(seed, sector + s, buf);
		cr_assert_eq(pwrite(fd, buf, 512, (off_t)(sector + s) * 512), 512);
	}
	close(fd);
}

static void expect_same_file(const char *a, const char *b)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "cmp -s '%s' '%s'", a, b);
	cr_assert_eq(system(cmd), 0, "%s and %s differ", a, b);
}

Test(snapshot, disk_increments_come_from_the_change_log_and_from_librsync)
{
	char disk[256], copy[256], r1[256], r2[256], r3[256], cmd[600];
	struct snap s1, s2, s3;

	require_kvm();
	repo_init_plain();
	snprintf(disk, sizeof(disk), "%s/disk.img", WORK);
	snprintf(copy, sizeof(copy), "%s/copy.img", WORK);
	snprintf(r1, sizeof(r1), "%s/r1.img", WORK);
	snprintf(r2, sizeof(r2), "%s/r2.img", WORK);
	snprintf(r3, sizeof(r3), "%s/r3.img", WORK);
	make_disk(disk, 64);

	/* 1: a full snapshot; the VMM then exits cleanly, keeping its change log. */
	boot(disk, "mb=8 rate=4 disk=w:0:512:1");
	cr_assert(gw_wait_line(&VM, VM.console, "DISK W ", 1, NULL, 0, BOOT_MS));
	take(&s1);
	quit_vm();
	cr_assert_str_eq(s1.disk_mode, "full");
	snprintf(cmd, sizeof(cmd), "cp --sparse=always '%s' '%s'", disk, copy);
	cr_assert_eq(system(cmd), 0);

	/* 2: a new VMM on the same disk: the log survived, so only written blocks are read. */
	gw_proc_cleanup(&VM);
	gw_proc_init(&VM);
	boot(disk, "mb=8 rate=4 disk=w:20000:256:2");
	cr_assert(gw_wait_line(&VM, VM.console, "DISK W ", 1, NULL, 0, BOOT_MS));
	take(&s2);
	snprintf(cmd, sizeof(cmd), "cp --sparse=always '%s' '%s.s2'", disk, disk);
	cr_assert_eq(system(cmd), 0);
	cr_assert_str_eq(s2.disk_mode, "log", "a clean restart lost the change log");
	/* The guest wrote 256 sectors (128 KiB): 2 or 3 blocks of 64 KiB, of 1024. */
	cr_assert_leq(s2.disk_blocks, 4, "the log increment read %" PRIu64 " disk blocks",
		      s2.disk_blocks);

	/* 3: the VMM dies, the image changes offline: the signature finds what changed. */
	kill(VM.pid, SIGKILL);
	cr_assert(gw_wait_exit(&VM, 10000));
	write_pattern(disk, 100000, 64, 3);
	gw_proc_cleanup(&VM);
	gw_proc_init(&VM);
	boot(disk, "mb=8 rate=4");
	take(&s3);
	quit_vm();
	cr_assert_str_eq(s3.disk_mode, "rsync", "a lost log must fall back to the signature");

	/* Each restores to exactly the disk it captured. */
	restore_and_check(&s1, r1);
	expect_same_file(r1, copy);
	{
		char s2img[300];

		snprintf(s2img, sizeof(s2img), "%s.s2", disk);
		restore_and_check(&s2, r2);
		expect_same_file(r2, s2img);
	}
	restore_and_check(&s3, r3);
	expect_same_file(r3, disk);

	/* --disk-base brings the stale copy of snapshot 1 up to date with snapshot 3. */
	{
		const char *argv[] = { "restore", "--repo", REPO, "--snapshot", s3.id,
				       "--disk-base", copy, "--console", RST.console, "--api",
				       RST.api, NULL };
		char reply[256];

		gw_proc_cleanup(&RST);
		gw_proc_init(&RST);
		gw_spawn(&RST, argv);
		cr_assert(gw_wait_line(&RST, RST.console, "HB ", 2, NULL, 0, BOOT_MS), "%s",
			  gw_read_file(RST.err));
		cr_assert(gw_api(RST.api, "{\"cmd\":\"quit\"}", reply, sizeof(reply)));
		cr_assert(gw_wait_exit(&RST, 20000));
		expect_same_file(copy, disk);
	}
}

/* Every file under dir, with sizes, as one string: to prove a repository unchanged. */
static char *tree(const char *dir)
{
	char cmd[400], *out;
	FILE *p;
	size_t cap = 1 << 16, n;

	snprintf(cmd, sizeof(cmd), "cd '%s' && find . -type f -not -path './damaged/*' "
		 "-printf '%%p %%s\\n' | sort", dir);
	p = popen(cmd, "r");
	out = calloc(1, cap);
	n = fread(out, 1, cap - 1, p);
	out[n] = '\0';
	pclose(p);
	return out;
}

/*
 * A restore that must fail with one godwit line containing needle, and change nothing
 * but the list of damaged blobs (a blob found damaged is marked for the next backup).
 */
static void expect_restore_refused(const char *id, const char *needle)
{
	char *before = tree(REPO), *after, *err;

	cr_assert_eq(godwit((const char *const[]){ "restore", "--repo", REPO, "--snapshot", id,
						   NULL }), 1);
	err = gw_read_file(CMD.err);
	cr_assert(strncmp(err, "godwit: ", 8) == 0 && strchr(err, '\n') == err + strlen(err) - 1,
		  "not one error line: %s", err);
	cr_assert(strstr(err, needle), "'%s' not in: %s", needle, err);
	after = tree(REPO);
	cr_assert_str_eq(before, after, "the repository changed");
	free(err);
	free(before);
	free(after);
}

/* Name of the first pack file under REPO/data. */
static void first_pack(char *out, size_t len)
{
	char cmd[400];
	FILE *p;

	snprintf(cmd, sizeof(cmd), "find '%s/data' -type f | sort | head -1", REPO);
	p = popen(cmd, "r");
	cr_assert_not_null(fgets(out, (int)len, p));
	out[strcspn(out, "\n")] = '\0';
	pclose(p);
}

Test(snapshot, damaged_or_missing_objects_and_bad_ids_are_refused_clearly)
{
	struct snap s;
	char pack[256], saved[300], cmd[1400];

	require_kvm();
	repo_init_plain();
	boot(NULL, "mb=16 rate=8");
	take(&s);
	quit_vm();

	expect_restore_refused("20990101T000000Z-deadbeef", "no snapshot");
	expect_restore_refused("not-an-id", "snapshot");

	/* A bit flipped in a pack. */
	first_pack(pack, sizeof(pack));
	snprintf(saved, sizeof(saved), "%s/pack.saved", WORK);
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s' && printf '\\xff' | dd of='%s' bs=1 seek=4000 "
		 "conv=notrunc 2>/dev/null", pack, saved, pack);
	cr_assert_eq(system(cmd), 0);
	expect_restore_refused(s.id, "verify");
	cr_assert_eq(godwit((const char *const[]){ "images", "verify", "--repo", REPO,
						   "--read-data", NULL }), 1);
	/* Truncated. */
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s' && truncate -s 5000 '%s'", saved, pack, pack);
	cr_assert_eq(system(cmd), 0);
	expect_restore_refused(s.id, "verify");
	cr_assert_eq(godwit((const char *const[]){ "images", "verify", "--repo", REPO, NULL }), 1);
	/* Missing. */
	cr_assert_eq(unlink(pack), 0);
	expect_restore_refused(s.id, "verify");
	cr_assert_eq(godwit((const char *const[]){ "images", "verify", "--repo", REPO, NULL }), 1);
	cr_assert(strstr(gw_read_file(CMD.err), "missing"), "%s", gw_read_file(CMD.err));
	/* Put back: whole again. */
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", saved, pack);
	cr_assert_eq(system(cmd), 0);
	cr_assert_eq(godwit((const char *const[]){ "images", "verify", "--repo", REPO,
						   "--read-data", NULL }), 0, "%s",
		     gw_read_file(CMD.err));
}

Test(snapshot, a_directory_that_is_not_a_repository_is_refused)
{
	char dir[256];

	snprintf(dir, sizeof(dir), "%s/plain", WORK);
	cr_assert_eq(mkdir(dir, 0755), 0);
	cr_assert_eq(godwit((const char *const[]){ "restore", "--repo", dir, NULL }), 1);
	cr_assert(strstr(gw_read_file(CMD.err), "not a godwit repository"), "%s",
		  gw_read_file(CMD.err));
	cr_assert_eq(godwit((const char *const[]){ "images", "list", "--repo", dir, NULL }), 1);
	cr_assert(strstr(gw_read_file(CMD.err), "not a godwit repository"));
}

Test(snapshot, a_disk_base_of_the_wrong_size_is_refused)
{
	char disk[256], wrong[256];
	struct snap s;

	require_kvm();
	repo_init_plain();
	snprintf(disk, sizeof(disk), "%s/disk.img", WORK);
	snprintf(wrong, sizeof(wrong), "%s/wrong.img", WORK);
	make_disk(disk, 16);
	make_disk(wrong, 8);
	boot(disk, "mb=4 rate=4");
	take(&s);
	quit_vm();
	cr_assert_eq(godwit((const char *const[]){ "restore", "--repo", REPO, "--snapshot", s.id,
						   "--disk-base", wrong, NULL }), 1);
	cr_assert(strstr(gw_read_file(CMD.err), "bytes"), "%s", gw_read_file(CMD.err));
}

/* Files (complete or partial) under dir/sub (dir, sub). */
static unsigned count_files(const char *dir, const char *sub)
{
	char cmd[400], line[32] = "0";
	FILE *p;

	snprintf(cmd, sizeof(cmd), "find '%s/%s' -type f 2>/dev/null | wc -l", dir, sub);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	if (!fgets(line, sizeof(line), p))
		line[0] = '\0';
	pclose(p);
	return (unsigned)strtoul(line, NULL, 10);
}

Test(snapshot, a_snapshot_killed_mid_write_leaves_earlier_ones_valid_and_lists_none)
{
	struct snap s1;
	char *list;

	require_kvm();
	repo_init_plain();
	boot(NULL, "mb=16 rate=16");
	take(&s1);
	quit_vm();
	/*
	 * A second VM with a large working set: its first (full) snapshot takes seconds, and
	 * the VMM is killed while it writes.
	 */
	gw_proc_cleanup(&VM);
	gw_proc_init(&VM);
	boot(NULL, "mb=200 rate=0");
	{
		const char *argv[] = { "snapshot", "--api", VM.api, "--repo", REPO, NULL };

		uint64_t before = tree_bytes(REPO), end;

		gw_proc_cleanup(&CMD);
		gw_proc_init(&CMD);
		unsigned packs = count_files(REPO, "data");

		gw_spawn(&CMD, argv);
		/*
		 * Killed once it has written 8 MiB of its 200 and at least one whole pack:
		 * mid-write, else this proves nothing.
		 */
		end = clock_now_ms() + 60000;
		while (tree_bytes(REPO) < before + (8u << 20) || count_files(REPO, "data") == packs) {
			cr_assert(!gw_wait_exit(&CMD, 0), "the snapshot ended before it was killed: "
				  "the test proves nothing: %s", gw_read_file(CMD.err));
			cr_assert_lt(clock_now_ms(), end, "the snapshot wrote no pack in 60 s");
			usleep(10000);
		}
		kill(VM.pid, SIGKILL);
		cr_assert(gw_wait_exit(&VM, 10000)); /* reaped: its snapshot lock is stale now */
		cr_assert(gw_wait_exit(&CMD, 30000));
		cr_assert_neq(WEXITSTATUS(CMD.status), 0, "the snapshot finished before the kill: "
			      "the test proves nothing");
	}
	cr_assert_eq(godwit((const char *const[]){ "images", "list", "--repo", REPO, NULL }), 0);
	list = gw_read_file(CMD.out);
	cr_assert_eq(gw_count_lines(CMD.out, "2"), 1, "list shows a partial snapshot:\n%s", list);
	free(list);
	cr_assert_eq(godwit((const char *const[]){ "images", "verify", "--repo", REPO,
						   "--read-data", NULL }), 0, "%s",
		     gw_read_file(CMD.err));
	/* Verify notes what the kill left, and says prune removes it after the grace period. */
	cr_assert(strstr(gw_read_file(CMD.err), "prune removes it once it is 24 h old"), "%s",
		  gw_read_file(CMD.err));
	/* A prune whose grace period it passed (--grace 0) removes it: nothing is left. */
	cr_assert_eq(godwit((const char *const[]){ "images", "prune", "--repo", REPO, "--keep-last",
						   "1", "--grace", "0", "--lock-wait", "30", NULL }),
		     0, "%s", gw_read_file(CMD.err));
	cr_assert_eq(godwit((const char *const[]){ "images", "verify", "--repo", REPO,
						   "--read-data", NULL }), 0, "%s",
		     gw_read_file(CMD.err));
	{
		char *e = gw_read_file(CMD.err), cmd[400];

		cr_assert_str_empty(e, "verify still notes leftovers: %s", e);
		free(e);
		snprintf(cmd, sizeof(cmd), "find '%s' -name '*.partial' | grep -q .", REPO);
		cr_assert_neq(system(cmd), 0, "a partial file is left");
	}
	restore_and_check(&s1, NULL);
}

/* The exit status of a command that must fail with one godwit line containing needle. */
static void expect_refused(const char *const *argv, int status, const char *needle)
{
	char *err;

	cr_assert_eq(godwit(argv), status, "godwit %s %s", argv[0], argv[1]);
	err = gw_read_file(CMD.err);
	cr_assert(strncmp(err, "godwit: ", 8) == 0 && strchr(err, '\n') == err + strlen(err) - 1,
		  "not one error line: %s", err);
	cr_assert(strstr(err, needle), "'%s' not in: %s", needle, err);
	free(err);
}

Test(snapshot, an_encrypted_repository_needs_its_key_and_shows_no_plaintext)
{
	char other_repo[300], other_key[300], cmd[600], *out;
	struct snap s[2];
	struct stat st;

	require_kvm();
	/* Encryption is the default: plaintext must be asked for, and the key kept outside. */
	expect_refused((const char *const[]){ "repo", "init", "--repo", REPO, NULL }, 2,
		       "--insecure-no-encryption");
	snprintf(other_key, sizeof(other_key), "%s/inside.key", REPO);
	expect_refused((const char *const[]){ "repo", "init", "--repo", REPO, "--key-file",
					      other_key, NULL }, 2, "inside the repository");
	repo_init();
	cr_assert_eq(stat(KEY, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0600);
	cr_assert_eq(st.st_size, 65, "64 hex digits and a newline");

	boot(NULL, "mb=16 rate=8 verify=1");
	expect_refused((const char *const[]){ "snapshot", "--api", VM.api, "--repo", REPO,
					      "--name", "SECRETNAME", NULL }, 1,
		       "is encrypted: pass --key-file FILE");
	for (int i = 0; i < 2; i++) {
		const char *argv[] = { "snapshot", "--api", VM.api, "--repo", REPO, "--key-file", KEY,
				       "--name", "SECRETNAME", "--json", NULL };

		cr_assert_eq(godwit(argv), 0, "snapshot failed: %s", gw_read_file(CMD.err));
		out = gw_read_file(CMD.out);
		gw_json_str(out, "id", s[i].id, sizeof(s[i].id));
		gw_json_str(out, "parent", cmd, sizeof(cmd));
		if (i == 1)
			cr_assert_str_eq(cmd, s[0].id, "the second is incremental on the first");
		free(out);
		usleep(300000);
	}
	quit_vm();

	/* With the key: list, inspect and a full verify. */
	cr_assert_eq(godwit((const char *const[]){ "images", "list", "--repo", REPO, "--key-file",
						   KEY, NULL }), 0, "%s", gw_read_file(CMD.err));
	out = gw_read_file(CMD.out);
	cr_assert(strstr(out, s[0].id) && strstr(out, s[1].id) && strstr(out, "SECRETNAME"),
		  "%s", out);
	free(out);
	cr_assert_eq(godwit((const char *const[]){ "images", "inspect", "--repo", REPO, "--key-file",
						   KEY, "--snapshot", s[1].id, NULL }), 0,
		     "%s", gw_read_file(CMD.err));
	cr_assert_eq(godwit((const char *const[]){ "images", "verify", "--repo", REPO, "--key-file",
						   KEY, "--read-data", NULL }), 0,
		     "%s", gw_read_file(CMD.err));

	/* Without it, or with another repository's key: one clear line. */
	expect_refused((const char *const[]){ "images", "list", "--repo", REPO, NULL }, 1,
		       "is encrypted: pass --key-file FILE");
	snprintf(other_repo, sizeof(other_repo), "%s/other", WORK);
	snprintf(other_key, sizeof(other_key), "%s/other.key", WORK);
	cr_assert_eq(godwit((const char *const[]){ "repo", "init", "--repo", other_repo,
						   "--key-file", other_key, NULL }), 0);
	expect_refused((const char *const[]){ "images", "verify", "--repo", REPO, "--key-file",
					      other_key, NULL }, 1,
		       "--key-file names another repository's key");

	/* What would go to object storage holds neither the VM's name nor its text. */
	snprintf(cmd, sizeof(cmd), "grep -rqa -e SECRETNAME -e 'GUEST boot' '%s'", REPO);
	cr_assert_neq(system(cmd), 0, "plaintext found under %s", REPO);
}

/*
 * snapshot --verify compares, in the pause, all of RAM with what the snapshot will hold. A
 * write the dirty log never saw (made through /proc/PID/mem: no vCPU, no device) leaves
 * an incremental's chunk stale: --verify refuses it and publishes nothing; the next
 * snapshot, full again, holds the write and passes.
 */
Test(snapshot, verify_finds_a_write_the_dirty_log_missed_and_publishes_nothing)
{
	static const uint8_t junk[16] = { 0x5a, 0x5a, 0x5a, 0x5a };
	const char *argv[] = { "snapshot", "--api", VM.api, "--repo", REPO, "--verify", "--json",
			       NULL };
	struct snap s1;
	char *out;

	require_kvm();
	repo_init_plain();
	boot(NULL, "mb=16 rate=8 verify=1");
	take(&s1);
	gw_poke_guest_ram(VM.pid, 256ULL << 20, 0xf000000, junk, sizeof(junk));
	cr_assert_eq(godwit(argv), 1, "--verify took a snapshot missing a write: %s",
		     gw_read_file(CMD.out));
	gw_expect_one_error(&CMD, "--verify: 1 RAM chunks (first at gpa 0xf000000)");
	cr_assert_eq(godwit((const char *const[]){ "images", "list", "--repo", REPO, NULL }), 0);
	cr_assert_eq(gw_count_lines(CMD.out, "2"), 1, "a refused snapshot was published:\n%s",
		     gw_read_file(CMD.out));
	cr_assert_eq(godwit(argv), 0, "%s", gw_read_file(CMD.err));
	out = gw_read_file(CMD.out);
	cr_assert(strstr(out, "\"parent\":\"\""), "after a refusal the next one is full: %s", out);
	cr_assert_gt(gw_json_u64(out, "pause_verify_us"), 0);
	free(out);
	quit_vm();
}
