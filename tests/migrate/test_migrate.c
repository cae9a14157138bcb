/*
 * Live migration end to end: the test guest moves between two hosts (network namespaces
 * joined by veth) over TLS and keeps running; every failure leaves the source running.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "tests/common/gw_test.h"

#define BOOT_MS 60000
#define MIG_MS 120000

static struct gw_netns N;
static struct gw_proc SRC, DST, MIG;
static char PSK[256], PORT[16] = "7070";

static void write_psk(const char *path, const char *hex)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, hex, strlen(hex)), (ssize_t)strlen(hex));
	close(fd);
}

static void setup(void)
{
	gw_proc_init(&SRC);
	gw_proc_init(&DST);
	gw_proc_init(&MIG);
	snprintf(PSK, sizeof(PSK), "%s/psk", SRC.dir);
	write_psk(PSK, "8f2a6c1e9b7d4f3a0c5e8b1d6f2a9c4e7b0d3f6a1c8e5b2d9f4a7c0e3b6d1f8a\n");
}

static void teardown(void)
{
	gw_proc_cleanup(&MIG);
	gw_proc_cleanup(&DST);
	gw_proc_cleanup(&SRC);
	gw_netns_destroy(&N);
}

TestSuite(migrate, .init = setup, .fini = teardown, .timeout = 300);

static bool SRC_RING; /* track dirty pages with KVM's dirty ring */

static void start_source(const char *ns, const char *disk, const char *cmdline)
{
	const char *argv[24] = { "run", "--kernel", TEST_GUEST_ELF, "--mem", "256M", "--cpus", "2",
				 "--cmdline", cmdline, "--console", SRC.console, "--api", SRC.api };
	unsigned n = 13;

	if (SRC_RING)
		argv[n++] = "--dirty-ring";
	if (disk) {
		argv[n++] = "--disk";
		argv[n++] = disk;
	}
	argv[n] = NULL;
	gw_spawn_in(&SRC, ns, argv);
	cr_assert(gw_wait_line(&SRC, SRC.console, "HB ", 3, NULL, 0, BOOT_MS),
		  "source guest did not boot: %s", gw_read_file(SRC.err));
}

/* Start `godwit receive` on addr:PORT with auth options (NULL-terminated). */
static void start_dest(const char *ns, const char *addr, const char *disk,
		       const char *const *auth)
{
	char listen[64];
	const char *argv[24] = { "receive", "--listen", listen, "--console", DST.console, "--api",
				 DST.api };
	unsigned n = 7;

	snprintf(listen, sizeof(listen), "%s:%s", addr, PORT);
	for (; auth && *auth; auth++)
		argv[n++] = *auth;
	if (disk) {
		argv[n++] = "--disk";
		argv[n++] = disk;
	}
	argv[n] = NULL;
	gw_spawn_in(&DST, ns, argv);
	cr_assert(gw_wait_line(&DST, DST.err, "godwit: waiting for a VM", 1, NULL, 0, 10000),
		  "receive did not listen: %s", gw_read_file(DST.err));
}

/* Run `godwit migrate` against the source's API; returns its exit status. */
static int run_migrate(const char *addr, const char *const *extra)
{
	char to[64];
	const char *argv[24] = { "migrate", "--api", SRC.api, "--to", to, "--json" };
	unsigned n = 6;

	snprintf(to, sizeof(to), "%s:%s", addr, PORT);
	for (; extra && *extra; extra++)
		argv[n++] = *extra;
	argv[n] = NULL;
	return gw_run(&MIG, argv, MIG_MS);
}

