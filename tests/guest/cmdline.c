/* Parses the test guest's command line (mb=, rate=, verify=, poweroff=, disk=, ip=, tag=) into bounded options. */
#include "cmdline.h"

#include <stddef.h>

#include "console.h"
#include "lib.h"

/* A slice of the command line; tokens are never copied or NUL-terminated in place. */
struct cmdline_span {
	const char *s;
	size_t len;
};

static bool span_equals(struct cmdline_span a, const char *lit)
{
	size_t i;

	for (i = 0; i < a.len; i++) {
		if (lit[i] == '\0' || lit[i] != a.s[i])
			return false;
	}
	return lit[i] == '\0';
}

/* Splits *rest at the first sep: returns the part before it and leaves *rest after it. */
static struct cmdline_span span_take(struct cmdline_span *rest, char sep, bool *found)
{
	struct cmdline_span head = { rest->s, 0 };

	while (head.len < rest->len && rest->s[head.len] != sep)
		head.len++;
	*found = head.len < rest->len;
	rest->s += head.len + (*found ? 1 : 0);
	rest->len -= head.len + (*found ? 1 : 0);
	return head;
}

static bool span_number(struct cmdline_span v, uint64_t max, uint64_t *out)
{
	uint64_t n;

	if (!parse_u64(v.s, v.len, &n) || n > max)
		return false;
	*out = n;
	return true;
}

/* disk=w:<lba>:<count>:<seed>, disk=v:<lba>:<count>:<seed> or disk=r:<lba>:<count>. */
static bool cmdline_disk(struct cmdline_span v, struct guest_options *opt)
{
	struct disk_op op = { 0 };
	struct cmdline_span kind, f;
	bool more;

	if (opt->disk_ops >= CMDLINE_DISK_OPS_MAX)
		return false;
	kind = span_take(&v, ':', &more);
	if (!more || kind.len != 1 || (kind.s[0] != 'w' && kind.s[0] != 'v' && kind.s[0] != 'r'))
		return false;
	op.kind = kind.s[0];
	f = span_take(&v, ':', &more);
	if (!more || !span_number(f, UINT64_MAX, &op.lba))
		return false;
	f = span_take(&v, ':', &more);
	if (!span_number(f, CMDLINE_DISK_COUNT_MAX, &op.count) || op.count == 0)
		return false;
	if (op.kind == 'r') {
		if (more)
			return false;
	} else {
		if (!more)
			return false;
		f = span_take(&v, ':', &more);
		if (more || !span_number(f, UINT64_MAX, &op.seed))
			return false;
	}
	if (op.lba + op.count < op.lba)
		return false;
	opt->disk[opt->disk_ops++] = op;
	return true;
}

/* ip=A.B.C.D: the next NIC's address (not 0.0.0.0, not multicast or broadcast). */
static bool cmdline_ip(struct cmdline_span v, struct guest_options *opt)
{
	uint32_t ip = 0;
	uint64_t part;
	bool more = true;

	if (opt->nip >= CMDLINE_IPS_MAX)
		return false;
	for (int i = 0; i < 4; i++) {
		struct cmdline_span f;

		if (!more)
			return false;
		f = span_take(&v, '.', &more);
		if (f.len == 0 || f.len > 3 || !span_number(f, 255, &part))
			return false;
		ip = ip << 8 | (uint32_t)part;
	}
	if (more || ip == 0 || ip >> 28 >= 14)
		return false;
	opt->ip[opt->nip++] = ip;
	return true;
}

static bool cmdline_apply(struct cmdline_span tok, struct guest_options *opt)
{
	struct cmdline_span rest = tok, key;
	uint64_t n;
	bool has_value;

	key = span_take(&rest, '=', &has_value);
	if (!has_value)
		return false;
	if (span_equals(key, "mb"))
		return span_number(rest, CMDLINE_MB_MAX, &opt->mb);
	if (span_equals(key, "rate"))
		return span_number(rest, CMDLINE_RATE_MAX, &opt->rate);
	if (span_equals(key, "poweroff"))
		return span_number(rest, UINT64_MAX, &opt->poweroff);
	if (span_equals(key, "verify")) {
		if (!span_number(rest, 1, &n))
			return false;
		opt->verify = n == 1;
		return true;
	}
	if (span_equals(key, "disk"))
		return cmdline_disk(rest, opt);
	if (span_equals(key, "ip"))
		return cmdline_ip(rest, opt);
	/* tag=ANY: ignored; a marker the host looks for in copies of guest RAM. */
	if (span_equals(key, "tag"))
		return true;
	return false;
}

void cmdline_parse(const char *cmdline, struct guest_options *opt)
{
	const char *p = cmdline;

	opt->mb = 16;
	opt->rate = 8;
	opt->verify = false;
	opt->poweroff = 0;
	opt->disk_ops = 0;
	opt->nip = 0;
	for (;;) {
		struct cmdline_span tok;

		while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
			p++;
		if (*p == '\0')
			break;
		tok.s = p;
		tok.len = 0;
		while (p[tok.len] && p[tok.len] != ' ' && p[tok.len] != '\t' &&
		       p[tok.len] != '\n' && p[tok.len] != '\r')
			tok.len++;
		p += tok.len;
		if (!cmdline_apply(tok, opt))
			console_printf("GUEST bad option %.*s\n", (int)tok.len, tok.s);
	}
}
