/* End-to-end: godwit run boots the test guest on /dev/kvm, and refuses bad input clearly. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/common/gw_test.h"

#define BOOT_MS 60000

static struct gw_proc P;

static void setup(void)
{
	gw_proc_init(&P);
}

static void teardown(void)
{
	gw_proc_cleanup(&P);
}

TestSuite(run, .init = setup, .fini = teardown, .timeout = 180);

/* Boot the test guest with cmdline; extra options (NULL-terminated) are appended. */
static void boot_guest(const char *mem, const char *cpus, const char *cmdline,
		       const char *const *extra)
{
	const char *argv[40] = { "run", "--kernel", TEST_GUEST_ELF, "--mem", mem, "--cpus", cpus,
				 "--cmdline", cmdline, "--console", P.console, "--api", P.api };
	unsigned n = 13;

	for (; extra && *extra && n < 38; extra++)
		argv[n++] = *extra;
	argv[n] = NULL;
	gw_spawn(&P, argv);
}

static void expect_heartbeats(unsigned n, struct gw_hb *last)
{
	char line[256];
	struct gw_hb prev = { 0 };

	for (unsigned i = 1; i <= n; i++) {
		struct gw_hb hb;

		cr_assert(gw_wait_line(&P, P.console, "HB ", i, line, sizeof(line), BOOT_MS),
			  "heartbeat %u never came; stderr: %s", i, gw_read_file(P.err));
		cr_assert(gw_parse_hb(line, &hb), "bad heartbeat line: %s", line);
		cr_assert_eq(hb.errors, 0, "guest found corrupted pages: %s", line);
		if (i > 1) {
			cr_assert_str_eq(hb.id, prev.id, "boot id changed: %s", line);
			cr_assert_gt(hb.counter, prev.counter, "counter did not grow: %s", line);
		}
		prev = hb;
	}
	if (last)
		*last = prev;
}

static void boot_line(char *line, size_t len)
{
	cr_assert(gw_wait_line(&P, P.console, "GUEST boot ", 1, line, len, BOOT_MS),
		  "no boot line; stderr: %s", gw_read_file(P.err));
}

static unsigned field(const char *line, const char *key)
{
	const char *p = strstr(line, key);

	cr_assert_not_null(p, "no %s in: %s", key, line);
	return (unsigned)strtoul(p + strlen(key), NULL, 10);
}

static void quit_and_expect_exit0(void)
{
	char reply[512];

	cr_assert(gw_api(P.api, "{\"cmd\":\"quit\"}", reply, sizeof(reply)), "API quit failed");
	cr_assert(gw_wait_exit(&P, 20000), "godwit did not exit after quit");
	cr_assert(WIFEXITED(P.status) && WEXITSTATUS(P.status) == 0, "exit status %d", P.status);
	cr_assert_eq(access(P.api, F_OK), -1, "API socket left behind after exit");
}

Test(run, boots_test_guest_to_heartbeat_with_one_vcpu)
{
	char line[256];

	require_kvm();
	boot_guest("256M", "1", "mb=8 rate=16", NULL);
	boot_line(line, sizeof(line));
	cr_assert_eq(field(line, "cpus="), 1, "%s", line);
	expect_heartbeats(5, NULL);
	quit_and_expect_exit0();
}

Test(run, boots_test_guest_with_two_vcpus_and_both_run)
{
	char line[256];
	char hb1[256], hb2[256];

	require_kvm();
	boot_guest("256M", "2", "mb=8 rate=16", NULL);
	boot_line(line, sizeof(line));
	cr_assert_eq(field(line, "cpus="), 2, "guest did not start its second vCPU: %s", line);
	expect_heartbeats(3, NULL);
	cr_assert(gw_wait_line(&P, P.console, "HB ", 3, hb1, sizeof(hb1), BOOT_MS));
	cr_assert(gw_wait_line(&P, P.console, "HB ", 6, hb2, sizeof(hb2), BOOT_MS));
	cr_assert_gt(field(hb2, "ap="), field(hb1, "ap="), "the AP stopped running: %s / %s",
		     hb1, hb2);
	quit_and_expect_exit0();
}

