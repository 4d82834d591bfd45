#!/usr/bin/env bash
# deb.sh: build the Debian packages and test them the way a DBA installs them.
#
#   build   cargo build (profile "deb"), the man pages from the CLI's clap definitions
#           (examples/keyring-okv-man.rs), the manual (scripts/book.sh), then cargo-deb for
#           the three packages: keyring-okv (MySQL: the plugin and always the component, with
#           the component's conffile), keyring-okv-tools (the admin tool, its man pages, the
#           manual as HTML) and mariadb-plugin-kmip-key-management (kmip_key_management.so in
#           MariaDB's plugin directory, a commented snippet in /etc/mysql/mariadb.conf.d/).
#           Prints the MySQL package's path on stdout.
#   lint    lintian on the three packages; fails on any error.
#   test    build, lint, then in the real mysqld chroot (scripts/mysql-real.sh): dpkg -i of
#           keyring-okv with keyring-okv-tools, mysqld loading keyring_okv.so from its default
#           plugin directory against PyKMIP (generate, fetch, an encrypted table across a
#           restart), keyring-okv check from /usr/bin, man keyring-okv, then dpkg -r and
#           dpkg -P leave the chroot's file list as it was and the configuration directory
#           untouched; another package's keyring_okv.so diverted and given back; the upgrade
#           from version N to N+1 and the downgrade back with the component serving encrypted
#           tables (test_upgrade_mysql). Then the MariaDB package,
#           in MariaDB 10.11 on the host and 11.8 in its chroot (scripts/mariadb-real.sh):
#           dpkg -i, a server that reads the snippet loads nothing, the snippet enabled as a
#           DBA does loads kmip_key_management.so from the default plugin directory against
#           PyKMIP, an encrypted table reads back after a restart, dpkg -r/-P leave the file
#           list as it was. Last line: "deb package: N passed, N failed".
#
#   test-mariadb  build, lint, then only the MariaDB package's test.
#   test-switch   only the maintainer scripts' switch between keyring-okv and keyring-okv-fips
#                 with another package's keyring_okv.so diverted (test_diversion_switch; part
#                 of test), in a scratch dpkg database: no build, no chroot.
#
#   With KEYRING_OKV_DEB_FIPS=1 (scripts/fips.sh deb and test-deb) every command works on the
#   FIPS build instead: the packages keyring-okv-fips and
#   mariadb-plugin-kmip-key-management-fips (cargo-deb variants "fips" and "mariadb-fips",
#   each conflicting with and replacing its default package) from the release build in
#   $CARGO_TARGET_DIR (scripts/fips.sh builds it), without dbgsym packages; the test also checks
#   that keyring-okv check and the plugin's status say FIPS mode is on.
#
# Environment: KEYRING_OKV_MYSQL_ROOT (the chroot, see scripts/mysql-real.sh), CARGO_TARGET_DIR,
# KEYRING_OKV_DEB_INSTANCE (mysqld instance name, default "deb"),
# KEYRING_OKV_DEB_MARIADB_INSTANCE (MariaDB instance name, default "debmaria").
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

CARGO_DEB_VERSION=3.8.0
TARGET_DIR=${CARGO_TARGET_DIR:-target}
PROFILE_DIR="$TARGET_DIR/deb"
PACKAGE=keyring-okv
TOOLS_PACKAGE=keyring-okv-tools
MARIADB_PACKAGE=mariadb-plugin-kmip-key-management
FIPS=${KEYRING_OKV_DEB_FIPS:-}
if [[ -n $FIPS ]]; then
    PROFILE_DIR="$TARGET_DIR/release"
    PACKAGE=keyring-okv-fips
    TOOLS_PACKAGE=keyring-okv-tools-fips
    MARIADB_PACKAGE=mariadb-plugin-kmip-key-management-fips
fi
# The component's configuration, a conffile of the MySQL package.
COMPONENT_CNF=/etc/mysql/keyring-okv/component_keyring_okv.cnf
INSTANCE=${KEYRING_OKV_DEB_INSTANCE:-deb}
MARIADB_INSTANCE=${KEYRING_OKV_DEB_MARIADB_INSTANCE:-debmaria}
SNIPPET=/etc/mysql/mariadb.conf.d/kmip_key_management.cnf
CONF=/srv/keyring-okv-deb          # the configuration directory, inside the chroot
MYSQL=scripts/mysql-real.sh

say() { echo "deb: $*" >&2; }
die() { echo "deb: error: $*" >&2; exit 1; }

