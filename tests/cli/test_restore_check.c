/*
 * godwit restore --check: go for a real snapshot this host can run (the 0.1.0 golden
 * sample), no-go with the reason for each thing that would stop the restore: a CPU
 * feature this host lacks (the sample's state with one feature bit set that KVM here
 * does not offer, stored as a new snapshot), a NIC count or a disk that differ. Nothing
 * is started: the check takes no lock and leaves the repository as it was.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "repo/manifest.h"
#include "repo/repo.h"
#include "repo/repo_key.h"
#include "tests/common/gw_fixture.h"
#include "tests/common/gw_test.h"
#include "util/crc32c.h"
#include "vmm/state/state_format.h"
#include "vmm/state/state_priv.h"

#define CMD_MS 60000

static struct gw_proc CMD;
static char WORK[128], REPO[192], KEY[192];

static void setup(void)
{
	gw_proc_init(&CMD);
	gw_fixture_copy("0.1.0", WORK, sizeof(WORK));
	snprintf(REPO, sizeof(REPO), "%s/repo", WORK);
	snprintf(KEY, sizeof(KEY), "%s/repo.key", WORK);
}

static void teardown(void)
{
	gw_proc_cleanup(&CMD);
	gw_fixture_remove(WORK);
}

TestSuite(restore_check, .init = setup, .fini = teardown, .timeout = 120);

/* godwit restore --check of snapshot id with extra arguments (NULL-terminated). */
static int check(const char *id, const char *a1, const char *a2)
{
	return gw_run(&CMD, (const char *const[]){ "restore", "--check", "--repo", REPO,
						   "--key-file", KEY, "--snapshot", id, a1, a2,
						   NULL }, CMD_MS);
}

static void expect_out(const char *needle)
{
	char *out = gw_read_file(CMD.out);

	cr_assert(out && strstr(out, needle), "no \"%s\" in:\n%s", needle, out);
	free(out);
}

static void sample_id(char *id, size_t len)
{
	gw_fixture_expect("0.1.0", "incremental", id, len);
}

Test(restore_check, a_snapshot_this_host_can_run_is_go)
{
	char id[64];

	require_kvm();
	sample_id(id, sizeof(id));
	cr_assert_eq(check(id, NULL, NULL), 0, "%s%s", gw_read_file(CMD.out),
		     gw_read_file(CMD.err));
	expect_out("ok   cpu: this host has every CPU feature the VM uses");
	expect_out("ok   format: written by godwit 0.1.0; VM state format 1");
	expect_out("go: it would restore here");
}

Test(restore_check, a_nic_or_a_disk_the_snapshot_lacks_is_no_go)
{
	char id[64], disk[256];

	require_kvm();
	sample_id(id, sizeof(id));
	cr_assert_eq(check(id, "--net", "tap=gwchk0"), 1);
	expect_out("NO   nics: the snapshot has 0, 1 --net given");
	expect_out("no-go: 1 problem");
	snprintf(disk, sizeof(disk), "%s/new.img", WORK);
	cr_assert_eq(check(id, "--disk", disk), 1);
	expect_out("NO   disk: the snapshot has none");
	cr_assert_eq(access(disk, F_OK), -1, "--check made %s", disk);
}

/*
 * Test input: the sample's state with one CPUID bit set that this host lacks, published
 * as a new snapshot beside the sample's (same RAM), whose id goes to out.
 */
static void publish_with_cpuid_bit(unsigned bit, char *out, size_t outlen)
{
	struct snap_manifest m;
	struct repo_key key;
	struct vs_record rec;
	struct repo *r;
	uint8_t *blob;
	size_t len;
	char id[64], err[512];

	sample_id(id, sizeof(id));
	cr_assert_eq(repo_key_load(&key, KEY, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(repo_open_keyed(&r, REPO, &key, err, sizeof(err)), 0, "%s", err);
	repo_key_wipe(&key);
	cr_assert_eq(snap_load(r, id, &m, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(repo_blob_get(r, &m.state_id, &blob, &len), 0);
	cr_assert_eq(vs_blob_find(blob, len, VS_REC_CPUID, &rec, err, sizeof(err)), 0, "%s", err);
	gw_fixture_set_leaf7_ebx(blob + (rec.payload - blob), rec.len, bit);
	le32_encode(blob + len - 4, crc32c(0, blob, len - 4));
	cr_assert_eq(repo_blob_put(r, BLOB_T_STATE, blob, len, &m.state_id), 0);
	m.id[0] = '\0';
	m.parent[0] = '\0';
	m.created_ns = 0;
	cr_assert_eq(snap_publish(r, &m, err, sizeof(err)), 0, "%s", err);
	snprintf(out, outlen, "%s", m.id);
	free(blob);
	manifest_free(&m);
	repo_close(r);
}

Test(restore_check, a_cpu_feature_this_host_lacks_is_no_go_and_named)
{
	const char *name;
	char id[64], want[128], *err;
	unsigned bit;

	require_kvm();
	name = gw_fixture_missing_feature(&bit);
	if (!name)
		cr_skip_test("this host offers every candidate feature of CPUID leaf 7");
	publish_with_cpuid_bit(bit, id, sizeof(id));
	cr_assert_eq(check(id, NULL, NULL), 1, "%s", gw_read_file(CMD.out));
	snprintf(want, sizeof(want), "NO   cpu: CPU features missing on this host: %s", name);
	expect_out(want);
	expect_out("no-go: 1 problem");
	/* The restore itself refuses it the same way, before starting anything. */
	cr_assert_eq(gw_run(&CMD, (const char *const[]){ "restore", "--repo", REPO, "--key-file",
							 KEY, "--snapshot", id, NULL }, CMD_MS), 1);
	err = gw_read_file(CMD.err);
	cr_assert(strstr(err, name), "%s", err);
	free(err);
}
