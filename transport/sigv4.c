/* AWS Signature Version 4 for S3: canonical request, string to sign, signing key, Authorization. */
#include "transport/sigv4.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "transport/s3_buf.h"

/* No signed string comes near this; it only stops runaway input. */
#define SIGV4_TEXT_MAX ((size_t)1 << 24)

static const char hex_lower[] = "0123456789abcdef";
static const char hex_upper[] = "0123456789ABCDEF";

void sigv4_amz_date(time_t t, char out[SIGV4_AMZ_DATE_LEN + 1])
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, SIGV4_AMZ_DATE_LEN + 1, "%Y%m%dT%H%M%SZ", &tm);
}

static void hex_encode(char *out, const uint8_t *in, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		out[2 * i] = hex_lower[in[i] >> 4];
		out[2 * i + 1] = hex_lower[in[i] & 15];
	}
	out[2 * len] = '\0';
}

int sigv4_sha256_hex(const void *data, size_t len, char out[SIGV4_SHA256_HEX_LEN + 1])
{
	uint8_t md[32];
	unsigned int md_len = 0;

	if (!EVP_Digest(data, len, md, &md_len, EVP_sha256(), NULL) || md_len != 32)
		return -EIO;
	hex_encode(out, md, 32);
	return 0;
}

static int hmac_sha256(uint8_t out[32], const void *key, size_t key_len, const char *msg)
{
	unsigned int out_len = 0;

	if (!HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)msg, strlen(msg), out,
		  &out_len) || out_len != 32)
		return -EIO;
	return 0;
}

static bool is_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_' || c == '.' || c == '~';
}

static int uri_encode_append(struct s3_buf *b, const char *in, size_t len, bool keep_slash)
{
	int rc = 0;

	for (size_t i = 0; i < len && rc == 0; i++) {
		unsigned char c = (unsigned char)in[i];

		if (is_unreserved(c) || (keep_slash && c == '/')) {
			rc = s3_buf_add(b, &in[i], 1);
		} else {
			char esc[3] = { '%', hex_upper[c >> 4], hex_upper[c & 15] };

			rc = s3_buf_add(b, esc, 3);
		}
	}
	return rc;
}

int sigv4_uri_encode(char **out, const char *in, size_t len, bool keep_slash)
{
	struct s3_buf b;
	int rc;

	s3_buf_init(&b, SIGV4_TEXT_MAX);
	rc = uri_encode_append(&b, in, len, keep_slash);
	if (rc == 0 && !(*out = s3_buf_steal(&b)))
		rc = -ENOMEM;
	s3_buf_free(&b);
	return rc;
}

struct enc_pair {
	char *name;
	char *value;
};

static int enc_pair_cmp(const void *a, const void *b)
{
	const struct enc_pair *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ? c : strcmp(x->value, y->value);
}

int sigv4_canonical_query(char **out, const struct sigv4_param *query, size_t count)
{
	struct enc_pair *pairs;
	struct s3_buf b;
	size_t i;
	int rc = 0;

	for (i = 0; i < count; i++)
		if (!query[i].name || !query[i].value)
			return -EINVAL;
	pairs = calloc(count ? count : 1, sizeof(*pairs));
	if (!pairs)
		return -ENOMEM;
	for (i = 0; i < count && rc == 0; i++) {
		rc = sigv4_uri_encode(&pairs[i].name, query[i].name, strlen(query[i].name), false);
		if (rc == 0)
			rc = sigv4_uri_encode(&pairs[i].value, query[i].value,
					      strlen(query[i].value), false);
	}
	s3_buf_init(&b, SIGV4_TEXT_MAX);
	if (rc == 0) {
		/* Sort by encoded name, then encoded value, byte-wise, as S3 does. */
		qsort(pairs, count, sizeof(*pairs), enc_pair_cmp);
		rc = s3_buf_reserve(&b, 0);
		for (i = 0; i < count && rc == 0; i++)
			rc = s3_buf_printf(&b, "%s%s=%s", i ? "&" : "", pairs[i].name,
					   pairs[i].value);
	}
	if (rc == 0 && !(*out = s3_buf_steal(&b)))
		rc = -ENOMEM;
	for (i = 0; i < count; i++) {
		free(pairs[i].name);
		free(pairs[i].value);
	}
	free(pairs);
	s3_buf_free(&b);
	return rc;
}

/* RFC 7230 token characters: what a header name may hold. */
static bool is_token_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

struct canon_header {
	char *name;   /* lower-case */
	char *value;  /* trimmed, runs of blanks collapsed */
	size_t order; /* position in the request, so repeated names keep their order */
};

