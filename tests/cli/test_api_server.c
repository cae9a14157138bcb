/* The control API server (cli/api.c) in this process on a temp socket: no VM, no godwit binary. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/api.h"
#include "cli/api_client.h"
#include "cli/json.h"

static char dir[64], path[96], log_path[96];
static struct api_server *srv;
static int saved_stderr = -1;

/* The slow command holds until the test lets it go: no sleeps, no timing. */
static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static bool gate_open, slow_started;

static void cmd_echo(void *ctx, const struct json_obj *req, char *reply, size_t len)
{
	const char *arg = json_get_str(req, "arg");
	char q[256];

	(void)ctx;
	json_quote(q, sizeof(q), arg ? arg : "");
	snprintf(reply, len, "{\"ok\":true,\"arg\":%s}", q);
}

static void cmd_slow(void *ctx, const struct json_obj *req, char *reply, size_t len)
{
	(void)ctx;
	(void)req;
	pthread_mutex_lock(&gate_mu);
	slow_started = true;
	pthread_cond_broadcast(&gate_cv);
	while (!gate_open)
		pthread_cond_wait(&gate_cv, &gate_mu);
	pthread_mutex_unlock(&gate_mu);
	snprintf(reply, len, "{\"ok\":true,\"slow\":true}");
}

static const struct api_cmd cmds[] = {
	{ .name = "echo", .fn = cmd_echo },
	{ .name = "slow", .fn = cmd_slow, .slow = true },
	{ NULL, NULL, false },
};

static void setup(void)
{
	char err[256];
	int fd;

	snprintf(dir, sizeof(dir), "/tmp/godwit-i12d-api-%d-XXXXXX", (int)getpid());
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/api.sock", dir);
	snprintf(log_path, sizeof(log_path), "%s/stderr", dir);
	/* The server says why it refused a peer on stderr: keep it for the test to read. */
	fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	cr_assert_geq(fd, 0);
	saved_stderr = dup(STDERR_FILENO);
	cr_assert_geq(saved_stderr, 0);
	cr_assert_eq(dup2(fd, STDERR_FILENO), STDERR_FILENO);
	close(fd);
	gate_open = slow_started = false;
	cr_assert_eq(api_server_start(&srv, path, NULL, cmds, NULL, err, sizeof(err)), 0, "%s", err);
}

static void open_gate(void)
{
	pthread_mutex_lock(&gate_mu);
	gate_open = true;
	pthread_cond_broadcast(&gate_cv);
	pthread_mutex_unlock(&gate_mu);
}

static void teardown(void)
{
	open_gate();
	if (srv)
		api_server_stop(srv, 10000);
	srv = NULL;
	fflush(stderr);
	if (saved_stderr >= 0) {
		dup2(saved_stderr, STDERR_FILENO);
		close(saved_stderr);
	}
	unlink(log_path);
	unlink(path);
	rmdir(dir);
}

TestSuite(api_server, .init = setup, .fini = teardown, .timeout = 30);

