/* Tests for the TLS layer: PSK and mutual-certificate handshakes, refusals with clear errors. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"
#include "transport/tls_stream.h"

enum action { ACT_NONE, ACT_ECHO, ACT_ABORT, ACT_COMMIT, ACT_SLEEP_COMMIT };

struct side {
	bool server;
	int fd;
	struct tls_config cfg;
	struct stream *s;
	int rc;
	char err[256];
	enum action act;
	size_t echo_bytes;
	int act_rc;
};

static char dir[64];
static char ca1[128], ca2[128];
static char srv_cert[128], srv_key[128], cli_cert[128], cli_key[128];
static char other_cert[128], other_key[128]; /* a leaf from CA 2 */
static struct tls_psk psk, other_psk;
static uint8_t *data;
#define DATA_BYTES (1u << 20)

static void path(char *out, const char *name)
{
	snprintf(out, 128, "%s/%s", dir, name);
}

static void setup(void)
{
	struct test_ca a, b;
	uint8_t secret[32];

	tmpdir_make(dir, sizeof(dir));
	path(ca1, "ca1.pem");
	path(ca2, "ca2.pem");
	path(srv_cert, "server.pem");
	path(srv_key, "server.key");
	path(cli_cert, "client.pem");
	path(cli_key, "client.key");
	path(other_cert, "other.pem");
	path(other_key, "other.key");
	test_ca_create(&a, "godwit test CA 1", ca1);
	test_ca_create(&b, "godwit test CA 2", ca2);
	test_ca_issue(&a, "server", "localhost", srv_cert, srv_key);
	test_ca_issue(&a, "client", "client.local", cli_cert, cli_key);
	test_ca_issue(&b, "intruder", "localhost", other_cert, other_key);
	test_ca_free(&a);
	test_ca_free(&b);
	fill_random(secret, sizeof(secret), 1);
	cr_assert_eq(tls_psk_from_secret(&psk, secret, sizeof(secret)), 0);
	fill_random(secret, sizeof(secret), 2);
	cr_assert_eq(tls_psk_from_secret(&other_psk, secret, sizeof(secret)), 0);
	data = xmalloc(DATA_BYTES);
	fill_random(data, DATA_BYTES, 3);
}

static void teardown(void)
{
	tmpdir_remove(dir);
	free(data);
}

TestSuite(tls_stream, .init = setup, .fini = teardown, .timeout = 60);

static struct tls_config psk_cfg(const struct tls_psk *k)
{
	return (struct tls_config){ .auth = TLS_AUTH_PSK, .psk = k, .handshake_timeout_ms = 5000 };
}

static struct tls_config cert_cfg(const char *cert, const char *key, const char *ca)
{
	return (struct tls_config){ .auth = TLS_AUTH_CERT, .cert_file = cert, .key_file = key,
				    .ca_file = ca, .handshake_timeout_ms = 5000 };
}

/* After a successful handshake, do what the test asked; record the first failure. */
static void act(struct side *x)
{
	uint8_t *buf;
	int rc = 0;

	switch (x->act) {
	case ACT_NONE:
		return;
	case ACT_ECHO:
		buf = malloc(x->echo_bytes);
		rc = buf ? stream_read_all(x->s, buf, x->echo_bytes) : -ENOMEM;
		if (rc == 0)
			rc = stream_write_all(x->s, buf, x->echo_bytes);
		free(buf);
		/* fall through */
	case ACT_COMMIT:
		x->act_rc = rc ? rc : stream_close(x->s, true);
		if (rc)
			stream_close(x->s, false);
		break;
	case ACT_SLEEP_COMMIT:
		usleep(600 * 1000);
		x->act_rc = stream_close(x->s, true);
		break;
	case ACT_ABORT:
		x->act_rc = stream_close(x->s, false);
		break;
	}
	x->s = NULL;
}

static void *run_side(void *arg)
{
	struct side *x = arg;

	if (x->server)
		x->rc = tls_server(&x->s, x->fd, &x->cfg, x->err, sizeof(x->err));
	else
		x->rc = tls_client(&x->s, x->fd, &x->cfg, x->err, sizeof(x->err));
	if (x->rc < 0) {
		/* A failed side hangs up, as a real program would. */
		close(x->fd);
		x->fd = -1;
		return NULL;
	}
	act(x);
	return NULL;
}

