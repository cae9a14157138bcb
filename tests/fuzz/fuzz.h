/* What every fuzz harness shares: the libFuzzer entry points, seed writing, input cursors. */
#ifndef TESTS_FUZZ_FUZZ_H
#define TESTS_FUZZ_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A harness (fuzz_NAME.c) defines LLVMFuzzerTestOneInput and fuzz_write_seeds. It links
 * either with libFuzzer (the fuzz_NAME executable of a -Dfuzz=true build) or with
 * replay.c (replay_NAME, built in every build), which runs the committed corpus through
 * it as a test and writes the seed corpus with --write-seeds DIR.
 *
 * Harnesses never fork production logic: they build inputs with the project's encoders,
 * fix up checksums so that mutations reach the checks behind them, and call the same
 * decoders production calls.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Write the harness's seed inputs into dir through fuzz_seed_write, made with the
 * project's own encoders. Returns 0, -ENODEV when this host cannot make them (the state
 * seeds need KVM), or -errno.
 */
int fuzz_write_seeds(const char *dir);

/* Write one seed named name into dir (dir, name, data, len). Returns 0 or -errno. */
int fuzz_seed_write(const char *dir, const char *name, const void *data, size_t len);

/*
 * Write a seed of a harness that takes a few parameter bytes first (dir, name, head,
 * head_len, data, len): head, then data. Returns 0 or -errno.
 */
int fuzz_seed_write2(const char *dir, const char *name, const void *head, size_t head_len,
		     const void *data, size_t len);

/*
 * Recompute the CRC32C of every record of a frame stream (transport/frame.h) that a walk
 * from its stream header finds (s, len), unless the header says FRAME_F_NO_CRC.
 */
void fuzz_fix_frame_crcs(uint8_t *s, size_t len);

/*
 * Incremented by a harness each time an input decoded all the way through (a seed
 * that stopped doing so would no longer reach the deep checks): replay --expect-accepted
 * fails when a seed is rejected.
 */
extern unsigned long fuzz_accepted;

/* A read cursor over the fuzz input, for harnesses that take a few parameters first. */
struct fuzz_in {
	const uint8_t *p;
	size_t len;
};

/* The next byte, or 0 once the input is used up (in). */
uint8_t fuzz_u8(struct fuzz_in *in);
/* The next little-endian u16 / u32, 0-padded past the end (in). */
uint16_t fuzz_u16(struct fuzz_in *in);
uint32_t fuzz_u32(struct fuzz_in *in);
/* The next n bytes or fewer, in place (in, n, got). */
const uint8_t *fuzz_take(struct fuzz_in *in, size_t n, size_t *got);

/*
 * Abort unless s is one printable line (s): what godwit prints for people is one line,
 * and bytes from a peer or a file must not add lines or terminal escapes to it.
 */
void fuzz_assert_one_line(const char *s);

/* A malloc'd copy of data (data, len), never NULL: aborts when out of memory. */
uint8_t *fuzz_dup(const void *data, size_t len);

/* malloc that aborts instead of returning NULL (len). */
void *fuzz_alloc(size_t len);

/* A directory of its own under /dev/shm (or TMPDIR), removed when the process exits. */
const char *fuzz_scratch_dir(void);

#endif
