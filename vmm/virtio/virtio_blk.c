/* virtio-blk over legacy virtio-pci: one queue served synchronously on the notifying vCPU. */
#include "vmm/devices.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "vmm/disk_log.h"
#include "vmm/virtio/virtio_blk_priv.h"
#include "vmm/virtio/virtio_priv.h"

/*
 * Map bytes [off, off + len) of the readable (write false) or writable part of the chain
 * into vb->iov and vb->piece (vq_iov_build). Returns the iovec count, or -EFAULT if a
 * piece lies outside guest RAM. The caller has checked off + len fits.
 */
static int vblk_iov_build(struct virtio_blk *vb, const struct vq_chain *r, bool write,
			  uint64_t off, uint64_t len)
{
	return vq_iov_build(vb->mem, vb->seg, r->nseg, write, off, len, vb->iov, vb->piece,
			    VBLK_QUEUE_NUM);
}

static void vblk_pieces_mark_dirty(struct virtio_blk *vb, int n)
{
	for (int k = 0; k < n; k++)
		guest_mem_mark_dirty(vb->mem, vb->piece[k].gpa, vb->piece[k].len);
}

/* preadv/pwritev the whole of iov at off, through short transfers and EINTR. */
static int vblk_io_full(int fd, struct iovec *iov, int n, uint64_t off, bool write)
{
	while (n > 0) {
		ssize_t done = write ? pwritev(fd, iov, n, (off_t)off)
				     : preadv(fd, iov, n, (off_t)off);

		if (done < 0 && errno == EINTR)
			continue;
		if (done < 0)
			return -errno;
		if (done == 0)
			return -EIO; /* the image shrank under us */
		off += (uint64_t)done;
		while (n > 0 && (size_t)done >= iov->iov_len) {
			done -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + done;
			iov->iov_len -= (size_t)done;
		}
	}
	return 0;
}

/* IN or OUT: sector-aligned, inside the disk, every buffer inside guest RAM. */
static uint8_t vblk_rw(struct virtio_blk *vb, const struct vq_chain *r, uint64_t sector, bool out,
		       uint64_t *written)
{
	uint64_t len = out ? r->rd_bytes - VIRTIO_BLK_HDR_BYTES : r->wr_bytes - 1;
	int n, rc;

	if (out && vb->read_only)
		return VIRTIO_BLK_S_IOERR;
	if (len % VIRTIO_BLK_SECTOR_BYTES || sector > vb->capacity_sectors ||
	    len / VIRTIO_BLK_SECTOR_BYTES > vb->capacity_sectors - sector)
		return VIRTIO_BLK_S_IOERR;
	n = vblk_iov_build(vb, r, !out, out ? VIRTIO_BLK_HDR_BYTES : 0, len);
	if (n < 0)
		return VIRTIO_BLK_S_IOERR;
	/*
	 * The one place guest data reaches the image. Marked before the write, and under
	 * lock, so a fetch sees either neither or both (a failed write may still have
	 * landed in part: the blocks count as changed either way).
	 */
	if (out && vb->has_log)
		disk_log_mark(&vb->log, sector * VIRTIO_BLK_SECTOR_BYTES, len);
	rc = vblk_io_full(vb->fd, vb->iov, n, sector * VIRTIO_BLK_SECTOR_BYTES, out);
	if (!out) {
		/* Even a failed read may have landed partly: the pages are dirty either way. */
		vblk_pieces_mark_dirty(vb, n);
		*written = rc == 0 ? len : 0;
	}
	return rc == 0 ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR;
}

static uint8_t vblk_get_id(struct virtio_blk *vb, const struct vq_chain *r, uint64_t *written)
{
	uint64_t room = r->wr_bytes - 1; /* the status byte is not for the id */
	uint64_t len = room < VIRTIO_BLK_ID_BYTES ? room : VIRTIO_BLK_ID_BYTES;
	int n = vblk_iov_build(vb, r, true, 0, len);
	size_t at = 0;

	if (n < 0)
		return VIRTIO_BLK_S_IOERR;
	for (int k = 0; k < n; k++) {
		memcpy(vb->iov[k].iov_base, vb->id + at, vb->iov[k].iov_len);
		at += vb->iov[k].iov_len;
	}
	vblk_pieces_mark_dirty(vb, n);
	*written = len;
	return VIRTIO_BLK_S_OK;
}

