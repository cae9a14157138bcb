/*
 * The lean Linux guest on godwit, booted as few times as possible: one PVH boot with 2
 * vCPUs is checked, snapshotted, restored on one host, snapshotted again and live-migrated
 * with its disk to another and back on shared storage (--verify: every page and block
 * compared before each commit); one bzImage boot with 1 vCPU proves the 64-bit boot
 * protocol path.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/common/gw_net.h"
#include "tests/common/gw_test.h"
#include "util/clock.h"

/* This host emulates guest CPL 0: a Linux boot takes 20-200 s depending on load. */
#define LINUX_BOOT_MS (400 * 1000)
#define LINUX_CMDLINE "console=ttyS0 " LINUX_GUEST_CMDLINE

static struct gw_proc VM, CMD, B;
static struct gw_netns N;
static struct gw_lan LA, LB;
static struct gw_topo T; /* the topology of a move (gw_net.h) */
static char WORK[128];

static void setup(void)
{
	gw_proc_init(&VM);
	gw_proc_init(&CMD);
	gw_proc_init(&B);
	snprintf(WORK, sizeof(WORK), "/tmp/gwlinux.XXXXXX");
	cr_assert_not_null(mkdtemp(WORK));
}

static void teardown(void)
{
	gw_proc_cleanup(&B);
	gw_proc_cleanup(&CMD);
	gw_proc_cleanup(&VM);
	gw_netns_destroy(&N);
	gw_topo_destroy(&T);
	gw_lan_destroy(&LA);
	gw_lan_destroy(&LB);
	gw_rm_rf(WORK);
}

TestSuite(linux, .init = setup, .fini = teardown, .timeout = 2400);

/* The kernel from the linux/build test; build.sh returns at once when it is cached. */
static void require_kernel(void)
{
	require_kvm();
	cr_assert_eq(system("bash '" LINUX_BUILD_SH "' '" LINUX_DIR "' > /dev/null"), 0,
		     "the lean Linux guest does not build: see " LINUX_DIR "/build.log");
}

static int godwit(const char *const *argv)
{
	return gw_run(&CMD, argv, LINUX_BOOT_MS);
}

static unsigned field(const char *line, const char *key)
{
	const char *p = strstr(line, key);

	cr_assert_not_null(p, "no %s in: %s", key, line);
	return (unsigned)strtoul(p + strlen(key), NULL, 10);
}

/* p's guest continues after `before`: same boot id, larger counter, no corrupted page. */
static void expect_continues(struct gw_proc *p, const struct gw_hb *before)
{
	char line[256];
	struct gw_hb hb;

	cr_assert(gw_wait_line(p, p->console, "HB ", 3, line, sizeof(line), 120000),
		  "Linux does not go on: %s", gw_read_file(p->err));
	cr_assert(gw_parse_hb(line, &hb));
	cr_assert_str_eq(hb.id, before->id, "boot id changed: %s", line);
	cr_assert_geq(hb.counter, before->counter, "counter went back: %s", line);
	cr_assert_eq(hb.errors, 0, "corrupted pages: %s", line);
	cr_assert_eq(gw_count_lines(p->console, "GUEST boot"), 0, "Linux rebooted");
}

