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
MYSQL="bash scripts/mysql-real.sh"
say() { echo "bench: $*" >&2; }

cargo build --release -j2 -p component_keyring_okv --lib --quiet
bash scripts/pykmip.sh setup >/dev/null
bash scripts/pykmip.sh start >/dev/null
$MYSQL install >/dev/null
ROOT="$($MYSQL root)"
PLUGIN_DIR="$($MYSQL plugin-dir)"
install -m 644 target/release/libcomponent_keyring_okv.so "$PLUGIN_DIR/.component_keyring_okv.so.new"
mv -f "$PLUGIN_DIR/.component_keyring_okv.so.new" "$PLUGIN_DIR/component_keyring_okv.so"
for c in component_keyring_okv component_keyring_file; do
    echo '{"read_local_config": true}' >"$PLUGIN_DIR/$c.cnf"
done
CONF=/srv/bench-okv
rm -rf "${ROOT:?}$CONF"
mkdir -p "$ROOT$CONF"
cp -a "$(bash scripts/pykmip.sh confdir)"/. "$ROOT$CONF"/

now() { date +%s%N; }
ms() { echo $((($2 - $1) / 1000000)); }

sql_file="$(mktemp)"
trap 'rm -f "$sql_file"' EXIT
{
    echo "CREATE DATABASE IF NOT EXISTS bench;"
    for ((i = 1; i <= N; i++)); do
        echo "CREATE TABLE bench.t$i (a INT PRIMARY KEY, b VARCHAR(64)) ENCRYPTION='Y';"
        echo "INSERT INTO bench.t$i VALUES ($i, 'row $i');"
    done
} >"$sql_file"
select_all="$(for ((i = 1; i <= N; i++)); do printf 'SELECT COUNT(*) FROM bench.t%d;\n' "$i"; done)"

# run NAME MANIFEST CNF-FILE-NAME CNF-TEXT -> "create_ms restart_ms rotate_ms"
run() {
    local name="$1" manifest="$2" cnf_name="$3" cnf_text="$4" data t0 t1 t2 t3
    $MYSQL reset "$name" >/dev/null 2>&1 || true
    $MYSQL start "$name" >/dev/null 2>&1
    $MYSQL stop "$name" >/dev/null 2>&1
    data="$($MYSQL path "$name")/data"
    echo "{\"components\": \"file://$manifest\"}" >"$data/mysqld.my"
    echo "$cnf_text" >"$data/$cnf_name"
    rm -f "$($MYSQL path "$name")/keys"
    $MYSQL start "$name" >/dev/null 2>&1
    [[ "$($MYSQL sql "$name" "SELECT STATUS_VALUE FROM performance_schema.keyring_component_status WHERE STATUS_KEY='Component_status'")" == Active ]] \
        || { say "$manifest is not Active in instance $name"; exit 1; }
    # One encrypted table first, so that the master key exists before the timing starts.
    $MYSQL sql "$name" "CREATE DATABASE IF NOT EXISTS warm; CREATE TABLE warm.t (a INT) ENCRYPTION='Y'" >/dev/null
    t0=$(now)
    $MYSQL sql "$name" - <"$sql_file" >/dev/null
    t1=$(now)
    $MYSQL restart "$name" >/dev/null 2>&1
    echo "$select_all" | $MYSQL sql "$name" - >/dev/null
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
    order=(file okv cache)
    order=("${order[@]:round % 3}" "${order[@]:0:round % 3}")
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

# median KEY FIELD(1..3)
median() {
    tr ';' '\n' <<<"${results[$1]}" | awk -v f="$2" 'NF { print $f }' | sort -n \
        | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2)) }'
}
f_create=$(median file 1); f_restart=$(median file 2); f_rotate=$(median file 3)
o_create=$(median okv 1); o_restart=$(median okv 2); o_rotate=$(median okv 3)
c_create=$(median cache 1); c_restart=$(median cache 2); c_rotate=$(median cache 3)

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
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
