/* Tests for record framing: round trips and one test per corruption class. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "helpers.h"
#include "util/byteorder.h"
#include "util/crc32c.h"
#include "transport/frame.h"
#include "transport/mem_stream.h"

static struct mem_buf img; /* a valid stream: header, 3 records, end */
static uint8_t payload[3][1000];
static const size_t plen[3] = { 1000, 0, 37 };
static const uint16_t ptype[3] = { 1, 0x0102, FRAME_T_USER_MAX };

/* Offsets into img of each record header and of the end record. */
#define REC0 FRAME_STREAM_HEADER_BYTES
#define REC1 (REC0 + FRAME_HEADER_BYTES + 1000)
#define REC2 (REC1 + FRAME_HEADER_BYTES + 0)
#define RECEND (REC2 + FRAME_HEADER_BYTES + 37)
#define IMG_BYTES (RECEND + FRAME_HEADER_BYTES + FRAME_END_PAYLOAD_BYTES)

static void setup(void)
{
	struct stream *mem, *s;

	for (int i = 0; i < 3; i++)
		fill_random(payload[i], sizeof(payload[i]), (uint64_t)i + 100);
	cr_assert_eq(mem_stream_writer(&mem, &img, MEM_STREAM_UNLIMITED), 0);
	cr_assert_eq(frame_writer_open(&s, mem), 0);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(frame_write(s, ptype[i], (uint16_t)(i * 3), payload[i], plen[i]), 0);
	cr_assert_eq(stream_close(s, true), 0);
	cr_assert_eq(img.len, IMG_BYTES);
}

static void teardown(void)
{
	free(img.data);
}

TestSuite(frame, .init = setup, .fini = teardown);

/* Open a reader over buf; returns the open result, *s set on success. */
static int open_reader(struct stream **s, const uint8_t *buf, size_t len)
{
	struct stream *mem;
	int rc;

	cr_assert_eq(mem_stream_reader(&mem, buf, len), 0);
	rc = frame_reader_open(s, mem);
	if (rc < 0)
		stream_close(mem, false);
	return rc;
}

/* Read every record; returns the code that ended the loop (-ENODATA when clean). */
static int drain(const uint8_t *buf, size_t len, int *records)
{
	uint8_t rec[2000];
	struct stream *s;
	uint16_t type;
	size_t n;
	int rc;

	*records = 0;
	rc = open_reader(&s, buf, len);
	if (rc < 0)
		return rc;
	while ((rc = frame_read(s, &type, NULL, rec, sizeof(rec), &n)) == 0)
		(*records)++;
	stream_close(s, false);
	return rc;
}

/* Recompute a record's CRC after a test edits its header or payload. */
static void reseal(uint8_t *rec)
{
	uint32_t len = le32_decode(rec + 8);

	le32_encode(rec + 12, crc32c(crc32c(0, rec, 12), rec + FRAME_HEADER_BYTES, len));
}

Test(frame, round_trips_records_with_types_flags_and_empty_payloads)
{
	uint8_t rec[2000];
	uint16_t type, flags;
	struct stream *s;
	size_t n;

	cr_assert_eq(open_reader(&s, img.data, img.len), 0);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(frame_read(s, &type, &flags, rec, sizeof(rec), &n), 0);
		cr_assert_eq(type, ptype[i]);
		cr_assert_eq(flags, i * 3);
		cr_assert_eq(n, plen[i]);
		cr_assert_eq(memcmp(rec, payload[i], n), 0);
	}
	cr_assert_eq(frame_read(s, &type, &flags, rec, sizeof(rec), &n), -ENODATA);
	cr_assert_eq(frame_read(s, &type, &flags, rec, sizeof(rec), &n), -ENODATA);
	cr_assert_eq(s->bytes_read, 1037);
	cr_assert_eq(stream_close(s, false), 0);
}

