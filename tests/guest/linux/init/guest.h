/* Declarations shared by the files of the Linux test guest's freestanding /init. */
#ifndef GUEST_LINUX_INIT_GUEST_H
#define GUEST_LINUX_INIT_GUEST_H

#include "sys.h"

#define DISK_OPS_MAX 8
#define NET_IPS_MAX 2

/* One console line being built; line_emit() writes it with a single write(2). */
struct line {
	char buf[192];
	size_t len;
};

struct disk_op {
	char kind;          /* 'w', 'v' or 'r' */
	uint64_t lba;
	uint64_t count;
	uint64_t seed;
};

struct params {
	uint64_t mb;
	uint64_t rate;      /* MiB/s rewritten; 0 = heartbeats only */
	uint64_t poweroff;  /* heartbeats before reboot; 0 = run forever */
	int fs;
	int selftest;
	int corrupt;        /* test hook: damage one word after setup */
	int ndisk;
	int disk_bad;       /* a disk= word did not parse */
	struct disk_op disk[DISK_OPS_MAX];
	int nip;            /* ip=ADDR[/PREFIX]: the i-th configures eth<i> */
	char ip[NET_IPS_MAX][24];
};

/* util.c */
/* The compiler may emit calls to these two even in freestanding code. */
void *memset(void *dst, int c, size_t n);
void *memcpy(void *dst, const void *src, size_t n);
size_t str_len(const char *s);
/* Does s start with prefix? */
int str_prefix(const char *s, const char *prefix);
/* Append to a line, silently truncated at its capacity. */
void put_str(struct line *l, const char *s);
void put_u64(struct line *l, uint64_t v);
void put_hex(struct line *l, uint64_t v, int digits);
/* Writes the line and a newline to fd 1 (the console) and empties it. */
void line_emit(struct line *l);
/* One fixed line. */
void say(const char *s);
/* Continue zlib's CRC-32 (IEEE, reflected) over n bytes; start with crc = 0. */
uint32_t crc32_ieee(uint32_t crc, const uint8_t *p, size_t n);
/* CLOCK_MONOTONIC in ns. */
uint64_t now_ns(void);
/*
 * Parses a decimal or 0x-prefixed number at *sp that ends at a NUL or at stop;
 * on success moves *sp past the stop character and returns 0, else returns -1.
 */
int parse_u64(const char **sp, char stop, uint64_t *out);

/* init.c: sleep on CLOCK_MONOTONIC until t_ns. */
void sleep_until(uint64_t t_ns);

/* net.c */
/* ip= words: configure eth<i> and open the services; prints NET lines. */
void net_setup(const struct params *p);
/* Serve the network until until_ns, or return earlier after one round of work. */
void net_wait(uint64_t until_ns);
/* " conn=<accepted> udp=<echoed>" for the heartbeat, when the network is up. */
void net_hb_append(struct line *l);

/* disk.c */
/* Prints DISK cap= (or DISK none) and runs p's disk= operations in order. */
void disk_phase(const struct params *p);
/* fs=1: mount /dev/vda as ext4, write /mnt/hello.txt durably, unmount; prints FS ok|err=. */
void fs_phase(void);

#endif /* GUEST_LINUX_INIT_GUEST_H */
