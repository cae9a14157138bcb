/* Tests for the kernel loaders: synthetic bzImage and PVH ELF files checked against protocols. */
#include "vmm/x86/boot.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "vmm/guest_mem.h"
#include "vmm/x86/layout.h"
#include "util/byteorder.h"

#define MIB (1ULL << 20)
#define GIB (1ULL << 30)
#define RAM_BYTES (64 * MIB)

/* Values from Documentation/arch/x86/boot.rst and zero-page.rst, written out on purpose. */
#define BZ_SETUP_SECTS   4
#define BZ_PM_OFFSET     ((BZ_SETUP_SECTS + 1) * 512)
#define BZ_PM_BYTES      8192
#define BZ_LEN           (BZ_PM_OFFSET + BZ_PM_BYTES)
#define BZ_INIT_SIZE     (16 * MIB)
#define BZ_PREF_ADDRESS  (16 * MIB)

/* A PVH ELF: one PT_LOAD of 0x1000 file bytes and 0x3000 memory bytes at 2 MiB, one PT_NOTE. */
#define ELF_LOAD_GPA     0x200000ULL
#define ELF_LOAD_FILESZ  0x1000ULL
#define ELF_LOAD_MEMSZ   0x3000ULL
#define ELF_ENTRY        (ELF_LOAD_GPA + 0x40)
#define ELF_NOTE_OFF     0x100
#define ELF_DATA_OFF     0x200
#define ELF_LEN          (ELF_DATA_OFF + ELF_LOAD_FILESZ)

static struct {
	uint8_t *ram;
	uint64_t ram_bytes;
	bool mapped;
	struct guest_mem m;
	struct boot_entry entry;
	struct kvm_sregs sregs;
	char err[256];
	uint8_t *kernel;
	uint8_t *initrd;
} fx;

static void setup(void)
{
	memset(&fx, 0, sizeof(fx));
	fx.ram_bytes = RAM_BYTES;
	fx.ram = calloc(1, RAM_BYTES);
	cr_assert_not_null(fx.ram);
	guest_mem_layout(&fx.m, fx.ram, RAM_BYTES);
	/* A recognisable pre-entry state: fields the protocol does not define must survive. */
	fx.sregs.apic_base = 0xfee00900;
	fx.sregs.idt.limit = 0xffff;
}

static void teardown(void)
{
	if (fx.mapped)
		munmap(fx.ram, fx.ram_bytes);
	else
		free(fx.ram);
	free(fx.kernel);
	free(fx.initrd);
}

TestSuite(boot, .init = setup, .fini = teardown);

/* Swap the guest for a sparse mapping of bytes; only the pages the loader writes get touched. */
static void ram_use_sparse(uint64_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	cr_assert_neq(p, MAP_FAILED);
	free(fx.ram);
	fx.ram = p;
	fx.ram_bytes = bytes;
	fx.mapped = true;
	guest_mem_layout(&fx.m, fx.ram, bytes);
}

/* Guest memory at gpa, asserting the range is RAM. */
static uint8_t *gp(uint64_t gpa, uint64_t len)
{
	uint8_t *p = guest_mem_ptr(&fx.m, gpa, len);

	cr_assert_not_null(p, "gpa 0x%llx + 0x%llx is not RAM", (unsigned long long)gpa,
			   (unsigned long long)len);
	return p;
}

static uint64_t g16(uint64_t gpa)
{
	return le16_decode(gp(gpa, 2));
}

static uint64_t g32(uint64_t gpa)
{
	return le32_decode(gp(gpa, 4));
}

static uint64_t g64(uint64_t gpa)
{
	return le64_decode(gp(gpa, 8));
}

/* A bzImage as a 64-bit Linux 5.x would build it: protocol 2.15, relocatable, 64-bit entry. */
static uint8_t *bz_make(void)
{
	uint8_t *k = calloc(1, BZ_LEN);

	cr_assert_not_null(k);
	k[0x1f1] = BZ_SETUP_SECTS;
	le16_encode(k + 0x1fe, 0xaa55);
	k[0x200] = 0xeb;
	k[0x201] = 0x6a; /* header ends at 0x26c */
	memcpy(k + 0x202, "HdrS", 4);
	le16_encode(k + 0x206, 0x020f);
	k[0x211] = 0x01; /* LOADED_HIGH */
	le32_encode(k + 0x214, 0x100000);
	le32_encode(k + 0x22c, 0x7fffffff);
	le32_encode(k + 0x230, 0x200000);
	k[0x234] = 1;
	le16_encode(k + 0x236, 0x0003); /* XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G */
	le32_encode(k + 0x238, 2047);
	le64_encode(k + 0x258, BZ_PREF_ADDRESS);
	le32_encode(k + 0x260, BZ_INIT_SIZE);
	for (unsigned i = 0; i < BZ_PM_BYTES; i++)
		k[BZ_PM_OFFSET + i] = (uint8_t)(i * 7 + 1);
	fx.kernel = k;
	return k;
}

static uint8_t *initrd_make(size_t len)
{
	uint8_t *r = malloc(len);

	cr_assert_not_null(r);
	for (size_t i = 0; i < len; i++)
		r[i] = (uint8_t)(i * 13 + 5);
	fx.initrd = r;
	return r;
}

static struct boot_params_in in_make(size_t kernel_len, size_t initrd_len, const char *cmdline)
{
	return (struct boot_params_in){
		.kernel = fx.kernel,
		.kernel_len = kernel_len,
		.initrd = initrd_len ? fx.initrd : NULL,
		.initrd_len = initrd_len,
		.cmdline = cmdline,
		.ncpus = 2,
	};
}

static int bz_load(size_t kernel_len, size_t initrd_len, const char *cmdline)
{
	struct boot_params_in in = in_make(kernel_len, initrd_len, cmdline);

	return boot_bzimage_load(&fx.m, &in, &fx.entry, &fx.sregs, fx.err, sizeof(fx.err));
}

