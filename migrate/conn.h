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
 * Listen on hostport and call on_listen (if set) with the address bound (lfd_out: the
 * non-blocking listening socket, the caller's). Returns 0 or -errno with a reason in err.
 */
int mig_conn_listen(int *lfd_out, const char *hostport,
		    void (*on_listen)(void *ctx, const char *hostport), void *ctx, char *err,
		    size_t errlen);

/*
 * Authenticate the connected socket fd per auth within handshake_ms (0: the default): as
 * the client of peer_host (whose name a certificate must carry, unless auth names
 * another), or as the server when peer_host is NULL. out is the stream, which then owns
 * fd. On failure fd stays the caller's and err says why. Returns 0 or -errno.
 */
int mig_conn_secure(struct stream **out, int fd, const struct mig_auth *auth,
		    const char *peer_host, int handshake_ms, char *err, size_t errlen);

#endif
