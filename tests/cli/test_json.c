/* The API's JSON reader: flat objects in, everything else refused. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cli/json.h"

static struct json_obj O;
static char E[128];

TestSuite(json);

Test(json, reads_a_flat_object_with_each_value_type)
{
	const char *t = " {\"cmd\":\"pause\", \"n\": -12.5e1, \"on\":true, \"x\":null,"
			"\"s\":\"a\\\"b\\u0041\"} ";

	cr_assert_eq(json_parse_obj(t, strlen(t), &O, E, sizeof(E)), 0, "%s", E);
	cr_assert_str_eq(json_get_str(&O, "cmd"), "pause");
	cr_assert_float_eq(json_get(&O, "n")->num, -125.0, 1e-9);
	cr_assert(json_get(&O, "on")->b);
	cr_assert_eq(json_get(&O, "x")->type, JSON_T_NULL);
	cr_assert_str_eq(json_get_str(&O, "s"), "a\"bA");
	cr_assert_null(json_get_str(&O, "n"));
	cr_assert_null(json_get(&O, "missing"));
}

Test(json, refuses_nesting_garbage_and_truncation)
{
	static const char *const bad[] = {
		"", "{", "[]", "{\"a\":{}}", "{\"a\":[1]}", "{\"a\":1} x", "{\"a\" 1}",
		"{\"a\":\"unterminated}", "{\"a\":tru}", "{a:1}", "{\"a\":1,}", "{\"a\":\"\\q\"}",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_lt(json_parse_obj(bad[i], strlen(bad[i]), &O, E, sizeof(E)), 0,
			     "accepted: %s", bad[i]);
}

Test(json, refuses_overlong_strings_and_too_many_members)
{
	char t[2048];
	size_t n = 0;

	n += (size_t)snprintf(t + n, sizeof(t) - n, "{\"a\":\"");
	memset(t + n, 'x', 600);
	n += 600;
	snprintf(t + n, sizeof(t) - n, "\"}");
	cr_assert_lt(json_parse_obj(t, strlen(t), &O, E, sizeof(E)), 0);
	n = (size_t)snprintf(t, sizeof(t), "{");
	for (int i = 0; i < JSON_MAX_MEMBERS + 1; i++)
		n += (size_t)snprintf(t + n, sizeof(t) - n, "%s\"k%d\":1", i ? "," : "", i);
	snprintf(t + n, sizeof(t) - n, "}");
	cr_assert_lt(json_parse_obj(t, strlen(t), &O, E, sizeof(E)), 0);
}

Test(json, quotes_control_characters_and_quotes)
{
	char buf[64];

	json_quote(buf, sizeof(buf), "a\"b\\c\nd");
	cr_assert_str_eq(buf, "\"a\\\"b\\\\c\\u000ad\"");
}

/* The API's integers are read as integers: no double in between, nothing out of range. */
Test(json, reads_whole_numbers_as_integers_and_refuses_the_rest)
{
	const char *t = "{\"a\":0,\"b\":18446744073709551615,\"c\":18446744073709551616,"
			"\"d\":1e300,\"e\":-1,\"f\":1.5,\"g\":\"7\",\"h\":9007199254740993,"
			"\"i\":4294967296,\"j\":-0.5}";
	uint64_t v = 42;

	cr_assert_eq(json_parse_obj(t, strlen(t), &O, E, sizeof(E)), 0, "%s", E);
	cr_assert_eq(json_get_u64(&O, "a", UINT64_MAX, &v), 0);
	cr_assert_eq(v, 0);
	cr_assert_eq(json_get_u64(&O, "b", UINT64_MAX, &v), 0);
	cr_assert_eq(v, UINT64_MAX);
	/* 2^53 + 1 is not a double: read as text, it is exact. */
	cr_assert_eq(json_get_u64(&O, "h", UINT64_MAX, &v), 0);
	cr_assert_eq(v, 9007199254740993ull);
	v = 42;
	cr_assert_eq(json_get_u64(&O, "c", UINT64_MAX, &v), -ERANGE);
	cr_assert_eq(json_get_u64(&O, "d", UINT64_MAX, &v), -EINVAL);
	cr_assert_eq(json_get_u64(&O, "e", UINT64_MAX, &v), -ERANGE);
	cr_assert_eq(json_get_u64(&O, "f", UINT64_MAX, &v), -EINVAL);
	cr_assert_eq(json_get_u64(&O, "g", UINT64_MAX, &v), -EINVAL);
	cr_assert_eq(json_get_u64(&O, "i", UINT32_MAX, &v), -ERANGE);
	cr_assert_eq(json_get_u64(&O, "j", UINT64_MAX, &v), -EINVAL);
	cr_assert_eq(json_get_u64(&O, "missing", UINT64_MAX, &v), -ENOENT);
	cr_assert_eq(v, 42, "a failed read changed the value");
}
