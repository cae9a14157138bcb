#!/usr/bin/env bash
# The previous release against this build, on /dev/kvm, with the test guest:
#   1. the old build snapshots a VM (full, then incremental); this build restores the
#      incremental and the guest goes on (same boot, counter past the snapshot's);
#   2. this build snapshots the VM it restored: an incremental whose disk parent is the
#      old build's snapshot (its change log or its librsync signature), and restores it;
#   3. migration old -> new and new -> old, TLS-PSK on loopback, each with --verify, and
#      the guest goes on at the destination.
# The previous release is the newest line of RELEASES whose version is not this tree's;
# it is built from the git history by build_release.sh and cached by commit under the
# build directory. Exit 77 (skipped, never passed) without /dev/kvm or when the commit is
# not in the history (a shallow clone).
#
# Usage: old_release.sh SRC_ROOT CACHE_DIR GODWIT GUEST_ELF THIS_VERSION
set -euo pipefail
src=$1 cache=$2 new=$3 new_elf=$4 this_version=$5
here=$(dirname "$(readlink -f "$0")")
t0=$(date +%s.%N)
say() { printf '# %6.1f s  %s\n' "$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {print b - a}')" "$*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

if ! { exec 3<>/dev/kvm; } 2>/dev/null; then
	echo "SKIP: /dev/kvm is not usable here"
	exit 77
fi
exec 3>&-
release=$(awk -v v="$this_version" '!/^#/ && NF >= 2 && $1 != v && length($2) == 40 && $2 ~ /^[0-9a-f]+$/ {r = $1 " " $2} END {print r}' "$src/RELEASES")
[ -n "$release" ] || fail "no earlier release in $src/RELEASES"
old_version=${release% *} commit=${release#* }
rc=0
old_build=$("$here/build_release.sh" "$src" "$cache" "$commit") || rc=$?
if [ "$rc" -eq 77 ]; then
	echo "SKIP: cannot build release $old_version: its commit $commit is not in the git history (a shallow clone?)"
	exit 77
fi
[ "$rc" -eq 0 ] || fail "building release $old_version ($commit) failed"
old=$old_build/cli/godwit old_elf=$old_build/tests/guest/godwit-test-guest.elf
say "release $old_version ($commit) built: $old"
[ "$("$old" --version)" = "godwit $old_version" ] || fail "$old is not $old_version: $("$old" --version)"

work=$(mktemp -d "/tmp/gw-compat.$$.XXXXXX")
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
repo=$work/repo key=$work/repo.key psk=$work/psk
openssl rand -hex 32 >"$psk"
chmod 600 "$psk"

# shellcheck source=scripts/gw-lib.sh
. "$src/scripts/gw-lib.sh"
wait_hb() { gw_wait_hb "$@" || fail "no heartbeat"; }

# The guest at CONSOLE goes on: 3 heartbeats, boot BOOT, counter past AFTER, no error.
expect_continues() { # CONSOLE BOOT AFTER WHAT
	wait_hb "$1" 3
	local line
	line=$(gw_last_hb "$1")
	set -- "$@" "$line"
	read -r _ b c _ <<<"$5"
	[ "$b" = "$2" ] || fail "$4: another boot: $5 (was $2)"
	[ "$c" -gt "$3" ] || fail "$4: the counter went back: $5 (was $3)"
	case "$5" in *" e=0") ;; *) fail "$4: the guest found errors: $5" ;; esac
	! grep -q '^GUEST' "$1" || fail "$4: the guest complained: $(grep '^GUEST' "$1")"
	say "$4: the guest goes on ($5)"
}
quit() { # API PID
	gw_api "$1" '{"cmd":"quit"}' >/dev/null
	wait "$2" || fail "godwit (pid $2) exited $?"
}
start() { # NAME GODWIT ARGS...: background, console and api in work/NAME.*
	local name=$1 bin=$2
	shift 2
	"$bin" "$@" --console "$work/$name.console" --api "$work/$name.api" \
		2>"$work/$name.err" &
	pids+=("$!")
	eval "${name}_pid=$!"
}

