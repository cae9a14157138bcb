/* PCI bus 0: a host bridge, configuration mechanism #1, and BARs that follow the guest. */
#include "vmm/devices.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/x86/layout.h"
#include "vmm/virtio/pci_priv.h"
#include "vmm/state/state_codec.h"
#include "util/byteorder.h"

#define PCI_MMIO_BAR_ALIGN 4096u /* keep memory BARs on their own pages */

struct pci_bar {
	struct pci_bar_desc desc; /* desc.size == 0: BAR unused, reads 0 */
	bool mapped;              /* registered on the bus at mapped_base */
	uint64_t mapped_base;
};

/* One function-0 device. cfg holds the whole header, BARs included, as the guest reads it. */
struct pci_dev {
	bool present;
	uint8_t cfg[PCI_CFG_BYTES];
	uint8_t wmask[PCI_CFG_BYTES]; /* guest-writable bits outside the BARs */
	struct pci_bar bar[PCI_NUM_BARS];
};

/*
 * lock serialises configuration cycles (the 0xcf8 latch is one register shared by all
 * vCPUs, as in hardware) against pci_add_device and pci_remove_device. It is held while
 * BARs are (un)registered, so the lock order is pci_bus.lock, then bus.lock; the bus
 * never holds its own lock while it calls a handler.
 */
struct pci_bus {
	struct bus *pio, *mmio;
	pthread_mutex_t lock;
	uint32_t config_addr;
	uint32_t next_io;   /* allocation cursor for I/O BARs */
	uint64_t next_mmio; /* allocation cursor for memory BARs */
	struct pci_dev dev[PCI_MAX_SLOTS];
};

unsigned pci_slot_gsi(unsigned slot)
{
	return LAYOUT_PCI_IRQ_BASE + slot - 1;
}

static struct bus *pci_bar_bus(struct pci_bus *b, const struct pci_bar *bar)
{
	return bar->desc.io ? b->pio : b->mmio;
}

/*
 * Where BAR i decodes now, if anywhere: its space must be enabled in the command register
 * (Linux clears the enables while it sizes BARs), and an address of 0, one past the port
 * space, or touching the top of 4 GiB (the all-ones sizing pattern) decodes nothing.
 */
static bool pci_bar_live(const struct pci_dev *d, unsigned i, uint64_t *base)
{
	const struct pci_bar *bar = &d->bar[i];
	uint32_t reg = le32_decode(&d->cfg[PCI_BAR0 + 4 * i]);
	uint16_t cmd = (uint16_t)(d->cfg[PCI_COMMAND] | d->cfg[PCI_COMMAND + 1] << 8);
	uint64_t start, size = bar->desc.size;

	if (!d->present || size == 0)
		return false;
	if (bar->desc.io) {
		start = reg & PCI_BAR_IO_MASK;
		if (!(cmd & PCI_COMMAND_IO) || start == 0 || start + size > PCI_IO_SPACE_END)
			return false;
	} else {
		start = reg & PCI_BAR_MEM_MASK;
		if (!(cmd & PCI_COMMAND_MEMORY) || start == 0 || start + size > 0xffffffffULL)
			return false;
	}
	*base = start;
	return true;
}

/*
 * Make the bus match every BAR register: first drop registrations that moved or lost
 * their decode enable, then register whatever should decode and does not. A BAR the
 * guest put over another range simply stays off the bus (as conflicting hardware would
 * lose the decode) and is retried on every later change. Called with b->lock held.
 */
static void pci_bus_remap(struct pci_bus *b)
{
	uint64_t base;

	for (unsigned s = 0; s < PCI_MAX_SLOTS; s++) {
		for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
			struct pci_bar *bar = &b->dev[s].bar[i];
			bool live = pci_bar_live(&b->dev[s], i, &base);

			if (bar->mapped && (!live || base != bar->mapped_base)) {
				bus_unregister(pci_bar_bus(b, bar), bar->mapped_base,
					       bar->desc.opaque);
				bar->mapped = false;
				if (bar->desc.moved)
					bar->desc.moved(bar->desc.opaque, false, bar->mapped_base);
			}
		}
	}
	for (unsigned s = 0; s < PCI_MAX_SLOTS; s++) {
		for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
			struct pci_bar *bar = &b->dev[s].bar[i];

			if (bar->mapped || !pci_bar_live(&b->dev[s], i, &base))
				continue;
			if (bus_register(pci_bar_bus(b, bar), base, bar->desc.size, bar->desc.ops,
					 bar->desc.opaque) == 0) {
				bar->mapped = true;
				bar->mapped_base = base;
				if (bar->desc.moved)
					bar->desc.moved(bar->desc.opaque, true, base);
			}
		}
	}
}

