#!/usr/bin/env bash
# Build a release of godwit from the git history, only what the cross-version tests run:
# the godwit binary and the test guest. Cached by commit: a second call is instant.
#
# Usage: build_release.sh SRC_ROOT CACHE_ROOT COMMIT
# Prints the release's build directory (CACHE_ROOT/release-COMMIT/build) on stdout.
# Exit 77 (skipped) with one line on stderr when COMMIT is not in SRC_ROOT's history
# (a shallow clone), 1 when the build fails.
set -euo pipefail
src=$1 cache=$2 commit=$3
dir=$cache/release-$commit

if ! git -C "$src" cat-file -e "$commit^{commit}" 2>/dev/null; then
	echo "release commit $commit is not in $src's git history (a shallow clone?):" \
		"fetch it with git fetch --unshallow" >&2
	exit 77
fi
mkdir -p "$cache"
# One builder at a time per cache; the others wait and then find it built.
exec 9>"$cache/.lock-$commit"
flock 9
if [ ! -e "$dir/built" ]; then
	rm -rf "$dir"
	mkdir -p "$dir/src"
	# The commit's tree, as `git worktree add --detach` would check it out, without
	# registering a worktree that a deleted build directory would leave dangling.
	git -C "$src" archive --format=tar "$commit" | tar -x -C "$dir/src"
	meson setup "$dir/build" "$dir/src" >"$dir/setup.log" 2>&1 ||
		{ echo "configuring release $commit failed: see $dir/setup.log" >&2; exit 1; }
	ninja -C "$dir/build" cli/godwit tests/guest/godwit-test-guest.elf >"$dir/build.log" 2>&1 ||
		{ echo "building release $commit failed: see $dir/build.log" >&2; exit 1; }
	touch "$dir/built"
fi
echo "$dir/build"
