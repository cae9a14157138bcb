/* Tests for whole stacks: frame -> zstd -> mem, and frame -> zstd -> tls -> tcp. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"
#include "transport/frame.h"
#include "transport/mem_stream.h"
#include "transport/tls_stream.h"
#include "transport/zstd_stream.h"

#define REC_BYTES (256u * 1024)
#define RECORDS 24

static uint8_t *data;
static struct tls_psk psk;

static void setup(void)
{
	uint8_t secret[32];

	data = xmalloc(REC_BYTES * RECORDS);
	fill_guestlike(data, REC_BYTES * RECORDS, 2);
	fill_random(secret, sizeof(secret), 3);
	cr_assert_eq(tls_psk_from_secret(&psk, secret, sizeof(secret)), 0);
}

static void teardown(void)
{
	free(data);
}

TestSuite(stack, .init = setup, .fini = teardown, .timeout = 60);

/* Build frame -> zstd over the given bottom stream. */
static struct stream *backup_writer(struct stream *bottom)
{
	struct stream *z, *f;

	cr_assert_eq(zstd_writer_open(&z, bottom, NULL), 0);
	cr_assert_eq(frame_writer_open(&f, z), 0);
	return f;
}

static int backup_reader(struct stream **out, struct stream *bottom)
{
	struct stream *z;
	int rc;

	rc = zstd_reader_open(&z, bottom);
	if (rc < 0)
		return rc;
	rc = frame_reader_open(out, z);
	if (rc < 0)
		stream_close(z, false);
	return rc;
}

static void write_records(struct stream *f)
{
	for (uint16_t i = 0; i < RECORDS; i++)
		cr_assert_eq(frame_write(f, (uint16_t)(1 + i % 3), i, data + (size_t)i * REC_BYTES,
					 REC_BYTES - i), 0);
}

/* Read all records back and check them; returns the code after the last one. */
static int check_records(struct stream *f)
{
	uint8_t *buf = xmalloc(REC_BYTES);
	uint16_t type, flags;
	size_t n;
	int rc;

	for (uint16_t i = 0; i < RECORDS; i++) {
		rc = frame_read(f, &type, &flags, buf, REC_BYTES, &n);
		if (rc < 0) {
			free(buf);
			return rc;
		}
		cr_assert_eq(type, 1 + i % 3);
		cr_assert_eq(flags, i);
		cr_assert_eq(n, REC_BYTES - i);
		cr_assert_eq(memcmp(buf, data + (size_t)i * REC_BYTES, n), 0, "record %u", i);
	}
	rc = frame_read(f, &type, &flags, buf, REC_BYTES, &n);
	free(buf);
	return rc;
}

Test(stack, frame_zstd_mem_round_trips_and_compresses)
{
	struct stream *mem, *f;
	struct mem_buf out;

	cr_assert_eq(mem_stream_writer(&mem, &out, MEM_STREAM_UNLIMITED), 0);
	f = backup_writer(mem);
	write_records(f);
	cr_assert_eq(stream_close(f, true), 0);
	cr_assert_lt(out.len, REC_BYTES * RECORDS / 2);
	cr_assert_eq(mem_stream_reader(&mem, out.data, out.len), 0);
	cr_assert_eq(backup_reader(&f, mem), 0);
	cr_assert_eq(check_records(f), -ENODATA);
	cr_assert_eq(stream_close(f, false), 0);
	free(out.data);
}

/* The receiving end of a migration-like session over frame -> zstd -> tls -> tcp. */
struct receiver {
	int fd;
	int rc;
	int rounds;
	char err[256];
	bool abort_expected;
};

#define ROUNDS 4

static void *receive(void *arg)
{
	struct receiver *r = arg;
	struct tls_config cfg = { .auth = TLS_AUTH_PSK, .psk = &psk, .handshake_timeout_ms = 5000,
				  .io_timeout_ms = 10000 };
	struct stream *tls, *z, *f;
	uint8_t *buf = malloc(REC_BYTES);
	uint16_t type, flags;
	size_t n;
	int rc;

	rc = tls_server(&tls, r->fd, &cfg, r->err, sizeof(r->err));
	if (rc < 0) {
		close(r->fd);
		goto out;
	}
	rc = zstd_reader_open(&z, tls);
	if (rc < 0) {
		stream_close(tls, false);
		goto out;
	}
	rc = frame_reader_open(&f, z);
	if (rc < 0) {
		stream_close(z, false);
		goto out;
	}
	/* Each round is RECORDS/ROUNDS records; ack it on the TLS stream we still borrow. */
	for (int i = 0; rc == 0; i++) {
		rc = frame_read(f, &type, &flags, buf, REC_BYTES, &n);
		if (rc < 0)
			break;
		if (n != REC_BYTES - flags || memcmp(buf, data + (size_t)flags * REC_BYTES, n) != 0) {
			rc = -EBADMSG;
			break;
		}
		if ((i + 1) % (RECORDS / ROUNDS) == 0) {
			uint8_t ack = (uint8_t)r->rounds++;

			rc = stream_write_all(tls, &ack, 1);
			if (rc == 0)
				rc = stream_flush(tls);
		}
	}
	if (rc == -ENODATA)
		rc = 0;
	/* Both ends are done: close the stack, which sends our close_notify. */
	stream_close(f, rc == 0);
out:
	free(buf);
	r->rc = rc;
	return NULL;
}

