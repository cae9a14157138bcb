/* The control API: one JSON request per line on a UNIX socket, one JSON reply per line. */
#ifndef CLI_API_H
#define CLI_API_H

#include <stddef.h>

#include "cli/json.h"

struct api_server;

/*
 * A command handler: fill reply (one JSON object, no newline) for req. Runs on the API
 * thread; a handler may block (a pause waits for the vCPUs) but not forever.
 */
typedef void (*api_cmd_fn)(void *ctx, const struct json_obj *req, char *reply, size_t len);

struct api_cmd {
	const char *name;
	api_cmd_fn fn;
};

/*
 * Listen on path and serve cmds (terminated by a {NULL, NULL} entry) on a thread of its
 * own. A stale socket file left by a dead process is replaced; a live one is an error.
 * Returns 0, or -errno with a one-line reason in err.
 */
int api_server_start(struct api_server **out, const char *path, const struct api_cmd *cmds,
		     void *ctx, char *err, size_t errlen);

/* Stop the thread, close every connection and remove the socket file. */
void api_server_stop(struct api_server *s);

#endif
