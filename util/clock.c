/* Monotonic time: one reading of CLOCK_MONOTONIC, in the unit the caller counts in. */
#include "util/clock.h"

#include <time.h>

uint64_t clock_now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

uint64_t clock_now_us(void)
{
	return clock_now_ns() / 1000;
}

uint64_t clock_now_ms(void)
{
	return clock_now_ns() / 1000000;
}
