/* Shared helpers for tests that run the godwit binary on /dev/kvm. */
#include "tests/common/gw_test.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/clock.h"

void require_kvm(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		cr_skip_test("/dev/kvm is not usable here (%s)", strerror(errno));
	close(fd);
}

void gw_proc_init(struct gw_proc *p)
{
	memset(p, 0, sizeof(*p));
	p->pid = -1;
	snprintf(p->dir, sizeof(p->dir), "/tmp/gwtest.XXXXXX");
	cr_assert_not_null(mkdtemp(p->dir), "mkdtemp: %s", strerror(errno));
	snprintf(p->console, sizeof(p->console), "%s/console.log", p->dir);
	snprintf(p->api, sizeof(p->api), "%s/api.sock", p->dir);
	snprintf(p->out, sizeof(p->out), "%s/stdout.log", p->dir);
	snprintf(p->err, sizeof(p->err), "%s/stderr.log", p->dir);
}

void gw_spawn(struct gw_proc *p, const char *const *argv)
{
	gw_spawn_in(p, NULL, argv);
}

void gw_spawn_in(struct gw_proc *p, const char *ns, const char *const *argv)
{
	const char *args[72];
	unsigned n = 0;

	if (ns) {
		args[n++] = "/usr/sbin/ip";
		args[n++] = "netns";
		args[n++] = "exec";
		args[n++] = ns;
	}
	args[n++] = GODWIT_BIN;
	for (unsigned i = 0; argv[i] && n < 71; i++)
		args[n++] = argv[i];
	args[n] = NULL;
	pid_t parent = getpid();

	p->pid = fork();
	cr_assert_geq(p->pid, 0, "fork: %s", strerror(errno));
	if (p->pid == 0) {
		int in = open("/dev/null", O_RDONLY);
		int out = open(p->out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int err = open(p->err, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		dup2(in, 0);
		dup2(out, 1);
		dup2(err, 2);
		/* A test killed by its timeout takes its VMs with it, not left to run on. */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
			_exit(127);
		execv(args[0], (char *const *)args);
		_exit(127);
	}
}

static bool gw_reap(struct gw_proc *p, int flags)
{
	if (p->reaped)
		return true;
	if (p->pid <= 0)
		return false;
	if (waitpid(p->pid, &p->status, flags) == p->pid) {
		p->reaped = true;
		return true;
	}
	return false;
}

bool gw_wait_exit(struct gw_proc *p, int timeout_ms)
{
	uint64_t end = clock_now_ms() + (uint64_t)timeout_ms;

	do {
		if (gw_reap(p, WNOHANG))
			return true;
		usleep(10000);
	} while (clock_now_ms() < end);
	return gw_reap(p, WNOHANG);
}

static void rm_rf(const char *dir)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
}

void gw_proc_cleanup(struct gw_proc *p)
{
	if (p->pid > 0 && !p->reaped) {
		kill(p->pid, SIGKILL);
		gw_reap(p, 0);
	}
	if (p->dir[0])
		rm_rf(p->dir);
}

char *gw_read_file(const char *path)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int ch;

	if (!f)
		return NULL;
	while ((ch = fgetc(f)) != EOF) {
		if (len + 2 > cap) {
			cap = cap ? cap * 2 : 4096;
			buf = realloc(buf, cap);
		}
		buf[len++] = (char)ch;
	}
	fclose(f);
	if (!buf)
		buf = calloc(1, 1);
	else
		buf[len] = '\0';
	return buf;
}

/* The n-th line (1-based) starting with prefix, copied to line; false if fewer. */
static bool find_line(const char *text, const char *prefix, unsigned n, char *line, size_t len,
		      unsigned *count)
{
	size_t plen = strlen(prefix);
	unsigned seen = 0;

	for (const char *p = text; p && *p;) {
		const char *nl = strchr(p, '\n');

		if (!nl)
			break; /* an unfinished line is not a line yet */
		if ((size_t)(nl - p) >= plen && strncmp(p, prefix, plen) == 0) {
			seen++;
			if (seen == n && line) {
				size_t l = (size_t)(nl - p) < len - 1 ? (size_t)(nl - p) : len - 1;

				memcpy(line, p, l);
				line[l] = '\0';
			}
		}
		p = nl + 1;
	}
	if (count)
		*count = seen;
	return n > 0 && seen >= n;
}

