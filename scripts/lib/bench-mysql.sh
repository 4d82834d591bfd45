# bench-mysql.sh — helpers of the mysqld benchmarks (bench-component.sh, bench-restart.sh,
# bench-udf.sh); sourced, not run. The sourcing script has cd'ed to the repository's root and
# set BENCH (its name, for messages), ROUNDS and, for bench_workload, N (encrypted tables).
# shellcheck shell=bash
# shellcheck disable=SC2034,SC2154  # variables set here for, or by, the sourcing script

MYSQL="bash scripts/mysql-real.sh"
# The PyKMIP client configuration, as mysqld sees it inside the chroot.
CONF=/srv/bench-okv

say() { echo "$BENCH: $*" >&2; }
now() { date +%s%N; }
ms() { echo $((($2 - $1) / 1000000)); }

# bench_setup: PyKMIP started, the chroot installed, its client configuration copied in at
# $CONF; sets ROOT and PLUGIN_DIR (host paths of the chroot and of its plugin directory).
bench_setup() {
    bash scripts/pykmip.sh setup >/dev/null
    bash scripts/pykmip.sh start >/dev/null
    $MYSQL install >/dev/null
    ROOT="$($MYSQL root)"
    PLUGIN_DIR="$($MYSQL plugin-dir)"
    rm -rf "${ROOT:?}$CONF"
    mkdir -p "$ROOT$CONF"
    cp -a "$(bash scripts/pykmip.sh confdir)"/. "$ROOT$CONF"/
}

# bench_install_component: the release build of component_keyring_okv into the chroot (a new
# file renamed over the old one: a running mysqld keeps its mapping), and the .cnf files
# that make both keyring components read their configuration from the data directory.
bench_install_component() {
    install -m 644 target/release/libcomponent_keyring_okv.so "$PLUGIN_DIR/.component_keyring_okv.so.new"
    mv -f "$PLUGIN_DIR/.component_keyring_okv.so.new" "$PLUGIN_DIR/component_keyring_okv.so"
    local c
    for c in component_keyring_okv component_keyring_file; do
        echo '{"read_local_config": true}' >"$PLUGIN_DIR/$c.cnf"
    done
}

# bench_workload: writes $SQL_FILE (N x CREATE TABLE ... ENCRYPTION='Y' + INSERT) and sets
# SELECT_ALL (the first SELECT of every encrypted table). The caller removes $SQL_FILE.
bench_workload() {
    local i
    SQL_FILE="$(mktemp)"
    {
        echo "CREATE DATABASE IF NOT EXISTS bench;"
        for ((i = 1; i <= N; i++)); do
            echo "CREATE TABLE bench.t$i (a INT PRIMARY KEY, b VARCHAR(64)) ENCRYPTION='Y';"
            echo "INSERT INTO bench.t$i VALUES ($i, 'row $i');"
        done
    } >"$SQL_FILE"
    SELECT_ALL="$(for ((i = 1; i <= N; i++)); do printf 'SELECT COUNT(*) FROM bench.t%d;\n' "$i"; done)"
}

# bench_fresh NAME [MANIFEST CNF-FILE-NAME CNF-TEXT]: a newly initialised, stopped instance;
# with a manifest, its data directory loads that keyring component with that configuration.
bench_fresh() {
    local name="$1" data
    $MYSQL reset "$name" >/dev/null 2>&1 || true
    rm -f "$($MYSQL path "$name")/args" # initialised without the options of an earlier run
    $MYSQL start "$name" >/dev/null 2>&1
    $MYSQL stop "$name" >/dev/null 2>&1
    data="$($MYSQL path "$name")/data"
    rm -f "$($MYSQL path "$name")/keys" "$data/mysqld.my"
    if (($# > 1)); then
        echo "{\"components\": \"file://$2\"}" >"$data/mysqld.my"
        echo "$4" >"$data/$3"
    fi
}

# bench_component_active NAME: fails unless a keyring component is Active in instance NAME.
bench_component_active() {
    [[ "$($MYSQL sql "$1" "SELECT STATUS_VALUE FROM performance_schema.keyring_component_status WHERE STATUS_KEY='Component_status'")" == Active ]] \
        || { say "no keyring component is Active in instance $1"; exit 1; }
}

# bench_median RESULTS FIELD: the median of field FIELD (1..) of the ';'-separated records.
bench_median() {
    tr ';' '\n' <<<"$1" | awk -v f="$2" 'NF { print $f }' | sort -n \
        | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2)) }'
}

# bench_ratio A B: A / B with two decimals.
bench_ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }

# bench_order ROUND ITEMS...: the items rotated by ROUND, so that a busy moment of a shared
# machine does not always fall on the same one.
bench_order() {
    local r="$1"
    shift
    local items=("$@")
    r=$((r % ${#items[@]}))
    echo "${items[@]:r}" "${items[@]:0:r}"
}
