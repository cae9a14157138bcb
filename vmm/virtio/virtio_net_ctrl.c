/* virtio-net's control queue (receive mode, MAC filter, announce ack) and its receive filter. */
#include "vmm/devices.h"

#include <string.h>
#include <sys/uio.h>

#include "vmm/virtio/virtio_net_priv.h"

#define F(bit) (1u << (bit))

void vnet_filter_reset(struct vnet_rx_filter *f)
{
	/* As QEMU's reset: a driver that never sets a filter receives everything. */
	memset(f, 0, sizeof(*f));
	f->promisc = true;
}

static bool mac_in(const uint8_t (*table)[6], uint32_t count, const uint8_t dst[6])
{
	for (uint32_t i = 0; i < count; i++) {
		if (memcmp(table[i], dst, 6) == 0)
			return true;
	}
	return false;
}

bool vnet_filter_accepts(const struct vnet_rx_filter *f, const uint8_t mac[6],
			 const uint8_t dst[6])
{
	static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

	if (f->promisc || memcmp(dst, bcast, 6) == 0)
		return true;
	if (dst[0] & 1)
		return f->allmulti || f->multi_overflow || mac_in(f->multi, f->n_multi, dst);
	return memcmp(dst, mac, 6) == 0 || f->uni_overflow || mac_in(f->uni, f->n_uni, dst);
}

/* Bytes [off, off + len) of the command's readable part into buf; false if it is shorter. */
static bool ctrl_read(struct virtio_net *n, const struct vq_chain *c, uint64_t off, void *buf,
		      size_t len)
{
	uint8_t *out = buf;
	int cnt;

	if (off > c->rd_bytes || len > c->rd_bytes - off)
		return false;
	cnt = vq_iov_build(n->mem, n->seg, c->nseg, false, off, len, n->iov, NULL, VNET_TX_IOV);
	if (cnt < 0)
		return false;
	for (int k = 0; k < cnt; k++) {
		memcpy(out, n->iov[k].iov_base, n->iov[k].iov_len);
		out += n->iov[k].iov_len;
	}
	return true;
}

/*
 * One MAC table of VIRTIO_NET_CTRL_MAC_TABLE_SET at *off: entries u32, then entries x 6
 * bytes. More than the table holds sets overflow (that kind of frame is let through, as
 * the spec allows). Advances *off past it. Returns false for a malformed table.
 */
static bool ctrl_mac_table(struct virtio_net *n, const struct vq_chain *c, uint64_t *off,
			   uint8_t (*table)[6], uint32_t *count, bool *overflow)
{
	uint8_t raw[4];
	uint32_t entries;

	if (!ctrl_read(n, c, *off, raw, sizeof(raw)))
		return false;
	entries = le32_decode(raw);
	*off += 4;
	if (entries > (c->rd_bytes - *off) / 6)
		return false;
	if (entries > VNET_MAC_TABLE) {
		*overflow = true;
		*count = 0;
	} else {
		*overflow = false;
		*count = entries;
		if (entries && !ctrl_read(n, c, *off, table, (size_t)entries * 6))
			return false;
	}
	*off += (uint64_t)entries * 6;
	return true;
}

