/* S3 object operations: put, get, ranged get, head, list, delete, bucket create. */
#include "transport/s3.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport/s3_priv.h"

static int bad_key(struct s3_client *c, const char *op, const char *key)
{
	return s3_fail(c, -EINVAL, "s3: %s: invalid object key \"%.80s\": want 1-%d bytes without "
		       "control characters", op, key ? key : "(null)", S3_KEY_MAX);
}

int s3_put(struct s3_client *c, const char *key, const void *data, size_t len)
{
	return s3_put_ex(c, key, data, len, 0);
}

int s3_put_ex(struct s3_client *c, const char *key, const void *data, size_t len,
	      unsigned flags)
{
	struct s3_req r = { 0 };

	if (!s3_key_ok(key))
		return bad_key(c, "put", key);
	if ((!data && len) || (flags & ~S3_PUT_IF_ABSENT))
		return s3_fail(c, -EINVAL, "s3: put: invalid arguments");
	if (len > c->cfg.multipart_threshold)
		return s3_multipart_put(c, key, data, len, flags);
	r.op = "put";
	r.method = "PUT";
	r.key = key;
	r.body = data;
	r.body_len = len;
	r.send_body = true;
	r.content_type = "application/octet-stream";
	r.if_none_match = (flags & S3_PUT_IF_ABSENT) ? "*" : NULL;
	return s3_request(c, &r);
}

int s3_get(struct s3_client *c, const char *key, size_t max_len, void **out, size_t *out_len)
{
	struct s3_req r = { 0 };
	struct s3_buf b;
	char what[S3_KEY_MAX / 2];
	int rc;

	if (!s3_key_ok(key))
		return bad_key(c, "get", key);
	s3_buf_init(&b, max_len);
	r.op = "get";
	r.method = "GET";
	r.key = key;
	r.out_buf = &b;
	rc = s3_request(c, &r);
	s3_describe(c, key, what, sizeof(what));
	if (rc == -EFBIG)
		rc = s3_fail(c, rc, "s3: get %s: the object is larger than the limit of %zu bytes",
			     what, max_len);
	else if (rc == 0 && r.content_length >= 0 && (uint64_t)r.content_length != b.len)
		rc = s3_fail(c, -EBADMSG, "s3: get %s: got %zu bytes, Content-Length said %" PRId64,
			     what, b.len, r.content_length);
	if (rc == 0) {
		size_t n = b.len;
		char *p = s3_buf_steal(&b);

		if (!p) {
			rc = s3_fail(c, -ENOMEM, "s3: get %s: out of memory", what);
		} else {
			*out = p;
			*out_len = n;
		}
	}
	s3_buf_free(&b);
	return rc;
}

int s3_get_range(struct s3_client *c, const char *key, uint64_t off, size_t len, void *buf)
{
	struct s3_req r = { 0 };
	char range[64], what[S3_KEY_MAX / 2];
	uint64_t last;
	int rc;

	if (!s3_key_ok(key))
		return bad_key(c, "get range", key);
	if (len == 0 || !buf || off > UINT64_MAX - len || off + len - 1 > (uint64_t)INT64_MAX)
		return s3_fail(c, -EINVAL, "s3: get range: invalid range %" PRIu64 "+%zu", off, len);
	last = off + len - 1;
	snprintf(range, sizeof(range), "bytes=%" PRIu64 "-%" PRIu64, off, last);
	r.op = "get range";
	r.method = "GET";
	r.key = key;
	r.range = range;
	r.out_fixed = buf;
	r.out_fixed_len = len;
	r.out_skip = off;
	rc = s3_request(c, &r);
	s3_describe(c, key, what, sizeof(what));
	if (rc == -ERANGE)
		return s3_fail(c, rc, "s3: get range %s: bytes %" PRIu64 "-%" PRIu64 " lie past the "
			       "end of the object", what, off, last);
	if (rc == -EBADMSG)
		return s3_fail(c, rc, "s3: get range %s: the server sent more than bytes %" PRIu64
			       "-%" PRIu64, what, off, last);
	if (rc < 0)
		return rc;
	if (r.status == 200) {
		/* Range ignored: the whole object came, and it ended before the range did. */
		if (!r.fixed_full)
			return s3_fail(c, -ERANGE, "s3: get range %s: bytes %" PRIu64 "-%" PRIu64
				       " lie past the end of the object", what, off, last);
		return 0;
	}
	if (r.status != 206 || !r.has_content_range)
		return s3_fail(c, -EBADMSG, "s3: get range %s: HTTP %ld without a valid "
			       "Content-Range", what, r.status);
	if (r.cr_first == off && r.cr_last < last && r.cr_total != UINT64_MAX &&
	    r.cr_last + 1 == r.cr_total)
		return s3_fail(c, -ERANGE, "s3: get range %s: bytes %" PRIu64 "-%" PRIu64 " lie past "
			       "the end of the object (%" PRIu64 " bytes)", what, off, last, r.cr_total);
	if (r.cr_first != off || r.cr_last != last || r.fixed_got != len)
		return s3_fail(c, -EBADMSG, "s3: get range %s: asked for bytes %" PRIu64 "-%" PRIu64
			       ", got %" PRIu64 "-%" PRIu64 " (%zu bytes)", what, off, last,
			       r.cr_first, r.cr_last, r.fixed_got);
	return 0;
}

