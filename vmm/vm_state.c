/* Save and load the whole VM's state: vCPUs, interrupt controllers, clocks and devices. */
#include "vmm/vm_state.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vmm/state/state_priv.h"
#include "vmm/vm_priv.h"

static int vm_ioctl(struct vm *vm, unsigned long req, void *arg, const char *what, char *err,
		    size_t errlen)
{
	int rc;

	if (ioctl(vm->vm_fd, req, arg) >= 0)
		return 0;
	rc = -errno;
	snprintf(err, errlen, "%s: %s", what, strerror(-rc));
	return rc;
}

static int vm_kvm_state_get(struct vm *vm, struct vm_kvm_state *k, char *err, size_t errlen)
{
	static const uint32_t ids[3] = {
		KVM_IRQCHIP_PIC_MASTER, KVM_IRQCHIP_PIC_SLAVE, KVM_IRQCHIP_IOAPIC,
	};
	int rc = 0;

	for (unsigned i = 0; i < 3 && rc == 0; i++) {
		k->chip[i].chip_id = ids[i];
		rc = vm_ioctl(vm, KVM_GET_IRQCHIP, &k->chip[i], "KVM_GET_IRQCHIP", err, errlen);
	}
	if (rc == 0)
		rc = vm_ioctl(vm, KVM_GET_PIT2, &k->pit, "KVM_GET_PIT2", err, errlen);
	if (rc == 0)
		rc = vm_ioctl(vm, KVM_GET_CLOCK, &k->clock, "KVM_GET_CLOCK", err, errlen);
	return rc;
}

static void vm_save_vcpus(struct vm *vm, struct vs_enc *e, char *err, size_t errlen)
{
	struct vcpu_state *s = malloc(sizeof(*s));
	struct vs_io io = { .e = e };

	if (!s) {
		e->err = -ENOMEM;
		return;
	}
	for (unsigned i = 0; i < vm->ncpus && !e->err; i++) {
		size_t at;
		int rc;

		memset(s, 0, sizeof(*s));
		rc = vcpu_state_get(&vm->vcpu[i], s, err, errlen);
		if (rc == 0) {
			at = vs_enc_record_begin(e, VS_REC_VCPU);
			vs_io_vcpu(&io, s);
			vs_enc_record_end(e, at);
		} else {
			e->err = rc;
		}
		vcpu_state_free(s);
	}
	free(s);
}

/* Encode the whole VM into e (after vs_blob_begin). Sets e->err on failure. */
static void vm_save_all(struct vm *vm, struct vs_enc *e, char *err, size_t errlen)
{
	struct vs_machine m = {
		.layout = VS_LAYOUT_VERSION,
		.ncpus = vm->ncpus,
		.ram_bytes = vm->ram_bytes,
		.disk_bytes = vm_disk_bytes(vm),
		.tsc_khz = vm->caps.tsc_khz,
	};
	struct vm_kvm_state *k = calloc(1, sizeof(*k));
	struct vs_io io = { .e = e };
	size_t at;
	int rc;

	if (!k) {
		e->err = -ENOMEM;
		return;
	}
	at = vs_enc_record_begin(e, VS_REC_MACHINE);
	vs_io_machine(&io, &m);
	vs_enc_record_end(e, at);
	at = vs_enc_record_begin(e, VS_REC_CPUID);
	vs_enc_cpuid(e, vm->cpuid);
	vs_enc_record_end(e, at);
	vm_save_vcpus(vm, e, err, errlen);
	rc = vm_kvm_state_get(vm, k, err, errlen);
	if (rc < 0 && !e->err)
		e->err = rc;
	at = vs_enc_record_begin(e, VS_REC_IRQCHIP);
	vs_io_irqchip(&io, k->chip);
	vs_enc_record_end(e, at);
	at = vs_enc_record_begin(e, VS_REC_PIT);
	vs_io_pit(&io, &k->pit);
	vs_enc_record_end(e, at);
	at = vs_enc_record_begin(e, VS_REC_CLOCK);
	vs_io_clock(&io, &k->clock);
	vs_enc_record_end(e, at);
	free(k);
	at = vs_enc_record_begin(e, VS_REC_SERIAL);
	serial_state_save(vm->serial, e);
	vs_enc_record_end(e, at);
	at = vs_enc_record_begin(e, VS_REC_PM);
	pm_state_save(vm->pm, e);
	vs_enc_record_end(e, at);
	at = vs_enc_record_begin(e, VS_REC_PCI);
	pci_state_save(vm->pci, e);
	vs_enc_record_end(e, at);
	if (vm->blk) {
		at = vs_enc_record_begin(e, VS_REC_VIRTIO_BLK);
		virtio_blk_state_save(vm->blk, e);
		vs_enc_record_end(e, at);
	}
	if (vm->nnets) {
		at = vs_enc_record_begin(e, VS_REC_VIRTIO_NET);
		vs_enc_u32(e, vm->nnets);
		for (unsigned i = 0; i < vm->nnets; i++) {
			size_t len_at = e->len;

			vs_enc_u32(e, 0); /* the payload's length, patched below */
			virtio_net_state_save(vm->net[i], e);
			if (!e->err)
				vs_enc_patch_u32(e, len_at, (uint32_t)(e->len - len_at - 4));
		}
		vs_enc_record_end(e, at);
	}
}

int vm_state_save(struct vm *vm, uint8_t **blob, size_t *len)
{
	struct vs_enc e;
	char err[160];
	int rc;

	/*
	 * Under vm->lock, so no vm_resume can start the vCPUs while their state is read. A
	 * paused vCPU finished its last exit before parking (vcpu.c), and virtio requests
	 * are served synchronously: nothing is half done. A VM that never ran is as still.
	 */
	pthread_mutex_lock(&vm->lock);
	if (vm->stop_req || (vm->state != VM_STATE_PAUSED && vm->state != VM_STATE_CREATED)) {
		pthread_mutex_unlock(&vm->lock);
		return -EBUSY;
	}
	vs_enc_init(&e);
	vs_blob_begin(&e);
	vm_save_all(vm, &e, err, sizeof(err));
	vs_blob_finish(&e);
	pthread_mutex_unlock(&vm->lock);
	rc = e.err;
	if (rc < 0) {
		vs_enc_free(&e);
		return rc;
	}
	*blob = e.buf;
	*len = e.len;
	return 0;
}
