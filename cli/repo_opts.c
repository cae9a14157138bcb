/* The repository options every repository command takes, parsed in one place. */
#include "cli/repo_opts.h"

#include "cli/prune_cli.h"

void cli_repo_args_init(struct cli_repo_args *a)
{
	*a = (struct cli_repo_args){ .s3_retry_s = -1 };
}

int cli_repo_opt(int opt, const char *arg, struct cli_repo_args *a)
{
	switch (opt) {
	case CLI_REPO_OPT_REPO:
		a->repo = arg;
		return 1;
	case CLI_REPO_OPT_KEY_FILE:
		a->key_file = arg;
		return 1;
	case CLI_REPO_OPT_ENDPOINT:
		a->endpoint = arg;
		return 1;
	case CLI_REPO_OPT_S3_RETRY:
		return cli_parse_s3_retry(arg, &a->s3_retry_s) ? 1 : -1;
	default:
		return 0;
	}
}

int cli_repo_args_open(struct repo **r, struct backend_s3_opts *s3, const struct cli_repo_args *a,
		       bool verbose, char *err, size_t errlen)
{
	cli_s3_opts(s3, a->endpoint, a->s3_retry_s, verbose);
	return cli_repo_open(r, a->repo, s3, a->key_file, err, errlen);
}
