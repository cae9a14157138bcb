/* CPUID policy: start from what KVM supports and hide features by name or template. */
#include "vmm/x86/cpuid.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

enum cpuid_reg { R_EAX, R_EBX, R_ECX, R_EDX };

struct cpuid_feature {
	const char *name;
	uint32_t leaf;
	uint32_t subleaf;
	enum cpuid_reg reg;
	uint8_t bit;
	const char *implies; /* space-separated features hidden along with this one */
};

#define AVX_FAMILY "avx avx2 fma f16c avx512f avx512dq avx512cd avx512bw avx512vl " \
	"avx512ifma avx512vbmi avx512vnni vaes vpclmulqdq"

static const struct cpuid_feature cpuid_features[] = {
	{ "sse3", 1, 0, R_ECX, 0, NULL },
	{ "pclmulqdq", 1, 0, R_ECX, 1, "vpclmulqdq" },
	{ "ssse3", 1, 0, R_ECX, 9, NULL },
	{ "fma", 1, 0, R_ECX, 12, NULL },
	{ "cx16", 1, 0, R_ECX, 13, NULL },
	{ "pcid", 1, 0, R_ECX, 17, "invpcid" },
	{ "sse4_1", 1, 0, R_ECX, 19, NULL },
	{ "sse4_2", 1, 0, R_ECX, 20, NULL },
	{ "x2apic", 1, 0, R_ECX, 21, NULL },
	{ "movbe", 1, 0, R_ECX, 22, NULL },
	{ "popcnt", 1, 0, R_ECX, 23, NULL },
	{ "tsc_deadline", 1, 0, R_ECX, 24, NULL },
	{ "aes", 1, 0, R_ECX, 25, "vaes" },
	{ "xsave", 1, 0, R_ECX, 26, AVX_FAMILY " xsaveopt xsavec xsaves" },
	{ "avx", 1, 0, R_ECX, 28, AVX_FAMILY },
	{ "f16c", 1, 0, R_ECX, 29, NULL },
	{ "rdrand", 1, 0, R_ECX, 30, NULL },
	{ "mtrr", 1, 0, R_EDX, 12, NULL },
	{ "pat", 1, 0, R_EDX, 16, NULL },
	{ "clflush", 1, 0, R_EDX, 19, NULL },
	{ "fsgsbase", 7, 0, R_EBX, 0, NULL },
	{ "bmi1", 7, 0, R_EBX, 3, NULL },
	{ "hle", 7, 0, R_EBX, 4, NULL },
	{ "avx2", 7, 0, R_EBX, 5, NULL },
	{ "smep", 7, 0, R_EBX, 7, NULL },
	{ "bmi2", 7, 0, R_EBX, 8, NULL },
	{ "erms", 7, 0, R_EBX, 9, NULL },
	{ "invpcid", 7, 0, R_EBX, 10, NULL },
	{ "rtm", 7, 0, R_EBX, 11, NULL },
	{ "avx512f", 7, 0, R_EBX, 16, "avx512dq avx512cd avx512bw avx512vl avx512ifma " \
		"avx512vbmi avx512vnni" },
	{ "avx512dq", 7, 0, R_EBX, 17, NULL },
	{ "rdseed", 7, 0, R_EBX, 18, NULL },
	{ "adx", 7, 0, R_EBX, 19, NULL },
	{ "smap", 7, 0, R_EBX, 20, NULL },
	{ "avx512ifma", 7, 0, R_EBX, 21, NULL },
	{ "clflushopt", 7, 0, R_EBX, 23, NULL },
	{ "clwb", 7, 0, R_EBX, 24, NULL },
	{ "avx512cd", 7, 0, R_EBX, 28, NULL },
	{ "sha", 7, 0, R_EBX, 29, NULL },
	{ "avx512bw", 7, 0, R_EBX, 30, NULL },
	{ "avx512vl", 7, 0, R_EBX, 31, NULL },
	{ "avx512vbmi", 7, 0, R_ECX, 1, NULL },
	{ "umip", 7, 0, R_ECX, 2, NULL },
	{ "pku", 7, 0, R_ECX, 3, NULL },
	{ "waitpkg", 7, 0, R_ECX, 5, NULL },
	{ "vaes", 7, 0, R_ECX, 9, NULL },
	{ "vpclmulqdq", 7, 0, R_ECX, 10, NULL },
	{ "avx512vnni", 7, 0, R_ECX, 11, NULL },
	{ "la57", 7, 0, R_ECX, 16, NULL },
	{ "rdpid", 7, 0, R_ECX, 22, NULL },
	{ "serialize", 7, 0, R_EDX, 14, NULL },
	{ "xsaveopt", 0xd, 1, R_EAX, 0, NULL },
	{ "xsavec", 0xd, 1, R_EAX, 1, NULL },
	{ "xsaves", 0xd, 1, R_EAX, 3, NULL },
	{ "lahf_lm", 0x80000001, 0, R_ECX, 0, NULL },
	{ "abm", 0x80000001, 0, R_ECX, 5, NULL },
	{ "sse4a", 0x80000001, 0, R_ECX, 6, NULL },
	{ "prefetchw", 0x80000001, 0, R_ECX, 8, NULL },
	{ "nx", 0x80000001, 0, R_EDX, 20, NULL },
	{ "pdpe1gb", 0x80000001, 0, R_EDX, 26, NULL },
	{ "rdtscp", 0x80000001, 0, R_EDX, 27, NULL },
	/* KVM paravirtual features (leaf 0x40000001, KVM_FEATURE_*). */
	{ "kvm-pv-ipi", 0x40000001, 0, R_EAX, 11, NULL },
	{ "kvm-pv-sched-yield", 0x40000001, 0, R_EAX, 13, NULL },
};

