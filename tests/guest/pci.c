/* PCI bus 0 through configuration mechanism #1, for the test guest's drivers. */
#include "pci.h"

#include "hw.h"

#define PCI_CONFIG_ADDR 0xcf8
#define PCI_CONFIG_DATA 0xcfc

uint32_t pci_config_read(uint32_t dev, uint32_t fn, uint32_t off)
{
	outl(PCI_CONFIG_ADDR, 0x80000000u | dev << 11 | fn << 8 | (off & 0xfc));
	return inl(PCI_CONFIG_DATA);
}

void pci_config_write(uint32_t dev, uint32_t fn, uint32_t off, uint32_t v)
{
	outl(PCI_CONFIG_ADDR, 0x80000000u | dev << 11 | fn << 8 | (off & 0xfc));
	outl(PCI_CONFIG_DATA, v);
}

/* Gives an unassigned I/O BAR0 the base io. Returns the BAR's new value. */
static uint32_t pci_bar0_assign(uint32_t dev, uint32_t fn, uint16_t io)
{
	uint32_t size;

	pci_config_write(dev, fn, 0x10, 0xffffffff);
	size = ~(pci_config_read(dev, fn, 0x10) & 0xfffc) & 0xffff;
	if (size >= 0x100)
		return 0;
	pci_config_write(dev, fn, 0x10, io);
	return pci_config_read(dev, fn, 0x10);
}

uint16_t pci_find_io(uint16_t vendor, uint16_t device, unsigned nth, uint16_t fallback)
{
	unsigned seen = 0;

	for (uint32_t dev = 0; dev < 32; dev++) {
		uint32_t fns = 1;

		for (uint32_t fn = 0; fn < fns; fn++) {
			uint32_t id = pci_config_read(dev, fn, 0), bar0, cmd;

			if ((id & 0xffff) == 0xffff)
				continue;
			if (fn == 0 && (pci_config_read(dev, 0, 0x0c) & 0x800000))
				fns = 8;
			if ((id & 0xffff) != vendor || id >> 16 != device)
				continue;
			bar0 = pci_config_read(dev, fn, 0x10);
			if (!(bar0 & 1))
				continue;       /* a legacy virtio device's BAR0 is I/O */
			if (seen++ != nth)
				continue;
			if ((bar0 & 0xfffc) == 0)
				bar0 = pci_bar0_assign(dev, fn, (uint16_t)(fallback + nth * 0x100));
			if ((bar0 & 0xfffc) == 0)
				return 0;
			/* Enable I/O decoding and bus mastering (command register bits 0 and 2). */
			cmd = pci_config_read(dev, fn, 0x04);
			pci_config_write(dev, fn, 0x04, (cmd & 0xffff) | 0x5);
			return (uint16_t)(bar0 & 0xfffc);
		}
	}
	return 0;
}
