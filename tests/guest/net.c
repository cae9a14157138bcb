/* The test guest's network service: ARP, ICMP echo and a UDP echo on port 7, per NIC. */
#include "net.h"

#include "console.h"
#include "lib.h"
#include "virtio_net.h"

#define ETH_HDR 14
#define ETH_ARP 0x0806
#define ETH_IPV4 0x0800
#define IP_HDR 20
#define IP_ICMP 1
#define IP_UDP 17
#define UDP_HDR 8
#define ARP_BYTES 28
#define NET_POLL_BUDGET 32

static struct net_stats stats;
static uint32_t net_ip[VNET_NICS_MAX];
static unsigned net_nics;
static uint8_t reply[VNET_FRAME_MAX];

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)get16(p) << 16 | get16(p + 2);
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

/* The Internet checksum's running sum (RFC 1071) over len bytes, big-endian words. */
static uint32_t csum_add(uint32_t sum, const uint8_t *p, uint32_t len)
{
	for (uint32_t i = 0; i + 1 < len; i += 2)
		sum += get16(p + i);
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	return sum;
}

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* The UDP checksum over the pseudo header, header and data at udp (len bytes). */
static uint16_t udp_csum(uint32_t src, uint32_t dst, const uint8_t *udp, uint32_t len)
{
	uint8_t pseudo[12];
	uint16_t c;

	put32(pseudo, src);
	put32(pseudo + 4, dst);
	pseudo[8] = 0;
	pseudo[9] = IP_UDP;
	put16(pseudo + 10, (uint16_t)len);
	c = csum_fold(csum_add(csum_add(0, pseudo, sizeof(pseudo)), udp, len));
	return c ? c : 0xffff;
}

/* Start a reply frame to dst from NIC nic with ethertype type; returns its payload. */
static uint8_t *eth_reply(unsigned nic, const uint8_t *dst, uint16_t type)
{
	memcpy(reply, dst, 6);
	memcpy(reply + 6, vnet_mac(nic), 6);
	put16(reply + 12, type);
	return reply + ETH_HDR;
}

static void net_send(unsigned nic, uint32_t len)
{
	if (!vnet_tx(nic, reply, len))
		stats.tx_full++;
}

/* An ARP packet (Ethernet/IPv4) from NIC nic's MAC and address into the reply frame, to
 * Ethernet dst: operation op, target MAC tha and address tpa. Sends it. */
static void arp_send(unsigned nic, const uint8_t *dst, uint16_t op, const uint8_t *tha,
		     uint32_t tpa)
{
	uint8_t *r = eth_reply(nic, dst, ETH_ARP);

	put16(r, 1);
	put16(r + 2, ETH_IPV4);
	r[4] = 6;
	r[5] = 4;
	put16(r + 6, op);
	memcpy(r + 8, vnet_mac(nic), 6);
	put32(r + 14, net_ip[nic]);
	memcpy(r + 18, tha, 6);
	put32(r + 24, tpa);
	net_send(nic, ETH_HDR + ARP_BYTES);
}

static void arp_in(unsigned nic, const uint8_t *f, uint32_t len)
{
	const uint8_t *a = f + ETH_HDR;

	if (len < ETH_HDR + ARP_BYTES || get16(a) != 1 || get16(a + 2) != ETH_IPV4 ||
	    a[4] != 6 || a[5] != 4) {
		stats.bad++;
		return;
	}
	if (get16(a + 6) != 1 || get32(a + 24) != net_ip[nic])
		return; /* not a request for us */
	stats.arp++;
	arp_send(nic, a + 8, 2, a + 8, get32(a + 14)); /* to the asker, about us */
}

/* An IPv4 header for a reply of payload bytes of protocol proto to dst; returns payload. */
static uint8_t *ip_reply(unsigned nic, const uint8_t *eth_src, uint32_t dst, uint8_t proto,
			 uint32_t payload)
{
	uint8_t *ip = eth_reply(nic, eth_src, ETH_IPV4);

	memset(ip, 0, IP_HDR);
	ip[0] = 0x45;
	put16(ip + 2, (uint16_t)(IP_HDR + payload));
	ip[8] = 64;
	ip[9] = proto;
	put32(ip + 12, net_ip[nic]);
	put32(ip + 16, dst);
	put16(ip + 10, csum_fold(csum_add(0, ip, IP_HDR)));
	return ip + IP_HDR;
}

