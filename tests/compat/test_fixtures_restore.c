/*
 * The golden samples' snapshots (tests/fixtures/), written by an earlier release, restored
 * by today's godwit on /dev/kvm: the guest goes on as the same boot, its heartbeat counter
 * past the one it printed before the snapshot, and its own checks find nothing wrong.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "tests/common/gw_test.h"

#define SAMPLES FIXTURES_DIR "/0.1.0"
#define BOOT_MS 60000

static struct gw_proc RST;
static char WORK[128], REPO[192], KEY[192];

static void setup(void)
{
	char cmd[512];

	gw_proc_init(&RST);
	snprintf(WORK, sizeof(WORK), "/tmp/gwfixr.XXXXXX");
	cr_assert_not_null(mkdtemp(WORK));
	snprintf(REPO, sizeof(REPO), "%s/repo", WORK);
	snprintf(KEY, sizeof(KEY), "%s/repo.key", WORK);
	/* A restore takes a lock in the repository: it runs on a copy of the samples. */
	snprintf(cmd, sizeof(cmd), "cp -r '" SAMPLES "/repo' '" SAMPLES "/repo.key' '%s'/ && "
		 "mkdir -p '%s/locks'", WORK, REPO);
	cr_assert_eq(system(cmd), 0, "%s", cmd);
	cr_assert_eq(chmod(KEY, 0600), 0);
}

static void teardown(void)
{
	gw_proc_cleanup(&RST);
	gw_rm_rf(WORK);
}

TestSuite(fixtures_restore, .init = setup, .fini = teardown, .timeout = 300);

/* A value of the samples' expected file, into out (asserts it is there). */
static void expect(const char *name, char *out, size_t len)
{
	char *all = gw_read_file(SAMPLES "/expected"), *line;
	size_t n = strlen(name);

	cr_assert_not_null(all);
	for (line = strtok(all, "\n"); line; line = strtok(NULL, "\n")) {
		if (strncmp(line, name, n) == 0 && line[n] == '=') {
			snprintf(out, len, "%s", line + n + 1);
			free(all);
			return;
		}
	}
	cr_assert_fail("no %s in " SAMPLES "/expected", name);
}

static void restore_continues(const char *which)
{
	char id[64], boot[32], hb_name[64], hb_before[32], line[256];
	struct gw_hb hb;

	require_kvm();
	expect(which, id, sizeof(id));
	expect("boot_id", boot, sizeof(boot));
	snprintf(hb_name, sizeof(hb_name), "%s_heartbeat", which);
	expect(hb_name, hb_before, sizeof(hb_before));
	gw_spawn(&RST, (const char *const[]){ "restore", "--repo", REPO, "--key-file", KEY,
					      "--snapshot", id, "--console", RST.console,
					      "--api", RST.api, NULL });
	/* Three heartbeats after the restore: the third is surely the restored guest's own. */
	cr_assert(gw_wait_line(&RST, RST.console, "HB ", 3, line, sizeof(line), BOOT_MS),
		  "the restored guest does not run: %s", gw_read_file(RST.err));
	cr_assert(gw_parse_hb(line, &hb), "%s", line);
	cr_assert_str_eq(hb.id, boot, "another boot: %s", line);
	cr_assert_gt(hb.counter, strtoull(hb_before, NULL, 10), "the counter went back: %s", line);
	cr_assert_eq(hb.errors, 0, "%s", line);
	cr_assert_eq(gw_count_lines(RST.console, "GUEST"), 0, "%s", gw_read_file(RST.console));
	gw_quit(&RST);
	cr_assert_eq(WEXITSTATUS(RST.status), 0, "%s", gw_read_file(RST.err));
}

Test(fixtures_restore, the_full_snapshot_of_0_1_0_restores_and_the_guest_continues)
{
	restore_continues("full");
}

Test(fixtures_restore, the_incremental_snapshot_of_0_1_0_restores_and_the_guest_continues)
{
	restore_continues("incremental");
}
