/* virtio-net over legacy virtio-pci on a tap: registers, setup, and pausing with the vCPUs. */
#include "vmm/devices.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include <linux/if_tun.h>

#include "vmm/virtio/tap.h"
#include "vmm/virtio/virtio_net_priv.h"

#define F(bit) (1u << (bit))

/*
 * What the device offers. The checksum and TSO offloads cost nothing here (the tap does
 * the work, and the header passes through); the tap is told to hand over only what the
 * guest acked (vnet_features_apply). Every chain is read and written as a byte stream,
 * so any layout is fine (ANY_LAYOUT: Linux then puts a frame's header in the frame's own
 * buffer, one descriptor instead of an indirect table).
 */
#define VNET_HOST_FEATURES                                                            \
	(F(VIRTIO_NET_F_CSUM) | F(VIRTIO_NET_F_GUEST_CSUM) | F(VIRTIO_NET_F_MAC) |   \
	 F(VIRTIO_NET_F_GUEST_TSO4) | F(VIRTIO_NET_F_GUEST_TSO6) |                   \
	 F(VIRTIO_NET_F_HOST_TSO4) | F(VIRTIO_NET_F_HOST_TSO6) |                     \
	 F(VIRTIO_NET_F_MRG_RXBUF) | F(VIRTIO_NET_F_STATUS) | F(VIRTIO_NET_F_CTRL_VQ) | \
	 F(VIRTIO_NET_F_CTRL_RX) | F(VIRTIO_NET_F_GUEST_ANNOUNCE) |                  \
	 F(VIRTIO_F_ANY_LAYOUT) | F(VIRTIO_RING_F_INDIRECT_DESC) | F(VIRTIO_RING_F_EVENT_IDX))

void virtio_net_mac_derive(const char *tap_name, unsigned index, uint8_t mac[VIRTIO_NET_MAC_BYTES])
{
	uint64_t h = 14695981039346656037ULL; /* FNV-1a 64 */
	const char *salt = "godwit-net";

	for (const char *p = salt; *p; p++)
		h = (h ^ (uint8_t)*p) * 1099511628211ULL;
	for (const char *p = tap_name; *p; p++)
		h = (h ^ (uint8_t)*p) * 1099511628211ULL;
	for (unsigned i = 0; i < 4; i++)
		h = (h ^ (uint8_t)(index >> (8 * i))) * 1099511628211ULL;
	mac[0] = (uint8_t)((h & 0xfc) | 0x02); /* locally administered, unicast */
	for (unsigned i = 1; i < VIRTIO_NET_MAC_BYTES; i++)
		mac[i] = (uint8_t)(h >> (8 * i));
}

struct vq *vnet_queue_ring(struct virtio_net *n, unsigned qi)
{
	struct vnet_queue *q = &n->q[qi];

	if (q->pfn == 0)
		return NULL;
	if (!q->mapped) {
		vnet_set_broken(n); /* set up outside RAM */
		return NULL;
	}
	return &q->vq;
}

void vnet_irq_queue(struct virtio_net *n, unsigned qi)
{
	struct vnet_queue *q = &n->q[qi];

	if (q->mapped && (n->guest_features & F(VIRTIO_RING_F_EVENT_IDX))) {
		bool need = !q->signalled_valid ||
			    vq_need_event(vq_used_event(&q->vq), q->used_idx, q->signalled);

		q->signalled = q->used_idx;
		q->signalled_valid = true;
		if (!need)
			return;
	} else if (q->mapped && (vq_avail_flags(&q->vq) & VRING_AVAIL_F_NO_INTERRUPT)) {
		return;
	}
	n->isr |= VIRTIO_ISR_QUEUE;
	irq_set(&n->irq, n->gsi, 1);
}

