/* virtio-net on a real tap: a driver's view through PCI and BAR0, the wire's view through the tap. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/ethernet.h>

#include "vmm/devices.h"
#include "vmm/x86/layout.h"
#include "vmm/virtio/pci_priv.h"
#include "vmm/state/state_codec.h"
#include "vmm/virtio/tap.h"
#include "vmm/virtio/virtio_priv.h"

#define RAM_BYTES (4ULL << 20)
#define QN VIRTIO_NET_QUEUE_NUM
#define RING_GPA(q) (0x10000ULL + 0x4000ULL * (q)) /* 3 rings of 256 fit 0x4000 each */
#define BUF_GPA 0x40000ULL                          /* receive buffers from here */
#define TX_GPA 0x80000ULL
#define CTRL_GPA 0x90000ULL
#define WAIT_MS 5000

#define F(bit) (1u << (bit))
static const uint8_t broadcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
#define NET_FEATURES (F(VIRTIO_NET_F_MAC) | F(VIRTIO_NET_F_STATUS))

struct fake_irq {
	int level[LAYOUT_IOAPIC_PINS];
};

static void fake_set_level(void *opaque, unsigned gsi, int level)
{
	((struct fake_irq *)opaque)->level[gsi] = level;
}

static struct bus pio, mmio;
static struct pci_bus *pci;
static struct fake_irq irq_state;
static struct irq_chip chip = { .set_level = fake_set_level, .opaque = &irq_state };
static struct guest_mem mem;
static uint8_t *ram;
static uint64_t *dirty;
static struct virtio_net *vn;
static int tap_fd = -1, pkt_fd = -1;
static uint16_t io_base, avail_idx[VIRTIO_NET_QUEUES], desc_next[VIRTIO_NET_QUEUES];
static char err[256];

static uint8_t *gpa(uint64_t a)
{
	return ram + a;
}

static uint32_t reg_in(unsigned off, unsigned size)
{
	uint32_t v = 0;

	cr_assert(bus_access(&pio, io_base + off, false, &v, size));
	return v;
}

static void reg_out(unsigned off, uint32_t v, unsigned size)
{
	cr_assert(bus_access(&pio, io_base + off, true, &v, size));
}

static uint32_t cfg_read(unsigned slot, unsigned reg)
{
	uint32_t addr = PCI_CONFIG_ADDR(0, slot, 0, reg), v = 0;

	bus_access(&pio, PCI_CONFIG_ADDR_PORT, true, &addr, 4);
	bus_access(&pio, PCI_CONFIG_DATA_PORT, false, &v, 4);
	return v;
}

static void if_up(const char *name)
{
	struct ifreq ifr = { 0 };
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	cr_assert_eq(ioctl(s, SIOCGIFFLAGS, &ifr), 0);
	ifr.ifr_flags |= IFF_UP;
	cr_assert_eq(ioctl(s, SIOCSIFFLAGS, &ifr), 0, "%s up: %s", name, strerror(errno));
	close(s);
}

/* A tap named name in this test's own namespace, attached with flags (not yet up). */
static int tap_make(const char *name, int flags)
{
	struct ifreq ifr = { .ifr_flags = (short)flags };
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);

	cr_assert_geq(fd, 0);
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	cr_assert_eq(ioctl(fd, TUNSETIFF, &ifr), 0, "TUNSETIFF: %s", strerror(errno));
	return fd;
}

/* The wire side of tap name: a packet socket that sends into it and sees what comes out. */
static int wire_open(const char *name)
{
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL) };
	int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));

	cr_assert_geq(fd, 0);
	sll.sll_ifindex = (int)if_nametoindex(name);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sll, sizeof(sll)), 0);
	return fd;
}

static void device_open(void)
{
	struct virtio_net_config cfg = { .tap_fd = tap_fd };

	cr_assert_eq(virtio_net_create(&vn, pci, &mem, &chip, NULL, &cfg, err, sizeof(err)), 0,
		     "%s", err);
	io_base = (uint16_t)(cfg_read(1, PCI_BAR0) & PCI_BAR_IO_MASK);
	virtio_net_resume(vn);
}

static void setup(void)
{
	int fd;

	if (geteuid() != 0 || access("/dev/net/tun", R_OK | W_OK) != 0)
		cr_skip_test("virtio-net tests need root and /dev/net/tun");
	cr_assert_eq(unshare(CLONE_NEWNET), 0, "unshare: %s", strerror(errno));
	/* No IPv6 autoconfiguration chatter on the test's taps. */
	fd = open("/proc/sys/net/ipv6/conf/default/disable_ipv6", O_WRONLY);
	if (fd >= 0) {
		cr_assert_eq(write(fd, "1", 1), 1);
		close(fd);
	}
	memset(&irq_state, 0, sizeof(irq_state));
	memset(avail_idx, 0, sizeof(avail_idx));
	memset(desc_next, 0, sizeof(desc_next));
	ram = aligned_alloc(4096, RAM_BYTES);
	dirty = calloc(RAM_BYTES / 4096 / 64, sizeof(uint64_t));
	cr_assert(ram && dirty);
	memset(ram, 0, RAM_BYTES);
	guest_mem_layout(&mem, ram, RAM_BYTES);
	mem.region[0].vmm_dirty = dirty;
	cr_assert_eq(bus_init(&pio), 0);
	cr_assert_eq(bus_init(&mmio), 0);
	cr_assert_eq(pci_bus_create(&pci, &pio, &mmio), 0);
	tap_fd = tap_make("t0", IFF_TAP | IFF_NO_PI | IFF_VNET_HDR);
	if_up("t0");
	pkt_fd = wire_open("t0");
	device_open();
}

