/* Auto-converge: hold the vCPUs paused for a share of every period so dirtying slows. */
#include "migrate/source_priv.h"

#include <errno.h>
#include <time.h>

#define THROTTLE_PERIOD_NS 20000000ULL /* 20 ms: short enough that the guest sees jitter,
					* not stalls */

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000ULL),
			       .tv_nsec = (long)(ns % 1000000000ULL) };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void *throttle_thread(void *arg)
{
	struct mig_throttle *t = arg;

	for (;;) {
		unsigned pct;

		pthread_mutex_lock(&t->lock);
		while (!t->stop && t->pct == 0)
			pthread_cond_wait(&t->cond, &t->lock);
		pct = t->pct;
		if (t->stop) {
			pthread_mutex_unlock(&t->lock);
			break;
		}
		pthread_mutex_unlock(&t->lock);
		/*
		 * Its own hold: a guest someone else paused meanwhile (the user through the
		 * API) stays paused when this one lets go.
		 */
		if (vm_pause_by(t->vm, VM_PAUSE_THROTTLE) == 0) {
			sleep_ns(THROTTLE_PERIOD_NS * pct / 100);
			vm_resume_by(t->vm, VM_PAUSE_THROTTLE);
		}
		sleep_ns(THROTTLE_PERIOD_NS * (100 - pct) / 100);
	}
	return NULL;
}

int mig_throttle_start(struct mig_throttle *t, struct vm *vm)
{
	int rc;

	t->vm = vm;
	t->pct = 0;
	t->stop = false;
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->cond, NULL);
	rc = -pthread_create(&t->thread, NULL, throttle_thread, t);
	t->running = rc == 0;
	return rc;
}

void mig_throttle_set(struct mig_throttle *t, unsigned pct)
{
	if (!t->running)
		return;
	pthread_mutex_lock(&t->lock);
	t->pct = pct > 95 ? 95 : pct;
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
}

/* Stop the thread; on return the guest is not held paused by it. */
void mig_throttle_stop(struct mig_throttle *t)
{
	if (!t->running)
		return;
	pthread_mutex_lock(&t->lock);
	t->stop = true;
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
	pthread_join(t->thread, NULL);
	pthread_cond_destroy(&t->cond);
	pthread_mutex_destroy(&t->lock);
	t->running = false;
}