/* The guest continues at the destination: same boot id, larger counter, no corruption. */
static void expect_continued(const struct gw_hb *before)
{
	char line[256];
	struct gw_hb hb;

	cr_assert(gw_wait_line(&DST, DST.console, "HB ", 5, line, sizeof(line), 30000),
		  "no heartbeats at the destination: %s", gw_read_file(DST.err));
	cr_assert(gw_parse_hb(line, &hb));
	cr_assert_str_eq(hb.id, before->id, "boot id changed (guest rebooted?): %s", line);
	cr_assert_gt(hb.counter, before->counter, "counter went back: %s", line);
	cr_assert_eq(hb.errors, 0, "guest found corrupted pages after migration: %s", line);
	cr_assert_eq(gw_count_lines(DST.console, "GUEST boot"), 0, "the guest booted again");
}

/* The source is still running its guest: heartbeats keep coming. */
static void expect_source_running(void)
{
	unsigned n = gw_count_lines(SRC.console, "HB ");
	char reply[512];

	cr_assert(gw_wait_line(&SRC, SRC.console, "HB ", n + 3, NULL, 0, 10000),
		  "source guest stopped running; stderr: %s", gw_read_file(SRC.err));
	cr_assert(gw_api(SRC.api, "{\"cmd\":\"status\"}", reply, sizeof(reply)));
	cr_assert(strstr(reply, "\"state\":\"running\""), "%s", reply);
}

static void expect_dest_failed_without_guest(void)
{
	cr_assert(gw_wait_exit(&DST, 30000), "receive kept running after a failed migration");
	cr_assert(WIFEXITED(DST.status) && WEXITSTATUS(DST.status) != 0, "receive status %d",
		  DST.status);
	cr_assert_eq(gw_count_lines(DST.console, "HB "), 0, "the destination ran the guest");
}

Test(migrate, test_guest_moves_between_two_hosts_over_tls_and_keeps_running)
{
	char disk[256];
	struct gw_hb before;
	char *json;

	require_kvm();
	gw_netns_create(&N);
	snprintf(disk, sizeof(disk), "%s/shared.img", SRC.dir);
	cr_assert_eq(truncate(disk, 0), -1);
	{
		int fd = open(disk, O_RDWR | O_CREAT, 0644);

		cr_assert_eq(ftruncate(fd, 32 << 20), 0);
		close(fd);
	}
	start_dest(N.b, N.addr_b, disk, (const char *const[]){ "--psk-file", PSK, NULL });
	start_source(N.a, disk, "mb=64 rate=64 verify=1 disk=w:0:256:9");
	cr_assert_eq(run_migrate(N.addr_b, (const char *const[]){ "--psk-file", PSK, NULL }), 0,
		     "migrate failed: %s", gw_read_file(MIG.err));
	cr_assert(gw_wait_exit(&SRC, 20000), "source still running after migrating away");
	cr_assert(WIFEXITED(SRC.status) && WEXITSTATUS(SRC.status) == 0, "source status %d",
		  SRC.status);
	gw_last_hb(&SRC, &before);
	expect_continued(&before);
	json = gw_read_file(MIG.out);
	cr_assert(strstr(json, "\"state\":\"completed\"") && strstr(json, "\"downtime_ms\":"),
		  "%s", json);
	free(json);
	gw_quit(&DST);
}

/*
 * Over plaintext the frames carry CRC32C, pages are staged, and the pseudo-random working
 * set does not compress, so it goes as RAW chunks; the guest checks every page it wrote.
 */