static void teardown(void)
{
	virtio_net_destroy(vn);
	vn = NULL;
	if (pci)
		pci_bus_destroy(pci);
	pci = NULL;
	bus_destroy(&mmio);
	bus_destroy(&pio);
	if (tap_fd >= 0)
		close(tap_fd);
	if (pkt_fd >= 0)
		close(pkt_fd);
	tap_fd = pkt_fd = -1;
	free(dirty);
	free(ram);
}

TestSuite(virtio_net, .init = setup, .fini = teardown, .timeout = 60);

/* ---- a driver ---------------------------------------------------------------------------- */

static uint8_t *desc_table(unsigned q)
{
	return gpa(RING_GPA(q));
}

static uint8_t *avail_ring(unsigned q)
{
	return gpa(RING_GPA(q) + vring_avail_off(QN));
}

static uint8_t *used_ring(unsigned q)
{
	return gpa(RING_GPA(q) + vring_used_off(QN));
}

static uint16_t used_idx(unsigned q)
{
	return __atomic_load_n((uint16_t *)(used_ring(q) + VRING_USED_IDX_OFF), __ATOMIC_ACQUIRE);
}

static void used_elem(unsigned q, uint16_t i, uint32_t *id, uint32_t *len)
{
	uint8_t *e = used_ring(q) + VRING_USED_RING_OFF + VRING_USED_ELEM_BYTES * (i % QN);

	*id = le32_decode(e);
	*len = le32_decode(e + 4);
}

static void desc_set(unsigned q, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
		     uint16_t next)
{
	vring_desc_encode(desc_table(q) + VRING_DESC_BYTES * i, addr, len, flags, next);
}

/* What Linux's virtio_pci_legacy probe and setup_vq do, for all three queues. */
static void driver_init(uint32_t features)
{
	reg_out(VIRTIO_PCI_STATUS, 0, 1);
	reg_out(VIRTIO_PCI_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER, 1);
	reg_out(VIRTIO_PCI_GUEST_FEATURES, reg_in(VIRTIO_PCI_HOST_FEATURES, 4) & features, 4);
	for (unsigned q = 0; q < VIRTIO_NET_QUEUES; q++) {
		reg_out(VIRTIO_PCI_QUEUE_SEL, q, 2);
		cr_assert_eq(reg_in(VIRTIO_PCI_QUEUE_NUM, 2), QN);
		memset(gpa(RING_GPA(q)), 0, vring_bytes(QN));
		reg_out(VIRTIO_PCI_QUEUE_PFN, (uint32_t)(RING_GPA(q) >> 12), 4);
		avail_idx[q] = 0;
		desc_next[q] = 0;
	}
	reg_out(VIRTIO_PCI_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
		VIRTIO_STATUS_DRIVER_OK, 1);
}

static void publish(unsigned q, uint16_t head, bool notify)
{
	le16_encode(avail_ring(q) + VRING_AVAIL_RING_OFF + 2 * (avail_idx[q] % QN), head);
	avail_idx[q]++;
	__atomic_store_n((uint16_t *)(avail_ring(q) + VRING_AVAIL_IDX_OFF), avail_idx[q],
			 __ATOMIC_RELEASE);
	if (notify)
		reg_out(VIRTIO_PCI_QUEUE_NOTIFY, q, 2);
}

/* Post one writable receive buffer of len bytes at buf; returns its descriptor (head). */
static uint16_t rx_post(uint64_t buf, uint32_t len)
{
	uint16_t d = desc_next[0]++;

	desc_set(0, d, buf, len, VRING_DESC_F_WRITE, 0);
	publish(0, d, true);
	return d;
}

static bool wait_used(unsigned q, uint16_t want)
{
	for (int i = 0; i < WAIT_MS; i++) {
		if ((int16_t)(used_idx(q) - want) >= 0)
			return true;
		usleep(1000);
	}
	return false;
}

/* A frame from src MAC to dst MAC of len bytes (len >= 14) with a pattern of seed. */
static void frame_make(uint8_t *f, size_t len, const uint8_t dst[6], uint8_t seed)
{
	static const uint8_t src[6] = { 0x02, 0x99, 0, 0, 0, 1 };

	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	f[12] = 0x88; /* a local experimental ethertype: nothing in the kernel answers it */
	f[13] = 0xb5;
	for (size_t i = 14; i < len; i++)
		f[i] = (uint8_t)(i * 7 + seed);
}

static void wire_send(const uint8_t *f, size_t len)
{
	cr_assert_eq(send(pkt_fd, f, len, 0), (ssize_t)len, "send: %s", strerror(errno));
}

