/*
 * The switch-over cut at each point of its timeline (migrate/proto.h): either side killed
 * or the link cut there, the guest checked afterwards; a cancel in every phase; the
 * user's pause kept. A point is reached by GODWIT_TEST_HOLD (migrate/conn.h), which
 * stops the process there as a debugger would: what the test does next lands exactly
 * at that point, or the wait for the hold fails.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/common/gw_test.h"
#include "tests/migrate/mig_helpers.h"
#include "util/clock.h"

/* Time enough for the 30 s idle limit on a cut link, and the exit after it. */
#define CUT_MS 90000

TestSuite(switchover, .init = mig_setup, .fini = mig_teardown, .timeout = 600);

static const char *const PSK_AUTH[] = { "--psk-file", PSK, NULL };

static void with_hold(const char *point)
{
	cr_assert_eq(setenv("GODWIT_TEST_HOLD", point, 1), 0);
}

static void no_hold(void)
{
	unsetenv("GODWIT_TEST_HOLD");
}

/* p stops itself at point (its process is stopped when this returns). */
static void wait_hold(struct gw_proc *p, const char *point)
{
	char want[96];

	snprintf(want, sizeof(want), "godwit: test hold at %s", point);
	cr_assert(gw_wait_line(p, p->err, want, 1, NULL, 0, MIG_MS), "never held at %s: %s; "
		  "migrate: %s; receive: %s", point, gw_read_file(p->err), gw_read_file(MIG.err),
		  gw_read_file(DST.err));
}

static void resume_process(struct gw_proc *p)
{
	cr_assert_eq(kill(p->pid, SIGCONT), 0);
}

static void kill_process(struct gw_proc *p)
{
	cr_assert_eq(kill(p->pid, SIGKILL), 0);
	cr_assert(gw_wait_exit(p, 20000));
}

/* Start `godwit migrate --json` in MIG without waiting (extra: "--verify" or NULL). */
static void spawn_migrate_with(const char *addr, const char *extra)
{
	char to[64];

	snprintf(to, sizeof(to), "%s:%s", addr, PORT);
	gw_spawn(&MIG, (const char *const[]){ "migrate", "--api", SRC.api, "--to", to,
					     "--psk-file", PSK, "--json", extra, NULL });
}

/*
 * Two hosts, the receiver and the source guest (cmdline), each stopping at its hold
 * point if one is named (NULL: none), and `godwit migrate` started between them (extra:
 * "--verify" or NULL).
 */
static void migrate_holding(const char *src_hold, const char *dst_hold, const char *cmdline,
			    const char *extra)
{
	require_kvm();
	gw_netns_create(&N);
	if (dst_hold)
		with_hold(dst_hold);
	start_dest(N.b, N.addr_b, NULL, PSK_AUTH);
	no_hold();
	if (src_hold)
		with_hold(src_hold);
	start_source(N.a, NULL, cmdline);
	no_hold();
	spawn_migrate_with(N.addr_b, extra);
	wait_hold(src_hold ? &SRC : &DST, src_hold ? src_hold : dst_hold);
}

static void api_ok(const char *sock, const char *req, char *reply, size_t len)
{
	cr_assert(gw_api(sock, req, reply, len), "no answer to %s", req);
	cr_assert(strstr(reply, "\"ok\":true"), "%s: %s", req, reply);
}

/*
 * After GO may have gone out: `godwit migrate` exits 6 with one line naming the state and
 * both ways out; migrate-status and status say unconfirmed; the guest is held paused for
 * the user, and the source process stays alive.
 */
static void expect_unconfirmed(int timeout_ms)
{
	char reply[1024], json[65536];
	char *err;

	cr_assert(gw_wait_exit(&MIG, timeout_ms), "migrate did not end");
	cr_assert(WIFEXITED(MIG.status) && WEXITSTATUS(MIG.status) == 6,
		  "migrate status %d: %s", MIG.status, gw_read_file(MIG.err));
	err = gw_read_file(MIG.err);
	cr_assert(strncmp(err, "godwit: migration unconfirmed: ", 31) == 0 &&
		  strchr(err, '\n') == err + strlen(err) - 1, "not one line: %s", err);
	cr_assert(strstr(err, "paused here") && strstr(err, "resume") && strstr(err, "quit"),
		  "the line does not give both ways out: %s", err);
	free(err);
	cr_assert(mig_status(json, sizeof(json)) && state_is(json, "unconfirmed"), "%s", json);
	cr_assert(gw_api(SRC.api, "{\"cmd\":\"status\"}", reply, sizeof(reply)));
	cr_assert(strstr(reply, "\"state\":\"paused\"") &&
		  strstr(reply, "\"migration\":\"unconfirmed\"") &&
		  strstr(reply, "\"paused_by\":\"user\""), "%s", reply);
	cr_assert(!gw_wait_exit(&SRC, 0), "the source exited: the VM was given up unconfirmed");
}

