#!/usr/bin/env bash
# mysql-real.sh — provision and run real mysqld instances (Debian sid, in a
# debootstrap chroot) for keyring_okv end-to-end tests, the demo and CI.
#
# See docs/mysql-real.md for the full description. Quick reference:
#   install                      create the chroot (idempotent)
#   start NAME [mysqld args...]  init + start instance NAME (no-op if it answers ping)
#   stop NAME | stop-all         shut down one / every instance
#   restart NAME [args...]       stop + start; args replace the stored ones if given
#   reset NAME                   stop + wipe the instance's data
#   sql NAME "SQL"               run SQL as root over the socket (batch, no column names)
#   udf NAME                     install keyring_udf and its six functions
#   log NAME | path NAME         host path of the error log / instance dir
#   root | plugin-dir            host path of the chroot / of its plugin dir
#   install-plugin SOFILE        copy a built library in as keyring_okv.so
#   copy-in SRC DEST             copy SRC (dir or file) to DEST inside the chroot
#   selftest                     quick end-to-end check of this script
#
# Environment:
#   KEYRING_OKV_MYSQL_ROOT    chroot location (default /var/cache/keyring-okv/mysqlroot)
#   KEYRING_OKV_MYSQL_PORT    TCP port for a new/started instance (default: a free one)
#   KEYRING_OKV_MYSQL_MIRROR  Debian mirror (default: the host's configured one)
#   KEYRING_OKV_MYSQL_TABLE   if 1, `sql` prints table output with column names
#   KEYRING_OKV_MYSQL_START_TIMEOUT / _STOP_TIMEOUT   seconds (default 60 / 60)
#   KEYRING_OKV_MYSQL_AS_SERVICE  1: `start`/`restart` run mysqld (and --initialize) as a
#                             production host does: as the chroot's `mysql` account (created if
#                             missing), umask 007, in a private mount namespace where the
#                             chroot's /etc and /usr are read-only (a write probe as mysql must
#                             fail with EROFS before mysqld starts, else the start fails); the
#                             instance directory belongs to mysql, and /var/lib/mysql-keyring
#                             exists as mysql:mysql 0750 (MySQL's AppArmor profile lets mysqld
#                             write only there outside its data). 0 (default): as root.
set -euo pipefail

ROOT="${KEYRING_OKV_MYSQL_ROOT:-/var/cache/keyring-okv/mysqlroot}"
ROOT="${ROOT%/}"
STAMP="$ROOT/.keyring-okv-mysql-installed"
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SELF="$SCRIPT_DIR/$(basename "${BASH_SOURCE[0]}")"
START_TIMEOUT="${KEYRING_OKV_MYSQL_START_TIMEOUT:-60}"
STOP_TIMEOUT="${KEYRING_OKV_MYSQL_STOP_TIMEOUT:-60}"
SUITE=sid
PACKAGES=(mysql-server-core mysql-client-core)
SERVICE="${KEYRING_OKV_MYSQL_AS_SERVICE:-0}"
# Where a packaged mysqld may write keyring data (Debian's AppArmor profile: rwk).
KEYRING_DIR=/var/lib/mysql-keyring

say() { echo "mysql-real: $*" >&2; }
die() { echo "mysql-real: error: $*" >&2; exit 1; }

# Print the last lines of a file to stderr (used on failures).
tail_log() {
    local f="$1" n="${2:-30}"
    if [[ -s "$f" ]]; then
        echo "---- last $n lines of $f ----" >&2
        tail -n "$n" "$f" >&2 || true
        echo "----" >&2
    fi
}

need_root() { [[ $EUID -eq 0 ]] || die "must run as root (debootstrap/chroot)"; }

[[ "$SERVICE" == 0 || "$SERVICE" == 1 ]] || die "KEYRING_OKV_MYSQL_AS_SERVICE must be 0 or 1, not '$SERVICE'"