/* Connect over loopback; the server side runs on a thread, the client here. */
static void handshake(struct side *cli, struct side *srv)
{
	struct test_thread th;

	cli->server = false;
	srv->server = true;
	tcp_pair(&cli->fd, &srv->fd);
	thread_start(&th, run_side, srv);
	run_side(cli);
	thread_join(&th);
	cr_log_info("client %d: %s", cli->rc, cli->err);
	cr_log_info("server %d: %s", srv->rc, srv->err);
}

/*
 * A PSK client here, an echoing server on th (cli, srv, th, back): send data, read the
 * echo into back. The caller closes cli->s and joins th.
 */
static void psk_echo(struct side *cli, struct side *srv, struct test_thread *th, uint8_t *back)
{
	*cli = (struct side){ .cfg = psk_cfg(&psk) };
	*srv = (struct side){ .cfg = psk_cfg(&psk), .act = ACT_ECHO, .echo_bytes = DATA_BYTES,
			      .server = true };
	tcp_pair(&cli->fd, &srv->fd);
	thread_start(th, run_side, srv);
	cli->rc = tls_client(&cli->s, cli->fd, &cli->cfg, cli->err, sizeof(cli->err));
	cr_assert_eq(cli->rc, 0, "%s", cli->err);
	cr_assert_eq(stream_write_all(cli->s, data, DATA_BYTES), 0);
	cr_assert_eq(stream_flush(cli->s), 0);
	cr_assert_eq(stream_read_all(cli->s, back, DATA_BYTES), 0, "%s",
		     tls_stream_error(cli->s));
}

Test(tls_stream, psk_handshake_then_data_flows_both_ways)
{
	struct side cli, srv;
	uint8_t *back = xmalloc(DATA_BYTES);
	struct test_thread th;

	psk_echo(&cli, &srv, &th, back);
	cr_assert_eq(memcmp(back, data, DATA_BYTES), 0);
	cr_assert_eq(stream_read_all(cli.s, back, 1), -ENODATA, "the server sent close_notify");
	cr_assert_eq(stream_close(cli.s, true), 0);
	thread_join(&th);
	cr_assert_eq(srv.rc, 0, "%s", srv.err);
	cr_assert_eq(srv.act_rc, 0);
	free(back);
}

Test(tls_stream, wrong_psk_is_refused_on_both_sides_with_a_clear_error)
{
	struct side cli = { .cfg = psk_cfg(&other_psk) };
	struct side srv = { .cfg = psk_cfg(&psk) };

	handshake(&cli, &srv);
	cr_assert_eq(srv.rc, -EKEYREJECTED, "server %d: %s", srv.rc, srv.err);
	cr_assert_not_null(strstr(srv.err, "wrong PSK"), "server: %s", srv.err);
	cr_assert_eq(cli.rc, -EKEYREJECTED, "client %d: %s", cli.rc, cli.err);
	cr_assert_not_null(strstr(cli.err, "wrong PSK"), "client: %s", cli.err);
}

Test(tls_stream, psk_client_refuses_a_server_that_uses_certificates)
{
	struct side cli = { .cfg = psk_cfg(&psk) };
	struct side srv = { .cfg = cert_cfg(srv_cert, srv_key, ca1) };

	handshake(&cli, &srv);
	cr_assert_eq(cli.rc, -EACCES, "client %d: %s", cli.rc, cli.err);
	cr_assert_not_null(strstr(cli.err, "not in PSK mode"), "client: %s", cli.err);
	cr_assert_lt(srv.rc, 0);
}

Test(tls_stream, psk_server_refuses_a_client_that_uses_certificates)
{
	struct side cli = { .cfg = cert_cfg(cli_cert, cli_key, ca1) };
	struct side srv = { .cfg = psk_cfg(&psk) };

	handshake(&cli, &srv);
	cr_assert_eq(srv.rc, -EACCES, "server %d: %s", srv.rc, srv.err);
	cr_assert_not_null(strstr(srv.err, "offered no PSK"), "server: %s", srv.err);
	cr_assert_lt(cli.rc, 0);
	cr_assert_neq(cli.err[0], '\0');
}

