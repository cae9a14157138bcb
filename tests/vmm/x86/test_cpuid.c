/* CPUID policy: templates and feature names hide exactly what they say. */
#include <criterion/criterion.h>
#include <string.h>

#include "vmm/x86/cpuid.h"

static struct cpuid_table T;
static char E[256];

static void add(uint32_t fn, uint32_t idx, uint32_t eax, uint32_t ebx, uint32_t ecx,
		uint32_t edx, bool indexed)
{
	struct kvm_cpuid_entry2 *e = &T.hdr.entries[T.hdr.nent++];

	*e = (struct kvm_cpuid_entry2){ .function = fn, .index = idx, .eax = eax, .ebx = ebx,
					.ecx = ecx, .edx = edx,
					.flags = indexed ? KVM_CPUID_FLAG_SIGNIFCANT_INDEX : 0 };
}

/* A host with every feature bit set in the leaves the policy knows. */
static void setup(void)
{
	memset(&T, 0, sizeof(T));
	memset(E, 0, sizeof(E));
	add(1, 0, 0x806c1, 0x00000800, 0xffffffff, 0xffffffff, false);
	add(7, 0, 0, 0xffffffff, 0xffffffff, 0xffffffff, true);
	add(0xd, 0, 7, 0x340, 0x340, 0, true);
	add(0xd, 1, 0xf, 0, 0, 0, true);
	add(0x80000001, 0, 0, 0, 0xffffffff, 0xffffffff, false);
}

TestSuite(cpuid, .init = setup);

static struct kvm_cpuid_entry2 *leaf(uint32_t fn, uint32_t idx)
{
	for (uint32_t i = 0; i < T.hdr.nent; i++)
		if (T.hdr.entries[i].function == fn && T.hdr.entries[i].index == idx)
			return &T.hdr.entries[i];
	return NULL;
}

Test(cpuid, host_template_changes_nothing)
{
	struct cpuid_table before = T;

	cr_assert_eq(cpuid_policy_apply(&T, "host", E, sizeof(E)), 0, "%s", E);
	cr_assert(memcmp(&before, &T, sizeof(T)) == 0);
	cr_assert_eq(cpuid_policy_apply(&T, NULL, E, sizeof(E)), 0, "%s", E);
	cr_assert(memcmp(&before, &T, sizeof(T)) == 0);
}

Test(cpuid, hiding_xsave_hides_avx_osxsave_and_leaf_0xd)
{
	cr_assert_eq(cpuid_policy_apply(&T, "-xsave", E, sizeof(E)), 0, "%s", E);
	cr_assert_eq(leaf(1, 0)->ecx & (1u << 26), 0, "xsave");
	cr_assert_eq(leaf(1, 0)->ecx & (1u << 27), 0, "osxsave");
	cr_assert_eq(leaf(1, 0)->ecx & (1u << 28), 0, "avx");
	cr_assert_eq(leaf(7, 0)->ebx & (1u << 5), 0, "avx2");
	cr_assert_eq(leaf(7, 0)->ebx & (1u << 16), 0, "avx512f");
	cr_assert_eq(leaf(0xd, 0)->eax, 0);
	cr_assert_eq(leaf(0xd, 1)->eax, 0);
	cr_assert_neq(leaf(1, 0)->ecx & (1u << 13), 0, "cx16 must stay");
}

Test(cpuid, pvm_test_template_hides_the_listed_features)
{
	cr_assert_eq(cpuid_policy_apply(&T, "pvm-test", E, sizeof(E)), 0, "%s", E);
	cr_assert_eq(leaf(1, 0)->ecx & ((1u << 13) | (1u << 23) | (1u << 26)), 0);
	cr_assert_eq(leaf(7, 0)->ebx & ((1u << 0) | (1u << 10) | (1u << 20)), 0);
	cr_assert_eq(leaf(7, 0)->ecx & ((1u << 3) | (1u << 22)), 0);
	cr_assert_neq(leaf(1, 0)->ecx & (1u << 20), 0, "sse4_2 must stay");
}

Test(cpuid, template_and_items_combine)
{
	cr_assert_eq(cpuid_policy_apply(&T, "baseline,-aes,+sse4_2", E, sizeof(E)), 0, "%s", E);
	cr_assert_eq(leaf(1, 0)->ecx & (1u << 25), 0, "aes");
	cr_assert_eq(leaf(7, 0)->ecx & (1u << 9), 0, "vaes follows aes");
	cr_assert_eq(leaf(7, 0)->ebx & (1u << 16), 0, "baseline hides avx512f");
}

Test(cpuid, unknown_names_are_refused_with_the_name)
{
	cr_assert_lt(cpuid_policy_apply(&T, "-xsave,-warpdrive", E, sizeof(E)), 0);
	cr_assert(strstr(E, "'warpdrive'"), "%s", E);
	cr_assert(strstr(E, "--cpu-features"), "%s", E);
}

Test(cpuid, requiring_a_missing_feature_is_refused)
{
	leaf(7, 0)->ebx &= ~(1u << 29);
	cr_assert_lt(cpuid_policy_apply(&T, "+sha", E, sizeof(E)), 0);
	cr_assert(strstr(E, "'sha'") && strstr(E, "not available"), "%s", E);
}

Test(cpuid, vcpu_identity_is_set_per_vcpu)
{
	add(0xb, 0, 1, 1, 0x100, 0, true);
	cpuid_set_vcpu(&T, 3, 4);
	cr_assert_eq(leaf(1, 0)->ebx >> 24, 3);
	cr_assert_eq((leaf(1, 0)->ebx >> 16) & 0xff, 4);
	cr_assert_eq(leaf(0xb, 0)->edx, 3);
	cr_assert_neq(leaf(1, 0)->ecx & (1u << 31), 0, "hypervisor bit");
}