Test(linux, pvh_boot_two_vcpus_disk_snapshot_restore_and_migration)
{
	char disk[256], repo[256], key[256], diska[256], diskb[256], psk[256], cmd[700];
	char line[256];
	char listen[64], *text;
	struct gw_hb at_snap;
	int fd;

	require_kernel();
	gw_netns_create(&N);
	snprintf(disk, sizeof(disk), "%s/disk.img", WORK);
	snprintf(repo, sizeof(repo), "%s/repo", WORK);
	snprintf(diska, sizeof(diska), "%s/a.img", WORK);
	snprintf(diskb, sizeof(diskb), "%s/b.img", WORK);
	snprintf(psk, sizeof(psk), "%s/psk", WORK);
	snprintf(cmd, sizeof(cmd), "truncate -s 64M '%s' && mkfs.ext4 -q -F '%s'", disk, disk);
	cr_assert_eq(system(cmd), 0, "mkfs.ext4 failed");

	/* Boot: PVH entry, 2 vCPUs, the ext4 disk mounted and written by the guest. */
	gw_spawn(&VM, (const char *const[]){ "run", "--kernel", LINUX_DIR "/vmlinux", "--initrd",
					     LINUX_DIR "/initramfs.cpio", "--mem", "256M", "--cpus",
					     "2", "--cpu-features", "pvm-test", "--disk", disk,
					     "--console", VM.console, "--api", VM.api, "--cmdline",
					     LINUX_CMDLINE " mb=16 rate=8 verify=1 fs=1", NULL });
	cr_assert(gw_wait_line(&VM, VM.console, "GUEST boot ", 1, line, sizeof(line),
			       LINUX_BOOT_MS), "Linux did not reach userspace: %s",
		  gw_read_file(VM.err));
	cr_assert_eq(field(line, "cpus="), 2, "Linux sees the wrong CPU count: %s", line);
	cr_assert(field(line, "mem=") >= 200 && field(line, "mem=") <= 256, "%s", line);
	cr_assert(gw_wait_line(&VM, VM.console, "FS ok", 1, NULL, 0, 120000), "ext4 on virtio-blk: %s",
		  gw_read_file(VM.console));
	cr_assert(gw_wait_line(&VM, VM.console, "HB ", 5, NULL, 0, 120000));

	/* The file the guest wrote reached the image. */
	snprintf(cmd, sizeof(cmd), "debugfs -R 'cat /hello.txt' '%s' > '%s/hello.out' 2>/dev/null",
		 disk, WORK);
	cr_assert_eq(system(cmd), 0);
	snprintf(cmd, sizeof(cmd), "%s/hello.out", WORK);
	text = gw_read_file(cmd);
	cr_assert(text && strlen(text) > 0, "the guest's file is not in the image");
	free(text);

	/* Snapshot it while it runs, then stop it. */
	snprintf(key, sizeof(key), "%s/repo.key", WORK);
	cr_assert_eq(godwit((const char *const[]){ "repo", "init", "--repo", repo, "--key-file",
						   key, NULL }), 0, "%s", gw_read_file(CMD.err));
	gw_last_hb(&VM, &at_snap);
	cr_assert_eq(godwit((const char *const[]){ "snapshot", "--api", VM.api, "--repo", repo,
						   "--key-file", key, NULL }), 0, "%s", gw_read_file(CMD.err));
	gw_quit(&VM);

	/* Restore on host A: Linux goes on from the snapshot, no reboot. */
	gw_proc_cleanup(&VM);
	gw_proc_init(&VM);
	gw_spawn_in(&VM, N.a, (const char *const[]){ "restore", "--repo", repo, "--key-file", key,
						     "--disk", diska,
						     "--console", VM.console, "--api", VM.api,
						     NULL });
	expect_continues(&VM, &at_snap);

	/*
	 * Snapshot it there (its tracker keeps a dirty-log consumer), then live-migrate it to
	 * host B with its disk: the migration's own view must still send every page, which
	 * --verify checks page by page and block by block before commit.
	 */
	cr_assert_eq(godwit((const char *const[]){ "snapshot", "--api", VM.api, "--repo", repo,
						   "--key-file", key, "--verify", NULL }), 0, "%s",
		     gw_read_file(CMD.err));
	fd = open(psk, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	cr_assert_eq(write(fd, "5c1e4f7a2b9d0c8e3f6a1b4d7e0c2f5a8b1d4e7f0a3c6e9b2d5f8a1c4e7b0d3f\n", 65),
		     65);
	close(fd);
	snprintf(listen, sizeof(listen), "%s:7071", N.addr_b);
	gw_spawn_in(&B, N.b, (const char *const[]){ "receive", "--listen", listen, "--psk-file", psk,
						    "--disk", diskb, "--console", B.console, "--api",
						    B.api, NULL });
	cr_assert(gw_wait_line(&B, B.err, "godwit: waiting", 1, NULL, 0, 10000));
	gw_last_hb(&VM, &at_snap);
	cr_assert_eq(godwit((const char *const[]){ "migrate", "--api", VM.api, "--to", listen,
						   "--psk-file", psk, "--with-disk", "--verify", "--json",
						   NULL }),
		     0, "migrate: %s", gw_read_file(CMD.err));
	cr_assert(gw_wait_exit(&VM, 30000), "source kept running after the migration");
	gw_last_hb(&VM, &at_snap);
	expect_continues(&B, &at_snap);

	/* And back to host A on shared storage: the same image file, no disk in the stream. */
	gw_proc_cleanup(&VM);
	gw_proc_init(&VM);
	snprintf(listen, sizeof(listen), "%s:7072", N.addr_a);
	gw_spawn_in(&VM, N.a, (const char *const[]){ "receive", "--listen", listen, "--psk-file",
						     psk, "--disk", diskb, "--console", VM.console,
						     "--api", VM.api, NULL });
	cr_assert(gw_wait_line(&VM, VM.err, "godwit: waiting", 1, NULL, 0, 10000));
	gw_last_hb(&B, &at_snap);
	cr_assert_eq(godwit((const char *const[]){ "migrate", "--api", B.api, "--to", listen,
						   "--psk-file", psk, "--verify", "--json", NULL }),
		     0, "migrate back: %s", gw_read_file(CMD.err));
	cr_assert(gw_wait_exit(&B, 30000), "host B kept running after the migration");
	gw_last_hb(&B, &at_snap);
	expect_continues(&VM, &at_snap);
	gw_quit(&VM);
	snprintf(cmd, sizeof(cmd), "cmp -s '%s' '%s'", diska, diskb);
	cr_assert_eq(system(cmd), 0, "the migrated disk differs");
}

Test(linux, bzimage_boots_to_heartbeat_with_one_vcpu)
{
	char line[256];

	require_kernel();
	gw_spawn(&VM, (const char *const[]){ "run", "--kernel", LINUX_DIR "/bzImage", "--initrd",
					     LINUX_DIR "/initramfs.cpio", "--mem", "256M", "--cpus",
					     "1", "--cpu-features", "pvm-test", "--console",
					     VM.console, "--api", VM.api, "--cmdline",
					     LINUX_CMDLINE " mb=8 rate=4", NULL });
	cr_assert(gw_wait_line(&VM, VM.console, "GUEST boot ", 1, line, sizeof(line),
			       LINUX_BOOT_MS), "bzImage did not reach userspace: %s",
		  gw_read_file(VM.err));
	cr_assert_eq(field(line, "cpus="), 1, "%s", line);
	cr_assert(gw_wait_line(&VM, VM.console, "HB ", 3, NULL, 0, 120000));
	gw_quit(&VM);
}

/* ---- the network: /init's TCP services (tests/guest/linux/init/net.c) ------------------ */

#define NET_MIB 3
#define NET_MS 120000

static void send_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		cr_assert_gt(n, 0, "send: %s", strerror(errno));
		p += n;
		len -= (size_t)n;
	}
}

