/* Helpers for the in-process VM tests: tiny PVH guests, scratch directories, console lines. */
#ifndef TESTS_VMM_VM_HELPERS_H
#define TESTS_VMM_VM_HELPERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Write a PVH ELF whose code (len bytes) is loaded at and entered at 0x100000 (32-bit
 * protected mode, paging off, flat segments: the PVH entry state). */
void tvm_write_pvh_elf(const char *path, const void *code, size_t len);

/* mkdtemp a scratch directory into dir (len >= 64); tvm_dir_remove deletes it and all in it
 * (unless GW_TEST_KEEP is set in the environment: then it names it on stderr, for debugging). */
void tvm_dir_make(char *dir, size_t len);
void tvm_dir_remove(const char *dir);


/* The last complete line of file starting with prefix, into line; false if none. */
bool tvm_last_line(const char *file, const char *prefix, char *line, size_t len);

/* Wait up to timeout_ms for at least n complete lines starting with prefix in file. */
bool tvm_wait_lines(const char *file, const char *prefix, unsigned n, int timeout_ms);

/* Write len bytes to a new file at path, or read a whole file (malloc'd, *len set). */
void tvm_file_put(const char *path, const void *buf, size_t len);
void *tvm_file_get(const char *path, size_t *len);

/* A new sparse disk image of bytes at path (replacing one there). */
void tvm_make_disk(const char *path, uint64_t bytes);

struct vm;

/* Stop *vm if it ran, destroy it and set *vm to NULL (nothing if already NULL). */
void tvm_vm_gone(struct vm **vm);

#endif
