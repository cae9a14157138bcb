/* godwit backup: a locked snapshot of a running VM into a repository, then retention; quiet, for cron. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/api_client.h"
#include "cli/cli.h"
#include "cli/json.h"
#include "cli/prune_cli.h"
#include "cli/repo_opts.h"
#include "repo/backend.h"
#include "repo/lock.h"
#include "repo/repo.h"

static const char backup_usage[] =
	"usage: godwit backup --api SOCKET --repo URL [--name NAME] [--key-file FILE]\n"
	"                     [--keep-last N] [--keep-daily N] [--keep-weekly N]\n"
	"                     [--endpoint URL] [--lock-wait SECONDS] [--s3-retry SECONDS]\n"
	"                     [--no-live]\n"
	"                     [--verbose | --json]\n"
	"  --api SOCKET         the running VM's control socket\n"
	"  --repo URL           DIR, file://DIR or s3://BUCKET/PREFIX\n"
	"  --name NAME          the VM's name in the repository (default vm)\n"
	"  --key-file FILE      the repository's key (encrypted repositories)\n"
	"  --keep-last/--keep-daily/--keep-weekly N\n"
	"                       then prune this VM's snapshots by that policy (as 'godwit images\n"
	"                       prune --name NAME'); without any, nothing is pruned\n"
	"  --endpoint URL       the S3 endpoint (default AWS_ENDPOINT_URL, else AWS); the VM's\n"
	"                       process gets it too, but reads credentials from its own\n"
	"                       environment\n"
	"  --lock-wait SECONDS  wait this long for another backup of this VM (default 0)\n"
	CLI_S3_RETRY_USAGE
	"  --no-live            pause the VM for the whole copy\n"
	"  --verbose            say what was done (on stdout); by default success is silent\n"
	"  --json               print the figures as one JSON object\n"
	"Exit status: 0 backed up (and pruned); 1 error, no snapshot was stored; 2 usage;\n"
	"4 another backup of this VM (or a prune) holds the lock; 5 the snapshot was stored but\n"
	"retention failed.\n";

struct backup_args {
	const char *api, *name;
	struct cli_repo_args ra;
	struct prune_policy policy;
	unsigned lock_wait_s;
	bool no_live, verbose, json;
};

static double num(const struct json_obj *o, const char *key)
{
	const struct json_member *m = json_get(o, key);

	return m && m->type == JSON_T_NUMBER ? m->num : 0;
}

static void note_line(void *arg, const char *line)
{
	(void)arg;
	fprintf(stderr, "godwit: note: %s\n", line);
}

static int backup_parse(int argc, char **argv, struct backup_args *a)
{
	static const struct option opts[] = {
		{ "api", required_argument, NULL, 'a' },
		CLI_REPO_OPTIONS,
		CLI_REPO_ENDPOINT_OPTION,
		{ "name", required_argument, NULL, 'n' },
		{ "keep-last", required_argument, NULL, 'L' },
		{ "keep-daily", required_argument, NULL, 'D' },
		{ "keep-weekly", required_argument, NULL, 'W' },
		{ "lock-wait", required_argument, NULL, 'w' },
		{ "no-live", no_argument, NULL, 'l' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	memset(a, 0, sizeof(*a));
	a->name = "vm";
	cli_repo_args_init(&a->ra);
	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "hv", opts, NULL)) != -1) {
		int taken = cli_repo_opt(opt, optarg, &a->ra);

		if (taken < 0)
			return CLI_EXIT_USAGE;
		if (taken)
			continue;
		switch (opt) {
		case 'a':
			a->api = optarg;
			break;
		case 'n':
			a->name = optarg;
			break;
		case 'L':
			if (!cli_parse_count("--keep-last", optarg, &a->policy.keep_last))
				return CLI_EXIT_USAGE;
			break;
		case 'D':
			if (!cli_parse_count("--keep-daily", optarg, &a->policy.keep_daily))
				return CLI_EXIT_USAGE;
			break;
		case 'W':
			if (!cli_parse_count("--keep-weekly", optarg, &a->policy.keep_weekly))
				return CLI_EXIT_USAGE;
			break;
		case 'w':
			if (!cli_parse_count("--lock-wait", optarg, &a->lock_wait_s))
				return CLI_EXIT_USAGE;
			break;
		case 'l':
			a->no_live = true;
			break;
		case 'v':
			a->verbose = true;
			break;
		case 'j':
			a->json = true;
			break;
		case 'h':
			fputs(backup_usage, stdout);
			return CLI_EXIT_OK;
		default:
			cli_error("backup: unknown or incomplete option '%s': see 'godwit backup --help'",
				  argv[optind - 1]);
			return CLI_EXIT_USAGE;
		}
	}
	if (!a->api || !a->ra.repo) {
		cli_error("backup: pass --api SOCKET and --repo URL");
		return CLI_EXIT_USAGE;
	}
	if (!a->name[0] || strlen(a->name) > SNAP_NAME_MAX) {
		cli_error("backup: --name takes 1 to %d bytes", SNAP_NAME_MAX);
		return CLI_EXIT_USAGE;
	}
	if (optind < argc) {
		cli_error("backup: unexpected argument '%s'", argv[optind]);
		return CLI_EXIT_USAGE;
	}
	return -1;
}

/*
 * Ask the VM for the snapshot (a, repo, key, reply, len), under this backup's lock (it
 * keeps prunes away, so the VM takes no snapshot lock of its own). Returns 0 or an exit
 * status.
 */
