/* One signed S3 request over libcurl: URL, headers, callbacks that bound the answer, retries with backoff. */
#include "transport/s3_priv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "util/clock.h"

/* A body S3 does not send for writes; more than this in a dropped body is not S3. */
#define S3_DISCARD_MAX ((size_t)1 << 20)

/* The state of one attempt, shared with the curl callbacks. */
struct xfer {
	struct s3_req *r;
	const atomic_bool *cancel;
	const atomic_bool *stop; /* the client's cancel, for a request begun before it was set */
	bool late;               /* begun after the client's cancel: one short attempt */
	size_t body_pos;
	struct s3_buf errbody;
	size_t discarded;
	uint64_t skipped;
	uint64_t kept;
	int sink_rc; /* why the body callback stopped the transfer, 0 if it did not */
	bool local;  /* the attempt failed before sending and already set the message */
};

/* Whether x's request (x) is to stop: its own cancel, or the client's after it began. */
static bool xfer_cancelled(const struct xfer *x)
{
	return (x->cancel && atomic_load(x->cancel)) || (x->stop && atomic_load(x->stop));
}

static bool header_is(const char *p, size_t len, const char *name, const char **val, size_t *vlen)
{
	size_t n = strlen(name);
	const char *e = p + len;

	if (len <= n || strncasecmp(p, name, n) != 0 || p[n] != ':')
		return false;
	p += n + 1;
	while (p < e && (*p == ' ' || *p == '\t'))
		p++;
	while (e > p && (e[-1] == '\r' || e[-1] == '\n' || e[-1] == ' ' || e[-1] == '\t'))
		e--;
	*val = p;
	*vlen = (size_t)(e - p);
	return true;
}

/* Strict decimal of [p, p + n) (p, n, out); false for empty, non-digits or overflow. */
static bool dec_u64(const char *p, size_t n, uint64_t *out)
{
	uint64_t v = 0;

	if (n == 0 || n > 20)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9' || v > (UINT64_MAX - (uint64_t)(p[i] - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t)(p[i] - '0');
	}
	*out = v;
	return true;
}

/* "bytes FIRST-LAST/TOTAL", TOTAL maybe "*" (unknown), into r; false if malformed. */
static bool parse_content_range(struct s3_req *r, const char *v, size_t n)
{
	const char *e = v + n, *dash, *slash;

	if (n < 6 || strncasecmp(v, "bytes ", 6) != 0)
		return false;
	v += 6;
	dash = memchr(v, '-', (size_t)(e - v));
	slash = dash ? memchr(dash, '/', (size_t)(e - dash)) : NULL;
	if (!slash || !dec_u64(v, (size_t)(dash - v), &r->cr_first) ||
	    !dec_u64(dash + 1, (size_t)(slash - dash - 1), &r->cr_last) || r->cr_last < r->cr_first)
		return false;
	if (e - slash == 2 && slash[1] == '*')
		r->cr_total = UINT64_MAX;
	else if (!dec_u64(slash + 1, (size_t)(e - slash - 1), &r->cr_total) ||
		 r->cr_last >= r->cr_total)
		return false;
	return true;
}

/*
 * A Retry-After value (v, n): delta-seconds, or an HTTP date (RFC 9110, IMF-fixdate) from
 * which the wait is counted. Returns milliseconds, or -1 when it is neither; at most a
 * day, so a hostile answer cannot park a client for longer than its budget allows anyway.
 */