void vnet_kicks(struct virtio_net *n, unsigned qi, bool on)
{
	struct vnet_queue *q = &n->q[qi];

	if (!(n->guest_features & F(VIRTIO_RING_F_EVENT_IDX)))
		vq_used_notify_set(&q->vq, n->mem, on);
	else if (on)
		vq_avail_event_set(&q->vq, n->mem, q->last_avail);
	/* Off with EVENT_IDX: an avail_event left behind the driver's index is passed once
	 * at most, so it already spares the kicks. */
}

void vnet_set_broken(struct virtio_net *n)
{
	if (n->broken)
		return;
	n->broken = true;
	n->isr |= VIRTIO_ISR_CONFIG;
	irq_set(&n->irq, n->gsi, 1);
}

int vnet_features_apply(struct virtio_net *n)
{
	uint32_t f = n->guest_features;
	unsigned offload = 0;
	int rc;

	n->hdr_bytes = (f & F(VIRTIO_NET_F_MRG_RXBUF)) ? VIRTIO_NET_HDR_MRG_BYTES
						       : VIRTIO_NET_HDR_BYTES;
	/* Frames already read carry the old header size: they are dropped, not misread. */
	n->stats.rx_dropped += n->rxq.count;
	n->rxq.count = 0;
	rc = tap_set_vnet_hdr_bytes(n->tap_fd, (int)n->hdr_bytes);
	if (rc < 0)
		return rc;
	if (f & F(VIRTIO_NET_F_GUEST_CSUM)) {
		offload |= TUN_F_CSUM;
		if (f & F(VIRTIO_NET_F_GUEST_TSO4))
			offload |= TUN_F_TSO4;
		if (f & F(VIRTIO_NET_F_GUEST_TSO6))
			offload |= TUN_F_TSO6;
	}
	rc = tap_set_offload(n->tap_fd, offload);
	if (rc < 0 && offload)
		rc = tap_set_offload(n->tap_fd, 0); /* whole frames are always acceptable */
	return rc;
}

/* Device status 0: forget the driver, its queues, its filter and any pending interrupt. */
static void vnet_reset(struct virtio_net *n)
{
	n->guest_features = 0;
	n->status = 0;
	n->isr = 0;
	n->queue_sel = 0;
	n->broken = false;
	n->link_status = VIRTIO_NET_S_LINK_UP;
	memset(n->q, 0, sizeof(n->q));
	vnet_filter_reset(&n->filter);
	vnet_carry_clear(n);
	if (vnet_features_apply(n) < 0)
		n->broken = true;
	irq_set(&n->irq, n->gsi, 0);
}

static void vnet_queue_set(struct virtio_net *n, uint32_t pfn)
{
	struct vnet_queue *q;

	if (n->queue_sel >= VIRTIO_NET_QUEUES)
		return;
	q = &n->q[n->queue_sel];
	/* A new ring (or 0, deleting the queue) starts from index 0. */
	*q = (struct vnet_queue){ .pfn = pfn };
	if (pfn)
		q->mapped = vq_map(&q->vq, n->mem, (uint64_t)pfn << VIRTIO_PCI_QUEUE_ADDR_SHIFT,
				   VNET_QUEUE_NUM) == 0;
}

