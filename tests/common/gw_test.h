/* Shared helpers for tests that run the godwit binary on /dev/kvm. */
#ifndef TESTS_COMMON_GW_TEST_H
#define TESTS_COMMON_GW_TEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Skip the calling Criterion test, with the reason, when /dev/kvm is absent or not ours. */
void require_kvm(void);

/* A godwit process with its own scratch directory. */
struct gw_proc {
	pid_t pid;
	char dir[128];     /* mkdtemp'd, removed by gw_proc_cleanup */
	char console[192]; /* dir/console.log */
	char api[192];     /* dir/api.sock */
	char out[192];     /* dir/stdout.log */
	char err[192];     /* dir/stderr.log */
	int status;        /* wait status once reaped */
	bool reaped;
};

/* Make the scratch directory and paths. */
void gw_proc_init(struct gw_proc *p);

/* Start GODWIT_BIN with argv (argv[0] is the subcommand; NULL-terminated). */
void gw_spawn(struct gw_proc *p, const char *const *argv);

/* As gw_spawn, inside network namespace ns (NULL: this one). */
void gw_spawn_in(struct gw_proc *p, const char *ns, const char *const *argv);

/* Two hosts: network namespaces joined by a veth pair, unique to this process. */
struct gw_netns {
	char a[32], b[32];       /* namespace names */
	char addr_a[32], addr_b[32];
	bool up;
};

/* Make the pair, or skip the test (not root, no ip(8), no netns support). */
void gw_netns_create(struct gw_netns *n);
void gw_netns_destroy(struct gw_netns *n);
/*
 * Cut the link between the two hosts (both ends of the veth down): packets are dropped,
 * nobody gets a reset, as when a cable or a switch fails. Asserts it worked.
 */
void gw_netns_cut(struct gw_netns *n);

/* Wait up to timeout_ms for exit; returns true and sets p->status if it exited. */
bool gw_wait_exit(struct gw_proc *p, int timeout_ms);

/* SIGKILL (if still running) and reap; remove the scratch directory. */
void gw_proc_cleanup(struct gw_proc *p);

/*
 * Wait up to timeout_ms until file holds at least n lines starting with prefix; copy the
 * n-th into line. Returns false on timeout (or if the process died first).
 */
bool gw_wait_line(struct gw_proc *p, const char *file, const char *prefix, unsigned n,
		  char *line, size_t len, int timeout_ms);

/* Count lines of file that start with prefix. */
unsigned gw_count_lines(const char *file, const char *prefix);

/* The whole of a small file as a string (malloc'd), or NULL. */
char *gw_read_file(const char *path);

/* Send one API request line and read one reply line. Returns false on any failure. */
bool gw_api(const char *sock, const char *req, char *reply, size_t len);

/* A heartbeat line "HB <id> <counter> ... e=<n>", parsed. */
struct gw_hb {
	char id[32];
	uint64_t counter;
	uint64_t errors;
};
bool gw_parse_hb(const char *line, struct gw_hb *hb);

/* The guests' disk pattern: word k of sector s is splitmix64(seed ^ (s << 6 | k)). */
uint64_t gw_splitmix64(uint64_t x);
void gw_pattern_sector(uint64_t seed, uint64_t sector, uint8_t out[512]);

/*
 * Run a godwit command in p to completion (p is reset first): asserts it exits within
 * timeout_ms and is not killed by a signal; returns its exit status.
 */
int gw_run(struct gw_proc *p, const char *const *argv, int timeout_ms);

/* Ask p's VM to quit through its API and assert godwit exits within 20 s. */
void gw_quit(struct gw_proc *p);

/* The newest heartbeat on p's console (asserts there is one). */
void gw_last_hb(struct gw_proc *p, struct gw_hb *hb);

/* Assert p's stderr is exactly one "godwit: " line, holding needle. */
void gw_expect_one_error(struct gw_proc *p, const char *needle);

/* A number or string member of a flat JSON object, found by key (asserts it is there). */
uint64_t gw_json_u64(const char *json, const char *key);
void gw_json_str(const char *json, const char *key, char *out, size_t len);

/* rm -rf dir, for test teardowns (a failure is reported, not fatal). */
void gw_rm_rf(const char *dir);

/*
 * Write len bytes at gpa into the guest RAM of godwit process pid (root: through
 * /proc/PID/mem), as a bug that dropped or damaged a page would leave it. The RAM is found
 * as the one mapping of exactly ram_bytes (guest RAM below 3 GiB is one mapping).
 */
void gw_poke_guest_ram(pid_t pid, uint64_t ram_bytes, uint64_t gpa, const void *buf, size_t len);

/* zlib's CRC-32 (IEEE 802.3), as the guests print it. */
uint32_t gw_crc32(const void *buf, size_t len);

#endif
