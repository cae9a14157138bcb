/* Load a state blob into a restore shell: check all of it, then apply it in KVM's order. */
#include "vmm/vm_state.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vmm/state/state_priv.h"
#include "vmm/vm_priv.h"

#define MIB ((uint64_t)1 << 20)

/* Everything a blob holds, decoded and checked before any of it reaches KVM. */
struct vs_restore {
	struct vs_record rec[VS_REC_COUNT]; /* first record of each known type */
	bool have[VS_REC_COUNT];
	struct vs_record vcpu_rec[LAYOUT_MAX_VCPUS];
	bool have_vcpu[LAYOUT_MAX_VCPUS];
	struct vs_record nic[VS_MAX_NICS]; /* the VIRTIO_NET record's NICs, nnics of them */
	unsigned nnics;
	struct vs_machine machine;
	struct vcpu_state *vcpu; /* ncpus of them */
	unsigned ncpus;
	struct vm_kvm_state kvm;
	struct cpuid_table cpuid; /* last: it ends in a flexible array */
};

/* Sort the records by type, rejecting duplicates and unknown mandatory types. */
static int restore_index(struct vs_restore *r, const uint8_t *blob, size_t len, char *err,
			 size_t errlen)
{
	struct dec records;
	struct vs_record rec;
	bool first = true;
	int rc;

	rc = vs_blob_open(blob, len, &records, err, errlen);
	while (rc >= 0 && (rc = vs_blob_next(&records, &rec, err, errlen)) > 0) {
		if (first && rec.type != VS_REC_MACHINE) {
			snprintf(err, errlen, "VM state blob: the first record is type %u, not the "
				 "machine record", rec.type);
			return -EBADMSG;
		}
		first = false;
		if (rec.type >= VS_REC_COUNT) {
			if (rec.type & VS_REC_OPTIONAL)
				continue; /* a newer writer's extra, declared safe to ignore */
			snprintf(err, errlen, "VM state blob: mandatory record type %u is newer than "
				 "this godwit knows (state format version %" PRIu32 ", it reads up to "
				 "%u): upgrade godwit", rec.type, le32_decode(blob + 4),
				 VS_FORMAT_VERSION);
			return -EPROTONOSUPPORT;
		}
		if (rec.type == VS_REC_VCPU) {
			uint32_t id = rec.len >= 4 ? le32_decode(rec.payload) : UINT32_MAX;

			if (id >= LAYOUT_MAX_VCPUS || r->have_vcpu[id]) {
				snprintf(err, errlen, "VM state blob: bad or repeated vCPU id %" PRIu32,
					 id);
				return -EBADMSG;
			}
			r->vcpu_rec[id] = rec;
			r->have_vcpu[id] = true;
			continue;
		}
		if (r->have[rec.type]) {
			snprintf(err, errlen, "VM state blob: record type %u appears twice", rec.type);
			return -EBADMSG;
		}
		r->rec[rec.type] = rec;
		r->have[rec.type] = true;
	}
	if (rc == 0 && first) {
		snprintf(err, errlen, "VM state blob holds no records");
		rc = -EBADMSG;
	}
	return rc;
}