Test(frame, round_trips_a_maximum_size_record_and_gathered_writes)
{
	uint8_t *big = xmalloc(FRAME_MAX_PAYLOAD), *back = NULL;
	struct iovec iov[3] = { { big, 10 }, { big + 10, 0 }, { big + 10, FRAME_MAX_PAYLOAD - 10 } };
	struct stream *mem, *s;
	struct mem_buf out;
	uint16_t type;
	size_t n;

	fill_random(big, FRAME_MAX_PAYLOAD, 1);
	cr_assert_eq(mem_stream_writer(&mem, &out, MEM_STREAM_UNLIMITED), 0);
	cr_assert_eq(frame_writer_open(&s, mem), 0);
	cr_assert_eq(frame_writev(s, 9, 0, iov, 3), 0);
	cr_assert_eq(frame_write(s, 9, 0, big, FRAME_MAX_PAYLOAD + 1), -EMSGSIZE);
	cr_assert_eq(stream_error(s), 0, "a refused oversized write is not sticky");
	cr_assert_eq(s->bytes_written, FRAME_MAX_PAYLOAD);
	cr_assert_eq(stream_close(s, true), 0);
	cr_assert_eq(open_reader(&s, out.data, out.len), 0);
	cr_assert_eq(frame_read_alloc(s, &type, NULL, (void **)&back, &n), 0);
	cr_assert_eq(n, FRAME_MAX_PAYLOAD);
	cr_assert_eq(memcmp(back, big, n), 0);
	cr_assert_eq(frame_read_alloc(s, &type, NULL, (void **)&back, &n), -ENODATA);
	cr_assert_eq(stream_close(s, false), 0);
	free(back);
	free(big);
	free(out.data);
}

Test(frame, writer_refuses_invalid_and_reserved_types_without_sticking)
{
	struct stream *mem, *s;
	struct mem_buf out;

	cr_assert_eq(mem_stream_writer(&mem, &out, MEM_STREAM_UNLIMITED), 0);
	cr_assert_eq(frame_writer_open(&s, mem), 0);
	cr_assert_eq(frame_write(s, FRAME_T_INVALID, 0, "x", 1), -EINVAL);
	cr_assert_eq(frame_write(s, FRAME_T_END, 0, "x", 1), -EINVAL);
	cr_assert_eq(frame_write(s, 0xff00, 0, "x", 1), -EINVAL);
	cr_assert_eq(frame_write(s, 1, 0, "x", 1), 0);
	cr_assert_eq(stream_write_all(s, "raw", 3), -EOPNOTSUPP, "bytes are not records");
	cr_assert_eq(stream_close(s, true), -EOPNOTSUPP);
	free(out.data);
}

Test(frame, small_buffer_gets_enobufs_and_the_record_stays_pending)
{
	uint8_t rec[1000];
	struct stream *s;
	uint16_t type;
	size_t n = 0;

	cr_assert_eq(open_reader(&s, img.data, img.len), 0);
	cr_assert_eq(frame_read(s, &type, NULL, rec, 10, &n), -ENOBUFS);
	cr_assert_eq(n, 1000);
	cr_assert_eq(stream_error(s), 0);
	cr_assert_eq(frame_read(s, &type, NULL, rec, sizeof(rec), &n), 0);
	cr_assert_eq(memcmp(rec, payload[0], 1000), 0);
	cr_assert_eq(stream_close(s, false), 0);
}

Test(frame, unknown_caller_type_is_surfaced_to_the_caller)
{
	uint8_t rec[2000];
	struct stream *s;
	uint16_t type;
	size_t n;

	/* The stream layer does not judge caller types: 0x0102 and 0xfeff come back as is. */
	cr_assert_eq(open_reader(&s, img.data, img.len), 0);
	cr_assert_eq(frame_read(s, &type, NULL, rec, sizeof(rec), &n), 0);
	cr_assert_eq(frame_read(s, &type, NULL, rec, sizeof(rec), &n), 0);
	cr_assert_eq(type, 0x0102);
	cr_assert_eq(frame_read(s, &type, NULL, rec, sizeof(rec), &n), 0);
	cr_assert_eq(type, FRAME_T_USER_MAX);
	cr_assert_eq(stream_close(s, false), 0);
}

Test(frame, rejects_bad_stream_magic)
{
	int records;

	img.data[0] ^= 0x20;
	cr_assert_eq(drain(img.data, img.len, &records), -ENOMSG);
}

Test(frame, rejects_other_versions_and_unknown_header_flags)
{
	int records;

	le16_encode(img.data + 4, FRAME_FORMAT_VERSION + 1);
	cr_assert_eq(drain(img.data, img.len, &records), -EPROTONOSUPPORT);
	le16_encode(img.data + 4, FRAME_FORMAT_VERSION);
	le16_encode(img.data + 6, 1);
	cr_assert_eq(drain(img.data, img.len, &records), -EPROTONOSUPPORT);
}

Test(frame, rejects_a_lost_sync_word)
{
	int records;

	img.data[REC1] ^= 1;
	cr_assert_eq(drain(img.data, img.len, &records), -ENOMSG);
	cr_assert_eq(records, 1);
}

