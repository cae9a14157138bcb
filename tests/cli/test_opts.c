/* Option parsing of the godwit commands, in this process: good input taken, bad input named with its fix. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/prune_cli.h"
#include "cli/repo_opts.h"

static char out_path[64], err_path[64];
static int saved_out = -1, saved_err = -1;
static char out_text[8192], err_text[8192];

/* stdout and stderr of the code under test go to files, read back by captured(). */
static void redirect(int fd, const char *p, int *saved)
{
	int f = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	cr_assert_geq(f, 0);
	*saved = dup(fd);
	cr_assert_geq(*saved, 0);
	cr_assert_eq(dup2(f, fd), fd);
	close(f);
}

static void setup(void)
{
	snprintf(out_path, sizeof(out_path), "/tmp/godwit-i12d-opts-%d.out", (int)getpid());
	snprintf(err_path, sizeof(err_path), "/tmp/godwit-i12d-opts-%d.err", (int)getpid());
	redirect(STDOUT_FILENO, out_path, &saved_out);
	redirect(STDERR_FILENO, err_path, &saved_err);
}

static void restore_fd(int fd, int *saved)
{
	if (*saved >= 0) {
		dup2(*saved, fd);
		close(*saved);
		*saved = -1;
	}
}

static void read_file(const char *p, char *buf, size_t cap)
{
	FILE *f = fopen(p, "r");
	size_t n;

	cr_assert_not_null(f);
	n = fread(buf, 1, cap - 1, f);
	buf[n] = '\0';
	fclose(f);
}

/* What the code wrote so far; the streams stay redirected. */
static void captured(void)
{
	fflush(stdout);
	fflush(stderr);
	read_file(out_path, out_text, sizeof(out_text));
	read_file(err_path, err_text, sizeof(err_text));
}

static void teardown(void)
{
	fflush(stdout);
	fflush(stderr);
	restore_fd(STDOUT_FILENO, &saved_out);
	restore_fd(STDERR_FILENO, &saved_err);
	unlink(out_path);
	unlink(err_path);
}

TestSuite(cli_opts, .init = setup, .fini = teardown, .timeout = 30);

/* Run a command on a NULL-terminated argument list; returns its exit status. */
#define RUN(fn, ...)                                                                      \
	({                                                                                \
		char *argv_[] = { __VA_ARGS__, NULL };                                    \
		int st_ = fn((int)(sizeof(argv_) / sizeof(argv_[0])) - 1, argv_);         \
		captured();                                                               \
		st_;                                                                      \
	})

/* One line on stderr, "godwit: " first, containing want. */
static void assert_one_error_line(const char *want)
{
	const char *nl = strchr(err_text, '\n');

	cr_assert(strncmp(err_text, "godwit: ", 8) == 0, "stderr: %s", err_text);
	cr_assert_not_null(nl, "stderr: %s", err_text);
	cr_assert_eq(nl[1], '\0', "more than one line: %s", err_text);
	cr_assert(strstr(err_text, want), "want '%s' in: %s", want, err_text);
}

Test(cli_opts, repo_options_are_taken_into_their_struct)
{
	struct cli_repo_args a;

	cli_repo_args_init(&a);
	cr_assert_eq(a.s3_retry_s, -1);
	cr_assert_null(a.repo);
	cr_assert_eq(cli_repo_opt(CLI_REPO_OPT_REPO, "s3://b/p", &a), 1);
	cr_assert_eq(cli_repo_opt(CLI_REPO_OPT_KEY_FILE, "/k", &a), 1);
	cr_assert_eq(cli_repo_opt(CLI_REPO_OPT_ENDPOINT, "http://127.0.0.1:9", &a), 1);
	cr_assert_eq(cli_repo_opt(CLI_REPO_OPT_S3_RETRY, "0", &a), 1);
	cr_assert_str_eq(a.repo, "s3://b/p");
	cr_assert_str_eq(a.key_file, "/k");
	cr_assert_str_eq(a.endpoint, "http://127.0.0.1:9");
	cr_assert_eq(a.s3_retry_s, 0);
	cr_assert_eq(cli_repo_opt('a', "x", &a), 0, "not a repository option");
	cr_assert_eq(cli_repo_opt(CLI_REPO_OPT_S3_RETRY, "86400", &a), 1);
	cr_assert_eq(a.s3_retry_s, 86400);
}

Test(cli_opts, a_bad_s3_retry_is_named_with_its_range)
{
	static const char *const bad[] = { "", "-1", "ten", "5s", "86401", "99999999999" };
	struct cli_repo_args a;

	cli_repo_args_init(&a);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(cli_repo_opt(CLI_REPO_OPT_S3_RETRY, bad[i], &a), -1, "'%s'", bad[i]);
		cr_assert_eq(a.s3_retry_s, -1, "'%s' changed the value", bad[i]);
	}
	captured();
	cr_assert(strstr(err_text, "godwit: --s3-retry takes a count from 0 to 1000000, not 'ten'"),
		  "%s", err_text);
	cr_assert(strstr(err_text, "godwit: --s3-retry takes at most 86400 seconds (a day), not "
			 "86401"), "%s", err_text);
}

