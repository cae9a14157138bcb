/* Tests for repository locks: conflicts by kind and VM, waiting, stale recovery, heartbeats, races, flock. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "repo/lock.h"
#include "repo/repo.h"

static char dir[64], err[1024];
static struct repo *r;
static struct lines notes;

static void setup(void)
{
	tmpdir_make(dir, sizeof(dir));
	cr_assert_eq(repo_init(dir, 0, 0, err, sizeof(err)), 0, "%s", err);
	r = repo_open_ok(dir);
	memset(&notes, 0, sizeof(notes));
}

static void teardown(void)
{
	repo_close(r);
	tmpdir_remove(dir);
}

TestSuite(lock, .init = setup, .fini = teardown, .timeout = 60);

static void note(void *arg, const char *line)
{
	lines_collect(arg, REPO_VERIFY_NOTE, line);
}

static int take(struct repo_lock **l, enum repo_lock_kind kind, const char *vm,
		const struct repo_lock_opts *base)
{
	struct repo_lock_opts o = { .note = note, .note_arg = &notes };

	if (base)
		o = *base, o.note = note, o.note_arg = &notes;
	err[0] = '\0';
	return repo_lock_acquire(l, r, kind, vm, &o, err, sizeof(err));
}

Test(lock, a_second_backup_of_one_vm_is_refused_and_names_the_holder)
{
	struct repo_lock *a, *b = NULL, *c;
	char host[256];

	cr_assert_eq(take(&a, REPO_LOCK_BACKUP, "vm1", NULL), 0, "%s", err);
	cr_assert_eq(take(&b, REPO_LOCK_BACKUP, "vm1", NULL), -EBUSY);
	gethostname(host, sizeof(host));
	cr_assert(strstr(err, "is locked by another backup of VM 'vm1'"), "%s", err);
	cr_assert(strstr(err, host), "%s", err);
	cr_assert(strstr(err, "pid"), "%s", err);
	/* Another VM's backup runs beside it. */
	cr_assert_eq(take(&c, REPO_LOCK_BACKUP, "vm2", NULL), 0, "%s", err);
	cr_assert_eq(count_objects(dir, "locks"), 2);
	repo_lock_release(c);
	repo_lock_release(a);
	cr_assert_eq(count_objects(dir, "locks"), 0, "release left lock objects");
	cr_assert_eq(take(&b, REPO_LOCK_BACKUP, "vm1", NULL), 0, "%s", err);
	repo_lock_release(b);
}

Test(lock, prune_excludes_every_backup_but_the_callers_own)
{
	struct repo_lock *a, *p = NULL, *b = NULL;
	struct repo_lock_opts own = { 0 };

	cr_assert_eq(take(&a, REPO_LOCK_BACKUP, "vm1", NULL), 0, "%s", err);
	cr_assert_eq(take(&p, REPO_LOCK_PRUNE, NULL, NULL), -EBUSY);
	own.own = a;
	cr_assert_eq(take(&p, REPO_LOCK_PRUNE, NULL, &own), 0, "%s", err);
	/* While the prune runs, no backup starts, not even another VM's. */
	cr_assert_eq(take(&b, REPO_LOCK_BACKUP, "vm2", NULL), -EBUSY);
	cr_assert(strstr(err, "a prune"), "%s", err);
	repo_lock_release(p);
	repo_lock_release(a);
}

