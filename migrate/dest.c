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
#include "transport/byteorder.h"
#include "transport/frame.h"
#include "transport/stream.h"
#include "transport/zstd_stream.h"

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
	if (d->hello.proto != MIG_PROTO_VERSION)
		return refuse(d, MIG_REPLY_REFUSE, err, errlen, -EPROTO,
			      "migration protocol %u is not %u: run the same godwit on both hosts",
			      d->hello.proto, MIG_PROTO_VERSION);
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
}

static int handle_hello(struct mig_dest *d, mig_create_vm_fn create_vm, void *ctx, char *err,
			size_t errlen)
{
	char why[256] = "";
	int rc;

	rc = mig_dest_read_hello(d, err, errlen);
	if (rc < 0)
		return rc;
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
		d->disk_fd = open(d->disk_path, O_WRONLY | O_CLOEXEC);
		if (d->disk_fd < 0) {
			rc = -errno;
			return refuse(d, MIG_REPLY_REFUSE, err, errlen, rc, "disk %s: %s",
				      d->disk_path, strerror(-rc));
		}
	}
	rc = mig_reply_send(d->conn, MIG_REPLY_ACCEPT, NULL);
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
			break; /* read above, straight into d->state */
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

int mig_receive(const struct mig_dest_params *p, mig_create_vm_fn create_vm, void *ctx,
		struct vm **out, char *err, size_t errlen)
{
	struct mig_dest d = { .disk_fd = -1 };
	struct stream *z = NULL;
	uint16_t type, flags;
	size_t len;
	int fd, rc;

	d.buf = malloc(MIG_DEST_BUF_BYTES);
	if (!d.buf)
		return -ENOMEM;
	rc = mig_conn_accept(&d.conn, &fd, p->listen, &p->auth, p->accept_timeout_ms,
			     p->on_listen, ctx, err, errlen);
	if (rc < 0)
		goto out_buf;
	rc = zstd_reader_open(&z, d.conn);
	if (rc == 0)
		rc = frame_reader_open_flags(&d.in, z, p->auth.insecure_plaintext
					     ? 0 : FRAME_F_NO_CRC);
	if (rc < 0) {
		snprintf(err, errlen, "the peer is not a godwit migration source: %s",
			 strerror(-rc));
		stream_close(z ? z : d.conn, false);
		d.conn = NULL;
		goto out_buf;
	}
	rc = handle_hello(&d, create_vm, ctx, err, errlen);
	if (rc == 0) {
		rc = mig_dest_receive_data(&d, err, errlen);
		/* Tell the source why, so it reports this host's reason, not a lost connection. */
		if (rc < 0 && rc != -ECANCELED)
			mig_reply_send(d.conn, MIG_REPLY_ERROR, err);
	}
	if (rc == 0) {
		char why[256] = "";

		rc = vm_state_check_cpu(d.state, d.state_len, why, sizeof(why));
		if (rc == 0)
			rc = vm_state_load(d.vm, d.state, d.state_len, why, sizeof(why));
		if (rc == 0 && d.disk_fd >= 0 && fdatasync(d.disk_fd) < 0) {
			rc = -errno;
			snprintf(why, sizeof(why), "disk %s: fdatasync: %s", d.disk_path,
				 strerror(-rc));
		}
		if (rc < 0)
			rc = refuse(&d, MIG_REPLY_ERROR, err, errlen, rc, "%s", why);
	}
	if (rc == 0)
		rc = mig_reply_send(d.conn, MIG_REPLY_READY, NULL);
	if (rc == 0) {
		rc = frame_read(d.in, &type, &flags, d.buf, MIG_DEST_BUF_BYTES, &len);
		if (rc == 0 && type != MIG_REC_GO) {
			snprintf(err, errlen, "%s", type == MIG_REC_ABORT
				 ? "the source cancelled after the state was sent"
				 : "the source sent no GO after READY");
			rc = -ECANCELED;
		} else if (rc < 0) {
			snprintf(err, errlen, "connection lost before the source's GO (%s): the "
				 "VM runs on neither host; restart it from the source's disk or "
				 "last snapshot", strerror(-rc));
		}
	}
	if (rc == 0) {
		rc = vm_start(d.vm);
		if (rc < 0)
			snprintf(err, errlen, "cannot start the received VM: %s", strerror(-rc));
	}
	if (rc == 0) {
		mig_reply_send(d.conn, MIG_REPLY_RUNNING, NULL);
		/* The source's committing close ends the stream; its absence changes nothing. */
		frame_read(d.in, &type, &flags, d.buf, MIG_DEST_BUF_BYTES, &len);
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
	free(d.buf);
	(void)fd;
	return rc;
}
