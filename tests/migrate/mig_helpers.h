/* Two hosts for migration tests: namespaces, the source VM, the receiver, the migrate command. */
#ifndef TESTS_MIGRATE_MIG_HELPERS_H
#define TESTS_MIGRATE_MIG_HELPERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tests/common/gw_test.h"

#define BOOT_MS 60000
#define MIG_MS 120000

/*
 * One test's world, made by mig_setup and removed by mig_teardown (a suite's .init and
 * .fini): the namespaces (gw_netns_create them in the test), the source VM, the receiver,
 * the migrate (or any other) command, the PSK file both ends use, the port.
 */
extern struct gw_netns N;
extern struct gw_proc SRC, DST, MIG;
extern char PSK[256], PORT[16];
extern bool SRC_RING; /* start_source tracks dirty pages with KVM's dirty ring */

void mig_setup(void);
void mig_teardown(void);
void write_psk(const char *path, const char *hex);

/* Boot the test guest as the source in namespace ns (NULL: this one); wait for 3 HB. */
void start_source(const char *ns, const char *disk, const char *cmdline);
/* Start `godwit receive` on addr:PORT with auth options (NULL-terminated). */
void start_dest(const char *ns, const char *addr, const char *disk, const char *const *auth);
/* Run `godwit migrate --json` against the source's API to addr:PORT; its exit status. */
int run_migrate(const char *addr, const char *const *extra);
/* Spawn `godwit migrate` slowed to rate (--max-bandwidth), so it is copying when a test acts. */
void spawn_slow_migrate(const char *addr, const char *rate, const char *const *auth);
/* Run any godwit command to completion in MIG's slot; its exit status. */
int godwit_cmd(const char *const *argv);

/* The guest continues at the destination: same boot id, larger counter, no corruption. */
void expect_continued(const struct gw_hb *before);
/* The source is still running its guest: heartbeats keep coming, status says running. */
void expect_source_running(void);
/* The receiver exits non-zero and never ran the guest. */
void expect_dest_failed_without_guest(void);
/*
 * The receiver turned away n connections (one "turned away" line each on its stderr,
 * each holding needle), never ran the guest, and still listens.
 */
void expect_dest_turned_away(unsigned n, const char *needle);

/* The source's migrate-status into json; false while no migration has started. */
bool mig_status(char *json, size_t len);
bool state_is(const char *json, const char *state);
/*
 * Wait until the source's migration is in state with at least min_wire bytes sent, so
 * that a kill, cut, pause or cancel made now lands mid-stream. A migration that ended
 * first fails the test: what would follow proves nothing.
 */
void wait_mid_stream(const char *state, uint64_t min_wire, char *json, size_t len);

/* Connect to 127.0.0.1:PORT and send bytes, then close. */
void send_raw(const void *buf, size_t len);

#endif
