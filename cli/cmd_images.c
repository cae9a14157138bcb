/* godwit repo init and godwit images list|inspect|verify: the image repository. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/prune_cli.h"
#include "cli/repo_opts.h"
#include "repo/lock.h"
#include "cli/net_opts.h"
#include "repo/manifest.h"
#include "repo/repair.h"
#include "repo/repo.h"
#include "repo/repo_key.h"
#include "repo/verify.h"
#include "vmm/vm_state.h"

static const char images_usage[] =
	"usage: godwit images list --repo DIR [--key-file FILE]\n"
	"       godwit images inspect --repo DIR [--key-file FILE] [--snapshot ID|latest]\n"
	"       godwit images verify --repo DIR [--key-file FILE] [--read-data]\n"
	"       godwit images repair --repo DIR [--key-file FILE] [--dry-run] [--forget-damaged]\n"
	"                            [--lock-wait SECONDS]\n"
	"       godwit images prune --repo DIR [--keep-last N] ... (see 'godwit images prune --help')\n"
	"       godwit repo init --repo DIR (--key-file FILE | --insecure-no-encryption)\n"
	"  --key-file FILE   the repository key. 'repo init' creates FILE (mode 0600) with a\n"
	"                    new random key, or uses the key already in FILE; keep it outside\n"
	"                    DIR and keep a copy: without it the repository cannot be read\n"
	"  --insecure-no-encryption\n"
	"                    'repo init' makes a plaintext repository: whoever can read its\n"
	"                    objects (an S3 bucket's operator) can read the VMs' memory\n"
	"  --verbose         name each S3 request that is retried\n"
	CLI_S3_RETRY_USAGE
	"  --read-data       verify: read every pack and every blob back (the default for a\n"
	"                    local repository is names and sizes only); damaged blobs found\n"
	"                    are marked, so the next backup of their VM stores them again\n"
	"  repair            rebuild the index from the packs (they describe themselves) and\n"
	"                    name the snapshots that name blobs no pack holds; --dry-run says\n"
	"                    what it would do; --forget-damaged deletes manifests that do not\n"
	"                    decode (a prune stops at them). It waits --lock-wait seconds for\n"
	"                    backups, snapshots, restores or a prune (exit 4 when they stay)\n";

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

/* The NICs a snapshot's VM had, from its state blob: index and MAC. */
static int images_inspect_nics(struct repo *r, const struct snap_manifest *m)
{
	struct vm_state_info info;
	uint8_t *state;
	size_t len;
	char err[256];
	int rc;

	rc = repo_blob_get(r, &m->state_id, &state, &len);
	if (rc < 0) {
		cli_error("images inspect: snapshot %s: its VM state cannot be read: %s (run "
			  "'godwit images verify')", m->id, strerror(-rc));
		return CLI_EXIT_ERROR;
	}
	rc = vm_state_peek(state, len, &info, err, sizeof(err));
	free(state);
	if (rc < 0) {
		cli_error("images inspect: snapshot %s: %s", m->id, err);
		return CLI_EXIT_ERROR;
	}
	if (info.nnics == 0)
		printf("NICs:            none\n");
	for (unsigned i = 0; i < info.nnics; i++) {
		char mac[18];

		net_mac_format(info.nic_mac[i], mac);
		printf("NIC %u:           virtio-net, MAC %s\n", i, mac);
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
	rc = images_inspect_nics(r, &m);
	manifest_free(&m);
	return rc;
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
	int rc = repo_verify(r, (read_data ? REPO_VERIFY_READ_DATA : 0) | REPO_VERIFY_MARK,
			     verify_line, NULL, &res);

	if (rc < 0) {
		cli_error("verify: %s", strerror(-rc));
		return CLI_EXIT_ERROR;
	}
	printf("%" PRIu64 " snapshots, %" PRIu64 " packs, %" PRIu64 " blobs checked%s: %" PRIu64
	       " problems\n", res.snapshots, res.packs, res.blobs,
	       read_data ? " (data read and re-hashed)" : "", res.problems);
	return res.problems ? CLI_EXIT_ERROR : CLI_EXIT_OK;
}

static void repair_line(void *arg, const char *line)
{
	(void)arg;
	printf("%s\n", line);
}

/*
 * godwit images repair: under the prune lock (nothing else writes or reads packs), the
 * index rebuilt from the packs; the snapshots no pack completes are named.
 */
static int images_repair(struct repo *r, const struct repair_opts *o, unsigned lock_wait_s,
			 const struct backend_s3_opts *s3)
{
	struct repo_lock_opts lo = { .wait_s = lock_wait_s, .s3 = s3 };
	struct repo_lock *lock;
	struct repair_stats st;
	char err[1024];
	int rc;

	rc = repo_lock_acquire(&lock, r, REPO_LOCK_PRUNE, NULL, &lo, err, sizeof(err));
	if (rc == -EBUSY) {
		cli_error("repair: %s: nothing was changed; try again later or pass --lock-wait", err);
		return CLI_EXIT_LOCKED;
	}
	if (rc < 0) {
		cli_error("repair: %s", err);
		return CLI_EXIT_ERROR;
	}
	rc = repo_repair(r, o, repair_line, NULL, &st, err, sizeof(err));
	repo_lock_release(lock);
	if (rc < 0) {
		cli_error("%s", err);
		return CLI_EXIT_ERROR;
	}
	printf("%s: %" PRIu64 " packs, %" PRIu64 " indexed again from their trailers, %" PRIu64
	       " gone, %" PRIu64 " unreadable; %" PRIu64 " index files %s, %" PRIu64 " %s; %"
	       PRIu64 " of %" PRIu64 " snapshots cannot be restored whole",
	       o->dry_run ? "dry run" : "repaired", st.packs, st.packs_recovered, st.packs_missing,
	       st.packs_unreadable, st.indexes_written, o->dry_run ? "to write" : "written",
	       st.indexes_removed, o->dry_run ? "to delete" : "deleted",
	       st.snapshots_incomplete + st.snapshots_unreadable - st.snapshots_forgotten,
	       st.snapshots - st.snapshots_forgotten);
	if (st.snapshots_forgotten)
		printf(", %" PRIu64 " damaged ones %s", st.snapshots_forgotten,
		       o->dry_run ? "to forget" : "forgotten");
	printf("\n");
	return CLI_EXIT_OK;
}

/*
 * "PATH" or "file://PATH" made absolute, whether or not it exists yet (path, out): the
 * longest prefix that exists is resolved by realpath, the rest appended as written.
 */
static bool resolve_loose(const char *path, char out[PATH_MAX])
{
	char head[PATH_MAX];
	size_t cut;

	if (strncmp(path, "file://", 7) == 0)
		path += 7;
	if (snprintf(head, sizeof(head), "%s", path) >= (int)sizeof(head))
		return false;
	cut = strlen(head);
	for (;;) {
		char *slash;

		if (realpath(head[0] ? head : ".", out)) {
			size_t n = strlen(out);

			if (path[cut] && snprintf(out + n, PATH_MAX - n, "%s%s",
						  strcmp(out, "/") && path[cut] != '/' ? "/" : "",
						  path + cut) >= (int)(PATH_MAX - n))
				return false;
			return true;
		}
		slash = strrchr(head, '/');
		if (!slash && !head[0])
			return false;
		if (!slash) {
			head[0] = '\0';
			cut = 0;
		} else if (slash == head) {
			head[1] = '\0';
			cut = 1;
		} else {
			*slash = '\0';
			cut = (size_t)(slash - head);
		}
	}
}

/* True when file would lie inside the directory dir (dir, file). */
static bool path_inside(const char *dir, const char *file)
{
	char d[PATH_MAX], f[PATH_MAX];
	size_t n;

	if (strncmp(dir, "s3://", 5) == 0)
		return false; /* a bucket is never a local path */
	if (!resolve_loose(dir, d) || !resolve_loose(file, f))
		return false;
	n = strlen(d);
	return strncmp(f, d, n) == 0 && (f[n] == '/' || f[n] == '\0' || !strcmp(d, "/"));
}

/*
 * godwit repo init. An encrypted repository is the default, and needs --key-file: a new
 * FILE gets a new random key (written and fsync'ed before the repository exists, so no
 * repository is ever made whose key was lost); an existing FILE is never overwritten,
 * its key is used (one key file may serve several repositories: each derives its own
 * keys with its own salt). A plaintext repository must be asked for by name.
 */
static int repo_init_cmd(const char *repo_path, const char *key_file, bool insecure)
{
	struct repo_key key;
	bool created = false;
	char err[512] = "";
	int rc;

	if (!key_file && !insecure) {
		cli_error("repo init: pass --key-file FILE for an encrypted repository (FILE gets its "
			  "new key; keep it outside %s), or --insecure-no-encryption for a plaintext one",
			  repo_path);
		return CLI_EXIT_USAGE;
	}
	if (key_file && insecure) {
		cli_error("repo init: --key-file and --insecure-no-encryption exclude each other");
		return CLI_EXIT_USAGE;
	}
	if (insecure) {
		rc = repo_init(repo_path, 0, 0, err, sizeof(err));
		if (rc < 0) {
			cli_error("repo init: %s", err);
			return CLI_EXIT_ERROR;
		}
		printf("initialised a plaintext (unencrypted) image repository in %s\n", repo_path);
		return CLI_EXIT_OK;
	}
	if (path_inside(repo_path, key_file)) {
		cli_error("repo init: the key file %s is inside the repository %s, which is what gets "
			  "copied to object storage: keep the key outside it", key_file, repo_path);
		return CLI_EXIT_USAGE;
	}
	rc = repo_key_load(&key, key_file, err, sizeof(err));
	if (rc == -ENOENT) {
		rc = repo_key_generate(&key);
		if (rc < 0)
			snprintf(err, sizeof(err), "no randomness for a new key");
		else
			rc = repo_key_write(&key, key_file, err, sizeof(err));
		created = rc == 0;
	} else if (rc < 0) {
		cli_error("repo init: %s: refusing to overwrite it; name a new file for a new key",
			  err);
		return CLI_EXIT_ERROR;
	}
	if (rc == 0)
		rc = repo_init_keyed(repo_path, 0, 0, &key, err, sizeof(err));
	repo_key_wipe(&key);
	if (rc < 0) {
		if (created)
			unlink(key_file); /* no repository uses it */
		cli_error("repo init: %s", err);
		return CLI_EXIT_ERROR;
	}
	printf("initialised an encrypted image repository in %s\n", repo_path);
	printf("its key is %s %s: keep a copy apart from the repository; without it nothing in "
	       "the repository can be read\n", created ? "new, in" : "the one in", key_file);
	return CLI_EXIT_OK;
}

static int repo_cmd(bool init, int argc, char **argv)
{
	static const struct option opts[] = {
		CLI_REPO_OPTIONS,
		{ "insecure-no-encryption", no_argument, NULL, 'i' },
		{ "snapshot", required_argument, NULL, 's' },
		{ "read-data", no_argument, NULL, 'd' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "forget-damaged", no_argument, NULL, 'f' },
		{ "lock-wait", required_argument, NULL, 'w' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *id = "latest";
	const char *sub = argc > 1 ? argv[1] : "";
	bool read_data = false, insecure = false;
	struct repair_opts ro = { 0 };
	struct cli_repo_args ra;
	struct backend_s3_opts s3;
	bool verbose = false;
	unsigned lock_wait = 0;
	struct repo *r;
	char err[512] = "";
	int opt, rc, status;

	if (!init && strcmp(sub, "list") && strcmp(sub, "inspect") && strcmp(sub, "verify") &&
	    strcmp(sub, "repair")) {
		fputs(images_usage, stderr);
		return CLI_EXIT_USAGE;
	}
	if (init && strcmp(sub, "init")) {
		fputs(images_usage, stderr);
		return CLI_EXIT_USAGE;
	}
	cli_repo_args_init(&ra);
	opterr = 0;
	optind = 2;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		int taken = cli_repo_opt(opt, optarg, &ra);

		if (taken < 0)
			return CLI_EXIT_USAGE;
		if (taken)
			continue;
		switch (opt) {
		case 'i':
			insecure = true;
			break;
		case 's':
			id = optarg;
			break;
		case 'd':
			read_data = true;
			break;
		case 'n':
			ro.dry_run = true;
			break;
		case 'f':
			ro.forget_damaged = true;
			break;
		case 'v':
			verbose = true;
			break;
		case 'w':
			if (!cli_parse_count("--lock-wait", optarg, &lock_wait))
				return CLI_EXIT_USAGE;
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
	if (!ra.repo) {
		cli_error("%s: pass --repo DIR", sub);
		return CLI_EXIT_USAGE;
	}
	if (init)
		return repo_init_cmd(ra.repo, ra.key_file, insecure);
	if (insecure) {
		cli_error("%s: --insecure-no-encryption is for 'repo init'", sub);
		return CLI_EXIT_USAGE;
	}
	rc = cli_repo_args_open(&r, &s3, &ra, verbose, err, sizeof(err));
	if (rc < 0) {
		cli_error("%s", err);
		return CLI_EXIT_ERROR;
	}
	if (!strcmp(sub, "list"))
		status = images_list(r);
	else if (!strcmp(sub, "inspect"))
		status = images_inspect(r, id);
	else if (!strcmp(sub, "repair"))
		status = images_repair(r, &ro, lock_wait, &s3);
	else
		status = images_verify(r, read_data);
	repo_close(r);
	return status;
}

int cmd_images(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "prune") == 0)
		return cmd_images_prune(argc, argv); /* cli/cmd_prune.c */
	return repo_cmd(false, argc, argv);
}

int cmd_repo(int argc, char **argv)
{
	return repo_cmd(true, argc, argv);
}
