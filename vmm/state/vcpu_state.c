/* One vCPU's state through KVM: what can be saved, reading it, writing it back in order. */
#include "vmm/vm_priv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vmm/state/state_priv.h"

#define MSR_IA32_TSC          0x10
#define MSR_IA32_TSC_DEADLINE 0x6e0

_Static_assert(VM_MAX_MSRS == VS_MAX_MSRS, "a vCPU's MSRs fit its record");

/*
 * MSRs KVM_GET_MSR_INDEX_LIST leaves out but a guest's state includes: the MTRRs (KVM
 * emulates them, and Linux programs them), TSC_AUX and XSS. Each is kept only if this
 * KVM reads and writes it.
 */
static const uint32_t msr_extra[] = {
	0x2ff,                                      /* MTRRdefType */
	0x200, 0x201, 0x202, 0x203, 0x204, 0x205, 0x206, 0x207,
	0x208, 0x209, 0x20a, 0x20b, 0x20c, 0x20d, 0x20e, 0x20f, /* variable MTRRs */
	0x250, 0x258, 0x259,                        /* fixed MTRRs 64K, 16K */
	0x268, 0x269, 0x26a, 0x26b, 0x26c, 0x26d, 0x26e, 0x26f, /* fixed MTRRs 4K */
	0x277,                                      /* PAT */
	0xc0000103,                                 /* TSC_AUX */
	0xda0,                                      /* XSS */
};

/* struct kvm_msrs with room for its entries (hdr.entries is a flexible array). */
struct msr_buf {
	union {
		struct kvm_msrs hdr;
		uint8_t storage[sizeof(struct kvm_msrs) + VM_MAX_MSRS * sizeof(struct kvm_msr_entry)];
	};
};

struct msr_index_buf {
	union {
		struct kvm_msr_list hdr;
		uint8_t storage[sizeof(struct kvm_msr_list) + VM_MAX_MSRS * sizeof(uint32_t)];
	};
};

/* Does vCPU fd read index, and take the value back? (KVM returns how many it did.) */
static bool msr_usable(int fd, uint32_t index)
{
	struct msr_buf b = { .hdr.nmsrs = 1 };

	b.hdr.entries[0].index = index;
	if (ioctl(fd, KVM_GET_MSRS, &b.hdr) != 1)
		return false;
	/* Writing the TSC back would move it; every KVM that reads it lets us write it. */
	if (index == MSR_IA32_TSC)
		return true;
	return ioctl(fd, KVM_SET_MSRS, &b.hdr) == 1;
}

static void msr_probe_one(struct vm *vm, uint32_t index)
{
	struct vm_caps *c = &vm->caps;

	for (unsigned i = 0; i < c->nmsrs; i++) {
		if (c->msr_index[i] == index)
			return;
	}
	if (c->nmsrs < VM_MAX_MSRS && msr_usable(vm->vcpu[0].fd, index))
		c->msr_index[c->nmsrs++] = index;
}

int vcpu_state_probe(struct vm *vm, char *err, size_t errlen)
{
	struct vm_caps *c = &vm->caps;
	struct msr_index_buf list = { .hdr.nmsrs = VM_MAX_MSRS };
	int n, rc;

	if (ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE) > 0) {
		n = ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
		c->xsave2 = n > 0;
		c->xsave_bytes = n > (int)sizeof(struct kvm_xsave) ? (uint32_t)n
								   : sizeof(struct kvm_xsave);
	}
	c->sregs2 = ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_SREGS2) > 0;
	c->xcrs = ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XCRS) > 0;
	n = ioctl(vm->vcpu[0].fd, KVM_GET_TSC_KHZ, 0);
	c->tsc_khz = n > 0 ? (uint32_t)n : 0;
	if (ioctl(vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, &list.hdr) < 0) {
		rc = -errno;
		snprintf(err, errlen, "KVM_GET_MSR_INDEX_LIST: %s", strerror(-rc));
		return rc;
	}
	c->nmsrs = 0;
	for (uint32_t i = 0; i < list.hdr.nmsrs && i < VM_MAX_MSRS; i++)
		msr_probe_one(vm, list.hdr.indices[i]);
	for (size_t i = 0; i < sizeof(msr_extra) / sizeof(msr_extra[0]); i++)
		msr_probe_one(vm, msr_extra[i]);
	return 0;
}

