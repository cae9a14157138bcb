/* The Linux test guest's /init: a freestanding workload that stamps memory and disk and reports on the console. */
/*
 * This file: parameters, the memory workload and the heartbeat. disk.c: disk=
 * and fs=1. net.c: ip= and the network services. util.c: strings, console lines,
 * the clock, CRC-32. sys.h: raw system calls.
 *
 * Lines it prints (one write(2) each, to the console):
 *
 *   GUEST boot id=<16 hex> mem=<MiB> cpus=<n> mb=<M> rate=<R>
 *   SELFTEST ...                                         (selftest=1: syscall and
 *                                                        int $0x80 checks, CPU flags, costs)
 *   DISK cap=<sectors>                                   (when /dev/vda exists)
 *   DISK W lba=<l> n=<n> status=<0|1>                    (disk=w:<l>:<n>:<seed>)
 *   DISK V lba=<l> n=<n> bad=<sectors> status=<0|1>      (disk=v:<l>:<n>:<seed>)
 *   DISK R lba=<l> n=<n> crc=<8 hex> status=<0|1>        (disk=r:<l>:<n>)
 *   DISK none                                            (disk= given, no /dev/vda)
 *   FS ok | FS err=<errno>                               (fs=1)
 *   NET eth<i> ip=<addr>[/<prefix>] status=<0|errno>    (ip=, see net.c)
 *   HB <16 hex> <counter> t=<ms> gen=<sweep> ap=0 e=<corruptions>   (every ~100 ms;
 *      with the network up, then " conn=<TCP accepted> udp=<echoed>")
 *   ERR page=<i> gen=<g> word=<w>                        (first few corruptions only)
 *   GUEST poweroff                                       (after poweroff=<N> heartbeats)
 *
 * corrupt=1 flips a bit in the last word of the last page after setup, so the
 * first sweep must report e=1 and "ERR page=<npages-1> gen=0 word=511".
 *
 * Memory invariant: the working set is npages pages; with sweep s and pointer p,
 * pages below p hold generation s and pages from p on hold generation s - 1.
 * Word w of page i in generation g is splitmix64(id ^ (i << 20) ^ (g << 40) ^ w).
 * Every page is checked against generation s - 1 just before it is rewritten.
 *
 * Disk pattern: word k (0..63) of sector s is splitmix64(seed ^ (s << 6 | k)),
 * little-endian, so a host can write or check the same sectors.
 *
 * t= is CLOCK_MONOTONIC in ms, i.e. time since the kernel started.
 */
#include "guest.h"

#define HB_INTERVAL_NS 100000000ULL
#define ERR_LINES_MAX 4
#define WORK_BASE 0x40000000L /* 1 GiB: free in a static /init, 2 MiB aligned */

__asm__(".text\n"
	".global _start\n"
	"_start:\n"
	"	xor %ebp, %ebp\n"
	"	mov %rsp, %rdi\n"
	"	and $-16, %rsp\n"
	"	call init_main\n"
	"	ud2\n");

struct work {
	uint64_t *mem;
	uint64_t npages;
	uint64_t id;
	uint64_t sweep;
	uint64_t ptr;
	uint64_t errors;
	unsigned err_lines;
};

/* disk=<w|v|r>:<lba>:<count>[:<seed>] */
static void parse_disk(struct params *p, const char *v)
{
	struct disk_op op = { .kind = v[0] };

	if ((op.kind != 'w' && op.kind != 'v' && op.kind != 'r') || v[1] != ':')
		goto bad;
	v += 2;
	if (parse_u64(&v, ':', &op.lba) || parse_u64(&v, ':', &op.count))
		goto bad;
	if (op.kind != 'r' && parse_u64(&v, 0, &op.seed))
		goto bad;
	if (p->ndisk == DISK_OPS_MAX)
		goto bad;
	p->disk[p->ndisk++] = op;
	return;
bad:
	p->disk_bad = 1;
}

