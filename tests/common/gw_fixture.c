/* The golden samples of tests/fixtures/: copies to work on, expected values, test input. */
#include "tests/common/gw_fixture.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

void gw_fixture_copy(const char *version, char *work, size_t len)
{
	char cmd[768], key[300];

	snprintf(work, len, "/tmp/gwfix.XXXXXX");
	cr_assert_not_null(mkdtemp(work));
	snprintf(cmd, sizeof(cmd), "cp -r '%s/%s/repo' '%s/%s/repo.key' '%s'/ && mkdir -p "
		 "'%s/repo/locks'", FIXTURES_DIR, version, FIXTURES_DIR, version, work, work);
	cr_assert_eq(system(cmd), 0, "%s", cmd);
	snprintf(key, sizeof(key), "%s/repo.key", work);
	cr_assert_eq(chmod(key, 0600), 0);
}

void gw_fixture_remove(const char *work)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", work);
	if (system(cmd) != 0)
		cr_log_warn("could not remove %s", work);
}

void gw_fixture_expect(const char *version, const char *name, char *out, size_t len)
{
	char path[300], line[256];
	size_t n = strlen(name);
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s/expected", FIXTURES_DIR, version);
	f = fopen(path, "r");
	cr_assert_not_null(f, "no %s", path);
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, name, n) == 0 && line[n] == '=') {
			line[strcspn(line, "\n")] = '\0';
			snprintf(out, len, "%s", line + n + 1);
			fclose(f);
			return;
		}
	}
	fclose(f);
	cr_assert_fail("no %s in %s", name, path);
}

const char *gw_fixture_missing_feature(unsigned *bit)
{
	static const struct {
		const char *name;
		unsigned bit;
	} candidates[] = {
		{ "avx512f", 16 }, { "rtm", 11 }, { "hle", 4 }, { "avx2", 5 }, { "bmi2", 8 },
	};
	size_t bytes = sizeof(struct kvm_cpuid2) + 256 * sizeof(struct kvm_cpuid_entry2);
	struct kvm_cpuid2 *host = calloc(1, bytes);
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	const char *name = NULL;
	uint32_t ebx = 0;

	cr_assert(host && fd >= 0);
	host->nent = 256;
	cr_assert_eq(ioctl(fd, KVM_GET_SUPPORTED_CPUID, host), 0);
	close(fd);
	for (uint32_t i = 0; i < host->nent; i++) {
		if (host->entries[i].function == 7 && host->entries[i].index == 0)
			ebx = host->entries[i].ebx;
	}
	free(host);
	for (size_t c = 0; c < sizeof(candidates) / sizeof(candidates[0]) && !name; c++) {
		if (!(ebx & (1u << candidates[c].bit))) {
			name = candidates[c].name;
			*bit = candidates[c].bit;
		}
	}
	return name;
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void gw_fixture_set_leaf7_ebx(uint8_t *table, size_t len, unsigned bit)
{
	uint32_t count = len >= 4 ? get32(table) : 0;
	bool set = false;

	cr_assert_geq(len, 4 + (size_t)count * 28);
	for (uint32_t i = 0; i < count; i++) {
		uint8_t *e = table + 4 + (size_t)i * 28;
		uint32_t ebx = get32(e + 16) | 1u << bit;

		if (get32(e) != 7 || get32(e + 4) != 0)
			continue;
		e[16] = (uint8_t)ebx;
		e[17] = (uint8_t)(ebx >> 8);
		e[18] = (uint8_t)(ebx >> 16);
		e[19] = (uint8_t)(ebx >> 24);
		set = true;
	}
	cr_assert(set, "the CPUID table has no leaf 7");
}
