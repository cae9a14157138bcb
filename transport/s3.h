/* S3 object store client: whole-object put (multipart above a threshold), get, ranged get, head, list, delete. */
#ifndef TRANSPORT_S3_H
#define TRANSPORT_S3_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/*
 * The object store under the image repository. Objects are written once, whole, and read
 * whole or by byte range; the client speaks S3's REST API over libcurl and signs every
 * request with SigV4 (transport/sigv4.h), including the SHA-256 of the body.
 *
 * Return convention: 0 or a negative errno. After a failure s3_client_error() gives one
 * line that names the operation, the bucket or object and, where there is one, the fix.
 * The codes:
 *
 *   -ENOENT        no such object (NoSuchKey, or any 404 on HEAD: a HEAD response has no
 *                  body, so a missing bucket looks the same there), or NoSuchUpload
 *   -ENXIO         no such bucket (NoSuchBucket), or the endpoint's host name does not
 *                  resolve
 *   -EACCES        S3 refused the credentials or the request: AccessDenied,
 *                  SignatureDoesNotMatch, InvalidAccessKeyId, InvalidToken, ExpiredToken
 *   -ETIME         RequestTimeTooSkewed: the local clock is off by more than 15 minutes
 *   -EEXIST        S3_PUT_IF_ABSENT and the object exists (412), or the bucket name is
 *                  taken by another account (BucketAlreadyExists)
 *   -ERANGE        a ranged get reaching past the end of the object (416, or a shorter
 *                  answer than asked)
 *   -EFBIG         the object is larger than the caller's limit
 *   -EBADMSG       the server's answer is malformed: bad XML, a Content-Range or length
 *                  that does not match the request, a missing ETag or UploadId, a list
 *                  continuation token that repeats
 *   -EINVAL        invalid argument or configuration, or S3 said 400 / wrong region
 *   -EOPNOTSUPP    the server does not implement the operation (405, 501)
 *   -EBUSY         a conflicting operation (409, OperationAborted after the retries)
 *   -ECONNREFUSED, -ECONNRESET, -ETIMEDOUT, -EHOSTUNREACH, -ENETUNREACH
 *                  the endpoint could not be reached, after the retries
 *   -EAGAIN        still throttled (503 SlowDown, 429) after the retries
 *   -EIO           still a server error (500, 502, 504) after the retries, or another
 *                  transfer failure
 *   -EPROTO        TLS failure or an HTTP answer S3 never gives
 *   -ENOMEM
 *
 * Retries: 5xx, 429, 400 RequestTimeout, 200-with-an-error on CompleteMultipartUpload,
 * connection failures, resets and timeouts are retried with exponential backoff and
 * jitter (each wait is uniform in [d/2, d], d = retry_base_ms doubled per attempt, at
 * most retry_max_ms) for as long as retry_budget_ms allows (5 minutes by default: an
 * outage of a minute or two, a server restarting, is waited out) and at most
 * max_retries times; every attempt is signed afresh. A Retry-After header (seconds or an
 * HTTP date) makes the wait at least that long. Throttling (503 SlowDown, 429) slows the
 * whole client, as S3 asks: every request of every thread waits out the same backoff
 * before its next attempt. Each retry is one line to cfg.log (when set), naming the
 * request, what failed and the wait. Other 4xx answers are final at once.
 *
 * Threads: a client may be used by several threads at once. Each request borrows an easy
 * handle from the client's pool and returns it, so connections stay open for the next
 * request; DNS answers and TLS sessions are shared between the handles (a CURLSH; libcurl
 * does not support sharing the connection cache itself between concurrent threads).
 * Multipart uploads run their parts on up to `parallelism` threads, one handle each.
 *
 * Connections: requests reuse the connection their handle kept open when the server
 * allows keep-alive (stats.connects counts new ones). libcurl's proxy variables
 * (https_proxy, no_proxy) apply. s3_client_create calls curl_global_init, which is
 * thread-safe from libcurl 7.84 on; with an older libcurl, create the first client before
 * starting threads.
 *
 * Untrusted input: every length, range, token and XML element from the server is
 * checked before use, and response bodies are bounded (the caller's limit for objects,
 * 8 MiB for listings and other XML, 64 KiB for error bodies).
 */

#define S3_ENDPOINT_MAX 256
#define S3_REGION_MAX 64
#define S3_BUCKET_MAX 64
#define S3_ACCESS_KEY_MAX 128
#define S3_SECRET_KEY_MAX 128
#define S3_SESSION_TOKEN_MAX 4096
#define S3_PATH_MAX 512
#define S3_KEY_MAX 1024       /* bytes in an object key, S3's own limit */
#define S3_ERROR_MAX 512      /* bytes in a client error message */

/* Five MiB is S3's smallest part (every part but the last); it allows 10000 parts. */
#define S3_PART_MIN ((size_t)5 << 20)
#define S3_PARTS_MAX 10000