/* An ELF64 (or ELF32) executable for x86 with the PVH note; entry descriptor of desc_bytes. */
static uint8_t *elf_make(bool is64, unsigned desc_bytes)
{
	uint8_t *e = calloc(1, ELF_LEN);
	unsigned phoff = is64 ? 64 : 52, phsz = is64 ? 56 : 32;
	uint8_t *note = e + ELF_NOTE_OFF;
	unsigned note_bytes = 12 + 4 + desc_bytes;

	cr_assert_not_null(e);
	memcpy(e, "\177ELF", 4);
	e[4] = is64 ? 2 : 1;
	e[5] = 1;
	e[6] = 1;
	le16_encode(e + 16, 2);               /* ET_EXEC */
	le16_encode(e + 18, is64 ? 62 : 3);   /* EM_X86_64 / EM_386 */
	le32_encode(e + 20, 1);
	if (is64) {
		le64_encode(e + 24, 0xffffffff81000000ULL);
		le64_encode(e + 32, phoff);
		le16_encode(e + 52, 64);
		le16_encode(e + 54, phsz);
		le16_encode(e + 56, 2);
		le16_encode(e + 58, 64);
	} else {
		le32_encode(e + 24, 0xc1000000);
		le32_encode(e + 28, phoff);
		le16_encode(e + 40, 52);
		le16_encode(e + 42, phsz);
		le16_encode(e + 44, 2);
		le16_encode(e + 46, 40);
	}
	for (unsigned i = 0; i < 2; i++) {
		uint8_t *ph = e + phoff + i * phsz;
		uint32_t type = i == 0 ? 1 : 4;
		uint64_t off = i == 0 ? ELF_DATA_OFF : ELF_NOTE_OFF;
		uint64_t paddr = i == 0 ? ELF_LOAD_GPA : 0;
		uint64_t filesz = i == 0 ? ELF_LOAD_FILESZ : note_bytes;
		uint64_t memsz = i == 0 ? ELF_LOAD_MEMSZ : 0;
		uint64_t align = i == 0 ? 0x1000 : 4;

		le32_encode(ph, type);
		if (is64) {
			le64_encode(ph + 8, off);
			le64_encode(ph + 16, paddr + 0xffffffff80000000ULL);
			le64_encode(ph + 24, paddr);
			le64_encode(ph + 32, filesz);
			le64_encode(ph + 40, memsz);
			le64_encode(ph + 48, align);
		} else {
			le32_encode(ph + 4, (uint32_t)off);
			le32_encode(ph + 8, (uint32_t)paddr);
			le32_encode(ph + 12, (uint32_t)paddr);
			le32_encode(ph + 16, (uint32_t)filesz);
			le32_encode(ph + 20, (uint32_t)memsz);
			le32_encode(ph + 28, (uint32_t)align);
		}
	}
	le32_encode(note, 4);
	le32_encode(note + 4, desc_bytes);
	le32_encode(note + 8, 18); /* XEN_ELFNOTE_PHYS32_ENTRY */
	memcpy(note + 12, "Xen", 4);
	if (desc_bytes == 8)
		le64_encode(note + 16, ELF_ENTRY);
	else
		le32_encode(note + 16, (uint32_t)ELF_ENTRY);
	for (unsigned i = 0; i < ELF_LOAD_FILESZ; i++)
		e[ELF_DATA_OFF + i] = (uint8_t)(i * 3 + 11);
	fx.kernel = e;
	return e;
}

static uint8_t *elf64_phdr(unsigned i)
{
	return fx.kernel + 64 + i * 56;
}

static int pvh_load(size_t kernel_len, size_t initrd_len, const char *cmdline)
{
	struct boot_params_in in = in_make(kernel_len, initrd_len, cmdline);

	return boot_pvh_load(&fx.m, &in, &fx.entry, &fx.sregs, fx.err, sizeof(fx.err));
}

static int any_load(size_t kernel_len, size_t initrd_len, const char *cmdline)
{
	struct boot_params_in in = in_make(kernel_len, initrd_len, cmdline);

	return boot_load(&fx.m, &in, &fx.entry, &fx.sregs, fx.err, sizeof(fx.err));
}

#define assert_err_has(needle) \
	cr_assert_not_null(strstr(fx.err, (needle)), "error \"%s\" lacks \"%s\"", fx.err, (needle))

/* The memory map a 64 MiB guest must get, e820 and PVH memmap alike. */
struct map_entry {
	uint64_t gpa, bytes;
	uint32_t type;
};

static void map_expect(const struct map_entry *got, unsigned n, uint64_t ram_bytes)
{
	uint64_t low = ram_bytes < 3 * GIB ? ram_bytes : 3 * GIB;
	const struct map_entry want[] = {
		{ 0, 0x9fc00, 1 },
		{ 0x9fc00, 0x400, 2 },
		{ 0xe0000, 0x20000, 2 },
		{ 0x100000, low - 0x100000, 1 },
		{ 4 * GIB, ram_bytes - low, 1 },
	};
	unsigned nwant = ram_bytes > low ? 5 : 4;
	uint64_t ram = 0;

	cr_assert_eq(n, nwant, "%u map entries, want %u", n, nwant);
	for (unsigned i = 0; i < n; i++) {
		cr_assert_eq(got[i].gpa, want[i].gpa, "entry %u at 0x%llx", i,
			     (unsigned long long)got[i].gpa);
		cr_assert_eq(got[i].bytes, want[i].bytes, "entry %u of 0x%llx bytes", i,
			     (unsigned long long)got[i].bytes);
		cr_assert_eq(got[i].type, want[i].type, "entry %u type %u", i, got[i].type);
		if (got[i].type == 1)
			ram += got[i].bytes;
	}
	/* All guest RAM is usable except the legacy hole from the EBDA to 1 MiB. */
	cr_assert_eq(ram, ram_bytes - (0x100000 - 0x9fc00));
}

