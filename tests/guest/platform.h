/* Legacy platform devices of the test guest: PIC, PIT, local APIC, power off and the boot id. */
#ifndef GUEST_PLATFORM_H
#define GUEST_PLATFORM_H

#include <stdint.h>

#define PLATFORM_TICK_HZ 100

#define LAPIC_REG_ID 0x020
#define LAPIC_REG_SVR 0x0f0
#define LAPIC_REG_ICR_LO 0x300
#define LAPIC_REG_ICR_HI 0x310
#define LAPIC_REG_LVT_TIMER 0x320
#define LAPIC_REG_LVT_LINT0 0x350
#define LAPIC_REG_LVT_LINT1 0x360
#define LAPIC_REG_LVT_ERROR 0x370

uint32_t lapic_read(uint32_t reg);
void lapic_write(uint32_t reg, uint32_t v);

/*
 * Runs at CPL 3 on the BSP, once: enables its LAPIC with LINT0 as ExtINT and unmasks IRQ0
 * at the PIC (which entry.S remapped to 0x20, with the PIT at 100 Hz), so guest_ticks
 * starts counting.
 */
void platform_timer_start(void);

/* Reads the PIT channel 0 down-counter (latched), a cheap source of boot-to-boot jitter. */
uint16_t platform_pit_read(void);

/* Mixes the given samples with RDRAND (when the CPU has it) into a 64-bit boot id. */
uint64_t platform_boot_id(uint64_t tsc_entry, uint64_t tsc_now, uint16_t pit);

/*
 * Powers the VM off: ACPI PM1a SLP_EN, then (after ~100 ms) an i8042 reset, then halts
 * this CPU. Prints nothing itself.
 */
void platform_poweroff(void) __attribute__((noreturn));

/* Prints "GUEST panic " and the formatted reason on one line, then powers off. */
void guest_panic(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

#endif
