/* A running VM's NIC: nothing reaches guest RAM while it is paused; the guest announces on request. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>

#include "tests/common/gw_test.h"
#include "tests/vmm/vm_helpers.h"
#include "vmm/vm.h"
#include "vmm/vm_priv.h"
#include "vmm/vm_state.h"
#include "vmm/virtio/virtio_net_priv.h"

#define RAM_BYTES (128ULL << 20)
#define BOOT_MS 60000
#define GUEST_IP "10.98.0.2"

static struct {
	char dir[64];
	char console[128];
	int console_fd;
	struct vm *vm;
	struct vm_dirty_consumer *dirty;
	int udp;
	char err[256];
} fx;

static void setup(void)
{
	memset(&fx, 0, sizeof(fx));
	fx.console_fd = fx.udp = -1;
	tvm_dir_make(fx.dir, sizeof(fx.dir));
	snprintf(fx.console, sizeof(fx.console), "%s/console.log", fx.dir);
}

static void teardown(void)
{
	if (fx.dirty)
		vm_dirty_unregister(fx.dirty);
	tvm_vm_gone(&fx.vm);
	if (fx.console_fd >= 0)
		close(fx.console_fd);
	if (fx.udp >= 0)
		close(fx.udp);
	tvm_dir_remove(fx.dir);
}

TestSuite(vm_net, .init = setup, .fini = teardown, .timeout = 120);

/*
 * The test guest with one NIC on tap t0 (10.98.0.1/24) in this test's own network
 * namespace, running, its UDP echo answering, and a UDP socket aimed at it.
 */
static void guest_up(void)
{
	struct vm_net_config net = { .tap = "t0", .tap_fd = -1 };
	struct vm_config cfg = {
		.kernel_path = TEST_GUEST_ELF, .cmdline = "mb=4 rate=4 ip=" GUEST_IP,
		.ram_bytes = RAM_BYTES, .ncpus = 1, .nets = &net, .nnets = 1,
	};
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(7) };
	struct timeval tv = { .tv_sec = 5 };
	char buf[16];

	require_kvm();
	if (geteuid() != 0 || access("/dev/net/tun", R_OK | W_OK) != 0)
		cr_skip_test("NIC tests need root and /dev/net/tun");
	cr_assert_eq(unshare(CLONE_NEWNET), 0, "unshare: %s", strerror(errno));
	cr_assert_eq(system("(echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6) 2>/dev/null; "
			    "ip link set lo up && ip tuntap add dev t0 mode tap && "
			    "ip addr add 10.98.0.1/24 dev t0 && ip link set t0 up"), 0);
	fx.console_fd = open(fx.console, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	cr_assert_geq(fx.console_fd, 0);
	cfg.console_fd = fx.console_fd;
	cr_assert_eq(vm_create(&fx.vm, &cfg, fx.err, sizeof(fx.err)), 0, "%s", fx.err);
	cr_assert_eq(vm_start(fx.vm), 0);
	cr_assert(tvm_wait_lines(fx.console, "HB ", 2, BOOT_MS), "no heartbeats");
	fx.udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(fx.udp, 0);
	setsockopt(fx.udp, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	inet_pton(AF_INET, GUEST_IP, &to.sin_addr);
	cr_assert_eq(connect(fx.udp, (struct sockaddr *)&to, sizeof(to)), 0);
	cr_assert_eq(send(fx.udp, "hello", 5, 0), 5);
	cr_assert_eq(recv(fx.udp, buf, sizeof(buf), 0), 5, "the guest does not echo");
}

/* OR of every region's dirty bitmap (fetched and cleared) is empty. */
static bool dirty_none(void)
{
	bool none = true;

	for (unsigned i = 0; i < vm_ram_nregions(fx.vm); i++) {
		struct vm_ram_region r;
		size_t words;
		uint64_t *bits;

		vm_ram_region(fx.vm, i, &r);
		words = (r.bytes / VM_PAGE_BYTES + 63) / 64;
		bits = calloc(words, sizeof(*bits));
		cr_assert_eq(vm_dirty_fetch(fx.dirty, i, bits), 0);
		for (size_t w = 0; w < words; w++)
			none &= bits[w] == 0;
		free(bits);
	}
	return none;
}

/* The guest's MAC into *ni, and a permanent neighbour entry for it: no ARP while paused. */
static void neigh_permanent(struct vm_nic_info *ni)
{
	char cmd[160];

	cr_assert_eq(vm_nic_info(fx.vm, 0, ni), 0);
	snprintf(cmd, sizeof(cmd), "ip neigh replace " GUEST_IP " lladdr "
		 "%02x:%02x:%02x:%02x:%02x:%02x dev t0 nud permanent", ni->mac[0], ni->mac[1],
		 ni->mac[2], ni->mac[3], ni->mac[4], ni->mac[5]);
	cr_assert_eq(system(cmd), 0);
}

static uint64_t rx_frames(void)
{
	struct vm_nic_info ni;

	cr_assert_eq(vm_nic_info(fx.vm, 0, &ni), 0);
	return ni.rx_frames;
}

/*
 * The snapshot's guarantee, through vm_pause itself: after the pause's dirty fetch, frames
 * arriving at the tap write no page at all (the dirty log proves it, with the guest's own
 * writes stopped too), and are answered after resume.
 */
Test(vm_net, frames_arriving_while_paused_write_no_guest_page)
{
	struct vm_nic_info ni;
	struct timespec t0, t;
	char buf[16];
	uint64_t rx0;

	guest_up();
	neigh_permanent(&ni);
	cr_assert_eq(vm_dirty_register(fx.vm, &fx.dirty), 0);
	cr_assert_eq(vm_pause(fx.vm), 0);
	dirty_none(); /* the pause's last fetch: from here nothing may be written */
	rx0 = rx_frames();
	for (int i = 0; i < 10; i++)
		cr_assert_eq(send(fx.udp, "paused", 6, 0), 6);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		cr_assert_eq(rx_frames(), rx0, "the NIC received while paused");
		usleep(20 * 1000);
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < 300);
	cr_assert(dirty_none(), "guest pages were written while the VM was paused");
	cr_assert_eq(vm_resume(fx.vm), 0);
	for (int i = 0; i < 10; i++)
		cr_assert_eq(recv(fx.udp, buf, sizeof(buf), 0), 6, "echo %d after resume", i);
	cr_assert_geq(rx_frames(), rx0 + 10);
	/* The control: running, the same traffic does dirty pages (the receive buffers). */
	cr_assert_eq(vm_pause(fx.vm), 0);
	dirty_none();
	cr_assert_eq(vm_resume(fx.vm), 0);
	cr_assert_eq(send(fx.udp, "running", 7, 0), 7);
	cr_assert_eq(recv(fx.udp, buf, sizeof(buf), 0), 7);
	cr_assert(!dirty_none(), "the dirty log saw nothing at all: the check above proves nothing");
}

