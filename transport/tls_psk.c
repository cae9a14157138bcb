/* Pre-shared keys for TLS 1.3 external-PSK mode: the key file format and its loader. */
#include "transport/tls_psk.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <openssl/crypto.h>

#include "transport/kdf.h"
#include "transport/key_file.h"

/* Largest file we bother reading: 128 hex digits plus "\r\n", with room to spot excess. */
#define TLS_PSK_FILE_MAX 256

int tls_psk_from_secret(struct tls_psk *out, const void *secret, size_t len)
{
	const uint8_t *p = secret;
	bool flat = true;

	if (len < TLS_PSK_SECRET_MIN || len > TLS_PSK_SECRET_MAX)
		return -EINVAL;
	for (size_t i = 1; i < len; i++)
		flat = flat && p[i] == p[0];
	if (flat)
		return -EINVAL;
	return kdf_hkdf_sha256(out->key, sizeof(out->key), secret, len, NULL, 0, TLS_PSK_HKDF_INFO,
			       strlen(TLS_PSK_HKDF_INFO));
}

int tls_psk_load(struct tls_psk *out, const char *path, char *err, size_t err_len)
{
	uint8_t buf[TLS_PSK_FILE_MAX + 1], secret[TLS_PSK_SECRET_MAX];
	size_t n, at;
	ssize_t len;
	int rc;

	rc = key_file_read(path, "psk file", buf, sizeof(buf), &n, err, err_len);
	if (rc < 0)
		goto out_wipe;
	rc = -EINVAL;
	if (n > TLS_PSK_FILE_MAX) {
		snprintf(err, err_len, "psk file %s: too large for a key (over %d bytes)", path,
			 TLS_PSK_FILE_MAX);
		goto out_wipe;
	}
	if (key_file_is_hex(buf, n)) {
		len = key_file_decode_hex(buf, n, secret, sizeof(secret), &at);
		if (len == -EINVAL) {
			snprintf(err, err_len, "psk file %s: hex key has a non-hex character at "
				 "offset %zu", path, at);
			goto out_wipe;
		}
		if (len < TLS_PSK_SECRET_MIN) {
			snprintf(err, err_len, "psk file %s: hex key has %zu digits; want an even "
				 "count from %d to %d (openssl rand -hex 32)", path,
				 len < 0 ? at : 2 * (size_t)len, 2 * TLS_PSK_SECRET_MIN,
				 2 * TLS_PSK_SECRET_MAX);
			goto out_wipe;
		}
	} else {
		if (n < TLS_PSK_SECRET_MIN || n > TLS_PSK_SECRET_MAX) {
			snprintf(err, err_len,
				 "psk file %s: raw key is %zu bytes; want %d to %d (or hex text)",
				 path, n, TLS_PSK_SECRET_MIN, TLS_PSK_SECRET_MAX);
			goto out_wipe;
		}
		memcpy(secret, buf, n);
		len = (ssize_t)n;
	}
	rc = tls_psk_from_secret(out, secret, (size_t)len);
	if (rc == -EINVAL)
		snprintf(err, err_len, "psk file %s: key bytes are all equal; generate a random one",
			 path);
	else if (rc < 0)
		snprintf(err, err_len, "psk file %s: key derivation failed", path);
out_wipe:
	OPENSSL_cleanse(buf, sizeof(buf));
	OPENSSL_cleanse(secret, sizeof(secret));
	return rc;
}

void tls_psk_wipe(struct tls_psk *psk)
{
	OPENSSL_cleanse(psk->key, sizeof(psk->key));
}
