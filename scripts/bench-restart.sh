#!/usr/bin/env bash
# bench-restart.sh — what a restart and the master key rotations cost with each keyring, as
# ratios against component_keyring_file measured in the same run, with the number of KMIP
# requests each one makes (not a test; CI does not run it).
#
# For each keyring a fresh mysqld 9.7 instance with binlog_encryption=ON (the binary log is on)
# gets N tables with ENCRYPTION='Y' (default N=200), then we time
#   1. a restart (shutdown + start + first SELECT of every encrypted table),
#   2. ALTER INSTANCE ROTATE INNODB MASTER KEY (re-encrypts every tablespace key),
#   3. ALTER INSTANCE ROTATE BINLOG MASTER KEY (re-encrypts every binary log's file password),
# and read the keyring's request counter (0 at each start of mysqld: after the restart and the
# SELECTs it is the restart's count; before and after a rotation, the rotation's).
# Keyrings: component_keyring_file (baseline); the plugin keyring_okv.so (early-plugin-load)
# with keyring_okv_cache_keys OFF and ON; component_keyring_okv with cache_keys false and true;
# the four against the local PyKMIP.
#
# A keyring error (its error counter above 0) stops the run: the counts would mean nothing.
#
# Usage: scripts/bench-restart.sh [N [ROUNDS]]   (defaults 200 and 3; medians of the rounds)
# Environment: KEYRING_OKV_MYSQL_ROOT (as for scripts/mysql-real.sh); KEYRING_OKV_PYKMIP_NAME
# (a PyKMIP of the benchmark's own, see scripts/pykmip.sh, when others use the main one);
# KEYRING_OKV_PYKMIP_UNIQUE_NAMES=1: that PyKMIP refuses a second object under a Name in use, as
# key managers that keep names unique do, so that the keys made need no create race wait.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

N="${1:-200}"
ROUNDS="${2:-3}"
BENCH=bench-restart
# shellcheck source=scripts/lib/bench-mysql.sh
source scripts/lib/bench-mysql.sh

cargo build --release -j2 -p component_keyring_okv -p keyring_okv --lib --quiet
bench_setup
bench_install_component
$MYSQL install-plugin target/release/libkeyring_okv.so >/dev/null 2>&1
bench_workload
trap 'rm -f "$SQL_FILE"' EXIT

# KEYRING_OKV_BENCH_KEYRINGS: a subset, e.g. "file plugin component" (the baseline always runs).
read -r -a KEYRINGS <<<"${KEYRING_OKV_BENCH_KEYRINGS:-file plugin plugin-cache component component-cache}"
[[ ${KEYRINGS[0]} == file ]] || KEYRINGS=(file "${KEYRINGS[@]}")
declare -A LABEL=(
    [file]="component_keyring_file"
    [plugin]="keyring_okv.so, cache_keys OFF"
    [plugin-cache]="keyring_okv.so, cache_keys ON"
    [component]="component_keyring_okv, no cache"
    [component-cache]="component_keyring_okv, cache_keys"
)
BINLOG=(--binlog-encryption=ON)
FILE_CNF="{\"path\": \"/srv/mysql/bench-r-file/keys\", \"read_only\": false}"

requests() { bench_counter "$1" "$2" Requests; }