static int backup_snapshot(const struct backup_args *a, const char *repo, const char *key,
			   const char *endpoint, char *reply, size_t len, struct json_obj *o)
{
	char qrepo[PATH_MAX + 8], qkey[PATH_MAX + 8], qname[600], qend[600], err[1024], retry[32];
	char *req;
	const struct json_member *ok;
	struct api_client c;
	int rc;

	json_quote(qrepo, sizeof(qrepo), repo);
	json_quote(qkey, sizeof(qkey), key ? key : "");
	json_quote(qname, sizeof(qname), a->name);
	json_quote(qend, sizeof(qend), endpoint ? endpoint : "");
	retry[0] = '\0';
	if (a->ra.s3_retry_s >= 0)
		snprintf(retry, sizeof(retry), ",\"s3_retry\":%d", a->ra.s3_retry_s);
	if (asprintf(&req, "{\"cmd\":\"snapshot\",\"repo\":%s,\"key_file\":%s,\"name\":%s,"
		     "\"no_live\":%s,\"endpoint\":%s,\"min_bytes\":true,\"lock_wait\":%u,"
		     "\"repo_locked\":true%s}",
		     qrepo, qkey, qname, a->no_live ? "true" : "false", qend, a->lock_wait_s,
		     retry) < 0) {
		cli_error("backup: out of memory");
		return CLI_EXIT_ERROR;
	}
	rc = api_client_open(&c, a->api, err, sizeof(err));
	if (rc == 0)
		rc = api_client_call(&c, req, reply, len, err, sizeof(err));
	api_client_close(&c);
	free(req);
	if (rc < 0) {
		cli_error("backup: %s", err);
		return CLI_EXIT_ERROR;
	}
	if (json_parse_reply(reply, strlen(reply), o, err, sizeof(err)) < 0) {
		cli_error("backup: unreadable reply from the VM: %s", err);
		return CLI_EXIT_ERROR;
	}
	ok = json_get(o, "ok");
	if (!ok || ok->type != JSON_T_BOOL || !ok->b) {
		const char *e = json_get_str(o, "error");

		/* The repository publishes a snapshot last: a failure here leaves none. */
		cli_error("backup: snapshot of VM '%s' not stored (the repository keeps its "
			  "last good snapshot; run the backup again): %s", a->name,
			  e ? e : "the VM gave no reason");
		return CLI_EXIT_ERROR;
	}
	return 0;
}

