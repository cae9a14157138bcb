/* godwit restore --check: would a snapshot restore on this host? */
#ifndef CLI_RESTORE_CHECK_H
#define CLI_RESTORE_CHECK_H

struct repo;

/*
 * Print whether snapshot id ("latest": the newest, of vm_name when set) of the open
 * repository r would restore here with the given --disk, --disk-base (NULL when not
 * given) and nnets --net options, starting nothing and taking no lock: one line per
 * check (the formats it is written in, CPU features against KVM_GET_SUPPORTED_CPUID, RAM
 * against MemAvailable, the disk's size against the target, the NIC count), then "go" or
 * "no-go". Returns CLI_EXIT_OK for go, CLI_EXIT_ERROR for no-go.
 */
int restore_check(struct repo *r, const char *id, const char *vm_name, const char *disk,
		  const char *base, unsigned nnets);

#endif
