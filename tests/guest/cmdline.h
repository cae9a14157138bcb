/* The test guest's command line options and their parser. */
#ifndef GUEST_CMDLINE_H
#define GUEST_CMDLINE_H

#include <stdbool.h>
#include <stdint.h>

#define CMDLINE_DISK_OPS_MAX 16
#define CMDLINE_MB_MAX 65536            /* the identity map ends at 64 GiB anyway */
#define CMDLINE_RATE_MAX 65536          /* MiB/s */
#define CMDLINE_DISK_COUNT_MAX (1u << 24) /* sectors per option: 8 GiB */
#define CMDLINE_IPS_MAX 2               /* one ip= per NIC (VNET_NICS_MAX) */

/* One disk= option: 'w' writes the pattern, 'v' verifies it, 'r' reads and checksums. */
struct disk_op {
	char kind;
	uint64_t lba;
	uint64_t count;
	uint64_t seed;                  /* unused for 'r' */
};

struct guest_options {
	uint64_t mb;                    /* working set size in MiB; 0 = none */
	uint64_t rate;                  /* MiB/s rewritten; 0 = heartbeats only */
	bool verify;                    /* re-verify 64 pages per heartbeat */
	uint64_t poweroff;              /* power off after this heartbeat; 0 = never */
	uint32_t disk_ops;
	struct disk_op disk[CMDLINE_DISK_OPS_MAX];
	uint32_t nip;                   /* ip= options: the i-th is NIC i's IPv4 address */
	uint32_t ip[CMDLINE_IPS_MAX];
};

/*
 * Fills *opt with the defaults (mb=16 rate=8), then applies each space-separated
 * key=value token in order. A token it does not accept is printed as
 * "GUEST bad option <token>" and otherwise ignored; nothing outside *opt is written.
 */
void cmdline_parse(const char *cmdline, struct guest_options *opt);

#endif
