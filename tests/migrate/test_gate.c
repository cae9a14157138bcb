/* End-to-end: godwit receive outlives strangers, checks its files first, and whom it trusts. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/migrate/mig_helpers.h"
#include "transport/stream.h"
#include "transport/tls_psk.h"
#include "transport/tls_stream.h"

TestSuite(gate, .init = mig_setup, .fini = mig_teardown, .timeout = 600);

static void loopback_port(void)
{
	snprintf(PORT, sizeof(PORT), "%u", 20000 + (unsigned)getpid() % 20000);
}

/* A TCP connection to 127.0.0.1:PORT, or -errno. */
static int dial(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(PORT)) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_geq(fd, 0);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		int rc = -errno;

		close(fd);
		return rc;
	}
	return fd;
}

/* A TLS 1.3 client with a PSK other than the receiver's: refused in the handshake. */
static void wrong_psk_client(void)
{
	static const uint8_t other[32] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
					   17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30,
					   31, 32 };
	struct tls_psk psk;
	struct tls_config cfg = { .auth = TLS_AUTH_PSK, .psk = &psk,
				  .handshake_timeout_ms = 20000 };
	struct stream *s = NULL;
	char err[256];
	int fd = dial();

	cr_assert_geq(fd, 0, "receive stopped listening: %s", strerror(-fd));
	cr_assert_eq(tls_psk_from_secret(&psk, other, sizeof(other)), 0);
	cr_assert_neq(tls_client(&s, fd, &cfg, err, sizeof(err)), 0, "a wrong PSK got in");
	close(fd);
}

Test(gate, a_hundred_bad_connections_then_a_real_migration_succeeds)
{
	static const char junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	struct gw_hb before;
	int fd;

	require_kvm();
	loopback_port();
	start_dest(NULL, "127.0.0.1", NULL, (const char *const[]){ "--psk-file", PSK, NULL });
	for (int i = 0; i < 100; i++) {
		switch (i % 3) {
		case 0: /* connect and close */
			fd = dial();
			cr_assert_geq(fd, 0, "connection %d: %s", i, strerror(-fd));
			close(fd);
			break;
		case 1:
			send_raw(junk, sizeof(junk) - 1);
			break;
		default:
			wrong_psk_client();
			break;
		}
	}
	expect_dest_turned_away(100, "127.0.0.1:");
	cr_assert_geq(gw_count_lines(DST.err, "godwit: receive: turned away"), 100);
	start_source(NULL, NULL, "mb=16 rate=16");
	gw_last_hb(&SRC, &before);
	cr_assert_eq(run_migrate("127.0.0.1", (const char *const[]){ "--psk-file", PSK, NULL }),
		     0, "migration after the strangers failed: %s / %s", gw_read_file(MIG.err),
		     gw_read_file(DST.err));
	expect_continued(&before);
	/* It stopped listening once the source was in. */
	fd = dial();
	cr_assert_eq(fd, -ECONNREFUSED, "receive still listens with its VM running");
	gw_quit(&DST);
}

Test(gate, silent_connections_past_the_limit_do_not_keep_the_source_out)
{
	struct gw_hb before;
	int fds[6];

	require_kvm();
	loopback_port();
	start_dest(NULL, "127.0.0.1", NULL, (const char *const[]){ "--psk-file", PSK, NULL });
	/* More than the receiver takes at once, and none says a word. */
	for (int i = 0; i < 6; i++) {
		fds[i] = dial();
		cr_assert_geq(fds[i], 0);
	}
	start_source(NULL, NULL, "mb=16 rate=16");
	gw_last_hb(&SRC, &before);
	cr_assert_eq(run_migrate("127.0.0.1", (const char *const[]){ "--psk-file", PSK, NULL }),
		     0, "migrate: %s / receive: %s", gw_read_file(MIG.err), gw_read_file(DST.err));
	expect_continued(&before);
	cr_assert_geq(gw_count_lines(DST.err, "godwit: receive: turned away"), 1, "%s",
		      gw_read_file(DST.err));
	cr_assert(strstr(gw_read_file(DST.err), "no authenticated HELLO within"), "%s",
		  gw_read_file(DST.err));
	for (int i = 0; i < 6; i++)
		close(fds[i]);
	gw_quit(&DST);
}

Test(gate, allow_from_turns_away_other_addresses)
{
	int fd;

	loopback_port();
	start_dest(NULL, "127.0.0.1", NULL, (const char *const[]){ "--psk-file", PSK,
							      "--allow-from", "10.99.0.0/16",
							      NULL });
	fd = dial();
	cr_assert_geq(fd, 0);
	expect_dest_turned_away(1, "not in --allow-from");
	close(fd);
	/* It met the stranger already filtered. */
	{
		char path[64], *st;

		snprintf(path, sizeof(path), "/proc/%d/status", (int)DST.pid);
		st = gw_read_file(path);
		cr_assert(st && strstr(st, "\nSeccomp:\t2\n"), "receive listens unfiltered: %s", st);
		free(st);
	}
}

Test(gate, refuses_a_bad_allow_from)
{
	loopback_port();
	cr_assert_eq(godwit_cmd((const char *const[]){ "receive", "--listen", "127.0.0.1:0",
						       "--psk-file", PSK, "--allow-from",
						       "10.0.0.0/33", NULL }), 1);
	gw_expect_one_error(&MIG, "--allow-from '10.0.0.0/33' is not an address block");
}