/* The device a configuration cycle addresses, or NULL: nothing answers, reads are ones. */
static struct pci_dev *pci_config_target(struct pci_bus *b, unsigned *reg)
{
	uint32_t a = b->config_addr;
	unsigned busno = (a >> 16) & 0xff, dev = (a >> 11) & 0x1f, fn = (a >> 8) & 0x7;

	if (!(a & PCI_CONFIG_ENABLE) || busno != 0 || fn != 0 || !b->dev[dev].present)
		return NULL;
	*reg = a & 0xfc;
	return &b->dev[dev];
}

/* Apply one byte the guest wrote at config offset off. Returns true if a BAR or the
 * command register changed, so the caller remaps. */
static bool pci_config_write_byte(struct pci_dev *d, unsigned off, uint8_t v)
{
	if (off >= PCI_BAR0 && off < PCI_BAR_END) {
		unsigned i = (off - PCI_BAR0) / 4, at = PCI_BAR0 + 4 * i;
		const struct pci_bar *bar = &d->bar[i];
		uint32_t reg, mask;

		if (bar->desc.size == 0)
			return false;
		d->cfg[off] = v;
		mask = ~(bar->desc.size - 1) & (bar->desc.io ? PCI_BAR_IO_MASK : PCI_BAR_MEM_MASK);
		reg = (le32_decode(&d->cfg[at]) & mask) | (bar->desc.io ? PCI_BAR_SPACE_IO : 0);
		le32_encode(&d->cfg[at], reg);
		return true;
	}
	v = (uint8_t)((d->cfg[off] & ~d->wmask[off]) | (v & d->wmask[off]));
	if (v == d->cfg[off])
		return false;
	d->cfg[off] = v;
	return off == PCI_COMMAND || off == PCI_COMMAND + 1;
}

/*
 * 0xcf8..0xcff. Only a dword at 0xcf8 reaches the address latch (Linux's type 1 probe
 * writes a byte to 0xcfb and expects the latch untouched); the data port maps byte n of
 * an access at 0xcfc + k to config byte (latch & 0xfc) + k + n, within the dword.
 */
static void pci_config_read(void *opaque, uint64_t off, void *data, unsigned size)
{
	struct pci_bus *b = opaque;
	uint8_t *out = data;
	struct pci_dev *d;
	unsigned reg = 0;

	memset(data, 0xff, size);
	pthread_mutex_lock(&b->lock);
	if (off == 0 && size == 4) {
		le32_encode(out, b->config_addr);
	} else if (off >= 4 && (d = pci_config_target(b, &reg)) != NULL) {
		for (unsigned n = 0; n < size && off - 4 + n < 4; n++)
			out[n] = d->cfg[reg + off - 4 + n];
	}
	pthread_mutex_unlock(&b->lock);
}

static void pci_config_write(void *opaque, uint64_t off, const void *data, unsigned size)
{
	struct pci_bus *b = opaque;
	const uint8_t *in = data;
	struct pci_dev *d;
	unsigned reg = 0;
	bool remap = false;

	pthread_mutex_lock(&b->lock);
	if (off == 0 && size == 4) {
		b->config_addr = le32_decode(in) & PCI_CONFIG_ADDR_MASK;
	} else if (off >= 4 && (d = pci_config_target(b, &reg)) != NULL) {
		for (unsigned n = 0; n < size && off - 4 + n < 4; n++)
			remap |= pci_config_write_byte(d, (unsigned)(reg + off - 4 + n), in[n]);
		if (remap)
			pci_bus_remap(b);
	}
	pthread_mutex_unlock(&b->lock);
}

