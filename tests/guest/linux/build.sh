#!/bin/bash
# Builds the Linux test guest: OUTDIR/vmlinux (ELF with a PVH entry note),
# OUTDIR/bzImage and OUTDIR/initramfs.cpio (uncompressed newc, /init from init/).
#
# usage: build.sh OUTDIR
#
# Cached: the kernel is rebuilt only when kernel.config, patches/, the
# linux-source-6.1 package version, the compiler or this script change; the
# initramfs only when init/, the compiler or this script change. Safe to run
# concurrently (flock on OUTDIR/.lock); outputs are renamed into place and the
# stamp that vouches for them is written last, so a killed build never leaves
# outputs that a later run takes as whole. Prints the three paths on stdout.
# Environment: JOBS (make -j, default nproc), KEEP_TREE=1 keeps the build tree.
set -euo pipefail

die() {
	echo "build.sh: $*" >&2
	exit 1
}

[ $# -eq 1 ] || die "usage: build.sh OUTDIR"
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$1"
out=$(cd "$1" && pwd)
src_tar=/usr/src/linux-source-6.1.tar.xz
jobs=${JOBS:-$(nproc)}

# Packages, installed only when something is missing (CI runs this as root).
need_pkgs() {
	[ -f "$src_tar" ] || return 0
	[ -f /usr/include/libelf.h ] || return 0
	for tool in bc flex bison cpio gcc make perl readelf sha256sum flock; do
		command -v "$tool" >/dev/null || return 0
	done
	return 1
}
if need_pkgs; then
	echo "build.sh: installing build dependencies" >&2
	pkgs="linux-source-6.1 bc flex bison libelf-dev cpio gcc make"
	# shellcheck disable=SC2086 # a word list
	apt-get install -y $pkgs >&2 || { apt-get update >&2 && apt-get install -y $pkgs >&2; }
fi

exec 9>"$out/.lock"
flock 9
# Leftovers of a build that was killed; no one else can be using them while
# we hold the lock. (.trash.* may still be being deleted by a finished run.)
rm -rf "$out"/.work.* "$out"/.*.tmp
rm -rf "$out"/.trash.* 2>/dev/null || true

src_version=$(dpkg-query -W -f='${Version}' linux-source-6.1 2>/dev/null || echo unknown)
cc_version=$(gcc --version | head -n 1)
kernel_key=$(
	{
		echo "linux-source-6.1 $src_version"
		echo "$cc_version"
		sha256sum "$here/build.sh" "$here/kernel.config"
		for p in "$here"/patches/*.patch; do
			[ -e "$p" ] && sha256sum "$p"
		done
	} | sed "s|$here/||" | sha256sum | cut -d' ' -f1
)
initramfs_key=$(
	{
		echo "$cc_version"
		sha256sum "$here/build.sh" "$here"/init/*.c "$here"/init/*.h
	} | sed "s|$here/||" | sha256sum | cut -d' ' -f1
)

stamp_ok() { # stamp-file key output...
	local stamp=$1 key=$2
	shift 2
	[ -f "$stamp" ] && [ "$(cat "$stamp")" = "$key" ] || return 1
	for f in "$@"; do
		[ -s "$f" ] || return 1
	done
}

# The build tree is moved aside and the lock released before deleting it
# (minutes on a busy machine): the outputs are final by then.
work=""
cleanup() {
	local trash

	if [ -n "$work" ] && [ -z "${KEEP_TREE:-}" ]; then
		trash="$out/.trash.$$"
		mv "$work" "$trash" 2>/dev/null || trash=$work
		exec 9>&-
		rm -rf "$trash"
	fi
}
trap cleanup EXIT

# Checks that every CONFIG_ line of the fragment holds in .config: Kconfig drops
# a symbol whose dependencies are unmet without an error.
config_check() { # fragment dotconfig
	awk '
		FNR == NR {
			if ($0 ~ /^CONFIG_[A-Za-z0-9_]+=/) {
				split($0, kv, "="); want[kv[1]] = substr($0, length(kv[1]) + 2)
			} else if ($0 ~ /^# CONFIG_[A-Za-z0-9_]+ is not set$/) {
				want[$2] = "n"
			}
			next
		}
		/^CONFIG_[A-Za-z0-9_]+=/ {
			split($0, kv, "="); have[kv[1]] = substr($0, length(kv[1]) + 2)
		}
		END {
			bad = 0
			for (k in want) {
				h = (k in have) ? have[k] : "n"
				if (h != want[k]) {
					printf "build.sh: %s: wanted %s, .config has %s\n", k, want[k], h > "/dev/stderr"
					bad = 1
				}
			}
			exit bad
		}' "$1" "$2"
}

build_kernel() {
	local tree=$work/linux log=$out/build.log

	echo "build.sh: building the kernel in $tree (log: $log)" >&2
	mkdir -p "$tree"
	tar -xf "$src_tar" -C "$tree" --strip-components=1
	for p in "$here"/patches/*.patch; do
		patch -d "$tree" -p1 --forward --batch --quiet <"$p" ||
			die "patch $(basename "$p") does not apply"
	done
	(
		cd "$tree"
		make tinyconfig
		scripts/kconfig/merge_config.sh -m .config "$here/kernel.config"
		make olddefconfig
	) >"$log" 2>&1 || die "configuring failed, see $log"
	config_check "$here/kernel.config" "$tree/.config" ||
		die "kernel.config is not satisfiable as written (see above)"
	make -C "$tree" -j"$jobs" vmlinux bzImage >>"$log" 2>&1 || {
		tail -n 30 "$log" >&2
		die "kernel build failed, see $log"
	}
	# The VMM boots vmlinux through XEN_ELFNOTE_PHYS32_ENTRY (type 18).
	readelf -n "$tree/vmlinux" | grep -Eq 'Xen.*(0x00000012|PHYS32_ENTRY)' ||
		die "vmlinux has no PVH entry note"

	cp "$tree/vmlinux" "$out/.vmlinux.tmp"
	cp "$tree/arch/x86/boot/bzImage" "$out/.bzImage.tmp"
	cp "$tree/.config" "$out/.config.tmp"
	sync "$out/.vmlinux.tmp" "$out/.bzImage.tmp" "$out/.config.tmp"
	mv -f "$out/.vmlinux.tmp" "$out/vmlinux"
	mv -f "$out/.bzImage.tmp" "$out/bzImage"
	mv -f "$out/.config.tmp" "$out/kernel.config.full"
}

# Writes one newc entry to stdout: name mode(octal) [file | rdev-major rdev-minor].
# Written here rather than with cpio(1), which can only archive a real
# /dev/console node, and so needs root to make one.
cpio_ino=300000
cpio_entry() {
	local name=$1 mode=$2 size=0 major=0 minor=0 namesize pad
	if [ $# -eq 3 ]; then
		size=$(stat -c %s "$3")
	elif [ $# -eq 4 ]; then
		major=$3 minor=$4
	fi
	namesize=$((${#name} + 1))
	cpio_ino=$((cpio_ino + 1))
	printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%s\0' \
		"$cpio_ino" "$((8#$mode))" 0 0 1 0 "$size" 0 0 "$major" "$minor" "$namesize" 0 "$name"
	pad=$(((4 - (110 + namesize) % 4) % 4))
	head -c "$pad" /dev/zero
	if [ "$size" -gt 0 ]; then
		cat "$3"
		head -c "$(((4 - size % 4) % 4))" /dev/zero
	fi
}

build_initramfs() {
	local dir=$work/initramfs

	mkdir -p "$dir"
	gcc -std=c11 -Wall -Wextra -Werror -Wmissing-prototypes -O2 -static -nostdlib -ffreestanding \
		-fno-builtin -fno-tree-loop-distribute-patterns -fno-stack-protector \
		-fno-pie -no-pie -fno-asynchronous-unwind-tables -Wl,--build-id=none \
		-o "$dir/init" "$here"/init/*.c
	{
		cpio_entry dev 040755
		cpio_entry dev/console 020600 5 1
		cpio_entry proc 040555
		cpio_entry sys 040555
		cpio_entry mnt 040755
		cpio_entry init 0100755 "$dir/init"
		cpio_entry TRAILER!!! 0
	} >"$out/.initramfs.cpio.tmp"
	sync "$out/.initramfs.cpio.tmp"
	mv -f "$out/.initramfs.cpio.tmp" "$out/initramfs.cpio"
}

kernel_ok=1
initramfs_ok=1
stamp_ok "$out/.stamp-kernel" "$kernel_key" "$out/vmlinux" "$out/bzImage" || kernel_ok=0
stamp_ok "$out/.stamp-initramfs" "$initramfs_key" "$out/initramfs.cpio" || initramfs_ok=0

if [ $kernel_ok = 0 ] || [ $initramfs_ok = 0 ]; then
	work=$(mktemp -d "$out/.work.XXXXXX")
fi
if [ $kernel_ok = 0 ]; then
	rm -f "$out/.stamp-kernel"
	build_kernel
	echo "$kernel_key" >"$out/.stamp-kernel.tmp"
	mv -f "$out/.stamp-kernel.tmp" "$out/.stamp-kernel"
	sync "$out"
fi
if [ $initramfs_ok = 0 ]; then
	rm -f "$out/.stamp-initramfs"
	build_initramfs
	echo "$initramfs_key" >"$out/.stamp-initramfs.tmp"
	mv -f "$out/.stamp-initramfs.tmp" "$out/.stamp-initramfs"
	sync "$out"
fi

echo "$out/vmlinux"
echo "$out/bzImage"
echo "$out/initramfs.cpio"
