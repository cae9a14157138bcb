/* Tests for packs: builder round trip, record checks, and one test per corruption class. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "repo/pack.h"
#include "util/byteorder.h"

#define NBLOBS 5

static struct pack_builder pb;
static struct blob_id pack_id;
static struct blob_id ids[NBLOBS];
static uint8_t payloads[NBLOBS][3000];
static uint32_t lens[NBLOBS] = { 3000, 1, 0, 1234, 2999 };

static void setup(void)
{
	pack_builder_init(&pb);
	cr_assert_eq(pack_builder_begin(&pb, NULL), 0);
	for (int i = 0; i < NBLOBS; i++) {
		uint8_t *dst;

		fill_random(payloads[i], sizeof(payloads[i]), 100 + i);
		sha256_buf(payloads[i], lens[i], ids[i].b);
		cr_assert_eq(pack_builder_reserve(&pb, lens[i], &dst), 0);
		memcpy(dst, payloads[i], lens[i]);
		cr_assert_eq(pack_builder_commit(&pb, &ids[i], BLOB_T_DATA + i % 4, 0, lens[i], lens[i],
						 NULL), 0);
	}
	cr_assert_eq(pack_builder_finish(&pb, &pack_id), 0);
}

static void teardown(void)
{
	pack_builder_free(&pb);
}

TestSuite(pack, .init = setup, .fini = teardown);

static void reset(void)
{
	teardown();
	setup();
}

static void reseal(uint8_t *buf, size_t len)
{
	sha256_buf(buf, len - 32, buf + len - 32);
}

static int decode(const uint8_t *buf, size_t len)
{
	struct pack_entry *es = NULL;
	const char *why = NULL;
	uint32_t n = 0;
	int rc = pack_decode(buf, len, NULL, &es, &n, &why);

	if (rc < 0)
		cr_assert_not_null(why);
	free(es);
	return rc;
}

/* The offset of the trailer and of entry i in the built pack. */
static size_t trailer_off(void)
{
	return pb.len - PACK_TAIL_BYTES - (PACK_TRAILER_HEAD_BYTES + NBLOBS * PACK_ENTRY_BYTES);
}

static size_t entry_off(int i)
{
	return trailer_off() + PACK_TRAILER_HEAD_BYTES + (size_t)i * PACK_ENTRY_BYTES;
}

Test(pack, round_trips_entries_and_payloads)
{
	struct pack_entry *es;
	uint32_t n;
	uint8_t sum[32];

	cr_assert_eq(pack_decode(pb.buf, pb.len, NULL, &es, &n, NULL), 0);
	cr_assert_eq(n, NBLOBS);
	for (int i = 0; i < NBLOBS; i++) {
		const uint8_t *payload;

		cr_assert(blob_id_eq(&es[i].id, &ids[i]));
		cr_assert_eq(es[i].raw_bytes, lens[i]);
		cr_assert_eq(es[i].type, BLOB_T_DATA + i % 4);
		cr_assert_eq(pack_record_check(pb.buf + es[i].offset,
					       PACK_RECORD_HEADER_BYTES + es[i].stored_bytes, &es[i],
					       &payload, NULL), 0);
		cr_assert_eq(memcmp(payload, payloads[i], lens[i]), 0);
	}
	sha256_buf(pb.buf, pb.len, sum);
	cr_assert_eq(memcmp(sum, pack_id.b, 32), 0, "the pack id is the hash of the file");
	free(es);
}

Test(pack, name_is_fanned_out_by_the_first_byte)
{
	char name[PACK_NAME_BYTES], hex[BLOB_ID_HEX_BYTES];

	pack_name(&pack_id, name);
	blob_id_hex(&pack_id, hex);
	cr_assert_eq(strncmp(name, "data/", 5), 0);
	cr_assert_eq(strncmp(name + 5, hex, 2), 0);
	cr_assert_str_eq(name + 8, hex);
}

