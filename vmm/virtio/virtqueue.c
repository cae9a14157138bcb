/* A split virtqueue in guest RAM, as a device sees it: bounds-checked walks and used-ring writes. */
#include "vmm/virtio/virtqueue.h"

#include <endian.h>
#include <errno.h>
#include <string.h>

#include "vmm/virtio/virtio_priv.h"

int vq_map(struct vq *q, const struct guest_mem *mem, uint64_t ring_gpa, unsigned num)
{
	uint8_t *ring;

	if (num == 0 || num > 32768 || (num & (num - 1)))
		return -EINVAL;
	ring = guest_mem_ptr(mem, ring_gpa, vring_bytes(num));
	if (!ring)
		return -EFAULT;
	*q = (struct vq){
		.num = num,
		.ring_gpa = ring_gpa,
		.desc = ring,
		.avail = ring + vring_avail_off(num),
		.used = ring + vring_used_off(num),
	};
	return 0;
}

uint16_t vq_avail_idx(const struct vq *q)
{
	return le16toh(__atomic_load_n((uint16_t *)(q->avail + VRING_AVAIL_IDX_OFF),
				       __ATOMIC_ACQUIRE));
}

uint16_t vq_avail_flags(const struct vq *q)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return le16toh(__atomic_load_n((uint16_t *)q->avail, __ATOMIC_RELAXED));
}

uint16_t vq_avail_head(const struct vq *q, uint16_t idx)
{
	return le16_decode(q->avail + VRING_AVAIL_RING_OFF + 2 * (size_t)(idx % q->num));
}

int vq_chain_collect(const struct vq *q, const struct guest_mem *mem, uint16_t head,
		     bool indirect_ok, struct vq_seg *seg, unsigned max_seg, struct vq_chain *c)
{
	const uint8_t *table = q->desc;
	unsigned table_num = q->num, i = head, steps = 0, nseg = 0;
	bool indirect = false, seen_write = false;

	*c = (struct vq_chain){ 0 };
	if (head >= q->num || max_seg < q->num)
		return -EINVAL;
	for (;;) {
		struct vring_desc d;

		if (steps++ >= table_num)
			return -EINVAL; /* longer than the table: a loop */
		d = vring_desc_decode(table + (size_t)VRING_DESC_BYTES * i);
		if (d.flags & VRING_DESC_F_INDIRECT) {
			if (!indirect_ok || indirect || nseg || (d.flags & VRING_DESC_F_NEXT) ||
			    d.len == 0 || d.len % VRING_DESC_BYTES ||
			    d.len / VRING_DESC_BYTES > max_seg)
				return -EINVAL;
			table = guest_mem_ptr(mem, d.addr, d.len);
			if (!table)
				return -EINVAL;
			table_num = d.len / VRING_DESC_BYTES;
			indirect = true;
			i = 0;
			steps = 0;
			continue;
		}
		if (!(d.flags & VRING_DESC_F_WRITE) && seen_write)
			return -EINVAL;
		seen_write |= (d.flags & VRING_DESC_F_WRITE) != 0;
		if (d.len) {
			/* steps <= table_num <= max_seg bounds nseg: each step adds one at most. */
			seg[nseg++] = (struct vq_seg){
				.gpa = d.addr, .len = d.len, .write = d.flags & VRING_DESC_F_WRITE,
			};
			if (d.flags & VRING_DESC_F_WRITE)
				c->wr_bytes += d.len;
			else
				c->rd_bytes += d.len;
		}
		if (!(d.flags & VRING_DESC_F_NEXT))
			break;
		if (d.next >= table_num)
			return -EINVAL;
		i = d.next;
	}
	c->nseg = nseg;
	return 0;
}

int vq_iov_build(const struct guest_mem *mem, const struct vq_seg *seg, unsigned nseg,
		 bool write, uint64_t off, uint64_t len, struct iovec *iov,
		 struct vq_seg *piece, unsigned max)
{
	unsigned n = 0;

