/* TLS 1.3 over a connected socket, both ends authenticated by an external PSK or by certificates. */
#ifndef TRANSPORT_TLS_STREAM_H
#define TRANSPORT_TLS_STREAM_H

#include <stddef.h>

#include "transport/stream.h"
#include "transport/tls_psk.h"

/*
 * Only TLS 1.3 is spoken. Two ways to authenticate, chosen per endpoint and required to
 * match at both ends:
 *
 * TLS_AUTH_PSK    External PSK (see tls_psk.h), identity TLS_PSK_IDENTITY, suite
 *                 TLS_AES_256_GCM_SHA384, key exchange psk_dhe_ke (PSK plus X25519 or
 *                 another ECDHE group), so recorded traffic stays secret even if the PSK
 *                 leaks later. No certificates at all.
 * TLS_AUTH_CERT   Mutual X.509: each end presents cert_file/key_file and accepts only a
 *                 peer chain that verifies up to ca_file. The server demands a client
 *                 certificate. The client checks the server's name only when server_name
 *                 is set (DNS name or IP address); without it any certificate from ca_file
 *                 is accepted, which suits a private CA that issues only godwit hosts.
 *
 * After the handshake the server sends one "ready" message as its first application
 * bytes, and tls_client waits for it, so that a client whose certificate the server
 * rejects learns so inside tls_client (TLS 1.3 finishes the client's handshake before the
 * server has checked the client certificate). Changing this requires a
 * TLS_READY_VERSION bump:
 *
 *    0        4         6         8
 *    +--------+---------+---------+
 *    | "GWTL" | version | flags=0 |
 *    +--------+---------+---------+
 *
 * The stream buffers writes into records of up to 16 KiB (stream_flush sends them).
 * stream_close(s, true) flushes, sends close_notify and shuts down our sending direction;
 * once the peer's close_notify has been read, failing to deliver ours is not an error
 * (the peer may be gone already). stream_close(s, false) sends no close_notify, so the
 * peer sees a truncated stream (-EPROTO), never a clean end. A peer's close_notify reads
 * as -ENODATA; a connection that ends without one is -EPROTO. Socket writes use
 * MSG_NOSIGNAL, so a vanished peer never raises SIGPIPE. A reader should read to the end
 * (frame_read returning -ENODATA does) before closing, so that its socket holds no unread
 * bytes: closing over unread bytes makes TCP reset the connection under the writer.
 * A client in PSK mode refuses any server certificate, and each side checks after the
 * handshake that the mode it asked for was used, so a PSK peer can never be downgraded to
 * an unauthenticated certificate handshake.
 */
#define TLS_PSK_IDENTITY "godwit"
#define TLS_READY_MAGIC "GWTL"
#define TLS_READY_VERSION 1
#define TLS_READY_BYTES 8
#define TLS_HANDSHAKE_TIMEOUT_MS_DEFAULT 10000

_Static_assert(TLS_READY_BYTES == sizeof(TLS_READY_MAGIC) - 1 + 2 + 2, "ready message");

enum tls_auth {
	TLS_AUTH_INVALID = 0,
	TLS_AUTH_PSK = 1,
	TLS_AUTH_CERT = 2,
};

struct tls_config {
	enum tls_auth auth;
	const struct tls_psk *psk;   /* TLS_AUTH_PSK: from tls_psk_load; copied */
	const char *cert_file;       /* TLS_AUTH_CERT: our certificate chain, PEM */
	const char *key_file;        /* TLS_AUTH_CERT: its private key, PEM */
	const char *ca_file;         /* TLS_AUTH_CERT: CA certificates that sign peers, PEM */
	const char *server_name;     /* client, TLS_AUTH_CERT: name to verify, or NULL */
	int handshake_timeout_ms;    /* whole handshake incl. ready; 0: the default */
	int io_timeout_ms;           /* idle limit per read or write afterwards; 0: none */
};

/*
 * Run the client side of a handshake on the connected socket fd (out, fd, cfg, err,
 * err_len). On success the stream owns fd and closes it at stream_close; on failure fd
 * stays the caller's (its O_NONBLOCK flag restored) and err holds one line such as
 * "wrong PSK: ...", "server certificate rejected: ...", "peer is not speaking TLS ...".
 * Returns 0; -EKEYREJECTED (PSK mismatch); -EACCES (certificate refused either way, or a
 * missing client certificate); -EPROTO (the peer does not speak TLS 1.3 or broke the
 * protocol); -ETIMEDOUT; -ECONNRESET (the peer hung up); -EINVAL, -ENOENT (cfg or its
 * files); -ENOMEM; -EIO.
 */
int tls_client(struct stream **out, int fd, const struct tls_config *cfg, char *err,
	       size_t err_len);

/* The server side of tls_client: same arguments, ownership and return codes. */
int tls_server(struct stream **out, int fd, const struct tls_config *cfg, char *err,
	       size_t err_len);

/*
 * A description of the last failure of TLS stream s (s), e.g. why a read failed, or ""
 * when there was none. Borrowed; valid until the next call on s. NULL if s is not a TLS
 * stream.
 */
const char *tls_stream_error(struct stream *s);

#endif
