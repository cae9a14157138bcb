/* Tests for prune: restic's retention rules, forget, and a sweep that deletes exactly the dead packs. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "repo/manifest.h"
#include "repo/pack.h"
#include "repo/prune.h"
#include "repo/repo.h"
#include "repo/verify.h"

#define DAY_NS (86400ull * 1000000000ull)
#define HOUR_NS (3600ull * 1000000000ull)

static void utc(void)
{
	setenv("TZ", "UTC", 1);
	tzset();
}

TestSuite(prune_policy, .init = utc);

/* Unix ns of a UTC date and hour (y, m, d, h). */
static uint64_t at(int y, int m, int d, int h)
{
	struct tm tm = { .tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d, .tm_hour = h };

	return (uint64_t)timegm(&tm) * 1000000000ull;
}

static void add(struct snap_summary *s, size_t *n, const char *vm, uint64_t ns)
{
	memset(&s[*n], 0, sizeof(s[*n]));
	snprintf(s[*n].id, sizeof(s[*n].id), "%s-%02zu", vm, *n);
	snprintf(s[*n].vm_name, sizeof(s[*n].vm_name), "%s", vm);
	s[*n].created_ns = ns;
	(*n)++;
}

Test(prune_policy, keep_last_keeps_the_n_newest_in_any_input_order)
{
	struct snap_summary s[10];
	struct prune_policy p = { .keep_last = 3 };
	uint8_t why[10];
	size_t n = 0;

	for (int i = 0; i < 10; i++)
		add(s, &n, "vm", at(2025, 1, 1, 0) + (uint64_t)((i * 7) % 10) * HOUR_NS);
	cr_assert_eq(prune_decide(&p, s, n, NULL, why), 0);
	for (size_t i = 0; i < n; i++) {
		unsigned hour = (unsigned)((s[i].created_ns - at(2025, 1, 1, 0)) / HOUR_NS);

		cr_assert_eq(why[i] != 0, hour >= 7, "hour %u kept=%d", hour, why[i]);
	}
}

Test(prune_policy, keep_daily_keeps_the_newest_of_each_of_the_last_n_days_with_snapshots)
{
	struct snap_summary s[16];
	struct prune_policy p = { .keep_daily = 3 };
	uint8_t why[16];
	size_t n = 0;

	/* Jan 1: 3 snapshots; Jan 2: none; Jan 3: 2; Jan 5: 1; Jan 6: 3. */
	add(s, &n, "vm", at(2025, 1, 1, 1));
	add(s, &n, "vm", at(2025, 1, 1, 9));
	add(s, &n, "vm", at(2025, 1, 1, 23));
	add(s, &n, "vm", at(2025, 1, 3, 4));
	add(s, &n, "vm", at(2025, 1, 3, 5)); /* kept: newest of Jan 3 */
	add(s, &n, "vm", at(2025, 1, 5, 12)); /* kept */
	add(s, &n, "vm", at(2025, 1, 6, 0));
	add(s, &n, "vm", at(2025, 1, 6, 10));
	add(s, &n, "vm", at(2025, 1, 6, 20)); /* kept */
	cr_assert_eq(prune_decide(&p, s, n, NULL, why), 0);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(why[i], (i == 4 || i == 5 || i == 8) ? PRUNE_KEEP_DAILY : 0,
			     "snapshot %zu: %u", i, why[i]);
}

Test(prune_policy, keep_weekly_uses_iso_weeks_across_the_new_year)
{
	struct snap_summary s[8];
	struct prune_policy p = { .keep_weekly = 2 };
	uint8_t why[8];
	size_t n = 0;

	/* Sun 2024-12-29 is ISO 2024-W52; Mon 2024-12-30 and Sun 2025-01-05 are 2025-W01. */
	add(s, &n, "vm", at(2024, 12, 22, 12)); /* 2024-W51 */
	add(s, &n, "vm", at(2024, 12, 29, 12)); /* 2024-W52: kept */
	add(s, &n, "vm", at(2024, 12, 30, 12)); /* 2025-W01 */
	add(s, &n, "vm", at(2025, 1, 5, 12));   /* 2025-W01: kept */
	cr_assert_eq(prune_decide(&p, s, n, NULL, why), 0);
	cr_assert_eq(why[0], 0);
	cr_assert_eq(why[1], PRUNE_KEEP_WEEKLY);
	cr_assert_eq(why[2], 0);
	cr_assert_eq(why[3], PRUNE_KEEP_WEEKLY);
}

