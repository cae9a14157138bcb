/* A main for a fuzz harness without libFuzzer: replay a corpus, or write and check the seeds. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/fuzz/fuzz.h"

/*
 * replay_NAME PATH...            run every file (a directory: each file in it, by name)
 *                                through the harness; any crash or sanitizer report fails
 * replay_NAME --write-seeds DIR  write the harness's seed corpus into DIR
 * replay_NAME --check-seeds      write the seeds into a scratch directory and replay them,
 *                                failing unless every one decodes all the way through: the
 *                                seeds (and the harness's fix-ups) still match the formats;
 *                                exit 77 (skipped) when fuzz_write_seeds says -ENODEV
 */

static int read_file(const char *path, uint8_t **data, size_t *len)
{
	struct stat st;
	uint8_t *buf;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	buf = fuzz_alloc((size_t)st.st_size);
	n = read(fd, buf, (size_t)st.st_size);
	close(fd);
	if (n != st.st_size) {
		free(buf);
		return -EIO;
	}
	*data = buf;
	*len = (size_t)st.st_size;
	return 0;
}

/* Run one file; count it, and whether the harness accepted it. */
static int replay_file(const char *path, unsigned *n, unsigned *accepted)
{
	unsigned long before = fuzz_accepted;
	uint8_t *data = NULL;
	size_t len = 0;
	int rc;

	rc = read_file(path, &data, &len);
	if (rc < 0) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(-rc));
		return rc;
	}
	LLVMFuzzerTestOneInput(data, len);
	free(data);
	(*n)++;
	if (fuzz_accepted != before)
		(*accepted)++;
	else
		printf("rejected: %s\n", path);
	return 0;
}

static int skip_name(const struct dirent *e)
{
	return e->d_name[0] != '.' && strcmp(e->d_name, "README.md") != 0;
}

static int replay_path(const char *path, unsigned *n, unsigned *accepted)
{
	struct dirent **names;
	struct stat st;
	int count, rc = 0;

	if (stat(path, &st) < 0) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -errno;
	}
	if (!S_ISDIR(st.st_mode))
		return replay_file(path, n, accepted);
	count = scandir(path, &names, skip_name, alphasort);
	if (count < 0)
		return -errno;
	for (int i = 0; i < count; i++) {
		char file[4096];

		snprintf(file, sizeof(file), "%s/%s", path, names[i]->d_name);
		if (rc == 0 && stat(file, &st) == 0 && S_ISREG(st.st_mode))
			rc = replay_file(file, n, accepted);
		free(names[i]);
	}
	free(names);
	return rc;
}

int main(int argc, char **argv)
{
	unsigned n = 0, accepted = 0;
	bool check = false;
	int rc = 0;

	if (argc == 3 && strcmp(argv[1], "--write-seeds") == 0) {
		rc = fuzz_write_seeds(argv[2]);
		if (rc < 0)
			fprintf(stderr, "replay: writing seeds to %s: %s\n", argv[2], strerror(-rc));
		return rc < 0;
	}
	if (argc == 2 && strcmp(argv[1], "--check-seeds") == 0) {
		char dir[512];

		snprintf(dir, sizeof(dir), "%s/seeds", fuzz_scratch_dir());
		rc = mkdir(dir, 0700) < 0 ? -errno : fuzz_write_seeds(dir);
		if (rc == -ENODEV)
			return 77; /* the seeds need something this host lacks (KVM): skipped */
		if (rc < 0) {
			fprintf(stderr, "replay: writing seeds: %s\n", strerror(-rc));
			return 1;
		}
		rc = replay_path(dir, &n, &accepted);
		check = true;
	} else {
		for (int i = 1; i < argc && rc == 0; i++)
			rc = replay_path(argv[i], &n, &accepted);
	}
	printf("replayed %u inputs, %u decoded all the way through\n", n, accepted);
	if (rc < 0 || n == 0)
		return 1;
	return check && accepted != n;
}
