/* PIC, PIT and local APIC setup at CPL 3, the boot id mix, and power off through ACPI or the i8042. */
#include "platform.h"

#include <stdarg.h>
#include <stdbool.h>

#include "abi.h"
#include "console.h"
#include "hw.h"
#include "lib.h"

#define PIC1_DATA 0x21
#define PIT_CH0 0x40
#define PIT_MODE 0x43
#define PM1A_CNT 0x604
#define PM1_SLP_EN 0x2000
#define I8042_CMD 0x64
#define I8042_RESET 0xfe

uint32_t lapic_read(uint32_t reg)
{
	return mmio_read32(GUEST_LAPIC_GPA + reg);
}

void lapic_write(uint32_t reg, uint32_t v)
{
	mmio_write32(GUEST_LAPIC_GPA + reg, v);
}

void platform_timer_start(void)
{
	/*
	 * The BSP's LAPIC must pass PIC interrupts (LINT0 ExtINT) whatever firmware or VMM
	 * left there; its own timer and error LVTs stay masked. entry.S has programmed the
	 * PICs and the PIT already; unmasking IRQ0 starts the ticks.
	 */
	lapic_write(LAPIC_REG_SVR, 0x100 | VEC_SPURIOUS);
	lapic_write(LAPIC_REG_LVT_TIMER, 0x10000);
	lapic_write(LAPIC_REG_LVT_ERROR, 0x10000);
	lapic_write(LAPIC_REG_LVT_LINT0, 0x700);
	lapic_write(LAPIC_REG_LVT_LINT1, 0x400);
	outb(PIC1_DATA, 0xfe);
}

uint16_t platform_pit_read(void)
{
	uint8_t lo, hi;

	outb(PIT_MODE, 0x00);
	lo = inb(PIT_CH0);
	hi = inb(PIT_CH0);
	return (uint16_t)(hi << 8 | lo);
}

static bool cpu_rdrand64(uint64_t *out)
{
	uint32_t a, b, c, d;
	unsigned char ok;
	uint64_t v;

	cpuid(1, &a, &b, &c, &d);
	if (!(c & (1u << 30)))
		return false;
	for (int tries = 0; tries < 10; tries++) {
		__asm__ volatile("rdrand %0; setc %1" : "=r"(v), "=qm"(ok));
		if (ok) {
			*out = v;
			return true;
		}
	}
	return false;
}

uint64_t platform_boot_id(uint64_t tsc_entry, uint64_t tsc_now, uint16_t pit)
{
	uint64_t id, r;

	/* The TSC samples differ run to run by the jitter of everything before them. */
	id = splitmix64(tsc_entry);
	id = splitmix64(id ^ tsc_now);
	id = splitmix64(id ^ ((uint64_t)pit << 48) ^ rdtsc());
	if (cpu_rdrand64(&r))
		id = splitmix64(id ^ r);
	return id;
}

void platform_poweroff(void)
{
	uint64_t until, tsc0;

	outw(PM1A_CNT, PM1_SLP_EN);
	/*
	 * A VMM may finish the power off asynchronously: give it ~100 ms before resetting.
	 * The TSC bound (~100 ms at 3 GHz) covers a panic before the timer runs.
	 */
	until = ticks_now() + PLATFORM_TICK_HZ / 10;
	tsc0 = rdtsc();
	while (ticks_now() < until && rdtsc() - tsc0 < 300000000ULL)
		cpu_relax();
	outb(I8042_CMD, I8042_RESET);
	guest_halt();
}

void guest_panic(const char *fmt, ...)
{
	va_list ap;

	console_printf("GUEST panic ");
	va_start(ap, fmt);
	console_vprintf(fmt, ap);
	va_end(ap);
	console_printf("\n");
	platform_poweroff();
}
