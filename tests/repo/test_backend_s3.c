/*
 * Tests for the S3 backend and repositories on S3, against moto (SigV4 checked) and the
 * fault-injecting server, each started per test on loopback (tests/s3/README.md).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"
#include "s3_helpers.h"
#include "repo/backend.h"
#include "repo/lock.h"
#include "repo/manifest.h"
#include "repo/prune.h"
#include "repo/repo.h"
#include "repo/verify.h"
#include "transport/s3.h"

#define BUCKET "godwit-test"
#define RAM (1u << 20)

static struct test_server srv;
static const char *skip_why;
static struct s3_client *cli; /* the test's own view of the bucket */
static char err[1024], local[64];

static void client_for(const struct test_server *s)
{
	char e[256];

	cr_assert_eq(s3_test_client(&cli, s, BUCKET, e, sizeof(e)), 0, "%s", e);
}

static void setup(void)
{
	skip_why = NULL;
	cli = NULL;
	local[0] = '\0';
	if (!moto_start(&srv, &skip_why))
		return;
	s3_test_env(&srv);
	client_for(&srv);
}

static void teardown(void)
{
	s3_client_destroy(cli);
	server_stop(&srv);
	if (local[0])
		tmpdir_remove(local);
}

TestSuite(backend_s3, .init = setup, .fini = teardown, .timeout = 300);

static void require_moto(void)
{
	if (skip_why)
		cr_skip_test("%s", skip_why);
}

/* ---- The backend contract --------------------------------------------------------------- */

struct names {
	char v[64][BACKEND_NAME_MAX + 1];
	unsigned n;
};

static int collect(void *arg, const char *name, uint64_t bytes)
{
	struct names *l = arg;

	(void)bytes;
	cr_assert_lt(l->n, 64);
	snprintf(l->v[l->n++], sizeof(l->v[0]), "%s", name);
	return 0;
}

static bool has(const struct names *l, const char *name)
{
	for (unsigned i = 0; i < l->n; i++)
		if (!strcmp(l->v[i], name))
			return true;
	return false;
}

Test(backend_s3, keeps_the_backend_contract_under_its_prefix)
{
	struct backend *be;
	uint8_t data[3000], back[100], *all;
	struct names l = { 0 };
	uint64_t size;
	size_t len;

	require_moto();
	fill_random(data, sizeof(data), 3);
	cr_assert_eq(s3_put(cli, "elsewhere/data/x", "x", 1), 0);
	cr_assert_eq(backend_s3_open(&be, "s3://" BUCKET "/pre/fix/", NULL, 0, err, sizeof(err)), 0,
		     "%s", err);
	cr_assert_str_eq(be->location, "s3://" BUCKET "/pre/fix/");
	cr_assert_eq(backend_put(be, "data/ab/one", data, sizeof(data)), 0);
	cr_assert_eq(backend_put(be, "data/ab/one", data, 10), -EEXIST, "write-once");
	cr_assert_eq(backend_put(be, "index/two", data, 100), 0);
	cr_assert_eq(backend_put(be, "config", data, 0), 0);
	cr_assert_eq(backend_stat(be, "data/ab/one", &size), 0);
	cr_assert_eq(size, sizeof(data));
	cr_assert_eq(backend_stat(be, "nothing", &size), -ENOENT);
	cr_assert_eq(backend_get(be, "data/ab/one", 1000, back, sizeof(back)), 0);
	cr_assert_eq(memcmp(back, data + 1000, sizeof(back)), 0);
	cr_assert_eq(backend_get(be, "data/ab/one", 2950, back, sizeof(back)), -EPROTO);
	cr_assert_eq(backend_get(be, "config", 0, back, 0), 0);
	cr_assert_eq(backend_get_all(be, "data/ab/one", 100, &all, &len), -EMSGSIZE);
	cr_assert_eq(backend_get_all(be, "data/ab/one", 1 << 20, &all, &len), 0);
	cr_assert_eq(len, sizeof(data));
	cr_assert_eq(memcmp(all, data, len), 0);
	free(all);
	cr_assert_eq(backend_get_all(be, "nothing", 100, &all, &len), -ENOENT);
	cr_assert_eq(backend_put(be, "x.partial", data, 1), -EINVAL);
	/* Listed by name relative to the prefix, never another prefix's objects. */
	cr_assert_eq(backend_list(be, "", collect, &l), 0);
	cr_assert_eq(l.n, 3);
	cr_assert(has(&l, "data/ab/one") && has(&l, "index/two") && has(&l, "config"));
	l.n = 0;
	cr_assert_eq(backend_list(be, "data/", collect, &l), 0);
	cr_assert_eq(l.n, 1);
	cr_assert_str_eq(l.v[0], "data/ab/one");
	cr_assert_eq(backend_remove(be, "data/ab/one"), 0);
	cr_assert_eq(backend_stat(be, "data/ab/one", &size), -ENOENT);
	cr_assert_eq(backend_remove(be, "data/ab/one"), 0, "S3 deletes of a missing key succeed");
	backend_close(be);
}