/* The way out when the destination does not run it: resume here; the guest goes on whole. */
static void resume_source_and_check(void)
{
	char reply[512];
	struct gw_hb before, after;
	unsigned n;

	gw_last_hb(&SRC, &before);
	n = gw_count_lines(SRC.console, "HB ");
	api_ok(SRC.api, "{\"cmd\":\"resume\"}", reply, sizeof(reply));
	cr_assert(gw_wait_line(&SRC, SRC.console, "HB ", n + 3, NULL, 0, 20000),
		  "the resumed source does not run");
	gw_last_hb(&SRC, &after);
	cr_assert_str_eq(after.id, before.id);
	cr_assert_gt(after.counter, before.counter);
	cr_assert_eq(after.errors, 0, "the guest found corrupted pages after the resume");
	gw_quit(&SRC);
}

/* 4: GO into a dead peer. The source may not know whether it arrived: it waits for the user. */
Test(switchover, destination_killed_between_ready_and_go_leaves_the_source_paused_and_resumable)
{
	migrate_holding("source-ready", NULL, "mb=32 rate=16 verify=1", NULL);
	kill_process(&DST);
	cr_assert_eq(gw_count_lines(DST.console, "HB "), 0);
	resume_process(&SRC);
	expect_unconfirmed(MIG_MS);
	resume_source_and_check();
}

/* 4: the link goes down with READY in hand: neither side runs the guest until told. */
Test(switchover, link_cut_between_ready_and_go_leaves_the_source_paused_and_the_destination_empty)
{
	migrate_holding("source-ready", NULL, "mb=32 rate=16 verify=1", NULL);
	gw_netns_cut(&N);
	resume_process(&SRC);
	expect_unconfirmed(CUT_MS);
	expect_dest_failed_without_guest();
	cr_assert(strstr(gw_read_file(DST.err), "does not run here"), "%s", gw_read_file(DST.err));
	resume_source_and_check();
}

/* 4: the source dies with READY in hand: the destination must not run a copy of its own. */
Test(switchover, source_killed_between_ready_and_go_never_starts_the_guest_at_the_destination)
{
	migrate_holding("source-ready", NULL, "mb=32 rate=16", NULL);
	kill_process(&SRC);
	expect_dest_failed_without_guest();
	cr_assert(gw_wait_exit(&MIG, MIG_MS));
	cr_assert_neq(WEXITSTATUS(MIG.status), 0, "migrate reported success for a dead source");
}

/* 5-6: GO arrived, the destination died before RUNNING: the source waits for the user. */
Test(switchover, destination_killed_after_go_leaves_the_source_paused_and_resumable)
{
	migrate_holding(NULL, "dest-go", "mb=32 rate=16 verify=1", NULL);
	kill_process(&DST);
	expect_unconfirmed(MIG_MS);
	resume_source_and_check();
}

/*
 * 6: GO arrived, the link went down: the destination runs the guest, RUNNING is lost. The
 * source stays paused (no split brain); the way out is to quit it once the guest is seen
 * running at the destination.
 */
Test(switchover, link_cut_after_go_runs_the_guest_at_the_destination_and_the_source_waits)
{
	struct gw_hb before;
	char reply[512];
	unsigned n;

	migrate_holding(NULL, "dest-go", "mb=32 rate=16 verify=1", NULL);
	gw_netns_cut(&N);
	resume_process(&DST);
	gw_last_hb(&SRC, &before);
	expect_continued(&before);
	expect_unconfirmed(CUT_MS);
	n = gw_count_lines(SRC.console, "HB ");
	cr_assert(gw_wait_line(&DST, DST.console, "HB ", gw_count_lines(DST.console, "HB ") + 5,
			       NULL, 0, 20000));
	cr_assert_leq(gw_count_lines(SRC.console, "HB "), n, "the source ran: split brain");
	api_ok(SRC.api, "{\"cmd\":\"quit\"}", reply, sizeof(reply));
	cr_assert(gw_wait_exit(&SRC, 20000));
	gw_quit(&DST);
}

