/* The godwit binary: dispatch to a subcommand. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

void cli_error(const char *fmt, ...)
{
	va_list ap;

	fputs("godwit: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void usage(FILE *f)
{
	fputs("usage: godwit COMMAND [OPTIONS]\n"
	      "\n"
	      "commands:\n"
	      "  run       boot a VM: godwit run --kernel FILE [--initrd FILE] [--cmdline STR]\n"
	      "            [--mem SIZE] [--cpus N] [--disk RAW_IMAGE] [--api SOCKET]\n"
	      "            [--console FILE] [--cpu-features SPEC]\n"
	      "  migrate   move a running VM to another host: godwit migrate --api SOCKET\n"
	      "            --to HOST:PORT (--psk-file FILE | --tls-cert/--tls-key/--tls-ca)\n"
	      "  receive   wait for an incoming VM and run it: godwit receive --listen\n"
	      "            HOST:PORT (--psk-file FILE | ...) [--disk PATH] [--api SOCKET]\n"
	      "  snapshot  snapshot a running VM into a repository: godwit snapshot --api SOCKET\n"
	      "            --repo DIR (prints the snapshot id)\n"
	      "  restore   start a VM from a snapshot: godwit restore --repo DIR\n"
	      "            [--snapshot ID|latest] [--disk NEW.img | --disk-base OLD.img]\n"
	      "  images    list | inspect | verify the snapshots of a repository: --repo DIR\n"
	      "  repo      init: create an image repository: godwit repo init --repo DIR\n"
	      "  version   print the version\n"
	      "\n"
	      "'godwit COMMAND --help' describes a command.\n", f);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if (strcmp(argv[1], "run") == 0)
		return cmd_run(argc - 1, argv + 1);
	if (strcmp(argv[1], "migrate") == 0)
		return cmd_migrate(argc - 1, argv + 1);
	if (strcmp(argv[1], "receive") == 0)
		return cmd_receive(argc - 1, argv + 1);
	if (strcmp(argv[1], "snapshot") == 0)
		return cmd_snapshot(argc - 1, argv + 1);
	if (strcmp(argv[1], "restore") == 0)
		return cmd_restore(argc - 1, argv + 1);
	if (strcmp(argv[1], "images") == 0)
		return cmd_images(argc - 1, argv + 1);
	if (strcmp(argv[1], "repo") == 0)
		return cmd_repo(argc - 1, argv + 1);
	if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
		printf("godwit %s\n", GODWIT_VERSION);
		return CLI_EXIT_OK;
	}
	if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return CLI_EXIT_OK;
	}
	cli_error("unknown command '%s': run 'godwit help' for the list", argv[1]);
	return CLI_EXIT_USAGE;
}