static int canon_header_cmp(const void *a, const void *b)
{
	const struct canon_header *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c)
		return c;
	return x->order < y->order ? -1 : x->order > y->order;
}

static int canon_header_make(struct canon_header *h, const struct sigv4_header *in, size_t order)
{
	size_t nlen, i, o = 0;
	const char *v;
	bool blank = false;

	if (!in->name || !in->value)
		return -EINVAL;
	nlen = strlen(in->name);
	if (nlen == 0)
		return -EINVAL;
	for (i = 0; i < nlen; i++)
		if (!is_token_char((unsigned char)in->name[i]))
			return -EINVAL;
	for (v = in->value; *v; v++)
		if (*v == '\r' || *v == '\n')
			return -EINVAL;
	h->name = malloc(nlen + 1);
	h->value = malloc(strlen(in->value) + 1);
	if (!h->name || !h->value)
		return -ENOMEM;
	for (i = 0; i <= nlen; i++)
		h->name[i] = (char)((in->name[i] >= 'A' && in->name[i] <= 'Z') ?
				    in->name[i] - 'A' + 'a' : in->name[i]);
	for (v = in->value; *v; v++) {
		if (*v == ' ' || *v == '\t') {
			blank = o > 0;
			continue;
		}
		if (blank)
			h->value[o++] = ' ';
		blank = false;
		h->value[o++] = *v;
	}
	h->value[o] = '\0';
	h->order = order;
	return 0;
}

static bool payload_hash_ok(const char *p)
{
	size_t i;

	if (!p)
		return false;
	if (strcmp(p, SIGV4_UNSIGNED_PAYLOAD) == 0)
		return true;
	for (i = 0; p[i]; i++)
		if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
			return false;
	return i == SIGV4_SHA256_HEX_LEN;
}

static bool method_ok(const char *m)
{
	size_t i;

	if (!m)
		return false;
	for (i = 0; m[i]; i++)
		if (m[i] < 'A' || m[i] > 'Z')
			return false;
	return i > 0 && i <= 16;
}

/* Canonical header lines and the signed-header list, appended to lines and names. */
static int canon_headers(struct s3_buf *lines, struct s3_buf *names, const struct sigv4_request *req)
{
	struct canon_header *hs;
	size_t i, n = req->header_count;
	int rc = 0;

	if (n == 0 || !req->headers)
		return -EINVAL;
	hs = calloc(n, sizeof(*hs));
	if (!hs)
		return -ENOMEM;
	for (i = 0; i < n && rc == 0; i++)
		rc = canon_header_make(&hs[i], &req->headers[i], i);
	if (rc == 0)
		qsort(hs, n, sizeof(*hs), canon_header_cmp);
	for (i = 0; i < n && rc == 0; i++) {
		bool same_as_prev = i > 0 && strcmp(hs[i].name, hs[i - 1].name) == 0;

		if (same_as_prev) {
			/* Overwrite the previous line's newline: "name:v1,v2\n". */
			lines->len--;
			rc = s3_buf_printf(lines, ",%s\n", hs[i].value);
		} else {
			rc = s3_buf_printf(lines, "%s:%s\n", hs[i].name, hs[i].value);
			if (rc == 0)
				rc = s3_buf_printf(names, "%s%s", i ? ";" : "", hs[i].name);
		}
	}
	for (i = 0; i < n; i++) {
		free(hs[i].name);
		free(hs[i].value);
	}
	free(hs);
	return rc;
}

int sigv4_canonical_request(char **out, char **signed_headers, const struct sigv4_request *req)
{
	struct s3_buf cr, names;
	char *query = NULL;
	int rc;

	if (!method_ok(req->method) || !req->path || req->path[0] != '/' ||
	    !payload_hash_ok(req->payload_hash))
		return -EINVAL;
	s3_buf_init(&cr, SIGV4_TEXT_MAX);
	s3_buf_init(&names, SIGV4_TEXT_MAX);
	rc = sigv4_canonical_query(&query, req->query, req->query_count);
	if (rc == 0)
		rc = s3_buf_printf(&cr, "%s\n", req->method);
	if (rc == 0)
		rc = uri_encode_append(&cr, req->path, strlen(req->path), true);
	if (rc == 0)
		rc = s3_buf_printf(&cr, "\n%s\n", query);
	if (rc == 0)
		rc = canon_headers(&cr, &names, req);
	if (rc == 0)
		rc = s3_buf_printf(&cr, "\n%s\n%s", s3_buf_str(&names), req->payload_hash);
	if (rc == 0 && !(*out = s3_buf_steal(&cr)))
		rc = -ENOMEM;
	if (rc == 0 && signed_headers && !(*signed_headers = s3_buf_steal(&names))) {
		free(*out);
		rc = -ENOMEM;
	}
	free(query);
	s3_buf_free(&cr);
	s3_buf_free(&names);
	return rc;
}

