/* Command-line options shared by godwit migrate and godwit receive: authentication. */
#include "cli/mig_opts.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The absolute form of path if it exists, else path as given (errors name it later). */
static void set_path(char *dst, size_t cap, const char *path)
{
	char abs[PATH_MAX];
	const char *src = realpath(path, abs) ? abs : path;
	size_t n = strnlen(src, cap - 1);

	/* A path too long for the field is cut here and then fails to open, by name. */
	memcpy(dst, src, n);
	dst[n] = '\0';
}

bool mig_opt_auth(int opt, const char *arg, struct mig_auth *a)
{
	switch (opt) {
	case MIG_OPT_PSK:
		set_path(a->psk_file, sizeof(a->psk_file), arg);
		return true;
	case MIG_OPT_CERT:
		set_path(a->cert_file, sizeof(a->cert_file), arg);
		return true;
	case MIG_OPT_KEY:
		set_path(a->key_file, sizeof(a->key_file), arg);
		return true;
	case MIG_OPT_CA:
		set_path(a->ca_file, sizeof(a->ca_file), arg);
		return true;
	case MIG_OPT_SERVER_NAME:
		snprintf(a->server_name, sizeof(a->server_name), "%s", arg);
		return true;
	case MIG_OPT_PLAIN:
		a->insecure_plaintext = true;
		return true;
	default:
		return false;
	}
}