static int64_t parse_retry_after(const char *v, size_t n)
{
	char buf[64];
	struct tm tm;
	uint64_t secs;
	const char *end;
	time_t when, now;

	if (dec_u64(v, n, &secs))
		return secs > 86400 ? 86400000 : (int64_t)secs * 1000;
	if (n >= sizeof(buf))
		return -1;
	memcpy(buf, v, n);
	buf[n] = '\0';
	memset(&tm, 0, sizeof(tm));
	end = strptime(buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	if (!end || *end)
		return -1;
	when = timegm(&tm);
	now = time(NULL);
	if (when == (time_t)-1)
		return -1;
	if (when <= now)
		return 0;
	return when - now > 86400 ? 86400000 : (int64_t)(when - now) * 1000;
}

static void reset_response(struct s3_req *r)
{
	r->status = 0;
	r->retry_after_ms = -1;
	r->etag[0] = '\0';
	r->content_length = -1;
	r->has_content_range = false;
	r->err_code[0] = '\0';
	r->err_message[0] = '\0';
	r->bucket_region[0] = '\0';
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *arg)
{
	struct xfer *x = arg;
	struct s3_req *r = x->r;
	size_t len = size * nmemb, vn;
	const char *v;
	uint64_t u;

	if (len >= 12 && memcmp(p, "HTTP/", 5) == 0) {
		const char *sp = memchr(p, ' ', len);

		/* A new header block (after a 1xx): forget the previous one. */
		reset_response(r);
		if (sp && (size_t)(p + len - sp) >= 4 && dec_u64(sp + 1, 3, &u))
			r->status = (long)u;
	} else if (header_is(p, len, "ETag", &v, &vn)) {
		bool ok = vn > 0 && vn < sizeof(r->etag);

		for (size_t i = 0; ok && i < vn; i++)
			ok = v[i] > 0x20 && v[i] < 0x7f && v[i] != '<' && v[i] != '&';
		if (ok) {
			memcpy(r->etag, v, vn);
			r->etag[vn] = '\0';
		}
	} else if (header_is(p, len, "Content-Length", &v, &vn)) {
		r->content_length = dec_u64(v, vn, &u) && u <= INT64_MAX ? (int64_t)u : -2;
		if (r->status >= 200 && r->status < 300 && r->out_buf && r->content_length >= 0) {
			/* Refuse an object over the caller's limit before reading any of it. */
			x->sink_rc = s3_buf_reserve(r->out_buf, (size_t)u);
			if (x->sink_rc < 0)
				return 0;
		}
	} else if (header_is(p, len, "Content-Range", &v, &vn)) {
		r->has_content_range = parse_content_range(r, v, vn);
		if (!r->has_content_range)
			r->cr_first = UINT64_MAX; /* present but malformed */
	} else if (header_is(p, len, "Retry-After", &v, &vn)) {
		r->retry_after_ms = parse_retry_after(v, vn);
	} else if (header_is(p, len, "x-amz-bucket-region", &v, &vn)) {
		bool ok = vn > 0 && vn < sizeof(r->bucket_region);

		for (size_t i = 0; ok && i < vn; i++)
			ok = (v[i] >= 'a' && v[i] <= 'z') || (v[i] >= '0' && v[i] <= '9') || v[i] == '-';
		if (ok) {
			memcpy(r->bucket_region, v, vn);
			r->bucket_region[vn] = '\0';
		}
	}
	return len;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *arg)
{
	struct xfer *x = arg;
	struct s3_req *r = x->r;
	size_t len = size * nmemb, room;

	if (r->status < 200 || r->status >= 300) {
		room = S3_ERROR_BODY_MAX - x->errbody.len;
		if (len > room)
			return 0; /* enough of an error body; the status says what happened */
		return s3_buf_add(&x->errbody, p, len) == 0 ? len : 0;
	}
	if (xfer_cancelled(x)) {
		x->sink_rc = -ECANCELED;
		return 0;
	}
	x->kept += len;
	if (r->out_fixed) {
		if (r->status == 200 && x->skipped < r->out_skip) {
			/* The server ignored Range and sends the whole object: skip to off. */
			uint64_t k = r->out_skip - x->skipped;

			if (k > len)
				k = len;
			x->skipped += k;
			p += k;
			len -= (size_t)k;
		}
		room = r->out_fixed_len - r->fixed_got;
		if (len > room) {
			if (r->status != 200) {
				x->sink_rc = -EBADMSG; /* more than the range asked for */
				return 0;
			}
			len = room;
		}
		memcpy(r->out_fixed + r->fixed_got, p, len);
		r->fixed_got += len;
		if (r->status == 200 && r->fixed_got == r->out_fixed_len) {
			r->fixed_full = true;
			return 0; /* have the range; stop the rest of a whole-object answer */
		}
		return size * nmemb;
	}
	if (r->out_buf) {
		int rc = s3_buf_add(r->out_buf, p, len);

		if (rc < 0) {
			x->sink_rc = rc;
			return 0;
		}
		return len;
	}
	x->discarded += len;
	if (x->discarded > S3_DISCARD_MAX) {
		x->sink_rc = -EBADMSG;
		return 0;
	}
	return len;
}

static size_t on_read(char *dst, size_t size, size_t nmemb, void *arg)
{
	struct xfer *x = arg;
	size_t n = size * nmemb, left = x->r->body_len - x->body_pos;

	if (n > left)
		n = left;
	if (n)
		memcpy(dst, (const uint8_t *)x->r->body + x->body_pos, n);
	x->body_pos += n;
	return n;
}

static int on_seek(void *arg, curl_off_t off, int origin)
{
	struct xfer *x = arg;

	if (origin != SEEK_SET || off < 0 || (uint64_t)off > x->r->body_len)
		return CURL_SEEKFUNC_FAIL;
	x->body_pos = (size_t)off;
	return CURL_SEEKFUNC_OK;
}

static int on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	struct xfer *x = arg;

	(void)dt;
	(void)dn;
	(void)ut;
	(void)un;
	return xfer_cancelled(x) ? 1 : 0;
}

