/* The migration destination's record handling, shared by dest.c and the receiver's fuzz harness. */
#ifndef MIGRATE_DEST_PRIV_H
#define MIGRATE_DEST_PRIV_H

#include <stddef.h>
#include <stdint.h>

#include "migrate/migrate.h"

#define MIG_DEST_BUF_BYTES (MIG_RUN_HDR_BYTES + (size_t)MIG_MAX_RUN_PAGES * MIG_PAGE_BYTES)
#define MIG_DEST_STATE_MAX (16u << 20)

struct stream;

/*
 * One incoming migration. mig_receive fills it from the connection and the VM that
 * create_vm made; the fuzz harness (tests/fuzz/fuzz_mig_recv.c) fills it from its input,
 * plain buffers for RAM and a memfd for the disk, so the code below never needs a VM.
 * Owned by the receiving thread.
 */
struct mig_dest {
	struct stream *conn; /* replies go here; borrowed (owned by in through zstd) */
	struct stream *in;   /* frame reader of the source's records */
	struct vm *vm;       /* NULL in the harness */
	struct mig_hello hello;
	struct vm_ram_region reg[MIG_MAX_REGIONS]; /* RAM here, in the HELLO's order */
	unsigned nreg;
	uint64_t disk_bytes;   /* the disk here, 0 for none */
	unsigned nnics;        /* NICs here (its --net taps) */
	const char *disk_path; /* its name, for messages */
	int disk_fd;           /* open for writing when the source sends its disk, else -1 */
	uint8_t *buf;          /* MIG_DEST_BUF_BYTES */
	uint8_t *state;        /* the STATE record, malloc'd */
	size_t state_len;
	/*
	 * --verify: the next page (region, page) and block a VERIFY record must start at,
	 * what differed, and our own digests of the record's range.
	 */
	unsigned vreg;
	uint64_t vpage, vblock;
	uint64_t *vpop;  /* region vreg's vm_ram_populated bitmap, NULL if unknown */
	uint64_t *vdig;  /* MIG_MAX_RUN_DIGESTS digests */
	uint8_t *vblk;   /* one disk block */
	uint64_t bad_pages, bad_blocks, first_bad_gpa, first_bad_block;
	uint64_t net_frames; /* NET_FRAME records taken */
};

/*
 * Read the HELLO record from d->in into d->hello and check it on its own (d, err, errlen):
 * its encoding (mig_hello_decode) and protocol version. Refuses the source (a REFUSE
 * reply on d->conn) on failure. Returns 0, -EPROTO, or the stream's error; err says why.
 */
int mig_dest_read_hello(struct mig_dest *d, char *err, size_t errlen);

/*
 * The gate (gate.c): listen on p->listen and accept connections, MIG_GATE_MAX at a time,
 * until one authenticates and sends a valid HELLO within MIG_GATE_DEADLINE_MS of its
 * connect; report every other one to p->on_reject(ctx, ...). Then stop listening and hand
 * the winner over in d (conn, in, hello; d->buf is replaced by the one that holds it).
 * Returns 0, or -errno (the accept timeout, or the socket) with a reason in err.
 */
int mig_gate_accept(struct mig_dest *d, const struct mig_dest_params *p, void *ctx,
		    char *err, size_t errlen);

/*
 * Check the HELLO against the machine here (d, why, len): d->reg and d->nreg must match
 * its regions, d->disk_bytes its disk, d->nnics its NIC count. Returns 0 or -EPROTO with the difference in why.
 */
int mig_dest_check_layout(const struct mig_dest *d, char *why, size_t len);

/*
 * Apply the source's records to RAM and disk until DONE (d, err, errlen), answering each
 * ROUND_END with ROUND_DONE on d->conn; the STATE record is kept in d->state. Every run
 * is checked against its region or the disk before anything is written. Returns 0 after
 * DONE; -EPROTO for a malformed or unexpected record; -ECANCELED when the source aborted;
 * the stream's error; or a disk write's error (err names the disk and the reason).
 */
int mig_dest_receive_data(struct mig_dest *d, char *err, size_t errlen);

/*
 * A NET_FRAME record of len bytes in d->buf: checked (its NIC exists on both ends, its
 * length) and queued for that NIC's guest (vm_nic_carry_in; a full queue drops it and
 * counts it there). Returns 0 or -EPROTO.
 */
int mig_dest_net_frame(struct mig_dest *d, size_t len);

#endif
