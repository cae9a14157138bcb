/* The pre-copy engine: dirty rounds, convergence with a downtime target, commit, rollback. */
#include "migrate/source_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "migrate/conn.h"
#include "migrate/verify.h"
#include "util/byteorder.h"
#include "transport/frame.h"
#include "transport/stream.h"
#include "transport/zstd_stream.h"
#include "util/clock.h"

#define MIG_CONNECT_MS 10000
#define MIG_REPLY_WAIT_MS 30000
/* The fixed part of the downtime when it cannot be measured (measure_fixed_cost). */
#define MIG_FIXED_COST_MS 3
#define MIG_FIXED_SAMPLES 3
/* Extra rounds past the target while each halves the pause (tail_round_pays). */
#define MIG_TAIL_ROUNDS 4
#define MIG_TAIL_MS 1.0
#define MIG_THROTTLE_STEP 20
#define MIG_VERIFY_RUN_PAGES 8192u /* 32 MiB of RAM per VERIFY record */

_Static_assert(MIG_COMPRESS_MAX <= ZSTD_STREAM_LEVEL_MAX, "the stream takes every level");

static const bool mig_allowed[MIG_STATE_COUNT][MIG_STATE_COUNT] = {
	[MIG_STATE_NONE] = { [MIG_STATE_SETUP] = true },
	[MIG_STATE_SETUP] = { [MIG_STATE_ITERATE] = true, [MIG_STATE_FAILED] = true,
			      [MIG_STATE_CANCELLED] = true },
	[MIG_STATE_ITERATE] = { [MIG_STATE_STOP_COPY] = true, [MIG_STATE_FAILED] = true,
				[MIG_STATE_CANCELLED] = true },
	[MIG_STATE_STOP_COPY] = { [MIG_STATE_COMMIT] = true, [MIG_STATE_FAILED] = true,
				  [MIG_STATE_CANCELLED] = true },
	[MIG_STATE_COMMIT] = { [MIG_STATE_COMPLETED] = true, [MIG_STATE_UNCONFIRMED] = true,
			       [MIG_STATE_FAILED] = true },
};

uint64_t mig_ms_since_start(const struct mig_source *m)
{
	return (clock_now_ns() - m->t0_ns) / 1000000ULL;
}

/* mig_set_state with m->lock held. */
static int set_state_locked(struct mig_source *m, enum mig_state to)
{
	if (!mig_allowed[m->st.state][to])
		return -EPROTO;
	m->st.state = to;
	m->st.state_ms[to] = mig_ms_since_start(m);
	return 0;
}

/* The only place the state changes; an illegal move is a bug, reported, never ignored. */
int mig_set_state(struct mig_source *m, enum mig_state to)
{
	int rc;

	pthread_mutex_lock(&m->lock);
	rc = set_state_locked(m, to);
	pthread_mutex_unlock(&m->lock);
	return rc;
}

int mig_take_commit_point(struct mig_source *m)
{
	int rc;

	pthread_mutex_lock(&m->lock);
	rc = m->cancel ? -ECANCELED : set_state_locked(m, MIG_STATE_COMMIT);
	pthread_mutex_unlock(&m->lock);
	return rc;
}

/*
 * What the transport says of the connection (zeros when it cannot say): asked of the
 * outgoing stream, whose layers pass the call down to the socket. Under m->lock, or on
 * the engine thread, while m->wire is set (it is cleared before the stream closes).
 */
static struct stream_stats wire_stats(const struct mig_source *m)
{
	struct stream_stats ss = { 0 };

	if (m->wire && stream_stats(m->wire, &ss) < 0)
		memset(&ss, 0, sizeof(ss));
	return ss;
}

/*
 * Measure what stop-and-copy costs besides the last pages, before round 0: pause the
 * guest, save its state, resume it (a pause of about that length, as the throttle
 * makes), and read the link's RTT. The model (fixed_cost_ms) then takes the
 * destination's load and start to cost what save and resume cost here, the state to
 * cross at the measured rate, and READY and RUNNING to be two round trips. On a loaded
 * host the pause and resume include the vCPU threads' wake-ups, which is the point; but
 * one sample can also catch a single late wake-up (6-7 ms where the downtime then was
 * 0-7 ms), so the median of MIG_FIXED_SAMPLES is taken. Leaves m->fixed_ns 0 (the
 * constant is used) if the guest cannot be paused now.
 */
