/* Pre-shared keys for TLS 1.3 external-PSK mode: the key file format and its loader. */
#ifndef TRANSPORT_TLS_PSK_H
#define TRANSPORT_TLS_PSK_H

#include <stddef.h>
#include <stdint.h>

/*
 * PSK file format (version 1). The file holds one secret of 32..64 bytes, either
 *
 *   hex   64..128 hex digits (an even count, either case) optionally followed by one
 *         line end ("\n" or "\r\n"); what `openssl rand -hex 32 > psk` writes; or
 *   raw   32..64 bytes of binary; what `head -c 32 /dev/urandom > psk` writes.
 *
 * A file made only of hex digits and whitespace is always read as hex and must then be
 * valid hex; raw is taken only when some byte is outside that set, so a mangled hex file
 * is refused instead of being used as a raw key. The file must be a regular file that
 * group and others cannot access (mode 0600 or 0400), like an ssh private key, and a
 * secret whose bytes are all equal is refused.
 *
 * Both ends derive the TLS key from the secret the same way:
 *   psk = HKDF-SHA256(ikm = secret, salt = none, info = TLS_PSK_HKDF_INFO), 48 bytes,
 * the hash size of TLS_AES_256_GCM_SHA384, the one suite PSK mode uses. Changing the
 * file format or the derivation requires a new TLS_PSK_HKDF_INFO version.
 */
#define TLS_PSK_BYTES 48
#define TLS_PSK_SECRET_MIN 32
#define TLS_PSK_SECRET_MAX 64
#define TLS_PSK_HKDF_INFO "godwit tls13 external psk v1"

/* The derived TLS 1.3 external PSK. Wipe with tls_psk_wipe when done. */
struct tls_psk {
	uint8_t key[TLS_PSK_BYTES];
};

/*
 * Load and derive a PSK from the file at path (out, path, err, err_len). On failure err
 * gets one line naming the problem and the fix. Returns 0; -ENOENT, -EACCES, ... from
 * open; -EPERM when group or others can access the file; -EINVAL for a file that is not
 * regular, the wrong size, bad hex, or a degenerate key; -EIO.
 */
int tls_psk_load(struct tls_psk *out, const char *path, char *err, size_t err_len);

/*
 * Derive a PSK from secret bytes held in memory (out, secret, len), 32..64 bytes as for
 * the file. Returns 0, -EINVAL or -EIO.
 */
int tls_psk_from_secret(struct tls_psk *out, const void *secret, size_t len);

/* Erase a PSK (psk). */
void tls_psk_wipe(struct tls_psk *psk);

#endif
