/* virtio-net's saved state: what the driver negotiated and set up, as vm_state.c carries it. */
#include "vmm/devices.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "vmm/state/state_codec.h"
#include "vmm/virtio/virtio_net_priv.h"

/*
 * One NIC's payload (inside the VIRTIO_NET record, see state_format.h):
 *
 *   host features u32, guest features u32, status u8, ISR u8, queue select u16,
 *   broken u8, MAC 6 bytes, link status u16,
 *   3 queues (receive, transmit, control) x { PFN u32, last avail idx u16, used idx u16 },
 *   filter: promisc u8, allmulti u8, unicast overflow u8, multicast overflow u8,
 *           unicast count u32 (<= 64), that many MACs, multicast count u32, that many MACs
 */
#define VNET_STATE_MAC_OFF (4 + 4 + 1 + 1 + 2 + 1)

void virtio_net_state_save(struct virtio_net *n, struct vs_enc *e)
{
	const struct vnet_rx_filter *f = &n->filter;

	pthread_mutex_lock(&n->lock);
	vs_enc_u32(e, n->host_features);
	vs_enc_u32(e, n->guest_features);
	vs_enc_u8(e, n->status);
	vs_enc_u8(e, n->isr);
	vs_enc_u16(e, n->queue_sel);
	vs_enc_u8(e, n->broken);
	vs_enc_bytes(e, n->mac, VIRTIO_NET_MAC_BYTES);
	vs_enc_u16(e, n->link_status);
	for (unsigned qi = 0; qi < VIRTIO_NET_QUEUES; qi++) {
		vs_enc_u32(e, n->q[qi].pfn);
		vs_enc_u16(e, n->q[qi].last_avail);
		vs_enc_u16(e, n->q[qi].used_idx);
	}
	vs_enc_u8(e, f->promisc);
	vs_enc_u8(e, f->allmulti);
	vs_enc_u8(e, f->uni_overflow);
	vs_enc_u8(e, f->multi_overflow);
	vs_enc_u32(e, f->n_uni);
	vs_enc_bytes(e, f->uni, (size_t)f->n_uni * 6);
	vs_enc_u32(e, f->n_multi);
	vs_enc_bytes(e, f->multi, (size_t)f->n_multi * 6);
	pthread_mutex_unlock(&n->lock);
}

int virtio_net_state_mac(const uint8_t *payload, size_t len, uint8_t mac[VIRTIO_NET_MAC_BYTES])
{
	if (len < VNET_STATE_MAC_OFF + VIRTIO_NET_MAC_BYTES)
		return -EBADMSG;
	memcpy(mac, payload + VNET_STATE_MAC_OFF, VIRTIO_NET_MAC_BYTES);
	return 0;
}

/* A MAC table: count u32 (at most VNET_MAC_TABLE), then count MACs. */
static void vnet_dec_table(struct dec *d, uint8_t (*table)[6], uint32_t *count)
{
	dec_u32(d, count);
	if (*count > VNET_MAC_TABLE) {
		d->err = -EBADMSG;
		*count = 0;
		return;
	}
	dec_bytes(d, table, (size_t)*count * 6);
}

int virtio_net_state_load(struct virtio_net *n, const uint8_t *payload, size_t len)
{
	struct vnet_queue q[VIRTIO_NET_QUEUES] = { 0 };
	struct vnet_rx_filter f = { 0 };
	uint32_t host_features, guest_features;
	uint8_t status, isr, broken, mac[VIRTIO_NET_MAC_BYTES], flag[4];
	uint16_t queue_sel, link_status;
	struct dec d;
	int rc;

	d = dec_init(payload, len);
	dec_u32(&d, &host_features);
	dec_u32(&d, &guest_features);
	dec_u8(&d, &status);
	dec_u8(&d, &isr);
	dec_u16(&d, &queue_sel);
	dec_u8(&d, &broken);
	dec_bytes(&d, mac, sizeof(mac));
	dec_u16(&d, &link_status);
	for (unsigned qi = 0; qi < VIRTIO_NET_QUEUES; qi++) {
		dec_u32(&d, &q[qi].pfn);
		dec_u16(&d, &q[qi].last_avail);
		dec_u16(&d, &q[qi].used_idx);
	}
	dec_bytes(&d, flag, sizeof(flag));
	vnet_dec_table(&d, f.uni, &f.n_uni);
	vnet_dec_table(&d, f.multi, &f.n_multi);
	if (!dec_done(&d))
		return -EBADMSG;
	/* The driver negotiated against the saved host features: it may use only what we offer. */
	(void)host_features;
	if ((guest_features & ~n->host_features) || broken > 1 ||
	    (isr & ~(VIRTIO_ISR_QUEUE | VIRTIO_ISR_CONFIG)) ||
	    (link_status & ~(VIRTIO_NET_S_LINK_UP | VIRTIO_NET_S_ANNOUNCE)))
		return -EINVAL;
	for (unsigned i = 0; i < sizeof(flag); i++) {
		if (flag[i] > 1)
			return -EINVAL;
	}
	for (unsigned qi = 0; qi < VIRTIO_NET_QUEUES; qi++) {
		if (q[qi].last_avail != q[qi].used_idx)
			return -EINVAL;
		if (q[qi].pfn)
			q[qi].mapped = vq_map(&q[qi].vq, n->mem,
					      (uint64_t)q[qi].pfn << VIRTIO_PCI_QUEUE_ADDR_SHIFT,
					      VNET_QUEUE_NUM) == 0;
	}
	f.promisc = flag[0];
	f.allmulti = flag[1];
	f.uni_overflow = flag[2];
	f.multi_overflow = flag[3];

	pthread_mutex_lock(&n->lock);
	n->guest_features = guest_features;
	n->status = status;
	n->isr = isr;
	n->queue_sel = queue_sel;
	n->broken = broken;
	memcpy(n->mac, mac, sizeof(mac));
	n->link_status = link_status;
	memcpy(n->q, q, sizeof(q));
	n->filter = f;
	n->recheck = true;
	rc = vnet_features_apply(n);
	irq_set(&n->irq, n->gsi, isr != 0);
	pthread_mutex_unlock(&n->lock);
	return rc;
}
