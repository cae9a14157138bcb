/* PVH entry, the short CPL-0 setup (page tables, GDT, TSS, IDT), interrupt entry points and AP start of the test guest. */
#include "abi.h"

/*
 * Every instruction in this file that runs at CPL 0 is emulated on a PVM host (~0.5 us
 * each), so it sticks to plain moves, shifts, compares and jumps, does no loops beyond
 * the page table and IDT fills, and leaves everything else to the C code at CPL 3.
 */

/* The PVH entry point, where loaders look for it (guest.ld keeps a zero word after it). */
	.section .note.Xen, "a", @note
	.balign 4
	.long 4                         /* namesz: "Xen\0" */
	.long 4                         /* descsz */
	.long 18                        /* XEN_ELFNOTE_PHYS32_ENTRY */
	.asciz "Xen"
	.long pvh_start32

/* Switches a CPU that has its page tables ready from 32-bit protected mode to long mode. */
.macro ENTER_LONG target
	mov $0x20, %eax                 /* CR4.PAE and nothing else */
	mov %eax, %cr4
	mov $boot_pml4, %eax
	mov %eax, %cr3
	mov $0xc0000080, %ecx           /* EFER.LME */
	rdmsr
	or $0x100, %eax
	wrmsr
	mov $0x80010011, %eax           /* PG, WP, ET, PE; also clears CD and NW left by INIT */
	mov %eax, %cr0
	ljmp $SEL_KCODE64, $\target
.endm

	.section .text.entry, "ax"
	.code32
	.globl pvh_start32
pvh_start32:
	/* PVH: 32-bit protected mode, paging off, EBX = hvm_start_info. */
	cli
	cld
	mov %ebx, %esi
	rdtsc
	mov %eax, boot_tsc_entry
	mov %edx, boot_tsc_entry + 4
	mov %esi, boot_start_info_gpa
	lgdt boot_gdt_ptr
	mov $SEL_KDATA, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	mov $(boot_kstacks + GUEST_KSTACK_BYTES), %esp

	/* The image's own 2 MiB pages are RAM whatever the memory map says. */
	xor %eax, %eax
	mov $(guest_image_end + 0x1fffff), %edi
	shr $21, %edi
	call map_range

	/* Then every type-1 memmap entry, rounded out to 2 MiB and clamped to the PDs we have. */
	cmpl $PVH_START_MAGIC, (%esi)
	jne map_mmio
	cmpl $1, 4(%esi)
	jb map_mmio
	cmpl $0, 44(%esi)               /* a memmap above 4 GiB is out of reach here */
	jne map_mmio
	mov 40(%esi), %ebx
	mov 48(%esi), %ecx
	cmp $128, %ecx
	jbe next_entry
	mov $128, %ecx
next_entry:
	test %ecx, %ecx
	jz map_mmio
	cmpl $1, 16(%ebx)
	jne skip_entry
	mov 4(%ebx), %edx
	cmp $(GUEST_PD_COUNT / 4), %edx /* high word: the entry starts past the last PD */
	jae skip_entry
	mov (%ebx), %eax
	shr $21, %eax
	shl $11, %edx
	or %edx, %eax                   /* eax = addr >> 21 */
	mov (%ebx), %edi
	mov 4(%ebx), %edx
	add 8(%ebx), %edi
	adc 12(%ebx), %edx
	jc clamp_end
	add $0x1fffff, %edi
	adc $0, %edx
	jc clamp_end
	cmp $(GUEST_PD_COUNT / 4), %edx
	jae clamp_end
	shr $21, %edi
	shl $11, %edx
	or %edx, %edi                   /* edi = (addr + size + 2 MiB - 1) >> 21 */
	jmp map_entry
clamp_end:
	mov $(GUEST_PD_COUNT * 512), %edi
map_entry:
	call map_range
skip_entry:
	add $24, %ebx
	dec %ecx
	jmp next_entry

