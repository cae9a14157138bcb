/* The one bounds check for untrusted offsets and lengths. */
#ifndef UTIL_RANGE_H
#define UTIL_RANGE_H

#include <stdbool.h>
#include <stdint.h>

/*
 * The one checked range test for untrusted lengths and offsets: true when [off, off + len)
 * lies inside [0, size), computed without overflow.
 */
static inline bool range_ok(uint64_t off, uint64_t len, uint64_t size)
{
	return off <= size && len <= size - off;
}

#endif
