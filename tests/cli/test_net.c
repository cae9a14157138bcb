/* End-to-end: the test guest's NICs on real taps and bridges in namespaces the tests make. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <linux/if_tun.h>

#include "tests/common/gw_net.h"
#include "tests/common/gw_test.h"
#include "util/clock.h"

#define BOOT_MS 60000
#define ECHO_MS 5000
#define DGRAM 1400

static struct gw_proc VM, CMD, DST;
static struct gw_lan LA, LB;
static struct gw_netns HOSTS;
static struct gw_topo T; /* the topology of a move (gw_net.h) */
static char WORK[128];

static void setup(void)
{
	gw_proc_init(&VM);
	gw_proc_init(&CMD);
	gw_proc_init(&DST);
	snprintf(WORK, sizeof(WORK), "/tmp/gwnet.XXXXXX");
	cr_assert_not_null(mkdtemp(WORK));
}

static void teardown(void)
{
	gw_proc_cleanup(&DST);
	gw_proc_cleanup(&CMD);
	gw_proc_cleanup(&VM);
	gw_lan_destroy(&LA);
	gw_lan_destroy(&LB);
	gw_netns_destroy(&HOSTS);
	gw_topo_destroy(&T);
	gw_rm_rf(WORK);
}

TestSuite(net, .init = setup, .fini = teardown, .timeout = 300);

/* godwit run of the test guest in lan's namespace, with extra options (NULL-terminated). */
static void guest_start(const struct gw_lan *l, const char *cmdline, const char *const *extra)
{
	const char *argv[40] = { "run", "--kernel", TEST_GUEST_ELF, "--mem", "128M", "--cmdline",
				 cmdline, "--console", VM.console, "--api", VM.api };
	unsigned n = 11;

	require_kvm();
	for (; extra && *extra && n < 38; extra++)
		argv[n++] = *extra;
	argv[n] = NULL;
	gw_spawn_in(&VM, l->ns, argv);
	cr_assert(gw_wait_line(&VM, VM.console, "HB ", 2, NULL, 0, BOOT_MS),
		  "the guest did not start: %s", gw_read_file(VM.err));
}

/* The API's status reply of p. */
static void status(struct gw_proc *p, char *reply, size_t len)
{
	cr_assert(gw_api(p->api, "{\"cmd\":\"status\"}", reply, len), "status failed");
}

/* Member key of the i-th NIC object in a status reply. */
static uint64_t nic_u64(const char *reply, unsigned i, const char *key)
{
	const char *p = strstr(reply, "\"nics\":[");

	cr_assert_not_null(p, "no NICs in %s", reply);
	for (unsigned k = 0; k <= i; k++) {
		p = strchr(p + 1, '{');
		cr_assert_not_null(p, "no NIC %u in %s", i, reply);
	}
	return gw_json_u64(p, key);
}

static void nic_str(const char *reply, unsigned i, const char *key, char *out, size_t len)
{
	const char *p = strstr(reply, "\"nics\":[");

	cr_assert_not_null(p, "no NICs in %s", reply);
	for (unsigned k = 0; k <= i; k++) {
		p = strchr(p + 1, '{');
		cr_assert_not_null(p, "no NIC %u in %s", i, reply);
	}
	gw_json_str(p, key, out, len);
}

/* Wait until the guest's heartbeat reports at least n datagrams echoed. */
static void wait_guest_udp(struct gw_proc *p, uint64_t n)
{
	for (int i = 0; i < 200; i++) {
		if (gw_count_lines(p->console, "HB ") &&
		    gw_line_u64(p->console, "HB ", " udp=") >= n)
			return;
		usleep(50 * 1000);
	}
	cr_assert_fail("the guest's udp= never reached %" PRIu64 ": %s", n,
		       gw_read_file(p->console));
}

static unsigned datagrams(size_t total)
{
	return (unsigned)((total + DGRAM - 1) / DGRAM);
}

Test(net, udp_echo_carries_four_mib_both_ways_intact)
{
	const size_t total = 4u << 20;
	char reply[4096];
	unsigned ok;
	int fd;

	gw_lan_create(&LA, "e");
	gw_lan_tap(&LA, "t0", "10.90.0.1/24", NULL);
	guest_start(&LA, "mb=4 rate=4 verify=1 ip=10.90.0.2",
		    (const char *const[]){ "--net", "tap=t0", NULL });
	fd = gw_lan_socket(&LA, SOCK_DGRAM);
	ok = gw_udp_echo_run(fd, "10.90.0.2", total, DGRAM, 0x1234, ECHO_MS);
	cr_assert_eq(ok, datagrams(total), "%u of %u datagrams came back intact", ok,
		     datagrams(total));
	wait_guest_udp(&VM, ok);
	status(&VM, reply, sizeof(reply));
	cr_assert_geq(nic_u64(reply, 0, "rx_frames"), ok, "%s", reply);
	cr_assert_geq(nic_u64(reply, 0, "tx_frames"), ok, "%s", reply);
	cr_assert_eq(nic_u64(reply, 0, "bad_chains"), 0, "%s", reply);
	cr_assert_eq(gw_line_u64(VM.console, "HB ", " e="), 0, "guest memory corrupted");
	close(fd);
	gw_quit(&VM);
}

/* The lladdr the namespace's neighbour table has for ip, into mac. */
static void neigh_mac(const struct gw_lan *l, const char *ip, char *mac, size_t len)
{
	char cmd[256], line[256] = "";
	FILE *f;
	char *at;

	snprintf(cmd, sizeof(cmd), "ip -n %s neigh show %s", l->ns, ip);
	f = popen(cmd, "r");
	cr_assert_not_null(f);
	cr_assert_not_null(fgets(line, sizeof(line), f), "no neighbour entry for %s", ip);
	pclose(f);
	at = strstr(line, "lladdr ");
	cr_assert_not_null(at, "%s", line);
	snprintf(mac, len, "%.17s", at + 7);
}

