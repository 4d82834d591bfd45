#!/usr/bin/env bash
# bench-sysbench.sh — what each keyring costs an OLTP workload: sysbench's oltp_read_write
# (Debian's sysbench 1.0.20; 2 threads, 4 tables of 20,000 rows) for SECONDS per run, as
# transactions per second and ratios against the file keyring of the same product measured
# in the same run, with the number of KMIP requests each keyring made during the run (not a
# test; CI does not run it). Every library at its defaults.
#
#   MySQL 9.7: every sbtest table encrypted (the schema is created with DEFAULT ENCRYPTION='Y'),
#     binlog_encryption=ON (the binary log is on), and ALTER INSTANCE ROTATE INNODB MASTER KEY
#     every 5 s during the run (from a background loop, at 5 s, 10 s, ... after the start; a
#     rotation that takes longer skips the ticks it overran; the rotations done are counted).
#     Keyrings: component_keyring_file (baseline); the plugin keyring_okv.so (early-plugin-load,
#     keyring_okv_conf_dir); component_keyring_okv; the last two against the local PyKMIP.
#   MariaDB (10.11 on the host by default): file_key_management (baseline) and
#     kmip_key_management against the local PyKMIP, with the encryption options of
#     mariadb-bench.sh (innodb_encrypt_tables=ON, encrypt_binlog=ON, ...). No rotation: a
#     MariaDB key rotates as a new version of the key on the key manager, and re-encryption is
#     the server's background threads' work, which these options leave off.
#
# mysqld loads the keyrings from a plugin directory of the benchmark's own (--plugin-dir: this
# build, whatever else is installed into the chroot meanwhile). MariaDB instances get this
# build's plugin from mariadb-real.sh.
# Each keyring gets a fresh instance whose sbtest tables are made once (sysbench prepare); each
# round then starts it, reads every table once (so that no run starts with a cold buffer
# pool), runs sysbench and stops it. The rounds rotate the order of the keyrings of each
# product, so that a busy moment of a shared machine does not always fall on the same one;
# the medians are reported. The request count is the keyring's counter after the run minus
# the one before it (the start's requests are not in it). A keyring error (its error
# counter above 0) or a failed rotation stops the run: the numbers would mean nothing.
#
# Usage: scripts/bench-sysbench.sh [SECONDS [ROUNDS]]   (defaults 30 and 3)
# Needs: root, sysbench (installed with apt-get from the machine's configured mirrors if
# missing). Environment: KEYRING_OKV_MYSQL_ROOT (as for scripts/mysql-real.sh);
# KEYRING_OKV_MARIADB_TARGET (as for scripts/mariadb-real.sh); KEYRING_OKV_PYKMIP_NAME (a
# PyKMIP of the benchmark's own, see scripts/pykmip.sh, when others use the main one).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SECS="${1:-30}"
ROUNDS="${2:-3}"
[[ "$SECS" =~ ^[1-9][0-9]*$ && "$ROUNDS" =~ ^[1-9][0-9]*$ ]] \
    || { echo "usage: $0 [SECONDS [ROUNDS]]" >&2; exit 2; }
BENCH=bench-sysbench
THREADS=2
TABLES=4
ROWS=20000
ROTATE_EVERY=5
# shellcheck source=scripts/lib/bench-mysql.sh
source scripts/lib/bench-mysql.sh
MARIADB="bash scripts/mariadb-real.sh"
CLI=target/release/keyring-okv

if ! command -v sysbench >/dev/null 2>&1; then
    say "installing Debian's sysbench..."
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sysbench >/dev/null
fi

cargo build --release -j2 -p component_keyring_okv -p keyring_okv -p kmip_key_management --lib --quiet
cargo build --release -j2 -p keyring_okv_core --bin keyring-okv --quiet
bench_setup
# This build's keyrings in a plugin directory of the benchmark's own (the chroot's may be
# replaced by other work while the benchmark runs).
PRIVATE_PLUGIN_DIR=/srv/bench-sysbench-plugins
bench_private_plugin_dir "$PRIVATE_PLUGIN_DIR"
MYSQLD_ARGS=("--plugin-dir=$PRIVATE_PLUGIN_DIR" --binlog-encryption=ON)
$MARIADB install >/dev/null

MYSQL_KEYRINGS=(file plugin component)
MARIADB_KEYRINGS=(mariadb-file mariadb-kmip)
KEYRINGS=("${MYSQL_KEYRINGS[@]}" "${MARIADB_KEYRINGS[@]}")
declare -A LABEL=(
    [file]="component_keyring_file"
    [plugin]="keyring_okv.so"
    [component]="component_keyring_okv"
    [mariadb-file]="file_key_management"
    [mariadb-kmip]="kmip_key_management"
)
declare -A BASELINE=([file]=file [plugin]=file [component]=file
                     [mariadb-file]=mariadb-file [mariadb-kmip]=mariadb-file)
