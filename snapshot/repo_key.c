/* Repository key files: random creation, durable O_EXCL writing, strict loading, HKDF derivation. */
#include "snapshot/repo_key.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "transport/kdf.h"

/* The largest file worth reading: 64 hex digits and "\r\n", with room to spot excess. */
#define REPO_KEY_FILE_MAX 128

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool is_text(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (hexval(p[i]) < 0 && p[i] != '\n' && p[i] != '\r' && p[i] != ' ' && p[i] != '\t')
			return false;
	return true;
}

/* Decode the hex form (p, n, out, why); returns 0 or -EINVAL with a static reason. */
static int decode_hex(const uint8_t *p, size_t n, uint8_t out[REPO_KEY_BYTES], const char **why)
{
	size_t digits = n;

	if (digits >= 2 && p[digits - 2] == '\r' && p[digits - 1] == '\n')
		digits -= 2;
	else if (digits >= 1 && p[digits - 1] == '\n')
		digits -= 1;
	for (size_t i = 0; i < digits; i++) {
		if (hexval(p[i]) < 0) {
			*why = "hex key has a character that is not a hex digit";
			return -EINVAL;
		}
	}
	if (digits != 2 * REPO_KEY_BYTES) {
		*why = "hex key must be exactly 64 hex digits (32 bytes)";
		return -EINVAL;
	}
	for (size_t i = 0; i < REPO_KEY_BYTES; i++)
		out[i] = (uint8_t)(hexval(p[2 * i]) << 4 | hexval(p[2 * i + 1]));
	return 0;
}

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

static int read_all(int fd, uint8_t *buf, size_t cap, size_t *n)
{
	*n = 0;
	while (*n < cap) {
		ssize_t r = read(fd, buf + *n, cap - *n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		*n += (size_t)r;
	}
	return 0;
}

int repo_key_load(struct repo_key *out, const char *path, char *err, size_t errlen)
{
	uint8_t buf[REPO_KEY_FILE_MAX + 1];
	const char *why = NULL;
	struct stat st;
	size_t n = 0;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "key file %s: %s", path, strerror(-rc));
		return rc;
	}
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		snprintf(err, errlen, "key file %s: stat: %s", path, strerror(-rc));
		goto out_close;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = -EINVAL;
		snprintf(err, errlen, "key file %s: not a regular file", path);
		goto out_close;
	}
	if (st.st_mode & 077) {
		rc = -EPERM;
		snprintf(err, errlen, "key file %s: mode %04o lets others read the key; chmod 600 it",
			 path, (unsigned)(st.st_mode & 07777));
		goto out_close;
	}
	rc = read_all(fd, buf, sizeof(buf), &n);
	if (rc < 0) {
		snprintf(err, errlen, "key file %s: read: %s", path, strerror(-rc));
		goto out_wipe;
	}
	rc = -EINVAL;
	if (n > REPO_KEY_FILE_MAX) {
		why = "too large for a repository key";
	} else if (is_text(buf, n)) {
		rc = decode_hex(buf, n, out->b, &why);
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
out_close:
	close(fd);
	return rc;
}

/* fsync the directory holding path, so the new file's name is durable too (path). */
static int fsync_parent(const char *path)
{
	char copy[PATH_MAX];
	int fd, rc = 0;

	if (snprintf(copy, sizeof(copy), "%s", path) >= (int)sizeof(copy))
		return -ENAMETOOLONG;
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

int repo_key_write(const struct repo_key *k, const char *path, char *err, size_t errlen)
{
	static const char digits[] = "0123456789abcdef";
	char text[2 * REPO_KEY_BYTES + 1];
	size_t off = 0;
	int fd, rc = 0;

	for (size_t i = 0; i < REPO_KEY_BYTES; i++) {
		text[2 * i] = digits[k->b[i] >> 4];
		text[2 * i + 1] = digits[k->b[i] & 15];
	}
	text[2 * REPO_KEY_BYTES] = '\n';
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		rc = -errno;
		if (rc == -EEXIST)
			snprintf(err, errlen, "key file %s exists already: refusing to overwrite it",
				 path);
		else
			snprintf(err, errlen, "create key file %s: %s", path, strerror(-rc));
		goto out_wipe;
	}
	/* The umask may only have narrowed 0600; make sure nothing else widened it. */
	if (fchmod(fd, 0600) < 0)
		rc = -errno;
	while (rc == 0 && off < sizeof(text)) {
		ssize_t w = write(fd, text + off, sizeof(text) - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			rc = -errno;
		else
			off += (size_t)w;
	}
	if (rc == 0 && fsync(fd) < 0)
		rc = -errno;
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc == 0)
		rc = fsync_parent(path);
	if (rc < 0) {
		snprintf(err, errlen, "write key file %s: %s", path, strerror(-rc));
		unlink(path);
	}
out_wipe:
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
