/* Wire layouts of KVM's vCPU and VM state structures, one description for both directions. */
#include "vmm/state/state_priv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void io_regs(struct vs_io *io, struct kvm_regs *r)
{
	__u64 *f[] = {
		&r->rax, &r->rbx, &r->rcx, &r->rdx, &r->rsi, &r->rdi, &r->rsp, &r->rbp,
		&r->r8, &r->r9, &r->r10, &r->r11, &r->r12, &r->r13, &r->r14, &r->r15,
		&r->rip, &r->rflags,
	};

	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		vs_io_k64(io, f[i]);
}

static void io_segment(struct vs_io *io, struct kvm_segment *s)
{
	vs_io_k64(io, &s->base);
	vs_io_u32(io, &s->limit);
	vs_io_u16(io, &s->selector);
	vs_io_u8(io, &s->type);
	vs_io_u8(io, &s->present);
	vs_io_u8(io, &s->dpl);
	vs_io_u8(io, &s->db);
	vs_io_u8(io, &s->s);
	vs_io_u8(io, &s->l);
	vs_io_u8(io, &s->g);
	vs_io_u8(io, &s->avl);
	vs_io_u8(io, &s->unusable);
}

static void io_dtable(struct vs_io *io, struct kvm_dtable *t)
{
	vs_io_k64(io, &t->base);
	vs_io_u16(io, &t->limit);
}

/*
 * The part kvm_sregs and kvm_sregs2 share. A macro, because the two are distinct types
 * with the same member names.
 */
#define IO_SREGS_COMMON(io, s)                                                           \
	do {                                                                             \
		io_segment(io, &(s)->cs);                                                \
		io_segment(io, &(s)->ds);                                                \
		io_segment(io, &(s)->es);                                                \
		io_segment(io, &(s)->fs);                                                \
		io_segment(io, &(s)->gs);                                                \
		io_segment(io, &(s)->ss);                                                \
		io_segment(io, &(s)->tr);                                                \
		io_segment(io, &(s)->ldt);                                               \
		io_dtable(io, &(s)->gdt);                                                \
		io_dtable(io, &(s)->idt);                                                \
		vs_io_k64(io, &(s)->cr0);                                    \
		vs_io_k64(io, &(s)->cr2);                                    \
		vs_io_k64(io, &(s)->cr3);                                    \
		vs_io_k64(io, &(s)->cr4);                                    \
		vs_io_k64(io, &(s)->cr8);                                    \
		vs_io_k64(io, &(s)->efer);                                   \
		vs_io_k64(io, &(s)->apic_base);                              \
	} while (0)

static void io_sregs(struct vs_io *io, struct vcpu_state *s)
{
	vs_io_u32(io, &s->sregs_kind);
	if (s->sregs_kind == VS_SREGS_KIND_SREGS) {
		IO_SREGS_COMMON(io, &s->sregs);
		for (unsigned i = 0; i < 4; i++)
			vs_io_k64(io, &s->sregs.interrupt_bitmap[i]);
	} else if (s->sregs_kind == VS_SREGS_KIND_SREGS2) {
		IO_SREGS_COMMON(io, &s->sregs2);
		vs_io_k64(io, &s->sregs2.flags);
		for (unsigned i = 0; i < 4; i++)
			vs_io_k64(io, &s->sregs2.pdptrs[i]);
	} else if (io->d) {
		io->d->err = -EBADMSG;
	}
}

static void io_fpu(struct vs_io *io, struct vcpu_state *s)
{
	struct kvm_fpu *f = &s->fpu;

	vs_io_u32(io, &s->fpu_kind);
	if (s->fpu_kind == VS_FPU_KIND_FPU) {
		vs_io_bytes(io, f->fpr, sizeof(f->fpr));
		vs_io_u16(io, &f->fcw);
		vs_io_u16(io, &f->fsw);
		vs_io_u8(io, &f->ftwx);
		vs_io_u16(io, &f->last_opcode);
		vs_io_k64(io, &f->last_ip);
		vs_io_k64(io, &f->last_dp);
		vs_io_bytes(io, f->xmm, sizeof(f->xmm));
		vs_io_u32(io, &f->mxcsr);
		return;
	}
	if (s->fpu_kind != VS_FPU_KIND_XSAVE) {
		if (io->d)
			io->d->err = -EBADMSG;
		return;
	}
	vs_io_u32(io, &s->xsave_bytes);
	if (io->d) {
		/* The area is bytes from the wire: bound it before allocating. */
		if (s->xsave_bytes < VS_XSAVE_MIN_BYTES || s->xsave_bytes > VS_XSAVE_MAX_BYTES ||
		    s->xsave_bytes % 4 || s->xsave_bytes > dec_left(io->d)) {
			io->d->err = -EBADMSG;
			return;
		}
		s->xsave = malloc(s->xsave_bytes);
		if (!s->xsave) {
			io->d->err = -ENOMEM;
			return;
		}
	}
	vs_io_bytes(io, s->xsave, s->xsave_bytes);
}

