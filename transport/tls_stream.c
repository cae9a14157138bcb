/* TLS 1.3 over a connected socket, both ends authenticated by an external PSK or by certificates. */
#include "transport/tls_stream.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "util/byteorder.h"
#include "transport/fd_priv.h"
#include "transport/tls_priv.h"

#define TLS_IO_CHUNK (1u << 20) /* largest single SSL_read/SSL_write */
#define TLS_BIO_TYPE (0x70 | BIO_TYPE_SOURCE_SINK)
#define TLS_CLOSE_TIMEOUT_MS 5000

static const struct stream_ops tls_stream_ops;

/* The socket BIO: send with MSG_NOSIGNAL and remember errno and EOF for reports. */
static int tls_bio_write(BIO *b, const char *buf, int len)
{
	struct tls_stream *t = BIO_get_data(b);
	ssize_t n;

	BIO_clear_retry_flags(b);
	do
		n = send(t->fd, buf, (size_t)len, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n >= 0)
		return (int)n;
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		BIO_set_retry_write(b);
	else
		t->sock_errno = errno;
	return -1;
}

static int tls_bio_read(BIO *b, char *buf, int len)
{
	struct tls_stream *t = BIO_get_data(b);
	ssize_t n;

	BIO_clear_retry_flags(b);
	do
		n = recv(t->fd, buf, (size_t)len, 0);
	while (n < 0 && errno == EINTR);
	if (n > 0)
		return (int)n;
	if (n == 0) {
		t->sock_eof = true;
		return 0;
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		BIO_set_retry_read(b);
	else
		t->sock_errno = errno;
	return -1;
}

static long tls_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct tls_stream *t = BIO_get_data(b);

	(void)num, (void)ptr;
	switch (cmd) {
	case BIO_CTRL_FLUSH:
		return 1;
	case BIO_CTRL_EOF:
		return t && t->sock_eof;
	default:
		return 0;
	}
}

static int tls_bio_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}
/* Wait for the socket as OpenSSL asked: until the deadline if one is set, else idle limit. */
static int tls_wait(struct tls_stream *t, int ssl_err)
{
	int ms, rc;

	if (t->deadline_ms >= 0)
		ms = fd_remaining_ms(t->deadline_ms);
	else
		ms = t->io_timeout_ms > 0 ? t->io_timeout_ms : -1;
	rc = fd_poll(t->fd, ssl_err == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN, ms);
	if (rc == -ETIMEDOUT && t->deadline_ms >= 0)
		return tls_error_set(t, rc, "TLS handshake timed out (is the peer a godwit TLS endpoint?)");
	if (rc == -ETIMEDOUT)
		return tls_error_set(t, rc, "no progress from the peer for %d ms", t->io_timeout_ms);
	if (rc < 0)
		return tls_error_set(t, rc, "poll: %s", strerror(-rc));
	return 0;
}

static bool tls_want(int ssl_err)
{
	return ssl_err == SSL_ERROR_WANT_READ || ssl_err == SSL_ERROR_WANT_WRITE;
}

