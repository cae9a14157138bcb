/* Constants and symbols shared by the test guest's assembly entry code and its C code. */
#ifndef GUEST_ABI_H
#define GUEST_ABI_H

/*
 * Physical layout (identity mapped, so virtual == physical):
 *
 *   0x0000_8000  AP real-mode trampoline, copied there at CPL 3 before the SIPIs
 *   0x0010_0000  this image: .text, .rodata, .data (GDT, PML4, PDPT), .bss (PDs,
 *                IDT, TSSs, stacks, driver buffers, all C state)
 *   _end         working set (page aligned), mb= MiB long
 *   0xfec0_0000  IOAPIC, 0xfee0_0000 LAPIC: one uncached 2 MiB page each
 */
#define GUEST_LOAD_GPA          0x100000
#define GUEST_TRAMPOLINE_GPA    0x8000
#define GUEST_SIPI_VECTOR       (GUEST_TRAMPOLINE_GPA >> 12)
#define GUEST_IOAPIC_GPA        0xfec00000
#define GUEST_LAPIC_GPA         0xfee00000

#define GUEST_MAX_CPUS          32
/* RAM is identity mapped with 2 MiB pages up to this many GiB of physical address. */
#define GUEST_PD_COUNT          64
#define GUEST_KSTACK_BYTES      4096
#define GUEST_USTACK_BYTES      4096
#define GUEST_BSP_USTACK_BYTES  65536
#define GUEST_TSS_STRIDE        128

/* GDT selectors; the TSS descriptors (16 bytes each) follow, one per CPU. */
#define SEL_KCODE64             0x08
#define SEL_KDATA               0x10
#define SEL_KCODE32             0x18
#define SEL_UDATA               0x23
#define SEL_UCODE64             0x2b
#define SEL_TSS0                0x30

/* Vectors: 0-31 exceptions, the PIC at 0x20-0x2f, LAPIC spurious on 0x2f too. */
#define VEC_TIMER               0x20
#define VEC_SPURIOUS            0x2f
#define GUEST_IDT_VECTORS       0x30

/* PIT input clock 1193182 Hz / 11932 = 100 Hz. */
#define PIT_DIVISOR             11932

/*
 * RFLAGS for CPL 3: IOPL 3 so port I/O needs no kernel, IF on, reserved bit 1. PVM hosts
 * clear IOPL for CPL 3, so every TSS also carries an all-zero (all-allowed) I/O bitmap.
 */
#define GUEST_USER_RFLAGS       0x3202

/* Page table entry bits for a 2 MiB page: present, writable, user, PS; MMIO adds PWT|PCD. */
#define PTE_RAM_2M              0x87
#define PTE_MMIO_2M             0x9f

#define PVH_START_MAGIC         0x336ec578

#ifndef __ASSEMBLER__
#include <stdint.h>

/* hvm_start_info as the PVH boot ABI defines it (version 1). */
struct pvh_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr;
	uint32_t memmap_entries;
	uint32_t reserved;
};

/* One entry of the PVH memory map; type 1 is RAM. */
struct pvh_memmap_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
	uint32_t reserved;
};

/* Set by entry.S at CPL 0 before the first C code runs. */
extern uint64_t boot_tsc_entry;
extern uint64_t boot_start_info_gpa;
/* The PD array that maps RAM: entry i maps the 2 MiB page at i << 21 when present. */
extern uint64_t boot_pds[GUEST_PD_COUNT * 512];
extern char ap_trampoline_start[];
extern char ap_trampoline_end[];
/* Next CPU index an AP takes; the BSP is 0. */
extern uint32_t ap_next_index;
/* First byte after the image, from the linker script. */
extern char guest_image_end[];

/* Counted by the timer handler at CPL 0, read everywhere else. */
extern volatile uint64_t guest_ticks;

/* A ud2 that the trap handler recognises as a request to halt this CPU for good. */
void guest_halt(void) __attribute__((noreturn));

/* C entry points that entry.S drops to at CPL 3. */
void guest_main(void) __attribute__((noreturn));
void ap_main(uint32_t cpu_index) __attribute__((noreturn));

/* Called by the exception entry points at CPL 0 (vec, err, rip, cs from the frame). */
void trap_report(uint64_t vec, uint64_t err, uint64_t rip, uint64_t cs) __attribute__((noreturn));
#endif

#endif
