/* Application processors of the test guest: found in the MP table, started with INIT-SIPI-SIPI. */
#ifndef GUEST_SMP_H
#define GUEST_SMP_H

#include <stdint.h>

/* What smp_start_aps() found and did; printed only when something went wrong. */
struct smp_result {
	uint32_t listed;                /* enabled processors in the MP table, BSP included; 0 = no table */
	uint32_t started;               /* APs sent INIT-SIPI-SIPI */
	uint32_t online;                /* APs that reached CPL 3 */
};

/*
 * Runs on the BSP at CPL 3 once the timer is started: reads the MP table, copies the
 * real-mode trampoline to GUEST_TRAMPOLINE_GPA, sends INIT and STARTUP (and a second
 * STARTUP when needed) to every other enabled processor (at most GUEST_MAX_CPUS - 1), and
 * waits up to about one second for them to report in from CPL 3.
 */
void smp_start_aps(struct smp_result *res);

/* Sum of every AP's alive counter; each AP bumps its own in a loop at CPL 3. */
uint64_t smp_alive_sum(void);

#endif
