/* Repository key files: random creation, durable O_EXCL writing, strict loading, HKDF derivation. */
#include "repo/repo_key.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "transport/kdf.h"
#include "transport/key_file.h"
#include "util/durable.h"

/* The largest file worth reading: 64 hex digits and "\r\n", with room to spot excess. */
#define REPO_KEY_FILE_MAX 128

static bool key_is_flat(const uint8_t *k)
{
	bool flat = true;

	for (size_t i = 1; i < REPO_KEY_BYTES; i++)
		flat = flat && k[i] == k[0];
	return flat;
}

int repo_key_generate(struct repo_key *out)
{
	/* RAND_priv_bytes: the DRBG OpenSSL keeps apart for long-term secrets. */
	if (RAND_priv_bytes(out->b, sizeof(out->b)) != 1)
		return -EIO;
	return key_is_flat(out->b) ? -EIO : 0;
}

int repo_key_load(struct repo_key *out, const char *path, char *err, size_t errlen)
{
	uint8_t buf[REPO_KEY_FILE_MAX + 1];
	const char *why = NULL;
	size_t n, at;
	int rc;

	rc = key_file_read(path, "key file", buf, sizeof(buf), &n, err, errlen);
	if (rc < 0)
		goto out_wipe;
	rc = -EINVAL;
	if (n > REPO_KEY_FILE_MAX) {
		why = "too large for a repository key";
	} else if (key_file_is_hex(buf, n)) {
		ssize_t len = key_file_decode_hex(buf, n, out->b, REPO_KEY_BYTES, &at);

		if (len == -EINVAL)
			why = "hex key has a character that is not a hex digit";
		else if (len != REPO_KEY_BYTES)
			why = "hex key must be exactly 64 hex digits (32 bytes)";
		else
			rc = 0;
	} else if (n == REPO_KEY_BYTES) {
		memcpy(out->b, buf, REPO_KEY_BYTES);
		rc = 0;
	} else {
		why = "neither 64 hex digits nor 32 raw bytes";
	}
	if (rc == 0 && key_is_flat(out->b)) {
		rc = -EINVAL;
		why = "key bytes are all equal; use the key 'godwit repo init' wrote";
	}
	if (rc < 0) {
		snprintf(err, errlen, "key file %s: %s", path, why);
		repo_key_wipe(out);
	}
out_wipe:
	OPENSSL_cleanse(buf, sizeof(buf));
	return rc;
}

int repo_key_write(const struct repo_key *k, const char *path, char *err, size_t errlen)
{
	static const char digits[] = "0123456789abcdef";
	char text[2 * REPO_KEY_BYTES + 1];
	int rc;

	for (size_t i = 0; i < REPO_KEY_BYTES; i++) {
		text[2 * i] = digits[k->b[i] >> 4];
		text[2 * i + 1] = digits[k->b[i] & 15];
	}
	text[2 * REPO_KEY_BYTES] = '\n';
	/* The umask may only have narrowed 0600; DURABLE_EXACT_MODE makes sure nothing widened it. */
	rc = durable_publish(AT_FDCWD, path, text, sizeof(text), 0600,
			     DURABLE_NOREPLACE | DURABLE_EXACT_MODE);
	if (rc == -EEXIST)
		snprintf(err, errlen, "key file %s exists already: refusing to overwrite it", path);
	else if (rc < 0)
		snprintf(err, errlen, "write key file %s: %s", path, strerror(-rc));
	OPENSSL_cleanse(text, sizeof(text));
	return rc;
}

int repo_key_derive(const struct repo_key *k, const uint8_t salt[REPO_KEY_SALT_BYTES],
		    const char *label, uint8_t out[32])
{
	int rc = kdf_hkdf_sha256(out, 32, k->b, REPO_KEY_BYTES, salt, REPO_KEY_SALT_BYTES, label,
				 strlen(label));

	return rc < 0 ? -EIO : 0;
}

void repo_key_wipe(struct repo_key *k)
{
	OPENSSL_cleanse(k->b, sizeof(k->b));
}
