/* Frames that reach the source's taps after the guest's final pause, carried to the destination. */
#include "migrate/source_priv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/byteorder.h"
#include "transport/frame.h"
#include "transport/stream.h"

/*
 * Bounds for one move: a paused guest's taps fill at the clients' rate for the length of
 * the pause plus the tail; 1024 frames or 8 MiB covers a gigabit link for ~60 ms.
 * What does not fit is dropped and counted, as a switch would drop it.
 */
#define MIG_CARRY_FRAMES 1024u
#define MIG_CARRY_BYTES (8u << 20)
/* After RUNNING, how long frames that were on their way to the old port are still taken:
 * the announcement's first round went out before RUNNING, so the network already sends
 * new frames to the destination. */
#define MIG_CARRY_TAIL_MS 50
#define MIG_CARRY_TAIL_STEP_MS 5

_Static_assert(MIG_NET_FRAME_MAX == VM_NIC_FRAME_MAX, "frame bound");

static int carry_buf(struct mig_carry *c)
{
	if (!c->buf)
		c->buf = malloc(MIG_NET_HDR_BYTES + VM_NIC_FRAME_MAX + 1);
	return c->buf ? 0 : -ENOMEM;
}

static void carry_keep(struct mig_carry *c, unsigned nic, const uint8_t *frame, size_t len)
{
	struct mig_kept_frame *k = malloc(sizeof(*k) + len);

	if (!k)
		return; /* then a roll-back loses this one frame, as a switch could */
	k->next = NULL;
	k->nic = nic;
	k->len = (uint32_t)len;
	memcpy(k->data, frame, len);
	if (c->kept_tail)
		c->kept_tail->next = k;
	else
		c->kept = k;
	c->kept_tail = k;
}

int mig_carry_drain(struct mig_source *m, bool keep)
{
	struct mig_carry *c = &m->carry;
	unsigned nics = vm_nic_count(m->vm);
	int rc = 0;

	if (!nics)
		return 0;
	rc = carry_buf(c);
	if (rc < 0)
		return rc;
	for (unsigned i = 0; i < nics && rc == 0; i++) {
		for (;;) {
			uint8_t *frame = c->buf + MIG_NET_HDR_BYTES;
			size_t len = 0;

			if (vm_nic_take_frame(m->vm, i, frame, VM_NIC_FRAME_MAX + 1, &len) != 1)
				break;
			if (c->frames >= MIG_CARRY_FRAMES || c->bytes + len > MIG_CARRY_BYTES) {
				c->dropped++;
				continue;
			}
			/* Kept first: a write that fails (a roll-back follows) loses nothing. */
			if (keep)
				carry_keep(c, i, frame, len);
			le32_encode(c->buf, i);
			rc = frame_write(m->out, MIG_REC_NET_FRAME, 0, c->buf,
					 MIG_NET_HDR_BYTES + len);
			if (rc < 0)
				break;
			c->frames++;
			c->bytes += len;
		}
	}
	mig_set_carry(m);
	return rc;
}

int mig_carry_tail(struct mig_source *m)
{
	struct timespec step = { .tv_nsec = MIG_CARRY_TAIL_STEP_MS * 1000000L };
	int rc = 0;

	if (!vm_nic_count(m->vm))
		return 0;
	for (unsigned t = 0; t <= MIG_CARRY_TAIL_MS && rc == 0; t += MIG_CARRY_TAIL_STEP_MS) {
		rc = mig_carry_drain(m, false);
		if (rc == 0)
			rc = stream_flush(m->out);
		if (rc == 0 && t < MIG_CARRY_TAIL_MS)
			nanosleep(&step, NULL);
	}
	return rc;
}

void mig_carry_give_back(struct mig_source *m)
{
	struct mig_carry *c = &m->carry;

	for (struct mig_kept_frame *k = c->kept; k; k = k->next)
		vm_nic_carry_in(m->vm, k->nic, k->data, k->len);
	mig_carry_free(m);
}

void mig_carry_free(struct mig_source *m)
{
	struct mig_carry *c = &m->carry;

	while (c->kept) {
		struct mig_kept_frame *k = c->kept;

		c->kept = k->next;
		free(k);
	}
	c->kept_tail = NULL;
	free(c->buf);
	c->buf = NULL;
}
