/* virtio-net's I/O thread: frames from the tap into receive buffers, transmit chains to the tap. */
#include "vmm/devices.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/uio.h>
#include <unistd.h>

#include "vmm/virtio/virtio_net_priv.h"

#define F(bit) (1u << (bit))

enum vnet_place {
	VNET_PLACED,    /* in the guest's buffers, used index published */
	VNET_DROPPED,   /* gone: no driver, filtered, did not fit, bad chain */
	VNET_NO_BUFFER, /* nothing consumed: wait for the driver to add buffers */
};

static bool vnet_driver_ok(const struct virtio_net *n)
{
	return (n->status & VIRTIO_STATUS_DRIVER_OK) && !n->broken;
}

/* ---- the frame queue between the tap reader and placement ----------------------------- */

static uint8_t *frameq_slot(struct vnet_frameq *fq, unsigned i)
{
	return fq->buf + (size_t)((fq->head + i) % VNET_RXQ_FRAMES) * VNET_SLOT_BYTES;
}

static void frameq_pop(struct vnet_frameq *fq)
{
	fq->head = (fq->head + 1) % VNET_RXQ_FRAMES;
	fq->count--;
}

/*
 * Read one frame from the tap into the queue's next free slot. Returns 1 for a frame,
 * 0 when the tap is empty (or failing: then it is polled again on its next edge).
 */
static int vnet_tap_read(struct virtio_net *n)
{
	struct vnet_frameq *fq = &n->rxq;
	unsigned at = fq->count;

	for (;;) {
		ssize_t got = read(n->tap_fd, frameq_slot(fq, at), VNET_SLOT_BYTES);

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			n->tap_ready = false;
			return 0;
		}
		if ((size_t)got >= VNET_SLOT_BYTES || (size_t)got < n->hdr_bytes) {
			n->stats.rx_dropped++; /* cut short, or no header: never placed */
			continue;
		}
		fq->len[(fq->head + at) % VNET_RXQ_FRAMES] = (uint32_t)got;
		fq->count++;
		return 1;
	}
}

/* ---- receive: one frame into one chain, or (MRG_RXBUF) as many chains as it takes ------- */

/* Publish the chains recorded in n->used[0..nbuf) and move the queue on. */
static void vnet_rx_commit(struct virtio_net *n, struct vnet_queue *q, unsigned nbuf)
{
	for (unsigned i = 0; i < nbuf; i++)
		vq_used_put(&q->vq, n->mem, q->used_idx++, n->used[i].head, n->used[i].len);
	q->last_avail += (uint16_t)nbuf;
	vq_used_publish(&q->vq, n->mem, q->used_idx);
}

/*
 * Place the frame at the head of the queue. The header the tap wrote is what the guest
 * negotiated (vnet_features_apply set its size), except num_buffers, filled in here.
 * Chains are gathered and filled in order, but published only when the whole frame is
 * in: a frame that runs out of buffers half way leaves the queue as it was (the bytes
 * already copied are overwritten later; their pages are marked dirty either way).
 */
static enum vnet_place vnet_rx_place(struct virtio_net *n, const uint8_t *frame, uint32_t len)
{
	bool mrg = n->guest_features & F(VIRTIO_NET_F_MRG_RXBUF);
	bool indirect_ok = n->guest_features & F(VIRTIO_RING_F_INDIRECT_DESC);
	struct vnet_queue *q = &n->q[VIRTIO_NET_Q_RX];
	unsigned nbuf = 0, nfirst = 0;
	uint16_t avail_idx, idx;
	uint32_t off = 0;
	struct vq *vq;

