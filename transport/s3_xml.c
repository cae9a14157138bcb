/* The few flat XML documents S3 answers with, read minimally: leaf elements, entities, listings, errors. */
#include "transport/s3_priv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* memmem bounded to [p, end): the first occurrence of needle, or NULL. */
static const char *find_bytes(const char *p, const char *end, const char *needle)
{
	size_t n = strlen(needle);

	if (p >= end || (size_t)(end - p) < n)
		return NULL;
	return memmem(p, (size_t)(end - p), needle, n);
}

bool s3_xml_find(const char *doc, size_t len, const char *tag, const char **text,
		 size_t *text_len)
{
	const char *end = doc + len, *p = doc, *open, *close;
	char open_tag[80], empty_tag[80], close_tag[80];

	if (snprintf(open_tag, sizeof(open_tag), "<%s>", tag) >= (int)sizeof(open_tag))
		return false;
	snprintf(empty_tag, sizeof(empty_tag), "<%s/>", tag);
	snprintf(close_tag, sizeof(close_tag), "</%s>", tag);
	open = find_bytes(p, end, open_tag);
	{
		const char *e = find_bytes(p, open ? open : end, empty_tag);

		if (e) {
			*text = e;
			*text_len = 0;
			return true;
		}
	}
	if (!open)
		return false;
	p = open + strlen(open_tag);
	close = find_bytes(p, end, close_tag);
	if (!close || memchr(p, '<', (size_t)(close - p)))
		return false;
	*text = p;
	*text_len = (size_t)(close - p);
	return true;
}

