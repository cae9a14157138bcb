/* Repository locks: acquisition by put-then-list, heartbeats, stale-lock recovery, and a host-local flock. */
#include "repo/lock.h"
#include "repo/lock_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "repo/backend.h"
#include "repo/repo.h"
#include "util/clock.h"

/*
 * The lock. The caller's thread acquires and releases; in between only the heartbeat
 * thread touches be, seq and name, under mu (repo_lock_check takes mu too).
 */
struct repo_lock {
	struct backend *be;
	struct lock_info me;
	unsigned heartbeat_s, stale_s;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	bool thread_running;
	bool stop;           /* under mu */
	uint32_t seq;        /* under mu */
	char name[LOCK_NAME_BYTES]; /* the newest object; under mu */
	uint64_t refreshed_ms; /* monotonic time of the last good heartbeat; under mu */
	bool lost;           /* our object vanished; under mu */
};

static uint64_t wall_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static void sleep_ms(uint64_t ms)
{
	struct timespec t = { .tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000 };

	while (nanosleep(&t, &t) < 0 && errno == EINTR)
		;
}

static uint32_t rand_u32(void)
{
	uint32_t v = 0;

	if (getrandom(&v, sizeof(v), 0) != sizeof(v))
		v = (uint32_t)clock_now_ms() * 2654435761u;
	return v;
}

/* ---- Who we are ---------------------------------------------------------------------- */

static void read_line_file(const char *path, char *out, size_t len)
{
	FILE *f = fopen(path, "r");

	out[0] = '\0';
	if (!f)
		return;
	if (!fgets(out, (int)len, f))
		out[0] = '\0';
	fclose(f);
	out[strcspn(out, "\n")] = '\0';
}

/* Field 22 of /proc/PID/stat, the start time in clock ticks after boot; 0 if unknown. */
static uint64_t pid_start_time(int64_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long start = 0;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%" PRId64 "/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')'); /* the command name may hold spaces and ')' */
	if (!p)
		return 0;
	/* After ") ": state is field 3; skip to field 22. */
	p++;
	for (int field = 2; field < 21 && p; field++)
		p = strchr(p + 1, ' ');
	if (p)
		sscanf(p, " %llu", &start);
	return start;
}

static void self_info(struct lock_info *me)
{
	if (gethostname(me->host, sizeof(me->host)) < 0 || !me->host[0])
		snprintf(me->host, sizeof(me->host), "unknown");
	me->host[sizeof(me->host) - 1] = '\0';
	for (char *c = me->host; *c; c++)
		if (*c <= ' ' || *c == 0x7f)
			*c = '_';
	read_line_file("/proc/sys/kernel/random/boot_id", me->boot_id, sizeof(me->boot_id));
	if (!me->boot_id[0])
		snprintf(me->boot_id, sizeof(me->boot_id), "-");
	me->pid = getpid();
	me->pid_start = pid_start_time(me->pid);
}

/* ---- Reading the locks of a repository ------------------------------------------------ */

/* The locks found by one scan, one entry per nonce (its newest heartbeat). */
struct lock_seen {
	struct lock_info info;
	char names[4][LOCK_NAME_BYTES]; /* its objects (two while a heartbeat swaps) */
	unsigned nnames;
	bool garbled;
};

struct lock_scan {
	struct backend *be;
	struct lock_seen *v;
	size_t n, cap;
	int err;
};

static int scan_one(void *arg, const char *name, uint64_t bytes)
{
	struct lock_scan *s = arg;
	struct lock_seen *e = NULL;
	struct lock_info info;
	char nonce[LOCK_NONCE_HEX + 1];
	uint8_t *buf;
	size_t len;
	int rc;

	if (!lock_name_nonce(name, nonce) || bytes > LOCK_OBJECT_MAX)
		return 0; /* not a lock object of ours */
	rc = backend_get_all(s->be, name, LOCK_OBJECT_MAX, &buf, &len);
	if (rc == -ENOENT)
		return 0; /* released or refreshed since the list */
	if (rc < 0)
		return rc;
	rc = lock_decode(buf, len, &info);
	free(buf);
	memcpy(info.nonce, nonce, sizeof(nonce));
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->v[i].info.nonce, nonce))
			e = &s->v[i];
	if (!e) {
		if (s->n == s->cap) {
			size_t cap = s->cap ? 2 * s->cap : 8;
			struct lock_seen *v = realloc(s->v, cap * sizeof(*v));

			if (!v)
				return -ENOMEM;
			s->v = v;
			s->cap = cap;
		}
		e = &s->v[s->n++];
		memset(e, 0, sizeof(*e));
		e->info = info;
		e->garbled = rc < 0;
	} else if (rc >= 0 && (e->garbled || info.heartbeat_ns > e->info.heartbeat_ns)) {
		e->info = info;
		e->garbled = false;
	}
	if (e->nnames < 4)
		snprintf(e->names[e->nnames++], LOCK_NAME_BYTES, "%s", name);
	return 0;
}

