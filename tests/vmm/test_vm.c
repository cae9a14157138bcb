/* Pausing a VM: holds by owner, so only who paused resumes, and a hold before the start. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/common/gw_test.h"
#include "tests/vmm/vm_helpers.h"
#include "vmm/vm.h"
#include "vmm/vm_state.h"
#include "util/clock.h"

#define RAM_BYTES (64ULL << 20)
#define COUNTER_GPA 0x1ff000ULL
#define WAIT_MS 20000

/* The guest counts in RAM as fast as it can: 1: incl COUNTER_GPA; jmp 1b */
static const uint8_t count_code[] = { 0xff, 0x05, 0x00, 0xf0, 0x1f, 0x00, 0xeb, 0xf8 };

static struct {
	char dir[64];
	char elf[128];
	struct vm *vm;
	volatile uint32_t *counter;
} fx;

static void setup(void)
{
	memset(&fx, 0, sizeof(fx));
	tvm_dir_make(fx.dir, sizeof(fx.dir));
	snprintf(fx.elf, sizeof(fx.elf), "%s/guest.elf", fx.dir);
}

static void teardown(void)
{
	tvm_vm_gone(&fx.vm);
	tvm_dir_remove(fx.dir);
}

TestSuite(vm_pause, .init = setup, .fini = teardown, .timeout = 120);

static void vm_make(unsigned ncpus)
{
	struct vm_config cfg = {
		.kernel_path = fx.elf, .ram_bytes = RAM_BYTES, .ncpus = ncpus, .console_fd = -1,
	};
	struct vm_ram_region r;
	char err[256];

	require_kvm();
	tvm_write_pvh_elf(fx.elf, count_code, sizeof(count_code));
	cr_assert_eq(vm_create(&fx.vm, &cfg, err, sizeof(err)), 0, "vm_create: %s", err);
	vm_ram_region(fx.vm, 0, &r);
	fx.counter = (volatile uint32_t *)(r.hva + COUNTER_GPA);
}

/* Wait until the guest's counter moves past where it is now: it runs. */
static void expect_counting(const char *why)
{
	uint32_t from = *fx.counter;
	uint64_t end = clock_now_ms() + WAIT_MS;

	while (*fx.counter == from) {
		cr_assert_lt(clock_now_ms(), end, "the guest does not run: %s", why);
		usleep(1000);
	}
}

/*
 * Paused means every vCPU is parked: the counter cannot move, however long we look. The
 * look is short; what makes it a proof is that vm_pause_by returned only once all vCPUs
 * were out of KVM_RUN, which vm_state and the holders confirm first.
 */
static void expect_held(unsigned holders, const char *why)
{
	uint32_t at;

	cr_assert_eq(vm_state(fx.vm), VM_STATE_PAUSED, "%s", why);
	cr_assert_eq(vm_pause_holders(fx.vm), holders, "%s: holders %#x", why,
		     vm_pause_holders(fx.vm));
	at = *fx.counter;
	usleep(20000);
	cr_assert_eq(*fx.counter, at, "the guest ran while held: %s", why);
}

