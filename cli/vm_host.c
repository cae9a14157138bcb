/* Serving a running VM: the control API, signals, the terminal, and the exit status. */
#include "cli/vm_host.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cli/api.h"
#include "cli/cli.h"
#include "cli/mig_stats.h"
#include "cli/net_opts.h"
#include "util/clock.h"

#define MIG_REPORT_GRACE_MS 5000
/* How long a stopping VM waits for a slow API command (a snapshot) to end. */
#define VM_HOST_STOP_WAIT_MS 5000

void vm_host_signals(void)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
}

int vm_host_announce(struct vm *vm, bool after_move, char *note, size_t len)
{
	struct vm_announce_info ai;
	int rc;

	/* Test-only: the negative control of tests/cli/test_net.c. Not a user option. */
	if (after_move && getenv("GODWIT_TEST_NO_ANNOUNCE")) {
		if (note)
			snprintf(note, len, "announce off");
		return 0;
	}
	rc = vm_announce(vm, &ai);
	if (note)
		snprintf(note, len, "announced nics=%u frames=%" PRIu64 " guest=%u", vm_nic_count(vm),
			 ai.frames, ai.guest_asked);
	return rc;
}

/* ,"announce":{...} once the VM has announced itself; returns the new end. */
static size_t api_status_announce(struct vm *vm, char *reply, size_t len, size_t at)
{
	struct vm_announce_info ai;

	vm_announce_info_get(vm, &ai);
	if (!ai.rounds)
		return at;
	return at + (size_t)snprintf(reply + at, len - at,
		",\"announce\":{\"rounds\":%u,\"frames\":%" PRIu64 ",\"errors\":%" PRIu64
		",\"guest_asked\":%u,\"first_unix_ms\":%" PRIu64 ",\"last_unix_ms\":%" PRIu64 "}",
		ai.rounds, ai.frames, ai.errors, ai.guest_asked, ai.first_ns / 1000000,
		ai.last_ns / 1000000);
}

/* ---- API handlers -------------------------------------------------------------------- */

/* Who holds the VM paused, as "user,migration" ("" when nobody does). */
static void pause_holders_str(unsigned holders, char *buf, size_t len)
{
	static const struct {
		unsigned bit;
		const char *name;
	} owners[] = {
		{ VM_PAUSE_USER, "user" }, { VM_PAUSE_SNAPSHOT, "snapshot" },
		{ VM_PAUSE_MIGRATE, "migration" }, { VM_PAUSE_THROTTLE, "throttle" },
	};
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(owners) / sizeof(owners[0]) && off < len; i++)
		if (holders & owners[i].bit)
			off += (size_t)snprintf(buf + off, len - off, "%s%s", off ? "," : "",
						owners[i].name);
}

/* ,"nics":[{...},...] for a VM with NICs, appended at reply + at; returns the new end. */
static size_t api_status_nics(struct vm_host *h, char *reply, size_t len, size_t at)
{
	unsigned n = vm_nic_count(h->vm);

	for (unsigned i = 0; i < n && at < len; i++) {
		struct vm_nic_info ni;
		char mac[18];

		if (vm_nic_info(h->vm, i, &ni) < 0)
			break;
		net_mac_format(ni.mac, mac);
		at += (size_t)snprintf(reply + at, len - at,
				       "%s{\"mac\":\"%s\",\"tap\":\"%s\",\"rx_frames\":%" PRIu64
				       ",\"rx_bytes\":%" PRIu64 ",\"tx_frames\":%" PRIu64
				       ",\"tx_bytes\":%" PRIu64 ",\"rx_dropped\":%" PRIu64
				       ",\"rx_filtered\":%" PRIu64 ",\"rx_no_buffer\":%" PRIu64
				       ",\"tx_dropped\":%" PRIu64 ",\"bad_chains\":%" PRIu64
				       ",\"rx_carried\":%" PRIu64 "}%s",
				       i ? "," : ",\"nics\":[", mac, ni.tap, ni.rx_frames, ni.rx_bytes,
				       ni.tx_frames, ni.tx_bytes, ni.rx_dropped, ni.rx_filtered,
				       ni.rx_no_buffer, ni.tx_dropped, ni.bad_chains, ni.rx_carried,
				       i + 1 == n ? "]" : "");
	}
	return at;
}