/* ioctl that fills *arg, or a reason in err naming what failed. */
static int vcpu_ioctl(struct vcpu *v, unsigned long req, void *arg, const char *what, char *err,
		      size_t errlen)
{
	int rc;

	if (ioctl(v->fd, req, arg) >= 0)
		return 0;
	rc = -errno;
	snprintf(err, errlen, "vCPU %u: %s: %s", v->id, what, strerror(-rc));
	return rc;
}

static int vcpu_get_msrs(struct vcpu *v, struct vcpu_state *s, char *err, size_t errlen)
{
	const struct vm_caps *c = &v->vm->caps;
	struct msr_buf b = { .hdr.nmsrs = c->nmsrs };
	int n;

	for (unsigned i = 0; i < c->nmsrs; i++)
		b.hdr.entries[i].index = c->msr_index[i];
	n = ioctl(v->fd, KVM_GET_MSRS, &b.hdr);
	if (n != (int)c->nmsrs) {
		snprintf(err, errlen, "vCPU %u: KVM_GET_MSRS read %d of %u MSRs (stopped at 0x%x)",
			 v->id, n, c->nmsrs, n >= 0 && n < (int)c->nmsrs ? c->msr_index[n] : 0);
		return n < 0 ? -errno : -EIO;
	}
	s->nmsrs = c->nmsrs;
	memcpy(s->msrs, b.hdr.entries, c->nmsrs * sizeof(struct kvm_msr_entry));
	return 0;
}

int vcpu_state_get(struct vcpu *v, struct vcpu_state *s, char *err, size_t errlen)
{
	const struct vm_caps *c = &v->vm->caps;
	int rc;

	s->id = v->id;
	rc = vcpu_ioctl(v, KVM_GET_REGS, &s->regs, "KVM_GET_REGS", err, errlen);
	if (rc == 0 && c->sregs2) {
		s->sregs_kind = VS_SREGS_KIND_SREGS2;
		rc = vcpu_ioctl(v, KVM_GET_SREGS2, &s->sregs2, "KVM_GET_SREGS2", err, errlen);
	} else if (rc == 0) {
		s->sregs_kind = VS_SREGS_KIND_SREGS;
		rc = vcpu_ioctl(v, KVM_GET_SREGS, &s->sregs, "KVM_GET_SREGS", err, errlen);
	}
	if (rc == 0 && c->xsave_bytes) {
		s->fpu_kind = VS_FPU_KIND_XSAVE;
		s->xsave_bytes = c->xsave_bytes;
		s->xsave = calloc(1, c->xsave_bytes);
		if (!s->xsave)
			return -ENOMEM;
		rc = vcpu_ioctl(v, c->xsave2 ? KVM_GET_XSAVE2 : KVM_GET_XSAVE, s->xsave,
				"KVM_GET_XSAVE", err, errlen);
	} else if (rc == 0) {
		s->fpu_kind = VS_FPU_KIND_FPU;
		rc = vcpu_ioctl(v, KVM_GET_FPU, &s->fpu, "KVM_GET_FPU", err, errlen);
	}
	if (rc == 0 && c->xcrs)
		rc = vcpu_ioctl(v, KVM_GET_XCRS, &s->xcrs, "KVM_GET_XCRS", err, errlen);
	if (rc == 0)
		rc = vcpu_get_msrs(v, s, err, errlen);
	if (rc == 0)
		rc = vcpu_ioctl(v, KVM_GET_LAPIC, &s->lapic, "KVM_GET_LAPIC", err, errlen);
	if (rc == 0)
		rc = vcpu_ioctl(v, KVM_GET_VCPU_EVENTS, &s->events, "KVM_GET_VCPU_EVENTS", err,
				errlen);
	if (rc == 0)
		rc = vcpu_ioctl(v, KVM_GET_MP_STATE, &s->mp_state, "KVM_GET_MP_STATE", err, errlen);
	if (rc == 0)
		rc = vcpu_ioctl(v, KVM_GET_DEBUGREGS, &s->debugregs, "KVM_GET_DEBUGREGS", err,
				errlen);
	return rc;
}

