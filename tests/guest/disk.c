/* Carries out the disk= options through the virtio-blk driver, in chunks of its buffer. */
#include "disk.h"

#include "console.h"
#include "lib.h"
#include "virtio_blk.h"

#define DISK_WORDS (VBLK_SECTOR_BYTES / 8)

uint64_t disk_pattern_word(uint64_t seed, uint64_t sector, uint32_t k)
{
	return splitmix64(seed ^ (sector << 6 | k));
}

static void disk_store_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t disk_load_le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint8_t disk_worst(uint8_t a, uint8_t b)
{
	return a > b ? a : b;
}

/* Each op walks [lba, lba + count) in chunks of the driver's buffer. */
static void disk_op_run(const struct disk_op *op)
{
	uint8_t *buf = vblk_buffer();
	uint8_t status = VBLK_S_OK;
	uint64_t bad = 0;
	uint32_t crc = 0;

	for (uint64_t done = 0; done < op->count;) {
		uint64_t lba = op->lba + done;
		uint32_t n = op->count - done > VBLK_CHUNK_SECTORS ? VBLK_CHUNK_SECTORS
								   : (uint32_t)(op->count - done);
		uint8_t st;

		if (op->kind == 'w') {
			for (uint32_t s = 0; s < n; s++) {
				for (uint32_t k = 0; k < DISK_WORDS; k++)
					disk_store_le64(buf + s * VBLK_SECTOR_BYTES + k * 8,
							disk_pattern_word(op->seed, lba + s, k));
			}
			st = vblk_request(VBLK_T_OUT, lba, n);
		} else {
			st = vblk_request(VBLK_T_IN, lba, n);
			if (op->kind == 'v') {
				for (uint32_t s = 0; s < n; s++) {
					for (uint32_t k = 0; k < DISK_WORDS; k++) {
						const uint8_t *w = buf + s * VBLK_SECTOR_BYTES + k * 8;

						if (st != VBLK_S_OK || disk_load_le64(w) !=
						    disk_pattern_word(op->seed, lba + s, k)) {
							bad++;
							break;
						}
					}
				}
			} else if (st == VBLK_S_OK) {
				crc = crc32_update(crc, buf, (uint64_t)n * VBLK_SECTOR_BYTES);
			}
		}
		status = disk_worst(status, st);
		done += n;
	}
	switch (op->kind) {
	case 'w':
		status = disk_worst(status, vblk_request(VBLK_T_FLUSH, 0, 0));
		console_printf("DISK W lba=%lu n=%lu status=%u\n", op->lba, op->count, status);
		break;
	case 'v':
		console_printf("DISK V lba=%lu n=%lu bad=%lu status=%u\n", op->lba, op->count, bad,
			       status);
		break;
	default:
		console_printf("DISK R lba=%lu n=%lu crc=%08x status=%u\n", op->lba, op->count, crc,
			       status);
		break;
	}
}

void disk_run(const struct guest_options *opt, bool present)
{
	if (opt->disk_ops == 0)
		return;
	if (!present) {
		console_printf("DISK none\n");
		return;
	}
	for (uint32_t i = 0; i < opt->disk_ops; i++)
		disk_op_run(&opt->disk[i]);
}