/* The register byte at off (below VIRTIO_PCI_BAR_BYTES); reading ISR clears it. */
static uint8_t vnet_reg_byte(struct virtio_net *n, unsigned off)
{
	uint8_t regs[VIRTIO_PCI_CONFIG] = { 0 };
	bool q_ok = n->queue_sel < VIRTIO_NET_QUEUES;

	if (off >= VIRTIO_PCI_CONFIG) {
		uint8_t cfg[VIRTIO_PCI_BAR_BYTES - VIRTIO_PCI_CONFIG] = { 0 };

		memcpy(cfg + VIRTIO_NET_CFG_MAC, n->mac, VIRTIO_NET_MAC_BYTES);
		le16_encode(cfg + VIRTIO_NET_CFG_STATUS, n->link_status);
		return cfg[off - VIRTIO_PCI_CONFIG];
	}
	if (off == VIRTIO_PCI_ISR) {
		uint8_t isr = n->isr;

		n->isr = 0;
		irq_set(&n->irq, n->gsi, 0);
		return isr;
	}
	le32_encode(regs + VIRTIO_PCI_HOST_FEATURES, n->host_features);
	le32_encode(regs + VIRTIO_PCI_GUEST_FEATURES, n->guest_features);
	le32_encode(regs + VIRTIO_PCI_QUEUE_PFN, q_ok ? n->q[n->queue_sel].pfn : 0);
	le16_encode(regs + VIRTIO_PCI_QUEUE_NUM, q_ok ? VNET_QUEUE_NUM : 0);
	le16_encode(regs + VIRTIO_PCI_QUEUE_SEL, n->queue_sel);
	regs[VIRTIO_PCI_STATUS] = n->status;
	if (n->broken)
		regs[VIRTIO_PCI_STATUS] |= VIRTIO_STATUS_NEEDS_RESET;
	return regs[off];
}

static void vnet_bar_read(void *opaque, uint64_t off, void *data, unsigned size)
{
	struct virtio_net *n = opaque;
	uint8_t *out = data;

	pthread_mutex_lock(&n->lock);
	for (unsigned i = 0; i < size; i++) {
		uint64_t at = off + i;

		out[i] = at < VIRTIO_PCI_BAR_BYTES ? vnet_reg_byte(n, (unsigned)at) : 0xff;
	}
	pthread_mutex_unlock(&n->lock);
}

static void vnet_kick(struct virtio_net *n, unsigned qi)
{
	uint64_t one = 1;

	if (qi < VIRTIO_NET_QUEUES && write(n->kick_fd[qi], &one, sizeof(one)) < 0) {
		/* Only EAGAIN at a counter of 2^64 - 2: the thread has a kick pending anyway. */
	}
}

/*
 * Registers are written whole at their own offset. A legacy driver changes the MAC by
 * writing its config bytes (Linux does, without F_CTRL_MAC_ADDR); other config is
 * read-only.
 */
static void vnet_bar_write(void *opaque, uint64_t off, const void *data, unsigned size)
{
	struct virtio_net *n = opaque;
	const uint8_t *in = data;

	if (off == VIRTIO_PCI_QUEUE_NOTIFY && size == 2) {
		/* Without an ioeventfd (or for a queue it does not match): same eventfd. */
		vnet_kick(n, le16_decode(in));
		return;
	}
	pthread_mutex_lock(&n->lock);
	if (off == VIRTIO_PCI_GUEST_FEATURES && size == 4) {
		n->guest_features = le32_decode(in) & n->host_features;
		if (vnet_features_apply(n) < 0)
			vnet_set_broken(n);
	} else if (off == VIRTIO_PCI_QUEUE_PFN && size == 4) {
		vnet_queue_set(n, le32_decode(in));
	} else if (off == VIRTIO_PCI_QUEUE_SEL && size == 2) {
		n->queue_sel = le16_decode(in);
	} else if (off == VIRTIO_PCI_STATUS && size == 1) {
		if (in[0] == 0)
			vnet_reset(n);
		else
			n->status = in[0];
		/* DRIVER_OK: receive may start. The I/O thread re-checks on the next turn. */
		if (in[0] & VIRTIO_STATUS_DRIVER_OK)
			vnet_kick(n, VIRTIO_NET_Q_RX);
	} else if (off >= VIRTIO_PCI_CONFIG + VIRTIO_NET_CFG_MAC &&
		   off + size <= VIRTIO_PCI_CONFIG + VIRTIO_NET_CFG_MAC + VIRTIO_NET_MAC_BYTES) {
		memcpy(n->mac + (off - VIRTIO_PCI_CONFIG - VIRTIO_NET_CFG_MAC), in, size);
	}
	pthread_mutex_unlock(&n->lock);
}

