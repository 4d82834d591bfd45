#!/usr/bin/env bash
# bench-udf.sh — key writes through a real mysqld 9.7 with each keyring, with 1, 8 and 32
# concurrent sessions, as ratios against component_keyring_file measured in the same run,
# with the number of KMIP requests each write makes (not a test; CI does not run it).
#
# Writes are keyring_udf's functions, every key id new:
#   generate: SELECT keyring_key_generate('<id>', 'AES', 32)
#   store:    SELECT keyring_key_store('<id>', 'AES', '<32 bytes>')
# Each session is one mysql client process fed one statement at a time by a bash loop of its
# own (a coprocess), which reads the statement's answer (it must be 1) and timestamps the
# statement from its bash ($EPOCHREALTIME: no process per statement), for SECONDS; the
# sessions start together once all are connected. Per (operation, sessions): writes done, per
# second, relative to 1 session, median and p99 latency of one statement, the keyring's KMIP
# requests per write (its counter read before and after), and for the okv keyrings the ratios
# of their throughput and median to component_keyring_file's in the same run.
# Keyrings: component_keyring_file (baseline); the plugin keyring_okv.so at its defaults
# (early-plugin-load, keyring_okv_conf_dir); component_keyring_okv at its defaults.
# Before every row mysqld restarts with an empty keyring: component_keyring_file's file is
# removed, and the PyKMIP is emptied (its own instance, see below), since PyKMIP's look-ups by
# name grow with the objects it holds.
#
# A keyring error (its error counter above 0), or a statement answering other than 1, stops
# the run.
#
# Usage: scripts/bench-udf.sh [SECONDS [ROUNDS]]   (defaults 10 and 1; medians of the rounds)
# Environment: KEYRING_OKV_MYSQL_ROOT (as for scripts/mysql-real.sh); KEYRING_OKV_PYKMIP_NAME
# (the PyKMIP instance, emptied before every row: default bench_udf, never the main one, see
# scripts/pykmip.sh); KEYRING_OKV_PYKMIP_UNIQUE_NAMES=1: that PyKMIP refuses a second object
# under a Name in use, as key managers that keep names unique do, so that the keys made need
# no create race wait (as shipped, each write waits about a second).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SECS="${1:-10}"
ROUNDS="${2:-1}"
BENCH=bench-udf
[[ "$SECS" =~ ^[1-9][0-9]*$ && "$ROUNDS" =~ ^[1-9][0-9]*$ ]] \
    || { echo "usage: $0 [SECONDS [ROUNDS]]" >&2; exit 2; }
export KEYRING_OKV_PYKMIP_NAME="${KEYRING_OKV_PYKMIP_NAME:-bench_udf}"
[[ "$KEYRING_OKV_PYKMIP_NAME" != main ]] \
    || { echo "$BENCH: every row empties the PyKMIP; name one of its own in KEYRING_OKV_PYKMIP_NAME" >&2; exit 2; }
# shellcheck source=scripts/lib/bench-mysql.sh
source scripts/lib/bench-mysql.sh
# The PyKMIP client configuration of this benchmark, as mysqld sees it inside the chroot.
CONF=/srv/bench-udf-okv

cargo build --release -j2 -p component_keyring_okv -p keyring_okv --lib --quiet
bench_setup
bench_install_component
$MYSQL install-plugin target/release/libkeyring_okv.so >/dev/null 2>&1
TMP="$(mktemp -d)"
CURRENT=""
trap 'rm -rf "$TMP"; [[ -z "$CURRENT" ]] || $MYSQL stop "$CURRENT" >/dev/null 2>&1 || true' EXIT

KEYRINGS=(file plugin component)
declare -A LABEL=(
    [file]="component_keyring_file"
    [plugin]="keyring_okv.so"
    [component]="component_keyring_okv"
)
OPS=(generate store)
SESSIONS=(1 8 32)
VALUE=0123456789abcdef0123456789ABCDEF # the 32 bytes each store writes
FILE_CNF="{\"path\": \"/srv/mysql/bench-u-file/keys\", \"read_only\": false}"

# counter KIND NAME COUNTER: the keyring's counter (Requests or Errors) since mysqld started
# ("-" for the file keyring).
counter() {
    case "$1" in
        file) echo - ;;
        plugin) $MYSQL sql "$2" "SELECT VARIABLE_VALUE FROM performance_schema.global_status WHERE VARIABLE_NAME='Keyring_okv_${3,,}'" ;;
        component) $MYSQL sql "$2" "SELECT STATUS_VALUE FROM performance_schema.keyring_component_status WHERE STATUS_KEY='$3'" ;;
    esac
}

# active KIND NAME: fails unless the keyring is active in instance NAME.
active() {
    if [[ "$1" == plugin ]]; then
        [[ "$($MYSQL sql "$2" "SELECT PLUGIN_STATUS FROM information_schema.PLUGINS WHERE PLUGIN_NAME='keyring_okv'")" == ACTIVE ]] \
            || { say "keyring_okv is not ACTIVE in instance $2"; exit 1; }
    else
        bench_component_active "$2"
    fi
}