Test(vm_pause, only_who_paused_resumes_and_the_vm_runs_when_the_last_lets_go)
{
	vm_make(2);
	cr_assert_eq(vm_start(fx.vm), 0);
	expect_counting("after start");
	cr_assert_eq(vm_pause_holders(fx.vm), 0);
	cr_assert_eq(vm_pause(fx.vm), 0);
	expect_held(VM_PAUSE_USER, "user pause");
	/* The throttle's pause, sleep, resume while the user holds it: still paused. */
	cr_assert_eq(vm_pause_by(fx.vm, VM_PAUSE_THROTTLE), 0);
	expect_held(VM_PAUSE_USER | VM_PAUSE_THROTTLE, "user and throttle");
	cr_assert_eq(vm_resume_by(fx.vm, VM_PAUSE_THROTTLE), 0);
	expect_held(VM_PAUSE_USER, "the throttle let go, the user did not");
	/* Nobody resumes what they did not pause. */
	cr_assert_eq(vm_resume_by(fx.vm, VM_PAUSE_MIGRATE), -EINVAL);
	cr_assert_eq(vm_resume_by(fx.vm, VM_PAUSE_THROTTLE), -EINVAL, "released twice");
	expect_held(VM_PAUSE_USER, "after refused resumes");
	/* A second pause by the same owner is one hold: one resume lets go. */
	cr_assert_eq(vm_pause(fx.vm), 0);
	cr_assert_eq(vm_resume(fx.vm), 0);
	cr_assert_eq(vm_state(fx.vm), VM_STATE_RUNNING);
	expect_counting("after the user's resume");
	cr_assert_eq(vm_resume(fx.vm), -EINVAL, "resume of a running VM");
	/* The engine's hold first, the user's on top: the engine's end leaves it paused. */
	cr_assert_eq(vm_pause_by(fx.vm, VM_PAUSE_MIGRATE), 0);
	cr_assert_eq(vm_pause(fx.vm), 0);
	cr_assert_eq(vm_resume_by(fx.vm, VM_PAUSE_MIGRATE), 0);
	expect_held(VM_PAUSE_USER, "the migration let go, the user had paused meanwhile");
	cr_assert_eq(vm_resume(fx.vm), 0);
	expect_counting("all holds gone");
	vm_request_stop(fx.vm);
	vm_wait(fx.vm, NULL);
	cr_assert_eq(vm_pause(fx.vm), -EINVAL, "a stopped VM");
}

Test(vm_pause, a_hold_taken_before_the_start_parks_the_vcpus_before_they_run)
{
	uint8_t *blob = NULL;
	size_t len = 0;

	vm_make(2);
	cr_assert_eq(vm_pause(fx.vm), 0);
	cr_assert_eq(vm_state(fx.vm), VM_STATE_CREATED);
	cr_assert_eq(vm_start(fx.vm), 0);
	expect_held(VM_PAUSE_USER, "held from before the start");
	cr_assert_eq(*fx.counter, 0, "the guest ran before it was resumed");
	cr_assert_eq(vm_state_save(fx.vm, &blob, &len), 0, "a VM started paused is saveable");
	free(blob);
	cr_assert_eq(vm_resume(fx.vm), 0);
	expect_counting("resumed after a paused start");
}

struct racer {
	pthread_barrier_t *go;
	unsigned owner;
	int rc;
};

static void *pause_racer(void *arg)
{
	struct racer *r = arg;

	pthread_barrier_wait(r->go);
	r->rc = vm_pause_by(fx.vm, r->owner);
	return NULL;
}

/*
 * Two owners pausing a running VM at the same moment both wait for the vCPUs to park:
 * each hold must count, or the first to let go resumes the other's pause.
 */
Test(vm_pause, two_owners_pausing_at_once_both_hold_it)
{
	pthread_barrier_t go;

	vm_make(2);
	cr_assert_eq(vm_start(fx.vm), 0);
	cr_assert_eq(pthread_barrier_init(&go, NULL, 2), 0);
	for (unsigned i = 0; i < 200; i++) {
		struct racer a = { .go = &go, .owner = VM_PAUSE_USER };
		struct racer b = { .go = &go, .owner = VM_PAUSE_THROTTLE };
		pthread_t ta, tb;

		expect_counting("between rounds");
		cr_assert_eq(pthread_create(&ta, NULL, pause_racer, &a), 0);
		cr_assert_eq(pthread_create(&tb, NULL, pause_racer, &b), 0);
		pthread_join(ta, NULL);
		pthread_join(tb, NULL);
		cr_assert(a.rc == 0 && b.rc == 0);
		cr_assert_eq(vm_pause_holders(fx.vm), VM_PAUSE_USER | VM_PAUSE_THROTTLE,
			     "round %u: a hold was lost: %#x", i, vm_pause_holders(fx.vm));
		cr_assert_eq(vm_resume_by(fx.vm, VM_PAUSE_THROTTLE), 0);
		cr_assert_eq(vm_state(fx.vm), VM_STATE_PAUSED, "round %u", i);
		cr_assert_eq(vm_resume(fx.vm), 0);
	}
	pthread_barrier_destroy(&go);
}
