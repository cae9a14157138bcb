/* --verify: digests of every page and disk block, compared on both ends before commit. */
#ifndef MIGRATE_VERIFY_H
#define MIGRATE_VERIFY_H

#include <stddef.h>
#include <stdint.h>

#include "migrate/proto.h"

/*
 * A digest is the first MIG_DIGEST_BYTES of SHA-256 over the page or block, little-endian
 * as a u64; an all-zero page or block has the digest 0 (and is not hashed), a non-zero
 * one never does. Both ends compute them the same way over their own copy while the
 * guest is paused at the source and not yet started at the destination, so equal
 * digests mean equal contents (a chance of 2^-64 per page otherwise): a page the dirty
 * log missed, or one the stream damaged past its checks, shows up before commit.
 *
 * Cost: SHA-256 of every non-zero page, split over up to MIG_VERIFY_THREADS threads, on
 * both ends at once (the destination checks each VERIFY record as it arrives), plus 8
 * bytes per page on the wire. README and bench/migrate have the figures.
 */
#define MIG_VERIFY_THREADS 4

/*
 * Digest pages [first, first + n) of a region mapped at base into out (n u64s).
 * populated, if not NULL, is the region's vm_ram_populated bitmap (bit p of word p/64 for
 * page p): a page clear there was never touched and is zero without being read. Returns
 * 0, or -ENOMEM or -EIO (OpenSSL failed): then out must not be compared.
 */
int mig_digest_pages(const uint8_t *base, uint64_t first, uint64_t n,
		     const uint64_t *populated, uint64_t *out);

/*
 * The digest of one block of len bytes (a disk block; the last may be short) into *out.
 * Returns 0, -ENOMEM or -EIO.
 */
int mig_digest_block(const uint8_t *p, size_t len, uint64_t *out);

#endif
