/* PCI configuration space layout and configuration mechanism #1, shared by pci.c and tests. */
#ifndef VMM_VIRTIO_PCI_PRIV_H
#define VMM_VIRTIO_PCI_PRIV_H

#include <stdint.h>

/*
 * Configuration mechanism #1: a dword write to 0xcf8 latches an address, then
 * 0xcfc..0xcff read or write the selected dword (byte, word and dword accesses; a
 * sub-dword access at 0xcfc + n reaches byte n of the dword).
 *
 *   0xcf8:  31      30..24    23..16   15..11   10..8    7..2      1..0
 *          enable  reserved   bus      device   function register  00
 *
 * Type 0 configuration header (little-endian, 64 bytes; the rest of the 256 is zero):
 *
 *   0x00  vendor id (16)        0x02  device id (16)
 *   0x04  command (16)          0x06  status (16)
 *   0x08  revision (8)          0x09  class code: prog-if, subclass, class (24)
 *   0x0c  cache line (8)  0x0d latency (8)  0x0e header type (8)  0x0f BIST (8)
 *   0x10  BAR0 .. 0x24 BAR5 (32 each)
 *   0x28  cardbus CIS (32)
 *   0x2c  subsystem vendor id (16)   0x2e  subsystem id (16)
 *   0x30  expansion ROM base (32)
 *   0x34  capabilities pointer (8), reserved
 *   0x3c  interrupt line (8)  0x3d interrupt pin (8)  0x3e min grant  0x3f max latency
 *
 * BAR: bit 0 set for I/O space (address in bits 31..2); clear for memory space (bits 2..1
 * type, 00 = 32-bit; bit 3 prefetchable; address in bits 31..4). Sizing writes all ones
 * and reads back ~(size - 1) | flags.
 */
#define PCI_CONFIG_ADDR_PORT   0xcf8
#define PCI_CONFIG_DATA_PORT   0xcfc
#define PCI_CONFIG_PORTS       8
#define PCI_CONFIG_ENABLE      0x80000000u
#define PCI_CONFIG_ADDR_MASK   0x80fffffcu /* what the address latch keeps */

#define PCI_CONFIG_ADDR(bus, dev, fn, reg) \
	(PCI_CONFIG_ENABLE | ((uint32_t)(bus) << 16) | ((uint32_t)(dev) << 11) | \
	 ((uint32_t)(fn) << 8) | ((uint32_t)(reg) & 0xfc))

#define PCI_CFG_BYTES          256
#define PCI_NUM_BARS           6

#define PCI_VENDOR_ID          0x00
#define PCI_DEVICE_ID          0x02
#define PCI_COMMAND            0x04
#define PCI_STATUS             0x06
#define PCI_REVISION_ID        0x08
#define PCI_CLASS_PROG         0x09
#define PCI_CACHE_LINE_SIZE    0x0c
#define PCI_LATENCY_TIMER      0x0d
#define PCI_HEADER_TYPE        0x0e
#define PCI_BAR0               0x10
#define PCI_BAR_END            0x28 /* one past BAR5 */
#define PCI_SUBSYSTEM_VENDOR_ID 0x2c
#define PCI_SUBSYSTEM_ID       0x2e
#define PCI_ROM_ADDRESS        0x30
#define PCI_CAPABILITY_LIST    0x34
#define PCI_INTERRUPT_LINE     0x3c
#define PCI_INTERRUPT_PIN      0x3d

#define PCI_COMMAND_IO         0x0001 /* I/O BARs decode */
#define PCI_COMMAND_MEMORY     0x0002 /* memory BARs decode */
#define PCI_COMMAND_MASTER     0x0004
#define PCI_COMMAND_PARITY     0x0040
#define PCI_COMMAND_SERR       0x0100
/* Guest-writable command bits; INTx disable (bit 10) is not, so it reads as unsupported. */
#define PCI_COMMAND_WRITABLE   (PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | \
				PCI_COMMAND_PARITY | PCI_COMMAND_SERR)

#define PCI_BAR_SPACE_IO       0x1u
#define PCI_BAR_IO_MASK        0xfffffffcu
#define PCI_BAR_MEM_MASK       0xfffffff0u
#define PCI_IO_SPACE_END       0x10000u /* x86 port space */

#define PCI_INTERRUPT_PIN_INTA 1

#define PCI_HOST_BRIDGE_VENDOR 0x8086
#define PCI_HOST_BRIDGE_DEVICE 0x0d57
#define PCI_CLASS_HOST_BRIDGE  0x060000u

#endif
