/* Tests for the config object: round trip and one test per corruption class. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "helpers.h"
#include "snapshot/blob.h"
#include "snapshot/repo_config.h"
#include "transport/byteorder.h"

static struct repo_config cfg;
static uint8_t buf[REPO_CONFIG_BYTES];

static void setup(void)
{
	cr_assert_eq(repo_config_make(&cfg, 0, 0), 0);
	repo_config_encode(&cfg, buf);
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

	cr_assert_eq(repo_config_make(&other, 0, 0), 0);
	cr_assert_neq(memcmp(other.repo_id, cfg.repo_id, REPO_ID_BYTES), 0);
}

Test(repo_config, make_rejects_bad_sizes)
{
	struct repo_config c;

	cr_assert_eq(repo_config_make(&c, 3000, 0), -EINVAL);
	cr_assert_eq(repo_config_make(&c, 32 << 20, 0), -EINVAL);
	cr_assert_eq(repo_config_make(&c, 0, 1000), -EINVAL);
	cr_assert_eq(repo_config_make(&c, 4096, 1 << 20), 0);
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
	le16_encode(buf + 48, REPO_ID_HMAC_SHA256); /* reserved for encryption */
	reseal();
	cr_assert_eq(decode(sizeof(buf)), -EPROTONOSUPPORT);
	le16_encode(buf + 48, REPO_ID_SHA256);
	le16_encode(buf + 50, REPO_ENC_AES256GCM);
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
