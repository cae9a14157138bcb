/* The authenticated connection under a migration: TCP, then TLS 1.3 unless plaintext. */
#ifndef MIGRATE_CONN_H
#define MIGRATE_CONN_H

#include <stddef.h>

#include "migrate/migrate.h"

struct stream;

/*
 * Lets the caller cut a connection attempt short from another thread (mig_conn_connect):
 * the TCP connect stops once wake_fd is readable; connected(ctx, fd) is called with the
 * socket before the TLS handshake, so the caller can shut it down to stop the handshake
 * or any later wait, and returns 0 to go on or -ECANCELED to stop there.
 */
struct mig_conn_cancel {
	int wake_fd;
	int (*connected)(void *ctx, int fd);
	void *ctx;
};

/*
 * Connect to hostport and authenticate as a client (out: the bidirectional stream, fd_out:
 * its socket, kept open by the stream; cx may be NULL). Returns 0, -ECANCELED (cx), or
 * -errno with a one-line reason in err.
 */
int mig_conn_connect(struct stream **out, int *fd_out, const char *hostport,
		     const struct mig_auth *auth, int timeout_ms, const struct mig_conn_cancel *cx,
		     char *err, size_t errlen);

/*
 * Listen on hostport, call on_listen (if set), accept one peer within timeout_ms and
 * authenticate as a server.
 */
int mig_conn_accept(struct stream **out, int *fd_out, const char *hostport,
		    const struct mig_auth *auth, int timeout_ms,
		    void (*on_listen)(void *ctx, const char *hostport), void *ctx, char *err,
		    size_t errlen);

#endif
