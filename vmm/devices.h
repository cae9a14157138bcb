/* The emulated devices: 8250 UART, PCI host bridge with config mechanism #1, virtio-blk, virtio-net. */
#ifndef VMM_DEVICES_H
#define VMM_DEVICES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/bus.h"
#include "vmm/guest_mem.h"
#include "vmm/irq.h"

struct vs_enc; /* vmm/state/state_codec.h */

/*
 * Device state for vm_state_save / vm_state_load (format in vmm/state/state_format.h). Each
 * device appends its record's payload to e with *_state_save, and applies one with
 * *_state_load, which decodes and checks the whole payload before it changes anything
 * (returns -EBADMSG for a malformed payload, -EINVAL for one that does not fit this
 * device) and then re-drives the device's interrupt line. Both run while no vCPU does.
 */

/* ---- 8250/16550A UART ---------------------------------------------------------------- */
struct serial;

/*
 * Create a UART at I/O port base (8 ports) raising gsi through irq. Transmitted bytes go
 * to out_fd (written whole; a failing fd drops output, never stalls the guest: a full one
 * holds a vCPU at most 50 ms once, then bytes are dropped until it drains; a closed pipe
 * gives EPIPE, never SIGPIPE). out_fd < 0 discards output; the caller keeps owning it.
 * *irq is copied. Registers itself on pio. Returns 0 or -errno.
 */
int serial_create(struct serial **out, struct bus *pio, uint16_t base, const struct irq_chip *irq,
		  unsigned gsi, int out_fd);
/* Queue host bytes for the guest to receive (stdin). Excess beyond the FIFO is dropped. */
void serial_input(struct serial *s, const void *buf, size_t len);
/* Unregister from pio and free, once no vCPU runs. NULL is a no-op. */
void serial_destroy(struct serial *s);
/* Registers, receive FIFO and pending THRE interrupt; not the host side (out_fd). */
void serial_state_save(struct serial *s, struct vs_enc *e);
int serial_state_load(struct serial *s, const uint8_t *payload, size_t len);

/* ---- PCI ------------------------------------------------------------------------------ */
struct pci_bus;

#define PCI_MAX_SLOTS 32

struct pci_bar_desc {
	uint32_t size;                 /* power of two; 0 = unused BAR */
	bool io;                       /* I/O space (else 32-bit non-prefetchable MMIO) */
	const struct bus_dev_ops *ops; /* off is relative to the BAR's current base */
	void *opaque;
	/*
	 * Optional: told after the BAR started decoding at base (mapped true) or stopped
	 * (mapped false), so a device can move what it placed outside the bus (KVM
	 * ioeventfds). Called with the PCI bus lock held, by whichever thread changed the
	 * mapping: pci_add_device, a vCPU's configuration write, pci_state_load,
	 * pci_remove_device. It must not call back into the PCI bus.
	 */
	void (*moved)(void *opaque, bool mapped, uint64_t base);
};

struct pci_dev_desc {
	uint16_t vendor_id, device_id;
	uint16_t subsys_vendor_id, subsys_id;
	uint32_t class_code; /* 24 bits: class, subclass, prog-if */
	uint8_t revision;
	struct pci_bar_desc bar[6];
};

/*
 * Create bus 0 with a host bridge at 00.0 and config mechanism #1 on pio 0xcf8..0xcff.
 * BARs are assigned from LAYOUT_PCI_IO_BASE (I/O) and LAYOUT_PCI_MMIO_GPA (MMIO) and
 * registered on pio/mmio; a guest that reprograms a BAR moves the registration.
 */
int pci_bus_create(struct pci_bus **out, struct bus *pio, struct bus *mmio);
/* Add a device in the next free slot (>= 1); *slot_out gets it. INTA of slot N is wired to
 * GSI LAYOUT_PCI_IRQ_BASE + N - 1 and reported in the interrupt line register. */
int pci_add_device(struct pci_bus *b, const struct pci_dev_desc *d, unsigned *slot_out);
/*
 * Take the device in slot off the bus: its BARs stop decoding and the slot reads as absent.
 * A device calls this from its destroy function, before it frees what its BAR ops use, and
 * only once no vCPU runs. Returns 0, or -ENOENT if the slot is empty or the host bridge.
 */
int pci_remove_device(struct pci_bus *b, unsigned slot);
/* The GSI that INTA of slot (>= 1) is wired to: LAYOUT_PCI_IRQ_BASE + slot - 1. Slots whose
 * GSI would pass the last IOAPIC pin are never handed out, so pci_add_device fills 1..8. */
unsigned pci_slot_gsi(unsigned slot);
/* Destroy the bus after every device on it (virtio_blk_destroy first). */
void pci_bus_destroy(struct pci_bus *b);
/*
 * The config address latch, BAR allocation cursors and every present device's config
 * space. Loading needs the same devices in the same slots (read-only bytes must match),
 * takes guest-writable bytes and BARs from the payload, and re-registers the BARs.
 */
