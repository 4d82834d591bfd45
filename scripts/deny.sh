#!/usr/bin/env bash
# deny.sh: the dependency tree's checks (docs/licensing.md says why each is what it is):
# - cargo-deny (deny.toml): every crate's licence on the allow-list the project's licence
#   implies, banned crates and crates from anywhere but crates.io refused, and the RustSec
#   advisories where the advisory database is on this machine;
# - packaging/deb/copyright is the one scripts/copyright.sh writes from the tree.
#
# cargo-deny is installed once into ~/.cargo/bin with `cargo install --locked` when missing or
# of another version (about 6 minutes on 2 busy cores). The advisory database is a git repository,
# which cargo-deny fetches from a git host: where the machine reaches none (CI reaches package
# registries only) and no copy is in ~/.cargo/advisory-dbs, the advisories are skipped with a
# line that says so. `bash scripts/deny.sh fetch` fetches the database where a git host is
# reachable, for the next runs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

CARGO_DENY_VERSION=0.20.2
say() { echo "deny: $*" >&2; }

if [[ $(cargo deny --version 2>/dev/null) != "cargo-deny $CARGO_DENY_VERSION" ]]; then
    # cargo-deny needs a newer Rust than the workspace's rust-version.
    if [[ $(cargo --version) =~ ^cargo\ 1\.([0-9]+)\. ]] && ((BASH_REMATCH[1] < 88)); then
        say "error: cargo-deny $CARGO_DENY_VERSION needs Rust 1.88 or later to install ($(cargo --version)); the dependency checks did not run"
        exit 1
    fi
    say "installing cargo-deny $CARGO_DENY_VERSION into ~/.cargo/bin (once, about 6 minutes)"
    cargo install cargo-deny --version "$CARGO_DENY_VERSION" --locked --force -j2 --quiet
fi

if [[ ${1:-} == fetch ]]; then
    cargo deny --locked --workspace fetch db
    exit
fi

# --workspace: every member is a root (the FIPS variant's crates come from deny.toml's
# all-features); the inclusion graphs of duplicate versions are left out (pages of them).
deny=(cargo deny --locked --workspace)
status=0
"${deny[@]}" check --hide-inclusion-graph licenses bans sources || status=1
dbs=${CARGO_HOME:-$HOME/.cargo}/advisory-dbs
if compgen -G "$dbs/*/crates" >/dev/null; then
    # The copy as it is: --offline keeps cargo-deny from trying to update it.
    "${deny[@]}" --offline check --hide-inclusion-graph advisories || status=1
else
    say "advisories skipped: no RustSec advisory database in $dbs (this machine reaches no git host to fetch it; bash scripts/deny.sh fetch where one is reachable)"
fi
bash scripts/copyright.sh check || status=1
exit "$status"
