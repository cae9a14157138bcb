/* Starts the test guest's application processors from the MP table and keeps their alive counters. */
#include "smp.h"

#include <stdbool.h>
#include <stddef.h>

#include "abi.h"
#include "boot.h"
#include "hw.h"
#include "lib.h"
#include "platform.h"

#define MP_FLOAT_LEN 16
#define MPC_HEADER_LEN 44
#define MPC_MAX_LEN 65536
#define MP_ENTRY_PROCESSOR 0
#define MP_CPU_ENABLED 0x1
#define ICR_DELIVERY_PENDING (1u << 12)
#define ICR_INIT_ASSERT 0x4500
#define ICR_STARTUP 0x4600
#define SMP_WAIT_TICKS PLATFORM_TICK_HZ
#define SMP_SIPI_RETRY_TSC (1ULL << 26)   /* ~30 ms at 2 GHz */
#define SMP_WAIT_TSC (1ULL << 32)         /* ~2 s at 2 GHz */

/*
 * One cache line per CPU so the AP loops do not share lines. Each alive counter is
 * written only by its AP and read by the BSP; smp_online is added to by every AP once.
 */
struct smp_slot {
	volatile uint64_t alive;
	uint64_t pad[7];
};

static struct smp_slot smp_slots[GUEST_MAX_CPUS] __attribute__((aligned(64)));
static uint32_t smp_online;

void ap_main(uint32_t cpu_index)
{
	volatile uint64_t *alive = &smp_slots[cpu_index].alive;

	__atomic_fetch_add(&smp_online, 1, __ATOMIC_SEQ_CST);
	for (;;) {
		(*alive)++;
		cpu_relax();
	}
}

uint64_t smp_alive_sum(void)
{
	uint64_t sum = 0;

	for (uint32_t i = 1; i < GUEST_MAX_CPUS; i++)
		sum += smp_slots[i].alive;
	return sum;
}

static uint8_t mp_checksum(const uint8_t *p, size_t len)
{
	uint8_t sum = 0;

	while (len--)
		sum = (uint8_t)(sum + *p++);
	return sum;
}

