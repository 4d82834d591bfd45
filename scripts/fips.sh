#!/usr/bin/env bash
# fips.sh: the FIPS 140-3 build of keyring_okv (cargo feature "fips": rustls in FIPS mode on the
# FIPS module of aws-lc-rs). Everything goes to target/fips/ (or $CARGO_TARGET_DIR/fips), beside
# the default build, so neither rebuilds the other.
#
#   tools   install what aws-lc-fips-sys needs to build when missing: cmake and Go (Debian's
#           cmake and golang-go packages) and a C compiler.
#   build   tools, then cargo build --release --features fips of the whole workspace: the three
#           libraries and keyring-okv. Prints the time it took.
#   test    build, then with the feature (so the test binaries build and load the FIPS libraries,
#           in the same release profile): tests/config/fips_build.rs (FIPS mode on, the module named,
#           non-approved key encryptions refused), tests/config/tls_client_keys.rs (every client key
#           type over TLS 1.3 and 1.2 through the module) and tests/plugin/e2e_mysql.rs (the plugin in a
#           real mysqld 9.7 against PyKMIP: InnoDB, binlog, keyring_udf, failover, with
#           Keyring_okv_fips_mode=ON). Needs what scripts/test-all.sh installs (PyKMIP, the chroot).
#   deb     build, then the Debian packages keyring-okv-fips, keyring-okv-tools-fips and
#           mariadb-plugin-kmip-key-management-fips (cargo-deb variants "fips", "tools-fips" and
#           "mariadb-fips", each conflicting with and replacing its default package), checked
#           with lintian.
#   test-deb  build, then scripts/deb.sh test on the FIPS packages: installed in the mysqld
#           chroot, the plugin from the default plugin directory with FIPS mode on, the
#           component, keyring-okv check, removal; the MariaDB package in 10.11 and 11.8.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { echo "fips: $*" >&2; }
die() { echo "fips: error: $*" >&2; exit 1; }

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/fips"

cmd_tools() {
    local missing=() tool
    for tool in cmake:cmake go:golang-go cc:gcc c++:g++; do
        command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool#*:}")
    done
    if ((${#missing[@]})); then
        say "installing ${missing[*]} (needed to build the FIPS module)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

cmd_build() {
    cmd_tools
    local started=$SECONDS
    say "cargo build --release --features fips (into $CARGO_TARGET_DIR)"
    cargo build --release --locked -j2 --workspace --features fips >&2
    say "built in $((SECONDS - started)) s"
}

cmd_test() {
    cmd_build
    say "tests with the FIPS build"
    cargo test --release --locked -j2 --no-fail-fast --features fips \
        --test fips_build --test tls_client_keys --test e2e_mysql
}

cmd_deb() {
    cmd_build
    KEYRING_OKV_DEB_FIPS=1 bash scripts/deb.sh build >/dev/null
    KEYRING_OKV_DEB_FIPS=1 bash scripts/deb.sh lint
}

cmd_test_deb() {
    cmd_build
    KEYRING_OKV_DEB_FIPS=1 bash scripts/deb.sh test
}

case "${1:-}" in
    tools) cmd_tools ;;
    build) cmd_build ;;
    test) cmd_test ;;
    deb) cmd_deb ;;
    test-deb) cmd_test_deb ;;
    *) die "usage: $0 tools|build|test|deb|test-deb" ;;
esac
