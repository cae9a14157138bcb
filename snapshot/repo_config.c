/* Encoding, decoding and checking of the repository config object. */
#include "snapshot/repo_config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "snapshot/blob.h"
#include "snapshot/codec_priv.h"

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

int repo_config_make(struct repo_config *c, uint32_t chunk_bytes, uint32_t pack_target_bytes)
{
	struct timespec ts;

	memset(c, 0, sizeof(*c));
	c->chunk_bytes = chunk_bytes ? chunk_bytes : REPO_CHUNK_BYTES_DEFAULT;
	c->pack_target_bytes = pack_target_bytes ? pack_target_bytes : REPO_PACK_TARGET_DEFAULT;
	c->blob_max_bytes = BLOB_RAW_MAX_BYTES;
	if (!sizes_ok(c->chunk_bytes, c->pack_target_bytes, c->blob_max_bytes))
		return -EINVAL;
	if (getrandom(c->repo_id, sizeof(c->repo_id), 0) != sizeof(c->repo_id))
		return -EIO;
	clock_gettime(CLOCK_REALTIME, &ts);
	c->created_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	c->id_algo = REPO_ID_SHA256;
	c->encryption = REPO_ENC_NONE;
	c->compression = REPO_COMP_ZSTD;
	snprintf(c->writer_version, sizeof(c->writer_version), "%s", GODWIT_VERSION);
	return 0;
}

void repo_config_encode(const struct repo_config *c, uint8_t out[REPO_CONFIG_BYTES])
{
	struct enc e = enc_init(out, REPO_CONFIG_BYTES);
	char ver[REPO_CONFIG_VERSION_STR_BYTES] = { 0 };

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
	sha256_buf(out, REPO_CONFIG_SUM_OFFSET, enc_take(&e, 32));
	assert(e.off == REPO_CONFIG_BYTES);
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
	uint8_t sum[32];
	struct repo_config c;

	if (len < 8)
		return fail(why, "truncated header", -EPROTO);
	if (memcmp(buf, REPO_CONFIG_MAGIC, 4) != 0)
		return fail(why, "bad magic: not a godwit repository config", -ENOMSG);
	dec_take(&d, 4);
	dec_u16(&d, &version);
	dec_u16(&d, &flags);
	if (version != REPO_CONFIG_FORMAT_VERSION)
		return fail(why, "unsupported config format version", -EPROTONOSUPPORT);
	if (flags != 0)
		return fail(why, "unsupported config flags", -EPROTONOSUPPORT);
	if (len < REPO_CONFIG_BYTES)
		return fail(why, "truncated", -EPROTO);
	if (len > REPO_CONFIG_BYTES)
		return fail(why, "trailing bytes after the checksum", -EBADMSG);
	sha256_buf(buf, REPO_CONFIG_SUM_OFFSET, sum);
	if (memcmp(sum, buf + REPO_CONFIG_SUM_OFFSET, 32) != 0)
		return fail(why, "checksum mismatch", -EBADMSG);

	memset(&c, 0, sizeof(c));
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

	if (c.id_algo != REPO_ID_SHA256)
		return fail(why, c.id_algo == REPO_ID_HMAC_SHA256
				 ? "keyed blob ids (HMAC-SHA256) are not supported by this version"
				 : "unknown blob id algorithm", -EPROTONOSUPPORT);
	if (c.encryption != REPO_ENC_NONE)
		return fail(why, c.encryption == REPO_ENC_AES256GCM
				 ? "encrypted repositories are not supported by this version"
				 : "unknown encryption", -EPROTONOSUPPORT);
	if (c.compression != REPO_COMP_ZSTD)
		return fail(why, "unknown compression", -EPROTONOSUPPORT);
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
