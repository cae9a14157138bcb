/* The test guest's network service: ARP, ICMP echo and a UDP echo on port 7, per NIC. */
#ifndef GUEST_NET_H
#define GUEST_NET_H

#include <stdint.h>

#include "cmdline.h"

#define NET_UDP_ECHO_PORT 7

/* What the service has done since boot, over all NICs. */
struct net_stats {
	uint64_t rx;            /* frames received */
	uint64_t udp;           /* UDP datagrams echoed */
	uint64_t arp;           /* ARP requests answered */
	uint64_t icmp;          /* ICMP echo requests answered */
	uint64_t bad;           /* malformed, wrong checksum, or not for us */
	uint64_t tx_full;       /* replies lost: every transmit buffer in flight */
	uint64_t announced;     /* announcements the device asked for and we made */
};

/*
 * Probes the NICs and gives NIC i the address of the i-th ip= option (a NIC without one
 * only answers nothing). Prints "NET nic=<i> mac=<mac> ip=<a.b.c.d>" per NIC, or
 * "NET none" when ip= was given but no NIC was found. Returns the number of NICs.
 */
unsigned net_init(const struct guest_options *opt);

/* Serves what has arrived on every NIC: at most a bounded number of frames per call. */
void net_poll(void);

/* At each heartbeat: announce (gratuitous ARP, then ack) on NICs whose device asks. */
void net_heartbeat(void);

const struct net_stats *net_stats(void);

#endif
