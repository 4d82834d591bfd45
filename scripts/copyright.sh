#!/usr/bin/env bash
# copyright.sh: write packaging/deb/copyright (DEP-5) and the table of crates in
# docs/licensing.md from the dependency tree, so that the third-party holders and licences they
# list are those of the crates the packages are built from.
#
#   bash scripts/copyright.sh          # rewrite both
#   bash scripts/copyright.sh check    # exit 1, with a diff, when a committed file differs
#
# The crates are those `cargo tree --all-features` (the FIPS packages share the file) reaches
# from the workspace on x86_64 Linux through normal and build dependencies (dev-dependencies
# are test-only and never built into a package). Each crate's holders are the
# "Copyright" lines of its own licence files; when it has none, its Cargo.toml authors. The
# licence texts come from LICENSES/ (or /usr/share/common-licenses/ where Debian has them).
# See docs/licensing.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

OUT=packaging/deb/copyright
DOC=docs/licensing.md
mode=${1:-write}
case $mode in write | check) ;; *)
    echo "usage: bash scripts/copyright.sh [check]" >&2
    exit 2
    ;;
esac

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
generated=$work/copyright
# cargo tree applies the feature resolver (cargo metadata's graph also holds optional
# dependencies no feature turns on); `no-proc-macro` leaves out what only runs in the compiler.
tree() {
    cargo tree --locked --all-features --workspace --target x86_64-unknown-linux-gnu \
        --prefix none --format '{p}' "$@" | sed 's/ (\*)$//' | sort -u
}
tree -e normal,no-proc-macro >"$work/linked"
tree -e normal,build >"$work/built"
cargo metadata --format-version 1 --locked --all-features \
    --filter-platform x86_64-unknown-linux-gnu >"$work/metadata.json"
python3 scripts/lib/copyright.py LICENSES "$work/linked" "$work/built" "$work/table" \
    <"$work/metadata.json" >"$generated"
# docs/licensing.md with the table between its two markers replaced by the generated one.
python3 - "$DOC" "$work/table" >"$work/licensing.md" <<'PY'
import sys
doc, table = open(sys.argv[1]).read(), open(sys.argv[2]).read()
begin, end = "<!-- crates: begin (scripts/copyright.sh) -->\n", "<!-- crates: end -->"
head, rest = doc.split(begin, 1)
sys.stdout.write(head + begin + table + end + rest.split(end, 1)[1])
PY

if [[ $mode == check ]]; then
    status=0
    for pair in "$OUT:$generated" "$DOC:$work/licensing.md"; do
        if ! diff -u "${pair%%:*}" "${pair#*:}"; then
            echo "copyright: ${pair%%:*} is not the one the dependency tree gives; run bash scripts/copyright.sh and commit it" >&2
            status=1
        fi
    done
    ((status == 0)) && echo "copyright: $OUT and the table in $DOC match the dependency tree ($(grep -c '^Files: vendor/' "$OUT") crates)" >&2
    exit "$status"
fi
cp "$generated" "$OUT"
cp "$work/licensing.md" "$DOC"
echo "copyright: wrote $OUT and the table in $DOC ($(grep -c '^Files: vendor/' "$OUT") crates)" >&2