Test(pack, builder_can_be_reused)
{
	struct blob_id id2;
	uint8_t *dst;

	cr_assert_eq(pack_builder_begin(&pb, NULL), 0);
	cr_assert_eq(pack_builder_reserve(&pb, 10, &dst), 0);
	memcpy(dst, "0123456789", 10);
	cr_assert_eq(pack_builder_commit(&pb, &ids[0], BLOB_T_META, 0, 10, 10, NULL), 0);
	cr_assert_eq(pack_builder_finish(&pb, &id2), 0);
	cr_assert_eq(decode(pb.buf, pb.len), 0);
	cr_assert_not(blob_id_eq(&id2, &pack_id));
}

Test(pack, empty_pack_is_refused)
{
	struct blob_id id2;

	cr_assert_eq(pack_builder_begin(&pb, NULL), 0);
	cr_assert_eq(pack_builder_finish(&pb, &id2), -EINVAL);
}

Test(pack, rejects_bad_magic)
{
	pb.buf[1] ^= 1;
	cr_assert_eq(decode(pb.buf, pb.len), -ENOMSG);
}

Test(pack, rejects_bad_version_and_flags)
{
	le16_encode(pb.buf + 4, PACK_FORMAT_VERSION + 1);
	reseal(pb.buf, pb.len);
	cr_assert_eq(decode(pb.buf, pb.len), -EPROTONOSUPPORT);
	le16_encode(pb.buf + 4, PACK_FORMAT_VERSION);
	le16_encode(pb.buf + 6, 2);
	reseal(pb.buf, pb.len);
	cr_assert_eq(decode(pb.buf, pb.len), -EPROTONOSUPPORT);
	/* The sealed form is recognised, and needs the repository's keys. */
	le16_encode(pb.buf + 6, PACK_F_AEAD);
	reseal(pb.buf, pb.len);
	cr_assert_eq(decode(pb.buf, pb.len), -ENOKEY);
}

Test(pack, rejects_bad_checksum_anywhere)
{
	size_t spots[] = { 8, 8 + 16 + 100, trailer_off(), entry_off(3) + 40, pb.len - 40, pb.len - 1 };

	for (size_t i = 0; i < sizeof(spots) / sizeof(spots[0]); i++) {
		pb.buf[spots[i]] ^= 0x10;
		cr_assert_eq(decode(pb.buf, pb.len), -EBADMSG, "flip at %zu", spots[i]);
		pb.buf[spots[i]] ^= 0x10;
	}
	cr_assert_eq(decode(pb.buf, pb.len), 0);
}

Test(pack, rejects_truncation_at_every_length)
{
	for (size_t len = 0; len < pb.len; len++) {
		int rc = decode(pb.buf, len);

		/* Short of a tail, or a checksum over the wrong bytes: never accepted. */
		cr_assert(rc == -EPROTO || rc == -EBADMSG, "len %zu: %d", len, rc);
	}
}

Test(pack, rejects_truncation_even_when_resealed)
{
	/* Cut at a record boundary and re-checksum: the trailer no longer fits. */
	size_t len = 8 + 16 + 3000 + 40;
	uint8_t *cut = xmalloc(len);

	memcpy(cut, pb.buf, len);
	reseal(cut, len);
	cr_assert_eq(decode(cut, len), -EBADMSG);
	free(cut);
}

Test(pack, rejects_unknown_blob_type)
{
	pb.buf[entry_off(2) + 52] = BLOB_T_END;
	reseal(pb.buf, pb.len);
	cr_assert_eq(decode(pb.buf, pb.len), -EBADMSG);
	pb.buf[entry_off(2) + 52] = 0;
	reseal(pb.buf, pb.len);
	cr_assert_eq(decode(pb.buf, pb.len), -EBADMSG);
}

Test(pack, rejects_unknown_blob_flags)
{
	pb.buf[entry_off(1) + 53] = 0x04;
	reseal(pb.buf, pb.len);
	cr_assert_eq(decode(pb.buf, pb.len), -EBADMSG);
	/* A sealed record in a plaintext pack. */
	pb.buf[entry_off(0) + 53] = PACK_BLOB_F_AEAD;
	pb.buf[entry_off(1) + 53] = 0;
	reseal(pb.buf, pb.len);
	cr_assert_eq(decode(pb.buf, pb.len), -EBADMSG);
}