Test(tls_stream, mutual_certificates_work_with_and_without_a_name_check)
{
	static const char *names[] = { NULL, "localhost", "127.0.0.1" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		struct side cli = { .cfg = cert_cfg(cli_cert, cli_key, ca1) };
		struct side srv = { .cfg = cert_cfg(srv_cert, srv_key, ca1), .act = ACT_ECHO,
				    .echo_bytes = 4096 };
		uint8_t back[4096];
		struct test_thread th;

		cli.cfg.server_name = names[i];
		cli.server = false;
		srv.server = true;
		tcp_pair(&cli.fd, &srv.fd);
		thread_start(&th, run_side, &srv);
		cli.rc = tls_client(&cli.s, cli.fd, &cli.cfg, cli.err, sizeof(cli.err));
		cr_assert_eq(cli.rc, 0, "name %s: %s", names[i] ? names[i] : "(none)", cli.err);
		cr_assert_eq(stream_write_all(cli.s, data, sizeof(back)), 0);
		cr_assert_eq(stream_flush(cli.s), 0);
		cr_assert_eq(stream_read_all(cli.s, back, sizeof(back)), 0);
		cr_assert_eq(memcmp(back, data, sizeof(back)), 0);
		cr_assert_eq(stream_close(cli.s, true), 0);
		thread_join(&th);
		cr_assert_eq(srv.rc, 0, "%s", srv.err);
		cr_assert_eq(srv.act_rc, 0);
	}
}

Test(tls_stream, client_refuses_a_server_with_the_wrong_name)
{
	struct side cli = { .cfg = cert_cfg(cli_cert, cli_key, ca1) };
	struct side srv = { .cfg = cert_cfg(srv_cert, srv_key, ca1) };

	cli.cfg.server_name = "db.example.org";
	handshake(&cli, &srv);
	cr_assert_eq(cli.rc, -EACCES, "client %d: %s", cli.rc, cli.err);
	cr_assert_not_null(strstr(cli.err, "hostname mismatch"), "client: %s", cli.err);
}

Test(tls_stream, server_refuses_a_client_certificate_from_another_ca)
{
	struct side cli = { .cfg = cert_cfg(other_cert, other_key, ca1) };
	struct side srv = { .cfg = cert_cfg(srv_cert, srv_key, ca1) };

	handshake(&cli, &srv);
	cr_assert_eq(srv.rc, -EACCES, "server %d: %s", srv.rc, srv.err);
	cr_assert_not_null(strstr(srv.err, "client certificate rejected"), "server: %s", srv.err);
	cr_assert_eq(cli.rc, -EACCES, "client %d: %s", cli.rc, cli.err);
	cr_assert_not_null(strstr(cli.err, "unknown CA"), "client: %s", cli.err);
}

Test(tls_stream, client_refuses_a_server_certificate_from_another_ca)
{
	struct side cli = { .cfg = cert_cfg(cli_cert, cli_key, ca1) };
	struct side srv = { .cfg = cert_cfg(other_cert, other_key, ca2) };

	handshake(&cli, &srv);
	cr_assert_eq(cli.rc, -EACCES, "client %d: %s", cli.rc, cli.err);
	cr_assert_not_null(strstr(cli.err, "server certificate rejected"), "client: %s", cli.err);
	cr_assert_eq(srv.rc, -EACCES, "server %d: %s", srv.rc, srv.err);
	cr_assert_not_null(strstr(srv.err, "unknown CA"), "server: %s", srv.err);
}

Test(tls_stream, server_refuses_a_client_without_a_certificate)
{
	struct side cli = { .cfg = cert_cfg(NULL, NULL, ca1) };
	struct side srv = { .cfg = cert_cfg(srv_cert, srv_key, ca1) };

	handshake(&cli, &srv);
	cr_assert_eq(srv.rc, -EACCES, "server %d: %s", srv.rc, srv.err);
	cr_assert_not_null(strstr(srv.err, "sent no certificate"), "server: %s", srv.err);
	cr_assert_eq(cli.rc, -EACCES, "client %d: %s", cli.rc, cli.err);
	cr_assert_not_null(strstr(cli.err, "requires a client certificate"), "client: %s", cli.err);
}

