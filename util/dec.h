/* The one checked decoder for untrusted bytes: little-endian reads with a sticky error. */
#ifndef UTIL_DEC_H
#define UTIL_DEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A window onto untrusted bytes [p, p + len); nothing ever reads outside it. Every
 * length read from input turns into a pointer only through dec_take(), which checks it
 * with range_ok() (overflow-safe add plus bounds). The rules, the same for every format:
 *   1. A read past the end sets err to -EBADMSG, leaves off where it was, and yields
 *      zeros (dec_take: NULL).
 *   2. The error is sticky: once err is set every later read fails the same way, so a
 *      caller may parse a whole record and check once (dec_done or err).
 *   3. Each read also returns whether the decoder is still good, for callers that stop at
 *      the first failure.
 */
struct dec {
	const uint8_t *p;
	size_t len, off;
	int err; /* 0 or -EBADMSG */
};

/* A decoder over [p, p + len) (p may be NULL when len is 0). */
struct dec dec_init(const void *p, size_t len);

/* n bytes in place, advancing past them; NULL (and rule 1) if fewer remain. */
const uint8_t *dec_take(struct dec *d, uint64_t n);

/* Read one integer into *v (0 on failure). True while the decoder is good. */
bool dec_u8(struct dec *d, uint8_t *v);
bool dec_u16(struct dec *d, uint16_t *v);
bool dec_u32(struct dec *d, uint32_t *v);
bool dec_u64(struct dec *d, uint64_t *v);

/* Copy n bytes to out (zeros on failure). True while the decoder is good. */
bool dec_bytes(struct dec *d, void *out, size_t n);

/* Bytes not yet read (0 once err is set). */
size_t dec_left(const struct dec *d);

/* True when every byte was read without error: records must be consumed exactly. */
bool dec_done(const struct dec *d);

#endif
