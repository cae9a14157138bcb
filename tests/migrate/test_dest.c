/* The migration destination without a VM: HELLO checks and record handling on plain buffers. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "migrate/dest_priv.h"
#include "tests/migrate/dest_fixture.h"
#include "transport/frame.h"
#include "transport/mem_stream.h"

#define RAM_BYTES (64u << 10)
#define BLOCK_BYTES (64u << 10)

static struct mem_buf wire, replies;
static struct stream *rec, *reply_sink;
static uint8_t ram[RAM_BYTES];
static struct mig_dest d;
static char err[320];

static struct mig_hello hello(uint32_t flags, uint64_t disk_bytes)
{
	struct mig_hello h = {
		.proto = MIG_PROTO_VERSION,
		.flags = flags,
		.ram_bytes = RAM_BYTES,
		.ncpus = 1,
		.nregions = 1,
		.region = { { .gpa = 0, .bytes = RAM_BYTES } },
		.disk_bytes = disk_bytes,
		.disk_block_bytes = disk_bytes ? BLOCK_BYTES : 0,
		.version = "test",
	};

	return h;
}

static void setup(void)
{
	dest_fixture_open(&d, ram, RAM_BYTES, &wire, &rec, &replies);
	reply_sink = d.conn;
}

static void teardown(void)
{
	/* rec: closed by start_reading, or abandoned with the test's process. */
	dest_fixture_close(&d, NULL, &wire, &replies);
}

TestSuite(mig_dest, .init = setup, .fini = teardown, .timeout = 30);

static void send_hello(const struct mig_hello *h)
{
	uint8_t buf[512];
	int n = mig_hello_encode(h, buf, sizeof(buf));

	cr_assert_gt(n, 0);
	cr_assert_eq(frame_write(rec, MIG_REC_HELLO, 0, buf, (size_t)n), 0);
}

/* End the stream the test wrote and point d.in at it. */
static void start_reading(void)
{
	struct stream *mem;

	cr_assert_eq(stream_close(rec, true), 0);
	cr_assert_eq(mem_stream_reader(&mem, wire.data, wire.len), 0);
	cr_assert_eq(frame_reader_open(&d.in, mem), 0);
}

static int decode(const struct mig_hello *h)
{
	uint8_t buf[512];
	struct mig_hello out;
	int n = mig_hello_encode(h, buf, sizeof(buf));

	cr_assert_gt(n, 0);
	return mig_hello_decode(buf, (size_t)n, &out);
}

Test(mig_dest, hello_round_trips)
{
	struct mig_hello h = hello(MIG_FLAG_WITH_DISK, 3 * BLOCK_BYTES), out;
	uint8_t buf[512];
	int n = mig_hello_encode(&h, buf, sizeof(buf));

	cr_assert_gt(n, 0);
	cr_assert_eq(mig_hello_decode(buf, (size_t)n, &out), 0);
	cr_assert_eq(out.flags, MIG_FLAG_WITH_DISK);
	cr_assert_eq(out.disk_bytes, 3 * BLOCK_BYTES);
	cr_assert_eq(out.region[0].bytes, RAM_BYTES);
	cr_assert_str_eq(out.version, "test");
}

/* The HELLO that reached open(NULL) on a destination without --disk. */
Test(mig_dest, hello_rejects_disk_flag_without_a_disk)
{
	struct mig_hello h = hello(MIG_FLAG_WITH_DISK, 0);

	cr_assert_eq(decode(&h), -EPROTO);
	h = hello(0, 0);
	cr_assert_eq(decode(&h), 0);
}

Test(mig_dest, hello_rejects_unknown_flags)
{
	for (unsigned bit = 0; bit < 32; bit++) {
		struct mig_hello h = hello(1u << bit, BLOCK_BYTES);

		if ((1u << bit) & MIG_FLAGS_KNOWN)
			continue;

		cr_assert_eq(decode(&h), -EPROTO, "flag bit %u", bit);
	}
}

