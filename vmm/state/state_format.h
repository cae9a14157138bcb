/* The VM state blob's wire format: header, typed records, CRC32C trailer. */
#ifndef VMM_STATE_STATE_FORMAT_H
#define VMM_STATE_STATE_FORMAT_H

#include <stdint.h>

/*
 * A blob from vm_state_save. Every integer is little-endian, written and read by
 * vmm/state/state_codec.h; nothing is a struct image.
 *
 *   +0     magic "GWVS"                4 bytes
 *   +4     format version u32          VS_FORMAT_VERSION
 *   +8     flags u32                   none defined: a set bit is rejected
 *   +12    reserved u32                0
 *   +16    total bytes u64             header + records + trailer = the blob's length
 *   +24    records, back to back:
 *            +0 type u16               0 is invalid; VS_REC_OPTIONAL set = skip if unknown
 *            +2 reserved u16           0
 *            +4 length u32             payload bytes that follow
 *            +8 payload
 *   total-4  CRC32C u32 of bytes [0, total - 4)
 *
 * Records vm_state_save writes, in this order (the loader needs MACHINE first, every
 * other record at most once, VCPU once per id, and nothing of an unknown type unless
 * VS_REC_OPTIONAL is set in it; no optional type exists yet):
 *
 *   MACHINE    layout u32 (VS_LAYOUT_VERSION), ncpus u32, ram bytes u64, disk bytes u64
 *              (0: no disk), TSC kHz u32 (0: unknown), reserved u32
 *   CPUID      count u32 (1..CPUID_MAX_ENTRIES), then count x {function, index, flags,
 *              eax, ebx, ecx, edx} u32: the VM's policy table before per-vCPU identity
 *   VCPU       id u32, then in order:
 *              regs      rax rbx rcx rdx rsi rdi rsp rbp r8..r15 rip rflags (18 x u64)
 *              sregs     kind u32 (1 kvm_sregs, 2 kvm_sregs2); 8 segments cs ds es fs gs
 *                        ss tr ldt {base u64, limit u32, selector u16, type present dpl db
 *                        s l g avl unusable u8}; gdt idt {base u64, limit u16}; cr0 cr2 cr3
 *                        cr4 cr8 efer apic_base u64; kind 1: interrupt bitmap 4 x u64;
 *                        kind 2: flags u64, pdptrs 4 x u64
 *              fpu       kind u32 (1 kvm_fpu, 2 XSAVE area); kind 1: fpr 128 bytes, fcw u16,
 *                        fsw u16, ftwx u8, last opcode u16, last ip u64, last dp u64, xmm
 *                        256 bytes, mxcsr u32; kind 2: bytes u32, then the XSAVE area
 *              xcrs      count u32 (0..KVM_MAX_XCRS), flags u32, count x {xcr u32, value u64}
 *              msrs      count u32 (0..VS_MAX_MSRS), count x {index u32, data u64}
 *              lapic     the 1024-byte register page of KVM_GET_LAPIC
 *              events    exception {injected nr has_error_code pending u8, error code u32},
 *                        interrupt {injected nr soft shadow u8}, nmi {injected pending
 *                        masked u8}, sipi vector u32, flags u32, smi {smm pending
 *                        smm_inside_nmi latched_init u8}, triple fault pending u8,
 *                        exception has payload u8, exception payload u64
 *              mp state  u32
 *              debug     db0 db1 db2 db3 dr6 dr7 flags (7 x u64)
 *   IRQCHIP    PIC master, PIC slave (16 x u8 each, kvm_pic_state's field order), IOAPIC
 *              {base u64, ioregsel u32, id u32, irr u32, 24 redirection entries u64}
 *   PIT        flags u32, 3 channels {count u32, latched count u16, count_latched
 *              status_latched status read_state write_state write_latch rw_mode mode bcd
 *              gate u8, count load time u64}
 *   CLOCK      kvmclock ns u64, flags u32 (as KVM_GET_CLOCK gave them)
 *   SERIAL     see serial_state_save (vmm/serial.c)
 *   PM         see pm_state_save (vmm/x86/pm.c)
 *   PCI        see pci_state_save (vmm/virtio/pci.c)
 *   VIRTIO_BLK see virtio_blk_state_save (vmm/virtio/virtio_blk.c); only with a disk
 *   VIRTIO_NET NIC count u32 (1..VS_MAX_NICS), then per NIC in PCI order: payload bytes
 *              u32 and the payload of virtio_net_state_save (vmm/virtio/virtio_net_state.c);
 *              only with NICs, so a blob of a VM without one is as before
 *
 * Changing this layout, any record's payload, or what a field means requires a
 * VS_FORMAT_VERSION bump (and so does changing vmm/x86/layout.h's fixed addresses, which
 * VS_LAYOUT_VERSION stands for).
 *
 * Compatibility (repo/README.md, "Compatibility"): a reader loads every version from
 * 1 to VS_FORMAT_VERSION (a bump keeps the older versions' decoding), and refuses a newer
 * version, an unknown header flag, or an unknown record type without VS_REC_OPTIONAL with
 * one line naming both versions and "upgrade godwit". A record type a later release adds
 * is written with VS_REC_OPTIONAL set only if a VM loaded without it runs correctly (an
 * older reader skips it: state it can rebuild or a device the VM can lose without harm);
 * otherwise it is mandatory and an older reader refuses the blob. A newer reader of an
 * older blob that lacks such a record gives the device its reset state.
 */
#define VS_MAGIC "GWVS"
#define VS_FORMAT_VERSION 1u
#define VS_LAYOUT_VERSION 1u
#define VS_HEADER_BYTES 24u
#define VS_RECORD_HEADER_BYTES 8u
#define VS_TRAILER_BYTES 4u

#define VS_REC_OPTIONAL 0x8000u

enum vs_record_type {
	VS_REC_INVALID = 0,
	VS_REC_MACHINE = 1,
	VS_REC_CPUID = 2,
	VS_REC_VCPU = 3,
	VS_REC_IRQCHIP = 4,
	VS_REC_PIT = 5,
	VS_REC_CLOCK = 6,
	VS_REC_SERIAL = 7,
	VS_REC_PM = 8,
	VS_REC_PCI = 9,
	VS_REC_VIRTIO_BLK = 10,
	VS_REC_VIRTIO_NET = 11,
	VS_REC_COUNT /* one past the last known type */
};

#define VS_SREGS_KIND_SREGS 1u
#define VS_SREGS_KIND_SREGS2 2u
#define VS_FPU_KIND_FPU 1u
#define VS_FPU_KIND_XSAVE 2u

#define VS_MAX_MSRS 256u
#define VS_LAPIC_BYTES 1024u
#define VS_XSAVE_MIN_BYTES 4096u         /* struct kvm_xsave's legacy region */
#define VS_XSAVE_MAX_BYTES (1u << 20)    /* AMX is 11 KiB; anything near this is corrupt */
#define VS_MACHINE_BYTES 32u
#define VS_MAX_NICS 7u                   /* VM_MAX_NICS */
#define VS_NIC_MAX_BYTES 4096u           /* a NIC's payload is under 1 KiB */

_Static_assert(VS_HEADER_BYTES == 4 + 4 + 4 + 4 + 8, "header layout");
_Static_assert(VS_RECORD_HEADER_BYTES == 2 + 2 + 4, "record header layout");
_Static_assert(VS_MACHINE_BYTES == 4 + 4 + 8 + 8 + 4 + 4, "machine record layout");
_Static_assert((VS_REC_COUNT & VS_REC_OPTIONAL) == 0, "known types are all mandatory");

#endif