/* Finds a valid "_MP_" floating pointer on a 16-byte boundary in [base, base + len). */
static const uint8_t *mp_float_find(uint64_t base, uint64_t len)
{
	if (!boot_gpa_is_mapped(base, len))
		return NULL;
	for (uint64_t a = base; a + MP_FLOAT_LEN <= base + len; a += 16) {
		const uint8_t *p = phys_ptr(a);

		if (p[0] == '_' && p[1] == 'M' && p[2] == 'P' && p[3] == '_' && p[8] == 1 &&
		    mp_checksum(p, MP_FLOAT_LEN) == 0)
			return p;
	}
	return NULL;
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

/* Searches where the MP spec says: EBDA's first KiB, base memory's last KiB, the BIOS ROM. */
static const uint8_t *mp_table_find(void)
{
	const uint8_t *f = NULL;
	uint64_t ebda = (uint64_t)rd16(phys_ptr(0x40e)) << 4;
	uint64_t basemem_kib = rd16(phys_ptr(0x413));

	if (ebda >= 0x400 && ebda < 0xa0000)
		f = mp_float_find(ebda, 1024);
	if (!f && basemem_kib >= 1 && basemem_kib <= 640)
		f = mp_float_find(basemem_kib * 1024 - 1024, 1024);
	if (!f)
		f = mp_float_find(0x9fc00, 1024);
	if (!f)
		f = mp_float_find(0xf0000, 0x10000);
	if (!f || f[11] != 0)
		return NULL;            /* feature byte 1 set means a default config: no table */
	uint64_t mpc = rd32(f + 4);
	const uint8_t *t = phys_ptr(mpc);

	if (mpc == 0 || !boot_gpa_is_mapped(mpc, MPC_HEADER_LEN))
		return NULL;
	if (t[0] != 'P' || t[1] != 'C' || t[2] != 'M' || t[3] != 'P')
		return NULL;
	uint16_t len = rd16(t + 4);

	if (len < MPC_HEADER_LEN || !boot_gpa_is_mapped(mpc, len) || mp_checksum(t, len) != 0)
		return NULL;
	return t;
}

/* Collects the APIC IDs of enabled processors; returns how many (BSP included). */
static uint32_t mp_cpus_list(const uint8_t *t, uint8_t *ids, uint32_t max)
{
	uint16_t len = rd16(t + 4), count = rd16(t + 34);
	uint32_t n = 0, off = MPC_HEADER_LEN;

	for (uint16_t i = 0; i < count && off < len; i++) {
		uint32_t size = t[off] == MP_ENTRY_PROCESSOR ? 20 : 8;

		if (off + size > len)
			break;
		if (t[off] == MP_ENTRY_PROCESSOR && (t[off + 3] & MP_CPU_ENABLED) && n < max)
			ids[n++] = t[off + 1];
		off += size;
	}
	return n;
}

static void lapic_ipi_send(uint32_t apic_id, uint32_t icr_lo)
{
	lapic_write(LAPIC_REG_ICR_HI, apic_id << 24);
	lapic_write(LAPIC_REG_ICR_LO, icr_lo);
	for (int spin = 0; spin < 100000; spin++) {
		if (!(lapic_read(LAPIC_REG_ICR_LO) & ICR_DELIVERY_PENDING))
			break;
		cpu_relax();
	}
}

/*
 * Waits until `want` APs are online, or `ticks` timer ticks have started and ended, or
 * tsc_cap TSC cycles have passed (so a timer that never ticks cannot hang the boot).
 */
static uint32_t smp_wait_online(uint32_t want, uint64_t ticks, uint64_t tsc_cap)
{
	uint64_t until = ticks_now() + ticks, tsc0 = rdtsc();
	uint32_t online;

	while ((online = __atomic_load_n(&smp_online, __ATOMIC_ACQUIRE)) < want &&
	       ticks_now() < until && rdtsc() - tsc0 < tsc_cap)
		cpu_relax();
	return online;
}

void smp_start_aps(struct smp_result *res)
{
	uint8_t ids[GUEST_MAX_CPUS] = { 0 };
	uint32_t n, bsp_id, aps = 0;
	const uint8_t *t;
	size_t tramp_len = (size_t)(ap_trampoline_end - ap_trampoline_start);

	res->listed = 0;
	res->started = 0;
	res->online = 0;
	t = mp_table_find();
	if (!t)
		return;
	n = mp_cpus_list(t, ids, GUEST_MAX_CPUS);
	res->listed = n;
	if (!boot_gpa_is_mapped(GUEST_TRAMPOLINE_GPA, tramp_len))
		return;
	memcpy(phys_ptr(GUEST_TRAMPOLINE_GPA), ap_trampoline_start, tramp_len);
	bsp_id = lapic_read(LAPIC_REG_ID) >> 24;
	for (uint32_t i = 0; i < n; i++) {
		if (ids[i] == bsp_id || aps == GUEST_MAX_CPUS - 1)
			continue;
		ids[aps++] = ids[i];
	}
	if (aps == 0)
		return;
	/*
	 * INIT, then STARTUP at once, as Linux does on CPUs that need no INIT delay (and KVM
	 * needs none); a second STARTUP only if some AP is not up within 1-2 ticks. A CPU that
	 * already left wait-for-SIPI ignores it.
	 */
	for (uint32_t i = 0; i < aps; i++)
		lapic_ipi_send(ids[i], ICR_INIT_ASSERT);
	for (uint32_t i = 0; i < aps; i++)
		lapic_ipi_send(ids[i], ICR_STARTUP | GUEST_SIPI_VECTOR);
	res->started = aps;
	if (smp_wait_online(aps, 2, SMP_SIPI_RETRY_TSC) < aps) {
		for (uint32_t i = 0; i < aps; i++)
			lapic_ipi_send(ids[i], ICR_STARTUP | GUEST_SIPI_VECTOR);
		smp_wait_online(aps, SMP_WAIT_TICKS, SMP_WAIT_TSC);
	}
	res->online = __atomic_load_n(&smp_online, __ATOMIC_ACQUIRE);
}