Test(prune_policy, rules_add_up_and_each_vm_is_counted_alone)
{
	struct snap_summary s[16];
	struct prune_policy p = { .keep_last = 1, .keep_daily = 2 };
	uint8_t why[16];
	size_t n = 0;

	add(s, &n, "a", at(2025, 3, 1, 10));
	add(s, &n, "a", at(2025, 3, 2, 10)); /* daily */
	add(s, &n, "a", at(2025, 3, 3, 8));
	add(s, &n, "a", at(2025, 3, 3, 9));  /* last + daily */
	add(s, &n, "b", at(2025, 3, 1, 10)); /* b's own: last + daily */
	cr_assert_eq(prune_decide(&p, s, n, NULL, why), 0);
	cr_assert_eq(why[0], 0);
	cr_assert_eq(why[1], PRUNE_KEEP_DAILY);
	cr_assert_eq(why[2], 0);
	cr_assert_eq(why[3], PRUNE_KEEP_LAST | PRUNE_KEEP_DAILY);
	cr_assert_eq(why[4], PRUNE_KEEP_LAST | PRUNE_KEEP_DAILY);
	/* Only VM a: b is not touched. */
	cr_assert_eq(prune_decide(&p, s, n, "a", why), 0);
	cr_assert_eq(why[4], PRUNE_KEEP_OTHER_VM);
	cr_assert_eq(why[0], 0);
}

Test(prune_policy, a_policy_that_keeps_nothing_is_refused)
{
	struct snap_summary s[1];
	struct prune_policy p = { 0 };
	uint8_t why[1];
	size_t n = 0;

	add(s, &n, "vm", 1);
	cr_assert(prune_policy_empty(&p));
	cr_assert_eq(prune_decide(&p, s, n, NULL, why), -EINVAL);
}

/* ---- Forget and sweep on a repository ------------------------------------------------- */

#define RAM (1u << 20)

static char dir[64], err[1024];
static struct lines lines;
static char ids[6][SNAP_ID_BYTES];

static void line(void *arg, const char *l)
{
	lines_collect(arg, REPO_VERIFY_NOTE, l);
}

/*
 * Snapshot i of VM vm on day i: the low half of RAM from seed lo, the high half from hi
 * (equal seeds share blobs), and a state blob of its own; taken with its own open, so
 * each gets its own packs and index file.
 */
static void snap2(int i, const char *vm, uint64_t lo, uint64_t hi)
{
	struct repo *r = repo_open_ok(dir);
	uint8_t *data = xmalloc(RAM);
	struct snap_manifest m;
	char state[64];

	fill_random(data, RAM / 2, lo);
	fill_random(data + RAM / 2, RAM / 2, hi);
	manifest_fill(&m, r, data, RAM, 0, vm);
	snprintf(state, sizeof(state), "state %d of %s", i, vm);
	cr_assert_eq(repo_blob_put(r, BLOB_T_STATE, state, strlen(state), &m.state_id), 0);
	m.created_ns = at(2025, 6, 1 + i, 12);
	cr_assert_eq(snap_publish(r, &m, err, sizeof(err)), 0, "%s", err);
	snprintf(ids[i], sizeof(ids[i]), "%s", m.id);
	manifest_free(&m);
	free(data);
	repo_close(r);
}

static void snap(int i, const char *vm, uint64_t seed)
{
	snap2(i, vm, seed, seed + 1000);
}

static void repo_setup(void)
{
	utc();
	tmpdir_make(dir, sizeof(dir));
	/* 1 MiB packs, so one snapshot's megabyte of random RAM fills its own packs. */
	cr_assert_eq(repo_init(dir, 0, 1u << 20, err, sizeof(err)), 0, "%s", err);
	memset(&lines, 0, sizeof(lines));
}

static void repo_teardown(void)
{
	tmpdir_remove(dir);
}

TestSuite(prune, .init = repo_setup, .fini = repo_teardown, .timeout = 120);

