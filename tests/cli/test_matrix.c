/*
 * Features together, as users chain them, on one guest: snapshots, backups, migrations
 * (whole, cancelled, with the destination killed, with the disk), restores (eager and
 * lazy). The guest moves from process to process; after every step it must go on as the
 * same boot with no page found wrong (its own exact check, verify=1), and every step
 * that can is also checked against all of RAM and the disk: migrate --verify (source and
 * destination, page by page), restore --verify and snapshot --verify (RAM against what
 * the snapshot holds, chunk by chunk). A seeded random sequence of these steps follows
 * the fixed scenarios; its seed is printed, and GODWIT_MATRIX_SEED replays one.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/common/gw_test.h"

#define BOOT_MS 60000
#define CMD_MS 180000
#define DISK_PATTERN "disk=w:64:4096:0x5e disk=v:64:4096:0x5e"
#define GUEST "mb=32 rate=16 verify=1 " DISK_PATTERN
/* A working set a lazy restore takes a while to load (a snapshot can land meanwhile). */
#define BIG_GUEST "mb=200 rate=16 verify=1 " DISK_PATTERN
#define NSLOTS 3
#define RANDOM_STEPS 30

static struct gw_proc P[NSLOTS]; /* the processes the guest lives in, in turn */
static struct gw_proc CMD, RCV;  /* a command to completion; a receiver that gets nothing */
static unsigned cur;             /* P[cur] runs the guest */
static char WORK[128], REPO[256], KEY[256], PSK[256];
static char disk[256];           /* the guest's disk image now */
static unsigned ndisks;
static char last_snap[64];       /* the newest snapshot or backup of the guest */
static struct gw_hb last_snap_hb; /* its last heartbeat before that snapshot */
static char tracker[64];         /* the parent P[cur]'s next snapshot must name ("" none) */
static struct gw_proc *booted;   /* the process that booted the guest, while it lives */