static const struct bus_dev_ops pci_config_ops = {
	.read = pci_config_read,
	.write = pci_config_write,
};

/* Fill a type 0 header for desc in slot, with BAR addresses from base[]. */
static void pci_dev_init(struct pci_dev *d, const struct pci_dev_desc *desc, unsigned slot,
			 const uint32_t base[PCI_NUM_BARS])
{
	uint8_t *c = d->cfg;

	memset(d, 0, sizeof(*d));
	le16_encode(&c[PCI_VENDOR_ID], desc->vendor_id);
	le16_encode(&c[PCI_DEVICE_ID], desc->device_id);
	/* Decoding on, as firmware leaves an assigned device; the guest may turn it off. */
	le16_encode(&c[PCI_COMMAND], PCI_COMMAND_IO | PCI_COMMAND_MEMORY);
	c[PCI_REVISION_ID] = desc->revision;
	c[PCI_CLASS_PROG] = (uint8_t)desc->class_code;
	c[PCI_CLASS_PROG + 1] = (uint8_t)(desc->class_code >> 8);
	c[PCI_CLASS_PROG + 2] = (uint8_t)(desc->class_code >> 16);
	le16_encode(&c[PCI_SUBSYSTEM_VENDOR_ID], desc->subsys_vendor_id);
	le16_encode(&c[PCI_SUBSYSTEM_ID], desc->subsys_id);
	if (slot > 0) {
		c[PCI_INTERRUPT_LINE] = (uint8_t)pci_slot_gsi(slot);
		c[PCI_INTERRUPT_PIN] = PCI_INTERRUPT_PIN_INTA;
	}
	le16_encode(&d->wmask[PCI_COMMAND], PCI_COMMAND_WRITABLE);
	d->wmask[PCI_CACHE_LINE_SIZE] = 0xff;
	d->wmask[PCI_LATENCY_TIMER] = 0xff;
	d->wmask[PCI_INTERRUPT_LINE] = 0xff;
	for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
		d->bar[i].desc = desc->bar[i];
		if (desc->bar[i].size)
			le32_encode(&c[PCI_BAR0 + 4 * i],
				  base[i] | (desc->bar[i].io ? PCI_BAR_SPACE_IO : 0));
	}
	d->present = true;
}

static bool pci_bar_desc_valid(const struct pci_bar_desc *bd)
{
	uint32_t min = bd->io ? 4 : 16;

	if (bd->size == 0)
		return true;
	if ((bd->size & (bd->size - 1)) || bd->size < min || !bd->ops || !bd->ops->read ||
	    !bd->ops->write)
		return false;
	return bd->io ? bd->size <= PCI_IO_SPACE_END / 4 : bd->size <= LAYOUT_PCI_MMIO_BYTES;
}

/* Choose addresses for desc's BARs from the cursors; commit the cursors only on success. */
static int pci_bars_assign(struct pci_bus *b, const struct pci_dev_desc *desc,
			   uint32_t base[PCI_NUM_BARS])
{
	uint64_t io = b->next_io, mmio = b->next_mmio;

	for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
		const struct pci_bar_desc *bd = &desc->bar[i];
		uint64_t align;

		base[i] = 0;
		if (!pci_bar_desc_valid(bd))
			return -EINVAL;
		if (bd->size == 0)
			continue;
		if (bd->io) {
			io = (io + bd->size - 1) & ~(uint64_t)(bd->size - 1);
			if (io + bd->size > PCI_IO_SPACE_END)
				return -ENOSPC;
			base[i] = (uint32_t)io;
			io += bd->size;
		} else {
			align = bd->size > PCI_MMIO_BAR_ALIGN ? bd->size : PCI_MMIO_BAR_ALIGN;
			mmio = (mmio + align - 1) & ~(align - 1);
			if (mmio + bd->size > LAYOUT_PCI_MMIO_GPA + LAYOUT_PCI_MMIO_BYTES)
				return -ENOSPC;
			base[i] = (uint32_t)mmio;
			mmio += align;
		}
	}
	b->next_io = (uint32_t)io;
	b->next_mmio = mmio;
	return 0;
}