Test(frame, rejects_bad_checksums_in_payload_header_and_crc_fields)
{
	size_t where[] = { REC0 + FRAME_HEADER_BYTES + 500, REC0 + 6, REC0 + 12, REC2 + 5 };
	int records;

	for (size_t i = 0; i < sizeof(where) / sizeof(where[0]); i++) {
		img.data[where[i]] ^= 0x10;
		cr_assert_eq(drain(img.data, img.len, &records), -EBADMSG, "flip at %zu", where[i]);
		img.data[where[i]] ^= 0x10;
	}
	cr_assert_eq(drain(img.data, img.len, &records), -ENODATA);
	cr_assert_eq(records, 3);
}

Test(frame, rejects_type_zero_and_reserved_types)
{
	int records;

	le16_encode(img.data + REC1 + 4, FRAME_T_INVALID);
	reseal(img.data + REC1);
	cr_assert_eq(drain(img.data, img.len, &records), -EBADMSG);
	cr_assert_eq(records, 1);
	le16_encode(img.data + REC1 + 4, 0xff00);
	reseal(img.data + REC1);
	cr_assert_eq(drain(img.data, img.len, &records), -EBADMSG);
}

Test(frame, rejects_oversized_length_before_reading_it)
{
	int records;

	le32_encode(img.data + REC2 + 8, FRAME_MAX_PAYLOAD + 1);
	cr_assert_eq(drain(img.data, img.len, &records), -EMSGSIZE);
	cr_assert_eq(records, 2);
	le32_encode(img.data + REC2 + 8, UINT32_MAX);
	cr_assert_eq(drain(img.data, img.len, &records), -EMSGSIZE);
}

Test(frame, truncation_at_every_offset_is_eproto_never_a_clean_end)
{
	int records;

	/* Every boundary is covered: inside the stream header, each record header, each
	 * payload, the end record, and exactly between records. */
	for (size_t cut = 0; cut < img.len; cut++)
		cr_assert_eq(drain(img.data, cut, &records), -EPROTO, "cut at %zu", cut);
	cr_assert_eq(drain(img.data, img.len, &records), -ENODATA);
}

Test(frame, bytes_after_the_end_record_are_rejected)
{
	uint8_t *longer = xmalloc(img.len + 1);
	int records;

	memcpy(longer, img.data, img.len);
	longer[img.len] = 0;
	cr_assert_eq(drain(longer, img.len + 1, &records), -EBADMSG);
	cr_assert_eq(records, 3);
	free(longer);
}

Test(frame, a_dropped_record_is_caught_by_the_end_totals)
{
	uint8_t *cut = xmalloc(img.len);
	size_t n = 0;
	int records;

	memcpy(cut, img.data, REC2);
	n = REC2;
	memcpy(cut + n, img.data + RECEND, img.len - RECEND);
	n += img.len - RECEND;
	cr_assert_eq(drain(cut, n, &records), -EBADMSG);
	cr_assert_eq(records, 2);
	free(cut);
}

Test(frame, errors_are_sticky_for_later_reads)
{
	uint8_t rec[2000];
	struct stream *s;
	uint16_t type;
	size_t n;

	img.data[REC0 + FRAME_HEADER_BYTES] ^= 1;
	cr_assert_eq(open_reader(&s, img.data, img.len), 0);
	cr_assert_eq(frame_read(s, &type, NULL, rec, sizeof(rec), &n), -EBADMSG);
	cr_assert_eq(frame_read(s, &type, NULL, rec, sizeof(rec), &n), -EBADMSG);
	cr_assert_eq(stream_close(s, false), -EBADMSG);
}

Test(frame, reader_and_writer_calls_on_the_wrong_stream_are_einval)
{
	struct stream *s, *mem;
	struct mem_buf out;
	uint8_t rec[8];
	uint16_t type;
	size_t n;

	cr_assert_eq(open_reader(&s, img.data, img.len), 0);
	cr_assert_eq(frame_write(s, 1, 0, "x", 1), -EINVAL);
	cr_assert_eq(stream_close(s, false), 0);
	cr_assert_eq(mem_stream_writer(&mem, &out, MEM_STREAM_UNLIMITED), 0);
	cr_assert_eq(frame_writer_open(&s, mem), 0);
	cr_assert_eq(frame_read(s, &type, NULL, rec, sizeof(rec), &n), -EINVAL);
	cr_assert_eq(stream_close(s, false), 0);
}