/* Everything that is fixed across attempts: URL, raw path, body hash. */
struct prepared {
	char *url;
	char *path; /* raw, for the signer */
	char payload_hash[SIGV4_SHA256_HEX_LEN + 1];
};

static int prepare(struct s3_client *c, const struct s3_req *r, struct prepared *p)
{
	struct s3_buf path, url;
	char *enc = NULL, *query = NULL;
	int rc;

	s3_buf_init(&path, S3_KEY_MAX + S3_BUCKET_MAX + 8);
	s3_buf_init(&url, (size_t)1 << 20);
	rc = s3_buf_puts(&path, c->path_prefix);
	if (rc == 0 && r->key)
		rc = s3_buf_printf(&path, "/%s", r->key);
	if (rc == 0 && path.len == 0)
		rc = s3_buf_puts(&path, "/");
	if (rc == 0)
		rc = sigv4_uri_encode(&enc, path.data, path.len, true);
	if (rc == 0)
		rc = sigv4_canonical_query(&query, r->query, r->query_count);
	if (rc == 0)
		rc = s3_buf_printf(&url, "%s%s%s%s", c->base_url, enc, query[0] ? "?" : "", query);
	if (rc == 0)
		rc = sigv4_sha256_hex(r->send_body ? r->body : "", r->send_body ? r->body_len : 0,
				      p->payload_hash);
	if (rc == 0) {
		p->path = s3_buf_steal(&path);
		p->url = s3_buf_steal(&url);
		if (!p->path || !p->url)
			rc = -ENOMEM;
	}
	free(enc);
	free(query);
	s3_buf_free(&path);
	s3_buf_free(&url);
	return rc;
}

static struct curl_slist *slist_addf(struct curl_slist *l, bool *oom, const char *name,
				     const char *value)
{
	char line[S3_SESSION_TOKEN_MAX + 64];
	struct curl_slist *n;

	/* "Name:" with nothing after it tells libcurl to drop a header it would add. */
	snprintf(line, sizeof(line), value[0] ? "%s: %s" : "%s:", name, value);
	n = curl_slist_append(l, line);
	if (!n)
		*oom = true;
	return n ? n : l;
}

/*
 * Sign r as of now and make its header list (c, r, p, x, list): the signed headers, the
 * Authorization, and no "Expect". Returns 0 with *list, or what s3_fail returns (x->local
 * set: the failure is this host's, not the server's).
 */
