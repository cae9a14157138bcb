/* Command-line options shared by godwit migrate and godwit receive: authentication. */
#ifndef CLI_MIG_OPTS_H
#define CLI_MIG_OPTS_H

#include <getopt.h>
#include <stdbool.h>

#include "migrate/migrate.h"

/* getopt_long codes of the auth options; spread MIG_AUTH_OPTIONS into an option table. */
enum {
	MIG_OPT_PSK = 0x100,
	MIG_OPT_CERT,
	MIG_OPT_KEY,
	MIG_OPT_CA,
	MIG_OPT_PLAIN,
	MIG_OPT_SERVER_NAME,
};

#define MIG_AUTH_OPTIONS \
	{ "psk-file", required_argument, NULL, MIG_OPT_PSK }, \
	{ "tls-cert", required_argument, NULL, MIG_OPT_CERT }, \
	{ "tls-key", required_argument, NULL, MIG_OPT_KEY }, \
	{ "tls-ca", required_argument, NULL, MIG_OPT_CA }, \
	{ "insecure-plaintext", no_argument, NULL, MIG_OPT_PLAIN }, \
	{ "tls-server-name", required_argument, NULL, MIG_OPT_SERVER_NAME }

#define MIG_AUTH_USAGE \
	"  --psk-file FILE        authenticate with a TLS 1.3 pre-shared key (same file on\n" \
	"                         both hosts: 64 hex digits; make one with\n" \
	"                         'openssl rand -hex 32 > FILE; chmod 600 FILE')\n" \
	"  --tls-cert FILE --tls-key FILE --tls-ca FILE\n" \
	"                         or with certificates, checked both ways (the key file\n" \
	"                         mode 0600; the destination's certificate must name the\n" \
	"                         --to host, or --tls-server-name NAME, for serverAuth)\n" \
	"  --insecure-plaintext   no encryption, no authentication (trusted links only)\n"

/*
 * Take opt (a getopt_long code) into a, absolute paths for files (the VMM process has
 * another working directory). Returns true if opt was an auth option.
 */
bool mig_opt_auth(int opt, const char *arg, struct mig_auth *a);

#endif
