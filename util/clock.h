/* Monotonic time for timeouts, deadlines and the durations godwit reports. */
#ifndef UTIL_CLOCK_H
#define UTIL_CLOCK_H

#include <stdint.h>

/*
 * CLOCK_MONOTONIC since an arbitrary start (boot), in nanoseconds, microseconds or
 * milliseconds. Never goes back and ignores wall-clock changes, so differences are safe
 * for timeouts; meaningless across processes on different hosts. Never fails on Linux.
 */
uint64_t clock_now_ns(void);
uint64_t clock_now_us(void);
uint64_t clock_now_ms(void);

#endif