/* The next frame the device sent into the tap (not one we sent ourselves), or -1. */
static ssize_t wire_recv(uint8_t *buf, size_t len, int timeout_ms)
{
	struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = timeout_ms % 1000 * 1000 };

	setsockopt(pkt_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	for (;;) {
		struct sockaddr_ll from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(pkt_fd, buf, len, 0, (struct sockaddr *)&from, &fl);

		if (n < 0)
			return -1;
		if (from.sll_pkttype != PACKET_OUTGOING)
			return n;
	}
}

/* A frame of len bytes to everyone, behind a header whose gso_type is gso, as one transmit
 * descriptor; waits until the device has used it. */
static void tx_one(uint32_t len, uint8_t gso, uint8_t seed)
{
	uint16_t before = used_idx(1), d = desc_next[1]++;

	memset(gpa(TX_GPA), 0, VIRTIO_NET_HDR_BYTES);
	*gpa(TX_GPA + 1) = gso;
	frame_make(gpa(TX_GPA + VIRTIO_NET_HDR_BYTES), len, broadcast, seed);
	desc_set(1, d, TX_GPA, VIRTIO_NET_HDR_BYTES + len, 0, 0);
	publish(1, d, true);
	cr_assert(wait_used(1, (uint16_t)(before + 1)), "the transmit chain was never used");
}

static void nic_mac(uint8_t mac[6])
{
	for (unsigned i = 0; i < 6; i++)
		mac[i] = (uint8_t)reg_in(VIRTIO_PCI_CONFIG + VIRTIO_NET_CFG_MAC + i, 1);
}

static struct virtio_net_stats stats(void)
{
	struct virtio_net_info info;

	virtio_net_info_get(vn, &info);
	return info.stats;
}

static bool page_dirty(uint64_t a)
{
	return dirty[a / 4096 / 64] >> (a / 4096 % 64) & 1;
}

/* ---- identity ---------------------------------------------------------------------------- */

Test(virtio_net, is_a_legacy_virtio_pci_network_device)
{
	uint32_t host = reg_in(VIRTIO_PCI_HOST_FEATURES, 4);
	uint8_t mac[6], want[6];

	cr_assert_eq(cfg_read(1, PCI_VENDOR_ID), 0x10001af4);
	cr_assert_eq(cfg_read(1, PCI_REVISION_ID) >> 8, VIRTIO_PCI_CLASS_NETWORK);
	cr_assert_eq(cfg_read(1, PCI_SUBSYSTEM_VENDOR_ID), 0x00011af4);
	cr_assert(cfg_read(1, PCI_BAR0) & PCI_BAR_SPACE_IO);
	cr_assert_eq(host & NET_FEATURES, NET_FEATURES);
	cr_assert(host & F(VIRTIO_NET_F_CTRL_VQ) && host & F(VIRTIO_NET_F_GUEST_ANNOUNCE) &&
		  host & F(VIRTIO_NET_F_CTRL_RX) && host & F(VIRTIO_NET_F_MRG_RXBUF));
	nic_mac(mac);
	virtio_net_mac_derive("t0", 0, want);
	cr_assert_arr_eq(mac, want, 6, "the default MAC is the derived one");
	cr_assert_eq(reg_in(VIRTIO_PCI_CONFIG + VIRTIO_NET_CFG_STATUS, 2), VIRTIO_NET_S_LINK_UP);
	for (unsigned q = 0; q < VIRTIO_NET_QUEUES + 1; q++) {
		reg_out(VIRTIO_PCI_QUEUE_SEL, q, 2);
		cr_assert_eq(reg_in(VIRTIO_PCI_QUEUE_NUM, 2), q < VIRTIO_NET_QUEUES ? QN : 0);
	}
}

Test(virtio_net, derived_mac_is_stable_local_unicast_and_differs_per_nic)
{
	uint8_t a[6], b[6], c[6], d[6];

	virtio_net_mac_derive("tap0", 0, a);
	virtio_net_mac_derive("tap0", 0, b);
	virtio_net_mac_derive("tap0", 1, c);
	virtio_net_mac_derive("tap1", 0, d);
	cr_assert_arr_eq(a, b, 6);
	cr_assert_eq(a[0] & 3, 2, "locally administered, unicast: %02x", a[0]);
	cr_assert_eq(c[0] & 3, 2);
	cr_assert(memcmp(a, c, 6) != 0 && memcmp(a, d, 6) != 0);
}

/* ---- transmit and receive --------------------------------------------------------------- */

