/* Live migration: pre-copy a running VM to another host, or receive one. */
#ifndef MIGRATE_MIGRATE_H
#define MIGRATE_MIGRATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "migrate/proto.h"
#include "vmm/vm_state.h"

/* How both ends authenticate: exactly one of PSK, certificates, or plaintext. */
struct mig_auth {
	char psk_file[256];
	char cert_file[256];
	char key_file[256];
	char ca_file[256];
	/*
	 * Source, certificate mode: the name (or address) the destination's certificate must
	 * carry; "" means the --to host.
	 */
	char server_name[256];
	bool insecure_plaintext;
};

/*
 * Check that a is complete and unambiguous, and that its files are usable: a PSK file
 * loads (regular, private, well-formed), a --tls-key is a regular file group and others
 * cannot read, certificate and CA files are readable. Called at start, before listening
 * or connecting. Returns 0 or -errno with a one-line reason in err.
 */
int mig_auth_check(const struct mig_auth *a, char *err, size_t errlen);

struct mig_params {
	char to[256];              /* HOST:PORT */
	struct mig_auth auth;
	uint64_t downtime_ms;      /* target; 0 means MIG_DEFAULT_DOWNTIME_MS */
	uint64_t max_bandwidth;    /* bytes/s of page data; 0 = unlimited */
	uint64_t timeout_ms;       /* whole migration; 0 means MIG_DEFAULT_TIMEOUT_MS */
	bool with_disk;            /* pre-copy the disk too (else it is on shared storage) */
	int compress;              /* zstd level 1..19; 0 means MIG_DEFAULT_COMPRESS;
				    * MIG_COMPRESS_OFF sends pages as they are */
	bool verify;               /* compare digests of every page (and block, with_disk)
				    * on both ends before commit: migrate/verify.h */
};

#define MIG_DEFAULT_DOWNTIME_MS 50
/*
 * Level 2 compresses the compressible image of bench/migrate 2.84x against level 1's
 * 2.48x at the same speed here; what does not compress is sent raw either way.
 */
#define MIG_DEFAULT_COMPRESS 2
#define MIG_COMPRESS_MAX 19
#define MIG_COMPRESS_OFF (-1)
/* Compression threads, as QEMU's two multifd channels (fewer on a one-CPU host). */
#define MIG_COMPRESS_WORKERS 2
#define MIG_DEFAULT_TIMEOUT_MS (300 * 1000)
#define MIG_MAX_ROUND_STATS 64

/* Pre-copy states; changes go through mig_set_state only (see source.c). */
enum mig_state {
	MIG_STATE_NONE = 0,
	MIG_STATE_SETUP,     /* connecting, handshake */
	MIG_STATE_ITERATE,   /* dirty rounds while the guest runs */
	MIG_STATE_STOP_COPY, /* guest paused: last dirty set, state */
	MIG_STATE_COMMIT,    /* destination ready; source committed: GO, wait for RUNNING */
	MIG_STATE_COMPLETED, /* the destination runs the guest; the source stops */
	MIG_STATE_FAILED,    /* before commit: the source guest is given back (runs, unless
				the user holds it paused) */
	MIG_STATE_CANCELLED, /* likewise, on request */
	/*
	 * After GO was (maybe) sent, RUNNING never came: the destination may run the guest.
	 * The source holds it paused for the user (VM_PAUSE_USER): resume it here once the
	 * destination is known not to run it, or quit here once it does. Never resumed by
	 * the engine: that could run the guest on both hosts.
	 */
	MIG_STATE_UNCONFIRMED,
	MIG_STATE_COUNT,
};

const char *mig_state_name(enum mig_state s);

struct mig_round_stat {
	uint32_t round;
	uint64_t pages;       /* pages sent, zero pages included */
	uint64_t zero_pages;  /* of which all-zero (sent as ranges, no data) */
	uint64_t disk_blocks;
	uint64_t ms;
	double rate_bytes_s;  /* page data drained per second in this round */
	double dirty_bytes_s; /* pages dirtied per second during it */
};

/* A snapshot of a migration's progress and figures. */
struct mig_stats {
	enum mig_state state;
	uint32_t round;
	uint64_t remaining_bytes;      /* dirty, not yet sent */
	double rate_bytes_s;           /* last measured */
	double dirty_bytes_s;          /* last measured */
	uint64_t predicted_downtime_ms;
	uint64_t fixed_cost_ms;        /* of which the fixed part (pause, state, round trips) */
	uint64_t downtime_ms;          /* measured: pause to destination running */
	uint64_t total_ms;
	uint64_t wire_bytes;           /* TCP bytes sent (TLS and compression included) */
	uint64_t page_bytes;           /* page data before compression */
	uint64_t raw_bytes;            /* of the stream, bytes zstd did not compress (RAW) */
	unsigned throttle_pct;
	uint32_t nrounds;
	struct mig_round_stat rounds[MIG_MAX_ROUND_STATS];
	uint64_t state_ms[MIG_STATE_COUNT]; /* since start, when each state was entered */
	/* The destination's announcement (RARP rounds, the guest asked): it went out before
	 * the destination said RUNNING, so by announce_ms (since start) at the latest. */
	bool announced;
	uint64_t announce_ms;
	uint64_t announce_frames; /* RARP frames of the first round */
	unsigned announce_guest;  /* drivers asked to announce themselves */
	/* Frames that reached the source's taps after the final pause, carried over (and
	 * those past the bounds, dropped): net_carry.c. */
	uint64_t net_frames_carried;
	uint64_t net_bytes_carried;
	uint64_t net_frames_dropped;
	char error[320];
};