static void setup(void)
{
	int fd;

	for (unsigned i = 0; i < NSLOTS; i++)
		gw_proc_init(&P[i]);
	gw_proc_init(&CMD);
	gw_proc_init(&RCV);
	snprintf(WORK, sizeof(WORK), "/tmp/gwmatrix.XXXXXX");
	cr_assert_not_null(mkdtemp(WORK));
	snprintf(REPO, sizeof(REPO), "%s/repo", WORK);
	snprintf(KEY, sizeof(KEY), "%s/repo.key", WORK);
	snprintf(PSK, sizeof(PSK), "%s/psk", WORK);
	fd = open(PSK, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	cr_assert_eq(write(fd, "3e7a1c9f5b2d8e4a6c0f3b7d1e9a5c2f8b4d6e0a3c7f1b5d9e2a6c4f8b0d3e7a\n",
			   65), 65);
	close(fd);
	cur = 0;
	ndisks = 0;
	booted = NULL;
	last_snap[0] = tracker[0] = '\0';
}

static void teardown(void)
{
	gw_proc_cleanup(&RCV);
	gw_proc_cleanup(&CMD);
	for (unsigned i = 0; i < NSLOTS; i++)
		gw_proc_cleanup(&P[i]);
	gw_rm_rf(WORK);
}

TestSuite(matrix, .init = setup, .fini = teardown, .timeout = 3600);

static int godwit(const char *const *argv)
{
	return gw_run(&CMD, argv, CMD_MS);
}

static struct gw_proc *guest(void)
{
	return &P[cur];
}

/* A free slot for the guest's next process, reset. */
static struct gw_proc *next_slot(unsigned *idx)
{
	*idx = (cur + 1) % NSLOTS;
	if (booted == &P[*idx])
		booted = NULL;
	gw_proc_cleanup(&P[*idx]);
	gw_proc_init(&P[*idx]);
	return &P[*idx];
}

static const char *new_disk_path(void)
{
	static char path[256];

	snprintf(path, sizeof(path), "%s/disk%u.img", WORK, ndisks++);
	return path;
}

/*
 * p's guest goes on from before: three more heartbeats, the same boot, a larger counter
 * (or, after a restore, at least the snapshot's), no page ever found wrong, no disk
 * pattern that failed to read back.
 */
static void expect_goes_on(struct gw_proc *p, const struct gw_hb *before, bool restored)
{
	unsigned n = gw_count_lines(p->console, "HB ");
	struct gw_hb hb;

	cr_assert(gw_wait_line(p, p->console, "HB ", n + 3, NULL, 0, BOOT_MS),
		  "the guest does not run: %s", gw_read_file(p->err));
	gw_last_hb(p, &hb);
	cr_assert_str_eq(hb.id, before->id, "another boot");
	if (restored)
		cr_assert_geq(hb.counter, before->counter, "the counter went back");
	else
		cr_assert_gt(hb.counter, before->counter, "the counter did not go on");
	cr_assert_eq(hb.errors, 0, "the guest found %" PRIu64 " wrong pages", hb.errors);
	cr_assert_eq(gw_count_lines(p->console, "GUEST corrupt"), 0);
	cr_assert_eq(gw_count_lines(p->console, "GUEST boot"), p == booted ? 1 : 0,
		     "the guest booted again");
}

static void boot_guest_with(const char *cmdline)
{
	int fd;

	booted = guest();
	snprintf(disk, sizeof(disk), "%s", new_disk_path());
	fd = open(disk, O_RDWR | O_CREAT | O_TRUNC, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, 16 << 20), 0);
	close(fd);
	gw_spawn(guest(), (const char *const[]){ "run", "--kernel", TEST_GUEST_ELF, "--mem",
						 "256M", "--cpus", "2", "--disk", disk, "--cmdline",
						 cmdline, "--console", guest()->console, "--api",
						 guest()->api, NULL });
	cr_assert(gw_wait_line(guest(), guest()->console, "DISK V ", 1, NULL, 0, BOOT_MS),
		  "the guest did not boot: %s", gw_read_file(guest()->err));
	cr_assert(strstr(gw_read_file(guest()->console), "bad=0 status=0"),
		  "the guest's disk pattern did not read back");
	cr_assert(gw_wait_line(guest(), guest()->console, "HB ", 3, NULL, 0, BOOT_MS));
	cr_assert_eq(godwit((const char *const[]){ "repo", "init", "--repo", REPO, "--key-file",
						   KEY, NULL }), 0, "%s", gw_read_file(CMD.err));
}

static void boot_guest(void)
{
	boot_guest_with(GUEST);
}

/* Take a snapshot (backup: through `godwit backup`) and check it chains to the tracker's. */
static void step_snapshot(bool backup)
{
	/* A guest restored a moment ago may not have printed yet: it is where it was saved. */
	bool fresh = gw_count_lines(guest()->console, "HB ") == 0;
	struct gw_hb before = last_snap_hb;
	char parent[64], *out;
	int rc;

	if (!fresh)
		gw_last_hb(guest(), &before);
	if (backup)
		rc = godwit((const char *const[]){ "backup", "--api", guest()->api, "--repo", REPO,
						   "--key-file", KEY, "--name", "m1", "--json",
						   NULL });
	else
		rc = godwit((const char *const[]){ "snapshot", "--api", guest()->api, "--repo",
						   REPO, "--key-file", KEY, "--name", "m1",
						   "--verify", "--json", NULL });
	cr_assert_eq(rc, 0, "%s failed: %s", backup ? "backup" : "snapshot",
		     gw_read_file(CMD.err));
	out = gw_read_file(CMD.out);
	gw_json_str(out, "id", last_snap, sizeof(last_snap));
	gw_json_str(out, "parent", parent, sizeof(parent));
	free(out);
	/* Whatever happened since (failed migrations included), the next one is incremental. */
	if (tracker[0])
		cr_assert_str_eq(parent, tracker, "not incremental on the guest's last snapshot");
	snprintf(tracker, sizeof(tracker), "%s", last_snap);
	last_snap_hb = before;
	expect_goes_on(guest(), &before, fresh);
}