#define NFEATURES (sizeof(cpuid_features) / sizeof(cpuid_features[0]))

struct cpuid_template {
	const char *name;
	const char *hide; /* space-separated feature names */
};

static const struct cpuid_template cpuid_templates[] = {
	{ "host", "" },
	/*
	 * A software (PVM) hypervisor emulates guest CPL-0 code and lacks these instructions
	 * or their setup; a Linux guest must not be told they exist.
	 */
	{ "pvm-test", "xsave cx16 popcnt smap fsgsbase pku invpcid rdpid kvm-pv-ipi "
		      "kvm-pv-sched-yield" },
	{ "baseline", "avx512f hle rtm waitpkg la57 serialize pku" },
};

#define NTEMPLATES (sizeof(cpuid_templates) / sizeof(cpuid_templates[0]))

static const struct cpuid_feature *feature_find(const char *name, size_t len)
{
	for (size_t i = 0; i < NFEATURES; i++) {
		if (strlen(cpuid_features[i].name) == len &&
		    strncmp(cpuid_features[i].name, name, len) == 0)
			return &cpuid_features[i];
	}
	return NULL;
}

static const struct kvm_cpuid_entry2 *entry_lookup(const struct cpuid_table *t, uint32_t leaf,
						   uint32_t sub)
{
	for (uint32_t i = 0; i < t->hdr.nent; i++) {
		const struct kvm_cpuid_entry2 *e = &t->hdr.entries[i];

		if (e->function != leaf)
			continue;
		if ((e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) && e->index != sub)
			continue;
		return e;
	}
	return NULL;
}

static struct kvm_cpuid_entry2 *entry_find(struct cpuid_table *t, uint32_t leaf, uint32_t sub)
{
	return (struct kvm_cpuid_entry2 *)entry_lookup(t, leaf, sub);
}

static uint32_t *entry_reg(struct kvm_cpuid_entry2 *e, enum cpuid_reg r)
{
	switch (r) {
	case R_EAX:
		return &e->eax;
	case R_EBX:
		return &e->ebx;
	case R_ECX:
		return &e->ecx;
	case R_EDX:
		break;
	}
	return &e->edx;
}

/* Hide f and, recursively through its implies list, what depends on it. */
static void feature_hide(struct cpuid_table *t, const struct cpuid_feature *f, unsigned depth)
{
	struct kvm_cpuid_entry2 *e = entry_find(t, f->leaf, f->subleaf);
	const char *p = f->implies;

	if (e)
		*entry_reg(e, f->reg) &= ~(1u << f->bit);
	if (strcmp(f->name, "xsave") == 0) {
		/* No XSAVE: OSXSAVE can never be set, and leaf 0xd describes nothing. */
		e = entry_find(t, 1, 0);
		if (e)
			e->ecx &= ~(1u << 27);
		for (uint32_t i = 0; i < t->hdr.nent; i++) {
			if (t->hdr.entries[i].function == 0xd)
				t->hdr.entries[i].eax = t->hdr.entries[i].ebx = t->hdr.entries[i].ecx =
					t->hdr.entries[i].edx = 0;
		}
	}
	if (!p || depth > 4)
		return;
	while (*p) {
		size_t n = strcspn(p, " ");
		const struct cpuid_feature *dep = feature_find(p, n);

		if (dep && dep != f)
			feature_hide(t, dep, depth + 1);
		p += n;
		p += strspn(p, " ");
	}
}