# pykmip_empty: the PyKMIP restarted with no object, and its client configuration (its port
# changes) copied in again.
pykmip_empty() {
    bash scripts/pykmip.sh reset >/dev/null 2>&1
    bash scripts/pykmip.sh start >/dev/null
    rm -rf "${ROOT:?}$CONF"
    mkdir -p "$ROOT$CONF"
    cp -a "$(bash scripts/pykmip.sh confdir)"/. "$ROOT$CONF"/
}

# prepare KIND: a fresh instance bench-u-KIND with the keyring and keyring_udf, stopped.
prepare() {
    local kind="$1" name="bench-u-$1"
    case "$kind" in
        file)
            bench_fresh "$name" component_keyring_file component_keyring_file.cnf "$FILE_CNF"
            $MYSQL start "$name" >/dev/null 2>&1 ;;
        component)
            bench_fresh "$name" component_keyring_okv component_keyring_okv.cnf \
                "{\"kmip_configuration_directory\": \"$CONF\"}"
            $MYSQL start "$name" >/dev/null 2>&1 ;;
        plugin)
            bench_fresh "$name"
            $MYSQL start "$name" --early-plugin-load=keyring_okv.so "--loose-keyring_okv_conf_dir=$CONF" >/dev/null 2>&1 ;;
    esac
    CURRENT="$name"
    active "$kind" "$name"
    $MYSQL udf "$name" >/dev/null 2>&1
    $MYSQL stop "$name" >/dev/null 2>&1
    CURRENT=""
}

# session NAME OP S DIR PREFIX: one client session (run in the background): connects, marks
# DIR/S.ready, waits for DIR/go (the start, in microseconds), then writes keys PREFIX_S_1,
# PREFIX_S_2, ... one statement at a time until SECS have passed; leaves the latencies in
# microseconds in DIR/S.lat and "writes end" in DIR/S.done, or a message in DIR/S.fail.
session() {
    local name="$1" op="$2" s="$3" dir="$4" prefix="$5" line a b i=0 t0 end stmt
    local -a lat=()
    fail() { echo "session $s: $*" >"$dir/$s.fail"; exit 1; }
    coproc Q { exec chroot "$ROOT" /usr/bin/mysql --defaults-file="/srv/mysql/$name/my.cnf" \
        --batch --skip-column-names --unbuffered 2>"$dir/$s.err"; }
    echo "SELECT 1;" >&"${Q[1]}"
    read -r line <&"${Q[0]}" || fail "could not connect: $(cat "$dir/$s.err")"
    touch "$dir/$s.ready"
    while [[ ! -f "$dir/go" ]]; do sleep 0.01; done
    t0="$(<"$dir/go")"
    end=$((t0 + SECS * 1000000))
    while :; do
        i=$((i + 1))
        case "$op" in
            generate) stmt="SELECT keyring_key_generate('${prefix}_${s}_$i', 'AES', 32);" ;;
            store) stmt="SELECT keyring_key_store('${prefix}_${s}_$i', 'AES', '$VALUE');" ;;
        esac
        a="${EPOCHREALTIME/[.,]/}"
        echo "$stmt" >&"${Q[1]}"
        read -r line <&"${Q[0]}" || fail "$stmt: no answer, the client ended: $(cat "$dir/$s.err")"
        b="${EPOCHREALTIME/[.,]/}"
        [[ "$line" == 1 ]] || fail "$stmt answered '$line', not 1 $(cat "$dir/$s.err")"
        lat+=($((b - a)))
        ((b < end)) || break
    done
    printf '%s\n' "${lat[@]}" >"$dir/$s.lat"
    echo "$i $b" >"$dir/$s.done"
}