static int scan_locks(struct backend *be, struct lock_scan *s)
{
	int rc;

	memset(s, 0, sizeof(*s));
	s->be = be;
	rc = backend_list(be, LOCK_PREFIX, scan_one, s);
	if (rc < 0) {
		free(s->v);
		s->v = NULL;
		s->n = 0;
	}
	return rc;
}

/* Why info is stale, into why (me, info, stale_s, why, len); false when it is live. */
static bool lock_stale(const struct lock_info *me, const struct lock_seen *e, unsigned stale_s,
		       char *why, size_t len)
{
	const struct lock_info *i = &e->info;
	uint64_t now = wall_ns();

	if (i->future)
		return false;
	if (e->garbled) {
		snprintf(why, len, "it is not a readable lock object");
		return true;
	}
	if (!strcmp(i->host, me->host) && !strcmp(i->boot_id, me->boot_id) && i->pid > 0) {
		if (kill((pid_t)i->pid, 0) < 0 && errno == ESRCH) {
			snprintf(why, len, "pid %" PRId64 " is not running on this host", i->pid);
			return true;
		}
		if (i->pid_start && pid_start_time(i->pid) != i->pid_start) {
			snprintf(why, len, "pid %" PRId64 " is another process now", i->pid);
			return true;
		}
	}
	if (now > i->heartbeat_ns && now - i->heartbeat_ns > (uint64_t)stale_s * 1000000000ull) {
		snprintf(why, len, "its last heartbeat was %" PRIu64 " s ago",
			 (uint64_t)((now - i->heartbeat_ns) / 1000000000ull));
		return true;
	}
	/*
	 * A heartbeat counts as at most now + stale_s: clocks agree within stale_s, so one
	 * further ahead is a wrong clock or a forged object, and left alone it would hold
	 * the lock until that date. Within the cap, a dead holder's lock goes stale at the
	 * latest 2 x stale_s from now.
	 */
	if (i->heartbeat_ns > now && i->heartbeat_ns - now > (uint64_t)stale_s * 1000000000ull) {
		snprintf(why, len, "its heartbeat is %" PRIu64 " s ahead of this host's clock, "
			 "more than the stale limit of %u s (a clock is wrong)",
			 (uint64_t)((i->heartbeat_ns - now) / 1000000000ull), stale_s);
		return true;
	}
	return false;
}

/* Who holds a lock, as seen by me (me, e, out, len): "another backup of VM 'x' (host ...)". */
static void lock_describe(const struct lock_info *me, const struct lock_seen *e, char *out,
			  size_t len)
{
	const struct lock_info *i = &e->info;
	uint64_t now = wall_ns();
	char when[32] = "?", what[300];
	time_t t;
	struct tm tm;

	if (i->future) {
		snprintf(out, len, "a lock of a newer godwit (%s)", e->names[0]);
		return;
	}
	if (i->kind == REPO_LOCK_PRUNE)
		snprintf(what, sizeof(what), "a prune");
	else if (i->kind == REPO_LOCK_RESTORE)
		snprintf(what, sizeof(what), "a restore still loading its VM's memory");
	else if (i->kind == me->kind && lock_kind_tagged(me->kind) && !strcmp(i->tag, me->tag))
		snprintf(what, sizeof(what), "another %s of VM '%s'", lock_kind_name(i->kind),
			 me->display);
	else if (strcmp(i->vm, "-"))
		snprintf(what, sizeof(what), "a %s of VM '%s'", lock_kind_name(i->kind), i->vm);
	else
		snprintf(what, sizeof(what), "a %s", lock_kind_name(i->kind));
	t = (time_t)(i->started_ns / 1000000000ull);
	if (gmtime_r(&t, &tm))
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
	snprintf(out, len, "%s (host %s, pid %" PRId64 ", started %s, last heartbeat %" PRIu64
		 " s ago)", what, i->host, i->pid, when,
		 now > i->heartbeat_ns ? (uint64_t)((now - i->heartbeat_ns) / 1000000000u) : 0);
}