/* Carry out one command. Returns VIRTIO_NET_CTRL_OK or VIRTIO_NET_CTRL_ERR. */
static uint8_t ctrl_command(struct virtio_net *n, const struct vq_chain *c)
{
	struct vnet_rx_filter next = n->filter;
	uint8_t cmd[2], on;
	uint64_t off = 2;

	if (!ctrl_read(n, c, 0, cmd, sizeof(cmd)))
		return VIRTIO_NET_CTRL_ERR;
	switch (cmd[0]) {
	case VIRTIO_NET_CTRL_RX:
		if (!(n->guest_features & F(VIRTIO_NET_F_CTRL_RX)) || c->rd_bytes != 3 ||
		    !ctrl_read(n, c, 2, &on, 1))
			return VIRTIO_NET_CTRL_ERR;
		if (cmd[1] == VIRTIO_NET_CTRL_RX_PROMISC)
			n->filter.promisc = on != 0;
		else if (cmd[1] == VIRTIO_NET_CTRL_RX_ALLMULTI)
			n->filter.allmulti = on != 0;
		else
			return VIRTIO_NET_CTRL_ERR;
		return VIRTIO_NET_CTRL_OK;
	case VIRTIO_NET_CTRL_MAC:
		if (!(n->guest_features & F(VIRTIO_NET_F_CTRL_RX)) ||
		    cmd[1] != VIRTIO_NET_CTRL_MAC_TABLE_SET ||
		    !ctrl_mac_table(n, c, &off, next.uni, &next.n_uni, &next.uni_overflow) ||
		    !ctrl_mac_table(n, c, &off, next.multi, &next.n_multi, &next.multi_overflow) ||
		    off != c->rd_bytes)
			return VIRTIO_NET_CTRL_ERR;
		n->filter = next; /* all or nothing */
		return VIRTIO_NET_CTRL_OK;
	case VIRTIO_NET_CTRL_ANNOUNCE:
		if (!(n->guest_features & F(VIRTIO_NET_F_GUEST_ANNOUNCE)) ||
		    cmd[1] != VIRTIO_NET_CTRL_ANNOUNCE_ACK || c->rd_bytes != 2)
			return VIRTIO_NET_CTRL_ERR;
		n->link_status &= (uint16_t)~VIRTIO_NET_S_ANNOUNCE;
		return VIRTIO_NET_CTRL_OK;
	default:
		return VIRTIO_NET_CTRL_ERR;
	}
}

/* One command chain at head: carried out, its ack written, its used entry published. */
static void ctrl_serve_one(struct virtio_net *n, struct vq *vq, struct vnet_queue *q,
			   uint16_t head)
{
	bool indirect_ok = n->guest_features & F(VIRTIO_RING_F_INDIRECT_DESC);
	uint32_t used = 0;
	struct vq_chain c;

	if (vq_chain_collect(vq, n->mem, head, indirect_ok, n->seg, VNET_QUEUE_NUM, &c) == 0 &&
	    c.wr_bytes >= 1) {
		const struct vq_seg *last = &n->seg[c.nseg - 1];
		uint8_t ack = ctrl_command(n, &c);
		struct vq_seg at = { .gpa = last->gpa + last->len - 1, .len = 1, .write = true };

		if (vq_chain_write(n->mem, &at, 1, &ack, 1) == 1)
			used = 1;
	} else {
		n->stats.bad_chains++;
	}
	vq_used_put(vq, n->mem, q->used_idx++, head, used);
	q->last_avail++;
	vq_used_publish(vq, n->mem, q->used_idx);
}

void vnet_ctrl_serve(struct virtio_net *n)
{
	struct vnet_queue *q = &n->q[VIRTIO_NET_Q_CTRL];
	uint16_t avail_idx;
	bool served = false;
	struct vq *vq;

	if (!(n->status & VIRTIO_STATUS_DRIVER_OK) || n->broken ||
	    !(n->guest_features & F(VIRTIO_NET_F_CTRL_VQ)) ||
	    !(vq = vnet_queue_ring(n, VIRTIO_NET_Q_CTRL)))
		return;
	for (avail_idx = vq_avail_idx(vq);; avail_idx = vq_avail_idx(vq)) {
		if ((uint16_t)(avail_idx - q->last_avail) > VNET_QUEUE_NUM) {
			vnet_set_broken(n);
			return;
		}
		while (q->last_avail != avail_idx) {
			ctrl_serve_one(n, vq, q, vq_avail_head(vq, q->last_avail));
			served = true;
		}
		/* Kicks on for the next command (with EVENT_IDX, avail_event moves on), then one
		 * more look for a command that came in between. */
		vnet_kicks(n, VIRTIO_NET_Q_CTRL, true);
		if (vq_avail_idx(vq) == q->last_avail)
			break;
	}
	if (served)
		vnet_irq_queue(n, VIRTIO_NET_Q_CTRL);
}
