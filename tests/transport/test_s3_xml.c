/* Tests for the minimal S3 XML reader: listings, errors, entities, and malformed answers. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport/s3_priv.h"

TestSuite(s3_xml, .timeout = 30);

struct seen {
	char keys[8][64];
	uint64_t sizes[8];
	int n;
	int stop_at; /* return 7 at this entry, -1 never */
};

static int collect(void *arg, const char *key, uint64_t size)
{
	struct seen *s = arg;

	cr_assert_lt(s->n, 8);
	snprintf(s->keys[s->n], sizeof(s->keys[0]), "%s", key);
	s->sizes[s->n] = size;
	return s->n++ == s->stop_at ? 7 : 0;
}

static int parse(const char *doc, struct seen *s, bool *trunc, char *token, size_t token_len)
{
	memset(s, 0, sizeof(*s));
	s->stop_at = -1;
	return s3_xml_parse_list(doc, strlen(doc), collect, s, trunc, token, token_len);
}

static const char page[] =
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	"<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\n"
	"  <Name>bkt</Name><Prefix>p/</Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys>\n"
	"  <IsTruncated>true</IsTruncated>\n"
	"  <Contents>\n    <Key>p/a &amp; b &lt;c&gt; &quot;d&quot; &apos;e&apos;</Key>\n"
	"    <LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>&quot;x&quot;</ETag>\n"
	"    <Size> 12345678901 </Size><StorageClass>STANDARD</StorageClass>\n  </Contents>\n"
	"  <Contents><Key>p/&#233;t&#xE9; &#x1F600;&#13;</Key><Size>0</Size></Contents>\n"
	"  <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>\n"
	"</ListBucketResult>\n";

