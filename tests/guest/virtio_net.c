/* A polling legacy virtio-net (PCI 1af4:1000) driver for the test guest, run at CPL 3. */
#include "virtio_net.h"

#include "console.h"
#include "hw.h"
#include "lib.h"
#include "pci.h"
#include "virtio_pci.h"

#define PCI_DEVICE_VIRTIO_NET_LEGACY 0x1000
#define VNET_IO_FALLBACK 0xd000

#define VIO_NET_MAC VIO_CONFIG
#define VIO_NET_STATUS (VIO_CONFIG + 6)
#define VIO_ISR_CONFIG 2

#define VNET_F_MAC (1u << 5)
#define VNET_F_STATUS (1u << 16)
#define VNET_F_CTRL_VQ (1u << 17)
#define VNET_F_GUEST_ANNOUNCE (1u << 21)
#define VNET_S_ANNOUNCE 2

#define VRING_AVAIL_F_NO_INTERRUPT 1
#define VRING_USED_F_NO_NOTIFY 1
#define VRING_MAX 256
#define VRING_BYTES (12 * 1024)         /* a legacy ring of VRING_MAX entries fits */

#define VNET_HDR 10
#define VNET_RX_BUFS 64
#define VNET_TX_BUFS 64
#define VNET_BUF_BYTES 2048
#define Q_RX 0
#define Q_TX 1
#define Q_CTRL 2
#define VNET_CTRL_TIMEOUT_TSC (1ULL << 32) /* ~1.5 s at 3 GHz */
#define VNET_TX_WAIT_TSC (1ULL << 24)      /* ~5 ms at 3 GHz: the device is sending */

struct vnet_ring {
	uint16_t size;
	uint16_t avail_idx;             /* next avail->idx to publish */
	uint16_t used_seen;             /* used->idx consumed so far */
	struct vring_desc *desc;
	volatile uint16_t *avail;       /* flags, idx, ring[size] */
	volatile uint16_t *used;        /* flags, idx, then {u32 id, u32 len}[size] */
};

/*
 * One NIC. Receive buffer i is descriptor i, transmit buffer i descriptor i of its
 * queue; physical addresses equal virtual ones here.
 */
struct vnet_dev {
	uint16_t iobase;
	uint8_t mac[6];
	bool ctrl;                      /* CTRL_VQ and GUEST_ANNOUNCE negotiated */
	struct vnet_ring q[3];
	uint16_t rx_pending;            /* buffers taken by vnet_rx, not yet re-posted */
	uint16_t rx_cur;                /* the buffer vnet_rx handed out, valid until done */
	bool rx_held;
	uint16_t tx_free[VNET_TX_BUFS];
	unsigned ntx_free;
	uint8_t ring_mem[3][VRING_BYTES] __attribute__((aligned(4096)));
	uint8_t rx_buf[VNET_RX_BUFS][VNET_BUF_BYTES] __attribute__((aligned(64)));
	uint8_t tx_buf[VNET_TX_BUFS][VNET_BUF_BYTES] __attribute__((aligned(64)));
	uint8_t ctrl_cmd[2];
	volatile uint8_t ctrl_ack;
};

static struct vnet_dev vnet_dev[VNET_NICS_MAX];
static unsigned vnet_count;

static bool vnet_ring_setup(struct vnet_dev *d, unsigned qi)
{
	struct vnet_ring *r = &d->q[qi];
	uint8_t *mem = d->ring_mem[qi];

	outw(d->iobase + VIO_QUEUE_SELECT, (uint16_t)qi);
	r->size = inw(d->iobase + VIO_QUEUE_SIZE);
	if (r->size < VNET_RX_BUFS || r->size > VRING_MAX)
		return false;
	memset(mem, 0, VRING_BYTES);
	r->desc = (struct vring_desc *)mem;
	r->avail = (volatile uint16_t *)(mem + 16 * r->size);
	r->used = (volatile uint16_t *)(mem + vring_used_offset(r->size));
	r->avail_idx = 0;
	r->used_seen = 0;
	/* Polled: ask the device not to raise interrupts for this queue. */
	r->avail[0] = VRING_AVAIL_F_NO_INTERRUPT;
	outl(d->iobase + VIO_QUEUE_PFN, (uint32_t)((uint64_t)(uintptr_t)mem >> 12));
	return true;
}

/* Publish descriptor head in the avail ring (the caller notifies). */
static void vnet_ring_push(struct vnet_ring *r, uint16_t head)
{
	r->avail[2 + r->avail_idx % r->size] = head;
	/* Descriptors and ring entry are visible before the index (x86 keeps stores in order). */
	compiler_barrier();
	r->avail_idx++;
	r->avail[1] = r->avail_idx;
	compiler_barrier();
}

