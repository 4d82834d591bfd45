#!/usr/bin/env bash
# PyKMIP 0.11.0 test back end for keyring_okv: a real KMIP server on 127.0.0.1 with
# mutual TLS, plus a ready-made keyring_okv conf dir. See docs/pykmip.md.
#
# Usage: scripts/pykmip.sh {setup|start|stop|kill|restart|status|port|confdir|env|reset|log [N]|tool ARGS...}
#   tool ARGS...  runs scripts/pykmip_tool.py (PyKMIP's own client) with the lab's Python
#
# Environment:
#   KEYRING_OKV_LAB         lab root (default: <repo>/.lab); this script uses $KEYRING_OKV_LAB/pykmip
#   KEYRING_OKV_PYKMIP_NAME instance name (default: the main instance). A named instance
#                           (e.g. "second") has its own port, database, pid and log under
#                           <lab>/pykmip-NAME but shares the venv, PKI and client identity.
#   KEYRING_OKV_PYKMIP_PKI  TLS profile of a named instance's PKI: p256 (default), p384, p521 or
#                           rsapss3072; each profile has its own CA, server and client certificates
#   KEYRING_OKV_PYKMIP_UNIQUE_NAMES  1: the server started refuses a Create or Register under a
#                           Name an object already carries (Object Already Exists), as key
#                           managers that keep names unique do; PyKMIP itself does not
#                           (scripts/pykmip_serve.py)
#   PYTHON                  interpreter used to create the venv (default: python3)
#   KEYRING_OKV_PYKMIP_STOP_TIMEOUT  seconds to wait after SIGINT before SIGKILL (default 15;
#                           PyKMIP waits up to 10 s per still-open client connection)
#
# Progress lines go to stderr; stdout carries only the output of port/confdir/env/status/log.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(dirname "$SCRIPT_DIR")
REQS="$SCRIPT_DIR/pykmip-requirements.txt"