static void measure_fixed_cost(struct mig_source *m)
{
	uint64_t s[MIG_FIXED_SAMPLES];
	unsigned n;

	for (n = 0; n < MIG_FIXED_SAMPLES; n++) {
		uint8_t *blob = NULL;
		size_t blob_len = 0;
		uint64_t t0 = clock_now_ns();

		if (vm_pause_by(m->vm, VM_PAUSE_MIGRATE) < 0)
			break;
		if (vm_state_save(m->vm, &blob, &blob_len) < 0)
			blob_len = 0;
		vm_resume_by(m->vm, VM_PAUSE_MIGRATE);
		free(blob);
		s[n] = clock_now_ns() - t0;
		m->state_bytes = blob_len;
	}
	if (n == 0)
		return;
	/* Insertion sort of at most MIG_FIXED_SAMPLES values; the median of what was taken. */
	for (unsigned i = 1; i < n; i++)
		for (unsigned k = i; k > 0 && s[k - 1] > s[k]; k--) {
			uint64_t t = s[k];

			s[k] = s[k - 1];
			s[k - 1] = t;
		}
	m->fixed_ns = 2 * s[n / 2] + 2 * wire_stats(m).rtt_ns;
}

/* The downtime's fixed part in ms at the given drain rate (bytes/s). */
static double fixed_cost_ms(const struct mig_source *m, double rate)
{
	if (!m->fixed_ns)
		return MIG_FIXED_COST_MS;
	return (double)m->fixed_ns / 1e6 + (double)m->state_bytes * 1000.0 / (rate + 1.0);
}

static void stats_update(struct mig_source *m, void (*fn)(struct mig_stats *, const void *),
			 const void *arg)
{
	pthread_mutex_lock(&m->lock);
	fn(&m->st, arg);
	m->st.total_ms = mig_ms_since_start(m);
	if (m->fd >= 0) /* once closed, the last count taken stands */
		m->st.wire_bytes = wire_stats(m).bytes_sent;
	pthread_mutex_unlock(&m->lock);
}

static void stats_add_round(struct mig_stats *st, const void *arg)
{
	const struct mig_round_stat *rs = arg;

	if (st->nrounds < MIG_MAX_ROUND_STATS)
		st->rounds[st->nrounds++] = *rs;
	st->page_bytes += (rs->pages - rs->zero_pages) * MIG_PAGE_BYTES;
	st->rate_bytes_s = rs->rate_bytes_s;
}

struct progress {
	uint32_t round;
	uint64_t remaining;
	double dirty_rate;
	uint64_t predicted_ms;
	uint64_t fixed_ms;
	unsigned throttle;
};

static void stats_set_progress(struct mig_stats *st, const void *arg)
{
	const struct progress *p = arg;

	st->round = p->round;
	st->remaining_bytes = p->remaining;
	st->dirty_bytes_s = p->dirty_rate;
	st->predicted_downtime_ms = p->predicted_ms;
	st->fixed_cost_ms = p->fixed_ms;
	st->throttle_pct = p->throttle;
}

static void stats_set_error(struct mig_stats *st, const void *arg)
{
	if (!st->error[0])
		snprintf(st->error, sizeof(st->error), "%s", (const char *)arg);
}

static void stats_set_downtime(struct mig_stats *st, const void *arg)
{
	st->downtime_ms = *(const uint64_t *)arg;
}

void mig_set_downtime(struct mig_source *m, uint64_t ms)
{
	stats_update(m, stats_set_downtime, &ms);
}

static void stats_set_carry(struct mig_stats *st, const void *arg)
{
	const struct mig_carry *c = arg;

	st->net_frames_carried = c->frames;
	st->net_bytes_carried = c->bytes;
	st->net_frames_dropped = c->dropped;
}

void mig_set_carry(struct mig_source *m)
{
	stats_update(m, stats_set_carry, &m->carry);
}

struct announce_note {
	const char *msg;
	uint64_t ms;
};

static void stats_set_announce(struct mig_stats *st, const void *arg)
{
	const struct announce_note *a = arg;
	unsigned nics = 0, guest = 0;
	uint64_t frames = 0;

	/* The destination's words: taken only in the one shape it sends. */
	if (sscanf(a->msg, "announced nics=%u frames=%" SCNu64 " guest=%u", &nics, &frames,
		   &guest) == 3) {
		st->announced = true;
		st->announce_ms = a->ms;
		st->announce_frames = frames;
		st->announce_guest = guest;
	}
}

void mig_set_announce(struct mig_source *m, const char *running_msg)
{
	struct announce_note a = { .msg = running_msg, .ms = mig_ms_since_start(m) };

	stats_update(m, stats_set_announce, &a);
}

void mig_fail_msg(struct mig_source *m, const char *fmt, ...)
{
	char msg[320];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	stats_update(m, stats_set_error, msg);
}