static uint8_t vblk_handle(struct virtio_blk *vb, const struct vq_chain *r, uint64_t *written)
{
	uint8_t hdr[VIRTIO_BLK_HDR_BYTES];
	size_t at = 0;
	int n;

	if (r->rd_bytes < VIRTIO_BLK_HDR_BYTES)
		return VIRTIO_BLK_S_IOERR;
	n = vblk_iov_build(vb, r, false, 0, VIRTIO_BLK_HDR_BYTES);
	if (n < 0)
		return VIRTIO_BLK_S_IOERR;
	for (int k = 0; k < n; k++) {
		memcpy(hdr + at, vb->iov[k].iov_base, vb->iov[k].iov_len);
		at += vb->iov[k].iov_len;
	}
	switch (le32_decode(hdr)) {
	case VIRTIO_BLK_T_IN:
		return vblk_rw(vb, r, le64_decode(hdr + 8), false, written);
	case VIRTIO_BLK_T_OUT:
		return vblk_rw(vb, r, le64_decode(hdr + 8), true, written);
	case VIRTIO_BLK_T_FLUSH:
		while (fdatasync(vb->fd) < 0) {
			if (errno != EINTR)
				return VIRTIO_BLK_S_IOERR;
		}
		return VIRTIO_BLK_S_OK;
	case VIRTIO_BLK_T_GET_ID:
		return vblk_get_id(vb, r, written);
	default:
		return VIRTIO_BLK_S_UNSUPP;
	}
}

/*
 * Serve the chain at head. Returns the used length: bytes written into the chain, status
 * byte included. A chain whose status byte cannot be located (broken links, no writable
 * byte, last buffer outside RAM) is consumed with length 0 and nothing written.
 */
static uint32_t vblk_request_serve(struct virtio_blk *vb, const struct vq *q, uint16_t head)
{
	bool indirect_ok = vb->guest_features & (1u << VIRTIO_RING_F_INDIRECT_DESC);
	struct vq_chain r;
	const struct vq_seg *last;
	uint64_t written = 0;
	uint8_t *status;

	if (vq_chain_collect(q, vb->mem, head, indirect_ok, vb->seg, VBLK_QUEUE_NUM, &r) < 0 ||
	    r.wr_bytes == 0)
		return 0;
	last = &vb->seg[r.nseg - 1]; /* writable: nothing readable follows a writable segment */
	status = guest_mem_ptr(vb->mem, last->gpa, last->len);
	if (!status)
		return 0;
	status += last->len - 1;
	*status = vblk_handle(vb, &r, &written);
	guest_mem_mark_dirty(vb->mem, last->gpa + last->len - 1, 1);
	return written + 1 > UINT32_MAX ? UINT32_MAX : (uint32_t)(written + 1);
}

/* Stop serving until the driver resets us, and tell it through a config interrupt. */
static void vblk_set_broken(struct virtio_blk *vb)
{
	vb->broken = true;
	vb->isr |= VIRTIO_ISR_CONFIG;
	irq_set(&vb->irq, vb->gsi, 1);
}

/*
 * Queue notify: serve every entry the driver made available since last_avail_idx.
 * Ordering: the avail index is loaded with acquire, so the ring entries and descriptors
 * it covers are read after it; each used element is written before used->idx is stored
 * with release, so the driver never sees an index ahead of its element or data.
 */
static void vblk_queue_notify(struct virtio_blk *vb)
{
	uint64_t ring_gpa = (uint64_t)vb->queue_pfn << VIRTIO_PCI_QUEUE_ADDR_SHIFT;
	uint16_t avail_idx;
	bool served = false;
	struct vq q;

	if (vb->broken || vb->queue_pfn == 0)
		return;
	if (vq_map(&q, vb->mem, ring_gpa, VBLK_QUEUE_NUM) < 0) {
		vblk_set_broken(vb);
		return;
	}
	avail_idx = vq_avail_idx(&q);
	if ((uint16_t)(avail_idx - vb->last_avail_idx) > VBLK_QUEUE_NUM) {
		vblk_set_broken(vb);
		return;
	}
	while (vb->last_avail_idx != avail_idx) {
		uint16_t head = vq_avail_head(&q, vb->last_avail_idx);
		uint32_t len = vblk_request_serve(vb, &q, head);

		vq_used_put(&q, vb->mem, vb->used_idx, head, len);
		vb->used_idx++;
		vb->last_avail_idx++;
		vq_used_publish(&q, vb->mem, vb->used_idx);
		served = true;
	}
	if (served) {
		vb->isr |= VIRTIO_ISR_QUEUE;
		irq_set(&vb->irq, vb->gsi, 1);
	}
}

/* Device status 0: forget the driver, its queue and any pending interrupt. */
static void vblk_reset(struct virtio_blk *vb)
{
	vb->guest_features = 0;
	vb->queue_pfn = 0;
	vb->queue_sel = 0;
	vb->last_avail_idx = 0;
	vb->used_idx = 0;
	vb->status = 0;
	vb->isr = 0;
	vb->broken = false;
	irq_set(&vb->irq, vb->gsi, 0);
}

