/*
 * Lazy and eager restore end to end: a snapshot restored with its RAM served on first
 * touch (userfaultfd, the default) or copied first (--eager) continues the guest, whose
 * own checks (verify=1 and the sweep's check of every page before it rewrites it) find
 * no page wrong; a damaged pack ends a lazy restore naming the chunk, never in a hang.
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
#include <sys/wait.h>
#include <unistd.h>

#include "tests/common/gw_test.h"

#define BOOT_MS 60000
#define CMD_MS 120000
/* Heartbeats watched after a restore: 3 s, in which a 32 MiB set at 16 MiB/s is swept. */
#define WATCH_HB 30

static struct gw_proc VM, CMD, RST, DST;
static char WORK[128], REPO[256], KEY[256], MNT[256];

static void setup(void)
{
	gw_proc_init(&VM);
	gw_proc_init(&CMD);
	gw_proc_init(&RST);
	gw_proc_init(&DST);
	MNT[0] = '\0';
	snprintf(WORK, sizeof(WORK), "/tmp/gwrst.XXXXXX");
	cr_assert_not_null(mkdtemp(WORK));
	snprintf(REPO, sizeof(REPO), "%s/repo", WORK);
	snprintf(KEY, sizeof(KEY), "%s/repo.key", WORK);
}

static void teardown(void)
{
	gw_proc_cleanup(&DST);
	gw_proc_cleanup(&RST);
	gw_proc_cleanup(&CMD);
	gw_proc_cleanup(&VM);
	if (MNT[0])
		umount2(MNT, MNT_DETACH);
	gw_rm_rf(WORK);
}

TestSuite(restore, .init = setup, .fini = teardown, .timeout = 600);

/* Run a godwit command to completion; returns its exit status, output in CMD. */
static int godwit(const char *const *argv)
{
	return gw_run(&CMD, argv, CMD_MS);
}

/* An encrypted repository, the default: every command below passes --key-file KEY. */
static void repo_init(void)
{
	cr_assert_eq(godwit((const char *const[]){ "repo", "init", "--repo", REPO, "--key-file",
						   KEY, NULL }), 0,
		     "%s", gw_read_file(CMD.err));
}