# row KIND OP S: RESULT="writes rate*100 median_us p99_us requests_per_write*100"
row() {
    local kind="$1" op="$2" n="$3" name="bench-u-$1" dir s r0 r1 errors t0 writes=0 last=0 w e f wait_until
    local -a pids=()
    $MYSQL stop "$name" >/dev/null 2>&1
    rm -f "$($MYSQL path "$name")/keys"
    [[ "$kind" == file ]] || pykmip_empty
    CURRENT="$name"
    $MYSQL start "$name" >/dev/null 2>&1
    active "$kind" "$name"
    r0="$(counter "$kind" "$name" Requests)"
    dir="$(mktemp -d -p "$TMP")"
    for ((s = 1; s <= n; s++)); do
        session "$name" "$op" "$s" "$dir" "${op:0:1}$(printf '%x' "$(date +%s)")" &
        pids+=($!)
    done
    wait_until=$((SECONDS + 120))
    while (($(find "$dir" -name '*.ready' | wc -l) < n)); do
        if compgen -G "$dir/*.fail" >/dev/null || ((SECONDS > wait_until)); then break; fi
        sleep 0.05
    done
    t0="$(now)"
    t0="${t0:0:16}"
    echo "$t0" >"$dir/go.new"
    mv "$dir/go.new" "$dir/go"
    for p in "${pids[@]}"; do wait "$p" || true; done
    for f in "$dir"/*.fail; do
        [[ -e "$f" ]] || continue
        say "$kind, $op, $n sessions: $(cat "$f")"
        say "see $($MYSQL log "$name")"
        exit 1
    done
    for ((s = 1; s <= n; s++)); do
        [[ -s "$dir/$s.done" ]] || { say "$kind, $op, $n sessions: session $s did not finish"; exit 1; }
        read -r w e <"$dir/$s.done"
        writes=$((writes + w))
        if ((e > last)); then last=$e; fi
    done
    r1="$(counter "$kind" "$name" Requests)"
    errors="$(counter "$kind" "$name" Errors)"
    [[ "$errors" == - || "$errors" == 0 ]] \
        || { say "$kind: $errors failed KMIP requests, see $($MYSQL log "$name")"; exit 1; }
    $MYSQL stop "$name" >/dev/null 2>&1
    CURRENT=""
    RESULT="$writes $((writes * 100000000 / (last - t0))) $(cat "$dir"/*.lat | sort -n \
        | awk '{ v[NR] = $1 } END { p = int(NR * 0.99); if (p < NR * 0.99) p++; print v[int((NR + 1) / 2)], v[p] }')"
    if [[ "$r0" == - ]]; then RESULT+=" -"; else RESULT+=" $(((r1 - r0) * 100 / writes))"; fi
    rm -rf "$dir"
}

for k in "${KEYRINGS[@]}"; do
    say "preparing instance bench-u-$k..."
    prepare "$k"
done
declare -A results=()
for ((round = 0; round < ROUNDS; round++)); do
    read -r -a order <<<"$(bench_order "$round" "${KEYRINGS[@]}")"
    for n in "${SESSIONS[@]}"; do
        for op in "${OPS[@]}"; do
            for k in "${order[@]}"; do
                say "round $((round + 1))/$ROUNDS: $k, $op, $n sessions, ${SECS} s..."
                row "$k" "$op" "$n"
                say "round $((round + 1))/$ROUNDS: $k, $op, $n sessions: $RESULT"
                results[$k/$op/$n]+="$RESULT;"
            done
        done
    done
done

for k in "${KEYRINGS[@]}"; do
    for op in "${OPS[@]}"; do
        for n in "${SESSIONS[@]}"; do
            printf 'rounds %-9s %-8s %2d (writes, per s x100, median us, p99 us, requests x100): %s\n' \
                "$k" "$op" "$n" "${results[$k/$op/$n]}"
        done
    done
done
med() { bench_median "${results[$1]}" "$2"; }
hundredths() { if [[ "$1" == - ]]; then echo -; else awk -v v="$1" 'BEGIN { printf "%.2f", v / 100 }'; fi; }
rel() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3g", (b > 0 ? a / b : 0) }'; }
msec() { awk -v v="$1" 'BEGIN { printf "%.1f", v / 1000 }'; }
printf 'medians of %d rounds, %d s per row, keyrings at their defaults, PyKMIP %s\n' "$ROUNDS" "$SECS" \
    "$([[ ${KEYRING_OKV_PYKMIP_UNIQUE_NAMES:-0} == 1 ]] && echo "keeping names unique" || echo "as shipped")"
line() { printf '%-23s %-8s %8s %7s %8s %8s %9s %9s %9s %9s %9s\n' "$@"; }
line keyring write sessions writes "per s" "x 1 sess" "median ms" "p99 ms" requests "per s" "median"
line "" "" "" "" "" "" "" "" "per write" "/ file" "/ file"
for k in "${KEYRINGS[@]}"; do
    for op in "${OPS[@]}"; do
        for n in "${SESSIONS[@]}"; do
            key="$k/$op/$n"
            if [[ "$k" == file ]]; then rate_ratio=-; med_ratio=-; else
                rate_ratio="$(rel "$(med "$key" 2)" "$(med "file/$op/$n" 2)")"
                med_ratio="$(rel "$(med "$key" 3)" "$(med "file/$op/$n" 3)")"
            fi
            line "${LABEL[$k]}" "$op" "$n" "$(med "$key" 1)" "$(hundredths "$(med "$key" 2)")" \
                "$(bench_ratio "$(med "$key" 2)" "$(med "$k/$op/1" 2)")" "$(msec "$(med "$key" 3)")" \
                "$(msec "$(med "$key" 4)")" \
                "$(if [[ $k == file ]]; then echo -; else hundredths "$(med "$key" 5)"; fi)" \
                "$rate_ratio" "$med_ratio"
        done
    done
done
