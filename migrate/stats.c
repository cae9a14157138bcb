/* A migration's state names, for logs, status replies and people. */
#include "migrate/migrate.h"

const char *mig_state_name(enum mig_state s)
{
	static const char *const names[MIG_STATE_COUNT] = {
		[MIG_STATE_NONE] = "none", [MIG_STATE_SETUP] = "setup",
		[MIG_STATE_ITERATE] = "iterate", [MIG_STATE_STOP_COPY] = "stop-and-copy",
		[MIG_STATE_COMMIT] = "commit", [MIG_STATE_COMPLETED] = "completed",
		[MIG_STATE_FAILED] = "failed", [MIG_STATE_CANCELLED] = "cancelled",
		[MIG_STATE_UNCONFIRMED] = "unconfirmed",
	};

	return (unsigned)s < MIG_STATE_COUNT ? names[s] : "invalid";
}
