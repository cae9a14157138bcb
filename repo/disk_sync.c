/* Disk capture and in-place restore by comparing each block's blob id with the snapshot's disk map. */
#include "repo/disk_sync.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "repo/manifest.h"
#include "repo/repo.h"
#include "util/io.h"

static uint64_t block_len(uint64_t disk_bytes, uint32_t block, uint64_t i)
{
	uint64_t off = i * block;

	return disk_bytes - off < block ? disk_bytes - off : block;
}

int disk_capture(struct repo *r, int fd, const struct snap_manifest *parent,
		 const uint64_t *changed, struct snap_manifest *m, struct disk_sync_stats *st)
{
	struct disk_sync_stats s = { .blocks = m->disk_nblocks };
	bool use_parent = parent && changed && parent->disk_bytes &&
			  parent->disk_block_bytes == m->disk_block_bytes;
	uint8_t *buf;
	int rc = 0;

	if (m->disk_nblocks == 0)
		goto out;
	buf = malloc(m->disk_block_bytes);
	if (!buf)
		return -ENOMEM;
	for (uint64_t i = 0; i < m->disk_nblocks; i++) {
		uint64_t len = block_len(m->disk_bytes, m->disk_block_bytes, i);

		if (use_parent && i < parent->disk_nblocks &&
		    !(changed[i / 64] >> (i % 64) & 1) &&
		    block_len(parent->disk_bytes, parent->disk_block_bytes, i) == len &&
		    repo_blob_known(r, &parent->disk_ids[i])) {
			m->disk_ids[i] = parent->disk_ids[i];
			s.reused++;
			continue;
		}
		rc = io_pread_all(fd, buf, (size_t)len, i * m->disk_block_bytes);
		if (rc < 0)
			break;
		s.bytes_read += len;
		rc = repo_chunk_put(r, buf, (size_t)len, &m->disk_ids[i]);
		if (rc < 0)
			break;
		if (blob_id_is_zero(&m->disk_ids[i]))
			s.zero++;
		else
			s.stored++;
	}
	free(buf);
out:
	if (st)
		*st = s;
	return rc;
}

int disk_restore(struct repo *r, const struct snap_manifest *m, int fd,
		 struct disk_sync_stats *st)
{
	struct disk_sync_stats s = { .blocks = m->disk_nblocks };
	uint8_t *buf = NULL, *zeros = NULL;
	uint64_t old_bytes;
	struct stat sb;
	int rc = 0;

	if (fstat(fd, &sb) < 0)
		return -errno;
	old_bytes = (uint64_t)sb.st_size;
	if (old_bytes != m->disk_bytes && ftruncate(fd, (off_t)m->disk_bytes) < 0)
		return -errno;
	if (m->disk_nblocks) {
		buf = malloc(m->disk_block_bytes);
		zeros = calloc(1, m->disk_block_bytes);
		if (!buf || !zeros) {
			rc = -ENOMEM;
			goto out;
		}
	}
	for (uint64_t i = 0; i < m->disk_nblocks; i++) {
		const struct blob_id *want = &m->disk_ids[i];
		uint64_t off = i * m->disk_block_bytes;
		size_t len = (size_t)block_len(m->disk_bytes, m->disk_block_bytes, i);
		bool have_zero = off >= old_bytes; /* extended by the truncate: zeros, unread */

		if (!have_zero) {
			struct blob_id got;

			rc = io_pread_all(fd, buf, len, off);
			if (rc < 0)
				goto out;
			s.bytes_read += len;
			if (blob_id_is_zero(want)) {
				have_zero = blob_data_is_zero(buf, len);
			} else {
				rc = blob_id_compute(r, buf, len, &got);
				if (rc < 0)
					goto out;
				if (blob_id_eq(&got, want)) {
					s.reused++;
					continue;
				}
			}
		}
		if (blob_id_is_zero(want)) {
			s.zero++;
			if (have_zero) {
				s.reused++;
				continue;
			}
			rc = io_pwrite_all(fd, zeros, len, off);
		} else {
			rc = repo_blob_read(r, want, buf, len);
			if (rc < 0)
				goto out;
			s.fetched++;
			rc = io_pwrite_all(fd, buf, len, off);
		}
		if (rc < 0)
			goto out;
		s.bytes_written += len;
	}
	if (fdatasync(fd) < 0)
		rc = -errno;
out:
	free(buf);
	free(zeros);
	if (st)
		*st = s;
	return rc;
}