	if (!vnet_driver_ok(n) || !(vq = vnet_queue_ring(n, VIRTIO_NET_Q_RX))) {
		n->stats.rx_dropped++;
		return VNET_DROPPED;
	}
	if (!vnet_filter_accepts(&n->filter, n->mac, frame + n->hdr_bytes)) {
		n->stats.rx_filtered++;
		return VNET_DROPPED;
	}
	avail_idx = vq_avail_idx(vq);
	if ((uint16_t)(avail_idx - q->last_avail) > VNET_QUEUE_NUM) {
		vnet_set_broken(n);
		n->stats.rx_dropped++;
		return VNET_DROPPED;
	}
	for (idx = q->last_avail; off < len; idx++) {
		struct vq_chain c;
		uint16_t head;
		uint32_t take;
		int64_t wrote;

		if (idx == avail_idx) {
			n->stats.rx_no_buffer++;
			return VNET_NO_BUFFER;
		}
		head = vq_avail_head(vq, idx);
		if (vq_chain_collect(vq, n->mem, head, indirect_ok, n->seg, VNET_QUEUE_NUM, &c) < 0 ||
		    c.wr_bytes == 0 || c.rd_bytes != 0 || (nbuf == 0 && c.wr_bytes < n->hdr_bytes)) {
			/* Hand back what this frame took, each as an empty buffer, and drop it. */
			n->stats.bad_chains++;
			n->stats.rx_dropped++;
			for (unsigned i = 0; i < nbuf; i++)
				n->used[i].len = 0;
			n->used[nbuf++] = (struct vnet_used){ .head = head, .len = 0 };
			vnet_rx_commit(n, q, nbuf);
			return VNET_DROPPED;
		}
		if (!mrg && c.wr_bytes < len) {
			n->stats.rx_dropped++; /* larger than the driver's buffers: it never fits */
			return VNET_DROPPED;
		}
		take = c.wr_bytes < len - off ? (uint32_t)c.wr_bytes : len - off;
		wrote = vq_chain_write(n->mem, n->seg, c.nseg, frame + off, take);
		if (wrote != take) {
			vnet_set_broken(n); /* a buffer outside RAM */
			n->stats.rx_dropped++;
			return VNET_DROPPED;
		}
		if (nbuf == 0) {
			nfirst = c.nseg;
			memcpy(n->first_seg, n->seg, nfirst * sizeof(n->seg[0]));
		}
		n->used[nbuf++] = (struct vnet_used){ .head = head, .len = take };
		off += take;
	}
	if (mrg) {
		uint8_t nb[2];
		struct vq_seg tail[VNET_QUEUE_NUM];
		unsigned nt = 0;
		uint64_t skip = VIRTIO_NET_HDR_NUM_BUFFERS;

		/* num_buffers sits at bytes 10..11 of the first chain, wherever they fall. */
		for (unsigned k = 0; k < nfirst; k++) {
			if (skip >= n->first_seg[k].len) {
				skip -= n->first_seg[k].len;
				continue;
			}
			tail[nt] = n->first_seg[k];
			tail[nt].gpa += skip;
			tail[nt++].len -= (uint32_t)skip;
			skip = 0;
		}
		le16_encode(nb, (uint16_t)nbuf);
		vq_chain_write(n->mem, tail, nt, nb, sizeof(nb));
	}
	vnet_rx_commit(n, q, nbuf);
	n->stats.rx_frames++;
	n->stats.rx_bytes += len;
	return VNET_PLACED;
}

/* Move frames from the tap into the guest, a budget's worth. */
static void vnet_rx_turn(struct virtio_net *n)
{
	bool placed = false;

	for (unsigned budget = VNET_BUDGET; budget; budget--) {
		struct vnet_frameq *fq = &n->rxq;
		enum vnet_place r;

		if (fq->count == 0 && !vnet_carry_pop(n) && (!n->tap_ready || !vnet_tap_read(n)))
			break;
		r = vnet_rx_place(n, frameq_slot(fq, 0), fq->len[fq->head]);
		if (r == VNET_NO_BUFFER) {
			/* Ask for the kick that brings buffers; if some came meanwhile, go on. */
			struct vnet_queue *q = &n->q[VIRTIO_NET_Q_RX];

			vnet_kicks(n, VIRTIO_NET_Q_RX, true);
			if (vq_avail_idx(&q->vq) != q->last_avail)
				continue;
			n->rx_wait = true;
			break;
		}
		frameq_pop(fq);
		placed |= r == VNET_PLACED;
	}
	if (placed)
		vnet_irq_queue(n, VIRTIO_NET_Q_RX);
}