static bool conflicts(const struct lock_info *me, const struct repo_lock_opts *o,
		      const struct lock_seen *e)
{
	const struct lock_info *i = &e->info;

	if (!strcmp(i->nonce, me->nonce) || (o->own && !strcmp(i->nonce, o->own->me.nonce)))
		return false;
	if (i->future || me->kind == REPO_LOCK_PRUNE || i->kind == REPO_LOCK_PRUNE)
		return true;
	/* Snapshots and restores only keep sweeps away; backups of one VM exclude each other. */
	return me->kind == REPO_LOCK_BACKUP && i->kind == REPO_LOCK_BACKUP && !strcmp(i->tag, me->tag);
}

/*
 * List the locks, remove stale ones, and find the first live conflict (l, o, found,
 * holder, len). Returns 0 or a backend error.
 */
static int check_conflicts(struct repo_lock *l, const struct repo_lock_opts *o, bool *found,
			   char *holder, size_t len)
{
	struct lock_scan s;
	int rc = scan_locks(l->be, &s);

	*found = false;
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < s.n; i++) {
		struct lock_seen *e = &s.v[i];
		char why[128], desc[1024], line[1300];

		if (!strcmp(e->info.nonce, l->me.nonce) ||
		    (o->own && !strcmp(e->info.nonce, o->own->me.nonce)))
			continue;
		if (lock_stale(&l->me, e, l->stale_s, why, sizeof(why))) {
			lock_describe(&l->me, e, desc, sizeof(desc));
			for (unsigned k = 0; k < e->nnames; k++) {
				int r2 = backend_remove(l->be, e->names[k]);

				if (r2 < 0 && r2 != -ENOENT) {
					rc = r2;
					goto out;
				}
			}
			snprintf(line, sizeof(line), "removed a stale lock (%s): %s", why,
				 e->garbled ? e->names[0] : desc);
			if (o->note)
				o->note(o->note_arg, line);
			continue;
		}
		if (!*found && conflicts(&l->me, o, e)) {
			*found = true;
			lock_describe(&l->me, e, holder, len);
		}
	}
out:
	free(s.v);
	return rc;
}

/* ---- The heartbeat --------------------------------------------------------------------- */

static int lock_put(struct repo_lock *l, uint32_t seq, char name[LOCK_NAME_BYTES])
{
	char buf[LOCK_OBJECT_MAX];
	int n;

	l->me.heartbeat_ns = wall_ns();
	n = lock_encode(&l->me, buf, sizeof(buf));
	if (n < 0)
		return n;
	lock_object_name(&l->me, seq, name);
	return backend_put(l->be, name, buf, (size_t)n);
}

/* One heartbeat (l), under l->mu: put seq + 1, then remove seq. */
static void heartbeat_once(struct repo_lock *l)
{
	char next[LOCK_NAME_BYTES];
	uint64_t size;
	int rc;

	rc = backend_stat(l->be, l->name, &size);
	if (rc == -ENOENT) {
		l->lost = true; /* someone judged us stale and removed us */
		return;
	}
	if (rc < 0)
		return;
	rc = lock_put(l, l->seq + 1, next);
	if (rc < 0)
		return;
	backend_remove(l->be, l->name);
	l->seq++;
	memcpy(l->name, next, sizeof(next));
	l->refreshed_ms = clock_now_ms();
}

static void *heartbeat_thread(void *arg)
{
	struct repo_lock *l = arg;
	struct timespec until;

	pthread_mutex_lock(&l->mu);
	while (!l->stop) {
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += l->heartbeat_s;
		while (!l->stop && pthread_cond_timedwait(&l->cv, &l->mu, &until) != ETIMEDOUT)
			;
		if (l->stop || l->lost)
			continue;
		heartbeat_once(l);
	}
	pthread_mutex_unlock(&l->mu);
	return NULL;
}

/* ---- Acquire, check, release ----------------------------------------------------------- */

