/* Secret key files: see key_file.h. */
#include "transport/key_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

bool key_file_is_hex(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (hexval(p[i]) < 0 && p[i] != '\n' && p[i] != '\r' && p[i] != ' ' && p[i] != '\t')
			return false;
	return true;
}

ssize_t key_file_decode_hex(const uint8_t *p, size_t n, uint8_t *out, size_t cap, size_t *at)
{
	size_t digits = n;

	if (digits >= 2 && p[digits - 2] == '\r' && p[digits - 1] == '\n')
		digits -= 2;
	else if (digits >= 1 && p[digits - 1] == '\n')
		digits -= 1;
	for (size_t i = 0; i < digits; i++) {
		if (hexval(p[i]) < 0) {
			*at = i;
			return -EINVAL;
		}
	}
	if (digits % 2 || digits / 2 > cap) {
		*at = digits;
		return -ERANGE;
	}
	for (size_t i = 0; i < digits / 2; i++)
		out[i] = (uint8_t)(hexval(p[2 * i]) << 4 | hexval(p[2 * i + 1]));
	return (ssize_t)(digits / 2);
}

int key_file_read(const char *path, const char *what, uint8_t *buf, size_t cap, size_t *n,
		  char *err, size_t errlen)
{
	struct stat st;
	int fd, rc = 0;

	*n = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s %s: %s", what, path, strerror(-rc));
		return rc;
	}
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s %s: stat: %s", what, path, strerror(-rc));
	} else if (!S_ISREG(st.st_mode)) {
		rc = -EINVAL;
		snprintf(err, errlen, "%s %s: not a regular file", what, path);
	} else if (st.st_mode & 077) {
		rc = -EPERM;
		snprintf(err, errlen, "%s %s: mode %04o lets others read the key; chmod 600 it",
			 what, path, (unsigned)(st.st_mode & 07777));
	}
	while (rc == 0 && *n < cap) {
		ssize_t r = read(fd, buf + *n, cap - *n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = -errno;
			snprintf(err, errlen, "%s %s: read: %s", what, path, strerror(-rc));
		}
		if (r <= 0)
			break;
		*n += (size_t)r;
	}
	close(fd);
	return rc;
}
