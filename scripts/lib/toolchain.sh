# toolchain.sh: stop at once, with one line naming the Rust version needed, when cargo is
# missing or older than the workspace's rust-version: otherwise a fresh Debian 12 (rustc 1.63)
# fails deep inside `cargo build` with no hint. Sourced by scripts/demo.sh and
# scripts/test-all.sh before anything else; `bash scripts/lib/toolchain.sh` runs it alone.
# Only bash builtins besides cargo itself, so that it works (and is tested) with any PATH.
# shellcheck shell=bash

require_rust_toolchain() {
  local manifest=${BASH_SOURCE[0]%/*}/../../Cargo.toml line need='' have='' out
  # The one place the version is written: [workspace.package] rust-version.
  while IFS= read -r line; do
    if [[ $line =~ ^rust-version\ *=\ *\"([0-9.]+)\" ]]; then
      need=${BASH_REMATCH[1]}
      break
    fi
  done <"$manifest"
  if [[ -z $need ]]; then
    echo "keyring_okv: no rust-version in $manifest" >&2
    exit 1
  fi
  # rustup installs into ~/.cargo/bin, which a fresh login shell may not have on its PATH yet.
  if ! command -v cargo >/dev/null 2>&1 && [[ -x ${HOME:-/nonexistent}/.cargo/bin/cargo ]]; then
    PATH=$HOME/.cargo/bin:$PATH
  fi
  local hint="install it with rustup (Debian 12's own rustc 1.63 is too old); database hosts need only the Debian packages, built elsewhere"
  if ! command -v cargo >/dev/null 2>&1; then
    echo "keyring_okv needs Rust $need or later and cargo is not installed: $hint" >&2
    exit 1
  fi
  out=$(cargo --version 2>/dev/null) || out=''
  [[ $out =~ ^cargo\ ([0-9]+)\.([0-9]+)(\.([0-9]+))? ]] && have=$out
  if [[ -z $have ]]; then
    echo "keyring_okv needs Rust $need or later and 'cargo --version' does not say its version: $hint" >&2
    exit 1
  fi
  local -a h=("${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}" "${BASH_REMATCH[4]:-0}") n
  IFS=. read -r -a n <<<"$need"
  local i
  for i in 0 1 2; do
    if ((10#${h[i]} > 10#${n[i]:-0})); then
      return 0
    elif ((10#${h[i]} < 10#${n[i]:-0})); then
      echo "keyring_okv needs Rust $need or later, and cargo is ${h[0]}.${h[1]}.${h[2]}: $hint" >&2
      exit 1
    fi
  done
}

require_rust_toolchain
unset -f require_rust_toolchain
