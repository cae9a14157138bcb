/* Tests for the SigV4 signer: AWS's published S3 examples, encoding rules, and botocore byte for byte. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3_helpers.h"
#include "transport/sigv4.h"

TestSuite(sigv4, .timeout = 120);

/* The credentials and time of every example in AWS's S3 SigV4 documentation. */
#define DOC_AK "AKIAIOSFODNN7EXAMPLE"
#define DOC_SK "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define DOC_DATE "20130524T000000Z"
#define DOC_HOST "examplebucket.s3.amazonaws.com"

static const struct sigv4_credentials doc_cred = { DOC_AK, DOC_SK, "us-east-1", "s3" };

static char *sign(const struct sigv4_request *req, const struct sigv4_credentials *cred,
		  const char *date)
{
	char *auth = NULL;

	cr_assert_eq(sigv4_authorization(&auth, req, cred, date), 0);
	return auth;
}

/* The signature field of an Authorization value. */
static const char *sig_of(const char *auth)
{
	const char *s = strstr(auth, "Signature=");

	cr_assert_not_null(s);
	return s + strlen("Signature=");
}

/*
 * "Example: GET Object" of "Signature Calculations for the Authorization Header:
 * Transferring Payload in a Single Chunk": the first 10 bytes of test.txt.
 */
