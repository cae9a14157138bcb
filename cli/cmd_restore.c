/* godwit restore: start a VM from a snapshot in an image repository. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/net_opts.h"
#include "cli/prune_cli.h"
#include "cli/repo_opts.h"
#include "cli/restore_check.h"
#include "cli/vm_host.h"
#include "snapshot/lazy_mem.h"
#include "repo/manifest.h"
#include "repo/repo.h"
#include "snapshot/restore.h"

static const char restore_usage[] =
	"usage: godwit restore --repo DIR [--key-file FILE] [--snapshot ID|latest] [options]\n"
	"  --repo DIR|s3://B/P   the image repository\n"
	"  --key-file FILE       its key (an encrypted repository: 'godwit repo init' made it)\n"
	"  --endpoint URL        the S3 endpoint (default $AWS_ENDPOINT_URL, else AWS)\n"
	CLI_S3_RETRY_USAGE
	"  --snapshot ID         which snapshot (default latest)\n"
	"  --name NAME           with latest: the newest snapshot of VM NAME\n"
	"  --disk PATH           write the snapshot's disk to this new image\n"
	"  --disk-base OLD.img   or bring this stale copy up to date in place and use it\n"
	"  --api SOCKET          serve the control API\n"
	VM_HOST_ACCESS_USAGE
	"  --console FILE        the guest's serial output (default stdout)\n"
	"  --net tap=NAME|tapfd=N  the tap for the snapshot's next NIC: one per NIC, in order\n"
	"                        (the NIC keeps its MAC; the tap may be another one, on\n"
	"                        another host)\n"
	"  --eager               copy all of RAM before the vCPUs start (default: start at\n"
	"                        once and fault RAM in from the repository on first touch,\n"
	"                        fetching the rest in the background; eager when this host\n"
	"                        has no usable userfaultfd)\n"
	"  --verify              before the vCPUs start, compare every RAM chunk and disk block\n"
	"                        with the snapshot's (blob ids); implies --eager. Costs a hash\n"
	"                        of all non-zero RAM and disk (README)\n"
	"  --lock-wait SECONDS   wait this long for a prune of the repository (default 0);\n"
	"                        until all of RAM is in, a prune waits for the restore\n"
	"  --verbose             say how RAM was restored and when the vCPUs started\n"
	"  --check               start nothing: say whether the snapshot would restore here\n"
	"                        (format, CPU features, RAM, disk, NICs); exit 0 for go\n"
	"With latest (the default) the snapshot restored is named on stderr, and a damaged\n"
	"newest snapshot is refused, naming the newest intact one, never restored around.\n";

/* Seconds since the epoch with microseconds, for matching against other clocks. */
static double wall_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void report_lazy(struct lazy_mem *lazy)
{
	struct lazy_mem_stats st;

	lazy_mem_stats(lazy, &st);
	if (st.complete)
		fprintf(stderr, "godwit: restore: RAM resident %" PRIu64 " ms after registration:",
			st.resident_ms);
	else
		fprintf(stderr, "godwit: restore: RAM not all resident when the VM stopped:");
	fprintf(stderr, " %" PRIu64 " chunks fetched on a fault, %" PRIu64 " prefetched, %"
		PRIu64 " zero chunks mapped on a fault, %" PRIu64 " faults, %.1f MiB read\n",
		st.chunks_on_fault, st.chunks_prefetched, st.zero_on_fault, st.faults,
		(double)st.bytes_fetched / (1 << 20));
}

/* The vCPUs run (h, arg: the bool --verbose): say when, and tell the network. */
static void restore_started(struct vm_host *h, void *arg)
{
	bool verbose = *(bool *)arg;

	if (verbose)
		fprintf(stderr, "godwit: restore: vCPUs running at %.6f (wall clock)\n", wall_s());
	if (vm_nic_count(h->vm)) {
		/* A VM restored on another host has moved too: the network must learn it. */
		char note[128];
		int rc = vm_host_announce(h->vm, true, note, sizeof(note));

		if (verbose || rc < 0)
			fprintf(stderr, "godwit: restore: %s%s%s\n", note, rc < 0 ? ": " : "",
				rc < 0 ? strerror(-rc) : "");
	}
}

/* One restore: its options, then what it opened, in the order cmd_restore opens them. */
struct restore_cmd {
	/* From the command line. */
	struct cli_repo_args ra;
	const char *id, *disk, *base, *api_path, *console_path;
	struct snap_restore_opts ro;
	struct vm_host_access access;
	enum snap_ram_mode ram_mode;
	struct net_opts nets;
	bool verbose, verify, check;
	/* Opened by the steps. */
	struct backend_s3_opts s3;
	struct repo *r;
	struct snap_restore rs;
	struct vm_config cfg;
	struct vm *vm;
	struct lazy_mem *lazy;
	struct cli_console console;
	bool disk_created;
	char err[512];
};

