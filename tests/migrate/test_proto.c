/* The migration wire protocol (migrate/proto.c) and the receiver fed from memory: no VM. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "migrate/dest_priv.h"
#include "migrate/proto.h"
#include "tests/migrate/dest_fixture.h"
#include "util/byteorder.h"
#include "util/crc32c.h"
#include "transport/frame.h"
#include "transport/mem_stream.h"

#define RAM_BYTES (4u * MIG_PAGE_BYTES)

static uint8_t buf[1024];
static struct mig_hello h, out;

static struct mig_hello full_hello(void)
{
	struct mig_hello x = {
		.proto = MIG_PROTO_VERSION,
		.flags = MIG_FLAG_WITH_DISK | MIG_FLAG_VERIFY,
		.ram_bytes = 3u << 20,
		.ncpus = 2,
		.nregions = 2,
		.region = { { .gpa = 0, .bytes = 1u << 20 }, { .gpa = 1ull << 32, .bytes = 2u << 20 } },
		.disk_bytes = 8u << 20,
		.disk_block_bytes = 64u << 10,
		.version = "godwit 0.0-test",
		.nnics = 3,
	};

	return x;
}

static void hello_setup(void)
{
	memset(buf, 0, sizeof(buf));
	memset(&out, 0xee, sizeof(out));
	h = full_hello();
}

TestSuite(mig_hello, .init = hello_setup, .timeout = 10);

static int encoded(void)
{
	int n = mig_hello_encode(&h, buf, sizeof(buf));

	cr_assert_gt(n, 0);
	return n;
}

Test(mig_hello, round_trips_every_field)
{
	int n = encoded();

	cr_assert_eq(n, MIG_HELLO_FIXED_BYTES + 2 * MIG_HELLO_REGION_BYTES + MIG_HELLO_TAIL_BYTES);
	cr_assert_eq(mig_hello_decode(buf, (size_t)n, &out), 0);
	cr_assert_eq(out.proto, h.proto);
	cr_assert_eq(out.flags, h.flags);
	cr_assert_eq(out.ram_bytes, h.ram_bytes);
	cr_assert_eq(out.ncpus, h.ncpus);
	cr_assert_eq(out.nregions, h.nregions);
	for (unsigned r = 0; r < h.nregions; r++) {
		cr_assert_eq(out.region[r].gpa, h.region[r].gpa);
		cr_assert_eq(out.region[r].bytes, h.region[r].bytes);
	}
	cr_assert_eq(out.disk_bytes, h.disk_bytes);
	cr_assert_eq(out.disk_block_bytes, h.disk_block_bytes);
	cr_assert_str_eq(out.version, h.version);
	cr_assert_eq(out.nnics, h.nnics);
}

/* A version string of the full 32 bytes comes back whole and terminated. */
Test(mig_hello, a_full_length_version_string_is_terminated)
{
	int n;

	memset(h.version, 'v', 32);
	h.version[32] = '\0';
	n = encoded();
	cr_assert_eq(mig_hello_decode(buf, (size_t)n, &out), 0);
	cr_assert_eq(strlen(out.version), 32);
}

Test(mig_hello, encode_refuses_a_small_buffer)
{
	cr_assert_eq(mig_hello_encode(&h, buf, MIG_HELLO_FIXED_BYTES), -ENOSPC);
	h.nregions = MIG_MAX_REGIONS + 1;
	cr_assert_eq(mig_hello_encode(&h, buf, sizeof(buf)), -ENOSPC);
}

/* Truncated at every length short of the whole, and one byte too long. */
Test(mig_hello, rejects_truncation_at_every_byte_and_trailing_bytes)
{
	int n = encoded();

	for (int cut = 0; cut < n; cut++)
		cr_assert_eq(mig_hello_decode(buf, (size_t)cut, &out), -EPROTO, "cut at %d", cut);
	cr_assert_eq(mig_hello_decode(buf, (size_t)n + 1, &out), -EPROTO);
	cr_assert_eq(mig_hello_decode(buf, (size_t)n, &out), 0);
}

