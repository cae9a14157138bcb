/* The migration destination: receive RAM, disk and state into a new VM, start on GO. */
#include "migrate/migrate.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "migrate/conn.h"
#include "migrate/dest_priv.h"
#include "migrate/verify.h"
#include "util/byteorder.h"
#include "util/range.h"
#include "transport/frame.h"
#include "transport/stream.h"
#include "transport/zstd_stream.h"
#include "vmm/vm_lifecycle.h"

static int refuse(struct mig_dest *d, enum mig_reply type, char *err, size_t errlen, int rc,
		  const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Record why in err and tell the source (best effort). Returns rc. */
static int refuse(struct mig_dest *d, enum mig_reply type, char *err, size_t errlen, int rc,
		  const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	if (d->conn)
		mig_reply_send(d->conn, type, err);
	return rc;
}

int mig_dest_check_layout(const struct mig_dest *d, char *why, size_t len)
{
	if (d->nreg != d->hello.nregions) {
		snprintf(why, len, "RAM layout differs: %u regions here, %u at the source",
			 d->nreg, d->hello.nregions);
		return -EPROTO;
	}
	for (unsigned r = 0; r < d->nreg; r++) {
		if (d->reg[r].gpa != d->hello.region[r].gpa ||
		    d->reg[r].bytes != d->hello.region[r].bytes) {
			snprintf(why, len, "RAM region %u differs from the source's", r);
			return -EPROTO;
		}
	}
	if (d->hello.nnics != d->nnics) {
		snprintf(why, len, "the source VM has %u NICs, this host gave %u: give one --net "
			 "per NIC to 'godwit receive'", d->hello.nnics, d->nnics);
		return -EPROTO;
	}
	if (d->hello.disk_bytes != d->disk_bytes) {
		snprintf(why, len, "disk of %" PRIu64 " bytes here, %" PRIu64 " at the source: "
			 "give --disk an image of the same size", d->disk_bytes,
			 d->hello.disk_bytes);
		return -EPROTO;
	}
	return 0;
}

int mig_dest_read_hello(struct mig_dest *d, char *err, size_t errlen)
{
	uint16_t type, flags;
	size_t len;
	int rc;

	rc = frame_read(d->in, &type, &flags, d->buf, MIG_DEST_BUF_BYTES, &len);
	if (rc < 0) {
		snprintf(err, errlen, "no migration stream from the source: %s", strerror(-rc));
		return rc;
	}
	if (type != MIG_REC_HELLO || mig_hello_decode(d->buf, len, &d->hello) < 0)
		return refuse(d, MIG_REPLY_REFUSE, err, errlen, -EPROTO,
			      "the source sent no valid HELLO (record type %u)", type);
	if (d->hello.proto > MIG_PROTO_VERSION)
		return refuse(d, MIG_REPLY_REFUSE, err, errlen, -EPROTO,
			      "the source's migration protocol %u is newer than %u, the newest "
			      "this godwit speaks: upgrade godwit here",
			      d->hello.proto, MIG_PROTO_VERSION);
	if (d->hello.proto < MIG_PROTO_PREV_VERSION)
		return refuse(d, MIG_REPLY_REFUSE, err, errlen, -EPROTO,
			      "the source's migration protocol %u is older than %u, the oldest "
			      "this godwit speaks: upgrade godwit on the source",
			      d->hello.proto, MIG_PROTO_PREV_VERSION);
	return 0;
}

/* The VM create_vm made for the HELLO, as the machine here: RAM regions and disk. */
static void dest_machine(struct mig_dest *d)
{
	d->nreg = vm_ram_nregions(d->vm);
	if (d->nreg > MIG_MAX_REGIONS)
		d->nreg = MIG_MAX_REGIONS + 1; /* never equals the HELLO's count */
	for (unsigned r = 0; r < d->nreg && r < MIG_MAX_REGIONS; r++)
		vm_ram_region(d->vm, r, &d->reg[r]);
	d->disk_bytes = vm_disk_present(d->vm) ? vm_disk_bytes(d->vm) : 0;
	d->disk_path = vm_disk_path(d->vm);
	d->nnics = vm_nic_count(d->vm);
}

static int handle_hello(struct mig_dest *d, mig_create_vm_fn create_vm, void *ctx, char *err,
			size_t errlen)
{
	char why[256] = "";
	int rc;

	/* The HELLO is in: mig_gate_accept read it. */
	rc = create_vm(ctx, &d->hello, &d->vm, why, sizeof(why));
	if (rc < 0)
		return refuse(d, MIG_REPLY_REFUSE, err, errlen, rc, "%s", why);
	dest_machine(d);
	rc = mig_dest_check_layout(d, why, sizeof(why));
	if (rc < 0)
		return refuse(d, MIG_REPLY_REFUSE, err, errlen, rc, "%s", why);
	if (d->hello.flags & MIG_FLAG_WITH_DISK) {
		/* mig_hello_decode admits the flag only with a disk, and the disks matched. */
		if (!d->disk_path)
			return refuse(d, MIG_REPLY_REFUSE, err, errlen, -EPROTO,
				      "the source sends its disk, but this VM has none");
		/* Read too: --verify digests what was written. */
		d->disk_fd = open(d->disk_path, O_RDWR | O_CLOEXEC);
		if (d->disk_fd < 0) {
			rc = -errno;
			return refuse(d, MIG_REPLY_REFUSE, err, errlen, rc, "disk %s: %s",
				      d->disk_path, strerror(-rc));
		}
	}
	rc = mig_reply_send(d->conn, MIG_REPLY_ACCEPT, MIG_CAPS);
	if (rc < 0)
		snprintf(err, errlen, "answering the source: %s", strerror(-rc));
	return rc;
}

/* Pages [first, first + count) of region r, checked against the region. */
static uint8_t *dest_pages(struct mig_dest *d, const struct mig_run *run)
{
	uint64_t npages;

	if (run->region >= d->nreg || run->count == 0 || run->count > MIG_MAX_RUN_PAGES)
		return NULL;
	npages = d->reg[run->region].bytes / MIG_PAGE_BYTES;
	if (!range_ok(run->first, run->count, npages))
		return NULL;
	return d->reg[run->region].hva + run->first * MIG_PAGE_BYTES;
}

static int write_disk(struct mig_dest *d, const struct mig_run *run, const uint8_t *data)
{
	uint64_t bb = d->hello.disk_block_bytes, disk = d->hello.disk_bytes;
	uint64_t nblocks = (disk + bb - 1) / bb;

	if (d->disk_fd < 0 || run->count == 0 || run->count > MIG_MAX_RUN_BLOCKS ||
	    !range_ok(run->first, run->count, nblocks))
		return -EPROTO;
	for (uint32_t i = 0; i < run->count; i++) {
		uint64_t off = (run->first + i) * bb;
		size_t len = (size_t)(disk - off < bb ? disk - off : bb), done = 0;

		while (done < len) {
			ssize_t n = data ? pwrite(d->disk_fd, data + i * bb + done, len - done,
						  (off_t)(off + done))
					 : (ssize_t)(fallocate(d->disk_fd, FALLOC_FL_PUNCH_HOLE |
							       FALLOC_FL_KEEP_SIZE, (off_t)off,
							       (off_t)len) == 0 ? (ssize_t)len : -1);

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && !data && (errno == EOPNOTSUPP || errno == ENOSYS)) {
				static const uint8_t zero[4096];
				size_t chunk = len - done < sizeof(zero) ? len - done : sizeof(zero);

				n = pwrite(d->disk_fd, zero, chunk, (off_t)(off + done));
			}
			if (n < 0)
				return -errno; /* ENOSPC, EIO, ...: the caller names the disk */
			if (n == 0)
				return -EIO; /* no progress, which pwrite never makes for len > 0 */
			done += (size_t)n;
		}
	}
	return 0;
}

