/* CPUID policy: start from what KVM supports and hide features by name or template. */
#ifndef VMM_X86_CPUID_H
#define VMM_X86_CPUID_H

#include <stddef.h>
#include <stdint.h>

#include <linux/kvm.h>

#define CPUID_MAX_ENTRIES 256

/* struct kvm_cpuid2 with room for its entries (hdr.entries is a flexible array). */
struct cpuid_table {
	union {
		struct kvm_cpuid2 hdr;
		uint8_t storage[sizeof(struct kvm_cpuid2) +
				CPUID_MAX_ENTRIES * sizeof(struct kvm_cpuid_entry2)];
	};
};

/*
 * Apply a policy spec to t (which holds KVM_GET_SUPPORTED_CPUID's answer):
 *   spec := item [, item]*      item := TEMPLATE | -FEATURE | +FEATURE | FEATURE
 * Templates: "host" (everything KVM offers), "pvm-test" (hides what a software PVM
 * hypervisor cannot emulate at CPL 0), "baseline" (hides AVX-512, TSX and other
 * features that hosts in one fleet often disagree on). "-x" hides x and what depends on
 * it (-xsave also hides AVX and its relatives); "+x"/"x" requires x, failing if the host
 * lacks it. Returns 0, or -EINVAL with a one-line reason in err.
 */
int cpuid_policy_apply(struct cpuid_table *t, const char *spec, char *err, size_t errlen);

/* Per-vCPU identity: initial APIC id in leaves 1, 0xb and 0x1f; logical count ncpus. */
void cpuid_set_vcpu(struct cpuid_table *t, unsigned apic_id, unsigned ncpus);

/*
 * Which features of the table above does want have and host lack (want: a saved VM's
 * table; host: KVM_GET_SUPPORTED_CPUID's answer)? Writes their names, space-separated,
 * into buf (truncated to len) and returns how many there are.
 */
int cpuid_missing_features(const struct cpuid_table *want, const struct cpuid_table *host,
			   char *buf, size_t len);

/* Names understood in a spec, space-separated, for help text. */
void cpuid_feature_names(char *buf, size_t len);

#endif
