/* Internals of the TLS stream shared by its mechanism, configuration and error files. */
#ifndef TRANSPORT_TLS_PRIV_H
#define TRANSPORT_TLS_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <openssl/ssl.h>

#include "transport/stream.h"
#include "transport/tls_psk.h"
#include "transport/tls_stream.h"

#define TLS_WBUF_BYTES (16u * 1024) /* one full TLS record of plaintext */

/*
 * One TLS connection. Owned by the one thread that uses the stream; OpenSSL calls the
 * BIO and PSK callbacks on that same thread, from inside SSL_* calls.
 */
struct tls_stream {
	struct stream base;
	int fd;
	int fd_flags;          /* fd's status flags before we set O_NONBLOCK */
	bool server;
	enum tls_auth auth;
	int io_timeout_ms;
	int64_t deadline_ms;   /* during handshake and close: absolute limit; else -1 */
	SSL_CTX *ctx;
	SSL *ssl;
	BIO_METHOD *biom;
	struct tls_psk psk;
	/* What happened below and inside OpenSSL, for error reports. */
	int sock_errno;        /* last hard send/recv error */
	bool sock_eof;         /* recv returned 0 */
	bool psk_offered;      /* server: the client offered some PSK */
	bool psk_unknown_id;   /* server: ... under an identity other than ours */
	bool cert_in_psk_mode; /* client, PSK mode: the server sent a certificate instead */
	size_t wlen;           /* plaintext waiting in wbuf */
	uint8_t wbuf[TLS_WBUF_BYTES];
	char errmsg[256];
};

/*
 * Record a failure description in t->errmsg (t, rc, printf format) and return rc, so
 * callers write "return tls_error_set(t, -EACCES, ...)".
 */
__attribute__((format(printf, 3, 4)))
int tls_error_set(struct tls_stream *t, int rc, const char *fmt, ...);

/*
 * Turn OpenSSL's error queue after a failed SSL_* call (t, ssl_err from SSL_get_error,
 * handshake: still in the handshake or ready exchange) into a return code and a sentence
 * in t->errmsg, and clear the queue.
 */
int tls_error_explain(struct tls_stream *t, int ssl_err, bool handshake);

/*
 * Build t->ctx for t->server and cfg->auth (t, cfg): TLS 1.3 only, no tickets or session
 * cache, and PSK callbacks or certificate files and peer verification. Returns 0 or a
 * code with t->errmsg set.
 */
int tls_config_ctx(struct tls_stream *t, const struct tls_config *cfg);

/*
 * Client side, certificate mode: make the handshake check cfg->server_name (DNS name or
 * IP address) and send it as SNI (t, cfg). A no-op without a name. Returns 0 or -EINVAL.
 */
int tls_config_peer_name(struct tls_stream *t, const struct tls_config *cfg);

#endif
