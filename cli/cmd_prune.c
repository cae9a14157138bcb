/* godwit images prune: retention by policy, then removal of the packs no snapshot references. */
#include "cli/prune_cli.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/repo_opts.h"
#include "repo/repo.h"
#include "repo/repo_key.h"

static const char prune_usage[] =
	"usage: godwit images prune --repo URL [--keep-last N] [--keep-daily N] [--keep-weekly N]\n"
	"                           [--name NAME] [--key-file FILE] [--endpoint URL]\n"
	"                           [--lock-wait SECONDS] [--dry-run] [--verbose] [--json]\n"
	"  --repo URL         DIR, file://DIR or s3://BUCKET/PREFIX\n"
	"  --keep-last N      keep the N newest snapshots of each VM\n"
	"  --keep-daily N     keep the newest snapshot of each of the last N days that have one\n"
	"  --keep-weekly N    the same by ISO week; a snapshot any rule keeps is kept\n"
	"  --name NAME        apply the policy to this VM's snapshots only (default: each VM's)\n"
	"  --key-file FILE    the repository's key (encrypted repositories)\n"
	"  --endpoint URL     the S3 endpoint (default AWS_ENDPOINT_URL, else AWS)\n"
	CLI_S3_RETRY_USAGE
	"  --lock-wait SECONDS  wait this long for running backups or prunes (default 0)\n"
	"  --grace DURATION   garbage no index names goes once this old (default 24h; 90s,\n"
	"                     30m, 2d also work)\n"
	"  --dry-run          say what would be deleted, delete nothing\n"
	"Snapshots the policy does not keep are forgotten (their manifests deleted); then packs\n"
	"none of whose blobs any snapshot references are deleted. Packs holding some referenced\n"
	"blobs are kept whole (repacking is future work). Packs no index names and files of\n"
	"interrupted writes (a killed snapshot's, a full disk's) go once older than --grace,\n"
	"and the index forgets packs that no longer exist. Exit status: 0 done, 1 error,\n"
	"2 usage, 4 a backup, snapshot, restore or another prune holds a lock.\n";

const char *cli_endpoint(const char *endpoint)
{
	const char *e;

	if (endpoint && endpoint[0])
		return endpoint;
	e = getenv("AWS_ENDPOINT_URL_S3");
	if (e && e[0])
		return e;
	e = getenv("AWS_ENDPOINT_URL");
	return e && e[0] ? e : NULL;
}

int cli_repo_open(struct repo **r, const char *location, const struct backend_s3_opts *s3,
		  const char *key_file, char *err, size_t errlen)
{
	struct repo_key key;
	int rc;

	if (!key_file)
		return repo_open_ex(r, location, s3, NULL, err, errlen);
	rc = repo_key_load(&key, key_file, err, errlen);
	if (rc == 0)
		rc = repo_open_ex(r, location, s3, &key, err, errlen);
	repo_key_wipe(&key);
	return rc;
}

bool cli_parse_count(const char *opt, const char *arg, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(arg, &end, 10);
	if (errno || end == arg || *end || arg[0] == '-' || v > 1000000) {
		cli_error("%s takes a count from 0 to 1000000, not '%s'", opt, arg);
		return false;
	}
	*out = (unsigned)v;
	return true;
}

static void s3_retry_line(void *arg, const char *line)
{
	(void)arg;
	fprintf(stderr, "godwit: %s\n", line);
}

void cli_s3_opts(struct backend_s3_opts *o, const char *endpoint, int retry_s, bool verbose)
{
	*o = (struct backend_s3_opts){ .endpoint = cli_endpoint(endpoint), .retry_s = retry_s,
				       .note = verbose ? s3_retry_line : NULL };
}

bool cli_parse_s3_retry(const char *arg, int *out)
{
	unsigned v;

	if (!cli_parse_count("--s3-retry", arg, &v))
		return false;
	if (v > 86400) {
		cli_error("--s3-retry takes at most 86400 seconds (a day), not %u", v);
		return false;
	}
	*out = (int)v;
	return true;
}

