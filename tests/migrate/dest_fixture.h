/* A migration destination without a VM, for tests: records in from memory, replies out to memory. */
#ifndef TESTS_MIGRATE_DEST_FIXTURE_H
#define TESTS_MIGRATE_DEST_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "migrate/dest_priv.h"
#include "transport/mem_stream.h"

/*
 * Make d a destination of one RAM region at gpa 0 (ram, ram_bytes) with no disk, whose
 * replies go to a memory writer into replies (d->conn), and open *rec, a frame writer
 * into wire, for the test to write the source's records.
 */
void dest_fixture_open(struct mig_dest *d, uint8_t *ram, uint64_t ram_bytes,
		       struct mem_buf *wire, struct stream **rec, struct mem_buf *replies);

/* Close what dest_fixture_open and the test opened (d, rec: NULL if closed, wire, replies). */
void dest_fixture_close(struct mig_dest *d, struct stream *rec, struct mem_buf *wire,
			struct mem_buf *replies);

#endif
