/* End-to-end: who may use a VM's control API, and that it answers whatever clients do. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/common/gw_test.h"

#define BOOT_MS 60000
#define NOBODY 65534
/* A group no account on the test host is in: only the test's client joins it. */
#define API_TEST_GID 47115

static struct gw_proc P;

static void setup(void)
{
	gw_proc_init(&P);
}

static void teardown(void)
{
	gw_proc_cleanup(&P);
}

TestSuite(api, .init = setup, .fini = teardown, .timeout = 180);

/* Boot the test guest with the API on P.api under umask mask; extra options appended. */
static void boot(mode_t mask, const char *const *extra)
{
	const char *argv[32] = { "run", "--kernel", TEST_GUEST_ELF, "--mem", "64M", "--cmdline",
				 "mb=4 rate=16", "--console", P.console, "--api", P.api };
	unsigned n = 11;
	mode_t old;
	char line[256];

	require_kvm();
	for (; extra && *extra && n < 30; extra++)
		argv[n++] = *extra;
	argv[n] = NULL;
	old = umask(mask);
	gw_spawn(&P, argv);
	umask(old);
	cr_assert(gw_wait_line(&P, P.console, "HB ", 1, line, sizeof(line), BOOT_MS),
		  "no heartbeat; stderr: %s", gw_read_file(P.err));
	/* Let other users reach the socket's directory: the socket's own mode decides. */
	cr_assert_eq(chmod(P.dir, 0755), 0);
}

static int api_connect(const char *sock)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	memcpy(addr.sun_path, sock, strnlen(sock, sizeof(addr.sun_path) - 1));
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		int rc = -errno;

		close(fd);
		return rc;
	}
	return fd;
}

/* One request on fd, one reply line back within timeout_ms; false if none came. */
static bool api_call_fd(int fd, const char *req, char *reply, size_t len, int timeout_ms)
{
	size_t got = 0;

	if (send(fd, req, strlen(req), MSG_NOSIGNAL) < 0 || send(fd, "\n", 1, MSG_NOSIGNAL) < 0)
		return false;
	while (got + 1 < len) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, timeout_ms) <= 0)
			return false;
		n = recv(fd, reply + got, 1, 0);
		if (n <= 0)
			return false;
		if (reply[got] == '\n')
			break;
		got++;
	}
	reply[got] = '\0';
	return true;
}

enum who {
	AS_NOBODY,          /* uid and gid nobody, no groups */
	AS_NOBODY_IN_GROUP, /* the same, in API_TEST_GID */
	AS_NOBODY_FSUID0,   /* euid nobody, but file access as root: past the socket's mode */
};

/*
 * In a child process that became who: connect to the API and ask for status. Returns 0
 * if a reply came ("ok":true), 1 if connect failed with EACCES, 2 if the connection was
 * closed without a reply, 3 for anything else.
 */
static int status_as(enum who who)
{
	pid_t pid = fork();
	int st;

	cr_assert_geq(pid, 0);
	if (pid == 0) {
		gid_t g = API_TEST_GID;
		char reply[512];
		int fd;

		if (who == AS_NOBODY_FSUID0) {
			if (setgroups(0, NULL) < 0 || setegid(NOBODY) < 0 || seteuid(NOBODY) < 0)
				_exit(10);
			setfsuid(0);
			if (setfsuid((uid_t)-1) != 0)
				_exit(11);
		} else {
			if (setgroups(who == AS_NOBODY_IN_GROUP, &g) < 0 ||
			    setresgid(NOBODY, NOBODY, NOBODY) < 0 ||
			    setresuid(NOBODY, NOBODY, NOBODY) < 0)
				_exit(12);
		}
		fd = api_connect(P.api);
		if (fd == -EACCES)
			_exit(1);
		if (fd < 0)
			_exit(13);
		if (!api_call_fd(fd, "{\"cmd\":\"status\"}", reply, sizeof(reply), 20000))
			_exit(2);
		_exit(strstr(reply, "\"ok\":true") ? 0 : 14);
	}
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st), "client died: %d", st);
	return WEXITSTATUS(st);
}

static void expect_status(void)
{
	char reply[2048];
	int fd = api_connect(P.api);

	cr_assert_geq(fd, 0, "connect: %s", strerror(-fd));
	cr_assert(api_call_fd(fd, "{\"cmd\":\"status\"}", reply, sizeof(reply), 20000),
		  "status got no answer");
	cr_assert(strstr(reply, "\"ok\":true"), "%s", reply);
	close(fd);
}

static void quit(void)
{
	gw_quit(&P);
	cr_assert(WIFEXITED(P.status) && WEXITSTATUS(P.status) == 0, "exit status %d", P.status);
}

