/* Tests for the AES-256-GCM layer: round trips and every tampering and truncation class. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "helpers.h"
#include "transport/aead_stream.h"
#include "util/byteorder.h"
#include "transport/kdf.h"
#include "transport/mem_stream.h"

static uint8_t key[AEAD_KEY_BYTES], other_key[AEAD_KEY_BYTES];
static struct mem_buf img;
static uint8_t *plain;
#define PLAIN_BYTES (3 * AEAD_CHUNK_BYTES + 1234) /* 3 full chunks and a partial FINAL one */
#define CHUNK_WIRE (AEAD_CHUNK_WORD_BYTES + AEAD_CHUNK_BYTES + AEAD_TAG_BYTES)
#define CHUNK_AT(i) (AEAD_HEADER_BYTES + (size_t)(i) * CHUNK_WIRE)

static void seal_into(struct mem_buf *dst, const uint8_t *k, const uint8_t *data, size_t len)
{
	struct stream *mem, *s;

	cr_assert_eq(mem_stream_writer(&mem, dst, MEM_STREAM_UNLIMITED), 0);
	cr_assert_eq(aead_writer_open(&s, mem, k), 0);
	cr_assert_eq(stream_write_all(s, data, len / 2), 0);
	cr_assert_eq(stream_write_all(s, data + len / 2, len - len / 2), 0);
	cr_assert_eq(stream_close(s, true), 0);
}

static void setup(void)
{
	fill_random(key, sizeof(key), 1);
	fill_random(other_key, sizeof(other_key), 2);
	plain = xmalloc(PLAIN_BYTES);
	fill_random(plain, PLAIN_BYTES, 3);
	seal_into(&img, key, plain, PLAIN_BYTES);
	cr_assert_eq(img.len, CHUNK_AT(3) + AEAD_CHUNK_WORD_BYTES + 1234 + AEAD_TAG_BYTES);
}

static void teardown(void)
{
	free(img.data);
	free(plain);
}

TestSuite(aead_stream, .init = setup, .fini = teardown);

/* Open and read everything; the code that ended it (-ENODATA when clean), bytes in *got. */
static int drain(const uint8_t *buf, size_t len, const uint8_t *k, uint8_t *dst, size_t *got)
{
	struct stream *mem, *s;
	int rc;

	*got = 0;
	cr_assert_eq(mem_stream_reader(&mem, buf, len), 0);
	rc = aead_reader_open(&s, mem, k);
	if (rc < 0) {
		stream_close(mem, false);
		return rc;
	}
	for (;;) {
		size_t step = 1000;

		rc = stream_read_all(s, dst + *got, step);
		if (rc < 0)
			break;
		*got += step;
		if (*got + step > PLAIN_BYTES + 1000) {
			rc = -E2BIG;
			break;
		}
	}
	stream_close(s, false);
	return rc;
}

Test(aead_stream, round_trips_across_chunk_boundaries_in_odd_reads)
{
	uint8_t *back = xmalloc(PLAIN_BYTES);
	struct stream *mem, *s;
	size_t off = 0, step = 1;

	cr_assert_eq(mem_stream_reader(&mem, img.data, img.len), 0);
	cr_assert_eq(aead_reader_open(&s, mem, key), 0);
	while (off < PLAIN_BYTES) {
		size_t n = PLAIN_BYTES - off < step ? PLAIN_BYTES - off : step;

		cr_assert_eq(stream_read_all(s, back + off, n), 0, "at %zu", off);
		off += n;
		step = step * 3 + 7;
	}
	cr_assert_eq(memcmp(back, plain, PLAIN_BYTES), 0);
	cr_assert_eq(stream_read_all(s, back, 1), -ENODATA);
	cr_assert_eq(stream_close(s, false), 0);
	free(back);
}

Test(aead_stream, round_trips_empty_and_exact_chunk_multiples)
{
	static const size_t sizes[] = { 0, 1, AEAD_CHUNK_BYTES - 1, AEAD_CHUNK_BYTES,
					AEAD_CHUNK_BYTES + 1, 2 * AEAD_CHUNK_BYTES };
	uint8_t *back = xmalloc(PLAIN_BYTES);

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct stream *mem, *s;
		struct mem_buf m;

		seal_into(&m, key, plain, sizes[i]);
		cr_assert_eq(mem_stream_reader(&mem, m.data, m.len), 0);
		cr_assert_eq(aead_reader_open(&s, mem, key), 0);
		cr_assert_eq(stream_read_all(s, back, sizes[i]), 0);
		cr_assert_eq(memcmp(back, plain, sizes[i]), 0);
		cr_assert_eq(stream_read_all(s, back, 1), -ENODATA, "size %zu", sizes[i]);
		cr_assert_eq(stream_close(s, false), 0);
		free(m.data);
	}
	free(back);
}

