/* Encoding, decoding and checking of the repository config object. */
#include "repo/repo_config.h"
#include "repo/compat.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "repo/blob.h"
#include "repo/codec_priv.h"

#ifndef GODWIT_VERSION
#define GODWIT_VERSION "unknown"
#endif

static bool is_pow2(uint32_t v)
{
	return v && !(v & (v - 1));
}

static bool sizes_ok(uint32_t chunk, uint32_t target, uint32_t blob_max)
{
	return is_pow2(chunk) && chunk >= REPO_CHUNK_BYTES_MIN && chunk <= REPO_CHUNK_BYTES_MAX &&
	       target >= REPO_PACK_TARGET_MIN && target <= REPO_PACK_TARGET_MAX &&
	       blob_max >= chunk && blob_max <= BLOB_RAW_MAX_BYTES;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	uint8_t acc = 0;

	for (size_t i = 0; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

int repo_config_make(struct repo_config *c, uint32_t chunk_bytes, uint32_t pack_target_bytes,
		     const struct repo_key *key)
{
	struct timespec ts;

	memset(c, 0, sizeof(*c));
	c->version = REPO_CONFIG_FORMAT_VERSION;
	c->chunk_bytes = chunk_bytes ? chunk_bytes : REPO_CHUNK_BYTES_DEFAULT;
	c->pack_target_bytes = pack_target_bytes ? pack_target_bytes : REPO_PACK_TARGET_DEFAULT;
	c->blob_max_bytes = BLOB_RAW_MAX_BYTES;
	if (!sizes_ok(c->chunk_bytes, c->pack_target_bytes, c->blob_max_bytes))
		return -EINVAL;
	if (getrandom(c->repo_id, sizeof(c->repo_id), 0) != sizeof(c->repo_id))
		return -EIO;
	clock_gettime(CLOCK_REALTIME, &ts);
	c->created_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	c->id_algo = key ? REPO_ID_HMAC_SHA256 : REPO_ID_SHA256;
	c->encryption = key ? REPO_ENC_AES256GCM : REPO_ENC_NONE;
	c->compression = REPO_COMP_ZSTD;
	snprintf(c->writer_version, sizeof(c->writer_version), "%s", GODWIT_VERSION);
	if (key) {
		if (getrandom(c->key_salt, sizeof(c->key_salt), 0) != sizeof(c->key_salt) ||
		    all_zero(c->key_salt, sizeof(c->key_salt)) ||
		    repo_key_derive(key, c->key_salt, REPO_KDF_CHECK_LABEL, c->key_check) < 0)
			return -EIO;
	}
	return 0;
}

/* HMAC-SHA256 of the config's first REPO_CONFIG_MAC_OFFSET bytes (buf, c, key, out). */
static int config_mac(const uint8_t *buf, const struct repo_config *c, const struct repo_key *key,
		      uint8_t out[32])
{
	uint8_t k[32];
	unsigned n = 0;
	int rc = repo_key_derive(key, c->key_salt, REPO_KDF_CONFIG_LABEL, k);

	if (rc == 0 && (!HMAC(EVP_sha256(), k, sizeof(k), buf, REPO_CONFIG_MAC_OFFSET, out, &n) ||
			n != 32))
		rc = -EIO;
	OPENSSL_cleanse(k, sizeof(k));
	return rc;
}

int repo_config_encode(const struct repo_config *c, const struct repo_key *key,
		       uint8_t out[REPO_CONFIG_BYTES])
{
	struct enc e = enc_init(out, REPO_CONFIG_BYTES);
	char ver[REPO_CONFIG_VERSION_STR_BYTES] = { 0 };
	bool encrypted = c->encryption == REPO_ENC_AES256GCM;
	int rc;

	if (encrypted && !key)
		return -EINVAL;
	memcpy(ver, c->writer_version, strnlen(c->writer_version, sizeof(ver) - 1));
	enc_bytes(&e, REPO_CONFIG_MAGIC, 4);
	enc_u16(&e, REPO_CONFIG_FORMAT_VERSION);
	enc_u16(&e, 0);
	enc_bytes(&e, c->repo_id, sizeof(c->repo_id));
	enc_u64(&e, c->created_ns);
	enc_u16(&e, c->id_algo);
	enc_u16(&e, c->encryption);
	enc_u16(&e, c->compression);
	enc_u16(&e, 0);
	enc_u32(&e, c->chunk_bytes);
	enc_u32(&e, c->pack_target_bytes);
	enc_u32(&e, c->blob_max_bytes);
	enc_u32(&e, 0);
	enc_bytes(&e, c->key_salt, sizeof(c->key_salt));
	enc_bytes(&e, ver, sizeof(ver));
	enc_bytes(&e, c->key_check, sizeof(c->key_check));
	assert(e.off == REPO_CONFIG_MAC_OFFSET);
	memset(enc_take(&e, 32), 0, 32);
	if (encrypted) {
		rc = config_mac(out, c, key, out + REPO_CONFIG_MAC_OFFSET);
		if (rc < 0)
			return rc;
	}
	sha256_buf(out, REPO_CONFIG_SUM_OFFSET, enc_take(&e, 32));
	assert(e.off == REPO_CONFIG_BYTES);
	return 0;
}

static int fail(const char **why, const char *reason, int rc)
{
	if (why)
		*why = reason;
	return rc;
}

int repo_config_decode(const uint8_t *buf, size_t len, struct repo_config *out,
		       const char **why)
{
	struct dec d = dec_init(buf, len);
	uint16_t version = 0, flags = 0, rsvd16 = 0;
	uint32_t rsvd32 = 0;
	uint8_t sum[32], mac[32] = { 0 };
	struct repo_config c;
	size_t want, sum_off;

	if (len < 8)
		return fail(why, "truncated header", -EPROTO);
	if (memcmp(buf, REPO_CONFIG_MAGIC, 4) != 0)
		return fail(why, "bad magic: not a godwit repository config", -ENOMSG);
	dec_take(&d, 4);
	dec_u16(&d, &version);
	dec_u16(&d, &flags);
	if (version == 0)
		return fail(why, "config format version 0 is invalid", -EBADMSG);
	if (version > REPO_CONFIG_FORMAT_VERSION)
		return fail(why, compat_newer("config", version, REPO_CONFIG_FORMAT_VERSION),
			    -EPROTONOSUPPORT);
	if (flags != 0)
		return fail(why, "config flags this godwit does not know: upgrade godwit", -EPROTONOSUPPORT);
	want = version == 1 ? REPO_CONFIG_V1_BYTES : REPO_CONFIG_BYTES;
	sum_off = want - 32;
	if (len < want)
		return fail(why, "truncated", -EPROTO);
	if (len > want)
		return fail(why, "trailing bytes after the checksum", -EBADMSG);
	sha256_buf(buf, sum_off, sum);
	if (memcmp(sum, buf + sum_off, 32) != 0)
		return fail(why, "checksum mismatch", -EBADMSG);

	memset(&c, 0, sizeof(c));
	c.version = version;
	dec_bytes(&d, c.repo_id, sizeof(c.repo_id));
	dec_u64(&d, &c.created_ns);
	dec_u16(&d, &c.id_algo);
	dec_u16(&d, &c.encryption);
	dec_u16(&d, &c.compression);
	dec_u16(&d, &rsvd16);
	dec_u32(&d, &c.chunk_bytes);
	dec_u32(&d, &c.pack_target_bytes);
	dec_u32(&d, &c.blob_max_bytes);
	dec_u32(&d, &rsvd32);
	dec_bytes(&d, c.key_salt, sizeof(c.key_salt));
	dec_bytes(&d, c.writer_version, sizeof(c.writer_version));
	if (version != 1) {
		dec_bytes(&d, c.key_check, sizeof(c.key_check));
		dec_bytes(&d, mac, sizeof(mac));
	}

	if (c.id_algo != REPO_ID_SHA256 && c.id_algo != REPO_ID_HMAC_SHA256)
		return fail(why, "unknown blob id algorithm", -EPROTONOSUPPORT);
	if (c.encryption != REPO_ENC_NONE && c.encryption != REPO_ENC_AES256GCM)
		return fail(why, "unknown encryption", -EPROTONOSUPPORT);
	if (version == 1 && c.encryption != REPO_ENC_NONE)
		return fail(why, "a version 1 config cannot be encrypted", -EPROTONOSUPPORT);
	if (c.compression != REPO_COMP_ZSTD)
		return fail(why, "unknown compression", -EPROTONOSUPPORT);
	/* Keyed ids without encryption, or the reverse, would leak what the other hides. */
	if ((c.id_algo == REPO_ID_HMAC_SHA256) != (c.encryption == REPO_ENC_AES256GCM))
		return fail(why, "blob id algorithm does not match the encryption", -EBADMSG);
	if (c.encryption == REPO_ENC_NONE
		    ? !all_zero(c.key_salt, sizeof(c.key_salt)) ||
		      !all_zero(c.key_check, sizeof(c.key_check)) || !all_zero(mac, sizeof(mac))
		    : all_zero(c.key_salt, sizeof(c.key_salt)) ||
		      all_zero(c.key_check, sizeof(c.key_check)))
		return fail(why, "key fields do not match the encryption", -EBADMSG);
	if (rsvd16 || rsvd32)
		return fail(why, "reserved field not zero", -EBADMSG);
	if (!sizes_ok(c.chunk_bytes, c.pack_target_bytes, c.blob_max_bytes))
		return fail(why, "chunk, pack or blob size out of range", -EBADMSG);
	if (c.writer_version[sizeof(c.writer_version) - 1] != '\0')
		return fail(why, "writer version not terminated", -EBADMSG);
	for (size_t i = 0; c.writer_version[i]; i++)
		if (c.writer_version[i] < 0x20 || c.writer_version[i] > 0x7e)
			return fail(why, "writer version not printable", -EBADMSG);
	*out = c;
	return 0;
}

int repo_config_authenticate(const uint8_t *buf, size_t len, const struct repo_config *c,
			     const struct repo_key *key, const char **why)
{
	uint8_t check[REPO_KEY_CHECK_BYTES], mac[32];
	int rc;

	if (c->encryption != REPO_ENC_AES256GCM || len != REPO_CONFIG_BYTES)
		return fail(why, "the repository is not encrypted", -EINVAL);
	rc = repo_key_derive(key, c->key_salt, REPO_KDF_CHECK_LABEL, check);
	if (rc < 0)
		return fail(why, "key derivation failed", rc);
	if (CRYPTO_memcmp(check, c->key_check, sizeof(check)) != 0)
		return fail(why, "the key check does not match: another repository's key",
			    -EKEYREJECTED);
	rc = config_mac(buf, c, key, mac);
	if (rc < 0)
		return fail(why, "key derivation failed", rc);
	if (CRYPTO_memcmp(mac, buf + REPO_CONFIG_MAC_OFFSET, sizeof(mac)) != 0)
		return fail(why, "authentication failed: the config was altered", -EBADMSG);
	return 0;
}