Test(s3_xml, list_page_with_entities_sizes_and_token)
{
	struct seen s;
	bool trunc;
	char token[128];

	cr_assert_eq(parse(page, &s, &trunc, token, sizeof(token)), 0);
	cr_assert_eq(s.n, 2);
	cr_assert_str_eq(s.keys[0], "p/a & b <c> \"d\" 'e'");
	cr_assert_eq(s.sizes[0], 12345678901ull);
	cr_assert_str_eq(s.keys[1], "p/\xc3\xa9t\xc3\xa9 \xf0\x9f\x98\x80\r");
	cr_assert_eq(s.sizes[1], 0);
	cr_assert(trunc);
	cr_assert_str_eq(token, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
}

Test(s3_xml, list_last_page_and_empty_listing)
{
	struct seen s;
	bool trunc = true;
	char token[64];

	cr_assert_eq(parse("<ListBucketResult><IsTruncated>false</IsTruncated>"
			   "<Contents><Key>k</Key><Size>1</Size></Contents></ListBucketResult>",
			   &s, &trunc, token, sizeof(token)), 0);
	cr_assert_eq(s.n, 1);
	cr_assert_not(trunc);
	cr_assert_eq(parse("<ListBucketResult><KeyCount>0</KeyCount></ListBucketResult>", &s,
			   &trunc, token, sizeof(token)), 0);
	cr_assert_eq(s.n, 0);
	cr_assert_not(trunc);
}

Test(s3_xml, list_stops_with_the_callbacks_value)
{
	struct seen s;
	bool trunc;
	char token[128];

	memset(&s, 0, sizeof(s));
	s.stop_at = 0;
	cr_assert_eq(s3_xml_parse_list(page, strlen(page), collect, &s, &trunc, token, sizeof(token)),
		     7);
	cr_assert_eq(s.n, 1);
}

Test(s3_xml, list_rejects_malformed_pages)
{
	static const char *const bad[] = {
		"<Error><Code>x</Code></Error>",
		"not xml",
		"<ListBucketResult><Contents><Key>k</Key></Contents></ListBucketResult>",
		"<ListBucketResult><Contents><Size>1</Size></Contents></ListBucketResult>",
		"<ListBucketResult><Contents><Key>k</Key><Size>-1</Size></Contents></ListBucketResult>",
		"<ListBucketResult><Contents><Key>k</Key><Size>1x</Size></Contents></ListBucketResult>",
		"<ListBucketResult><Contents><Key>k</Key><Size>99999999999999999999</Size></Contents>"
		"</ListBucketResult>",
		"<ListBucketResult><Contents><Key>k</Key><Size>1</Size></ListBucketResult>",
		"<ListBucketResult><Contents><Key>a&bogus;b</Key><Size>1</Size></Contents>"
		"</ListBucketResult>",
		"<ListBucketResult><Contents><Key>a&#0;b</Key><Size>1</Size></Contents>"
		"</ListBucketResult>",
		"<ListBucketResult><Contents><Key>a&#xD800;</Key><Size>1</Size></Contents>"
		"</ListBucketResult>",
		"<ListBucketResult><Contents><Key>a&amp</Key><Size>1</Size></Contents>"
		"</ListBucketResult>",
		"<ListBucketResult><Contents><Key></Key><Size>1</Size></Contents></ListBucketResult>",
		"<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>",
		"<ListBucketResult><IsTruncated>yes</IsTruncated></ListBucketResult>",
		"<ListBucketResult><IsTruncated>true</IsTruncated><NextContinuationToken>"
		"0123456789012345678901234567890123456789</NextContinuationToken></ListBucketResult>",
	};
	struct seen s;
	bool trunc;
	char token[32];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(parse(bad[i], &s, &trunc, token, sizeof(token)), -EBADMSG, "case %zu", i);
}

Test(s3_xml, list_key_longer_than_s3_allows_is_rejected)
{
	size_t n = S3_KEY_MAX + 1;
	char *doc = malloc(n + 128);
	struct seen s;
	bool trunc;
	char token[32];
	int off;

	cr_assert_not_null(doc);
	off = sprintf(doc, "<ListBucketResult><Contents><Key>");
	memset(doc + off, 'k', n);
	sprintf(doc + off + n, "</Key><Size>1</Size></Contents></ListBucketResult>");
	cr_assert_eq(parse(doc, &s, &trunc, token, sizeof(token)), -EBADMSG);
	free(doc);
}

Test(s3_xml, error_document_code_and_sanitised_message)
{
	static const char bad_code[] = "<Error><Code>Bad\x01<x</Code></Error>";
	static const char redirect[] = "<Error><Code>AuthorizationHeaderMalformed</Code><Message>"
				       "the region 'us-east-1' is wrong; expecting 'eu-west-1'</Message>"
				       "<Region>eu-west-1</Region></Error>";
	char region[32];
	static const char doc[] = "<?xml version=\"1.0\"?>\n<Error><Code>NoSuchKey</Code>"
				  "<Message>The key\nis &quot;gone&quot;</Message><Key>k</Key></Error>";
	char code[32], msg[64];

	cr_assert_eq(s3_xml_parse_error(doc, strlen(doc), code, sizeof(code), msg, sizeof(msg), NULL,
					0), 0);
	cr_assert_str_eq(code, "NoSuchKey");
	cr_assert_str_eq(msg, "The key?is \"gone\"");
	cr_assert_eq(s3_xml_parse_error("<ListBucketResult/>", 19, code, sizeof(code), msg,
					sizeof(msg), NULL, 0), -EBADMSG);
	cr_assert_eq(s3_xml_parse_error(bad_code, sizeof(bad_code) - 1, code, sizeof(code), msg,
					sizeof(msg), NULL, 0), 0);
	cr_assert_str_eq(code, "");
	cr_assert_eq(s3_xml_parse_error(redirect, sizeof(redirect) - 1, code, sizeof(code), msg,
					sizeof(msg), region, sizeof(region)), 0);
	cr_assert_str_eq(code, "AuthorizationHeaderMalformed");
	cr_assert_str_eq(region, "eu-west-1");
}

Test(s3_xml, root_skips_declaration_comments_and_bom)
{
	static const char doc[] = "\xef\xbb\xbf<?xml version=\"1.0\"?><!-- c -->\n<Error>";
	char root[32];

	cr_assert_eq(s3_xml_root(doc, sizeof(doc) - 1, root, sizeof(root)), 0);
	cr_assert_str_eq(root, "Error");
	cr_assert_eq(s3_xml_root("<A xmlns=\"x\">", 13, root, sizeof(root)), 0);
	cr_assert_str_eq(root, "A");
	cr_assert_eq(s3_xml_root("", 0, root, sizeof(root)), -EBADMSG);
	cr_assert_eq(s3_xml_root("<", 1, root, sizeof(root)), -EBADMSG);
	cr_assert_eq(s3_xml_root("<?xml", 5, root, sizeof(root)), -EBADMSG);
}

Test(s3_xml, find_handles_empty_elements_and_refuses_nested_ones)
{
	const char *t;
	size_t n;

	cr_assert(s3_xml_find("<a><b/></a>", 11, "b", &t, &n));
	cr_assert_eq(n, 0);
	cr_assert_not(s3_xml_find("<a><b><c>x</c></b></a>", 22, "b", &t, &n));
	cr_assert_not(s3_xml_find("<a><b>x</a>", 11, "b", &t, &n));
	cr_assert(s3_xml_find("<b>x</b>", 8, "b", &t, &n));
	cr_assert_eq(n, 1);
}

Test(s3_xml, escape_round_trips_through_decode)
{
	struct s3_buf b;
	char out[64];

	s3_buf_init(&b, 1024);
	cr_assert_eq(s3_xml_escape(&b, "\"etag\" & <'x'>"), 0);
	cr_assert_str_eq(b.data, "&quot;etag&quot; &amp; &lt;&apos;x&apos;&gt;");
	cr_assert_eq(s3_xml_decode(out, sizeof(out), b.data, b.len), 14);
	cr_assert_str_eq(out, "\"etag\" & <'x'>");
	cr_assert_eq(s3_xml_decode(out, 4, b.data, b.len), -ENAMETOOLONG);
	s3_buf_free(&b);
}

static int collect_time(void *arg, const char *key, uint64_t size, int64_t mtime)
{
	int64_t *t = arg;

	(void)key;
	(void)size;
	t[t[0] + 1] = mtime;
	t[0]++;
	return 0;
}

Test(s3_xml, list_gives_last_modified_as_unix_time_or_minus_one)
{
	int64_t t[4] = { 0 };
	bool trunc;
	char token[128];

	cr_assert_eq(s3_xml_parse_list_ex(page, strlen(page), collect_time, t, &trunc, token,
					  sizeof(token)), 0);
	cr_assert_eq(t[0], 2);
	cr_assert_eq(t[1], 1767225600, "2026-01-01T00:00:00.000Z is %lld", (long long)t[1]);
	cr_assert_eq(t[2], -1, "no LastModified");
	cr_assert_eq(s3_xml_time("2024-02-29T23:59:59Z", 20), 1709251199);
	cr_assert_eq(s3_xml_time("2024-02-29T23:59:59", 19), -1);
	cr_assert_eq(s3_xml_time("2024-13-01T00:00:00Z", 20), -1);
	cr_assert_eq(s3_xml_time("yesterday", 9), -1);
}
