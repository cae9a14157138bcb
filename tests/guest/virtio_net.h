/* A polling legacy virtio-net (PCI 1af4:1000) driver for the test guest, run at CPL 3. */
#ifndef GUEST_VIRTIO_NET_H
#define GUEST_VIRTIO_NET_H

#include <stdbool.h>
#include <stdint.h>

#define VNET_NICS_MAX 2
#define VNET_FRAME_MAX 1514             /* Ethernet, no FCS: what fits one receive buffer */

/*
 * Finds up to VNET_NICS_MAX legacy virtio-net functions on bus 0 (in slot order), resets
 * and sets each up with a receive, a transmit and a control queue (features MAC, STATUS,
 * CTRL_VQ, GUEST_ANNOUNCE; no offloads, so the header is 10 bytes), receive buffers
 * posted and interrupts suppressed. Returns how many are usable.
 */
unsigned vnet_probe(void);

/* The MAC of NIC nic, as the device's config space gives it. */
const uint8_t *vnet_mac(unsigned nic);

/*
 * The next received frame of NIC nic (Ethernet header first, virtio header stripped),
 * or false if none is waiting. The frame stays valid until vnet_rx_done(nic).
 */
bool vnet_rx(unsigned nic, const uint8_t **frame, uint32_t *len);
/* Give the last frame's buffer back to the device (batched: posted on the next vnet_rx
 * that finds nothing, or here when many are pending). */
void vnet_rx_done(unsigned nic);

/* Copy a frame (Ethernet header first, at most VNET_FRAME_MAX bytes) into a free transmit
 * buffer and notify the device. Returns false when every buffer is still in flight. */
bool vnet_tx(unsigned nic, const void *frame, uint32_t len);

/*
 * Read and clear the ISR; if it reports a config change and the device asks for an
 * announcement (VIRTIO_NET_S_ANNOUNCE), return true: the caller announces and then calls
 * vnet_announce_ack(nic).
 */
bool vnet_announce_wanted(unsigned nic);
/* Acknowledge the announcement through the control queue; true when the device said OK. */
bool vnet_announce_ack(unsigned nic);

#endif