/* Read until the peer closes (or max bytes); returns the count. */
static size_t recv_all(int fd, uint8_t *buf, size_t max)
{
	size_t got = 0;

	for (;;) {
		ssize_t n = recv(fd, buf + got, max - got, 0);

		cr_assert_geq(n, 0, "recv after %zu bytes: %s", got, strerror(errno));
		if (n == 0 || (got += (size_t)n) == max)
			return got;
	}
}

static void pattern(uint8_t *buf, size_t len, uint64_t seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(gw_splitmix64(seed ^ (i / 8)) >> (8 * (i % 8)));
}

/* n lines through the line echo on port 7: each comes back numbered 1, 2, ... */
static void tcp_echo_lines(const struct gw_lan *l, unsigned n)
{
	int fd = gw_lan_connect(l, "10.99.0.2", 7, NET_MS);
	char line[128], want[160], got[160];

	for (unsigned i = 0; i < n; i++) {
		size_t len = (size_t)snprintf(line, sizeof(line), "line %u from the host\n", i);
		size_t have = 0;

		send_all(fd, line, len);
		snprintf(want, sizeof(want), "%u %s", i + 1, line);
		while (have < strlen(want)) {
			ssize_t k = recv(fd, got + have, strlen(want) - have, 0);

			cr_assert_gt(k, 0, "echo %u: %s", i, strerror(errno));
			have += (size_t)k;
		}
		got[have] = '\0';
		cr_assert_str_eq(got, want);
	}
	close(fd);
}

