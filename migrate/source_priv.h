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

struct mig_source {
	/* Fixed at start. */
	struct vm *vm;
	struct mig_params p;
	pthread_t thread;
	uint64_t t0_ns;

	/* Under lock: what other threads read or set. */
	pthread_mutex_t lock;
	struct mig_stats st;
	bool cancel;
	bool finished;

	/* Engine thread only. */
	struct stream *conn;   /* borrowed: the frame writer owns it through zstd */
	struct stream *out;    /* frame writer */
	struct stream *zs;     /* borrowed: the zstd writer under out, for its counts */
	int fd;                /* the socket, for TCP_INFO */
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
};

uint64_t mig_now_ns(void);

/* sender.c: send every page set in the dirty bitmaps (clearing them). */
int mig_send_pages(struct mig_source *m, bool skip_zero, struct mig_round_stat *rs);
/* sender.c: send every disk block set in disk_dirty (clearing it). */
int mig_send_disk(struct mig_source *m, bool skip_zero, struct mig_round_stat *rs);
/* sender.c: pages set in the dirty bitmaps. */
uint64_t mig_dirty_pages(const struct mig_source *m);
uint64_t mig_dirty_blocks(const struct mig_source *m);
/* True if cancel was asked (engine thread polls it). */
bool mig_cancelled(struct mig_source *m);

/* throttle.c */
int mig_throttle_start(struct mig_throttle *t, struct vm *vm);
void mig_throttle_set(struct mig_throttle *t, unsigned pct);
void mig_throttle_stop(struct mig_throttle *t);

#endif
