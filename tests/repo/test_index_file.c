/* Tests for index files: round trip, naming by content, and one test per corruption class. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "repo/index_file.h"
#include "repo/repo_crypto.h"
#include "util/byteorder.h"

static struct pack_entry entries[3][4];
static struct index_pack packs[3];
static struct index_file ix = { .npacks = 3, .packs = packs };
static uint8_t *buf;
static size_t len;

static void setup(void)
{
	for (int p = 0; p < 3; p++) {
		uint64_t off = PACK_HEADER_BYTES;

		fill_random(packs[p].pack_id.b, BLOB_ID_BYTES, 50 + p);
		packs[p].nblobs = (uint32_t)(p + 2);
		packs[p].entries = entries[p];
		for (uint32_t i = 0; i < packs[p].nblobs; i++) {
			struct pack_entry *e = &entries[p][i];

			fill_random(e->id.b, BLOB_ID_BYTES, 1000 + p * 10 + i);
			e->offset = off;
			e->raw_bytes = 65536;
			e->stored_bytes = 1000 + i;
			e->crc = 0x12345678u + i;
			e->type = BLOB_T_DATA;
			e->flags = PACK_BLOB_F_ZSTD;
			off += PACK_RECORD_HEADER_BYTES + e->stored_bytes;
		}
		packs[p].pack_bytes = off + PACK_TRAILER_HEAD_BYTES +
				      packs[p].nblobs * PACK_ENTRY_BYTES + PACK_TAIL_BYTES;
	}
	cr_assert_eq(index_file_encode(&ix, NULL, &buf, &len), 0);
}

static void teardown(void)
{
	free(buf);
}

TestSuite(index_file, .init = setup, .fini = teardown);

static void reseal(void)
{
	sha256_buf(buf, len - 32, buf + len - 32);
}

static int decode(size_t n)
{
	struct index_file out;
	const char *why = NULL;
	int rc = index_file_decode(buf, n, NULL, &out, &why);

	if (rc == 0)
		index_file_free(&out);
	else
		cr_assert_not_null(why);
	return rc;
}

/* Offset of pack p's header and of its entry i. */
static size_t pack_off(int p)
{
	size_t off = INDEX_HEADER_BYTES;

	for (int k = 0; k < p; k++)
		off += INDEX_PACK_HEADER_BYTES + packs[k].nblobs * PACK_ENTRY_BYTES;
	return off;
}

static size_t entry_off(int p, int i)
{
	return pack_off(p) + INDEX_PACK_HEADER_BYTES + (size_t)i * PACK_ENTRY_BYTES;
}

Test(index_file, round_trips)
{
	struct index_file out;

	cr_assert_eq(len, INDEX_HEADER_BYTES + 3 * INDEX_PACK_HEADER_BYTES +
			  (2 + 3 + 4) * PACK_ENTRY_BYTES + INDEX_TAIL_BYTES);
	cr_assert_eq(index_file_decode(buf, len, NULL, &out, NULL), 0);
	cr_assert_eq(out.npacks, 3);
	for (int p = 0; p < 3; p++) {
		cr_assert(blob_id_eq(&out.packs[p].pack_id, &packs[p].pack_id));
		cr_assert_eq(out.packs[p].pack_bytes, packs[p].pack_bytes);
		cr_assert_eq(out.packs[p].nblobs, packs[p].nblobs);
		for (uint32_t i = 0; i < packs[p].nblobs; i++) {
			const struct pack_entry *a = &out.packs[p].entries[i], *b = &entries[p][i];

			cr_assert(blob_id_eq(&a->id, &b->id));
			cr_assert_eq(a->offset, b->offset);
			cr_assert_eq(a->stored_bytes, b->stored_bytes);
			cr_assert_eq(a->raw_bytes, b->raw_bytes);
			cr_assert_eq(a->crc, b->crc);
			cr_assert_eq(a->type, b->type);
			cr_assert_eq(a->flags, b->flags);
		}
	}
	index_file_free(&out);
}

Test(index_file, name_is_the_content_hash)
{
	char name[INDEX_NAME_BYTES], hex[BLOB_ID_HEX_BYTES];
	struct blob_id sum;

	index_file_name(buf, len, name);
	sha256_buf(buf, len, sum.b);
	blob_id_hex(&sum, hex);
	cr_assert_eq(strncmp(name, "index/", 6), 0);
	cr_assert_str_eq(name + 6, hex);
}

