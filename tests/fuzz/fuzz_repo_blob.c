/* Fuzz the repository's read path: config, index files into the blob table, and blob reads from packs. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "repo/backend.h"
#include "repo/index_file.h"
#include "repo/repo.h"
#include "repo/repo_config.h"
#include "repo/repo_priv.h"
#include "repo/verify.h"
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/fuzz_repo.h"
#include "util/byteorder.h"
#include "util/crc32c.h"

/*
 * Input: flags (u8), then three parts, each but the last with a u32 length in front:
 *   config       the repository's config object;
 *   index body   an index file's body (body head and pack groups), plaintext;
 *   pack         the bytes of the pack file the index's first group names.
 * The harness writes them as a repository in a scratch directory, opens it (config and
 * index decode, blob table), reads every blob the table holds (range read, record
 * check, unseal, decompress, id check) and runs repo_verify with read_data. Fix-ups, so
 * that mutations reach the checks behind the sums:
 *   - the config's SHA-256, and for an encrypted one its key check and MAC under the fixed
 *     key (unless flags bit 1: then a mutated config meets its authentication);
 *   - every entry's CRC32C (and a plaintext record header's) over the bytes it points at;
 *   - the first group's pack id (the SHA-256 of the pack, its name) and, unless flags bit 0,
 *     its size;
 *   - the index is sealed under the config's keys when the config says encrypted, and
 *     gets its SHA-256 and its name.
 */

/* The config with its sums fixed (cfg, len, flags, c_out). Returns 0 or -1 to skip. */
static int fix_config(uint8_t *cfg, size_t len, uint8_t flags, struct repo_config *out)
{
	struct repo_key key;
	uint8_t salt[REPO_KEY_SALT_BYTES];

	if (len != REPO_CONFIG_BYTES)
		return -1;
	sha256_buf(cfg, REPO_CONFIG_SUM_OFFSET, cfg + REPO_CONFIG_SUM_OFFSET);
	if (repo_config_decode(cfg, len, out, NULL) < 0)
		return -1;
	if (out->encryption == REPO_ENC_NONE || (flags & 2))
		return 0;
	fuzz_repo_key(&key, salt);
	if (repo_key_derive(&key, out->key_salt, REPO_KDF_CHECK_LABEL, out->key_check) < 0 ||
	    repo_config_encode(out, &key, cfg) < 0)
		abort();
	return 0;
}

/* Entries' CRCs (and plaintext record headers) over the pack bytes they point at. */
static void fix_entries(uint8_t *body, size_t len, uint8_t *pack, size_t pack_len, uint8_t flags)
{
	uint32_t npacks;
	size_t at = INDEX_BODY_HEAD_BYTES;

	if (len < INDEX_BODY_HEAD_BYTES)
		return;
	npacks = le32_decode(body);
	for (uint32_t i = 0; i < npacks && len - at >= INDEX_PACK_HEADER_BYTES; i++) {
		uint8_t *h = body + at;
		uint32_t nblobs = le32_decode(h + 40);

		if (i == 0) {
			sha256_buf(pack, pack_len, h);
			if (!(flags & 1))
				le64_encode(h + 32, pack_len);
		}
		at += INDEX_PACK_HEADER_BYTES;
		for (uint32_t j = 0; j < nblobs && len - at >= PACK_ENTRY_BYTES; j++, at += PACK_ENTRY_BYTES) {
			uint8_t *e = body + at;
			uint64_t off = le64_decode(e + 32);
			uint32_t stored = le32_decode(e + 40), crc;
			bool sealed = e[53] & PACK_BLOB_F_AEAD;
			uint64_t hdr = sealed ? 0 : PACK_RECORD_HEADER_BYTES;

			if (i != 0 || off > pack_len || pack_len - off < hdr + stored)
				continue;
			crc = crc32c(0, pack + off + hdr, stored);
			le32_encode(e + 48, crc);
			if (!sealed)
				le32_encode(pack + off + 12, crc);
		}
	}
}

static int put_file(const char *dir, const char *name, const void *data, size_t len)
{
	char path[1024];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f)
		return -errno;
	n = fwrite(data, 1, len, f);
	return fclose(f) == 0 && n == len ? 0 : -EIO;
}

static void reset_dir(const char *dir)
{
	char path[1024];

	snprintf(path, sizeof(path), "%s/index", dir);
	mkdir(dir, 0700);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/data", dir);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/snapshots", dir);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/locks", dir);
	mkdir(path, 0700);
}