Test(aead_stream, same_plaintext_and_key_never_give_the_same_ciphertext)
{
	struct mem_buf again;

	seal_into(&again, key, plain, PLAIN_BYTES);
	cr_assert_eq(again.len, img.len);
	cr_assert_neq(memcmp(again.data + 12, img.data + 12, AEAD_SALT_BYTES), 0);
	cr_assert_neq(memcmp(again.data + CHUNK_AT(0), img.data + CHUNK_AT(0), 64), 0);
	free(again.data);
}

Test(aead_stream, wrong_key_is_ekeyrejected_before_any_chunk)
{
	uint8_t *back = xmalloc(PLAIN_BYTES + 1000);
	size_t got;

	cr_assert_eq(drain(img.data, img.len, other_key, back, &got), -EKEYREJECTED);
	cr_assert_eq(got, 0);
	free(back);
}

Test(aead_stream, rejects_bad_magic_version_cipher_and_chunk_size)
{
	uint8_t *back = xmalloc(PLAIN_BYTES + 1000);
	size_t got;

	img.data[1] ^= 1;
	cr_assert_eq(drain(img.data, img.len, key, back, &got), -ENOMSG);
	img.data[1] ^= 1;
	le16_encode(img.data + 4, AEAD_FORMAT_VERSION + 1);
	cr_assert_eq(drain(img.data, img.len, key, back, &got), -EPROTONOSUPPORT);
	le16_encode(img.data + 4, AEAD_FORMAT_VERSION);
	le16_encode(img.data + 6, 2);
	cr_assert_eq(drain(img.data, img.len, key, back, &got), -EPROTONOSUPPORT);
	le16_encode(img.data + 6, AEAD_CIPHER_AES_256_GCM);
	le32_encode(img.data + 8, 0);
	cr_assert_eq(drain(img.data, img.len, key, back, &got), -EMSGSIZE);
	le32_encode(img.data + 8, AEAD_MAX_CHUNK + 1);
	cr_assert_eq(drain(img.data, img.len, key, back, &got), -EMSGSIZE);
	free(back);
}

Test(aead_stream, rejects_a_chunk_longer_than_the_header_allows)
{
	uint8_t *back = xmalloc(PLAIN_BYTES + 1000);
	size_t got;

	le32_encode(img.data + CHUNK_AT(1), AEAD_CHUNK_BYTES + 1);
	cr_assert_eq(drain(img.data, img.len, key, back, &got), -EMSGSIZE);
	cr_assert_eq(got, AEAD_CHUNK_BYTES / 1000 * 1000, "chunk 0 was still fine");
	le32_encode(img.data + CHUNK_AT(1), AEAD_CHUNK_FINAL | 0x7fffffffu);
	cr_assert_eq(drain(img.data, img.len, key, back, &got), -EMSGSIZE);
	le32_encode(img.data + CHUNK_AT(1), 0);
	cr_assert_eq(drain(img.data, img.len, key, back, &got), -EBADMSG, "zero word is invalid");
	free(back);
}

Test(aead_stream, header_edits_fail_authentication)
{
	uint8_t *back = xmalloc(PLAIN_BYTES + 1000);
	size_t got;

	/* A larger chunk size still parses, but the header is in every chunk's AAD. */
	le32_encode(img.data + 8, AEAD_CHUNK_BYTES + 1);
	cr_assert_eq(drain(img.data, img.len, key, back, &got), -EBADMSG);
	cr_assert_eq(got, 0);
	le32_encode(img.data + 8, AEAD_CHUNK_BYTES);
	/* The salt feeds the key check: an edited salt reads as the wrong key. */
	img.data[20] ^= 1;
	cr_assert_eq(drain(img.data, img.len, key, back, &got), -EKEYREJECTED);
	img.data[20] ^= 1;
	img.data[AEAD_HEADER_BYTES - 1] ^= 1;
	cr_assert_eq(drain(img.data, img.len, key, back, &got), -EKEYREJECTED);
	free(back);
}