static int attempt_headers(struct s3_client *c, struct s3_req *r, const struct prepared *p,
			   struct xfer *x, struct curl_slist **list)
{
	struct sigv4_header hdrs[8];
	struct sigv4_request sreq;
	struct sigv4_credentials cred = { c->cfg.access_key, c->cfg.secret_key, c->cfg.region, "s3" };
	char amz_date[SIGV4_AMZ_DATE_LEN + 1], *auth = NULL;
	size_t nh = 0;
	bool oom = false;
	time_t now = c->cfg.clock ? c->cfg.clock(c->cfg.clock_arg) : time(NULL);
	int rc;

	*list = NULL;
	sigv4_amz_date(now, amz_date);
	hdrs[nh++] = (struct sigv4_header){ "Host", c->host_header };
	hdrs[nh++] = (struct sigv4_header){ "x-amz-content-sha256", p->payload_hash };
	hdrs[nh++] = (struct sigv4_header){ "x-amz-date", amz_date };
	if (c->cfg.session_token[0])
		hdrs[nh++] = (struct sigv4_header){ "x-amz-security-token", c->cfg.session_token };
	if (r->send_body)
		hdrs[nh++] = (struct sigv4_header){ "Content-Type", r->content_type };
	if (r->range)
		hdrs[nh++] = (struct sigv4_header){ "Range", r->range };
	if (r->if_none_match)
		hdrs[nh++] = (struct sigv4_header){ "If-None-Match", r->if_none_match };
	sreq = (struct sigv4_request){ r->method, p->path, r->query, r->query_count, hdrs, nh,
				       p->payload_hash };
	x->local = false;
	rc = sigv4_authorization(&auth, &sreq, &cred, amz_date);
	if (rc < 0) {
		x->local = true;
		return s3_fail(c, rc, "s3: %s: cannot sign the request: %s", r->op, strerror(-rc));
	}
	for (size_t i = 0; i < nh; i++)
		*list = slist_addf(*list, &oom, hdrs[i].name, hdrs[i].value);
	*list = slist_addf(*list, &oom, "Authorization", auth);
	/* No "Expect: 100-continue": one round trip less, and test servers mishandle it. */
	*list = slist_addf(*list, &oom, "Expect", "");
	free(auth);
	if (oom) {
		curl_slist_free_all(*list);
		*list = NULL;
		x->local = true;
		return s3_fail(c, -ENOMEM, "s3: %s: out of memory", r->op);
	}
	return 0;
}

/* Forget what an earlier attempt of r received (r, x, errbuf). */
static void attempt_reset(struct s3_req *r, struct xfer *x, char *errbuf)
{
	reset_response(r);
	r->fixed_got = 0;
	r->fixed_full = false;
	if (r->out_buf)
		r->out_buf->len = 0;
	x->body_pos = 0;
	x->errbody.len = 0;
	x->discarded = 0;
	x->skipped = 0;
	x->kept = 0;
	x->sink_rc = 0;
	errbuf[0] = '\0';
}