Test(net, nic_survives_snapshot_and_restore_onto_another_tap_in_another_namespace)
{
	char reply[4096], mac[32], mac_b[32], seen[32], repo[256], inspect[4096];
	struct gw_hb before, after;
	uint64_t udp_before;
	int fd;

	gw_lan_create(&LA, "a");
	gw_lan_create(&LB, "b");
	gw_lan_tap(&LA, "tapa", "10.91.0.1/24", NULL);
	gw_lan_tap(&LB, "other", "10.91.0.1/24", NULL);
	guest_start(&LA, "mb=4 rate=4 ip=10.91.0.2", (const char *const[]){ "--net", "tap=tapa",
									     NULL });
	fd = gw_lan_socket(&LA, SOCK_DGRAM);
	cr_assert_eq(gw_udp_echo_run(fd, "10.91.0.2", 100 * DGRAM, DGRAM, 1, ECHO_MS), 100);
	close(fd);
	status(&VM, reply, sizeof(reply));
	nic_str(reply, 0, "mac", mac, sizeof(mac));

	snprintf(repo, sizeof(repo), "%s/repo", WORK);
	cr_assert_eq(gw_run(&CMD, (const char *const[]){ "repo", "init", "--repo", repo,
							 "--insecure-no-encryption", NULL }, 30000), 0);
	wait_guest_udp(&VM, 100);
	gw_last_hb(&VM, &before); /* the snapshot's counter is at least this */
	udp_before = gw_line_u64(VM.console, "HB ", " udp=");
	cr_assert_eq(gw_run(&CMD, (const char *const[]){ "snapshot", "--api", VM.api, "--repo",
							 repo, NULL }, 60000), 0, "%s",
		     gw_read_file(CMD.err));
	gw_quit(&VM);

	cr_assert_eq(gw_run(&CMD, (const char *const[]){ "images", "inspect", "--repo", repo,
							 NULL }, 30000), 0);
	snprintf(inspect, sizeof(inspect), "%s", gw_read_file(CMD.out));
	cr_assert(strstr(inspect, "NIC 0:") && strstr(inspect, mac), "inspect: %s", inspect);

	/* Restore in the other namespace, on a tap of another name: same MAC, same address. */
	gw_proc_cleanup(&VM);
	gw_proc_init(&VM);
	gw_spawn_in(&VM, LB.ns, (const char *const[]){ "restore", "--repo", repo, "--net",
						       "tap=other", "--console", VM.console,
						       "--api", VM.api, NULL });
	cr_assert(gw_wait_line(&VM, VM.console, "HB ", 2, NULL, 0, BOOT_MS), "restore: %s",
		  gw_read_file(VM.err));
	fd = gw_lan_socket(&LB, SOCK_DGRAM);
	cr_assert_eq(gw_udp_echo_run(fd, "10.91.0.2", 100 * DGRAM, DGRAM, 2, ECHO_MS), 100,
		     "the restored NIC does not answer");
	close(fd);
	neigh_mac(&LB, "10.91.0.2", seen, sizeof(seen));
	cr_assert_str_eq(seen, mac, "the restored guest answers from %s, not %s", seen, mac);
	status(&VM, reply, sizeof(reply));
	nic_str(reply, 0, "mac", mac_b, sizeof(mac_b));
	nic_str(reply, 0, "tap", seen, sizeof(seen));
	cr_assert_str_eq(mac_b, mac);
	cr_assert_str_eq(seen, "other");
	/* Restored elsewhere is moved: it announced itself there (RARP rounds, the guest). */
	cr_assert_not_null(strstr(reply, "\"announce\":{"), "no announcement: %s", reply);
	cr_assert_geq(gw_json_u64(strstr(reply, "\"announce\":{"), "frames"), 1, "%s", reply);
	for (int i = 0; i < 200 && gw_line_u64(VM.console, "HB ", " ann=") < 1; i++)
		usleep(50 * 1000);
	cr_assert_eq(gw_line_u64(VM.console, "HB ", " ann="), 1, "the guest did not announce");
	wait_guest_udp(&VM, udp_before + 100);
	gw_last_hb(&VM, &after);
	cr_assert_str_eq(after.id, before.id, "boot id changed");
	cr_assert_gt(after.counter, before.counter, "counter did not go on");
	cr_assert_eq(gw_count_lines(VM.console, "GUEST boot"), 0, "the guest rebooted");
	gw_quit(&VM);
}

Test(net, two_nics_on_two_bridges_both_answer)
{
	char reply[4096], mac0[32], mac1[32];
	int fd;

	gw_lan_create(&LA, "2");
	gw_lan_bridge(&LA, "br0", "10.92.0.1/24");
	gw_lan_bridge(&LA, "br1", "10.93.0.1/24");
	gw_lan_tap(&LA, "t0", NULL, "br0");
	gw_lan_tap(&LA, "t1", NULL, "br1");
	guest_start(&LA, "mb=4 rate=4 ip=10.92.0.2 ip=10.93.0.2",
		    (const char *const[]){ "--net", "tap=t0", "--net", "tap=t1", NULL });
	cr_assert(gw_wait_line(&VM, VM.console, "NET nic=1 ", 1, NULL, 0, 1000), "%s",
		  gw_read_file(VM.console));
	fd = gw_lan_socket(&LA, SOCK_DGRAM);
	cr_assert_eq(gw_udp_echo_run(fd, "10.92.0.2", 200 * DGRAM, DGRAM, 3, ECHO_MS), 200,
		     "NIC 0 behind br0");
	cr_assert_eq(gw_udp_echo_run(fd, "10.93.0.2", 200 * DGRAM, DGRAM, 4, ECHO_MS), 200,
		     "NIC 1 behind br1");
	close(fd);
	status(&VM, reply, sizeof(reply));
	nic_str(reply, 0, "mac", mac0, sizeof(mac0));
	nic_str(reply, 1, "mac", mac1, sizeof(mac1));
	cr_assert_str_neq(mac0, mac1, "both NICs have MAC %s", mac0);
	cr_assert_geq(nic_u64(reply, 0, "rx_frames"), 200);
	cr_assert_geq(nic_u64(reply, 1, "rx_frames"), 200);
	gw_quit(&VM);
}

/*
 * While the VM is paused the device reads nothing: frames wait in the tap's own queue
 * (the qdisc handed them to the tap) and the NIC's receive counter stands still; after
 * resume every one of them reaches the guest and is answered.
 */
Test(net, frames_sent_while_paused_wait_in_the_tap_and_arrive_after_resume)
{
	const unsigned n = 20;
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(7) };
	char reply[4096], mac[32];
	uint64_t rx0, sent0, udp0;
	struct timespec t0, t;
	unsigned got = 0;
	int fd;

	gw_lan_create(&LA, "p");
	gw_lan_tap(&LA, "t0", "10.94.0.1/24", NULL);
	guest_start(&LA, "mb=4 rate=4 ip=10.94.0.2", (const char *const[]){ "--net", "tap=t0",
									     NULL });
	status(&VM, reply, sizeof(reply));
	nic_str(reply, 0, "mac", mac, sizeof(mac));
	gw_lan_neigh(&LA, "t0", "10.94.0.2", mac); /* no ARP to wait for while paused */
	fd = gw_lan_socket(&LA, SOCK_DGRAM);
	cr_assert_eq(gw_udp_echo_run(fd, "10.94.0.2", 10 * DGRAM, DGRAM, 5, ECHO_MS), 10);

	cr_assert(gw_api(VM.api, "{\"cmd\":\"pause\"}", reply, sizeof(reply)) &&
		  strstr(reply, "\"paused\""), "%s", reply);
	udp0 = gw_line_u64(VM.console, "HB ", " udp=");
	status(&VM, reply, sizeof(reply));
	rx0 = nic_u64(reply, 0, "rx_frames");
	sent0 = gw_lan_qdisc_sent(&LA, "t0");
	cr_assert_eq(inet_pton(AF_INET, "10.94.0.2", &to.sin_addr), 1);
	for (unsigned i = 0; i < n; i++) {
		char msg[32];
		int len = snprintf(msg, sizeof(msg), "paused-%u", i);

		cr_assert_eq(sendto(fd, msg, (size_t)len, 0, (struct sockaddr *)&to, sizeof(to)), len);
	}
	/* Every frame is in the tap now; watch the NIC for a while: it must not take one. */
	cr_assert_geq(gw_lan_qdisc_sent(&LA, "t0"), sent0 + n, "the frames never reached the tap");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		status(&VM, reply, sizeof(reply));
		cr_assert_eq(nic_u64(reply, 0, "rx_frames"), rx0,
			     "the NIC received while paused: %s", reply);
		usleep(20 * 1000);
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < 300);
	cr_assert(strstr(reply, "\"paused\""), "%s", reply);

	cr_assert(gw_api(VM.api, "{\"cmd\":\"resume\"}", reply, sizeof(reply)));
	for (; got < n; got++) {
		char in[64];
		ssize_t len;

		len = recv(fd, in, sizeof(in) - 1, 0);
		if (len <= 0)
			break;
		in[len] = '\0';
		cr_assert(strncmp(in, "paused-", 7) == 0, "unexpected echo %s", in);
	}
	cr_assert_eq(got, n, "%u of %u frames sent while paused were answered after resume", got,
		     n);
	wait_guest_udp(&VM, udp0 + n);
	close(fd);
	gw_quit(&VM);
}

