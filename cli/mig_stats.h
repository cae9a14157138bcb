/* A migration's figures as JSON: migrate/ fills struct mig_stats, cli/ formats it. */
#ifndef CLI_MIG_STATS_H
#define CLI_MIG_STATS_H

#include <stddef.h>

#include "migrate/migrate.h"

/* Format s as one JSON object (no newline) into buf (s, buf, len); truncated to fit len. */
void mig_stats_json(const struct mig_stats *s, char *buf, size_t len);

#endif
