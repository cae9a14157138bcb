/* Private to vmm/: the pieces vm_state.c assembles into a state blob, and takes apart. */
#ifndef VMM_STATE_STATE_PRIV_H
#define VMM_STATE_STATE_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/kvm.h>

#include "vmm/x86/cpuid.h"
#include "vmm/state/state_codec.h"
#include "vmm/state/state_format.h"

struct vm;
struct vcpu;

/* One vCPU's state on its way between KVM and the wire (see state_format.h, VCPU). */
struct vcpu_state {
	uint32_t id;
	struct kvm_regs regs;
	uint32_t sregs_kind;        /* VS_SREGS_KIND_* */
	struct kvm_sregs sregs;     /* kind SREGS */
	struct kvm_sregs2 sregs2;   /* kind SREGS2 */
	uint32_t fpu_kind;          /* VS_FPU_KIND_* */
	struct kvm_fpu fpu;         /* kind FPU */
	uint8_t *xsave;             /* kind XSAVE: malloc'd, xsave_bytes long */
	uint32_t xsave_bytes;
	struct kvm_xcrs xcrs;
	uint32_t nmsrs;
	struct kvm_msr_entry msrs[VS_MAX_MSRS];
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events events;
	struct kvm_mp_state mp_state;
	struct kvm_debugregs debugregs;
};

/* VM-wide KVM state: the interrupt controllers, the PIT and kvmclock. */
struct vm_kvm_state {
	struct kvm_irqchip chip[3]; /* KVM_IRQCHIP_PIC_MASTER, _PIC_SLAVE, _IOAPIC */
	struct kvm_pit_state2 pit;
	struct kvm_clock_data clock;
};

/* The MACHINE record. */
struct vs_machine {
	uint32_t layout;
	uint32_t ncpus;
	uint64_t ram_bytes;
	uint64_t disk_bytes;
	uint32_t tsc_khz;
};

/* ---- state_kvm.c: wire layouts of KVM's structures (encode with io.e, decode with io.d) - */

/*
 * The VCPU record's payload. Decoding checks every count against its limit (setting
 * io->d->err to -EBADMSG) and mallocs s->xsave; vcpu_state_free releases it.
 */
void vs_io_vcpu(struct vs_io *io, struct vcpu_state *s);
void vcpu_state_free(struct vcpu_state *s);
void vs_io_irqchip(struct vs_io *io, struct kvm_irqchip chip[3]);
void vs_io_pit(struct vs_io *io, struct kvm_pit_state2 *pit);
void vs_io_clock(struct vs_io *io, struct kvm_clock_data *clock);
void vs_io_machine(struct vs_io *io, struct vs_machine *m);
void vs_enc_cpuid(struct vs_enc *e, const struct cpuid_table *t);
/* Decode a CPUID record into t. Returns 0 or -EBADMSG (count out of range, bad length). */
int vs_dec_cpuid(struct dec *d, struct cpuid_table *t);

/* ---- vcpu_state.c: KVM <-> struct vcpu_state ------------------------------------------- */

/*
 * Learn what this KVM can save and restore: XSAVE size, SREGS2, XCRS, and which MSRs
 * KVM_GET_MSRS and KVM_SET_MSRS both accept, probed one at a time on vCPU 0 (KVM
 * lists some it refuses to set, such as 0x10a on PVM). Call once, after every vCPU
 * exists and before any runs. Returns 0 or -errno with a reason in err.
 */
int vcpu_state_probe(struct vm *vm, char *err, size_t errlen);
/* Read v's whole state into s (s->xsave malloc'd). The vCPU is outside KVM_RUN. */
int vcpu_state_get(struct vcpu *v, struct vcpu_state *s, char *err, size_t errlen);
/*
 * Write s into v, in the order KVM needs: sregs, regs, FPU/XSAVE, XCRs, MSRs (but the
 * TSC and TSC deadline), LAPIC, TSC deadline, MP state, events, debug registers. The TSC
 * is left to vcpu_state_set_tsc, which the caller runs for all vCPUs last, together.
 */
int vcpu_state_set(struct vcpu *v, const struct vcpu_state *s, char *err, size_t errlen);
int vcpu_state_set_tsc(struct vcpu *v, const struct vcpu_state *s, char *err, size_t errlen);
/* The saved IA32_TSC of s, if it has one. */
bool vcpu_state_tsc(const struct vcpu_state *s, uint64_t *tsc);
/*
 * After vcpu_state_set_tsc on every vCPU: make all their TSCs read target now (the
 * largest saved value), through KVM_VCPU_TSC_OFFSET where KVM has it. Returns 0 or
 * -errno with a reason in err.
 */