/* NET_MIB to the sink (its answer: bytes and CRC-32), NET_MIB from the source (checked). */
static void tcp_mib_both_ways(const struct gw_lan *l)
{
	size_t len = (size_t)NET_MIB << 20;
	uint8_t *buf = malloc(len), *in = malloc(len + 1);
	char want[64], req[64];
	size_t got;
	int fd;

	cr_assert(buf && in);
	pattern(buf, len, 0x5eed);
	fd = gw_lan_connect(l, "10.99.0.2", 9, NET_MS);
	send_all(fd, buf, len);
	shutdown(fd, SHUT_WR);
	got = recv_all(fd, in, 64);
	in[got] = 0;
	snprintf(want, sizeof(want), "%zu %08x\n", len, gw_crc32(buf, len));
	cr_assert_str_eq((char *)in, want, "the guest received something else");
	close(fd);

	pattern(buf, len, 0xfeed);
	fd = gw_lan_connect(l, "10.99.0.2", 19, NET_MS);
	snprintf(req, sizeof(req), "%zu %u\n", len, 0xfeed);
	send_all(fd, req, strlen(req));
	got = recv_all(fd, in, len + 1);
	cr_assert_eq(got, len, "the guest sent %zu bytes, not %zu", got, len);
	cr_assert(memcmp(in, buf, len) == 0, "the guest's bytes arrived damaged");
	close(fd);
	free(buf);
	free(in);
}

/* Boot Linux in VM in namespace ns with one NIC (net: "tap=NAME") at 10.99.0.2/24; wait
 * until its network is up and it beats. */
static void linux_net_boot(const char *ns, const char *net)
{
	char line[256];

	gw_spawn_in(&VM, ns, (const char *const[]){ "run", "--kernel", LINUX_DIR "/vmlinux",
						    "--initrd", LINUX_DIR "/initramfs.cpio", "--mem",
						    "256M", "--cpus", "1", "--cpu-features",
						    "pvm-test", "--net", net, "--console", VM.console,
						    "--api", VM.api, "--cmdline",
						    LINUX_CMDLINE " mb=8 rate=4 ip=10.99.0.2/24", NULL });
	cr_assert(gw_wait_line(&VM, VM.console, "NET eth0 ", 1, line, sizeof(line), LINUX_BOOT_MS),
		  "no network in the guest: %s %s", gw_read_file(VM.err), gw_read_file(VM.console));
	cr_assert(strstr(line, "status=0"), "%s", line);
	cr_assert(gw_wait_line(&VM, VM.console, "HB ", 2, NULL, 0, 120000));
}

Test(linux, network_tcp_both_ways_and_across_snapshot_restore_to_another_tap)
{
	char repo[256], mac[32];
	struct gw_hb at_snap;
	uint64_t conn;

	require_kernel();
	gw_lan_create(&LA, "la");
	gw_lan_create(&LB, "lb");
	gw_lan_tap(&LA, "lt0", "10.99.0.1/24", NULL);
	gw_lan_tap(&LB, "lt1", "10.99.0.1/24", NULL);
	linux_net_boot(LA.ns, "tap=lt0");

	tcp_echo_lines(&LA, 20);
	tcp_mib_both_ways(&LA);
	cr_assert(gw_wait_line(&VM, VM.console, "HB ", gw_count_lines(VM.console, "HB ") + 1,
			       NULL, 0, 30000));
	conn = gw_line_u64(VM.console, "HB ", " conn=");
	cr_assert_eq(conn, 3, "connections accepted: %" PRIu64, conn);
	{
		char reply[4096];

		cr_assert(gw_api(VM.api, "{\"cmd\":\"status\"}", reply, sizeof(reply)));
		gw_json_str(strchr(strstr(reply, "\"nics\""), '{'), "mac", mac, sizeof(mac));
	}

	snprintf(repo, sizeof(repo), "%s/repo", WORK);
	cr_assert_eq(godwit((const char *const[]){ "repo", "init", "--repo", repo,
						   "--insecure-no-encryption", NULL }), 0);
	gw_last_hb(&VM, &at_snap);
	cr_assert_eq(godwit((const char *const[]){ "snapshot", "--api", VM.api, "--repo", repo,
						   NULL }), 0, "%s", gw_read_file(CMD.err));
	gw_quit(&VM);

	/* On another tap in another namespace: the same guest, address and MAC answer. */
	gw_proc_cleanup(&VM);
	gw_proc_init(&VM);
	gw_spawn_in(&VM, LB.ns, (const char *const[]){ "restore", "--repo", repo, "--net",
						       "tap=lt1", "--console", VM.console, "--api",
						       VM.api, NULL });
	expect_continues(&VM, &at_snap);
	tcp_echo_lines(&LB, 5);
	{
		char cmd[256], seen[256];
		FILE *f;

		snprintf(cmd, sizeof(cmd), "ip -n %s neigh show 10.99.0.2", LB.ns);
		f = popen(cmd, "r");
		cr_assert(f && fgets(seen, sizeof(seen), f));
		pclose(f);
		cr_assert(strstr(seen, mac), "the restored guest answers as %s, not %s", seen, mac);
	}
	cr_assert(gw_wait_line(&VM, VM.console, "HB ", gw_count_lines(VM.console, "HB ") + 1,
			       NULL, 0, 30000));
	cr_assert_eq(gw_line_u64(VM.console, "HB ", " conn="), conn + 1,
		     "the accept count did not go on from the snapshot");
	gw_quit(&VM);
}

