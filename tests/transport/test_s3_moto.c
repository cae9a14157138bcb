/* Tests for the S3 client against moto, a real S3 server that checks SigV4, started per test on loopback. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"
#include "s3_helpers.h"
#include "transport/s3.h"

/*
 * Each test gets its own moto (tests/s3/moto_server.py: an IAM user with an allow-all
 * policy, INITIAL_NO_AUTH_ACTION_COUNT=0, so every request's signature is checked) and a
 * client for bucket "godwit-test", created. Stock moto recomputes signatures over a
 * re-encoded URL, so it refuses correctly signed requests for keys with non-ASCII bytes
 * or any of !"$%&'()*+,:;<=>@[\]^`{|} (boto3 fails the same way), and for list prefixes
 * with '/'. Keys here stick to letters, digits, space and - _ . ~ /; the signer tests cover
 * the rest against botocore, and the fault-server tests round-trip them.
 */
static struct test_server srv;
static const char *skip_why;
static struct s3_client *cli;

static void setup(void)
{
	struct s3_config cfg;
	char err[256];

	skip_why = NULL;
	cli = NULL;
	if (!moto_start(&srv, &skip_why))
		return;
	s3_test_config(&cfg, &srv, "godwit-test");
	cr_assert_eq(s3_client_create(&cli, &cfg, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(s3_bucket_create(cli), 0);
}

static void teardown(void)
{
	s3_client_destroy(cli);
	server_stop(&srv);
}

TestSuite(s3_moto, .init = setup, .fini = teardown, .timeout = 180);

static void require_moto(void)
{
	if (skip_why)
		cr_skip_test("%s", skip_why);
}

static const char *errmsg(void)
{
	static char m[S3_ERROR_MAX];

	s3_client_error(cli, m, sizeof(m));
	return m;
}

Test(s3_moto, put_get_head_range_delete_round_trip)
{
	size_t n = 100000, len;
	uint8_t *data = xmalloc(n), part[5000];
	void *back = NULL;
	uint64_t size;

	require_moto();
	fill_random(data, n, 1);
	cr_assert_eq(s3_put(cli, "obj/one.bin", data, n), 0, "%s", errmsg());
	cr_assert_eq(s3_get(cli, "obj/one.bin", n, &back, &len), 0, "%s", errmsg());
	cr_assert_eq(len, n);
	cr_assert_eq(memcmp(back, data, n), 0);
	free(back);
	cr_assert_eq(s3_head(cli, "obj/one.bin", &size), 0, "%s", errmsg());
	cr_assert_eq(size, n);
	cr_assert_eq(s3_get_range(cli, "obj/one.bin", 1000, sizeof(part), part), 0, "%s", errmsg());
	cr_assert_eq(memcmp(part, data + 1000, sizeof(part)), 0);
	cr_assert_eq(s3_get_range(cli, "obj/one.bin", n - 1, 1, part), 0, "%s", errmsg());
	cr_assert_eq(part[0], data[n - 1]);
	cr_assert_eq(s3_get_range(cli, "obj/one.bin", n - 10, 20, part), -ERANGE);
	cr_assert_eq(s3_get_range(cli, "obj/one.bin", n, 1, part), -ERANGE);
	cr_assert(strstr(errmsg(), "past the end"), "%s", errmsg());
	cr_assert_eq(s3_delete(cli, "obj/one.bin"), 0, "%s", errmsg());
	cr_assert_eq(s3_head(cli, "obj/one.bin", &size), -ENOENT);
	cr_assert_eq(s3_get(cli, "obj/one.bin", n, &back, &len), -ENOENT);
	cr_assert(strstr(errmsg(), "s3://godwit-test/obj/one.bin"), "%s", errmsg());
	cr_assert_eq(s3_delete(cli, "obj/one.bin"), 0, "deleting a missing key succeeds");
	free(data);
}

Test(s3_moto, empty_object_and_a_key_with_spaces)
{
	static const char key[] = "dir/a key with  spaces-_.~.bin";
	void *back = NULL;
	size_t len = 99;
	uint64_t size = 99;

	require_moto();
	cr_assert_eq(s3_put(cli, "empty", "", 0), 0, "%s", errmsg());
	cr_assert_eq(s3_get(cli, "empty", 10, &back, &len), 0, "%s", errmsg());
	cr_assert_eq(len, 0);
	free(back);
	cr_assert_eq(s3_head(cli, "empty", &size), 0);
	cr_assert_eq(size, 0);
	cr_assert_eq(s3_put(cli, key, "hello", 5), 0, "%s", errmsg());
	cr_assert_eq(s3_get(cli, key, 10, &back, &len), 0, "%s", errmsg());
	cr_assert_eq(len, 5);
	cr_assert_eq(memcmp(back, "hello", 5), 0);
	free(back);
}

struct listed {
	char keys[64][32];
	uint64_t sizes[64];
	int n;
};

static int collect(void *arg, const char *key, uint64_t size)
{
	struct listed *l = arg;

	cr_assert_lt(l->n, 64);
	snprintf(l->keys[l->n], sizeof(l->keys[0]), "%s", key);
	l->sizes[l->n++] = size;
	return 0;
}

static int stop_at_third(void *arg, const char *key, uint64_t size)
{
	int *n = arg;

	(void)key;
	(void)size;
	return ++*n == 3 ? 42 : 0;
}

Test(s3_moto, list_follows_continuation_tokens_across_small_pages)
{
	struct s3_config cfg;
	struct s3_client *small = NULL;
	struct s3_stats st;
	struct listed l = { 0 };
	char key[32] = "", err[256];
	int stopped = 0;

	require_moto();
	for (int i = 0; i < 25; i++) {
		snprintf(key, sizeof(key), "list-%03d", i);
		/* i bytes of key[], zero-padded past the name: sizes 0..24 */
		cr_assert_eq(s3_put(cli, key, key, (size_t)i), 0, "%s", errmsg());
	}
	cr_assert_eq(s3_put(cli, "other", "x", 1), 0);
	cr_assert_eq(s3_put(cli, "lisz", "x", 1), 0);
	s3_test_config(&cfg, &srv, "godwit-test");
	cfg.list_page_keys = 7;
	cr_assert_eq(s3_client_create(&small, &cfg, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(s3_list(small, "list-", collect, &l), 0);
	cr_assert_eq(l.n, 25);
	for (int i = 0; i < 25; i++) {
		snprintf(key, sizeof(key), "list-%03d", i);
		cr_assert_str_eq(l.keys[i], key);
		cr_assert_eq(l.sizes[i], (uint64_t)i);
	}
	s3_client_stats(small, &st);
	cr_assert_eq(st.requests, 4, "25 keys in pages of 7 are 4 requests, got %llu",
		     (unsigned long long)st.requests);
	memset(&l, 0, sizeof(l));
	cr_assert_eq(s3_list(small, "", collect, &l), 0);
	cr_assert_eq(l.n, 27);
	memset(&l, 0, sizeof(l));
	cr_assert_eq(s3_list(small, "nothing-here", collect, &l), 0);
	cr_assert_eq(l.n, 0);
	cr_assert_eq(s3_list(small, "list-", stop_at_third, &stopped), 42);
	cr_assert_eq(stopped, 3);
	s3_client_destroy(small);
}

Test(s3_moto, multipart_upload_of_40_mib_in_parallel_parts)
{
	size_t n = (size_t)40 << 20, len;
	uint8_t *data = xmalloc(n), *span = xmalloc(1 << 20);
	void *back = NULL;
	struct s3_stats st;
	uint64_t size;

	require_moto();
	fill_random(data, n, 40);
	cr_assert_eq(s3_put(cli, "big/forty", data, n), 0, "%s", errmsg());
	s3_client_stats(cli, &st);
	cr_assert_eq(st.multipart_uploads, 1);
	cr_assert_eq(st.aborts, 0);
	cr_assert_eq(s3_head(cli, "big/forty", &size), 0);
	cr_assert_eq(size, n);
	cr_assert_eq(s3_get(cli, "big/forty", n, &back, &len), 0, "%s", errmsg());
	cr_assert_eq(len, n);
	cr_assert_eq(memcmp(back, data, n), 0);
	free(back);
	/* A range across the boundary of parts 1 and 2 (8 MiB each). */
	cr_assert_eq(s3_get_range(cli, "big/forty", ((size_t)8 << 20) - 4096, 1 << 20, span), 0);
	cr_assert_eq(memcmp(span, data + ((size_t)8 << 20) - 4096, 1 << 20), 0);
	free(span);
	free(data);
}

Test(s3_moto, get_of_an_object_over_the_limit_fails_efbig)
{
	size_t n = 1 << 20, len;
	uint8_t *data = xmalloc(n);
	void *back = NULL;

	require_moto();
	fill_random(data, n, 2);
	cr_assert_eq(s3_put(cli, "limit", data, n), 0);
	cr_assert_eq(s3_get(cli, "limit", n - 1, &back, &len), -EFBIG);
	cr_assert(strstr(errmsg(), "larger than the limit"), "%s", errmsg());
	cr_assert_eq(s3_get(cli, "limit", n, &back, &len), 0);
	free(back);
	free(data);
}

Test(s3_moto, wrong_secret_key_is_a_credentials_error_without_retries)
{
	struct s3_config cfg;
	struct s3_client *bad = NULL;
	struct s3_stats st;
	char err[256];

	require_moto();
	s3_test_config(&cfg, &srv, "godwit-test");
	snprintf(cfg.secret_key, sizeof(cfg.secret_key), "not-the-secret");
	cr_assert_eq(s3_client_create(&bad, &cfg, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(s3_put(bad, "k", "v", 1), -EACCES);
	s3_client_error(bad, err, sizeof(err));
	cr_assert(strstr(err, "S3 refused the credentials (SignatureDoesNotMatch"), "%s", err);
	cr_assert(strstr(err, "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the profile"), "%s", err);
	s3_client_stats(bad, &st);
	cr_assert_eq(st.requests, 1, "4xx must not be retried");
	s3_client_destroy(bad);

	snprintf(cfg.access_key, sizeof(cfg.access_key), "AKIANOSUCHKEY000000");
	cr_assert_eq(s3_client_create(&bad, &cfg, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(s3_head(bad, "k", &(uint64_t){ 0 }), -EACCES);
	cr_assert_eq(s3_get(bad, "k", 10, &(void *){ NULL }, &(size_t){ 0 }), -EACCES);
	s3_client_error(bad, err, sizeof(err));
	cr_assert(strstr(err, "InvalidAccessKeyId"), "%s", err);
	s3_client_destroy(bad);
}

Test(s3_moto, missing_bucket_names_the_bucket_and_the_fix)
{
	struct s3_config cfg;
	struct s3_client *c = NULL;
	char err[256];
	int n = 0;

	require_moto();
	s3_test_config(&cfg, &srv, "no-such-bucket");
	cr_assert_eq(s3_client_create(&c, &cfg, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(s3_put(c, "k", "v", 1), -ENXIO);
	s3_client_error(c, err, sizeof(err));
	cr_assert(strstr(err, "bucket no-such-bucket does not exist: create it or fix --repo"), "%s",
		  err);
	cr_assert_eq(s3_list(c, "", stop_at_third, &n), -ENXIO);
	cr_assert_eq(s3_get(c, "k", 10, &(void *){ NULL }, &(size_t){ 0 }), -ENXIO);
	s3_client_destroy(c);
}

Test(s3_moto, put_if_absent_refuses_an_existing_key)
{
	require_moto();
	cr_assert_eq(s3_put_ex(cli, "once", "first", 5, S3_PUT_IF_ABSENT), 0, "%s", errmsg());
	cr_assert_eq(s3_put_ex(cli, "once", "second", 6, S3_PUT_IF_ABSENT), -EEXIST);
	cr_assert_eq(s3_put(cli, "once", "third", 5), 0, "a plain put replaces");
}

Test(s3_moto, multipart_put_if_absent_refuses_an_existing_key_and_aborts)
{
	size_t n = (size_t)20 << 20;
	uint8_t *data = xmalloc(n);
	struct s3_stats st;

	require_moto();
	fill_random(data, n, 11);
	cr_assert_eq(s3_put_ex(cli, "once-big", data, n, S3_PUT_IF_ABSENT), 0, "%s", errmsg());
	cr_assert_eq(s3_put_ex(cli, "once-big", data, n, S3_PUT_IF_ABSENT), -EEXIST, "%s", errmsg());
	cr_assert(strstr(errmsg(), "already exists"), "%s", errmsg());
	cr_assert(strstr(errmsg(), "the multipart upload was aborted"), "%s", errmsg());
	s3_client_stats(cli, &st);
	cr_assert_eq(st.multipart_uploads, 2);
	cr_assert_eq(st.aborts, 1);
	free(data);
}

Test(s3_moto, bucket_create_is_idempotent)
{
	require_moto();
	cr_assert_eq(s3_bucket_create(cli), 0, "%s", errmsg());
}

struct worker {
	int id;
	int rc;
};

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	uint8_t data[20000], back[20000];
	char key[32];

	snprintf(key, sizeof(key), "thread-%d", w->id);
	fill_random(data, sizeof(data), (uint64_t)w->id);
	for (int i = 0; i < 5 && w->rc == 0; i++) {
		w->rc = s3_put(cli, key, data, sizeof(data));
		if (w->rc == 0)
			w->rc = s3_get_range(cli, key, 0, sizeof(back), back);
		if (w->rc == 0 && memcmp(data, back, sizeof(data)) != 0)
			w->rc = -EBADMSG;
	}
	return NULL;
}

Test(s3_moto, one_client_serves_several_threads)
{
	struct worker w[6];
	struct test_thread th[6];

	require_moto();
	for (int i = 0; i < 6; i++) {
		w[i] = (struct worker){ .id = i };
		thread_start(&th[i], worker_run, &w[i]);
	}
	for (int i = 0; i < 6; i++) {
		thread_join(&th[i]);
		cr_assert_eq(w[i].rc, 0, "thread %d: %s", i, errmsg());
	}
}

struct big_put {
	const uint8_t *data;
	size_t len;
	int rc;
};

static void *big_put_run(void *arg)
{
	struct big_put *p = arg;

	p->rc = s3_put(cli, "big/killed", p->data, p->len);
	return NULL;
}

Test(s3_moto, server_killed_mid_multipart_is_a_clean_error_after_an_abort_attempt)
{
	struct big_put p = { .len = (size_t)40 << 20 };
	uint8_t *data = xmalloc(p.len);
	struct test_thread th;
	struct s3_stats st;
	long waited = 0;

	require_moto();
	fill_random(data, p.len, 9);
	p.data = data;
	thread_start(&th, big_put_run, &p);
	/* Once a part is on its way (requests: create, then parts), crash the server. */
	do {
		usleep(1000);
		s3_client_stats(cli, &st);
	} while (st.requests < 3 && ++waited < 20000);
	server_kill(&srv);
	thread_join(&th);
	cr_assert(p.rc == -ECONNRESET || p.rc == -ECONNREFUSED, "rc %d: %s", p.rc, errmsg());
	s3_client_stats(cli, &st);
	cr_assert_eq(st.multipart_uploads, 1);
	cr_assert_eq(st.aborts, 1, "an abort was attempted");
	cr_assert_eq(st.aborts_failed, 1);
	cr_assert(strstr(errmsg(), "cannot reach the S3 endpoint"), "%s", errmsg());
	cr_assert(strstr(errmsg(), "failed too"), "%s", errmsg());
	free(data);
}
