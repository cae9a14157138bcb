/* PCI bus 0 through configuration mechanism #1, for the test guest's drivers. */
#ifndef GUEST_PCI_H
#define GUEST_PCI_H

#include <stdint.h>

uint32_t pci_config_read(uint32_t dev, uint32_t fn, uint32_t off);
void pci_config_write(uint32_t dev, uint32_t fn, uint32_t off, uint32_t v);

/*
 * Returns the I/O base of BAR0 of the nth (0-based) function on bus 0 with this vendor
 * and device id whose BAR0 is I/O space, or 0 if there is none. A BAR0 firmware left
 * unassigned gets fallback + nth * 0x100 (godwit and SeaBIOS assign BARs, qboot does
 * not). Enables I/O decoding and bus mastering on the function it returns.
 */
uint16_t pci_find_io(uint16_t vendor, uint16_t device, unsigned nth, uint16_t fallback);

#endif