valid_name() {
    [[ "${1:-}" =~ ^[A-Za-z0-9_.-]+$ && "$1" != . && "$1" != .. ]] \
        || die "invalid or missing instance name '${1:-}' (use [A-Za-z0-9_.-])"
}

# Instance paths: $C = inside the chroot, $I = on the host.
inst() {
    valid_name "$1"
    NAME="$1"
    C="/srv/mysql/$NAME"
    I="$ROOT$C"
    CNF="$C/my.cnf"
}

is_installed() {
    [[ -f "$STAMP" && -x "$ROOT/usr/sbin/mysqld" ]] || return 1
    local v
    v="$(chroot "$ROOT" /usr/sbin/mysqld --version 2>/dev/null)" || return 1
    [[ "$v" =~ Ver\ (9|8)\. ]]
}

require_installed() {
    is_installed || die "chroot $ROOT is not installed; run: $0 install"
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
cmd_install() {
    need_root
    mkdir -p "$(dirname "$ROOT")"
    exec 9>"$ROOT.lock"
    flock -w 600 9 || die "timed out waiting for the install lock $ROOT.lock"
    ensure_host_tools
    if is_installed; then
        ensure_global_manifest
        ensure_mysql_account
        say "already installed: $(chroot "$ROOT" /usr/sbin/mysqld --version 2>/dev/null) in $ROOT"
        return 0
    fi
    local t0=$SECONDS log
    if ! command -v debootstrap >/dev/null 2>&1; then
        say "installing debootstrap on the host..."
        log="$(dirname "$ROOT")/host-apt.log"
        if ! (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap) >"$log" 2>&1; then
            tail_log "$log"
            die "apt-get install debootstrap failed on the host"
        fi
    fi
    # A previous run left something behind without finishing: if debootstrap
    # itself did not complete, wipe and redo; otherwise resume with apt.
    if [[ -e "$ROOT" ]]; then
        stop_chroot_mysqlds
        if [[ -d "$ROOT/debootstrap" || ! -x "$ROOT/usr/bin/apt-get" ]]; then
            say "removing incomplete chroot $ROOT..."
            rm -rf --one-file-system "$ROOT"
        fi
    fi
    if [[ ! -e "$ROOT" ]]; then
        local mirror="${KEYRING_OKV_MYSQL_MIRROR:-}"
        [[ -n "$mirror" ]] || mirror="$(host_mirror)" \
            || die "no Debian mirror in the host's apt sources; set KEYRING_OKV_MYSQL_MIRROR"
        log="$(dirname "$ROOT")/debootstrap.log"
        say "debootstrap minbase $SUITE from $mirror into $ROOT (~20 s)..."
        if ! debootstrap --variant=minbase "$SUITE" "$ROOT" "$mirror" >"$log" 2>&1; then
            tail_log "$log"
            [[ -f "$ROOT/debootstrap/debootstrap.log" ]] && tail_log "$ROOT/debootstrap/debootstrap.log"
            rm -rf --one-file-system "$ROOT"
            die "debootstrap failed (log: $log)"
        fi
    fi
    # The mirror's sid may be a frozen snapshot with an expired Release file.
    echo 'Acquire::Check-Valid-Until "false";' >"$ROOT/etc/apt/apt.conf.d/99keyring-okv"
    printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
    chmod 755 "$ROOT/usr/sbin/policy-rc.d"
    log="$ROOT/var/log/keyring-okv-apt.log"
    say "apt-get install ${PACKAGES[*]} in the chroot (~5 s)..."
    if ! chroot "$ROOT" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
            --no-install-recommends "${PACKAGES[@]}" >"$log" 2>&1; then
        # Package lists may be missing/stale (e.g. after a partial run): update once and retry.
        say "apt-get install failed; running apt-get update and retrying..."
        if ! { chroot "$ROOT" apt-get update -q &&
               chroot "$ROOT" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
                   --no-install-recommends "${PACKAGES[@]}"; } >>"$log" 2>&1; then
            tail_log "$log"
            die "apt-get install in the chroot failed (log: $log)"
        fi
    fi
    chroot "$ROOT" apt-get clean
    mkdir -p "$ROOT/srv/mysql"
    ensure_global_manifest
    ensure_mysql_account
    local v
    v="$(chroot "$ROOT" /usr/sbin/mysqld --version 2>&1)" || { echo "$v" >&2; die "mysqld --version failed in the chroot"; }
    [[ "$v" =~ Ver\ (9|8)\. ]] || die "unexpected mysqld version: $v"
    date -u +%FT%TZ >"$STAMP"
    echo "$v" >>"$STAMP"
    say "installed in $((SECONDS - t0)) s: $v"
}

# unshare and setpriv (util-linux) for the service mode.
ensure_host_tools() {
    command -v unshare >/dev/null 2>&1 && return 0
    local log
    log="$(dirname "$ROOT")/host-apt.log"
    say "installing util-linux on the host (unshare)..."
    if ! (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq util-linux) >"$log" 2>&1; then
        tail_log "$log"
        die "apt-get install util-linux failed on the host"
    fi
}

# The chroot's `mysql` account, as the mysql-server package's postinst makes it; with the host's
# ids when the chroot has them free, so that the host's `ls -l` names the owner too.
ensure_mysql_account() {
    grep -q '^mysql:' "$ROOT/etc/passwd" && return 0
    local uid gid
    uid="$(id -u mysql 2>/dev/null || true)"
    gid="$(id -g mysql 2>/dev/null || true)"
    if ! grep -q '^mysql:' "$ROOT/etc/group"; then
        if [[ -n "$gid" ]] && ! cut -d: -f3 "$ROOT/etc/group" | grep -qx "$gid"; then
            chroot "$ROOT" groupadd --system --gid "$gid" mysql
        else
            chroot "$ROOT" groupadd --system mysql
        fi
    fi
    if [[ -n "$uid" ]] && ! cut -d: -f3 "$ROOT/etc/passwd" | grep -qx "$uid"; then
        chroot "$ROOT" useradd --system --uid "$uid" --gid mysql --home-dir /nonexistent \
            --no-create-home --shell /usr/sbin/nologin mysql
    else
        chroot "$ROOT" useradd --system --gid mysql --home-dir /nonexistent \
            --no-create-home --shell /usr/sbin/nologin mysql
    fi
    say "created the account mysql in the chroot ($(chroot "$ROOT" id mysql))"
}

# The global manifest must not load any keyring component: a component would
# take precedence over an early-loaded keyring plugin. Instances may still use
# a per-datadir manifest (<datadir>/mysqld.my) deliberately.
ensure_global_manifest() {
    local m="$ROOT/usr/sbin/mysqld.my" want='{"read_local_manifest": true}'
    if [[ ! -f "$m" || "$(cat "$m")" != "$want" ]]; then
        rm -f "$m"
        echo "$want" >"$m"
        chmod 444 "$m"
    fi
}

# ---------------------------------------------------------------- instances
pick_free_port() {
    if command -v perl >/dev/null 2>&1; then
        perl -MIO::Socket::INET -e '
            my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 0, Proto => "tcp", Listen => 1)
                or die "bind: $!\n";
            print $s->sockport, "\n";'
    else
        chroot "$ROOT" perl -MIO::Socket::INET -e '
            my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 0, Proto => "tcp", Listen => 1)
                or die "bind: $!\n";
            print $s->sockport, "\n";'
    fi
}

