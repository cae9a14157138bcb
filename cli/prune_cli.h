/* What 'godwit backup' and 'godwit images prune' share: opening a repository by URL, and retention under locks. */
#ifndef CLI_PRUNE_CLI_H
#define CLI_PRUNE_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "repo/backend.h"
#include "repo/lock.h"
#include "repo/prune.h"

struct repo;

/*
 * Open location with the key in key_file (NULL: a plaintext repository) and the S3
 * options (NULL: the environment's endpoint, the default patience) (r, location, s3,
 * key_file, err, errlen). Returns 0 or -errno with one line in err.
 */
int cli_repo_open(struct repo **r, const char *location, const struct backend_s3_opts *s3,
		  const char *key_file, char *err, size_t errlen);

/* The --s3-retry option every command that reaches S3 takes, for its usage text. */
#define CLI_S3_RETRY_USAGE \
	"  --s3-retry SECONDS   keep retrying a failing S3 request this long, with backoff\n" \
	"                       (default 300; 0: no retries); --verbose names each retry\n"

/* Parse --s3-retry SECONDS (arg, out): 0..86400. Returns false with a message printed. */
bool cli_parse_s3_retry(const char *arg, int *out);

/*
 * The S3 options of a command (o, endpoint, retry_s, verbose): endpoint as cli_endpoint
 * gives it, the retry budget (< 0: the default), and with verbose a line per retry on
 * stderr ("godwit: s3: ...").
 */
void cli_s3_opts(struct backend_s3_opts *o, const char *endpoint, int retry_s, bool verbose);

/* Parse a --keep-* or --lock-wait count (opt, arg, out). Returns false with a message printed. */
bool cli_parse_count(const char *opt, const char *arg, unsigned *out);

/*
 * Parse a duration (opt, arg, out): seconds, or a number with s, m, h or d ("24h",
 * "90m"), up to 10 years. Returns false with a message printed.
 */
bool cli_parse_duration(const char *opt, const char *arg, uint64_t *out);

/*
 * The S3 endpoint to use (endpoint): endpoint when given, else AWS_ENDPOINT_URL_S3 or
 * AWS_ENDPOINT_URL as s3_config_from_env reads them, else NULL (AWS itself).
 */
const char *cli_endpoint(const char *endpoint);

struct cli_prune_opts {
	struct prune_policy policy;
	const char *vm_name;          /* only this VM's snapshots; NULL: each VM's */
	const struct backend_s3_opts *s3;
	const struct repo_lock *own;  /* 'godwit backup': its backup lock (forget runs under it) */
	unsigned lock_wait_s;
	uint64_t grace_s;             /* age of garbage no index names before it goes */
	bool dry_run;
	bool verbose;                 /* each action on stdout */
};

/* How a prune went. */
struct cli_prune_result {
	struct prune_stats st;
	bool swept;                   /* false: the sweep waited for other locks and was skipped */
	char skipped_why[1024];
};

/*
 * Retention then garbage collection on r (r, o, res, err, errlen). Without o->own (godwit
 * images prune) the prune lock is taken first, up to o->lock_wait_s, and held for both
 * steps: -EBUSY when another lock stays. With o->own (godwit backup, which holds the
 * backup lock of o->vm_name) forget runs at once under that lock, and the sweep runs
 * only if the prune lock can be had now; otherwise res->swept is false and the garbage
 * waits for a later prune. Notes (stale locks removed, packs kept whole) go to stderr.
 * Returns 0, -EBUSY, or -errno with one line in err.
 */
int cli_prune_run(struct repo *r, const struct cli_prune_opts *o, struct cli_prune_result *res,
		  char *err, size_t errlen);

#endif