/* Close the outgoing stream (and with it the socket); final wire bytes are kept. */
void mig_close_out(struct mig_source *m, bool commit_it)
{
	struct zstd_stream_counts zc = { 0 };

	if (m->zs)
		zstd_writer_counts(m->zs, &zc);
	pthread_mutex_lock(&m->lock);
	m->st.raw_bytes = zc.raw_bytes;
	m->st.wire_bytes = wire_stats(m).bytes_sent;
	m->fd = -1;
	m->wire = NULL;
	pthread_mutex_unlock(&m->lock);
	stream_close(m->out, commit_it);
	m->out = NULL;
	m->zs = NULL;
}

/*
 * Fetch this migration's view of the dirty log into the bitmaps (OR-ing into what is
 * still unsent). A read-only disk has no log: the guest cannot change it, round 0 sent it.
 */
static int fetch_dirty(struct mig_source *m)
{
	int rc;

	for (unsigned r = 0; r < m->nreg; r++) {
		rc = vm_dirty_fetch(m->dirty_c, r, m->dirty[r]);
		if (rc < 0)
			return rc;
	}
	if (m->disk_dirty) {
		rc = vm_dirty_fetch_disk(m->dirty_c, m->disk_dirty);
		if (rc < 0 && rc != -ENOTSUP)
			return rc;
	}
	return 0;
}

static int setup_buffers(struct mig_source *m)
{
	m->nreg = vm_ram_nregions(m->vm);
	if (m->nreg > MIG_MAX_REGIONS)
		return -E2BIG;
	for (unsigned r = 0; r < m->nreg; r++) {
		vm_ram_region(m->vm, r, &m->reg[r]);
		m->npages[r] = m->reg[r].bytes / MIG_PAGE_BYTES;
		m->dirty[r] = calloc((m->npages[r] + 63) / 64, 8);
		if (!m->dirty[r])
			return -ENOMEM;
	}
	if (m->p.auth.insecure_plaintext) {
		m->stage = malloc((size_t)MIG_MAX_RUN_PAGES * MIG_PAGE_BYTES);
		if (!m->stage)
			return -ENOMEM;
	}
	if (m->p.with_disk) {
		if (!vm_disk_present(m->vm))
			return -ENODEV;
		m->nblocks = (vm_disk_bytes(m->vm) + VM_DISK_BLOCK_BYTES - 1) / VM_DISK_BLOCK_BYTES;
		m->disk_dirty = calloc((m->nblocks + 63) / 64, 8);
		m->disk_buf = malloc(VM_DISK_BLOCK_BYTES);
		if (!m->disk_dirty || !m->disk_buf)
			return -ENOMEM;
		m->disk_fd = open(vm_disk_path(m->vm), O_RDONLY | O_CLOEXEC);
		if (m->disk_fd < 0)
			return -errno;
	}
	return 0;
}

/* Whether a capability list (ACCEPT's message) names cap. */
static bool mig_caps_has(const char *caps, const char *cap)
{
	size_t n = strlen(cap);

	for (const char *p = caps; *p; p += strcspn(p, " "), p += strspn(p, " ")) {
		if (strncmp(p, cap, n) == 0 && (p[n] == ' ' || p[n] == '\0'))
			return true;
	}
	return false;
}

/*
 * The handshake record just written (rc: frame_write's result) goes out; read the
 * destination's answer (msg, cap: its message). Returns 0 for ACCEPT, -ECONNREFUSED with
 * the destination's reason in err, or the stream's error.
 */
static int handshake_answer(struct mig_source *m, int rc, char *msg, size_t cap, char *err,
			    size_t errlen)
{
	enum mig_reply reply;

	if (rc == 0)
		rc = stream_flush(m->out);
	if (rc == 0)
		rc = mig_reply_recv(m->conn, &reply, msg, cap);
	if (rc < 0) {
		snprintf(err, errlen, "handshake with %s failed: %s", m->p.to, strerror(-rc));
		return rc;
	}
	if (reply != MIG_REPLY_ACCEPT) {
		snprintf(err, errlen, "destination refused the VM: %.240s", msg[0] ? msg : "no reason");
		return -ECONNREFUSED;
	}
	return 0;
}

/* The VM's CPUID for the destination to check before any page (proto.h, "cpuid"). */
static int send_cpuid(struct mig_source *m, char *err, size_t errlen)
{
	char msg[MIG_REPLY_MAX_MSG + 1];
	uint8_t *table;
	size_t len;
	int rc;

	rc = vm_cpuid_save(m->vm, &table, &len);
	if (rc < 0) {
		snprintf(err, errlen, "the VM's CPUID: %s", strerror(-rc));
		return rc;
	}
	rc = frame_write(m->out, MIG_REC_CPUID, 0, table, len);
	free(table);
	return handshake_answer(m, rc, msg, sizeof(msg), err, errlen);
}