/* Start `godwit receive` in p (disk: its --disk) on 127.0.0.1:0; the port it bound into to. */
static void start_receiver(struct gw_proc *p, const char *rdisk, char *to, size_t len)
{
	char line[256], *at;

	gw_spawn(p, (const char *const[]){ "receive", "--listen", "127.0.0.1:0", "--psk-file",
					   PSK, "--disk", rdisk, "--console", p->console, "--api",
					   p->api, NULL });
	cr_assert(gw_wait_line(p, p->err, "godwit: waiting for a VM on ", 1, line, sizeof(line),
			       10000), "receive did not listen: %s", gw_read_file(p->err));
	at = strstr(line, " on ") + 4;
	snprintf(to, len, "%.*s", (int)strcspn(at, "\n"), at);
}

/* Move the guest to a new process, its disk along (with_disk) or shared, with --verify. */
static void step_migrate(bool with_disk)
{
	char to[64], old_disk[256], cmd[700];
	const char *rdisk = with_disk ? new_disk_path() : disk;
	struct gw_proc *src = guest(), *dst;
	struct gw_hb before;
	unsigned idx;

	dst = next_slot(&idx);
	start_receiver(dst, rdisk, to, sizeof(to));
	cr_assert_eq(godwit((const char *const[]){ "migrate", "--api", src->api, "--to", to,
						   "--psk-file", PSK, "--verify", "--json",
						   with_disk ? "--with-disk" : NULL, NULL }), 0,
		     "migrate failed: %s", gw_read_file(CMD.err));
	cr_assert(gw_wait_exit(src, 20000), "the source still runs after migrating away");
	gw_last_hb(src, &before);
	expect_goes_on(dst, &before, false);
	snprintf(old_disk, sizeof(old_disk), "%s", disk);
	if (with_disk) {
		/* The guest wrote its disk at boot only: the copy must be the source's, byte for byte. */
		snprintf(cmd, sizeof(cmd), "cmp -s '%s' '%s'", old_disk, rdisk);
		cr_assert_eq(system(cmd), 0, "the disk arrived different");
		snprintf(disk, sizeof(disk), "%s", rdisk);
	}
	cur = idx;
	tracker[0] = '\0'; /* a new process: its first snapshot is full */
}

/*
 * The source's migrate-status is iterate with a few MiB on the wire. Until the new
 * migration shows up (setup or iterate), what the API reports is the last one's end.
 */
static void wait_mid_round(const char *api)
{
	char json[65536];
	uint64_t waited = 0;
	bool seen = false;

	for (;;) {
		cr_assert(gw_api(api, "{\"cmd\":\"migrate-status\"}", json, sizeof(json)));
		if (strstr(json, "\"state\":\"iterate\"") &&
		    gw_json_u64(json, "wire_bytes") > (2u << 20))
			return;
		seen |= strstr(json, "\"state\":\"setup\"") ||
			strstr(json, "\"state\":\"iterate\"");
		cr_assert(!seen || (!strstr(json, "\"state\":\"completed\"") &&
				    !strstr(json, "\"state\":\"failed\"")),
			  "the migration ended before the test acted: it proves nothing: %s; "
			  "receiver (%s, status %#x): %s", json,
			  gw_wait_exit(&RCV, 1000) ? "exited" : "running", RCV.status,
			  gw_read_file(RCV.err));
		cr_assert_lt(waited, CMD_MS, "never mid-round: %s", json);
		usleep(20000);
		waited += 20;
	}
}

