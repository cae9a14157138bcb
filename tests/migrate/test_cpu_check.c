/*
 * `godwit receive` checks the source VM's CPUID before any page (proto.h, capability
 * "cpuid"): a real source's HELLO and CPUID (the 0.1.0 golden sample's migration stream,
 * tests/fixtures) are accepted; the same CPUID with one feature bit this host's KVM does
 * not offer (test input made from the real one) is refused, naming the feature, and the
 * receiver exits saying so, with no RAM sent.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "migrate/conn.h"
#include "migrate/proto.h"
#include "tests/common/gw_fixture.h"
#include "tests/common/gw_test.h"
#include "transport/fd_stream.h"
#include "transport/frame.h"
#include "transport/stream.h"
#include "transport/zstd_stream.h"
#include "vmm/state/state_format.h"
#include "vmm/state/state_priv.h"

#define STREAM GW_FIXTURE("0.1.0") "/migration.stream"
#define BUF_BYTES (2u << 20)

static struct gw_proc DST;
static uint8_t *hello, *cpuid;
static size_t hello_len, cpuid_len;

static void setup(void)
{
	gw_proc_init(&DST);
	hello = cpuid = NULL;
}

static void teardown(void)
{
	gw_proc_cleanup(&DST);
	free(hello);
	free(cpuid);
}

TestSuite(cpu_check, .init = setup, .fini = teardown, .timeout = 120);

/* The sample source's HELLO payload and its VM's CPUID table (from its STATE record). */
static void read_sample(void)
{
	struct stream *file, *z, *in;
	struct vs_record rec;
	uint8_t *buf = malloc(BUF_BYTES);
	uint16_t type;
	size_t len;
	char err[256];

	cr_assert_not_null(buf);
	int fd = open(STREAM, O_RDONLY | O_CLOEXEC);

	cr_assert_geq(fd, 0, "open %s", STREAM);
	cr_assert_eq(fd_stream_open(&file, fd, FD_STREAM_OWN, 10000), 0);
	cr_assert_eq(zstd_reader_open(&z, file), 0);
	cr_assert_eq(frame_reader_open(&in, z), 0);
	do {
		cr_assert_eq(frame_read(in, &type, NULL, buf, BUF_BYTES, &len), 0);
		if (type == MIG_REC_HELLO) {
			hello = malloc(len);
			memcpy(hello, buf, len);
			hello_len = len;
		}
	} while (type != MIG_REC_STATE);
	cr_assert_eq(vs_blob_find(buf, len, VS_REC_CPUID, &rec, err, sizeof(err)), 0, "%s", err);
	cpuid = malloc(rec.len);
	memcpy(cpuid, rec.payload, rec.len);
	cpuid_len = rec.len;
	stream_close(in, false);
	free(buf);
}

/*
 * Start `godwit receive` (plaintext, loopback), play the sample source up to its CPUID,
 * and return the destination's answer to it (msg: its reason).
 */
static enum mig_reply offer_cpuid(char *msg, size_t cap)
{
	const struct mig_auth auth = { .insecure_plaintext = true };
	const struct zstd_stream_opts zo = { .no_checksum = true, .adaptive = true };
	struct stream *conn, *z, *out;
	enum mig_reply reply;
	char line[256], err[256];
	const char *port;
	int fd;

	gw_spawn(&DST, (const char *const[]){ "receive", "--listen", "127.0.0.1:0",
					      "--insecure-plaintext", "--console", DST.console,
					      NULL });
	cr_assert(gw_wait_line(&DST, DST.err, "godwit: waiting for a VM on ", 1, line,
			       sizeof(line), 30000), "%s", gw_read_file(DST.err));
	port = strrchr(line, ':');
	cr_assert_not_null(port);
	snprintf(err, sizeof(err), "127.0.0.1:%d", atoi(port + 1));
	cr_assert_eq(mig_conn_connect(&conn, &fd, err, &auth, 10000, NULL, err, sizeof(err)), 0,
		     "%s", err);
	cr_assert_eq(zstd_writer_open(&z, conn, &zo), 0);
	cr_assert_eq(frame_writer_open_flags(&out, z, 0), 0);
	cr_assert_eq(frame_write(out, MIG_REC_HELLO, 0, hello, hello_len), 0);
	cr_assert_eq(stream_flush(out), 0);
	cr_assert_eq(mig_reply_recv(conn, &reply, msg, cap), 0);
	cr_assert_eq(reply, MIG_REPLY_ACCEPT, "%s", msg);
	cr_assert(strstr(msg, MIG_CAP_CPUID), "ACCEPT names no cpuid capability: \"%s\"", msg);
	cr_assert_eq(frame_write(out, MIG_REC_CPUID, 0, cpuid, cpuid_len), 0);
	cr_assert_eq(stream_flush(out), 0);
	cr_assert_eq(mig_reply_recv(conn, &reply, msg, cap), 0);
	/* No page was sent; end the stream as a cancelling source does. */
	frame_write(out, MIG_REC_ABORT, 0, "test over", 9);
	stream_close(out, false);
	return reply;
}

Test(cpu_check, the_sample_sources_cpuid_is_accepted_before_any_page)
{
	char msg[MIG_REPLY_MAX_MSG + 1];

	require_kvm();
	read_sample();
	cr_assert_eq(offer_cpuid(msg, sizeof(msg)), MIG_REPLY_ACCEPT, "%s", msg);
}

Test(cpu_check, a_feature_this_host_lacks_is_refused_before_any_page_naming_it)
{
	char msg[MIG_REPLY_MAX_MSG + 1], want[128];
	const char *name;
	unsigned bit;
	char *err;

	require_kvm();
	read_sample();
	name = gw_fixture_missing_feature(&bit);
	if (!name)
		cr_skip_test("this host offers every candidate feature of CPUID leaf 7");
	gw_fixture_set_leaf7_ebx(cpuid, cpuid_len, bit);
	cr_assert_eq(offer_cpuid(msg, sizeof(msg)), MIG_REPLY_REFUSE, "%s", msg);
	snprintf(want, sizeof(want), "CPU features missing on this host: %s", name);
	cr_assert(strstr(msg, want), "%s", msg);
	cr_assert(gw_wait_exit(&DST, 30000), "receive did not exit");
	cr_assert_neq(WEXITSTATUS(DST.status), 0);
	err = gw_read_file(DST.err);
	cr_assert(strstr(err, want), "%s", err);
	free(err);
}
