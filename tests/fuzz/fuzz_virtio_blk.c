/* Fuzz virtio-blk's virtqueue walker and request handling (vmm/virtio/virtio_blk.c) as a guest driver would. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/fuzz_virtq.h"
#include "vmm/virtio/virtio_priv.h"

/* The device under test, on a 32 KiB disk in a memfd (fresh for every input). */
#define DISK_BYTES (64u * VIRTIO_BLK_SECTOR_BYTES)

struct blk {
	struct virtio_blk *vb;
	int fd;
};

static int blk_create(void **out, struct pci_bus *pci, const struct guest_mem *mem,
		      const struct irq_chip *irq)
{
	struct blk *b = fuzz_alloc(sizeof(*b));
	struct virtio_blk_config cfg;
	char path[64], err[256];

	b->fd = memfd_create("godwit-fuzz-blk", MFD_CLOEXEC);
	if (b->fd < 0 || ftruncate(b->fd, DISK_BYTES) < 0)
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", b->fd);
	cfg = (struct virtio_blk_config){ .path = path };
	if (virtio_blk_create(&b->vb, pci, mem, irq, &cfg, err, sizeof(err)) < 0)
		abort();
	*out = b;
	return 0;
}

static void blk_destroy(void *dev)
{
	struct blk *b = dev;

	virtio_blk_destroy(b->vb);
	close(b->fd);
	free(b);
}

static const struct fuzz_virtq_dev blk_dev = {
	.create = blk_create,
	.destroy = blk_destroy,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_virtq_run(&blk_dev, data, size);
}

/* ---- Seeds: requests as Linux's virtio_blk driver makes them ------------------------------ */

#define RING 0x1000u
#define HDR 0x8000u
#define DATA 0x9000u
#define STATUS 0xa000u
#define INDIRECT 0xb000u
#define FEATURES (1u << VIRTIO_BLK_F_SEG_MAX | 1u << VIRTIO_BLK_F_BLK_SIZE | \
		  1u << VIRTIO_BLK_F_FLUSH | 1u << VIRTIO_RING_F_INDIRECT_DESC)

static void header(struct fuzz_virtq_seed *s, uint32_t at, uint32_t type, uint64_t sector)
{
	uint8_t h[VIRTIO_BLK_HDR_BYTES];

	le32_encode(h, type);
	le32_encode(h + 4, 0);
	le64_encode(h + 8, sector);
	fuzz_virtq_seed_poke(s, at, h, sizeof(h));
}

/* Header, one data buffer (none for len 0), status: descriptors first..first+2. */
static void request(struct fuzz_virtq_seed *s, uint16_t first, uint32_t type, uint64_t sector,
		    uint32_t len, bool device_writes)
{
	uint32_t h = HDR + 16u * first, st = STATUS + first;

	header(s, h, type, sector);
	if (len) {
		fuzz_virtq_seed_desc(s, RING, first, h, VIRTIO_BLK_HDR_BYTES, VRING_DESC_F_NEXT,
				     (uint16_t)(first + 1));
		fuzz_virtq_seed_desc(s, RING, first + 1u, DATA, len,
				     VRING_DESC_F_NEXT | (device_writes ? VRING_DESC_F_WRITE : 0),
				     (uint16_t)(first + 2));
	} else {
		fuzz_virtq_seed_desc(s, RING, first, h, VIRTIO_BLK_HDR_BYTES, VRING_DESC_F_NEXT,
				     (uint16_t)(first + 2));
	}
	fuzz_virtq_seed_desc(s, RING, first + 2u, st, 1, VRING_DESC_F_WRITE, 0);
	fuzz_virtq_seed_kick(s, 0, first);
}

int fuzz_write_seeds(const char *dir)
{
	static const uint8_t pattern[64] = "godwit fuzz: a sector's worth of data follows, or part";
	struct fuzz_virtq_seed s;
	uint8_t status_read[] = { FUZZ_VIRTQ_IN, VIRTIO_PCI_ISR, 0 };
	int rc;

	/* A read, a write, a flush and GET_ID, each its own chain. */
	fuzz_virtq_seed_init(&s, FEATURES, 0, RING, VIRTIO_BLK_QUEUE_NUM);
	request(&s, 0, VIRTIO_BLK_T_IN, 2, 1024, true);
	fuzz_virtq_seed_poke(&s, DATA, pattern, sizeof(pattern));
	request(&s, 3, VIRTIO_BLK_T_OUT, 5, 512, false);
	request(&s, 6, VIRTIO_BLK_T_FLUSH, 0, 0, false);
	request(&s, 9, VIRTIO_BLK_T_GET_ID, 0, VIRTIO_BLK_ID_BYTES, true);
	fuzz_virtq_seed_raw(&s, status_read, sizeof(status_read));
	rc = fuzz_virtq_seed_write(&s, dir, "seed-requests");

	/* The same read through an indirect table. */
	if (rc == 0) {
		fuzz_virtq_seed_init(&s, FEATURES, 0, RING, VIRTIO_BLK_QUEUE_NUM);
		header(&s, HDR, VIRTIO_BLK_T_IN, 1);
		fuzz_virtq_seed_desc(&s, INDIRECT, 0, HDR, VIRTIO_BLK_HDR_BYTES, VRING_DESC_F_NEXT, 1);
		fuzz_virtq_seed_desc(&s, INDIRECT, 1, DATA, 512,
				     VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2);
		fuzz_virtq_seed_desc(&s, INDIRECT, 2, STATUS, 1, VRING_DESC_F_WRITE, 0);
		fuzz_virtq_seed_desc(&s, RING, 0, INDIRECT, 3 * VRING_DESC_BYTES,
				     VRING_DESC_F_INDIRECT, 0);
		fuzz_virtq_seed_kick(&s, 0, 0);
		rc = fuzz_virtq_seed_write(&s, dir, "seed-indirect");
	}

	/* A driver that loops its chain, then resets the device and starts over. */
	if (rc == 0) {
		uint8_t reset[] = { FUZZ_VIRTQ_OUT, VIRTIO_PCI_STATUS, 0, 0, 0, 0, 0 };

		fuzz_virtq_seed_init(&s, FEATURES, 0, RING, VIRTIO_BLK_QUEUE_NUM);
		header(&s, HDR, VIRTIO_BLK_T_IN, 0);
		fuzz_virtq_seed_desc(&s, RING, 0, HDR, VIRTIO_BLK_HDR_BYTES, VRING_DESC_F_NEXT, 1);
		fuzz_virtq_seed_desc(&s, RING, 1, DATA, 512, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 0);
		fuzz_virtq_seed_kick(&s, 0, 0);
		fuzz_virtq_seed_raw(&s, reset, sizeof(reset));
		s.avail_idx = 0;
		fuzz_virtq_seed_raw(&s, (uint8_t[]){ FUZZ_VIRTQ_INIT, 0xff, 0xff, 0xff, 0xff, 0, 0,
						     RING >> 12, 0, 0, 0 }, 11);
		request(&s, 4, VIRTIO_BLK_T_IN, 63, 512, true);
		rc = fuzz_virtq_seed_write(&s, dir, "seed-loop-then-reset");
	}
	return rc;
}
