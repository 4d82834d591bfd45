//! The README's two commands are the ones that exist and the ones CI runs, and the README is
//! the front door to the manual in docs/.

use std::path::Path;

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The commands in the first fenced block after "## The two commands".
fn the_two_commands() -> Vec<String> {
    let readme = read("README.md");
    let section = readme
        .split("## The two commands")
        .nth(1)
        .expect("README has a 'The two commands' section");
    let block = section.split("```").nth(1).expect("a fenced block");
    block
        .lines()
        .skip(1)
        .filter_map(|l| l.split('#').next())
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn readme_gives_the_demo_and_the_test_command() {
    assert_eq!(
        the_two_commands(),
        ["bash scripts/demo.sh", "bash scripts/test-all.sh"]
    );
    for script in ["scripts/demo.sh", "scripts/test-all.sh"] {
        assert!(
            Path::new(env!("CARGO_MANIFEST_DIR")).join(script).is_file(),
            "{script}"
        );
    }
}

#[test]
fn ci_runs_the_readme_test_command() {
    let ci = read(".ci/run");
    let commands: Vec<&str> = ci
        .lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty() && !l.starts_with('#') && !l.starts_with("set ") && !l.starts_with("cd ")
        })
        .collect();
    assert_eq!(commands, ["exec bash scripts/test-all.sh"]);
    assert!(the_two_commands().contains(&"bash scripts/test-all.sh".to_string()));
}

#[test]
fn the_test_command_runs_every_test_target() {
    let script = read("scripts/test-all.sh");
    assert!(
        script.contains("cargo test -j2 --locked --no-fail-fast --all-targets"),
        "all targets, including the e2e tests"
    );
    assert!(script.contains("cargo clippy") && script.contains("-D warnings"));
    assert!(script.contains("cargo fmt --all -- --check"));
    assert!(
        script.contains("bash scripts/book.sh"),
        "the manual is built and its links checked"
    );
    assert!(
        script.contains("bash scripts/alerts.sh"),
        "the alerting rules are checked"
    );
}

/// The README is the front door: short, and every page of the manual is reachable from it
/// (tests/docs/docs.rs checks that the links resolve).
#[test]
fn readme_is_short_and_links_every_page_of_the_manual() {
    let readme = read("README.md");
    let lines = readme.lines().count();
    assert!(
        lines <= 250,
        "README.md has {lines} lines; the manual in docs/ is the place for more"
    );
    let summary = read("docs/SUMMARY.md");
    for target in summary
        .split("](")
        .skip(1)
        .filter_map(|s| s.split(')').next())
    {
        assert!(
            readme.contains(&format!("](docs/{target})")),
            "README.md does not link docs/{target}, a page of docs/SUMMARY.md"
        );
    }
    for product in [
        "keyring_okv.so",
        "component_keyring_okv.so",
        "kmip_key_management.so",
        "keyring-okv",
    ] {
        assert!(
            readme.contains(product),
            "README.md does not name {product}"
        );
    }
}

/// The workspace's `rust-version`, the one place the toolchain the scripts need is written.
fn rust_version() -> String {
    read("Cargo.toml")
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = \""))
        .and_then(|rest| rest.strip_suffix('"'))
        .expect("Cargo.toml has [workspace.package] rust-version = \"…\"")
        .to_string()
}

#[test]
fn readme_names_the_toolchain_of_the_two_commands() {
    let readme = read("README.md");
    let section = readme.split("## The two commands").nth(1).unwrap();
    let section = section.split("\n## ").next().unwrap().replace('\n', " ");
    let need = rust_version();
    for phrase in [
        format!("Rust {need} or later"),
        "rustup".to_string(),
        "only the Debian packages".to_string(),
    ] {
        assert!(
            section.contains(&phrase),
            "README's 'The two commands' does not say {phrase:?}"
        );
    }
}

/// Runs `script` (relative to the checkout) with only `path` as PATH and HOME set to `home`;
/// returns its exit status and stderr.
fn run_with_path(script: &str, path: &str, home: &Path) -> (std::process::ExitStatus, String) {
    let out = std::process::Command::new("/bin/bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join(script))
        .env_clear()
        .env("PATH", path)
        .env("HOME", home)
        .output()
        .unwrap();
    assert!(out.stdout.is_empty(), "{script} printed on stdout");
    (out.status, String::from_utf8(out.stderr).unwrap())
}

fn fake_cargo(dir: &Path, version: &str) {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("cargo");
    std::fs::write(&path, format!("#!/bin/sh\necho 'cargo {version}'\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn assert_one_line_naming(stderr: &str, need: &str, case: &str) {
    assert_eq!(
        stderr.lines().count(),
        1,
        "{case}: not one line: {stderr:?}"
    );
    assert!(
        stderr.contains(&format!("Rust {need} or later")),
        "{case}: does not name Rust {need}: {stderr:?}"
    );
}

#[test]
fn the_scripts_stop_at_once_without_the_rust_version_they_need() {
    let need = rust_version();
    let check = "scripts/lib/toolchain.sh";

    let empty = tempfile::tempdir().unwrap();
    let bare = empty.path().to_str().unwrap().to_string();
    let (status, stderr) = run_with_path(check, &bare, empty.path());
    assert!(!status.success(), "no cargo: {status}");
    assert_one_line_naming(&stderr, &need, "no cargo");
    assert!(stderr.contains("not installed"), "{stderr}");

    let old = tempfile::tempdir().unwrap();
    fake_cargo(old.path(), "1.63.0");
    let old_path = old.path().to_str().unwrap().to_string();
    let (status, stderr) = run_with_path(check, &old_path, old.path());
    assert!(!status.success(), "cargo 1.63.0: {status}");
    assert_one_line_naming(&stderr, &need, "cargo 1.63.0");
    assert!(stderr.contains("1.63.0"), "{stderr}");

    // The two commands themselves stop before doing anything else (with the system's tools
    // on PATH behind the old cargo, as on a fresh machine).
    for script in ["scripts/demo.sh", "scripts/test-all.sh"] {
        let (status, stderr) =
            run_with_path(script, &format!("{old_path}:/usr/bin:/bin"), old.path());
        assert!(!status.success(), "{script} with cargo 1.63.0: {status}");
        assert_one_line_naming(&stderr, &need, script);
    }

    let new = tempfile::tempdir().unwrap();
    fake_cargo(new.path(), &format!("{need}.0 (0000000 2025-01-01)"));
    let (status, stderr) = run_with_path(check, new.path().to_str().unwrap(), new.path());
    assert!(
        status.success() && stderr.is_empty(),
        "cargo {need}.0: {status} {stderr:?}"
    );
}
