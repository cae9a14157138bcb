#!/usr/bin/env bash
# Run fuzzers of a -Dfuzz=true build, each for SECONDS from its committed corpus.
# Usage: tests/fuzz/run.sh BUILD_DIR SECONDS [NAME...]   (no NAME: every fuzzer, in turn)
# A crash, a sanitizer report, a leak, a timeout or an out-of-memory fails the run: the
# input is left in $FUZZ_OUT/artifacts (default: a fresh directory under /tmp, kept on
# failure) and the status is non-zero. New inputs go to $FUZZ_OUT/work/NAME, never into
# the committed corpus (tests/fuzz/README.md says how to add one). One line per fuzzer
# gives its executions, coverage (edges and features) and time.
set -uo pipefail
cd "$(dirname "$0")/../.."
if [ $# -lt 2 ]; then
	echo "usage: $0 BUILD_DIR SECONDS [NAME...]" >&2
	exit 2
fi
build=$1 secs=$2
shift 2
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
	for f in "$build"/tests/fuzz/fuzz_*; do
		[ -f "$f" ] && [ -x "$f" ] && names+=("${f##*/fuzz_}")
	done
fi
if [ ${#names[@]} -eq 0 ]; then
	echo "no fuzzers in $build/tests/fuzz: configure it with -Dfuzz=true (clang)" >&2
	exit 1
fi
out=${FUZZ_OUT:-$(mktemp -d /tmp/godwit-fuzz-run.XXXXXX)}
mkdir -p "$out/artifacts"
# Sanitizer reports end the run with a non-zero status; leaks are reported too.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
failed=0
for name in "${names[@]}"; do
	mkdir -p "$out/work/$name"
	log="$out/$name.log"
	start=$SECONDS
	"$build/tests/fuzz/fuzz_$name" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
		-malloc_limit_mb=256 -print_final_stats=1 -artifact_prefix="$out/artifacts/$name-" \
		"$out/work/$name" "tests/fuzz/corpus/$name" > "$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -1)
	printf 'fuzz %-11s %4ds %10s execs  %s%s\n' "$name" $((SECONDS - start)) "${execs:-?}" \
		"${cov:-cov: ?}" "$([ $rc -ne 0 ] && echo "  FAILED (status $rc, log $log)")"
	if [ $rc -ne 0 ]; then
		grep -E 'ERROR|SUMMARY|runtime error|Test unit written' "$log" | head -20 >&2
		failed=1
	fi
done
if [ $failed -ne 0 ]; then
	echo "fuzzing found a problem: inputs in $out/artifacts" >&2
	exit 1
fi
[ -z "${FUZZ_OUT:-}" ] && rm -rf "$out"
exit 0