/* The machine the blob describes must be the one we built (r, shape). */
static int restore_check_machine(struct vs_restore *r, const struct vs_shape *shape, char *err,
				 size_t errlen)
{
	const struct vs_machine *m = &r->machine;
	struct dec d;
	struct vs_io io = { .d = &d };

	d = dec_init(r->rec[VS_REC_MACHINE].payload, r->rec[VS_REC_MACHINE].len);
	vs_io_machine(&io, &r->machine);
	if (!dec_done(&d)) {
		snprintf(err, errlen, "VM state blob: malformed machine record");
		return -EBADMSG;
	}
	if (m->layout != VS_LAYOUT_VERSION) {
		snprintf(err, errlen, "VM state has memory layout version %" PRIu32 ", this godwit "
			 "uses %u%s", m->layout, VS_LAYOUT_VERSION,
			 m->layout > VS_LAYOUT_VERSION ? ": upgrade godwit" : "");
		return -EPROTONOSUPPORT;
	}
	if (m->ram_bytes != shape->ram_bytes) {
		snprintf(err, errlen, "VM state is of a VM with %" PRIu64 " MiB of RAM, this VM has "
			 "%" PRIu64 " MiB", m->ram_bytes / MIB, shape->ram_bytes / MIB);
		return -EINVAL;
	}
	if (m->ncpus != shape->ncpus) {
		snprintf(err, errlen, "VM state is of a VM with %" PRIu32 " vCPUs, this VM has %u",
			 m->ncpus, shape->ncpus);
		return -EINVAL;
	}
	if (m->disk_bytes != shape->disk_bytes) {
		snprintf(err, errlen, "VM state is of a VM with a disk of %" PRIu64 " bytes, this "
			 "VM's disk has %" PRIu64, m->disk_bytes, shape->disk_bytes);
		return -EINVAL;
	}
	for (unsigned t = VS_REC_MACHINE; t < VS_REC_COUNT; t++) {
		bool want = t != VS_REC_VCPU && (t != VS_REC_VIRTIO_BLK || shape->has_blk) &&
			    (t != VS_REC_VIRTIO_NET || shape->nnets);

		if (t == VS_REC_VIRTIO_NET && r->have[t] != want) {
			snprintf(err, errlen, "VM state is of a VM with%s NICs, this VM has %u: give "
				 "one --net per NIC the VM had", want ? "out" : "", shape->nnets);
			return -EINVAL;
		}

		if (r->have[t] != want) {
			snprintf(err, errlen, "VM state blob %s record type %u", want ? "lacks" :
				 "has an unexpected", t);
			return -EBADMSG;
		}
	}
	for (unsigned i = 0; i < LAYOUT_MAX_VCPUS; i++) {
		if (r->have_vcpu[i] != (i < shape->ncpus)) {
			snprintf(err, errlen, "VM state blob: vCPU %u is %s", i,
				 r->have_vcpu[i] ? "extra" : "missing");
			return -EBADMSG;
		}
	}
	if (shape->nnets) {
		const struct vs_record *rec = &r->rec[VS_REC_VIRTIO_NET];

		if (vs_nics_split(rec->payload, rec->len, r->nic, &r->nnics) < 0) {
			snprintf(err, errlen, "VM state blob: malformed NIC record");
			return -EBADMSG;
		}
		if (r->nnics != shape->nnets) {
			snprintf(err, errlen, "VM state is of a VM with %u NICs, this VM has %u: give "
				 "one --net per NIC", r->nnics, shape->nnets);
			return -EINVAL;
		}
	}
	return 0;
}

/* Decode the IRQCHIP, PIT and CLOCK records, each consumed exactly. */
static bool restore_decode_kvm(struct vs_restore *r)
{
	struct dec d;
	struct vs_io io = { .d = &d };
	bool ok;

	d = dec_init(r->rec[VS_REC_IRQCHIP].payload, r->rec[VS_REC_IRQCHIP].len);
	vs_io_irqchip(&io, r->kvm.chip);
	ok = dec_done(&d);
	d = dec_init(r->rec[VS_REC_PIT].payload, r->rec[VS_REC_PIT].len);
	vs_io_pit(&io, &r->kvm.pit);
	ok &= dec_done(&d);
	d = dec_init(r->rec[VS_REC_CLOCK].payload, r->rec[VS_REC_CLOCK].len);
	vs_io_clock(&io, &r->kvm.clock);
	return ok && dec_done(&d);
}

static int restore_decode(struct vs_restore *r, const struct vs_shape *shape,
			  const struct cpuid_table *host, char *err, size_t errlen)
{
	char missing[512];
	struct dec d;

	d = dec_init(r->rec[VS_REC_CPUID].payload, r->rec[VS_REC_CPUID].len);
	if (vs_dec_cpuid(&d, &r->cpuid) < 0) {
		snprintf(err, errlen, "VM state blob: malformed CPUID record");
		return -EBADMSG;
	}
	if (cpuid_missing_features(&r->cpuid, host, missing, sizeof(missing)) > 0) {
		snprintf(err, errlen, "CPU features missing on this host: %s", missing);
		return -ENOTSUP;
	}
	r->ncpus = shape->ncpus;
	r->vcpu = calloc(shape->ncpus, sizeof(*r->vcpu));
	if (!r->vcpu)
		return -ENOMEM;
	for (unsigned i = 0; i < shape->ncpus; i++) {
		struct vs_io io = { .d = &d };

		d = dec_init(r->vcpu_rec[i].payload, r->vcpu_rec[i].len);
		vs_io_vcpu(&io, &r->vcpu[i]);
		if (!dec_done(&d)) {
			snprintf(err, errlen, "VM state blob: malformed record of vCPU %u", i);
			return -EBADMSG;
		}
	}
	if (!restore_decode_kvm(r)) {
		snprintf(err, errlen, "VM state blob: malformed interrupt controller, PIT or clock "
			 "record");
		return -EBADMSG;
	}
	return 0;
}

