/* Blob ids: hex conversion, the zero id, zero-data detection and the SHA-256 helper. */
#include "repo/blob.h"

#include <errno.h>
#include <string.h>
#include <openssl/evp.h>

bool blob_id_is_zero(const struct blob_id *id)
{
	return blob_data_is_zero(id->b, sizeof(id->b));
}

bool blob_id_eq(const struct blob_id *a, const struct blob_id *b)
{
	return memcmp(a->b, b->b, sizeof(a->b)) == 0;
}

void hex_encode(const uint8_t *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

void blob_id_hex(const struct blob_id *id, char out[BLOB_ID_HEX_BYTES])
{
	hex_encode(id->b, sizeof(id->b), out);
}

static int hex_nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int blob_id_from_hex(struct blob_id *id, const char *hex)
{
	for (size_t i = 0; i < BLOB_ID_BYTES; i++) {
		int hi = hex_nibble(hex[2 * i]), lo;

		if (hi < 0)
			return -EINVAL;
		lo = hex_nibble(hex[2 * i + 1]);
		if (lo < 0)
			return -EINVAL;
		id->b[i] = (uint8_t)(hi << 4 | lo);
	}
	return hex[2 * BLOB_ID_BYTES] == '\0' ? 0 : -EINVAL;
}

bool blob_data_is_zero(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint64_t acc = 0;
	size_t i = 0;

	/* Word loop with one branch per 64 bytes: memory chunks are mostly all or nothing. */
	for (; i + 64 <= len; i += 64) {
		uint64_t w[8];

		memcpy(w, p + i, sizeof(w));
		acc = w[0] | w[1] | w[2] | w[3] | w[4] | w[5] | w[6] | w[7];
		if (acc)
			return false;
	}
	for (; i < len; i++)
		if (p[i])
			return false;
	return true;
}

const char *blob_type_name(unsigned t)
{
	switch (t) {
	case BLOB_T_DATA:
		return "data";
	case BLOB_T_STATE:
		return "state";
	case BLOB_T_SIG:
		return "sig";
	case BLOB_T_META:
		return "meta";
	default:
		return "invalid";
	}
}

void sha256_buf(const void *data, size_t len, uint8_t out[32])
{
	unsigned n = 32;

	/* EVP_Digest with the built-in SHA-256 cannot fail short of memory corruption. */
	if (!EVP_Digest(data, len, out, &n, EVP_sha256(), NULL))
		memset(out, 0, 32);
}