/*
 * Send a numbered datagram to ip:7 every period_us, whatever comes back (at most window
 * unanswered), until pid exits; then wait for the rest. Every one must come back once,
 * intact, with no gap in the echoes longer than 2 s. Returns how many were sent while
 * pid ran; asserts none was lost or damaged.
 */
static unsigned udp_stream_while(int fd, const char *ip, pid_t pid, int *pid_status,
				 unsigned period_us, unsigned window)
{
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(7) };
	static uint8_t seen[1u << 20];
	unsigned sent = 0, back = 0, during = 0;
	uint64_t next = clock_now_us(), last_back = next;
	bool running = true;

	cr_assert_eq(inet_pton(AF_INET, ip, &to.sin_addr), 1);
	memset(seen, 0, sizeof(seen));
	while (running || back < sent) {
		uint32_t msg[64], in[65];
		uint64_t now = clock_now_us();
		ssize_t len;

		if (running && waitpid(pid, pid_status, WNOHANG) == pid) {
			running = false;
			during = sent;
		}
		if (running && now >= next && sent - back < window && sent < sizeof(seen)) {
			msg[0] = sent;
			for (unsigned k = 1; k < 64; k++)
				msg[k] = sent * 64 + k;
			cr_assert_eq(sendto(fd, msg, sizeof(msg), 0, (struct sockaddr *)&to,
					    sizeof(to)), (ssize_t)sizeof(msg));
			sent++;
			next += period_us;
		}
		len = recv(fd, in, sizeof(in), MSG_DONTWAIT);
		if (len < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		cr_assert_lt(now - last_back, 2000000, "datagrams lost: %u sent, %u back",
				     sent, back);
			usleep(20);
			continue;
		}
		cr_assert_eq(len, (ssize_t)sizeof(msg), "bad echo: %s",
			     len < 0 ? strerror(errno) : "short");
		cr_assert(in[0] < sent && !seen[in[0]], "echo %u unexpected or repeated", in[0]);
		for (unsigned k = 1; k < 64; k++)
			cr_assert_eq(in[k], in[0] * 64 + k, "echo %u damaged", in[0]);
		seen[in[0]] = 1;
		back++;
		last_back = now;
	}
	return during;
}

/*
 * A client streaming datagrams at a steady rate (one every 100 us, whether answers come
 * or not, so some arrive while the guest is paused) through four live snapshots
 * loses none: what arrives during the pause waits in the tap and is answered after.
 */
Test(net, snapshots_while_a_udp_client_streams_lose_no_datagram)
{
	char repo[256];
	int fd;

	gw_lan_create(&LA, "s");
	gw_lan_tap(&LA, "t0", "10.95.0.1/24", NULL);
	guest_start(&LA, "mb=16 rate=8 ip=10.95.0.2", (const char *const[]){ "--net", "tap=t0",
									      NULL });
	snprintf(repo, sizeof(repo), "%s/repo", WORK);
	cr_assert_eq(gw_run(&CMD, (const char *const[]){ "repo", "init", "--repo", repo,
							 "--insecure-no-encryption", NULL }, 30000), 0);
	fd = gw_lan_socket(&LA, SOCK_DGRAM);
	cr_assert_eq(gw_udp_echo_run(fd, "10.95.0.2", DGRAM, DGRAM, 6, 2000), 1);
	for (int round = 0; round < 4; round++) {
		unsigned during;

		gw_proc_cleanup(&CMD);
		gw_proc_init(&CMD);
		gw_spawn(&CMD, (const char *const[]){ "snapshot", "--api", VM.api, "--repo", repo,
						      NULL });
		during = udp_stream_while(fd, "10.95.0.2", CMD.pid, &CMD.status, 100, 48);
		CMD.reaped = true;
		cr_assert(WIFEXITED(CMD.status) && WEXITSTATUS(CMD.status) == 0, "snapshot: %s",
			  gw_read_file(CMD.err));
		cr_assert_gt(during, 16, "only %u datagrams went out while snapshot %d ran", during,
			     round);
	}
	close(fd);
	gw_quit(&VM);
}

Test(net, tapfd_from_a_manager_carries_traffic)
{
	char arg[32];
	int tfd, fd;

	gw_lan_create(&LA, "f");
	gw_lan_tap(&LA, "tf0", "10.96.0.1/24", NULL);
	tfd = gw_lan_tap_open(&LA, "tf0", IFF_TAP | IFF_NO_PI | IFF_VNET_HDR);
	snprintf(arg, sizeof(arg), "tapfd=%d", tfd);
	guest_start(&LA, "mb=4 rate=4 ip=10.96.0.2", (const char *const[]){ "--net", arg, NULL });
	fd = gw_lan_socket(&LA, SOCK_DGRAM);
	cr_assert_eq(gw_udp_echo_run(fd, "10.96.0.2", 50 * DGRAM, DGRAM, 7, ECHO_MS), 50);
	close(fd);
	close(tfd);
	gw_quit(&VM);
}

/* godwit run with net_args fails at once: exit 1, one line holding needle, no guest ran. */
static void run_refused(const struct gw_lan *l, const char *const *net_args, const char *needle)
{
	const char *argv[20] = { "run", "--kernel", TEST_GUEST_ELF, "--mem", "64M", "--console",
				 VM.console };
	unsigned n = 7;

	for (; *net_args; net_args++)
		argv[n++] = *net_args;
	argv[n] = NULL;
	gw_proc_cleanup(&VM);
	gw_proc_init(&VM);
	gw_spawn_in(&VM, l ? l->ns : NULL, argv);
	cr_assert(gw_wait_exit(&VM, 20000), "godwit did not exit for %s", needle);
	cr_assert(WIFEXITED(VM.status) && WEXITSTATUS(VM.status) == 1, "exit status %d for %s",
		  VM.status, needle);
	gw_expect_one_error(&VM, needle);
	cr_assert_eq(access(VM.console, F_OK), -1, "a console file was left for %s", needle);
}

Test(net, bad_net_options_are_one_line_errors_and_start_no_vm)
{
	char arg[32];
	int held, plain;

	require_kvm();
	gw_lan_create(&LA, "x");
	gw_lan_tap(&LA, "t0", NULL, NULL);
	gw_lan_tap(&LA, "t1", NULL, NULL);
	run_refused(&LA, (const char *const[]){ "--net", "tap=", NULL }, "give the tap's name");
	run_refused(&LA, (const char *const[]){ "--net", "mac=02:00:00:00:00:01", NULL },
		    "no tap given");
	run_refused(&LA, (const char *const[]){ "--net", "tap=gwnosuch0", NULL },
		    "tap gwnosuch0 does not exist");
	run_refused(&LA, (const char *const[]){ "--net", "tap=lo", NULL }, "lo is not a single-queue tap");
	run_refused(&LA, (const char *const[]){ "--net", "tap=t0,mac=02:00:00:00:zz:01", NULL },
		    "is not a MAC address");
	run_refused(&LA, (const char *const[]){ "--net", "tap=t0,mac=01:00:5e:00:00:01", NULL },
		    "is a multicast address");
	run_refused(&LA, (const char *const[]){ "--net", "tap=t0", "--net", "tap=t0", NULL },
		    "that tap is already NIC 0");

	/* A tap some other process reads. */
	held = gw_lan_tap_open(&LA, "t1", IFF_TAP | IFF_NO_PI);
	run_refused(&LA, (const char *const[]){ "--net", "tap=t1", NULL },
		    "tap t1 is in use by another process");
	close(held);

	/* tapfd: not a tap at all, and a tap attached without a vnet header. */
	plain = open("/dev/null", O_RDONLY);
	snprintf(arg, sizeof(arg), "tapfd=%d", plain);
	run_refused(&LA, (const char *const[]){ "--net", arg, NULL }, "is not a tap device");
	close(plain);
	held = gw_lan_tap_open(&LA, "t1", IFF_TAP | IFF_NO_PI);
	snprintf(arg, sizeof(arg), "tapfd=%d", held);
	run_refused(&LA, (const char *const[]){ "--net", arg, NULL }, "without IFF_VNET_HDR");
	close(held);
	run_refused(&LA, (const char *const[]){ "--net", "tapfd=x", NULL }, "tapfd takes a file");
}

