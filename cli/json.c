/* A minimal reader for one flat JSON object per line, and string escaping for replies. */
#include "cli/json.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct json_cur {
	const char *p;
	const char *end;
};

static void skip_ws(struct json_cur *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\r' || *c->p == '\n'))
		c->p++;
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* Parse a string literal into out (cap bytes incl. NUL); \u escapes above 0x7f -> '?'. */
static int parse_string(struct json_cur *c, char *out, size_t cap)
{
	size_t n = 0;

	if (c->p >= c->end || *c->p != '"')
		return -EINVAL;
	c->p++;
	while (c->p < c->end && *c->p != '"') {
		char ch = *c->p++;

		if ((unsigned char)ch < 0x20)
			return -EINVAL;
		if (ch == '\\') {
			if (c->p >= c->end)
				return -EINVAL;
			ch = *c->p++;
			switch (ch) {
			case '"': case '\\': case '/':
				break;
			case 'b': ch = '\b'; break;
			case 'f': ch = '\f'; break;
			case 'n': ch = '\n'; break;
			case 'r': ch = '\r'; break;
			case 't': ch = '\t'; break;
			case 'u': {
				int v = 0;

				if (c->end - c->p < 4)
					return -EINVAL;
				for (int i = 0; i < 4; i++) {
					int h = hexval(c->p[i]);

					if (h < 0)
						return -EINVAL;
					v = v * 16 + h;
				}
				c->p += 4;
				ch = (v > 0 && v < 0x80) ? (char)v : '?';
				break;
			}
			default:
				return -EINVAL;
			}
		}
		if (n + 1 >= cap)
			return -E2BIG;
		out[n++] = ch;
	}
	if (c->p >= c->end)
		return -EINVAL;
	c->p++;
	out[n] = '\0';
	return 0;
}

/* Skip a balanced object or array (strings respected). */
static int skip_nested(struct json_cur *c)
{
	unsigned depth = 0;
	char tmp[JSON_MAX_STR];

	do {
		if (c->p >= c->end)
			return -EINVAL;
		if (*c->p == '"') {
			if (parse_string(c, tmp, sizeof(tmp)) < 0)
				return -EINVAL;
			continue;
		}
		if (*c->p == '{' || *c->p == '[')
			depth++;
		else if (*c->p == '}' || *c->p == ']')
			depth--;
		c->p++;
	} while (depth > 0);
	return 0;
}

static int parse_value(struct json_cur *c, struct json_member *m, bool nested_ok)
{
	static const struct { const char *word; enum json_type t; bool b; } words[] = {
		{ "true", JSON_T_BOOL, true },
		{ "false", JSON_T_BOOL, false },
		{ "null", JSON_T_NULL, false },
	};

	if (c->p >= c->end)
		return -EINVAL;
	if (nested_ok && (*c->p == '{' || *c->p == '[')) {
		m->type = JSON_T_NESTED;
		return skip_nested(c);
	}
	if (*c->p == '"') {
		m->type = JSON_T_STRING;
		return parse_string(c, m->str, sizeof(m->str));
	}
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		size_t wl = strlen(words[i].word);

		if ((size_t)(c->end - c->p) >= wl && memcmp(c->p, words[i].word, wl) == 0) {
			m->type = words[i].t;
			m->b = words[i].b;
			c->p += wl;
			return 0;
		}
	}
	if (*c->p == '-' || (*c->p >= '0' && *c->p <= '9')) {
		size_t n = 0;
		char *endp;

		while (c->p < c->end && n + 1 < sizeof(m->str) &&
		       strchr("+-0123456789.eE", *c->p))
			m->str[n++] = *c->p++;
		m->str[n] = '\0';
		m->num = strtod(m->str, &endp);
		if (*endp != '\0')
			return -EINVAL;
		m->type = JSON_T_NUMBER;
		return 0;
	}
	return -EINVAL; /* objects, arrays, anything else */
}

static int parse_obj(const char *text, size_t len, struct json_obj *o, bool nested_ok,
		     char *err, size_t errlen)
{
	struct json_cur c = { .p = text, .end = text + len };

	memset(o, 0, sizeof(*o));
	skip_ws(&c);
	if (c.p >= c.end || *c.p != '{')
		goto bad;
	c.p++;
	skip_ws(&c);
	if (c.p < c.end && *c.p == '}') {
		c.p++;
		goto done;
	}
	for (;;) {
		struct json_member *m;

		if (o->n == JSON_MAX_MEMBERS) {
			snprintf(err, errlen, "too many members (at most %d)", JSON_MAX_MEMBERS);
			return -EINVAL;
		}
		m = &o->m[o->n++];
		skip_ws(&c);
		if (parse_string(&c, m->key, sizeof(m->key)) < 0)
			goto bad;
		skip_ws(&c);
		if (c.p >= c.end || *c.p != ':')
			goto bad;
		c.p++;
		skip_ws(&c);
		if (parse_value(&c, m, nested_ok) < 0)
			goto bad;
		skip_ws(&c);
		if (c.p < c.end && *c.p == ',') {
			c.p++;
			continue;
		}
		if (c.p < c.end && *c.p == '}') {
			c.p++;
			break;
		}
		goto bad;
	}
done:
	skip_ws(&c);
	if (c.p != c.end)
		goto bad;
	return 0;
bad:
	snprintf(err, errlen, "not a flat JSON object");
	return -EINVAL;
}

int json_parse_obj(const char *text, size_t len, struct json_obj *o, char *err, size_t errlen)
{
	return parse_obj(text, len, o, false, err, errlen);
}

int json_parse_reply(const char *text, size_t len, struct json_obj *o, char *err,
		     size_t errlen)
{
	return parse_obj(text, len, o, true, err, errlen);
}

const struct json_member *json_get(const struct json_obj *o, const char *key)
{
	for (unsigned i = 0; i < o->n; i++) {
		if (strcmp(o->m[i].key, key) == 0)
			return &o->m[i];
	}
	return NULL;
}

const char *json_get_str(const struct json_obj *o, const char *key)
{
	const struct json_member *m = json_get(o, key);

	return m && m->type == JSON_T_STRING ? m->str : NULL;
}

int json_get_u64(const struct json_obj *o, const char *key, uint64_t max, uint64_t *out)
{
	const struct json_member *m = json_get(o, key);
	uint64_t v = 0;
	const char *p;

	if (!m)
		return -ENOENT;
	if (m->type != JSON_T_NUMBER)
		return -EINVAL;
	p = m->str;
	if (*p == '-')
		return strspn(p + 1, "0123456789") == strlen(p + 1) && p[1] ? -ERANGE : -EINVAL;
	if (!*p || strspn(p, "0123456789") != strlen(p))
		return -EINVAL; /* 1.5, 1e3, 1e300: not written as a whole number */
	for (; *p; p++) {
		uint64_t d = (uint64_t)(*p - '0');

		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	if (v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

void json_quote(char *buf, size_t len, const char *s)
{
	size_t n = 0;

	if (len < 3) {
		if (len)
			buf[0] = '\0';
		return;
	}
	buf[n++] = '"';
	for (; *s && n + 8 < len; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\') {
			buf[n++] = '\\';
			buf[n++] = (char)ch;
		} else if (ch < 0x20) {
			n += (size_t)snprintf(buf + n, len - n, "\\u%04x", ch);
		} else {
			buf[n++] = (char)ch;
		}
	}
	buf[n++] = '"';
	buf[n] = '\0';
}