static void api_status(void *arg, const struct json_obj *req, char *reply, size_t len)
{
	struct vm_host *h = arg;
	char holders[64], mig[48] = "";
	size_t off;

	(void)req;
	pause_holders_str(vm_pause_holders(h->vm), holders, sizeof(holders));
	pthread_mutex_lock(&h->lock);
	if (h->mig) {
		struct mig_stats st;

		mig_source_stats(h->mig, &st);
		snprintf(mig, sizeof(mig), ",\"migration\":\"%s\"", mig_state_name(st.state));
	}
	pthread_mutex_unlock(&h->lock);
	off = (size_t)snprintf(reply, len,
		 "{\"ok\":true,\"state\":\"%s\",\"vcpus\":%u,\"mem_mib\":%" PRIu64
		 ",\"uptime_ms\":%" PRIu64 ",\"version\":\"%s\"%s",
		 vm_state_name(vm_state(h->vm)), vm_ncpus(h->vm), vm_ram_bytes(h->vm) >> 20,
		 clock_now_ms() - h->started_ms, GODWIT_VERSION, mig);
	if (holders[0] && off < len)
		off += (size_t)snprintf(reply + off, len - off, ",\"paused_by\":\"%s\"", holders);
	if (off < len)
		off = api_status_nics(h, reply, len, off);
	if (off < len)
		off = api_status_announce(h->vm, reply, len, off);
	if (off < len)
		snprintf(reply + off, len - off, "}");
}

/* {"cmd":"announce"}: tell the network where the guest is (after moving it by hand). */
static void api_announce(void *arg, const struct json_obj *req, char *reply, size_t len)
{
	struct vm_host *h = arg;
	char note[96];
	int rc;

	(void)req;
	if (!vm_nic_count(h->vm)) {
		snprintf(reply, len, "{\"ok\":false,\"error\":\"the VM has no NIC to announce: "
			 "start it with --net\"}");
		return;
	}
	rc = vm_host_announce(h->vm, false, note, sizeof(note));
	if (rc < 0) {
		snprintf(reply, len, "{\"ok\":false,\"error\":\"announce: %s\"}", strerror(-rc));
		return;
	}
	snprintf(reply, len, "{\"ok\":true,\"announce\":\"%s\"}", note);
}

static void api_reply_state(struct vm_host *h, int rc, const char *what, char *reply,
			    size_t len)
{
	const char *state = vm_state_name(vm_state(h->vm));
	char holders[64];

	pause_holders_str(vm_pause_holders(h->vm), holders, sizeof(holders));
	if (rc < 0 && holders[0])
		/* Paused, but not through the API: not the API's to resume. */
		snprintf(reply, len, "{\"ok\":false,\"error\":\"cannot %s: the VM is paused by "
			 "the %s, not through the API; it runs again when that is done\","
			 "\"state\":\"%s\",\"paused_by\":\"%s\"}", what, holders, state, holders);
	else if (rc < 0)
		snprintf(reply, len, "{\"ok\":false,\"error\":\"cannot %s a VM that is %s\","
			 "\"state\":\"%s\"}", what, state, state);
	else
		snprintf(reply, len, "{\"ok\":true,\"state\":\"%s\"}", state);
}

static void api_pause(void *arg, const struct json_obj *req, char *reply, size_t len)
{
	struct vm_host *h = arg;

	(void)req;
	api_reply_state(h, vm_pause(h->vm), "pause", reply, len);
}

static void api_resume(void *arg, const struct json_obj *req, char *reply, size_t len)
{
	struct vm_host *h = arg;

	(void)req;
	api_reply_state(h, vm_resume(h->vm), "resume", reply, len);
}

