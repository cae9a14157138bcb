/* S3 failures as errno values and one-line messages that name the bucket or object and the fix. */
#include "transport/s3_priv.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* How an S3 error code maps, and whether another attempt may succeed. */
struct s3_code_entry {
	const char *code;
	int err;
	bool retry;
};

static const struct s3_code_entry s3_codes[] = {
	{ "NoSuchKey", -ENOENT, false },
	{ "NoSuchUpload", -ENOENT, false },
	{ "NoSuchBucket", -ENXIO, false },
	{ "AccessDenied", -EACCES, false },
	{ "AccountProblem", -EACCES, false },
	{ "AllAccessDisabled", -EACCES, false },
	{ "InvalidAccessKeyId", -EACCES, false },
	{ "InvalidSecurity", -EACCES, false },
	{ "InvalidToken", -EACCES, false },
	{ "ExpiredToken", -EACCES, false },
	{ "TokenRefreshRequired", -EACCES, false },
	{ "SignatureDoesNotMatch", -EACCES, false },
	{ "RequestTimeTooSkewed", -ETIME, false },
	{ "PreconditionFailed", -EEXIST, false },
	{ "BucketAlreadyExists", -EEXIST, false },
	{ "BucketAlreadyOwnedByYou", -EEXIST, false },
	{ "InvalidRange", -ERANGE, false },
	{ "EntityTooLarge", -EFBIG, false },
	{ "KeyTooLongError", -ENAMETOOLONG, false },
	{ "BadDigest", -EBADMSG, false },
	{ "InvalidDigest", -EBADMSG, false },
	{ "XAmzContentSHA256Mismatch", -EBADMSG, false },
	{ "InvalidPart", -EBADMSG, false },
	{ "NotImplemented", -EOPNOTSUPP, false },
	{ "MethodNotAllowed", -EOPNOTSUPP, false },
	{ "SlowDown", -EAGAIN, true },
	{ "ServiceUnavailable", -EAGAIN, true },
	{ "Throttling", -EAGAIN, true },
	{ "ThrottlingException", -EAGAIN, true },
	{ "RequestLimitExceeded", -EAGAIN, true },
	{ "TooManyRequests", -EAGAIN, true },
	{ "InternalError", -EIO, true },
	{ "RequestTimeout", -ETIMEDOUT, true },
	{ "OperationAborted", -EBUSY, true },
};

static const struct s3_code_entry *code_lookup(const char *code)
{
	for (size_t i = 0; code && *code && i < sizeof(s3_codes) / sizeof(s3_codes[0]); i++)
		if (strcmp(s3_codes[i].code, code) == 0)
			return &s3_codes[i];
	return NULL;
}

int s3_fail(struct s3_client *c, int rc, const char *fmt, ...)
{
	char msg[S3_ERROR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&c->lock);
	memcpy(c->errmsg, msg, sizeof(msg));
	pthread_mutex_unlock(&c->lock);
	return rc;
}

void s3_describe(const struct s3_client *c, const char *key, char *out, size_t len)
{
	if (key)
		snprintf(out, len, "s3://%s/%.300s", c->cfg.bucket, key);
	else
		snprintf(out, len, "bucket %s", c->cfg.bucket);
}

bool s3_status_retryable(long status, const char *code)
{
	const struct s3_code_entry *e = code_lookup(code);

	if (e)
		return e->retry;
	return status == 429 || status == 500 || status == 502 || status == 503 || status == 504;
}

bool s3_errno_retryable(int rc)
{
	switch (rc) {
	case -ECONNREFUSED:
	case -ECONNRESET:
	case -ECONNABORTED:
	case -ETIMEDOUT:
	case -EHOSTUNREACH:
	case -ENETUNREACH:
	case -EPIPE:
	case -EAGAIN:
		return true;
	default:
		return false;
	}
}

int s3_errno_from_curl(CURLcode cc, long os_errno)
{
	switch (cc) {
	case CURLE_OK:
		return 0;
	case CURLE_COULDNT_CONNECT:
		if (os_errno == EHOSTUNREACH || os_errno == ENETUNREACH || os_errno == ETIMEDOUT)
			return -(int)os_errno;
		return -ECONNREFUSED;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return -ENXIO;
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
		if (os_errno == EPIPE || os_errno == ECONNABORTED || os_errno == ETIMEDOUT)
			return -(int)os_errno;
		return -ECONNRESET;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return -EPROTO;
	case CURLE_URL_MALFORMAT:
	case CURLE_BAD_FUNCTION_ARGUMENT:
		return -EINVAL;
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	case CURLE_ABORTED_BY_CALLBACK:
		return -ECANCELED;
	default:
		return -EIO;
	}
}

