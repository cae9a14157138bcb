/* Tests for repo_repair: the index rebuilt from packs, lost packs dropped, incomplete snapshots named. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"
#include "repo/manifest.h"
#include "repo/pack.h"
#include "repo/repair.h"
#include "repo/repo.h"
#include "repo/repo_key.h"
#include "repo/verify.h"

#define RAM (2u << 20)

static char dir[64], err[1024];
static struct lines lines;
static struct repo_key key;
static bool sealed;
static char ids[3][SNAP_ID_BYTES];
static struct snap_manifest ms[3];

static struct repo *open_repo(void)
{
	return sealed ? repo_open_key_ok(dir, &key) : repo_open_ok(dir);
}

static void line(void *arg, const char *l)
{
	lines_collect(arg, REPO_VERIFY_NOTE, l);
}

/* Snapshot i of random RAM from seed, with its own open (its own packs and index file). */
static void snap(int i, uint64_t seed)
{
	struct repo *r = open_repo();
	uint8_t *data = xmalloc(RAM);

	fill_random(data, RAM, seed);
	manifest_fill(&ms[i], r, data, RAM, 0, "vm");
	ms[i].created_ns = 1700000000000000000ull + (uint64_t)i * 1000000000000ull;
	cr_assert_eq(snap_publish(r, &ms[i], err, sizeof(err)), 0, "%s", err);
	snprintf(ids[i], sizeof(ids[i]), "%s", ms[i].id);
	free(data);
	repo_close(r);
}

static void setup_with(bool encrypted)
{
	tmpdir_make(dir, sizeof(dir));
	sealed = encrypted;
	test_key(&key, 9);
	if (sealed)
		cr_assert_eq(repo_init_keyed(dir, 0, 1u << 20, &key, err, sizeof(err)), 0, "%s", err);
	else
		cr_assert_eq(repo_init(dir, 0, 1u << 20, err, sizeof(err)), 0, "%s", err);
	memset(&lines, 0, sizeof(lines));
	snap(0, 1);
	snap(1, 2);
}

static void setup(void)
{
	setup_with(false);
}

static void teardown(void)
{
	for (int i = 0; i < 3; i++)
		manifest_free(&ms[i]);
	tmpdir_remove(dir);
}

TestSuite(repair, .init = setup, .fini = teardown, .timeout = 60);

static void repair(bool dry_run, bool forget, struct repair_stats *st)
{
	struct repair_opts o = { .dry_run = dry_run, .forget_damaged = forget };
	struct repo *r = open_repo();

	memset(&lines, 0, sizeof(lines));
	cr_assert_eq(repo_repair(r, &o, line, &lines, st, err, sizeof(err)), 0, "%s", err);
	lines_print(&lines);
	repo_close(r);
}

static uint64_t verify_problems(void)
{
	struct repo *r = open_repo();
	struct repo_verify_result res;
	struct lines v = { 0 };

	cr_assert_eq(repo_verify(r, REPO_VERIFY_READ_DATA, lines_collect, &v, &res), 0);
	lines_print(&v);
	repo_close(r);
	return res.problems;
}

/* Every chunk of snapshot i reads back (i). */
static void reads_back(int i)
{
	struct repo *r = open_repo();
	uint8_t chunk[65536];

	for (uint64_t c = 0; c < ms[i].regions[0].nchunks; c++)
		cr_assert_eq(repo_blob_read(r, &ms[i].regions[0].ids[c], chunk, sizeof(chunk)), 0,
			     "chunk %llu", (unsigned long long)c);
	repo_close(r);
}

static void damage_every_index(void)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "for f in '%s'/index/*; do printf 'X' | dd of=\"$f\" bs=1 "
		 "seek=20 conv=notrunc status=none; done", dir);
	cr_assert_eq(system(cmd), 0);
}

static void rebuilds_damaged_indexes(void)
{
	struct repair_stats st;
	unsigned packs = count_objects(dir, "data");

	damage_every_index();
	cr_assert_gt(verify_problems(), 0);
	repair(true, false, &st);
	cr_assert_eq(st.indexes_bad, 2);
	cr_assert_eq(st.packs_recovered, packs);
	cr_assert(lines_has(&lines, "would write index/"));
	cr_assert_gt(verify_problems(), 0, "a dry run repaired something");
	repair(false, false, &st);
	cr_assert_eq(st.packs_recovered, packs);
	cr_assert_eq(st.indexes_removed, 2);
	cr_assert_eq(st.snapshots_incomplete, 0);
	cr_assert_eq(count_objects(dir, "index"), 1);
	cr_assert_eq(verify_problems(), 0);
	reads_back(0);
	reads_back(1);
	/* Nothing left to do. */
	repair(false, false, &st);
	cr_assert_eq(st.packs_recovered + st.indexes_written + st.indexes_removed, 0);
}

Test(repair, rebuilds_damaged_index_files_from_the_packs)
{
	rebuilds_damaged_indexes();
}

Test(repair, rebuilds_the_index_of_an_encrypted_repository_from_sealed_trailers)
{
	teardown();
	setup_with(true);
	rebuilds_damaged_indexes();
}

Test(repair, a_lost_pack_leaves_the_index_and_its_snapshot_is_named)
{
	struct repair_stats st;
	struct repo_blob_info info;
	struct repo *r = open_repo();
	char name[PACK_NAME_BYTES], path[256];

	cr_assert_eq(repo_blob_info(r, &ms[1].regions[0].ids[0], &info), 0);
	repo_close(r);
	pack_name(&info.pack_id, name);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	cr_assert_eq(unlink(path), 0);
	repair(false, false, &st);
	cr_assert_eq(st.packs_missing, 1);
	cr_assert_eq(st.snapshots_incomplete, 1);
	cr_assert(lines_has(&lines, ids[1]) && lines_has(&lines, "no pack holds whole"));
	cr_assert_not(lines_has(&lines, ids[0]), "snapshot 0 is whole");
	reads_back(0);
}

Test(repair, a_pack_that_does_not_decode_is_left_alone_and_damaged_manifests_may_go)
{
	struct repair_stats st;
	char path[512], snap[256];

	damage_every_index();
	first_object(dir, "data", path, sizeof(path));
	file_flip(path, 100, 0x10);
	snprintf(snap, sizeof(snap), "%s/snapshots/%s", dir, ids[0]);
	file_flip(snap, 40, 0x10);
	repair(false, false, &st);
	cr_assert_eq(st.packs_unreadable, 1);
	cr_assert(file_exists(path), "an unreadable pack was deleted");
	cr_assert(lines_has(&lines, "does not decode") && lines_has(&lines, "left alone"));
	cr_assert_eq(st.snapshots_unreadable, 1);
	cr_assert(lines_has(&lines, "a prune stops at it"));
	cr_assert(file_exists(snap));
	repair(false, true, &st);
	cr_assert_eq(st.snapshots_forgotten, 1);
	cr_assert_not(file_exists(snap));
}