/* KVM_SET_MSRS for the entries of s that pick selects; all must be taken. */
static int vcpu_set_msrs(struct vcpu *v, const struct vcpu_state *s, bool (*pick)(uint32_t),
			 char *err, size_t errlen)
{
	struct msr_buf b = { .hdr.nmsrs = 0 };
	int n;

	for (uint32_t i = 0; i < s->nmsrs; i++) {
		if (pick(s->msrs[i].index))
			b.hdr.entries[b.hdr.nmsrs++] = s->msrs[i];
	}
	if (b.hdr.nmsrs == 0)
		return 0;
	n = ioctl(v->fd, KVM_SET_MSRS, &b.hdr);
	if (n != (int)b.hdr.nmsrs) {
		snprintf(err, errlen, "vCPU %u: this host's KVM refused MSR 0x%x (set %d of %u)",
			 v->id, n >= 0 ? b.hdr.entries[n].index : 0, n, b.hdr.nmsrs);
		return n < 0 ? -errno : -EINVAL;
	}
	return 0;
}

static bool msr_is_plain(uint32_t index)
{
	return index != MSR_IA32_TSC && index != MSR_IA32_TSC_DEADLINE;
}

static bool msr_is_deadline(uint32_t index)
{
	return index == MSR_IA32_TSC_DEADLINE;
}

static bool msr_is_tsc(uint32_t index)
{
	return index == MSR_IA32_TSC;
}

/* kvm_sregs from kvm_sregs2, for a host without KVM_SET_SREGS2 (PDPTRs are reloaded). */
static void sregs_from_sregs2(struct kvm_sregs *d, const struct kvm_sregs2 *s)
{
	memset(d, 0, sizeof(*d));
	d->cs = s->cs, d->ds = s->ds, d->es = s->es, d->fs = s->fs, d->gs = s->gs, d->ss = s->ss;
	d->tr = s->tr, d->ldt = s->ldt, d->gdt = s->gdt, d->idt = s->idt;
	d->cr0 = s->cr0, d->cr2 = s->cr2, d->cr3 = s->cr3, d->cr4 = s->cr4, d->cr8 = s->cr8;
	d->efer = s->efer;
	d->apic_base = s->apic_base;
}

static int vcpu_set_fpu(struct vcpu *v, const struct vcpu_state *s, char *err, size_t errlen)
{
	const struct vm_caps *c = &v->vm->caps;
	uint8_t *buf;
	int rc;

	if (s->fpu_kind == VS_FPU_KIND_FPU)
		return vcpu_ioctl(v, KVM_SET_FPU, (void *)&s->fpu, "KVM_SET_FPU", err, errlen);
	if (!c->xsave_bytes || s->xsave_bytes > c->xsave_bytes) {
		snprintf(err, errlen, "vCPU %u: the saved %u-byte XSAVE state does not fit this "
			 "host's %u bytes", v->id, s->xsave_bytes, c->xsave_bytes);
		return -ENOTSUP;
	}
	buf = calloc(1, c->xsave_bytes);
	if (!buf)
		return -ENOMEM;
	memcpy(buf, s->xsave, s->xsave_bytes);
	rc = vcpu_ioctl(v, KVM_SET_XSAVE, buf, "KVM_SET_XSAVE", err, errlen);
	free(buf);
	return rc;
}

