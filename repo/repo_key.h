/* The repository key: the key file format, loading and creating it, and deriving per-purpose keys. */
#ifndef REPO_REPO_KEY_H
#define REPO_REPO_KEY_H

#include <stddef.h>
#include <stdint.h>

/*
 * An encrypted repository has one random 32-byte master key, created by `godwit repo
 * init --key-file FILE` and kept by the user, never in the repository (which is what
 * goes to S3). Every key the repository uses is derived from it, with the config's
 * random key_salt, so two repositories sharing a key file still share no derived key:
 *
 *    k = HKDF-SHA256(ikm = master key, salt = config key_salt, info = label), 32 bytes
 *
 *    label                      use
 *    REPO_KDF_ID_LABEL          HMAC-SHA256 key of blob ids (ids say nothing about
 *                               content to anyone without the key)
 *    REPO_KDF_DATA_LABEL        AES-256-GCM key of blob payloads in packs
 *    REPO_KDF_META_LABEL        AES-256-GCM key of pack trailers, index files and
 *                               manifests
 *    REPO_KDF_CHECK_LABEL       the key check stored in the config: a wrong key file is
 *                               told apart from a damaged repository
 *    REPO_KDF_CONFIG_LABEL      HMAC-SHA256 key authenticating the (plaintext) config
 *
 * Changing a label or the derivation requires a new label version ("v1") and a
 * REPO_CONFIG_FORMAT_VERSION bump.
 *
 * Key file format (version 1), like a TLS PSK file (transport/tls_psk.h) but exactly 32
 * bytes: either
 *   hex   64 hex digits (either case) and optionally one line end ("\n" or "\r\n");
 *         what repo_key_write writes and `openssl rand -hex 32` prints; or
 *   raw   32 bytes of binary.
 * A file of hex digits and whitespace only is always read as hex and must be valid hex.
 * The file must be a regular file that group and others cannot access (0600 or 0400),
 * and a key whose bytes are all equal is refused.
 */
#define REPO_KEY_BYTES 32
#define REPO_KEY_SALT_BYTES 32
#define REPO_KEY_CHECK_BYTES 32

#define REPO_KDF_ID_LABEL "godwit repo v1 blob id"
#define REPO_KDF_DATA_LABEL "godwit repo v1 blob data"
#define REPO_KDF_META_LABEL "godwit repo v1 metadata"
#define REPO_KDF_CHECK_LABEL "godwit repo v1 key check"
#define REPO_KDF_CONFIG_LABEL "godwit repo v1 config mac"

/* A repository master key. Wipe with repo_key_wipe when done. */
struct repo_key {
	uint8_t b[REPO_KEY_BYTES];
};

/* A fresh random key (out). Returns 0 or -EIO when no randomness is available. */
int repo_key_generate(struct repo_key *out);

/*
 * Load a key file (out, path, err, errlen). On failure err gets one line naming the file,
 * the problem and the fix. Returns 0; -ENOENT, -EACCES, ... from open; -EPERM when group
 * or others can access the file; -EINVAL for a file that is not regular, the wrong size,
 * bad hex or a degenerate key.
 */
int repo_key_load(struct repo_key *out, const char *path, char *err, size_t errlen);

/*
 * Write k to a new key file at path in the hex form (k, path, err, errlen): created with
 * O_EXCL and mode 0600, never replacing anything, fsync'ed with its directory before this
 * returns, so a repository is never made whose key is not durable. A partly written file
 * is removed. Returns 0; -EEXIST when path exists; or a system error with err set.
 */
int repo_key_write(const struct repo_key *k, const char *path, char *err, size_t errlen);

/*
 * Derive the 32-byte key for label (k, salt, label, out) as described above. Returns 0
 * or -EIO.
 */
int repo_key_derive(const struct repo_key *k, const uint8_t salt[REPO_KEY_SALT_BYTES],
		    const char *label, uint8_t out[32]);

/* Erase k (k). */
void repo_key_wipe(struct repo_key *k);

#endif