write_cnf() {
    local port
    if [[ -n "${KEYRING_OKV_MYSQL_PORT:-}" ]]; then
        port="$KEYRING_OKV_MYSQL_PORT"
        [[ "$port" =~ ^[0-9]+$ ]] || die "KEYRING_OKV_MYSQL_PORT must be a number"
    elif [[ -s "$I/port" ]]; then
        port="$(cat "$I/port")"
    else
        port="$(pick_free_port)" || die "could not pick a free port"
    fi
    echo "$port" >"$I/port"
    mkdir -p "$I/data" "$I/tmp" "$I/files"
    cat >"$I/my.cnf" <<EOF
# generated by mysql-real.sh for instance $NAME (paths are inside the chroot)
[mysqld]
user                     = $(if [[ "$SERVICE" == 1 ]]; then echo mysql; else echo root; fi)
datadir                  = $C/data
socket                   = $C/mysqld.sock
mysqlx-socket            = $C/mysqlx.sock
pid-file                 = $C/mysqld.pid
log-error                = $C/error.log
log-error-verbosity      = 3
tmpdir                   = $C/tmp
secure-file-priv         = $C/files
port                     = $port
bind-address             = 127.0.0.1
mysqlx                   = OFF
server-id                = 1
log-bin                  = binlog
innodb_redo_log_capacity = 32M
innodb_buffer_pool_size  = 64M
performance_schema       = ON

[client]
user     = root
socket   = $C/mysqld.sock
EOF
}

