/* Shared helpers for the transport tests: data patterns, temp dirs, socket pairs, test PKI. */
#include "helpers.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "transport/tcp.h"
#include "util/io.h"

void fill_random(uint8_t *buf, size_t len, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = (uint8_t)(x >> 24);
	}
}

void fill_guestlike(uint8_t *buf, size_t len, uint64_t seed)
{
	static const char words[] = "kernel page table dirty bitmap migrate vcpu state ";

	for (size_t off = 0; off < len; off += 4096) {
		size_t n = len - off < 4096 ? len - off : 4096;
		unsigned kind = (unsigned)((off / 4096 * 2654435761u + seed) % 10);

		if (kind < 4)
			memset(buf + off, 0, n);
		else if (kind < 7)
			for (size_t i = 0; i < n; i++)
				buf[off + i] = (uint8_t)words[(i + kind * 7 + off / 4096) % (sizeof(words) - 1)];
		else
			fill_random(buf + off, n, seed + off);
	}
}

void *xmalloc(size_t len)
{
	void *p = malloc(len ? len : 1);

	cr_assert_not_null(p);
	return p;
}

void tmpdir_make(char *out, size_t out_len)
{
	cr_assert(snprintf(out, out_len, "/tmp/gw-transport-XXXXXX") < (int)out_len);
	cr_assert_not_null(mkdtemp(out));
}

static int tmpdir_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	remove(path);
	return 0;
}

void tmpdir_remove(const char *dir)
{
	nftw(dir, tmpdir_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

void tcp_pair(int *a, int *b)
{
	char port[16];
	uint16_t p;
	int lfd;

	cr_assert_eq(tcp_listen(&lfd, "127.0.0.1", "0"), 0);
	cr_assert_eq(tcp_local_port(lfd, &p), 0);
	snprintf(port, sizeof(port), "%u", p);
	cr_assert_eq(tcp_connect(a, "127.0.0.1", port, 5000), 0);
	cr_assert_eq(tcp_accept(b, lfd, 5000), 0);
	close(lfd);
}

void write_fd_all(int fd, const void *buf, size_t len)
{
	int rc = io_write_all(fd, buf, len);

	cr_assert_eq(rc, 0, "write: %s", strerror(-rc));
}

static EVP_PKEY *test_key(void)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

	cr_assert_not_null(k);
	return k;
}

static void test_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;

	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	cr_assert_not_null(ext);
	cr_assert(X509_add_ext(cert, ext, -1));
	X509_EXTENSION_free(ext);
}

static X509 *test_cert(const char *cn, EVP_PKEY *key, long serial)
{
	X509 *c = X509_new();
	X509_NAME *name;

	cr_assert_not_null(c);
	cr_assert(X509_set_version(c, X509_VERSION_3));
	ASN1_INTEGER_set(X509_get_serialNumber(c), serial);
	X509_gmtime_adj(X509_getm_notBefore(c), -3600);
	X509_gmtime_adj(X509_getm_notAfter(c), 24 * 3600);
	cr_assert(X509_set_pubkey(c, key));
	name = X509_get_subject_name(c);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	return c;
}

static void test_write_pem(const char *path, X509 *cert, EVP_PKEY *key)
{
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	if (cert)
		cr_assert(PEM_write_X509(f, cert));
	if (key)
		cr_assert(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL));
	cr_assert_eq(fclose(f), 0);
}

void test_ca_create(struct test_ca *ca, const char *cn, const char *cert_path)
{
	ca->key = test_key();
	ca->cert = test_cert(cn, ca->key, 1);
	cr_assert(X509_set_issuer_name(ca->cert, X509_get_subject_name(ca->cert)));
	test_ext(ca->cert, ca->cert, NID_basic_constraints, "critical,CA:TRUE");
	test_ext(ca->cert, ca->cert, NID_key_usage, "critical,keyCertSign,cRLSign");
	test_ext(ca->cert, ca->cert, NID_subject_key_identifier, "hash");
	cr_assert(X509_sign(ca->cert, ca->key, EVP_sha256()));
	test_write_pem(cert_path, ca->cert, NULL);
}

void test_ca_issue(const struct test_ca *ca, const char *cn, const char *dns,
		   const char *cert_path, const char *key_path)
{
	EVP_PKEY *key = test_key();
	X509 *c = test_cert(cn, key, 2 + (long)(random() & 0xffff));
	char san[256];

	cr_assert(X509_set_issuer_name(c, X509_get_subject_name(ca->cert)));
	test_ext(c, ca->cert, NID_basic_constraints, "critical,CA:FALSE");
	test_ext(c, ca->cert, NID_key_usage, "critical,digitalSignature");
	test_ext(c, ca->cert, NID_ext_key_usage, "serverAuth,clientAuth");
	test_ext(c, ca->cert, NID_authority_key_identifier, "keyid");
	snprintf(san, sizeof(san), "DNS:%s,IP:127.0.0.1", dns);
	test_ext(c, ca->cert, NID_subject_alt_name, san);
	cr_assert(X509_sign(c, ca->key, EVP_sha256()));
	test_write_pem(cert_path, c, NULL);
	test_write_pem(key_path, NULL, key);
	X509_free(c);
	EVP_PKEY_free(key);
}

void test_ca_free(struct test_ca *ca)
{
	X509_free(ca->cert);
	EVP_PKEY_free(ca->key);
}

void thread_start(struct test_thread *t, void *(*fn)(void *), void *arg)
{
	cr_assert_eq(pthread_create(&t->th, NULL, fn, arg), 0);
}

void thread_join(struct test_thread *t)
{
	cr_assert_eq(pthread_join(t->th, NULL), 0);
}
