/* The virtio-net device object, shared by its registers, its I/O thread and its saved state. */
#ifndef VMM_VIRTIO_VIRTIO_NET_PRIV_H
#define VMM_VIRTIO_VIRTIO_NET_PRIV_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vmm/devices.h"
#include "vmm/virtio/tap.h"
#include "vmm/virtio/virtio_priv.h"
#include "vmm/virtio/virtqueue.h"

#define VNET_QUEUE_NUM VIRTIO_NET_QUEUE_NUM
/* The largest frame a tap hands over: a 64 KiB GSO packet, its Ethernet and VLAN headers
 * and the longest virtio-net header. A read that fills a slot was cut short: dropped. */
#define VNET_FRAME_MAX (VIRTIO_NET_HDR_MRG_BYTES + 18 + 65535)
#define VNET_SLOT_BYTES (VNET_FRAME_MAX + 1)
/* Frames read from the tap and not yet placed in the guest. */
#define VNET_RXQ_FRAMES 4
#define VNET_MAC_TABLE 64 /* entries per MAC filter table (unicast, multicast) */
#define VNET_BUDGET 64    /* frames or chains per turn, so one queue cannot starve the others */
#define VNET_TX_IOV (VNET_QUEUE_NUM + 1)
/* Frames carried in from a migration's source and not yet placed: at most this many. */
#define VNET_CARRY_FRAMES 1024
#define VNET_CARRY_BYTES (8u << 20)

/* A carried frame (tap header and Ethernet frame, as the source's tap gave it). */
struct vnet_carried {
	struct vnet_carried *next;
	uint32_t len;
	uint8_t data[];
};

/* A used-ring entry waiting to be published: which chain, and the bytes written into it. */
struct vnet_used {
	uint16_t head;
	uint32_t len;
};

/* One virtqueue: what the driver set up, and where the device is in it. */
struct vnet_queue {
	uint32_t pfn;        /* 0: not set up */
	uint16_t last_avail; /* next available entry to take */
	uint16_t used_idx;   /* next used entry to fill; equals last_avail between turns */
	bool mapped;         /* vq is valid (pfn != 0 and the ring lies in RAM) */
	struct vq vq;
	/* EVENT_IDX: the used index at the last interrupt decision (not saved: after a load
	 * the first decision interrupts, which a driver takes as at most a spurious one). */
	uint16_t signalled;
	bool signalled_valid;
};

/* The receive filter the driver sets through the control queue (F_CTRL_RX). */
struct vnet_rx_filter {
	bool promisc, allmulti;
	bool uni_overflow, multi_overflow; /* the driver sent more than the table holds */
	uint32_t n_uni, n_multi;
	uint8_t uni[VNET_MAC_TABLE][6];
	uint8_t multi[VNET_MAC_TABLE][6];
};

/*
 * Frames between the tap reader and RX placement: a bounded FIFO of fixed slots. The
 * reader fills it only while it has room, so a guest without buffers leaves the rest
 * waiting in the tap's own queue (bounded by the tap's txqueuelen; the kernel counts what
 * it drops there). Reading (vnet_tap_read) and placing (vnet_rx_place) are separate
 * steps on purpose: a device paused for good (a migration's source after its final
 * pause) could keep reading into a queue like this one, never touching guest RAM, and
 * hand the frames to the destination.
 */
struct vnet_frameq {
	uint8_t *buf; /* VNET_RXQ_FRAMES slots of VNET_SLOT_BYTES */
	uint32_t len[VNET_RXQ_FRAMES];
	unsigned head, count;
};

/*
 * Threads: vCPU threads run the BAR handlers; one I/O thread per device serves all three
 * queues and reads the tap (virtio_net_io.c); the controller pauses, resumes, saves and
 * loads. Fields above lock are set by virtio_net_create and read-only afterwards, except
 * the ioeventfd placement, owned by whoever holds the PCI bus lock (the BAR's moved
 * callback). Everything below lock is under lock: the I/O thread holds it for a whole
 * turn of work, which is what makes virtio_net_pause a fence (see the timeline in
 * virtio_net.c). The I/O thread's own flags come last.
 */
