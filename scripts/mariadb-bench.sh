#!/usr/bin/env bash
# mariadb-bench.sh — kmip_key_management against MariaDB's own file_key_management, the same
# encrypted workload on the same MariaDB (10.11 on the host by default), in one run:
# N encrypted CREATE TABLE + INSERT (key ids 1 and 5, alternating), then a server restart
# (which reads every key again). Each plugin runs R rounds, alternating, and the medians are
# compared: the result is a ratio, not an absolute time. Not a CI test. The binary log is on
# and encrypted (log-bin in mariadb-real.sh's my.cnf, --encrypt-binlog=ON here), so the workload
# and each restart also write encrypted binlog events. Each restart's KMIP requests (the
# plugin's kmip_key_management_requests, 0 at each start, read after the read-back) are printed
# with the key store's calls from the server in that restart.
#
# Usage: scripts/mariadb-bench.sh [N tables, default 200] [R rounds, default 5]
# Needs: cargo build --release; PyKMIP (scripts/pykmip.sh setup && start) is started if needed.
# Environment: KEYRING_OKV_MARIADB_TARGET (host or chroot) as for mariadb-real.sh: MariaDB 10.11
# on the host by default; 11.8 with KEYRING_OKV_MARIADB_TARGET=chroot scripts/mariadb-bench.sh.
# KEYRING_OKV_PYKMIP_NAME: a PyKMIP of the benchmark's own (see scripts/pykmip.sh).
set -euo pipefail

N="${1:-200}"
R="${2:-5}"
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(dirname "$SCRIPT_DIR")"
M="$SCRIPT_DIR/mariadb-real.sh"
CLI="$REPO_ROOT/target/release/keyring-okv"
export KEYRING_OKV_MARIADB_PLUGIN="${KEYRING_OKV_MARIADB_PLUGIN:-$REPO_ROOT/target/release/libkmip_key_management.so}"

say() { echo "mariadb-bench: $*" >&2; }
[[ -x "$CLI" && -f "$KEYRING_OKV_MARIADB_PLUGIN" ]] || { say "run cargo build --release first"; exit 1; }

bash "$SCRIPT_DIR/pykmip.sh" setup >/dev/null
bash "$SCRIPT_DIR/pykmip.sh" start >/dev/null
bash "$M" install >/dev/null
CONF="$(bash "$SCRIPT_DIR/pykmip.sh" confdir)"
NS="bench-$(date +%s)-$$"
"$CLI" --conf-dir "$CONF" mariadb create-key 1 --namespace "$NS" >/dev/null
"$CLI" --conf-dir "$CONF" mariadb create-key 5 --namespace "$NS" >/dev/null

COMMON=(--innodb-encrypt-tables=ON --innodb-encrypt-log=ON --encrypt-binlog=ON
        --encrypt-tmp-files=ON --aria-encrypt-tables=ON --innodb-encryption-threads=0)

# Baseline: file_key_management with keys 1 and 5 (random, this run only).
bash "$M" reset bench-file >/dev/null 2>&1 || true
FILE_DIR="$(bash "$M" path bench-file)"
mkdir -p "$FILE_DIR"
{ echo "1;$(openssl rand -hex 32)"; echo "5;$(openssl rand -hex 32)"; } >"$FILE_DIR/keys.txt"
FILE_KEYS="$(bash "$M" inner bench-file)/keys.txt"
FILE_ARGS=(--plugin-load-add=file_key_management --file-key-management=FORCE
           "--file-key-management-filename=$FILE_KEYS" "${COMMON[@]}")

bash "$M" reset bench-kmip >/dev/null 2>&1 || true
KMIP_CONF="$(bash "$M" conf bench-kmip "$CONF")"
KMIP_ARGS=(--plugin-load-add=kmip_key_management --kmip-key-management=FORCE
           "--kmip-key-management-conf-dir=$KMIP_CONF" "--kmip-key-management-key-namespace=$NS"
           "${COMMON[@]}")

bash "$M" start bench-file "${FILE_ARGS[@]}" >/dev/null 2>&1
bash "$M" start bench-kmip "${KMIP_ARGS[@]}" >/dev/null 2>&1
for p in file kmip; do
    [[ "$(bash "$M" sql "bench-$p" "SELECT @@log_bin, @@encrypt_binlog")" == $'1\t1' ]] \
        || { say "log_bin or encrypt_binlog is off in bench-$p"; exit 1; }
