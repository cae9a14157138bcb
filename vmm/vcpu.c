/* vCPUs: creation, initial CPU state, one thread each, and the KVM_RUN exit switch. */
#include "vmm/vm_priv.h"

#include <errno.h>
#include <stdlib.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define VCPU_KICK_SIGNAL SIGUSR1

/* MSR numbers (Intel SDM vol. 4). */
#define MSR_IA32_TSC            0x10
#define MSR_IA32_SYSENTER_CS    0x174
#define MSR_IA32_SYSENTER_ESP   0x175
#define MSR_IA32_SYSENTER_EIP   0x176
#define MSR_IA32_MISC_ENABLE    0x1a0
#define MSR_MTRR_DEF_TYPE       0x2ff
#define MSR_STAR                0xc0000081
#define MSR_LSTAR               0xc0000082
#define MSR_CSTAR               0xc0000083
#define MSR_SYSCALL_MASK        0xc0000084
#define MSR_KERNEL_GS_BASE      0xc0000102

#define MISC_ENABLE_FAST_STRING 1ULL
#define MTRR_DEF_TYPE_ENABLE_WB ((1ULL << 11) | 6)

#define APIC_LVT0_OFF 0x350
#define APIC_LVT1_OFF 0x360
#define APIC_MODE_EXTINT 0x7
#define APIC_MODE_NMI 0x4

static void vcpu_kick_handler(int sig)
{
	(void)sig;
}

int vcpu_signal_setup(void)
{
	struct sigaction sa = { .sa_handler = vcpu_kick_handler };

	/* No SA_RESTART: KVM_RUN must return -EINTR to the vCPU thread. */
	sigemptyset(&sa.sa_mask);
	if (sigaction(VCPU_KICK_SIGNAL, &sa, NULL) < 0)
		return -errno;
	return 0;
}

/* struct kvm_msrs with room for its entries (hdr.entries is a flexible array). */
struct msr_list {
	union {
		struct kvm_msrs hdr;
		uint8_t storage[sizeof(struct kvm_msrs) + 16 * sizeof(struct kvm_msr_entry)];
	};
};

static int vcpu_set_boot_msrs(struct vcpu *v, char *err, size_t errlen)
{
	static const struct { uint32_t index; uint64_t value; } boot_msrs[] = {
		{ MSR_IA32_SYSENTER_CS, 0 },
		{ MSR_IA32_SYSENTER_ESP, 0 },
		{ MSR_IA32_SYSENTER_EIP, 0 },
		{ MSR_STAR, 0 },
		{ MSR_CSTAR, 0 },
		{ MSR_KERNEL_GS_BASE, 0 },
		{ MSR_SYSCALL_MASK, 0 },
		{ MSR_LSTAR, 0 },
		{ MSR_IA32_TSC, 0 },
		{ MSR_IA32_MISC_ENABLE, MISC_ENABLE_FAST_STRING },
		{ MSR_MTRR_DEF_TYPE, MTRR_DEF_TYPE_ENABLE_WB },
	};
	const unsigned n = sizeof(boot_msrs) / sizeof(boot_msrs[0]);
	struct msr_list l = { .hdr.nmsrs = n };
	int rc;

	for (unsigned i = 0; i < n; i++) {
		l.hdr.entries[i].index = boot_msrs[i].index;
		l.hdr.entries[i].data = boot_msrs[i].value;
	}
	/* KVM_SET_MSRS returns how many it set: it stops at the first MSR it refuses. */
	rc = ioctl(v->fd, KVM_SET_MSRS, &l);
	if (rc < 0) {
		rc = -errno;
		snprintf(err, errlen, "vCPU %u: KVM_SET_MSRS: %s", v->id, strerror(-rc));
		return rc;
	}
	if ((unsigned)rc != n) {
		snprintf(err, errlen, "vCPU %u: KVM refused MSR 0x%x (set %d of %u)", v->id,
			 l.hdr.entries[rc].index, rc, n);
		return -EINVAL;
	}
	return 0;
}