unsigned gw_count_lines(const char *file, const char *prefix)
{
	char *text = gw_read_file(file);
	unsigned n = 0;

	find_line(text, prefix, 0, NULL, 0, &n);
	free(text);
	return n;
}

bool gw_wait_line(struct gw_proc *p, const char *file, const char *prefix, unsigned n,
		  char *line, size_t len, int timeout_ms)
{
	uint64_t end = clock_now_ms() + (uint64_t)timeout_ms;

	for (;;) {
		char *text = gw_read_file(file);
		bool ok = find_line(text, prefix, n, line, len, NULL);

		free(text);
		if (ok)
			return true;
		if (clock_now_ms() >= end || (p && gw_reap(p, WNOHANG)))
			return false;
		usleep(20000);
	}
}

bool gw_api(const char *sock, const char *req, char *reply, size_t len)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	size_t got = 0;
	int fd;
	bool ok = false;

	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", sock);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		goto out;
	if (send(fd, req, strlen(req), MSG_NOSIGNAL) < 0 || send(fd, "\n", 1, MSG_NOSIGNAL) < 0)
		goto out;
	while (got + 1 < len) {
		ssize_t n = recv(fd, reply + got, 1, 0);

		if (n <= 0)
			goto out;
		if (reply[got] == '\n')
			break;
		got++;
	}
	reply[got] = '\0';
	ok = true;
out:
	close(fd);
	return ok;
}

bool gw_parse_hb(const char *line, struct gw_hb *hb)
{
	const char *e;
	int used = 0;

	memset(hb, 0, sizeof(*hb));
	if (sscanf(line, "HB %31s %" SCNu64 "%n", hb->id, &hb->counter, &used) != 2 || !used)
		return false;
	e = strstr(line, " e=");
	if (!e)
		return false;
	return sscanf(e, " e=%" SCNu64, &hb->errors) == 1;
}

