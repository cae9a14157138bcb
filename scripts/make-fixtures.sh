#!/usr/bin/env bash
# Write a new set of golden samples (tests/fixtures/): objects of every format a godwit
# build writes, from a real VM of the test guest, and what the test that reads them back
# must find in them. Samples are never regenerated: a format change adds a new directory
# beside the old ones, and the old ones stay, read by every later release.
#
# Usage: scripts/make-fixtures.sh BUILD_DIR OUT_DIR [COMMIT]
#   BUILD_DIR  a build of the release that writes the samples (its cli/godwit and
#              tests/guest/godwit-test-guest.elf); tests/compat/build_release.sh builds
#              a release from the git history
#   OUT_DIR    a new directory (refused if it exists), e.g. tests/fixtures/0.1.0
#   COMMIT     the commit BUILD_DIR was built from, for the README (default: HEAD)
# Needs /dev/kvm and python3.
#
# OUT_DIR gets:
#   repo/, repo.key       an encrypted repository and its key (a test key, public on
#                         purpose): a full snapshot and an incremental one of the same VM
#   migration.stream      what a source sent on a plaintext migration of that VM, from the
#                         first byte (frame stream header, zstd, HELLO, pages, STATE, DONE)
#   expected              key=value lines the readers check: ids, parent, the heartbeat
#                         before each snapshot, the guest's code (gpa, bytes, SHA-256, read
#                         from the guest's ELF, not through godwit), the HELLO's fields
#   README                which version and commit wrote it, and how
set -euo pipefail
[ $# -eq 2 ] || [ $# -eq 3 ] || { echo "usage: $0 BUILD_DIR OUT_DIR [COMMIT]" >&2; exit 2; }
build=$(realpath "$1")
out=$2
gw=$build/cli/godwit
elf=$build/tests/guest/godwit-test-guest.elf
mem_mib=64 # the smallest a VM may have
cmdline="mb=0 rate=0"

if [ -e "$out" ]; then
	echo "make-fixtures: $out exists: samples are never regenerated, pick a new directory" >&2
	exit 2
fi
[ -x "$gw" ] && [ -e "$elf" ] || { echo "make-fixtures: no $gw or $elf" >&2; exit 2; }
work=$(mktemp -d "/tmp/gw-fixtures.$$.XXXXXX")
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$out"

# shellcheck source=scripts/gw-lib.sh
. "$(dirname "$0")/gw-lib.sh"

text_segment() { # ELF: paddr, bytes and SHA-256 of its code (the executable PT_LOAD)
	python3 - "$1" <<'PY'
import hashlib, struct, sys
elf = open(sys.argv[1], "rb").read()
phoff, = struct.unpack_from("<Q", elf, 0x20)
phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
for i in range(phnum):
    ptype, flags, off, vaddr, paddr, filesz = struct.unpack_from("<IIQQQQ", elf, phoff + i * phentsize)
    if ptype == 1 and flags & 1:
        print(f"guest_text_gpa={paddr}")
        print(f"guest_text_bytes={filesz}")
        print(f"guest_text_sha256={hashlib.sha256(elf[off:off + filesz]).hexdigest()}")
        break
else:
    sys.exit("make-fixtures: no executable segment in " + sys.argv[1])
PY
}

"$gw" repo init --repo "$out/repo" --key-file "$out/repo.key" >/dev/null
"$gw" run --kernel "$elf" --mem "${mem_mib}M" --cpus 1 --cmdline "$cmdline" \
	--console "$work/vm.console" --api "$work/vm.api" --allow-plaintext-migration \
	2>"$work/vm.err" &
vm=$!
pids+=("$vm")
gw_wait_hb "$work/vm.console" 2
boot=$(grep '^HB ' "$work/vm.console" | head -1 | awk '{print $2}')

snap() { # NAME: a snapshot of the running VM, and the heartbeat just before it
	local json hb
	hb=$(gw_last_hb "$work/vm.console" | awk '{print $3}')
	json=$("$gw" snapshot --api "$work/vm.api" --repo "$out/repo" --key-file "$out/repo.key" \
		--json)
	echo "$1=$(gw_json "$json" id)"
	echo "$1_parent=$(gw_json "$json" parent)"
	echo "$1_heartbeat=$hb"
}
{
	echo "version=$("$gw" --version | awk '{print $2}')"
	echo "ram_bytes=$((mem_mib << 20))"
	echo "ncpus=1"
	echo "boot_id=$boot"
	text_segment "$elf"
	snap full
	gw_wait_hb "$work/vm.console" "$(( $(gw_hbs "$work/vm.console") + 2 ))"
	snap incremental
} >"$work/expected"

# Migrate the VM through a proxy that keeps what the source sent.
"$gw" receive --listen 127.0.0.1:0 --insecure-plaintext --console "$work/dst.console" \
	--api "$work/dst.api" 2>"$work/dst.err" &
pids+=("$!")
for _ in $(seq 300); do
	grep -q "waiting for a VM on" "$work/dst.err" && break
	sleep 0.1
done
dst_port=$(sed -n 's/.*waiting for a VM on 127.0.0.1:\([0-9]*\).*/\1/p' "$work/dst.err")
[ -n "$dst_port" ] || { echo "make-fixtures: receive did not start" >&2; cat "$work/dst.err" >&2; exit 1; }
python3 - "$dst_port" "$out/migration.stream" "$work/proxy.port" <<'PY' &
import socket, sys, threading
dst_port, keep, port_file = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ls = socket.socket()
ls.bind(("127.0.0.1", 0))
ls.listen(1)
open(port_file, "w").write(str(ls.getsockname()[1]))
src, _ = ls.accept()
dst = socket.create_connection(("127.0.0.1", dst_port))
def pump(a, b, f):
    while True:
        data = a.recv(65536)
        if not data:
            b.shutdown(socket.SHUT_WR)
            return
        if f:
            f.write(data)
        b.sendall(data)
with open(keep, "wb") as f:
    back = threading.Thread(target=pump, args=(dst, src, None))
    back.start()
    pump(src, dst, f)
    back.join()
PY
pids+=("$!")
for _ in $(seq 100); do [ -s "$work/proxy.port" ] && break; sleep 0.1; done
"$gw" migrate --api "$work/vm.api" --to "127.0.0.1:$(cat "$work/proxy.port")" \
	--insecure-plaintext >/dev/null 2>"$work/migrate.err" ||
	{ echo "make-fixtures: migration failed" >&2; cat "$work/migrate.err" >&2; exit 1; }
gw_api "$work/dst.api" '{"cmd":"quit"}' >/dev/null
wait "${pids[-1]}" # the proxy: the stream file is whole
{
	echo "migration_proto=5"
	echo "migration_flags=0"
	echo "migration_nnics=0"
} >>"$work/expected"
cp "$work/expected" "$out/expected"

here=$(git -C "$(dirname "$0")/.." rev-parse HEAD 2>/dev/null || echo unknown)
cat >"$out/README" <<EOF
Golden samples written by godwit $(awk -F= '$1 == "version" {print $2}' "$out/expected")
built from commit ${3:-$here}, with scripts/make-fixtures.sh of commit $here,
on $(date -u +%Y-%m-%dT%H:%M:%SZ): a ${mem_mib} MiB, 1-vCPU test guest ("$cmdline"), a full and
an incremental snapshot in repo/ (key: repo.key), and its plaintext migration in
migration.stream. Never regenerated; see expected.
EOF
du -sh "$out"
