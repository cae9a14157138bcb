/* Network helpers for tests: a private namespace with taps and bridges, sockets inside it. */
#include "tests/common/gw_net.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <net/if.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <linux/if_tun.h>

#include "tests/common/gw_test.h"

static int sh_v(const char *fmt, va_list ap)
{
	char cmd[1024];

	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	return system(cmd);
}

int gw_lan_sh(const struct gw_lan *l, const char *fmt, ...)
{
	char inner[900], cmd[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(inner, sizeof(inner), fmt, ap);
	va_end(ap);
	snprintf(cmd, sizeof(cmd), "ip netns exec %s sh -c '%s'", l->ns, inner);
	return system(cmd);
}

static int sh(const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = sh_v(fmt, ap);
	va_end(ap);
	return rc;
}

void gw_lan_create(struct gw_lan *l, const char *tag)
{
	memset(l, 0, sizeof(*l));
	if (geteuid() != 0)
		cr_skip_test("network tests need root for namespaces and taps");
	if (access("/usr/sbin/ip", X_OK) != 0)
		cr_skip_test("network tests need ip(8) from iproute2");
	if (access("/dev/net/tun", R_OK | W_OK) != 0)
		cr_skip_test("network tests need /dev/net/tun");
	snprintf(l->ns, sizeof(l->ns), "gwn%u-%s", (unsigned)getpid(), tag);
	if (sh("ip netns add %s", l->ns) != 0)
		cr_skip_test("cannot create network namespaces here");
	l->up = true;
	cr_assert_eq(sh("ip -n %s link set lo up", l->ns), 0);
}

void gw_lan_destroy(struct gw_lan *l)
{
	if (!l->up)
		return;
	sh("ip netns del %s 2>/dev/null", l->ns);
	l->up = false;
}

void gw_lan_bridge(const struct gw_lan *l, const char *br, const char *cidr)
{
	cr_assert_eq(sh("ip -n %s link add %s type bridge && ip -n %s addr add %s dev %s && "
			"ip -n %s link set %s up", l->ns, br, l->ns, cidr, br, l->ns, br), 0,
		     "bridge %s", br);
}

void gw_lan_tap(const struct gw_lan *l, const char *tap, const char *cidr, const char *br)
{
	cr_assert_eq(sh("ip -n %s tuntap add dev %s mode tap", l->ns, tap), 0, "tap %s", tap);
	if (cidr)
		cr_assert_eq(sh("ip -n %s addr add %s dev %s", l->ns, cidr, tap), 0);
	if (br)
		cr_assert_eq(sh("ip -n %s link set %s master %s", l->ns, tap, br), 0);
	cr_assert_eq(sh("ip -n %s link set %s up", l->ns, tap), 0);
}

void gw_lan_neigh(const struct gw_lan *l, const char *dev, const char *ip, const char *mac)
{
	cr_assert_eq(sh("ip -n %s neigh replace %s lladdr %s dev %s nud permanent", l->ns, ip,
			mac, dev), 0);
}

uint64_t gw_lan_qdisc_sent(const struct gw_lan *l, const char *dev)
{
	char cmd[256], line[512];
	uint64_t pkts = 0;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "ip netns exec %s tc -s qdisc show dev %s", l->ns, dev);
	f = popen(cmd, "r");
	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f)) {
		const char *p = strstr(line, "Sent ");
		uint64_t bytes, n;

		/* The root qdisc's line comes first; children repeat parts of it. */
		if (p && sscanf(p, "Sent %" SCNu64 " bytes %" SCNu64 " pkt", &bytes, &n) == 2) {
			pkts = n;
			break;
		}
	}
	pclose(f);
	return pkts;
}

/* Enter the namespace (home: where to come back to); ns_leave returns. */
static void ns_enter(const struct gw_lan *l, int *home)
{
	char path[96];
	int fd;

	*home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	cr_assert_geq(*home, 0);
	snprintf(path, sizeof(path), "/run/netns/%s", l->ns);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
	cr_assert_eq(setns(fd, CLONE_NEWNET), 0, "setns: %s", strerror(errno));
	close(fd);
}

static void ns_leave(int home)
{
	cr_assert_eq(setns(home, CLONE_NEWNET), 0);
	close(home);
}

int gw_lan_socket(const struct gw_lan *l, int type)
{
	int home, fd;

	ns_enter(l, &home);
	fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
	ns_leave(home);
	cr_assert_geq(fd, 0, "socket: %s", strerror(errno));
	return fd;
}

static void sock_timeouts(int fd, int timeout_ms)
{
	struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = timeout_ms % 1000 * 1000 };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