/* Read argv into c. Returns -1 to go on, or the exit status (usage, help, bad input). */
static int restore_parse(int argc, char **argv, struct restore_cmd *c)
{
	static const struct option opts[] = {
		CLI_REPO_OPTIONS,
		CLI_REPO_ENDPOINT_OPTION,
		{ "snapshot", required_argument, NULL, 's' },
		{ "name", required_argument, NULL, 'n' },
		{ "disk", required_argument, NULL, 'd' },
		{ "disk-base", required_argument, NULL, 'b' },
		{ "api", required_argument, NULL, 'a' },
		{ "console", required_argument, NULL, 'o' },
		{ "eager", no_argument, NULL, 'e' },
		{ "lock-wait", required_argument, NULL, 'w' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "verify", no_argument, NULL, 'V' },
		{ "net", required_argument, NULL, 'N' },
		{ "check", no_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		VM_HOST_ACCESS_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	cli_repo_args_init(&c->ra);
	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		int taken = vm_host_opt(opt, optarg, &c->access);

		if (taken < 0)
			return CLI_EXIT_ERROR;
		if (taken)
			continue;
		taken = cli_repo_opt(opt, optarg, &c->ra);
		if (taken < 0)
			return CLI_EXIT_USAGE;
		if (taken)
			continue;
		switch (opt) {
		case 's':
			c->id = optarg;
			break;
		case 'n':
			c->ro.vm_name = optarg;
			break;
		case 'd':
			c->disk = optarg;
			break;
		case 'b':
			c->base = optarg;
			break;
		case 'a':
			c->api_path = optarg;
			break;
		case 'o':
			c->console_path = optarg;
			break;
		case 'e':
			c->ram_mode = SNAP_RAM_EAGER;
			break;
		case 'w':
			if (!cli_parse_count("--lock-wait", optarg, &c->ro.lock_wait_s))
				return CLI_EXIT_USAGE;
			break;
		case 'v':
			c->verbose = true;
			break;
		case 'V':
			c->verify = true;
			c->ram_mode = SNAP_RAM_EAGER; /* all of RAM must be there to compare */
			break;
		case 'N':
			if (net_opt_parse(&c->nets, optarg, c->err, sizeof(c->err)) < 0) {
				cli_error("restore: %s", c->err);
				net_opts_free(&c->nets);
				return CLI_EXIT_ERROR;
			}
			break;
		case 'C':
			c->check = true;
			break;
		case 'h':
			fputs(restore_usage, stdout);
			return CLI_EXIT_OK;
		default:
			cli_error("restore: unknown or incomplete option '%s': see 'godwit restore "
				  "--help'", argv[optind - 1]);
			return CLI_EXIT_USAGE;
		}
	}
	if (!c->ra.repo) {
		cli_error("restore: pass --repo DIR");
		return CLI_EXIT_USAGE;
	}
	if (c->disk && c->base) {
		cli_error("restore: give --disk (a new image) or --disk-base (an old copy), not both");
		return CLI_EXIT_USAGE;
	}
	return -1;
}

/*
 * Open the repository and the snapshot, and say which one "latest" was. Returns -1 to go
 * on (c->rs open), or the exit status.
 */
static int restore_open_snapshot(struct restore_cmd *c)
{
	int rc;

	if (c->ro.vm_name && strcmp(c->id, "latest") != 0) {
		cli_error("restore: --name picks the latest snapshot of a VM: drop --snapshot %s or "
			  "--name", c->id);
		return CLI_EXIT_USAGE;
	}
	c->ro.s3 = &c->s3;
	rc = cli_repo_args_open(&c->r, &c->s3, &c->ra, c->verbose, c->err, sizeof(c->err));
	if (rc == 0 && c->check) {
		int status = restore_check(c->r, c->id, c->ro.vm_name, c->disk, c->base,
					   c->nets.n);

		repo_close(c->r);
		net_opts_free(&c->nets);
		return status;
	}
	if (rc == 0)
		rc = snap_restore_open(&c->rs, c->r, c->id, &c->ro, c->err, sizeof(c->err));
	if (rc < 0) {
		cli_error("restore: %s", c->err);
		return rc == -EBUSY ? CLI_EXIT_LOCKED : CLI_EXIT_ERROR;
	}
	if (c->rs.lock_note[0])
		fprintf(stderr, "godwit: note: restore: %s\n", c->rs.lock_note);
	if (strcmp(c->id, "latest") == 0) {
		/* Say which one "latest" was: never restore an unexpected snapshot in silence. */
		char when[40];
		time_t t = (time_t)(c->rs.m.created_ns / 1000000000u);
		struct tm tm;

		if (!gmtime_r(&t, &tm) || !strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm))
			snprintf(when, sizeof(when), "?");
		fprintf(stderr, "godwit: restore: snapshot %s of VM %s, taken %s\n", c->rs.m.id,
			c->rs.m.vm_name, when);
	}
	return -1;
}

