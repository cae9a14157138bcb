/* A migration destination without a VM, for tests: records in from memory, replies out to memory. */
#include "tests/migrate/dest_fixture.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "transport/frame.h"

void dest_fixture_open(struct mig_dest *d, uint8_t *ram, uint64_t ram_bytes,
		       struct mem_buf *wire, struct stream **rec, struct mem_buf *replies)
{
	struct stream *mem;

	memset(d, 0, sizeof(*d));
	memset(wire, 0, sizeof(*wire));
	memset(replies, 0, sizeof(*replies));
	cr_assert_eq(mem_stream_writer(&mem, wire, MEM_STREAM_UNLIMITED), 0);
	cr_assert_eq(frame_writer_open(rec, mem), 0);
	cr_assert_eq(mem_stream_writer(&d->conn, replies, MEM_STREAM_UNLIMITED), 0);
	d->disk_fd = -1;
	d->buf = malloc(MIG_DEST_BUF_BYTES);
	cr_assert_not_null(d->buf);
	d->nreg = 1;
	d->reg[0] = (struct vm_ram_region){ .gpa = 0, .bytes = ram_bytes, .hva = ram };
}

void dest_fixture_close(struct mig_dest *d, struct stream *rec, struct mem_buf *wire,
			struct mem_buf *replies)
{
	stream_close(rec, false);
	stream_close(d->in, false);
	stream_close(d->conn, false);
	if (d->disk_fd >= 0)
		close(d->disk_fd);
	free(d->state);
	free(d->buf);
	free(wire->data);
	free(replies->data);
}