Test(aead_stream, bit_flips_in_ciphertext_tag_and_word_fail_the_tag)
{
	size_t where[] = { CHUNK_AT(1) + 4 + 100, CHUNK_AT(1) + CHUNK_WIRE - 1, CHUNK_AT(3) + 4 };
	uint8_t *back = xmalloc(PLAIN_BYTES + 1000);
	size_t got;

	for (size_t i = 0; i < sizeof(where) / sizeof(where[0]); i++) {
		img.data[where[i]] ^= 0x80;
		cr_assert_eq(drain(img.data, img.len, key, back, &got), -EBADMSG, "flip at %zu", where[i]);
		img.data[where[i]] ^= 0x80;
	}
	/* Flip FINAL onto chunk 0: the word is in the AAD. */
	img.data[CHUNK_AT(0) + 3] ^= 0x80;
	cr_assert_eq(drain(img.data, img.len, key, back, &got), -EBADMSG);
	img.data[CHUNK_AT(0) + 3] ^= 0x80;
	/* Shorten the FINAL chunk's length: the tag no longer lines up. */
	le32_encode(img.data + CHUNK_AT(3), AEAD_CHUNK_FINAL | 1000);
	cr_assert_eq(drain(img.data, img.len, key, back, &got), -EBADMSG);
	free(back);
}

Test(aead_stream, never_returns_bytes_from_a_chunk_that_fails_its_tag)
{
	uint8_t *back = xmalloc(PLAIN_BYTES);
	struct stream *mem, *s;

	memset(back, 0xaa, PLAIN_BYTES);
	img.data[CHUNK_AT(1) + 4 + 5] ^= 1;
	cr_assert_eq(mem_stream_reader(&mem, img.data, img.len), 0);
	cr_assert_eq(aead_reader_open(&s, mem, key), 0);
	cr_assert_eq(stream_read_all(s, back, AEAD_CHUNK_BYTES - 10), 0);
	cr_assert_eq(stream_read_all(s, back + AEAD_CHUNK_BYTES - 10, 100), -EBADMSG);
	/* The 10 verified bytes of chunk 0 may be there; nothing from chunk 1 is. */
	for (size_t i = AEAD_CHUNK_BYTES; i < PLAIN_BYTES; i++)
		cr_assert_eq(back[i], 0xaa, "byte %zu leaked", i);
	cr_assert_eq(stream_close(s, false), -EBADMSG);
	free(back);
}

Test(aead_stream, reordered_duplicated_or_dropped_chunks_fail)
{
	uint8_t *copy = xmalloc(img.len + CHUNK_WIRE), *back = xmalloc(PLAIN_BYTES + 1000);
	size_t got;

	/* Swap chunks 0 and 1. */
	memcpy(copy, img.data, img.len);
	memcpy(copy + CHUNK_AT(0), img.data + CHUNK_AT(1), CHUNK_WIRE);
	memcpy(copy + CHUNK_AT(1), img.data + CHUNK_AT(0), CHUNK_WIRE);
	cr_assert_eq(drain(copy, img.len, key, back, &got), -EBADMSG);
	cr_assert_eq(got, 0);
	/* Drop chunk 1. */
	memcpy(copy, img.data, CHUNK_AT(1));
	memcpy(copy + CHUNK_AT(1), img.data + CHUNK_AT(2), img.len - CHUNK_AT(2));
	cr_assert_eq(drain(copy, img.len - CHUNK_WIRE, key, back, &got), -EBADMSG);
	/* Repeat chunk 0. */
	memcpy(copy, img.data, CHUNK_AT(1));
	memcpy(copy + CHUNK_AT(1), img.data + CHUNK_AT(0), CHUNK_WIRE);
	memcpy(copy + CHUNK_AT(2), img.data + CHUNK_AT(1), img.len - CHUNK_AT(1));
	cr_assert_eq(drain(copy, img.len + CHUNK_WIRE, key, back, &got), -EBADMSG);
	free(copy);
	free(back);
}

Test(aead_stream, truncation_at_each_chunk_boundary_and_inside_is_eproto)
{
	uint8_t *back = xmalloc(PLAIN_BYTES + 1000);
	size_t cuts[] = { 0, 10, AEAD_HEADER_BYTES - 1, AEAD_HEADER_BYTES, AEAD_HEADER_BYTES + 2,
			  CHUNK_AT(1), CHUNK_AT(2), CHUNK_AT(3), CHUNK_AT(1) + 500,
			  CHUNK_AT(2) - 1, CHUNK_AT(3) + 4, img.len - 1 };
	size_t got;

	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++)
		cr_assert_eq(drain(img.data, cuts[i], key, back, &got), -EPROTO, "cut at %zu", cuts[i]);
	free(back);
}

Test(aead_stream, bytes_after_the_final_chunk_are_rejected)
{
	uint8_t *longer = xmalloc(img.len + 1), *back = xmalloc(PLAIN_BYTES);
	struct stream *mem, *s;

	memcpy(longer, img.data, img.len);
	longer[img.len] = 0;
	cr_assert_eq(mem_stream_reader(&mem, longer, img.len + 1), 0);
	cr_assert_eq(aead_reader_open(&s, mem, key), 0);
	cr_assert_eq(stream_read_all(s, back, 3 * AEAD_CHUNK_BYTES), 0);
	cr_assert_eq(stream_read_all(s, back, 1), -EBADMSG);
	cr_assert_eq(stream_close(s, false), -EBADMSG);
	free(longer);
	free(back);
}

