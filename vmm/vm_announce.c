/* Telling the network where a moved guest is: RARP rounds from each NIC's MAC, and the guest's own. */
#include "vmm/vm_priv.h"

#include <errno.h>
#include <string.h>
#include <time.h>

/*
 * QEMU's announce-self defaults (migration parameters announce-initial, -step, -max,
 * -rounds), so a network tuned for QEMU sees the same: rounds at 0, 50, 200, 450 and
 * 800 ms after the start.
 */
#define ANN_INITIAL_MS 50
#define ANN_STEP_MS 100
#define ANN_MAX_MS 550
#define ANN_FRAME_BYTES 60 /* a RARP frame padded to Ethernet's minimum */

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* A RARP "request reverse" from mac, as QEMU's announce_self_create: bridges learn mac. */
static void rarp_build(uint8_t f[ANN_FRAME_BYTES], const uint8_t mac[VM_MAC_BYTES])
{
	memset(f, 0, ANN_FRAME_BYTES);
	memset(f, 0xff, 6);           /* to everyone */
	memcpy(f + 6, mac, 6);        /* from the guest's MAC: the port it is learned on */
	f[12] = 0x80, f[13] = 0x35;   /* ETH_P_RARP */
	f[14] = 0x00, f[15] = 0x01;   /* hardware: Ethernet */
	f[16] = 0x08, f[17] = 0x00;   /* protocol: IPv4 */
	f[18] = 6, f[19] = 4;         /* address lengths */
	f[20] = 0x00, f[21] = 0x03;   /* op: request reverse */
	memcpy(f + 22, mac, 6);       /* sender hardware address; sender IP 0 */
	memcpy(f + 32, mac, 6);       /* target hardware address; target IP 0 */
}

/* One round: a RARP on every NIC's tap; in the first, ask the guests too. ann.lock held. */
static void announce_round(struct vm *vm)
{
	struct vm_announce *a = &vm->ann;

	for (unsigned i = 0; i < vm->nnets; i++) {
		struct virtio_net_info info;
		uint8_t frame[ANN_FRAME_BYTES];

		virtio_net_info_get(vm->net[i], &info);
		rarp_build(frame, info.mac);
		if (virtio_net_send_host_frame(vm->net[i], frame, sizeof(frame)) == 0)
			a->info.frames++;
		else
			a->info.errors++;
		/* Once per announcement: the driver sends its own gratuitous ARP and acks. */
		if (a->info.rounds == 0 && virtio_net_announce(vm->net[i]))
			a->info.guest_asked++;
	}
	if (a->info.rounds == 0)
		a->info.first_ns = clock_ns(CLOCK_REALTIME);
	a->info.last_ns = clock_ns(CLOCK_REALTIME);
	a->info.rounds++;
}

/* The later rounds, on their own thread: never a vCPU's, never the caller's. */
static void *announce_thread(void *arg)
{
	struct vm *vm = arg;
	struct vm_announce *a = &vm->ann;
	uint64_t next = clock_ns(CLOCK_MONOTONIC);

	pthread_mutex_lock(&a->lock);
	while (!a->stop && a->info.rounds < VM_ANNOUNCE_ROUNDS) {
		uint64_t delay_ms = ANN_INITIAL_MS + (uint64_t)ANN_STEP_MS * (a->info.rounds - 1);
		struct timespec ts;

		next += (delay_ms < ANN_MAX_MS ? delay_ms : ANN_MAX_MS) * 1000000ULL;
		ts.tv_sec = (time_t)(next / 1000000000ULL);
		ts.tv_nsec = (long)(next % 1000000000ULL);
		while (!a->stop && pthread_cond_timedwait(&a->cond, &a->lock, &ts) != ETIMEDOUT)
			;
		if (!a->stop)
			announce_round(vm);
	}
	pthread_mutex_unlock(&a->lock);
	return NULL;
}

int vm_announce_init(struct vm *vm)
{
	pthread_condattr_t ca;
	int rc;

	rc = pthread_condattr_init(&ca);
	if (rc == 0)
		rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (rc == 0)
		rc = pthread_cond_init(&vm->ann.cond, &ca);
	pthread_condattr_destroy(&ca);
	if (rc != 0)
		return -rc;
	pthread_mutex_init(&vm->ann.lock, NULL);
	vm->ann.ready = true;
	return 0;
}

void vm_announce_stop(struct vm *vm)
{
	struct vm_announce *a = &vm->ann;

	if (!a->ready || !a->thread_started)
		return;
	pthread_mutex_lock(&a->lock);
	a->stop = true;
	pthread_cond_broadcast(&a->cond);
	pthread_mutex_unlock(&a->lock);
	pthread_join(a->thread, NULL);
	a->thread_started = false;
	a->stop = false;
}

int vm_announce(struct vm *vm, struct vm_announce_info *out)
{
	struct vm_announce *a = &vm->ann;
	int rc = 0;

	if (!a->ready)
		return -EINVAL;
	vm_announce_stop(vm); /* a new announcement restarts the schedule */
	pthread_mutex_lock(&a->lock);
	memset(&a->info, 0, sizeof(a->info));
	if (vm->nnets) {
		announce_round(vm);
		if (VM_ANNOUNCE_ROUNDS > 1) {
			rc = -pthread_create(&a->thread, NULL, announce_thread, vm);
			a->thread_started = rc == 0;
		}
	}
	if (out)
		*out = a->info;
	pthread_mutex_unlock(&a->lock);
	return rc;
}

void vm_announce_info_get(struct vm *vm, struct vm_announce_info *out)
{
	memset(out, 0, sizeof(*out));
	if (!vm->ann.ready)
		return;
	pthread_mutex_lock(&vm->ann.lock);
	*out = vm->ann.info;
	pthread_mutex_unlock(&vm->ann.lock);
}
