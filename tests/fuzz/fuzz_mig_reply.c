/* Fuzz the migration source's reader of the destination's replies (migrate/proto.c). */
#include <stdlib.h>
#include <string.h>

#include "migrate/proto.h"
#include "tests/fuzz/fuzz.h"
#include "util/byteorder.h"
#include "util/crc32c.h"
#include "transport/mem_stream.h"

/*
 * Input: replies as the destination writes them on the connection (header, message),
 * with each one's CRC32C recomputed. The source reads them one by one with
 * mig_reply_recv, as it does after HELLO, each round and the state. A reason it reads goes
 * into the source's one-line error message, so it must come out as one printable line.
 */

static void fix_crcs(uint8_t *s, size_t len)
{
	size_t off = 0;

	while (len - off >= MIG_REPLY_HDR_BYTES) {
		uint32_t n = le32_decode(s + off + 8);

		if (n > len - off - MIG_REPLY_HDR_BYTES)
			break;
		le32_encode(s + off + 12, crc32c(crc32c(0, s + off, 12), s + off + 16, n));
		off += MIG_REPLY_HDR_BYTES + n;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char msg[MIG_REPLY_MAX_MSG + 1];
	uint8_t *s = fuzz_dup(data, size);
	struct stream *mem;
	enum mig_reply type;
	unsigned n = 0;

	fix_crcs(s, size);
	if (mem_stream_reader(&mem, s, size) < 0)
		abort();
	while (mig_reply_recv(mem, &type, msg, sizeof(msg)) == 0) {
		if (strlen(msg) > MIG_REPLY_MAX_MSG)
			abort();
		fuzz_assert_one_line(msg); /* it goes into the source's error line */
		n++;
	}
	if (n)
		fuzz_accepted++;
	stream_close(mem, false);
	free(s);
	return 0;
}

int fuzz_write_seeds(const char *dir)
{
	struct stream *mem;
	struct mem_buf out;
	int rc;

	rc = mem_stream_writer(&mem, &out, MEM_STREAM_UNLIMITED);
	if (rc == 0)
		rc = mig_reply_send(mem, MIG_REPLY_ACCEPT, NULL);
	if (rc == 0)
		rc = mig_reply_send(mem, MIG_REPLY_ROUND_DONE, NULL);
	if (rc == 0)
		rc = mig_reply_send(mem, MIG_REPLY_ERROR, "disk /var/lib/godwit/vm1.img: writing "
				    "blocks 17+1: No space left on device");
	if (rc == 0)
		rc = mig_reply_send(mem, MIG_REPLY_READY, NULL);
	rc = stream_close(mem, rc == 0);
	if (rc == 0)
		rc = fuzz_seed_write(dir, "seed-replies", out.data, out.len);
	free(out.data);
	return rc;
}
