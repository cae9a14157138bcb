/* Whether this host's KVM can give a VM the CPU features another host gave it. */
#ifndef VMM_X86_CPU_COMPAT_PRIV_H
#define VMM_X86_CPU_COMPAT_PRIV_H

#include <stddef.h>

#include "vmm/x86/cpuid.h"

/*
 * Compare want, a VM's CPUID table, with what KVM_GET_SUPPORTED_CPUID on kvm_fd (an open
 * /dev/kvm) offers (kvm_fd, want, err, errlen). Returns 0; -ENOTSUP with "CPU features
 * missing on this host: a b" in err; -ENOMEM; or the ioctl's error, named in err.
 */
int cpu_compat_check(int kvm_fd, const struct cpuid_table *want, char *err, size_t errlen);

#endif
