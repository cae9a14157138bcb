/* Linux x86 boot protocol: load a bzImage and enter it at its 64-bit entry point. */
#include "vmm/x86/boot.h"

#include <errno.h>
#include <string.h>

#include "vmm/x86/boot_priv.h"
#include "vmm/x86/layout.h"

/*
 * struct boot_params, the "zero page" (Documentation/arch/x86/zero-page.rst). Only the
 * fields this loader writes are named; everything else stays zero.
 *
 *   0x0c0  ext_ramdisk_image   u32  high 32 bits of ramdisk_image
 *   0x0c4  ext_ramdisk_size    u32  high 32 bits of ramdisk_size
 *   0x0c8  ext_cmd_line_ptr    u32  high 32 bits of cmd_line_ptr
 *   0x1e8  e820_entries        u8
 *   0x1f1  hdr                 struct setup_header (below)
 *   0x290  edd_mbr_sig_buffer  (the header copy stops here)
 *   0x2d0  e820_table          128 x { u64 addr, u64 size, u32 type }, 20 bytes each
 */
#define BP_BYTES             4096u
#define BP_EXT_RAMDISK_IMAGE 0x0c0u
#define BP_EXT_RAMDISK_SIZE  0x0c4u
#define BP_EXT_CMD_LINE_PTR  0x0c8u
#define BP_E820_ENTRIES      0x1e8u
#define BP_HDR               0x1f1u
#define BP_HDR_LIMIT         0x290u
#define BP_E820_TABLE        0x2d0u
#define BP_E820_TABLE_MAX    128u
#define BP_E820_ENTRY_BYTES  20u
#define BP_EDDBUF            0xd00u

_Static_assert(BP_E820_TABLE + BP_E820_TABLE_MAX * BP_E820_ENTRY_BYTES <= BP_EDDBUF,
	       "e820_table must end where eddbuf starts");
_Static_assert(BOOT_E820_MAX <= BP_E820_TABLE_MAX, "the memory map must fit the zero page");

/*
 * struct setup_header (Documentation/arch/x86/boot.rst, "THE REAL-MODE KERNEL HEADER"):
 * the same offsets in the file and in boot_params, with the protocol that added each.
 */
#define HDR_SETUP_SECTS      0x1f1u /* u8,  ALL  0 means 4 */
#define HDR_BOOT_FLAG        0x1feu /* u16, ALL  0xaa55 */
#define HDR_JUMP             0x200u /* u16, 2.00 short jump: header ends at 0x202 + byte 0x201 */
#define HDR_HEADER           0x202u /* u32, 2.00 "HdrS" */
#define HDR_VERSION          0x206u /* u16, 2.00 */
#define HDR_TYPE_OF_LOADER   0x210u /* u8,  2.00 */
#define HDR_LOADFLAGS        0x211u /* u8,  2.00 */
#define HDR_RAMDISK_IMAGE    0x218u /* u32, 2.00 */
#define HDR_RAMDISK_SIZE     0x21cu /* u32, 2.00 */
#define HDR_HEAP_END_PTR     0x224u /* u16, 2.01 */
#define HDR_CMD_LINE_PTR     0x228u /* u32, 2.02 */
#define HDR_INITRD_ADDR_MAX  0x22cu /* u32, 2.03 */
#define HDR_KERNEL_ALIGNMENT 0x230u /* u32, 2.05 */
#define HDR_RELOCATABLE      0x234u /* u8,  2.05 */
#define HDR_XLOADFLAGS       0x236u /* u16, 2.12 */
#define HDR_CMDLINE_SIZE     0x238u /* u32, 2.06 */
#define HDR_SETUP_DATA       0x250u /* u64, 2.09 */
#define HDR_PREF_ADDRESS     0x258u /* u64, 2.10 */
#define HDR_INIT_SIZE        0x260u /* u32, 2.10 */

#define HDR_BOOT_FLAG_MAGIC  0xaa55u
#define HDR_MIN_VERSION      0x0206u
#define HDR_LOADER_UNDEFINED 0xffu   /* type_of_loader: a boot loader without an assigned id */
#define HDR_CAN_USE_HEAP     0x80u   /* loadflags bit 7: heap_end_ptr is valid */
#define HDR_HEAP_END         0xfe00u /* the conventional end of the setup heap, minus 0x200 */
#define HDR_XLF_KERNEL_64    0x0001u /* xloadflags bit 0: 64-bit entry at load + 0x200 */

#define BZ_SECTOR_BYTES      512u
#define BZ_ENTRY64_OFFSET    0x200u

/* A bzImage whose header has been checked against the file. */
struct bzimage {
	const uint8_t *file;
	size_t len;
	uint32_t hdr_end; /* first byte after the setup header, clamped to BP_HDR_LIMIT */
	uint16_t version;
	uint64_t pm_offset; /* protected-mode kernel in the file */
	uint64_t pm_bytes;
};