Test(gate, a_psk_file_others_can_read_is_refused_before_listening_or_connecting)
{
	cr_assert_eq(chmod(PSK, 0644), 0);
	cr_assert_eq(godwit_cmd((const char *const[]){ "receive", "--listen", "127.0.0.1:0",
						       "--psk-file", PSK, NULL }), 1);
	gw_expect_one_error(&MIG, "chmod");
	cr_assert_eq(gw_count_lines(MIG.err, "godwit: waiting for a VM"), 0);
	cr_assert_eq(godwit_cmd((const char *const[]){ "migrate", "--api", "/nonexistent.sock",
						       "--to", "127.0.0.1:9", "--psk-file", PSK,
						       NULL }), 1);
	gw_expect_one_error(&MIG, "chmod");
}

/*
 * A throwaway CA (ca.crt) and a certificate it signs for name (name.crt, name.key) with
 * extendedKeyUsage eku (serverAuth, clientAuth), in dir.
 */
static void make_cert(const char *dir, const char *name, const char *eku)
{
	char cmd[2048];

	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && { [ -f ca.key ] || openssl req -x509 -newkey ec -pkeyopt "
		 "ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.crt -days 2 -subj /CN=ca "
		 ">/dev/null 2>&1; } && openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
		 "-nodes -keyout %s.key -out %s.csr -subj /CN=%s >/dev/null 2>&1 && "
		 "printf 'subjectAltName=DNS:%s\\nextendedKeyUsage=%s\\n' > %s.ext && "
		 "openssl x509 -req -in %s.csr -CA ca.crt -CAkey ca.key -CAcreateserial "
		 "-extfile %s.ext -out %s.crt -days 2 >/dev/null 2>&1",
		 dir, name, name, name, name, eku, name, name, name, name);
	cr_assert_eq(system(cmd), 0, "openssl could not make test certificates");
}

static void cert_args(const char *dir, const char *name, char crt[256], char key[256],
		      char ca[256])
{
	snprintf(crt, 256, "%s/%s.crt", dir, name);
	snprintf(key, 256, "%s/%s.key", dir, name);
	snprintf(ca, 256, "%s/ca.crt", dir);
}

/* Certificates in DST's directory, the receiver on them, and the source VM booted. */
struct certs {
	char crt[256], key[256], ca[256];
};

static void cert_world(struct certs *src, const char *dst_eku)
{
	struct certs dst;

	require_kvm();
	loopback_port();
	make_cert(DST.dir, "dst", dst_eku);
	make_cert(DST.dir, "src", "clientAuth");
	cert_args(DST.dir, "dst", dst.crt, dst.key, dst.ca);
	cert_args(DST.dir, "src", src->crt, src->key, src->ca);
	start_dest(NULL, "127.0.0.1", NULL, (const char *const[]){ "--tls-cert", dst.crt,
							      "--tls-key", dst.key, "--tls-ca",
							      dst.ca, NULL });
	start_source(NULL, NULL, "mb=16 rate=16");
}

/* Migrate with src's certificates (and --tls-server-name name unless NULL); exit status. */
static int cert_migrate(const struct certs *src, const char *name)
{
	return run_migrate("127.0.0.1", (const char *const[]){ "--tls-cert", src->crt,
							       "--tls-key", src->key, "--tls-ca",
							       src->ca, name ? "--tls-server-name"
									     : NULL, name, NULL });
}

/* The source refused the destination's certificate and keeps its VM; the receiver waits on. */
static void expect_refused_certificate(void)
{
	cr_assert(strstr(gw_read_file(MIG.err), "certificate"), "%s", gw_read_file(MIG.err));
	expect_source_running();
	expect_dest_turned_away(1, "127.0.0.1:");
}

Test(gate, a_destination_certificate_for_another_host_name_is_refused)
{
	struct certs src;
	struct gw_hb before;

	cert_world(&src, "serverAuth");
	/* The certificate names dst, not 127.0.0.1: the source refuses it. */
	cr_assert_neq(cert_migrate(&src, NULL), 0);
	expect_refused_certificate();
	/* Named as the certificate says, the same receiver takes it. */
	gw_last_hb(&SRC, &before);
	cr_assert_eq(cert_migrate(&src, "dst"), 0, "migrate: %s / receive: %s",
		     gw_read_file(MIG.err), gw_read_file(DST.err));
	expect_continued(&before);
	gw_quit(&DST);
}

Test(gate, a_certificate_for_the_wrong_purpose_is_refused)
{
	struct certs src;

	/* The destination presents a client-only certificate as a server. */
	cert_world(&src, "clientAuth");
	cr_assert_neq(cert_migrate(&src, "dst"), 0);
	expect_refused_certificate();
	gw_quit(&SRC);
}

Test(gate, a_tls_key_others_can_read_is_refused_at_start)
{
	char crt[256], key[256], ca[256];

	make_cert(DST.dir, "dst", "serverAuth");
	cert_args(DST.dir, "dst", crt, key, ca);
	cr_assert_eq(chmod(key, 0644), 0);
	cr_assert_eq(godwit_cmd((const char *const[]){ "receive", "--listen", "127.0.0.1:0",
						       "--tls-cert", crt, "--tls-key", key,
						       "--tls-ca", ca, NULL }), 1);
	gw_expect_one_error(&MIG, "chmod 600");
	cr_assert_eq(gw_count_lines(MIG.err, "godwit: waiting for a VM"), 0);
}
