/* The split-virtqueue walker over guest RAM that is a plain buffer, as a fuzz harness drives it. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/guest_mem.h"
#include "vmm/virtio/virtio_priv.h"
#include "vmm/virtio/virtqueue.h"

#define RAM_BYTES (1ULL << 20)
#define QN 16
#define RING 0x1000ULL
#define INDIRECT 0x8000ULL

static uint8_t *ram;
static uint64_t *dirty;
static struct guest_mem mem;
static struct vq q;
static struct vq_seg seg[64];
static struct vq_chain c;

static void setup(void)
{
	ram = aligned_alloc(4096, RAM_BYTES);
	dirty = calloc(RAM_BYTES / 4096 / 64, sizeof(uint64_t));
	cr_assert(ram && dirty);
	memset(ram, 0, RAM_BYTES);
	guest_mem_layout(&mem, ram, RAM_BYTES);
	mem.region[0].vmm_dirty = dirty;
	cr_assert_eq(vq_map(&q, &mem, RING, QN), 0);
}

static void teardown(void)
{
	free(dirty);
	free(ram);
}

TestSuite(virtqueue, .init = setup, .fini = teardown, .timeout = 10);

static void desc(uint8_t *table, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
		 uint16_t next)
{
	vring_desc_encode(table + VRING_DESC_BYTES * i, addr, len, flags, next);
}

static int collect(uint16_t head, bool indirect_ok)
{
	return vq_chain_collect(&q, &mem, head, indirect_ok, seg, 64, &c);
}

Test(virtqueue, map_refuses_rings_outside_ram_and_bad_sizes)
{
	struct vq r;

	cr_assert_eq(vq_map(&r, &mem, RAM_BYTES - 4096, 256), -EFAULT);
	cr_assert_eq(vq_map(&r, &mem, UINT64_MAX - 100, 16), -EFAULT);
	cr_assert_eq(vq_map(&r, &mem, RING, 0), -EINVAL);
	cr_assert_eq(vq_map(&r, &mem, RING, 24), -EINVAL);
	cr_assert_eq(vq_map(&r, &mem, RING, 65536), -EINVAL);
}

Test(virtqueue, chain_is_collected_readable_first_and_empty_pieces_skipped)
{
	desc(q.desc, 3, 0x20000, 10, VRING_DESC_F_NEXT, 5);
	desc(q.desc, 5, 0x21000, 0, VRING_DESC_F_NEXT, 7);
	desc(q.desc, 7, 0x22000, 100, VRING_DESC_F_WRITE, 0);
	cr_assert_eq(collect(3, false), 0);
	cr_assert_eq(c.nseg, 2);
	cr_assert_eq(c.rd_bytes, 10);
	cr_assert_eq(c.wr_bytes, 100);
	cr_assert(!seg[0].write && seg[1].write);
}

Test(virtqueue, loops_bad_links_and_order_are_refused)
{
	desc(q.desc, 0, 0x20000, 8, VRING_DESC_F_NEXT, 1);
	desc(q.desc, 1, 0x20000, 8, VRING_DESC_F_NEXT, 0);
	cr_assert_eq(collect(0, false), -EINVAL, "a loop");
	desc(q.desc, 1, 0x20000, 8, VRING_DESC_F_NEXT, QN);
	cr_assert_eq(collect(0, false), -EINVAL, "next past the table");
	cr_assert_eq(collect(QN, false), -EINVAL, "head past the table");
	desc(q.desc, 0, 0x20000, 8, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	desc(q.desc, 1, 0x20000, 8, 0, 0);
	cr_assert_eq(collect(0, false), -EINVAL, "readable after writable");
	cr_assert_eq(vq_chain_collect(&q, &mem, 0, false, seg, QN - 1, &c), -EINVAL,
		     "room for fewer segments than the queue holds");
}

Test(virtqueue, indirect_tables_only_when_allowed_and_whole)
{
	desc(ram + INDIRECT, 0, 0x20000, 8, VRING_DESC_F_NEXT, 1);
	desc(ram + INDIRECT, 1, 0x21000, 64, VRING_DESC_F_WRITE, 0);
	desc(q.desc, 0, INDIRECT, 2 * VRING_DESC_BYTES, VRING_DESC_F_INDIRECT, 0);
	cr_assert_eq(collect(0, false), -EINVAL, "not negotiated");
	cr_assert_eq(collect(0, true), 0);
	cr_assert_eq(c.nseg, 2);
	cr_assert_eq(c.wr_bytes, 64);
	desc(q.desc, 0, INDIRECT, 2 * VRING_DESC_BYTES + 1, VRING_DESC_F_INDIRECT, 0);
	cr_assert_eq(collect(0, true), -EINVAL, "length not a whole number of descriptors");
	desc(q.desc, 0, RAM_BYTES - 16, 32, VRING_DESC_F_INDIRECT, 0);
	cr_assert_eq(collect(0, true), -EINVAL, "table past the end of RAM");
	desc(q.desc, 0, INDIRECT, 65 * VRING_DESC_BYTES, VRING_DESC_F_INDIRECT, 0);
	cr_assert_eq(collect(0, true), -EINVAL, "table larger than the room for segments");
	desc(ram + INDIRECT, 1, INDIRECT, 32, VRING_DESC_F_INDIRECT, 0);
	desc(q.desc, 0, INDIRECT, 2 * VRING_DESC_BYTES, VRING_DESC_F_INDIRECT, 0);
	cr_assert_eq(collect(0, true), -EINVAL, "nested indirect table");
}

Test(virtqueue, iov_and_writes_stay_inside_ram_and_mark_pages)
{
	struct iovec iov[4];
	uint8_t data[300];
	int n;

	desc(q.desc, 0, 0x20ff0, 32, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	desc(q.desc, 1, 0x30000, 400, VRING_DESC_F_WRITE, 0);
	cr_assert_eq(collect(0, false), 0);
	n = vq_iov_build(&mem, seg, c.nseg, true, 20, 100, iov, NULL, 4);
	cr_assert_eq(n, 2);
	cr_assert_eq(iov[0].iov_base, ram + 0x20ff0 + 20);
	cr_assert_eq(iov[0].iov_len, 12);
	cr_assert_eq(iov[1].iov_len, 88);
	for (unsigned i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)i;
	cr_assert_eq(vq_chain_write(&mem, seg, c.nseg, data, sizeof(data)), (int64_t)sizeof(data));
	cr_assert_arr_eq(ram + 0x20ff0, data, 32);
	cr_assert_arr_eq(ram + 0x30000, data + 32, sizeof(data) - 32);
	cr_assert_eq(dirty[0x20000 / 4096 / 64] >> (0x20000 / 4096 % 64) & 1, 1);
	cr_assert_eq(dirty[0x21000 / 4096 / 64] >> (0x21000 / 4096 % 64) & 1, 1);
	cr_assert_eq(dirty[0x30000 / 4096 / 64] >> (0x30000 / 4096 % 64) & 1, 1);
	desc(q.desc, 1, RAM_BYTES - 100, 400, VRING_DESC_F_WRITE, 0);
	cr_assert_eq(collect(0, false), 0);
	cr_assert_eq(vq_iov_build(&mem, seg, c.nseg, true, 0, 300, iov, NULL, 4), -EFAULT);
	cr_assert_eq(vq_chain_write(&mem, seg, c.nseg, data, sizeof(data)), -EFAULT);
}

Test(virtqueue, used_ring_writes_publish_and_mark_dirty)
{
	uint8_t *used = q.used;

	vq_used_put(&q, &mem, 17, 5, 1234);
	cr_assert_eq(le32_decode(used + VRING_USED_RING_OFF + 8 * (17 % QN)), 5);
	cr_assert_eq(le32_decode(used + VRING_USED_RING_OFF + 8 * (17 % QN) + 4), 1234);
	vq_used_publish(&q, &mem, 18);
	cr_assert_eq(le16_decode(used + VRING_USED_IDX_OFF), 18);
	cr_assert_eq(dirty[(RING + vring_used_off(QN)) / 4096 / 64] >>
		     ((RING + vring_used_off(QN)) / 4096 % 64) & 1, 1);
	vq_used_notify_set(&q, &mem, false);
	cr_assert_eq(le16_decode(used) & VRING_USED_F_NO_NOTIFY, VRING_USED_F_NO_NOTIFY);
	vq_used_notify_set(&q, &mem, true);
	cr_assert_eq(le16_decode(used) & VRING_USED_F_NO_NOTIFY, 0);
}