static uint16_t link_status(void)
{
	struct virtio_net *n = fx.vm->net[0];
	uint16_t s;

	pthread_mutex_lock(&n->lock);
	s = n->link_status;
	pthread_mutex_unlock(&n->lock);
	return s;
}

Test(vm_net, announce_makes_the_guest_send_a_gratuitous_arp_and_ack)
{
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ARP) };
	struct timeval tv = { .tv_sec = 5 };
	struct vm_nic_info ni;
	uint8_t f[128], ip[4];
	int pkt;

	guest_up();
	cr_assert_eq(vm_nic_info(fx.vm, 0, &ni), 0);
	pkt = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ARP));
	cr_assert_geq(pkt, 0);
	sll.sll_ifindex = (int)if_nametoindex("t0");
	cr_assert_eq(bind(pkt, (struct sockaddr *)&sll, sizeof(sll)), 0);
	setsockopt(pkt, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	inet_pton(AF_INET, GUEST_IP, ip);
	cr_assert_eq(vm_nic_announce(fx.vm), 1);
	cr_assert(link_status() & VIRTIO_NET_S_ANNOUNCE);
	for (;;) {
		ssize_t n = recv(pkt, f, sizeof(f), 0);

		cr_assert_geq(n, 42, "no gratuitous ARP from the guest");
		/* Sender MAC and address are the guest's, the target address too: gratuitous. */
		if (memcmp(f + 6, ni.mac, 6) == 0 && memcmp(f + 14 + 8, ni.mac, 6) == 0 &&
		    memcmp(f + 14 + 14, ip, 4) == 0 && memcmp(f + 14 + 24, ip, 4) == 0)
			break;
	}
	close(pkt);
	for (int i = 0; i < 100 && (link_status() & VIRTIO_NET_S_ANNOUNCE); i++)
		usleep(50 * 1000);
	cr_assert_eq(link_status() & VIRTIO_NET_S_ANNOUNCE, 0, "the guest never acked");
}

/*
 * vm_announce: five RARP rounds out of the tap from the NIC's MAC (QEMU's frame: a
 * "request reverse" from and about that MAC, to everyone), the later ones in the
 * background, even while the guest is paused; the figures count them.
 */
