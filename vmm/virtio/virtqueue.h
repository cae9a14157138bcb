/* A split virtqueue in guest RAM, as a device sees it: bounds-checked walks and used-ring writes. */
#ifndef VMM_VIRTIO_VIRTQUEUE_H
#define VMM_VIRTIO_VIRTQUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vmm/guest_mem.h"

/*
 * Every virtio device reaches its rings through these functions, so that every index,
 * address and length the guest wrote passes the same checks (the layout is in
 * vmm/virtio/virtio_priv.h). They touch nothing but the guest_mem they are given: a fuzz
 * harness lays a plain buffer out with guest_mem_layout and calls them directly.
 * Nothing here locks: the caller serialises all access to one queue.
 */

/* One guest-physical piece of a descriptor chain with a non-zero length. */
struct vq_seg {
	uint64_t gpa;
	uint32_t len;
	bool write; /* the device writes it (VRING_DESC_F_WRITE) */
};

/* A chain gathered by vq_chain_collect: readable segments first, then writable ones. */
struct vq_chain {
	unsigned nseg;
	uint64_t rd_bytes, wr_bytes;
};

/*
 * A mapped queue: num entries at ring_gpa. The host pointers stay valid as long as
 * guest RAM stays mapped (a VM's whole life).
 */
struct vq {
	unsigned num;
	uint64_t ring_gpa;
	uint8_t *desc, *avail, *used;
};

/*
 * Map the queue of num entries (a power of two, at most 32768) at ring_gpa: every byte
 * from the descriptor table to the used ring's avail_event must lie in one RAM region.
 * Returns 0, or -EFAULT (the ring is not in RAM) or -EINVAL (bad num).
 */
int vq_map(struct vq *q, const struct guest_mem *mem, uint64_t ring_gpa, unsigned num);

/* The driver's avail->idx (acquire: ring entries and descriptors it covers are read after). */
uint16_t vq_avail_idx(const struct vq *q);
/* avail->flags (VRING_AVAIL_F_NO_INTERRUPT), read after a full fence so it cannot be read
 * before the used index the caller just published. */
uint16_t vq_avail_flags(const struct vq *q);
/* The head the driver put in avail slot idx % num (not yet checked: vq_chain_collect does). */
uint16_t vq_avail_head(const struct vq *q, uint16_t idx);

/*
 * Copy the chain starting at head into seg[0..max_seg), checking every index against
 * its table, bounding the walk by the table size (so a loop ends), accepting an indirect
 * table (of at most max_seg entries, inside RAM) only as the whole chain and only if
 * indirect_ok, and requiring readable before writable segments. Zero-length
 * descriptors are skipped. Returns 0 with *c filled, or -EINVAL for a chain that cannot
 * be trusted at all. max_seg must be at least q->num.
 */
int vq_chain_collect(const struct vq *q, const struct guest_mem *mem, uint16_t head,
		     bool indirect_ok, struct vq_seg *seg, unsigned max_seg, struct vq_chain *c);

/*
 * Map bytes [off, off + len) of the readable (write false) or writable part of a chain
 * into iov (and, if piece is not NULL, the guest-physical pieces into piece, for dirty
 * marks), each piece through guest_mem_ptr. At most max entries. Returns the iovec
 * count, or -EFAULT if a piece lies outside guest RAM or more than max are needed. A
 * range past the chain's end is cut short: the caller checks the lengths it needs.
 */
int vq_iov_build(const struct guest_mem *mem, const struct vq_seg *seg, unsigned nseg,
		 bool write, uint64_t off, uint64_t len, struct iovec *iov,
		 struct vq_seg *piece, unsigned max);

/*
 * Copy len bytes of src into the writable segments of a chain, from its first writable
 * byte on, and mark every page written dirty. Returns the bytes copied (len, or less
 * if the chain is shorter), or -EFAULT for a segment outside RAM (what was copied
 * before it stays copied and marked).
 */
int64_t vq_chain_write(const struct guest_mem *mem, const struct vq_seg *seg, unsigned nseg,
		       const void *src, uint64_t len);

/*
 * Write used element slot used_idx % num = {id, len} and mark it dirty. The driver
 * does not look at it until vq_used_publish.
 */
void vq_used_put(struct vq *q, const struct guest_mem *mem, uint16_t used_idx, uint32_t id,
		 uint32_t len);
/* Store used->idx with release (elements and data first) and mark it dirty. */
void vq_used_publish(struct vq *q, const struct guest_mem *mem, uint16_t used_idx);
/*
 * With VIRTIO_RING_F_EVENT_IDX, the driver says at which used index it wants its next
 * interrupt (used_event, after the avail ring) and the device at which avail index it
 * wants its next kick (avail_event, after the used ring); either side signals only when
 * its index passes the other's event since it last looked: vq_need_event.
 */
static inline bool vq_need_event(uint16_t event, uint16_t new_idx, uint16_t old_idx)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old_idx);
}

/* The driver's used_event, read after a full fence (after the used index the caller
 * just published). */
uint16_t vq_used_event(const struct vq *q);
/* Ask for a kick once avail->idx passes idx (avail_event = idx), mark it dirty, then a
 * full fence so the caller's next vq_avail_idx cannot be read before it is visible. */
void vq_avail_event_set(struct vq *q, const struct guest_mem *mem, uint16_t idx);

/* Set or clear VRING_USED_F_NO_NOTIFY in used->flags (a hint to the driver), then a full
 * fence, so the caller's next vq_avail_idx cannot be read before the flag is visible. */
void vq_used_notify_set(struct vq *q, const struct guest_mem *mem, bool notify);

#endif
