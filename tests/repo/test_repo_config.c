/* Tests for the config object: round trip and one test per corruption class. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>
#include <stdlib.h>

#include "helpers.h"
#include "repo/blob.h"
#include "repo/repo_config.h"
#include "util/byteorder.h"

static struct repo_config cfg;
static uint8_t buf[REPO_CONFIG_BYTES];

static void setup(void)
{
	cr_assert_eq(repo_config_make(&cfg, 0, 0, NULL), 0);
	cr_assert_eq(repo_config_encode(&cfg, NULL, buf), 0);
}

TestSuite(repo_config, .init = setup);

/* Re-seal buf after an edit so only the edited field is wrong. */
static void reseal(void)
{
	sha256_buf(buf, REPO_CONFIG_SUM_OFFSET, buf + REPO_CONFIG_SUM_OFFSET);
}

static int decode(size_t len)
{
	struct repo_config out;
	const char *why = NULL;
	int rc = repo_config_decode(buf, len, &out, &why);

	if (rc < 0)
		cr_assert_not_null(why, "every failure has a reason");
	return rc;
}

Test(repo_config, round_trips)
{
	struct repo_config out;

	cr_assert_eq(repo_config_decode(buf, sizeof(buf), &out, NULL), 0);
	cr_assert_eq(memcmp(out.repo_id, cfg.repo_id, REPO_ID_BYTES), 0);
	cr_assert_eq(out.created_ns, cfg.created_ns);
	cr_assert_eq(out.id_algo, REPO_ID_SHA256);
	cr_assert_eq(out.encryption, REPO_ENC_NONE);
	cr_assert_eq(out.compression, REPO_COMP_ZSTD);
	cr_assert_eq(out.chunk_bytes, 64 << 10);
	cr_assert_eq(out.pack_target_bytes, 16 << 20);
	cr_assert_eq(out.blob_max_bytes, BLOB_RAW_MAX_BYTES);
	cr_assert_str_eq(out.writer_version, GODWIT_VERSION);
}

Test(repo_config, two_repositories_get_different_ids)
{
	struct repo_config other;

	cr_assert_eq(repo_config_make(&other, 0, 0, NULL), 0);
	cr_assert_neq(memcmp(other.repo_id, cfg.repo_id, REPO_ID_BYTES), 0);
}

Test(repo_config, make_rejects_bad_sizes)
{
	struct repo_config c;

	cr_assert_eq(repo_config_make(&c, 3000, 0, NULL), -EINVAL);
	cr_assert_eq(repo_config_make(&c, 32 << 20, 0, NULL), -EINVAL);
	cr_assert_eq(repo_config_make(&c, 0, 1000, NULL), -EINVAL);
	cr_assert_eq(repo_config_make(&c, 4096, 1 << 20, NULL), 0);
}

Test(repo_config, rejects_bad_magic)
{
	buf[0] ^= 1;
	cr_assert_eq(decode(sizeof(buf)), -ENOMSG);
}

Test(repo_config, rejects_bad_version)
{
	le16_encode(buf + 4, REPO_CONFIG_FORMAT_VERSION + 1);
	reseal();
	cr_assert_eq(decode(sizeof(buf)), -EPROTONOSUPPORT);
}

Test(repo_config, rejects_unknown_flags)
{
	le16_encode(buf + 6, 1);
	reseal();
	cr_assert_eq(decode(sizeof(buf)), -EPROTONOSUPPORT);
}

Test(repo_config, rejects_bad_checksum)
{
	buf[60] ^= 0x40; /* pack target */
	cr_assert_eq(decode(sizeof(buf)), -EBADMSG);
	buf[60] ^= 0x40;
	buf[REPO_CONFIG_BYTES - 1] ^= 1;
	cr_assert_eq(decode(sizeof(buf)), -EBADMSG);
}

Test(repo_config, rejects_truncation_at_every_length)
{
	for (size_t len = 0; len < REPO_CONFIG_BYTES; len++)
		cr_assert_eq(decode(len), -EPROTO, "len %zu", len);
}

