/* Encryption at rest: an AES-256-GCM chunked stream layer, one-shot seal/open, key derivation. */
#include "transport/aead_stream.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "util/byteorder.h"
#include "transport/kdf.h"
#include "transport/mem_stream.h"

#define AEAD_DERIVED_BYTES (AEAD_KEY_BYTES + AEAD_NONCE_PREFIX_BYTES + AEAD_CHECK_BYTES)

/* State shared by both directions. */
struct aead_stream {
	struct stream base;
	struct stream *lower;
	EVP_CIPHER_CTX *ctx;
	uint8_t header[AEAD_HEADER_BYTES];
	uint8_t prefix[AEAD_NONCE_PREFIX_BYTES];
	uint64_t index;     /* the next chunk's index */
	uint32_t chunk_bytes;
	bool final_seen;    /* reader: the FINAL chunk verified */
	size_t pt_pos;      /* reader: next unread byte in pt */
	size_t pt_len;      /* bytes held in pt */
	uint8_t *pt;        /* chunk_bytes of plaintext */
	uint8_t *ct;        /* word || ciphertext || tag */
};

static void aead_nonce(const struct aead_stream *a, uint8_t nonce[AEAD_NONCE_BYTES])
{
	memcpy(nonce, a->prefix, AEAD_NONCE_PREFIX_BYTES);
	le64_encode(nonce + AEAD_NONCE_PREFIX_BYTES, a->index);
}

static void aead_aad(const struct aead_stream *a, uint8_t *aad, const uint8_t *word)
{
	memcpy(aad, a->header, AEAD_HEADER_BYTES);
	memcpy(aad + AEAD_HEADER_BYTES, word, AEAD_CHUNK_WORD_BYTES);
}

/*
 * Derive the stream key, nonce prefix and key check from key and the header's salt,
 * and key the cipher context for encrypt (enc = 1) or decrypt (enc = 0). check gets the
 * key check for the caller to write or compare.
 */
static int aead_keying(struct aead_stream *a, const uint8_t *key, int enc,
		       uint8_t check[AEAD_CHECK_BYTES])
{
	uint8_t d[AEAD_DERIVED_BYTES];
	EVP_CIPHER *cipher;
	int rc;

	rc = kdf_hkdf_sha256(d, sizeof(d), key, AEAD_KEY_BYTES, a->header + 12, AEAD_SALT_BYTES,
			     AEAD_HKDF_INFO, strlen(AEAD_HKDF_INFO));
	if (rc < 0)
		return rc;
	memcpy(a->prefix, d + AEAD_KEY_BYTES, AEAD_NONCE_PREFIX_BYTES);
	memcpy(check, d + AEAD_KEY_BYTES + AEAD_NONCE_PREFIX_BYTES, AEAD_CHECK_BYTES);
	rc = -EIO;
	cipher = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
	a->ctx = EVP_CIPHER_CTX_new();
	if (cipher && a->ctx && EVP_CipherInit_ex2(a->ctx, cipher, d, NULL, enc, NULL) == 1)
		rc = 0;
	EVP_CIPHER_free(cipher);
	OPENSSL_cleanse(d, sizeof(d));
	return rc;
}

static struct aead_stream *aead_alloc(const struct stream_ops *ops, struct stream *lower,
				      uint32_t chunk_bytes)
{
	struct aead_stream *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	stream_init(&a->base, ops);
	a->lower = lower;
	a->chunk_bytes = chunk_bytes;
	a->pt = malloc(chunk_bytes);
	a->ct = malloc(AEAD_CHUNK_WORD_BYTES + (size_t)chunk_bytes + AEAD_TAG_BYTES);
	if (!a->pt || !a->ct) {
		free(a->pt);
		free(a->ct);
		free(a);
		return NULL;
	}
	return a;
}

