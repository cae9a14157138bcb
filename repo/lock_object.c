/* A lock object's text (lock.h has the format) and its name under locks/. */
#include "repo/lock_priv.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOCK_MAGIC "godwit-lock 1"
#define LOCK_MAGIC_V2 "godwit-lock 2"

static const char *const kind_names[] = {
	[REPO_LOCK_BACKUP] = "backup",
	[REPO_LOCK_PRUNE] = "prune",
	[REPO_LOCK_SNAPSHOT] = "snapshot",
	[REPO_LOCK_RESTORE] = "restore",
};

const char *lock_kind_name(enum repo_lock_kind k)
{
	return kind_names[k];
}

/* The kinds version 1 knew are written as version 1, so older readers keep reading them. */
static bool kind_v1(enum repo_lock_kind k)
{
	return k == REPO_LOCK_BACKUP || k == REPO_LOCK_PRUNE;
}

bool lock_kind_tagged(enum repo_lock_kind k)
{
	return k == REPO_LOCK_BACKUP || k == REPO_LOCK_SNAPSHOT;
}

int lock_encode(const struct lock_info *i, char *out, size_t len)
{
	int n = snprintf(out, len,
			 "%s\nkind %s\nvm-tag %s\nvm %s\nhost %s\nboot-id %s\npid %" PRId64
			 "\npid-start %" PRIu64 "\nstarted-ns %" PRIu64 "\nheartbeat-ns %" PRIu64 "\n",
			 kind_v1(i->kind) ? LOCK_MAGIC : LOCK_MAGIC_V2, lock_kind_name(i->kind),
			 i->tag, i->vm, i->host, i->boot_id, i->pid, i->pid_start, i->started_ns,
			 i->heartbeat_ns);

	return n < 0 || (size_t)n >= len ? -EMSGSIZE : n;
}

/* The value of line "key value" at *p (p, key, out, len); advances *p past the line. */
static bool take_line(const char **p, const char *end, const char *key, char *out, size_t len)
{
	size_t k = strlen(key), n;
	const char *nl = memchr(*p, '\n', (size_t)(end - *p));

	if (!nl || (size_t)(nl - *p) <= k || memcmp(*p, key, k) != 0 || (*p)[k] != ' ')
		return false;
	n = (size_t)(nl - *p) - k - 1;
	if (n == 0 || n >= len)
		return false;
	memcpy(out, *p + k + 1, n);
	out[n] = '\0';
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)out[i] < ' ')
			return false;
	*p = nl + 1;
	return true;
}

static bool parse_u64(const char *s, uint64_t *v)
{
	char *end;

	if (!*s || *s == '-')
		return false;
	errno = 0;
	*v = strtoull(s, &end, 10);
	return errno == 0 && *end == '\0';
}

int lock_decode(const uint8_t *buf, size_t len, struct lock_info *out)
{
	const char *p = (const char *)buf, *end = p + len;
	char kind[16], num[32];
	uint64_t v;

	bool v1, v2;

	memset(out, 0, sizeof(*out));
	if (len > LOCK_OBJECT_MAX || memchr(buf, '\0', len))
		return -EBADMSG;
	v1 = len >= sizeof(LOCK_MAGIC) && memcmp(p, LOCK_MAGIC "\n", sizeof(LOCK_MAGIC)) == 0;
	v2 = len >= sizeof(LOCK_MAGIC_V2) &&
	     memcmp(p, LOCK_MAGIC_V2 "\n", sizeof(LOCK_MAGIC_V2)) == 0;
	if (len > 12 && memcmp(p, "godwit-lock ", 12) == 0 && !v1 && !v2) {
		out->future = true;
		return 1;
	}
	if (!v1 && !v2)
		return -EBADMSG;
	p += sizeof(LOCK_MAGIC); /* both magics are as long */
	if (!take_line(&p, end, "kind", kind, sizeof(kind)))
		return -EBADMSG;
	for (unsigned k = REPO_LOCK_BACKUP; k <= REPO_LOCK_RESTORE && !out->kind; k++)
		if (!strcmp(kind, kind_names[k]) && (v2 || kind_v1(k)))
			out->kind = (enum repo_lock_kind)k;
	if (!out->kind)
		return -EBADMSG;
	if (!take_line(&p, end, "vm-tag", out->tag, sizeof(out->tag)) ||
	    !take_line(&p, end, "vm", out->vm, sizeof(out->vm)) ||
	    !take_line(&p, end, "host", out->host, sizeof(out->host)) ||
	    !take_line(&p, end, "boot-id", out->boot_id, sizeof(out->boot_id)) ||
	    !take_line(&p, end, "pid", num, sizeof(num)) || !parse_u64(num, &v) || v > INT32_MAX)
		return -EBADMSG;
	out->pid = (int64_t)v;
	if (!take_line(&p, end, "pid-start", num, sizeof(num)) || !parse_u64(num, &out->pid_start) ||
	    !take_line(&p, end, "started-ns", num, sizeof(num)) ||
	    !parse_u64(num, &out->started_ns) ||
	    !take_line(&p, end, "heartbeat-ns", num, sizeof(num)) ||
	    !parse_u64(num, &out->heartbeat_ns) || p != end)
		return -EBADMSG;
	return 0;
}

void lock_object_name(const struct lock_info *i, uint32_t seq, char out[LOCK_NAME_BYTES])
{
	if (!lock_kind_tagged(i->kind))
		snprintf(out, LOCK_NAME_BYTES, LOCK_PREFIX "%s-%s-%08" PRIx32,
			 lock_kind_name(i->kind), i->nonce, seq);
	else
		snprintf(out, LOCK_NAME_BYTES, LOCK_PREFIX "%s-%s-%s-%08" PRIx32,
			 lock_kind_name(i->kind), i->tag, i->nonce, seq);
}

bool lock_name_nonce(const char *name, char nonce[LOCK_NONCE_HEX + 1])
{
	size_t n = strlen(name);
	const char *p;

	if (n < 1 + LOCK_NONCE_HEX + 1 + 8)
		return false;
	p = name + n - 8 - 1 - LOCK_NONCE_HEX - 1;
	if (p[0] != '-' || p[1 + LOCK_NONCE_HEX] != '-')
		return false;
	for (size_t i = 1; i < n - (size_t)(p - name); i++)
		if (i != 1 + LOCK_NONCE_HEX && !strchr("0123456789abcdef", p[i]))
			return false;
	memcpy(nonce, p + 1, LOCK_NONCE_HEX);
	nonce[LOCK_NONCE_HEX] = '\0';
	return true;
}