static void api_quit(void *arg, const struct json_obj *req, char *reply, size_t len)
{
	struct vm_host *h = arg;

	(void)req;
	vm_request_stop(h->vm);
	snprintf(reply, len, "{\"ok\":true,\"state\":\"stopped\"}");
}

static void api_fail(char *reply, size_t len, const char *msg)
{
	char q[400];

	json_quote(q, sizeof(q), msg);
	snprintf(reply, len, "{\"ok\":false,\"error\":%s}", q);
}

static void copy_str(char *dst, size_t cap, const struct json_obj *req, const char *key)
{
	const char *v = json_get_str(req, key);

	snprintf(dst, cap, "%s", v ? v : "");
}

/*
 * An optional whole-number member (req, key, max, out, reply, len): absent leaves *out
 * alone. False, with the refusal in reply, when it is there but not a whole number in
 * [0, max]: never a double cast to an integer it may not fit.
 */
static bool get_u64(const struct json_obj *req, const char *key, uint64_t max, uint64_t *out,
		    char *reply, size_t len)
{
	char msg[160];

	if (json_get_u64(req, key, max, out) == 0 || !json_get(req, key))
		return true;
	snprintf(msg, sizeof(msg), "%s must be a whole number from 0 to %" PRIu64, key, max);
	api_fail(reply, len, msg);
	return false;
}

static bool get_bool(const struct json_obj *req, const char *key)
{
	const struct json_member *m = json_get(req, key);

	return m && m->type == JSON_T_BOOL && m->b;
}

/*
 * After a completed migration the source stops for good: once the final status has been
 * read through the API (so `godwit migrate` can report it), or after a grace period. Only
 * then: a failed, cancelled or unconfirmed one leaves the VM here (unconfirmed: held
 * paused for the user, who resumes or quits it).
 */
static void *mig_watch_thread(void *arg)
{
	struct vm_host *h = arg;
	struct mig_stats st;
	uint64_t done_at = 0;

	for (;;) {
		bool reported;

		usleep(20000);
		pthread_mutex_lock(&h->lock);
		reported = h->mig_reported;
		mig_source_stats(h->mig, &st);
		pthread_mutex_unlock(&h->lock);
		if (st.state == MIG_STATE_FAILED || st.state == MIG_STATE_CANCELLED ||
		    st.state == MIG_STATE_UNCONFIRMED)
			return NULL;
		if (st.state != MIG_STATE_COMPLETED)
			continue;
		if (!done_at)
			done_at = clock_now_ms();
		if (reported || clock_now_ms() - done_at > MIG_REPORT_GRACE_MS) {
			vm_request_stop(h->vm);
			return NULL;
		}
	}
}