int gw_lan_connect(const struct gw_lan *l, const char *ip, unsigned port, int timeout_ms)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = gw_lan_socket(l, SOCK_STREAM);

	cr_assert_eq(inet_pton(AF_INET, ip, &sin.sin_addr), 1);
	sock_timeouts(fd, timeout_ms);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0, "connect %s:%u: %s", ip,
		     port, strerror(errno));
	return fd;
}

int gw_lan_tap_open(const struct gw_lan *l, const char *tap, int tun_flags)
{
	struct ifreq ifr = { .ifr_flags = (short)tun_flags };
	int home, fd;

	ns_enter(l, &home);
	fd = open("/dev/net/tun", O_RDWR);
	ns_leave(home);
	cr_assert_geq(fd, 0, "/dev/net/tun: %s", strerror(errno));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", tap);
	cr_assert_eq(ioctl(fd, TUNSETIFF, &ifr), 0, "TUNSETIFF %s: %s", tap, strerror(errno));
	return fd;
}

unsigned gw_udp_echo_run(int fd, const char *ip, size_t total, size_t dgram, uint64_t seed,
			 int timeout_ms)
{
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(7) };
	uint8_t *out = malloc(dgram), *in = malloc(dgram + 1);
	unsigned ok = 0;

	cr_assert(out && in && dgram >= 8);
	cr_assert_eq(inet_pton(AF_INET, ip, &to.sin_addr), 1);
	sock_timeouts(fd, timeout_ms);
	for (size_t sent = 0; sent < total; sent += dgram) {
		ssize_t got;

		for (size_t k = 0; k < dgram; k += 8) {
			uint64_t w = gw_splitmix64(seed ^ (sent + k));

			memcpy(out + k, &w, dgram - k < 8 ? dgram - k : 8);
		}
		memcpy(out, &ok, sizeof(ok)); /* its number: a late echo of another never matches */
		cr_assert_eq(sendto(fd, out, dgram, 0, (struct sockaddr *)&to, sizeof(to)),
			     (ssize_t)dgram, "sendto: %s", strerror(errno));
		do {
			got = recv(fd, in, dgram + 1, 0);
		} while (got < 0 && errno == EINTR); /* a child of the test ended */
		if (got != (ssize_t)dgram || memcmp(in, out, dgram) != 0)
			break;
		ok++;
	}
	free(out);
	free(in);
	return ok;
}

uint64_t gw_line_u64(const char *file, const char *prefix, const char *key)
{
	char *text = gw_read_file(file), *line = NULL, *p, *at;
	size_t plen = strlen(prefix);
	uint64_t v;

	cr_assert_not_null(text, "no %s", file);
	for (p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		if (strncmp(p, prefix, plen) == 0 && strchr(p, '\n'))
			line = p;
	}
	cr_assert_not_null(line, "no line starting %s in %s", prefix, file);
	*strchr(line, '\n') = '\0';
	at = strstr(line, key);
	cr_assert_not_null(at, "no %s in: %s", key, line);
	v = strtoull(at + strlen(key), NULL, 10);
	free(text);
	return v;
}

void gw_topo_create(struct gw_topo *t, const char *client_cidr, const char *tap)
{
	struct gw_lan *host[2] = { &t->a, &t->b };
	static const char side[2] = { 'a', 'b' };

	memset(t, 0, sizeof(*t));
	gw_netns_create(&t->hosts);
	snprintf(t->a.ns, sizeof(t->a.ns), "%s", t->hosts.a);
	snprintf(t->b.ns, sizeof(t->b.ns), "%s", t->hosts.b);
	gw_lan_create(&t->c, "c");
	gw_lan_bridge(&t->c, "brc", client_cidr);
	for (int i = 0; i < 2; i++) {
		const char *ns = host[i]->ns;

		cr_assert_eq(sh("ip -n %s link add br0 type bridge && ip -n %s link set br0 up && "
				"ip -n %s link add up%c type veth peer name cp%c netns %s && "
				"ip -n %s link set up%c master br0 && ip -n %s link set up%c up && "
				"ip -n %s link set cp%c master brc && ip -n %s link set cp%c up",
				ns, ns, ns, side[i], side[i], t->c.ns, ns, side[i], ns, side[i],
				t->c.ns, side[i], t->c.ns, side[i]), 0, "uplink of host %c", side[i]);
		gw_lan_tap(host[i], tap, NULL, "br0");
	}
}

void gw_topo_destroy(struct gw_topo *t)
{
	gw_lan_destroy(&t->c);
	gw_netns_destroy(&t->hosts);
}

char gw_topo_fdb_host(const struct gw_topo *t, const char *mac)
{
	if (gw_lan_sh(&t->c, "bridge fdb show br brc dev cpa | grep -qi \"^%s \"", mac) == 0)
		return 'a';
	if (gw_lan_sh(&t->c, "bridge fdb show br brc dev cpb | grep -qi \"^%s \"", mac) == 0)
		return 'b';
	return 0;
}