Test(mig_dest, read_hello_refuses_disk_flag_without_a_disk)
{
	struct mig_hello h = hello(MIG_FLAG_WITH_DISK, 0);

	send_hello(&h);
	start_reading();
	cr_assert_eq(mig_dest_read_hello(&d, err, sizeof(err)), -EPROTO);
	cr_assert(strstr(err, "no valid HELLO"), "%s", err);
}

/* The compatibility rule: its own and the previous release's protocol, nothing newer. */
Test(mig_dest, read_hello_accepts_this_and_the_previous_protocol)
{
	struct mig_hello h = hello(0, 0);

	h.proto = MIG_PROTO_PREV_VERSION;
	send_hello(&h);
	start_reading();
	cr_assert_eq(mig_dest_read_hello(&d, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(d.hello.proto, MIG_PROTO_PREV_VERSION);
}

Test(mig_dest, read_hello_refuses_a_newer_protocol_naming_both)
{
	struct mig_hello h = hello(0, 0);
	enum mig_reply type;
	char msg[MIG_REPLY_MAX_MSG + 1], want[80];
	const uint8_t *sent;
	size_t sent_len;
	struct stream *back;

	h.proto = MIG_PROTO_VERSION + 1;
	send_hello(&h);
	start_reading();
	cr_assert_eq(mig_dest_read_hello(&d, err, sizeof(err)), -EPROTO);
	snprintf(want, sizeof(want), "protocol %u is newer than %u", MIG_PROTO_VERSION + 1,
		 MIG_PROTO_VERSION);
	cr_assert(strstr(err, want), "%s", err);
	cr_assert(strstr(err, "upgrade godwit"), "%s", err);
	/* The source is told the same, before any page. */
	sent = mem_stream_peek(reply_sink, &sent_len);
	cr_assert_eq(mem_stream_reader(&back, sent, sent_len), 0);
	cr_assert_eq(mig_reply_recv(back, &type, msg, sizeof(msg)), 0);
	cr_assert_eq(type, MIG_REPLY_REFUSE);
	cr_assert(strstr(msg, "upgrade godwit"), "%s", msg);
	stream_close(back, false);
}

Test(mig_dest, layout_must_match)
{
	struct mig_hello h = hello(0, BLOCK_BYTES);

	send_hello(&h);
	start_reading();
	cr_assert_eq(mig_dest_read_hello(&d, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(mig_dest_check_layout(&d, err, sizeof(err)), -EPROTO);
	cr_assert(strstr(err, "disk of 0 bytes here"), "%s", err);
	d.disk_bytes = BLOCK_BYTES;
	cr_assert_eq(mig_dest_check_layout(&d, err, sizeof(err)), 0, "%s", err);
}

static void send_disk_block(uint64_t block)
{
	uint8_t *p = calloc(1, MIG_RUN_HDR_BYTES + BLOCK_BYTES);
	struct mig_run run = { .region = 0, .count = 1, .first = block };

	cr_assert_not_null(p);
	mig_run_encode(&run, p);
	memset(p + MIG_RUN_HDR_BYTES, 0x5a, BLOCK_BYTES);
	cr_assert_eq(frame_write(rec, MIG_REC_DISK, 0, p, MIG_RUN_HDR_BYTES + BLOCK_BYTES), 0);
	free(p);
}

/* A full disk here is reported as one, with its name: not as a malformed record. */
Test(mig_dest, full_disk_names_the_disk_and_the_errno)
{
	struct mig_hello h = hello(MIG_FLAG_WITH_DISK, 2 * BLOCK_BYTES);

	send_hello(&h);
	send_disk_block(1);
	cr_assert_eq(frame_write(rec, MIG_REC_DONE, 0, NULL, 0), 0);
	start_reading();
	d.disk_bytes = 2 * BLOCK_BYTES;
	d.disk_path = "/dev/full";
	d.disk_fd = open(d.disk_path, O_WRONLY | O_CLOEXEC);
	cr_assert_geq(d.disk_fd, 0);
	cr_assert_eq(mig_dest_read_hello(&d, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(mig_dest_check_layout(&d, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(mig_dest_receive_data(&d, err, sizeof(err)), -ENOSPC, "%s", err);
	cr_assert(strstr(err, "/dev/full"), "%s", err);
	cr_assert(strstr(err, strerror(ENOSPC)), "%s", err);
}

/* The same stream onto a disk with room lands the block and ends at DONE. */
Test(mig_dest, disk_block_lands)
{
	struct mig_hello h = hello(MIG_FLAG_WITH_DISK, 2 * BLOCK_BYTES);
	uint8_t got[BLOCK_BYTES];
	char path[] = "/tmp/godwit-test-dest-XXXXXX";

	send_hello(&h);
	send_disk_block(1);
	cr_assert_eq(frame_write(rec, MIG_REC_STATE, 0, "s", 1), 0);
	cr_assert_eq(frame_write(rec, MIG_REC_DONE, 0, NULL, 0), 0);
	start_reading();
	d.disk_bytes = 2 * BLOCK_BYTES;
	d.disk_path = path;
	d.disk_fd = mkstemp(path);
	cr_assert_geq(d.disk_fd, 0);
	unlink(path);
	cr_assert_eq(ftruncate(d.disk_fd, 2 * BLOCK_BYTES), 0);
	cr_assert_eq(mig_dest_read_hello(&d, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(mig_dest_receive_data(&d, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(pread(d.disk_fd, got, sizeof(got), BLOCK_BYTES), (ssize_t)sizeof(got));
	for (size_t i = 0; i < sizeof(got); i++)
		cr_assert_eq(got[i], 0x5a);
	cr_assert_eq(d.state_len, 1);
}

/* A destination's reason reaches the source's error line as one printable line. */
Test(mig_dest, a_reply_reason_reads_as_one_printable_line)
{
	struct stream *mem;
	struct mem_buf out;
	enum mig_reply type;
	char msg[MIG_REPLY_MAX_MSG + 1];

	cr_assert_eq(mem_stream_writer(&mem, &out, MEM_STREAM_UNLIMITED), 0);
	cr_assert_eq(mig_reply_send(mem, MIG_REPLY_ERROR, "disk full\ngodwit: fake\x1b[31m\x7f"), 0);
	cr_assert_eq(stream_close(mem, true), 0);
	cr_assert_eq(mem_stream_reader(&mem, out.data, out.len), 0);
	cr_assert_eq(mig_reply_recv(mem, &type, msg, sizeof(msg)), 0);
	cr_assert_eq(type, MIG_REPLY_ERROR);
	cr_assert_str_eq(msg, "disk full?godwit: fake?[31m?");
	stream_close(mem, false);
	/* Reserved bits set: not a reply of ours. */
	out.data[6] = 1;
	cr_assert_eq(mem_stream_reader(&mem, out.data, out.len), 0);
	cr_assert_eq(mig_reply_recv(mem, &type, msg, sizeof(msg)), -EPROTO);
	stream_close(mem, false);
	free(out.data);
}

/* The source's ABORT reason reaches 'godwit receive''s error line as one printable line. */
Test(mig_dest, an_abort_reason_reads_as_one_printable_line)
{
	static const char why[] = "stop\ngodwit: fake\x1b[2J";
	struct mig_hello h = hello(0, 0);

	send_hello(&h);
	cr_assert_eq(frame_write(rec, MIG_REC_ABORT, 0, why, sizeof(why) - 1), 0);
	start_reading();
	cr_assert_eq(mig_dest_read_hello(&d, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(mig_dest_receive_data(&d, err, sizeof(err)), -ECANCELED);
	cr_assert_str_eq(err, "the source cancelled: stop?godwit: fake?[2J");
}