Test(virtio_net, transmitted_frame_reaches_the_tap_intact)
{
	uint8_t got[2048], *f = gpa(TX_GPA + 0x100);
	uint32_t id, len;

	driver_init(NET_FEATURES);
	memset(gpa(TX_GPA), 0, VIRTIO_NET_HDR_BYTES);
	frame_make(f, 600, broadcast, 1);
	/* Linux's legacy layout: the header in its own descriptor, then the frame in two. */
	desc_set(1, 0, TX_GPA, VIRTIO_NET_HDR_BYTES, VRING_DESC_F_NEXT, 1);
	desc_set(1, 1, TX_GPA + 0x100, 100, VRING_DESC_F_NEXT, 2);
	desc_set(1, 2, TX_GPA + 0x100 + 100, 500, 0, 0);
	publish(1, 0, true);
	cr_assert(wait_used(1, 1), "the transmit chain was never used");
	used_elem(1, 0, &id, &len);
	cr_assert_eq(id, 0);
	cr_assert_eq(wire_recv(got, sizeof(got), WAIT_MS), 600, "no frame on the tap");
	cr_assert_arr_eq(got, f, 600);
	cr_assert_eq(stats().tx_frames, 1);
	cr_assert_eq(irq_state.level[pci_slot_gsi(1)], 1);
	cr_assert_eq(reg_in(VIRTIO_PCI_ISR, 1), VIRTIO_ISR_QUEUE);
	cr_assert_eq(irq_state.level[pci_slot_gsi(1)], 0);
}

Test(virtio_net, received_frame_lands_after_its_header_and_marks_pages_dirty)
{
	uint8_t mac[6], f[300];
	uint32_t id, len;
	uint16_t d;

	driver_init(NET_FEATURES);
	nic_mac(mac);
	memset(gpa(BUF_GPA), 0xee, 4096);
	d = rx_post(BUF_GPA + 4000, 2048); /* straddles a page boundary */
	memset(dirty, 0, RAM_BYTES / 4096 / 8);
	frame_make(f, sizeof(f), mac, 2);
	wire_send(f, sizeof(f));
	cr_assert(wait_used(0, 1), "the frame never arrived");
	used_elem(0, 0, &id, &len);
	cr_assert_eq(id, d);
	cr_assert_eq(len, VIRTIO_NET_HDR_BYTES + sizeof(f));
	for (unsigned i = 0; i < VIRTIO_NET_HDR_BYTES; i++)
		cr_assert_eq(*gpa(BUF_GPA + 4000 + i), 0, "header byte %u", i);
	cr_assert_arr_eq(gpa(BUF_GPA + 4000 + VIRTIO_NET_HDR_BYTES), f, sizeof(f));
	cr_assert(page_dirty(BUF_GPA) && page_dirty(BUF_GPA + 4096), "buffer pages not dirty");
	cr_assert(page_dirty(RING_GPA(0) + vring_used_off(QN)), "used ring not dirty");
	cr_assert_eq(stats().rx_frames, 1);
	cr_assert_eq(irq_state.level[pci_slot_gsi(1)], 1);
}

Test(virtio_net, mergeable_frame_spans_buffers_and_says_how_many)
{
	uint8_t mac[6], f[1000];
	uint32_t id, len, total = 0;

	driver_init(NET_FEATURES | F(VIRTIO_NET_F_MRG_RXBUF));
	nic_mac(mac);
	for (unsigned i = 0; i < 8; i++)
		rx_post(BUF_GPA + 256 * i, 256);
	frame_make(f, sizeof(f), mac, 3);
	wire_send(f, sizeof(f));
	cr_assert(wait_used(0, 4), "used %u, want 4", used_idx(0));
	cr_assert_eq(used_idx(0), 4, "(12 + 1000) bytes take four 256-byte buffers");
	cr_assert_eq(le16_decode(gpa(BUF_GPA + VIRTIO_NET_HDR_NUM_BUFFERS)), 4);
	for (uint16_t i = 0; i < 4; i++) {
		used_elem(0, i, &id, &len);
		cr_assert_eq(id, i);
		cr_assert_eq(len, i < 3 ? 256 : 1012 - 768);
		total += len;
	}
	cr_assert_eq(total, VIRTIO_NET_HDR_MRG_BYTES + sizeof(f));
	cr_assert_arr_eq(gpa(BUF_GPA + VIRTIO_NET_HDR_MRG_BYTES), f, 256 - 12);
	cr_assert_arr_eq(gpa(BUF_GPA + 3 * 256), f + 768 - 12, 1012 - 768);
}

Test(virtio_net, frame_waits_in_the_tap_until_the_driver_adds_a_buffer)
{
	uint8_t mac[6], f[200];

	driver_init(NET_FEATURES);
	nic_mac(mac);
	frame_make(f, sizeof(f), mac, 4);
	wire_send(f, sizeof(f));
	for (int i = 0; i < 200 && stats().rx_no_buffer == 0; i++)
		usleep(1000);
	cr_assert_geq(stats().rx_no_buffer, 1, "the device never found the ring empty");
	cr_assert_eq(used_idx(0), 0);
	rx_post(BUF_GPA, 2048);
	cr_assert(wait_used(0, 1), "the waiting frame was not delivered");
	cr_assert_arr_eq(gpa(BUF_GPA + VIRTIO_NET_HDR_BYTES), f, sizeof(f));
	cr_assert_eq(stats().rx_dropped, 0);
}

Test(virtio_net, frame_larger_than_a_whole_buffer_is_dropped_and_counted)
{
	uint8_t mac[6], big[500], small[60];

	driver_init(NET_FEATURES);
	nic_mac(mac);
	rx_post(BUF_GPA, 128);
	frame_make(big, sizeof(big), mac, 5);
	frame_make(small, sizeof(small), mac, 6);
	wire_send(big, sizeof(big));
	wire_send(small, sizeof(small));
	cr_assert(wait_used(0, 1));
	cr_assert_arr_eq(gpa(BUF_GPA + VIRTIO_NET_HDR_BYTES), small, sizeof(small));
	cr_assert_eq(stats().rx_dropped, 1);
}