uint64_t gw_splitmix64(uint64_t x)
{
	uint64_t z;

	x += 0x9e3779b97f4a7c15ULL;
	z = x;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void gw_pattern_sector(uint64_t seed, uint64_t sector, uint8_t out[512])
{
	for (unsigned k = 0; k < 64; k++) {
		uint64_t w = gw_splitmix64(seed ^ (sector << 6 | k));

		for (unsigned b = 0; b < 8; b++)
			out[k * 8 + b] = (uint8_t)(w >> (8 * b));
	}
}

uint32_t gw_crc32(const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint32_t crc = 0xffffffffu;

	for (size_t i = 0; i < len; i++) {
		crc ^= p[i];
		for (int b = 0; b < 8; b++)
			crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
	}
	return ~crc;
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int sh(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

void gw_netns_create(struct gw_netns *n)
{
	unsigned id = (unsigned)getpid() % 250 + 1;

	memset(n, 0, sizeof(*n));
	if (geteuid() != 0)
		cr_skip_test("two-host tests need root for network namespaces");
	if (access("/usr/sbin/ip", X_OK) != 0)
		cr_skip_test("two-host tests need ip(8) from iproute2");
	snprintf(n->a, sizeof(n->a), "gw%u-a", (unsigned)getpid());
	snprintf(n->b, sizeof(n->b), "gw%u-b", (unsigned)getpid());
	snprintf(n->addr_a, sizeof(n->addr_a), "10.201.%u.1", id);
	snprintf(n->addr_b, sizeof(n->addr_b), "10.201.%u.2", id);
	if (sh("ip netns add %s && ip netns add %s", n->a, n->b) != 0)
		cr_skip_test("cannot create network namespaces here");
	n->up = true;
	cr_assert_eq(sh("ip link add %sv type veth peer name %sv && "
			"ip link set %sv netns %s && ip link set %sv netns %s && "
			"ip -n %s addr add %s/24 dev %sv && ip -n %s addr add %s/24 dev %sv && "
			"ip -n %s link set %sv up && ip -n %s link set lo up && "
			"ip -n %s link set %sv up && ip -n %s link set lo up",
			n->a, n->b, n->a, n->a, n->b, n->b, n->a, n->addr_a, n->a, n->b,
			n->addr_b, n->b, n->a, n->a, n->a, n->b, n->b, n->b), 0,
		     "veth setup failed");
}

void gw_netns_cut(struct gw_netns *n)
{
	cr_assert_eq(sh("ip -n %s link set %sv down && ip -n %s link set %sv down", n->a, n->a,
			n->b, n->b), 0, "cannot take the link down");
}

void gw_netns_destroy(struct gw_netns *n)
{
	if (!n->up)
		return;
	sh("ip netns del %s 2>/dev/null; ip netns del %s 2>/dev/null", n->a, n->b);
	n->up = false;
}

int gw_run(struct gw_proc *p, const char *const *argv, int timeout_ms)
{
	gw_proc_cleanup(p);
	gw_proc_init(p);
	gw_spawn(p, argv);
	cr_assert(gw_wait_exit(p, timeout_ms), "godwit %s hung", argv[0]);
	cr_assert(WIFEXITED(p->status), "godwit %s died of signal %d", argv[0],
		  WTERMSIG(p->status));
	return WEXITSTATUS(p->status);
}

void gw_quit(struct gw_proc *p)
{
	char reply[256];

	cr_assert(gw_api(p->api, "{\"cmd\":\"quit\"}", reply, sizeof(reply)),
		  "the VM's API does not answer quit");
	cr_assert(gw_wait_exit(p, 20000), "godwit did not exit after quit");
}

void gw_last_hb(struct gw_proc *p, struct gw_hb *hb)
{
	char line[256];
	unsigned n = gw_count_lines(p->console, "HB ");

	cr_assert_gt(n, 0, "no heartbeat on the console yet");
	cr_assert(gw_wait_line(p, p->console, "HB ", n, line, sizeof(line), 1000));
	cr_assert(gw_parse_hb(line, hb), "not a heartbeat: %s", line);
}

void gw_expect_one_error(struct gw_proc *p, const char *needle)
{
	char *e = gw_read_file(p->err);

	cr_assert_not_null(e, "no stderr");
	cr_assert(strncmp(e, "godwit: ", 8) == 0 && strchr(e, '\n') == e + strlen(e) - 1,
		  "not one error line: %s", e);
	cr_assert(strstr(e, needle), "'%s' not in: %s", needle, e);
	free(e);
}

uint64_t gw_json_u64(const char *json, const char *key)
{
	char k[64];
	const char *p;

	snprintf(k, sizeof(k), "\"%s\":", key);
	p = strstr(json, k);
	cr_assert_not_null(p, "no %s in %s", key, json);
	return strtoull(p + strlen(k), NULL, 10);
}

void gw_json_str(const char *json, const char *key, char *out, size_t len)
{
	char k[64];
	const char *p, *e;

	snprintf(k, sizeof(k), "\"%s\":\"", key);
	p = strstr(json, k);
	cr_assert_not_null(p, "no %s in %s", key, json);
	p += strlen(k);
	e = strchr(p, '"');
	cr_assert_not_null(e, "unterminated %s in %s", key, json);
	snprintf(out, len, "%.*s", (int)(e - p), p);
}

void gw_rm_rf(const char *dir)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
}

void gw_poke_guest_ram(pid_t pid, uint64_t ram_bytes, uint64_t gpa, const void *buf, size_t len)
{
	char path[64], line[512];
	unsigned long long lo, hi, ram = 0;
	unsigned found = 0;
	FILE *f;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "r");
	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%llx-%llx", &lo, &hi) == 2 && hi - lo == ram_bytes) {
			ram = lo;
			found++;
		}
	}
	fclose(f);
	cr_assert_eq(found, 1, "%u mappings of %llu bytes in %s", found,
		     (unsigned long long)ram_bytes, path);
	cr_assert_leq(gpa + len, ram_bytes);
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	fd = open(path, O_WRONLY);
	cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
	cr_assert_eq(pwrite(fd, buf, len, (off_t)(ram + gpa)), (ssize_t)len, "%s: %s", path,
		     strerror(errno));
	close(fd);
}