static void parse_word(struct params *p, const char *w)
{
	const char *v;
	uint64_t n;

	if (str_prefix(w, "disk=")) {
		parse_disk(p, w + 5);
		return;
	}
	if (str_prefix(w, "ip=")) {
		size_t n = str_len(w + 3);

		if (p->nip < NET_IPS_MAX && n < sizeof(p->ip[0]))
			memcpy(p->ip[p->nip++], w + 3, n + 1);
		return;
	}
	if (str_prefix(w, "mb="))
		v = w + 3;
	else if (str_prefix(w, "rate="))
		v = w + 5;
	else if (str_prefix(w, "poweroff="))
		v = w + 9;
	else if (str_prefix(w, "fs="))
		v = w + 3;
	else if (str_prefix(w, "selftest="))
		v = w + 9;
	else if (str_prefix(w, "corrupt="))
		v = w + 8;
	else
		return;
	if (parse_u64(&v, 0, &n))
		return;
	switch (w[0]) {
	case 'm': p->mb = n; break;
	case 'r': p->rate = n; break;
	case 'p': p->poweroff = n; break;
	case 'f': p->fs = n != 0; break;
	case 's': p->selftest = n != 0; break;
	case 'c': p->corrupt = n != 0; break;
	}
}

/*
 * Parameters come from /proc/cmdline, which keeps every word in order (disk= may
 * repeat). The environment is the fallback: the kernel hands unknown key=value
 * words to init as environment variables.
 */
static void params_read(struct params *p, char **envp)
{
	char cmdline[4096];
	long fd, n = 0;

	fd = sys3(SYS_open, "/proc/cmdline", O_RDONLY | O_CLOEXEC, 0);
	if (fd >= 0) {
		n = sys3(SYS_read, fd, cmdline, sizeof(cmdline) - 1);
		sys1(SYS_close, fd);
	}
	if (n > 0) {
		char *s = cmdline, *end = cmdline + n;

		*end = 0;
		while (s < end) {
			char *w;

			while (s < end && (*s == ' ' || *s == '\n'))
				s++;
			w = s;
			while (s < end && *s != ' ' && *s != '\n')
				s++;
			*s++ = 0;
			if (*w)
				parse_word(p, w);
		}
		return;
	}
	for (; *envp; envp++)
		parse_word(p, *envp);
}

static uint64_t boot_id_make(void)
{
	uint64_t r = 0;

	sys3(SYS_getrandom, &r, sizeof(r), GRND_INSECURE);
	return splitmix64(r ^ rdtsc_raw());
}

static uint64_t cpus_online(void)
{
	uint64_t mask[16] = { 0 };
	long n = sys3(SYS_sched_getaffinity, 0, sizeof(mask), mask);
	uint64_t count = 0;

	for (long i = 0; i < n / 8; i++)
		for (uint64_t m = mask[i]; m; m &= m - 1)
			count++;
	return count;
}

static uint64_t mem_mib(void)
{
	struct sysinfo_raw si;

	if (sys1(SYS_sysinfo, &si) < 0)
		return 0;
	return si.totalram * (si.mem_unit ? si.mem_unit : 1) >> 20;
}

static void mounts_setup(void)
{
	sys2(SYS_mkdir, "/dev", 0755);
	sys2(SYS_mkdir, "/proc", 0555);
	sys2(SYS_mkdir, "/sys", 0555);
	sys2(SYS_mkdir, "/mnt", 0755);
	sys5(SYS_mount, "devtmpfs", "/dev", "devtmpfs", 0, 0);
	sys5(SYS_mount, "proc", "/proc", "proc", 0, 0);
	sys5(SYS_mount, "sysfs", "/sys", "sysfs", 0, 0);
	if (sys2(SYS_fcntl, 1, F_GETFD) < 0) {
		long fd = sys3(SYS_open, "/dev/console", O_WRONLY | O_NOCTTY, 0);

		if (fd >= 0 && fd != 1)
			sys3(SYS_dup3, fd, 1, 0);
	}
}

