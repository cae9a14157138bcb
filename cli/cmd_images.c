/* godwit repo init and godwit images list|inspect|verify: the image repository. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "snapshot/manifest.h"
#include "snapshot/repo.h"
#include "snapshot/verify.h"

static const char images_usage[] =
	"usage: godwit images list --repo DIR\n"
	"       godwit images inspect --repo DIR [--snapshot ID|latest]\n"
	"       godwit images verify --repo DIR [--read-data]\n"
	"       godwit repo init --repo DIR\n";

static void fmt_time(uint64_t ns, char *buf, size_t len)
{
	time_t s = (time_t)(ns / 1000000000ULL);
	struct tm tm;

	gmtime_r(&s, &tm);
	strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

static double mib(uint64_t b)
{
	return (double)b / 1048576.0;
}

static int images_list(struct repo *r)
{
	struct snap_summary *s = NULL;
	size_t n = 0, nbad = 0;
	int rc = snap_list(r, &s, &n, &nbad);

	if (rc < 0) {
		cli_error("images list: %s", strerror(-rc));
		return CLI_EXIT_ERROR;
	}
	printf("%-25s  %-23s  %-12s  %9s  %9s  %8s  %s\n", "ID", "TIME", "VM", "RAM MiB",
	       "NEW MiB", "PAUSE ms", "PARENT");
	for (size_t i = 0; i < n; i++) {
		char t[32];

		fmt_time(s[i].created_ns, t, sizeof(t));
		printf("%-25s  %-23s  %-12s  %9.0f  %9.1f  %8" PRIu64 "  %s\n", s[i].id, t,
		       s[i].vm_name, mib(s[i].ram_bytes), mib(s[i].stats.bytes_new),
		       s[i].stats.pause_ms, s[i].parent[0] ? s[i].parent : "-");
	}
	free(s);
	if (nbad) {
		cli_error("images list: %zu snapshot manifests could not be read: run 'godwit "
			  "images verify'", nbad);
		return CLI_EXIT_ERROR;
	}
	return CLI_EXIT_OK;
}

static int images_inspect(struct repo *r, const char *id)
{
	struct snap_manifest m;
	char err[512], t[32], sid[BLOB_ID_HEX_BYTES];
	uint64_t zero = 0, chunks = 0;
	int rc;

	manifest_init(&m);
	rc = snap_load(r, id, &m, err, sizeof(err));
	if (rc < 0) {
		cli_error("%s", err);
		return CLI_EXIT_ERROR;
	}
	fmt_time(m.created_ns, t, sizeof(t));
	blob_id_hex(&m.state_id, sid);
	for (uint32_t i = 0; i < m.nregions; i++) {
		chunks += m.regions[i].nchunks;
		for (uint64_t c = 0; c < m.regions[i].nchunks; c++)
			zero += blob_id_is_zero(&m.regions[i].ids[c]);
	}
	printf("id:              %s\nparent:          %s\nvm:              %s\ncreated:         %s\n"
	       "godwit version:  %s\nvCPUs:           %u\nRAM:             %.0f MiB in %u regions, "
	       "%" PRIu64 " chunks (%" PRIu64 " zero)\n",
	       m.id, m.parent[0] ? m.parent : "(full)", m.vm_name, t, m.godwit_version, m.ncpus,
	       mib(m.ram_bytes), m.nregions, chunks, zero);
	for (uint32_t i = 0; i < m.nregions; i++)
		printf("  region %u:      gpa 0x%" PRIx64 ", %.0f MiB, chunk %u KiB\n", i,
		       m.regions[i].gpa, mib(m.regions[i].bytes), m.regions[i].chunk_bytes >> 10);
	if (m.disk_bytes)
		printf("disk:            %.0f MiB, %" PRIu64 " blocks of %u KiB, signature in %u "
		       "pieces\n", mib(m.disk_bytes), m.disk_nblocks, m.disk_block_bytes >> 10, m.nsig);
	else
		printf("disk:            none\n");
	printf("state blob:      %s\nbytes new:       %.1f MiB\nbytes referenced: %.1f MiB\n"
	       "pause:           %" PRIu64 " ms\nduration:        %" PRIu64 " ms\n", sid,
	       mib(m.stats.bytes_new), mib(m.stats.bytes_referenced), m.stats.pause_ms,
	       m.stats.duration_ms);
	if (m.cpu_features[0])
		printf("CPU features:    %s\n", m.cpu_features);
	manifest_free(&m);
	return CLI_EXIT_OK;
}

static void verify_line(void *arg, enum repo_verify_level level, const char *line)
{
	(void)arg;
	if (level == REPO_VERIFY_PROBLEM)
		cli_error("verify: %s", line);
	else
		fprintf(stderr, "godwit: note: %s\n", line);
}

static int images_verify(struct repo *r, bool read_data)
{
	struct repo_verify_result res;
	int rc = repo_verify(r, read_data, verify_line, NULL, &res);

	if (rc < 0) {
		cli_error("verify: %s", strerror(-rc));
		return CLI_EXIT_ERROR;
	}
	printf("%" PRIu64 " snapshots, %" PRIu64 " packs, %" PRIu64 " blobs checked%s: %" PRIu64
	       " problems\n", res.snapshots, res.packs, res.blobs,
	       read_data ? " (data read and re-hashed)" : "", res.problems);
	return res.problems ? CLI_EXIT_ERROR : CLI_EXIT_OK;
}

static int repo_cmd(bool init, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "repo", required_argument, NULL, 'r' },
		{ "snapshot", required_argument, NULL, 's' },
		{ "read-data", no_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *repo_path = NULL, *id = "latest", *sub = argc > 1 ? argv[1] : "";
	bool read_data = false;
	struct repo *r;
	char err[512] = "";
	int opt, rc, status;

	if (!init && strcmp(sub, "list") && strcmp(sub, "inspect") && strcmp(sub, "verify")) {
		fputs(images_usage, stderr);
		return CLI_EXIT_USAGE;
	}
	if (init && strcmp(sub, "init")) {
		fputs(images_usage, stderr);
		return CLI_EXIT_USAGE;
	}
	opterr = 0;
	optind = 2;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'r':
			repo_path = optarg;
			break;
		case 's':
			id = optarg;
			break;
		case 'd':
			read_data = true;
			break;
		case 'h':
			fputs(images_usage, stdout);
			return CLI_EXIT_OK;
		default:
			cli_error("unknown or incomplete option '%s': see 'godwit images --help'",
				  argv[optind - 1]);
			return CLI_EXIT_USAGE;
		}
	}
	if (!repo_path) {
		cli_error("%s: pass --repo DIR", sub);
		return CLI_EXIT_USAGE;
	}
	if (init) {
		rc = repo_init(repo_path, 0, 0, err, sizeof(err));
		if (rc < 0) {
			cli_error("repo init: %s", err);
			return CLI_EXIT_ERROR;
		}
		printf("initialised an image repository in %s\n", repo_path);
		return CLI_EXIT_OK;
	}
	rc = repo_open(&r, repo_path, err, sizeof(err));
	if (rc < 0) {
		cli_error("%s", err);
		return CLI_EXIT_ERROR;
	}
	if (!strcmp(sub, "list"))
		status = images_list(r);
	else if (!strcmp(sub, "inspect"))
		status = images_inspect(r, id);
	else
		status = images_verify(r, read_data);
	repo_close(r);
	return status;
}

int cmd_images(int argc, char **argv)
{
	return repo_cmd(false, argc, argv);
}

int cmd_repo(int argc, char **argv)
{
	return repo_cmd(true, argc, argv);
}
