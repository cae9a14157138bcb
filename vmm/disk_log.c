/* The disk change log: blocks the guest wrote since a base, kept in a sidecar file. */
#include "vmm/disk_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/crc32c.h"
#include "util/durable.h"
#include "util/io.h"
#include "vmm/state/state_codec.h"
#include "vmm/vm_priv.h"

/* The image as the sidecar identifies it. */
struct image_id {
	uint64_t dev, ino, size, mtime_ns;
};

static int image_id_get(int fd, struct image_id *id)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	*id = (struct image_id){
		.dev = (uint64_t)st.st_dev,
		.ino = (uint64_t)st.st_ino,
		.size = (uint64_t)st.st_size,
		.mtime_ns = (uint64_t)st.st_mtim.tv_sec * 1000000000ULL + (uint64_t)st.st_mtim.tv_nsec,
	};
	return 0;
}

static size_t sidecar_bytes(const struct disk_log *l)
{
	return DISK_LOG_HEADER_BYTES + l->nwords * 8 + 4;
}

/* Parse a sidecar into l: true if it is CLEAN, well formed and matches id. */
static bool sidecar_parse(struct disk_log *l, const uint8_t *buf, size_t len,
			  const struct image_id *id)
{
	struct dec d;
	uint32_t version, flags, pad, base_len, pad2;
	uint64_t block, disk, dev, ino, size, mtime;
	char base[DISK_LOG_BASE_MAX];

	if (len != sidecar_bytes(l) || crc32c(0, buf, len - 4) != le32_decode(buf + len - 4))
		return false;
	d = dec_init(buf, len - 4);
	if (memcmp(dec_take(&d, 4), DISK_LOG_MAGIC, 4) != 0 || !dec_u32(&d, &version) ||
	    version != DISK_LOG_VERSION)
		return false;
	dec_u32(&d, &flags);
	dec_u32(&d, &pad);
	dec_u64(&d, &block);
	dec_u64(&d, &disk);
	dec_u64(&d, &dev);
	dec_u64(&d, &ino);
	dec_u64(&d, &size);
	dec_u64(&d, &mtime);
	if (flags != DISK_LOG_F_CLEAN || pad != 0 || block != VM_DISK_BLOCK_BYTES ||
	    disk != l->disk_bytes || dev != id->dev || ino != id->ino || size != id->size ||
	    mtime != id->mtime_ns)
		return false;
	dec_u32(&d, &base_len);
	dec_u32(&d, &pad2);
	if (base_len > DISK_LOG_BASE_MAX || pad2 != 0)
		return false;
	dec_bytes(&d, base, sizeof(base));
	if (memchr(base, '\0', base_len))
		return false;
	for (size_t k = 0; k < l->nwords; k++)
		dec_u64(&d, &l->bits[k]);
	if (!dec_done(&d))
		return false;
	memcpy(l->base, base, base_len);
	l->base[base_len] = '\0';
	return true;
}

