/* godwit restore: start a VM from a snapshot in an image repository. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/vm_host.h"
#include "snapshot/restore.h"

static const char restore_usage[] =
	"usage: godwit restore --repo DIR [--snapshot ID|latest] [options]\n"
	"  --repo DIR            the image repository\n"
	"  --snapshot ID         which snapshot (default latest)\n"
	"  --disk PATH           write the snapshot's disk to this new image\n"
	"  --disk-base OLD.img   or bring this stale copy up to date in place and use it\n"
	"  --api SOCKET          serve the control API\n"
	"  --console FILE        the guest's serial output (default stdout)\n";

int cmd_restore(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "repo", required_argument, NULL, 'r' },
		{ "snapshot", required_argument, NULL, 's' },
		{ "disk", required_argument, NULL, 'd' },
		{ "disk-base", required_argument, NULL, 'b' },
		{ "api", required_argument, NULL, 'a' },
		{ "console", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *repo = NULL, *id = "latest", *disk = NULL, *base = NULL;
	const char *api_path = NULL, *console_path = NULL;
	struct vm_config cfg = { .console_fd = STDOUT_FILENO };
	struct snap_restore rs;
	struct vm_host host;
	struct vm *vm = NULL;
	bool console_created = false, disk_created = false;
	char err[512] = "";
	int opt, rc, status = CLI_EXIT_ERROR;

	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'r':
			repo = optarg;
			break;
		case 's':
			id = optarg;
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
	rc = snap_restore_open(&rs, repo, id, err, sizeof(err));
	if (rc < 0) {
		cli_error("restore: %s", err);
		return CLI_EXIT_ERROR;
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
	if (rs.info.disk_bytes) {
		rc = snap_restore_disk(&rs, disk, base, err, sizeof(err));
		if (rc < 0) {
			cli_error("restore: %s", err);
			goto out_rs;
		}
		disk_created = disk != NULL;
		cfg.disk_path = disk ? disk : base;
	}
	if (console_path) {
		console_created = access(console_path, F_OK) != 0;
		cfg.console_fd = open(console_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (cfg.console_fd < 0) {
			cli_error("console file %s: %s", console_path, strerror(errno));
			goto out_disk;
		}
	}
	cfg.ram_bytes = rs.info.ram_bytes;
	cfg.ncpus = rs.info.ncpus;
	rc = vm_create_for_restore(&vm, &cfg, err, sizeof(err));
	if (rc == 0)
		rc = snap_restore_vm(&rs, vm, err, sizeof(err));
	if (rc < 0) {
		cli_error("restore: %s", err);
		goto out_vm;
	}
	snap_restore_close(&rs);
	status = vm_host_serve(&host, vm, api_path, false);
	vm_destroy(vm);
	if (console_path)
		close(cfg.console_fd);
	return status;
out_vm:
	vm_destroy(vm);
	if (console_path) {
		close(cfg.console_fd);
		if (console_created)
			unlink(console_path);
	}
out_disk:
	if (disk_created)
		unlink(disk);
out_rs:
	snap_restore_close(&rs);
	return status;
}