struct plain_peer {
	int fd;
	const char *say;
};

static void *plain_talker(void *arg)
{
	struct plain_peer *p = arg;
	char buf[512];

	if (p->say && write(p->fd, p->say, strlen(p->say)) < 0)
		return NULL;
	/* Swallow whatever arrives until the TLS side gives up. */
	while (read(p->fd, buf, sizeof(buf)) > 0)
		;
	return NULL;
}

Test(tls_stream, plaintext_server_gives_the_client_a_clear_error)
{
	struct tls_config cfg = psk_cfg(&psk);
	struct plain_peer p = { .say = "220 smtp.example.org ESMTP ready\r\n" };
	struct test_thread th;
	struct stream *s;
	char err[256];
	int fd;

	tcp_pair(&fd, &p.fd);
	thread_start(&th, plain_talker, &p);
	cr_assert_eq(tls_client(&s, fd, &cfg, err, sizeof(err)), -EPROTO, "%s", err);
	cr_assert_not_null(strstr(err, "not speaking TLS"), "%s", err);
	close(fd);
	thread_join(&th);
	close(p.fd);
}

Test(tls_stream, plaintext_client_gives_the_server_a_clear_error)
{
	struct tls_config cfg = cert_cfg(srv_cert, srv_key, ca1);
	struct plain_peer p = { .say = "GET / HTTP/1.0\r\n\r\n" };
	struct test_thread th;
	struct stream *s;
	char err[256];
	int fd;

	tcp_pair(&p.fd, &fd);
	thread_start(&th, plain_talker, &p);
	cr_assert_eq(tls_server(&s, fd, &cfg, err, sizeof(err)), -EPROTO, "%s", err);
	cr_assert_not_null(strstr(err, "not speaking TLS"), "%s", err);
	close(fd);
	thread_join(&th);
	close(p.fd);
}

Test(tls_stream, silent_peer_times_out_the_handshake)
{
	struct tls_config cfg = psk_cfg(&psk);
	struct plain_peer p = { .say = NULL };
	struct test_thread th;
	struct stream *s;
	char err[256];
	int fd;

	cfg.handshake_timeout_ms = 300;
	tcp_pair(&fd, &p.fd);
	thread_start(&th, plain_talker, &p);
	cr_assert_eq(tls_client(&s, fd, &cfg, err, sizeof(err)), -ETIMEDOUT, "%s", err);
	cr_assert_not_null(strstr(err, "timed out"), "%s", err);
	close(fd);
	thread_join(&th);
	close(p.fd);
}

Test(tls_stream, peer_hanging_up_in_the_handshake_is_econnreset)
{
	struct tls_config cfg = psk_cfg(&psk);
	struct stream *s;
	char err[256];
	int a, b;

	tcp_pair(&a, &b);
	close(b);
	cr_assert_eq(tls_client(&s, a, &cfg, err, sizeof(err)), -ECONNRESET, "%s", err);
	cr_assert_not_null(strstr(err, "closed the connection"), "%s", err);
	close(a);
}

Test(tls_stream, failure_leaves_the_fd_open_and_blocking_for_the_caller)
{
	struct tls_config cfg = psk_cfg(&psk);
	struct stream *s;
	char err[256];
	int a, b;

	tcp_pair(&a, &b);
	close(b);
	cr_assert_lt(tls_client(&s, a, &cfg, err, sizeof(err)), 0);
	cr_assert_neq(fcntl(a, F_GETFD), -1, "fd still open");
	cr_assert_eq(fcntl(a, F_GETFL) & O_NONBLOCK, 0, "flags restored");
	close(a);
}

Test(tls_stream, abandoned_close_reads_as_truncation_and_commit_as_clean_end)
{
	enum action acts[] = { ACT_ABORT, ACT_COMMIT };
	int want[] = { -EPROTO, -ENODATA };

	for (int i = 0; i < 2; i++) {
		struct side cli = { .cfg = psk_cfg(&psk) };
		struct side srv = { .cfg = psk_cfg(&psk), .act = acts[i] };
		uint8_t b;

		handshake(&cli, &srv);
		cr_assert_eq(cli.rc, 0, "%s", cli.err);
		cr_assert_eq(srv.rc, 0, "%s", srv.err);
		cr_assert_eq(stream_read_all(cli.s, &b, 1), want[i], "case %d: %s", i,
			     tls_stream_error(cli.s));
		if (want[i] == -EPROTO)
			cr_assert_not_null(strstr(tls_stream_error(cli.s), "truncated"), "%s",
					   tls_stream_error(cli.s));
		stream_close(cli.s, false);
	}
}

