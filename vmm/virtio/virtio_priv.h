/* Legacy virtio-pci registers, the split virtqueue in guest RAM, and virtio-blk requests. */
#ifndef VMM_VIRTIO_VIRTIO_PRIV_H
#define VMM_VIRTIO_VIRTIO_PRIV_H

#include <stdint.h>
#include <string.h>

#include "util/byteorder.h"

/*
 * Legacy virtio-pci (virtio 0.9.5; virtio 1.x "Legacy Interface: A Note on PCI Device
 * Layout"): BAR0 is I/O space, guest-native (little-endian on x86) registers:
 *
 *   0x00  device features (32, RO)      0x04  guest features (32, RW)
 *   0x08  queue address, PFN (32, RW)   0x0c  queue size (16, RO)
 *   0x0e  queue select (16, RW)         0x10  queue notify (16, WO)
 *   0x12  device status (8, RW)         0x13  ISR status (8, RO; read clears)
 *   0x14  device-specific config (no MSI-X, so it starts here)
 */
#define VIRTIO_PCI_HOST_FEATURES  0x00
#define VIRTIO_PCI_GUEST_FEATURES 0x04
#define VIRTIO_PCI_QUEUE_PFN      0x08
#define VIRTIO_PCI_QUEUE_NUM      0x0c
#define VIRTIO_PCI_QUEUE_SEL      0x0e
#define VIRTIO_PCI_QUEUE_NOTIFY   0x10
#define VIRTIO_PCI_STATUS         0x12
#define VIRTIO_PCI_ISR            0x13
#define VIRTIO_PCI_CONFIG         0x14
#define VIRTIO_PCI_BAR_BYTES      0x40

#define VIRTIO_PCI_VENDOR         0x1af4
#define VIRTIO_PCI_DEVICE_BLK     0x1001 /* transitional id: 0x1000 + device type - 1 */
#define VIRTIO_ID_BLOCK           2      /* subsystem id of a legacy device */
#define VIRTIO_PCI_CLASS_STORAGE  0x018000u
#define VIRTIO_PCI_DEVICE_NET     0x1000 /* transitional id of a network device */
#define VIRTIO_ID_NET             1
#define VIRTIO_PCI_CLASS_NETWORK  0x020000u

#define VIRTIO_PCI_QUEUE_ADDR_SHIFT 12 /* the PFN counts 4096-byte pages */
#define VIRTIO_PCI_VRING_ALIGN      4096

#define VIRTIO_STATUS_ACKNOWLEDGE  0x01
#define VIRTIO_STATUS_DRIVER       0x02
#define VIRTIO_STATUS_DRIVER_OK    0x04
#define VIRTIO_STATUS_FEATURES_OK  0x08
#define VIRTIO_STATUS_NEEDS_RESET  0x40 /* set when the driver broke the ring */
#define VIRTIO_STATUS_FAILED       0x80

#define VIRTIO_ISR_QUEUE  0x1
#define VIRTIO_ISR_CONFIG 0x2

#define VIRTIO_F_ANY_LAYOUT         27 /* legacy: buffers need not follow the header's layout */
#define VIRTIO_RING_F_INDIRECT_DESC 28
#define VIRTIO_RING_F_EVENT_IDX     29 /* used_event / avail_event replace the flags */

/*
 * Split virtqueue, legacy layout for queue size N at PFN << 12 (all little-endian):
 *
 *   +0                     descriptor table: N x { addr u64, len u32, flags u16, next u16 }
 *   +16N                   available ring:   flags u16, idx u16, ring[N] u16, used_event u16
 *   +ALIGN(16N+6+2N,4096)  used ring:        flags u16, idx u16,
 *                                            ring[N] { id u32, len u32 }, avail_event u16
 *
 * The driver owns the descriptors and the available ring; the device owns the used ring.
 * Indices are free-running u16 counters; ring slots are idx % N. An indirect descriptor
 * points at a table of len / 16 descriptors laid out like the main table.
 */