/* Free without touching lower: wipe plaintext and key schedule. */
static void aead_free(struct aead_stream *a)
{
	OPENSSL_cleanse(a->pt, a->chunk_bytes);
	OPENSSL_cleanse(a->prefix, sizeof(a->prefix));
	free(a->pt);
	free(a->ct);
	EVP_CIPHER_CTX_free(a->ctx);
	free(a);
}

/* Seal pt[0, pt_len) as the next chunk and send it down. */
static int aead_seal_chunk(struct aead_stream *a, bool final)
{
	uint8_t nonce[AEAD_NONCE_BYTES], aad[AEAD_HEADER_BYTES + AEAD_CHUNK_WORD_BYTES];
	uint8_t *word = a->ct, *ct = a->ct + AEAD_CHUNK_WORD_BYTES;
	uint8_t *tag = ct + a->pt_len;
	int n, fin;

	if (a->index == UINT64_MAX)
		return -EOVERFLOW;
	le32_encode(word, (uint32_t)a->pt_len | (final ? AEAD_CHUNK_FINAL : 0));
	aead_nonce(a, nonce);
	aead_aad(a, aad, word);
	if (EVP_EncryptInit_ex2(a->ctx, NULL, NULL, nonce, NULL) != 1 ||
	    EVP_EncryptUpdate(a->ctx, NULL, &n, aad, sizeof(aad)) != 1 ||
	    EVP_EncryptUpdate(a->ctx, ct, &n, a->pt, (int)a->pt_len) != 1 ||
	    EVP_EncryptFinal_ex(a->ctx, ct + n, &fin) != 1 ||
	    EVP_CIPHER_CTX_ctrl(a->ctx, EVP_CTRL_GCM_GET_TAG, AEAD_TAG_BYTES, tag) != 1)
		return -EIO;
	a->index++;
	n = stream_write_all(a->lower, a->ct, AEAD_CHUNK_WORD_BYTES + a->pt_len + AEAD_TAG_BYTES);
	a->pt_len = 0;
	return n;
}

static int aead_writer_write(struct stream *s, const void *buf, size_t len)
{
	struct aead_stream *a = STREAM_CONTAINER(s, struct aead_stream, base);
	const uint8_t *p = buf;
	int rc;

	while (len) {
		size_t take;

		/* A full chunk is sealed only when more data follows, so the last one can be FINAL. */
		if (a->pt_len == a->chunk_bytes) {
			rc = aead_seal_chunk(a, false);
			if (rc < 0)
				return rc;
		}
		take = a->chunk_bytes - a->pt_len;
		if (take > len)
			take = len;
		memcpy(a->pt + a->pt_len, p, take);
		a->pt_len += take;
		p += take;
		len -= take;
	}
	return 0;
}

static int aead_writer_flush(struct stream *s)
{
	struct aead_stream *a = STREAM_CONTAINER(s, struct aead_stream, base);
	int rc;

	if (a->pt_len) {
		rc = aead_seal_chunk(a, false);
		if (rc < 0)
			return rc;
	}
	return stream_flush(a->lower);
}

static int aead_writer_close(struct stream *s, bool commit)
{
	struct aead_stream *a = STREAM_CONTAINER(s, struct aead_stream, base);
	int rc = 0, rc2;

	if (commit)
		rc = aead_seal_chunk(a, true);
	rc2 = stream_close(a->lower, commit && rc == 0);
	aead_free(a);
	return rc < 0 ? rc : rc2;
}

static const struct stream_ops aead_writer_ops = {
	.write = aead_writer_write,
	.flush = aead_writer_flush,
	.close = aead_writer_close,
};

