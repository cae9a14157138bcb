/* Linux tap devices as a virtio-net backend: attach, check a passed fd, header size, offloads. */
#ifndef VMM_VIRTIO_TAP_H
#define VMM_VIRTIO_TAP_H

#include <stddef.h>
#include <stdint.h>

#define TAP_NAME_BYTES 16 /* IFNAMSIZ */

/*
 * Attach to the existing tap interface name with IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, as
 * the one process reading it. The fd is non-blocking and close-on-exec; the caller
 * closes it. Returns 0 and the fd in *fd_out, or -errno with a one-line reason naming
 * the tap and the fix in err: -ENODEV (no such interface: godwit does not create taps,
 * which would silently leave the guest unconnected), -EBUSY (another process holds it),
 * -EINVAL (not a tap, or a name that cannot be one), -EPERM.
 */
int tap_open(const char *name, int *fd_out, char *err, size_t errlen);

/*
 * Check that fd (opened by a manager, as libvirt does for QEMU) is a tap attached with
 * IFF_NO_PI and IFF_VNET_HDR, make it non-blocking and copy its interface name into
 * name. The caller keeps owning fd. Returns 0, or -errno with a one-line reason in err.
 */
int tap_check_fd(int fd, char name[TAP_NAME_BYTES], char *err, size_t errlen);

/* The virtio-net header length the tap puts before, and expects before, every frame. */
int tap_set_vnet_hdr_bytes(int fd, int bytes);

/*
 * Which offloads the tap may hand us (TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6 of
 * <linux/if_tun.h>): only what the guest said it can receive. Returns 0 or -errno.
 */
int tap_set_offload(int fd, unsigned flags);

#endif
