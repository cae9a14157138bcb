/* Restores across processes: saved or pre-copied guests go on; the disk log survives. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/common/gw_test.h"
#include "tests/vmm/vm_helpers.h"
#include "vmm/state/state_priv.h"
#include "vmm/vm_priv.h"
#include "vmm/vm_state.h"

#define MIB (1ULL << 20)
#define RAM_BYTES (128 * MIB)
#define DISK_BYTES (16 * MIB)
#define BOOT_MS 60000
#define MSR_IA32_TSC 0x10

static struct {
	char dir[64];
	char console[128], console2[128];
	char disk[128];
	char blob_path[128], ram_path[128], err_path[128];
	int console_fd;
	bool ring;               /* the dirty backend of the VMs guest_create makes */
	const char *cpu_features; /* and their CPUID policy */
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
	snprintf(fx.console2, sizeof(fx.console2), "%s/console2.log", fx.dir);
	snprintf(fx.disk, sizeof(fx.disk), "%s/disk.img", fx.dir);
	snprintf(fx.blob_path, sizeof(fx.blob_path), "%s/state.blob", fx.dir);
	snprintf(fx.ram_path, sizeof(fx.ram_path), "%s/ram.bin", fx.dir);
	snprintf(fx.err_path, sizeof(fx.err_path), "%s/child.err", fx.dir);
}

static void teardown(void)
{
	tvm_vm_gone(&fx.vm);
	if (fx.console_fd >= 0)
		close(fx.console_fd);
	free(fx.blob);
	tvm_dir_remove(fx.dir);
}

TestSuite(vm_restore, .init = setup, .fini = teardown, .timeout = 300);