/* Set h up for one attempt of r (c, h, r, p, x, list, errbuf): URL, limits, callbacks. */
static void attempt_setopt(struct s3_client *c, CURL *h, struct s3_req *r,
			   const struct prepared *p, struct xfer *x, struct curl_slist *list,
			   char *errbuf)
{
	curl_easy_reset(h);
	curl_easy_setopt(h, CURLOPT_URL, p->url);
	curl_easy_setopt(h, CURLOPT_SHARE, c->share);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);
	curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	curl_easy_setopt(h, CURLOPT_USERAGENT, "godwit/" GODWIT_VERSION);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)c->cfg.connect_timeout_ms);
	if (x->late && (!c->cfg.request_timeout_ms ||
			c->cfg.request_timeout_ms > S3_CANCELLED_ATTEMPT_MS))
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)S3_CANCELLED_ATTEMPT_MS);
	else if (c->cfg.request_timeout_ms)
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)c->cfg.request_timeout_ms);
	if (c->cfg.stall_timeout_ms) {
		curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME,
				 (long)((c->cfg.stall_timeout_ms + 999) / 1000));
	}
	if (c->cfg.ca_file[0])
		curl_easy_setopt(h, CURLOPT_CAINFO, c->cfg.ca_file);
	curl_easy_setopt(h, CURLOPT_BUFFERSIZE, 256L << 10);
	curl_easy_setopt(h, CURLOPT_UPLOAD_BUFFERSIZE, 1L << 20);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
	if (x->cancel || x->stop) {
		curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
		curl_easy_setopt(h, CURLOPT_XFERINFODATA, x);
		curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	}
	if (strcmp(r->method, "HEAD") == 0) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (r->send_body) {
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->body_len);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(h, CURLOPT_READDATA, x);
		curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, on_seek);
		curl_easy_setopt(h, CURLOPT_SEEKDATA, x);
		if (strcmp(r->method, "PUT") != 0)
			curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, r->method);
	} else if (strcmp(r->method, "GET") != 0) {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, r->method);
	}
}

/*
 * What a performed attempt came to (h, r, x, cc, os_errno, retry): 0 on 2xx; else the
 * error, with the server's error code and message in r and *retry set if worth repeating.
 */
static int attempt_outcome(CURL *h, struct s3_req *r, const struct xfer *x, CURLcode cc,
			   long os_errno, bool *retry)
{
	int rc;

	if (cc == CURLE_WRITE_ERROR && x->sink_rc)
		return x->sink_rc; /* the answer broke a bound: final, the caller words it */
	if (cc == CURLE_WRITE_ERROR && (r->fixed_full || r->status >= 300))
		cc = CURLE_OK;     /* we stopped it on purpose */
	if (cc != CURLE_OK) {
		rc = s3_errno_from_curl(cc, os_errno);
		*retry = s3_errno_retryable(rc);
		return rc;
	}
	if (r->status == 0)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
	if (r->status >= 300 && x->errbody.len) {
		char region[S3_REGION_MAX];

		s3_xml_parse_error(x->errbody.data, x->errbody.len, r->err_code,
				   sizeof(r->err_code), r->err_message, sizeof(r->err_message),
				   region, sizeof(region));
		if (region[0] && !r->bucket_region[0])
			memcpy(r->bucket_region, region, sizeof(region));
	}
	if (r->status >= 200 && r->status < 300 && r->body_may_hold_error && r->out_buf &&
	    r->out_buf->len &&
	    s3_xml_parse_error(r->out_buf->data, r->out_buf->len, r->err_code, sizeof(r->err_code),
			       r->err_message, sizeof(r->err_message), NULL, 0) == 0) {
		/* CompleteMultipartUpload may fail after its 200 header went out. */
		*retry = s3_status_retryable(500, r->err_code);
		return -EIO;
	}
	if (r->status >= 200 && r->status < 300)
		return 0;
	*retry = s3_status_retryable(r->status, r->err_code);
	return -EIO;
}

/* Sign and send one attempt (c, h, r, p, x, errbuf); 0 on 2xx. *retry says if worth repeating. */
static int attempt_once(struct s3_client *c, CURL *h, struct s3_req *r, const struct prepared *p,
			struct xfer *x, char *errbuf, bool *retry)
{
	struct curl_slist *list;
	long os_errno = 0, connects = 0;
	CURLcode cc;
	int rc;

	*retry = false;
	rc = attempt_headers(c, r, p, x, &list);
	if (rc < 0)
		return rc;
	attempt_reset(r, x, errbuf);
	attempt_setopt(c, h, r, p, x, list, errbuf);
	cc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &os_errno);
	if (curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &connects) == CURLE_OK && connects > 0)
		s3_stat_add(c, &c->stats.connects, (uint64_t)connects);
	curl_slist_free_all(list);
	s3_stat_add(c, &c->stats.bytes_sent, r->send_body ? x->body_pos : 0);
	s3_stat_add(c, &c->stats.bytes_received, x->kept);
	return attempt_outcome(h, r, x, cc, os_errno, retry);
}