Test(run, guest_sees_configured_memory_below_and_above_the_pci_hole)
{
	static const struct { const char *mem; unsigned mib; } cases[] = {
		{ "96M", 96 },
		{ "4608M", 4608 }, /* 3 GiB below the hole, 1.5 GiB above 4 GiB */
		{ "8G", 8192 },
	};
	char line[256];

	require_kvm();
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		unsigned mib;

		gw_proc_cleanup(&P);
		gw_proc_init(&P);
		boot_guest(cases[i].mem, "1", "mb=4 rate=4", NULL);
		boot_line(line, sizeof(line));
		mib = field(line, "mem=");
		/* The e820 map reserves 385 KiB below 1 MiB: the guest rounds down. */
		cr_assert(mib == cases[i].mib || mib == cases[i].mib - 1,
			  "--mem %s but guest sees %u MiB: %s", cases[i].mem, mib, line);
		expect_heartbeats(2, NULL);
		quit_and_expect_exit0();
	}
}

Test(run, guest_poweroff_ends_run_with_exit_zero)
{
	require_kvm();
	boot_guest("128M", "1", "mb=4 rate=4 poweroff=3", NULL);
	cr_assert(gw_wait_exit(&P, BOOT_MS), "godwit still running after guest poweroff");
	cr_assert(WIFEXITED(P.status), "godwit died of signal %d", WTERMSIG(P.status));
	cr_assert_eq(WEXITSTATUS(P.status), 0, "exit status %d; stderr: %s", WEXITSTATUS(P.status),
		     gw_read_file(P.err));
	cr_assert_eq(gw_count_lines(P.console, "GUEST poweroff"), 1);
	cr_assert_eq(gw_count_lines(P.console, "HB "), 3);
}

Test(run, pause_stops_the_heartbeat_and_resume_restarts_it)
{
	char reply[512];
	unsigned before, after;

	require_kvm();
	boot_guest("128M", "2", "mb=4 rate=8", NULL);
	expect_heartbeats(3, NULL);
	cr_assert(gw_api(P.api, "{\"cmd\":\"status\"}", reply, sizeof(reply)));
	cr_assert(strstr(reply, "\"state\":\"running\""), "%s", reply);
	cr_assert(gw_api(P.api, "{\"cmd\":\"pause\"}", reply, sizeof(reply)));
	cr_assert(strstr(reply, "\"ok\":true"), "%s", reply);
	usleep(200000); /* a line being printed at the pause finishes */
	before = gw_count_lines(P.console, "HB ");
	usleep(1000000);
	after = gw_count_lines(P.console, "HB ");
	cr_assert_eq(after, before, "heartbeats went on while paused (%u -> %u)", before, after);
	cr_assert(gw_api(P.api, "{\"cmd\":\"status\"}", reply, sizeof(reply)));
	cr_assert(strstr(reply, "\"state\":\"paused\""), "%s", reply);
	cr_assert(gw_api(P.api, "{\"cmd\":\"resume\"}", reply, sizeof(reply)));
	cr_assert(strstr(reply, "\"state\":\"running\""), "%s", reply);
	cr_assert(gw_wait_line(&P, P.console, "HB ", after + 3, NULL, 0, 20000),
		  "no heartbeat after resume");
	expect_heartbeats(after + 3, NULL);
	cr_assert(gw_api(P.api, "{\"cmd\":\"resume\"}", reply, sizeof(reply)));
	cr_assert(strstr(reply, "\"ok\":false"), "resume of a running VM must fail: %s", reply);
	cr_assert(gw_api(P.api, "{\"cmd\":\"frobnicate\"}", reply, sizeof(reply)));
	cr_assert(strstr(reply, "unknown command"), "%s", reply);
	cr_assert(gw_api(P.api, "not json", reply, sizeof(reply)));
	cr_assert(strstr(reply, "\"ok\":false"), "%s", reply);
	quit_and_expect_exit0();
}

/* A zeroed raw image of sectors * 512 bytes. */
static void make_disk(const char *path, unsigned sectors)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);

	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, (off_t)sectors * 512), 0);
	close(fd);
}

Test(run, data_the_guest_writes_lands_in_the_image_at_its_offset)
{
	char disk[256], cmdline[128], line[256];
	uint8_t want[512], got[512], zero[512] = { 0 };
	int fd;

	require_kvm();
	snprintf(disk, sizeof(disk), "%s/disk.img", P.dir);
	make_disk(disk, 4096);
	snprintf(cmdline, sizeof(cmdline), "mb=4 rate=0 disk=w:1000:64:0x5eed poweroff=2");
	boot_guest("128M", "1", cmdline, (const char *const[]){ "--disk", disk, NULL });
	cr_assert(gw_wait_line(&P, P.console, "DISK W ", 1, line, sizeof(line), BOOT_MS),
		  "no DISK W line; stderr: %s", gw_read_file(P.err));
	cr_assert(strstr(line, "status=0"), "%s", line);
	cr_assert(gw_wait_exit(&P, BOOT_MS));
	fd = open(disk, O_RDONLY);
	cr_assert_geq(fd, 0);
	for (unsigned s = 990; s < 1074; s++) {
		cr_assert_eq(pread(fd, got, 512, (off_t)s * 512), 512);
		if (s >= 1000 && s < 1064) {
			gw_pattern_sector(0x5eed, s, want);
			cr_assert(memcmp(got, want, 512) == 0, "sector %u differs", s);
		} else {
			cr_assert(memcmp(got, zero, 512) == 0, "sector %u outside the write changed",
				  s);
		}
	}
	close(fd);
}