/* A migration that goes wrong mid-round: cancelled, or its destination killed. */
static void step_migration_fails(bool cancel)
{
	char to[64], reply[512];
	struct gw_hb before;

	gw_proc_cleanup(&RCV);
	gw_proc_init(&RCV);
	start_receiver(&RCV, disk, to, sizeof(to));
	gw_last_hb(guest(), &before);
	gw_proc_cleanup(&CMD);
	gw_proc_init(&CMD);
	gw_spawn(&CMD, (const char *const[]){ "migrate", "--api", guest()->api, "--to", to,
					     "--psk-file", PSK, "--verify", "--max-bandwidth", "8M",
					     NULL });
	wait_mid_round(guest()->api);
	if (cancel) {
		cr_assert(gw_api(guest()->api, "{\"cmd\":\"migrate-cancel\"}", reply, sizeof(reply)));
		cr_assert(strstr(reply, "\"ok\":true"), "%s", reply);
	} else {
		cr_assert_eq(kill(RCV.pid, SIGKILL), 0);
	}
	cr_assert(gw_wait_exit(&CMD, CMD_MS));
	cr_assert_eq(WEXITSTATUS(CMD.status), 1, "%s", gw_read_file(CMD.err));
	cr_assert(strstr(gw_read_file(CMD.err), cancel ? "migration cancelled" : "migration failed"),
		  "%s", gw_read_file(CMD.err));
	cr_assert(gw_wait_exit(&RCV, 60000), "the receiver of a failed migration still runs");
	cr_assert_eq(gw_count_lines(RCV.console, "HB "), 0, "the receiver ran the guest");
	expect_goes_on(guest(), &before, false);
}

static double wall_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/*
 * Stop the guest's process and restore the newest snapshot in a new one: eager, with
 * --verify; or lazy (the default), and then snapshot it at once, while its RAM still
 * loads. Returns the wall-clock time that snapshot was asked for (0 for eager).
 */
static double step_restore(bool lazy)
{
	const char *rdisk = new_disk_path();
	struct gw_hb at_snap = last_snap_hb;
	struct gw_proc *rst;
	double asked = 0;
	unsigned idx;

	if (!last_snap[0])
		return 0;
	gw_quit(guest());
	rst = next_slot(&idx);
	gw_spawn(rst, (const char *const[]){ "restore", "--repo", REPO, "--key-file", KEY,
					     "--snapshot", last_snap, "--disk", rdisk, "--console",
					     rst->console, "--api", rst->api, "--verbose",
					     lazy ? NULL : "--verify", NULL });
	cur = idx;
	snprintf(disk, sizeof(disk), "%s", rdisk);
	tracker[0] = '\0';
	if (lazy) {
		/* As soon as the API answers: RAM is still coming in behind the vCPUs. */
		char reply[512];
		uint64_t waited = 0;

		while (!gw_api(rst->api, "{\"cmd\":\"status\"}", reply, sizeof(reply)) ||
		       !strstr(reply, "\"state\":\"running\"")) {
			cr_assert_lt(waited, BOOT_MS, "the restore does not answer: %s",
				     gw_read_file(rst->err));
			usleep(5000);
			waited += 5;
		}
		asked = wall_s();
		step_snapshot(false);
	} else {
		cr_assert(gw_wait_line(rst, rst->console, "HB ", 1, NULL, 0, BOOT_MS),
			  "the restored guest does not run: %s", gw_read_file(rst->err));
		cr_assert(strstr(gw_read_file(rst->err), "--verify: RAM and disk match"), "%s",
			  gw_read_file(rst->err));
	}
	expect_goes_on(rst, &at_snap, true);
	return asked;
}

/*
 * The restore of slot idx (lazy, now stopped) had not all of its RAM resident at asked:
 * from its --verbose lines, "vCPUs running at T" and "RAM resident N ms after
 * registration". Else the snapshot "while still loading" proves nothing.
 */
