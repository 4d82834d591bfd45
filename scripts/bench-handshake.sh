#!/usr/bin/env bash
# Mutual-TLS handshake time against the PyKMIP lab server for two source trees (for instance
# before and after a change of crypto provider), measured in the same run: each tree's
# `examples/bench_handshake.rs` (release) runs in turns, ROUNDS handshakes a run, RUNS runs each.
#
#   bash scripts/bench-handshake.sh BASELINE_TREE CANDIDATE_TREE [RUNS] [ROUNDS]
#   bash scripts/bench-handshake.sh --fips [RUNS] [ROUNDS]   # this tree: default build vs FIPS build
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
conf=$(bash scripts/pykmip.sh confdir)
bash scripts/pykmip.sh start >/dev/null 2>&1 || true
if [[ ${1:-} == --fips ]]; then
    runs=${2:-5} rounds=${3:-50}
    target=${CARGO_TARGET_DIR:-target}
    cargo build -q --release -j2 --locked --example bench_handshake
    CARGO_TARGET_DIR=$target/fips cargo build -q --release -j2 --locked --features fips --example bench_handshake
    base_bin=$target/release/examples/bench_handshake
    cand_bin=$target/fips/release/examples/bench_handshake
else
    base=$1 cand=$2 runs=${3:-5} rounds=${4:-50}
    for tree in "$base" "$cand"; do
        cp examples/bench_handshake.rs "$tree/examples/bench_handshake.rs" 2>/dev/null || true
        (cd "$tree" && cargo build -q --release -j2 --example bench_handshake)
    done
    base_bin=$base/target/release/examples/bench_handshake
    cand_bin=$cand/target/release/examples/bench_handshake
fi
for ((i = 1; i <= runs; i++)); do
    echo "run $i baseline:  $("$base_bin" "$rounds" "$conf")"
    echo "run $i candidate: $("$cand_bin" "$rounds" "$conf")"
done