Test(mig_hello, rejects_region_counts_out_of_range)
{
	int n = encoded();

	le32_encode(buf + 20, 0);
	cr_assert_eq(mig_hello_decode(buf, (size_t)n, &out), -EPROTO);
	le32_encode(buf + 20, MIG_MAX_REGIONS + 1);
	cr_assert_eq(mig_hello_decode(buf, (size_t)n, &out), -EPROTO);
	/* A count that says 1 against a body of 2 is a length mismatch too. */
	le32_encode(buf + 20, 1);
	cr_assert_eq(mig_hello_decode(buf, (size_t)n, &out), -EPROTO);
}

Test(mig_hello, rejects_bad_regions)
{
	uint8_t *r1 = buf + MIG_HELLO_FIXED_BYTES + MIG_HELLO_REGION_BYTES;
	int n = encoded();
	uint8_t good[sizeof(buf)];

	memcpy(good, buf, sizeof(buf));
	le64_encode(r1, 4096 + 1); /* gpa not page aligned */
	cr_assert_eq(mig_hello_decode(buf, (size_t)n, &out), -EPROTO);
	memcpy(buf, good, sizeof(buf));
	le64_encode(r1 + 8, (2u << 20) + 512); /* bytes not whole pages */
	cr_assert_eq(mig_hello_decode(buf, (size_t)n, &out), -EPROTO);
	memcpy(buf, good, sizeof(buf));
	le64_encode(r1 + 8, 0); /* empty */
	cr_assert_eq(mig_hello_decode(buf, (size_t)n, &out), -EPROTO);
	memcpy(buf, good, sizeof(buf));
	le64_encode(r1, UINT64_MAX & ~(uint64_t)(MIG_PAGE_BYTES - 1)); /* wraps */
	cr_assert_eq(mig_hello_decode(buf, (size_t)n, &out), -EPROTO);
	memcpy(buf, good, sizeof(buf));
	le64_encode(buf + 8, 4u << 20); /* regions do not sum to ram_bytes */
	cr_assert_eq(mig_hello_decode(buf, (size_t)n, &out), -EPROTO);
	memcpy(buf, good, sizeof(buf));
	cr_assert_eq(mig_hello_decode(buf, (size_t)n, &out), 0);
}

Test(mig_hello, rejects_zero_vcpus)
{
	h.ncpus = 0;
	cr_assert_eq(mig_hello_decode(buf, (size_t)encoded(), &out), -EPROTO);
}

Test(mig_hello, rejects_bad_disk_geometry)
{
	h.disk_block_bytes = 0;
	cr_assert_eq(mig_hello_decode(buf, (size_t)encoded(), &out), -EPROTO);
	h.disk_block_bytes = 4096 + 100;
	cr_assert_eq(mig_hello_decode(buf, (size_t)encoded(), &out), -EPROTO);
}

Test(mig_hello, rejects_unknown_flags_and_disk_without_a_disk)
{
	for (unsigned bit = 0; bit < 32; bit++) {
		h = full_hello();
		h.flags = 1u << bit;
		cr_assert_eq(mig_hello_decode(buf, (size_t)encoded(), &out),
			     (h.flags & MIG_FLAGS_KNOWN) ? 0 : -EPROTO, "flag bit %u", bit);
	}
	h = full_hello();
	h.disk_bytes = 0;
	h.disk_block_bytes = 0;
	cr_assert_eq(mig_hello_decode(buf, (size_t)encoded(), &out), -EPROTO);
}

Test(mig_hello, rejects_too_many_nics)
{
	h.nnics = MIG_MAX_NICS;
	cr_assert_eq(mig_hello_decode(buf, (size_t)encoded(), &out), 0);
	h.nnics = MIG_MAX_NICS + 1;
	cr_assert_eq(mig_hello_decode(buf, (size_t)encoded(), &out), -EPROTO);
}