static int send_hello(struct mig_source *m, char *err, size_t errlen)
{
	struct mig_hello h = {
		.proto = MIG_PROTO_VERSION,
		.flags = (m->p.with_disk ? MIG_FLAG_WITH_DISK : 0) |
			 (m->p.verify ? MIG_FLAG_VERIFY : 0),
		.ram_bytes = vm_ram_bytes(m->vm),
		.ncpus = vm_ncpus(m->vm),
		.nregions = m->nreg,
		.disk_bytes = vm_disk_present(m->vm) ? vm_disk_bytes(m->vm) : 0,
		.disk_block_bytes = (uint32_t)VM_DISK_BLOCK_BYTES,
		.nnics = vm_nic_count(m->vm),
	};
	uint8_t buf[256];
	char msg[MIG_REPLY_MAX_MSG + 1];
	int len, rc;

	snprintf(h.version, sizeof(h.version), "%s", GODWIT_VERSION);
	for (unsigned r = 0; r < m->nreg; r++) {
		h.region[r].gpa = m->reg[r].gpa;
		h.region[r].bytes = m->reg[r].bytes;
	}
	len = mig_hello_encode(&h, buf, sizeof(buf));
	if (len < 0)
		return len;
	rc = frame_write(m->out, MIG_REC_HELLO, 0, buf, (size_t)len);
	rc = handshake_answer(m, rc, msg, sizeof(msg), err, errlen);
	if (rc < 0)
		return rc;
	return mig_caps_has(msg, MIG_CAP_CPUID) ? send_cpuid(m, err, errlen) : 0;
}

/*
 * End a live round and wait until the destination has applied it (ROUND_DONE), so the
 * round's time covers the whole pipe and nothing is left queued when the next decision
 * is made. A refusal instead of ROUND_DONE (the destination failed applying it) is
 * -EPROTO with its reason in err.
 */
static int end_round(struct mig_source *m, uint32_t round, char *err, size_t errlen)
{
	uint8_t b[4];
	char msg[MIG_REPLY_MAX_MSG + 1];
	enum mig_reply reply;
	int rc;

	le32_encode(b, round);
	rc = frame_write(m->out, MIG_REC_ROUND_END, 0, b, sizeof(b));
	if (rc == 0)
		rc = stream_flush(m->out);
	if (rc == 0)
		rc = mig_reply_recv(m->conn, &reply, msg, sizeof(msg));
	if (rc < 0) {
		snprintf(err, errlen, "sending round %u: %s", round, strerror(-rc));
		return rc;
	}
	if (reply != MIG_REPLY_ROUND_DONE) {
		snprintf(err, errlen, "destination failed in round %u: %.240s", round,
			 msg[0] ? msg : "no reason given");
		return -EPROTO;
	}
	return 0;
}

/*
 * Send one round of everything currently dirty; fill rs. A live round (live) ends with
 * end_round; the stop-and-copy round ends with the state that follows it.
 */
static int run_round(struct mig_source *m, uint32_t round, bool live, struct mig_round_stat *rs,
		     char *err, size_t errlen)
{
	uint64_t t = clock_now_ns(), dt;
	int rc;

	memset(rs, 0, sizeof(*rs));
	rs->round = round;
	m->round_bytes = 0;
	m->round_start_ns = t;
	rc = mig_send_pages(m, round == 0, rs);
	if (rc == 0 && m->disk_dirty)
		rc = mig_send_disk(m, round == 0, rs);
	if (rc < 0 && rc != -ECANCELED)
		snprintf(err, errlen, "sending round %u: %s", round, strerror(-rc));
	if (rc == 0 && live)
		rc = end_round(m, round, err, errlen);
	dt = clock_now_ns() - t;
	rs->ms = dt / 1000000ULL;
	rs->rate_bytes_s = (double)m->round_bytes * 1e9 / (double)(dt + 1);
	return rc;
}

/*
 * The target is met: would one more live round still cut the downtime? It pays when the
 * pages to copy would take MIG_TAIL_MS or more and the guest dirties less than half of
 * what the pipe drains (so the round leaves under half of them behind): a round of a few
 * milliseconds then halves the pause, or better. QEMU's own extra passes, taken because
 * its 300 ms limit is not met sooner, sometimes beat a stop at the first chance of 50 ms.
 */
static bool tail_round_pays(double data_ms, double dirty_rate, double rate, unsigned extra)
{
	return extra < MIG_TAIL_ROUNDS && data_ms >= MIG_TAIL_MS && dirty_rate * 2 < rate;
}

/*
 * Iterate until the predicted downtime fits the target and one more round no longer pays
 * (tail_round_pays). Prediction: what is dirty now, drained at the rate the last round
 * achieved, plus the fixed costs of pausing, the state and the commit round trips
 * (measured: measure_fixed_cost). Not shrinking two
 * rounds running means the guest dirties faster than the link drains: throttle the
 * vCPUs a step more each time.
 */
