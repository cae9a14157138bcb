/* Private to transport/s3*.c: the client object, one signed HTTP request, the XML and INI readers. */
#ifndef TRANSPORT_S3_PRIV_H
#define TRANSPORT_S3_PRIV_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "transport/curl_dl.h"
#include "transport/s3.h"
#include "transport/s3_buf.h"
#include "transport/sigv4.h"

#define S3_HOST_MAX (S3_ENDPOINT_MAX + S3_BUCKET_MAX + 8)
#define S3_ETAG_MAX 130            /* quoted hex MD5, or "-N" suffixed, with room to spare */
#define S3_UPLOAD_ID_MAX 1024
#define S3_XML_MAX ((size_t)8 << 20)    /* listings and other XML answers */
#define S3_ERROR_BODY_MAX ((size_t)64 << 10)
#define S3_POOL_MAX 72                   /* idle easy handles kept: parallelism + callers */
#define S3_SHARE_LOCKS CURL_LOCK_DATA_LAST /* one mutex per kind of shared data */

/* An endpoint URL taken apart: scheme://host[:port][/]. */
struct s3_endpoint {
	bool https;
	char host[S3_ENDPOINT_MAX]; /* without IPv6 brackets, lower-case */
	unsigned port;              /* 0: the scheme's default */
	bool host_is_ip;            /* an IPv4 or IPv6 literal */
};

/*
 * Parse an endpoint URL (url, out). Only http and https, no user info, no path beyond
 * "/", no query or fragment. Returns 0 or -EINVAL.
 */
int s3_endpoint_parse(const char *url, struct s3_endpoint *out);

/* Whether a bucket name is valid for S3 (3-63 of a-z 0-9 . -, alphanumeric ends). */
bool s3_bucket_name_ok(const char *bucket);

/* Whether addressing (cfg, ep) resolves to path-style: explicit, or AUTO's rule. */
bool s3_path_style(const struct s3_config *cfg, const struct s3_endpoint *ep);

/*
 * Find key in [section] of an INI text (text, section, key, out, out_len, section_found).
 * Keys compare case-insensitively, sections exactly; indented lines are nested
 * settings and are skipped; '#' and ';' start comment lines. Returns 0, -ENOENT (no such
 * key or section; *section_found says which), -ENAMETOOLONG (value does not fit).
 */
int s3_ini_get(const char *text, const char *section, const char *key, char *out,
	       size_t out_len, bool *section_found);

/*
 * The client. cfg and the derived URL parts are written only by s3_client_create and
 * read-only afterwards, so any thread may read them; lock guards pool, errmsg, stats,
 * rng, throttle_until_ms and retry_budget_ms.
 */
struct s3_client {
	struct s3_config cfg;
	struct s3_endpoint ep;
	bool path_style;
	char host_header[S3_HOST_MAX];     /* "bucket.s3.example.com" or "127.0.0.1:9000" */
	char base_url[S3_HOST_MAX + 16];   /* "https://" host_header */
	char path_prefix[S3_BUCKET_MAX + 2]; /* "/bucket" (path-style) or "" */
	char bucket_url[S3_HOST_MAX + S3_BUCKET_MAX + 20];
	CURLSH *share;
	pthread_mutex_t share_locks[S3_SHARE_LOCKS];
	pthread_mutex_t lock;
	CURL *pool[S3_POOL_MAX];
	size_t pool_len;
	char errmsg[S3_ERROR_MAX];
	struct s3_stats stats;
	uint64_t rng; /* backoff jitter, xorshift64 */
	uint64_t throttle_until_ms; /* monotonic: S3 asked to slow down; no attempt before */
	unsigned retry_budget_ms;   /* cfg.retry_budget_ms, which s3_client_set_retry_budget changes */
};

/*
 * One S3 request, retried as the client's policy says. The caller fills the inputs,
 * s3_request fills the outputs. A 2xx body goes to out_buf (bounded by its limit), to the
 * fixed window out_fixed, or is dropped.
 */
struct s3_req {
	/* inputs */
	const char *op;                   /* for messages: "put", "get", "list", ... */
	const char *method;               /* "GET", "PUT", "POST", "DELETE", "HEAD" */
	const char *key;                  /* NULL: the bucket itself */
	const struct sigv4_param *query;
	size_t query_count;
	const void *body;                 /* sent when send_body, even if body_len is 0 */
	size_t body_len;
	bool send_body;
	const char *content_type;         /* required with send_body */
	const char *range;                /* Range header value, or NULL */
	const char *if_none_match;        /* If-None-Match header value, or NULL */
	bool body_may_hold_error;         /* a 200 whose XML root is <Error> is a failure */
	const atomic_bool *cancel;        /* set by another thread: stop, no retries */
	struct s3_buf *out_buf;
	uint8_t *out_fixed;               /* exactly out_fixed_len bytes expected */
	size_t out_fixed_len;
	uint64_t out_skip;                /* bytes to drop first (a 200 answer to a Range) */
	/* outputs */
	long status;
	char etag[S3_ETAG_MAX];
	int64_t content_length;           /* -1: absent */
	bool has_content_range;
	uint64_t cr_first, cr_last, cr_total; /* cr_total UINT64_MAX for '*' */
	size_t fixed_got;                 /* bytes placed in out_fixed */
	bool fixed_full;                  /* the window filled and the transfer was stopped */
	int64_t retry_after_ms;           /* Retry-After, or -1 */
	char err_code[64];                /* S3 error Code, "" if none */
	char err_message[160];            /* S3 error Message, sanitised */
	char bucket_region[S3_REGION_MAX]; /* x-amz-bucket-region, "" if absent */
	unsigned attempts;                /* made, the first included */
	uint64_t elapsed_ms;              /* from the first attempt to the last answer */
};

