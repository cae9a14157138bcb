/* Freestanding helpers of the test guest: memory and string routines, hashes, number parsing. */
#ifndef GUEST_LIB_H
#define GUEST_LIB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The compiler may emit calls to these four even with -ffreestanding, so lib.c defines them. */
void *memset(void *dst, int c, size_t n);
void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);

/* The splitmix64 finaliser (x += golden ratio, then two xor-shift-multiply rounds). */
static inline uint64_t splitmix64(uint64_t x)
{
	uint64_t z;

	x += 0x9e3779b97f4a7c15ULL;
	z = x;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Fills the CRC-32 table; call once before crc32_update. */
void crc32_init(void);

/* Continues a zlib-compatible CRC-32 (IEEE, reflected): start with crc = 0. */
uint32_t crc32_update(uint32_t crc, const void *buf, size_t len);

/*
 * Parses a whole decimal or 0x-hex number from s[0..len) into *out (len counts the
 * digits and any prefix). Returns false on an empty string, a stray character or overflow.
 */
bool parse_u64(const char *s, size_t len, uint64_t *out);

#endif