static bool amz_date_ok(const char *d)
{
	if (!d || strlen(d) != SIGV4_AMZ_DATE_LEN || d[8] != 'T' || d[15] != 'Z')
		return false;
	for (int i = 0; i < 15; i++)
		if (i != 8 && (d[i] < '0' || d[i] > '9'))
			return false;
	return true;
}

static bool scope_part_ok(const char *s)
{
	/* A scope part may not hold the separator or anything that needs escaping. */
	if (!s || !*s || strlen(s) > 64)
		return false;
	for (; *s; s++)
		if (!is_unreserved((unsigned char)*s))
			return false;
	return true;
}

int sigv4_string_to_sign(char **out, const char *amz_date, const char *region,
			 const char *service, const char *canonical_request)
{
	char hash[SIGV4_SHA256_HEX_LEN + 1];
	struct s3_buf b;
	int rc;

	if (!amz_date_ok(amz_date) || !scope_part_ok(region) || !scope_part_ok(service))
		return -EINVAL;
	rc = sigv4_sha256_hex(canonical_request, strlen(canonical_request), hash);
	if (rc < 0)
		return rc;
	s3_buf_init(&b, SIGV4_TEXT_MAX);
	rc = s3_buf_printf(&b, "AWS4-HMAC-SHA256\n%s\n%.8s/%s/%s/aws4_request\n%s", amz_date,
			   amz_date, region, service, hash);
	if (rc == 0 && !(*out = s3_buf_steal(&b)))
		rc = -ENOMEM;
	s3_buf_free(&b);
	return rc;
}

int sigv4_signing_key(uint8_t key[32], const char *secret_key, const char *date,
		      const char *region, const char *service)
{
	char date8[9];
	uint8_t k[32];
	struct s3_buf seed;
	int rc;

	if (!secret_key || !*secret_key || !date || strlen(date) < 8 || !scope_part_ok(region) ||
	    !scope_part_ok(service))
		return -EINVAL;
	memcpy(date8, date, 8);
	date8[8] = '\0';
	for (int i = 0; i < 8; i++)
		if (date8[i] < '0' || date8[i] > '9')
			return -EINVAL;
	s3_buf_init(&seed, 4096);
	rc = s3_buf_printf(&seed, "AWS4%s", secret_key);
	if (rc == 0)
		rc = hmac_sha256(k, seed.data, seed.len, date8);
	if (rc == 0)
		rc = hmac_sha256(k, k, 32, region);
	if (rc == 0)
		rc = hmac_sha256(k, k, 32, service);
	if (rc == 0)
		rc = hmac_sha256(key, k, 32, "aws4_request");
	if (seed.data)
		OPENSSL_cleanse(seed.data, seed.len);
	OPENSSL_cleanse(k, sizeof(k));
	s3_buf_free(&seed);
	return rc;
}

int sigv4_authorization(char **out, const struct sigv4_request *req,
			const struct sigv4_credentials *cred, const char *amz_date)
{
	char *cr = NULL, *names = NULL, *sts = NULL;
	uint8_t key[32], sig[32];
	char sig_hex[65];
	struct s3_buf b;
	int rc;

	if (!cred->access_key || !*cred->access_key || strpbrk(cred->access_key, "/, \r\n"))
		return -EINVAL;
	s3_buf_init(&b, SIGV4_TEXT_MAX);
	rc = sigv4_canonical_request(&cr, &names, req);
	if (rc == 0)
		rc = sigv4_string_to_sign(&sts, amz_date, cred->region, cred->service, cr);
	if (rc == 0)
		rc = sigv4_signing_key(key, cred->secret_key, amz_date, cred->region,
				       cred->service);
	if (rc == 0)
		rc = hmac_sha256(sig, key, sizeof(key), sts);
	if (rc == 0) {
		hex_encode(sig_hex, sig, sizeof(sig));
		rc = s3_buf_printf(&b,
				   "AWS4-HMAC-SHA256 Credential=%s/%.8s/%s/%s/aws4_request, "
				   "SignedHeaders=%s, Signature=%s",
				   cred->access_key, amz_date, cred->region, cred->service, names,
				   sig_hex);
	}
	if (rc == 0 && !(*out = s3_buf_steal(&b)))
		rc = -ENOMEM;
	OPENSSL_cleanse(key, sizeof(key));
	free(cr);
	free(names);
	free(sts);
	s3_buf_free(&b);
	return rc;
}