# 1. Snapshots by the old build, restored by this one.
truncate -s 8M "$work/disk.img"
"$old" repo init --repo "$repo" --key-file "$key" >/dev/null
start vm1 "$old" run --kernel "$old_elf" --mem 64M --cpus 2 --disk "$work/disk.img" \
	--cmdline "mb=4 rate=2 verify=1 disk=w:0:2048:7"
wait_hb "$work/vm1.console" 2
boot=$(gw_last_hb "$work/vm1.console" | awk '{print $2}')
snap() { # API GODWIT: a snapshot; prints its JSON
	"$2" snapshot --api "$1" --repo "$repo" --key-file "$key" --json 2>>"$work/snap.err" ||
		fail "snapshot failed: $(cat "$work/snap.err")"
}
full=$(snap "$work/vm1.api" "$old")
wait_hb "$work/vm1.console" $(( $(gw_hbs "$work/vm1.console") + 2 ))
inc=$(snap "$work/vm1.api" "$old")
inc_hb=$(gw_last_hb "$work/vm1.console" | awk '{print $3}')
[ "$(gw_json "$inc" parent)" = "$(gw_json "$full" id)" ] || fail "the old build's second snapshot is not incremental: $inc"
quit "$work/vm1.api" "$vm1_pid"
say "$old_version: full $(gw_json "$full" id), incremental $(gw_json "$inc" id)"

start r1 "$new" restore --repo "$repo" --key-file "$key" --snapshot "$(gw_json "$inc" id)" \
	--disk "$work/r1.img"
expect_continues "$work/r1.console" "$boot" "$inc_hb" "$old_version's incremental restored by this build"

# 2. This build's snapshot on top of the old one's, restored.
new_snap=$(snap "$work/r1.api" "$new")
new_hb=$(gw_last_hb "$work/r1.console" | awk '{print $3}')
mode=$(gw_json "$new_snap" disk_mode)
case "$mode" in log | rsync) ;; *) fail "this build's snapshot did not build on the old one's disk ($mode): $new_snap" ;; esac
quit "$work/r1.api" "$r1_pid"
say "this build's snapshot $(gw_json "$new_snap" id): disk from the old snapshot ($mode), $(gw_json "$new_snap" bytes_new_stored) bytes new"
start r2 "$new" restore --repo "$repo" --key-file "$key" --snapshot "$(gw_json "$new_snap" id)" \
	--disk "$work/r2.img" --verify
expect_continues "$work/r2.console" "$boot" "$new_hb" "this build's snapshot over $old_version's, restored with --verify"
quit "$work/r2.api" "$r2_pid"

# 3. Migration both ways.
migrate() { # NAME WHAT FROM_GODWIT FROM_ELF TO_GODWIT
	local name=$1 what=$2 from=$3 elf=$4 to=$5 port line b c
	start "${name}_dst" "$to" receive --listen 127.0.0.1:0 --psk-file "$psk"
	for _ in $(seq 300); do
		grep -q "waiting for a VM on" "$work/${name}_dst.err" && break
		sleep 0.1
	done
	port=$(sed -n 's/.*waiting for a VM on 127.0.0.1:\([0-9]*\).*/\1/p' "$work/${name}_dst.err")
	[ -n "$port" ] || fail "$name: receive did not start: $(cat "$work/${name}_dst.err")"
	start "${name}_src" "$from" run --kernel "$elf" --mem 64M --cpus 2 \
		--cmdline "mb=4 rate=2 verify=1"
	wait_hb "$work/${name}_src.console" 3
	"$from" migrate --api "$work/${name}_src.api" --to "127.0.0.1:$port" --psk-file "$psk" \
		--verify >/dev/null 2>"$work/$name.migrate.err" ||
		fail "$what: migration failed: $(cat "$work/$name.migrate.err")"
	line=$(gw_last_hb "$work/${name}_src.console")
	read -r _ b c _ <<<"$line"
	eval "wait \$${name}_src_pid" || fail "$what: the source did not exit 0"
	expect_continues "$work/${name}_dst.console" "$b" "$c" "$what"
	eval "quit \"$work/${name}_dst.api\" \$${name}_dst_pid"
}
migrate m1 "migration $old_version -> this build" "$old" "$old_elf" "$new"
migrate m2 "migration this build -> $old_version" "$new" "$new_elf" "$old"
say "done"
