/* CPU compatibility across hosts: a VM's CPUID against what this host's KVM can give. */
#include "vmm/x86/cpu_compat_priv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vmm/state/state_priv.h"
#include "vmm/vm_priv.h"
#include "vmm/vm_state.h"

int cpu_compat_check(int kvm_fd, const struct cpuid_table *want, char *err, size_t errlen)
{
	struct cpuid_table *host = calloc(1, sizeof(*host));
	char missing[512];
	int rc = 0;

	if (!host) {
		snprintf(err, errlen, "checking CPU features: out of memory");
		return -ENOMEM;
	}
	host->hdr.nent = CPUID_MAX_ENTRIES;
	if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, &host->hdr) < 0) {
		rc = -errno;
		snprintf(err, errlen, "KVM_GET_SUPPORTED_CPUID: %s", strerror(-rc));
	} else if (cpuid_missing_features(want, host, missing, sizeof(missing)) > 0) {
		snprintf(err, errlen, "CPU features missing on this host: %s", missing);
		rc = -ENOTSUP;
	}
	free(host);
	return rc;
}

int vm_cpuid_save(struct vm *vm, uint8_t **out, size_t *len)
{
	struct vs_enc e;

	vs_enc_init(&e);
	vs_enc_cpuid(&e, vm->cpuid);
	if (e.err) {
		vs_enc_free(&e);
		return e.err;
	}
	*out = e.buf;
	*len = e.len;
	return 0;
}

int vm_cpuid_check(struct vm *vm, const uint8_t *payload, size_t len, char *err,
		   size_t errlen)
{
	struct cpuid_table *want = malloc(sizeof(*want));
	struct dec d;
	int rc;

	if (!want) {
		snprintf(err, errlen, "checking CPU features: out of memory");
		return -ENOMEM;
	}
	d = dec_init(payload, len);
	rc = vs_dec_cpuid(&d, want);
	if (rc < 0 || !dec_done(&d)) {
		snprintf(err, errlen, "malformed CPUID table from the source");
		rc = -EBADMSG;
	} else {
		rc = cpu_compat_check(vm->kvm_fd, want, err, errlen);
	}
	free(want);
	return rc;
}