/* Read a header field only if the kernel's header reaches it; absent fields read as 0. */
static uint64_t bz_field(const struct bzimage *bz, uint32_t off, unsigned bytes)
{
	if (off + bytes > bz->hdr_end)
		return 0;
	switch (bytes) {
	case 1:
		return bz->file[off];
	case 2:
		return le16_decode(bz->file + off);
	case 4:
		return le32_decode(bz->file + off);
	default:
		return le64_decode(bz->file + off);
	}
}

bool boot_bzimage_probe(const uint8_t *kernel, size_t len)
{
	return len >= HDR_HEADER + 4 && le16_decode(kernel + HDR_BOOT_FLAG) == HDR_BOOT_FLAG_MAGIC &&
	       memcmp(kernel + HDR_HEADER, "HdrS", 4) == 0;
}

static int bzimage_parse(struct bzimage *bz, const uint8_t *file, size_t len, char *err,
			 size_t errlen)
{
	unsigned setup_sects;
	uint64_t end;

	*bz = (struct bzimage){ .file = file, .len = len };
	if (len < HDR_VERSION + 2) {
		err_set(err, errlen, "bzImage of %zu bytes is too short for a setup header", len);
		return -ENOEXEC;
	}
	if (le16_decode(file + HDR_BOOT_FLAG) != HDR_BOOT_FLAG_MAGIC) {
		err_set(err, errlen, "bzImage has no boot flag 0xaa55 at offset 0x1fe");
		return -ENOEXEC;
	}
	if (memcmp(file + HDR_HEADER, "HdrS", 4) != 0) {
		err_set(err, errlen, "bzImage has no \"HdrS\" setup header at offset 0x202");
		return -ENOEXEC;
	}
	bz->version = le16_decode(file + HDR_VERSION);
	if (bz->version < HDR_MIN_VERSION) {
		err_set(err, errlen, "bzImage boot protocol %u.%02u is too old: need 2.06 or newer",
			bz->version >> 8, bz->version & 0xff);
		return -ENOEXEC;
	}
	end = HDR_HEADER + (uint64_t)file[HDR_JUMP + 1];
	if (end > len) {
		err_set(err, errlen, "bzImage setup header ends at 0x%llx, past the %zu-byte file",
			(unsigned long long)end, len);
		return -ENOEXEC;
	}
	if (end < HDR_CMDLINE_SIZE + 4) {
		err_set(err, errlen,
			"bzImage setup header ends at 0x%llx, before the protocol 2.06 fields",
			(unsigned long long)end);
		return -ENOEXEC;
	}
	bz->hdr_end = end < BP_HDR_LIMIT ? (uint32_t)end : BP_HDR_LIMIT;

	if (bz->version < 0x020c || !(bz_field(bz, HDR_XLOADFLAGS, 2) & HDR_XLF_KERNEL_64)) {
		err_set(err, errlen,
			"bzImage is a 32-bit-only kernel (no XLF_KERNEL_64 in xloadflags): "
			"build a 64-bit kernel");
		return -ENOEXEC;
	}

	setup_sects = file[HDR_SETUP_SECTS] ? file[HDR_SETUP_SECTS] : 4;
	bz->pm_offset = ((uint64_t)setup_sects + 1) * BZ_SECTOR_BYTES;
	if (bz->pm_offset >= len) {
		err_set(err, errlen,
			"bzImage setup code of %u sectors reaches past the %zu-byte file",
			setup_sects, len);
		return -ENOEXEC;
	}
	bz->pm_bytes = len - bz->pm_offset;
	return 0;
}

/*
 * Where the kernel lives: loaded at LAYOUT_KERNEL_GPA, never at pref_address. A 64-bit
 * decompressor runs from max(load address aligned to kernel_alignment, pref_address) when
 * relocatable and from pref_address (LOAD_PHYSICAL_ADDR) otherwise, needing init_size
 * bytes there; so loading low costs nothing, and the initrd must stay above both ranges.
 */
static uint64_t bzimage_kernel_end(const struct bzimage *bz)
{
	uint64_t load_end = LAYOUT_KERNEL_GPA + bz->pm_bytes;
	uint64_t run = LAYOUT_KERNEL_GPA;
	uint64_t align = bz_field(bz, HDR_KERNEL_ALIGNMENT, 4);
	uint64_t pref = bz_field(bz, HDR_PREF_ADDRESS, 8);
	uint64_t init_size = bz_field(bz, HDR_INIT_SIZE, 4);
	uint64_t run_end;

	if (bz_field(bz, HDR_RELOCATABLE, 1) && align && !(align & (align - 1)))
		run = (run + align - 1) & ~(align - 1);
	if (pref > run)
		run = pref;
	/* pref_address is a u64 from the file: saturate rather than wrap. */
	run_end = run > UINT64_MAX - init_size ? UINT64_MAX : run + init_size;
	return run_end > load_end ? run_end : load_end;
}