static void expect_was_loading(unsigned idx, double asked)
{
	char *err = gw_read_file(P[idx].err), *at, *res;
	double running, resident_ms;

	at = strstr(err, "vCPUs running at ");
	res = strstr(err, "RAM resident ");
	cr_assert(at && res, "no lazy restore figures: %s", err);
	running = strtod(at + strlen("vCPUs running at "), NULL);
	resident_ms = strtod(res + strlen("RAM resident "), NULL);
	cr_assert_lt(asked, running + resident_ms / 1000.0, "the snapshot came after all of RAM "
		     "was loaded: the test proves nothing: %s", err);
	free(err);
}

Test(matrix, snapshot_then_migrate)
{
	require_kvm();
	boot_guest();
	step_snapshot(false);
	step_snapshot(false);
	step_migrate(false);
	step_snapshot(false);
	gw_quit(guest());
}

/* backup -> migrate -> backup on the destination (same repository, same VM name). */
Test(matrix, backup_then_migrate_then_backup_at_the_destination)
{
	require_kvm();
	boot_guest();
	step_snapshot(true);
	step_snapshot(true);
	step_migrate(false);
	step_snapshot(true);
	step_snapshot(true);
	step_restore(false);
	gw_quit(guest());
	cr_assert_eq(godwit((const char *const[]){ "images", "verify", "--repo", REPO, "--key-file",
						   KEY, "--read-data", NULL }), 0, "%s",
		     gw_read_file(CMD.err));
}

/* A cancelled migration, one whose destination died: the snapshots stay incremental. */
Test(matrix, failed_migrations_then_incremental_snapshot_then_restore)
{
	require_kvm();
	boot_guest();
	step_snapshot(false);
	step_migration_fails(true);
	step_snapshot(false);
	step_migration_fails(false);
	step_snapshot(false);
	step_restore(false);
	gw_quit(guest());
}

Test(matrix, lazy_restore_then_snapshot_while_loading_then_migrate)
{
	double asked;
	unsigned idx;

	require_kvm();
	boot_guest_with(BIG_GUEST);
	step_snapshot(false);
	asked = step_restore(true);
	idx = cur;
	step_migrate(false);
	expect_was_loading(idx, asked);
	step_restore(false);
	gw_quit(guest());
}

Test(matrix, migrate_with_disk_after_a_snapshot_brings_the_disk_identical)
{
	require_kvm();
	boot_guest();
	step_snapshot(false);
	step_migrate(true);
	step_snapshot(false);
	step_migrate(true);
	gw_quit(guest());
}

/* xorshift64*: the sequence depends on the seed alone. */
static uint64_t next_rand(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dULL;
}

Test(matrix, a_random_sequence_of_all_of_it)
{
	static const char *const names[] = {
		"snapshot", "backup", "migrate", "migrate --with-disk", "cancelled migration",
		"destination killed", "restore --verify", "lazy restore + snapshot",
	};
	const char *env = getenv("GODWIT_MATRIX_SEED");
	uint64_t seed = env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL) ^ (uint64_t)getpid();
	uint64_t st = seed ? seed : 1;

	require_kvm();
	fprintf(stderr, "matrix: seed %" PRIu64 " (GODWIT_MATRIX_SEED=%" PRIu64 " replays it)\n",
		seed, seed);
	cr_log_info("matrix seed %" PRIu64, seed);
	boot_guest();
	for (unsigned i = 0; i < RANDOM_STEPS; i++) {
		unsigned step = (unsigned)(next_rand(&st) % (sizeof(names) / sizeof(names[0])));

		fprintf(stderr, "matrix: seed %" PRIu64 " step %u: %s\n", seed, i, names[step]);
		switch (step) {
		case 0:
		case 1:
			step_snapshot(step == 1);
			break;
		case 2:
		case 3:
			step_migrate(step == 3);
			break;
		case 4:
		case 5:
			step_migration_fails(step == 4);
			break;
		default:
			if (!last_snap[0])
				step_snapshot(false);
			step_restore(step == 7);
			break;
		}
	}
	gw_quit(guest());
}

