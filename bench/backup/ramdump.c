/* gw-ramdump: a snapshot's guest RAM as one flat file, for the backup bench to hand to restic. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "repo/manifest.h"
#include "repo/repo.h"
#include "repo/repo_key.h"

/*
 * usage: gw-ramdump [--key-file FILE] REPO SNAPSHOT_ID OUT
 *
 * Writes the snapshot's memory regions back to back in gpa order (region i starts at the
 * sum of the earlier regions' sizes) into OUT, leaving zero chunks as holes: the same
 * bytes the guest had, as a file another backup tool can read. The repository is opened
 * as godwit opens it (s3:// through the AWS environment, AWS_ENDPOINT_URL included), with
 * the key when one is given. Prints one JSON line with the sizes.
 */

/* Opens location with the key in key_file, or without a key when key_file is NULL. */
static int ramdump_open(struct repo **out, const char *location, const char *key_file,
			char *err, size_t errlen)
{
	struct repo_key key;
	int rc;

	if (!key_file)
		return repo_open(out, location, err, errlen);
	rc = repo_key_load(&key, key_file, err, errlen);
	if (rc == 0)
		rc = repo_open_keyed(out, location, &key, err, errlen);
	repo_key_wipe(&key);
	return rc;
}

/* Writes every non-zero chunk of m's memory to fd; *nonzero gets their bytes, *end the size. */
static int ramdump_write(struct repo *r, const struct snap_manifest *m, int fd,
			 uint64_t *nonzero, uint64_t *end)
{
	uint64_t base = 0;
	uint8_t *buf = NULL;
	int rc = 0;

	*nonzero = 0;
	for (uint32_t i = 0; i < m->nregions && rc == 0; i++) {
		const struct snap_region *g = &m->regions[i];
		uint8_t *nbuf = realloc(buf, g->chunk_bytes);

		if (!nbuf) {
			rc = -ENOMEM;
			break;
		}
		buf = nbuf;
		for (uint64_t c = 0; c < g->nchunks && rc == 0; c++) {
			uint64_t off = c * g->chunk_bytes;
			size_t len = (size_t)(g->bytes - off < g->chunk_bytes ? g->bytes - off
									 : g->chunk_bytes);
			ssize_t n;

			if (blob_id_is_zero(&g->ids[c]))
				continue;
			rc = repo_blob_read(r, &g->ids[c], buf, len);
			if (rc < 0)
				break;
			n = pwrite(fd, buf, len, (off_t)(base + off));
			if (n < 0)
				rc = -errno;
			else if ((size_t)n != len)
				rc = -EIO;
			*nonzero += len;
		}
		base += g->bytes;
	}
	free(buf);
	*end = base;
	return rc;
}

int main(int argc, char **argv)
{
	const char *key_file = NULL;
	uint64_t nonzero = 0, end = 0;
	struct snap_manifest m;
	struct repo *r = NULL;
	char err[1024] = "";
	int fd, rc, status = 1;

	if (argc == 6 && strcmp(argv[1], "--key-file") == 0) {
		key_file = argv[2];
		argv += 2;
		argc -= 2;
	}
	if (argc != 4) {
		fprintf(stderr, "usage: gw-ramdump [--key-file FILE] REPO SNAPSHOT_ID OUT\n");
		return 2;
	}
	manifest_init(&m);
	rc = ramdump_open(&r, argv[1], key_file, err, sizeof(err));
	if (rc == 0)
		rc = snap_load(r, argv[2], &m, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "gw-ramdump: %s\n", err[0] ? err : strerror(-rc));
		goto out;
	}
	fd = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		fprintf(stderr, "gw-ramdump: %s: %s\n", argv[3], strerror(errno));
		goto out;
	}
	rc = ramdump_write(r, &m, fd, &nonzero, &end);
	if (rc == 0 && ftruncate(fd, (off_t)end) < 0)
		rc = -errno;
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc < 0) {
		fprintf(stderr, "gw-ramdump: %s: %s\n", argv[3], strerror(-rc));
		goto out;
	}
	printf("{\"ram_bytes\":%" PRIu64 ",\"nonzero_bytes\":%" PRIu64 "}\n", end, nonzero);
	status = 0;
out:
	manifest_free(&m);
	repo_close(r);
	return status;
}