/* Append code point cp as UTF-8 (out, o, out_len, cp); -EBADMSG for invalid, -ENAMETOOLONG. */
static int put_utf8(char *out, size_t *o, size_t out_len, unsigned long cp)
{
	unsigned char u[4];
	size_t n;

	if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return -EBADMSG;
	if (cp < 0x80) {
		u[0] = (unsigned char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (unsigned char)(0xC0 | (cp >> 6));
		u[1] = (unsigned char)(0x80 | (cp & 0x3F));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (unsigned char)(0xE0 | (cp >> 12));
		u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
		u[2] = (unsigned char)(0x80 | (cp & 0x3F));
		n = 3;
	} else {
		u[0] = (unsigned char)(0xF0 | (cp >> 18));
		u[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
		u[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
		u[3] = (unsigned char)(0x80 | (cp & 0x3F));
		n = 4;
	}
	if (out_len - *o <= n)
		return -ENAMETOOLONG;
	memcpy(out + *o, u, n);
	*o += n;
	return 0;
}

static int decode_entity(const char *ent, size_t n, unsigned long *cp)
{
	static const struct {
		const char *name;
		char c;
	} named[] = { { "amp", '&' }, { "lt", '<' }, { "gt", '>' }, { "quot", '"' }, { "apos", '\'' } };
	unsigned long v = 0;
	size_t i = 1;
	int base = 10;

	for (size_t k = 0; k < sizeof(named) / sizeof(named[0]); k++) {
		if (strlen(named[k].name) == n && memcmp(ent, named[k].name, n) == 0) {
			*cp = (unsigned char)named[k].c;
			return 0;
		}
	}
	if (n < 2 || ent[0] != '#')
		return -EBADMSG;
	if (ent[1] == 'x') {
		base = 16;
		i = 2;
	}
	if (i >= n || n - i > 8)
		return -EBADMSG;
	for (; i < n; i++) {
		char ch = ent[i];
		int d;

		if (ch >= '0' && ch <= '9')
			d = ch - '0';
		else if (base == 16 && ch >= 'a' && ch <= 'f')
			d = ch - 'a' + 10;
		else if (base == 16 && ch >= 'A' && ch <= 'F')
			d = ch - 'A' + 10;
		else
			return -EBADMSG;
		v = v * (unsigned long)base + (unsigned long)d;
	}
	*cp = v;
	return 0;
}

int s3_xml_decode(char *out, size_t out_len, const char *text, size_t text_len)
{
	size_t i = 0, o = 0;
	int rc;

	if (out_len == 0)
		return -ENAMETOOLONG;
	while (i < text_len) {
		if (text[i] == '\0')
			return -EBADMSG;
		if (text[i] == '&') {
			const char *semi = memchr(text + i, ';', text_len - i);
			unsigned long cp;

			if (!semi || semi - (text + i) > 12)
				return -EBADMSG;
			rc = decode_entity(text + i + 1, (size_t)(semi - (text + i) - 1), &cp);
			if (rc == 0)
				rc = put_utf8(out, &o, out_len, cp);
			if (rc < 0)
				return rc;
			i = (size_t)(semi - text) + 1;
			continue;
		}
		if (out_len - o <= 1)
			return -ENAMETOOLONG;
		out[o++] = text[i++];
	}
	out[o] = '\0';
	return (int)o;
}

int s3_xml_escape(struct s3_buf *b, const char *s)
{
	int rc = 0;

	for (; *s && rc == 0; s++) {
		switch (*s) {
		case '&': rc = s3_buf_puts(b, "&amp;"); break;
		case '<': rc = s3_buf_puts(b, "&lt;"); break;
		case '>': rc = s3_buf_puts(b, "&gt;"); break;
		case '"': rc = s3_buf_puts(b, "&quot;"); break;
		case '\'': rc = s3_buf_puts(b, "&apos;"); break;
		default: rc = s3_buf_add(b, s, 1); break;
		}
	}
	return rc;
}

int s3_xml_root(const char *doc, size_t len, char *out, size_t out_len)
{
	const char *end = doc + len, *p = doc;
	size_t n = 0;

	/* Skip the declaration, comments and whitespace before the root element. */
	for (;;) {
		while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
			p++;
		if (end - p >= 3 && (unsigned char)p[0] == 0xEF && (unsigned char)p[1] == 0xBB &&
		    (unsigned char)p[2] == 0xBF) {
			p += 3;
			continue;
		}
		if (end - p >= 2 && p[0] == '<' && (p[1] == '?' || p[1] == '!')) {
			const char *gt = memchr(p, '>', (size_t)(end - p));

			if (!gt)
				return -EBADMSG;
			p = gt + 1;
			continue;
		}
		break;
	}
	if (p >= end || *p != '<')
		return -EBADMSG;
	p++;
	while (p + n < end && p[n] != '>' && p[n] != ' ' && p[n] != '/' && p[n] != '\t' &&
	       p[n] != '\r' && p[n] != '\n')
		n++;
	if (n == 0 || p + n >= end || n >= out_len)
		return -EBADMSG;
	memcpy(out, p, n);
	out[n] = '\0';
	return 0;
}

static int parse_u64(const char *t, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	size_t i = 0, digits = 0;

	while (i < n && (t[i] == ' ' || t[i] == '\n' || t[i] == '\r' || t[i] == '\t'))
		i++;
	while (n > i && (t[n - 1] == ' ' || t[n - 1] == '\n' || t[n - 1] == '\r' || t[n - 1] == '\t'))
		n--;
	for (; i < n; i++, digits++) {
		if (t[i] < '0' || t[i] > '9')
			return -EBADMSG;
		if (v > (UINT64_MAX - (uint64_t)(t[i] - '0')) / 10)
			return -EBADMSG;
		v = v * 10 + (uint64_t)(t[i] - '0');
	}
	if (digits == 0)
		return -EBADMSG;
	*out = v;
	return 0;
}

int64_t s3_xml_time(const char *t, size_t n)
{
	struct tm tm = { 0 };
	int v[6], len[6] = { 4, 2, 2, 2, 2, 2 };
	const char sep[6] = { '-', '-', 'T', ':', ':', 0 };
	size_t i = 0;
	time_t sec;

	for (int f = 0; f < 6; f++) {
		v[f] = 0;
		for (int d = 0; d < len[f]; d++, i++) {
			if (i >= n || t[i] < '0' || t[i] > '9')
				return -1;
			v[f] = v[f] * 10 + (t[i] - '0');
		}
		if (sep[f] && (i >= n || t[i++] != sep[f]))
			return -1;
	}
	if (i < n && t[i] == '.')
		for (i++; i < n && t[i] >= '0' && t[i] <= '9'; i++)
			;
	if (i + 1 != n || t[i] != 'Z' || v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > 31 ||
	    v[3] > 23 || v[4] > 59 || v[5] > 60)
		return -1;
	tm.tm_year = v[0] - 1900;
	tm.tm_mon = v[1] - 1;
	tm.tm_mday = v[2];
	tm.tm_hour = v[3];
	tm.tm_min = v[4];
	tm.tm_sec = v[5];
	sec = timegm(&tm);
	return sec == (time_t)-1 ? -1 : (int64_t)sec;
}

int s3_list_plain_one(void *arg, const char *key, uint64_t size, int64_t mtime)
{
	struct s3_list_plain *l = arg;

	(void)mtime;
	return l->fn(l->arg, key, size);
}

int s3_xml_parse_list(const char *doc, size_t len, s3_list_fn fn, void *arg, bool *truncated,
		      char *token, size_t token_len)
{
	struct s3_list_plain l = { fn, arg };

	return s3_xml_parse_list_ex(doc, len, s3_list_plain_one, &l, truncated, token, token_len);
}

int s3_xml_parse_list_ex(const char *doc, size_t len, s3_list_ex_fn fn, void *arg,
			 bool *truncated, char *token, size_t token_len)
{
	const char *end = doc + len, *p = doc, *t;
	char root[64], trunc[8];
	char *key;
	size_t tn;
	int rc = 0;

	if (s3_xml_root(doc, len, root, sizeof(root)) < 0 || strcmp(root, "ListBucketResult"))
		return -EBADMSG;
	key = malloc(S3_KEY_MAX + 1);
	if (!key)
		return -ENOMEM;
	for (;;) {
		const char *open = find_bytes(p, end, "<Contents>"), *close;
		uint64_t size;
		int64_t mtime;

		if (!open)
			break;
		close = find_bytes(open, end, "</Contents>");
		if (!close) {
			rc = -EBADMSG;
			break;
		}
		if (!s3_xml_find(open, (size_t)(close - open), "Key", &t, &tn) ||
		    s3_xml_decode(key, S3_KEY_MAX + 1, t, tn) <= 0 ||
		    !s3_xml_find(open, (size_t)(close - open), "Size", &t, &tn) ||
		    parse_u64(t, tn, &size) < 0) {
			rc = -EBADMSG;
			break;
		}
		mtime = -1;
		if (s3_xml_find(open, (size_t)(close - open), "LastModified", &t, &tn))
			mtime = s3_xml_time(t, tn);
		rc = fn(arg, key, size, mtime);
		if (rc)
			break;
		p = close + strlen("</Contents>");
	}
	free(key);
	if (rc)
		return rc;
	/* Past every Contents element: the page's own fields sit outside them. */
	*truncated = false;
	token[0] = '\0';
	if (s3_xml_find(doc, len, "IsTruncated", &t, &tn)) {
		if (s3_xml_decode(trunc, sizeof(trunc), t, tn) < 0)
			return -EBADMSG;
		if (strcmp(trunc, "true") == 0)
			*truncated = true;
		else if (strcmp(trunc, "false") != 0)
			return -EBADMSG;
	}
	if (*truncated) {
		if (!s3_xml_find(doc, len, "NextContinuationToken", &t, &tn) ||
		    s3_xml_decode(token, token_len, t, tn) <= 0)
			return -EBADMSG;
	}
	return 0;
}

/* Copy decoded text into out, replacing control characters; "" when absent or bad. */
static void leaf_text(const char *doc, size_t len, const char *tag, char *out, size_t out_len)
{
	const char *t;
	size_t tn;

	out[0] = '\0';
	if (!s3_xml_find(doc, len, tag, &t, &tn))
		return;
	if (tn >= out_len)
		tn = out_len - 1; /* a cut entity then fails to decode: fall back to raw text */
	if (s3_xml_decode(out, out_len, t, tn) < 0) {
		memcpy(out, t, tn);
		out[tn] = '\0';
	}
	for (char *c = out; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
}

/* Keep s only if every character is a letter, digit or one of extra; else make it "". */
static void keep_if_identifier(char *s, const char *extra)
{
	for (const char *c = s; *c; c++) {
		if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
		      strchr(extra, *c))) {
			s[0] = '\0';
			return;
		}
	}
}

int s3_xml_parse_error(const char *doc, size_t len, char *code, size_t code_len, char *msg,
		       size_t msg_len, char *region, size_t region_len)
{
	char root[16];

	code[0] = '\0';
	msg[0] = '\0';
	if (region && region_len)
		region[0] = '\0';
	if (s3_xml_root(doc, len, root, sizeof(root)) < 0 || strcmp(root, "Error"))
		return -EBADMSG;
	leaf_text(doc, len, "Code", code, code_len);
	leaf_text(doc, len, "Message", msg, msg_len);
	/* A code or region is an identifier; anything else in it is not S3 talking. */
	keep_if_identifier(code, ".-_");
	if (region && region_len) {
		leaf_text(doc, len, "Region", region, region_len);
		keep_if_identifier(region, "-");
	}
	return 0;
}