Test(lock, snapshots_and_restores_keep_only_prunes_away)
{
	struct repo_lock *s1, *s2, *rs, *b, *p = NULL;
	char name[512], *body;
	size_t len;

	cr_assert_eq(take(&s1, REPO_LOCK_SNAPSHOT, "vm1", NULL), 0, "%s", err);
	cr_assert_eq(take(&s2, REPO_LOCK_SNAPSHOT, "vm1", NULL), 0, "%s", err);
	cr_assert_eq(take(&rs, REPO_LOCK_RESTORE, NULL, NULL), 0, "%s", err);
	cr_assert_eq(take(&b, REPO_LOCK_BACKUP, "vm1", NULL), 0, "%s", err);
	cr_assert_eq(take(&p, REPO_LOCK_PRUNE, NULL, NULL), -EBUSY);
	cr_assert(strstr(err, "is locked by a snapshot") || strstr(err, "is locked by a restore") ||
		  strstr(err, "is locked by a backup"), "%s", err);
	repo_lock_release(b);
	repo_lock_release(s1);
	repo_lock_release(s2);
	cr_assert_eq(take(&p, REPO_LOCK_PRUNE, NULL, NULL), -EBUSY);
	cr_assert(strstr(err, "a restore still loading its VM's memory"), "%s", err);
	/* Written as version 2: a version-1 reader sees a newer godwit's lock, never garbage. */
	first_object(dir, "locks", name, sizeof(name));
	cr_assert(strstr(name, "/locks/restore-"), "%s", name);
	body = (char *)file_read(name, &len);
	cr_assert(len > 14 && !memcmp(body, "godwit-lock 2\nkind restore\n", 27), "%.*s", (int)len,
		  body);
	free(body);
	repo_lock_release(rs);
	cr_assert_eq(take(&p, REPO_LOCK_PRUNE, NULL, NULL), 0, "%s", err);
	/* While a prune runs, neither a snapshot nor a restore starts. */
	cr_assert_eq(take(&s1, REPO_LOCK_SNAPSHOT, "vm2", NULL), -EBUSY);
	cr_assert(strstr(err, "a prune"), "%s", err);
	cr_assert_eq(take(&rs, REPO_LOCK_RESTORE, NULL, NULL), -EBUSY);
	cr_assert_eq(take(&s1, REPO_LOCK_SNAPSHOT, NULL, NULL), -EINVAL, "a snapshot lock needs the VM");
	repo_lock_release(p);
}

struct release_later {
	struct repo_lock *l;
	unsigned ms;
};

static void *release_thread(void *arg)
{
	struct release_later *rl = arg;

	usleep(rl->ms * 1000);
	repo_lock_release(rl->l);
	return NULL;
}

