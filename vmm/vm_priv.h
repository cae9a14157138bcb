/* The VM object shared by the VMM's own files; nothing outside vmm/ sees it. */
#ifndef VMM_VM_PRIV_H
#define VMM_VM_PRIV_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <linux/kvm.h>

#include "vmm/bus.h"
#include "vmm/x86/cpuid.h"
#include "vmm/devices.h"
#include "vmm/guest_mem.h"
#include "vmm/irq.h"
#include "vmm/x86/layout.h"
#include "vmm/vm.h"
#include "vmm/vm_state.h"

#define VM_MAX_MSRS 256 /* MSRs a vCPU's state carries; VS_MAX_MSRS on the wire */

struct vcpu {
	struct vm *vm;
	unsigned id;
	int fd;
	struct kvm_run *run; /* mmap'd; immediate_exit is written by pausing threads too */
	pthread_t thread;
	bool thread_started;
	bool parked; /* under vm->lock: this vCPU waits outside KVM_RUN */
	/*
	 * vCPU thread only: KVM finishes the last exit (an IN's data, an MMIO read) when
	 * KVM_RUN is next entered, and until then the registers do not show it. Before it
	 * parks, the thread re-enters with immediate_exit set to finish it (see vcpu.c).
	 */
	bool exit_pending;
	unsigned thread_init_gen; /* vCPU thread only: the vm->thread_init it last ran */
	struct kvm_dirty_gfn *ring; /* mmap'd dirty ring (ring backend), else NULL */
	uint32_t ring_next;         /* under vm->dirty.lock: next ring entry to harvest */
};

/*
 * What this KVM offers for dirty logging and state save; learned by vm_create. A
 * successful vm_state_load (before any vCPU runs) replaces the MSR list by the loaded one.
 */
struct vm_caps {
	bool manual_protect;  /* KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 enabled on this VM */
	bool initially_set;   /* ... with KVM_DIRTY_LOG_INITIALLY_SET */
	uint32_t xsave_bytes; /* KVM_GET_XSAVE(2) buffer; 0: no XSAVE, use KVM_GET_FPU */
	bool xsave2;          /* KVM_GET_XSAVE2 exists (KVM_CAP_XSAVE2 > 0) */
	bool sregs2;          /* KVM_GET_SREGS2 / KVM_SET_SREGS2 */
	bool xcrs;            /* KVM_GET_XCRS / KVM_SET_XCRS */
	uint32_t tsc_khz;     /* KVM_GET_TSC_KHZ of vCPU 0; 0 if unknown */
	unsigned nmsrs;       /* MSRs both KVM_GET_MSRS and KVM_SET_MSRS accept */
	uint32_t msr_index[VM_MAX_MSRS];
};

/*
 * One consumer of the dirty log (vm_state.h): its own view of what is still to be
 * reported. Every field is under vm->dirty.lock.
 */
struct vm_dirty_consumer {
	struct vm *vm;
	uint64_t *pending[GUEST_MEM_MAX_REGIONS]; /* pages written, not yet fetched by it */
	int disk_view; /* its view in the disk change log, -1 without one (no disk, read-only) */
	uint64_t epoch; /* fetches made */
};

/*
 * Dirty-page tracking (dirty_log.c, dirty_ring.c). backend and the ring geometry are set
 * by dirty_init and read-only afterwards. lock (made with the VM) serialises the
 * consumers' threads (register, fetch, unregister) against vCPU threads harvesting a full
 * ring; the fields below it are under lock. Guest RAM's vmm_dirty bitmaps (guest_mem.h)
 * live as long as the VM.
 */
struct vm_dirty {
	enum vm_dirty_backend backend;
	uint32_t ring_bytes;   /* per vCPU */
	uint32_t ring_entries; /* a power of two */

	pthread_mutex_t lock;
	/* Registered consumers; logging is on while there is one. */
	struct vm_dirty_consumer *consumer[VM_DIRTY_MAX_CONSUMERS];
	unsigned nconsumers;
	uint64_t *scratch[GUEST_MEM_MAX_REGIONS]; /* what one fetch takes from the sources */
	uint64_t *harvest[GUEST_MEM_MAX_REGIONS]; /* ring: harvested, not yet handed out */
	uint64_t ring_full_exits;                 /* statistics */
	uint64_t ring_harvested;
};

struct pm_dev;
struct vs_enc;

/* The announcement after a move (vm_announce.c). info, stop under lock; the thread's
 * handle is the controller's (the caller of vm_announce and vm_destroy). */
