/* The VMM's public interface for cli/: create a VM from a config, run it, pause, stop. */
#ifndef VMM_VM_H
#define VMM_VM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What migrate/ and snapshot/ see (vm_state.h) and the start, stop and destroy a receive
 * or restore needs (vm_lifecycle.h) are declared there; the rest of a VM's life is here. */
#include "vmm/vm_lifecycle.h"
#include "vmm/vm_state.h"

/* One virtio-net NIC on a tap (vmm/virtio/tap.h): attached by name, or an fd a manager opened. */
struct vm_net_config {
	const char *tap; /* an existing tap's name; NULL to use tap_fd */
	int tap_fd;      /* an open tap (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR); the caller keeps it */
	bool has_mac;
	uint8_t mac[VM_MAC_BYTES]; /* if has_mac, else derived from the tap name and index */
};

struct vm_config {
	const char *kernel_path;  /* bzImage or ELF with a PVH note; required */
	const char *initrd_path;  /* NULL for none */
	const char *cmdline;      /* NULL means "" */
	uint64_t ram_bytes;       /* 64 MiB .. what the host has */
	unsigned ncpus;           /* 1 .. LAYOUT_MAX_VCPUS */
	const char *disk_path;    /* raw image for virtio-blk, NULL for none */
	const char *cpu_features; /* CPUID policy, see cpuid.h; NULL means "host" */
	int console_fd;           /* where guest serial output goes */
	bool dirty_ring;          /* track dirty pages with KVM's dirty ring, not the bitmap */
	const struct vm_net_config *nets; /* NICs in PCI order after the disk; NULL if none */
	unsigned nnets;           /* 0 .. VM_MAX_NICS */
};

enum vm_exit_kind {
	VM_EXIT_NONE = 0,
	VM_EXIT_POWEROFF,  /* guest powered off (ACPI S5) */
	VM_EXIT_RESET,     /* guest reset (i8042, or KVM system event) */
	VM_EXIT_QUIT,      /* asked to stop through vm_request_stop */
	VM_EXIT_TRIPLE_FAULT,
	VM_EXIT_INTERNAL,  /* KVM internal error, an emulation failure included */
	VM_EXIT_FAIL_ENTRY,
	VM_EXIT_HOST_ERROR, /* an ioctl failed */
};

/* Why the VM stopped; for the faults, where. */
struct vm_exit_info {
	enum vm_exit_kind kind;
	unsigned vcpu;
	uint64_t rip;
	uint8_t insn[16];
	unsigned insn_len;  /* 0 when the bytes could not be read */
	char detail[160];   /* e.g. "KVM internal error 1 (emulation failure)" */
};

enum vm_run_state {
	VM_STATE_CREATED = 0,
	VM_STATE_RUNNING,
	VM_STATE_PAUSED,
	VM_STATE_STOPPED,
};

/*
 * Build a VM from cfg: KVM VM, RAM, irqchip and PIT, devices, kernel loaded, vCPUs
 * created but not running. Returns 0 and the VM in *out, or -errno with a one-line reason
 * naming the problem and its fix in err. Nothing is left behind on failure.
 */
int vm_create(struct vm **out, const struct vm_config *cfg, char *err, size_t errlen);

/*
 * Build a VM shell to restore into: as vm_create, but no kernel is loaded (kernel_path,
 * initrd_path and cmdline are ignored) and RAM is left zero; vm_state_load (vm_state.h)
 * then supplies the vCPU, VM and device state, and the caller fills RAM. The vCPUs start
 * with cfg's CPUID policy; vm_state_load replaces it with the saved VM's table (KVM
 * allows that until a vCPU first runs), so cpu_features need not be given again.
 * ram_bytes, ncpus and the disk's size must match the saved VM's (see vm_state_peek);
 * vm_state_load refuses a blob that disagrees. dirty_ring may differ.
 */
int vm_create_for_restore(struct vm **out, const struct vm_config *cfg, char *err,
			  size_t errlen);