/* Retention after the snapshot, under the backup lock (a, repo, s3, lock, res). */
static int backup_retain(const struct backup_args *a, const char *repo,
			 const struct backend_s3_opts *s3, const struct repo_lock *lock,
			 struct cli_prune_result *res)
{
	struct cli_prune_opts o = {
		.policy = a->policy,
		.vm_name = a->name,
		.s3 = s3,
		.own = lock,
		.grace_s = PRUNE_GRACE_DEFAULT_S,
		.verbose = a->verbose && !a->json,
	};
	struct repo *r;
	char err[1024];
	int rc;

	/* Opened again: the snapshot just published must count for the policy. */
	rc = cli_repo_open(&r, repo, s3, a->ra.key_file, err, sizeof(err));
	if (rc == 0) {
		rc = cli_prune_run(r, &o, res, err, sizeof(err));
		repo_close(r);
	}
	if (rc < 0) {
		cli_error("backup: the snapshot is stored, but retention failed: %s", err);
		return CLI_EXIT_PARTIAL;
	}
	if (!res->swept && a->verbose && !a->json)
		printf("unreferenced data left for a later prune: %s\n", res->skipped_why);
	return CLI_EXIT_OK;
}

static void backup_report(const struct backup_args *a, const struct json_obj *o,
			  const struct cli_prune_result *res, bool pruned)
{
	const char *parent = json_get_str(o, "parent");

	if (a->json) {
		printf("{\"ok\":true,\"id\":\"%s\",\"parent\":\"%s\",\"pause_ms\":%.0f,"
		       "\"total_ms\":%.0f,\"bytes_new\":%.0f,\"bytes_new_stored\":%.0f,"
		       "\"pruned\":%s,\"snapshots_removed\":%" PRIu64 ",\"swept\":%s,"
		       "\"packs_removed\":%" PRIu64 ",\"bytes_removed\":%" PRIu64 "}\n",
		       json_get_str(o, "id"), parent ? parent : "", num(o, "pause_ms"),
		       num(o, "total_ms"), num(o, "bytes_new"), num(o, "bytes_new_stored"),
		       pruned ? "true" : "false", res->st.snapshots_removed,
		       res->swept ? "true" : "false", res->st.packs_removed, res->st.bytes_removed);
		return;
	}
	if (!a->verbose)
		return;
	printf("snapshot %s of VM %s (%s%s): pause %.0f ms, %.0f ms in all, %.1f MiB new "
	       "(%.1f MiB stored)\n", json_get_str(o, "id"), a->name,
	       parent && parent[0] ? "incremental on " : "full", parent ? parent : "",
	       num(o, "pause_ms"), num(o, "total_ms"), num(o, "bytes_new") / 1048576.0,
	       num(o, "bytes_new_stored") / 1048576.0);
	if (num(o, "s3_retries")) {
		const char *log = json_get_str(o, "s3_log");

		/* The VM's process did the uploads: its retries, as it logged them. */
		fprintf(stderr, "godwit: the VM's S3 client retried %.0f times; the first:\n%s",
			num(o, "s3_retries"), log ? log : "");
	}
	if (num(o, "packs_absent") || num(o, "chunks_lost"))
		printf("lost data healed: %.0f packs the index names are missing or damaged; %.0f "
		       "chunks and blocks the parent stored there were stored again from the VM\n",
		       num(o, "packs_absent"), num(o, "chunks_lost"));
	if (pruned)
		printf("retention: forgot %" PRIu64 " snapshots, kept %" PRIu64 "; deleted %" PRIu64
		       " packs (%.1f MiB)\n", res->st.snapshots_removed, res->st.snapshots_kept,
		       res->st.packs_removed, (double)res->st.bytes_removed / 1048576.0);
}

