/* godwit receive: wait for one incoming VM, then run it like godwit run. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/mig_opts.h"
#include "cli/net_opts.h"
#include "cli/vm_host.h"

static const char receive_usage[] =
	"usage: godwit receive --listen HOST:PORT AUTH [options]\n"
	"  --listen HOST:PORT     where to wait for the source (e.g. 0.0.0.0:7070)\n"
	MIG_AUTH_USAGE
	"  --disk PATH            the VM's disk: the shared image (same size as the source's),\n"
	"                         or, when the source migrates --with-disk, a new file\n"
	"  --api SOCKET           serve the control API once the VM runs\n"
	VM_HOST_ACCESS_USAGE
	"  --console FILE         the guest's serial output (default stdout)\n"
	"  --net tap=NAME|tapfd=N the tap for the VM's next NIC: one per NIC, in order (the\n"
	"                         NIC keeps its MAC; a count that differs fails the move)\n"
	"  --cpu-features SPEC    CPUID policy of the VM shell (the source's state rules)\n"
	"  --accept-timeout SECS  give up if no source connects in time (default: wait)\n"
	"  --allow-from CIDR      take sources only from this address block (repeatable;\n"
	"                         default: any source that authenticates)\n";

struct receive_ctx {
	const char *disk_path;
	int console_fd;
	const char *cpu_features;
	struct net_opts nets;
	bool created_disk; /* we made disk_path for a --with-disk source */
	/* What serves the VM once it is in: opened (the sandbox entered) before it runs. */
	struct vm_host host;
	const char *api_path;
	const struct vm_host_access *access;
	bool host_open;
};

/* Build the VM shell the source's HELLO describes. */
static int receive_create_vm(void *arg, const struct mig_hello *h, struct vm **out, char *err,
			     size_t errlen)
{
	struct receive_ctx *ctx = arg;
	struct vm_config cfg = {
		.ram_bytes = h->ram_bytes,
		.ncpus = h->ncpus,
		.console_fd = ctx->console_fd,
		.cpu_features = ctx->cpu_features,
	};

	if (h->disk_bytes && !ctx->disk_path) {
		snprintf(err, errlen, "the source VM has a disk: start 'godwit receive' with --disk "
			 "PATH");
		return -EINVAL;
	}
	if (!h->disk_bytes && ctx->disk_path) {
		snprintf(err, errlen, "the source VM has no disk, but --disk %s was given",
			 ctx->disk_path);
		return -EINVAL;
	}
	if ((h->flags & MIG_FLAG_WITH_DISK) && (!h->disk_bytes || !ctx->disk_path)) {
		/* mig_hello_decode refuses such a HELLO; never reach open() without a path. */
		snprintf(err, errlen, "the source sends a disk but describes none");
		return -EPROTO;
	}
	if (h->flags & MIG_FLAG_WITH_DISK) {
		/* A new image: never overwrite one, it may be the source's own. */
		int fd = open(ctx->disk_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

		if (fd < 0) {
			snprintf(err, errlen, "disk %s: %s (the source sends its disk: name a new file)",
				 ctx->disk_path, strerror(errno));
			return -errno;
		}
		ctx->created_disk = true;
		if (ftruncate(fd, (off_t)h->disk_bytes) < 0) {
			snprintf(err, errlen, "disk %s: %s", ctx->disk_path, strerror(errno));
			close(fd);
			return -errno;
		}
		close(fd);
	}
	cfg.disk_path = ctx->disk_path;
	net_opts_apply(&ctx->nets, &cfg);
	return vm_create_for_restore(out, &cfg, err, errlen);
}

/* The VM is in and not running yet: the API, then the sandbox (vm_host_open). */
static int receive_ready(void *arg, struct vm *vm, char *err, size_t errlen)
{
	struct receive_ctx *ctx = arg;

	if (vm_host_open(&ctx->host, vm, ctx->api_path, ctx->access) != CLI_EXIT_OK) {
		snprintf(err, errlen, "the destination could not serve the VM (its log says why)");
		return -EPERM;
	}
	ctx->host_open = true;
	return 0;
}

/* The guest runs here now: tell this host's network (vm_host_announce). */
static void receive_started(void *arg, struct vm *vm, char *note, size_t len)
{
	(void)arg;
	vm_host_announce(vm, true, note, len);
}

static void receive_listening(void *arg, const char *hostport)
{
	(void)arg;
	fprintf(stderr, "godwit: waiting for a VM on %s\n", hostport);
}

/* A stranger, a failed handshake or garbage: one line, and the receiver waits on. */
static void receive_rejected(void *arg, const char *line)
{
	(void)arg;
	cli_error("receive: %s", line);
}

/*
 * Read argv into p, ctx and the rest (argc, argv, p, ctx, access, console_path), then check
 * the auth and NIC options. Returns -1 to go on, or the exit status (usage, help, bad
 * input; ctx's NICs freed).
 */
static int receive_parse(int argc, char **argv, struct mig_dest_params *p,
			 struct receive_ctx *ctx, struct vm_host_access *access,
			 const char **console_path)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "disk", required_argument, NULL, 'd' },
		{ "api", required_argument, NULL, 'a' },
		{ "console", required_argument, NULL, 'o' },
		{ "cpu-features", required_argument, NULL, 'f' },
		{ "accept-timeout", required_argument, NULL, 't' },
		{ "net", required_argument, NULL, 'N' },
		{ "allow-from", required_argument, NULL, 'F' },
		{ "help", no_argument, NULL, 'h' },
		VM_HOST_ACCESS_OPTIONS,
		MIG_AUTH_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	char err[512] = "";
	int opt;

	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		char *end;
		int taken = vm_host_opt(opt, optarg, access);

		if (taken < 0)
			return CLI_EXIT_ERROR;
		if (taken)
			continue;
		if (mig_opt_auth(opt, optarg, &p->auth))
			continue;
		switch (opt) {
		case 'l':
			snprintf(p->listen, sizeof(p->listen), "%s", optarg);
			break;
		case 'd':
			ctx->disk_path = optarg;
			break;
		case 'a':
			ctx->api_path = optarg;
			break;
		case 'o':
			*console_path = optarg;
			break;
		case 'f':
			ctx->cpu_features = optarg;
			break;
		case 'N':
			if (net_opt_parse(&ctx->nets, optarg, err, sizeof(err)) < 0) {
				cli_error("receive: %s", err);
				net_opts_free(&ctx->nets);
				return CLI_EXIT_ERROR;
			}
			break;
		case 't':
			p->accept_timeout_ms = (int)strtol(optarg, &end, 10) * 1000;
			if (*end || p->accept_timeout_ms <= 0) {
				cli_error("--accept-timeout '%s' is not a positive number of seconds",
					  optarg);
				return CLI_EXIT_ERROR;
			}
			break;
		case 'F':
			if (p->n_allow_from == MIG_MAX_ALLOW_FROM ||
			    mig_cidr_parse(optarg, &p->allow_from[p->n_allow_from]) < 0) {
				cli_error("receive: --allow-from '%s' is not an address block: give e.g. "
					  "10.0.0.0/24 or fd00::/64 (at most %d)", optarg,
					  MIG_MAX_ALLOW_FROM);
				net_opts_free(&ctx->nets);
				return CLI_EXIT_ERROR;
			}
			p->n_allow_from++;
			break;
		case 'h':
			fputs(receive_usage, stdout);
			return CLI_EXIT_OK;
		default:
			cli_error("receive: unknown or incomplete option '%s': see 'godwit receive "
				  "--help'", argv[optind - 1]);
			return CLI_EXIT_USAGE;
		}
	}
	if (!p->listen[0]) {
		cli_error("receive: pass --listen HOST:PORT");
		return CLI_EXIT_USAGE;
	}
	if (mig_auth_check(&p->auth, err, sizeof(err)) < 0 ||
	    net_opts_check_restore(&ctx->nets, false, 0, "the incoming VM", err, sizeof(err)) < 0) {
		cli_error("receive: %s", err);
		net_opts_free(&ctx->nets);
		return CLI_EXIT_ERROR;
	}
	for (unsigned i = 0; i < ctx->nets.n; i++) {
		if (vm_net_check(&ctx->nets.net[i], err, sizeof(err)) < 0) {
			cli_error("receive: %s", err);
			net_opts_free(&ctx->nets);
			return CLI_EXIT_ERROR;
		}
	}
	return -1;
}

