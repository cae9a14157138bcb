/* The test guest's BSP program at CPL 3: boot line, disk options, then the workload and heartbeats. */
#include "abi.h"
#include "boot.h"
#include "cmdline.h"
#include "console.h"
#include "disk.h"
#include "hw.h"
#include "lib.h"
#include "net.h"
#include "platform.h"
#include "smp.h"
#include "virtio_blk.h"
#include "workload.h"

#define HB_TICKS (PLATFORM_TICK_HZ / 10)
#define HB_WRITE_BATCH 256              /* pages per workload_run call between heartbeat checks */
#define TIMER_START_TSC (1ULL << 33)    /* ~3 s at 3 GHz for the first tick to arrive */

/*
 * The BSP's state. It lives in guest RAM like everything else, so after a snapshot
 * restore or a migration the heartbeat counter, boot id and workload carry on.
 */
struct guest {
	struct boot_info boot;
	struct guest_options opt;
	struct smp_result smp;
	struct workload wl;
	uint64_t bootid;
	uint64_t hb_counter;
	uint64_t hb_next;
	unsigned nics;
};

static struct guest guest;

/* Waits for the first tick (usually already there), so a dead timer is reported, not hung on. */
static void guest_timer_wait_first(void)
{
	uint64_t tsc0 = rdtsc();

	while (ticks_now() == 0) {
		if (rdtsc() - tsc0 > TIMER_START_TSC)
			guest_panic("timer not ticking (PIT/PIC IRQ0 never arrived)");
		cpu_relax();
	}
}

static void guest_smp_report(const struct smp_result *smp)
{
	if (smp->listed == 0)
		console_printf("GUEST smp no MP table, running on the BSP only\n");
	else if (smp->online < smp->started)
		console_printf("GUEST smp listed=%u started=%u online=%u\n", smp->listed,
			       smp->started, smp->online);
}

static void guest_heartbeat(struct guest *g, uint64_t now)
{
	g->hb_counter++;
	if (g->opt.verify)
		workload_verify_some(&g->wl);
	if (g->nics) {
		net_heartbeat();
		console_printf("HB %016lx %lu t=%lu gen=%lu ap=%lu e=%lu udp=%lu ann=%lu\n",
			       g->bootid, g->hb_counter, now, g->wl.sweep, smp_alive_sum(),
			       g->wl.errors, net_stats()->udp, net_stats()->announced);
	} else {
		console_printf("HB %016lx %lu t=%lu gen=%lu ap=%lu e=%lu\n", g->bootid,
			       g->hb_counter, now, g->wl.sweep, smp_alive_sum(), g->wl.errors);
	}
	if (g->opt.poweroff && g->hb_counter >= g->opt.poweroff) {
		console_printf("GUEST poweroff\n");
		platform_poweroff();
	}
	g->hb_next += HB_TICKS;
	if (g->hb_next <= now)
		g->hb_next = now + HB_TICKS;
}

void guest_main(void)
{
	struct guest *g = &guest;
	uint64_t tsc_user = rdtsc(), ws_gpa, ws_bytes, capacity = 0;
	bool disk_present;

	/* Low memory (start info, command line, memmap) is reused from here on: copy it first. */
	boot_info_copy(&g->boot);
	crc32_init();
	platform_timer_start();
	if (!g->boot.valid)
		guest_panic("no valid PVH start info");
	cmdline_parse(g->boot.cmdline, &g->opt);
	if (g->boot.cmdline_truncated)
		console_printf("GUEST bad option (command line past %u bytes ignored)\n",
			       BOOT_CMDLINE_MAX - 1);
	smp_start_aps(&g->smp);
	guest_smp_report(&g->smp);
	guest_timer_wait_first();
	g->bootid = platform_boot_id(boot_tsc_entry, tsc_user ^ (rdtsc() << 32),
				     platform_pit_read());

	ws_gpa = ((uint64_t)(uintptr_t)guest_image_end + WORKLOAD_PAGE_BYTES - 1) &
		 ~(uint64_t)(WORKLOAD_PAGE_BYTES - 1);
	ws_bytes = g->opt.mb << 20;
	if (ws_bytes && !boot_ram_contains(&g->boot, ws_gpa, ws_bytes))
		guest_panic("mb=%lu does not fit in RAM after the image at 0x%lx", g->opt.mb, ws_gpa);

	console_printf("GUEST boot id=%016lx mem=%lu cpus=%u mb=%lu rate=%lu\n", g->bootid,
		       boot_ram_bytes(&g->boot) >> 20, 1 + g->smp.online, g->opt.mb, g->opt.rate);

	disk_present = vblk_probe(&capacity);
	if (disk_present)
		console_printf("DISK cap=%lu\n", capacity);
	disk_run(&g->opt, disk_present);
	g->nics = net_init(&g->opt);

	workload_init(&g->wl, g->bootid, ws_gpa, ws_bytes / WORKLOAD_PAGE_BYTES, g->opt.rate,
		      ticks_now());
	g->hb_counter = 0;
	g->hb_next = ticks_now();
	for (;;) {
		uint64_t now = ticks_now();

		if (now >= g->hb_next)
			guest_heartbeat(g, now);
		workload_run(&g->wl, now, HB_WRITE_BATCH);
		if (g->nics)
			net_poll();
		cpu_relax();
	}
}