/* After the line naming the snapshot latest stands for, exactly one error with needle. */
static void expect_refusal_of_latest(struct gw_proc *p, const char *needle)
{
	char *e = gw_read_file(p->err), *rest;

	cr_assert_not_null(e, "no stderr");
	cr_assert(strncmp(e, "godwit: restore: snapshot ", 26) == 0 && strstr(e, ", taken "),
		  "restore latest did not name its snapshot first: %s", e);
	rest = strchr(e, '\n') + 1;
	cr_assert(strncmp(rest, "godwit: ", 8) == 0 && strchr(rest, '\n') == rest + strlen(rest) - 1,
		  "not one error line after it: %s", e);
	cr_assert(strstr(rest, needle), "'%s' not in: %s", needle, e);
	free(e);
}

Test(net, restore_refuses_a_net_count_that_differs_from_the_snapshot)
{
	char repo[256];

	gw_lan_create(&LA, "r");
	gw_lan_tap(&LA, "t0", NULL, NULL);
	gw_lan_tap(&LA, "t1", NULL, NULL);
	guest_start(&LA, "mb=4 rate=4 ip=10.97.0.2", (const char *const[]){ "--net", "tap=t0",
									     NULL });
	snprintf(repo, sizeof(repo), "%s/repo", WORK);
	cr_assert_eq(gw_run(&CMD, (const char *const[]){ "repo", "init", "--repo", repo,
							 "--insecure-no-encryption", NULL }, 30000), 0);
	cr_assert_eq(gw_run(&CMD, (const char *const[]){ "snapshot", "--api", VM.api, "--repo",
							 repo, NULL }, 60000), 0);
	gw_quit(&VM);

	gw_proc_cleanup(&CMD);
	gw_proc_init(&CMD);
	gw_spawn_in(&CMD, LA.ns, (const char *const[]){ "restore", "--repo", repo, "--net",
							"tap=t0", "--net", "tap=t1", "--console",
							CMD.console, NULL });
	cr_assert(gw_wait_exit(&CMD, 30000));
	cr_assert(WIFEXITED(CMD.status) && WEXITSTATUS(CMD.status) == 1);
	expect_refusal_of_latest(&CMD, "has 1 NIC, and 2 --net were given");
	cr_assert_eq(access(CMD.console, F_OK), -1, "a VM started");

	cr_assert_eq(gw_run(&CMD, (const char *const[]){ "restore", "--repo", repo, "--console",
							 CMD.console, NULL }, 30000), 1);
	expect_refusal_of_latest(&CMD, "has 1 NIC, and 0 --net were given");
}

/* ---- live migration: receive --net ---------------------------------------------------- */

static const char MIG_PSK_HEX[] =
	"3b8e1f6a9c2d5e0f7a4b8c1d6e9f2a5b0c3d7e1f4a8b2c5d9e0f3a6b7c1d4e8f\n";

/*
 * Two hosts (HOSTS: namespaces joined by veth, gw_test.h; LA and LB name them but do not
 * own them) with a tap at 10.89.0.1 in each: ta on host A, tb on host B; and a PSK file.
 * With bridged_b, B's tap is instead a port of bridge brb (holding B's address), as a
 * host's VM tap is: the bridge learns the guest's MAC only from frames it sees.
 */
static void two_hosts_with(char *psk, size_t len, bool bridged_b)
{
	int fd;

	gw_netns_create(&HOSTS);
	snprintf(LA.ns, sizeof(LA.ns), "%s", HOSTS.a);
	snprintf(LB.ns, sizeof(LB.ns), "%s", HOSTS.b);
	gw_lan_tap(&LA, "ta", "10.89.0.1/24", NULL);
	if (bridged_b) {
		gw_lan_bridge(&LB, "brb", "10.89.0.1/24");
		gw_lan_tap(&LB, "tb", NULL, "brb");
	} else {
		gw_lan_tap(&LB, "tb", "10.89.0.1/24", NULL);
	}
	snprintf(psk, len, "%s/psk", WORK);
	fd = open(psk, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, MIG_PSK_HEX, strlen(MIG_PSK_HEX)), (ssize_t)strlen(MIG_PSK_HEX));
	close(fd);
}

static void two_hosts(char *psk, size_t len)
{
	two_hosts_with(psk, len, false);
}

static void two_hosts_bridged(char *psk, size_t len)
{
	two_hosts_with(psk, len, true);
}

Test(net, migrated_nic_answers_on_the_destination_tap)
{
	struct gw_hb before, after;
	char psk[256], listen[64];
	int fd;

	two_hosts(psk, sizeof(psk));
	guest_start(&LA, "mb=8 rate=8 ip=10.89.0.2", (const char *const[]){ "--net", "tap=ta",
									     NULL });
	fd = gw_lan_socket(&LA, SOCK_DGRAM);
	cr_assert_eq(gw_udp_echo_run(fd, "10.89.0.2", 50 * DGRAM, DGRAM, 11, ECHO_MS), 50);
	close(fd);
	snprintf(listen, sizeof(listen), "%s:7081", HOSTS.addr_b);
	gw_spawn_in(&DST, HOSTS.b, (const char *const[]){ "receive", "--listen", listen, "--psk-file",
						      psk, "--net", "tap=tb", "--console",
						      DST.console, "--api", DST.api, NULL });
	cr_assert(gw_wait_line(&DST, DST.err, "godwit: waiting", 1, NULL, 0, 10000), "%s",
		  gw_read_file(DST.err));
	gw_last_hb(&VM, &before);
	cr_assert_eq(gw_run(&CMD, (const char *const[]){ "migrate", "--api", VM.api, "--to", listen,
							 "--psk-file", psk, NULL }, 120000), 0,
		     "migrate: %s", gw_read_file(CMD.err));
	cr_assert(gw_wait_exit(&VM, 30000), "the source kept running");
	cr_assert(gw_wait_line(&DST, DST.console, "HB ", 3, NULL, 0, 30000));
	fd = gw_lan_socket(&LB, SOCK_DGRAM);
	cr_assert_eq(gw_udp_echo_run(fd, "10.89.0.2", 50 * DGRAM, DGRAM, 12, ECHO_MS), 50,
		     "the migrated NIC does not answer on the destination's tap");
	close(fd);
	wait_guest_udp(&DST, 100);
	gw_last_hb(&DST, &after);
	cr_assert_str_eq(after.id, before.id, "the guest rebooted");
	gw_quit(&DST);
}