struct vm_announce {
	bool ready; /* lock and cond initialised */
	pthread_mutex_t lock;
	pthread_cond_t cond; /* stop was set */
	bool stop;
	pthread_t thread;
	bool thread_started;
	struct vm_announce_info info;
};

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
	char *disk_path; /* cfg->disk_path, copied */
	struct virtio_net *net[VM_MAX_NICS];
	unsigned nnets;
	struct vm_announce ann;
	struct pm_dev *pm;
	struct cpuid_table *cpuid; /* replaced by vm_state_load before any vCPU runs */
	unsigned ncpus;
	struct vm_caps caps;
	struct vm_dirty dirty;
	struct vcpu vcpu[LAYOUT_MAX_VCPUS];

	/* Run control, all under lock; cond signals any change. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	/* Under lock: vm_set_vcpu_thread_init's hook; gen counts calls (0: none). */
	void (*thread_init)(void *ctx, unsigned vcpu);
	void *thread_init_ctx;
	unsigned thread_init_gen;
	enum vm_run_state state;
	unsigned pause_holders; /* VM_PAUSE_* bits; pause_req is set while any is */
	bool pause_req;
	bool stop_req;
	unsigned nparked;
	unsigned nalive; /* vCPU threads that have not returned */
	struct vm_exit_info exit; /* first stop reason wins */
};

/* vcpu.c */
int vcpu_init(struct vm *vm, unsigned id, char *err, size_t errlen);
/*
 * Give v the VM's CPUID table with its own identity (cpuid_set_vcpu). KVM accepts a new
 * table only until the vCPU first runs. Returns 0 or -errno with a reason in err.
 */
int vcpu_set_cpuid(struct vcpu *v, const struct cpuid_table *table, char *err, size_t errlen);
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
/* The PM record of a state blob (state_format.h): append to e, or apply payload. */
void pm_state_save(struct pm_dev *pm, struct vs_enc *e);
int pm_state_load(struct pm_dev *pm, const uint8_t *payload, size_t len);

/* ---- vm_net.c: the NICs --------------------------------------------------------------- */
/* Create cfg's NICs on vm's PCI bus (after the disk, in order). Returns 0 or -errno with a
 * reason in err; the NICs made so far are freed by vm_nets_destroy. */
int vm_nets_create(struct vm *vm, const struct vm_config *cfg, char *err, size_t errlen);
/* Let every NIC's I/O thread work (run) or fence it (virtio_net_pause). */
void vm_nets_run(struct vm *vm, bool run);
void vm_nets_destroy(struct vm *vm);

/* ---- vm_announce.c ------------------------------------------------------------------ */
/* Initialise vm->ann (at create). Returns 0 or -errno. */
int vm_announce_init(struct vm *vm);
/* Stop the rounds' thread and wait for it (before the NICs go). No-op without one. */
void vm_announce_stop(struct vm *vm);

/* ---- dirty_log.c ---------------------------------------------------------------------- */
/*
 * Choose and prepare the dirty-page backend: the ring if ring (enabled on the VM, so
 * before any vCPU exists), else the bitmap with manual protect where KVM has it; and
 * allocate the per-region bitmaps. Call after RAM is laid out. Returns 0 or -errno with
 * a reason in err.
 */
int dirty_init(struct vm *vm, bool ring, char *err, size_t errlen);
/*
 * Free what dirty_init allocated, and any consumer still registered (a caller that
 * forgot one), once no vCPU runs and before the devices go.
 */
void dirty_fini(struct vm *vm);
/* Turn KVM_MEM_LOG_DIRTY_PAGES on or off for region i's memory slot. */
int dirty_slot_set_logging(struct vm *vm, unsigned i, bool on);

/* ---- dirty_ring.c --------------------------------------------------------------------- */
/* Enable KVM_CAP_DIRTY_LOG_RING(_ACQ_REL) on the VM. Before any vCPU exists. */
int dirty_ring_enable(struct vm *vm, char *err, size_t errlen);
/* Map v's ring, right after KVM_CREATE_VCPU. Returns 0 or -errno. */
int dirty_ring_vcpu_map(struct vcpu *v);
void dirty_ring_vcpu_unmap(struct vcpu *v);
/*
 * Harvest every vCPU's ring into dirty.harvest and reset the harvested entries, so the
 * pages are write-protected again before this returns. vm->dirty.lock held.
 */
int dirty_ring_collect(struct vm *vm);
/* KVM_EXIT_DIRTY_RING_FULL on v's thread: harvest and reset, then run on. */
int dirty_ring_full(struct vcpu *v);

#endif
