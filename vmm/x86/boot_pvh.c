/* PVH boot: load an ELF kernel at its physical addresses and enter its Xen PHYS32 entry point. */
#include "vmm/x86/boot.h"

#include <errno.h>
#include <string.h>

#include "vmm/x86/boot_priv.h"
#include "vmm/x86/layout.h"

/* ELF (System V gABI): the identification bytes and the header fields this loader reads. */
#define ELF_EI_CLASS        4
#define ELF_EI_DATA         5
#define ELF_CLASS32         1
#define ELF_CLASS64         2
#define ELF_DATA2LSB        1
#define ELF_EM_386          3
#define ELF_EM_X86_64       62
#define ELF_PT_LOAD         1
#define ELF_PT_NOTE         4
#define ELF_SHT_NOTE        7
#define ELF32_EHDR_BYTES    52u
#define ELF64_EHDR_BYTES    64u
#define ELF32_PHDR_BYTES    32u
#define ELF64_PHDR_BYTES    56u
#define ELF32_SHDR_BYTES    40u
#define ELF64_SHDR_BYTES    64u
#define ELF_NHDR_BYTES      12u /* namesz, descsz, type: u32 each in both classes */

/* xen/include/public/elfnote.h: the physical 32-bit entry point of a PVH kernel. */
#define XEN_ELFNOTE_PHYS32_ENTRY 18

/*
 * The PVH info page at LAYOUT_PVH_INFO_GPA, from xen/include/public/arch-x86/hvm/
 * start_info.h (version 1). All integers little-endian.
 *
 *   +0x000  struct hvm_start_info (0x38 bytes)
 *             0x00 u32 magic 0x336ec578   0x04 u32 version      0x08 u32 flags
 *             0x0c u32 nr_modules         0x10 u64 modlist_paddr 0x18 u64 cmdline_paddr
 *             0x20 u64 rsdp_paddr         0x28 u64 memmap_paddr 0x30 u32 memmap_entries
 *             0x34 u32 reserved
 *   +0x040  struct hvm_modlist_entry[1] (0x20 bytes each)
 *             0x00 u64 paddr  0x08 u64 size  0x10 u64 cmdline_paddr  0x18 u64 reserved
 *   +0x080  struct hvm_memmap_table_entry[] (0x18 bytes each)
 *             0x00 u64 addr   0x08 u64 size  0x10 u32 type           0x14 u32 reserved
 */
#define SI_MAGIC            0x00u
#define SI_VERSION          0x04u
#define SI_FLAGS            0x08u
#define SI_NR_MODULES       0x0cu
#define SI_MODLIST_PADDR    0x10u
#define SI_CMDLINE_PADDR    0x18u
#define SI_RSDP_PADDR       0x20u
#define SI_MEMMAP_PADDR     0x28u
#define SI_MEMMAP_ENTRIES   0x30u
#define SI_BYTES            0x38u
#define SI_MAGIC_VALUE      0x336ec578u
#define SI_VERSION_VALUE    1u

#define MOD_PADDR           0x00u
#define MOD_SIZE            0x08u
#define MOD_CMDLINE_PADDR   0x10u
#define MOD_BYTES           0x20u

#define MM_ADDR             0x00u
#define MM_SIZE             0x08u
#define MM_TYPE             0x10u
#define MM_BYTES            0x18u

#define PVH_PAGE_BYTES      4096u
#define PVH_MODLIST_OFF     0x40u
#define PVH_MEMMAP_OFF      0x80u

_Static_assert(SI_BYTES <= PVH_MODLIST_OFF, "start info must end before the module list");
_Static_assert(PVH_MODLIST_OFF + MOD_BYTES <= PVH_MEMMAP_OFF, "one module fits before the memmap");
_Static_assert(PVH_MEMMAP_OFF + BOOT_E820_MAX * MM_BYTES <= PVH_PAGE_BYTES,
	       "the memmap must fit the PVH info page");
_Static_assert(LAYOUT_PVH_INFO_GPA + PVH_PAGE_BYTES <= LAYOUT_ZERO_PAGE_GPA,
	       "the PVH info page must not reach the zero page");

