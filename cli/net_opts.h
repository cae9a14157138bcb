/* The --net option of godwit run, restore and receive: a NIC on a tap, parsed and checked. */
#ifndef CLI_NET_OPTS_H
#define CLI_NET_OPTS_H

#include <stdbool.h>
#include <stddef.h>

#include "vmm/vm.h"

#define NET_OPT_USAGE \
	"  --net tap=NAME[,mac=MAC]  a virtio-net NIC on the existing tap NAME (repeatable, in\n" \
	"                         order; MAC defaults to one derived from NAME and the NIC's\n" \
	"                         number: stable, locally administered)\n" \
	"  --net tapfd=N[,mac=MAC]   or on an open tap fd N (IFF_TAP|IFF_NO_PI|IFF_VNET_HDR)\n"

/* The NICs given so far. */
struct net_opts {
	struct vm_net_config net[VM_MAX_NICS];
	unsigned n;
};

/*
 * Parse one --net argument (arg) into the next slot of o: "tap=NAME" or "tapfd=N", then
 * optionally ",mac=XX:XX:XX:XX:XX:XX" (a unicast, non-zero address). The tap's own checks
 * (it exists, is a tap, nobody else holds it) come when the VM is made. Returns 0, or -1
 * with a one-line reason naming the option and the fix in err.
 */
int net_opt_parse(struct net_opts *o, const char *arg, char *err, size_t errlen);

/* Put o's NICs into cfg (cfg->nets points into o). */
void net_opts_apply(const struct net_opts *o, struct vm_config *cfg);

/*
 * For a restored or received VM (the guest already knows its NICs): no mac= (a NIC keeps
 * the MAC it had), and, when count is known (restore: the snapshot's NICs; not yet on
 * receive, where the state load checks it), exactly count NICs. what names the source
 * ("snapshot ID"). Returns 0, or -1 with a one-line reason in err.
 */
int net_opts_check_restore(const struct net_opts *o, bool count_known, unsigned count,
			   const char *what, char *err, size_t errlen);

/* Free what net_opt_parse allocated (tap names); o is empty afterwards. */
void net_opts_free(struct net_opts *o);

/* "02:00:00:00:00:01" into out (18 bytes). */
void net_mac_format(const unsigned char mac[VM_MAC_BYTES], char out[18]);

#endif