Test(net, receive_without_the_nics_fails_the_move_and_the_source_keeps_serving)
{
	char psk[256], listen[64], *err;
	int fd;

	two_hosts(psk, sizeof(psk));
	guest_start(&LA, "mb=8 rate=8 ip=10.89.0.2", (const char *const[]){ "--net", "tap=ta",
									     NULL });
	snprintf(listen, sizeof(listen), "%s:7082", HOSTS.addr_b);
	gw_spawn_in(&DST, HOSTS.b, (const char *const[]){ "receive", "--listen", listen, "--psk-file",
						      psk, "--console", DST.console, NULL });
	cr_assert(gw_wait_line(&DST, DST.err, "godwit: waiting", 1, NULL, 0, 10000));
	cr_assert_neq(gw_run(&CMD, (const char *const[]){ "migrate", "--api", VM.api, "--to",
							  listen, "--psk-file", psk, "--json", NULL },
			     120000),
		      0, "a VM with a NIC moved to a destination without one");
	/* Refused at the handshake: not one page went out. */
	err = gw_read_file(CMD.out);
	cr_assert(err && strstr(err, "refused the VM") && strstr(err, "the source VM has 1 NICs, "
		  "this host gave 0") && gw_json_u64(err, "page_bytes") == 0, "%s", err);
	free(err);
	cr_assert(gw_wait_exit(&DST, 30000), "the destination kept waiting");
	cr_assert(WIFEXITED(DST.status) && WEXITSTATUS(DST.status) == 1);
	err = gw_read_file(DST.err);
	cr_assert(err && strstr(err, "godwit: receive: ") && strstr(err, "give one --net per NIC"),
		  "%s", err);
	free(err);
	fd = gw_lan_socket(&LA, SOCK_DGRAM);
	cr_assert_eq(gw_udp_echo_run(fd, "10.89.0.2", 50 * DGRAM, DGRAM, 13, ECHO_MS), 50,
		     "the source stopped answering");
	close(fd);
	gw_quit(&VM);
}

/* Whether bridge br in lan's namespace has learned mac on port dev. */
static bool fdb_has(const struct gw_lan *l, const char *br, const char *dev, const char *mac)
{
	return gw_lan_sh(l, "bridge fdb show br %s dev %s | grep -qi \"^%s \"", br, dev, mac) == 0;
}

/*
 * Migrate the guest on ta (10.89.0.2) from A to B's bridged tb; the migrate command's
 * --json into json. mac gets the guest's MAC. With announce false, the destination runs
 * with the test-only switch that turns the announcement off.
 */
static void migrate_to_bridged(bool announce, char *mac, char *json, size_t len)
{
	char psk[256], listen[64], reply[4096], *out;

	two_hosts_bridged(psk, sizeof(psk));
	guest_start(&LA, "mb=8 rate=8 ip=10.89.0.2", (const char *const[]){ "--net", "tap=ta",
									     NULL });
	status(&VM, reply, sizeof(reply));
	nic_str(reply, 0, "mac", mac, 18);
	snprintf(listen, sizeof(listen), "%s:7083", HOSTS.addr_b);
	if (!announce)
		setenv("GODWIT_TEST_NO_ANNOUNCE", "1", 1);
	gw_spawn_in(&DST, HOSTS.b, (const char *const[]){ "receive", "--listen", listen, "--psk-file",
						      psk, "--net", "tap=tb", "--console",
						      DST.console, "--api", DST.api, NULL });
	unsetenv("GODWIT_TEST_NO_ANNOUNCE");
	cr_assert(gw_wait_line(&DST, DST.err, "godwit: waiting", 1, NULL, 0, 10000), "%s",
		  gw_read_file(DST.err));
	cr_assert(!fdb_has(&LB, "brb", "tb", mac), "the bridge knew the guest before the move");
	cr_assert_eq(gw_run(&CMD, (const char *const[]){ "migrate", "--api", VM.api, "--to", listen,
							 "--psk-file", psk, "--json", NULL }, 120000),
		     0, "migrate: %s", gw_read_file(CMD.err));
	cr_assert(gw_wait_exit(&VM, 30000), "the source kept running");
	out = gw_read_file(CMD.out);
	cr_assert_not_null(out);
	snprintf(json, len, "%s", out);
	free(out);
}

/* Frames the host received from tap dev (what the VMM wrote into it). */
static uint64_t tap_rx_packets(const struct gw_lan *l, const char *dev)
{
	char cmd[160], line[64] = "";
	FILE *f;

	snprintf(cmd, sizeof(cmd), "ip netns exec %s cat /sys/class/net/%s/statistics/rx_packets",
		 l->ns, dev);
	f = popen(cmd, "r");
	cr_assert_not_null(f);
	if (!fgets(line, sizeof(line), f))
		line[0] = '\0';
	pclose(f);
	return strtoull(line, NULL, 10);
}

Test(net, migration_announces_the_guest_so_the_destination_bridge_learns_it_at_once)
{
	char mac[18], json[8192], reply[4096], *p;
	unsigned rounds = 0;

	migrate_to_bridged(true, mac, json, sizeof(json));
	cr_assert_not_null(strstr(json, "\"announced\":true"), "%s", json);
	cr_assert_eq(gw_json_u64(json, "announce_frames"), 1, "%s", json);
	cr_assert_eq(gw_json_u64(json, "announce_guest"), 1, "%s", json);
	cr_assert_leq(gw_json_u64(json, "announce_ms"), gw_json_u64(json, "total_ms"));
	/* Nobody has talked to the guest on B: only the announcement can teach the bridge. */
	for (int i = 0; i < 200 && !fdb_has(&LB, "brb", "tb", mac); i++)
		usleep(50 * 1000);
	cr_assert(fdb_has(&LB, "brb", "tb", mac), "bridge brb never learned %s on tb", mac);
	/* All of QEMU's five rounds go out, one RARP per NIC each; the guest announced too. */
	for (int i = 0; i < 200 && rounds < 5; i++) {
		status(&DST, reply, sizeof(reply));
		p = strstr(reply, "\"announce\":{");
		cr_assert_not_null(p, "no announcement in %s", reply);
		rounds = (unsigned)gw_json_u64(p, "rounds");
		if (rounds < 5)
			usleep(50 * 1000);
	}
	cr_assert_eq(rounds, 5, "%s", reply);
	cr_assert_eq(gw_json_u64(p, "frames"), 5, "%s", reply);
	cr_assert_eq(gw_json_u64(p, "errors"), 0, "%s", reply);
	/* And they left the tap: the host saw 5 RARPs and the guest's own ARP at least. */
	cr_assert_geq(tap_rx_packets(&LB, "tb"), 6);
	for (int i = 0; i < 200 && gw_line_u64(DST.console, "HB ", " ann=") < 1; i++)
		usleep(50 * 1000);
	cr_assert_eq(gw_line_u64(DST.console, "HB ", " ann="), 1,
		     "the guest did not announce itself once: %s", gw_read_file(DST.console));
	/* The API asks again: a new schedule, the guest asked once more. */
	cr_assert(gw_api(DST.api, "{\"cmd\":\"announce\"}", reply, sizeof(reply)));
	cr_assert_not_null(strstr(reply, "\"ok\":true"), "%s", reply);
	cr_assert_not_null(strstr(reply, "announced nics=1 frames=1 guest=1"), "%s", reply);
	for (int i = 0; i < 200 && gw_line_u64(DST.console, "HB ", " ann=") < 2; i++)
		usleep(50 * 1000);
	cr_assert_eq(gw_line_u64(DST.console, "HB ", " ann="), 2, "%s",
		     gw_read_file(DST.console));
	gw_quit(&DST);
}