static int lock_tag(struct repo *r, const char *vm_name, char tag[LOCK_TAG_HEX + 1])
{
	char hex[BLOB_ID_HEX_BYTES];
	struct blob_id id;
	char *msg;
	int rc;

	if (asprintf(&msg, "godwit lock: %s", vm_name) < 0)
		return -ENOMEM;
	rc = blob_id_compute(r, msg, strlen(msg), &id);
	free(msg);
	if (rc < 0)
		return rc;
	blob_id_hex(&id, hex);
	memcpy(tag, hex, LOCK_TAG_HEX);
	tag[LOCK_TAG_HEX] = '\0';
	return 0;
}

static int lock_new(struct repo_lock **out, struct repo *r, enum repo_lock_kind kind,
		    const char *vm_name, const struct repo_lock_opts *o, char *err, size_t errlen)
{
	struct repo_lock *l = calloc(1, sizeof(*l));
	uint8_t nonce[LOCK_NONCE_HEX / 2];
	int rc;

	if (!l)
		return -ENOMEM;
	l->heartbeat_s = o->heartbeat_s ? o->heartbeat_s : LOCK_DEFAULT_HEARTBEAT_S;
	l->stale_s = o->stale_s ? o->stale_s : LOCK_DEFAULT_STALE_S;
	l->me.kind = kind;
	self_info(&l->me);
	snprintf(l->me.tag, sizeof(l->me.tag), "-");
	snprintf(l->me.vm, sizeof(l->me.vm), "-");
	if (lock_kind_tagged(kind)) {
		rc = lock_tag(r, vm_name, l->me.tag);
		if (rc < 0)
			goto err_free;
		snprintf(l->me.display, sizeof(l->me.display), "%s", vm_name);
		if (repo_config_of(r)->encryption == REPO_ENC_NONE && strlen(vm_name) < sizeof(l->me.vm))
			snprintf(l->me.vm, sizeof(l->me.vm), "%s", vm_name);
		for (char *c = l->me.vm; *c; c++)
			if ((unsigned char)*c < ' ')
				*c = '?';
	}
	if (getrandom(nonce, sizeof(nonce), 0) != sizeof(nonce)) {
		rc = -EIO;
		goto err_free;
	}
	for (size_t i = 0; i < sizeof(nonce); i++)
		snprintf(l->me.nonce + 2 * i, 3, "%02x", nonce[i]);
	rc = backend_open_location(&l->be, repo_location(r), o->s3, err, errlen);
	if (rc < 0)
		goto err_free;
	pthread_mutex_init(&l->mu, NULL);
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&l->cv, &ca);
		pthread_condattr_destroy(&ca);
	}
	*out = l;
	return 0;
err_free:
	free(l);
	return rc;
}

static void lock_free(struct repo_lock *l)
{
	backend_close(l->be);
	pthread_mutex_destroy(&l->mu);
	pthread_cond_destroy(&l->cv);
	free(l);
}

static void lock_err(struct repo_lock *l, int rc, const char *what, char *err, size_t errlen)
{
	char msg[512];

	backend_error(l->be, msg, sizeof(msg));
	snprintf(err, errlen, "lock %s: %s: %s", l->be->location, what, msg[0] ? msg : strerror(-rc));
}

int repo_lock_acquire(struct repo_lock **out, struct repo *r, enum repo_lock_kind kind,
		      const char *vm_name, const struct repo_lock_opts *o, char *err,
		      size_t errlen)
{
	uint64_t start = clock_now_ms(), deadline = start + (uint64_t)o->wait_s * 1000;
	uint64_t race_deadline = start + (uint64_t)(o->wait_s > LOCK_RACE_S ? o->wait_s
									   : LOCK_RACE_S) * 1000;
	char holder[1024] = "";
	struct repo_lock *l;
	bool found;
	int rc;

	if (kind < REPO_LOCK_BACKUP || kind > REPO_LOCK_RESTORE ||
	    (lock_kind_tagged(kind) && (!vm_name || !vm_name[0])))
		return -EINVAL;
	rc = lock_new(&l, r, kind, vm_name, o, err, errlen);
	if (rc < 0)
		return rc;
	for (;;) {
		rc = check_conflicts(l, o, &found, holder, sizeof(holder));
		if (rc < 0) {
			lock_err(l, rc, "list the locks", err, errlen);
			goto err_free;
		}
		if (found) {
			if (clock_now_ms() >= deadline)
				goto busy;
			sleep_ms(500 + rand_u32() % 500);
			continue;
		}
		l->me.started_ns = wall_ns();
		rc = lock_put(l, 0, l->name);
		if (rc < 0) {
			lock_err(l, rc, "write the lock", err, errlen);
			goto err_free;
		}
		rc = check_conflicts(l, o, &found, holder, sizeof(holder));
		if (rc < 0) {
			lock_err(l, rc, "list the locks", err, errlen);
			backend_remove(l->be, l->name);
			goto err_free;
		}
		if (!found)
			break;
		/* A contender raced us (see lock.h): step back and try again. */
		backend_remove(l->be, l->name);
		if (clock_now_ms() >= race_deadline)
			goto busy;
		sleep_ms(100 + rand_u32() % 700);
	}
	l->refreshed_ms = clock_now_ms();
	if (pthread_create(&l->thread, NULL, heartbeat_thread, l) == 0)
		l->thread_running = true;
	*out = l;
	return 0;
busy:
	snprintf(err, errlen, "%s is locked by %s", l->be->location, holder);
	rc = -EBUSY;
err_free:
	lock_free(l);
	return rc;
}