/* ---- Repositories on S3 ---------------------------------------------------------------- */

/* Publish a snapshot of RAM from seed into location (location, seed, vm, id). */
static void publish(const char *location, uint64_t seed, const char *vm, char id[SNAP_ID_BYTES])
{
	uint8_t *data = xmalloc(RAM);
	struct snap_manifest m;
	struct repo *r;

	cr_assert_eq(repo_open(&r, location, err, sizeof(err)), 0, "%s", err);
	fill_guestlike(data, RAM, seed);
	manifest_fill(&m, r, data, RAM, 0, vm);
	cr_assert_eq(snap_publish(r, &m, err, sizeof(err)), 0, "%s", err);
	if (id)
		snprintf(id, SNAP_ID_BYTES, "%s", m.id);
	manifest_free(&m);
	repo_close(r);
	free(data);
}

struct keys {
	char v[256][200];
	unsigned n;
};

static int key_add(void *arg, const char *key, uint64_t size)
{
	struct keys *k = arg;

	(void)size;
	cr_assert_lt(k->n, 256);
	snprintf(k->v[k->n++], sizeof(k->v[0]), "%s", key);
	return 0;
}

static void verify(const char *location, bool read_data, struct lines *l,
		   struct repo_verify_result *res)
{
	struct repo *r;