static int tls_write_raw(struct tls_stream *t, const uint8_t *p, size_t len)
{
	int n, e, rc;

	while (len) {
		/* After WANT_*, OpenSSL needs the very same arguments again. */
		size_t chunk = len < TLS_IO_CHUNK ? len : TLS_IO_CHUNK;

		ERR_clear_error();
		n = SSL_write(t->ssl, p, (int)chunk);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		e = SSL_get_error(t->ssl, n);
		if (!tls_want(e))
			return tls_error_explain(t, e, false);
		rc = tls_wait(t, e);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int tls_read_raw(struct tls_stream *t, uint8_t *p, size_t len)
{
	size_t got = 0;
	int n, e, rc;

	while (got < len) {
		size_t chunk = len - got < TLS_IO_CHUNK ? len - got : TLS_IO_CHUNK;

		ERR_clear_error();
		n = SSL_read(t->ssl, p + got, (int)chunk);
		if (n > 0) {
			got += (size_t)n;
			continue;
		}
		e = SSL_get_error(t->ssl, n);
		if (e == SSL_ERROR_ZERO_RETURN) {
			if (!got)
				return -ENODATA;
			return tls_error_set(t, -EPROTO, "the peer ended the stream inside a read");
		}
		if (!tls_want(e))
			return tls_error_explain(t, e, t->deadline_ms >= 0);
		rc = tls_wait(t, e);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int tls_drain(struct tls_stream *t)
{
	int rc = tls_write_raw(t, t->wbuf, t->wlen);

	t->wlen = 0;
	return rc;
}

static int tls_stream_write(struct stream *s, const void *buf, size_t len)
{
	struct tls_stream *t = STREAM_CONTAINER(s, struct tls_stream, base);
	int rc;

	if (len <= sizeof(t->wbuf) - t->wlen) {
		memcpy(t->wbuf + t->wlen, buf, len);
		t->wlen += len;
		return 0;
	}
	rc = tls_drain(t);
	if (rc < 0)
		return rc;
	if (len >= sizeof(t->wbuf))
		return tls_write_raw(t, buf, len);
	memcpy(t->wbuf, buf, len);
	t->wlen = len;
	return 0;
}

static int tls_stream_read(struct stream *s, void *buf, size_t len)
{
	return tls_read_raw(STREAM_CONTAINER(s, struct tls_stream, base), buf, len);
}

static int tls_stream_flush(struct stream *s)
{
	return tls_drain(STREAM_CONTAINER(s, struct tls_stream, base));
}

/* Send close_notify without waiting for the peer's. */
static int tls_shutdown(struct tls_stream *t)
{
	int n, e, rc;

	t->deadline_ms = fd_deadline_ms(t->io_timeout_ms > 0 ? t->io_timeout_ms : TLS_CLOSE_TIMEOUT_MS);
	for (;;) {
		ERR_clear_error();
		n = SSL_shutdown(t->ssl);
		if (n >= 0)
			return 0;
		e = SSL_get_error(t->ssl, n);
		if (!tls_want(e))
			return tls_error_explain(t, e, false);
		rc = tls_wait(t, e);
		if (rc < 0)
			return rc;
	}
}

/* Free everything; close fd only when the stream owns it. */
static void tls_free(struct tls_stream *t, bool close_fd)
{
	SSL_free(t->ssl); /* frees the BIO too */
	SSL_CTX_free(t->ctx);
	BIO_meth_free(t->biom);
	tls_psk_wipe(&t->psk);
	if (close_fd)
		close(t->fd);
	OPENSSL_cleanse(t->wbuf, sizeof(t->wbuf));
	free(t);
}

static int tls_stream_close(struct stream *s, bool commit)
{
	struct tls_stream *t = STREAM_CONTAINER(s, struct tls_stream, base);
	int rc = 0;

	if (commit) {
		rc = tls_drain(t);
		if (rc == 0)
			rc = tls_shutdown(t);
		/*
		 * Once the peer's close_notify is in, it has all it wanted; if it already hung
		 * up, failing to answer with ours loses nothing:
		 *   1. we read the peer's close_notify (it committed, closed its socket);
		 *   2. our close_notify reaches a closed socket and comes back as a reset;
		 *   3. SSL_shutdown fails with EPIPE or ECONNRESET, which is not a failure of ours.
		 */
		if (rc < 0 && (SSL_get_shutdown(t->ssl) & SSL_RECEIVED_SHUTDOWN))
			rc = 0;
		if (rc == 0)
			shutdown(t->fd, SHUT_WR);
	}
	fd_discard_input(t->fd);
	tls_free(t, true);
	return rc;
}

/* The socket under the TLS session: its TCP figures count the records, not the plaintext. */
static int tls_stream_stats(struct stream *s, struct stream_stats *out)
{
	return fd_tcp_stats(STREAM_CONTAINER(s, struct tls_stream, base)->fd, out);
}

static const struct stream_ops tls_stream_ops = {
	.write = tls_stream_write,
	.read = tls_stream_read,
	.flush = tls_stream_flush,
	.close = tls_stream_close,
	.stats = tls_stream_stats,
};

const char *tls_stream_error(struct stream *s)
{
	if (s->ops != &tls_stream_ops)
		return NULL;
	return STREAM_CONTAINER(s, struct tls_stream, base)->errmsg;
}

static int tls_setup_ssl(struct tls_stream *t, const struct tls_config *cfg)
{
	BIO *bio;

	t->ssl = SSL_new(t->ctx);
	t->biom = BIO_meth_new(TLS_BIO_TYPE, "godwit socket");
	if (!t->ssl || !t->biom)
		return tls_error_set(t, -ENOMEM, "out of memory setting up TLS");
	SSL_set_app_data(t->ssl, t);
	if (!BIO_meth_set_write(t->biom, tls_bio_write) || !BIO_meth_set_read(t->biom, tls_bio_read) ||
	    !BIO_meth_set_ctrl(t->biom, tls_bio_ctrl) || !BIO_meth_set_create(t->biom, tls_bio_create))
		return tls_error_set(t, -ENOMEM, "out of memory setting up TLS");
	bio = BIO_new(t->biom);
	if (!bio)
		return tls_error_set(t, -ENOMEM, "out of memory setting up TLS");
	BIO_set_data(bio, t);
	SSL_set_bio(t->ssl, bio, bio);
	if (t->server) {
		SSL_set_accept_state(t->ssl);
		return 0;
	}
	SSL_set_connect_state(t->ssl);
	return tls_config_peer_name(t, cfg);
}

static int tls_handshake(struct tls_stream *t)
{
	int n, e, rc;

	for (;;) {
		ERR_clear_error();
		n = SSL_do_handshake(t->ssl);
		if (n == 1)
			break;
		e = SSL_get_error(t->ssl, n);
		if (!tls_want(e))
			return tls_error_explain(t, e, true);
		rc = tls_wait(t, e);
		if (rc < 0)
			return rc;
	}
	/* Belt and braces: the handshake must have used the authentication we asked for. */
	if (t->auth == TLS_AUTH_PSK && !SSL_session_reused(t->ssl))
		return tls_error_set(t, -EACCES, "the handshake did not use the PSK");
	if (t->auth == TLS_AUTH_CERT) {
		X509 *peer = SSL_get1_peer_certificate(t->ssl);
		bool ok = peer && SSL_get_verify_result(t->ssl) == X509_V_OK;

		X509_free(peer);
		if (!ok)
			return tls_error_set(t, -EACCES, "the %s's certificate was not verified",
					t->server ? "client" : "server");
	}
	return 0;
}

/* The server says "ready" after accepting the client; the client waits for it. */
static int tls_ready(struct tls_stream *t)
{
	uint8_t msg[TLS_READY_BYTES];
	int rc;

	if (t->server) {
		memcpy(msg, TLS_READY_MAGIC, 4);
		le16_encode(msg + 4, TLS_READY_VERSION);
		le16_encode(msg + 6, 0);
		return tls_write_raw(t, msg, sizeof(msg));
	}
	rc = tls_read_raw(t, msg, sizeof(msg));
	if (rc == -ENODATA)
		return tls_error_set(t, -ECONNRESET, "the server closed the connection after the handshake");
	if (rc < 0)
		return rc;
	if (memcmp(msg, TLS_READY_MAGIC, 4) != 0)
		return tls_error_set(t, -EPROTO, "the server is not a godwit endpoint (no ready message)");
	if (le16_decode(msg + 4) != TLS_READY_VERSION || le16_decode(msg + 6) != 0)
		return tls_error_set(t, -EPROTONOSUPPORT, "the server speaks godwit TLS version %u, we speak %u",
				le16_decode(msg + 4), TLS_READY_VERSION);
	return 0;
}

static int tls_check_config(struct tls_stream *t, const struct tls_config *cfg)
{
	switch (cfg->auth) {
	case TLS_AUTH_PSK:
		if (!cfg->psk)
			return tls_error_set(t, -EINVAL, "tls config: PSK mode without a PSK");
		t->psk = *cfg->psk;
		return 0;
	case TLS_AUTH_CERT:
		return 0;
	default:
		return tls_error_set(t, -EINVAL, "tls config: no authentication mode");
	}
}

static int tls_open(struct stream **out, int fd, const struct tls_config *cfg, bool server,
		    char *err, size_t err_len)
{
	struct tls_stream *t;
	int rc;

	t = calloc(1, sizeof(*t));
	if (!t) {
		if (err_len)
			snprintf(err, err_len, "out of memory");
		return -ENOMEM;
	}
	stream_init(&t->base, &tls_stream_ops);
	t->fd = fd;
	t->server = server;
	t->auth = cfg->auth;
	t->io_timeout_ms = cfg->io_timeout_ms;
	t->deadline_ms = fd_deadline_ms(cfg->handshake_timeout_ms > 0 ? cfg->handshake_timeout_ms
								       : TLS_HANDSHAKE_TIMEOUT_MS_DEFAULT);
	t->fd_flags = fcntl(fd, F_GETFL);
	if (t->fd_flags < 0) {
		rc = tls_error_set(t, -errno, "socket: %s", strerror(errno));
		goto err_free;
	}
	if (fcntl(fd, F_SETFL, t->fd_flags | O_NONBLOCK) < 0) {
		rc = tls_error_set(t, -errno, "socket: %s", strerror(errno));
		goto err_free;
	}
	rc = tls_check_config(t, cfg);
	if (rc == 0)
		rc = tls_config_ctx(t, cfg);
	if (rc == 0)
		rc = tls_setup_ssl(t, cfg);
	if (rc == 0)
		rc = tls_handshake(t);
	if (rc == 0)
		rc = tls_ready(t);
	if (rc < 0)
		goto err_restore;
	t->deadline_ms = -1;
	t->errmsg[0] = '\0';
	*out = &t->base;
	return 0;
err_restore:
	fcntl(fd, F_SETFL, t->fd_flags);
err_free:
	if (err_len)
		snprintf(err, err_len, "%s", t->errmsg);
	ERR_clear_error();
	tls_free(t, false);
	return rc;
}

int tls_client(struct stream **out, int fd, const struct tls_config *cfg, char *err, size_t err_len)
{
	return tls_open(out, fd, cfg, false, err, err_len);
}

int tls_server(struct stream **out, int fd, const struct tls_config *cfg, char *err, size_t err_len)
{
	return tls_open(out, fd, cfg, true, err, err_len);
}
