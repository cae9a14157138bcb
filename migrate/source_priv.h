/* The migration source's object, shared by its engine, sender and throttle files. */
#ifndef MIGRATE_SOURCE_PRIV_H
#define MIGRATE_SOURCE_PRIV_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "migrate/migrate.h"

struct stream;

struct mig_throttle {
	pthread_t thread;
	bool running;
	/* Under the throttle's lock: the share of time the vCPUs are held paused, 0..99. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned pct;
	bool stop;
	struct vm *vm;
};

/* A frame taken before the commit point, kept to give back if the move is rolled back. */
struct mig_kept_frame {
	struct mig_kept_frame *next;
	uint32_t nic;
	uint32_t len;
	uint8_t data[];
};

/* Frames carried from the source's taps to the destination (net_carry.c): engine only. */
struct mig_carry {
	uint8_t *buf; /* MIG_NET_HDR_BYTES + VM_NIC_FRAME_MAX: a record being built */
	struct mig_kept_frame *kept, *kept_tail;
	uint64_t frames, bytes, dropped;
};

struct mig_source {
	/* Fixed at start. */
	struct vm *vm;
	struct mig_params p;
	pthread_t thread;
	uint64_t t0_ns;
	int wake[2]; /* a pipe: a cancel writes wake[1] to cut a connect in progress short */

	/*
	 * Under lock: what other threads read or set. fd is the socket from the moment it
	 * is connected until close_out: a cancel shuts it down to wake the engine from any
	 * wait on the peer, but only before the commit point (st.state < COMMIT).
	 */
	pthread_mutex_t lock;
	struct mig_stats st;
	bool cancel;
	bool finished;
	/* The outgoing stream (out) while it is open, for stream_stats: set by the engine
	 * once the stack is built, cleared by close_out before it closes. */
	struct stream *wire;

	/* Engine thread only. */
	struct stream *conn;   /* borrowed: the frame writer owns it through zstd */
	struct stream *out;    /* frame writer */
	struct stream *zs;     /* borrowed: the zstd writer under out, for its counts */
	int fd;                /* the socket, for a cancel's shutdown (above) */
	struct vm_dirty_consumer *dirty_c; /* this migration's view of the dirty log */
	unsigned nreg;
	struct vm_ram_region reg[MIG_MAX_REGIONS];
	uint64_t npages[MIG_MAX_REGIONS];
	uint64_t *dirty[MIG_MAX_REGIONS];
	uint64_t nblocks;
	uint64_t *disk_dirty;
	int disk_fd;
	uint8_t *stage;        /* plaintext only: a stable copy of pages while they are framed */
	uint8_t *disk_buf;
	bool paused;           /* the engine holds the guest paused (VM_PAUSE_MIGRATE) */
	struct mig_throttle throttle;
	uint64_t fixed_ns;     /* measured fixed downtime cost, without the state's transfer */
	uint64_t state_bytes;  /* size of the state blob when it was measured */
	uint64_t round_bytes;  /* page data sent in the current round */
	uint64_t round_start_ns;
	struct mig_carry carry;
};

uint64_t mig_ms_since_start(const struct mig_source *m);

/* source.c: the only place the state changes (mig_allowed); -EPROTO for an illegal move. */
int mig_set_state(struct mig_source *m, enum mig_state to);
/*
 * source.c: step 3 of proto.h's timeline: move to COMMIT unless a cancel came first
 * (-ECANCELED, nothing changes), under the lock mig_source_cancel takes, so no cancel is
 * taken after it.
 */
int mig_take_commit_point(struct mig_source *m);
/* source.c: record the first error (printf-style); later ones are dropped. */
void mig_fail_msg(struct mig_source *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* source.c: set the measured downtime. */
void mig_set_downtime(struct mig_source *m, uint64_t ms);
/* Record the announcement the destination's RUNNING reports (its message), as of now. */
void mig_set_announce(struct mig_source *m, const char *running_msg);
/* source.c: close the outgoing stream (and the socket); the final counts are kept. */
void mig_close_out(struct mig_source *m, bool commit_it);

/*
 * switchover.c: READY is in: take the commit point (3 in proto.h's timeline), send GO and
 * wait for RUNNING (t_pause: when the guest paused, for the downtime). Ends completed, or
 * unconfirmed with the guest held paused for the user; returns -ECANCELED, touching
 * nothing, if a cancel came first (the caller rolls back).
 */
int mig_switch_over(struct mig_source *m, uint64_t t_pause);
/* switchover.c: before the commit point: tell the destination, give the guest back. */
void mig_roll_back(struct mig_source *m, int rc, const char *why);

/* sender.c: send every page set in the dirty bitmaps (clearing them). */
int mig_send_pages(struct mig_source *m, bool skip_zero, struct mig_round_stat *rs);
/* sender.c: send every disk block set in disk_dirty (clearing it). */
int mig_send_disk(struct mig_source *m, bool skip_zero, struct mig_round_stat *rs);
/* sender.c: the length of disk block blk (the last may be short). */
size_t mig_block_len(const struct mig_source *m, uint64_t blk);
/* sender.c: read disk block blk into disk_buf (zero-padded to a whole block). 0 or -errno. */
int mig_read_block(struct mig_source *m, uint64_t blk);
/* sender.c: pages set in the dirty bitmaps. */
uint64_t mig_dirty_pages(const struct mig_source *m);
uint64_t mig_dirty_blocks(const struct mig_source *m);
/* True if cancel was asked (engine thread polls it). */
bool mig_cancelled(struct mig_source *m);

/*
 * net_carry.c: with the guest paused, take every frame that reached its NICs and was not
 * placed (vm_nic_take_frame) and send each as a NET_FRAME record, within MIG_CARRY_FRAMES
 * and MIG_CARRY_BYTES for the whole move (past them, frames are dropped and counted).
 * keep: before the commit point, also keep a copy to give back on a roll-back. Returns 0
 * or the stream's -errno.
 */
int mig_carry_drain(struct mig_source *m, bool keep);
/* net_carry.c: after RUNNING: drain for MIG_CARRY_TAIL_MS more, then flush. 0 or -errno. */
int mig_carry_tail(struct mig_source *m);
/* net_carry.c: a roll-back: queue the kept frames for the guest here again, in order. */
void mig_carry_give_back(struct mig_source *m);
/* net_carry.c: free what is kept. */
void mig_carry_free(struct mig_source *m);
/* source.c: publish the carry counts in the stats. */
void mig_set_carry(struct mig_source *m);

/* throttle.c */
int mig_throttle_start(struct mig_throttle *t, struct vm *vm);
void mig_throttle_set(struct mig_throttle *t, unsigned pct);
void mig_throttle_stop(struct mig_throttle *t);

#endif