/* Read everything the opened repository holds; true when all of it checked out. */
static bool read_all(struct repo *r)
{
	struct repo_verify_result v;
	const struct blob_loc *loc;
	size_t pos = 0, n = 0;
	bool ok = true;

	while ((loc = blob_table_next(&r->blobs, &pos))) {
		struct blob_id id = loc->id;
		uint8_t *data;
		size_t len;

		if (repo_blob_get(r, &id, &data, &len) == 0)
			free(data);
		else
			ok = false;
		n++;
	}
	if (repo_verify(r, true, NULL, NULL, &v) < 0 || v.problems)
		ok = false;
	return ok && n > 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	const uint8_t *cfg_in, *body_in, *pack_in;
	size_t cfg_len, body_len, pack_len, obj_len;
	uint8_t flags, *cfg, *body, *pack, *obj;
	char dir[300], index_name[INDEX_NAME_BYTES], pack_obj[PACK_NAME_BYTES], path[1024], err[256];
	struct repo_crypto *crypto = NULL;
	struct repo_config rc_cfg;
	struct repo_key key;
	uint8_t salt[REPO_KEY_SALT_BYTES];
	struct blob_id pack_id;
	struct repo *r;

	flags = fuzz_u8(&in);
	cfg_in = fuzz_take(&in, fuzz_u32(&in), &cfg_len);
	body_in = fuzz_take(&in, fuzz_u32(&in), &body_len);
	pack_in = fuzz_take(&in, in.len, &pack_len);
	cfg = fuzz_dup(cfg_in, cfg_len);
	body = fuzz_dup(body_in, body_len);
	pack = fuzz_dup(pack_in, pack_len);
	obj = NULL;
	if (fix_config(cfg, cfg_len, flags, &rc_cfg) < 0)
		goto out;
	fuzz_repo_key(&key, salt);
	if (rc_cfg.encryption != REPO_ENC_NONE &&
	    repo_crypto_new(&crypto, &key, rc_cfg.key_salt) < 0)
		abort();
	fix_entries(body, body_len, pack, pack_len, flags);

	/* The index object around the body, sealed as the config says. */
	obj_len = INDEX_PREFIX_BYTES + body_len + (crypto ? REPO_SEAL_OVERHEAD : 0) + INDEX_TAIL_BYTES;
	obj = fuzz_alloc(obj_len);
	memcpy(obj, INDEX_MAGIC, 4);
	le16_encode(obj + 4, INDEX_FORMAT_VERSION);
	le16_encode(obj + 6, crypto ? INDEX_F_AEAD : 0);
	if (crypto) {
		if (repo_crypto_seal(crypto, REPO_SEAL_META, obj, INDEX_PREFIX_BYTES, body, body_len,
				     obj + INDEX_PREFIX_BYTES) < 0)
			abort();
	} else {
		memcpy(obj + INDEX_PREFIX_BYTES, body, body_len);
	}
	fuzz_fix_sha_tail(obj, obj_len);
	index_file_name(obj, obj_len, index_name);
	sha256_buf(pack, pack_len, pack_id.b);
	pack_name(&pack_id, pack_obj);

	snprintf(dir, sizeof(dir), "%s/repo", fuzz_scratch_dir());
	reset_dir(dir);
	snprintf(path, sizeof(path), "%s/data/%.2s", dir, pack_obj + 5);
	mkdir(path, 0700);
	if (put_file(dir, "config", cfg, cfg_len) < 0 || put_file(dir, index_name, obj, obj_len) < 0 ||
	    put_file(dir, pack_obj, pack, pack_len) < 0)
		abort();
	if (repo_open_keyed(&r, dir, crypto ? &key : NULL, err, sizeof(err)) == 0) {
		if (read_all(r))
			fuzz_accepted++;
		repo_close(r);
	}
	snprintf(path, sizeof(path), "%s/%s", dir, index_name);
	unlink(path);
	snprintf(path, sizeof(path), "%s/%s", dir, pack_obj);
	unlink(path);
	snprintf(path, sizeof(path), "%s/config", dir);
	unlink(path);
out:
	repo_crypto_free(crypto);
	free(obj);
	free(cfg);
	free(body);
	free(pack);
	return 0;
}

/* ---- Seeds: a real repository's config, index and pack --------------------------------- */

static uint8_t *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "r");
	uint8_t *p;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	p = fuzz_alloc((size_t)n);
	if (fread(p, 1, (size_t)n, f) != (size_t)n) {
		free(p);
		p = NULL;
	}
	fclose(f);
	*len = (size_t)n;
	return p;
}

