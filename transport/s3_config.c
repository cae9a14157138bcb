/* S3 client configuration: defaults, the AWS environment and shared credentials files, endpoint URLs. */
#include "transport/s3_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "util/err.h"

/* Credentials and config files are small; a bigger one is not what we think it is. */
#define S3_INI_FILE_MAX ((size_t)1 << 20)

void s3_config_init(struct s3_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->region, sizeof(cfg->region), "us-east-1");
	cfg->addressing = S3_ADDRESSING_AUTO;
	cfg->connect_timeout_ms = 10000;
	cfg->request_timeout_ms = 0;
	cfg->stall_timeout_ms = 30000;
	cfg->max_retries = 1000;
	cfg->retry_base_ms = 100;
	cfg->retry_max_ms = 20000;
	cfg->retry_budget_ms = 300000;
	cfg->parallelism = 4;
	cfg->multipart_threshold = (size_t)16 << 20;
	cfg->part_size = (size_t)8 << 20;
	cfg->list_page_keys = 1000;
}

/* Copy src into a fixed field; -EINVAL naming what (dst, len, src, what, err, errlen). */
static int copy_field(char *dst, size_t len, const char *src, const char *what, char *err,
		      size_t errlen)
{
	if (strlen(src) >= len) {
		err_set(err, errlen, "s3: %s is longer than %zu bytes", what, len - 1);
		return -EINVAL;
	}
	memcpy(dst, src, strlen(src) + 1);
	return 0;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/* Trim [*s, *e) of blanks in place. */
static void trim(const char **s, const char **e)
{
	while (*s < *e && is_blank(**s))
		(*s)++;
	while (*e > *s && is_blank((*e)[-1]))
		(*e)--;
}

int s3_ini_get(const char *text, const char *section, const char *key, char *out,
	       size_t out_len, bool *section_found)
{
	const char *line = text;
	bool in_section = false;

	*section_found = false;
	while (*line) {
		const char *nl = strchr(line, '\n');
		const char *e = nl ? nl : line + strlen(line), *s = line;
		bool indented = s < e && (*s == ' ' || *s == '\t');

		line = nl ? nl + 1 : e;
		trim(&s, &e);
		if (s == e || *s == '#' || *s == ';')
			continue;
		if (*s == '[') {
			const char *ns = s + 1, *ne = e;

			if (ne[-1] != ']' || ne - 1 <= ns)
				continue;
			ne--;
			trim(&ns, &ne);
			in_section = strlen(section) == (size_t)(ne - ns) &&
				     memcmp(ns, section, (size_t)(ne - ns)) == 0;
			*section_found |= in_section;
			continue;
		}
		if (!in_section || indented)
			continue;
		{
			const char *eq = memchr(s, '=', (size_t)(e - s));
			const char *ks = s, *ke, *vs, *ve = e;

			if (!eq)
				continue;
			ke = eq;
			vs = eq + 1;
			trim(&ks, &ke);
			trim(&vs, &ve);
			if (strlen(key) != (size_t)(ke - ks) ||
			    strncasecmp(ks, key, (size_t)(ke - ks)) != 0)
				continue;
			if ((size_t)(ve - vs) >= out_len)
				return -ENAMETOOLONG;
			memcpy(out, vs, (size_t)(ve - vs));
			out[ve - vs] = '\0';
			return 0;
		}
	}
	return -ENOENT;
}

/* Read a whole small file into a malloc'd string (path, out). Returns 0 or -errno. */
static int read_small_file(const char *path, char **out)
{
	struct stat st;
	char *buf;
	size_t got = 0;
	int fd, rc = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto out_close;
	}
	if (!S_ISREG(st.st_mode) || (size_t)st.st_size > S3_INI_FILE_MAX) {
		rc = S_ISREG(st.st_mode) ? -EFBIG : -EINVAL;
		goto out_close;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		rc = -ENOMEM;
		goto out_close;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			free(buf);
			goto out_close;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	buf[got] = '\0';
	*out = buf;
out_close:
	close(fd);
	return rc;
}

/* env var, or ~/.aws/<name> (out, len, env, name). Returns 0 or -ENAMETOOLONG / -ENOENT. */
static int aws_file_path(char *out, size_t len, const char *env, const char *name)
{
	const char *v = getenv(env), *home = getenv("HOME");
	struct passwd pw, *res = NULL;
	char pwbuf[1024];

	if (v && *v)
		return snprintf(out, len, "%s", v) >= (int)len ? -ENAMETOOLONG : 0;
	if (!home || !*home) {
		if (getpwuid_r(getuid(), &pw, pwbuf, sizeof(pwbuf), &res) != 0 || !res)
			return -ENOENT;
		home = pw.pw_dir;
	}
	return snprintf(out, len, "%s/.aws/%s", home, name) >= (int)len ? -ENAMETOOLONG : 0;
}

/* Credentials of profile from the shared credentials file into cfg. */
static int creds_from_file(struct s3_config *cfg, const char *profile, bool explicit_profile,
			   char *err, size_t errlen)
{
	char path[S3_PATH_MAX], *text = NULL;
	bool found = false, f2;
	int rc, rk, rs, rt;

	rc = aws_file_path(path, sizeof(path), "AWS_SHARED_CREDENTIALS_FILE", "credentials");
	if (rc == 0)
		rc = read_small_file(path, &text);
	if (rc == -ENOENT && !explicit_profile) {
		err_set(err, errlen,
			"s3: no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or add "
			"a [%s] profile to %s", profile, path);
		return -ENOKEY;
	}
	if (rc < 0) {
		err_set(err, errlen, "s3: read credentials file %s: %s", path, strerror(-rc));
		return rc;
	}
	rk = s3_ini_get(text, profile, "aws_access_key_id", cfg->access_key,
			sizeof(cfg->access_key), &found);
	rs = s3_ini_get(text, profile, "aws_secret_access_key", cfg->secret_key,
			sizeof(cfg->secret_key), &f2);
	rt = s3_ini_get(text, profile, "aws_session_token", cfg->session_token,
			sizeof(cfg->session_token), &f2);
	if (rt == -ENOENT)
		rt = s3_ini_get(text, profile, "aws_security_token", cfg->session_token,
				sizeof(cfg->session_token), &f2);
	free(text);
	if (!found && !explicit_profile) {
		err_set(err, errlen,
			"s3: no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or add "
			"a [%s] profile to %s", profile, path);
		return -ENOKEY;
	}
	if (!found) {
		err_set(err, errlen, "s3: profile [%s] not found in %s: add it or pick another "
			"with AWS_PROFILE", profile, path);
		return -ENOENT;
	}
	if (rk == -ENAMETOOLONG || rs == -ENAMETOOLONG || rt == -ENAMETOOLONG) {
		err_set(err, errlen, "s3: profile [%s] in %s: a value is too long", profile, path);
		return -EINVAL;
	}
	if (rk < 0 || rs < 0) {
		err_set(err, errlen, "s3: profile [%s] in %s needs both aws_access_key_id and "
			"aws_secret_access_key", profile, path);
		return -EINVAL;
	}
	if (rt < 0)
		cfg->session_token[0] = '\0';
	return 0;
}

/* The region of profile in the config file, if any (cfg, profile). Missing file is fine. */
static void region_from_config_file(struct s3_config *cfg, const char *profile)
{
	char path[S3_PATH_MAX], section[S3_REGION_MAX + 16], region[S3_REGION_MAX], *text = NULL;
	bool found;

	if (aws_file_path(path, sizeof(path), "AWS_CONFIG_FILE", "config") < 0 ||
	    read_small_file(path, &text) < 0)
		return;
	if (strcmp(profile, "default") == 0)
		snprintf(section, sizeof(section), "default");
	else
		snprintf(section, sizeof(section), "profile %.*s", S3_REGION_MAX, profile);
	if (s3_ini_get(text, section, "region", region, sizeof(region), &found) == 0 && region[0])
		memcpy(cfg->region, region, sizeof(region));
	free(text);
}

int s3_config_from_env(struct s3_config *cfg, const char *profile, char *err, size_t errlen)
{
	const char *ak = getenv("AWS_ACCESS_KEY_ID"), *sk = getenv("AWS_SECRET_ACCESS_KEY");
	const char *tok = getenv("AWS_SESSION_TOKEN"), *v;
	const char *prof = profile;
	int rc;

	if (!prof || !*prof)
		prof = getenv("AWS_PROFILE");
	if (!prof || !*prof)
		prof = "default";
	if (!profile && ak && *ak && sk && *sk) {
		rc = copy_field(cfg->access_key, sizeof(cfg->access_key), ak, "AWS_ACCESS_KEY_ID",
				err, errlen);
		if (rc == 0)
			rc = copy_field(cfg->secret_key, sizeof(cfg->secret_key), sk,
					"AWS_SECRET_ACCESS_KEY", err, errlen);
		if (rc == 0)
			rc = copy_field(cfg->session_token, sizeof(cfg->session_token),
					tok ? tok : "", "AWS_SESSION_TOKEN", err, errlen);
		if (rc < 0)
			return rc;
	} else if (!profile && ((ak && *ak) != (sk && *sk)) && !getenv("AWS_PROFILE")) {
		err_set(err, errlen, "s3: %s is set but %s is not: set both, or neither to use a "
			"profile", (ak && *ak) ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
			(ak && *ak) ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
		return -EINVAL;
	} else {
		rc = creds_from_file(cfg, prof, profile || getenv("AWS_PROFILE"), err, errlen);
		if (rc < 0)
			return rc;
	}
	if ((v = getenv("AWS_REGION")) && *v)
		rc = copy_field(cfg->region, sizeof(cfg->region), v, "AWS_REGION", err, errlen);
	else if ((v = getenv("AWS_DEFAULT_REGION")) && *v)
		rc = copy_field(cfg->region, sizeof(cfg->region), v, "AWS_DEFAULT_REGION", err,
				errlen);
	else
		region_from_config_file(cfg, prof);
	if (rc < 0)
		return rc;
	if ((v = getenv("AWS_ENDPOINT_URL_S3")) && *v)
		rc = copy_field(cfg->endpoint, sizeof(cfg->endpoint), v, "AWS_ENDPOINT_URL_S3", err,
				errlen);
	else if ((v = getenv("AWS_ENDPOINT_URL")) && *v)
		rc = copy_field(cfg->endpoint, sizeof(cfg->endpoint), v, "AWS_ENDPOINT_URL", err,
				errlen);
	return rc;
}

int s3_endpoint_parse(const char *url, struct s3_endpoint *out)
{
	const char *p, *host, *host_end, *port = NULL, *end;
	struct in6_addr a6;
	struct in_addr a4;
	size_t hn;

	memset(out, 0, sizeof(*out));
	if (strncasecmp(url, "https://", 8) == 0) {
		out->https = true;
		p = url + 8;
	} else if (strncasecmp(url, "http://", 7) == 0) {
		p = url + 7;
	} else {
		return -EINVAL;
	}
	end = p + strcspn(p, "/?#");
	if (*end == '?' || *end == '#' || (*end == '/' && end[1] != '\0'))
		return -EINVAL; /* no path, query or fragment: the client builds those */
	if (memchr(p, '@', (size_t)(end - p)))
		return -EINVAL;
	if (*p == '[') {
		host = p + 1;
		host_end = memchr(host, ']', (size_t)(end - host));
		if (!host_end)
			return -EINVAL;
		if (host_end + 1 < end) {
			if (host_end[1] != ':')
				return -EINVAL;
			port = host_end + 2;
		}
	} else {
		host = p;
		host_end = memchr(p, ':', (size_t)(end - p));
		if (host_end)
			port = host_end + 1;
		else
			host_end = end;
	}
	hn = (size_t)(host_end - host);
	if (hn == 0 || hn >= sizeof(out->host))
		return -EINVAL;
	for (size_t i = 0; i < hn; i++) {
		char c = host[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '-' || c == '_' || (*p == '[' && c == ':')))
			return -EINVAL;
		out->host[i] = (char)((c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c);
	}
	out->host[hn] = '\0';
	if (port) {
		unsigned long v = 0;

		if (port == end)
			return -EINVAL;
		for (const char *q = port; q < end; q++) {
			if (*q < '0' || *q > '9' || v > 65535)
				return -EINVAL;
			v = v * 10 + (unsigned long)(*q - '0');
		}
		if (v == 0 || v > 65535)
			return -EINVAL;
		out->port = (unsigned)v;
	}
	if (*p == '[') {
		if (inet_pton(AF_INET6, out->host, &a6) != 1)
			return -EINVAL;
		out->host_is_ip = true;
	} else {
		out->host_is_ip = inet_pton(AF_INET, out->host, &a4) == 1;
	}
	return 0;
}

bool s3_bucket_name_ok(const char *b)
{
	size_t n = strlen(b);

	if (n < 3 || n > 63)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = b[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');

		if (!alnum && c != '.' && c != '-')
			return false;
		if ((i == 0 || i == n - 1) && !alnum)
			return false;
		if (c == '.' && (b[i + 1] == '.' || b[i + 1] == '-' || b[i - 1] == '-'))
			return false;
	}
	return true;
}

bool s3_path_style(const struct s3_config *cfg, const struct s3_endpoint *ep)
{
	if (cfg->addressing == S3_ADDRESSING_PATH)
		return true;
	if (cfg->addressing == S3_ADDRESSING_VIRTUAL)
		return false;
	/*
	 * A bucket cannot be a subdomain of an address or of a one-label name like
	 * localhost, and a dotted bucket would not match a wildcard certificate.
	 */
	return ep->host_is_ip || !strchr(ep->host, '.') || strcmp(ep->host, "localhost") == 0 ||
	       (ep->https && strchr(cfg->bucket, '.'));
}

bool s3_key_ok(const char *key)
{
	size_t n;

	if (!key)
		return false;
	n = strlen(key);
	if (n == 0 || n > S3_KEY_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)key[i] < 0x20 || key[i] == 0x7f)
			return false;
	return true;
}
