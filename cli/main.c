/* The godwit binary: dispatch to a subcommand. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

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
	      "  backup    snapshot a running VM, then prune by policy; quiet, locked, for\n"
	      "            cron: godwit backup --api SOCKET --repo DIR|s3://BUCKET/PREFIX\n"
	      "            [--keep-last N] [--keep-daily N] [--keep-weekly N]\n"
	      "  images    list | inspect | verify | prune the snapshots of a repository:\n"
	      "            --repo DIR|s3://BUCKET/PREFIX\n"
	      "  repo      init: create an image repository: godwit repo init --repo DIR\n"
	      "  version   print the version\n"
	      "\n"
	      "\n"
	      "S3 repositories take credentials and region from the AWS environment and\n"
	      "profiles; --endpoint URL (restore, images, repo, backup) or AWS_ENDPOINT_URL\n"
	      "names an S3-compatible server.\n"
	      "'godwit COMMAND --help' describes a command.\n", f);
}

/*
 * Take "--endpoint URL" or "--endpoint=URL" out of argv (argc, argv) and put it in the
 * environment as AWS_ENDPOINT_URL_S3 and AWS_ENDPOINT_URL, where s3_config_from_env finds
 * it: the commands that open repositories in this process (restore, images, repo) then
 * all take it without parsing it themselves. Runs before any thread starts. Returns the
 * new argc.
 */
static int endpoint_option(int argc, char **argv)
{
	int out = 0;

	for (int i = 0; i < argc; i++) {
		const char *url = NULL;

		if (!strcmp(argv[i], "--")) {
			while (i < argc)
				argv[out++] = argv[i++];
			break;
		}
		if (!strcmp(argv[i], "--endpoint") && i + 1 < argc)
			url = argv[++i];
		else if (!strncmp(argv[i], "--endpoint=", 11))
			url = argv[i] + 11;
		if (!url) {
			argv[out++] = argv[i];
			continue;
		}
		setenv("AWS_ENDPOINT_URL_S3", url, 1);
		setenv("AWS_ENDPOINT_URL", url, 1);
	}
	argv[out] = NULL;
	return out;
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
	if (strcmp(argv[1], "restore") == 0 || strcmp(argv[1], "images") == 0 ||
	    strcmp(argv[1], "repo") == 0)
		argc = endpoint_option(argc, argv);
	if (strcmp(argv[1], "restore") == 0)
		return cmd_restore(argc - 1, argv + 1);
	if (strcmp(argv[1], "images") == 0)
		return cmd_images(argc - 1, argv + 1);
	if (strcmp(argv[1], "repo") == 0)
		return cmd_repo(argc - 1, argv + 1);
	if (strcmp(argv[1], "backup") == 0)
		return cmd_backup(argc - 1, argv + 1);
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