/* The negative control: without the announcement, the destination's bridge stays blind. */
Test(net, without_the_announcement_the_destination_bridge_does_not_learn_the_guest)
{
	char mac[18], json[8192], reply[4096];
	struct gw_hb hb;

	migrate_to_bridged(false, mac, json, sizeof(json));
	cr_assert_not_null(strstr(json, "\"announced\":false"), "%s", json);
	/* Three heartbeats of the running guest: time enough for any announcement. */
	cr_assert(gw_wait_line(&DST, DST.console, "HB ", 1, NULL, 0, 30000));
	gw_last_hb(&DST, &hb);
	for (int i = 0; i < 400; i++) {
		struct gw_hb now;

		gw_last_hb(&DST, &now);
		if (now.counter >= hb.counter + 3)
			break;
		usleep(50 * 1000);
	}
	cr_assert(!fdb_has(&LB, "brb", "tb", mac), "bridge brb learned %s without an announcement",
		  mac);
	cr_assert_eq(gw_line_u64(DST.console, "HB ", " ann="), 0);
	status(&DST, reply, sizeof(reply));
	cr_assert_null(strstr(reply, "\"announce\":{"), "%s", reply);
	gw_quit(&DST);
}

/*
 * A migration rolled back before its commit point (the destination holds at dest-done:
 * RAM and state in, READY not yet said), by killing the destination or by a cancel: the
 * source's guest runs on with its NIC, and a client's socket from before the move keeps
 * being answered there; nothing was announced on B.
 */
static void rollback_keeps_the_source_nic(bool cancel)
{
	char psk[256], listen[64], reply[4096], mac[18];
	struct gw_hb before, after;
	uint64_t udp;
	int fd;

	two_hosts_bridged(psk, sizeof(psk));
	guest_start(&LA, "mb=8 rate=8 ip=10.89.0.2", (const char *const[]){ "--net", "tap=ta",
									     NULL });
	status(&VM, reply, sizeof(reply));
	nic_str(reply, 0, "mac", mac, sizeof(mac));
	fd = gw_lan_socket(&LA, SOCK_DGRAM);
	cr_assert_eq(gw_udp_echo_run(fd, "10.89.0.2", 50 * DGRAM, DGRAM, 21, ECHO_MS), 50);
	snprintf(listen, sizeof(listen), "%s:7084", HOSTS.addr_b);
	setenv("GODWIT_TEST_HOLD", "dest-done", 1);
	gw_spawn_in(&DST, HOSTS.b, (const char *const[]){ "receive", "--listen", listen, "--psk-file",
						      psk, "--net", "tap=tb", "--console",
						      DST.console, "--api", DST.api, NULL });
	unsetenv("GODWIT_TEST_HOLD");
	cr_assert(gw_wait_line(&DST, DST.err, "godwit: waiting", 1, NULL, 0, 10000));
	gw_last_hb(&VM, &before);
	gw_spawn(&CMD, (const char *const[]){ "migrate", "--api", VM.api, "--to", listen,
					      "--psk-file", psk, "--json", NULL });
	cr_assert(gw_wait_line(&DST, DST.err, "godwit: test hold at dest-done", 1, NULL, 0,
			       120000), "never held: %s", gw_read_file(DST.err));
	/* Really mid-way: the source holds its guest paused for the switch. */
	status(&VM, reply, sizeof(reply));
	cr_assert_not_null(strstr(reply, "\"paused_by\":\"migration\""), "%s", reply);
	if (cancel) {
		cr_assert(gw_api(VM.api, "{\"cmd\":\"migrate-cancel\"}", reply, sizeof(reply)));
		cr_assert_not_null(strstr(reply, "\"ok\":true"), "%s", reply);
	} else {
		cr_assert_eq(kill(DST.pid, SIGKILL), 0);
		cr_assert(gw_wait_exit(&DST, 20000));
	}
	cr_assert(gw_wait_exit(&CMD, 60000), "migrate did not end");
	cr_assert(WIFEXITED(CMD.status) && WEXITSTATUS(CMD.status) != 0, "the move succeeded");
	/* The same socket is answered by the same guest, here. */
	cr_assert_eq(gw_udp_echo_run(fd, "10.89.0.2", 50 * DGRAM, DGRAM, 22, ECHO_MS), 50,
		     "the source's NIC stopped answering after the rollback");
	close(fd);
	udp = gw_line_u64(VM.console, "HB ", " udp=");
	wait_guest_udp(&VM, udp + 1);
	gw_last_hb(&VM, &after);
	cr_assert_str_eq(after.id, before.id);
	cr_assert_gt(after.counter, before.counter, "the source's guest did not go on");
	cr_assert(!fdb_has(&LB, "brb", "tb", mac), "the guest was announced on B");
	if (cancel)
		kill(DST.pid, SIGCONT); /* it finds the stream aborted and exits */
	gw_quit(&VM);
}

Test(net, a_destination_killed_before_commit_leaves_the_source_nic_serving)
{
	rollback_keeps_the_source_nic(false);
}

Test(net, a_cancelled_migration_leaves_the_source_nic_serving)
{
	rollback_keeps_the_source_nic(true);
}

/* ---- frames that reach the source after its final pause ------------------------------- */

/* Send k datagrams of DGRAM bytes to ip:7 from fd, without waiting for answers. */
static void udp_send_only(int fd, const char *ip, unsigned k)
{
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(7) };
	uint8_t out[DGRAM];

	cr_assert_eq(inet_pton(AF_INET, ip, &to.sin_addr), 1);
	for (unsigned i = 0; i < k; i++) {
		memset(out, (int)i, sizeof(out));
		cr_assert_eq(sendto(fd, out, sizeof(out), 0, (struct sockaddr *)&to, sizeof(to)),
			     (ssize_t)sizeof(out));
	}
}

#define CARRY_K 20

/*
 * The source (the VM process) stops itself at point (source-paused: the final pause
 * taken, nothing of the last round sent; source-ready: READY in, before GO) while a client
 * on A sends CARRY_K datagrams to the guest: they wait in A's tap. Then the move goes on
 * (or, with kill_dest, the destination dies first). Returns the guest's udp= before.
 */
static uint64_t frames_during_the_pause(const char *point, bool kill_dest, char *json,
					size_t len)
{
	char psk[256], listen[64], reply[4096], mac[18], want[64], *out;
	uint64_t udp;
	int fd;

	two_hosts_bridged(psk, sizeof(psk));
	setenv("GODWIT_TEST_HOLD", point, 1);
	guest_start(&LA, "mb=8 rate=8 ip=10.89.0.2", (const char *const[]){ "--net", "tap=ta",
									     NULL });
	unsetenv("GODWIT_TEST_HOLD");
	status(&VM, reply, sizeof(reply));
	nic_str(reply, 0, "mac", mac, sizeof(mac));
	gw_lan_neigh(&LA, "ta", "10.89.0.2", mac); /* no ARP may be needed while it is away */
	fd = gw_lan_socket(&LA, SOCK_DGRAM);
	cr_assert_eq(gw_udp_echo_run(fd, "10.89.0.2", 10 * DGRAM, DGRAM, 31, ECHO_MS), 10);
	wait_guest_udp(&VM, 10);
	snprintf(listen, sizeof(listen), "%s:7085", HOSTS.addr_b);
	gw_spawn_in(&DST, HOSTS.b, (const char *const[]){ "receive", "--listen", listen, "--psk-file",
						      psk, "--net", "tap=tb", "--console",
						      DST.console, "--api", DST.api, NULL });
	cr_assert(gw_wait_line(&DST, DST.err, "godwit: waiting", 1, NULL, 0, 10000));
	gw_spawn(&CMD, (const char *const[]){ "migrate", "--api", VM.api, "--to", listen,
					      "--psk-file", psk, "--json", NULL });
	snprintf(want, sizeof(want), "godwit: test hold at %s", point);
	cr_assert(gw_wait_line(&VM, VM.err, want, 1, NULL, 0, 120000), "never held: %s",
		  gw_read_file(VM.err));
	udp = gw_line_u64(VM.console, "HB ", " udp=");
	udp_send_only(fd, "10.89.0.2", CARRY_K);
	close(fd);
	if (kill_dest) {
		cr_assert_eq(kill(DST.pid, SIGKILL), 0);
		cr_assert(gw_wait_exit(&DST, 20000));
	}
	cr_assert_eq(kill(VM.pid, SIGCONT), 0);
	cr_assert(gw_wait_exit(&CMD, 120000), "migrate did not end");
	out = gw_read_file(CMD.out);
	snprintf(json, len, "%s", out ? out : "");
	free(out);
	return udp;
}

