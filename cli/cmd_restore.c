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
#include "cli/restore_check.h"
#include "cli/vm_host.h"
#include "snapshot/lazy_mem.h"
#include "snapshot/manifest.h"
#include "snapshot/repo.h"
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

int cmd_restore(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "repo", required_argument, NULL, 'r' },
		{ "key-file", required_argument, NULL, 'k' },
		{ "endpoint", required_argument, NULL, 'E' },
		{ "s3-retry", required_argument, NULL, 'R' },
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
	const char *repo = NULL, *id = "latest", *disk = NULL, *base = NULL;
	const char *key_file = NULL, *endpoint = NULL;
	struct snap_restore_opts ro = { 0 };
	struct backend_s3_opts s3;
	int s3_retry = -1;
	struct repo *r;
	const char *api_path = NULL, *console_path = NULL;
	struct vm_config cfg = { .console_fd = STDOUT_FILENO };
	struct snap_restore rs;
	struct vm_host host;
	struct vm_host_access access = { 0 };
	struct vm *vm = NULL;
	struct lazy_mem *lazy = NULL;
	enum snap_ram_mode ram_mode = SNAP_RAM_LAZY;
	struct cli_console console = { .fd = -1 };
	struct net_opts nets = { 0 };
	bool disk_created = false, verbose = false, verify = false, check = false;
	char err[512] = "";
	int opt, rc, status = CLI_EXIT_ERROR;

	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		int taken = vm_host_opt(opt, optarg, &access);

		if (taken < 0)
			return CLI_EXIT_ERROR;
		if (taken)
			continue;
		switch (opt) {
		case 'r':
			repo = optarg;
			break;
		case 'k':
			key_file = optarg;
			break;
		case 'E':
			endpoint = optarg;
			break;
		case 'R':
			if (!cli_parse_s3_retry(optarg, &s3_retry))
				return CLI_EXIT_USAGE;
			break;
		case 's':
			id = optarg;
			break;
		case 'n':
			ro.vm_name = optarg;
			break;
		case 'd':
			disk = optarg;
			break;
		case 'b':
			base = optarg;
			break;
		case 'a':
			api_path = optarg;
			break;
		case 'o':
			console_path = optarg;
			break;
		case 'e':
			ram_mode = SNAP_RAM_EAGER;
			break;
		case 'w':
			if (!cli_parse_count("--lock-wait", optarg, &ro.lock_wait_s))
				return CLI_EXIT_USAGE;
			break;
		case 'v':
			verbose = true;
			break;
		case 'V':
			verify = true;
			ram_mode = SNAP_RAM_EAGER; /* all of RAM must be there to compare */
			break;
		case 'N':
			if (net_opt_parse(&nets, optarg, err, sizeof(err)) < 0) {
				cli_error("restore: %s", err);
				net_opts_free(&nets);
				return CLI_EXIT_ERROR;
			}
			break;
		case 'C':
			check = true;
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
	if (!repo) {
		cli_error("restore: pass --repo DIR");
		return CLI_EXIT_USAGE;
	}
	if (disk && base) {
		cli_error("restore: give --disk (a new image) or --disk-base (an old copy), not both");
		return CLI_EXIT_USAGE;
	}
	vm_host_signals();
	if (ro.vm_name && strcmp(id, "latest") != 0) {
		cli_error("restore: --name picks the latest snapshot of a VM: drop --snapshot %s or "
			  "--name", id);
		return CLI_EXIT_USAGE;
	}
	cli_s3_opts(&s3, endpoint, s3_retry, verbose);
	ro.s3 = &s3;
	rc = cli_repo_open(&r, repo, &s3, key_file, err, sizeof(err));
	if (rc == 0 && check) {
		status = restore_check(r, id, ro.vm_name, disk, base, nets.n);
		repo_close(r);
		net_opts_free(&nets);
		return status;
	}
	if (rc == 0)
		rc = snap_restore_open(&rs, r, id, &ro, err, sizeof(err));
	if (rc < 0) {
		cli_error("restore: %s", err);
		return rc == -EBUSY ? CLI_EXIT_LOCKED : CLI_EXIT_ERROR;
	}
	if (rs.lock_note[0])
		fprintf(stderr, "godwit: note: restore: %s\n", rs.lock_note);
	if (strcmp(id, "latest") == 0) {
		/* Say which one "latest" was: never restore an unexpected snapshot in silence. */
		char when[40];
		time_t t = (time_t)(rs.m.created_ns / 1000000000u);
		struct tm tm;

		if (!gmtime_r(&t, &tm) || !strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm))
			snprintf(when, sizeof(when), "?");
		fprintf(stderr, "godwit: restore: snapshot %s of VM %s, taken %s\n", rs.m.id,
			rs.m.vm_name, when);
	}
	if (rs.info.disk_bytes && !disk && !base) {
		cli_error("restore: snapshot %s has a disk: pass --disk NEW.img, or --disk-base "
			  "OLD.img to update an old copy", rs.m.id);
		goto out_rs;
	}
	if (!rs.info.disk_bytes && (disk || base)) {
		cli_error("restore: snapshot %s has no disk: drop --disk/--disk-base", rs.m.id);
		goto out_rs;
	}
	{
		char what[96];

		snprintf(what, sizeof(what), "snapshot %s", rs.m.id);
		if (net_opts_check_restore(&nets, true, rs.info.nnics, what, err, sizeof(err)) < 0) {
			cli_error("restore: %s", err);
			goto out_rs;
		}
		net_opts_apply(&nets, &cfg);
	}
	if (rs.info.disk_bytes) {
		rc = snap_restore_disk(&rs, disk, base, err, sizeof(err));
		if (rc < 0) {
			cli_error("restore: %s", err);
			goto out_rs;
		}
		disk_created = disk != NULL;
		cfg.disk_path = disk ? disk : base;
	}
	if (cli_console_open(&console, console_path) < 0)
		goto out_disk;
	cfg.console_fd = console.fd;
	cfg.ram_bytes = rs.info.ram_bytes;
	cfg.ncpus = rs.info.ncpus;
	rc = vm_create_for_restore(&vm, &cfg, err, sizeof(err));
	if (rc == 0)
		rc = snap_restore_vm(&rs, vm, ram_mode, &lazy, err, sizeof(err));
	if (rc == 0 && verify) {
		mig_test_hold("restore-filled");
		rc = snap_restore_verify(&rs, vm, cfg.disk_path, err, sizeof(err));
		if (rc == 0 && verbose)
			fprintf(stderr, "godwit: restore: --verify: RAM%s match the snapshot\n",
				cfg.disk_path ? " and disk" : "");
	}
	if (rc < 0) {
		cli_error("restore: %s", err);
		goto out_vm;
	}
	if (verbose && rs.ram_note[0])
		fprintf(stderr, "godwit: restore: %s: copied RAM before starting instead\n",
			rs.ram_note);
	if (verbose)
		fprintf(stderr, "godwit: restore: RAM %s in %" PRIu64 " ms\n",
			rs.ram_lazy ? "registered for lazy loading" : "copied", rs.ram_ms);
	snap_restore_close(&rs);
	/* Everything is open: the sandbox before the first vCPU runs. */
	if (vm_host_open(&host, vm, api_path, &access) != CLI_EXIT_OK)
		goto out_lazy;
	host.on_started = restore_started;
	host.on_started_arg = &verbose;
	status = vm_host_serve(&host);
	if (lazy) {
		/* The VM has stopped: nothing touches its RAM any more. */
		rc = lazy_mem_stop(lazy, err, sizeof(err));
		if (rc < 0) {
			cli_error("restore: %s", err);
			status = CLI_EXIT_ERROR;
		}
		if (verbose)
			report_lazy(lazy);
		lazy_mem_free(lazy);
	}
	vm_destroy(vm);
	cli_console_close(&console, false);
	net_opts_free(&nets);
	return status;
out_lazy:
	if (lazy) {
		lazy_mem_stop(lazy, err, sizeof(err));
		lazy_mem_free(lazy);
	}
out_vm:
	vm_destroy(vm);
	cli_console_close(&console, true);
out_disk:
	if (disk_created)
		unlink(disk);
out_rs:
	snap_restore_close(&rs);
	net_opts_free(&nets);
	return status;
}