int s3_head(struct s3_client *c, const char *key, uint64_t *size)
{
	struct s3_req r = { 0 };
	char what[S3_KEY_MAX / 2];
	int rc;

	if (!s3_key_ok(key))
		return bad_key(c, "head", key);
	r.op = "head";
	r.method = "HEAD";
	r.key = key;
	rc = s3_request(c, &r);
	if (rc < 0)
		return rc;
	if (r.content_length < 0) {
		s3_describe(c, key, what, sizeof(what));
		return s3_fail(c, -EBADMSG, "s3: head %s: no valid Content-Length in the answer", what);
	}
	*size = (uint64_t)r.content_length;
	return 0;
}

/* Checks each listed key before the caller sees it: inside the prefix, strictly ascending. */
struct list_ctx {
	const char *prefix;
	size_t prefix_len;
	s3_list_ex_fn fn;
	void *arg;
	char last[S3_KEY_MAX + 1];
	bool have_last;
	bool bad;
};

static int list_entry(void *arg, const char *key, uint64_t size, int64_t mtime)
{
	struct list_ctx *l = arg;

	if (strncmp(key, l->prefix, l->prefix_len) != 0 ||
	    (l->have_last && strcmp(key, l->last) <= 0)) {
		l->bad = true;
		return 1;
	}
	snprintf(l->last, sizeof(l->last), "%s", key);
	l->have_last = true;
	return l->fn(l->arg, key, size, mtime);
}

int s3_list(struct s3_client *c, const char *prefix, s3_list_fn fn, void *arg)
{
	struct s3_list_plain l = { fn, arg };

	return s3_list_ex(c, prefix, s3_list_plain_one, &l);
}

int s3_list_ex(struct s3_client *c, const char *prefix, s3_list_ex_fn fn, void *arg)
{
	char token[S3_UPLOAD_ID_MAX + 1] = "", prev[S3_UPLOAD_ID_MAX + 1] = "", max_keys[16];
	struct list_ctx *l;
	bool truncated;
	int rc;

	if (!prefix)
		prefix = "";
	if (strlen(prefix) > S3_KEY_MAX || (prefix[0] && !s3_key_ok(prefix)))
		return bad_key(c, "list", prefix);
	l = calloc(1, sizeof(*l));
	if (!l)
		return s3_fail(c, -ENOMEM, "s3: list: out of memory");
	*l = (struct list_ctx){ .prefix = prefix, .prefix_len = strlen(prefix), .fn = fn, .arg = arg };
	snprintf(max_keys, sizeof(max_keys), "%u", c->cfg.list_page_keys);
	do {
		struct sigv4_param q[4] = { { "list-type", "2" }, { "max-keys", max_keys } };
		struct s3_req r = { 0 };
		struct s3_buf b;
		size_t nq = 2;

		if (prefix[0])
			q[nq++] = (struct sigv4_param){ "prefix", prefix };
		if (token[0])
			q[nq++] = (struct sigv4_param){ "continuation-token", token };
		s3_buf_init(&b, S3_XML_MAX);
		r.op = "list";
		r.method = "GET";
		r.query = q;
		r.query_count = nq;
		r.out_buf = &b;
		rc = s3_request(c, &r);
		snprintf(prev, sizeof(prev), "%s", token);
		if (rc == 0)
			rc = s3_xml_parse_list_ex(s3_buf_str(&b), b.len, list_entry, l, &truncated,
						  token, sizeof(token));
		s3_buf_free(&b);
		if (rc == 0 && truncated && strcmp(token, prev) == 0)
			rc = -EBADMSG;
		if (l->bad || rc == -EBADMSG)
			rc = s3_fail(c, -EBADMSG, "s3: list bucket %s prefix \"%.80s\": malformed "
				     "listing (bad XML, a key outside the prefix or out of order, or a "
				     "repeated continuation token)", c->cfg.bucket, prefix);
	} while (rc == 0 && truncated);
	free(l);
	return rc;
}

int s3_delete(struct s3_client *c, const char *key)
{
	struct s3_req r = { 0 };
	int rc;

	if (!s3_key_ok(key))
		return bad_key(c, "delete", key);
	r.op = "delete";
	r.method = "DELETE";
	r.key = key;
	rc = s3_request(c, &r);
	/* S3 answers 204 for a missing key; some servers say NoSuchKey. Same outcome. */
	if (rc == -ENOENT && (!r.err_code[0] || strcmp(r.err_code, "NoSuchKey") == 0))
		rc = 0;
	return rc;
}

int s3_bucket_create(struct s3_client *c)
{
	struct s3_req r = { 0 };
	struct s3_buf body;
	int rc = 0;

	s3_buf_init(&body, 4096);
	/* us-east-1 is the default location and must not be named. */
	if (strcmp(c->cfg.region, "us-east-1") != 0)
		rc = s3_buf_printf(&body, "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/"
				   "doc/2006-03-01/\"><LocationConstraint>%s</LocationConstraint>"
				   "</CreateBucketConfiguration>", c->cfg.region);
	if (rc < 0)
		return s3_fail(c, rc, "s3: create bucket %s: out of memory", c->cfg.bucket);
	r.op = "create";
	r.method = "PUT";
	r.body = s3_buf_str(&body);
	r.body_len = body.len;
	r.send_body = true;
	r.content_type = "application/xml";
	rc = s3_request(c, &r);
	if (rc == -EEXIST && strcmp(r.err_code, "BucketAlreadyOwnedByYou") == 0)
		rc = 0;
	s3_buf_free(&body);
	return rc;
}
