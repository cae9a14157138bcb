/* A guest driver made of fuzz input, for the virtqueue walker of any legacy virtio-pci device. */
#ifndef TESTS_FUZZ_FUZZ_VIRTQ_H
#define TESTS_FUZZ_FUZZ_VIRTQ_H

#include <stddef.h>
#include <stdint.h>

#include "vmm/bus.h"
#include "vmm/devices.h"
#include "vmm/guest_mem.h"
#include "vmm/irq.h"

/*
 * One harness per device (fuzz_virtio_blk.c; a virtio-net harness is the same few
 * lines): it describes its device with a struct fuzz_virtq_dev and hands the input to
 * fuzz_virtq_run. Guest RAM is a plain buffer of FUZZ_VIRTQ_RAM_BYTES at gpa 0; the
 * device is the real one, on a real PCI bus, reached through its BAR0 registers exactly
 * as a vCPU's port I/O reaches it.
 *
 * Input: a sequence of operations, each an opcode byte and its arguments (little-endian),
 * at most FUZZ_VIRTQ_MAX_OPS of them:
 *
 *   0 POKE    gpa u32, len u8, len bytes     write guest RAM (descriptors, rings, buffers)
 *   1 OUT     off u8, size u8, value u32     write a BAR0 register (size 1, 2 or 4)
 *   2 IN      off u8, size u8                read a BAR0 register (ISR reads clear it)
 *   3 NOTIFY  queue u16                      kick a queue: the walker serves it
 *   4 INIT    features u32, queue u16, pfn u32   a driver's probe: reset, ACK, DRIVER,
 *                                          features, select and place the queue, DRIVER_OK
 *   5 CONFIG  reg u8, value u32              write the device's PCI config space
 *   6 EVENT   len u8, len bytes              hand bytes to the device's backend (net RX);
 *                                          ignored by devices without one
 *
 * Seeds are written with the fuzz_virtq_seed_* helpers below, so they follow the format.
 */
#define FUZZ_VIRTQ_RAM_BYTES (256u << 10)
#define FUZZ_VIRTQ_MAX_OPS 64

enum fuzz_virtq_op {
	FUZZ_VIRTQ_POKE = 0,
	FUZZ_VIRTQ_OUT,
	FUZZ_VIRTQ_IN,
	FUZZ_VIRTQ_NOTIFY,
	FUZZ_VIRTQ_INIT,
	FUZZ_VIRTQ_CONFIG,
	FUZZ_VIRTQ_EVENT,
	FUZZ_VIRTQ_NOPS
};

struct fuzz_virtq_dev {
	/* Add the device to pci over guest memory mem, interrupts to irq (dev, ...). */
	int (*create)(void **dev, struct pci_bus *pci, const struct guest_mem *mem,
		      const struct irq_chip *irq);
	void (*destroy)(void *dev);
	/* Optional: deliver bytes from the outside world (a frame arriving on a tap). */
	void (*event)(void *dev, const uint8_t *data, size_t len);
};

/* Run one input against a fresh device and fresh RAM (d, data, size). Returns 0. */
int fuzz_virtq_run(const struct fuzz_virtq_dev *d, const uint8_t *data, size_t size);

/* ---- Writing seeds ----------------------------------------------------------------------- */

/* A seed being written: a growing buffer of operations, and the driver's view of RAM. */
struct fuzz_virtq_seed {
	uint8_t *buf;
	size_t len, cap;
	uint32_t ring_gpa;  /* the queue the seed's driver set up */
	unsigned queue_num; /* its size */
	uint16_t avail_idx;
};

/* Start a seed whose driver probes the device with features and a queue at ring_gpa. */
void fuzz_virtq_seed_init(struct fuzz_virtq_seed *s, uint32_t features, uint16_t queue,
			  uint32_t ring_gpa, unsigned queue_num);
/* Append a POKE of len bytes at gpa (s, gpa, data, len); split into 255-byte pieces. */
void fuzz_virtq_seed_poke(struct fuzz_virtq_seed *s, uint32_t gpa, const void *data, size_t len);
/* Write descriptor i of the table at table_gpa (s, table_gpa, i, addr, len, flags, next). */
void fuzz_virtq_seed_desc(struct fuzz_virtq_seed *s, uint32_t table_gpa, unsigned i,
			  uint64_t addr, uint32_t len, uint16_t flags, uint16_t next);
/* Make head available on queue (its avail ring entry and index) and notify (s, queue, head). */
void fuzz_virtq_seed_kick(struct fuzz_virtq_seed *s, uint16_t queue, uint16_t head);
/* Append a raw operation (s, bytes, len). */
void fuzz_virtq_seed_raw(struct fuzz_virtq_seed *s, const void *bytes, size_t len);
/* Write the seed as dir/name and free it (s, dir, name). Returns 0 or -errno. */
int fuzz_virtq_seed_write(struct fuzz_virtq_seed *s, const char *dir, const char *name);

#endif