static void api_migrate(void *arg, const struct json_obj *req, char *reply, size_t len)
{
	struct vm_host *h = arg;
	struct mig_params p = { 0 };
	char err[320] = "";
	int rc;

	copy_str(p.to, sizeof(p.to), req, "to");
	copy_str(p.auth.psk_file, sizeof(p.auth.psk_file), req, "psk_file");
	copy_str(p.auth.cert_file, sizeof(p.auth.cert_file), req, "tls_cert");
	copy_str(p.auth.key_file, sizeof(p.auth.key_file), req, "tls_key");
	copy_str(p.auth.ca_file, sizeof(p.auth.ca_file), req, "tls_ca");
	copy_str(p.auth.server_name, sizeof(p.auth.server_name), req, "tls_server_name");
	p.auth.insecure_plaintext = get_bool(req, "insecure_plaintext");
	if (!get_u64(req, "downtime_ms", UINT64_MAX, &p.downtime_ms, reply, len) ||
	    !get_u64(req, "max_bandwidth", UINT64_MAX, &p.max_bandwidth, reply, len) ||
	    !get_u64(req, "timeout_ms", UINT64_MAX, &p.timeout_ms, reply, len))
		return;
	p.with_disk = get_bool(req, "with_disk");
	p.verify = get_bool(req, "verify");
	{
		char level[16], msg[80];

		copy_str(level, sizeof(level), req, "compress");
		if (level[0] && mig_compress_parse(level, &p.compress) < 0) {
			snprintf(msg, sizeof(msg), "compress must be off or a zstd level from 1 "
				 "to %d", MIG_COMPRESS_MAX);
			api_fail(reply, len, msg);
			return;
		}
	}

	if (p.auth.insecure_plaintext && !h->access.allow_plaintext) {
		api_fail(reply, len, "insecure_plaintext migration refused: this VM was not started "
			 "with --allow-plaintext-migration (restart it with that flag, on a trusted "
			 "link only, or migrate with --psk-file or the --tls-* certificates)");
		return;
	}
	pthread_mutex_lock(&h->lock);
	if (h->mig && !mig_source_finished(h->mig)) {
		pthread_mutex_unlock(&h->lock);
		api_fail(reply, len, "a migration is already running: wait for it or cancel it");
		return;
	}
	if (h->snapshotting) {
		pthread_mutex_unlock(&h->lock);
		api_fail(reply, len, "a snapshot is running: migrate after it");
		return;
	}
	if (vm_state(h->vm) != VM_STATE_RUNNING) {
		pthread_mutex_unlock(&h->lock);
		api_fail(reply, len, "the VM is not running: resume it before migrating");
		return;
	}
	if (h->mig_watching) {
		pthread_join(h->mig_watch, NULL);
		h->mig_watching = false;
	}
	mig_source_free(h->mig);
	h->mig = NULL;
	h->mig_reported = false;
	rc = mig_source_start(&h->mig, h->vm, &p, err, sizeof(err));
	if (rc == 0 && pthread_create(&h->mig_watch, NULL, mig_watch_thread, h) == 0)
		h->mig_watching = true;
	pthread_mutex_unlock(&h->lock);
	if (rc < 0)
		api_fail(reply, len, err);
	else
		snprintf(reply, len, "{\"ok\":true,\"state\":\"setup\"}");
}

static void api_migrate_status(void *arg, const struct json_obj *req, char *reply, size_t len)
{
	struct vm_host *h = arg;
	struct mig_stats st;
	char *json;

	(void)req;
	pthread_mutex_lock(&h->lock);
	if (!h->mig) {
		pthread_mutex_unlock(&h->lock);
		api_fail(reply, len, "no migration has been started on this VM");
		return;
	}
	mig_source_stats(h->mig, &st);
	if (st.state == MIG_STATE_COMPLETED || st.state == MIG_STATE_FAILED ||
	    st.state == MIG_STATE_CANCELLED || st.state == MIG_STATE_UNCONFIRMED)
		h->mig_reported = true;
	pthread_mutex_unlock(&h->lock);
	json = malloc(len);
	if (!json) {
		api_fail(reply, len, "out of memory");
		return;
	}
	mig_stats_json(&st, json, len - 32);
	/* Flat: the figures' own members follow "ok" (json starts with '{'). */
	snprintf(reply, len, "{\"ok\":true,%s", json + 1);
	free(json);
}

static void api_migrate_cancel(void *arg, const struct json_obj *req, char *reply, size_t len)
{
	struct vm_host *h = arg;
	int rc = -EALREADY;

	(void)req;
	pthread_mutex_lock(&h->lock);
	if (h->mig)
		rc = mig_source_cancel(h->mig);
	pthread_mutex_unlock(&h->lock);
	if (rc == -EALREADY)
		api_fail(reply, len, "no migration is running: nothing to cancel");
	else if (rc == -EBUSY)
		api_fail(reply, len, "the migration is past its commit point (the destination was "
			 "told to run the VM): it can no longer be cancelled; see migrate-status");
	else
		snprintf(reply, len, "{\"ok\":true}");
}

/*
 * Snapshot into a repository. A slow command: it runs on a thread of its own while the API
 * answers status and the rest; h->snapshotting keeps a second snapshot and a migration out.
 */
