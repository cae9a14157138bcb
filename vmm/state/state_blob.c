/* The state blob's container: header, records and CRC32C trailer, and reads that need no VM. */
#include "vmm/vm_state.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "util/crc32c.h"
#include "vmm/x86/cpu_compat_priv.h"
#include "vmm/devices.h"
#include "vmm/state/state_priv.h"

void vs_blob_begin(struct vs_enc *e)
{
	vs_enc_bytes(e, VS_MAGIC, 4);
	vs_enc_u32(e, VS_FORMAT_VERSION);
	vs_enc_u32(e, 0); /* flags */
	vs_enc_u32(e, 0); /* reserved */
	vs_enc_u64(e, 0); /* total, patched by vs_blob_finish */
}

void vs_blob_finish(struct vs_enc *e)
{
	uint64_t total = (uint64_t)e->len + VS_TRAILER_BYTES;

	if (e->err)
		return;
	vs_enc_patch_u32(e, 16, (uint32_t)total);
	vs_enc_patch_u32(e, 20, (uint32_t)(total >> 32));
	vs_enc_u32(e, crc32c(0, e->buf, e->len));
}

int vs_blob_open(const uint8_t *blob, size_t len, struct dec *records, char *err,
		 size_t errlen)
{
	uint32_t version, flags, crc;
	uint64_t total;

	if (!blob || len < VS_HEADER_BYTES + VS_TRAILER_BYTES) {
		snprintf(err, errlen, "state blob truncated: %zu bytes, a header and trailer "
			 "alone take %u", len, VS_HEADER_BYTES + VS_TRAILER_BYTES);
		return -EBADMSG;
	}
	if (memcmp(blob, VS_MAGIC, 4) != 0) {
		snprintf(err, errlen, "not a godwit VM state blob (bad magic)");
		return -EBADMSG;
	}
	version = le32_decode(blob + 4);
	flags = le32_decode(blob + 8);
	total = le64_decode(blob + 16);
	/* Every earlier version is read (repo/README.md, "Compatibility"). */
	if (version == 0) {
		snprintf(err, errlen, "VM state blob: format version 0 is invalid");
		return -EBADMSG;
	}
	if (version > VS_FORMAT_VERSION) {
		snprintf(err, errlen, "VM state format version %" PRIu32 " is newer than %u, the "
			 "newest this godwit reads: upgrade godwit", version, VS_FORMAT_VERSION);
		return -EPROTONOSUPPORT;
	}
	if (flags != 0 || le32_decode(blob + 12) != 0) {
		snprintf(err, errlen, "VM state blob (format version %" PRIu32 ", this godwit reads "
			 "%u) has header flags 0x%" PRIx32 " it does not know: upgrade godwit",
			 version, VS_FORMAT_VERSION, flags);
		return -EPROTONOSUPPORT;
	}
	if (total != len) {
		snprintf(err, errlen, "VM state blob %s: header says %" PRIu64 " bytes, have %zu",
			 total > len ? "truncated" : "has trailing bytes", total, len);
		return -EBADMSG;
	}
	crc = crc32c(0, blob, len - VS_TRAILER_BYTES);
	if (crc != le32_decode(blob + len - VS_TRAILER_BYTES)) {
		snprintf(err, errlen, "VM state blob is corrupt (checksum mismatch)");
		return -EBADMSG;
	}
	*records = dec_init(blob + VS_HEADER_BYTES, len - VS_HEADER_BYTES - VS_TRAILER_BYTES);
	return 0;
}

int vs_blob_next(struct dec *records, struct vs_record *rec, char *err, size_t errlen)
{
	uint16_t type, reserved;
	uint32_t len;

	if (dec_left(records) == 0 && !records->err)
		return 0;
	dec_u16(records, &type);
	dec_u16(records, &reserved);
	dec_u32(records, &len);
	if (records->err) {
		snprintf(err, errlen, "VM state blob: record header cut short");
		return -EBADMSG;
	}
	if (type == VS_REC_INVALID || reserved != 0) {
		snprintf(err, errlen, "VM state blob: invalid record header (type %u, reserved %u)",
			 type, reserved);
		return -EBADMSG;
	}
	rec->payload = dec_take(records, len);
	if (!rec->payload) {
		snprintf(err, errlen, "VM state blob: record type %u claims %" PRIu32
			 " bytes, past the end", type, len);
		return -EBADMSG;
	}
	rec->type = type;
	rec->len = len;
	return 1;
}

int vs_blob_find(const uint8_t *blob, size_t len, uint16_t type, struct vs_record *rec,
		 char *err, size_t errlen)
{
	struct dec records;
	int rc;

	rc = vs_blob_open(blob, len, &records, err, errlen);
	if (rc < 0)
		return rc;
	while ((rc = vs_blob_next(&records, rec, err, errlen)) > 0) {
		if (rec->type == type)
			return 0;
	}
	if (rc == 0) {
		snprintf(err, errlen, "VM state blob has no record of type %u", type);
		rc = -ENOENT;
	}
	return rc;
}

