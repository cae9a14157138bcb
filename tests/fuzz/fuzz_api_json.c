/* Fuzz the control API's JSON reader (cli/json.c): requests, replies, integers and quoting. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/json.h"
#include "cli/mig_stats.h"
#include "migrate/migrate.h"
#include "tests/fuzz/fuzz.h"

/*
 * Input: one line as the API server hands it to json_parse_obj (a request) and as the
 * CLI hands a reply to json_parse_reply. For a request that parses, every member is read
 * the way handlers read them (json_get, json_get_str, json_get_u64), and every string
 * must survive json_quote and parsing back unchanged: what a reply quotes, a client reads.
 */

static void check_quote_round_trip(const char *s)
{
	char q[JSON_MAX_STR * 6 + 3], doc[sizeof(q) + 16], err[128];
	struct json_obj o;
	const char *back;

	json_quote(q, sizeof(q), s);
	if (strlen(q) + 8 >= sizeof(q))
		return; /* truncated on purpose: json_quote keeps within its buffer */
	snprintf(doc, sizeof(doc), "{\"k\":%s}", q);
	if (json_parse_obj(doc, strlen(doc), &o, err, sizeof(err)) < 0)
		abort(); /* we quoted something our own reader refuses */
	back = json_get_str(&o, "k");
	if (!back || strcmp(back, s) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct json_obj o;
	const char *text = (const char *)data;
	char err[128];
	bool ok = false;

	if (json_parse_obj(text, size, &o, err, sizeof(err)) == 0) {
		for (unsigned i = 0; i < o.n; i++) {
			const struct json_member *m = json_get(&o, o.m[i].key);
			uint64_t v;

			if (!m)
				abort(); /* a member we parsed must be found by its key */
			json_get_str(&o, m->key);
			json_get_u64(&o, m->key, UINT64_MAX, &v);
			json_get_u64(&o, m->key, 1000, &v);
			if (o.m[i].type == JSON_T_STRING)
				check_quote_round_trip(o.m[i].str);
		}
		ok = true;
	}
	if (json_parse_reply(text, size, &o, err, sizeof(err)) == 0)
		ok = true;
	if (ok)
		fuzz_accepted++;
	return 0;
}

int fuzz_write_seeds(const char *dir)
{
	static const char *const requests[] = {
		"{\"cmd\":\"status\"}",
		"{\"cmd\":\"migrate\",\"to\":\"10.0.0.2:7070\",\"psk_file\":\"/etc/godwit/psk\","
		"\"downtime_ms\":50,\"max_bandwidth\":0,\"timeout_ms\":600000,"
		"\"with_disk\":false,\"insecure_plaintext\":false,\"compress\":\"2\"}",
		"{\"cmd\":\"snapshot\",\"repo\":\"s3://bkt/p\",\"name\":\"vm \\\"1\\\"\\u0041\","
		"\"key_file\":\"/k\",\"max_rounds\":8,\"no_live\":true,\"min_bytes\":null,"
		"\"endpoint\":\"http://127.0.0.1:9000\"}",
		" { \"cmd\" : \"migrate-cancel\" , \"x\" : -12.5e-1 } ",
	};
	struct mig_stats st;
	char name[32], reply[8192];
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < sizeof(requests) / sizeof(requests[0]); i++) {
		snprintf(name, sizeof(name), "seed-request-%zu", i);
		rc = fuzz_seed_write(dir, name, requests[i], strlen(requests[i]));
	}
	/* A migrate-status reply, with its nested rounds, as the VMM writes it. */
	memset(&st, 0, sizeof(st));
	st.state = MIG_STATE_ITERATE;
	st.round = 2;
	st.remaining_bytes = 1 << 20;
	st.rate_bytes_s = 1.5e9;
	st.nrounds = 2;
	snprintf(st.error, sizeof(st.error), "destination failed in round 1: disk \"x\"");
	mig_stats_json(&st, reply, sizeof(reply));
	if (rc == 0)
		rc = fuzz_seed_write(dir, "seed-reply-migrate-status", reply, strlen(reply));
	return rc;
}
