/* Fuzz the migration receiver (migrate/dest.c): HELLO, then every record until DONE. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "migrate/dest_priv.h"
#include "tests/fuzz/fuzz.h"
#include "util/byteorder.h"
#include "util/crc32c.h"
#include "transport/frame.h"
#include "transport/mem_stream.h"

/*
 * Input: the source's record stream as the destination's frame reader sees it once TLS
 * and zstd are peeled off (fuzz_zstd covers that layer), with its CRCs recomputed when
 * the stream header asks for them. The destination's machine is whatever the HELLO
 * describes, if small: RAM as plain buffers, the disk as a memfd. The harness runs what
 * mig_receive runs between accepting the connection and loading the state, on the same
 * functions: mig_dest_read_hello, mig_dest_check_layout, mig_dest_receive_data.
 */
#define FUZZ_RAM_MAX (4u << 20)
#define FUZZ_DISK_MAX (4u << 20)

static int disk_fd = -1;

/* Give d the machine its HELLO describes, as create_vm would; false when too large. */
static bool make_machine(struct mig_dest *d, uint8_t **ram)
{
	uint64_t total = 0;

	for (unsigned r = 0; r < d->hello.nregions; r++)
		total += d->hello.region[r].bytes;
	if (total > FUZZ_RAM_MAX || d->hello.disk_bytes > FUZZ_DISK_MAX)
		return false;
	*ram = fuzz_alloc((size_t)total);
	memset(*ram, 0, (size_t)total);
	total = 0;
	d->nreg = d->hello.nregions;
	for (unsigned r = 0; r < d->nreg; r++) {
		d->reg[r].gpa = d->hello.region[r].gpa;
		d->reg[r].bytes = d->hello.region[r].bytes;
		d->reg[r].hva = *ram + total;
		total += d->reg[r].bytes;
	}
	d->disk_bytes = d->hello.disk_bytes;
	d->nnics = d->hello.nnics;
	if (d->disk_bytes) {
		if (disk_fd < 0)
			disk_fd = memfd_create("godwit-fuzz-disk", MFD_CLOEXEC);
		if (disk_fd < 0 || ftruncate(disk_fd, 0) < 0 ||
		    ftruncate(disk_fd, (off_t)d->disk_bytes) < 0)
			abort();
		d->disk_path = "memfd:godwit-fuzz-disk";
		if (d->hello.flags & MIG_FLAG_WITH_DISK)
			d->disk_fd = disk_fd;
	}
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mig_dest d = { .disk_fd = -1 };
	struct stream *mem, *reply;
	struct mem_buf replies;
	uint8_t *s = fuzz_dup(data, size), *ram = NULL;
	char err[320] = "";
	int rc;

	fuzz_fix_frame_crcs(s, size);
	if (mem_stream_reader(&mem, s, size) < 0 ||
	    mem_stream_writer(&reply, &replies, MEM_STREAM_UNLIMITED) < 0)
		abort();
	d.conn = reply;
	d.buf = fuzz_alloc(MIG_DEST_BUF_BYTES);
	d.vdig = fuzz_alloc((size_t)MIG_MAX_RUN_DIGESTS * sizeof(uint64_t));
	rc = frame_reader_open_flags(&d.in, mem, FRAME_F_NO_CRC);
	if (rc < 0) {
		stream_close(mem, false);
		goto out;
	}
	rc = mig_dest_read_hello(&d, err, sizeof(err));
	if (rc == 0 && make_machine(&d, &ram))
		rc = mig_dest_check_layout(&d, err, sizeof(err));
	else
		rc = -EFBIG;
	if (rc == 0)
		rc = mig_dest_receive_data(&d, err, sizeof(err));
	if (rc == 0)
		fuzz_accepted++;
	else if (rc != -EFBIG)
		fuzz_assert_one_line(err); /* what 'godwit receive' prints */
	stream_close(d.in, false);
out:
	stream_close(reply, false);
	free(d.state);
	free(d.vpop);
	free(d.vdig);
	free(d.vblk);
	free(d.buf);
	free(ram);
	free(s);
	return 0;
}

/* ---- Seeds: what a source sends, through the project's encoders ----------------------- */

struct seed_stream {
	struct stream *f;
	struct mem_buf out;
};

static int seed_begin(struct seed_stream *w, uint16_t hflags, const struct mig_hello *h)
{
	struct stream *mem;
	uint8_t buf[512];
	int n, rc;

	rc = mem_stream_writer(&mem, &w->out, MEM_STREAM_UNLIMITED);
	if (rc < 0)
		return rc;
	rc = frame_writer_open_flags(&w->f, mem, hflags);
	if (rc < 0) {
		stream_close(mem, false);
		return rc;
	}
	n = mig_hello_encode(h, buf, sizeof(buf));
	return n < 0 ? n : frame_write(w->f, MIG_REC_HELLO, 0, buf, (size_t)n);
}