#define VRING_DESC_BYTES        16
#define VRING_DESC_F_NEXT       1
#define VRING_DESC_F_WRITE      2
#define VRING_DESC_F_INDIRECT   4
#define VRING_AVAIL_IDX_OFF     2
#define VRING_AVAIL_RING_OFF    4
#define VRING_USED_IDX_OFF      2
#define VRING_USED_RING_OFF     4
#define VRING_USED_ELEM_BYTES   8
#define VRING_USED_F_NO_NOTIFY     1 /* used->flags: the device asks for no kicks */
#define VRING_AVAIL_F_NO_INTERRUPT 1 /* avail->flags: the driver asks for no interrupts */

static inline uint64_t vring_avail_off(unsigned num)
{
	return (uint64_t)VRING_DESC_BYTES * num;
}

static inline uint64_t vring_used_off(unsigned num)
{
	uint64_t end = vring_avail_off(num) + 6 + 2ULL * num;

	return (end + VIRTIO_PCI_VRING_ALIGN - 1) & ~(uint64_t)(VIRTIO_PCI_VRING_ALIGN - 1);
}

/* Bytes from the queue base to the end of the used ring, avail_event included. */
static inline uint64_t vring_bytes(unsigned num)
{
	return vring_used_off(num) + 6 + (uint64_t)VRING_USED_ELEM_BYTES * num;
}

/* One descriptor, copied out of guest memory once so the guest cannot change it under us. */
struct vring_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

static inline struct vring_desc vring_desc_decode(const uint8_t *p)
{
	uint8_t raw[VRING_DESC_BYTES];

	memcpy(raw, p, sizeof(raw));
	return (struct vring_desc){
		.addr = le64_decode(raw),
		.len = le32_decode(raw + 8),
		.flags = le16_decode(raw + 12),
		.next = le16_decode(raw + 14),
	};
}

/* The other direction, for drivers (tests) that build descriptor tables. */
static inline void vring_desc_encode(uint8_t *p, uint64_t addr, uint32_t len, uint16_t flags,
				     uint16_t next)
{
	le64_encode(p, addr);
	le32_encode(p + 8, len);
	le16_encode(p + 12, flags);
	le16_encode(p + 14, next);
}

/*
 * virtio-blk. Feature bits, and the device config at BAR0 + 0x14 (little-endian):
 *
 *   +0x00 capacity u64 (512-byte sectors)   +0x08 size_max u32   +0x0c seg_max u32
 *   +0x10 geometry { cylinders u16, heads u8, sectors u8 }       +0x14 blk_size u32
 *   +0x18 .. end of BAR: topology, writeback and later fields, all zero here
 *
 * A request is a descriptor chain: the driver's readable header, then data (readable for
 * OUT, writable for IN), then one writable status byte at the very end:
 *
 *   +0 type u32   +4 reserved (ioprio) u32   +8 sector u64      (16 bytes)
 */
#define VIRTIO_BLK_F_SIZE_MAX 1
#define VIRTIO_BLK_F_SEG_MAX  2
#define VIRTIO_BLK_F_GEOMETRY 4
#define VIRTIO_BLK_F_RO       5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH    9

#define VIRTIO_BLK_CFG_CAPACITY 0x00
#define VIRTIO_BLK_CFG_SIZE_MAX 0x08
#define VIRTIO_BLK_CFG_SEG_MAX  0x0c
#define VIRTIO_BLK_CFG_GEOMETRY 0x10
#define VIRTIO_BLK_CFG_BLK_SIZE 0x14
#define VIRTIO_BLK_CFG_BYTES    (VIRTIO_PCI_BAR_BYTES - VIRTIO_PCI_CONFIG)

#define VIRTIO_BLK_HDR_BYTES  16
#define VIRTIO_BLK_T_IN       0
#define VIRTIO_BLK_T_OUT      1
#define VIRTIO_BLK_T_FLUSH    4
#define VIRTIO_BLK_T_GET_ID   8
#define VIRTIO_BLK_ID_BYTES   20

#define VIRTIO_BLK_S_OK       0
#define VIRTIO_BLK_S_IOERR    1
#define VIRTIO_BLK_S_UNSUPP   2

#define VIRTIO_BLK_SECTOR_BYTES 512
#define VIRTIO_BLK_QUEUE_NUM    256