/* The wait before retry number attempt (c, attempt): "equal jitter" over a doubling step. */
static uint64_t backoff_ms(struct s3_client *c, unsigned attempt)
{
	uint64_t d = c->cfg.retry_base_ms, r;

	for (unsigned i = 1; i < attempt && d < c->cfg.retry_max_ms; i++)
		d *= 2;
	if (d > c->cfg.retry_max_ms)
		d = c->cfg.retry_max_ms;
	pthread_mutex_lock(&c->lock);
	c->rng ^= c->rng << 13;
	c->rng ^= c->rng >> 7;
	c->rng ^= c->rng << 17;
	r = c->rng;
	pthread_mutex_unlock(&c->lock);
	/* At least half the step, so the retries really spread out. */
	return d / 2 + r % (d - d / 2 + 1);
}

/* Sleep until the monotonic time until_ms, or a cancel of x (until_ms, x). */
static void sleep_until(uint64_t until_ms, const struct xfer *x)
{
	for (uint64_t now = clock_now_ms(); now < until_ms && !xfer_cancelled(x); now = clock_now_ms()) {
		uint64_t step = until_ms - now < 50 ? until_ms - now : 50;
		struct timespec ts = { .tv_sec = 0, .tv_nsec = (long)(step * 1000000) };

		nanosleep(&ts, NULL);
	}
}

/* Whether an answer asks the client to slow down (r): 503 SlowDown or 429. */
static bool throttling(const struct s3_req *r)
{
	return r->status == 429 || (r->status == 503 && (!r->err_code[0] ||
							 !strcmp(r->err_code, "SlowDown")));
}

/* What failed, for a retry's log line (r, rc, errbuf, out, len). */
static void failure_text(const struct s3_req *r, int rc, const char *errbuf, char *out, size_t len)
{
	if (r->status >= 300 || r->err_code[0])
		snprintf(out, len, "HTTP %ld%s%s", r->status, r->err_code[0] ? " " : "", r->err_code);
	else
		snprintf(out, len, "%s%s%s", strerror(-rc), errbuf[0] ? ": " : "", errbuf);
}

/*
 * After a failed attempt (c, r, rc, errbuf, retries, t0, wait): the wait before the next
 * one, or false when the retries are over: max_retries made, or the next attempt would
 * start past the budget. A throttling answer holds back every request of the client.
 */
static bool retry_plan(struct s3_client *c, struct s3_req *r, int rc, const char *errbuf,
		       unsigned retries, uint64_t t0, uint64_t *wait)
{
	char what[S3_KEY_MAX / 2], why[CURL_ERROR_SIZE + 64], line[S3_KEY_MAX + 400];
	uint64_t now = clock_now_ms(), budget;

	*wait = backoff_ms(c, retries + 1);
	if (r->retry_after_ms > 0 && (uint64_t)r->retry_after_ms > *wait)
		*wait = (uint64_t)r->retry_after_ms;
	pthread_mutex_lock(&c->lock);
	budget = c->retry_budget_ms;
	if (throttling(r)) {
		c->stats.throttled++;
		if (c->throttle_until_ms < now + *wait)
			c->throttle_until_ms = now + *wait;
	}
	pthread_mutex_unlock(&c->lock);
	if (retries >= c->cfg.max_retries || now - t0 + *wait > budget)
		return false;
	if (c->cfg.log) {
		s3_describe(c, r->key, what, sizeof(what));
		failure_text(r, rc, errbuf, why, sizeof(why));
		snprintf(line, sizeof(line), "s3: %s %s: %s; retry %u in %.1f s (%.0f s of the %.0f s "
			 "retry budget spent)%s", r->op, what, why, retries + 1, (double)*wait / 1000,
			 (double)(now - t0) / 1000, (double)budget / 1000,
			 r->retry_after_ms >= 0 ? ", as Retry-After asks" : "");
		c->cfg.log(c->cfg.log_arg, line);
	}
	return true;
}