	for (unsigned k = 0; k < nseg && len; k++) {
		const struct vq_seg *s = &seg[k];
		uint64_t take;
		void *hva;

		if (s->write != write)
			continue;
		if (off >= s->len) {
			off -= s->len;
			continue;
		}
		take = s->len - off < len ? s->len - off : len;
		if (n == max || s->gpa + off < s->gpa)
			return -EFAULT;
		hva = guest_mem_ptr(mem, s->gpa + off, take);
		if (!hva)
			return -EFAULT;
		iov[n] = (struct iovec){ .iov_base = hva, .iov_len = take };
		if (piece)
			piece[n] = (struct vq_seg){ .gpa = s->gpa + off, .len = (uint32_t)take,
						    .write = write };
		n++;
		len -= take;
		off = 0;
	}
	return (int)n;
}

int64_t vq_chain_write(const struct guest_mem *mem, const struct vq_seg *seg, unsigned nseg,
		       const void *src, uint64_t len)
{
	const uint8_t *from = src;
	uint64_t done = 0;

	for (unsigned k = 0; k < nseg && done < len; k++) {
		uint64_t take = seg[k].len < len - done ? seg[k].len : len - done;
		uint8_t *hva;

		if (!seg[k].write)
			continue;
		hva = guest_mem_ptr(mem, seg[k].gpa, take);
		if (!hva)
			return -EFAULT;
		memcpy(hva, from + done, take);
		guest_mem_mark_dirty(mem, seg[k].gpa, take);
		done += take;
	}
	return (int64_t)done;
}

void vq_used_put(struct vq *q, const struct guest_mem *mem, uint16_t used_idx, uint32_t id,
		 uint32_t len)
{
	uint64_t off = VRING_USED_RING_OFF + (uint64_t)VRING_USED_ELEM_BYTES * (used_idx % q->num);

	le32_encode(q->used + off, id);
	le32_encode(q->used + off + 4, len);
	guest_mem_mark_dirty(mem, q->ring_gpa + vring_used_off(q->num) + off,
			     VRING_USED_ELEM_BYTES);
}

void vq_used_publish(struct vq *q, const struct guest_mem *mem, uint16_t used_idx)
{
	__atomic_store_n((uint16_t *)(q->used + VRING_USED_IDX_OFF), htole16(used_idx),
			 __ATOMIC_RELEASE);
	guest_mem_mark_dirty(mem, q->ring_gpa + vring_used_off(q->num) + VRING_USED_IDX_OFF, 2);
}

uint16_t vq_used_event(const struct vq *q)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return le16toh(__atomic_load_n((uint16_t *)(q->avail + VRING_AVAIL_RING_OFF +
						    2 * (size_t)q->num), __ATOMIC_RELAXED));
}

void vq_avail_event_set(struct vq *q, const struct guest_mem *mem, uint16_t idx)
{
	uint64_t off = VRING_USED_RING_OFF + (uint64_t)VRING_USED_ELEM_BYTES * q->num;

	__atomic_store_n((uint16_t *)(q->used + off), htole16(idx), __ATOMIC_RELAXED);
	guest_mem_mark_dirty(mem, q->ring_gpa + vring_used_off(q->num) + off, 2);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

void vq_used_notify_set(struct vq *q, const struct guest_mem *mem, bool notify)
{
	uint16_t flags = le16toh(__atomic_load_n((uint16_t *)q->used, __ATOMIC_RELAXED));
	uint16_t want = notify ? (uint16_t)(flags & ~VRING_USED_F_NO_NOTIFY)
			       : (uint16_t)(flags | VRING_USED_F_NO_NOTIFY);

	if (want != flags) {
		__atomic_store_n((uint16_t *)q->used, htole16(want), __ATOMIC_RELAXED);
		guest_mem_mark_dirty(mem, q->ring_gpa + vring_used_off(q->num), 2);
	}
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}