Test(migrate, plaintext_migration_sends_incompressible_pages_raw_and_the_guest_verifies_them)
{
	struct gw_hb before;
	char *json;

	require_kvm();
	gw_netns_create(&N);
	start_dest(N.b, N.addr_b, NULL, (const char *const[]){ "--insecure-plaintext", NULL });
	start_source(N.a, NULL, "mb=96 rate=64 verify=1");
	cr_assert_eq(run_migrate(N.addr_b, (const char *const[]){ "--insecure-plaintext", NULL }),
		     0, "migrate failed: %s", gw_read_file(MIG.err));
	cr_assert(gw_wait_exit(&SRC, 20000), "source still running after migrating away");
	gw_last_hb(&SRC, &before);
	expect_continued(&before);
	json = gw_read_file(MIG.out);
	cr_assert(strstr(json, "\"state\":\"completed\""), "%s", json);
	/* Most of the 96 MiB working set is sent raw; a probe window or two is compressed. */
	cr_assert_geq(gw_json_u64(json, "raw_bytes"), 48ull << 20, "%s", json);
	cr_assert_leq(gw_json_u64(json, "raw_bytes"), gw_json_u64(json, "wire_bytes"), "%s", json);
	/* The downtime's fixed part was measured, and total_ms ends when the guest runs. */
	cr_assert_leq(gw_json_u64(json, "fixed_cost_ms"), gw_json_u64(json, "predicted_downtime_ms"),
		      "%s", json);
	cr_assert_geq(gw_json_u64(json, "total_ms"), gw_json_u64(json, "downtime_ms"), "%s", json);
	free(json);
	gw_quit(&DST);
}

/*
 * --compress off: every page goes as it is (RAW chunks), none through zstd, and the guest
 * still verifies every page. A level zstd has not is refused in one line first, with the
 * source untouched.
 */
Test(migrate, compress_off_sends_every_page_as_it_is_and_a_bad_level_is_refused)
{
	struct gw_hb before;
	char *json;

	require_kvm();
	gw_netns_create(&N);
	start_dest(N.b, N.addr_b, NULL, (const char *const[]){ "--psk-file", PSK, NULL });
	start_source(N.a, NULL, "mb=32 rate=16 verify=1");
	cr_assert_neq(run_migrate(N.addr_b, (const char *const[]){ "--psk-file", PSK,
								  "--compress", "20", NULL }), 0);
	gw_expect_one_error(&MIG, "--compress '20'");
	expect_source_running();
	cr_assert_eq(run_migrate(N.addr_b, (const char *const[]){ "--psk-file", PSK,
								 "--compress", "off", NULL }), 0,
		     "migrate failed: %s", gw_read_file(MIG.err));
	cr_assert(gw_wait_exit(&SRC, 20000), "source still running after migrating away");
	gw_last_hb(&SRC, &before);
	expect_continued(&before);
	json = gw_read_file(MIG.out);
	cr_assert(strstr(json, "\"state\":\"completed\""), "%s", json);
	/* Compressed, a 4 MiB probe of the working set at least would not count as raw. */
	cr_assert_geq(gw_json_u64(json, "raw_bytes"), gw_json_u64(json, "page_bytes"), "%s", json);
	free(json);
	gw_quit(&DST);
}

Test(migrate, a_guest_tracked_with_the_dirty_ring_moves_and_keeps_running)
{
	struct gw_hb before;

	require_kvm();
	gw_netns_create(&N);
	SRC_RING = true;
	start_dest(N.b, N.addr_b, NULL, (const char *const[]){ "--psk-file", PSK, NULL });
	start_source(N.a, NULL, "mb=64 rate=64 verify=1");
	cr_assert_eq(run_migrate(N.addr_b, (const char *const[]){ "--psk-file", PSK, NULL }), 0,
		     "migrate failed: %s", gw_read_file(MIG.err));
	cr_assert(gw_wait_exit(&SRC, 20000));
	gw_last_hb(&SRC, &before);
	expect_continued(&before);
	gw_quit(&DST);
}

