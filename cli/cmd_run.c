/* godwit run: boot a VM from a kernel, serve its control API, and wait for it to stop. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cli/api.h"
#include "cli/cli.h"
#include "vmm/cpuid.h"
#include "vmm/vm.h"

struct run_ctx {
	struct vm *vm;
	struct timespec started;
};

static const char run_usage[] =
	"usage: godwit run --kernel FILE [options]\n"
	"  --kernel FILE        Linux bzImage, or an ELF kernel with a PVH entry note\n"
	"  --initrd FILE        initial ramdisk\n"
	"  --cmdline STR        kernel command line\n"
	"  --mem SIZE           guest RAM, e.g. 512M or 2G (default 256M)\n"
	"  --cpus N             vCPUs (default 1)\n"
	"  --disk FILE          raw disk image, attached as virtio-blk\n"
	"  --api SOCKET         serve the JSON control API on this UNIX socket\n"
	"  --console FILE       write the guest's serial output here (default stdout)\n"
	"  --cpu-features SPEC  CPUID policy: a template (host, pvm-test, baseline) and/or\n"
	"                       -feature/+feature items, comma-separated; 'help' lists names\n";

static uint64_t ms_since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)(now.tv_sec - t0->tv_sec) * 1000 +
	       (uint64_t)((now.tv_nsec - t0->tv_nsec) / 1000000);
}

static void api_status(void *arg, const struct json_obj *req, char *reply, size_t len)
{
	struct run_ctx *ctx = arg;

	(void)req;
	snprintf(reply, len,
		 "{\"ok\":true,\"state\":\"%s\",\"vcpus\":%u,\"mem_mib\":%" PRIu64
		 ",\"uptime_ms\":%" PRIu64 ",\"version\":\"%s\"}",
		 vm_state_name(vm_state(ctx->vm)), vm_ncpus(ctx->vm),
		 vm_ram_bytes(ctx->vm) >> 20, ms_since(&ctx->started), GODWIT_VERSION);
}

static void api_reply_state(struct run_ctx *ctx, int rc, const char *what, char *reply,
			    size_t len)
{
	const char *state = vm_state_name(vm_state(ctx->vm));

	if (rc < 0)
		snprintf(reply, len, "{\"ok\":false,\"error\":\"cannot %s a VM that is %s\","
			 "\"state\":\"%s\"}", what, state, state);
	else
		snprintf(reply, len, "{\"ok\":true,\"state\":\"%s\"}", state);
}

static void api_pause(void *arg, const struct json_obj *req, char *reply, size_t len)
{
	struct run_ctx *ctx = arg;

	(void)req;
	api_reply_state(ctx, vm_pause(ctx->vm), "pause", reply, len);
}

static void api_resume(void *arg, const struct json_obj *req, char *reply, size_t len)
{
	struct run_ctx *ctx = arg;

	(void)req;
	api_reply_state(ctx, vm_resume(ctx->vm), "resume", reply, len);
}

static void api_quit(void *arg, const struct json_obj *req, char *reply, size_t len)
{
	struct run_ctx *ctx = arg;

	(void)req;
	vm_request_stop(ctx->vm);
	snprintf(reply, len, "{\"ok\":true,\"state\":\"stopped\"}");
}

static const struct api_cmd run_api_cmds[] = {
	{ "status", api_status },
	{ "pause", api_pause },
	{ "resume", api_resume },
	{ "quit", api_quit },
	{ NULL, NULL },
};

/* SIGINT/SIGTERM stop the VM cleanly so the API socket and terminal are restored. */
static void *signal_thread(void *arg)
{
	struct vm *vm = arg;
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	if (sigwait(&set, &sig) == 0)
		vm_request_stop(vm);
	return NULL;
}

/* Host terminal input goes to the guest's serial port. */
static void *stdin_thread(void *arg)
{
	struct vm *vm = arg;
	char buf[64];

	for (;;) {
		ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		vm_console_input(vm, buf, (size_t)n);
	}
	return NULL;
}

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

