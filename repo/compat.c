/* The compatibility rule's refusal line: see compat.h. */
#include "repo/compat.h"

#include <stdio.h>

const char *compat_newer(const char *what, unsigned version, unsigned newest)
{
	static _Thread_local char line[160];

	snprintf(line, sizeof(line), "%s format version %u is newer than %u, the newest this "
		 "godwit reads: upgrade godwit", what, version, newest);
	return line;
}