static void io_xcrs(struct vs_io *io, struct kvm_xcrs *x)
{
	vs_io_u32(io, &x->nr_xcrs);
	vs_io_u32(io, &x->flags);
	if (x->nr_xcrs > KVM_MAX_XCRS) {
		if (io->d)
			io->d->err = -EBADMSG;
		return;
	}
	for (uint32_t i = 0; i < x->nr_xcrs; i++) {
		vs_io_u32(io, &x->xcrs[i].xcr);
		vs_io_k64(io, &x->xcrs[i].value);
	}
}

static void io_msrs(struct vs_io *io, struct vcpu_state *s)
{
	vs_io_u32(io, &s->nmsrs);
	if (s->nmsrs > VS_MAX_MSRS) {
		if (io->d)
			io->d->err = -EBADMSG;
		return;
	}
	for (uint32_t i = 0; i < s->nmsrs; i++) {
		vs_io_u32(io, &s->msrs[i].index);
		vs_io_k64(io, &s->msrs[i].data);
	}
}

static void io_events(struct vs_io *io, struct kvm_vcpu_events *ev)
{
	vs_io_u8(io, &ev->exception.injected);
	vs_io_u8(io, &ev->exception.nr);
	vs_io_u8(io, &ev->exception.has_error_code);
	vs_io_u8(io, &ev->exception.pending);
	vs_io_u32(io, &ev->exception.error_code);
	vs_io_u8(io, &ev->interrupt.injected);
	vs_io_u8(io, &ev->interrupt.nr);
	vs_io_u8(io, &ev->interrupt.soft);
	vs_io_u8(io, &ev->interrupt.shadow);
	vs_io_u8(io, &ev->nmi.injected);
	vs_io_u8(io, &ev->nmi.pending);
	vs_io_u8(io, &ev->nmi.masked);
	vs_io_u32(io, &ev->sipi_vector);
	vs_io_u32(io, &ev->flags);
	vs_io_u8(io, &ev->smi.smm);
	vs_io_u8(io, &ev->smi.pending);
	vs_io_u8(io, &ev->smi.smm_inside_nmi);
	vs_io_u8(io, &ev->smi.latched_init);
	vs_io_u8(io, &ev->triple_fault.pending);
	vs_io_u8(io, &ev->exception_has_payload);
	vs_io_k64(io, &ev->exception_payload);
}

static void io_debugregs(struct vs_io *io, struct kvm_debugregs *d)
{
	for (unsigned i = 0; i < 4; i++)
		vs_io_k64(io, &d->db[i]);
	vs_io_k64(io, &d->dr6);
	vs_io_k64(io, &d->dr7);
	vs_io_k64(io, &d->flags);
}

void vs_io_vcpu(struct vs_io *io, struct vcpu_state *s)
{
	vs_io_u32(io, &s->id);
	io_regs(io, &s->regs);
	io_sregs(io, s);
	io_fpu(io, s);
	io_xcrs(io, &s->xcrs);
	io_msrs(io, s);
	vs_io_bytes(io, s->lapic.regs, VS_LAPIC_BYTES);
	io_events(io, &s->events);
	vs_io_u32(io, &s->mp_state.mp_state);
	io_debugregs(io, &s->debugregs);
}

_Static_assert(sizeof(((struct kvm_lapic_state *)0)->regs) == VS_LAPIC_BYTES, "LAPIC page");

void vcpu_state_free(struct vcpu_state *s)
{
	free(s->xsave);
	s->xsave = NULL;
}