int repo_lock_check(struct repo_lock *l)
{
	uint64_t size;
	int rc;

	pthread_mutex_lock(&l->mu);
	if (l->lost || clock_now_ms() - l->refreshed_ms > (uint64_t)l->stale_s * 500) {
		rc = -ENOLCK;
	} else {
		rc = backend_stat(l->be, l->name, &size);
		if (rc == -ENOENT) {
			l->lost = true;
			rc = -ENOLCK;
		}
	}
	pthread_mutex_unlock(&l->mu);
	return rc;
}

const char *repo_lock_name(const struct repo_lock *l)
{
	return l->name;
}

void repo_lock_release(struct repo_lock *l)
{
	if (!l)
		return;
	if (l->thread_running) {
		pthread_mutex_lock(&l->mu);
		l->stop = true;
		pthread_cond_signal(&l->cv);
		pthread_mutex_unlock(&l->mu);
		pthread_join(l->thread, NULL);
	}
	if (!l->lost)
		backend_remove(l->be, l->name);
	lock_free(l);
}

/* ---- The host-local lock --------------------------------------------------------------- */

static const char *local_lock_dir(void)
{
	const char *d = getenv("GODWIT_LOCK_DIR");

	if (d && d[0])
		return d;
	if (access("/run/lock", W_OK) == 0)
		return "/run/lock";
	return "/tmp";
}

int lock_local_acquire(int *fd, const char *key, unsigned wait_s, char *err, size_t errlen)
{
	uint64_t deadline = clock_now_ms() + (uint64_t)wait_s * 1000;
	unsigned char h[SHA256_DIGEST_LENGTH];
	char path[PATH_MAX], pid[32];
	int f, rc, n;

	SHA256((const unsigned char *)key, strlen(key), h);
	n = snprintf(path, sizeof(path), "%s/godwit-", local_lock_dir());
	for (int i = 0; i < 8 && n > 0 && (size_t)n + 3 < sizeof(path); i++)
		n += snprintf(path + n, sizeof(path) - (size_t)n, "%02x", h[i]);
	snprintf(path + n, sizeof(path) - (size_t)n, ".lock");
	f = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (f < 0) {
		rc = -errno;
		snprintf(err, errlen, "local lock %s: %s", path, strerror(-rc));
		return rc;
	}
	while (flock(f, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EINTR)
			continue;
		if (errno != EWOULDBLOCK) {
			rc = -errno;
			snprintf(err, errlen, "local lock %s: %s", path, strerror(-rc));
			close(f);
			return rc;
		}
		if (clock_now_ms() >= deadline) {
			ssize_t got = pread(f, pid, sizeof(pid) - 1, 0);

			pid[got > 0 ? got : 0] = '\0';
			pid[strcspn(pid, "\n")] = '\0';
			snprintf(err, errlen, "held by pid %s (%s)", pid[0] ? pid : "?", path);
			close(f);
			return -EBUSY;
		}
		sleep_ms(100);
	}
	n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (ftruncate(f, 0) == 0 && pwrite(f, pid, (size_t)n, 0) < 0)
		(void)0; /* the pid is for messages only */
	*fd = f;
	return 0;
}
