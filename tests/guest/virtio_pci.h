/* The legacy virtio-pci interface as the test guest's drivers see it: BAR0 registers, the ring. */
#ifndef GUEST_VIRTIO_PCI_H
#define GUEST_VIRTIO_PCI_H

#include <stdint.h>

#define PCI_VENDOR_VIRTIO 0x1af4

/* Legacy virtio header in BAR0's I/O space, without MSI-X (device config at 20). */
#define VIO_HOST_FEATURES 0
#define VIO_GUEST_FEATURES 4
#define VIO_QUEUE_PFN 8
#define VIO_QUEUE_SIZE 12
#define VIO_QUEUE_SELECT 14
#define VIO_QUEUE_NOTIFY 16
#define VIO_STATUS 18
#define VIO_ISR 19
#define VIO_CONFIG 20

#define VIO_STATUS_ACK 1
#define VIO_STATUS_DRIVER 2
#define VIO_STATUS_DRIVER_OK 4

/* Split ring, legacy layout: descriptors, avail ring, then the used ring at the next 4 KiB. */
#define VRING_DESC_F_NEXT 1
#define VRING_DESC_F_WRITE 2
#define VRING_ALIGN 4096

struct vring_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

/* Offset of the used ring in a legacy ring of size entries. */
static inline uint64_t vring_used_offset(uint64_t size)
{
	return (16 * size + 6 + 2 * size + VRING_ALIGN - 1) & ~(uint64_t)(VRING_ALIGN - 1);
}

#endif