/* ---- transmit ------------------------------------------------------------------------- */

/*
 * The guest's header, checked: a GSO type the driver did not negotiate is refused, so
 * the tap only ever sees offloads the device offered. Returns false to drop the frame.
 */
static bool vnet_tx_hdr_ok(const struct virtio_net *n, const uint8_t *hdr)
{
	uint8_t gso = hdr[1] & ~VIRTIO_NET_HDR_GSO_ECN;

	if ((hdr[0] & VIRTIO_NET_HDR_F_NEEDS_CSUM) && !(n->guest_features & F(VIRTIO_NET_F_CSUM)))
		return false;
	if (hdr[1] & VIRTIO_NET_HDR_GSO_ECN)
		return false; /* HOST_ECN is not offered */
	switch (gso) {
	case VIRTIO_NET_HDR_GSO_NONE:
		return true;
	case VIRTIO_NET_HDR_GSO_TCPV4:
		return n->guest_features & F(VIRTIO_NET_F_HOST_TSO4);
	case VIRTIO_NET_HDR_GSO_TCPV6:
		return n->guest_features & F(VIRTIO_NET_F_HOST_TSO6);
	default:
		return false;
	}
}

/*
 * Write one transmit chain to the tap: our own copy of its header (so the guest cannot
 * change it between the check and the tap's read), then the rest straight from guest
 * RAM. Returns false for a chain that could not be sent (counted).
 */
static bool vnet_tx_send(struct virtio_net *n, const struct vq_chain *c)
{
	uint8_t hdr[VIRTIO_NET_HDR_MRG_BYTES];
	int cnt;

	if (c->rd_bytes < n->hdr_bytes + 14 || c->wr_bytes || c->rd_bytes > VNET_FRAME_MAX)
		return false;
	cnt = vq_iov_build(n->mem, n->seg, c->nseg, false, 0, n->hdr_bytes, n->iov, NULL,
			   VNET_TX_IOV);
	if (cnt < 0)
		return false;
	for (int k = 0, at = 0; k < cnt; k++) {
		memcpy(hdr + at, n->iov[k].iov_base, n->iov[k].iov_len);
		at += (int)n->iov[k].iov_len;
	}
	if (!vnet_tx_hdr_ok(n, hdr))
		return false;
	n->iov[0] = (struct iovec){ .iov_base = hdr, .iov_len = n->hdr_bytes };
	cnt = vq_iov_build(n->mem, n->seg, c->nseg, false, n->hdr_bytes,
			   c->rd_bytes - n->hdr_bytes, n->iov + 1, NULL, VNET_TX_IOV - 1);
	if (cnt < 0)
		return false;
	for (;;) {
		/* A tap takes a whole frame or nothing; EIO while it is down, EINVAL for a header
		 * the kernel refuses. None of it is retried: the frame is lost, as on a wire. */
		ssize_t done = writev(n->tap_fd, n->iov, cnt + 1);

		if (done < 0 && errno == EINTR)
			continue;
		if (done < 0)
			return false;
		break;
	}
	n->stats.tx_frames++;
	n->stats.tx_bytes += c->rd_bytes;
	return true;
}

/*
 * Send what the driver queued, a budget's worth. While sending, kicks are suppressed
 * (used->flags NO_NOTIFY); after turning them back on, the avail index is read once
 * more, so a chain added in between is never left waiting for a kick that did not come.
 */
