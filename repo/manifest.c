/* Encoding and checking snapshot manifests: header, zstd body of maps (maybe sealed), trailing SHA-256. */
#include "repo/manifest.h"
#include "repo/compat.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "repo/codec_priv.h"

#ifndef GODWIT_VERSION
#define GODWIT_VERSION "unknown"
#endif

#define MANIFEST_ZSTD_LEVEL 3
#define MANIFEST_REGION_BYTES_MAX (1ull << 52) /* 4 PiB: keeps every count product small */
#define MANIFEST_FIXED_BYTES (8 + 8 + 4 + 4 + 8 + 4 + 4 + BLOB_ID_BYTES + 4 * 8)
#define MANIFEST_INFLATE_FIRST (64u << 10) /* body_inflate's first try */

static int fail(const char **why, const char *reason, int rc)
{
	if (why)
		*why = reason;
	return rc;
}

static bool is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

static bool chunk_ok(uint64_t c)
{
	return is_pow2(c) && c >= SNAP_CHUNK_BYTES_MIN && c <= SNAP_CHUNK_BYTES_MAX;
}

static uint64_t div_up(uint64_t a, uint64_t b)
{
	return a / b + (a % b != 0);
}

void manifest_init(struct snap_manifest *m)
{
	memset(m, 0, sizeof(*m));
	snprintf(m->godwit_version, sizeof(m->godwit_version), "%s", GODWIT_VERSION);
}

void manifest_free(struct snap_manifest *m)
{
	for (uint32_t i = 0; m->regions && i < m->nregions; i++)
		free(m->regions[i].ids);
	free(m->regions);
	free(m->disk_ids);
	free(m->sig_ids);
	m->regions = NULL;
	m->nregions = 0;
	m->disk_ids = NULL;
	m->disk_nblocks = 0;
	m->sig_ids = NULL;
	m->nsig = 0;
}

int manifest_add_region(struct snap_manifest *m, uint64_t gpa, uint64_t bytes,
			uint32_t chunk_bytes)
{
	struct snap_region *regions, *last;

	if (m->nregions >= SNAP_REGIONS_MAX || bytes == 0 || bytes > MANIFEST_REGION_BYTES_MAX ||
	    !chunk_ok(chunk_bytes) || gpa > UINT64_MAX - bytes)
		return -EINVAL;
	if (m->nregions) {
		last = &m->regions[m->nregions - 1];
		if (gpa < last->gpa + last->bytes)
			return -EINVAL;
	}
	regions = realloc(m->regions, (m->nregions + 1) * sizeof(*regions));
	if (!regions)
		return -ENOMEM;
	m->regions = regions;
	last = &regions[m->nregions];
	last->gpa = gpa;
	last->bytes = bytes;
	last->chunk_bytes = chunk_bytes;
	last->nchunks = div_up(bytes, chunk_bytes);
	last->ids = calloc((size_t)last->nchunks, sizeof(*last->ids));
	if (!last->ids)
		return -ENOMEM;
	m->nregions++;
	m->ram_bytes += bytes;
	return 0;
}

int manifest_set_disk(struct snap_manifest *m, uint64_t bytes, uint32_t block_bytes)
{
	struct blob_id *ids = NULL;
	uint64_t n = 0;

	if (bytes) {
		if (!chunk_ok(block_bytes) || bytes > MANIFEST_REGION_BYTES_MAX)
			return -EINVAL;
		n = div_up(bytes, block_bytes);
		ids = calloc((size_t)n, sizeof(*ids));
		if (!ids)
			return -ENOMEM;
	} else {
		block_bytes = 0;
	}
	free(m->disk_ids);
	m->disk_ids = ids;
	m->disk_bytes = bytes;
	m->disk_block_bytes = block_bytes;
	m->disk_nblocks = n;
	return 0;
}

int manifest_set_sig(struct snap_manifest *m, const struct blob_id *ids, uint32_t n)
{
	struct blob_id *copy = NULL;

	if (n > SNAP_SIG_MAX)
		return -EINVAL;
	if (n) {
		copy = malloc((size_t)n * sizeof(*copy));
		if (!copy)
			return -ENOMEM;
		memcpy(copy, ids, (size_t)n * sizeof(*copy));
	}
	free(m->sig_ids);
	m->sig_ids = copy;
	m->nsig = n;
	return 0;
}