static int iterate(struct mig_source *m, char *err, size_t errlen)
{
	uint64_t target = m->p.downtime_ms ? m->p.downtime_ms : MIG_DEFAULT_DOWNTIME_MS;
	uint64_t timeout = m->p.timeout_ms ? m->p.timeout_ms : MIG_DEFAULT_TIMEOUT_MS;
	uint64_t prev_dirty = UINT64_MAX, last_fetch = clock_now_ns();
	double rate = 0;
	unsigned not_shrinking = 0, throttle = 0, extra = 0;
	int rc;

	for (uint32_t round = 0;; round++) {
		struct mig_round_stat rs;
		struct progress pg = { .round = round };
		uint64_t dirty_bytes, now;

		rc = fetch_dirty(m);
		if (rc < 0) {
			snprintf(err, errlen, "fetching the dirty log: %s", strerror(-rc));
			return rc;
		}
		now = clock_now_ns();
		dirty_bytes = mig_dirty_pages(m) * MIG_PAGE_BYTES +
			      mig_dirty_blocks(m) * VM_DISK_BLOCK_BYTES;
		pg.remaining = dirty_bytes;
		pg.dirty_rate = round ? (double)dirty_bytes * 1e9 / (double)(now - last_fetch) : 0;
		last_fetch = now;
		if (round > 0) {
			double fixed = fixed_cost_ms(m, rate);
			double data_ms = (double)dirty_bytes * 1000.0 / (rate + 1.0);
			bool fits;

			pg.fixed_ms = (uint64_t)(fixed + 0.5);
			pg.predicted_ms = (uint64_t)(fixed + data_ms + 0.5);
			/*
			 * When the fixed part alone is over the target (a loaded host can make
			 * the measured pause cost that much), no round can shorten it: once the
			 * pages left cost under MIG_TAIL_MS, stop rather than spin on empty
			 * rounds until the timeout.
			 */
			fits = pg.predicted_ms <= target || data_ms < MIG_TAIL_MS;
			if (fits && !tail_round_pays(data_ms, pg.dirty_rate, rate, extra)) {
				pg.throttle = throttle;
				stats_update(m, stats_set_progress, &pg);
				break;
			}
			extra += fits;
			not_shrinking = dirty_bytes * 10 >= prev_dirty * 9 ? not_shrinking + 1 : 0;
			if (not_shrinking >= 2 && throttle < 95) {
				throttle = throttle + MIG_THROTTLE_STEP > 95 ? 95
									  : throttle + MIG_THROTTLE_STEP;
				mig_throttle_set(&m->throttle, throttle);
				not_shrinking = 0;
			}
		}
		pg.throttle = throttle;
		stats_update(m, stats_set_progress, &pg);
		if (mig_ms_since_start(m) > timeout) {
			snprintf(err, errlen, "migration did not converge in %" PRIu64 " s: the guest "
				 "dirties %.0f MiB/s against %.0f MiB/s sent even at %u%% throttle; "
				 "raise --downtime-ms or --timeout, or quiet the guest",
				 timeout / 1000, pg.dirty_rate / 1048576.0, rate / 1048576.0, throttle);
			return -ETIMEDOUT;
		}
		prev_dirty = dirty_bytes;
		rc = run_round(m, round, true, &rs, err, errlen);
		if (rc < 0)
			return rc;
		rs.dirty_bytes_s = pg.dirty_rate;
		/* An idle round measures nothing: keep the rate of the last busy one. */
		if (m->round_bytes >= (1u << 20) || rate == 0)
			rate = rs.rate_bytes_s;
		stats_update(m, stats_add_round, &rs);
		if (mig_cancelled(m))
			return -ECANCELED;
	}
	return 0;
}

/*
 * --verify: after the last round, the digest of every page (migrate/verify.h) and, with
 * the disk, of every block, as VERIFY / VERIFY_DISK records. The guest is paused, so what
 * is hashed is what the destination must hold. Pages never populated are zero unread.
 * Pages go in records of MIG_VERIFY_RUN_PAGES, flushed as they are made, so that the
 * destination hashes its copy of one while this end hashes the next.
 */
