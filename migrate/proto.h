/* The live-migration wire protocol: records from source to destination, replies back. */
#ifndef MIGRATE_PROTO_H
#define MIGRATE_PROTO_H

#include <stddef.h>
#include <stdint.h>

/*
 * Connection: TCP, then TLS 1.3 (PSK or mutual certificates; plaintext only when both
 * sides say --insecure-plaintext). On it, two directions that never share a layer:
 *
 *   source -> destination: a frame stream (transport/frame.h) over an adaptive zstd
 *                          stream (ZSTD_STREAM_F_RAW: what does not compress goes as RAW
 *                          chunks; no zstd content checksum): the records below, flushed
 *                          at the end of every round. Over TLS the frames carry no CRC
 *                          (FRAME_F_NO_CRC: the AEAD checks every byte first); over
 *                          plaintext they do, since zstd's checksum would come only at
 *                          the end, after GO, and RAW chunks have none;
 *   destination -> source: raw replies (MIG_REPLY_*) written straight on TLS.
 *
 * Sequence (cloud-hypervisor style; any failure before READY leaves the source running):
 *
 *   source                                     destination
 *   HELLO (machine: RAM layout, vCPUs, disk) ->
 *                                           <- ACCEPT(capabilities) | REFUSE(reason)
 *   [CPUID: if ACCEPT named "cpuid"]        ->  compared with what this host's KVM gives
 *                                           <- ACCEPT | REFUSE(the missing features)
 *   round 0: PAGES for every non-zero page  ->  (RAM starts zero: zero pages cost nothing)
 *   ROUND_END                               ->  applies everything before it, then
 *                                           <- ROUND_DONE
 *   round n: PAGES / ZERO for dirtied pages ->
 *     [DISK / DISK_ZERO blocks, --with-disk]
 *   ROUND_END                               ->
 *                                           <- ROUND_DONE
 *   -- source pauses the guest: stop-and-copy --
 *   last PAGES / ZERO / DISK, STATE (blob)  ->  (no ROUND_END: STATE ends the round)
 *   [VERIFY / VERIFY_DISK digests, --verify] -> compared with its own copy as they come
 *   [NET_FRAME: what reached the taps]      ->  kept for the guest
 *   DONE                                    ->  loads the state
 *                                           <- READY         (or ERROR(reason))
 *   GO (flags)                              ->  starts the guest (paused if GO says so)
 *                                           <- RUNNING (message: the announcement,
 *                                                "announced nics=N frames=F guest=G"
 *                                                or "announce off"; vm_host_announce)
 *   [NET_FRAME: the tail]                   ->  placed in the running guest
 *   frame END (committing close)            ->
 *
 * The source waits for ROUND_DONE before it judges the next round: the rate it measures is
 * then the whole pipe's (compression, link, the destination's decompression and copy),
 * and nothing of an earlier round is still queued at either end when it pauses, so the
 * downtime it predicts is the downtime it gets.
 *
 * The switch-over, and what each side does when it breaks at each point (a peer killed,
 * the link cut, a cancel). The source gives up its VM only once the destination has said
 * it runs it; from GO on it never resumes the guest by itself, since the destination may
 * be running it (no split brain). The tests cut each point (tests/migrate/
 * test_switchover.c, with the GODWIT_TEST_HOLD points of migrate/conn.h):
 *
 *   1. stop-and-copy: the source pauses, sends the last pages, STATE, [VERIFY], DONE.
 *      Broken here: the source lets go of its pause (failed, or cancelled); the
 *      destination reads a broken or ABORTed stream, discards its VM, exits non-zero.
 *   2. the destination checks the digests (--verify), loads the state, says READY (or
 *      ERROR: a page or block that differs, a state it cannot load). Broken here: as 1.
 *   3. the source reads READY: the commit point. A cancel that came before it still wins:
 *      GO is never sent, the source lets go (cancelled). From here on cancel is refused.
 *   4. the source sends GO. If it cannot (its write fails), or the link is cut after it:
 *      the source holds the guest paused ("unconfirmed", below). The destination, without
 *      GO, sees the end of the stream or times out (30 s), discards its VM and exits
 *      non-zero, saying the source keeps it. A source killed here loses the guest with
 *      its process, as any VMM killed; the destination still never runs a copy of it.
 *   5. the destination reads GO and starts the guest (held paused if GO says the user had
 *      paused it at the source). If it cannot start it, it says ERROR and discards it:
 *      the source, told so, lets go of its pause (failed). Killed before it starts: as 6.
 *   6. the destination says RUNNING. If that does not reach the source (the link cut, the
 *      destination killed after 5): "unconfirmed" too; the guest runs at the destination
 *      unless it died there.
 *   7. the source reads RUNNING: completed. It closes the stream (END) and stops its VM.
 *      The destination runs on whether END arrives or not.
 *
 * Unconfirmed (4, 6): the source cannot tell whether the destination runs the guest. It
 * keeps it paused, alive, and hands the pause to the user: `godwit migrate` exits 6
 * naming the two ways out, resume it here (the destination does not run it), or quit it
 * here (the destination does). Resuming it unasked could run it on both hosts.
 *
 * A source that cancels or fails before 3 sends ABORT(reason) if it can. Changing
 * anything in this file requires a MIG_PROTO_VERSION bump, except adding a capability
 * (below), which a peer without it never sees.
 */
