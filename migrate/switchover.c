/* The switch-over: the commit point, GO and RUNNING, and rolling back before it. */
#include "migrate/source_priv.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "migrate/conn.h"
#include "util/byteorder.h"
#include "transport/frame.h"
#include "transport/stream.h"
#include "util/clock.h"

int mig_switch_over(struct mig_source *m, uint64_t t_pause)
{
	char msg[MIG_REPLY_MAX_MSG + 1] = "";
	enum mig_reply reply = MIG_REPLY_INVALID;
	uint8_t go[MIG_GO_BYTES];
	bool sent = false;
	int rc;

	mig_test_hold("source-ready");
	rc = mig_take_commit_point(m);
	if (rc < 0)
		return rc;
	/* The user's pause travels with the guest: it arrives paused. */
	le32_encode(go, vm_pause_holders(m->vm) & VM_PAUSE_USER ? MIG_GO_F_PAUSED : 0);
	rc = frame_write(m->out, MIG_REC_GO, 0, go, sizeof(go));
	if (rc == 0)
		rc = stream_flush(m->out);
	sent = rc == 0;
	if (rc == 0)
		rc = mig_reply_recv(m->conn, &reply, msg, sizeof(msg));
	if (rc == 0 && reply == MIG_REPLY_RUNNING) {
		mig_set_downtime(m, (clock_now_ns() - t_pause) / 1000000ULL);
		mig_set_announce(m, msg);
		mig_test_hold("source-running");
		/* The tail: frames still on their way here go after the guest. Losing them
		 * now loses only them: the move is done. */
		mig_carry_tail(m);
		mig_close_out(m, true);
		mig_set_state(m, MIG_STATE_COMPLETED);
		return 0;
	}
	if (rc == 0 && reply == MIG_REPLY_ERROR) {
		/* It says, authenticated, that it will not run the guest: it is ours again. */
		mig_fail_msg(m, "%s could not start the VM after GO: %.200s; it runs here again",
			     m->p.to, msg[0] ? msg : "no reason given");
		mig_close_out(m, false);
		mig_throttle_stop(&m->throttle);
		mig_carry_give_back(m);
		vm_resume_by(m->vm, VM_PAUSE_MIGRATE);
		m->paused = false;
		mig_set_state(m, MIG_STATE_FAILED);
		return 0;
	}
	/*
	 * 4 or 6 of the timeline: the destination may run the guest now. Never resume it
	 * here: hand the engine's hold to the user, who resumes or quits once they know.
	 */
	if (!sent)
		mig_fail_msg(m, "GO could not be sent to %s (%s): the destination may or may not "
			     "have it", m->p.to, strerror(-rc));
	else if (rc < 0)
		mig_fail_msg(m, "GO went out, but %s never said it runs the VM (%s): it may be "
			     "running it", m->p.to, strerror(-rc));
	else
		mig_fail_msg(m, "%s answered GO with reply %u, not RUNNING: it may or may not run "
			     "the VM", m->p.to, (unsigned)reply);
	vm_pause_by(m->vm, VM_PAUSE_USER);
	mig_carry_give_back(m); /* for the guest here, should the user resume it */
	vm_resume_by(m->vm, VM_PAUSE_MIGRATE);
	m->paused = false;
	mig_close_out(m, false);
	mig_set_state(m, MIG_STATE_UNCONFIRMED);
	return 0;
}

void mig_roll_back(struct mig_source *m, int rc, const char *why)
{
	if (m->out) {
		frame_write(m->out, MIG_REC_ABORT, 0, why, strlen(why));
		stream_flush(m->out);
		mig_close_out(m, false);
	}
	mig_throttle_stop(&m->throttle);
	/* The frames taken from the taps go to the guest here, before newer ones. */
	mig_carry_give_back(m);
	/* Only the engine's own hold: a guest the user paused stays paused. */
	if (m->paused) {
		vm_resume_by(m->vm, VM_PAUSE_MIGRATE);
		m->paused = false;
	}
	mig_fail_msg(m, "%s", why);
	mig_set_state(m, rc == -ECANCELED || mig_cancelled(m) ? MIG_STATE_CANCELLED
							       : MIG_STATE_FAILED);
}
