/* Shared helpers for the repository tests: data patterns, temp repositories, file surgery. */
#include "helpers.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "repo/manifest.h"
#include "repo/repo.h"
#include "repo/repo_key.h"

void fill_random(uint8_t *buf, size_t len, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = (uint8_t)(x >> 24);
	}
}

void fill_guestlike(uint8_t *buf, size_t len, uint64_t seed)
{
	static const char words[] = "kernel page table dirty bitmap migrate vcpu state ";
	const size_t chunk = 64 << 10;

	for (size_t off = 0; off < len; off += chunk) {
		size_t n = len - off < chunk ? len - off : chunk;
		unsigned kind = (unsigned)((off / chunk * 2654435761u + seed) % 10);

		if (kind < 4)
			memset(buf + off, 0, n);
		else if (kind < 7)
			for (size_t i = 0; i < n; i++)
				buf[off + i] = (uint8_t)words[(i + kind * 7 + off / 4096) % (sizeof(words) - 1)] ^
					       (uint8_t)(i / 4096 == 3 ? off >> 16 : 0);
		else
			fill_random(buf + off, n, seed + off);
	}
}

void *xmalloc(size_t len)
{
	void *p = malloc(len ? len : 1);

	cr_assert_not_null(p);
	return p;
}

void tmpdir_make(char *out, size_t out_len)
{
	cr_assert(snprintf(out, out_len, "/tmp/gw-snapshot-XXXXXX") < (int)out_len);
	cr_assert_not_null(mkdtemp(out));
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	remove(path);
	return 0;
}

void tmpdir_remove(const char *dir)
{
	if (dir[0])
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

void file_write(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	cr_assert_not_null(f, "fopen %s: %s", path, strerror(errno));
	cr_assert_eq(fwrite(data, 1, len, f), len);
	cr_assert_eq(fclose(f), 0);
}

uint8_t *file_read(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	long n;

	cr_assert_not_null(f, "fopen %s: %s", path, strerror(errno));
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = xmalloc((size_t)n);
	cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

bool file_exists(const char *path)
{
	return access(path, F_OK) == 0;
}

void file_flip(const char *path, uint64_t off, uint8_t mask)
{
	int fd = open(path, O_RDWR);
	uint8_t b;

	cr_assert(fd >= 0);
	cr_assert_eq(pread(fd, &b, 1, (off_t)off), 1);
	b ^= mask;
	cr_assert_eq(pwrite(fd, &b, 1, (off_t)off), 1);
	close(fd);
}

static bool find_first(const char *path, char *out, size_t out_len)
{
	DIR *d = opendir(path);
	struct dirent *de;
	bool found = false;

	if (!d)
		return false;
	while (!found && (de = readdir(d))) {
		char sub[512];
		struct stat st;

		if (de->d_name[0] == '.' || strstr(de->d_name, ".partial"))
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
		stat(sub, &st);
		if (S_ISDIR(st.st_mode)) {
			found = find_first(sub, out, out_len);
		} else {
			snprintf(out, out_len, "%s", sub);
			found = true;
		}
	}
	closedir(d);
	return found;
}

void first_object(const char *dir, const char *sub, char *out, size_t out_len)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, sub);
	cr_assert(find_first(path, out, out_len), "no object under %s", path);
}

static unsigned count_in(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	unsigned n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char sub[512];
		struct stat st;

		if (de->d_name[0] == '.' || strstr(de->d_name, ".partial"))
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
		stat(sub, &st);
		n += S_ISDIR(st.st_mode) ? count_in(sub) : 1;
	}
	closedir(d);
	return n;
}

unsigned count_objects(const char *dir, const char *sub)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, sub);
	return count_in(path);
}

struct repo *repo_open_ok(const char *dir)
{
	struct repo *r;
	char err[256] = "";

	cr_assert_eq(repo_open(&r, dir, err, sizeof(err)), 0, "repo_open: %s", err);
	return r;
}

struct repo *repo_open_key_ok(const char *dir, const struct repo_key *key)
{
	struct repo *r;
	char err[256] = "";

	cr_assert_eq(repo_open_keyed(&r, dir, key, err, sizeof(err)), 0, "repo_open_keyed: %s", err);
	return r;
}

void test_key(struct repo_key *key, uint8_t seed)
{
	fill_random(key->b, sizeof(key->b), 0x6b6579u + seed);
}

bool tree_find(const char *dir, const void *needle, size_t len, char *out, size_t out_len)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	bool found = false;

	cr_assert_not_null(d, "opendir %s: %s", dir, strerror(errno));
	while (!found && (de = readdir(d))) {
		char sub[512];
		struct stat st;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name);
		cr_assert_eq(lstat(sub, &st), 0);
		if (S_ISDIR(st.st_mode)) {
			found = tree_find(sub, needle, len, out, out_len);
		} else {
			size_t n;
			uint8_t *buf = file_read(sub, &n);

			found = n >= len && memmem(buf, n, needle, len) != NULL;
			if (found)
				snprintf(out, out_len, "%s", sub);
			free(buf);
		}
	}
	closedir(d);
	return found;
}

void manifest_fill(struct snap_manifest *m, struct repo *r, const uint8_t *data,
		   uint64_t ram_bytes, uint64_t disk_bytes, const char *vm_name)
{
	const uint32_t chunk = 64 << 10;
	char state[64];

	manifest_init(m);
	snprintf(m->vm_name, sizeof(m->vm_name), "%s", vm_name);
	snprintf(m->cpu_features, sizeof(m->cpu_features), "sse4_2 avx2");
	m->ncpus = 2;
	cr_assert_eq(manifest_add_region(m, 0, ram_bytes, chunk), 0);
	for (uint64_t i = 0; i < m->regions[0].nchunks; i++) {
		uint64_t len = ram_bytes - i * chunk < chunk ? ram_bytes - i * chunk : chunk;

		cr_assert_eq(repo_chunk_put(r, data + i * chunk, len, &m->regions[0].ids[i]), 0);
	}
	if (disk_bytes) {
		cr_assert_eq(manifest_set_disk(m, disk_bytes, chunk), 0);
		for (uint64_t i = 0; i < m->disk_nblocks; i++) {
			uint64_t len = disk_bytes - i * chunk < chunk ? disk_bytes - i * chunk : chunk;

			cr_assert_eq(repo_chunk_put(r, data + ram_bytes + i * chunk, len,
						    &m->disk_ids[i]), 0);
		}
	}
	snprintf(state, sizeof(state), "state of %s", vm_name);
	cr_assert_eq(repo_blob_put(r, BLOB_T_STATE, state, strlen(state), &m->state_id), 0);
}

void lines_collect(void *arg, enum repo_verify_level level, const char *line)
{
	struct lines *l = arg;

	if (level == REPO_VERIFY_PROBLEM)
		l->problems++;
	if (l->n < sizeof(l->text) / sizeof(l->text[0]))
		snprintf(l->text[l->n++], sizeof(l->text[0]), "%s", line);
}

bool lines_has(const struct lines *l, const char *needle)
{
	for (unsigned i = 0; i < l->n; i++)
		if (strstr(l->text[i], needle))
			return true;
	return false;
}

void lines_print(const struct lines *l)
{
	for (unsigned i = 0; i < l->n; i++)
		cr_log_info("verify: %s", l->text[i]);
}