/* A receive that failed: close the VM's host if it was opened, remove the disk we made. */
static void receive_discard(struct receive_ctx *ctx)
{
	if (ctx->host_open)
		vm_host_close(&ctx->host);
	if (ctx->created_disk) {
		char log[PATH_MAX];

		/* The image we made, and the change log its VM shell kept beside it. */
		unlink(ctx->disk_path);
		if (snprintf(log, sizeof(log), "%s.gwlog", ctx->disk_path) < (int)sizeof(log))
			unlink(log);
	}
}

int cmd_receive(int argc, char **argv)
{
	struct mig_dest_params p = { .on_listen = receive_listening,
				     .on_ready = receive_ready,
				     .on_started = receive_started,
				     .on_reject = receive_rejected };
	struct receive_ctx ctx = { .console_fd = STDOUT_FILENO };
	const char *console_path = NULL;
	struct vm_host_access access = { 0 };
	struct vm *vm = NULL;
	struct cli_console console = { .fd = -1 };
	char err[512] = "";
	int rc, status;

	status = receive_parse(argc, argv, &p, &ctx, &access, &console_path);
	if (status >= 0)
		return status;
	vm_host_signals();
	if (cli_console_open(&console, console_path) < 0) {
		net_opts_free(&ctx.nets);
		return CLI_EXIT_ERROR;
	}
	ctx.console_fd = console.fd;
	ctx.access = &access;
	/* Strangers may connect from here on: the syscall filter first (the rest follows). */
	if (sandbox_filter(&access.sandbox, err, sizeof(err)) < 0) {
		cli_error("receive: %s", err);
		status = CLI_EXIT_ERROR;
		goto out_console;
	}
	rc = mig_receive(&p, receive_create_vm, &ctx, &vm, err, sizeof(err));
	if (rc < 0) {
		cli_error("receive: %s", err);
		receive_discard(&ctx);
		status = CLI_EXIT_ERROR;
		goto out_console;
	}
	if (err[0])
		cli_error("receive: %s", err); /* the VM runs, but the source may not know */
	status = vm_host_serve(&ctx.host);
	vm_destroy(vm);
out_console:
	cli_console_close(&console, !vm);
	net_opts_free(&ctx.nets);
	return status;
}
