/* virtio-net frames that cross hosts with a migration: taken from the source's tap, carried in at the destination. */
#include "vmm/devices.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmm/virtio/virtio_net_priv.h"

_Static_assert(VIRTIO_NET_TAKE_MAX == VNET_FRAME_MAX, "take bound");

int virtio_net_take_frame(struct virtio_net *n, void *buf, size_t cap, size_t *len)
{
	struct vnet_frameq *fq = &n->rxq;
	int rc = 0;

	if (cap <= VIRTIO_NET_TAKE_MAX) /* one byte more tells a frame cut short */
		return -EINVAL;
	pthread_mutex_lock(&n->lock);
	if (n->run) {
		rc = -EBUSY;
		goto out;
	}
	/* The I/O thread is fenced (virtio_net_pause): the queue and the tap are ours. */
	if (fq->count) {
		*len = fq->len[fq->head];
		memcpy(buf, fq->buf + (size_t)fq->head * VNET_SLOT_BYTES, *len);
		fq->head = (fq->head + 1) % VNET_RXQ_FRAMES;
		fq->count--;
		rc = 1;
		goto out;
	}
	for (;;) {
		ssize_t got = read(n->tap_fd, buf, VIRTIO_NET_TAKE_MAX + 1);

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break; /* empty (EAGAIN), or failing: nothing to carry */
		if ((size_t)got > VIRTIO_NET_TAKE_MAX || (size_t)got < n->hdr_bytes + 14) {
			n->stats.rx_dropped++;
			continue;
		}
		*len = (size_t)got;
		rc = 1;
		break;
	}
out:
	pthread_mutex_unlock(&n->lock);
	return rc;
}

int virtio_net_carry_in(struct virtio_net *n, const void *frame, size_t len)
{
	struct vnet_carried *c;
	uint64_t one = 1;
	int rc = 0;

	if (len < 14 || len > VIRTIO_NET_TAKE_MAX)
		return -EINVAL;
	pthread_mutex_lock(&n->lock);
	if (n->carry_count >= VNET_CARRY_FRAMES || n->carry_bytes + len > VNET_CARRY_BYTES ||
	    !(c = malloc(sizeof(*c) + len))) {
		n->stats.rx_dropped++;
		rc = -ENOBUFS;
		goto out;
	}
	c->next = NULL;
	c->len = (uint32_t)len;
	memcpy(c->data, frame, len);
	if (n->carry_tail)
		n->carry_tail->next = c;
	else
		n->carry_head = c;
	n->carry_tail = c;
	n->carry_count++;
	n->carry_bytes += len;
	n->stats.rx_carried++;
out:
	pthread_mutex_unlock(&n->lock);
	/* A running device looks at its receive side again. */
	if (rc == 0 && write(n->wake_fd, &one, sizeof(one)) < 0) {
		/* A full counter is already a wake-up. */
	}
	return rc;
}

bool vnet_carry_pop(struct virtio_net *n)
{
	struct vnet_frameq *fq = &n->rxq;
	struct vnet_carried *c;

	while ((c = n->carry_head) != NULL) {
		n->carry_head = c->next;
		if (!n->carry_head)
			n->carry_tail = NULL;
		n->carry_count--;
		n->carry_bytes -= c->len;
		/* The header must be the one the driver negotiated here; the tap's own size. */
		if (c->len < n->hdr_bytes + 14 || c->len >= VNET_SLOT_BYTES) {
			n->stats.rx_dropped++;
			free(c);
			continue;
		}
		memcpy(fq->buf + (size_t)((fq->head + fq->count) % VNET_RXQ_FRAMES) * VNET_SLOT_BYTES,
		       c->data, c->len);
		fq->len[(fq->head + fq->count) % VNET_RXQ_FRAMES] = c->len;
		fq->count++;
		free(c);
		return true;
	}
	return false;
}

void vnet_carry_clear(struct virtio_net *n)
{
	while (n->carry_head) {
		struct vnet_carried *c = n->carry_head;

		n->carry_head = c->next;
		n->stats.rx_dropped++;
		free(c);
	}
	n->carry_tail = NULL;
	n->carry_count = 0;
	n->carry_bytes = 0;
}