LAB_ROOT=${KEYRING_OKV_LAB:-$REPO_ROOT/.lab}
[[ $LAB_ROOT == /* ]] || LAB_ROOT="$PWD/$LAB_ROOT"
LAB="$LAB_ROOT/pykmip"
VENV="$LAB/venv"
# The TLS profile of the lab's PKI: p256 (the default: CA and server EC P-256, client RSA-2048),
# p384, p521 (CA, server and client on that curve) or rsapss3072 (CA and client RSA-3072, every
# certificate signed with RSASSA-PSS; server EC P-256, as PyKMIP's TLS 1.2 suites need ECDSA).
PKI=${KEYRING_OKV_PYKMIP_PKI:-p256}
case $PKI in
    p256) CERTS="$LAB/certs" ;;
    p384|p521|rsapss3072) CERTS="$LAB/certs-$PKI" ;;
    *) echo "pykmip: KEYRING_OKV_PYKMIP_PKI must be p256, p384, p521 or rsapss3072" >&2; exit 2 ;;
esac
POLICIES="$LAB/policies"
MAIN_CONFDIR="$LAB/confdir"

NAME=${KEYRING_OKV_PYKMIP_NAME:-}
if [[ -z $NAME || $NAME == main ]]; then
    NAME=""
    STATE="$LAB"
    CONFDIR="$MAIN_CONFDIR"
    VAR_PREFIX="KEYRING_OKV_PYKMIP"
else
    [[ $NAME =~ ^[A-Za-z0-9_]+$ ]] || { echo "pykmip: KEYRING_OKV_PYKMIP_NAME must match [A-Za-z0-9_]+" >&2; exit 2; }
    STATE="$LAB/pykmip-$NAME"
    CONFDIR="$STATE/confdir"
    VAR_PREFIX="KEYRING_OKV_PYKMIP_${NAME^^}"
fi
SERVER_CONF="$STATE/server.conf"
DB="$STATE/pykmip.db"
LOG="$STATE/server.log"          # PyKMIP's own log (-l)
CONSOLE="$STATE/console.log"     # stdout/stderr of the server process
PIDFILE="$STATE/pid"             # pid of the session leader == process group id
PORTFILE="$STATE/port"
MODEFILE="$STATE/unique_names"    # 1 when the running server keeps names unique

CLIENT_CN="keyring-okv-test"
START_TIMEOUT=30
STOP_TIMEOUT=${KEYRING_OKV_PYKMIP_STOP_TIMEOUT:-15}
PLACEHOLDER_PORT=5696

tag() { if [[ -n $NAME ]]; then echo "pykmip[$NAME]"; else echo "pykmip"; fi; }
say() { echo "$(tag): $*" >&2; }
die() { echo "$(tag): error: $*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------
# setup
# ---------------------------------------------------------------------------------------

reqs_hash() { sha256sum "$REQS" | cut -d' ' -f1; }

venv_ok() {
    [[ -x $VENV/bin/python && -x $VENV/bin/pykmip-server && -f $VENV/.requirements.sha256 ]] || return 1
    [[ $(cat "$VENV/.requirements.sha256") == "$(reqs_hash)" ]] || return 1
    "$VENV/bin/python" -c '' 2>/dev/null
}

setup_venv() {
    venv_ok && return 0
    say "creating venv and installing pinned PyKMIP 0.11.0 (about 10 s)"
    rm -rf "$VENV"
    "${PYTHON:-python3}" -m venv "$VENV"
    if ! "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQS" \
            >"$LAB/pip.log" 2>&1; then
        tail -n 20 "$LAB/pip.log" >&2
        die "pip install failed (full output: $LAB/pip.log)"
    fi
    reqs_hash >"$VENV/.requirements.sha256"
}

pki_ok() {
    local f
    for f in ca.crt ca.key server.crt server.key client.crt client.key; do
        [[ -s $CERTS/$f ]] || return 1
    done
    openssl verify -CAfile "$CERTS/ca.crt" -purpose sslserver "$CERTS/server.crt" >/dev/null 2>&1 &&
        openssl verify -CAfile "$CERTS/ca.crt" -purpose sslclient "$CERTS/client.crt" >/dev/null 2>&1 &&
        openssl x509 -in "$CERTS/server.crt" -noout -checkend 86400 >/dev/null 2>&1 &&
        openssl x509 -in "$CERTS/client.crt" -noout -checkend 86400 >/dev/null 2>&1
}

setup_pki() {
    pki_ok && return 0
    # Instances of one profile started at the same moment (tests run in parallel) make the
    # PKI once: the others wait for the lock and find it made.
    mkdir -p "$LAB"
    exec 8>"$CERTS.lock"
    flock -w 120 8 || die "timed out waiting for $CERTS.lock"
    if pki_ok; then
        exec 8>&-
        return 0
    fi
    say "generating test PKI ($PKI)"
    local tmp="$CERTS.tmp.$$"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    chmod 700 "$tmp"
    cat >"$tmp/openssl.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[client_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
    local cnf="$tmp/openssl.cnf"
    # Key type and signing options per profile: CA, server, client.
    local ca_key server_key client_key sign=(-sha256)
    case $PKI in
        p256) ca_key=(EC ec_paramgen_curve:P-256); server_key=(EC ec_paramgen_curve:P-256)
              client_key=(RSA rsa_keygen_bits:2048) ;;
        p384) ca_key=(EC ec_paramgen_curve:P-384); server_key=("${ca_key[@]}")
              client_key=("${ca_key[@]}"); sign=(-sha384) ;;
        p521) ca_key=(EC ec_paramgen_curve:P-521); server_key=("${ca_key[@]}")
              client_key=("${ca_key[@]}"); sign=(-sha512) ;;
        rsapss3072) ca_key=(RSA rsa_keygen_bits:3072); server_key=(EC ec_paramgen_curve:P-256)
              client_key=(RSA rsa_keygen_bits:3072)
              sign=(-sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest) ;;
    esac
    (
        cd "$tmp"
        umask 077
        openssl genpkey -algorithm "${ca_key[0]}" -pkeyopt "${ca_key[1]}" -out ca.key 2>/dev/null
        openssl req -config "$cnf" -new -x509 -key ca.key "${sign[@]}" -days 3650 \
            -subj "/CN=keyring-okv test CA ($PKI)" -extensions ca_ext \
            -set_serial "0x$(openssl rand -hex 16)" -out ca.crt
        # Server: EC. PyKMIP's TLS 1.2 suite list has AEAD (GCM) suites only for
        # ECDSA, and rustls has no CBC suites, so an RSA server cert cannot work.
        openssl genpkey -algorithm "${server_key[0]}" -pkeyopt "${server_key[1]}" -out server.key
        openssl req -config "$cnf" -new -key server.key -subj "/CN=127.0.0.1" -out server.csr
        openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key "${sign[@]}" -days 3650 \
            -set_serial "0x$(openssl rand -hex 16)" -extfile "$cnf" -extensions server_ext \
            -out server.crt 2>/dev/null
        # Client: exactly one CN (PyKMIP uses it as the object owner),
        # EKU clientAuth (without it every request fails with AUTHENTICATION_NOT_SUCCESSFUL).
        openssl genpkey -algorithm "${client_key[0]}" -pkeyopt "${client_key[1]}" -out client.key 2>/dev/null
        openssl req -config "$cnf" -new -key client.key -subj "/CN=$CLIENT_CN" -out client.csr
        openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key "${sign[@]}" -days 3650 \
            -set_serial "0x$(openssl rand -hex 16)" -extfile "$cnf" -extensions client_ext \
            -out client.crt 2>/dev/null
        rm -f server.csr client.csr openssl.cnf
        chmod 644 ca.crt server.crt client.crt
        chmod 600 ca.key server.key client.key
    )
    rm -rf "$CERTS"
    mv "$tmp" "$CERTS"
    chmod 755 "$CERTS"
    exec 8>&-
    pki_ok || die "generated PKI does not verify"
}

# Current port of this instance: the port file if running, else the placeholder.
current_port() {
    if [[ -s $PORTFILE ]]; then cat "$PORTFILE"; else echo "$PLACEHOLDER_PORT"; fi
}

# A file already in place is left alone; a changed one is replaced by a rename. Tests read a
# conf dir (and copy it) while other tests start their own instances, so a file of it must
# never be missing, not even for a moment, and two writers must not collide.
put_file() {  # $1 mode, $2 source, $3 destination
    if cmp -s "$2" "$3" && [[ $(stat -c %a "$3") == "$1" ]]; then
        return 0
    fi
    local tmp
    tmp=$(mktemp "$3.XXXXXX")
    cat "$2" >"$tmp"
    chmod "$1" "$tmp"
    mv -f "$tmp" "$3"
}

# Conf dir laid out as the MySQL manual describes for keyring_okv_conf_dir.
write_confdir() {
    local dir=$1 port=$2
    mkdir -p "$dir/ssl"
    chmod 750 "$dir" "$dir/ssl"
    put_file 640 "$CERTS/ca.crt" "$dir/ssl/CA.pem"
    put_file 640 "$CERTS/client.crt" "$dir/ssl/cert.pem"
    put_file 600 "$CERTS/client.key" "$dir/ssl/key.pem"
    if [[ ! -f $dir/okvclient.ora ]]; then
        (umask 077; echo "SERVER=127.0.0.1:$port" >"$dir/okvclient.ora")
    fi
    chmod 600 "$dir/okvclient.ora"
}

set_confdir_port() {
    local dir=$1 port=$2
    sed -i "s/^SERVER=.*/SERVER=127.0.0.1:$port/" "$dir/okvclient.ora"
}

write_server_conf() {
    # Keep an existing file (local edits survive) unless it points at another lab location.
    if [[ -f $SERVER_CONF ]] && grep -qxF "certificate_path=$CERTS/server.crt" "$SERVER_CONF" &&
        grep -qxF "database_path=$DB" "$SERVER_CONF"; then
        return 0
    fi
    mkdir -p "$STATE"
    cat >"$SERVER_CONF" <<EOF
[server]
hostname=127.0.0.1
port=$(current_port)
certificate_path=$CERTS/server.crt
key_path=$CERTS/server.key
ca_path=$CERTS/ca.crt
auth_suite=TLS1.2
policy_path=$POLICIES
enable_tls_client_auth=True
tls_cipher_suites=
    TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
    TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
logging_level=INFO
database_path=$DB
EOF
}

cmd_setup() {
    command -v openssl >/dev/null || die "openssl not found"
    mkdir -p "$LAB" "$POLICIES" "$STATE"
    setup_venv
    setup_pki
    local main_port=$PLACEHOLDER_PORT
    [[ ! -s $LAB/port ]] || main_port=$(cat "$LAB/port")
    # Each instance writes its own conf dir only: a named instance started by one test must
    # not rewrite the main one, which other tests are reading at that moment.
    if [[ -z $NAME ]]; then
        [[ $PKI == p256 ]] || die "KEYRING_OKV_PYKMIP_PKI=$PKI is for named instances only"
        write_confdir "$MAIN_CONFDIR" "$main_port"
    else
        write_confdir "$CONFDIR" "$(current_port)"
    fi
    write_server_conf
}

# ---------------------------------------------------------------------------------------
# process control
# ---------------------------------------------------------------------------------------

now() { echo "${EPOCHREALTIME/[.,]/}"; }   # microseconds

tcp_answers() {  # $1 port
    timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
}

# Process group recorded in the pid file, if any member of it is still a PyKMIP server.
live_pgid() {
    [[ -s $PIDFILE ]] || return 1
    local pgid
    pgid=$(cat "$PIDFILE")
    [[ $pgid =~ ^[0-9]+$ ]] || return 1
    pgrep -g "$pgid" -f pykmip-server >/dev/null 2>&1 || return 1
    echo "$pgid"
}

is_running() {
    local pgid port
    pgid=$(live_pgid) || return 1
    kill -0 "$pgid" 2>/dev/null || return 1
    [[ -s $PORTFILE ]] || return 1
    port=$(cat "$PORTFILE")
    tcp_answers "$port"
}

pick_port() {
    "$VENV/bin/python" -c '
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# Any live (non-zombie) process in the group? Zombies are already dead; this machine's
# init may take a second or two to reap them.
group_alive() {
    ps -o stat= -g "$1" 2>/dev/null | grep -qv '^Z'
}

kill_group() {  # $1 pgid; SIGINT, bounded wait, then SIGKILL
    local pgid=$1 deadline sig=INT
    # Leader gone (crashed or killed): its helpers do not shut down on SIGINT.
    ps -o stat= -p "$pgid" 2>/dev/null | grep -qv '^Z' || sig=KILL
    kill -"$sig" -- "-$pgid" 2>/dev/null || return 0
    deadline=$(($(now) + STOP_TIMEOUT * 1000000))
    while group_alive "$pgid"; do
        if (($(now) > deadline)); then
            say "did not stop within ${STOP_TIMEOUT}s after SIGINT, sending SIGKILL"
            kill -KILL -- "-$pgid" 2>/dev/null || true
            local i
            for i in $(seq 50); do
                group_alive "$pgid" || break
                sleep 0.1
            done
            break
        fi
        sleep 0.05
    done
}

show_failure_logs() {
    echo "--- last lines of $LOG ---" >&2
    tail -n 25 "$LOG" >&2 2>/dev/null || true
    echo "--- last lines of $CONSOLE ---" >&2
    tail -n 15 "$CONSOLE" >&2 2>/dev/null || true
}

# One start attempt on a fresh port. Returns 0 ready, 1 failed, 2 port taken (retry).
start_once() {
    local port pgid deadline
    port=$(pick_port)
    sed -i "s/^port=.*/port=$port/" "$SERVER_CONF"
    set_confdir_port "$CONFDIR" "$port"
    echo "$port" >"$PORTFILE"
    [[ ! -f $LOG ]] || mv -f "$LOG" "$LOG.prev"
    [[ ! -f $CONSOLE ]] || mv -f "$CONSOLE" "$CONSOLE.prev"
    rm -f "$PIDFILE"

    # setsid: own session and process group (pgid == pid written below), so stop can
    # signal the server and its two helper processes (policy monitor, multiprocessing
    # manager) together. Detached from our stdio so callers' pipes are not held open.
    # The interpreter has been seen to die of SIGSEGV under concurrent test load (inside
    # libpython, cause not found): scripts/pykmip_serve.py holds the listening socket and
    # starts a new server process on it at once, on the same database, so that connections
    # made meanwhile wait instead of being refused; the crash leaves its Python traceback
    # (faulthandler) and a note in the console log. SIGINT from `stop` ends both.
    echo "$UNIQUE_NAMES" >"$MODEFILE"
    PYTHONFAULTHANDLER=1 KEYRING_OKV_PYKMIP_UNIQUE_NAMES=$UNIQUE_NAMES setsid bash -c '
        echo $$ >"$1"
        shift
        exec "$@"' \
        _ "$PIDFILE" "$VENV/bin/python" -W ignore "$SCRIPT_DIR/pykmip_serve.py" 127.0.0.1 "$port" \
        "$VENV/bin/pykmip-server" -f "$SERVER_CONF" -l "$LOG" \
        </dev/null >"$CONSOLE" 2>&1 &

    deadline=$(($(now) + START_TIMEOUT * 1000000))
    pgid=""
    while :; do
        if [[ -z $pgid && -s $PIDFILE ]]; then pgid=$(cat "$PIDFILE"); fi
        if [[ -n $pgid ]]; then
            # A failed start (e.g. bind error) does not make pykmip-server exit: its
            # helper processes keep it alive. Watch its stderr for the traceback too.
            if grep -q "Address already in use" "$LOG" "$CONSOLE" 2>/dev/null; then
                kill_group "$pgid"
                return 2
            fi
            if ! kill -0 "$pgid" 2>/dev/null || grep -q "^Traceback" "$CONSOLE" 2>/dev/null; then
                say "server failed during start-up"
                show_failure_logs
                kill_group "$pgid"
                return 1
            fi
            if grep -q "Starting connection service" "$LOG" 2>/dev/null && tcp_answers "$port"; then
                return 0
            fi
        fi
        if (($(now) > deadline)); then
            say "not ready within ${START_TIMEOUT}s"
            show_failure_logs
            [[ -z $pgid ]] || kill_group "$pgid"
            return 1
        fi
        sleep 0.05
    done
}

UNIQUE_NAMES=${KEYRING_OKV_PYKMIP_UNIQUE_NAMES:-0}
[[ $UNIQUE_NAMES == 0 || $UNIQUE_NAMES == 1 ]] || { echo "pykmip: KEYRING_OKV_PYKMIP_UNIQUE_NAMES must be 0 or 1" >&2; exit 2; }

cmd_start() {
    if is_running && [[ "$(cat "$MODEFILE" 2>/dev/null || echo 0)" != "$UNIQUE_NAMES" ]]; then
        say "running with KEYRING_OKV_PYKMIP_UNIQUE_NAMES=$(cat "$MODEFILE" 2>/dev/null || echo 0); restarting it with $UNIQUE_NAMES"
        cmd_stop
    fi
    if is_running; then
        say "already running on 127.0.0.1:$(cat "$PORTFILE") (pid $(cat "$PIDFILE"))"
        return 0
    fi
    cmd_setup
    # Stale group from a crashed/killed run: clean it up first.
    local pgid rc attempt
    if pgid=$(live_pgid); then
        say "cleaning up stale server process group $pgid"
        kill_group "$pgid"
    fi
    rm -f "$PIDFILE" "$PORTFILE"
    say "starting server"
    for attempt in 1 2 3; do
        rc=0
        start_once || rc=$?
        case $rc in
            0) say "ready on 127.0.0.1:$(cat "$PORTFILE") (pid $(cat "$PIDFILE"))"; return 0 ;;
            2) say "port taken, retrying with another port" ;;
            *) rm -f "$PIDFILE" "$PORTFILE"; exit 1 ;;
        esac
    done
    rm -f "$PIDFILE" "$PORTFILE"
    die "could not bind a free port after 3 attempts"
}

