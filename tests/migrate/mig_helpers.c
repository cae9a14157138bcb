/* Two hosts for migration tests: namespaces, the source VM, the receiver, the migrate command. */
#include "tests/migrate/mig_helpers.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/clock.h"

struct gw_netns N;
struct gw_proc SRC, DST, MIG;
char PSK[256], PORT[16] = "7070";
bool SRC_RING;

void write_psk(const char *path, const char *hex)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, hex, strlen(hex)), (ssize_t)strlen(hex));
	close(fd);
}

void mig_setup(void)
{
	gw_proc_init(&SRC);
	gw_proc_init(&DST);
	gw_proc_init(&MIG);
	snprintf(PSK, sizeof(PSK), "%s/psk", SRC.dir);
	write_psk(PSK, "8f2a6c1e9b7d4f3a0c5e8b1d6f2a9c4e7b0d3f6a1c8e5b2d9f4a7c0e3b6d1f8a\n");
}

void mig_teardown(void)
{
	gw_proc_cleanup(&MIG);
	gw_proc_cleanup(&DST);
	gw_proc_cleanup(&SRC);
	gw_netns_destroy(&N);
}

void start_source(const char *ns, const char *disk, const char *cmdline)
{
	const char *argv[24] = { "run", "--kernel", TEST_GUEST_ELF, "--mem", "256M", "--cpus", "2",
				 "--cmdline", cmdline, "--console", SRC.console, "--api", SRC.api,
				 "--allow-plaintext-migration" };
	unsigned n = 14;

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
void start_dest(const char *ns, const char *addr, const char *disk,
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
int run_migrate(const char *addr, const char *const *extra)
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
void expect_continued(const struct gw_hb *before)
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
void expect_source_running(void)
{
	unsigned n = gw_count_lines(SRC.console, "HB ");
	char reply[512];

	cr_assert(gw_wait_line(&SRC, SRC.console, "HB ", n + 3, NULL, 0, 10000),
		  "source guest stopped running; stderr: %s", gw_read_file(SRC.err));
	cr_assert(gw_api(SRC.api, "{\"cmd\":\"status\"}", reply, sizeof(reply)));
	cr_assert(strstr(reply, "\"state\":\"running\""), "%s", reply);
}

/* The source's migrate-status into json; false while no migration has started. */
bool mig_status(char *json, size_t len)
{
	cr_assert(gw_api(SRC.api, "{\"cmd\":\"migrate-status\"}", json, len),
		  "the source's API does not answer: %s", gw_read_file(SRC.err));
	return strstr(json, "\"ok\":true") != NULL;
}

bool state_is(const char *json, const char *state)
{
	char st[32];

	gw_json_str(json, "state", st, sizeof(st));
	return strcmp(st, state) == 0;
}

/*
 * Wait until the source's migration is in state with at least min_wire bytes sent, so
 * that a kill, cut, pause or cancel made now lands mid-stream. A migration that ended
 * first fails the test: what would follow proves nothing.
 */
void wait_mid_stream(const char *state, uint64_t min_wire, char *json, size_t len)
{
	uint64_t end = clock_now_ms() + MIG_MS;
	bool seen = false;

	for (;;) {
		if (mig_status(json, len)) {
			if (state_is(json, state) && gw_json_u64(json, "wire_bytes") >= min_wire)
				return;
			/* Until the new migration shows, the API reports the last one's end. */
			seen |= state_is(json, "setup") || state_is(json, "iterate");
			cr_assert(!seen || (!state_is(json, "completed") && !state_is(json, "failed") &&
					    !state_is(json, "cancelled") &&
					    !state_is(json, "unconfirmed")),
				  "the migration ended before the test acted: it proves nothing: %s",
				  json);
		}
		cr_assert_lt(clock_now_ms(), end, "no %s state: %s", state, json);
		usleep(20000);
	}
}

/* Spawn `godwit migrate` slowed to rate so that it is still copying when the test acts. */
void spawn_slow_migrate(const char *addr, const char *rate, const char *const *auth)
{
	const char *argv[24] = { "migrate", "--api", SRC.api, "--to", NULL, "--max-bandwidth",
				 rate };
	char to[64];
	unsigned n = 7;

	snprintf(to, sizeof(to), "%s:%s", addr, PORT);
	argv[4] = to;
	for (; auth && *auth; auth++)
		argv[n++] = *auth;
	argv[n] = NULL;
	gw_spawn(&MIG, argv);
}

void expect_dest_failed_without_guest(void)
{
	cr_assert(gw_wait_exit(&DST, 30000), "receive kept running after a failed migration");
	cr_assert(WIFEXITED(DST.status) && WEXITSTATUS(DST.status) != 0, "receive status %d",
		  DST.status);
	cr_assert_eq(gw_count_lines(DST.console, "HB "), 0, "the destination ran the guest");
}

void expect_dest_turned_away(unsigned n, const char *needle)
{
	char line[512];

	for (unsigned i = 1; i <= n; i++) {
		cr_assert(gw_wait_line(&DST, DST.err, "godwit: receive: turned away ", i, line,
				       sizeof(line), 30000),
			  "receive did not turn away connection %u: %s", i, gw_read_file(DST.err));
		cr_assert(strstr(line, needle), "'%s' not in: %s", needle, line);
	}
	cr_assert(!gw_wait_exit(&DST, 0), "receive ended on a bad connection: %s",
		  gw_read_file(DST.err));
	cr_assert_eq(gw_count_lines(DST.console, "HB "), 0, "the destination ran a guest");
}

int godwit_cmd(const char *const *argv)
{
	return gw_run(&MIG, argv, MIG_MS);
}

/* Connect to 127.0.0.1:PORT and send bytes, then close. */
void send_raw(const void *buf, size_t len)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(PORT)) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0, "%s", strerror(errno));
	cr_assert_eq(write(fd, buf, len), (ssize_t)len);
	usleep(200000);
	close(fd);
}

