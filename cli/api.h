/* The control API: one JSON request per line on a UNIX socket, one JSON reply per line. */
#ifndef CLI_API_H
#define CLI_API_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "cli/json.h"

struct api_server;

/*
 * A command handler: fill reply (one JSON object, no newline) for req. A quick handler
 * runs on the API thread and must not wait for long (a pause waits for the vCPUs, no
 * more); a slow one (struct api_cmd.slow) runs on a thread of its own, while the API
 * thread goes on answering every other client, so it must be safe beside the quick ones.
 */
typedef void (*api_cmd_fn)(void *ctx, const struct json_obj *req, char *reply, size_t len);

struct api_cmd {
	const char *name;
	api_cmd_fn fn;
	bool slow; /* may take minutes (a snapshot to S3): run off the API thread */
};

/*
 * Who may use the API besides root and this process's own user: with has_group, the
 * members of gid (the socket is then mode 0660 and owned by that group; else 0600).
 */
struct api_access {
	bool has_group;
	gid_t gid;
	char group[64]; /* its name, for messages */
};

/*
 * Resolve a --api-group argument (name, or a number) into acc. Returns 0, or -ENOENT with
 * a one-line reason in err.
 */
int api_access_group(struct api_access *acc, const char *name, char *err, size_t errlen);

/*
 * Listen on path and serve cmds (terminated by a {NULL, NULL} entry) on a thread of its
 * own. The socket is mode 0600 (0660 for acc's group) whatever the umask, made under a
 * private name and renamed into place; a connection whose peer (SO_PEERCRED) is not root,
 * this process's user or in acc's group is closed, with one line on stderr. A stale socket
 * file left by a dead process is replaced; a live one is an error. acc may be NULL (no
 * group). Returns 0, or -errno with a one-line reason in err.
 */
int api_server_start(struct api_server **out, const char *path, const struct api_access *acc,
		     const struct api_cmd *cmds, void *ctx, char *err, size_t errlen);

/*
 * Stop the thread, close every connection and remove the socket file. A slow command
 * still running is waited for up to wait_ms; returns false if one still runs then (its
 * thread keeps the server's memory; the caller must not free what the handler uses).
 */
bool api_server_stop(struct api_server *s, int wait_ms);

#endif