static void io_pic(struct vs_io *io, struct kvm_pic_state *p)
{
	uint8_t *f[] = {
		&p->last_irr, &p->irr, &p->imr, &p->isr, &p->priority_add, &p->irq_base,
		&p->read_reg_select, &p->poll, &p->special_mask, &p->init_state, &p->auto_eoi,
		&p->rotate_on_auto_eoi, &p->special_fully_nested_mode, &p->init4, &p->elcr,
		&p->elcr_mask,
	};

	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		vs_io_u8(io, f[i]);
}

void vs_io_irqchip(struct vs_io *io, struct kvm_irqchip chip[3])
{
	struct kvm_ioapic_state *a = &chip[2].chip.ioapic;

	chip[0].chip_id = KVM_IRQCHIP_PIC_MASTER;
	chip[1].chip_id = KVM_IRQCHIP_PIC_SLAVE;
	chip[2].chip_id = KVM_IRQCHIP_IOAPIC;
	io_pic(io, &chip[0].chip.pic);
	io_pic(io, &chip[1].chip.pic);
	vs_io_k64(io, &a->base_address);
	vs_io_u32(io, &a->ioregsel);
	vs_io_u32(io, &a->id);
	vs_io_u32(io, &a->irr);
	for (unsigned i = 0; i < KVM_IOAPIC_NUM_PINS; i++)
		vs_io_k64(io, &a->redirtbl[i].bits);
}

void vs_io_pit(struct vs_io *io, struct kvm_pit_state2 *pit)
{
	vs_io_u32(io, &pit->flags);
	for (unsigned i = 0; i < 3; i++) {
		struct kvm_pit_channel_state *c = &pit->channels[i];

		vs_io_u32(io, &c->count);
		vs_io_u16(io, &c->latched_count);
		vs_io_u8(io, &c->count_latched);
		vs_io_u8(io, &c->status_latched);
		vs_io_u8(io, &c->status);
		vs_io_u8(io, &c->read_state);
		vs_io_u8(io, &c->write_state);
		vs_io_u8(io, &c->write_latch);
		vs_io_u8(io, &c->rw_mode);
		vs_io_u8(io, &c->mode);
		vs_io_u8(io, &c->bcd);
		vs_io_u8(io, &c->gate);
		vs_io_k64(io, (__u64 *)&c->count_load_time); /* __s64: same object size */
	}
}

void vs_io_clock(struct vs_io *io, struct kvm_clock_data *clock)
{
	vs_io_k64(io, &clock->clock);
	vs_io_u32(io, &clock->flags);
}

void vs_io_machine(struct vs_io *io, struct vs_machine *m)
{
	uint32_t reserved = 0;

	vs_io_u32(io, &m->layout);
	vs_io_u32(io, &m->ncpus);
	vs_io_u64(io, &m->ram_bytes);
	vs_io_u64(io, &m->disk_bytes);
	vs_io_u32(io, &m->tsc_khz);
	vs_io_u32(io, &reserved);
}

void vs_enc_cpuid(struct vs_enc *e, const struct cpuid_table *t)
{
	vs_enc_u32(e, t->hdr.nent);
	for (uint32_t i = 0; i < t->hdr.nent; i++) {
		const struct kvm_cpuid_entry2 *c = &t->hdr.entries[i];

		vs_enc_u32(e, c->function);
		vs_enc_u32(e, c->index);
		vs_enc_u32(e, c->flags);
		vs_enc_u32(e, c->eax);
		vs_enc_u32(e, c->ebx);
		vs_enc_u32(e, c->ecx);
		vs_enc_u32(e, c->edx);
	}
}

int vs_dec_cpuid(struct dec *d, struct cpuid_table *t)
{
	uint32_t n;

	dec_u32(d, &n);
	memset(t, 0, sizeof(*t));
	if (d->err || n == 0 || n > CPUID_MAX_ENTRIES || dec_left(d) != (size_t)n * 28)
		return -EBADMSG;
	t->hdr.nent = n;
	for (uint32_t i = 0; i < n; i++) {
		struct kvm_cpuid_entry2 *c = &t->hdr.entries[i];

		dec_u32(d, &c->function);
		dec_u32(d, &c->index);
		dec_u32(d, &c->flags);
		dec_u32(d, &c->eax);
		dec_u32(d, &c->ebx);
		dec_u32(d, &c->ecx);
		dec_u32(d, &c->edx);
	}
	return dec_done(d) ? 0 : -EBADMSG;
}