cmd_stop() {
    local pgid
    if pgid=$(live_pgid); then
        say "stopping server (pid $pgid)"
        kill_group "$pgid"
        if group_alive "$pgid"; then
            die "process group $pgid still alive"
        fi
    fi
    rm -f "$PIDFILE" "$PORTFILE"
}

# Simulated crash (failover tests): SIGKILL the whole group at once, no clean shutdown.
cmd_kill() {
    local pgid i
    if pgid=$(live_pgid); then
        kill -KILL -- "-$pgid" 2>/dev/null || true
        for i in $(seq 50); do
            group_alive "$pgid" || break
            sleep 0.1
        done
    fi
    rm -f "$PIDFILE" "$PORTFILE"
}

cmd_status() {
    if is_running; then
        echo "running pid=$(cat "$PIDFILE") port=$(cat "$PORTFILE") confdir=$CONFDIR log=$LOG"
    elif live_pgid >/dev/null; then
        echo "unhealthy pid=$(cat "$PIDFILE") (process alive, port not answering) log=$LOG"
        return 1
    else
        echo "stopped"
        return 3
    fi
}

cmd_port() {
    [[ -s $PORTFILE ]] && live_pgid >/dev/null || die "not running"
    cat "$PORTFILE"
}

cmd_env() {
    local port
    port=$(cmd_port)
    printf '%s_PORT=%s\n' "$VAR_PREFIX" "$port"
    printf '%s_CONFDIR=%q\n' "$VAR_PREFIX" "$CONFDIR"
    printf 'KEYRING_OKV_PYKMIP_CERTS=%q\n' "$CERTS"
}

cmd_reset() {
    cmd_stop
    rm -f "$DB" "$DB-journal" "$DB-wal" "$DB-shm"
}

usage() {
    sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

case ${1:-} in
    setup) cmd_setup ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    kill) cmd_kill ;;
    restart) cmd_stop; cmd_start ;;
    status) cmd_status ;;
    port) cmd_port ;;
    confdir) echo "$CONFDIR" ;;
    env) cmd_env ;;
    reset) cmd_reset ;;
    log) tail -n "${2:-50}" "$LOG" ;;
    tool)
        shift
        port_args=()
        [[ -s $PORTFILE ]] && port_args=(--port "$(cat "$PORTFILE")")
        exec "$VENV/bin/python" -W ignore "$SCRIPT_DIR/pykmip_tool.py" "${port_args[@]}" "$@" ;;
    *) usage ;;
esac
