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