static int send_digests(struct mig_source *m, char *err, size_t errlen)
{
	uint64_t *dig = malloc((size_t)MIG_MAX_RUN_DIGESTS * MIG_DIGEST_BYTES);
	uint8_t *rec = malloc(MIG_RUN_HDR_BYTES + (size_t)MIG_MAX_RUN_DIGESTS * MIG_DIGEST_BYTES);
	uint64_t *pop = NULL;
	int rc = dig && rec ? 0 : -ENOMEM;

	for (unsigned r = 0; r < m->nreg && rc == 0; r++) {
		free(pop);
		pop = malloc((size_t)(m->npages[r] + 63) / 64 * 8);
		if (pop && vm_ram_populated(m->vm, r, pop) < 0) {
			free(pop);
			pop = NULL;
		}
		for (uint64_t first = 0; first < m->npages[r] && rc == 0;
		     first += MIG_VERIFY_RUN_PAGES) {
			uint64_t n = m->npages[r] - first < MIG_VERIFY_RUN_PAGES ? m->npages[r] - first
										   : MIG_VERIFY_RUN_PAGES;
			struct mig_run run = { .region = r, .count = (uint32_t)n, .first = first };

			rc = mig_digest_pages(m->reg[r].hva, first, n, pop, dig);
			mig_run_encode(&run, rec);
			for (uint64_t k = 0; rc == 0 && k < n; k++)
				le64_encode(rec + MIG_RUN_HDR_BYTES + k * MIG_DIGEST_BYTES, dig[k]);
			if (rc == 0)
				rc = frame_write(m->out, MIG_REC_VERIFY, 0, rec,
						 MIG_RUN_HDR_BYTES + n * MIG_DIGEST_BYTES);
			if (rc == 0)
				rc = stream_flush(m->out);
		}
	}
	for (uint64_t first = 0; m->disk_dirty && first < m->nblocks && rc == 0;
	     first += MIG_MAX_RUN_DIGESTS) {
		uint64_t n = m->nblocks - first < MIG_MAX_RUN_DIGESTS ? m->nblocks - first
									 : MIG_MAX_RUN_DIGESTS;
		struct mig_run run = { .region = 0, .count = (uint32_t)n, .first = first };

		mig_run_encode(&run, rec);
		for (uint64_t k = 0; rc == 0 && k < n; k++) {
			uint64_t d = 0;

			rc = mig_read_block(m, first + k);
			if (rc == 0)
				rc = mig_digest_block(m->disk_buf, mig_block_len(m, first + k), &d);
			le64_encode(rec + MIG_RUN_HDR_BYTES + k * MIG_DIGEST_BYTES, d);
		}
		if (rc == 0)
			rc = frame_write(m->out, MIG_REC_VERIFY_DISK, 0, rec,
					 MIG_RUN_HDR_BYTES + n * MIG_DIGEST_BYTES);
	}
	if (rc < 0)
		snprintf(err, errlen, "--verify: digests of the source's copy: %s", strerror(-rc));
	free(pop);
	free(rec);
	free(dig);
	return rc;
}

/* Pause, send the last dirty set and the state, and wait for the destination's READY. */
static int stop_and_copy(struct mig_source *m, uint64_t *t_pause, char *err, size_t errlen)
{
	struct mig_round_stat rs = { 0 };
	char msg[MIG_REPLY_MAX_MSG + 1];
	enum mig_reply reply;
	uint8_t *blob = NULL;
	size_t blob_len = 0;
	uint32_t round;
	int rc;

	mig_throttle_stop(&m->throttle);
	*t_pause = clock_now_ns();
	rc = vm_pause_by(m->vm, VM_PAUSE_MIGRATE);
	if (rc < 0) {
		snprintf(err, errlen, "cannot pause the guest: %s", strerror(-rc));
		return rc;
	}
	m->paused = true;
	mig_test_hold("source-paused");
	rc = mig_set_state(m, MIG_STATE_STOP_COPY);
	if (rc == 0)
		rc = fetch_dirty(m);
	pthread_mutex_lock(&m->lock);
	round = m->st.nrounds;
	pthread_mutex_unlock(&m->lock);
	if (rc == 0)
		rc = run_round(m, round, false, &rs, err, errlen);
	if (rc == 0)
		stats_update(m, stats_add_round, &rs);
	if (rc == 0)
		rc = vm_state_save(m->vm, &blob, &blob_len);
	if (rc == 0)
		rc = frame_write(m->out, MIG_REC_STATE, 0, blob, blob_len);
	free(blob);
	if (rc == 0 && m->p.verify)
		rc = send_digests(m, err, errlen);
	/* What reached the taps since the pause goes along (kept, should we roll back). */
	if (rc == 0)
		rc = mig_carry_drain(m, true);
	if (rc == 0)
		rc = frame_write(m->out, MIG_REC_DONE, 0, NULL, 0);
	if (rc == 0)
		rc = stream_flush(m->out);
	if (rc < 0) {
		if (!err[0])
			snprintf(err, errlen, "stop-and-copy: %s", strerror(-rc));
		return rc;
	}
	rc = mig_reply_recv(m->conn, &reply, msg, sizeof(msg));
	if (rc < 0) {
		snprintf(err, errlen, "no answer from the destination after the state: %s",
			 strerror(-rc));
		return rc;
	}
	if (reply != MIG_REPLY_READY) {
		snprintf(err, errlen, "destination could not load the VM: %.240s",
			 msg[0] ? msg : "no reason given");
		return -EPROTO;
	}
	return 0;
}