Test(migrate, disk_moves_with_the_vm_when_asked)
{
	char src_disk[256], dst_disk[256], cmd[600];
	struct gw_hb before;

	require_kvm();
	gw_netns_create(&N);
	snprintf(src_disk, sizeof(src_disk), "%s/src.img", SRC.dir);
	snprintf(dst_disk, sizeof(dst_disk), "%s/dst.img", DST.dir);
	{
		int fd = open(src_disk, O_RDWR | O_CREAT, 0644);

		cr_assert_eq(ftruncate(fd, 48 << 20), 0);
		close(fd);
	}
	start_dest(N.b, N.addr_b, dst_disk, (const char *const[]){ "--psk-file", PSK, NULL });
	start_source(N.a, src_disk, "mb=32 rate=32 disk=w:100:2000:77 disk=w:60000:500:78");
	cr_assert_eq(run_migrate(N.addr_b, (const char *const[]){ "--psk-file", PSK, "--with-disk",
							      NULL }), 0,
		     "migrate failed: %s", gw_read_file(MIG.err));
	cr_assert(gw_wait_exit(&SRC, 20000));
	gw_last_hb(&SRC, &before);
	expect_continued(&before);
	gw_quit(&DST);
	snprintf(cmd, sizeof(cmd), "cmp -s '%s' '%s'", src_disk, dst_disk);
	cr_assert_eq(system(cmd), 0, "the destination's disk differs from the source's");
}

Test(migrate, wrong_psk_is_refused_and_the_source_keeps_running)
{
	char other[256];

	require_kvm();
	gw_netns_create(&N);
	snprintf(other, sizeof(other), "%s/other.psk", DST.dir);
	write_psk(other, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde0\n");
	start_dest(N.b, N.addr_b, NULL, (const char *const[]){ "--psk-file", other, NULL });
	start_source(N.a, NULL, "mb=16 rate=16");
	cr_assert_neq(run_migrate(N.addr_b, (const char *const[]){ "--psk-file", PSK, NULL }), 0);
	expect_source_running();
	expect_dest_failed_without_guest();
	gw_quit(&SRC);
}

/* A throwaway CA and a certificate it signs for name, in dir. */
static void make_cert(const char *dir, const char *ca, const char *name)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && { [ -f %s.key ] || openssl req -x509 -newkey ec -pkeyopt "
		 "ec_paramgen_curve:P-256 -nodes -keyout %s.key -out %s.crt -days 2 -subj /CN=%s "
		 ">/dev/null 2>&1; } && openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
		 "-nodes -keyout %s.key -out %s.csr -subj /CN=%s >/dev/null 2>&1 && openssl x509 "
		 "-req -in %s.csr -CA %s.crt -CAkey %s.key -CAcreateserial -out %s.crt -days 2 "
		 ">/dev/null 2>&1",
		 dir, ca, ca, ca, ca, name, name, name, name, ca, ca, name);
	cr_assert_eq(system(cmd), 0, "openssl could not make test certificates");
}

Test(migrate, certificates_from_another_ca_are_refused_and_the_source_keeps_running)
{
	char d[160], ca1[256], ca2[256], crt[256], key[256], dcrt[256], dkey[256];

	require_kvm();
	gw_netns_create(&N);
	snprintf(d, sizeof(d), "%s", DST.dir);
	make_cert(d, "ca1", "src");
	make_cert(d, "ca2", "dst");
	snprintf(ca1, sizeof(ca1), "%s/ca1.crt", d);
	snprintf(ca2, sizeof(ca2), "%s/ca2.crt", d);
	snprintf(crt, sizeof(crt), "%s/src.crt", d);
	snprintf(key, sizeof(key), "%s/src.key", d);
	snprintf(dcrt, sizeof(dcrt), "%s/dst.crt", d);
	snprintf(dkey, sizeof(dkey), "%s/dst.key", d);
	/* The destination trusts only ca2; the source presents a ca1 certificate. */
	start_dest(N.b, N.addr_b, NULL, (const char *const[]){ "--tls-cert", dcrt, "--tls-key",
							     dkey, "--tls-ca", ca2, NULL });
	start_source(N.a, NULL, "mb=16 rate=16");
	cr_assert_neq(run_migrate(N.addr_b, (const char *const[]){ "--tls-cert", crt, "--tls-key",
								 key, "--tls-ca", ca2, NULL }), 0);
	expect_source_running();
	expect_dest_failed_without_guest();
	gw_quit(&SRC);
}

