/* The test guest's exception handler: reports the fault on the console and powers the VM off. */
#include "abi.h"
#include "console.h"
#include "hw.h"

#define TRAP_VEC_UD 6

/* Set by the first CPU to fault, so a second fault (or a fault in here) cannot loop. */
static uint32_t trap_busy;

static void trap_halt_forever(void) __attribute__((noreturn));

static void trap_halt_forever(void)
{
	for (;;)
		__asm__ volatile("cli; hlt");
}

/*
 * Runs at CPL 0 with interrupts off, so every instruction here is emulated on PVM: it
 * prints one line and leaves. A ud2 at guest_halt is not a fault but CPL 3 asking to stop.
 */
void trap_report(uint64_t vec, uint64_t err, uint64_t rip, uint64_t cs)
{
	uint64_t tsc0;

	if (vec == TRAP_VEC_UD && rip == (uint64_t)(uintptr_t)guest_halt)
		trap_halt_forever();
	if (__atomic_exchange_n(&trap_busy, 1, __ATOMIC_SEQ_CST))
		trap_halt_forever();
	console_printf("GUEST fault vec=%lu err=%lx rip=%lx cpl=%lu\n", vec, err, rip, cs & 3);
	outw(0x604, 0x2000);
	/* The timer is off in here; wait on the TSC (~30 ms at 3 GHz) before the reset fallback. */
	tsc0 = rdtsc();
	while (rdtsc() - tsc0 < 100000000ULL)
		cpu_relax();
	outb(0x64, 0xfe);
	trap_halt_forever();
}
