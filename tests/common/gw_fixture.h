/* The golden samples of tests/fixtures/, for the tests that read and restore them. */
#ifndef TESTS_COMMON_GW_FIXTURE_H
#define TESTS_COMMON_GW_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

/* The samples written by release version ("0.1.0"): FIXTURES_DIR/version. */
#define GW_FIXTURE(version) FIXTURES_DIR "/" version

/*
 * Copy the samples' repository and key of release version into a new temporary directory
 * (work, len), as work/repo and work/repo.key (mode 0600, which git does not keep), so a
 * test never writes to the samples (a restore takes a lock there). Asserts it worked.
 */
void gw_fixture_copy(const char *version, char *work, size_t len);

/* Remove a directory gw_fixture_copy made (a failure is reported, not fatal). */
void gw_fixture_remove(const char *work);

/* The value of name in the samples' expected file, into out (asserts it is there). */
void gw_fixture_expect(const char *version, const char *name, char *out, size_t len);

/*
 * A CPU feature of CPUID leaf 7 (subleaf 0, EBX) that this host's KVM does not offer,
 * for test input made from a real CPUID table: its name, with its bit in *bit; NULL when
 * the host offers every candidate. Needs /dev/kvm (asserts it opens).
 */
const char *gw_fixture_missing_feature(unsigned *bit);

/*
 * Set bit in EBX of leaf 7 subleaf 0 of a CPUID table as the state blob stores it (count
 * u32, then count entries of 7 u32: function, index, flags, eax, ebx, ecx, edx). Asserts
 * the table has that leaf.
 */
void gw_fixture_set_leaf7_ebx(uint8_t *table, size_t len, unsigned bit);

#endif