/* The register byte at off (below VIRTIO_PCI_BAR_BYTES); reading ISR clears it. */
static uint8_t vblk_reg_byte(struct virtio_blk *vb, unsigned off)
{
	uint8_t regs[VIRTIO_PCI_CONFIG] = { 0 };
	bool q0 = vb->queue_sel == 0;

	if (off >= VIRTIO_PCI_CONFIG)
		return vb->config[off - VIRTIO_PCI_CONFIG];
	if (off == VIRTIO_PCI_ISR) {
		uint8_t isr = vb->isr;

		vb->isr = 0;
		irq_set(&vb->irq, vb->gsi, 0);
		return isr;
	}
	le32_encode(regs + VIRTIO_PCI_HOST_FEATURES, vb->host_features);
	le32_encode(regs + VIRTIO_PCI_GUEST_FEATURES, vb->guest_features);
	le32_encode(regs + VIRTIO_PCI_QUEUE_PFN, q0 ? vb->queue_pfn : 0);
	le16_encode(regs + VIRTIO_PCI_QUEUE_NUM, q0 ? VBLK_QUEUE_NUM : 0);
	le16_encode(regs + VIRTIO_PCI_QUEUE_SEL, vb->queue_sel);
	regs[VIRTIO_PCI_STATUS] = vb->status;
	if (vb->broken)
		regs[VIRTIO_PCI_STATUS] |= VIRTIO_STATUS_NEEDS_RESET;
	return regs[off];
}

static void vblk_bar_read(void *opaque, uint64_t off, void *data, unsigned size)
{
	struct virtio_blk *vb = opaque;
	uint8_t *out = data;

	pthread_mutex_lock(&vb->lock);
	for (unsigned n = 0; n < size; n++) {
		uint64_t at = off + n;

		out[n] = at < VIRTIO_PCI_BAR_BYTES ? vblk_reg_byte(vb, (unsigned)at) : 0xff;
	}
	pthread_mutex_unlock(&vb->lock);
}

/* Registers are written whole at their own offset; other writes (config included) are ignored. */
static void vblk_bar_write(void *opaque, uint64_t off, const void *data, unsigned size)
{
	struct virtio_blk *vb = opaque;
	const uint8_t *in = data;

	pthread_mutex_lock(&vb->lock);
	if (off == VIRTIO_PCI_GUEST_FEATURES && size == 4) {
		vb->guest_features = le32_decode(in) & vb->host_features;
	} else if (off == VIRTIO_PCI_QUEUE_PFN && size == 4) {
		if (vb->queue_sel == 0) {
			/* A new ring (or 0, deleting the queue) starts from index 0. */
			vb->queue_pfn = le32_decode(in);
			vb->last_avail_idx = 0;
			vb->used_idx = 0;
		}
	} else if (off == VIRTIO_PCI_QUEUE_SEL && size == 2) {
		vb->queue_sel = le16_decode(in);
	} else if (off == VIRTIO_PCI_QUEUE_NOTIFY && size == 2) {
		if (le16_decode(in) == 0)
			vblk_queue_notify(vb);
	} else if (off == VIRTIO_PCI_STATUS && size == 1) {
		if (in[0] == 0)
			vblk_reset(vb);
		else
			vb->status = in[0];
	}
	pthread_mutex_unlock(&vb->lock);
}

static const struct bus_dev_ops vblk_bar_ops = {
	.read = vblk_bar_read,
	.write = vblk_bar_write,
};

/* The GET_ID serial: "godwit-" and a hash of the image's file name, stable across hosts. */
static void vblk_id_make(char id[VIRTIO_BLK_ID_BYTES], const char *path)
{
	const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	uint32_t h = 2166136261u; /* FNV-1a */
	char buf[VIRTIO_BLK_ID_BYTES + 1];

	for (; *name; name++)
		h = (h ^ (uint8_t)*name) * 16777619u;
	snprintf(buf, sizeof(buf), "godwit-%08x", h);
	memset(id, 0, VIRTIO_BLK_ID_BYTES);
	memcpy(id, buf, strlen(buf));
}

static void vblk_config_fill(struct virtio_blk *vb)
{
	le64_encode(vb->config + VIRTIO_BLK_CFG_CAPACITY, vb->capacity_sectors);
	le32_encode(vb->config + VIRTIO_BLK_CFG_SEG_MAX, VBLK_SEG_MAX);
	le32_encode(vb->config + VIRTIO_BLK_CFG_BLK_SIZE, VIRTIO_BLK_SECTOR_BYTES);
	vb->host_features = 1u << VIRTIO_BLK_F_SEG_MAX | 1u << VIRTIO_BLK_F_BLK_SIZE |
			    1u << VIRTIO_BLK_F_FLUSH | 1u << VIRTIO_RING_F_INDIRECT_DESC;
	if (vb->read_only)
		vb->host_features |= 1u << VIRTIO_BLK_F_RO;
}

