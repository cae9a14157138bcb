/* virtio-blk's saved state and its disk change log, as vm_state.c and disk_log.c reach them. */
#include "vmm/devices.h"

#include <errno.h>
#include <pthread.h>

#include "vmm/state/state_codec.h"
#include "vmm/virtio/virtio_blk_priv.h"

/*
 * VIRTIO_BLK record: host features u32, guest features u32, queue PFN u32, queue select
 * u16, last avail idx u16, used idx u16, status u8, ISR u8, broken u8, capacity in
 * sectors u64.
 */
void virtio_blk_state_save(struct virtio_blk *vb, struct vs_enc *e)
{
	pthread_mutex_lock(&vb->lock);
	vs_enc_u32(e, vb->host_features);
	vs_enc_u32(e, vb->guest_features);
	vs_enc_u32(e, vb->queue_pfn);
	vs_enc_u16(e, vb->queue_sel);
	vs_enc_u16(e, vb->last_avail_idx);
	vs_enc_u16(e, vb->used_idx);
	vs_enc_u8(e, vb->status);
	vs_enc_u8(e, vb->isr);
	vs_enc_u8(e, vb->broken);
	vs_enc_u64(e, vb->capacity_sectors);
	pthread_mutex_unlock(&vb->lock);
}

int virtio_blk_state_load(struct virtio_blk *vb, const uint8_t *payload, size_t len)
{
	uint32_t host_features, guest_features, queue_pfn;
	uint16_t queue_sel, last_avail, used;
	uint8_t status, isr, broken;
	uint64_t capacity;
	struct dec d;

	d = dec_init(payload, len);
	dec_u32(&d, &host_features);
	dec_u32(&d, &guest_features);
	dec_u32(&d, &queue_pfn);
	dec_u16(&d, &queue_sel);
	dec_u16(&d, &last_avail);
	dec_u16(&d, &used);
	dec_u8(&d, &status);
	dec_u8(&d, &isr);
	dec_u8(&d, &broken);
	dec_u64(&d, &capacity);
	if (!dec_done(&d))
		return -EBADMSG;
	/*
	 * The driver negotiated against the saved host_features and read F_RO once: it may
	 * use only what we offer too, and the disk must not have changed its writability.
	 */
	if ((guest_features & ~vb->host_features) || capacity != vb->capacity_sectors ||
	    ((host_features ^ vb->host_features) & (1u << VIRTIO_BLK_F_RO)) ||
	    (isr & ~(VIRTIO_ISR_QUEUE | VIRTIO_ISR_CONFIG)) || broken > 1 ||
	    last_avail != used)
		return -EINVAL;
	pthread_mutex_lock(&vb->lock);
	vb->guest_features = guest_features;
	vb->queue_pfn = queue_pfn;
	vb->queue_sel = queue_sel;
	vb->last_avail_idx = last_avail;
	vb->used_idx = used;
	vb->status = status;
	vb->isr = isr;
	vb->broken = broken;
	irq_set(&vb->irq, vb->gsi, isr != 0);
	pthread_mutex_unlock(&vb->lock);
	return 0;
}

bool virtio_blk_log_valid(struct virtio_blk *vb, const char *base)
{
	bool valid;

	if (!vb->has_log)
		return false;
	pthread_mutex_lock(&vb->lock);
	valid = disk_log_valid(&vb->log, base);
	pthread_mutex_unlock(&vb->lock);
	return valid;
}

int virtio_blk_log_fetch(struct virtio_blk *vb, uint64_t *bitmap, const char *base)
{
	int rc;

	if (!vb->has_log)
		return -ENOTSUP;
	pthread_mutex_lock(&vb->lock);
	rc = disk_log_fetch(&vb->log, bitmap, base);
	pthread_mutex_unlock(&vb->lock);
	return rc;
}

int virtio_blk_view_add(struct virtio_blk *vb, int *out)
{
	int rc;

	if (!vb->has_log)
		return -ENOTSUP;
	pthread_mutex_lock(&vb->lock);
	rc = disk_log_view_add(&vb->log, out);
	pthread_mutex_unlock(&vb->lock);
	return rc;
}

int virtio_blk_view_fetch(struct virtio_blk *vb, int view, uint64_t *bitmap)
{
	if (!vb->has_log)
		return -ENOTSUP;
	pthread_mutex_lock(&vb->lock);
	disk_log_view_fetch(&vb->log, view, bitmap);
	pthread_mutex_unlock(&vb->lock);
	return 0;
}

void virtio_blk_view_remove(struct virtio_blk *vb, int view)
{
	if (!vb->has_log)
		return;
	pthread_mutex_lock(&vb->lock);
	disk_log_view_remove(&vb->log, view);
	pthread_mutex_unlock(&vb->lock);
}
