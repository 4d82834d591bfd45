#!/usr/bin/env bash
# mariadb-real.sh — provision and run real MariaDB servers for the kmip_key_management tests,
# the benchmark and the demo. Two targets, one plugin binary:
#   host    MariaDB 10.11 from the machine's own Debian 12 packages (the system service is never
#           started; each instance is a mariadbd with its own datadir under the lab directory)
#   chroot  MariaDB 11.8 from Debian trixie (or another suite) in a debootstrap chroot
#
#   install                      install the target's packages (idempotent)
#   start NAME [mariadbd args]   init (mariadb-install-db) + start instance NAME; the args are
#                                stored and used again by later starts (no-op if it answers ping)
#   stop NAME | stop-all         shut down one / every instance of the target
#   restart NAME [args...]       stop + start; args replace the stored ones if given
#   reset NAME                   stop + wipe the instance
#   sql NAME "SQL"               run SQL as root over the socket (batch, no column names; - = stdin)
#   run NAME CMD [ARGS...]       run a program of the target (e.g. mariadb-backup) as mariadbd
#                                sees the file system (with /proc, which mariadb-backup needs)
#   conf NAME SRCDIR             copy a conf dir into the instance (as conf/); prints its path as
#                                mariadbd sees it
#   log NAME | path NAME         host path of the error log / of the instance directory
#   inner NAME                   the instance directory as mariadbd sees it
#   version                      the target's mariadbd --version
#   root                         host path of the chroot (chroot target)
#   selftest                     quick end-to-end check of this script
#
# Every start copies the plugin library into the instance's own plugin directory (as
# kmip_key_management.so), with file_key_management.so where the target ships it.
#
# Environment:
#   KEYRING_OKV_MARIADB_TARGET   host (default) or chroot
#   KEYRING_OKV_MARIADB_SUITE    Debian suite of the chroot (default trixie)
#   KEYRING_OKV_MARIADB_ROOT     chroot location (default /var/cache/keyring-okv/mariadbroot-<suite>)
#   KEYRING_OKV_MARIADB_MIRROR   Debian mirror for debootstrap (default: the host's configured one)
#   KEYRING_OKV_MARIADB_PLUGIN   the plugin library (default <repo>/target/release/libkmip_key_management.so)
#   KEYRING_OKV_MARIADB_INCLUDE  an option file (path as mariadbd sees it) the instance's my.cnf
#                                includes at the end (the package test: the packaged snippet)
#   KEYRING_OKV_LAB              lab root of host instances (default <repo>/.lab; instances in mariadb-host/)
#   KEYRING_OKV_MARIADB_START_TIMEOUT / _STOP_TIMEOUT   seconds (default 60 / 60)
#   KEYRING_OKV_MARIADB_AS_SERVICE  1: the instances run as Debian's mariadb.service runs mariadbd:
#                                as the target's `mysql` account (created if missing), umask 007,
#                                in a private mount namespace where /etc and /usr are read-only
#                                (ProtectSystem=full; in the chroot: the chroot's own); a write
#                                probe as mysql must fail with EROFS before mariadbd (and
#                                mariadb-install-db) start, else the start fails. The instance
#                                directory belongs to mysql, and /var/lib/mysql-keyring exists as
#                                mysql:mysql 0750. Host instances then live in
#                                KEYRING_OKV_MARIADB_SERVICE_BASE (default
#                                /var/lib/keyring-okv-lab/mariadb-host-<checkout hash>), a place
#                                the mysql account can reach wherever the checkout is: give the
#                                variable to every command on such an instance. 0 (default): root.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(dirname "$SCRIPT_DIR")"
SELF="$SCRIPT_DIR/$(basename "${BASH_SOURCE[0]}")"
TARGET="${KEYRING_OKV_MARIADB_TARGET:-host}"
SUITE="${KEYRING_OKV_MARIADB_SUITE:-trixie}"
START_TIMEOUT="${KEYRING_OKV_MARIADB_START_TIMEOUT:-60}"
STOP_TIMEOUT="${KEYRING_OKV_MARIADB_STOP_TIMEOUT:-60}"
PLUGIN="${KEYRING_OKV_MARIADB_PLUGIN:-$REPO_ROOT/target/release/libkmip_key_management.so}"
HOST_PACKAGES=(mariadb-server mariadb-client mariadb-backup util-linux)
SERVICE="${KEYRING_OKV_MARIADB_AS_SERVICE:-0}"
# The sealed key cache's default directory (writable by the service's account, outside /etc).
KEYRING_DIR=/var/lib/mysql-keyring
CHROOT_PACKAGES=(mariadb-server-core mariadb-client-core mariadb-backup util-linux)

