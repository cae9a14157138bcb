/* Encoding cursors and zstd bounds for the repository's disk formats; decoding is util/dec.h. */
#ifndef REPO_CODEC_PRIV_H
#define REPO_CODEC_PRIV_H

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "util/byteorder.h"
#include "util/dec.h"
#include "util/range.h"

/*
 * The most a zstd frame of stored bytes can decode to: every block takes at least 4 bytes
 * (a 3-byte header and one RLE byte) and yields at most 128 KiB. A decoder checks what a
 * header claims against this before it allocates anything for it, so a small object
 * cannot ask for a large buffer.
 */
static inline uint64_t zstd_raw_bound(uint64_t stored)
{
	return (stored / 4 + 1) * (128u << 10);
}

/*
 * An encoder fills a buffer its caller sized exactly beforehand, so running out of room
 * is a program bug (assert), never an input condition.
 */
struct enc {
	uint8_t *p;
	size_t len;
	size_t off;
};

static inline struct enc enc_init(void *p, size_t len)
{
	struct enc e = { .p = p, .len = len, .off = 0 };

	return e;
}

static inline uint8_t *enc_take(struct enc *e, size_t n)
{
	uint8_t *q;

	assert(range_ok(e->off, n, e->len));
	q = e->p + e->off;
	e->off += n;
	return q;
}

static inline void enc_u8(struct enc *e, uint8_t v)
{
	enc_take(e, 1)[0] = v;
}

static inline void enc_u16(struct enc *e, uint16_t v)
{
	le16_encode(enc_take(e, 2), v);
}

static inline void enc_u32(struct enc *e, uint32_t v)
{
	le32_encode(enc_take(e, 4), v);
}

static inline void enc_u64(struct enc *e, uint64_t v)
{
	le64_encode(enc_take(e, 8), v);
}

static inline void enc_bytes(struct enc *e, const void *src, size_t n)
{
	if (n)
		memcpy(enc_take(e, n), src, n);
}

#endif