/*
 * A VERIFY record (hdr and count digests in buf, len bytes): compare with the digests of
 * our own copy of those pages. Records must follow each other with no gap or overlap.
 * Returns 0, or -EPROTO for a record out of place or malformed.
 */
static int verify_pages(struct mig_dest *d, const struct mig_run *run, size_t len)
{
	uint64_t npages;
	int rc;

	if (d->vreg < d->nreg && d->vpage == d->reg[d->vreg].bytes / MIG_PAGE_BYTES) {
		d->vreg++;
		d->vpage = 0;
		free(d->vpop);
		d->vpop = NULL;
	}
	if (run->region != d->vreg || run->region >= d->nreg || run->first != d->vpage ||
	    run->count == 0 || run->count > MIG_MAX_RUN_DIGESTS ||
	    len != MIG_RUN_HDR_BYTES + (size_t)run->count * MIG_DIGEST_BYTES)
		return -EPROTO;
	npages = d->reg[run->region].bytes / MIG_PAGE_BYTES;
	if (!range_ok(run->first, run->count, npages))
		return -EPROTO;
	if (d->vpage == 0) {
		d->vpop = malloc((size_t)(npages + 63) / 64 * 8);
		if (d->vpop && (!d->vm || vm_ram_populated(d->vm, run->region, d->vpop) < 0)) {
			free(d->vpop);
			d->vpop = NULL;
		}
	}
	rc = mig_digest_pages(d->reg[run->region].hva, run->first, run->count, d->vpop, d->vdig);
	if (rc < 0)
		return rc;
	for (uint32_t k = 0; k < run->count; k++) {
		if (le64_decode(d->buf + MIG_RUN_HDR_BYTES + (size_t)k * MIG_DIGEST_BYTES) ==
		    d->vdig[k])
			continue;
		if (!d->bad_pages++)
			d->first_bad_gpa = d->reg[run->region].gpa + (run->first + k) * MIG_PAGE_BYTES;
	}
	d->vpage += run->count;
	return 0;
}

