#!/usr/bin/env bash
# bench-component.sh — what the keyring costs InnoDB, as ratios against component_keyring_file
# measured in the same run on the same machine (not a test; CI does not run it).
#
# For each keyring: a fresh mysqld 9.7 instance loads it from its manifest, then we time
#   1. N x (CREATE TABLE ... ENCRYPTION='Y' + INSERT) in one client session (default N=200),
#   2. a restart (shutdown + start + first SELECT of every encrypted table),
#   3. ALTER INSTANCE ROTATE INNODB MASTER KEY (re-encrypts every tablespace key).
# Keyrings: component_keyring_file (baseline), component_keyring_okv against the local PyKMIP
# with cache_keys off, and with cache_keys on.
#
# Usage: scripts/bench-component.sh [N [ROUNDS]]   (defaults 200 and 3; medians of the rounds)
# Environment: KEYRING_OKV_MYSQL_ROOT (as for scripts/mysql-real.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

N="${1:-200}"
ROUNDS="${2:-3}"
BENCH=bench
# shellcheck source=scripts/lib/bench-mysql.sh
source scripts/lib/bench-mysql.sh

cargo build --release -j2 -p component_keyring_okv --lib --quiet
bench_setup
bench_install_component
bench_workload
trap 'rm -f "$SQL_FILE"' EXIT

# run NAME MANIFEST CNF-FILE-NAME CNF-TEXT -> "create_ms restart_ms rotate_ms"
run() {
    local name="$1" t0 t1 t2 t3
    bench_fresh "$@"
    $MYSQL start "$name" >/dev/null 2>&1
    bench_component_active "$name"
    # One encrypted table first, so that the master key exists before the timing starts.
    $MYSQL sql "$name" "CREATE DATABASE IF NOT EXISTS warm; CREATE TABLE warm.t (a INT) ENCRYPTION='Y'" >/dev/null
    t0=$(now)
    $MYSQL sql "$name" - <"$SQL_FILE" >/dev/null
    t1=$(now)
    $MYSQL restart "$name" >/dev/null 2>&1
    echo "$SELECT_ALL" | $MYSQL sql "$name" - >/dev/null
    t2=$(now)
    $MYSQL sql "$name" "ALTER INSTANCE ROTATE INNODB MASTER KEY" >/dev/null
    t3=$(now)
    $MYSQL stop "$name" >/dev/null 2>&1
    echo "$(ms "$t0" "$t1") $(ms "$t1" "$t2") $(ms "$t2" "$t3")"
}

FILE_CNF="{\"path\": \"/srv/mysql/bench-file/keys\", \"read_only\": false}"
OKV_CNF="{\"kmip_configuration_directory\": \"$CONF\", \"cache_keys\": false}"
CACHE_CNF="{\"kmip_configuration_directory\": \"$CONF\", \"cache_keys\": true}"
declare -A results=()
# Each round runs the three keyrings in a rotated order, so that a busy moment of a shared
# machine does not always fall on the same one; the medians are reported.
for ((round = 0; round < ROUNDS; round++)); do
    read -r -a order <<<"$(bench_order "$round" file okv cache)"
    for k in "${order[@]}"; do
        say "round $((round + 1))/$ROUNDS: $k, $N encrypted tables..."
        case "$k" in
            file) r="$(run bench-file component_keyring_file component_keyring_file.cnf "$FILE_CNF")" ;;
            okv) r="$(run bench-okv component_keyring_okv component_keyring_okv.cnf "$OKV_CNF")" ;;
            cache) r="$(run bench-okv-cache component_keyring_okv component_keyring_okv.cnf "$CACHE_CNF")" ;;
        esac
        results[$k]+="$r;"
    done
done

median() { bench_median "${results[$1]}" "$2"; }
f_create=$(median file 1); f_restart=$(median file 2); f_rotate=$(median file 3)
o_create=$(median okv 1); o_restart=$(median okv 2); o_rotate=$(median okv 3)
c_create=$(median cache 1); c_restart=$(median cache 2); c_rotate=$(median cache 3)

ratio() { bench_ratio "$@"; }
for k in file okv cache; do
    printf 'rounds %-6s (create restart rotate ms): %s\n' "$k" "${results[$k]}"
done
printf 'medians of %d rounds\n' "$ROUNDS"
printf '%-34s %12s %12s %12s\n' "keyring ($N tables)" "create ms" "restart ms" "rotate ms"
printf '%-34s %12s %12s %12s\n' "component_keyring_file" "$f_create" "$f_restart" "$f_rotate"
printf '%-34s %12s %12s %12s\n' "component_keyring_okv, no cache" "$o_create" "$o_restart" "$o_rotate"
printf '%-34s %12s %12s %12s\n' "component_keyring_okv, cache_keys" "$c_create" "$c_restart" "$c_rotate"
printf '%-34s %12s %12s %12s\n' "ratio no cache / file" "$(ratio "$o_create" "$f_create")" "$(ratio "$o_restart" "$f_restart")" "$(ratio "$o_rotate" "$f_rotate")"
printf '%-34s %12s %12s %12s\n' "ratio cache_keys / file" "$(ratio "$c_create" "$f_create")" "$(ratio "$c_restart" "$f_restart")" "$(ratio "$c_rotate" "$f_rotate")"
