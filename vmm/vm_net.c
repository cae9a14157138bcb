/* The VM's NICs: creating them on its PCI bus, running them with the vCPUs, status reports. */
#include "vmm/vm_priv.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "vmm/virtio/tap.h"

/* virtio_net_host.ioeventfd: KVM signals fd for a guest write of datamatch to port. */
static int vm_ioeventfd(void *opaque, uint16_t port, unsigned len, uint32_t datamatch, int fd,
			bool assign)
{
	struct vm *vm = opaque;
	struct kvm_ioeventfd io = {
		.datamatch = datamatch,
		.addr = port,
		.len = len,
		.fd = fd,
		.flags = KVM_IOEVENTFD_FLAG_PIO | KVM_IOEVENTFD_FLAG_DATAMATCH |
			 (assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN),
	};

	return ioctl(vm->vm_fd, KVM_IOEVENTFD, &io) < 0 ? -errno : 0;
}

int vm_nets_create(struct vm *vm, const struct vm_config *cfg, char *err, size_t errlen)
{
	const struct virtio_net_host host = { .ioeventfd = vm_ioeventfd, .opaque = vm };

	for (unsigned i = 0; i < cfg->nnets; i++) {
		const struct vm_net_config *nc = &cfg->nets[i];
		struct virtio_net_config c = {
			.tap_name = nc->tap,
			.tap_fd = nc->tap_fd,
			.has_mac = nc->has_mac,
			.index = i,
		};
		char why[256];
		int rc;

		memcpy(c.mac, nc->mac, sizeof(c.mac));
		rc = virtio_net_create(&vm->net[i], vm->pci, &vm->mem, &vm->irq, &host, &c, why,
				       sizeof(why));
		if (rc < 0) {
			if (cfg->nnets > 1)
				snprintf(err, errlen, "NIC %u: %s", i, why);
			else
				snprintf(err, errlen, "%s", why);
			return rc;
		}
		vm->nnets = i + 1;
	}
	return 0;
}

void vm_nets_run(struct vm *vm, bool run)
{
	for (unsigned i = 0; i < vm->nnets; i++) {
		if (run)
			virtio_net_resume(vm->net[i]);
		else
			virtio_net_pause(vm->net[i]);
	}
}

void vm_nets_destroy(struct vm *vm)
{
	for (unsigned i = vm->nnets; i-- > 0;) {
		virtio_net_destroy(vm->net[i]);
		vm->net[i] = NULL;
	}
	vm->nnets = 0;
}

int vm_net_check(const struct vm_net_config *nc, char *err, size_t errlen)
{
	char name[TAP_NAME_BYTES];
	int fd, rc;

	if (!nc->tap)
		return tap_check_fd(nc->tap_fd, name, err, errlen);
	rc = tap_open(nc->tap, &fd, err, errlen);
	if (rc == 0)
		close(fd);
	return rc;
}

unsigned vm_nic_count(const struct vm *vm)
{
	return vm->nnets;
}

int vm_nic_info(struct vm *vm, unsigned i, struct vm_nic_info *out)
{
	struct virtio_net_info info;

	if (i >= vm->nnets)
		return -EINVAL;
	virtio_net_info_get(vm->net[i], &info);
	memcpy(out->mac, info.mac, sizeof(out->mac));
	memcpy(out->tap, info.tap, sizeof(out->tap));
	out->rx_frames = info.stats.rx_frames;
	out->rx_bytes = info.stats.rx_bytes;
	out->tx_frames = info.stats.tx_frames;
	out->tx_bytes = info.stats.tx_bytes;
	out->rx_dropped = info.stats.rx_dropped;
	out->rx_filtered = info.stats.rx_filtered;
	out->rx_no_buffer = info.stats.rx_no_buffer;
	out->tx_dropped = info.stats.tx_dropped;
	out->bad_chains = info.stats.bad_chains;
	out->rx_carried = info.stats.rx_carried;
	return 0;
}

int vm_nic_take_frame(struct vm *vm, unsigned i, void *buf, size_t cap, size_t *len)
{
	_Static_assert(VM_NIC_FRAME_MAX == VIRTIO_NET_TAKE_MAX, "frame bound");
	if (i >= vm->nnets)
		return -EINVAL;
	return virtio_net_take_frame(vm->net[i], buf, cap, len);
}

int vm_nic_carry_in(struct vm *vm, unsigned i, const void *frame, size_t len)
{
	if (i >= vm->nnets)
		return -EINVAL;
	return virtio_net_carry_in(vm->net[i], frame, len);
}

unsigned vm_nic_announce(struct vm *vm)
{
	unsigned asked = 0;

	for (unsigned i = 0; i < vm->nnets; i++)
		asked += virtio_net_announce(vm->net[i]);
	return asked;
}
