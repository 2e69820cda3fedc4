#!/usr/bin/env bash
# Instructions per call of probe rows, for the working tree and for other git revisions, counted
# by callgrind: repeatable on a loaded machine, where wall-clock benchmarks are not.
#
#   bash benches/scripts/compare-instructions.sh [REV...]
#
# Each REV (for example `main`) is checked out into a temporary detached worktree and its
# `probe` binary built there, in a target directory of its own (COMPARE_TARGET_DIR, default
# `<target>-compare`, seeded once from `<target>/release` so registry dependencies are not
# rebuilt): two trees of the same workspace in one target directory get the same artifact
# names, and cargo takes the other tree's artifact for fresh when its sources are older. For the
# same reason, do not share CARGO_TARGET_DIR between worktrees. The working tree is measured as
# `HEAD+worktree`. A row's count is the difference
# between runs of 2N and N calls divided by N, so start-up and warm-up cancel out (as
# `report --callgrind` does). Rows: ROWS below, "GROUP CONTENDER PARAM" per line; a row a
# revision does not have prints `-`.
set -euo pipefail

ROWS=${ROWS:-"circuit_breaker/closed baseline count-100
circuit_breaker/closed fetch-add count-100
circuit_breaker/closed seawall count-100
circuit_breaker/closed seawall-tower count-100
circuit_breaker/closed recloser-async count-100
circuit_breaker/closed recloser-sync count-100
circuit_breaker/slow_calls seawall count-100
circuit_breaker/slow_calls seawall-coarse-clock count-100"}
CALLS=${CALLS:-100000}

root=$(git rev-parse --show-toplevel)
target=${CARGO_TARGET_DIR:-$root/target}
revs_target=${COMPARE_TARGET_DIR:-$target-compare}
if [[ $# -gt 0 && ! -d "$revs_target/release" && -d "$target/release" ]]; then
    mkdir -p "$revs_target"
    cp -a "$target/release" "$revs_target/"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

build() { # build DIR TARGET OUT: the probe of the tree at DIR, copied to OUT
    (cd "$1" && CARGO_TARGET_DIR=$2 cargo build --quiet -p benches --profile bench --bin probe)
    cp "$2/release/probe" "$3"
}

count() { # count PROBE CALLS GROUP CONTENDER PARAM: total instructions of one run (none
    # if the probe has no such row)
    local out
    out=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null "$1" "$3" "$4" "$5" "$2" 2>&1) ||
        return 0
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p' <<<"$out"
}

names=("HEAD+worktree")
build "$root" "$target" "$work/probe-0"
i=1
for rev in "$@"; do
    tree="$work/tree-$i"
    git -C "$root" worktree add --quiet --detach "$tree" "$rev"
    build "$tree" "$revs_target" "$work/probe-$i"
    git -C "$root" worktree remove --force "$tree"
    names+=("$rev")
    i=$((i + 1))
done

printf '%-28s %-22s' group contender
printf ' %14s' "${names[@]}"
printf '\n'
while read -r group contender param; do
    printf '%-28s %-22s' "$group" "$contender"
    for ((j = 0; j < ${#names[@]}; j++)); do
        low=$(count "$work/probe-$j" "$CALLS" "$group" "$contender" "$param")
        high=$(count "$work/probe-$j" "$((2 * CALLS))" "$group" "$contender" "$param")
        if [[ -n "$low" && -n "$high" ]]; then
            printf ' %14s' "$(((high - low) / CALLS))"
        else
            printf ' %14s' -
        fi
    done
    printf '\n'
done <<<"$ROWS"