/* An ELF file whose header and program header table lie inside the file. */
struct elf_file {
	const uint8_t *file;
	size_t len;
	bool is64;
	uint64_t phoff;
	uint32_t phnum;
	uint32_t phentsize;
	uint64_t shoff; /* shnum is 0 when the section table is absent or unusable */
	uint32_t shnum;
	uint32_t shentsize;
};

/* One program header or note-section header, widened to 64 bits. */
struct elf_phdr {
	uint32_t type;
	uint64_t offset;
	uint64_t paddr;
	uint64_t filesz;
	uint64_t memsz;
	uint64_t align;
};

bool boot_elf_probe(const uint8_t *kernel, size_t len)
{
	return len >= 4 && memcmp(kernel, "\177ELF", 4) == 0;
}

static int elf_parse(struct elf_file *ef, const uint8_t *file, size_t len, char *err,
		     size_t errlen)
{
	const uint8_t *h = file;
	uint16_t machine;
	uint32_t shmin;

	*ef = (struct elf_file){ .file = file, .len = len };
	if (len < ELF_EI_DATA + 1 || !boot_elf_probe(file, len)) {
		err_set(err, errlen, "not an ELF file");
		return -ENOEXEC;
	}
	if (h[ELF_EI_CLASS] != ELF_CLASS32 && h[ELF_EI_CLASS] != ELF_CLASS64) {
		err_set(err, errlen, "ELF kernel has class %u: neither 32- nor 64-bit",
			h[ELF_EI_CLASS]);
		return -ENOEXEC;
	}
	if (h[ELF_EI_DATA] != ELF_DATA2LSB) {
		err_set(err, errlen, "ELF kernel is not little-endian");
		return -ENOEXEC;
	}
	ef->is64 = h[ELF_EI_CLASS] == ELF_CLASS64;
	if (len < (ef->is64 ? ELF64_EHDR_BYTES : ELF32_EHDR_BYTES)) {
		err_set(err, errlen, "ELF header is truncated: the file has %zu bytes", len);
		return -ENOEXEC;
	}
	machine = le16_decode(h + 18);
	if (machine != ELF_EM_386 && machine != ELF_EM_X86_64) {
		err_set(err, errlen, "ELF kernel is for machine %u, not x86", machine);
		return -ENOEXEC;
	}
	if (ef->is64) {
		ef->phoff = le64_decode(h + 32);
		ef->shoff = le64_decode(h + 40);
		ef->phentsize = le16_decode(h + 54);
		ef->phnum = le16_decode(h + 56);
		ef->shentsize = le16_decode(h + 58);
		ef->shnum = le16_decode(h + 60);
	} else {
		ef->phoff = le32_decode(h + 28);
		ef->shoff = le32_decode(h + 32);
		ef->phentsize = le16_decode(h + 42);
		ef->phnum = le16_decode(h + 44);
		ef->shentsize = le16_decode(h + 46);
		ef->shnum = le16_decode(h + 48);
	}
	if (ef->phnum == 0) {
		err_set(err, errlen, "ELF kernel has no program headers");
		return -ENOEXEC;
	}
	if (ef->phentsize < (ef->is64 ? ELF64_PHDR_BYTES : ELF32_PHDR_BYTES)) {
		err_set(err, errlen, "ELF program header size %u is too small", ef->phentsize);
		return -ENOEXEC;
	}
	/* phnum and phentsize are u16: their product cannot overflow. */
	if (!range_ok(ef->phoff, (uint64_t)ef->phnum * ef->phentsize, len)) {
		err_set(err, errlen,
			"ELF program headers (%u at offset 0x%llx) run past the %zu-byte file",
			ef->phnum, (unsigned long long)ef->phoff, len);
		return -ENOEXEC;
	}
	/* Sections only matter as a second place to look for the note: drop a bad table. */
	shmin = ef->is64 ? ELF64_SHDR_BYTES : ELF32_SHDR_BYTES;
	if (ef->shoff == 0 || ef->shentsize < shmin ||
	    !range_ok(ef->shoff, (uint64_t)ef->shnum * ef->shentsize, len))
		ef->shnum = 0;
	return 0;
}

