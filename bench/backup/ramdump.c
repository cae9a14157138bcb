/* gw-ramdump: a snapshot's guest RAM as one flat file, for the backup bench to hand to restic. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "snapshot/manifest.h"
#include "snapshot/repo.h"

/*
 * usage: gw-ramdump REPO SNAPSHOT_ID OUT
 *
 * Writes the snapshot's memory regions back to back in gpa order (region i starts at the
 * sum of the earlier regions' sizes) into OUT, leaving zero chunks as holes: the same
 * bytes the guest had, as a file another backup tool can read. The repository is opened
 * as godwit opens it (s3:// through the AWS environment). Prints one JSON line with the
 * sizes.
 */
int main(int argc, char **argv)
{
	uint64_t base = 0, nonzero = 0;
	struct snap_manifest m;
	struct repo *r = NULL;
	uint8_t *buf = NULL;
	char err[1024];
	int fd, rc;

	if (argc != 4) {
		fprintf(stderr, "usage: gw-ramdump REPO SNAPSHOT_ID OUT\n");
		return 2;
	}
	manifest_init(&m);
	rc = repo_open(&r, argv[1], err, sizeof(err));
	if (rc == 0)
		rc = snap_load(r, argv[2], &m, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "gw-ramdump: %s\n", err);
		return 1;
	}
	fd = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		fprintf(stderr, "gw-ramdump: %s: %s\n", argv[3], strerror(errno));
		return 1;
	}
	for (uint32_t i = 0; i < m.nregions && rc == 0; i++) {
		const struct snap_region *g = &m.regions[i];

		free(buf);
		buf = malloc(g->chunk_bytes);
		if (!buf)
			return 1;
		for (uint64_t c = 0; c < g->nchunks && rc == 0; c++) {
			uint64_t off = c * g->chunk_bytes;
			size_t len = (size_t)(g->bytes - off < g->chunk_bytes ? g->bytes - off
									 : g->chunk_bytes);

			if (blob_id_is_zero(&g->ids[c]))
				continue;
			rc = repo_blob_read(r, &g->ids[c], buf, len);
			if (rc == 0 && pwrite(fd, buf, len, (off_t)(base + off)) != (ssize_t)len)
				rc = -errno;
			nonzero += len;
		}
		base += g->bytes;
	}
	if (rc == 0 && ftruncate(fd, (off_t)base) < 0)
		rc = -errno;
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc < 0) {
		fprintf(stderr, "gw-ramdump: %s: %s\n", argv[3], strerror(-rc));
		return 1;
	}
	printf("{\"ram_bytes\":%" PRIu64 ",\"nonzero_bytes\":%" PRIu64 "}\n", base, nonzero);
	free(buf);
	manifest_free(&m);
	repo_close(r);
	return 0;
}
