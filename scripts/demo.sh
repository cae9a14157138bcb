#!/usr/bin/env bash
# The demo on local defaults: install and build, then boot the test guest and show it running.
# Usage: scripts/demo.sh   (as root on Debian 12 with /dev/kvm)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build >/dev/null

godwit=build/cli/godwit
guest=build/tests/guest/godwit-test-guest.elf
work=$(mktemp -d /tmp/godwit-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT

echo "== boot the test guest: 2 vCPUs, 256 MiB, a 16 MiB working set rewritten at 32 MiB/s"
truncate -s 64M "$work/disk.img"
"$godwit" run --kernel "$guest" --mem 256M --cpus 2 --disk "$work/disk.img" \
	--api "$work/api.sock" \
	--cmdline "mb=16 rate=32 disk=w:0:128:42 disk=v:0:128:42 poweroff=30"
echo "== the guest powered itself off after 30 heartbeats; godwit exited $?"