int s3_request(struct s3_client *c, struct s3_req *r)
{
	struct prepared p = { 0 };
	const atomic_bool *stop = c->cfg.cancel;
	struct xfer x = { .r = r, .cancel = r->cancel };
	char errbuf[CURL_ERROR_SIZE], what[S3_KEY_MAX / 2];
	unsigned attempt;
	uint64_t t0, wait = 0;
	bool retry = false;
	CURL *h = NULL;
	int rc;

	rc = prepare(c, r, &p);
	if (rc < 0)
		return s3_fail(c, rc, "s3: %s: cannot build the request: %s", r->op, strerror(-rc));
	rc = s3_handle_get(c, &h);
	if (rc < 0) {
		free(p.url);
		free(p.path);
		return s3_fail(c, rc, "s3: %s: out of memory", r->op);
	}
	s3_buf_init(&x.errbody, S3_ERROR_BODY_MAX);
	x.late = stop && atomic_load(stop);
	x.stop = x.late ? NULL : stop;
	t0 = clock_now_ms();
	for (attempt = 0;; attempt++) {
		uint64_t until;

		if (attempt) {
			s3_stat_add(c, &c->stats.retries, 1);
			sleep_until(clock_now_ms() + wait, &x);
		}
		/* S3 asked this client to slow down: every request waits, not just the one told. */
		pthread_mutex_lock(&c->lock);
		until = c->throttle_until_ms;
		pthread_mutex_unlock(&c->lock);
		if (!x.late)
			sleep_until(until, &x);
		if (xfer_cancelled(&x)) {
			rc = -ECANCELED;
			break;
		}
		s3_stat_add(c, &c->stats.requests, 1);
		rc = attempt_once(c, h, r, &p, &x, errbuf, &retry);
		if (rc < 0 && xfer_cancelled(&x)) {
			rc = -ECANCELED; /* aborted through on_progress or a callback */
			break;
		}
		if (rc == 0 || !retry || x.late ||
		    !retry_plan(c, r, rc, errbuf, attempt, t0, &wait))
			break;
	}
	r->attempts = attempt + 1;
	r->elapsed_ms = clock_now_ms() - t0;
	s3_describe(c, r->key, what, sizeof(what));
	if (rc == -ECANCELED && x.stop && atomic_load(x.stop)) {
		s3_fail(c, rc, "s3: %s %s: cancelled after %.1f s (its caller is stopping)", r->op,
			what, (double)r->elapsed_ms / 1000);
	} else if (rc == 0 || rc == -ECANCELED || x.local) {
		/* success; stopped because a sibling failed (that one reports); or reported */
	} else if (r->status >= 300 || r->err_code[0]) {
		rc = s3_error_from_response(c, r);
	} else if (rc == -EBADMSG || rc == -EFBIG || rc == -ENOMEM) {
		s3_fail(c, rc, "s3: %s %s: %s", r->op, what,
			rc == -EFBIG ? "the answer is larger than allowed" :
			rc == -EBADMSG ? "the server sent more than was asked for" : "out of memory");
	} else if (rc == -ENXIO) {
		s3_fail(c, rc, "s3: %s %s: cannot resolve the S3 endpoint %s: %s: fix the endpoint "
			"URL", r->op, what, c->base_url, errbuf[0] ? errbuf : "unknown host");
	} else {
		s3_fail(c, rc, "s3: %s %s: %s the S3 endpoint %s: %s (%s; %u attempts in %.0f s)",
			r->op, what, r->status ? "lost the connection to" : "cannot reach",
			c->base_url, strerror(-rc), errbuf[0] ? errbuf : "no detail", r->attempts,
			(double)r->elapsed_ms / 1000);
	}
	s3_handle_put(c, h);
	s3_buf_free(&x.errbody);
	free(p.url);
	free(p.path);
	return rc;
}