/* A VERIFY_DISK record: the same for blocks of the disk image we wrote. */
static int verify_blocks(struct mig_dest *d, const struct mig_run *run, size_t len)
{
	uint64_t bb = d->hello.disk_block_bytes, disk = d->hello.disk_bytes;
	uint64_t nblocks = (disk + bb - 1) / bb;

	if (d->disk_fd < 0 || run->region != 0 || run->first != d->vblock || run->count == 0 ||
	    run->count > MIG_MAX_RUN_DIGESTS || !range_ok(run->first, run->count, nblocks) ||
	    len != MIG_RUN_HDR_BYTES + (size_t)run->count * MIG_DIGEST_BYTES)
		return -EPROTO;
	if (!d->vblk) {
		d->vblk = malloc(bb);
		if (!d->vblk)
			return -ENOMEM;
	}
	for (uint32_t k = 0; k < run->count; k++) {
		uint64_t blk = run->first + k, off = blk * bb, dg = 0;
		size_t blen = (size_t)(disk - off < bb ? disk - off : bb), got = 0;
		int rc;

		while (got < blen) {
			ssize_t n = pread(d->disk_fd, d->vblk + got, blen - got, (off_t)(off + got));

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return n < 0 ? -errno : -EIO;
			got += (size_t)n;
		}
		rc = mig_digest_block(d->vblk, blen, &dg);
		if (rc < 0)
			return rc;
		if (le64_decode(d->buf + MIG_RUN_HDR_BYTES + (size_t)k * MIG_DIGEST_BYTES) != dg &&
		    !d->bad_blocks++)
			d->first_bad_block = blk;
	}
	d->vblock += run->count;
	return 0;
}

/*
 * At DONE, with --verify: every page and block was covered and equal, else ERROR with
 * what differed, while the source still holds the VM. Returns 0 or -EPROTO with why.
 */
static int verify_result(struct mig_dest *d, char *why, size_t len)
{
	uint64_t bb = d->hello.disk_block_bytes;
	bool all = d->nreg > 0 && d->vreg == d->nreg - 1 &&
		   d->vpage == d->reg[d->vreg].bytes / MIG_PAGE_BYTES;

	if (d->hello.flags & MIG_FLAG_WITH_DISK)
		all = all && d->vblock == (d->hello.disk_bytes + bb - 1) / bb;
	if (!all) {
		snprintf(why, len, "--verify: the source's digests do not cover all of RAM%s",
			 d->hello.flags & MIG_FLAG_WITH_DISK ? " and the disk" : "");
		return -EPROTO;
	}
	if (d->bad_pages || d->bad_blocks) {
		snprintf(why, len, "--verify: %" PRIu64 " RAM pages (first at gpa 0x%" PRIx64 ") "
			 "and %" PRIu64 " disk blocks (first block %" PRIu64 ") differ from the "
			 "source's; the VM stays there", d->bad_pages, d->first_bad_gpa,
			 d->bad_blocks, d->first_bad_block);
		return -EPROTO;
	}
	return 0;
}