bool cli_parse_duration(const char *opt, const char *arg, uint64_t *out)
{
	char *end;
	unsigned long long v;
	uint64_t unit = 1;

	errno = 0;
	v = strtoull(arg, &end, 10);
	if (end != arg && end[0] && !end[1]) {
		unit = end[0] == 's' ? 1 : end[0] == 'm' ? 60 : end[0] == 'h' ? 3600
		       : end[0] == 'd' ? 86400 : 0;
		end += unit != 0;
	}
	if (errno || end == arg || *end || arg[0] == '-' || unit == 0 ||
	    v > 10ull * 366 * 86400 / unit) {
		cli_error("%s takes a duration such as 24h, 30m, 90s or 2d, not '%s'", opt, arg);
		return false;
	}
	*out = v * unit;
	return true;
}

static void note_line(void *arg, const char *line)
{
	(void)arg;
	fprintf(stderr, "godwit: note: %s\n", line);
}

static void action_line(void *arg, const char *line)
{
	const struct cli_prune_opts *o = arg;

	/* A backup is silent unless asked: its notes are no failures. */
	if (strncmp(line, "note: ", 6) == 0) {
		if (!o->own || o->verbose)
			fprintf(stderr, "godwit: %s\n", line);
	}
	else if (o->verbose)
		printf("%s\n", line);
}

int cli_prune_run(struct repo *r, const struct cli_prune_opts *o, struct cli_prune_result *res,
		  char *err, size_t errlen)
{
	struct repo_lock_opts lo = {
		.wait_s = o->own ? 0 : o->lock_wait_s,
		.own = o->own,
		.s3 = o->s3,
		.note = note_line,
	};
	struct repo_lock *plock = NULL;
	int rc;

	memset(res, 0, sizeof(*res));
	if (!o->own) {
		rc = repo_lock_acquire(&plock, r, REPO_LOCK_PRUNE, NULL, &lo, err, errlen);
		if (rc < 0)
			return rc;
	}
	rc = prune_forget(r, &o->policy, o->vm_name, o->dry_run, action_line, (void *)o, &res->st,
			  err, errlen);
	if (rc < 0)
		goto out;
	if (o->own) {
		char why[1024];

		/* A backup sweeps only when nothing else runs: never waits, never fails for it. */
		rc = repo_lock_check((struct repo_lock *)o->own);
		if (rc < 0) {
			snprintf(res->skipped_why, sizeof(res->skipped_why),
				 "this backup's lock was taken over as stale");
			rc = 0;
			goto out;
		}
		rc = repo_lock_acquire(&plock, r, REPO_LOCK_PRUNE, NULL, &lo, why, sizeof(why));
		if (rc < 0) {
			snprintf(res->skipped_why, sizeof(res->skipped_why), "%s", why);
			rc = 0;
			goto out;
		}
	}
	rc = prune_sweep(r, o->dry_run, o->grace_s, action_line, (void *)o, &res->st, err, errlen);
	res->swept = rc == 0;
out:
	repo_lock_release(plock);
	return rc;
}

static void print_json(const struct cli_prune_result *res, bool dry_run)
{
	const struct prune_stats *s = &res->st;

	printf("{\"ok\":true,\"dry_run\":%s,\"snapshots_kept\":%" PRIu64
	       ",\"snapshots_removed\":%" PRIu64 ",\"swept\":%s,\"packs_total\":%" PRIu64
	       ",\"packs_removed\":%" PRIu64 ",\"bytes_removed\":%" PRIu64
	       ",\"packs_partial\":%" PRIu64 ",\"bytes_partial_dead\":%" PRIu64
	       ",\"packs_unindexed\":%" PRIu64 ",\"packs_missing\":%" PRIu64
	       ",\"partials_removed\":%" PRIu64 ",\"indexes_written\":%" PRIu64
	       ",\"indexes_removed\":%" PRIu64 "}\n",
	       dry_run ? "true" : "false", s->snapshots_kept, s->snapshots_removed,
	       res->swept ? "true" : "false", s->packs_total, s->packs_removed, s->bytes_removed,
	       s->packs_partial, s->bytes_partial_dead, s->packs_unindexed, s->packs_missing,
	       s->partials_removed, s->indexes_written, s->indexes_removed);
}