static void api_snapshot(void *arg, const struct json_obj *req, char *reply, size_t len)
{
	struct vm_host *h = arg;
	struct snap_params p = { 0 };
	struct snap_result res;
	char repo[PATH_MAX], key_file[PATH_MAX], name[SNAP_NAME_MAX + 1], err[512] = "";
	char endpoint[256], s3_log[2 * sizeof(res.s3_log) + 8];
	uint64_t rounds = 0, lock_wait = 0, s3_retry = 0;
	int rc;

	copy_str(endpoint, sizeof(endpoint), req, "endpoint"); /* S3; "" = the VMM's environment */
	copy_str(repo, sizeof(repo), req, "repo");
	copy_str(key_file, sizeof(key_file), req, "key_file");
	copy_str(name, sizeof(name), req, "name");
	if (!repo[0]) {
		api_fail(reply, len, "snapshot needs \"repo\": the repository directory");
		return;
	}
	p.repo = repo;
	p.key_file = key_file[0] ? key_file : NULL;
	p.vm_name = name[0] ? name : "vm";
	if (!get_u64(req, "max_rounds", UINT_MAX, &rounds, reply, len))
		return;
	p.max_rounds = (unsigned)rounds;
	p.no_live = get_bool(req, "no_live");
	p.endpoint = endpoint[0] ? endpoint : NULL;
	p.min_bytes = get_bool(req, "min_bytes");
	p.verify = get_bool(req, "verify");
	if (!get_u64(req, "lock_wait", UINT_MAX, &lock_wait, reply, len) ||
	    !get_u64(req, "s3_retry", 86400, &s3_retry, reply, len))
		return;
	p.lock_wait_s = (unsigned)lock_wait;
	p.repo_locked = get_bool(req, "repo_locked");
	p.cancel = &h->snap_cancel;
	/* No "s3_retry": the default budget (s3.h). */
	p.s3_retry_s = json_get(req, "s3_retry") ? (int)s3_retry : -1;
	pthread_mutex_lock(&h->lock);
	if (h->mig && !mig_source_finished(h->mig)) {
		pthread_mutex_unlock(&h->lock);
		api_fail(reply, len, "a migration is running: snapshot after it");
		return;
	}
	if (h->snapshotting) {
		pthread_mutex_unlock(&h->lock);
		api_fail(reply, len, "a snapshot is already running: wait for it");
		return;
	}
	if (vm_state(h->vm) != VM_STATE_RUNNING) {
		pthread_mutex_unlock(&h->lock);
		api_fail(reply, len, "the VM is not running: resume it before a snapshot");
		return;
	}
	h->snapshotting = true;
	pthread_mutex_unlock(&h->lock);
	/* h->snap is only touched by the one snapshot that h->snapshotting lets run. */
	rc = snap_take(h->vm, &h->snap, &p, &res, err, sizeof(err));
	pthread_mutex_lock(&h->lock);
	h->snapshotting = false;
	pthread_mutex_unlock(&h->lock);
	if (rc < 0) {
		api_fail(reply, len, err);
		return;
	}
	json_quote(s3_log, sizeof(s3_log), res.s3_log);
	snprintf(reply, len,
		 "{\"ok\":true,\"id\":\"%s\",\"parent\":\"%s\",\"pause_ms\":%" PRIu64
		 ",\"pause_us\":%" PRIu64 ",\"pause_stop_us\":%" PRIu64
		 ",\"pause_copy_us\":%" PRIu64 ",\"pause_state_us\":%" PRIu64
		 ",\"pause_verify_us\":%" PRIu64 ",\"total_ms\":%" PRIu64 ",\"bytes_new\":%" PRIu64
		 ",\"bytes_new_stored\":%" PRIu64
		 ",\"mem_chunks_copied\":%" PRIu64 ",\"disk_blocks_copied\":%" PRIu64
		 ",\"rounds\":%u,\"disk_mode\":\"%s\",\"packs_absent\":%" PRIu64
		 ",\"chunks_lost\":%" PRIu64 ",\"s3_retries\":%" PRIu64 ",\"s3_log\":%s}",
		 res.id, res.parent, res.pause_ms, res.pause_us, res.pause_stop_us,
		 res.pause_copy_us, res.pause_state_us, res.pause_verify_us, res.total_ms,
		 res.bytes_new, res.bytes_new_stored,
		 res.mem_chunks_copied, res.disk_blocks_copied, res.rounds, res.disk_mode,
		 res.packs_absent, res.chunks_lost, res.s3_retries, s3_log);
}

