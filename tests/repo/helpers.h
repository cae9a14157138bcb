/* Shared helpers for the repository tests: data patterns, temp repositories, file surgery. */
#ifndef TESTS_REPO_HELPERS_H
#define TESTS_REPO_HELPERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "repo/verify.h"

struct repo;
struct snap_manifest;

/* Deterministic pseudo-random bytes (buf, len, seed). */
void fill_random(uint8_t *buf, size_t len, uint64_t seed);

/* Like guest RAM (buf, len, seed): 40% zero 64 KiB chunks, some text-like, the rest random. */
void fill_guestlike(uint8_t *buf, size_t len, uint64_t seed);

/* malloc that fails the test instead of returning NULL. */
void *xmalloc(size_t len);

/* A fresh directory under /tmp (out, out_len); remove it recursively (dir). */
void tmpdir_make(char *out, size_t out_len);
void tmpdir_remove(const char *dir);

/* Whole-file helpers that fail the test on error. */
void file_write(const char *path, const void *data, size_t len);
uint8_t *file_read(const char *path, size_t *len);
bool file_exists(const char *path);

/* XOR byte off of path with mask (path, off, mask). */
void file_flip(const char *path, uint64_t off, uint8_t mask);

/* The path of the first object under dir/sub (a pack, index or snapshot), or fail. */
void first_object(const char *dir, const char *sub, char *out, size_t out_len);

/* How many objects (complete files, not .partial) lie under dir/sub, recursively. */
unsigned count_objects(const char *dir, const char *sub);

/* Open the repository at dir or fail the test (dir). */
struct repo *repo_open_ok(const char *dir);

/* Open the encrypted repository at dir with key or fail the test (dir, key). */
struct repo_key;
struct repo *repo_open_key_ok(const char *dir, const struct repo_key *key);

/* A deterministic key for tests, different for each seed (key, seed). */
void test_key(struct repo_key *key, uint8_t seed);

/*
 * The path of the first object under dir whose bytes contain needle (dir, needle, len,
 * out, out_len), or false: every file below dir, config included, is searched.
 */
bool tree_find(const char *dir, const void *needle, size_t len, char *out, size_t out_len);

/*
 * A manifest for a VM with one region of ram_bytes at gpa 0 and a disk of disk_bytes
 * (0: none), chunks of 64 KiB, every chunk stored from data (ram then disk), with a
 * state blob (m, r, data, ram_bytes, disk_bytes, vm_name).
 */
void manifest_fill(struct snap_manifest *m, struct repo *r, const uint8_t *data,
		   uint64_t ram_bytes, uint64_t disk_bytes, const char *vm_name);

/* Collects verify lines for assertions. */
struct lines {
	char text[64][512];
	unsigned n;
	unsigned problems;
};
void lines_collect(void *arg, enum repo_verify_level level, const char *line);
bool lines_has(const struct lines *l, const char *needle);
void lines_print(const struct lines *l);

#endif