/* Every remaining snapshot reads back whole, and verify finds no problem (kept). */
static void expect_clean(unsigned snapshots)
{
	struct repo *r = repo_open_ok(dir);
	struct repo_verify_result res;
	struct lines v = { 0 };

	cr_assert_eq(repo_verify(r, true, lines_collect, &v, &res), 0);
	lines_print(&v);
	cr_assert_eq(res.problems, 0);
	cr_assert_eq(res.snapshots, snapshots);
	repo_close(r);
}

static void run_prune(const struct prune_policy *p, const char *vm, bool dry,
		      struct prune_stats *st)
{
	struct repo *r = repo_open_ok(dir);

	memset(st, 0, sizeof(*st));
	cr_assert_eq(prune_forget(r, p, vm, dry, line, &lines, st, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(prune_sweep(r, dry, PRUNE_GRACE_DEFAULT_S, line, &lines, st, err, sizeof(err)), 0, "%s", err);
	lines_print(&lines);
	repo_close(r);
}

Test(prune, forget_then_sweep_deletes_exactly_the_packs_only_forgotten_snapshots_used)
{
	struct prune_policy p = { .keep_last = 2 };
	struct prune_stats st;
	unsigned packs_before, index_before;

	for (int i = 0; i < 4; i++)
		snap(i, "vm", 100 + (uint64_t)i); /* all different */
	packs_before = count_objects(dir, "data");
	index_before = count_objects(dir, "index");
	cr_assert_eq(index_before, 4);
	/* A dry run changes nothing. */
	run_prune(&p, NULL, true, &st);
	cr_assert_eq(st.snapshots_removed, 2);
	cr_assert_eq(count_objects(dir, "data"), packs_before);
	cr_assert_eq(count_objects(dir, "snapshots"), 4);
	cr_assert(lines_has(&lines, "would forget snapshot"));

	run_prune(&p, NULL, false, &st);
	cr_assert_eq(st.snapshots_kept, 2);
	cr_assert_eq(st.snapshots_removed, 2);
	cr_assert_eq(count_objects(dir, "snapshots"), 2);
	cr_assert_gt(st.packs_removed, 0);
	cr_assert_eq(count_objects(dir, "data"), packs_before - st.packs_removed);
	cr_assert_eq(st.packs_partial, 0);
	cr_assert_eq(st.indexes_removed, 2, "the two dead index files");
	cr_assert_eq(count_objects(dir, "index"), 2);
	expect_clean(2);
	/* What is left survives another prune untouched. */
	run_prune(&p, NULL, false, &st);
	cr_assert_eq(st.snapshots_removed + st.packs_removed + st.indexes_removed, 0);
}

Test(prune, a_pack_with_some_live_blobs_is_kept_whole_and_its_index_rewritten_without_dead_packs)
{
	struct prune_policy p = { .keep_last = 1 };
	struct prune_stats st;
	struct repo *r;

	/* The low half of RAM stays the same; the high half changes each time. */
	snap2(0, "vm", 7, 7);
	snap2(1, "vm", 7, 9);
	snap2(2, "vm", 7, 8);
	run_prune(&p, NULL, false, &st);
	cr_assert_eq(st.snapshots_removed, 2);
	cr_assert_gt(st.packs_partial, 0, "snapshot 0's packs hold live and dead blobs");
	cr_assert_gt(st.bytes_partial_dead, 0);
	cr_assert_gt(st.packs_removed, 0, "snapshot 1's packs are dead");
	cr_assert(lines_has(&lines, "repacking is future work"));
	expect_clean(1);
	r = repo_open_ok(dir);
	{
		struct snap_manifest m;

		manifest_init(&m);
		cr_assert_eq(snap_load(r, ids[2], &m, err, sizeof(err)), 0, "%s", err);
		manifest_free(&m);
		cr_assert_eq(snap_load(r, ids[0], &m, err, sizeof(err)), -ENOENT);
	}
	repo_close(r);
}

Test(prune, retention_for_one_vm_leaves_the_others_alone)
{
	struct prune_policy p = { .keep_last = 1 };
	struct prune_stats st;

	snap(0, "a", 1);
	snap(1, "b", 2);
	snap(2, "a", 3);
	snap(3, "b", 4);
	run_prune(&p, "a", false, &st);
	cr_assert_eq(st.snapshots_removed, 1);
	cr_assert_eq(count_objects(dir, "snapshots"), 3);
	expect_clean(3);
}

Test(prune, an_unreadable_manifest_stops_the_sweep_before_anything_is_deleted)
{
	struct prune_policy p = { .keep_last = 1 };
	struct prune_stats st = { 0 };
	char path[512];
	unsigned packs;
	struct repo *r;

	snap(0, "vm", 1);
	snap(1, "vm", 2);
	snap(2, "vm", 3);
	packs = count_objects(dir, "data");
	snprintf(path, sizeof(path), "%s/snapshots/%s", dir, ids[1]);
	file_flip(path, 30, 0x40);
	r = repo_open_ok(dir);
	cr_assert_eq(prune_forget(r, &p, NULL, false, line, &lines, &st, err, sizeof(err)), 0,
		     "%s", err);
	cr_assert_eq(prune_sweep(r, false, PRUNE_GRACE_DEFAULT_S, line, &lines, &st, err, sizeof(err)), -EBADMSG);
	cr_assert(strstr(err, "nothing was deleted"), "%s", err);
	cr_assert(strstr(err, ids[1]), "%s", err);
	repo_close(r);
	cr_assert_eq(count_objects(dir, "data"), packs);
}

/* Set the modification time of path to hours ago (path, hours). */
static void age(const char *path, unsigned hours)
{
	struct timespec t[2] = { { .tv_sec = time(NULL) - (time_t)hours * 3600 },
				 { .tv_sec = time(NULL) - (time_t)hours * 3600 } };

	cr_assert_eq(utimensat(AT_FDCWD, path, t, 0), 0, "%s", path);
}

/* The verify notes of the repository now, into l. */
static void verify_notes(struct lines *l)
{
	struct repo *r = repo_open_ok(dir);
	struct repo_verify_result res;

	memset(l, 0, sizeof(*l));
	cr_assert_eq(repo_verify(r, 0, lines_collect, l, &res), 0);
	lines_print(l);
	repo_close(r);
}

Test(prune, unindexed_packs_and_partial_files_go_once_older_than_the_grace_period)
{
	struct prune_policy p = { .keep_last = 1 };
	struct prune_stats st;
	struct lines v;
	char pack[512], partial[512];
	char cmd[600];

	snap(0, "vm", 1);
	snap(1, "vm", 2);
	/* An interrupted snapshot's pack, in data/ and in no index, and a killed put's file. */
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s/data/ab'", dir);
	cr_assert_eq(system(cmd), 0);
	snprintf(pack, sizeof(pack), "%s/data/ab/ab%062d", dir, 0);
	file_write(pack, "garbage", 7);
	snprintf(partial, sizeof(partial), "%s/data/ab/ab%062d.0badf00d.partial", dir, 1);
	file_write(partial, "half a pack", 11);
	/* Young: a snapshot could still be writing them. Verify and prune agree. */
	verify_notes(&v);
	cr_assert(lines_has(&v, "prune removes it once it is 24 h old"));
	run_prune(&p, NULL, false, &st);
	cr_assert_eq(st.packs_unindexed, 1);
	cr_assert_eq(st.partials_removed, 0);
	cr_assert(file_exists(pack) && file_exists(partial));
	cr_assert(lines_has(&lines, "younger than the grace period"));
	/* A day later both go, and verify said so. */
	age(pack, 25);
	age(partial, 25);
	verify_notes(&v);
	cr_assert(lines_has(&v, "25 h old: the next prune removes it"));
	memset(&lines, 0, sizeof(lines));
	run_prune(&p, NULL, true, &st);
	cr_assert(file_exists(pack) && file_exists(partial), "a dry run deleted something");
	cr_assert(lines_has(&lines, "would delete data/ab/ab0000"));
	run_prune(&p, NULL, false, &st);
	cr_assert_eq(st.packs_unindexed, 0);
	cr_assert_eq(st.partials_removed, 1);
	cr_assert_not(file_exists(pack));
	cr_assert_not(file_exists(partial));
	expect_clean(1);
	verify_notes(&v);
	cr_assert_eq(v.n, 0, "verify still notes something");
}

Test(prune, an_unindexed_pack_a_snapshot_needs_is_kept_for_repair)
{
	struct prune_policy p = { .keep_last = 1 };
	struct prune_stats st;
	char path[512];
	unsigned packs;

	snap(0, "vm", 1);
	packs = count_objects(dir, "data");
	/* Its index file lost: the packs describe themselves, and a snapshot needs them. */
	first_object(dir, "index", path, sizeof(path));
	cr_assert_eq(unlink(path), 0);
	{
		char cmd[600];

		snprintf(cmd, sizeof(cmd), "find '%s/data' -type f -exec touch -d '-2 days' {} +", dir);
		cr_assert_eq(system(cmd), 0);
	}
	run_prune(&p, NULL, false, &st);
	cr_assert_eq(count_objects(dir, "data"), packs, "prune deleted what a snapshot needs");
	cr_assert(lines_has(&lines, "hold blobs snapshots need: kept; 'godwit images repair'"));
}

Test(prune, a_lost_pack_leaves_the_index_and_damaged_copies_keep_no_pack)
{
	struct prune_policy p = { .keep_last = 1 };
	struct prune_stats st;
	struct repo *r;
	struct snap_manifest m;
	char path[512];
	uint64_t marked;

	snap(0, "vm", 1);
	snap(1, "vm", 2);
	/* Snapshot 0's packs: one lost, and every blob of the others marked damaged. */
	r = repo_open_ok(dir);
	manifest_init(&m);
	cr_assert_eq(snap_load(r, ids[0], &m, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(repo_mark_damaged(r, m.regions[0].ids, m.regions[0].nchunks, &marked, err,
				       sizeof(err)), 0, "%s", err);
	cr_assert_gt(marked, 0);
	{
		struct repo_blob_info info;

		cr_assert_eq(repo_blob_info(r, &m.state_id, &info), 0);
		pack_name(&info.pack_id, path);
	}
	manifest_free(&m);
	repo_close(r);
	{
		char full[600];

		snprintf(full, sizeof(full), "%s/%s", dir, path);
		cr_assert_eq(unlink(full), 0);
	}
	cr_assert_eq(count_objects(dir, "damaged"), 1);
	run_prune(&(struct prune_policy){ .keep_last = 2 }, NULL, false, &st);
	cr_assert_eq(st.packs_missing, 1);
	cr_assert(lines_has(&lines, "drop missing pack"));
	/* Snapshot 0 keeps no pack alive with damaged copies alone; its list then goes. */
	cr_assert_gt(st.packs_removed, 0);
	cr_assert_eq(count_objects(dir, "damaged"), 0);
	memset(&lines, 0, sizeof(lines));
	run_prune(&p, NULL, false, &st);
	expect_clean(1);
}

Test(prune, works_the_same_on_an_encrypted_repository)
{
	struct prune_policy p = { .keep_last = 1 };
	struct prune_stats st = { 0 };
	struct repo_verify_result res;
	struct repo_key key;
	struct lines v = { 0 };
	char edir[64];
	struct repo *r;

	tmpdir_make(edir, sizeof(edir));
	test_key(&key, 3);
	cr_assert_eq(repo_init_keyed(edir, 0, 1u << 20, &key, err, sizeof(err)), 0, "%s", err);
	for (int i = 0; i < 3; i++) {
		uint8_t *data = xmalloc(RAM);
		struct snap_manifest m;

		r = repo_open_key_ok(edir, &key);
		fill_random(data, RAM, 50 + (uint64_t)i);
		manifest_fill(&m, r, data, RAM, 0, "vm");
		m.created_ns = at(2025, 7, 1 + i, 0);
		cr_assert_eq(snap_publish(r, &m, err, sizeof(err)), 0, "%s", err);
		manifest_free(&m);
		free(data);
		repo_close(r);
	}
	r = repo_open_key_ok(edir, &key);
	cr_assert_eq(prune_forget(r, &p, NULL, false, line, &lines, &st, err, sizeof(err)), 0,
		     "%s", err);
	cr_assert_eq(prune_sweep(r, false, PRUNE_GRACE_DEFAULT_S, line, &lines, &st, err,
				 sizeof(err)), 0, "%s", err);
	repo_close(r);
	cr_assert_eq(st.snapshots_removed, 2);
	cr_assert_gt(st.packs_removed, 0);
	r = repo_open_key_ok(edir, &key);
	cr_assert_eq(repo_verify(r, true, lines_collect, &v, &res), 0);
	lines_print(&v);
	cr_assert_eq(res.problems, 0);
	cr_assert_eq(res.snapshots, 1);
	repo_close(r);
	tmpdir_remove(edir);
}
