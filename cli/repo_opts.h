/* The repository options every repository command takes: --repo, --key-file, --endpoint, --s3-retry. */
#ifndef CLI_REPO_OPTS_H
#define CLI_REPO_OPTS_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>

struct backend_s3_opts;
struct repo;

/* getopt_long codes of the repository options; spread CLI_REPO_OPTIONS into a table. */
enum {
	CLI_REPO_OPT_REPO = 0x200,
	CLI_REPO_OPT_KEY_FILE,
	CLI_REPO_OPT_S3_RETRY,
	CLI_REPO_OPT_ENDPOINT,
};

/* --repo, --key-file and --s3-retry: every command that names a repository. */
#define CLI_REPO_OPTIONS \
	{ "repo", required_argument, NULL, CLI_REPO_OPT_REPO }, \
	{ "key-file", required_argument, NULL, CLI_REPO_OPT_KEY_FILE }, \
	{ "s3-retry", required_argument, NULL, CLI_REPO_OPT_S3_RETRY }

/* --endpoint URL, for the commands that reach S3 from this process (or pass it on). */
#define CLI_REPO_ENDPOINT_OPTION \
	{ "endpoint", required_argument, NULL, CLI_REPO_OPT_ENDPOINT }

/* What the repository options said; cli_repo_args_init sets the defaults. */
struct cli_repo_args {
	const char *repo;     /* DIR, file://DIR or s3://BUCKET/PREFIX; NULL: not given */
	const char *key_file; /* NULL: a plaintext repository */
	const char *endpoint; /* NULL: the environment's (cli_endpoint) */
	int s3_retry_s;       /* < 0: the default patience */
};

void cli_repo_args_init(struct cli_repo_args *a);

/*
 * Take opt (a getopt_long code) and its argument into a (opt, arg, a). Returns 1 if opt
 * was a repository option, 0 if it was not, or -1 for a bad value (one line printed: the
 * caller exits with CLI_EXIT_USAGE).
 */
int cli_repo_opt(int opt, const char *arg, struct cli_repo_args *a);

/*
 * The S3 options of a (s3, a, verbose), as cli_s3_opts makes them, then open a->repo with
 * a->key_file (r, s3, a, verbose, err, errlen). s3 must outlive r. Returns 0 or -errno
 * with one line in err.
 */
int cli_repo_args_open(struct repo **r, struct backend_s3_opts *s3, const struct cli_repo_args *a,
		       bool verbose, char *err, size_t errlen);

#endif
