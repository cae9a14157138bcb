/* Port I/O and MMIO dispatch: a small table of ranges under a reader-writer lock. */
#include "vmm/bus.h"

#include <errno.h>
#include <string.h>

int bus_init(struct bus *bus)
{
	memset(bus, 0, sizeof(*bus));
	return -pthread_rwlock_init(&bus->lock, NULL);
}

void bus_destroy(struct bus *bus)
{
	pthread_rwlock_destroy(&bus->lock);
}

/* True if [a, a + alen) and [b, b + blen) share a byte; lengths are non-zero. */
static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a <= b + (blen - 1) && b <= a + (alen - 1);
}

int bus_register(struct bus *bus, uint64_t base, uint64_t len, const struct bus_dev_ops *ops,
		 void *opaque)
{
	int rc = 0;

	if (len == 0 || base + (len - 1) < base)
		return -EINVAL;
	pthread_rwlock_wrlock(&bus->lock);
	for (unsigned i = 0; i < bus->nranges; i++) {
		if (ranges_overlap(base, len, bus->range[i].base, bus->range[i].len)) {
			rc = -EEXIST;
			goto out;
		}
	}
	if (bus->nranges == BUS_MAX_RANGES) {
		rc = -ENOSPC;
		goto out;
	}
	bus->range[bus->nranges++] = (struct bus_range){
		.base = base, .len = len, .ops = ops, .opaque = opaque,
	};
out:
	pthread_rwlock_unlock(&bus->lock);
	return rc;
}

int bus_unregister(struct bus *bus, uint64_t base, void *opaque)
{
	int rc = -ENOENT;

	pthread_rwlock_wrlock(&bus->lock);
	for (unsigned i = 0; i < bus->nranges; i++) {
		if (bus->range[i].base == base && bus->range[i].opaque == opaque) {
			bus->range[i] = bus->range[--bus->nranges];
			rc = 0;
			break;
		}
	}
	pthread_rwlock_unlock(&bus->lock);
	return rc;
}

bool bus_access(struct bus *bus, uint64_t addr, bool is_write, void *data, unsigned size)
{
	struct bus_range r = { 0 };
	bool found = false;

	pthread_rwlock_rdlock(&bus->lock);
	for (unsigned i = 0; i < bus->nranges; i++) {
		if (addr - bus->range[i].base < bus->range[i].len) {
			r = bus->range[i];
			found = true;
			break;
		}
	}
	pthread_rwlock_unlock(&bus->lock);

	/*
	 * The handler runs outside the bus lock: a PCI config write may move a BAR, which
	 * re-registers ranges. A device stays alive until the VM is torn down, after every
	 * vCPU thread has stopped, so r.opaque cannot dangle here.
	 */
	if (!found) {
		if (!is_write)
			memset(data, 0xff, size);
		return false;
	}
	if (is_write)
		r.ops->write(r.opaque, addr - r.base, data, size);
	else
		r.ops->read(r.opaque, addr - r.base, data, size);
	return true;
}