static void boot(const char *cpus, const char *disk, const char *cmdline)
{
	const char *argv[20] = { "run", "--kernel", TEST_GUEST_ELF, "--mem", "256M", "--cpus", cpus,
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

/* Snapshot the running VM into id; hb gets the heartbeat printed just before. */
static void take(const char *api, struct gw_proc *vm, char *id, size_t idlen, struct gw_hb *hb)
{
	char line[256];
	char *out, *p, *e;
	unsigned n = gw_count_lines(vm->console, "HB ");

	cr_assert(gw_wait_line(vm, vm->console, "HB ", n, line, sizeof(line), 1000));
	cr_assert(gw_parse_hb(line, hb));
	cr_assert_eq(godwit((const char *const[]){ "snapshot", "--api", api, "--repo", REPO,
						   "--key-file", KEY, "--json", NULL }), 0,
		     "snapshot failed: %s", gw_read_file(CMD.err));
	out = gw_read_file(CMD.out);
	p = strstr(out, "\"id\":\"");
	cr_assert_not_null(p, "no id in %s", out);
	p += 6;
	e = strchr(p, '"');
	snprintf(id, idlen, "%.*s", (int)(e - p), p);
	free(out);
}

/*
 * Start `godwit restore` of id in RST, with an optional disk and --eager. An id of the
 * form "name=VM" asks for VM's newest snapshot by --name instead.
 */
static void restore_start(const char *id, const char *disk, bool eager)
{
	bool by_name = strncmp(id, "name=", 5) == 0;
	const char *argv[18] = { "restore", "--repo", REPO, "--key-file", KEY,
				 by_name ? "--name" : "--snapshot", by_name ? id + 5 : id,
				 "--console", RST.console, "--api", RST.api, "--verbose",
				 "--allow-plaintext-migration" };
	unsigned n = 13;

	if (disk) {
		argv[n++] = "--disk";
		argv[n++] = disk;
	}
	if (eager)
		argv[n++] = "--eager";
	argv[n] = NULL;
	gw_proc_cleanup(&RST);
	gw_proc_init(&RST);
	gw_spawn(&RST, argv);
}

/*
 * The restored guest runs WATCH_HB heartbeats as the same boot, counting on from where
 * it was, and every heartbeat says no page was found wrong.
 */
static void expect_guest_continues(const struct gw_hb *before)
{
	char *con, *line;
	unsigned seen = 0;

	cr_assert(gw_wait_line(&RST, RST.console, "HB ", WATCH_HB, NULL, 0, BOOT_MS),
		  "restored guest does not run: %s", gw_read_file(RST.err));
	con = gw_read_file(RST.console);
	cr_assert_eq(gw_count_lines(RST.console, "GUEST"), 0, "the guest complained:\n%s", con);
	/* Complete lines only: the guest may be printing one now. */
	*(strrchr(con, '\n') + 1) = '\0';
	for (line = strtok(con, "\n"); line; line = strtok(NULL, "\n")) {
		struct gw_hb hb;

		if (strncmp(line, "HB ", 3) != 0)
			continue;
		cr_assert(gw_parse_hb(line, &hb), "bad heartbeat %s", line);
		cr_assert_str_eq(hb.id, before->id, "another boot id: %s", line);
		cr_assert_geq(hb.counter, before->counter, "counter went back: %s", line);
		cr_assert_eq(hb.errors, 0, "the guest found corrupted pages: %s", line);
		seen++;
	}
	cr_assert_geq(seen, WATCH_HB);
	free(con);
}

/* Skip unless the restore really served RAM lazily (it falls back without userfaultfd). */
static void expect_lazy(void)
{
	char *err = gw_read_file(RST.err);

	if (strstr(err, "copied RAM before starting instead"))
		cr_skip_test("no usable userfaultfd here: %s", err);
	cr_assert(strstr(err, "registered for lazy loading"), "not a lazy restore: %s", err);
	free(err);
}

/* After quit: a lazy restore reports that all of RAM became resident. */
static void expect_resident(void)
{
	char *err = gw_read_file(RST.err);

	cr_assert(strstr(err, "RAM resident"), "RAM never became resident: %s", err);
	free(err);
}

static void lazy_round_trip(const char *cpus)
{
	struct gw_hb hb;
	char id[64];

	require_kvm();
	repo_init();
	boot(cpus, NULL, "mb=32 rate=16 verify=1");
	take(VM.api, &VM, id, sizeof(id), &hb);
	gw_quit(&VM);
	restore_start(id, NULL, false);
	expect_guest_continues(&hb);
	expect_lazy();
	gw_quit(&RST);
	cr_assert_eq(WEXITSTATUS(RST.status), 0, "%s", gw_read_file(RST.err));
	expect_resident();
}

Test(restore, lazy_restore_continues_the_guest_on_one_vcpu)
{
	lazy_round_trip("1");
}

Test(restore, lazy_restore_continues_the_guest_on_two_vcpus)
{
	lazy_round_trip("2");
}

/*
 * A guest with a 32 MiB disk (at disk) that writes and reads back a pattern, snapshotted
 * once that is done (its id and last heartbeat into id and hb), then stopped.
 */
static void snapshot_guest_with_disk(const char *disk, char *id, size_t idlen, struct gw_hb *hb)
{
	int fd;

	require_kvm();
	repo_init();
	fd = open(disk, O_RDWR | O_CREAT | O_TRUNC, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, 32 << 20), 0);
	close(fd);
	boot("2", disk, "mb=32 rate=16 verify=1 disk=w:100:2048:0x77 disk=v:100:2048:0x77");
	cr_assert(gw_wait_line(&VM, VM.console, "DISK V ", 1, NULL, 0, BOOT_MS));
	take(VM.api, &VM, id, idlen, hb);
	gw_quit(&VM);
}

Test(restore, lazy_restore_continues_a_guest_with_a_disk)
{
	char disk[256], copy[256], restored[256], cmd[800];
	struct gw_hb hb;
	char id[64];

	snprintf(disk, sizeof(disk), "%s/disk.img", WORK);
	snprintf(copy, sizeof(copy), "%s/copy.img", WORK);
	snprintf(restored, sizeof(restored), "%s/restored.img", WORK);
	snapshot_guest_with_disk(disk, id, sizeof(id), &hb);
	snprintf(cmd, sizeof(cmd), "cp --sparse=always '%s' '%s'", disk, copy);
	cr_assert_eq(system(cmd), 0);
	restore_start(id, restored, false);
	expect_guest_continues(&hb);
	expect_lazy();
	gw_quit(&RST);
	cr_assert_eq(WEXITSTATUS(RST.status), 0, "%s", gw_read_file(RST.err));
	expect_resident();
	snprintf(cmd, sizeof(cmd), "cmp -s '%s' '%s'", restored, copy);
	cr_assert_eq(system(cmd), 0, "the restored disk differs from the snapshot's");
}

Test(restore, eager_restore_still_continues_the_guest)
{
	struct gw_hb hb;
	char id[64];
	char *err;

	require_kvm();
	repo_init();
	boot("2", NULL, "mb=32 rate=16 verify=1");
	take(VM.api, &VM, id, sizeof(id), &hb);
	gw_quit(&VM);
	restore_start(id, NULL, true);
	expect_guest_continues(&hb);
	err = gw_read_file(RST.err);
	cr_assert(strstr(err, "RAM copied"), "not an eager restore: %s", err);
	free(err);
	gw_quit(&RST);
	cr_assert_eq(WEXITSTATUS(RST.status), 0, "%s", gw_read_file(RST.err));
}

/* `godwit restore --verify ... --disk PATH` of id in RST, RAM and disk compared first. */
static void restore_verify_start(const char *id, const char *disk)
{
	gw_proc_cleanup(&RST);
	gw_proc_init(&RST);
	gw_spawn(&RST, (const char *const[]){ "restore", "--repo", REPO, "--key-file", KEY,
					     "--snapshot", id, "--disk", disk, "--console",
					     RST.console, "--api", RST.api, "--verbose", "--verify",
					     NULL });
}

/*
 * --verify compares every RAM chunk and disk block with the snapshot before the vCPUs
 * start: a restore that is whole says so and runs; a chunk that differs (written into the
 * restored RAM at the hold, as a misplaced or missing chunk would leave it) stops it in
 * one line, with nothing started and no disk left behind.
 */
Test(restore, verify_compares_every_chunk_and_block_before_the_vm_starts)
{
	static const uint8_t junk[16] = { 0xa5, 0xa5, 0xa5, 0xa5 };
	char disk[256], restored[256], bad[256], *err;
	struct gw_hb hb;
	char id[64];

	snprintf(disk, sizeof(disk), "%s/disk.img", WORK);
	snprintf(restored, sizeof(restored), "%s/restored.img", WORK);
	snprintf(bad, sizeof(bad), "%s/bad.img", WORK);
	snapshot_guest_with_disk(disk, id, sizeof(id), &hb);
	restore_verify_start(id, restored);
	expect_guest_continues(&hb);
	err = gw_read_file(RST.err);
	cr_assert(strstr(err, "--verify: RAM and disk match"), "%s", err);
	free(err);
	gw_quit(&RST);

	cr_assert_eq(setenv("GODWIT_TEST_HOLD", "restore-filled", 1), 0);
	restore_verify_start(id, bad);
	unsetenv("GODWIT_TEST_HOLD");
	cr_assert(gw_wait_line(&RST, RST.err, "godwit: test hold at restore-filled", 1, NULL, 0,
			       BOOT_MS), "%s", gw_read_file(RST.err));
	gw_poke_guest_ram(RST.pid, 256ULL << 20, 0x800000, junk, sizeof(junk));
	cr_assert_eq(kill(RST.pid, SIGCONT), 0);
	cr_assert(gw_wait_exit(&RST, CMD_MS));
	cr_assert(WIFEXITED(RST.status) && WEXITSTATUS(RST.status) == 1, "status %d: %s",
		  RST.status, gw_read_file(RST.err));
	err = gw_read_file(RST.err);
	cr_assert(strstr(err, "godwit: restore: --verify: 1 RAM chunks of the restored VM "
			 "(first at gpa 0x800000) differ"), "%s", err);
	free(err);
	cr_assert_eq(gw_count_lines(RST.console, "HB "), 0, "the VM ran");
	cr_assert_eq(access(bad, F_OK), -1, "a disk of a refused restore was left behind");
}

/*
 * An encrypted repository without its key, or with another one, starts no VM; nor does
 * --name for a VM with no snapshot. The right key, by VM name, restores the guest.
 */
Test(restore, the_wrong_key_or_none_is_refused_in_one_line)
{
	char other[300], console[300];
	struct gw_hb hb;
	char id[64];

	require_kvm();
	repo_init();
	boot("1", NULL, "mb=8 rate=4");
	take(VM.api, &VM, id, sizeof(id), &hb);
	gw_quit(&VM);
	snprintf(console, sizeof(console), "%s/none.console", WORK);
	cr_assert_eq(godwit((const char *const[]){ "restore", "--repo", REPO, "--snapshot", id,
						   "--console", console, NULL }), 1);
	gw_expect_one_error(&CMD, "--key-file");
	snprintf(other, sizeof(other), "%s/other.key", WORK);
	{
		char orepo[300];

		snprintf(orepo, sizeof(orepo), "%s/other", WORK);
		cr_assert_eq(godwit((const char *const[]){ "repo", "init", "--repo", orepo,
							   "--key-file", other, NULL }), 0);
	}
	cr_assert_eq(godwit((const char *const[]){ "restore", "--repo", REPO, "--key-file", other,
						   "--snapshot", id, "--console", console, NULL }),
		     1);
	gw_expect_one_error(&CMD, "wrong key for repository");
	cr_assert_neq(access(console, F_OK), 0, "a refused restore created its console file");
	/* --name: the newest snapshot of a VM that has none; and with an explicit id. */
	cr_assert_eq(godwit((const char *const[]){ "restore", "--repo", REPO, "--key-file", KEY,
						   "--name", "nosuch", "--console", console,
						   NULL }), 1);
	gw_expect_one_error(&CMD, "no snapshot of VM 'nosuch'");
	cr_assert_eq(godwit((const char *const[]){ "restore", "--repo", REPO, "--key-file", KEY,
						   "--name", "vm", "--snapshot", id, NULL }), 2);
	cr_assert_neq(access(console, F_OK), 0, "a refused restore created its console file");
	/* The right key restores it, found by VM name (snapshots are named "vm" by default). */
	restore_start("name=vm", NULL, false);
	expect_guest_continues(&hb);
	gw_quit(&RST);
}

/*
 * A snapshot of a guest still being loaded lazily reads RAM the loader has not fetched
 * yet (each read faults it in) and is whole: restored in turn, the guest goes on.
 */
Test(restore, a_snapshot_taken_during_a_lazy_restore_is_whole)
{
	struct gw_hb hb, hb2;
	char id[64], id2[64];

	require_kvm();
	repo_init();
	boot("1", NULL, "mb=64 rate=16 verify=1");
	take(VM.api, &VM, id, sizeof(id), &hb);
	gw_quit(&VM);
	restore_start(id, NULL, false);
	cr_assert(gw_wait_line(&RST, RST.console, "HB ", 1, NULL, 0, BOOT_MS), "%s",
		  gw_read_file(RST.err));
	take(RST.api, &RST, id2, sizeof(id2), &hb2);
	expect_lazy();
	gw_quit(&RST);
	cr_assert_eq(WEXITSTATUS(RST.status), 0, "%s", gw_read_file(RST.err));
	restore_start(id2, NULL, false);
	expect_guest_continues(&hb2);
	gw_quit(&RST);
	cr_assert_eq(WEXITSTATUS(RST.status), 0, "%s", gw_read_file(RST.err));
}

/*
 * A guest migrated while its lazy restore is still loading arrives whole: round 0 must
 * read the pages the loader has not served yet (through the loader), never count them as
 * never-touched zero pages (vm_ram_populated refuses while userfaultfd serves RAM).
 */
Test(restore, a_guest_migrated_while_still_loading_lazily_arrives_whole)
{
	char line[256], to[64], *p;
	struct gw_hb hb, before;
	char id[64];

	require_kvm();
	repo_init();
	boot("1", NULL, "mb=160 rate=16 verify=1");
	take(VM.api, &VM, id, sizeof(id), &hb);
	gw_quit(&VM);
	gw_spawn(&DST, (const char *const[]){ "receive", "--listen", "127.0.0.1:0",
					       "--insecure-plaintext", "--console", DST.console,
					       "--api", DST.api, NULL });
	cr_assert(gw_wait_line(&DST, DST.err, "godwit: waiting for a VM on ", 1, line,
			       sizeof(line), 10000), "receive did not listen: %s",
		  gw_read_file(DST.err));
	p = strstr(line, " on ");
	cr_assert_not_null(p);
	snprintf(to, sizeof(to), "%s", p + 4);
	to[strcspn(to, "\n")] = '\0';
	cr_assert_neq(strcmp(to, "127.0.0.1:0"), 0, "the bound port is not shown: %s", line);
	restore_start(id, NULL, false);
	cr_assert(gw_wait_line(&RST, RST.console, "HB ", 1, NULL, 0, BOOT_MS), "%s",
		  gw_read_file(RST.err));
	cr_assert_eq(godwit((const char *const[]){ "migrate", "--api", RST.api, "--to", to,
						   "--insecure-plaintext", "--json", NULL }), 0,
		     "migrate failed: %s", gw_read_file(CMD.err));
	expect_lazy();
	cr_assert(gw_wait_exit(&RST, 20000), "the restored VM still runs after migrating away");
	gw_last_hb(&RST, &before);
	cr_assert(gw_wait_line(&DST, DST.console, "HB ", WATCH_HB, line, sizeof(line), BOOT_MS),
		  "no heartbeats at the destination: %s", gw_read_file(DST.err));
	cr_assert(gw_parse_hb(line, &hb));
	cr_assert_str_eq(hb.id, before.id, "another boot id: %s", line);
	cr_assert_gt(hb.counter, before.counter, "counter went back: %s", line);
	cr_assert_eq(hb.errors, 0, "the guest found corrupted pages after migrating: %s", line);
	cr_assert_eq(gw_count_lines(DST.console, "GUEST"), 0, "the guest complained");
	gw_quit(&DST);
}

/*
 * Start `godwit restore` of id in RST where userfaultfd cannot be had: in a mount
 * namespace with /dev/null over /dev/userfaultfd, and without CAP_SYS_PTRACE (so the
 * system call refuses a descriptor that would handle KVM's faults).
 */
static void restore_start_without_userfaultfd(const char *id)
{
	char script[1200];
	pid_t pid;

	if (access("/usr/bin/unshare", X_OK) != 0 || access("/usr/bin/setpriv", X_OK) != 0 ||
	    geteuid() != 0)
		cr_skip_test("needs root, unshare(1) and setpriv(1)");
	gw_proc_cleanup(&RST);
	gw_proc_init(&RST);
	snprintf(script, sizeof(script), "if [ -e /dev/userfaultfd ]; then mount --bind /dev/null "
		 "/dev/userfaultfd || exit 99; fi; exec setpriv --bounding-set -sys_ptrace '%s' "
		 "restore --repo '%s' --key-file '%s' --snapshot '%s' --console '%s' --api '%s' "
		 "--verbose", GODWIT_BIN, REPO, KEY, id, RST.console, RST.api);
	pid = fork();
	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		int out = open(RST.out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int err = open(RST.err, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		dup2(out, 1);
		dup2(err, 2);
		execl("/usr/bin/unshare", "unshare", "-m", "--propagation", "private", "sh", "-c",
		      script, (char *)NULL);
		_exit(127);
	}
	RST.pid = pid;
}

Test(restore, without_userfaultfd_restore_copies_ram_first_and_says_so)
{
	struct gw_hb hb;
	char id[64];
	char *err;

	require_kvm();
	repo_init();
	boot("1", NULL, "mb=32 rate=16 verify=1");
	take(VM.api, &VM, id, sizeof(id), &hb);
	gw_quit(&VM);
	restore_start_without_userfaultfd(id);
	expect_guest_continues(&hb);
	err = gw_read_file(RST.err);
	cr_assert(strstr(err, "godwit: restore: userfaultfd: ") &&
		  strstr(err, "copied RAM before starting instead") && strstr(err, "RAM copied"),
		  "no fallback to an eager restore: %s", err);
	free(err);
	gw_quit(&RST);
	cr_assert_eq(WEXITSTATUS(RST.status), 0, "%s", gw_read_file(RST.err));
}

/* The largest pack under REPO/data: memory chunks only (the state blob comes last). */
static void largest_pack(char *out, size_t len)
{
	char cmd[400];
	FILE *p;

	snprintf(cmd, sizeof(cmd), "find '%s/data' -type f -printf '%%s %%p\\n' | sort -n | "
		 "tail -1 | cut -d' ' -f2-", REPO);
	p = popen(cmd, "r");
	cr_assert_not_null(fgets(out, (int)len, p));
	out[strcspn(out, "\n")] = '\0';
	pclose(p);
}

Test(restore, a_damaged_pack_stops_a_lazy_restore_naming_the_chunk)
{
	struct gw_hb hb;
	struct stat st;
	char id[64], pack[256];
	char *err;
	int fd;

	require_kvm();
	repo_init();
	boot("1", NULL, "mb=48 rate=16 verify=1");
	take(VM.api, &VM, id, sizeof(id), &hb);
	gw_quit(&VM);
	/*
	 * A byte flipped every 32 KiB of a pack of memory chunks: each of its blobs is
	 * damaged, so some the snapshot references are (a pack also holds blobs the live
	 * rounds stored and later replaced, which no manifest names).
	 */
	largest_pack(pack, sizeof(pack));
	cr_assert_eq(stat(pack, &st), 0);
	fd = open(pack, O_RDWR);
	cr_assert_geq(fd, 0);
	for (off_t off = 4096; off < st.st_size - 4096; off += 32768)
		cr_assert_eq(pwrite(fd, "\x5a\xa5", 2, off), 2);
	close(fd);

	restore_start(id, NULL, false);
	cr_assert(gw_wait_exit(&RST, 60000), "a lazy restore from a damaged pack hangs: %s",
		  gw_read_file(RST.err));
	err = gw_read_file(RST.err);
	cr_assert(WIFEXITED(RST.status) && WEXITSTATUS(RST.status) == 1,
		  "exit status %d: %s", RST.status, err);
	cr_assert(strstr(err, "registered for lazy loading"), "refused before starting: %s", err);
	cr_assert(strstr(err, "godwit: restore: snapshot ") && strstr(err, ": memory chunk ") &&
		  strstr(err, "cannot be read") && strstr(err, "images verify"),
		  "no clear message naming the chunk: %s", err);
	/* The restore marked the blob, so the next backup stores it again. */
	cr_assert(strstr(err, "(marked damaged: the next backup of the VM stores it again)"),
		  "%s", err);
	{
		char dmg[300];

		snprintf(dmg, sizeof(dmg), "%s/damaged", REPO);
		cr_assert_eq(access(dmg, F_OK), 0, "no damaged/ list was written");
	}
	free(err);
	/* The same snapshot restored eagerly is refused before anything runs. */
	restore_start(id, NULL, true);
	cr_assert(gw_wait_exit(&RST, 60000));
	err = gw_read_file(RST.err);
	cr_assert(WIFEXITED(RST.status) && WEXITSTATUS(RST.status) == 1, "%s", err);
	cr_assert(strstr(err, ": memory chunk ") && strstr(err, "cannot be read"), "%s", err);
	cr_assert_eq(gw_count_lines(RST.console, "HB "), 0, "the guest ran");
	free(err);
}

Test(restore, latest_names_its_snapshot_and_refuses_a_damaged_newest_one)
{
	char id1[64], id2[64], path[512], *err;
	struct gw_hb hb1, hb2;
	int fd;
	unsigned char c;

	require_kvm();
	repo_init();
	boot("1", NULL, "mb=8 rate=4 verify=1");
	take(VM.api, &VM, id1, sizeof(id1), &hb1);
	sleep(1);
	take(VM.api, &VM, id2, sizeof(id2), &hb2);
	gw_quit(&VM);
	/* Whatever "latest" resolves to is named, before anything runs. */
	restore_start("latest", NULL, false);
	expect_guest_continues(&hb2);
	gw_quit(&RST);
	err = gw_read_file(RST.err);
	cr_assert(strstr(err, "snapshot ") && strstr(err, id2), "latest not named: %s", err);
	free(err);
	/* The newest manifest damaged: latest is refused, naming both. */
	snprintf(path, sizeof(path), "%s/snapshots/%s", REPO, id2);
	fd = open(path, O_RDWR);
	cr_assert_geq(fd, 0);
	cr_assert_eq(pread(fd, &c, 1, 40), 1);
	c ^= 0x5a;
	cr_assert_eq(pwrite(fd, &c, 1, 40), 1);
	close(fd);
	for (int by_name = 0; by_name < 2; by_name++) {
		restore_start(by_name ? "name=vm" : "latest", NULL, false);
		cr_assert(gw_wait_exit(&RST, 60000));
		err = gw_read_file(RST.err);
		cr_assert(WIFEXITED(RST.status) && WEXITSTATUS(RST.status) == 1, "%d: %s",
			  RST.status, err);
		cr_assert(strstr(err, id2) && strstr(err, id1) && strstr(err, "damaged"),
			  "the refusal does not name the damaged and the intact snapshot: %s", err);
		cr_assert_eq(gw_count_lines(RST.console, "HB "), 0, "a snapshot was restored");
		free(err);
	}
	/* The intact one, asked for by id, restores. */
	restore_start(id1, NULL, false);
	expect_guest_continues(&hb1);
	gw_quit(&RST);
	cr_assert_eq(WEXITSTATUS(RST.status), 0, "%s", gw_read_file(RST.err));
}

/* ---- Prunes racing snapshots and lazy restores ------------------------------------------- */

static void boot_on(struct gw_proc *p, const char *mem, const char *cmdline)
{
	const char *argv[] = { "run", "--kernel", TEST_GUEST_ELF, "--mem", mem, "--cpus", "1",
			       "--cmdline", cmdline, "--console", p->console, "--api", p->api, NULL };

	gw_spawn(p, argv);
	cr_assert(gw_wait_line(p, p->console, "HB ", 3, NULL, 0, BOOT_MS),
		  "guest did not boot: %s", gw_read_file(p->err));
}

/* `godwit snapshot` of the VM behind api as VM name; returns its status, the id in id. */
static int take_as(struct gw_proc *cmd, const char *api, const char *name, char *id, size_t len)
{
	char *out, *p, *e;
	int rc = gw_run(cmd, (const char *const[]){ "snapshot", "--api", api, "--repo", REPO,
						    "--key-file", KEY, "--name", name,
						    "--lock-wait", "300", "--json", NULL }, CMD_MS);

	if (rc != 0)
		return rc;
	out = gw_read_file(cmd->out);
	p = strstr(out, "\"id\":\"");
	cr_assert_not_null(p, "no id in %s", out);
	p += 6;
	e = strchr(p, '"');
	snprintf(id, len, "%.*s", (int)(e - p), p);
	free(out);
	return 0;
}

Test(restore, prunes_racing_snapshots_and_lazy_restores_lose_no_blob_and_stop_no_vm,
     .timeout = 1200)
{
	static struct gw_proc B, PRN, SNP;
	char ida[64], idb[64], idr[64];

	require_kvm();
	repo_init();
	gw_proc_init(&B);
	gw_proc_init(&PRN);
	gw_proc_init(&SNP);
	/*
	 * Two guests whose memory shares little: B's snapshot makes A's the older one of VM
	 * "old", which a prune keeping one forgets and sweeps, while A's snapshot is being
	 * restored lazily and the restored VM snapshotted (deduplicating against A's packs).
	 */
	boot_on(&VM, "256M", "mb=160 rate=16 verify=1");
	boot_on(&B, "64M", "mb=16 rate=16");
	for (int i = 0; i < 3; i++) {
		bool ran;

		cr_assert_eq(take_as(&CMD, VM.api, "old", ida, sizeof(ida)), 0, "%s",
			     gw_read_file(CMD.err));
		cr_assert_eq(take_as(&CMD, B.api, "old", idb, sizeof(idb)), 0, "%s",
			     gw_read_file(CMD.err));
		gw_proc_cleanup(&RST);
		gw_proc_init(&RST);
		gw_spawn(&RST, (const char *const[]){ "restore", "--repo", REPO, "--key-file", KEY,
						      "--snapshot", ida, "--console", RST.console,
						      "--api", RST.api, "--lock-wait", "300", NULL });
		gw_proc_cleanup(&PRN);
		gw_proc_init(&PRN);
		gw_spawn(&PRN, (const char *const[]){ "images", "prune", "--repo", REPO, "--key-file",
						      KEY, "--name", "old", "--keep-last", "1",
						      "--lock-wait", "300", NULL });
		/* The restored VM, once it runs, is snapshotted too (dedup against A's blobs). */
		ran = gw_wait_line(&RST, RST.console, "HB ", 1, NULL, 0, BOOT_MS);
		if (ran)
			cr_assert_eq(take_as(&SNP, RST.api, "r", idr, sizeof(idr)), 0, "%s",
				     gw_read_file(SNP.err));
		cr_assert(gw_wait_exit(&PRN, CMD_MS));
		cr_assert(WIFEXITED(PRN.status) && WEXITSTATUS(PRN.status) == 0, "prune: %s",
			  gw_read_file(PRN.err));
		/* No manifest names a blob that is not whole in an existing pack. */
		cr_assert_eq(godwit((const char *const[]){ "images", "verify", "--repo", REPO,
							   "--key-file", KEY, "--read-data", NULL }),
			     0, "iteration %d: %s", i, gw_read_file(CMD.err));
		if (!ran) {
			/* The prune came first and forgot A's snapshot: nothing ran, one clear line. */
			cr_assert(gw_wait_exit(&RST, CMD_MS));
			cr_assert(strstr(gw_read_file(RST.err), "no snapshot"), "%s",
				  gw_read_file(RST.err));
			continue;
		}
		/* A restored VM runs on whatever the prune did: no chunk it needs went away. */
		{
			unsigned n = gw_count_lines(RST.console, "HB ");

			cr_assert(gw_wait_line(&RST, RST.console, "HB ", n + 5, NULL, 0, 30000),
				  "iteration %d: the restored VM stopped: %s", i, gw_read_file(RST.err));
		}
		cr_assert_eq(gw_count_lines(RST.console, "GUEST"), 0, "the guest complained");
		gw_quit(&RST);
		cr_assert_eq(WEXITSTATUS(RST.status), 0, "iteration %d: %s", i,
			     gw_read_file(RST.err));
	}
	gw_quit(&B);
	gw_quit(&VM);
	gw_proc_cleanup(&SNP);
	gw_proc_cleanup(&PRN);
	gw_proc_cleanup(&B);
}

Test(restore, a_read_only_repository_restores_without_its_lock_and_says_so)
{
	struct gw_hb hb;
	char id[64], *err;

	require_kvm();
	repo_init();
	boot("1", NULL, "mb=8 rate=4 verify=1");
	take(VM.api, &VM, id, sizeof(id), &hb);
	gw_quit(&VM);
	/* The repository seen through a read-only bind mount, as with read-only credentials. */
	snprintf(MNT, sizeof(MNT), "%s/ro", WORK);
	cr_assert_eq(mkdir(MNT, 0700), 0);
	if (mount(REPO, MNT, NULL, MS_BIND, NULL) < 0) {
		MNT[0] = '\0';
		cr_skip_test("cannot bind-mount (%s): needs root", strerror(errno));
	}
	cr_assert_eq(mount(NULL, MNT, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL), 0, "%s",
		     strerror(errno));
	gw_proc_cleanup(&RST);
	gw_proc_init(&RST);
	gw_spawn(&RST, (const char *const[]){ "restore", "--repo", MNT, "--key-file", KEY,
					      "--snapshot", id, "--console", RST.console, "--api",
					      RST.api, NULL });
	expect_guest_continues(&hb);
	gw_quit(&RST);
	err = gw_read_file(RST.err);
	cr_assert_eq(WEXITSTATUS(RST.status), 0, "%s", err);
	cr_assert(strstr(err, "restoring without the restore lock"), "%s", err);
	free(err);
}