struct virtio_net {
	struct pci_bus *pci;
	unsigned slot, gsi, index;
	const struct guest_mem *mem;
	struct irq_chip irq;
	struct virtio_net_host host;
	int tap_fd;
	char ifname[TAP_NAME_BYTES];
	uint32_t host_features;
	int kick_fd[VIRTIO_NET_QUEUES]; /* eventfds: a queue notify (KVM ioeventfd, or the BAR) */
	int wake_fd;                    /* eventfd: resume and destroy wake the I/O thread */
	int epoll_fd;
	pthread_t thread;
	bool thread_started;

	bool ioev_on;       /* under the PCI lock: ioeventfds assigned at ioev_port */
	uint16_t ioev_port;

	pthread_mutex_t lock;
	pthread_cond_t cond; /* run or stop changed */
	/* Driver-visible state: what virtio_net_state_save writes. */
	uint32_t guest_features;
	uint8_t status, isr;
	uint16_t queue_sel;
	bool broken;          /* the driver corrupted a ring: idle until reset */
	uint8_t mac[6];
	uint16_t link_status; /* VIRTIO_NET_S_* */
	struct vnet_queue q[VIRTIO_NET_QUEUES];
	struct vnet_rx_filter filter;
	/* Derived from guest_features: header bytes, what the tap was told. */
	unsigned hdr_bytes;
	/* Run control. */
	bool run;     /* the I/O thread may read the tap and touch guest RAM */
	bool stop;    /* the I/O thread exits */
	bool recheck; /* look at every queue on the next turn (after resume or load) */
	struct virtio_net_stats stats;
	struct vnet_frameq rxq;
	/* Frames carried in (virtio_net_carry_in), placed before anything the tap holds. */
	struct vnet_carried *carry_head, *carry_tail;
	uint32_t carry_count;
	uint64_t carry_bytes;

	/* I/O thread only. */
	bool tap_ready;        /* the tap may hold frames (edge seen, no EAGAIN since) */
	bool rx_wait;          /* the head frame found no buffers: wait for an RX notify */
	bool tx_more;          /* the last TX turn ran out of budget */
	bool kick[VIRTIO_NET_QUEUES];
	struct vq_seg seg[VNET_QUEUE_NUM];
	struct vq_seg first_seg[VNET_QUEUE_NUM]; /* RX: the frame's first chain */
	struct iovec iov[VNET_TX_IOV];
	struct vnet_used used[VNET_QUEUE_NUM];
};

/* virtio_net.c */
/* Raise the interrupt for queue qi if the driver did not suppress it (NO_INTERRUPT, or
 * with EVENT_IDX its used_event). lock held. */
void vnet_irq_queue(struct virtio_net *n, unsigned qi);
/*
 * Ask the driver for kicks on queue qi (on) or to spare them (off), by used->flags or,
 * with EVENT_IDX, avail_event = last_avail; both end in a full fence, so the caller then
 * re-reads the avail index before it sleeps. lock held; the queue is mapped.
 */
void vnet_kicks(struct virtio_net *n, unsigned qi, bool on);
/* Stop serving until the driver resets the device, and say so by a config interrupt. */
void vnet_set_broken(struct virtio_net *n);
/* Apply guest_features to the tap (header size, offloads) and hdr_bytes. lock held. */
int vnet_features_apply(struct virtio_net *n);
/* The ring of queue qi, or NULL if the driver has not set it up. lock held. */
struct vq *vnet_queue_ring(struct virtio_net *n, unsigned qi);

/* virtio_net_io.c */
/* The I/O thread's body (arg is the device). */
void *vnet_io_thread(void *arg);

/* virtio_net_carry.c */
/* Move the oldest carried frame into the receive queue (which is empty). Returns true if
 * there was one. lock held. */
bool vnet_carry_pop(struct virtio_net *n);
/* Drop every carried frame, counted in rx_dropped (a reset, a destroy). lock held. */
void vnet_carry_clear(struct virtio_net *n);

/* virtio_net_ctrl.c */
/* Serve the control queue. lock held. */
void vnet_ctrl_serve(struct virtio_net *n);
/* Reset the receive filter to what a driver that never set one gets: everything. */
void vnet_filter_reset(struct vnet_rx_filter *f);
/* Whether f lets a frame for destination MAC dst (6 bytes) through to a device at mac. */
bool vnet_filter_accepts(const struct vnet_rx_filter *f, const uint8_t mac[6],
			 const uint8_t dst[6]);

#endif