static struct elf_phdr elf_phdr_read(const struct elf_file *ef, uint32_t i)
{
	const uint8_t *p = ef->file + ef->phoff + (uint64_t)i * ef->phentsize;

	if (ef->is64)
		return (struct elf_phdr){
			.type = le32_decode(p),
			.offset = le64_decode(p + 8),
			.paddr = le64_decode(p + 24),
			.filesz = le64_decode(p + 32),
			.memsz = le64_decode(p + 40),
			.align = le64_decode(p + 48),
		};
	return (struct elf_phdr){
		.type = le32_decode(p),
		.offset = le32_decode(p + 4),
		.paddr = le32_decode(p + 12),
		.filesz = le32_decode(p + 16),
		.memsz = le32_decode(p + 20),
		.align = le32_decode(p + 28),
	};
}

/* A section header, as far as notes need it: type, file range and alignment. */
static struct elf_phdr elf_shdr_read(const struct elf_file *ef, uint32_t i)
{
	const uint8_t *p = ef->file + ef->shoff + (uint64_t)i * ef->shentsize;

	if (ef->is64)
		return (struct elf_phdr){
			.type = le32_decode(p + 4),
			.offset = le64_decode(p + 24),
			.filesz = le64_decode(p + 32),
			.align = le64_decode(p + 48),
		};
	return (struct elf_phdr){
		.type = le32_decode(p + 4),
		.offset = le32_decode(p + 16),
		.filesz = le32_decode(p + 20),
		.align = le32_decode(p + 32),
	};
}

/*
 * Walk the notes in buf[0, size) with name and descriptor padded to align bytes, looking
 * for "Xen" XEN_ELFNOTE_PHYS32_ENTRY. The descriptor is a 32- or 64-bit address; the low
 * 32 bits are the entry. Stops at the first note that does not fit.
 */
static bool note_find(const uint8_t *buf, uint64_t size, uint64_t align, uint32_t *entry)
{
	uint64_t pos = 0;

	while (size - pos >= ELF_NHDR_BYTES) {
		uint64_t namesz = le32_decode(buf + pos);
		uint64_t descsz = le32_decode(buf + pos + 4);
		uint32_t type = le32_decode(buf + pos + 8);
		uint64_t name = pos + ELF_NHDR_BYTES, desc;

		/* namesz and descsz are u32 and size is a file length: no u64 overflow. */
		if (namesz > size - name)
			return false;
		desc = name + ((namesz + align - 1) & ~(align - 1));
		if (desc > size || descsz > size - desc)
			return false;
		if (type == XEN_ELFNOTE_PHYS32_ENTRY && namesz == 4 &&
		    memcmp(buf + name, "Xen", 4) == 0 && (descsz == 4 || descsz == 8)) {
			*entry = le32_decode(buf + desc);
			return true;
		}
		pos = desc + ((descsz + align - 1) & ~(align - 1));
		if (pos > size)
			return false;
	}
	return false;
}

/*
 * Notes are 4-byte aligned in Linux; an 8-aligned note segment may use 8-byte padding
 * (as GNU property notes do), so try that first there and fall back to 4.
 */
static bool note_find_in(const struct elf_file *ef, const struct elf_phdr *ph, uint32_t *entry)
{
	const uint8_t *buf;

	if (!range_ok(ph->offset, ph->filesz, ef->len))
		return false;
	buf = ef->file + ph->offset;
	if (ph->align == 8 && note_find(buf, ph->filesz, 8, entry))
		return true;
	return note_find(buf, ph->filesz, 4, entry);
}

/* Find the PVH entry: PT_NOTE segments first, then SHT_NOTE sections. */
static bool elf_pvh_entry(const struct elf_file *ef, uint32_t *entry)
{
	for (uint32_t i = 0; i < ef->phnum; i++) {
		struct elf_phdr ph = elf_phdr_read(ef, i);

		if (ph.type == ELF_PT_NOTE && note_find_in(ef, &ph, entry))
			return true;
	}
	for (uint32_t i = 0; i < ef->shnum; i++) {
		struct elf_phdr sh = elf_shdr_read(ef, i);

		if (sh.type == ELF_SHT_NOTE && note_find_in(ef, &sh, entry))
			return true;
	}
	return false;
}