/* The first object under dir/sub (dir, sub, out). */
static int find_object(const char *dir, const char *sub, char *out, size_t len)
{
	char cmd[1200];
	FILE *p;

	snprintf(cmd, sizeof(cmd), "find '%s/%s' -type f | head -1", dir, sub);
	p = popen(cmd, "r");
	if (!p || !fgets(out, (int)len, p)) {
		if (p)
			pclose(p);
		return -ENOENT;
	}
	pclose(p);
	out[strcspn(out, "\n")] = '\0';
	return 0;
}

static int seed(const char *dir, const char *name, bool sealed)
{
	char repo_dir[300], err[256], path[1024];
	uint8_t salt[REPO_KEY_SALT_BYTES], chunk[6000], *cfg, *ix, *pk, *body, *b;
	size_t cfg_len = 0, ix_len = 0, pk_len = 0, body_len, at;
	struct repo_key key;
	struct blob_id id;
	struct repo *r;
	int rc;

	snprintf(repo_dir, sizeof(repo_dir), "%s/seed-repo-%s", fuzz_scratch_dir(), name);
	fuzz_repo_key(&key, salt);
	rc = repo_init_keyed(repo_dir, 4096, 0, sealed ? &key : NULL, err, sizeof(err));
	if (rc == 0)
		rc = repo_open_keyed(&r, repo_dir, sealed ? &key : NULL, err, sizeof(err));
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < sizeof(chunk); i++)
		chunk[i] = (uint8_t)(i % 7 == 0 ? i * 13 : 'g');
	rc = repo_blob_put(r, BLOB_T_DATA, chunk, 4096, &id);
	for (size_t i = 0; i < sizeof(chunk); i++)
		chunk[i] = (uint8_t)(i * 2654435761u >> 13);
	if (rc == 0)
		rc = repo_blob_put(r, BLOB_T_SIG, chunk, 3000, &id);
	if (rc == 0)
		rc = repo_blob_put(r, BLOB_T_STATE, chunk + 100, 5000, &id);
	if (rc == 0)
		rc = repo_flush(r);
	repo_close(r);
	if (rc < 0)
		return rc;
	snprintf(path, sizeof(path), "%s/config", repo_dir);
	cfg = slurp(path, &cfg_len);
	rc = find_object(repo_dir, "index", path, sizeof(path));
	ix = rc == 0 ? slurp(path, &ix_len) : NULL;
	rc = find_object(repo_dir, "data", path, sizeof(path));
	pk = rc == 0 ? slurp(path, &pk_len) : NULL;
	if (!cfg || !ix || !pk)
		return -EIO;
	/* The index body, opened when sealed. */
	body_len = ix_len - INDEX_PREFIX_BYTES - INDEX_TAIL_BYTES - (sealed ? REPO_SEAL_OVERHEAD : 0);
	body = fuzz_alloc(body_len);
	if (sealed) {
		struct repo_config c;
		struct repo_crypto *crypto;

		if (repo_config_decode(cfg, cfg_len, &c, NULL) < 0 ||
		    repo_crypto_new(&crypto, &key, c.key_salt) < 0)
			return -EIO;
		rc = repo_crypto_open(crypto, REPO_SEAL_META, ix, INDEX_PREFIX_BYTES,
				      ix + INDEX_PREFIX_BYTES, body_len + REPO_SEAL_OVERHEAD, body);
		repo_crypto_free(crypto);
	} else {
		memcpy(body, ix + INDEX_PREFIX_BYTES, body_len);
	}
	b = fuzz_alloc(1 + 4 + cfg_len + 4 + body_len + pk_len);
	b[0] = 0;
	at = 1;
	le32_encode(b + at, (uint32_t)cfg_len);
	memcpy(b + at + 4, cfg, cfg_len);
	at += 4 + cfg_len;
	le32_encode(b + at, (uint32_t)body_len);
	memcpy(b + at + 4, body, body_len);
	at += 4 + body_len;
	memcpy(b + at, pk, pk_len);
	at += pk_len;
	if (rc == 0)
		rc = fuzz_seed_write(dir, name, b, at);
	free(b);
	free(body);
	free(cfg);
	free(ix);
	free(pk);
	return rc;
}

int fuzz_write_seeds(const char *dir)
{
	int rc = seed(dir, "seed-plain", false);

	if (rc == 0)
		rc = seed(dir, "seed-sealed", true);
	return rc;
}
