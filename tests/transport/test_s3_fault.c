/* Tests for the S3 client's retries and error paths, against a fault-injecting S3 started per test. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "s3_helpers.h"
#include "transport/s3.h"
#include "transport/tcp.h"
#include "util/clock.h"

/*
 * tests/s3/fault_server.py is a small in-memory S3 (path-style, no signature checks, but
 * it verifies x-amz-content-sha256 against the body) that applies --rule faults and logs
 * every request to a file, so each test can count what the client really sent. It needs
 * only python3's standard library; without any python3 the tests skip.
 */
static struct test_server srv;
static struct s3_client *cli;
static char dir[256], log_path[300];

static void setup(void)
{
	tmpdir_make(dir, sizeof(dir));
	snprintf(log_path, sizeof(log_path), "%s/requests.log", dir);
	cli = NULL;
	memset(&srv, 0, sizeof(srv));
}

static void teardown(void)
{
	s3_client_destroy(cli);
	server_stop(&srv);
	tmpdir_remove(dir);
}

TestSuite(s3_fault, .init = setup, .fini = teardown, .timeout = 120);

static void require_python(void)
{
	if (!fault_python())
		cr_skip_test("no python3 to run tests/s3/fault_server.py: install python3");
}

/* Start the server with rules (NULL-terminated) and a client for bucket "bkt" (tune may adjust). */
static void start(const char *const *rules, void (*tune)(struct s3_config *))
{
	const char *args[16];
	struct s3_config cfg;
	size_t n = 0;
	char err[256];

	require_python();
	for (; rules && *rules && n + 2 < 16; rules++) {
		args[n++] = "--rule";
		args[n++] = *rules;
	}
	cr_assert(fault_start(&srv, args, n, log_path), "fault_server.py did not start");
	s3_test_config(&cfg, &srv, "bkt");
	if (tune)
		tune(&cfg);
	cr_assert_eq(s3_client_create(&cli, &cfg, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(s3_bucket_create(cli), 0);
}

static const char *errmsg(void)
{
	static char m[S3_ERROR_MAX];

	s3_client_error(cli, m, sizeof(m));
	return m;
}

static struct s3_stats stats(void)
{
	struct s3_stats st;

	s3_client_stats(cli, &st);
	return st;
}

static void small_multipart(struct s3_config *cfg)
{
	cfg->multipart_threshold = 1 << 20;
	cfg->part_size = S3_PART_MIN;
	cfg->parallelism = 3;
}

Test(s3_fault, retries_503_with_backoff_then_succeeds)
{
	const char *rules[] = { "method=PUT,match=/bkt/k,action=503,count=2", NULL };
	void *back = NULL;
	size_t len;

	start(rules, NULL);
	cr_assert_eq(s3_put(cli, "k", "value", 5), 0, "%s", errmsg());
	cr_assert_eq(file_count_lines(log_path, "PUT /bkt/k 503"), 2);
	cr_assert_eq(file_count_lines(log_path, "PUT /bkt/k 200"), 1);
	cr_assert_eq(stats().retries, 2);
	cr_assert_eq(s3_get(cli, "k", 10, &back, &len), 0, "%s", errmsg());
	cr_assert_eq(len, 5);
	free(back);
}

Test(s3_fault, sequential_requests_reuse_one_connection)
{
	uint64_t size;

	start(NULL, NULL);
	for (int i = 0; i < 20; i++) {
		cr_assert_eq(s3_put(cli, "k", "value", 5), 0, "%s", errmsg());
		cr_assert_eq(s3_head(cli, "k", &size), 0, "%s", errmsg());
	}
	cr_assert_eq(stats().requests, 41);
	cr_assert_eq(stats().connects, 1, "connections opened: %llu",
		     (unsigned long long)stats().connects);
}

Test(s3_fault, retries_429_500_and_400_request_timeout)
{
	const char *rules[] = { "method=GET,action=429", "method=GET,skip=1,action=500",
				"method=GET,skip=2,action=400,code=RequestTimeout", NULL };
	void *back = NULL;
	size_t len;

	start(rules, NULL);
	cr_assert_eq(s3_put(cli, "k", "v", 1), 0);
	cr_assert_eq(s3_get(cli, "k", 10, &back, &len), 0, "%s", errmsg());
	free(back);
	cr_assert_eq(file_count_lines(log_path, "GET /bkt/k "), 4);
	cr_assert_eq(stats().retries, 3);
}

Test(s3_fault, client_errors_are_not_retried)
{
	const char *rules[] = { "method=PUT,match=/bkt/a,action=403", "method=PUT,match=/bkt/b,action=400",
				"method=GET,match=/bkt/c,action=409", NULL };
	void *back = NULL;
	size_t len;

	start(rules, NULL);
	cr_assert_eq(s3_put(cli, "a", "v", 1), -EACCES);
	cr_assert(strstr(errmsg(), "S3 refused the credentials (AccessDenied"), "%s", errmsg());
	cr_assert_eq(s3_put(cli, "b", "v", 1), -EINVAL);
	cr_assert(strstr(errmsg(), "InvalidArgument"), "%s", errmsg());
	cr_assert_eq(s3_get(cli, "c", 10, &back, &len), -ENOENT, "OperationAborted is retried, "
		     "and the second attempt gets NoSuchKey");
	cr_assert_eq(file_count_lines(log_path, "PUT /bkt/a "), 1);
	cr_assert_eq(file_count_lines(log_path, "PUT /bkt/b "), 1);
}

Test(s3_fault, error_codes_map_to_an_errno_and_a_message_with_the_fix)
{
	const char *rules[] = {
		"match=/bkt/region,action=400,code=AuthorizationHeaderMalformed,region=eu-west-1",
		"match=/bkt/expired,action=400,code=ExpiredToken",
		"match=/bkt/skew,action=403,code=RequestTimeTooSkewed",
		"match=/bkt/nobody,action=501",
		NULL,
	};

	start(rules, NULL);
	cr_assert_eq(s3_put(cli, "region", "v", 1), -EINVAL);
	cr_assert(strstr(errmsg(), "bucket bkt is in region eu-west-1, not us-east-1: set "
				   "AWS_REGION=eu-west-1"), "%s", errmsg());
	cr_assert_eq(s3_put(cli, "expired", "v", 1), -EACCES);
	cr_assert(strstr(errmsg(), "refresh AWS_SESSION_TOKEN"), "%s", errmsg());
	cr_assert_eq(s3_put(cli, "skew", "v", 1), -ETIME);
	cr_assert(strstr(errmsg(), "synchronise it (NTP)"), "%s", errmsg());
	cr_assert_eq(s3_put(cli, "nobody", "v", 1), -EOPNOTSUPP);
	cr_assert_eq(stats().retries, 0);
	cr_assert_eq(s3_put_ex(cli, "once", "v", 1, S3_PUT_IF_ABSENT), 0);
	cr_assert_eq(s3_put_ex(cli, "once", "v", 1, S3_PUT_IF_ABSENT), -EEXIST);
	cr_assert(strstr(errmsg(), "already exists"), "%s", errmsg());
}

Test(s3_fault, gives_up_after_max_retries_with_jittered_exponential_backoff)
{
	const char *rules[] = { "method=PUT,match=/bkt/k,action=503,count=0", NULL };
	long t0, ms;

	start(rules, NULL);
	/* s3_test_config: base 20 ms, max 200 ms, 3 retries: waits in [10,20]+[20,40]+[40,80]. */
	t0 = (long)clock_now_ms();
	cr_assert_eq(s3_put(cli, "k", "v", 1), -EAGAIN);
	ms = (long)clock_now_ms() - t0;
	cr_assert(strstr(errmsg(), "throttling"), "%s", errmsg());
	cr_assert(strstr(errmsg(), "s3://bkt/k"), "%s", errmsg());
	cr_assert_eq(file_count_lines(log_path, "PUT /bkt/k 503"), 4);
	cr_assert_geq(ms, 70, "backoff too short: %ld ms", ms);
	cr_assert_lt(ms, 5000, "backoff too long: %ld ms", ms);
}

Test(s3_fault, connection_reset_and_stall_are_retried)
{
	const char *rules[] = { "method=PUT,match=/bkt/k,action=reset", "method=GET,action=delay:3", NULL };
	void *back = NULL;
	size_t len;
	long t0;

	start(rules, NULL);
	cr_assert_eq(s3_put(cli, "k", "v", 1), 0, "%s", errmsg());
	cr_assert_eq(file_count_lines(log_path, "PUT /bkt/k -"), 1);
	s3_client_destroy(cli);
	{
		struct s3_config cfg;
		char err[256];

		s3_test_config(&cfg, &srv, "bkt");
		cfg.stall_timeout_ms = 1000;
		cr_assert_eq(s3_client_create(&cli, &cfg, err, sizeof(err)), 0, "%s", err);
	}
	t0 = (long)clock_now_ms();
	cr_assert_eq(s3_get(cli, "k", 10, &back, &len), 0, "%s", errmsg());
	cr_assert_geq((long)clock_now_ms() - t0, 900);
	cr_assert_eq(stats().retries, 1);
	free(back);
}

Test(s3_fault, connection_refused_names_the_endpoint)
{
	struct s3_config cfg;
	char err[512];
	uint16_t port;
	int fd;

	cr_assert_eq(tcp_listen(&fd, "127.0.0.1", "0"), 0);
	cr_assert_eq(tcp_local_port(fd, &port), 0);
	close(fd);
	snprintf(srv.endpoint, sizeof(srv.endpoint), "http://127.0.0.1:%u", port);
	s3_test_config(&cfg, &srv, "bkt");
	cr_assert_eq(s3_client_create(&cli, &cfg, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(s3_put(cli, "k", "v", 1), -ECONNREFUSED);
	snprintf(err, sizeof(err), "cannot reach the S3 endpoint http://127.0.0.1:%u", port);
	cr_assert(strstr(errmsg(), err), "%s", errmsg());
	cr_assert_eq(stats().requests, 4, "connection errors are retried");
}

Test(s3_fault, server_killed_mid_multipart_fails_cleanly_after_trying_to_abort)
{
	const char *rules[] = { "method=PUT,match=partNumber,skip=1,action=die", NULL };
	size_t n = (size_t)16 << 20;
	uint8_t *data = xmalloc(n);
	struct s3_stats st;
	int rc;

	start(rules, small_multipart);
	fill_random(data, n, 3);
	rc = s3_put(cli, "big", data, n);
	cr_assert(rc == -ECONNREFUSED || rc == -ECONNRESET, "rc %d: %s", rc, errmsg());
	cr_assert_eq(file_count_lines(log_path, " die"), 1);
	st = stats();
	cr_assert_eq(st.multipart_uploads, 1);
	cr_assert_eq(st.aborts, 1);
	cr_assert_eq(st.aborts_failed, 1);
	cr_assert(strstr(errmsg(), "aborting upload upload-1 failed too"), "%s", errmsg());
	cr_assert(strstr(errmsg(), "AbortIncompleteMultipartUpload"), "%s", errmsg());
	free(data);
}

Test(s3_fault, parts_upload_in_parallel)
{
	const char *rules[] = { "method=PUT,match=partNumber,action=delay:2,count=0", NULL };
	size_t n = (size_t)15 << 20;
	uint8_t *data = xmalloc(n);
	char line[512];
	int delaying = 0, answered_before_all_arrived = 0;
	FILE *f;

	start(rules, small_multipart);
	fill_random(data, n, 8);
	cr_assert_eq(s3_put(cli, "big", data, n), 0, "%s", errmsg());
	/*
	 * The server holds each part for 2 s and logs "delaying" when one arrives. Sent in
	 * parallel, all three arrive before the first is answered; sent one at a time, each
	 * answer comes before the next part arrives. No timing involved.
	 */
	f = fopen(log_path, "r");
	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f)) {
		if (!strstr(line, "partNumber="))
			continue;
		if (strstr(line, " delaying"))
			delaying++;
		else if (delaying < 3)
			answered_before_all_arrived++;
	}
	fclose(f);
	cr_assert_eq(delaying, 3);
	cr_assert_eq(answered_before_all_arrived, 0, "parts were not in flight together");
	free(data);
}

Test(s3_fault, a_failing_part_aborts_the_upload)
{
	const char *rules[] = { "method=PUT,match=partNumber=2&,action=403,count=0", NULL };
	size_t n = (size_t)12 << 20, len;
	uint8_t *data = xmalloc(n);
	void *back = NULL;

	start(rules, small_multipart);
	fill_random(data, n, 4);
	cr_assert_eq(s3_put(cli, "big", data, n), -EACCES);
	cr_assert(strstr(errmsg(), "the multipart upload was aborted"), "%s", errmsg());
	cr_assert_eq(file_count_lines(log_path, "DELETE /bkt/big?uploadId=upload-1 204"), 1);
	cr_assert_eq(stats().aborts, 1);
	cr_assert_eq(stats().aborts_failed, 0);
	cr_assert_eq(s3_get(cli, "big", n, &back, &len), -ENOENT, "nothing was published");
	free(data);
}

Test(s3_fault, multipart_retries_a_part_and_a_complete_that_failed_inside_a_200)
{
	const char *rules[] = { "method=PUT,match=partNumber=2&,action=503",
				"method=POST,match=uploadId,action=error200", NULL };
	size_t n = (size_t)12 << 20 | 12345, len;
	uint8_t *data = xmalloc(n);
	void *back = NULL;

	start(rules, small_multipart);
	fill_random(data, n, 5);
	cr_assert_eq(s3_put(cli, "big", data, n), 0, "%s", errmsg());
	cr_assert_eq(file_count_lines(log_path, "partNumber=2&uploadId=upload-1 503"), 1);
	cr_assert_eq(file_count_lines(log_path, "partNumber=2&uploadId=upload-1 200"), 1,
		     "the resent part had the right body hash");
	cr_assert_eq(file_count_lines(log_path, "POST /bkt/big?uploadId=upload-1 200"), 2);
	cr_assert_eq(s3_get(cli, "big", n, &back, &len), 0, "%s", errmsg());
	cr_assert_eq(len, n);
	cr_assert_eq(memcmp(back, data, n), 0);
	free(back);
	free(data);
}

Test(s3_fault, a_part_answer_without_etag_is_rejected)
{
	const char *rules[] = { "method=PUT,match=partNumber=1&,action=noetag", NULL };
	size_t n = (size_t)6 << 20;
	uint8_t *data = xmalloc(n);

	start(rules, small_multipart);
	fill_random(data, n, 6);
	cr_assert_eq(s3_put(cli, "big", data, n), -EBADMSG);
	cr_assert(strstr(errmsg(), "no valid ETag"), "%s", errmsg());
	cr_assert_eq(stats().aborts, 1);
	free(data);
}

Test(s3_fault, untrusted_range_answers_are_checked)
{
	const char *rules[] = { "method=GET,match=/bkt/k,action=badrange",
				"method=GET,match=/bkt/k,skip=1,action=fullbody", NULL };
	uint8_t data[1000], buf[100];

	start(rules, NULL);
	fill_random(data, sizeof(data), 7);
	cr_assert_eq(s3_put(cli, "k", data, sizeof(data)), 0);
	cr_assert_eq(s3_get_range(cli, "k", 10, sizeof(buf), buf), -EBADMSG);
	cr_assert(strstr(errmsg(), "asked for bytes 10-109"), "%s", errmsg());
	/* A server that ignores Range: the client skips to the offset and stops early. */
	cr_assert_eq(s3_get_range(cli, "k", 500, sizeof(buf), buf), 0, "%s", errmsg());
	cr_assert_eq(memcmp(buf, data + 500, sizeof(buf)), 0);
	cr_assert_eq(s3_get_range(cli, "k", 950, sizeof(buf), buf), -ERANGE);
	cr_assert_eq(s3_get_range(cli, "k", 1000, 1, buf), -ERANGE);
	cr_assert_eq(s3_get_range(cli, "k", UINT64_MAX, 2, buf), -EINVAL);
}

Test(s3_fault, a_claimed_huge_length_fails_before_reading)
{
	const char *rules[] = { "method=GET,action=hugelength", NULL };
	void *back = NULL;
	size_t len;

	start(rules, NULL);
	cr_assert_eq(s3_put(cli, "k", "small", 5), 0);
	cr_assert_eq(s3_get(cli, "k", 1 << 20, &back, &len), -EFBIG);
	cr_assert_eq(stats().retries, 0);
}

static int count_keys(void *arg, const char *key, uint64_t size)
{
	(void)key;
	(void)size;
	++*(int *)arg;
	return 0;
}

Test(s3_fault, a_repeating_continuation_token_is_malformed_not_a_loop)
{
	const char *rules[] = { "method=GET,match=list-type,action=loop-token,count=0", NULL };
	int n = 0;

	start(rules, NULL);
	cr_assert_eq(s3_put(cli, "a", "1", 1), 0);
	cr_assert_eq(s3_list(cli, "", count_keys, &n), -EBADMSG);
	cr_assert(strstr(errmsg(), "malformed listing"), "%s", errmsg());
}

static void pages_of_three(struct s3_config *cfg)
{
	cfg->list_page_keys = 3;
}

Test(s3_fault, keys_moto_cannot_take_round_trip_and_list_with_a_slash_prefix)
{
	static const char *const keys[] = {
		"a/b/one+two=three", "a/b/x:y,z@w%v$", "a/b/sp ace&amp;", "a/b/ü/日本",
		"a/b/~tilde.-_", "a/c/other",
	};
	void *back = NULL;
	size_t len;
	int n = 0;

	start(NULL, pages_of_three);
	for (size_t i = 0; i < 6; i++)
		cr_assert_eq(s3_put(cli, keys[i], keys[i], strlen(keys[i])), 0, "%s", errmsg());
	for (size_t i = 0; i < 6; i++) {
		cr_assert_eq(s3_get(cli, keys[i], 100, &back, &len), 0, "%s", errmsg());
		cr_assert_eq(len, strlen(keys[i]));
		cr_assert_eq(memcmp(back, keys[i], len), 0, "%s", keys[i]);
		free(back);
	}
	cr_assert_eq(s3_list(cli, "a/b/", count_keys, &n), 0, "%s", errmsg());
	cr_assert_eq(n, 5);
	cr_assert_eq(file_count_lines(log_path, "list-type=2"), 2);
}

Test(s3_fault, invalid_keys_are_refused_before_sending)
{
	char key[S3_KEY_MAX + 2];

	start(NULL, NULL);
	memset(key, 'k', sizeof(key) - 1);
	key[sizeof(key) - 1] = '\0';
	cr_assert_eq(s3_put(cli, key, "v", 1), -EINVAL);
	cr_assert_eq(s3_put(cli, "", "v", 1), -EINVAL);
	cr_assert_eq(s3_put(cli, "a\nb", "v", 1), -EINVAL);
	cr_assert(strstr(errmsg(), "invalid object key"), "%s", errmsg());
	cr_assert_eq(file_count_lines(log_path, "PUT /bkt/"), 0);
}

Test(s3_fault, https_with_a_private_ca_and_refusal_of_an_unknown_one)
{
	char ca_pem[320], other_pem[320], cert[320], key[320], err[256];
	const char *args[4];
	struct test_ca ca, other;
	struct s3_config cfg;
	void *back = NULL;
	size_t len;

	require_python();
	snprintf(ca_pem, sizeof(ca_pem), "%s/ca.pem", dir);
	snprintf(other_pem, sizeof(other_pem), "%s/other.pem", dir);
	snprintf(cert, sizeof(cert), "%s/leaf.pem", dir);
	snprintf(key, sizeof(key), "%s/leaf.key", dir);
	test_ca_create(&ca, "godwit test CA", ca_pem);
	test_ca_create(&other, "some other CA", other_pem);
	test_ca_issue(&ca, "s3.test", "s3.test", cert, key);
	args[0] = "--tls-cert";
	args[1] = cert;
	args[2] = "--tls-key";
	args[3] = key;
	cr_assert(fault_start(&srv, args, 4, log_path));
	snprintf(srv.endpoint, sizeof(srv.endpoint), "https://127.0.0.1:%u", srv.port);
	s3_test_config(&cfg, &srv, "bkt");
	snprintf(cfg.ca_file, sizeof(cfg.ca_file), "%s", ca_pem);
	cr_assert_eq(s3_client_create(&cli, &cfg, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(s3_bucket_create(cli), 0, "%s", errmsg());
	cr_assert_eq(s3_put(cli, "k", "over tls", 8), 0, "%s", errmsg());
	cr_assert_eq(s3_get(cli, "k", 100, &back, &len), 0, "%s", errmsg());
	cr_assert_eq(len, 8);
	free(back);
	cr_assert_eq(stats().connects, 1, "one TLS connection for all three requests");
	s3_client_destroy(cli);

	snprintf(cfg.ca_file, sizeof(cfg.ca_file), "%s", other_pem);
	cr_assert_eq(s3_client_create(&cli, &cfg, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(s3_put(cli, "k", "v", 1), -EPROTO);
	cr_assert(strstr(errmsg(), "certificate"), "%s", errmsg());
	cr_assert_eq(stats().requests, 1, "a certificate that does not verify is not retried");
	test_ca_free(&ca);
	test_ca_free(&other);
}

/* ---- Patience: minutes of retries, Retry-After, throttling, the budget ------------------ */

/* Collects the retry lines (thread-safe: parts and write-behind retry on other threads). */
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static char retry_log[8192];
static unsigned retry_lines;

static void log_retry(void *arg, const char *line)
{
	size_t n;

	(void)arg;
	pthread_mutex_lock(&log_mu);
	n = strlen(retry_log);
	snprintf(retry_log + n, sizeof(retry_log) - n, "%s\n", line);
	retry_lines++;
	pthread_mutex_unlock(&log_mu);
}

/* The defaults a real client has (minutes of retries), and the retry log. */
static void patient(struct s3_config *cfg)
{
	struct s3_config d;

	s3_config_init(&d);
	cfg->retry_base_ms = d.retry_base_ms;
	cfg->retry_max_ms = d.retry_max_ms;
	cfg->max_retries = d.max_retries;
	cfg->retry_budget_ms = d.retry_budget_ms;
	cfg->log = log_retry;
	retry_log[0] = '\0';
	retry_lines = 0;
}

Test(s3_fault, a_twenty_second_outage_is_waited_out_and_each_retry_logged, .timeout = 300)
{
	const char *rules[] = { "method=PUT,match=/bkt/k,action=outage:20", NULL };
	void *back = NULL;
	size_t len;

	start(rules, patient);
	cr_assert_eq(s3_put(cli, "k", "value", 5), 0, "%s", errmsg());
	/* It really was down: the server dropped attempts before one got through. */
	cr_assert_geq(file_count_lines(log_path, "PUT /bkt/k -"), 3);
	cr_assert_eq(file_count_lines(log_path, "PUT /bkt/k 200"), 1);
	cr_assert_eq(retry_lines, stats().retries, "one line per retry: %s", retry_log);
	cr_assert(strstr(retry_log, "s3: put s3://bkt/k: ") && strstr(retry_log, "; retry 1 in ") &&
		  strstr(retry_log, "s retry budget spent)"), "%s", retry_log);
	cr_assert_eq(s3_get(cli, "k", 10, &back, &len), 0, "%s", errmsg());
	free(back);
}

struct slow_put {
	int rc;
};

static void *put_thread(void *arg)
{
	struct slow_put *sp = arg;

	sp->rc = s3_put(cli, "slow", "v", 1);
	return NULL;
}

Test(s3_fault, slowdown_with_retry_after_holds_back_the_whole_client, .timeout = 120)
{
	const char *rules[] = { "method=PUT,match=/bkt/slow,action=503,code=SlowDown,retry-after=3",
				NULL };
	struct slow_put sp = { -1 };
	pthread_t t;
	uint64_t size;
	long t0, ms;

	start(rules, patient);
	cr_assert_eq(s3_put(cli, "other", "v", 1), 0, "%s", errmsg());
	t0 = (long)clock_now_ms();
	cr_assert_eq(pthread_create(&t, NULL, put_thread, &sp), 0);
	while (stats().throttled == 0)
		usleep(10000);
	/* Another request of the same client, on another thread, waits out the same slowdown. */
	ms = (long)clock_now_ms();
	cr_assert_eq(s3_head(cli, "other", &size), 0, "%s", errmsg());
	ms = (long)clock_now_ms() - ms;
	pthread_join(t, NULL);
	cr_assert_eq(sp.rc, 0, "%s", errmsg());
	cr_assert_geq(ms, 2000, "the HEAD did not wait for the slowdown: %ld ms", ms);
	cr_assert_geq((long)clock_now_ms() - t0, 3000, "Retry-After 3 was not honoured");
	cr_assert_eq(stats().throttled, 1);
	cr_assert(strstr(retry_log, "HTTP 503 SlowDown; retry 1 in 3.0 s") &&
		  strstr(retry_log, "as Retry-After asks"), "%s", retry_log);
}

Test(s3_fault, the_retry_budget_ends_the_retries_and_the_message_says_how_long, .timeout = 120)
{
	const char *rules[] = { "method=PUT,match=/bkt/k,action=outage:8", NULL };

	start(rules, patient);
	s3_client_set_retry_budget(cli, 1000);
	cr_assert_eq(s3_put(cli, "k", "v", 1), -ECONNRESET, "%s", errmsg());
	cr_assert(strstr(errmsg(), "attempts in 1 s") || strstr(errmsg(), "attempts in 0 s"),
		  "%s", errmsg());
	cr_assert_eq(file_count_lines(log_path, "PUT /bkt/k 200"), 0);
	/* A budget of 0 does not retry at all. */
	s3_client_set_retry_budget(cli, 0);
	cr_assert_lt(s3_put(cli, "k", "v", 1), 0);
	cr_assert(strstr(errmsg(), "1 attempts"), "%s", errmsg());
}

/* Set the client's cancel once the server holds the upload (arg: the flag). */
static void *cancel_when_held(void *arg)
{
	atomic_bool *flag = arg;

	while (file_count_lines(log_path, "delaying") == 0)
		usleep(20000);
	atomic_store(flag, true);
	return NULL;
}

/*
 * The client's cancel stops a transfer the server holds (no retry follows) and names
 * itself; later requests still get one attempt each, so a cleanup reaches a server that
 * answers, and one that does not is not retried.
 */
Test(s3_fault, the_clients_cancel_aborts_a_held_transfer_and_later_requests_try_once)
{
	static atomic_bool flag;
	const char *rules[] = { "method=PUT,match=/bkt/slow,action=delay:600,count=0", NULL };
	struct s3_config cfg;
	uint64_t requests;
	char err[256];
	pthread_t t;

	atomic_init(&flag, false);
	start(rules, NULL);
	s3_client_destroy(cli);
	s3_test_config(&cfg, &srv, "bkt");
	cfg.cancel = &flag;
	cr_assert_eq(s3_client_create(&cli, &cfg, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(pthread_create(&t, NULL, cancel_when_held, &flag), 0);
	cr_assert_eq(s3_put(cli, "slow", "v", 1), -ECANCELED, "%s", errmsg());
	pthread_join(t, NULL);
	cr_assert(strstr(errmsg(), "cancelled"), "%s", errmsg());
	cr_assert_eq(stats().retries, 0);
	/* Begun after the cancel: one attempt, which a server that answers completes. */
	cr_assert_eq(s3_put(cli, "other", "w", 1), 0, "%s", errmsg());
	cr_assert_eq(s3_delete(cli, "other"), 0, "%s", errmsg());
	/* And one that the server holds is given up after that one attempt. */
	requests = stats().requests;
	cr_assert_lt(s3_put(cli, "slow", "v", 1), 0);
	cr_assert_eq(stats().requests, requests + 1);
	cr_assert_eq(stats().retries, 0);
	cr_assert_eq(file_count_lines(log_path, "delaying"), 2);
}
