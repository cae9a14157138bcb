/* VM state blobs: round trip, every corruption class, machine and CPU checks, clocks. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "tests/common/gw_test.h"
#include "tests/vmm/vm_helpers.h"
#include "util/crc32c.h"
#include "vmm/state/state_priv.h"
#include "vmm/vm_priv.h"
#include "vmm/vm_state.h"

#define MIB (1ULL << 20)
#define RAM_BYTES (128 * MIB)
#define DISK_BYTES (16 * MIB)
#define BOOT_MS 60000

static struct {
	char dir[64];
	char console[128];
	char disk[128];
	int console_fd;
	struct vm *vm;
	uint8_t *blob;
	size_t len;
	char err[256];
} fx;

static void setup(void)
{
	memset(&fx, 0, sizeof(fx));
	fx.console_fd = -1;
	tvm_dir_make(fx.dir, sizeof(fx.dir));
	snprintf(fx.console, sizeof(fx.console), "%s/console.log", fx.dir);
	snprintf(fx.disk, sizeof(fx.disk), "%s/disk.img", fx.dir);
}

static void teardown(void)
{
	tvm_vm_gone(&fx.vm);
	if (fx.console_fd >= 0)
		close(fx.console_fd);
	free(fx.blob);
	tvm_dir_remove(fx.dir);
}

TestSuite(vm_state, .init = setup, .fini = teardown, .timeout = 300);

static struct vm_config config(unsigned ncpus, const char *cmdline, const char *disk, int fd)
{
	return (struct vm_config){
		.kernel_path = TEST_GUEST_ELF, .cmdline = cmdline, .ram_bytes = RAM_BYTES,
		.ncpus = ncpus, .disk_path = disk, .console_fd = fd,
	};
}

/* The test guest, created (not started), console to fx.console. */
static void guest_create(unsigned ncpus, const char *cmdline, const char *disk)
{
	struct vm_config cfg;

	require_kvm();
	fx.console_fd = open(fx.console, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	cr_assert_geq(fx.console_fd, 0);
	cfg = config(ncpus, cmdline, disk, fx.console_fd);
	cr_assert_eq(vm_create(&fx.vm, &cfg, fx.err, sizeof(fx.err)), 0, "%s", fx.err);
}

static void save(void)
{
	free(fx.blob);
	fx.blob = NULL;
	cr_assert_eq(vm_state_save(fx.vm, &fx.blob, &fx.len), 0);
	cr_assert_gt(fx.len, VS_HEADER_BYTES + VS_TRAILER_BYTES);
}

/* A blob of the test guest after it has run: paused after two heartbeats. */
static void save_running_guest(unsigned ncpus, const char *disk)
{
	guest_create(ncpus, "mb=4 rate=4", disk);
	cr_assert_eq(vm_start(fx.vm), 0);
	cr_assert(tvm_wait_lines(fx.console, "HB ", 2, BOOT_MS), "no heartbeats");
	cr_assert_eq(vm_pause(fx.vm), 0);
	save();
}

/* A VM shell to load blobs into, like the saved one unless told otherwise. */
static struct vm *shell(unsigned ncpus, uint64_t ram, const char *disk)
{
	struct vm_config cfg = config(ncpus, NULL, disk, -1);
	struct vm *vm;

	cfg.kernel_path = NULL;
	cfg.ram_bytes = ram;
	cr_assert_eq(vm_create_for_restore(&vm, &cfg, fx.err, sizeof(fx.err)), 0, "%s", fx.err);
	return vm;
}

/* Load blob into a fresh shell; returns the result and keeps the message in fx.err. */
static int load_into_shell(const uint8_t *blob, size_t len)
{
	struct vm *vm = shell(1, RAM_BYTES, NULL);
	int rc;

	fx.err[0] = '\0';
	rc = vm_state_load(vm, blob, len, fx.err, sizeof(fx.err));
	vm_destroy(vm);
	return rc;
}

/* ---- blob surgery ------------------------------------------------------------------ */

static void blob_fix(uint8_t *b, size_t len)
{
	le64_encode(b + 16, len);
	le32_encode(b + len - 4, crc32c(0, b, len - 4));
}

/* Offset of record n (0-based) and the number of records. */
static size_t record_at(const uint8_t *b, size_t len, unsigned n, unsigned *count)
{
	size_t off = VS_HEADER_BYTES, want = 0;
	unsigned i = 0;

	while (off + VS_RECORD_HEADER_BYTES <= len - VS_TRAILER_BYTES) {
		if (i == n)
			want = off;
		off += VS_RECORD_HEADER_BYTES + le32_decode(b + off + 4);
		i++;
	}
	if (count)
		*count = i;
	return want;
}

static uint8_t *blob_copy(size_t extra)
{
	uint8_t *b = malloc(fx.len + extra);

	cr_assert_not_null(b);
	memcpy(b, fx.blob, fx.len);
	return b;
}

/* A blob from a VM that never ran: enough for format tests, no guest boot needed. */
static void save_created_vm(void)
{
	guest_create(1, NULL, NULL);
	save();
}

/* ---- format --------------------------------------------------------------------------- */

Test(vm_state, peek_reports_the_machine)
{
	struct vm_state_info info;

	tvm_make_disk(fx.disk, DISK_BYTES);
	guest_create(2, NULL, fx.disk);
	save();
	cr_assert_eq(vm_state_peek(fx.blob, fx.len, &info, fx.err, sizeof(fx.err)), 0, "%s",
		     fx.err);
	cr_assert_eq(info.ram_bytes, RAM_BYTES);
	cr_assert_eq(info.ncpus, 2);
	cr_assert_eq(info.disk_bytes, DISK_BYTES);
	cr_assert_eq(memcmp(fx.blob, "GWVS", 4), 0);
}

/* Decode every KVM record and encode it again: the same bytes. */
Test(vm_state, records_reencode_byte_for_byte)
{
	struct vcpu_state *s = calloc(1, sizeof(*s));
	struct vm_kvm_state *k = calloc(1, sizeof(*k));
	struct cpuid_table *t = calloc(1, sizeof(*t));
	struct dec records, d;
	struct vs_record rec;
	unsigned seen = 0;

	save_running_guest(2, NULL);
	cr_assert_eq(vs_blob_open(fx.blob, fx.len, &records, fx.err, sizeof(fx.err)), 0);
	while (vs_blob_next(&records, &rec, fx.err, sizeof(fx.err)) > 0) {
		struct vs_enc e;
		struct vs_io in = { .d = &d }, out = { .e = &e };
		struct vs_machine m;

		vs_enc_init(&e);
		d = dec_init(rec.payload, rec.len);
		switch (rec.type) {
		case VS_REC_MACHINE:
			vs_io_machine(&in, &m);
			vs_io_machine(&out, &m);
			break;
		case VS_REC_CPUID:
			cr_assert_eq(vs_dec_cpuid(&d, t), 0);
			vs_enc_cpuid(&e, t);
			break;
		case VS_REC_VCPU:
			vs_io_vcpu(&in, s);
			vs_io_vcpu(&out, s);
			vcpu_state_free(s);
			break;
		case VS_REC_IRQCHIP:
			vs_io_irqchip(&in, k->chip);
			vs_io_irqchip(&out, k->chip);
			break;
		case VS_REC_PIT:
			vs_io_pit(&in, &k->pit);
			vs_io_pit(&out, &k->pit);
			break;
		case VS_REC_CLOCK:
			vs_io_clock(&in, &k->clock);
			vs_io_clock(&out, &k->clock);
			break;
		default:
			vs_enc_free(&e);
			continue; /* device records: see devices_survive_a_load_and_save */
		}
		cr_assert(dec_done(&d), "record type %u not consumed exactly", rec.type);
		cr_assert_eq(e.err, 0);
		cr_assert_eq(e.len, rec.len, "record type %u", rec.type);
		cr_assert_arr_eq(e.buf, rec.payload, rec.len, "record type %u", rec.type);
		vs_enc_free(&e);
		seen++;
	}
	cr_assert_eq(seen, 7, "machine, CPUID, 2 vCPUs, IRQCHIP, PIT, clock");
	free(t);
	free(k);
	free(s);
}

/* Device records: loaded into a shell and saved again, the same bytes. */
Test(vm_state, devices_survive_a_load_and_save)
{
	struct vm *vm;
	uint8_t *again;
	size_t again_len;

	tvm_make_disk(fx.disk, DISK_BYTES);
	guest_create(1, "mb=4 rate=4 disk=w:8:8:1", fx.disk);
	cr_assert_eq(vm_start(fx.vm), 0);
	cr_assert(tvm_wait_lines(fx.console, "HB ", 2, BOOT_MS), "no heartbeats");
	cr_assert_eq(vm_pause(fx.vm), 0);
	save();
	tvm_vm_gone(&fx.vm);
	vm = shell(1, RAM_BYTES, fx.disk);
	cr_assert_eq(vm_state_load(vm, fx.blob, fx.len, fx.err, sizeof(fx.err)), 0, "%s", fx.err);
	cr_assert_eq(vm_state_save(vm, &again, &again_len), 0, "a loaded, unstarted VM saves");
	for (unsigned type = VS_REC_SERIAL; type <= VS_REC_VIRTIO_BLK; type++) {
		struct vs_record a, b;

		cr_assert_eq(vs_blob_find(fx.blob, fx.len, type, &a, fx.err, sizeof(fx.err)), 0);
		cr_assert_eq(vs_blob_find(again, again_len, type, &b, fx.err, sizeof(fx.err)), 0);
		cr_assert_eq(a.len, b.len, "record type %u", type);
		cr_assert_arr_eq(a.payload, b.payload, a.len, "record type %u", type);
	}
	free(again);
	vm_destroy(vm);
}

Test(vm_state, rejects_bad_magic)
{
	save_created_vm();
	fx.blob[0] ^= 0xff;
	cr_assert_eq(load_into_shell(fx.blob, fx.len), -EBADMSG);
	cr_assert(strstr(fx.err, "magic"), "%s", fx.err);
}

Test(vm_state, refuses_a_newer_version_naming_both)
{
	char want[64];

	save_created_vm();
	le32_encode(fx.blob + 4, VS_FORMAT_VERSION + 1);
	blob_fix(fx.blob, fx.len);
	cr_assert_eq(load_into_shell(fx.blob, fx.len), -EPROTONOSUPPORT);
	snprintf(want, sizeof(want), "version %u is newer than %u", VS_FORMAT_VERSION + 1,
		 VS_FORMAT_VERSION);
	cr_assert(strstr(fx.err, want), "%s", fx.err);
	cr_assert(strstr(fx.err, "upgrade godwit"), "%s", fx.err);
	cr_assert_null(strchr(fx.err, '\n'), "one line: %s", fx.err);
}

Test(vm_state, rejects_version_zero_as_invalid)
{
	save_created_vm();
	le32_encode(fx.blob + 4, 0);
	blob_fix(fx.blob, fx.len);
	cr_assert_eq(load_into_shell(fx.blob, fx.len), -EBADMSG);
	cr_assert(strstr(fx.err, "version 0"), "%s", fx.err);
}

Test(vm_state, rejects_unknown_header_flags)
{
	save_created_vm();
	le32_encode(fx.blob + 8, 1);
	blob_fix(fx.blob, fx.len);
	cr_assert_eq(load_into_shell(fx.blob, fx.len), -EPROTONOSUPPORT);
}

Test(vm_state, rejects_a_bad_checksum_anywhere)
{
	struct vm_state_info info;

	save_created_vm();
	for (size_t at = 0; at < fx.len; at += 97) {
		uint8_t *b = blob_copy(0);

		b[at] ^= 0x20;
		cr_assert_lt(vm_state_peek(b, fx.len, &info, fx.err, sizeof(fx.err)), 0,
			     "a flipped bit at %zu went unnoticed", at);
		free(b);
	}
	fx.blob[fx.len / 2] ^= 1;
	cr_assert_eq(load_into_shell(fx.blob, fx.len), -EBADMSG);
	cr_assert(strstr(fx.err, "checksum"), "%s", fx.err);
}

/* Cut at every record boundary and inside each header: the length check catches it. */
Test(vm_state, rejects_truncation_at_each_boundary)
{
	struct vm_state_info info;
	unsigned n;

	save_created_vm();
	record_at(fx.blob, fx.len, 0, &n);
	for (unsigned i = 0; i <= n; i++) {
		size_t at = i < n ? record_at(fx.blob, fx.len, i, NULL) : fx.len - VS_TRAILER_BYTES;
		size_t cuts[] = { at, at + 3, at + VS_RECORD_HEADER_BYTES - 1 };

		for (unsigned c = 0; c < 3; c++) {
			if (cuts[c] >= fx.len)
				continue;
			cr_assert_eq(vm_state_peek(fx.blob, cuts[c], &info, fx.err, sizeof(fx.err)),
				     -EBADMSG, "cut at %zu accepted", cuts[c]);
		}
	}
	for (size_t cut = 0; cut <= VS_HEADER_BYTES; cut++)
		cr_assert_lt(vm_state_peek(fx.blob, cut, &info, fx.err, sizeof(fx.err)), 0);
	cr_assert_eq(load_into_shell(fx.blob, fx.len - 1), -EBADMSG);
	cr_assert(strstr(fx.err, "truncated"), "%s", fx.err);
}

/* Cut at a record boundary with the header and CRC made to agree: a record is missing. */
Test(vm_state, rejects_a_consistent_blob_missing_records)
{
	unsigned n;
	size_t at;

	save_created_vm();
	record_at(fx.blob, fx.len, 0, &n);
	at = record_at(fx.blob, fx.len, n - 1, NULL);
	memmove(fx.blob + at, fx.blob + fx.len - 4, 4);
	blob_fix(fx.blob, at + 4);
	cr_assert_eq(load_into_shell(fx.blob, at + 4), -EBADMSG);
	cr_assert(strstr(fx.err, "lacks"), "%s", fx.err);
}

/* Append a record of type before the trailer. */
static size_t blob_add_record(uint8_t *b, uint16_t type, uint32_t len)
{
	size_t at = fx.len - VS_TRAILER_BYTES;

	b[at] = (uint8_t)type;
	b[at + 1] = (uint8_t)(type >> 8);
	b[at + 2] = b[at + 3] = 0;
	le32_encode(b + at + 4, len);
	memset(b + at + 8, 0xab, len);
	blob_fix(b, fx.len + 8 + len);
	return fx.len + 8 + len;
}

Test(vm_state, rejects_an_unknown_mandatory_record)
{
	uint8_t *b;
	size_t len;

	save_created_vm();
	b = blob_copy(64);
	len = blob_add_record(b, 0x7777, 16);
	cr_assert_eq(load_into_shell(b, len), -EPROTONOSUPPORT);
	cr_assert(strstr(fx.err, "type 30583"), "%s", fx.err);
	cr_assert(strstr(fx.err, "upgrade godwit"), "%s", fx.err);
	free(b);
}

Test(vm_state, skips_an_unknown_optional_record)
{
	uint8_t *b;
	size_t len;

	save_created_vm();
	b = blob_copy(64);
	len = blob_add_record(b, VS_REC_OPTIONAL | 0x777, 16);
	cr_assert_eq(load_into_shell(b, len), 0, "%s", fx.err);
	free(b);
}

Test(vm_state, rejects_type_zero_reserved_bits_and_duplicates)
{
	uint8_t *b;
	size_t len;

	save_created_vm();
	b = blob_copy(64);
	len = blob_add_record(b, 0, 4);
	cr_assert_eq(load_into_shell(b, len), -EBADMSG);
	cr_assert(strstr(fx.err, "invalid record"), "%s", fx.err);
	len = blob_add_record(b, VS_REC_PM, 6);
	cr_assert_eq(load_into_shell(b, len), -EBADMSG);
	cr_assert(strstr(fx.err, "twice"), "%s", fx.err);
	free(b);
	b = blob_copy(0);
	b[VS_HEADER_BYTES + 2] = 1; /* the machine record's reserved field */
	blob_fix(b, fx.len);
	cr_assert_eq(load_into_shell(b, fx.len), -EBADMSG);
	free(b);
}

Test(vm_state, rejects_a_record_length_past_the_end)
{
	unsigned n;

	save_created_vm();
	record_at(fx.blob, fx.len, 0, &n);
	for (unsigned i = 0; i < n; i++) {
		uint8_t *b = blob_copy(0);
		size_t at = record_at(b, fx.len, i, NULL);

		le32_encode(b + at + 4, le32_decode(b + at + 4) + (uint32_t)fx.len);
		blob_fix(b, fx.len);
		cr_assert_eq(load_into_shell(b, fx.len), -EBADMSG, "record %u", i);
		le32_encode(b + at + 4, 0xffffffffu);
		blob_fix(b, fx.len);
		cr_assert_eq(load_into_shell(b, fx.len), -EBADMSG, "record %u", i);
		free(b);
	}
}

/* A payload whose counts exceed their limits, with everything else consistent. */
Test(vm_state, rejects_counts_past_their_limits)
{
	uint8_t *b;
	size_t at;

	save_created_vm();
	b = blob_copy(0);
	at = record_at(b, fx.len, 1, NULL); /* CPUID: count first */
	cr_assert_eq(b[at], VS_REC_CPUID);
	le32_encode(b + at + 8, CPUID_MAX_ENTRIES + 1);
	blob_fix(b, fx.len);
	cr_assert_eq(load_into_shell(b, fx.len), -EBADMSG);
	cr_assert(strstr(fx.err, "CPUID"), "%s", fx.err);
	free(b);
}

Test(vm_state, rejects_a_machine_that_differs)
{
	struct vm *vm;

	tvm_make_disk(fx.disk, DISK_BYTES);
	save_created_vm();
	vm = shell(1, RAM_BYTES * 2, NULL);
	cr_assert_eq(vm_state_load(vm, fx.blob, fx.len, fx.err, sizeof(fx.err)), -EINVAL);
	cr_assert(strstr(fx.err, "128 MiB") && strstr(fx.err, "256 MiB"), "%s", fx.err);
	vm_destroy(vm);
	vm = shell(2, RAM_BYTES, NULL);
	cr_assert_eq(vm_state_load(vm, fx.blob, fx.len, fx.err, sizeof(fx.err)), -EINVAL);
	cr_assert(strstr(fx.err, "1 vCPUs") && strstr(fx.err, "has 2"), "%s", fx.err);
	vm_destroy(vm);
	vm = shell(1, RAM_BYTES, fx.disk);
	cr_assert_eq(vm_state_load(vm, fx.blob, fx.len, fx.err, sizeof(fx.err)), -EINVAL);
	cr_assert(strstr(fx.err, "disk"), "%s", fx.err);
	vm_destroy(vm);
}

Test(vm_state, save_refuses_a_running_vm_and_load_a_started_one)
{
	uint8_t *b;
	size_t len;

	guest_create(1, "mb=1 rate=0", NULL);
	save();
	cr_assert_eq(vm_start(fx.vm), 0);
	cr_assert_eq(vm_state_save(fx.vm, &b, &len), -EBUSY);
	cr_assert_eq(vm_state_load(fx.vm, fx.blob, fx.len, fx.err, sizeof(fx.err)), -EBUSY);
	cr_assert_eq(vm_pause(fx.vm), 0);
	cr_assert_eq(vm_state_save(fx.vm, &b, &len), 0);
	free(b);
	cr_assert_eq(vm_resume(fx.vm), 0);
	cr_assert_eq(vm_state_save(fx.vm, &b, &len), -EBUSY);
}

/* ---- clocks ------------------------------------------------------------------------- */

static uint64_t tsc_of(const uint8_t *blob, size_t len, unsigned vcpu)
{
	uint64_t tsc = 0;

	cr_assert_eq(vs_blob_msr(blob, len, vcpu, 0x10 /* IA32_TSC */, &tsc), 0);
	return tsc;
}

static uint64_t clock_of(const uint8_t *blob, size_t len)
{
	struct vs_record rec;

	cr_assert_eq(vs_blob_find(blob, len, VS_REC_CLOCK, &rec, fx.err, sizeof(fx.err)), 0);
	return le64_decode(rec.payload);
}

/* struct kvm_msrs with room for one entry. */
struct one_msr {
	union {
		struct kvm_msrs hdr;
		uint8_t storage[sizeof(struct kvm_msrs) + sizeof(struct kvm_msr_entry)];
	};
};

static uint64_t tsc_read(int fd)
{
	struct one_msr m = { .hdr.nmsrs = 1 };

	m.hdr.entries[0].index = 0x10;
	cr_assert_eq(ioctl(fd, KVM_GET_MSRS, &m.hdr), 1);
	return m.hdr.entries[0].data;
}

/*
 * Can this KVM give a guest a TSC of its own? PVM cannot: the guest reads the host's TSC
 * and writes of IA32_TSC are taken and ignored. Probed on a shell before its load.
 */
static bool tsc_can_be_set(struct vm *vm)
{
	struct one_msr m = { .hdr.nmsrs = 1 };
	uint64_t before = tsc_read(vm->vcpu[0].fd);

	m.hdr.entries[0].index = 0x10;
	m.hdr.entries[0].data = before + (1ULL << 40);
	cr_assert_eq(ioctl(vm->vcpu[0].fd, KVM_SET_MSRS, &m.hdr), 1);
	return tsc_read(vm->vcpu[0].fd) - before > (1ULL << 39);
}

/*
 * Loaded 300 ms after the save and saved again at once, every vCPU's TSC and kvmclock
 * have moved forward, and where KVM can set a guest's TSC, by a little, not by the
 * 300 ms the VM spent saved: time resumes where it stopped. The vCPUs stay together.
 */
Test(vm_state, tsc_and_kvmclock_resume_where_they_stopped)
{
	uint64_t khz, t0[2], t1[2], gap_ticks;
	uint8_t *again;
	size_t again_len;
	struct vm *vm;
	bool settable;

	save_running_guest(2, NULL);
	khz = fx.vm->caps.tsc_khz;
	cr_assert_gt(khz, 0);
	gap_ticks = khz * 100; /* 100 ms */
	tvm_vm_gone(&fx.vm);
	usleep(300000);
	vm = shell(2, RAM_BYTES, NULL);
	settable = tsc_can_be_set(vm);
	cr_assert_eq(vm_state_load(vm, fx.blob, fx.len, fx.err, sizeof(fx.err)), 0, "%s", fx.err);
	cr_assert_eq(vm_state_save(vm, &again, &again_len), 0);
	for (unsigned i = 0; i < 2; i++) {
		t0[i] = tsc_of(fx.blob, fx.len, i);
		t1[i] = tsc_of(again, again_len, i);
		cr_assert_geq(t1[i], t0[i], "vCPU %u TSC went back", i);
		if (settable)
			cr_assert_lt(t1[i] - t0[i], gap_ticks, "vCPU %u TSC counted the time saved: +%"
				     PRIu64 " ticks", i, t1[i] - t0[i]);
		else
			cr_log_info("this KVM pins the guest TSC to the host's: +%" PRIu64 " ticks",
				    t1[i] - t0[i]);
	}
	cr_assert_lt(t1[1] > t1[0] ? t1[1] - t1[0] : t1[0] - t1[1], gap_ticks,
		     "the vCPUs' TSCs drifted apart");
	cr_assert_geq(clock_of(again, again_len), clock_of(fx.blob, fx.len));
	cr_assert_lt(clock_of(again, again_len) - clock_of(fx.blob, fx.len), 100000000ULL,
		     "kvmclock counted the time saved");
	free(again);
	vm_destroy(vm);
}

/* ---- CPU features ----------------------------------------------------------------- */

/* Set leaf 7.0 EBX bit (a feature in cpuid.c's table) in the blob's CPUID record. */
static bool blob_claim_leaf7_ebx(uint8_t *b, size_t len, unsigned bitno)
{
	size_t at = record_at(b, len, 1, NULL) + VS_RECORD_HEADER_BYTES;
	uint32_t n = le32_decode(b + at);

	for (uint32_t i = 0; i < n; i++) {
		uint8_t *e = b + at + 4 + 28 * i;

		if (le32_decode(e) == 7 && le32_decode(e + 4) == 0) {
			le32_encode(e + 16, le32_decode(e + 16) | 1u << bitno);
			blob_fix(b, len);
			return true;
		}
	}
	return false;
}

Test(vm_state, check_cpu_names_features_this_host_lacks)
{
	struct { const char *name; unsigned bit; } candidates[] = {
		{ "avx512f", 16 }, { "sha", 29 }, { "avx512ifma", 21 }, { "rtm", 11 },
		{ "hle", 4 },
	};
	struct cpuid_table *host = calloc(1, sizeof(*host));
	const char *missing = NULL;
	unsigned bitno = 0;

	save_created_vm();
	cr_assert_eq(vm_state_check_cpu(fx.blob, fx.len, fx.err, sizeof(fx.err)), 0, "%s",
		     fx.err);
	host->hdr.nent = CPUID_MAX_ENTRIES;
	cr_assert_eq(ioctl(fx.vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, &host->hdr), 0);
	for (unsigned i = 0; i < sizeof(candidates) / sizeof(candidates[0]) && !missing; i++) {
		for (uint32_t k = 0; k < host->hdr.nent; k++) {
			const struct kvm_cpuid_entry2 *e = &host->hdr.entries[k];

			if (e->function == 7 && e->index == 0 &&
			    !(e->ebx >> candidates[i].bit & 1)) {
				missing = candidates[i].name;
				bitno = candidates[i].bit;
			}
		}
	}
	free(host);
	if (!missing)
		cr_skip_test("this host has every candidate feature");
	cr_assert(blob_claim_leaf7_ebx(fx.blob, fx.len, bitno));
	cr_assert_eq(vm_state_check_cpu(fx.blob, fx.len, fx.err, sizeof(fx.err)), -ENOTSUP);
	cr_assert(strstr(fx.err, "CPU features missing on this host: ") && strstr(fx.err, missing),
		  "%s", fx.err);
	cr_assert_eq(load_into_shell(fx.blob, fx.len), -ENOTSUP);
	cr_assert(strstr(fx.err, missing), "%s", fx.err);
}