bool boot_pvh_probe(const uint8_t *kernel, size_t len)
{
	struct elf_file ef;
	uint32_t entry;

	return elf_parse(&ef, kernel, len, NULL, 0) == 0 && elf_pvh_entry(&ef, &entry);
}

/*
 * Check every PT_LOAD against the file and guest RAM: file bytes inside the file, memsz at
 * least filesz, and the whole memory image in [1 MiB, top of low RAM) so it neither covers
 * the boot tables nor sits where 32-bit code cannot reach. Sets plan->kernel_end.
 */
static int pvh_segments_check(const struct elf_file *ef, uint32_t entry, struct boot_plan *plan,
			      char *err, size_t errlen)
{
	bool entry_loaded = false;
	unsigned nload = 0;

	plan->kernel_end = LAYOUT_KERNEL_GPA;
	for (uint32_t i = 0; i < ef->phnum; i++) {
		struct elf_phdr ph = elf_phdr_read(ef, i);

		if (ph.type != ELF_PT_LOAD)
			continue;
		if (ph.filesz > ph.memsz) {
			err_set(err, errlen,
				"ELF segment %u has p_filesz 0x%llx larger than p_memsz 0x%llx", i,
				(unsigned long long)ph.filesz, (unsigned long long)ph.memsz);
			return -ENOEXEC;
		}
		if (!range_ok(ph.offset, ph.filesz, ef->len)) {
			err_set(err, errlen,
				"ELF segment %u (0x%llx bytes at offset 0x%llx) runs past the "
				"%zu-byte file",
				i, (unsigned long long)ph.filesz, (unsigned long long)ph.offset,
				ef->len);
			return -ENOEXEC;
		}
		if (ph.align > 1 && (ph.align & (ph.align - 1))) {
			err_set(err, errlen, "ELF segment %u has p_align 0x%llx: not a power of two",
				i, (unsigned long long)ph.align);
			return -ENOEXEC;
		}
		if (ph.memsz == 0)
			continue;
		if (ph.paddr < LAYOUT_KERNEL_GPA) {
			err_set(err, errlen,
				"ELF segment %u at 0x%llx is below 1 MiB, where the boot tables live",
				i, (unsigned long long)ph.paddr);
			return -ENOEXEC;
		}
		if (!range_ok(ph.paddr, ph.memsz, plan->lowmem_top)) {
			err_set(err, errlen,
				"ELF segment %u (0x%llx bytes at 0x%llx) does not fit in guest RAM "
				"below %llu MiB: give --mem more",
				i, (unsigned long long)ph.memsz, (unsigned long long)ph.paddr,
				(unsigned long long)(plan->lowmem_top / BOOT_MIB));
			return -ENOMEM;
		}
		if (ph.paddr + ph.memsz > plan->kernel_end)
			plan->kernel_end = ph.paddr + ph.memsz;
		if (entry >= ph.paddr && entry - ph.paddr < ph.memsz)
			entry_loaded = true;
		nload++;
	}
	if (nload == 0) {
		err_set(err, errlen, "ELF kernel has no loadable segments");
		return -ENOEXEC;
	}
	if (!entry_loaded) {
		err_set(err, errlen, "PVH entry point 0x%x is not inside any loaded ELF segment",
			entry);
		return -ENOEXEC;
	}
	return 0;
}

static int pvh_segments_write(const struct guest_mem *m, const struct elf_file *ef)
{
	int rc = 0;

	for (uint32_t i = 0; i < ef->phnum && rc == 0; i++) {
		struct elf_phdr ph = elf_phdr_read(ef, i);

		if (ph.type != ELF_PT_LOAD || ph.memsz == 0)
			continue;
		rc = boot_mem_write(m, ph.paddr, ef->file + ph.offset, ph.filesz);
		if (rc == 0)
			rc = boot_mem_fill(m, ph.paddr + ph.filesz, 0, ph.memsz - ph.filesz);
	}
	return rc;
}