/* zstd threads: MIG_COMPRESS_WORKERS, at most one per online CPU; 0 without threads. */
static int compress_workers(void)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	if (!zstd_stream_workers_supported())
		return 0;
	return ncpu >= MIG_COMPRESS_WORKERS ? MIG_COMPRESS_WORKERS : 1;
}

/*
 * mig_conn_connect's hook, on the engine thread: publish the socket for a cancel to shut
 * down (fd -1: take it back before it closes). -ECANCELED if a cancel came first.
 */
static int publish_fd(void *ctx, int fd)
{
	struct mig_source *m = ctx;
	int rc = 0;

	pthread_mutex_lock(&m->lock);
	if (fd >= 0 && m->cancel)
		rc = -ECANCELED;
	else
		m->fd = fd;
	pthread_mutex_unlock(&m->lock);
	return rc;
}

/* The one line a failure or cancel before the commit point leaves in the stats. */
static void fail_reason(struct mig_source *m, int rc, char *err, size_t errlen)
{
	if (rc == -ECANCELED || mig_cancelled(m))
		snprintf(err, errlen, "%s", vm_pause_holders(m->vm) & VM_PAUSE_USER
			 ? "the VM stays here, paused through the API as before"
			 : "the VM keeps running here");
	else if (!err[0])
		snprintf(err, errlen, "%s", strerror(-rc));
}

static void *mig_source_thread(void *arg)
{
	struct mig_source *m = arg;
	/*
	 * zstd's content checksum is left out: it is checked only when the one frame ends,
	 * after GO, too late to refuse anything. Integrity comes from the frame CRC32C over
	 * plaintext, from TLS's AEAD otherwise (then the frame carries no CRC).
	 */
	struct zstd_stream_opts zo = {
		.level = m->p.compress > 0 ? m->p.compress : MIG_DEFAULT_COMPRESS,
		.workers = compress_workers(), .no_checksum = true, .adaptive = true,
		.raw_only = m->p.compress == MIG_COMPRESS_OFF,
	};
	struct mig_conn_cancel cx = { .wake_fd = m->wake[0], .connected = publish_fd, .ctx = m };
	struct stream *z = NULL;
	uint64_t t_pause = 0;
	char err[320] = "";
	int fd = -1, rc;

	pthread_setname_np(pthread_self(), "migrate");
	rc = setup_buffers(m);
	if (rc < 0) {
		snprintf(err, sizeof(err), "%s", rc == -ENODEV ? "--with-disk, but the VM has no disk"
				: strerror(-rc));
		goto fail;
	}
	rc = mig_conn_connect(&m->conn, &fd, m->p.to, &m->p.auth, MIG_CONNECT_MS, &cx, err,
			      sizeof(err));
	if (rc < 0)
		goto fail;
	mig_test_hold("source-connected");
	rc = zstd_writer_open(&z, m->conn, &zo);
	if (rc == 0)
		m->zs = z;
	if (rc == 0)
		rc = frame_writer_open_flags(&m->out, z, m->p.auth.insecure_plaintext
					     ? 0 : FRAME_F_NO_CRC);
	if (rc < 0) {
		publish_fd(m, -1);
		m->zs = NULL;
		if (z)
			stream_close(z, false);
		else
			stream_close(m->conn, false);
		snprintf(err, sizeof(err), "setting up the stream: %s", strerror(-rc));
		goto fail;
	}
	pthread_mutex_lock(&m->lock);
	m->wire = m->out; /* for the stats readers, until mig_close_out */
	pthread_mutex_unlock(&m->lock);
	rc = send_hello(m, err, sizeof(err));
	if (rc < 0)
		goto fail;
	/* Its own view of the dirty log: every page and block pending, others untouched. */
	rc = vm_dirty_register(m->vm, &m->dirty_c);
	if (rc < 0) {
		snprintf(err, sizeof(err), "cannot start dirty logging: %s", strerror(-rc));
		goto fail;
	}
	if (m->disk_dirty) {
		/* Round 0 sends the whole disk (a read-only one has no log to say so). */
		memset(m->disk_dirty, 0xff, (m->nblocks + 63) / 64 * 8);
		if (m->nblocks % 64)
			m->disk_dirty[m->nblocks / 64] &= (1ULL << (m->nblocks % 64)) - 1;
	}
	measure_fixed_cost(m);
	rc = mig_throttle_start(&m->throttle, m->vm);
	if (rc == 0)
		rc = mig_set_state(m, MIG_STATE_ITERATE);
	if (rc == 0)
		rc = iterate(m, err, sizeof(err));
	if (rc == 0)
		rc = stop_and_copy(m, &t_pause, err, sizeof(err));
	if (rc == 0)
		rc = mig_switch_over(m, t_pause);
	if (rc == 0)
		goto out;
fail:
	fail_reason(m, rc, err, sizeof(err));
	mig_roll_back(m, rc, err);
out:
	vm_dirty_unregister(m->dirty_c);
	m->dirty_c = NULL;
	mig_carry_free(m);
	pthread_mutex_lock(&m->lock);
	m->finished = true;
	pthread_mutex_unlock(&m->lock);
	return NULL;
}