void vs_restore_free(struct vs_restore *r)
{
	if (!r)
		return;
	if (r->vcpu) {
		for (unsigned i = 0; i < r->ncpus; i++)
			vcpu_state_free(&r->vcpu[i]);
		free(r->vcpu);
	}
	free(r);
}

int vs_restore_decode(struct vs_restore **out, const struct vs_shape *shape,
		      const struct cpuid_table *host, const uint8_t *blob, size_t len, char *err,
		      size_t errlen)
{
	struct vs_restore *r = calloc(1, sizeof(*r));
	int rc;

	if (!r) {
		snprintf(err, errlen, "loading VM state: out of memory");
		return -ENOMEM;
	}
	rc = restore_index(r, blob, len, err, errlen);
	if (rc == 0)
		rc = restore_check_machine(r, shape, err, errlen);
	if (rc == 0)
		rc = restore_decode(r, shape, host, err, errlen);
	if (rc < 0) {
		vs_restore_free(r);
		return rc;
	}
	*out = r;
	return 0;
}

/* If the saved TSC rate differs from this host's, ask KVM to run the guest at the saved one. */
static int restore_tsc_khz(struct vs_restore *r, struct vm *vm, char *err, size_t errlen)
{
	uint32_t khz = r->machine.tsc_khz;

	if (khz == 0 || vm->caps.tsc_khz == 0 || khz == vm->caps.tsc_khz)
		return 0;
	for (unsigned i = 0; i < vm->ncpus; i++) {
		if (ioctl(vm->vcpu[i].fd, KVM_SET_TSC_KHZ, (unsigned long)khz) < 0) {
			snprintf(err, errlen, "the VM's TSC ran at %" PRIu32 " kHz, this host's at %"
				 PRIu32 " kHz, and KVM cannot scale it", khz, vm->caps.tsc_khz);
			return -ENOTSUP;
		}
	}
	return 0;
}

int vs_restore_devices(const struct vs_restore *r, const struct vs_devices *dev, char *err,
		       size_t errlen)
{
	const struct vs_record *rec;
	int rc;

	rec = &r->rec[VS_REC_SERIAL];
	rc = serial_state_load(dev->serial, rec->payload, rec->len);
	if (rc == 0) {
		rec = &r->rec[VS_REC_PM];
		rc = pm_state_load(dev->pm, rec->payload, rec->len);
	}
	if (rc == 0) {
		rec = &r->rec[VS_REC_PCI];
		rc = pci_state_load(dev->pci, rec->payload, rec->len);
	}
	if (rc == 0 && dev->blk) {
		rec = &r->rec[VS_REC_VIRTIO_BLK];
		rc = virtio_blk_state_load(dev->blk, rec->payload, rec->len);
	}
	if (rc == 0 && dev->nnets) {
		rec = &r->rec[VS_REC_VIRTIO_NET];
		if (r->nnics != dev->nnets)
			rc = -EINVAL; /* vs_restore_decode split it and checked it against the shape */
		for (unsigned i = 0; rc == 0 && i < r->nnics; i++)
			rc = virtio_net_state_load(dev->net[i], r->nic[i].payload, r->nic[i].len);
	}
	if (rc < 0)
		snprintf(err, errlen, "VM state blob: record type %u does not fit this VM's "
			 "device (%s)", rec->type, strerror(-rc));
	return rc;
}

/*
 * Apply a decoded blob. Order:
 *  1. TSC rate and CPUID: KVM takes a new CPUID table only before a vCPU first runs, and
 *     which MSRs it accepts depends on it.
 *  2. Devices, which re-drive their interrupt lines, so KVM's per-source line levels
 *     match; then the PICs and IOAPIC, whose saved registers overwrite whatever those
 *     edges did.
 *  3. Each vCPU (vcpu_state_set's order); the LAPICs come after the IOAPIC, so an
 *     interrupt the IOAPIC re-delivers on load is replaced by the saved IRR.
 *  4. Every vCPU's TSC, back to back, so KVM sees one synchronised write, then one TSC
 *     offset for all at the largest saved value (vcpu_state_tsc_resume says why); then
 *     kvmclock (flags 0: the guest's clock resumes at the saved value, the pause not
 *     counted). On a host whose TSC cannot be offset (PVM: the guest reads the host's)
 *     both stay monotonic on the same host but do count the pause.
 */