int vcpu_state_set(struct vcpu *v, const struct vcpu_state *s, char *err, size_t errlen)
{
	const struct vm_caps *c = &v->vm->caps;
	struct kvm_vcpu_events ev = s->events;
	struct kvm_sregs sregs;
	int rc;

	/* Segments, control registers and EFER first: the MSRs and LAPIC depend on them. */
	if (s->sregs_kind == VS_SREGS_KIND_SREGS2 && c->sregs2) {
		rc = vcpu_ioctl(v, KVM_SET_SREGS2, (void *)&s->sregs2, "KVM_SET_SREGS2", err, errlen);
	} else if (s->sregs_kind == VS_SREGS_KIND_SREGS2) {
		sregs_from_sregs2(&sregs, &s->sregs2);
		rc = vcpu_ioctl(v, KVM_SET_SREGS, &sregs, "KVM_SET_SREGS", err, errlen);
	} else {
		rc = vcpu_ioctl(v, KVM_SET_SREGS, (void *)&s->sregs, "KVM_SET_SREGS", err, errlen);
	}
	if (rc == 0)
		rc = vcpu_ioctl(v, KVM_SET_REGS, (void *)&s->regs, "KVM_SET_REGS", err, errlen);
	if (rc == 0)
		rc = vcpu_set_fpu(v, s, err, errlen);
	if (rc == 0 && s->xcrs.nr_xcrs) {
		if (!c->xcrs) {
			snprintf(err, errlen, "vCPU %u: the state has XCRs, this KVM cannot set them",
				 v->id);
			return -ENOTSUP;
		}
		rc = vcpu_ioctl(v, KVM_SET_XCRS, (void *)&s->xcrs, "KVM_SET_XCRS", err, errlen);
	}
	if (rc == 0)
		rc = vcpu_set_msrs(v, s, msr_is_plain, err, errlen);
	if (rc == 0)
		rc = vcpu_ioctl(v, KVM_SET_LAPIC, (void *)&s->lapic, "KVM_SET_LAPIC", err, errlen);
	/* The deadline only sticks once the LAPIC timer is in TSC-deadline mode. */
	if (rc == 0)
		rc = vcpu_set_msrs(v, s, msr_is_deadline, err, errlen);
	if (rc == 0)
		rc = vcpu_ioctl(v, KVM_SET_MP_STATE, (void *)&s->mp_state, "KVM_SET_MP_STATE", err,
				errlen);
	/*
	 * After the LAPIC, which would otherwise clobber them. GET reports which fields it
	 * filled in flags; NMI_PENDING and SIPI_VECTOR are always worth restoring.
	 */
	ev.flags &= KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM |
		    KVM_VCPUEVENT_VALID_PAYLOAD | KVM_VCPUEVENT_VALID_TRIPLE_FAULT;
	ev.flags |= KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR;
	if (rc == 0)
		rc = vcpu_ioctl(v, KVM_SET_VCPU_EVENTS, &ev, "KVM_SET_VCPU_EVENTS", err, errlen);
	if (rc == 0)
		rc = vcpu_ioctl(v, KVM_SET_DEBUGREGS, (void *)&s->debugregs, "KVM_SET_DEBUGREGS",
				err, errlen);
	return rc;
}

int vcpu_state_set_tsc(struct vcpu *v, const struct vcpu_state *s, char *err, size_t errlen)
{
	return vcpu_set_msrs(v, s, msr_is_tsc, err, errlen);
}

bool vcpu_state_tsc(const struct vcpu_state *s, uint64_t *tsc)
{
	for (uint32_t i = 0; i < s->nmsrs; i++) {
		if (s->msrs[i].index == MSR_IA32_TSC) {
			*tsc = s->msrs[i].data;
			return true;
		}
	}
	return false;
}

/*
 * Why not trust the KVM_SET_MSRS of IA32_TSC alone: KVM reads a host write of the TSC
 * that lands within a second of where the VM's own TSC is expected to be as an attempt
 * to synchronise vCPUs, and keeps the VM's offset instead (kvm_synchronize_tsc). A shell
 * made moments ago is expected near 0, so a guest saved less than a second into its life
 * would see its TSC go back. The TSC offset attribute (KVM_VCPU_TSC_CTRL, since Linux
 * 5.16) is taken as given: read vCPU 0's offset and TSC, move the offset so that TSC
 * reads target, and give every vCPU that same offset, so they stay in step.
 */
int vcpu_state_tsc_resume(struct vm *vm, uint64_t target, char *err, size_t errlen)
{
	struct kvm_device_attr attr = { .group = KVM_VCPU_TSC_CTRL, .attr = KVM_VCPU_TSC_OFFSET };
	struct msr_buf b = { .hdr.nmsrs = 1 };
	uint64_t offset = 0;
	int rc;

	if (ioctl(vm->vcpu[0].fd, KVM_HAS_DEVICE_ATTR, &attr) < 0)
		return 0; /* an older KVM: the MSR writes are all there is */
	attr.addr = (uintptr_t)&offset;
	b.hdr.entries[0].index = MSR_IA32_TSC;
	rc = vcpu_ioctl(&vm->vcpu[0], KVM_GET_DEVICE_ATTR, &attr, "reading the TSC offset", err,
			errlen);
	if (rc < 0)
		return rc;
	if (ioctl(vm->vcpu[0].fd, KVM_GET_MSRS, &b.hdr) != 1) {
		snprintf(err, errlen, "vCPU 0: KVM_GET_MSRS of the TSC failed");
		return -EIO;
	}
	offset += target - b.hdr.entries[0].data; /* modulo 2^64, as KVM adds it */
	for (unsigned i = 0; i < vm->ncpus && rc == 0; i++)
		rc = vcpu_ioctl(&vm->vcpu[i], KVM_SET_DEVICE_ATTR, &attr, "setting the TSC offset",
				err, errlen);
	return rc;
}