/*
 * Paused, the device reads nothing from the tap and writes nothing into guest RAM, for as
 * long as the pause lasts; after resume every frame that waited is delivered.
 */
Test(virtio_net, paused_device_reads_nothing_and_dirties_no_page)
{
	uint8_t mac[6], f[100];
	struct timespec t0, t;

	driver_init(NET_FEATURES);
	nic_mac(mac);
	for (unsigned i = 0; i < 8; i++)
		rx_post(BUF_GPA + 2048 * i, 2048);
	virtio_net_pause(vn);
	memset(dirty, 0, RAM_BYTES / 4096 / 8);
	for (uint8_t i = 0; i < 5; i++) {
		frame_make(f, sizeof(f), mac, i);
		wire_send(f, sizeof(f));
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		cr_assert_eq(used_idx(0), 0, "a frame was placed while paused");
		cr_assert_eq(stats().rx_frames + stats().rx_dropped, 0, "the tap was read while paused");
		usleep(10 * 1000);
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < 300);
	for (size_t w = 0; w < RAM_BYTES / 4096 / 64; w++)
		cr_assert_eq(dirty[w], 0, "pages dirtied while paused (word %zu)", w);
	virtio_net_resume(vn);
	cr_assert(wait_used(0, 5), "frames that waited were not all delivered");
	for (uint8_t i = 0; i < 5; i++) {
		frame_make(f, sizeof(f), mac, i);
		cr_assert_arr_eq(gpa(BUF_GPA + 2048 * i + VIRTIO_NET_HDR_BYTES), f, sizeof(f));
	}
}

/* ---- EVENT_IDX ----------------------------------------------------------------------------- */

static uint16_t avail_event(unsigned q)
{
	return le16_decode(used_ring(q) + VRING_USED_RING_OFF + VRING_USED_ELEM_BYTES * QN);
}

Test(virtio_net, event_idx_interrupts_only_when_used_event_is_passed)
{
	unsigned gsi = pci_slot_gsi(1);
	uint8_t mac[6], f[80];

	driver_init(NET_FEATURES | F(VIRTIO_RING_F_EVENT_IDX));
	nic_mac(mac);
	/* used_event, after the avail ring: interrupt me once used->idx passes 4. */
	le16_encode(avail_ring(0) + VRING_AVAIL_RING_OFF + 2 * QN, 4);
	for (unsigned i = 0; i < 8; i++)
		rx_post(BUF_GPA + 2048 * i, 2048);
	for (uint16_t i = 1; i <= 6; i++) {
		frame_make(f, sizeof(f), mac, (uint8_t)i);
		wire_send(f, sizeof(f));
		cr_assert(wait_used(0, i));
		/* The first decision always interrupts; then only passing 4 (at 5) does. */
		cr_assert_eq(irq_state.level[gsi], i == 1 || i == 5, "after frame %u", i);
		reg_in(VIRTIO_PCI_ISR, 1);
	}
}

Test(virtio_net, event_idx_asks_for_kicks_with_avail_event)
{
	uint8_t got[2048], mac[6], f[80];

	driver_init(NET_FEATURES | F(VIRTIO_RING_F_EVENT_IDX));
	nic_mac(mac);
	tx_one(100, VIRTIO_NET_HDR_GSO_NONE, 1);
	cr_assert_eq(wire_recv(got, sizeof(got), WAIT_MS), 100);
	cr_assert_eq(avail_event(1), 1, "transmit: kick me for the next chain");
	/* Receive: one buffer used, then none: the device waits, asking for a kick at buffer 1. */
	rx_post(BUF_GPA, 2048);
	frame_make(f, sizeof(f), mac, 2);
	wire_send(f, sizeof(f));
	cr_assert(wait_used(0, 1));
	frame_make(f, sizeof(f), mac, 3);
	wire_send(f, sizeof(f));
	for (int i = 0; i < 200 && stats().rx_no_buffer == 0; i++)
		usleep(1000);
	cr_assert_geq(stats().rx_no_buffer, 1);
	cr_assert_eq(avail_event(0), 1, "receive: kick me when buffer 1 comes");
	rx_post(BUF_GPA + 2048, 2048);
	cr_assert(wait_used(0, 2));
	cr_assert_arr_eq(gpa(BUF_GPA + 2048 + VIRTIO_NET_HDR_BYTES), f, sizeof(f));
}

/* ---- hostile drivers --------------------------------------------------------------------- */

Test(virtio_net, receive_head_past_the_queue_is_returned_empty)
{
	uint8_t mac[6], f[100];
	uint32_t id, len;

	driver_init(NET_FEATURES);
	nic_mac(mac);
	publish(0, QN + 7, true);
	rx_post(BUF_GPA, 2048);
	frame_make(f, sizeof(f), mac, 8);
	wire_send(f, sizeof(f));
	cr_assert(wait_used(0, 1));
	used_elem(0, 0, &id, &len);
	cr_assert_eq(id, QN + 7);
	cr_assert_eq(len, 0);
	cr_assert_eq(stats().bad_chains, 1);
	/* The next frame goes to the good buffer: the device did not stop. */
	wire_send(f, sizeof(f));
	cr_assert(wait_used(0, 2));
	cr_assert_arr_eq(gpa(BUF_GPA + VIRTIO_NET_HDR_BYTES), f, sizeof(f));
}

