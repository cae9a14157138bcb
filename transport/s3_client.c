/* The S3 client object: configuration checks, libcurl setup, the easy-handle pool, messages and counters. */
#include "transport/s3_priv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *arg)
{
	struct s3_client *c = arg;

	(void)h;
	(void)access;
	pthread_mutex_lock(&c->share_locks[(unsigned)data % S3_SHARE_LOCKS]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *arg)
{
	struct s3_client *c = arg;

	(void)h;
	pthread_mutex_unlock(&c->share_locks[(unsigned)data % S3_SHARE_LOCKS]);
}

static int config_check(const struct s3_config *cfg, char *err, size_t errlen)
{
	const char *why = NULL;

	if (!s3_bucket_name_ok(cfg->bucket))
		why = "bucket name must be 3-63 characters of a-z 0-9 . -";
	else if (!cfg->access_key[0] || !cfg->secret_key[0])
		why = "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or a profile";
	else if (strpbrk(cfg->access_key, "/, \r\n") || strpbrk(cfg->secret_key, "\r\n") ||
		 strpbrk(cfg->session_token, "\r\n"))
		why = "credentials hold characters no AWS key has";
	else if (!cfg->region[0])
		why = "no region: set AWS_REGION";
	else if (cfg->parallelism < 1 || cfg->parallelism > 64)
		why = "parallelism must be 1..64";
	else if (cfg->part_size < S3_PART_MIN || cfg->part_size > ((size_t)5 << 30))
		why = "part size must be 5 MiB..5 GiB";
	else if (cfg->multipart_threshold < 1 || cfg->multipart_threshold > ((size_t)5 << 30))
		why = "multipart threshold must be 1 byte..5 GiB";
	else if (cfg->list_page_keys < 1 || cfg->list_page_keys > 1000)
		why = "list page size must be 1..1000";
	else if (cfg->retry_base_ms < 1 || cfg->retry_max_ms < cfg->retry_base_ms ||
		 cfg->max_retries > 100000 || cfg->retry_budget_ms > 24u * 3600 * 1000)
		why = "retry settings out of range (base >= 1 ms, max >= base, at most 100000 "
		      "retries and a day)";
	if (!why)
		return 0;
	snprintf(err, errlen, "s3: %s", why);
	return -EINVAL;
}

int s3_client_create(struct s3_client **out, const struct s3_config *cfg, char *err,
		     size_t errlen)
{
	char port[16] = "", endpoint[S3_ENDPOINT_MAX + 32];
	struct s3_client *c;
	struct timespec ts;
	int rc, n;

	if (err && errlen)
		err[0] = '\0';
	rc = config_check(cfg, err, errlen);
	if (rc < 0)
		return rc;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->cfg = *cfg;
	if (c->cfg.endpoint[0])
		snprintf(endpoint, sizeof(endpoint), "%s", c->cfg.endpoint);
	else
		snprintf(endpoint, sizeof(endpoint), "https://s3.%s.amazonaws.com", c->cfg.region);
	rc = s3_endpoint_parse(endpoint, &c->ep);
	if (rc < 0) {
		snprintf(err, errlen, "s3: bad endpoint URL %s: want http[s]://host[:port]", endpoint);
		goto err_free;
	}
	c->path_style = s3_path_style(&c->cfg, &c->ep);
	if (c->ep.port)
		snprintf(port, sizeof(port), ":%u", c->ep.port);
	n = snprintf(c->host_header, sizeof(c->host_header), "%s%s%s%s%s%s",
		     c->path_style ? "" : c->cfg.bucket, c->path_style ? "" : ".",
		     strchr(c->ep.host, ':') ? "[" : "", c->ep.host,
		     strchr(c->ep.host, ':') ? "]" : "", port);
	if (n < 0 || (size_t)n >= sizeof(c->host_header)) {
		rc = -EINVAL;
		snprintf(err, errlen, "s3: endpoint host name too long");
		goto err_free;
	}
	snprintf(c->base_url, sizeof(c->base_url), "%s://%s", c->ep.https ? "https" : "http",
		 c->host_header);
	if (c->path_style)
		snprintf(c->path_prefix, sizeof(c->path_prefix), "/%s", c->cfg.bucket);
	snprintf(c->bucket_url, sizeof(c->bucket_url), "%s%s", c->base_url, c->path_prefix);

	rc = curl_dl_load(err, errlen);
	if (rc < 0)
		goto err_free;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		rc = -ENOMEM;
		goto err_free;
	}
	for (int i = 0; i < S3_SHARE_LOCKS; i++)
		pthread_mutex_init(&c->share_locks[i], NULL);
	pthread_mutex_init(&c->lock, NULL);
	c->share = curl_share_init();
	if (!c->share) {
		rc = -ENOMEM;
		goto err_global;
	}
	/* DNS and TLS sessions only: libcurl cannot share connections between threads. */
	if (curl_share_setopt(c->share, CURLSHOPT_LOCKFUNC, share_lock) ||
	    curl_share_setopt(c->share, CURLSHOPT_UNLOCKFUNC, share_unlock) ||
	    curl_share_setopt(c->share, CURLSHOPT_USERDATA, c) ||
	    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) ||
	    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION)) {
		rc = -ENOMEM;
		goto err_share;
	}
	clock_gettime(CLOCK_MONOTONIC, &ts);
	c->rng = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ (uint64_t)(uintptr_t)c;
	if (!c->rng)
		c->rng = 0x9E3779B97F4A7C15ull;
	c->retry_budget_ms = cfg->retry_budget_ms;
	*out = c;
	return 0;