Test(pack, rejects_oversized_lengths)
{
	/* stored length pointing past the trailer */
	le32_encode(pb.buf + entry_off(4) + 40, 1u << 30);
	reseal(pb.buf, pb.len);
	cr_assert_eq(decode(pb.buf, pb.len), -EBADMSG);
	reset();
	/* raw length over the blob limit */
	le32_encode(pb.buf + entry_off(0) + 44, BLOB_RAW_MAX_BYTES + 1);
	reseal(pb.buf, pb.len);
	cr_assert_eq(decode(pb.buf, pb.len), -EBADMSG);
	reset();
	/* trailer length larger than the pack */
	le32_encode(pb.buf + pb.len - 40, (uint32_t)pb.len);
	reseal(pb.buf, pb.len);
	cr_assert_eq(decode(pb.buf, pb.len), -EBADMSG);
	reset();
	/* entry count larger than the trailer */
	le32_encode(pb.buf + trailer_off(), 0xffffffffu);
	reseal(pb.buf, pb.len);
	cr_assert_eq(decode(pb.buf, pb.len), -EBADMSG);
	reset();
	/* offsets that overlap the header */
	le64_encode(pb.buf + entry_off(0) + 32, 0);
	reseal(pb.buf, pb.len);
	cr_assert_eq(decode(pb.buf, pb.len), -EBADMSG);
}

/*
 * A compressed blob can claim no more than its payload decodes to (128 KiB per 4 bytes of
 * zstd): readers allocate the raw length before reading the record.
 */
Test(pack, rejects_a_compressed_blob_claiming_more_than_its_payload_can_hold)
{
	struct pack_entry e = {
		.offset = PACK_HEADER_BYTES,
		.stored_bytes = 8,
		.raw_bytes = BLOB_RAW_MAX_BYTES,
		.type = BLOB_T_DATA,
		.flags = PACK_BLOB_F_ZSTD,
	}, out;
	uint8_t raw[PACK_ENTRY_BYTES];
	const char *why = NULL;

	pack_entry_encode(&e, raw);
	cr_assert_eq(pack_entry_decode(raw, &out, 1u << 20, &why), -EBADMSG);
	cr_assert_not_null(why);
	e.raw_bytes = 3 * (128u << 10); /* what 8 bytes of zstd can hold: two blocks and change */
	pack_entry_encode(&e, raw);
	cr_assert_eq(pack_entry_decode(raw, &out, 1u << 20, &why), 0, "%s", why);
}

Test(pack, rejects_records_that_disagree_with_the_trailer)
{
	/* A payload byte changed and the file re-sealed: only the CRC notices. */
	pb.buf[8 + 16 + 7] ^= 1;
	reseal(pb.buf, pb.len);
	cr_assert_eq(decode(pb.buf, pb.len), -EBADMSG);
	reset();
	/* The record header's raw length differs from the entry's. */
	le32_encode(pb.buf + 8 + 4, 2999);
	reseal(pb.buf, pb.len);
	cr_assert_eq(decode(pb.buf, pb.len), -EBADMSG);
}

Test(pack, record_check_catches_short_reads_and_crc)
{
	struct pack_entry *es;
	const uint8_t *payload;
	uint32_t n;

	cr_assert_eq(pack_decode(pb.buf, pb.len, NULL, &es, &n, NULL), 0);
	cr_assert_eq(pack_record_check(pb.buf + es[0].offset, 16 + es[0].stored_bytes - 1, &es[0],
				       &payload, NULL), -EPROTO);
	es[0].crc ^= 1;
	cr_assert_eq(pack_record_check(pb.buf + es[0].offset, 16 + es[0].stored_bytes, &es[0],
				       &payload, NULL), -EBADMSG);
	free(es);
}

Test(pack, rejects_oversized_pack)
{
	cr_assert_eq(decode(pb.buf, (size_t)PACK_MAX_BYTES + 1), -EMSGSIZE);
}