Test(mig_hello, run_header_round_trips)
{
	struct mig_run r = { .region = 3, .count = MIG_MAX_RUN_PAGES, .first = 0x123456789aull }, o;
	uint8_t hdr[MIG_RUN_HDR_BYTES];

	mig_run_encode(&r, hdr);
	mig_run_decode(hdr, &o);
	cr_assert_eq(o.region, r.region);
	cr_assert_eq(o.count, r.count);
	cr_assert_eq(o.first, r.first);
}

/* Replies: encoded by mig_reply_send into memory, read back by mig_reply_recv. */

static struct mem_buf wire;
static char msg[MIG_REPLY_MAX_MSG + 1];
static enum mig_reply type;

static void reply_setup(void)
{
	memset(&wire, 0, sizeof(wire));
	memset(msg, 0, sizeof(msg));
	type = MIG_REPLY_INVALID;
}

static void reply_teardown(void)
{
	free(wire.data);
}

TestSuite(mig_reply, .init = reply_setup, .fini = reply_teardown, .timeout = 10);

static void send_reply(enum mig_reply t, const char *m)
{
	struct stream *s;

	cr_assert_eq(mem_stream_writer(&s, &wire, MEM_STREAM_UNLIMITED), 0);
	cr_assert_eq(mig_reply_send(s, t, m), 0);
	cr_assert_eq(stream_close(s, true), 0);
}

static int recv_len(size_t len)
{
	struct stream *s;
	int rc;

	cr_assert_eq(mem_stream_reader(&s, wire.data, len), 0);
	rc = mig_reply_recv(s, &type, msg, sizeof(msg));
	stream_close(s, false);
	return rc;
}

static int recv_all(void)
{
	return recv_len(wire.len);
}

/* Rewrite the checksum after a deliberate change, so only the change is judged. */
static void reseal(void)
{
	uint32_t len = le32_decode(wire.data + 8);
	uint32_t crc = crc32c(0, wire.data, 12);

	if (MIG_REPLY_HDR_BYTES + (size_t)len <= wire.len)
		crc = crc32c(crc, wire.data + MIG_REPLY_HDR_BYTES, len);
	le32_encode(wire.data + 12, crc);
}

Test(mig_reply, every_type_round_trips_with_and_without_a_message)
{
	for (enum mig_reply t = MIG_REPLY_ACCEPT; t < MIG_REPLY_COUNT; t++) {
		free(wire.data);
		memset(&wire, 0, sizeof(wire));
		send_reply(t, NULL);
		cr_assert_eq(wire.len, MIG_REPLY_HDR_BYTES);
		cr_assert_eq(recv_all(), 0);
		cr_assert_eq(type, t);
		cr_assert_str_eq(msg, "");
		free(wire.data);
		memset(&wire, 0, sizeof(wire));
		send_reply(t, "disk of 5 bytes here");
		cr_assert_eq(recv_all(), 0);
		cr_assert_eq(type, t);
		cr_assert_str_eq(msg, "disk of 5 bytes here");
	}
}

/* The longest message goes whole; a longer one is cut to it by the sender. */
Test(mig_reply, the_longest_message_round_trips)
{
	char *m = malloc(MIG_REPLY_MAX_MSG + 2);

	cr_assert_not_null(m);
	memset(m, 'x', MIG_REPLY_MAX_MSG + 1);
	m[MIG_REPLY_MAX_MSG + 1] = '\0';
	send_reply(MIG_REPLY_ERROR, m);
	cr_assert_eq(wire.len, MIG_REPLY_HDR_BYTES + MIG_REPLY_MAX_MSG);
	cr_assert_eq(recv_all(), 0);
	cr_assert_eq(strlen(msg), MIG_REPLY_MAX_MSG);
	free(m);
}

Test(mig_reply, rejects_bad_magic)
{
	send_reply(MIG_REPLY_READY, NULL);
	wire.data[0] ^= 0x20;
	reseal();
	cr_assert_eq(recv_all(), -EPROTO);
}

