#!/usr/bin/env bash
# The layering rules of STYLE.md §1, checked on the source tree:
#   cli/ -> migrate/, snapshot/ -> repo/ -> transport/ -> util/
#   vmm/ -> util/ only; migrate/ and snapshot/ see vmm/ only through its public headers;
#   a *_priv.h is included only from its own module;
#   nothing below cli/ prints to stdout or ends the process.
# Usage: scripts/check-layering.sh [SOURCE_ROOT]. Prints one line per violation, exits 1 if any.
set -euo pipefail
root=${1:-$(dirname "$0")/..}
cd "$root"

# What each folder may include besides itself (folders, or single headers).
declare -A allowed=(
	[util]=""
	[transport]="util"
	[vmm]="util"
	[repo]="transport util"
	[snapshot]="repo transport util vmm/vm_state.h vmm/vm_lifecycle.h"
	[migrate]="transport util vmm/vm_state.h vmm/vm_lifecycle.h"
)
bad=0
violation() {
	printf 'layering: %s\n' "$*"
	bad=1
}

sources() { # the C sources and headers of folder $1, subfolders included
	[ -d "$1" ] && find "$1" -type f \( -name '*.c' -o -name '*.h' \) | sort
}

for mod in "${!allowed[@]}"; do
	while IFS= read -r f; do
		while IFS=: read -r line inc; do
			target=${inc#*\"}
			target=${target%%\"*}
			case $target in */*) ;; *) continue ;; esac # a same-folder include
			top=${target%%/*}
			[ "$top" = "$mod" ] && continue
			ok=0
			for a in ${allowed[$mod]}; do
				if [ "$a" = "$top" ] || [ "$a" = "$target" ]; then ok=1; fi
			done
			[ $ok = 1 ] || violation "$f:$line includes \"$target\": $mod/ may include only" \
				"${allowed[$mod]:-nothing} outside itself (STYLE.md §1)"
		done < <(grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" | cut -d: -f1,2-)
	done < <(sources "$mod")
done

# Private headers stay in their module.
for f in $(sources cli; sources migrate; sources snapshot; sources repo; sources vmm; \
	sources transport; sources util); do
	while IFS=: read -r line target; do
		[ "${target%%/*}" = "${f%%/*}" ] || [ "$(dirname "$target")" = . ] ||
			violation "$f:$line includes \"$target\": a _priv.h is for its own module"
	done < <(grep -no '^[[:space:]]*#[[:space:]]*include[[:space:]]*"[^"]*_priv\.h"' "$f" |
		sed 's/:[^"]*"/:/; s/"$//')
done

# Below cli/: no output for people on stdout, no ending the process (STYLE.md §2).
for mod in "${!allowed[@]}"; do
	while IFS= read -r f; do
		grep -nE '(^|[^[:alnum:]_.>])(printf|puts|putchar|exit|_exit|_Exit|abort|quick_exit)[[:space:]]*\(|fprintf[[:space:]]*\([[:space:]]*stdout|fputs[[:space:]]*\([^;]*stdout' "$f" |
			grep -vE '^[0-9]+:[[:space:]]*(\*|//|/\*)' |
			while IFS=: read -r line _; do
				printf 'layering: %s:%s prints to stdout or ends the process: only cli/ may (STYLE.md §2)\n' "$f" "$line"
			done | grep . && bad=1
	done < <(sources "$mod")
done
exit $bad