Test(virtio_net, avail_index_jumping_past_the_queue_needs_reset)
{
	uint8_t mac[6], f[100];

	driver_init(NET_FEATURES);
	nic_mac(mac);
	__atomic_store_n((uint16_t *)(avail_ring(0) + VRING_AVAIL_IDX_OFF), (uint16_t)(QN + 5),
			 __ATOMIC_RELEASE);
	frame_make(f, sizeof(f), mac, 9);
	wire_send(f, sizeof(f));
	for (int i = 0; i < WAIT_MS && !(reg_in(VIRTIO_PCI_STATUS, 1) & VIRTIO_STATUS_NEEDS_RESET);
	     i++)
		usleep(1000);
	cr_assert(reg_in(VIRTIO_PCI_STATUS, 1) & VIRTIO_STATUS_NEEDS_RESET);
	cr_assert_eq(used_idx(0), 0);
	cr_assert_eq(reg_in(VIRTIO_PCI_ISR, 1) & VIRTIO_ISR_CONFIG, VIRTIO_ISR_CONFIG);
	/* A reset and a new driver bring it back. */
	driver_init(NET_FEATURES);
	cr_assert_eq(reg_in(VIRTIO_PCI_STATUS, 1) & VIRTIO_STATUS_NEEDS_RESET, 0);
}

Test(virtio_net, transmit_descriptor_loop_is_consumed_and_nothing_sent, .timeout = 20)
{
	uint8_t got[2048];

	driver_init(NET_FEATURES);
	desc_set(1, 0, TX_GPA, 64, VRING_DESC_F_NEXT, 1);
	desc_set(1, 1, TX_GPA, 64, VRING_DESC_F_NEXT, 0);
	publish(1, 0, true);
	cr_assert(wait_used(1, 1));
	cr_assert_eq(stats().bad_chains, 1);
	cr_assert_eq(stats().tx_dropped, 1);
	cr_assert_eq(wire_recv(got, sizeof(got), 200), -1, "a looping chain reached the tap");
}

Test(virtio_net, transmit_with_an_offload_the_driver_did_not_negotiate_is_dropped)
{
	uint8_t got[2048];

	driver_init(NET_FEATURES);
	tx_one(200, VIRTIO_NET_HDR_GSO_TCPV4, 10); /* HOST_TSO4 not acked */
	cr_assert_eq(stats().tx_dropped, 1);
	cr_assert_eq(wire_recv(got, sizeof(got), 200), -1);
}

Test(virtio_net, ring_outside_guest_ram_breaks_the_device_not_the_vmm)
{
	driver_init(NET_FEATURES);
	reg_out(VIRTIO_PCI_QUEUE_SEL, 1, 2);
	reg_out(VIRTIO_PCI_QUEUE_PFN, (uint32_t)((RAM_BYTES + 0x10000) >> 12), 4);
	reg_out(VIRTIO_PCI_QUEUE_NOTIFY, 1, 2);
	for (int i = 0; i < WAIT_MS && !(reg_in(VIRTIO_PCI_STATUS, 1) & VIRTIO_STATUS_NEEDS_RESET);
	     i++)
		usleep(1000);
	cr_assert(reg_in(VIRTIO_PCI_STATUS, 1) & VIRTIO_STATUS_NEEDS_RESET);
}

/* ---- control queue -------------------------------------------------------------------- */

/* Send one control command (class, cmd, data) and return the device's ack byte. */
static uint8_t ctrl(uint8_t cls, uint8_t cmd, const void *data, uint32_t len)
{
	uint16_t before = used_idx(2), d = desc_next[2];

	*gpa(CTRL_GPA) = cls;
	*gpa(CTRL_GPA + 1) = cmd;
	if (len)
		memcpy(gpa(CTRL_GPA + 2), data, len);
	*gpa(CTRL_GPA + 0x800) = 0xee;
	desc_set(2, d, CTRL_GPA, 2, VRING_DESC_F_NEXT, (uint16_t)(d + 1));
	if (len) {
		desc_set(2, d + 1, CTRL_GPA + 2, len, VRING_DESC_F_NEXT, (uint16_t)(d + 2));
		desc_set(2, d + 2, CTRL_GPA + 0x800, 1, VRING_DESC_F_WRITE, 0);
	} else {
		desc_set(2, d + 1, CTRL_GPA + 0x800, 1, VRING_DESC_F_WRITE, 0);
	}
	desc_next[2] = (uint16_t)(d + 3);
	publish(2, d, true);
	cr_assert(wait_used(2, (uint16_t)(before + 1)), "control command not answered");
	return *gpa(CTRL_GPA + 0x800);
}