static unsigned e820_read(struct map_entry *out, unsigned max)
{
	unsigned n = (unsigned)g16(0x7000 + 0x1e8) & 0xff;

	cr_assert_leq(n, max);
	for (unsigned i = 0; i < n; i++) {
		uint64_t e = 0x7000 + 0x2d0 + i * 20;

		out[i] = (struct map_entry){ g64(e), g64(e + 8), (uint32_t)g32(e + 16) };
	}
	return n;
}

static unsigned memmap_read(struct map_entry *out, unsigned max)
{
	uint64_t si = fx.entry.regs.rbx;
	uint64_t table = g64(si + 0x28);
	unsigned n = (unsigned)g32(si + 0x30);

	cr_assert_leq(n, max);
	for (unsigned i = 0; i < n; i++) {
		uint64_t e = table + i * 0x18;

		out[i] = (struct map_entry){ g64(e), g64(e + 8), (uint32_t)g32(e + 0x10) };
		cr_assert_eq(g32(e + 0x14), 0, "memmap entry %u reserved field", i);
	}
	return n;
}

/* ---- probe and dispatch ---- */

Test(boot, probe_classifies_bzimage_pvh_and_other)
{
	static const uint8_t junk[4096] = { 1, 2, 3 };

	bz_make();
	cr_assert_eq(boot_probe(fx.kernel, BZ_LEN), BOOT_KIND_BZIMAGE);
	free(fx.kernel);
	elf_make(true, 8);
	cr_assert_eq(boot_probe(fx.kernel, ELF_LEN), BOOT_KIND_PVH);
	cr_assert_eq(boot_probe(junk, sizeof(junk)), BOOT_KIND_INVALID);
	cr_assert_eq(boot_probe(junk, 0), BOOT_KIND_INVALID);
	cr_assert_eq(boot_probe(NULL, 0), BOOT_KIND_INVALID);
}

Test(boot, probe_rejects_elf_without_pvh_note)
{
	elf_make(true, 8);
	le32_encode(fx.kernel + ELF_NOTE_OFF + 8, 17);
	cr_assert_eq(boot_probe(fx.kernel, ELF_LEN), BOOT_KIND_INVALID);
}

Test(boot, load_rejects_unknown_format_with_one_line_reason)
{
	fx.kernel = calloc(1, 8192);
	cr_assert_eq(any_load(8192, 0, ""), -ENOEXEC);
	assert_err_has("not a Linux bzImage or an ELF with a PVH entry note");
	cr_assert_null(strchr(fx.err, '\n'));
}

Test(boot, load_explains_elf_without_pvh_note)
{
	elf_make(true, 8);
	le32_encode(fx.kernel + ELF_NOTE_OFF + 8, 17);
	cr_assert_eq(any_load(ELF_LEN, 0, ""), -ENOEXEC);
	assert_err_has("ELF kernel has no PVH entry note: build it with CONFIG_PVH=y");
}

Test(boot, load_dispatches_bzimage_and_writes_mptable)
{
	bz_make();
	cr_assert_eq(any_load(BZ_LEN, 0, "console=ttyS0"), 0, "%s", fx.err);
	cr_assert_eq(fx.entry.kind, BOOT_KIND_BZIMAGE);
	cr_assert_eq(memcmp(gp(LAYOUT_MPTABLE_GPA, 4), "_MP_", 4), 0);
}

Test(boot, load_dispatches_pvh)
{
	elf_make(true, 8);
	cr_assert_eq(any_load(ELF_LEN, 0, ""), 0, "%s", fx.err);
	cr_assert_eq(fx.entry.kind, BOOT_KIND_PVH);
	cr_assert_eq(fx.entry.regs.rip, ELF_ENTRY);
}

Test(boot, load_leaves_err_untouched_on_success)
{
	bz_make();
	strcpy(fx.err, "untouched");
	cr_assert_eq(any_load(BZ_LEN, 0, ""), 0);
	cr_assert_str_eq(fx.err, "untouched");
}

Test(boot, load_rejects_zero_and_too_many_vcpus)
{
	struct boot_params_in in;

	bz_make();
	in = in_make(BZ_LEN, 0, "");
	in.ncpus = 0;
	cr_assert_eq(boot_load(&fx.m, &in, &fx.entry, &fx.sregs, fx.err, sizeof(fx.err)), -EINVAL);
	in.ncpus = LAYOUT_MAX_VCPUS + 1;
	cr_assert_eq(boot_load(&fx.m, &in, &fx.entry, &fx.sregs, fx.err, sizeof(fx.err)), -E2BIG);
}

/* ---- bzImage: zero page ---- */

Test(boot, bzimage_copies_setup_header_into_zero_page)
{
	const uint64_t zp = LAYOUT_ZERO_PAGE_GPA;

	bz_make();
	cr_assert_eq(bz_load(BZ_LEN, 0, ""), 0, "%s", fx.err);
	cr_assert_eq(*gp(zp + 0x1f1, 1), BZ_SETUP_SECTS);
	cr_assert_eq(g16(zp + 0x1fe), 0xaa55);
	cr_assert_eq(memcmp(gp(zp + 0x202, 4), "HdrS", 4), 0);
	cr_assert_eq(g16(zp + 0x206), 0x020f);
	cr_assert_eq(g32(zp + 0x214), 0x100000);
	cr_assert_eq(g32(zp + 0x22c), 0x7fffffff);
	cr_assert_eq(g32(zp + 0x230), 0x200000);
	cr_assert_eq(*gp(zp + 0x234, 1), 1);
	cr_assert_eq(g16(zp + 0x236), 0x0003);
	cr_assert_eq(g32(zp + 0x238), 2047);
	cr_assert_eq(g64(zp + 0x258), BZ_PREF_ADDRESS);
	cr_assert_eq(g32(zp + 0x260), BZ_INIT_SIZE);
	/* Nothing outside the header and the loader's fields: the sentinel stays 0. */
	cr_assert_eq(*gp(zp + 0x1ef, 1), 0);
	cr_assert_eq(*gp(zp + 0x26c, 1), 0);
}

