/* A guest driver made of fuzz input, for the virtqueue walker of any legacy virtio-pci device. */
#include "tests/fuzz/fuzz_virtq.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/fuzz.h"
#include "vmm/virtio/pci_priv.h"
#include "vmm/virtio/virtio_priv.h"

static void no_irq(void *opaque, unsigned gsi, int level)
{
	(void)opaque, (void)gsi, (void)level;
}

static uint32_t cfg_read(struct bus *pio, unsigned slot, unsigned reg)
{
	uint32_t addr = PCI_CONFIG_ADDR(0, slot, 0, reg), v = 0;

	bus_access(pio, PCI_CONFIG_ADDR_PORT, true, &addr, 4);
	bus_access(pio, PCI_CONFIG_DATA_PORT, false, &v, 4);
	return v;
}

static void cfg_write(struct bus *pio, unsigned slot, unsigned reg, uint32_t v)
{
	uint32_t addr = PCI_CONFIG_ADDR(0, slot, 0, reg);

	bus_access(pio, PCI_CONFIG_ADDR_PORT, true, &addr, 4);
	bus_access(pio, PCI_CONFIG_DATA_PORT, true, &v, 4);
}

/* The slot of the device under test: the first one after the host bridge. */
static unsigned device_slot(struct bus *pio)
{
	for (unsigned slot = 1; slot < PCI_MAX_SLOTS; slot++)
		if ((cfg_read(pio, slot, PCI_VENDOR_ID) & 0xffff) != 0xffff)
			return slot;
	abort();
}

static void reg_out(struct bus *pio, uint16_t base, unsigned off, unsigned size, uint32_t v)
{
	bus_access(pio, base + off, true, &v, size);
}