int mig_dest_net_frame(struct mig_dest *d, size_t len)
{
	uint32_t nic;

	if (len < MIG_NET_HDR_BYTES + 14 || len > MIG_NET_HDR_BYTES + MIG_NET_FRAME_MAX)
		return -EPROTO;
	nic = le32_decode(d->buf);
	if (nic >= d->hello.nnics || nic >= d->nnics)
		return -EPROTO;
	d->net_frames++;
	/* A full queue drops the frame and counts it: a frame is not worth the VM. */
	if (d->vm)
		vm_nic_carry_in(d->vm, nic, d->buf + MIG_NET_HDR_BYTES, len - MIG_NET_HDR_BYTES);
	return 0;
}

int mig_dest_receive_data(struct mig_dest *d, char *err, size_t errlen)
{
	for (;;) {
		struct mig_run run;
		uint16_t type, flags;
		size_t len;
		uint8_t *dst;
		int rc;

		/*
		 * Header first: a PAGES payload is read straight into guest RAM once its run
		 * header has been checked against the region; everything else goes to buf.
		 */
		rc = frame_read_header(d->in, &type, &flags, &len);
		if (rc == 0 && type == MIG_REC_STATE) {
			if (len > MIG_DEST_STATE_MAX)
				goto bad;
			free(d->state);
			d->state = malloc(len ? len : 1);
			if (!d->state) {
				snprintf(err, errlen, "VM state of %zu bytes: out of memory", len);
				return -ENOMEM;
			}
			d->state_len = len;
			rc = frame_read_part(d->in, d->state, len);
		} else if (rc == 0 && len > MIG_DEST_BUF_BYTES) {
			goto bad;
		} else if (rc == 0 && type == MIG_REC_PAGES && len >= MIG_RUN_HDR_BYTES) {
			rc = frame_read_part(d->in, d->buf, MIG_RUN_HDR_BYTES);
		} else if (rc == 0) {
			rc = frame_read_part(d->in, d->buf, len);
		}
		if (rc < 0) {
			snprintf(err, errlen, "migration stream broke: %s", strerror(-rc));
			return rc;
		}
		switch (type) {
		case MIG_REC_PAGES:
		case MIG_REC_ZERO:
			if (len < MIG_RUN_HDR_BYTES)
				goto bad;
			mig_run_decode(d->buf, &run);
			dst = dest_pages(d, &run);
			if (!dst)
				goto bad;
			if (type == MIG_REC_ZERO) {
				if (len != MIG_RUN_HDR_BYTES)
					goto bad;
				memset(dst, 0, (size_t)run.count * MIG_PAGE_BYTES);
			} else {
				if (len != MIG_RUN_HDR_BYTES + (size_t)run.count * MIG_PAGE_BYTES)
					goto bad;
				/* A checksum failure here fails the migration: the VM never runs. */
				rc = frame_read_part(d->in, dst, (size_t)run.count * MIG_PAGE_BYTES);
				if (rc < 0) {
					snprintf(err, errlen, "migration stream broke: %s",
						 strerror(-rc));
					return rc;
				}
			}
			break;
		case MIG_REC_DISK:
		case MIG_REC_DISK_ZERO:
			if (len < MIG_RUN_HDR_BYTES)
				goto bad;
			mig_run_decode(d->buf, &run);
			if (type == MIG_REC_DISK_ZERO ? len != MIG_RUN_HDR_BYTES
			    : len != MIG_RUN_HDR_BYTES + (uint64_t)run.count *
						     d->hello.disk_block_bytes)
				goto bad;
			rc = write_disk(d, &run, type == MIG_REC_DISK ? d->buf + MIG_RUN_HDR_BYTES
								  : NULL);
			if (rc == -EPROTO)
				goto bad;
			if (rc < 0) {
				snprintf(err, errlen, "disk %s: writing blocks %" PRIu64 "+%" PRIu32
					 ": %s", d->disk_path ? d->disk_path : "(none)", run.first,
					 run.count, strerror(-rc));
				return rc;
			}
			break;
		case MIG_REC_ROUND_END:
			if (len != 4)
				goto bad;
			/* Everything before it is in guest RAM and on disk: say so. */
			rc = mig_reply_send(d->conn, MIG_REPLY_ROUND_DONE, NULL);
			if (rc < 0) {
				snprintf(err, errlen, "answering the source: %s", strerror(-rc));
				return rc;
			}
			break;
		case MIG_REC_STATE:
			/* Read above, straight into d->state; the last round is in RAM. */
			mig_test_hold("dest-state");
			break;
		case MIG_REC_VERIFY:
		case MIG_REC_VERIFY_DISK:
			if (!(d->hello.flags & MIG_FLAG_VERIFY) || len < MIG_RUN_HDR_BYTES)
				goto bad;
			mig_run_decode(d->buf, &run);
			rc = type == MIG_REC_VERIFY ? verify_pages(d, &run, len)
						    : verify_blocks(d, &run, len);
			if (rc == -EPROTO)
				goto bad;
			if (rc < 0) {
				snprintf(err, errlen, "--verify: digests of this copy: %s",
					 strerror(-rc));
				return rc;
			}
			break;
		case MIG_REC_NET_FRAME:
			if (mig_dest_net_frame(d, len) < 0)
				goto bad;
			break;
		case MIG_REC_CPUID: {
			/* Announced in ACCEPT (MIG_CAP_CPUID): the source waits for the answer. */
			char why[MIG_REPLY_MAX_MSG];

			rc = vm_cpuid_check(d->vm, d->buf, len, why, sizeof(why));
			if (rc == -EBADMSG)
				goto bad;
			if (rc < 0)
				return refuse(d, MIG_REPLY_REFUSE, err, errlen, rc, "%s", why);
			rc = mig_reply_send(d->conn, MIG_REPLY_ACCEPT, NULL);
			if (rc < 0) {
				snprintf(err, errlen, "answering the source: %s", strerror(-rc));
				return rc;
			}
			break;
		}
		case MIG_REC_DONE:
			if (!d->state) {
				snprintf(err, errlen, "the source finished without sending VM state");
				return -EPROTO;
			}
			return 0;
		case MIG_REC_ABORT: {
			char why[257];

			mig_text_copy(why, sizeof(why), d->buf, len);
			snprintf(err, errlen, "the source cancelled: %s", why);
			return -ECANCELED;
		}
		default:
			snprintf(err, errlen, "unexpected record type %u in the migration stream",
				 type);
			return -EPROTO;
		}
		continue;
bad:
		snprintf(err, errlen, "malformed record (type %u, %zu bytes) in the migration "
			 "stream", type, len);
		return -EPROTO;
	}
}