map_mmio:
	/* IOAPIC and LAPIC: one uncached 2 MiB page each, overriding any RAM rounding. */
	movl $(GUEST_IOAPIC_GPA | PTE_MMIO_2M), boot_pds + (GUEST_IOAPIC_GPA >> 21) * 8
	movl $(GUEST_LAPIC_GPA | PTE_MMIO_2M), boot_pds + (GUEST_LAPIC_GPA >> 21) * 8
	ENTER_LONG bsp_long64

/* Maps 2 MiB pages [eax, edi) as user RAM; clobbers eax and edx. */
map_range:
	cmp %edi, %eax
	jae 1f
	mov %eax, %edx
	shl $21, %edx
	or $PTE_RAM_2M, %edx
	mov %edx, boot_pds(, %eax, 8)
	mov %eax, %edx
	shr $11, %edx
	mov %edx, boot_pds + 4(, %eax, 8)
	inc %eax
	jmp map_range
1:	ret

	.code64
bsp_long64:
	mov $SEL_KDATA, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	xor %eax, %eax
	mov %eax, %fs
	mov %eax, %gs
	mov $(boot_kstacks + GUEST_KSTACK_BYTES), %esp

	/* IDT: interrupt gates, DPL 0, vector v's entry point at isr_table + 16 v (below 4 GiB). */
	mov $isr_table, %eax
	mov $boot_idt, %edi
	mov $GUEST_IDT_VECTORS, %ecx
1:	mov %eax, %edx
	and $0xffff, %edx
	or $(SEL_KCODE64 << 16), %edx
	mov %edx, (%rdi)
	mov %eax, %edx
	and $0xffff0000, %edx
	or $0x8e00, %edx
	mov %edx, 4(%rdi)
	add $16, %eax
	add $16, %edi
	dec %ecx
	jnz 1b

	movb $0xff, boot_iobitmap + 8192 /* the bitmap's terminator; its zeros allow every port */
	xor %edi, %edi
	call cpu_load_tables

	/*
	 * The PICs are programmed here, with IF=0, because ICW1 unmasks every line while the
	 * vector base is still the firmware's, and CPL 3 cannot cli on PVM (see below).
	 * ICW1-4: edge, cascade, master at VEC_TIMER, slave at VEC_TIMER + 8 on IRQ2, 8086
	 * mode; then all masked until platform_timer_start() unmasks IRQ0.
	 */
	mov $0x11, %al
	out %al, $0x20
	out %al, $0xa0
	mov $VEC_TIMER, %al
	out %al, $0x21
	mov $(VEC_TIMER + 8), %al
	out %al, $0xa1
	mov $0x04, %al
	out %al, $0x21
	mov $0x02, %al
	out %al, $0xa1
	mov $0x01, %al
	out %al, $0x21
	out %al, $0xa1
	mov $0xff, %al
	out %al, $0x21
	out %al, $0xa1
	/* PIT channel 0: lobyte/hibyte, mode 2 (rate generator), PIT_DIVISOR for 100 Hz. */
	mov $0x34, %al
	out %al, $0x43
	mov $(PIT_DIVISOR & 0xff), %al
	out %al, $0x40
	mov $(PIT_DIVISOR >> 8), %al
	out %al, $0x40

	/*
	 * To CPL 3 with IOPL 3 and IF=1. PVM drops IOPL on the way (RFLAGS.IOPL reads 0 at
	 * CPL 3), so port I/O there goes through the TSS I/O bitmap, which allows every port.
	 */
	push $SEL_UDATA
	push $(boot_bsp_ustack + GUEST_BSP_USTACK_BYTES - 8)
	push $GUEST_USER_RFLAGS
	push $SEL_UCODE64
	push $guest_main
	iretq

/*
 * Loads TSS and IDT for the CPU whose index is in edi (kept): fills its TSS (RSP0 = top of
 * its kernel stack, I/O bitmap = the shared one), writes its GDT descriptor, ltr, lidt.
 */