static void vnet_notify(struct vnet_dev *d, unsigned qi)
{
	/*
	 * A full fence: the new avail index must be visible before used->flags is read, or
	 * the device may clear NO_NOTIFY and look at the index in between (x86 lets a load
	 * pass an earlier store), and the kick that was due is never sent.
	 */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!(d->q[qi].used[0] & VRING_USED_F_NO_NOTIFY))
		outw(d->iobase + VIO_QUEUE_NOTIFY, (uint16_t)qi);
}

static bool vnet_setup(struct vnet_dev *d, uint16_t io)
{
	uint32_t features, want;
	struct vnet_ring *rx;

	d->iobase = io;
	outb(io + VIO_STATUS, 0);
	outb(io + VIO_STATUS, VIO_STATUS_ACK);
	outb(io + VIO_STATUS, VIO_STATUS_ACK | VIO_STATUS_DRIVER);
	features = inl(io + VIO_HOST_FEATURES);
	want = features & (VNET_F_MAC | VNET_F_STATUS | VNET_F_CTRL_VQ | VNET_F_GUEST_ANNOUNCE);
	if (!(want & VNET_F_MAC))
		return false;
	if ((want & (VNET_F_CTRL_VQ | VNET_F_GUEST_ANNOUNCE)) != (VNET_F_CTRL_VQ | VNET_F_GUEST_ANNOUNCE))
		want &= ~(VNET_F_CTRL_VQ | VNET_F_GUEST_ANNOUNCE);
	d->ctrl = want & VNET_F_CTRL_VQ;
	outl(io + VIO_GUEST_FEATURES, want);
	for (unsigned i = 0; i < 6; i++)
		d->mac[i] = inb(io + VIO_NET_MAC + i);
	if (!vnet_ring_setup(d, Q_RX) || !vnet_ring_setup(d, Q_TX) ||
	    (d->ctrl && !vnet_ring_setup(d, Q_CTRL)))
		return false;
	rx = &d->q[Q_RX];
	for (uint16_t i = 0; i < VNET_RX_BUFS; i++) {
		rx->desc[i] = (struct vring_desc){ (uintptr_t)d->rx_buf[i], VNET_BUF_BYTES,
						   VRING_DESC_F_WRITE, 0 };
		vnet_ring_push(rx, i);
	}
	d->ntx_free = VNET_TX_BUFS;
	for (uint16_t i = 0; i < VNET_TX_BUFS; i++)
		d->tx_free[i] = i;
	d->rx_pending = 0;
	d->rx_held = false;
	outb(io + VIO_STATUS, VIO_STATUS_ACK | VIO_STATUS_DRIVER | VIO_STATUS_DRIVER_OK);
	outw(io + VIO_QUEUE_NOTIFY, Q_RX);
	return true;
}

unsigned vnet_probe(void)
{
	vnet_count = 0;
	for (unsigned nth = 0; nth < VNET_NICS_MAX; nth++) {
		uint16_t io = pci_find_io(PCI_VENDOR_VIRTIO, PCI_DEVICE_VIRTIO_NET_LEGACY, nth,
					  VNET_IO_FALLBACK);

		if (io == 0)
			break;
		if (!vnet_setup(&vnet_dev[vnet_count], io)) {
			console_printf("NET nic=%u unusable\n", nth);
			break;
		}
		vnet_count++;
	}
	return vnet_count;
}

const uint8_t *vnet_mac(unsigned nic)
{
	return vnet_dev[nic].mac;
}

/* Re-post every receive buffer consumed so far, with one notification. */
static void vnet_rx_refill(struct vnet_dev *d)
{
	if (d->rx_pending == 0)
		return;
	d->rx_pending = 0;
	vnet_notify(d, Q_RX);
}