name_of() { echo "bench-s-$1"; }
is_mariadb() { [[ "$1" == mariadb-* ]]; }

TMP="$(mktemp -d)"
ROTATOR=""
cleanup() {
    [[ -n "$ROTATOR" ]] && kill "$ROTATOR" 2>/dev/null
    local k
    for k in "${MYSQL_KEYRINGS[@]}"; do $MYSQL stop "$(name_of "$k")" >/dev/null 2>&1 || true; done
    for k in "${MARIADB_KEYRINGS[@]}"; do $MARIADB stop "$(name_of "$k")" >/dev/null 2>&1 || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT

# sql KIND SQL: SQL on the keyring's instance.
sql() { if is_mariadb "$1"; then $MARIADB sql "$(name_of "$1")" "$2"; else $MYSQL sql "$(name_of "$1")" "$2"; fi; }

# counter KIND COUNTER: the keyring's counter (Requests or Errors) since its server started,
# or "-" for the file keyrings.
counter() {
    case "$1" in
        mariadb-file) echo - ;;
        mariadb-kmip) sql "$1" "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME='KMIP_KEY_MANAGEMENT_${2^^}'" ;;
        *) bench_counter "$1" "$(name_of "$1")" "$2" ;;
    esac
}

# no_errors KIND: stops the run if the keyring counted a failed request.
no_errors() {
    local errors log
    errors="$(counter "$1" Errors)"
    if [[ "$errors" != - && "$errors" != 0 ]]; then
        if is_mariadb "$1"; then log="$($MARIADB log "$(name_of "$1")")"; else log="$($MYSQL log "$(name_of "$1")")"; fi
        say "${LABEL[$1]}: $errors failed KMIP requests, see $log"
        exit 1
    fi
}

# sysbench_on KIND COMMAND [ARGS...]: sysbench oltp_read_write COMMAND against the keyring's
# server, over its unix socket, as root (no password: MySQL's root of --initialize-insecure
# over caching_sha2_password, MariaDB's root through unix_socket); output in $TMP/sysbench.out.
sysbench_on() {
    local kind="$1" cmd="$2" socket
    shift 2
    if is_mariadb "$kind"; then
        socket="$($MARIADB path "$(name_of "$kind")")/mariadbd.sock"
    else
        socket="$($MYSQL path "$(name_of "$kind")")/mysqld.sock"
    fi
    if ! sysbench oltp_read_write --threads="$THREADS" --tables="$TABLES" --table-size="$ROWS" \
        --mysql-socket="$socket" --mysql-user=root --mysql-password= --mysql-db=sbtest \
        "$@" "$cmd" >"$TMP/sysbench.out" 2>&1; then
        tail -n 20 "$TMP/sysbench.out" >&2
        say "${LABEL[$kind]}: sysbench $cmd failed"
        exit 1
    fi
}

# start KIND [ARGS...]: starts the keyring's server (with ARGS, stored for the later starts;
# without, the stored ones) and checks that the keyring and the encryption are on.
start() {
    local kind="$1" name
    name="$(name_of "$1")"
    shift
    case "$kind" in
        mariadb-*)
            $MARIADB start "$name" "$@" >/dev/null 2>&1 \
                || { say "$name did not start, see $($MARIADB log "$name")"; exit 1; }
            [[ "$(sql "$kind" "SELECT @@log_bin, @@encrypt_binlog, @@innodb_encrypt_tables")" == $'1\t1\tON' ]] \
                || { say "log_bin, encrypt_binlog or innodb_encrypt_tables is off in $name"; exit 1; } ;;
        *)
            $MYSQL start "$name" "$@" >/dev/null 2>&1 \
                || { say "$name did not start, see $($MYSQL log "$name")"; exit 1; }
            if [[ "$kind" == plugin ]]; then bench_plugin_active "$name"; else bench_component_active "$name"; fi
            [[ "$(sql "$kind" "SELECT @@binlog_encryption, @@log_bin, @@plugin_dir")" == $'1\t1\t'"$PRIVATE_PLUGIN_DIR/" ]] \
                || { say "binlog_encryption or log_bin is off in $name, or another plugin_dir"; exit 1; } ;;
    esac
}

stop() { if is_mariadb "$1"; then $MARIADB stop "$(name_of "$1")" >/dev/null 2>&1; else $MYSQL stop "$(name_of "$1")" >/dev/null 2>&1; fi; }

