/*
 * Golden samples (tests/fixtures/): objects an earlier release wrote, read with today's
 * code, checked for what they hold and not only for parsing: the snapshots and their
 * parent, the guest's code in the RAM they hold (its hash taken from the guest's ELF when
 * the samples were made), the vCPU in the state blob, the HELLO and pages a source sent.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migrate/proto.h"
#include "repo/index_file.h"
#include "repo/manifest.h"
#include "repo/pack.h"
#include "repo/repo.h"
#include "repo/repo_config.h"
#include "repo/repo_key.h"
#include "tests/common/gw_fixture.h"
#include "transport/fd_stream.h"
#include "transport/frame.h"
#include "transport/zstd_stream.h"
#include "vmm/state/state_format.h"
#include "vmm/state/state_priv.h"
#include "vmm/vm_state.h"

#define SAMPLES GW_FIXTURE("0.1.0")

static char WORK[128], REPO[192], KEY[192];
static struct repo *repo;

/* A value of the samples' expected file (asserts it is there); valid for 8 more calls. */
static const char *expect(const char *name)
{
	static char value[8][96];
	static unsigned next;
	char *out = value[next++ % 8];

	gw_fixture_expect("0.1.0", name, out, sizeof(value[0]));
	return out;
}

static uint64_t expect_u64(const char *name)
{
	return strtoull(expect(name), NULL, 10);
}