Test(cli_opts, counts_and_durations)
{
	unsigned n = 7;
	uint64_t s = 0;

	cr_assert(cli_parse_count("--keep-last", "3", &n));
	cr_assert_eq(n, 3);
	cr_assert_not(cli_parse_count("--keep-last", "-3", &n));
	cr_assert_not(cli_parse_count("--keep-last", "1000001", &n));
	cr_assert_eq(n, 3);
	cr_assert(cli_parse_duration("--grace", "90m", &s));
	cr_assert_eq(s, 90 * 60);
	cr_assert(cli_parse_duration("--grace", "2d", &s));
	cr_assert_eq(s, 2 * 86400);
	cr_assert(cli_parse_duration("--grace", "15", &s));
	cr_assert_eq(s, 15);
	cr_assert_not(cli_parse_duration("--grace", "3w", &s));
	cr_assert_not(cli_parse_duration("--grace", "h", &s));
	captured();
	cr_assert(strstr(err_text, "godwit: --keep-last takes a count from 0 to 1000000, not '-3'"),
		  "%s", err_text);
	cr_assert(strstr(err_text, "--grace"), "%s", err_text);
}

/* An unknown option: usage status, one line naming it and where help is; no exit(). */
Test(cli_opts, backup_names_an_unknown_option_and_its_help)
{
	int st = RUN(cmd_backup, "backup", "--api", "/x", "--repo", "/r", "--bogus");

	cr_assert_eq(st, CLI_EXIT_USAGE);
	assert_one_error_line("backup: unknown or incomplete option '--bogus': see 'godwit "
			      "backup --help'");
}

Test(cli_opts, backup_needs_the_api_and_a_repository)
{
	int st = RUN(cmd_backup, "backup", "--repo", "/r");

	cr_assert_eq(st, CLI_EXIT_USAGE);
	assert_one_error_line("backup: pass --api SOCKET and --repo URL");
}

Test(cli_opts, backup_checks_its_repository_options_through_the_shared_helper)
{
	int st = RUN(cmd_backup, "backup", "--api", "/x", "--repo", "/r", "--s3-retry", "soon");

	cr_assert_eq(st, CLI_EXIT_USAGE);
	assert_one_error_line("--s3-retry takes a count from 0 to 1000000, not 'soon'");
}

Test(cli_opts, backup_refuses_an_empty_name)
{
	int st = RUN(cmd_backup, "backup", "--api", "/x", "--repo", "/r", "--name", "");

	cr_assert_eq(st, CLI_EXIT_USAGE);
	assert_one_error_line("backup: --name takes 1 to");
}

Test(cli_opts, backup_refuses_a_stray_argument)
{
	int st = RUN(cmd_backup, "backup", "--api", "/x", "--repo", "/r", "extra");

	cr_assert_eq(st, CLI_EXIT_USAGE);
	assert_one_error_line("backup: unexpected argument 'extra'");
}

/* A missing repository is named with the command that makes one. */
Test(cli_opts, backup_names_a_missing_repository_and_how_to_make_it)
{
	int st = RUN(cmd_backup, "backup", "--api", "/x", "--repo", "/nonexistent/godwit-i12d");

	cr_assert_eq(st, CLI_EXIT_ERROR);
	assert_one_error_line("'godwit repo init --repo /nonexistent/godwit-i12d'");
}

Test(cli_opts, help_goes_to_stdout_with_status_zero)
{
	int st = RUN(cmd_snapshot, "snapshot", "--help");

	cr_assert_eq(st, CLI_EXIT_OK);
	cr_assert(strstr(out_text, "usage: godwit snapshot"), "%s", out_text);
	cr_assert_str_eq(err_text, "");
}

Test(cli_opts, snapshot_needs_the_api_and_a_repository)
{
	int st = RUN(cmd_snapshot, "snapshot", "--api", "/x");

	cr_assert_eq(st, CLI_EXIT_USAGE);
	assert_one_error_line("snapshot: pass --api SOCKET and --repo DIR");
}

/* snapshot sends the request to the VM, which reaches S3 itself: no --endpoint here. */
Test(cli_opts, snapshot_takes_no_endpoint)
{
	int st = RUN(cmd_snapshot, "snapshot", "--api", "/x", "--repo", "/r", "--endpoint", "u");

	cr_assert_eq(st, CLI_EXIT_USAGE);
	assert_one_error_line("snapshot: unknown or incomplete option '--endpoint'");
}

Test(cli_opts, snapshot_names_a_missing_repository_and_how_to_make_it)
{
	int st = RUN(cmd_snapshot, "snapshot", "--api", "/x", "--repo", "/nonexistent/gw-i12d");

	cr_assert_eq(st, CLI_EXIT_ERROR);
	assert_one_error_line("repository /nonexistent/gw-i12d does not exist: create it with "
			      "'godwit repo init --repo /nonexistent/gw-i12d'");
}