Test(vm_net, announce_writes_five_rarp_rounds_from_the_nic_mac)
{
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(0x8035) };
	static const uint8_t head[] = { 0x80, 0x35, 0, 1, 8, 0, 6, 4, 0, 3 };
	struct timeval tv = { .tv_sec = 5 };
	struct vm_announce_info ai;
	struct vm_nic_info ni;
	uint8_t f[128], zero[4] = { 0 };
	int pkt;

	guest_up();
	cr_assert_eq(vm_nic_info(fx.vm, 0, &ni), 0);
	pkt = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(0x8035));
	cr_assert_geq(pkt, 0);
	sll.sll_ifindex = (int)if_nametoindex("t0");
	cr_assert_eq(bind(pkt, (struct sockaddr *)&sll, sizeof(sll)), 0);
	setsockopt(pkt, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	cr_assert_eq(vm_pause(fx.vm), 0);
	cr_assert_eq(vm_announce(fx.vm, &ai), 0);
	cr_assert_eq(ai.rounds, 1);
	cr_assert_eq(ai.frames, 1);
	cr_assert_neq(ai.first_ns, 0);
	for (int k = 0; k < VM_ANNOUNCE_ROUNDS; k++) {
		ssize_t n = recv(pkt, f, sizeof(f), 0);

		cr_assert_eq(n, 60, "RARP %d: %zd bytes", k, n);
		cr_assert(memcmp(f, "\xff\xff\xff\xff\xff\xff", 6) == 0);
		cr_assert(memcmp(f + 6, ni.mac, 6) == 0, "not from the NIC's MAC");
		cr_assert(memcmp(f + 12, head, sizeof(head)) == 0, "not a RARP request reverse");
		cr_assert(memcmp(f + 22, ni.mac, 6) == 0 && memcmp(f + 28, zero, 4) == 0);
		cr_assert(memcmp(f + 32, ni.mac, 6) == 0 && memcmp(f + 38, zero, 4) == 0);
	}
	close(pkt);
	for (int i = 0; i < 100; i++) {
		vm_announce_info_get(fx.vm, &ai);
		if (ai.rounds == VM_ANNOUNCE_ROUNDS)
			break;
		usleep(20 * 1000);
	}
	cr_assert_eq(ai.rounds, VM_ANNOUNCE_ROUNDS);
	cr_assert_eq(ai.frames, VM_ANNOUNCE_ROUNDS);
	cr_assert_eq(ai.errors, 0);
	cr_assert_geq(ai.last_ns, ai.first_ns);
	cr_assert_eq(vm_resume(fx.vm), 0);
}

/* A VM destroyed in the middle of an announcement stops its thread first. */
Test(vm_net, destroy_during_an_announcement_is_clean)
{
	guest_up();
	cr_assert_eq(vm_announce(fx.vm, NULL), 0);
	tvm_vm_gone(&fx.vm);
}

/*
 * A migration's frames, on one VM: while paused, the frames that reached the tap are
 * taken out (guest RAM untouched: the dirty log stays empty, the tap is empty after),
 * refused while running; queued back with vm_nic_carry_in they reach the guest after
 * resume, in order, before anything newer.
 */
Test(vm_net, frames_taken_while_paused_and_carried_back_in_reach_the_guest_in_order)
{
	static uint8_t frame[4][VM_NIC_FRAME_MAX + 1];
	size_t len[4];
	struct vm_nic_info ni;
	char buf[16], want[8];

	guest_up();
	neigh_permanent(&ni);
	cr_assert_eq(vm_nic_take_frame(fx.vm, 0, frame[0], sizeof(frame[0]), &len[0]), -EBUSY);
	cr_assert_eq(vm_dirty_register(fx.vm, &fx.dirty), 0);
	cr_assert_eq(vm_pause(fx.vm), 0);
	dirty_none();
	for (int i = 0; i < 3; i++) {
		snprintf(want, sizeof(want), "old %d", i);
		cr_assert_eq(send(fx.udp, want, strlen(want), 0), (ssize_t)strlen(want));
	}
	for (int i = 0; i < 3; i++) {
		int rc = 0;

		for (int k = 0; k < 100 && rc == 0; k++) {
			rc = vm_nic_take_frame(fx.vm, 0, frame[i], sizeof(frame[i]), &len[i]);
			if (rc == 0)
				usleep(10 * 1000);
		}
		cr_assert_eq(rc, 1, "frame %d was not taken", i);
	}
	cr_assert_eq(vm_nic_take_frame(fx.vm, 0, frame[3], sizeof(frame[3]), &len[3]), 0);
	cr_assert(dirty_none(), "taking frames wrote guest RAM");
	for (int i = 0; i < 3; i++)
		cr_assert_eq(vm_nic_carry_in(fx.vm, 0, frame[i], len[i]), 0);
	cr_assert_eq(vm_nic_carry_in(fx.vm, 0, frame[0], 3), -EINVAL);
	cr_assert_eq(send(fx.udp, "new", 3, 0), 3); /* waits in the tap, behind the carried */
	cr_assert_eq(vm_resume(fx.vm), 0);
	for (int i = 0; i < 3; i++) {
		ssize_t n = recv(fx.udp, buf, sizeof(buf) - 1, 0);

		snprintf(want, sizeof(want), "old %d", i);
		cr_assert_eq(n, (ssize_t)strlen(want), "echo %d", i);
		buf[n] = '\0';
		cr_assert_str_eq(buf, want, "out of order");
	}
	cr_assert_eq(recv(fx.udp, buf, sizeof(buf), 0), 3);
	cr_assert_eq(vm_nic_info(fx.vm, 0, &ni), 0);
	cr_assert_eq(ni.rx_carried, 3);
}