/* cli/mig_stats.h formats a struct mig_stats as JSON. */

struct mig_source;

/* Parse a --compress value ("off" or a level 1..MIG_COMPRESS_MAX). 0 or -EINVAL. */
int mig_compress_parse(const char *s, int *out);

/*
 * Start migrating vm to p->to on a thread of its own; return at once. Progress and the
 * outcome are read with mig_source_stats. On failure or cancel before commit the engine
 * lets go of its pause and the guest keeps running (or stays paused, if the user paused
 * it: the engine never resumes what it did not pause); after commit see
 * MIG_STATE_UNCONFIRMED. Returns 0, or -errno with a reason in err (bad parameters, a
 * migration already running is the caller's to prevent).
 */
int mig_source_start(struct mig_source **out, struct vm *vm, const struct mig_params *p,
		     char *err, size_t errlen);
void mig_source_stats(struct mig_source *m, struct mig_stats *out);
/*
 * Ask to cancel. Before the commit point it takes effect at once, whatever the engine
 * waits for (a connect, the TLS handshake, the peer's reply, a full socket): the socket is
 * shut down under it, the guest is given back, the state becomes cancelled. Returns 0,
 * -EALREADY if the migration has finished, or -EBUSY past the commit point (the
 * destination was told to run the guest: it can no longer be taken back).
 */
int mig_source_cancel(struct mig_source *m);
/* True once completed, failed or cancelled. */
bool mig_source_finished(struct mig_source *m);
/* Join the thread and free. */
void mig_source_free(struct mig_source *m);

/* What the destination needs from its caller: a VM built for the incoming machine. */
typedef int (*mig_create_vm_fn)(void *ctx, const struct mig_hello *h, struct vm **out,
				char *err, size_t errlen);

/* An address block for --allow-from: IPv4 (family AF_INET) or IPv6. */
struct mig_cidr {
	int family;
	uint8_t addr[16];
	unsigned prefix_bits;
};

#define MIG_MAX_ALLOW_FROM 8
/* The receiver's gate: connections authenticated at once, and each one's time to HELLO. */
#define MIG_GATE_MAX 4
#define MIG_GATE_DEADLINE_MS 5000

/*
 * Parse "ADDR/BITS" or a bare address into out (s, out). Returns 0 or -EINVAL.
 */
int mig_cidr_parse(const char *s, struct mig_cidr *out);

struct mig_dest_params {
	char listen[256]; /* HOST:PORT */
	struct mig_auth auth;
	int accept_timeout_ms; /* 0: wait forever */
	/* Sources may connect only from these blocks; none: from anywhere. */
	struct mig_cidr allow_from[MIG_MAX_ALLOW_FROM];
	unsigned n_allow_from;
	/* Called once the socket listens, before waiting for the source. May be NULL. */
	void (*on_listen)(void *ctx, const char *hostport);
	/*
	 * Called once the VM's state is loaded, before READY goes back and before any vCPU
	 * runs: the caller's last step with the VM not yet running (enter a sandbox). A
	 * negative return (-errno, with a one-line reason in err) fails the move like any
	 * other error here. May be NULL.
	 */
	int (*on_ready)(void *ctx, struct vm *vm, char *err, size_t errlen);
	/*
	 * Called right after the guest was started here (step 5 of proto.h's timeline),
	 * before RUNNING goes back: announce the guest on this host's network. note (len
	 * bytes) becomes RUNNING's message. May be NULL.
	 */
	void (*on_started)(void *ctx, struct vm *vm, char *note, size_t len);
	/*
	 * Called once for each connection turned away before a source's HELLO was in (a
	 * stranger, a failed handshake, garbage, a deadline passed), with one line saying
	 * who and why; the receiver goes on listening. May be NULL.
	 */
	void (*on_reject)(void *ctx, const char *line);
};

/*
 * Listen, accept connections until one source authenticates and sends a valid HELLO (at
 * most MIG_GATE_MAX at once, each within MIG_GATE_DEADLINE_MS; the others are reported to
 * on_reject and closed), stop listening, receive its VM into a VM made by create_vm, load the state,
 * and, after the source's GO, start it. On success *out is a started VM the caller owns
 * (paused, held by VM_PAUSE_USER, if the source's user had paused it), and err holds a
 * note for the operator or "" (the guest runs here but the source did not hear it: quit
 * the source). On any failure nothing is left running (the VM, if made, is destroyed)
 * and err says why. Returns 0 or -errno.
 */
int mig_receive(const struct mig_dest_params *p, mig_create_vm_fn create_vm, void *ctx,
		struct vm **out, char *err, size_t errlen);

/*
 * A test hook on the switch-over's timeline (proto.h): when the environment variable
 * GODWIT_TEST_HOLD names point (a comma-separated list may name several), print
 * "godwit: test hold at POINT" on stderr and stop the whole process (SIGSTOP), as a
 * debugger would, until the test kills it or sends SIGCONT. Does nothing otherwise.
 * Points: source-connected, source-paused (the final pause taken, nothing of the last
 * round sent), source-ready, source-running; dest-accepted, dest-state (the
 * last round and the state are in, the digests not yet), dest-done, dest-go; and
 * restore-filled (godwit restore --verify, RAM filled, before the comparison).
 */
void mig_test_hold(const char *point);

#endif