static bool feature_present(const struct cpuid_table *t, const struct cpuid_feature *f)
{
	const struct kvm_cpuid_entry2 *e = entry_lookup(t, f->leaf, f->subleaf);
	uint32_t v;

	if (!e)
		return false;
	switch (f->reg) {
	case R_EAX:
		v = e->eax;
		break;
	case R_EBX:
		v = e->ebx;
		break;
	case R_ECX:
		v = e->ecx;
		break;
	default:
		v = e->edx;
		break;
	}
	return (v >> f->bit) & 1;
}

static int template_apply(struct cpuid_table *t, const struct cpuid_template *tp)
{
	const char *p = tp->hide;

	while (*p) {
		size_t n = strcspn(p, " ");
		const struct cpuid_feature *f = feature_find(p, n);

		if (f)
			feature_hide(t, f, 0);
		p += n;
		p += strspn(p, " ");
	}
	return 0;
}

int cpuid_policy_apply(struct cpuid_table *t, const char *spec, char *err, size_t errlen)
{
	const char *p = spec ? spec : "host";

	while (*p) {
		size_t n = strcspn(p, ",");
		const char *name = p;
		size_t nlen = n;
		char sign = 0;

		if (n > 0 && (p[0] == '-' || p[0] == '+')) {
			sign = p[0];
			name++;
			nlen--;
		}
		if (nlen == 0)
			goto next;
		if (!sign) {
			for (size_t i = 0; i < NTEMPLATES; i++) {
				if (strlen(cpuid_templates[i].name) == nlen &&
				    strncmp(cpuid_templates[i].name, name, nlen) == 0) {
					template_apply(t, &cpuid_templates[i]);
					goto next;
				}
			}
		}
		const struct cpuid_feature *f = feature_find(name, nlen);

		if (!f) {
			snprintf(err, errlen,
				 "unknown CPU feature or template '%.*s' in --cpu-features: "
				 "run 'godwit run --cpu-features help' for the names",
				 (int)nlen, name);
			return -EINVAL;
		}
		if (sign == '-') {
			feature_hide(t, f, 0);
		} else if (!feature_present(t, f)) {
			snprintf(err, errlen,
				 "CPU feature '%s' is not available on this host: drop it "
				 "from --cpu-features", f->name);
			return -EINVAL;
		}
next:
		p += n;
		if (*p == ',')
			p++;
	}
	return 0;
}

void cpuid_set_vcpu(struct cpuid_table *t, unsigned apic_id, unsigned ncpus)
{
	for (uint32_t i = 0; i < t->hdr.nent; i++) {
		struct kvm_cpuid_entry2 *e = &t->hdr.entries[i];

		switch (e->function) {
		case 1:
			/* Initial APIC id, logical processor count, HTT when more than one. */
			e->ebx = (e->ebx & 0x0000ffffu) | (apic_id << 24) | ((ncpus & 0xff) << 16);
			if (ncpus > 1)
				e->edx |= 1u << 28;
			e->ecx |= 1u << 31; /* hypervisor present */
			break;
		case 0xb:
		case 0x1f:
			e->edx = apic_id;
			break;
		default:
			break;
		}
	}
}

int cpuid_missing_features(const struct cpuid_table *want, const struct cpuid_table *host,
			   char *buf, size_t len)
{
	size_t off = 0;
	int n = 0;

	if (len)
		buf[0] = '\0';
	for (size_t i = 0; i < NFEATURES; i++) {
		const struct cpuid_feature *f = &cpuid_features[i];

		if (!feature_present(want, f) || feature_present(host, f))
			continue;
		n++;
		if (off < len)
			off += snprintf(buf + off, len - off, "%s%s", off ? " " : "", f->name);
	}
	return n;
}

void cpuid_feature_names(char *buf, size_t len)
{
	size_t off = 0;

	if (len == 0)
		return;
	buf[0] = '\0';
	for (size_t i = 0; i < NTEMPLATES && off < len; i++)
		off += snprintf(buf + off, len - off, "%s%s", off ? " " : "templates: ",
				cpuid_templates[i].name);
	if (off < len)
		off += snprintf(buf + off, len - off, "; features:");
	for (size_t i = 0; i < NFEATURES && off < len; i++)
		off += snprintf(buf + off, len - off, " %s", cpuid_features[i].name);
}
