/* The VM object shared by the VMM's own files; nothing outside vmm/ sees it. */
#ifndef VMM_VM_PRIV_H
#define VMM_VM_PRIV_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <linux/kvm.h>

#include "vmm/bus.h"
#include "vmm/cpuid.h"
#include "vmm/devices.h"
#include "vmm/guest_mem.h"
#include "vmm/irq.h"
#include "vmm/layout.h"
#include "vmm/vm.h"

struct vcpu {
	struct vm *vm;
	unsigned id;
	int fd;
	struct kvm_run *run; /* mmap'd; immediate_exit is written by pausing threads too */
	pthread_t thread;
	bool thread_started;
	bool parked; /* under vm->lock: this vCPU waits outside KVM_RUN */
};

struct pm_dev;

struct vm {
	/* Set up by vm_create, read-only afterwards. */
	int kvm_fd;
	int vm_fd;
	size_t run_mmap_bytes;
	uint8_t *ram;
	uint64_t ram_bytes;
	struct guest_mem mem;
	struct bus pio;
	struct bus mmio;
	struct irq_chip irq;
	struct serial *serial;
	struct pci_bus *pci;
	struct virtio_blk *blk;
	struct pm_dev *pm;
	struct cpuid_table *cpuid;
	unsigned ncpus;
	struct vcpu vcpu[LAYOUT_MAX_VCPUS];

	/* Run control, all under lock; cond signals any change. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	enum vm_run_state state;
	bool pause_req;
	bool stop_req;
	unsigned nparked;
	unsigned nalive; /* vCPU threads that have not returned */
	struct vm_exit_info exit; /* first stop reason wins */
};

/* vcpu.c */
int vcpu_init(struct vm *vm, unsigned id, char *err, size_t errlen);
void vcpu_fini(struct vcpu *v);
int vcpu_thread_start(struct vcpu *v);
/* Kick every vCPU out of KVM_RUN (they re-check pause/stop requests). vm->lock held. */
void vcpu_kick_all(struct vm *vm);
/* Install the no-op kick signal handler once per process. */
int vcpu_signal_setup(void);

/* vm.c: record a stop reason (first wins) and kick every vCPU. Any thread. */
void vm_stop_with(struct vm *vm, const struct vm_exit_info *info);

/* pm.c: ACPI PM1a control (power off) and an i8042 that can reset the machine. */
int pm_create(struct pm_dev **out, struct vm *vm, struct bus *pio);
void pm_destroy(struct pm_dev *pm);

#endif
