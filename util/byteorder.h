/* Little-endian integer encode and decode for wire formats, so no struct is ever cast onto a buffer. */
#ifndef UTIL_BYTEORDER_H
#define UTIL_BYTEORDER_H

#include <stddef.h>
#include <stdint.h>

/*
 * Every transport wire format stores integers little-endian through these helpers. They
 * compile to single loads and stores on x86_64 and are alignment-safe everywhere.
 */
static inline void le16_encode(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void le32_encode(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static inline void le64_encode(uint8_t *p, uint64_t v)
{
	le32_encode(p, (uint32_t)v);
	le32_encode(p + 4, (uint32_t)(v >> 32));
}

static inline uint16_t le16_decode(const uint8_t *p)
{
	return (uint16_t)(p[0] | (uint16_t)p[1] << 8);
}

static inline uint32_t le32_decode(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t le64_decode(const uint8_t *p)
{
	return (uint64_t)le32_decode(p) | (uint64_t)le32_decode(p + 4) << 32;
}

/* Big-endian, for the few foreign formats that use it (librsync's signature header). */
static inline uint32_t be32_decode(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

#endif