int pci_add_device(struct pci_bus *b, const struct pci_dev_desc *desc, unsigned *slot_out)
{
	uint32_t base[PCI_NUM_BARS];
	unsigned slot;
	int rc;

	pthread_mutex_lock(&b->lock);
	for (slot = 1; slot < PCI_MAX_SLOTS && pci_slot_gsi(slot) < LAYOUT_IOAPIC_PINS; slot++) {
		if (!b->dev[slot].present)
			break;
	}
	rc = -ENOSPC;
	if (slot == PCI_MAX_SLOTS || pci_slot_gsi(slot) >= LAYOUT_IOAPIC_PINS)
		goto out;
	rc = pci_bars_assign(b, desc, base);
	if (rc < 0)
		goto out;
	pci_dev_init(&b->dev[slot], desc, slot, base);
	pci_bus_remap(b);
	for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
		if (desc->bar[i].size && !b->dev[slot].bar[i].mapped) {
			/* Something else already claims the range we chose. */
			b->dev[slot].present = false;
			pci_bus_remap(b);
			rc = -EEXIST;
			goto out;
		}
	}
	*slot_out = slot;
	rc = 0;
out:
	pthread_mutex_unlock(&b->lock);
	return rc;
}

int pci_remove_device(struct pci_bus *b, unsigned slot)
{
	int rc = -ENOENT;

	pthread_mutex_lock(&b->lock);
	if (slot > 0 && slot < PCI_MAX_SLOTS && b->dev[slot].present) {
		b->dev[slot].present = false;
		pci_bus_remap(b);
		memset(&b->dev[slot], 0, sizeof(b->dev[slot]));
		rc = 0;
	}
	pthread_mutex_unlock(&b->lock);
	return rc;
}

int pci_bus_create(struct pci_bus **out, struct bus *pio, struct bus *mmio)
{
	static const struct pci_dev_desc host_bridge = {
		.vendor_id = PCI_HOST_BRIDGE_VENDOR,
		.device_id = PCI_HOST_BRIDGE_DEVICE,
		.class_code = PCI_CLASS_HOST_BRIDGE,
	};
	static const uint32_t no_bars[PCI_NUM_BARS];
	struct pci_bus *b;
	int rc;

	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->pio = pio;
	b->mmio = mmio;
	b->next_io = LAYOUT_PCI_IO_BASE;
	b->next_mmio = LAYOUT_PCI_MMIO_GPA;
	pci_dev_init(&b->dev[0], &host_bridge, 0, no_bars);
	rc = -pthread_mutex_init(&b->lock, NULL);
	if (rc < 0)
		goto err_free;
	rc = bus_register(pio, PCI_CONFIG_ADDR_PORT, PCI_CONFIG_PORTS, &pci_config_ops, b);
	if (rc < 0)
		goto err_mutex;
	*out = b;
	return 0;
err_mutex:
	pthread_mutex_destroy(&b->lock);
err_free:
	free(b);
	return rc;
}

void pci_bus_destroy(struct pci_bus *b)
{
	if (!b)
		return;
	bus_unregister(b->pio, PCI_CONFIG_ADDR_PORT, b);
	pthread_mutex_lock(&b->lock);
	for (unsigned s = 0; s < PCI_MAX_SLOTS; s++)
		b->dev[s].present = false;
	pci_bus_remap(b);
	pthread_mutex_unlock(&b->lock);
	pthread_mutex_destroy(&b->lock);
	free(b);
}

/*
 * PCI record: config address latch u32, next I/O BAR u32, next MMIO BAR u64, device
 * count u32, then per present device (host bridge included) slot u8 and its 256-byte
 * config space.
 */
void pci_state_save(struct pci_bus *b, struct vs_enc *e)
{
	uint32_t n = 0;

	pthread_mutex_lock(&b->lock);
	for (unsigned s = 0; s < PCI_MAX_SLOTS; s++)
		n += b->dev[s].present;
	vs_enc_u32(e, b->config_addr);
	vs_enc_u32(e, b->next_io);
	vs_enc_u64(e, b->next_mmio);
	vs_enc_u32(e, n);
	for (unsigned s = 0; s < PCI_MAX_SLOTS; s++) {
		if (!b->dev[s].present)
			continue;
		vs_enc_u8(e, (uint8_t)s);
		vs_enc_bytes(e, b->dev[s].cfg, PCI_CFG_BYTES);
	}
	pthread_mutex_unlock(&b->lock);
}