int vs_nics_split(const uint8_t *payload, size_t len, struct vs_record nic[VS_MAX_NICS],
		  unsigned *count)
{
	struct dec d;
	uint32_t n;

	d = dec_init(payload, len);
	dec_u32(&d, &n);
	if (d.err || n == 0 || n > VS_MAX_NICS)
		return -EBADMSG;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t bytes;

		dec_u32(&d, &bytes);
		nic[i].type = VS_REC_VIRTIO_NET;
		nic[i].len = bytes;
		nic[i].payload = bytes <= VS_NIC_MAX_BYTES ? dec_take(&d, bytes) : NULL;
		if (!nic[i].payload)
			return -EBADMSG;
	}
	if (!dec_done(&d))
		return -EBADMSG;
	*count = n;
	return 0;
}

/* The NICs' MACs, from the VIRTIO_NET record if there is one. */
static int vm_state_peek_nics(const uint8_t *blob, size_t len, struct vm_state_info *out,
			      char *err, size_t errlen)
{
	struct vs_record rec, nic[VS_MAX_NICS];
	unsigned count;
	int rc;

	rc = vs_blob_find(blob, len, VS_REC_VIRTIO_NET, &rec, err, errlen);
	if (rc == -ENOENT)
		return 0;
	if (rc == 0)
		rc = vs_nics_split(rec.payload, rec.len, nic, &count);
	for (unsigned i = 0; rc == 0 && i < count; i++)
		rc = virtio_net_state_mac(nic[i].payload, nic[i].len, out->nic_mac[i]);
	if (rc < 0) {
		snprintf(err, errlen, "VM state blob: malformed NIC record");
		return -EBADMSG;
	}
	out->nnics = count;
	return 0;
}

int vm_state_peek(const uint8_t *blob, size_t len, struct vm_state_info *out, char *err,
		  size_t errlen)
{
	struct vs_record rec;
	struct vs_machine m = { 0 };
	struct dec d;
	struct vs_io io = { .d = &d };
	int rc;

	rc = vs_blob_find(blob, len, VS_REC_MACHINE, &rec, err, errlen);
	if (rc < 0)
		return rc;
	d = dec_init(rec.payload, rec.len);
	vs_io_machine(&io, &m);
	if (!dec_done(&d)) {
		snprintf(err, errlen, "VM state blob: machine record of %" PRIu32 " bytes, "
			 "expected %u", rec.len, VS_MACHINE_BYTES);
		return -EBADMSG;
	}
	out->ram_bytes = m.ram_bytes;
	out->ncpus = m.ncpus;
	out->disk_bytes = m.disk_bytes;
	out->nnics = 0;
	return vm_state_peek_nics(blob, len, out, err, errlen);
}

int vm_state_check_cpu(const uint8_t *blob, size_t len, char *err, size_t errlen)
{
	struct cpuid_table *want;
	struct vs_record rec;
	struct dec d;
	int rc, kvm_fd;

	rc = vs_blob_find(blob, len, VS_REC_CPUID, &rec, err, errlen);
	if (rc < 0)
		return rc;
	want = malloc(sizeof(*want));
	if (!want) {
		snprintf(err, errlen, "checking CPU features: out of memory");
		return -ENOMEM;
	}
	d = dec_init(rec.payload, rec.len);
	rc = vs_dec_cpuid(&d, want);
	if (rc < 0) {
		snprintf(err, errlen, "VM state blob: malformed CPUID record");
		goto out;
	}
	kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm_fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot open /dev/kvm: %s", strerror(-rc));
		goto out;
	}
	rc = cpu_compat_check(kvm_fd, want, err, errlen);
	close(kvm_fd);
out:
	free(want);
	return rc;
}

int vs_blob_msr(const uint8_t *blob, size_t len, unsigned vcpu, uint32_t index,
		uint64_t *value)
{
	struct vcpu_state *s = calloc(1, sizeof(*s));
	struct dec records, d;
	struct vs_io io = { .d = &d };
	struct vs_record rec;
	char err[160];
	int rc, found = -ENOENT;

	if (!s)
		return -ENOMEM;
	rc = vs_blob_open(blob, len, &records, err, sizeof(err));
	while (rc >= 0 && (rc = vs_blob_next(&records, &rec, err, sizeof(err))) > 0) {
		if (rec.type != VS_REC_VCPU)
			continue;
		d = dec_init(rec.payload, rec.len);
		vs_io_vcpu(&io, s);
		vcpu_state_free(s);
		if (!dec_done(&d)) {
			rc = -EBADMSG;
			break;
		}
		if (s->id != vcpu)
			continue;
		for (uint32_t i = 0; i < s->nmsrs; i++) {
			if (s->msrs[i].index == index) {
				*value = s->msrs[i].data;
				found = 0;
			}
		}
		break;
	}
	free(s);
	return rc < 0 ? rc : found;
}
