/* Serving a running VM: the control API, signals, the terminal, and the exit status. */
#ifndef CLI_VM_HOST_H
#define CLI_VM_HOST_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "cli/api.h"
#include "cli/sandbox.h"
#include "migrate/migrate.h"
#include "snapshot/engine.h"
#include "vmm/vm.h"

/* Who may command the VM, and what it may be told to do: run, restore and receive options. */
struct vm_host_access {
	struct api_access api;
	bool allow_plaintext; /* --allow-plaintext-migration: the API may send RAM unencrypted */
	struct sandbox sandbox; /* --user, --seccomp */
};

/* getopt_long codes of the access options; spread VM_HOST_ACCESS_OPTIONS into a table. */
enum {
	VM_HOST_OPT_API_GROUP = 0x180,
	VM_HOST_OPT_ALLOW_PLAIN,
	VM_HOST_OPT_USER,
	VM_HOST_OPT_SECCOMP,
};

#define VM_HOST_ACCESS_OPTIONS \
	{ "api-group", required_argument, NULL, VM_HOST_OPT_API_GROUP }, \
	{ "allow-plaintext-migration", no_argument, NULL, VM_HOST_OPT_ALLOW_PLAIN }, \
	{ "user", required_argument, NULL, VM_HOST_OPT_USER }, \
	{ "seccomp", required_argument, NULL, VM_HOST_OPT_SECCOMP }

#define VM_HOST_ACCESS_USAGE \
	"  --api-group GROUP      members of GROUP may use the API too (socket mode 0660;\n" \
	"                         default 0600: root and this user only)\n" \
	"  --allow-plaintext-migration\n" \
	"                         let the API migrate with insecure_plaintext (guest RAM\n" \
	"                         unencrypted and unauthenticated: trusted links only)\n" \
	"  --user USER            once /dev/kvm, taps, disks and sockets are open, run as\n" \
	"                         USER with no capabilities (godwit started as root)\n" \
	"  --seccomp on|off       the syscall filter (default on; off only for debugging)\n"

/*
 * Take opt (a getopt_long code) into a. Returns 1 if it was an access option, 0 if not,
 * -1 after printing a one-line error for a bad argument.
 */
int vm_host_opt(int opt, const char *arg, struct vm_host_access *a);

struct vm_host {
	struct vm *vm;
	struct vm_host_access access;
	const char *api_path; /* NULL: no API */
	/* Under lock: the outgoing migration, owned by the API thread's handlers. */
	pthread_mutex_t lock;
	struct mig_source *mig;
	bool mig_reported; /* its final status was read through the API */
	pthread_t mig_watch;
	bool mig_watching;
	bool snapshotting; /* under lock: a snapshot runs (on the API's slow-command thread) */
	atomic_bool snap_cancel; /* the VM has stopped: a running snapshot gives up (snap_params) */
	uint64_t started_ms;
	/* Under lock: what the next snapshot is incremental against. */
	struct snap_tracker snap;
	struct api_server *api; /* NULL: no API */
	/* Called by vm_host_serve right after it started the vCPUs. May be NULL. */
	void (*on_started)(struct vm_host *h, void *arg);
	void *on_started_arg;
};

/*
 * Block SIGINT/SIGTERM/SIGHUP and ignore SIGPIPE for the whole process. Call first in a
 * command that will run a VM, before any thread starts.
 */
void vm_host_signals(void);

/*
 * Get ready to serve vm (h, vm, api_path, access): the API on api_path (if set) for access
 * (NULL: the defaults), then the sandbox (--user, no new privileges, the syscall filter,
 * the vCPU filter). Call once every file, device and socket the VM needs is open and
 * before any vCPU runs (sandbox_enter refuses a started VM). Returns CLI_EXIT_OK, or
 * CLI_EXIT_ERROR after printing one line (nothing is left open).
 */
int vm_host_open(struct vm_host *h, struct vm *vm, const char *api_path,
		 const struct vm_host_access *access);

/* Give up an opened host without serving it (the VM never ran here): stop its API. */
void vm_host_close(struct vm_host *h);

/*
 * Serve an opened host until its VM stops: start the vCPUs if not started yet (then call
 * h->on_started), SIGINT/SIGTERM as a clean stop, keystrokes from a terminal stdin to the
 * guest. Prints one line for a guest that died, or whose vCPUs could not start. Returns
 * the exit status (cli.h); the VM is left for the caller to destroy.
 */
int vm_host_serve(struct vm_host *h);

/*
 * Tell the network that vm's guest is here now (vm_announce): after_move (a migration or
 * a restore) unless the test-only environment variable GODWIT_TEST_NO_ANNOUNCE is set (the
 * negative control of the network tests; not for users), or when asked (the API's
 * announce). note (len bytes, may be NULL)
 * gets one line for the migration's RUNNING reply: "announced nics=N frames=F guest=G"
 * or "announce off". Returns 0 or -errno (the first round went out anyway).
 */
int vm_host_announce(struct vm *vm, bool after_move, char *note, size_t len);

/* The guest's serial console: stdout, or the file --console names. */
struct cli_console {
	const char *path; /* NULL: stdout */
	int fd;
	bool created;     /* this process made the file */
};

/*
 * Open the console (c, path; path NULL for stdout): the file is created or truncated.
 * Returns 0, or -1 after printing a one-line error.
 */
int cli_console_open(struct cli_console *c, const char *path);

/* Close it (c, discard); with discard (no VM ever ran) a file open created is removed. */
void cli_console_close(struct cli_console *c, bool discard);

#endif
