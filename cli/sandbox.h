/* Least privilege for a process that runs a VM: a user, no new privileges, a syscall filter. */
#ifndef CLI_SANDBOX_H
#define CLI_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct vm;

struct sandbox {
	bool seccomp_off; /* --seccomp off: no filter (debugging only) */
	bool has_user;    /* --user USER */
	uid_t uid;
	gid_t gid;
	char user[64];
	bool filtered; /* sandbox_filter ran: sandbox_enter adds only the rest */
};

/*
 * Resolve --user USER (a name, or a number) into sb. Returns 0, or -ENOENT with a one-line
 * reason in err.
 */
int sandbox_user(struct sandbox *sb, const char *name, char *err, size_t errlen);

/*
 * Install the process-wide filter now (sb, err, errlen), before the VM exists, for a
 * process that talks to the network first (godwit receive): sandbox_enter later adds the
 * user, the capabilities and the vCPU filter. Sets sb->filtered. Returns 0 or -errno.
 */
int sandbox_filter(struct sandbox *sb, char *err, size_t errlen);

/*
 * Enter the sandbox (sb, vm, api_path, err, errlen), once every file, device and socket
 * the VM needs is open and before its vCPUs first run (a started VM is refused with
 * -EBUSY): with --user, give api_path to the user, drop every capability
 * and become the user; set PR_SET_NO_NEW_PRIVS; unless seccomp_off, install the
 * process-wide syscall allowlist on every thread (a forbidden call ends the process with
 * a line naming the call and the thread), and have each vCPU thread add the tighter vCPU
 * filter before its next KVM_RUN. Returns 0, or -errno with a one-line reason in err.
 */
int sandbox_enter(const struct sandbox *sb, struct vm *vm, const char *api_path, char *err,
		  size_t errlen);

#endif