static struct vm_config config(unsigned ncpus, const char *cmdline, const char *disk, int fd)
{
	return (struct vm_config){
		.kernel_path = TEST_GUEST_ELF, .cmdline = cmdline, .ram_bytes = RAM_BYTES,
		.ncpus = ncpus, .disk_path = disk, .console_fd = fd, .dirty_ring = fx.ring,
		.cpu_features = fx.cpu_features,
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

/* ---- save in one process, continue in another --------------------------------------- */

/* Every RAM region, back to back, to fx.ram_path. */
static void ram_dump(struct vm *vm)
{
	int fd = open(fx.ram_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	cr_assert_geq(fd, 0);
	for (unsigned i = 0; i < vm_ram_nregions(vm); i++) {
		struct vm_ram_region r;

		vm_ram_region(vm, i, &r);
		cr_assert_eq(write(fd, r.hva, r.bytes), (ssize_t)r.bytes);
	}
	close(fd);
}

/* In a forked child: report why it gave up, for the parent's message. */
static void child_fail(const char *what, int rc, const char *err)
{
	FILE *f = fopen(fx.err_path, "w");

	if (f) {
		fprintf(f, "%s: %s (%s)\n", what, strerror(-rc), err ? err : "");
		fclose(f);
	}
	_exit(1);
}

/*
 * The restoring process: a shell like the saved VM, RAM and state from files, run until
 * three heartbeats, then pause and save again (for the TSC check) to fx.blob_path.2.
 * Criterion's asserts do not belong in a forked child: failures go to fx.err_path.
 */
static void child_restore(unsigned ncpus, const char *disk)
{
	struct vm_config cfg = config(ncpus, NULL, disk, -1);
	char err[256] = "", path[160];
	size_t len, off = 0;
	uint8_t *blob, *ram, *again;
	struct vm *vm;
	int rc;

	cfg.kernel_path = NULL;
	cfg.cpu_features = NULL; /* the shell's own policy: the blob's CPUID must replace it */
	cfg.console_fd = open(fx.console2, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	rc = vm_create_for_restore(&vm, &cfg, err, sizeof(err));
	if (rc < 0)
		child_fail("vm_create_for_restore", rc, err);
	ram = tvm_file_get(fx.ram_path, &len);
	if (len != RAM_BYTES)
		child_fail("RAM file", -EINVAL, "wrong size");
	for (unsigned i = 0; i < vm_ram_nregions(vm); i++) {
		struct vm_ram_region r;

		vm_ram_region(vm, i, &r);
		memcpy(r.hva, ram + off, r.bytes);
		off += r.bytes;
	}
	free(ram);
	blob = tvm_file_get(fx.blob_path, &len);
	rc = vm_state_load(vm, blob, len, err, sizeof(err));
	if (rc < 0)
		child_fail("vm_state_load", rc, err);
	rc = vm_start(vm);
	if (rc < 0)
		child_fail("vm_start", rc, NULL);
	if (!tvm_wait_lines(fx.console2, "HB ", 3, BOOT_MS))
		child_fail("heartbeats after restore", -ETIMEDOUT, NULL);
	rc = vm_pause(vm);
	if (rc == 0)
		rc = vm_state_save(vm, &again, &len);
	if (rc < 0)
		child_fail("pause and save again", rc, NULL);
	snprintf(path, sizeof(path), "%s.2", fx.blob_path);
	tvm_file_put(path, again, len);
	vm_request_stop(vm);
	vm_wait(vm, NULL);
	vm_destroy(vm);
	_exit(0);
}

static uint64_t blob_tsc(const uint8_t *blob, size_t len, unsigned vcpu)
{
	uint64_t tsc = 0;

	cr_assert_eq(vs_blob_msr(blob, len, vcpu, MSR_IA32_TSC, &tsc), 0);
	return tsc;
}

static uint64_t blob_clock(const uint8_t *blob, size_t len)
{
	struct vs_record rec;

	cr_assert_eq(vs_blob_find(blob, len, VS_REC_CLOCK, &rec, fx.err, sizeof(fx.err)), 0);
	return le64_decode(rec.payload);
}

/*
 * What a live migration does with vm_state.h: copy all of RAM while the guest runs, then
 * whatever each fetch reports, pause, copy the last dirty pages. The copy, not the
 * paused RAM, goes to fx.ram_path, after checking it equals the paused RAM.
 */
static void precopy_dump(struct vm *vm, unsigned rounds)
{
	uint8_t *copy = malloc(RAM_BYTES);
	uint64_t *bm = malloc(RAM_BYTES / VM_PAGE_BYTES / 8);
	struct vm_dirty_consumer *c;
	size_t off;

	cr_assert(copy && bm);
	cr_assert_eq(vm_dirty_register(vm, &c), 0);
	for (unsigned n = 0; n <= rounds; n++) {
		if (n == rounds)
			cr_assert_eq(vm_pause(vm), 0);
		else if (n > 0)
			usleep(30000);
		off = 0;
		for (unsigned i = 0; i < vm_ram_nregions(vm); i++) {
			struct vm_ram_region r;

			vm_ram_region(vm, i, &r);
			memset(bm, 0, r.bytes / VM_PAGE_BYTES / 8);
			cr_assert_eq(vm_dirty_fetch(c, i, bm), 0);
			for (uint64_t pg = 0; pg < r.bytes / VM_PAGE_BYTES; pg++) {
				if (bm[pg / 64] >> (pg % 64) & 1)
					memcpy(copy + off + pg * VM_PAGE_BYTES,
					       r.hva + pg * VM_PAGE_BYTES, VM_PAGE_BYTES);
			}
			off += r.bytes;
		}
	}
	off = 0;
	for (unsigned i = 0; i < vm_ram_nregions(vm); i++) {
		struct vm_ram_region r;

		vm_ram_region(vm, i, &r);
		for (uint64_t pg = 0; pg < r.bytes / VM_PAGE_BYTES; pg++)
			cr_assert_arr_eq(copy + off + pg * VM_PAGE_BYTES, r.hva + pg * VM_PAGE_BYTES,
					 VM_PAGE_BYTES, "page %#llx of region %u: a lost write",
					 (unsigned long long)pg, i);
		off += r.bytes;
	}
	vm_dirty_unregister(c);
	tvm_file_put(fx.ram_path, copy, RAM_BYTES);
	free(bm);
	free(copy);
}

/*
 * Run the test guest, capture it (paused RAM, or a pre-copy of precopy_rounds rounds),
 * save its state, destroy it, and check that a forked process carries it on.
 */
static void save_then_restore_elsewhere(unsigned ncpus, const char *disk,
					unsigned precopy_rounds)
{
	struct gw_hb before, first, last;
	char line[256], path[160];
	uint8_t *again;
	size_t again_len;
	pid_t pid;
	int status;

	/* A pre-copied guest rewrites 16 MiB at 64 MiB/s and re-checks pages as it goes. */
	guest_create(ncpus, precopy_rounds ? "mb=16 rate=64 verify=1" : "mb=4 rate=4", disk);
	cr_assert_eq(vm_start(fx.vm), 0);
	cr_assert(tvm_wait_lines(fx.console, "HB ", 2, BOOT_MS), "no heartbeats");
	if (precopy_rounds) {
		precopy_dump(fx.vm, precopy_rounds);
	} else {
		cr_assert_eq(vm_pause(fx.vm), 0);
		ram_dump(fx.vm);
	}
	save();
	cr_assert(tvm_last_line(fx.console, "HB ", line, sizeof(line)));
	cr_assert(gw_parse_hb(line, &before), "%s", line);
	cr_assert_eq(before.errors, 0, "%s", line);
	tvm_file_put(fx.blob_path, fx.blob, fx.len);
	/* The saved VM is gone, threads and all, before the other process starts. */
	tvm_vm_gone(&fx.vm);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0)
		child_restore(ncpus, disk);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "restoring process failed: %s",
		  gw_read_file(fx.err_path));
	cr_assert(tvm_wait_lines(fx.console2, "HB ", 1, 0));
	/* The first complete heartbeat after the restore is the next one (or the one after,
	 * if the pause cut a line in half). */
	cr_assert(gw_wait_line(NULL, fx.console2, "HB ", 1, line, sizeof(line), 0));
	cr_assert(gw_parse_hb(line, &first), "%s", line);
	cr_assert_str_eq(first.id, before.id, "boot id changed: %s", line);
	cr_assert(first.counter == before.counter + 1 || first.counter == before.counter + 2,
		  "heartbeat %" PRIu64 " then %" PRIu64, before.counter, first.counter);
	cr_assert(tvm_last_line(fx.console2, "HB ", line, sizeof(line)));
	cr_assert(gw_parse_hb(line, &last), "%s", line);
	cr_assert_str_eq(last.id, before.id);
	cr_assert_gt(last.counter, first.counter);
	cr_assert_eq(last.errors, 0, "the restored guest found corrupt pages: %s", line);
	cr_assert_eq(gw_count_lines(fx.console2, "GUEST "), 0, "%s", gw_read_file(fx.console2));
	if (ncpus > 1) {
		char prev[256];
		const char *ap0, *ap1;

		cr_assert(tvm_last_line(fx.console, "HB ", prev, sizeof(prev)));
		ap0 = strstr(prev, " ap=");
		ap1 = strstr(line, " ap=");
		cr_assert(ap0 && ap1);
		cr_assert_gt(strtoull(ap1 + 4, NULL, 10), strtoull(ap0 + 4, NULL, 10),
			     "the AP stopped counting: %s then %s", prev, line);
	}
	/* Guest time went on from where it stopped: TSC and kvmclock both moved forward. */
	snprintf(path, sizeof(path), "%s.2", fx.blob_path);
	again = tvm_file_get(path, &again_len);
	for (unsigned i = 0; i < ncpus; i++) {
		uint64_t t0 = blob_tsc(fx.blob, fx.len, i), t1 = blob_tsc(again, again_len, i);

		cr_assert_gt(t1, t0, "vCPU %u TSC went back: %" PRIu64 " -> %" PRIu64, i, t0, t1);
		cr_assert_lt(t1 - t0, 120ULL * 10000000000ULL, "vCPU %u TSC jumped", i);
	}
	cr_assert_gt(blob_clock(again, again_len), blob_clock(fx.blob, fx.len));
	free(again);
}

Test(vm_restore, one_vcpu_guest_continues_in_another_process)
{
	save_then_restore_elsewhere(1, NULL, 0);
}

Test(vm_restore, two_vcpu_guest_continues_in_another_process)
{
	save_then_restore_elsewhere(2, NULL, 0);
}

Test(vm_restore, guest_with_a_disk_continues_in_another_process)
{
	tvm_make_disk(fx.disk, DISK_BYTES);
	save_then_restore_elsewhere(1, fx.disk, 0);
}

/* What the Linux guests here run with: no XSAVE, so the FPU state has only x87 and SSE. */
Test(vm_restore, guest_under_the_pvm_test_cpu_policy_continues_in_another_process)
{
	fx.cpu_features = "pvm-test";
	save_then_restore_elsewhere(2, NULL, 0);
}

Test(vm_restore, guest_precopied_with_the_bitmap_continues_in_another_process)
{
	save_then_restore_elsewhere(2, NULL, 8);
}

Test(vm_restore, guest_precopied_with_the_ring_continues_in_another_process)
{
	fx.ring = true;
	save_then_restore_elsewhere(2, NULL, 8);
}

/* ---- the disk change log --------------------------------------------------------------- */

#define LOG_WORDS ((DISK_BYTES / VM_DISK_BLOCK_BYTES + 63) / 64)
/* disk=w:1000:64 writes sectors 1000..1063: bytes 512000..544767, blocks 7 and 8. */
#define GUEST_WRITES "mb=1 rate=0 disk=w:1000:64:0x5eed poweroff=2"

static void log_fetch(struct vm *vm, uint64_t bm[LOG_WORDS], const char *base)
{
	memset(bm, 0, LOG_WORDS * sizeof(uint64_t));
	cr_assert_eq(vm_disk_log_fetch(vm, bm, base), 0);
}

/* bm holds exactly the blocks in [first, last] (none when first > last). */
static void assert_blocks(const uint64_t bm[LOG_WORDS], uint64_t first, uint64_t last)
{
	for (uint64_t b = 0; b < DISK_BYTES / VM_DISK_BLOCK_BYTES; b++)
		cr_assert_eq(bm[b / 64] >> (b % 64) & 1, b >= first && b <= last,
			     "block %" PRIu64, b);
}

/* Boot the guest (it writes blocks 7 and 8, then powers off) and wait for it to end. */
static void run_writing_guest(const char *base)
{
	uint64_t bm[LOG_WORDS];
	struct vm_exit_info info;

	tvm_make_disk(fx.disk, DISK_BYTES);
	guest_create(1, GUEST_WRITES, fx.disk);
	log_fetch(fx.vm, bm, base);
	cr_assert_eq(vm_start(fx.vm), 0);
	cr_assert(tvm_wait_lines(fx.console, "GUEST poweroff", 1, BOOT_MS), "%s",
		  gw_read_file(fx.console));
	cr_assert_eq(vm_wait(fx.vm, &info), 0);
	cr_assert_eq(info.kind, VM_EXIT_POWEROFF);
	cr_assert_eq(gw_count_lines(fx.console, "DISK W lba=1000 n=64 status=0"), 1, "%s",
		     gw_read_file(fx.console));
}

Test(vm_restore, disk_log_records_the_blocks_the_guest_writes)
{
	uint64_t bm[LOG_WORDS];

	tvm_make_disk(fx.disk, DISK_BYTES);
	guest_create(1, GUEST_WRITES, fx.disk);
	cr_assert(vm_disk_present(fx.vm));
	cr_assert_str_eq(vm_disk_path(fx.vm), fx.disk);
	cr_assert_eq(vm_disk_bytes(fx.vm), DISK_BYTES);
	cr_assert(!vm_disk_log_valid(fx.vm, ""), "a new image has no history to trust");
	log_fetch(fx.vm, bm, "snap-0");
	assert_blocks(bm, 0, DISK_BYTES / VM_DISK_BLOCK_BYTES - 1); /* invalid: everything */
	cr_assert(vm_disk_log_valid(fx.vm, "snap-0"));
	cr_assert(!vm_disk_log_valid(fx.vm, "snap-1"));
	cr_assert_eq(vm_start(fx.vm), 0);
	cr_assert(tvm_wait_lines(fx.console, "GUEST poweroff", 1, BOOT_MS));
	cr_assert_eq(vm_wait(fx.vm, NULL), 0);
	log_fetch(fx.vm, bm, "snap-1");
	assert_blocks(bm, 7, 8);
	cr_assert(vm_disk_log_valid(fx.vm, "snap-1"));
	log_fetch(fx.vm, bm, "snap-2");
	assert_blocks(bm, 1, 0);
	memset(bm, 0, sizeof(bm));
	cr_assert_eq(vm_disk_log_fetch(fx.vm, bm, "a-base-id-longer-than-sixty-four-bytes-is-"
				       "refused-so-it-always-fits-the-sidecar"), -ENAMETOOLONG);
	cr_assert(vm_disk_log_valid(fx.vm, "snap-2"), "a refused fetch changes nothing");
}

Test(vm_restore, disk_log_survives_a_clean_restart)
{
	uint64_t bm[LOG_WORDS];
	struct vm *vm;
	char sidecar[160];

	run_writing_guest("snap-1");
	tvm_vm_gone(&fx.vm); /* a clean exit writes the sidecar */
	snprintf(sidecar, sizeof(sidecar), "%s.gwlog", fx.disk);
	cr_assert_eq(access(sidecar, F_OK), 0, "no sidecar beside the image");
	vm = shell(1, RAM_BYTES, fx.disk);
	cr_assert(vm_disk_log_valid(vm, "snap-1"), "the log did not survive a clean restart");
	cr_assert(!vm_disk_log_valid(vm, "snap-0"));
	log_fetch(vm, bm, "snap-2");
	assert_blocks(bm, 7, 8);
	vm_destroy(vm);
	vm = shell(1, RAM_BYTES, fx.disk);
	cr_assert(vm_disk_log_valid(vm, "snap-2"));
	log_fetch(vm, bm, "snap-3");
	assert_blocks(bm, 1, 0);
	vm_destroy(vm);
}

Test(vm_restore, disk_log_is_invalid_after_a_crash)
{
	uint64_t bm[LOG_WORDS];
	struct vm *vm;
	int pipefd[2];
	char c;
	pid_t pid;

	run_writing_guest("snap-1");
	tvm_vm_gone(&fx.vm);
	cr_assert_eq(pipe(pipefd), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct vm_config cfg = config(1, NULL, fx.disk, -1);
		char err[256];

		cfg.kernel_path = NULL;
		if (vm_create_for_restore(&vm, &cfg, err, sizeof(err)) < 0)
			_exit(1);
		if (write(pipefd[1], "r", 1) != 1)
			_exit(1);
		for (;;)
			pause(); /* holding the VM and its disk until killed */
	}
	close(pipefd[1]);
	cr_assert_eq(read(pipefd[0], &c, 1), 1, "the child could not open the VM");
	close(pipefd[0]);
	cr_assert_eq(kill(pid, SIGKILL), 0);
	cr_assert_eq(waitpid(pid, NULL, 0), pid);
	vm = shell(1, RAM_BYTES, fx.disk);
	cr_assert(!vm_disk_log_valid(vm, "snap-1"), "a log that outlived a crash was trusted");
	log_fetch(vm, bm, "snap-2");
	assert_blocks(bm, 0, DISK_BYTES / VM_DISK_BLOCK_BYTES - 1);
	vm_destroy(vm);
}

Test(vm_restore, disk_log_is_invalid_after_the_image_changes_offline)
{
	uint8_t sector[512];
	struct vm *vm;
	int fd;

	run_writing_guest("snap-1");
	tvm_vm_gone(&fx.vm);
	vm = shell(1, RAM_BYTES, fx.disk);
	cr_assert(vm_disk_log_valid(vm, "snap-1"));
	vm_destroy(vm);
	usleep(20000); /* past the filesystem's timestamp granularity */
	fd = open(fx.disk, O_WRONLY);
	cr_assert_geq(fd, 0);
	memset(sector, 0x77, sizeof(sector));
	cr_assert_eq(pwrite(fd, sector, sizeof(sector), 4096), (ssize_t)sizeof(sector));
	close(fd);
	vm = shell(1, RAM_BYTES, fx.disk);
	cr_assert(!vm_disk_log_valid(vm, "snap-1"), "an image written offline kept its log");
	vm_destroy(vm);
}

/* ---- an exit in flight at pause --------------------------------------------------- */

/*
 * A guest that writes 0, 1, 2, ... to COM1 and reads the line status after each byte,
 * one exit per port access:
 *
 *        xor %ebx, %ebx
 * loop:  mov $0x3f8, %dx ; mov %bl, %al ; out %al, %dx ; inc %ebx
 *        mov $0x3fd, %dx ; in (%dx), %al ; jmp loop
 *
 * It runs at CPL 3 with IOPL 3 (enter_cpl3 sets that up from the host), where PVM runs
 * it natively and leaves an IN unfinished until KVM_RUN is entered again (its CPL-0
 * emulator would finish both before exiting).
 */
static const uint8_t counting_code[] = {
	0x31, 0xdb, 0x66, 0xba, 0xf8, 0x03, 0x88, 0xd8, 0xee, 0x43, 0x66, 0xba,
	0xfd, 0x03, 0xec, 0xeb, 0xf1,
};

/* Flat 32-bit ring-3 segments, IOPL 3, at the PVH entry point. */
static void enter_cpl3(struct vm *vm)
{
	struct kvm_sregs s;
	struct kvm_regs r;
	struct kvm_segment data;
	int fd = vm->vcpu[0].fd;

	cr_assert_eq(ioctl(fd, KVM_GET_SREGS, &s), 0);
	cr_assert_eq(ioctl(fd, KVM_GET_REGS, &r), 0);
	s.cs.selector = 0x13;
	s.cs.dpl = 3;
	data = s.ds;
	data.selector = 0x1b;
	data.dpl = 3;
	s.ds = s.es = s.fs = s.gs = s.ss = data;
	r.rflags = 0x3002; /* IOPL 3 */
	r.rsp = 0x1f0000;
	cr_assert_eq(ioctl(fd, KVM_SET_SREGS, &s), 0);
	cr_assert_eq(ioctl(fd, KVM_SET_REGS, &r), 0);
}

/*
 * KVM finishes a port access (moves RIP on, and for an IN loads AL) only when KVM_RUN is
 * entered again. A vCPU paused right after the VMM handled the exit, and saved then,
 * would repeat the access after the restore: a read that clears what it reads (the
 * virtio ISR, a UART's receive buffer) would lose it. Here pauses mostly land in such
 * exits, since the guest does little else: after each, nothing may be left half done,
 * and across saves and restores the console counts on without a repeat or a gap.
 */
Test(vm_restore, a_paused_vcpu_has_finished_its_port_access)
{
	char elf[128];
	uint8_t *ram = malloc(RAM_BYTES), *out;
	size_t len;

	cr_assert_not_null(ram);
	require_kvm();
	snprintf(elf, sizeof(elf), "%s/count.elf", fx.dir);
	tvm_write_pvh_elf(elf, counting_code, sizeof(counting_code));
	fx.console_fd = open(fx.console, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	for (unsigned round = 0; round < 6; round++) {
		struct vm_config cfg = config(1, NULL, NULL, fx.console_fd);
		struct vm_ram_region r;

		cfg.kernel_path = elf;
		if (round == 0) {
			cr_assert_eq(vm_create(&fx.vm, &cfg, fx.err, sizeof(fx.err)), 0, "%s", fx.err);
			enter_cpl3(fx.vm);
		} else {
			cfg.kernel_path = NULL;
			cr_assert_eq(vm_create_for_restore(&fx.vm, &cfg, fx.err, sizeof(fx.err)), 0);
			vm_ram_region(fx.vm, 0, &r);
			memcpy(r.hva, ram, r.bytes);
			cr_assert_eq(vm_state_load(fx.vm, fx.blob, fx.len, fx.err, sizeof(fx.err)), 0,
				     "%s", fx.err);
		}
		cr_assert_eq(vm_start(fx.vm), 0);
		for (unsigned p = 0; p < 40; p++) {
			usleep(1000);
			cr_assert_eq(vm_pause(fx.vm), 0);
			cr_assert(!fx.vm->vcpu[0].exit_pending, "paused with an exit half done");
			if (p + 1 < 40)
				cr_assert_eq(vm_resume(fx.vm), 0);
		}
		save();
		vm_ram_region(fx.vm, 0, &r);
		memcpy(ram, r.hva, r.bytes);
		tvm_vm_gone(&fx.vm);
	}
	out = tvm_file_get(fx.console, &len);
	cr_assert_gt(len, 1000, "the guest wrote only %zu bytes", len);
	for (size_t i = 0; i < len; i++)
		cr_assert_eq(out[i], (uint8_t)i, "byte %zu is %u: a repeated or lost OUT", i, out[i]);
	free(out);
	free(ram);
}
