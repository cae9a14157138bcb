/* The few lifecycle calls a receive or a restore makes on a VM its host (cli/) created. */
#ifndef VMM_VM_LIFECYCLE_H
#define VMM_VM_LIFECYCLE_H

/*
 * migrate/'s receiver and snapshot/'s restore get a VM shell from a callback or from
 * cli/ (vm_create_for_restore in vm.h), load it through vm_state.h, and need only these
 * to start it, stop it and let go of it. Creating VMs, waiting for them and their
 * configuration stay in vm.h, which only cli/ includes.
 */
struct vm;

/*
 * Start the vCPU threads. Call once, after vm_create. With a pause held already
 * (vm_pause_by before the start) they park before running an instruction and the VM is
 * paused on return. Returns 0 or -errno.
 */
int vm_start(struct vm *vm);

/* Ask a running VM to stop with VM_EXIT_QUIT; vm_wait returns soon after. Any thread. */
void vm_request_stop(struct vm *vm);

/* Free everything. The VM must be stopped (vm_wait returned) or never started. */
void vm_destroy(struct vm *vm);

#endif