/* ---- a TCP client stays connected while Linux moves A -> B -> A ------------------------- */


/*
 * A client in the client namespace on one TCP connection to the guest's line echo: a
 * numbered line about every 100 ms (this host's guest kernel is slow), each answer
 * checked to be the guest's next number for this connection and the same line: nothing
 * lost, nothing reordered, no reset. Stops at the first failure, which it keeps.
 */
struct tcp_client {
	int fd;
	pthread_t thread;
	atomic_bool stop;
	atomic_bool quiet; /* send nothing until cleared (after the current line) */
	atomic_uint answered;
	char failure[320];
	uint64_t longest_gap_ms;
};

static void *tcp_client_run(void *arg)
{
	struct tcp_client *c = arg;
	uint64_t last = clock_now_ms();
	unsigned i = 0;

	while (!atomic_load(&c->stop)) {
		char line[64], want[96], got[96];
		size_t len = (size_t)snprintf(line, sizeof(line), "line %u of the client\n", i);
		size_t have = 0;

		snprintf(want, sizeof(want), "%u %s", i + 1, line);
		if (send(c->fd, line, len, MSG_NOSIGNAL) != (ssize_t)len) {
			snprintf(c->failure, sizeof(c->failure), "send %u: %s", i, strerror(errno));
			break;
		}
		while (have < strlen(want)) {
			ssize_t k = recv(c->fd, got + have, strlen(want) - have, 0);

			if (k < 0 && errno == EINTR)
				continue;
			if (k <= 0) {
				snprintf(c->failure, sizeof(c->failure), "answer %u: %s", i,
					 k ? strerror(errno) : "connection closed");
				return NULL;
			}
			have += (size_t)k;
		}
		got[have] = '\0';
		if (strcmp(got, want) != 0) {
			snprintf(c->failure, sizeof(c->failure), "answer %u: '%s', not '%s'", i, got,
				 want);
			break;
		}
		if (clock_now_ms() - last > c->longest_gap_ms)
			c->longest_gap_ms = clock_now_ms() - last;
		last = clock_now_ms();
		atomic_fetch_add(&c->answered, 1);
		i++;
		usleep(100 * 1000);
		if (atomic_load(&c->quiet)) {
			while (atomic_load(&c->quiet) && !atomic_load(&c->stop))
				usleep(10 * 1000);
			last = clock_now_ms(); /* a gap the client chose is not a stall */
		}
	}
	return NULL;
}

/* Wait until the client has n more answers; it must not have failed. */
static void tcp_client_wait(struct tcp_client *c, unsigned n)
{
	unsigned want = atomic_load(&c->answered) + n;

	for (int i = 0; i < 6000 && atomic_load(&c->answered) < want && !c->failure[0]; i++)
		usleep(20 * 1000);
	cr_assert_eq(c->failure[0], '\0', "the client's connection broke: %s", c->failure);
	cr_assert_geq(atomic_load(&c->answered), want, "the client is no longer answered");
}