Test(boot, bzimage_fills_loader_fields_and_command_line)
{
	const uint64_t zp = LAYOUT_ZERO_PAGE_GPA;
	const char *cmdline = "console=ttyS0 root=/dev/vda rw";

	bz_make();
	cr_assert_eq(bz_load(BZ_LEN, 0, cmdline), 0, "%s", fx.err);
	cr_assert_eq(*gp(zp + 0x210, 1), 0xff, "type_of_loader");
	cr_assert_eq(*gp(zp + 0x211, 1), 0x81, "loadflags: LOADED_HIGH kept, CAN_USE_HEAP set");
	cr_assert_eq(g16(zp + 0x224), 0xfe00, "heap_end_ptr");
	cr_assert_eq(g32(zp + 0x228), LAYOUT_CMDLINE_GPA, "cmd_line_ptr");
	cr_assert_eq(g32(zp + 0x0c8), 0, "ext_cmd_line_ptr");
	cr_assert_str_eq((const char *)gp(LAYOUT_CMDLINE_GPA, strlen(cmdline) + 1), cmdline);
	cr_assert_eq(g32(zp + 0x218), 0, "no initrd: ramdisk_image");
	cr_assert_eq(g32(zp + 0x21c), 0, "no initrd: ramdisk_size");
}

Test(boot, bzimage_places_initrd_page_aligned_at_top_of_low_ram)
{
	const uint64_t zp = LAYOUT_ZERO_PAGE_GPA;
	const size_t len = MIB + 123;
	uint64_t image;

	bz_make();
	initrd_make(len);
	cr_assert_eq(bz_load(BZ_LEN, len, ""), 0, "%s", fx.err);
	image = g32(zp + 0x218);
	cr_assert_eq(image, (RAM_BYTES - len) & ~0xfffULL);
	cr_assert_eq(g32(zp + 0x21c), len);
	cr_assert_eq(g32(zp + 0x0c0), 0, "ext_ramdisk_image");
	cr_assert_eq(g32(zp + 0x0c4), 0, "ext_ramdisk_size");
	cr_assert_geq(image, BZ_PREF_ADDRESS + BZ_INIT_SIZE, "initrd overlaps the kernel's init_size");
	cr_assert_eq(memcmp(gp(image, len), fx.initrd, len), 0);
}

Test(boot, bzimage_keeps_initrd_below_initrd_addr_max)
{
	const size_t len = 2 * MIB;
	uint64_t image;

	bz_make();
	le32_encode(fx.kernel + 0x22c, 48 * MIB - 1);
	initrd_make(len);
	cr_assert_eq(bz_load(BZ_LEN, len, ""), 0, "%s", fx.err);
	image = g32(LAYOUT_ZERO_PAGE_GPA + 0x218);
	cr_assert_eq(image, 48 * MIB - len);
	cr_assert_leq(image + len - 1, 48 * MIB - 1);
}

Test(boot, bzimage_e820_covers_guest_ram)
{
	struct map_entry map[128];

	bz_make();
	cr_assert_eq(bz_load(BZ_LEN, 0, ""), 0, "%s", fx.err);
	map_expect(map, e820_read(map, 128), RAM_BYTES);
}

Test(boot, bzimage_e820_maps_ram_above_4g_for_large_guests)
{
	struct map_entry map[128];
	const size_t len = 3 * MIB;

	ram_use_sparse(5 * GIB);
	bz_make();
	initrd_make(len);
	cr_assert_eq(bz_load(BZ_LEN, len, ""), 0, "%s", fx.err);
	map_expect(map, e820_read(map, 128), 5 * GIB);
	/* Low RAM ends at 3 GiB, but initrd_addr_max (0x7fffffff) caps the initrd first. */
	cr_assert_eq(g32(LAYOUT_ZERO_PAGE_GPA + 0x218), 2 * GIB - len);
}

/* ---- bzImage: kernel image, tables and entry state ---- */

Test(boot, bzimage_loads_protected_mode_kernel_at_1mib)
{
	bz_make();
	cr_assert_eq(bz_load(BZ_LEN, 0, ""), 0, "%s", fx.err);
	cr_assert_eq(memcmp(gp(0x100000, BZ_PM_BYTES), fx.kernel + BZ_PM_OFFSET, BZ_PM_BYTES), 0);
}

Test(boot, bzimage_setup_sects_zero_means_four)
{
	bz_make();
	fx.kernel[0x1f1] = 0;
	cr_assert_eq(bz_load(BZ_LEN, 0, ""), 0, "%s", fx.err);
	cr_assert_eq(memcmp(gp(0x100000, BZ_PM_BYTES), fx.kernel + BZ_PM_OFFSET, BZ_PM_BYTES), 0);
}