/* The disk and NIC options against the snapshot's machine. Returns 0, or -1 (said). */
static int restore_check_machine(struct restore_cmd *c)
{
	char what[96];

	if (c->rs.info.disk_bytes && !c->disk && !c->base) {
		cli_error("restore: snapshot %s has a disk: pass --disk NEW.img, or --disk-base "
			  "OLD.img to update an old copy", c->rs.m.id);
		return -1;
	}
	if (!c->rs.info.disk_bytes && (c->disk || c->base)) {
		cli_error("restore: snapshot %s has no disk: drop --disk/--disk-base", c->rs.m.id);
		return -1;
	}
	snprintf(what, sizeof(what), "snapshot %s", c->rs.m.id);
	if (net_opts_check_restore(&c->nets, true, c->rs.info.nnics, what, c->err,
				   sizeof(c->err)) < 0) {
		cli_error("restore: %s", c->err);
		return -1;
	}
	net_opts_apply(&c->nets, &c->cfg);
	return 0;
}

/* Write the snapshot's disk (a new image, or an old copy brought up to date). 0 or -1. */
static int restore_disk(struct restore_cmd *c)
{
	int rc;

	if (!c->rs.info.disk_bytes)
		return 0;
	rc = snap_restore_disk(&c->rs, c->disk, c->base, c->err, sizeof(c->err));
	if (rc < 0) {
		cli_error("restore: %s", c->err);
		return -1;
	}
	c->disk_created = c->disk != NULL;
	c->cfg.disk_path = c->disk ? c->disk : c->base;
	return 0;
}

/*
 * Make the VM and load the snapshot into it (RAM lazily or eagerly, vCPU and device
 * state), then check it with --verify. Returns 0, or -1 (said) with c->vm to destroy.
 */
static int restore_load_vm(struct restore_cmd *c)
{
	int rc;

	c->cfg.console_fd = c->console.fd;
	c->cfg.ram_bytes = c->rs.info.ram_bytes;
	c->cfg.ncpus = c->rs.info.ncpus;
	rc = vm_create_for_restore(&c->vm, &c->cfg, c->err, sizeof(c->err));
	if (rc == 0)
		rc = snap_restore_vm(&c->rs, c->vm, c->ram_mode, &c->lazy, c->err, sizeof(c->err));
	if (rc == 0 && c->verify) {
		mig_test_hold("restore-filled");
		rc = snap_restore_verify(&c->rs, c->vm, c->cfg.disk_path, c->err, sizeof(c->err));
		if (rc == 0 && c->verbose)
			fprintf(stderr, "godwit: restore: --verify: RAM%s match the snapshot\n",
				c->cfg.disk_path ? " and disk" : "");
	}
	if (rc < 0) {
		cli_error("restore: %s", c->err);
		return -1;
	}
	if (c->verbose && c->rs.ram_note[0])
		fprintf(stderr, "godwit: restore: %s: copied RAM before starting instead\n",
			c->rs.ram_note);
	if (c->verbose)
		fprintf(stderr, "godwit: restore: RAM %s in %" PRIu64 " ms\n",
			c->rs.ram_lazy ? "registered for lazy loading" : "copied", c->rs.ram_ms);
	return 0;
}

/*
 * Run the VM until it stops (host opened by vm_host_open), then stop lazy loading and
 * free everything. Returns the exit status.
 */
static int restore_serve(struct restore_cmd *c, struct vm_host *host)
{
	int status, rc;

	host->on_started = restore_started;
	host->on_started_arg = &c->verbose;
	status = vm_host_serve(host);
	if (c->lazy) {
		/* The VM has stopped: nothing touches its RAM any more. */
		rc = lazy_mem_stop(c->lazy, c->err, sizeof(c->err));
		if (rc < 0) {
			cli_error("restore: %s", c->err);
			status = CLI_EXIT_ERROR;
		}
		if (c->verbose)
			report_lazy(c->lazy);
		lazy_mem_free(c->lazy);
	}
	vm_destroy(c->vm);
	cli_console_close(&c->console, false);
	net_opts_free(&c->nets);
	return status;
}

int cmd_restore(int argc, char **argv)
{
	struct restore_cmd c = {
		.id = "latest",
		.ram_mode = SNAP_RAM_LAZY,
		.cfg = { .console_fd = STDOUT_FILENO },
		.console = { .fd = -1 },
	};
	struct vm_host host;
	int status;

	status = restore_parse(argc, argv, &c);
	if (status >= 0)
		return status;
	vm_host_signals();
	status = restore_open_snapshot(&c);
	if (status >= 0)
		return status;
	status = CLI_EXIT_ERROR;
	if (restore_check_machine(&c) < 0 || restore_disk(&c) < 0)
		goto out_rs;
	if (cli_console_open(&c.console, c.console_path) < 0)
		goto out_disk;
	if (restore_load_vm(&c) < 0)
		goto out_vm;
	snap_restore_close(&c.rs);
	/* Everything is open: the sandbox before the first vCPU runs. */
	if (vm_host_open(&host, c.vm, c.api_path, &c.access) != CLI_EXIT_OK)
		goto out_lazy;
	return restore_serve(&c, &host);
out_lazy:
	if (c.lazy) {
		lazy_mem_stop(c.lazy, c.err, sizeof(c.err));
		lazy_mem_free(c.lazy);
	}
out_vm:
	vm_destroy(c.vm);
	cli_console_close(&c.console, true);
out_disk:
	if (c.disk_created)
		unlink(c.disk);
out_rs:
	snap_restore_close(&c.rs);
	net_opts_free(&c.nets);
	return status;
}