Test(run, data_put_in_the_image_is_what_the_guest_reads)
{
	char disk[256], line[256], want_crc[32];
	uint8_t buf[32 * 512];
	int fd;

	require_kvm();
	snprintf(disk, sizeof(disk), "%s/disk.img", P.dir);
	make_disk(disk, 2048);
	fd = open(disk, O_RDWR);
	for (unsigned s = 0; s < 32; s++)
		gw_pattern_sector(777, 300 + s, buf + s * 512);
	cr_assert_eq(pwrite(fd, buf, sizeof(buf), 300 * 512), (ssize_t)sizeof(buf));
	close(fd);
	boot_guest("128M", "1", "mb=4 rate=0 disk=v:300:32:777 disk=r:300:32 poweroff=2",
		   (const char *const[]){ "--disk", disk, NULL });
	cr_assert(gw_wait_line(&P, P.console, "DISK V ", 1, line, sizeof(line), BOOT_MS),
		  "no DISK V line; stderr: %s", gw_read_file(P.err));
	cr_assert(strstr(line, "bad=0 ") && strstr(line, "status=0"), "%s", line);
	cr_assert(gw_wait_line(&P, P.console, "DISK R ", 1, line, sizeof(line), BOOT_MS));
	snprintf(want_crc, sizeof(want_crc), "crc=%08x", gw_crc32(buf, sizeof(buf)));
	cr_assert(strstr(line, want_crc), "want %s: %s", want_crc, line);
	cr_assert(gw_wait_line(&P, P.console, "DISK cap=2048", 1, NULL, 0, BOOT_MS));
	cr_assert(gw_wait_exit(&P, BOOT_MS));
}

Test(run, read_only_image_gives_the_guest_io_errors_and_the_vmm_keeps_running)
{
	char disk[256], line[256], cmd[512];

	require_kvm();
	snprintf(disk, sizeof(disk), "%s/ro.img", P.dir);
	make_disk(disk, 1024);
	/* Root ignores mode bits; an immutable file refuses O_RDWR even to root. */
	snprintf(cmd, sizeof(cmd), "chattr +i '%s' 2>/dev/null", disk);
	if (system(cmd) != 0)
		cr_skip_test("chattr +i is not supported on %s", P.dir);
	boot_guest("128M", "1", "mb=4 rate=4 disk=w:10:8:1 disk=v:10:8:1",
		   (const char *const[]){ "--disk", disk, NULL });
	cr_assert(gw_wait_line(&P, P.console, "DISK W ", 1, line, sizeof(line), BOOT_MS),
		  "no DISK W line; stderr: %s", gw_read_file(P.err));
	cr_assert(strstr(line, "status=1"), "write to a read-only disk must fail: %s", line);
	expect_heartbeats(3, NULL);
	quit_and_expect_exit0();
	snprintf(cmd, sizeof(cmd), "chattr -i '%s'", disk);
	cr_assert_eq(system(cmd), 0);
}

/*
 * A minimal PVH ELF whose entry executes ud2 with no IDT: the guest cannot survive it
 * (a triple fault on hardware KVM; an emulation failure where CPL 0 is emulated).
 */