/* Send a frame to dst and say whether it reached the guest. */
static bool delivered(const uint8_t dst[6], uint8_t seed)
{
	uint16_t before = used_idx(0);
	struct virtio_net_stats s0 = stats();
	uint8_t f[80];

	frame_make(f, sizeof(f), dst, seed);
	wire_send(f, sizeof(f));
	for (int i = 0; i < WAIT_MS; i++) {
		struct virtio_net_stats s = stats();

		if (used_idx(0) != before)
			return true;
		if (s.rx_filtered != s0.rx_filtered)
			return false;
		usleep(1000);
	}
	cr_assert_fail("frame neither delivered nor filtered");
	return false;
}

Test(virtio_net, receive_filter_follows_rx_mode_and_mac_tables)
{
	static const uint8_t other[6] = { 0x02, 0x11, 0x22, 0x33, 0x44, 0x55 };
	static const uint8_t mcast_in[6] = { 0x01, 0x00, 0x5e, 0x00, 0x00, 0x01 };
	static const uint8_t mcast_out[6] = { 0x01, 0x00, 0x5e, 0x00, 0x00, 0x02 };
	uint8_t mac[6], off = 0, on = 1, tables[4 + 4 + 6];

	driver_init(NET_FEATURES | F(VIRTIO_NET_F_CTRL_VQ) | F(VIRTIO_NET_F_CTRL_RX));
	nic_mac(mac);
	for (unsigned i = 0; i < 16; i++)
		rx_post(BUF_GPA + 2048 * i, 2048);
	cr_assert(delivered(other, 1), "a fresh device is promiscuous");
	cr_assert_eq(ctrl(VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, &off, 1), VIRTIO_NET_CTRL_OK);
	le32_encode(tables, 0);
	le32_encode(tables + 4, 1);
	memcpy(tables + 8, mcast_in, 6);
	cr_assert_eq(ctrl(VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, tables, sizeof(tables)),
		     VIRTIO_NET_CTRL_OK);
	cr_assert(!delivered(other, 2), "unicast for another MAC went through");
	cr_assert(delivered(mac, 3));
	cr_assert(delivered(broadcast, 4));
	cr_assert(delivered(mcast_in, 5));
	cr_assert(!delivered(mcast_out, 6), "multicast outside the table went through");
	cr_assert_eq(ctrl(VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_ALLMULTI, &on, 1), VIRTIO_NET_CTRL_OK);
	cr_assert(delivered(mcast_out, 7));
	/* Malformed: a table count past the data, an unknown class. Both refused, nothing changed. */
	le32_encode(tables, 9);
	cr_assert_eq(ctrl(VIRTIO_NET_CTRL_MAC, VIRTIO_NET_CTRL_MAC_TABLE_SET, tables, sizeof(tables)),
		     VIRTIO_NET_CTRL_ERR);
	cr_assert_eq(ctrl(99, 0, NULL, 0), VIRTIO_NET_CTRL_ERR);
	cr_assert(!delivered(other, 8));
}

Test(virtio_net, announce_sets_the_status_bit_until_the_driver_acks)
{
	cr_assert(!virtio_net_announce(vn), "announced without a driver");
	driver_init(NET_FEATURES | F(VIRTIO_NET_F_CTRL_VQ));
	cr_assert(!virtio_net_announce(vn), "announced without GUEST_ANNOUNCE");
	driver_init(NET_FEATURES | F(VIRTIO_NET_F_CTRL_VQ) | F(VIRTIO_NET_F_GUEST_ANNOUNCE));
	cr_assert(virtio_net_announce(vn));
	cr_assert_eq(irq_state.level[pci_slot_gsi(1)], 1);
	cr_assert_eq(reg_in(VIRTIO_PCI_ISR, 1), VIRTIO_ISR_CONFIG);
	cr_assert_eq(reg_in(VIRTIO_PCI_CONFIG + VIRTIO_NET_CFG_STATUS, 2),
		     VIRTIO_NET_S_LINK_UP | VIRTIO_NET_S_ANNOUNCE);
	cr_assert_eq(ctrl(VIRTIO_NET_CTRL_ANNOUNCE, VIRTIO_NET_CTRL_ANNOUNCE_ACK, NULL, 0),
		     VIRTIO_NET_CTRL_OK);
	cr_assert_eq(reg_in(VIRTIO_PCI_CONFIG + VIRTIO_NET_CFG_STATUS, 2), VIRTIO_NET_S_LINK_UP);
}

/* ---- state --------------------------------------------------------------------------- */

static void save(struct vs_enc *e)
{
	vs_enc_init(e);
	virtio_net_pause(vn);
	virtio_net_state_save(vn, e);
	cr_assert_eq(e->err, 0);
}