static void report_exit(const struct vm_exit_info *x)
{
	char bytes[3 * sizeof(x->insn) + 1] = "";
	size_t off = 0;

	for (unsigned i = 0; i < x->insn_len && off < sizeof(bytes); i++)
		off += (size_t)snprintf(bytes + off, sizeof(bytes) - off, "%s%02x", i ? " " : "",
					x->insn[i]);
	cli_error("guest stopped on vCPU %u: %s, rip 0x%" PRIx64 ", instruction bytes: %s",
		  x->vcpu, x->detail, x->rip, x->insn_len ? bytes : "(unreadable)");
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
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct vm_config cfg = { .ram_bytes = 256ULL << 20, .ncpus = 1, .console_fd = 1 };
	const char *api_path = NULL, *console_path = NULL;
	struct run_ctx ctx = { 0 };
	struct api_server *api = NULL;
	struct vm_exit_info exit_info;
	struct termios tio_saved;
	bool tty = false, console_created = false, started = false;
	pthread_t sig_tid, in_tid;
	sigset_t set;
	char err[512] = "";
	int opt, rc, status;

	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
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
			if (vm_parse_size(optarg, &cfg.ram_bytes) < 0) {
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
		case 'h':
			fputs(run_usage, stdout);
			return CLI_EXIT_OK;
		default:
			cli_error("run: unknown or incomplete option '%s': see 'godwit run --help'",
				  argv[optind - 1]);
			return CLI_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		cli_error("run: unexpected argument '%s': see 'godwit run --help'", argv[optind]);
		return CLI_EXIT_USAGE;
	}
	if (!cfg.kernel_path) {
		cli_error("run: no kernel given: pass --kernel FILE");
		return CLI_EXIT_USAGE;
	}

	/* Signals are taken by signal_thread alone; SIGPIPE never kills the VMM. */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	if (console_path) {
		console_created = access(console_path, F_OK) != 0;
		cfg.console_fd = open(console_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (cfg.console_fd < 0) {
			cli_error("console file %s: %s", console_path, strerror(errno));
			return CLI_EXIT_ERROR;
		}
	}
	rc = vm_create(&ctx.vm, &cfg, err, sizeof(err));
	if (rc < 0) {
		cli_error("%s", err);
		status = CLI_EXIT_ERROR;
		goto out_console;
	}
	clock_gettime(CLOCK_MONOTONIC, &ctx.started);
	if (api_path) {
		rc = api_server_start(&api, api_path, run_api_cmds, &ctx, err, sizeof(err));
		if (rc < 0) {
			cli_error("%s", err);
			status = CLI_EXIT_ERROR;
			goto out_vm;
		}
	}
	if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &tio_saved) == 0) {
		struct termios raw = tio_saved;

		/* Keystrokes go to the guest one by one; Ctrl-C still stops godwit. */
		raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
		tcsetattr(STDIN_FILENO, TCSANOW, &raw);
		tty = true;
	}
	rc = vm_start(ctx.vm);
	started = true;
	if (rc < 0)
		cli_error("cannot start the vCPUs: %s", strerror(-rc));
	if (pthread_create(&sig_tid, NULL, signal_thread, ctx.vm) == 0)
		pthread_detach(sig_tid);
	if (tty && pthread_create(&in_tid, NULL, stdin_thread, ctx.vm) == 0)
		pthread_detach(in_tid);

	vm_wait(ctx.vm, &exit_info);
	switch (exit_info.kind) {
	case VM_EXIT_POWEROFF:
	case VM_EXIT_RESET:
	case VM_EXIT_QUIT:
		status = CLI_EXIT_OK;
		break;
	case VM_EXIT_HOST_ERROR:
		report_exit(&exit_info);
		status = CLI_EXIT_ERROR;
		break;
	default:
		report_exit(&exit_info);
		status = CLI_EXIT_GUEST_CRASH;
		break;
	}
	if (tty)
		tcsetattr(STDIN_FILENO, TCSANOW, &tio_saved);
	api_server_stop(api);
out_vm:
	vm_destroy(ctx.vm);
out_console:
	if (console_path) {
		close(cfg.console_fd);
		/* A VM that never started leaves nothing behind. */
		if (status == CLI_EXIT_ERROR && !started && console_created)
			unlink(console_path);
	}
	return status;
}