static void write_crashing_elf(const char *path)
{
	uint8_t f[0x200] = { 0 };
	const uint64_t entry = 0x100000, code_off = 0x100;

	memcpy(f, "\177ELF", 4);
	f[4] = 2; f[5] = 1; f[6] = 1;                 /* 64-bit, little-endian, version */
	f[16] = 2; f[18] = 62; f[20] = 1;             /* ET_EXEC, x86-64, EV_CURRENT */
	memcpy(f + 24, &entry, 8);                    /* e_entry */
	f[32] = 64;                                   /* e_phoff */
	f[52] = 64; f[54] = 56; f[56] = 2;            /* e_ehsize, e_phentsize, e_phnum */
	/* PT_LOAD: file 0x100.. -> 0x100000 */
	uint8_t *ph = f + 64;
	uint64_t v;
	ph[0] = 1; ph[4] = 5;
	v = code_off; memcpy(ph + 8, &v, 8);
	v = entry; memcpy(ph + 16, &v, 8); memcpy(ph + 24, &v, 8);
	v = 16; memcpy(ph + 32, &v, 8); memcpy(ph + 40, &v, 8);
	v = 0x1000; memcpy(ph + 48, &v, 8);
	/* PT_NOTE at 0x180: "Xen", type 18, 4-byte entry */
	ph = f + 64 + 56;
	ph[0] = 4;
	v = 0x180; memcpy(ph + 8, &v, 8);
	v = 20; memcpy(ph + 32, &v, 8); memcpy(ph + 40, &v, 8);
	v = 4; memcpy(ph + 48, &v, 8);
	uint32_t note[5] = { 4, 4, 18, 0, (uint32_t)entry };
	memcpy(note + 3, "Xen", 4);
	memcpy(f + 0x180, note, sizeof(note));
	f[code_off] = 0x0f; f[code_off + 1] = 0x0b; /* ud2 */

	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, f, sizeof(f)), (ssize_t)sizeof(f));
	close(fd);
}

Test(run, a_dying_guest_is_reported_with_rip_and_instruction_bytes)
{
	char elf[256];
	char *err;

	require_kvm();
	snprintf(elf, sizeof(elf), "%s/crash.elf", P.dir);
	write_crashing_elf(elf);
	gw_spawn(&P, (const char *const[]){ "run", "--kernel", elf, "--mem", "64M",
					    "--console", P.console, NULL });
	cr_assert(gw_wait_exit(&P, 30000), "godwit kept running a dead guest");
	cr_assert(WIFEXITED(P.status) && WEXITSTATUS(P.status) == 3, "status %d", P.status);
	err = gw_read_file(P.err);
	cr_assert(strstr(err, "rip 0x100000") && strstr(err, "0f 0b"),
		  "message lacks the rip and bytes: %s", err);
	cr_assert(strstr(err, "triple fault") || strstr(err, "internal error"), "%s", err);
	cr_assert_eq(strchr(err, '\n'), err + strlen(err) - 1, "more than one line: %s", err);
	free(err);
}

/* Run godwit with argv, expect exit status 1 and one stderr line containing each needle. */
static void expect_refusal(const char *const *argv, const char *needle1, const char *needle2)
{
	char *err;

	gw_spawn(&P, argv);
	cr_assert(gw_wait_exit(&P, 30000), "godwit did not exit");
	cr_assert(WIFEXITED(P.status), "godwit crashed with signal %d", WTERMSIG(P.status));
	err = gw_read_file(P.err);
	cr_assert_eq(WEXITSTATUS(P.status), 1, "exit status %d: %s", WEXITSTATUS(P.status), err);
	cr_assert(strncmp(err, "godwit: ", 8) == 0, "not a godwit error line: %s", err);
	cr_assert_eq(strchr(err, '\n'), err + strlen(err) - 1, "not one line: %s", err);
	cr_assert(strstr(err, needle1), "'%s' not in: %s", needle1, err);
	if (needle2)
		cr_assert(strstr(err, needle2), "'%s' not in: %s", needle2, err);
	cr_assert_eq(access(P.api, F_OK), -1, "API socket left behind");
	cr_assert_eq(access(P.console, F_OK), -1, "console file left behind");
	free(err);
}

#define RUN_WITH(...) (const char *const[]){ "run", "--console", P.console, "--api", P.api, \
					     __VA_ARGS__, NULL }

Test(run, refuses_a_missing_kernel)
{
	expect_refusal(RUN_WITH("--kernel", "/nonexistent/vmlinux"), "/nonexistent/vmlinux",
		       "No such file");
}

Test(run, refuses_an_unreadable_kernel)
{
	expect_refusal(RUN_WITH("--kernel", "/tmp"), "/tmp", "not a regular file");
}

Test(run, refuses_a_file_that_is_no_bzimage_nor_pvh_elf)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/junk", P.dir);
	f = fopen(path, "w");
	for (int i = 0; i < 4096; i++)
		fputc(i * 7, f);
	fclose(f);
	expect_refusal(RUN_WITH("--kernel", path), "neither a Linux bzImage nor an ELF", NULL);
	/* An ordinary ELF program has no PVH note. */
	gw_proc_cleanup(&P);
	gw_proc_init(&P);
	expect_refusal(RUN_WITH("--kernel", "/bin/true"), "PVH", NULL);
}