/*
 * Steps 4 and 5 of proto.h's timeline: READY is sent; read GO and its flags. Anything else
 * (the stream ends, the link is cut and the read times out, an ABORT) means the source
 * keeps its VM: this host must not run it. Returns 0 or -errno with err.
 */
static int wait_go(struct mig_dest *d, uint32_t *go_flags, char *err, size_t errlen)
{
	uint16_t type, flags;
	size_t len;
	int rc;

	rc = frame_read(d->in, &type, &flags, d->buf, MIG_DEST_BUF_BYTES, &len);
	if (rc < 0) {
		snprintf(err, errlen, "connection lost before the source's GO (%s): the source "
			 "keeps the VM, paused unless it was cancelled or died; it does not run "
			 "here", strerror(-rc));
		return rc;
	}
	if (type == MIG_REC_ABORT) {
		snprintf(err, errlen, "the source cancelled after the state was sent: the VM stays "
			 "there");
		return -ECANCELED;
	}
	if (type != MIG_REC_GO || len != MIG_GO_BYTES ||
	    (le32_decode(d->buf) & ~MIG_GO_F_PAUSED) != 0) {
		/* ERROR, not silence: the source may then give its guest back at once. */
		return refuse(d, MIG_REPLY_ERROR, err, errlen, -EPROTO, "the source sent no valid "
			      "GO after READY (record type %u, %zu bytes): the VM does not run here",
			      type, len);
	}
	*go_flags = le32_decode(d->buf);
	return 0;
}

