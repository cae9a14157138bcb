/* godwit restore --check: would this snapshot restore on this host? Go or no-go, with reasons. */
#include "cli/restore_check.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "cli/cli.h"
#include "repo/manifest.h"
#include "repo/repo.h"
#include "vmm/state/state_format.h"
#include "vmm/vm_state.h"

#define MIB (1024.0 * 1024.0)

struct check {
	unsigned problems;
};

/* One line of the verdict: ok or no, what was checked (c, ok, fmt...). */
static void say(struct check *c, bool ok, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void say(struct check *c, bool ok, const char *fmt, ...)
{
	va_list ap;

	printf("  %-4s ", ok ? "ok" : "NO");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	if (!ok)
		c->problems++;
}

/* Bytes of RAM the kernel says can be given to a new process now, or 0 if unknown. */
static uint64_t mem_available(void)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[128];
	uint64_t kib = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "MemAvailable: %" SCNu64 " kB", &kib) == 1)
			break;
	}
	fclose(f);
	return kib * 1024;
}

/* The disk the restore would write (--disk NEW) or update (--disk-base OLD). */
static void check_disk(struct check *c, const struct snap_manifest *m, const char *disk,
		       const char *base)
{
	struct statvfs fs;
	struct stat st;
	char dir[4096];
	char *slash;

	if (!m->disk_bytes) {
		say(c, !disk && !base, "disk: the snapshot has none%s", disk || base ?
		    ", but --disk or --disk-base was given: drop it" : "");
		return;
	}
	if (!disk && !base) {
		say(c, false, "disk: the snapshot has a disk of %.0f MiB: pass --disk NEW.img or "
		    "--disk-base OLD.img", (double)m->disk_bytes / MIB);
		return;
	}
	if (base) {
		if (stat(base, &st) < 0)
			say(c, false, "disk: --disk-base %s: %s", base, strerror(errno));
		else
			say(c, (uint64_t)st.st_size == m->disk_bytes, "disk: --disk-base %s is %"
			    PRIu64 " bytes, the snapshot's disk %" PRIu64, base,
			    (uint64_t)st.st_size, m->disk_bytes);
		return;
	}
	if (stat(disk, &st) == 0) {
		say(c, false, "disk: --disk %s exists: restore writes a new image", disk);
		return;
	}
	snprintf(dir, sizeof(dir), "%s", disk);
	slash = strrchr(dir, '/');
	if (slash)
		*(slash == dir ? slash + 1 : slash) = '\0';
	else
		snprintf(dir, sizeof(dir), ".");
	if (statvfs(dir, &fs) < 0) {
		say(c, false, "disk: %s: %s", dir, strerror(errno));
		return;
	}
	say(c, (uint64_t)fs.f_bavail * fs.f_frsize >= m->disk_bytes, "disk: %.0f MiB needed "
	    "in %s, %.0f MiB free", (double)m->disk_bytes / MIB, dir,
	    (double)fs.f_bavail * (double)fs.f_frsize / MIB);
}

int restore_check(struct repo *r, const char *id, const char *vm_name, const char *disk,
		  const char *base, unsigned nnets)
{
	struct check c = { 0 };
	struct snap_manifest m;
	struct vm_state_info info;
	char latest[SNAP_ID_BYTES], err[512];
	uint8_t *state = NULL;
	size_t state_len = 0;
	uint32_t version;
	uint64_t avail;
	int rc;

	manifest_init(&m);
	if (strcmp(id, "latest") == 0) {
		rc = snap_resolve_latest(r, vm_name, latest, err, sizeof(err));
		if (rc < 0)
			goto unreadable;
		id = latest;
	}
	printf("snapshot %s:\n", id);
	rc = snap_load(r, id, &m, err, sizeof(err));
	if (rc < 0)
		goto unreadable;
	rc = repo_blob_get(r, &m.state_id, &state, &state_len);
	if (rc < 0) {
		snprintf(err, sizeof(err), "its VM state cannot be read: %s (run 'godwit images "
			 "verify')", strerror(-rc));
		goto unreadable;
	}
	rc = vm_state_peek(state, state_len, &info, err, sizeof(err));
	if (rc < 0)
		goto unreadable;
	version = (uint32_t)state[4] | (uint32_t)state[5] << 8 | (uint32_t)state[6] << 16 |
		  (uint32_t)state[7] << 24;
	say(&c, true, "format: written by godwit %s; VM state format %" PRIu32 ", this godwit "
	    "reads 1 to %u", m.godwit_version[0] ? m.godwit_version : "(unknown)", version,
	    VS_FORMAT_VERSION);
	rc = vm_state_check_cpu(state, state_len, err, sizeof(err));
	say(&c, rc == 0, "cpu: %s", rc == 0 ? "this host has every CPU feature the VM uses" : err);
	avail = mem_available();
	say(&c, avail == 0 || avail >= info.ram_bytes, "ram: %.0f MiB needed, %.0f MiB available",
	    (double)info.ram_bytes / MIB, (double)avail / MIB);
	say(&c, true, "vcpus: %u", info.ncpus);
	check_disk(&c, &m, disk, base);
	say(&c, nnets == info.nnics, "nics: the snapshot has %u, %u --net given%s", info.nnics,
	    nnets, nnets == info.nnics ? "" : ": give one --net tap=NAME per NIC");
	free(state);
	manifest_free(&m);
	if (c.problems) {
		printf("no-go: %u problem%s\n", c.problems, c.problems == 1 ? "" : "s");
		return CLI_EXIT_ERROR;
	}
	printf("go: it would restore here\n");
	return CLI_EXIT_OK;
unreadable:
	/* A format newer than this godwit reads ends here too, saying "upgrade godwit". */
	printf("  NO   format: %s\nno-go: 1 problem\n", err);
	free(state);
	manifest_free(&m);
	return CLI_EXIT_ERROR;
}