/* A PAGES, ZERO, DISK or DISK_ZERO record of count units from first, filled with v. */
static int seed_run(struct seed_stream *w, uint16_t type, uint32_t region, uint32_t count,
		    uint64_t first, size_t unit, uint8_t v)
{
	struct mig_run run = { .region = region, .count = count, .first = first };
	bool data = type == MIG_REC_PAGES || type == MIG_REC_DISK;
	size_t len = MIG_RUN_HDR_BYTES + (data ? count * unit : 0);
	uint8_t *p = fuzz_alloc(len);
	int rc;

	mig_run_encode(&run, p);
	memset(p + MIG_RUN_HDR_BYTES, v, len - MIG_RUN_HDR_BYTES);
	rc = frame_write(w->f, type, 0, p, len);
	free(p);
	return rc;
}

static int seed_end(struct seed_stream *w, const char *dir, const char *name)
{
	static const uint8_t state[] = "GWVS, not really: the destination keeps it for loading";
	uint8_t round[4] = { 0 };
	int rc;

	rc = frame_write(w->f, MIG_REC_ROUND_END, 0, round, sizeof(round));
	if (rc == 0)
		rc = frame_write(w->f, MIG_REC_STATE, 0, state, sizeof(state));
	if (rc == 0)
		rc = frame_write(w->f, MIG_REC_DONE, 0, NULL, 0);
	rc = stream_close(w->f, rc == 0);
	if (rc == 0)
		rc = fuzz_seed_write(dir, name, w->out.data, w->out.len);
	free(w->out.data);
	return rc;
}

int fuzz_write_seeds(const char *dir)
{
	struct mig_hello h = {
		.proto = MIG_PROTO_VERSION,
		.ram_bytes = 3 * MIG_PAGE_BYTES + 2 * MIG_PAGE_BYTES,
		.ncpus = 1,
		.nregions = 2,
		.region = { { 0, 3 * MIG_PAGE_BYTES }, { 1ull << 32, 2 * MIG_PAGE_BYTES } },
		.version = "fuzz",
	};
	struct seed_stream w;
	int rc;

	/* RAM only, plaintext stream (CRCs on). */
	rc = seed_begin(&w, 0, &h);
	if (rc == 0)
		rc = seed_run(&w, MIG_REC_PAGES, 0, 2, 1, MIG_PAGE_BYTES, 0xa5);
	if (rc == 0)
		rc = seed_run(&w, MIG_REC_ZERO, 1, 1, 1, MIG_PAGE_BYTES, 0);
	if (rc == 0)
		rc = seed_end(&w, dir, "seed-ram");
	if (rc < 0)
		return rc;

	/* With the disk, as over TLS (no CRCs). */
	h.flags = MIG_FLAG_WITH_DISK;
	h.disk_bytes = 5 * 4096;
	h.disk_block_bytes = 4096;
	rc = seed_begin(&w, FRAME_F_NO_CRC, &h);
	if (rc == 0)
		rc = seed_run(&w, MIG_REC_PAGES, 1, 1, 0, MIG_PAGE_BYTES, 0x3c);
	if (rc == 0)
		rc = seed_run(&w, MIG_REC_DISK, 0, 2, 3, 4096, 0x77);
	if (rc == 0)
		rc = seed_run(&w, MIG_REC_DISK_ZERO, 0, 1, 0, 4096, 0);
	if (rc == 0)
		rc = seed_end(&w, dir, "seed-ram-and-disk");
	if (rc < 0)
		return rc;

	/* Two NICs, and frames that reached the source's taps during the pause. */
	h.flags = 0;
	h.disk_bytes = 0;
	h.disk_block_bytes = 0;
	h.nnics = 2;
	rc = seed_begin(&w, FRAME_F_NO_CRC, &h);
	if (rc == 0)
		rc = seed_run(&w, MIG_REC_PAGES, 0, 1, 0, MIG_PAGE_BYTES, 0x11);
	for (uint32_t nic = 0; nic < 2 && rc == 0; nic++) {
		uint8_t f[MIG_NET_HDR_BYTES + 12 + 60] = { 0 };

		le32_encode(f, nic);
		memset(f + MIG_NET_HDR_BYTES + 12, 0xff, 6); /* a broadcast after the header */
		rc = frame_write(w.f, MIG_REC_NET_FRAME, 0, f, sizeof(f));
	}
	if (rc == 0)
		rc = seed_end(&w, dir, "seed-ram-and-net");
	return rc;
}
