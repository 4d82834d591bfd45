# bench-mysql.sh — helpers of the mysqld benchmarks (bench-component.sh, bench-restart.sh,
# bench-sysbench.sh, bench-udf.sh); sourced, not run. The sourcing script has cd'ed to the
# repository's root and set BENCH (its name, for messages), ROUNDS and, for bench_workload, N
# (encrypted tables).
# shellcheck shell=bash
# shellcheck disable=SC2034,SC2154  # variables set here for, or by, the sourcing script

MYSQL="bash scripts/mysql-real.sh"
# The PyKMIP client configuration, as mysqld sees it inside the chroot (one per named PyKMIP:
# a benchmark against another PyKMIP in the same chroot does not replace it).
CONF="/srv/bench-okv${KEYRING_OKV_PYKMIP_NAME:+-$KEYRING_OKV_PYKMIP_NAME}"

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

# bench_install_component [DIR]: the release build of component_keyring_okv into the chroot's
# plugin directory or the host directory DIR (a new file renamed over the old one: a running
# mysqld keeps its mapping), and the .cnf files that make both keyring components read their
# configuration from the data directory.
bench_install_component() {
    local dir="${1:-$PLUGIN_DIR}" c
    install -m 644 target/release/libcomponent_keyring_okv.so "$dir/.component_keyring_okv.so.new"
    mv -f "$dir/.component_keyring_okv.so.new" "$dir/component_keyring_okv.so"
    for c in component_keyring_okv component_keyring_file; do
        echo '{"read_local_config": true}' >"$dir/$c.cnf"
    done
}

# bench_private_plugin_dir DIR: a plugin directory of the benchmark's own, DIR inside the chroot,
# for mysqld's --plugin-dir: component_keyring_file from the chroot, this build's
# keyring_okv.so and component_keyring_okv.so, the .cnf files of bench_install_component. Other
# work that installs its own build into the chroot's plugin directory meanwhile does not change
# what the benchmark's instances load.
bench_private_plugin_dir() {
    local dir="$ROOT$1"
    rm -rf "${dir:?}"
    mkdir -p "$dir"
    install -m 644 "$PLUGIN_DIR/component_keyring_file.so" "$dir/component_keyring_file.so"
    install -m 644 target/release/libkeyring_okv.so "$dir/keyring_okv.so"
    bench_install_component "$dir"
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

# bench_plugin_active NAME: fails unless the plugin keyring_okv is ACTIVE in instance NAME.
bench_plugin_active() {
    [[ "$($MYSQL sql "$1" "SELECT PLUGIN_STATUS FROM information_schema.PLUGINS WHERE PLUGIN_NAME='keyring_okv'")" == ACTIVE ]] \
        || { say "keyring_okv is not ACTIVE in instance $1"; exit 1; }
}

# bench_counter KIND NAME COUNTER: the keyring's counter (Requests or Errors) since mysqld
# started in instance NAME; KIND is file ("-": the file keyring counts nothing), plugin* (the
# plugin's Keyring_okv_<counter> status variable) or component* (the component's status row).
bench_counter() {
    case "$1" in
        file) echo - ;;
        plugin*) $MYSQL sql "$2" "SELECT VARIABLE_VALUE FROM performance_schema.global_status WHERE VARIABLE_NAME='Keyring_okv_${3,,}'" ;;
        component*) $MYSQL sql "$2" "SELECT STATUS_VALUE FROM performance_schema.keyring_component_status WHERE STATUS_KEY='$3'" ;;
    esac
}

# bench_diff A B: B - A, or "-" when A is "-" (the file keyring).
bench_diff() { if [[ "$1" == - ]]; then echo -; else echo $(($2 - $1)); fi; }

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