Test(aead_stream, flush_seals_a_partial_chunk_that_decrypts_before_close)
{
	uint8_t back[5000];
	struct stream *mem, *s, *rm, *r;
	struct mem_buf m;
	const uint8_t *p;
	size_t n;

	cr_assert_eq(mem_stream_writer(&mem, &m, MEM_STREAM_UNLIMITED), 0);
	cr_assert_eq(aead_writer_open(&s, mem, key), 0);
	cr_assert_eq(stream_write_all(s, plain, 5000), 0);
	cr_assert_eq(stream_flush(s), 0);
	p = mem_stream_peek(mem, &n);
	cr_assert_eq(mem_stream_reader(&rm, p, n), 0);
	cr_assert_eq(aead_reader_open(&r, rm, key), 0);
	cr_assert_eq(stream_read_all(r, back, 5000), 0);
	cr_assert_eq(memcmp(back, plain, 5000), 0);
	cr_assert_eq(stream_read_all(r, back, 1), -EPROTO, "not final yet");
	stream_close(r, false);
	cr_assert_eq(stream_close(s, true), 0);
	free(m.data);
}

Test(aead_stream, seal_and_open_round_trip_small_objects)
{
	void *sealed, *opened;
	size_t slen, olen;

	cr_assert_eq(aead_seal(&sealed, &slen, key, "manifest", 8), 0);
	cr_assert_eq(slen, AEAD_HEADER_BYTES + AEAD_CHUNK_WORD_BYTES + 8 + AEAD_TAG_BYTES);
	cr_assert_eq(aead_open(&opened, &olen, key, sealed, slen), 0);
	cr_assert_eq(olen, 8);
	cr_assert_eq(memcmp(opened, "manifest", 8), 0);
	free(opened);
	cr_assert_eq(aead_open(&opened, &olen, other_key, sealed, slen), -EKEYREJECTED);
	((uint8_t *)sealed)[slen - 1] ^= 1;
	cr_assert_eq(aead_open(&opened, &olen, key, sealed, slen), -EBADMSG);
	cr_assert_eq(aead_open(&opened, &olen, key, sealed, slen - 1), -EPROTO);
	free(sealed);
	cr_assert_eq(aead_seal(&sealed, &slen, key, NULL, 0), 0);
	cr_assert_eq(aead_open(&opened, &olen, key, sealed, slen), 0);
	cr_assert_eq(olen, 0);
	cr_assert_not_null(opened);
	free(opened);
	free(sealed);
	cr_assert_eq(aead_open(&opened, &olen, key, img.data, img.len), 0);
	cr_assert_eq(olen, PLAIN_BYTES);
	cr_assert_eq(memcmp(opened, plain, PLAIN_BYTES), 0);
	free(opened);
}

static void unhex(uint8_t *out, const char *hex)
{
	for (size_t i = 0; hex[2 * i]; i++)
		sscanf(hex + 2 * i, "%2hhx", &out[i]);
}

Test(aead_stream, hkdf_matches_rfc5869_and_labels_separate_keys)
{
	uint8_t ikm[22], salt[13], info[10], okm[42], want[42], a[32], b[32];

	memset(ikm, 0x0b, sizeof(ikm));
	for (int i = 0; i < 13; i++)
		salt[i] = (uint8_t)i;
	for (int i = 0; i < 10; i++)
		info[i] = (uint8_t)(0xf0 + i);
	cr_assert_eq(kdf_hkdf_sha256(okm, 42, ikm, 22, salt, 13, info, 10), 0);
	unhex(want, "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
		    "34007208d5b887185865");
	cr_assert_eq(memcmp(okm, want, 42), 0, "RFC 5869 A.1");
	cr_assert_eq(aead_derive_key(a, ikm, 22, ""), 0);
	unhex(want, "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d");
	cr_assert_eq(memcmp(a, want, 32), 0, "RFC 5869 A.3 (no salt, no info)");
	cr_assert_eq(aead_derive_key(a, key, sizeof(key), "backup"), 0);
	cr_assert_eq(aead_derive_key(b, key, sizeof(key), "backup"), 0);
	cr_assert_eq(memcmp(a, b, 32), 0);
	cr_assert_eq(aead_derive_key(b, key, sizeof(key), "migrate"), 0);
	cr_assert_neq(memcmp(a, b, 32), 0);
	cr_assert_eq(aead_derive_key(a, key, 0, "x"), -EINVAL);
}