Test(mig_reply, rejects_reserved_bits)
{
	send_reply(MIG_REPLY_READY, NULL);
	le16_encode(wire.data + 6, 0x8000);
	reseal();
	cr_assert_eq(recv_all(), -EPROTO);
}

Test(mig_reply, rejects_invalid_and_unknown_types)
{
	send_reply(MIG_REPLY_READY, NULL);
	le16_encode(wire.data + 4, MIG_REPLY_INVALID);
	reseal();
	cr_assert_eq(recv_all(), -EPROTO);
	le16_encode(wire.data + 4, MIG_REPLY_COUNT);
	reseal();
	cr_assert_eq(recv_all(), -EPROTO);
	le16_encode(wire.data + 4, MIG_REPLY_READY);
	reseal();
	cr_assert_eq(recv_all(), 0);
}

/* A length past the limit is refused, even with that many bytes there to read. */
Test(mig_reply, rejects_an_oversized_length)
{
	char *m = malloc(MIG_REPLY_MAX_MSG + 1);
	uint8_t *grown;

	cr_assert_not_null(m);
	memset(m, 'y', MIG_REPLY_MAX_MSG);
	m[MIG_REPLY_MAX_MSG] = '\0';
	send_reply(MIG_REPLY_ERROR, m);
	free(m);
	grown = realloc(wire.data, wire.len + 1);
	cr_assert_not_null(grown);
	wire.data = grown;
	wire.data[wire.len++] = 'y';
	le32_encode(wire.data + 8, MIG_REPLY_MAX_MSG + 1);
	reseal();
	cr_assert_eq(recv_all(), -EPROTO);
}

Test(mig_reply, rejects_a_bad_checksum_over_header_or_message)
{
	send_reply(MIG_REPLY_ERROR, "why");
	wire.data[MIG_REPLY_HDR_BYTES + 1] ^= 1;
	cr_assert_eq(recv_all(), -EPROTO);
	wire.data[MIG_REPLY_HDR_BYTES + 1] ^= 1;
	wire.data[12] ^= 1;
	cr_assert_eq(recv_all(), -EPROTO);
	wire.data[12] ^= 1;
	cr_assert_eq(recv_all(), 0);
}

/* Cut in the header or in the message: the stream's error, never a reply. */
Test(mig_reply, truncation_at_every_byte_is_an_error)
{
	send_reply(MIG_REPLY_REFUSE, "no");
	for (size_t cut = 0; cut < wire.len; cut++) {
		int rc = recv_len(cut);

		/* The memory reader: -ENODATA at the end, -EPROTO for a read across it. */
		cr_assert(rc == -ENODATA || rc == -EPROTO, "cut at %zu: %d", cut, rc);
	}
	cr_assert_eq(recv_len(wire.len), 0);
}

Test(mig_reply, control_bytes_in_a_reason_print_as_one_line)
{
	send_reply(MIG_REPLY_REFUSE, "a\nb\rc\td\x1b[1m\x7f" "e");
	cr_assert_eq(recv_all(), 0);
	cr_assert_str_eq(msg, "a?b?c?d?[1m?e");
}

Test(mig_reply, a_small_message_buffer_cuts_and_terminates)
{
	struct stream *s;
	char small[4];

	send_reply(MIG_REPLY_ERROR, "longer than four");
	cr_assert_eq(mem_stream_reader(&s, wire.data, wire.len), 0);
	cr_assert_eq(mig_reply_recv(s, &type, small, sizeof(small)), 0);
	cr_assert_str_eq(small, "lon");
	stream_close(s, false);
}

/*
 * The receiver (mig_dest_read_hello, mig_dest_receive_data) fed a record sequence from a
 * memory stream: a valid one lands in RAM; each corruption fails with its own error.
 */

static struct mem_buf rx, replies;
static struct stream *rec, *reply_sink;
static uint8_t ram[RAM_BYTES];
static struct mig_dest d;
static char err[320];

static void rx_setup(void)
{
	memset(ram, 0xcc, sizeof(ram));
	err[0] = '\0';
	dest_fixture_open(&d, ram, RAM_BYTES, &rx, &rec, &replies);
	reply_sink = d.conn;
}