_Static_assert(VIRTIO_BLK_CFG_BLK_SIZE + 4 <= VIRTIO_BLK_CFG_BYTES, "blk config fits BAR0");

/*
 * virtio-net (virtio 1.x section 5.1 and its legacy notes). Queues: 0 receive, 1
 * transmit, 2 control (with CTRL_VQ). Device config at BAR0 + 0x14 (little-endian):
 *
 *   +0x00 mac[6]          (F_MAC; legacy drivers may write it to change the address)
 *   +0x06 status u16      (F_STATUS: S_LINK_UP, S_ANNOUNCE)
 *
 * Every frame on the receive and transmit queues starts with a header, which the tap
 * (IFF_VNET_HDR) reads and writes in the same layout, so it passes through unchanged:
 *
 *   +0 flags u8 (HDR_F_NEEDS_CSUM, HDR_F_DATA_VALID)   +1 gso_type u8 (GSO_*, ECN bit)
 *   +2 hdr_len u16   +4 gso_size u16   +6 csum_start u16   +8 csum_offset u16
 *   +10 num_buffers u16   (only with F_MRG_RXBUF: then the header is 12 bytes, else 10)
 *
 * A control command is a chain: readable {class u8, command u8, data...}, then one
 * writable ack byte (CTRL_OK or CTRL_ERR).
 */
#define VIRTIO_NET_F_CSUM           0
#define VIRTIO_NET_F_GUEST_CSUM     1
#define VIRTIO_NET_F_MAC            5
#define VIRTIO_NET_F_GUEST_TSO4     7
#define VIRTIO_NET_F_GUEST_TSO6     8
#define VIRTIO_NET_F_HOST_TSO4      11
#define VIRTIO_NET_F_HOST_TSO6      12
#define VIRTIO_NET_F_MRG_RXBUF      15
#define VIRTIO_NET_F_STATUS         16
#define VIRTIO_NET_F_CTRL_VQ        17
#define VIRTIO_NET_F_CTRL_RX        18
#define VIRTIO_NET_F_GUEST_ANNOUNCE 21

#define VIRTIO_NET_CFG_MAC          0x00
#define VIRTIO_NET_CFG_STATUS       0x06
#define VIRTIO_NET_CFG_BYTES        0x08
#define VIRTIO_NET_S_LINK_UP        1
#define VIRTIO_NET_S_ANNOUNCE       2

#define VIRTIO_NET_HDR_BYTES        10
#define VIRTIO_NET_HDR_MRG_BYTES    12
#define VIRTIO_NET_HDR_NUM_BUFFERS  10 /* offset of num_buffers */
#define VIRTIO_NET_HDR_F_NEEDS_CSUM 1
#define VIRTIO_NET_HDR_GSO_NONE     0
#define VIRTIO_NET_HDR_GSO_TCPV4    1
#define VIRTIO_NET_HDR_GSO_TCPV6    4
#define VIRTIO_NET_HDR_GSO_ECN      0x80

#define VIRTIO_NET_CTRL_RX          0
#define VIRTIO_NET_CTRL_RX_PROMISC  0
#define VIRTIO_NET_CTRL_RX_ALLMULTI 1
#define VIRTIO_NET_CTRL_MAC         1
#define VIRTIO_NET_CTRL_MAC_TABLE_SET 0
#define VIRTIO_NET_CTRL_ANNOUNCE    3
#define VIRTIO_NET_CTRL_ANNOUNCE_ACK 0
#define VIRTIO_NET_CTRL_OK          0
#define VIRTIO_NET_CTRL_ERR         1

#define VIRTIO_NET_Q_RX             0
#define VIRTIO_NET_Q_TX             1
#define VIRTIO_NET_Q_CTRL           2
#define VIRTIO_NET_QUEUES           3
#define VIRTIO_NET_QUEUE_NUM        256

_Static_assert(VIRTIO_PCI_CONFIG + VIRTIO_NET_CFG_BYTES <= VIRTIO_PCI_BAR_BYTES,
	       "net config fits BAR0");

#endif