void pci_state_save(struct pci_bus *b, struct vs_enc *e);
int pci_state_load(struct pci_bus *b, const uint8_t *payload, size_t len);

/* ---- virtio-blk (virtio-pci, legacy interface) ------------------------------------- */
struct virtio_blk;

struct virtio_blk_config {
	const char *path;      /* raw image; size must be a multiple of 512 */
	bool read_only;        /* open O_RDONLY, advertise VIRTIO_BLK_F_RO, fail writes */
	bool change_log;       /* keep a change log with an IMAGE.gwlog sidecar (disk_log.h);
				  ignored for a read-only disk */
};

/*
 * Open the image and add a virtio-blk PCI device. A file that cannot be opened for writing
 * because of its permissions is opened read-only (the guest gets I/O errors on write).
 * Requests are served synchronously on the vCPU thread that notifies the queue, so none
 * is in flight once all vCPUs are paused. mem is kept, not copied: pages the device writes
 * are marked in whatever vmm_dirty bitmaps it holds at that moment. *irq is copied; the
 * device raises pci_slot_gsi() of its slot. Returns 0, or -errno with a reason in err.
 */
int virtio_blk_create(struct virtio_blk **out, struct pci_bus *pci, const struct guest_mem *mem,
		      const struct irq_chip *irq, const struct virtio_blk_config *cfg, char *err,
		      size_t errlen);
/* The image size, fixed when it was opened. */
uint64_t virtio_blk_capacity_bytes(const struct virtio_blk *vb);
/* True if asked for, or if the image could only be opened read-only. */
bool virtio_blk_is_read_only(const struct virtio_blk *vb);
/* Take the device off the PCI bus, close the image and free, once no vCPU runs and before
 * pci_bus_destroy. With a change log, this is the clean close that saves it (disk_log.h).
 * NULL is a no-op. */
void virtio_blk_destroy(struct virtio_blk *vb);
/* Driver-visible state: features, queue address and indices, status, ISR, broken. */
void virtio_blk_state_save(struct virtio_blk *vb, struct vs_enc *e);
int virtio_blk_state_load(struct virtio_blk *vb, const uint8_t *payload, size_t len);
/* The change log (see vm_disk_log_valid and vm_disk_log_fetch in vm_state.h); a device
 * without one (read-only) is never valid and fetches -ENOTSUP. */
bool virtio_blk_log_valid(struct virtio_blk *vb, const char *base);
int virtio_blk_log_fetch(struct virtio_blk *vb, uint64_t *bitmap, const char *base);
/*
 * A dirty-log consumer's own view of the change log (disk_log.h): add one with every block
 * set (vb, out: its index), fetch-and-clear it into bitmap, remove it. Without a log
 * (read-only) add and fetch return -ENOTSUP; add returns -EBUSY when every slot is taken.
 */
int virtio_blk_view_add(struct virtio_blk *vb, int *out);
int virtio_blk_view_fetch(struct virtio_blk *vb, int view, uint64_t *bitmap);
void virtio_blk_view_remove(struct virtio_blk *vb, int view);

/* ---- virtio-net (virtio-pci, legacy interface) on a tap -------------------------------- */
struct virtio_net;

#define VIRTIO_NET_MAC_BYTES 6

struct virtio_net_config {
	const char *tap_name; /* an existing tap to attach to (tap.h), or NULL and: */
	int tap_fd;           /* an open tap; duplicated, the caller keeps its own */
	bool has_mac;
	uint8_t mac[VIRTIO_NET_MAC_BYTES]; /* if has_mac: unicast; else derived (below) */
	unsigned index;       /* the NIC's number in the VM, part of the derived MAC */
};

/*
 * How the device reaches KVM without knowing it: assign (or deassign) fd as an
 * ioeventfd for a len-byte port write of datamatch. NULL ioeventfd: notifications come
 * through the BAR's write handler (a vCPU exit), which signals the same eventfds.
 */
struct virtio_net_host {
	int (*ioeventfd)(void *opaque, uint16_t port, unsigned len, uint32_t datamatch, int fd,
			 bool assign);
	void *opaque;
};

/* Counters, all since the device was created. */
struct virtio_net_stats {
	uint64_t rx_frames, rx_bytes; /* placed in the guest's buffers (headers included) */
	uint64_t tx_frames, tx_bytes; /* written to the tap */
	uint64_t rx_dropped;   /* read from the tap, not delivered: no driver, did not fit */
	uint64_t rx_filtered;  /* not for this NIC under the driver's receive filter */
	uint64_t rx_no_buffer; /* times the guest had no buffer: later frames waited in the tap */
	uint64_t tx_dropped;   /* guest frames the tap refused, or malformed */
	uint64_t bad_chains;   /* descriptor chains that could not be trusted */
	uint64_t rx_carried;   /* frames a migration carried in from the source's tap */
};

struct virtio_net_info {
	uint8_t mac[VIRTIO_NET_MAC_BYTES];
	char tap[16];
	struct virtio_net_stats stats;
};

