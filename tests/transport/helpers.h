/* Shared helpers for the transport tests: data patterns, temp dirs, socket pairs, test PKI. */
#ifndef TESTS_TRANSPORT_HELPERS_H
#define TESTS_TRANSPORT_HELPERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "transport/stream.h"

/* Deterministic pseudo-random bytes (buf, len, seed). */
void fill_random(uint8_t *buf, size_t len, uint64_t seed);

/* Like guest RAM (buf, len, seed): 40% zero pages, some text-like pages, the rest random. */
void fill_guestlike(uint8_t *buf, size_t len, uint64_t seed);

/* malloc that fails the test instead of returning NULL. */
void *xmalloc(size_t len);

/* Make a fresh directory under /tmp (out, out_len); remove it recursively (dir). */
void tmpdir_make(char *out, size_t out_len);
void tmpdir_remove(const char *dir);

/* A connected loopback TCP pair (a, b), both blocking. */
void tcp_pair(int *a, int *b);

/* Write everything (fd, buf, len) or fail the test. */
void write_fd_all(int fd, const void *buf, size_t len);

/* A throwaway CA and leaf certificates, all EC P-256, made at test time. */
struct test_ca {
	EVP_PKEY *key;
	X509 *cert;
};

/* Create a CA named cn (ca, cn) and write its certificate to path (PEM). */
void test_ca_create(struct test_ca *ca, const char *cn, const char *cert_path);

/* Issue a leaf for cn with DNS SAN dns and IP SAN 127.0.0.1 (ca, cn, dns, cert, key paths). */
void test_ca_issue(const struct test_ca *ca, const char *cn, const char *dns,
		   const char *cert_path, const char *key_path);

void test_ca_free(struct test_ca *ca);

/* Run fn(arg) on a new thread; join returns after it ended. */
struct test_thread {
	pthread_t th;
};
void thread_start(struct test_thread *t, void *(*fn)(void *), void *arg);
void thread_join(struct test_thread *t);

#endif
