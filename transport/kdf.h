/* HKDF-SHA256 key derivation (RFC 5869) through OpenSSL's EVP_KDF. */
#ifndef TRANSPORT_KDF_H
#define TRANSPORT_KDF_H

#include <stddef.h>
#include <stdint.h>

/*
 * Derive out_len bytes into out from the input keying material (out, out_len, ikm,
 * ikm_len, salt, salt_len, info, info_len). salt may be NULL with salt_len 0 (HKDF then
 * uses a zero salt); ikm_len must be > 0 and out_len at most 255 * 32. Returns 0, -EINVAL
 * or -EIO (OpenSSL failure).
 */
int kdf_hkdf_sha256(uint8_t *out, size_t out_len, const void *ikm, size_t ikm_len,
		    const void *salt, size_t salt_len, const void *info, size_t info_len);

#endif