Test(stack, frame_zstd_tls_tcp_carries_rounds_that_decode_at_each_flush)
{
	struct tls_config cfg = { .auth = TLS_AUTH_PSK, .psk = &psk, .handshake_timeout_ms = 5000,
				  .io_timeout_ms = 10000 };
	struct receiver r = { 0 };
	struct stream *tls, *z, *f;
	struct test_thread th;
	char err[256];
	int fd;

	tcp_pair(&fd, &r.fd);
	thread_start(&th, receive, &r);
	cr_assert_eq(tls_client(&tls, fd, &cfg, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(zstd_writer_open(&z, tls, NULL), 0);
	cr_assert_eq(frame_writer_open(&f, z), 0);
	for (int round = 0; round < ROUNDS; round++) {
		uint8_t ack;

		for (int i = 0; i < RECORDS / ROUNDS; i++) {
			uint16_t k = (uint16_t)(round * (RECORDS / ROUNDS) + i);

			cr_assert_eq(frame_write(f, 1, k, data + (size_t)k * REC_BYTES, REC_BYTES - k), 0);
		}
		/* The receiver can only ack if the flush made the whole round decodable. */
		cr_assert_eq(stream_flush(f), 0);
		cr_assert_eq(stream_read_all(tls, &ack, 1), 0, "%s", tls_stream_error(tls));
		cr_assert_eq(ack, round);
	}
	cr_assert_eq(stream_close(f, true), 0);
	thread_join(&th);
	cr_assert_eq(r.rc, 0, "receiver: %d %s", r.rc, r.err);
	cr_assert_eq(r.rounds, ROUNDS);
}

Test(stack, sender_abort_over_tls_is_truncation_at_the_receiver)
{
	struct tls_config cfg = { .auth = TLS_AUTH_PSK, .psk = &psk, .handshake_timeout_ms = 5000,
				  .io_timeout_ms = 10000 };
	struct receiver r = { 0 };
	struct stream *tls, *z, *f;
	struct test_thread th;
	char err[256];
	int fd;

	tcp_pair(&fd, &r.fd);
	thread_start(&th, receive, &r);
	cr_assert_eq(tls_client(&tls, fd, &cfg, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(zstd_writer_open(&z, tls, NULL), 0);
	cr_assert_eq(frame_writer_open(&f, z), 0);
	cr_assert_eq(frame_write(f, 1, 0, data, REC_BYTES), 0);
	cr_assert_eq(stream_flush(f), 0);
	cr_assert_eq(stream_close(f, false), 0);
	thread_join(&th);
	cr_assert_eq(r.rc, -EPROTO, "receiver: %d %s", r.rc, r.err);
}

/* A receiver that reads everything, then commits its own close, as a real one would. */
struct drainer {
	int fd;
	int rc, close_rc;
	size_t got;
};

static void *drain_all(void *arg)
{
	struct drainer *d = arg;
	struct tls_config cfg = { .auth = TLS_AUTH_PSK, .psk = &psk, .handshake_timeout_ms = 5000,
				  .io_timeout_ms = 10000 };
	struct stream *tls, *z, *f;
	uint8_t *buf = malloc(REC_BYTES);
	uint16_t type;
	size_t n;
	char err[256];

	d->rc = tls_server(&tls, d->fd, &cfg, err, sizeof(err));
	if (d->rc < 0) {
		close(d->fd);
		free(buf);
		return NULL;
	}
	zstd_reader_open(&z, tls);
	frame_reader_open(&f, z);
	while ((d->rc = frame_read(f, &type, NULL, buf, REC_BYTES, &n)) == 0)
		d->got += n;
	d->close_rc = stream_close(f, d->rc == -ENODATA);
	free(buf);
	return NULL;
}

Test(stack, both_ends_commit_cleanly_however_their_closes_interleave)
{
	struct tls_config cfg = { .auth = TLS_AUTH_PSK, .psk = &psk, .handshake_timeout_ms = 5000,
				  .io_timeout_ms = 10000 };

	/* The writer's close_notify must reach the reader before it closes, and neither
	 * close may fail on a reset from the other, whichever finishes first. */
	for (int i = 0; i < 30; i++) {
		struct drainer d = { 0 };
		struct stream *tls, *z, *f;
		struct test_thread th;
		char err[256];
		int fd;

		tcp_pair(&fd, &d.fd);
		thread_start(&th, drain_all, &d);
		cr_assert_eq(tls_client(&tls, fd, &cfg, err, sizeof(err)), 0, "%s", err);
		cr_assert_eq(zstd_writer_open(&z, tls, NULL), 0);
		cr_assert_eq(frame_writer_open(&f, z), 0);
		cr_assert_eq(frame_write(f, 1, 0, data, REC_BYTES), 0);
		cr_assert_eq(frame_write(f, 2, 0, data + REC_BYTES, (size_t)i * 1000), 0);
		cr_assert_eq(stream_close(f, true), 0, "writer close, round %d", i);
		thread_join(&th);
		cr_assert_eq(d.rc, -ENODATA, "round %d", i);
		cr_assert_eq(d.close_rc, 0, "reader close, round %d", i);
		cr_assert_eq(d.got, REC_BYTES + (size_t)i * 1000);
	}
}