/* The errno for an answer without a code we know (status). */
static int errno_from_status(long status)
{
	if (status >= 300 && status < 400)
		return -EINVAL; /* S3 redirects only for a bucket in another region */
	switch (status) {
	case 400:
	case 411:
		return -EINVAL;
	case 401:
	case 403:
		return -EACCES;
	case 404:
		return -ENOENT;
	case 405:
	case 501:
		return -EOPNOTSUPP;
	case 409:
		return -EBUSY;
	case 412:
		return -EEXIST;
	case 416:
		return -ERANGE;
	case 429:
	case 503:
		return -EAGAIN;
	case 500:
	case 502:
	case 504:
		return -EIO;
	default:
		return -EPROTO;
	}
}

int s3_error_from_response(struct s3_client *c, const struct s3_req *r)
{
	const struct s3_code_entry *e = code_lookup(r->err_code);
	const char *code = r->err_code[0] ? r->err_code : "no error code";
	const char *b = c->cfg.bucket;
	char what[S3_KEY_MAX / 2];
	int rc = e ? e->err : errno_from_status(r->status);

	s3_describe(c, r->key, what, sizeof(what));
	if (strcmp(r->err_code, "NoSuchBucket") == 0)
		return s3_fail(c, rc, "s3: %s %s: bucket %s does not exist: create it or fix --repo",
			       r->op, what, b);
	if (strcmp(r->err_code, "ExpiredToken") == 0 || strcmp(r->err_code, "TokenRefreshRequired") == 0)
		return s3_fail(c, rc, "s3: %s %s: S3 refused the credentials (%s): the session "
			       "token expired: refresh AWS_SESSION_TOKEN or the profile", r->op, what,
			       code);
	if (rc == -EACCES)
		return s3_fail(c, rc, "s3: %s %s: S3 refused the credentials (%s, HTTP %ld): check "
			       "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the profile%s", r->op,
			       what, code, r->status,
			       strcmp(code, "AccessDenied") == 0 ?
			       ", and that its policy allows this operation on the bucket" : "");
	if (rc == -ETIME)
		return s3_fail(c, rc, "s3: %s %s: the local clock differs from S3's by more than 15 "
			       "minutes (RequestTimeTooSkewed): synchronise it (NTP)", r->op, what);
	if (strcmp(r->err_code, "PreconditionFailed") == 0 && r->key)
		return s3_fail(c, rc, "s3: %s %s: the object already exists (PreconditionFailed on "
			       "If-None-Match)", r->op, what);
	if (rc == -ENOENT && r->key)
		return s3_fail(c, rc, "s3: %s %s: no such object (%s)", r->op, what,
			       r->err_code[0] ? r->err_code : "HTTP 404");
	if (r->bucket_region[0] && strcmp(r->bucket_region, c->cfg.region) != 0)
		return s3_fail(c, -EINVAL, "s3: %s %s: bucket %s is in region %s, not %s: set "
			       "AWS_REGION=%s", r->op, what, b, r->bucket_region, c->cfg.region,
			       r->bucket_region);
	if (r->status >= 300 && r->status < 400)
		return s3_fail(c, rc, "s3: %s %s: S3 redirected the request (HTTP %ld %s): the bucket "
			       "is in another region than %s: set AWS_REGION or the endpoint",
			       r->op, what, r->status, code, c->cfg.region);
	if (rc == -EAGAIN)
		return s3_fail(c, rc, "s3: %s %s: S3 is throttling (HTTP %ld %s) and still was after "
			       "%u attempts in %.0f s: try again later, lower the parallelism or "
			       "raise the retry budget", r->op, what, r->status, code, r->attempts,
			       (double)r->elapsed_ms / 1000);
	if (r->status >= 500 || s3_status_retryable(r->status, r->err_code))
		return s3_fail(c, rc, "s3: %s %s: S3 server error (HTTP %ld %s: %s) after %u attempts "
			       "in %.0f s", r->op, what, r->status, code, r->err_message, r->attempts,
			       (double)r->elapsed_ms / 1000);
	return s3_fail(c, rc, "s3: %s %s: S3 refused the request (HTTP %ld %s: %s)", r->op, what,
		       r->status, code, r->err_message);
}