Test(tls_stream, idle_peer_trips_the_io_timeout)
{
	struct side cli = { .cfg = psk_cfg(&psk) };
	struct side srv = { .cfg = psk_cfg(&psk), .act = ACT_SLEEP_COMMIT };
	struct test_thread th;
	uint8_t b;

	cli.cfg.io_timeout_ms = 150;
	cli.server = false;
	srv.server = true;
	tcp_pair(&cli.fd, &srv.fd);
	thread_start(&th, run_side, &srv);
	cli.rc = tls_client(&cli.s, cli.fd, &cli.cfg, cli.err, sizeof(cli.err));
	cr_assert_eq(cli.rc, 0, "%s", cli.err);
	cr_assert_eq(stream_read_all(cli.s, &b, 1), -ETIMEDOUT);
	cr_assert_not_null(strstr(tls_stream_error(cli.s), "no progress"));
	stream_close(cli.s, false);
	thread_join(&th);
}

Test(tls_stream, writing_to_a_vanished_peer_fails_without_sigpipe)
{
	struct side cli = { .cfg = psk_cfg(&psk) };
	struct side srv = { .cfg = psk_cfg(&psk), .act = ACT_ABORT };
	int rc = 0;

	handshake(&cli, &srv);
	cr_assert_eq(cli.rc, 0, "%s", cli.err);
	for (int i = 0; i < 64 && rc == 0; i++) {
		rc = stream_write_all(cli.s, data, DATA_BYTES);
		if (rc == 0)
			rc = stream_flush(cli.s);
	}
	cr_assert(rc == -EPIPE || rc == -ECONNRESET, "rc %d: %s", rc, tls_stream_error(cli.s));
	cr_assert_eq(stream_close(cli.s, true), rc);
}

Test(tls_stream, bad_configs_are_refused_before_any_io)
{
	struct tls_config none = { .auth = TLS_AUTH_INVALID };
	struct tls_config nopsk = { .auth = TLS_AUTH_PSK };
	struct tls_config nocert = cert_cfg("/nonexistent/cert.pem", srv_key, ca1);
	struct tls_config mismatch = cert_cfg(srv_cert, cli_key, ca1);
	struct stream *s;
	char err[256];
	int a, b;

	tcp_pair(&a, &b);
	cr_assert_eq(tls_client(&s, a, &none, err, sizeof(err)), -EINVAL);
	cr_assert_eq(tls_client(&s, a, &nopsk, err, sizeof(err)), -EINVAL);
	cr_assert_eq(tls_server(&s, a, &nocert, err, sizeof(err)), -ENOENT);
	cr_assert_not_null(strstr(err, "/nonexistent/cert.pem"), "%s", err);
	cr_assert_eq(tls_server(&s, a, &mismatch, err, sizeof(err)), -EINVAL);
	cr_assert_not_null(strstr(err, "does not match"), "%s", err);
	close(a);
	close(b);
}

Test(tls_stream, stats_count_the_records_tcp_sent)
{
	struct side cli, srv;
	uint8_t *back = xmalloc(DATA_BYTES);
	struct stream_stats st;
	struct test_thread th;

	/* The echo came back, so the server read all of it: TCP sent every record. */
	psk_echo(&cli, &srv, &th, back);
	cr_assert_eq(stream_stats(cli.s, &st), 0);
	cr_assert_gt(st.bytes_sent, DATA_BYTES, "records and handshake: %llu",
		     (unsigned long long)st.bytes_sent);
	cr_assert_gt(st.rtt_ns, 0, "round trips were made, so the kernel has an RTT");
	cr_assert_eq(stream_close(cli.s, true), 0);
	thread_join(&th);
	cr_assert_eq(srv.rc, 0, "%s", srv.err);
	free(back);
}