Test(virtio_net, state_moves_to_a_device_on_another_tap)
{
	static const uint8_t other[6] = { 0x02, 0x11, 0x22, 0x33, 0x44, 0x55 };
	static const uint8_t newmac[6] = { 0x02, 0xab, 0xcd, 0, 0, 7 };
	struct vs_enc e;
	uint8_t off = 0, f[100], mac[6];

	driver_init(NET_FEATURES | F(VIRTIO_NET_F_CTRL_VQ) | F(VIRTIO_NET_F_CTRL_RX));
	for (unsigned i = 0; i < 6; i++)
		reg_out(VIRTIO_PCI_CONFIG + VIRTIO_NET_CFG_MAC + i, newmac[i], 1);
	cr_assert_eq(ctrl(VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, &off, 1), VIRTIO_NET_CTRL_OK);
	rx_post(BUF_GPA, 2048);
	rx_post(BUF_GPA + 2048, 2048);
	cr_assert(delivered(newmac, 1));
	save(&e);
	cr_assert_eq(virtio_net_state_mac(e.buf, e.len, mac), 0);
	cr_assert_arr_eq(mac, newmac, 6);

	/* A new device, on a new tap, takes it over: same MAC, filter, queues and indices. */
	virtio_net_destroy(vn);
	close(tap_fd);
	close(pkt_fd);
	tap_fd = tap_make("t1", IFF_TAP | IFF_NO_PI | IFF_VNET_HDR);
	if_up("t1");
	pkt_fd = wire_open("t1");
	{
		struct virtio_net_config cfg = { .tap_fd = tap_fd };

		cr_assert_eq(virtio_net_create(&vn, pci, &mem, &chip, NULL, &cfg, err, sizeof(err)),
			     0, "%s", err);
		io_base = (uint16_t)(cfg_read(1, PCI_BAR0) & PCI_BAR_IO_MASK);
	}
	cr_assert_eq(virtio_net_state_load(vn, e.buf, e.len), 0);
	virtio_net_resume(vn);
	nic_mac(mac);
	cr_assert_arr_eq(mac, newmac, 6);
	reg_out(VIRTIO_PCI_QUEUE_SEL, 0, 2);
	cr_assert_eq(reg_in(VIRTIO_PCI_QUEUE_PFN, 4), RING_GPA(0) >> 12);
	cr_assert(!delivered(other, 2), "the filter did not move");
	frame_make(f, sizeof(f), newmac, 3);
	wire_send(f, sizeof(f));
	cr_assert(wait_used(0, 2), "the second buffer was not used");
	cr_assert_arr_eq(gpa(BUF_GPA + 2048 + VIRTIO_NET_HDR_BYTES), f, sizeof(f));
	vs_enc_free(&e);
}

Test(virtio_net, state_load_checks_everything_before_it_changes_anything)
{
	struct vs_enc e;
	uint8_t *b;

	driver_init(NET_FEATURES);
	save(&e);
	b = malloc(e.len);
	for (size_t cut = 0; cut < e.len; cut += 7)
		cr_assert_eq(virtio_net_state_load(vn, e.buf, cut), -EBADMSG, "cut at %zu", cut);
	memcpy(b, e.buf, e.len);
	le32_encode(b + 4, 0xffffffff); /* guest features beyond what the device offers */
	cr_assert_eq(virtio_net_state_load(vn, b, e.len), -EINVAL);
	memcpy(b, e.buf, e.len);
	b[4 + 4 + 1 + 1 + 2 + 1 + 6 + 2 + 4] ^= 1; /* receive queue: last avail != used */
	cr_assert_eq(virtio_net_state_load(vn, b, e.len), -EINVAL);
	memcpy(b, e.buf, e.len);
	le32_encode(b + e.len - 8, 65); /* unicast table count over 64 (both tables are empty) */
	cr_assert_eq(virtio_net_state_load(vn, b, e.len), -EBADMSG);
	cr_assert_eq(reg_in(VIRTIO_PCI_GUEST_FEATURES, 4), NET_FEATURES, "a bad load changed it");
	free(b);
	vs_enc_free(&e);
}

/* ---- taps ------------------------------------------------------------------------------ */

Test(virtio_net, tap_errors_name_the_tap_and_the_fix)
{
	char name[TAP_NAME_BYTES];
	int fd, plain;

	cr_assert_eq(tap_open("gwnosuch", &fd, err, sizeof(err)), -ENODEV);
	cr_assert(strstr(err, "tap gwnosuch does not exist"), "%s", err);
	cr_assert_eq(tap_open("t0", &fd, err, sizeof(err)), -EBUSY, "t0 is held by the device");
	cr_assert(strstr(err, "in use by another process"), "%s", err);
	cr_assert_eq(tap_open("lo", &fd, err, sizeof(err)), -EINVAL);
	cr_assert_eq(tap_open("a-name-far-too-long", &fd, err, sizeof(err)), -EINVAL);
	plain = open("/dev/null", O_RDONLY | O_CLOEXEC);
	cr_assert_eq(tap_check_fd(plain, name, err, sizeof(err)), -EINVAL);
	close(plain);
	fd = tap_make("t2", IFF_TAP | IFF_NO_PI);
	cr_assert_eq(tap_check_fd(fd, name, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "IFF_VNET_HDR"), "%s", err);
	close(fd);
	fd = tap_make("t3", IFF_TUN | IFF_NO_PI | IFF_VNET_HDR);
	cr_assert_eq(tap_check_fd(fd, name, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "tun (layer 3)"), "%s", err);
	close(fd);
	fd = tap_make("t4", IFF_TAP | IFF_NO_PI | IFF_VNET_HDR);
	cr_assert_eq(tap_check_fd(fd, name, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(name, "t4");
	close(fd);
}
