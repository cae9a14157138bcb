/* A client of a running VM's control API: one request line out, one reply line back. */
#ifndef CLI_API_CLIENT_H
#define CLI_API_CLIENT_H

#include <stddef.h>

struct api_client {
	int fd;
	char path[108];
};

/* Connect to the API socket at path. Returns 0, or -errno with a reason in err. */
int api_client_open(struct api_client *c, const char *path, char *err, size_t errlen);

/*
 * Send req (one JSON object, no newline) and read the reply line into reply (cap bytes,
 * NUL-terminated, newline removed). Returns 0, or -errno with a reason in err.
 */
int api_client_call(struct api_client *c, const char *req, char *reply, size_t cap, char *err,
		    size_t errlen);

void api_client_close(struct api_client *c);

#endif