# The PID of a running mysqld of the current instance, or nothing.
inst_pid() {
    local pid
    [[ -s "$I/mysqld.pid" ]] || return 0
    pid="$(tr -dc 0-9 <"$I/mysqld.pid")"
    [[ -n "$pid" ]] || return 0
    # chroot does not add a PID namespace: the pid file holds the host PID.
    # Guard against a recycled PID: it must be a mysqld rooted in our chroot.
    if [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == mysqld &&
          "$(readlink "/proc/$pid/root" 2>/dev/null)" == "$(readlink -f "$ROOT")" ]]; then
        echo "$pid"
    fi
}

ping_ok() {
    [[ -S "$I/mysqld.sock" ]] || return 1
    chroot "$ROOT" /usr/bin/mysqladmin --defaults-file="$CNF" --connect-timeout=2 ping >/dev/null 2>&1
}

# How mysqld is run (into LAUNCH): as root in the chroot, or as the service does (see the header).
# The service mode's namespace: /etc and /usr of the chroot read-only (ProtectSystem=full; MySQL's
# AppArmor profile gives /etc/mysql/** read only), /proc mounted (a real host has one; it goes
# away with the namespace), umask 007 (mariadb.service's UMask), then mysqld as mysql:mysql.
# The probe proves /etc is read-only for the account in that very namespace.
SERVICE_SH='set -e
root=$1 uid=$2 gid=$3 probe=$4
shift 4
for d in etc usr; do
    mount --bind "$root/$d" "$root/$d"
    mount -o remount,bind,ro "$root/$d"
done
[ -e "$root/proc/self" ] || mount -t proc proc "$root/proc"
umask 007
if out=$(chroot --userspec="$uid:$gid" --groups="$gid" "$root" /usr/bin/touch /etc/.keyring-okv-write-probe 2>&1); then
    echo "service mode: /etc is writable by the mysql account; refusing to start" >&2
    exit 97
fi
case $out in
    *"Read-only file system"*) printf "%s\n" "$out" >"$probe" ;;
    *) echo "service mode: the write probe failed otherwise than EROFS: $out" >&2; exit 97 ;;
esac
exec chroot --userspec="$uid:$gid" --groups="$gid" "$root" "$@"'

# As root, mysqld still gets its /proc, as on a real host (the keyrings look at their own
# process there to see the end of the start), in a mount namespace that goes away with it.
ROOT_SH='root=$1
shift
[ -e "$root/proc/self" ] || mount -t proc proc "$root/proc"
exec chroot "$root" "$@"'

set_launch() {
    if [[ "$SERVICE" != 1 ]]; then
        LAUNCH=(unshare --mount --propagation private -- /bin/sh -c "$ROOT_SH" sh "$ROOT")
        return 0
    fi
    local uid gid
    uid="$(chroot "$ROOT" id -u mysql)" || die "no mysql account in the chroot"
    gid="$(chroot "$ROOT" id -g mysql)"
    LAUNCH=(unshare --mount --propagation private -- /bin/sh -c "$SERVICE_SH" sh "$ROOT" "$uid" "$gid" "$I/etc-probe")
}