/*
 * 2 with --verify: a page the destination holds differs from the source's (written there
 * after the last round, as a page the dirty log missed would be left): ERROR instead of
 * READY, and the source, still holding the VM, gives it back.
 */
Test(switchover, verify_finds_a_page_the_destination_lacks_and_the_source_keeps_the_vm)
{
	static const uint8_t junk[16] = { 0xa5, 0xa5, 0xa5, 0xa5 };
	char json[65536];

	migrate_holding(NULL, "dest-state", "mb=32 rate=16 verify=1", "--verify");
	gw_poke_guest_ram(DST.pid, 256ULL << 20, 0x800000, junk, sizeof(junk));
	resume_process(&DST);
	cr_assert(gw_wait_exit(&MIG, MIG_MS));
	cr_assert_eq(WEXITSTATUS(MIG.status), 1, "%s", gw_read_file(MIG.out));
	cr_assert(mig_status(json, sizeof(json)) && state_is(json, "failed"), "%s", json);
	cr_assert(strstr(json, "--verify: 1 RAM pages (first at gpa 0x800000)"), "%s", json);
	expect_dest_failed_without_guest();
	expect_source_running();
	gw_quit(&SRC);
}

/* 2: the destination dies before READY: the source takes its guest back at once. */
Test(switchover, destination_killed_before_ready_gives_the_guest_back_to_the_source)
{
	char json[65536];

	migrate_holding(NULL, "dest-done", "mb=32 rate=16 verify=1", NULL);
	cr_assert(mig_status(json, sizeof(json)) && state_is(json, "stop-and-copy"), "%s", json);
	kill_process(&DST);
	cr_assert(gw_wait_exit(&MIG, MIG_MS));
	cr_assert_eq(WEXITSTATUS(MIG.status), 1, "%s", gw_read_file(MIG.err));
	cr_assert(mig_status(json, sizeof(json)) && state_is(json, "failed"), "%s", json);
	expect_source_running();
	gw_quit(&SRC);
}

/* 7: RUNNING is in, the source dies before it stops by itself: the guest lives on there. */
Test(switchover, source_killed_after_running_leaves_the_guest_running_at_the_destination)
{
	struct gw_hb before;

	migrate_holding("source-running", NULL, "mb=32 rate=16 verify=1", NULL);
	gw_last_hb(&SRC, &before);
	kill_process(&SRC);
	expect_continued(&before);
	cr_assert(gw_wait_exit(&MIG, MIG_MS));
	gw_quit(&DST);
}

/*
 * 1-2: a cancel while the destination loads the state, with the guest paused by the
 * engine and, on top, by the user: the engine lets go of its own hold only.
 */
Test(switchover, a_cancel_in_stop_and_copy_is_prompt_and_keeps_the_users_pause)
{
	char reply[512], json[65536];
	unsigned n;

	migrate_holding(NULL, "dest-done", "mb=32 rate=16 verify=1", NULL);
	cr_assert(gw_api(SRC.api, "{\"cmd\":\"status\"}", reply, sizeof(reply)));
	cr_assert(strstr(reply, "\"paused_by\":\"migration\""), "%s", reply);
	api_ok(SRC.api, "{\"cmd\":\"pause\"}", reply, sizeof(reply));
	api_ok(SRC.api, "{\"cmd\":\"migrate-cancel\"}", reply, sizeof(reply));
	/* Prompt: the source is not waiting out the destination's silence (30 s). */
	cr_assert(gw_wait_exit(&MIG, 20000), "the cancel waited for the stopped destination");
	cr_assert_eq(WEXITSTATUS(MIG.status), 1);
	gw_expect_one_error(&MIG, "migration cancelled: the VM stays here, paused");
	cr_assert(mig_status(json, sizeof(json)) && state_is(json, "cancelled"), "%s", json);
	n = gw_count_lines(SRC.console, "HB ");
	resume_process(&DST);
	expect_dest_failed_without_guest();
	cr_assert(gw_api(SRC.api, "{\"cmd\":\"status\"}", reply, sizeof(reply)));
	cr_assert(strstr(reply, "\"state\":\"paused\"") && strstr(reply, "\"paused_by\":\"user\""),
		  "the engine resumed a guest the user had paused: %s", reply);
	cr_assert_leq(gw_count_lines(SRC.console, "HB "), n + 1, "heartbeats while paused");
	resume_source_and_check();
}

