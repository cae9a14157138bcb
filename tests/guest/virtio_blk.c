/* Finds a legacy virtio-blk PCI device and moves sectors through one polled virtqueue. */
#include "virtio_blk.h"

#include "console.h"
#include "hw.h"
#include "lib.h"
#include "pci.h"
#include "platform.h"
#include "virtio_pci.h"

#define PCI_DEVICE_VIRTIO_BLK_LEGACY 0x1001
#define VBLK_IO_FALLBACK 0xe000         /* 4 KiB aligned, clear of the legacy ISA ports */

#define VIO_BLK_CAPACITY VIO_CONFIG
#define VIO_BLK_F_FLUSH (1u << 9)

#define VRING_MAX 1024
#define VRING_BYTES (32 * 1024)         /* a legacy ring of VRING_MAX entries fits */
#define VBLK_TIMEOUT_TICKS (10 * PLATFORM_TICK_HZ)

struct vblk_req_header {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

/*
 * Driver state; only the BSP uses it. The ring and the buffers are addressed by the device
 * through their physical addresses, which equal their virtual ones here.
 */
struct vblk_dev {
	bool present;
	bool dead;                      /* a request timed out: the ring state is unknown */
	uint16_t iobase;
	uint16_t qsize;
	uint16_t avail_idx;             /* next avail->idx to publish */
	uint16_t used_seen;             /* used->idx consumed so far */
	uint64_t capacity;
	struct vring_desc *desc;
	volatile uint16_t *avail;       /* flags, idx, ring[qsize] */
	volatile uint16_t *used;        /* flags, idx, then {u32 id, u32 len}[qsize] */
};

static struct vblk_dev vblk;
static uint8_t vblk_ring[VRING_BYTES] __attribute__((aligned(4096)));
static uint8_t vblk_data[VBLK_CHUNK_SECTORS * VBLK_SECTOR_BYTES] __attribute__((aligned(4096)));
static struct vblk_req_header vblk_header;
static volatile uint8_t vblk_status;

bool vblk_probe(uint64_t *capacity)
{
	uint16_t io = pci_find_io(PCI_VENDOR_VIRTIO, PCI_DEVICE_VIRTIO_BLK_LEGACY, 0,
				  VBLK_IO_FALLBACK);
	uint32_t features;
	uint64_t ring;

	if (io == 0)
		return false;
	vblk.iobase = io;
	outb(io + VIO_STATUS, 0);
	outb(io + VIO_STATUS, VIO_STATUS_ACK);
	outb(io + VIO_STATUS, VIO_STATUS_ACK | VIO_STATUS_DRIVER);
	features = inl(io + VIO_HOST_FEATURES);
	outl(io + VIO_GUEST_FEATURES, features & VIO_BLK_F_FLUSH);
	outw(io + VIO_QUEUE_SELECT, 0);
	vblk.qsize = inw(io + VIO_QUEUE_SIZE);
	if (vblk.qsize < 4 || vblk.qsize > VRING_MAX) {
		console_printf("DISK unusable qsize=%u\n", vblk.qsize);
		return false;
	}
	/* Legacy layout: descriptors, avail ring, then the used ring at the next 4 KiB. */
	memset(vblk_ring, 0, sizeof(vblk_ring));
	ring = (uint64_t)(uintptr_t)vblk_ring;
	vblk.desc = (struct vring_desc *)vblk_ring;
	vblk.avail = (volatile uint16_t *)(vblk_ring + 16 * vblk.qsize);
	vblk.used = (volatile uint16_t *)(vblk_ring + vring_used_offset(vblk.qsize));
	vblk.avail_idx = 0;
	vblk.used_seen = 0;
	outl(io + VIO_QUEUE_PFN, (uint32_t)(ring >> 12));
	outb(io + VIO_STATUS, VIO_STATUS_ACK | VIO_STATUS_DRIVER | VIO_STATUS_DRIVER_OK);
	vblk.capacity = (uint64_t)inl(io + VIO_BLK_CAPACITY) |
			(uint64_t)inl(io + VIO_BLK_CAPACITY + 4) << 32;
	vblk.present = true;
	vblk.dead = false;
	*capacity = vblk.capacity;
	return true;
}

uint8_t *vblk_buffer(void)
{
	return vblk_data;
}

uint8_t vblk_request(uint32_t type, uint64_t lba, uint32_t sectors)
{
	uint16_t head = 0, n = 0, slot;
	uint64_t until;

	if (!vblk.present || vblk.dead)
		return VBLK_S_IOERR;
	if (type == VBLK_T_FLUSH)
		sectors = 0;
	else if (sectors == 0 || sectors > VBLK_CHUNK_SECTORS)
		return VBLK_S_IOERR;
	vblk_header.type = type;
	vblk_header.reserved = 0;
	vblk_header.sector = lba;
	vblk_status = 0xff;

	/* One request at a time, so it always uses descriptors 0, 1 and 2. */
	vblk.desc[n] = (struct vring_desc){ (uintptr_t)&vblk_header, sizeof(vblk_header),
					    VRING_DESC_F_NEXT, (uint16_t)(n + 1) };
	n++;
	if (sectors) {
		vblk.desc[n] = (struct vring_desc){
			(uintptr_t)vblk_data, sectors * VBLK_SECTOR_BYTES,
			(uint16_t)(VRING_DESC_F_NEXT | (type == VBLK_T_IN ? VRING_DESC_F_WRITE : 0)),
			(uint16_t)(n + 1) };
		n++;
	}
	vblk.desc[n] = (struct vring_desc){ (uintptr_t)&vblk_status, 1, VRING_DESC_F_WRITE, 0 };

	slot = vblk.avail_idx % vblk.qsize;
	vblk.avail[2 + slot] = head;
	/* Descriptors and ring entry are visible before the index (x86 keeps stores in order). */
	compiler_barrier();
	vblk.avail_idx++;
	vblk.avail[1] = vblk.avail_idx;
	compiler_barrier();
	outw(vblk.iobase + VIO_QUEUE_NOTIFY, 0);

	until = ticks_now() + VBLK_TIMEOUT_TICKS;
	while (vblk.used[1] == vblk.used_seen) {
		if (ticks_now() >= until) {
			vblk.dead = true;
			console_printf("DISK timeout type=%u lba=%lu\n", type, lba);
			return VBLK_S_IOERR;
		}
		cpu_relax();
	}
	compiler_barrier();
	vblk.used_seen++;
	/* Reading ISR acknowledges the (unused, masked) interrupt so the line drops. */
	(void)inb(vblk.iobase + VIO_ISR);
	/* A status outside the three the spec defines is the device failing the request. */
	return vblk_status <= VBLK_S_UNSUPP ? vblk_status : VBLK_S_IOERR;
}