static void udp_in(unsigned nic, const uint8_t *f, uint32_t src, const uint8_t *u, uint32_t len)
{
	uint32_t ulen;
	uint8_t *r;

	if (len < UDP_HDR || (ulen = get16(u + 4)) < UDP_HDR || ulen > len) {
		stats.bad++;
		return;
	}
	/* Summed with its own checksum in place, a whole datagram gives 0xffff here. */
	if (get16(u + 6) && udp_csum(src, net_ip[nic], u, ulen) != 0xffff) {
		stats.bad++; /* damaged on the way */
		return;
	}
	if (get16(u + 2) != NET_UDP_ECHO_PORT)
		return;
	r = ip_reply(nic, f + 6, src, IP_UDP, ulen);
	put16(r, NET_UDP_ECHO_PORT);
	memcpy(r + 2, u, 2); /* back to the sender's port */
	put16(r + 4, (uint16_t)ulen);
	put16(r + 6, 0);
	memcpy(r + UDP_HDR, u + UDP_HDR, ulen - UDP_HDR);
	put16(r + 6, udp_csum(net_ip[nic], src, r, ulen));
	stats.udp++;
	net_send(nic, ETH_HDR + IP_HDR + ulen);
}

static void icmp_in(unsigned nic, const uint8_t *f, uint32_t src, const uint8_t *m, uint32_t len)
{
	uint8_t *r;

	if (len < 8 || csum_fold(csum_add(0, m, len)) != 0) {
		stats.bad++;
		return;
	}
	if (m[0] != 8)
		return; /* only echo requests */
	r = ip_reply(nic, f + 6, src, IP_ICMP, len);
	memcpy(r, m, len);
	r[0] = 0;
	put16(r + 2, 0);
	put16(r + 2, csum_fold(csum_add(0, r, len)));
	stats.icmp++;
	net_send(nic, ETH_HDR + IP_HDR + len);
}

static void ipv4_in(unsigned nic, const uint8_t *f, uint32_t len)
{
	const uint8_t *ip = f + ETH_HDR;
	uint32_t ihl, total;

	if (len < ETH_HDR + IP_HDR || (ip[0] >> 4) != 4 || (ihl = (ip[0] & 15) * 4u) < IP_HDR ||
	    (total = get16(ip + 2)) < ihl || total > len - ETH_HDR ||
	    csum_fold(csum_add(0, ip, ihl)) != 0) {
		stats.bad++;
		return;
	}
	if (get32(ip + 16) != net_ip[nic] || (get16(ip + 6) & 0x3fff))
		return; /* not ours, or a fragment: the echo takes whole datagrams only */
	if (ip[9] == IP_UDP)
		udp_in(nic, f, get32(ip + 12), ip + ihl, total - ihl);
	else if (ip[9] == IP_ICMP)
		icmp_in(nic, f, get32(ip + 12), ip + ihl, total - ihl);
}

static void net_frame(unsigned nic, const uint8_t *f, uint32_t len)
{
	stats.rx++;
	if (len < ETH_HDR || !net_ip[nic])
		return;
	if (get16(f + 12) == ETH_ARP)
		arp_in(nic, f, len);
	else if (get16(f + 12) == ETH_IPV4)
		ipv4_in(nic, f, len);
}

unsigned net_init(const struct guest_options *opt)
{
	net_nics = vnet_probe();
	if (net_nics == 0 && opt->nip)
		console_printf("NET none\n");
	for (unsigned i = 0; i < net_nics; i++) {
		const uint8_t *m = vnet_mac(i);

		net_ip[i] = i < opt->nip ? opt->ip[i] : 0;
		console_printf("NET nic=%u mac=%02x:%02x:%02x:%02x:%02x:%02x ip=%u.%u.%u.%u\n", i,
			       m[0], m[1], m[2], m[3], m[4], m[5], net_ip[i] >> 24,
			       (net_ip[i] >> 16) & 255, (net_ip[i] >> 8) & 255, net_ip[i] & 255);
	}
	return net_nics;
}

void net_poll(void)
{
	for (unsigned nic = 0; nic < net_nics; nic++) {
		const uint8_t *f;
		uint32_t len;

		for (unsigned n = 0; n < NET_POLL_BUDGET && vnet_rx(nic, &f, &len); n++) {
			net_frame(nic, f, len);
			vnet_rx_done(nic);
		}
	}
}

/* A gratuitous ARP request: "who has <ours>? tell <ours>", to everyone. */
static void net_announce(unsigned nic)
{
	static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	static const uint8_t none[6];

	arp_send(nic, bcast, 1, none, net_ip[nic]);
}

void net_heartbeat(void)
{
	for (unsigned nic = 0; nic < net_nics; nic++) {
		if (!vnet_announce_wanted(nic))
			continue;
		net_announce(nic);
		if (vnet_announce_ack(nic))
			stats.announced++;
	}
}

const struct net_stats *net_stats(void)
{
	return &stats;
}
