#!/usr/bin/env bash
# Runs seawall's loom models: every interleaving of the lock-free code's atomics, with a
# bounded number of preemptions (LOOM_MAX_PREEMPTIONS, default 3).
#
#   bash crates/seawall/scripts/loom.sh            # all models
#   bash crates/seawall/scripts/loom.sh bulkhead   # only the bulkhead's (or rate_limiter, breaker)
#
# The models are unit tests named `loom_tests::*` that exist only under `--cfg loom`
# (src/bulkhead/loom_tests.rs, src/rate_limiter/loom_tests.rs,
# src/circuit_breaker/probes_loom_tests.rs, src/circuit_breaker/hot_loom_tests.rs). They build into their own
# target directory, because `--cfg loom` changes every crate's flags.
set -euo pipefail
cd "$(dirname "$0")/../../.."
case "${1:-all}" in
    all) filters=("loom_tests::") ;;
    bulkhead) filters=("bulkhead::permits::loom_tests::") ;;
    rate_limiter) filters=("rate_limiter::loom_tests::") ;;
    breaker) filters=("circuit_breaker::probes::loom_tests::" "circuit_breaker::hot::loom_tests::") ;;
    *) echo "usage: $0 [all|bulkhead|rate_limiter|breaker]" >&2; exit 2 ;;
esac
export RUSTFLAGS="${RUSTFLAGS:-} --cfg loom"
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-3}"
export CARGO_TARGET_DIR="${LOOM_TARGET_DIR:-${CARGO_TARGET_DIR:-target}/loom}"
exec cargo test -p seawall --release --lib -- "${filters[@]}"
