/*
 * The golden samples' snapshots (tests/fixtures/), written by an earlier release, restored
 * by today's godwit on /dev/kvm: the guest goes on as the same boot, its heartbeat counter
 * past the one it printed before the snapshot, and its own checks find nothing wrong.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "tests/common/gw_fixture.h"
#include "tests/common/gw_test.h"

#define BOOT_MS 60000

static struct gw_proc RST;
static char WORK[128], REPO[192], KEY[192];

/* A restore takes a lock in the repository: it runs on a copy of the samples. */
static void setup(void)
{
	gw_proc_init(&RST);
	gw_fixture_copy("0.1.0", WORK, sizeof(WORK));
	snprintf(REPO, sizeof(REPO), "%s/repo", WORK);
	snprintf(KEY, sizeof(KEY), "%s/repo.key", WORK);
}

static void teardown(void)
{
	gw_proc_cleanup(&RST);
	gw_fixture_remove(WORK);
}

TestSuite(fixtures_restore, .init = setup, .fini = teardown, .timeout = 300);

static void expect(const char *name, char *out, size_t len)
{
	gw_fixture_expect("0.1.0", name, out, len);
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