# The MariaDB options of scripts/mariadb-bench.sh.
MARIADB_COMMON=(--innodb-encrypt-tables=ON --innodb-encrypt-log=ON --encrypt-binlog=ON
                --encrypt-tmp-files=ON --aria-encrypt-tables=ON --innodb-encryption-threads=0)

# prepare KIND: a fresh instance with the keyring at its defaults (its options stored for the
# later starts) and the sbtest tables, every one encrypted; left stopped.
prepare() {
    local kind="$1" name encrypted dir ns args
    name="$(name_of "$1")"
    case "$kind" in
        file)
            bench_fresh "$name" component_keyring_file component_keyring_file.cnf \
                "{\"path\": \"/srv/mysql/$name/keys\", \"read_only\": false}"
            args=("${MYSQLD_ARGS[@]}") ;;
        component)
            bench_fresh "$name" component_keyring_okv component_keyring_okv.cnf \
                "{\"kmip_configuration_directory\": \"$CONF\"}"
            args=("${MYSQLD_ARGS[@]}") ;;
        plugin)
            bench_fresh "$name"
            args=(--early-plugin-load=keyring_okv.so "--loose-keyring_okv_conf_dir=$CONF" "${MYSQLD_ARGS[@]}") ;;
        mariadb-file)
            $MARIADB reset "$name" >/dev/null 2>&1 || true
            dir="$($MARIADB path "$name")"
            mkdir -p "$dir"
            echo "1;$(openssl rand -hex 32)" >"$dir/keys.txt"
            args=(--plugin-load-add=file_key_management --file-key-management=FORCE
                  "--file-key-management-filename=$($MARIADB inner "$name")/keys.txt" "${MARIADB_COMMON[@]}") ;;
        mariadb-kmip)
            $MARIADB reset "$name" >/dev/null 2>&1 || true
            ns="sysbench-$(date +%s)-$$"
            "$CLI" --conf-dir "$(bash scripts/pykmip.sh confdir)" mariadb create-key 1 --namespace "$ns" >/dev/null
            args=(--plugin-load-add=kmip_key_management --kmip-key-management=FORCE
                  "--kmip-key-management-conf-dir=$($MARIADB conf "$name" "$(bash scripts/pykmip.sh confdir)")"
                  "--kmip-key-management-key-namespace=$ns" "${MARIADB_COMMON[@]}") ;;
    esac
    start "$kind" "${args[@]}"
    case "$kind" in
        file) MYSQL_VERSION="$(sql "$kind" "SELECT VERSION()")" ;;
        mariadb-file) MARIADB_VERSION="$(sql "$kind" "SELECT VERSION()")" ;;
    esac
    if is_mariadb "$kind"; then
        sql "$kind" "CREATE DATABASE sbtest" >/dev/null
    else
        sql "$kind" "CREATE DATABASE sbtest DEFAULT ENCRYPTION='Y'" >/dev/null
    fi
    sysbench_on "$kind" prepare
    if is_mariadb "$kind"; then
        encrypted="$(sql "$kind" "SELECT COUNT(*) FROM information_schema.INNODB_TABLESPACES_ENCRYPTION WHERE NAME LIKE 'sbtest/sbtest%' AND ENCRYPTION_SCHEME=1")"
    else
        encrypted="$(sql "$kind" "SELECT COUNT(*) FROM information_schema.INNODB_TABLESPACES WHERE NAME LIKE 'sbtest/sbtest%' AND ENCRYPTION='Y'")"
    fi
    [[ "$encrypted" == "$TABLES" ]] || { say "${LABEL[$kind]}: $encrypted of $TABLES sbtest tables encrypted"; exit 1; }
    no_errors "$kind"
    stop "$kind"
}

# rotate_loop KIND END: ALTER INSTANCE ROTATE INNODB MASTER KEY at every ROTATE_EVERY s from
# now until END (ns); one line per rotation in $TMP/rotations ("ok MS" or "failed MS").
rotate_loop() {
    local kind="$1" end="$2" step=$((ROTATE_EVERY * 1000000000)) next t0 t1 wait_ns
    next=$(($(now) + step))
    while ((next < end)); do
        wait_ns=$((next - $(now)))
        ((wait_ns > 0)) && sleep "$(awk -v n="$wait_ns" 'BEGIN { printf "%.3f", n / 1e9 }')"
        t0=$(now)
        if sql "$kind" "ALTER INSTANCE ROTATE INNODB MASTER KEY" >/dev/null 2>&1; then
            t1=$(now); echo "ok $(ms "$t0" "$t1")" >>"$TMP/rotations"
        else
            t1=$(now); echo "failed $(ms "$t0" "$t1")" >>"$TMP/rotations"
        fi
        next=$((next + step))
        while ((next <= t1)); do next=$((next + step)); done
    done
}