int vcpu_state_tsc_resume(struct vm *vm, uint64_t target, char *err, size_t errlen);

/* ---- vm_restore.c: a blob decoded and checked, before KVM sees any of it --------------- */

/* The machine a blob is loaded into. */
struct vs_shape {
	uint64_t ram_bytes;
	uint64_t disk_bytes; /* 0: no disk */
	unsigned ncpus;      /* 1..LAYOUT_MAX_VCPUS */
	bool has_blk;        /* a virtio-blk device, which the blob must then describe */
	unsigned nnets;      /* NICs, as many as the blob's VIRTIO_NET record must hold */
};

/* The device models whose records a blob carries; blk NULL without a disk. */
struct serial;
struct pm_dev;
struct pci_bus;
struct virtio_blk;
struct virtio_net;
struct vs_devices {
	struct serial *serial;
	struct pm_dev *pm;
	struct pci_bus *pci;
	struct virtio_blk *blk;
	struct virtio_net *const *net; /* nnets of them */
	unsigned nnets;
};

/* A decoded blob (vm_restore.c). */
struct vs_restore;

/*
 * The first half of vm_state_load, which touches no KVM state (out, shape, host, blob,
 * len, err, errlen): index the records (each known type once, MACHINE first), check the
 * machine against shape, decode CPUID (refusing features host, KVM_GET_SUPPORTED_CPUID's
 * answer, lacks), every vCPU, the interrupt controllers, PIT and clock, each record
 * consumed exactly. Returns 0 with *out to free with vs_restore_free; -EBADMSG,
 * -EPROTONOSUPPORT, -EINVAL (another machine), -ENOTSUP (CPU features) or -ENOMEM with
 * the reason in err. vs_restore_devices then applies the device records. The fuzz
 * harness tests/fuzz/fuzz_state.c runs both on device models without a VM.
 */
int vs_restore_decode(struct vs_restore **out, const struct vs_shape *shape,
		      const struct cpuid_table *host, const uint8_t *blob, size_t len, char *err,
		      size_t errlen);

/*
 * Load the SERIAL, PM, PCI and (with dev->blk) VIRTIO_BLK records of r into the devices
 * (r, dev, err, errlen); each device checks its whole payload before it changes anything.
 * Returns 0, or the first device's -EBADMSG / -EINVAL with the record in err.
 */
int vs_restore_devices(const struct vs_restore *r, const struct vs_devices *dev, char *err,
		       size_t errlen);

void vs_restore_free(struct vs_restore *r);

/* ---- state_blob.c: the container -------------------------------------------------------- */

struct vs_record {
	uint16_t type;
	const uint8_t *payload;
	uint32_t len;
};

/* Start a blob: the header, with its total patched in by vs_blob_finish. */
void vs_blob_begin(struct vs_enc *e);
/* Patch the total length and append the CRC32C trailer. */
void vs_blob_finish(struct vs_enc *e);
/*
 * Check a blob's header (magic, version, flags, total == len) and trailer, and point
 * records at its records. Returns 0, or -EBADMSG / -EPROTONOSUPPORT with a reason in err.
 */
int vs_blob_open(const uint8_t *blob, size_t len, struct dec *records, char *err,
		 size_t errlen);
/*
 * The next record into rec: returns 1, 0 at the end, or -EBADMSG (type 0, reserved bits,
 * a length past the end) with a reason in err.
 */
int vs_blob_next(struct dec *records, struct vs_record *rec, char *err, size_t errlen);
/* Open blob and find the first record of type. Returns 0, -ENOENT, or a vs_blob_open error. */
int vs_blob_find(const uint8_t *blob, size_t len, uint16_t type, struct vs_record *rec,
		 char *err, size_t errlen);

/*
 * Split a VIRTIO_NET record's payload into its NICs' payloads (nic[0..*count), pointing
 * into payload). Returns 0, or -EBADMSG for a count out of 1..VS_MAX_NICS, a NIC payload
 * over VS_NIC_MAX_BYTES or past the end, or bytes left over.
 */
int vs_nics_split(const uint8_t *payload, size_t len, struct vs_record nic[VS_MAX_NICS],
		  unsigned *count);

/*
 * For tests and diagnostics: the value vCPU vcpu's MSR index had in blob. Returns 0,
 * -ENOENT if the blob holds no such vCPU or MSR, or another -errno for a bad blob.
 */
int vs_blob_msr(const uint8_t *blob, size_t len, unsigned vcpu, uint32_t index,
		uint64_t *value);

#endif
