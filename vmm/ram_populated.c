/* Which pages of guest RAM may hold data, from the VMM's own page tables (/proc/self). */
#include "vmm/vm_state.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmm/vm_priv.h"
#include "util/io.h"

/* A pagemap entry (Documentation/admin-guide/mm/pagemap.rst): 8 bytes per 4 KiB page. */
#define PAGEMAP_PRESENT (1ULL << 63)
#define PAGEMAP_SWAPPED (1ULL << 62) /* swap, migration and marker entries alike */
#define PAGEMAP_CHUNK_ENTRIES 8192u  /* 64 KiB read at a time: 32 MiB of RAM */

/* Longer lines are cut; only a VMA's address, device and inode and its VmFlags matter. */
#define SMAPS_LINE_BYTES 512

/* The smaps header of one VMA, as far as deciding whether its missing pages are zero. */
struct smaps_vma {
	uintptr_t start;
	uintptr_t end;
	bool private_anon; /* MAP_PRIVATE, no file: a missing page is the zero page */
};

/* One line of f into buf; the rest of a line that does not fit is dropped, *cut says so. */
static bool line_read(FILE *f, char *buf, size_t len, bool *cut)
{
	size_t n;
	int c;

	if (!fgets(buf, (int)len, f))
		return false;
	n = strlen(buf);
	*cut = n == 0 || buf[n - 1] != '\n';
	if (*cut) {
		do
			c = getc(f);
		while (c != EOF && c != '\n');
	}
	return true;
}

/* Parse "start-end perms offset major:minor inode [path]"; false for any other line. */
static bool smaps_vma_parse(const char *line, struct smaps_vma *v)
{
	unsigned long long start, end, off, ino;
	unsigned major, minor;
	char perms[5];

	if (sscanf(line, "%llx-%llx %4s %llx %x:%x %llu", &start, &end, perms, &off, &major,
		   &minor, &ino) != 7)
		return false;
	v->start = (uintptr_t)start;
	v->end = (uintptr_t)end;
	/*
	 * A file, shmem or hugetlbfs mapping (a device or inode) can hold data in pages its
	 * page tables do not map: only private anonymous memory reads as zero when missing.
	 */
	v->private_anon = strlen(perms) == 4 && perms[3] == 'p' && major == 0 && minor == 0 &&
			  ino == 0;
	return true;
}

/* Does a VmFlags list (" rd wr mr ...") hold the two-letter flag? */
static bool vmflags_has(const char *s, const char *flag)
{
	size_t n = strlen(flag);

	while (*s) {
		while (*s == ' ' || *s == '\t')
			s++;
		if (strncmp(s, flag, n) == 0 && (s[n] == ' ' || s[n] == '\n' || s[n] == '\0'))
			return true;
		while (*s && *s != ' ' && *s != '\t')
			s++;
	}
	return false;
}

/*
 * Check in /proc/self/smaps that [lo, hi) is covered, without a hole, by private anonymous
 * VMAs none of which userfaultfd watches for missing pages ("um" in VmFlags). VMAs come
 * in address order, and the kernel formats them (walking each one's page tables) only as
 * they are read, so reading stops at the last VMA that overlaps: the ones above RAM (the
 * libraries, the stack) are never formatted. Returns 0, -EBUSY for "um", or -ENOTSUP
 * when the file cannot be read or does not vouch for every byte.
 */
static int ram_vmas_check(uintptr_t lo, uintptr_t hi)
{
	char line[SMAPS_LINE_BYTES];
	uintptr_t covered = lo; /* [lo, covered) is checked, but for the pending VmFlags */
	bool pending = false;   /* an overlapping VMA's VmFlags line is still to come */
	bool cut;
	FILE *f;
	int rc = 0;

	f = fopen("/proc/self/smaps", "re");
	if (!f)
		return -ENOTSUP;
	while (rc == 0 && line_read(f, line, sizeof(line), &cut)) {
		struct smaps_vma v;

		if (smaps_vma_parse(line, &v)) {
			if (pending || v.start >= hi) {
				rc = pending ? -ENOTSUP : 0; /* no VmFlags: cannot tell */
				break;
			}
			if (v.end <= lo)
				continue;
			if (v.start > covered || !v.private_anon) {
				rc = -ENOTSUP;
				break;
			}
			covered = v.end;
			pending = true;
		} else if (pending && strncmp(line, "VmFlags:", 8) == 0) {
			if (cut)
				rc = -ENOTSUP;
			else if (vmflags_has(line + 8, "um"))
				rc = -EBUSY;
			pending = false;
			if (covered >= hi)
				break;
		}
	}
	if (rc == 0 && (pending || covered < hi || ferror(f)))
		rc = -ENOTSUP;
	fclose(f);
	return rc;
}

/* Set in bitmap (zeroed) the pages of [hva, hva + npages pages) present or swapped. */
static int ram_pagemap_read(uintptr_t hva, uint64_t npages, uint64_t *bitmap)
{
	uint64_t *e;
	int fd, rc = 0;

	e = malloc(PAGEMAP_CHUNK_ENTRIES * sizeof(*e));
	if (!e)
		return -ENOMEM;
	fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -ENOTSUP;
		goto out_free;
	}
	for (uint64_t done = 0; done < npages && rc == 0;) {
		uint64_t n = npages - done;

		if (n > PAGEMAP_CHUNK_ENTRIES)
			n = PAGEMAP_CHUNK_ENTRIES;
		rc = io_pread_all(fd, e, (size_t)n * sizeof(*e),
				  (hva / GUEST_PAGE_BYTES + done) * sizeof(*e));
		for (uint64_t k = 0; k < n && rc == 0; k++) {
			uint64_t pg = done + k;

			if (e[k] & (PAGEMAP_PRESENT | PAGEMAP_SWAPPED))
				bitmap[pg / 64] |= 1ULL << (pg % 64);
		}
		done += n;
	}
	close(fd);
out_free:
	free(e);
	return rc;
}

int vm_ram_populated(const struct vm *vm, unsigned i, uint64_t *bitmap)
{
	const struct guest_region *r;
	uintptr_t lo;
	uint64_t npages;
	int rc;

	if (i >= vm->mem.nregions)
		return -EINVAL;
	r = &vm->mem.region[i];
	lo = (uintptr_t)r->hva;
	npages = r->bytes / GUEST_PAGE_BYTES;
	/*
	 * The VMAs first, then the page tables. A userfaultfd registration is made only by a
	 * lazy restore (snapshot/lazy_mem.c), before the VM first runs, and lasts until the
	 * loader is done (every chunk resident, or a fatal error that stops the VM); nothing
	 * registers again later. So if smaps shows none now, none comes while the pagemap is
	 * read, and every page missing then reads as zero.
	 */
	rc = ram_vmas_check(lo, lo + (uintptr_t)r->bytes);
	if (rc < 0)
		return rc;
	memset(bitmap, 0, (size_t)(npages + 63) / 64 * sizeof(*bitmap));
	return ram_pagemap_read(lo, npages, bitmap);
}