/* The samples are never written to: the repository is opened in a copy. */
static void setup(void)
{
	struct repo_key key;
	char err[256];

	gw_fixture_copy("0.1.0", WORK, sizeof(WORK));
	snprintf(REPO, sizeof(REPO), "%s/repo", WORK);
	snprintf(KEY, sizeof(KEY), "%s/repo.key", WORK);
	cr_assert_eq(repo_key_load(&key, KEY, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(repo_open_keyed(&repo, REPO, &key, err, sizeof(err)), 0, "%s", err);
	repo_key_wipe(&key);
}

static void teardown(void)
{
	repo_close(repo);
	repo = NULL;
	gw_fixture_remove(WORK);
}

TestSuite(fixtures_0_1_0, .init = setup, .fini = teardown, .timeout = 60);

static void sha256_hex(const void *p, size_t len, char out[65])
{
	uint8_t md[32];
	unsigned mdlen = 0;

	cr_assert_eq(EVP_Digest(p, len, md, &mdlen, EVP_sha256(), NULL), 1);
	for (unsigned i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void load(const char *which, struct snap_manifest *m)
{
	char err[256];

	cr_assert_eq(snap_load(repo, expect(which), m, err, sizeof(err)), 0, "%s", err);
}

Test(fixtures_0_1_0, the_repository_holds_a_full_snapshot_and_its_incremental)
{
	struct snap_summary *list;
	struct snap_manifest full, inc;
	size_t n, nbad;

	cr_assert_eq(snap_list(repo, &list, &n, &nbad), 0);
	cr_assert_eq(n, 2);
	cr_assert_eq(nbad, 0);
	free(list);
	load("full", &full);
	load("incremental", &inc);
	cr_assert_str_eq(full.parent, "");
	cr_assert_str_eq(inc.parent, expect("full"));
	cr_assert_str_eq(expect("incremental_parent"), expect("full"));
	for (struct snap_manifest *m = &full; m; m = m == &full ? &inc : NULL) {
		cr_assert_str_eq(m->godwit_version, expect("version"));
		cr_assert_eq(m->ram_bytes, expect_u64("ram_bytes"));
		cr_assert_eq(m->ncpus, expect_u64("ncpus"));
		cr_assert_eq(m->disk_bytes, 0);
		cr_assert_gt(m->nregions, 0);
	}
	manifest_free(&full);
	manifest_free(&inc);
}

/*
 * Every chunk a snapshot names decrypts to its id, and the bytes at the guest's code
 * are the code the guest's ELF held when the samples were made.
 */
static void expect_ram(const char *which)
{
	uint64_t gpa = expect_u64("guest_text_gpa"), bytes = expect_u64("guest_text_bytes");
	uint8_t *text = calloc(1, bytes);
	struct snap_manifest m;
	unsigned stored = 0;
	char hex[65];

	cr_assert_not_null(text);
	load(which, &m);
	for (uint32_t r = 0; r < m.nregions; r++) {
		const struct snap_region *reg = &m.regions[r];

		for (uint64_t c = 0; c < reg->nchunks; c++) {
			uint64_t at = reg->gpa + c * reg->chunk_bytes, lo, hi;
			uint8_t *data;
			size_t len;
			bool same;

			if (blob_id_is_zero(&reg->ids[c]))
				continue;
			cr_assert_eq(repo_blob_get(repo, &reg->ids[c], &data, &len), 0,
				     "%s: chunk %" PRIu64 " of region %u", which, c, r);
			cr_assert_eq(blob_id_matches(repo, &reg->ids[c], data, len, &same), 0);
			cr_assert(same, "%s: chunk %" PRIu64 " is not what its id says", which, c);
			stored++;
			lo = at > gpa ? at : gpa;
			hi = at + len < gpa + bytes ? at + len : gpa + bytes;
			if (lo < hi)
				memcpy(text + (lo - gpa), data + (lo - at), hi - lo);
			free(data);
		}
	}
	cr_assert_gt(stored, 0);
	sha256_hex(text, bytes, hex);
	cr_assert_str_eq(hex, expect("guest_text_sha256"), "%s: the guest's code differs", which);
	free(text);
	manifest_free(&m);
}

Test(fixtures_0_1_0, the_full_snapshot_holds_the_guest_code)
{
	expect_ram("full");
}

Test(fixtures_0_1_0, the_incremental_snapshot_holds_the_guest_code)
{
	expect_ram("incremental");
}

/* The state blob: one vCPU in long mode with paging, executing the guest's code. */
static void expect_state(const uint8_t *blob, size_t len)
{
	uint64_t text = expect_u64("guest_text_gpa"), text_end = text + expect_u64("guest_text_bytes");
	struct vcpu_state *s = calloc(1, sizeof(*s));
	struct vm_state_info info;
	struct dec records, d;
	struct vs_io io = { .d = &d };
	struct vs_record rec;
	unsigned nvcpu = 0, ntypes = 0;
	char err[256];
	int rc;

	cr_assert_not_null(s);
	cr_assert_eq(vm_state_peek(blob, len, &info, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(info.ncpus, expect_u64("ncpus"));
	cr_assert_eq(info.ram_bytes, expect_u64("ram_bytes"));
	cr_assert_eq(info.disk_bytes, 0);
	cr_assert_eq(info.nnics, 0);
	cr_assert_eq(le32_decode(blob + 4), 1, "the 0.1.0 state format is version 1");
	cr_assert_eq(vs_blob_open(blob, len, &records, err, sizeof(err)), 0, "%s", err);
	while ((rc = vs_blob_next(&records, &rec, err, sizeof(err))) > 0) {
		cr_assert_lt(rec.type, VS_REC_COUNT, "a record type 0.1.0 did not write");
		ntypes++;
		if (rec.type != VS_REC_VCPU)
			continue;
		d = dec_init(rec.payload, rec.len);
		vs_io_vcpu(&io, s);
		cr_assert(dec_done(&d), "vCPU record of %" PRIu32 " bytes", rec.len);
		cr_assert_eq(s->id, nvcpu);
		cr_assert_geq(s->regs.rip, text, "rip 0x%llx", s->regs.rip);
		cr_assert_lt(s->regs.rip, text_end, "rip 0x%llx", s->regs.rip);
		cr_assert(s->regs.rflags & 2, "rflags bit 1 is always set");
		cr_assert_eq(s->sregs_kind == VS_SREGS_KIND_SREGS2 ? s->sregs2.efer & 0x400 :
			     s->sregs.efer & 0x400, 0x400, "long mode active");
		vcpu_state_free(s);
		nvcpu++;
	}
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert_eq(nvcpu, 1);
	/* MACHINE CPUID VCPU IRQCHIP PIT CLOCK SERIAL PM PCI: no disk, no NIC. */
	cr_assert_eq(ntypes, 9);
	free(s);
}

Test(fixtures_0_1_0, the_state_blobs_decode_to_one_vcpu_running_the_guest)
{
	const char *which[] = { "full", "incremental" };

	for (unsigned i = 0; i < 2; i++) {
		struct snap_manifest m;
		uint8_t *blob;
		size_t len;

		load(which[i], &m);
		cr_assert_eq(repo_blob_get(repo, &m.state_id, &blob, &len), 0);
		expect_state(blob, len);
		free(blob);
		manifest_free(&m);
	}
}

/*
 * The migration stream: the HELLO the source was given, then round 0's pages, which hold
 * the guest's code, then STATE and DONE.
 */
Test(fixtures_0_1_0, the_migration_stream_says_hello_and_carries_the_guest)
{
	uint64_t gpa = expect_u64("guest_text_gpa"), bytes = expect_u64("guest_text_bytes");
	uint8_t *buf = malloc(MIG_RUN_HDR_BYTES + MIG_MAX_RUN_PAGES * MIG_PAGE_BYTES + 64);
	uint8_t *text = calloc(1, bytes);
	struct stream *file, *z, *in;
	struct mig_hello h;
	uint64_t region_sum = 0;
	uint16_t type;
	size_t len, cap = MIG_RUN_HDR_BYTES + MIG_MAX_RUN_PAGES * MIG_PAGE_BYTES + 64;
	unsigned pages = 0, states = 0;
	bool done = false;
	char hex[65];

	cr_assert(buf && text);
	int fd = open(SAMPLES "/migration.stream", O_RDONLY | O_CLOEXEC);

	cr_assert_geq(fd, 0, "open the migration sample");
	cr_assert_eq(fd_stream_open(&file, fd, FD_STREAM_OWN, 10000), 0);
	cr_assert_eq(zstd_reader_open(&z, file), 0);
	cr_assert_eq(frame_reader_open(&in, z), 0);
	cr_assert_eq(frame_read(in, &type, NULL, buf, cap, &len), 0);
	cr_assert_eq(type, MIG_REC_HELLO);
	cr_assert_eq(mig_hello_decode(buf, len, &h), 0);
	cr_assert_eq(h.proto, expect_u64("migration_proto"));
	cr_assert_geq(h.proto, MIG_PROTO_PREV_VERSION, "0.1.0's HELLO is still accepted");
	cr_assert_eq(h.flags, expect_u64("migration_flags"));
	cr_assert_eq(h.ram_bytes, expect_u64("ram_bytes"));
	cr_assert_eq(h.ncpus, expect_u64("ncpus"));
	cr_assert_eq(h.nnics, expect_u64("migration_nnics"));
	cr_assert_eq(h.disk_bytes, 0);
	cr_assert_str_eq(h.version, expect("version"));
	for (uint32_t r = 0; r < h.nregions; r++)
		region_sum += h.region[r].bytes;
	cr_assert_eq(region_sum, h.ram_bytes);
	while (!done) {
		struct mig_run run;

		cr_assert_eq(frame_read(in, &type, NULL, buf, cap, &len), 0, "record %u", pages);
		switch (type) {
		case MIG_REC_PAGES:
			cr_assert_geq(len, MIG_RUN_HDR_BYTES);
			mig_run_decode(buf, &run);
			cr_assert_lt(run.region, h.nregions);
			cr_assert_eq(len, MIG_RUN_HDR_BYTES + (size_t)run.count * MIG_PAGE_BYTES);
			for (uint32_t p = 0; p < run.count; p++) {
				uint64_t at = h.region[run.region].gpa +
					      (run.first + p) * MIG_PAGE_BYTES, lo, hi;

				lo = at > gpa ? at : gpa;
				hi = at + MIG_PAGE_BYTES < gpa + bytes ? at + MIG_PAGE_BYTES :
									  gpa + bytes;
				if (lo < hi && states == 0)
					memcpy(text + (lo - gpa), buf + MIG_RUN_HDR_BYTES +
					       (size_t)p * MIG_PAGE_BYTES + (lo - at), hi - lo);
			}
			pages += run.count;
			break;
		case MIG_REC_STATE:
			expect_state(buf, len);
			states++;
			break;
		case MIG_REC_DONE:
			done = true;
			break;
		case MIG_REC_ZERO:
		case MIG_REC_ROUND_END:
			break;
		default:
			cr_assert_fail("record type %u before DONE", type);
		}
	}
	cr_assert_eq(states, 1);
	cr_assert_gt(pages, 0);
	sha256_hex(text, bytes, hex);
	cr_assert_str_eq(hex, expect("guest_text_sha256"), "the guest's code differs");
	stream_close(in, false);
	free(text);
	free(buf);
}

/*
 * Each object of the samples, made one version newer than this godwit reads, is refused
 * with the rule's line: the reason names its version and the newest this godwit reads,
 * and says "upgrade godwit". (The sample itself is left as it is.)
 */
static uint8_t *sample(const char *dir, size_t *len)
{
	char cmd[400], path[300];
	FILE *f;
	uint8_t *buf;
	long n;

	snprintf(cmd, sizeof(cmd), "find '%s/%s' -type f | sort | head -1", REPO, dir);
	f = popen(cmd, "r");
	cr_assert_not_null(f);
	cr_assert_not_null(fgets(path, sizeof(path), f));
	pclose(f);
	path[strcspn(path, "\n")] = '\0';
	f = fopen(path, "rb");
	cr_assert_not_null(f, "%s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = malloc((size_t)n);
	cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static void bump(uint8_t *buf, unsigned version)
{
	buf[4] = (uint8_t)version;
	buf[5] = (uint8_t)(version >> 8);
}

Test(fixtures_0_1_0, a_newer_version_of_each_object_is_refused_saying_upgrade_godwit)
{
	struct pack_entry *entries = NULL;
	struct index_file ix;
	struct snap_manifest m;
	const char *why = NULL;
	uint8_t *buf;
	size_t len;
	uint32_t n;
	char cmd[512], err[320];
	struct repo *r2;
	struct repo_key key;

	buf = sample("snapshots", &len);
	bump(buf, MANIFEST_FORMAT_VERSION + 1);
	cr_assert_eq(manifest_decode(buf, len, NULL, &m, &why), -EPROTONOSUPPORT);
	cr_assert(strstr(why, "manifest format version 2 is newer than 1") &&
		  strstr(why, "upgrade godwit"), "%s", why);
	free(buf);
	buf = sample("index", &len);
	bump(buf, INDEX_FORMAT_VERSION + 1);
	cr_assert_eq(index_file_decode(buf, len, NULL, &ix, &why), -EPROTONOSUPPORT);
	cr_assert(strstr(why, "index format version 2 is newer than 1") &&
		  strstr(why, "upgrade godwit"), "%s", why);
	free(buf);
	buf = sample("data", &len);
	bump(buf, PACK_FORMAT_VERSION + 1);
	cr_assert_eq(pack_decode(buf, len, NULL, &entries, &n, &why), -EPROTONOSUPPORT);
	cr_assert(strstr(why, "pack format version 2 is newer than 1") &&
		  strstr(why, "upgrade godwit"), "%s", why);
	free(buf);
	/* The config, through the repository: the line names the repository too. */
	snprintf(cmd, sizeof(cmd), "printf '\\003' | dd of='%s/config' bs=1 seek=4 conv=notrunc "
		 "status=none", REPO);
	cr_assert_eq(system(cmd), 0);
	cr_assert_eq(repo_key_load(&key, KEY, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(repo_open_keyed(&r2, REPO, &key, err, sizeof(err)), -EPROTONOSUPPORT);
	cr_assert(strstr(err, "format version 3 is newer than 2") &&
		  strstr(err, "upgrade godwit"), "%s", err);
	cr_assert_null(strchr(err, '\n'), "one line: %s", err);
	repo_key_wipe(&key);
}
