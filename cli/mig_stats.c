/* A migration's figures as JSON, for the control API's replies: the mig_stats struct formatted. */
#include "cli/mig_stats.h"

#include <inttypes.h>
#include <stdio.h>

void mig_stats_json(const struct mig_stats *s, char *buf, size_t len)
{
	char err[400];
	size_t off;

	{
		/* Quote the error by hand: it is ours, but may hold a peer's message. */
		size_t n = 0;

		err[n++] = '"';
		for (const char *p = s->error; *p && n + 3 < sizeof(err); p++) {
			if (*p == '"' || *p == '\\')
				err[n++] = '\\';
			err[n++] = (*p >= 0x20) ? *p : ' ';
		}
		err[n++] = '"';
		err[n] = '\0';
	}
	off = (size_t)snprintf(buf, len,
		"{\"state\":\"%s\",\"round\":%u,\"remaining_bytes\":%" PRIu64
		",\"rate_bytes_s\":%.0f,\"dirty_bytes_s\":%.0f,\"predicted_downtime_ms\":%" PRIu64
		",\"downtime_ms\":%" PRIu64 ",\"total_ms\":%" PRIu64 ",\"wire_bytes\":%" PRIu64
		",\"page_bytes\":%" PRIu64 ",\"throttle_pct\":%u,\"rounds_count\":%u,"
		"\"fixed_cost_ms\":%" PRIu64 ",\"raw_bytes\":%" PRIu64 ",\"error\":%s,"
		"\"announced\":%s,\"announce_ms\":%" PRIu64 ",\"announce_frames\":%" PRIu64
		",\"announce_guest\":%u,\"net_frames_carried\":%" PRIu64 ",\"net_bytes_carried\":%"
		PRIu64 ",\"net_frames_dropped\":%" PRIu64 ",\"rounds\":[",
		mig_state_name(s->state), s->round, s->remaining_bytes, s->rate_bytes_s,
		s->dirty_bytes_s, s->predicted_downtime_ms, s->downtime_ms, s->total_ms,
		s->wire_bytes, s->page_bytes, s->throttle_pct, s->nrounds, s->fixed_cost_ms,
		s->raw_bytes, err, s->announced ? "true" : "false", s->announce_ms,
		s->announce_frames, s->announce_guest, s->net_frames_carried, s->net_bytes_carried,
		s->net_frames_dropped);
	for (uint32_t i = 0; i < s->nrounds && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off,
			"%s{\"round\":%u,\"pages\":%" PRIu64 ",\"zero_pages\":%" PRIu64
			",\"disk_blocks\":%" PRIu64 ",\"ms\":%" PRIu64 ",\"rate_bytes_s\":%.0f"
			",\"dirty_bytes_s\":%.0f}", i ? "," : "", s->rounds[i].round,
			s->rounds[i].pages, s->rounds[i].zero_pages, s->rounds[i].disk_blocks,
			s->rounds[i].ms, s->rounds[i].rate_bytes_s, s->rounds[i].dirty_bytes_s);
	if (off < len)
		snprintf(buf + off, len - off, "]}");
}