/*
 * Wait until the VM stops (guest poweroff, reset, fault, or vm_request_stop), join the
 * vCPU threads and fill info. Returns 0 or -errno.
 */
int vm_wait(struct vm *vm, struct vm_exit_info *info);

/*
 * Have every vCPU thread call fn(ctx, its index) once, on that thread, before its next
 * KVM_RUN (vm, fn, ctx): before the first one when called before vm_start, else after the
 * exit it is in (a guest exits often; a parked vCPU calls it when it runs again). For
 * what must hold on the vCPU threads themselves, such as a tighter syscall filter.
 */
void vm_set_vcpu_thread_init(struct vm *vm, void (*fn)(void *ctx, unsigned vcpu), void *ctx);

enum vm_run_state vm_state(struct vm *vm);
const char *vm_state_name(enum vm_run_state s);

/* A NIC as status reports show it: its MAC, tap and counters (virtio_net_stats). */
struct vm_nic_info {
	uint8_t mac[VM_MAC_BYTES];
	char tap[16];
	uint64_t rx_frames, rx_bytes, tx_frames, tx_bytes;
	uint64_t rx_dropped, rx_filtered, rx_no_buffer, tx_dropped, bad_chains;
	uint64_t rx_carried; /* frames a migration carried in from the source's tap */
};

/*
 * Check that nc's tap can be attached now (it exists, is a tap, nobody holds it), and let
 * go of it again: for a command that makes its VM later (receive). Returns 0, or -errno
 * with a one-line reason in err.
 */
int vm_net_check(const struct vm_net_config *nc, char *err, size_t errlen);

/* NIC i (< vm_nic_count) into *out. Returns 0, or -EINVAL for no NIC i. Any thread. */
int vm_nic_info(struct vm *vm, unsigned i, struct vm_nic_info *out);
/*
 * Ask every NIC's driver to announce the guest (virtio_net_announce: gratuitous ARPs,
 * after a move). Returns how many drivers were asked (those that negotiated it).
 */
unsigned vm_nic_announce(struct vm *vm);

/*
 * Tell the network where the guest is now (after a move: migration, or a restore on
 * another host), as QEMU's announce-self does: VM_ANNOUNCE_ROUNDS rounds, the first at
 * once, then after 50, 150, 250 and 350 ms (QEMU's defaults: initial 50 ms, step 100 ms,
 * cap 550 ms). Each round writes a RARP frame from each NIC's MAC out of its tap, so
 * bridges and switches learn the MAC on this port; the first also asks each driver that
 * negotiated GUEST_ANNOUNCE to send its own gratuitous ARPs (vm_nic_announce).
 */
#define VM_ANNOUNCE_ROUNDS 5
struct vm_announce_info {
	uint32_t rounds;       /* rounds done so far, up to VM_ANNOUNCE_ROUNDS */
	uint64_t frames;       /* RARP frames written */
	uint64_t errors;       /* RARP frames a tap refused */
	unsigned guest_asked;  /* drivers asked to announce themselves */
	uint64_t first_ns;     /* wall clock (CLOCK_REALTIME) of the first round; 0: none */
	uint64_t last_ns;      /* and of the latest */
};
/*
 * Start an announcement (restarting one under way): the first round is done before this
 * returns, the rest on a thread of the VM's own, never a vCPU's. The caller is not a
 * vCPU thread, and callers take turns (the migration or restore before the API runs,
 * then the API thread). With no NIC nothing is sent. *out (may be NULL) gets the figures
 * after the first round. Returns 0, or -errno if the thread could not start (the first
 * round went out).
 */
int vm_announce(struct vm *vm, struct vm_announce_info *out);
/* The latest announcement's figures (all zero if none). Any thread. */
void vm_announce_info_get(struct vm *vm, struct vm_announce_info *out);

/* Feed host input (stdin) to the guest's serial port. */
void vm_console_input(struct vm *vm, const void *buf, size_t len);

#endif
