"""Writes packaging/deb/copyright (DEP-5) from `cargo metadata` on stdin; see scripts/copyright.sh.

argv[1] is the directory of licence texts (LICENSES/); argv[2] and argv[3] list the crates
(`name vVERSION`, as `cargo tree --format {p}` prints them) built into the binaries and used by
the build at all; argv[4], where given, receives the same list as a Markdown table for
docs/licensing.md. The output depends only on Cargo.lock and
the crates' own files, never on the machine or the date, so that a check can compare it with the
committed file.
"""

import json
import os
import re
import sys

LICENSES = sys.argv[1]

# Licences whose full text Debian ships in /usr/share/common-licenses/.
COMMON = {"Apache-2.0": "Apache-2.0", "CC0-1.0": "CC0-1.0", "GPL-2.0-only": "GPL-2",
          "LGPL-2.1-or-later": "LGPL-2.1"}
OWN_LICENCE = "GPL-2 with Universal-FOSS exception"

meta = json.load(sys.stdin)
packages = {p["id"]: p for p in meta["packages"]}
members = set(meta["workspace_members"])


by_version = {(p["name"], "v" + p["version"]): p["id"] for p in meta["packages"]}


def crate_ids(path):
    ids = set()
    with open(path, encoding="utf-8") as f:
        for line in f:
            words = line.split()
            if len(words) < 2:
                continue
            pid = by_version.get((words[0], words[1]))
            if pid is None:
                sys.exit(f"copyright: {line.strip()} is not in cargo metadata")
            ids.add(pid)
    return ids - members


linked = crate_ids(sys.argv[2])
built = crate_ids(sys.argv[3]) | linked

YEAR = re.compile(r"\b(19|20)\d\d\b")
TEMPLATE = re.compile(r"<year>|\[yyyy\]|\{yyyy\}|<copyright holders>|\[name of copyright owner\]"
                      r"|\[fullname\]|<owner>|\{name of copyright owner\}", re.I)
LICENCE_PROSE = re.compile(r"(?i)\b(notices?|licen[cs]e[ds]?|holders?|owners?|permission|above"
                           r"|statement|law|protection|and related|is held|the software)\b")
NOTICE_FILE = re.compile(r"^(LICEN[CS]E|COPYING|COPYRIGHT|NOTICE|UNLICENSE)", re.I)


def holders(pkg):
    """The crate's "Copyright ..." lines from its licence files; else its Cargo.toml authors."""
    root = os.path.dirname(pkg["manifest_path"])
    found, seen = [], set()
    for name in sorted(os.listdir(root)):
        path = os.path.join(root, name)
        if not NOTICE_FILE.match(name) or not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                text = line.strip().strip("`#*/;").strip()
                m = re.match(r"(?i)copyright\b\s*(.*)$", text)
                if not m or TEMPLATE.search(text):
                    continue
                rest = re.sub(r"(?i)^(\(c\)|©)\s*", "", m.group(1))
                rest = re.sub(r"(?i)\s*all rights reserved\.?", "", rest).strip(" ,")
                if not re.search(r"[A-Za-z]", YEAR.sub("", rest)):
                    continue
                # Without a year, only a short line that names someone ("Copyright Amazon.com,
                # Inc. or its affiliates"), not licence prose ("copyright notice", "holders").
                if not YEAR.search(rest) and (
                    len(rest) > 80 or not rest[:1].isupper() or LICENCE_PROSE.search(rest)
                ):
                    continue
                rest = " ".join(rest.split())
                # "2016, A B <a@b>" and "2016 A B" name one holder: keep the first.
                key = re.sub(r"<[^>]*>|[^a-z0-9]", "", rest.lower())
                if key not in seen:
                    seen.add(key)
                    found.append(rest)
    if found:
        return found
    if pkg["authors"]:
        return [" ".join(a.split()) for a in pkg["authors"]]
    return [f"the {pkg['name']} developers (the crate names no holder)"]


def notices(pkg):
    """Apache-2.0 section 4(d): a NOTICE file's text goes along with the work."""
    root = os.path.dirname(pkg["manifest_path"])
    lines = []
    for name in sorted(os.listdir(root)):
        if re.match(r"(?i)^NOTICE(\.(txt|md))?$", name) and os.path.isfile(os.path.join(root, name)):
            with open(os.path.join(root, name), encoding="utf-8", errors="replace") as f:
                text = [line.rstrip() for line in f.read().strip("\n").split("\n")]
            lines += [f"The crate's {name}:", ""] + text
    return lines


def dep5_licence(expr):
    """An SPDX expression in DEP-5's words: `or`, `and`, `<licence> with <name> exception`."""
    expr = expr.replace("/", " OR ")
    expr = re.sub(r"\bWITH\s+([\w.-]+?)-exception\b", r"with \1 exception", expr)
    expr = re.sub(r"\bOR\b", "or", expr)
    expr = re.sub(r"\bAND\b", "and", expr)
    return " ".join(expr.split())