static void rx_teardown(void)
{
	dest_fixture_close(&d, rec, &rx, &replies);
}

TestSuite(mig_receiver, .init = rx_setup, .fini = rx_teardown, .timeout = 30);

static void put(uint16_t t, const void *p, size_t len)
{
	cr_assert_eq(frame_write(rec, t, 0, p, len), 0);
}

static void put_hello(uint32_t proto)
{
	struct mig_hello x = {
		.proto = proto,
		.ram_bytes = RAM_BYTES,
		.ncpus = 1,
		.nregions = 1,
		.region = { { .gpa = 0, .bytes = RAM_BYTES } },
		.version = "test",
	};
	uint8_t b[256];
	int n = mig_hello_encode(&x, b, sizeof(b));

	cr_assert_gt(n, 0);
	put(MIG_REC_HELLO, b, (size_t)n);
}

/* PAGES of count pages from first, each filled with its page number + fill. */
static void put_pages(uint64_t first, uint32_t count, uint8_t fill)
{
	size_t len = MIG_RUN_HDR_BYTES + (size_t)count * MIG_PAGE_BYTES;
	uint8_t *p = malloc(len);
	struct mig_run run = { .region = 0, .count = count, .first = first };

	cr_assert_not_null(p);
	mig_run_encode(&run, p);
	for (uint32_t i = 0; i < count; i++)
		memset(p + MIG_RUN_HDR_BYTES + (size_t)i * MIG_PAGE_BYTES,
		       (int)(fill + first + i), MIG_PAGE_BYTES);
	put(MIG_REC_PAGES, p, len);
	free(p);
}

static void put_run(uint16_t t, uint32_t region, uint32_t count, uint64_t first)
{
	uint8_t hdr[MIG_RUN_HDR_BYTES];
	struct mig_run run = { .region = region, .count = count, .first = first };

	mig_run_encode(&run, hdr);
	put(t, hdr, sizeof(hdr));
}

static void put_round_end(uint32_t round)
{
	uint8_t b[4];

	le32_encode(b, round);
	put(MIG_REC_ROUND_END, b, sizeof(b));
}

/* The valid sequence of proto.h up to DONE: HELLO, two rounds, STATE, DONE. */
static void put_valid_sequence(void)
{
	put_hello(MIG_PROTO_VERSION);
	put_pages(0, 4, 0x10);
	put_round_end(0);
	put_run(MIG_REC_ZERO, 0, 1, 2);
	put_pages(1, 1, 0x40);
	put_round_end(1);
	put(MIG_REC_STATE, "blob", 4);
	put(MIG_REC_DONE, NULL, 0);
}

/* Bytes of the committed stream's END record, which the receiver never reaches. */
#define END_RECORD_BYTES (FRAME_HEADER_BYTES + FRAME_END_PAYLOAD_BYTES)

/* Commit the record writer and point d.in at what it wrote, less its last drop bytes. */
static void start_reading_less(size_t drop)
{
	struct stream *mem;

	cr_assert_eq(stream_close(rec, true), 0);
	rec = NULL;
	cr_assert_geq(rx.len, drop);
	cr_assert_eq(mem_stream_reader(&mem, rx.data, rx.len - drop), 0);
	cr_assert_eq(frame_reader_open(&d.in, mem), 0);
}

static void start_reading(bool commit)
{
	start_reading_less(commit ? 0 : END_RECORD_BYTES);
}

static int receive(void)
{
	int rc = mig_dest_read_hello(&d, err, sizeof(err));

	if (rc < 0)
		return rc;
	return mig_dest_receive_data(&d, err, sizeof(err));
}