/*
 * Compatibility (repo/README.md, "Compatibility", states it for every format): a
 * destination accepts a HELLO of its own protocol version and of MIG_PROTO_PREV_VERSION,
 * the version the previous release (RELEASES) speaks, and then talks that version; a
 * source speaks the version the destination accepts, so an old and a new release migrate
 * both ways. Anything else is refused with REFUSE before the first page, naming both
 * versions and which side to upgrade; the source's VM keeps running. A version bump keeps
 * the previous version's reader and writer for one release.
 *
 * 5: HELLO carries the NIC count, RUNNING the announcement; NET_FRAME records (0.1.0).
 */
#define MIG_PROTO_VERSION 5
#define MIG_PROTO_PREV_VERSION 5

/* Record types (frame types), source -> destination. 0 is invalid. */
enum mig_rec {
	MIG_REC_INVALID = 0,
	MIG_REC_HELLO = 1,
	MIG_REC_PAGES = 2,     /* hdr + npages * 4096 bytes */
	MIG_REC_ZERO = 3,      /* hdr: pages that are now all zero */
	MIG_REC_DISK = 4,      /* hdr + nblocks * block bytes */
	MIG_REC_DISK_ZERO = 5, /* hdr: blocks that are now all zero */
	MIG_REC_ROUND_END = 6, /* u32 round */
	MIG_REC_STATE = 7,     /* the vm_state blob */
	MIG_REC_DONE = 8,
	MIG_REC_GO = 9,        /* u32 flags (MIG_GO_F_*) */
	MIG_REC_ABORT = 10,    /* reason string */
	MIG_REC_VERIFY = 11,   /* run hdr + count * MIG_DIGEST_BYTES: digests of pages */
	MIG_REC_VERIFY_DISK = 12, /* run hdr (region 0) + count * MIG_DIGEST_BYTES: of blocks */
	MIG_REC_NET_FRAME = 13, /* u32 nic, then a frame for its guest (below) */
	MIG_REC_CPUID = 14,    /* the VM's CPUID policy (vm_cpuid_save); only after MIG_CAP_CPUID */
};

/*
 * Capabilities: ACCEPT's message is the destination's capabilities, space-separated words
 * (0.1.0 sends none, and its source ignores the message). A source uses one only when the
 * destination named it, so a capability adds to protocol 5 without a version bump: each
 * side still speaks plain protocol 5 to a peer without it.
 *
 *   cpuid  right after ACCEPT the source sends CPUID (its VM's CPUID table) and waits for
 *          the answer: ACCEPT, or REFUSE naming the CPU features this host lacks ("CPU
 *          features missing on this host: ..."), before any page is sent. The source's VM
 *          runs on.
 */
#define MIG_CAP_CPUID "cpuid"
#define MIG_CAPS MIG_CAP_CPUID /* what this destination announces */

/*
 * NET_FRAME: a frame that reached the source's tap after the guest's final pause, for the
 * guest at the destination: u32 NIC index (< HELLO's nnics), then the frame as the tap
 * gave it (the virtio-net header the driver negotiated, then Ethernet), 14 ..
 * MIG_NET_FRAME_MAX bytes. Sent in the last round before DONE, and after RUNNING until
 * the committing close (a short tail: frames still on their way to the old port while
 * the network learns the new one). The destination places them before its own tap's.
 */
#define MIG_NET_HDR_BYTES 4u
#define MIG_NET_FRAME_MAX (12u + 18u + 65535u)

#define MIG_PAGE_BYTES 4096u
#define MIG_MAX_REGIONS 4
#define MIG_MAX_RUN_PAGES 256u  /* pages in one PAGES record: 1 MiB of payload */
#define MIG_MAX_RUN_BLOCKS 16u  /* 64 KiB disk blocks in one DISK record */
#define MIG_FLAG_WITH_DISK 1u /* HELLO flag: DISK records follow; only with disk_bytes > 0 */
#define MIG_FLAG_VERIFY 2u      /* VERIFY records cover every page (and block) before DONE */
#define MIG_FLAGS_KNOWN (MIG_FLAG_WITH_DISK | MIG_FLAG_VERIFY) /* any other HELLO flag: refused */
#define MIG_GO_F_PAUSED 1u      /* the user held the guest paused: arrive paused */
#define MIG_GO_BYTES 4u
#define MIG_DIGEST_BYTES 8u     /* of a page or disk block, migrate/verify.h */
#define MIG_MAX_RUN_DIGESTS 65536u /* digests in one VERIFY record: 512 KiB */

