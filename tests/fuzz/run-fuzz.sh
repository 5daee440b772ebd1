#!/usr/bin/env bash
# Builds the ClientHello fuzz target with clang and runs it for a bounded time.
#
#   tests/fuzz/run-fuzz.sh [SECONDS] [extra libFuzzer flags...]     (SECONDS defaults to 60)
#
# The fuzzer works on a temporary copy of tests/fuzz/corpus/client_hello, so a run never writes
# into the repository; a crashing input is kept in BUILD/fuzz-artifacts/ and its path printed.
# Prints the number of executions, and exits non-zero if the target crashed or broke an
# invariant.
# The build directory is build-fuzz at the top of the tree unless FUZZ_BUILD_DIR says otherwise.
set -euo pipefail

seconds=${1:-60}
[ $# -gt 0 ] && shift
case $seconds in '' | *[!0-9]*) echo "usage: $0 [SECONDS] [libFuzzer flags...]" >&2; exit 2 ;; esac

root=$(cd "$(dirname "$0")/../.." && pwd)
build=${FUZZ_BUILD_DIR:-$root/build-fuzz}
target=$build/tests/fuzz/client_hello_fuzz

if [ ! -f "$build/build.ninja" ]; then
    CXX=clang++ meson setup "$build" "$root" -Dfuzz=true >/dev/null
fi
# Quiet when it builds; the compiler's messages when it does not, so a broken target is a
# readable failure rather than a step that ends in seconds with no word.
if ! out=$(ninja -C "$build" tests/fuzz/client_hello_fuzz 2>&1); then
    printf '%s\n' "$out" | tail -n 60 >&2
    echo "client_hello_fuzz: FAILED to build" >&2
    exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/sniroute-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp -R "$root/tests/fuzz/corpus/client_hello" "$work/corpus"
mkdir "$work/artifacts"

echo "fuzzing client_hello_fuzz for ${seconds}s on $(ls "$work/corpus" | wc -l) seeds"
rc=0
# Leak checking stays on (the parser must not leak); UBSan findings abort like crashes.
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1} \
    "$target" -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="$work/artifacts/" "$@" \
    "$work/corpus" >"$work/log" 2>&1 || rc=$?

execs=$(awk '/stat::number_of_executed_units:/ {print $2}' "$work/log" | tail -n 1)
if [ -z "$execs" ]; then  # a crash skips the final stats; the last status line has the count
    execs=$(grep -oE '^#[0-9]+' "$work/log" | tail -n 1 | tr -d '#')
fi
if [ "$rc" -ne 0 ]; then
    echo "client_hello_fuzz: ${execs:-0} executions before the failure"
    mkdir -p "$build/fuzz-artifacts"
    cp "$work"/artifacts/* "$build/fuzz-artifacts/" 2>/dev/null || true
    grep -E 'invariant broken|ERROR: |SUMMARY: |Test unit written' "$work/log" |
        sed "s|$work/artifacts/|$build/fuzz-artifacts/|g" >&2 || true
    tail -n 30 "$work/log" >&2
    echo "client_hello_fuzz: FAILED (exit $rc); reproduce with: $target $build/fuzz-artifacts/<file>" >&2
    exit "$rc"
fi
echo "client_hello_fuzz: OK, ${execs:-0} executions in ${seconds}s, corpus grew to $(ls "$work/corpus" | wc -l) inputs"