done

# The kmip plugin's status variable NAME (without the kmip_key_management_ prefix).
kmip_status() {
    bash "$M" sql bench-kmip "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME='KMIP_KEY_MANAGEMENT_${1^^}'"
}

workload_sql() { # ROUND
    local i
    echo "CREATE DATABASE b$1;"
    for ((i = 1; i <= N; i++)); do
        echo "CREATE TABLE b$1.t$i (id INT PRIMARY KEY, v VARCHAR(100)) ENCRYPTION_KEY_ID=$(( i % 2 ? 1 : 5 ));"
        echo "INSERT INTO b$1.t$i VALUES (1,'one'),(2,'two'),(3,'three'),(4,'four');"
    done
}

# Milliseconds of the workload and of the restart (with the read-back) on INSTANCE; for
# bench-kmip also the restart's KMIP requests and the server's get_latest_key_version and
# get_key calls in it.
run_round() { # INSTANCE ROUND
    local t0 t1 t2 req=""
    t0=$(date +%s%N)
    workload_sql "$2" | bash "$M" sql "$1" - >/dev/null
    t1=$(date +%s%N)
    bash "$M" restart "$1" >/dev/null 2>&1
    [[ "$(bash "$M" sql "$1" "SELECT COUNT(*) FROM b$2.t$N")" == 4 ]] || { say "read back failed on $1"; exit 1; }
    t2=$(date +%s%N)
    [[ $1 == bench-kmip ]] && req="$(kmip_status requests) $(kmip_status latest_version_requests) $(kmip_status key_requests)"
    echo "$(( (t1 - t0) / 1000000 )) $(( (t2 - t1) / 1000000 )) $req"
}

median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

fw=() fr=() ft=() kw=() kr=() kt=() kq=() kl=() kg=()
for ((r = 1; r <= R; r++)); do
    # Alternate which plugin goes first, so that drifts in machine load fall on both.
    if ((r % 2)); then order=(file kmip); else order=(kmip file); fi
    for p in "${order[@]}"; do
        read -r w t q l g <<<"$(run_round "bench-$p" "$r")"
        if [[ $p == file ]]; then
            fw+=("$w") fr+=("$t") ft+=("$((w + t))")
            say "round $r: $p workload ${w} ms, restart ${t} ms"
        else
            kw+=("$w") kr+=("$t") kt+=("$((w + t))") kq+=("$q") kl+=("$l") kg+=("$g")
            say "round $r: $p workload ${w} ms, restart ${t} ms, $q KMIP requests ($l get_latest_key_version, $g get_key)"
            [[ "$(kmip_status errors)" == 0 ]] \
                || { say "failed KMIP requests in round $r, see $(bash "$M" log bench-kmip)"; exit 1; }
        fi
    done
done
m() { printf '%s\n' "$@" | median; }
version="$(bash "$M" sql bench-kmip "SELECT VERSION()")"
echo "MariaDB $version, $N encrypted CREATE TABLE + INSERT, then a restart; medians of $R rounds:"
printf '  %-22s %10s %10s %10s\n' "" workload restart total
printf '  %-22s %8s ms %8s ms %8s ms\n' file_key_management "$(m "${fw[@]}")" "$(m "${fr[@]}")" "$(m "${ft[@]}")"
printf '  %-22s %8s ms %8s ms %8s ms\n' kmip_key_management "$(m "${kw[@]}")" "$(m "${kr[@]}")" "$(m "${kt[@]}")"
awk -v kw="$(m "${kw[@]}")" -v fw="$(m "${fw[@]}")" -v kr="$(m "${kr[@]}")" -v fr="$(m "${fr[@]}")" \
    -v kt="$(m "${kt[@]}")" -v ft="$(m "${ft[@]}")" \
    'BEGIN { printf "  %-22s %10.3f %10.3f %10.3f\n", "ratio kmip/file", kw / fw, kr / fr, kt / ft }'
echo "  KMIP requests of each restart of kmip_key_management (rounds 1..$R): ${kq[*]}; median $(m "${kq[@]}")"
echo "  in those restarts, the server's get_latest_key_version calls: ${kl[*]}; get_key calls: ${kg[*]}"
bash "$M" reset bench-file >/dev/null 2>&1 || true
bash "$M" reset bench-kmip >/dev/null 2>&1 || true
