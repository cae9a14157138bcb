/* godwit snapshot: ask a running VM to snapshot itself into a repository. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/api_client.h"
#include "cli/cli.h"
#include "cli/json.h"
#include "cli/prune_cli.h"
#include "cli/repo_opts.h"

static const char snapshot_usage[] =
	"usage: godwit snapshot --api SOCKET --repo DIR [--key-file FILE] [--name NAME]\n"
	"                       [--no-live] [--verify] [--lock-wait SECONDS]\n"
	"                       [--s3-retry SECONDS] [--verbose] [--json]\n"
	"  --api SOCKET     the running VM's control socket\n"
	"  --repo DIR       the image repository ('godwit repo init --repo DIR' makes one)\n"
	"  --key-file FILE  the repository's key (encrypted repositories; read by the VM's\n"
	"                   process, so it must be able to open FILE)\n"
	"  --name NAME      the VM's name in the repository (default vm)\n"
	"  --no-live        pause first and copy everything paused\n"
	"  --verify         in the pause, compare all of RAM and the disk with what the\n"
	"                   snapshot holds; a difference fails it (a longer pause: README)\n"
	"  --lock-wait SECONDS  wait this long for a prune of the repository (default 0)\n"
	CLI_S3_RETRY_USAGE
	"  --verbose        name each S3 request the VM's process retried\n"
	"  --json           print the figures as JSON\n";

static double num(const struct json_obj *o, const char *key)
{
	const struct json_member *m = json_get(o, key);

	return m && m->type == JSON_T_NUMBER ? m->num : 0;
}

int cmd_snapshot(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "api", required_argument, NULL, 'a' },
		CLI_REPO_OPTIONS,
		{ "name", required_argument, NULL, 'n' },
		{ "no-live", no_argument, NULL, 'l' },
		{ "verify", no_argument, NULL, 'V' },
		{ "lock-wait", required_argument, NULL, 'w' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *api = NULL, *name = "vm";
	struct cli_repo_args ra;
	bool json = false, no_live = false, verify = false, verbose = false;
	unsigned lock_wait = 0;
	char retry[32] = "";
	char abs_repo[PATH_MAX], abs_key[PATH_MAX], qrepo[PATH_MAX + 8], qkey[PATH_MAX + 8];
	char qname[600], req[2 * PATH_MAX + 1024];
	char reply[8192], err[512];
	struct api_client c;
	struct json_obj o;
	const struct json_member *ok;
	int opt, rc;

	cli_repo_args_init(&ra);
	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		int taken = cli_repo_opt(opt, optarg, &ra);

		if (taken < 0)
			return CLI_EXIT_USAGE;
		if (taken)
			continue;
		switch (opt) {
		case 'a':
			api = optarg;
			break;
		case 'n':
			name = optarg;
			break;
		case 'l':
			no_live = true;
			break;
		case 'V':
			verify = true;
			break;
		case 'w':
			if (!cli_parse_count("--lock-wait", optarg, &lock_wait))
				return CLI_EXIT_USAGE;
			break;
		case 'v':
			verbose = true;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			fputs(snapshot_usage, stdout);
			return CLI_EXIT_OK;
		default:
			cli_error("snapshot: unknown or incomplete option '%s': see 'godwit snapshot "
				  "--help'", argv[optind - 1]);
			return CLI_EXIT_USAGE;
		}
	}
	if (!api || !ra.repo) {
		cli_error("snapshot: pass --api SOCKET and --repo DIR");
		return CLI_EXIT_USAGE;
	}
	/* The VM's process has its own working directory: send an absolute path. */
	if (!realpath(ra.repo, abs_repo)) {
		cli_error("snapshot: repository %s does not exist: create it with 'godwit repo init "
			  "--repo %s'", ra.repo, ra.repo);
		return CLI_EXIT_ERROR;
	}
	if (ra.key_file && !realpath(ra.key_file, abs_key)) {
		cli_error("snapshot: key file %s: %s", ra.key_file, strerror(errno));
		return CLI_EXIT_ERROR;
	}
	json_quote(qrepo, sizeof(qrepo), abs_repo);
	json_quote(qkey, sizeof(qkey), ra.key_file ? abs_key : "");
	json_quote(qname, sizeof(qname), name);
	if (ra.s3_retry_s >= 0)
		snprintf(retry, sizeof(retry), ",\"s3_retry\":%d", ra.s3_retry_s);
	snprintf(req, sizeof(req),
		 "{\"cmd\":\"snapshot\",\"repo\":%s,\"key_file\":%s,\"name\":%s,\"no_live\":%s,"
		 "\"verify\":%s,\"lock_wait\":%u%s}", qrepo, qkey, qname, no_live ? "true" : "false",
		 verify ? "true" : "false", lock_wait, retry);
	rc = api_client_open(&c, api, err, sizeof(err));
	if (rc == 0)
		rc = api_client_call(&c, req, reply, sizeof(reply), err, sizeof(err));
	api_client_close(&c);
	if (rc < 0) {
		cli_error("snapshot: %s", err);
		return CLI_EXIT_ERROR;
	}
	if (json_parse_reply(reply, strlen(reply), &o, err, sizeof(err)) < 0) {
		cli_error("snapshot: unreadable reply from the VM: %s", err);
		return CLI_EXIT_ERROR;
	}
	ok = json_get(&o, "ok");
	if (!ok || ok->type != JSON_T_BOOL || !ok->b) {
		const char *e = json_get_str(&o, "error");

		cli_error("%s", e ? e : "snapshot failed");
		return CLI_EXIT_ERROR;
	}
	if (verbose && num(&o, "s3_retries")) {
		const char *log = json_get_str(&o, "s3_log");

		fprintf(stderr, "godwit: the VM's S3 client retried %.0f times; the first:\n%s",
			num(&o, "s3_retries"), log ? log : "");
	}
	if (json) {
		printf("{%s\n", reply + strlen("{\"ok\":true,"));
	} else {
		const char *parent = json_get_str(&o, "parent");

		printf("%s\n", json_get_str(&o, "id"));
		fprintf(stderr, "godwit: snapshot %s (%s%s): pause %.1f ms, %.0f ms in all, "
			"%.1f MiB new (%.1f MiB stored)\n", json_get_str(&o, "id"),
			parent && parent[0] ? "incremental on " : "full",
			parent && parent[0] ? parent : "", num(&o, "pause_us") / 1000.0, num(&o, "total_ms"),
			num(&o, "bytes_new") / 1048576.0, num(&o, "bytes_new_stored") / 1048576.0);
	}
	return CLI_EXIT_OK;
}
