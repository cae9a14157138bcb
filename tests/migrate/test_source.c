/* The pre-copy state table of migrate/source.c: every allowed move taken, every other refused. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "migrate/source_priv.h"
#include "util/clock.h"

/* The moves migrate.h's states describe, written out here independently of source.c. */
static const struct {
	enum mig_state from, to;
} allowed_moves[] = {
	{ MIG_STATE_NONE, MIG_STATE_SETUP },
	{ MIG_STATE_SETUP, MIG_STATE_ITERATE },
	{ MIG_STATE_SETUP, MIG_STATE_FAILED },
	{ MIG_STATE_SETUP, MIG_STATE_CANCELLED },
	{ MIG_STATE_ITERATE, MIG_STATE_STOP_COPY },
	{ MIG_STATE_ITERATE, MIG_STATE_FAILED },
	{ MIG_STATE_ITERATE, MIG_STATE_CANCELLED },
	{ MIG_STATE_STOP_COPY, MIG_STATE_COMMIT },
	{ MIG_STATE_STOP_COPY, MIG_STATE_FAILED },
	{ MIG_STATE_STOP_COPY, MIG_STATE_CANCELLED },
	/* From the commit point on a cancel is refused (proto.h, step 3). */
	{ MIG_STATE_COMMIT, MIG_STATE_COMPLETED },
	{ MIG_STATE_COMMIT, MIG_STATE_UNCONFIRMED },
	{ MIG_STATE_COMMIT, MIG_STATE_FAILED },
};

static struct mig_source m;

static void setup(void)
{
	memset(&m, 0, sizeof(m));
	cr_assert_eq(pthread_mutex_init(&m.lock, NULL), 0);
	m.t0_ns = clock_now_ns();
}

static void teardown(void)
{
	pthread_mutex_destroy(&m.lock);
}

TestSuite(mig_state, .init = setup, .fini = teardown, .timeout = 10);

static bool expected(enum mig_state from, enum mig_state to)
{
	for (size_t i = 0; i < sizeof(allowed_moves) / sizeof(allowed_moves[0]); i++)
		if (allowed_moves[i].from == from && allowed_moves[i].to == to)
			return true;
	return false;
}

Test(mig_state, every_allowed_move_is_taken_and_every_other_refused)
{
	unsigned taken = 0;

	for (int from = 0; from < MIG_STATE_COUNT; from++) {
		for (int to = 0; to < MIG_STATE_COUNT; to++) {
			int rc;

			m.st.state = (enum mig_state)from;
			m.st.state_ms[to] = 12345;
			rc = mig_set_state(&m, (enum mig_state)to);
			if (expected((enum mig_state)from, (enum mig_state)to)) {
				cr_assert_eq(rc, 0, "%d -> %d refused", from, to);
				cr_assert_eq(m.st.state, (enum mig_state)to);
				cr_assert_neq(m.st.state_ms[to], 12345, "%d -> %d not timed", from, to);
				taken++;
			} else {
				/* Refused loudly, and nothing changes: never a silent no-op. */
				cr_assert_eq(rc, -EPROTO, "%d -> %d allowed", from, to);
				cr_assert_eq(m.st.state, (enum mig_state)from);
				cr_assert_eq(m.st.state_ms[to], 12345);
			}
		}
	}
	cr_assert_eq(taken, sizeof(allowed_moves) / sizeof(allowed_moves[0]));
}

/* The ends are ends: nothing leaves COMPLETED, FAILED, CANCELLED or UNCONFIRMED. */
Test(mig_state, final_states_have_no_way_out)
{
	static const enum mig_state ends[] = { MIG_STATE_COMPLETED, MIG_STATE_FAILED,
					       MIG_STATE_CANCELLED, MIG_STATE_UNCONFIRMED };

	for (size_t i = 0; i < sizeof(ends) / sizeof(ends[0]); i++)
		for (int to = 0; to < MIG_STATE_COUNT; to++) {
			m.st.state = ends[i];
			cr_assert_eq(mig_set_state(&m, (enum mig_state)to), -EPROTO);
		}
}

/* A whole successful run, in order, as the engine takes it. */
Test(mig_state, the_success_path_runs_through)
{
	cr_assert_eq(mig_set_state(&m, MIG_STATE_SETUP), 0);
	cr_assert_eq(mig_set_state(&m, MIG_STATE_ITERATE), 0);
	cr_assert_eq(mig_set_state(&m, MIG_STATE_STOP_COPY), 0);
	cr_assert_eq(mig_take_commit_point(&m), 0);
	cr_assert_eq(m.st.state, MIG_STATE_COMMIT);
	cr_assert_eq(mig_set_state(&m, MIG_STATE_COMPLETED), 0);
}

/* Step 3 of proto.h: a cancel that came before the commit point wins; nothing moves. */
Test(mig_state, a_cancel_before_the_commit_point_wins)
{
	m.st.state = MIG_STATE_STOP_COPY;
	m.cancel = true;
	cr_assert_eq(mig_take_commit_point(&m), -ECANCELED);
	cr_assert_eq(m.st.state, MIG_STATE_STOP_COPY);
	cr_assert_eq(mig_set_state(&m, MIG_STATE_CANCELLED), 0);
}

/* The commit point is taken only from STOP_COPY. */
Test(mig_state, the_commit_point_only_follows_stop_and_copy)
{
	m.st.state = MIG_STATE_ITERATE;
	cr_assert_eq(mig_take_commit_point(&m), -EPROTO);
	cr_assert_eq(m.st.state, MIG_STATE_ITERATE);
}