static int vcpu_set_lapic_lints(struct vcpu *v)
{
	struct kvm_lapic_state lapic;
	uint32_t lvt;

	if (ioctl(v->fd, KVM_GET_LAPIC, &lapic) < 0)
		return -errno;
	/* As a PC's firmware leaves them: LINT0 takes the PIC (ExtINT), LINT1 is NMI. */
	memcpy(&lvt, lapic.regs + APIC_LVT0_OFF, 4);
	lvt = (lvt & ~0x700u & ~(1u << 16)) | (APIC_MODE_EXTINT << 8);
	memcpy(lapic.regs + APIC_LVT0_OFF, &lvt, 4);
	memcpy(&lvt, lapic.regs + APIC_LVT1_OFF, 4);
	lvt = (lvt & ~0x700u & ~(1u << 16)) | (APIC_MODE_NMI << 8);
	memcpy(lapic.regs + APIC_LVT1_OFF, &lvt, 4);
	if (ioctl(v->fd, KVM_SET_LAPIC, &lapic) < 0)
		return -errno;
	return 0;
}

int vcpu_set_cpuid(struct vcpu *v, const struct cpuid_table *table, char *err, size_t errlen)
{
	struct cpuid_table *t = malloc(sizeof(*t));
	int rc = 0;

	if (!t) {
		snprintf(err, errlen, "vCPU %u: CPUID: out of memory", v->id);
		return -ENOMEM;
	}
	memcpy(t, table, sizeof(*t));
	cpuid_set_vcpu(t, v->id, v->vm->ncpus);
	if (ioctl(v->fd, KVM_SET_CPUID2, &t->hdr) < 0) {
		rc = -errno;
		snprintf(err, errlen, "vCPU %u: KVM_SET_CPUID2: %s", v->id, strerror(-rc));
	}
	free(t);
	return rc;
}

int vcpu_init(struct vm *vm, unsigned id, char *err, size_t errlen)
{
	struct vcpu *v = &vm->vcpu[id];
	struct kvm_fpu fpu = { .fcw = 0x37f, .mxcsr = 0x1f80 };
	int rc;

	v->vm = vm;
	v->id = id;
	v->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)id);
	if (v->fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "KVM_CREATE_VCPU %u: %s", id, strerror(-rc));
		return rc;
	}
	v->run = mmap(NULL, vm->run_mmap_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (v->run == MAP_FAILED) {
		rc = -errno;
		v->run = NULL;
		snprintf(err, errlen, "mmap kvm_run of vCPU %u: %s", id, strerror(-rc));
		goto err_close;
	}
	if (vm->dirty.backend == VM_DIRTY_RING) {
		rc = dirty_ring_vcpu_map(v);
		if (rc < 0) {
			snprintf(err, errlen, "mmap dirty ring of vCPU %u: %s", id, strerror(-rc));
			goto err_unmap;
		}
	}
	rc = vcpu_set_cpuid(v, vm->cpuid, err, errlen);
	if (rc < 0)
		goto err_unmap;
	rc = vcpu_set_boot_msrs(v, err, errlen);
	if (rc < 0)
		goto err_unmap;
	if (ioctl(v->fd, KVM_SET_FPU, &fpu) < 0) {
		rc = -errno;
		snprintf(err, errlen, "vCPU %u: KVM_SET_FPU: %s", id, strerror(-rc));
		goto err_unmap;
	}
	rc = vcpu_set_lapic_lints(v);
	if (rc < 0) {
		snprintf(err, errlen, "vCPU %u: LAPIC LINT setup: %s", id, strerror(-rc));
		goto err_unmap;
	}
	return 0;
err_unmap:
	dirty_ring_vcpu_unmap(v);
	munmap(v->run, vm->run_mmap_bytes);
	v->run = NULL;
err_close:
	close(v->fd);
	v->fd = -1;
	return rc;
}

void vcpu_fini(struct vcpu *v)
{
	dirty_ring_vcpu_unmap(v);
	if (v->run)
		munmap(v->run, v->vm->run_mmap_bytes);
	if (v->fd >= 0)
		close(v->fd);
	v->run = NULL;
	v->fd = -1;
}

void vcpu_kick_all(struct vm *vm)
{
	for (unsigned i = 0; i < vm->ncpus; i++) {
		struct vcpu *v = &vm->vcpu[i];

		if (!v->thread_started)
			continue;
		/*
		 * 1. set immediate_exit: a vCPU about to enter KVM_RUN returns -EINTR at once;
		 * 2. signal: a vCPU inside KVM_RUN is interrupted and returns -EINTR.
		 * Either way it re-reads pause_req/stop_req under vm->lock, which the caller
		 * set before kicking.
		 */
		__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
		pthread_kill(v->thread, VCPU_KICK_SIGNAL);
	}
}