Test(lock, a_waiting_backup_gets_the_lock_once_it_is_released)
{
	struct release_later rl = { .ms = 1500 };
	struct repo_lock_opts o = { .wait_s = 10 };
	struct repo_lock *b;
	struct timespec t0, t1;
	pthread_t t;

	cr_assert_eq(take(&rl.l, REPO_LOCK_BACKUP, "vm1", NULL), 0, "%s", err);
	cr_assert_eq(pthread_create(&t, NULL, release_thread, &rl), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	cr_assert_eq(take(&b, REPO_LOCK_BACKUP, "vm1", &o), 0, "%s", err);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	pthread_join(t, NULL);
	cr_assert_geq(t1.tv_sec - t0.tv_sec, 1, "did not wait");
	repo_lock_release(b);
}

/* The tag locks use for vm (vm, out). */
static void vm_tag(const char *vm, char out[33])
{
	char msg[300], hex[BLOB_ID_HEX_BYTES];
	struct blob_id id;

	snprintf(msg, sizeof(msg), "godwit lock: %s", vm);
	cr_assert_eq(blob_id_compute(r, msg, strlen(msg), &id), 0);
	blob_id_hex(&id, hex);
	memcpy(out, hex, 32);
	out[32] = '\0';
}

/* Write a backup lock object for vm by hand (vm, host, boot_id, pid, heartbeat_ns). */
static void plant_lock(const char *vm, const char *host, const char *boot_id, long pid,
		       uint64_t heartbeat_ns, const char *version)
{
	char tag[33], path[512], body[1024];
	int n;

	vm_tag(vm, tag);
	snprintf(path, sizeof(path), "%s/locks/backup-%s-0123456789abcdef-00000000", dir, tag);
	n = snprintf(body, sizeof(body),
		     "godwit-lock %s\nkind backup\nvm-tag %s\nvm %s\nhost %s\nboot-id %s\npid %ld\n"
		     "pid-start 1\nstarted-ns %" PRIu64 "\nheartbeat-ns %" PRIu64 "\n",
		     version, tag, vm, host, boot_id, pid, heartbeat_ns, heartbeat_ns);
	file_write(path, body, (size_t)n);
}

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static void my_host(char *host, size_t hlen, char *boot, size_t blen)
{
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");

	gethostname(host, hlen);
	cr_assert_not_null(f);
	cr_assert_not_null(fgets(boot, (int)blen, f));
	boot[strcspn(boot, "\n")] = '\0';
	fclose(f);
}

Test(lock, a_lock_of_a_dead_process_on_this_host_is_recovered_with_a_note)
{
	char host[256], boot[64];
	struct repo_lock *l;
	pid_t child = fork();

	if (child == 0)
		_exit(0);
	cr_assert_eq(waitpid(child, NULL, 0), child);
	my_host(host, sizeof(host), boot, sizeof(boot));
	plant_lock("vm1", host, boot, child, now_ns(), "1");
	cr_assert_eq(take(&l, REPO_LOCK_BACKUP, "vm1", NULL), 0, "%s", err);
	lines_print(&notes);
	cr_assert(lines_has(&notes, "removed a stale lock"));
	cr_assert(lines_has(&notes, "is not running on this host"));
	cr_assert_eq(count_objects(dir, "locks"), 1);
	repo_lock_release(l);
}

Test(lock, another_hosts_lock_is_live_until_its_heartbeat_is_old)
{
	struct repo_lock *l = NULL;

	/* Fresh: a live backup elsewhere. Our pid on another host means nothing. */
	plant_lock("vm1", "elsewhere", "00000000-0000-0000-0000-000000000000", 1, now_ns(), "1");
	cr_assert_eq(take(&l, REPO_LOCK_BACKUP, "vm1", NULL), -EBUSY);
	cr_assert(strstr(err, "host elsewhere"), "%s", err);
	/* Eleven minutes without a heartbeat: stale. */
	plant_lock("vm1", "elsewhere", "00000000-0000-0000-0000-000000000000", 1,
		   now_ns() - 660ull * 1000000000ull, "1");
	cr_assert_eq(take(&l, REPO_LOCK_BACKUP, "vm1", NULL), 0, "%s", err);
	cr_assert(lines_has(&notes, "last heartbeat was 66"), "note missing");
	repo_lock_release(l);
}

/* A heartbeat far in the future counts as at most now + the stale limit: it ends. */
Test(lock, a_heartbeat_from_the_future_does_not_hold_the_lock_forever)
{
	struct repo_lock *l = NULL;
	uint64_t minute = 60ull * 1000000000ull;

	/* Five minutes ahead (a clock within the limit): live. */
	plant_lock("vm1", "elsewhere", "x", 1, now_ns() + 5 * minute, "1");
	cr_assert_eq(take(&l, REPO_LOCK_BACKUP, "vm1", NULL), -EBUSY);
	/* Eleven minutes, or the year 2554: past the cap, so stale now. */
	plant_lock("vm1", "elsewhere", "x", 1, now_ns() + 11 * minute, "1");
	cr_assert_eq(take(&l, REPO_LOCK_BACKUP, "vm1", NULL), 0, "%s", err);
	cr_assert(lines_has(&notes, "ahead of this host's clock"), "note missing");
	repo_lock_release(l);
	plant_lock("vm1", "elsewhere", "x", 1, UINT64_MAX, "1");
	cr_assert_eq(take(&l, REPO_LOCK_BACKUP, "vm1", NULL), 0, "%s", err);
	repo_lock_release(l);
}

Test(lock, a_lock_of_a_newer_format_is_never_taken_over)
{
	struct repo_lock *l = NULL;

	plant_lock("vm1", "elsewhere", "x", 1, 1, "3");
	cr_assert_eq(take(&l, REPO_LOCK_BACKUP, "vm1", NULL), -EBUSY);
	cr_assert(strstr(err, "newer godwit"), "%s", err);
}

/* The one object under dir/locks (out). */
static void lock_object(char *out, size_t len)
{
	cr_assert_eq(count_objects(dir, "locks"), 1);
	first_object(dir, "locks", out, len);
}

Test(lock, heartbeats_replace_the_object_and_a_removed_lock_is_reported_lost)
{
	struct repo_lock_opts o = { .heartbeat_s = 1, .stale_s = 60 };
	char before[512], after[512];
	struct repo_lock *l;

	cr_assert_eq(take(&l, REPO_LOCK_BACKUP, "vm1", &o), 0, "%s", err);
	lock_object(before, sizeof(before));
	cr_assert(strstr(before, "-00000000"), "%s", before);
	sleep(3);
	lock_object(after, sizeof(after));
	cr_assert_str_neq(before, after, "no heartbeat in 3 s");
	cr_assert_eq(repo_lock_check(l), 0);
	/* Someone judged it stale and removed it. */
	cr_assert_eq(unlink(after), 0);
	cr_assert_eq(repo_lock_check(l), -ENOLCK);
	repo_lock_release(l);
}

/* Two contenders in a loop: never both inside. */
struct racer {
	atomic_int *inside;
	atomic_int *max_inside;
	unsigned wins;
	char dir[64];
};

static void *racer_thread(void *arg)
{
	struct racer *x = arg;
	struct repo_lock_opts o = { .wait_s = 20 };
	char e[1024];
	struct repo *rr = repo_open_ok(x->dir);

	for (int i = 0; i < 8; i++) {
		struct repo_lock *l;
		int in;

		if (repo_lock_acquire(&l, rr, REPO_LOCK_BACKUP, "vm1", &o, e, sizeof(e)) < 0)
			continue;
		in = atomic_fetch_add(x->inside, 1) + 1;
		if (in > atomic_load(x->max_inside))
			atomic_store(x->max_inside, in);
		usleep(30000);
		atomic_fetch_sub(x->inside, 1);
		repo_lock_release(l);
		x->wins++;
	}
	repo_close(rr);
	return NULL;
}

Test(lock, racing_acquisitions_never_both_win, .timeout = 120)
{
	atomic_int inside = 0, max_inside = 0;
	struct racer a = { &inside, &max_inside, 0, "" }, b = a;
	pthread_t ta, tb;

	snprintf(a.dir, sizeof(a.dir), "%s", dir);
	snprintf(b.dir, sizeof(b.dir), "%s", dir);
	cr_assert_eq(pthread_create(&ta, NULL, racer_thread, &a), 0);
	cr_assert_eq(pthread_create(&tb, NULL, racer_thread, &b), 0);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	cr_assert_eq(atomic_load(&max_inside), 1);
	cr_assert_gt(a.wins + b.wins, 8, "wins %u + %u", a.wins, b.wins);
}

Test(lock, the_local_flock_is_exclusive_and_names_the_holder)
{
	char key[128];
	int fd, fd2;

	setenv("GODWIT_LOCK_DIR", dir, 1);
	snprintf(key, sizeof(key), "backup\n%s\nvm1", dir);
	cr_assert_eq(lock_local_acquire(&fd, key, 0, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(lock_local_acquire(&fd2, key, 1, err, sizeof(err)), -EBUSY);
	{
		char pid[32];

		snprintf(pid, sizeof(pid), "pid %d", (int)getpid());
		cr_assert(strstr(err, pid), "%s", err);
	}
	close(fd);
	cr_assert_eq(lock_local_acquire(&fd2, key, 0, err, sizeof(err)), 0, "%s", err);
	close(fd2);
}
