#!/usr/bin/env bash
# mysql-headers.sh — the MySQL 9.7 C/C++ headers the component's layout test compiles against.
#
# Installs Debian's mysql-source package in the mysqld chroot of scripts/mysql-real.sh (the same
# 9.7 build the tests run), extracts only its include/ directory once, and prints the host path
# of that directory. Nothing of the MySQL sources is kept in this repository.
#
# Environment: KEYRING_OKV_MYSQL_ROOT (as for scripts/mysql-real.sh).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="${KEYRING_OKV_MYSQL_ROOT:-/var/cache/keyring-okv/mysqlroot}"
ROOT="${ROOT%/}"
DEST="$ROOT/usr/src/keyring-okv-mysql-include"
STAMP="$DEST/.extracted"

say() { echo "mysql-headers: $*" >&2; }
die() { echo "mysql-headers: error: $*" >&2; exit 1; }

if [[ -f "$STAMP" && -d "$DEST/include/mysql/components" ]]; then
    echo "$DEST/include"
    exit 0
fi

bash "$SCRIPT_DIR/mysql-real.sh" install >&2
exec 9>"$ROOT.headers.lock"
flock -w 900 9 || die "timed out waiting for $ROOT.headers.lock"
if [[ -f "$STAMP" && -d "$DEST/include/mysql/components" ]]; then
    echo "$DEST/include"
    exit 0
fi

TARBALL="$ROOT/usr/src/mysql/mysql-source.tar.gz"
if [[ ! -f "$TARBALL" ]]; then
    say "apt-get install mysql-source in the chroot (a ~430 MB download)..."
    log="$ROOT/var/log/keyring-okv-mysql-source.log"
    if ! chroot "$ROOT" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
            --no-install-recommends mysql-source >"$log" 2>&1; then
        say "apt-get install failed; running apt-get update and retrying..."
        { chroot "$ROOT" apt-get update -q &&
          chroot "$ROOT" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
              --no-install-recommends mysql-source; } >>"$log" 2>&1 \
            || { tail -n 20 "$log" >&2; die "apt-get install mysql-source failed (log: $log)"; }
    fi
    chroot "$ROOT" apt-get clean
fi
[[ -f "$TARBALL" ]] || die "$TARBALL is missing after installing mysql-source"

# The top directory is mysql-<major.minor>/; take include/ only.
top="$(tar -tzf "$TARBALL" 2>/dev/null | grep -m1 -oE '^(\./)?mysql-[0-9.]+/' | sed 's,^\./,,; s,/$,,')" || true
[[ "$top" == mysql-* ]] || die "unexpected layout of $TARBALL (top directory '$top')"
say "extracting $top/include from $TARBALL..."
rm -rf "$DEST"
mkdir -p "$DEST"
tar -xzf "$TARBALL" -C "$DEST" --strip-components=1 "$top/include"
[[ -d "$DEST/include/mysql/components" ]] || die "no include/mysql/components in $TARBALL"
echo "$top" >"$STAMP"
echo "$DEST/include"