static const struct bus_dev_ops vnet_bar_ops = {
	.read = vnet_bar_read,
	.write = vnet_bar_write,
};

/* BAR0 moved (pci.c, PCI lock held): move the notify ioeventfds with it. */
static void vnet_bar_moved(void *opaque, bool mapped, uint64_t base)
{
	struct virtio_net *n = opaque;
	uint16_t port = (uint16_t)(base + VIRTIO_PCI_QUEUE_NOTIFY);

	if (!n->host.ioeventfd)
		return;
	if (n->ioev_on) {
		for (unsigned qi = 0; qi < VIRTIO_NET_QUEUES; qi++)
			n->host.ioeventfd(n->host.opaque, n->ioev_port, 2, qi, n->kick_fd[qi], false);
		n->ioev_on = false;
	}
	if (!mapped)
		return;
	for (unsigned qi = 0; qi < VIRTIO_NET_QUEUES; qi++) {
		if (n->host.ioeventfd(n->host.opaque, port, 2, qi, n->kick_fd[qi], true) < 0) {
			/* The BAR's write handler signals the same eventfds: slower, as correct. */
			while (qi-- > 0)
				n->host.ioeventfd(n->host.opaque, port, 2, qi, n->kick_fd[qi], false);
			return;
		}
	}
	n->ioev_on = true;
	n->ioev_port = port;
}

/*
 * Pause, as a numbered timeline (vm_pause calls this after every vCPU has parked, and
 * returns only after it; a snapshot or migration then fetches the dirty log last):
 *
 *   1. The vCPUs are out of KVM_RUN: no new notify, no register access.
 *   2. virtio_net_pause takes n->lock. The I/O thread holds it for a whole turn (tap
 *      read, copy into guest RAM, dirty marks, used index, interrupt), so taking it
 *      waits for the turn in progress to end with everything marked.
 *   3. run = false, then the lock is released. Every turn starts by taking the lock
 *      and checking run, so from here the thread neither reads the tap nor touches
 *      guest RAM: it sleeps on cond. Frames queue in the tap (the kernel bounds and
 *      counts them), notifications in their eventfds.
 *   4. vm_pause returns; the caller's last vm_dirty_fetch sees every page of step 2
 *      (the marks were made before the unlock the caller's lock acquisition follows).
 *   5. virtio_net_resume sets run and recheck and wakes the thread, which looks at
 *      every queue and reads the tap again: nothing that arrived during 3 is lost.
 */
void virtio_net_pause(struct virtio_net *n)
{
	pthread_mutex_lock(&n->lock);
	n->run = false;
	pthread_mutex_unlock(&n->lock);
}

void virtio_net_resume(struct virtio_net *n)
{
	uint64_t one = 1;

	pthread_mutex_lock(&n->lock);
	n->run = true;
	n->recheck = true;
	pthread_cond_broadcast(&n->cond);
	pthread_mutex_unlock(&n->lock);
	if (write(n->wake_fd, &one, sizeof(one)) < 0) {
		/* A full counter is already a wake-up. */
	}
}

bool virtio_net_announce(struct virtio_net *n)
{
	uint32_t need = F(VIRTIO_NET_F_GUEST_ANNOUNCE) | F(VIRTIO_NET_F_CTRL_VQ);
	bool asked = false;

	pthread_mutex_lock(&n->lock);
	if ((n->guest_features & need) == need && (n->status & VIRTIO_STATUS_DRIVER_OK) &&
	    !n->broken) {
		n->link_status |= VIRTIO_NET_S_ANNOUNCE;
		n->isr |= VIRTIO_ISR_CONFIG;
		irq_set(&n->irq, n->gsi, 1);
		asked = true;
	}
	pthread_mutex_unlock(&n->lock);
	return asked;
}