Test(boot, bzimage_enters_long_mode_at_64bit_entry)
{
	const struct kvm_sregs *s = &fx.sregs;
	const struct kvm_segment *data[] = { &s->ds, &s->es, &s->ss };

	bz_make();
	cr_assert_eq(bz_load(BZ_LEN, 0, ""), 0, "%s", fx.err);
	cr_assert_eq(fx.entry.kind, BOOT_KIND_BZIMAGE);
	cr_assert_eq(fx.entry.regs.rip, 0x100000 + 0x200, "64-bit entry is load address + 0x200");
	cr_assert_eq(fx.entry.regs.rsi, LAYOUT_ZERO_PAGE_GPA, "RSI holds boot_params");
	cr_assert_eq(fx.entry.regs.rflags & (1 << 9), 0, "interrupts disabled");
	cr_assert_eq(fx.entry.regs.rflags & 2, 2, "RFLAGS bit 1 is fixed to 1");

	cr_assert_eq(s->cr0 & 0x80000011, 0x80000011, "CR0 PG, ET, PE");
	cr_assert_eq(s->cr0 & 0x60000000, 0, "caches on: CD and NW clear");
	cr_assert_eq(s->cr4 & 0x20, 0x20, "CR4 PAE");
	cr_assert_eq(s->cr3, LAYOUT_PML4_GPA);
	cr_assert_eq(s->efer & 0x500, 0x500, "EFER LME and LMA");
	cr_assert_eq(s->cs.selector, 0x10, "__BOOT_CS");
	cr_assert_eq(s->cs.l, 1);
	cr_assert_eq(s->cs.db, 0, "a 64-bit code segment has D clear");
	cr_assert_eq(s->cs.present, 1);
	cr_assert_eq(s->cs.s, 1);
	cr_assert_eq(s->cs.type & 0xa, 0xa, "execute/read code");
	cr_assert_eq(s->cs.dpl, 0);
	for (unsigned i = 0; i < 3; i++) {
		cr_assert_eq(data[i]->selector, 0x18, "__BOOT_DS");
		cr_assert_eq(data[i]->base, 0);
		cr_assert_eq(data[i]->limit, 0xffffffff, "4 GiB flat");
		cr_assert_eq(data[i]->type & 0xa, 0x2, "read/write data");
		cr_assert_eq(data[i]->present, 1);
	}
	cr_assert_eq(s->gdt.base, LAYOUT_GDT_GPA);
	cr_assert_geq(s->gdt.limit, 0x1f, "the GDT reaches selector 0x18");
	cr_assert_eq(s->apic_base, 0xfee00900, "fields outside the protocol are kept");
	cr_assert_eq(s->idt.limit, 0xffff);
}

Test(boot, bzimage_page_tables_identity_map_4g)
{
	static const uint64_t probes[] = { 0, 0x100200, 0x7000, 0x3fffffff, 0x40000000,
					   0xbfffffff, 0xfec00000, 0xfee00000, 0xffffffff };

	bz_make();
	cr_assert_eq(bz_load(BZ_LEN, 0, ""), 0, "%s", fx.err);
	for (unsigned i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
		uint64_t va = probes[i];
		uint64_t pml4e = g64(LAYOUT_PML4_GPA + ((va >> 39) & 511) * 8);
		uint64_t pdpte, pde;

		cr_assert_eq(pml4e & 3, 3, "PML4E present and writable");
		pdpte = g64((pml4e & ~0xfffULL) + ((va >> 30) & 511) * 8);
		cr_assert_eq(pdpte & 0x83, 3, "PDPTE present, writable, not a 1 GiB page");
		pde = g64((pdpte & ~0xfffULL) + ((va >> 21) & 511) * 8);
		cr_assert_eq(pde & 0x83, 0x83, "PDE present, writable, 2 MiB page");
		cr_assert_eq((pde & ~0x1fffffULL & 0xfffffffffULL) | (va & 0x1fffff), va,
			     "0x%llx maps to itself", (unsigned long long)va);
	}
	cr_assert_eq(g64(LAYOUT_PML4_GPA + 8), 0, "nothing mapped above 512 GiB");
	cr_assert_eq(g64(LAYOUT_PDPT_GPA + 4 * 8), 0, "nothing mapped above 4 GiB");
}

Test(boot, bzimage_gdt_holds_flat_boot_cs_and_ds)
{
	uint64_t cs, ds;

	bz_make();
	cr_assert_eq(bz_load(BZ_LEN, 0, ""), 0, "%s", fx.err);
	cs = g64(LAYOUT_GDT_GPA + 0x10);
	ds = g64(LAYOUT_GDT_GPA + 0x18);
	cr_assert_eq(g64(LAYOUT_GDT_GPA), 0, "null descriptor");
	/* Base 0, limit 0xfffff with G: flat 4 GiB; access byte P, S, type; flags G/L or G/B. */
	cr_assert_eq(cs, 0x00af9b000000ffffULL, "64-bit code: 0x%llx", (unsigned long long)cs);
	cr_assert_eq(ds, 0x00cf93000000ffffULL, "data: 0x%llx", (unsigned long long)ds);
}

/* ---- bzImage: rejections ---- */

Test(boot, bzimage_rejects_truncated_header)
{
	bz_make();
	cr_assert_eq(bz_load(0x100, 0, ""), -ENOEXEC);
	assert_err_has("too short");
	/* Magics present, but the header the jump announces runs past the end of the file. */
	cr_assert_eq(bz_load(0x240, 0, ""), -ENOEXEC);
	assert_err_has("past the");
}

Test(boot, bzimage_rejects_setup_sectors_past_end_of_file)
{
	bz_make();
	fx.kernel[0x1f1] = 200;
	cr_assert_eq(bz_load(BZ_LEN, 0, ""), -ENOEXEC);
	assert_err_has("setup code of 200 sectors");
}

Test(boot, bzimage_rejects_bad_boot_flag)
{
	bz_make();
	le16_encode(fx.kernel + 0x1fe, 0x55aa);
	cr_assert_eq(bz_load(BZ_LEN, 0, ""), -ENOEXEC);
	assert_err_has("0xaa55");
}