static void start_info_build(uint8_t *page, const struct boot_plan *plan,
			     const struct boot_e820 *map, unsigned nmap)
{
	uint8_t *si = page, *mod = page + PVH_MODLIST_OFF;

	memset(page, 0, PVH_PAGE_BYTES);
	le32_encode(si + SI_MAGIC, SI_MAGIC_VALUE);
	le32_encode(si + SI_VERSION, SI_VERSION_VALUE);
	le32_encode(si + SI_FLAGS, 0);
	le64_encode(si + SI_CMDLINE_PADDR, LAYOUT_CMDLINE_GPA);
	le64_encode(si + SI_RSDP_PADDR, 0); /* 0: the guest scans 0xe0000..0xfffff */
	if (plan->initrd_bytes) {
		le32_encode(si + SI_NR_MODULES, 1);
		le64_encode(si + SI_MODLIST_PADDR, LAYOUT_PVH_INFO_GPA + PVH_MODLIST_OFF);
		le64_encode(mod + MOD_PADDR, plan->initrd_gpa);
		le64_encode(mod + MOD_SIZE, plan->initrd_bytes);
		le64_encode(mod + MOD_CMDLINE_PADDR, 0);
	}
	le64_encode(si + SI_MEMMAP_PADDR, LAYOUT_PVH_INFO_GPA + PVH_MEMMAP_OFF);
	le32_encode(si + SI_MEMMAP_ENTRIES, nmap);
	for (unsigned i = 0; i < nmap; i++) {
		uint8_t *e = page + PVH_MEMMAP_OFF + i * MM_BYTES;

		le64_encode(e + MM_ADDR, map[i].gpa);
		le64_encode(e + MM_SIZE, map[i].bytes);
		le32_encode(e + MM_TYPE, map[i].type);
	}
}

int boot_pvh_load(const struct guest_mem *m, const struct boot_params_in *in,
		  struct boot_entry *out, struct kvm_sregs *sregs, char *err, size_t errlen)
{
	struct boot_e820 map[BOOT_E820_MAX];
	uint8_t page[PVH_PAGE_BYTES];
	struct boot_plan plan = { 0 };
	struct elf_file ef;
	uint32_t entry;
	unsigned nmap;
	int rc;

	rc = elf_parse(&ef, in->kernel, in->kernel_len, err, errlen);
	if (rc < 0)
		return rc;
	if (!elf_pvh_entry(&ef, &entry)) {
		err_set(err, errlen, "ELF kernel has no PVH entry note: build it with CONFIG_PVH=y");
		return -ENOEXEC;
	}
	rc = boot_lowmem_check(m, &plan.lowmem_top, err, errlen);
	if (rc < 0)
		return rc;
	rc = pvh_segments_check(&ef, entry, &plan, err, errlen);
	if (rc < 0)
		return rc;
	rc = boot_plan_place(&plan, in, LAYOUT_CMDLINE_MAX - 1, plan.lowmem_top, err, errlen);
	if (rc < 0)
		return rc;

	nmap = boot_e820_build(m, map, BOOT_E820_MAX);
	start_info_build(page, &plan, map, nmap);

	rc = pvh_segments_write(m, &ef);
	if (rc == 0)
		rc = boot_mem_write(m, LAYOUT_PVH_INFO_GPA, page, sizeof(page));
	if (rc == 0)
		rc = boot_plan_write(m, &plan, in);
	if (rc == 0)
		rc = boot_gdt_write(m, BOOT_CPU_PROTECTED);
	if (rc < 0) {
		err_set(err, errlen, "PVH: writing guest memory failed");
		return rc;
	}

	/* PVH ABI: EBX = start info, EFLAGS with IF, TF and VM clear (bit 1 is fixed). */
	*out = (struct boot_entry){ .kind = BOOT_KIND_PVH };
	out->regs.rip = entry;
	out->regs.rbx = LAYOUT_PVH_INFO_GPA;
	out->regs.rflags = 0x2;
	boot_sregs_set(sregs, BOOT_CPU_PROTECTED);
	return 0;
}