say() { echo "mariadb-real[$TARGET]: $*" >&2; }
die() { echo "mariadb-real[$TARGET]: error: $*" >&2; exit 1; }

tail_log() {
    local f="$1" n="${2:-30}"
    if [[ -s "$f" ]]; then
        echo "---- last $n lines of $f ----" >&2
        tail -n "$n" "$f" >&2 || true
        echo "----" >&2
    fi
}

need_root() { [[ $EUID -eq 0 ]] || die "must run as root"; }

[[ "$SERVICE" == 0 || "$SERVICE" == 1 ]] || die "KEYRING_OKV_MARIADB_AS_SERVICE must be 0 or 1, not '$SERVICE'"

# X: host path prefix of the target's file system; RUN: how to run one of its programs;
# BASE: where instances live, as mariadbd sees it.
case "$TARGET" in
    host)
        ROOT=""
        X=""
        RUN=()
        LAB="${KEYRING_OKV_LAB:-$REPO_ROOT/.lab}"
        [[ "$LAB" == /* ]] || LAB="$PWD/$LAB"
        BASE="$LAB/mariadb-host"
        if [[ "$SERVICE" == 1 ]]; then
            # The checkout may sit where mysql cannot reach (/root/...).
            BASE="${KEYRING_OKV_MARIADB_SERVICE_BASE:-/var/lib/keyring-okv-lab/mariadb-host-$(printf %s "$REPO_ROOT" | sha256sum | cut -c1-12)}"
        fi
        ;;
    chroot)
        ROOT="${KEYRING_OKV_MARIADB_ROOT:-/var/cache/keyring-okv/mariadbroot-$SUITE}"
        ROOT="${ROOT%/}"
        X="$ROOT"
        RUN=(chroot "$ROOT")
        BASE="/srv/mariadb"
        ;;
    *) die "KEYRING_OKV_MARIADB_TARGET must be host or chroot, not '$TARGET'" ;;
esac

valid_name() {
    [[ "${1:-}" =~ ^[A-Za-z0-9_.-]+$ && "$1" != . && "$1" != .. ]] \
        || die "invalid or missing instance name '${1:-}' (use [A-Za-z0-9_.-])"
}

# Instance paths: $C as mariadbd sees it, $I on the host.
inst() {
    valid_name "$1"
    NAME="$1"
    C="$BASE/$NAME"
    I="$X$C"
    CNF="$C/my.cnf"
}

mariadbd_version() { "${RUN[@]}" /usr/sbin/mariadbd --version 2>/dev/null; }

is_installed() {
    local v
    [[ -x "$X/usr/sbin/mariadbd" && -x "$X/usr/bin/mariadb" && -x "$X/usr/bin/mariadb-backup" ]] || return 1
    if [[ "$TARGET" == chroot ]]; then [[ -f "$ROOT/.keyring-okv-mariadb-installed" ]] || return 1; fi
    v="$(mariadbd_version)" || return 1
    [[ "$v" =~ Ver\ 1[0-9]\. ]]
}

# The Debian mirror the host itself uses (deb822 or one-line format); no fallback.
host_mirror() {
    local f u
    for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -r "$f" ]] || continue
        u="$(grep -hoE '^(URIs:[[:space:]]*|deb[[:space:]]+(\[[^]]*\][[:space:]]+)?)[a-z]+://[^[:space:]]+/debian/?([[:space:]]|$)' "$f" 2>/dev/null \
            | grep -oE '[a-z]+://[^[:space:]]+' | head -n1 || true)"
        if [[ -n "$u" ]]; then echo "${u%/}"; return 0; fi
    done
    return 1
}

# ---------------------------------------------------------------- install
install_host() {
    local log="${TMPDIR:-/tmp}/keyring-okv-mariadb-host-apt.log" own_policy=0
    # Installing must not start the system's MariaDB service: policy-rc.d refuses it.
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        own_policy=1
    fi
    say "apt-get install ${HOST_PACKAGES[*]} (services are not started)..."
    local rc=0
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        --no-install-recommends "${HOST_PACKAGES[@]}"; } >"$log" 2>&1 || rc=$?
    ((own_policy)) && rm -f /usr/sbin/policy-rc.d
    if ((rc != 0)); then tail_log "$log"; die "apt-get install failed (log: $log)"; fi
}

install_chroot() {
    mkdir -p "$(dirname "$ROOT")"
    local log mirror
    if ! command -v debootstrap >/dev/null 2>&1; then
        say "installing debootstrap on the host..."
        log="$(dirname "$ROOT")/host-apt.log"
        if ! (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap) >"$log" 2>&1; then
            tail_log "$log"
            die "apt-get install debootstrap failed on the host"
        fi
    fi
    if [[ -e "$ROOT" && ( -d "$ROOT/debootstrap" || ! -x "$ROOT/usr/bin/apt-get" ) ]]; then
        stop_target_mariadbds
        say "removing incomplete chroot $ROOT..."
        rm -rf --one-file-system "$ROOT"
    fi
    if [[ ! -e "$ROOT" ]]; then
        mirror="${KEYRING_OKV_MARIADB_MIRROR:-}"
        [[ -n "$mirror" ]] || mirror="$(host_mirror)" \
            || die "no Debian mirror in the host's apt sources; set KEYRING_OKV_MARIADB_MIRROR"
        log="$(dirname "$ROOT")/debootstrap-$SUITE.log"
        say "debootstrap minbase $SUITE from $mirror into $ROOT (~60 s)..."
        if ! debootstrap --variant=minbase "$SUITE" "$ROOT" "$mirror" >"$log" 2>&1; then
            tail_log "$log"
            rm -rf --one-file-system "$ROOT"
            die "debootstrap failed (log: $log)"
        fi
    fi
    # A frozen mirror snapshot may carry an expired Release file.
    echo 'Acquire::Check-Valid-Until "false";' >"$ROOT/etc/apt/apt.conf.d/99keyring-okv"
    printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
    chmod 755 "$ROOT/usr/sbin/policy-rc.d"
    log="$ROOT/var/log/keyring-okv-apt.log"
    say "apt-get install ${CHROOT_PACKAGES[*]} in the chroot..."
    if ! chroot "$ROOT" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
            --no-install-recommends "${CHROOT_PACKAGES[@]}" >"$log" 2>&1; then
        say "apt-get install failed; running apt-get update and retrying..."
        if ! { chroot "$ROOT" apt-get update -q &&
               chroot "$ROOT" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
                   --no-install-recommends "${CHROOT_PACKAGES[@]}"; } >>"$log" 2>&1; then
            tail_log "$log"
            die "apt-get install in the chroot failed (log: $log)"
        fi
    fi
    chroot "$ROOT" apt-get clean
    mariadbd_version >"$ROOT/.keyring-okv-mariadb-installed"
}

cmd_install() {
    need_root
    local lock
    if [[ "$TARGET" == chroot ]]; then lock="$ROOT.lock"; mkdir -p "$(dirname "$ROOT")"; else lock="${TMPDIR:-/tmp}/keyring-okv-mariadb-host.lock"; fi
    exec 9>"$lock"
    flock -w 600 9 || die "timed out waiting for the install lock $lock"
    if is_installed; then
        ensure_mysql_account
        say "installed: $(mariadbd_version)"
        return 0
    fi
    local t0=$SECONDS
    if [[ "$TARGET" == host ]]; then install_host; else install_chroot; fi
    is_installed || die "mariadbd is not usable after the install: $(mariadbd_version 2>&1 || true)"
    ensure_mysql_account
    say "installed in $((SECONDS - t0)) s: $(mariadbd_version)"
}

# The target's `mysql` account, as mariadb-server's postinst makes it (the chroot's packages do
# not); in the chroot with the host's ids when they are free there, so that `ls -l` on the host
# names the owner too.
ensure_mysql_account() {
    grep -q '^mysql:' "$X/etc/passwd" && return 0
    local uid="" gid="" run=()
    if [[ "$TARGET" == chroot ]]; then
        run=(chroot "$ROOT")
        uid="$(id -u mysql 2>/dev/null || true)"
        gid="$(id -g mysql 2>/dev/null || true)"
    fi
    if ! grep -q '^mysql:' "$X/etc/group"; then
        if [[ -n "$gid" ]] && ! cut -d: -f3 "$X/etc/group" | grep -qx "$gid"; then
            "${run[@]}" groupadd --system --gid "$gid" mysql
        else
            "${run[@]}" groupadd --system mysql
        fi
    fi
    local ids=()
    if [[ -n "$uid" ]] && ! cut -d: -f3 "$X/etc/passwd" | grep -qx "$uid"; then ids=(--uid "$uid"); fi
    "${run[@]}" useradd --system ${ids[@]+"${ids[@]}"} --gid mysql --home-dir /nonexistent \
        --no-create-home --shell /usr/sbin/nologin mysql
    say "created the account mysql ($("${run[@]}" id mysql))"
}

require_installed() { is_installed || die "MariaDB ($TARGET) is not installed; run: $0 install"; }

# ---------------------------------------------------------------- instances
write_cnf() {
    mkdir -p "$I/data" "$I/tmp" "$I/plugin"
    cat >"$I/my.cnf" <<EOF
# generated by mariadb-real.sh for instance $NAME (paths as mariadbd sees them)
[mariadbd]
user                    = $(if [[ "$SERVICE" == 1 ]]; then echo mysql; else echo root; fi)
datadir                 = $C/data
socket                  = $C/mariadbd.sock
pid-file                = $C/mariadbd.pid
log-error               = $C/error.log
tmpdir                  = $C/tmp
plugin-dir              = $C/plugin
skip-networking
server-id               = 1
log-bin                 = binlog
innodb_buffer_pool_size = 64M
innodb_log_file_size    = 32M

[client]
user   = root
socket = $C/mariadbd.sock
EOF
    # The package test: the instance also reads the packaged snippet, as a server configured
    # through /etc/mysql/mariadb.conf.d/ does.
    if [[ -n "${KEYRING_OKV_MARIADB_INCLUDE:-}" ]]; then
        printf '!include %s\n' "$KEYRING_OKV_MARIADB_INCLUDE" >>"$I/my.cnf"
    fi
}

install_plugins() {
    [[ -f "$PLUGIN" ]] || die "plugin library $PLUGIN not found (cargo build --release, or set KEYRING_OKV_MARIADB_PLUGIN)"
    # Copy, then rename: a running mariadbd keeps its mapping of the old file.
    install -m 644 "$PLUGIN" "$I/plugin/.kmip_key_management.so.new"
    mv -f "$I/plugin/.kmip_key_management.so.new" "$I/plugin/kmip_key_management.so"
    if [[ -f "$X/usr/lib/mysql/plugin/file_key_management.so" ]]; then
        cp -f "$X/usr/lib/mysql/plugin/file_key_management.so" "$I/plugin/"
    fi
}

inst_pid() {
    local pid
    [[ -s "$I/mariadbd.pid" ]] || return 0
    pid="$(tr -dc 0-9 <"$I/mariadbd.pid")"
    [[ -n "$pid" ]] || return 0
    # A recycled pid must not be taken for ours: it must be a mariadbd with our root.
    if [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == mariadbd &&
          "$(readlink "/proc/$pid/root" 2>/dev/null)" == "$(readlink -f "${ROOT:-/}")" ]]; then
        echo "$pid"
    fi
}

ping_ok() {
    [[ -S "$I/mariadbd.sock" ]] || return 1
    # mariadb-admin is not in every target's client package; the client itself is.
    "${RUN[@]}" /usr/bin/mariadb --defaults-file="$CNF" --connect-timeout=2 -e 'SELECT 1' >/dev/null 2>&1 </dev/null
}

# How mariadbd (and mariadb-install-db) run (into LAUNCH): as root, or as the service does (see
# the header): a private mount namespace with /etc and /usr read-only (ProtectSystem=full), /proc
# in the chroot (a real host has one; it goes away with the namespace), umask 007 (the unit's
# UMask), then the program as mysql:mysql. The probe proves /etc is read-only for the account in
# that very namespace.
SERVICE_SH='set -e
root=$1 probe=$2
shift 2
for d in etc usr; do
    mount --bind "$root/$d" "$root/$d"
    mount -o remount,bind,ro "$root/$d"
done
if [ -n "$root" ]; then
    [ -e "$root/proc/self" ] || mount -t proc proc "$root/proc"
    uid=$(chroot "$root" id -u mysql)
    gid=$(chroot "$root" id -g mysql)
    as() { chroot --userspec="$uid:$gid" --groups="$gid" "$root" "$@"; }
else
    as() { setpriv --reuid=mysql --regid=mysql --init-groups "$@"; }
fi
umask 007
if out=$(as touch /etc/.keyring-okv-write-probe 2>&1); then
    echo "service mode: /etc is writable by the mysql account; refusing to start" >&2
    exit 97
fi
case $out in
    *"Read-only file system"*) printf "%s\n" "$out" >"$probe" ;;
    *) echo "service mode: the write probe failed otherwise than EROFS: $out" >&2; exit 97 ;;
esac
if [ -n "$root" ]; then
    exec chroot --userspec="$uid:$gid" --groups="$gid" "$root" "$@"
fi
exec setpriv --reuid=mysql --regid=mysql --init-groups "$@"'

set_launch() {
    if [[ "$SERVICE" != 1 ]]; then
        LAUNCH=(${RUN[@]+"${RUN[@]}"})
        return 0
    fi
    LAUNCH=(unshare --mount --propagation private -- /bin/sh -c "$SERVICE_SH" sh "$ROOT" "$I/etc-probe")
}

# What a package install leaves for the service: the account, the instance (data, logs, socket,
# pid file) and the keyring directory owned by it.
prepare_service() {
    [[ "$SERVICE" == 1 ]] || return 0
    command -v unshare >/dev/null 2>&1 || die "unshare (util-linux) is missing; run: $0 install"
    ensure_mysql_account
    if [[ ! -d "$X$KEYRING_DIR" ]]; then
        install -d -m 750 "$X$KEYRING_DIR"
        "${RUN[@]}" chown mysql:mysql "$KEYRING_DIR"
    fi
    "${RUN[@]}" chown -R mysql:mysql "$C"
    chmod 750 "$I"
    chmod 644 "$I/my.cnf"
    rm -f "$I/etc-probe"
}

save_args() { if (($#)); then printf '%s\0' "$@" >"$I/args"; else : >"$I/args"; fi; }
load_args() { ARGS=(); if [[ -s "$I/args" ]]; then mapfile -d '' -t ARGS <"$I/args"; fi; }

initialise() {
    [[ -f "$I/.initialized" ]] && return 0
    rm -rf "$I/data"
    mkdir -p "$I/data"
    : >"$I/error.log"
    say "initialising instance $NAME (mariadb-install-db)..."
    prepare_service
    set_launch
    if ! ${LAUNCH[@]+"${LAUNCH[@]}"} /usr/bin/mariadb-install-db --defaults-file="$CNF" --plugin-dir="$C/plugin" \
            --auth-root-authentication-method=normal --skip-test-db --force ${ARGS[@]+"${ARGS[@]}"} \
            >"$I/install-db.out" 2>&1 </dev/null; then
        tail_log "$I/error.log"
        tail_log "$I/install-db.out"
        die "mariadb-install-db failed for instance $NAME"
    fi
    touch "$I/.initialized"
}

cmd_start() {
    need_root
    inst "${1:-}"; shift
    require_installed
    mkdir -p "$I"
    exec 8>"$I/.lock"
    flock -w 120 8 || die "timed out waiting for the lock on instance $NAME"
    if ping_ok; then say "instance $NAME already running"; return 0; fi
    local pid
    pid="$(inst_pid)"
    [[ -z "$pid" ]] || die "instance $NAME (pid $pid) runs but does not answer ping; try: $0 stop $NAME"
    if (($#)); then save_args "$@"; elif [[ ! -f "$I/args" ]]; then save_args; fi
    load_args
    write_cnf
    install_plugins
    initialise
    rm -f "$I/mariadbd.pid" "$I/mariadbd.sock"
    local as=root
    [[ "$SERVICE" == 1 ]] && as="mysql, /etc read-only"
    echo "=== $(date -u +%FT%TZ) start ($as) ${ARGS[*]:-}" >>"$I/error.log"
    say "starting instance $NAME ($as)${ARGS[*]:+ with ${ARGS[*]}}..."
    prepare_service
    set_launch
    setsid ${LAUNCH[@]+"${LAUNCH[@]}"} /usr/sbin/mariadbd --defaults-file="$CNF" ${ARGS[@]+"${ARGS[@]}"} \
        </dev/null >>"$I/mariadbd.out" 2>&1 8>&- 9>&- &
    pid=$!
    if ! wait_ready "$pid"; then
        tail_log "$I/error.log" 40
        die "instance $NAME did not become ready"
    fi
    say "instance $NAME ready (pid $(inst_pid), socket $I/mariadbd.sock)"
}

wait_ready() {
    local pid="$1" deadline=$((SECONDS + START_TIMEOUT))
    while ((SECONDS < deadline)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            wait "$pid" 2>/dev/null || true
            say "mariadbd (pid $pid) exited during startup"
            return 1
        fi
        if ping_ok; then return 0; fi
        sleep 0.2
    done
    say "timed out after ${START_TIMEOUT}s waiting for mariadbd (pid $pid)"
    kill -KILL "$pid" 2>/dev/null || true
    return 1
}

stop_pid() {
    local pid="$1" deadline=$((SECONDS + STOP_TIMEOUT))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
        say "mariadbd pid $pid still alive after ${STOP_TIMEOUT}s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    fi
}

cmd_stop() {
    need_root
    inst "${1:-}"
    [[ -d "$I" ]] || return 0
    local pid
    pid="$(inst_pid)"
    [[ -n "$pid" ]] || return 0
    say "stopping instance $NAME (pid $pid)..."
    "${RUN[@]}" /usr/bin/mariadb --defaults-file="$CNF" --connect-timeout=5 -e SHUTDOWN \
        >/dev/null 2>&1 </dev/null || kill -TERM "$pid" 2>/dev/null || true
    stop_pid "$pid"
}

# Every mariadbd of this target's instances (covers instances whose files were removed).
stop_target_mariadbds() {
    local p real
    real="$(readlink -f "${ROOT:-/}" 2>/dev/null)" || return 0
    for p in /proc/[0-9]*; do
        [[ "$(cat "$p/comm" 2>/dev/null)" == mariadbd ]] || continue
        [[ "$(readlink "$p/root" 2>/dev/null)" == "$real" ]] || continue
        tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -q -- "--defaults-file=$BASE/" || continue
        say "terminating mariadbd pid ${p#/proc/}"
        kill -TERM "${p#/proc/}" 2>/dev/null || true
        stop_pid "${p#/proc/}"
    done
    return 0
}

cmd_stop_all() {
    need_root
    local d
    for d in "$X$BASE"/*/; do
        [[ -d "$d" ]] || continue
        cmd_stop "$(basename "$d")" || true
    done
    stop_target_mariadbds
}

cmd_restart() {
    local name="${1:-}"
    valid_name "$name"; shift
    cmd_stop "$name"
    if (($#)); then inst "$name"; mkdir -p "$I"; save_args "$@"; fi
    cmd_start "$name"
}

cmd_reset() {
    local name="${1:-}"
    cmd_stop "$name"
    inst "$name"
    [[ -d "$I" ]] || return 0
    rm -rf --one-file-system "$I"
}

cmd_sql() {
    inst "${1:-}"
    local q="${2:-}"
    [[ -n "$q" ]] || die "usage: $0 sql NAME \"SQL\" (- reads SQL from stdin)"
    [[ -f "$I/my.cnf" ]] || die "instance $NAME does not exist; run: $0 start $NAME"
    if [[ "$q" == - ]]; then
        "${RUN[@]}" /usr/bin/mariadb --defaults-file="$CNF" --batch --skip-column-names
    else
        "${RUN[@]}" /usr/bin/mariadb --defaults-file="$CNF" --batch --skip-column-names -e "$q" </dev/null
    fi
}

cmd_run() {
    inst "${1:-}"; shift
    (($#)) || die "usage: $0 run NAME CMD [ARGS...]"
    if [[ "$TARGET" == chroot ]]; then
        # mariadb-backup crashes without /proc; mount one in a private mount namespace, so
        # that it goes away with the command and the host's mounts stay as they are.
        unshare --mount --propagation private -- /bin/sh -c \
            'mount -t proc proc "$0/proc" && exec chroot "$0" "$@"' "$ROOT" "$@"
    else
        "$@"
    fi
}

cmd_conf() {
    inst "${1:-}"
    local src="${2:-}"
    [[ -d "$src" ]] || die "usage: $0 conf NAME SRCDIR"
    mkdir -p "$I"
    rm -rf "$I/conf"
    cp -a "$src" "$I/conf"
    echo "$C/conf"
}

cmd_selftest() {
    need_root
    local pass=0 fail=0 v
    check() {
        local d="$1"; shift
        if "$@"; then pass=$((pass + 1)); echo "ok   - $d"; else fail=$((fail + 1)); echo "FAIL - $d"; fi
    }
    (cmd_install) || true
    check "installed" is_installed
    (cmd_reset selftest) || true
    check "start selftest" bash "$SELF" start selftest
    v="$(cmd_sql selftest "SELECT VERSION()" 2>&1 || true)"
    echo "     version: $v"
    check "SELECT VERSION() is MariaDB" bash -c '[[ "$0" == *MariaDB* ]]' "$v"
    check "start is a no-op when running" bash "$SELF" start selftest
    check "restart" bash "$SELF" restart selftest
    check "stop" bash "$SELF" stop selftest
    inst selftest
    check "no mariadbd left" bash -c '[[ -z "$0" ]]' "$(inst_pid)"
    (cmd_reset selftest) || true
    echo "mariadb-real selftest: $pass passed, $fail failed"
    ((fail == 0))
}

usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; }

main() {
    local cmd="${1:-}"
    (($#)) && shift
    case "$cmd" in
        install) cmd_install ;;
        start) cmd_start "$@" ;;
        stop) cmd_stop "$@" ;;
        stop-all) cmd_stop_all ;;
        restart) cmd_restart "$@" ;;
        reset) cmd_reset "$@" ;;
        sql) cmd_sql "$@" ;;
        run) cmd_run "$@" ;;
        conf) cmd_conf "$@" ;;
        log) inst "${1:-}"; echo "$I/error.log" ;;
        path) inst "${1:-}"; echo "$I" ;;
        inner) inst "${1:-}"; echo "$C" ;;
        version) require_installed; mariadbd_version ;;
        root) [[ "$TARGET" == chroot ]] || die "the host target has no chroot"; echo "$ROOT" ;;
        selftest) cmd_selftest ;;
        -h | --help | help) usage ;;
        *) usage >&2; die "unknown command '${cmd}'" ;;
    esac
}

main "$@"