	memset(l, 0, sizeof(*l));
	cr_assert_eq(repo_open(&r, location, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(repo_verify(r, read_data, lines_collect, l, res), 0);
	lines_print(l);
	repo_close(r);
}

Test(backend_s3, a_repository_on_s3_has_the_local_layout_and_verifies)
{
	struct repo_verify_result res;
	struct lines l;
	struct keys k = { 0 };
	char path[300];

	require_moto();
	cr_assert_eq(repo_init("s3://" BUCKET "/repo", 0, 0, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(repo_init("s3://" BUCKET "/repo", 0, 0, err, sizeof(err)), -EEXIST);
	cr_assert(strstr(err, "already a godwit repository"), "%s", err);
	publish("s3://" BUCKET "/repo", 1, "vm", NULL);
	publish("s3://" BUCKET "/repo", 2, "vm", NULL);
	verify("s3://" BUCKET "/repo", true, &l, &res);
	cr_assert_eq(res.problems, 0);
	cr_assert_eq(res.snapshots, 2);
	cr_assert_gt(res.blobs_read, 0);
	/* The same puts into a local repository give the same pack and index names. */
	tmpdir_make(local, sizeof(local));
	cr_assert_eq(repo_init(local, 0, 0, err, sizeof(err)), 0, "%s", err);
	publish(local, 1, "vm", NULL);
	publish(local, 2, "vm", NULL);
	cr_assert_eq(s3_list(cli, "repo/", key_add, &k), 0);
	cr_assert_eq(k.n, 1 + count_objects(local, "data") + count_objects(local, "index") +
		     count_objects(local, "snapshots"));
	for (unsigned i = 0; i < k.n; i++) {
		const char *name = k.v[i] + strlen("repo/");

		if (!strncmp(name, "snapshots/", 10) || !strcmp(name, "config"))
			continue; /* random ids */
		snprintf(path, sizeof(path), "%s/%s", local, name);
		cr_assert(file_exists(path), "%s is on S3 but not in the local repository", name);
	}
}

static void expect_open_fails(const char *location, int code, const char *needle)
{
	struct repo *r = NULL;
	int rc = repo_open(&r, location, err, sizeof(err));

	cr_assert_eq(rc, code, "repo_open: %d (%s), not %d", rc, err, code);
	cr_assert(strstr(err, needle), "'%s' not in: %s", needle, err);
	cr_assert_null(strchr(err, '\n'), "not one line: %s", err);
}

Test(backend_s3, wrong_credentials_a_missing_bucket_and_no_server_are_one_clear_line)
{
	require_moto();
	cr_assert_eq(repo_init("s3://" BUCKET "/repo", 0, 0, err, sizeof(err)), 0, "%s", err);
	expect_open_fails("s3://" BUCKET "/other", -ENOENT, "not a godwit repository");
	expect_open_fails("s3://no-such-bucket/repo", -ENXIO,
			  "bucket no-such-bucket does not exist");
	setenv("AWS_SECRET_ACCESS_KEY", "wrong", 1);
	expect_open_fails("s3://" BUCKET "/repo", -EACCES, "S3 refused the credentials");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	unsetenv("AWS_ACCESS_KEY_ID");
	expect_open_fails("s3://" BUCKET "/repo", -ENOKEY, "AWS_ACCESS_KEY_ID");
	s3_test_env(&srv);
	setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1", 1);
	expect_open_fails("s3://" BUCKET "/repo", -ECONNREFUSED, "cannot reach the S3 endpoint");
	/* An explicit endpoint wins over the environment's. */
	{
		struct repo *r;

		struct backend_s3_opts o = { .endpoint = srv.endpoint, .retry_s = -1 };

		cr_assert_eq(repo_open_ex(&r, "s3://" BUCKET "/repo", &o, NULL, err, sizeof(err)), 0,
			     "%s", err);
		repo_close(r);
	}
	expect_open_fails("s3://", -EINVAL, "name a bucket");
	expect_open_fails("s3://" BUCKET "/a//b", -EINVAL, "prefix");
}

/* The key of the first pack under repo/data/ (out). */
static void first_pack_key(char *out, size_t len, unsigned nth)
{
	struct keys k = { 0 };

	cr_assert_eq(s3_list(cli, "repo/data/", key_add, &k), 0);
	cr_assert_gt(k.n, nth);
	snprintf(out, len, "%s", k.v[nth]);
}

Test(backend_s3, verify_on_s3_finds_a_deleted_and_an_overwritten_pack)
{
	struct repo_verify_result res;
	struct lines l;
	char key[300], key2[300];
	void *saved;
	size_t saved_len;
	uint8_t junk[4096];

	require_moto();
	cr_assert_eq(repo_init("s3://" BUCKET "/repo", 0, 1u << 20, err, sizeof(err)), 0, "%s",
		     err);
	publish("s3://" BUCKET "/repo", 1, "vm", NULL);
	publish("s3://" BUCKET "/repo", 2, "vm", NULL);
	first_pack_key(key, sizeof(key), 0);
	first_pack_key(key2, sizeof(key2), 1);
	/* Deleted: found by names and sizes alone. */
	cr_assert_eq(s3_get(cli, key, 1 << 30, &saved, &saved_len), 0);
	cr_assert_eq(s3_delete(cli, key), 0);
	verify("s3://" BUCKET "/repo", false, &l, &res);
	cr_assert_gt(res.problems, 0);
	cr_assert(lines_has(&l, "missing"));
	cr_assert_eq(s3_put(cli, key, saved, saved_len), 0);
	free(saved);
	verify("s3://" BUCKET "/repo", true, &l, &res);
	cr_assert_eq(res.problems, 0);
	/* Overwritten in place with the same size: only reading the data finds it. */
	cr_assert_eq(s3_get(cli, key2, 1 << 30, &saved, &saved_len), 0);
	fill_random(junk, sizeof(junk), 9);
	memcpy((uint8_t *)saved + 100, junk, sizeof(junk));
	cr_assert_eq(s3_put(cli, key2, saved, saved_len), 0);
	free(saved);
	verify("s3://" BUCKET "/repo", false, &l, &res);
	cr_assert_eq(res.problems, 0, "sizes match: a cheap verify sees nothing");
	verify("s3://" BUCKET "/repo", true, &l, &res);
	cr_assert_gt(res.problems, 0);
	cr_assert(lines_has(&l, "checksum mismatch"));
}

static void quiet(void *arg, const char *line)
{
	(void)arg;
	fprintf(stderr, "%s\n", line);
}

Test(backend_s3, locks_and_prune_work_on_s3)
{
	struct repo_lock_opts o = { 0 };
	struct prune_policy p = { .keep_last = 1 };
	struct prune_stats st = { 0 };
	struct repo_verify_result res;
	struct repo_lock *a, *b = NULL, *pl;
	struct lines l;
	struct repo *r;
	char keep[SNAP_ID_BYTES];

	require_moto();
	cr_assert_eq(repo_init("s3://" BUCKET "/repo", 0, 1u << 20, err, sizeof(err)), 0, "%s",
		     err);
	publish("s3://" BUCKET "/repo", 1, "vm", NULL);
	publish("s3://" BUCKET "/repo", 2, "vm", NULL);
	publish("s3://" BUCKET "/repo", 3, "vm", keep);
	cr_assert_eq(repo_open(&r, "s3://" BUCKET "/repo", err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(repo_lock_acquire(&a, r, REPO_LOCK_BACKUP, "vm", &o, err, sizeof(err)), 0,
		     "%s", err);
	cr_assert_eq(repo_lock_acquire(&b, r, REPO_LOCK_BACKUP, "vm", &o, err, sizeof(err)),
		     -EBUSY);
	o.own = a;
	cr_assert_eq(repo_lock_acquire(&pl, r, REPO_LOCK_PRUNE, NULL, &o, err, sizeof(err)), 0,
		     "%s", err);
	cr_assert_eq(prune_forget(r, &p, "vm", false, quiet, NULL, &st, err, sizeof(err)), 0,
		     "%s", err);
	cr_assert_eq(prune_sweep(r, false, PRUNE_GRACE_DEFAULT_S, quiet, NULL, &st, err, sizeof(err)), 0, "%s", err);
	repo_lock_release(pl);
	repo_lock_release(a);
	repo_close(r);
	cr_assert_eq(st.snapshots_removed, 2);
	cr_assert_gt(st.packs_removed, 0);
	verify("s3://" BUCKET "/repo", true, &l, &res);
	cr_assert_eq(res.problems, 0);
	cr_assert_eq(res.snapshots, 1);
	{
		struct keys k = { 0 };

		cr_assert_eq(s3_list(cli, "repo/locks/", key_add, &k), 0);
		cr_assert_eq(k.n, 0, "a lock was left: %s", k.v[0]);
	}
}

/* ---- An outage in the middle of an upload ------------------------------------------------ */

static struct test_server fs;

static void fault_setup(void)
{
	memset(&fs, 0, sizeof(fs));
	cli = NULL;
}

static void fault_teardown(void)
{
	s3_client_destroy(cli);
	server_stop(&fs);
}

TestSuite(backend_s3_fault, .init = fault_setup, .fini = fault_teardown, .timeout = 300);

static void arm(const struct test_server *s, const char *rule)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "curl -fsS -X POST --data '%s' %s/_fault/rules", rule,
		 s->endpoint);
	cr_assert_eq(system(cmd), 0, "%s", cmd);
}

Test(backend_s3_fault, a_server_down_mid_upload_fails_the_snapshot_and_loses_nothing)
{
	struct repo_verify_result res;
	struct snap_manifest m;
	struct lines l;
	uint8_t *data;
	struct repo *r;
	int rc = 0;

	if (!fault_python())
		cr_skip_test("no python3 for fault_server.py");
	cr_assert(fault_start(&fs, NULL, 0, NULL));
	s3_test_env(&fs);
	client_for(&fs);
	cr_assert_eq(repo_init("s3://" BUCKET "/repo", 0, 1u << 20, err, sizeof(err)), 0, "%s",
		     err);
	publish("s3://" BUCKET "/repo", 1, "vm", NULL);
	/* The next pack upload takes the server down for 8 s: longer than a 2 s budget. */
	arm(&fs, "method=PUT,match=/data/,action=outage:8");
	data = xmalloc(4 * RAM);
	fill_random(data, 4 * RAM, 2);
	cr_assert_eq(repo_open_ex(&r, "s3://" BUCKET "/repo", &(struct backend_s3_opts){
					  .retry_s = 2 }, NULL, err, sizeof(err)), 0, "%s", err);
	manifest_init(&m);
	snprintf(m.vm_name, sizeof(m.vm_name), "vm");
	m.ncpus = 1;
	cr_assert_eq(manifest_add_region(&m, 0, 4 * RAM, 64 << 10), 0);
	for (uint64_t i = 0; rc == 0 && i < m.regions[0].nchunks; i++)
		rc = repo_chunk_put(r, data + i * (64 << 10), 64 << 10, &m.regions[0].ids[i]);
	if (rc == 0)
		rc = repo_blob_put(r, BLOB_T_STATE, "s", 1, &m.state_id);
	if (rc == 0)
		rc = snap_publish(r, &m, err, sizeof(err));
	cr_assert_lt(rc, 0, "the snapshot went through an outage");
	manifest_free(&m);
	repo_close(r);
	free(data);
	sleep(8);
	/* The server is back with every object: the first snapshot is whole. */
	verify("s3://" BUCKET "/repo", true, &l, &res);
	cr_assert_eq(res.problems, 0);
	cr_assert_eq(res.snapshots, 1);
	publish("s3://" BUCKET "/repo", 3, "vm", NULL);
	verify("s3://" BUCKET "/repo", true, &l, &res);
	cr_assert_eq(res.problems, 0);
	cr_assert_eq(res.snapshots, 2);
}