Test(index_file, encode_refuses_empty)
{
	struct index_file empty = { 0 };
	uint8_t *b;
	size_t n;

	cr_assert_eq(index_file_encode(&empty, NULL, &b, &n), -EINVAL);
}

Test(index_file, rejects_bad_magic)
{
	buf[0] = 'X';
	cr_assert_eq(decode(len), -ENOMSG);
}

Test(index_file, rejects_bad_version_and_flags)
{
	le16_encode(buf + 4, 2);
	reseal();
	cr_assert_eq(decode(len), -EPROTONOSUPPORT);
	le16_encode(buf + 4, 1);
	le16_encode(buf + 6, 0x8000);
	reseal();
	cr_assert_eq(decode(len), -EPROTONOSUPPORT);
}

Test(index_file, rejects_bad_checksum)
{
	buf[entry_off(1, 2) + 5] ^= 0x80;
	cr_assert_eq(decode(len), -EBADMSG);
}

Test(index_file, rejects_truncation_at_every_length)
{
	for (size_t n = 0; n < len; n++) {
		int rc = decode(n);

		cr_assert(rc == -EPROTO || rc == -EBADMSG, "len %zu: %d", n, rc);
	}
}

Test(index_file, rejects_truncation_at_a_pack_boundary_even_when_resealed)
{
	size_t n = pack_off(2) + INDEX_TAIL_BYTES;

	sha256_buf(buf, pack_off(2), buf + pack_off(2));
	cr_assert_eq(decode(n), -EBADMSG); /* npacks says 3 */
}

Test(index_file, rejects_unknown_blob_type)
{
	buf[entry_off(0, 1) + 52] = 77;
	reseal();
	cr_assert_eq(decode(len), -EBADMSG);
}

Test(index_file, rejects_oversized_counts_before_allocating)
{
	le32_encode(buf + 8, 0xffffffffu); /* npacks */
	reseal();
	cr_assert_eq(decode(len), -EBADMSG);
	le32_encode(buf + 8, 3);
	le32_encode(buf + pack_off(1) + 40, 0x7fffffffu); /* nblobs */
	reseal();
	cr_assert_eq(decode(len), -EBADMSG);
	le32_encode(buf + pack_off(1) + 40, 0);
	reseal();
	cr_assert_eq(decode(len), -EBADMSG);
}

Test(index_file, rejects_entries_outside_their_pack)
{
	le64_encode(buf + pack_off(0) + 32, 100); /* pack_bytes smaller than its blobs */
	reseal();
	cr_assert_eq(decode(len), -EBADMSG);
	le64_encode(buf + pack_off(0) + 32, (uint64_t)PACK_MAX_BYTES + 1);
	reseal();
	cr_assert_eq(decode(len), -EBADMSG);
}

Test(index_file, rejects_oversized_file)
{
	cr_assert_eq(decode((size_t)INDEX_MAX_BYTES + 1), -EMSGSIZE);
}

/* ---- The sealed form ------------------------------------------------------------------ */

/* Make the entries sealed ones (AEAD, stored grown by the overhead) and a crypto (c, seed). */
static void seal_entries(struct repo_crypto **c, uint8_t seed)
{
	struct repo_key key;
	uint8_t salt[REPO_KEY_SALT_BYTES];

	test_key(&key, seed);
	fill_random(salt, sizeof(salt), seed);
	cr_assert_eq(repo_crypto_new(c, &key, salt), 0);
	for (int p = 0; p < 3; p++)
		for (uint32_t i = 0; i < packs[p].nblobs; i++)
			entries[p][i].flags |= PACK_BLOB_F_AEAD;
}

static int decode_with(const uint8_t *b, size_t n, struct repo_crypto *c, const char **why)
{
	struct index_file out;
	int rc = index_file_decode(b, n, c, &out, why);

	if (rc == 0)
		index_file_free(&out);
	return rc;
}