static void call(const char *req, char *reply, size_t cap)
{
	struct api_client c;
	char err[256];

	cr_assert_eq(api_client_open(&c, path, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(api_client_call(&c, req, reply, cap, err, sizeof(err)), 0, "%s", err);
	api_client_close(&c);
}

/* Every reply is one flat-enough JSON object with "ok"; errors carry an "error" string. */
static void parse_reply(const char *reply, struct json_obj *o, bool ok)
{
	char err[128];
	const struct json_member *m;

	cr_assert_eq(json_parse_reply(reply, strlen(reply), o, err, sizeof(err)), 0, "%s: %s", err,
		     reply);
	m = json_get(o, "ok");
	cr_assert_not_null(m, "%s", reply);
	cr_assert_eq(m->type, JSON_T_BOOL, "%s", reply);
	cr_assert_eq(m->b, ok, "%s", reply);
	if (!ok)
		cr_assert_not_null(json_get_str(o, "error"), "%s", reply);
}

Test(api_server, the_socket_is_private)
{
	struct stat st;

	cr_assert_eq(stat(path, &st), 0);
	cr_assert(S_ISSOCK(st.st_mode));
	cr_assert_eq(st.st_mode & 0777, 0600, "mode %o", st.st_mode & 0777);
}

Test(api_server, a_request_reaches_its_handler_and_the_reply_comes_back)
{
	char reply[1024];
	struct json_obj o;

	call("{\"cmd\":\"echo\",\"arg\":\"hello \\\"there\\\"\"}", reply, sizeof(reply));
	parse_reply(reply, &o, true);
	cr_assert_str_eq(json_get_str(&o, "arg"), "hello \"there\"");
}

Test(api_server, several_requests_on_one_connection_are_answered_in_order)
{
	struct api_client c;
	char reply[1024], err[256], req[64];
	struct json_obj o;

	cr_assert_eq(api_client_open(&c, path, err, sizeof(err)), 0, "%s", err);
	for (int i = 0; i < 5; i++) {
		char want[8];

		snprintf(req, sizeof(req), "{\"cmd\":\"echo\",\"arg\":\"%d\"}", i);
		cr_assert_eq(api_client_call(&c, req, reply, sizeof(reply), err, sizeof(err)), 0,
			     "%s", err);
		parse_reply(reply, &o, true);
		snprintf(want, sizeof(want), "%d", i);
		cr_assert_str_eq(json_get_str(&o, "arg"), want);
	}
	api_client_close(&c);
}

Test(api_server, a_malformed_request_gets_an_error_naming_the_fix)
{
	char reply[1024];
	struct json_obj o;

	call("{\"cmd\":", reply, sizeof(reply));
	parse_reply(reply, &o, false);
	cr_assert(strstr(json_get_str(&o, "error"), "request is "), "%s", reply);
	cr_assert(strstr(json_get_str(&o, "error"), "send {\"cmd\":\"status\"}"), "%s", reply);
}

Test(api_server, a_request_that_is_not_an_object_is_refused)
{
	char reply[1024];
	struct json_obj o;

	call("[\"echo\"]", reply, sizeof(reply));
	parse_reply(reply, &o, false);
	call("{\"cmd\":\"echo\"} trailing", reply, sizeof(reply));
	parse_reply(reply, &o, false);
}

Test(api_server, a_request_without_cmd_is_refused)
{
	char reply[1024];
	struct json_obj o;

	call("{\"arg\":\"x\"}", reply, sizeof(reply));
	parse_reply(reply, &o, false);
	cr_assert(strstr(json_get_str(&o, "error"), "no \"cmd\" string"), "%s", reply);
	call("{\"cmd\":7}", reply, sizeof(reply));
	parse_reply(reply, &o, false);
	cr_assert(strstr(json_get_str(&o, "error"), "no \"cmd\" string"), "%s", reply);
}

Test(api_server, an_unknown_command_lists_the_known_ones)
{
	char reply[1024];
	struct json_obj o;

	call("{\"cmd\":\"launch\"}", reply, sizeof(reply));
	parse_reply(reply, &o, false);
	cr_assert_str_eq(json_get_str(&o, "error"), "unknown command 'launch': try echo slow");
}

/* A line past the limit is answered once and the connection closed: no unbounded buffer. */
Test(api_server, an_overlong_line_is_refused_and_the_connection_closed)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char *big = malloc(8192), reply[512];
	size_t got = 0;
	ssize_t n;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_not_null(big);
	cr_assert_geq(fd, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	memset(big, 'x', 4096);
	cr_assert_eq(send(fd, big, 4096, MSG_NOSIGNAL), 4096);
	while ((n = recv(fd, reply + got, sizeof(reply) - 1 - got, 0)) > 0)
		got += (size_t)n;
	reply[got] = '\0';
	cr_assert(strstr(reply, "request line longer than 4096 bytes"), "%s", reply);
	cr_assert_eq(n, 0, "the server closes the connection");
	close(fd);
	free(big);
}

/* A slow command runs on its own thread: other clients are answered meanwhile. */
Test(api_server, a_slow_command_does_not_hold_up_the_others)
{
	struct api_client c;
	char reply[1024], err[256];
	struct json_obj o;
	const char req[] = "{\"cmd\":\"slow\"}\n";

	cr_assert_eq(api_client_open(&c, path, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(send(c.fd, req, sizeof(req) - 1, MSG_NOSIGNAL), (ssize_t)sizeof(req) - 1);
	pthread_mutex_lock(&gate_mu);
	while (!slow_started)
		pthread_cond_wait(&gate_cv, &gate_mu);
	pthread_mutex_unlock(&gate_mu);
	call("{\"cmd\":\"echo\",\"arg\":\"meanwhile\"}", reply, sizeof(reply));
	parse_reply(reply, &o, true);
	cr_assert_str_eq(json_get_str(&o, "arg"), "meanwhile");
	open_gate();
	/* The slow reply still reaches its own client. */
	{
		size_t got = 0;
		ssize_t n;

		while (got < sizeof(reply) - 1 && (got == 0 || reply[got - 1] != '\n') &&
		       (n = recv(c.fd, reply + got, sizeof(reply) - 1 - got, 0)) > 0)
			got += (size_t)n;
		reply[got] = '\0';
	}
	cr_assert_str_eq(reply, "{\"ok\":true,\"slow\":true}\n");
	api_client_close(&c);
}

/*
 * A peer that is not root, not this user and not in the group is closed without a reply,
 * even when the socket's mode would let it in: SO_PEERCRED, not the file mode, decides.
 */
Test(api_server, a_peer_of_another_uid_is_refused_by_its_credentials)
{
	pid_t pid;
	int status;
	FILE *f;
	char line[512] = "";

	if (geteuid() != 0)
		cr_skip_test("needs root to connect as another uid");
	/* Open the file mode on purpose, so only the peer check stands in the way. */
	cr_assert_eq(chmod(dir, 0755), 0);
	cr_assert_eq(chmod(path, 0666), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		static const char req[] = "{\"cmd\":\"echo\",\"arg\":\"x\"}\n";
		char buf[256];
		int fd;

		if (setresgid(65534, 65534, 65534) < 0 || setresuid(65534, 65534, 65534) < 0)
			_exit(10);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
		if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			_exit(11);
		if (send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) < 0 && errno != EPIPE &&
		    errno != ECONNRESET)
			_exit(12);
		/* Refused: the end of the stream (or a reset), never a reply. */
		ssize_t n = recv(fd, buf, sizeof(buf), 0);

		_exit(n > 0 ? 13 : 0);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status));
	cr_assert_eq(WEXITSTATUS(status), 0, "child exit %d (13: it got a reply)",
		     WEXITSTATUS(status));
	/* The server said whom it refused, on one line. */
	fflush(stderr);
	f = fopen(log_path, "r");
	cr_assert_not_null(f);
	cr_assert_not_null(fgets(line, sizeof(line), f));
	fclose(f);
	cr_assert(strstr(line, "godwit: api: refused a connection to "), "%s", line);
	cr_assert(strstr(line, "uid 65534 gid 65534"), "%s", line);
	/* Our own user still gets in. */
	{
		char reply[256];
		struct json_obj o;

		call("{\"cmd\":\"echo\",\"arg\":\"me\"}", reply, sizeof(reply));
		parse_reply(reply, &o, true);
	}
}