static const struct api_cmd host_api_cmds[] = {
	{ "snapshot", api_snapshot, .slow = true },
	{ "status", api_status },
	{ "pause", api_pause },
	{ "resume", api_resume },
	{ "quit", api_quit },
	{ "migrate", api_migrate },
	{ "migrate-status", api_migrate_status },
	{ "migrate-cancel", api_migrate_cancel },
	{ "announce", api_announce },
	{ NULL, NULL },
};

/* ---- Serving ----------------------------------------------------------------------- */

static void *signal_thread(void *arg)
{
	struct vm *vm = arg;
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	if (sigwait(&set, &sig) == 0)
		vm_request_stop(vm);
	return NULL;
}

static void *stdin_thread(void *arg)
{
	struct vm *vm = arg;
	char buf[64];

	for (;;) {
		ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		vm_console_input(vm, buf, (size_t)n);
	}
	return NULL;
}

static void report_exit(const struct vm_exit_info *x)
{
	char bytes[3 * sizeof(x->insn) + 1] = "";
	size_t off = 0;

	for (unsigned i = 0; i < x->insn_len && off < sizeof(bytes); i++)
		off += (size_t)snprintf(bytes + off, sizeof(bytes) - off, "%s%02x", i ? " " : "",
					x->insn[i]);
	cli_error("guest stopped on vCPU %u: %s, rip 0x%" PRIx64 ", instruction bytes: %s",
		  x->vcpu, x->detail, x->rip, x->insn_len ? bytes : "(unreadable)");
}

int vm_host_opt(int opt, const char *arg, struct vm_host_access *a)
{
	char err[256];

	switch (opt) {
	case VM_HOST_OPT_API_GROUP:
		if (api_access_group(&a->api, arg, err, sizeof(err)) < 0) {
			cli_error("%s", err);
			return -1;
		}
		return 1;
	case VM_HOST_OPT_ALLOW_PLAIN:
		a->allow_plaintext = true;
		return 1;
	case VM_HOST_OPT_USER:
		if (sandbox_user(&a->sandbox, arg, err, sizeof(err)) < 0) {
			cli_error("%s", err);
			return -1;
		}
		return 1;
	case VM_HOST_OPT_SECCOMP:
		if (strcmp(arg, "on") != 0 && strcmp(arg, "off") != 0) {
			cli_error("--seccomp '%s' is not on or off", arg);
			return -1;
		}
		a->sandbox.seccomp_off = strcmp(arg, "off") == 0;
		return 1;
	default:
		return 0;
	}
}

int vm_host_open(struct vm_host *h, struct vm *vm, const char *api_path,
		 const struct vm_host_access *access)
{
	char err[512] = "";
	int rc;

	memset(h, 0, sizeof(*h));
	h->vm = vm;
	h->api_path = api_path;
	if (access)
		h->access = *access;
	h->started_ms = clock_now_ms();
	atomic_init(&h->snap_cancel, false);
	pthread_mutex_init(&h->lock, NULL);
	if (api_path) {
		rc = api_server_start(&h->api, api_path, &h->access.api, host_api_cmds, h, err,
				      sizeof(err));
		if (rc < 0) {
			cli_error("%s", err);
			pthread_mutex_destroy(&h->lock);
			return CLI_EXIT_ERROR;
		}
	}
	/* Everything is open and no vCPU has run: from here on, least privilege. */
	rc = sandbox_enter(&h->access.sandbox, vm, api_path, err, sizeof(err));
	if (rc < 0) {
		cli_error("%s", err);
		vm_host_close(h);
		return CLI_EXIT_ERROR;
	}
	return CLI_EXIT_OK;
}

void vm_host_close(struct vm_host *h)
{
	api_server_stop(h->api, 0);
	h->api = NULL;
	pthread_mutex_destroy(&h->lock);
}