/* The guest's udp= on p's console reaches n (its echoes: what it received). */
static void expect_udp(struct gw_proc *p, uint64_t n)
{
	wait_guest_udp(p, n);
	cr_assert_eq(gw_line_u64(p->console, "HB ", " udp="), n, "%s", gw_read_file(p->console));
}

/* The move through point completes and the CARRY_K datagrams reach the destination's guest. */
static void carried_to_the_destination(const char *point)
{
	char json[8192];
	uint64_t udp = frames_during_the_pause(point, false, json, sizeof(json));

	cr_assert(WIFEXITED(CMD.status) && WEXITSTATUS(CMD.status) == 0, "%s", json);
	/* The datagrams, and whatever else the host sent that way (IPv6 neighbour talk). */
	cr_assert_geq(gw_json_u64(json, "net_frames_carried"), CARRY_K, "%s", json);
	cr_assert_eq(gw_json_u64(json, "net_frames_dropped"), 0, "%s", json);
	cr_assert(gw_wait_exit(&VM, 30000));
	expect_udp(&DST, udp + CARRY_K);
	gw_quit(&DST);
}

Test(net, datagrams_sent_during_the_final_pause_reach_the_guest_at_the_destination)
{
	carried_to_the_destination("source-paused");
}

Test(net, datagrams_sent_between_ready_and_running_reach_the_guest_at_the_destination)
{
	carried_to_the_destination("source-ready");
}

Test(net, datagrams_sent_during_a_pause_that_rolls_back_reach_the_guest_at_the_source)
{
	char json[8192];
	uint64_t udp = frames_during_the_pause("source-paused", true, json, sizeof(json));

	cr_assert(WIFEXITED(CMD.status) && WEXITSTATUS(CMD.status) == 1, "%s", json);
	expect_udp(&VM, udp + CARRY_K);
	gw_quit(&VM);
}

/* ---- the topology of a move: a client behind a bridge, two hosts ------------------------ */


/*
 * A UDP client in the client namespace: one numbered datagram at a time, each waiting up
 * to ECHO_MS for its own echo (a late echo of an earlier one is skipped), then the next.
 */
struct udp_client {
	int fd;
	pthread_t thread;
	atomic_bool stop;
	unsigned sent, answered, lost;
	unsigned lost_at[8]; /* the first datagrams lost */
};

static void *udp_client_run(void *arg)
{
	struct udp_client *c = arg;
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(7) };
	struct timeval tv = { .tv_sec = ECHO_MS / 1000 };
	uint8_t out[64], in[65];

	inet_pton(AF_INET, "10.88.0.2", &to.sin_addr);
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while (!atomic_load(&c->stop)) {
		bool ok = false;

		memset(out, 0x5a, sizeof(out));
		memcpy(out, &c->sent, sizeof(c->sent));
		if (sendto(c->fd, out, sizeof(out), 0, (struct sockaddr *)&to, sizeof(to)) < 0)
			break;
		c->sent++;
		for (;;) {
			ssize_t n = recv(c->fd, in, sizeof(in), 0);

			if (n < 0 && errno == EINTR)
				continue; /* a signal to this test process (a child ended) */
			if (n < 0)
				break; /* timed out: this one is lost */
			if (n == (ssize_t)sizeof(out) && memcmp(in, out, sizeof(out)) == 0) {
				ok = true;
				break;
			}
		}
		if (ok) {
			c->answered++;
		} else {
			if (c->lost < 8)
				c->lost_at[c->lost] = c->sent - 1;
			c->lost++;
		}
		usleep(10 * 1000);
	}
	return NULL;
}

static void udp_client_start(struct udp_client *c)
{
	memset(c, 0, sizeof(*c));
	c->fd = gw_lan_socket(&T.c, SOCK_DGRAM);
	cr_assert_eq(pthread_create(&c->thread, NULL, udp_client_run, c), 0);
}

static void udp_client_stop(struct udp_client *c)
{
	atomic_store(&c->stop, true);
	pthread_join(c->thread, NULL);
	close(c->fd);
}

/* Wait until the client has had n more answers (it is still being answered). */
static void udp_client_wait(struct udp_client *c, unsigned n)
{
	unsigned want = c->answered + n;

	for (int i = 0; i < 1000 && c->answered < want; i++)
		usleep(20 * 1000);
	cr_assert_geq(c->answered, want, "the client is no longer answered (%u sent, %u lost)",
		      c->sent, c->lost);
}

/* Move the guest from the VM process *from (serving on host ns) to a new one in *to on
 * host to_ns (addr: its link address), port. Asserts the move completed; json gets --json. */
static void move(struct gw_proc *from, struct gw_proc *to, const char *to_ns, const char *addr,
		 unsigned port, char *json, size_t len)
{
	char psk[256], listen[64], *out;
	int fd;

	snprintf(psk, sizeof(psk), "%s/psk", WORK);
	fd = open(psk, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, MIG_PSK_HEX, strlen(MIG_PSK_HEX)), (ssize_t)strlen(MIG_PSK_HEX));
	close(fd);
	snprintf(listen, sizeof(listen), "%s:%u", addr, port);
	gw_spawn_in(to, to_ns, (const char *const[]){ "receive", "--listen", listen, "--psk-file",
						  psk, "--net", "tap=vt", "--console",
						  to->console, "--api", to->api, NULL });
	cr_assert(gw_wait_line(to, to->err, "godwit: waiting", 1, NULL, 0, 10000), "%s",
		  gw_read_file(to->err));
	cr_assert_eq(gw_run(&CMD, (const char *const[]){ "migrate", "--api", from->api, "--to",
							 listen, "--psk-file", psk, "--json", NULL },
			    120000), 0, "migrate: %s", gw_read_file(CMD.err));
	cr_assert(gw_wait_exit(from, 30000), "the source kept running");
	out = gw_read_file(CMD.out);
	snprintf(json, len, "%s", out ? out : "");
	free(out);
}

