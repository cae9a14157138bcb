/* Checking a repository: every manifest decodes, every reference resolves, every pack is whole. */
#ifndef REPO_VERIFY_H
#define REPO_VERIFY_H

#include <stdbool.h>
#include <stdint.h>

struct repo;

enum repo_verify_level {
	REPO_VERIFY_PROBLEM = 1, /* data is missing or damaged, or a format rule is broken */
	REPO_VERIFY_NOTE = 2,    /* harmless: garbage for prune, or damage marked and avoided */
};

/* Flags of repo_verify. */
#define REPO_VERIFY_READ_DATA 0x1u /* read every pack whole and every blob back */
#define REPO_VERIFY_MARK 0x2u      /* mark the damaged blobs found (repo_mark_damaged) */

/* Receives one line per finding (arg, level, line), without a trailing newline. */
typedef void (*repo_verify_fn)(void *arg, enum repo_verify_level level, const char *line);

struct repo_verify_result {
	uint64_t snapshots;  /* manifests listed */
	uint64_t indexes;    /* index files listed */
	uint64_t packs;      /* packs the index names */
	uint64_t blobs;      /* blobs in the index */
	uint64_t blobs_read; /* blobs decompressed and re-hashed (read_data) */
	uint64_t bytes_read; /* pack bytes read (read_data) */
	uint64_t blobs_marked; /* damaged blobs found now and marked (REPO_VERIFY_MARK) */
	uint64_t problems;
	uint64_t notes;
};

/*
 * Check the repository r was opened on (r, flags, fn, arg, out):
 *   - every index file decoded at open (else "index X: checksum mismatch", ...);
 *   - every pack an index names exists with the indexed size ("pack Z: missing (the
 *     index lists N blobs in it)", "pack Z: size A, the index says B"); a pack in no index
 *     is a NOTE whose hint says what prune will do with it (prune.h: after the grace
 *     period, unless an index is damaged, when 'images repair' comes first), and so are
 *     the leftovers of interrupted writes (backend_leftovers);
 *   - with REPO_VERIFY_READ_DATA, every pack is read whole: trailing checksum ("pack Z:
 *     checksum mismatch"), name = content hash, trailer against the index (opened, when
 *     sealed), and every blob decompressed and its id re-computed ("pack Z: blob Y:
 *     ..."); when the pack as a whole fails, each blob the index places in it is read on
 *     its own, so the damage is narrowed to blobs. A damaged copy a damaged/ list marks
 *     already, or that the index does not use, is a NOTE; one newly found is a PROBLEM
 *     and, with REPO_VERIFY_MARK, is marked, so the next backup stores it again;
 *   - every manifest decodes ("snapshot X: <reason>") and every blob it references is
 *     in the index with the right length ("snapshot X: blob Y (memory chunk 17, gpa
 *     0x110000) missing from the index"), and lies in no missing or damaged pack.
 * Without READ_DATA only names and sizes are checked (no pack bytes are read): cheap
 * on S3. Callers choose; the CLI reads data by default for local repositories, where
 * reading is cheap. Lines go to fn (may be NULL); counts to out. Blobs put since the
 * last repo_flush are not checked. Returns 0 when the check ran (whatever it found),
 * or -ENOMEM / a backend listing error when it could not run.
 */
int repo_verify(struct repo *r, unsigned flags, repo_verify_fn fn, void *arg,
		struct repo_verify_result *out);

#endif
