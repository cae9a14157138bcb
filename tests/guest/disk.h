/* The test guest's disk= operations: write, verify and checksum sector patterns. */
#ifndef GUEST_DISK_H
#define GUEST_DISK_H

#include <stdbool.h>

#include "cmdline.h"

/*
 * Runs the disk= options in order and prints one "DISK ..." result line for each, or
 * "DISK none" once when there are options but present is false (no device was found).
 */
void disk_run(const struct guest_options *opt, bool present);

/* The pattern: word k (0..63) of sector s is splitmix64(seed ^ (s << 6 | k)), little-endian. */
uint64_t disk_pattern_word(uint64_t seed, uint64_t sector, uint32_t k);

#endif