Test(index_file, sealed_round_trips_and_shows_nothing)
{
	struct repo_crypto *c;
	struct index_file out;
	uint8_t *sb;
	size_t sn;

	seal_entries(&c, 1);
	cr_assert_eq(index_file_encode(&ix, c, &sb, &sn), 0);
	cr_assert_eq(sn, len + REPO_SEAL_OVERHEAD);
	cr_assert_eq(le16_decode(sb + 6), INDEX_F_AEAD);
	cr_assert_eq(index_file_decode(sb, sn, c, &out, NULL), 0);
	cr_assert_eq(out.npacks, 3);
	for (int p = 0; p < 3; p++) {
		cr_assert(blob_id_eq(&out.packs[p].pack_id, &packs[p].pack_id));
		cr_assert_null(memmem(sb, sn, packs[p].pack_id.b, BLOB_ID_BYTES));
		for (uint32_t i = 0; i < packs[p].nblobs; i++) {
			cr_assert(blob_id_eq(&out.packs[p].entries[i].id, &entries[p][i].id));
			cr_assert_eq(out.packs[p].entries[i].flags, entries[p][i].flags);
			cr_assert_null(memmem(sb, sn, entries[p][i].id.b, BLOB_ID_BYTES));
		}
	}
	index_file_free(&out);
	free(sb);
	repo_crypto_free(c);
}

Test(index_file, sealed_needs_its_key_and_matching_entry_flags)
{
	struct repo_crypto *c, *other;
	const char *why = NULL;
	uint8_t *sb;
	size_t sn;

	cr_assert_eq(decode_with(buf, len, NULL, NULL), 0);
	seal_entries(&c, 1);
	cr_assert_eq(index_file_encode(&ix, NULL, &sb, &sn), -EINVAL, "sealed entries, plain index");
	cr_assert_eq(index_file_encode(&ix, c, &sb, &sn), 0);
	cr_assert_eq(decode_with(sb, sn, NULL, &why), -ENOKEY);
	cr_assert_eq(decode_with(buf, len, c, &why), -EBADMSG, "a plaintext index with a key");
	cr_assert_str_eq(why, "plaintext index in an encrypted repository");
	cr_assert_eq(repo_crypto_new(&other, &(struct repo_key){ { 7 } },
				     (uint8_t[REPO_KEY_SALT_BYTES]){ 1 }), 0);
	cr_assert_eq(decode_with(sb, sn, other, &why), -EBADMSG, "another key");
	cr_assert_str_eq(why, "authentication failed: the index was altered");
	entries[1][1].flags &= (uint8_t)~PACK_BLOB_F_AEAD;
	free(sb);
	cr_assert_eq(index_file_encode(&ix, c, &sb, &sn), -EINVAL, "a plain entry in a sealed index");
	repo_crypto_free(c);
	repo_crypto_free(other);
}

Test(index_file, sealed_rejects_flips_and_truncation)
{
	struct repo_crypto *c;
	const char *why = NULL;
	uint8_t *sb;
	size_t sn;

	seal_entries(&c, 1);
	cr_assert_eq(index_file_encode(&ix, c, &sb, &sn), 0);
	for (size_t off = 0; off < sn; off += 37) {
		int rc;

		sb[off] ^= 0x01;
		rc = decode_with(sb, sn, c, &why);
		cr_assert(rc == -EBADMSG || rc == -ENOMSG || rc == -EPROTONOSUPPORT,
			  "flip at %zu: %d", off, rc);
		if (off >= INDEX_PREFIX_BYTES && off < sn - INDEX_TAIL_BYTES) {
			sha256_buf(sb, sn - 32, sb + sn - 32);
			cr_assert_eq(decode_with(sb, sn, c, &why), -EBADMSG, "resealed flip at %zu", off);
			cr_assert_str_eq(why, "authentication failed: the index was altered");
		}
		sb[off] ^= 0x01;
		sha256_buf(sb, sn - 32, sb + sn - 32);
	}
	cr_assert_eq(decode_with(sb, sn, c, NULL), 0);
	for (size_t n = 0; n < sn; n++) {
		int rc = decode_with(sb, n, c, NULL);

		cr_assert(rc == -EPROTO || rc == -EBADMSG, "len %zu: %d", n, rc);
	}
	free(sb);
	repo_crypto_free(c);
}
