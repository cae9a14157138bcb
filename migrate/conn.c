/* The authenticated connection under a migration: TCP, then TLS 1.3 unless plaintext. */
#include "migrate/conn.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "transport/fd_stream.h"
#include "transport/tcp.h"
#include "transport/tls_psk.h"
#include "transport/tls_stream.h"

#define MIG_HANDSHAKE_MS 10000
#define MIG_IO_TIMEOUT_MS 30000

/* The certificate mode's files: readable, and the private key private. */
static int auth_check_cert_files(const struct mig_auth *a, char *err, size_t errlen)
{
	const struct {
		const char *what, *path;
	} files[] = {
		{ "--tls-cert", a->cert_file }, { "--tls-key", a->key_file },
		{ "--tls-ca", a->ca_file },
	};
	struct stat st;

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		if (access(files[i].path, R_OK) < 0) {
			int rc = -errno;

			snprintf(err, errlen, "%s %s: %s", files[i].what, files[i].path, strerror(-rc));
			return rc;
		}
	}
	if (stat(a->key_file, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "--tls-key %s is not a regular file: name the PEM key file",
			 a->key_file);
		return -EINVAL;
	}
	if (st.st_mode & 077) {
		snprintf(err, errlen, "--tls-key %s can be read by group or others (mode %04o): "
			 "chmod 600 %s", a->key_file, (unsigned)(st.st_mode & 07777), a->key_file);
		return -EPERM;
	}
	return 0;
}

int mig_auth_check(const struct mig_auth *a, char *err, size_t errlen)
{
	bool psk = a->psk_file[0], cert = a->cert_file[0] || a->key_file[0] || a->ca_file[0];

	if ((psk + cert + a->insecure_plaintext) != 1) {
		snprintf(err, errlen, "%s", (psk + cert + a->insecure_plaintext) == 0
			 ? "no authentication given: pass --psk-file FILE, or --tls-cert, "
			   "--tls-key and --tls-ca (or --insecure-plaintext on a trusted link)"
			 : "give only one of --psk-file, the --tls-* certificates, or "
			   "--insecure-plaintext");
		return -EINVAL;
	}
	if (cert && !(a->cert_file[0] && a->key_file[0] && a->ca_file[0])) {
		snprintf(err, errlen, "certificate authentication needs all of --tls-cert, "
			 "--tls-key and --tls-ca");
		return -EINVAL;
	}
	if (a->server_name[0] && !cert) {
		snprintf(err, errlen, "--tls-server-name applies to certificates: pass --tls-cert, "
			 "--tls-key and --tls-ca too");
		return -EINVAL;
	}
	if (psk) {
		struct tls_psk k;
		int rc = tls_psk_load(&k, a->psk_file, err, errlen);

		if (rc < 0)
			return rc;
		tls_psk_wipe(&k);
	}
	if (cert)
		return auth_check_cert_files(a, err, errlen);
	return 0;
}

int mig_conn_secure(struct stream **out, int fd, const struct mig_auth *auth,
		    const char *peer_host, int handshake_ms, char *err, size_t errlen)
{
	bool server = !peer_host;
	struct tls_config cfg = {
		.handshake_timeout_ms = handshake_ms ? handshake_ms : MIG_HANDSHAKE_MS,
		.io_timeout_ms = MIG_IO_TIMEOUT_MS,
	};
	struct tls_psk psk;
	int rc;

	if (auth->insecure_plaintext) {
		rc = fd_stream_open(out, fd, FD_STREAM_OWN, MIG_IO_TIMEOUT_MS);
		if (rc < 0)
			snprintf(err, errlen, "connection: %s", strerror(-rc));
		return rc;
	}
	if (auth->psk_file[0]) {
		rc = tls_psk_load(&psk, auth->psk_file, err, errlen);
		if (rc < 0)
			return rc;
		cfg.auth = TLS_AUTH_PSK;
		cfg.psk = &psk;
	} else {
		cfg.auth = TLS_AUTH_CERT;
		cfg.cert_file = auth->cert_file;
		cfg.key_file = auth->key_file;
		cfg.ca_file = auth->ca_file;
		/* Whom the source meant to reach: the --to host, unless named otherwise. */
		if (!server)
			cfg.server_name = auth->server_name[0] ? auth->server_name : peer_host;
	}
	rc = server ? tls_server(out, fd, &cfg, err, errlen) : tls_client(out, fd, &cfg, err, errlen);
	if (cfg.psk)
		tls_psk_wipe(&psk);
	return rc;
}