Test(repo_config, rejects_trailing_bytes)
{
	uint8_t longer[REPO_CONFIG_BYTES + 1] = { 0 };
	struct repo_config out;

	memcpy(longer, buf, sizeof(buf));
	cr_assert_eq(repo_config_decode(longer, sizeof(longer), &out, NULL), -EBADMSG);
}

Test(repo_config, rejects_unknown_algorithms)
{
	le16_encode(buf + 48, 9); /* id_algo */
	reseal();
	cr_assert_eq(decode(sizeof(buf)), -EPROTONOSUPPORT);
	le16_encode(buf + 48, REPO_ID_SHA256);
	le16_encode(buf + 50, 9); /* encryption */
	reseal();
	cr_assert_eq(decode(sizeof(buf)), -EPROTONOSUPPORT);
	le16_encode(buf + 50, 0); /* zero is never valid */
	reseal();
	cr_assert_eq(decode(sizeof(buf)), -EPROTONOSUPPORT);
}

Test(repo_config, rejects_oversized_sizes)
{
	le32_encode(buf + 56, 1u << 30); /* chunk_bytes */
	reseal();
	cr_assert_eq(decode(sizeof(buf)), -EBADMSG);
	le32_encode(buf + 56, 64 << 10);
	le32_encode(buf + 64, BLOB_RAW_MAX_BYTES + 1); /* blob_max */
	reseal();
	cr_assert_eq(decode(sizeof(buf)), -EBADMSG);
}

Test(repo_config, rejects_unterminated_version_string)
{
	memset(buf + 104, 'x', 32);
	reseal();
	cr_assert_eq(decode(sizeof(buf)), -EBADMSG);
}

/* ---- Encrypted repositories ------------------------------------------------------------ */

static struct repo_key key;
static struct repo_config ecfg;
static uint8_t ebuf[REPO_CONFIG_BYTES];

static void make_encrypted(void)
{
	test_key(&key, 1);
	cr_assert_eq(repo_config_make(&ecfg, 0, 0, &key), 0);
	cr_assert_eq(repo_config_encode(&ecfg, &key, ebuf), 0);
}

static int authenticate(const struct repo_key *k, const char **why)
{
	struct repo_config out;
	int rc = repo_config_decode(ebuf, sizeof(ebuf), &out, why);

	return rc < 0 ? rc : repo_config_authenticate(ebuf, sizeof(ebuf), &out, k, why);
}

static void ereseal(void)
{
	sha256_buf(ebuf, REPO_CONFIG_SUM_OFFSET, ebuf + REPO_CONFIG_SUM_OFFSET);
}

Test(repo_config, encrypted_round_trips_and_authenticates)
{
	struct repo_config out;
	uint8_t zero[32] = { 0 };

	make_encrypted();
	cr_assert_eq(repo_config_decode(ebuf, sizeof(ebuf), &out, NULL), 0);
	cr_assert_eq(out.encryption, REPO_ENC_AES256GCM);
	cr_assert_eq(out.id_algo, REPO_ID_HMAC_SHA256);
	cr_assert_eq(memcmp(out.key_salt, ecfg.key_salt, 32), 0);
	cr_assert_neq(memcmp(out.key_salt, zero, 32), 0);
	cr_assert_eq(memcmp(out.key_check, ecfg.key_check, 32), 0);
	cr_assert_neq(memcmp(ebuf + REPO_CONFIG_MAC_OFFSET, zero, 32), 0, "a mac");
	cr_assert_eq(authenticate(&key, NULL), 0);
	cr_assert_null(memmem(ebuf, sizeof(ebuf), key.b, 8), "the key itself is not stored");
}