# run KIND: RESULT="restart_ms innodb_ms binlog_ms restart_req innodb_req binlog_req"
run() {
    local kind="$1" name="bench-r-$1" cache=false t0 t1 t2 t3 r1 r2 r3 r4 errors
    [[ "$kind" == *-cache ]] && cache=true
    case "$kind" in
        file)
            bench_fresh "$name" component_keyring_file component_keyring_file.cnf "$FILE_CNF"
            $MYSQL start "$name" "${BINLOG[@]}" >/dev/null 2>&1
            bench_component_active "$name" ;;
        component*)
            bench_fresh "$name" component_keyring_okv component_keyring_okv.cnf \
                "{\"kmip_configuration_directory\": \"$CONF\", \"cache_keys\": $cache}"
            $MYSQL start "$name" "${BINLOG[@]}" >/dev/null 2>&1
            bench_component_active "$name" ;;
        plugin*)
            bench_fresh "$name"
            $MYSQL start "$name" --early-plugin-load=keyring_okv.so "--loose-keyring_okv_conf_dir=$CONF" \
                "--loose-keyring_okv_cache_keys=$([[ $cache == true ]] && echo ON || echo OFF)" \
                "${BINLOG[@]}" >/dev/null 2>&1
            bench_plugin_active "$name" ;;
    esac
    [[ "$($MYSQL sql "$name" "SELECT @@binlog_encryption, @@log_bin")" == $'1\t1' ]] \
        || { say "binlog_encryption or log_bin is off in instance $name"; exit 1; }
    $MYSQL sql "$name" - <"$SQL_FILE" >/dev/null
    t0=$(now)
    $MYSQL restart "$name" >/dev/null 2>&1
    echo "$SELECT_ALL" | $MYSQL sql "$name" - >/dev/null
    t1=$(now)
    r1="$(requests "$kind" "$name")"
    $MYSQL sql "$name" "ALTER INSTANCE ROTATE INNODB MASTER KEY" >/dev/null
    t2=$(now)
    r2="$(requests "$kind" "$name")"
    $MYSQL sql "$name" "ALTER INSTANCE ROTATE BINLOG MASTER KEY" >/dev/null
    t3=$(now)
    r3="$(requests "$kind" "$name")"
    r4="$($MYSQL sql "$name" "SHOW BINARY LOGS" | wc -l)"
    errors="$(bench_counter "$kind" "$name" Errors)"
    [[ "$errors" == - || "$errors" == 0 ]] \
        || { say "$kind: $errors failed KMIP requests, see $($MYSQL log "$name")"; exit 1; }
    $MYSQL stop "$name" >/dev/null 2>&1
    say "$kind: $r4 binary logs at the binlog rotation"
    RESULT="$(ms "$t0" "$t1") $(ms "$t1" "$t2") $(ms "$t2" "$t3") $r1 $(bench_diff "$r1" "$r2") $(bench_diff "$r2" "$r3")"
}

declare -A results=()
for ((round = 0; round < ROUNDS; round++)); do
    read -r -a order <<<"$(bench_order "$round" "${KEYRINGS[@]}")"
    for k in "${order[@]}"; do
        say "round $((round + 1))/$ROUNDS: $k, $N encrypted tables..."
        run "$k"
        say "round $((round + 1))/$ROUNDS: $k: $RESULT"
        results[$k]+="$RESULT;"
    done
done

for k in "${KEYRINGS[@]}"; do
    printf 'rounds %-16s (restart innodb binlog ms, restart innodb binlog requests): %s\n' "$k" "${results[$k]}"
done
# A request count is the same in every round; the median is reported all the same.
req() { if [[ $k == file ]]; then echo -; else bench_median "${results[$k]}" "$1"; fi; }
printf 'medians of %d rounds, %d encrypted tables, binlog_encryption=ON, PyKMIP %s\n' "$ROUNDS" "$N" \
    "$([[ ${KEYRING_OKV_PYKMIP_UNIQUE_NAMES:-0} == 1 ]] && echo "keeping names unique" || echo "as shipped")"
printf '%-44s %11s %11s %11s %9s %9s %9s\n' "keyring" "restart ms" "innodb ms" "binlog ms" "restart" "innodb" "binlog"
printf '%-44s %11s %11s %11s %9s %9s %9s\n' "" "" "" "" "requests" "requests" "requests"
for k in "${KEYRINGS[@]}"; do
    printf '%-44s %11s %11s %11s %9s %9s %9s\n' "${LABEL[$k]}" "$(bench_median "${results[$k]}" 1)" \
        "$(bench_median "${results[$k]}" 2)" "$(bench_median "${results[$k]}" 3)" "$(req 4)" "$(req 5)" "$(req 6)"
done
for k in "${KEYRINGS[@]:1}"; do
    printf '%-44s %11s %11s %11s\n' "ratio ${LABEL[$k]%%,*}${LABEL[$k]#*,} / file" \
        "$(bench_ratio "$(bench_median "${results[$k]}" 1)" "$(bench_median "${results[file]}" 1)")" \
        "$(bench_ratio "$(bench_median "${results[$k]}" 2)" "$(bench_median "${results[file]}" 2)")" \
        "$(bench_ratio "$(bench_median "${results[$k]}" 3)" "$(bench_median "${results[file]}" 3)")"
done
