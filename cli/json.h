/* A minimal reader for one flat JSON object per line, and string escaping for replies. */
#ifndef CLI_JSON_H
#define CLI_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JSON_MAX_MEMBERS 32
#define JSON_MAX_STR 512

enum json_type {
	JSON_T_INVALID = 0,
	JSON_T_STRING,
	JSON_T_NUMBER,
	JSON_T_BOOL,
	JSON_T_NULL,
	JSON_T_NESTED, /* an object or array, skipped: only json_parse_reply makes these */
};

struct json_member {
	char key[64];
	enum json_type type;
	char str[JSON_MAX_STR]; /* string value, or the number's text */
	double num;
	bool b;
};

/* A parsed object: flat only; nested objects and arrays are rejected. */
struct json_obj {
	struct json_member m[JSON_MAX_MEMBERS];
	unsigned n;
};

/*
 * Parse text (len bytes, need not be NUL-terminated) as one flat JSON object. Returns 0,
 * or -EINVAL with a short reason in err for anything else (trailing garbage included).
 */
int json_parse_obj(const char *text, size_t len, struct json_obj *o, char *err, size_t errlen);

/*
 * As json_parse_obj, but nested objects and arrays are accepted and skipped (members of
 * type JSON_T_NESTED, no value kept): for reading the API's replies, which carry them.
 */
int json_parse_reply(const char *text, size_t len, struct json_obj *o, char *err,
		     size_t errlen);

/* The member named key, or NULL. */
const struct json_member *json_get(const struct json_obj *o, const char *key);

/* The string member named key, or NULL if absent or not a string. */
const char *json_get_str(const struct json_obj *o, const char *key);

/*
 * The member named key as a whole number (o, key, max, out): the number's text must be
 * digits only (no sign, fraction or exponent, so nothing is ever converted from a double)
 * and its value at most max. Returns 0 with *out set; -ENOENT when key is absent;
 * -EINVAL when it is not a number or not a whole one; -ERANGE when it is negative or
 * above max. *out is left alone on failure.
 */
int json_get_u64(const struct json_obj *o, const char *key, uint64_t max, uint64_t *out);

/* Write s as a JSON string literal (quotes included) into buf; truncates safely. */
void json_quote(char *buf, size_t len, const char *s);

#endif
