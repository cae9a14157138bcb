/* The repository objects' compatibility rule, as the readers state it in their errors. */
#ifndef REPO_COMPAT_H
#define REPO_COMPAT_H

/*
 * The rule (repo/README.md, "Compatibility"): a reader accepts every earlier format
 * version of the config, packs, indexes and manifests, and refuses a newer one with one
 * line that names the versions and says "upgrade godwit". Version 0 is invalid.
 *
 * compat_newer(what, version, newest) is that line for a decoder whose reason is a
 * borrowed string: what is the object ("pack"), version the one it carries, newest this
 * godwit's FORMAT_VERSION. The text lives in a per-thread buffer until the next call.
 */
const char *compat_newer(const char *what, unsigned version, unsigned newest);

#endif
