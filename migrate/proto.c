/* Encoders and checked decoders for the live-migration wire protocol. */
#include "migrate/proto.h"

#include <errno.h>
#include <string.h>

#include "util/byteorder.h"
#include "util/crc32c.h"
#include "transport/stream.h"

int mig_hello_encode(const struct mig_hello *h, uint8_t *buf, size_t cap)
{
	size_t len = MIG_HELLO_FIXED_BYTES + h->nregions * MIG_HELLO_REGION_BYTES +
		     MIG_HELLO_TAIL_BYTES;
	uint8_t *p = buf;

	if (h->nregions > MIG_MAX_REGIONS || len > cap)
		return -ENOSPC;
	le32_encode(p, h->proto);
	le32_encode(p + 4, h->flags);
	le64_encode(p + 8, h->ram_bytes);
	le32_encode(p + 16, h->ncpus);
	le32_encode(p + 20, h->nregions);
	p += MIG_HELLO_FIXED_BYTES;
	for (uint32_t i = 0; i < h->nregions; i++, p += MIG_HELLO_REGION_BYTES) {
		le64_encode(p, h->region[i].gpa);
		le64_encode(p + 8, h->region[i].bytes);
	}
	le64_encode(p, h->disk_bytes);
	le32_encode(p + 8, h->disk_block_bytes);
	memset(p + 12, 0, 32);
	memcpy(p + 12, h->version, strnlen(h->version, 32));
	le32_encode(p + 44, h->nnics);
	return (int)len;
}

int mig_hello_decode(const uint8_t *buf, size_t len, struct mig_hello *h)
{
	const uint8_t *p = buf;
	uint64_t sum = 0;

	memset(h, 0, sizeof(*h));
	if (len < MIG_HELLO_FIXED_BYTES)
		return -EPROTO;
	h->proto = le32_decode(p);
	h->flags = le32_decode(p + 4);
	h->ram_bytes = le64_decode(p + 8);
	h->ncpus = le32_decode(p + 16);
	h->nregions = le32_decode(p + 20);
	if (h->nregions == 0 || h->nregions > MIG_MAX_REGIONS ||
	    len != MIG_HELLO_FIXED_BYTES + h->nregions * MIG_HELLO_REGION_BYTES +
			   MIG_HELLO_TAIL_BYTES)
		return -EPROTO;
	p += MIG_HELLO_FIXED_BYTES;
	for (uint32_t i = 0; i < h->nregions; i++, p += MIG_HELLO_REGION_BYTES) {
		h->region[i].gpa = le64_decode(p);
		h->region[i].bytes = le64_decode(p + 8);
		if (h->region[i].bytes == 0 || h->region[i].bytes % MIG_PAGE_BYTES ||
		    h->region[i].gpa % MIG_PAGE_BYTES ||
		    h->region[i].gpa + h->region[i].bytes < h->region[i].gpa)
			return -EPROTO;
		sum += h->region[i].bytes;
	}
	if (sum != h->ram_bytes || h->ncpus == 0)
		return -EPROTO;
	h->disk_bytes = le64_decode(p);
	h->disk_block_bytes = le32_decode(p + 8);
	if (h->disk_bytes && (h->disk_block_bytes == 0 || h->disk_block_bytes % 512))
		return -EPROTO;
	/* Unknown flags, or a disk sent along with a VM that has none, are not ours. */
	if ((h->flags & ~MIG_FLAGS_KNOWN) || ((h->flags & MIG_FLAG_WITH_DISK) && !h->disk_bytes))
		return -EPROTO;
	memcpy(h->version, p + 12, 32);
	h->version[32] = '\0';
	h->nnics = le32_decode(p + 44);
	if (h->nnics > MIG_MAX_NICS)
		return -EPROTO;
	return 0;
}

void mig_run_encode(const struct mig_run *r, uint8_t out[MIG_RUN_HDR_BYTES])
{
	le32_encode(out, r->region);
	le32_encode(out + 4, r->count);
	le64_encode(out + 8, r->first);
}

void mig_run_decode(const uint8_t in[MIG_RUN_HDR_BYTES], struct mig_run *r)
{
	r->region = le32_decode(in);
	r->count = le32_decode(in + 4);
	r->first = le64_decode(in + 8);
}

void mig_text_copy(char *out, size_t cap, const uint8_t *text, size_t len)
{
	size_t n;

	if (cap == 0)
		return;
	n = len < cap - 1 ? len : cap - 1;
	for (size_t i = 0; i < n; i++)
		out[i] = text[i] < 0x20 || text[i] == 0x7f ? '?' : (char)text[i];
	out[n] = '\0';
}

int mig_reply_send(struct stream *s, enum mig_reply type, const char *msg)
{
	uint8_t hdr[MIG_REPLY_HDR_BYTES];
	size_t len = msg ? strnlen(msg, MIG_REPLY_MAX_MSG) : 0;
	uint32_t crc;
	int rc;

	le32_encode(hdr, MIG_REPLY_MAGIC);
	le16_encode(hdr + 4, (uint16_t)type);
	le16_encode(hdr + 6, 0);
	le32_encode(hdr + 8, (uint32_t)len);
	crc = crc32c(0, hdr, 12);
	crc = crc32c(crc, msg, len);
	le32_encode(hdr + 12, crc);
	rc = stream_write_all(s, hdr, sizeof(hdr));
	if (rc == 0 && len)
		rc = stream_write_all(s, msg, len);
	if (rc == 0)
		rc = stream_flush(s);
	return rc;
}

int mig_reply_recv(struct stream *s, enum mig_reply *type, char *msg, size_t cap)
{
	uint8_t hdr[MIG_REPLY_HDR_BYTES];
	char body[MIG_REPLY_MAX_MSG];
	uint32_t len, crc;
	int rc;

	rc = stream_read_all(s, hdr, sizeof(hdr));
	if (rc < 0)
		return rc;
	len = le32_decode(hdr + 8);
	if (le32_decode(hdr) != MIG_REPLY_MAGIC || le16_decode(hdr + 6) != 0 ||
	    len > MIG_REPLY_MAX_MSG)
		return -EPROTO;
	rc = stream_read_all(s, body, len);
	if (rc < 0)
		return rc;
	crc = crc32c(crc32c(0, hdr, 12), body, len);
	if (crc != le32_decode(hdr + 12))
		return -EPROTO;
	*type = (enum mig_reply)le16_decode(hdr + 4);
	if (*type == MIG_REPLY_INVALID || *type >= MIG_REPLY_COUNT)
		return -EPROTO;
	mig_text_copy(msg, cap, (const uint8_t *)body, len);
	return 0;
}