int mig_compress_parse(const char *s, int *out)
{
	char *end;
	long v;

	if (strcmp(s, "off") == 0) {
		*out = MIG_COMPRESS_OFF;
		return 0;
	}
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 1 || v > MIG_COMPRESS_MAX)
		return -EINVAL;
	*out = (int)v;
	return 0;
}

int mig_source_start(struct mig_source **out, struct vm *vm, const struct mig_params *p,
		     char *err, size_t errlen)
{
	struct mig_source *m;
	int rc;

	rc = mig_auth_check(&p->auth, err, errlen);
	if (rc < 0)
		return rc;
	if (!p->to[0]) {
		snprintf(err, errlen, "no destination: pass --to HOST:PORT");
		return -EINVAL;
	}
	if (p->compress != MIG_COMPRESS_OFF && (p->compress < 0 || p->compress > MIG_COMPRESS_MAX)) {
		snprintf(err, errlen, "--compress %d is not a zstd level: give 1 to %d, or off",
			 p->compress, MIG_COMPRESS_MAX);
		return -EINVAL;
	}
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->vm = vm;
	m->p = *p;
	m->fd = -1;
	m->disk_fd = -1;
	m->t0_ns = clock_now_ns();
	if (pipe2(m->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
		rc = -errno;
		free(m);
		snprintf(err, errlen, "cannot start the migration: %s", strerror(-rc));
		return rc;
	}
	pthread_mutex_init(&m->lock, NULL);
	/* Before the thread: a status read at once says setup, never "none". */
	mig_set_state(m, MIG_STATE_SETUP);
	rc = -pthread_create(&m->thread, NULL, mig_source_thread, m);
	if (rc < 0) {
		pthread_mutex_destroy(&m->lock);
		close(m->wake[0]);
		close(m->wake[1]);
		free(m);
		snprintf(err, errlen, "cannot start the migration thread: %s", strerror(-rc));
		return rc;
	}
	*out = m;
	return 0;
}

void mig_source_stats(struct mig_source *m, struct mig_stats *out)
{
	/*
	 * Refresh only while the connection is open. Once close_out ran, the figures are
	 * final: a completed migration's total ends at RUNNING (commit), a failed one's at
	 * the failure (mig_fail_msg); a read in between (the engine has closed but not
	 * finished) must not stretch total_ms to the time of the read.
	 */
	pthread_mutex_lock(&m->lock);
	if (!m->finished && m->fd >= 0) {
		m->st.total_ms = mig_ms_since_start(m);
		m->st.wire_bytes = wire_stats(m).bytes_sent;
	}
	*out = m->st;
	pthread_mutex_unlock(&m->lock);
}

int mig_source_cancel(struct mig_source *m)
{
	int rc = 0;

	pthread_mutex_lock(&m->lock);
	if (m->finished) {
		rc = -EALREADY;
	} else if (m->st.state >= MIG_STATE_COMMIT) {
		rc = -EBUSY;
	} else if (!m->cancel) {
		/*
		 * Wake the engine from whatever it waits on: a connect (the pipe), the TLS
		 * handshake, a reply, a full socket (the shutdown). Under the lock, so the
		 * commit point (mig_switch_over takes it under the same lock) is either
		 * before this, and this is refused, or after, and GO is never sent.
		 */
		m->cancel = true;
		if (m->fd >= 0)
			shutdown(m->fd, SHUT_RDWR);
		while (write(m->wake[1], "c", 1) < 0 && errno == EINTR)
			;
	}
	pthread_mutex_unlock(&m->lock);
	return rc;
}

bool mig_source_finished(struct mig_source *m)
{
	bool f;

	pthread_mutex_lock(&m->lock);
	f = m->finished;
	pthread_mutex_unlock(&m->lock);
	return f;
}

void mig_source_free(struct mig_source *m)
{
	if (!m)
		return;
	pthread_join(m->thread, NULL);
	for (unsigned r = 0; r < MIG_MAX_REGIONS; r++)
		free(m->dirty[r]);
	free(m->stage);
	free(m->disk_dirty);
	free(m->disk_buf);
	if (m->disk_fd >= 0)
		close(m->disk_fd);
	close(m->wake[0]);
	close(m->wake[1]);
	pthread_mutex_destroy(&m->lock);
	free(m);
}