/*
 * Merge a saved config space into d's: BARs as a guest write would leave them, writable
 * bits from saved, and every read-only byte must already match (the same device).
 * Returns 0 or -EINVAL.
 */
static int pci_cfg_merge(const struct pci_dev *d, const uint8_t *saved, uint8_t *out)
{
	for (unsigned off = 0; off < PCI_CFG_BYTES; off++) {
		if (off >= PCI_BAR0 && off < PCI_BAR_END) {
			const struct pci_bar *bar = &d->bar[(off - PCI_BAR0) / 4];

			out[off] = bar->desc.size ? saved[off] : d->cfg[off];
			continue;
		}
		if ((saved[off] & ~d->wmask[off]) != (d->cfg[off] & ~d->wmask[off]))
			return -EINVAL;
		out[off] = saved[off];
	}
	for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
		const struct pci_bar *bar = &d->bar[i];
		uint8_t *at = &out[PCI_BAR0 + 4 * i];
		uint32_t mask;

		if (!bar->desc.size)
			continue;
		mask = ~(bar->desc.size - 1) & (bar->desc.io ? PCI_BAR_IO_MASK : PCI_BAR_MEM_MASK);
		le32_encode(at, (le32_decode(at) & mask) | (bar->desc.io ? PCI_BAR_SPACE_IO : 0));
	}
	return 0;
}

int pci_state_load(struct pci_bus *b, const uint8_t *payload, size_t len)
{
	uint8_t (*merged)[PCI_CFG_BYTES];
	bool seen[PCI_MAX_SLOTS] = { false };
	uint32_t config_addr, next_io, n;
	uint64_t next_mmio;
	struct dec d;
	int rc = 0;

	d = dec_init(payload, len);
	dec_u32(&d, &config_addr);
	dec_u32(&d, &next_io);
	dec_u64(&d, &next_mmio);
	dec_u32(&d, &n);
	if (d.err || n > PCI_MAX_SLOTS || dec_left(&d) != (size_t)n * (1 + PCI_CFG_BYTES))
		return -EBADMSG;
	if (next_io < LAYOUT_PCI_IO_BASE || next_io > PCI_IO_SPACE_END ||
	    next_mmio < LAYOUT_PCI_MMIO_GPA || next_mmio > LAYOUT_PCI_MMIO_GPA + LAYOUT_PCI_MMIO_BYTES)
		return -EINVAL;
	merged = calloc(PCI_MAX_SLOTS, PCI_CFG_BYTES);
	if (!merged)
		return -ENOMEM;
	pthread_mutex_lock(&b->lock);
	for (uint32_t k = 0; k < n && rc == 0; k++) {
		uint8_t slot;
		const uint8_t *cfg = dec_u8(&d, &slot) ? dec_take(&d, PCI_CFG_BYTES) : NULL;

		if (!cfg || slot >= PCI_MAX_SLOTS || seen[slot] || !b->dev[slot].present)
			rc = -EINVAL;
		else
			rc = pci_cfg_merge(&b->dev[slot], cfg, merged[slot]);
		if (rc == 0)
			seen[slot] = true;
	}
	for (unsigned s = 0; s < PCI_MAX_SLOTS && rc == 0; s++) {
		if (b->dev[s].present && !seen[s])
			rc = -EINVAL; /* a device of ours the saved machine did not have */
	}
	if (rc == 0) {
		for (unsigned s = 0; s < PCI_MAX_SLOTS; s++) {
			if (seen[s])
				memcpy(b->dev[s].cfg, merged[s], PCI_CFG_BYTES);
		}
		b->config_addr = config_addr & PCI_CONFIG_ADDR_MASK;
		b->next_io = next_io;
		b->next_mmio = next_mmio;
		pci_bus_remap(b);
	}
	pthread_mutex_unlock(&b->lock);
	free(merged);
	return rc;
}