/* Read the sidecar if there is one. Returns 1 if one exists (whatever it holds), else 0. */
static int sidecar_load(struct disk_log *l, const struct image_id *id)
{
	size_t want = sidecar_bytes(l), got = 0;
	uint8_t *buf;
	ssize_t n;
	int fd;

	fd = open(l->sidecar, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : 1;
	buf = malloc(want + 1);
	if (buf) {
		/* One byte more than a good file has, to notice a longer one. */
		while (got < want + 1 && (n = read(fd, buf + got, want + 1 - got)) > 0)
			got += (size_t)n;
		l->valid = sidecar_parse(l, buf, got, id);
		free(buf);
	}
	close(fd);
	if (!l->valid) {
		memset(l->bits, 0, l->nwords * 8);
		l->base[0] = '\0';
	}
	return 1;
}

/* Durably replace the sidecar: temporary file, fsync, rename, fsync the directory. */
static int sidecar_write(const struct disk_log *l, bool clean, const struct image_id *id)
{
	size_t blen = strlen(l->base);
	struct vs_enc e;
	int rc;

	vs_enc_init(&e);
	vs_enc_bytes(&e, DISK_LOG_MAGIC, 4);
	vs_enc_u32(&e, DISK_LOG_VERSION);
	vs_enc_u32(&e, clean ? DISK_LOG_F_CLEAN : 0);
	vs_enc_u32(&e, 0);
	vs_enc_u64(&e, VM_DISK_BLOCK_BYTES);
	vs_enc_u64(&e, l->disk_bytes);
	vs_enc_u64(&e, id->dev);
	vs_enc_u64(&e, id->ino);
	vs_enc_u64(&e, id->size);
	vs_enc_u64(&e, id->mtime_ns);
	vs_enc_u32(&e, (uint32_t)blen);
	vs_enc_u32(&e, 0);
	vs_enc_bytes(&e, l->base, blen);
	for (size_t k = blen; k < DISK_LOG_BASE_MAX; k++)
		vs_enc_u8(&e, 0);
	for (size_t k = 0; k < l->nwords; k++)
		vs_enc_u64(&e, l->bits[k]);
	vs_enc_u32(&e, e.err ? 0 : crc32c(0, e.buf, e.len));
	rc = e.err;
	if (rc == 0)
		rc = durable_publish(AT_FDCWD, l->sidecar, e.buf, e.len, 0600, 0);
	vs_enc_free(&e);
	return rc;
}

int disk_log_open(struct disk_log *l, const char *path, int image_fd, uint64_t disk_bytes,
		  char *err, size_t errlen)
{
	struct image_id id;
	int exists, rc;

	*l = (struct disk_log){ .image_fd = image_fd, .disk_bytes = disk_bytes };
	l->nblocks = (disk_bytes + VM_DISK_BLOCK_BYTES - 1) / VM_DISK_BLOCK_BYTES;
	l->nwords = (size_t)((l->nblocks + 63) / 64);
	l->bits = calloc(l->nwords ? l->nwords : 1, sizeof(uint64_t));
	l->sidecar = malloc(strlen(path) + sizeof(DISK_LOG_SUFFIX));
	if (!l->bits || !l->sidecar) {
		disk_log_free(l);
		snprintf(err, errlen, "disk image %s: change log: out of memory", path);
		return -ENOMEM;
	}
	strcpy(l->sidecar, path);
	strcat(l->sidecar, DISK_LOG_SUFFIX);
	rc = image_id_get(image_fd, &id);
	if (rc < 0) {
		snprintf(err, errlen, "disk image %s: %s", path, strerror(-rc));
		disk_log_free(l);
		return rc;
	}
	exists = sidecar_load(l, &id);
	/* From now on the guest may write: a crash must not leave a CLEAN sidecar behind. */
	rc = sidecar_write(l, false, &id);
	if (rc == 0)
		return 0;
	if (exists && unlink(l->sidecar) < 0 && errno != ENOENT) {
		rc = -errno;
		snprintf(err, errlen, "disk image %s: cannot replace or remove the stale change log "
			 "%s: %s", path, l->sidecar, strerror(-rc));
		disk_log_free(l);
		return rc;
	}
	/* Nothing stale can be trusted later; keep the log in memory only. */
	free(l->sidecar);
	l->sidecar = NULL;
	return 0;
}

void disk_log_mark(struct disk_log *l, uint64_t off, uint64_t len)
{
	uint64_t first, last;

	if (len == 0 || off >= l->disk_bytes)
		return;
	if (len > l->disk_bytes - off)
		len = l->disk_bytes - off;
	first = off / VM_DISK_BLOCK_BYTES;
	last = (off + len - 1) / VM_DISK_BLOCK_BYTES;
	for (uint64_t b = first; b <= last; b++) {
		uint64_t bit = 1ULL << (b % 64);

		l->bits[b / 64] |= bit;
		for (unsigned k = 0; k < DISK_LOG_MAX_VIEWS; k++)
			if (l->view[k])
				l->view[k][b / 64] |= bit;
	}
}

/* The last word's bits past the disk's end, cleared. */
static uint64_t last_word_mask(const struct disk_log *l, size_t k)
{
	if (k + 1 == l->nwords && l->nblocks % 64)
		return (1ULL << (l->nblocks % 64)) - 1;
	return ~0ULL;
}

int disk_log_view_add(struct disk_log *l, int *out)
{
	unsigned k;

	for (k = 0; k < DISK_LOG_MAX_VIEWS && l->view[k]; k++)
		;
	if (k == DISK_LOG_MAX_VIEWS)
		return -EBUSY;
	l->view[k] = malloc((l->nwords ? l->nwords : 1) * sizeof(uint64_t));
	if (!l->view[k])
		return -ENOMEM;
	/* A new consumer has seen nothing: every block is pending for it. */
	for (size_t w = 0; w < l->nwords; w++)
		l->view[k][w] = last_word_mask(l, w);
	*out = (int)k;
	return 0;
}

void disk_log_view_fetch(struct disk_log *l, int k, uint64_t *bitmap)
{
	for (size_t w = 0; w < l->nwords; w++) {
		bitmap[w] |= l->view[k][w];
		l->view[k][w] = 0;
	}
}

void disk_log_view_remove(struct disk_log *l, int k)
{
	free(l->view[k]);
	l->view[k] = NULL;
}

bool disk_log_valid(const struct disk_log *l, const char *base)
{
	return l->valid && base && strcmp(l->base, base) == 0;
}

int disk_log_fetch(struct disk_log *l, uint64_t *bitmap, const char *base)
{
	if (!base || strlen(base) > DISK_LOG_BASE_MAX)
		return -ENAMETOOLONG;
	for (size_t k = 0; k < l->nwords; k++) {
		uint64_t w = l->valid ? l->bits[k] : ~0ULL;

		bitmap[k] |= w & last_word_mask(l, k);
		l->bits[k] = 0;
	}
	strcpy(l->base, base);
	l->valid = true;
	return 0;
}

int disk_log_close(struct disk_log *l)
{
	struct image_id id;
	int rc = 0;

	if (l->sidecar) {
		/*
		 * The identity must describe the image as it will stay: fsync (not fdatasync)
		 * so its data and mtime are on disk before the sidecar that vouches for them.
		 */
		while (fsync(l->image_fd) < 0 && errno == EINTR)
			;
		rc = image_id_get(l->image_fd, &id);
		if (rc == 0 && l->valid)
			rc = sidecar_write(l, true, &id);
	}
	disk_log_free(l);
	return rc;
}

void disk_log_free(struct disk_log *l)
{
	for (unsigned k = 0; k < DISK_LOG_MAX_VIEWS; k++)
		disk_log_view_remove(l, (int)k);
	free(l->bits);
	free(l->sidecar);
	l->bits = NULL;
	l->sidecar = NULL;
}

/* ---- the VM's view (vm_state.h) --------------------------------------------------- */

bool vm_disk_present(const struct vm *vm)
{
	return vm->blk != NULL;
}

uint64_t vm_disk_bytes(const struct vm *vm)
{
	return vm->blk ? virtio_blk_capacity_bytes(vm->blk) : 0;
}

const char *vm_disk_path(const struct vm *vm)
{
	return vm->blk ? vm->disk_path : NULL;
}

bool vm_disk_log_valid(const struct vm *vm, const char *base)
{
	return vm->blk && virtio_blk_log_valid(vm->blk, base);
}

int vm_disk_log_fetch(struct vm *vm, uint64_t *bitmap, const char *base)
{
	if (!vm->blk)
		return -ENODEV;
	return virtio_blk_log_fetch(vm->blk, bitmap, base);
}