bool vnet_rx(unsigned nic, const uint8_t **frame, uint32_t *len)
{
	struct vnet_dev *d = &vnet_dev[nic];
	struct vnet_ring *rx = &d->q[Q_RX];
	volatile uint32_t *elem;
	uint32_t id, got;

	if (nic >= vnet_count)
		return false;
	for (;;) {
		if (rx->used[1] == rx->used_seen) {
			vnet_rx_refill(d);
			return false;
		}
		compiler_barrier();
		elem = (volatile uint32_t *)(rx->used + 2) + 2 * (rx->used_seen % rx->size);
		id = elem[0];
		got = elem[1];
		rx->used_seen++;
		if (id < VNET_RX_BUFS && got > VNET_HDR + 14 && got <= VNET_BUF_BYTES)
			break;
		/* A buffer back empty, or an id we never posted: re-post what we can, skip it. */
		if (id < VNET_RX_BUFS) {
			vnet_ring_push(rx, (uint16_t)id);
			d->rx_pending++;
		}
	}
	d->rx_cur = (uint16_t)id;
	d->rx_held = true;
	*frame = d->rx_buf[id] + VNET_HDR;
	*len = got - VNET_HDR;
	return true;
}

void vnet_rx_done(unsigned nic)
{
	struct vnet_dev *d = &vnet_dev[nic];

	if (nic >= vnet_count || !d->rx_held)
		return;
	d->rx_held = false;
	vnet_ring_push(&d->q[Q_RX], d->rx_cur);
	if (++d->rx_pending >= VNET_RX_BUFS / 4)
		vnet_rx_refill(d);
}

/* Take back transmit buffers the device has finished with. */
static void vnet_tx_reclaim(struct vnet_dev *d)
{
	struct vnet_ring *tx = &d->q[Q_TX];

	while (tx->used[1] != tx->used_seen) {
		volatile uint32_t *elem = (volatile uint32_t *)(tx->used + 2) +
					  2 * (tx->used_seen % tx->size);
		uint32_t id = elem[0];

		tx->used_seen++;
		if (id < VNET_TX_BUFS && d->ntx_free < VNET_TX_BUFS)
			d->tx_free[d->ntx_free++] = (uint16_t)id;
	}
}

bool vnet_tx(unsigned nic, const void *frame, uint32_t len)
{
	struct vnet_dev *d = &vnet_dev[nic];
	struct vnet_ring *tx = &d->q[Q_TX];
	uint16_t id;

	if (nic >= vnet_count || len > VNET_FRAME_MAX)
		return false;
	vnet_tx_reclaim(d);
	if (d->ntx_free == 0) {
		/* Every buffer is in flight: the device's I/O thread drains them; wait a little. */
		uint64_t t0 = rdtsc();

		while (d->ntx_free == 0 && rdtsc() - t0 < VNET_TX_WAIT_TSC) {
			cpu_relax();
			vnet_tx_reclaim(d);
		}
		if (d->ntx_free == 0)
			return false;
	}
	id = d->tx_free[--d->ntx_free];
	memset(d->tx_buf[id], 0, VNET_HDR);
	memcpy(d->tx_buf[id] + VNET_HDR, frame, len);
	tx->desc[id] = (struct vring_desc){ (uintptr_t)d->tx_buf[id], VNET_HDR + len, 0, 0 };
	vnet_ring_push(tx, id);
	vnet_notify(d, Q_TX);
	return true;
}

bool vnet_announce_wanted(unsigned nic)
{
	struct vnet_dev *d = &vnet_dev[nic];

	if (nic >= vnet_count || !d->ctrl)
		return false;
	if (!(inb(d->iobase + VIO_ISR) & VIO_ISR_CONFIG))
		return false;
	return (inw(d->iobase + VIO_NET_STATUS) & VNET_S_ANNOUNCE) != 0;
}

bool vnet_announce_ack(unsigned nic)
{
	struct vnet_dev *d = &vnet_dev[nic];
	struct vnet_ring *c = &d->q[Q_CTRL];
	uint64_t t0;

	if (nic >= vnet_count || !d->ctrl)
		return false;
	d->ctrl_cmd[0] = 3; /* VIRTIO_NET_CTRL_ANNOUNCE */
	d->ctrl_cmd[1] = 0; /* VIRTIO_NET_CTRL_ANNOUNCE_ACK */
	d->ctrl_ack = 0xff;
	c->desc[0] = (struct vring_desc){ (uintptr_t)d->ctrl_cmd, 2, VRING_DESC_F_NEXT, 1 };
	c->desc[1] = (struct vring_desc){ (uintptr_t)&d->ctrl_ack, 1, VRING_DESC_F_WRITE, 0 };
	vnet_ring_push(c, 0);
	outw(d->iobase + VIO_QUEUE_NOTIFY, Q_CTRL);
	t0 = rdtsc();
	while (c->used[1] == c->used_seen) {
		if (rdtsc() - t0 > VNET_CTRL_TIMEOUT_TSC)
			return false;
		cpu_relax();
	}
	c->used_seen++;
	compiler_barrier();
	return d->ctrl_ack == 0;
}