int aead_writer_open(struct stream **out, struct stream *lower, const uint8_t key[AEAD_KEY_BYTES])
{
	struct aead_stream *a;
	uint8_t *h;
	int rc;

	a = aead_alloc(&aead_writer_ops, lower, AEAD_CHUNK_BYTES);
	if (!a)
		return -ENOMEM;
	h = a->header;
	memcpy(h, AEAD_MAGIC, 4);
	le16_encode(h + 4, AEAD_FORMAT_VERSION);
	le16_encode(h + 6, AEAD_CIPHER_AES_256_GCM);
	le32_encode(h + 8, AEAD_CHUNK_BYTES);
	if (RAND_bytes(h + 12, AEAD_SALT_BYTES) != 1) {
		rc = -EIO;
		goto err_free;
	}
	rc = aead_keying(a, key, 1, h + 12 + AEAD_SALT_BYTES);
	if (rc < 0)
		goto err_free;
	rc = stream_write_all(lower, h, AEAD_HEADER_BYTES);
	if (rc < 0)
		goto err_free;
	*out = &a->base;
	return 0;
err_free:
	aead_free(a);
	return rc;
}

/* Read, verify and decrypt the next chunk into pt. 0 or a (sticky) error. */
static int aead_open_chunk(struct aead_stream *a)
{
	uint8_t nonce[AEAD_NONCE_BYTES], aad[AEAD_HEADER_BYTES + AEAD_CHUNK_WORD_BYTES];
	uint8_t *word = a->ct, *ct = a->ct + AEAD_CHUNK_WORD_BYTES;
	uint32_t v, n;
	int out, fin, rc;

	rc = stream_read_all(a->lower, word, AEAD_CHUNK_WORD_BYTES);
	if (rc < 0)
		return rc == -ENODATA ? -EPROTO : rc;
	v = le32_decode(word);
	n = v & ~AEAD_CHUNK_FINAL;
	if (v == 0)
		return -EBADMSG;
	if (n > a->chunk_bytes)
		return -EMSGSIZE;
	rc = stream_read_all(a->lower, ct, (size_t)n + AEAD_TAG_BYTES);
	if (rc < 0)
		return rc == -ENODATA ? -EPROTO : rc;
	if (a->index == UINT64_MAX)
		return -EOVERFLOW;
	aead_nonce(a, nonce);
	aead_aad(a, aad, word);
	if (EVP_DecryptInit_ex2(a->ctx, NULL, NULL, nonce, NULL) != 1 ||
	    EVP_DecryptUpdate(a->ctx, NULL, &out, aad, sizeof(aad)) != 1 ||
	    EVP_DecryptUpdate(a->ctx, a->pt, &out, ct, (int)n) != 1 ||
	    EVP_CIPHER_CTX_ctrl(a->ctx, EVP_CTRL_GCM_SET_TAG, AEAD_TAG_BYTES, ct + n) != 1)
		return -EIO;
	if (EVP_DecryptFinal_ex(a->ctx, a->pt + out, &fin) != 1) {
		/* Never let unverified plaintext out. */
		OPENSSL_cleanse(a->pt, n);
		return -EBADMSG;
	}
	a->index++;
	a->pt_pos = 0;
	a->pt_len = n;
	a->final_seen = (v & AEAD_CHUNK_FINAL) != 0;
	return a->final_seen ? stream_expect_end(a->lower) : 0;
}

static int aead_reader_read(struct stream *s, void *buf, size_t len)
{
	struct aead_stream *a = STREAM_CONTAINER(s, struct aead_stream, base);
	uint8_t *p = buf;
	size_t got = 0;
	int rc;

	while (got < len) {
		size_t take = a->pt_len - a->pt_pos;

		if (take == 0) {
			if (a->final_seen)
				return got ? -EPROTO : -ENODATA;
			rc = aead_open_chunk(a);
			if (rc < 0)
				return rc;
			continue;
		}
		if (take > len - got)
			take = len - got;
		memcpy(p + got, a->pt + a->pt_pos, take);
		a->pt_pos += take;
		got += take;
	}
	return 0;
}

static int aead_reader_close(struct stream *s, bool commit)
{
	struct aead_stream *a = STREAM_CONTAINER(s, struct aead_stream, base);
	int rc = stream_close(a->lower, commit);

	aead_free(a);
	return rc;
}

static const struct stream_ops aead_reader_ops = {
	.read = aead_reader_read,
	.close = aead_reader_close,
};