# What a package install leaves for the service: the account, the instance (data, logs, socket,
# pid file) and the keyring directory owned by it.
prepare_service() {
    [[ "$SERVICE" == 1 ]] || return 0
    ensure_host_tools
    (
        exec 9>"$ROOT.lock"
        flock -w 600 9 || die "timed out waiting for the lock $ROOT.lock"
        ensure_mysql_account
        if [[ ! -d "$ROOT$KEYRING_DIR" ]]; then
            install -d -m 750 "$ROOT$KEYRING_DIR"
            chroot "$ROOT" chown mysql:mysql "$KEYRING_DIR"
        fi
    )
    chroot "$ROOT" chown -R mysql:mysql "$C"
    chmod 750 "$I"
    chmod 644 "$I/my.cnf"
    rm -f "$I/etc-probe"
}

save_args() { # NUL-separated, exact
    if (($#)); then printf '%s\0' "$@" >"$I/args"; else : >"$I/args"; fi
}

load_args() { # into ARGS
    ARGS=()
    if [[ -s "$I/args" ]]; then
        mapfile -d '' -t ARGS <"$I/args"
    fi
}

initialise() {
    [[ -f "$I/.initialized" ]] && return 0
    rm -rf "$I/data"
    mkdir -p "$I/data"
    say "initialising instance $NAME (--initialize-insecure, ~5 s)..."
    : >"$I/error.log"
    prepare_service
    set_launch
    if ! "${LAUNCH[@]}" /usr/sbin/mysqld --defaults-file="$CNF" --initialize-insecure \
            >"$I/initialize.out" 2>&1 </dev/null; then
        tail_log "$I/error.log"
        tail_log "$I/initialize.out"
        die "mysqld --initialize-insecure failed for instance $NAME"
    fi
    touch "$I/.initialized"
}

cmd_start() {
    need_root
    inst "${1:-}"; shift
    if ! is_installed; then cmd_install; fi
    ensure_global_manifest
    mkdir -p "$I"
    exec 8>"$I/.lock"
    flock -w 120 8 || die "timed out waiting for the lock on instance $NAME"
    if ping_ok; then
        say "instance $NAME already running (port $(cat "$I/port" 2>/dev/null))"
        return 0
    fi
    local pid
    pid="$(inst_pid)"
    if [[ -n "$pid" ]]; then
        # Running but not answering yet (still starting or hung): wait for it.
        if wait_ready "$pid"; then return 0; fi
        die "instance $NAME (pid $pid) is running but does not answer ping; try: $0 stop $NAME"
    fi
    if (($#)); then save_args "$@"; elif [[ ! -f "$I/args" ]]; then save_args; fi
    load_args
    write_cnf
    initialise
    rm -f "$I/mysqld.pid" "$I/mysqld.sock" "$I/mysqld.sock.lock"
    local as=root
    [[ "$SERVICE" == 1 ]] && as="mysql, /etc read-only"
    say "starting instance $NAME ($as) on 127.0.0.1:$(cat "$I/port")${ARGS[*]:+ with ${ARGS[*]}}..."
    echo "=== $(date -u +%FT%TZ) start ($as) ${ARGS[*]:-}" >>"$I/mysqld.out"
    prepare_service
    set_launch
    setsid "${LAUNCH[@]}" /usr/sbin/mysqld --defaults-file="$CNF" ${ARGS[@]+"${ARGS[@]}"} \
        </dev/null >>"$I/mysqld.out" 2>&1 8>&- 9>&- &
    pid=$!
    echo "$pid" >"$I/launcher.pid"
    if ! wait_ready "$pid"; then
        tail_log "$I/error.log" 40
        tail_log "$I/mysqld.out" 10
        die "instance $NAME did not become ready"
    fi
    say "instance $NAME ready (pid $(inst_pid), port $(cat "$I/port"), socket $I/mysqld.sock)"
}

# Poll mysqladmin ping for START_TIMEOUT seconds; fail at once if PID exits.
wait_ready() {
    local pid="$1" deadline=$((SECONDS + START_TIMEOUT))
    while ((SECONDS < deadline)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            wait "$pid" 2>/dev/null || true
            say "mysqld (pid $pid) exited during startup"
            return 1
        fi
        if ping_ok; then return 0; fi
        sleep 0.2
    done
    say "timed out after ${START_TIMEOUT}s waiting for mysqld (pid $pid) to answer ping"
    return 1
}

stop_pid() { # PID: shutdown already requested (or not possible); wait then KILL
    local pid="$1" deadline=$((SECONDS + STOP_TIMEOUT))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
        say "mysqld pid $pid still alive after ${STOP_TIMEOUT}s; sending SIGKILL"
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
    if [[ -z "$pid" ]]; then
        ping_ok || return 0
        die "instance $NAME answers ping but its pid file is missing"
    fi
    say "stopping instance $NAME (pid $pid)..."
    # mysqladmin waits for the pid file to go (an hour by default): a mysqld that dies during
    # its shutdown leaves the file, and stop_pid below already knows when the process is gone.
    chroot "$ROOT" /usr/bin/mysqladmin --defaults-file="$CNF" --connect-timeout=5 \
        --shutdown-timeout="$STOP_TIMEOUT" shutdown >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null || true
    stop_pid "$pid"
}

# Every mysqld whose root directory is our chroot (covers instances whose
# files were removed by hand).
chroot_mysqld_pids() {
    local p real
    real="$(readlink -f "$ROOT" 2>/dev/null)" || return 0
    for p in /proc/[0-9]*; do
        [[ "$(cat "$p/comm" 2>/dev/null)" == mysqld ]] || continue
        [[ "$(readlink "$p/root" 2>/dev/null)" == "$real" ]] && echo "${p#/proc/}"
    done
    return 0
}

stop_chroot_mysqlds() {
    local p
    for p in $(chroot_mysqld_pids); do
        say "terminating stray mysqld pid $p"
        kill -TERM "$p" 2>/dev/null || true
        stop_pid "$p"
    done
}

cmd_stop_all() {
    need_root
    [[ -d "$ROOT" ]] || return 0
    local d
    for d in "$ROOT"/srv/mysql/*/; do
        [[ -d "$d" ]] || continue
        cmd_stop "$(basename "$d")" || true
    done
    stop_chroot_mysqlds
}

cmd_restart() {
    local name="${1:-}"
    valid_name "$name"; shift
    cmd_stop "$name"
    if (($#)); then
        inst "$name"; mkdir -p "$I"; save_args "$@"
    fi
    cmd_start "$name"
}

cmd_reset() {
    local name="${1:-}"
    cmd_stop "$name"
    inst "$name"
    [[ -d "$I" ]] || return 0
    say "wiping data of instance $NAME"
    rm -rf "$I/data" "$I/tmp" "$I/files" "$I/.initialized" "$I/error.log" \
        "$I/mysqld.out" "$I/initialize.out" "$I/mysqld.sock" "$I/mysqld.sock.lock" "$I/mysqld.pid"
}

cmd_sql() {
    need_root
    inst "${1:-}"
    local q="${2:-}"
    [[ -n "$q" ]] || die "usage: $0 sql NAME \"SQL\" (use - to read SQL from stdin)"
    require_installed
    [[ -f "$I/my.cnf" ]] || die "instance $NAME does not exist; run: $0 start $NAME"
    local fmt=(--batch --skip-column-names)
    [[ "${KEYRING_OKV_MYSQL_TABLE:-0}" == 1 ]] && fmt=(--table)
    if [[ "$q" == - ]]; then
        chroot "$ROOT" /usr/bin/mysql --defaults-file="$CNF" "${fmt[@]}"
    else
        chroot "$ROOT" /usr/bin/mysql --defaults-file="$CNF" "${fmt[@]}" -e "$q" </dev/null
    fi
}

cmd_udf() {
    inst "${1:-}"
    local f="$SCRIPT_DIR/sql/keyring_udf.sql"
    [[ -r "$f" ]] || die "missing $f"
    local have
    have="$(cmd_sql "$NAME" "SELECT COUNT(*) FROM information_schema.PLUGINS WHERE PLUGIN_NAME='keyring_udf'")"
    if [[ "$have" == 0 ]]; then
        cmd_sql "$NAME" - <"$f"
    else
        # Plugin already there; the CREATE FUNCTIONs use IF NOT EXISTS.
        grep -viE '^[[:space:]]*INSTALL[[:space:]]+PLUGIN' "$f" | cmd_sql "$NAME" -
    fi
    say "keyring_udf ready on instance $NAME"
}

cmd_install_plugin() {
    need_root
    local so="${1:-}"
    [[ -f "$so" ]] || die "usage: $0 install-plugin path/to/libkeyring_okv.so"
    require_installed
    local dir="$ROOT/usr/lib/mysql/plugin"
    # Write a new file and rename it: overwriting in place would corrupt the
    # mapping of a running mysqld that has the old one loaded.
    install -m 644 "$so" "$dir/.keyring_okv.so.new"
    mv -f "$dir/.keyring_okv.so.new" "$dir/keyring_okv.so"
    say "installed $so as $dir/keyring_okv.so"
}

cmd_copy_in() {
    need_root
    local src="${1:-}" dest="${2:-}"
    [[ -e "$src" && "$dest" == /* ]] || die "usage: $0 copy-in SRC /DEST/IN/CHROOT"
    [[ "/$dest/" != */../* ]] || die "DEST must not contain '..'"
    require_installed
    if [[ -d "$src" ]]; then
        mkdir -p "$ROOT$dest"
        cp -a "$src"/. "$ROOT$dest"/
    else
        mkdir -p "$(dirname "$ROOT$dest")"
        cp -a "$src" "$ROOT$dest"
    fi
}

cmd_selftest() {
    need_root
    local pass=0 fail=0 v
    check() { # DESC CMD...
        local d="$1"; shift
        if "$@"; then pass=$((pass + 1)); echo "ok   - $d"; else fail=$((fail + 1)); echo "FAIL - $d"; fi
    }
    (cmd_install) || true
    check "chroot installed" is_installed
    (cmd_reset selftest) || true
    check "start selftest" bash "$SELF" start selftest
    v="$(cmd_sql selftest "SELECT VERSION()" 2>&1 || true)"
    echo "     version: $v"
    check "SELECT VERSION() is 8.x/9.x" bash -c '[[ "$0" =~ ^(8|9)\. ]]' "$v"
    check "start is a no-op when running" bash "$SELF" start selftest
    check "restart" bash "$SELF" restart selftest
    check "stop" bash "$SELF" stop selftest
    inst selftest
    check "no mysqld left for selftest" bash -c '[[ -z "$0" ]]' "$(inst_pid)"
    echo "mysql-real selftest: $pass passed, $fail failed"
    ((fail == 0))
}

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
}

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
        udf) cmd_udf "$@" ;;
        log) inst "${1:-}"; echo "$I/error.log" ;;
        path) inst "${1:-}"; echo "$I" ;;
        root) echo "$ROOT" ;;
        plugin-dir) echo "$ROOT/usr/lib/mysql/plugin" ;;
        install-plugin) cmd_install_plugin "$@" ;;
        copy-in) cmd_copy_in "$@" ;;
        selftest) cmd_selftest ;;
        -h | --help | help) usage ;;
        *) usage >&2; die "unknown command '${cmd}'" ;;
    esac
}

main "$@"
