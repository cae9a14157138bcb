/* gw-snapdiff: what a guest dirtied between two snapshots, as raw bytes, for the snapshot bench. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repo/manifest.h"
#include "repo/repo.h"
#include "repo/repo_key.h"

#define PAGE_BYTES 4096u

/*
 * usage: gw-snapdiff REPO PARENT_ID CHILD_ID PAGES_OUT CHUNKS_OUT [KEY_FILE]
 *
 * KEY_FILE is the repository's key (an encrypted repository); without it the repository
 * must be plaintext.
 * For every memory chunk whose id differs between the two snapshots, reads both
 * versions from the repository (a zero id reads as zeros) and writes the child's
 * version of each 4 KiB page that differs to PAGES_OUT (the data the guest changed,
 * exactly) and the whole child chunk to CHUNKS_OUT (what a chunk-granular increment
 * must hold). Prints one JSON line with the counts. Pages that differ are the pages the
 * guest wrote with new content: a page rewritten with the same bytes is not counted,
 * which is the right measure for "data that changed".
 */
static int write_all(FILE *f, const void *buf, size_t len)
{
	return fwrite(buf, 1, len, f) == len ? 0 : -EIO;
}

int main(int argc, char **argv)
{
	struct snap_manifest a, b;
	struct repo *r = NULL;
	uint64_t chunks = 0, pages = 0, chunk_bytes = 0, page_bytes = 0;
	uint8_t *ba = NULL, *bb = NULL;
	FILE *pages_out, *chunks_out;
	char err[512];
	int rc;

	if (argc != 6 && argc != 7) {
		fprintf(stderr, "usage: gw-snapdiff REPO PARENT_ID CHILD_ID PAGES_OUT CHUNKS_OUT "
			"[KEY_FILE]\n");
		return 2;
	}
	manifest_init(&a);
	manifest_init(&b);
	if (argc == 7) {
		struct repo_key key;

		rc = repo_key_load(&key, argv[6], err, sizeof(err));
		if (rc == 0)
			rc = repo_open_keyed(&r, argv[1], &key, err, sizeof(err));
		repo_key_wipe(&key);
	} else {
		rc = repo_open(&r, argv[1], err, sizeof(err));
	}
	if (rc == 0)
		rc = snap_load(r, argv[2], &a, err, sizeof(err));
	if (rc == 0)
		rc = snap_load(r, argv[3], &b, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "gw-snapdiff: %s\n", err);
		return 1;
	}
	if (a.nregions != b.nregions) {
		fprintf(stderr, "gw-snapdiff: the snapshots are of different machines\n");
		return 1;
	}
	pages_out = fopen(argv[4], "wb");
	chunks_out = fopen(argv[5], "wb");
	if (!pages_out || !chunks_out) {
		fprintf(stderr, "gw-snapdiff: cannot create the output files: %s\n", strerror(errno));
		return 1;
	}
	for (unsigned i = 0; i < b.nregions && rc == 0; i++) {
		const struct snap_region *ra = &a.regions[i], *rb = &b.regions[i];

		if (ra->bytes != rb->bytes || ra->chunk_bytes != rb->chunk_bytes) {
			fprintf(stderr, "gw-snapdiff: region %u differs in size\n", i);
			return 1;
		}
		free(ba);
		free(bb);
		ba = malloc(rb->chunk_bytes);
		bb = malloc(rb->chunk_bytes);
		if (!ba || !bb)
			return 1;
		for (uint64_t c = 0; c < rb->nchunks && rc == 0; c++) {
			uint64_t off = c * rb->chunk_bytes;
			size_t len = (size_t)(rb->bytes - off < rb->chunk_bytes ? rb->bytes - off
										: rb->chunk_bytes);

			if (blob_id_eq(&ra->ids[c], &rb->ids[c]))
				continue;
			rc = repo_blob_read(r, &ra->ids[c], ba, len);
			if (rc == 0)
				rc = repo_blob_read(r, &rb->ids[c], bb, len);
			if (rc < 0) {
				fprintf(stderr, "gw-snapdiff: chunk %" PRIu64 " of region %u: %s\n", c, i,
					strerror(-rc));
				return 1;
			}
			chunks++;
			chunk_bytes += len;
			rc = write_all(chunks_out, bb, len);
			for (size_t p = 0; p < len && rc == 0; p += PAGE_BYTES) {
				size_t n = len - p < PAGE_BYTES ? len - p : PAGE_BYTES;

				if (memcmp(ba + p, bb + p, n) == 0)
					continue;
				pages++;
				page_bytes += n;
				rc = write_all(pages_out, bb + p, n);
			}
		}
	}
	if (fclose(pages_out) != 0 || fclose(chunks_out) != 0 || rc < 0) {
		fprintf(stderr, "gw-snapdiff: writing the output: %s\n", strerror(errno));
		return 1;
	}
	printf("{\"chunks_changed\":%" PRIu64 ",\"chunk_bytes\":%" PRIu64 ",\"pages_changed\":%"
	       PRIu64 ",\"page_bytes\":%" PRIu64 "}\n", chunks, chunk_bytes, pages, page_bytes);
	free(ba);
	free(bb);
	manifest_free(&a);
	manifest_free(&b);
	repo_close(r);
	return 0;
}