static void vcpu_io(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	bool is_write = run->io.direction == KVM_EXIT_IO_OUT;
	unsigned size = run->io.size;

	/* String I/O (rep outsb) arrives as count back-to-back elements in one page. */
	if (size == 0 || size > 8 ||
	    run->io.data_offset + (uint64_t)run->io.count * size > v->vm->run_mmap_bytes)
		return;
	for (uint32_t i = 0; i < run->io.count; i++, data += size)
		bus_access(&v->vm->pio, run->io.port, is_write, data, size);
}

static void vcpu_mmio(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	unsigned len = run->mmio.len;

	if (len == 0 || len > sizeof(run->mmio.data))
		return;
	bus_access(&v->vm->mmio, run->mmio.phys_addr, run->mmio.is_write, run->mmio.data, len);
}

/* Guest-virtual to host pointer through KVM_TRANSLATE, for reporting only. */
static const uint8_t *vcpu_gva_ptr(struct vcpu *v, uint64_t gva, uint64_t len)
{
	struct kvm_translation tr = { .linear_address = gva };

	if (ioctl(v->fd, KVM_TRANSLATE, &tr) < 0 || !tr.valid)
		return NULL;
	return guest_mem_ptr(&v->vm->mem, tr.physical_address, len);
}

/* Fill where the vCPU stopped: RIP and up to 16 instruction bytes. */
static void vcpu_fault_site(struct vcpu *v, struct vm_exit_info *info)
{
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	uint64_t lin;

	info->vcpu = v->id;
	if (ioctl(v->fd, KVM_GET_REGS, &regs) < 0 || ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0)
		return;
	info->rip = regs.rip;
	lin = (sregs.efer & (1u << 10)) ? regs.rip : sregs.cs.base + regs.rip;
	for (unsigned i = 0; i < sizeof(info->insn); i++) {
		const uint8_t *p = (sregs.cr0 & (1u << 31)) ? vcpu_gva_ptr(v, lin + i, 1)
							      : guest_mem_ptr(&v->vm->mem, lin + i, 1);
		if (!p)
			break;
		info->insn[i] = *p;
		info->insn_len = i + 1;
	}
}

static void vcpu_fail(struct vcpu *v, enum vm_exit_kind kind, const char *detail)
{
	struct vm_exit_info info = { .kind = kind };

	snprintf(info.detail, sizeof(info.detail), "%s", detail);
	vcpu_fault_site(v, &info);
	vm_stop_with(v->vm, &info);
}