# run KIND: RESULT="tps requests rotations rotation_ms" (rotations "-" for MariaDB; rotation_ms
# the median duration of the run's rotations, "-" if none).
run() {
    local kind="$1" r0 r1 tps rotations=- rotation_ms=- i
    start "$kind"
    for ((i = 1; i <= TABLES; i++)); do sql "$kind" "SELECT COUNT(*) FROM sbtest.sbtest$i" >/dev/null; done
    r0="$(counter "$kind" Requests)"
    rm -f "$TMP/rotations"
    if ! is_mariadb "$kind"; then
        rotate_loop "$kind" "$(($(now) + SECS * 1000000000))" &
        ROTATOR=$!
    fi
    sysbench_on "$kind" run --time="$SECS" --report-interval=0
    if [[ -n "$ROTATOR" ]]; then
        wait "$ROTATOR"
        ROTATOR=""
        touch "$TMP/rotations"
        if grep -q '^failed' "$TMP/rotations"; then
            say "${LABEL[$kind]}: $(grep -c '^failed' "$TMP/rotations") rotations failed, see $($MYSQL log "$(name_of "$kind")")"
            exit 1
        fi
        rotations="$(grep -c '^ok' "$TMP/rotations" || true)"
        ((rotations > 0)) && rotation_ms="$(bench_median "$(awk '{ printf "%s;", $2 }' "$TMP/rotations")" 1)"
    fi
    r1="$(counter "$kind" Requests)"
    no_errors "$kind"
    tps="$(awk '$1 == "transactions:" { sub(/^\(/, "", $3); print $3 }' "$TMP/sysbench.out")"
    [[ -n "$tps" ]] || { say "${LABEL[$kind]}: no transactions line in sysbench's output"; exit 1; }
    stop "$kind"
    RESULT="$tps $(bench_diff "$r0" "$r1") $rotations $rotation_ms"
}

say "load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"
for k in "${KEYRINGS[@]}"; do
    say "${LABEL[$k]}: fresh instance, sysbench prepare ($TABLES tables x $ROWS rows)..."
    prepare "$k"
done

declare -A results=()
for ((round = 0; round < ROUNDS; round++)); do
    read -r -a order <<<"$(bench_order "$round" "${MYSQL_KEYRINGS[@]}") $(bench_order "$round" "${MARIADB_KEYRINGS[@]}")"
    for k in "${order[@]}"; do
        say "round $((round + 1))/$ROUNDS: ${LABEL[$k]}, $SECS s..."
        run "$k"
        say "round $((round + 1))/$ROUNDS: ${LABEL[$k]}: tps requests rotations rotation-ms: $RESULT"
        results[$k]+="$RESULT;"
    done
done
say "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"

for k in "${KEYRINGS[@]}"; do
    printf 'rounds %-24s (tps requests rotations rotation-ms): %s\n' "${LABEL[$k]}" "${results[$k]}"
done
# field K FIELD: the median of a field, or "-" when the rounds have none.
field() {
    if [[ "$(tr ';' '\n' <<<"${results[$1]}" | awk -v f="$2" 'NF { print $f }' | head -n1)" == - ]]; then
        echo -
    else
        bench_median "${results[$1]}" "$2"
    fi
}
printf 'sysbench oltp_read_write, %d threads, %d tables x %d rows, %d s per run; medians of %d rounds\n' \
    "$THREADS" "$TABLES" "$ROWS" "$SECS" "$ROUNDS"
printf 'MySQL %s: every table ENCRYPTION='"'Y'"', binlog_encryption=ON, ALTER INSTANCE ROTATE INNODB MASTER KEY every %d s\n' \
    "$MYSQL_VERSION" "$ROTATE_EVERY"
printf 'MariaDB %s: %s; no rotation\n' "$MARIADB_VERSION" "${MARIADB_COMMON[*]}"
printf '%-24s %9s %7s %9s %10s %12s\n' keyring tps ratio requests rotations rotation-ms
for k in "${KEYRINGS[@]}"; do
    printf '%-24s %9s %7s %9s %10s %12s\n' "${LABEL[$k]}" "$(field "$k" 1)" \
        "$(bench_ratio "$(field "$k" 1)" "$(field "${BASELINE[$k]}" 1)")" \
        "$(field "$k" 2)" "$(field "$k" 3)" "$(field "$k" 4)"
done
