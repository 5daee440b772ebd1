#!/usr/bin/env bash
# Builds the fuzz targets with clang and runs each of them in turn for a bounded time.
#
#   tests/fuzz/run-fuzz.sh [SECONDS] [extra libFuzzer flags...]     (SECONDS defaults to 60)
#
# SECONDS is the total: it is split evenly across the targets, each getting at least one second.
# The targets are the corpus folders: tests/fuzz/corpus/NAME is the seed corpus of the meson target
# NAME_fuzz (tests/fuzz/meson.build), so a new target runs here once its corpus is committed.
# Each target works on a temporary copy of its corpus, tests/fuzz/corpus/NAME, so a run never
# writes into the repository; a crashing input is kept in BUILD/fuzz-artifacts/ and its path
# printed. Prints the number of executions per target, stops at the first target that crashed
# or broke an invariant and exits non-zero; the last line says OK or FAILED.
# The build directory is build-fuzz at the top of the tree unless FUZZ_BUILD_DIR says otherwise.
set -euo pipefail

seconds=${1:-60}
[ $# -gt 0 ] && shift
case $seconds in '' | *[!0-9]*) echo "usage: $0 [SECONDS] [libFuzzer flags...]" >&2; exit 2 ;; esac

root=$(cd "$(dirname "$0")/../.." && pwd)
build=${FUZZ_BUILD_DIR:-$root/build-fuzz}
# target name and corpus directory under tests/fuzz/corpus
targets=()
for dir in "$root"/tests/fuzz/corpus/*/; do
    corpus=$(basename "$dir")
    targets+=("${corpus}_fuzz:$corpus")
done
[ "${#targets[@]}" -gt 0 ] || { echo "no fuzz corpus under tests/fuzz/corpus" >&2; exit 1; }
each=$((seconds / ${#targets[@]}))
[ "$each" -ge 1 ] || each=1

if [ ! -f "$build/build.ninja" ]; then
    CXX=clang++ meson setup "$build" "$root" -Dfuzz=true >/dev/null
fi
# Quiet when they build; the compiler's messages when they do not, so a broken target is a
# readable failure rather than a step that ends in seconds with no word.
ninja_targets=()
for t in "${targets[@]}"; do ninja_targets+=("tests/fuzz/${t%%:*}"); done
if ! out=$(ninja -C "$build" "${ninja_targets[@]}" 2>&1); then
    printf '%s\n' "$out" | tail -n 60 >&2
    echo "fuzz targets: FAILED to build" >&2
    exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/sniroute-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT

run_target() {  # NAME CORPUS SECONDS [libFuzzer flags...]
    local name=$1 corpus=$2 secs=$3
    shift 3
    local target=$build/tests/fuzz/$name dir=$work/$name
    mkdir "$dir" "$dir/artifacts"
    cp -R "$root/tests/fuzz/corpus/$corpus" "$dir/corpus"

    echo "fuzzing $name for ${secs}s on $(ls "$dir/corpus" | wc -l) seeds"
    local rc=0
    # Leak checking stays on (the parsers must not leak); UBSan findings abort like crashes.
    ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1} \
        "$target" -max_total_time="$secs" -print_final_stats=1 -artifact_prefix="$dir/artifacts/" "$@" \
        "$dir/corpus" >"$dir/log" 2>&1 || rc=$?

    local execs
    execs=$(awk '/stat::number_of_executed_units:/ {print $2}' "$dir/log" | tail -n 1)
    if [ -z "$execs" ]; then  # a crash skips the final stats; the last status line has the count
        execs=$(grep -oE '^#[0-9]+' "$dir/log" | tail -n 1 | tr -d '#')
    fi
    if [ "$rc" -ne 0 ]; then
        echo "$name: ${execs:-0} executions before the failure"
        mkdir -p "$build/fuzz-artifacts"
        cp "$dir"/artifacts/* "$build/fuzz-artifacts/" 2>/dev/null || true
        grep -E 'invariant broken|ERROR: |SUMMARY: |Test unit written' "$dir/log" |
            sed "s|$dir/artifacts/|$build/fuzz-artifacts/|g" >&2 || true
        tail -n 30 "$dir/log" >&2
        echo "$name: FAILED (exit $rc); reproduce with: $target $build/fuzz-artifacts/<file>" >&2
        return "$rc"
    fi
    echo "$name: OK, ${execs:-0} executions in ${secs}s, corpus grew to $(ls "$dir/corpus" | wc -l) inputs"
}

for t in "${targets[@]}"; do
    rc=0
    run_target "${t%%:*}" "${t#*:}" "$each" "$@" || rc=$?
    [ "$rc" -eq 0 ] || exit "$rc"
done
