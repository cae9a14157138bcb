/* Network helpers for tests: a private namespace with taps and bridges, sockets inside it. */
#ifndef TESTS_COMMON_GW_NET_H
#define TESTS_COMMON_GW_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tests/common/gw_test.h"

/*
 * One network namespace the test made ("gwn<pid>-<tag>"): its taps and bridges die with
 * it. Everything a test does on the host side of a guest's NIC happens in here.
 */
struct gw_lan {
	char ns[32];
	bool up;
};

/* Make the namespace with lo up, or skip the test (not root, no ip(8), no /dev/net/tun). */
void gw_lan_create(struct gw_lan *l, const char *tag);
/* Delete it (and with it every tap, bridge and socket in it). Safe to repeat. */
void gw_lan_destroy(struct gw_lan *l);

/* Run a shell command inside the namespace (printf format); returns its exit status. */
int gw_lan_sh(const struct gw_lan *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A bridge br with address cidr ("10.9.0.1/24"), up. */
void gw_lan_bridge(const struct gw_lan *l, const char *br, const char *cidr);
/* A persistent tap, up; with cidr (or NULL) as its own address, on bridge br (or NULL). */
void gw_lan_tap(const struct gw_lan *l, const char *tap, const char *cidr, const char *br);
/* A permanent neighbour entry: ip is at mac ("02:..") on dev, so nothing waits for ARP. */
void gw_lan_neigh(const struct gw_lan *l, const char *dev, const char *ip, const char *mac);
/* Packets the qdisc of dev has handed to its driver (tc's "Sent N pkt"): for a tap, the
 * frames now in its queue or already read. */
uint64_t gw_lan_qdisc_sent(const struct gw_lan *l, const char *dev);

/* A socket (type SOCK_DGRAM or SOCK_STREAM, AF_INET) that lives in the namespace. */
int gw_lan_socket(const struct gw_lan *l, int type);
/* TCP connect to ip:port from inside the namespace; timeout_ms for connect, send and recv. */
int gw_lan_connect(const struct gw_lan *l, const char *ip, unsigned port, int timeout_ms);
/*
 * Open /dev/net/tun inside the namespace and attach to (or create) tap with tun_flags
 * (IFF_TAP | ...). Not close-on-exec: a spawned godwit inherits it (--net tapfd=N).
 */
int gw_lan_tap_open(const struct gw_lan *l, const char *tap, int tun_flags);

/*
 * Send total bytes to ip:7 as datagrams of dgram bytes (each numbered, the rest a
 * pattern of seed), one at a time, each answered within timeout_ms and compared byte for
 * byte. Returns the datagrams echoed intact; stops at the first lost or damaged one.
 */
unsigned gw_udp_echo_run(int fd, const char *ip, size_t total, size_t dgram, uint64_t seed,
			 int timeout_ms);

/*
 * The topology of a move (README, Live migration): a client namespace with bridge brc
 * holding the client's address; two hosts (hosts.a, hosts.b, joined by their own link
 * for the migration stream, gw_test.h), each with a bridge br0 holding the VM's tap
 * (named tap) and an uplink veth (upa, upb) whose peer (cpa, cpb) is a port of brc.
 * a and b name the hosts' namespaces (they do not own them); c owns the client's.
 */
struct gw_topo {
	struct gw_netns hosts;
	struct gw_lan a, b, c;
};
void gw_topo_create(struct gw_topo *t, const char *client_cidr, const char *tap);
void gw_topo_destroy(struct gw_topo *t);
/* Which host the client bridge has learned mac behind: 'a', 'b', or 0 for neither. */
char gw_topo_fdb_host(const struct gw_topo *t, const char *mac);

/* The number after key in the last line of file starting with prefix (asserts it is there). */
uint64_t gw_line_u64(const char *file, const char *prefix, const char *key);

#endif
