/* The godwit subcommands; each returns the process exit status. */
#ifndef CLI_CLI_H
#define CLI_CLI_H

/* Exit statuses, documented in README.md. */
#define CLI_EXIT_OK 0
#define CLI_EXIT_ERROR 1       /* bad input or a host problem: nothing was started */
#define CLI_EXIT_USAGE 2       /* unknown command or option */
#define CLI_EXIT_GUEST_CRASH 3 /* the guest died: triple fault, KVM internal error */
#define CLI_EXIT_LOCKED 4      /* backup, prune, restore: a lock is held (a prune, a backup) */
#define CLI_EXIT_PARTIAL 5     /* backup: the snapshot is stored, retention failed */
#define CLI_EXIT_UNCONFIRMED 6 /* migrate: GO went out, RUNNING never came: the VM is held
				  paused here and may run at the destination */

int cmd_run(int argc, char **argv);
int cmd_migrate(int argc, char **argv);
int cmd_receive(int argc, char **argv);
int cmd_snapshot(int argc, char **argv);
int cmd_restore(int argc, char **argv);
int cmd_images(int argc, char **argv);
int cmd_repo(int argc, char **argv);
int cmd_backup(int argc, char **argv);
/* godwit images prune (argv[1] is "prune"), reached through cmd_images. */
int cmd_images_prune(int argc, char **argv);

/* Print "godwit: <message>" on stderr as one line. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