/*
 * Attach the tap and add a virtio-net PCI device (features: MAC, STATUS, CTRL_VQ,
 * CTRL_RX, GUEST_ANNOUNCE, MRG_RXBUF, checksum and TSO offloads both ways, indirect
 * descriptors, event indices). Without cfg->has_mac the MAC is derived from the tap's name and index:
 * stable across boots, locally administered, unicast (virtio_net_mac_derive). The
 * device's I/O thread starts paused: it reads neither the tap nor guest RAM until
 * virtio_net_resume. Everything it writes into guest RAM is marked in mem's dirty
 * bitmaps. *irq and *host are copied. Returns 0, or -errno with a one-line reason in
 * err (tap.h's errors among them).
 */
int virtio_net_create(struct virtio_net **out, struct pci_bus *pci, const struct guest_mem *mem,
		      const struct irq_chip *irq, const struct virtio_net_host *host,
		      const struct virtio_net_config *cfg, char *err, size_t errlen);
/* Stop the I/O thread, take the device off the bus, close the tap and free; once no vCPU
 * runs, before pci_bus_destroy. NULL is a no-op. */
void virtio_net_destroy(struct virtio_net *n);
/*
 * Fence the I/O thread: when this returns it has finished whatever it was writing into
 * guest RAM (and marked it dirty), and it reads neither the tap nor guest RAM until
 * virtio_net_resume; frames wait in the tap's queue, notifications in their eventfds.
 * Idempotent. Any thread but the I/O thread.
 */
void virtio_net_pause(struct virtio_net *n);
/* Let the I/O thread work again; it looks at every queue and the tap at once. */
void virtio_net_resume(struct virtio_net *n);
/*
 * Ask the guest to announce itself (after a move): when it negotiated GUEST_ANNOUNCE
 * and CTRL_VQ, set VIRTIO_NET_S_ANNOUNCE and raise a config interrupt; the driver sends
 * gratuitous ARPs and acks through the control queue, which clears the bit. Returns
 * true if asked, false if the driver cannot announce.
 */
bool virtio_net_announce(struct virtio_net *n);
/*
 * Write one Ethernet frame (frame, len bytes: 14 .. 1514) out of the tap as if the guest
 * had sent it, behind an all-zero virtio-net header of the size the tap expects now: the
 * host's own frames (a RARP announcement after a move). The guest's RAM and queues are
 * not touched, so this works while the VM is paused. Any thread but a vCPU's. Returns 0,
 * -EINVAL for a bad length, or the tap's -errno.
 */
int virtio_net_send_host_frame(struct virtio_net *n, const void *frame, size_t len);
/* The largest frame virtio_net_take_frame hands out: the tap's header and a 64 KiB frame. */
#define VIRTIO_NET_TAKE_MAX (12 + 18 + 65535) /* the mergeable header is 12 bytes */
/*
 * While the device is paused (a migration's source after its final pause): hand out the
 * next frame meant for the guest, as the tap gave it (virtio-net header of the size the
 * driver negotiated, then the Ethernet frame), into buf (cap > VIRTIO_NET_TAKE_MAX):
 * first frames already read and not yet placed, then the tap's. Guest RAM is not
 * touched. Returns 1 with *len set, 0 when there is none, -EBUSY if the device runs.
 */
int virtio_net_take_frame(struct virtio_net *n, void *buf, size_t cap, size_t *len);
/*
 * Queue a frame carried from another host's tap (as virtio_net_take_frame gave it) for
 * the guest: it is placed, in order, before anything this tap holds, once the device
 * runs. Returns 0, -EINVAL for a length no tap gives (a frame shorter than the header is
 * dropped at placement), or -ENOBUFS when VNET_CARRY_FRAMES or _BYTES are queued (the
 * frame is dropped and counted in rx_dropped). Any thread but a vCPU's.
 */
int virtio_net_carry_in(struct virtio_net *n, const void *frame, size_t len);
/* The MAC the driver sees now, the tap's name and the counters, into *out. Any thread. */
void virtio_net_info_get(struct virtio_net *n, struct virtio_net_info *out);
/* The default MAC of NIC index on tap name: 02:xx:xx:xx:xx:xx from a hash of both. */
void virtio_net_mac_derive(const char *tap_name, unsigned index,
			   uint8_t mac[VIRTIO_NET_MAC_BYTES]);
/*
 * Driver-visible state (features, status, ISR, MAC, link status, queues, receive
 * filter). Loading checks it all first, then applies it, tells the tap the header size
 * and offloads the driver negotiated, and re-drives the interrupt line. Frames the
 * device had read from its old tap are not state: they are dropped with the old tap.
 */
void virtio_net_state_save(struct virtio_net *n, struct vs_enc *e);
int virtio_net_state_load(struct virtio_net *n, const uint8_t *payload, size_t len);
/* The MAC a saved NIC payload holds, without a device (restore and images inspect). */
int virtio_net_state_mac(const uint8_t *payload, size_t len, uint8_t mac[VIRTIO_NET_MAC_BYTES]);

#endif