Test(migrate, killed_destination_leaves_the_source_running_and_a_retry_succeeds)
{
	struct gw_hb before;

	require_kvm();
	gw_netns_create(&N);
	start_dest(N.b, N.addr_b, NULL, (const char *const[]){ "--psk-file", PSK, NULL });
	start_source(N.a, NULL, "mb=128 rate=32");
	{
		/* Slow the copy so the kill lands mid-stream. */
		const char *argv[] = { "migrate", "--api", SRC.api, "--to", NULL, "--psk-file", PSK,
				       "--max-bandwidth", "8M", NULL };
		char to[64];

		snprintf(to, sizeof(to), "%s:%s", N.addr_b, PORT);
		argv[4] = to;
		gw_spawn(&MIG, argv);
	}
	cr_assert(gw_wait_line(&DST, DST.console, "", 0, NULL, 0, 1500) || true);
	usleep(1500000);
	kill(DST.pid, SIGKILL);
	cr_assert(gw_wait_exit(&MIG, MIG_MS));
	cr_assert_neq(WEXITSTATUS(MIG.status), 0, "migrate reported success to a dead host");
	expect_source_running();
	/* Second attempt, to a fresh receiver. */
	gw_proc_cleanup(&DST);
	gw_proc_init(&DST);
	start_dest(N.b, N.addr_b, NULL, (const char *const[]){ "--psk-file", PSK, NULL });
	cr_assert_eq(run_migrate(N.addr_b, (const char *const[]){ "--psk-file", PSK, NULL }), 0,
		     "retry failed: %s", gw_read_file(MIG.err));
	cr_assert(gw_wait_exit(&SRC, 20000));
	gw_last_hb(&SRC, &before);
	expect_continued(&before);
	gw_quit(&DST);
}

Test(migrate, cancel_through_the_api_keeps_the_source_running)
{
	char reply[512];

	require_kvm();
	gw_netns_create(&N);
	start_dest(N.b, N.addr_b, NULL, (const char *const[]){ "--psk-file", PSK, NULL });
	start_source(N.a, NULL, "mb=128 rate=32");
	{
		const char *argv[] = { "migrate", "--api", SRC.api, "--to", NULL, "--psk-file", PSK,
				       "--max-bandwidth", "8M", NULL };
		char to[64];

		snprintf(to, sizeof(to), "%s:%s", N.addr_b, PORT);
		argv[4] = to;
		gw_spawn(&MIG, argv);
	}
	usleep(1500000);
	cr_assert(gw_api(SRC.api, "{\"cmd\":\"migrate-cancel\"}", reply, sizeof(reply)));
	cr_assert(strstr(reply, "\"ok\":true"), "%s", reply);
	cr_assert(gw_wait_exit(&MIG, MIG_MS));
	cr_assert_neq(WEXITSTATUS(MIG.status), 0);
	cr_assert(strstr(gw_read_file(MIG.err), "cancelled"), "%s", gw_read_file(MIG.err));
	expect_source_running();
	expect_dest_failed_without_guest();
	gw_quit(&SRC);
}