/* Prints the kernel's view of CPU 0's features: "SELFTEST flags <cpuinfo flags>". */
static void cpu_flags_print(void)
{
	static const char prefix[] = "SELFTEST ";
	char buf[8192];
	long fd, n = 0;
	char *s, *e;

	fd = sys3(SYS_open, "/proc/cpuinfo", O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return;
	n = sys3(SYS_read, fd, buf, sizeof(buf) - 1);
	sys1(SYS_close, fd);
	if (n <= 0)
		return;
	buf[n] = 0;
	for (s = buf; *s && !(str_prefix(s, "flags") && (s == buf || s[-1] == '\n')); s++)
		;
	if (!*s || s - buf < (long)sizeof(prefix) - 1)
		return;
	for (e = s; *e && *e != '\n'; e++)
		;
	*e++ = '\n';
	s -= sizeof(prefix) - 1;
	memcpy(s, prefix, sizeof(prefix) - 1);
	sys3(SYS_write, 1, s, e - s);
}

static void selftest_run(void)
{
	struct line l = { .len = 0 };
	uint64_t t0 = now_ns();
	long pid = 0, pid32;

	for (int i = 0; i < 100; i++)
		pid = sys0(SYS_getpid);
	put_str(&l, "SELFTEST getpid_us=");
	put_u64(&l, (now_ns() - t0) / 100 / 1000);
	line_emit(&l);
	pid32 = sys_int80_0(SYS32_getpid);

	put_str(&l, "SELFTEST syscall=");
	put_u64(&l, (uint64_t)pid);
	put_str(&l, " int80=");
	put_u64(&l, (uint64_t)pid32);
	put_str(&l, " status=");
	put_u64(&l, pid == 1 && pid32 == 1 ? 0 : 1);
	line_emit(&l);
	cpu_flags_print();
}

static void page_fill(const struct work *w, uint64_t i, uint64_t gen)
{
	uint64_t *page = w->mem + i * (PAGE_BYTES / 8);
	uint64_t base = w->id ^ (i << 20) ^ (gen << 40);

	for (uint64_t k = 0; k < PAGE_BYTES / 8; k++)
		page[k] = splitmix64(base ^ k);
}

/* Checks page i against generation gen; counts and reports a mismatch. */
static void page_check(struct work *w, uint64_t i, uint64_t gen)
{
	const uint64_t *page = w->mem + i * (PAGE_BYTES / 8);
	uint64_t base = w->id ^ (i << 20) ^ (gen << 40);

	for (uint64_t k = 0; k < PAGE_BYTES / 8; k++) {
		if (page[k] == splitmix64(base ^ k))
			continue;
		w->errors++;
		if (w->err_lines < ERR_LINES_MAX) {
			struct line l = { .len = 0 };

			w->err_lines++;
			put_str(&l, "ERR page=");
			put_u64(&l, i);
			put_str(&l, " gen=");
			put_u64(&l, gen);
			put_str(&l, " word=");
			put_u64(&l, k);
			line_emit(&l);
		}
		return;
	}
}

/* Advances the sweep by n pages: verify generation s - 1, then write generation s. */
static void work_advance(struct work *w, uint64_t n)
{
	while (n--) {
		page_check(w, w->ptr, w->sweep - 1);
		page_fill(w, w->ptr, w->sweep);
		if (++w->ptr == w->npages) {
			w->ptr = 0;
			w->sweep++;
		}
	}
}

/*
 * Asks for transparent huge pages: the kernel turns them off by default below
 * 512 MiB of RAM, and populating 4 KiB pages one by one is what costs most
 * where the guest kernel is emulated. A kernel without THP just says no.
 */
static void thp_enable(void)
{
	long fd = sys3(SYS_open, "/sys/kernel/mm/transparent_hugepage/enabled", O_WRONLY | O_CLOEXEC, 0);

	if (fd < 0)
		return;
	sys3(SYS_write, fd, "always", 6);
	sys1(SYS_close, fd);
}

/* Maps the working set (populated up front) and writes generation 0 everywhere. */
static int work_setup(struct work *w, uint64_t mb)
{
	long addr;

	w->npages = mb << 20 >> 12;
	w->sweep = 1;
	w->ptr = 0;
	if (!w->npages)
		return 0;
	thp_enable();
	/* 2 MiB aligned, so the kernel can back it with transparent huge pages. */
	addr = sys6(SYS_mmap, WORK_BASE, (long)(w->npages * PAGE_BYTES), PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE | MAP_FIXED_NOREPLACE, -1, 0);
	if ((unsigned long)addr > -4096UL)
		addr = sys6(SYS_mmap, 0, (long)(w->npages * PAGE_BYTES), PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if ((unsigned long)addr > -4096UL) {
		w->npages = 0;
		return (int)addr;
	}
	w->mem = (uint64_t *)addr;
	for (uint64_t i = 0; i < w->npages; i++)
		page_fill(w, i, 0);
	return 0;
}

void sleep_until(uint64_t t_ns)
{
	struct timespec_raw ts = {
		.tv_sec = (int64_t)(t_ns / 1000000000ULL),
		.tv_nsec = (int64_t)(t_ns % 1000000000ULL),
	};

	while (sys4(SYS_clock_nanosleep, CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, 0) == -EINTR)
		;
}

/*
 * Sync, then restart the machine: without ACPI the kernel cannot power off, and
 * with reboot=k a restart is one write of 0xfe to the i8042 at port 0x64, which
 * the godwit VMM (and QEMU -no-reboot) treats as the end of the guest.
 */
static void guest_poweroff(void)
{
	say("GUEST poweroff");
	sys0(SYS_sync);
	sys4(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2, LINUX_REBOOT_CMD_RESTART, 0);
	say("GUEST poweroff failed");
}

static void heartbeat_loop(struct work *w, const struct params *p)
{
	const uint64_t pages_per_s = p->rate * (1ULL << 20) / PAGE_BYTES;
	uint64_t last = now_ns(), next = last + HB_INTERVAL_NS;
	uint64_t credit = 0; /* pages owed, in units of 1e-9 page */
	uint64_t count = 0;

	for (;;) {
		struct line l = { .len = 0 };
		uint64_t now, n;

		while (now_ns() < next)
			net_wait(next);
		now = now_ns();
		if (w->npages && pages_per_s) {
			/* After a pause (a migration, a stop) catch up one interval at most. */
			uint64_t dt = now - last < HB_INTERVAL_NS ? now - last : HB_INTERVAL_NS;

			credit += pages_per_s * dt;
			n = credit / 1000000000ULL;
			credit -= n * 1000000000ULL;
			work_advance(w, n);
		}
		last = now;

		put_str(&l, "HB ");
		put_hex(&l, w->id, 16);
		put_str(&l, " ");
		put_u64(&l, ++count);
		put_str(&l, " t=");
		put_u64(&l, now / 1000000ULL);
		put_str(&l, " gen=");
		put_u64(&l, w->sweep);
		put_str(&l, " ap=0 e=");
		put_u64(&l, w->errors);
		net_hb_append(&l);
		line_emit(&l);

		if (p->poweroff && count >= p->poweroff)
			guest_poweroff();
		next += HB_INTERVAL_NS;
		if (next <= now)
			next = now + HB_INTERVAL_NS;
	}
}

void init_main(long *sp);

void init_main(long *sp)
{
	long argc = sp[0];
	char **envp = (char **)(sp + 1 + argc + 1);
	struct params p = { .mb = 16, .rate = 8 };
	struct work w = { .mem = 0 };
	struct line l = { .len = 0 };
	uint64_t t0;
	int rc;

	mounts_setup();
	params_read(&p, envp);
	w.id = boot_id_make();

	put_str(&l, "GUEST boot id=");
	put_hex(&l, w.id, 16);
	put_str(&l, " mem=");
	put_u64(&l, mem_mib());
	put_str(&l, " cpus=");
	put_u64(&l, cpus_online());
	put_str(&l, " mb=");
	put_u64(&l, p.mb);
	put_str(&l, " rate=");
	put_u64(&l, p.rate);
	line_emit(&l);

	if (p.selftest)
		selftest_run();
	disk_phase(&p);
	if (p.fs)
		fs_phase();
	net_setup(&p);

	t0 = now_ns();
	rc = work_setup(&w, p.mb);
	if (rc < 0) {
		put_str(&l, "GUEST mmap err=");
		put_u64(&l, (uint64_t)-rc);
		line_emit(&l);
	}
	/* corrupt=1 proves the checker checks: the first sweep must report e=1. */
	if (p.corrupt && w.npages)
		w.mem[w.npages * (PAGE_BYTES / 8) - 1] ^= 1;
	if (p.selftest) {
		put_str(&l, "SELFTEST setup_ms=");
		put_u64(&l, (now_ns() - t0) / 1000000ULL);
		line_emit(&l);
	}
	heartbeat_loop(&w, &p);
}