int fuzz_virtq_run(const struct fuzz_virtq_dev *d, const uint8_t *data, size_t size)
{
	static const struct irq_chip irq = { .set_level = no_irq };
	struct fuzz_in in = { data, size };
	struct bus pio, mmio;
	struct guest_mem mem;
	struct pci_bus *pci;
	uint64_t used_gpa = UINT64_MAX; /* the used ring of the last INIT's queue */
	uint8_t *ram;
	void *dev;
	unsigned slot;

	ram = fuzz_alloc(FUZZ_VIRTQ_RAM_BYTES);
	memset(ram, 0, FUZZ_VIRTQ_RAM_BYTES);
	guest_mem_layout(&mem, ram, FUZZ_VIRTQ_RAM_BYTES);
	if (bus_init(&pio) < 0 || bus_init(&mmio) < 0 || pci_bus_create(&pci, &pio, &mmio) < 0 ||
	    d->create(&dev, pci, &mem, &irq) < 0)
		abort();
	slot = device_slot(&pio);

	for (unsigned n = 0; n < FUZZ_VIRTQ_MAX_OPS && in.len; n++) {
		/* BAR0 as the guest sees it now: a CONFIG op may have moved or disabled it. */
		uint16_t base = (uint16_t)(cfg_read(&pio, slot, PCI_BAR0) & PCI_BAR_IO_MASK);
		uint8_t op = fuzz_u8(&in) % FUZZ_VIRTQ_NOPS, off, sz;
		const uint8_t *p;
		size_t got;
		uint32_t v;

		switch (op) {
		case FUZZ_VIRTQ_POKE: {
			uint32_t gpa = fuzz_u32(&in) % FUZZ_VIRTQ_RAM_BYTES;

			p = fuzz_take(&in, fuzz_u8(&in), &got);
			if (got > FUZZ_VIRTQ_RAM_BYTES - gpa)
				got = FUZZ_VIRTQ_RAM_BYTES - gpa;
			memcpy(ram + gpa, p, got);
			break;
		}
		case FUZZ_VIRTQ_OUT:
			off = fuzz_u8(&in);
			sz = (uint8_t)(1u << (fuzz_u8(&in) % 3));
			reg_out(&pio, base, off, sz, fuzz_u32(&in));
			break;
		case FUZZ_VIRTQ_IN:
			off = fuzz_u8(&in);
			sz = (uint8_t)(1u << (fuzz_u8(&in) % 3));
			v = 0;
			bus_access(&pio, base + off, false, &v, sz);
			break;
		case FUZZ_VIRTQ_NOTIFY:
			reg_out(&pio, base, VIRTIO_PCI_QUEUE_NOTIFY, 2, fuzz_u16(&in));
			break;
		case FUZZ_VIRTQ_INIT: {
			uint32_t features = fuzz_u32(&in), host = 0;
			uint16_t queue = fuzz_u16(&in);
			uint32_t pfn = fuzz_u32(&in);

			reg_out(&pio, base, VIRTIO_PCI_STATUS, 1, 0);
			reg_out(&pio, base, VIRTIO_PCI_STATUS, 1, VIRTIO_STATUS_ACKNOWLEDGE);
			reg_out(&pio, base, VIRTIO_PCI_STATUS, 1,
				VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
			bus_access(&pio, base + VIRTIO_PCI_HOST_FEATURES, false, &host, 4);
			reg_out(&pio, base, VIRTIO_PCI_GUEST_FEATURES, 4, host & features);
			reg_out(&pio, base, VIRTIO_PCI_QUEUE_SEL, 2, queue);
			reg_out(&pio, base, VIRTIO_PCI_QUEUE_PFN, 4, pfn);
			v = 0;
			bus_access(&pio, base + VIRTIO_PCI_QUEUE_NUM, false, &v, 2);
			used_gpa = ((uint64_t)pfn << VIRTIO_PCI_QUEUE_ADDR_SHIFT) + vring_used_off(v);
			reg_out(&pio, base, VIRTIO_PCI_STATUS, 1, VIRTIO_STATUS_ACKNOWLEDGE |
				VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_DRIVER_OK);
			break;
		}
		case FUZZ_VIRTQ_CONFIG:
			off = fuzz_u8(&in);
			cfg_write(&pio, slot, off & 0xfc, fuzz_u32(&in));
			break;
		case FUZZ_VIRTQ_EVENT:
			p = fuzz_take(&in, fuzz_u8(&in), &got);
			if (d->event)
				d->event(dev, p, got);
			break;
		}
	}
	/* Accepted: the device served at least one request on the queue the driver set up. */
	if (used_gpa < FUZZ_VIRTQ_RAM_BYTES - 4 && le16_decode(ram + used_gpa + VRING_USED_IDX_OFF))
		fuzz_accepted++;
	d->destroy(dev);
	pci_bus_destroy(pci);
	bus_destroy(&mmio);
	bus_destroy(&pio);
	free(mem.region[0].vmm_dirty);
	free(ram);
	return 0;
}

/* ---- Writing seeds ----------------------------------------------------------------------- */

void fuzz_virtq_seed_raw(struct fuzz_virtq_seed *s, const void *bytes, size_t len)
{
	if (s->len + len > s->cap) {
		s->cap = (s->len + len) * 2 + 64;
		s->buf = realloc(s->buf, s->cap);
		if (!s->buf)
			abort();
	}
	memcpy(s->buf + s->len, bytes, len);
	s->len += len;
}

static void seed_u8(struct fuzz_virtq_seed *s, uint8_t v)
{
	fuzz_virtq_seed_raw(s, &v, 1);
}

static void seed_u16(struct fuzz_virtq_seed *s, uint16_t v)
{
	uint8_t b[2];

	le16_encode(b, v);
	fuzz_virtq_seed_raw(s, b, 2);
}

static void seed_u32(struct fuzz_virtq_seed *s, uint32_t v)
{
	uint8_t b[4];

	le32_encode(b, v);
	fuzz_virtq_seed_raw(s, b, 4);
}

void fuzz_virtq_seed_init(struct fuzz_virtq_seed *s, uint32_t features, uint16_t queue,
			  uint32_t ring_gpa, unsigned queue_num)
{
	memset(s, 0, sizeof(*s));
	s->ring_gpa = ring_gpa;
	s->queue_num = queue_num;
	seed_u8(s, FUZZ_VIRTQ_INIT);
	seed_u32(s, features);
	seed_u16(s, queue);
	seed_u32(s, ring_gpa >> VIRTIO_PCI_QUEUE_ADDR_SHIFT);
}

void fuzz_virtq_seed_poke(struct fuzz_virtq_seed *s, uint32_t gpa, const void *data, size_t len)
{
	const uint8_t *p = data;

	while (len) {
		size_t n = len < 255 ? len : 255;

		seed_u8(s, FUZZ_VIRTQ_POKE);
		seed_u32(s, gpa);
		seed_u8(s, (uint8_t)n);
		fuzz_virtq_seed_raw(s, p, n);
		gpa += (uint32_t)n;
		p += n;
		len -= n;
	}
}

void fuzz_virtq_seed_desc(struct fuzz_virtq_seed *s, uint32_t table_gpa, unsigned i,
			  uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	uint8_t d[VRING_DESC_BYTES];

	le64_encode(d, addr);
	le32_encode(d + 8, len);
	le16_encode(d + 12, flags);
	le16_encode(d + 14, next);
	fuzz_virtq_seed_poke(s, table_gpa + VRING_DESC_BYTES * i, d, sizeof(d));
}

void fuzz_virtq_seed_kick(struct fuzz_virtq_seed *s, uint16_t queue, uint16_t head)
{
	uint32_t avail = s->ring_gpa + (uint32_t)vring_avail_off(s->queue_num);
	uint8_t b[2];

	le16_encode(b, head);
	fuzz_virtq_seed_poke(s, avail + VRING_AVAIL_RING_OFF + 2 * (s->avail_idx % s->queue_num),
			     b, 2);
	s->avail_idx++;
	le16_encode(b, s->avail_idx);
	fuzz_virtq_seed_poke(s, avail + VRING_AVAIL_IDX_OFF, b, 2);
	seed_u8(s, FUZZ_VIRTQ_NOTIFY);
	seed_u16(s, queue);
}

int fuzz_virtq_seed_write(struct fuzz_virtq_seed *s, const char *dir, const char *name)
{
	int rc = fuzz_seed_write(dir, name, s->buf, s->len);

	free(s->buf);
	s->buf = NULL;
	return rc;
}
