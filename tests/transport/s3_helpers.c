/* Helpers for the S3 tests: run a helper script, start and stop a test server by PID. */
#include "s3_helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/clock.h"

extern char **environ;

/* Spawn argv with stdout into a pipe (argv, out_fd). Returns the pid or -1. */
static pid_t spawn_piped(char *const argv[], int *out_fd)
{
	posix_spawn_file_actions_t fa;
	int p[2];
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	if (posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ) != 0)
		pid = -1;
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	if (pid < 0) {
		close(p[0]);
		return -1;
	}
	*out_fd = p[0];
	return pid;
}

/* waitpid with a deadline; kills on timeout. Returns the status or -1. */
static int reap(pid_t pid, long deadline)
{
	int st;

	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
		if (r < 0 && errno != EINTR)
			return -1;
		if ((long)clock_now_ms() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			return -1;
		}
		usleep(5000);
	}
}

int run_capture(char *const argv[], char *out, size_t out_len, int timeout_ms)
{
	long deadline = (long)clock_now_ms() + timeout_ms;
	size_t got = 0;
	int fd;
	pid_t pid = spawn_piped(argv, &fd);

	if (pid < 0)
		return -1;
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		long left = deadline - (long)clock_now_ms();
		char sink[512];
		ssize_t n;

		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
			break;
		if (got + 1 < out_len)
			n = read(fd, out + got, out_len - 1 - got);
		else
			n = read(fd, sink, sizeof(sink));
		if (n <= 0)
			break;
		if (got + 1 < out_len)
			got += (size_t)n;
	}
	if (out_len)
		out[got] = '\0';
	close(fd);
	return reap(pid, deadline);
}

const char *python_with(const char *module)
{
	static const char *const candidates[] = { "python3", "/usr/bin/python3" };
	char code[128], out[16];

	snprintf(code, sizeof(code), "import %s", module);
	for (size_t i = 0; i < sizeof(candidates) / sizeof(candidates[0]); i++) {
		char *argv[] = { (char *)candidates[i], "-c", code, NULL };

		if (run_capture(argv, out, sizeof(out), 30000) == 0)
			return candidates[i];
	}
	return NULL;
}

bool server_start(struct test_server *s, char *const argv[], int timeout_ms)
{
	long deadline = (long)clock_now_ms() + timeout_ms;
	char line[512];
	size_t got = 0;

	memset(s, 0, sizeof(*s));
	s->pid = spawn_piped(argv, &s->out_fd);
	if (s->pid < 0) {
		s->pid = 0;
		return false;
	}
	while (got + 1 < sizeof(line)) {
		struct pollfd pfd = { .fd = s->out_fd, .events = POLLIN };
		long left = deadline - (long)clock_now_ms();
		ssize_t n;

		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
			break;
		n = read(s->out_fd, line + got, 1);
		if (n <= 0)
			break;
		if (line[got] == '\n') {
			line[got] = '\0';
			if (sscanf(line, "READY %u %127s %127s", &s->port, s->access_key,
				   s->secret_key) >= 1 && s->port > 0) {
				snprintf(s->endpoint, sizeof(s->endpoint), "http://127.0.0.1:%u",
					 s->port);
				return true;
			}
			got = 0;
			continue;
		}
		got++;
	}
	server_kill(s);
	return false;
}

void server_stop(struct test_server *s)
{
	if (s->pid > 0) {
		kill(s->pid, SIGTERM);
		reap(s->pid, (long)clock_now_ms() + 1000);
		s->pid = 0;
	}
	if (s->out_fd > 0) {
		close(s->out_fd);
		s->out_fd = 0;
	}
}

void server_kill(struct test_server *s)
{
	if (s->pid > 0) {
		kill(s->pid, SIGKILL);
		reap(s->pid, (long)clock_now_ms() + 5000);
		s->pid = 0;
	}
	if (s->out_fd > 0) {
		close(s->out_fd);
		s->out_fd = 0;
	}
}

bool moto_start(struct test_server *s, const char **why)
{
	const char *py = python_with("moto");
	char *argv[] = { NULL, S3_SCRIPTS_DIR "/moto_server.py", NULL };

	memset(s, 0, sizeof(*s));
	if (!py) {
		*why = "moto is not importable by python3 (see tests/s3/README.md)";
		return false;
	}
	argv[0] = (char *)py;
	if (!server_start(s, argv, 60000)) {
		*why = "moto_server.py did not print READY within 60 s";
		return false;
	}
	return true;
}

const char *fault_python(void)
{
	return python_with("http.server");
}

bool fault_start(struct test_server *s, const char *const *extra, size_t n_extra,
		 const char *log_path)
{
	const char *py = fault_python();
	char *argv[32];
	size_t n = 0;

	memset(s, 0, sizeof(*s));
	if (!py)
		return false;
	argv[n++] = (char *)py;
	argv[n++] = S3_SCRIPTS_DIR "/fault_server.py";
	if (log_path) {
		argv[n++] = "--log";
		argv[n++] = (char *)log_path;
	}
	for (size_t i = 0; i < n_extra && n + 1 < sizeof(argv) / sizeof(argv[0]); i++)
		argv[n++] = (char *)extra[i];
	argv[n] = NULL;
	return server_start(s, argv, 30000);
}

int file_count_lines(const char *path, const char *needle)
{
	FILE *f = fopen(path, "r");
	char line[4096];
	int n = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, needle))
			n++;
	fclose(f);
	return n;
}

void s3_test_config(struct s3_config *cfg, const struct test_server *s, const char *bucket)
{
	s3_config_init(cfg);
	snprintf(cfg->endpoint, sizeof(cfg->endpoint), "%s", s->endpoint);
	snprintf(cfg->bucket, sizeof(cfg->bucket), "%s", bucket);
	snprintf(cfg->access_key, sizeof(cfg->access_key), "%s",
		 s->access_key[0] ? s->access_key : "AKIDTESTTEST");
	snprintf(cfg->secret_key, sizeof(cfg->secret_key), "%s",
		 s->secret_key[0] ? s->secret_key : "test-secret");
	cfg->connect_timeout_ms = 2000;
	cfg->stall_timeout_ms = 10000;
	cfg->retry_base_ms = 20;
	cfg->retry_max_ms = 200;
	cfg->max_retries = 3;
}

void s3_test_env(const struct test_server *s)
{
	unsetenv("AWS_PROFILE");
	unsetenv("AWS_SESSION_TOKEN");
	unsetenv("AWS_ENDPOINT_URL_S3");
	setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent", 1);
	setenv("AWS_CONFIG_FILE", "/nonexistent", 1);
	setenv("AWS_ACCESS_KEY_ID", s->access_key[0] ? s->access_key : "AKIDTEST", 1);
	setenv("AWS_SECRET_ACCESS_KEY", s->secret_key[0] ? s->secret_key : "test-secret", 1);
	setenv("AWS_REGION", "us-east-1", 1);
	setenv("AWS_ENDPOINT_URL", s->endpoint, 1);
}

int s3_test_client(struct s3_client **cli, const struct test_server *s, const char *bucket,
		   char *err, size_t errlen)
{
	struct s3_config cfg;
	int rc;

	s3_test_config(&cfg, s, bucket);
	rc = s3_client_create(cli, &cfg, err, errlen);
	if (rc == 0) {
		rc = s3_bucket_create(*cli);
		if (rc < 0)
			snprintf(err, errlen, "create bucket %s: %s", bucket, strerror(-rc));
	}
	return rc;
}