/* ---- The sealed form ------------------------------------------------------------------ */

/* Build the same blobs as a sealed pack under a fresh crypto (spb, c, seed). */
static void build_sealed(struct pack_builder *spb, struct repo_crypto **c, uint8_t seed)
{
	struct repo_key key;
	uint8_t salt[REPO_KEY_SALT_BYTES];
	struct blob_id id;

	test_key(&key, seed);
	fill_random(salt, sizeof(salt), seed);
	cr_assert_eq(repo_crypto_new(c, &key, salt), 0);
	pack_builder_init(spb);
	cr_assert_eq(pack_builder_begin(spb, *c), 0);
	for (int i = 0; i < NBLOBS; i++) {
		uint8_t *dst;

		cr_assert_eq(pack_builder_reserve(spb, lens[i], &dst), 0);
		memcpy(dst, payloads[i], lens[i]);
		cr_assert_eq(pack_builder_commit(spb, &ids[i], BLOB_T_DATA + i % 4, 0, lens[i],
						 lens[i], NULL), 0);
	}
	cr_assert_eq(pack_builder_finish(spb, &id), 0);
}

static int decode_sealed(const uint8_t *buf, size_t len, struct repo_crypto *c)
{
	struct pack_entry *es = NULL;
	const char *why = NULL;
	uint32_t n = 0;
	int rc = pack_decode(buf, len, c, &es, &n, &why);

	if (rc < 0)
		cr_assert_not_null(why);
	free(es);
	return rc;
}

Test(pack, sealed_round_trips_and_shows_no_id_length_or_payload)
{
	struct pack_builder spb;
	struct repo_crypto *c;
	struct pack_entry *es;
	uint8_t back[3000];
	uint32_t n;

	build_sealed(&spb, &c, 1);
	cr_assert_eq(le16_decode(spb.buf + 6), PACK_F_AEAD);
	cr_assert_eq(spb.len, PACK_HEADER_BYTES + 3000 + 1 + 0 + 1234 + 2999 +
				      NBLOBS * REPO_SEAL_OVERHEAD + REPO_SEAL_OVERHEAD +
				      PACK_TRAILER_HEAD_BYTES + NBLOBS * PACK_ENTRY_BYTES +
				      PACK_AEAD_TAIL_BYTES);
	cr_assert_eq(pack_decode(spb.buf, spb.len, c, &es, &n, NULL), 0);
	cr_assert_eq(n, NBLOBS);
	for (int i = 0; i < NBLOBS; i++) {
		const uint8_t *sealed;

		cr_assert(blob_id_eq(&es[i].id, &ids[i]));
		cr_assert_eq(es[i].flags, PACK_BLOB_F_AEAD);
		cr_assert_eq(es[i].stored_bytes, lens[i] + REPO_SEAL_OVERHEAD);
		cr_assert_eq(pack_record_bytes(&es[i]), es[i].stored_bytes, "no record header");
		cr_assert_eq(pack_record_check(spb.buf + es[i].offset, es[i].stored_bytes, &es[i],
					       &sealed, NULL), 0);
		cr_assert_eq(pack_blob_unseal(c, &es[i], sealed, back), 0);
		cr_assert_eq(memcmp(back, payloads[i], lens[i]), 0);
		cr_assert_null(memmem(spb.buf, spb.len, ids[i].b, BLOB_ID_BYTES), "id %d shows", i);
		if (lens[i] > 1)
			cr_assert_null(memmem(spb.buf, spb.len, payloads[i], 16), "payload %d", i);
	}
	free(es);
	pack_builder_free(&spb);
	repo_crypto_free(c);
}

