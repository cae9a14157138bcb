/* A polling legacy virtio-blk (PCI 1af4:1001) driver for the test guest, run at CPL 3. */
#ifndef GUEST_VIRTIO_BLK_H
#define GUEST_VIRTIO_BLK_H

#include <stdbool.h>
#include <stdint.h>

#define VBLK_SECTOR_BYTES 512
#define VBLK_CHUNK_SECTORS 256          /* one request moves at most this much */

#define VBLK_S_OK 0
#define VBLK_S_IOERR 1
#define VBLK_S_UNSUPP 2

#define VBLK_T_IN 0
#define VBLK_T_OUT 1
#define VBLK_T_FLUSH 4

/*
 * Scans PCI bus 0 through configuration mechanism #1 for the first legacy virtio-blk
 * device, resets and configures it with one polled queue. Returns true and the capacity
 * in 512-byte sectors when a usable device is there.
 */
bool vblk_probe(uint64_t *capacity);

/* The driver's own buffer, VBLK_CHUNK_SECTORS sectors; requests move data through it. */
uint8_t *vblk_buffer(void);

/*
 * Issues one request and polls for its completion: type VBLK_T_IN or VBLK_T_OUT moves
 * `sectors` (1..VBLK_CHUNK_SECTORS) sectors between `lba` and vblk_buffer(); VBLK_T_FLUSH
 * moves none. Returns the device's status byte, or VBLK_S_IOERR when the device is
 * missing, the arguments are out of range, or it does not answer within 10 s (after which
 * the driver stops issuing requests).
 */
uint8_t vblk_request(uint32_t type, uint64_t lba, uint32_t sectors);

#endif