/* img rewritten as a FRAME_F_NO_CRC stream of the same records. */
static void make_no_crc_image(void)
{
	struct stream *mem, *s;

	free(img.data);
	memset(&img, 0, sizeof(img));
	cr_assert_eq(mem_stream_writer(&mem, &img, MEM_STREAM_UNLIMITED), 0);
	cr_assert_eq(frame_writer_open_flags(&s, mem, FRAME_F_NO_CRC), 0);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(frame_write(s, ptype[i], 0, payload[i], plen[i]), 0);
	cr_assert_eq(stream_close(s, true), 0);
}

Test(frame, no_crc_streams_carry_zero_checksums_and_need_the_readers_consent)
{
	struct mem_buf unused; /* not img: that would drop the image teardown frees */
	uint8_t rec[2000];
	struct stream *mem, *s;
	uint16_t type;
	size_t n;
	int records;

	make_no_crc_image();
	cr_assert_eq(img.len, IMG_BYTES);
	cr_assert_eq(le16_decode(img.data + 6), FRAME_F_NO_CRC);
	cr_assert_eq(le32_decode(img.data + REC0 + 12), 0);
	cr_assert_eq(drain(img.data, img.len, &records), -EPROTONOSUPPORT, "not allowed");
	cr_assert_eq(mem_stream_reader(&mem, img.data, img.len), 0);
	cr_assert_eq(frame_reader_open_flags(&s, mem, FRAME_F_NO_CRC), 0);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(frame_read(s, &type, NULL, rec, sizeof(rec), &n), 0);
		cr_assert_eq(n, plen[i]);
		cr_assert_eq(memcmp(rec, payload[i], n), 0);
	}
	cr_assert_eq(frame_read(s, &type, NULL, rec, sizeof(rec), &n), -ENODATA);
	stream_close(s, false);
	/* A non-zero checksum field in such a stream is damage, not a value to ignore. */
	le32_encode(img.data + REC1 + 12, 1);
	cr_assert_eq(mem_stream_reader(&mem, img.data, img.len), 0);
	cr_assert_eq(frame_reader_open_flags(&s, mem, FRAME_F_NO_CRC), 0);
	cr_assert_eq(frame_read(s, &type, NULL, rec, sizeof(rec), &n), 0);
	cr_assert_eq(frame_read(s, &type, NULL, rec, sizeof(rec), &n), -EBADMSG);
	stream_close(s, false);
	cr_assert_eq(mem_stream_writer(&mem, &unused, MEM_STREAM_UNLIMITED), 0);
	cr_assert_eq(frame_writer_open_flags(&s, mem, 2), -EINVAL);
	stream_close(mem, false);
}

Test(frame, payload_read_in_parts_is_checked_when_the_last_part_arrives)
{
	uint8_t rec[2000];
	struct stream *s;
	uint16_t type, flags;
	size_t n;

	cr_assert_eq(open_reader(&s, img.data, img.len), 0);
	cr_assert_eq(frame_read_header(s, &type, &flags, &n), 0);
	cr_assert_eq(type, ptype[0]);
	cr_assert_eq(n, 1000);
	cr_assert_eq(frame_read(s, &type, &flags, rec, sizeof(rec), &n), -EINVAL, "mid-record");
	cr_assert_eq(frame_read_header(s, &type, &flags, &n), -EINVAL);
	cr_assert_eq(frame_read_part(s, rec, 16), 0);
	cr_assert_eq(frame_read_part(s, rec + 16, 985), -EINVAL, "past the payload");
	cr_assert_eq(frame_read_part(s, rec + 16, 984), 0);
	cr_assert_eq(memcmp(rec, payload[0], 1000), 0);
	cr_assert_eq(frame_read_header(s, &type, &flags, &n), 0, "the empty record");
	cr_assert_eq(n, 0);
	cr_assert_eq(frame_read_part(s, rec, 0), 0, "an empty payload is read at once");
	cr_assert_eq(frame_read(s, &type, &flags, rec, sizeof(rec), &n), 0);
	cr_assert_eq(n, 37);
	cr_assert_eq(frame_read(s, &type, &flags, rec, sizeof(rec), &n), -ENODATA);
	stream_close(s, false);

	img.data[REC0 + FRAME_HEADER_BYTES + 900] ^= 4;
	cr_assert_eq(open_reader(&s, img.data, img.len), 0);
	cr_assert_eq(frame_read_header(s, &type, &flags, &n), 0);
	cr_assert_eq(frame_read_part(s, rec, 500), 0, "unchecked until the end");
	cr_assert_eq(frame_read_part(s, rec + 500, 500), -EBADMSG);
	cr_assert_eq(frame_read(s, &type, &flags, rec, sizeof(rec), &n), -EBADMSG, "sticky");
	stream_close(s, false);
}
