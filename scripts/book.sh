#!/usr/bin/env bash
# book.sh: build the manual (docs/, an mdBook) into target/book/ and check the generated HTML:
# every relative link leads to a page of the book and every #anchor to an element id there.
# tests/docs/docs.rs checks the same on the Markdown; this checks what mdBook actually wrote.
#
# mdBook comes from Debian when the archive has it, else from `cargo install --locked` once
# into ~/.cargo/bin (bookworm has no mdbook package).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

MDBOOK_VERSION=0.5.4
say() { echo "book: $*" >&2; }

mdbook_bin() {
    if command -v mdbook >/dev/null 2>&1; then
        command -v mdbook
    elif [[ -x $HOME/.cargo/bin/mdbook ]]; then
        echo "$HOME/.cargo/bin/mdbook"
    else
        return 1
    fi
}

if ! mdbook=$(mdbook_bin); then
    apt-get update -qq || true
    if apt-cache policy mdbook 2>/dev/null | grep -q 'Candidate: [0-9]'; then
        say "installing mdbook from the Debian archive"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mdbook >/dev/null
    else
        # Without the serve and watch features (a web server and a file watcher the build
        # does not use): 113 crates instead of 190, about 3 minutes on 2 cores.
        say "installing mdbook $MDBOOK_VERSION into ~/.cargo/bin (once, about 3 minutes)"
        cargo install mdbook --version "$MDBOOK_VERSION" --locked -j2 --quiet \
            --no-default-features --features search
    fi
    mdbook=$(mdbook_bin)
fi

rm -rf target/book
"$mdbook" build docs 2>&1 | grep -v ' INFO ' >&2 || true
[[ -f target/book/index.html ]] || { say "error: mdbook wrote no book"; exit 1; }

python3 - target/book <<'PY'
import html.parser, os, sys, urllib.parse

root = sys.argv[1]
ids, links = {}, []

class Page(html.parser.HTMLParser):
    def __init__(self, name):
        super().__init__()
        self.name = name
        ids[name] = set()
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            ids[self.name].add(a["id"])
        if tag == "a" and a.get("href"):
            links.append((self.name, a["href"]))

for dirpath, _, files in os.walk(root):
    for f in files:
        if f.endswith(".html"):
            path = os.path.join(dirpath, f)
            name = os.path.relpath(path, root)
            with open(path, encoding="utf-8") as fh:
                Page(name).feed(fh.read())

problems = []
for page, href in links:
    if page in ("print.html", "404.html") or "://" in href or href.startswith(("mailto:", "javascript:")):
        continue
    target, _, anchor = href.partition("#")
    target = urllib.parse.unquote(target)
    dest = os.path.normpath(os.path.join(os.path.dirname(page), target)) if target else page
    if dest not in ids:
        problems.append(f"{page}: link {href}: no page {dest}")
    elif anchor and urllib.parse.unquote(anchor) not in ids[dest]:
        problems.append(f"{page}: link {href}: {dest} has no id '{anchor}'")
for p in problems:
    print("book: broken link:", p, file=sys.stderr)
print(f"book: {len(ids)} pages, {len(links)} links checked, {len(problems)} broken", file=sys.stderr)
sys.exit(1 if problems else 0)
PY