/* How the bucket appears in URLs. */
enum s3_addressing {
	S3_ADDRESSING_AUTO = 0, /* path-style for IP, localhost or dotted-bucket endpoints, else virtual-hosted */
	S3_ADDRESSING_PATH,     /* http://endpoint/bucket/key */
	S3_ADDRESSING_VIRTUAL,  /* http://bucket.endpoint/key */
};

/* Supplies the time for signing (arg); tests pin it. NULL means time(NULL). */
typedef time_t (*s3_clock_fn)(void *arg);

/* Receives one line per retry (arg, line), without a newline; from any thread. */
typedef void (*s3_log_fn)(void *arg, const char *line);

/*
 * Everything a client needs. Fill it with s3_config_init, then s3_config_from_env (or by
 * hand), then set bucket. Strings are copied in; the struct holds no pointers but the
 * clock's.
 */
struct s3_config {
	char endpoint[S3_ENDPOINT_MAX];         /* "http://127.0.0.1:9000"; "" = AWS for region */
	char region[S3_REGION_MAX];             /* "us-east-1" by default */
	char bucket[S3_BUCKET_MAX];
	enum s3_addressing addressing;
	char access_key[S3_ACCESS_KEY_MAX];
	char secret_key[S3_SECRET_KEY_MAX];
	char session_token[S3_SESSION_TOKEN_MAX]; /* "" unless temporary credentials */
	char ca_file[S3_PATH_MAX];              /* PEM bundle; "" = the system's */
	unsigned connect_timeout_ms;            /* TCP + TLS setup per attempt; 10 s */
	unsigned request_timeout_ms;            /* a whole attempt; 0 = no limit (default) */
	unsigned stall_timeout_ms;              /* an attempt fails after this long without a byte moving; 30 s */
	unsigned max_retries;                   /* attempts after the first, at most; 1000 */
	unsigned retry_base_ms;                 /* first backoff; 100 ms */
	unsigned retry_max_ms;                  /* longest backoff; 20 s */
	unsigned retry_budget_ms;               /* no retry starts later than this after the
						   first attempt; 300 s; 0: no retries */
	unsigned parallelism;                   /* concurrent part uploads; 4, at most 64 */
	size_t multipart_threshold;             /* puts above this are multipart; 16 MiB */
	size_t part_size;                       /* at least S3_PART_MIN; 8 MiB */
	unsigned list_page_keys;                /* ListObjectsV2 max-keys, 1..1000; 1000 */
	s3_clock_fn clock;                      /* NULL: time(NULL) */
	void *clock_arg;
	s3_log_fn log;                          /* each retry; NULL: none */
	void *log_arg;
	/*
	 * Set by another thread (NULL: never): every transfer in flight stops within about a
	 * second and fails with -ECANCELED, no retry follows, and a request started later
	 * gets one attempt of at most S3_CANCELLED_ATTEMPT_MS (cleanup, such as a lock's
	 * release, still goes out to a server that answers).
	 */
	const atomic_bool *cancel;
};

/* The one attempt a request gets once the client's cancel is set. */
#define S3_CANCELLED_ATTEMPT_MS 3000

/* The client's counters since creation; for tests and measurements. */
struct s3_stats {
	uint64_t requests;          /* HTTP attempts, retries included */
	uint64_t connects;          /* new connections opened (the rest reused one) */
	uint64_t retries;           /* attempts that were repeats */
	uint64_t throttled;         /* answers that asked to slow down (503 SlowDown, 429) */
	uint64_t bytes_sent;        /* request bodies, every attempt */
	uint64_t bytes_received;    /* response bodies kept */
	uint64_t multipart_uploads; /* started */
	uint64_t aborts;            /* multipart uploads an abort was sent for */
	uint64_t aborts_failed;     /* ... and the abort itself failed */
};

struct s3_client;

/* Defaults for every field (cfg): region us-east-1, timeouts, retries, sizes above. */
void s3_config_init(struct s3_config *cfg);

/* The retry budget of an open client (c, budget_ms), as cfg.retry_budget_ms; any thread. */
void s3_client_set_retry_budget(struct s3_client *c, unsigned budget_ms);

/*
 * Fill credentials, region and endpoint from the standard AWS environment (cfg, profile,
 * err, errlen). With profile NULL: AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+
 * AWS_SESSION_TOKEN) when both are set, else the profile AWS_PROFILE names (or
 * "default") in the shared credentials file: AWS_SHARED_CREDENTIALS_FILE, else
 * ~/.aws/credentials. A non-NULL profile always reads that profile from the file.
 * Region: AWS_REGION, else AWS_DEFAULT_REGION, else "region" of the profile in the
 * config file (AWS_CONFIG_FILE or ~/.aws/config, section "[profile NAME]" or
 * "[default]"), else the value already in cfg. Endpoint: AWS_ENDPOINT_URL_S3, else
 * AWS_ENDPOINT_URL, else unchanged. Fields not found keep their values. Returns 0;
 * -ENOKEY when no credentials were found at all; -ENOENT when the named profile is not in
 * the file; -EINVAL for a half-set pair (a key id without a secret), a value too long
 * or a malformed file; or the error reading the file. On failure err holds one line
 * saying what to set.
 */