int vm_host_serve(struct vm_host *h)
{
	struct vm *vm = h->vm;
	struct vm_exit_info exit_info;
	struct termios tio_saved;
	pthread_t tid;
	bool tty = false;
	int rc, status;

	/* -EINVAL: started already (a received VM). A failed start ends in vm_wait below. */
	rc = vm_start(vm);
	if (rc < 0 && rc != -EINVAL)
		cli_error("cannot start the vCPUs: %s", strerror(-rc));
	else if (rc == 0 && h->on_started)
		h->on_started(h, h->on_started_arg);
	if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &tio_saved) == 0) {
		struct termios raw = tio_saved;

		/* Keystrokes go to the guest one by one; Ctrl-C still stops godwit. */
		raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
		tcsetattr(STDIN_FILENO, TCSANOW, &raw);
		tty = true;
	}
	if (pthread_create(&tid, NULL, signal_thread, vm) == 0)
		pthread_detach(tid);
	if (tty && pthread_create(&tid, NULL, stdin_thread, vm) == 0)
		pthread_detach(tid);

	vm_wait(vm, &exit_info);
	switch (exit_info.kind) {
	case VM_EXIT_POWEROFF:
	case VM_EXIT_RESET:
	case VM_EXIT_QUIT:
		status = CLI_EXIT_OK;
		break;
	case VM_EXIT_HOST_ERROR:
		report_exit(&exit_info);
		status = CLI_EXIT_ERROR;
		break;
	default:
		report_exit(&exit_info);
		status = CLI_EXIT_GUEST_CRASH;
		break;
	}
	if (tty)
		tcsetattr(STDIN_FILENO, TCSANOW, &tio_saved);
	/*
	 * A snapshot still running (stalled on S3, say) gives up now: its transfers abort
	 * within about a second, it fails cleanly, and the VM is destroyed as usual.
	 */
	atomic_store(&h->snap_cancel, true);
	if (!api_server_stop(h->api, VM_HOST_STOP_WAIT_MS)) {
		/*
		 * A snapshot still runs despite the cancel (a step that cannot be interrupted):
		 * the VM has stopped and the snapshot is not published; end now rather than past
		 * a service manager's stop timeout. Its thread still uses the VM, so nothing is
		 * freed.
		 */
		cli_error("a snapshot was still running %d s after the VM stopped: exiting "
			  "without it (it is not stored)", VM_HOST_STOP_WAIT_MS / 1000);
		fflush(NULL);
		_exit(status == CLI_EXIT_OK ? CLI_EXIT_ERROR : status);
	}
	/* The watch thread reads h->mig until its state is final: join it before the free. */
	if (h->mig)
		mig_source_cancel(h->mig);
	if (h->mig_watching)
		pthread_join(h->mig_watch, NULL);
	mig_source_free(h->mig);
	snap_tracker_release(&h->snap);
	pthread_mutex_destroy(&h->lock);
	return status;
}

int cli_console_open(struct cli_console *c, const char *path)
{
	c->path = path;
	c->fd = STDOUT_FILENO;
	c->created = false;
	if (!path)
		return 0;
	/*
	 * The guest's output is its own business: a new file is private (0600). A symlink is
	 * never followed (a path in a shared directory could point anywhere), and whether we
	 * made the file is known from O_EXCL, not guessed beforehand, so a discard removes
	 * only a file we created.
	 */
	c->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	c->created = c->fd >= 0;
	if (c->fd < 0 && errno == EEXIST)
		c->fd = open(path, O_WRONLY | O_TRUNC | O_NOFOLLOW | O_CLOEXEC);
	if (c->fd < 0) {
		cli_error("console file %s: %s%s", path, strerror(errno),
			  errno == ELOOP ? " (a symlink: name the file itself)" : "");
		return -1;
	}
	return 0;
}

void cli_console_close(struct cli_console *c, bool discard)
{
	if (!c->path || c->fd < 0)
		return;
	close(c->fd);
	c->fd = -1;
	if (discard && c->created)
		unlink(c->path);
}