int cmd_images_prune(int argc, char **argv)
{
	static const struct option opts[] = {
		CLI_REPO_OPTIONS,
		CLI_REPO_ENDPOINT_OPTION,
		{ "keep-last", required_argument, NULL, 'L' },
		{ "keep-daily", required_argument, NULL, 'D' },
		{ "keep-weekly", required_argument, NULL, 'W' },
		{ "name", required_argument, NULL, 'n' },
		{ "lock-wait", required_argument, NULL, 'w' },
		{ "grace", required_argument, NULL, 'g' },
		{ "dry-run", no_argument, NULL, 'd' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct cli_prune_opts o = { .grace_s = PRUNE_GRACE_DEFAULT_S };
	struct cli_prune_result res;
	struct cli_repo_args ra;
	struct backend_s3_opts s3;
	bool json = false;
	struct repo *r;
	char err[1024] = "";
	int opt, rc;

	cli_repo_args_init(&ra);
	opterr = 0;
	optind = 2;
	while ((opt = getopt_long(argc, argv, "hv", opts, NULL)) != -1) {
		int taken = cli_repo_opt(opt, optarg, &ra);

		if (taken < 0)
			return CLI_EXIT_USAGE;
		if (taken)
			continue;
		switch (opt) {
		case 'L':
			if (!cli_parse_count("--keep-last", optarg, &o.policy.keep_last))
				return CLI_EXIT_USAGE;
			break;
		case 'D':
			if (!cli_parse_count("--keep-daily", optarg, &o.policy.keep_daily))
				return CLI_EXIT_USAGE;
			break;
		case 'W':
			if (!cli_parse_count("--keep-weekly", optarg, &o.policy.keep_weekly))
				return CLI_EXIT_USAGE;
			break;
		case 'n':
			o.vm_name = optarg;
			break;
		case 'w':
			if (!cli_parse_count("--lock-wait", optarg, &o.lock_wait_s))
				return CLI_EXIT_USAGE;
			break;
		case 'g':
			if (!cli_parse_duration("--grace", optarg, &o.grace_s))
				return CLI_EXIT_USAGE;
			break;
		case 'd':
			o.dry_run = true;
			break;
		case 'v':
			o.verbose = true;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			fputs(prune_usage, stdout);
			return CLI_EXIT_OK;
		default:
			cli_error("prune: unknown or incomplete option '%s': see 'godwit images prune "
				  "--help'", argv[optind - 1]);
			return CLI_EXIT_USAGE;
		}
	}
	if (!ra.repo) {
		cli_error("prune: pass --repo URL");
		return CLI_EXIT_USAGE;
	}
	if (prune_policy_empty(&o.policy)) {
		cli_error("prune: pass a policy: --keep-last N, --keep-daily N or --keep-weekly N "
			  "(a policy that keeps nothing is refused)");
		return CLI_EXIT_USAGE;
	}
	o.s3 = &s3;
	rc = cli_repo_args_open(&r, &s3, &ra, o.verbose, err, sizeof(err));
	o.verbose |= o.dry_run && !json;
	if (rc < 0) {
		cli_error("%s", err);
		return CLI_EXIT_ERROR;
	}
	rc = cli_prune_run(r, &o, &res, err, sizeof(err));
	repo_close(r);
	if (rc == -EBUSY) {
		cli_error("prune: %s: nothing was deleted; try again later or pass --lock-wait", err);
		return CLI_EXIT_LOCKED;
	}
	if (rc < 0) {
		cli_error("%s", err);
		return CLI_EXIT_ERROR;
	}
	if (json) {
		print_json(&res, o.dry_run);
		return CLI_EXIT_OK;
	}
	printf("%s %" PRIu64 " snapshots, kept %" PRIu64 "; %s %" PRIu64 " of %" PRIu64
	       " packs (%.1f MiB)\n", o.dry_run ? "would forget" : "forgot",
	       res.st.snapshots_removed, res.st.snapshots_kept,
	       o.dry_run ? "would delete" : "deleted", res.st.packs_removed, res.st.packs_total,
	       (double)res.st.bytes_removed / 1048576.0);
	return CLI_EXIT_OK;
}
