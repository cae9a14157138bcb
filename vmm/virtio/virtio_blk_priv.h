/* The virtio-blk device object, shared by the request path and its state save/load. */
#ifndef VMM_VIRTIO_VIRTIO_BLK_PRIV_H
#define VMM_VIRTIO_VIRTIO_BLK_PRIV_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vmm/devices.h"
#include "vmm/disk_log.h"
#include "vmm/virtio/virtio_priv.h"
#include "vmm/virtio/virtqueue.h"

#define VBLK_QUEUE_NUM VIRTIO_BLK_QUEUE_NUM
#define VBLK_SEG_MAX   (VBLK_QUEUE_NUM - 2) /* data segments beside header and status */

/*
 * Fields above lock are set by virtio_blk_create and read-only afterwards. Everything
 * below it is owned by whichever thread holds lock: vCPU threads through the BAR0
 * handlers (a queue notify serves requests while holding it). The plain fields from
 * guest_features to broken are the whole device state virtio_blk_state.c saves; the
 * ring itself lives in guest RAM.
 */
struct virtio_blk {
	struct pci_bus *pci;
	unsigned slot, gsi;
	const struct guest_mem *mem;
	struct irq_chip irq;
	int fd;
	bool read_only;
	uint64_t capacity_sectors;
	uint32_t host_features;
	uint8_t config[VIRTIO_BLK_CFG_BYTES];
	char id[VIRTIO_BLK_ID_BYTES]; /* GET_ID answer, NUL-padded */

	pthread_mutex_t lock;
	uint32_t guest_features;
	uint32_t queue_pfn;      /* 0: no queue */
	uint16_t queue_sel;
	uint16_t last_avail_idx; /* next available-ring entry to serve */
	uint16_t used_idx;       /* next used-ring entry to fill; equals last_avail_idx */
	uint8_t status;
	uint8_t isr;
	bool broken;             /* the driver corrupted the ring: idle until reset */
	bool has_log;            /* set at create: log below is in use (writable disk) */
	struct disk_log log;     /* blocks written, marked in vblk_rw under lock */

	/* Scratch for the request being served. */
	struct vq_seg seg[VBLK_QUEUE_NUM];
	struct iovec iov[VBLK_QUEUE_NUM];
	struct vq_seg piece[VBLK_QUEUE_NUM]; /* what iov maps, for dirty marks */
};

#endif