Test(pack, sealed_needs_its_own_key_and_plaintext_refuses_one)
{
	struct pack_builder spb, other_pb;
	struct repo_crypto *c, *other;

	build_sealed(&spb, &c, 1);
	build_sealed(&other_pb, &other, 2);
	cr_assert_eq(decode_sealed(spb.buf, spb.len, NULL), -ENOKEY);
	cr_assert_eq(decode_sealed(spb.buf, spb.len, other), -EBADMSG, "another repository's key");
	cr_assert_eq(decode_sealed(pb.buf, pb.len, c), -EBADMSG, "a plaintext pack with a key");
	cr_assert_eq(decode_sealed(spb.buf, spb.len, c), 0);
	pack_builder_free(&spb);
	pack_builder_free(&other_pb);
	repo_crypto_free(c);
	repo_crypto_free(other);
}

Test(pack, sealed_rejects_a_flip_anywhere_even_resealed)
{
	struct pack_builder spb;
	struct repo_crypto *c;
	size_t spots[6];

	build_sealed(&spb, &c, 1);
	spots[0] = 6;                                   /* header flags: AEAD off */
	spots[1] = PACK_HEADER_BYTES + 5;               /* a record's nonce */
	spots[2] = PACK_HEADER_BYTES + 3000;            /* a record's ciphertext */
	spots[3] = spb.len - PACK_AEAD_TAIL_BYTES - 50; /* the sealed trailer */
	spots[4] = spb.len - PACK_AEAD_TAIL_BYTES + 14; /* the sealed tail */
	spots[5] = spb.len - 33;                        /* the tail's tag */
	for (size_t i = 0; i < sizeof(spots) / sizeof(spots[0]); i++) {
		int rc;

		spb.buf[spots[i]] ^= 0x01;
		cr_assert_eq(decode_sealed(spb.buf, spb.len, c), -EBADMSG, "flip at %zu", spots[i]);
		reseal(spb.buf, spb.len);
		rc = decode_sealed(spb.buf, spb.len, c);
		cr_assert_eq(rc, -EBADMSG, "resealed flip at %zu", spots[i]);
		spb.buf[spots[i]] ^= 0x01;
		reseal(spb.buf, spb.len);
	}
	cr_assert_eq(decode_sealed(spb.buf, spb.len, c), 0);
	pack_builder_free(&spb);
	repo_crypto_free(c);
}

Test(pack, sealed_record_is_bound_to_its_id_type_flags_and_length)
{
	struct pack_builder spb;
	struct repo_crypto *c;
	struct pack_entry *es, e;
	uint8_t back[3000 + 1];
	uint32_t n;

	build_sealed(&spb, &c, 1);
	cr_assert_eq(pack_decode(spb.buf, spb.len, c, &es, &n, NULL), 0);
	e = es[0];
	e.id = es[3].id; /* another blob's entry for this ciphertext */
	cr_assert_eq(pack_blob_unseal(c, &e, spb.buf + es[0].offset, back), -EBADMSG);
	e = es[0];
	e.type = BLOB_T_STATE;
	cr_assert_eq(pack_blob_unseal(c, &e, spb.buf + es[0].offset, back), -EBADMSG);
	e = es[0];
	e.flags |= PACK_BLOB_F_ZSTD;
	cr_assert_eq(pack_blob_unseal(c, &e, spb.buf + es[0].offset, back), -EBADMSG);
	e = es[0];
	e.raw_bytes--;
	cr_assert_eq(pack_blob_unseal(c, &e, spb.buf + es[0].offset, back), -EBADMSG);
	/* Records of equal length swapped: each fails under the other's entry. */
	cr_assert_eq(pack_blob_unseal(c, &es[4], spb.buf + es[0].offset, back), -EBADMSG);
	cr_assert_eq(pack_blob_unseal(c, &es[0], spb.buf + es[0].offset, back), 0);
	free(es);
	pack_builder_free(&spb);
	repo_crypto_free(c);
}

Test(pack, sealed_rejects_truncation_at_every_length)
{
	struct pack_builder spb;
	struct repo_crypto *c;

	build_sealed(&spb, &c, 1);
	for (size_t len = 0; len < spb.len; len++) {
		int rc = decode_sealed(spb.buf, len, c);

		cr_assert(rc == -EPROTO || rc == -EBADMSG, "len %zu: %d", len, rc);
	}
	pack_builder_free(&spb);
	repo_crypto_free(c);
}