need_host_tools() {
    local missing=() tool
    for tool in dpkg-shlibdeps:dpkg-dev objcopy:binutils strip:binutils lintian:lintian; do
        command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool#*:}")
    done
    if ((${#missing[@]})); then
        say "installing ${missing[*]} on the host"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            $(printf '%s\n' "${missing[@]}" | sort -u) >/dev/null
    fi
    # The metadata uses cargo-deb 3 (dbgsym, merge-assets in variants).
    if [[ $(cargo deb --version 2>/dev/null) != "cargo-deb 3."* ]]; then
        say "installing cargo-deb $CARGO_DEB_VERSION into ~/.cargo/bin (once, about 3 minutes)"
        cargo install cargo-deb --version "$CARGO_DEB_VERSION" --locked --force -j2 --quiet
    fi
}

# ---------------------------------------------------------------- build
cmd_build() {
    need_host_tools
    [[ -n $FIPS ]] && { cmd_build_fips; return; }
    say "cargo build --profile deb"
    cargo build --profile deb --locked -j2 --workspace >&2
    say "the manual (scripts/book.sh)"
    bash scripts/book.sh >&2
    say "man pages from the CLI's definitions"
    rm -rf target/deb-man
    cargo run --profile deb --locked -j2 -q --example keyring-okv-man -- target/deb-man >&2
    # The MySQL package always holds the plugin and the component (the cargo-deb variant
    # "component" adds the component and its .cnf template to the plugin's assets).
    [[ -f "$PROFILE_DIR/libcomponent_keyring_okv.so" ]] ||
        die "the workspace build made no $PROFILE_DIR/libcomponent_keyring_okv.so"
    mkdir -p "$TARGET_DIR/debian"
    local p
    for p in "$PACKAGE" "$TOOLS_PACKAGE" "$MARIADB_PACKAGE"; do
        rm -f "$TARGET_DIR/debian/${p}"_*.deb "$TARGET_DIR/debian/${p}"-dbgsym_*.ddeb
    done
    # cargo-deb prints the package paths on stdout; this command's stdout is the .deb's path alone.
    cargo deb -p keyring_okv_core --no-build --locked --variant component \
        -o "$TARGET_DIR/debian/" >&2
    local deb tdeb mdeb
    deb=$(deb_path) || die "cargo-deb wrote no package"
    add_md5sums "$deb" "MySQL keyring plugin and component keeping keys in a KMIP server"
    say "built $deb ($(stat -c %s "$deb") bytes)"
    cargo deb -p keyring_okv_core --no-build --locked --variant tools \
        -o "$TARGET_DIR/debian/" >&2
    tdeb=$(tools_deb_path) || die "cargo-deb wrote no tools package"
    add_md5sums "$tdeb" "admin tool and manual of keyring_okv, a KMIP keyring for MySQL and MariaDB"
    say "built $tdeb ($(stat -c %s "$tdeb") bytes)"
    cargo deb -p keyring_okv_core --no-build --locked --variant mariadb \
        -o "$TARGET_DIR/debian/" >&2
    mdeb=$(mariadb_deb_path) || die "cargo-deb wrote no MariaDB package"
    add_md5sums "$mdeb" "MariaDB encryption plugin keeping its keys in a KMIP server"
    say "built $mdeb ($(stat -c %s "$mdeb") bytes)"
    echo "$deb"
}

# The FIPS packages, from the release build of scripts/fips.sh (no debug info, no dbgsym).
cmd_build_fips() {
    local lib
    for lib in libkeyring_okv.so libcomponent_keyring_okv.so libkmip_key_management.so keyring-okv; do
        [[ -f $PROFILE_DIR/$lib ]] || die "no $PROFILE_DIR/$lib: run scripts/fips.sh build first"
    done
    say "the manual (scripts/book.sh)"
    bash scripts/book.sh >&2
    say "man pages from the CLI's definitions"
    rm -rf target/deb-man
    cargo run --release --features fips --locked -j2 -q --example keyring-okv-man -- target/deb-man >&2
    mkdir -p "$TARGET_DIR/debian"
    rm -f "$TARGET_DIR/debian/${PACKAGE}"_*.deb "$TARGET_DIR/debian/${TOOLS_PACKAGE}"_*.deb \
        "$TARGET_DIR/debian/${MARIADB_PACKAGE}"_*.deb
    cargo deb -p keyring_okv_core --no-build --locked --profile release --variant fips \
        -o "$TARGET_DIR/debian/" >&2
    local deb tdeb mdeb
    deb=$(deb_path) || die "cargo-deb wrote no package"
    add_md5sums "$deb" "MySQL keyring plugin and component keeping keys in a KMIP server (FIPS 140-3 build)"
    say "built $deb ($(stat -c %s "$deb") bytes)"
    cargo deb -p keyring_okv_core --no-build --locked --profile release --variant tools-fips \
        -o "$TARGET_DIR/debian/" >&2
    tdeb=$(tools_deb_path) || die "cargo-deb wrote no tools package"
    add_md5sums "$tdeb" "admin tool and manual of keyring_okv, a KMIP keyring for MySQL and MariaDB (FIPS 140-3 build)"
    say "built $tdeb ($(stat -c %s "$tdeb") bytes)"
    cargo deb -p keyring_okv_core --no-build --locked --profile release --variant mariadb-fips \
        -o "$TARGET_DIR/debian/" >&2
    mdeb=$(mariadb_deb_path) || die "cargo-deb wrote no MariaDB package"
    add_md5sums "$mdeb" "MariaDB encryption plugin keeping its keys in a KMIP server (FIPS 140-3 build)"
    say "built $mdeb ($(stat -c %s "$mdeb") bytes)"
    echo "$deb"
}

# cargo-deb writes no md5sums control file, without which `dpkg --verify` cannot tell whether
# an installed file (the plugin mysqld loads, the admin tool) was changed. Repack with one.
# DEB [SYNOPSIS]: also replaces the one-line description (a variant's own; cargo-deb takes it
# from the Cargo package).
add_md5sums() {
    local deb=$1 synopsis=${2:-} tree
    tree=$(mktemp -d "$TARGET_DIR/deb-tree.XXXXXX")
    dpkg-deb -R "$deb" "$tree/root"
    if [[ -n $synopsis ]]; then
        sed -i "s/^Description: .*/Description: $synopsis/" "$tree/root/DEBIAN/control"
    fi
    (cd "$tree/root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z |
        xargs -0 md5sum >DEBIAN/md5sums)
    chmod 644 "$tree/root/DEBIAN/md5sums"
    touch -r "$tree/root/usr" "$tree/root"
    dpkg-deb --root-owner-group -Zxz -b "$tree/root" "$deb" >/dev/null
    rm -rf "$tree"
}

deb_path() {
    local f
    for f in "$TARGET_DIR/debian/${PACKAGE}"_*.deb; do
        [[ -f $f ]] && { echo "$f"; return 0; }
    done
    return 1
}

tools_deb_path() {
    local f
    for f in "$TARGET_DIR/debian/${TOOLS_PACKAGE}"_*.deb; do
        [[ -f $f ]] && { echo "$f"; return 0; }
    done
    return 1
}

mariadb_deb_path() {
    local f
    for f in "$TARGET_DIR/debian/${MARIADB_PACKAGE}"_*.deb; do
        [[ -f $f ]] && { echo "$f"; return 0; }
    done
    return 1
}

# ---------------------------------------------------------------- lint
cmd_lint() {
    need_host_tools
    local deb out
    for deb in "$(deb_path || die "no package: run $0 build")" \
        "$(tools_deb_path || die "no tools package: run $0 build")" \
        "$(mariadb_deb_path || die "no MariaDB package: run $0 build")"; do
        say "lintian $deb"
        # --fail-on error: warnings are printed (and explained in the manual), errors fail.
        out=$(lintian --fail-on error --display-info "$deb" 2>&1) || { echo "$out" >&2; die "lintian reported errors"; }
        [[ -n $out ]] && echo "$out" >&2
        say "lintian: $(grep -c '^E:' <<<"$out" || true) errors, $(grep -c '^W:' <<<"$out" || true) warnings, $(grep -c '^I:' <<<"$out" || true) info"
    done
}

# ---------------------------------------------------------------- test
passed=0 failed=0
check() { # NAME COMMAND...: one assertion
    local name=$1; shift
    if "$@"; then
        passed=$((passed + 1)); echo "ok   $name"
    else
        failed=$((failed + 1)); echo "FAIL $name"
    fi
}
eq() { [[ $1 == "$2" ]] || { echo "     expected '$2', got '$1'" >&2; return 1; }; }

# Every path of the chroot with type and mode, except what changes on its own: /var (logs,
# caches, apt's and dpkg's databases; checked separately), /srv (the instances and the
# configuration directory, which conf_state covers), /tmp, /root and the virtual file systems.
snapshot() {
    (cd "$R" && find . -xdev \( -path ./srv -o -path ./tmp -o -path ./var -o -path ./proc \
        -o -path ./dev -o -path ./run -o -path ./root \) -prune -o -printf '%y %m %p\n' | sort)
}

# The configuration directory: every file's mode, owner, size, mtime and content hash.
conf_state() {
    (cd "$R$CONF" && find . -printf '%y %m %u %s %T@ %p\n' | sort &&
        find . -type f -print0 | sort -z | xargs -0 sha256sum)
}

sql() { bash "$MYSQL" sql "$INSTANCE" "$1"; }

# Puts back what the test kept aside (see cmd_test).
restore_aside() {
    [[ -n ${aside:-} && -d $aside ]] || return 0
    local p
    while IFS= read -r -d '' p; do
        mv -f "$aside/$p" "$R/$p"
    done < <(cd "$aside" && find . \( -type f -o -type l \) -print0)
    rm -rf "$aside"
}

# Every path (one a line, chroot-relative) exists in the chroot.
all_exist() {
    local f missing=0
    while IFS= read -r f; do
        [[ -z $f || -e $R$f || -L $R$f ]] || { echo "     missing: $f" >&2; missing=1; }
    done <<<"$1"
    ((missing == 0))
}

# DIR PACKAGE BINARY...: PACKAGE's -dbgsym package in DIR has
# /usr/lib/debug/.build-id/xx/yyyy.debug for each.
has_dbgsym() {
    local dir=$1 package=$2 ddeb list bin id; shift 2
    ddeb=$(ls "$dir/${package}"-dbgsym_*.ddeb 2>/dev/null | head -n1)
    [[ -n $ddeb ]] || { echo "     no ${package}-dbgsym package in $dir" >&2; return 1; }
    list=$(dpkg-deb -c "$ddeb")
    for bin; do
        id=$(readelf -n "$bin" | awk '/Build ID:/ { print $3 }')
        [[ -n $id ]] && grep -q "usr/lib/debug/.build-id/${id:0:2}/${id:2}.debug" <<<"$list" ||
            { echo "     no debug file for $bin (build ID '${id}')" >&2; return 1; }
    done
}

cmd_test() {
    [[ $EUID -eq 0 ]] || die "must run as root (chroot, dpkg in the chroot)"
    local deb tdeb
    deb=$(cmd_build)
    tdeb=$(tools_deb_path) || die "no tools package"
    cmd_lint

    bash "$MYSQL" install
    # Globals: the EXIT trap uses them after this function has returned.
    R=$(bash "$MYSQL" root)
    plugin_dir="$R/usr/lib/mysql/plugin"
    aside=""
    bash scripts/pykmip.sh start
    local pykmip_conf
    pykmip_conf=$(bash scripts/pykmip.sh confdir)

    # The packages' own control data: their dependencies and maintainer scripts (only the MySQL
    # package's diversion of keyring_okv.so).
    local depends
    depends=$(dpkg-deb -f "$deb" Depends)
    echo "     Depends: $depends"
    check "Depends names libc6 with a version (dpkg-shlibdeps)" grep -qE 'libc6 \(>= [0-9.]+\)' <<<"$depends"
    check "Depends names libgcc-s1 (libgcc_s.so.1)" grep -qE 'libgcc-s1 \(>= [0-9.]+\)' <<<"$depends"
    check "$PACKAGE depends on $TOOLS_PACKAGE" grep -qE "(^|, )$TOOLS_PACKAGE(,|$)" <<<"$depends"
    check "$PACKAGE has preinst, postinst and postrm only (the diversion)" eq "$(scripts_of "$deb")" "postinst postrm preinst"
    check "$TOOLS_PACKAGE has no maintainer scripts" eq "$(scripts_of "$tdeb")" ""
    check "$TOOLS_PACKAGE replaces and breaks the $PACKAGE that held the tool (<< 0.1.0-2~)" eq \
        "$(dpkg-deb -f "$tdeb" Breaks) / $(dpkg-deb -f "$tdeb" Replaces | sed 's/^keyring-okv-tools, //')" \
        "$PACKAGE (<< 0.1.0-2~) / $PACKAGE (<< 0.1.0-2~)"
    check "$TOOLS_PACKAGE holds no server plugin" \
        bash -c '! dpkg-deb -c "$1" | grep -q "usr/lib/mysql"' _ "$tdeb"

    # man-db for `man keyring-okv` (the MySQL packages do not bring it).
    if [[ ! -x $R/usr/bin/man ]]; then
        say "installing man-db in the chroot"
        chroot "$R" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends man-db \
            >"$R/var/log/keyring-okv-man-db.log" 2>&1 ||
            { chroot "$R" apt-get update -q >>"$R/var/log/keyring-okv-man-db.log" 2>&1 &&
              chroot "$R" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends man-db \
                >>"$R/var/log/keyring-okv-man-db.log" 2>&1; } ||
            die "apt-get install man-db in the chroot failed ($R/var/log/keyring-okv-man-db.log)"
    fi

    # Packages left installed by an interrupted run.
    purge_mysql_packages
    # Other tests copy their builds into the plugin directory (keyring_okv.so, the component and
    # its .cnf). Every such file the package would replace is kept aside, so that the package
    # installs into (and leaves) the chroot as a DBA's server has it, and put back afterwards;
    # so is the component's .cnf there, which the package does not ship but which would be read
    # instead of the package's conffile.
    aside=$(mktemp -d "$TARGET_DIR/deb-aside.XXXXXX")
    trap 'bash "$MYSQL" stop "$INSTANCE" >/dev/null 2>&1 || true;
          purge_mysql_packages; restore_aside; cleanup_mariadb' EXIT
    local path
    while IFS= read -r path; do
        [[ -f $R$path || -L $R$path ]] || continue
        chroot "$R" dpkg -S "$path" >/dev/null 2>&1 && continue
        say "keeping $path aside (not from a package) until the test ends"
        mkdir -p "$aside${path%/*}"
        mv "$R$path" "$aside$path"
    done < <(cat <(dpkg-deb -c "$deb") <(dpkg-deb -c "$tdeb") | awk '$1 !~ /^d/ { p = $6; sub(/^\./, "", p); print p }'
             echo /usr/lib/mysql/plugin/component_keyring_okv.cnf)

    # The configuration directory, as a DBA would lay it out, before the package arrives.
    rm -rf "${R:?}$CONF"
    bash "$MYSQL" copy-in "$pykmip_conf" "$CONF"
    local before conf_before
    before=$(snapshot)
    conf_before=$(conf_state)

    # Install (dpkg -i of the two together, as apt would for the dependency).
    check "dpkg -i $PACKAGE $TOOLS_PACKAGE in the chroot" in_chroot_dpkg -i "$deb" "$tdeb"
    local files added
    # Paths only: dpkg -L adds a "package diverts others to: …" line for keyring_okv.so.
    files=$(chroot "$R" dpkg -L "$PACKAGE" "$TOOLS_PACKAGE" | grep '^/')
    added=$(comm -13 <(echo "$before") <(snapshot) | awk '{ print substr($3, 2) }')
    check "the install added only the package's own files (dpkg -L)" \
        eq "$(grep -vxF -e "$files" <<<"$added" || true)" ""
    check "every path dpkg -L lists exists" all_exist "$files"
    # dpkg --verify prints one line per changed file (its exit status does not tell).
    check "dpkg --verify finds every file as packaged" eq \
        "$(chroot "$R" dpkg --verify "$PACKAGE" "$TOOLS_PACKAGE" 2>&1)" ""
    # A changed file is reported (the README: nothing else reads it; dpkg -r removes it).
    echo changed >>"$R/usr/share/doc/$TOOLS_PACKAGE/README.md"
    check "dpkg --verify reports a changed file" eq "$(chroot "$R" dpkg --verify "$TOOLS_PACKAGE" 2>&1)" \
        "??5??????   /usr/share/doc/$TOOLS_PACKAGE/README.md"
    check "keyring_okv.so is in MySQL's plugin directory" grep -qx /usr/lib/mysql/plugin/keyring_okv.so <<<"$files"
    check "keyring-okv is in /usr/bin" grep -qx /usr/bin/keyring-okv <<<"$files"
    check "the man page is installed" grep -qx /usr/share/man/man1/keyring-okv.1.gz <<<"$files"
    check "the component is in MySQL's plugin directory" \
        grep -qx /usr/lib/mysql/plugin/component_keyring_okv.so <<<"$files"
    check "the manual is installed as HTML, once (in $TOOLS_PACKAGE)" eq \
        "$(grep '/html/index.html$' <<<"$files")" "/usr/share/doc/$TOOLS_PACKAGE/html/index.html"
    check "the alerting rules are installed" \
        grep -qx "/usr/share/doc/$TOOLS_PACKAGE/examples/prometheus/keyring-okv-alerts.yml" <<<"$files"
    check "the example okvclient.ora is installed" \
        grep -qx /usr/share/doc/$TOOLS_PACKAGE/examples/mysql-keyring-okv/okvclient.ora <<<"$files"
    check "the component's configuration is a conffile in /etc, none in the plugin directory" eq \
        "$(chroot "$R" dpkg-query -W -f='${Conffiles}\n' "$PACKAGE" | awk 'NF { print $1 }') $(grep -c '^/usr/lib/mysql/plugin/.*\.cnf$' <<<"$files")" \
        "$COMPONENT_CNF 0"
    check "keyring_okv.so of other packages is diverted by $PACKAGE" eq \
        "$(chroot "$R" dpkg-divert --listpackage /usr/lib/mysql/plugin/keyring_okv.so)" "$PACKAGE"
    check "the shipped binaries carry no debug info" \
        bash -c '! objdump -h "$1" "$2" | grep -q "\.debug_info"' _ "$plugin_dir/keyring_okv.so" "$R/usr/bin/keyring-okv"
    if [[ -z $FIPS ]]; then
        check "the dbgsym packages hold their debug info, by build ID" has_dbgsym "${deb%/*}" "$PACKAGE" \
            "$plugin_dir/keyring_okv.so" "$plugin_dir/component_keyring_okv.so"
        check "... and the tool's in $TOOLS_PACKAGE-dbgsym" has_dbgsym "${deb%/*}" "$TOOLS_PACKAGE" "$R/usr/bin/keyring-okv"
    else
        check "it conflicts with and replaces keyring-okv" eq \
            "$(dpkg-deb -f "$deb" Conflicts) / $(dpkg-deb -f "$deb" Replaces)" "keyring-okv / keyring-okv"
    fi

    # mysqld loads the plugin from its default plugin directory (no --plugin-dir anywhere).
    bash "$MYSQL" reset "$INSTANCE" >/dev/null 2>&1 || true
    bash "$MYSQL" start "$INSTANCE" --early-plugin-load=keyring_okv.so --loose-keyring_okv_conf_dir="$CONF"
    local inst
    inst=$(bash "$MYSQL" path "$INSTANCE")
    check "no --plugin-dir in the instance's my.cnf or arguments" \
        bash -c '! grep -qa plugin.dir "$1/my.cnf" "$1/args"' _ "$inst"
    check "@@plugin_dir is the default" eq "$(sql 'SELECT @@plugin_dir')" /usr/lib/mysql/plugin/
    check "keyring_okv ACTIVE from keyring_okv.so" eq \
        "$(sql "SELECT CONCAT(PLUGIN_STATUS, ' ', PLUGIN_LIBRARY) FROM information_schema.PLUGINS WHERE PLUGIN_NAME='keyring_okv'")" \
        "ACTIVE keyring_okv.so"
    check "Keyring_okv_fips_mode is $([[ -n $FIPS ]] && echo ON || echo OFF)" eq \
        "$(sql "SELECT VARIABLE_VALUE FROM performance_schema.global_status WHERE VARIABLE_NAME='Keyring_okv_fips_mode'")" \
        "$([[ -n $FIPS ]] && echo ON || echo OFF)"
    bash "$MYSQL" udf "$INSTANCE"
    local key="deb_$(date +%s)_$$"
    check "keyring_key_generate" eq "$(sql "SELECT keyring_key_generate('$key', 'AES', 32)")" 1
    check "keyring_key_type_fetch / keyring_key_length_fetch" eq \
        "$(sql "SELECT CONCAT(keyring_key_type_fetch('$key'), ' ', keyring_key_length_fetch('$key'))")" "AES 32"
    check "keyring_key_fetch returns 32 bytes" eq "$(sql "SELECT LENGTH(keyring_key_fetch('$key'))")" 32
    sql "CREATE DATABASE IF NOT EXISTS debtest; DROP TABLE IF EXISTS debtest.t;
         CREATE TABLE debtest.t (a INT) ENCRYPTION='Y'; INSERT INTO debtest.t VALUES (42)" >/dev/null
    bash "$MYSQL" restart "$INSTANCE"
    check "the encrypted table reads back after a restart" eq "$(sql 'SELECT a FROM debtest.t')" 42
    check "the table is encrypted" eq \
        "$(sql "SELECT CREATE_OPTIONS FROM information_schema.TABLES WHERE TABLE_SCHEMA='debtest' AND TABLE_NAME='t'")" \
        "ENCRYPTION='Y'"

    # The packaged component instead of the plugin, loaded from the instance's manifest with
    # the packaged conffile as installed (which defers to the data directory's file): it
    # serves the same KMIP objects, so the table encrypted under the plugin reads back with no
    # key migration.
    if grep -qx /usr/lib/mysql/plugin/component_keyring_okv.so <<<"$files"; then
        bash "$MYSQL" stop "$INSTANCE"
        local data="$inst/data"
        printf '{"components": "file://component_keyring_okv"}\n' >"$data/mysqld.my"
        printf '{"kmip_configuration_directory": "%s"}\n' "$CONF" >"$data/component_keyring_okv.cnf"
        # Any argument replaces the saved ones (--early-plugin-load among them).
        bash "$MYSQL" start "$INSTANCE" --log-error-verbosity=3
        check "no keyring plugin loaded" eq \
            "$(sql "SELECT COUNT(*) FROM information_schema.PLUGINS WHERE PLUGIN_NAME='keyring_okv'")" 0
        check "component_keyring_okv from the package is Active" eq \
            "$(sql "SELECT STATUS_VALUE FROM performance_schema.keyring_component_status WHERE STATUS_KEY='Component_status'")" Active
        check "... reading the data directory's file, to which the conffile as shipped defers" eq \
            "$(sql "SELECT STATUS_VALUE FROM performance_schema.keyring_component_status WHERE STATUS_KEY='Config_file'")" \
            "${data#"$R"}/component_keyring_okv.cnf"
        check "the table encrypted under the plugin reads back under the component" eq \
            "$(sql 'SELECT a FROM debtest.t')" 42
        check "the key made through the plugin is fetched through the component" eq \
            "$(sql "SELECT keyring_key_length_fetch('$key')")" 32
        bash "$MYSQL" stop "$INSTANCE"
        rm -f "$data/mysqld.my" "$data/component_keyring_okv.cnf"
        bash "$MYSQL" start "$INSTANCE" --early-plugin-load=keyring_okv.so --loose-keyring_okv_conf_dir="$CONF"
    fi

    # The admin tool from /usr/bin against the same configuration directory.
    local out
    check "keyring-okv check (from /usr/bin, same conf dir)" chroot "$R" /usr/bin/keyring-okv --conf-dir "$CONF" check
    out=$(chroot "$R" /usr/bin/keyring-okv --conf-dir "$CONF" check 2>&1) || true
    check "keyring-okv check says FIPS mode is $([[ -n $FIPS ]] && echo on || echo off)" \
        grep -q "^\[ OK \] fips: $([[ -n $FIPS ]] && echo on || echo off) (" <<<"$out"
    out=$(chroot "$R" /usr/bin/keyring-okv --conf-dir "$CONF" list 2>&1) || true
    check "keyring-okv list shows the key made through SQL" grep -q "$key" <<<"$out"
    check "keyring_key_remove" eq "$(sql "SELECT keyring_key_remove('$key')")" 1

    # The man page renders. (At a width other than 80 man-db keeps no formatted copy in
    # /var/cache/man, which would outlive the package and hide a newer page.)
    out=$(chroot "$R" env MANWIDTH=100 LANG=C.UTF-8 man -P cat keyring-okv 2>&1) || true
    check "man keyring-okv renders" bash -c 'grep -q "^NAME" <<<"$1" && grep -q -- "--conf-dir" <<<"$1" && grep -q "EXIT STATUS" <<<"$1"' _ "$out"
    out=$(chroot "$R" env MANWIDTH=100 LANG=C.UTF-8 man -P cat keyring-okv-check 2>&1) || true
    check "man keyring-okv-check renders" grep -qE -- "--conf-dir +DIR +check" <<<"$out"

    bash "$MYSQL" stop "$INSTANCE"

    # Remove: only conffiles (the component's) may stay, and purge takes those too. The
    # configuration directory is never touched.
    local conffiles after
    conffiles=$(chroot "$R" dpkg-query -W -f='${Conffiles}\n' "$PACKAGE" "$TOOLS_PACKAGE" | awk 'NF { print $1 }')
    check "dpkg -r" chroot "$R" dpkg -r "$PACKAGE" "$TOOLS_PACKAGE"
    check "dpkg -r ends the diversion" eq \
        "$(chroot "$R" dpkg-divert --listpackage /usr/lib/mysql/plugin/keyring_okv.so)" ""
    after=$(snapshot)
    local extra
    extra=$(comm -13 <(echo "$before") <(echo "$after") | awk '{ print substr($3, 2) }')
    # A conffile keeps its directories too.
    local kept
    kept=$(awk 'NF { p = $0; while (p != "") { print p; sub("/[^/]*$", "", p) } }' <<<"$conffiles")
    check "dpkg -r leaves only the conffiles behind" eq "$(grep -vxF -e "${kept:-/nothing}" <<<"$extra" || true)" ""
    check "dpkg -r removes nothing that was there before" eq "$(comm -23 <(echo "$before") <(echo "$after"))" ""
    check "dpkg -r leaves the configuration directory untouched" eq "$(conf_state)" "$conf_before"
    check "dpkg -P" chroot "$R" dpkg -P "$PACKAGE" "$TOOLS_PACKAGE"
    check "after dpkg -P the chroot's file list is as before" eq "$(snapshot)" "$before"
    local p
    for p in "$PACKAGE" "$TOOLS_PACKAGE"; do
        check "after dpkg -P dpkg knows nothing of $p" \
            bash -c '! chroot "$1" dpkg-query -W "$2" >/dev/null 2>&1 && ! compgen -G "$1/var/lib/dpkg/info/$2.*" >/dev/null' _ "$R" "$p"
    done
    check "nothing of the package in /var/cache or /var/lib" \
        eq "$(find "$R/var/cache" "$R/var/lib" -name '*keyring[-_]okv*' 2>/dev/null)" ""
    check "dpkg -P leaves the configuration directory untouched" eq "$(conf_state)" "$conf_before"

    test_diversion "$deb" "$tdeb"
    test_diversion_switch
    check "after the diversion test the chroot's file list is as before" eq "$(snapshot)" "$before"
    test_upgrade_mysql "$deb" "$tdeb"
    check "after the upgrade test the chroot's file list is as before" eq "$(snapshot)" "$before"
    if [[ -z $FIPS ]]; then
        test_upgrade_from_0_1_0_1 "$deb" "$tdeb"
        check "after the upgrade from 0.1.0-1 the chroot's file list is as before" eq "$(snapshot)" "$before"
    fi

    local mdeb
    mdeb=$(mariadb_deb_path) || die "no MariaDB package"
    test_mariadb host "$mdeb"
    test_mariadb chroot "$mdeb"

    echo "deb package: $passed passed, $failed failed"
    ((failed == 0))
}

# The maintainer scripts a package holds, sorted, on one line.
scripts_of() {
    # dpkg-deb -I: "  523 bytes,  14 lines   *  postinst   #!/bin/sh"
    dpkg-deb -I "$1" |
        sed -nE 's/^ +[0-9]+ bytes, +[0-9]+ lines +\*? *(preinst|postinst|prerm|postrm|config) .*/\1/p' |
        sort | paste -sd ' '
}

# dpkg in the chroot on packages of the host: ARGS... DEB...
in_chroot_dpkg() {
    local args=() debs=() a
    for a; do
        if [[ $a == *.deb ]]; then
            cp "$a" "$R/tmp/${a##*/}"
            debs+=("/tmp/${a##*/}")
        else
            args+=("$a")
        fi
    done
    chroot "$R" dpkg "${args[@]}" "${debs[@]}"
    local rc=$?
    (cd "$R" && rm -f "${debs[@]#/}")
    return $rc
}

purge_mysql_packages() {
    [[ -n ${R:-} ]] || return 0
    chroot "$R" dpkg -P "$PACKAGE" "$TOOLS_PACKAGE" keyring-okv-test-other >/dev/null 2>&1 || true
}

# NAME VERSION CONTENT: a package of another name that ships its own
# /usr/lib/mysql/plugin/keyring_okv.so, as MySQL Enterprise's server package does (whatever its
# real name: the diversion is by path). Prints its path.
other_plugin_deb() {
    local name=$1 version=$2 content=$3 tree
    tree=$(mktemp -d "$TARGET_DIR/deb-other.XXXXXX")
    mkdir -p "$tree/root/DEBIAN" "$tree/root/usr/lib/mysql/plugin"
    printf '%s\n' "$content" >"$tree/root/usr/lib/mysql/plugin/keyring_okv.so"
    cat >"$tree/root/DEBIAN/control" <<CONTROL
Package: $name
Version: $version
Architecture: all
Maintainer: keyring_okv tests <tests@keyring-okv.example>
Description: stand-in for a server package that ships keyring_okv.so
CONTROL
    dpkg-deb --root-owner-group -b "$tree/root" "$TARGET_DIR/debian/test-${name}_$version.deb" >/dev/null
    rm -rf "$tree"
    echo "$TARGET_DIR/debian/test-${name}_$version.deb"
}

# DEB PATH: the chroot's file at PATH is the one in the package.
ours_at() {
    dpkg-deb --fsys-tarfile "$1" | tar -xOf - ".$2" | cmp -s - "$R$2"
}

# DEB TDEB: another package's keyring_okv.so is moved aside while ours is installed, stays
# aside through that package's upgrade, and comes back when ours is removed.
test_diversion() {
    local deb=$1 tdeb=$2 so=/usr/lib/mysql/plugin/keyring_okv.so other=keyring-okv-test-other o1 o2
    local aside_so=/usr/lib/mysql/plugin/keyring_okv.distrib.so
    o1=$(other_plugin_deb "$other" 1 "other package's plugin, version 1")
    o2=$(other_plugin_deb "$other" 2 "other package's plugin, version 2")
    check "[divert] the other package installs its keyring_okv.so" in_chroot_dpkg -i "$o1"
    check "[divert] dpkg -i $PACKAGE over it (no file conflict)" in_chroot_dpkg -i "$deb" "$tdeb"
    check "[divert] ours is at $so" ours_at "$deb" "$so"
    check "[divert] the other's is at $aside_so" eq "$(cat "$R$aside_so")" "other package's plugin, version 1"
    check "[divert] the other package's upgrade goes to $aside_so" in_chroot_dpkg -i "$o2"
    check "[divert] ... and leaves ours in place" ours_at "$deb" "$so"
    check "[divert] ... with its new version aside" eq "$(cat "$R$aside_so")" "other package's plugin, version 2"
    check "[divert] dpkg --verify of $PACKAGE is clean" eq "$(chroot "$R" dpkg --verify "$PACKAGE" 2>&1)" ""
    check "[divert] dpkg -r $PACKAGE" chroot "$R" dpkg -r "$PACKAGE"
    check "[divert] the other's keyring_okv.so is back at $so" eq "$(cat "$R$so")" "other package's plugin, version 2"
    check "[divert] no $aside_so left" test ! -e "$R$aside_so"
    check "[divert] no diversion left" eq "$(chroot "$R" dpkg-divert --listpackage "$so")" ""
    check "[divert] dpkg -P of every package" chroot "$R" dpkg -P "$PACKAGE" "$TOOLS_PACKAGE" "$other"
    rm -f "$o1" "$o2"
}

# The maintainer scripts' switch between keyring-okv and keyring-okv-fips (each conflicts with
# and replaces the other) while another package's keyring_okv.so is diverted: run in a scratch
# dpkg database (dpkg --root, the scripts outside a chroot through DPKG_ROOT) on stand-in
# packages that carry the real scripts and a one-line keyring_okv.so, so that it needs neither
# the chroot nor the FIPS build.
test_diversion_switch() {
    local t so div
    # dpkg --root takes an absolute path only.
    t=$(realpath "$(mktemp -d "$TARGET_DIR/deb-switch.XXXXXX")")
    mkdir -p "$t/root/var/lib/dpkg/info" "$t/root/var/lib/dpkg/updates" "$t/root/var/lib/dpkg/triggers"
    touch "$t/root/var/lib/dpkg/status"
    standin() { # NAME VERSION CONTENT [CONTROL LINES]
        local d="$t/build-$1-$2"
        mkdir -p "$d/DEBIAN" "$d/usr/lib/mysql/plugin"
        echo "$3" >"$d/usr/lib/mysql/plugin/keyring_okv.so"
        printf 'Package: %s\nVersion: %s\nArchitecture: all\nMaintainer: t <t@keyring-okv.example>\nDescription: stand-in\n%s' \
            "$1" "$2" "${4:-}" >"$d/DEBIAN/control"
        [[ $1 == keyring-okv* ]] && cp packaging/deb/maintainer-scripts/* "$d/DEBIAN/"
        dpkg-deb --root-owner-group -b "$d" "$t/$1_$2.deb" >/dev/null
    }
    standin other 1 other-1
    standin other 2 other-2
    standin keyring-okv 1 default $'Conflicts: keyring-okv-fips\nReplaces: keyring-okv-fips\n'
    standin keyring-okv-fips 1 fips $'Conflicts: keyring-okv\nReplaces: keyring-okv\nProvides: keyring-okv\n'
    sdpkg() { dpkg --root="$t/root" --force-script-chrootless --force-not-root --log=/dev/null "$@" >/dev/null 2>&1; }
    # SO DISTRIB HOLDER: the scratch root's two files and the diversion's holder.
    state() {
        so=$(cat "$t/root$1" 2>/dev/null || echo -)
        div=$(DPKG_ROOT="$t/root" dpkg-divert --admindir "$t/root/var/lib/dpkg" --listpackage "$1")
        echo "$so $(cat "$t/root${1%/*}/keyring_okv.distrib.so" 2>/dev/null || echo -) ${div:--}"
    }
    local p=/usr/lib/mysql/plugin/keyring_okv.so
    sdpkg -i "$t/other_1.deb" && sdpkg -i "$t/keyring-okv_1.deb"
    check "[switch] keyring-okv over another package's keyring_okv.so" eq "$(state $p)" "default other-1 keyring-okv"
    check "[switch] dpkg -i keyring-okv-fips" sdpkg -i "$t/keyring-okv-fips_1.deb"
    check "[switch] ... takes the diversion over, the other's copy still aside" eq "$(state $p)" "fips other-1 keyring-okv-fips"
    check "[switch] the other package's upgrade under keyring-okv-fips" sdpkg -i "$t/other_2.deb"
    check "[switch] ... goes aside" eq "$(state $p)" "fips other-2 keyring-okv-fips"
    check "[switch] dpkg -i keyring-okv back" sdpkg -i "$t/keyring-okv_1.deb"
    check "[switch] ... takes it back" eq "$(state $p)" "default other-2 keyring-okv"
    check "[switch] dpkg -r keyring-okv" sdpkg -r keyring-okv
    check "[switch] ... gives the other's copy back" eq "$(state $p)" "other-2 - -"
    check "[switch] dpkg -P of everything leaves the plugin directory empty" \
        bash -c 'dpkg --root="$1/root" --force-script-chrootless --force-not-root --log=/dev/null -P keyring-okv keyring-okv-fips other >/dev/null 2>&1 &&
                 [[ -z $(ls -A "$1/root/usr/lib/mysql/plugin" 2>/dev/null) ]]' _ "$t"
    rm -rf "$t"
}

# DEB VERSION OUT: a copy of the package with another version, nothing else changed (dpkg sees
# an upgrade or a downgrade; the files are the same build).
relabel() {
    local deb=$1 version=$2 out=$3 tree
    tree=$(mktemp -d "$TARGET_DIR/deb-tree.XXXXXX")
    dpkg-deb -R "$deb" "$tree/root"
    sed -i "s/^Version: .*/Version: $version/" "$tree/root/DEBIAN/control"
    dpkg-deb --root-owner-group -Zxz -b "$tree/root" "$out" >/dev/null
    rm -rf "$tree"
}

# DEB TDEB OUT: the layout of keyring-okv 0.1.0-1, the last with the tool inside, rebuilt from
# this build's files: one package with the tool, its man pages and the manual under
# /usr/share/doc/keyring-okv, the component's .cnf in the plugin directory a link to the
# conffile, no maintainer scripts and no dependency on keyring-okv-tools.
old_layout() {
    local deb=$1 tdeb=$2 out=$3 tree
    tree=$(mktemp -d "$TARGET_DIR/deb-tree.XXXXXX")
    dpkg-deb -R "$deb" "$tree/root"
    dpkg-deb -x "$tdeb" "$tree/root"
    cp -a "$tree/root/usr/share/doc/$TOOLS_PACKAGE/." "$tree/root/usr/share/doc/$PACKAGE/"
    rm -rf "$tree/root/usr/share/doc/$TOOLS_PACKAGE" "$tree/root/DEBIAN/"{preinst,postinst,postrm}
    ln -s "$COMPONENT_CNF" "$tree/root/usr/lib/mysql/plugin/component_keyring_okv.cnf"
    sed -i -e 's/^Version: .*/Version: 0.1.0-1/' \
        -e "/^Depends:/s/$TOOLS_PACKAGE, \?//" "$tree/root/DEBIAN/control"
    (cd "$tree/root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z |
        xargs -0 md5sum >DEBIAN/md5sums)
    dpkg-deb --root-owner-group -Zxz -b "$tree/root" "$out" >/dev/null
    rm -rf "$tree"
}

# DEB TDEB: from the 0.1.0-1 layout (old_layout) to this one with mysqld running the component,
# configured as the README of 0.1.0-1 said, through the plugin directory's link (so into the
# conffile): the tool moves to keyring-okv-tools, the link goes, and after a restart the
# component reads the same conffile directly.
test_upgrade_from_0_1_0_1() {
    local deb=$1 tdeb=$2 started=$SECONDS old="$TARGET_DIR/debian/upgrade-old-${PACKAGE}.deb"
    old_layout "$deb" "$tdeb" "$old"
    check "[from 0.1.0-1] dpkg -i the old layout" in_chroot_dpkg -i "$old"
    check "[from 0.1.0-1] ... with the link in the plugin directory and the tool" eq \
        "$(readlink "$plugin_dir/component_keyring_okv.cnf") $(chroot "$R" dpkg -S /usr/bin/keyring-okv)" \
        "$COMPONENT_CNF $PACKAGE: /usr/bin/keyring-okv"
    # Inside the chroot: the link is absolute.
    printf '{"kmip_configuration_directory": "%s"}\n' "$CONF" |
        chroot "$R" sh -c 'cat >/usr/lib/mysql/plugin/component_keyring_okv.cnf'
    check "[from 0.1.0-1] written through the link into the conffile" \
        grep -q "\"$CONF\"" "$R$COMPONENT_CNF"
    local cnf_sum data
    cnf_sum=$(sha256sum <"$R$COMPONENT_CNF")
    bash "$MYSQL" reset "$INSTANCE" >/dev/null 2>&1 || true
    bash "$MYSQL" start "$INSTANCE" --log-error-verbosity=3
    bash "$MYSQL" stop "$INSTANCE"
    data="$(bash "$MYSQL" path "$INSTANCE")/data"
    printf '{"components": "file://component_keyring_okv"}\n' >"$data/mysqld.my"
    bash "$MYSQL" start "$INSTANCE" --log-error-verbosity=3
    sql "CREATE DATABASE IF NOT EXISTS debupg; DROP TABLE IF EXISTS debupg.t;
         CREATE TABLE debupg.t (a INT) ENCRYPTION='Y'; INSERT INTO debupg.t VALUES (7)" >/dev/null
    check "[from 0.1.0-1] the component reads the conffile through the link" eq \
        "$(sql "SELECT CONCAT_WS(' ', (SELECT STATUS_VALUE FROM performance_schema.keyring_component_status WHERE STATUS_KEY='Component_status'),
                (SELECT STATUS_VALUE FROM performance_schema.keyring_component_status WHERE STATUS_KEY='Config_file'),
                (SELECT a FROM debupg.t))")" "Active /usr/lib/mysql/plugin/component_keyring_okv.cnf 7"
    check "[from 0.1.0-1] dpkg -i $PACKAGE and $TOOLS_PACKAGE with mysqld running" in_chroot_dpkg -i "$deb" "$tdeb"
    check "[from 0.1.0-1] the tool now belongs to $TOOLS_PACKAGE" eq \
        "$(chroot "$R" dpkg -S /usr/bin/keyring-okv)" "$TOOLS_PACKAGE: /usr/bin/keyring-okv"
    check "[from 0.1.0-1] the link is gone, the conffile intact" eq \
        "$(test -e "$plugin_dir/component_keyring_okv.cnf" || test -L "$plugin_dir/component_keyring_okv.cnf" && echo link) $(sha256sum <"$R$COMPONENT_CNF")" \
        " $cnf_sum"
    check "[from 0.1.0-1] dpkg --verify reports only the DBA's conffile" eq \
        "$(chroot "$R" dpkg --verify "$PACKAGE" "$TOOLS_PACKAGE" 2>&1)" "??5?????? c $COMPONENT_CNF"
    bash "$MYSQL" restart "$INSTANCE"
    check "[from 0.1.0-1] after the restart the component reads the conffile directly" eq \
        "$(sql "SELECT CONCAT_WS(' ', (SELECT STATUS_VALUE FROM performance_schema.keyring_component_status WHERE STATUS_KEY='Component_status'),
                (SELECT STATUS_VALUE FROM performance_schema.keyring_component_status WHERE STATUS_KEY='Config_file'),
                (SELECT a FROM debupg.t))")" "Active $COMPONENT_CNF 7"
    bash "$MYSQL" stop "$INSTANCE"
    rm -f "$data/mysqld.my"
    check "[from 0.1.0-1] dpkg -P" chroot "$R" dpkg -P "$PACKAGE" "$TOOLS_PACKAGE"
    rm -f "$old"
    say "upgrade from the 0.1.0-1 layout: $((SECONDS - started)) s"
}

# The component's status and the file it read, the rows and the key, with the server as it is.
upgrade_state() {
    sql "SELECT CONCAT_WS(' ',
            (SELECT STATUS_VALUE FROM performance_schema.keyring_component_status WHERE STATUS_KEY='Component_status'),
            (SELECT STATUS_VALUE FROM performance_schema.keyring_component_status WHERE STATUS_KEY='Config_file'),
            (SELECT GROUP_CONCAT(a ORDER BY a) FROM debupg.t),
            keyring_key_length_fetch('$upg_key'))" 2>&1
}

# DEB TDEB: version N installed, the component serving an encrypted table with its
# configuration in the DBA's edited conffile; N+1 installed over it with mysqld running,
# restart; then N again over N+1 the same way. Keys, rows and the conffile must come through.
test_upgrade_mysql() {
    local deb=$1 tdeb=$2 started=$SECONDS version prev
    version=$(dpkg-deb -f "$deb" Version)
    # A version just below this one, and still above the 0.1.0-2~ that the tools' Breaks name.
    prev="$version~prev"
    local n_deb="$TARGET_DIR/debian/upgrade-n-${PACKAGE}.deb" n_tdeb="$TARGET_DIR/debian/upgrade-n-${TOOLS_PACKAGE}.deb"
    relabel "$deb" "$prev" "$n_deb"
    relabel "$tdeb" "$prev" "$n_tdeb"
    check "[upgrade] dpkg -i version N ($prev)" in_chroot_dpkg -i "$n_deb" "$n_tdeb"

    # The DBA's configuration, written into the conffile itself (the server reads it because the
    # plugin directory has no component_keyring_okv.cnf), and the manifest in the data directory.
    printf '{\n  "kmip_configuration_directory": "%s",\n  "cache_keys": true\n}\n' "$CONF" >"$R$COMPONENT_CNF"
    local cnf_sum
    cnf_sum=$(sha256sum <"$R$COMPONENT_CNF")
    bash "$MYSQL" reset "$INSTANCE" >/dev/null 2>&1 || true
    bash "$MYSQL" start "$INSTANCE" --log-error-verbosity=3
    bash "$MYSQL" stop "$INSTANCE"
    local data
    data="$(bash "$MYSQL" path "$INSTANCE")/data"
    printf '{"components": "file://component_keyring_okv"}\n' >"$data/mysqld.my"
    rm -f "$data/component_keyring_okv.cnf"
    bash "$MYSQL" start "$INSTANCE" --log-error-verbosity=3
    bash "$MYSQL" udf "$INSTANCE"
    upg_key="debupg_$(date +%s)_$$"
    check "[upgrade] N: the component reads the edited conffile (Active)" eq \
        "$(sql "SELECT STATUS_VALUE FROM performance_schema.keyring_component_status WHERE STATUS_KEY='Component_status'")" Active
    check "[upgrade] N: keyring_key_generate" eq "$(sql "SELECT keyring_key_generate('$upg_key', 'AES', 32)")" 1
    sql "CREATE DATABASE IF NOT EXISTS debupg; DROP TABLE IF EXISTS debupg.t;
         CREATE TABLE debupg.t (a INT) ENCRYPTION='Y'; INSERT INTO debupg.t VALUES (1), (2)" >/dev/null
    local want="Active $COMPONENT_CNF 1,2 32"
    check "[upgrade] N: the encrypted table and the key" eq "$(upgrade_state)" "$want"

    local step to d t v row=3
    for step in "N+1:$deb:$tdeb:$version" "N:$n_deb:$n_tdeb:$prev"; do
        IFS=: read -r to d t v <<<"$step"
        check "[upgrade] dpkg -i $to with mysqld running" in_chroot_dpkg -i "$d" "$t"
        check "[upgrade] $to installed: $v (both packages)" eq \
            "$(chroot "$R" dpkg-query -W -f='${Version}\n' "$PACKAGE" "$TOOLS_PACKAGE" | sort -u)" "$v"
        check "[upgrade] $to: mysqld still serves the table before the restart" eq "$(upgrade_state)" "$want"
        check "[upgrade] $to: the edited conffile is intact" eq "$(sha256sum <"$R$COMPONENT_CNF")" "$cnf_sum"
        check "[upgrade] $to: dpkg knows it as changed by the DBA, nothing else" eq \
            "$(chroot "$R" dpkg --verify "$PACKAGE" "$TOOLS_PACKAGE" 2>&1)" "??5?????? c $COMPONENT_CNF"
        check "[upgrade] $to: the diversion is still $PACKAGE's" eq \
            "$(chroot "$R" dpkg-divert --listpackage /usr/lib/mysql/plugin/keyring_okv.so)" "$PACKAGE"
        bash "$MYSQL" restart "$INSTANCE"
        check "[upgrade] $to: after the restart the table and the key read back" eq "$(upgrade_state)" "$want"
        # Written under this version, read back under the next.
        sql "INSERT INTO debupg.t VALUES ($row)" >/dev/null
        want="${want% *},$row 32"
        row=$((row + 1))
    done
    check "[upgrade] the rows written under each version" eq "$(upgrade_state)" "Active $COMPONENT_CNF 1,2,3,4 32"
    check "[upgrade] keyring_key_remove" eq "$(sql "SELECT keyring_key_remove('$upg_key')")" 1
    bash "$MYSQL" stop "$INSTANCE"
    rm -f "$data/mysqld.my"
    check "[upgrade] dpkg -P" chroot "$R" dpkg -P "$PACKAGE" "$TOOLS_PACKAGE"
    check "[upgrade] dpkg -P takes the edited conffile" test ! -e "$R$COMPONENT_CNF"
    rm -f "$n_deb" "$n_tdeb"
    say "package upgrade and downgrade test: $((SECONDS - started)) s"
}

# ---------------------------------------------------------------- the MariaDB package
# Run in a MariaDB target: "host" (MariaDB 10.11 from Debian 12's packages) or "chroot" (11.8
# from Debian trixie), see scripts/mariadb-real.sh.
# The instance loads the packaged library (--plugin-dir); mariadb-real.sh still wants a build
# to copy into the instance's own plugin directory, which is not used.
maria() {
    KEYRING_OKV_MARIADB_TARGET=$TARGET_NAME \
        KEYRING_OKV_MARIADB_PLUGIN=${KEYRING_OKV_MARIADB_PLUGIN:-$PROFILE_DIR/libkmip_key_management.so} \
        bash scripts/mariadb-real.sh "$@" 7>&-
}
in_target() { if [[ -n $X ]]; then chroot "$X" "$@"; else "$@"; fi; }
msql() { maria sql "$MARIADB_INSTANCE" "$1"; }

# The paths the package installs into, with type and mode.
maria_snapshot() {
    local d
    for d in "$X/usr/lib/mysql" "$X/etc/mysql" "$X/usr/share/doc" "$X/usr/lib/debug"; do
        if [[ -e $d ]]; then find "$d" -printf '%y %m %p\n'; fi
    done | sort
}

cleanup_mariadb() {
    local t
    for t in host chroot; do
        KEYRING_OKV_MARIADB_TARGET=$t bash scripts/mariadb-real.sh stop "$MARIADB_INSTANCE" >/dev/null 2>&1 || true
        KEYRING_OKV_MARIADB_TARGET=$t bash scripts/mariadb-real.sh reset "$MARIADB_INSTANCE" >/dev/null 2>&1 || true
    done
    dpkg -P "$MARIADB_PACKAGE" >/dev/null 2>&1 || true
    local root
    root=$(KEYRING_OKV_MARIADB_TARGET=chroot bash scripts/mariadb-real.sh root 2>/dev/null) &&
        [[ -d $root ]] && chroot "$root" dpkg -P "$MARIADB_PACKAGE" >/dev/null 2>&1 || true
}

# TARGET DEB: install the MariaDB package into the target's MariaDB, enable it through its
# snippet as a DBA does, run an encrypted table against PyKMIP, remove it.
test_mariadb() {
    TARGET_NAME=$1
    local mdeb=$2
    maria install >&2
    X=""
    [[ $TARGET_NAME == chroot ]] && X=$(maria root)
    say "MariaDB package in $TARGET_NAME: $(maria version)"
    bash scripts/pykmip.sh start >&2
    # One package test at a time per target (the host's dpkg database is shared). The servers
    # started below must not inherit the lock (maria closes it for them).
    exec 7>"${TMPDIR:-/tmp}/keyring-okv-deb-mariadb-$TARGET_NAME.lock"
    flock -w 900 7 || die "timed out waiting for the MariaDB package test lock"
    local pykmip_conf
    pykmip_conf=$(bash scripts/pykmip.sh confdir)

    in_target dpkg -P "$MARIADB_PACKAGE" >/dev/null 2>&1 || true
    maria reset "$MARIADB_INSTANCE" >/dev/null 2>&1 || true
    local before
    before=$(maria_snapshot)

    # Version N first (this build relabelled a version lower), so that the upgrade to N+1 and
    # the downgrade back run below under a server that uses it.
    local version mdeb_n started=$SECONDS
    version=$(dpkg-deb -f "$mdeb" Version)
    mdeb_n="$TARGET_DIR/debian/upgrade-n-$MARIADB_PACKAGE.deb"
    relabel "$mdeb" "$version~prev" "$mdeb_n"
    cp "$mdeb_n" "$X/tmp/$MARIADB_PACKAGE.deb"
    check "[$TARGET_NAME] dpkg -i $MARIADB_PACKAGE (version N, $version~prev)" in_target dpkg -i "/tmp/$MARIADB_PACKAGE.deb"
    rm -f "$X/tmp/$MARIADB_PACKAGE.deb"
    local files
    files=$(in_target dpkg -L "$MARIADB_PACKAGE")
    check "[$TARGET_NAME] kmip_key_management.so is in MariaDB's plugin directory" \
        grep -qx /usr/lib/mysql/plugin/kmip_key_management.so <<<"$files"
    check "[$TARGET_NAME] the snippet is in /etc/mysql/mariadb.conf.d/ and is a conffile" eq \
        "$(in_target dpkg-query -W -f='${Conffiles}\n' "$MARIADB_PACKAGE" | awk 'NF { print $1 }')" "$SNIPPET"
    check "[$TARGET_NAME] every line of the snippet is a comment or a [group]" eq \
        "$(grep -vE '^[[:space:]]*(#|$|\[)' "$X$SNIPPET" || true)" ""
    check "[$TARGET_NAME] it recommends $TOOLS_PACKAGE (the admin tool, nothing of MySQL's)" eq \
        "$(dpkg-deb -f "$mdeb" Recommends)" "$TOOLS_PACKAGE"
    check "[$TARGET_NAME] it holds no MySQL library and no manual (both elsewhere)" eq \
        "$(grep -E 'keyring_okv|/html/' <<<"$files" || true)" ""
    check "[$TARGET_NAME] dpkg --verify finds every file as packaged" \
        eq "$(in_target dpkg --verify "$MARIADB_PACKAGE" 2>&1)" ""

    # A server that reads the snippet as installed loads nothing.
    local conf
    conf=$(maria conf "$MARIADB_INSTANCE" "$pykmip_conf")
    export KEYRING_OKV_MARIADB_INCLUDE=$SNIPPET
    check "[$TARGET_NAME] mariadbd starts with the snippet as installed" \
        maria start "$MARIADB_INSTANCE" --plugin-dir=/usr/lib/mysql/plugin
    check "[$TARGET_NAME] the snippet as installed loads no plugin" eq \
        "$(msql "SELECT COUNT(*) FROM information_schema.PLUGINS WHERE PLUGIN_NAME='kmip_key_management'")" 0
    maria stop "$MARIADB_INSTANCE" >&2 || true

    # Enabled as a DBA does: key 1 on the KMIP server, then the snippet's lines uncommented.
    local ns="debmaria_${TARGET_NAME}_$(date +%s)_$$"
    check "[$TARGET_NAME] keyring-okv mariadb create-key 1" \
        "$PROFILE_DIR/keyring-okv" --conf-dir "$pykmip_conf" mariadb create-key 1 --namespace "$ns"
    sed -i -e 's/^#plugin_load_add/plugin_load_add/' \
        -e 's/^#kmip_key_management = FORCE/kmip_key_management = FORCE/' \
        -e "s|^#kmip_key_management_conf_dir = .*|kmip_key_management_conf_dir = $conf|" \
        -e "s|^#kmip_key_management_key_namespace = .*|kmip_key_management_key_namespace = $ns|" \
        -e 's/^#innodb_encrypt_tables/innodb_encrypt_tables/' \
        -e 's/^#innodb_encryption_threads/innodb_encryption_threads/' "$X$SNIPPET"
    check "[$TARGET_NAME] mariadbd starts with the snippet enabled" maria start "$MARIADB_INSTANCE"
    check "[$TARGET_NAME] @@plugin_dir is the default" eq "$(msql 'SELECT @@plugin_dir')" /usr/lib/mysql/plugin/
    check "[$TARGET_NAME] kmip_key_management ACTIVE from kmip_key_management.so" eq \
        "$(msql "SELECT CONCAT(PLUGIN_STATUS, ' ', PLUGIN_LIBRARY) FROM information_schema.PLUGINS WHERE PLUGIN_NAME='kmip_key_management'")" \
        "ACTIVE kmip_key_management.so"
    check "[$TARGET_NAME] kmip_key_management_fips_mode is $([[ -n $FIPS ]] && echo ON || echo OFF)" eq \
        "$(msql "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME='KMIP_KEY_MANAGEMENT_FIPS_MODE'")" \
        "$([[ -n $FIPS ]] && echo ON || echo OFF)"
    check "[$TARGET_NAME] CREATE TABLE … ENCRYPTED=YES" msql "CREATE DATABASE IF NOT EXISTS debtest;
          DROP TABLE IF EXISTS debtest.t; CREATE TABLE debtest.t (a INT) ENGINE=InnoDB ENCRYPTED=YES;
          INSERT INTO debtest.t VALUES (42)"
    check "[$TARGET_NAME] restart" maria restart "$MARIADB_INSTANCE"
    check "[$TARGET_NAME] the encrypted table reads back after a restart" eq "$(msql 'SELECT a FROM debtest.t')" 42
    check "[$TARGET_NAME] the table is encrypted with key 1" eq \
        "$(msql "SELECT CONCAT(ENCRYPTION_SCHEME, ' ', CURRENT_KEY_ID) FROM information_schema.INNODB_TABLESPACES_ENCRYPTION WHERE NAME='debtest/t'")" "1 1"
    check "[$TARGET_NAME] kmip_key_management_requests counts KMIP requests" \
        bash -c '(( $1 > 0 ))' _ "$(msql "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME='KMIP_KEY_MANAGEMENT_REQUESTS'")"

    # N+1 over N with mariadbd running, restart; then N over N+1 the same way. The snippet the
    # DBA enabled above is a changed conffile and must come through both.
    local snippet_sum step to d v row=43 want=42
    snippet_sum=$(sha256sum <"$X$SNIPPET")
    for step in "N+1:$mdeb:$version" "N:$mdeb_n:$version~prev"; do
        IFS=: read -r to d v <<<"$step"
        cp "$d" "$X/tmp/$MARIADB_PACKAGE.deb"
        check "[$TARGET_NAME] [upgrade] dpkg -i $to with mariadbd running" in_target dpkg -i "/tmp/$MARIADB_PACKAGE.deb"
        rm -f "$X/tmp/$MARIADB_PACKAGE.deb"
        check "[$TARGET_NAME] [upgrade] $to installed: $v" eq \
            "$(in_target dpkg-query -W -f='${Version}' "$MARIADB_PACKAGE")" "$v"
        check "[$TARGET_NAME] [upgrade] $to: mariadbd still serves the table before the restart" eq \
            "$(msql 'SELECT GROUP_CONCAT(a ORDER BY a) FROM debtest.t')" "$want"
        check "[$TARGET_NAME] [upgrade] $to: the enabled snippet is intact" eq "$(sha256sum <"$X$SNIPPET")" "$snippet_sum"
        check "[$TARGET_NAME] [upgrade] $to: dpkg knows it as changed by the DBA, nothing else" eq \
            "$(in_target dpkg --verify "$MARIADB_PACKAGE" 2>&1)" "??5?????? c $SNIPPET"
        check "[$TARGET_NAME] [upgrade] $to: restart" maria restart "$MARIADB_INSTANCE"
        check "[$TARGET_NAME] [upgrade] $to: the plugin is ACTIVE again" eq \
            "$(msql "SELECT PLUGIN_STATUS FROM information_schema.PLUGINS WHERE PLUGIN_NAME='kmip_key_management'")" ACTIVE
        check "[$TARGET_NAME] [upgrade] $to: the encrypted table reads back after the restart" eq \
            "$(msql 'SELECT GROUP_CONCAT(a ORDER BY a) FROM debtest.t')" "$want"
        # Written under this version, read back under the next.
        msql "INSERT INTO debtest.t VALUES ($row)" >/dev/null
        want="$want,$row"
        row=$((row + 1))
    done
    check "[$TARGET_NAME] [upgrade] the rows written under each version" eq \
        "$(msql 'SELECT GROUP_CONCAT(a ORDER BY a) FROM debtest.t')" "42,43,44"
    rm -f "$mdeb_n"
    say "MariaDB package in $TARGET_NAME, with its upgrade and downgrade: $((SECONDS - started)) s"
    maria stop "$MARIADB_INSTANCE" >&2 || true
    maria reset "$MARIADB_INSTANCE" >&2 || true
    unset KEYRING_OKV_MARIADB_INCLUDE

    # Remove: the changed snippet (a conffile) stays until purge; purge leaves nothing.
    check "[$TARGET_NAME] dpkg -r" in_target dpkg -r "$MARIADB_PACKAGE"
    check "[$TARGET_NAME] dpkg -r keeps the changed snippet" test -f "$X$SNIPPET"
    check "[$TARGET_NAME] dpkg -P" in_target dpkg -P "$MARIADB_PACKAGE"
    check "[$TARGET_NAME] after dpkg -P the file list is as before" eq "$(maria_snapshot)" "$before"
    check "[$TARGET_NAME] after dpkg -P dpkg knows nothing of the package" \
        bash -c '! compgen -G "$1/var/lib/dpkg/info/$2.*" >/dev/null' _ "$X" "$MARIADB_PACKAGE"
    exec 7>&-
}

cmd_test_mariadb() {
    [[ $EUID -eq 0 ]] || die "must run as root (dpkg on the host and in the chroot)"
    cmd_build >/dev/null
    cmd_lint
    local mdeb
    mdeb=$(mariadb_deb_path) || die "no MariaDB package"
    trap cleanup_mariadb EXIT
    test_mariadb host "$mdeb"
    test_mariadb chroot "$mdeb"
    echo "deb package: $passed passed, $failed failed"
    ((failed == 0))
}

case "${1:-}" in
    build) cmd_build ;;
    lint) cmd_lint ;;
    test) cmd_test ;;
    test-mariadb) cmd_test_mariadb ;;
    test-switch)
        # Alone: no build, no chroot, about a second.
        test_diversion_switch
        echo "deb package: $passed passed, $failed failed"
        ((failed == 0))
        ;;
    *) echo "usage: $0 {build|lint|test|test-mariadb|test-switch}" >&2; exit 2 ;;
esac