int virtio_net_send_host_frame(struct virtio_net *n, const void *frame, size_t len)
{
	uint8_t hdr[VIRTIO_NET_HDR_MRG_BYTES] = { 0 };
	struct iovec iov[2] = { { .iov_base = hdr }, { .iov_base = (void *)frame, .iov_len = len } };
	ssize_t w;
	int rc = 0;

	if (len < 14 || len > 1514)
		return -EINVAL;
	/* Under the lock: the header size changes only with the features, under it too. */
	pthread_mutex_lock(&n->lock);
	iov[0].iov_len = n->hdr_bytes;
	do {
		w = writev(n->tap_fd, iov, 2);
	} while (w < 0 && errno == EINTR);
	if (w < 0)
		rc = -errno;
	else if ((size_t)w != n->hdr_bytes + len)
		rc = -EIO;
	pthread_mutex_unlock(&n->lock);
	return rc;
}

void virtio_net_info_get(struct virtio_net *n, struct virtio_net_info *out)
{
	pthread_mutex_lock(&n->lock);
	memcpy(out->mac, n->mac, VIRTIO_NET_MAC_BYTES);
	memcpy(out->tap, n->ifname, sizeof(out->tap));
	out->stats = n->stats;
	pthread_mutex_unlock(&n->lock);
}

