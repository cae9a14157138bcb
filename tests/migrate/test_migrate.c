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
#include <time.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "tests/common/gw_test.h"
#include "tests/migrate/mig_helpers.h"

TestSuite(migrate, .init = mig_setup, .fini = mig_teardown, .timeout = 300);

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
/*
 * A VM that was snapshotted keeps a dirty-log consumer of its own (the snapshot tracker).
 * Before each consumer had its own view, the migration's round 0 sent only what was
 * dirtied since the snapshot's last fetch, and the guest died at the destination with a
 * triple fault while `godwit migrate` said it had moved.
 */
Test(migrate, a_snapshotted_guest_moves_whole)
{
	char repo[256];
	struct gw_hb before;

	require_kvm();
	gw_netns_create(&N);
	snprintf(repo, sizeof(repo), "%s/repo", SRC.dir);
	cr_assert_eq(godwit_cmd((const char *const[]){ "repo", "init", "--repo", repo,
						      "--insecure-no-encryption", NULL }), 0,
		     "%s", gw_read_file(MIG.err));
	start_dest(N.b, N.addr_b, NULL, (const char *const[]){ "--psk-file", PSK, NULL });
	start_source(N.a, NULL, "mb=64 rate=8 verify=1");
	for (int i = 0; i < 2; i++)
		cr_assert_eq(godwit_cmd((const char *const[]){ "snapshot", "--api", SRC.api,
							      "--repo", repo, NULL }), 0,
			     "snapshot: %s", gw_read_file(MIG.err));
	cr_assert_eq(run_migrate(N.addr_b, (const char *const[]){ "--psk-file", PSK, NULL }), 0,
		     "migrate failed: %s", gw_read_file(MIG.err));
	cr_assert(gw_wait_exit(&SRC, 20000), "source still running after migrating away");
	gw_last_hb(&SRC, &before);
	expect_continued(&before);
	gw_quit(&DST);
}

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
	expect_dest_turned_away(1, "PSK");
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
	expect_dest_turned_away(1, "certificate");
	gw_quit(&SRC);
}

Test(migrate, killed_destination_leaves_the_source_running_and_a_retry_succeeds)
{
	struct gw_hb before;
	char json[65536];

	require_kvm();
	gw_netns_create(&N);
	start_dest(N.b, N.addr_b, NULL, (const char *const[]){ "--psk-file", PSK, NULL });
	start_source(N.a, NULL, "mb=128 rate=32");
	/* Slowed, so that the kill lands while round 0 is on the wire. */
	spawn_slow_migrate(N.addr_b, "8M", (const char *const[]){ "--psk-file", PSK, NULL });
	wait_mid_stream("iterate", 2u << 20, json, sizeof(json));
	kill(DST.pid, SIGKILL);
	cr_assert(gw_wait_exit(&MIG, MIG_MS));
	cr_assert_neq(WEXITSTATUS(MIG.status), 0, "migrate reported success to a dead host");
	cr_assert(mig_status(json, sizeof(json)) && state_is(json, "failed"), "%s", json);
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
	char reply[512], json[65536];

	require_kvm();
	gw_netns_create(&N);
	start_dest(N.b, N.addr_b, NULL, (const char *const[]){ "--psk-file", PSK, NULL });
	start_source(N.a, NULL, "mb=128 rate=32");
	spawn_slow_migrate(N.addr_b, "8M", (const char *const[]){ "--psk-file", PSK, NULL });
	wait_mid_stream("iterate", 2u << 20, json, sizeof(json));
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
	char src_disk[256], dst_disk[256], dst_log[300], reply[512], json[4096];

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
	wait_mid_stream("iterate", 2u << 20, json, sizeof(json));
	cr_assert(gw_api(SRC.api, "{\"cmd\":\"migrate-cancel\"}", reply, sizeof(reply)));
	cr_assert(gw_wait_exit(&MIG, MIG_MS));
	cr_assert_neq(WEXITSTATUS(MIG.status), 0);
	expect_source_running();
	expect_dest_failed_without_guest();
	cr_assert_neq(access(dst_disk, F_OK), 0, "a half-received image is left");
	cr_assert_neq(access(dst_log, F_OK), 0, "the half-received image's change log is left");
	gw_quit(&SRC);
}

Test(migrate, garbage_sent_to_receive_is_refused_clearly_and_starts_nothing)
{
	static const char junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\nnot a migration stream";

	snprintf(PORT, sizeof(PORT), "%u", 20000 + (unsigned)getpid() % 20000);
	start_dest(NULL, "127.0.0.1", NULL, (const char *const[]){ "--psk-file", PSK, NULL });
	send_raw(junk, sizeof(junk));
	expect_dest_turned_away(1, "TLS");
	/* Without TLS the stream itself is checked. */
	gw_proc_cleanup(&DST);
	gw_proc_init(&DST);
	start_dest(NULL, "127.0.0.1", NULL, (const char *const[]){ "--insecure-plaintext", NULL });
	send_raw(junk, sizeof(junk));
	expect_dest_turned_away(1, "127.0.0.1:");
}

Test(migrate, truncated_stream_is_refused_clearly_and_starts_nothing)
{
	char json[65536];

	require_kvm();
	snprintf(PORT, sizeof(PORT), "%u", 20000 + (unsigned)getpid() % 20000);
	start_dest(NULL, "127.0.0.1", NULL, (const char *const[]){ "--insecure-plaintext", NULL });
	start_source(NULL, NULL, "mb=64 rate=16");
	/* A plaintext migration killed mid-stream: the destination sees the stream end early. */
	spawn_slow_migrate("127.0.0.1", "4M", (const char *const[]){ "--insecure-plaintext", NULL });
	wait_mid_stream("iterate", 1u << 20, json, sizeof(json));
	kill(SRC.pid, SIGKILL);
	expect_dest_failed_without_guest();
	cr_assert(strstr(gw_read_file(DST.err), "broke") ||
		  strstr(gw_read_file(DST.err), "stream"), "%s", gw_read_file(DST.err));
}