Test(repo_config, encrypted_refuses_a_wrong_key_and_an_altered_config)
{
	struct repo_key other;
	const char *why = NULL;

	make_encrypted();
	test_key(&other, 2);
	cr_assert_eq(authenticate(&other, &why), -EKEYREJECTED);
	/* Any field but the key's own, changed with a matching checksum: the mac fails. */
	{
		size_t spots[] = { 10, 44, 49, 58, 61, 65, 110 };

		for (size_t i = 0; i < sizeof(spots) / sizeof(spots[0]); i++) {
			int rc;

			ebuf[spots[i]] ^= 0x01;
			ereseal();
			rc = authenticate(&key, &why);
			cr_assert(rc == -EBADMSG || rc == -EPROTONOSUPPORT, "flip at %zu: %d", spots[i],
				  rc);
			ebuf[spots[i]] ^= 0x01;
			ereseal();
		}
	}
	ebuf[61] ^= 0x01; /* pack target: still a valid size */
	ereseal();
	cr_assert_eq(authenticate(&key, &why), -EBADMSG);
	cr_assert_str_eq(why, "authentication failed: the config was altered");
	ebuf[61] ^= 0x01;
	ebuf[REPO_CONFIG_MAC_OFFSET + 3] ^= 0x01;
	ereseal();
	cr_assert_eq(authenticate(&key, &why), -EBADMSG);
	ebuf[REPO_CONFIG_MAC_OFFSET + 3] ^= 0x01;
	/* The key fields themselves: read as another key. */
	ebuf[REPO_CONFIG_CHECK_OFFSET] ^= 0x01;
	ereseal();
	cr_assert_eq(authenticate(&key, &why), -EKEYREJECTED);
}

Test(repo_config, key_fields_must_match_the_encryption)
{
	const char *why = NULL;

	make_encrypted();
	cr_assert_eq(repo_config_encode(&ecfg, NULL, ebuf), -EINVAL, "the mac needs the key");
	cr_assert_eq(repo_config_encode(&ecfg, &key, ebuf), 0);
	/* A downgrade that leaves the key fields is not a plaintext config. */
	le16_encode(ebuf + 48, REPO_ID_SHA256);
	le16_encode(ebuf + 50, REPO_ENC_NONE);
	ereseal();
	cr_assert_eq(repo_config_decode(ebuf, sizeof(ebuf), &ecfg, &why), -EBADMSG);
	/* Keyed ids without encryption, or encryption with plain ids. */
	le16_encode(ebuf + 48, REPO_ID_HMAC_SHA256);
	ereseal();
	cr_assert_eq(repo_config_decode(ebuf, sizeof(ebuf), &ecfg, &why), -EBADMSG);
	le16_encode(ebuf + 48, REPO_ID_SHA256);
	le16_encode(ebuf + 50, REPO_ENC_AES256GCM);
	ereseal();
	cr_assert_eq(repo_config_decode(ebuf, sizeof(ebuf), &ecfg, &why), -EBADMSG);
	/* An encrypted config without a salt. */
	le16_encode(ebuf + 48, REPO_ID_HMAC_SHA256);
	memset(ebuf + 72, 0, 32);
	ereseal();
	cr_assert_eq(repo_config_decode(ebuf, sizeof(ebuf), &ecfg, &why), -EBADMSG);
	/* A plaintext config with a salt. */
	buf[72] = 1;
	reseal();
	cr_assert_eq(decode(sizeof(buf)), -EBADMSG);
}

Test(repo_config, a_version_1_config_still_decodes)
{
	uint8_t v1[REPO_CONFIG_V1_BYTES];
	struct repo_config out;

	/* Version 1 is version 2 up to writer_version, then its SHA-256. */
	memcpy(v1, buf, REPO_CONFIG_CHECK_OFFSET);
	le16_encode(v1 + 4, 1);
	sha256_buf(v1, REPO_CONFIG_CHECK_OFFSET, v1 + REPO_CONFIG_CHECK_OFFSET);
	cr_assert_eq(repo_config_decode(v1, sizeof(v1), &out, NULL), 0);
	cr_assert_eq(out.version, 1);
	cr_assert_eq(out.encryption, REPO_ENC_NONE);
	cr_assert_eq(out.chunk_bytes, cfg.chunk_bytes);
	cr_assert_eq(repo_config_decode(v1, sizeof(v1) - 1, &out, NULL), -EPROTO);
	/* ... but never an encrypted one. */
	le16_encode(v1 + 48, REPO_ID_HMAC_SHA256);
	le16_encode(v1 + 50, REPO_ENC_AES256GCM);
	sha256_buf(v1, REPO_CONFIG_CHECK_OFFSET, v1 + REPO_CONFIG_CHECK_OFFSET);
	cr_assert_eq(repo_config_decode(v1, sizeof(v1), &out, NULL), -EPROTONOSUPPORT);
}