/* The tap, the MAC and the eventfds; everything but the thread and the PCI slot. */
static int vnet_open(struct virtio_net *n, const struct virtio_net_config *cfg, char *err,
		     size_t errlen)
{
	int rc;

	if (cfg->tap_name) {
		rc = tap_open(cfg->tap_name, &n->tap_fd, err, errlen);
		if (rc < 0)
			return rc;
		snprintf(n->ifname, sizeof(n->ifname), "%s", cfg->tap_name);
	} else {
		rc = tap_check_fd(cfg->tap_fd, n->ifname, err, errlen);
		if (rc < 0)
			return rc;
		n->tap_fd = fcntl(cfg->tap_fd, F_DUPFD_CLOEXEC, 3);
		if (n->tap_fd < 0) {
			rc = -errno;
			snprintf(err, errlen, "tapfd=%d: dup: %s", cfg->tap_fd, strerror(-rc));
			return rc;
		}
	}
	if (cfg->has_mac)
		memcpy(n->mac, cfg->mac, VIRTIO_NET_MAC_BYTES);
	else
		virtio_net_mac_derive(n->ifname, cfg->index, n->mac);
	for (unsigned qi = 0; qi < VIRTIO_NET_QUEUES; qi++) {
		n->kick_fd[qi] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (n->kick_fd[qi] < 0)
			goto err_errno;
	}
	n->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	n->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (n->wake_fd < 0 || n->epoll_fd < 0)
		goto err_errno;
	for (unsigned i = 0; i <= VIRTIO_NET_QUEUES + 1; i++) {
		/* data.u32: 0..2 a queue's kick, 3 the wake-up, 4 the tap (edge-triggered). */
		struct epoll_event ev = { .events = EPOLLIN, .data.u32 = i };
		int fd = i < VIRTIO_NET_QUEUES ? n->kick_fd[i] : i == VIRTIO_NET_QUEUES ? n->wake_fd
											 : n->tap_fd;

		if (i == VIRTIO_NET_QUEUES + 1)
			ev.events |= EPOLLET;
		if (epoll_ctl(n->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0)
			goto err_errno;
	}
	n->rxq.buf = malloc((size_t)VNET_RXQ_FRAMES * VNET_SLOT_BYTES);
	if (!n->rxq.buf) {
		errno = ENOMEM;
		goto err_errno;
	}
	return 0;
err_errno:
	rc = -errno;
	snprintf(err, errlen, "virtio-net on tap %s: %s", n->ifname, strerror(-rc));
	return rc;
}

static void vnet_close(struct virtio_net *n)
{
	vnet_carry_clear(n);
	free(n->rxq.buf);
	for (unsigned qi = 0; qi < VIRTIO_NET_QUEUES; qi++) {
		if (n->kick_fd[qi] >= 0)
			close(n->kick_fd[qi]);
	}
	if (n->wake_fd >= 0)
		close(n->wake_fd);
	if (n->epoll_fd >= 0)
		close(n->epoll_fd);
	if (n->tap_fd >= 0)
		close(n->tap_fd);
}

int virtio_net_create(struct virtio_net **out, struct pci_bus *pci, const struct guest_mem *mem,
		      const struct irq_chip *irq, const struct virtio_net_host *host,
		      const struct virtio_net_config *cfg, char *err, size_t errlen)
{
	struct pci_dev_desc desc = {
		.vendor_id = VIRTIO_PCI_VENDOR,
		.device_id = VIRTIO_PCI_DEVICE_NET,
		.subsys_vendor_id = VIRTIO_PCI_VENDOR,
		.subsys_id = VIRTIO_ID_NET,
		.class_code = VIRTIO_PCI_CLASS_NETWORK,
		.bar[0] = { .size = VIRTIO_PCI_BAR_BYTES, .io = true, .ops = &vnet_bar_ops,
			    .moved = vnet_bar_moved },
	};
	struct virtio_net *n;
	int rc;

	if (cfg->has_mac && (cfg->mac[0] & 1)) {
		snprintf(err, errlen, "virtio-net: MAC is multicast: give a unicast one");
		return -EINVAL;
	}
	n = calloc(1, sizeof(*n));
	if (!n) {
		snprintf(err, errlen, "virtio-net: out of memory");
		return -ENOMEM;
	}
	n->pci = pci;
	n->mem = mem;
	n->index = cfg->index;
	if (irq)
		n->irq = *irq;
	if (host)
		n->host = *host;
	n->tap_fd = n->wake_fd = n->epoll_fd = -1;
	for (unsigned qi = 0; qi < VIRTIO_NET_QUEUES; qi++)
		n->kick_fd[qi] = -1;
	n->host_features = VNET_HOST_FEATURES;
	rc = vnet_open(n, cfg, err, errlen);
	if (rc < 0)
		goto err_close;
	pthread_mutex_init(&n->lock, NULL);
	pthread_cond_init(&n->cond, NULL);
	vnet_reset(n);
	rc = -pthread_create(&n->thread, NULL, vnet_io_thread, n);
	if (rc < 0) {
		snprintf(err, errlen, "virtio-net on tap %s: I/O thread: %s", n->ifname,
			 strerror(-rc));
		goto err_sync;
	}
	n->thread_started = true;
	desc.bar[0].opaque = n;
	rc = pci_add_device(pci, &desc, &n->slot);
	if (rc < 0) {
		snprintf(err, errlen, "virtio-net on tap %s: no PCI slot left (%s): give fewer "
			 "devices", n->ifname, strerror(-rc));
		goto err_thread;
	}
	n->gsi = pci_slot_gsi(n->slot);
	*out = n;
	return 0;
err_thread:
	virtio_net_destroy(n);
	return rc;
err_sync:
	pthread_cond_destroy(&n->cond);
	pthread_mutex_destroy(&n->lock);
err_close:
	vnet_close(n);
	free(n);
	return rc;
}

void virtio_net_destroy(struct virtio_net *n)
{
	uint64_t one = 1;

	if (!n)
		return;
	if (n->thread_started) {
		pthread_mutex_lock(&n->lock);
		n->stop = true;
		pthread_cond_broadcast(&n->cond);
		pthread_mutex_unlock(&n->lock);
		if (write(n->wake_fd, &one, sizeof(one)) < 0) {
			/* A full counter wakes it as well. */
		}
		pthread_join(n->thread, NULL);
	}
	if (n->slot)
		pci_remove_device(n->pci, n->slot);
	pthread_cond_destroy(&n->cond);
	pthread_mutex_destroy(&n->lock);
	vnet_close(n);
	free(n);
}
