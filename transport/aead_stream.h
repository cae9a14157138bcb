/* Encryption at rest: an AES-256-GCM chunked stream layer, one-shot seal/open, key derivation. */
#ifndef TRANSPORT_AEAD_STREAM_H
#define TRANSPORT_AEAD_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "transport/stream.h"

/*
 * Wire format. Changing anything here requires an AEAD_FORMAT_VERSION bump.
 * All integers are little-endian.
 *
 * Header, once (76 bytes):
 *
 *    0        4         6        8             12           44            76
 *    +--------+---------+--------+-------------+------------+-------------+
 *    | "GWAE" | version | cipher | chunk_bytes | salt (32)  | key check   |
 *    +--------+---------+--------+-------------+------------+-------------+
 *
 *    cipher       1 = AES-256-GCM (0 is invalid)
 *    chunk_bytes  plaintext bytes in a full chunk, 1..AEAD_MAX_CHUNK (writer: 64 KiB)
 *    salt         random per stream
 *    key check    see below; a wrong key is reported before any chunk is tried
 *
 * HKDF-SHA256(ikm = the caller's 32-byte key, salt = salt, info = AEAD_HKDF_INFO) gives
 * 68 bytes: the stream's AES key (32), a nonce prefix (4) and the key check (32). A fresh
 * salt means a fresh key per stream, so chunk counters can never repeat a (key, nonce)
 * pair across streams; the key check also makes the scheme key-committing.
 *
 * Then chunks:
 *
 *    0        4                        4+n        4+n+16
 *    +--------+========================+----------+
 *    | word   | ciphertext (n)         | tag (16) |
 *    +--------+========================+----------+
 *
 *    word   bit 31 FINAL, bits 0..30 n <= chunk_bytes; 0 is invalid (only the FINAL
 *           chunk may be empty)
 *    nonce  nonce prefix (4) || chunk index as u64 (8), index from 0, never reused
 *    AAD    the whole header (76) || word (4)
 *
 * Reordered, dropped or duplicated chunks fail their tag (index), so does a header
 * edit (AAD) and a flipped FINAL bit (AAD); a stream cut at a chunk boundary lacks the
 * FINAL chunk. The stream below must end right after the FINAL chunk; trailing bytes are
 * rejected (-EBADMSG).
 */
#define AEAD_FORMAT_VERSION 1
#define AEAD_MAGIC "GWAE"
#define AEAD_CIPHER_AES_256_GCM 1
#define AEAD_KEY_BYTES 32
#define AEAD_SALT_BYTES 32
#define AEAD_CHECK_BYTES 32
#define AEAD_NONCE_PREFIX_BYTES 4
#define AEAD_NONCE_BYTES 12
#define AEAD_TAG_BYTES 16
#define AEAD_HEADER_BYTES 76
#define AEAD_CHUNK_WORD_BYTES 4
#define AEAD_CHUNK_FINAL 0x80000000u
#define AEAD_CHUNK_BYTES (64u * 1024)
#define AEAD_MAX_CHUNK (1u << 20)
#define AEAD_HKDF_INFO "godwit aead v1 AES-256-GCM"

_Static_assert(AEAD_HEADER_BYTES == 4 + 2 + 2 + 4 + AEAD_SALT_BYTES + AEAD_CHECK_BYTES, "header");
_Static_assert(AEAD_NONCE_BYTES == AEAD_NONCE_PREFIX_BYTES + 8, "nonce = prefix || index");
_Static_assert(AEAD_MAX_CHUNK < AEAD_CHUNK_FINAL && AEAD_CHUNK_BYTES <= AEAD_MAX_CHUNK, "word");

/*
 * Open an encrypting writer over lower (out, lower, key) and write the header. Plaintext
 * collects into 64 KiB chunks; stream_flush seals the partial chunk (so a reader can
 * decrypt all written so far) and flushes lower; stream_close(s, true) seals the FINAL
 * chunk. key is copied and wiped at close. Returns 0, -ENOMEM, -EIO (no randomness or
 * OpenSSL failure) or lower's error. Owns lower on success.
 */
int aead_writer_open(struct stream **out, struct stream *lower, const uint8_t key[AEAD_KEY_BYTES]);

/*
 * Open a decrypting reader over lower (out, lower, key) and check the header. Reads
 * return only plaintext whose chunk tag has been verified, never unauthenticated bytes.
 * Open returns 0; -EPROTO (input too short); -ENOMSG (bad magic); -EPROTONOSUPPORT
 * (version or cipher); -EMSGSIZE (chunk_bytes out of range); -EKEYREJECTED (the key check
 * differs: wrong key); -ENOMEM; or lower's error. Reads fail with -EBADMSG (tag mismatch:
 * bit flip, reordering, wrong chunk), -EMSGSIZE (chunk over chunk_bytes) or -EPROTO
 * (truncated, including a missing FINAL chunk). Owns lower on success.
 */
int aead_reader_open(struct stream **out, struct stream *lower, const uint8_t key[AEAD_KEY_BYTES]);

/*
 * Encrypt a small object in one call (out, out_len, key, plain, len) into the stream
 * format above; *out is malloc'd and the caller frees it. Returns 0, -ENOMEM or -EIO.
 */
int aead_seal(void **out, size_t *out_len, const uint8_t key[AEAD_KEY_BYTES], const void *plain,
	      size_t len);

/*
 * Decrypt and verify a sealed object (out, out_len, key, sealed, len); *out is malloc'd
 * (non-NULL even when empty) and the caller frees it. Nothing is returned unless the
 * whole object verifies. Returns 0, the codes of aead_reader_open and its reads, or
 * -ENOMEM.
 */
int aead_open(void **out, size_t *out_len, const uint8_t key[AEAD_KEY_BYTES], const void *sealed,
	      size_t len);

/*
 * Derive a 32-byte key for one purpose from a master secret (out, master, master_len,
 * label), HKDF-SHA256 with no salt and info = label, so that one master key can serve
 * backups and other uses without reusing a key. Returns 0, -EINVAL or -EIO.
 */
int aead_derive_key(uint8_t out[AEAD_KEY_BYTES], const void *master, size_t master_len,
		    const char *label);

#endif