/*
 * Run r against c with retries (c, r). Returns 0 when the final answer is 2xx (and, with
 * out_fixed, the window filled at most; the caller checks lengths), otherwise the
 * errno the error table gives, with the client message set.
 */
int s3_request(struct s3_client *c, struct s3_req *r);

/* Record a failure message "s3: ..." for s3_client_error and return rc (c, rc, fmt, ...). */
int s3_fail(struct s3_client *c, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Describe the object for messages: "s3://bucket/key" or "bucket NAME" (c, key, out, len). */
void s3_describe(const struct s3_client *c, const char *key, char *out, size_t len);

/*
 * Turn a final non-2xx answer into an errno and a message naming op and key (c, r).
 * Also used for transport failures via s3_error_from_curl.
 */
int s3_error_from_response(struct s3_client *c, const struct s3_req *r);

/* Map a libcurl result (with the socket errno curl saw) to an errno (cc, os_errno). */
int s3_errno_from_curl(CURLcode cc, long os_errno);

/* Whether an answer (status, S3 error code) is worth another attempt. */
bool s3_status_retryable(long status, const char *code);

/* Whether a transport failure (its errno) is worth another attempt. */
bool s3_errno_retryable(int rc);

/* Borrow an easy handle from the pool or make one (c, out); give it back (c, h). */
int s3_handle_get(struct s3_client *c, CURL **out);
void s3_handle_put(struct s3_client *c, CURL *h);

/* Add to the counters under the lock (c, field pointer inside c->stats, n). */
void s3_stat_add(struct s3_client *c, uint64_t *field, uint64_t n);

/* Validate an object key: 1..S3_KEY_MAX bytes, no control characters. */
bool s3_key_ok(const char *key);

/* Multipart upload of len bytes (c, key, data, len, flags); see s3_put. */
int s3_multipart_put(struct s3_client *c, const char *key, const void *data, size_t len,
		     unsigned flags);

/* --- XML: the few flat S3 answers, read without a general parser --- */

/*
 * Find the first element <tag>text</tag> (or <tag/>) inside [doc, doc + len) (doc, len,
 * tag, text, text_len). The text may not hold '<' (a leaf element). Returns true if
 * found.
 */
bool s3_xml_find(const char *doc, size_t len, const char *tag, const char **text,
		 size_t *text_len);

/*
 * Decode a leaf's text (out, out_len, text, text_len): the five named entities and
 * &#N; / &#xH; references (as UTF-8). Returns the decoded length, -EBADMSG for an unknown
 * or malformed entity or a NUL, -ENAMETOOLONG if it does not fit with its terminator.
 */
int s3_xml_decode(char *out, size_t out_len, const char *text, size_t text_len);

/* Append s with & < > " ' escaped (b, s). Returns as s3_buf_add. */
int s3_xml_escape(struct s3_buf *b, const char *s);

/* The name of the root element (doc, len, out, out_len). Returns 0 or -EBADMSG. */
int s3_xml_root(const char *doc, size_t len, char *out, size_t out_len);

/*
 * Read a ListObjectsV2 page (doc, len, fn, arg, truncated, token, token_len): fn per
 * <Contents> with its decoded Key and Size, in document order. Returns 0, fn's non-zero
 * value, or -EBADMSG (wrong root, a Contents without Key or Size, a bad Size, a
 * truncated page without NextContinuationToken, a token too long).
 */
int s3_xml_parse_list(const char *doc, size_t len, s3_list_fn fn, void *arg, bool *truncated,
		      char *token, size_t token_len);

/* s3_xml_parse_list with each Contents' LastModified (-1 when absent or unreadable). */
int s3_xml_parse_list_ex(const char *doc, size_t len, s3_list_ex_fn fn, void *arg,
			 bool *truncated, char *token, size_t token_len);

/* An s3_list_fn seen as an s3_list_ex_fn: s3_list_plain_one with a struct s3_list_plain. */
struct s3_list_plain {
	s3_list_fn fn;
	void *arg;
};
int s3_list_plain_one(void *arg, const char *key, uint64_t size, int64_t mtime);

/* An ISO 8601 UTC time as S3 writes it, "2026-12-07T16:22:45.000Z" (t, n): seconds, or -1. */
int64_t s3_xml_time(const char *t, size_t n);

/*
 * Read an <Error> document (doc, len, code, code_len, msg, msg_len, region, region_len):
 * Code, Message and (when S3 names the bucket's region) Region, decoded, control
 * characters replaced; region may be NULL. Returns 0, or -EBADMSG if it is not one.
 */
int s3_xml_parse_error(const char *doc, size_t len, char *code, size_t code_len, char *msg,
		       size_t msg_len, char *region, size_t region_len);

#endif
