/* Fuzz the S3 answer parsers (transport/s3_xml.c) and the error mapping behind them (s3_error.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/fuzz.h"
#include "transport/s3_priv.h"

/*
 * Input: a byte choosing the HTTP status of the answer, then its body. The harness reads
 * the body every way the client does: as a ListObjectsV2 page, as an <Error> document
 * (whose code, message and region then go through s3_error_from_response, which words
 * the one-line error, and the retry decision), and as a CreateMultipartUpload answer (the
 * root element and the decoded UploadId).
 */
static const long statuses[] = { 200, 301, 307, 400, 401, 403, 404, 405, 409, 411,
				 412, 416, 429, 500, 501, 502, 503, 504, 206, 599 };

static int on_key(void *arg, const char *key, uint64_t size)
{
	(void)size;
	if (strlen(key) == 0)
		abort(); /* the parser promises a key for every entry */
	++*(unsigned *)arg;
	return 0;
}

static struct s3_client *client(void)
{
	static struct s3_client *c;
	static bool tried;
	struct s3_config cfg = {
		.endpoint = "http://127.0.0.1:9",
		.region = "us-east-1",
		.bucket = "fuzz-bucket",
		.access_key = "AKIDFUZZ",
		.secret_key = "secret",
		.max_retries = 4,
	};
	char err[256];

	if (!tried) {
		tried = true;
		if (s3_client_create(&c, &cfg, err, sizeof(err)) < 0)
			c = NULL; /* no libcurl here: the error mapping is left out */
	}
	return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char token[256], root[64], code[64], msg[160], region[S3_REGION_MAX], upload[256];
	struct s3_client *c = client();
	const char *doc, *t;
	bool truncated, ok = false;
	unsigned n = 0;
	size_t len, tn;
	char *copy;
	long status;

	if (size < 1)
		return 0;
	status = statuses[data[0] % (sizeof(statuses) / sizeof(statuses[0]))];
	/* The client hands the parsers its buffer, NUL-terminated past the end. */
	len = size - 1;
	copy = fuzz_alloc(len + 1);
	memcpy(copy, data + 1, len);
	copy[len] = '\0';
	doc = copy;

	if (s3_xml_parse_list(doc, len, on_key, &n, &truncated, token, sizeof(token)) == 0)
		ok = true;
	if (s3_xml_parse_error(doc, len, code, sizeof(code), msg, sizeof(msg), region,
			       sizeof(region)) == 0) {
		struct s3_req r = { .op = "get", .method = "GET", .key = "data/ab/cd", .status = status };
		char line[512];

		fuzz_assert_one_line(code);
		fuzz_assert_one_line(msg);
		fuzz_assert_one_line(region);

		snprintf(r.err_code, sizeof(r.err_code), "%s", code);
		snprintf(r.err_message, sizeof(r.err_message), "%s", msg);
		snprintf(r.bucket_region, sizeof(r.bucket_region), "%s", region);
		s3_status_retryable(status, code);
		if (c && s3_error_from_response(c, &r) >= 0)
			abort(); /* a failure answer never maps to success */
		if (c) {
			s3_client_error(c, line, sizeof(line));
			fuzz_assert_one_line(line); /* the one line the CLI prints */
		}
		ok = true;
	}
	if (s3_xml_root(doc, len, root, sizeof(root)) == 0 &&
	    s3_xml_find(doc, len, "UploadId", &t, &tn) &&
	    s3_xml_decode(upload, sizeof(upload), t, tn) > 0)
		ok = true;
	if (ok)
		fuzz_accepted++;
	free(copy);
	return 0;
}

static const char list_page[] =
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	"<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
	"<Name>fuzz-bucket</Name><Prefix>data/</Prefix><KeyCount>2</KeyCount>"
	"<MaxKeys>2</MaxKeys><IsTruncated>true</IsTruncated>"
	"<Contents><Key>data/ab/ab01 &amp; &lt;x&gt; &#233;&#x1F600;</Key>"
	"<LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>&quot;x&quot;</ETag>"
	"<Size>16777216</Size><StorageClass>STANDARD</StorageClass></Contents>"
	"<Contents><Key>index/00ff</Key><Size>0</Size></Contents>"
	"<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>"
	"</ListBucketResult>\n";

static const char list_last[] =
	"<ListBucketResult><IsTruncated>false</IsTruncated>"
	"<Contents><Key>config</Key><Size>232</Size></Contents></ListBucketResult>";

static const char error_doc[] =
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	"<Error><Code>PermanentRedirect</Code><Message>The bucket you are attempting to access "
	"must be addressed using the specified endpoint.</Message><Region>eu-west-1</Region>"
	"<RequestId>4442587FB7D0A2F9</RequestId></Error>";

static const char slowdown_doc[] =
	"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";

static const char multipart_doc[] =
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	"<InitiateMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
	"<Bucket>fuzz-bucket</Bucket><Key>data/ab/cd</Key>"
	"<UploadId>VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA</UploadId>"
	"</InitiateMultipartUploadResult>";

static int seed(const char *dir, const char *name, uint8_t status, const char *doc)
{
	return fuzz_seed_write2(dir, name, &status, 1, doc, strlen(doc));
}

int fuzz_write_seeds(const char *dir)
{
	int rc = seed(dir, "seed-list-page", 0, list_page);

	if (rc == 0)
		rc = seed(dir, "seed-list-last", 0, list_last);
	if (rc == 0)
		rc = seed(dir, "seed-error-redirect", 1, error_doc);
	if (rc == 0)
		rc = seed(dir, "seed-error-slowdown", 16, slowdown_doc);
	if (rc == 0)
		rc = seed(dir, "seed-multipart", 0, multipart_doc);
	return rc;
}