/*
 * HELLO payload:
 *    0       4       8           16      20        24                     24+16n
 *    +-------+-------+-----------+-------+---------+======================+
 *    | proto | flags | ram_bytes | ncpus | nregion | {gpa u64, bytes u64} |
 *    +-------+-------+-----------+-------+---------+======================+
 *    then disk_bytes u64, disk_block_bytes u32, version string (32 bytes, NUL-padded),
 *    nnics u32 (virtio-net NICs, 0 .. MIG_MAX_NICS: the destination refuses a VM whose
 *    NIC count differs from its --net taps before any RAM is sent)
 */
#define MIG_HELLO_FIXED_BYTES 24u
#define MIG_HELLO_REGION_BYTES 16u
#define MIG_HELLO_TAIL_BYTES (8u + 4u + 32u + 4u)
#define MIG_MAX_NICS 7u

/*
 * PAGES / ZERO header (16 bytes), then for PAGES npages * 4096 bytes of page data:
 *    0        4        8             16
 *    +--------+--------+-------------+
 *    | region | npages | first_page  |
 *    +--------+--------+-------------+
 * DISK / DISK_ZERO use the same header with region 0, nblocks, first_block; VERIFY the
 * same header as PAGES and VERIFY_DISK as DISK, each followed by count digests (u64),
 * in order: together they cover every page of every region, then every block.
 */
#define MIG_RUN_HDR_BYTES 16u

_Static_assert(MIG_HELLO_FIXED_BYTES == 4 + 4 + 8 + 4 + 4, "hello layout");
_Static_assert(MIG_RUN_HDR_BYTES == 4 + 4 + 8, "run header layout");

/*
 * Replies, destination -> source, raw on the connection:
 *    0        4      6          8       12       16
 *    +--------+------+----------+-------+--------+=================+
 *    | "GWMR" | type | reserved | len   | crc32c | message (len)   |
 *    +--------+------+----------+-------+--------+=================+
 * crc32c covers bytes [0, 12) and the message. len <= MIG_REPLY_MAX_MSG.
 */
enum mig_reply {
	MIG_REPLY_INVALID = 0,
	MIG_REPLY_ACCEPT = 1,
	MIG_REPLY_REFUSE = 2, /* message: why */
	MIG_REPLY_READY = 3,
	MIG_REPLY_RUNNING = 4,
	MIG_REPLY_ERROR = 5,  /* message: why */
	MIG_REPLY_ROUND_DONE = 6,
	MIG_REPLY_COUNT
};
#define MIG_REPLY_MAGIC 0x524d5747u /* "GWMR" little-endian */
#define MIG_REPLY_HDR_BYTES 16u
#define MIG_REPLY_MAX_MSG 512u

struct stream;

/* The machine a HELLO describes. */
struct mig_hello {
	uint32_t proto;
	uint32_t flags;
	uint64_t ram_bytes;
	uint32_t ncpus;
	uint32_t nregions;
	struct {
		uint64_t gpa;
		uint64_t bytes;
	} region[MIG_MAX_REGIONS];
	uint64_t disk_bytes;
	uint32_t disk_block_bytes;
	char version[33];
	uint32_t nnics;
};

/* Encode h into buf (cap bytes). Returns the length, or -ENOSPC. */
int mig_hello_encode(const struct mig_hello *h, uint8_t *buf, size_t cap);
/*
 * Decode and check a HELLO payload (untrusted): its length, regions (page-aligned,
 * non-empty, summing to ram_bytes), vCPUs, disk geometry, NIC count, and flags (only
 * known ones; WITH_DISK only with a disk). Returns 0 or -EPROTO.
 */
int mig_hello_decode(const uint8_t *buf, size_t len, struct mig_hello *h);

struct mig_run {
	uint32_t region; /* or 0 for disk */
	uint32_t count;  /* pages or blocks */
	uint64_t first;  /* first page or block */
};
void mig_run_encode(const struct mig_run *r, uint8_t out[MIG_RUN_HDR_BYTES]);
void mig_run_decode(const uint8_t in[MIG_RUN_HDR_BYTES], struct mig_run *r);

/*
 * Copy a peer's text (a reason in a reply or an ABORT) into out for a message (out, cap,
 * text, len): NUL-terminated, cut to cap, each control byte made '?', so it prints as
 * one line.
 */
void mig_text_copy(char *out, size_t cap, const uint8_t *text, size_t len);

/* Write one reply (raw) and flush. msg may be NULL. Returns 0 or -errno. */
int mig_reply_send(struct stream *s, enum mig_reply type, const char *msg);
/*
 * Read one reply: its type and message (NUL-terminated, cap bytes, each control byte of
 * the peer's made '?', so it prints as one line). Returns 0, -EPROTO for anything
 * malformed (magic, reserved bits, length, checksum, type), or the stream's error.
 */
int mig_reply_recv(struct stream *s, enum mig_reply *type, char *msg, size_t cap);

#endif