Test(boot, bzimage_rejects_missing_hdrs_magic)
{
	bz_make();
	memcpy(fx.kernel + 0x202, "HdrZ", 4);
	cr_assert_eq(bz_load(BZ_LEN, 0, ""), -ENOEXEC);
	assert_err_has("HdrS");
	/* Through boot_load too: a boot sector without HdrS gets the bzImage reason. */
	cr_assert_eq(any_load(BZ_LEN, 0, ""), -ENOEXEC);
	assert_err_has("HdrS");
}

Test(boot, bzimage_rejects_protocol_older_than_2_06)
{
	bz_make();
	le16_encode(fx.kernel + 0x206, 0x0205);
	cr_assert_eq(bz_load(BZ_LEN, 0, ""), -ENOEXEC);
	assert_err_has("2.05 is too old");
}

Test(boot, bzimage_rejects_32bit_only_kernel)
{
	bz_make();
	le16_encode(fx.kernel + 0x236, 0x0000);
	cr_assert_eq(bz_load(BZ_LEN, 0, ""), -ENOEXEC);
	assert_err_has("32-bit-only");
	/* Protocol 2.11 predates xloadflags: no way to tell, so also refused. */
	le16_encode(fx.kernel + 0x236, 0x0003);
	le16_encode(fx.kernel + 0x206, 0x020b);
	cr_assert_eq(bz_load(BZ_LEN, 0, ""), -ENOEXEC);
	assert_err_has("32-bit-only");
}

Test(boot, bzimage_rejects_initrd_too_big_for_ram)
{
	const size_t len = 40 * MIB;

	bz_make();
	initrd_make(len);
	cr_assert_eq(bz_load(BZ_LEN, len, ""), -ENOMEM);
	assert_err_has("initrd of 40 MiB does not fit below 64 MiB of guest RAM: "
		       "give --mem more or a smaller initrd");
	cr_assert_eq(*gp(0x100000, 1), 0, "nothing is written when the plan fails");
}

Test(boot, bzimage_rejects_command_line_longer_than_cmdline_size)
{
	char cmdline[18];

	bz_make();
	le32_encode(fx.kernel + 0x238, 16);
	memset(cmdline, 'a', 16);
	cmdline[16] = '\0';
	cr_assert_eq(bz_load(BZ_LEN, 0, cmdline), 0, "exactly cmdline_size is fine: %s", fx.err);
	cmdline[16] = 'a';
	cmdline[17] = '\0';
	cr_assert_eq(bz_load(BZ_LEN, 0, cmdline), -E2BIG);
	assert_err_has("command line of 17 bytes is too long");
}

Test(boot, bzimage_rejects_kernel_larger_than_ram)
{
	bz_make();
	le32_encode(fx.kernel + 0x260, 128 * MIB);
	cr_assert_eq(bz_load(BZ_LEN, 0, ""), -ENOMEM);
	assert_err_has("give --mem more");
}

/* ---- PVH ---- */

Test(boot, pvh_start_info_fields_sit_at_start_info_h_offsets)
{
	const uint64_t si = LAYOUT_PVH_INFO_GPA;
	const size_t len = 8192;

	elf_make(true, 8);
	initrd_make(len);
	cr_assert_eq(pvh_load(ELF_LEN, len, "console=hvc0"), 0, "%s", fx.err);
	cr_assert_eq(fx.entry.regs.rbx, si);
	cr_assert_eq(g32(si + 0x00), 0x336ec578, "magic");
	cr_assert_eq(g32(si + 0x04), 1, "version");
	cr_assert_eq(g32(si + 0x08), 0, "flags");
	cr_assert_eq(g32(si + 0x0c), 1, "nr_modules");
	cr_assert_neq(g64(si + 0x10), 0, "modlist_paddr");
	cr_assert_eq(g64(si + 0x18), LAYOUT_CMDLINE_GPA, "cmdline_paddr");
	cr_assert_eq(g64(si + 0x20), 0, "rsdp_paddr: the guest scans for it");
	cr_assert_neq(g64(si + 0x28), 0, "memmap_paddr");
	cr_assert_eq(g32(si + 0x30), 4, "memmap_entries");
	cr_assert_eq(g32(si + 0x34), 0, "reserved");
	cr_assert_str_eq((const char *)gp(LAYOUT_CMDLINE_GPA, 13), "console=hvc0");
}

Test(boot, pvh_loads_segments_and_zero_fills_past_filesz)
{
	uint8_t *seg;

	elf_make(true, 8);
	memset(gp(ELF_LOAD_GPA, ELF_LOAD_MEMSZ + 0x1000), 0xcc, ELF_LOAD_MEMSZ + 0x1000);
	cr_assert_eq(pvh_load(ELF_LEN, 0, ""), 0, "%s", fx.err);
	seg = gp(ELF_LOAD_GPA, ELF_LOAD_MEMSZ + 0x1000);
	cr_assert_eq(memcmp(seg, fx.kernel + ELF_DATA_OFF, ELF_LOAD_FILESZ), 0);
	for (uint64_t i = ELF_LOAD_FILESZ; i < ELF_LOAD_MEMSZ; i++)
		cr_assert_eq(seg[i], 0, "bss byte 0x%llx", (unsigned long long)i);
	cr_assert_eq(seg[ELF_LOAD_MEMSZ], 0xcc, "nothing written past p_memsz");
}

Test(boot, pvh_memmap_matches_e820_layout)
{
	struct map_entry map[16];

	elf_make(true, 8);
	cr_assert_eq(pvh_load(ELF_LEN, 0, ""), 0, "%s", fx.err);
	map_expect(map, memmap_read(map, 16), RAM_BYTES);
}

Test(boot, pvh_memmap_maps_ram_above_4g_for_large_guests)
{
	struct map_entry map[16];

	ram_use_sparse(5 * GIB);
	elf_make(true, 8);
	cr_assert_eq(pvh_load(ELF_LEN, 0, ""), 0, "%s", fx.err);
	map_expect(map, memmap_read(map, 16), 5 * GIB);
}