int mig_conn_connect(struct stream **out, int *fd_out, const char *hostport,
		     const struct mig_auth *auth, int timeout_ms, const struct mig_conn_cancel *cx,
		     char *err, size_t errlen)
{
	char host[256], port[32];
	int fd, rc;

	rc = mig_auth_check(auth, err, errlen);
	if (rc < 0)
		return rc;
	if (tcp_split_hostport(hostport, host, sizeof(host), port, sizeof(port)) < 0) {
		snprintf(err, errlen, "'%s' is not HOST:PORT (e.g. 10.0.0.2:7070)", hostport);
		return -EINVAL;
	}
	rc = tcp_connect_cancel(&fd, host, port, timeout_ms, cx ? cx->wake_fd : -1);
	if (rc == -ECANCELED) {
		snprintf(err, errlen, "cancelled while connecting to %s", hostport);
		return rc;
	}
	if (rc < 0) {
		snprintf(err, errlen, "cannot connect to %s: %s (is 'godwit receive --listen' "
			 "running there?)", hostport, strerror(-rc));
		return rc;
	}
	if (cx && cx->connected) {
		rc = cx->connected(cx->ctx, fd);
		if (rc < 0) {
			close(fd);
			snprintf(err, errlen, "cancelled once connected to %s", hostport);
			return rc;
		}
	}
	rc = mig_conn_secure(out, fd, auth, host, 0, err, errlen);
	if (rc < 0) {
		/* Unpublished before it closes: the number may be reused at once. */
		if (cx && cx->connected)
			cx->connected(cx->ctx, -1);
		close(fd);
		return rc;
	}
	*fd_out = fd;
	return 0;
}

int mig_conn_listen(int *lfd_out, const char *hostport,
		    void (*on_listen)(void *ctx, const char *hostport), void *ctx, char *err,
		    size_t errlen)
{
	char host[256], port[32];
	int lfd, rc;

	if (tcp_split_hostport(hostport, host, sizeof(host), port, sizeof(port)) < 0) {
		snprintf(err, errlen, "'%s' is not HOST:PORT (e.g. 0.0.0.0:7070)", hostport);
		return -EINVAL;
	}
	rc = tcp_listen(&lfd, host, port);
	if (rc < 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", hostport, strerror(-rc));
		return rc;
	}
	if (on_listen) {
		/* The port bound, so that --listen HOST:0 tells where to send the VM. */
		char bound[300];
		uint16_t bport;

		if (tcp_local_port(lfd, &bport) == 0)
			snprintf(bound, sizeof(bound), strchr(host, ':') ? "[%s]:%u" : "%s:%u", host,
				 (unsigned)bport);
		else
			snprintf(bound, sizeof(bound), "%s", hostport);
		on_listen(ctx, bound);
	}
	*lfd_out = lfd;
	return 0;
}

void mig_test_hold(const char *point)
{
	const char *want = getenv("GODWIT_TEST_HOLD");
	size_t n = strlen(point);

	for (const char *p = want; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
		if (strncmp(p, point, n) == 0 && (p[n] == ',' || p[n] == '\0')) {
			fprintf(stderr, "godwit: test hold at %s\n", point);
			fflush(stderr);
			raise(SIGSTOP);
			return;
		}
	}
}