int aead_reader_open(struct stream **out, struct stream *lower, const uint8_t key[AEAD_KEY_BYTES])
{
	uint8_t h[AEAD_HEADER_BYTES], check[AEAD_CHECK_BYTES];
	struct aead_stream *a;
	uint32_t chunk_bytes;
	int rc;

	rc = stream_read_all(lower, h, sizeof(h));
	if (rc < 0)
		return rc == -ENODATA ? -EPROTO : rc;
	if (memcmp(h, AEAD_MAGIC, 4) != 0)
		return -ENOMSG;
	if (le16_decode(h + 4) != AEAD_FORMAT_VERSION || le16_decode(h + 6) != AEAD_CIPHER_AES_256_GCM)
		return -EPROTONOSUPPORT;
	chunk_bytes = le32_decode(h + 8);
	if (chunk_bytes == 0 || chunk_bytes > AEAD_MAX_CHUNK)
		return -EMSGSIZE;
	a = aead_alloc(&aead_reader_ops, lower, chunk_bytes);
	if (!a)
		return -ENOMEM;
	memcpy(a->header, h, sizeof(h));
	rc = aead_keying(a, key, 0, check);
	if (rc == 0 && CRYPTO_memcmp(check, h + 12 + AEAD_SALT_BYTES, AEAD_CHECK_BYTES) != 0)
		rc = -EKEYREJECTED;
	OPENSSL_cleanse(check, sizeof(check));
	if (rc < 0) {
		aead_free(a);
		return rc;
	}
	*out = &a->base;
	return 0;
}

int aead_seal(void **out, size_t *out_len, const uint8_t key[AEAD_KEY_BYTES], const void *plain,
	      size_t len)
{
	struct stream *mem, *s;
	struct mem_buf buf;
	int rc;

	rc = mem_stream_writer(&mem, &buf, MEM_STREAM_UNLIMITED);
	if (rc < 0)
		return rc;
	rc = aead_writer_open(&s, mem, key);
	if (rc < 0) {
		stream_close(mem, false);
		return rc;
	}
	stream_write_all(s, plain, len);
	rc = stream_close(s, true);
	if (rc < 0)
		return rc;
	*out = buf.data ? (void *)buf.data : malloc(1);
	*out_len = buf.len;
	return *out ? 0 : -ENOMEM;
}

int aead_open(void **out, size_t *out_len, const uint8_t key[AEAD_KEY_BYTES], const void *sealed,
	      size_t len)
{
	struct aead_stream *a;
	struct stream *mem, *s;
	uint8_t *plain, *p;
	size_t plain_len = 0;
	int rc;

	rc = mem_stream_reader(&mem, sealed, len);
	if (rc < 0)
		return rc;
	rc = aead_reader_open(&s, mem, key);
	if (rc < 0) {
		stream_close(mem, false);
		return rc;
	}
	a = STREAM_CONTAINER(s, struct aead_stream, base);
	/* Plaintext is never longer than the sealed object. */
	plain = malloc(len ? len : 1);
	if (!plain) {
		stream_close(s, false);
		return -ENOMEM;
	}
	while (!a->final_seen) {
		rc = aead_open_chunk(a);
		if (rc < 0)
			break;
		memcpy(plain + plain_len, a->pt, a->pt_len);
		plain_len += a->pt_len;
	}
	stream_close(s, false);
	if (rc < 0) {
		OPENSSL_cleanse(plain, plain_len);
		free(plain);
		return rc;
	}
	p = realloc(plain, plain_len ? plain_len : 1);
	*out = p ? p : plain;
	*out_len = plain_len;
	return 0;
}

int aead_derive_key(uint8_t out[AEAD_KEY_BYTES], const void *master, size_t master_len,
		    const char *label)
{
	return kdf_hkdf_sha256(out, AEAD_KEY_BYTES, master, master_len, NULL, 0, label,
			       strlen(label));
}