Test(net, a_udp_client_behind_a_bridge_loses_nothing_while_the_guest_moves_a_to_b_and_back)
{
	char reply[4096], mac[18], json[8192];
	struct gw_hb before, after;
	struct udp_client c;

	gw_topo_create(&T, "10.88.0.1/24", "vt");
	guest_start(&T.a, "mb=8 rate=8 ip=10.88.0.2", (const char *const[]){ "--net", "tap=vt",
									      NULL });
	status(&VM, reply, sizeof(reply));
	nic_str(reply, 0, "mac", mac, sizeof(mac));
	udp_client_start(&c);
	udp_client_wait(&c, 20);
	cr_assert_eq(gw_topo_fdb_host(&T, mac), 'a');
	gw_last_hb(&VM, &before);

	move(&VM, &DST, T.hosts.b, T.hosts.addr_b, 7086, json, sizeof(json));
	cr_assert_not_null(strstr(json, "\"announced\":true"), "%s", json);
	udp_client_wait(&c, 20);
	cr_assert_eq(gw_topo_fdb_host(&T, mac), 'b', "the client bridge still sends to host A");

	gw_proc_cleanup(&VM);
	gw_proc_init(&VM);
	move(&DST, &VM, T.hosts.a, T.hosts.addr_a, 7087, json, sizeof(json));
	cr_assert_not_null(strstr(json, "\"announced\":true"), "%s", json);
	udp_client_wait(&c, 20);
	udp_client_stop(&c);
	cr_assert_eq(gw_topo_fdb_host(&T, mac), 'a', "the client bridge still sends to host B");
	cr_assert_eq(c.lost, 0, "%u of %u datagrams lost in two moves (the first: %u %u); %s",
		     c.lost, c.sent, c.lost_at[0], c.lost_at[1], json);
	gw_last_hb(&VM, &after);
	cr_assert_str_eq(after.id, before.id, "the guest rebooted");
	cr_assert_gt(after.counter, before.counter);
	wait_guest_udp(&VM, c.answered); /* all it answered, it counted, in one boot */
	gw_quit(&VM);
}

/*
 * The negative control: the same move with the announcement turned off (test-only). The
 * client bridge keeps sending to host A, where nobody reads the tap: the client, once
 * the move's tail is over, is not answered at all, until the API's announce.
 */
Test(net, without_the_announcement_a_client_behind_a_bridge_is_cut_off_after_the_move)
{
	char reply[4096], mac[18], json[8192];
	int fd;

	gw_topo_create(&T, "10.88.0.1/24", "vt");
	guest_start(&T.a, "mb=8 rate=8 ip=10.88.0.2", (const char *const[]){ "--net", "tap=vt",
									      NULL });
	status(&VM, reply, sizeof(reply));
	nic_str(reply, 0, "mac", mac, sizeof(mac));
	fd = gw_lan_socket(&T.c, SOCK_DGRAM);
	cr_assert_eq(gw_udp_echo_run(fd, "10.88.0.2", 20 * DGRAM, DGRAM, 41, ECHO_MS), 20);
	setenv("GODWIT_TEST_NO_ANNOUNCE", "1", 1);
	move(&VM, &DST, T.hosts.b, T.hosts.addr_b, 7088, json, sizeof(json));
	unsetenv("GODWIT_TEST_NO_ANNOUNCE");
	cr_assert_not_null(strstr(json, "\"announced\":false"), "%s", json);
	cr_assert_eq(gw_topo_fdb_host(&T, mac), 'a');
	cr_assert_eq(gw_udp_echo_run(fd, "10.88.0.2", 3 * DGRAM, DGRAM, 42, 2000), 0,
		     "answered without an announcement: the test proves nothing");
	cr_assert_eq(gw_topo_fdb_host(&T, mac), 'a');
	cr_assert(gw_api(DST.api, "{\"cmd\":\"announce\"}", reply, sizeof(reply)));
	cr_assert_not_null(strstr(reply, "\"ok\":true"), "%s", reply);
	if (gw_udp_echo_run(fd, "10.88.0.2", 20 * DGRAM, DGRAM, 43, ECHO_MS) != 20) {
		gw_lan_sh(&T.c, "bridge fdb show br brc >&2; ip neigh >&2; ip -s link >&2");
		gw_lan_sh(&T.b, "bridge fdb show br br0 >&2; ip -s link >&2");
		status(&DST, reply, sizeof(reply));
		fprintf(stderr, "DST: %s\n%s\n", reply, gw_read_file(DST.console));
		cr_assert_fail("the announcement did not bring the client back");
	}
	cr_assert_eq(gw_topo_fdb_host(&T, mac), 'b');
	close(fd);
	gw_quit(&DST);
}

/* --with-disk there, shared storage back: the NIC moves both ways and answers each time. */
Test(net, a_nic_moves_with_the_disk_and_back_on_shared_storage)
{
	char psk[256], listen[64], disk[256], diskb[256];
	struct gw_hb before, after;
	int fd;

	two_hosts(psk, sizeof(psk));
	snprintf(disk, sizeof(disk), "%s/disk.img", WORK);
	snprintf(diskb, sizeof(diskb), "%s/disk-b.img", WORK);
	fd = open(disk, O_RDWR | O_CREAT | O_TRUNC, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, 16 << 20), 0);
	close(fd);
	guest_start(&LA, "mb=8 rate=8 ip=10.89.0.2", (const char *const[]){ "--net", "tap=ta",
									     "--disk", disk, NULL });
	fd = gw_lan_socket(&LA, SOCK_DGRAM);
	cr_assert_eq(gw_udp_echo_run(fd, "10.89.0.2", 20 * DGRAM, DGRAM, 51, ECHO_MS), 20);
	close(fd);
	gw_last_hb(&VM, &before);

	snprintf(listen, sizeof(listen), "%s:7089", HOSTS.addr_b);
	gw_spawn_in(&DST, HOSTS.b, (const char *const[]){ "receive", "--listen", listen, "--psk-file",
						      psk, "--disk", diskb, "--net", "tap=tb",
						      "--console", DST.console, "--api", DST.api,
						      NULL });
	cr_assert(gw_wait_line(&DST, DST.err, "godwit: waiting", 1, NULL, 0, 10000));
	cr_assert_eq(gw_run(&CMD, (const char *const[]){ "migrate", "--api", VM.api, "--to", listen,
							 "--psk-file", psk, "--with-disk", "--verify",
							 NULL }, 120000), 0, "migrate: %s",
		     gw_read_file(CMD.err));
	cr_assert(gw_wait_exit(&VM, 30000));
	fd = gw_lan_socket(&LB, SOCK_DGRAM);
	cr_assert_eq(gw_udp_echo_run(fd, "10.89.0.2", 20 * DGRAM, DGRAM, 52, ECHO_MS), 20,
		     "no answer on B after the move with the disk");
	close(fd);

	gw_proc_cleanup(&VM);
	gw_proc_init(&VM);
	snprintf(listen, sizeof(listen), "%s:7090", HOSTS.addr_a);
	gw_spawn_in(&VM, HOSTS.a, (const char *const[]){ "receive", "--listen", listen, "--psk-file",
						     psk, "--disk", diskb, "--net", "tap=ta",
						     "--console", VM.console, "--api", VM.api, NULL });
	cr_assert(gw_wait_line(&VM, VM.err, "godwit: waiting", 1, NULL, 0, 10000));
	cr_assert_eq(gw_run(&CMD, (const char *const[]){ "migrate", "--api", DST.api, "--to", listen,
							 "--psk-file", psk, "--verify", NULL },
			    120000), 0, "migrate back: %s", gw_read_file(CMD.err));
	cr_assert(gw_wait_exit(&DST, 30000));
	fd = gw_lan_socket(&LA, SOCK_DGRAM);
	cr_assert_eq(gw_udp_echo_run(fd, "10.89.0.2", 20 * DGRAM, DGRAM, 53, ECHO_MS), 20,
		     "no answer on A after the move back on shared storage");
	close(fd);
	cr_assert(gw_wait_line(&VM, VM.console, "HB ", 2, NULL, 0, 30000));
	gw_last_hb(&VM, &after);
	cr_assert_str_eq(after.id, before.id, "the guest rebooted");
	cr_assert_gt(after.counter, before.counter);
	cr_assert_eq(after.errors, 0);
	gw_quit(&VM);
}