Test(boot, pvh_modlist_describes_initrd_at_top_of_low_ram)
{
	const size_t len = 3 * MIB + 5;
	uint64_t mod, paddr;

	elf_make(true, 8);
	initrd_make(len);
	cr_assert_eq(pvh_load(ELF_LEN, len, ""), 0, "%s", fx.err);
	mod = g64(LAYOUT_PVH_INFO_GPA + 0x10);
	paddr = g64(mod + 0x00);
	cr_assert_eq(paddr, (RAM_BYTES - len) & ~0xfffULL);
	cr_assert_eq(g64(mod + 0x08), len, "size");
	cr_assert_eq(g64(mod + 0x10), 0, "cmdline_paddr");
	cr_assert_eq(g64(mod + 0x18), 0, "reserved");
	cr_assert_eq(memcmp(gp(paddr, len), fx.initrd, len), 0);
}

Test(boot, pvh_without_initrd_has_no_modules)
{
	elf_make(true, 8);
	cr_assert_eq(pvh_load(ELF_LEN, 0, ""), 0, "%s", fx.err);
	cr_assert_eq(g32(LAYOUT_PVH_INFO_GPA + 0x0c), 0);
	cr_assert_eq(g64(LAYOUT_PVH_INFO_GPA + 0x10), 0);
}

Test(boot, pvh_enters_32bit_protected_mode_with_ebx_at_start_info)
{
	const struct kvm_sregs *s = &fx.sregs;
	const struct kvm_segment *data[] = { &s->ds, &s->es, &s->ss };

	elf_make(true, 8);
	fx.sregs.efer = 0x500; /* left over from a previous boot: must be cleared */
	fx.sregs.cr4 = 0x20;
	cr_assert_eq(pvh_load(ELF_LEN, 0, ""), 0, "%s", fx.err);
	cr_assert_eq(fx.entry.kind, BOOT_KIND_PVH);
	cr_assert_eq(fx.entry.regs.rip, ELF_ENTRY);
	cr_assert_eq(fx.entry.regs.rbx, LAYOUT_PVH_INFO_GPA);
	cr_assert_eq(fx.entry.regs.rflags, 2, "bit 1 set; IF, TF, VM clear");

	cr_assert_eq(s->cr0, 0x11, "CR0 PE and ET only: paging off");
	cr_assert_eq(s->cr4, 0, "CR4 clear");
	cr_assert_eq(s->efer & 0x500, 0, "not in long mode");
	cr_assert_eq(s->cs.selector, 0x10);
	cr_assert_eq(s->cs.base, 0);
	cr_assert_eq(s->cs.limit, 0xffffffff);
	cr_assert_eq(s->cs.type, 0xb, "execute/read, accessed");
	cr_assert_eq(s->cs.db, 1, "32-bit code");
	cr_assert_eq(s->cs.l, 0);
	cr_assert_eq(s->cs.g, 1);
	cr_assert_eq(s->cs.present, 1);
	cr_assert_eq(s->cs.s, 1);
	for (unsigned i = 0; i < 3; i++) {
		cr_assert_eq(data[i]->selector, 0x18);
		cr_assert_eq(data[i]->base, 0);
		cr_assert_eq(data[i]->limit, 0xffffffff);
		cr_assert_eq(data[i]->type, 0x3, "read/write, accessed");
		cr_assert_eq(data[i]->db, 1);
		cr_assert_eq(data[i]->present, 1);
	}
	cr_assert_eq(s->tr.base, 0, "TR: 32-bit TSS at 0");
	cr_assert_eq(s->tr.limit, 0x67);
	cr_assert_eq(s->tr.type, 0xb, "busy 32-bit TSS");
	cr_assert_eq(s->tr.present, 1);
	cr_assert_eq(s->gdt.base, LAYOUT_GDT_GPA);
	cr_assert_eq(g64(LAYOUT_GDT_GPA + 0x10), 0x00cf9b000000ffffULL, "flat 32-bit code");
	cr_assert_eq(s->apic_base, 0xfee00900);
}

Test(boot, pvh_accepts_elf32_with_32bit_note)
{
	elf_make(false, 4);
	cr_assert_eq(boot_probe(fx.kernel, ELF_LEN), BOOT_KIND_PVH);
	cr_assert_eq(pvh_load(ELF_LEN, 0, ""), 0, "%s", fx.err);
	cr_assert_eq(fx.entry.regs.rip, ELF_ENTRY);
	cr_assert_eq(memcmp(gp(ELF_LOAD_GPA, ELF_LOAD_FILESZ), fx.kernel + ELF_DATA_OFF,
			    ELF_LOAD_FILESZ), 0);
}

Test(boot, pvh_finds_note_in_section_headers)
{
	uint8_t *k;
	size_t len = ELF_LEN + 2 * 64;
	uint8_t *sh;

	elf_make(true, 8);
	k = realloc(fx.kernel, len);
	cr_assert_not_null(k);
	fx.kernel = k;
	memset(k + ELF_LEN, 0, 2 * 64);
	le32_encode(elf64_phdr(1), 0); /* PT_NULL: the note is only reachable as a section */
	le64_encode(k + 40, ELF_LEN);
	le16_encode(k + 58, 64);
	le16_encode(k + 60, 2);
	sh = k + ELF_LEN + 64;
	le32_encode(sh + 4, 7); /* SHT_NOTE */
	le64_encode(sh + 24, ELF_NOTE_OFF);
	le64_encode(sh + 32, 12 + 4 + 8);
	le64_encode(sh + 48, 4);
	cr_assert_eq(pvh_load(len, 0, ""), 0, "%s", fx.err);
	cr_assert_eq(fx.entry.regs.rip, ELF_ENTRY);
}