int cmd_backup(int argc, char **argv)
{
	struct backup_args a;
	struct cli_prune_result res = { 0 };
	struct repo_lock_opts lo = { .note = note_line };
	struct repo_lock *lock = NULL;
	struct backend_s3_opts s3;
	struct repo *r = NULL;
	struct json_obj o;
	const char *endpoint, *repo;
	char abs_repo[PATH_MAX], abs_key[PATH_MAX], err[1024] = "", reply[8192], *lkey;
	time_t t0 = time(NULL);
	int rc, status, lfd = -1;

	status = backup_parse(argc, argv, &a);
	if (status >= 0)
		return status;
	endpoint = cli_endpoint(a.ra.endpoint);
	cli_s3_opts(&s3, endpoint, a.ra.s3_retry_s, a.verbose && !a.json);
	repo = a.ra.repo;
	/* The VM's process has its own working directory: send absolute paths. */
	if (!backend_location_is_s3(repo)) {
		if (!realpath(strncmp(repo, "file://", 7) ? repo : repo + 7, abs_repo)) {
			if (errno == ENOENT)
				cli_error("backup: repository %s does not exist: create it with "
					  "'godwit repo init --repo %s'", repo, repo);
			else
				cli_error("backup: repository %s: %s", repo, strerror(errno));
			return CLI_EXIT_ERROR;
		}
		repo = abs_repo;
	}
	if (a.ra.key_file && !realpath(a.ra.key_file, abs_key)) {
		cli_error("backup: key file %s: %s", a.ra.key_file, strerror(errno));
		return CLI_EXIT_ERROR;
	}
	/*
	 * 1. Same host: flock, exact and instant (an overlapping cron run leaves at once).
	 * 2. Open the repository: credentials, bucket and key fail here, clearly, before the
	 *    VM is touched. 3. Any host: the lock object.
	 */
	if (asprintf(&lkey, "backup\n%s\n%s", repo, a.name) < 0)
		return CLI_EXIT_ERROR;
	rc = lock_local_acquire(&lfd, lkey, a.lock_wait_s, err, sizeof(err));
	free(lkey);
	if (rc == -EBUSY) {
		cli_error("backup of VM '%s' not started: another backup of VM '%s' runs on this "
			  "host, %s%s", a.name, a.name, err,
			  a.lock_wait_s ? "" : "; --lock-wait SECONDS waits for it");
		return CLI_EXIT_LOCKED;
	}
	if (rc < 0) {
		cli_error("backup: %s", err);
		return CLI_EXIT_ERROR;
	}
	rc = cli_repo_open(&r, repo, &s3, a.ra.key_file ? abs_key : NULL, err, sizeof(err));
	if (rc < 0) {
		cli_error("backup: %s", err);
		close(lfd);
		return CLI_EXIT_ERROR;
	}
	{
		time_t spent = time(NULL) - t0;

		lo.wait_s = a.lock_wait_s > spent ? a.lock_wait_s - (unsigned)spent : 0;
		lo.s3 = &s3;
		rc = repo_lock_acquire(&lock, r, REPO_LOCK_BACKUP, a.name, &lo, err, sizeof(err));
	}
	repo_close(r);
	if (rc == -EBUSY) {
		cli_error("backup of VM '%s' not started: %s%s", a.name, err,
			  a.lock_wait_s ? "" : "; --lock-wait SECONDS waits for it");
		status = CLI_EXIT_LOCKED;
		goto out;
	}
	if (rc < 0) {
		cli_error("backup: %s", err);
		status = CLI_EXIT_ERROR;
		goto out;
	}
	status = backup_snapshot(&a, repo, a.ra.key_file ? abs_key : NULL, endpoint, reply,
				 sizeof(reply), &o);
	if (status != 0)
		goto out;
	if (!prune_policy_empty(&a.policy))
		status = backup_retain(&a, repo, &s3, lock, &res);
	if (repo_lock_check(lock) == -ENOLCK)
		fprintf(stderr, "godwit: warning: this backup's lock on %s was taken over as "
			"stale (heartbeats failed for too long); the snapshot is stored\n", repo);
	backup_report(&a, &o, &res, !prune_policy_empty(&a.policy) && status == CLI_EXIT_OK);
out:
	repo_lock_release(lock);
	if (lfd >= 0)
		close(lfd);
	return status;
}