cpu_load_tables:
	mov %edi, %eax
	shl $7, %eax                    /* GUEST_TSS_STRIDE */
	add $boot_tss, %eax             /* rax = this CPU's TSS */
	lea 1(%rdi), %edx
	shl $12, %edx                   /* GUEST_KSTACK_BYTES */
	add $boot_kstacks, %edx
	mov %rdx, 4(%rax)               /* RSP0 */
	mov $boot_iobitmap, %edx
	sub %eax, %edx                  /* the shared I/O bitmap's offset from this TSS, < 64 KiB */
	mov %dx, 102(%rax)
	add $8192, %edx                 /* limit: up to the bitmap's 0xff terminator byte */
	mov %eax, %ecx
	and $0xffffff, %ecx
	shl $16, %rcx
	or %rcx, %rdx                   /* limit[15:0], base[23:0] */
	mov $0x89, %ecx
	shl $40, %rcx
	or %rcx, %rdx                   /* present, available 64-bit TSS */
	mov %eax, %ecx
	shr $24, %ecx
	shl $56, %rcx
	or %rcx, %rdx                   /* base[31:24]; base[63:32] stays 0 */
	mov %edi, %ecx
	shl $4, %ecx
	mov %rdx, boot_gdt + SEL_TSS0(%rcx)
	movq $0, boot_gdt + SEL_TSS0 + 8(%rcx)
	add $SEL_TSS0, %ecx
	ltr %cx
	lidt boot_idt_ptr
	ret

/*
 * The AP trampoline, copied to GUEST_TRAMPOLINE_GPA and entered by a STARTUP IPI in real
 * mode with CS = GUEST_SIPI_VECTOR << 8; it loads the shared GDT and jumps to 32-bit code.
 */
	.code16
	.globl ap_trampoline_start, ap_trampoline_end
ap_trampoline_start:
	cli
	mov %cs, %ax
	mov %ax, %ds
	lgdtl ap_trampoline_gdtr - ap_trampoline_start
	mov $1, %eax
	mov %eax, %cr0
	ljmpl $SEL_KCODE32, $ap_start32
	.balign 8
ap_trampoline_gdtr:
	.word boot_gdt_end - boot_gdt - 1
	.long boot_gdt
ap_trampoline_end:

	.code32
ap_start32:
	mov $SEL_KDATA, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	ENTER_LONG ap_long64

	.code64
ap_long64:
	mov $SEL_KDATA, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	xor %eax, %eax
	mov %eax, %fs
	mov %eax, %gs
	mov $1, %edi
	lock xaddl %edi, ap_next_index(%rip)
	cmp $GUEST_MAX_CPUS, %edi
	jae ap_park
	lea 1(%rdi), %eax
	shl $12, %eax                   /* GUEST_KSTACK_BYTES */
	add $boot_kstacks, %eax
	mov %eax, %esp
	call cpu_load_tables
	lea 1(%rdi), %eax
	shl $12, %eax                   /* GUEST_USTACK_BYTES */
	add $(boot_ap_ustacks - 8), %eax
	push $SEL_UDATA
	push %rax
	push $GUEST_USER_RFLAGS
	push $SEL_UCODE64
	push $ap_main
	iretq                           /* edi = cpu index, ap_main's argument */
ap_park:
	cli
	hlt
	jmp ap_park

/*
 * Interrupt entry points, 16 bytes apart so the IDT fill can compute their addresses. Exceptions
 * push a zero error code where the CPU pushes none, then the vector, for isr_common.
 */
.macro ISR_EXC vec
	.org isr_table + \vec * 16
	.if (\vec == 8) || ((\vec >= 10) && (\vec <= 14)) || (\vec == 17) || (\vec == 21) || (\vec == 29) || (\vec == 30)
	.else
	pushq $0
	.endif
	pushq $\vec
	jmp isr_common