Test(run, refuses_an_initrd_that_cannot_fit_in_ram)
{
	char path[256];
	int fd;

	require_kvm();
	snprintf(path, sizeof(path), "%s/big.cpio", P.dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	cr_assert_eq(ftruncate(fd, 100 << 20), 0);
	close(fd);
	expect_refusal(RUN_WITH("--kernel", TEST_GUEST_ELF, "--mem", "64M", "--initrd", path),
		       "initrd", "--mem");
}

Test(run, refuses_bad_memory_sizes)
{
	static const char *const bad[][2] = {
		{ "0", "too small" },
		{ "lots", "not a size" },
		{ "12Q", "not a size" },
		{ "100T", "more than this host" },
	};

	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		gw_proc_cleanup(&P);
		gw_proc_init(&P);
		expect_refusal(RUN_WITH("--kernel", TEST_GUEST_ELF, "--mem", bad[i][0]), "--mem",
			       bad[i][1]);
	}
}

Test(run, refuses_zero_cpus)
{
	expect_refusal(RUN_WITH("--kernel", TEST_GUEST_ELF, "--cpus", "0"), "--cpus 0", NULL);
}

Test(run, refuses_an_unknown_cpu_feature)
{
	require_kvm();
	expect_refusal(RUN_WITH("--kernel", TEST_GUEST_ELF, "--cpu-features", "-xsave,-warpdrive"),
		       "warpdrive", "--cpu-features");
}

Test(run, refuses_a_missing_disk_image)
{
	require_kvm();
	expect_refusal(RUN_WITH("--kernel", TEST_GUEST_ELF, "--disk", "/nonexistent/disk.img"),
		       "/nonexistent/disk.img", "No such file");
}

/* A console path that is a symlink is refused: the file it points at stays as it was. */
Test(run, refuses_a_console_file_that_is_a_symlink)
{
	char victim[256], link[256], *kept;
	FILE *f;

	snprintf(victim, sizeof(victim), "%s/victim", P.dir);
	snprintf(link, sizeof(link), "%s/console-link", P.dir);
	f = fopen(victim, "w");
	cr_assert_not_null(f);
	fputs("keep me\n", f);
	fclose(f);
	cr_assert_eq(symlink(victim, link), 0);
	expect_refusal(RUN_WITH("--kernel", TEST_GUEST_ELF, "--console", link), link, "symlink");
	kept = gw_read_file(victim);
	cr_assert_str_eq(kept, "keep me\n", "the symlink's target was written: %s", kept);
	free(kept);
}

/* What the guest prints is the VM owner's: a new console file is 0600, whatever the umask. */
Test(run, console_file_is_private)
{
	struct stat st;
	mode_t old = umask(0);

	require_kvm();
	boot_guest("128M", "1", "mb=4 rate=8", NULL);
	umask(old);
	expect_heartbeats(1, NULL);
	cr_assert_eq(stat(P.console, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0600, "console file mode %o", st.st_mode & 07777);
	quit_and_expect_exit0();
}

/*
 * The API reads integers as integers: 1e300 once became a uint64_t through an undefined
 * cast (and started a migration); every value that is not a whole number in range is
 * refused, and nothing starts.
 */
Test(run, api_refuses_numbers_that_are_not_whole_or_out_of_range)
{
	static const char *const bad[] = { "1e300", "-1", "1.5", "18446744073709551616", "null" };
	char req[256], reply[512];

	require_kvm();
	boot_guest("128M", "1", "mb=4 rate=8", NULL);
	expect_heartbeats(1, NULL);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(req, sizeof(req), "{\"cmd\":\"migrate\",\"to\":\"127.0.0.1:9\","
			 "\"insecure_plaintext\":true,\"downtime_ms\":%s}", bad[i]);
		cr_assert(gw_api(P.api, req, reply, sizeof(reply)));
		cr_assert(strstr(reply, "\"ok\":false") &&
			  strstr(reply, "downtime_ms must be a whole number"), "%s: %s", bad[i], reply);
	}
	cr_assert(gw_api(P.api, "{\"cmd\":\"snapshot\",\"repo\":\"/nonexistent\",\"max_rounds\":"
		  "4294967296}", reply, sizeof(reply)));
	cr_assert(strstr(reply, "max_rounds must be a whole number from 0 to 4294967295"), "%s",
		  reply);
	cr_assert(gw_api(P.api, "{\"cmd\":\"migrate-status\"}", reply, sizeof(reply)));
	cr_assert(strstr(reply, "no migration has been started"), "%s", reply);
	cr_assert(gw_api(P.api, "{\"cmd\":\"status\"}", reply, sizeof(reply)));
	cr_assert(strstr(reply, "\"state\":\"running\""), "%s", reply);
	quit_and_expect_exit0();
}
