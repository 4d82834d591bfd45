#!/usr/bin/env bash
# Runs every test of keyring_okv on a fresh Debian 12 machine (as root): installs what the tests
# need (system packages, the PyKMIP virtualenv, the mysqld 9.7 chroot, MariaDB 10.11 and the
# MariaDB 11.8 chroot), checks format and lints,
# checks the dependency tree's licences and the generated copyright file (scripts/deny.sh),
# then runs the whole test suite, including the end-to-end tests with a real mysqld and PyKMIP,
# the FIPS 140-3 build and its tests (scripts/fips.sh),
# builds and checks the manual (docs/) and checks the Prometheus alerting rules.
# CI runs exactly this (.ci/run).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib/toolchain.sh
source scripts/lib/toolchain.sh # Rust as Cargo.toml's rust-version, or one line and exit 1

step() { printf '==> %s\n' "$*"; }
started=$SECONDS

missing=()
for tool in openssl:openssl cc:gcc c++:g++ nm:binutils debootstrap:debootstrap; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool#*:}")
done
if ((${#missing[@]})); then
  step "installing system packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

cleanup() {
  bash scripts/mysql-real.sh stop-all >/dev/null 2>&1 || true
  bash scripts/mariadb-real.sh stop-all >/dev/null 2>&1 || true
  KEYRING_OKV_MARIADB_TARGET=chroot bash scripts/mariadb-real.sh stop-all >/dev/null 2>&1 || true
  # Host instances in the service mode live outside the checkout (tests/production/).
  KEYRING_OKV_MARIADB_AS_SERVICE=1 bash scripts/mariadb-real.sh stop-all >/dev/null 2>&1 || true
  KEYRING_OKV_PYKMIP_NAME=mdbout_host bash scripts/pykmip.sh stop >/dev/null 2>&1 || true
  KEYRING_OKV_PYKMIP_NAME=mdbout_chroot bash scripts/pykmip.sh stop >/dev/null 2>&1 || true
  KEYRING_OKV_PYKMIP_NAME=second bash scripts/pykmip.sh stop >/dev/null 2>&1 || true
  # The instance tests/plugin/ops_mysql.rs stops with SIGSTOP (it resumes it itself).
  KEYRING_OKV_PYKMIP_NAME=ops bash scripts/pykmip.sh stop >/dev/null 2>&1 || true
  KEYRING_OKV_PYKMIP_NAME=component bash scripts/pykmip.sh stop >/dev/null 2>&1 || true
  KEYRING_OKV_PYKMIP_NAME=docs_migration bash scripts/pykmip.sh stop >/dev/null 2>&1 || true
  KEYRING_OKV_PYKMIP_NAME=ca_cache bash scripts/pykmip.sh stop >/dev/null 2>&1 || true
  KEYRING_OKV_PYKMIP_NAME=ca_starve bash scripts/pykmip.sh stop >/dev/null 2>&1 || true
  bash scripts/pykmip.sh stop >/dev/null 2>&1 || true
}
trap cleanup EXIT

step "PyKMIP 0.11.0 test server"
# Every run starts from empty lab databases: keys that an earlier local run left behind (a
# failed test does not remove its keys) must not fail this run with "already exists".
for instance in main second ops component docs_migration mdbout_host mdbout_chroot; do
  KEYRING_OKV_PYKMIP_NAME=$instance bash scripts/pykmip.sh reset
done
bash scripts/pykmip.sh setup
bash scripts/pykmip.sh start

step "real mysqld (Debian sid chroot)"
bash scripts/mysql-real.sh install

# The keyring component: the MySQL 9.7 headers its layout test compiles against (mysql-source
# in the chroot, include/ extracted once) and the component's own PyKMIP instance for the
# migration test is started by the tests themselves.
step "MySQL 9.7 headers for the component layout test"
bash scripts/mysql-headers.sh >/dev/null
# kmip_key_management's end-to-end tests run one plugin binary in two MariaDB releases:
# 10.11 from this machine's Debian 12 packages (the system service is never started) and
# 11.8 from Debian trixie in a debootstrap chroot.
step "real MariaDB 10.11 (host packages) and 11.8 (Debian trixie chroot)"
bash scripts/mariadb-real.sh install
KEYRING_OKV_MARIADB_TARGET=chroot bash scripts/mariadb-real.sh install

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy -j2 --all-targets --locked -- -D warnings

results=$(mktemp)
status=0

# The dependency tree (scripts/deny.sh): cargo-deny's licence, ban and source checks (and the
# RustSec advisories where the database is on the machine; CI reaches no git host to fetch it),
# then packaging/deb/copyright against the tree. cargo-deny is installed once into ~/.cargo/bin.
step "dependency licences, bans, sources; the copyright file (scripts/deny.sh)"
deny_started=$SECONDS
bash scripts/deny.sh || status=$?
step "the dependency checks took $((SECONDS - deny_started)) s"

step "cargo test"
cargo test -j2 --locked --no-fail-fast --all-targets 2>&1 | tee "$results" || status=$?

# The Debian packages: build the three (cargo-deb, installed once into ~/.cargo/bin), lintian
# (no errors), then dpkg -i into the mysqld chroot, mysqld with keyring_okv.so from the default
# plugin dir against PyKMIP, keyring-okv check and man from /usr/bin, dpkg -r/-P leave nothing,
# another package's keyring_okv.so diverted, the upgrade N -> N+1 and the downgrade back with
# mysqld running the component; then the MariaDB package in MariaDB 10.11 (host) and 11.8
# (chroot), enabled through its snippet, an encrypted table against PyKMIP, dpkg -r/-P.
step "Debian package (scripts/deb.sh test)"
bash scripts/deb.sh test || status=$?

# The FIPS 140-3 build (scripts/fips.sh): cmake and Go from Debian when missing, the release
# build with the feature into target/fips/, then with it tests/config/fips_build.rs, the client key
# matrix over TLS 1.2 and 1.3 (tests/config/tls_client_keys.rs) and the plugin's end-to-end test in the
# real mysqld against PyKMIP (tests/plugin/e2e_mysql.rs); then its two Debian packages, with lintian.
step "FIPS 140-3 build (scripts/fips.sh test, deb)"
fips_started=$SECONDS
bash scripts/fips.sh test 2>&1 | tee -a "$results" || status=1
bash scripts/fips.sh deb || status=1
step "the FIPS variant took $((SECONDS - fips_started)) s"

# The manual: mdBook builds docs/ into target/book/ (mdbook installed once when missing) and
# every link and anchor of the generated HTML is checked; tests/docs/docs.rs (part of cargo test
# above) checks the Markdown against the code.
step "the manual (scripts/book.sh)"
bash scripts/book.sh || status=$?

# The Prometheus alerting rules: promtool check rules and promtool test rules (Debian's
# prometheus package installed once when promtool is missing).
step "alerting rules (scripts/alerts.sh)"
bash scripts/alerts.sh || status=$?

# Fuzzing: each cargo-fuzz target (TTLV decoder, KMIP response parsers, okvclient.ora, ssl/
# loader) for about a minute on the nightly toolchain; installs cargo-fuzz when missing.
step "fuzzing (scripts/fuzz.sh, 60 s per target)"
bash scripts/fuzz.sh 60 2>&1 | tee -a "$results" || status=1

# The closing line sums every test binary's result.
summary=$(awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1) } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$results")
rm -f "$results"
if ((status != 0)); then
  step "tests FAILED after $((SECONDS - started)) s"
else
  step "all tests passed in $((SECONDS - started)) s"
fi
echo "$summary"
exit "$status"