.endm

	.text
	.balign 16
isr_table:
	.irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	ISR_EXC \v
	.endr

	/* The timer: count, EOI the master PIC, return; six emulated instructions. */
	.org isr_table + VEC_TIMER * 16
	push %rax
	incq guest_ticks(%rip)
	mov $0x20, %al
	out %al, $0x20
	pop %rax
	iretq

	/* Masked PIC lines and the LAPIC spurious vector: nothing to acknowledge. */
	.irp v, 0x21,0x22,0x23,0x24,0x25,0x26,0x27,0x28,0x29,0x2a,0x2b,0x2c,0x2d,0x2e,0x2f
	.org isr_table + \v * 16
	iretq
	.endr
	.org isr_table + GUEST_IDT_VECTORS * 16

isr_common:
	/* Stack: vector, error code, rip, cs, rflags, rsp, ss. */
	mov 0(%rsp), %rdi
	mov 8(%rsp), %rsi
	mov 16(%rsp), %rdx
	mov 24(%rsp), %rcx
	and $-16, %rsp
	call trap_report
	jmp ap_park

	/* CPL 3 code cannot hlt; this ud2 asks the #UD handler to halt the CPU instead. */
	.globl guest_halt
guest_halt:
	ud2

	.data
	.balign 4096
	/* PML4 -> one PDPT -> GUEST_PD_COUNT PDs (in .bss, filled by pvh_start32). */
boot_pml4:
	.quad boot_pdpt + 7
	.fill 511, 8, 0
boot_pdpt:
	.set pd_index, 0
	.rept GUEST_PD_COUNT
	.quad boot_pds + pd_index * 4096 + 7
	.set pd_index, pd_index + 1
	.endr
	.fill 512 - GUEST_PD_COUNT, 8, 0

	.balign 16
boot_gdt:
	.quad 0
	.quad 0x00af9a000000ffff        /* 0x08 kernel code, 64-bit */
	.quad 0x00cf92000000ffff        /* 0x10 kernel data */
	.quad 0x00cf9a000000ffff        /* 0x18 kernel code, 32-bit (entry and AP start) */
	.quad 0x00cff2000000ffff        /* 0x20 user data */
	.quad 0x00affa000000ffff        /* 0x28 user code, 64-bit */
	.fill GUEST_MAX_CPUS * 2, 8, 0  /* 0x30: a 16-byte TSS descriptor per CPU */
boot_gdt_end:

	.balign 8
boot_gdt_ptr:
	.word boot_gdt_end - boot_gdt - 1
	.quad boot_gdt
	.balign 8
boot_idt_ptr:
	.word GUEST_IDT_VECTORS * 16 - 1
	.quad boot_idt

	.balign 4
	.globl ap_next_index
ap_next_index:
	.long 1

	.bss
	.balign 4096
	.globl boot_pds
boot_pds:
	.skip GUEST_PD_COUNT * 4096
boot_idt:
	.skip 4096
boot_tss:
	.skip GUEST_MAX_CPUS * GUEST_TSS_STRIDE
	/* One I/O permission bitmap for all TSSs: PVM ignores IOPL 3 at CPL 3 but honours this. */
boot_iobitmap:
	.skip 8192 + 1
	.balign 4096
boot_kstacks:
	.skip GUEST_MAX_CPUS * GUEST_KSTACK_BYTES
boot_ap_ustacks:
	.skip GUEST_MAX_CPUS * GUEST_USTACK_BYTES
boot_bsp_ustack:
	.skip GUEST_BSP_USTACK_BYTES
	.balign 8
	.globl boot_tsc_entry, boot_start_info_gpa, guest_ticks
guest_ticks:
	.skip 8
boot_tsc_entry:
	.skip 8
boot_start_info_gpa:
	.skip 8

	.section .note.GNU-stack, "", @progbits
