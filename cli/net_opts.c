/* The --net option of godwit run, restore and receive: a NIC on a tap, parsed and checked. */
#include "cli/net_opts.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TAP_NAME_MAX 15 /* IFNAMSIZ - 1 */

/* "xx:xx:xx:xx:xx:xx" (or with '-'), exactly, into mac. */
static bool mac_parse(const char *s, size_t len, uint8_t mac[VM_MAC_BYTES])
{
	if (len != 17)
		return false;
	for (unsigned i = 0; i < VM_MAC_BYTES; i++) {
		const char *p = s + 3 * i;
		char byte[3] = { p[0], p[1], '\0' };

		if (!isxdigit((unsigned char)p[0]) || !isxdigit((unsigned char)p[1]) ||
		    (i < 5 && p[2] != ':' && p[2] != '-'))
			return false;
		mac[i] = (uint8_t)strtoul(byte, NULL, 16);
	}
	return true;
}

void net_mac_format(const unsigned char mac[VM_MAC_BYTES], char out[18])
{
	snprintf(out, 18, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4],
		 mac[5]);
}

/* One "key=value" item of a --net argument into nc. */
static int net_item(struct vm_net_config *nc, const char *arg, const char *item, size_t len,
		    bool *have_tap, char *err, size_t errlen)
{
	const char *eq = memchr(item, '=', len);
	size_t klen = eq ? (size_t)(eq - item) : len, vlen = eq ? len - klen - 1 : 0;
	const char *v = eq ? eq + 1 : "";

	if (klen == 3 && !memcmp(item, "tap", 3) && !*have_tap) {
		char *name;

		if (vlen == 0 || vlen > TAP_NAME_MAX || memchr(v, '/', vlen)) {
			snprintf(err, errlen, "--net %s: give the tap's name, 1 to %d characters "
				 "(e.g. --net tap=tap0)", arg, TAP_NAME_MAX);
			return -1;
		}
		name = strndup(v, vlen);
		if (!name) {
			snprintf(err, errlen, "--net %s: out of memory", arg);
			return -1;
		}
		nc->tap = name;
		*have_tap = true;
		return 0;
	}
	if (klen == 5 && !memcmp(item, "tapfd", 5) && !*have_tap) {
		char num[16], *end;
		long fd;

		if (vlen == 0 || vlen >= sizeof(num))
			goto bad_fd;
		memcpy(num, v, vlen);
		num[vlen] = '\0';
		errno = 0;
		fd = strtol(num, &end, 10);
		if (errno || *end || fd < 0 || fd > INT_MAX || num[0] < '0' || num[0] > '9')
			goto bad_fd;
		nc->tap_fd = (int)fd;
		*have_tap = true;
		return 0;
bad_fd:
		snprintf(err, errlen, "--net %s: tapfd takes a file descriptor number (e.g. "
			 "--net tapfd=3)", arg);
		return -1;
	}
	if (klen == 3 && !memcmp(item, "mac", 3) && !nc->has_mac) {
		static const uint8_t zero[VM_MAC_BYTES];

		if (!mac_parse(v, vlen, nc->mac) || !memcmp(nc->mac, zero, VM_MAC_BYTES)) {
			snprintf(err, errlen, "--net %s: mac '%.*s' is not a MAC address: give six "
				 "hex bytes, e.g. mac=02:00:00:00:00:01", arg, (int)vlen, v);
			return -1;
		}
		if (nc->mac[0] & 1) {
			snprintf(err, errlen, "--net %s: mac %.*s is a multicast address: a NIC needs "
				 "a unicast one (first byte even, e.g. 02:...)", arg, (int)vlen, v);
			return -1;
		}
		nc->has_mac = true;
		return 0;
	}
	snprintf(err, errlen, "--net %s: '%.*s' is not understood here: give tap=NAME or "
		 "tapfd=N, then optionally ,mac=MAC", arg, (int)len, item);
	return -1;
}

int net_opt_parse(struct net_opts *o, const char *arg, char *err, size_t errlen)
{
	struct vm_net_config nc = { .tap_fd = -1 };
	bool have_tap = false;
	const char *p = arg;

	if (o->n == VM_MAX_NICS) {
		snprintf(err, errlen, "--net %s: at most %u NICs fit on the PCI bus", arg,
			 VM_MAX_NICS);
		return -1;
	}
	for (;;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);

		if (net_item(&nc, arg, p, len, &have_tap, err, errlen) < 0) {
			free((char *)nc.tap);
			return -1;
		}
		if (!comma)
			break;
		p = comma + 1;
	}
	if (!have_tap) {
		snprintf(err, errlen, "--net %s: no tap given: add tap=NAME (an existing tap) or "
			 "tapfd=N", arg);
		return -1;
	}
	for (unsigned i = 0; i < o->n; i++) {
		const struct vm_net_config *other = &o->net[i];

		if ((nc.tap && other->tap && !strcmp(nc.tap, other->tap)) ||
		    (!nc.tap && !other->tap && nc.tap_fd == other->tap_fd)) {
			snprintf(err, errlen, "--net %s: that tap is already NIC %u: give each NIC its "
				 "own tap", arg, i);
			free((char *)nc.tap);
			return -1;
		}
	}
	o->net[o->n++] = nc;
	return 0;
}

void net_opts_free(struct net_opts *o)
{
	for (unsigned i = 0; i < o->n; i++)
		free((char *)o->net[i].tap);
	o->n = 0;
}

void net_opts_apply(const struct net_opts *o, struct vm_config *cfg)
{
	cfg->nets = o->n ? o->net : NULL;
	cfg->nnets = o->n;
}

int net_opts_check_restore(const struct net_opts *o, bool count_known, unsigned count,
			   const char *what, char *err, size_t errlen)
{
	for (unsigned i = 0; i < o->n; i++) {
		if (o->net[i].has_mac) {
			snprintf(err, errlen, "--net: drop mac= here: a restored NIC keeps the MAC "
				 "%s gave it", what);
			return -1;
		}
	}
	if (count_known && o->n != count) {
		if (count == 0)
			snprintf(err, errlen, "%s has no NICs: drop --net", what);
		else
			snprintf(err, errlen, "%s has %u NIC%s, and %u --net %s given: give one --net "
				 "tap=NAME per NIC, in order", what, count, count == 1 ? "" : "s",
				 o->n, o->n == 1 ? "was" : "were");
		return -1;
	}
	return 0;
}
