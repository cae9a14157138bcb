/* godwit migrate: ask a running VM to move itself to another host, and report progress. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/api_client.h"
#include "cli/cli.h"
#include "cli/json.h"
#include "cli/mig_opts.h"
#include "cli/size.h"

#define MIGRATE_POLL_US 100000
#define MIGRATE_REPLY_MAX 65536

static const char migrate_usage[] =
	"usage: godwit migrate --api SOCKET --to HOST:PORT AUTH [options]\n"
	"  --api SOCKET           the running VM's control socket\n"
	"  --to HOST:PORT         where 'godwit receive --listen' waits\n"
	MIG_AUTH_USAGE
	"  --downtime-ms N        pause target (default 50)\n"
	"  --max-bandwidth RATE   cap on page data per second, e.g. 200M (default none)\n"
	"  --timeout SECONDS      give up after this long (default 300)\n"
	"  --with-disk            copy the disk too (default: shared storage, same path)\n"
	"  --compress LEVEL|off   zstd level 1-19 for what compresses (default 2); off\n"
	"                         sends pages as they are, for links faster than the CPU\n"
	"  --verify               before commit, compare a digest of every RAM page (and, with\n"
	"                         --with-disk, every disk block) on both ends; a difference\n"
	"                         fails the migration while the VM is still here. Costs a\n"
	"                         SHA-256 of all RAM on both ends in the pause (README)\n"
	"  --json                 print the final figures as JSON\n";

static volatile sig_atomic_t migrate_interrupted;

static void on_interrupt(int sig)
{
	(void)sig;
	migrate_interrupted = 1;
}

static void json_field(char *buf, size_t cap, size_t *off, const char *key, const char *val)
{
	char q[600];

	if (!val[0])
		return;
	json_quote(q, sizeof(q), val);
	*off += (size_t)snprintf(buf + *off, cap - *off, ",\"%s\":%s", key, q);
}

static double num(const struct json_obj *o, const char *key)
{
	const struct json_member *m = json_get(o, key);

	return m && m->type == JSON_T_NUMBER ? m->num : 0;
}

static void print_progress(const struct json_obj *o)
{
	const char *state = json_get_str(o, "state");

	fprintf(stderr, "\r%-13s round %.0f: %.1f MiB left, %.0f MiB/s, guest dirties %.0f MiB/s,"
		" predicted downtime %.0f ms, throttle %.0f%%   ", state ? state : "?",
		num(o, "round"), num(o, "remaining_bytes") / 1048576.0,
		num(o, "rate_bytes_s") / 1048576.0, num(o, "dirty_bytes_s") / 1048576.0,
		num(o, "predicted_downtime_ms"), num(o, "throttle_pct"));
}

/* What 'godwit migrate' was asked to do. */
struct migrate_args {
	struct mig_auth auth;
	const char *api, *to, *compress;
	uint64_t downtime, bandwidth, timeout_s;
	bool with_disk, json, verify;
};