int s3_config_from_env(struct s3_config *cfg, const char *profile, char *err, size_t errlen);

/*
 * Create a client (out, cfg, err, errlen): check cfg (bucket name, endpoint URL,
 * credentials, sizes) and set up libcurl; no request is sent. Returns 0, -EINVAL with a
 * reason in err, or -ENOMEM.
 */
int s3_client_create(struct s3_client **out, const struct s3_config *cfg, char *err,
		     size_t errlen);

/* Close connections and free c (may be NULL). No request may be in flight. */
void s3_client_destroy(struct s3_client *c);

/*
 * Copy the message of the client's latest failure into buf (c, buf, len), "" if none.
 * With several threads it is the latest failure of any of them. Returns strlen of the
 * message.
 */
size_t s3_client_error(struct s3_client *c, char *buf, size_t len);

/* Copy the counters (c, out). */
void s3_client_stats(struct s3_client *c, struct s3_stats *out);

/* The URL of the bucket (c): "http://127.0.0.1:9000/bucket" or "https://bucket.host". */
const char *s3_client_bucket_url(const struct s3_client *c);

/* Create the bucket (c), for tests and setup; one the caller already owns is success. */
int s3_bucket_create(struct s3_client *c);

/* Flags for s3_put_ex. */
#define S3_PUT_IF_ABSENT 1u /* send If-None-Match: *, see s3_put_ex */

/*
 * Store len bytes as object key (c, key, data, len), replacing any object of that name.
 * Up to multipart_threshold bytes go in one PUT; above it, a multipart upload with
 * part_size parts (grown so there are at most 10000) sent on up to parallelism threads.
 * A failed multipart upload is aborted before returning, so no parts are left behind
 * (if the abort fails too, the message says so, and a bucket lifecycle rule
 * AbortIncompleteMultipartUpload cleans up). The object appears whole or not at all.
 * Keys: 1..1024 bytes of UTF-8 without control characters (-EINVAL). Returns as above.
 */
int s3_put(struct s3_client *c, const char *key, const void *data, size_t len);

/*
 * s3_put with flags (c, key, data, len, flags). S3_PUT_IF_ABSENT asks the server to
 * refuse when the key exists (-EEXIST): S3 has honoured If-None-Match on PutObject and
 * CompleteMultipartUpload since August 2024, and moto 5 does, but older S3-compatible
 * servers ignore the header and overwrite silently. Callers must not rely on it for
 * correctness: the repository names objects by content hash, so a second writer of a key
 * writes the same bytes and the overwrite is harmless; the flag only saves that upload.
 */
int s3_put_ex(struct s3_client *c, const char *key, const void *data, size_t len,
	      unsigned flags);

/*
 * Read the whole object key (c, key, max_len, out, out_len) into a malloc'd buffer the
 * caller frees (also NUL-terminated, one byte past out_len, for text). An object longer
 * than max_len fails with -EFBIG without reading it all. Returns as above.
 */
int s3_get(struct s3_client *c, const char *key, size_t max_len, void **out, size_t *out_len);

/*
 * Read exactly len > 0 bytes at offset off of object key into buf (c, key, off, len, buf).
 * The server's Content-Range and length must match the request (-EBADMSG otherwise); a
 * range past the end of the object is -ERANGE (buf is then undefined). A server that
 * ignores Range and sends the whole object is handled: the transfer stops once the range
 * has arrived. Returns as above.
 */
int s3_get_range(struct s3_client *c, const char *key, uint64_t off, size_t len, void *buf);

/* The size of object key (c, key, size). Returns 0, -ENOENT, or as above. */
int s3_head(struct s3_client *c, const char *key, uint64_t *size);

/*
 * Called once per listed object (arg, key, size) in key order. Return 0 to go on; any
 * other value stops the listing and s3_list returns it.
 */
typedef int (*s3_list_fn)(void *arg, const char *key, uint64_t size);

/*
 * List every object whose key starts with prefix ("" or NULL for all) (c, prefix, fn,
 * arg), a page of list_page_keys at a time (ListObjectsV2 with continuation tokens).
 * Keys the server returns outside the prefix, a truncated page without a token, or a
 * token that repeats are -EBADMSG. Returns 0 after the last object, fn's non-zero
 * value, or as above.
 */
int s3_list(struct s3_client *c, const char *prefix, s3_list_fn fn, void *arg);

/*
 * Called once per listed object by s3_list_ex (arg, key, size, mtime): mtime is the
 * object's LastModified in seconds since the epoch (UTC), or -1 when the server gave
 * none the client could read. Return as s3_list_fn.
 */
typedef int (*s3_list_ex_fn)(void *arg, const char *key, uint64_t size, int64_t mtime);

/* s3_list with each object's LastModified (c, prefix, fn, arg). */
int s3_list_ex(struct s3_client *c, const char *prefix, s3_list_ex_fn fn, void *arg);

/* Delete object key (c, key); deleting a missing key succeeds, as in S3. */
int s3_delete(struct s3_client *c, const char *key);

#endif
