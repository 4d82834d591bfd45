//! The manual (docs/, an mdBook) says what the code does, where a machine can check it:
//!
//! - every page is in `docs/SUMMARY.md` and starts with who it is for, and every link between
//!   pages (and from the README into the manual) leads to an existing file and, after `#`, to
//!   an existing heading;
//! - the system variables, component JSON keys, status variables and status rows listed in
//!   `docs/configuration.md` and `docs/operations.md` are exactly the ones the libraries
//!   register, read from the source files as text, and the values of the sealed key cache's
//!   file status are the ones `FileState::code` returns;
//! - every message the libraries log with `tracing::error!`/`tracing::warn!`, every
//!   `#[error("...")]` text and every configuration warning (`message: format!(…)`) appears in
//!   `docs/troubleshooting.md`: each fixed piece of its text
//!   before the first `;` (the fix that follows is free to be reworded);
//! - the commands shown in code blocks exist: `keyring-okv` subcommands (from `--help`),
//!   `bash scripts/…`, `cargo run --example …`, `cargo test --test …`.
//!
//! - statements about the packages, the example configuration and the alerting rules, checked
//!   against Cargo.toml, src/ and packaging/ (`claims.rs`).
//!
//! A failure names the page and the missing or surplus item, and the source file it comes from.
//! `KEYRING_OKV_DOCS_PRINT=1 cargo test --test docs -- --nocapture` prints every message's
//! pieces, as a start for new troubleshooting lines.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

mod claims;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The Markdown files of the book, relative to docs/.
fn pages() -> Vec<String> {
    fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, base, out);
            } else if path.extension().is_some_and(|e| e == "md") {
                out.push(
                    path.strip_prefix(base)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    let mut out = Vec::new();
    let docs = root().join("docs");
    walk(&docs, &docs, &mut out);
    out.sort();
    out
}

/// Text outside fenced code blocks.
fn prose(text: &str) -> String {
    let mut out = String::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            out.push('\n');
            continue;
        }
        if !fenced {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// The lines inside fenced code blocks.
fn code_lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if fenced {
            out.push(line.to_string());
        }
    }
    out
}

/// mdBook's heading id: the heading's text without Markdown, lower case, letters, digits, `_`
/// and `-` kept, spaces turned into `-`, the rest dropped; repeats get `-1`, `-2`, …
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = BTreeSet::new();
    for line in prose(text).lines() {
        let Some(title) = line
            .strip_prefix('#')
            .map(|t| t.trim_start_matches('#'))
            .filter(|t| t.starts_with(' '))
        else {
            continue;
        };
        let plain = strip_links(title.trim());
        let id: String = plain
            .chars()
            .filter_map(|c| {
                if c.is_alphanumeric() || c == '_' || c == '-' {
                    Some(c.to_ascii_lowercase())
                } else if c.is_whitespace() {
                    Some('-')
                } else {
                    None
                }
            })
            .collect();
        let n = seen.entry(id.clone()).or_insert(0);
        out.insert(if *n == 0 {
            id.clone()
        } else {
            format!("{id}-{n}")
        });
        *n += 1;
    }
    out
}

/// `[text](target)` → `text`.
fn strip_links(s: &str) -> String {
    links(s)
        .into_iter()
        .fold(s.to_string(), |acc, (text, target)| {
            acc.replace(&format!("[{text}]({target})"), &text)
        })
}

/// Every inline link `[text](target)` outside code spans and blocks.
fn links(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in prose(text).lines() {
        // Drop code spans.
        let mut clean = String::new();
        let mut in_code = false;
        for c in line.chars() {
            if c == '`' {
                in_code = !in_code;
                clean.push(' ');
            } else if !in_code {
                clean.push(c);
            } else {
                clean.push(' ');
            }
        }
        let mut rest = clean.as_str();
        while let Some(i) = rest.find("](") {
            let before = &rest[..i];
            let Some(open) = before.rfind('[') else {
                rest = &rest[i + 2..];
                continue;
            };
            let after = &rest[i + 2..];
            let Some(close) = after.find(')') else { break };
            out.push((before[open + 1..].to_string(), after[..close].to_string()));
            rest = &after[close + 1..];
        }
    }
    out
}

