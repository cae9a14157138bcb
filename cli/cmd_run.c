/* godwit run: boot a VM from a kernel, serve its control API, and wait for it to stop. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/net_opts.h"
#include "cli/size.h"
#include "cli/vm_host.h"
#include "vmm/x86/cpuid.h"
#include "vmm/vm.h"

static const char run_usage[] =
	"usage: godwit run --kernel FILE [options]\n"
	"  --kernel FILE        Linux bzImage, or an ELF kernel with a PVH entry note\n"
	"  --initrd FILE        initial ramdisk\n"
	"  --cmdline STR        kernel command line\n"
	"  --mem SIZE           guest RAM, e.g. 512M or 2G (default 256M)\n"
	"  --cpus N             vCPUs (default 1)\n"
	"  --disk FILE          raw disk image, attached as virtio-blk\n"
	NET_OPT_USAGE
	"  --api SOCKET         serve the JSON control API on this UNIX socket\n"
	VM_HOST_ACCESS_USAGE
	"  --console FILE       write the guest's serial output here (default stdout)\n"
	"  --dirty-ring         track dirty pages with KVM's dirty ring (default: bitmap)\n"
	"  --cpu-features SPEC  CPUID policy: a template (host, pvm-test, baseline) and/or\n"
	"                       -feature/+feature items, comma-separated; 'help' lists names\n";

static int parse_uint(const char *s, unsigned *out)
{
	char *end;
	unsigned long v;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > UINT_MAX)
		return -EINVAL;
	*out = (unsigned)v;
	return 0;
}

int cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "kernel", required_argument, NULL, 'k' },
		{ "initrd", required_argument, NULL, 'i' },
		{ "cmdline", required_argument, NULL, 'c' },
		{ "mem", required_argument, NULL, 'm' },
		{ "cpus", required_argument, NULL, 'n' },
		{ "disk", required_argument, NULL, 'd' },
		{ "api", required_argument, NULL, 'a' },
		{ "console", required_argument, NULL, 'o' },
		{ "cpu-features", required_argument, NULL, 'f' },
		{ "dirty-ring", no_argument, NULL, 'R' },
		{ "net", required_argument, NULL, 'N' },
		{ "help", no_argument, NULL, 'h' },
		VM_HOST_ACCESS_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	struct vm_config cfg = { .ram_bytes = 256ULL << 20, .ncpus = 1, .console_fd = 1 };
	const char *api_path = NULL, *console_path = NULL;
	struct vm *vm = NULL;
	struct vm_host host;
	struct vm_host_access access = { 0 };
	struct cli_console console = { .fd = -1 };
	struct net_opts nets = { 0 };
	bool started = false;
	char err[512] = "";
	int opt, rc, status;

	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		int taken = vm_host_opt(opt, optarg, &access);

		if (taken < 0)
			return CLI_EXIT_ERROR;
		if (taken)
			continue;
		switch (opt) {
		case 'k':
			cfg.kernel_path = optarg;
			break;
		case 'i':
			cfg.initrd_path = optarg;
			break;
		case 'c':
			cfg.cmdline = optarg;
			break;
		case 'm':
			if (cli_parse_size(optarg, &cfg.ram_bytes) < 0) {
				cli_error("--mem '%s' is not a size: give e.g. 512M or 2G", optarg);
				return CLI_EXIT_ERROR;
			}
			break;
		case 'n':
			if (parse_uint(optarg, &cfg.ncpus) < 0) {
				cli_error("--cpus '%s' is not a number: give e.g. 2", optarg);
				return CLI_EXIT_ERROR;
			}
			break;
		case 'd':
			cfg.disk_path = optarg;
			break;
		case 'a':
			api_path = optarg;
			break;
		case 'o':
			console_path = optarg;
			break;
		case 'f':
			if (strcmp(optarg, "help") == 0) {
				char names[2048];

				cpuid_feature_names(names, sizeof(names));
				printf("%s\n", names);
				return CLI_EXIT_OK;
			}
			cfg.cpu_features = optarg;
			break;
		case 'R':
			cfg.dirty_ring = true;
			break;
		case 'N':
			if (net_opt_parse(&nets, optarg, err, sizeof(err)) < 0) {
				cli_error("run: %s", err);
				net_opts_free(&nets);
				return CLI_EXIT_ERROR;
			}
			break;
		case 'h':
			fputs(run_usage, stdout);
			return CLI_EXIT_OK;
		default:
			cli_error("run: unknown or incomplete option '%s': see 'godwit run --help'",
				  argv[optind - 1]);
			net_opts_free(&nets);
			return CLI_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		cli_error("run: unexpected argument '%s': see 'godwit run --help'", argv[optind]);
		net_opts_free(&nets);
		return CLI_EXIT_USAGE;
	}
	if (!cfg.kernel_path) {
		cli_error("run: no kernel given: pass --kernel FILE");
		net_opts_free(&nets);
		return CLI_EXIT_USAGE;
	}
	net_opts_apply(&nets, &cfg);

	vm_host_signals();
	if (cli_console_open(&console, console_path) < 0) {
		net_opts_free(&nets);
		return CLI_EXIT_ERROR;
	}
	cfg.console_fd = console.fd;
	rc = vm_create(&vm, &cfg, err, sizeof(err));
	if (rc < 0) {
		cli_error("%s", err);
		status = CLI_EXIT_ERROR;
		goto out_console;
	}
	status = vm_host_open(&host, vm, api_path, &access);
	if (status == CLI_EXIT_OK)
		status = vm_host_serve(&host);
	/* Only a host that could not open leaves it unstarted. */
	started = vm_state(vm) != VM_STATE_CREATED;
	vm_destroy(vm);
out_console:
	/* A VM that never started leaves nothing behind. */
	cli_console_close(&console, status == CLI_EXIT_ERROR && !started);
	net_opts_free(&nets);
	return status;
}
