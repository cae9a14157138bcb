/* Pre-shared keys for TLS 1.3 external-PSK mode: the key file format and its loader. */
#include "transport/tls_psk.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/crypto.h>

#include "transport/kdf.h"

/* Largest file we bother reading: 128 hex digits plus "\r\n", with room to spot excess. */
#define TLS_PSK_FILE_MAX 256

static int tls_psk_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool tls_psk_is_text(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (tls_psk_hexval(p[i]) < 0 && p[i] != '\n' && p[i] != '\r' && p[i] != ' ' &&
		    p[i] != '\t')
			return false;
	return true;
}

/* Decode the hex form into secret; returns the byte count or -1 with err filled. */
static int tls_psk_decode_hex(const uint8_t *p, size_t n, uint8_t *secret, char *err,
			      size_t err_len)
{
	size_t digits = n;

	if (digits >= 2 && p[digits - 2] == '\r' && p[digits - 1] == '\n')
		digits -= 2;
	else if (digits >= 1 && p[digits - 1] == '\n')
		digits -= 1;
	for (size_t i = 0; i < digits; i++) {
		if (tls_psk_hexval(p[i]) < 0) {
			snprintf(err, err_len, "hex key has a non-hex character at offset %zu", i);
			return -1;
		}
	}
	if (digits % 2 || digits < 2 * TLS_PSK_SECRET_MIN || digits > 2 * TLS_PSK_SECRET_MAX) {
		snprintf(err, err_len,
			 "hex key has %zu digits; want an even count from %d to %d (openssl rand -hex 32)",
			 digits, 2 * TLS_PSK_SECRET_MIN, 2 * TLS_PSK_SECRET_MAX);
		return -1;
	}
	for (size_t i = 0; i < digits / 2; i++)
		secret[i] = (uint8_t)(tls_psk_hexval(p[2 * i]) << 4 | tls_psk_hexval(p[2 * i + 1]));
	return (int)(digits / 2);
}

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
	size_t n = 0;
	struct stat st;
	int fd, rc, len;
	ssize_t r;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, err_len, "psk file %s: %s", path, strerror(-rc));
		return rc;
	}
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		snprintf(err, err_len, "psk file %s: stat: %s", path, strerror(-rc));
		goto out_close;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = -EINVAL;
		snprintf(err, err_len, "psk file %s: not a regular file", path);
		goto out_close;
	}
	if (st.st_mode & 077) {
		rc = -EPERM;
		snprintf(err, err_len, "psk file %s: mode %04o lets others read the key; chmod 600 it",
			 path, (unsigned)(st.st_mode & 07777));
		goto out_close;
	}
	while (n < sizeof(buf)) {
		r = read(fd, buf + n, sizeof(buf) - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = -errno;
			snprintf(err, err_len, "psk file %s: read: %s", path, strerror(-rc));
			goto out_wipe;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	rc = -EINVAL;
	if (n > TLS_PSK_FILE_MAX) {
		snprintf(err, err_len, "psk file %s: too large for a key (over %d bytes)", path,
			 TLS_PSK_FILE_MAX);
		goto out_wipe;
	}
	if (tls_psk_is_text(buf, n)) {
		char why[128];

		len = tls_psk_decode_hex(buf, n, secret, why, sizeof(why));
		if (len < 0) {
			snprintf(err, err_len, "psk file %s: %s", path, why);
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
		len = (int)n;
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
out_close:
	close(fd);
	return rc;
}

void tls_psk_wipe(struct tls_psk *psk)
{
	OPENSSL_cleanse(psk->key, sizeof(psk->key));
}