/* Handle one exit. Returns false when this vCPU should stop running. */
static bool vcpu_handle_exit(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	char detail[96];

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		vcpu_io(v);
		return true;
	case KVM_EXIT_MMIO:
		vcpu_mmio(v);
		return true;
	case KVM_EXIT_INTR:
		return true;
	case KVM_EXIT_DIRTY_RING_FULL:
		if (dirty_ring_full(v) < 0) {
			vcpu_fail(v, VM_EXIT_HOST_ERROR, "KVM_RESET_DIRTY_RINGS failed");
			return false;
		}
		return true;
	case KVM_EXIT_HLT:
		/* Only without an in-kernel LAPIC; ours has one, so a halt here is final. */
		vcpu_fail(v, VM_EXIT_INTERNAL, "vCPU halted with nothing to wake it");
		return false;
	case KVM_EXIT_SHUTDOWN:
		vcpu_fail(v, VM_EXIT_TRIPLE_FAULT, "triple fault (KVM_EXIT_SHUTDOWN)");
		return false;
	case KVM_EXIT_SYSTEM_EVENT:
		if (run->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN) {
			struct vm_exit_info info = { .kind = VM_EXIT_POWEROFF };

			snprintf(info.detail, sizeof(info.detail), "guest shut down (system event)");
			vm_stop_with(v->vm, &info);
		} else if (run->system_event.type == KVM_SYSTEM_EVENT_RESET) {
			struct vm_exit_info info = { .kind = VM_EXIT_RESET };

			snprintf(info.detail, sizeof(info.detail), "guest reset (system event)");
			vm_stop_with(v->vm, &info);
		} else {
			snprintf(detail, sizeof(detail), "unexpected KVM system event %u",
				 run->system_event.type);
			vcpu_fail(v, VM_EXIT_INTERNAL, detail);
		}
		return false;
	case KVM_EXIT_FAIL_ENTRY:
		snprintf(detail, sizeof(detail), "KVM entry failed, hardware reason 0x%llx",
			 (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		vcpu_fail(v, VM_EXIT_FAIL_ENTRY, detail);
		return false;
	case KVM_EXIT_INTERNAL_ERROR:
		snprintf(detail, sizeof(detail), "KVM internal error %u%s", run->internal.suberror,
			 run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION
				 ? " (instruction emulation failed)" : "");
		vcpu_fail(v, VM_EXIT_INTERNAL, detail);
		return false;
	default:
		snprintf(detail, sizeof(detail), "unhandled KVM exit reason %u", run->exit_reason);
		vcpu_fail(v, VM_EXIT_INTERNAL, detail);
		return false;
	}
}

/* Park while a pause is requested. Returns false when the VM is stopping. vm->lock held. */
static bool vcpu_wait_runnable(struct vcpu *v)
{
	struct vm *vm = v->vm;

	while (vm->pause_req && !vm->stop_req) {
		if (!v->parked) {
			v->parked = true;
			vm->nparked++;
			pthread_cond_broadcast(&vm->cond);
		}
		pthread_cond_wait(&vm->cond, &vm->lock);
	}
	if (v->parked) {
		v->parked = false;
		vm->nparked--;
	}
	return !vm->stop_req;
}

/*
 * Let KVM finish the exit just handled without running guest code: with immediate_exit
 * set, KVM_RUN completes the pending I/O or MMIO (loading an IN's data into RAX, moving
 * RIP past the instruction) and returns -EINTR. A string instruction may need several
 * more exits; each is handled the same way. Returns false when the vCPU must stop.
 * Why: KVM_GET_REGS before this completion would save a RIP still at the IN, and the
 * data it read would be lost (api.rst, KVM_RUN: "the operation is complete only after
 * userspace re-entered the kernel"). A vCPU thread calls this before it parks, so a
 * paused VM's state is whole.
 */
static bool vcpu_complete_exit(struct vcpu *v)
{
	for (;;) {
		int rc;

		__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
		rc = ioctl(v->fd, KVM_RUN, 0);
		if (rc < 0) {
			int e = errno;

			__atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
			if (e == EINTR || e == EAGAIN)
				break;
			char detail[64];

			snprintf(detail, sizeof(detail), "KVM_RUN failed: %s", strerror(e));
			vcpu_fail(v, VM_EXIT_HOST_ERROR, detail);
			return false;
		}
		if (!vcpu_handle_exit(v))
			return false;
	}
	v->exit_pending = false;
	return true;
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;
	struct vm *vm = v->vm;
	sigset_t set;
	char name[16];

	snprintf(name, sizeof(name), "vcpu%u", v->id);
	pthread_setname_np(pthread_self(), name);
	sigemptyset(&set);
	sigaddset(&set, VCPU_KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);

	for (;;) {
		void (*init)(void *ctx, unsigned vcpu) = NULL;
		void *init_ctx = NULL;
		bool go, finish;

		pthread_mutex_lock(&vm->lock);
		finish = v->exit_pending && vm->pause_req && !vm->stop_req;
		go = finish || vcpu_wait_runnable(v);
		if (vm->thread_init_gen != v->thread_init_gen) {
			v->thread_init_gen = vm->thread_init_gen;
			init = vm->thread_init;
			init_ctx = vm->thread_init_ctx;
		}
		pthread_mutex_unlock(&vm->lock);
		if (init)
			init(init_ctx, v->id); /* before the next KVM_RUN of this thread */
		if (finish) {
			if (!vcpu_complete_exit(v))
				break;
			continue;
		}
		if (!go)
			break;
		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			int e = errno;

			__atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
			if (e == EINTR || e == EAGAIN) {
				v->exit_pending = false; /* KVM finished it before noticing the kick */
				continue;
			}
			char detail[64];

			snprintf(detail, sizeof(detail), "KVM_RUN failed: %s", strerror(e));
			vcpu_fail(v, VM_EXIT_HOST_ERROR, detail);
			break;
		}
		if (!vcpu_handle_exit(v))
			break;
		v->exit_pending = true;
	}

	pthread_mutex_lock(&vm->lock);
	vm->nalive--;
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
	return NULL;
}

int vcpu_thread_start(struct vcpu *v)
{
	sigset_t set, old;
	int rc;

	/* Threads inherit the mask: block the kick signal until each unblocks it itself. */
	sigemptyset(&set);
	sigaddset(&set, VCPU_KICK_SIGNAL);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	rc = -pthread_create(&v->thread, NULL, vcpu_thread, v);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc == 0)
		v->thread_started = true;
	return rc;
}