static void zero_page_build(uint8_t *zp, const struct bzimage *bz, const struct boot_plan *plan,
			    const struct boot_e820 *map, unsigned nmap)
{
	memset(zp, 0, BP_BYTES);
	memcpy(zp + BP_HDR, bz->file + BP_HDR, bz->hdr_end - BP_HDR);

	zp[HDR_TYPE_OF_LOADER] = HDR_LOADER_UNDEFINED;
	zp[HDR_LOADFLAGS] |= HDR_CAN_USE_HEAP;
	le16_encode(zp + HDR_HEAP_END_PTR, HDR_HEAP_END);
	le32_encode(zp + HDR_CMD_LINE_PTR, (uint32_t)LAYOUT_CMDLINE_GPA);
	le32_encode(zp + BP_EXT_CMD_LINE_PTR, (uint32_t)(LAYOUT_CMDLINE_GPA >> 32));
	le32_encode(zp + HDR_RAMDISK_IMAGE, (uint32_t)plan->initrd_gpa);
	le32_encode(zp + HDR_RAMDISK_SIZE, (uint32_t)plan->initrd_bytes);
	le32_encode(zp + BP_EXT_RAMDISK_IMAGE, (uint32_t)(plan->initrd_gpa >> 32));
	le32_encode(zp + BP_EXT_RAMDISK_SIZE, (uint32_t)(plan->initrd_bytes >> 32));
	/* No setup_data chain: whatever the file carries there means nothing to us. */
	if (bz->hdr_end >= HDR_SETUP_DATA + 8)
		le64_encode(zp + HDR_SETUP_DATA, 0);

	zp[BP_E820_ENTRIES] = (uint8_t)nmap;
	for (unsigned i = 0; i < nmap; i++) {
		uint8_t *e = zp + BP_E820_TABLE + i * BP_E820_ENTRY_BYTES;

		le64_encode(e, map[i].gpa);
		le64_encode(e + 8, map[i].bytes);
		le32_encode(e + 16, map[i].type);
	}
}

int boot_bzimage_load(const struct guest_mem *m, const struct boot_params_in *in,
		      struct boot_entry *out, struct kvm_sregs *sregs, char *err, size_t errlen)
{
	struct boot_e820 map[BOOT_E820_MAX];
	uint8_t zp[BP_BYTES];
	struct boot_plan plan = { 0 };
	struct bzimage bz;
	unsigned nmap;
	int rc;

	rc = bzimage_parse(&bz, in->kernel, in->kernel_len, err, errlen);
	if (rc < 0)
		return rc;
	rc = boot_lowmem_check(m, &plan.lowmem_top, err, errlen);
	if (rc < 0)
		return rc;
	plan.kernel_end = bzimage_kernel_end(&bz);
	if (plan.kernel_end > plan.lowmem_top) {
		err_set(err, errlen,
			"kernel of %llu MiB needs guest RAM up to %llu MiB but it ends at %llu MiB: "
			"give --mem more",
			(unsigned long long)((bz.pm_bytes + BOOT_MIB - 1) / BOOT_MIB),
			(unsigned long long)((plan.kernel_end + BOOT_MIB - 1) / BOOT_MIB),
			(unsigned long long)(plan.lowmem_top / BOOT_MIB));
		return -ENOMEM;
	}
	/* cmdline_size excludes the NUL; initrd_addr_max is the last byte the initrd may use. */
	rc = boot_plan_place(&plan, in, bz_field(&bz, HDR_CMDLINE_SIZE, 4),
			     bz_field(&bz, HDR_INITRD_ADDR_MAX, 4) + 1, err, errlen);
	if (rc < 0)
		return rc;

	nmap = boot_e820_build(m, map, BOOT_E820_MAX);
	zero_page_build(zp, &bz, &plan, map, nmap);

	rc = boot_mem_write(m, LAYOUT_KERNEL_GPA, bz.file + bz.pm_offset, bz.pm_bytes);
	if (rc == 0)
		rc = boot_mem_write(m, LAYOUT_ZERO_PAGE_GPA, zp, sizeof(zp));
	if (rc == 0)
		rc = boot_plan_write(m, &plan, in);
	if (rc == 0)
		rc = boot_gdt_write(m, BOOT_CPU_LONG);
	if (rc == 0)
		rc = boot_pagetables_write(m);
	if (rc < 0) {
		err_set(err, errlen, "bzImage: writing guest memory failed");
		return rc;
	}

	/* 64-bit boot protocol: RSI = boot_params, interrupts off (RFLAGS bit 1 is fixed). */
	*out = (struct boot_entry){ .kind = BOOT_KIND_BZIMAGE };
	out->regs.rip = LAYOUT_KERNEL_GPA + BZ_ENTRY64_OFFSET;
	out->regs.rsi = LAYOUT_ZERO_PAGE_GPA;
	out->regs.rflags = 0x2;
	boot_sregs_set(sregs, BOOT_CPU_LONG);
	return 0;
}
