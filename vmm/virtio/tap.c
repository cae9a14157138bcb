/* Linux tap devices as a virtio-net backend: attach, check a passed fd, header size, offloads. */
#include "vmm/virtio/tap.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/if_tun.h>

#define TAP_FLAGS (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR)

static int tap_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

int tap_open(const char *name, int *fd_out, char *err, size_t errlen)
{
	struct ifreq ifr = { .ifr_flags = TAP_FLAGS };
	unsigned index;
	int fd, rc;

	if (!name || !name[0] || strlen(name) >= TAP_NAME_BYTES || strchr(name, '/')) {
		snprintf(err, errlen, "tap name '%s' is not an interface name: give 1 to %d "
			 "characters, e.g. tap=tap0", name ? name : "", TAP_NAME_BYTES - 1);
		return -EINVAL;
	}
	index = if_nametoindex(name);
	if (index == 0) {
		snprintf(err, errlen, "tap %s does not exist: create it first ('ip tuntap add dev "
			 "%s mode tap', then put it on a bridge or give it an address)", name, name);
		return -ENODEV;
	}
	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "tap %s: cannot open /dev/net/tun: %s (load the tun module "
			 "and run godwit with CAP_NET_ADMIN or as the tap's owner)", name,
			 strerror(-rc));
		return rc;
	}
	memcpy(ifr.ifr_name, name, strlen(name));
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		rc = -errno;
		if (rc == -EBUSY)
			snprintf(err, errlen, "tap %s is in use by another process: a tap serves one "
				 "VM, so stop the other user or give another tap", name);
		else if (rc == -EINVAL)
			snprintf(err, errlen, "%s is not a single-queue tap device: give a tap made "
				 "with 'ip tuntap add dev NAME mode tap'", name);
		else if (rc == -EPERM)
			snprintf(err, errlen, "tap %s: not allowed to attach (run godwit as the tap's "
				 "owner, 'ip tuntap add ... user USER', or with CAP_NET_ADMIN)", name);
		else
			snprintf(err, errlen, "tap %s: TUNSETIFF: %s", name, strerror(-rc));
		close(fd);
		return rc;
	}
	/* Deleted and made anew between the two calls: we would hold a fresh, unconnected tap. */
	if (if_nametoindex(name) != index) {
		snprintf(err, errlen, "tap %s was deleted while godwit attached to it: create it "
			 "again", name);
		close(fd);
		return -ENODEV;
	}
	*fd_out = fd;
	return 0;
}

int tap_check_fd(int fd, char name[TAP_NAME_BYTES], char *err, size_t errlen)
{
	struct ifreq ifr = { 0 };
	int rc;

	if (fcntl(fd, F_GETFD) < 0) {
		snprintf(err, errlen, "tapfd=%d is not an open file descriptor: pass the tap's fd "
			 "to godwit (e.g. 'godwit run ... --net tapfd=3 3<>/dev/net/tun' after "
			 "TUNSETIFF)", fd);
		return -EBADF;
	}
	if (ioctl(fd, TUNGETIFF, &ifr) < 0) {
		snprintf(err, errlen, "tapfd=%d is not a tap device (TUNGETIFF: %s): pass an fd of "
			 "/dev/net/tun attached to a tap", fd, strerror(errno));
		return -EINVAL;
	}
	if ((ifr.ifr_flags & (IFF_TAP | IFF_TUN)) != IFF_TAP) {
		snprintf(err, errlen, "tapfd=%d is attached to %.*s, a tun (layer 3) device: a NIC "
			 "needs a tap (IFF_TAP)", fd, TAP_NAME_BYTES, ifr.ifr_name);
		return -EINVAL;
	}
	if ((ifr.ifr_flags & TAP_FLAGS) != TAP_FLAGS) {
		snprintf(err, errlen, "tapfd=%d (tap %.*s) was attached without %s: open it with "
			 "IFF_TAP | IFF_NO_PI | IFF_VNET_HDR", fd, TAP_NAME_BYTES, ifr.ifr_name,
			 (ifr.ifr_flags & IFF_NO_PI) ? "IFF_VNET_HDR" : "IFF_NO_PI");
		return -EINVAL;
	}
	rc = tap_nonblock(fd);
	if (rc < 0) {
		snprintf(err, errlen, "tapfd=%d: O_NONBLOCK: %s", fd, strerror(-rc));
		return rc;
	}
	memcpy(name, ifr.ifr_name, TAP_NAME_BYTES);
	name[TAP_NAME_BYTES - 1] = '\0';
	return 0;
}

int tap_set_vnet_hdr_bytes(int fd, int bytes)
{
	return ioctl(fd, TUNSETVNETHDRSZ, &bytes) < 0 ? -errno : 0;
}

int tap_set_offload(int fd, unsigned flags)
{
	return ioctl(fd, TUNSETOFFLOAD, (unsigned long)flags) < 0 ? -errno : 0;
}