Test(migrate, a_cancelled_migration_with_its_disk_leaves_no_image_and_no_change_log)
{
	char src_disk[256], dst_disk[256], dst_log[300], reply[512];

	require_kvm();
	gw_netns_create(&N);
	snprintf(src_disk, sizeof(src_disk), "%s/src.img", SRC.dir);
	snprintf(dst_disk, sizeof(dst_disk), "%s/dst.img", DST.dir);
	snprintf(dst_log, sizeof(dst_log), "%s.gwlog", dst_disk);
	{
		int fd = open(src_disk, O_RDWR | O_CREAT, 0644);

		cr_assert_eq(ftruncate(fd, 256 << 20), 0);
		close(fd);
	}
	start_dest(N.b, N.addr_b, dst_disk, (const char *const[]){ "--psk-file", PSK, NULL });
	start_source(N.a, src_disk, "mb=128 rate=32 disk=w:100:2000:77");
	{
		const char *argv[] = { "migrate", "--api", SRC.api, "--to", NULL, "--psk-file", PSK,
				       "--with-disk", "--max-bandwidth", "8M", NULL };
		char to[64];

		snprintf(to, sizeof(to), "%s:%s", N.addr_b, PORT);
		argv[4] = to;
		gw_spawn(&MIG, argv);
	}
	/* Mid-way for sure: the destination made its image (and its VM shell the log). */
	for (int i = 0; i < 200 && access(dst_disk, F_OK) != 0; i++)
		usleep(50000);
	cr_assert_eq(access(dst_disk, F_OK), 0, "the destination never made its image");
	usleep(500000);
	cr_assert(gw_api(SRC.api, "{\"cmd\":\"migrate-cancel\"}", reply, sizeof(reply)));
	cr_assert(gw_wait_exit(&MIG, MIG_MS));
	cr_assert_neq(WEXITSTATUS(MIG.status), 0);
	expect_source_running();
	expect_dest_failed_without_guest();
	cr_assert_neq(access(dst_disk, F_OK), 0, "a half-received image is left");
	cr_assert_neq(access(dst_log, F_OK), 0, "the half-received image's change log is left");
	gw_quit(&SRC);
}

/* Connect to 127.0.0.1:PORT and send bytes, then close. */
static void send_raw(const void *buf, size_t len)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(PORT)) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0, "%s", strerror(errno));
	cr_assert_eq(write(fd, buf, len), (ssize_t)len);
	usleep(200000);
	close(fd);
}

Test(migrate, garbage_sent_to_receive_is_refused_clearly_and_starts_nothing)
{
	static const char junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\nnot a migration stream";

	snprintf(PORT, sizeof(PORT), "%u", 20000 + (unsigned)getpid() % 20000);
	start_dest(NULL, "127.0.0.1", NULL, (const char *const[]){ "--psk-file", PSK, NULL });
	send_raw(junk, sizeof(junk));
	expect_dest_failed_without_guest();
	cr_assert(strstr(gw_read_file(DST.err), "TLS"), "%s", gw_read_file(DST.err));
	/* Without TLS the stream itself is checked. */
	gw_proc_cleanup(&DST);
	gw_proc_init(&DST);
	start_dest(NULL, "127.0.0.1", NULL, (const char *const[]){ "--insecure-plaintext", NULL });
	send_raw(junk, sizeof(junk));
	expect_dest_failed_without_guest();
	cr_assert(strstr(gw_read_file(DST.err), "godwit: receive: "), "%s", gw_read_file(DST.err));
}

Test(migrate, truncated_stream_is_refused_clearly_and_starts_nothing)
{
	struct gw_hb unused;

	(void)unused;
	require_kvm();
	snprintf(PORT, sizeof(PORT), "%u", 20000 + (unsigned)getpid() % 20000);
	start_dest(NULL, "127.0.0.1", NULL, (const char *const[]){ "--insecure-plaintext", NULL });
	start_source(NULL, NULL, "mb=64 rate=16");
	/* A plaintext migration killed at once: the destination sees the stream end early. */
	{
		const char *argv[] = { "migrate", "--api", SRC.api, "--to", NULL,
				       "--insecure-plaintext", "--max-bandwidth", "4M", NULL };
		char to[64];

		snprintf(to, sizeof(to), "127.0.0.1:%s", PORT);
		argv[4] = to;
		gw_spawn(&MIG, argv);
	}
	usleep(1200000);
	kill(SRC.pid, SIGKILL);
	expect_dest_failed_without_guest();
	cr_assert(strstr(gw_read_file(DST.err), "broke") ||
		  strstr(gw_read_file(DST.err), "stream"), "%s", gw_read_file(DST.err));
}
