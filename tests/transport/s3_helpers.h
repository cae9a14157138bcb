/* Helpers for the S3 tests: run a helper script, start and stop a test server by PID. */
#ifndef TESTS_TRANSPORT_S3_HELPERS_H
#define TESTS_TRANSPORT_S3_HELPERS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "transport/s3.h"

#ifndef S3_SCRIPTS_DIR
#error "meson passes S3_SCRIPTS_DIR, the path of tests/s3"
#endif

/*
 * Run argv (argv[0] looked up in PATH) with stdin /dev/null, stdout captured into out
 * (NUL-terminated, cut at out_len - 1), stderr to ours; kill it after timeout_ms.
 * Returns the exit status (0..255), or -1 if it could not run or was killed.
 */
int run_capture(char *const argv[], char *out, size_t out_len, int timeout_ms);

/* The first interpreter of "python3", "/usr/bin/python3" that can import module, or NULL. */
const char *python_with(const char *module);

/* A server process the test started, and what it printed when ready. */
struct test_server {
	pid_t pid;
	int out_fd;            /* its stdout, read until READY */
	unsigned port;
	char access_key[128];
	char secret_key[128];
	char endpoint[64];     /* "http://127.0.0.1:PORT" */
};

/*
 * Start argv as a server (s, argv, timeout_ms) and wait for its "READY <port> [<ak>
 * <sk>]" line. Returns true when ready; on failure the process is killed and reaped.
 */
bool server_start(struct test_server *s, char *const argv[], int timeout_ms);

/* SIGTERM, then SIGKILL after a second, and reap (s). Idempotent. */
void server_stop(struct test_server *s);

/* SIGKILL now and reap (s): a crash, from the client's side. */
void server_kill(struct test_server *s);

/*
 * Start tests/s3/moto_server.py (s). Returns false, with *why set, when moto cannot be
 * imported or the server did not come up; the test then skips.
 */
bool moto_start(struct test_server *s, const char **why);

/* The python that runs fault_server.py (standard library only), or NULL if none. */
const char *fault_python(void);

/* Start tests/s3/fault_server.py with extra arguments (s, extra, n_extra, log_path). */
bool fault_start(struct test_server *s, const char *const *extra, size_t n_extra,
		 const char *log_path);

/* Count lines of path that contain needle; 0 if the file is missing. */
int file_count_lines(const char *path, const char *needle);

/* A config for a loopback test server (cfg, s, bucket): path-style, quick retries. */
void s3_test_config(struct s3_config *cfg, const struct test_server *s, const char *bucket);

/*
 * Point this process's AWS environment (and so every child's) at s, as a user would:
 * its keys, us-east-1, AWS_ENDPOINT_URL, and no profile or credentials file.
 */
void s3_test_env(const struct test_server *s);

/* A client of s3_test_config for bucket, which it creates (*cli, s, bucket, err, errlen). */
int s3_test_client(struct s3_client **cli, const struct test_server *s, const char *bucket,
		   char *err, size_t errlen);

#endif