Test(cli_opts, prune_needs_a_policy)
{
	int st = RUN(cmd_images, "images", "prune", "--repo", "/r");

	cr_assert_eq(st, CLI_EXIT_USAGE);
	assert_one_error_line("prune: pass a policy: --keep-last N");
}

Test(cli_opts, prune_names_a_bad_count)
{
	int st = RUN(cmd_images, "images", "prune", "--repo", "/r", "--keep-daily", "many");

	cr_assert_eq(st, CLI_EXIT_USAGE);
	assert_one_error_line("--keep-daily takes a count from 0 to 1000000, not 'many'");
}

Test(cli_opts, prune_needs_a_repository)
{
	int st = RUN(cmd_images, "images", "prune", "--keep-last", "1");

	cr_assert_eq(st, CLI_EXIT_USAGE);
	assert_one_error_line("prune: pass --repo URL");
}

Test(cli_opts, images_needs_a_known_subcommand)
{
	int st = RUN(cmd_images, "images", "launch", "--repo", "/r");

	cr_assert_eq(st, CLI_EXIT_USAGE);
	cr_assert(strstr(err_text, "usage: godwit images list"), "%s", err_text);
}

Test(cli_opts, images_needs_a_repository)
{
	int st = RUN(cmd_images, "images", "list", "--key-file", "/k");

	cr_assert_eq(st, CLI_EXIT_USAGE);
	assert_one_error_line("list: pass --repo DIR");
}

Test(cli_opts, images_keeps_insecure_for_init)
{
	int st = RUN(cmd_images, "images", "list", "--repo", "/r", "--insecure-no-encryption");

	cr_assert_eq(st, CLI_EXIT_USAGE);
	assert_one_error_line("list: --insecure-no-encryption is for 'repo init'");
}

Test(cli_opts, repo_init_needs_a_key_or_the_plaintext_opt_in)
{
	int st = RUN(cmd_repo, "repo", "init", "--repo", "/nonexistent/gw-i12d");

	cr_assert_eq(st, CLI_EXIT_USAGE);
	cr_assert(strstr(err_text, "--key-file"), "%s", err_text);
	cr_assert(strstr(err_text, "--insecure-no-encryption"), "%s", err_text);
}

Test(cli_opts, restore_needs_a_repository)
{
	int st = RUN(cmd_restore, "restore", "--snapshot", "latest");

	cr_assert_eq(st, CLI_EXIT_USAGE);
	assert_one_error_line("restore: pass --repo DIR");
}

Test(cli_opts, restore_takes_one_disk_option)
{
	int st = RUN(cmd_restore, "restore", "--repo", "/r", "--disk", "a", "--disk-base", "b");

	cr_assert_eq(st, CLI_EXIT_USAGE);
	assert_one_error_line("restore: give --disk (a new image) or --disk-base (an old copy), "
			      "not both");
}

Test(cli_opts, restore_checks_s3_retry_through_the_shared_helper)
{
	int st = RUN(cmd_restore, "restore", "--repo", "/r", "--s3-retry", "90000");

	cr_assert_eq(st, CLI_EXIT_USAGE);
	assert_one_error_line("--s3-retry takes at most 86400 seconds (a day), not 90000");
}

Test(cli_opts, restore_names_an_unknown_option)
{
	int st = RUN(cmd_restore, "restore", "--repo", "/r", "--fast");

	cr_assert_eq(st, CLI_EXIT_USAGE);
	assert_one_error_line("restore: unknown or incomplete option '--fast': see 'godwit "
			      "restore --help'");
}

Test(cli_opts, migrate_names_an_unknown_option)
{
	int st = RUN(cmd_migrate, "migrate", "--api", "/x", "--too", "h:1");

	cr_assert_eq(st, CLI_EXIT_USAGE);
	assert_one_error_line("'--too'");
}

Test(cli_opts, receive_needs_an_address_to_listen_on)
{
	int st = RUN(cmd_receive, "receive", "--psk-file", "/k");

	cr_assert_eq(st, CLI_EXIT_USAGE);
	assert_one_error_line("receive: pass --listen HOST:PORT");
}

Test(cli_opts, receive_names_a_bad_address_block_and_gives_examples)
{
	int st = RUN(cmd_receive, "receive", "--listen", "127.0.0.1:1", "--allow-from", "10.0.0.0/33");

	cr_assert_eq(st, CLI_EXIT_ERROR);
	assert_one_error_line("receive: --allow-from '10.0.0.0/33' is not an address block: give "
			      "e.g. 10.0.0.0/24");
}

Test(cli_opts, receive_names_a_bad_accept_timeout)
{
	int st = RUN(cmd_receive, "receive", "--listen", "127.0.0.1:1", "--accept-timeout", "0");

	cr_assert_eq(st, CLI_EXIT_ERROR);
	assert_one_error_line("--accept-timeout '0' is not a positive number of seconds");
}