int mig_receive(const struct mig_dest_params *p, mig_create_vm_fn create_vm, void *ctx,
		struct vm **out, char *err, size_t errlen)
{
	struct mig_dest d = { .disk_fd = -1 };
	uint32_t go_flags = 0;
	uint16_t type, flags;
	size_t len;
	int rc;

	/* d.buf comes with the HELLO, from the gate. */
	d.vdig = malloc((size_t)MIG_MAX_RUN_DIGESTS * sizeof(uint64_t));
	if (!d.vdig)
		return -ENOMEM;
	rc = mig_gate_accept(&d, p, ctx, err, errlen);
	if (rc < 0)
		goto out_buf;
	mig_test_hold("dest-accepted");
	rc = handle_hello(&d, create_vm, ctx, err, errlen);
	if (rc == 0) {
		rc = mig_dest_receive_data(&d, err, errlen);
		/* Tell the source why, so it reports this host's reason, not a lost connection. */
		if (rc < 0 && rc != -ECANCELED)
			mig_reply_send(d.conn, MIG_REPLY_ERROR, err);
	}
	if (rc == 0) {
		char why[256] = "";

		rc = d.hello.flags & MIG_FLAG_VERIFY ? verify_result(&d, why, sizeof(why)) : 0;
		if (rc == 0)
			rc = vm_state_check_cpu(d.state, d.state_len, why, sizeof(why));
		if (rc == 0)
			rc = vm_state_load(d.vm, d.state, d.state_len, why, sizeof(why));
		if (rc == 0 && d.disk_fd >= 0 && fdatasync(d.disk_fd) < 0) {
			rc = -errno;
			snprintf(why, sizeof(why), "disk %s: fdatasync: %s", d.disk_path,
				 strerror(-rc));
		}
		if (rc == 0 && p->on_ready)
			rc = p->on_ready(ctx, d.vm, why, sizeof(why));
		if (rc < 0)
			rc = refuse(&d, MIG_REPLY_ERROR, err, errlen, rc, "%s", why);
	}
	if (rc == 0) {
		mig_test_hold("dest-done");
		rc = mig_reply_send(d.conn, MIG_REPLY_READY, NULL);
	}
	if (rc == 0)
		rc = wait_go(&d, &go_flags, err, errlen);
	if (rc == 0) {
		mig_test_hold("dest-go");
		/* GO: step 5 of proto.h's timeline. The user's pause at the source comes along. */
		if (go_flags & MIG_GO_F_PAUSED)
			rc = vm_pause(d.vm);
		if (rc == 0)
			rc = vm_start(d.vm);
		if (rc < 0)
			rc = refuse(&d, MIG_REPLY_ERROR, err, errlen, rc, "cannot start the received "
				    "VM: %s", strerror(-rc));
	}
	if (rc == 0) {
		char note[128] = "";

		/* The network learns first where the guest went, then the source. */
		if (p->on_started)
			p->on_started(ctx, d.vm, note, sizeof(note));
		/* Step 6: the source gives up its VM only on RUNNING. */
		if (mig_reply_send(d.conn, MIG_REPLY_RUNNING, note[0] ? note : NULL) < 0)
			snprintf(err, errlen, "the VM runs here, but the source did not hear so: it "
				 "holds its copy paused; quit it there");
		else
			err[0] = '\0';
		/*
		 * The tail of frames that reached the source's taps, then the source's
		 * committing close; anything else, or its absence, changes nothing: the guest
		 * runs here.
		 */
		while (frame_read(d.in, &type, &flags, d.buf, MIG_DEST_BUF_BYTES, &len) == 0 &&
		       type == MIG_REC_NET_FRAME && mig_dest_net_frame(&d, len) == 0)
			;
		*out = d.vm;
		d.vm = NULL;
	}
	stream_close(d.in, rc == 0);
	if (d.vm)
		vm_destroy(d.vm);
out_buf:
	if (d.disk_fd >= 0)
		close(d.disk_fd);
	free(d.state);
	free(d.vpop);
	free(d.vdig);
	free(d.vblk);
	free(d.buf);
	return rc;
}