bool snap_id_valid(const char *id)
{
	static const char shape[] = "DDDDDDDDTDDDDDDZ-hhhhhhhh";

	_Static_assert(sizeof(shape) == SNAP_ID_BYTES, "shape");
	for (size_t i = 0; i < SNAP_ID_LEN; i++) {
		char c = id[i];

		switch (shape[i]) {
		case 'D':
			if (c < '0' || c > '9')
				return false;
			break;
		case 'h':
			if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
				return false;
			break;
		default:
			if (c != shape[i])
				return false;
		}
	}
	return id[SNAP_ID_LEN] == '\0';
}

int snap_id_make(uint64_t created_ns, char out[SNAP_ID_BYTES])
{
	time_t secs = (time_t)(created_ns / 1000000000u);
	uint32_t tag;
	struct tm tm;
	char tmp[64];
	int n;

	if (getrandom(&tag, sizeof(tag), 0) != sizeof(tag))
		return -EIO;
	gmtime_r(&secs, &tm);
	if (tm.tm_year + 1900 > 9999 || tm.tm_year + 1900 < 0)
		return -EINVAL;
	n = snprintf(tmp, sizeof(tmp), "%04d%02d%02dT%02d%02d%02dZ-%08x", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, tag);

	if (n != SNAP_ID_LEN)
		return -EINVAL;
	memcpy(out, tmp, SNAP_ID_BYTES);
	return 0;
}