Test(api, socket_is_0600_whatever_the_umask_and_other_users_cannot_connect)
{
	struct stat st;

	boot(0, NULL);
	cr_assert_eq(stat(P.api, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0600, "API socket mode %o under umask 000",
		     st.st_mode & 07777);
	cr_assert_eq(status_as(AS_NOBODY), 1, "nobody was not refused by the socket's mode");
	expect_status();
	quit();
}

Test(api, a_peer_of_another_uid_is_closed_with_one_logged_line)
{
	boot(0, NULL);
	/* Past the file mode (file access as root), the peer's uid is still nobody. */
	cr_assert_eq(status_as(AS_NOBODY_FSUID0), 2,
		     "a connection from uid nobody was served or not closed");
	cr_assert_eq(gw_count_lines(P.err, "godwit: api: refused a connection"), 1,
		     "stderr: %s", gw_read_file(P.err));
	cr_assert(strstr(gw_read_file(P.err), "uid 65534"), "stderr: %s", gw_read_file(P.err));
	expect_status();
	quit();
}

Test(api, api_group_members_may_connect_and_others_may_not)
{
	const char *extra[] = { "--api-group", "47115", NULL };
	struct stat st;

	boot(0077, extra);
	cr_assert_eq(stat(P.api, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0660, "mode %o", st.st_mode & 07777);
	cr_assert_eq(st.st_gid, API_TEST_GID);
	cr_assert_eq(status_as(AS_NOBODY_IN_GROUP), 0, "a member of the API group was refused; "
		     "stderr: %s", gw_read_file(P.err));
	cr_assert_eq(status_as(AS_NOBODY), 1, "a non-member was not refused");
	quit();
}

Test(api, refuses_an_unknown_api_group)
{
	const char *argv[] = { "run", "--kernel", TEST_GUEST_ELF, "--api", P.api, "--api-group",
			       "no-such-group-i15", NULL };

	require_kvm();
	cr_assert_eq(gw_run(&P, argv, 30000), 1);
	gw_expect_one_error(&P, "--api-group 'no-such-group-i15' is not a group");
}

Test(api, plaintext_migration_over_the_api_needs_the_vms_opt_in)
{
	const char *mig[] = { "migrate", "--api", P.api, "--to", "127.0.0.1:9",
			      "--insecure-plaintext", NULL };
	struct gw_proc m;
	char reply[1024];
	int fd;

	boot(0022, NULL);
	fd = api_connect(P.api);
	cr_assert_geq(fd, 0);
	cr_assert(api_call_fd(fd, "{\"cmd\":\"migrate\",\"to\":\"127.0.0.1:9\","
			      "\"insecure_plaintext\":true,\"compress\":\"off\"}", reply,
			      sizeof(reply), 20000));
	close(fd);
	cr_assert(strstr(reply, "\"ok\":false") && strstr(reply, "--allow-plaintext-migration"),
		  "plaintext migrate was not refused: %s", reply);
	/* The command line says which flag the VM needs, in one line. */
	gw_proc_init(&m);
	cr_assert_eq(gw_run(&m, mig, 30000), 1);
	gw_expect_one_error(&m, "--allow-plaintext-migration");
	gw_proc_cleanup(&m);
	expect_status();
	quit();
}

Test(api, plaintext_migration_is_allowed_with_the_opt_in)
{
	const char *extra[] = { "--allow-plaintext-migration", NULL };
	char reply[1024];
	int fd;

	boot(0022, extra);
	fd = api_connect(P.api);
	cr_assert_geq(fd, 0);
	/* Nobody listens on port 9: accepted here, then it fails to connect. */
	cr_assert(api_call_fd(fd, "{\"cmd\":\"migrate\",\"to\":\"127.0.0.1:9\","
			      "\"insecure_plaintext\":true}", reply, sizeof(reply), 20000));
	cr_assert(strstr(reply, "\"ok\":true"), "%s", reply);
	/* It was tried: it fails on the closed port, not on a refusal. */
	for (int i = 0; i < 600; i++) {
		cr_assert(api_call_fd(fd, "{\"cmd\":\"migrate-status\"}", reply, sizeof(reply),
				      20000));
		if (strstr(reply, "\"state\":\"failed\""))
			break;
		usleep(50000);
	}
	cr_assert(strstr(reply, "\"state\":\"failed\"") && strstr(reply, "cannot connect"),
		  "%s", reply);
	close(fd);
	quit();
}

Test(api, a_client_that_never_reads_does_not_block_status_nor_sigterm)
{
	static const char req[] = "{\"cmd\":\"status\"}\n";
	int stuck;
	unsigned sent = 0;

	boot(0022, NULL);
	stuck = api_connect(P.api);
	cr_assert_geq(stuck, 0);
	/* Requests until its socket takes no more: the replies pile up unread. */
	for (;;) {
		ssize_t n = send(stuck, req, sizeof(req) - 1, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd p = { .fd = stuck, .events = POLLOUT };

			/* Give the server the chance to drain our requests; stop once it will not. */
			if (poll(&p, 1, 2000) == 0)
				break;
			continue;
		}
		cr_assert_gt(n, 0, "send: %s", strerror(errno));
		sent++;
	}
	cr_assert_gt(sent, 100, "only %u requests went out", sent);
	expect_status();
	expect_status();
	cr_assert_eq(kill(P.pid, SIGTERM), 0);
	cr_assert(gw_wait_exit(&P, 20000), "godwit did not end after SIGTERM");
	cr_assert(WIFEXITED(P.status) && WEXITSTATUS(P.status) == 0, "exit status %d", P.status);
	close(stuck);
}

Test(api, idle_clients_do_not_lock_others_out)
{
	int idle[40];

	boot(0022, NULL);
	for (unsigned i = 0; i < sizeof(idle) / sizeof(idle[0]); i++) {
		idle[i] = api_connect(P.api);
		cr_assert_geq(idle[i], 0, "connection %u: %s", i, strerror(-idle[i]));
		/* Each accepted before the next, so the newest is never the one made room for. */
		if (i % 8 == 7)
			expect_status();
	}
	expect_status();
	for (unsigned i = 0; i < sizeof(idle) / sizeof(idle[0]); i++)
		close(idle[i]);
	quit();
}