/*
 * The user pauses the guest while auto-converge throttles it (pausing and resuming it
 * every 20 ms): it stays paused through the rest of the migration and arrives paused.
 */
Test(switchover, a_guest_paused_during_a_throttled_migration_stays_paused_and_arrives_paused)
{
	char reply[1024], json[65536];
	struct gw_hb before;
	uint64_t end;
	unsigned n;

	require_kvm();
	gw_netns_create(&N);
	start_dest(N.b, N.addr_b, NULL, PSK_AUTH);
	start_source(N.a, NULL, "mb=16 rate=64 verify=1");
	/*
	 * The guest dirties faster than 4 MiB/s drains (it manages 10 MiB/s or more even on
	 * a loaded host): rounds stop shrinking, and the throttle starts its pause cycles.
	 */
	spawn_slow_migrate(N.addr_b, "4M", PSK_AUTH);
	end = clock_now_ms() + MIG_MS;
	do {
		wait_mid_stream("iterate", 0, json, sizeof(json));
		cr_assert_lt(clock_now_ms(), end, "the migration never throttled: %s", json);
		usleep(20000);
	} while (gw_json_u64(json, "throttle_pct") == 0);
	api_ok(SRC.api, "{\"cmd\":\"pause\"}", reply, sizeof(reply));
	n = gw_count_lines(SRC.console, "HB ");
	/* Until the source stops serving, every look finds the guest held by the user. */
	while (gw_api(SRC.api, "{\"cmd\":\"status\"}", reply, sizeof(reply))) {
		if (strstr(reply, "\"migration\":\"completed\""))
			break;
		cr_assert(strstr(reply, "\"state\":\"paused\"") &&
			  strstr(reply, "\"paused_by\":\"user"), "the pause was undone: %s", reply);
		usleep(5000);
	}
	cr_assert(gw_wait_exit(&MIG, MIG_MS));
	cr_assert_eq(WEXITSTATUS(MIG.status), 0, "%s", gw_read_file(MIG.err));
	cr_assert_leq(gw_count_lines(SRC.console, "HB "), n + 1, "heartbeats while paused");
	gw_last_hb(&SRC, &before);
	/* At the destination: paused, by the user, and not a single heartbeat yet. */
	cr_assert(gw_api(DST.api, "{\"cmd\":\"status\"}", reply, sizeof(reply)));
	cr_assert(strstr(reply, "\"state\":\"paused\"") && strstr(reply, "\"paused_by\":\"user\""),
		  "%s", reply);
	cr_assert_eq(gw_count_lines(DST.console, "HB "), 0, "the guest ran at the destination");
	api_ok(DST.api, "{\"cmd\":\"resume\"}", reply, sizeof(reply));
	expect_continued(&before);
	gw_quit(&DST);
}

/* The one line a cancelled migration leaves, promptly: cancelled, not a timeout. */
static void expect_cancelled(void)
{
	char json[65536];

	cr_assert(gw_wait_exit(&MIG, 20000), "the cancel did not end the migration");
	cr_assert_eq(WEXITSTATUS(MIG.status), 1);
	gw_expect_one_error(&MIG, "migration cancelled: the VM keeps running here");
	cr_assert(mig_status(json, sizeof(json)) && state_is(json, "cancelled"), "%s", json);
}

/* Wait until the source's migration has started (any state). */
static void wait_started(void)
{
	char json[65536];
	uint64_t end = clock_now_ms() + MIG_MS;

	while (!mig_status(json, sizeof(json))) {
		cr_assert_lt(clock_now_ms(), end, "the migration never started");
		usleep(10000);
	}
	cr_assert(state_is(json, "setup"), "%s", json);
}

