/* Checking a repository: every manifest decodes, every reference resolves, every pack is whole. */
#ifndef SNAPSHOT_VERIFY_H
#define SNAPSHOT_VERIFY_H

#include <stdbool.h>
#include <stdint.h>

struct repo;

enum repo_verify_level {
	REPO_VERIFY_PROBLEM = 1, /* data is missing or damaged, or a format rule is broken */
	REPO_VERIFY_NOTE = 2,    /* harmless: garbage an interrupted write left for prune */
};

/* Receives one line per finding (arg, level, line), without a trailing newline. */
typedef void (*repo_verify_fn)(void *arg, enum repo_verify_level level, const char *line);

struct repo_verify_result {
	uint64_t snapshots;  /* manifests listed */
	uint64_t indexes;    /* index files listed */
	uint64_t packs;      /* packs the index names */
	uint64_t blobs;      /* blobs in the index */
	uint64_t blobs_read; /* blobs decompressed and re-hashed (read_data) */
	uint64_t bytes_read; /* pack bytes read (read_data) */
	uint64_t problems;
	uint64_t notes;
};

/*
 * Check the repository r was opened on (r, read_data, fn, arg, out):
 *   - every index file decoded at open (else "index X: checksum mismatch", ...);
 *   - every pack an index names exists with the indexed size ("pack Z: missing (the
 *     index lists N blobs in it)", "pack Z: size A, the index says B"); packs no index
 *     names are NOTEs;
 *   - with read_data, every pack is read whole: trailing checksum ("pack Z: checksum
 *     mismatch"), name = content hash, trailer against the index, and every blob
 *     decompressed and its id re-computed ("pack Z: blob Y: ...");
 *   - every manifest decodes ("snapshot X: <reason>") and every blob it references is
 *     in the index with the right length ("snapshot X: blob Y (memory chunk 17, gpa
 *     0x110000) missing from the index"), and lies in no missing or damaged pack.
 * Without read_data only names and sizes are checked (no pack bytes are read): cheap
 * on S3. Callers choose; the CLI reads data by default for local repositories, where
 * reading is cheap. Lines go to fn (may be NULL); counts to out. Blobs put since the
 * last repo_flush are not checked. Returns 0 when the check ran (whatever it found),
 * or -ENOMEM / a backend listing error when it could not run.
 */
int repo_verify(struct repo *r, bool read_data, repo_verify_fn fn, void *arg,
		struct repo_verify_result *out);

#endif