Test(sigv4, aws_example_get_object_with_range)
{
	const struct sigv4_header h[] = {
		{ "Host", DOC_HOST },
		{ "Range", "bytes=0-9" },
		{ "x-amz-content-sha256", SIGV4_EMPTY_SHA256 },
		{ "x-amz-date", DOC_DATE },
	};
	const struct sigv4_request req = { "GET", "/test.txt", NULL, 0, h, 4, SIGV4_EMPTY_SHA256 };
	char *cr, *names, *sts, *auth;
	uint8_t key[32];
	char key_hex[65];

	cr_assert_eq(sigv4_canonical_request(&cr, &names, &req), 0);
	cr_assert_str_eq(cr, "GET\n/test.txt\n\n"
			     "host:examplebucket.s3.amazonaws.com\n"
			     "range:bytes=0-9\n"
			     "x-amz-content-sha256:" SIGV4_EMPTY_SHA256 "\n"
			     "x-amz-date:20130524T000000Z\n\n"
			     "host;range;x-amz-content-sha256;x-amz-date\n" SIGV4_EMPTY_SHA256);
	cr_assert_str_eq(names, "host;range;x-amz-content-sha256;x-amz-date");
	cr_assert_eq(sigv4_string_to_sign(&sts, DOC_DATE, "us-east-1", "s3", cr), 0);
	cr_assert_str_eq(sts, "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
			      "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
	cr_assert_eq(sigv4_signing_key(key, DOC_SK, DOC_DATE, "us-east-1", "s3"), 0);
	for (int i = 0; i < 32; i++)
		snprintf(key_hex + 2 * i, 3, "%02x", key[i]);
	cr_assert_str_eq(key_hex, "dbb893acc010964918f1fd433add87c70e8b0db6be30c1fbeafefa5ec6ba8378");
	auth = sign(&req, &doc_cred, DOC_DATE);
	cr_assert_str_eq(auth, "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/"
			       "s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;"
			       "x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48"
			       "dd91039c6036bdb41");
	free(cr);
	free(names);
	free(sts);
	free(auth);
}

/* "Example: PUT Object": a body, a Date header, and a key whose '$' must become %24. */
Test(sigv4, aws_example_put_object_with_body_and_escaped_key)
{
	static const char body[] = "Welcome to Amazon S3.";
	char hash[65], *cr, *sts, *auth;
	const struct sigv4_header h[] = {
		{ "Date", "Fri, 24 May 2013 00:00:00 GMT" },
		{ "Host", DOC_HOST },
		{ "x-amz-content-sha256", hash },
		{ "x-amz-date", DOC_DATE },
		{ "x-amz-storage-class", "REDUCED_REDUNDANCY" },
	};
	const struct sigv4_request req = { "PUT", "/test$file.text", NULL, 0, h, 5, hash };

	cr_assert_eq(sigv4_sha256_hex(body, strlen(body), hash), 0);
	cr_assert_str_eq(hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
	cr_assert_eq(sigv4_canonical_request(&cr, NULL, &req), 0);
	{
		static const char want[] = "PUT\n/test%24file.text\n\ndate:Fri, 24 May 2013 00:00:00 GMT\n";

		cr_assert(strncmp(cr, want, strlen(want)) == 0, "%s", cr);
	}
	cr_assert_eq(sigv4_string_to_sign(&sts, DOC_DATE, "us-east-1", "s3", cr), 0);
	cr_assert(strstr(sts, "\n9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d"));
	auth = sign(&req, &doc_cred, DOC_DATE);
	cr_assert(strstr(auth, "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;"
			       "x-amz-storage-class, "));
	cr_assert_str_eq(sig_of(auth), "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
	free(cr);
	free(sts);
	free(auth);
}

/* "Example: GET Bucket Lifecycle": a query parameter without a value signs as "lifecycle=". */
Test(sigv4, aws_example_get_bucket_lifecycle)
{
	const struct sigv4_param q[] = { { "lifecycle", "" } };
	const struct sigv4_header h[] = {
		{ "Host", DOC_HOST },
		{ "x-amz-content-sha256", SIGV4_EMPTY_SHA256 },
		{ "x-amz-date", DOC_DATE },
	};
	const struct sigv4_request req = { "GET", "/", q, 1, h, 3, SIGV4_EMPTY_SHA256 };
	char *auth = sign(&req, &doc_cred, DOC_DATE);

	cr_assert_str_eq(sig_of(auth), "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
	free(auth);
}

/* "Example: Get Bucket (List Objects)": parameters given out of order are signed sorted. */
Test(sigv4, aws_example_list_objects_sorts_the_query)
{
	const struct sigv4_param q[] = { { "prefix", "J" }, { "max-keys", "2" } };
	const struct sigv4_header h[] = {
		{ "Host", DOC_HOST },
		{ "x-amz-content-sha256", SIGV4_EMPTY_SHA256 },
		{ "x-amz-date", DOC_DATE },
	};
	const struct sigv4_request req = { "GET", "/", q, 2, h, 3, SIGV4_EMPTY_SHA256 };
	char *auth = sign(&req, &doc_cred, DOC_DATE);

	cr_assert_str_eq(sig_of(auth), "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
	free(auth);
}

Test(sigv4, uri_encoding_keeps_only_unreserved_and_optionally_slash)
{
	static const struct {
		const char *in;
		bool slash;
		const char *out;
	} cases[] = {
		{ "a b", true, "a%20b" },
		{ "a+b=c", true, "a%2Bb%3Dc" },
		{ "100%", true, "100%25" },
		{ "A-z_0.9~", false, "A-z_0.9~" },
		{ "a/b", true, "a/b" },
		{ "a/b", false, "a%2Fb" },
		{ "ключ", true, "%D0%BA%D0%BB%D1%8E%D1%87" },
		{ ":,@$&'()*!;", true, "%3A%2C%40%24%26%27%28%29%2A%21%3B" },
		{ "a//./../b", true, "a//./../b" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *out = NULL;

		cr_assert_eq(sigv4_uri_encode(&out, cases[i].in, strlen(cases[i].in), cases[i].slash), 0);
		cr_assert_str_eq(out, cases[i].out, "case %zu", i);
		free(out);
	}
}

Test(sigv4, canonical_query_sorts_by_encoded_name_then_value)
{
	const struct sigv4_param q[] = {
		{ "b", "2" }, { "a", "x y" }, { "a", "+" }, { "continuation-token", "1/a+b=" },
		{ "uploads", "" }, { "A", "upper" },
	};
	char *out = NULL;

	cr_assert_eq(sigv4_canonical_query(&out, q, 6), 0);
	cr_assert_str_eq(out, "A=upper&a=%2B&a=x%20y&b=2&continuation-token=1%2Fa%2Bb%3D&uploads=");
	free(out);
	cr_assert_eq(sigv4_canonical_query(&out, NULL, 0), 0);
	cr_assert_str_eq(out, "");
	free(out);
}

Test(sigv4, headers_are_lowercased_trimmed_collapsed_sorted_and_merged)
{
	const struct sigv4_header h[] = {
		{ "X-Amz-Meta-Note", "  two   spaces\tand tab  " },
		{ "Host", "h.example" },
		{ "x-amz-meta-list", "a" },
		{ "X-AMZ-META-LIST", "b" },
	};
	const struct sigv4_request req = { "GET", "/k", NULL, 0, h, 4, SIGV4_UNSIGNED_PAYLOAD };
	char *cr, *names;

	cr_assert_eq(sigv4_canonical_request(&cr, &names, &req), 0);
	cr_assert_str_eq(cr, "GET\n/k\n\nhost:h.example\nx-amz-meta-list:a,b\n"
			     "x-amz-meta-note:two spaces and tab\n\n"
			     "host;x-amz-meta-list;x-amz-meta-note\nUNSIGNED-PAYLOAD");
	cr_assert_str_eq(names, "host;x-amz-meta-list;x-amz-meta-note");
	free(cr);
	free(names);
}

Test(sigv4, rejects_header_injection_bad_hashes_dates_and_methods)
{
	struct sigv4_header h[] = { { "Host", "h" }, { "x-amz-date", DOC_DATE } };
	struct sigv4_request req = { "GET", "/k", NULL, 0, h, 2, SIGV4_EMPTY_SHA256 };
	char *out = NULL;

	h[0].value = "h\r\nX-Evil: 1";
	cr_assert_eq(sigv4_canonical_request(&out, NULL, &req), -EINVAL);
	h[0].value = "h";
	h[0].name = "Ho st";
	cr_assert_eq(sigv4_canonical_request(&out, NULL, &req), -EINVAL);
	h[0].name = "Host";
	req.payload_hash = "E3B0";
	cr_assert_eq(sigv4_canonical_request(&out, NULL, &req), -EINVAL);
	req.payload_hash = SIGV4_EMPTY_SHA256;
	req.method = "get";
	cr_assert_eq(sigv4_canonical_request(&out, NULL, &req), -EINVAL);
	req.method = "GET";
	req.path = "k";
	cr_assert_eq(sigv4_canonical_request(&out, NULL, &req), -EINVAL);
	req.path = "/k";
	req.header_count = 0;
	cr_assert_eq(sigv4_canonical_request(&out, NULL, &req), -EINVAL);
	req.header_count = 2;
	cr_assert_eq(sigv4_authorization(&out, &req, &doc_cred, "2013-05-24T00:00:00Z"), -EINVAL);
	cr_assert_eq(sigv4_authorization(&out, &req, &doc_cred, "20130524T000000"), -EINVAL);
	{
		struct sigv4_credentials bad = doc_cred;

		bad.region = "us/east";
		cr_assert_eq(sigv4_authorization(&out, &req, &bad, DOC_DATE), -EINVAL);
		bad = doc_cred;
		bad.access_key = "AKID,Signature=x";
		cr_assert_eq(sigv4_authorization(&out, &req, &bad, DOC_DATE), -EINVAL);
		bad = doc_cred;
		bad.secret_key = "";
		cr_assert_eq(sigv4_authorization(&out, &req, &bad, DOC_DATE), -EINVAL);
	}
}

Test(sigv4, amz_date_formats_utc)
{
	char d[SIGV4_AMZ_DATE_LEN + 1];

	sigv4_amz_date(1369353600, d);
	cr_assert_str_eq(d, "20130524T000000Z");
	sigv4_amz_date(951782400 + 86399, d);
	cr_assert_str_eq(d, "20000229T235959Z");
}

/* --- botocore, the reference implementation, on the same requests --- */

struct boto_case {
	const char *method, *scheme, *host, *path, *date, *ak, *sk, *token, *region;
	const char *body;
	size_t body_len;
	struct sigv4_param query[5];
	size_t nq;
	struct sigv4_header extra[4];
	size_t nh;
};

/* Our Authorization for c, with the headers the S3 client adds itself. */
static char *ours(const struct boto_case *c)
{
	struct sigv4_header h[12];
	struct sigv4_credentials cred = { c->ak, c->sk, c->region, "s3" };
	char hash[65];
	size_t n = 0;

	cr_assert_eq(sigv4_sha256_hex(c->body ? c->body : "", c->body_len, hash), 0);
	h[n++] = (struct sigv4_header){ "Host", c->host };
	h[n++] = (struct sigv4_header){ "x-amz-content-sha256", hash };
	h[n++] = (struct sigv4_header){ "x-amz-date", c->date };
	if (c->token[0])
		h[n++] = (struct sigv4_header){ "x-amz-security-token", c->token };
	for (size_t i = 0; i < c->nh; i++)
		h[n++] = c->extra[i];
	{
		const struct sigv4_request req = { c->method, c->path, c->query, c->nq, h, n, hash };

		return sign(&req, &cred, c->date);
	}
}

/* botocore's Authorization for c, or NULL with the test skipped if it cannot run. */
static char *theirs(const struct boto_case *c)
{
	const char *py = python_with("botocore");
	char *argv[48], hex[2 * 256 + 1], out[1024];
	size_t n = 0;

	if (!py)
		cr_skip_test("botocore is not importable by python3 or /usr/bin/python3: install "
			     "python3-botocore (the CI script does)");
	cr_assert(c->body_len <= 256);
	for (size_t i = 0; i < c->body_len; i++)
		snprintf(hex + 2 * i, 3, "%02x", (unsigned char)c->body[i]);
	hex[2 * c->body_len] = '\0';
	argv[n++] = (char *)py;
	argv[n++] = S3_SCRIPTS_DIR "/botocore_sign.py";
	argv[n++] = (char *)c->method;
	argv[n++] = (char *)c->scheme;
	argv[n++] = (char *)c->host;
	argv[n++] = (char *)c->path;
	argv[n++] = (char *)c->date;
	argv[n++] = (char *)c->ak;
	argv[n++] = (char *)c->sk;
	argv[n++] = (char *)c->token;
	argv[n++] = (char *)c->region;
	argv[n++] = hex;
	for (size_t i = 0; i < c->nq; i++) {
		argv[n++] = "-q";
		argv[n++] = (char *)c->query[i].name;
		argv[n++] = (char *)c->query[i].value;
	}
	for (size_t i = 0; i < c->nh; i++) {
		argv[n++] = "-H";
		argv[n++] = (char *)c->extra[i].name;
		argv[n++] = (char *)c->extra[i].value;
	}
	argv[n] = NULL;
	cr_assert_eq(run_capture(argv, out, sizeof(out), 60000), 0, "botocore_sign.py failed");
	out[strcspn(out, "\n")] = '\0';
	return strdup(out);
}

static void same_as_botocore(const struct boto_case *c)
{
	char *a = ours(c), *b = theirs(c);

	cr_assert_str_eq(a, b, "%s %s", c->method, c->path);
	free(a);
	free(b);
}

#define LOCAL "127.0.0.1:9000"
#define AK "AKIDEXAMPLE123"
#define SK "secret/with+chars=="
#define DATE "20260301T121314Z"

Test(sigv4, botocore_get_with_query_and_range)
{
	struct boto_case c = { "GET", "http", LOCAL, "/bkt/dir/file.bin", DATE, AK, SK, "",
			       "us-east-1", NULL, 0,
			       { { "x-id", "GetObject" }, { "response-content-type", "text/plain; a=b" } },
			       2, { { "Range", "bytes=100-199" } }, 1 };

	same_as_botocore(&c);
}

Test(sigv4, botocore_put_with_body_and_spaces_in_the_key)
{
	static const char body[] = "some \x00\x01\xff binary body";
	struct boto_case c = { "PUT", "http", LOCAL, "/bkt/a key with  spaces.bin", DATE, AK, SK,
			       "", "us-east-1", body, sizeof(body) - 1, { { 0 } }, 0,
			       { { "Content-Type", "application/octet-stream" } }, 1 };

	same_as_botocore(&c);
}

Test(sigv4, botocore_unicode_key_virtual_host_https_other_region)
{
	struct boto_case c = { "GET", "https", "bkt.s3.eu-west-1.amazonaws.com",
			       "/ключ/日本語 ü.txt", DATE, AK, SK, "", "eu-west-1", NULL, 0,
			       { { 0 } }, 0, { { 0 } }, 0 };

	same_as_botocore(&c);
}

Test(sigv4, botocore_key_with_the_characters_moto_mangles)
{
	struct boto_case c = { "PUT", "http", LOCAL, "/bkt/a+b=c:d,e@f%g$h&i'j(k)l*m!n;o~p", DATE,
			       AK, SK, "", "us-east-1", "x", 1, { { 0 } }, 0,
			       { { "Content-Type", "application/octet-stream" } }, 1 };

	same_as_botocore(&c);
}

Test(sigv4, botocore_list_objects_v2_with_prefix_and_continuation_token)
{
	struct boto_case c = { "GET", "http", LOCAL, "/bkt", DATE, AK, SK, "", "us-east-1", NULL, 0,
			       { { "list-type", "2" }, { "prefix", "a/b/" }, { "max-keys", "1000" },
				 { "continuation-token", "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=" } },
			       4, { { 0 } }, 0 };

	same_as_botocore(&c);
}

Test(sigv4, botocore_session_token_and_if_none_match)
{
	struct boto_case c = { "PUT", "http", LOCAL, "/bkt/obj", DATE, AK, SK,
			       "FQoGZXIvYXdzEJr//////////wEaDOEXAMPLE+token/with=", "us-east-1",
			       "body", 4, { { 0 } }, 0,
			       { { "Content-Type", "application/octet-stream" }, { "If-None-Match", "*" } },
			       2 };

	same_as_botocore(&c);
}

Test(sigv4, botocore_multipart_queries_and_blank_runs_in_values)
{
	struct boto_case create = { "POST", "http", LOCAL, "/bkt/big", DATE, AK, SK, "", "us-east-1",
				    "", 0, { { "uploads", "" } }, 1,
				    { { "Content-Type", "application/octet-stream" },
				      { "x-amz-meta-note", "  two   spaces  " } }, 2 };
	struct boto_case part = { "PUT", "http", LOCAL, "/bkt/big", DATE, AK, SK, "", "us-east-1",
				  "part", 4,
				  { { "partNumber", "12" }, { "uploadId", "VXBsb2Fk+SUQ/of==" } }, 2,
				  { { "Content-Type", "application/octet-stream" } }, 1 };
	struct boto_case abort_ = { "DELETE", "http", LOCAL, "/bkt/big", DATE, AK, SK, "",
				    "us-east-1", NULL, 0, { { "uploadId", "VXBsb2Fk+SUQ/of==" } }, 1,
				    { { 0 } }, 0 };

	same_as_botocore(&create);
	same_as_botocore(&part);
	same_as_botocore(&abort_);
}
