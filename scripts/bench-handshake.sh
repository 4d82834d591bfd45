#!/usr/bin/env bash
# Mutual-TLS handshake time against the PyKMIP lab server for two source trees (for instance
# before and after a change of crypto provider), measured in the same run: each tree's
# `examples/bench_handshake.rs` (release) runs in turns, ROUNDS handshakes a run, RUNS runs each.
#
#   bash scripts/bench-handshake.sh BASELINE_TREE CANDIDATE_TREE [RUNS] [ROUNDS]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
base=$1 cand=$2 runs=${3:-5} rounds=${4:-50}
conf=$(bash scripts/pykmip.sh confdir)
bash scripts/pykmip.sh start >/dev/null 2>&1 || true
for tree in "$base" "$cand"; do
    cp examples/bench_handshake.rs "$tree/examples/bench_handshake.rs" 2>/dev/null || true
    (cd "$tree" && cargo build -q --release -j2 --example bench_handshake)
done
for ((i = 1; i <= runs; i++)); do
    echo "run $i baseline:  $("$base/target/release/examples/bench_handshake" "$rounds" "$conf")"
    echo "run $i candidate: $("$cand/target/release/examples/bench_handshake" "$rounds" "$conf")"
done