/* Report why path cannot be used; err may be NULL. */
static void vblk_err(char *err, size_t errlen, const char *path, int e)
{
	if (err && errlen)
		snprintf(err, errlen, "disk image %s: %s", path, strerror(e));
}

/* Open the image, falling back to read-only when only permissions forbid writing. */
static int vblk_open(struct virtio_blk *vb, const struct virtio_blk_config *cfg)
{
	int fd;

	vb->read_only = cfg->read_only;
	if (!vb->read_only) {
		fd = open(cfg->path, O_RDWR | O_CLOEXEC);
		if (fd >= 0) {
			vb->fd = fd;
			return 0;
		}
		if (errno != EACCES && errno != EROFS && errno != EPERM)
			return -errno;
		vb->read_only = true;
	}
	fd = open(cfg->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	vb->fd = fd;
	return 0;
}

int virtio_blk_create(struct virtio_blk **out, struct pci_bus *pci, const struct guest_mem *mem,
		      const struct irq_chip *irq, const struct virtio_blk_config *cfg, char *err,
		      size_t errlen)
{
	struct pci_dev_desc desc = {
		.vendor_id = VIRTIO_PCI_VENDOR,
		.device_id = VIRTIO_PCI_DEVICE_BLK,
		.subsys_vendor_id = VIRTIO_PCI_VENDOR,
		.subsys_id = VIRTIO_ID_BLOCK,
		.class_code = VIRTIO_PCI_CLASS_STORAGE,
		.bar[0] = { .size = VIRTIO_PCI_BAR_BYTES, .io = true, .ops = &vblk_bar_ops },
	};
	struct virtio_blk *vb;
	off_t bytes;
	int rc;

	if (!cfg->path) {
		if (err && errlen)
			snprintf(err, errlen, "virtio-blk: no disk image given");
		return -EINVAL;
	}
	vb = calloc(1, sizeof(*vb));
	if (!vb) {
		vblk_err(err, errlen, cfg->path, ENOMEM);
		return -ENOMEM;
	}
	vb->pci = pci;
	vb->mem = mem;
	if (irq)
		vb->irq = *irq;
	rc = vblk_open(vb, cfg);
	if (rc < 0) {
		vblk_err(err, errlen, cfg->path, -rc);
		goto err_free;
	}
	bytes = lseek(vb->fd, 0, SEEK_END);
	if (bytes < 0) {
		rc = -errno;
		vblk_err(err, errlen, cfg->path, -rc);
		goto err_close;
	}
	if (bytes % VIRTIO_BLK_SECTOR_BYTES) {
		rc = -EINVAL;
		if (err && errlen)
			snprintf(err, errlen, "disk image %s is %lld bytes, not a multiple of 512",
				 cfg->path, (long long)bytes);
		goto err_close;
	}
	vb->capacity_sectors = (uint64_t)bytes / VIRTIO_BLK_SECTOR_BYTES;
	vblk_config_fill(vb);
	vblk_id_make(vb->id, cfg->path);
	if (cfg->change_log && !vb->read_only) {
		rc = disk_log_open(&vb->log, cfg->path, vb->fd, (uint64_t)bytes, err, errlen);
		if (rc < 0)
			goto err_close;
		vb->has_log = true;
	}
	rc = -pthread_mutex_init(&vb->lock, NULL);
	if (rc < 0) {
		vblk_err(err, errlen, cfg->path, -rc);
		goto err_log;
	}
	desc.bar[0].opaque = vb;
	rc = pci_add_device(pci, &desc, &vb->slot);
	if (rc < 0) {
		if (err && errlen)
			snprintf(err, errlen, "virtio-blk: PCI slot for %s: %s", cfg->path,
				 strerror(-rc));
		goto err_mutex;
	}
	vb->gsi = pci_slot_gsi(vb->slot);
	*out = vb;
	return 0;
err_mutex:
	pthread_mutex_destroy(&vb->lock);
err_log:
	if (vb->has_log)
		disk_log_free(&vb->log);
err_close:
	close(vb->fd);
err_free:
	free(vb);
	return rc;
}

uint64_t virtio_blk_capacity_bytes(const struct virtio_blk *vb)
{
	return vb->capacity_sectors * VIRTIO_BLK_SECTOR_BYTES;
}

bool virtio_blk_is_read_only(const struct virtio_blk *vb)
{
	return vb->read_only;
}

void virtio_blk_destroy(struct virtio_blk *vb)
{
	if (!vb)
		return;
	pci_remove_device(vb->pci, vb->slot);
	if (vb->has_log)
		disk_log_close(&vb->log); /* nowhere to report a failure: the log stays invalid */
	pthread_mutex_destroy(&vb->lock);
	close(vb->fd);
	free(vb);
}
