/* Port I/O and MMIO dispatch: devices register address ranges, vCPU exits look them up. */
#ifndef VMM_BUS_H
#define VMM_BUS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define BUS_MAX_RANGES 64

/*
 * A device's handlers. off is relative to the registered base; size is 1, 2, 4 or 8.
 * Called from vCPU threads, possibly several at once: a device serialises itself.
 * Reads of unhandled bits fill data; a handler never fails the vCPU for guest input.
 */
struct bus_dev_ops {
	void (*read)(void *opaque, uint64_t off, void *data, unsigned size);
	void (*write)(void *opaque, uint64_t off, const void *data, unsigned size);
};

struct bus_range {
	uint64_t base;
	uint64_t len;
	const struct bus_dev_ops *ops;
	void *opaque;
};

struct bus {
	pthread_rwlock_t lock; /* ranges change (PCI BAR moves) while vCPUs dispatch */
	struct bus_range range[BUS_MAX_RANGES];
	unsigned nranges;
};

int bus_init(struct bus *bus);
void bus_destroy(struct bus *bus);

/* Add [base, base + len). Returns -EEXIST on overlap, -ENOSPC when full, -EINVAL on len 0. */
int bus_register(struct bus *bus, uint64_t base, uint64_t len, const struct bus_dev_ops *ops,
		 void *opaque);

/* Remove the range that starts at base and belongs to opaque. Returns -ENOENT if none. */
int bus_unregister(struct bus *bus, uint64_t base, void *opaque);

/*
 * Dispatch one access. Returns true if a device handled it; an unclaimed read fills data
 * with 0xff bytes (what an empty bus returns) and returns false.
 */
bool bus_access(struct bus *bus, uint64_t addr, bool is_write, void *data, unsigned size);

#endif