/* The replies the receiver wrote, in order, as a string of type digits. */
static void replies_as_text(char *outs, size_t cap)
{
	struct stream *s;
	size_t n = 0, len;
	enum mig_reply t;
	char m[MIG_REPLY_MAX_MSG + 1];
	const uint8_t *data = mem_stream_peek(reply_sink, &len);

	cr_assert_eq(mem_stream_reader(&s, data, len), 0);
	while (n + 1 < cap && mig_reply_recv(s, &t, m, sizeof(m)) == 0)
		outs[n++] = (char)('0' + t);
	outs[n] = '\0';
	stream_close(s, false);
}

Test(mig_receiver, a_valid_sequence_lands_in_ram_and_answers_each_round)
{
	char said[16];

	put_valid_sequence();
	start_reading(true);
	cr_assert_eq(receive(), 0, "%s", err);
	cr_assert_eq(ram[0], 0x10);
	cr_assert_eq(ram[MIG_PAGE_BYTES], 0x41);
	cr_assert_eq(ram[2 * MIG_PAGE_BYTES], 0);
	cr_assert_eq(ram[3 * MIG_PAGE_BYTES + MIG_PAGE_BYTES - 1], 0x13);
	cr_assert_eq(d.state_len, 4);
	cr_assert_eq(memcmp(d.state, "blob", 4), 0);
	replies_as_text(said, sizeof(said));
	cr_assert_str_eq(said, "66", "two ROUND_DONE replies, got \"%s\"", said);
}

/*
 * A bit flipped in every seventh byte of the valid stream, up to DONE (the END after it
 * is read later, by wait_go): the frames' CRCs and the decoders turn each into an error.
 */
Test(mig_receiver, a_flipped_byte_anywhere_fails_cleanly, .timeout = 120)
{
	size_t len;
	uint8_t *good;

	put_valid_sequence();
	start_reading(true);
	len = rx.len;
	good = malloc(len);
	cr_assert_not_null(good);
	memcpy(good, rx.data, len);
	stream_close(d.in, false);
	d.in = NULL;
	for (size_t i = 0; i < len - END_RECORD_BYTES; i += 7) {
		struct stream *mem;
		int rc;

		memcpy(rx.data, good, len);
		rx.data[i] ^= 0x01;
		free(d.state);
		d.state = NULL;
		cr_assert_eq(mem_stream_reader(&mem, rx.data, len), 0);
		rc = frame_reader_open(&d.in, mem);
		if (rc == 0) {
			rc = receive();
			stream_close(d.in, false);
		} else {
			stream_close(mem, false); /* still ours: the reader owns it only when open */
		}
		d.in = NULL;
		cr_assert_lt(rc, 0, "flip at byte %zu of %zu passed", i, len);
	}
	free(good);
}

/* The compatibility rule (migrate/proto.h): this and the previous protocol, no other. */
static void refused_version(uint32_t proto, const char *fix)
{
	char said[4];

	put_hello(proto);
	start_reading(true);
	cr_assert_eq(receive(), -EPROTO);
	cr_assert(strstr(err, fix), "%s", err);
	replies_as_text(said, sizeof(said));
	cr_assert_str_eq(said, "2", "a REFUSE, got \"%s\"", said);
}

Test(mig_receiver, an_older_protocol_than_the_previous_is_refused_with_the_fix)
{
	refused_version(MIG_PROTO_PREV_VERSION - 1, "upgrade godwit on the source");
}

Test(mig_receiver, a_newer_protocol_is_refused_with_the_fix)
{
	refused_version(MIG_PROTO_VERSION + 1, "upgrade godwit here");
}

Test(mig_receiver, a_stream_without_hello_is_refused)
{
	put_round_end(0);
	start_reading(true);
	cr_assert_eq(receive(), -EPROTO);
	cr_assert(strstr(err, "no valid HELLO"), "%s", err);
}

Test(mig_receiver, pages_past_the_region_are_malformed)
{
	put_hello(MIG_PROTO_VERSION);
	put_pages(3, 2, 0);
	start_reading(true);
	cr_assert_eq(receive(), -EPROTO);
	cr_assert(strstr(err, "malformed record (type 2"), "%s", err);
	cr_assert_eq(ram[3 * MIG_PAGE_BYTES], 0xcc, "nothing written past a bad header");
}