def licence_ids(expr):
    expr = expr.replace("/", " OR ")
    ids = set()
    for m in re.finditer(r"([\w.+-]+)(?:\s+WITH\s+([\w.+-]+))?", expr):
        if m.group(1) in ("OR", "AND", "WITH"):
            continue
        ids.add(m.group(1) if not m.group(2) else f"{m.group(1)} WITH {m.group(2)}")
    return ids


def text_paragraph(name, lines):
    out = [f"License: {name}"]
    for line in lines:
        out.append(" " + line if line.strip() else " .")
    return "\n".join(out)


def licence_text(ident):
    path = os.path.join(LICENSES, f"{ident}.txt")
    if not os.path.isfile(path):
        sys.exit(f"copyright: no {path} for the licence {ident} of a crate in the tree: add its"
                 " text there (after its review in docs/licensing.md and deny.toml)")
    with open(path, encoding="utf-8") as f:
        return f.read().rstrip("\n").split("\n")


def common_reference(ident):
    return [f"On Debian systems, the complete text of the {ident} licence can be found in",
            f"`/usr/share/common-licenses/{COMMON[ident]}'."]


def standalone(ident):
    if " WITH " in ident:
        base, exception = ident.split(" WITH ")
        name = dep5_licence(ident)
        body = (common_reference(base) if base in COMMON else licence_text(base)) + [""]
        return text_paragraph(name, body + licence_text(exception))
    body = common_reference(ident) if ident in COMMON else licence_text(ident)
    return text_paragraph(ident, body)


out = []
out.append("""Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: keyring_okv
Comment: keyring_okv, an open KMIP keyring for MySQL and MariaDB: the keyring_okv.so plugin, the
 MySQL keyring component, the MariaDB plugin kmip_key_management.so and the keyring-okv admin
 tool. The project's own code is under the GPL version 2 only, with the Universal FOSS
 Exception 1.0, which permits linking it with the free software below under the licences of
 their own (Apache-2.0 among them, which the GPL version 2 alone does not permit): see the
 manual's "Licensing" page.
 .
 The binaries are statically linked with the Rust crates of the project's Cargo.lock. Each is
 listed below as `cargo vendor --versioned-dirs` lays out their sources (vendor/NAME-VERSION/),
 with the holders named in the crate's own licence files (or, where those name none, its
 authors). Crates marked as used only while building contribute no code to the binaries.
 This file is generated from the dependency tree by scripts/copyright.sh; the test run checks
 that it is current.

Files: *
Copyright: 2026 keyring_okv developers
License: """ + OWN_LICENCE + """
Comment: The HTML manual under /usr/share/doc/<package>/html/ is generated by mdBook from the
 project's docs/; mdBook's theme files in it (scripts, style sheets, fonts and their
 third-party parts) are under their own free licences, which the mdBook project lists.""")

used = set()
for pid in sorted(built, key=lambda p: (packages[p]["name"], packages[p]["version"])):
    pkg = packages[pid]
    expr = pkg["license"] or ""
    if not expr:
        sys.exit(f"copyright: {pkg['name']} {pkg['version']} declares no licence (license field)")
    used |= licence_ids(expr)
    para = [f"Files: vendor/{pkg['name']}-{pkg['version']}/*"]
    hs = holders(pkg)
    para.append("Copyright: " + hs[0])
    para += [" " + h for h in hs[1:]]
    para.append("License: " + dep5_licence(expr))
    comment = []
    if pid not in linked:
        comment.append("Used only while building (a build script, code generator or"
                       " procedural macro); none of its code is in the binaries.")
    comment += notices(pkg)
    if comment:
        para.append("Comment: " + comment[0])
        para += [" " + line if line.strip() else " ." for line in comment[1:]]
    out.append("\n".join(para))

own = ["On Debian systems, the complete text of the GNU General Public License version 2 can be",
       "found in `/usr/share/common-licenses/GPL-2'.", "",
       "As an additional permission, the project's code is also subject to the Universal FOSS",
       "Exception, version 1.0:", ""]
out.append(text_paragraph(OWN_LICENCE, own + licence_text("Universal-FOSS-exception-1.0")))
for ident in sorted(used):
    out.append(standalone(ident))

sys.stdout.write("\n\n".join(out) + "\n")

if len(sys.argv) > 4:
    rows = ["| crate | version | licence (SPDX, as the crate declares it) | in the binaries |",
            "| --- | --- | --- | --- |"]
    for pid in sorted(built, key=lambda p: (packages[p]["name"], packages[p]["version"])):
        pkg = packages[pid]
        where = "yes" if pid in linked else "no, build only"
        rows.append(f"| {pkg['name']} | {pkg['version']} | {pkg['license']} | {where} |")
    with open(sys.argv[4], "w", encoding="utf-8") as f:
        f.write("\n".join(rows) + "\n")