/* Read argv into a. Returns -1 to go on, or the exit status (usage, help, bad input). */
static int migrate_parse(int argc, char **argv, struct migrate_args *a)
{
	static const struct option opts[] = {
		{ "api", required_argument, NULL, 'a' },
		{ "to", required_argument, NULL, 't' },
		{ "downtime-ms", required_argument, NULL, 'd' },
		{ "max-bandwidth", required_argument, NULL, 'b' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "with-disk", no_argument, NULL, 'w' },
		{ "compress", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "verify", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		MIG_AUTH_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	char err[512];
	int opt;

	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		char *end;

		if (mig_opt_auth(opt, optarg, &a->auth))
			continue;
		switch (opt) {
		case 'a':
			a->api = optarg;
			break;
		case 't':
			a->to = optarg;
			break;
		case 'd':
			a->downtime = strtoull(optarg, &end, 10);
			if (*end || !a->downtime) {
				cli_error("--downtime-ms '%s' is not a positive number", optarg);
				return CLI_EXIT_ERROR;
			}
			break;
		case 'b':
			if (cli_parse_size(optarg, &a->bandwidth) < 0 || !a->bandwidth) {
				cli_error("--max-bandwidth '%s' is not a rate: give e.g. 200M", optarg);
				return CLI_EXIT_ERROR;
			}
			break;
		case 'T':
			a->timeout_s = strtoull(optarg, &end, 10);
			if (*end || !a->timeout_s) {
				cli_error("--timeout '%s' is not a positive number of seconds", optarg);
				return CLI_EXIT_ERROR;
			}
			break;
		case 'w':
			a->with_disk = true;
			break;
		case 'c': {
			int level;

			if (mig_compress_parse(optarg, &level) < 0) {
				cli_error("--compress '%s' is not a zstd level: give 1 to %d, or off",
					  optarg, MIG_COMPRESS_MAX);
				return CLI_EXIT_ERROR;
			}
			a->compress = optarg;
			break;
		}
		case 'j':
			a->json = true;
			break;
		case 'V':
			a->verify = true;
			break;
		case 'h':
			fputs(migrate_usage, stdout);
			return CLI_EXIT_OK;
		default:
			cli_error("migrate: unknown or incomplete option '%s': see 'godwit migrate "
				  "--help'", argv[optind - 1]);
			return CLI_EXIT_USAGE;
		}
	}
	if (!a->api || !a->to) {
		cli_error("migrate: pass --api SOCKET and --to HOST:PORT");
		return CLI_EXIT_USAGE;
	}
	if (mig_auth_check(&a->auth, err, sizeof(err)) < 0) {
		cli_error("migrate: %s", err);
		return CLI_EXIT_ERROR;
	}
	return -1;
}

/* The API request that starts the migration a asks for, into req (cap bytes). */
static void migrate_request(const struct migrate_args *a, char *req, size_t cap)
{
	size_t off = (size_t)snprintf(req, cap, "{\"cmd\":\"migrate\"");

	json_field(req, cap, &off, "to", a->to);
	json_field(req, cap, &off, "psk_file", a->auth.psk_file);
	json_field(req, cap, &off, "tls_cert", a->auth.cert_file);
	json_field(req, cap, &off, "tls_key", a->auth.key_file);
	json_field(req, cap, &off, "tls_ca", a->auth.ca_file);
	json_field(req, cap, &off, "tls_server_name", a->auth.server_name);
	json_field(req, cap, &off, "compress", a->compress);
	snprintf(req + off, cap - off,
		 ",\"insecure_plaintext\":%s,\"with_disk\":%s,\"verify\":%s,"
		 "\"downtime_ms\":%" PRIu64
		 ",\"max_bandwidth\":%" PRIu64 ",\"timeout_ms\":%" PRIu64 "}",
		 a->auth.insecure_plaintext ? "true" : "false",
		 a->with_disk ? "true" : "false", a->verify ? "true" : "false", a->downtime,
		 a->bandwidth, a->timeout_s * 1000);
}

/* Is state one the migration ends in? */
static bool migrate_state_final(const char *state)
{
	return state && (!strcmp(state, "completed") || !strcmp(state, "failed") ||
			 !strcmp(state, "cancelled") || !strcmp(state, "unconfirmed"));
}

/*
 * Report the migration's end (a, o: the last status reply, parsed; reply: its text;
 * state: final). Returns the exit status.
 */
static int migrate_report_end(const struct migrate_args *a, const struct json_obj *o,
			      const char *reply, const char *state)
{
	const char *e = json_get_str(o, "error");
	int status = CLI_EXIT_ERROR;

	if (!strcmp(state, "unconfirmed")) {
		/* One line: what happened, where the VM may be, the two ways out. */
		cli_error("migration unconfirmed: %s; the VM is paused here: if it does "
			  "not run at %s, resume it here ({\"cmd\":\"resume\"} on %s); "
			  "once it runs there, quit it here ({\"cmd\":\"quit\"})",
			  e && e[0] ? e : "no RUNNING from the destination", a->to, a->api);
		status = CLI_EXIT_UNCONFIRMED;
	} else if (strcmp(state, "completed") != 0) {
		cli_error("migration %s: %s", state, e && e[0] ? e : "no reason");
	} else {
		status = CLI_EXIT_OK;
		if (!a->json)
			printf("migrated to %s in %.0f ms: downtime %.0f ms, %.0f rounds, "
			       "%.1f MiB on the wire\n", a->to, num(o, "total_ms"),
			       num(o, "downtime_ms"), num(o, "rounds_count"),
			       num(o, "wire_bytes") / 1048576.0);
	}
	if (a->json) {
		const char *ok_member = "\"ok\":true,";
		const char *m = strstr(reply, ok_member);

		/* The figures: the reply without its "ok" member. */
		if (m)
			printf("{%s\n", m + strlen(ok_member));
	}
	return status;
}

/*
 * Start the migration on the VM's API (c, req) and follow it to its end: progress on a
 * terminal, a cancel on SIGINT or SIGTERM. reply is MIGRATE_REPLY_MAX bytes. Returns the
 * exit status.
 */
static int migrate_follow(const struct migrate_args *a, struct api_client *c, const char *req,
			  char *reply)
{
	bool tty = isatty(STDERR_FILENO);
	int status = CLI_EXIT_ERROR;
	char err[512];
	int rc;

	rc = api_client_call(c, req, reply, MIGRATE_REPLY_MAX, err, sizeof(err));
	for (bool cancel_sent = false; rc == 0;) {
		struct json_obj o;
		const char *state, *e;
		const struct json_member *ok;

		if (json_parse_reply(reply, strlen(reply), &o, err, sizeof(err)) < 0) {
			cli_error("unreadable reply from the VM's API: %s", err);
			break;
		}
		ok = json_get(&o, "ok");
		if (!ok || ok->type != JSON_T_BOOL || !ok->b) {
			e = json_get_str(&o, "error");
			cli_error("migrate: %s", e ? e : "the VM refused");
			break;
		}
		state = json_get_str(&o, "state");
		if (migrate_state_final(state)) {
			if (tty)
				fputc('\n', stderr);
			status = migrate_report_end(a, &o, reply, state);
			break;
		}
		if (tty && state)
			print_progress(&o);
		if (migrate_interrupted && !cancel_sent) {
			char r2[256];

			api_client_call(c, "{\"cmd\":\"migrate-cancel\"}", r2, sizeof(r2), err,
					sizeof(err));
			cancel_sent = true;
		}
		usleep(MIGRATE_POLL_US);
		rc = api_client_call(c, "{\"cmd\":\"migrate-status\"}", reply, MIGRATE_REPLY_MAX,
				     err, sizeof(err));
	}
	if (rc < 0)
		cli_error("migrate: %s", err);
	return status;
}

int cmd_migrate(int argc, char **argv)
{
	struct migrate_args a = { .compress = "" };
	struct api_client c;
	char *req, *reply, err[512];
	int rc, status = CLI_EXIT_ERROR;

	status = migrate_parse(argc, argv, &a);
	if (status >= 0)
		return status;
	status = CLI_EXIT_ERROR;
	req = malloc(4096);
	reply = malloc(MIGRATE_REPLY_MAX);
	if (!req || !reply) {
		free(req);
		free(reply);
		return CLI_EXIT_ERROR;
	}
	migrate_request(&a, req, 4096);
	rc = api_client_open(&c, a.api, err, sizeof(err));
	if (rc < 0) {
		cli_error("%s", err);
		goto out;
	}
	signal(SIGINT, on_interrupt);
	signal(SIGTERM, on_interrupt);
	signal(SIGPIPE, SIG_IGN);
	status = migrate_follow(&a, &c, req, reply);
	api_client_close(&c);
out:
	free(req);
	free(reply);
	return status;
}