Test(mig_receiver, pages_of_an_unknown_region_are_malformed)
{
	put_hello(MIG_PROTO_VERSION);
	put_run(MIG_REC_ZERO, 1, 1, 0);
	start_reading(true);
	cr_assert_eq(receive(), -EPROTO);
	cr_assert(strstr(err, "malformed record (type 3"), "%s", err);
}

Test(mig_receiver, a_payload_length_that_disagrees_with_its_header_is_malformed)
{
	uint8_t p[MIG_RUN_HDR_BYTES + 8] = { 0 };
	struct mig_run run = { .region = 0, .count = 1, .first = 0 };

	mig_run_encode(&run, p);
	put_hello(MIG_PROTO_VERSION);
	put(MIG_REC_PAGES, p, sizeof(p));
	start_reading(true);
	cr_assert_eq(receive(), -EPROTO);
	cr_assert(strstr(err, "malformed record (type 2, 24 bytes)"), "%s", err);
}

Test(mig_receiver, a_round_end_of_the_wrong_length_is_malformed)
{
	put_hello(MIG_PROTO_VERSION);
	put(MIG_REC_ROUND_END, "12345", 5);
	start_reading(true);
	cr_assert_eq(receive(), -EPROTO);
	cr_assert(strstr(err, "malformed record (type 6"), "%s", err);
}

Test(mig_receiver, an_unknown_record_type_is_named)
{
	put_hello(MIG_PROTO_VERSION);
	put(77, "x", 1);
	start_reading(true);
	cr_assert_eq(receive(), -EPROTO);
	cr_assert(strstr(err, "unexpected record type 77"), "%s", err);
}

Test(mig_receiver, verify_records_without_the_flag_are_malformed)
{
	uint8_t rec_[MIG_RUN_HDR_BYTES + MIG_DIGEST_BYTES] = { 0 };
	struct mig_run run = { .region = 0, .count = 1, .first = 0 };

	/* A well-formed VERIFY of page 0: only the missing HELLO flag makes it wrong. */
	mig_run_encode(&run, rec_);
	put_hello(MIG_PROTO_VERSION);
	put(MIG_REC_VERIFY, rec_, sizeof(rec_));
	start_reading(true);
	cr_assert_eq(receive(), -EPROTO);
	cr_assert(strstr(err, "malformed record (type 11"), "%s", err);
}

Test(mig_receiver, done_without_state_is_refused)
{
	put_hello(MIG_PROTO_VERSION);
	put_pages(0, 1, 0);
	put(MIG_REC_DONE, NULL, 0);
	start_reading(true);
	cr_assert_eq(receive(), -EPROTO);
	cr_assert(strstr(err, "without sending VM state"), "%s", err);
}

/* The stream ends before DONE (the source died): broken, not finished. */
Test(mig_receiver, a_stream_cut_before_done_is_broken)
{
	put_hello(MIG_PROTO_VERSION);
	put_pages(0, 2, 0);
	put_round_end(0);
	start_reading(false);
	cr_assert_lt(receive(), 0);
	cr_assert(strstr(err, "migration stream broke"), "%s", err);
}

/* The valid sequence cut at every 13th byte before DONE's end: never taken as whole. */
Test(mig_receiver, the_valid_sequence_cut_anywhere_fails, .timeout = 120)
{
	size_t len;

	put_valid_sequence();
	start_reading(true);
	len = rx.len;
	stream_close(d.in, false);
	d.in = NULL;
	for (size_t cut = FRAME_STREAM_HEADER_BYTES; cut < len - END_RECORD_BYTES; cut += 13) {
		struct stream *mem;

		free(d.state);
		d.state = NULL;
		cr_assert_eq(mem_stream_reader(&mem, rx.data, cut), 0);
		cr_assert_eq(frame_reader_open(&d.in, mem), 0);
		cr_assert_lt(receive(), 0, "cut at %zu of %zu passed", cut, len);
		stream_close(d.in, false);
		d.in = NULL;
	}
}