static bool text_ok(const char *s, size_t max)
{
	size_t n = strnlen(s, max + 1);

	if (n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

/* The number of ids the maps and signature hold (m). Bounded by manifest_check's rules. */
static uint64_t manifest_nids(const struct snap_manifest *m)
{
	uint64_t n = m->nsig + m->disk_nblocks;

	for (uint32_t i = 0; i < m->nregions; i++)
		n += m->regions[i].nchunks;
	return n;
}

static uint64_t manifest_body_bytes(const struct snap_manifest *m)
{
	return 2 + strlen(m->id) + 2 + strlen(m->parent) + 2 + strlen(m->vm_name) + 2 +
	       strlen(m->godwit_version) + 2 + strlen(m->cpu_features) + MANIFEST_FIXED_BYTES +
	       (uint64_t)m->nregions * MANIFEST_REGION_BYTES + manifest_nids(m) * BLOB_ID_BYTES;
}

int manifest_check(const struct snap_manifest *m, const char **why)
{
	uint64_t ram = 0;

	if (!snap_id_valid(m->id))
		return fail(why, "malformed snapshot id", -EINVAL);
	if (m->parent[0] && !snap_id_valid(m->parent))
		return fail(why, "malformed parent id", -EINVAL);
	if (strcmp(m->parent, m->id) == 0)
		return fail(why, "a snapshot cannot be its own parent", -EINVAL);
	if (!text_ok(m->vm_name, SNAP_NAME_MAX) || !text_ok(m->godwit_version, SNAP_VERSION_MAX) ||
	    !text_ok(m->cpu_features, SNAP_CPU_FEATURES_MAX))
		return fail(why, "a text field is too long or has control characters", -EINVAL);
	if (m->ncpus == 0 || m->ncpus > SNAP_NCPUS_MAX)
		return fail(why, "vCPU count out of range", -EINVAL);
	if (m->nregions == 0 || m->nregions > SNAP_REGIONS_MAX)
		return fail(why, "memory region count out of range", -EINVAL);
	for (uint32_t i = 0; i < m->nregions; i++) {
		const struct snap_region *g = &m->regions[i];

		if (g->bytes == 0 || g->bytes > MANIFEST_REGION_BYTES_MAX || !chunk_ok(g->chunk_bytes) ||
		    g->gpa > UINT64_MAX - g->bytes || g->nchunks != div_up(g->bytes, g->chunk_bytes))
			return fail(why, "memory region size or chunk size out of range", -EINVAL);
		if (i && g->gpa < m->regions[i - 1].gpa + m->regions[i - 1].bytes)
			return fail(why, "memory regions overlap or are out of order", -EINVAL);
		ram += g->bytes;
	}
	if (ram != m->ram_bytes)
		return fail(why, "RAM size is not the sum of the regions", -EINVAL);
	if (m->disk_bytes == 0
		    ? (m->disk_block_bytes != 0 || m->disk_nblocks != 0 || m->nsig != 0)
		    : (m->disk_bytes > MANIFEST_REGION_BYTES_MAX || !chunk_ok(m->disk_block_bytes) ||
		       m->disk_nblocks != div_up(m->disk_bytes, m->disk_block_bytes)))
		return fail(why, "disk size, block size or signature inconsistent", -EINVAL);
	if (m->nsig > SNAP_SIG_MAX)
		return fail(why, "too many signature pieces", -EINVAL);
	if (blob_id_is_zero(&m->state_id))
		return fail(why, "no state blob", -EINVAL);
	if (manifest_body_bytes(m) > MANIFEST_BODY_MAX_BYTES)
		return fail(why, "manifest body larger than the limit", -EINVAL);
	return 0;
}

static void enc_str(struct enc *e, const char *s)
{
	size_t n = strlen(s);

	enc_u16(e, (uint16_t)n);
	enc_bytes(e, s, n);
}

static void enc_ids(struct enc *e, const struct blob_id *ids, uint64_t n)
{
	enc_bytes(e, ids, (size_t)n * sizeof(*ids));
}

int manifest_encode(const struct snap_manifest *m, struct repo_crypto *c, uint8_t **out,
		    size_t *len)
{
	size_t body_len, bound, n, frame_off, total;
	uint8_t *body, *obj;
	struct enc e;
	int rc;

	if (manifest_check(m, NULL) < 0)
		return -EINVAL;
	body_len = (size_t)manifest_body_bytes(m);
	body = malloc(body_len);
	if (!body)
		return -ENOMEM;
	e = enc_init(body, body_len);
	enc_str(&e, m->id);
	enc_str(&e, m->parent);
	enc_str(&e, m->vm_name);
	enc_str(&e, m->godwit_version);
	enc_str(&e, m->cpu_features);
	enc_u64(&e, m->created_ns);
	enc_u64(&e, m->ram_bytes);
	enc_u32(&e, m->ncpus);
	enc_u32(&e, m->nregions);
	enc_u64(&e, m->disk_bytes);
	enc_u32(&e, m->disk_block_bytes);
	enc_u32(&e, m->nsig);
	enc_bytes(&e, m->state_id.b, BLOB_ID_BYTES);
	enc_u64(&e, m->stats.bytes_new);
	enc_u64(&e, m->stats.bytes_referenced);
	enc_u64(&e, m->stats.pause_ms);
	enc_u64(&e, m->stats.duration_ms);
	for (uint32_t i = 0; i < m->nregions; i++) {
		enc_u64(&e, m->regions[i].gpa);
		enc_u64(&e, m->regions[i].bytes);
		enc_u32(&e, m->regions[i].chunk_bytes);
		enc_u32(&e, 0);
	}
	enc_ids(&e, m->sig_ids, m->nsig);
	for (uint32_t i = 0; i < m->nregions; i++)
		enc_ids(&e, m->regions[i].ids, m->regions[i].nchunks);
	enc_ids(&e, m->disk_ids, m->disk_nblocks);
	assert(e.off == body_len);

	/*
	 * Plaintext: header (24) | frame | sum. Sealed: prefix (8) | nonce | raw length |
	 * frame | tag | sum, the raw length and frame sealed in place.
	 */
	frame_off = c ? MANIFEST_PREFIX_BYTES + REPO_SEAL_NONCE_BYTES + MANIFEST_RAW_LEN_BYTES
		      : MANIFEST_HEADER_BYTES;
	bound = ZSTD_compressBound(body_len);
	obj = malloc(frame_off + bound + REPO_SEAL_TAG_BYTES + MANIFEST_TAIL_BYTES);
	if (!obj) {
		free(body);
		return -ENOMEM;
	}
	n = ZSTD_compress(obj + frame_off, bound, body, body_len, MANIFEST_ZSTD_LEVEL);
	free(body);
	if (ZSTD_isError(n)) {
		free(obj);
		return -ENOMEM; /* with a bound-sized buffer only allocation can fail */
	}
	e = enc_init(obj, MANIFEST_PREFIX_BYTES);
	enc_bytes(&e, MANIFEST_MAGIC, 4);
	enc_u16(&e, MANIFEST_FORMAT_VERSION);
	enc_u16(&e, c ? MANIFEST_F_ZSTD | MANIFEST_F_AEAD : MANIFEST_F_ZSTD);
	if (c) {
		uint8_t *inner = obj + MANIFEST_PREFIX_BYTES + REPO_SEAL_NONCE_BYTES;

		le64_encode(inner, body_len);
		rc = repo_crypto_seal(c, REPO_SEAL_META, obj, MANIFEST_PREFIX_BYTES, inner,
				      MANIFEST_RAW_LEN_BYTES + n, obj + MANIFEST_PREFIX_BYTES);
		if (rc < 0) {
			free(obj);
			return rc;
		}
		total = frame_off + n + REPO_SEAL_TAG_BYTES;
	} else {
		le64_encode(obj + 8, body_len);
		le64_encode(obj + 16, n);
		total = frame_off + n;
	}
	sha256_buf(obj, total, obj + total);
	*out = obj;
	*len = total + MANIFEST_TAIL_BYTES;
	return 0;
}

static bool dec_str(struct dec *d, char *out, size_t max)
{
	const uint8_t *p;
	uint16_t n = 0;

	if (!dec_u16(d, &n) || n > max)
		return false;
	p = dec_take(d, n);
	if (!p || memchr(p, '\0', n))
		return false;
	memcpy(out, p, n);
	out[n] = '\0';
	return true;
}

static int dec_ids(struct dec *d, struct blob_id **out, uint64_t n)
{
	const uint8_t *p = dec_take(d, n * BLOB_ID_BYTES);

	assert(p); /* the caller checked the total against the body length */
	*out = NULL;
	if (n == 0)
		return 0;
	*out = malloc((size_t)n * sizeof(**out));
	if (!*out)
		return -ENOMEM;
	memcpy(*out, p, (size_t)n * BLOB_ID_BYTES);
	return 0;
}

/* Parse a decompressed body into m (body, len, m, why); m is empty on entry. */
static int manifest_parse_body(const uint8_t *body, size_t len, struct snap_manifest *m,
			       const char **why)
{
	struct dec d = dec_init(body, len);
	const uint8_t *regs;
	uint64_t nids;
	int rc;

	if (!dec_str(&d, m->id, SNAP_ID_LEN) || !dec_str(&d, m->parent, SNAP_ID_LEN) ||
	    !dec_str(&d, m->vm_name, SNAP_NAME_MAX) ||
	    !dec_str(&d, m->godwit_version, SNAP_VERSION_MAX) ||
	    !dec_str(&d, m->cpu_features, SNAP_CPU_FEATURES_MAX))
		return fail(why, "a text field is truncated or too long", -EBADMSG);
	if (!dec_u64(&d, &m->created_ns) || !dec_u64(&d, &m->ram_bytes) ||
	    !dec_u32(&d, &m->ncpus) || !dec_u32(&d, &m->nregions) ||
	    !dec_u64(&d, &m->disk_bytes) || !dec_u32(&d, &m->disk_block_bytes) ||
	    !dec_u32(&d, &m->nsig) || !dec_bytes(&d, m->state_id.b, BLOB_ID_BYTES) ||
	    !dec_u64(&d, &m->stats.bytes_new) || !dec_u64(&d, &m->stats.bytes_referenced) ||
	    !dec_u64(&d, &m->stats.pause_ms) || !dec_u64(&d, &m->stats.duration_ms))
		return fail(why, "body truncated in its fixed fields", -EBADMSG);
	if (m->nregions == 0 || m->nregions > SNAP_REGIONS_MAX)
		return fail(why, "memory region count out of range", -EBADMSG);
	if (m->nsig > SNAP_SIG_MAX)
		return fail(why, "too many signature pieces", -EBADMSG);
	if (m->disk_bytes > MANIFEST_REGION_BYTES_MAX ||
	    (m->disk_bytes && !chunk_ok(m->disk_block_bytes)))
		return fail(why, "disk size or block size out of range", -EBADMSG);

	/* Sizes first: every count must fit the body before anything is allocated. */
	regs = dec_take(&d, (uint64_t)m->nregions * MANIFEST_REGION_BYTES);
	if (!regs)
		return fail(why, "region table truncated", -EBADMSG);
	m->disk_nblocks = m->disk_bytes ? div_up(m->disk_bytes, m->disk_block_bytes) : 0;
	nids = (uint64_t)m->nsig + m->disk_nblocks;
	for (uint32_t i = 0; i < m->nregions; i++) {
		uint64_t bytes = le64_decode(regs + i * MANIFEST_REGION_BYTES + 8);
		uint32_t chunk = le32_decode(regs + i * MANIFEST_REGION_BYTES + 16);

		if (bytes == 0 || bytes > MANIFEST_REGION_BYTES_MAX || !chunk_ok(chunk) ||
		    le32_decode(regs + i * MANIFEST_REGION_BYTES + 20) != 0)
			return fail(why, "memory region size or chunk size out of range", -EBADMSG);
		nids += div_up(bytes, chunk);
	}
	if (nids * BLOB_ID_BYTES != dec_left(&d))
		return fail(why, "map sizes do not match the body length", -EBADMSG);

	m->regions = calloc(m->nregions, sizeof(*m->regions));
	if (!m->regions)
		return -ENOMEM;
	for (uint32_t i = 0; i < m->nregions; i++) {
		struct snap_region *g = &m->regions[i];

		g->gpa = le64_decode(regs + i * MANIFEST_REGION_BYTES);
		g->bytes = le64_decode(regs + i * MANIFEST_REGION_BYTES + 8);
		g->chunk_bytes = le32_decode(regs + i * MANIFEST_REGION_BYTES + 16);
		g->nchunks = div_up(g->bytes, g->chunk_bytes);
	}
	rc = dec_ids(&d, &m->sig_ids, m->nsig);
	for (uint32_t i = 0; rc == 0 && i < m->nregions; i++)
		rc = dec_ids(&d, &m->regions[i].ids, m->regions[i].nchunks);
	if (rc == 0)
		rc = dec_ids(&d, &m->disk_ids, m->disk_nblocks);
	if (rc < 0)
		return rc;
	if (manifest_check(m, why) < 0)
		return -EBADMSG;
	return 0;
}

/*
 * Decompress a zstd frame of exactly raw bytes into a malloc'd buffer (stored, stored_len,
 * raw, out). The buffer grows only as the frame proves it holds more: a try into a
 * buffer that turns out too small fails with dstSize_tooSmall, and only then is a four
 * times larger one tried. So what is allocated follows what the object decodes to (at
 * most zstd_raw_bound of its size), never what its header claims; the work is at most
 * 4/3 of one decompression. Returns 0, -EBADMSG or -ENOMEM.
 */
static int body_inflate(const uint8_t *stored, size_t stored_len, uint64_t raw, uint8_t **out)
{
	size_t cap = raw < MANIFEST_INFLATE_FIRST ? (size_t)raw : MANIFEST_INFLATE_FIRST;
	uint8_t *buf = NULL;

	for (;;) {
		uint8_t *p = realloc(buf, cap ? cap : 1);
		size_t n;

		if (!p) {
			free(buf);
			return -ENOMEM;
		}
		buf = p;
		n = ZSTD_decompress(buf, cap, stored, stored_len);
		if (!ZSTD_isError(n) && n == raw) {
			*out = buf;
			return 0;
		}
		if (!ZSTD_isError(n) || ZSTD_getErrorCode(n) != ZSTD_error_dstSize_tooSmall ||
		    cap == raw) {
			free(buf);
			return -EBADMSG;
		}
		cap = raw / 4 < cap ? (size_t)raw : cap * 4;
	}
}

/* Decompress (or take) a checked body and parse it (stored, stored_len, raw, zstd, out, why). */
static int manifest_body(const uint8_t *stored, uint64_t stored_len, uint64_t raw, bool zstd,
			 struct snap_manifest *out, const char **why)
{
	uint8_t *body = NULL;
	int rc;

	if (zstd) {
		if (raw > zstd_raw_bound(stored_len))
			return fail(why, "body claims more than its compressed size can hold",
				    -EMSGSIZE);
		if (ZSTD_getFrameContentSize(stored, (size_t)stored_len) != raw)
			return fail(why, "compressed body does not declare its raw length", -EBADMSG);
		rc = body_inflate(stored, (size_t)stored_len, raw, &body);
		if (rc == -EBADMSG)
			return fail(why, "body does not decompress", rc);
		if (rc < 0)
			return rc;
	}
	rc = manifest_parse_body(body ? body : stored, (size_t)raw, out, why);
	free(body);
	return rc;
}

/* The sealed form after the checksum (buf, len, c, out, why): open, then as plaintext. */
static int manifest_decode_sealed(const uint8_t *buf, size_t len, struct repo_crypto *c,
				  struct snap_manifest *out, const char **why)
{
	size_t sealed_len = len - MANIFEST_PREFIX_BYTES - MANIFEST_TAIL_BYTES;
	size_t inner_len = sealed_len - REPO_SEAL_OVERHEAD;
	uint8_t *inner = malloc(inner_len);
	uint64_t raw;
	int rc;

	if (!inner)
		return -ENOMEM;
	rc = repo_crypto_open(c, REPO_SEAL_META, buf, MANIFEST_PREFIX_BYTES,
			      buf + MANIFEST_PREFIX_BYTES, sealed_len, inner);
	if (rc < 0) {
		rc = fail(why, "authentication failed: the manifest was altered", rc);
		goto out;
	}
	raw = le64_decode(inner);
	if (raw > MANIFEST_BODY_MAX_BYTES) {
		rc = fail(why, "body length over the limit", -EMSGSIZE);
		goto out;
	}
	rc = manifest_body(inner + MANIFEST_RAW_LEN_BYTES, inner_len - MANIFEST_RAW_LEN_BYTES, raw,
			   true, out, why);
out:
	free(inner);
	return rc;
}

int manifest_decode(const uint8_t *buf, size_t len, struct repo_crypto *c,
		    struct snap_manifest *out, const char **why)
{
	struct dec d = dec_init(buf, len);
	uint16_t version = 0, flags = 0;
	uint64_t raw = 0, stored = 0;
	uint8_t sum[32];
	bool aead;
	int rc;

	manifest_init(out);
	out->godwit_version[0] = '\0';
	if (len < 8)
		return fail(why, "truncated header", -EPROTO);
	if (memcmp(buf, MANIFEST_MAGIC, 4) != 0)
		return fail(why, "bad magic: not a snapshot manifest", -ENOMSG);
	dec_take(&d, 4);
	dec_u16(&d, &version);
	dec_u16(&d, &flags);
	if (version == 0)
		return fail(why, "manifest format version 0 is invalid", -EBADMSG);
	if (version > MANIFEST_FORMAT_VERSION)
		return fail(why, compat_newer("manifest", version, MANIFEST_FORMAT_VERSION),
			    -EPROTONOSUPPORT);
	if ((flags & ~(MANIFEST_F_ZSTD | MANIFEST_F_AEAD)) ||
	    flags == MANIFEST_F_AEAD)
		return fail(why, "manifest flags this godwit does not know: upgrade godwit", -EPROTONOSUPPORT);
	aead = flags & MANIFEST_F_AEAD;
	if (aead && !c)
		return fail(why, "sealed manifest: the repository key is needed", -ENOKEY);
	if (!aead && c)
		return fail(why, "plaintext manifest in an encrypted repository", -EBADMSG);
	if (aead) {
		if (len < MANIFEST_PREFIX_BYTES + REPO_SEAL_OVERHEAD + MANIFEST_RAW_LEN_BYTES +
			  MANIFEST_TAIL_BYTES)
			return fail(why, "truncated", -EPROTO);
	} else {
		if (!dec_u64(&d, &raw) || !dec_u64(&d, &stored))
			return fail(why, "truncated header", -EPROTO);
		if (raw > MANIFEST_BODY_MAX_BYTES ||
		    stored > ZSTD_compressBound(MANIFEST_BODY_MAX_BYTES))
			return fail(why, "body length over the limit", -EMSGSIZE);
		if (!(flags & MANIFEST_F_ZSTD) && stored != raw)
			return fail(why, "stored and raw body lengths differ without compression",
				    -EBADMSG);
		if (len - MANIFEST_HEADER_BYTES < stored + MANIFEST_TAIL_BYTES)
			return fail(why, "truncated", -EPROTO);
		if (len - MANIFEST_HEADER_BYTES > stored + MANIFEST_TAIL_BYTES)
			return fail(why, "trailing bytes after the checksum", -EBADMSG);
	}
	sha256_buf(buf, len - MANIFEST_TAIL_BYTES, sum);
	if (memcmp(sum, buf + len - MANIFEST_TAIL_BYTES, 32) != 0)
		return fail(why, "checksum mismatch", -EBADMSG);
	if (aead)
		rc = manifest_decode_sealed(buf, len, c, out, why);
	else
		rc = manifest_body(dec_take(&d, stored), stored, raw, flags & MANIFEST_F_ZSTD, out,
				   why);
	if (rc < 0)
		manifest_free(out);
	return rc;
}

int manifest_foreach_ref(const struct snap_manifest *m, snap_ref_fn fn, void *arg)
{
	struct snap_ref ref = { .kind = SNAP_REF_STATE, .id = &m->state_id };
	uint64_t chunk = 0;
	int rc;

	rc = fn(arg, &ref);
	for (uint32_t i = 0; rc == 0 && i < m->nsig; i++) {
		ref = (struct snap_ref){ .kind = SNAP_REF_SIG, .index = i, .id = &m->sig_ids[i] };
		if (!blob_id_is_zero(ref.id))
			rc = fn(arg, &ref);
	}
	for (uint32_t i = 0; rc == 0 && i < m->nregions; i++) {
		const struct snap_region *g = &m->regions[i];

		for (uint64_t j = 0; rc == 0 && j < g->nchunks; j++, chunk++) {
			uint64_t off = j * g->chunk_bytes;

			if (blob_id_is_zero(&g->ids[j]))
				continue;
			ref = (struct snap_ref){
				.kind = SNAP_REF_MEMORY,
				.index = chunk,
				.where = g->gpa + off,
				.bytes = g->bytes - off < g->chunk_bytes ? g->bytes - off : g->chunk_bytes,
				.id = &g->ids[j],
			};
			rc = fn(arg, &ref);
		}
	}
	for (uint64_t j = 0; rc == 0 && j < m->disk_nblocks; j++) {
		uint64_t off = j * m->disk_block_bytes;

		if (blob_id_is_zero(&m->disk_ids[j]))
			continue;
		ref = (struct snap_ref){
			.kind = SNAP_REF_DISK,
			.index = j,
			.where = off,
			.bytes = m->disk_bytes - off < m->disk_block_bytes ? m->disk_bytes - off
									   : m->disk_block_bytes,
			.id = &m->disk_ids[j],
		};
		rc = fn(arg, &ref);
	}
	return rc;
}

void snap_ref_describe(const struct snap_ref *ref, char *out, size_t len)
{
	switch (ref->kind) {
	case SNAP_REF_STATE:
		snprintf(out, len, "state");
		break;
	case SNAP_REF_SIG:
		snprintf(out, len, "disk signature piece %llu", (unsigned long long)ref->index);
		break;
	case SNAP_REF_MEMORY:
		snprintf(out, len, "memory chunk %llu, gpa 0x%llx", (unsigned long long)ref->index,
			 (unsigned long long)ref->where);
		break;
	case SNAP_REF_DISK:
		snprintf(out, len, "disk block %llu", (unsigned long long)ref->index);
		break;
	}
}
