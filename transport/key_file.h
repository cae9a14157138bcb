/*
 * Secret key files (TLS pre-shared keys, repository keys): strict reading and the hex
 * text form. The callers decide the key's size and derive from it.
 */
#ifndef TRANSPORT_KEY_FILE_H
#define TRANSPORT_KEY_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * Read up to cap bytes of the key file at path into buf (*n gets the count; a file of cap
 * bytes or more is larger than any key when cap is one more than the largest form).
 * Refuses what is not a regular file and a file others may read (-EPERM, "chmod 600 it").
 * Errors are -errno with a one-line reason that starts with what ("psk file") and path.
 * buf may hold part of the secret on failure too: the caller wipes it.
 */
int key_file_read(const char *path, const char *what, uint8_t *buf, size_t cap, size_t *n,
		  char *err, size_t errlen);

/* Whether p[0..n) is hex text: hex digits and white space only. */
bool key_file_is_hex(const uint8_t *p, size_t n);

/*
 * Decode hex text (one trailing "\n" or "\r\n" allowed) into out, at most cap bytes.
 * Returns the byte count; -EINVAL with *at the offset of a character that is not a hex
 * digit; -ERANGE with *at the digit count when it is odd or over 2 * cap.
 */
ssize_t key_file_decode_hex(const uint8_t *p, size_t n, uint8_t *out, size_t cap, size_t *at);

#endif
