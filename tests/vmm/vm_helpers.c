/* Helpers for the in-process VM tests: tiny PVH guests, scratch directories, console lines. */
#include "tests/vmm/vm_helpers.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tests/common/gw_test.h"
#include "vmm/vm.h"
#include "util/byteorder.h"
#include "util/clock.h"
#include "util/io.h"

#define ELF_ENTRY 0x100000ULL
#define ELF_CODE_OFF 0x200
#define ELF_NOTE_OFF 0x180

void tvm_write_pvh_elf(const char *path, const void *code, size_t len)
{
	size_t total = ELF_CODE_OFF + len;
	uint8_t *f = calloc(1, total);
	uint8_t *ph;
	uint32_t note[5] = { 4, 4, 18, 0, (uint32_t)ELF_ENTRY };

	cr_assert_not_null(f);
	memcpy(f, "\177ELF", 4);
	f[4] = 2; f[5] = 1; f[6] = 1;                 /* 64-bit, little-endian, version */
	f[16] = 2; f[18] = 62; f[20] = 1;             /* ET_EXEC, x86-64, EV_CURRENT */
	le64_encode(f + 24, ELF_ENTRY);                     /* e_entry */
	f[32] = 64;                                   /* e_phoff */
	f[52] = 64; f[54] = 56; f[56] = 2;            /* e_ehsize, e_phentsize, e_phnum */
	ph = f + 64;                                  /* PT_LOAD, R+X: the code at 1 MiB */
	ph[0] = 1; ph[4] = 5;
	le64_encode(ph + 8, ELF_CODE_OFF);
	le64_encode(ph + 16, ELF_ENTRY);
	le64_encode(ph + 24, ELF_ENTRY);
	le64_encode(ph + 32, len);
	le64_encode(ph + 40, len);
	le64_encode(ph + 48, 0x1000);
	ph = f + 64 + 56;                             /* PT_NOTE: "Xen", XEN_ELFNOTE_PHYS32_ENTRY */
	ph[0] = 4;
	le64_encode(ph + 8, ELF_NOTE_OFF);
	le64_encode(ph + 32, sizeof(note));
	le64_encode(ph + 40, sizeof(note));
	le64_encode(ph + 48, 4);
	memcpy(note + 3, "Xen", 4);
	memcpy(f + ELF_NOTE_OFF, note, sizeof(note));
	memcpy(f + ELF_CODE_OFF, code, len);
	tvm_file_put(path, f, total);
	free(f);
}

void tvm_dir_make(char *dir, size_t len)
{
	snprintf(dir, len, "/tmp/gwvmm.XXXXXX");
	cr_assert_not_null(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
}

void tvm_dir_remove(const char *dir)
{
	char cmd[256];

	if (!dir[0])
		return;
	if (getenv("GW_TEST_KEEP")) {
		fprintf(stderr, "kept %s\n", dir);
		return;
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
}

bool tvm_last_line(const char *file, const char *prefix, char *line, size_t len)
{
	char *text = gw_read_file(file);
	size_t plen = strlen(prefix);
	bool found = false;

	for (const char *p = text; p && *p;) {
		const char *nl = strchr(p, '\n');

		if (!nl)
			break;
		if ((size_t)(nl - p) >= plen && strncmp(p, prefix, plen) == 0) {
			size_t l = (size_t)(nl - p) < len - 1 ? (size_t)(nl - p) : len - 1;

			memcpy(line, p, l);
			line[l] = '\0';
			found = true;
		}
		p = nl + 1;
	}
	free(text);
	return found;
}

bool tvm_wait_lines(const char *file, const char *prefix, unsigned n, int timeout_ms)
{
	uint64_t end = clock_now_ms() + (uint64_t)timeout_ms;

	for (;;) {
		if (gw_count_lines(file, prefix) >= n)
			return true;
		if (clock_now_ms() >= end)
			return false;
		usleep(20000);
	}
}

void tvm_file_put(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int rc;

	cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
	rc = io_write_all(fd, buf, len);
	cr_assert_eq(rc, 0, "write %s: %s", path, strerror(-rc));
	close(fd);
}

void *tvm_file_get(const char *path, size_t *len)
{
	struct stat st;
	uint8_t *buf;
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
	cr_assert_eq(fstat(fd, &st), 0);
	buf = malloc((size_t)st.st_size + 1);
	cr_assert_not_null(buf);
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

		cr_assert_gt(n, 0, "read %s", path);
		got += (size_t)n;
	}
	close(fd);
	*len = got;
	return buf;
}

void tvm_make_disk(const char *path, uint64_t bytes)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);

	cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
	cr_assert_eq(ftruncate(fd, (off_t)bytes), 0);
	close(fd);
}

void tvm_vm_gone(struct vm **vm)
{
	if (!*vm)
		return;
	if (vm_state(*vm) != VM_STATE_CREATED) {
		vm_request_stop(*vm);
		vm_wait(*vm, NULL);
	}
	vm_destroy(*vm);
	*vm = NULL;
}