err_share:
	curl_share_cleanup(c->share);
err_global:
	pthread_mutex_destroy(&c->lock);
	for (int i = 0; i < S3_SHARE_LOCKS; i++)
		pthread_mutex_destroy(&c->share_locks[i]);
	curl_global_cleanup();
err_free:
	free(c);
	return rc;
}

void s3_client_destroy(struct s3_client *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->pool_len; i++)
		curl_easy_cleanup(c->pool[i]);
	curl_share_cleanup(c->share);
	pthread_mutex_destroy(&c->lock);
	for (int i = 0; i < S3_SHARE_LOCKS; i++)
		pthread_mutex_destroy(&c->share_locks[i]);
	/* Wipe the secret before the memory goes back to malloc. */
	memset(c->cfg.secret_key, 0, sizeof(c->cfg.secret_key));
	memset(c->cfg.session_token, 0, sizeof(c->cfg.session_token));
	free(c);
	curl_global_cleanup();
}

size_t s3_client_error(struct s3_client *c, char *buf, size_t len)
{
	size_t n;

	pthread_mutex_lock(&c->lock);
	n = strlen(c->errmsg);
	if (len)
		snprintf(buf, len, "%s", c->errmsg);
	pthread_mutex_unlock(&c->lock);
	return n;
}

void s3_client_stats(struct s3_client *c, struct s3_stats *out)
{
	pthread_mutex_lock(&c->lock);
	*out = c->stats;
	pthread_mutex_unlock(&c->lock);
}

const char *s3_client_bucket_url(const struct s3_client *c)
{
	return c->bucket_url;
}

void s3_stat_add(struct s3_client *c, uint64_t *field, uint64_t n)
{
	pthread_mutex_lock(&c->lock);
	*field += n;
	pthread_mutex_unlock(&c->lock);
}

int s3_handle_get(struct s3_client *c, CURL **out)
{
	CURL *h = NULL;

	pthread_mutex_lock(&c->lock);
	if (c->pool_len)
		h = c->pool[--c->pool_len];
	pthread_mutex_unlock(&c->lock);
	if (!h)
		h = curl_easy_init();
	if (!h)
		return -ENOMEM;
	*out = h;
	return 0;
}

void s3_handle_put(struct s3_client *c, CURL *h)
{
	pthread_mutex_lock(&c->lock);
	if (c->pool_len < S3_POOL_MAX) {
		c->pool[c->pool_len++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&c->lock);
	if (h)
		curl_easy_cleanup(h);
}

void s3_client_set_retry_budget(struct s3_client *c, unsigned budget_ms)
{
	pthread_mutex_lock(&c->lock);
	c->retry_budget_ms = budget_ms;
	pthread_mutex_unlock(&c->lock);
}