/* The guest behind VM process *from moves to a new one in *to on host ns (addr, port). */
static void linux_move(struct gw_proc *from, struct gw_proc *to, const char *ns,
		       const char *addr, unsigned port, const char *psk)
{
	char listen[64], *json;

	snprintf(listen, sizeof(listen), "%s:%u", addr, port);
	gw_spawn_in(to, ns, (const char *const[]){ "receive", "--listen", listen, "--psk-file", psk,
					       "--net", "tap=vt", "--console", to->console,
					       "--api", to->api, NULL });
	cr_assert(gw_wait_line(to, to->err, "godwit: waiting", 1, NULL, 0, 10000));
	cr_assert_eq(godwit((const char *const[]){ "migrate", "--api", from->api, "--to", listen,
						   "--psk-file", psk, "--json", NULL }),
		     0, "migrate: %s", gw_read_file(CMD.err));
	cr_assert(gw_wait_exit(from, 30000), "the source kept running");
	json = gw_read_file(CMD.out);
	cr_assert(json && strstr(json, "\"announced\":true"), "%s", json);
	fprintf(stderr, "godwit test: move to %s: downtime_ms=%" PRIu64 " net_frames_carried=%"
		PRIu64 "\n", ns, gw_json_u64(json, "downtime_ms"),
		gw_json_u64(json, "net_frames_carried"));
	free(json);
}

Test(linux, a_tcp_client_stays_connected_while_the_guest_moves_a_to_b_and_back)
{
	char psk[256], reply[4096], mac[32];
	struct tcp_client c = { .fd = -1 };
	struct gw_hb before, after;
	uint64_t conn;
	int fd;

	require_kernel();
	gw_topo_create(&T, "10.99.0.1/24", "vt");
	snprintf(psk, sizeof(psk), "%s/psk", WORK);
	fd = open(psk, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	cr_assert_eq(write(fd, "5c1e4f7a2b9d0c8e3f6a1b4d7e0c2f5a8b1d4e7f0a3c6e9b2d5f8a1c4e7b0d3f\n", 65),
		     65);
	close(fd);
	linux_net_boot(T.a.ns, "tap=vt");
	cr_assert(gw_api(VM.api, "{\"cmd\":\"status\"}", reply, sizeof(reply)));
	gw_json_str(strchr(strstr(reply, "\"nics\""), '{'), "mac", mac, sizeof(mac));

	c.fd = gw_lan_connect(&T.c, "10.99.0.2", 7, 60000);
	cr_assert_eq(pthread_create(&c.thread, NULL, tcp_client_run, &c), 0);
	tcp_client_wait(&c, 10);
	conn = gw_line_u64(VM.console, "HB ", " conn=");
	gw_last_hb(&VM, &before);

	linux_move(&VM, &B, T.hosts.b, T.hosts.addr_b, 7073, psk);
	tcp_client_wait(&c, 10);
	cr_assert_eq(gw_topo_fdb_host(&T, mac), 'b', "the client bridge still sends to host A");
	gw_proc_cleanup(&VM);
	gw_proc_init(&VM);
	/*
	 * Back with the client quiet (its connection idle, nobody speaking): only the
	 * announcement can have moved the guest's MAC back to host A's port by the time the
	 * move is done. (With lines in flight the guest's own answers would teach the bridge
	 * too, after the client's retransmission: see the UDP tests' negative control.)
	 */
	{
		unsigned n = atomic_load(&c.answered);

		atomic_store(&c.quiet, true);
		for (int i = 0; i < 500 && atomic_load(&c.answered) == n && !c.failure[0]; i++)
			usleep(20 * 1000); /* the line in flight is answered */
	}
	linux_move(&B, &VM, T.hosts.a, T.hosts.addr_a, 7074, psk);
	cr_assert_eq(gw_topo_fdb_host(&T, mac), 'a', "the client bridge still sends to host B");
	atomic_store(&c.quiet, false);
	tcp_client_wait(&c, 10);
	atomic_store(&c.stop, true);
	pthread_join(c.thread, NULL);
	cr_assert_eq(c.failure[0], '\0', "%s", c.failure);
	fprintf(stderr, "godwit test: the client's longest gap between answers: %" PRIu64 " ms "
		"over %u lines\n", c.longest_gap_ms, atomic_load(&c.answered));
	close(c.fd);

	cr_assert_eq(gw_topo_fdb_host(&T, mac), 'a', "the client bridge still sends to host B");
	cr_assert(gw_wait_line(&VM, VM.console, "HB ", gw_count_lines(VM.console, "HB ") + 1,
			       NULL, 0, 30000));
	cr_assert_eq(gw_line_u64(VM.console, "HB ", " conn="), conn,
		     "the guest accepted another connection: the client's was not kept");
	gw_last_hb(&VM, &after);
	cr_assert_str_eq(after.id, before.id, "Linux rebooted");
	cr_assert_gt(after.counter, before.counter, "the heartbeat did not go on");
	cr_assert_eq(after.errors, 0);
	gw_quit(&VM);
}