#[test]
fn every_page_is_in_the_summary_and_every_internal_link_resolves() {
    let summary = read("docs/SUMMARY.md");
    let listed: BTreeSet<String> = links(&summary).into_iter().map(|(_, t)| t).collect();
    let mut problems = Vec::new();
    for page in pages() {
        if page != "SUMMARY.md" && !listed.contains(&page) {
            problems.push(format!("docs/SUMMARY.md does not list docs/{page}"));
        }
        // Each page starts by saying who it is for: "*For …*" right after its title.
        let text = read(&format!("docs/{page}"));
        if page != "SUMMARY.md" && !text.lines().take(4).any(|l| l.starts_with("*For ")) {
            problems.push(format!(
                "docs/{page} does not start with who it is for (a line \"*For …*\" after the title)"
            ));
        }
    }
    for target in &listed {
        if !root().join("docs").join(target).is_file() {
            problems.push(format!(
                "docs/SUMMARY.md lists docs/{target}, which does not exist"
            ));
        }
    }
    let mut files: Vec<(String, PathBuf)> = pages()
        .into_iter()
        .map(|p| (format!("docs/{p}"), root().join("docs").join(&p)))
        .collect();
    files.push(("README.md".into(), root().join("README.md")));
    for (name, path) in &files {
        let text = std::fs::read_to_string(path).unwrap();
        let dir = path.parent().unwrap();
        for (_, target) in links(&text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (file, anchor) = match target.split_once('#') {
                Some((f, a)) => (f, Some(a)),
                None => (target.as_str(), None),
            };
            let dest = if file.is_empty() {
                path.clone()
            } else {
                dir.join(file)
            };
            let Ok(dest) = dest.canonicalize() else {
                problems.push(format!("{name}: link ({target}): no such file"));
                continue;
            };
            if name.starts_with("docs/") && !dest.starts_with(root().join("docs")) {
                problems.push(format!(
                    "{name}: link ({target}) leaves the book; link the repository's file by name in `code` instead"
                ));
                continue;
            }
            if let Some(anchor) = anchor {
                let dest_text = std::fs::read_to_string(&dest).unwrap_or_default();
                if !anchors(&dest_text).contains(anchor) {
                    problems.push(format!(
                        "{name}: link ({target}): {} has no heading with the id '{anchor}'",
                        dest.strip_prefix(root()).unwrap_or(&dest).display()
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

/// Backticked names in the first cell of the table rows of `text` (the part between the heading
/// `section` and the next heading of the same or a higher level; the whole page when `None`).
fn first_cells(text: &str, section: Option<&str>) -> BTreeSet<String> {
    let text = match section {
        None => text.to_string(),
        Some(heading) => {
            let start = text
                .find(heading)
                .unwrap_or_else(|| panic!("no heading '{heading}'"));
            let level = heading.chars().take_while(|&c| c == '#').count();
            let body = &text[start + heading.len()..];
            let end = body
                .lines()
                .scan(0usize, |pos, l| {
                    let here = *pos;
                    *pos += l.len() + 1;
                    Some((here, l))
                })
                .find(|(_, l)| {
                    let hashes = l.chars().take_while(|&c| c == '#').count();
                    hashes > 0 && hashes <= level && l[hashes..].starts_with(' ')
                })
                .map_or(body.len(), |(p, _)| p);
            body[..end].to_string()
        }
    };
    let mut out = BTreeSet::new();
    for line in prose(&text).lines() {
        let Some(row) = line.trim().strip_prefix('|') else {
            continue;
        };
        let cell = row.split('|').next().unwrap_or("");
        for (i, piece) in cell.split('`').enumerate() {
            if i % 2 == 1 {
                out.insert(piece.to_string());
            }
        }
    }
    out
}

/// The C string literals `c"…"` of `text`.
fn c_strings(text: &str) -> Vec<String> {
    text.split("c\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .map(str::to_string)
        .collect()
}

fn compare(
    what: &str,
    page: &str,
    source: &str,
    registered: &BTreeSet<String>,
    documented: &BTreeSet<String>,
    problems: &mut Vec<String>,
) {
    for name in registered.difference(documented) {
        problems.push(format!(
            "{page} does not list the {what} `{name}` (registered in {source})"
        ));
    }
    for name in documented.difference(registered) {
        problems.push(format!(
            "{page} lists the {what} `{name}`, which {source} does not register"
        ));
    }
}

/// The system variables a plugin declares in `lib`: every `name: c"…"` of a sysvar struct,
/// prefixed with the plugin's name (the `name: c"…"` of the plugin declaration).
fn sysvars(lib: &str, plugin: &str) -> BTreeSet<String> {
    let text = read(lib);
    let mut out = BTreeSet::new();
    for block in text.split("static mut ").skip(1) {
        let head = block.split_whitespace().nth(1).unwrap_or("");
        if !head.starts_with("SysVar") {
            continue;
        }
        let name = block
            .split("name: c\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap_or_else(|| panic!("{lib}: a {head} without a name"));
        out.insert(format!("{plugin}_{name}"));
    }
    assert!(!out.is_empty(), "{lib}: no system variable found");
    out
}

#[test]
fn variables_keys_and_status_names_are_the_registered_ones() {
    let configuration = read("docs/configuration.md");
    let operations = read("docs/operations.md");
    let mut problems = Vec::new();

    // keyring_okv.so: system variables and status variables.
    let documented: BTreeSet<String> = first_cells(&configuration, None)
        .into_iter()
        .filter(|n| n.starts_with("keyring_okv_"))
        .collect();
    compare(
        "system variable",
        "docs/configuration.md",
        "boundary/plugin/src/lib.rs",
        &sysvars("boundary/plugin/src/lib.rs", "keyring_okv"),
        &documented,
        &mut problems,
    );
    let registered: BTreeSet<String> = c_strings(&read("boundary/plugin/src/status.rs"))
        .into_iter()
        .filter(|n| n.starts_with("Keyring_okv_"))
        .collect();
    let documented: BTreeSet<String> = first_cells(&operations, None)
        .into_iter()
        .filter(|n| n.starts_with("Keyring_okv_"))
        .collect();
    compare(
        "status variable",
        "docs/operations.md",
        "boundary/plugin/src/status.rs",
        &registered,
        &documented,
        &mut problems,
    );

    // component_keyring_okv.so: JSON keys and status rows.
    let settings = read("src/products/mysql_component/settings.rs");
    let known = settings
        .split("const KNOWN_KEYS: &[&str] = &[")
        .nth(1)
        .and_then(|s| s.split("];").next())
        .expect("src/products/mysql_component/settings.rs: KNOWN_KEYS");
    let registered: BTreeSet<String> = known
        .split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect();
    compare(
        "component JSON key",
        "docs/configuration.md (## The component's JSON file)",
        "src/products/mysql_component/settings.rs (KNOWN_KEYS)",
        &registered,
        &first_cells(
            &configuration,
            Some("## The component's JSON file: component_keyring_okv.cnf"),
        ),
        &mut problems,
    );
    let component = read("src/products/mysql_component/mod.rs");
    let body = component
        .split("pub fn status_rows()")
        .nth(1)
        .expect("src/products/mysql_component/mod.rs: status_rows");
    let body = body.split("\n}\n").next().unwrap();
    // A row's name is a literal right after `(`: `("Name".into(), …` or `rows.push((\n "Name"`,
    // and in the list of rows shown as <NOT APPLICABLE>.
    let mut registered = BTreeSet::new();
    for (i, piece) in body.split('"').enumerate() {
        if i % 2 == 1
            && piece.chars().next().is_some_and(|c| c.is_ascii_uppercase())
            && piece.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            let before = body.split('"').take(i).collect::<Vec<_>>().join("\"");
            let prev = before.trim_end().chars().last();
            if matches!(prev, Some('(') | Some('[') | Some(',')) {
                registered.insert(piece.to_string());
            }
        }
    }
    compare(
        "status row",
        "docs/operations.md (## Status rows of the component)",
        "src/products/mysql_component/mod.rs (status_rows)",
        &registered,
        &first_cells(&operations, Some("## Status rows of the component")),
        &mut problems,
    );

    // kmip_key_management.so: system variables and status variables.
    let documented: BTreeSet<String> = first_cells(&configuration, None)
        .into_iter()
        .filter(|n| n.starts_with("kmip_key_management_"))
        .collect();
    compare(
        "system variable",
        "docs/configuration.md",
        "boundary/mariadb/src/lib.rs",
        &sysvars("boundary/mariadb/src/lib.rs", "kmip_key_management"),
        &documented,
        &mut problems,
    );
    let status = read("boundary/mariadb/src/status.rs");
    let registered: BTreeSet<String> = status
        .split("const NUMBERS")
        .nth(1)
        .and_then(|s| s.split("const ENTRIES").next())
        .map(c_strings)
        .expect("boundary/mariadb/src/status.rs: NUMBERS and TEXTS")
        .into_iter()
        .map(|n| format!("kmip_key_management_{n}"))
        .chain(
            status
                .split("const KEY_STATE_NUMBERS")
                .nth(1)
                .and_then(|s| s.split("const KEY_STATE_ENTRIES").next())
                .map(c_strings)
                .expect("boundary/mariadb/src/status.rs: KEY_STATE_NUMBERS and KEY_STATE_TEXTS")
                .into_iter()
                .map(|n| format!("kmip_key_management_key_state_{n}")),
        )
        .collect();
    let documented: BTreeSet<String> = first_cells(&operations, None)
        .into_iter()
        .filter(|n| n.starts_with("kmip_key_management_"))
        .collect();
    compare(
        "status variable",
        "docs/operations.md",
        "boundary/mariadb/src/status.rs",
        &registered,
        &documented,
        &mut problems,
    );

    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

/// The values of the sealed key cache's file status (`Keyring_okv_sealed_cache_file`, the
/// component's `Sealed_cache_file`, `kmip_key_management_sealed_cache_file`): every code
/// `FileState::code` returns, and `off`, which each of the three shows while the cache is off.
#[test]
fn every_sealed_file_state_is_documented() {
    let sealed = read("src/sealed/mod.rs");
    let body = sealed
        .split("pub fn code(&self) -> &'static str {")
        .nth(1)
        .and_then(|s| s.split("\n    }\n").next())
        .expect("src/sealed/mod.rs: FileState::code");
    let mut registered: BTreeSet<String> = body
        .split("=> \"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .map(str::to_string)
        .collect();
    assert!(
        registered.len() > 3,
        "src/sealed/mod.rs: FileState::code returns only {registered:?}"
    );
    let mut problems = Vec::new();
    for source in [
        "boundary/plugin/src/status.rs",
        "boundary/mariadb/src/status.rs",
        "src/products/mysql_component/mod.rs",
    ] {
        let text = read(source);
        if !(text.contains("file.code()") && text.contains("\"off\"")) {
            problems.push(format!(
                "{source} no longer shows the file state as FileState::code or \"off\": update this test and docs/operations.md"
            ));
        }
    }
    registered.insert("off".into());
    compare(
        "sealed key cache file state",
        "docs/operations.md (## The sealed key cache's file)",
        "src/sealed/mod.rs (FileState::code)",
        &registered,
        &first_cells(
            &read("docs/operations.md"),
            Some("## The sealed key cache's file"),
        ),
        &mut problems,
    );
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

/// A message the code can log, as written in the source.
struct Message {
    at: String,
    template: String,
}

/// Reads the string literal at the start of `s` (after whitespace): "…" or r"…"/r#"…"#, with
/// Rust's escapes and line continuations resolved. `None` when no literal starts there.
fn literal(s: &str) -> Option<String> {
    let s = s.trim_start();
    if let Some(raw) = s.strip_prefix('r') {
        let hashes = raw.chars().take_while(|&c| c == '#').count();
        let body = raw[hashes..].strip_prefix('"')?;
        let end = format!("\"{}", "#".repeat(hashes));
        return Some(body[..body.find(&end)?].to_string());
    }
    let mut chars = s.strip_prefix('"')?.chars().peekable();
    let mut out = String::new();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                '\n' => {
                    while chars.peek().is_some_and(|c| c.is_whitespace()) {
                        chars.next();
                    }
                }
                'n' => out.push('\n'),
                't' => out.push('\t'),
                '0' => out.push('\0'),
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}

/// Every `tracing::error!`/`tracing::warn!` format string and `#[error("…")]` text in the
/// libraries' sources (the admin tool's own output and test modules left out).
fn logged_messages() -> Vec<Message> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if !path.ends_with("bin") {
                    walk(&path, out);
                }
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    for dir in [
        "src",
        "boundary/plugin/src",
        "boundary/component/src",
        "boundary/mariadb/src",
        "boundary/ffi/src",
    ] {
        walk(&root().join(dir), &mut files);
    }
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let text = text.split("#[cfg(test)]").next().unwrap();
        let name = file.strip_prefix(root()).unwrap().display().to_string();
        for opener in [
            "tracing::error!(",
            "tracing::warn!(",
            "#[error(",
            // Warnings built as values and logged through "{warning}" (configuration directory).
            "message: format!(",
            "let message = format!(",
        ] {
            let mut from = 0;
            while let Some(i) = text[from..].find(opener) {
                let start = from + i + opener.len();
                from = start;
                let line = text[..start].lines().count();
                if let Some(template) = literal(&text[start..]) {
                    out.push(Message {
                        at: format!("{name}:{line}"),
                        template,
                    });
                }
            }
        }
    }
    out
}

/// The fixed pieces of a message that the troubleshooting page must hold: the literal text
/// between the `{…}` placeholders before the first `;` (after it, when nothing is fixed before),
/// trimmed of spaces and punctuation, when it holds a word of three letters or more.
fn fixed_pieces(template: &str) -> Vec<String> {
    let mut pieces = vec![String::new()];
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                pieces.last_mut().unwrap().push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                pieces.last_mut().unwrap().push('}');
            }
            '{' => {
                for c in chars.by_ref() {
                    if c == '}' {
                        break;
                    }
                }
                pieces.push(String::new());
            }
            c => pieces.last_mut().unwrap().push(c),
        }
    }
    let keep = |p: &str| -> Option<String> {
        let t = p
            .trim_matches(|c: char| c.is_whitespace() || ":;,.'\"()#".contains(c))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let word = t
            .split(|c: char| !c.is_alphabetic())
            .any(|w| w.chars().count() >= 3);
        word.then_some(t)
    };
    let mut before = Vec::new();
    let mut after = Vec::new();
    let mut seen_semicolon = false;
    for piece in &pieces {
        if seen_semicolon {
            after.extend(piece.split(';').filter_map(keep));
        } else if let Some((head, tail)) = piece.split_once(';') {
            before.extend(keep(head));
            after.extend(tail.split(';').filter_map(keep));
            seen_semicolon = true;
        } else {
            before.extend(keep(piece));
        }
    }
    if before.is_empty() { after } else { before }
}

#[test]
fn every_logged_message_is_in_troubleshooting() {
    let page = read("docs/troubleshooting.md");
    let flat = page.split_whitespace().collect::<Vec<_>>().join(" ");
    let print = std::env::var_os("KEYRING_OKV_DOCS_PRINT").is_some();
    let messages = logged_messages();
    assert!(
        messages.len() > 50,
        "found only {} messages",
        messages.len()
    );
    let mut problems = Vec::new();
    for m in &messages {
        let pieces = fixed_pieces(&m.template);
        if print {
            println!("{}\t{}\t{:?}", m.at, m.template, pieces);
        }
        for piece in pieces {
            if !flat.contains(&piece) {
                problems.push(format!(
                    "docs/troubleshooting.md lacks `{piece}` of the message \"{}\" ({})",
                    m.template, m.at
                ));
            }
        }
    }
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

/// The subcommands `keyring-okv --help` (and `keyring-okv mariadb --help`) lists.
fn subcommands(args: &[&str]) -> BTreeSet<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_keyring-okv"))
        .args(args)
        .arg("--help")
        .output()
        .expect("run keyring-okv --help");
    let text = String::from_utf8_lossy(&out.stdout);
    text.split("Commands:")
        .nth(1)
        .expect("a Commands: section")
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

#[test]
fn commands_shown_in_the_docs_exist() {
    let top = subcommands(&[]);
    let mariadb = subcommands(&["--conf-dir", "/nonexistent", "mariadb"]);
    let mut problems = Vec::new();
    let mut files: Vec<String> = pages().into_iter().map(|p| format!("docs/{p}")).collect();
    files.push("README.md".into());
    for file in files {
        let text = read(&file);
        for line in code_lines(&text) {
            let line = line.split(" #").next().unwrap_or("");
            let words: Vec<&str> = line.split_whitespace().collect();
            for (i, w) in words.iter().enumerate() {
                let next = |k: usize| words.get(i + k).copied().unwrap_or("");
                let starts_command =
                    i == 0 || matches!(words[i - 1], "|" | "&&" | ";" | "sudo" | "$");
                if starts_command && (*w == "keyring-okv" || w.ends_with("/keyring-okv")) {
                    // keyring-okv [--conf-dir DIR] [--json] COMMAND …
                    let mut j = i + 1;
                    while let Some(a) = words.get(j) {
                        if *a == "--conf-dir" || *a == "--log" {
                            j += 2;
                        } else if a.starts_with("--") {
                            j += 1;
                        } else {
                            break;
                        }
                    }
                    let Some(cmd) = words.get(j) else { continue };
                    if !top.contains(*cmd) {
                        problems.push(format!(
                            "{file}: `{}`: keyring-okv has no command '{cmd}'",
                            line.trim()
                        ));
                    } else if *cmd == "mariadb" {
                        let sub = words.get(j + 1).copied().unwrap_or("");
                        if !mariadb.contains(sub) {
                            problems.push(format!(
                                "{file}: `{}`: keyring-okv mariadb has no command '{sub}'",
                                line.trim()
                            ));
                        }
                    }
                }
                if *w == "bash" && next(1).starts_with("scripts/")
                    || w.starts_with("scripts/") && w.ends_with(".sh")
                {
                    let script = if *w == "bash" { next(1) } else { w };
                    if !root().join(script).is_file() {
                        problems.push(format!("{file}: `{}`: no {script}", line.trim()));
                    }
                }
                if *w == "--example" && !next(1).is_empty() {
                    let ex = next(1);
                    if !root().join("examples").join(format!("{ex}.rs")).is_file() {
                        problems.push(format!("{file}: `{}`: no examples/{ex}.rs", line.trim()));
                    }
                }
                if *w == "--test" && !next(1).is_empty() {
                    let t = next(1);
                    if !test_targets()
                        .iter()
                        .any(|(name, path)| name == t && root().join(path).is_file())
                    {
                        problems.push(format!(
                            "{file}: `{}`: no test target {t} in Cargo.toml",
                            line.trim()
                        ));
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

/// The `[[test]]` targets of Cargo.toml: (name, path).
fn test_targets() -> Vec<(String, String)> {
    let manifest = read("Cargo.toml");
    let mut targets = Vec::new();
    let mut name = None;
    let mut in_test = false;
    for line in manifest.lines() {
        if line.starts_with('[') {
            in_test = line.trim() == "[[test]]";
        }
        if !in_test {
            continue;
        }
        let value = |key: &str| {
            line.strip_prefix(key).map(|v| {
                v.trim()
                    .trim_start_matches('=')
                    .trim()
                    .trim_matches('"')
                    .to_string()
            })
        };
        if line.trim() == "[[test]]" {
            name = None;
        } else if let Some(v) = value("name ") {
            name = Some(v);
        } else if let (Some(v), Some(n)) = (value("path "), name.take()) {
            targets.push((n, v));
        }
    }
    targets
}