Test(boot, pvh_rejects_elf_without_pvh_note)
{
	elf_make(true, 8);
	memcpy(fx.kernel + ELF_NOTE_OFF + 12, "Xem", 4);
	cr_assert_eq(pvh_load(ELF_LEN, 0, ""), -ENOEXEC);
	assert_err_has("no PVH entry note: build it with CONFIG_PVH=y");
}

Test(boot, pvh_rejects_note_whose_name_runs_past_its_segment)
{
	elf_make(true, 8);
	le32_encode(fx.kernel + ELF_NOTE_OFF, 0xfffffff0);
	cr_assert_eq(pvh_load(ELF_LEN, 0, ""), -ENOEXEC);
	assert_err_has("no PVH entry note");
}

Test(boot, pvh_rejects_segment_outside_ram)
{
	elf_make(true, 8);
	le64_encode(elf64_phdr(0) + 24, 256 * MIB);
	le64_encode(fx.kernel + ELF_NOTE_OFF + 16, 256 * MIB + 0x40);
	cr_assert_eq(pvh_load(ELF_LEN, 0, ""), -ENOMEM);
	assert_err_has("does not fit in guest RAM below 64 MiB");
}

Test(boot, pvh_rejects_segment_straddling_end_of_ram)
{
	elf_make(true, 8);
	le64_encode(elf64_phdr(0) + 24, RAM_BYTES - 0x1000);
	le64_encode(fx.kernel + ELF_NOTE_OFF + 16, RAM_BYTES - 0x1000);
	cr_assert_eq(pvh_load(ELF_LEN, 0, ""), -ENOMEM);
}

Test(boot, pvh_rejects_segment_below_1mib)
{
	elf_make(true, 8);
	le64_encode(elf64_phdr(0) + 24, 0x8000);
	le64_encode(fx.kernel + ELF_NOTE_OFF + 16, 0x8040);
	cr_assert_eq(pvh_load(ELF_LEN, 0, ""), -ENOEXEC);
	assert_err_has("below 1 MiB");
	cr_assert_eq(*gp(0x8000, 1), 0, "nothing loaded over the boot tables");
}

Test(boot, pvh_rejects_truncated_program_headers)
{
	elf_make(true, 8);
	cr_assert_eq(pvh_load(64 + 56 + 10, 0, ""), -ENOEXEC);
	assert_err_has("program headers");
	cr_assert_eq(pvh_load(40, 0, ""), -ENOEXEC);
	assert_err_has("ELF header is truncated");
}

Test(boot, pvh_rejects_program_header_offset_that_wraps)
{
	elf_make(true, 8);
	le64_encode(fx.kernel + 32, UINT64_MAX - 16);
	cr_assert_eq(pvh_load(ELF_LEN, 0, ""), -ENOEXEC);
	assert_err_has("program headers");
}

Test(boot, pvh_rejects_huge_filesz_that_would_overflow)
{
	elf_make(true, 8);
	le64_encode(elf64_phdr(0) + 32, UINT64_MAX - 0x100);
	le64_encode(elf64_phdr(0) + 40, UINT64_MAX - 0x100);
	cr_assert_eq(pvh_load(ELF_LEN, 0, ""), -ENOEXEC);
	assert_err_has("runs past the");
}

Test(boot, pvh_rejects_filesz_larger_than_memsz)
{
	elf_make(true, 8);
	le64_encode(elf64_phdr(0) + 40, ELF_LOAD_FILESZ - 1);
	cr_assert_eq(pvh_load(ELF_LEN, 0, ""), -ENOEXEC);
	assert_err_has("larger than p_memsz");
}

Test(boot, pvh_rejects_huge_memsz_that_would_wrap)
{
	elf_make(true, 8);
	le64_encode(elf64_phdr(0) + 40, UINT64_MAX - 0x1000);
	cr_assert_eq(pvh_load(ELF_LEN, 0, ""), -ENOMEM);
}

Test(boot, pvh_rejects_entry_outside_loaded_segments)
{
	elf_make(true, 8);
	le64_encode(fx.kernel + ELF_NOTE_OFF + 16, 0x4000000);
	cr_assert_eq(pvh_load(ELF_LEN, 0, ""), -ENOEXEC);
	assert_err_has("not inside any loaded");
}

Test(boot, pvh_rejects_initrd_too_big_for_ram)
{
	const size_t len = 63 * MIB;

	elf_make(true, 8);
	initrd_make(len);
	cr_assert_eq(pvh_load(ELF_LEN, len, ""), -ENOMEM);
	assert_err_has("initrd of 63 MiB does not fit below 64 MiB of guest RAM");
}

Test(boot, pvh_rejects_command_line_longer_than_buffer)
{
	char *cmdline = malloc(LAYOUT_CMDLINE_MAX + 1);

	cr_assert_not_null(cmdline);
	elf_make(true, 8);
	memset(cmdline, 'x', LAYOUT_CMDLINE_MAX);
	cmdline[LAYOUT_CMDLINE_MAX] = '\0';
	cr_assert_eq(pvh_load(ELF_LEN, 0, cmdline), -E2BIG);
	assert_err_has("too long");
	cmdline[LAYOUT_CMDLINE_MAX - 1] = '\0';
	cr_assert_eq(pvh_load(ELF_LEN, 0, cmdline), 0, "%s", fx.err);
	free(cmdline);
}

Test(boot, loaders_reject_guest_ram_below_1mib)
{
	free(fx.ram);
	fx.ram = calloc(1, 512 * 1024);
	cr_assert_not_null(fx.ram);
	guest_mem_layout(&fx.m, fx.ram, 512 * 1024);
	elf_make(true, 8);
	cr_assert_eq(pvh_load(ELF_LEN, 0, ""), -ENOMEM);
	assert_err_has("too small");
}
