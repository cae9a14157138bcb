#!/usr/bin/env bash
# Install what godwit needs to build and test on Debian 12, then configure and build.
# Usage: scripts/setup.sh [BUILD_DIR]              gcc build (default build/)
#        scripts/setup.sh --sanitize BUILD_DIR     clang with ASan and UBSan, and the
#                                                  libFuzzer harnesses (tests/fuzz)
# Run as root, or with sudo.
set -euo pipefail
cd "$(dirname "$0")/.."
sanitize=false
if [ "${1:-}" = "--sanitize" ]; then
	sanitize=true
	shift
fi
build=${1:-build}

packages=(
	gcc meson ninja-build pkg-config
	libzstd-dev librsync-dev libssl-dev libcurl4-openssl-dev libcriterion-dev libseccomp-dev
	e2fsprogs cpio
	# two-host migration tests: network namespaces; throwaway test certificates
	iproute2 openssl
	# S3: the SigV4 signer is checked against botocore; fault tests run a python3 server
	python3 python3-botocore
	# the lean Linux test guest (tests/guest/linux/build.sh)
	linux-source-6.1 bc flex bison libelf-dev
)
if $sanitize; then
	# clang, and compiler-rt: the ASan, UBSan and libFuzzer runtimes; llvm for
	# llvm-symbolizer, so that sanitizer reports name files and lines
	packages+=(clang libclang-rt-14-dev llvm)
fi
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [ ! -f "$build/build.ninja" ]; then
	if $sanitize; then
		CC=clang meson setup "$build" --buildtype=debugoptimized \
			-Db_sanitize=address,undefined -Db_lundef=false -Dfuzz=true
	else
		meson setup "$build" --buildtype=debugoptimized
	fi
fi
ninja -C "$build"