static int restore_apply(struct vs_restore *r, struct vm *vm, char *err, size_t errlen)
{
	struct vs_devices dev = {
		.serial = vm->serial, .pm = vm->pm, .pci = vm->pci, .blk = vm->blk,
		.net = vm->net, .nnets = vm->nnets,
	};
	struct kvm_clock_data clock = { .clock = r->kvm.clock.clock };
	struct cpuid_table *t;
	uint64_t tsc_target = 0;
	int rc;

	rc = restore_tsc_khz(r, vm, err, errlen);
	for (unsigned i = 0; i < vm->ncpus && rc == 0; i++)
		rc = vcpu_set_cpuid(&vm->vcpu[i], &r->cpuid, err, errlen);
	if (rc < 0)
		return rc;
	t = malloc(sizeof(*t));
	if (!t)
		return -ENOMEM;
	memcpy(t, &r->cpuid, sizeof(*t));
	free(vm->cpuid);
	vm->cpuid = t; /* what a later save of this VM must carry on */
	rc = vs_restore_devices(r, &dev, err, errlen);
	for (unsigned i = 0; i < 3 && rc == 0; i++) {
		if (ioctl(vm->vm_fd, KVM_SET_IRQCHIP, &r->kvm.chip[i]) < 0) {
			rc = -errno;
			snprintf(err, errlen, "KVM_SET_IRQCHIP %u: %s", i, strerror(-rc));
		}
	}
	if (rc == 0 && ioctl(vm->vm_fd, KVM_SET_PIT2, &r->kvm.pit) < 0) {
		rc = -errno;
		snprintf(err, errlen, "KVM_SET_PIT2: %s", strerror(-rc));
	}
	for (unsigned i = 0; i < vm->ncpus && rc == 0; i++)
		rc = vcpu_state_set(&vm->vcpu[i], &r->vcpu[i], err, errlen);
	for (unsigned i = 0; i < vm->ncpus && rc == 0; i++) {
		uint64_t tsc;

		rc = vcpu_state_set_tsc(&vm->vcpu[i], &r->vcpu[i], err, errlen);
		if (vcpu_state_tsc(&r->vcpu[i], &tsc) && tsc > tsc_target)
			tsc_target = tsc;
	}
	if (rc == 0 && tsc_target)
		rc = vcpu_state_tsc_resume(vm, tsc_target, err, errlen);
	if (rc == 0 && ioctl(vm->vm_fd, KVM_SET_CLOCK, &clock) < 0) {
		rc = -errno;
		snprintf(err, errlen, "KVM_SET_CLOCK: %s", strerror(-rc));
	}
	/*
	 * From now on this VM saves the MSRs it was given: the source could read them under
	 * this CPUID table and this KVM just took them, while the list probed at creation was
	 * made under the shell's own policy.
	 */
	if (rc == 0) {
		vm->caps.nmsrs = r->vcpu[0].nmsrs;
		for (uint32_t i = 0; i < r->vcpu[0].nmsrs; i++)
			vm->caps.msr_index[i] = r->vcpu[0].msrs[i].index;
	}
	return rc;
}

int vm_state_load(struct vm *vm, const uint8_t *blob, size_t len, char *err, size_t errlen)
{
	struct vs_shape shape = {
		.ram_bytes = vm->ram_bytes,
		.disk_bytes = vm_disk_bytes(vm),
		.ncpus = vm->ncpus,
		.has_blk = vm->blk != NULL,
		.nnets = vm->nnets,
	};
	struct vs_restore *r = NULL;
	struct cpuid_table *host;
	int rc;

	/* What this KVM supports, which the blob's CPUID must not exceed. */
	host = calloc(1, sizeof(*host));
	if (!host) {
		snprintf(err, errlen, "loading VM state: out of memory");
		return -ENOMEM;
	}
	host->hdr.nent = CPUID_MAX_ENTRIES;
	if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, &host->hdr) < 0) {
		rc = -errno;
		snprintf(err, errlen, "KVM_GET_SUPPORTED_CPUID: %s", strerror(-rc));
		free(host);
		return rc;
	}
	pthread_mutex_lock(&vm->lock);
	if (vm->state != VM_STATE_CREATED) {
		snprintf(err, errlen, "VM state can only be loaded before the VM starts");
		rc = -EBUSY;
		goto out;
	}
	/* All of the blob is decoded and checked before the first change to KVM. */
	rc = vs_restore_decode(&r, &shape, host, blob, len, err, errlen);
	if (rc == 0)
		rc = restore_apply(r, vm, err, errlen);
out:
	pthread_mutex_unlock(&vm->lock);
	vs_restore_free(r);
	free(host);
	return rc;
}