static void vnet_tx_turn(struct virtio_net *n)
{
	bool indirect_ok = n->guest_features & F(VIRTIO_RING_F_INDIRECT_DESC);
	struct vnet_queue *q = &n->q[VIRTIO_NET_Q_TX];
	unsigned budget = VNET_BUDGET;
	bool sent = false;
	struct vq *vq;

	n->tx_more = false;
	if (!vnet_driver_ok(n) || !(vq = vnet_queue_ring(n, VIRTIO_NET_Q_TX)))
		return;
	vnet_kicks(n, VIRTIO_NET_Q_TX, false);
	for (;;) {
		uint16_t avail_idx = vq_avail_idx(vq);

		if ((uint16_t)(avail_idx - q->last_avail) > VNET_QUEUE_NUM) {
			vnet_set_broken(n);
			return;
		}
		while (q->last_avail != avail_idx && budget) {
			uint16_t head = vq_avail_head(vq, q->last_avail);
			struct vq_chain c;

			if (vq_chain_collect(vq, n->mem, head, indirect_ok, n->seg, VNET_QUEUE_NUM,
					     &c) < 0) {
				n->stats.bad_chains++;
				n->stats.tx_dropped++;
			} else if (!vnet_tx_send(n, &c)) {
				n->stats.tx_dropped++;
			}
			vq_used_put(vq, n->mem, q->used_idx++, head, 0);
			q->last_avail++;
			vq_used_publish(vq, n->mem, q->used_idx);
			sent = true;
			budget--;
		}
		if (!budget) {
			n->tx_more = true; /* come back without a kick; kicks stay off meanwhile */
			break;
		}
		vnet_kicks(n, VIRTIO_NET_Q_TX, true);
		if (vq_avail_idx(vq) == q->last_avail)
			break;
		vnet_kicks(n, VIRTIO_NET_Q_TX, false);
	}
	if (sent)
		vnet_irq_queue(n, VIRTIO_NET_Q_TX);
}

/* ---- the thread ------------------------------------------------------------------------- */

static bool vnet_has_work(const struct virtio_net *n)
{
	return n->kick[VIRTIO_NET_Q_TX] || n->kick[VIRTIO_NET_Q_CTRL] || n->tx_more ||
	       (!n->rx_wait && (n->rxq.count || n->tap_ready));
}

/* One turn, lock held and run set: control first (it may change the filter), then TX, RX. */
static void vnet_turn(struct virtio_net *n)
{
	if (n->recheck) {
		n->recheck = false;
		for (unsigned qi = 0; qi < VIRTIO_NET_QUEUES; qi++)
			n->kick[qi] = true;
		n->tap_ready = true;
	}
	if (n->kick[VIRTIO_NET_Q_CTRL]) {
		n->kick[VIRTIO_NET_Q_CTRL] = false;
		vnet_ctrl_serve(n);
	}
	if (n->kick[VIRTIO_NET_Q_TX] || n->tx_more) {
		n->kick[VIRTIO_NET_Q_TX] = false;
		vnet_tx_turn(n);
	}
	if (n->kick[VIRTIO_NET_Q_RX]) {
		n->kick[VIRTIO_NET_Q_RX] = false;
		n->rx_wait = false;
	}
	if (!n->rx_wait)
		vnet_rx_turn(n);
}

static void vnet_eventfd_drain(int fd)
{
	uint64_t v;

	while (read(fd, &v, sizeof(v)) < 0 && errno == EINTR)
		;
}

void *vnet_io_thread(void *arg)
{
	struct virtio_net *n = arg;

	for (;;) {
		struct epoll_event ev[VIRTIO_NET_QUEUES + 2];
		int nev = epoll_wait(n->epoll_fd, ev, VIRTIO_NET_QUEUES + 2,
				     vnet_has_work(n) ? 0 : -1);

		for (int i = 0; i < nev; i++) {
			unsigned what = ev[i].data.u32;

			if (what < VIRTIO_NET_QUEUES) {
				vnet_eventfd_drain(n->kick_fd[what]);
				n->kick[what] = true;
			} else if (what == VIRTIO_NET_QUEUES) {
				vnet_eventfd_drain(n->wake_fd);
			} else {
				n->tap_ready = true;
			}
		}
		pthread_mutex_lock(&n->lock);
		while (!n->run && !n->stop)
			pthread_cond_wait(&n->cond, &n->lock);
		if (n->stop) {
			pthread_mutex_unlock(&n->lock);
			break;
		}
		vnet_turn(n);
		pthread_mutex_unlock(&n->lock);
	}
	return NULL;
}