/* A listener on loopback with the given backlog; its port into port. */
static int listen_loopback(int backlog, unsigned *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0, "%s", strerror(errno));
	cr_assert_eq(listen(fd, backlog), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

/* A connection to 127.0.0.1:port that the listener never accepts. */
static int connect_loopback(unsigned port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	connect(fd, (struct sockaddr *)&a, sizeof(a));
	return fd;
}

/*
 * Setup, connecting: a listener whose accept queue is full drops every SYN, so connect()
 * waits out its 10 s limit; the cancel must not.
 */
Test(switchover, a_cancel_while_connecting_is_prompt_and_says_cancelled)
{
	char reply[512], to[64], json[65536];
	int lfd, fill[4];
	unsigned port;

	require_kvm();
	lfd = listen_loopback(0, &port);
	for (unsigned i = 0; i < 4; i++)
		fill[i] = connect_loopback(port);
	usleep(100000); /* the loopback handshakes of the fillers complete in microseconds */
	start_source(NULL, NULL, "mb=16 rate=8 verify=1");
	snprintf(to, sizeof(to), "127.0.0.1:%u", port);
	gw_spawn(&MIG, (const char *const[]){ "migrate", "--api", SRC.api, "--to", to,
					     "--psk-file", PSK, NULL });
	wait_started();
	/* Still connecting a while later: the SYN is dropped, as intended. */
	cr_assert(!gw_wait_exit(&MIG, 1000), "connect did not hang: %s", gw_read_file(MIG.err));
	cr_assert(mig_status(json, sizeof(json)) && state_is(json, "setup"), "%s", json);
	api_ok(SRC.api, "{\"cmd\":\"migrate-cancel\"}", reply, sizeof(reply));
	expect_cancelled();
	expect_source_running();
	for (unsigned i = 0; i < 4; i++)
		close(fill[i]);
	close(lfd);
	gw_quit(&SRC);
}

/* Setup, TLS handshake: a peer that accepts TCP and never answers the ClientHello. */
Test(switchover, a_cancel_during_the_tls_handshake_is_prompt_and_says_cancelled)
{
	char reply[512], to[64];
	struct pollfd p;
	unsigned port;
	int lfd, cfd;

	require_kvm();
	lfd = listen_loopback(1, &port);
	start_source(NULL, NULL, "mb=16 rate=8 verify=1");
	snprintf(to, sizeof(to), "127.0.0.1:%u", port);
	gw_spawn(&MIG, (const char *const[]){ "migrate", "--api", SRC.api, "--to", to,
					     "--psk-file", PSK, NULL });
	p = (struct pollfd){ .fd = lfd, .events = POLLIN };
	cr_assert_eq(poll(&p, 1, MIG_MS), 1, "the source never connected");
	cfd = accept(lfd, NULL, NULL);
	cr_assert_geq(cfd, 0);
	/* Connected: the source now waits for a ServerHello that never comes. */
	p = (struct pollfd){ .fd = cfd, .events = POLLIN };
	cr_assert_eq(poll(&p, 1, MIG_MS), 1, "no ClientHello");
	api_ok(SRC.api, "{\"cmd\":\"migrate-cancel\"}", reply, sizeof(reply));
	expect_cancelled();
	expect_source_running();
	close(cfd);
	close(lfd);
	gw_quit(&SRC);
}

/* Setup, HELLO sent: the destination holds before it answers. */
Test(switchover, a_cancel_waiting_for_the_destinations_answer_is_prompt_and_says_cancelled)
{
	char reply[512];

	migrate_holding(NULL, "dest-accepted", "mb=16 rate=8 verify=1", NULL);
	api_ok(SRC.api, "{\"cmd\":\"migrate-cancel\"}", reply, sizeof(reply));
	expect_cancelled();
	expect_source_running();
	resume_process(&DST);
	expect_dest_failed_without_guest();
	gw_quit(&SRC);
}

Test(switchover, migrate_cancel_with_nothing_running_says_so)
{
	char reply[512];

	require_kvm();
	start_source(NULL, NULL, "mb=8 rate=8");
	cr_assert(gw_api(SRC.api, "{\"cmd\":\"migrate-cancel\"}", reply, sizeof(reply)));
	cr_assert(strstr(reply, "\"ok\":false") && strstr(reply, "no migration is running"),
		  "%s", reply);
	/* And after one has ended (nobody listens on this port). */
	snprintf(PORT, sizeof(PORT), "%u", 20000 + (unsigned)getpid() % 20000);
	cr_assert_eq(run_migrate("127.0.0.1", PSK_AUTH), 1);
	cr_assert(gw_api(SRC.api, "{\"cmd\":\"migrate-cancel\"}", reply, sizeof(reply)));
	cr_assert(strstr(reply, "\"ok\":false") && strstr(reply, "no migration is running"),
		  "%s", reply);
	expect_source_running();
	gw_quit(&SRC);
}
